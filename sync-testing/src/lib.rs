//! An in-memory API server for tests and benchmarks of the sync engine, served to a kube
//! `Client` through a tower service (no sockets).
//!
//! A crate of its own, used only as a dev-dependency: a fake API server has no place in the
//! production crate (`sealed-secrets-sync`) or in the binaries built from it.
//!
//! It answers what the engine and reconciler send: per-group discovery, GET, LIST with an
//! equality label selector, WATCH (a stream of the changes made after it opens), server-side
//! apply (with `dryRun`), merge patches of `status`, and DELETE. Apply is simplified to "the
//! applied object replaces everything but status and server-set metadata"; resourceVersion
//! moves only when something changed, and objects with a `spec` carry a generation that moves
//! only when the spec changed (ConfigMaps and Secrets have none, as on a real API server),
//! which is what the engine's decisions and the drift watches depend on. Every request is
//! recorded so tests can assert how many writes a sync made. Deployments can be made to look
//! rolled out at once, as a stand-in for the Deployment controller.
//!
//! [`GitRepo`] is the other fixture every sync test needs: a real Git repository in a temporary
//! folder, committed to with git itself, independent of the machine's git configuration.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex, MutexGuard},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use kube::{Client, client::Body};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Body of the fake's answers: a whole JSON document, or a watch stream.
type FakeBody = UnsyncBoxBody<Bytes, Infallible>;

/// An open watch: which objects it wants and where their events go.
struct Watch {
    plural: String,
    namespace: String,
    selector: String,
    events: UnboundedSender<Bytes>,
}

/// A kind the fake server serves.
#[derive(Debug, Clone)]
pub struct FakeKind {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl FakeKind {
    /// A kind.
    pub fn new(api_version: &str, kind: &str, plural: &str, namespaced: bool) -> FakeKind {
        let (group, version) = sealed_secrets_sync::manifest::split_api_version(api_version);
        FakeKind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

#[derive(Default)]
struct State {
    kinds: Vec<FakeKind>,
    /// (plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    resource_version: u64,
    requests: Vec<String>,
    roll_out_deployments: bool,
    watches: Vec<Watch>,
}

impl State {
    /// Sends a watch event about `object` to every open watch that selects it.
    fn notify(&mut self, plural: &str, event: &str, object: &Value) {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let line = format!("{}\n", json!({"type": event, "object": object}));
        self.watches.retain(|w| {
            let selected = w.plural == plural
                && (w.namespace.is_empty() || w.namespace == namespace)
                && matches_selector(object, &w.selector);
            !selected || w.events.send(Bytes::from(line.clone())).is_ok()
        });
    }
}

/// The fake API server. Clones share state.
#[derive(Clone, Default)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
}

impl FakeApiServer {
    /// A server with the core kinds a GitOps repository usually holds, CRDs, SealedSecrets
    /// and GitSyncs.
    pub fn new() -> FakeApiServer {
        let server = FakeApiServer::default();
        for kind in [
            FakeKind::new("v1", "Namespace", "namespaces", false),
            FakeKind::new("v1", "ConfigMap", "configmaps", true),
            FakeKind::new("v1", "Secret", "secrets", true),
            FakeKind::new("v1", "Service", "services", true),
            FakeKind::new("v1", "ServiceAccount", "serviceaccounts", true),
            FakeKind::new("apps/v1", "Deployment", "deployments", true),
            FakeKind::new(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "clusterroles",
                false,
            ),
            FakeKind::new(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            ),
            FakeKind::new(
                "bitnami.com/v1alpha1",
                "SealedSecret",
                "sealedsecrets",
                true,
            ),
            FakeKind::new(
                "gitops.sealed-secrets-rs.io/v1alpha1",
                "GitSync",
                "gitsyncs",
                true,
            ),
        ] {
            server.add_kind(kind);
        }
        server
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves another kind (as when a CRD becomes established).
    pub fn add_kind(&self, kind: FakeKind) {
        self.lock().kinds.push(kind);
    }

    /// Makes every applied Deployment report a completed rollout.
    pub fn roll_out_deployments(&self, on: bool) {
        self.lock().roll_out_deployments = on;
    }

    /// Requests seen so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Number of recorded requests that wrote (PATCH, POST, DELETE; dry runs excluded).
    pub fn writes(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| {
                (r.starts_with("PATCH") || r.starts_with("DELETE") || r.starts_with("POST"))
                    && !r.contains("dryRun")
            })
            .count()
    }

