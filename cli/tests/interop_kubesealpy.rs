//! Interop test: what OUR `kubeseal` seals, an independent implementation can open.
//!
//! The independent implementation is `kubesealpy` 1.0.1 (PyPI, MIT), a Python
//! library written without our code. `tests/interop_py/helper.py` generates a
//! throwaway RSA key pair (PKCS#1 key + self-signed certificate) and opens
//! SealedSecrets with kubesealpy's `Unsealer`, taking the namespace, the name
//! and the scope from each SealedSecret's own metadata, exactly as the upstream
//! controller does.
//!
//! This test seals a Secret (ASCII, all 256 byte values, an empty value,
//! Unicode, multi-line text and a `stringData` item) with our `kubeseal
//! --cert` in every scope (strict, namespace-wide, cluster-wide), as JSON and as
//! YAML, from `-f` and from stdin, plus `--raw` values in every scope, and checks
//! that kubesealpy recovers every plaintext byte for byte. It also checks that
//! the scope really is bound into the ciphertext (the OAEP label): a strict
//! SealedSecret that is renamed or moved, or a namespace-wide one that is moved,
//! must NOT open, while a renamed namespace-wide one and a moved cluster-wide
//! one must.
//!
//! kubesealpy is installed with pip into a venv cached at
//! `target/interop-venv`. If PyPI cannot be reached the test prints one
//! `skipping kubesealpy interop: PyPI unreachable (...)` line and passes; any
//! other failure fails it. No kubeconfig is read: `KUBECONFIG` points at a
//! missing file and `HOME` at the temporary directory.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// The independent implementation, pinned.
const KUBESEALPY_REQ: &str = "kubesealpy==1.0.1";
/// Import check that a (cached) venv has what the helper needs.
const VENV_CHECK: &str = "import importlib.metadata as m, cryptography, yaml, kubesealpy; \
                          assert m.version('kubesealpy') == '1.0.1', m.version('kubesealpy')";

const NAME: &str = "interop-secret";
const NAMESPACE: &str = "interop-ns";
const SCOPES: [&str; 3] = ["strict", "namespace-wide", "cluster-wide"];
const ANN_NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";
const ANN_CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";

const PIP_TIMEOUT: Duration = Duration::from_secs(300);
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// `{"<namespace>/<name>": {"<key>": "<base64 plaintext>"}}`, as helper.py prints it.
type Unsealed = BTreeMap<String, BTreeMap<String, String>>;

// ------------------------------------------------------------------ processes

enum RunError {
    Spawn(String),
    Timeout(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(s) | RunError::Timeout(s) => f.write_str(s),
        }
    }
}

