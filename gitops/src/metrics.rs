//! Prometheus metrics of the GitSync reconciler, for the dashboard (`dashboards/`) and alerts
//! (`prometheus/`).
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `sealed_secrets_gitops_syncs_total` | counter | `result` (the Ready reason: `Synced`, `FetchFailed`, `Forbidden`, ...), `trigger` (`NewRevision`, `SpecChange`, `Drift`, `ManualRequest`, `Retry`, `Interval`; `None` when no sync ran) |
//! | `sealed_secrets_gitops_drift_corrections_total` | counter | `namespace`, `name` (the GitSync), `kind`, `action` (`Reverted`, `Recreated`, `ReportedOnly`), `object` (`namespace/name` of the drifted object; `(other)` past 1,000 distinct objects) |
//! | `sealed_secrets_gitops_last_success_timestamp_seconds` | gauge | `namespace`, `name`: when a sync last succeeded (`time() - ...` is its age) |
//! | `sealed_secrets_gitops_notifications_total` | counter | `result` (`delivered`, `failed`, `dropped`) |
//! | `sealed_secrets_gitops_sync_duration_seconds` | histogram | – |
//! | `sealed_secrets_gitops_gitsync_ready` | gauge 0/1 | `namespace`, `name` |
//! | `sealed_secrets_gitops_gitsync_health` | gauge, one-hot | `namespace`, `name`, `status` (`Healthy`, `Progressing`, `Degraded`) |
//! | `sealed_secrets_gitops_queue_depth` | gauge | – |
//! | `sealed_secrets_gitops_drift_watches` | gauge | – |
//!
//! Labels are object names and fixed reason words only: no URL, message or value of a
//! GitSync ever becomes a label (a message could carry anything a repository holds). The
//! per-GitSync series are removed when the GitSync is deleted.

use std::{collections::HashSet, sync::Mutex};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use sealed_secrets_sync::{
    audit::DriftRecord,
    reconciler::{Observer, Outcome},
};

/// Prefix of every metric.
pub const PREFIX: &str = "sealed_secrets_gitops";
/// `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Health states, one series each.
const HEALTH: [&str; 3] = ["Healthy", "Progressing", "Degraded"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    namespace: String,
    name: String,
    kind: String,
    action: String,
    object: String,
}

/// Distinct drifted objects that get their own series; later ones share `object="(other)"`.
const MAX_DRIFT_OBJECTS: usize = 1000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GitSyncLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    namespace: String,
    name: String,
    status: String,
}

/// The registry and its metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    syncs: Family<ResultLabels, Counter>,
    duration: Histogram,
    ready: Family<GitSyncLabels, Gauge>,
    health: Family<HealthLabels, Gauge>,
    queue: Gauge,
    watches: Gauge,
    drift: Family<DriftLabels, Counter>,
    drift_series: Mutex<HashSet<DriftLabels>>,
    last_success: Family<GitSyncLabels, Gauge>,
    notifications: Family<NotificationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let syncs = Family::<ResultLabels, Counter>::default();
        registry.register("syncs", "GitSync reconciles by result", syncs.clone());
        let duration =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]);
        registry.register(
            "sync_duration_seconds",
            "Duration of one GitSync reconcile (fetch, render, apply, prune, health)",
            duration.clone(),
        );
        let ready = Family::<GitSyncLabels, Gauge>::default();
        registry.register(
            "gitsync_ready",
            "1 when the GitSync's last sync succeeded (Ready=True)",
            ready.clone(),
        );
        let health = Family::<HealthLabels, Gauge>::default();
        registry.register(
            "gitsync_health",
            "1 for the GitSync's current health status",
            health.clone(),
        );
        let queue = Gauge::default();
        registry.register(
            "queue_depth",
            "GitSync reconciles waiting for a worker",
            queue.clone(),
        );
        let watches = Gauge::default();
        registry.register("drift_watches", "Drift watches running", watches.clone());
        let drift = Family::<DriftLabels, Counter>::default();
        registry.register(
            "drift_corrections",
            "Drift found by syncs: reverted, re-created or reported only",
            drift.clone(),
        );
        let last_success = Family::<GitSyncLabels, Gauge>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the GitSync's last successful sync",
            last_success.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Webhook notifications by result (dropped: the queue was full)",
            notifications.clone(),
        );
        Metrics {
            drift,
            drift_series: Mutex::default(),
            last_success,
            notifications,
            registry: Mutex::new(registry),
            syncs,
            duration,
            ready,
            health,
            queue,
            watches,
        }
    }

    /// A webhook notification was delivered, failed, or dropped.
    pub fn notification(&self, result: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = encode(&mut out, &registry);
        }
        out
    }
}

