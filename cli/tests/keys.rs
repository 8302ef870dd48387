//! `kubeseal keys` against a fake API server on 127.0.0.1 (plain HTTP, reached through a
//! kubeconfig) that keeps key Secrets and SealedSecrets in memory, checks resourceVersions on
//! updates like the real one, and can forbid any list: the listing and its counts, retire and
//! restore with every refusal, backups, and the failures users hit (no cluster, no permission,
//! a conflicting write).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::{Arc, Mutex, OnceLock},
    thread,
};

use base64::Engine;
use sealed_secrets_core::{
    crypto::SystemRandom,
    documents::parse_documents,
    keys::{GeneratedKeyPair, PrivateKey, generate_key_pair},
    reencrypt::reencrypt,
    seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
    sealed_secret::SealedSecret,
    unseal::{UnsealOptions, unseal},
};
use serde_json::{Value, json};

const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
const SECRETS: &str = "/api/v1/namespaces/kube-system/secrets";
const ROTATE: &str =
    "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/rotate";

/// Three key pairs, oldest first (NotBefore one day apart).
fn pairs() -> &'static [GeneratedKeyPair] {
    static PAIRS: OnceLock<Vec<GeneratedKeyPair>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let now = jiff::Timestamp::now();
        (0..3)
            .map(|i| {
                let made = now - jiff::SignedDuration::from_hours(24 * (3 - i));
                generate_key_pair(2048, "", made, jiff::SignedDuration::from_hours(24 * 365))
                    .unwrap()
            })
            .collect()
    })
}

fn fingerprint(i: usize) -> String {
    pairs()[i].key.fingerprint()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn key_secret(i: usize, label: &str) -> Value {
    let pair = &pairs()[i];
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": format!("sealed-secrets-key{i}"), "namespace": "kube-system",
            "uid": format!("uid-{i}"), "creationTimestamp": format!("2026-0{}-01T00:00:00Z", i + 1),
            "labels": {KEY_LABEL: label}},
        "data": {"tls.key": b64(pair.key.to_pkcs1_pem().unwrap().as_bytes()),
                 "tls.crt": b64(pair.cert_pem.as_bytes())}})
}

fn sealed_secret(namespace: &str, name: &str, key: Option<usize>, synced: &str) -> Value {
    let mut status = json!({"conditions": [
        {"type": "Synced", "status": "True", "lastUpdateTime": synced}]});
    if let Some(i) = key {
        status["keyFingerprint"] = json!(fingerprint(i));
    }
    json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"encryptedData": {}}, "status": status})
}

/// In-memory cluster state and what the fake forbids.
#[derive(Default)]
struct State {
    secrets: Vec<Value>,
    sealed: Vec<Value>,
    namespaces: Vec<String>,
    version: u64,
    forbid_secrets: bool,
    forbid_cluster_list: bool,
    forbid_namespaces: bool,
    forbid_in: BTreeSet<String>,
    conflict_on_write: bool,
    requests: Vec<String>,
    bodies: Vec<Value>,
}

type Shared = Arc<Mutex<State>>;

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
               "reason": reason, "code": code}),
    )
}

fn list(items: Vec<Value>) -> (u16, Value) {
    (
        200,
        json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}),
    )
}

