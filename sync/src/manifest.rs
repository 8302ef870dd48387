//! One rendered object, where it came from, and the identity that inventory, prune and diff
//! compare by.
//!
//! Identity is Flux's: namespace, name, API group and kind (the version is recorded but does not
//! make a different object). Keeping the file and line of every object lets each error name the
//! place in the repository a user has to fix.

use std::fmt;

use serde_json::Value;

use crate::resource::InventoryEntry;

/// Where in the repository an object was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Path relative to the repository root, or `kustomize build <dir>` for a kustomize render.
    pub file: String,
    /// 1-based line where the object's document starts; 0 when unknown.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// An object from the render.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where it was written.
    pub origin: Origin,
    /// The object as written (after kustomize, if any).
    pub object: Value,
}

/// The identity of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// API group; empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects (or not yet defaulted).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// Flux's inventory id: `<namespace>_<name>_<group>_<kind>`.
    pub fn id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace, self.name, self.group, self.kind
        )
    }

    /// Reads an inventory id back. Names, namespaces, groups and kinds cannot contain `_`, so
    /// the split is unambiguous.
    pub fn from_id(id: &str) -> Option<ObjectKey> {
        let mut parts = id.splitn(4, '_');
        let namespace = parts.next()?.to_string();
        let name = parts.next()?.to_string();
        let group = parts.next()?.to_string();
        let kind = parts.next()?.to_string();
        if name.is_empty() || kind.is_empty() {
            return None;
        }
        Some(ObjectKey {
            group,
            kind,
            namespace,
            name,
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        };
        if self.namespace.is_empty() {
            write!(f, "{kind}/{}", self.name)
        } else {
            write!(f, "{kind}/{}/{}", self.namespace, self.name)
        }
    }
}

/// Splits an `apiVersion` into group and version (`apps/v1` → `apps`, `v1`; `v1` → ``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// An object that lacks what every Kubernetes object needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct InvalidObject {
    /// Where it was written.
    pub origin: Origin,
    /// What is missing.
    pub problem: String,
}

impl Manifest {
    /// `apiVersion` of the object.
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `kind` of the object.
    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The object's key as written (namespace not yet defaulted), or what is missing.
    pub fn key(&self) -> Result<ObjectKey, InvalidObject> {
        let problem = |p: &str| InvalidObject {
            origin: self.origin.clone(),
            problem: p.to_string(),
        };
        if !self.object.is_object() {
            return Err(problem("a document is not a mapping"));
        }
        let api_version = self.api_version();
        if api_version.is_empty() {
            return Err(problem("apiVersion is missing"));
        }
        let kind = self.kind();
        if kind.is_empty() {
            return Err(problem("kind is missing"));
        }
        if kind.ends_with("List") && self.object.get("items").is_some() {
            return Err(problem(&format!(
                "{kind}: lists are not applied; write each object as its own document"
            )));
        }
        let meta = self.object.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() {
            return Err(problem(&format!(
                "{kind}: metadata.name is missing (generateName cannot be tracked)"
            )));
        }
        let namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("");
        Ok(ObjectKey {
            group: split_api_version(api_version).0.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl InventoryEntry {
    /// The `apiVersion` the entry's object was applied with (its key gives the group).
    pub fn api_version(&self, key: &ObjectKey) -> String {
        if key.group.is_empty() {
            self.v.clone()
        } else {
            format!("{}/{}", key.group, self.v)
        }
    }
}

/// The inventory entry of an applied object.
pub fn inventory_entry(key: &ObjectKey, api_version: &str) -> InventoryEntry {
    InventoryEntry {
        id: key.id(),
        v: split_api_version(api_version).1.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(object: Value) -> Manifest {
        Manifest {
            origin: Origin {
                file: "apps/web.yaml".into(),
                line: 7,
            },
            object,
        }
    }

    #[test]
    fn ids_round_trip_like_flux() {
        let key = manifest(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "default"}
        }))
        .key()
        .unwrap();
        assert_eq!(key.id(), "default_podinfo_apps_Deployment");
        assert_eq!(ObjectKey::from_id(&key.id()), Some(key.clone()));
        assert_eq!(
            inventory_entry(&key, "apps/v1").api_version(&key),
            "apps/v1"
        );
        assert_eq!(key.to_string(), "Deployment.apps/default/podinfo");
        let ns = ObjectKey::from_id("_team-a__Namespace").unwrap();
        assert_eq!(ns.kind, "Namespace");
        assert_eq!(ns.name, "team-a");
        assert!(ns.namespace.is_empty() && ns.group.is_empty());
        assert_eq!(inventory_entry(&ns, "v1").api_version(&ns), "v1");
        assert_eq!(ObjectKey::from_id("garbage"), None);
    }

    #[test]
    fn missing_fields_name_the_place() {
        let err = manifest(json!({"kind": "ConfigMap", "metadata": {"name": "x"}}))
            .key()
            .unwrap_err();
        assert_eq!(err.to_string(), "apps/web.yaml:7: apiVersion is missing");
        let err = manifest(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}}),
        )
        .key()
        .unwrap_err();
        assert!(
            err.to_string().contains("metadata.name is missing"),
            "{err}"
        );
        let err = manifest(json!({"apiVersion": "v1", "kind": "List", "items": []}))
            .key()
            .unwrap_err();
        assert!(err.to_string().contains("lists are not applied"), "{err}");
        assert!(manifest(json!("text")).key().is_err());
    }
}
