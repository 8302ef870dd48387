//! Figures of the reconcile core on the real control plane (BENCHMARKS.md), 500 ConfigMaps:
//! first apply with `kubeseal sync apply` against `kubectl apply --server-side`, and the
//! no-op resync of `gitops-controller` (time from its duration histogram, API requests from
//! the API server's `apiserver_request_total`). Ignored by default (it measures, and the
//! figures depend on the machine); run with
//! `cargo test -p sealed-secrets-e2e --test gitops_figures -- --ignored --nocapture`.
//! It fails only when the objects are not applied or the syncs do not happen.

use std::time::{Duration, Instant};

use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD, apply_yaml, create_namespace, kubectl_json,
    kubectl_ok, kubectl_program, kubeseal, suite_cluster, unique_name,
};
use sealed_secrets_sync_testing::GitRepo;

const OBJECTS: usize = 500;

fn setup() -> Option<std::sync::Arc<Cluster>> {
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

fn objects() -> String {
    (0..OBJECTS)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: v{i}\n"
            )
        })
        .collect()
}

fn count(cluster: &Cluster, namespace: &str) -> usize {
    kubectl_json(
        cluster,
        &["get", "configmaps", "-n", namespace, "-o", "json"],
    )
    .map(|l| {
        l["items"]
            .as_array()
            .map(|i| {
                i.iter()
                    .filter(|o| {
                        o["metadata"]["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with('c'))
                    })
                    .count()
            })
            .unwrap_or(0)
    })
    .unwrap_or(0)
}

/// Sum of `apiserver_request_total` over every series (all requests the API server served).
fn requests_served(cluster: &Cluster) -> f64 {
    let reply = cluster.get("/metrics").unwrap_or_else(|e| panic!("{e}"));
    reply
        .text()
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `(sum, count)` of the gitops-controller's sync duration histogram.
fn durations(controller: &Controller) -> (f64, f64) {
    let text = controller
        .get_metrics("/metrics")
        .map(|r| r.text())
        .unwrap_or_default();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("sealed_secrets_gitops_sync_duration_seconds_sum"),
        value("sealed_secrets_gitops_sync_duration_seconds_count"),
    )
}

#[test]
#[ignore = "measures; run with --ignored --nocapture"]
fn figures_for_500_objects() {
    let Some(cluster) = setup() else { return };
    let by_kubectl = unique_name("fig-kubectl");
    let by_us = unique_name("fig-sync");
    let ops = unique_name("fig-ops");
    for ns in [&by_kubectl, &by_us, &ops] {
        create_namespace(&cluster, ns);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deploy")).unwrap();
    std::fs::write(dir.path().join("deploy/objects.yaml"), objects()).unwrap();
    let path = dir.path().join("deploy").display().to_string();

    let start = Instant::now();
    kubectl_ok(
        &cluster,
        &["apply", "--server-side", "-n", &by_kubectl, "-f", &path],
    );
    let kubectl_time = start.elapsed();
    assert_eq!(count(&cluster, &by_kubectl), OBJECTS);

    let start = Instant::now();
    kubeseal(
        &cluster,
        &[
            "sync", "apply", "--name", "fig", "--path", &path, "-n", &by_us,
        ],
        b"",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ours = start.elapsed();
    assert_eq!(count(&cluster, &by_us), OBJECTS);
    println!(
        "figures: first apply of {OBJECTS} ConfigMaps: kubectl apply --server-side {kubectl_time:?}, kubeseal sync apply {ours:?} ({:.2}x)",
        ours.as_secs_f64() / kubectl_time.as_secs_f64()
    );

    // The controller's no-op resync: a GitSync of the same objects, then idle intervals.
    let repo = GitRepo::new();
    repo.write("deploy/objects.yaml", &objects());
    repo.commit("500 objects");
    let sealing = Controller::start_named(&cluster, "sealing", &ops, &["--all-namespaces=false"]);
    let cache = tempfile::tempdir().unwrap();
    let kubectl = kubectl_program();
    let args = [
        format!("--watch-namespaces={ops}"),
        format!("--controller-url=http://{}", sealing.addr),
        format!("--cache-dir={}", cache.path().display()),
        format!("--kubectl={}", kubectl.display()),
        "--allow-controller-identity".to_string(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let controller = Controller::start_gitops(&cluster, "gitops", &refs);
    let target = unique_name("fig-target");
    create_namespace(&cluster, &target);
    apply_yaml(
        &cluster,
        &format!(
            "apiVersion: gitops.sealed-secrets-rs.io/v1alpha1\nkind: GitSync\nmetadata:\n  name: fig\n  namespace: {ops}\nspec:\n  source:\n    url: {}\n    revision: main\n    path: deploy\n  destination:\n    namespace: {target}\n  interval: 3s\n",
            repo.url()
        ),
    );
    controller.wait_for("the first sync", Duration::from_secs(120), || {
        let (_, n) = durations(&controller);
        if n >= 1.0 && count(&cluster, &target) == OBJECTS {
            Ok(())
        } else {
            Err(format!("{n} syncs"))
        }
    });
    let (first_sum, first_count) = durations(&controller);
    let served_before = requests_served(&cluster);
    std::thread::sleep(Duration::from_secs(16));
    let (sum, n) = durations(&controller);
    let served_after = requests_served(&cluster);
    let resyncs = n - first_count;
    assert!(resyncs >= 2.0, "only {resyncs} resyncs in 16 s");
    println!(
        "figures: no-op resync of {OBJECTS} objects by gitops-controller: {:.3} s each (ls-remote, render, LIST, compare; mean of {resyncs}), {:.1} API requests served per resync (all clients, the sealing controller included)",
        (sum - first_sum) / resyncs,
        (served_after - served_before) / resyncs
    );
}
