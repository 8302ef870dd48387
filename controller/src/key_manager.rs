//! Loading, watching, generating and renewing sealing keys against the API server.
//!
//! Every replica watches the key Secrets all the time (added, changed and relabelled keys take
//! effect without a restart; an unreadable key Secret is logged and skipped, never fatal). A
//! key Secret deleted or relabelled while the watch was down is noticed when the watch lists
//! again ([`crate::relist`]), so a removed key never stays in use.
//! Only the leader generates keys. Before generating, it re-reads the key Secrets from the API
//! server, so a replica that just took over never adds a second key for the same renewal, and
//! it writes the new key only while its leadership holds.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use sealed_secrets_core::keys::generate_key_pair;
use tokio::sync::watch;

use crate::{
    args::KeyOrderPriority,
    keyring::{
        KEY_LABEL, KEY_LABEL_ACTIVE, KeyRing, key_from_secret, needs_new_key, new_key_secret,
        next_renewal,
    },
    leader::Leadership,
    relist::{RelistGaps, object_key},
};

/// How keys are made and renewed.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// Namespace of the key Secrets.
    pub namespace: String,
    /// `--key-prefix`.
    pub prefix: String,
    /// `--key-size`.
    pub size: usize,
    /// `--key-ttl`.
    pub ttl: Duration,
    /// `--my-cn`.
    pub common_name: String,
    /// `--key-renew-period` (zero: never).
    pub renew_period: Duration,
    /// `--key-cutoff-time`.
    pub cutoff: Option<jiff::Timestamp>,
    /// `--key-order-priority`.
    pub priority: KeyOrderPriority,
    /// `--privatekey-labels`.
    pub labels: Vec<(String, String)>,
    /// `--privatekey-annotations`.
    pub annotations: Vec<(String, String)>,
}

fn label_selector() -> String {
    format!("{KEY_LABEL}={KEY_LABEL_ACTIVE}")
}

fn register(ring: &KeyRing, secret: &Secret, priority: KeyOrderPriority) {
    match key_from_secret(secret, priority) {
        Ok(key) => {
            let name = key.secret_name.clone();
            let fingerprint = key.fingerprint.clone();
            if ring.register(key) {
                tracing::info!(secretname = %name, %fingerprint, "registered private key");
            }
        }
        Err(err) => tracing::error!(error = %err, "cannot use key Secret; skipping it"),
    }
}

/// Reads every key Secret (labelled ones and the legacy one) straight from the API server.
pub async fn load_keys(
    client: &Client,
    policy: &KeyPolicy,
    ring: &KeyRing,
) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &policy.namespace);
    let mut secrets = api
        .list(&ListParams::default().labels(&label_selector()))
        .await?
        .items;
    if let Some(legacy) = api.get_opt(&policy.prefix).await? {
        secrets.push(legacy);
    }
    // Upstream registers in creation order; ties of the ordering time keep the earlier one.
    secrets.sort_by_key(|s| s.metadata.creation_timestamp.as_ref().map(|t| t.0));
    for secret in &secrets {
        register(ring, secret, policy.priority);
    }
    Ok(())
}

/// Keeps `ring` in step with the key Secrets; sends `true` on `synced` after the first listing.
pub async fn watch_keys(
    client: Client,
    policy: KeyPolicy,
    ring: Arc<KeyRing>,
    synced: watch::Sender<bool>,
) {
    let api: Api<Secret> = Api::namespaced(client.clone(), &policy.namespace);
    if let Err(err) = load_keys(&client, &policy, &ring).await {
        tracing::error!(error = %err, "cannot list key Secrets; will keep watching");
    }
    let config = watcher::Config::default().labels(&label_selector());
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut gaps: RelistGaps<String> = RelistGaps::default();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %err, "key Secret watch failed; retrying");
                continue;
            }
        };
        let gap = gaps.observe(&event, |secret: &Secret| {
            Some((object_key(secret)?, secret.name_any()))
        });
        match event {
            watcher::Event::Apply(secret) | watcher::Event::InitApply(secret) => {
                // `register` replaces the entry of a Secret whose key changed.
                register(&ring, &secret, policy.priority);
            }
            watcher::Event::Delete(secret) => forget(&ring, &secret.name_any()),
            watcher::Event::InitDone => {
                // Deleted or relabelled while the watch was down.
                for name in gap.vanished {
                    forget(&ring, &name);
                }
                let _ = synced.send(true);
            }
            watcher::Event::Init => {}
        }
    }
}