    /// A stored object.
    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(plural.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Number of stored objects of a resource.
    pub fn count(&self, plural: &str) -> usize {
        self.lock()
            .objects
            .keys()
            .filter(|(p, _, _)| p == plural)
            .count()
    }

    /// Stores an object as a user would create it (for example a GitSync).
    pub fn insert(&self, plural: &str, object: Value) {
        let mut state = self.lock();
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        state.resource_version += 1;
        let rv = state.resource_version;
        let mut object = object;
        set_meta(&mut object, "resourceVersion", json!(rv.to_string()));
        set_meta(&mut object, "uid", json!(format!("uid-{rv}")));
        if object.get("spec").is_some() && object.pointer("/metadata/generation").is_none() {
            set_meta(&mut object, "generation", json!(1));
        }
        state.notify(plural, "ADDED", &object);
        state
            .objects
            .insert((plural.into(), namespace, name), object);
    }

    /// Changes a stored object as `kubectl edit` would (bumping resourceVersion, and generation
    /// when the spec changed).
    pub fn edit(&self, plural: &str, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut state = self.lock();
        state.resource_version += 1;
        let rv = state.resource_version;
        if let Some(object) = state
            .objects
            .get_mut(&(plural.into(), namespace.into(), name.into()))
        {
            let spec_before = object.get("spec").cloned();
            change(object);
            set_meta(object, "resourceVersion", json!(rv.to_string()));
            if object.get("spec").is_some() && object.get("spec").cloned() != spec_before {
                let generation = object
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                set_meta(object, "generation", json!(generation + 1));
            }
            let object = object.clone();
            state.notify(plural, "MODIFIED", &object);
        }
    }

    /// Removes a stored object.
    pub fn remove(&self, plural: &str, namespace: &str, name: &str) {
        let mut state = self.lock();
        if let Some(object) = state
            .objects
            .remove(&(plural.into(), namespace.into(), name.into()))
        {
            state.notify(plural, "DELETED", &object);
        }
    }

    /// A kube client talking to this server.
    pub fn client(&self) -> Client {
        let server = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let server = server.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let path = parts.uri.path();
                let query = parts.uri.query().unwrap_or("");
                let (status, body): (StatusCode, FakeBody) =
                    match server.open_watch(&parts.method, path, query) {
                        Some(mut events) => {
                            let stream = futures::stream::poll_fn(move |cx| {
                                events
                                    .poll_recv(cx)
                                    .map(|line| line.map(|l| Ok::<_, Infallible>(Frame::data(l))))
                            });
                            (StatusCode::OK, StreamBody::new(stream).boxed_unsync())
                        }
                        None => {
                            let (status, reply) = server.handle(&parts.method, path, query, &bytes);
                            let bytes = serde_json::to_vec(&reply).unwrap_or_default();
                            (status, Full::new(Bytes::from(bytes)).boxed_unsync())
                        }
                    };
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(body)
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()));
                Ok::<_, Infallible>(response)
            }
        });
        Client::new(service, "default")
    }

    /// Answers one HTTP request (`path` may carry `?query`), for serving this fake over a
    /// socket: status code and JSON body. Watches are not served this way.
    pub fn answer(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let (status, reply) = self.handle(&method, path, query, body);
        (
            status.as_u16(),
            serde_json::to_vec(&reply).unwrap_or_default(),
        )
    }

    /// Registers a watch when the request is one (`GET` of a collection with `watch=true`).
    fn open_watch(
        &self,
        method: &Method,
        path: &str,
        query: &str,
    ) -> Option<UnboundedReceiver<Bytes>> {
        let params = parse_query(query);
        let watching = params.get("watch").is_some_and(|w| w == "true" || w == "1");
        if method != Method::GET || !watching {
            return None;
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let rest = match segments.as_slice() {
            ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
            _ => return None,
        };
        let (namespace, plural) = match rest {
            ["namespaces", ns, plural] => (*ns, *plural),
            [plural] => ("", *plural),
            _ => return None,
        };
        let (events, receiver) = unbounded_channel();
        let mut state = self.lock();
        state.requests.push(format!("GET {path}?{query}"));
        state.watches.push(Watch {
            plural: plural.to_string(),
            namespace: namespace.to_string(),
            selector: params.get("labelSelector").cloned().unwrap_or_default(),
            events,
        });
        Some(receiver)
    }

    fn handle(&self, method: &Method, path: &str, query: &str, body: &[u8]) -> (StatusCode, Value) {
        let mut state = self.lock();
        state.requests.push(if query.is_empty() {
            format!("{method} {path}")
        } else {
            format!("{method} {path}?{query}")
        });
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // Discovery of one group version.
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return not_found(path),
        };
        if rest.is_empty() {
            let resources: Vec<Value> = state
                .kinds
                .iter()
                .filter(|k| k.group == group && k.version == version)
                .map(|k| {
                    json!({
                        "name": k.plural, "singularName": k.kind.to_lowercase(),
                        "namespaced": k.namespaced, "kind": k.kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                    })
                })
                .collect();
            if resources.is_empty() {
                return not_found(path);
            }
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            return (
                StatusCode::OK,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            );
        }
        let (namespace, plural, name, subresource) = match rest {
            ["namespaces", ns, plural] => (*ns, *plural, None, None),
            ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name), None),
            ["namespaces", ns, plural, name, sub] => (*ns, *plural, Some(*name), Some(*sub)),
            [plural] => ("", *plural, None, None),
            [plural, name] => ("", *plural, Some(*name), None),
            [plural, name, sub] => ("", *plural, Some(*name), Some(*sub)),
            _ => return not_found(path),
        };
        let Some(kind) = state
            .kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
            .cloned()
        else {
            return not_found(path);
        };
        let params = parse_query(query);
        let Some(name) = name else {
            if method != Method::GET {
                return (StatusCode::METHOD_NOT_ALLOWED, json!({}));
            }
            let selector = params.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|((p, ns, _), _)| p == plural && (namespace.is_empty() || ns == namespace))
                .map(|(_, o)| o.clone())
                .filter(|o| matches_selector(o, &selector))
                .collect();
            return (
                StatusCode::OK,
                json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(), "metadata": {"resourceVersion": state.resource_version.to_string()}, "items": items}),
            );
        };
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        match (method.clone(), subresource) {
            (Method::GET, None) => match state.objects.get(&key) {
                Some(object) => (StatusCode::OK, object.clone()),
                None => not_found(name),
            },
            // An object with finalizers is only marked for deletion, as on a real API server.
            (Method::DELETE, None)
                if state
                    .objects
                    .get(&key)
                    .and_then(|o| o.pointer("/metadata/finalizers"))
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty()) =>
            {
                state.resource_version += 1;
                let rv = state.resource_version;
                let Some(object) = state.objects.get_mut(&key) else {
                    return not_found(name);
                };
                if object.pointer("/metadata/deletionTimestamp").is_none() {
                    set_meta(object, "deletionTimestamp", json!("2026-12-01T00:00:00Z"));
                    set_meta(object, "resourceVersion", json!(rv.to_string()));
                }
                let object = object.clone();
                state.notify(plural, "MODIFIED", &object);
                (StatusCode::OK, object)
            }
            (Method::DELETE, None) => match state.objects.remove(&key) {
                Some(object) => {
                    state.notify(plural, "DELETED", &object);
                    (
                        StatusCode::OK,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                    )
                }
                None => not_found(name),
            },
            (Method::PATCH, Some("status")) => {
                let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                    return bad_request("patch is not JSON");
                };
                state.resource_version += 1;
                let rv = state.resource_version;
                let Some(object) = state.objects.get_mut(&key) else {
                    return not_found(name);
                };
                merge_patch(object, &patch);
                set_meta(object, "resourceVersion", json!(rv.to_string()));
                let object = object.clone();
                state.notify(plural, "MODIFIED", &object);
                (StatusCode::OK, object)
            }
            // A merge patch of metadata (finalizers): apply patches always name their kind.
            (Method::PATCH, None)
                if serde_json::from_slice::<Value>(body)
                    .is_ok_and(|v| v.get("kind").is_none() && v.get("metadata").is_some()) =>
            {
                let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                    return bad_request("patch is not JSON");
                };
                let Some(object) = state.objects.get(&key).cloned() else {
                    return not_found(name);
                };
                if let Some(expected) = patch.pointer("/metadata/resourceVersion")
                    && object.pointer("/metadata/resourceVersion") != Some(expected)
                {
                    return (
                        StatusCode::CONFLICT,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "Conflict", "code": 409,
                               "message": "the object has been modified"}),
                    );
                }
                let mut object = object;
                merge_patch(&mut object, &patch);
                state.resource_version += 1;
                set_meta(
                    &mut object,
                    "resourceVersion",
                    json!(state.resource_version.to_string()),
                );
                let finalized = object.pointer("/metadata/deletionTimestamp").is_some()
                    && object
                        .pointer("/metadata/finalizers")
                        .and_then(Value::as_array)
                        .is_none_or(|f| f.is_empty());
                if finalized {
                    state.objects.remove(&key);
                    state.notify(plural, "DELETED", &object);
                } else {
                    state.objects.insert(key, object.clone());
                    state.notify(plural, "MODIFIED", &object);
                }
                (StatusCode::OK, object)
            }
            (Method::PATCH, None) => {
                let Ok(applied) = serde_json::from_slice::<Value>(body) else {
                    return bad_request("apply patch is not JSON");
                };
                let dry_run = params.contains_key("dryRun");
                let roll_out = state.roll_out_deployments;
                let next_rv = state.resource_version + 1;
                let existing = state.objects.get(&key).cloned();
                let mut result = applied.clone();
                if let Some(map) = result.as_object_mut() {
                    map.remove("status");
                }
                if !kind.namespaced
                    && let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    meta.remove("namespace");
                }
                let (generation, changed) = match &existing {
                    Some(old) => {
                        for field in ["uid", "creationTimestamp"] {
                            if let Some(v) = old.pointer(&format!("/metadata/{field}")) {
                                set_meta(&mut result, field, v.clone());
                            }
                        }
                        if let Some(status) = old.get("status") {
                            result["status"] = status.clone();
                        }
                        let old_generation = old
                            .pointer("/metadata/generation")
                            .and_then(Value::as_i64)
                            .unwrap_or(1);
                        let spec_changed = old.get("spec") != result.get("spec");
                        let mut comparable = old.clone();
                        for field in ["resourceVersion", "generation"] {
                            if let Some(meta) = comparable
                                .get_mut("metadata")
                                .and_then(Value::as_object_mut)
                            {
                                meta.remove(field);
                            }
                        }
                        let changed = comparable != result;
                        (old_generation + i64::from(spec_changed), changed)
                    }
                    None => {
                        set_meta(&mut result, "uid", json!(format!("uid-{next_rv}")));
                        set_meta(
                            &mut result,
                            "creationTimestamp",
                            json!("2026-12-01T00:00:00Z"),
                        );
                        (1, true)
                    }
                };
                if result.get("spec").is_some() {
                    set_meta(&mut result, "generation", json!(generation));
                }
                if roll_out && kind.kind == "Deployment" {
                    let replicas = result
                        .pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    let status = json!({"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas});
                    result["status"] = status;
                }
                let rv = match (&existing, changed) {
                    (Some(old), false) => old
                        .pointer("/metadata/resourceVersion")
                        .cloned()
                        .unwrap_or(json!("0")),
                    _ => json!(next_rv.to_string()),
                };
                set_meta(&mut result, "resourceVersion", rv);
                if !dry_run && (changed || existing.is_none()) {
                    state.resource_version = next_rv;
                    let event = if existing.is_none() {
                        "ADDED"
                    } else {
                        "MODIFIED"
                    };
                    state.notify(plural, event, &result);
                    state.objects.insert(key, result.clone());
                } else if !dry_run && let Some(stored) = state.objects.get_mut(&key) {
                    // Status written by the stand-in controller still lands.
                    if let Some(status) = result.get("status") {
                        stored["status"] = status.clone();
                    }
                }
                let code = if existing.is_none() {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                (code, result)
            }
            _ => (StatusCode::METHOD_NOT_ALLOWED, json!({})),
        }
    }
}

