//! Rendering kustomizations with `kubectl kustomize`, the same renderer Argo CD and Flux use
//! (kubectl bundles kustomize), so the lint sees exactly the names and namespaces the cluster
//! will. A missing kubectl is an I/O error (exit 2), not a finding: the lint could not look.

use std::{
    io,
    path::{Path, PathBuf},
};

use anyhow::{Result, anyhow};
use sealed_secrets_sync::render::{KustomizeFailure, kustomize_build};

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
    match kustomize_build(Path::new(kubectl), dir) {
        Ok(stdout) => Ok(Rendered::Ok(String::from_utf8_lossy(&stdout).into_owned())),
        Err(KustomizeFailure::NotRun(e)) if e.kind() == io::ErrorKind::NotFound => Err(anyhow!(
            "{kubectl} not found: it is needed to render the kustomization in {} \
             (`kubectl kustomize`); install kubectl or pass --kubectl PATH",
            dir.display()
        )),
        Err(KustomizeFailure::NotRun(e)) => Err(anyhow!(
            "cannot run {kubectl} kustomize {}: {e}",
            dir.display()
        )),
        Err(KustomizeFailure::Refused(lines)) => {
            let first: Vec<&str> = lines.iter().take(3).map(String::as_str).collect();
            Ok(Rendered::Failed(first.join(" ")))
        }
    }
}
