//! Loading, watching, generating and renewing sealing keys against the API server.
//!
//! Every replica watches the key Secrets all the time (added, changed and relabelled keys take
//! effect without a restart; an unreadable key Secret is logged and skipped, never fatal). A
//! key Secret deleted or relabelled while the watch was down is noticed when the watch lists
//! again ([`crate::relist`]), so a removed key never stays in use.
//! Only the leader generates keys. Before generating, it re-reads the key Secrets from the API
//! server, so a replica that just took over never adds a second key for the same renewal, and
//! it writes the new key only while its leadership holds.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use sealed_secrets_core::{
    key_secret::{
        BACKED_UP_ANNOTATION, KEY_LABEL, KeySecretParts, LABEL_ACTIVE, LABEL_RETIRED,
        new_key_secret,
    },
    keys::generate_key_pair,
};
use tokio::sync::watch;

use crate::{
    args::KeyOrderPriority,
    keyring::{KeyRing, key_from_secret, needs_new_key, next_renewal},
    leader::Leadership,
    metrics::{KeyReport, Metrics},
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
    format!("{KEY_LABEL}={LABEL_ACTIVE}")
}

/// What the key metrics need of one key Secret (never key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenKey {
    /// Public key fingerprint.
    pub fingerprint: String,
    /// Ordering time.
    pub created: jiff::Timestamp,
    /// When a backup last included it.
    pub backed_up: Option<jiff::Timestamp>,
    /// Labelled `active` (else retired or another value: not used).
    pub active: bool,
}

/// The key metrics' rows: every registered key (`sealing` for the one that seals, else
/// `active`) and every labelled key Secret that is not active (`retired`) (pure).
pub fn key_reports(ring: &KeyRing, seen: &HashMap<String, SeenKey>) -> Vec<KeyReport> {
    let sealing = ring.latest().map(|k| k.fingerprint.clone());
    let backed_up = |fingerprint: &str| {
        seen.values()
            .filter(|k| k.fingerprint == fingerprint)
            .filter_map(|k| k.backed_up)
            .max()
    };
    let mut reports: Vec<KeyReport> = ring
        .keys()
        .iter()
        .map(|key| KeyReport {
            fingerprint: key.fingerprint.clone(),
            state: if sealing.as_deref() == Some(key.fingerprint.as_str()) {
                "sealing"
            } else {
                "active"
            },
            created: key.order_time,
            backed_up: backed_up(&key.fingerprint),
        })
        .collect();
    for key in seen.values().filter(|k| !k.active) {
        if reports.iter().all(|r| r.fingerprint != key.fingerprint) {
            reports.push(KeyReport {
                fingerprint: key.fingerprint.clone(),
                state: LABEL_RETIRED,
                created: key.created,
                backed_up: key.backed_up,
            });
        }
    }
    reports.sort_by(|a, b| {
        a.created
            .cmp(&b.created)
            .then(a.fingerprint.cmp(&b.fingerprint))
    });
    reports
}

fn is_active(secret: &Secret) -> bool {
    KeySecretParts::from_secret(secret).is_active()
}

fn seen_key(secret: &Secret, priority: KeyOrderPriority) -> Option<SeenKey> {
    let key = key_from_secret(secret, priority.into()).ok()?;
    let backed_up = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BACKED_UP_ANNOTATION))
        .and_then(|t| t.parse().ok());
    Some(SeenKey {
        fingerprint: key.fingerprint,
        created: key.order_time,
        backed_up,
        active: is_active(secret),
    })
}

