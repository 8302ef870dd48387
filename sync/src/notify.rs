//! Notifications: which audit records a GitSync's webhook receives, and what the body says.
//!
//! The shape is what Flux notification-controller's generic webhook receivers and Argo CD
//! Notifications users know: an `involvedObject`, a `severity`, a `reason`, a `message`, a
//! `metadata.revision`, plus a `text` field (Slack, Mattermost and Teams incoming webhooks show
//! it) and the full `record` for tools. The body is built only from audit records, which hold
//! paths, names, times and revisions: never a value of an object, never the webhook's own
//! address or token.
//!
//! Delivery is someone else's job (the controller binary's [`Notifier`]): a sync only queues,
//! it never waits for a receiver.

use futures::future::BoxFuture;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{
    audit::{DriftAction, DriftRecord, SyncRecord, SyncResult},
    resource::{GROUP, NotificationEvent},
};

/// Key of the notification Secret holding the webhook URL (as Flux's Provider Secrets).
pub const ADDRESS_KEY: &str = "address";
/// Optional key holding a bearer token.
pub const TOKEN_KEY: &str = "token";
/// Longest address or token accepted from the Secret.
const MAX_SECRET_VALUE: usize = 4096;

/// Where to send, read from the GitSync's notification Secret. Both fields are secrets (a
/// Slack webhook URL is a credential): never logged, never in a status or a metric.
#[derive(Clone)]
pub struct Webhook {
    /// The URL.
    pub address: Zeroizing<String>,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<Zeroizing<String>>,
    /// `namespace/name` of the GitSync, for the delivery's own logs and metrics.
    pub gitsync: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("gitsync", &self.gitsync)
            .finish_non_exhaustive()
    }
}

/// Reads the webhook from the Secret's data; messages name keys, never values.
pub fn webhook_from_secret(
    data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>,
    gitsync: &str,
) -> Result<Webhook, String> {
    let text = |key: &str| -> Result<Option<Zeroizing<String>>, String> {
        match data.get(key) {
            None => Ok(None),
            Some(bytes) if bytes.0.len() > MAX_SECRET_VALUE => {
                Err(format!("key {key} is longer than {MAX_SECRET_VALUE} bytes"))
            }
            Some(bytes) => String::from_utf8(bytes.0.clone())
                .map(|s| Some(Zeroizing::new(s.trim().to_string())))
                .map_err(|_| format!("key {key} is not UTF-8")),
        }
    };
    let address = text(ADDRESS_KEY)?
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("needs key {ADDRESS_KEY} (the webhook URL)"))?;
    Ok(Webhook {
        address,
        token: text(TOKEN_KEY)?.filter(|t| !t.is_empty()),
        gitsync: gitsync.to_string(),
    })
}

/// Delivers notifications; implemented by the controller binary.
pub trait Notifier: Send + Sync {
    /// Whether the controller may send to `address` (scheme, and the addresses its host
    /// resolves to). The error is shown in the GitSync's `Notifications` condition: it may
    /// name the host, never the path or query (they often carry the credential).
    fn check<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Queues one delivery and returns at once; a full queue drops it (and counts the drop).
    fn send(&self, webhook: Webhook, body: Value);
}

/// Which notification kind a drift record or sync record is, if the GitSync asked for it.
/// `events` empty means every kind.
pub fn wanted(events: &[NotificationEvent], kind: NotificationEvent) -> bool {
    events.is_empty() || events.contains(&kind)
}

/// Whether a sync record is a recovery: it succeeded and the sync before it had failed.
pub fn is_recovery(record: &SyncRecord, previous: Option<&SyncRecord>) -> bool {
    record.result == SyncResult::Succeeded
        && previous.is_some_and(|p| p.result == SyncResult::Failed)
}

fn short(revision: &str) -> String {
    revision.chars().take(12).collect()
}

