//! Pure decisions of a sync: apply order, what the applied object looks like, whether a live
//! object drifted, and what to prune.
//!
//! Order follows Flux's staged apply: CustomResourceDefinitions first (their kinds must exist
//! before objects of those kinds), then Namespaces (namespaced objects need them), then the other
//! cluster-scoped objects (ClusterRoles a namespaced RoleBinding may refer to), then everything
//! namespaced. Prune runs in the reverse order, so a Namespace or CRD goes last.
//!
//! Drift is "some field written in Git has another value live": fields the API server or other
//! controllers add (defaults, status, annotations of other tools) are not drift, as with
//! server-side apply's own notion of ownership. It is a subset check, so a no-op resync needs one
//! LIST per kind instead of one request per object.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::{
    manifest::{Manifest, ObjectKey, Origin},
    resource::{InventoryEntry, NAME_LABEL, NAMESPACE_LABEL, PRUNE_ANNOTATION},
};

/// Apply stage of an object; lower stages are applied first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CustomResourceDefinitions.
    Definitions,
    /// Namespaces.
    Namespaces,
    /// Other cluster-scoped objects.
    ClusterScoped,
    /// Namespaced objects.
    Namespaced,
}

/// The stage of an object of this group and kind.
pub fn stage_of(group: &str, kind: &str, namespaced: bool) -> Stage {
    match (group, kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Stage::Definitions,
        ("", "Namespace") => Stage::Namespaces,
        _ if namespaced => Stage::Namespaced,
        _ => Stage::ClusterScoped,
    }
}

/// Group and kind that CRDs of the render define.
pub fn defined_kinds(manifests: &[Manifest]) -> BTreeSet<(String, String)> {
    manifests
        .iter()
        .filter(|m| {
            m.kind() == "CustomResourceDefinition"
                && m.api_version().starts_with("apiextensions.k8s.io/")
        })
        .filter_map(|m| {
            let group = m.object.pointer("/spec/group")?.as_str()?;
            let kind = m.object.pointer("/spec/names/kind")?.as_str()?;
            Some((group.to_string(), kind.to_string()))
        })
        .collect()
}

/// Two documents describing the same object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} is defined twice: {first} and {second}")]
pub struct DuplicateObject {
    /// The object.
    pub key: ObjectKey,
    /// First place.
    pub first: Origin,
    /// Second place.
    pub second: Origin,
}

/// Fails on the first object defined twice (after namespace defaulting).
pub fn check_duplicates<'a>(
    objects: impl IntoIterator<Item = (&'a ObjectKey, &'a Origin)>,
) -> Result<(), Box<DuplicateObject>> {
    let mut seen: BTreeMap<&ObjectKey, &Origin> = BTreeMap::new();
    for (key, origin) in objects {
        if let Some(first) = seen.insert(key, origin) {
            return Err(Box::new(DuplicateObject {
                key: key.clone(),
                first: first.clone(),
                second: origin.clone(),
            }));
        }
    }
    Ok(())
}

/// The object to send with server-side apply: the manifest with its namespace defaulted (or
/// removed for cluster-scoped kinds), our ownership labels, and neither `status` nor the
/// metadata the API server sets (a manifest saved with `kubectl get -o yaml` carries a
/// `resourceVersion` that would make every apply a conflict).
pub fn desired_object(
    object: &Value,
    namespaced: bool,
    default_namespace: &str,
    owner_name: &str,
    owner_namespace: &str,
) -> Value {
    let mut object = object.clone();
    let Some(map) = object.as_object_mut() else {
        return object;
    };
    map.remove("status");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        for field in SERVER_METADATA {
            meta.remove(*field);
        }
        if namespaced {
            let has_namespace = meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_namespace {
                meta.insert("namespace".into(), default_namespace.into());
            }
        } else {
            meta.remove("namespace");
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(NAME_LABEL.into(), owner_name.into());
            labels.insert(NAMESPACE_LABEL.into(), owner_namespace.into());
        }
    }
    object
}