/// Runs `cmd` to completion with `input` on stdin, killing it after `timeout`.
fn run(cmd: &mut Command, input: Option<Vec<u8>>, timeout: Duration) -> Result<Output, RunError> {
    let desc = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| RunError::Spawn(format!("cannot start {desc}: {e}")))?;
    let writer = child.stdin.take().map(|mut stdin| {
        let data = input.unwrap_or_default();
        std::thread::spawn(move || {
            // A child that exits without reading all of stdin is not our error.
            let _ = stdin.write_all(&data);
        })
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Timeout(format!(
                    "timed out after {}s: {desc}",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(RunError::Spawn(format!("waiting for {desc}: {e}"))),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ----------------------------------------------------------------------- venv

fn venv_is_ready(python: &Path) -> bool {
    python.exists()
        && run(
            Command::new(python).args(["-c", VENV_CHECK]),
            None,
            STEP_TIMEOUT,
        )
        .is_ok_and(|o| o.status.success())
}

/// Why a failed `pip install` means "PyPI unreachable", if it does.
fn unreachable_reason(pip_output: &str) -> Option<String> {
    // Most specific first: the reason shown is the text from the sign on.
    const NETWORK_SIGNS: &[&str] = &[
        "Cannot connect to proxy",
        "Failed to establish a new connection",
        "Temporary failure in name resolution",
        "Name or service not known",
        "nodename nor servname",
        "Network is unreachable",
        "No route to host",
        "Connection refused",
        "Connection reset",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "timed out",
        "ProxyError",
        "SSLError",
        "NewConnectionError",
        "connection broken by",
        "Max retries exceeded",
        "Could not fetch URL",
    ];
    let lines: Vec<&str> = pip_output.lines().map(str::trim).collect();
    let from_sign = NETWORK_SIGNS.iter().find_map(|sign| {
        lines.iter().find_map(|line| {
            let at = line.find(sign)?;
            let rest = &line[at..];
            let end = rest.find(['\'', '"']).unwrap_or(rest.len());
            Some(
                rest[..end]
                    .trim_end_matches([')', ' ', ',', ':'])
                    .to_owned(),
            )
        })
    });
    // Else: the index listed no kubesealpy at all, so it was not reached
    // (kubesealpy 1.0.1 is on PyPI). A listing without 1.0.1 is a real failure.
    let reason = from_sign.or_else(|| {
        lines
            .iter()
            .find(|l| l.contains("kubesealpy") && l.contains("(from versions: none)"))
            .map(|l| (*l).to_owned())
    })?;
    Some(reason.chars().take(200).collect())
}

/// The venv's python with kubesealpy installed (cached under
/// `target/interop-venv`), or `Err(reason)` when PyPI cannot be reached.
/// Panics on any other failure.
fn kubesealpy_python() -> Result<PathBuf, String> {
    let tmpdir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmpdir.parent().unwrap_or(tmpdir);
    let venv = target.join("interop-venv");
    let python = venv.join("bin").join("python");
    if venv_is_ready(&python) {
        return Ok(python);
    }

    // Build in a staging dir and rename it into place, so an interrupted run
    // never leaves a half-made venv that looks cached.
    let staging = target.join(format!("interop-venv.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let made = run(
        Command::new("python3").arg("-m").arg("venv").arg(&staging),
        None,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("python3 -m venv: {e} (python3 with venv/ensurepip is required)"));
    assert!(
        made.status.success(),
        "python3 -m venv {} failed ({}):\n{}{}",
        staging.display(),
        made.status,
        lossy(&made.stdout),
        lossy(&made.stderr)
    );
    let staged_python = staging.join("bin").join("python");
    let pip = run(
        Command::new(&staged_python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--retries", "1", "--timeout", "20"])
            .args([KUBESEALPY_REQ, "pyyaml"])
            .env("PIP_NO_INPUT", "1"),
        None,
        PIP_TIMEOUT,
    );
    let pip = match pip {
        Ok(out) => out,
        Err(RunError::Timeout(_)) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(format!(
                "pip install {KUBESEALPY_REQ} did not finish in {}s",
                PIP_TIMEOUT.as_secs()
            ));
        }
        Err(e) => panic!("pip install: {e}"),
    };
    if !pip.status.success() {
        let text = format!("{}\n{}", lossy(&pip.stdout), lossy(&pip.stderr));
        let _ = fs::remove_dir_all(&staging);
        if let Some(reason) = unreachable_reason(&text) {
            return Err(reason);
        }
        panic!(
            "pip install {KUBESEALPY_REQ} pyyaml failed ({}) for a reason other than network:\n{text}",
            pip.status
        );
    }
    assert!(
        venv_is_ready(&staged_python),
        "kubesealpy installed but `{VENV_CHECK}` fails in {}",
        staging.display()
    );
    let _ = fs::remove_dir_all(&venv);
    if let Err(e) = fs::rename(&staging, &venv) {
        // Someone else may have published one meanwhile.
        let _ = fs::remove_dir_all(&staging);
        assert!(
            venv_is_ready(&python),
            "cannot move the venv into {}: {e}",
            venv.display()
        );
    }
    Ok(python)
}

// ------------------------------------------------------------------- fixtures

struct Ctx {
    dir: PathBuf,
    python: PathBuf,
    helper: PathBuf,
    key: PathBuf,
    cert: PathBuf,
}

impl Ctx {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn helper_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.helper)
            .current_dir(&self.dir)
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME");
        cmd
    }

    /// Runs our kubeseal, which must succeed; returns its stdout.
    fn kubeseal(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Vec<u8> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubeseal"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env("KUBECONFIG", self.path("no-such-kubeconfig"))
            .env("HOME", &self.dir)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT");
        // kubeseal reads every flag from SEALED_SECRETS_<FLAG> too: none may leak in.
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("SEALED_SECRETS_") {
                cmd.env_remove(var);
            }
        }
        let out =
            run(&mut cmd, stdin, STEP_TIMEOUT).unwrap_or_else(|e| panic!("kubeseal {args:?}: {e}"));
        assert!(
            out.status.success(),
            "kubeseal {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            lossy(&out.stdout),
            lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "kubeseal {args:?} printed nothing");
        out.stdout
    }

    /// Opens a SealedSecret file with kubesealpy. `Err(stderr)` if it does not open.
    fn unseal(&self, file: &Path) -> Result<Unsealed, String> {
        let out = run(
            self.helper_cmd().arg("unseal").arg(&self.key).arg(file),
            None,
            STEP_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("helper.py unseal: {e}"));
        if !out.status.success() {
            return Err(lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("helper.py printed bad JSON ({e}):\n{}", lossy(&out.stdout))
        }))
    }

    fn must_open(&self, what: &str, file: &Path) -> Unsealed {
        self.unseal(file).unwrap_or_else(|err| {
            panic!(
                "{what}: kubesealpy could not open {}:\n{err}\n--- file ---\n{}",
                file.display(),
                fs::read_to_string(file).unwrap_or_default()
            )
        })
    }

    fn must_not_open(&self, what: &str, file: &Path) {
        match self.unseal(file) {
            Ok(got) => panic!("{what}: kubesealpy opened it, but must not: {got:?}"),
            // Make sure it failed at decryption, not for some unrelated reason.
            Err(err) => assert!(
                err.contains("cannot open encryptedData"),
                "{what}: helper failed, but not at decryption:\n{err}"
            ),
        }
    }
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn ident(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Input Secret and the plaintexts kubesealpy must recover (base64).
fn input_secret() -> (Value, BTreeMap<String, String>) {
    let binary: Vec<u8> = (0..=255u8).collect();
    let data: Vec<(&str, Vec<u8>)> = vec![
        ("ascii", b"hello, kubesealpy! <>&'\"`$HOME \\n".to_vec()),
        ("binary.bin", binary),
        ("empty", Vec::new()),
        (
            "unicode",
            "héllo wörld ✓ — 日本語 🔑 e\u{301}".as_bytes().to_vec(),
        ),
        (
            "multi.line",
            b"line1\nline2\n  indented: yes\n\ttab\n\nlast line without newline".to_vec(),
        ),
    ];
    let string_data = [(
        "from-string-data",
        "stringData value ✓: a: b, #not-a-comment",
    )];

    let mut expected = BTreeMap::new();
    let mut data_json = serde_json::Map::new();
    for (k, v) in &data {
        data_json.insert((*k).to_owned(), Value::String(B64.encode(v)));
        expected.insert((*k).to_owned(), B64.encode(v));
    }
    let mut string_json = serde_json::Map::new();
    for (k, v) in string_data {
        string_json.insert(k.to_owned(), Value::String(v.to_owned()));
        expected.insert(k.to_owned(), B64.encode(v.as_bytes()));
    }
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": NAME, "namespace": NAMESPACE },
        "type": "Opaque",
        "data": data_json,
        "stringData": string_json,
    });
    (secret, expected)
}

fn scope_annotation(scope: &str) -> Option<&'static str> {
    match scope {
        "namespace-wide" => Some(ANN_NAMESPACE_WIDE),
        "cluster-wide" => Some(ANN_CLUSTER_WIDE),
        _ => None,
    }
}

