//! kubeseal's online modes against a fake API server on 127.0.0.1 (plain HTTP, reached through
//! a kubeconfig): the certificate through the service proxy, `--validate`, `--re-encrypt`, and
//! the error text of every failure class (no Service, no ports, no permission, controller down,
//! 409, 429, 500, timeout).

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::{Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

use sealed_secrets_core::{
    crypto::SystemRandom,
    documents::parse_documents,
    keys::{GeneratedKeyPair, generate_key_pair},
    reencrypt::reencrypt,
    sealed_secret::SealedSecret,
};
use serde_json::{Value, json};

const STRICT_SECRET: &str = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"shop","labels":{"app":"shop"}},"type":"Opaque","data":{"password":"aHVudGVyMg=="},"stringData":{"user":"admin"}}"#;

const DEFAULT_SERVICE_PATH: &str =
    "/api/v1/namespaces/kube-system/services/sealed-secrets-controller";
const DEFAULT_PROXY: &str =
    "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy";

fn key_pair() -> &'static GeneratedKeyPair {
    static PAIR: OnceLock<GeneratedKeyPair> = OnceLock::new();
    PAIR.get_or_init(|| {
        generate_key_pair(
            2048,
            "",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(24),
        )
        .unwrap()
    })
}

// ---------------------------------------------------------------------------------------------
// The fake API server
// ---------------------------------------------------------------------------------------------

/// One request the fake API server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// What the fake API server answers.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Answer {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    fn json(status: u16, value: &Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }
    fn empty(status: u16) -> Self {
        Self::new(status, "text/plain; charset=utf-8", "")
    }
    /// A Kubernetes `Status`, as the API server itself answers errors.
    fn status(code: u16, reason: &str, message: &str) -> Self {
        Self::json(
            code,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "code": code}),
        )
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Answer + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1 that records every request and answers with `handler`
/// (one request per connection, `Connection: close`).
struct FakeApi {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeApi {
    fn start(handler: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                thread::spawn(move || serve(stream, &handler, &recorded));
            }
        });
        Self { addr, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn serve(stream: TcpStream, handler: &Handler, recorded: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Recorded {
        method,
        path,
        headers,
        body,
    };
    recorded.lock().unwrap().push(request.clone());
    let answer = handler(&request);
    thread::sleep(answer.delay);
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&answer.body);
    let _ = out.flush();
}

/// The Service upstream's chart creates: one port named `http`.
fn service(name: &str, namespace: &str, port_name: Option<&str>) -> Value {
    let mut port = json!({"port": 8080, "protocol": "TCP", "targetPort": 8080});
    if let Some(port_name) = port_name {
        port["name"] = json!(port_name);
    }
    json!({"kind": "Service", "apiVersion": "v1",
           "metadata": {"name": name, "namespace": namespace},
           "spec": {"ports": [port], "type": "ClusterIP"}})
}

/// A well-behaved cluster: the Service, then the controller behind the proxy answering with
/// `controller` (path after `/proxy`, request).
fn cluster(controller: impl Fn(&str, &Recorded) -> Answer + Send + Sync + 'static) -> FakeApi {
    FakeApi::start(move |request| {
        if request.path == DEFAULT_SERVICE_PATH {
            return Answer::json(
                200,
                &service("sealed-secrets-controller", "kube-system", Some("http")),
            );
        }
        match request.path.strip_prefix(DEFAULT_PROXY) {
            Some(rest) => controller(rest, request),
            None => Answer::status(404, "NotFound", "the server could not find the resource"),
        }
    })
}

/// The controller's certificate endpoint.
fn cert_answer() -> Answer {
    Answer::new(200, "application/x-pem-file", key_pair().cert_pem.clone())
}

/// What an upstream controller answers on `/v1/rotate`: re-sealed values, no type meta, the
/// template metadata replaced by the outer metadata (losing template labels/annotations).
fn upstream_rotate(body: &[u8]) -> Answer {
    let value: Value = serde_json::from_slice(body).unwrap();
    let sealed = SealedSecret::from_value(value).unwrap();
    let pair = key_pair();
    let rotated = reencrypt(
        &sealed,
        &vec![pair.key.clone()],
        &pair.key.public_key(),
        &mut SystemRandom,
    )
    .unwrap();
    let mut out = rotated.to_upstream_value();
    let object = out.as_object_mut().unwrap();
    object.remove("apiVersion");
    object.remove("kind");
    let mut outer = object["metadata"].clone();
    outer["creationTimestamp"] = Value::Null;
    object["metadata"] = outer.clone();
    object["spec"]["template"]["metadata"] = outer;
    Answer::new(200, "text/plain; charset=utf-8", out.to_string())
}

