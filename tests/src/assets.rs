//! Where the harness finds what it runs against, and the one line it prints when that is
//! missing.
//!
//! The envtest binaries come from the folder named by `KUBEBUILDER_ASSETS`, else from envtest's
//! default [`DEFAULT_ASSETS_DIR`]; without `kube-apiserver` and `etcd` there, every test prints
//! `skipping e2e: <reason>` ([`skip`]) and passes. Paths from the environment are resolved
//! against the current folder or the workspace root.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// Prints the one skip line, `skipping e2e: <reason>`, straight to the process's stderr so it
/// shows even though the test harness captures `println!` output of passing tests.
pub fn skip(reason: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "skipping e2e: {reason}");
    let _ = err.flush();
}

/// Returns the [`Assets`], or prints the skip line and returns from the calling test.
#[macro_export]
macro_rules! assets_or_skip {
    () => {
        match $crate::Assets::from_env() {
            Ok(assets) => assets,
            Err(reason) => {
                $crate::skip(&reason);
                return;
            }
        }
    };
}

/// Where envtest looks for its binaries when `KUBEBUILDER_ASSETS` is unset.
pub const DEFAULT_ASSETS_DIR: &str = "/usr/local/kubebuilder/bin";

/// The envtest binaries found through `KUBEBUILDER_ASSETS` (or envtest's default folder).
#[derive(Debug, Clone)]
pub struct Assets {
    /// The folder itself.
    pub dir: PathBuf,
    /// `$KUBEBUILDER_ASSETS/kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `$KUBEBUILDER_ASSETS/etcd`.
    pub etcd: PathBuf,
    /// `$KUBEBUILDER_ASSETS/kube-controller-manager` when present (only garbage collection of
    /// owned objects needs it; the harness does not start it, so tests that depend on GC must
    /// skip that assertion).
    pub kube_controller_manager: Option<PathBuf>,
}

impl Assets {
    /// Finds the binaries as envtest does: the folder named by `KUBEBUILDER_ASSETS`, else
    /// envtest's default [`DEFAULT_ASSETS_DIR`], and checks that `kube-apiserver` and `etcd`
    /// are there; the error is the reason to print in the skip line.
    pub fn from_env() -> Result<Assets, String> {
        let (dir, source) = match std::env::var_os("KUBEBUILDER_ASSETS") {
            Some(dir) if !dir.is_empty() => (
                resolve_path(Path::new(&dir)),
                format!("KUBEBUILDER_ASSETS={}", Path::new(&dir).display()),
            ),
            _ if Path::new(DEFAULT_ASSETS_DIR).is_dir() => (
                PathBuf::from(DEFAULT_ASSETS_DIR),
                format!("envtest's default folder {DEFAULT_ASSETS_DIR}"),
            ),
            _ => {
                return Err(format!(
                    "KUBEBUILDER_ASSETS is not set and {DEFAULT_ASSETS_DIR} does not exist (see tests/README.md)"
                ));
            }
        };
        if !dir.is_dir() {
            return Err(format!("{source} is not a directory"));
        }
        let kube_apiserver = dir.join("kube-apiserver");
        let etcd = dir.join("etcd");
        let missing: Vec<&str> = [("kube-apiserver", &kube_apiserver), ("etcd", &etcd)]
            .into_iter()
            .filter(|(_, path)| !path.is_file())
            .map(|(name, _)| name)
            .collect();
        if !missing.is_empty() {
            return Err(format!("{source} has no {}", missing.join(" and no ")));
        }
        let kcm = dir.join("kube-controller-manager");
        Ok(Assets {
            kube_controller_manager: kcm.is_file().then_some(kcm),
            dir,
            kube_apiserver,
            etcd,
        })
    }
}

/// An absolute form of a path from the environment: as given when absolute; else relative to
/// the current directory (cargo runs tests in this crate's folder) if it exists there, else
/// relative to the workspace root.
pub fn resolve_path(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let from_cwd = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    if from_cwd.exists() {
        return from_cwd;
    }
    let from_root = workspace_root().join(path);
    if from_root.exists() {
        from_root
    } else {
        from_cwd
    }
}

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
