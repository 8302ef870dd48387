//! kubectl against the test cluster: the admin kubeconfig, the cluster's own cache folder, no
//! proxy, bounded runs; applying with retries of transient errors; namespaces, CRDs and the
//! sealing-key Secrets.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    cluster::Cluster,
    objects::ACTIVE_KEY_SELECTOR,
    process::{COMMAND_TIMEOUT, run_command, scrub_proxy_env},
    wait::{READY_TIMEOUT, wait_for},
};

/// Fails the test unless kubectl runs: with `KUBEBUILDER_ASSETS` set the suites need it, so a
/// missing kubectl is a failure, not a skip.
pub fn require_kubectl() {
    let works = Command::new(kubectl_program())
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "KUBEBUILDER_ASSETS is set but `{}` does not run: the e2e suite needs kubectl (set KUBECTL or PATH)",
        kubectl_program().display()
    );
}

/// The kubectl to run: `$KUBECTL` if set, else `kubectl` from `PATH`.
pub fn kubectl_program() -> PathBuf {
    std::env::var_os("KUBECTL")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

fn kubectl_command(cluster: &Cluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(kubectl_program());
    cmd.arg(format!("--kubeconfig={}", cluster.kubeconfig().display()))
        .arg(format!("--cache-dir={}", cluster.kubectl_cache().display()))
        .arg("--request-timeout=30s")
        .args(args)
        .env_remove("KUBECONFIG");
    scrub_proxy_env(&mut cmd);
    cmd
}

/// Runs `kubectl --kubeconfig <admin> <args>` (with `stdin` if given): stdout on success,
/// else an error with the exit status and stderr.
pub fn kubectl_with_stdin(
    cluster: &Cluster,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<String, String> {
    run_command(&mut kubectl_command(cluster, args), stdin, COMMAND_TIMEOUT)?
        .stdout_or_failure(&format!("kubectl {}", args.join(" ")))
}

/// Runs `kubectl --kubeconfig <admin> <args>`: stdout on success, else the error.
pub fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<String, String> {
    kubectl_with_stdin(cluster, args, None)
}

/// Like [`kubectl`] but panics on failure.
pub fn kubectl_ok(cluster: &Cluster, args: &[&str]) -> String {
    kubectl(cluster, args).unwrap_or_else(|e| panic!("{e}"))
}

/// `kubectl <args> -o json`, parsed.
pub fn kubectl_json(cluster: &Cluster, args: &[&str]) -> Result<Value, String> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", "json"]);
    let text = kubectl(cluster, &all)?;
    serde_json::from_str(&text).map_err(|e| format!("kubectl {}: invalid JSON: {e}", all.join(" ")))
}

/// GETs one object as JSON; `Ok(None)` when it does not exist.
pub fn get_object(
    cluster: &Cluster,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, String> {
    let args = [
        "get",
        kind,
        name,
        "-n",
        namespace,
        "--ignore-not-found",
        "-o",
        "json",
    ];
    let text = kubectl(cluster, &args)?;
    // `--ignore-not-found` prints nothing when the object does not exist.
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("kubectl {}: invalid JSON: {e}", args.join(" ")))
}

/// Error texts worth retrying an apply for: CRD discovery lag and apiserver hiccups.
fn transient(err: &str) -> bool {
    [
        "no matches for kind",
        "ensure CRDs are installed first",
        "the server could not find the requested resource",
        "the server is currently unable to handle the request",
        "connection refused",
        "TLS handshake timeout",
        "etcdserver: request timed out",
        "context deadline exceeded",
        // Client-side validation while the new CRD's OpenAPI is not published yet.
        "error validating data",
        "failed to download openapi",
    ]
    .iter()
    .any(|t| err.contains(t))
}

/// `kubectl apply -f -` with `yaml` (YAML or JSON, one or more documents), retrying transient
/// errors for up to 30 s. Returns kubectl's output.
pub fn apply_yaml(cluster: &Cluster, yaml: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match kubectl_with_stdin(cluster, &["apply", "-f", "-"], Some(yaml.as_bytes())) {
            Ok(out) => return out,
            Err(err) if transient(&err) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(500))
            }
            Err(err) => panic!("{err}\n--- applied document ---\n{yaml}"),
        }
    }
}

/// `kubectl apply -f <path>`, retrying transient errors for up to 30 s.
pub fn apply_file(cluster: &Cluster, path: &Path) -> String {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    apply_yaml(cluster, &text)
}

/// Creates namespace `name` (use [`unique_name`](crate::unique_name)) and returns it.
pub fn create_namespace(cluster: &Cluster, name: &str) -> String {
    wait_for(
        &format!("namespace {name} to be created"),
        Duration::from_secs(30),
        || match kubectl(cluster, &["create", "namespace", name]) {
            Ok(_) => Ok(()),
            Err(err) if err.contains("AlreadyExists") || err.contains("already exists") => Ok(()),
            Err(err) if transient(&err) => Err(err),
            Err(err) => panic!("{err}"),
        },
    );
    name.to_string()
}

/// Applies the CRD file at `path`, waits for condition `Established` on CRD `crd_name`, then
/// until `kubectl get <crd_name> -A` works (discovery caught up).
pub fn install_crd(cluster: &Cluster, path: &Path, crd_name: &str) {
    assert!(
        path.is_file(),
        "CRD file {} is missing (the e2e suite applies it to the test apiserver)",
        path.display()
    );
    apply_file(cluster, path);
    wait_for(
        &format!("CRD {crd_name} to be Established"),
        READY_TIMEOUT,
        || {
            let crd = kubectl_json(cluster, &["get", "customresourcedefinition", crd_name])?;
            let established = crd["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True");
            if established {
                Ok(())
            } else {
                Err(format!("conditions: {}", crd["status"]["conditions"]))
            }
        },
    );
    wait_for(&format!("{crd_name} to be served"), READY_TIMEOUT, || {
        kubectl(cluster, &["get", crd_name, "-A"]).map(|_| ())
    });
}

/// The active sealing-key Secrets in `namespace`, oldest first (by creationTimestamp, then
/// name).
pub fn key_secrets(cluster: &Cluster, namespace: &str) -> Result<Vec<Value>, String> {
    let list = kubectl_json(
        cluster,
        &["get", "secrets", "-n", namespace, "-l", ACTIVE_KEY_SELECTOR],
    )?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(items)
}