/// Whether every field of `desired` has the same value in `live` (extra live fields are fine).
///
/// Lists must have the same length and match element by element. Numbers compare by value
/// (`1` and `1.0` are equal). Strings that the API server normalises (quantities such as
/// `1000m` → `1`) may look drifted; re-applying them is a no-op, so erring that way is safe.
pub fn in_sync(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => in_sync(dv, lv),
            // An empty map, list or null written in Git is often dropped by the server.
            None => {
                matches!(dv, Value::Null)
                    || dv.as_object().is_some_and(Map::is_empty)
                    || dv.as_array().is_some_and(Vec::is_empty)
            }
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| in_sync(dv, lv))
        }
        (Value::Number(d), Value::Number(l)) => d.as_f64() == l.as_f64(),
        (Value::Null, Value::Null) => true,
        _ => desired == live,
    }
}

/// Metadata the API server sets; never part of what we apply or compare.
const SERVER_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "generation",
    "managedFields",
    "creationTimestamp",
    "selfLink",
];

/// An object as compared for a diff: everything but `status` and server-set metadata.
pub fn drift_view(object: &Value) -> Value {
    let mut view = object.clone();
    if let Some(map) = view.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_METADATA {
                meta.remove(*field);
            }
        }
    }
    view
}

/// What to do with an object that left Git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneDecision {
    /// Delete it.
    Delete,
    /// Leave it, for this reason.
    Keep(String),
}

/// Decides whether a live object that is in the previous inventory but not in the render may be
/// deleted. Never deletes what someone marked to keep, what another GitSync or tool now owns, or
/// what Kubernetes garbage collection handles.
pub fn prune_decision(live: &Value, owner_name: &str, owner_namespace: &str) -> PruneDecision {
    let meta = live.get("metadata").cloned().unwrap_or(Value::Null);
    let marked = |field: &str| {
        meta.get(field)
            .and_then(|m| m.get(PRUNE_ANNOTATION))
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
    };
    if marked("annotations") || marked("labels") {
        return PruneDecision::Keep(format!("{PRUNE_ANNOTATION}: disabled"));
    }
    let label = |name: &str| {
        meta.get("labels")
            .and_then(|l| l.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    if label(NAME_LABEL) != owner_name || label(NAMESPACE_LABEL) != owner_namespace {
        return PruneDecision::Keep("no longer labelled as applied by this GitSync".into());
    }
    if meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return PruneDecision::Keep("already being deleted".into());
    }
    let blocked_by_owner = meta
        .get("ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true))
        });
    if blocked_by_owner {
        return PruneDecision::Keep("owned by another object; left to garbage collection".into());
    }
    PruneDecision::Delete
}

