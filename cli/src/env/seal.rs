//! Sealing for environments: by the output path (`-w overlays/production/db.yaml`) or by name
//! (`--env staging,production -w 'overlays/{env}/db.yaml'`).
//!
//! Decisions (docs/environments.md explains them for users):
//! - `--cert` wins: no routing, upstream's behaviour (`--env` with it is a usage error).
//! - Without connection flags, sealing is offline with the environment's newest committed
//!   certificate; with `--context`, `--server` or `--kubeconfig` the named controller's
//!   certificate is used, after the wrong-cluster guard ([`super::guard`]) accepted it.
//! - The name and namespace sealed for are those the kustomizations above the output render
//!   ([`super::naming`]); `--name` and `-n` still win. The file keeps the name as written.
//! - The SealedSecret records the certificate's fingerprint in
//!   [`CERTIFICATE_ANNOTATION`] for `kubeseal lint`.
//! - Every output is sealed in memory before the first file is written.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use sealed_secrets_core::{
    cert::Certificate,
    crypto::SystemRandom,
    keys::PublicKey,
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
    sealed_secret::{
        CERTIFICATE_ANNOTATION, SEALED_FOR_ANNOTATION, SealedSecret, sealed_for_value,
    },
};
use serde_json::Value;

use super::{
    config::{FILE_NAME, Repository, normalise},
    guard,
    naming::{Renaming, renaming_for},
};
use crate::{
    args::Args,
    commands::seal::input_documents,
    io::{Format, Source, emit, read_input},
    kubeconfig::default_namespace,
};

/// The placeholder of `-w` replaced by each environment's name.
pub const ENV_PLACEHOLDER: &str = "{env}";

/// One output to seal: an environment and where the result goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Environment name.
    pub env: String,
    /// Index of the rule that routed the output, when one did.
    pub rule: Option<usize>,
    /// Output file as given (`{env}` replaced); stdout when `None`.
    pub output: Option<PathBuf>,
    /// The output, absolute and normalised.
    pub resolved: Option<PathBuf>,
}

/// Whether the user named a cluster connection explicitly (then sealing is online, checked).
pub fn explicit_connection(args: &Args) -> bool {
    args.kube.context.is_some() || args.kube.server.is_some() || args.kubeconfig.is_some()
}

/// Plans the targets of a sealing run; `None` means "not for an environment": upstream's
/// behaviour applies.
pub fn plan(args: &Args, cwd: &Path) -> Result<Option<(Repository, Vec<Target>)>> {
    if !args.cert.is_empty() {
        if !args.env.is_empty() {
            bail!("--env and --cert both choose the certificate to seal with; give only one");
        }
        return Ok(None);
    }
    let output = args.sealed_secret_file.as_deref();
    let has_placeholder = output.is_some_and(|o| o.to_string_lossy().contains(ENV_PLACEHOLDER));
    let Some(repo) = Repository::discover(cwd)? else {
        if !args.env.is_empty() {
            bail!(
                "--env needs {FILE_NAME} in {} or a directory above it, and none was found",
                cwd.display()
            );
        }
        return Ok(None);
    };
    if args.env.is_empty() {
        if has_placeholder {
            bail!("-w contains {ENV_PLACEHOLDER} but no --env names the environments to seal for");
        }
        let Some(output) = output else {
            if !explicit_connection(args) {
                eprintln!(
                    "kubeseal: note: {} declares environments, but without -w PATH or --env \
                     kubeseal cannot tell which one this is for; sealing with the controller of \
                     the current context",
                    repo.file.display()
                );
            }
            return Ok(None);
        };
        let resolved = resolve(output)?;
        let Some(rule) = repo.route(&resolved) else {
            if repo.relative(&resolved).is_some() {
                eprintln!(
                    "kubeseal: {} matches no rule of {}; sealing without an environment",
                    output.display(),
                    repo.file.display()
                );
            }
            return Ok(None);
        };
        let target = Target {
            env: rule.environment.clone(),
            rule: Some(rule.index),
            output: Some(output.to_path_buf()),
            resolved: Some(resolved),
        };
        return Ok(Some((repo, vec![target])));
    }
    let envs = repo.select(&args.env).map_err(|e| anyhow!(e))?;
    if envs.len() > 1 && !has_placeholder {
        bail!(
            "--env names {} environments: give -w with {ENV_PLACEHOLDER} in the path, e.g. -w \
             'overlays/{ENV_PLACEHOLDER}/sealed-db.yaml', so each gets its own file",
            envs.len()
        );
    }
    let mut targets = Vec::new();
    for env in envs {
        let Some(output) = output else {
            targets.push(Target {
                env: env.name.clone(),
                rule: None,
                output: None,
                resolved: None,
            });
            continue;
        };
        let output = PathBuf::from(output.to_string_lossy().replace(ENV_PLACEHOLDER, &env.name));
        let resolved = resolve(&output)?;
        let rule = repo.route(&resolved);
        if let Some(rule) = rule.filter(|r| r.environment != env.name) {
            bail!(
                "{} routes to environment {:?} (rule {} of {}: {}), not {:?} as --env says; \
                 nothing was written",
                output.display(),
                rule.environment,
                rule.index + 1,
                repo.file.display(),
                rule.pattern,
                env.name
            );
        }
        targets.push(Target {
            env: env.name.clone(),
            rule: rule.map(|r| r.index),
            output: Some(output),
            resolved: Some(resolved),
        });
    }
    Ok(Some((repo, targets)))
}