fn answer(state: &mut State, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
    state.requests.push(format!("{method} {target}"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let forbidden = |what: &str| {
        status(
            403,
            "Forbidden",
            &format!("{what} is forbidden: User \"me\" cannot list"),
        )
    };
    if path == SECRETS && method == "GET" {
        if state.forbid_secrets {
            return forbidden("secrets");
        }
        assert!(
            query.contains("labelSelector=sealedsecrets.bitnami.com%2Fsealed-secrets-key"),
            "{query}"
        );
        return list(state.secrets.clone());
    }
    if let Some(name) = path.strip_prefix(&format!("{SECRETS}/")) {
        let incoming: Value = serde_json::from_slice(body).unwrap();
        state.bodies.push(incoming.clone());
        let Some(index) = state
            .secrets
            .iter()
            .position(|s| s["metadata"]["name"] == name)
        else {
            return status(404, "NotFound", &format!("secrets \"{name}\" not found"));
        };
        let current = state.secrets[index]["metadata"]["resourceVersion"].clone();
        if state.conflict_on_write || incoming["metadata"]["resourceVersion"] != current {
            return status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on secrets \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            );
        }
        state.version += 1;
        let version = state.version.to_string();
        let stored = &mut state.secrets[index];
        match method {
            "PUT" => *stored = incoming,
            "PATCH" => {
                let annotations = incoming["metadata"]["annotations"]
                    .as_object()
                    .unwrap()
                    .clone();
                let meta = stored["metadata"].as_object_mut().unwrap();
                let target = meta.entry("annotations").or_insert(json!({}));
                for (k, v) in annotations {
                    target[k] = v;
                }
            }
            other => panic!("unexpected {other}"),
        }
        stored["metadata"]["resourceVersion"] = json!(version);
        return (200, stored.clone());
    }
    if path == "/api/v1/namespaces/kube-system/services/sealed-secrets-controller" {
        return (
            200,
            json!({"kind": "Service", "apiVersion": "v1",
                   "metadata": {"name": "sealed-secrets-controller", "namespace": "kube-system"},
                   "spec": {"ports": [{"name": "http", "port": 8080}]}}),
        );
    }
    if path == ROTATE {
        // The controller: open with any key, seal with the newest.
        let sealed = SealedSecret::from_value(serde_json::from_slice(body).unwrap()).unwrap();
        let keys: Vec<_> = pairs().iter().map(|p| p.key.clone()).collect();
        return match reencrypt(
            &sealed,
            &keys,
            &pairs()[2].key.public_key(),
            &mut SystemRandom,
        ) {
            Ok(rotated) => (200, rotated.to_upstream_value()),
            Err(_) => (409, json!({})),
        };
    }
    if path == "/apis/bitnami.com/v1alpha1/sealedsecrets" {
        if state.forbid_cluster_list {
            return forbidden("sealedsecrets.bitnami.com");
        }
        return list(state.sealed.clone());
    }
    if path == "/api/v1/namespaces" {
        if state.forbid_namespaces {
            return forbidden("namespaces");
        }
        let items = state
            .namespaces
            .iter()
            .map(|n| json!({"metadata": {"name": n}}))
            .collect();
        return list(items);
    }
    if let Some(rest) = path.strip_prefix("/apis/bitnami.com/v1alpha1/namespaces/") {
        let ns = rest.strip_suffix("/sealedsecrets").unwrap();
        if state.forbid_in.contains(ns) {
            return forbidden("sealedsecrets.bitnami.com");
        }
        let items = state
            .sealed
            .iter()
            .filter(|s| s["metadata"]["namespace"] == ns)
            .cloned()
            .collect();
        return list(items);
    }
    status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn serve(stream: TcpStream, state: &Shared) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut length = 0;
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
    let (code, reply) = answer(&mut state.lock().unwrap(), &method, &target, &body);
    let reply = reply.to_string();
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = out.flush();
}

struct Fixture {
    dir: tempfile::TempDir,
    state: Shared,
}

impl Fixture {
    /// Keys 0 (active, 2 dependants), 1 (retired), 2 (active, the sealing key, 1 dependant);
    /// one SealedSecret never opened.
    fn new() -> Self {
        let state = State {
            secrets: vec![
                key_secret(2, "active"),
                key_secret(0, "active"),
                key_secret(1, "retired"),
            ],
            sealed: vec![
                sealed_secret("shop", "db", Some(0), "2026-03-01T10:00:00Z"),
                sealed_secret("team", "api", Some(0), "2026-03-02T10:00:00Z"),
                sealed_secret("shop", "web", Some(2), "2026-03-03T10:00:00Z"),
                sealed_secret("shop", "broken", None, "2026-03-04T10:00:00Z"),
            ],
            namespaces: vec!["shop".into(), "team".into()],
            ..State::default()
        };
        let state: Shared = Arc::new(Mutex::new(state));
        {
            let mut s = state.lock().unwrap();
            for secret in &mut s.secrets {
                secret["metadata"]["resourceVersion"] = json!("1");
            }
            s.version = 1;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let served = Arc::clone(&served);
                thread::spawn(move || serve(stream, &served));
            }
        });
        let fx = Self {
            dir: tempfile::tempdir().unwrap(),
            state,
        };
        fx.kubeconfig(addr);
        fx
    }

    fn kubeconfig(&self, addr: SocketAddr) {
        fs::write(
            self.path("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters:\n- name: fake\n  cluster:\n    server: http://{addr}\n\
                 users:\n- name: me\n  user:\n    token: t0ken\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: me\n    \
                 namespace: shop\n"
            ),
        )
        .unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kubeseal"))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", self.path("kubeconfig"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "kubeseal {args:?} failed: {stderr}");
        (String::from_utf8_lossy(&out.stdout).to_string(), stderr)
    }

    /// Exit 1, `error: ` with every needle, nothing on stdout, no panic.
    fn fails(&self, args: &[&str], needles: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "kubeseal {args:?}: {stderr}");
        assert!(stderr.contains("error: "), "{stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "kubeseal {args:?}: {stderr:?} lacks {needle:?}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty(), "no output on failure");
        stderr
    }

    fn label(&self, i: usize) -> String {
        let name = format!("sealed-secrets-key{i}");
        let state = self.state();
        let secret = state
            .secrets
            .iter()
            .find(|s| s["metadata"]["name"] == name)
            .unwrap();
        secret["metadata"]["labels"][KEY_LABEL]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn writes(&self) -> Vec<String> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.starts_with("PUT") || r.starts_with("PATCH"))
            .cloned()
            .collect()
    }
}

