//! The audit trail of a GitSync: what each sync did (history) and what each drift correction
//! found (drift records), as kept in status, sent as Events and written as audit log lines.
//!
//! Git records what was meant; these records say what happened in the cluster. Everything
//! here is pure: which paths differ, which field managers own them (from `managedFields`),
//! how records are bounded, and in which order they are kept. The reconciler does the I/O.
//!
//! What a record may hold: object names, field *paths*, field manager names, times,
//! resourceVersions, revisions, counts. Never a field's value: a path such as `data.password`
//! is fine, the password is not. The functions below never copy a value out of an object.
//!
//! "Who" is the field manager: a name the client chose (`kubectl-edit`,
//! `kubectl-client-side-apply`, `--field-manager=alice-laptop`, a controller's name). It is
//! not the authenticated user; the recorded `resourceVersionBefore` and time let an operator
//! find the exact request, and its user, in the API server's audit log (docs/gitops.md).
//!
//! Order: newest first, in history and in drift records alike (index 0 is the latest): the
//! latest is what people look for, and truncation drops the oldest.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{manifest::ObjectKey, plan};

/// Default of `spec.historyLimit`.
pub const DEFAULT_HISTORY_LIMIT: u32 = 10;
/// Largest `spec.historyLimit` honoured.
pub const MAX_HISTORY_LIMIT: u32 = 50;
/// Drift records kept in status.
pub const MAX_DRIFT_RECORDS: usize = 20;
/// Byte cap of the drift records in status (serialized JSON); the oldest go first.
pub const MAX_DRIFT_BYTES: usize = 24 * 1024;
/// Byte cap of one drift record: at least six of the largest fit under [`MAX_DRIFT_BYTES`].
pub const MAX_RECORD_BYTES: usize = 4 * 1024;
/// Paths listed per field manager (the record's own list has them all).
pub const MAX_MANAGER_PATHS: usize = 4;
/// Paths kept per drift record; a record with more says how many were left out.
pub const MAX_PATHS: usize = 16;
/// Field managers kept per drift record.
pub const MAX_MANAGERS: usize = 8;
/// Longest path, manager name or commit field kept (longer ones are cut at a char boundary).
pub const MAX_TEXT: usize = 200;
/// Longest message kept in a sync record.
pub const MAX_MESSAGE: usize = 300;

/// What started a sync.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Trigger {
    /// A revision not applied before.
    NewRevision,
    /// A new generation of the GitSync's spec.
    SpecChange,
    /// The same revision, with objects that drifted or disappeared.
    Drift,
    /// The `requested-at` annotation changed (`kubeseal sync` or `kubectl annotate`).
    ManualRequest,
    /// The previous attempt failed.
    Retry,
    /// The interval passed and nothing had changed (not kept in history).
    Interval,
}

impl Trigger {
    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::NewRevision => "NewRevision",
            Trigger::SpecChange => "SpecChange",
            Trigger::Drift => "Drift",
            Trigger::ManualRequest => "ManualRequest",
            Trigger::Retry => "Retry",
            Trigger::Interval => "Interval",
        }
    }
}

/// What the reconciler knows when it decides the trigger.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriggerFacts {
    /// The `requested-at` annotation differs from the last one handled.
    pub requested: bool,
    /// The spec generation differs from the one last observed.
    pub spec_changed: bool,
    /// The fetched revision differs from the last applied one.
    pub new_revision: bool,
    /// The last sync failed.
    pub after_failure: bool,
    /// This sync found drift (changed, deleted or taken-over objects).
    pub drift_found: bool,
}

/// The trigger of a sync: a person's request first, then a spec change, a new revision, a
/// retry, and drift; a resync that found nothing is `Interval`.
pub fn trigger(facts: TriggerFacts) -> Trigger {
    if facts.requested {
        Trigger::ManualRequest
    } else if facts.spec_changed {
        Trigger::SpecChange
    } else if facts.new_revision {
        Trigger::NewRevision
    } else if facts.after_failure {
        Trigger::Retry
    } else if facts.drift_found {
        Trigger::Drift
    } else {
        Trigger::Interval
    }
}

