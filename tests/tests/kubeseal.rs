//! End-to-end: our `kubeseal` talks to our controller through a real kube-apiserver's service
//! proxy, exactly as in a cluster (spec §6.5; `shared/spec/e2e-harness.md`, "Reaching the
//! controller through the service proxy").
//!
//! The API server proxies `services/<name>/proxy` only to addresses that belong to a Pod, and
//! Endpoints may not use loopback addresses. So the test runs itself again inside a private
//! network namespace (`unshare --net`, as root), brings `lo` up with the extra address
//! `10.213.9.1/32`, and starts etcd, kube-apiserver (both on 127.0.0.1) and the controller
//! (on 10.213.9.1) there. It then creates what a real cluster has: the Service (port named
//! `http`), the namespace's `default` ServiceAccount, a Pod whose status is patched to
//! `Running` with `podIP` 10.213.9.1, and Endpoints (plus an EndpointSlice) whose address
//! points at that Pod. With nothing but the admin kubeconfig, kubeseal then:
//!
//! - `--fetch-cert`: gets the controller's certificate through `http:<service>:http`;
//! - seals with the fetched certificate (`--cert`) and without any (default path); the
//!   controller unseals both;
//! - `--validate`: a good SealedSecret passes, a renamed one fails with upstream's text;
//! - `--re-encrypt` after a key renewal (SIGUSR1): every value changes, the template's labels
//!   stay, and the new ciphertexts open with the new key only;
//! - a user without `services/proxy` permission gets the clear error (and one with upstream's
//!   documented permissions succeeds).
//!
//! Skips with one line without `KUBEBUILDER_ASSETS`, when not root, without `unshare`/`ip`,
//! or when the kernel refuses a network namespace. Traffic never leaves the machine.

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use sealed_secrets_e2e::{
    Assets, Binaries, Cluster, Controller, SEALED_SECRET_CRD, apply_yaml, create_namespace,
    get_object, install_crd, key_secrets, kubectl_ok, kubeseal, parse_yaml, pem_body,
    require_kubectl, run_command, secret_data, skip, tail, unique_name, wait_for, workspace_root,
};
use serde_json::{Value, json};

/// Set (to anything) in the copy of this test that runs inside the network namespace.
const IN_NETNS: &str = "SEALED_SECRETS_E2E_IN_NETNS";
/// This test's name, for running it again with `--exact`.
const TEST_NAME: &str = "kubeseal_through_the_service_proxy";
/// The "Pod IP" of the controller: an address on `lo` of the test's own network namespace.
const POD_IP: &str = "10.213.9.1";
/// The controller's Service, under upstream's default name (its namespace is unique).
const SERVICE: &str = "sealed-secrets-controller";
/// The Pod standing for the controller.
const POD: &str = "sealed-secrets-controller-0";
/// Upper bound of every wait.
const WAIT: Duration = Duration::from_secs(60);
/// How long the whole inner run may take.
const INNER_TIMEOUT: Duration = Duration::from_secs(900);

