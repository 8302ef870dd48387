//! Runs the real `kubeseal` binary in temporary directories: every offline mode, and every
//! upstream error text that applies offline. Each failure must print `error: ...` on stderr,
//! exit non-zero and leave no output file behind.

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    net::TcpListener,
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::OnceLock,
};

use base64::Engine;
use sealed_secrets_core::{
    crypto::Decrypter,
    documents::{parse_documents, parse_local_documents},
    keys::{GeneratedKeyPair, generate_key_pair},
    scope::Scope,
};
use serde_json::{Value, json};

const STRICT_SECRET: &str = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"shop","labels":{"app":"shop"}},"type":"Opaque","data":{"password":"aHVudGVyMg=="},"stringData":{"user":"admin"}}"#;

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

/// A temporary working directory with a key pair, a certificate and an empty environment.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let fixture = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let pair = key_pair();
        fixture.write("cert.pem", pair.cert_pem.as_bytes());
        fixture.write("key.pem", pair.key.to_pkcs1_pem().unwrap().as_bytes());
        fixture.write("secret.json", STRICT_SECRET.as_bytes());
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubeseal"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", self.path("no-kubeconfig"));
        cmd
    }

    fn run_env(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
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
        // The binary may exit before reading stdin (argument errors): ignore broken pipes.
        let _ = pipe.write_all(stdin);
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_env(args, stdin, &[])
    }

    /// Runs, expects success, returns stdout.
    fn ok(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "kubeseal {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs, expects `error: <message containing needle>` and exit 1; returns stderr.
    fn fails(&self, args: &[&str], stdin: &[u8], needle: &str) -> String {
        let out = self.run(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "kubeseal {args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "kubeseal {args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "kubeseal {args:?}: {stderr:?} lacks {needle:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

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
}

fn data(secret: &Value) -> BTreeMap<String, String> {
    secret["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            (k.clone(), String::from_utf8(bytes).unwrap())
        })
        .collect()
}

fn expected_data() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("password".into(), "hunter2".into()),
        ("user".into(), "admin".into()),
    ])
}

#[test]
fn version_and_help() {
    let fx = Fixture::new();
    let version = String::from_utf8(fx.ok(&["--version"], b"")).unwrap();
    assert!(version.starts_with("kubeseal version: v"), "{version}");
    let help = String::from_utf8(fx.ok(&["--help"], b"")).unwrap();
    for flag in [
        "--cert",
        "--raw",
        "--merge-into",
        "--recovery-unseal",
        "--scope",
        "--sealed-secret-file",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    let unknown = fx.run(&["--no-such-flag"], b"");
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn seals_json_and_yaml_from_stdin_and_file_and_opens_again() {
    let fx = Fixture::new();
    for (args, stdin) in [
        (vec!["--cert", "cert.pem"], STRICT_SECRET.as_bytes()),
        (
            vec!["--cert", "cert.pem", "-o", "yaml"],
            STRICT_SECRET.as_bytes(),
        ),
        (
            vec!["--cert", "cert.pem", "-o", "YAML", "-f", "secret.json"],
            &b""[..],
        ),
    ] {
        let out = fx.ok(&args, stdin);
        let docs = parse_documents(&out).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["kind"], "SealedSecret");
        assert_eq!(docs[0]["metadata"]["namespace"], "shop");
        assert_eq!(
            docs[0]["spec"]["template"]["metadata"]["labels"]["app"],
            "shop"
        );
        if args.contains(&"-o") {
            assert!(out.starts_with(b"---\napiVersion: bitnami.com/v1alpha1\n"));
        } else {
            assert!(out.starts_with(b"{\n  \"kind\": \"SealedSecret\",\n"));
        }
        let opened = fx.unseal(&out);
        assert_eq!(data(&opened[0]), expected_data());
        assert_eq!(
            opened[0]["metadata"]["ownerReferences"][0]["kind"],
            "SealedSecret"
        );
    }
}

#[test]
fn every_scope_binds_what_it_should() {
    let fx = Fixture::new();
    let key = &key_pair().key;
    for scope in ["strict", "namespace-wide", "cluster-wide"] {
        let out = fx.ok(
            &["--cert", "cert.pem", "--scope", scope],
            STRICT_SECRET.as_bytes(),
        );
        let doc = &parse_documents(&out).unwrap()[0];
        let parsed: Scope = scope.parse().unwrap();
        let annotations = &doc["metadata"]["annotations"];
        match parsed.annotation() {
            Some(a) => assert_eq!(annotations[a], "true"),
            None => assert!(annotations.is_null()),
        }
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(doc["spec"]["encryptedData"]["user"].as_str().unwrap())
            .unwrap();
        assert!(
            key.decrypt(&ciphertext, &parsed.label("shop", "db"))
                .is_ok(),
            "{scope}"
        );
        let moved_ok = key
            .decrypt(&ciphertext, &parsed.label("other", "renamed"))
            .is_ok();
        assert_eq!(moved_ok, parsed == Scope::ClusterWide, "{scope}");
    }
}

#[test]
fn multi_document_input_gives_one_sealed_secret_each() {
    let fx = Fixture::new();
    let input = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: a\nstringData:\n  k: one\n---\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\nstringData:\n  k: two\n";
    let yaml = fx.ok(
        &["--cert", "cert.pem", "-o", "yaml", "-n", "ns1"],
        input.as_bytes(),
    );
    assert_eq!(parse_documents(&yaml).unwrap().len(), 2);
    let json = fx.ok(&["--cert", "cert.pem", "-n", "ns1"], input.as_bytes());
    let docs = parse_documents(&json).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1]["metadata"]["name"], "b");
    assert_eq!(docs[1]["metadata"]["namespace"], "ns1");
}

