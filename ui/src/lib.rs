//! `kubeseal ui`: a local web UI for GitSyncs, their resource trees, drift and history,
//! SealedSecrets and the controller's keys, and a form that seals with the cluster's
//! certificate.
//!
//! It runs on the user's machine with the user's kubeconfig, so every request to the API
//! server is the user's own and the UI shows exactly what their RBAC allows; nothing new runs in
//! the cluster. It is its own crate so `kubeseal` stays a small command-line tool (this code is
//! reached only for `kubeseal ui`), and the page models ([`views`]) know nothing of HTTP, so an
//! in-cluster mode could serve them later.
//!
//! Safety of a local web server (see [`security`]): loopback by default, a login token printed
//! once and exchanged for an HttpOnly SameSite=Strict cookie, the Host header checked against
//! DNS rebinding, a CSRF token and Origin check on every write, a strict CSP with no inline
//! script, every value escaped by the template engine, and links only for http(s).

pub mod access;
pub mod pages;
pub mod security;
pub mod server;
pub mod views;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use access::Access;
use security::Secrets;

/// Where the seal form's certificate comes from: the controller through the API server's
/// service proxy, or `--cert`. Called once per seal, from a thread of its own.
pub trait CertificateSource: Send + Sync {
    /// The PEM certificate, or why it could not be had.
    fn fetch(&self) -> Result<Vec<u8>, String>;
    /// Where it comes from, for the page (`the controller kube-system/sealed-secrets-controller`).
    fn describe(&self) -> String;
}

/// What the UI needs to know besides the client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen (`127.0.0.1:0` by default: a random loopback port).
    pub address: SocketAddr,
    /// The kubeconfig context in use (shown on every page).
    pub context: String,
    /// The API server's URL (shown on every page).
    pub server: String,
    /// The context's namespace (the seal form's default, and where a user who may not list
    /// namespaces is looked for).
    pub default_namespace: String,
    /// The sealed-secrets controller's namespace (its keys).
    pub controller_namespace: String,
    /// `kubectl`, for kustomize renders on the drift page.
    pub kubectl: PathBuf,
    /// `git`, for fetching the applied revision on the drift page.
    pub git: PathBuf,
}

/// Why the UI could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address is not one a browser can be sent to.
    #[error(
        "--address {0}: give one IP address to listen on (such as 127.0.0.1:8080); the UI \
         answers only requests addressed to it"
    )]
    UnspecifiedAddress(SocketAddr),
    /// Binding failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("the web server stopped: {0}")]
    Serve(std::io::Error),
    /// No random bytes.
    #[error(transparent)]
    Random(#[from] security::RandomError),
    /// A temporary folder for Git checkouts could not be made.
    #[error("cannot create a temporary folder for Git checkouts: {0}")]
    TempDir(std::io::Error),
    /// The runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The client could not be built.
    #[error("cannot create the cluster client: {0}")]
    Client(String),
}

/// Dry runs of the drift page at once (each may send one request per object).
const CONCURRENT_DIFFS: usize = 2;

/// Everything a request handler reads.
pub struct App {
    /// The API server as the user.
    pub access: Access,
    /// Settings.
    pub settings: Settings,
    /// Login token, session and CSRF token.
    pub secrets: Secrets,
    /// Host header values answered.
    pub allowed_hosts: Vec<String>,
    /// The seal form's certificate.
    pub certificates: Arc<dyn CertificateSource>,
    /// Renders of applied revisions.
    pub renders: pages::RenderCache,
    /// Where Git checkouts go (removed when the UI stops).
    pub checkouts: tempfile::TempDir,
    /// Bounds concurrent dry runs.
    pub diffs: tokio::sync::Semaphore,
}

/// A UI bound to its address, not yet serving.
pub struct Bound {
    listener: tokio::net::TcpListener,
    pub(crate) app: Arc<App>,
}

impl Bound {
    /// The URL to open: the bound address with the login token.
    pub fn login_url(&self) -> String {
        format!(
            "http://{}/login?token={}",
            self.app.allowed_hosts[0],
            self.app.secrets.login_token()
        )
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), UiError> {
        axum::serve(self.listener, server::router(self.app))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(UiError::Serve)
    }
}

/// Refuses an address a browser cannot be sent to (`0.0.0.0`, `[::]`): the UI answers only
/// requests addressed to the address it listens on.
pub fn check_address(address: SocketAddr) -> Result<(), UiError> {
    if address.ip().is_unspecified() {
        return Err(UiError::UnspecifiedAddress(address));
    }
    Ok(())
}

/// Binds the UI: picks the port, makes the login token. Call inside a tokio runtime.
pub async fn bind(
    client: kube::Client,
    settings: Settings,
    certificates: Arc<dyn CertificateSource>,
) -> Result<Bound, UiError> {
    check_address(settings.address)?;
    let listener = tokio::net::TcpListener::bind(settings.address)
        .await
        .map_err(|source| UiError::Bind {
            address: settings.address,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| UiError::Bind {
        address: settings.address,
        source,
    })?;
    let app = App {
        access: Access::new(client, &settings.default_namespace),
        allowed_hosts: security::allowed_hosts(bound),
        secrets: Secrets::generate(bound.port())?,
        certificates,
        renders: Default::default(),
        checkouts: tempfile::Builder::new()
            .prefix("kubeseal-ui-")
            .tempdir()
            .map_err(UiError::TempDir)?,
        diffs: tokio::sync::Semaphore::new(CONCURRENT_DIFFS),
        settings,
    };
    Ok(Bound {
        listener,
        app: Arc::new(app),
    })
}

/// Runs the UI to the end: a runtime, the client from `config`, the bound server; `started`
/// gets the login URL once it listens. Stops on Ctrl-C (or SIGTERM).
pub fn run(
    config: kube::Config,
    settings: Settings,
    certificates: Arc<dyn CertificateSource>,
    started: impl FnOnce(&str),
) -> Result<(), UiError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(UiError::Runtime)?;
    runtime.block_on(async move {
        let client = kube::Client::try_from(config).map_err(|e| UiError::Client(e.to_string()))?;
        let bound = bind(client, settings, certificates).await?;
        started(&bound.login_url());
        bound.serve(stop_signal()).await
    })
}

async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async move {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
}

#[cfg(test)]
mod server_tests;
