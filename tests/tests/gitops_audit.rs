//! End-to-end tests of the GitOps audit trail (issue #21) against a real etcd + kube-apiserver:
//! drift records that name the field manager, the path and the revision; Events; audit log
//! lines; metrics; webhook notifications (a loopback receiver allowed by the controller's
//! flags, a receiver that hangs, a link-local target refused); `kubeseal sync drift|history`.
//! A canary Secret value, synced from Git and edited by hand, must appear in none of them.
//!
//! Without the envtest assets each test prints `skipping e2e: <reason>` and passes.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use base64::Engine as _;
use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD, apply_yaml, create_namespace, get_object,
    kubectl_json, kubectl_ok, kubectl_program, kubeseal, private_cluster_with_audit, unique_name,
};
use sealed_secrets_sync_testing::GitRepo;
use serde_json::Value;

/// Upper bound of every wait on the controller.
const WAIT: Duration = Duration::from_secs(60);
/// The canary: synced from Git into a Secret.
const CANARY: &str = "canary-7f3a9c-in-git";
/// The canary's replacement, written by hand.
const CANARY_EDIT: &str = "canary-b81e22-by-hand";
/// The webhook's bearer token (a secret too).
const TOKEN: &str = "webhook-token-5d1c";

/// A cluster of its own whose API server keeps the audit log docs/gitops.md recommends
/// ("What who means"): Secrets at `Metadata` (never a value), writes in `app` with the
/// response, whose resourceVersion a drift record names.
fn setup(app: &str) -> Option<Cluster> {
    let policy = format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: Metadata\n  resources: [{{group: \"\", resources: [secrets]}}]\n\
         - level: RequestResponse\n  verbs: [create, update, patch, delete]\n  namespaces: [{app}]\n\
         - level: None\n"
    );
    private_cluster_with_audit(
        Assets::from_env(),
        &[
            ("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD),
            (
                "gitops.sealed-secrets-rs.io_gitsyncs.yaml",
                "gitsyncs.gitops.sealed-secrets-rs.io",
            ),
        ],
        &policy,
    )
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A webhook receiver on loopback: answers 200 to every POST and keeps the requests.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/gitops", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&requests);
        thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(mut socket) = socket else { return };
                let kept = Arc::clone(&kept);
                thread::spawn(move || {
                    let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
                    let request = read_request(&mut socket);
                    let _ = socket.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    kept.lock().unwrap().push(request);
                });
            }
        });
        Receiver { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A receiver that accepts and never answers; counts the connections it accepted.
struct Hanging {
    url: String,
    accepted: Arc<AtomicUsize>,
}

impl Hanging {
    fn start() -> Hanging {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hang", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(mut socket) = socket else { return };
                count.fetch_add(1, Ordering::SeqCst);
                // Read until the client gives up; never answer.
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while matches!(socket.read(&mut buf), Ok(n) if n > 0) {}
                });
            }
        });
        Hanging { url, accepted }
    }
}

fn read_request(socket: &mut TcpStream) -> String {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&request).into_owned()
}

/// The ServiceAccount `deployer` of `ops`: manages the synced kinds in `app`, reads the
/// notification Secrets in `ops` (the webhook Secret is read as the GitSync's identity).
fn deployer(cluster: &Cluster, ops: &str, app: &str) {
    apply_yaml(
        cluster,
        &format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: deployer\n  namespace: {ops}\n\
---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: deployer\n  namespace: {app}\nrules:\n\
- apiGroups: [\"\", apps]\n  resources: [configmaps, secrets, deployments]\n  verbs: [get, list, watch, create, update, patch, delete]\n\
---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: deployer\n  namespace: {app}\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: deployer\nsubjects:\n- kind: ServiceAccount\n  name: deployer\n  namespace: {ops}\n\
---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: notify-reader\n  namespace: {ops}\nrules:\n\
- apiGroups: [\"\"]\n  resources: [secrets]\n  resourceNames: [notify, probe-notify]\n  verbs: [get]\n\
---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: notify-reader\n  namespace: {ops}\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: notify-reader\nsubjects:\n- kind: ServiceAccount\n  name: deployer\n  namespace: {ops}\n"
        ),
    );
}