/// Upstream seals a migration's 10,000 Secrets in one call; a local stream is bounded by
/// memory, not by the YAML parser's default count of 1,024 documents.
#[test]
fn ten_thousand_documents_seal_in_one_call_and_lint_reads_them() {
    let fx = Fixture::new();
    let input: String = (0..10_000)
        .map(|i| format!("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i}\nstringData:\n  k: v{i}\n"))
        .collect();
    fx.write("many.yaml", input.as_bytes());
    fx.ok(
        &[
            "--cert",
            "cert.pem",
            "-n",
            "ns1",
            "-f",
            "many.yaml",
            "-w",
            "sealed.yaml",
        ],
        b"",
    );
    let sealed = fs::read(fx.path("sealed.yaml")).unwrap();
    let docs = parse_local_documents(&sealed).unwrap();
    assert_eq!(docs.len(), 10_000);
    assert_eq!(docs[9_999]["metadata"]["name"], "s9999");
    let lint = fx.run(&["lint", "sealed.yaml"], b"");
    let stderr = String::from_utf8_lossy(&lint.stderr);
    assert!(lint.status.success(), "{stderr}");
}

/// A stream whose aliases expand beyond any real file is refused with a sentence naming the
/// input, the limit and what to do; nothing is written.
#[test]
fn alias_bombs_are_refused_with_a_sentence() {
    let fx = Fixture::new();
    let mut text = String::from("a0: &a0 [x, x]\n");
    for i in 1..40 {
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
    }
    fx.write("bomb.yaml", text.as_bytes());
    let stderr = fx.fails(
        &["--cert", "cert.pem", "-f", "bomb.yaml", "-w", "out.yaml"],
        b"",
        "cannot read bomb.yaml: the input holds more than",
    );
    assert!(stderr.contains("expand YAML aliases"), "{stderr}");
    assert!(!fx.path("out.yaml").exists());
}

