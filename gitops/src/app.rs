//! Start-up wiring: flags → logging → client → verifier → tenancy → health and metrics
//! servers → one GitSync reconciler per watched scope, until SIGTERM.
//!
//! One replica runs at a time (the chart's Deployment uses the `Recreate` strategy): two
//! replicas would both apply, which server-side apply tolerates, but would double the load.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow, bail};
use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use kube::Client;
use sealed_secrets_sync::{
    cluster::Cluster,
    policy::SealedSecretVerifier,
    reconciler::{self, Context, Timeouts},
    render::Renderer,
    source::GitCli,
    tenancy::{Impersonating, TenancyPolicy},
};
use tokio::sync::watch;

use sealed_secrets_process::{
    init_logging, kube_config, listen_address, serve, shutdown_signal, stop_future,
};

use crate::{
    args::Args,
    metrics::Metrics,
    verify::ControllerVerifier,
    webhook::{WebhookNotifier, policy::TargetPolicy},
};

/// Upper bound of one API call that is not a watch.
const API_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long running syncs get to finish on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the GitSync controller until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> Result<()> {
    init_logging(&args.log_level, &args.log_format, false)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "Starting gitops-controller"
    );
    let health_addr = listen_address(&args.listen_addr)?;
    let metrics_addr = listen_address(&args.listen_metrics_addr)?;
    let config = kube_config(args.kubeconfig.as_deref()).await?;
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
    let target_policy = TargetPolicy {
        allowed: args.webhook_allow_targets.clone(),
        allow_http: args.webhook_allow_http,
        api_server: api_server_addresses(&config.cluster_url).await,
    };
    let notifier =
        WebhookNotifier::start(target_policy, Arc::clone(&metrics)).map_err(|e| anyhow!(e))?;
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
        .with_observer(Arc::clone(&metrics) as _)
        .with_events("gitops-controller")
        .with_notifier(Arc::new(notifier)),
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

/// The API server's addresses, which webhooks may not target: the kubeconfig's server (host
/// resolved now) and, in a pod, `KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT`.
async fn api_server_addresses(url: &http::Uri) -> Vec<std::net::SocketAddr> {
    let mut found = Vec::new();
    let mut hosts: Vec<(String, u16)> = Vec::new();
    if let Some(host) = url.host() {
        let port = url
            .port_u16()
            .unwrap_or(if url.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        hosts.push((host.trim_matches(['[', ']']).to_string(), port));
    }
    if let (Ok(host), Ok(port)) = (
        std::env::var("KUBERNETES_SERVICE_HOST"),
        std::env::var("KUBERNETES_SERVICE_PORT"),
    ) && let Ok(port) = port.parse()
    {
        hosts.push((host, port));
    }
    for (host, port) in hosts {
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        match tokio::time::timeout(Duration::from_secs(5), lookup).await {
            Ok(Ok(addresses)) => found.extend(addresses),
            _ => {
                tracing::warn!(host = %host, "cannot resolve the API server's address for the webhook guard")
            }
        }
    }
    found
}