/// Checks the scope annotations on a JSON SealedSecret's metadata.
fn assert_scope_annotations_json(what: &str, sealed: &Value, scope: &str) {
    let anns = &sealed["metadata"]["annotations"];
    for ann in [ANN_NAMESPACE_WIDE, ANN_CLUSTER_WIDE] {
        let want = scope_annotation(scope) == Some(ann);
        let value = anns.get(ann).and_then(Value::as_str);
        if want {
            assert_eq!(value, Some("true"), "{what}: metadata.annotations[{ann}]");
        } else {
            assert!(
                value.is_none() || value == Some("false"),
                "{what}: unexpected metadata.annotations[{ann}] = {value:?}"
            );
        }
    }
}

/// A JSON SealedSecret relocated to `namespace`/`name`.
fn relocated(sealed: &Value, namespace: &str, name: &str) -> Vec<u8> {
    let mut moved = sealed.clone();
    moved["metadata"]["namespace"] = json!(namespace);
    moved["metadata"]["name"] = json!(name);
    serde_json::to_vec_pretty(&moved).expect("serialize")
}

/// Proves the scope is bound into the ciphertext, by kubesealpy's reading of it.
fn check_relocation(
    ctx: &Ctx,
    what: &str,
    sealed: &Value,
    scope: &str,
    expected: &BTreeMap<String, String>,
) {
    let file = ctx.path(&format!("relocated-{scope}.json"));
    let opens = |namespace: &str, name: &str| {
        write(&file, &relocated(sealed, namespace, name));
        let got = ctx.must_open(&format!("{what} moved to {namespace}/{name}"), &file);
        assert_eq!(
            got,
            BTreeMap::from([(ident(namespace, name), expected.clone())])
        );
    };
    let fails = |namespace: &str, name: &str| {
        write(&file, &relocated(sealed, namespace, name));
        ctx.must_not_open(&format!("{what} moved to {namespace}/{name}"), &file);
    };
    match scope {
        "strict" => {
            // The negative check: a strict SealedSecret is bound to its name
            // and its namespace.
            fails(NAMESPACE, "renamed-secret");
            fails("other-ns", NAME);
        }
        "namespace-wide" => {
            opens(NAMESPACE, "renamed-secret");
            fails("other-ns", NAME);
        }
        _ => opens("other-ns", "renamed-secret"),
    }
}

