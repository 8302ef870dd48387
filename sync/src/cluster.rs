//! The thin I/O layer between the sync engine and the API server.
//!
//! Kinds are resolved lazily, one API group version at a time (`discovery::pinned_kind`), and
//! cached: a repository uses a handful of kinds, and full discovery of a cluster is dozens of
//! requests. The cache forgets kinds it could not find, so a kind whose CRD was just applied is
//! found on the next look. Objects travel as JSON values: the engine never needs typed access.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use kube::{
    Client,
    api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
    core::{ApiResource, GroupVersionKind},
    discovery::{Scope, pinned_kind},
};
use serde_json::Value;

use crate::{manifest::ObjectKey, resource::FIELD_MANAGER};

/// A resolved kind: how to address it, and whether its objects live in namespaces.
#[derive(Debug, Clone)]
pub struct Kind {
    /// The REST resource.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

/// An API failure, with the object or kind it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct ClusterError {
    /// The object or kind.
    pub what: String,
    /// What the API server (or the connection) said.
    pub message: String,
    /// HTTP status code, when the API server answered.
    pub code: Option<u16>,
}

impl ClusterError {
    fn new(what: impl Into<String>, err: kube::Error) -> ClusterError {
        let code = match &err {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        };
        let message = match &err {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        };
        ClusterError {
            what: what.into(),
            message,
            code,
        }
    }
}

/// Group, version and kind.
type KindKey = (String, String, String);

/// The API server, as the engine uses it.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    kinds: Arc<Mutex<HashMap<KindKey, Kind>>>,
}

impl Cluster {
    /// Wraps a client.
    pub fn new(client: Client) -> Cluster {
        Cluster {
            client,
            kinds: Arc::default(),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resolves `apiVersion` + `kind`; `None` when the server does not serve it (yet).
    pub async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Kind>, ClusterError> {
        let (group, version) = crate::manifest::split_api_version(api_version);
        let cache_key = (group.to_string(), version.to_string(), kind.to_string());
        if let Some(found) = self.cached(&cache_key) {
            return Ok(Some(found));
        }
        let gvk = GroupVersionKind::gvk(group, version, kind);
        match pinned_kind(&self.client, &gvk).await {
            Ok((resource, caps)) => {
                let found = Kind {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                };
                if let Ok(mut kinds) = self.kinds.lock() {
                    kinds.insert(cache_key, found.clone());
                }
                Ok(Some(found))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(err) => Err(ClusterError::new(
                format!("discovery of {api_version} {kind}"),
                err,
            )),
        }
    }

    fn cached(&self, key: &KindKey) -> Option<Kind> {
        self.kinds.lock().ok()?.get(key).cloned()
    }

    fn api(&self, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
        if kind.namespaced && !namespace.is_empty() {
            Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
        } else {
            Api::all_with(self.client.clone(), &kind.resource)
        }
    }

    /// Objects of a kind in a namespace (all namespaces when empty) with these labels.
    pub async fn list(
        &self,
        kind: &Kind,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let api = self.api(kind, namespace);
        let params = ListParams::default().labels(label_selector);
        let list = api.list(&params).await.map_err(|e| {
            ClusterError::new(format!("list {} in {namespace:?}", kind.resource.plural), e)
        })?;
        Ok(list.items.iter().map(to_value).collect())
    }

    /// The live object, or `None` when it does not exist.
    pub async fn get(&self, kind: &Kind, key: &ObjectKey) -> Result<Option<Value>, ClusterError> {
        let api = self.api(kind, &key.namespace);
        api.get_opt(&key.name)
            .await
            .map(|o| o.as_ref().map(to_value))
            .map_err(|e| ClusterError::new(key.to_string(), e))
    }

    /// Server-side apply with our field manager, taking over conflicting fields (as Flux does:
    /// Git is the source of truth). With `dry_run` the server computes the result and stores
    /// nothing.
    pub async fn apply(
        &self,
        kind: &Kind,
        key: &ObjectKey,
        object: &Value,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let api = self.api(kind, &key.namespace);
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        if dry_run {
            params = params.dry_run();
        }
        api.patch(&key.name, &params, &Patch::Apply(object))
            .await
            .map(|o| to_value(&o))
            .map_err(|e| ClusterError::new(key.to_string(), e))
    }

    /// Deletes an object in the background (dependents go through garbage collection). An
    /// object that is already gone is not an error.
    pub async fn delete(&self, kind: &Kind, key: &ObjectKey) -> Result<(), ClusterError> {
        let api = self.api(kind, &key.namespace);
        match api.delete(&key.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(ClusterError::new(key.to_string(), e)),
        }
    }
}

fn to_value(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}