fn listing(fx: &Fixture) -> BTreeMap<String, Value> {
    let (stdout, _) = fx.ok(&["keys", "-o", "json"]);
    let value: Value = serde_json::from_str(&stdout).unwrap();
    value["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["secret"].as_str().unwrap().to_string(), row.clone()))
        .collect()
}

#[test]
fn listing_counts_dependants_per_key() {
    let fx = Fixture::new();
    let rows = listing(&fx);
    let old = &rows["sealed-secrets-key0"];
    assert_eq!(old["fingerprint"], fingerprint(0));
    assert_eq!(old["state"], "active");
    assert_eq!(old["sealedSecrets"], 2);
    assert_eq!(old["lastNeeded"], "2026-03-02T10:00:00Z");
    assert_eq!(old["safeToRetire"], false);
    assert_eq!(old["created"], "2026-01-01T00:00:00Z");
    assert!(old["expires"].as_str().unwrap().starts_with('2'));
    let retired = &rows["sealed-secrets-key1"];
    assert_eq!(retired["state"], "retired");
    assert_eq!(retired["sealedSecrets"], 0);
    let sealing = &rows["sealed-secrets-key2"];
    assert_eq!(sealing["state"], "sealing");
    assert_eq!(sealing["sealedSecrets"], 1);
    assert_eq!(sealing["safeToRetire"], false);

    // The table: oldest key first, one row each, read-only.
    let (table, _) = fx.ok(&["keys"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("FINGERPRINT"), "{table}");
    assert!(lines[1].starts_with(&fingerprint(0)), "{table}");
    assert!(lines[3].contains(" sealing "), "{table}");
    let (yaml, _) = fx.ok(&["keys", "list", "-o", "yaml"]);
    assert!(yaml.contains("sealedSecrets: 2"), "{yaml}");
    assert!(fx.writes().is_empty());

    // Once the old key has no dependants it is safe to retire.
    fx.state()
        .sealed
        .retain(|s| s["status"]["keyFingerprint"] != fingerprint(0));
    assert_eq!(listing(&fx)["sealed-secrets-key0"]["safeToRetire"], true);
}

#[test]
fn counts_fall_back_to_namespaces_then_the_current_namespace() {
    let fx = Fixture::new();
    fx.state().forbid_cluster_list = true;
    let (stdout, stderr) = fx.ok(&["keys", "-o", "json"]);
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        value["counted"],
        json!({"scope": "namespaces", "skipped": []})
    );
    assert_eq!(value["keys"][0]["sealedSecrets"], 2, "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");

    fx.state().forbid_in.insert("team".into());
    let (stdout, stderr) = fx.ok(&["keys", "-o", "json"]);
    assert!(stderr.contains("forbidden: team"), "{stderr}");
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["keys"][0]["sealedSecrets"], 1);
    assert_eq!(value["keys"][0]["safeToRetire"], false);

    fx.state().forbid_namespaces = true;
    let (stdout, stderr) = fx.ok(&["keys", "-o", "json"]);
    assert!(
        stderr.contains("counts cover only namespace \"shop\""),
        "{stderr}"
    );
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        value["counted"],
        json!({"scope": "currentNamespace", "namespace": "shop"})
    );
    assert_eq!(value["keys"][0]["sealedSecrets"], 1);

    // With an incomplete count, retiring an apparently unused key needs --force.
    fx.state().sealed.clear();
    fx.fails(
        &["keys", "retire", &fingerprint(0)],
        &[
            "cannot tell whether any still depends on this key",
            "--force",
        ],
    );
    assert_eq!(fx.label(0), "active");

    fx.state().forbid_in.insert("shop".into());
    fx.fails(
        &["keys"],
        &[
            "cannot list SealedSecrets",
            "namespace \"shop\"",
            "list \"sealedsecrets\"",
        ],
    );
}

