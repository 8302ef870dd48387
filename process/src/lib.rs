//! Process plumbing shared by the workspace's servers (`controller` and `gitops-controller`):
//! the same flags must mean the same thing in both, so the code that reads them lives once.
//!
//! - [`init_logging`]: upstream's `--log-level`/`--log-format` semantics on `tracing`;
//! - [`listen_address`]: Go-style listen addresses (`:8080`);
//! - [`kube_config`]: `--kubeconfig`, else in-cluster, else `KUBECONFIG`/`~/.kube/config`;
//! - [`serve`]: an axum server that stops when told to;
//! - [`shutdown_signal`] and [`stop_future`]: SIGTERM/Ctrl-C, and the `Sync` stop future
//!   kube's controllers want;
//! - [`run_to_exit`]: a binary's `main` around its async `run`.
//!
//! Errors are typed ([`ProcessError`]); the binaries add context with `anyhow` at their edge.

use std::{future::Future, net::SocketAddr, path::Path};

use kube::{
    Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::sync::watch;
use tracing_subscriber::{
    EnvFilter,
    fmt::writer::{BoxMakeWriter, MakeWriterExt},
};

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// `--log-level` is not one of upstream's.
    #[error("--log-level: unknown level {0:?} (DEBUG, INFO, WARN, ERROR)")]
    LogLevel(String),
    /// `--log-format` is neither `text` nor `json`.
    #[error("--log-format: unknown format {0:?} (text, json)")]
    LogFormat(String),
    /// A global subscriber was already installed.
    #[error("cannot initialise logging: {0}")]
    Logging(String),
    /// A listen address does not parse.
    #[error("invalid listen address {text:?}")]
    ListenAddress {
        /// What was given.
        text: String,
        /// Why it does not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// The kubeconfig file cannot be read.
    #[error("cannot read --kubeconfig {path}")]
    ReadKubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig file is not usable.
    #[error("invalid kubeconfig {path}")]
    InvalidKubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither in-cluster configuration nor a kubeconfig was found.
    #[error("cannot configure the Kubernetes client")]
    InferConfig(#[source] kube::config::InferConfigError),
    /// A server cannot listen.
    #[error("cannot listen on {addr} ({what})")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Which server.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Installs the global `tracing` subscriber: `level` as upstream spells it (`DEBUG`, `INFO`,
/// `WARN`, `ERROR`; `RUST_LOG` overrides), `format` `text` or `json`. With `info_to_stdout`,
/// warnings and errors go to stderr and the rest to stdout (upstream's `--log-info-stdout`);
/// otherwise everything goes to stderr.
pub fn init_logging(level: &str, format: &str, info_to_stdout: bool) -> Result<(), ProcessError> {
    let level = match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" => "error",
        _ => return Err(ProcessError::LogLevel(level.to_string())),
    };
    if format != "json" && format != "text" {
        return Err(ProcessError::LogFormat(format.to_string()));
    }
    // kube's client logs every failed request itself (`kube_client::client::builder`, at
    // error) and every watch body cut short (`eof in poll`, at warn): an API server restart
    // printed dozens of errors and warnings that our code also gets as results, retries and
    // logs with context at the level they deserve. Its own errors still show.
    // Audit records (target `audit`, the GitOps controller's sync and drift trail) are kept
    // at any level: a log shipper holds the durable trail after Events expire.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},audit=info,kube=warn,kube_client=error,kube_client::client::builder=off,hyper=warn,tower=warn"
        ))
    });
    let writer = if info_to_stdout {
        BoxMakeWriter::new(
            std::io::stderr
                .with_max_level(tracing::Level::WARN)
                .or_else(std::io::stdout),
        )
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let result = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| ProcessError::Logging(e.to_string()))
}

/// A Go-style listen address (`:8080` means every interface) as a socket address.
pub fn listen_address(text: &str) -> Result<SocketAddr, ProcessError> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    full.parse().map_err(|source| ProcessError::ListenAddress {
        text: text.to_string(),
        source,
    })
}

/// The Kubernetes client configuration: `kubeconfig` when given, else in-cluster, else
/// `KUBECONFIG`/`~/.kube/config` (kube's inference).
pub async fn kube_config(kubeconfig: Option<&Path>) -> Result<Config, ProcessError> {
    match kubeconfig {
        Some(path) => {
            let shown = path.display().to_string();
            let file =
                Kubeconfig::read_from(path).map_err(|source| ProcessError::ReadKubeconfig {
                    path: shown.clone(),
                    source,
                })?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|source| ProcessError::InvalidKubeconfig {
                    path: shown,
                    source,
                })
        }
        None => Config::infer().await.map_err(ProcessError::InferConfig),
    }
}

/// Binds `addr` and serves `router` in the background until `stop` turns true. The handlers
/// see the peer address (`ConnectInfo<SocketAddr>`).
pub async fn serve(
    addr: SocketAddr,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
) -> Result<(), ProcessError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ProcessError::Listen { addr, what, source })?;
    tracing::info!(addr = %addr, "{what} serving");
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(err) = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "{what} failed");
        }
    });
    Ok(())
}

/// A `Send + Sync` future that resolves when `stop` turns true (kube's controllers want a
/// `Sync` shutdown future; a oneshot fired on stop is one).
pub fn stop_future(
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + Sync + 'static {
    let (fire, fired) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        let _ = fire.send(());
    });
    async move {
        let _ = fired.await;
    }
}

/// Runs `run` on a multi-threaded runtime and turns its outcome into the process's exit code:
/// success, or `error: <message>` (with its causes, `{:#}`) on stderr and exit code 1.
pub fn run_to_exit<E: std::fmt::Display>(
    run: impl Future<Output = Result<(), E>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_listen_addresses() {
        assert_eq!(
            listen_address(":8080").unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            listen_address("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        let err = listen_address("nope").unwrap_err();
        assert_eq!(err.to_string(), "invalid listen address \"nope\"");
    }

    #[test]
    fn bad_logging_flags_are_named() {
        assert_eq!(
            init_logging("LOUD", "text", false).unwrap_err().to_string(),
            "--log-level: unknown level \"LOUD\" (DEBUG, INFO, WARN, ERROR)"
        );
        assert_eq!(
            init_logging("INFO", "xml", false).unwrap_err().to_string(),
            "--log-format: unknown format \"xml\" (text, json)"
        );
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_is_named() {
        let err = kube_config(Some(Path::new("/nonexistent/kubeconfig")))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read --kubeconfig /nonexistent/kubeconfig"
        );
    }

    #[test]
    fn run_to_exit_reports_failure() {
        assert_eq!(
            run_to_exit(async { Err::<(), _>("boom") }),
            std::process::ExitCode::FAILURE
        );
        assert_eq!(
            run_to_exit(async { Ok::<(), &str>(()) }),
            std::process::ExitCode::SUCCESS
        );
    }

    #[tokio::test]
    async fn stop_future_resolves_when_stop_turns_true() {
        let (tx, rx) = watch::channel(false);
        let stopped = stop_future(rx);
        tx.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), stopped)
            .await
            .expect("resolved");
    }
}
