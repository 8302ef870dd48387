//! Health assessment of applied objects.
//!
//! After a GitSync has applied its manifests, the health of the live objects
//! decides the GitSync's `Healthy` condition: it is only `True` once every
//! applied object is [`Health::Healthy`], and the worst object's reason is
//! surfaced otherwise (see [`aggregate`]).
//!
//! The rules follow what kstatus and Argo CD consider "ready", simplified to
//! what a reconcile core needs:
//!
//! * every kind: a controller that has not yet observed the latest
//!   `metadata.generation` (`status.observedGeneration` behind) means
//!   progressing;
//! * `Deployment`, `StatefulSet`, `DaemonSet` (group `apps`) and `Job`
//!   (group `batch`) have dedicated rollout rules;
//! * `Namespace` and `PersistentVolumeClaim` (core group) are judged by
//!   `status.phase`;
//! * any other kind that publishes a `Ready` condition is judged by it;
//! * everything else (ConfigMaps, Services, ...) is healthy once it exists.
//!
//! Inputs are arbitrary JSON from an API server: malformed or missing fields
//! never panic, they are treated as absent.

use serde_json::Value;

/// Health of one live object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The object is ready and fully rolled out.
    Healthy,
    /// The object is still converging; it may become healthy without help.
    Progressing {
        /// Human-readable explanation, e.g.
        /// `"Deployment: 1 of 3 updated replicas are available"`.
        reason: String,
    },
    /// The object failed and is unlikely to recover without intervention.
    Degraded {
        /// Human-readable explanation of the failure.
        reason: String,
    },
}

impl Health {
    /// Whether this is [`Health::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    /// Short label: `"Healthy"`, `"Progressing"` or `"Degraded"`.
    pub fn label(&self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Progressing { .. } => "Progressing",
            Health::Degraded { .. } => "Degraded",
        }
    }

    /// Ordering used by [`aggregate`]: higher is worse.
    fn severity(&self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Progressing { .. } => 1,
            Health::Degraded { .. } => 2,
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Health::Healthy => None,
            Health::Progressing { reason } | Health::Degraded { reason } => Some(reason),
        }
    }
}

/// Health of a live object given as JSON (`apiVersion`, `kind`, `metadata`,
/// `spec`, `status`).
///
/// Kinds are recognised by API group and kind together (any version of the
/// group is accepted):
///
/// * every kind: `status.observedGeneration < metadata.generation` (both
///   present) is [`Health::Progressing`].
/// * `apps` `Deployment`: a `Progressing` condition with reason
///   `ProgressDeadlineExceeded` is [`Health::Degraded`]. A paused Deployment
///   (`spec.paused: true`) is reported [`Health::Healthy`]: it is
///   deliberately suspended, and waiting for it would block the sync forever.
///   Otherwise it is progressing until all `spec.replicas` (default 1) are
///   updated, no old replicas remain and all are available.
/// * `apps` `StatefulSet`: with `updateStrategy.type: OnDelete` only
///   `readyReplicas` counts. Otherwise it also needs `updatedReplicas >=
///   replicas - partition` and, when `updateRevision` is reported and no
///   partition is set, `currentRevision == updateRevision` (a partitioned
///   rollout deliberately leaves pods on the old revision).
/// * `apps` `DaemonSet`: `numberAvailable` and `updatedNumberScheduled` must
///   reach `desiredNumberScheduled` (missing counts are 0). A DaemonSet with
///   nothing to schedule is healthy once its controller has reported
///   `status.observedGeneration`.
/// * `batch` `Job`: condition `Failed=True` is degraded, `Complete=True` or
///   `SuccessCriteriaMet=True` is healthy, anything else is progressing.
/// * core `Namespace`: phase `Terminating` is progressing.
/// * core `PersistentVolumeClaim`: phase `Pending` is progressing, `Lost`
///   is degraded.
/// * any other kind with a `Ready` condition: `True` is healthy; `False` is
///   degraded when a `Stalled=True` condition is also present or the Ready
///   reason looks like a failure (case-insensitively contains `"fail"` or
///   equals `"error"`), progressing otherwise; any other status (`Unknown`)
///   is progressing.
/// * anything else is healthy.
pub fn assess(object: &Value) -> Health {
    let kind = str_at(object, &["kind"]).unwrap_or("");
    let group = api_group(str_at(object, &["apiVersion"]).unwrap_or(""));

    if let (Some(generation), Some(observed)) = (
        int_at(object, &["metadata", "generation"]),
        int_at(object, &["status", "observedGeneration"]),
    ) && observed < generation
    {
        return progressing(
            kind,
            format!("waiting for the controller to observe generation {generation}"),
        );
    }

    match (group, kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("batch", "Job") => job(object),
        ("", "Namespace") => namespace(object),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(object),
        _ => ready_condition(kind, object),
    }
}

