//! Peak resident memory of the `controller` binary in a cluster holding 10,000 Secrets.
//!
//! No kube-apiserver is available on our build machines, so the cluster is a loopback HTTP
//! server that answers what the controller asks at start-up, the way the API server does:
//! the key Secret list (one real key), the SealedSecret list (empty), the metadata-only list of
//! every Secret (10,000 realistic items with labels, Helm annotations and managedFields,
//! paginated by `limit`/`continue` as the API server does), and watches that stay open. Once
//! the controller has listed everything and opened its Secret watch, the process's peak RSS
//! (`VmHWM`) is read from /proc. The same run with 0 Secrets gives the baseline.
//!
//! Run: `cargo bench -p sealed-secrets-controller --bench memory_10k` (Linux only;
//! `MEMORY_BENCH_SECRETS=50000` changes the size). Figures go to BENCHMARKS.md.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use sealed_secrets_core::{key_secret::new_key_secret, keys::generate_key_pair};
use serde_json::{Value, json};

const KEY_NAMESPACE: &str = "kube-system";

/// What the fake API server serves.
struct World {
    key_secret: Value,
    secrets: Vec<Value>,
    /// Set when the controller opened its watch of all Secrets (it has listed them all).
    secrets_watched: AtomicBool,
    unexpected: Mutex<Vec<String>>,
}

fn secret_metadata(i: usize) -> Value {
    let namespace = format!("team-{:03}", i % 200);
    let name = format!("app-{i:05}-credentials");
    let mut meta = json!({
        "name": name,
        "namespace": namespace,
        "uid": format!("6f1c2a3b-0000-4000-8000-{i:012}"),
        "resourceVersion": format!("{}", 100_000 + i),
        "creationTimestamp": "2026-11-01T10:00:00Z",
        "labels": {"app.kubernetes.io/name": format!("app-{i:05}"), "app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": format!("app-{i:05}"), "meta.helm.sh/release-namespace": namespace},
        "managedFields": [{
            "manager": "helm", "operation": "Update", "apiVersion": "v1",
            "time": "2026-11-01T10:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:password": {}, "f:username": {}},
                         "f:metadata": {"f:annotations": {".": {}, "f:meta.helm.sh/release-name": {}, "f:meta.helm.sh/release-namespace": {}},
                                        "f:labels": {".": {}, "f:app.kubernetes.io/managed-by": {}, "f:app.kubernetes.io/name": {}}},
                         "f:type": {}}
        }],
    });
    if i.is_multiple_of(3) {
        meta["ownerReferences"] = json!([{
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": name,
            "uid": format!("9a8b7c6d-0000-4000-8000-{i:012}"), "controller": true,
        }]);
    }
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
}

fn query(path: &str) -> BTreeMap<String, String> {
    path.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// Answers one request; `None` means "a watch: keep the connection open".
fn answer(world: &World, method: &str, path: &str) -> Option<(u16, Value)> {
    let route = path.split('?').next().unwrap_or("");
    let params = query(path);
    let watching = params.get("watch").is_some_and(|v| v == "true" || v == "1");
    if method == "POST" {
        return Some((
            201,
            json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": "e"}}),
        ));
    }
    if watching {
        if route == "/api/v1/secrets" {
            world.secrets_watched.store(true, Ordering::SeqCst);
        }
        return None;
    }
    let list = |kind: &str, api_version: &str, items: Vec<Value>, next: Option<String>| {
        let mut metadata = json!({"resourceVersion": "200000"});
        if let Some(token) = next {
            metadata["continue"] = json!(token);
        }
        Some((
            200,
            json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items}),
        ))
    };
    match route {
        r if r == format!("/api/v1/namespaces/{KEY_NAMESPACE}/secrets") => {
            list("SecretList", "v1", vec![world.key_secret.clone()], None)
        }
        r if r.starts_with(&format!("/api/v1/namespaces/{KEY_NAMESPACE}/secrets/")) => {
            Some(not_found())
        }
        "/apis/bitnami.com/v1alpha1/sealedsecrets" => {
            list("SealedSecretList", "bitnami.com/v1alpha1", Vec::new(), None)
        }
        "/api/v1/secrets" => {
            let limit: usize = params
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(usize::MAX);
            let start: usize = params
                .get("continue")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let end = start.saturating_add(limit).min(world.secrets.len());
            let next = (end < world.secrets.len()).then(|| end.to_string());
            list(
                "PartialObjectMetadataList",
                "meta.k8s.io/v1",
                world.secrets[start.min(end)..end].to_vec(),
                next,
            )
        }
        _ => {
            world
                .unexpected
                .lock()
                .unwrap()
                .push(format!("{method} {path}"));
            Some(not_found())
        }
    }
}

