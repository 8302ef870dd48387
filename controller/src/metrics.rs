//! Prometheus metrics with upstream's names and labels, so existing dashboards, the
//! prometheus-mixin alert `SealedSecretsUnsealErrorHigh` and users' recording rules keep working.
//!
//! Every metric carries the prefix `sealed_secrets_controller_`:
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `build_info` | gauge | `revision` |
//! | `unseal_requests_total` | counter | – |
//! | `unseal_errors_total` | counter | `reason`, `namespace` |
//! | `condition_info` | gauge | `namespace`, `name`, `condition`, `ss_app_kubernetes_io_instance` |
//! | `http_requests_total` | counter | `path`, `code`, `method` |
//! | `http_request_duration_seconds` | histogram | `path`, `method` |
//! | `reconcile_races_total` | counter | `kind` (ours: see [`race`]) |
//! | `decryptions_total` | counter | – (ours: SealedSecrets decrypted, one RSA operation per item) |
//! | `unchanged_verified_total` | counter | – (ours: passes that proved the Secret current by its digest, without decrypting) |
//! | `backlog_objects` | gauge | – (ours: objects waiting to be checked after a (re)list or a takeover) |
//!
//! Key lifecycle metrics (ours, without upstream's prefix; see `docs/keys.md`):
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `sealed_secrets_key_info` | gauge (1) | `fingerprint`, `state` (`sealing`, `active`, `retired`) |
//! | `sealed_secrets_key_dependants` | gauge | `fingerprint`: SealedSecrets whose `status.keyFingerprint` is it (every replica counts from its watch) |
//! | `sealed_secrets_key_created_timestamp_seconds` | gauge | `fingerprint` |
//! | `sealed_secrets_key_backup_timestamp_seconds` | gauge | `fingerprint`: last `kubeseal keys backup` that included it, 0 if none |
//!
//! The exposition is OpenMetrics text (prometheus-client's only format; Prometheus scrapes it
//! natively). prometheus-client appends `_total` to counters itself, so counters are registered
//! without it.
//!
//! Decisions that differ from upstream:
//! - `build_info` is **1**, not 0: upstream registers the gauge and never sets it, which breaks
//!   the usual `* on(...) group_left(revision) build_info` joins. An info gauge is 1.
//! - HTTP methods outside the standard set are counted as `method="unknown"` instead of their
//!   lowercased text, so a client cannot create unbounded series by inventing methods.
//! - Go runtime (`go_*`) and `process_*` collectors do not exist here.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Prefix (Prometheus namespace) of every metric.
pub const PREFIX: &str = "sealed_secrets_controller";

/// `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The only condition type upstream writes.
pub const CONDITION_SYNCED: &str = "Synced";

/// Reasons of `unseal_errors_total`, as upstream spells them.
pub mod reason {
    /// The informer cache could not be read (namespace label empty).
    pub const FETCH: &str = "fetch";
    /// The SealedSecret does not open.
    pub const UNSEAL: &str = "unseal";
    /// Creating or updating the Secret failed.
    pub const UPDATE: &str = "update";
    /// The Secret exists and is not managed by the SealedSecret.
    pub const UNMANAGED: &str = "unmanaged";
    /// Writing the SealedSecret's status failed.
    pub const STATUS: &str = "status";
}

