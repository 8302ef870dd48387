//! `renamed-sealed-secret-reference`: a workload asks for a Secret by the name a SealedSecret
//! had before kustomize renamed it.
//!
//! Why: kustomize's `namePrefix`/`nameSuffix` rename every object, and then rewrite the
//! references to renamed objects it knows the reference fields of. It knows them for Secrets
//! (`envFrom.secretRef`, `volumes[].secret`...), not for SealedSecrets, a custom kind. So an
//! overlay that renames a SealedSecret `db-creds` to `db-creds-prod` leaves the Deployment
//! asking for Secret `db-creds`, the controller creates `db-creds-prod`, and the pods fail with
//! "secret not found", while the SealedSecret itself is fine. The fix is a `nameReference` for
//! kind SealedSecret in a `configurations:` file, and every finding carries a ready snippet.
//!
//! No guesses: a reference is reported only if no Secret or SealedSecret of the same render
//! provides the name it asks for *and* a SealedSecret of that render, in that namespace, was
//! renamed from exactly that name. References to Secrets made outside Git (by hand, by other
//! operators) are never reported. SealedSecret templates hold no references to other Secrets
//! (their data templates read only their own items), so workloads are the only referrers.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    check::{identity, is_sealed_secret, is_secret, name_of, namespace_of},
    docs::Document,
    findings::{self as rules, Finding, Location},
};

/// Kinds whose Pod template is read, and where the Pod spec is in each.
const WORKLOADS: &[(&str, &[&str])] = &[
    ("Deployment", &["spec", "template", "spec"]),
    ("StatefulSet", &["spec", "template", "spec"]),
    ("DaemonSet", &["spec", "template", "spec"]),
    ("Job", &["spec", "template", "spec"]),
    (
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
    ("Pod", &["spec"]),
];

fn pod_spec_path(value: &Value) -> Option<&'static [&'static str]> {
    let kind = value.get("kind")?.as_str()?;
    WORKLOADS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, path)| *path)
}

/// Whether the object is a workload whose Pod template this rule reads.
pub fn is_workload(value: &Value) -> bool {
    pod_spec_path(value).is_some()
}

/// One place where a Pod spec names a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The Secret name asked for.
    pub name: String,
    /// Where, for people: `spec.template.spec.containers[app].envFrom[0].secretRef.name`.
    pub path: String,
    /// The same field as a kustomize fieldSpec path (list items are transparent there).
    pub field_spec: String,
    /// The mapping key that holds the name (`secretRef`, `secret`, `imagePullSecrets`...).
    pub parent: &'static str,
    /// The key of the name itself (`name` or `secretName`).
    pub key: &'static str,
}

/// Every Secret reference in a workload's Pod spec.
pub fn secret_references(workload: &Value) -> Vec<Reference> {
    let Some(prefix) = pod_spec_path(workload) else {
        return Vec::new();
    };
    let Some(spec) = prefix.iter().try_fold(workload, |v, k| v.get(*k)) else {
        return Vec::new();
    };
    let dotted = prefix.join(".");
    let slashed = prefix.join("/");
    let mut out = Vec::new();
    let mut push = |name: Option<&Value>,
                    path: String,
                    field_spec: String,
                    parent: &'static str,
                    key: &'static str| {
        if let Some(name) = name.and_then(Value::as_str).filter(|n| !n.is_empty()) {
            out.push(Reference {
                name: name.to_string(),
                path: format!("{dotted}.{path}"),
                field_spec: format!("{slashed}/{field_spec}"),
                parent,
                key,
            });
        }
    };
    let items = |v: &Value, key: &str| -> Vec<Value> {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let label = |v: &Value, i: usize| {
        v.get("name")
            .and_then(Value::as_str)
            .map_or_else(|| i.to_string(), str::to_string)
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, container) in items(spec, list).iter().enumerate() {
            let c = label(container, i);
            for (j, source) in items(container, "envFrom").iter().enumerate() {
                push(
                    source.pointer("/secretRef/name"),
                    format!("{list}[{c}].envFrom[{j}].secretRef.name"),
                    format!("{list}/envFrom/secretRef/name"),
                    "secretRef",
                    "name",
                );
            }
            for (j, var) in items(container, "env").iter().enumerate() {
                push(
                    var.pointer("/valueFrom/secretKeyRef/name"),
                    format!(
                        "{list}[{c}].env[{}].valueFrom.secretKeyRef.name",
                        label(var, j)
                    ),
                    format!("{list}/env/valueFrom/secretKeyRef/name"),
                    "secretKeyRef",
                    "name",
                );
            }
        }
    }
    for (i, volume) in items(spec, "volumes").iter().enumerate() {
        let v = label(volume, i);
        push(
            volume.pointer("/secret/secretName"),
            format!("volumes[{v}].secret.secretName"),
            "volumes/secret/secretName".into(),
            "secret",
            "secretName",
        );
        let sources = volume.pointer("/projected/sources").cloned();
        for (j, source) in sources
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            push(
                source.pointer("/secret/name"),
                format!("volumes[{v}].projected.sources[{j}].secret.name"),
                "volumes/projected/sources/secret/name".into(),
                "secret",
                "name",
            );
        }
    }
    for (i, pull) in items(spec, "imagePullSecrets").iter().enumerate() {
        push(
            pull.get("name"),
            format!("imagePullSecrets[{i}].name"),
            "imagePullSecrets/name".into(),
            "imagePullSecrets",
            "name",
        );
    }
    out
}