#[test]
fn retire_relabels_with_the_version_read_and_restore_undoes_it() {
    let fx = Fixture::new();
    fx.state()
        .sealed
        .retain(|s| s["status"]["keyFingerprint"] != fingerprint(0));
    let (stdout, _) = fx.ok(&["keys", "retire", &fingerprint(0)]);
    assert!(
        stdout.contains(&format!("retired key {}", fingerprint(0))),
        "{stdout}"
    );
    assert_eq!(fx.label(0), "retired");
    {
        let state = fx.state();
        let put = state.bodies.last().unwrap();
        assert_eq!(
            put["metadata"]["resourceVersion"], "1",
            "update bound to what was read"
        );
        assert_eq!(
            put["data"]["tls.key"],
            key_secret(0, "x")["data"]["tls.key"],
            "data kept"
        );
    }
    assert_eq!(
        fx.writes(),
        ["PUT /api/v1/namespaces/kube-system/secrets/sealed-secrets-key0"]
    );

    // Again: nothing to do.
    let (_, stderr) = fx.ok(&["keys", "retire", &fingerprint(0)]);
    assert!(stderr.contains("already retired"), "{stderr}");
    assert_eq!(fx.writes().len(), 1);

    // Restore, without the SHA256: prefix.
    let bare = fingerprint(0).trim_start_matches("SHA256:").to_string();
    let (stdout, _) = fx.ok(&["keys", "restore", &bare]);
    assert!(stdout.contains("restored key"), "{stdout}");
    assert_eq!(fx.label(0), "active");
    let (stdout, _) = fx.ok(&["keys", "restore", &fingerprint(1)]);
    assert!(stdout.contains("sealed-secrets-key1"), "{stdout}");
    assert_eq!(fx.label(1), "active");
}