#[test]
fn namespace_comes_from_flag_then_kubeconfig_context_then_default() {
    let fx = Fixture::new();
    let unnamespaced = r#"{"metadata":{"name":"x"},"stringData":{"k":"v"}}"#;
    let ns_of = |out: Vec<u8>| parse_documents(&out).unwrap()[0]["metadata"]["namespace"].clone();
    assert_eq!(
        ns_of(fx.ok(&["--cert", "cert.pem"], unnamespaced.as_bytes())),
        "default"
    );
    fx.write(
        "kc1",
        b"apiVersion: v1\nkind: Config\ncurrent-context: dev\ncontexts:\n- name: dev\n  context:\n    cluster: c\n    namespace: team-a\n- name: ops\n  context:\n    namespace: ops-ns\n",
    );
    fx.write(
        "kc2",
        b"apiVersion: v1\nkind: Config\ncurrent-context: other\n",
    );
    let kubeconfig = format!("{}:{}", fx.path("kc2").display(), fx.path("kc1").display());
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    // kc2 sets the current context first ("other", which has no namespace) → default.
    let out = fx.run_env(&["--cert", "cert.pem"], unnamespaced.as_bytes(), &env);
    assert_eq!(ns_of(out.stdout), "default");
    let out = fx.run_env(
        &["--cert", "cert.pem", "--context", "ops"],
        unnamespaced.as_bytes(),
        &env,
    );
    assert_eq!(ns_of(out.stdout), "ops-ns");
    let out = fx.ok(
        &["--cert", "cert.pem", "--kubeconfig", "kc1"],
        unnamespaced.as_bytes(),
    );
    assert_eq!(ns_of(out), "team-a");
    let out = fx.ok(
        &["--cert", "cert.pem", "--kubeconfig", "kc1", "-n", "flag-ns"],
        unnamespaced.as_bytes(),
    );
    assert_eq!(ns_of(out), "flag-ns");
    let out = fx.run_env(
        &["--cert", "cert.pem"],
        unnamespaced.as_bytes(),
        &[("SEALED_SECRETS_NAMESPACE", "env-ns")],
    );
    assert_eq!(ns_of(out.stdout), "env-ns");
    fx.fails(
        &["--cert", "cert.pem", "-n", "other"],
        STRICT_SECRET.as_bytes(),
        "namespace mismatch: input secret is in namespace \"shop\" but \"other\" was specified",
    );
    fx.fails(
        &["--cert", "cert.pem", "--kubeconfig", "missing-kc"],
        unnamespaced.as_bytes(),
        "missing-kc",
    );
}