/// Worst of many: [`Health::Degraded`] beats [`Health::Progressing`] beats
/// [`Health::Healthy`]; among equally bad items the first one wins.
///
/// Each item is an object identity string (`"<Kind>/<namespace>/<name>"`, or
/// `"<Kind>/<name>"` for cluster-scoped objects) and its health; the reason
/// of a non-healthy result is prefixed with that identity, e.g.
/// `"Deployment/default/web: Deployment: 1 of 3 updated replicas are
/// available"`. An empty input is healthy.
pub fn aggregate<'a>(items: impl IntoIterator<Item = (&'a str, &'a Health)>) -> Health {
    let mut worst: Option<(&str, &Health)> = None;
    for (id, health) in items {
        let replace = match worst {
            None => !health.is_healthy(),
            Some((_, current)) => health.severity() > current.severity(),
        };
        if replace {
            worst = Some((id, health));
        }
    }
    match worst {
        None => Health::Healthy,
        Some((id, health)) => {
            let reason = format!("{id}: {}", health.reason().unwrap_or(""));
            match health {
                Health::Healthy => Health::Healthy,
                Health::Progressing { .. } => Health::Progressing { reason },
                Health::Degraded { .. } => Health::Degraded { reason },
            }
        }
    }
}

fn deployment(object: &Value) -> Health {
    const KIND: &str = "Deployment";
    if let Some(cond) = condition(object, "Progressing")
        && str_at(cond, &["reason"]) == Some("ProgressDeadlineExceeded")
    {
        return degraded(
            KIND,
            with_detail("progress deadline exceeded", str_at(cond, &["message"])),
        );
    }
    if bool_at(object, &["spec", "paused"]) == Some(true) {
        return Health::Healthy;
    }
    let replicas = int_at(object, &["spec", "replicas"]).unwrap_or(1);
    let updated = int_at(object, &["status", "updatedReplicas"]).unwrap_or(0);
    let total = int_at(object, &["status", "replicas"]).unwrap_or(0);
    let available = int_at(object, &["status", "availableReplicas"]).unwrap_or(0);

    if updated < replicas {
        return progressing(
            KIND,
            format!("{updated} of {replicas} replicas have been updated"),
        );
    }
    if total > updated {
        let old = total.saturating_sub(updated);
        return progressing(KIND, format!("{old} old replicas are pending termination"));
    }
    if available < replicas {
        return progressing(
            KIND,
            format!("{available} of {replicas} updated replicas are available"),
        );
    }
    Health::Healthy
}

fn stateful_set(object: &Value) -> Health {
    const KIND: &str = "StatefulSet";
    let replicas = int_at(object, &["spec", "replicas"]).unwrap_or(1);
    let ready = int_at(object, &["status", "readyReplicas"]).unwrap_or(0);
    let strategy = str_at(object, &["spec", "updateStrategy", "type"]).unwrap_or("RollingUpdate");

    if ready < replicas {
        return progressing(KIND, format!("{ready} of {replicas} replicas are ready"));
    }
    if strategy == "OnDelete" {
        return Health::Healthy;
    }

    let partition = int_at(
        object,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
    )
    .unwrap_or(0)
    .max(0);
    let target = replicas.saturating_sub(partition);
    let updated = int_at(object, &["status", "updatedReplicas"]).unwrap_or(0);
    if updated < target {
        return progressing(
            KIND,
            format!("{updated} of {target} replicas have been updated"),
        );
    }

    if partition == 0
        && let Some(update_revision) = str_at(object, &["status", "updateRevision"])
    {
        let current = str_at(object, &["status", "currentRevision"]).unwrap_or("");
        if current != update_revision {
            return progressing(
                KIND,
                format!(
                    "waiting for revision {update_revision} to replace {}",
                    if current.is_empty() {
                        "<none>"
                    } else {
                        current
                    }
                ),
            );
        }
    }
    Health::Healthy
}