fn resolve(output: &Path) -> Result<PathBuf> {
    normalise(output).map_err(|e| {
        anyhow!(crate::io::describe_io_error(
            "open",
            output.parent().unwrap_or(output),
            &e
        ))
    })
}

/// The identity one Secret is sealed for, and what its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name to seal for.
    pub name: String,
    /// Namespace to seal for (`None` for cluster-wide).
    pub namespace: Option<String>,
}

/// The identity a Secret written as `name`/`namespace` is sealed for (pure).
pub fn sealing_identity(
    name: &str,
    namespace: Option<&str>,
    renaming: &Renaming,
    name_flag: Option<&str>,
    namespace_flag: Option<&str>,
    default_namespace: &str,
) -> Identity {
    Identity {
        name: name_flag.map_or_else(|| renaming.name(name), str::to_string),
        namespace: Some(
            namespace_flag
                .or(renaming.namespace(namespace.filter(|n| !n.is_empty())))
                .unwrap_or(default_namespace)
                .to_string(),
        ),
    }
}

/// Seals one Secret document for `identity`, keeping the name and namespace written in the
/// file, and records the certificate's fingerprint.
pub fn seal_for(
    doc: Value,
    key: &PublicKey,
    fingerprint: &str,
    scope: Scope,
    identity: &Identity,
    allow_empty_data: bool,
) -> Result<SealedSecret> {
    let mut secret = secret_from_value(doc)?;
    let written_name = secret.metadata.name.clone().filter(|n| !n.is_empty());
    let written_namespace = secret.metadata.namespace.clone().filter(|n| !n.is_empty());
    if written_name.is_none() {
        return Err(sealed_secrets_core::seal::SealError::MissingName.into());
    }
    secret.metadata.name = Some(identity.name.clone());
    secret.metadata.namespace = identity.namespace.clone();
    let options = SealOptions {
        scope,
        namespace: NamespaceDefault {
            namespace: identity.namespace.clone().unwrap_or_default(),
            explicit: false,
        },
        allow_empty_data,
    };
    let mut sealed = seal_secret(secret, key, &options, &mut SystemRandom)?;
    let sealed_for = sealed_for_value(sealed.metadata.namespace.as_deref(), &identity.name);
    let renamed = written_name.as_deref() != Some(identity.name.as_str())
        || (sealed.metadata.namespace.is_some() && written_namespace != identity.namespace);
    let file_namespace = written_namespace.or_else(|| identity.namespace.clone());
    sealed.metadata.name = written_name.clone();
    if sealed.metadata.namespace.is_some() {
        sealed.metadata.namespace = file_namespace.clone();
    }
    let template = &mut sealed.spec.template.metadata;
    if template.name.is_some() {
        template.name = written_name;
    }
    if template.namespace.is_some() {
        template.namespace = file_namespace;
    }
    let annotations = sealed
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(CERTIFICATE_ANNOTATION.to_string(), fingerprint.to_string());
    if renamed {
        annotations.insert(SEALED_FOR_ANNOTATION.to_string(), sealed_for);
    }
    Ok(sealed)
}

