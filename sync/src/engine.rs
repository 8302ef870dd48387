//! One sync of a rendered revision: policy, resolve, staged apply, prune, health.
//!
//! Modes say how much to write. A new revision (or a changed spec) applies every object, so
//! fields removed from Git are dropped by server-side apply. A resync of the same revision only
//! compares: with self-heal it re-applies what drifted or disappeared, without it it reports
//! them. Comparing needs one LIST per kind and namespace, so a no-op resync of hundreds of
//! objects costs a few requests. `Diff` asks the server for a dry-run of each object and reports
//! what would change, for `kubeseal sync diff`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use futures::future::join_all;
use serde_json::Value;

use crate::{
    audit::DriftFinding,
    cluster::{Cluster, ClusterError, Kind},
    health::{self, Health},
    manifest::{InvalidObject, Manifest, ObjectKey, Origin, inventory_entry},
    plan::{self, DuplicateObject, PruneDecision, Stage},
    policy::{self, PolicyError, SealedSecretVerifier},
    resource::{FIELD_MANAGER, InventoryEntry, NAME_LABEL, NAMESPACE_LABEL, RawSecretPolicy},
};

/// How long to wait for kinds defined by CRDs of the same render to be served.
const CRD_WAIT: Duration = Duration::from_secs(60);
/// Requests in flight at once within one apply stage.
const CONCURRENCY: usize = 8;

/// How much a sync writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply every object (new revision or changed spec).
    Apply,
    /// Re-apply only objects that drifted or are missing (same revision, self-heal on).
    Heal,
    /// Write nothing; report drift (same revision, self-heal off).
    Check,
    /// Write nothing; ask the server what applying would change.
    Diff,
}

/// Who syncs, where, and with which switches.
pub struct Target<'a> {
    /// Name of the owner (the GitSync, or the name given to `kubeseal sync`).
    pub owner_name: String,
    /// Namespace of the owner.
    pub owner_namespace: String,
    /// Namespace for namespaced objects that name none.
    pub default_namespace: String,
    /// Delete objects of the previous inventory that left the render.
    pub prune: bool,
    /// Create `default_namespace` if it is missing.
    pub create_namespace: bool,
    /// Whether raw Secrets may be applied.
    pub raw_secrets: RawSecretPolicy,
    /// Opens SealedSecrets before anything is applied; `None` skips the check.
    pub verifier: Option<&'a dyn SealedSecretVerifier>,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Created.
    Created,
    /// Changed.
    Configured,
    /// Applied, or compared, and found as in Git.
    Unchanged,
    /// Differs from Git and was left alone (no self-heal); the changed fields.
    Drifted(Vec<String>),
    /// Missing and left alone (no self-heal).
    Missing,
    /// Dry run: would be created.
    WouldCreate,
    /// Dry run: would change these fields.
    WouldChange(Vec<String>),
}

/// One object of the render and its outcome.
#[derive(Debug, Clone)]
pub struct ObjectReport {
    /// The object.
    pub key: ObjectKey,
    /// Its apiVersion.
    pub api_version: String,
    /// Where it was written.
    pub origin: Origin,
    /// What happened.
    pub action: Action,
    /// What differed from Git when a resync of the same revision compared it (`Heal` and
    /// `Check` modes), for the audit trail, or what a dry run found changed (`Diff` mode: the
    /// paths and their field managers); `None` when it was as in Git or was applied anyway.
    pub drift: Option<DriftFinding>,
}

/// The outcome of a sync.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// Every object of the render.
    pub objects: Vec<ObjectReport>,
    /// Objects deleted (or, in `Diff` mode, that would be).
    pub pruned: Vec<ObjectKey>,
    /// Objects that left Git but were kept, and why.
    pub kept: Vec<(ObjectKey, String)>,
    /// The new inventory, sorted.
    pub inventory: Vec<InventoryEntry>,
    /// Health of the applied objects.
    pub health: Health,
}

