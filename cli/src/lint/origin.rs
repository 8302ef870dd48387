//! Where a rendered object comes from, and whether the overlays on the way broke its scope.
//!
//! kustomize's output has no positions, so each rendered Secret or SealedSecret is matched to
//! its definition among the files the rendered kustomization includes: SealedSecrets by their
//! ciphertexts (kustomize never changes them, and they are unique), then by kind and name
//! (exact, else the longest original name inside the rendered one, as `namePrefix` and
//! `nameSuffix` only add around it). The include chain from the rendered kustomization down to
//! the definition names the overlays that rename or move it.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use serde_json::Value;

use sealed_secrets_core::{scope::Scope, sealed_secret::recorded_sealed_for};

use super::{
    check::{Place, identity, is_sealed_secret, name_of, namespace_of, objects, scope_of},
    docs::Document,
    findings::{self as rules, Finding, Location},
    kustomize::{Graph, Kustomization},
    proof::{Identity, Unopened, describe},
    references::is_workload,
};

/// A Secret or SealedSecret as written in a file that a kustomization includes.
#[derive(Debug)]
pub struct Definition {
    /// Canonical path of the file.
    pub file: PathBuf,
    /// Path shown to users.
    pub shown: String,
    /// Its document.
    pub doc: Document,
    /// Whether key lines can be looked up (not for `List` items).
    pub keyed: bool,
    /// The object as written.
    pub value: Value,
}

impl Definition {
    /// Where the definition is, for key paths.
    pub fn place(&self) -> Place<'_> {
        Place {
            file: &self.shown,
            doc: Some(&self.doc),
            keyed: self.keyed,
        }
    }

    fn location(&self) -> Location {
        self.place().at(&[])
    }
}

/// Every definition, searchable by ciphertext and by name.
#[derive(Debug, Default)]
pub struct Index {
    defs: Vec<Definition>,
    /// Workloads (Deployments, Pods...), to trace Secret references to their lines.
    workloads: Vec<Definition>,
    by_ciphertext: HashMap<String, Vec<usize>>,
}