/// The scope to seal a document with: its own annotations, else an explicit non-strict
/// `--scope`, else the rule's default.
fn scope_of(doc: &Value, flag: Scope, rule_default: Option<Scope>) -> Scope {
    let annotations: Option<std::collections::BTreeMap<String, String>> = doc
        .pointer("/metadata/annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok());
    let own = Scope::from_annotations(annotations.as_ref());
    if own != Scope::Strict {
        return own;
    }
    if flag != Scope::Strict {
        return flag;
    }
    rule_default.unwrap_or(Scope::Strict)
}

/// The certificate to seal `env` with: the checked controller's (explicit connection), else
/// the newest committed one.
pub fn certificate_for(
    repo: &Repository,
    env_name: &str,
    args: &Args,
) -> Result<(Certificate, String)> {
    let env = repo.environment(env_name).map_err(|e| anyhow!(e))?;
    if explicit_connection(args) {
        let cert = guard::fetch_checked(repo, env, args)?;
        let source = format!("served by the controller of {}", guard::context_label(args));
        return Ok((cert, source));
    }
    let now = jiff::Timestamp::now();
    let chosen = env.sealing_certificate(now).ok_or_else(|| {
        anyhow!(
            "environment {env_name:?}: every certificate in {} has expired; run `kubeseal env \
             refresh {env_name}` to fetch the current one",
            env.certificates_file.display()
        )
    })?;
    let shown = repo
        .relative(&env.certificates_file)
        .unwrap_or_else(|| env.certificates_file.display().to_string());
    Ok((chosen.cert.clone(), format!("from {shown}")))
}

/// Seals the input for every target and writes the results (all sealed before any is written).
pub fn run(args: &Args, repo: &Repository, targets: &[Target]) -> Result<()> {
    let (source, bytes) = read_input(
        args.secret_file.as_deref(),
        "(tty detected: expecting json/yaml k8s resource in stdin)",
    )?;
    let docs = input_documents(&source, &bytes)?;
    let default_ns = default_namespace(args)?;
    let mut outputs = Vec::new();
    for target in targets {
        let (cert, cert_source) = certificate_for(repo, &target.env, args)?;
        let fingerprint = cert.public_key().fingerprint();
        let shown = target
            .output
            .as_deref()
            .map_or_else(|| "stdout".to_string(), |o| o.display().to_string());
        let rule = target.rule.map(|i| &repo.rules[i]);
        let routed = match rule {
            Some(rule) => format!("rule {}: {}", rule.index + 1, rule.pattern),
            None => "--env".to_string(),
        };
        eprintln!(
            "kubeseal: {shown}: sealing for environment {:?} ({routed}) with certificate \
             {fingerprint} {cert_source}",
            target.env
        );
        let renaming = match &target.resolved {
            Some(resolved) => renaming_for(&repo.root, resolved)?,
            None => Renaming::default(),
        };
        let name_flag = Some(args.name.as_str()).filter(|n| !n.is_empty());
        let namespace_flag = args.kube.namespace.as_deref().filter(|n| !n.is_empty());
        let sealed = seal_documents(
            &docs,
            &source,
            &cert,
            &fingerprint,
            args,
            rule.and_then(|r| r.scope),
            |name, namespace| {
                sealing_identity(
                    name,
                    namespace,
                    &renaming,
                    name_flag,
                    namespace_flag,
                    &default_ns.namespace,
                )
            },
            &shown,
        )?;
        if let Some(k) = &renaming.unlisted_in {
            eprintln!(
                "kubeseal: note: {} does not list {} in its resources yet; add it, or the overlay \
                 will not deploy it",
                repo.relative(k).unwrap_or_else(|| k.display().to_string()),
                target
                    .resolved
                    .as_deref()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
        }
        let format = Format::parse(args.format.as_deref())?.for_output(target.output.as_deref());
        outputs.push((target.output.clone(), format.render(&sealed)));
    }
    for (output, bytes) in outputs {
        emit(output.as_deref(), &bytes).with_context(|| {
            format!(
                "cannot write {}",
                output
                    .as_deref()
                    .map_or("stdout".into(), |o| o.display().to_string())
            )
        })?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn seal_documents(
    docs: &[Value],
    source: &Source,
    cert: &Certificate,
    fingerprint: &str,
    args: &Args,
    rule_scope: Option<Scope>,
    identity_of: impl Fn(&str, Option<&str>) -> Identity,
    shown: &str,
) -> Result<Vec<Value>> {
    let count = docs.len();
    let mut out = Vec::with_capacity(count);
    for (i, doc) in docs.iter().enumerate() {
        let where_ = if count > 1 {
            format!("document {} of {source}", i + 1)
        } else {
            source.to_string()
        };
        let scope = scope_of(doc, args.scope, rule_scope);
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let namespace = doc.pointer("/metadata/namespace").and_then(Value::as_str);
        let identity = identity_of(name, namespace);
        if name.is_empty() {
            return Err(anyhow!(
                "{} ({where_})",
                sealed_secrets_core::seal::SealError::MissingName
            ));
        }
        let rendered = (identity.name != name)
            || identity.namespace.as_deref() != namespace.filter(|n| !n.is_empty());
        if rendered && scope != Scope::ClusterWide {
            let shown_ns = identity.namespace.as_deref().unwrap_or("");
            let what = if scope == Scope::NamespaceWide {
                format!("namespace {shown_ns:?}")
            } else {
                format!("name {:?} in namespace {shown_ns:?}", identity.name)
            };
            eprintln!(
                "kubeseal: {shown}: {name:?} sealed for {what}, as the cluster will see it after \
                 kustomize (the file keeps {name:?})"
            );
        }
        let sealed = seal_for(
            doc.clone(),
            cert.public_key(),
            fingerprint,
            scope,
            &identity,
            args.allow_empty_data,
        )
        .map_err(|e| anyhow!("{e} ({where_})"))?;
        out.push(sealed.to_upstream_value());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_follow_the_overlay_unless_flags_say_otherwise() {
        let renaming = Renaming {
            suffix: "-prod".into(),
            namespace: Some("prod".into()),
            ..Renaming::default()
        };
        let id = sealing_identity("db", Some("shop"), &renaming, None, None, "default");
        assert_eq!(
            id,
            Identity {
                name: "db-prod".into(),
                namespace: Some("prod".into())
            }
        );
        let id = sealing_identity("db", None, &Renaming::default(), None, None, "team");
        assert_eq!(
            id,
            Identity {
                name: "db".into(),
                namespace: Some("team".into())
            }
        );
        let id = sealing_identity("db", None, &renaming, Some("other"), Some("ns"), "default");
        assert_eq!(
            id,
            Identity {
                name: "other".into(),
                namespace: Some("ns".into())
            }
        );
    }

    #[test]
    fn the_file_keeps_its_name_and_the_ciphertext_opens_only_under_the_rendered_one() {
        use sealed_secrets_core::{
            keys::generate_key_pair,
            unseal::{UnsealOptions, unseal},
        };
        let pair = generate_key_pair(
            2048,
            "",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(1),
        )
        .unwrap();
        let doc = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"}, "stringData": {"password": "canary"}});
        let identity = Identity {
            name: "db-prod".into(),
            namespace: Some("prod".into()),
        };
        let sealed = seal_for(
            doc,
            &pair.key.public_key(),
            "SHA256:x",
            Scope::Strict,
            &identity,
            false,
        )
        .unwrap();
        assert_eq!(sealed.metadata.name.as_deref(), Some("db"));
        assert_eq!(sealed.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(
            sealed.metadata.annotations.as_ref().unwrap()[CERTIFICATE_ANNOTATION],
            "SHA256:x"
        );
        let keys = vec![pair.key.clone()];
        let options = UnsealOptions::default();
        assert!(
            unseal(&sealed, &keys, options).is_err(),
            "opened under the written name"
        );
        let mut rendered = sealed.clone();
        rendered.metadata.name = Some("db-prod".into());
        rendered.metadata.namespace = Some("prod".into());
        assert!(unseal(&rendered, &keys, options).is_ok());
    }
}
