//! The overview: one row per GitSync the user can list, and the filters over them. Pure: it
//! takes GitSync objects (as the API server returned them) and the query, and returns rows.

use std::collections::BTreeSet;

use sealed_secrets_sync::{
    audit::{DriftAction, SyncRecord},
    resource::{Condition, GitSync},
};

use super::{Age, short_revision};

/// One GitSync as the overview shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `Ready` status (`True`, `False`, `Unknown`), reason and message.
    pub ready: ConditionView,
    /// `Healthy` status, reason and message.
    pub healthy: ConditionView,
    /// Short SHA of `status.lastAppliedRevision` (empty when nothing was applied yet).
    pub revision: String,
    /// Subject of that commit, from the newest history record of that revision.
    pub subject: String,
    /// Its author.
    pub author: String,
    /// When the newest sync finished, as an age.
    pub last_sync: Option<Age>,
    /// Objects in the inventory.
    pub objects: usize,
    /// Objects reported drifted and not corrected at the applied revision.
    pub drifted: usize,
    /// `spec.suspend`.
    pub suspended: bool,
    /// The Git URL.
    pub source: String,
}

/// A status condition, ready to show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConditionView {
    /// `True`, `False` or `Unknown` (also when absent).
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Detail.
    pub message: String,
}

impl ConditionView {
    fn of(conditions: &[Condition], type_: &str) -> ConditionView {
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| ConditionView {
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .unwrap_or_else(|| ConditionView {
                status: "Unknown".into(),
                reason: "NotReported".into(),
                message: String::new(),
            })
    }

    /// `ok`, `bad` or `unknown`: the CSS class of its badge.
    pub fn class(&self) -> &'static str {
        match (self.status.as_str(), self.reason.as_str()) {
            ("True", _) => "ok",
            // Healthy=False while a rollout is under way, or Ready=False because someone
            // suspended it, is not a failure.
            ("False", "Progressing" | "Suspended") => "unknown",
            ("False", _) => "bad",
            _ => "unknown",
        }
    }
}

/// The overview's row for one GitSync.
pub fn row(sync: &GitSync, now: jiff::Timestamp) -> Row {
    let status = sync.status.clone().unwrap_or_default();
    let applied = status.last_applied_revision.clone().unwrap_or_default();
    let commit = status
        .history
        .iter()
        .find(|r| !applied.is_empty() && r.revision == applied);
    Row {
        namespace: sync.metadata.namespace.clone().unwrap_or_default(),
        name: sync.metadata.name.clone().unwrap_or_default(),
        ready: ConditionView::of(&status.conditions, "Ready"),
        healthy: ConditionView::of(&status.conditions, "Healthy"),
        revision: short_revision(&applied).to_string(),
        subject: commit
            .and_then(|r| r.commit_subject.clone())
            .unwrap_or_default(),
        author: commit
            .and_then(|r| r.commit_author.clone())
            .unwrap_or_default(),
        last_sync: status
            .history
            .first()
            .and_then(|r: &SyncRecord| Age::since(&r.finished_at, now)),
        objects: status.inventory.as_ref().map_or(0, |i| i.entries.len()),
        drifted: drifted_objects(&status.drift, &applied),
        suspended: sync.spec.suspend,
        source: sync.spec.source.url.clone(),
    }
}

/// Objects that drifted at the applied revision and were left as they were (no self-heal):
/// reverted and re-created ones are back as in Git.
fn drifted_objects(drift: &[sealed_secrets_sync::audit::DriftRecord], applied: &str) -> usize {
    drift
        .iter()
        .filter(|d| d.revision == applied && d.action == DriftAction::ReportedOnly)
        .map(|d| d.object.to_string())
        .collect::<BTreeSet<_>>()
        .len()
}

/// What the overview's filter form asks for.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Only this namespace (empty: all).
    pub namespace: String,
    /// `ready`, `failing`, `degraded`, `drifted`, `suspended` (empty: all).
    pub state: String,
    /// Case-insensitive text in the name, namespace, revision, subject, author or source.
    pub q: String,
}

/// The states the filter offers.
pub const STATES: &[&str] = &["ready", "failing", "degraded", "drifted", "suspended"];

impl Filter {
    /// Whether `row` passes.
    pub fn keeps(&self, row: &Row) -> bool {
        if !self.namespace.is_empty() && row.namespace != self.namespace {
            return false;
        }
        let state = match self.state.as_str() {
            "" => true,
            "ready" => row.ready.status == "True",
            "failing" => row.ready.status == "False",
            "degraded" => row.healthy.status == "False",
            "drifted" => row.drifted > 0,
            "suspended" => row.suspended,
            _ => true,
        };
        if !state {
            return false;
        }
        let q = self.q.trim().to_lowercase();
        q.is_empty()
            || [
                &row.name,
                &row.namespace,
                &row.revision,
                &row.subject,
                &row.author,
                &row.source,
            ]
            .iter()
            .any(|field| field.to_lowercase().contains(&q))
    }

    /// The rows that pass, failing ones first, then by namespace and name.
    pub fn apply(&self, rows: Vec<Row>) -> Vec<Row> {
        let mut kept: Vec<Row> = rows.into_iter().filter(|r| self.keeps(r)).collect();
        kept.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| a.namespace.cmp(&b.namespace))
                .then_with(|| a.name.cmp(&b.name))
        });
        kept
    }
}

/// Failing first, then degraded, then the rest.
fn rank(row: &Row) -> u8 {
    match (row.ready.status.as_str(), row.healthy.status.as_str()) {
        ("False", _) => 0,
        (_, "False") => 1,
        _ => 2,
    }
}

