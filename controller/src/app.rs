//! Start-up wiring: flags → logging → client → keys → HTTP servers → leader election →
//! reconcilers, and an orderly shutdown on SIGTERM.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};
use sealed_secrets_core::{crypto::Decrypter, keys::PublicKey};
use tokio::sync::{mpsc, watch};

use sealed_secrets_process::{
    init_logging, kube_config, listen_address, serve, shutdown_signal, stop_future,
};

use crate::{
    args::{Args, parse_cutoff, parse_key_values, validate_key_prefix},
    http::{
        HttpConfig, KeyService, Timeouts, api_router, budget::RequestLimits, metrics_router,
        with_timeouts,
    },
    key_manager::{KeyPolicy, run_renewals, watch_keys},
    keyring::KeyRing,
    leader::{self, Leadership},
    metrics::Metrics,
    reconciler::{self, Context, ReconcileOptions},
};

/// The adapter between the HTTP API's port and the key ring: the API serves the sealing key's
/// certificate, seals with its public key and opens with every key. It lives in the wiring so
/// that the ring (the domain) does not depend on the HTTP layer, nor the HTTP layer on the ring.
impl KeyService for KeyRing {
    fn sealing_cert_pem(&self) -> Option<String> {
        self.latest().map(|k| k.cert_pem.clone())
    }

    fn sealing_public_key(&self) -> Option<PublicKey> {
        KeyRing::sealing_public_key(self)
    }

    fn decrypter(&self) -> Box<dyn Decrypter + '_> {
        Box::new(self.decrypter_for(None, None))
    }
}

/// Where the service account's namespace is mounted in a pod.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The key namespace: flag, `POD_NAMESPACE`, the service account's namespace, else `default`.
fn key_namespace(args: &Args) -> String {
    args.key_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .ok()
                .map(|ns| ns.trim().to_string())
                .filter(|ns| !ns.is_empty())
        })
        .unwrap_or_else(|| "default".to_string())
}

/// Upper bound of one API call that is not a watch: no read of a reply may stall longer, so a
/// hung API server or a half-open connection cannot block a worker forever.
pub const API_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Two clients from one configuration: one for single calls, every read bounded by
/// [`API_CALL_TIMEOUT`], and one for watches, whose long-lived streams kube's watcher guards
/// with its own idle timeout.
async fn clients(args: &Args) -> Result<(Client, Client)> {
    let config = kube_config(args.kubeconfig.as_deref()).await?;
    let mut calls = config.clone();
    calls.connect_timeout = Some(API_CALL_TIMEOUT.min(Duration::from_secs(10)));
    calls.read_timeout = Some(API_CALL_TIMEOUT);
    calls.write_timeout = Some(API_CALL_TIMEOUT);
    calls.reset_reader_on_write = true;
    let watches = config;
    let calls = Client::try_from(calls).context("cannot create the Kubernetes client")?;
    let watches = Client::try_from(watches).context("cannot create the Kubernetes client")?;
    Ok((calls, watches))
}

fn identity(args: &Args) -> String {
    args.leader_elect_id
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "controller".into());
            format!("{host}_{}", std::process::id())
        })
}

/// Checks the additional namespaces exist (404: skipped with a log line, as upstream).
async fn existing_namespaces(
    client: &Client,
    namespaces: Vec<String>,
    own: &str,
) -> Result<Vec<String>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut out = Vec::new();
    for ns in namespaces {
        if ns == own {
            out.push(ns);
            continue;
        }
        match api.get_opt(&ns).await {
            Ok(Some(_)) => out.push(ns),
            Ok(None) => tracing::warn!(namespace = %ns, "namespace doesn't exist"),
            Err(err) => return Err(anyhow!("cannot check namespace {ns}: {err}")),
        }
    }
    Ok(out)
}