fn set_meta(object: &mut Value, field: &str, value: Value) {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"][field] = value;
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    target.remove(k);
                } else {
                    merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.push(b'%'),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equality selectors (`a=b,c=d`) and existence (`a`).
fn matches_selector(object: &Value, selector: &str) -> bool {
    let labels = object.pointer("/metadata/labels");
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => {
                labels
                    .and_then(|l| l.get(k.trim_end_matches('=')))
                    .and_then(Value::as_str)
                    == Some(v.trim_start_matches('='))
            }
            None => labels.and_then(|l| l.get(term)).is_some(),
        })
}

fn not_found(what: &str) -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{what} not found")}),
    )
}

fn bad_request(message: &str) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "BadRequest", "code": 400, "message": message}),
    )
}

/// Runs real git in `dir` for test fixtures, with a fixed identity and none of the machine's
/// configuration or `GIT_*` environment; returns its trimmed stdout and panics on failure.
pub fn run_git(dir: &Path, args: &[&str]) -> String {
    let mut command = Command::new("git");
    for name in sealed_secrets_sync::source::ENV_REMOVE {
        command.env_remove(name);
    }
    let output = command
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A Git repository (branch `main`) in a temporary folder, removed on drop.
pub struct GitRepo {
    dir: tempfile::TempDir,
}

impl GitRepo {
    /// An empty repository.
    pub fn new() -> GitRepo {
        let dir = tempfile::Builder::new()
            .prefix("sealed-secrets-repo-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        run_git(dir.path(), &["init", "-q"]);
        GitRepo { dir }
    }

    /// Runs git in the repository.
    pub fn git(&self, args: &[&str]) -> String {
        run_git(self.dir.path(), args)
    }

    /// A path inside the work tree.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes a file, creating its folders.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Deletes a file.
    pub fn remove(&self, relative: &str) {
        let path = self.path(relative);
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Commits everything; returns the new commit's SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// The `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        GitRepo::new()
    }
}