fn register(ring: &KeyRing, secret: &Secret, priority: KeyOrderPriority) {
    match key_from_secret(secret, priority.into()) {
        Ok(key) => {
            let name = key.secret_name.clone();
            let fingerprint = key.fingerprint.clone();
            if ring.register(key) {
                tracing::info!(secretname = %name, %fingerprint, "registered private key");
            }
        }
        Err(err) => tracing::error!(
            secretname = %secret.name_any(),
            error = %err,
            "cannot use key Secret; skipping it"
        ),
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

/// Keeps `ring` in step with the key Secrets (only `active` ones are used; a retired or
/// relabelled one is dropped at once) and the key metrics with every labelled key Secret;
/// sends `true` on `synced` after the first listing.
pub async fn watch_keys(
    client: Client,
    policy: KeyPolicy,
    ring: Arc<KeyRing>,
    metrics: Arc<Metrics>,
    synced: watch::Sender<bool>,
) {
    let api: Api<Secret> = Api::namespaced(client.clone(), &policy.namespace);
    if let Err(err) = load_keys(&client, &policy, &ring).await {
        tracing::error!(error = %err, "cannot list key Secrets; will keep watching");
    }
    // Every key Secret, whatever the label's value: retired ones are reported, not used.
    let config = watcher::Config::default().labels(KEY_LABEL);
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut gaps: RelistGaps<String> = RelistGaps::default();
    let mut seen: HashMap<String, SeenKey> = HashMap::new();
    metrics.set_keys(&key_reports(&ring, &seen));
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                // The API server restarting: the watch resumes or lists again by itself.
                tracing::info!(error = %err, "key Secret watch failed; retrying");
                continue;
            }
        };
        let gap = gaps.observe(&event, |secret: &Secret| {
            Some((object_key(secret)?, secret.name_any()))
        });
        match event {
            watcher::Event::Apply(secret) | watcher::Event::InitApply(secret) => {
                let name = secret.name_any();
                if is_active(&secret) {
                    // `register` replaces the entry of a Secret whose key changed.
                    register(&ring, &secret, policy.priority);
                } else {
                    forget(&ring, &name);
                }
                match seen_key(&secret, policy.priority) {
                    Some(key) => seen.insert(name, key),
                    None => seen.remove(&name),
                };
            }
            watcher::Event::Delete(secret) => {
                let name = secret.name_any();
                forget(&ring, &name);
                seen.remove(&name);
            }
            watcher::Event::InitDone => {
                // Deleted or unlabelled while the watch was down.
                for name in gap.vanished {
                    forget(&ring, &name);
                    seen.remove(&name);
                }
                let _ = synced.send(true);
            }
            watcher::Event::Init => {}
        }
        metrics.set_keys(&key_reports(&ring, &seen));
    }
}

/// Stops using the key of Secret `name` (deleted, retired or relabelled). The legacy Secret
/// has no label and is never seen by the watch.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::SealingKey;

    #[test]
    fn reports_name_the_sealing_key_and_keep_retired_ones() {
        let ring = crate::fixtures::test_ring();
        let sealing = ring.latest().expect("a key");
        let older = crate::fixtures::test_ring().latest().expect("a key");
        let mut older = SealingKey::clone(&older);
        older.secret_name = "older".into();
        older.order_time = sealing
            .order_time
            .checked_sub(jiff::SignedDuration::from_hours(24))
            .unwrap();
        ring.register(older.clone());
        let backup: jiff::Timestamp = "2026-11-30T00:00:00Z".parse().unwrap();
        let mut seen = HashMap::from([
            (
                sealing.secret_name.clone(),
                SeenKey {
                    fingerprint: sealing.fingerprint.clone(),
                    created: sealing.order_time,
                    backed_up: Some(backup),
                    active: true,
                },
            ),
            (
                "gone-from-use".to_string(),
                SeenKey {
                    fingerprint: "SHA256:retired".into(),
                    created: older.order_time,
                    backed_up: None,
                    active: false,
                },
            ),
        ]);
        let reports = key_reports(&ring, &seen);
        let states: Vec<(&str, &str)> = reports
            .iter()
            .map(|r| (r.fingerprint.as_str(), r.state))
            .collect();
        assert_eq!(reports.len(), 3, "{states:?}");
        let of = |fp: &str| reports.iter().find(|r| r.fingerprint == fp).unwrap();
        assert_eq!(of(&sealing.fingerprint).state, "sealing");
        assert_eq!(of(&sealing.fingerprint).backed_up, Some(backup));
        assert_eq!(of(&older.fingerprint).state, "active");
        assert_eq!(of(&older.fingerprint).backed_up, None);
        assert_eq!(of("SHA256:retired").state, "retired");
        // Retiring the older key: the watch sees it relabelled, the ring drops it.
        ring.unregister("older");
        seen.insert(
            "older".into(),
            SeenKey {
                fingerprint: older.fingerprint.clone(),
                created: older.order_time,
                backed_up: None,
                active: false,
            },
        );
        let reports = key_reports(&ring, &seen);
        assert_eq!(
            reports
                .iter()
                .find(|r| r.fingerprint == older.fingerprint)
                .unwrap()
                .state,
            "retired"
        );
    }

    #[test]
    fn key_metrics_are_exported() {
        let metrics = Metrics::default();
        let ring = crate::fixtures::test_ring();
        metrics.set_keys(&key_reports(&ring, &HashMap::new()));
        let fingerprint = ring.latest().unwrap().fingerprint.clone();
        metrics.set_dependants([(fingerprint.as_str(), &3)]);
        let text = metrics.encode();
        assert!(
            text.contains(&format!(
                "sealed_secrets_key_info{{fingerprint=\"{fingerprint}\",state=\"sealing\"}} 1"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "sealed_secrets_key_dependants{{fingerprint=\"{fingerprint}\"}} 3"
        )));
        assert!(text.contains(&format!(
            "sealed_secrets_key_backup_timestamp_seconds{{fingerprint=\"{fingerprint}\"}} 0"
        )));
        assert!(text.contains("sealed_secrets_controller_build_info"));
    }
}