impl Observer for Metrics {
    fn finished(&self, outcome: &Outcome<'_>) {
        self.syncs
            .get_or_create(&ResultLabels {
                result: outcome.reason.to_string(),
                trigger: outcome.trigger.unwrap_or("None").to_string(),
            })
            .inc();
        self.duration.observe(outcome.duration.as_secs_f64());
        let id = GitSyncLabels {
            namespace: outcome.namespace.to_string(),
            name: outcome.name.to_string(),
        };
        self.ready.get_or_create(&id).set(i64::from(outcome.ready));
        if let Some(at) = outcome.last_success {
            self.last_success.get_or_create(&id).set(at);
        }
        if let Some(health) = outcome.health {
            for status in HEALTH {
                self.health
                    .get_or_create(&HealthLabels {
                        namespace: id.namespace.clone(),
                        name: id.name.clone(),
                        status: status.to_string(),
                    })
                    .set(i64::from(status == health));
            }
        }
    }

    fn deleted(&self, namespace: &str, name: &str) {
        let id = GitSyncLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.ready.remove(&id);
        self.last_success.remove(&id);
        if let Ok(mut series) = self.drift_series.lock() {
            series.retain(|labels| {
                let gone = labels.namespace == namespace && labels.name == name;
                if gone {
                    self.drift.remove(labels);
                }
                !gone
            });
        }
        for status in HEALTH {
            self.health.remove(&HealthLabels {
                namespace: id.namespace.clone(),
                name: id.name.clone(),
                status: status.to_string(),
            });
        }
    }

    fn queue_depth(&self, waiting: usize) {
        self.queue.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    fn drift_watches(&self, running: usize) {
        self.watches.set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    fn drift(&self, namespace: &str, name: &str, record: &DriftRecord) {
        let mut labels = DriftLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind: record.object.kind.clone(),
            action: record.action.as_str().to_string(),
            object: if record.object.namespace.is_empty() {
                record.object.name.clone()
            } else {
                format!("{}/{}", record.object.namespace, record.object.name)
            },
        };
        if let Ok(mut series) = self.drift_series.lock()
            && !series.contains(&labels)
        {
            let objects = series
                .iter()
                .filter(|l| l.object != OTHER)
                .map(|l| (&l.namespace, &l.name, &l.object))
                .collect::<HashSet<_>>()
                .len();
            if objects >= MAX_DRIFT_OBJECTS {
                labels.object = OTHER.to_string();
            }
            series.insert(labels.clone());
        }
        self.drift.get_or_create(&labels).inc();
    }
}

/// The `object` label past [`MAX_DRIFT_OBJECTS`].
const OTHER: &str = "(other)";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn outcomes_become_series_and_deletion_removes_them() {
        let metrics = Metrics::new();
        metrics.finished(&Outcome {
            namespace: "team-a",
            name: "shop",
            reason: "Synced",
            ready: true,
            health: Some("Degraded"),
            duration: Duration::from_millis(300),
            trigger: Some("NewRevision"),
            last_success: Some(1_700_000_000),
        });
        metrics.finished(&Outcome {
            namespace: "team-a",
            name: "shop",
            reason: "Forbidden",
            ready: false,
            health: None,
            duration: Duration::from_millis(10),
            trigger: Some("Retry"),
            last_success: Some(1_700_000_000),
        });
        metrics.queue_depth(3);
        let text = metrics.encode();
        for line in [
            "sealed_secrets_gitops_syncs_total{result=\"Synced\",trigger=\"NewRevision\"} 1",
            "sealed_secrets_gitops_syncs_total{result=\"Forbidden\",trigger=\"Retry\"} 1",
            "sealed_secrets_gitops_last_success_timestamp_seconds{namespace=\"team-a\",name=\"shop\"} 1700000000",
            "sealed_secrets_gitops_gitsync_ready{namespace=\"team-a\",name=\"shop\"} 0",
            "sealed_secrets_gitops_gitsync_health{namespace=\"team-a\",name=\"shop\",status=\"Degraded\"} 1",
            "sealed_secrets_gitops_gitsync_health{namespace=\"team-a\",name=\"shop\",status=\"Healthy\"} 0",
            "sealed_secrets_gitops_sync_duration_seconds_count 2",
            "sealed_secrets_gitops_queue_depth 3",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        let record: DriftRecord = serde_json::from_value(serde_json::json!({
            "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
            "change": "Changed", "paths": ["spec.replicas"], "revision": "abc",
            "action": "Reverted", "detectedAt": "t"
        }))
        .unwrap();
        metrics.drift("team-a", "shop", &record);
        metrics.drift("team-a", "shop", &record);
        metrics.notification("dropped");
        let text = metrics.encode();
        for line in [
            "sealed_secrets_gitops_drift_corrections_total{namespace=\"team-a\",name=\"shop\",kind=\"Deployment\",action=\"Reverted\",object=\"shop/web\"} 2",
            "sealed_secrets_gitops_notifications_total{result=\"dropped\"} 1",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        metrics.deleted("team-a", "shop");
        let text = metrics.encode();
        assert!(!text.contains("name=\"shop\""), "{text}");
    }
}