/// Outcome of a sync.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SyncResult {
    /// Everything applied (health is reported separately).
    Succeeded,
    /// The sync stopped; `reason` says where.
    Failed,
}

/// One sync, as kept in `status.history`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    /// Commit synced (empty when the fetch failed).
    #[serde(default)]
    pub revision: String,
    /// First line of its commit message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_subject: Option<String>,
    /// Its author's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    /// When the sync started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339); for repeated failures, the last one.
    pub finished_at: String,
    /// What started it.
    pub trigger: Trigger,
    /// Succeeded or Failed.
    pub result: SyncResult,
    /// The Ready condition's reason (`Synced`, `FetchFailed`, `Forbidden`, ...).
    pub reason: String,
    /// Short detail (the failure message; never a value of an object).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Objects created.
    #[serde(default)]
    pub created: u32,
    /// Objects changed.
    #[serde(default)]
    pub configured: u32,
    /// Objects found as in Git.
    #[serde(default)]
    pub unchanged: u32,
    /// Objects pruned.
    #[serde(default)]
    pub pruned: u32,
    /// Objects that drifted (corrected or, without selfHeal, reported).
    #[serde(default)]
    pub drifted: u32,
    /// How many times in a row this same failure happened (1 for most records).
    #[serde(default = "one")]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

/// What was wrong with a live object.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DriftChange {
    /// Fields written in Git have other values live.
    Changed,
    /// The object was deleted.
    Deleted,
    /// The object exists but no longer carries this GitSync's labels (another actor took it
    /// over).
    TakenOver,
}

/// What the sync did about it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DriftAction {
    /// Git's values were applied again.
    Reverted,
    /// The object was created again.
    Recreated,
    /// Nothing was written (`selfHeal: false`).
    ReportedOnly,
}

impl DriftAction {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftAction::Reverted => "Reverted",
            DriftAction::Recreated => "Recreated",
            DriftAction::ReportedOnly => "ReportedOnly",
        }
    }

    /// The Event reason.
    pub fn event_reason(self) -> &'static str {
        match self {
            DriftAction::Reverted | DriftAction::Recreated => "DriftReverted",
            DriftAction::ReportedOnly => "DriftDetected",
        }
    }
}

/// The object a drift record is about.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// apiVersion.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ObjectReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// A field manager that owns some of the drifted paths.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldManagerRecord {
    /// The manager's name, as the client chose it.
    pub manager: String,
    /// `Update` or `Apply`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// When it last wrote (from `managedFields`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time: String,
    /// Which of the drifted paths it owns.
    pub paths: Vec<String>,
}

/// One drift found by a sync, as kept in `status.drift`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftRecord {
    /// The object.
    pub object: ObjectReference,
    /// Changed, deleted or taken over.
    pub change: DriftChange,
    /// Field paths that differ from Git (paths only, never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Paths beyond the first [`MAX_PATHS`], not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paths_omitted: u32,
    /// Field managers (other than this controller) owning those paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<FieldManagerRecord>,
    /// The object's resourceVersion before the correction: find the request that produced it
    /// in the API server's audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version_before: Option<String>,
    /// The revision whose state was restored (or, reported only, expected).
    pub revision: String,
    /// Reverted, re-created or reported only.
    pub action: DriftAction,
    /// When the sync found it (RFC 3339).
    pub detected_at: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the engine found about one drifted object, before any record is built.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftFinding {
    /// Changed, deleted or taken over.
    pub change: DriftChange,
    /// Paths that differ (empty for a deleted object).
    pub paths: Vec<String>,
    /// Managers owning them.
    pub managers: Vec<FieldManagerRecord>,
    /// resourceVersion of the live object before the correction.
    pub resource_version: Option<String>,
}

