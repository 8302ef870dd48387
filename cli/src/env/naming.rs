//! The name and namespace a file's objects will have in the cluster once the kustomizations
//! above it render them.
//!
//! Why: a strict-scope SealedSecret opens only under the name and namespace it was sealed for.
//! An overlay's `nameSuffix: -prod` turns `db` into `db-prod`, so sealing a file in
//! `overlays/production/` for the name written in it gives a SealedSecret the cluster cannot
//! open, and nothing says so before it is deployed. Sealing for the rendered identity is what
//! the user meant; the file keeps the name as written (kustomize adds the suffix).
//!
//! Which kustomizations apply: walking up from the file, each directory's kustomization that
//! includes the file (or the directory the walk came from) renames it, inner first, as
//! kustomize does (`namePrefix` and `nameSuffix` accumulate, the outermost `namespace` wins). A
//! kustomization in the file's own directory applies even when it does not list the file yet:
//! that is the usual order of work (seal, then add the file to `resources`), and the user is
//! told to add it. The walk stops at the first kustomization that does not include it, and at
//! the repository root.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::lint::{
    kustomize::{Kustomization, read_kustomization},
    walk::{clean, kustomization_file},
};

/// What the kustomizations above a file do to its objects' names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renaming {
    /// Accumulated `namePrefix`.
    pub prefix: String,
    /// Accumulated `nameSuffix`.
    pub suffix: String,
    /// The outermost `namespace`, if any sets one.
    pub namespace: Option<String>,
    /// The kustomization files that apply, inner first.
    pub via: Vec<PathBuf>,
    /// The kustomization in the file's own directory that does not list it yet.
    pub unlisted_in: Option<PathBuf>,
}

impl Renaming {
    /// The rendered name of an object written as `name`.
    pub fn name(&self, name: &str) -> String {
        format!("{}{name}{}", self.prefix, self.suffix)
    }

    /// The rendered namespace of an object written with `namespace`.
    pub fn namespace<'a>(&'a self, namespace: Option<&'a str>) -> Option<&'a str> {
        self.namespace.as_deref().or(namespace)
    }

    /// Applies one kustomization's transformers (it wraps what was applied so far).
    fn wrap(&mut self, file: &Path, k: &Value) {
        let text = |key: &str| k.get(key).and_then(Value::as_str).unwrap_or("");
        self.prefix = format!("{}{}", text("namePrefix"), self.prefix);
        self.suffix = format!("{}{}", self.suffix, text("nameSuffix"));
        if let Some(ns) = k
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            self.namespace = Some(ns.to_string());
        }
        self.via.push(file.to_path_buf());
    }
}

/// Whether kustomization `k` in `dir` includes `target` (a file or a directory), by its
/// `resources`, `bases` or `components` entries (lexically: the file may not exist yet).
fn includes(dir: &Path, k: &Value, target: &Path) -> bool {
    ["resources", "bases", "components"].iter().any(|field| {
        k.get(*field)
            .and_then(Value::as_array)
            .is_some_and(|entries| {
                entries
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|e| !e.contains("://"))
                    .any(|entry| clean(&dir.join(entry)) == target)
            })
    })
}

/// The renaming that applies to objects of `file` (absolute, normalised) under `root`.
pub fn renaming_for(root: &Path, file: &Path) -> anyhow::Result<Renaming> {
    let mut renaming = Renaming::default();
    let mut current = file.to_path_buf();
    let own_dir = file.parent().map(Path::to_path_buf);
    let mut dir = own_dir.clone();
    while let Some(d) = dir {
        if !d.starts_with(root) {
            break;
        }
        if let Some(kfile) = kustomization_file(&d) {
            let k: Kustomization = read_kustomization(&d, &kfile)?;
            let value = k
                .doc
                .as_ref()
                .map(|doc| doc.value.clone())
                .unwrap_or_default();
            if includes(&d, &value, &current) {
                renaming.wrap(&kfile, &value);
            } else if current == file && Some(&d) == own_dir.as_ref() {
                renaming.wrap(&kfile, &value);
                renaming.unlisted_in = Some(kfile);
            } else {
                break;
            }
            current = d.clone();
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    Ok(renaming)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn overlays_rename_inner_first_and_the_outer_namespace_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        write(
            &root,
            "overlays/production/kustomization.yaml",
            "resources: [../../base, secrets]\nnamePrefix: shop-\nnameSuffix: -prod\nnamespace: prod\n",
        );
        write(
            &root,
            "overlays/production/secrets/kustomization.yaml",
            "resources: [db.yaml]\nnameSuffix: -v2\nnamespace: inner\n",
        );
        write(
            &root,
            "overlays/production/secrets/db.yaml",
            "kind: SealedSecret\n",
        );
        let r = renaming_for(&root, &root.join("overlays/production/secrets/db.yaml")).unwrap();
        assert_eq!(r.name("db"), "shop-db-v2-prod");
        assert_eq!(r.namespace(Some("x")), Some("prod"));
        assert_eq!(r.via.len(), 2);
        assert_eq!(r.unlisted_in, None);
    }

    #[test]
    fn a_new_file_beside_an_overlay_is_renamed_and_flagged_as_unlisted() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        write(
            &root,
            "overlays/production/kustomization.yaml",
            "resources: [../../base]\nnameSuffix: -prod\n",
        );
        let file = root.join("overlays/production/sealed-db.yaml");
        let r = renaming_for(&root, &file).unwrap();
        assert_eq!(r.name("db"), "db-prod");
        assert_eq!(r.namespace(Some("shop")), Some("shop"));
        assert_eq!(
            r.unlisted_in,
            Some(root.join("overlays/production/kustomization.yaml"))
        );
        // Listed: no flag.
        write(
            &root,
            "overlays/production/kustomization.yaml",
            "resources: [../../base, ./sealed-db.yaml]\nnameSuffix: -prod\n",
        );
        assert_eq!(renaming_for(&root, &file).unwrap().unlisted_in, None);
    }

    #[test]
    fn plain_folders_and_unrelated_kustomizations_rename_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        write(
            &root,
            "kustomization.yaml",
            "resources: [apps]\nnameSuffix: -x\n",
        );
        write(&root, "secrets/db.yaml", "kind: SealedSecret\n");
        let r = renaming_for(&root, &root.join("secrets/db.yaml")).unwrap();
        assert_eq!(r, Renaming::default());
    }
}
