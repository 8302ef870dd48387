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

use sealed_secrets_core::scope::Scope;

use super::{
    check::{Place, identity, is_sealed_secret, name_of, namespace_of, objects, scope_of},
    docs::Document,
    findings::{self as rules, Finding, Location},
    kustomize::{Graph, Kustomization},
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

/// `overlay-breaks-scope`: the rendered name or namespace differs from the one the definition
/// was sealed for, in a way its scope does not allow.
pub fn check_overlay_scope(
    rendered: &Value,
    def: &Definition,
    chain: &[&Kustomization],
    shown: &dyn Fn(&Path) -> String,
) -> Option<Finding> {
    let scope = scope_of(&def.value);
    let (old_name, new_name) = (name_of(&def.value), name_of(rendered));
    let (old_ns, new_ns) = (namespace_of(&def.value), namespace_of(rendered));
    let renamed = scope == Scope::Strict && !old_name.is_empty() && old_name != new_name;
    let moved = scope != Scope::ClusterWide && old_ns.is_some() && old_ns != new_ns;
    if !renamed && !moved {
        return None;
    }
    let mut culprits: Vec<(Location, String)> = Vec::new();
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
                culprits.push((
                    Location::new(shown(&k.file), k.line_of(field)),
                    format!("{field}: {value}"),
                ));
            }
        }
    }
    let (primary, how) = match culprits.first() {
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
    let rule_of_scope = match scope {
        Scope::Strict => {
            "a strict SealedSecret opens only under the name and namespace it was sealed for"
        }
        _ => "a namespace-wide SealedSecret opens only in the namespace it was sealed for",
    };
    let mut finding = Finding::new(
        rules::OVERLAY_BREAKS_SCOPE,
        primary.clone(),
        format!(
            "{scope} SealedSecret \"{}\" defined at {} is {change} to \"{}\" by {primary}{how}; \
             {rule_of_scope}, so the controller will fail to unseal it",
            identity(&def.value),
            def.location(),
            identity(rendered),
        ),
    )
    .with_related(
        def.location(),
        format!("sealed for \"{}\" ({scope})", identity(&def.value)),
    );
    for (location, how) in culprits.into_iter().skip(1) {
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
