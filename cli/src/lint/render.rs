//! Rendering kustomizations with `kubectl kustomize`, the same renderer Argo CD and Flux use
//! (kubectl bundles kustomize), so the lint sees exactly the names and namespaces the cluster
//! will. A missing kubectl is an I/O error (exit 2), not a finding: the lint could not look.

use std::{
    io,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, anyhow};

use super::parallel::parallel_map;

/// The outcome of rendering one kustomization.
#[derive(Debug)]
pub enum Rendered {
    /// The rendered YAML stream.
    Ok(String),
    /// kubectl ran and refused; its message (first lines of stderr).
    Failed(String),
}

/// Renders every directory in `dirs` with `kubectl kustomize`, in parallel.
pub fn render_all(kubectl: &str, dirs: &[PathBuf]) -> Result<Vec<Rendered>> {
    parallel_map(dirs, 4, |dir| render(kubectl, dir))
        .into_iter()
        .collect()
}

fn render(kubectl: &str, dir: &Path) -> Result<Rendered> {
    let output = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                anyhow!(
                    "{kubectl} not found: it is needed to render the kustomization in {} \
                     (`kubectl kustomize`); install kubectl or pass --kubectl PATH",
                    dir.display()
                )
            } else {
                anyhow!("cannot run {kubectl} kustomize {}: {e}", dir.display())
            }
        })?;
    if output.status.success() {
        return Ok(Rendered::Ok(
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    let message = if message.is_empty() {
        format!("kubectl kustomize exited with {}", output.status)
    } else {
        message.join(" ")
    };
    Ok(Rendered::Failed(message))
}
