//! Where audit records go besides status: an Event on the GitSync, one structured log line
//! (target `audit`), and the GitSync's webhook when it asked for that kind of record.
//!
//! Events expire with the API server's event TTL (an hour by default) and status keeps only
//! the latest records; the log line is the durable trail a log shipper keeps. It is written at
//! `info` on the `audit` target, which the controller's default log filter always lets through,
//! whatever `--log-level` says. Every field comes from an audit record, so none holds a value
//! of an object (see [`crate::audit`]).
//!
//! Nothing here may fail or delay a sync: Event writes are awaited with the API client's own
//! timeout and their errors only logged; notifications are queued ([`crate::notify::Notifier`]).

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference as KubeObjectReference;
use kube::{
    Resource,
    runtime::events::{Event, EventType, Recorder},
};

use crate::{
    audit::{DriftAction, DriftRecord, MAX_TEXT, SyncRecord, SyncResult, cut},
    notify::{self, Notifier, Webhook},
    resource::{GitSync, NotificationEvent},
};

/// Longest Event note (the API's limit is 1 KiB).
const MAX_NOTE: usize = 1000;

/// The sinks of one reconcile's records.
pub struct Trail<'a> {
    /// The GitSync.
    pub sync: &'a GitSync,
    /// Events, when the controller records them.
    pub recorder: Option<&'a Recorder>,
    /// The webhook and its deliverer, when the GitSync has one that passed the checks.
    pub webhook: Option<(Webhook, Arc<dyn Notifier>)>,
}

impl Trail<'_> {
    fn id(&self) -> (String, String) {
        (
            self.sync.metadata.namespace.clone().unwrap_or_default(),
            self.sync.metadata.name.clone().unwrap_or_default(),
        )
    }

    fn wanted(&self, kind: NotificationEvent) -> bool {
        let events = self
            .sync
            .spec
            .notifications
            .as_ref()
            .map(|n| n.events.as_slice())
            .unwrap_or_default();
        notify::wanted(events, kind)
    }

    /// A drift record: audit line, and with `publish` the Event `DriftReverted` /
    /// `DriftDetected` and the webhook.
    pub async fn drift(&self, record: &DriftRecord, publish: bool) {
        let (namespace, name) = self.id();
        let message = notify::drift_message(record);
        let managers: Vec<String> = record
            .managers
            .iter()
            .map(|m| format!("{}/{}/{}", m.manager, m.operation, m.time))
            .collect();
        tracing::info!(
            target: "audit",
            audit = "drift",
            gitsync = %format!("{namespace}/{name}"),
            object = %record.object,
            api_version = %record.object.api_version,
            change = ?record.change,
            action = record.action.as_str(),
            paths = %record.paths.join(","),
            managers = %managers.join(","),
            resource_version_before = record.resource_version_before.as_deref().unwrap_or(""),
            revision = %record.revision,
            detected_at = %record.detected_at,
            "{message}"
        );
        if !publish {
            return;
        }
        let type_ = match record.action {
            DriftAction::ReportedOnly => EventType::Warning,
            DriftAction::Reverted | DriftAction::Recreated => EventType::Normal,
        };
        let related = KubeObjectReference {
            api_version: Some(record.object.api_version.clone()),
            kind: Some(record.object.kind.clone()),
            namespace: (!record.object.namespace.is_empty())
                .then(|| record.object.namespace.clone()),
            name: Some(record.object.name.clone()),
            ..Default::default()
        };
        self.event(
            type_,
            record.action.event_reason(),
            "CorrectDrift",
            &message,
            Some(related),
        )
        .await;
        if self.wanted(NotificationEvent::Drift)
            && let Some((webhook, notifier)) = &self.webhook
        {
            notifier.send(
                webhook.clone(),
                notify::drift_payload(&namespace, &name, record),
            );
        }
    }

    /// One Event saying that `count` more drift records of this sync were only logged.
    pub async fn more_drift(&self, count: usize) {
        let note = format!(
            "{count} more objects drifted in this sync; see `kubeseal sync drift` and the controller's audit log lines"
        );
        self.event(
            EventType::Warning,
            "DriftDetected",
            "CorrectDrift",
            &note,
            None,
        )
        .await;
    }

    /// A sync record: Event `SyncSucceeded` / `SyncFailed`, audit line, and the webhook for a
    /// new failure (not each retry of it) or a recovery.
    pub async fn sync_record(&self, record: &SyncRecord, recovered: bool) {
        let (namespace, name) = self.id();
        let message = notify::sync_message(record);
        tracing::info!(
            target: "audit",
            audit = "sync",
            gitsync = %format!("{namespace}/{name}"),
            revision = %record.revision,
            commit_subject = record.commit_subject.as_deref().unwrap_or(""),
            commit_author = record.commit_author.as_deref().unwrap_or(""),
            trigger = record.trigger.as_str(),
            result = ?record.result,
            reason = %record.reason,
            created = record.created,
            configured = record.configured,
            unchanged = record.unchanged,
            pruned = record.pruned,
            drifted = record.drifted,
            attempts = record.attempts,
            started_at = %record.started_at,
            finished_at = %record.finished_at,
            "{message}"
        );
        let (type_, reason) = match record.result {
            SyncResult::Succeeded => (EventType::Normal, "SyncSucceeded"),
            SyncResult::Failed => (EventType::Warning, "SyncFailed"),
        };
        self.event(type_, reason, "Sync", &message, None).await;
        let Some((webhook, notifier)) = &self.webhook else {
            return;
        };
        let send = match record.result {
            SyncResult::Failed => {
                record.attempts == 1 && self.wanted(NotificationEvent::SyncFailed)
            }
            SyncResult::Succeeded => recovered && self.wanted(NotificationEvent::Recovered),
        };
        if send {
            notifier.send(
                webhook.clone(),
                notify::sync_payload(&namespace, &name, record, recovered),
            );
        }
    }

    async fn event(
        &self,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        secondary: Option<KubeObjectReference>,
    ) {
        let Some(recorder) = self.recorder else {
            return;
        };
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(cut(note, MAX_NOTE)),
            action: action.into(),
            secondary,
        };
        let reference = self.sync.object_ref(&());
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::debug!(reason, error = %cut(&err.to_string(), MAX_TEXT), "event not recorded");
        }
    }
}