/// Stops using the key of Secret `name` (deleted or relabelled). The legacy Secret has no
/// label and is never seen by the watch.
fn forget(ring: &KeyRing, name: &str) {
    if ring.unregister(name) {
        tracing::warn!(secretname = %name, "key Secret removed or relabelled; key no longer used");
    }
}

/// Generates one key and stores it (only while `leadership` holds); the ring learns it at
/// once.
pub async fn generate_key(
    client: &Client,
    policy: &KeyPolicy,
    ring: &KeyRing,
    leadership: &Leadership,
) -> anyhow::Result<()> {
    let (size, cn, ttl) = (policy.size, policy.common_name.clone(), policy.ttl);
    tracing::info!(size, "generating a new sealing key");
    let pair = tokio::task::spawn_blocking(move || {
        let ttl = jiff::SignedDuration::try_from(ttl)?;
        Ok::<_, anyhow::Error>(generate_key_pair(size, &cn, jiff::Timestamp::now(), ttl)?)
    })
    .await??;
    let secret = new_key_secret(
        &pair,
        &policy.prefix,
        &policy.namespace,
        &policy.labels,
        &policy.annotations,
    )?;
    if !leadership.holds() {
        anyhow::bail!("not the leader any more; the new key was not stored");
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), &policy.namespace);
    let created = api.create(&PostParams::default(), &secret).await?;
    tracing::info!(namespace = %policy.namespace, name = %created.name_any(), "New key written");
    tracing::info!(certificate = %pair.cert_pem, "Certificate generated");
    register(ring, &created, policy.priority);
    Ok(())
}

/// The leader's key loop: an initial key when needed, then one renewal per period (or on
/// SIGUSR1). Returns when leadership is lost.
pub async fn run_renewals(
    client: Client,
    policy: KeyPolicy,
    ring: Arc<KeyRing>,
    synced: watch::Receiver<bool>,
    manual: tokio::sync::mpsc::Receiver<()>,
    leadership: Leadership,
) {
    let lost = leadership.clone();
    tokio::select! {
        _ = renewals(client, policy, ring, synced, manual, leadership) => {}
        _ = lost.lost() => tracing::info!("key renewal stopped: not the leader any more"),
    }
}

async fn renewals(
    client: Client,
    policy: KeyPolicy,
    ring: Arc<KeyRing>,
    mut synced: watch::Receiver<bool>,
    mut manual: tokio::sync::mpsc::Receiver<()>,
    leadership: Leadership,
) {
    if synced.wait_for(|s| *s).await.is_err() {
        return;
    }
    let mut first = true;
    loop {
        // Fresh view from the API server: another replica may have renewed meanwhile.
        if let Err(err) = load_keys(&client, &policy, &ring).await {
            tracing::error!(error = %err, "cannot list key Secrets before renewal; retrying in 10s");
            tokio::time::sleep(Duration::from_secs(10)).await;
            continue;
        }
        let newest = ring.latest().map(|k| k.order_time);
        let now = jiff::Timestamp::now();
        let due = if first {
            needs_new_key(newest, policy.cutoff)
        } else {
            next_renewal(newest, policy.renew_period, now).is_some_and(|t| t <= now)
        };
        first = false;
        if due && let Err(err) = generate_key(&client, &policy, &ring, &leadership).await {
            tracing::error!(error = %err, "cannot generate a sealing key; retrying in 30s");
            tokio::time::sleep(Duration::from_secs(30)).await;
            first = ring.is_empty();
            continue;
        }
        let newest = ring.latest().map(|k| k.order_time);
        let wait = next_renewal(newest, policy.renew_period, jiff::Timestamp::now())
            .map(|t| t.duration_since(jiff::Timestamp::now()).unsigned_abs());
        tokio::select! {
            _ = sleep_or_forever(wait) => {}
            signal = manual.recv() => {
                if signal.is_none() { return; }
                tracing::info!("renewal requested (SIGUSR1)");
                if let Err(err) = generate_key(&client, &policy, &ring, &leadership).await {
                    tracing::error!(error = %err, "cannot generate a sealing key");
                }
            }
        }
    }
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait.max(Duration::from_millis(100))).await,
        None => futures::future::pending::<()>().await,
    }
}