/// Kinds of `reconcile_races_total`: races with other writers that resolve themselves. They
/// are not unseal errors (the `SealedSecretsUnsealErrorHigh` alert must not fire on churn) and
/// are logged at debug or info level; a steady rate says something fights the controller.
pub mod race {
    /// A write lost to another writer (409 Conflict, or the Secret appeared since it was
    /// read); retried at once.
    pub const CONFLICT: &str = "conflict";
    /// The Secret was deleted between the read and the update; retried (it is re-created).
    pub const SECRET_GONE: &str = "secret_gone";
    /// A pass ran on a cache entry of a SealedSecret the API server no longer has: nothing was
    /// written, or what was written has been taken back.
    pub const STALE_OBJECT: &str = "stale_object";
    /// A Secret left by a deleted SealedSecret of the same name was taken over.
    pub const PREDECESSOR_SECRET: &str = "predecessor_secret";
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RaceLabels {
    kind: String,
}

/// Prometheus' default histogram buckets (`prometheus.DefBuckets`), in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyStateLabels {
    fingerprint: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FingerprintLabels {
    fingerprint: String,
}

/// What the key metrics say about one key Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// Public key fingerprint.
    pub fingerprint: String,
    /// `sealing`, `active` or `retired`.
    pub state: &'static str,
    /// When it was made (the ordering time).
    pub created: jiff::Timestamp,
    /// When a backup last included it.
    pub backed_up: Option<jiff::Timestamp>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnsealErrorLabels {
    reason: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    namespace: String,
    name: String,
    condition: String,
    ss_app_kubernetes_io_instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequestLabels {
    path: String,
    code: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpDurationLabels {
    path: String,
    method: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

/// The controller's metrics and their registry. Cheap to share behind an `Arc`; every method
/// takes `&self`.
pub struct Metrics {
    registry: Registry,
    unseal_requests: Counter,
    unseal_errors: Family<UnsealErrorLabels, Counter>,
    condition_info: Family<ConditionLabels, Gauge>,
    races: Family<RaceLabels, Counter>,
    decryptions: Counter,
    unchanged_verified: Counter,
    backlog: Gauge,
    /// `(namespace, name)` → the instance label of its live `condition_info` series, so a series
    /// can be removed (or relabelled) knowing only the object's key.
    condition_instances: Mutex<HashMap<(String, String), String>>,
    http_requests: Family<HttpRequestLabels, Counter>,
    http_duration: Family<HttpDurationLabels, Histogram, fn() -> Histogram>,
    key_info: Family<KeyStateLabels, Gauge>,
    key_dependants: Family<FingerprintLabels, Gauge>,
    key_created: Family<FingerprintLabels, Gauge>,
    key_backup: Family<FingerprintLabels, Gauge>,
    /// Length of the last exposition, to size the next one's buffer in one allocation.
    last_encoded: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new("")
    }
}

impl Metrics {
    /// Registers every metric; `revision` is the `build_info` label (upstream: the version).
    pub fn new(revision: &str) -> Self {
        let mut root = Registry::default();
        let key_info = Family::default();
        root.register(
            "sealed_secrets_key_info",
            "Sealing keys by state (sealing, active, retired); always 1.",
            key_info.clone(),
        );
        let key_dependants = Family::default();
        root.register(
            "sealed_secrets_key_dependants",
            "SealedSecrets last opened with this key (status.keyFingerprint).",
            key_dependants.clone(),
        );
        let key_created = Family::default();
        root.register(
            "sealed_secrets_key_created_timestamp_seconds",
            "When the key was made (Unix seconds).",
            key_created.clone(),
        );
        let key_backup = Family::default();
        root.register(
            "sealed_secrets_key_backup_timestamp_seconds",
            "When a backup last included the key (Unix seconds; 0: never).",
            key_backup.clone(),
        );
        let registry = root.sub_registry_with_prefix(PREFIX);

        let build_info = Family::<RevisionLabels, Gauge>::default();
        build_info
            .get_or_create(&RevisionLabels {
                revision: revision.to_string(),
            })
            .set(1);
        registry.register("build_info", "Build information.", build_info);

        let unseal_requests = Counter::default();
        registry.register(
            "unseal_requests",
            "Total number of sealed secret unseal requests",
            unseal_requests.clone(),
        );
        let unseal_errors = Family::default();
        registry.register(
            "unseal_errors",
            "Total number of sealed secret unseal errors by reason",
            unseal_errors.clone(),
        );
        let condition_info = Family::default();
        registry.register(
            "condition_info",
            "Current SealedSecret condition status. Values are -1 (false), 0 (unknown or absent), 1 (true)",
            condition_info.clone(),
        );
        let races = Family::default();
        registry.register(
            "reconcile_races",
            "Races with other writers that resolved themselves, by kind",
            races.clone(),
        );
        let decryptions = Counter::default();
        registry.register(
            "decryptions",
            "SealedSecrets decrypted (one RSA private-key operation per item)",
            decryptions.clone(),
        );
        let unchanged_verified = Counter::default();
        registry.register(
            "unchanged_verified",
            "Passes that proved a Secret current by its digest, without decrypting",
            unchanged_verified.clone(),
        );
        let backlog = Gauge::default();
        registry.register(
            "backlog_objects",
            "SealedSecrets waiting to be checked after a list, a relist or a leader takeover",
            backlog.clone(),
        );
        let http_requests = Family::default();
        registry.register(
            "http_requests",
            "A counter for requests to the wrapped handler.",
            http_requests.clone(),
        );
        let http_duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "A histogram of latencies for requests.",
            http_duration.clone(),
        );

        Self {
            last_encoded: std::sync::atomic::AtomicUsize::new(0),
            registry: root,
            unseal_requests,
            unseal_errors,
            condition_info,
            races,
            decryptions,
            unchanged_verified,
            backlog,
            condition_instances: Mutex::new(HashMap::new()),
            http_requests,
            http_duration,
            key_info,
            key_dependants,
            key_created,
            key_backup,
        }
    }

    /// Replaces the key series with `keys` (every key Secret the controller sees).
    pub fn set_keys(&self, keys: &[KeyReport]) {
        self.key_info.clear();
        self.key_created.clear();
        self.key_backup.clear();
        for key in keys {
            let fingerprint = FingerprintLabels {
                fingerprint: key.fingerprint.clone(),
            };
            self.key_info
                .get_or_create(&KeyStateLabels {
                    fingerprint: key.fingerprint.clone(),
                    state: key.state.to_string(),
                })
                .set(1);
            self.key_created
                .get_or_create(&fingerprint)
                .set(key.created.as_second());
            self.key_backup
                .get_or_create(&fingerprint)
                .set(key.backed_up.map_or(0, |t| t.as_second()));
        }
    }

    /// Replaces `sealed_secrets_key_dependants` with `counts` (fingerprint → SealedSecrets).
    pub fn set_dependants<'a>(&self, counts: impl IntoIterator<Item = (&'a str, &'a i64)>) {
        self.key_dependants.clear();
        for (fingerprint, count) in counts {
            self.key_dependants
                .get_or_create(&FingerprintLabels {
                    fingerprint: fingerprint.to_string(),
                })
                .set(*count);
        }
    }

    /// `unseal_requests_total` +1 (every dequeued key, deletions included).
    pub fn unseal_request(&self) {
        self.unseal_requests.inc();
    }

    /// `decryptions_total` +1.
    pub fn decryption(&self) {
        self.decryptions.inc();
    }

    /// `unchanged_verified_total` +1.
    pub fn verified_unchanged(&self) {
        self.unchanged_verified.inc();
    }

    /// Adds `delta` to `backlog_objects` (each watched scope has a backlog of its own).
    pub fn add_backlog(&self, delta: i64) {
        self.backlog.inc_by(delta);
    }

    /// `reconcile_races_total{kind}` +1. `kind` is one of [`race`]'s constants.
    pub fn race(&self, kind: &str) {
        self.races
            .get_or_create(&RaceLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// `unseal_errors_total{reason, namespace}` +1. `reason` is one of [`reason`]'s constants.
    pub fn unseal_error(&self, reason: &str, namespace: &str) {
        self.unseal_errors
            .get_or_create(&UnsealErrorLabels {
                reason: reason.to_string(),
                namespace: namespace.to_string(),
            })
            .inc();
    }

    /// Sets `condition_info{condition="Synced"}` of `namespace/name` to `value` (−1 False,
    /// 0 Unknown or absent, 1 True). `instance` is the SealedSecret's
    /// `app.kubernetes.io/instance` label (empty if none); when it changes, the series with the
    /// old value is removed so one object never has two series.
    pub fn set_condition(&self, namespace: &str, name: &str, instance: &str, value: i64) {
        let mut instances = self
            .condition_instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (namespace.to_string(), name.to_string());
        if let Some(previous) = instances.get(&key)
            && previous != instance
        {
            self.condition_info
                .remove(&condition_labels(namespace, name, previous));
        }
        self.condition_info
            .get_or_create(&condition_labels(namespace, name, instance))
            .set(value);
        instances.insert(key, instance.to_string());
    }

    /// Removes the `condition_info` series of `namespace/name` (the SealedSecret was deleted).
    pub fn remove_condition(&self, namespace: &str, name: &str) {
        let mut instances = self
            .condition_instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(instance) = instances.remove(&(namespace.to_string(), name.to_string())) {
            self.condition_info
                .remove(&condition_labels(namespace, name, &instance));
        }
    }

    /// Records one served request: `http_requests_total{path, code, method}` +1 and its duration
    /// in `http_request_duration_seconds{path, method}`. `method` is the HTTP method as sent.
    pub fn observe_http(&self, path: &str, method: &str, code: u16, elapsed: Duration) {
        let method = method_label(method);
        self.http_requests
            .get_or_create(&HttpRequestLabels {
                path: path.to_string(),
                code: code.to_string(),
                method: method.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&HttpDurationLabels {
                path: path.to_string(),
                method: method.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition of every metric (serve with [`CONTENT_TYPE`]).
    ///
    /// The text holds one `condition_info` series per SealedSecret (about 1.5 MB at 10,000).
    /// Grown by doubling, each scrape would leave a chain of freed buffers of every size up to
    /// that in the allocator's heap (glibc raises its mmap threshold after the first large
    /// free), which stays resident; sized once from the last scrape, the buffer is a single
    /// allocation, returned whole when the reply is sent.
    pub fn encode(&self) -> String {
        use std::sync::atomic::Ordering;
        let last = self.last_encoded.load(Ordering::Relaxed);
        let mut out = String::with_capacity(last + last / 8);
        // Writing into a `String` cannot fail.
        let _ = encode(&mut out, &self.registry);
        self.last_encoded.store(out.len(), Ordering::Relaxed);
        out
    }
}

fn condition_labels(namespace: &str, name: &str, instance: &str) -> ConditionLabels {
    ConditionLabels {
        namespace: namespace.to_string(),
        name: name.to_string(),
        condition: CONDITION_SYNCED.to_string(),
        ss_app_kubernetes_io_instance: instance.to_string(),
    }
}

/// promhttp's method label: the standard methods lowercased; anything else `unknown`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 10] = [
        "get", "put", "head", "post", "delete", "connect", "options", "notify", "trace", "patch",
    ];
    KNOWN
        .iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(metric name, sorted label names)` of every sample line.
    fn samples(text: &str) -> BTreeSet<(String, Vec<String>)> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|line| {
                let (series, _) = line.rsplit_once(' ').unwrap();
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let mut names: Vec<String> = labels
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.split_once('=').unwrap().0.to_string())
                    .collect();
                names.sort();
                names.dedup();
                (name.to_string(), names)
            })
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn populated() -> Metrics {
        let metrics = Metrics::new("v0.1.0");
        metrics.unseal_request();
        metrics.unseal_error(reason::UNSEAL, "shop");
        metrics.set_condition("shop", "db", "my-app", 1);
        metrics.observe_http("/v1/verify", "POST", 200, Duration::from_millis(3));
        metrics
    }

    #[test]
    fn names_and_label_names_match_upstream_exactly() {
        let text = populated().encode();
        let p = |name: &str| format!("{PREFIX}_{name}");
        let expected = BTreeSet::from([
            (p("build_info"), strings(&["revision"])),
            (p("unseal_requests_total"), vec![]),
            (p("unseal_errors_total"), strings(&["namespace", "reason"])),
            // Ours, beside upstream's.
            (p("decryptions_total"), vec![]),
            (p("unchanged_verified_total"), vec![]),
            (p("backlog_objects"), vec![]),
            (
                p("condition_info"),
                strings(&[
                    "condition",
                    "name",
                    "namespace",
                    "ss_app_kubernetes_io_instance",
                ]),
            ),
            (
                p("http_requests_total"),
                strings(&["code", "method", "path"]),
            ),
            (
                p("http_request_duration_seconds_sum"),
                strings(&["method", "path"]),
            ),
            (
                p("http_request_duration_seconds_count"),
                strings(&["method", "path"]),
            ),
            (
                p("http_request_duration_seconds_bucket"),
                strings(&["le", "method", "path"]),
            ),
        ]);
        assert_eq!(samples(&text), expected, "{text}");
        assert!(text.ends_with("# EOF\n"));
        for (name, kind) in [
            ("build_info", "gauge"),
            ("unseal_requests", "counter"),
            ("unseal_errors", "counter"),
            ("condition_info", "gauge"),
            ("http_requests", "counter"),
            ("http_request_duration_seconds", "histogram"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {PREFIX}_{name} {kind}\n")),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn values_and_label_values() {
        let metrics = populated();
        metrics.unseal_error(reason::FETCH, "");
        let text = metrics.encode();
        for line in [
            "sealed_secrets_controller_build_info{revision=\"v0.1.0\"} 1",
            "sealed_secrets_controller_unseal_requests_total 1",
            "sealed_secrets_controller_unseal_errors_total{reason=\"unseal\",namespace=\"shop\"} 1",
            "sealed_secrets_controller_unseal_errors_total{reason=\"fetch\",namespace=\"\"} 1",
            "sealed_secrets_controller_condition_info{namespace=\"shop\",name=\"db\",condition=\"Synced\",ss_app_kubernetes_io_instance=\"my-app\"} 1",
            "sealed_secrets_controller_http_requests_total{path=\"/v1/verify\",code=\"200\",method=\"post\"} 1",
            "sealed_secrets_controller_http_request_duration_seconds_count{path=\"/v1/verify\",method=\"post\"} 1",
            "sealed_secrets_controller_http_request_duration_seconds_bucket{le=\"0.005\",path=\"/v1/verify\",method=\"post\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn histogram_uses_prometheus_default_buckets() {
        let text = populated().encode();
        let les: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("_bucket{"))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(
            les,
            [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0",
                "10.0", "+Inf"
            ]
        );
    }

    #[test]
    fn conditions_are_set_relabelled_and_removed() {
        let metrics = Metrics::new("x");
        metrics.set_condition("ns", "a", "", -1);
        metrics.set_condition("ns", "b", "", 0);
        let text = metrics.encode();
        assert!(
            text.contains("name=\"a\",condition=\"Synced\",ss_app_kubernetes_io_instance=\"\"} -1"),
            "{text}"
        );
        metrics.set_condition("ns", "a", "new", 1);
        let text = metrics.encode();
        assert_eq!(text.matches("name=\"a\"").count(), 1, "{text}");
        assert!(text.contains("ss_app_kubernetes_io_instance=\"new\"} 1"));
        metrics.remove_condition("ns", "a");
        metrics.remove_condition("ns", "unknown");
        let text = metrics.encode();
        assert!(!text.contains("name=\"a\""), "{text}");
        assert!(text.contains("name=\"b\""), "{text}");
    }

    #[test]
    fn methods_are_lowercased_and_bounded() {
        assert_eq!(method_label("GET"), "get");
        assert_eq!(method_label("post"), "post");
        assert_eq!(method_label("TRACE"), "trace");
        assert_eq!(method_label("BREW"), "unknown");
    }
}