fn ciphertexts(value: &Value) -> Vec<&str> {
    value
        .get("spec")
        .and_then(|s| s.get("encryptedData"))
        .and_then(Value::as_object)
        .map(|m| m.values().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl Index {
    /// Adds the Secrets and SealedSecrets of one included file.
    pub fn add(&mut self, file: &Path, shown: &str, docs: Vec<Document>) {
        for doc in docs {
            for (value, keyed) in objects(&doc.value) {
                if is_workload(value) {
                    self.workloads.push(Definition {
                        file: file.to_path_buf(),
                        shown: shown.to_string(),
                        doc: doc.clone(),
                        keyed,
                        value: value.clone(),
                    });
                    continue;
                }
                if !(super::check::is_secret(value) || is_sealed_secret(value)) {
                    continue;
                }
                let index = self.defs.len();
                for text in ciphertexts(value) {
                    self.by_ciphertext
                        .entry(text.to_string())
                        .or_default()
                        .push(index);
                }
                self.defs.push(Definition {
                    file: file.to_path_buf(),
                    shown: shown.to_string(),
                    doc: doc.clone(),
                    keyed,
                    value: value.clone(),
                });
            }
        }
    }

    /// The definition of `rendered` among the files in `files`.
    pub fn find(&self, rendered: &Value, files: &BTreeSet<PathBuf>) -> Option<&Definition> {
        let kind = rendered.get("kind");
        let eligible = |d: &&Definition| d.value.get("kind") == kind && files.contains(&d.file);
        let by_cipher = ciphertexts(rendered)
            .iter()
            .filter_map(|c| self.by_ciphertext.get(*c))
            .flatten()
            .map(|&i| &self.defs[i])
            .find(eligible);
        if by_cipher.is_some() {
            return by_cipher;
        }
        let name = name_of(rendered);
        let candidates = self.defs.iter().filter(eligible);
        let mut best: Option<&Definition> = None;
        for def in candidates {
            let def_name = name_of(&def.value);
            if def_name.is_empty() || !name.contains(def_name) {
                continue;
            }
            if def_name == name {
                return Some(def);
            }
            if best.is_none_or(|b| name_of(&b.value).len() < def_name.len()) {
                best = Some(def);
            }
        }
        best
    }

    /// The workloads among `files` that `rendered` may come from (same kind, a name inside the
    /// rendered name), patches before resources: a patch's text is what the render shows when
    /// both set a field.
    pub fn workload_sources(
        &self,
        rendered: &Value,
        files: &BTreeSet<PathBuf>,
        graph: &Graph,
    ) -> Vec<&Definition> {
        let name = name_of(rendered);
        let mut found: Vec<&Definition> = self
            .workloads
            .iter()
            .filter(|d| {
                let def_name = name_of(&d.value);
                d.value.get("kind") == rendered.get("kind")
                    && files.contains(&d.file)
                    && !def_name.is_empty()
                    && name.contains(def_name)
            })
            .collect();
        found.sort_by_key(|d| graph.is_resource(&d.file));
        found
    }
}

/// Whether `rendered` still carries (some of) the definition's sealed values.
pub fn same_values(def: &Definition, rendered: &Value) -> bool {
    let theirs = ciphertexts(&def.value);
    ciphertexts(rendered).iter().any(|c| theirs.contains(c))
}

/// Every file the kustomizations of `root`'s closure include.
pub fn closure_files(graph: &Graph, root: &Path) -> BTreeSet<PathBuf> {
    graph
        .closure(root)
        .into_iter()
        .flat_map(|k| k.files.iter().cloned())
        .collect()
}

/// The `namePrefix`/`nameSuffix` (when `renamed`) and `namespace` (when `moved`) settings of the
/// kustomizations on `chain`, root first: who changed an object's name or namespace.
pub fn culprits(
    chain: &[&Kustomization],
    renamed: bool,
    moved: bool,
    shown: &dyn Fn(&Path) -> String,
) -> Vec<(Location, String)> {
    let mut out = Vec::new();
    for k in chain {
        let mut fields = Vec::new();
        if renamed {
            fields.extend(["namePrefix", "nameSuffix"]);
        }
        if moved {
            fields.push("namespace");
        }
        for field in fields {
            if let Some(value) = k.field(field).filter(|v| !v.is_empty()) {
                out.push((
                    Location::new(shown(&k.file), k.line_of(field)),
                    format!("{field}: {value}"),
                ));
            }
        }
    }
    out
}

/// `overlay-breaks-scope`: the overlays on `chain` give the rendered object a name or namespace
/// its values do not open under.
///
/// With recovery keys, `proof` holds the values that do not open under the rendered identity,
/// and the finding is made only when a trial opened one of them under another name or namespace
/// and a kustomization on the chain sets the prefix, suffix or namespace that changed it
/// (otherwise the values are simply sealed wrong, which `cannot-decrypt` reports). Without keys (`proof` is `None`) the identity written in the file
/// is assumed to be the one the values were sealed for, and the message says it is a guess.
pub fn check_overlay_scope(
    rendered: &Value,
    def: &Definition,
    chain: &[&Kustomization],
    shown: &dyn Fn(&Path) -> String,
    proof: Option<&[Unopened]>,
) -> Option<Finding> {
    let (new_name, new_ns) = (name_of(rendered), namespace_of(rendered).unwrap_or(""));
    let (sealed_for, renamed, moved) = match proof {
        None => {
            let scope = scope_of(&def.value);
            let (old_name, old_ns) = match recorded_sealed_for(&def.value) {
                Some((ns, name)) => (name, ns),
                None => (name_of(&def.value), namespace_of(&def.value)),
            };
            let renamed = scope == Scope::Strict && !old_name.is_empty() && old_name != new_name;
            let moved = scope != Scope::ClusterWide && old_ns.is_some_and(|ns| ns != new_ns);
            (None, renamed, moved)
        }
        Some(unopened) => {
            let (id, renamed, moved) = unopened.iter().find_map(|u| {
                let id = u.opens_under.as_ref()?;
                let renamed = id.scope == Scope::Strict && id.name != new_name;
                let moved = id.scope != Scope::ClusterWide && id.namespace != new_ns;
                (renamed || moved).then_some((id, renamed, moved))
            })?;
            (Some((id, unopened)), renamed, moved)
        }
    };
    if !renamed && !moved {
        return None;
    }
    let found = culprits(chain, renamed, moved, shown);
    if sealed_for.is_some() && found.is_empty() {
        return None;
    }
    let (primary, how) = match found.first() {
        Some((location, how)) => (location.clone(), format!(" ({how})")),
        None => (
            Location::new(
                chain
                    .first()
                    .map_or_else(|| def.shown.clone(), |k| shown(&k.file)),
                None,
            ),
            String::new(),
        ),
    };
    let change = match (renamed, moved) {
        (true, true) => "renamed and moved",
        (true, false) => "renamed",
        _ => "moved",
    };
    let scope = scope_of(&def.value);
    let head = format!(
        "{scope} SealedSecret \"{}\" defined at {} is {change} to \"{}\" by {primary}{how}",
        identity(&def.value),
        def.location(),
        identity(rendered),
    );
    let (message, note) = match sealed_for {
        Some((id, unopened)) => (
            format!(
                "{head}; the recovery keys prove it breaks the scope: {} not open under the \
                 rendered {} but {}, so the controller will fail to unseal it",
                match unopened.len() {
                    1 => "1 value does".to_string(),
                    n => format!("{n} values do"),
                },
                Identity::of(rendered),
                describe(unopened),
            ),
            format!("its values open under the {id}"),
        ),
        None => {
            let (claimed, source) = match recorded_sealed_for(&def.value) {
                Some((ns, name)) => (
                    ns.map_or_else(|| name.to_string(), |ns| format!("{ns}/{name}")),
                    "as its sealed-for annotation records",
                ),
                None => (identity(&def.value), "as the file says"),
            };
            let rule_of_scope = match scope {
                Scope::Strict => {
                    "a strict SealedSecret opens only under the name and namespace it was sealed for"
                }
                _ => "a namespace-wide SealedSecret opens only in the namespace it was sealed for",
            };
            (
                format!(
                    "{head}; {rule_of_scope}, so the controller will fail to unseal it if it was \
                     sealed for \"{claimed}\" {source} (a guess from the file: run with \
                     --recovery-private-key to decide by decryption)",
                ),
                format!("sealed for \"{claimed}\" ({scope})"),
            )
        }
    };
    let mut finding = Finding::new(rules::OVERLAY_BREAKS_SCOPE, primary, message)
        .with_related(def.location(), note);
    for (location, how) in found.into_iter().skip(1) {
        finding = finding.with_related(location, format!("also changes it: {how}"));
    }
    Some(finding)
}

/// Where a rendered object without a definition comes from: a `secretGenerator` of some
/// kustomization in the closure, else the rendered kustomization itself.
pub fn generator_location(
    graph: &Graph,
    root: &Path,
    rendered: &Value,
    shown: &dyn Fn(&Path) -> String,
) -> Option<Location> {
    let name = name_of(rendered);
    graph.closure(root).into_iter().find_map(|k| {
        k.secret_generators()
            .iter()
            .any(|g| !g.is_empty() && name.contains(g))
            .then(|| Location::new(shown(&k.file), k.line_of("secretGenerator")))
    })
}
