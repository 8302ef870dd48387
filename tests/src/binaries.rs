//! Our executables under test (`controller`, `gitops-controller`, `kubeseal`): taken from
//! `SEALED_SECRETS_BIN_DIR`, else built once per test process with cargo; and `kubeseal` run
//! against a test cluster.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use serde_json::Value;

use crate::{
    assets::{resolve_path, workspace_root},
    cluster::Cluster,
    process::{COMMAND_TIMEOUT, run_command, scrub_env},
};

/// Our `controller`, `gitops-controller` and `kubeseal` executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The folder holding them.
    pub dir: PathBuf,
    /// `<dir>/controller`.
    pub controller: PathBuf,
    /// `<dir>/gitops-controller`.
    pub gitops_controller: PathBuf,
    /// `<dir>/kubeseal`.
    pub kubeseal: PathBuf,
}

impl Binaries {
    /// `SEALED_SECRETS_BIN_DIR` if set; else builds `sealed-secrets-controller` and
    /// `sealed-secrets-cli` once per test process with cargo (debug profile, honouring
    /// `CARGO_TARGET_DIR` and cargo config) and uses the executables cargo reports. Panics when
    /// they cannot be had. Call only after [`Assets::from_env`](crate::Assets::from_env) succeeded.
    pub fn get() -> &'static Binaries {
        static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();
        match BINARIES.get_or_init(Self::locate) {
            Ok(binaries) => binaries,
            Err(err) => panic!("cannot get the binaries under test: {err}"),
        }
    }

    fn locate() -> Result<Binaries, String> {
        let exe = |name: &str| format!("{name}{}", std::env::consts::EXE_SUFFIX);
        if let Some(dir) = std::env::var_os("SEALED_SECRETS_BIN_DIR").filter(|d| !d.is_empty()) {
            let dir = resolve_path(Path::new(&dir));
            let binaries = Binaries {
                controller: dir.join(exe("controller")),
                gitops_controller: dir.join(exe("gitops-controller")),
                kubeseal: dir.join(exe("kubeseal")),
                dir,
            };
            for path in [
                &binaries.controller,
                &binaries.gitops_controller,
                &binaries.kubeseal,
            ] {
                if !path.is_file() {
                    return Err(format!("SEALED_SECRETS_BIN_DIR has no {}", path.display()));
                }
            }
            return Ok(binaries);
        }
        let cargo = std::env::var_os("CARGO")
            .filter(|c| !c.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO")));
        let root = workspace_root();
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root).args([
            "build",
            "--manifest-path",
            &root.join("Cargo.toml").display().to_string(),
            "-p",
            "sealed-secrets-controller",
            "-p",
            "sealed-secrets-cli",
            "-p",
            "sealed-secrets-gitops",
            "--bins",
            "--message-format=json-render-diagnostics",
        ]);
        let out = run_command(&mut cmd, None, Duration::from_secs(30 * 60))?;
        if !out.status.success() {
            return Err(format!(
                "`cargo build -p sealed-secrets-controller -p sealed-secrets-cli -p sealed-secrets-gitops --bins` failed ({}):\n{}",
                out.status,
                out.stderr_text()
            ));
        }
        let mut controller = None;
        let mut gitops_controller = None;
        let mut kubeseal = None;
        for line in out.stdout_text().lines() {
            let Ok(msg) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let Some(path) = msg["executable"].as_str() else {
                continue;
            };
            match msg["target"]["name"].as_str() {
                Some("controller") => controller = Some(PathBuf::from(path)),
                Some("gitops-controller") => gitops_controller = Some(PathBuf::from(path)),
                Some("kubeseal") => kubeseal = Some(PathBuf::from(path)),
                _ => {}
            }
        }
        let controller = controller.ok_or("cargo reported no `controller` executable")?;
        let kubeseal = kubeseal.ok_or("cargo reported no `kubeseal` executable")?;
        let gitops_controller =
            gitops_controller.ok_or("cargo reported no `gitops-controller` executable")?;
        let dir = controller
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Binaries {
            dir,
            controller,
            gitops_controller,
            kubeseal,
        })
    }
}

/// Runs our `kubeseal` with `args`, `stdin` as input, and the cluster's admin kubeconfig in
/// `KUBECONFIG`: stdout on success, else the error with stderr.
pub fn kubeseal(cluster: &Cluster, args: &[&str], stdin: &[u8]) -> Result<String, String> {
    let mut cmd = Command::new(&Binaries::get().kubeseal);
    scrub_env(&mut cmd);
    cmd.args(args).env("KUBECONFIG", cluster.kubeconfig());
    run_command(&mut cmd, Some(stdin), COMMAND_TIMEOUT)?
        .stdout_or_failure(&format!("kubeseal {}", args.join(" ")))
}