impl SyncReport {
    /// Whether the cluster differs (or differed, before this sync) from Git.
    pub fn has_changes(&self) -> bool {
        !self.pruned.is_empty()
            || self
                .objects
                .iter()
                .any(|o| !matches!(o.action, Action::Unchanged))
    }
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The render breaks the secret policy; nothing was applied.
    #[error("secret policy: {}", join(.0))]
    Policy(Vec<PolicyError>),
    /// An object lacks required fields; nothing was applied.
    #[error(transparent)]
    Invalid(#[from] InvalidObject),
    /// An object is defined twice; nothing was applied.
    #[error(transparent)]
    Duplicate(#[from] Box<DuplicateObject>),
    /// A kind the server does not serve and no CRD of the render defines.
    #[error("{origin}: the cluster has no kind {kind} in {api_version}")]
    UnknownKind {
        /// Where the object was written.
        origin: Origin,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
    },
    /// An API request failed.
    #[error("{origin}: {source}")]
    Api {
        /// Where the object was written (or `prune`, `namespace`).
        origin: String,
        /// The failure.
        source: ClusterError,
    },
}

fn join(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl SyncError {
    /// The condition reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            SyncError::Policy(errors)
                if errors
                    .iter()
                    .any(|e| matches!(e, PolicyError::RawSecret { .. })) =>
            {
                "RawSecretRefused"
            }
            SyncError::Policy(_) => "SealedSecretUnopenable",
            SyncError::Invalid(_) | SyncError::Duplicate(_) => "InvalidManifest",
            SyncError::UnknownKind { .. } => "UnknownKind",
            // RBAC said no (to the impersonated ServiceAccount): the API server's message names
            // the user, verb, resource and namespace.
            SyncError::Api { source, .. } if source.code == Some(403) => "Forbidden",
            SyncError::Api { .. } => "ApplyFailed",
        }
    }
}

/// An object ready to apply.
struct Item {
    key: ObjectKey,
    origin: Origin,
    api_version: String,
    /// `None` until its CRD (from the same render) is served.
    kind: Option<Kind>,
    stage: Stage,
    desired: Value,
}

/// Syncs a render into the cluster. `previous` is the inventory of the last sync.
pub async fn sync(
    cluster: &Cluster,
    manifests: &[Manifest],
    target: &Target<'_>,
    previous: &[InventoryEntry],
    mode: Mode,
) -> Result<SyncReport, SyncError> {
    let violations = policy::check(
        manifests,
        target.raw_secrets,
        target.verifier,
        &target.default_namespace,
    );
    if !violations.is_empty() {
        return Err(SyncError::Policy(violations));
    }
    let mut items = resolve_items(cluster, manifests, target).await?;
    plan::check_duplicates(items.iter().map(|i| (&i.key, &i.origin)))?;
    items.sort_by_key(|i| i.stage);

    if target.create_namespace && mode != Mode::Diff && mode != Mode::Check {
        ensure_namespace(cluster, target).await?;
    }

    let live = list_live(cluster, &items, target).await?;
    let mut objects = Vec::with_capacity(items.len());
    let mut live_after: HashMap<ObjectKey, Value> = HashMap::new();
    let mut index = 0;
    while index < items.len() {
        let stage = items[index].stage;
        let end = items[index..]
            .iter()
            .position(|i| i.stage != stage)
            .map_or(items.len(), |p| index + p);
        if stage > Stage::Definitions {
            wait_for_kinds(cluster, &mut items[index..end], mode).await?;
        }
        let mut results = Vec::with_capacity(end - index);
        for chunk in items[index..end].chunks(CONCURRENCY) {
            let requests: Vec<_> = chunk
                .iter()
                .map(|item| sync_item(cluster, item, live.get(&item.key), mode))
                .collect();
            results.extend(join_all(requests).await);
        }
        for result in results {
            let (report, after) = result?;
            if let Some(after) = after {
                live_after.insert(report.key.clone(), after);
            }
            objects.push(report);
        }
        index = end;
    }

    let current: BTreeSet<ObjectKey> = items.iter().map(|i| i.key.clone()).collect();
    let mut inventory: Vec<InventoryEntry> = items
        .iter()
        .map(|i| inventory_entry(&i.key, &i.api_version))
        .collect();
    inventory.sort();

    let (pruned, kept) = if target.prune {
        prune(cluster, previous, &current, target, mode).await?
    } else {
        (Vec::new(), Vec::new())
    };

    let assessed: Vec<(String, Health)> = objects
        .iter()
        .filter_map(|o| {
            live_after
                .get(&o.key)
                .map(|live| (o.key.to_string(), health::assess(live)))
        })
        .collect();
    let health = health::aggregate(assessed.iter().map(|(k, h)| (k.as_str(), h)));
    Ok(SyncReport {
        objects,
        pruned,
        kept,
        inventory,
        health,
    })
}

/// Resolves every manifest's kind and builds the object to apply.
async fn resolve_items(
    cluster: &Cluster,
    manifests: &[Manifest],
    target: &Target<'_>,
) -> Result<Vec<Item>, SyncError> {
    let defined = plan::defined_kinds(manifests);
    let crd_scopes = crd_scopes(manifests);
    let mut kinds: BTreeMap<(String, String), Option<Kind>> = BTreeMap::new();
    let mut items = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let mut key = manifest.key()?;
        let api_version = manifest.api_version().to_string();
        let lookup = (api_version.clone(), key.kind.clone());
        if !kinds.contains_key(&lookup) {
            let found = cluster
                .resolve(&api_version, &key.kind)
                .await
                .map_err(|source| SyncError::Api {
                    origin: manifest.origin.to_string(),
                    source,
                })?;
            kinds.insert(lookup.clone(), found);
        }
        let kind = kinds.get(&lookup).cloned().flatten();
        let namespaced = match &kind {
            Some(kind) => kind.namespaced,
            None if defined.contains(&(key.group.clone(), key.kind.clone())) => crd_scopes
                .get(&(key.group.clone(), key.kind.clone()))
                .copied()
                .unwrap_or(true),
            None => {
                return Err(SyncError::UnknownKind {
                    origin: manifest.origin.clone(),
                    api_version,
                    kind: key.kind,
                });
            }
        };
        let desired = plan::desired_object(
            &manifest.object,
            namespaced,
            &target.default_namespace,
            &target.owner_name,
            &target.owner_namespace,
        );
        key.namespace = if namespaced {
            desired
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        } else {
            String::new()
        };
        items.push(Item {
            stage: plan::stage_of(&key.group, &key.kind, namespaced),
            key,
            origin: manifest.origin.clone(),
            api_version,
            kind,
            desired,
        });
    }
    Ok(items)
}