fn serve(stream: TcpStream, world: &World) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        match answer(world, &method, &path) {
            Some((status, value)) => {
                let body = serde_json::to_vec(&value).unwrap();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if out.write_all(head.as_bytes()).is_err() || out.write_all(&body).is_err() {
                    return;
                }
            }
            None => {
                // A watch: headers, then nothing until the controller goes away.
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                let _ = out.write_all(head.as_bytes());
                let _ = out.flush();
                thread::sleep(Duration::from_secs(600));
                return;
            }
        }
    }
}

fn start_server(world: Arc<World>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let world = Arc::clone(&world);
            thread::spawn(move || serve(stream, &world));
        }
    });
    addr
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// What one run measured, in KiB.
struct Measured {
    peak: u64,
    rss: u64,
    anon: u64,
    file: u64,
    synced: Duration,
}

/// Runs the controller against a cluster with `count` Secrets: peak and current RSS, its
/// anonymous (heap, stacks) and file-backed (binary, libraries) parts, and the time until its
/// Secret watch was open.
fn measure(count: usize, key_secret: &Value, dir: &std::path::Path) -> Measured {
    let world = Arc::new(World {
        key_secret: key_secret.clone(),
        secrets: (0..count).map(secret_metadata).collect(),
        secrets_watched: AtomicBool::new(false),
        unexpected: Mutex::new(Vec::new()),
    });
    let addr = start_server(Arc::clone(&world));
    let kubeconfig = dir.join(format!("kubeconfig-{count}"));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: me\n  user:\n    token: t\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: me\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--listen-addr",
            "127.0.0.1:0",
            "--listen-metrics-addr",
            "127.0.0.1:0",
        ])
        .env("POD_NAMESPACE", KEY_NAMESPACE)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !world.secrets_watched.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the controller never watched Secrets"
        );
        assert!(child.try_wait().unwrap().is_none(), "the controller exited");
        thread::sleep(Duration::from_millis(20));
    }
    let synced = started.elapsed();
    thread::sleep(Duration::from_secs(3));
    let measured = Measured {
        peak: status_kb(child.id(), "VmHWM:"),
        rss: status_kb(child.id(), "VmRSS:"),
        anon: status_kb(child.id(), "RssAnon:"),
        file: status_kb(child.id(), "RssFile:"),
        synced,
    };
    let _ = child.kill();
    let _ = child.wait();
    let unexpected = world.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "requests the fake does not serve: {unexpected:?}"
    );
    measured
}

fn main() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipping: /proc is needed to read peak memory");
        return;
    }
    let count: usize = std::env::var("MEMORY_BENCH_SECRETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let pair = generate_key_pair(
        4096,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(24 * 365),
    )
    .unwrap();
    let mut key = new_key_secret(&pair, "sealed-secrets-key", KEY_NAMESPACE, &[], &[]).unwrap();
    key.metadata.name = Some("sealed-secrets-keybench".into());
    key.metadata.resource_version = Some("1".into());
    let mut key_secret = serde_json::to_value(&key).unwrap();
    key_secret["apiVersion"] = json!("v1");
    key_secret["kind"] = json!("Secret");
    let dir = tempfile::tempdir().unwrap();
    println!(
        "| Secrets in the cluster | peak RSS (VmHWM) | RSS after sync | of which heap/stacks (RssAnon) | of which binary/libraries (RssFile) | start to Secret watch |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mb = |kib: u64| kib as f64 / 1024.0;
    for n in [0, count] {
        let m = measure(n, &key_secret, dir.path());
        println!(
            "| {n} | {:.1} MB | {:.1} MB | {:.1} MB | {:.1} MB | {} ms |",
            mb(m.peak),
            mb(m.rss),
            mb(m.anon),
            mb(m.file),
            m.synced.as_millis()
        );
    }
}