/// A SealedSecret of a render whose name differs from the one it is defined with.
#[derive(Debug, Clone)]
pub struct Renamed {
    /// The name in its file: what references still ask for.
    pub from: String,
    /// Its rendered `namespace/name`.
    pub to: String,
    /// Its rendered namespace.
    pub namespace: Option<String>,
    /// Its definition.
    pub defined_at: Location,
    /// The kustomization settings that rename it (`nameSuffix: -prod`), root first.
    pub culprits: Vec<(Location, String)>,
}

/// A reference that asks for a renamed SealedSecret's old name.
#[derive(Debug)]
pub struct Dangling<'a> {
    /// The workload as rendered.
    pub workload: &'a Value,
    /// The reference.
    pub reference: Reference,
    /// The SealedSecret it meant.
    pub renamed: &'a Renamed,
}

/// The references among `objects` (one render) that name a Secret no object of the render
/// provides while a SealedSecret of the render, in the same namespace, was renamed from it.
pub fn dangling<'a>(objects: &[&'a Value], renamed: &'a [Renamed]) -> Vec<Dangling<'a>> {
    if renamed.is_empty() {
        return Vec::new();
    }
    let provided: BTreeSet<(Option<&str>, &str)> = objects
        .iter()
        .filter(|v| is_secret(v) || is_sealed_secret(v))
        .map(|v| (namespace_of(v), name_of(v)))
        .collect();
    let mut out = Vec::new();
    for workload in objects.iter().copied().filter(|v| is_workload(v)) {
        let namespace = namespace_of(workload);
        for reference in secret_references(workload) {
            if provided.contains(&(namespace, reference.name.as_str())) {
                continue;
            }
            if let Some(r) = renamed
                .iter()
                .find(|r| r.from == reference.name && r.namespace.as_deref() == namespace)
            {
                out.push(Dangling {
                    workload,
                    reference,
                    renamed: r,
                });
            }
        }
    }
    out
}

/// The `nameReference` that makes kustomize rewrite this reference, as one line of YAML.
pub fn name_reference_snippet(kind: &str, field_spec: &str) -> String {
    format!(
        "nameReference: [{{kind: SealedSecret, group: bitnami.com, fieldSpecs: [{{kind: {kind}, \
         path: {field_spec}}}]}}]"
    )
}

/// The finding for one dangling reference, at `location` (the reference's line when traced).
/// `fallback_kustomization` is named for the fix when no culprit setting was found.
pub fn finding(
    d: &Dangling<'_>,
    location: Location,
    via: &str,
    fallback_kustomization: &str,
) -> Finding {
    let kind = d.workload.get("kind").and_then(Value::as_str).unwrap_or("");
    let r = d.renamed;
    let by = match r.culprits.first() {
        Some((at, how)) => format!(" by {at} ({how})"),
        None => String::new(),
    };
    let mut files: Vec<&str> = r.culprits.iter().map(|(l, _)| l.file.as_str()).collect();
    files.dedup();
    if files.is_empty() {
        files.push(fallback_kustomization);
    }
    let mut finding = Finding::new(
        rules::RENAMED_REFERENCE,
        location,
        format!(
            "{kind} \"{}\"{via} refers to Secret \"{}\" at {}, which no object of the render \
             provides: SealedSecret \"{}\" defined at {} is renamed to \"{}\"{by}, and kustomize \
             rewrites references to Secrets only, not to SealedSecrets, so the pods will fail \
             with \"secret not found\"; fix: list a file containing `{}` under `configurations:` \
             in {}",
            identity(d.workload),
            d.reference.name,
            d.reference.path,
            r.from,
            r.defined_at,
            r.to,
            name_reference_snippet(kind, &d.reference.field_spec),
            files.join(" and "),
        ),
    )
    .with_related(
        r.defined_at.clone(),
        format!("SealedSecret \"{}\" is defined here", r.from),
    );
    for (at, how) in &r.culprits {
        finding = finding.with_related(at.clone(), format!("renames it: {how}"));
    }
    finding
}

/// The line, in the file, of `reference` in a source document: a `key: name` entry whose
/// enclosing key is the reference's parent. `None` when the text does not have it (for example
/// a patch that does not set it, or JSON).
pub fn reference_line(doc: &Document, reference: &Reference) -> Option<usize> {
    let lines: Vec<&str> = doc.text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((column, key, value)) = entry(line) else {
            continue;
        };
        if key != reference.key || unquote(value) != reference.name {
            continue;
        }
        let parent = lines[..i]
            .iter()
            .rev()
            .filter_map(|l| entry(l))
            .find(|(c, _, _)| *c < column);
        if parent.is_some_and(|(_, k, _)| k == reference.parent) {
            return Some(doc.first_line + i);
        }
    }
    None
}