#[test]
fn kubeseal_through_the_service_proxy() {
    if std::env::var_os(IN_NETNS).is_some() {
        run_inside_the_namespace();
        return;
    }
    if let Err(reason) = Assets::from_env() {
        skip(&reason);
        return;
    }
    if let Err(reason) = network_namespace_possible() {
        skip(&reason);
        return;
    }
    require_kubectl();
    // Build (or find) the binaries out here: cargo inside the namespace has no network.
    let binaries = Binaries::get();
    let exe = std::env::current_exe().expect("cannot find the test executable");
    let mut cmd = Command::new("unshare");
    cmd.arg("--net")
        .arg("--")
        .arg(&exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .env("SEALED_SECRETS_BIN_DIR", &binaries.dir);
    let out = run_command(&mut cmd, None, INNER_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "the service-proxy test failed inside its network namespace ({}):\n\
         ----- stdout -----\n{}\n----- stderr -----\n{}",
        out.status,
        out.stdout_text(),
        out.stderr_text()
    );
}

/// Why this machine cannot run the test (root, `unshare`, `ip`, a network namespace).
fn network_namespace_possible() -> Result<(), String> {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot tell whether we run as root: {e}"))?;
    if uid != 0 {
        return Err(
            "the service-proxy test needs root (unshare -n for a private network namespace)".into(),
        );
    }
    for (tool, arg) in [("unshare", "--version"), ("ip", "-V")] {
        if Command::new(tool).arg(arg).output().is_err() {
            return Err(format!("the service-proxy test needs `{tool}`, not found"));
        }
    }
    match Command::new("unshare").args(["--net", "true"]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "cannot create a network namespace (`unshare --net true`: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run unshare: {e}")),
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn crd_path() -> PathBuf {
    workspace_root()
        .join("crds")
        .join("bitnami.com_sealedsecrets.yaml")
}

/// The Service (port `http`), the `default` ServiceAccount, the Pod (status patched to
/// Running with the pod IP) and the Endpoints/EndpointSlice pointing at it.
fn expose_controller(cluster: &Cluster, namespace: &str, port: u16, pod_ip: &str) {
    apply_yaml(
        cluster,
        &format!(
            "apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: {namespace}
---
apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  namespace: {namespace}
spec:
  ports:
  - name: http
    port: 8080
    protocol: TCP
    targetPort: {port}
---
apiVersion: v1
kind: Pod
metadata:
  name: {POD}
  namespace: {namespace}
  labels:
    name: sealed-secrets-controller
spec:
  automountServiceAccountToken: false
  containers:
  - name: controller
    image: example.invalid/sealed-secrets-controller:e2e
    ports:
    - name: http
      containerPort: {port}
"
        ),
    );
    let status = json!({"status": {"phase": "Running", "podIP": pod_ip,
                                   "podIPs": [{"ip": pod_ip}]}})
    .to_string();
    kubectl_ok(
        cluster,
        &[
            "patch",
            "pod",
            POD,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
    );
    apply_yaml(
        cluster,
        &format!(
            "apiVersion: v1
kind: Endpoints
metadata:
  name: {SERVICE}
  namespace: {namespace}
subsets:
- addresses:
  - ip: {pod_ip}
    targetRef:
      kind: Pod
      name: {POD}
      namespace: {namespace}
  ports:
  - name: http
    port: {port}
    protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {SERVICE}-e2e
  namespace: {namespace}
  labels:
    kubernetes.io/service-name: {SERVICE}
    endpointslice.kubernetes.io/managed-by: e2e.sealed-secrets-rs
addressType: IPv4
endpoints:
- addresses:
  - {pod_ip}
  conditions:
    ready: true
  targetRef:
    kind: Pod
    name: {POD}
    namespace: {namespace}
ports:
- name: http
  port: {port}
  protocol: TCP
"
        ),
    );
}

/// A Secret with labels, as kubeseal input.
fn secret_json(namespace: &str, name: &str, data: &BTreeMap<&str, &str>) -> String {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String(BASE64.encode(v))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app": "shop", "tier": "data"}},
        "type": "Opaque",
        "data": data,
    })
    .to_string()
}

/// Waits until the controller has made Secret `name` with exactly `data`.
fn wait_for_secret(cluster: &Cluster, namespace: &str, name: &str, data: &BTreeMap<&str, &str>) {
    let want: BTreeMap<String, Vec<u8>> = data
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
        .collect();
    wait_for(&format!("Secret {namespace}/{name}"), WAIT, || {
        let secret = get_object(cluster, "secret", namespace, name)?
            .ok_or_else(|| "not there yet".to_string())?;
        let got = secret_data(&secret)?;
        if got == want {
            Ok(())
        } else {
            Err(format!("data keys {:?}", got.keys().collect::<Vec<_>>()))
        }
    });
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path.display().to_string()
}

/// `kubeseal --recovery-unseal` of `sealed` with the key in `key_file`.
fn recovery_unseal(cluster: &Cluster, key_file: &str, sealed: &str) -> Result<String, String> {
    kubeseal(
        cluster,
        &["--recovery-unseal", "--recovery-private-key", key_file],
        sealed.as_bytes(),
    )
}

