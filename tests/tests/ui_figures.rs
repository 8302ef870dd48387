//! Figures of `kubeseal ui` on the real control plane (BENCHMARKS.md): the overview with 500
//! GitSyncs, the page of one GitSync of 2,000 objects, and the UI process's peak memory.
//! Ignored by default (it measures, and the figures depend on the machine); run with
//! `bench/ui.sh` (release binaries), or
//! `cargo test -p sealed-secrets-e2e --test ui_figures -- --ignored --nocapture`.
//! It fails only when a page does not show what it should.

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use sealed_secrets_e2e::{
    Assets, Cluster, SEALED_SECRET_CRD, Ui, api::send_retrying, create_namespace, suite_cluster,
    unique_name,
};
use serde_json::json;

const GITSYNCS: usize = 500;
const OBJECTS: usize = 2_000;
const RUNS: usize = 20;

fn setup() -> Option<Arc<Cluster>> {
    suite_cluster(
        Assets::from_env(),
        &[
            ("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD),
            (
                "gitops.sealed-secrets-rs.io_gitsyncs.yaml",
                "gitsyncs.gitops.sealed-secrets-rs.io",
            ),
        ],
    )
}

/// Runs `work(i)` for `0..count` on four threads.
fn in_parallel(count: usize, work: impl Fn(usize) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    work(i);
                }
            });
        }
    });
}

fn gitsync_path(namespace: &str, name: &str) -> String {
    format!("/apis/gitops.sealed-secrets-rs.io/v1alpha1/namespaces/{namespace}/gitsyncs/{name}")
}

/// A GitSync as a synced one looks: spec, and a status with conditions, one history record and
/// an inventory of `entries`.
fn create_gitsync(cluster: &Cluster, namespace: &str, name: &str, entries: Vec<serde_json::Value>) {
    let path = gitsync_path(namespace, name);
    let object = json!({
        "apiVersion": "gitops.sealed-secrets-rs.io/v1alpha1", "kind": "GitSync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"url": "https://git.example/platform.git", "path": format!("apps/{name}")},
                 "suspend": true}
    });
    send_retrying(
        cluster,
        "PATCH",
        &format!("{path}?fieldManager=bench&force=true"),
        "application/apply-patch+yaml",
        object.to_string().as_bytes(),
    );
    let revision = "4f2c9d1e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d";
    let status = json!({"status": {
        "lastAppliedRevision": revision,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Synced", "message": "applied",
             "lastTransitionTime": "2026-12-07T10:00:00Z"},
            {"type": "Healthy", "status": "True", "reason": "Healthy", "message": "all healthy",
             "lastTransitionTime": "2026-12-07T10:00:00Z"}
        ],
        "inventory": {"entries": entries},
        "history": [{"revision": revision, "commitSubject": "Raise the web replicas",
                     "commitAuthor": "Ada Lovelace", "startedAt": "2026-12-07T10:00:00Z",
                     "finishedAt": "2026-12-07T10:00:02Z", "trigger": "NewRevision",
                     "result": "Succeeded", "reason": "Synced", "created": 3}]
    }});
    send_retrying(
        cluster,
        "PATCH",
        &format!("{path}/status"),
        "application/merge-patch+json",
        status.to_string().as_bytes(),
    );
}

/// One HTTP/1.1 GET on loopback: status line, headers and body.
fn get(base: &str, path: &str, cookie: &str) -> (String, String) {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (head.to_string(), body.to_string())
}

fn median_ms(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 95 / 100).min(times.len() - 1)]),
    )
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
#[ignore = "measures; run by bench/ui.sh"]
fn ui_figures() {
    let Some(cluster) = setup() else { return };
    let fleet = unique_name("ui-fleet");
    let big = unique_name("ui-big");
    create_namespace(&cluster, &fleet);
    create_namespace(&cluster, &big);
    let started = Instant::now();
    in_parallel(GITSYNCS, |i| {
        let entries = (0..3)
            .map(|j| json!({"id": format!("{fleet}_app{i}-{j}__ConfigMap"), "v": "v1"}))
            .collect();
        create_gitsync(&cluster, &fleet, &format!("app{i:03}"), entries);
    });
    in_parallel(OBJECTS, |i| {
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm{i:04}"), "namespace": big, "labels": {
                "gitops.sealed-secrets-rs.io/name": "big",
                "gitops.sealed-secrets-rs.io/namespace": big
            }},
            "data": {"index": i.to_string()}
        });
        send_retrying(
            &cluster,
            "PATCH",
            &format!("/api/v1/namespaces/{big}/configmaps/cm{i:04}?fieldManager=bench&force=true"),
            "application/apply-patch+yaml",
            object.to_string().as_bytes(),
        );
    });
    let entries = (0..OBJECTS)
        .map(|i| json!({"id": format!("{big}_cm{i:04}__ConfigMap"), "v": "v1"}))
        .collect();
    create_gitsync(&cluster, &big, "big", entries);
    eprintln!(
        "ui figures: {GITSYNCS} GitSyncs and a GitSync of {OBJECTS} ConfigMaps created in {:.1?}",
        started.elapsed()
    );

    let ui = Ui::start(cluster.kubeconfig(), &[]);
    let base = ui.base();
    let login = ui.url.trim_start_matches(&base).to_string();
    let (head, _) = get(&base, &login, "");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("the login answered a cookie")
        .to_string();
    let rss_idle = peak_rss_mb(ui.pid());

    let mut overview = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let (head, body) = get(&base, "/", &cookie);
        overview.push(t.elapsed());
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(
            body.matches("data-gitsync=").count(),
            GITSYNCS + 1,
            "every GitSync listed"
        );
    }
    let mut tree = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let (head, body) = get(&base, &format!("/gitsyncs/{big}/big"), &cookie);
        tree.push(t.elapsed());
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            body.contains(&format!("{OBJECTS} Healthy")),
            "all {OBJECTS} found"
        );
        assert!(body.contains("page 1 of 20"), "paged");
    }
    let (overview_median, overview_p95) = median_ms(overview);
    let (tree_median, tree_p95) = median_ms(tree);
    let rss = peak_rss_mb(ui.pid());
    eprintln!(
        "ui figures: overview of {GITSYNCS} GitSyncs: median {overview_median:.0} ms, p95 {overview_p95:.0} ms over {RUNS} requests"
    );
    eprintln!(
        "ui figures: GitSync of {OBJECTS} objects: median {tree_median:.0} ms, p95 {tree_p95:.0} ms over {RUNS} requests"
    );
    eprintln!("ui figures: UI process peak RSS {rss:.1} MB (after start-up {rss_idle:.1} MB)");
}
