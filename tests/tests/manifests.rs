//! The shipped manifests are accepted by a real API server: `deploy/controller.yaml` and the
//! Helm chart rendered with every option (`charts/sealed-secrets/ci/all-values.yaml`), each
//! applied with server-side dry-run against the kube-apiserver from `KUBEBUILDER_ASSETS`.
//!
//! Skips with one line when the assets are absent. The chart part needs `helm`: `HELM`, or the
//! copy `.ci/chart.sh` caches under `~/.cache/sealed-secrets-rs/`; without it that part says so
//! in one line and the rest still runs.

use std::{collections::BTreeSet, path::PathBuf, process::Command};

use sealed_secrets_e2e::{
    Assets, create_namespace, kubectl_with_stdin, shared_cluster, skip, workspace_root,
};
use serde_json::Value;

/// Kinds whose CRDs a bare API server does not have (Prometheus operator).
const OPERATOR_KINDS: &[&str] = &["ServiceMonitor", "PodMonitor", "PrometheusRule"];

fn helm() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HELM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let cache = PathBuf::from(std::env::var_os("HOME")?).join(".cache/sealed-secrets-rs");
    std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("helm"))
        .find(|p| p.is_file())
}

/// Splits a rendered stream into documents, dropping operator kinds, and lists the namespaces
/// the documents live in.
fn prepare(rendered: &str) -> (String, BTreeSet<String>) {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(rendered).expect("rendered YAML parses");
    let mut namespaces = BTreeSet::new();
    let mut kept = Vec::new();
    for doc in docs.into_iter().flatten().filter(|d| d.is_object()) {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if OPERATOR_KINDS.contains(&kind) {
            continue;
        }
        if let Some(ns) = doc["metadata"]["namespace"].as_str() {
            namespaces.insert(ns.to_string());
        }
        kept.push(serde_json::to_string(&doc).expect("JSON"));
    }
    // kubectl reads a stream of JSON objects as well as YAML.
    (kept.join("\n"), namespaces)
}

fn dry_run(rendered: &str, what: &str) {
    let Ok(assets) = Assets::from_env() else {
        return;
    };
    let cluster = shared_cluster(&assets, |_| {});
    let (stream, namespaces) = prepare(rendered);
    for ns in &namespaces {
        create_namespace(&cluster, ns);
    }
    let result = kubectl_with_stdin(
        &cluster,
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=e2e",
            "-f",
            "-",
        ],
        Some(stream.as_bytes()),
    );
    if let Err(err) = result {
        panic!("{what} rejected by the API server: {err}");
    }
}

#[test]
fn deploy_controller_yaml_is_accepted_by_the_api_server() {
    if let Err(reason) = Assets::from_env() {
        skip(&reason);
        return;
    }
    let path = workspace_root().join("deploy/controller.yaml");
    let rendered =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    dry_run(&rendered, "deploy/controller.yaml");
}

#[test]
fn chart_with_every_option_is_accepted_by_the_api_server() {
    if let Err(reason) = Assets::from_env() {
        skip(&reason);
        return;
    }
    let Some(helm) = helm() else {
        skip("helm not found (set HELM or run .ci/chart.sh once to cache it)");
        return;
    };
    let root = workspace_root();
    let output = Command::new(&helm)
        .current_dir(&root)
        .args([
            "template",
            "sealed-secrets",
            "charts/sealed-secrets",
            "--namespace",
            "kube-system",
            "--include-crds",
            "-f",
            "charts/sealed-secrets/ci/all-values.yaml",
        ])
        .output()
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dry_run(
        &String::from_utf8_lossy(&output.stdout),
        "the chart with ci/all-values.yaml",
    );
}

#[test]
fn deploy_controller_yaml_parses_into_the_expected_objects() {
    let path = workspace_root().join("deploy/controller.yaml");
    let rendered =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (stream, namespaces) = prepare(&rendered);
    assert!(namespaces.contains("kube-system"));
    for kind in [
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ClusterRole",
        "ServiceAccount",
    ] {
        assert!(
            stream.contains(&format!("\"kind\":\"{kind}\"")),
            "deploy/controller.yaml lacks a {kind}"
        );
    }
}