// ----------------------------------------------------------------------- test

#[test]
fn kubesealpy_opens_what_our_kubeseal_seals() {
    let started = Instant::now();
    let python = match kubesealpy_python() {
        Ok(python) => python,
        Err(reason) => {
            println!("skipping kubesealpy interop: PyPI unreachable ({reason})");
            return;
        }
    };
    let venv_ready_at = started.elapsed();

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop_py/helper.py");
    assert!(helper.exists(), "missing {}", helper.display());
    let ctx = Ctx {
        key: dir.join("keys/key.pem"),
        cert: dir.join("keys/cert.pem"),
        dir,
        python,
        helper,
    };

    // Key pair.
    let genkey = run(
        ctx.helper_cmd().arg("genkey").arg(ctx.path("keys")),
        None,
        STEP_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("helper.py genkey: {e}"));
    assert!(
        genkey.status.success(),
        "helper.py genkey failed: {}",
        lossy(&genkey.stderr)
    );
    let cert = ctx.cert.to_str().expect("utf-8 temp path").to_owned();

    // Input Secret.
    let (secret, expected) = input_secret();
    let input = ctx.path("input.json");
    let input_bytes = serde_json::to_vec_pretty(&secret).expect("serialize");
    write(&input, &input_bytes);
    let input_arg = input.to_str().expect("utf-8 temp path").to_owned();
    let want = BTreeMap::from([(ident(NAMESPACE, NAME), expected.clone())]);

    // 1. Whole Secrets: every scope x every output format, from -f.
    for scope in SCOPES {
        for format in ["json", "yaml"] {
            let what = format!("kubeseal --scope {scope} -o {format} -f input.json");
            let out = ctx.kubeseal(
                &[
                    "--cert", &cert, "--scope", scope, "-o", format, "-f", &input_arg,
                ],
                None,
            );
            let file = ctx.path(&format!("sealed-{scope}.{format}"));
            write(&file, &out);
            assert_eq!(ctx.must_open(&what, &file), want, "{what}");

            if format == "json" {
                let sealed: Value = serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("{what}: output is not one JSON object: {e}"));
                assert_eq!(sealed["kind"], "SealedSecret", "{what}");
                assert_scope_annotations_json(&what, &sealed, scope);
                check_relocation(&ctx, &what, &sealed, scope, &expected);
            } else {
                let text = lossy(&out);
                for ann in [ANN_NAMESPACE_WIDE, ANN_CLUSTER_WIDE] {
                    assert_eq!(
                        text.contains(ann),
                        scope_annotation(scope) == Some(ann),
                        "{what}: presence of annotation {ann} in:\n{text}"
                    );
                }
            }
        }
    }

    // 2. Whole Secrets from stdin (strict with the default output format).
    for (scope, format) in [
        ("strict", None),
        ("namespace-wide", Some("yaml")),
        ("cluster-wide", Some("json")),
    ] {
        let mut args = vec!["--cert", cert.as_str(), "--scope", scope];
        if let Some(format) = format {
            args.extend(["-o", format]);
        }
        let what = format!("kubeseal {} < input.json", args[2..].join(" "));
        let out = ctx.kubeseal(&args, Some(input_bytes.clone()));
        let file = ctx.path(&format!("stdin-{scope}.out"));
        write(&file, &out);
        assert_eq!(ctx.must_open(&what, &file), want, "{what}");
    }

    // 3. --raw values, wrapped into SealedSecrets the way users do it.
    let raw_value: Vec<u8> = [&b"raw value \x00\x01\xfe\xff "[..], "✓ 🔑\n".as_bytes()].concat();
    let raw_file = ctx.path("value.bin");
    write(&raw_file, &raw_value);
    let raw_arg = raw_file.to_str().expect("utf-8 temp path").to_owned();
    let raw_expected = BTreeMap::from([("value".to_owned(), B64.encode(&raw_value))]);
    for scope in SCOPES {
        let mut args = vec!["--raw", "--cert", cert.as_str(), "--scope", scope];
        // Where the wrapped SealedSecret is put: strict must stay where it was
        // sealed for; the other scopes are deliberately put elsewhere.
        let (namespace, name) = match scope {
            "strict" => {
                args.extend(["--namespace", NAMESPACE, "--name", NAME]);
                (NAMESPACE, NAME)
            }
            "namespace-wide" => {
                args.extend(["--namespace", NAMESPACE]);
                (NAMESPACE, "any-name-at-all")
            }
            _ => ("somewhere-else", "anything"),
        };
        args.extend(["--from-file", raw_arg.as_str()]);
        let what = format!("kubeseal --raw --scope {scope}");
        let out = ctx.kubeseal(&args, None);
        let b64 =
            String::from_utf8(out).unwrap_or_else(|e| panic!("{what}: output is not text: {e}"));
        assert!(
            !b64.is_empty() && b64.trim() == b64,
            "{what}: want bare base64 without newline, got {b64:?}"
        );
        B64.decode(&b64)
            .unwrap_or_else(|e| panic!("{what}: output is not base64 ({e}): {b64:?}"));

        let wrap = |namespace: &str, name: &str| {
            let annotations = scope_annotation(scope)
                .map(|a| format!("  annotations:\n    {a}: \"true\"\n"))
                .unwrap_or_default();
            format!(
                "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  \
                 name: {name}\n  namespace: {namespace}\n{annotations}spec:\n  \
                 encryptedData:\n    value: \"{b64}\"\n"
            )
        };
        let file = ctx.path(&format!("raw-{scope}.yaml"));
        write(&file, wrap(namespace, name).as_bytes());
        assert_eq!(
            ctx.must_open(&what, &file),
            BTreeMap::from([(ident(namespace, name), raw_expected.clone())]),
            "{what}"
        );
        if scope == "strict" {
            write(&file, wrap(NAMESPACE, "renamed-secret").as_bytes());
            ctx.must_not_open(&format!("{what}, renamed"), &file);
        }
    }

    println!(
        "kubesealpy interop: ok (venv ready in {:.1}s, checks in {:.1}s)",
        venv_ready_at.as_secs_f64(),
        (started.elapsed() - venv_ready_at).as_secs_f64()
    );
}