#[test]
fn retire_refusals() {
    let fx = Fixture::new();
    // Dependants without --force.
    fx.fails(
        &["keys", "retire", &fingerprint(0)],
        &[
            "2 SealedSecret(s) still depend on it",
            "shop/db",
            "team/api",
            "--force",
        ],
    );
    assert_eq!(fx.label(0), "active");
    // The sealing key, even with --force.
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["keys", "retire"];
        let fp = fingerprint(2);
        args.push(&fp);
        args.extend_from_slice(extra);
        fx.fails(&args, &["it is the sealing key", "sealed-secrets-key2"]);
    }
    // Unknown fingerprint, for both actions.
    fx.fails(
        &["keys", "retire", "SHA256:doesnotexist"],
        &["no key Secret in namespace \"kube-system\" has fingerprint SHA256:doesnotexist"],
    );
    fx.fails(
        &["keys", "restore", "SHA256:doesnotexist"],
        &["SHA256:doesnotexist"],
    );
    assert!(fx.writes().is_empty());
    // --force retires a key with dependants.
    fx.ok(&["keys", "retire", &fingerprint(0), "--force"]);
    assert_eq!(fx.label(0), "retired");
    // The listing then warns that its dependants will not unseal.
    let (_, stderr) = fx.ok(&["keys"]);
    assert!(stderr.contains("last opened with retired key"), "{stderr}");
}

#[test]
fn a_conflicting_write_changes_nothing_and_says_so() {
    let fx = Fixture::new();
    fx.state().conflict_on_write = true;
    fx.fails(
        &["keys", "restore", &fingerprint(1)],
        &[
            "sealed-secrets-key1 changed since kubeseal read it",
            "run the command again",
        ],
    );
    assert_eq!(fx.label(1), "retired");
}