/// Runs the controller until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> Result<()> {
    init_logging(&args.log_level, &args.log_format, args.log_info_stdout)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "Starting sealed-secrets controller"
    );
    if args.gitops {
        bail!(
            "--gitops was removed: the GitSync reconciler runs as its own least-privilege \
             controller, `gitops-controller` (chart value gitopsController.enabled=true; see \
             docs/gitops.md). The sealing controller no longer syncs Git repositories."
        );
    }
    validate_key_prefix(&args.key_prefix).map_err(|e| anyhow!(e))?;
    let cutoff = parse_cutoff(&args.key_cutoff_time).map_err(|e| anyhow!(e))?;
    let own_namespace = key_namespace(&args);
    let policy = KeyPolicy {
        namespace: own_namespace.clone(),
        prefix: args.key_prefix.clone(),
        size: args.key_size,
        ttl: args.key_ttl,
        common_name: args.my_cn.clone(),
        renew_period: args.renew_period(),
        cutoff,
        priority: args.key_order_priority,
        labels: parse_key_values(&args.privatekey_labels, "privatekey-labels")
            .map_err(|e| anyhow!(e))?,
        annotations: parse_key_values(&args.privatekey_annotations, "privatekey-annotations")
            .map_err(|e| anyhow!(e))?,
    };
    let api_addr = listen_address(&args.listen_addr)?;
    let metrics_addr = listen_address(&args.listen_metrics_addr)?;

    let (client, watch_client) = clients(&args).await?;
    let ring = Arc::new(KeyRing::default());
    let metrics = Arc::new(Metrics::new(concat!("v", env!("CARGO_PKG_VERSION"))));
    let (stop_tx, stop_rx) = watch::channel(false);

    tracing::info!(namespace = %own_namespace, "Searching for existing private keys");
    let (synced_tx, synced_rx) = watch::channel(false);
    tokio::spawn(watch_keys(
        watch_client.clone(),
        policy.clone(),
        Arc::clone(&ring),
        Arc::clone(&metrics),
        synced_tx,
    ));

    let http_config = HttpConfig {
        rate_limit: args.rate_limit,
        rate_limit_burst: args.rate_limit_burst,
        trusted_proxies: args.trusted_proxies.clone(),
        limits: RequestLimits {
            max_body_bytes: args.max_request_bytes,
            max_items: args.max_request_items,
        },
        crypto_workers: args.api_crypto_workers,
        ..HttpConfig::default()
    };
    let key_service: Arc<dyn KeyService> = ring.clone();
    let timeouts = Timeouts {
        read: args.read_timeout,
        write: args.write_timeout,
    };
    serve(
        api_addr,
        with_timeouts(
            api_router(key_service, Arc::clone(&metrics), http_config),
            timeouts,
        ),
        stop_rx.clone(),
        "HTTP server",
    )
    .await?;
    serve(
        metrics_addr,
        with_timeouts(metrics_router(Arc::clone(&metrics)), timeouts),
        stop_rx.clone(),
        "HTTP metrics server",
    )
    .await?;

    let leadership = if args.leader_elect {
        Leadership::elected()
    } else {
        Leadership::always()
    };
    let identity = identity(&args);
    let (campaign_stop_tx, campaign_stop_rx) = watch::channel(false);
    let campaign = args.leader_elect.then(|| {
        tokio::spawn(leader::run(
            client.clone(),
            own_namespace.clone(),
            args.leader_elect_lease_name.clone(),
            identity.clone(),
            leadership.clone(),
            campaign_stop_rx,
        ))
    });

    let (manual_tx, manual_rx) = mpsc::channel::<()>(1);
    #[cfg(unix)]
    {
        let manual_tx = manual_tx.clone();
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .context("cannot listen for SIGUSR1")?;
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                let _ = manual_tx.try_send(());
            }
        });
    }
    drop(manual_tx);

    let options = ReconcileOptions {
        update_status: args.update_status,
        accept_deprecated_v1_data: args.accept_deprecated_v1_data,
        max_unseal_retries: args.max_unseal_retries,
        self_heal: args.self_heal,
        old_gc_behavior: args.old_gc_behavior,
        skip_recreate: args.skip_recreate,
        workers: args.workers,
        label_selector: args.label_selector.clone(),
    };
    let namespaces = match args.watched_namespaces(&own_namespace) {
        None => vec![None],
        Some(list) => existing_namespaces(&client, list, &own_namespace)
            .await?
            .into_iter()
            .map(Some)
            .collect(),
    };

    let leader_work = {
        let (client, watch_client, ring, metrics, stop_rx, leadership) = (
            client.clone(),
            watch_client.clone(),
            Arc::clone(&ring),
            Arc::clone(&metrics),
            stop_rx.clone(),
            leadership.clone(),
        );
        async move {
            // Key renewal is the leader's alone.
            {
                let (client, ring, synced_rx, leadership) = (
                    client.clone(),
                    Arc::clone(&ring),
                    synced_rx.clone(),
                    leadership.clone(),
                );
                tokio::spawn(async move {
                    leadership.won().await;
                    run_renewals(client, policy, ring, synced_rx, manual_rx, leadership).await;
                });
            }
            // The watches run on every replica, leader or not, once the keys are read: a standby
            // keeps its caches warm and its backlog of what changed, and starts from them when
            // it takes over (see `backlog`). Only the leader reconciles.
            let mut synced = synced_rx;
            let _ = synced.wait_for(|s| *s).await;
            // Workers stop on SIGTERM, and as soon as leadership is lost.
            let (work_stop_tx, work_stop_rx) = watch::channel(false);
            {
                let (mut stop_rx, leadership) = (stop_rx.clone(), leadership.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop_rx.wait_for(|s| *s) => {}
                        _ = leadership.lost() => {}
                    }
                    let _ = work_stop_tx.send(true);
                });
            }
            let ctx = Arc::new(
                Context::new(client, ring, metrics, options)
                    .with_watch_client(watch_client)
                    .with_leadership(leadership),
            );
            let runs = namespaces
                .into_iter()
                .map(|ns| reconciler::run(Arc::clone(&ctx), ns, stop_future(work_stop_rx.clone())));
            futures::future::join_all(runs).await;
        }
    };
    let mut work = tokio::spawn(leader_work);

    let lost = leadership.clone();
    let lost_leadership = tokio::select! {
        _ = shutdown_signal() => false,
        _ = lost.lost() => true,
    };
    if lost_leadership {
        // Another replica leads now. The workers are stopping (nothing is written past the
        // deadline anyway); let them finish, then exit so the pod restarts as a candidate.
        tracing::error!("leadership lost; stopping the workers and exiting");
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, &mut work).await;
        let _ = stop_tx.send(true);
        bail!("lost the leader lease");
    }
    tracing::info!("shutting down");
    // Order matters for a clean handover: stop the workers and wait for them while still
    // holding the Lease, then stop campaigning (so the Lease cannot be taken back), then
    // release it for the next leader.
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, &mut work)
        .await
        .is_err()
    {
        tracing::warn!("workers did not stop in time");
        work.abort();
    }
    let _ = campaign_stop_tx.send(true);
    if let Some(campaign) = campaign {
        let _ = campaign.await;
        leader::release(
            client.clone(),
            &own_namespace,
            &args.leader_elect_lease_name,
            &identity,
        )
        .await;
    }
    Ok(())
}

/// How long the workers get to finish what they are doing on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
