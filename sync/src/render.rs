//! Turning a folder of a checkout into the list of objects to apply.
//!
//! A folder with a `kustomization.yaml` is built with `kubectl kustomize`, as Argo CD runs the
//! kustomize binary (there is no Rust kustomize). Any other folder is read as plain manifests:
//! every `.yaml`, `.yml` and `.json` file under it, in path order, each possibly holding several
//! documents. Hidden files and folders (`.git`, `.github`) are skipped. Every object keeps its
//! file and the line its document starts at, so a policy failure or a parse error points at the
//! line to fix. Paths may not climb out of the checkout.

use std::{
    path::{Component, Path, PathBuf},
    process::Command,
};

use sealed_secrets_core::documents::parse_documents;
use serde_json::Value;

use crate::manifest::{Manifest, Origin};

/// Names kustomize accepts for its configuration file.
pub const KUSTOMIZATION_FILES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Annotation kustomize writes when `buildMetadata: [originAnnotations]` is set.
const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";

/// Why a folder could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The path leaves the checkout or does not exist.
    #[error("path {path:?}: {problem}")]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file, relative to the checkout.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A document is not valid YAML or JSON.
    #[error("{file}:{line}: {message}")]
    Parse {
        /// The file, relative to the checkout.
        file: String,
        /// Line where the failing document starts.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// `kubectl kustomize` could not run or failed.
    #[error("kustomize build {dir}: {message}")]
    Kustomize {
        /// The folder, relative to the checkout.
        dir: String,
        /// What kustomize said (last lines of its error output).
        message: String,
    },
}

/// Renders folders of a checkout.
#[derive(Debug, Clone)]
pub struct Renderer {
    kubectl: PathBuf,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new(std::env::var_os("KUBECTL").map_or_else(|| "kubectl".into(), PathBuf::from))
    }
}

impl Renderer {
    /// A renderer that runs `kubectl` (path or name on `PATH`) for kustomize folders.
    pub fn new(kubectl: impl Into<PathBuf>) -> Renderer {
        Renderer {
            kubectl: kubectl.into(),
        }
    }

    /// Renders `path` (relative to `root`; empty or `.` for the root itself).
    pub fn render(&self, root: &Path, path: &str) -> Result<Vec<Manifest>, RenderError> {
        let relative = clean_relative(path)?;
        let dir = root.join(&relative);
        if !dir.is_dir() {
            return Err(RenderError::BadPath {
                path: path.to_string(),
                problem: "is not a folder of the repository".into(),
            });
        }
        let shown = display_path(&relative);
        if KUSTOMIZATION_FILES.iter().any(|f| dir.join(f).is_file()) {
            return self.kustomize(&dir, &shown);
        }
        let mut files = Vec::new();
        collect_files(&dir, &relative, &mut files)?;
        let mut manifests = Vec::new();
        for (full, rel) in files {
            let text = std::fs::read(&full).map_err(|source| RenderError::Read {
                file: rel.clone(),
                source,
            })?;
            manifests.extend(parse_file(&rel, &text)?);
        }
        Ok(manifests)
    }

    fn kustomize(&self, dir: &Path, shown: &str) -> Result<Vec<Manifest>, RenderError> {
        let output = Command::new(&self.kubectl)
            .arg("kustomize")
            .arg(dir)
            .env("LC_ALL", "C")
            .output()
            .map_err(|e| RenderError::Kustomize {
                dir: shown.to_string(),
                message: format!("cannot run {}: {e}", self.kubectl.display()),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(5)..].join("\n");
            return Err(RenderError::Kustomize {
                dir: shown.to_string(),
                message: tail.replace(&dir.display().to_string(), shown),
            });
        }
        let label = format!("kustomize build {shown}");
        let mut manifests = parse_file(&label, &output.stdout)?;
        for manifest in &mut manifests {
            if let Some(file) = origin_path(&manifest.object) {
                manifest.origin = Origin {
                    file: format!("{label} ({file})"),
                    line: 0,
                };
            } else {
                manifest.origin.line = 0;
            }
        }
        Ok(manifests)
    }
}

/// The `path:` of kustomize's origin annotation, when the kustomization asked for it.
fn origin_path(object: &Value) -> Option<String> {
    let text = object
        .pointer("/metadata/annotations")?
        .get(ORIGIN_ANNOTATION)?
        .as_str()?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .map(|p| p.trim().to_string())
}

/// Validates a repository-relative path: no absolute paths, no `..`.
fn clean_relative(path: &str) -> Result<PathBuf, RenderError> {
    let mut out = PathBuf::new();
    for component in Path::new(path.trim()).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(RenderError::BadPath {
                    path: path.to_string(),
                    problem: "must be relative to the repository root and stay inside it".into(),
                });
            }
        }
    }
    Ok(out)
}