impl DriftFinding {
    /// Builds the finding for `live` that should look like `desired`: `None` when it does not
    /// differ. `our_manager` is left out of the managers (it is not who changed things).
    pub fn changed(desired: &Value, live: &Value, our_manager: &str) -> Option<DriftFinding> {
        let paths = drift_paths(desired, live);
        if paths.is_empty() {
            return None;
        }
        Some(DriftFinding {
            change: DriftChange::Changed,
            // Only the paths a record keeps: an object with thousands of changed keys must
            // not cost thousands of walks per manager.
            managers: managers_for_paths(live, &paths[..paths.len().min(MAX_PATHS)], our_manager),
            resource_version: resource_version(live),
            paths,
        })
    }

    /// A deleted object.
    pub fn deleted() -> DriftFinding {
        DriftFinding {
            change: DriftChange::Deleted,
            paths: Vec::new(),
            managers: Vec::new(),
            resource_version: None,
        }
    }

    /// An object that exists without our labels: the label paths and their managers.
    pub fn taken_over(desired: &Value, live: &Value, our_manager: &str) -> DriftFinding {
        let mut paths = drift_paths(desired, live);
        if paths.is_empty() {
            paths.push("metadata.labels".into());
        }
        DriftFinding {
            change: DriftChange::TakenOver,
            // Only the paths a record keeps: an object with thousands of changed keys must
            // not cost thousands of walks per manager.
            managers: managers_for_paths(live, &paths[..paths.len().min(MAX_PATHS)], our_manager),
            resource_version: resource_version(live),
            paths,
        }
    }

    /// The record of this finding.
    pub fn record(
        &self,
        key: &ObjectKey,
        api_version: &str,
        revision: &str,
        action: DriftAction,
        now: &str,
    ) -> DriftRecord {
        let omitted = self.paths.len().saturating_sub(MAX_PATHS);
        let mut managers = self.managers.clone();
        managers.truncate(MAX_MANAGERS);
        for manager in &mut managers {
            manager.paths.truncate(MAX_MANAGER_PATHS);
        }
        let mut record = DriftRecord {
            object: ObjectReference {
                api_version: api_version.to_string(),
                kind: key.kind.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            },
            change: self.change,
            paths: self.paths.iter().take(MAX_PATHS).cloned().collect(),
            paths_omitted: u32::try_from(omitted).unwrap_or(u32::MAX),
            managers,
            resource_version_before: self.resource_version.clone(),
            revision: cut(revision, MAX_TEXT),
            action,
            detected_at: cut(now, 40),
        };
        fit(&mut record);
        record
    }
}

/// Shrinks a record to [`MAX_RECORD_BYTES`]: managers' path lists first, then the managers
/// (the latest writers are first and stay), then the paths (counted in `pathsOmitted`).
fn fit(record: &mut DriftRecord) {
    let too_big = |r: &DriftRecord| record_bytes(r) > MAX_RECORD_BYTES;
    while too_big(record) && record.managers.iter().any(|m| m.paths.len() > 1) {
        for manager in &mut record.managers {
            let keep = manager.paths.len().saturating_sub(1).max(1);
            manager.paths.truncate(keep);
        }
    }
    while too_big(record) && record.managers.len() > 1 {
        record.managers.pop();
    }
    while too_big(record) && record.paths.len() > 1 {
        record.paths.pop();
        record.paths_omitted = record.paths_omitted.saturating_add(1);
    }
}

fn resource_version(live: &Value) -> Option<String> {
    live.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The drift records of a sync's objects: `Check` mode only reports; otherwise a deleted
/// object was re-created and anything else reverted.
pub fn drift_records(
    objects: &[crate::engine::ObjectReport],
    mode: crate::engine::Mode,
    revision: &str,
    now: &str,
) -> Vec<DriftRecord> {
    objects
        .iter()
        .filter_map(|o| {
            let finding = o.drift.as_ref()?;
            let action = match (mode, finding.change) {
                (crate::engine::Mode::Check, _) => DriftAction::ReportedOnly,
                (_, DriftChange::Deleted) => DriftAction::Recreated,
                _ => DriftAction::Reverted,
            };
            Some(finding.record(&o.key, &o.api_version, revision, action, now))
        })
        .collect()
}

/// Cuts `text` to at most [`MAX_TEXT`] bytes at a char boundary.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let end = (0..=max.saturating_sub(1))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}…", &text[..end])
}