/// A YAML mapping entry line: the column of its key (after any `- ` list markers), the key, and
/// the rest after the colon (comment removed).
fn entry(line: &str) -> Option<(usize, &str, &str)> {
    let mut rest = line.trim_start_matches(' ');
    loop {
        match rest.strip_prefix('-') {
            Some(r) if r.starts_with(' ') => rest = r.trim_start_matches(' '),
            _ => break,
        }
    }
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    let column = line.len() - rest.len();
    let (key, value) = rest.split_once(':')?;
    if !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    let key = unquote(key);
    let value = value.split(" #").next().unwrap_or("").trim();
    Some((column, key, value))
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::docs::read_documents;

    const DEPLOYMENT: &str = "\
# the API
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      initContainers:
      - name: migrate
        env:
        - name: P
          valueFrom:
            secretKeyRef:
              key: p
              name: \"db-creds\"
      containers:
      - name: app
        envFrom:
        - configMapRef:
            name: db-creds
        - secretRef:
            name: db-creds # the SealedSecret
      volumes:
      - name: tls
        secret:
          secretName: tls
      - name: all
        projected:
          sources:
          - secret:
              name: db-creds
      imagePullSecrets:
      - name: registry
";

    #[test]
    fn every_reference_field_is_found_with_its_kustomize_path_and_line() {
        let (docs, _) = read_documents(DEPLOYMENT);
        let doc = &docs[0];
        let refs = secret_references(&doc.value);
        let shown: Vec<(&str, &str, &str)> = refs
            .iter()
            .map(|r| (r.name.as_str(), r.path.as_str(), r.field_spec.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "db-creds",
                    "spec.template.spec.initContainers[migrate].env[P].valueFrom.secretKeyRef.name",
                    "spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name"
                ),
                (
                    "db-creds",
                    "spec.template.spec.containers[app].envFrom[1].secretRef.name",
                    "spec/template/spec/containers/envFrom/secretRef/name"
                ),
                (
                    "tls",
                    "spec.template.spec.volumes[tls].secret.secretName",
                    "spec/template/spec/volumes/secret/secretName"
                ),
                (
                    "db-creds",
                    "spec.template.spec.volumes[all].projected.sources[0].secret.name",
                    "spec/template/spec/volumes/projected/sources/secret/name"
                ),
                (
                    "registry",
                    "spec.template.spec.imagePullSecrets[0].name",
                    "spec/template/spec/imagePullSecrets/name"
                ),
            ]
        );
        let lines: Vec<Option<usize>> = refs.iter().map(|r| reference_line(doc, r)).collect();
        assert_eq!(
            lines,
            [Some(16), Some(23), Some(27), Some(32), Some(34)],
            "the configMapRef at line 21 is not a Secret reference"
        );
    }

    #[test]
    fn cron_jobs_and_pods_have_their_own_pod_spec_paths() {
        let cron = serde_json::json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "r"}]}}}}}});
        assert_eq!(
            secret_references(&cron)[0].field_spec,
            "spec/jobTemplate/spec/template/spec/imagePullSecrets/name"
        );
        let pod = serde_json::json!({"kind": "Pod", "spec": {"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}});
        assert_eq!(
            secret_references(&pod)[0].path,
            "spec.volumes[v].secret.secretName"
        );
        assert!(secret_references(&serde_json::json!({"kind": "ConfigMap"})).is_empty());
    }

    #[test]
    fn only_references_to_a_renamed_sealed_secrets_old_name_dangle() {
        let deployment = |ns: &str, secret: &str| {
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": ns},
                "spec": {"template": {"spec": {"containers": [{"name": "app", "envFrom": [{"secretRef": {"name": secret}}]}]}}}})
        };
        let sealed = serde_json::json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "db-prod", "namespace": "pay"}});
        let renamed = [Renamed {
            from: "db".into(),
            to: "pay/db-prod".into(),
            namespace: Some("pay".into()),
            defined_at: Location::new("base/db.yaml", Some(1)),
            culprits: vec![(
                Location::new("prod/kustomization.yaml", Some(3)),
                "nameSuffix: -prod".into(),
            )],
        }];
        let broken = deployment("pay", "db");
        let found = dangling(&[&broken, &sealed], &renamed);
        assert_eq!(found.len(), 1);
        let f = finding(&found[0], Location::new("base/api.yaml", Some(9)), "", "k");
        assert_eq!(f.rule, "renamed-sealed-secret-reference");
        assert!(f.message.contains("`nameReference: [{kind: SealedSecret, group: bitnami.com, fieldSpecs: [{kind: Deployment, path: spec/template/spec/containers/envFrom/secretRef/name}]}]` under `configurations:` in prod/kustomization.yaml"), "{}", f.message);
        // Fixed, made outside Git, or in another namespace: nothing to say.
        for ok in [
            deployment("pay", "db-prod"),
            deployment("pay", "made-by-hand"),
            deployment("other", "db"),
        ] {
            assert!(dangling(&[&ok, &sealed], &renamed).is_empty(), "{ok}");
        }
        // A Secret of the render that still has the old name provides it.
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "pay"}});
        assert!(dangling(&[&broken, &sealed, &secret], &renamed).is_empty());
    }
}