/// Entries of the previous inventory that are not in the new one, in prune order (namespaced
/// objects first, CRDs last).
pub fn removed_entries(
    previous: &[InventoryEntry],
    current: &BTreeSet<ObjectKey>,
) -> Vec<(ObjectKey, InventoryEntry)> {
    let mut removed: Vec<(ObjectKey, InventoryEntry)> = previous
        .iter()
        .filter_map(|entry| ObjectKey::from_id(&entry.id).map(|key| (key, entry.clone())))
        .filter(|(key, _)| !current.contains(key))
        .collect();
    removed.sort_by_key(|(key, _)| {
        std::cmp::Reverse(stage_of(&key.group, &key.kind, !key.namespace.is_empty()))
    });
    removed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stages_put_definitions_and_namespaces_first() {
        let mut kinds = [
            ("apps", "Deployment", true),
            ("rbac.authorization.k8s.io", "ClusterRole", false),
            ("", "Namespace", false),
            ("apiextensions.k8s.io", "CustomResourceDefinition", false),
            ("", "ConfigMap", true),
        ];
        kinds.sort_by_key(|(g, k, n)| stage_of(g, k, *n));
        let order: Vec<&str> = kinds.iter().map(|(_, k, _)| *k).collect();
        assert_eq!(
            order,
            [
                "CustomResourceDefinition",
                "Namespace",
                "ClusterRole",
                "Deployment",
                "ConfigMap"
            ]
        );
    }

    #[test]
    fn desired_object_defaults_namespace_and_labels_ownership() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "creationTimestamp": null, "resourceVersion": "42", "uid": "u"}, "status": {"x": 1}});
        let out = desired_object(&object, true, "team", "app", "flux");
        assert_eq!(out["metadata"]["namespace"], "team");
        assert_eq!(out["metadata"]["labels"][NAME_LABEL], "app");
        assert_eq!(out["metadata"]["labels"][NAMESPACE_LABEL], "flux");
        assert!(out.get("status").is_none());
        for field in ["creationTimestamp", "resourceVersion", "uid"] {
            assert!(out["metadata"].get(field).is_none(), "{field}");
        }
        let explicit = json!({"metadata": {"name": "c", "namespace": "other"}});
        assert_eq!(
            desired_object(&explicit, true, "team", "a", "b")["metadata"]["namespace"],
            "other"
        );
        let cluster = json!({"metadata": {"name": "r", "namespace": "ignored"}});
        assert!(
            desired_object(&cluster, false, "team", "a", "b")["metadata"]
                .get("namespace")
                .is_none()
        );
    }

    #[test]
    fn drift_is_a_changed_field_not_an_added_one() {
        let desired = json!({"metadata": {"name": "w", "labels": {"app": "w"}}, "spec": {"replicas": 2, "ports": [{"port": 80}], "empty": {}}});
        let live = json!({"metadata": {"name": "w", "labels": {"app": "w", "extra": "x"}, "uid": "u"}, "spec": {"replicas": 2.0, "ports": [{"port": 80, "protocol": "TCP"}], "defaulted": true}, "status": {}});
        assert!(in_sync(&desired, &live));
        let mut edited = live.clone();
        edited["spec"]["replicas"] = json!(5);
        assert!(!in_sync(&desired, &edited));
        let mut missing = live.clone();
        missing["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("app");
        assert!(!in_sync(&desired, &missing));
        let mut longer = live.clone();
        longer["spec"]["ports"] = json!([{"port": 80}, {"port": 81}]);
        assert!(!in_sync(&desired, &longer));
    }

    #[test]
    fn prune_keeps_marked_foreign_and_owned_objects() {
        let ours = json!({"metadata": {"name": "c", "labels": {NAME_LABEL: "app", NAMESPACE_LABEL: "ops"}}});
        assert_eq!(prune_decision(&ours, "app", "ops"), PruneDecision::Delete);
        let mut kept = ours.clone();
        kept["metadata"]["annotations"] = json!({PRUNE_ANNOTATION: "disabled"});
        assert!(matches!(
            prune_decision(&kept, "app", "ops"),
            PruneDecision::Keep(_)
        ));
        assert!(matches!(
            prune_decision(&ours, "other", "ops"),
            PruneDecision::Keep(_)
        ));
        let mut owned = ours.clone();
        owned["metadata"]["ownerReferences"] = json!([{"blockOwnerDeletion": true}]);
        assert!(matches!(
            prune_decision(&owned, "app", "ops"),
            PruneDecision::Keep(_)
        ));
        let mut deleting = ours;
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(matches!(
            prune_decision(&deleting, "app", "ops"),
            PruneDecision::Keep(_)
        ));
    }

    #[test]
    fn removed_entries_come_in_prune_order() {
        let previous = vec![
            InventoryEntry {
                id: "_crds.example.com_apiextensions.k8s.io_CustomResourceDefinition".into(),
                v: "v1".into(),
            },
            InventoryEntry {
                id: "_team__Namespace".into(),
                v: "v1".into(),
            },
            InventoryEntry {
                id: "team_web_apps_Deployment".into(),
                v: "v1".into(),
            },
            InventoryEntry {
                id: "team_kept__ConfigMap".into(),
                v: "v1".into(),
            },
        ];
        let current: BTreeSet<ObjectKey> =
            [ObjectKey::from_id("team_kept__ConfigMap").unwrap()].into();
        let removed: Vec<String> = removed_entries(&previous, &current)
            .into_iter()
            .map(|(k, _)| k.kind)
            .collect();
        assert_eq!(
            removed,
            ["Deployment", "Namespace", "CustomResourceDefinition"]
        );
    }

    #[test]
    fn duplicates_name_both_places() {
        let key = ObjectKey::from_id("ns_a__ConfigMap").unwrap();
        let one = Origin {
            file: "a.yaml".into(),
            line: 1,
        };
        let two = Origin {
            file: "b.yaml".into(),
            line: 3,
        };
        let err = check_duplicates([(&key, &one), (&key, &two)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConfigMap/ns/a is defined twice: a.yaml:1 and b.yaml:3"
        );
        assert!(defined_kinds(&[]).is_empty());
    }
}
