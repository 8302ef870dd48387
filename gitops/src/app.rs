//! Start-up wiring: flags → logging → client → verifier → tenancy → health and metrics
//! servers → one GitSync reconciler per watched scope, until SIGTERM.
//!
//! One replica runs at a time (the chart's Deployment uses the `Recreate` strategy): two
//! replicas would both apply, which server-side apply tolerates, but would double the load.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow, bail};
use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use sealed_secrets_sync::{
    cluster::Cluster,
    policy::SealedSecretVerifier,
    reconciler::{self, Context, Timeouts},
    render::Renderer,
    source::GitCli,
    tenancy::{Impersonating, TenancyPolicy},
};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::{args::Args, metrics::Metrics, verify::ControllerVerifier};

/// Upper bound of one API call that is not a watch.
const API_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long running syncs get to finish on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn init_logging(args: &Args) -> Result<()> {
    let level = match args.log_level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" => "error",
        other => bail!("--log-level: unknown level {other:?} (DEBUG, INFO, WARN, ERROR)"),
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},kube=warn,hyper=warn,tower=warn")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = match args.log_format.as_str() {
        "json" => builder.json().try_init(),
        "text" => builder.try_init(),
        other => bail!("--log-format: unknown format {other:?} (text, json)"),
    };
    result.map_err(|e| anyhow!("cannot initialise logging: {e}"))
}

/// Go-style listen address (`:8080`) to a socket address.
pub fn listen_address(text: &str) -> Result<SocketAddr> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    full.parse()
        .with_context(|| format!("invalid listen address {text:?}"))
}

async fn client_config(args: &Args) -> Result<Config> {
    match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))
        }
        None => Config::infer()
            .await
            .context("cannot configure the Kubernetes client"),
    }
}

async fn serve(
    addr: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))?;
    tracing::info!(addr = %addr, "{what} serving");
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(err) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "{what} failed");
        }
    });
    Ok(())
}

/// Runs the controller until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> Result<()> {
    init_logging(&args)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "Starting gitops-controller"
    );
    let health_addr = listen_address(&args.listen_addr)?;
    let metrics_addr = listen_address(&args.listen_metrics_addr)?;
    let config = client_config(&args).await?;
    // Single calls are bounded; watches (GitSyncs, drift) use kube's watcher timeouts. The
    // impersonating clients are built from the bounded configuration too.
    let mut calls = config.clone();
    calls.connect_timeout = Some(Duration::from_secs(10));
    calls.read_timeout = Some(API_CALL_TIMEOUT);
    calls.write_timeout = Some(API_CALL_TIMEOUT);
    let client = Client::try_from(calls.clone()).context("cannot create the Kubernetes client")?;
    let own = Cluster::new(client.clone());

    let verifier: Arc<dyn SealedSecretVerifier> = match &args.controller_url {
        Some(url) => Arc::new(ControllerVerifier::direct(url).map_err(|e| anyhow!(e))?),
        None => Arc::new(ControllerVerifier::service_proxy(
            client.clone(),
            &args.controller_namespace,
            &args.controller_name,
        )),
    };
    let policy = TenancyPolicy {
        default_service_account: args
            .default_service_account
            .clone()
            .filter(|s| !s.is_empty()),
        allow_controller_identity: args.allow_controller_identity,
    };
    if policy.default_service_account.is_none() && !policy.allow_controller_identity {
        tracing::info!(
            "no --default-service-account: GitSyncs without spec.serviceAccountName are refused"
        );
    }
    let metrics = Arc::new(Metrics::new());
    let timeouts = Timeouts {
        fetch: args.fetch_timeout,
        render: args.render_timeout,
        apply: args.apply_timeout,
    };
    let source =
        GitCli::new(args.git.clone(), args.cache_dir.clone()).with_timeout(args.fetch_timeout);
    let ctx = Arc::new(
        Context::new(
            own.clone(),
            Arc::new(source),
            Renderer::new(args.kubectl.clone()).with_timeout(args.render_timeout),
            Some(verifier),
        )
        .with_tenancy(Arc::new(Impersonating::new(calls, own)), policy)
        .with_concurrency(usize::from(args.concurrent))
        .with_timeouts(timeouts)
        .with_observer(Arc::clone(&metrics) as _),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let health = Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n").into_response() });
    serve(health_addr, health, stop_rx.clone(), "health server").await?;
    let metrics_router = {
        let metrics = Arc::clone(&metrics);
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            crate::metrics::CONTENT_TYPE,
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
    };
    serve(
        metrics_addr,
        metrics_router,
        stop_rx.clone(),
        "metrics server",
    )
    .await?;

    tracing::info!(cache = %args.cache_dir.display(), concurrent = args.concurrent, "Starting GitSync reconciler");
    let scopes: Vec<Option<String>> = match args.namespaces() {
        None => vec![None],
        Some(list) => list.into_iter().map(Some).collect(),
    };
    let runs: Vec<_> = scopes
        .into_iter()
        .map(|ns| {
            let stop = stop_future(stop_rx.clone());
            tokio::spawn(reconciler::run(Arc::clone(&ctx), ns, stop))
        })
        .collect();
    let mut work = tokio::spawn(futures::future::join_all(runs));

    tokio::select! {
        _ = shutdown_signal() => {}
        _ = &mut work => bail!("the GitSync reconciler stopped"),
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, &mut work)
        .await
        .is_err()
    {
        tracing::warn!("syncs did not stop in time");
        work.abort();
    }
    Ok(())
}

/// A `Send + Sync` future that resolves when `stop` turns true.
fn stop_future(
    mut stop: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    let (fire, fired) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        let _ = fire.send(());
    });
    async move {
        let _ = fired.await;
    }
}

async fn shutdown_signal() {
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
        assert!(listen_address("nope").is_err());
    }
}