/// The namespaces of `rows`, for the filter's choices.
pub fn namespaces(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .map(|r| r.namespace.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sync(namespace: &str, name: &str, ready: &str, healthy: &str, suspend: bool) -> GitSync {
        serde_json::from_value(json!({
            "apiVersion": "gitops.sealed-secrets-rs.io/v1alpha1",
            "kind": "GitSync",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": {"url": "https://git.example/shop.git"}, "suspend": suspend},
            "status": {
                "lastAppliedRevision": "0123456789abcdef0123456789abcdef01234567",
                "conditions": [
                    {"type": "Ready", "status": ready, "reason": "Synced", "message": "m", "lastTransitionTime": "2026-12-07T10:00:05Z"},
                    {"type": "Healthy", "status": healthy, "reason": "Degraded", "message": "web: 0 of 1", "lastTransitionTime": "2026-12-07T10:00:05Z"}
                ],
                "inventory": {"entries": [{"id": "shop_web_apps_Deployment", "v": "v1"}, {"id": "shop_cfg__ConfigMap", "v": "v1"}]},
                "history": [{
                    "revision": "0123456789abcdef0123456789abcdef01234567",
                    "commitSubject": "Raise replicas <b>now</b>",
                    "commitAuthor": "Ada",
                    "startedAt": "2026-12-07T10:00:00Z",
                    "finishedAt": "2026-12-07T10:00:05Z",
                    "trigger": "NewRevision", "result": "Succeeded", "reason": "Synced"
                }],
                "drift": [
                    {"object": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "cfg"},
                     "change": "Changed", "revision": "0123456789abcdef0123456789abcdef01234567",
                     "action": "ReportedOnly", "detectedAt": "2026-12-07T10:01:00Z"},
                    {"object": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "cfg"},
                     "change": "Changed", "revision": "0123456789abcdef0123456789abcdef01234567",
                     "action": "ReportedOnly", "detectedAt": "2026-12-07T10:02:00Z"},
                    {"object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
                     "change": "Changed", "revision": "0123456789abcdef0123456789abcdef01234567",
                     "action": "Reverted", "detectedAt": "2026-12-07T10:01:00Z"},
                    {"object": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "old"},
                     "change": "Changed", "revision": "ffff", "action": "ReportedOnly",
                     "detectedAt": "2026-12-07T09:00:00Z"}
                ]
            }
        }))
        .unwrap()
    }

    fn now() -> jiff::Timestamp {
        "2026-12-07T10:03:05Z".parse().unwrap()
    }

    #[test]
    fn a_row_reads_status_and_history() {
        let row = row(&sync("shop", "web", "True", "False", false), now());
        assert_eq!(row.revision, "0123456");
        assert_eq!(row.subject, "Raise replicas <b>now</b>");
        assert_eq!(row.author, "Ada");
        assert_eq!(row.objects, 2);
        assert_eq!(
            row.drifted, 1,
            "one object left drifted at the applied revision"
        );
        assert_eq!(row.last_sync.unwrap().text, "3m");
        assert_eq!(row.ready.class(), "ok");
        assert_eq!(row.healthy.class(), "bad");
        let rolling = ConditionView {
            status: "False".into(),
            reason: "Progressing".into(),
            message: String::new(),
        };
        assert_eq!(rolling.class(), "unknown");
        assert_eq!(row.healthy.message, "web: 0 of 1");
    }

    #[test]
    fn a_new_gitsync_has_unknown_conditions() {
        let fresh: GitSync = serde_json::from_value(json!({
            "apiVersion": "gitops.sealed-secrets-rs.io/v1alpha1", "kind": "GitSync",
            "metadata": {"name": "n", "namespace": "a"},
            "spec": {"source": {"url": "u"}}
        }))
        .unwrap();
        let row = row(&fresh, now());
        assert_eq!(row.ready.status, "Unknown");
        assert_eq!(row.ready.class(), "unknown");
        assert_eq!(
            (row.revision.as_str(), row.objects, row.drifted),
            ("", 0, 0)
        );
        assert!(row.last_sync.is_none());
    }

    #[test]
    fn filters_combine_and_failing_rows_come_first() {
        let rows = vec![
            row(&sync("b", "ok", "True", "True", false), now()),
            row(&sync("a", "broken", "False", "True", false), now()),
            row(&sync("a", "sick", "True", "False", true), now()),
        ];
        let names = |f: Filter| -> Vec<String> {
            f.apply(rows.clone()).into_iter().map(|r| r.name).collect()
        };
        assert_eq!(names(Filter::default()), ["broken", "sick", "ok"]);
        let by = |namespace: &str, state: &str, q: &str| Filter {
            namespace: namespace.into(),
            state: state.into(),
            q: q.into(),
        };
        assert_eq!(names(by("a", "", "")), ["broken", "sick"]);
        assert_eq!(names(by("", "failing", "")), ["broken"]);
        assert_eq!(names(by("", "degraded", "")), ["sick"]);
        assert_eq!(names(by("", "suspended", "")), ["sick"]);
        assert_eq!(names(by("", "ready", "")), ["sick", "ok"]);
        assert_eq!(names(by("", "drifted", "")).len(), 3);
        assert_eq!(names(by("", "", "  SICK ")), ["sick"]);
        assert_eq!(names(by("", "", "ada")).len(), 3, "author matches");
        assert_eq!(names(by("", "", "0123456")).len(), 3, "revision matches");
        assert!(names(by("b", "failing", "")).is_empty());
        assert_eq!(namespaces(&rows), ["a", "b"]);
    }
}