#[test]
fn cert_from_env_file_url_and_http() {
    let fx = Fixture::new();
    let cert_path = fx.path("cert.pem");
    let out = fx.run_env(
        &[],
        STRICT_SECRET.as_bytes(),
        &[("SEALED_SECRETS_CERT", cert_path.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file_url = format!("file://{}", cert_path.display());
    fx.ok(&["--cert", &file_url], STRICT_SECRET.as_bytes());

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pem = key_pair().cert_pem.clone();
    let server = std::thread::spawn(move || {
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let response = if i == 0 {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{pem}",
                    pem.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    let url = format!("http://127.0.0.1:{port}/v1/cert.pem");
    let fetched = fx.ok(&["--fetch-cert", "--cert", &url], b"");
    assert_eq!(fetched, key_pair().cert_pem.as_bytes());
    fx.fails(
        &["--cert", &url],
        STRICT_SECRET.as_bytes(),
        &format!("cannot fetch \"{url}\": 404 Not Found"),
    );
    server.join().unwrap();
    fx.fails(
        &["--cert", "ftp://example.invalid/c.pem"],
        STRICT_SECRET.as_bytes(),
        "unsupported protocol scheme \"ftp\"",
    );
}

#[test]
fn fetch_cert_copies_the_file_verbatim() {
    let fx = Fixture::new();
    assert_eq!(
        fx.ok(&["--fetch-cert", "--cert", "cert.pem"], b""),
        key_pair().cert_pem.as_bytes()
    );
    fx.fails(&["--fetch-cert"], b"", "cannot fetch certificate");
}

#[test]
fn output_file_is_atomic_and_yaml_by_extension() {
    let fx = Fixture::new();
    fx.ok(
        &["--cert", "cert.pem", "-w", "out.yaml"],
        STRICT_SECRET.as_bytes(),
    );
    let written = fs::read(fx.path("out.yaml")).unwrap();
    assert!(written.starts_with(b"---\napiVersion: bitnami.com/v1alpha1"));
    fx.ok(
        &["--cert", "cert.pem", "-w", "out.json"],
        STRICT_SECRET.as_bytes(),
    );
    assert!(fs::read(fx.path("out.json")).unwrap().starts_with(b"{"));

    // A failing run leaves an existing file untouched and creates no new one.
    fx.fails(
        &["--cert", "cert.pem", "-w", "out.yaml"],
        br#"{"metadata":{},"stringData":{"k":"v"}}"#,
        "missing metadata.name in input Secret",
    );
    assert_eq!(fs::read(fx.path("out.yaml")).unwrap(), written);
    fx.fails(
        &["--cert", "cert.pem", "-w", "new.yaml"],
        b"",
        "no secrets found",
    );
    assert!(!fx.path("new.yaml").exists());
    let leftovers: Vec<_> = fs::read_dir(fx.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kubeseal-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn raw_mode_matrix_and_errors() {
    let fx = Fixture::new();
    let key = &key_pair().key;
    fx.write("value.bin", &[0, 1, 2, 255]);
    let cases: [(&[&str], Scope, &str, &str); 3] = [
        (
            &["--scope", "strict", "-n", "ns", "--name", "n"],
            Scope::Strict,
            "ns",
            "n",
        ),
        (
            &["--scope", "namespace-wide", "-n", "ns"],
            Scope::NamespaceWide,
            "ns",
            "",
        ),
        (&["--scope", "cluster-wide"], Scope::ClusterWide, "", ""),
    ];
    for (extra, scope, ns, name) in cases {
        let mut args = vec!["--raw", "--cert", "cert.pem", "--from-file", "value.bin"];
        args.extend_from_slice(extra);
        let out = fx.ok(&args, b"");
        assert!(!out.ends_with(b"\n"), "--raw prints no newline");
        let ct = base64::engine::general_purpose::STANDARD
            .decode(&out)
            .unwrap();
        assert_eq!(
            &key.decrypt(&ct, &scope.label(ns, name)).unwrap()[..],
            &[0, 1, 2, 255]
        );
    }
    let from_stdin = fx.ok(
        &["--raw", "--cert", "cert.pem", "--scope", "cluster-wide"],
        b"stdin value",
    );
    let ct = base64::engine::general_purpose::STANDARD
        .decode(&from_stdin)
        .unwrap();
    assert_eq!(&key.decrypt(&ct, b"").unwrap()[..], b"stdin value");
    let keyed = fx.ok(
        &[
            "--raw",
            "--cert",
            "cert.pem",
            "--scope",
            "cluster-wide",
            "--from-file",
            "k=value.bin",
        ],
        b"",
    );
    assert!(!keyed.is_empty());

    fx.fails(
        &["--raw", "--cert", "cert.pem", "-n", "ns"],
        b"v",
        "must provide the --name flag with --raw and --scope strict",
    );
    fx.fails(
        &[
            "--raw",
            "--cert",
            "cert.pem",
            "--scope",
            "cluster-wide",
            "--from-file",
            "a",
            "--from-file",
            "b",
        ],
        b"",
        "must provide only one --from-file when encrypting a single item with --raw",
    );
    fx.fails(
        &["--cert", "cert.pem", "--from-file", "value.bin"],
        b"",
        "--from-file requires --raw",
    );
}

#[test]
fn raw_without_a_namespace_refuses_instead_of_sealing_for_default() {
    let fx = Fixture::new();
    // No -n and no kubeconfig (the fixture's KUBECONFIG names a missing file, HOME has none).
    for (scope, extra) in [
        ("strict", &["--name", "db"][..]),
        ("namespace-wide", &[][..]),
    ] {
        let mut args = vec!["--raw", "--cert", "cert.pem", "--scope", scope];
        args.extend_from_slice(extra);
        let out = fx.run(&args, b"hunter2");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{scope}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!("error: must provide the --namespace flag with --raw and --scope {scope}"),
        );
        assert!(out.stdout.is_empty(), "{scope}: nothing is sealed");
    }
    // A kubeconfig context without a namespace names none either.
    fx.write(
        "kc",
        b"apiVersion: v1\nkind: Config\ncurrent-context: dev\ncontexts:\n- name: dev\n  context:\n    cluster: c\n",
    );
    fx.fails(
        &[
            "--raw",
            "--cert",
            "cert.pem",
            "--kubeconfig",
            "kc",
            "--name",
            "db",
        ],
        b"hunter2",
        "must provide the --namespace flag with --raw and --scope strict",
    );
    // The context's namespace counts as given, as upstream's clientConfig.Namespace() does.
    fx.write(
        "kc-ns",
        b"apiVersion: v1\nkind: Config\ncurrent-context: dev\ncontexts:\n- name: dev\n  context:\n    namespace: team-a\n",
    );
    let out = fx.ok(
        &[
            "--raw",
            "--cert",
            "cert.pem",
            "--kubeconfig",
            "kc-ns",
            "--name",
            "db",
        ],
        b"hunter2",
    );
    let ct = base64::engine::general_purpose::STANDARD
        .decode(&out)
        .unwrap();
    assert_eq!(
        &key_pair()
            .key
            .decrypt(&ct, &Scope::Strict.label("team-a", "db"))
            .unwrap()[..],
        b"hunter2"
    );
    // Cluster-wide values need no namespace.
    fx.ok(
        &["--raw", "--cert", "cert.pem", "--scope", "cluster-wide"],
        b"hunter2",
    );
}

#[test]
fn merge_into_keeps_format_and_scope_and_creates_missing_maps() {
    let fx = Fixture::new();
    let original = fx.ok(
        &[
            "--cert",
            "cert.pem",
            "-o",
            "yaml",
            "--scope",
            "namespace-wide",
        ],
        br#"{"metadata":{"name":"db","namespace":"shop"},"stringData":{"old":"kept"}}"#,
    );
    fx.write("sealed.yaml", &original);
    let addition = r#"{"metadata":{"name":"ignored","labels":{"new":"label"},"annotations":{"a":"b"}},"stringData":{"added":"value","old":"replaced"}}"#;
    let stdout = fx.ok(
        &["--cert", "cert.pem", "--merge-into", "sealed.yaml"],
        addition.as_bytes(),
    );
    assert!(stdout.is_empty());
    let merged = fs::read(fx.path("sealed.yaml")).unwrap();
    assert!(
        merged.starts_with(b"---\n"),
        "stays YAML: {}",
        String::from_utf8_lossy(&merged)
    );
    let doc = &parse_documents(&merged).unwrap()[0];
    assert_eq!(
        doc["spec"]["template"]["metadata"]["labels"]["new"],
        "label"
    );
    assert_eq!(doc["metadata"]["name"], "db");
    let opened = fx.unseal(&merged);
    assert_eq!(
        data(&opened[0]),
        BTreeMap::from([
            ("added".into(), "value".into()),
            ("old".into(), "replaced".into())
        ])
    );
    fx.fails(
        &[
            "--cert",
            "cert.pem",
            "--merge-into",
            "sealed.yaml",
            "--scope",
            "cluster-wide",
        ],
        addition.as_bytes(),
        "does not match the scope",
    );
    assert_eq!(fs::read(fx.path("sealed.yaml")).unwrap(), merged);
    fx.ok(
        &[
            "--cert",
            "cert.pem",
            "--merge-into",
            "sealed.yaml",
            "-o",
            "json",
        ],
        addition.as_bytes(),
    );
    assert!(fs::read(fx.path("sealed.yaml")).unwrap().starts_with(b"{"));
}

#[test]
fn recovery_unseal_reads_key_lists_secrets_and_aggregates_errors() {
    let fx = Fixture::new();
    let sealed = fx.ok(
        &["--cert", "cert.pem", "-o", "yaml"],
        STRICT_SECRET.as_bytes(),
    );
    fx.write("sealed.yaml", &sealed);
    let other = generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(1),
    )
    .unwrap();
    fx.write("other.pem", other.key.to_pkcs1_pem().unwrap().as_bytes());
    let tls_key = base64::engine::general_purpose::STANDARD
        .encode(key_pair().key.to_pkcs1_pem().unwrap().as_bytes());
    fx.write(
        "backup.yaml",
        format!("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: sealed-secrets-keyabcde\n  type: kubernetes.io/tls\n  data:\n    tls.key: {tls_key}\n").as_bytes(),
    );
    for keys in [
        vec!["--recovery-private-key", "other.pem,key.pem"],
        vec![
            "--recovery-private-key",
            "other.pem",
            "--recovery-private-key",
            "key.pem",
        ],
        vec!["--recovery-private-key", "backup.yaml"],
    ] {
        let mut args = vec!["--recovery-unseal", "-f", "sealed.yaml", "-o", "yaml"];
        args.extend(keys);
        let out = fx.ok(&args, b"");
        assert_eq!(data(&parse_documents(&out).unwrap()[0]), expected_data());
    }
    fx.fails(
        &["--recovery-unseal", "--recovery-private-key", "other.pem"],
        &sealed,
        "no key could decrypt secret (password, user)",
    );
    fx.fails(
        &["--recovery-unseal"],
        &sealed,
        "no key could decrypt secret (",
    );
    fx.write(
        "not-a-key.yaml",
        b"apiVersion: v1\nkind: Secret\ndata:\n  tls.crt: eA==\n",
    );
    fx.fails(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            "not-a-key.yaml",
        ],
        &sealed,
        "secret must contain a 'tls.data' key",
    );
    fx.fails(
        &["--recovery-unseal", "--recovery-private-key", "key.pem"],
        STRICT_SECRET.as_bytes(),
        "unexpected resource type",
    );
}

#[test]
fn cluster_modes_without_a_kubeconfig_say_what_is_missing() {
    let fx = Fixture::new();
    // The fixture's KUBECONFIG names a file that does not exist and HOME has no ~/.kube: the
    // modes that need the controller say so, and how to get on without it.
    for args in [
        &["--validate"][..],
        &["--re-encrypt"],
        &["--fetch-cert"],
        &[],
    ] {
        let stderr = fx.fails(
            args,
            STRICT_SECRET.as_bytes(),
            "invalid configuration: no configuration has been provided",
        );
        assert!(
            stderr.contains("no --kubeconfig") && stderr.contains("--cert"),
            "{stderr}"
        );
    }
    fx.fails(
        &["--fetch-cert", "--kubeconfig", "missing.yaml"],
        b"",
        "stat missing.yaml: no such file or directory",
    );
    // A server nobody listens on: upstream's wrapping of the transport error.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let stderr = fx.fails(
        &["--validate", "--server", &server],
        b"",
        &format!(
            "cannot get sealed secret service: Get \"{server}/api/v1/namespaces/kube-system/services/sealed-secrets-controller\""
        ),
    );
    assert!(
        stderr.contains("Please, use the flag --controller-name"),
        "{stderr}"
    );
    // Offline modes still need nothing.
    fx.ok(&["--cert", "cert.pem"], STRICT_SECRET.as_bytes());
}

#[test]
fn one_kubeconfig_reader_for_offline_and_online_modes() {
    let fx = Fixture::new();
    // A broken kubeconfig is named, and its content (a token here) never quoted.
    fx.write(
        "broken",
        b"users:\n- name: u\n  user: {token: s3cr3t-t0ken\n",
    );
    for args in [
        &["--cert", "cert.pem", "--kubeconfig", "broken"][..],
        &["--fetch-cert", "--kubeconfig", "broken"],
    ] {
        let stderr = fx.fails(
            args,
            STRICT_SECRET.as_bytes(),
            "error loading config file \"broken\"",
        );
        assert!(!stderr.contains("s3cr3t"), "{stderr}");
    }
    // A context that only sets a namespace (no cluster) is read by both, as by kubectl: the
    // offline seal takes its namespace, the online mode gets as far as the server.
    fx.write(
        "ns-only",
        b"current-context: d\ncontexts:\n- {name: d, context: {namespace: team-c}}\n",
    );
    let out = fx.ok(
        &["--cert", "cert.pem", "--kubeconfig", "ns-only"],
        br#"{"metadata":{"name":"x"},"stringData":{"k":"v"}}"#,
    );
    let docs = parse_documents(&out).unwrap();
    assert_eq!(docs[0]["metadata"]["namespace"], "team-c");
    fx.fails(
        &["--fetch-cert", "--kubeconfig", "ns-only"],
        b"",
        "invalid configuration: no server found for cluster \"\" (context \"d\")",
    );
}

#[test]
fn bad_input_never_panics_and_writes_nothing() {
    let fx = Fixture::new();
    let expired = generate_key_pair(
        2048,
        "",
        "2020-01-01T00:00:00Z".parse().unwrap(),
        jiff::SignedDuration::from_hours(24),
    )
    .unwrap();
    fx.write("expired.pem", expired.cert_pem.as_bytes());
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_cert = rcgen::CertificateParams::new(vec![])
        .unwrap()
        .self_signed(&ec)
        .unwrap();
    fx.write("ec-cert.pem", ec_cert.pem().as_bytes());
    fx.write("ec-key.pem", ec.serialize_pem().as_bytes());
    fx.write(
        "broken.pem",
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    fs::create_dir(fx.path("a-directory")).unwrap();
    let garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();

    let cases: Vec<(Vec<&str>, Vec<u8>, &str)> = vec![
        (
            vec!["--cert", "cert.pem"],
            b"".to_vec(),
            "no secrets found. Ensure the input is valid and UTF-8 encoded",
        ),
        (
            vec!["--cert", "cert.pem"],
            garbage.clone(),
            "no secrets found",
        ),
        (
            vec!["--cert", "cert.pem"],
            b"{\"metadata\": {".to_vec(),
            "invalid JSON",
        ),
        (
            vec!["--cert", "cert.pem"],
            b"a: [1, 2\n".to_vec(),
            "invalid YAML",
        ),
        (
            vec!["--cert", "cert.pem"],
            br#"{"metadata":{"namespace":"x"},"data":{"k":"dg=="}}"#.to_vec(),
            "missing metadata.name in input Secret",
        ),
        (
            vec!["--cert", "cert.pem"],
            br#"{"metadata":{"name":"x"}}"#.to_vec(),
            "secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used",
        ),
        (
            vec!["--cert", "cert.pem"],
            br#"{"metadata":{"name":"x"},"data":{"k":"%%%"}}"#.to_vec(),
            "invalid Secret",
        ),
        (
            vec!["--cert", "broken.pem"],
            STRICT_SECRET.as_bytes().to_vec(),
            "data does not contain any valid RSA or ECDSA certificates",
        ),
        (
            vec!["--cert", "key.pem"],
            STRICT_SECRET.as_bytes().to_vec(),
            "data does not contain any valid RSA or ECDSA certificates",
        ),
        (
            vec!["--cert", "expired.pem"],
            STRICT_SECRET.as_bytes().to_vec(),
            "failed to encrypt using an expired certificate on January 2, 2020",
        ),
        (
            vec!["--cert", "ec-cert.pem"],
            STRICT_SECRET.as_bytes().to_vec(),
            "expected RSA public key but found *ecdsa.PublicKey",
        ),
        (
            vec!["--cert", "missing.pem"],
            STRICT_SECRET.as_bytes().to_vec(),
            "open missing.pem: no such file or directory",
        ),
        (
            vec!["--cert", "a-directory"],
            STRICT_SECRET.as_bytes().to_vec(),
            "a-directory: is a directory",
        ),
        (
            vec!["--cert", "cert.pem", "-f", "a-directory"],
            b"".to_vec(),
            "Could not read file specified with --secret-file",
        ),
        (
            vec!["--cert", "cert.pem", "-f", "missing.json"],
            b"".to_vec(),
            "Could not read file specified with --secret-file",
        ),
        (
            vec!["--cert", "cert.pem", "-o", "xml"],
            STRICT_SECRET.as_bytes().to_vec(),
            "unsupported output format: xml",
        ),
        (
            vec!["--recovery-unseal", "--recovery-private-key", "ec-key.pem"],
            b"{}".to_vec(),
            "unexpected private key type *ecdsa.PrivateKey",
        ),
        (
            vec!["--recovery-unseal", "--recovery-private-key", "cert.pem"],
            b"{}".to_vec(),
            "data does not contain a valid RSA or ECDSA private key",
        ),
        (
            vec!["--recovery-unseal", "--recovery-private-key", "a-directory"],
            b"{}".to_vec(),
            "is a directory",
        ),
    ];
    for (mut args, stdin, needle) in cases {
        args.extend(["-w", "out.yaml"]);
        fx.fails(&args, &stdin, needle);
        assert!(!fx.path("out.yaml").exists(), "{args:?} wrote output");
    }
    // --allow-empty-data turns the empty-data error into a valid SealedSecret.
    let out = fx.ok(
        &["--cert", "cert.pem", "--allow-empty-data"],
        br#"{"metadata":{"name":"x"}}"#,
    );
    assert_eq!(
        parse_documents(&out).unwrap()[0]["spec"]["encryptedData"],
        json!({})
    );
}

#[test]
fn positional_arguments_are_ignored_like_upstream() {
    let fx = Fixture::new();
    let out = fx.ok(
        &["--cert", "cert.pem", "secret.json"],
        STRICT_SECRET.as_bytes(),
    );
    assert_eq!(parse_documents(&out).unwrap().len(), 1);
}

#[test]
fn offline_re_encrypt_moves_a_repository_to_a_new_key() {
    let fx = Fixture::new();
    let input = r#"{"metadata":{"name":"db","namespace":"shop","labels":{"team":"a"},
        "annotations":{"sealedsecrets.bitnami.com/namespace-wide":"true"}},"stringData":{"password":"hunter2"}}"#;
    let old = fx.ok(&["--cert", "cert.pem", "-o", "yaml"], input.as_bytes());
    fx.write("repo.yaml", &[old.clone(), old.clone()].concat());

    let new_pair = generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(1),
    )
    .unwrap();
    fx.write("new-cert.pem", new_pair.cert_pem.as_bytes());
    fx.write(
        "new-key.pem",
        new_pair.key.to_pkcs1_pem().unwrap().as_bytes(),
    );

    // -f without -w rewrites the file in place, keeping its format.
    let stdout = fx.ok(
        &[
            "--re-encrypt",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            "new-cert.pem",
            "-f",
            "repo.yaml",
        ],
        b"",
    );
    assert!(stdout.is_empty());
    let rotated = fs::read(fx.path("repo.yaml")).unwrap();
    assert!(rotated.starts_with(b"---\n"));
    let docs = parse_documents(&rotated).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[0]["spec"]["template"]["metadata"]["labels"]["team"],
        "a"
    );
    assert_eq!(
        docs[0]["metadata"]["annotations"]["sealedsecrets.bitnami.com/namespace-wide"],
        "true"
    );
    assert_ne!(
        docs[0]["spec"]["encryptedData"]["password"],
        parse_documents(&old).unwrap()[0]["spec"]["encryptedData"]["password"]
    );

    // Opens with the new key only.
    let opened = fx.ok(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            "new-key.pem",
            "-f",
            "repo.yaml",
        ],
        b"",
    );
    assert_eq!(
        data(&parse_documents(&opened).unwrap()[0])["password"],
        "hunter2"
    );
    fx.fails(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            "key.pem",
            "-f",
            "repo.yaml",
        ],
        b"",
        "no key could decrypt secret (password)",
    );

    // With -w the input is left alone; a wrong key fails without writing anything.
    fx.fails(
        &[
            "--re-encrypt",
            "--recovery-private-key",
            "key.pem",
            "--cert",
            "new-cert.pem",
            "-f",
            "repo.yaml",
            "-w",
            "out.yaml",
        ],
        b"",
        "cannot re-encrypt secret \"db\"",
    );
    assert!(!fx.path("out.yaml").exists());
    assert_eq!(fs::read(fx.path("repo.yaml")).unwrap(), rotated);
}