fn envelope(
    namespace: &str,
    name: &str,
    severity: &str,
    reason: &str,
    message: String,
    (revision, at): (&str, &str),
    record: Value,
) -> Value {
    json!({
        "involvedObject": {
            "apiVersion": format!("{GROUP}/v1alpha1"),
            "kind": "GitSync",
            "namespace": namespace,
            "name": name,
        },
        "severity": severity,
        "timestamp": at,
        "reason": reason,
        "message": message,
        "metadata": {"revision": revision},
        "reportingController": "gitops-controller",
        "text": format!("[{severity}] GitSync {namespace}/{name}: {message}"),
        "record": record,
    })
}

/// The one-line description of a drift record (also the Event note and the log message).
pub fn drift_message(record: &DriftRecord) -> String {
    let what = match record.change {
        crate::audit::DriftChange::Changed => {
            let mut paths = record.paths.join(", ");
            if record.paths_omitted > 0 {
                paths.push_str(&format!(" and {} more", record.paths_omitted));
            }
            format!("{} changed ({paths})", record.object)
        }
        crate::audit::DriftChange::Deleted => format!("{} was deleted", record.object),
        crate::audit::DriftChange::TakenOver => {
            format!("{} lost this GitSync's labels", record.object)
        }
    };
    let by = if record.managers.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = record
            .managers
            .iter()
            .map(|m| format!("{} ({})", m.manager, m.operation))
            .collect();
        format!(" by field manager {}", names.join(", "))
    };
    let rv = record
        .resource_version_before
        .as_deref()
        .map(|rv| format!(", resourceVersion {rv}"))
        .unwrap_or_default();
    let action = match record.action {
        DriftAction::Reverted => "reverted to",
        DriftAction::Recreated => "re-created from",
        DriftAction::ReportedOnly => "left as is (selfHeal is off); Git has",
    };
    format!(
        "{what}{by}{rv}; {action} revision {}",
        short(&record.revision)
    )
}

/// The one-line description of a sync record.
pub fn sync_message(record: &SyncRecord) -> String {
    let commit = match (&record.commit_subject, &record.commit_author) {
        (Some(subject), Some(author)) => format!(" ({subject:?} by {author})"),
        (Some(subject), None) => format!(" ({subject:?})"),
        _ => String::new(),
    };
    match record.result {
        SyncResult::Succeeded => format!(
            "synced revision {}{commit} after {}: {} created, {} configured, {} unchanged, {} pruned, {} drifted",
            short(&record.revision),
            record.trigger.as_str(),
            record.created,
            record.configured,
            record.unchanged,
            record.pruned,
            record.drifted
        ),
        SyncResult::Failed => format!(
            "sync of revision {}{commit} failed ({}): {}",
            if record.revision.is_empty() {
                "(not fetched)".to_string()
            } else {
                short(&record.revision)
            },
            record.reason,
            record.message
        ),
    }
}

/// The body for a drift record.
pub fn drift_payload(namespace: &str, name: &str, record: &DriftRecord) -> Value {
    let severity = match record.action {
        DriftAction::ReportedOnly => "warning",
        DriftAction::Reverted | DriftAction::Recreated => "info",
    };
    envelope(
        namespace,
        name,
        severity,
        record.action.event_reason(),
        drift_message(record),
        (&record.revision, &record.detected_at),
        serde_json::to_value(record).unwrap_or(Value::Null),
    )
}