fn display_path(relative: &Path) -> String {
    if relative.as_os_str().is_empty() {
        ".".into()
    } else {
        relative.display().to_string()
    }
}

/// Manifest files under `dir`, depth first in name order, hidden entries skipped.
fn collect_files(
    dir: &Path,
    relative: &Path,
    out: &mut Vec<(PathBuf, String)>,
) -> Result<(), RenderError> {
    let read_err = |source| RenderError::Read {
        file: display_path(relative),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if name_text.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = relative.join(&name);
        if path.is_dir() {
            collect_files(&path, &rel, out)?;
        } else if [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name_text.ends_with(ext))
        {
            out.push((path, rel.display().to_string()));
        }
    }
    Ok(())
}

/// Every object of one file, each with the line its document starts at.
pub fn parse_file(file: &str, bytes: &[u8]) -> Result<Vec<Manifest>, RenderError> {
    let parse_err = |line: usize, message: String| RenderError::Parse {
        file: file.to_string(),
        line,
        message,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| parse_err(1, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let mut manifests = Vec::new();
    if text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
    {
        for object in parse_documents(text.as_bytes()).map_err(|e| parse_err(1, e.to_string()))? {
            push_objects(file, 1, object, &mut manifests);
        }
        return Ok(manifests);
    }
    for (line, document) in split_yaml_documents(text) {
        let objects =
            parse_documents(document.as_bytes()).map_err(|e| parse_err(line, e.to_string()))?;
        for object in objects {
            push_objects(file, line, object, &mut manifests);
        }
    }
    Ok(manifests)
}

/// Adds an object, or the items of a `v1/List`, which kubectl also accepts.
fn push_objects(file: &str, line: usize, object: Value, out: &mut Vec<Manifest>) {
    let is_list = object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && object.get("kind").and_then(Value::as_str) == Some("List");
    if let (true, Some(Value::Array(items))) = (is_list, object.get("items")) {
        for item in items {
            out.push(Manifest {
                origin: Origin {
                    file: file.to_string(),
                    line,
                },
                object: item.clone(),
            });
        }
        return;
    }
    out.push(Manifest {
        origin: Origin {
            file: file.to_string(),
            line,
        },
        object,
    });
}

/// Splits a YAML stream at `---` lines, returning each document with its first line number.
/// Separators are recognised only at column 0, as the YAML spec requires.
fn split_yaml_documents(text: &str) -> Vec<(usize, String)> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        let is_separator =
            line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line == "...";
        if is_separator {
            documents.push((start, std::mem::take(&mut current)));
            start = index + 2;
            // `--- key: value` starts the next document on the separator line itself.
            if let Some(rest) = line.strip_prefix("--- ") {
                current.push_str(rest);
                current.push('\n');
                start = index + 1;
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    documents.push((start, current));
    documents
        .into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|(line, d)| {
            // Report the first non-blank, non-comment line as the document's start.
            let skip = d
                .lines()
                .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
                .count();
            (line + skip, d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn plain_folders_render_every_yaml_file_in_order_with_lines() {
        let repo = tempfile::tempdir().unwrap();
        write(
            repo.path(),
            "apps/b.yaml",
            "# comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        );
        write(
            repo.path(),
            "apps/a/x.yml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n",
        );
        write(
            repo.path(),
            "apps/.hidden/y.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: y\n",
        );
        write(repo.path(), "apps/README.md", "not yaml");
        write(
            repo.path(),
            "apps/list.json",
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}]}"#,
        );
        let manifests = Renderer::default().render(repo.path(), "apps").unwrap();
        let seen: Vec<String> = manifests
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m.origin,
                    m.object["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                "apps/a/x.yml:1 x",
                "apps/b.yaml:2 b",
                "apps/b.yaml:9 c",
                "apps/list.json:1 j"
            ]
        );
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let repo = tempfile::tempdir().unwrap();
        write(
            repo.path(),
            "bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\n---\nkey: [unclosed\n",
        );
        let err = Renderer::default().render(repo.path(), "").unwrap_err();
        assert!(err.to_string().starts_with("bad.yaml:4: "), "{err}");
    }

    #[test]
    fn paths_cannot_leave_the_checkout() {
        let repo = tempfile::tempdir().unwrap();
        for bad in ["../etc", "/etc", "a/../../b"] {
            let err = Renderer::default().render(repo.path(), bad).unwrap_err();
            assert!(matches!(err, RenderError::BadPath { .. }), "{bad}: {err}");
        }
        let err = Renderer::default()
            .render(repo.path(), "missing")
            .unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
    }

    #[test]
    fn separators_only_at_column_zero() {
        let docs = split_yaml_documents("a: |\n  ---\n  text\n---\nb: 1\n--- c: 2\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].0, 1);
        assert!(docs[0].1.contains("  ---"));
        assert_eq!(docs[1].0, 5);
        assert_eq!(docs[2].0, 6);
    }
}
