//! `kubeseal ui`: starts the local web UI (crate `sealed-secrets-ui`) with the user's own
//! kubeconfig, resolved by the same loader and flags as every online kubeseal mode. Only this
//! subcommand reaches the UI's code; the offline modes never start it.

use std::{
    ffi::OsString, io::Write as _, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc,
};

use anyhow::{Context as _, Result, anyhow};
use clap::{ArgAction, Parser};

use crate::{
    args::{Args, Connection, KubeOverrides, upstream_with},
    cert_source::read_cert_source,
    cluster::{Controller, config::client_config},
    kubeconfig::select::resolve,
};

/// Flags of `kubeseal ui`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubeseal ui",
    about = "Start a local web UI: GitSyncs, their resources, drift and history, SealedSecrets, \
             the controller's keys, and a form that seals with the cluster's certificate.",
    long_about = "Starts a web server on this machine that talks to the API server with your \
                  kubeconfig, as you: it shows what your RBAC lets you see, and installs nothing \
                  in the cluster. It prints a URL with a login token; open it in a \
                  browser (or pass --open). Read-only, except the actions a GitSync page offers \
                  when the API server says you may (sync now, suspend, resume). Stop with Ctrl-C.",
    max_term_width = 100
)]
struct UiArgs {
    /// Address to listen on: one IP address and port (0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    address: SocketAddr,
    /// Open the URL in the browser ($BROWSER, else xdg-open).
    #[arg(long, action = ArgAction::SetTrue)]
    open: bool,
    /// Certificate the seal form uses (file, URL or env as kubeseal --cert); by default the
    /// controller's, fetched through the API server for each seal.
    #[arg(long, env = "SEALED_SECRETS_CERT", default_value = "")]
    cert: String,
    /// Namespace of the sealed-secrets controller.
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    controller_namespace: String,
    /// Name of the sealed-secrets controller's Service.
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    controller_name: String,
    /// Path to the kubeconfig file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeOverrides,
}

/// The seal form's certificate: `--cert`, or the controller's through the service proxy.
struct Certificates {
    args: Args,
}

impl sealed_secrets_ui::CertificateSource for Certificates {
    fn fetch(&self) -> Result<Vec<u8>, String> {
        let result = if self.args.cert.is_empty() {
            Controller::connect(&self.args, "cannot fetch certificate").and_then(|c| c.fetch_cert())
        } else {
            read_cert_source(&self.args.cert)
        };
        result.map_err(|e| format!("{e:#}"))
    }

    fn describe(&self) -> String {
        if self.args.cert.is_empty() {
            format!(
                "the certificate of the controller {}/{} (fetched through the API server for each seal)",
                self.args.controller_namespace, self.args.controller_name
            )
        } else {
            format!("the certificate from --cert {}", self.args.cert)
        }
    }
}

/// Entry point for `kubeseal ui ...` (arguments after `ui`).
pub fn main(argv: impl Iterator<Item = OsString>) -> ExitCode {
    let args: UiArgs = match crate::args::parse_subcommand("ui", argv) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: UiArgs) -> Result<()> {
    sealed_secrets_ui::check_address(args.address).map_err(|e| anyhow!("{e}"))?;
    let mut upstream = upstream_with(Connection {
        kubeconfig: args.kubeconfig.clone(),
        kube: args.kube.clone(),
        controller_name: Some(args.controller_name.clone()),
        controller_namespace: args.controller_namespace.clone(),
    })
    .map_err(|e| anyhow!("{e}"))?;
    upstream.cert = args.cert.clone();
    let kubeconfig = resolve(&upstream)?;
    let context = kubeconfig
        .current_context
        .clone()
        .unwrap_or_else(|| "(in-cluster)".into());
    let config = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(client_config(&upstream))?;
    let settings = sealed_secrets_ui::Settings {
        address: args.address,
        context,
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string(),
        default_namespace: args
            .kube
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| config.default_namespace.clone()),
        controller_namespace: args.controller_namespace.clone(),
        kubectl: std::env::var_os("KUBECTL").map_or_else(|| "kubectl".into(), PathBuf::from),
        git: "git".into(),
    };
    let open = args.open;
    sealed_secrets_ui::run(
        config,
        settings,
        Arc::new(Certificates { args: upstream }),
        |url| {
            // Not println!: a closed stdout must not stop the server.
            let mut out = std::io::stdout();
            let _ = writeln!(out, "kubeseal ui: open {url}");
            let _ = writeln!(
                out,
                "(the link logs this browser in once; stop with Ctrl-C)"
            );
            let _ = out.flush();
            if open {
                open_browser(url);
            }
        },
    )
    .map_err(|e| anyhow!("{e}"))
}

/// Starts the browser on `url` without waiting for it; says so when it cannot.
fn open_browser(url: &str) {
    let program = std::env::var_os("BROWSER").unwrap_or_else(|| "xdg-open".into());
    if let Err(e) = std::process::Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!(
            "kubeseal ui: cannot start {}: {e}; open the URL above by hand",
            program.to_string_lossy()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_with_a_random_port() {
        let args = UiArgs::try_parse_from(["kubeseal ui"]).unwrap();
        assert_eq!(args.address, "127.0.0.1:0".parse().unwrap());
        assert!(!args.open);
        let err = UiArgs::try_parse_from(["kubeseal ui", "--address", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("--address"), "{err}");
    }

    #[test]
    fn an_unspecified_address_is_refused_before_anything_else() {
        let args = UiArgs::try_parse_from([
            "kubeseal ui",
            "--address",
            "0.0.0.0:8080",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ])
        .unwrap();
        let err = run(args).unwrap_err().to_string();
        assert!(
            err.starts_with("--address 0.0.0.0:8080: give one IP address"),
            "{err}"
        );
    }
}