/// The body for a sync record (`recovered`: it ended a run of failures).
pub fn sync_payload(namespace: &str, name: &str, record: &SyncRecord, recovered: bool) -> Value {
    let (severity, reason) = match (record.result, recovered) {
        (SyncResult::Failed, _) => ("error", "SyncFailed"),
        (SyncResult::Succeeded, true) => ("info", "SyncRecovered"),
        (SyncResult::Succeeded, false) => ("info", "SyncSucceeded"),
    };
    envelope(
        namespace,
        name,
        severity,
        reason,
        sync_message(record),
        (&record.revision, &record.finished_at),
        serde_json::to_value(record).unwrap_or(Value::Null),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;
    use crate::audit::{
        DriftChange, FieldManagerRecord, ObjectReference, SyncRecord, SyncResult, Trigger,
    };

    fn drift() -> DriftRecord {
        DriftRecord {
            object: ObjectReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "web".into(),
            },
            change: DriftChange::Changed,
            paths: vec!["spec.replicas".into()],
            paths_omitted: 0,
            managers: vec![FieldManagerRecord {
                manager: "alice-laptop".into(),
                operation: "Update".into(),
                time: "2026-01-01T00:00:00Z".into(),
                paths: vec!["spec.replicas".into()],
            }],
            resource_version_before: Some("4711".into()),
            revision: "0123456789abcdef0123".into(),
            action: DriftAction::Reverted,
            detected_at: "2026-01-01T00:00:01Z".into(),
        }
    }

    #[test]
    fn drift_payload_names_who_what_and_the_revision() {
        let body = drift_payload("ops", "app", &drift());
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "[info] GitSync ops/app: Deployment/shop/web changed (spec.replicas) by field manager alice-laptop (Update), resourceVersion 4711; reverted to revision 0123456789ab"
        );
        assert_eq!(body["reason"], "DriftReverted");
        assert_eq!(body["involvedObject"]["kind"], "GitSync");
        assert_eq!(body["metadata"]["revision"], "0123456789abcdef0123");
        assert_eq!(body["record"]["managers"][0]["manager"], "alice-laptop");
        let mut reported = drift();
        reported.action = DriftAction::ReportedOnly;
        assert_eq!(
            drift_payload("ops", "app", &reported)["reason"],
            "DriftDetected"
        );
    }

    #[test]
    fn sync_payloads_say_failed_and_recovered() {
        let mut record = SyncRecord {
            revision: "abc".into(),
            commit_subject: Some("scale web".into()),
            commit_author: Some("Alice".into()),
            started_at: "t0".into(),
            finished_at: "t1".into(),
            trigger: Trigger::NewRevision,
            result: SyncResult::Failed,
            reason: "Forbidden".into(),
            message: "configmaps is forbidden".into(),
            created: 0,
            configured: 0,
            unchanged: 0,
            pruned: 0,
            drifted: 0,
            attempts: 1,
        };
        let failed = sync_payload("ops", "app", &record, false);
        assert_eq!(failed["reason"], "SyncFailed");
        assert_eq!(failed["severity"], "error");
        assert!(
            failed["text"]
                .as_str()
                .unwrap()
                .contains("\"scale web\" by Alice")
        );
        let previous = record.clone();
        record.result = SyncResult::Succeeded;
        assert!(is_recovery(&record, Some(&previous)));
        assert!(!is_recovery(&record, Some(&record)));
        assert_eq!(
            sync_payload("ops", "app", &record, true)["reason"],
            "SyncRecovered"
        );
        assert!(wanted(&[], NotificationEvent::Drift));
        assert!(!wanted(
            &[NotificationEvent::SyncFailed],
            NotificationEvent::Drift
        ));
    }

    #[test]
    fn the_webhook_comes_from_the_documented_keys_and_stays_out_of_debug() {
        let data: BTreeMap<String, ByteString> = [
            ("address", "https://hooks.example/T0/secret-path"),
            ("token", "s3cr3t"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
        let hook = webhook_from_secret(&data, "ops/app").unwrap();
        assert_eq!(
            hook.address.as_str(),
            "https://hooks.example/T0/secret-path"
        );
        assert_eq!(hook.token.as_deref().map(String::as_str), Some("s3cr3t"));
        let shown = format!("{hook:?}");
        assert!(
            !shown.contains("secret-path") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let err = webhook_from_secret(&BTreeMap::new(), "ops/app").unwrap_err();
        assert!(err.contains("address"), "{err}");
    }
}