fn daemon_set(object: &Value) -> Health {
    const KIND: &str = "DaemonSet";
    let desired = int_at(object, &["status", "desiredNumberScheduled"]).unwrap_or(0);
    let available = int_at(object, &["status", "numberAvailable"]).unwrap_or(0);
    let updated = int_at(object, &["status", "updatedNumberScheduled"]).unwrap_or(0);

    if desired <= 0 && int_at(object, &["status", "observedGeneration"]).is_none() {
        return progressing(KIND, "waiting for the controller to report status".into());
    }
    if updated < desired {
        return progressing(
            KIND,
            format!("{updated} of {desired} scheduled pods have been updated"),
        );
    }
    if available < desired {
        return progressing(
            KIND,
            format!("{available} of {desired} updated pods are available"),
        );
    }
    Health::Healthy
}

fn job(object: &Value) -> Health {
    const KIND: &str = "Job";
    if let Some(cond) = condition(object, "Failed")
        && is_true(cond)
    {
        return degraded(KIND, condition_detail(cond, "job failed"));
    }
    let succeeded = ["Complete", "SuccessCriteriaMet"]
        .iter()
        .any(|t| condition(object, t).is_some_and(is_true));
    if succeeded {
        Health::Healthy
    } else {
        progressing(KIND, "job has not completed".into())
    }
}

fn namespace(object: &Value) -> Health {
    if str_at(object, &["status", "phase"]) == Some("Terminating") {
        progressing("Namespace", "namespace is terminating".into())
    } else {
        Health::Healthy
    }
}

fn persistent_volume_claim(object: &Value) -> Health {
    const KIND: &str = "PersistentVolumeClaim";
    match str_at(object, &["status", "phase"]) {
        Some("Pending") => progressing(KIND, "claim is pending".into()),
        Some("Lost") => degraded(KIND, "claim has lost its volume".into()),
        _ => Health::Healthy,
    }
}

fn ready_condition(kind: &str, object: &Value) -> Health {
    let Some(ready) = condition(object, "Ready") else {
        return Health::Healthy;
    };
    match str_at(ready, &["status"]) {
        Some("True") => Health::Healthy,
        Some("False") => {
            let detail = condition_detail(ready, "not ready");
            let stalled = condition(object, "Stalled").is_some_and(is_true);
            let failed_reason = str_at(ready, &["reason"]).is_some_and(|r| {
                let r = r.to_ascii_lowercase();
                r.contains("fail") || r == "error"
            });
            if stalled || failed_reason {
                degraded(kind, detail)
            } else {
                progressing(kind, detail)
            }
        }
        other => progressing(
            kind,
            with_detail(
                &format!("readiness is {}", other.unwrap_or("not reported")),
                str_at(ready, &["message"]),
            ),
        ),
    }
}

/// API group of an `apiVersion`: `"apps/v1"` → `"apps"`, `"v1"` → `""`.
fn api_group(api_version: &str) -> &str {
    api_version
        .split_once('/')
        .map_or("", |(group, _version)| group)
}

fn progressing(kind: &str, message: String) -> Health {
    Health::Progressing {
        reason: prefixed(kind, message),
    }
}

fn degraded(kind: &str, message: String) -> Health {
    Health::Degraded {
        reason: prefixed(kind, message),
    }
}

fn prefixed(kind: &str, message: String) -> String {
    if kind.is_empty() {
        message
    } else {
        format!("{kind}: {message}")
    }
}

fn with_detail(summary: &str, detail: Option<&str>) -> String {
    match detail.filter(|d| !d.is_empty()) {
        Some(detail) => format!("{summary}: {detail}"),
        None => summary.to_owned(),
    }
}

/// `"<reason>: <message>"` of a condition, whichever parts are present.
fn condition_detail(cond: &Value, fallback: &str) -> String {
    let reason = str_at(cond, &["reason"]).filter(|s| !s.is_empty());
    let message = str_at(cond, &["message"]).filter(|s| !s.is_empty());
    match (reason, message) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(r), None) => r.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => fallback.to_owned(),
    }
}

/// First entry of `status.conditions` whose `type` is `type_`.
fn condition<'v>(object: &'v Value, type_: &str) -> Option<&'v Value> {
    at(object, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| str_at(c, &["type"]) == Some(type_))
}

fn is_true(cond: &Value) -> bool {
    str_at(cond, &["status"]) == Some("True")
}

fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(value, path)?.as_str()
}