/// `spec.scope` of the CRDs in the render, by group and kind.
fn crd_scopes(manifests: &[Manifest]) -> HashMap<(String, String), bool> {
    manifests
        .iter()
        .filter(|m| m.kind() == "CustomResourceDefinition")
        .filter_map(|m| {
            let group = m.object.pointer("/spec/group")?.as_str()?;
            let kind = m.object.pointer("/spec/names/kind")?.as_str()?;
            let scope = m.object.pointer("/spec/scope")?.as_str()?;
            Some(((group.into(), kind.into()), scope == "Namespaced"))
        })
        .collect()
}

/// Waits until kinds defined by CRDs of this render are served. A dry run cannot wait (the
/// CRDs were not created), so it reports those objects as to be created.
async fn wait_for_kinds(
    cluster: &Cluster,
    items: &mut [Item],
    mode: Mode,
) -> Result<(), SyncError> {
    if mode == Mode::Diff || mode == Mode::Check {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + CRD_WAIT;
    for item in items.iter_mut().filter(|i| i.kind.is_none()) {
        loop {
            let found = cluster
                .resolve(&item.api_version, &item.key.kind)
                .await
                .map_err(|source| SyncError::Api {
                    origin: item.origin.to_string(),
                    source,
                })?;
            if let Some(kind) = found {
                item.kind = Some(kind);
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SyncError::UnknownKind {
                    origin: item.origin.clone(),
                    api_version: item.api_version.clone(),
                    kind: item.key.kind.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Our live objects, by key: one LIST per kind and namespace, selected by our labels.
async fn list_live(
    cluster: &Cluster,
    items: &[Item],
    target: &Target<'_>,
) -> Result<HashMap<ObjectKey, Value>, SyncError> {
    let selector = owner_selector(target);
    let mut queries: BTreeMap<(String, String, String), &Kind> = BTreeMap::new();
    for item in items {
        if let Some(kind) = &item.kind {
            queries.insert(
                (
                    item.api_version.clone(),
                    item.key.kind.clone(),
                    item.key.namespace.clone(),
                ),
                kind,
            );
        }
    }
    let queries: Vec<_> = queries.into_iter().collect();
    let mut lists: Vec<Result<Vec<Value>, ClusterError>> = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(CONCURRENCY) {
        let requests: Vec<_> = chunk
            .iter()
            .map(|((_, _, namespace), kind)| cluster.list(kind, namespace, &selector))
            .collect();
        lists.extend(join_all(requests).await);
    }
    let mut live = HashMap::new();
    for (((api_version, kind, _), _), list) in queries.iter().zip(lists) {
        let list = list.map_err(|source| SyncError::Api {
            origin: "list".into(),
            source,
        })?;
        for mut object in list {
            // The API server leaves apiVersion and kind out of the items of a LIST of built-in
            // kinds: without them no listed object was found again, so every resync took
            // every object for missing (and re-applied it, or reported it).
            if let Some(map) = object.as_object_mut() {
                for (field, value) in [("apiVersion", api_version), ("kind", kind)] {
                    let known = map
                        .get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|v| !v.is_empty());
                    if !known {
                        map.insert(field.into(), Value::String(value.clone()));
                    }
                }
            }
            if let Some(key) = live_key(&object) {
                live.insert(key, object);
            }
        }
    }
    Ok(live)
}

/// The label selector of objects applied by this owner.
pub fn owner_selector(target: &Target<'_>) -> String {
    format!(
        "{NAME_LABEL}={},{NAMESPACE_LABEL}={}",
        target.owner_name, target.owner_namespace
    )
}

fn live_key(object: &Value) -> Option<ObjectKey> {
    let api_version = object.get("apiVersion")?.as_str()?;
    Some(ObjectKey {
        group: crate::manifest::split_api_version(api_version)
            .0
            .to_string(),
        kind: object.get("kind")?.as_str()?.to_string(),
        namespace: object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        name: object.pointer("/metadata/name")?.as_str()?.to_string(),
    })
}

/// Applies, compares or dry-runs one object. Returns its report and its live state afterwards.
async fn sync_item(
    cluster: &Cluster,
    item: &Item,
    live: Option<&Value>,
    mode: Mode,
) -> Result<(ObjectReport, Option<Value>), SyncError> {
    let report = |action, drift| ObjectReport {
        key: item.key.clone(),
        api_version: item.api_version.clone(),
        origin: item.origin.clone(),
        action,
        drift,
    };
    let api_err = |source| SyncError::Api {
        origin: item.origin.to_string(),
        source,
    };
    let Some(kind) = &item.kind else {
        // Only reachable in Diff/Check mode: the CRD is not served yet.
        return Ok((report(Action::WouldCreate, None), None));
    };
    // Same revision (Heal, Check): what differs from Git, before anything is written.
    let finding = match (mode, live) {
        (Mode::Heal | Mode::Check, Some(l)) if !plan::in_sync(&item.desired, l) => Some(
            DriftFinding::changed(&item.desired, l, FIELD_MANAGER).unwrap_or(DriftFinding {
                change: crate::audit::DriftChange::Changed,
                paths: Vec::new(),
                managers: Vec::new(),
                resource_version: None,
            }),
        ),
        // Not among our labelled objects: deleted, or relabelled by someone else (one GET,
        // only for objects that went missing).
        (Mode::Heal | Mode::Check, None) => {
            Some(match cluster.get(kind, &item.key).await.map_err(api_err)? {
                Some(existing) => DriftFinding::taken_over(&item.desired, &existing, FIELD_MANAGER),
                None => DriftFinding::deleted(),
            })
        }
        _ => None,
    };
    match mode {
        Mode::Check => {
            let action = match live {
                None => Action::Missing,
                Some(_) if finding.is_none() => Action::Unchanged,
                Some(l) => Action::Drifted(changed_fields(&item.desired, l)),
            };
            Ok((report(action, finding), live.cloned()))
        }
        Mode::Heal if finding.is_none() => Ok((report(Action::Unchanged, None), live.cloned())),
        Mode::Diff => {
            let would = cluster
                .apply(kind, &item.key, &item.desired, true)
                .await
                .map_err(api_err)?;
            let action = match live {
                None => {
                    // The object may exist without our labels: ask for it directly.
                    match cluster.get(kind, &item.key).await.map_err(api_err)? {
                        None => Action::WouldCreate,
                        Some(existing) => diff_action(&would, &existing),
                    }
                }
                Some(existing) => diff_action(&would, existing),
            };
            // Who wrote the fields that differ, for a viewer of the diff (the UI's drift page);
            // paths and managers only, never values.
            let finding = match (&action, live) {
                (Action::WouldChange(_), Some(existing)) => {
                    DriftFinding::changed(&item.desired, existing, FIELD_MANAGER)
                }
                _ => None,
            };
            Ok((report(action, finding), live.cloned()))
        }
        Mode::Apply | Mode::Heal => {
            let after = cluster
                .apply(kind, &item.key, &item.desired, false)
                .await
                .map_err(api_err)?;
            let action = match (live, &finding) {
                (None, Some(f)) if f.change == crate::audit::DriftChange::TakenOver => {
                    Action::Configured
                }
                (None, _) => Action::Created,
                (Some(before), _) => {
                    let same_version = before.pointer("/metadata/resourceVersion")
                        == after.pointer("/metadata/resourceVersion");
                    if same_version {
                        Action::Unchanged
                    } else {
                        Action::Configured
                    }
                }
            };
            Ok((report(action, finding), Some(after)))
        }
    }
}

fn diff_action(would: &Value, live: &Value) -> Action {
    let changes = changed_fields(&plan::drift_view(would), &plan::drift_view(live));
    let changes: Vec<String> = changes
        .into_iter()
        .filter(|c| !c.starts_with("metadata.managedFields"))
        .collect();
    if changes.is_empty() {
        Action::Unchanged
    } else {
        Action::WouldChange(changes)
    }
}

/// Paths where `desired` and `live` differ, as `path: live → desired` lines (values of Secrets
/// are never printed: `data` and `stringData` show as changed without values).
pub fn changed_fields(desired: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let secret = desired.get("kind").and_then(Value::as_str) == Some("Secret");
    walk_changes("", desired, live, secret, &mut out);
    out
}

fn walk_changes(path: &str, desired: &Value, live: &Value, secret: bool, out: &mut Vec<String>) {
    let show = |v: &Value| -> String {
        if secret && (path.starts_with("data") || path.starts_with("stringData")) {
            "(hidden)".into()
        } else {
            let text = v.to_string();
            if text.len() > 80 {
                let cut = (0..=77)
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                format!("{}…", &text[..cut])
            } else {
                text
            }
        }
    };
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            for (k, dv) in d {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match l.get(k) {
                    Some(lv) => walk_changes(&sub, dv, lv, secret, out),
                    None if plan::in_sync(dv, &Value::Null) => {}
                    None => out.push(format!("{sub}: (absent) → {}", show(dv))),
                }
            }
        }
        _ if plan::in_sync(desired, live) => {}
        _ => out.push(format!("{path}: {} → {}", show(live), show(desired))),
    }
}

/// Creates the destination namespace when it is missing (not recorded in the inventory: it is
/// not in Git, and pruning it would delete everything in it).
async fn ensure_namespace(cluster: &Cluster, target: &Target<'_>) -> Result<(), SyncError> {
    let api_err = |source| SyncError::Api {
        origin: "spec.createNamespace".into(),
        source,
    };
    let kind = cluster
        .resolve("v1", "Namespace")
        .await
        .map_err(api_err)?
        .ok_or_else(|| SyncError::UnknownKind {
            origin: Origin {
                file: "spec.createNamespace".into(),
                line: 0,
            },
            api_version: "v1".into(),
            kind: "Namespace".into(),
        })?;
    let key = ObjectKey {
        group: String::new(),
        kind: "Namespace".into(),
        namespace: String::new(),
        name: target.default_namespace.clone(),
    };
    if cluster.get(&kind, &key).await.map_err(api_err)?.is_none() {
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": target.default_namespace},
        });
        cluster
            .apply(&kind, &key, &object, false)
            .await
            .map_err(api_err)?;
    }
    Ok(())
}

/// Deletes what left Git, unless kept. In `Diff` and `Check` mode only reports.
async fn prune(
    cluster: &Cluster,
    previous: &[InventoryEntry],
    current: &BTreeSet<ObjectKey>,
    target: &Target<'_>,
    mode: Mode,
) -> Result<(Vec<ObjectKey>, Vec<(ObjectKey, String)>), SyncError> {
    let mut pruned = Vec::new();
    let mut kept = Vec::new();
    for (key, entry) in plan::removed_entries(previous, current) {
        let api_err = |source| SyncError::Api {
            origin: "prune".into(),
            source,
        };
        let api_version = entry.api_version(&key);
        let Some(kind) = cluster
            .resolve(&api_version, &key.kind)
            .await
            .map_err(api_err)?
        else {
            // The kind is gone (its CRD was pruned): so are its objects.
            continue;
        };
        let Some(live) = cluster.get(&kind, &key).await.map_err(api_err)? else {
            continue;
        };
        match plan::prune_decision(&live, &target.owner_name, &target.owner_namespace) {
            PruneDecision::Keep(reason) => kept.push((key, reason)),
            PruneDecision::Delete => {
                if mode == Mode::Apply || mode == Mode::Heal {
                    cluster.delete(&kind, &key).await.map_err(api_err)?;
                }
                pruned.push(key);
            }
        }
    }
    Ok((pruned, kept))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changed_fields_name_paths_and_hide_secret_values() {
        let desired =
            json!({"kind": "Deployment", "spec": {"replicas": 2, "template": {"x": "a"}}});
        let live = json!({"kind": "Deployment", "spec": {"replicas": 5}});
        assert_eq!(
            changed_fields(&desired, &live),
            [
                "spec.replicas: 5 → 2",
                "spec.template: (absent) → {\"x\":\"a\"}"
            ]
        );
        let desired = json!({"kind": "Secret", "data": {"password": "bmV3"}});
        let live = json!({"kind": "Secret", "data": {"password": "b2xk"}});
        let changes = changed_fields(&desired, &live);
        assert_eq!(changes, ["data.password: (hidden) → (hidden)"]);
    }
}