fn notify_secret(cluster: &Cluster, ops: &str, name: &str, address: &str) {
    apply_yaml(
        cluster,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ops}\nstringData:\n  address: {address}\n  token: {TOKEN}\n"
        ),
    );
}

fn gitsync(cluster: &Cluster, ops: &str, name: &str) -> Result<Value, String> {
    get_object(cluster, "gitsync", ops, name)?.ok_or_else(|| format!("GitSync {name} not found"))
}

fn condition(sync: &Value, type_: &str) -> Option<Value> {
    sync["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// The newest drift record of `kind` `name` with `action`, once there is one newer than
/// `after` records of it.
fn drift_record(
    controller: &Controller,
    cluster: &Cluster,
    ops: &str,
    (kind, name, action): (&str, &str, &str),
    after: usize,
) -> Value {
    controller.wait_for(
        &format!("a drift record {action} of {kind} {name}"),
        WAIT,
        || {
            let sync = gitsync(cluster, ops, "app")?;
            let records: Vec<Value> = sync["status"]["drift"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| {
                    r["object"]["kind"] == kind
                        && r["object"]["name"] == name
                        && r["action"] == action
                })
                .collect();
            if records.len() > after {
                Ok(records[0].clone())
            } else {
                Err(format!("drift: {}", sync["status"]["drift"]))
            }
        },
    )
}

fn count_records(cluster: &Cluster, ops: &str, kind: &str, name: &str, action: &str) -> usize {
    gitsync(cluster, ops, "app").unwrap()["status"]["drift"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter(|r| {
                    r["object"]["kind"] == kind
                        && r["object"]["name"] == name
                        && r["action"] == action
                })
                .count()
        })
        .unwrap_or(0)
}

fn replicas(cluster: &Cluster, app: &str) -> i64 {
    get_object(cluster, "deployment", app, "web")
        .unwrap()
        .unwrap()["spec"]["replicas"]
        .as_i64()
        .unwrap()
}

#[test]
fn drift_is_recorded_with_who_and_what_reverted_reported_and_notified() {
    let ops = unique_name("audit-ops");
    let app = unique_name("audit-app");
    let Some(cluster) = setup(&app) else { return };
    for ns in [&ops, &app] {
        create_namespace(&cluster, ns);
    }
    let repo = GitRepo::new();
    repo.write(
        "deploy/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    repo.write(
        "deploy/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n",
    );
    repo.write(
        "deploy/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: canary\ndata:\n  password: {}\n",
            b64(CANARY)
        ),
    );
    repo.write(
        "probe/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  a: b\n",
    );
    let first = repo.commit("web, settings and the canary");

    deployer(&cluster, &ops, &app);
    let receiver = Receiver::start();
    notify_secret(&cluster, &ops, "notify", &receiver.url);
    notify_secret(
        &cluster,
        &ops,
        "probe-notify",
        "https://169.254.169.254/latest/meta-data/iam",
    );
    let cache = tempfile::tempdir().unwrap();
    let kubectl = kubectl_program();
    let args = [
        format!("--watch-namespaces={ops}"),
        format!("--cache-dir={}", cache.path().display()),
        format!("--kubectl={}", kubectl.display()),
        "--log-format=json".to_string(),
        // The test's receivers listen on loopback over plain HTTP.
        "--webhook-allow-targets=loopback".to_string(),
        "--webhook-allow-http".to_string(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let controller = Controller::start_gitops(&cluster, "gitops-audit", &refs);
    let gitsync_yaml = |name: &str, path: &str, secret: &str, extra: &str| {
        format!(
            "apiVersion: gitops.sealed-secrets-rs.io/v1alpha1\nkind: GitSync\nmetadata:\n  name: {name}\n  namespace: {ops}\nspec:\n  serviceAccountName: deployer\n  source:\n    url: {}\n    revision: main\n    path: {path}\n  destination:\n    namespace: {app}\n  interval: 2s\n  secretPolicy:\n    rawSecrets: Allow\n  notifications:\n    secretRef:\n      name: {secret}\n{extra}",
            repo.url()
        )
    };
    apply_yaml(
        &cluster,
        &gitsync_yaml("app", "deploy", "notify", "  selfHeal: true\n"),
    );
    apply_yaml(
        &cluster,
        &gitsync_yaml("probe", "probe", "probe-notify", ""),
    );

    controller.wait_for("the first sync", WAIT, || {
        let sync = gitsync(&cluster, &ops, "app")?;
        let history = &sync["status"]["history"][0];
        if history["revision"] == first.as_str() && history["result"] == "Succeeded" {
            Ok(())
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
    let sync = gitsync(&cluster, &ops, "app").unwrap();
    let history = &sync["status"]["history"][0];
    assert_eq!(history["trigger"], "NewRevision", "{history}");
    assert_eq!(history["created"], 3, "{history}");
    assert_eq!(
        history["commitSubject"], "web, settings and the canary",
        "{history}"
    );
    assert_eq!(condition(&sync, "Notifications").unwrap()["status"], "True");

    // 1. A hand edit by alice-laptop is reverted, and the record names her, the path and the
    //    revision put back, and the resourceVersion to look up in the API server's audit log.
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            &app,
            "--type=merge",
            "-p",
            "{\"spec\":{\"replicas\":5}}",
            "--field-manager=alice-laptop",
        ],
    );
    let record = drift_record(
        &controller,
        &cluster,
        &ops,
        ("Deployment", "web", "Reverted"),
        0,
    );
    assert_eq!(record["change"], "Changed", "{record}");
    assert_eq!(
        record["paths"],
        serde_json::json!(["spec.replicas"]),
        "{record}"
    );
    assert_eq!(record["revision"], first.as_str(), "{record}");
    assert!(
        record["resourceVersionBefore"].as_str().is_some(),
        "{record}"
    );
    let alice = record["managers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "alice-laptop")
        .unwrap_or_else(|| panic!("alice-laptop not named: {record}"));
    assert_eq!(alice["operation"], "Update");
    assert_eq!(alice["paths"], serde_json::json!(["spec.replicas"]));
    // Who, for real: the API server's audit log names the user of the request that produced
    // the recorded resourceVersion.
    let rv = record["resourceVersionBefore"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = controller.wait_for("the audit log entry of the edit", WAIT, || {
        let log = std::fs::read_to_string(cluster.audit_log()).map_err(|e| e.to_string())?;
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| {
                e["objectRef"]["resource"] == "deployments"
                    && e["objectRef"]["name"] == "web"
                    && e["responseObject"]["metadata"]["resourceVersion"] == rv.as_str()
            })
            .ok_or_else(|| format!("no entry with resourceVersion {rv}"))
    });
    println!(
        "gitops_audit: resourceVersion {rv} in the API server's audit log: {}",
        serde_json::json!({"user": entry["user"]["username"], "groups": entry["user"]["groups"],
            "verb": entry["verb"], "userAgent": entry["userAgent"],
            "at": entry["requestReceivedTimestamp"]})
    );
    assert_eq!(
        entry["user"]["username"], "sealed-secrets-e2e-admin",
        "{entry}"
    );
    assert_eq!(entry["verb"], "patch", "{entry}");
    assert!(
        entry["userAgent"]
            .as_str()
            .unwrap_or("")
            .starts_with("kubectl"),
        "{entry}"
    );
    controller.wait_for("replicas back to 2", WAIT, || {
        match replicas(&cluster, &app) {
            2 => Ok(()),
            n => Err(format!("replicas {n}")),
        }
    });

    // The Event, the audit log line, the metric and the webhook.
    controller.wait_for("a DriftReverted Event", WAIT, || {
        let events = kubectl_json(&cluster, &["get", "events.events.k8s.io", "-n", &ops])?;
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| {
                e["reason"] == "DriftReverted"
                    && e["note"]
                        .as_str()
                        .is_some_and(|n| n.contains("alice-laptop"))
                    && e["regarding"]["name"] == "app"
            })
            .map(|_| ())
            .ok_or_else(|| format!("events: {events}"))
    });
    let log = controller.log();
    let audit_line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["target"] == "audit"
                && l["fields"]["audit"] == "drift"
                && l["fields"]["managers"]
                    .as_str()
                    .is_some_and(|m| m.contains("alice-laptop"))
        })
        .unwrap_or_else(|| panic!("no audit line naming alice-laptop:\n{log}"));
    assert_eq!(audit_line["fields"]["paths"], "spec.replicas");
    assert_eq!(audit_line["fields"]["action"], "Reverted");
    let metrics = String::from_utf8(controller.get_metrics("/metrics").unwrap().body).unwrap();
    let series = format!(
        "sealed_secrets_gitops_drift_corrections_total{{namespace=\"{ops}\",name=\"app\",kind=\"Deployment\",action=\"Reverted\",object=\"{app}/web\"}} "
    );
    assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    assert!(
        metrics.contains("sealed_secrets_gitops_last_success_timestamp_seconds{"),
        "{metrics}"
    );
    let post = controller.wait_for("the webhook POST", WAIT, || {
        receiver
            .requests()
            .into_iter()
            .find(|r| r.contains("DriftReverted") && r.contains("alice-laptop"))
            .ok_or_else(|| format!("{} requests", receiver.requests().len()))
    });
    assert!(post.starts_with("POST /hooks/gitops "), "{post}");
    assert!(
        post.to_ascii_lowercase()
            .contains(&format!("authorization: bearer {TOKEN}")),
        "{post}"
    );
    let body: Value = serde_json::from_str(&post[post.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert!(
        body["text"].as_str().unwrap().contains("spec.replicas"),
        "{body}"
    );
    assert_eq!(body["involvedObject"]["name"], "app");

    // 2. A deleted object is re-created and recorded.
    kubectl_ok(&cluster, &["delete", "configmap", "settings", "-n", &app]);
    let record = drift_record(
        &controller,
        &cluster,
        &ops,
        ("ConfigMap", "settings", "Recreated"),
        0,
    );
    assert_eq!(record["change"], "Deleted", "{record}");
    controller.wait_for("settings re-created", WAIT, || {
        get_object(&cluster, "configmap", &app, "settings")?
            .map(|_| ())
            .ok_or_else(|| "not yet".to_string())
    });

    // 3. A hand edit of the canary Secret: the path is recorded, never the value.
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "secret",
            "canary",
            "-n",
            &app,
            "--type=merge",
            "-p",
            &format!("{{\"data\":{{\"password\":\"{}\"}}}}", b64(CANARY_EDIT)),
            "--field-manager=mallory",
        ],
    );
    let record = drift_record(
        &controller,
        &cluster,
        &ops,
        ("Secret", "canary", "Reverted"),
        0,
    );
    assert_eq!(record["paths"], serde_json::json!(["data.password"]));
    assert_eq!(record["managers"][0]["manager"], "mallory", "{record}");

    // 4. A receiver that hangs does not delay the next sync: the webhook now never answers
    //    (each delivery then takes 3 attempts of 5 s plus backoff), and each of two hand edits
    //    in a row is still reverted in well under one attempt's timeout.
    let hanging = Hanging::start();
    notify_secret(&cluster, &ops, "notify", &hanging.url);
    let before = count_records(&cluster, &ops, "Deployment", "web", "Reverted");
    for (n, count) in [7, 9].into_iter().enumerate() {
        let started = Instant::now();
        kubectl_ok(
            &cluster,
            &[
                "patch",
                "deployment",
                "web",
                "-n",
                &app,
                "--type=merge",
                "-p",
                &format!("{{\"spec\":{{\"replicas\":{count}}}}}"),
                "--field-manager=alice-laptop",
            ],
        );
        drift_record(
            &controller,
            &cluster,
            &ops,
            ("Deployment", "web", "Reverted"),
            before + n,
        );
        let took = started.elapsed();
        println!("gitops_audit: edit {n} reverted after {took:?} with a hanging webhook");
        assert!(
            took < Duration::from_secs(10),
            "edit {n} took {took:?} to revert: the sync waited for the webhook"
        );
    }
    controller.wait_for("the hanging receiver to be called", WAIT, || match hanging
        .accepted
        .load(Ordering::SeqCst)
    {
        0 => Err("no connection yet".to_string()),
        _ => Ok(()),
    });

    // 5. A webhook aimed at a link-local address (cloud metadata) is refused with a clear
    //    condition; the GitSync still syncs.
    let probe = controller.wait_for("the probe's Notifications condition", WAIT, || {
        let sync = gitsync(&cluster, &ops, "probe")?;
        match condition(&sync, "Notifications") {
            Some(c) if c["status"] == "False" => Ok(sync),
            other => Err(format!("{other:?}")),
        }
    });
    let refused = condition(&probe, "Notifications").unwrap();
    assert_eq!(refused["reason"], "WebhookRefused", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("link-local"), "{message}");
    assert!(
        !message.contains("meta-data"),
        "the URL's path is shown: {message}"
    );
    assert_eq!(condition(&probe, "Ready").unwrap()["status"], "True");

    // 6. selfHeal off: the drift is reported, not reverted.
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "gitsync",
            "app",
            "-n",
            &ops,
            "--type=merge",
            "-p",
            "{\"spec\":{\"selfHeal\":false}}",
        ],
    );
    controller.wait_for("the spec change to be synced", WAIT, || {
        let sync = gitsync(&cluster, &ops, "app")?;
        if sync["status"]["observedGeneration"] == sync["metadata"]["generation"] {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            &app,
            "--type=merge",
            "-p",
            "{\"data\":{\"greeting\":\"hi from bob\"}}",
            "--field-manager=bob",
        ],
    );
    let record = drift_record(
        &controller,
        &cluster,
        &ops,
        ("ConfigMap", "settings", "ReportedOnly"),
        0,
    );
    assert_eq!(record["paths"], serde_json::json!(["data.greeting"]));
    assert_eq!(record["managers"][0]["manager"], "bob", "{record}");
    thread::sleep(Duration::from_secs(3));
    let live = get_object(&cluster, "configmap", &app, "settings")
        .unwrap()
        .unwrap();
    assert_eq!(
        live["data"]["greeting"], "hi from bob",
        "reverted with selfHeal off"
    );
    assert_eq!(
        count_records(&cluster, &ops, "ConfigMap", "settings", "ReportedOnly"),
        1,
        "a reported drift is recorded once, not at every resync"
    );

    // 7. kubeseal prints the same records.
    let json = kubeseal(
        &cluster,
        &["sync", "drift", "app", "-n", &ops, "-o", "json"],
        b"",
    )
    .unwrap();
    let printed: Value = serde_json::from_str(&json).unwrap();
    let status_drift = gitsync(&cluster, &ops, "app").unwrap()["status"]["drift"].clone();
    assert_eq!(printed, status_drift);
    let table = kubeseal(&cluster, &["sync", "drift", "app", "-n", &ops], b"").unwrap();
    assert!(
        table.contains("alice-laptop") && table.contains("spec.replicas"),
        "{table}"
    );
    let history = kubeseal(&cluster, &["sync", "history", "app", "-n", &ops], b"").unwrap();
    println!(
        "gitops_audit: kubeseal sync drift:\n{table}\ngitops_audit: kubeseal sync history:\n{history}"
    );
    assert!(
        history.contains("NewRevision") && history.contains("Drift"),
        "{history}"
    );

    // 8. The canary appears in no record, Event, log line or payload.
    let mut places = vec![
        (
            "status",
            gitsync(&cluster, &ops, "app").unwrap().to_string(),
        ),
        (
            "events",
            kubectl_json(&cluster, &["get", "events.events.k8s.io", "-n", &ops])
                .unwrap()
                .to_string(),
        ),
        ("log", controller.log()),
        (
            "API server audit log",
            std::fs::read_to_string(cluster.audit_log()).unwrap(),
        ),
        (
            "payloads",
            receiver
                .requests()
                .iter()
                .map(|r| {
                    r.split_once("\r\n\r\n")
                        .map_or("", |(_, body)| body)
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("kubeseal", format!("{json}{table}{history}")),
    ];
    places.push((
        "core events",
        kubectl_json(&cluster, &["get", "events", "-n", &ops])
            .unwrap()
            .to_string(),
    ));
    for (place, text) in places {
        for secret in [CANARY, CANARY_EDIT, &b64(CANARY), &b64(CANARY_EDIT), TOKEN] {
            assert!(!text.contains(secret), "{secret} found in {place}");
        }
    }
}
