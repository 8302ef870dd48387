//! The API server's REST interface, straight (no kubectl process per call): server-side apply,
//! delete and list with the admin certificate, each retried while the API server is away, and
//! kubeseal over a stream of Secrets. For suites that make thousands of changes.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{binaries::kubeseal, cluster::Cluster};

/// How long a change is retried while the API server does not answer.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// Sends `method path` until the API server answers 2xx or 404 (bounded by [`RETRY_FOR`]).
pub fn send_retrying(cluster: &Cluster, method: &str, path: &str, content_type: &str, body: &[u8]) {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        let last = match cluster.request(method, path, content_type, body) {
            Ok(reply) if reply.status < 300 || reply.status == 404 => return,
            Ok(reply) => format!("HTTP {}: {}", reply.status, reply.text()),
            Err(err) => err,
        };
        assert!(
            Instant::now() < deadline,
            "{method} {path} kept failing for {RETRY_FOR:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The REST path of a SealedSecret (`name`) or of the collection (`None`).
pub fn sealed_secrets_path(namespace: &str, name: Option<&str>) -> String {
    let base = format!("/apis/bitnami.com/v1alpha1/namespaces/{namespace}/sealedsecrets");
    name.map_or(base.clone(), |n| format!("{base}/{n}"))
}

/// The REST path of a Secret (`name`) or of the collection (`None`).
pub fn secrets_path(namespace: &str, name: Option<&str>) -> String {
    let base = format!("/api/v1/namespaces/{namespace}/secrets");
    name.map_or(base.clone(), |n| format!("{base}/{n}"))
}

/// Server-side apply (field manager `e2e`, forced) of `object` at `path` (the object's own).
pub fn apply_object(cluster: &Cluster, path: &str, object: &Value) {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("creationTimestamp");
    }
    send_retrying(
        cluster,
        "PATCH",
        &format!("{path}?fieldManager=e2e&force=true"),
        "application/apply-patch+yaml",
        object.to_string().as_bytes(),
    );
}

/// Deletes the object at `path` (gone already is fine).
pub fn delete_object(cluster: &Cluster, path: &str) {
    send_retrying(cluster, "DELETE", path, "application/json", b"");
}

/// The items of a list at `path`, by name.
pub fn list_by_name(cluster: &Cluster, path: &str) -> Result<BTreeMap<String, Value>, String> {
    let reply = cluster.get(path)?;
    if reply.status != 200 {
        return Err(format!("GET {path}: HTTP {}", reply.status));
    }
    let list: Value =
        serde_json::from_slice(&reply.body).map_err(|e| format!("GET {path}: {e}"))?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| Some((item["metadata"]["name"].as_str()?.to_string(), item.clone())))
        .collect())
}

/// Documents per kubeseal run: kubeseal reads at most 1,024 documents from one input today
/// (issue 22 raises that limit).
const DOCUMENTS_PER_RUN: usize = 1000;

/// Seals every Secret of `secrets` with OUR kubeseal and `--cert <cert>`, a stream of up to
/// [`DOCUMENTS_PER_RUN`] documents per run; returns the SealedSecrets in the same order.
pub fn seal_all(cluster: &Cluster, cert: &Path, secrets: &[Value]) -> Vec<Value> {
    secrets
        .chunks(DOCUMENTS_PER_RUN)
        .flat_map(|chunk| seal_stream(cluster, cert, chunk))
        .collect()
}

fn seal_stream(cluster: &Cluster, cert: &Path, secrets: &[Value]) -> Vec<Value> {
    let mut input = String::new();
    for secret in secrets {
        input.push_str("---\n");
        input.push_str(&secret.to_string());
        input.push('\n');
    }
    let cert = cert.display().to_string();
    let out = kubeseal(cluster, &["--cert", &cert, "-o", "json"], input.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let sealed: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("kubeseal's output is not a stream of JSON objects: {e}"));
    assert_eq!(sealed.len(), secrets.len(), "one SealedSecret per Secret");
    sealed
}