// ---------------------------------------------------------------------------------------------
// Running kubeseal
// ---------------------------------------------------------------------------------------------

struct Fixture {
    dir: tempfile::TempDir,
    api: FakeApi,
}

impl Fixture {
    fn new(api: FakeApi) -> Self {
        let fx = Self {
            dir: tempfile::tempdir().unwrap(),
            api,
        };
        let pair = key_pair();
        fx.write("key.pem", pair.key.to_pkcs1_pem().unwrap().as_bytes());
        fx.write(
            "kubeconfig",
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
                 users:\n- name: me\n  user:\n    token: t0ken\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: me\n    \
                 namespace: shop\n",
                fx.api.addr
            )
            .as_bytes(),
        );
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn run_env(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubeseal"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", self.path("kubeconfig"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let _ = pipe.write_all(stdin);
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.run_env(args, stdin, &[]);
        assert!(
            out.status.success(),
            "kubeseal {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Expects `error: <message containing every needle>`, exit 1, no stdout; returns stderr.
    fn fails(&self, args: &[&str], stdin: &[u8], needles: &[&str]) -> String {
        let out = self.run_env(args, stdin, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "kubeseal {args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "kubeseal {args:?}: {stderr}");
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

    /// Opens SealedSecrets with the test key (offline), returning the Secrets.
    fn unseal(&self, sealed: &[u8]) -> Vec<Value> {
        self.write("to-open", sealed);
        let out = self.ok(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                "key.pem",
                "-f",
                "to-open",
            ],
            b"",
        );
        parse_documents(&out).unwrap()
    }

    /// Seals STRICT_SECRET (or `secret`) with the cert from the fake controller.
    fn seal(&self, secret: &str) -> Vec<u8> {
        self.ok(&[], secret.as_bytes())
    }
}

fn decoded(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let b64 = secret["data"][key].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Certificate
// ---------------------------------------------------------------------------------------------

#[test]
fn fetch_cert_goes_through_the_service_proxy() {
    let fx = Fixture::new(cluster(|rest, _| match rest {
        "/v1/cert.pem" => cert_answer(),
        _ => Answer::empty(404),
    }));
    let out = fx.ok(&["--fetch-cert"], b"");
    assert_eq!(out, key_pair().cert_pem.as_bytes());
    let requests = fx.api.requests();
    assert_eq!(
        fx.api.paths(),
        [
            format!("GET {DEFAULT_SERVICE_PATH}"),
            "GET /api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem".to_string(),
        ]
    );
    assert_eq!(
        requests[1].headers.get("accept").map(String::as_str),
        Some("application/x-pem-file, */*")
    );
    for request in &requests {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("Bearer t0ken"),
            "the kubeconfig's user is used"
        );
    }

    // -w writes the same bytes to a file.
    fx.ok(&["--fetch-cert", "-w", "cert.pem"], b"");
    assert_eq!(
        fs::read(fx.path("cert.pem")).unwrap(),
        key_pair().cert_pem.as_bytes()
    );
}

#[test]
fn unnamed_port_gives_an_empty_port_in_the_proxy_name() {
    let fx = Fixture::new(FakeApi::start(|request| {
        if request.path == DEFAULT_SERVICE_PATH {
            return Answer::json(
                200,
                &service("sealed-secrets-controller", "kube-system", None),
            );
        }
        if request.path
            == "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:/proxy/v1/cert.pem"
        {
            return cert_answer();
        }
        Answer::status(404, "NotFound", "not here")
    }));
    assert_eq!(
        fx.ok(&["--fetch-cert"], b""),
        key_pair().cert_pem.as_bytes()
    );
}

#[test]
fn controller_name_and_namespace_from_flags_and_environment() {
    let api = FakeApi::start(|request| {
        match request.path.as_str() {
            "/api/v1/namespaces/security/services/my-sealer" => {
                return Answer::json(200, &service("my-sealer", "security", Some("web")));
            }
            "/api/v1/namespaces/security/services/http:my-sealer:web/proxy/v1/cert.pem" => {
                return cert_answer();
            }
            _ => {}
        }
        Answer::status(404, "NotFound", "services \"x\" not found")
    });
    let fx = Fixture::new(api);
    let flags = [
        "--fetch-cert",
        "--controller-name",
        "my-sealer",
        "--controller-namespace",
        "security",
    ];
    assert_eq!(fx.ok(&flags, b""), key_pair().cert_pem.as_bytes());
    let out = fx.run_env(
        &["--fetch-cert"],
        b"",
        &[
            ("SEALED_SECRETS_CONTROLLER_NAME", "my-sealer"),
            ("SEALED_SECRETS_CONTROLLER_NAMESPACE", "security"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, key_pair().cert_pem.as_bytes());
    assert!(
        fx.api
            .paths()
            .iter()
            .all(|p| p.contains("/namespaces/security/services/")),
        "{:?}",
        fx.api.paths()
    );
}

#[test]
fn default_sealing_uses_the_fetched_certificate() {
    let fx = Fixture::new(cluster(|rest, _| match rest {
        "/v1/cert.pem" => cert_answer(),
        _ => Answer::empty(404),
    }));
    let sealed = fx.seal(STRICT_SECRET);
    let doc: Value = serde_json::from_slice(&sealed).unwrap();
    assert_eq!(doc["kind"], "SealedSecret");
    let secrets = fx.unseal(&sealed);
    assert_eq!(decoded(&secrets[0], "password"), "hunter2");
    assert_eq!(decoded(&secrets[0], "user"), "admin");

    // --raw too (the kubeconfig context's namespace applies).
    let raw = fx.ok(&["--raw", "--name", "db", "--scope", "strict"], b"x");
    assert!(!raw.is_empty());
}

#[test]
fn certificate_failures_have_clear_errors() {
    // No Service: upstream's text, verbatim.
    let fx = Fixture::new(FakeApi::start(|_| {
        Answer::status(
            404,
            "NotFound",
            "services \"sealed-secrets-controller\" not found",
        )
    }));
    let stderr = fx.fails(&["--fetch-cert"], b"", &[]);
    assert_eq!(
        stderr,
        "error: cannot get sealed secret service: services \"sealed-secrets-controller\" not \
         found.\nPlease, use the flag --controller-name and --controller-namespace to set up the \
         name and namespace of the sealed secrets controller\n"
    );
    // Default sealing fails the same way, writing nothing.
    fx.fails(
        &["-w", "out.json"],
        STRICT_SECRET.as_bytes(),
        &["cannot get sealed secret service"],
    );
    assert!(!fx.path("out.json").exists());

    // A Service without ports: a clear error, not a crash.
    let fx = Fixture::new(FakeApi::start(|request| {
        let mut svc = service("sealed-secrets-controller", "kube-system", Some("http"));
        svc["spec"]["ports"] = json!([]);
        assert_eq!(request.path, DEFAULT_SERVICE_PATH);
        Answer::json(200, &svc)
    }));
    fx.fails(
        &["--fetch-cert"],
        b"",
        &[
            "\"kube-system/sealed-secrets-controller\" has no ports",
            "--controller-name",
        ],
    );

    // No permission on services/proxy.
    let fx = Fixture::new(cluster(|_, _| {
        Answer::status(
            403,
            "Forbidden",
            "services \"http:sealed-secrets-controller:http\" is forbidden: User \"dev\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"kube-system\"",
        )
    }));
    fx.fails(
        &["--fetch-cert"],
        b"",
        &[
            "cannot fetch certificate: services \"http:sealed-secrets-controller:http\" is forbidden",
            "needs RBAC permission to get \"services/proxy\" for service \"sealed-secrets-controller\" in namespace \"kube-system\"",
        ],
    );

    // Controller down: the API server's 503.
    let fx = Fixture::new(cluster(|_, _| {
        Answer::status(
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"sealed-secrets-controller\"",
        )
    }));
    fx.fails(
        &["--fetch-cert"],
        b"",
        &[
            "cannot fetch certificate: no endpoints available for service \"sealed-secrets-controller\"",
            "is the controller running",
        ],
    );

    // The controller answers 500 (no key yet).
    let fx = Fixture::new(cluster(|_, _| {
        Answer::new(500, "text/plain; charset=utf-8", "cannot get certificate\n")
    }));
    fx.fails(
        &["--fetch-cert"],
        b"",
        &["cannot fetch certificate: an error on the server (\"cannot get certificate\")"],
    );

    // Nothing listens: the transport error, with upstream's wrapping.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let fx = Fixture::new(FakeApi::start(|_| Answer::empty(500)));
    fx.fails(
        &["--fetch-cert", "--server", &format!("http://127.0.0.1:{port}")],
        b"",
        &[
            &format!("cannot get sealed secret service: Get \"http://127.0.0.1:{port}/api/v1/namespaces/kube-system/services/sealed-secrets-controller\""),
            "onnection refused",
        ],
    );
}

#[test]
fn request_timeout_bounds_each_request() {
    let fx = Fixture::new(cluster(|_, _| {
        cert_answer().delayed(Duration::from_secs(8))
    }));
    let started = Instant::now();
    fx.fails(
        &["--fetch-cert", "--request-timeout=1s"],
        b"",
        &[
            "cannot fetch certificate: Get \"http://",
            "request timed out after 1s (--request-timeout)",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    fx.fails(
        &["--fetch-cert", "--request-timeout=soon"],
        b"",
        &["invalid timeout value \"soon\""],
    );
}

// ---------------------------------------------------------------------------------------------
// --validate
// ---------------------------------------------------------------------------------------------

/// A cluster whose controller seals nothing but answers `/v1/verify` per SealedSecret name.
fn verifying_cluster(answers: fn(&str) -> Answer) -> FakeApi {
    cluster(move |rest, request| match rest {
        "/v1/cert.pem" => cert_answer(),
        "/v1/verify" => {
            let value: Value = serde_json::from_slice(&request.body).unwrap();
            answers(value["metadata"]["name"].as_str().unwrap_or(""))
        }
        _ => Answer::empty(404),
    })
}

#[test]
fn validate_posts_every_sealed_secret_and_stops_at_the_first_failure() {
    let fx = Fixture::new(verifying_cluster(|name| match name {
        "db" | "cache" => Answer::empty(200),
        _ => Answer::empty(409),
    }));
    let sealed = fx.seal(STRICT_SECRET);
    let out = fx.ok(&["--validate"], &sealed);
    assert!(out.is_empty(), "no output on success");
    let posts: Vec<Recorded> = fx
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, format!("{DEFAULT_PROXY}/v1/verify"));
    assert_eq!(
        posts[0].headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let posted: Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(posted, serde_json::from_slice::<Value>(&sealed).unwrap());

    // Multi-document YAML: each one is checked; the first failure names its object.
    let cache = STRICT_SECRET.replace("\"db\"", "\"cache\"");
    let other = STRICT_SECRET.replace("\"db\"", "\"other\"");
    let yaml = |secret: &str| fx.ok(&["-o", "yaml"], secret.as_bytes());
    let mut stream = yaml(STRICT_SECRET);
    stream.extend(yaml(&cache));
    fx.ok(&["--validate"], &stream);
    stream.extend(yaml(&other));
    stream.extend(yaml(STRICT_SECRET));
    let before = fx.api.requests().len();
    fx.fails(
        &["--validate"],
        &stream,
        &["unable to decrypt sealed secret: other"],
    );
    let verifies = fx.api.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with("/v1/verify"))
        .count();
    assert_eq!(verifies, 3, "stops at the first failure");

    // Input that is not a SealedSecret.
    fx.fails(
        &["--validate"],
        STRICT_SECRET.as_bytes(),
        &[
            "unable to decrypt sealed secret",
            "unexpected resource type",
        ],
    );
    fx.fails(
        &["--validate"],
        b"{ not json",
        &["unable to decrypt sealed secret"],
    );
}

#[test]
fn validate_reports_rate_limits_permissions_and_errors() {
    let fx = Fixture::new(verifying_cluster(|_| {
        Answer::new(429, "text/plain; charset=utf-8", "limit exceeded\n").header("Retry-After", "7")
    }));
    let sealed = fx.seal(STRICT_SECRET);
    let stderr = fx.fails(&["--validate"], &sealed, &[]);
    assert_eq!(
        stderr,
        "error: cannot validate sealed secret: the controller is rate limiting requests (HTTP \
         429); retry later (Retry-After: 7s)\n"
    );

    let fx = Fixture::new(verifying_cluster(|_| {
        Answer::status(
            403,
            "Forbidden",
            "services \"http:sealed-secrets-controller:http\" is forbidden: User \"dev\" cannot create resource \"services/proxy\" in API group \"\" in the namespace \"kube-system\"",
        )
    }));
    let sealed = fx.seal(STRICT_SECRET);
    fx.fails(
        &["--validate"],
        &sealed,
        &[
            "cannot validate sealed secret: services \"http:sealed-secrets-controller:http\" is forbidden",
            "needs RBAC permission to create \"services/proxy\"",
        ],
    );

    let fx = Fixture::new(verifying_cluster(|_| {
        Answer::new(500, "text/plain", "Multistream YAML not supported yet\n")
    }));
    let sealed = fx.seal(STRICT_SECRET);
    fx.fails(
        &["--validate"],
        &sealed,
        &["cannot validate sealed secret: an error on the server (\"Multistream YAML not supported yet\") has prevented the request from succeeding (post services http:sealed-secrets-controller:http)"],
    );
}

// ---------------------------------------------------------------------------------------------
// --re-encrypt
// ---------------------------------------------------------------------------------------------

const LABELLED_SECRET: &str = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"shop","labels":{"app":"shop","tier":"data"},"annotations":{"team":"payments","sealedsecrets.bitnami.com/namespace-wide":"true"}},"type":"Opaque","data":{"password":"aHVudGVyMg=="}}"#;

fn rotating_cluster(rotate: fn(&[u8]) -> Answer) -> FakeApi {
    cluster(move |rest, request| match rest {
        "/v1/cert.pem" => cert_answer(),
        "/v1/rotate" => rotate(&request.body),
        _ => Answer::empty(404),
    })
}

#[test]
fn re_encrypt_keeps_template_labels_and_rewrites_the_file_in_place() {
    let fx = Fixture::new(rotating_cluster(upstream_rotate));
    let sealed = fx.ok(&["-o", "yaml"], LABELLED_SECRET.as_bytes());
    let original: Value = parse_documents(&sealed).unwrap().remove(0);

    // stdout, JSON by default.
    let out = fx.ok(&["--re-encrypt"], &sealed);
    let rotated: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(rotated["apiVersion"], "bitnami.com/v1alpha1");
    assert_eq!(rotated["kind"], "SealedSecret");
    assert!(rotated["metadata"].get("creationTimestamp").is_none());
    assert_ne!(
        rotated["spec"]["encryptedData"]["password"],
        original["spec"]["encryptedData"]["password"]
    );
    let template = &rotated["spec"]["template"]["metadata"];
    assert_eq!(template["labels"], json!({"app": "shop", "tier": "data"}));
    assert_eq!(
        template["annotations"],
        json!({"team": "payments", "sealedsecrets.bitnami.com/namespace-wide": "true"})
    );
    assert_eq!(
        rotated["metadata"]["annotations"],
        json!({"sealedsecrets.bitnami.com/namespace-wide": "true"})
    );
    let secret = fx.unseal(&out).remove(0);
    assert_eq!(decoded(&secret, "password"), "hunter2");
    assert_eq!(secret["metadata"]["labels"]["tier"], "data");

    // -f without -w: in place, keeping the file's YAML.
    let file = fx.write("sealed.yaml", &sealed);
    let out = fx.ok(&["--re-encrypt", "-f", "sealed.yaml"], b"");
    assert!(out.is_empty());
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("---\n"), "{text}");
    let in_place = parse_documents(text.as_bytes()).unwrap().remove(0);
    assert_eq!(in_place["spec"]["template"]["metadata"], *template);
    assert_ne!(
        in_place["spec"]["encryptedData"]["password"],
        original["spec"]["encryptedData"]["password"]
    );
    assert_eq!(
        fs::read_dir(fx.dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".kubeseal-"))
            .count(),
        0,
        "no temporary files left"
    );

    // The deprecated --rotate does the same, with upstream's warning.
    let out = fx.run_env(&["--rotate", "-o", "yaml"], &sealed, &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("please use --re-encrypt instead"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("---\n"));
}

#[test]
fn re_encrypt_failures_leave_the_file_alone() {
    let fx = Fixture::new(rotating_cluster(|_| Answer::empty(409)));
    let sealed = fx.seal(STRICT_SECRET);
    let file = fx.write("sealed.json", &sealed);
    fx.fails(
        &["--re-encrypt", "-f", "sealed.json"],
        b"",
        &["unable to rotate secret"],
    );
    assert_eq!(fs::read(&file).unwrap(), sealed);

    let fx = Fixture::new(rotating_cluster(|_| Answer::empty(500)));
    let file = fx.write("sealed.json", &sealed);
    fx.fails(
        &["--re-encrypt", "-f", "sealed.json"],
        b"",
        &[
            "cannot re-encrypt secret: an error on the server (\"unknown\") has prevented the request from succeeding (post services http:sealed-secrets-controller:http)",
            "could not open or re-seal \"db\"",
        ],
    );
    assert_eq!(fs::read(&file).unwrap(), sealed);

    let fx = Fixture::new(rotating_cluster(|_| {
        Answer::status(
            503,
            "ServiceUnavailable",
            "error trying to reach service: dial tcp 10.0.0.7:8080: connect: connection refused",
        )
    }));
    fx.fails(
        &["--re-encrypt"],
        &sealed,
        &[
            "cannot re-encrypt secret: error trying to reach service",
            "is the controller running",
        ],
    );

    let fx = Fixture::new(rotating_cluster(|_| Answer::new(200, "text/plain", "nope")));
    fx.fails(
        &["--re-encrypt"],
        &sealed,
        &["cannot re-encrypt secret \"db\": the controller's answer is not JSON"],
    );
}

// ---------------------------------------------------------------------------------------------
// kubeseal sync: the reconcile core run once against the in-memory API server, over HTTP.

fn sync_cluster() -> (FakeApi, sealed_secrets_sync_testing::FakeApiServer) {
    let server = sealed_secrets_sync_testing::FakeApiServer::new();
    let served = server.clone();
    let api = FakeApi::start(move |request| {
        let (status, body) = served.answer(&request.method, &request.path, &request.body);
        Answer::new(status, "application/json", body)
    });
    (api, server)
}

fn run_sync(fx: &Fixture, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["sync"];
    full.extend_from_slice(args);
    let out = fx.run_env(&full, b"", &[]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sync_diff_apply_prune_and_the_secret_policy() {
    let (api, server) = sync_cluster();
    let fx = Fixture::new(api);
    fs::create_dir_all(fx.path("apps")).unwrap();
    fx.write(
        "apps/config.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n",
    );

    // diff before anything exists: exit 1, objects to create, nothing written.
    let (code, stdout, stderr) = run_sync(&fx, &["diff", "--name", "web", "--path", "apps"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("+ ConfigMap/shop/settings (apps/config.yaml:1)"),
        "{stdout}"
    );
    assert_eq!(server.count("configmaps"), 0);

    // apply: created, with the inventory kept in a ConfigMap of the context namespace.
    let (code, stdout, stderr) = run_sync(&fx, &["apply", "--name", "web", "--path", "apps"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ConfigMap/shop/settings created"),
        "{stdout}"
    );
    let inventory = server.object("configmaps", "shop", "gitsync-web").unwrap();
    assert!(
        inventory["data"]["inventory"]
            .as_str()
            .unwrap()
            .contains("shop_extra__ConfigMap")
    );

    // in sync: exit 0.
    let (code, stdout, _) = run_sync(&fx, &["diff", "--name", "web", "--path", "apps"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("in sync"), "{stdout}");

    // a hand edit shows as a change of that field.
    server.edit("configmaps", "shop", "settings", |c| {
        c["data"]["mode"] = json!("slow")
    });
    let (code, stdout, _) = run_sync(&fx, &["diff", "--name", "web", "--path", "apps"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            "~ ConfigMap/shop/settings (apps/config.yaml:1)\n    data.mode: \"slow\" → \"fast\""
        ),
        "{stdout}"
    );

    // a document removed from the folder is pruned only with --prune.
    fx.write(
        "apps/config.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n",
    );
    let (code, stdout, _) = run_sync(&fx, &["diff", "--name", "web", "--path", "apps", "--prune"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("- ConfigMap/shop/extra"), "{stdout}");
    assert!(server.object("configmaps", "shop", "extra").is_some());
    let (code, stdout, stderr) = run_sync(
        &fx,
        &["apply", "--name", "web", "--path", "apps", "--prune"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ConfigMap/shop/extra pruned"), "{stdout}");
    assert!(server.object("configmaps", "shop", "extra").is_none());

    // a raw Secret fails the run (exit 2), names the file, and nothing is written.
    fx.write(
        "apps/secret.yaml",
        b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\nstringData:\n  token: abc123\n",
    );
    server.clear_requests();
    let (code, stdout, stderr) = run_sync(&fx, &["apply", "--name", "web", "--path", "apps"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.contains("apps/secret.yaml:1: Secret \"leaked\" is a plain Secret"),
        "{stderr}"
    );
    assert!(!stderr.contains("abc123"));
    assert_eq!(server.writes(), 0);
    assert!(server.object("secrets", "shop", "leaked").is_none());

    // a folder that does not exist is named as given.
    let (code, _, stderr) = run_sync(&fx, &["diff", "--name", "web", "--path", "missing"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--path missing: no such folder"),
        "{stderr}"
    );
}

#[test]
fn sync_validate_asks_the_controller_before_applying() {
    let server = sealed_secrets_sync_testing::FakeApiServer::new();
    let served = server.clone();
    let api = FakeApi::start(move |request| {
        if request.path == DEFAULT_SERVICE_PATH {
            return Answer::json(
                200,
                &service("sealed-secrets-controller", "kube-system", Some("http")),
            );
        }
        if let Some(rest) = request.path.strip_prefix(DEFAULT_PROXY) {
            assert_eq!(rest, "/v1/verify");
            let value: Value = serde_json::from_slice(&request.body).unwrap();
            // The namespace is filled in before asking: scoped ciphertexts are bound to it.
            assert_eq!(value["metadata"]["namespace"], "shop");
            return match value["metadata"]["name"].as_str() {
                Some("good") => Answer::empty(200),
                _ => Answer::empty(409),
            };
        }
        let (status, body) = served.answer(&request.method, &request.path, &request.body);
        Answer::new(status, "application/json", body)
    });
    let fx = Fixture::new(api);
    fs::create_dir_all(fx.path("apps")).unwrap();
    let sealed = |name: &str| {
        format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: {name}\nspec:\n  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA==\n"
        )
    };
    fx.write("apps/good.yaml", sealed("good").as_bytes());
    let (code, stdout, stderr) = run_sync(
        &fx,
        &["apply", "--name", "web", "--path", "apps", "--validate"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("SealedSecret.bitnami.com/shop/good created"),
        "{stdout}"
    );

    fx.write("apps/bad.yaml", sealed("bad").as_bytes());
    server.clear_requests();
    let (code, _, stderr) = run_sync(
        &fx,
        &["apply", "--name", "web", "--path", "apps", "--validate"],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("apps/bad.yaml:1: SealedSecret \"bad\" cannot be unsealed by this cluster"),
        "{stderr}"
    );
    assert_eq!(server.writes(), 0);

    let (code, _, stderr) = run_sync(
        &fx,
        &[
            "diff",
            "--name",
            "web",
            "--validate",
            "--recovery-private-key",
            "key.pem",
        ],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// The wrong-cluster guard against a fake controller that serves another cluster's
/// certificate: sealing by path with a named context, `--validate` and `--re-encrypt` of a
/// routed file are refused before anything is written; the environment's own certificate
/// passes.
#[test]
fn a_controller_serving_another_clusters_certificate_is_refused_and_nothing_is_written() {
    let fx = Fixture::new(cluster(|rest, _| match rest {
        "/v1/cert.pem" => cert_answer(),
        "/v1/verify" => Answer::empty(200),
        "/v1/rotate" => Answer::empty(500),
        _ => Answer::empty(404),
    }));
    let other = generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(24),
    )
    .unwrap();
    fx.write("production.pem", other.cert_pem.as_bytes());
    fx.write("staging.pem", key_pair().cert_pem.as_bytes());
    fx.write(
        ".sealed-secrets.yaml",
        b"version: 1\nenvironments:\n  production: {certificates: production.pem}\n  staging: {certificates: staging.pem}\nrules:\n- {path: prod/**, environment: production}\n- {path: staging/**, environment: staging}\n",
    );
    fs::create_dir_all(fx.path("prod")).unwrap();
    fs::create_dir_all(fx.path("staging")).unwrap();
    let served = key_pair().key.fingerprint();
    let stderr = fx.fails(
        &["--context", "fake", "-w", "prod/db.yaml"],
        STRICT_SECRET.as_bytes(),
        &[
            "refusing to use the controller of context \"fake\" for environment \"production\"",
            &served,
            &other.key.fingerprint(),
            "that is environment \"staging\"'s certificate",
            "nothing was written",
        ],
    );
    assert!(!stderr.contains("hunter2"));
    assert!(!fx.path("prod/db.yaml").exists());

    // Offline by path: production's committed certificate, no request at all.
    fx.api.requests.lock().unwrap().clear();
    fx.ok(&["-w", "prod/db.yaml"], STRICT_SECRET.as_bytes());
    assert!(fx.api.requests().is_empty(), "sealing by path is offline");
    let before = fs::read(fx.path("prod/db.yaml")).unwrap();

    // Online modes on the production file: refused, the file untouched.
    fx.fails(
        &["--validate", "-f", "prod/db.yaml"],
        b"",
        &["refusing to use the controller"],
    );
    fx.fails(
        &["--re-encrypt", "-f", "prod/db.yaml"],
        b"",
        &["refusing to use the controller"],
    );
    assert_eq!(fs::read(fx.path("prod/db.yaml")).unwrap(), before);
    fx.fails(
        &["--fetch-cert", "--env", "production"],
        b"",
        &["refusing to use the controller"],
    );

    // The environment this controller serves passes.
    fx.ok(
        &["--context", "fake", "-w", "staging/db.yaml"],
        STRICT_SECRET.as_bytes(),
    );
    let sealed = fs::read(fx.path("staging/db.yaml")).unwrap();
    assert_eq!(decoded(&fx.unseal(&sealed)[0], "password"), "hunter2");
    fx.ok(&["--validate", "-f", "staging/db.yaml"], b"");
}

// ---------------------------------------------------------------------------------------------
// kubeseal ui: the seal form's default certificate comes through the service proxy
// ---------------------------------------------------------------------------------------------

/// One HTTP/1.1 request to the UI on loopback: the head and the body.
fn ui_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (String, String) {
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (head.to_string(), body.to_string())
}

#[test]
fn the_ui_seals_with_the_controller_certificate_through_the_service_proxy() {
    let fx = Fixture::new(cluster(|rest, _| match rest {
        "/v1/cert.pem" => cert_answer(),
        _ => Answer::empty(404),
    }));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubeseal"))
        .args(["ui", "--kubeconfig"])
        .arg(fx.path("kubeconfig"))
        .env_clear()
        .env("HOME", fx.dir.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // Keep reading what it prints (a closed pipe must not be what this test sees).
    thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = first
        .trim()
        .strip_prefix("kubeseal ui: open ")
        .unwrap_or_else(|| panic!("no URL: {first:?}"))
        .to_string();
    let rest = url.strip_prefix("http://").unwrap();
    let (host, login) = rest.split_at(rest.find('/').unwrap());
    let (head, _) = ui_request(host, "GET", login, &[], "");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie: {head}"))
        .to_string();
    let (_, form) = ui_request(host, "GET", "/seal", &[("Cookie", &cookie)], "");
    assert!(form.contains("sealed-secrets-controller"), "{form}");
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let origin = format!("http://{host}");
    let body = format!(
        "csrf={csrf}&name=db&namespace=shop&scope=strict&key=password&value=hunter2-from-the-form"
    );
    let (head, page) = ui_request(
        host,
        "POST",
        "/seal",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{page}");
    assert!(
        !page.contains("hunter2-from-the-form"),
        "the plaintext came back"
    );
    let yaml = page
        .split("<textarea id=\"sealed-yaml\"")
        .nth(1)
        .and_then(|r| r.split_once('>'))
        .and_then(|(_, r)| r.split("</textarea>").next())
        .unwrap()
        .replace("&#34;", "\"")
        .replace("&#39;", "'");
    let secrets = fx.unseal(yaml.as_bytes());
    assert_eq!(decoded(&secrets[0], "password"), "hunter2-from-the-form");
    assert!(
        fx.api
            .paths()
            .iter()
            .any(|p| p == &format!("GET {DEFAULT_PROXY}/v1/cert.pem")),
        "{:?}",
        fx.api.paths()
    );
}