#[test]
fn no_permission_and_no_cluster() {
    let fx = Fixture::new();
    fx.state().forbid_secrets = true;
    for args in [&["keys"][..], &["keys", "retire", "SHA256:x"][..]] {
        fx.fails(
            args,
            &[
                "cannot list key Secrets in namespace \"kube-system\"",
                "forbidden",
                "RBAC permission",
            ],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    fx.fails(
        &[
            "keys",
            "backup",
            "-o",
            dir.path().join("b.yaml").to_str().unwrap(),
        ],
        &["RBAC permission"],
    );
    assert!(!dir.path().join("b.yaml").exists());

    // Nothing listens on the port.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    fx.kubeconfig(closed);
    fx.fails(
        &["keys"],
        &["cannot list key Secrets", "is the API server reachable"],
    );
    // No kubeconfig at all.
    fs::remove_file(fx.path("kubeconfig")).unwrap();
    fx.fails(&["keys"], &["no configuration has been provided"]);
    // Usage errors exit 2.
    assert_eq!(fx.run(&["keys", "retire"]).status.code(), Some(2));
    assert_eq!(fx.run(&["keys", "frobnicate"]).status.code(), Some(2));
}

#[test]
fn backup_writes_a_private_list_recovery_reads_then_annotates() {
    let fx = Fixture::new();
    let (_, stderr) = fx.ok(&["keys", "backup", "-o", "keys-backup.yaml"]);
    assert!(stderr.contains("backed up 3 key Secret(s)"), "{stderr}");
    let path = fx.path("keys-backup.yaml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("kind: List"));
    assert!(!text.contains("resourceVersion") && !text.contains("uid-0"));
    assert!(!text.contains("creationTimestamp"));
    assert!(text.contains(&format!("{KEY_LABEL}: retired")));
    assert!(!stderr.contains("PRIVATE KEY") && !stderr.contains(&b64(b"-----BEGIN")));

    // Every key Secret carries the backup time now, set with a precondition.
    {
        let state = fx.state();
        for secret in &state.secrets {
            let stamp = secret["metadata"]["annotations"]["sealed-secrets-rs.io/backed-up-at"]
                .as_str()
                .unwrap();
            assert!(
                stamp.parse::<jiff::Timestamp>().is_ok() && stamp.ends_with('Z'),
                "{stamp}"
            );
        }
        assert!(
            state
                .bodies
                .iter()
                .all(|b| b["metadata"]["resourceVersion"] == "1")
        );
    }

    // kubeseal --recovery-unseal opens a SealedSecret sealed with the retired key.
    let cert = fx.path("old.pem");
    fs::write(&cert, &pairs()[1].cert_pem).unwrap();
    let secret = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"shop"},"data":{"password":"aHVudGVyMg=="}}"#;
    fs::write(fx.path("secret.json"), secret).unwrap();
    let (sealed, _) = fx.ok(&[
        "--cert",
        "old.pem",
        "-f",
        "secret.json",
        "-w",
        "sealed.json",
    ]);
    assert!(sealed.is_empty());
    let (opened, _) = fx.ok(&[
        "--recovery-unseal",
        "--recovery-private-key",
        "keys-backup.yaml",
        "-f",
        "sealed.json",
    ]);
    assert!(opened.contains("aHVudGVyMg=="), "{opened}");

    // `-o -` to a pipe: the same List on stdout.
    let (stdout, _) = fx.ok(&["keys", "backup", "-o", "-"]);
    assert!(
        stdout.starts_with("apiVersion: v1\nitems:"),
        "{}",
        &stdout[..40]
    );

    // A failed annotation is an error that still says the backup is complete.
    fx.state().conflict_on_write = true;
    let stderr = fx.fails(
        &["keys", "backup", "-o", "again.yaml"],
        &["the backup is complete"],
    );
    assert!(
        stderr.contains("changed since kubeseal read it"),
        "{stderr}"
    );
    assert!(fx.path("again.yaml").exists());
    // Not a regular file: refused before anything is read.
    fx.fails(
        &["keys", "backup", "-o", "/dev/null"],
        &["not a regular file"],
    );
}

// ---------------------------------------------------------------------------------------------
// kubeseal re-encrypt --all PATH

/// A SealedSecret of `name` sealed with key `i`, in upstream's YAML layout.
fn sealed_yaml(i: usize, name: &str) -> String {
    let secret = secret_from_value(json!({
        "metadata": {"name": name, "namespace": "shop"},
        "stringData": {"password": format!("pw-{name}")}
    }))
    .unwrap();
    let options = SealOptions {
        scope: sealed_secrets_core::scope::Scope::Strict,
        namespace: NamespaceDefault {
            namespace: "shop".into(),
            explicit: false,
        },
        allow_empty_data: false,
    };
    let sealed = seal_secret(
        secret,
        &pairs()[i].key.public_key(),
        &options,
        &mut SystemRandom,
    )
    .unwrap();
    sealed_secrets_core::documents::to_sorted_yaml(&sealed.to_upstream_value())
}

/// The password of each SealedSecret in `path`, opened with key `i` only.
fn open_with(path: &std::path::Path, key: &PrivateKey) -> Vec<Option<String>> {
    parse_documents(&fs::read(path).unwrap())
        .unwrap()
        .into_iter()
        .filter(|d| d["kind"] == "SealedSecret")
        .map(|doc| {
            let sealed = SealedSecret::from_value(doc).unwrap();
            unseal(&sealed, key, UnsealOptions::default())
                .ok()
                .map(|s| String::from_utf8(s.data.unwrap()["password"].0.clone()).unwrap())
        })
        .collect()
}

/// A repository: nested folders, multi-document YAML, JSON, and files without SealedSecrets.
fn repository(fx: &Fixture) -> PathBuf {
    let repo = fx.path("repo");
    fs::create_dir_all(repo.join("apps/shop")).unwrap();
    fs::create_dir_all(repo.join(".git")).unwrap();
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    fs::write(
        repo.join("apps/shop/db.yaml"),
        format!(
            "{config}---\n# old key\n{}---\n{}",
            sealed_yaml(0, "db"),
            sealed_yaml(1, "cache")
        ),
    )
    .unwrap();
    let web: Value = parse_documents(sealed_yaml(0, "web").as_bytes())
        .unwrap()
        .remove(0);
    fs::write(
        repo.join("apps/web.json"),
        sealed_secrets_core::documents::to_go_json(&web),
    )
    .unwrap();
    fs::write(repo.join("apps/current.yml"), sealed_yaml(2, "current")).unwrap();
    fs::write(repo.join("README.md"), "kind: SealedSecret").unwrap();
    fs::write(repo.join("config.yaml"), config).unwrap();
    fs::write(repo.join(".git/stale.yaml"), sealed_yaml(0, "git")).unwrap();
    for (i, pair) in pairs().iter().enumerate() {
        fs::write(
            fx.path(&format!("key{i}.pem")),
            pair.key.to_pkcs1_pem().unwrap().as_bytes(),
        )
        .unwrap();
        fs::write(fx.path(&format!("cert{i}.pem")), &pair.cert_pem).unwrap();
    }
    repo
}

#[test]
fn re_encrypt_all_offline_moves_a_repository_to_the_newest_key() {
    let fx = Fixture::new();
    let repo = repository(&fx);
    let before_config = fs::read(repo.join("config.yaml")).unwrap();
    let before_git = fs::read(repo.join(".git/stale.yaml")).unwrap();
    let db_before = fs::read_to_string(repo.join("apps/shop/db.yaml")).unwrap();

    // --dry-run reports and writes nothing.
    let (stdout, _) = fx.ok(&[
        "re-encrypt",
        "--all",
        "repo",
        "--recovery-private-key",
        "key0.pem,key1.pem",
        "--recovery-private-key",
        "key2.pem",
        "--cert",
        "cert2.pem",
        "--dry-run",
    ]);
    assert!(
        stdout.contains("would re-encrypt 3 SealedSecret(s)"),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(repo.join("apps/shop/db.yaml")).unwrap(),
        db_before
    );

    let (stdout, _) = fx.ok(&[
        "re-encrypt",
        "--all",
        "repo",
        "--recovery-private-key",
        "key0.pem,key1.pem",
        "--recovery-private-key",
        "key2.pem",
        "--cert",
        "cert2.pem",
    ]);
    let expected = [
        "repo/apps/current.yml: SealedSecret shop/current: unchanged (already sealed with the newest key)",
        "repo/apps/shop/db.yaml: SealedSecret shop/db: re-encrypted",
        "repo/apps/shop/db.yaml: SealedSecret shop/cache: re-encrypted",
        "repo/apps/web.json: SealedSecret shop/web: re-encrypted",
        "re-encrypted 3 SealedSecret(s), 1 already on the newest key, 0 failed; 2 file(s) written",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "{stdout}");
    let newest = &pairs()[2].key;
    assert_eq!(
        open_with(&repo.join("apps/shop/db.yaml"), newest),
        [Some("pw-db".into()), Some("pw-cache".into())]
    );
    assert_eq!(
        open_with(&repo.join("apps/web.json"), newest),
        [Some("pw-web".into())]
    );
    let db_after = fs::read_to_string(repo.join("apps/shop/db.yaml")).unwrap();
    assert!(
        db_after
            .starts_with("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\n# old key\n")
    );
    assert_eq!(db_after.len(), db_before.len(), "only ciphertexts changed");
    assert!(
        fs::read_to_string(repo.join("apps/web.json"))
            .unwrap()
            .starts_with("{\n  \"apiVersion\"")
    );
    assert_eq!(fs::read(repo.join("config.yaml")).unwrap(), before_config);
    assert_eq!(fs::read(repo.join(".git/stale.yaml")).unwrap(), before_git);
}

#[test]
fn re_encrypt_all_reports_failures_and_leaves_those_files_alone() {
    let fx = Fixture::new();
    let repo = repository(&fx);
    let db_before = fs::read(repo.join("apps/shop/db.yaml")).unwrap();
    // Without key1, the cache SealedSecret cannot be opened: db.yaml stays as it was.
    let out = fx.run(&[
        "re-encrypt",
        "--all",
        "repo",
        "--recovery-private-key",
        "key0.pem,key2.pem",
        "--cert",
        "cert2.pem",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "db.yaml: SealedSecret shop/db: not written (another SealedSecret of this file failed)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("db.yaml: SealedSecret shop/cache: failed: error decrypting secret. no key could decrypt secret (password)"), "{stdout}");
    assert!(stdout.contains("1 failed; 1 file(s) written"), "{stdout}");
    assert!(
        stderr.contains("error: 1 SealedSecret(s) or file(s) could not be re-encrypted"),
        "{stderr}"
    );
    assert_eq!(fs::read(repo.join("apps/shop/db.yaml")).unwrap(), db_before);
    assert_eq!(
        open_with(&repo.join("apps/web.json"), &pairs()[2].key),
        [Some("pw-web".into())]
    );
    assert!(!stdout.contains("pw-"), "no plaintext in the report");

    // Usage errors exit 2 and name the flag.
    for (args, needle) in [
        (&["re-encrypt"][..], "needs --all PATH"),
        (
            &["re-encrypt", "--all", "repo", "--cert", "cert2.pem"][..],
            "needs both --recovery-private-key",
        ),
        (
            &["re-encrypt", "--all", "missing"][..],
            "--all missing: no such file or folder",
        ),
    ] {
        let out = fx.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // A broken key file is named.
    fs::write(fx.path("junk.pem"), "junk").unwrap();
    fx.fails(
        &[
            "re-encrypt",
            "--all",
            "repo",
            "--recovery-private-key",
            "junk.pem",
            "--cert",
            "cert2.pem",
        ],
        &["junk.pem"],
    );
}

#[test]
fn re_encrypt_all_online_goes_through_the_controller() {
    let fx = Fixture::new();
    let repo = repository(&fx);
    let (stdout, _) = fx.ok(&["re-encrypt", "--all", "repo/apps"]);
    assert!(stdout.contains("re-encrypted 4 SealedSecret(s), 0 already on the newest key, 0 failed; 3 file(s) written"), "{stdout}");
    let rotations = fx
        .state()
        .requests
        .iter()
        .filter(|r| r.contains("/v1/rotate"))
        .count();
    assert_eq!(rotations, 4);
    assert_eq!(
        open_with(&repo.join("apps/shop/db.yaml"), &pairs()[2].key),
        [Some("pw-db".into()), Some("pw-cache".into())]
    );
    // No cluster: a clear error, nothing written.
    let before = fs::read(repo.join("apps/web.json")).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    fx.kubeconfig(closed);
    fx.fails(
        &["re-encrypt", "--all", "repo"],
        &["cannot get sealed secret service", "Connection refused"],
    );
    assert_eq!(fs::read(repo.join("apps/web.json")).unwrap(), before);
}

#[test]
fn unreadable_key_secrets_are_named_left_out_of_counts_but_backed_up() {
    let fx = Fixture::new();
    let mut broken = key_secret(0, "active");
    broken["metadata"]["name"] = json!("broken-key");
    broken["metadata"]["resourceVersion"] = json!("1");
    broken["data"]["tls.crt"] = json!("bm90IGEgY2VydGlmaWNhdGU=");
    broken["data"]["tls.key"] = json!("c2VjcmV0LWtleS1ieXRlcw==");
    fx.state().secrets.push(broken);
    let (stdout, stderr) = fx.ok(&["keys"]);
    assert!(
        stderr.contains("warning: key Secret kube-system/broken-key left out: tls.crt:"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("c2VjcmV0") && !stdout.contains("broken-key"),
        "{stderr}"
    );
    let (_, stderr) = fx.ok(&["keys", "backup", "-o", "all.yaml"]);
    assert!(stderr.contains("backed up 4 key Secret(s)"), "{stderr}");
    let text = fs::read_to_string(fx.path("all.yaml")).unwrap();
    assert!(
        text.contains("name: broken-key"),
        "a backup keeps every key Secret"
    );
}