/// The second controller's "Pod IP".
const PRODUCTION_POD_IP: &str = "10.213.9.2";

/// Runs our kubeseal in `dir` with `kubeconfig`: (success, stdout, stderr).
fn kubeseal_in(
    dir: &Path,
    kubeconfig: &Path,
    args: &[&str],
    stdin: &[u8],
) -> (bool, String, String) {
    let mut cmd = Command::new(&Binaries::get().kubeseal);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SEALED_SECRETS_CERT")
        .env("KUBECONFIG", kubeconfig);
    let out = run_command(&mut cmd, Some(stdin), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("kubeseal {args:?}: {e}"));
    (out.status.success(), out.stdout_text(), out.stderr_text())
}

/// Two sealing controllers standing for two clusters, reached through two kubeconfig contexts
/// of one API server: sealing by path with the wrong context's controller is refused and writes
/// nothing, the right one seals a SealedSecret the controller unseals (our annotations do not
/// reach the Secret), and `kubeseal env refresh` picks up a renewed key, after which sealing
/// for production works again.
fn environments(cluster: &Cluster, staging_ns: &str, work: &Path) {
    eprintln!("e2e: environments with two controllers");
    ip(&[
        "addr",
        "add",
        &format!("{PRODUCTION_POD_IP}/32"),
        "dev",
        "lo",
    ]);
    let prod_ns = create_namespace(cluster, &unique_name("ss-env-prod"));
    let prod_app = create_namespace(cluster, &unique_name("ss-env-prod-app"));
    let additional = format!("--additional-namespaces={prod_app}");
    let mut production = Controller::start_listening(
        cluster,
        "production",
        PRODUCTION_POD_IP.parse().expect("valid IP"),
        &prod_ns,
        &["--all-namespaces=false", &additional, "--key-size=2048"],
    );
    expose_controller(cluster, &prod_ns, production.addr.port(), PRODUCTION_POD_IP);
    wait_for_proxy(cluster, &prod_ns);

    // A kubeconfig with a context per "cluster" (both reach this API server).
    let mut kubeconfig = parse_yaml(&std::fs::read_to_string(cluster.kubeconfig()).unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
    let base = kubeconfig["contexts"][0]["context"].clone();
    kubeconfig["contexts"] = json!([
        {"name": "staging", "context": base.clone()},
        {"name": "production", "context": base},
    ]);
    kubeconfig["current-context"] = json!("staging");
    let kubeconfig_file = work.join("two-clusters.kubeconfig");
    std::fs::write(&kubeconfig_file, kubeconfig.to_string()).unwrap();

    // The repository: each environment's certificate, fetched once and committed.
    let repo = work.join("repo");
    std::fs::create_dir_all(repo.join("certs")).unwrap();
    for (env, ns) in [("staging", staging_ns), ("production", prod_ns.as_str())] {
        let (ok, pem, err) = kubeseal_in(
            &repo,
            &kubeconfig_file,
            &[
                "--context",
                env,
                "--controller-namespace",
                ns,
                "--fetch-cert",
            ],
            b"",
        );
        assert!(ok, "{err}");
        write(&repo.join("certs"), &format!("{env}.pem"), pem.as_bytes());
    }
    write(&repo, ".sealed-secrets.yaml", format!(
        "version: 1\nenvironments:\n  staging:\n    certificates: certs/staging.pem\n    controller: {{context: staging, namespace: {staging_ns}}}\n  production:\n    certificates: certs/production.pem\n    controller: {{context: production, namespace: {prod_ns}}}\nrules:\n- {{path: overlays/staging/**, environment: staging}}\n- {{path: overlays/production/**, environment: production}}\n"
    ).as_bytes());
    std::fs::create_dir_all(repo.join("overlays/production")).unwrap();
    let data = BTreeMap::from([("password", "env-canary-9c1d")]);
    let secret = secret_json(&prod_app, "db", &data);
    let target = repo.join("overlays/production/db.yaml");

    // The staging context's controller for a production path: refused, nothing written.
    let wrong = [
        "--context",
        "staging",
        "--controller-namespace",
        staging_ns,
        "-w",
        "overlays/production/db.yaml",
    ];
    let (ok, _, err) = kubeseal_in(&repo, &kubeconfig_file, &wrong, secret.as_bytes());
    assert!(!ok, "sealing with the wrong cluster succeeded");
    assert!(
        err.contains(
            "refusing to use the controller of context \"staging\" for environment \"production\""
        ),
        "{err}"
    );
    assert!(
        err.contains("that is environment \"staging\"'s certificate"),
        "{err}"
    );
    assert!(!target.exists(), "nothing may be written");

    // The production context's controller: sealed, applied, unsealed by the controller.
    let right = [
        "--context",
        "production",
        "--controller-namespace",
        prod_ns.as_str(),
        "-w",
        "overlays/production/db.yaml",
    ];
    let (ok, _, err) = kubeseal_in(&repo, &kubeconfig_file, &right, secret.as_bytes());
    assert!(ok, "{err}");
    assert!(err.contains("environment \"production\""), "{err}");
    let sealed = std::fs::read_to_string(&target).unwrap();
    assert!(
        sealed.contains("sealed-secrets-rs.io/sealed-with-certificate"),
        "{sealed}"
    );
    apply_yaml(cluster, &sealed);
    wait_for_secret(cluster, &prod_app, "db", &data);
    let made = get_object(cluster, "secret", &prod_app, "db")
        .unwrap()
        .unwrap();
    assert!(
        made.pointer("/metadata/annotations/sealed-secrets-rs.io~1sealed-with-certificate")
            .is_none(),
        "the recorded certificate stays on the SealedSecret: {made}"
    );
    // --validate of the production file against the staging controller: refused.
    let (ok, _, err) = kubeseal_in(
        &repo,
        &kubeconfig_file,
        &[
            "--context",
            "staging",
            "--controller-namespace",
            staging_ns,
            "--validate",
            "-f",
            "overlays/production/db.yaml",
        ],
        b"",
    );
    assert!(
        !ok && err.contains("refusing to use the controller"),
        "{err}"
    );

    // Production renews its key: until the repository knows it, online sealing is refused
    // with the way out; `kubeseal env refresh` adds it, then sealing works again.
    let (_, old_pem, _) = kubeseal_in(
        &repo,
        &kubeconfig_file,
        &[
            "--context",
            "production",
            "--controller-namespace",
            &prod_ns,
            "--fetch-cert",
        ],
        b"",
    );
    production.signal(libc::SIGUSR1);
    wait_for("production's renewed key to be served", WAIT, || {
        let (ok, pem, err) = kubeseal_in(
            &repo,
            &kubeconfig_file,
            &[
                "--context",
                "production",
                "--controller-namespace",
                &prod_ns,
                "--fetch-cert",
            ],
            b"",
        );
        if ok && pem_body(&pem) != pem_body(&old_pem) {
            Ok(())
        } else {
            Err(format!("not yet: {err}"))
        }
    });
    let (ok, _, err) = kubeseal_in(&repo, &kubeconfig_file, &right, secret.as_bytes());
    assert!(
        !ok && err.contains("kubeseal env refresh production"),
        "{err}"
    );
    let (ok, out, err) = kubeseal_in(
        &repo,
        &kubeconfig_file,
        &["env", "refresh", "production"],
        b"",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("production: SHA256:") && out.contains(" -> SHA256:"),
        "{out}"
    );
    let bundle = std::fs::read_to_string(repo.join("certs/production.pem")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{bundle}");
    let (ok, out, err) = kubeseal_in(&repo, &kubeconfig_file, &["env", "refresh"], b"");
    assert!(
        ok && out.contains("production: up to date") && out.contains("staging: up to date"),
        "{out}{err}"
    );
    let (ok, _, err) = kubeseal_in(&repo, &kubeconfig_file, &right, secret.as_bytes());
    assert!(ok, "{err}");
    // Offline, by path alone: the newest committed certificate (the renewed one) seals, and
    // the controller opens it.
    let renewed = BTreeMap::from([("password", "env-canary-renewed")]);
    let (ok, _, err) = kubeseal_in(
        &repo,
        &kubeconfig_file,
        &["-w", "overlays/production/db.yaml"],
        secret_json(&prod_app, "db", &renewed).as_bytes(),
    );
    assert!(ok, "{err}");
    apply_yaml(cluster, &std::fs::read_to_string(&target).unwrap());
    wait_for_secret(cluster, &prod_app, "db", &renewed);
    production.stop();
}

/// Waits until the API server proxies to the controller of `namespace`: the first proxied
/// request proves the objects are right; when it never works, the API server's log says why
/// (it logs invalid endpoint addresses).
fn wait_for_proxy(cluster: &Cluster, namespace: &str) {
    let proxy = format!("/api/v1/namespaces/{namespace}/services/http:{SERVICE}:http/proxy");
    let deadline = Instant::now() + WAIT;
    loop {
        let last = match cluster.get(&format!("{proxy}/healthz")) {
            Ok(reply) if reply.status == 200 => break,
            Ok(reply) => format!("HTTP {}: {}", reply.status, reply.text().trim()),
            Err(err) => err,
        };
        assert!(
            Instant::now() < deadline,
            "the API server does not proxy to the controller after {WAIT:?}; last: {last}\n\
             ----- kube-apiserver log (last 60 lines) -----\n{}",
            tail(cluster.apiserver_log(), 60)
        );
        thread::sleep(Duration::from_millis(250));
    }
}

fn run_inside_the_namespace() {
    let assets = match Assets::from_env() {
        Ok(assets) => assets,
        Err(reason) => panic!("inside the network namespace the assets vanished: {reason}"),
    };
    ip(&["link", "set", "lo", "up"]);
    ip(&["addr", "add", &format!("{POD_IP}/32"), "dev", "lo"]);

    let cluster = Cluster::start(&assets);
    install_crd(&cluster, &crd_path(), SEALED_SECRET_CRD);
    let ctrl_ns = create_namespace(&cluster, &unique_name("ss-proxy-ctrl"));
    let app_ns = create_namespace(&cluster, &unique_name("ss-proxy-app"));
    let additional = format!("--additional-namespaces={app_ns}");
    let mut controller = Controller::start_listening(
        &cluster,
        "proxied",
        POD_IP.parse().expect("valid IP"),
        &ctrl_ns,
        &[
            "--all-namespaces=false",
            &additional,
            "--key-size=2048",
            "--rate-limit=100",
            "--rate-limit-burst=100",
        ],
    );
    expose_controller(&cluster, &ctrl_ns, controller.addr.port(), POD_IP);
    wait_for_proxy(&cluster, &ctrl_ns);
    let work = tempfile::tempdir().expect("cannot create a temporary directory");
    let ctl = ["--controller-namespace", ctrl_ns.as_str()];
    let with = |extra: &[&str]| -> Vec<String> {
        ctl.iter()
            .chain(extra.iter())
            .map(|s| (*s).to_string())
            .collect()
    };
    let run = |args: &[String], stdin: &[u8]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubeseal(&cluster, &args, stdin)
    };

    // 1. --fetch-cert through the proxy serves what the controller serves.
    eprintln!("e2e: kubeseal --fetch-cert through the service proxy");
    let fetched = run(&with(&["--fetch-cert"]), b"").unwrap_or_else(|e| panic!("{e}"));
    let served = controller
        .get("/v1/cert.pem")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(served.status, 200);
    assert_eq!(pem_body(&fetched), pem_body(&served.text()));
    let old_cert = fetched.clone();
    let cert_file = write(work.path(), "cert.pem", fetched.as_bytes());

    // 2. Seal with the fetched certificate, and with none (the default path); both open.
    eprintln!("e2e: sealing with the fetched certificate and through the proxy");
    let data = BTreeMap::from([("username", "admin"), ("password", "s3cr3t-proxy")]);
    let with_cert = run(
        &with(&["--cert", &cert_file, "-o", "yaml"]),
        secret_json(&app_ns, "with-cert", &data).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let through_proxy = run(
        &with(&["-o", "yaml"]),
        secret_json(&app_ns, "through-proxy", &data).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    apply_yaml(&cluster, &with_cert);
    apply_yaml(&cluster, &through_proxy);
    wait_for_secret(&cluster, &app_ns, "with-cert", &data);
    wait_for_secret(&cluster, &app_ns, "through-proxy", &data);

    // 3. --validate: good passes silently, a renamed (strict scope) one fails by name.
    eprintln!("e2e: kubeseal --validate");
    let out = run(&with(&["--validate"]), with_cert.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, "", "--validate prints nothing on success");
    let renamed = with_cert.replace("name: with-cert", "name: renamed");
    assert_ne!(renamed, with_cert);
    let err = run(&with(&["--validate"]), renamed.as_bytes()).unwrap_err();
    assert!(
        err.contains("error: unable to decrypt sealed secret: renamed"),
        "{err}"
    );
    // Both in one stream: the first failure names its object.
    let stream = format!("{with_cert}{renamed}");
    let err = run(&with(&["--validate"]), stream.as_bytes()).unwrap_err();
    assert!(
        err.contains("unable to decrypt sealed secret: renamed"),
        "{err}"
    );

    // 4. --re-encrypt after a key renewal: new ciphertexts that open with the new key only.
    eprintln!("e2e: key renewal (SIGUSR1) and kubeseal --re-encrypt");
    let keys_before = key_secrets(&cluster, &ctrl_ns).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys_before.len(), 1, "one key before the renewal");
    controller.signal(libc::SIGUSR1);
    let new_cert = wait_for(
        "the renewed key to be served through the proxy",
        WAIT,
        || {
            let cert = run(&with(&["--fetch-cert"]), b"")?;
            if pem_body(&cert) != pem_body(&old_cert) {
                Ok(cert)
            } else {
                Err("still the first key".into())
            }
        },
    );
    let keys = key_secrets(&cluster, &ctrl_ns).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys.len(), 2, "one new key");
    let key_file = |key: &Value, name: &str| {
        let data = secret_data(key).unwrap_or_else(|e| panic!("{e}"));
        write(work.path(), name, &data["tls.key"])
    };
    let cert_of = |key: &Value| {
        let data = secret_data(key).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(data["tls.crt"].clone()).expect("tls.crt is UTF-8")
    };
    let (old_key, new_key) = if pem_body(&cert_of(&keys[0])) == pem_body(&new_cert) {
        (key_file(&keys[1], "old.key"), key_file(&keys[0], "new.key"))
    } else {
        (key_file(&keys[0], "old.key"), key_file(&keys[1], "new.key"))
    };
    let rotated = run(&with(&["--re-encrypt", "-o", "yaml"]), with_cert.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let original = parse_yaml(&with_cert).unwrap_or_else(|e| panic!("{e}"));
    let rotated_value = parse_yaml(&rotated).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rotated_value["kind"], "SealedSecret");
    assert_eq!(rotated_value["apiVersion"], "bitnami.com/v1alpha1");
    for item in ["username", "password"] {
        assert_ne!(
            rotated_value["spec"]["encryptedData"][item], original["spec"]["encryptedData"][item],
            "{item} is re-encrypted"
        );
    }
    assert_eq!(
        rotated_value["spec"]["template"]["metadata"]["labels"],
        json!({"app": "shop", "tier": "data"}),
        "template labels survive --re-encrypt"
    );
    let opened = recovery_unseal(&cluster, &new_key, &rotated).unwrap_or_else(|e| panic!("{e}"));
    let opened = parse_yaml(&opened).unwrap_or_else(|e| panic!("{e}"));
    let got = secret_data(&opened).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got["password"], b"s3cr3t-proxy");
    assert_eq!(got["username"], b"admin");
    let err = recovery_unseal(&cluster, &old_key, &rotated).unwrap_err();
    assert!(err.contains("no key could decrypt secret"), "{err}");
    // The original still opens with the old key (and only with it).
    recovery_unseal(&cluster, &old_key, &with_cert).unwrap_or_else(|e| panic!("{e}"));
    let err = recovery_unseal(&cluster, &new_key, &with_cert).unwrap_err();
    assert!(err.contains("no key could decrypt secret"), "{err}");
    // The rotated object validates against the controller, too.
    run(&with(&["--validate"]), rotated.as_bytes()).unwrap_or_else(|e| panic!("{e}"));

    // 5. Permissions: services/proxy is what kubeseal needs (get, and create for POSTs).
    eprintln!("e2e: RBAC on services and services/proxy");
    apply_yaml(
        &cluster,
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: read-service
  namespace: {ctrl_ns}
rules:
- apiGroups: [\"\"]
  resources: [\"services\"]
  verbs: [\"get\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-service
  namespace: {ctrl_ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: read-service
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: e2e-no-proxy
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: e2e-sealer
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: use-controller
  namespace: {ctrl_ns}
rules:
- apiGroups: [\"\"]
  resources: [\"services/proxy\"]
  resourceNames: [\"http:{SERVICE}:http\", \"{SERVICE}\"]
  verbs: [\"get\", \"create\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: use-controller
  namespace: {ctrl_ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: use-controller
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: e2e-sealer
"
        ),
    );
    // Upstream's documented permissions are enough (RBAC takes a moment to see new bindings).
    wait_for("e2e-sealer to fetch the certificate", WAIT, || {
        run(&with(&["--as", "e2e-sealer", "--fetch-cert"]), b"")
    });
    run(
        &with(&["--as", "e2e-sealer", "--validate"]),
        rotated.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Without services/proxy: a clear error naming the missing permission.
    wait_for("e2e-no-proxy to read the Service", WAIT, || {
        let err = run(&with(&["--as", "e2e-no-proxy", "--fetch-cert"]), b"")
            .err()
            .ok_or("e2e-no-proxy fetched the certificate")?;
        if err.contains("cannot get sealed secret service") {
            Err(err)
        } else {
            Ok(())
        }
    });
    let err = run(&with(&["--as", "e2e-no-proxy", "--fetch-cert"]), b"").unwrap_err();
    for needle in [
        "error: cannot fetch certificate:",
        "forbidden",
        "needs RBAC permission to get \"services/proxy\"",
        &format!("in namespace \"{ctrl_ns}\""),
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    let err = run(
        &with(&["--as", "e2e-no-proxy", "--validate"]),
        with_cert.as_bytes(),
    )
    .unwrap_err();
    assert!(
        err.contains("cannot validate sealed secret:")
            && err.contains("needs RBAC permission to create \"services/proxy\""),
        "{err}"
    );
    // Without even `services get`: upstream's text about the Service.
    let err = run(&with(&["--as", "e2e-nobody", "--fetch-cert"]), b"").unwrap_err();
    assert!(
        err.contains("error: cannot get sealed secret service:")
            && err.contains("forbidden")
            && err.contains("Please, use the flag --controller-name and --controller-namespace"),
        "{err}"
    );
    // A controller namespace without the Service: upstream's text.
    let err = run(
        &[
            "--controller-namespace".into(),
            app_ns.clone(),
            "--fetch-cert".into(),
        ],
        b"",
    )
    .unwrap_err();
    assert!(
        err.contains(&format!(
            "cannot get sealed secret service: services \"{SERVICE}\" not found"
        )),
        "{err}"
    );

    // 6. Environments: this controller stands for staging, a second one for production.
    environments(&cluster, &ctrl_ns, work.path());

    // 7. Controller down: the API server cannot reach it.
    eprintln!("e2e: controller down");
    controller.stop();
    let err = run(&with(&["--fetch-cert", "--request-timeout=20s"]), b"").unwrap_err();
    assert!(
        err.contains("cannot fetch certificate:") && err.contains("is the controller running"),
        "{err}"
    );
    drop(controller);
    drop(work);
}
