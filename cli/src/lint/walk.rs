//! Finding what to lint: YAML/JSON files and kustomization directories under the given paths.
//!
//! Hidden files and directories (`.git`, `.github`, `.pre-commit-config.yaml`) are skipped, as
//! are the `templates/` of Helm charts (Go templates, not YAML) and anything under `--exclude`.
//! Symlinked directories are not followed, so a link cycle cannot hang CI. The result is sorted,
//! so output is stable across file systems.

use std::{
    fs,
    path::{Component, Path, PathBuf},
};

use anyhow::{Result, anyhow};

use crate::io::describe_io_error;

/// Names kustomize accepts for a kustomization file, in its order of preference.
pub const KUSTOMIZATION_FILES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// YAML and JSON files (kustomization files excluded).
    pub files: Vec<PathBuf>,
    /// Directories holding a kustomization file.
    pub kustomizations: Vec<PathBuf>,
}

/// The kustomization file of `dir`, if it has one.
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// `path` without leading `./` components, as users expect to read it.
pub fn clean(path: &Path) -> PathBuf {
    let cleaned: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn is_kustomization_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| KUSTOMIZATION_FILES.contains(&n))
}

/// Walks `roots` (files or directories), skipping `excludes`.
pub fn walk(roots: &[PathBuf], excludes: &[PathBuf]) -> Result<Walk> {
    let excludes: Vec<PathBuf> = excludes.iter().map(|p| clean(p)).collect();
    let mut out = Walk::default();
    for root in roots {
        let root = clean(root);
        let meta =
            fs::metadata(&root).map_err(|e| anyhow!(describe_io_error("open", &root, &e)))?;
        if meta.is_dir() {
            walk_dir(&root, &excludes, &mut out)?;
        } else if is_kustomization_name(&root) {
            let dir = root.parent().map_or_else(|| PathBuf::from("."), clean);
            out.kustomizations.push(dir);
        } else {
            // A file named explicitly is linted whatever its extension.
            out.files.push(root);
        }
    }
    out.files.sort();
    out.files.dedup();
    out.kustomizations.sort();
    out.kustomizations.dedup();
    Ok(out)
}

fn excluded(path: &Path, excludes: &[PathBuf]) -> bool {
    excludes.iter().any(|e| path.starts_with(e))
}

fn walk_dir(dir: &Path, excludes: &[PathBuf], out: &mut Walk) -> Result<()> {
    if excluded(dir, excludes) {
        return Ok(());
    }
    let entries = fs::read_dir(dir).map_err(|e| anyhow!(describe_io_error("open", dir, &e)))?;
    let mut entries: Vec<fs::DirEntry> = entries
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!(describe_io_error("read", dir, &e)))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    let is_chart = entries.iter().any(|e| e.file_name() == "Chart.yaml");
    let mut has_kustomization = false;
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = if dir == Path::new(".") {
            PathBuf::from(name)
        } else {
            dir.join(name)
        };
        if excluded(&path, excludes) {
            continue;
        }
        let file_type = entry
            .file_type()
            .map_err(|e| anyhow!(describe_io_error("stat", &path, &e)))?;
        if file_type.is_dir() {
            if !(is_chart && name == "templates") {
                walk_dir(&path, excludes, out)?;
            }
        } else if KUSTOMIZATION_FILES.contains(&name) {
            has_kustomization = true;
        } else if is_manifest(&path) && (file_type.is_file() || path.is_file()) {
            out.files.push(path);
        }
    }
    if has_kustomization {
        out.kustomizations.push(dir.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_helm_templates_and_excluded_paths_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "a.yaml",
            "b.txt",
            ".hidden.yaml",
            ".git/x.yaml",
            "chart/Chart.yaml",
            "chart/templates/t.yaml",
            "chart/values.yaml",
            "k/kustomization.yaml",
            "k/r.yml",
            "skip/me.json",
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "").unwrap();
        }
        let found = walk(&[root.to_path_buf()], &[root.join("skip")]).unwrap();
        let rel = |p: &PathBuf| p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let files: Vec<String> = found.files.iter().map(rel).collect();
        assert_eq!(
            files,
            ["a.yaml", "chart/Chart.yaml", "chart/values.yaml", "k/r.yml"]
        );
        let kust: Vec<String> = found.kustomizations.iter().map(rel).collect();
        assert_eq!(kust, ["k"]);
    }

    #[test]
    fn missing_paths_are_errors_naming_them() {
        let err = walk(&[PathBuf::from("/nonexistent/x")], &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
    }
}