/// One step of a path: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn render_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(key) if key.contains(['.', '[', ']', '"']) || key.is_empty() => {
                out.push_str(&format!("[{}]", Value::String(key.clone())));
            }
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Paths of the fields of `desired` whose live value differs (`spec.replicas`,
/// `spec.ports[0].port`, `metadata.labels["app.kubernetes.io/name"]`), sorted. Fields only the
/// live object has are not drift (defaults, other tools' fields), as in [`plan::in_sync`]; a
/// list whose length differs is one path. Server-set metadata and `status` are ignored. The
/// values themselves are never copied.
pub fn drift_paths(desired: &Value, live: &Value) -> Vec<String> {
    let desired = plan::drift_view(desired);
    let live = plan::drift_view(live);
    let mut out = Vec::new();
    let mut steps = Vec::new();
    walk(&desired, &live, &mut steps, &mut out);
    out.sort();
    out.dedup();
    out
}

fn walk(desired: &Value, live: &Value, steps: &mut Vec<Step>, out: &mut Vec<String>) {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            for (key, dv) in d {
                steps.push(Step::Key(key.clone()));
                match l.get(key) {
                    Some(lv) => walk(dv, lv, steps, out),
                    None if plan::in_sync(dv, &Value::Null) => {}
                    None => out.push(render_path(steps)),
                }
                steps.pop();
            }
        }
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                steps.push(Step::Index(i));
                walk(dv, lv, steps, out);
                steps.pop();
            }
        }
        _ if plan::in_sync(desired, live) => {}
        _ => out.push(render_path(steps)),
    }
}

/// Parses a rendered path back into steps (the inverse of `render_path`).
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => i += 1,
            b'[' => {
                let close = path[i..].find(']').map(|p| i + p)?;
                let inner = &path[i + 1..close];
                if inner.starts_with('"') {
                    // A quoted key: JSON string, which may contain `]`.
                    let mut de =
                        serde_json::Deserializer::from_str(&path[i + 1..]).into_iter::<String>();
                    let key = de.next()?.ok()?;
                    let end = i + 1 + de.byte_offset();
                    if bytes.get(end) != Some(&b']') {
                        return None;
                    }
                    steps.push(Step::Key(key));
                    i = end + 1;
                } else {
                    steps.push(Step::Index(inner.parse().ok()?));
                    i = close + 1;
                }
            }
            _ => {
                let end = path[i..].find(['.', '[']).map_or(path.len(), |p| i + p);
                steps.push(Step::Key(path[i..end].to_string()));
                i = end;
            }
        }
    }
    Some(steps)
}

/// Whether the managed-fields tree `fields` (a `fieldsV1` object) owns the field at `steps`
/// of `live`, or something below it. List elements are matched as the API server writes them:
/// `k:{...}` (keyed lists: every key field equal to the live element's), `v:<value>` (sets)
/// or `i:<index>`.
fn owns(fields: &Value, steps: &[Step], live: &Value) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return true;
    };
    let Some(children) = fields.as_object() else {
        return false;
    };
    if children.is_empty() || (children.len() == 1 && children.contains_key(".")) {
        // A leaf: the manager owns this whole value (atomic maps and lists).
        return true;
    }
    match step {
        Step::Key(key) => {
            let next_live = live.get(key).unwrap_or(&Value::Null);
            children
                .get(&format!("f:{key}"))
                .is_some_and(|sub| owns(sub, rest, next_live))
        }
        Step::Index(index) => {
            let element = live.get(*index).unwrap_or(&Value::Null);
            children.iter().any(|(name, sub)| {
                let matches = if let Some(keys) = name.strip_prefix("k:") {
                    serde_json::from_str::<serde_json::Map<String, Value>>(keys).is_ok_and(|keys| {
                        keys.iter()
                            .all(|(k, v)| element.get(k).is_some_and(|e| plan::in_sync(v, e)))
                    })
                } else if let Some(value) = name.strip_prefix("v:") {
                    serde_json::from_str::<Value>(value).is_ok_and(|v| v == *element)
                } else if let Some(i) = name.strip_prefix("i:") {
                    i.parse::<usize>().ok() == Some(*index)
                } else {
                    false
                };
                matches && owns(sub, rest, element)
            })
        }
    }
}