fn bool_at(value: &Value, path: &[&str]) -> Option<bool> {
    at(value, path)?.as_bool()
}

/// Integer at `path`; out-of-range and fractional numbers are clamped or
/// truncated rather than rejected, non-numbers are absent.
fn int_at(value: &Value, path: &[&str]) -> Option<i64> {
    let v = at(value, path)?;
    if let Some(i) = v.as_i64() {
        Some(i)
    } else if v.as_u64().is_some() {
        Some(i64::MAX)
    } else {
        v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(h: &Health) -> &str {
        h.reason().unwrap_or("")
    }

    fn deployment(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": spec,
            "status": status,
        })
    }

    fn with_ready(kind_api: (&str, &str), conditions: Value) -> Value {
        json!({
            "apiVersion": kind_api.0,
            "kind": kind_api.1,
            "metadata": {"name": "x"},
            "status": {"conditions": conditions},
        })
    }

    #[test]
    fn label_and_is_healthy() {
        assert!(Health::Healthy.is_healthy());
        assert_eq!(Health::Healthy.label(), "Healthy");
        let p = Health::Progressing { reason: "r".into() };
        assert!(!p.is_healthy());
        assert_eq!(p.label(), "Progressing");
        let d = Health::Degraded { reason: "r".into() };
        assert!(!d.is_healthy());
        assert_eq!(d.label(), "Degraded");
    }

    #[test]
    fn deployment_rolled_out_is_healthy() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 3, "readyReplicas": 3}),
        );
        assert_eq!(assess(&d), Health::Healthy);
    }

    #[test]
    fn deployment_default_replicas_is_one() {
        let d = deployment(json!({}), json!({"observedGeneration": 2}));
        let h = assess(&d);
        assert_eq!(h.label(), "Progressing");
        assert_eq!(reason(&h), "Deployment: 0 of 1 replicas have been updated");
        let d = deployment(
            json!({}),
            json!({"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(assess(&d), Health::Healthy);
    }

    #[test]
    fn deployment_zero_replicas_is_healthy() {
        let d = deployment(json!({"replicas": 0}), json!({"observedGeneration": 2}));
        assert_eq!(assess(&d), Health::Healthy);
    }

    #[test]
    fn deployment_not_all_updated_is_progressing() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 3}),
        );
        let h = assess(&d);
        assert_eq!(h.label(), "Progressing");
        assert!(reason(&h).contains("1 of 3 replicas have been updated"));
    }

    #[test]
    fn deployment_old_replicas_left_is_progressing() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        let h = assess(&d);
        assert_eq!(h.label(), "Progressing");
        assert_eq!(
            reason(&h),
            "Deployment: 1 old replicas are pending termination"
        );
    }

    #[test]
    fn deployment_unavailable_is_progressing() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}),
        );
        assert_eq!(
            assess(&d),
            Health::Progressing {
                reason: "Deployment: 1 of 3 updated replicas are available".into()
            }
        );
    }

    #[test]
    fn deployment_deadline_exceeded_is_degraded() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "False"},
                {"type": "Progressing", "status": "False",
                 "reason": "ProgressDeadlineExceeded",
                 "message": "ReplicaSet \"web-1\" has timed out progressing."}
            ]}),
        );
        let h = assess(&d);
        assert_eq!(h.label(), "Degraded");
        assert!(reason(&h).contains("progress deadline exceeded"));
        assert!(reason(&h).contains("timed out"));
    }

    #[test]
    fn deployment_progressing_condition_other_reason_is_not_degraded() {
        let d = deployment(
            json!({"replicas": 1}),
            json!({"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                   "conditions": [{"type": "Progressing", "status": "True",
                                   "reason": "NewReplicaSetAvailable"}]}),
        );
        assert_eq!(assess(&d), Health::Healthy);
    }

    #[test]
    fn deployment_paused_is_healthy() {
        let d = deployment(
            json!({"replicas": 3, "paused": true}),
            json!({"replicas": 3, "updatedReplicas": 0, "availableReplicas": 3}),
        );
        assert_eq!(assess(&d), Health::Healthy);
    }

    #[test]
    fn deployment_other_group_version_accepted() {
        let mut d = deployment(json!({"replicas": 2}), json!({}));
        d["apiVersion"] = json!("apps/v1beta2");
        assert_eq!(assess(&d).label(), "Progressing");
        // Same kind in another group is not treated as an apps Deployment.
        d["apiVersion"] = json!("example.com/v1");
        assert_eq!(assess(&d), Health::Healthy);
    }

    #[test]
    fn observed_generation_behind_is_progressing() {
        let d = deployment(
            json!({"replicas": 1}),
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                   "availableReplicas": 1}),
        );
        assert_eq!(
            assess(&d),
            Health::Progressing {
                reason: "Deployment: waiting for the controller to observe generation 2".into()
            }
        );
        // Applies to any kind, including ones otherwise judged by conditions.
        let cm = json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"generation": 5},
            "status": {"observedGeneration": 4,
                       "conditions": [{"type": "Ready", "status": "True"}]},
        });
        assert!(reason(&assess(&cm)).contains("generation 5"));
        // Equal or ahead is fine.
        let ok = json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"generation": 5}, "status": {"observedGeneration": 5},
        });
        assert_eq!(assess(&ok), Health::Healthy);
    }

    fn stateful_set(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "data"},
            "spec": spec, "status": status,
        })
    }

    #[test]
    fn stateful_set_rolled_out_is_healthy() {
        let s = stateful_set(
            json!({"replicas": 3}),
            json!({"readyReplicas": 3, "updatedReplicas": 3,
                   "currentRevision": "db-1", "updateRevision": "db-1"}),
        );
        assert_eq!(assess(&s), Health::Healthy);
    }

    #[test]
    fn stateful_set_revision_mismatch_is_progressing() {
        let s = stateful_set(
            json!({"replicas": 3}),
            json!({"readyReplicas": 3, "updatedReplicas": 3,
                   "currentRevision": "db-1", "updateRevision": "db-2"}),
        );
        let h = assess(&s);
        assert_eq!(h.label(), "Progressing");
        assert!(reason(&h).contains("db-2"));
    }

    #[test]
    fn stateful_set_not_ready_or_not_updated_is_progressing() {
        let s = stateful_set(
            json!({"replicas": 3}),
            json!({"readyReplicas": 2, "updatedReplicas": 3}),
        );
        assert!(reason(&assess(&s)).contains("2 of 3 replicas are ready"));
        let s = stateful_set(
            json!({"replicas": 3}),
            json!({"readyReplicas": 3, "updatedReplicas": 2}),
        );
        assert!(reason(&assess(&s)).contains("2 of 3 replicas have been updated"));
        // Default replicas is 1.
        let s = stateful_set(json!({}), json!({}));
        assert!(reason(&assess(&s)).contains("0 of 1 replicas are ready"));
    }

    #[test]
    fn stateful_set_partition_lowers_update_target() {
        let spec = json!({"replicas": 4, "updateStrategy": {
            "type": "RollingUpdate", "rollingUpdate": {"partition": 2}}});
        let s = stateful_set(
            spec.clone(),
            json!({"readyReplicas": 4, "updatedReplicas": 2,
                   "currentRevision": "db-1", "updateRevision": "db-2"}),
        );
        assert_eq!(assess(&s), Health::Healthy);
        let s = stateful_set(
            spec,
            json!({"readyReplicas": 4, "updatedReplicas": 1,
                   "currentRevision": "db-1", "updateRevision": "db-2"}),
        );
        assert!(reason(&assess(&s)).contains("1 of 2 replicas have been updated"));
    }

    #[test]
    fn stateful_set_on_delete_only_counts_ready() {
        let spec = json!({"replicas": 2, "updateStrategy": {"type": "OnDelete"}});
        let s = stateful_set(
            spec.clone(),
            json!({"readyReplicas": 2, "updatedReplicas": 0,
                   "currentRevision": "db-1", "updateRevision": "db-2"}),
        );
        assert_eq!(assess(&s), Health::Healthy);
        let s = stateful_set(spec, json!({"readyReplicas": 1}));
        assert_eq!(assess(&s).label(), "Progressing");
    }

    fn daemon_set(status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "kube-system", "generation": 1},
            "spec": {}, "status": status,
        })
    }

    #[test]
    fn daemon_set_rolled_out_is_healthy() {
        let d = daemon_set(json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                                  "numberAvailable": 3, "updatedNumberScheduled": 3}));
        assert_eq!(assess(&d), Health::Healthy);
    }

    #[test]
    fn daemon_set_short_is_progressing() {
        let d = daemon_set(json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                                  "numberAvailable": 2, "updatedNumberScheduled": 3}));
        assert!(reason(&assess(&d)).contains("2 of 3 updated pods are available"));
        let d = daemon_set(json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                                  "numberAvailable": 3}));
        assert!(reason(&assess(&d)).contains("0 of 3 scheduled pods have been updated"));
    }

    #[test]
    fn daemon_set_desired_zero_is_healthy_once_observed() {
        let d = daemon_set(json!({"observedGeneration": 1, "desiredNumberScheduled": 0}));
        assert_eq!(assess(&d), Health::Healthy);
        let d = daemon_set(json!({}));
        assert_eq!(assess(&d).label(), "Progressing");
    }

    fn job(conditions: Value) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "default"},
            "status": {"conditions": conditions},
        })
    }

    #[test]
    fn job_complete_is_healthy() {
        let j = job(json!([{"type": "Complete", "status": "True"}]));
        assert_eq!(assess(&j), Health::Healthy);
        let j = job(json!([{"type": "SuccessCriteriaMet", "status": "True"}]));
        assert_eq!(assess(&j), Health::Healthy);
    }

    #[test]
    fn job_failed_is_degraded() {
        let j = job(json!([
            {"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}
        ]));
        assert_eq!(
            assess(&j),
            Health::Degraded {
                reason: "Job: BackoffLimitExceeded: Job has reached the specified backoff limit"
                    .into()
            }
        );
    }

    #[test]
    fn job_running_is_progressing() {
        let j = job(json!([{"type": "Complete", "status": "False"}]));
        assert_eq!(
            assess(&j),
            Health::Progressing {
                reason: "Job: job has not completed".into()
            }
        );
        let j = json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"active": 1}});
        assert_eq!(assess(&j).label(), "Progressing");
    }

    #[test]
    fn ready_true_is_healthy() {
        let o = with_ready(
            ("cert-manager.io/v1", "Certificate"),
            json!([{"type": "Ready", "status": "True"}]),
        );
        assert_eq!(assess(&o), Health::Healthy);
    }

    #[test]
    fn ready_false_is_progressing_with_reason() {
        let o = with_ready(
            ("cert-manager.io/v1", "Certificate"),
            json!([{"type": "Ready", "status": "False", "reason": "Issuing",
                    "message": "Issuing certificate as Secret does not exist"}]),
        );
        assert_eq!(
            assess(&o),
            Health::Progressing {
                reason: "Certificate: Issuing: Issuing certificate as Secret does not exist".into()
            }
        );
    }

    #[test]
    fn ready_false_with_stalled_is_degraded() {
        let o = with_ready(
            ("source.toolkit.fluxcd.io/v1", "GitRepository"),
            json!([{"type": "Ready", "status": "False", "reason": "Progressing"},
                   {"type": "Stalled", "status": "True", "reason": "InvalidURL"}]),
        );
        assert_eq!(assess(&o).label(), "Degraded");
        // Stalled=False does not degrade.
        let o = with_ready(
            ("source.toolkit.fluxcd.io/v1", "GitRepository"),
            json!([{"type": "Ready", "status": "False", "reason": "Progressing"},
                   {"type": "Stalled", "status": "False"}]),
        );
        assert_eq!(assess(&o).label(), "Progressing");
    }

    #[test]
    fn ready_false_with_failure_reason_is_degraded() {
        for r in ["Failed", "Failure", "Error", "InstallFailed", "error"] {
            let o = with_ready(
                ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
                json!([{"type": "Ready", "status": "False", "reason": r}]),
            );
            assert_eq!(assess(&o).label(), "Degraded", "reason {r}");
        }
    }

    #[test]
    fn ready_unknown_is_progressing() {
        let o = with_ready(
            ("example.com/v1", "Widget"),
            json!([{"type": "Ready", "status": "Unknown", "message": "reconciling"}]),
        );
        assert_eq!(
            assess(&o),
            Health::Progressing {
                reason: "Widget: readiness is Unknown: reconciling".into()
            }
        );
        let o = with_ready(("example.com/v1", "Widget"), json!([{"type": "Ready"}]));
        assert_eq!(assess(&o).label(), "Progressing");
    }

    #[test]
    fn plain_objects_are_healthy() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "c"}, "data": {"a": "b"}});
        assert_eq!(assess(&cm), Health::Healthy);
        let svc = json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "s"}, "status": {"loadBalancer": {}}});
        assert_eq!(assess(&svc), Health::Healthy);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "n"}, "status": {"phase": "Active"}});
        assert_eq!(assess(&ns), Health::Healthy);
        let other = with_ready(
            ("example.com/v1", "Widget"),
            json!([{"type": "Synced", "status": "False"}]),
        );
        assert_eq!(assess(&other), Health::Healthy);
    }

    #[test]
    fn namespace_terminating_is_progressing() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "n"}, "status": {"phase": "Terminating"}});
        assert_eq!(
            assess(&ns),
            Health::Progressing {
                reason: "Namespace: namespace is terminating".into()
            }
        );
    }

    #[test]
    fn pvc_phases() {
        let pvc = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "data", "namespace": "db"},
                   "status": {"phase": phase}})
        };
        assert_eq!(assess(&pvc("Pending")).label(), "Progressing");
        assert_eq!(assess(&pvc("Lost")).label(), "Degraded");
        assert_eq!(assess(&pvc("Bound")), Health::Healthy);
    }

    #[test]
    fn aggregate_picks_worst_and_names_object() {
        let healthy = Health::Healthy;
        let prog = Health::Progressing {
            reason: "Deployment: 1 of 3 updated replicas are available".into(),
        };
        let deg1 = Health::Degraded {
            reason: "Job: BackoffLimitExceeded".into(),
        };
        let deg2 = Health::Degraded {
            reason: "later".into(),
        };
        let got = aggregate([
            ("ConfigMap/default/c", &healthy),
            ("Deployment/default/web", &prog),
            ("Job/default/migrate", &deg1),
            ("Namespace/n", &deg2),
        ]);
        assert_eq!(
            got,
            Health::Degraded {
                reason: "Job/default/migrate: Job: BackoffLimitExceeded".into()
            }
        );
        let got = aggregate([
            ("ConfigMap/default/c", &healthy),
            ("Deployment/default/web", &prog),
        ]);
        assert_eq!(
            got,
            Health::Progressing {
                reason: "Deployment/default/web: Deployment: 1 of 3 updated replicas are available"
                    .into()
            }
        );
    }

    #[test]
    fn aggregate_first_among_equals_wins() {
        let a = Health::Progressing { reason: "a".into() };
        let b = Health::Progressing { reason: "b".into() };
        assert_eq!(
            aggregate([("Namespace/first", &a), ("Namespace/second", &b)]),
            Health::Progressing {
                reason: "Namespace/first: a".into()
            }
        );
    }

    #[test]
    fn aggregate_empty_or_all_healthy_is_healthy() {
        assert_eq!(aggregate(std::iter::empty()), Health::Healthy);
        let h = Health::Healthy;
        assert_eq!(
            aggregate([("ConfigMap/a/b", &h), ("Namespace/a", &h)]),
            Health::Healthy
        );
    }

    #[test]
    fn garbage_input_does_not_panic() {
        let inputs = [
            json!(42),
            json!(null),
            json!("Deployment"),
            json!([1, 2, 3]),
            json!({}),
            json!({"status": "weird"}),
            json!({"apiVersion": 7, "kind": ["Deployment"]}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": "x", "status": 3}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "spec": {"replicas": 1e300}, "status": {"updatedReplicas": -5}}),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                   "spec": {"replicas": u64::MAX,
                            "updateStrategy": {"rollingUpdate": {"partition": i64::MIN}}},
                   "status": {"readyReplicas": u64::MAX, "updatedReplicas": 0}}),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                   "spec": {"replicas": i64::MIN,
                            "updateStrategy": {"rollingUpdate": {"partition": i64::MAX}}}}),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "status": []}),
            json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": "no"}}),
            json!({"apiVersion": "batch/v1", "kind": "Job",
                   "status": {"conditions": [null, 1, {"type": 3}, {"type": "Failed"}]}}),
            json!({"kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": 1,
                                                                "reason": {}}]}}),
            json!({"metadata": {"generation": "2"}, "status": {"observedGeneration": 1}}),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": 1}}),
        ];
        for input in &inputs {
            let _ = assess(input);
        }
        assert_eq!(assess(&json!(42)), Health::Healthy);
        assert_eq!(assess(&json!({"status": "weird"})), Health::Healthy);
        assert_eq!(
            assess(&json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 1}})),
            Health::Progressing {
                reason: "waiting for the controller to observe generation 3".into()
            }
        );
    }
}
