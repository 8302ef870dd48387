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

use sealed_secrets_core::documents::{
    content_line, json_stream_with_lines, message_line, parse_local_documents, split_yaml_stream,
};
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
    /// Upper bound of one `kubectl kustomize` run (it is killed after it); `None`: unbounded.
    timeout: Option<std::time::Duration>,
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
            timeout: None,
        }
    }

    /// Kills a `kubectl kustomize` that runs longer than `timeout` (a kustomization with a
    /// remote base can hang on the network; a controller must not wait for it forever).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Renderer {
        self.timeout = Some(timeout);
        self
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
        let stdout = kustomize_build_within(&self.kubectl, dir, self.timeout).map_err(|err| {
            let message = match err {
                KustomizeFailure::NotRun(e) => {
                    format!("cannot run {}: {e}", self.kubectl.display())
                }
                KustomizeFailure::Refused(lines) => {
                    lines[lines.len().saturating_sub(5)..].join("\n")
                }
            };
            RenderError::Kustomize {
                dir: shown.to_string(),
                message: message.replace(&dir.display().to_string(), shown),
            }
        })?;
        let label = format!("kustomize build {shown}");
        let mut manifests = parse_file(&label, &stdout)?;
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

/// Why `kubectl kustomize` gave no output.
#[derive(Debug)]
pub enum KustomizeFailure {
    /// kubectl could not be started.
    NotRun(std::io::Error),
    /// kubectl ran and refused: the non-blank lines of its error output (or its exit status).
    Refused(Vec<String>),
}

/// Runs `kubectl kustomize DIR` (kubectl bundles kustomize, as Argo CD and Flux render) and
/// returns the rendered stream. Shared by the sync engine and `kubeseal lint`.
pub fn kustomize_build(kubectl: &Path, dir: &Path) -> Result<Vec<u8>, KustomizeFailure> {
    kustomize_build_within(kubectl, dir, None)
}

/// [`kustomize_build`], killing kubectl when it runs longer than `timeout` (then the failure
/// is `Refused` with one line saying so).
pub fn kustomize_build_within(
    kubectl: &Path,
    dir: &Path,
    timeout: Option<std::time::Duration>,
) -> Result<Vec<u8>, KustomizeFailure> {
    let mut child = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(KustomizeFailure::NotRun)?;
    // Both pipes are drained on their own threads, so a large render cannot block kubectl
    // while we wait for it to exit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(err) => break Err(KustomizeFailure::NotRun(err)),
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            break Err(KustomizeFailure::Refused(vec![format!(
                "kubectl kustomize timed out after {:?}",
                timeout.unwrap_or_default()
            )]));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let status = status?;
    if status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&stderr);
    let mut lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        lines.push(format!("kubectl kustomize exited with {status}"));
    }
    Err(KustomizeFailure::Refused(lines))
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

/// Every object of one file, each with the line its object starts at.
pub fn parse_file(file: &str, bytes: &[u8]) -> Result<Vec<Manifest>, RenderError> {
    let parse_err = |line: usize, message: String| RenderError::Parse {
        file: file.to_string(),
        line,
        message,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| parse_err(1, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut manifests = Vec::new();
    if text.trim_start().starts_with('{') {
        let (objects, failure) = json_stream_with_lines(text);
        if let Some((line, message)) = failure {
            return Err(parse_err(line, format!("invalid JSON: {message}")));
        }
        for (line, _, object) in objects {
            push_objects(file, line, object, &mut manifests);
        }
        return Ok(manifests);
    }
    for (first_line, document) in split_yaml_stream(text) {
        let objects = parse_local_documents(document.as_bytes()).map_err(|e| {
            let message = e.to_string();
            let line = first_line + message_line(&message).unwrap_or(1) - 1;
            parse_err(line, message)
        })?;
        let line = content_line(first_line, document);
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
    fn separators_only_at_column_zero_and_json_objects_keep_their_lines() {
        let manifests = parse_file("a.yaml", b"a: |\n  ---\n  text\n---\nb: 1\n").unwrap();
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[0].object["a"], "---\ntext\n");
        assert_eq!(manifests[1].origin.line, 5);
        let manifests = parse_file("a.json", b"{\"a\": 1}\n{\n  \"b\": 2}\n").unwrap();
        let lines: Vec<usize> = manifests.iter().map(|m| m.origin.line).collect();
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn parse_errors_never_quote_the_file() {
        let err = parse_file(
            "db.yaml",
            b"kind: Secret\nstringData:\n  password: hunter2\n  x: [unclosed\n",
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("db.yaml:4: invalid YAML"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