/// The field managers of `live` (from `metadata.managedFields`) owning each of `paths`, except
/// `our_manager`, sorted by the time they last wrote (latest first), then by name. A manager
/// that wrote both through `Update` and `Apply` appears once per operation.
pub fn managers_for_paths(
    live: &Value,
    paths: &[String],
    our_manager: &str,
) -> Vec<FieldManagerRecord> {
    let Some(entries) = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let parsed: Vec<(&String, Vec<Step>)> = paths
        .iter()
        .filter_map(|p| parse_path(p).map(|s| (p, s)))
        .collect();
    let mut found: BTreeMap<(String, String), FieldManagerRecord> = BTreeMap::new();
    for entry in entries {
        let text = |field: &str| entry.get(field).and_then(Value::as_str).unwrap_or("");
        let manager = text("manager");
        if manager == our_manager || entry.get("subresource").is_some_and(|s| s == "status") {
            continue;
        }
        let Some(fields) = entry.get("fieldsV1") else {
            continue;
        };
        let owned: Vec<String> = parsed
            .iter()
            .filter(|(_, steps)| owns(fields, steps, live))
            .map(|(path, _)| (*path).clone())
            .collect();
        if owned.is_empty() {
            continue;
        }
        let record = found
            .entry((manager.to_string(), text("operation").to_string()))
            .or_insert_with(|| FieldManagerRecord {
                manager: cut(manager, MAX_TEXT),
                operation: cut(text("operation"), 16),
                time: cut(text("time"), 40),
                paths: Vec::new(),
            });
        for path in owned {
            if !record.paths.contains(&path) && record.paths.len() < MAX_PATHS {
                record.paths.push(path);
            }
        }
    }
    let mut managers: Vec<FieldManagerRecord> = found.into_values().collect();
    managers.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.manager.cmp(&b.manager)));
    managers
}

/// Adds `record` to `history` (newest first) and keeps at most `limit` records. A failure
/// that repeats the newest record (same revision, reason and result) updates it instead,
/// counting attempts, so a broken repository retried every 30 s does not wash the history out.
pub fn push_history(history: &mut Vec<SyncRecord>, record: SyncRecord, limit: u32) {
    let limit = usize::try_from(limit.clamp(1, MAX_HISTORY_LIMIT)).unwrap_or(1);
    if let Some(last) = history.first_mut()
        && record.result == SyncResult::Failed
        && last.result == SyncResult::Failed
        && last.revision == record.revision
        && last.reason == record.reason
    {
        last.finished_at = record.finished_at;
        last.attempts = last.attempts.saturating_add(1);
        last.message = record.message;
    } else {
        history.insert(0, record);
    }
    history.truncate(limit);
}

/// The history limit of a spec value: default 10, at most 50, at least 1.
pub fn history_limit(spec: Option<u32>) -> u32 {
    spec.unwrap_or(DEFAULT_HISTORY_LIMIT)
        .clamp(1, MAX_HISTORY_LIMIT)
}

/// Whether `record` repeats the newest record of the same object: a drift reported (not
/// corrected) at each resync is recorded once, until the object or the paths change.
pub fn repeats(drift: &[DriftRecord], record: &DriftRecord) -> bool {
    drift
        .iter()
        .find(|r| r.object == record.object)
        .is_some_and(|r| {
            r.action == record.action
                && r.change == record.change
                && r.paths == record.paths
                && r.resource_version_before == record.resource_version_before
                && r.revision == record.revision
        })
}

/// Adds new drift records (newest first) and bounds the list: at most
/// [`MAX_DRIFT_RECORDS`], and at most [`MAX_DRIFT_BYTES`] of JSON (the oldest go first; the
/// newest record is always kept: its own size is bounded by [`MAX_RECORD_BYTES`]).
/// Returns the records that were really added (repeats of a reported-only drift are not).
pub fn push_drift(drift: &mut Vec<DriftRecord>, new: Vec<DriftRecord>) -> Vec<DriftRecord> {
    let mut added = Vec::new();
    for record in new {
        if record.action == DriftAction::ReportedOnly && repeats(drift, &record) {
            continue;
        }
        drift.insert(0, record.clone());
        added.push(record);
    }
    drift.truncate(MAX_DRIFT_RECORDS);
    let mut bytes: usize = drift.iter().map(record_bytes).sum();
    while drift.len() > 1 && bytes > MAX_DRIFT_BYTES {
        if let Some(last) = drift.pop() {
            bytes -= record_bytes(&last);
        }
    }
    added
}

/// Serialized size of a record.
pub fn record_bytes(record: &DriftRecord) -> usize {
    serde_json::to_vec(record).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_come_from_the_diff_without_values() {
        let desired = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx:1"}]}}}
        });
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "42", "labels": {"app.kubernetes.io/name": "other"}},
            "spec": {"replicas": 5, "paused": false, "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx:2", "imagePullPolicy": "Always"}]}}},
            "status": {"replicas": 5}
        });
        assert_eq!(
            drift_paths(&desired, &live),
            [
                "metadata.labels[\"app.kubernetes.io/name\"]",
                "spec.replicas",
                "spec.template.spec.containers[0].image",
            ]
        );
        // A Secret's changed value shows as its path only.
        let desired = json!({"kind": "Secret", "data": {"password": "Y2FuYXJ5"}});
        let live = json!({"kind": "Secret", "data": {"password": "b3RoZXI="}});
        let paths = drift_paths(&desired, &live);
        assert_eq!(paths, ["data.password"]);
        assert!(!format!("{paths:?}").contains("Y2FuYXJ5"));
        // Lists of another length are one path; absent fields are paths; equal objects none.
        let desired = json!({"spec": {"ports": [{"port": 80}, {"port": 81}], "x": "a"}});
        let live = json!({"spec": {"ports": [{"port": 80}]}});
        assert_eq!(drift_paths(&desired, &live), ["spec.ports", "spec.x"]);
        assert!(drift_paths(&desired, &desired).is_empty());
    }

    #[test]
    fn rendered_paths_parse_back() {
        for path in [
            "spec.replicas",
            "spec.template.spec.containers[0].image",
            "metadata.labels[\"app.kubernetes.io/name\"]",
            "metadata.annotations[\"a]b\"].x",
        ] {
            let steps = parse_path(path).unwrap();
            assert_eq!(render_path(&steps), path);
        }
    }

    fn managed(manager: &str, operation: &str, time: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": operation, "time": time,
               "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn managers_are_found_per_path() {
        let live = json!({
            "metadata": {"managedFields": [
                managed("sealed-secrets-sync", "Apply", "2026-01-01T00:00:00Z",
                    json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"app\"}": {".": {}, "f:name": {}}}}}}})),
                managed("alice-laptop", "Update", "2026-01-02T10:00:00Z",
                    json!({"f:spec": {"f:replicas": {}}})),
                managed("kubectl-edit", "Update", "2026-01-02T11:00:00Z",
                    json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"app\"}": {"f:image": {}}}}}},
                          "f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}}})),
                managed("kube-controller-manager", "Update", "2026-01-03T00:00:00Z",
                    json!({"f:status": {"f:replicas": {}}})),
            ]},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx:2"}]}}}
        });
        let paths = vec![
            "spec.replicas".to_string(),
            "spec.template.spec.containers[0].image".to_string(),
            "metadata.labels[\"app.kubernetes.io/name\"]".to_string(),
        ];
        let managers = managers_for_paths(&live, &paths, "sealed-secrets-sync");
        let names: Vec<&str> = managers.iter().map(|m| m.manager.as_str()).collect();
        // Latest writer first; our own manager and status writers are not culprits.
        assert_eq!(names, ["kubectl-edit", "alice-laptop"]);
        assert_eq!(managers[1].paths, ["spec.replicas"]);
        assert_eq!(managers[1].operation, "Update");
        assert_eq!(managers[1].time, "2026-01-02T10:00:00Z");
        assert_eq!(
            managers[0].paths,
            [
                "spec.template.spec.containers[0].image",
                "metadata.labels[\"app.kubernetes.io/name\"]"
            ]
        );
    }

    #[test]
    fn a_parent_path_is_owned_by_whoever_owns_something_below_it() {
        let live = json!({
            "metadata": {"managedFields": [
                managed("bob", "Apply", "t", json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {"f:port": {}}}}})),
                managed("carol", "Update", "t", json!({"f:data": {}})),
            ]},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}]},
            "data": {"a": "1"}
        });
        let managers = managers_for_paths(
            &live,
            &["spec.ports".into(), "data.a".into()],
            "sealed-secrets-sync",
        );
        let names: Vec<(&str, &[String])> = managers
            .iter()
            .map(|m| (m.manager.as_str(), m.paths.as_slice()))
            .collect();
        assert_eq!(
            names,
            [
                ("bob", &["spec.ports".to_string()][..]),
                ("carol", &["data.a".to_string()][..])
            ]
        );
    }

    fn record(n: usize, action: DriftAction) -> DriftRecord {
        DriftFinding {
            change: DriftChange::Changed,
            paths: vec!["spec.replicas".into()],
            managers: vec![FieldManagerRecord {
                manager: "alice".into(),
                operation: "Update".into(),
                time: "t".into(),
                paths: vec!["spec.replicas".into()],
            }],
            resource_version: Some(n.to_string()),
        }
        .record(
            &ObjectKey {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "shop".into(),
                name: format!("web-{}", n % 3),
            },
            "apps/v1",
            "abc",
            action,
            "now",
        )
    }

    #[test]
    fn drift_records_are_newest_first_and_bounded() {
        let mut drift = Vec::new();
        for n in 0..100 {
            push_drift(&mut drift, vec![record(n, DriftAction::Reverted)]);
        }
        assert_eq!(drift.len(), MAX_DRIFT_RECORDS);
        assert_eq!(drift[0].resource_version_before.as_deref(), Some("99"));
        assert_eq!(drift[19].resource_version_before.as_deref(), Some("80"));
        // Big records: the byte cap wins over the count.
        let mut big = record(1, DriftAction::Reverted);
        big.paths = (0..MAX_PATHS)
            .map(|i| format!("{}{i}", "x".repeat(190)))
            .collect();
        for _ in 0..MAX_DRIFT_RECORDS {
            push_drift(&mut drift, vec![big.clone()]);
        }
        let bytes: usize = drift.iter().map(record_bytes).sum();
        assert!(bytes <= MAX_DRIFT_BYTES, "{bytes}");
        assert!(drift.len() < MAX_DRIFT_RECORDS && !drift.is_empty());
    }

    #[test]
    fn a_reported_drift_is_recorded_once_until_it_changes() {
        let mut drift = Vec::new();
        let first = record(7, DriftAction::ReportedOnly);
        assert_eq!(push_drift(&mut drift, vec![first.clone()]).len(), 1);
        assert!(push_drift(&mut drift, vec![first.clone()]).is_empty());
        let mut edited = first.clone();
        edited.resource_version_before = Some("8".into());
        assert_eq!(push_drift(&mut drift, vec![edited]).len(), 1);
        // Corrections are never deduplicated: each one is a new edit that was reverted.
        let reverted = record(7, DriftAction::Reverted);
        push_drift(&mut drift, vec![reverted.clone()]);
        assert_eq!(push_drift(&mut drift, vec![reverted]).len(), 1);
        assert_eq!(drift.len(), 4);
    }

    #[test]
    fn record_caps_paths_and_managers() {
        let finding = DriftFinding {
            change: DriftChange::Changed,
            paths: (0..40).map(|i| format!("data.k{i}")).collect(),
            managers: (0..20)
                .map(|i| FieldManagerRecord {
                    manager: format!("m{i}"),
                    operation: "Update".into(),
                    time: String::new(),
                    paths: vec![],
                })
                .collect(),
            resource_version: None,
        };
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: "a".into(),
            name: "b".into(),
        };
        let r = finding.record(&key, "v1", "rev", DriftAction::ReportedOnly, "now");
        assert_eq!(r.paths.len(), MAX_PATHS);
        assert_eq!(r.paths_omitted, 40 - MAX_PATHS as u32);
        assert_eq!(r.managers.len(), MAX_MANAGERS);
        assert_eq!(r.object.to_string(), "ConfigMap/a/b");
    }

    #[test]
    fn one_record_never_exceeds_its_byte_cap() {
        let long = |i: usize| format!("spec.{}{i:02}", "x".repeat(MAX_TEXT - 8));
        let paths: Vec<String> = (0..40).map(long).collect();
        let finding = DriftFinding {
            change: DriftChange::Changed,
            managers: (0..20)
                .map(|m| FieldManagerRecord {
                    manager: format!("{}{m:02}", "m".repeat(MAX_TEXT - 2)),
                    operation: "Update".into(),
                    time: "2026-12-07T01:55:40Z".into(),
                    paths: paths.clone(),
                })
                .collect(),
            resource_version: Some("1".into()),
            paths,
        };
        let key = ObjectKey {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        };
        let r = finding.record(&key, "apps/v1", "rev", DriftAction::Reverted, "now");
        assert!(record_bytes(&r) <= MAX_RECORD_BYTES, "{}", record_bytes(&r));
        // What was cut is said, and the first (latest) manager stays.
        assert!(!r.paths.is_empty() && r.paths_omitted as usize + r.paths.len() == 40);
        assert_eq!(r.managers[0].manager, finding.managers[0].manager);
    }

    fn sync_record(revision: &str, result: SyncResult, reason: &str, at: &str) -> SyncRecord {
        SyncRecord {
            revision: revision.into(),
            commit_subject: None,
            commit_author: None,
            started_at: at.into(),
            finished_at: at.into(),
            trigger: Trigger::NewRevision,
            result,
            reason: reason.into(),
            message: String::new(),
            created: 0,
            configured: 0,
            unchanged: 0,
            pruned: 0,
            drifted: 0,
            attempts: 1,
        }
    }

    #[test]
    fn history_is_newest_first_bounded_and_folds_repeated_failures() {
        let mut history = Vec::new();
        for i in 0..15 {
            push_history(
                &mut history,
                sync_record(&format!("r{i}"), SyncResult::Succeeded, "Synced", "t"),
                history_limit(None),
            );
        }
        assert_eq!(history.len(), 10);
        assert_eq!(history[0].revision, "r14");
        for at in ["t1", "t2", "t3"] {
            push_history(
                &mut history,
                sync_record("r15", SyncResult::Failed, "FetchFailed", at),
                3,
            );
        }
        assert_eq!(history.len(), 3);
        assert_eq!(history[0].attempts, 3);
        assert_eq!(history[0].started_at, "t1");
        assert_eq!(history[0].finished_at, "t3");
        assert_eq!(history_limit(Some(500)), MAX_HISTORY_LIMIT);
        assert_eq!(history_limit(Some(0)), 1);
    }

    #[test]
    fn triggers_prefer_what_a_person_did() {
        let facts = TriggerFacts {
            requested: true,
            spec_changed: true,
            new_revision: true,
            after_failure: true,
            drift_found: true,
        };
        assert_eq!(trigger(facts), Trigger::ManualRequest);
        assert_eq!(
            trigger(TriggerFacts {
                requested: false,
                ..facts
            }),
            Trigger::SpecChange
        );
        assert_eq!(
            trigger(TriggerFacts {
                drift_found: true,
                ..Default::default()
            }),
            Trigger::Drift
        );
        assert_eq!(trigger(TriggerFacts::default()), Trigger::Interval);
    }
}
