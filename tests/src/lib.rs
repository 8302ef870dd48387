//! End-to-end test harness: a real `etcd` + `kube-apiserver` started the way envtest starts
//! them, and our `controller` run against it as a child process.
//!
//! The binaries come from the folder named by `KUBEBUILDER_ASSETS` (the envtest convention,
//! see `shared/spec/e2e-harness.md`); when it is unset or incomplete every test prints one line,
//! `skipping e2e: <reason>`, and passes. Where the binaries exist the suites run for real:
//!
//! - [`Assets::from_env`] finds `kube-apiserver`, `etcd` (and optionally
//!   `kube-controller-manager`, which the harness records but does not start);
//! - [`Pki::generate`] makes a CA, the apiserver's serving certificate (127.0.0.1 and
//!   localhost), a service-account key pair and an admin client certificate in
//!   `O=system:masters`, all with rcgen;
//! - [`Cluster::start`] starts etcd then kube-apiserver with the exact flags of the spec, on
//!   free loopback ports, waits for `/version` and `/readyz`, and writes an admin kubeconfig;
//!   dropping it stops the apiserver first (SIGTERM, 5 s, SIGKILL), then etcd, then deletes
//!   the temporary folder;
//! - [`shared_cluster`] hands every test of one test binary the same cluster while any of them
//!   runs;
//! - [`Binaries`] finds our `controller` and `kubeseal` (`SEALED_SECRETS_BIN_DIR`, else builds
//!   them once with cargo);
//! - [`Controller::start`] runs the controller out of cluster against a [`Cluster`], waits for
//!   `/healthz`, and prints its log when the test panics;
//! - [`kubectl`], [`apply_yaml`], [`wait_for`], [`create_namespace`], [`unique_name`] and
//!   friends keep the tests short.
//!
//! Everything listens on 127.0.0.1 only.

use std::{
    collections::HashSet,
    fs::{self, File},
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde_json::Value;

pub mod sealing;

/// How long a readiness wait may take (etcd, apiserver, controller, CRD).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `kubectl` or `kubeseal` run may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// The name of the SealedSecret CRD.
pub const SEALED_SECRET_CRD: &str = "sealedsecrets.bitnami.com";
/// The label that marks sealing-key Secrets.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// The label selector for active sealing keys.
pub const ACTIVE_KEY_SELECTOR: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";

// ---------------------------------------------------------------------------------------------
// Skipping
// ---------------------------------------------------------------------------------------------

/// Prints the one skip line, `skipping e2e: <reason>`, straight to the process's stderr so it
/// shows even though the test harness captures `println!` output of passing tests.
pub fn skip(reason: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "skipping e2e: {reason}");
    let _ = err.flush();
}

/// Returns the [`Assets`], or prints the skip line and returns from the calling test.
#[macro_export]
macro_rules! assets_or_skip {
    () => {
        match $crate::Assets::from_env() {
            Ok(assets) => assets,
            Err(reason) => {
                $crate::skip(&reason);
                return;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Assets
// ---------------------------------------------------------------------------------------------

/// Where envtest looks for its binaries when `KUBEBUILDER_ASSETS` is unset.
pub const DEFAULT_ASSETS_DIR: &str = "/usr/local/kubebuilder/bin";

/// The envtest binaries found through `KUBEBUILDER_ASSETS` (or envtest's default folder).
#[derive(Debug, Clone)]
pub struct Assets {
    /// The folder itself.
    pub dir: PathBuf,
    /// `$KUBEBUILDER_ASSETS/kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `$KUBEBUILDER_ASSETS/etcd`.
    pub etcd: PathBuf,
    /// `$KUBEBUILDER_ASSETS/kube-controller-manager` when present (only garbage collection of
    /// owned objects needs it; the harness does not start it, so tests that depend on GC must
    /// skip that assertion).
    pub kube_controller_manager: Option<PathBuf>,
}

impl Assets {
    /// Finds the binaries as envtest does: the folder named by `KUBEBUILDER_ASSETS`, else
    /// envtest's default [`DEFAULT_ASSETS_DIR`], and checks that `kube-apiserver` and `etcd`
    /// are there; the error is the reason to print in the skip line.
    pub fn from_env() -> Result<Assets, String> {
        let (dir, source) = match std::env::var_os("KUBEBUILDER_ASSETS") {
            Some(dir) if !dir.is_empty() => (
                resolve_path(Path::new(&dir)),
                format!("KUBEBUILDER_ASSETS={}", Path::new(&dir).display()),
            ),
            _ if Path::new(DEFAULT_ASSETS_DIR).is_dir() => (
                PathBuf::from(DEFAULT_ASSETS_DIR),
                format!("envtest's default folder {DEFAULT_ASSETS_DIR}"),
            ),
            _ => {
                return Err(format!(
                    "KUBEBUILDER_ASSETS is not set and {DEFAULT_ASSETS_DIR} does not exist (see tests/README.md)"
                ));
            }
        };
        if !dir.is_dir() {
            return Err(format!("{source} is not a directory"));
        }
        let kube_apiserver = dir.join("kube-apiserver");
        let etcd = dir.join("etcd");
        let missing: Vec<&str> = [("kube-apiserver", &kube_apiserver), ("etcd", &etcd)]
            .into_iter()
            .filter(|(_, path)| !path.is_file())
            .map(|(name, _)| name)
            .collect();
        if !missing.is_empty() {
            return Err(format!("{source} has no {}", missing.join(" and no ")));
        }
        let kcm = dir.join("kube-controller-manager");
        Ok(Assets {
            kube_controller_manager: kcm.is_file().then_some(kcm),
            dir,
            kube_apiserver,
            etcd,
        })
    }
}

/// An absolute form of a path from the environment: as given when absolute; else relative to
/// the current directory (cargo runs tests in this crate's folder) if it exists there, else
/// relative to the workspace root.
pub fn resolve_path(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let from_cwd = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    if from_cwd.exists() {
        return from_cwd;
    }
    let from_root = workspace_root().join(path);
    if from_root.exists() {
        from_root
    } else {
        from_cwd
    }
}

// ---------------------------------------------------------------------------------------------
// Names and ports
// ---------------------------------------------------------------------------------------------

/// A name unique within this machine and run, valid as a namespace or object name (DNS-1123
/// label): `<prefix>-<6 base36 chars from time and pid>-<counter>`. Keep `prefix` short,
/// lowercase and `[a-z0-9-]`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut seed =
        nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut tag = String::new();
    for _ in 0..6 {
        let digit = (seed % 36) as u32;
        seed /= 36;
        tag.push(char::from_digit(digit, 36).unwrap_or('x'));
    }
    format!("{prefix}-{tag}-{n}")
}

/// A free TCP port on 127.0.0.1 (bind port 0, read it, drop the listener). Ports handed out
/// once are never handed out again by this process, so parallel tests cannot collide.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        let mut given = given.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) {
            return port;
        }
    }
    panic!("could not find a free port on 127.0.0.1");
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// Polls `check` every 250 ms until it returns `Ok`, and returns that value; panics after
/// `timeout` with `what` and the last error.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Result<T, String>) -> T {
    poll(timeout, check).unwrap_or_else(|last| {
        panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
    })
}

/// Polls `check` every 250 ms until it returns `Ok`; after `timeout`, the last error.
fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        thread::sleep(Duration::from_millis(250));
    }
}

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

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// What a bounded command run produced.
#[derive(Debug)]
pub struct CommandOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Standard error as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` with `stdin` fed to it, capturing stdout and stderr, and kills it after
/// `timeout`. Errors only when it cannot be started or times out; a non-zero exit is returned.
pub fn run_command(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<CommandOutput, String> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_vec();
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&input);
            }))
        }
        _ => None,
    };
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} timed out after {timeout:?}"));
            }
            Err(err) => return Err(format!("cannot wait for {shown}: {err}")),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(CommandOutput {
        status,
        stdout,
        stderr,
    })
}

/// Sends `signal` to `child` if it has not been reaped yet (so its pid cannot have been reused).
#[cfg(unix)]
fn send_signal(child: &mut Child, signal: libc::c_int) {
    if let Ok(None) = child.try_wait()
        && let Ok(pid) = libc::pid_t::try_from(child.id())
    {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped
        // child, so it cannot name another process.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Stops `child`: SIGTERM, wait up to `grace`, then SIGKILL; always reaps it.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    #[cfg(unix)]
    send_signal(child, libc::SIGTERM);
    #[cfg(not(unix))]
    let _ = child.kill();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills `child` at once (SIGKILL) and reaps it.
pub fn kill_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of a log file (or why it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

/// Starts `program args` with stdout and stderr appended to `log`.
fn spawn_logged(
    program: &Path,
    args: &[String],
    log: &Path,
    configure: impl FnOnce(&mut Command),
) -> Result<Child, String> {
    let file = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let file2 = file
        .try_clone()
        .map_err(|e| format!("cannot clone log handle: {e}"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(file2));
    scrub_proxy_env(&mut cmd);
    configure(&mut cmd);
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A ureq agent that does not turn 4xx/5xx into errors, with a per-request timeout; with
/// `client`, it trusts only `ca_pem` and presents the client certificate.
fn http_agent(
    timeout: Duration,
    client: Option<(&str, &str, &str)>,
) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(crypto_provider());
    if let Some((ca_pem, cert_pem, key_pem)) = client {
        let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes())
            .map_err(|e| format!("CA PEM: {e}"))?;
        let cert = ureq::tls::Certificate::from_pem(cert_pem.as_bytes())
            .map_err(|e| format!("client cert PEM: {e}"))?;
        let key = ureq::tls::PrivateKey::from_pem(key_pem.as_bytes())
            .map_err(|e| format!("client key PEM: {e}"))?;
        tls = tls
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
            .client_cert(Some(ureq::tls::ClientCert::new_with_certs(&[cert], key)));
    }
    Ok(ureq::Agent::config_builder()
        // Everything is on loopback: never go through a proxy from the environment.
        .proxy(None)
        .tls_config(tls.build())
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into())
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// Body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn read_reply(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    url: &str,
) -> Result<HttpReply, String> {
    let mut response = result.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| format!("{url}: reading body: {e}"))?;
    Ok(HttpReply {
        status,
        retry_after,
        body,
    })
}

fn http_get(agent: &ureq::Agent, url: &str) -> Result<HttpReply, String> {
    read_reply(agent.get(url).call(), url)
}

fn http_post(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<HttpReply, String> {
    read_reply(
        agent
            .post(url)
            .header("Content-Type", content_type)
            .send(body),
        url,
    )
}

// ---------------------------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------------------------

/// The test cluster's keys and certificates, all PEM. Keys are ECDSA P-256 in PKCS#8
/// (`PRIVATE KEY`), which kube-apiserver, kubectl and kube-rs all accept.
#[derive(Clone)]
pub struct Pki {
    /// The CA certificate (trusted for serving and client certificates).
    pub ca_cert: String,
    /// The apiserver's serving certificate: SANs 127.0.0.1 and localhost, serverAuth.
    pub serving_cert: String,
    /// Its key.
    pub serving_key: String,
    /// The service-account token verification key (`PUBLIC KEY`).
    pub sa_public_key: String,
    /// The service-account token signing key.
    pub sa_private_key: String,
    /// The admin client certificate: CN `sealed-secrets-e2e-admin`, O `system:masters`.
    pub admin_cert: String,
    /// Its key.
    pub admin_key: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki { .. }")
    }
}

impl Pki {
    /// Makes a fresh CA, serving certificate, service-account key pair and admin certificate.
    pub fn generate() -> Result<Pki, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
            PKCS_ECDSA_P256_SHA256, date_time_ymd,
        };
        let err = |what: &str| {
            let what = what.to_string();
            move |e: rcgen::Error| format!("rcgen ({what}): {e}")
        };
        let new_key =
            |what: &str| KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err(what));
        let params =
            |sans: Vec<String>, cn: &str, org: Option<&str>| -> Result<CertificateParams, String> {
                let mut params = CertificateParams::new(sans).map_err(err(cn))?;
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, cn);
                if let Some(org) = org {
                    dn.push(DnType::OrganizationName, org);
                }
                params.distinguished_name = dn;
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2099, 12, 31);
                Ok(params)
            };

        let ca_key = new_key("ca")?;
        let mut ca_params = params(Vec::new(), "sealed-secrets-e2e-ca", None)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err("ca"))?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);

        let serving_key = new_key("serving")?;
        let mut serving = params(
            vec!["127.0.0.1".into(), "localhost".into()],
            "kube-apiserver",
            None,
        )?;
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.use_authority_key_identifier_extension = true;
        let serving_cert = serving
            .signed_by(&serving_key, &issuer)
            .map_err(err("serving"))?;

        let admin_key = new_key("admin")?;
        let mut admin = params(
            Vec::new(),
            "sealed-secrets-e2e-admin",
            Some("system:masters"),
        )?;
        admin.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        admin.use_authority_key_identifier_extension = true;
        let admin_cert = admin.signed_by(&admin_key, &issuer).map_err(err("admin"))?;

        let sa_key = new_key("service-account")?;

        Ok(Pki {
            ca_cert: ca_cert.pem(),
            serving_cert: serving_cert.pem(),
            serving_key: serving_key.serialize_pem(),
            sa_public_key: sa_key.public_key_pem(),
            sa_private_key: sa_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
        })
    }

    /// An admin kubeconfig for `server` with everything embedded.
    pub fn kubeconfig(&self, server: &str) -> String {
        let b64 = |s: &str| BASE64.encode(s.as_bytes());
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: e2e\n  \
               cluster:\n    \
                 server: {server}\n    \
                 certificate-authority-data: {ca}\n\
             users:\n\
             - name: e2e-admin\n  \
               user:\n    \
                 client-certificate-data: {cert}\n    \
                 client-key-data: {key}\n\
             contexts:\n\
             - name: e2e\n  \
               context:\n    \
                 cluster: e2e\n    \
                 user: e2e-admin\n    \
                 namespace: default\n\
             current-context: e2e\n",
            ca = b64(&self.ca_cert),
            cert = b64(&self.admin_cert),
            key = b64(&self.admin_key),
        )
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------

/// A running etcd + kube-apiserver on loopback, with an admin kubeconfig.
pub struct Cluster {
    etcd: Option<Child>,
    apiserver: Option<Child>,
    /// etcd's client port.
    pub etcd_port: u16,
    /// The apiserver's secure port.
    pub apiserver_port: u16,
    pki: Pki,
    root: PathBuf,
    kubeconfig: PathBuf,
    kubectl_cache: PathBuf,
    etcd_log: PathBuf,
    apiserver_log: PathBuf,
    agent: Option<ureq::Agent>,
    /// How the apiserver was started, to start it again ([`Cluster::restart_apiserver`]).
    apiserver_command: Option<(PathBuf, Vec<String>)>,
    // Last: deleted after Drop::drop has stopped the processes.
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server())
            .field("etcd_port", &self.etcd_port)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts etcd and kube-apiserver from `assets` and waits until the apiserver's `/readyz`
    /// answers 200 to the admin certificate. Panics (after stopping whatever it started and
    /// printing the logs' tails) when they do not come up within [`READY_TIMEOUT`] each.
    pub fn start(assets: &Assets) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("sealed-secrets-e2e-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let root = dir.path().to_path_buf();
        let pki = Pki::generate().unwrap_or_else(|e| panic!("cannot make the test PKI: {e}"));
        let mut cluster = Cluster {
            etcd: None,
            apiserver: None,
            etcd_port: free_port(),
            apiserver_port: free_port(),
            pki,
            kubeconfig: root.join("admin.kubeconfig"),
            kubectl_cache: root.join("kubectl-cache"),
            etcd_log: root.join("etcd.log"),
            apiserver_log: root.join("kube-apiserver.log"),
            root,
            agent: None,
            apiserver_command: None,
            dir: Some(dir),
        };
        if let Err(err) = cluster.boot(assets) {
            panic!(
                "the test cluster did not start: {err}\n\
                 ----- etcd log (last 40 lines, {}) -----\n{}\n\
                 ----- kube-apiserver log (last 80 lines, {}) -----\n{}",
                cluster.etcd_log.display(),
                tail(&cluster.etcd_log, 40),
                cluster.apiserver_log.display(),
                tail(&cluster.apiserver_log, 80),
            );
        }
        cluster
    }

    fn boot(&mut self, assets: &Assets) -> Result<(), String> {
        let pki_dir = self.root.join("pki");
        let cert_dir = self.root.join("apiserver-cert-dir");
        for d in [&pki_dir, &cert_dir, &self.kubectl_cache] {
            fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        let ca_crt = pki_dir.join("ca.crt");
        let serving_crt = pki_dir.join("apiserver.crt");
        let serving_key = pki_dir.join("apiserver.key");
        let sa_pub = pki_dir.join("sa.pub");
        let sa_key = pki_dir.join("sa.key");
        write_file(&ca_crt, &self.pki.ca_cert)?;
        write_file(&serving_crt, &self.pki.serving_cert)?;
        write_file(&serving_key, &self.pki.serving_key)?;
        write_file(&sa_pub, &self.pki.sa_public_key)?;
        write_file(&sa_key, &self.pki.sa_private_key)?;
        write_file(&self.kubeconfig, &self.pki.kubeconfig(&self.server()))?;

        // etcd, exactly as envtest starts it. The data dir does not exist yet: etcd creates it
        // with the permissions it wants.
        let etcd_data = self.root.join("etcd-data");
        let client_url = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer_url = format!("http://127.0.0.1:{}", free_port());
        let etcd_args: Vec<String> = vec![
            "--data-dir".into(),
            etcd_data.display().to_string(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url.clone(),
            "--listen-peer-urls".into(),
            peer_url,
            "--unsafe-no-fsync".into(),
        ];
        self.etcd = Some(spawn_logged(
            &assets.etcd,
            &etcd_args,
            &self.etcd_log,
            |_| {},
        )?);
        let plain = http_agent(Duration::from_secs(5), None)?;
        let version_url = format!("{client_url}/version");
        self.wait_ready("etcd", &version_url, &plain)?;

        // kube-apiserver, all on loopback.
        let apiserver_args: Vec<String> = vec![
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", self.apiserver_port),
            format!("--etcd-servers={client_url}"),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            format!("--client-ca-file={}", ca_crt.display()),
            format!("--tls-cert-file={}", serving_crt.display()),
            format!("--tls-private-key-file={}", serving_key.display()),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--api-audiences=https://kubernetes.default.svc.cluster.local".into(),
            "--endpoint-reconciler-type=none".into(),
            format!("--cert-dir={}", cert_dir.display()),
        ];
        self.apiserver_command = Some((assets.kube_apiserver.clone(), apiserver_args.clone()));
        self.apiserver = Some(spawn_logged(
            &assets.kube_apiserver,
            &apiserver_args,
            &self.apiserver_log,
            |_| {},
        )?);
        let agent = http_agent(
            Duration::from_secs(10),
            Some((&self.pki.ca_cert, &self.pki.admin_cert, &self.pki.admin_key)),
        )?;
        let readyz = format!("{}/readyz", self.server());
        self.wait_ready("kube-apiserver", &readyz, &agent)?;
        self.agent = Some(agent);
        Ok(())
    }

    /// Polls `url` until it answers 200, failing early when a process of the cluster exits.
    fn wait_ready(&mut self, what: &str, url: &str, agent: &ureq::Agent) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            for (name, child) in [
                ("etcd", &mut self.etcd),
                ("kube-apiserver", &mut self.apiserver),
            ] {
                if let Some(child) = child
                    && let Ok(Some(status)) = child.try_wait()
                {
                    return Err(format!("{name} exited ({status}) while waiting for {what}"));
                }
            }
            let last = match http_get(agent, url) {
                Ok(reply) if reply.status == 200 => return Ok(()),
                Ok(reply) => format!("HTTP {}: {}", reply.status, reply.text().trim()),
                Err(err) => err,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what} not ready at {url} after {READY_TIMEOUT:?}; last: {last}"
                ));
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The cluster's temporary folder (logs, PKI, kubeconfig).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The PKI the cluster runs with.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The kube-apiserver log file.
    pub fn apiserver_log(&self) -> &Path {
        &self.apiserver_log
    }

    /// GET `path` on the apiserver with the admin certificate.
    pub fn get(&self, path: &str) -> Result<HttpReply, String> {
        let agent = self.agent.as_ref().ok_or("cluster not started")?;
        http_get(agent, &format!("{}{}", self.server(), path))
    }

    /// Stops kube-apiserver (SIGTERM, up to 5 s, SIGKILL) and leaves etcd running: every
    /// client's connections break, and watches must resume or relist.
    pub fn stop_apiserver(&mut self) {
        if let Some(mut apiserver) = self.apiserver.take() {
            stop_child(&mut apiserver, STOP_GRACE);
        }
    }

    /// Starts kube-apiserver again, with the same flags, port and etcd, and waits for
    /// `/readyz`. Panics (with the log's tail) when it does not come up.
    pub fn start_apiserver(&mut self) {
        assert!(
            self.apiserver.is_none(),
            "kube-apiserver is already running"
        );
        let (program, args) = self
            .apiserver_command
            .clone()
            .expect("the cluster was started");
        let started =
            spawn_logged(&program, &args, &self.apiserver_log, |_| {}).and_then(|child| {
                self.apiserver = Some(child);
                let agent = self.agent.clone().ok_or("cluster not started")?;
                self.wait_ready(
                    "kube-apiserver",
                    &format!("{}/readyz", self.server()),
                    &agent,
                )
            });
        if let Err(err) = started {
            panic!(
                "kube-apiserver did not start again: {err}\n----- log (last 60 lines) -----\n{}",
                tail(&self.apiserver_log, 60)
            );
        }
    }

    /// Stops and starts kube-apiserver ([`Cluster::stop_apiserver`], [`Cluster::start_apiserver`]).
    pub fn restart_apiserver(&mut self) {
        self.stop_apiserver();
        self.start_apiserver();
    }

    /// Compacts etcd's history up to its current revision (through etcd's JSON gateway), so
    /// no watch can resume from before now: every watcher that was away must list again.
    /// Returns the revision compacted to.
    pub fn compact_etcd(&self) -> Result<i64, String> {
        let agent = http_agent(Duration::from_secs(10), None)?;
        let base = format!("http://127.0.0.1:{}", self.etcd_port);
        // Any range read returns the store's current revision in its header.
        let range = http_post(
            &agent,
            &format!("{base}/v3/kv/range"),
            "application/json",
            br#"{"key":"AA==","limit":1}"#,
        )?;
        if range.status != 200 {
            return Err(format!(
                "etcd range: HTTP {}: {}",
                range.status,
                range.text()
            ));
        }
        let header: Value =
            serde_json::from_str(&range.text()).map_err(|e| format!("etcd range reply: {e}"))?;
        let revision: i64 = header["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .or_else(|| header["header"]["revision"].as_i64())
            .ok_or_else(|| format!("etcd range reply without a revision: {header}"))?;
        let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
        let compacted = http_post(
            &agent,
            &format!("{base}/v3/kv/compaction"),
            "application/json",
            body.as_bytes(),
        )?;
        if compacted.status != 200 {
            return Err(format!(
                "etcd compaction to {revision}: HTTP {}: {}",
                compacted.status,
                compacted.text()
            ));
        }
        Ok(revision)
    }

    /// Stops the apiserver (SIGTERM, up to 5 s, SIGKILL), then etcd the same way. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut apiserver) = self.apiserver.take() {
            stop_child(&mut apiserver, STOP_GRACE);
        }
        if let Some(mut etcd) = self.etcd.take() {
            stop_child(&mut etcd, STOP_GRACE);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("SEALED_SECRETS_E2E_KEEP").is_some_and(|v| !v.is_empty())
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("e2e: kept the cluster folder {}", kept.display());
        }
        // `dir` (if still there) is deleted when the fields drop, after the processes stopped.
    }
}

/// Checks what every suite needs before a cluster: `None` (after the one skip line) without
/// assets; otherwise kubectl checked and our binaries built.
fn suite_assets(assets: Result<Assets, String>) -> Option<Assets> {
    match assets {
        Ok(assets) => {
            require_kubectl();
            Binaries::get();
            Some(assets)
        }
        Err(reason) => {
            skip(&reason);
            None
        }
    }
}

fn install_crds(cluster: &Cluster, crds: &[(&str, &str)]) {
    for (file, name) in crds {
        install_crd(cluster, &workspace_root().join("crds").join(file), name);
    }
}

/// What a suite starts with: `None` (after the one skip line) without assets; otherwise
/// kubectl checked, our binaries built, and the shared cluster with each CRD of `crds` (file
/// name under `<workspace>/crds`, CRD name) applied and `Established`.
pub fn suite_cluster(
    assets: Result<Assets, String>,
    crds: &[(&str, &str)],
) -> Option<Arc<Cluster>> {
    let assets = suite_assets(assets)?;
    Some(shared_cluster(&assets, |cluster| {
        install_crds(cluster, crds)
    }))
}

/// [`suite_cluster`] for a test that needs a cluster of its own (it restarts or compacts it):
/// a new cluster, owned by the caller.
pub fn private_cluster(assets: Result<Assets, String>, crds: &[(&str, &str)]) -> Option<Cluster> {
    let assets = suite_assets(assets)?;
    let cluster = Cluster::start(&assets);
    install_crds(&cluster, crds);
    Some(cluster)
}

/// The cluster shared by all tests of this test binary: started (and `init` run on it) by the
/// first test that asks, kept while any test holds it, stopped when the last one lets go. A
/// start failure is remembered, so later tests fail at once instead of waiting again.
pub fn shared_cluster(assets: &Assets, init: impl FnOnce(&Cluster)) -> Arc<Cluster> {
    struct Shared {
        cluster: Weak<Cluster>,
        failed: Option<String>,
    }
    static SHARED: Mutex<Shared> = Mutex::new(Shared {
        cluster: Weak::new(),
        failed: None,
    });
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.cluster.upgrade() {
        return cluster;
    }
    if let Some(failed) = &shared.failed {
        panic!("the shared test cluster failed to start earlier: {failed}");
    }
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let cluster = Cluster::start(assets);
        init(&cluster);
        Arc::new(cluster)
    }));
    match started {
        Ok(cluster) => {
            shared.cluster = Arc::downgrade(&cluster);
            cluster
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panic".into());
            shared.failed = Some(message.lines().next().unwrap_or_default().to_string());
            drop(shared);
            std::panic::resume_unwind(payload);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------------------------

/// The kubectl to run: `$KUBECTL` if set, else `kubectl` from `PATH`.
pub fn kubectl_program() -> PathBuf {
    std::env::var_os("KUBECTL")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

fn kubectl_command(cluster: &Cluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(kubectl_program());
    cmd.arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .arg(format!("--cache-dir={}", cluster.kubectl_cache.display()))
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
    let out = run_command(&mut kubectl_command(cluster, args), stdin, COMMAND_TIMEOUT)?;
    if out.status.success() {
        Ok(out.stdout_text())
    } else {
        Err(format!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            out.stderr_text().trim()
        ))
    }
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

/// Creates namespace `name` (use [`unique_name`]) and returns it.
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

/// Decodes every `data` entry of a Secret (missing `data` is an empty map).
pub fn secret_data(secret: &Value) -> Result<std::collections::BTreeMap<String, Vec<u8>>, String> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(map) = secret["data"].as_object() {
        for (k, v) in map {
            let text = v.as_str().unwrap_or_default();
            let bytes = BASE64
                .decode(text)
                .map_err(|e| format!("data[{k}] is not base64: {e}"))?;
            out.insert(k.clone(), bytes);
        }
    }
    Ok(out)
}

/// The base64 body of the first PEM block in `pem` (headers and whitespace dropped), for
/// comparing certificates regardless of line wrapping.
pub fn pem_body(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect()
}

/// Parses a YAML file with one object (leading `---` allowed) into JSON.
pub fn read_yaml(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses YAML text with one object (leading `---` allowed) into JSON.
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("invalid YAML: {e}"))?;
    let mut docs = docs.into_iter().flatten().filter(|d| !d.is_null());
    let first = docs.next().ok_or("no YAML document")?;
    if docs.next().is_some() {
        return Err("more than one YAML document".into());
    }
    Ok(first)
}

// ---------------------------------------------------------------------------------------------
// Our binaries
// ---------------------------------------------------------------------------------------------

/// Our `controller`, `gitops-controller` and `kubeseal` executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The folder holding them.
    pub dir: PathBuf,
    /// `<dir>/controller`.
    pub controller: PathBuf,
    /// `<dir>/gitops-controller`.
    pub gitops_controller: PathBuf,
    /// `<dir>/kubeseal`.
    pub kubeseal: PathBuf,
}

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

impl Binaries {
    /// `SEALED_SECRETS_BIN_DIR` if set; else builds `sealed-secrets-controller` and
    /// `sealed-secrets-cli` once per test process with cargo (debug profile, honouring
    /// `CARGO_TARGET_DIR` and cargo config) and uses the executables cargo reports. Panics when
    /// they cannot be had. Call only after [`Assets::from_env`] succeeded.
    pub fn get() -> &'static Binaries {
        static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();
        match BINARIES.get_or_init(Self::locate) {
            Ok(binaries) => binaries,
            Err(err) => panic!("cannot get the binaries under test: {err}"),
        }
    }

    fn locate() -> Result<Binaries, String> {
        let exe = |name: &str| format!("{name}{}", std::env::consts::EXE_SUFFIX);
        if let Some(dir) = std::env::var_os("SEALED_SECRETS_BIN_DIR").filter(|d| !d.is_empty()) {
            let dir = resolve_path(Path::new(&dir));
            let binaries = Binaries {
                controller: dir.join(exe("controller")),
                gitops_controller: dir.join(exe("gitops-controller")),
                kubeseal: dir.join(exe("kubeseal")),
                dir,
            };
            for path in [
                &binaries.controller,
                &binaries.gitops_controller,
                &binaries.kubeseal,
            ] {
                if !path.is_file() {
                    return Err(format!("SEALED_SECRETS_BIN_DIR has no {}", path.display()));
                }
            }
            return Ok(binaries);
        }
        let cargo = std::env::var_os("CARGO")
            .filter(|c| !c.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO")));
        let root = workspace_root();
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root).args([
            "build",
            "--manifest-path",
            &root.join("Cargo.toml").display().to_string(),
            "-p",
            "sealed-secrets-controller",
            "-p",
            "sealed-secrets-cli",
            "-p",
            "sealed-secrets-gitops",
            "--bins",
            "--message-format=json-render-diagnostics",
        ]);
        let out = run_command(&mut cmd, None, Duration::from_secs(30 * 60))?;
        if !out.status.success() {
            return Err(format!(
                "`cargo build -p sealed-secrets-controller -p sealed-secrets-cli -p sealed-secrets-gitops --bins` failed ({}):\n{}",
                out.status,
                out.stderr_text()
            ));
        }
        let mut controller = None;
        let mut gitops_controller = None;
        let mut kubeseal = None;
        for line in out.stdout_text().lines() {
            let Ok(msg) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let Some(path) = msg["executable"].as_str() else {
                continue;
            };
            match msg["target"]["name"].as_str() {
                Some("controller") => controller = Some(PathBuf::from(path)),
                Some("gitops-controller") => gitops_controller = Some(PathBuf::from(path)),
                Some("kubeseal") => kubeseal = Some(PathBuf::from(path)),
                _ => {}
            }
        }
        let controller = controller.ok_or("cargo reported no `controller` executable")?;
        let kubeseal = kubeseal.ok_or("cargo reported no `kubeseal` executable")?;
        let gitops_controller =
            gitops_controller.ok_or("cargo reported no `gitops-controller` executable")?;
        let dir = controller
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Binaries {
            dir,
            controller,
            gitops_controller,
            kubeseal,
        })
    }
}

/// Removes proxy settings (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, either case)
/// from `cmd`'s environment: every connection of the suite is on loopback.
pub fn scrub_proxy_env(cmd: &mut Command) {
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_ascii_lowercase());
    }
}

/// Removes from `cmd`'s environment what could steer our binaries away from the test setup:
/// proxies, `KUBECONFIG`, `POD_NAME`, `POD_NAMESPACE` and every `SEALED_SECRETS_*` variable.
pub fn scrub_env(cmd: &mut Command) {
    scrub_proxy_env(cmd);
    cmd.env_remove("KUBECONFIG")
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEALED_SECRETS_") {
            cmd.env_remove(&key);
        }
    }
}

/// Runs our `kubeseal` with `args`, `stdin` as input, and the cluster's admin kubeconfig in
/// `KUBECONFIG`: stdout on success, else the error with stderr.
pub fn kubeseal(cluster: &Cluster, args: &[&str], stdin: &[u8]) -> Result<String, String> {
    let mut cmd = Command::new(&Binaries::get().kubeseal);
    scrub_env(&mut cmd);
    cmd.args(args).env("KUBECONFIG", cluster.kubeconfig());
    let out = run_command(&mut cmd, Some(stdin), COMMAND_TIMEOUT)?;
    if out.status.success() {
        Ok(out.stdout_text())
    } else {
        Err(format!(
            "kubeseal {} failed ({}): {}",
            args.join(" "),
            out.status,
            out.stderr_text().trim()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Controller
// ---------------------------------------------------------------------------------------------

/// Our controller running out of cluster against a [`Cluster`]. Dropping it stops it
/// (SIGTERM, 5 s, SIGKILL); when the drop happens because the test panics, its log is printed.
/// Declare it after the cluster so it drops first.
pub struct Controller {
    name: String,
    child: Option<Child>,
    /// The main HTTP API (`--listen-addr`).
    pub addr: SocketAddr,
    /// The metrics server (`--listen-metrics-addr`).
    pub metrics_addr: SocketAddr,
    log_path: PathBuf,
    agent: ureq::Agent,
    _log_dir: tempfile::TempDir,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("log", &self.log_path)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Starts `<bin>/controller --kubeconfig <admin> --listen-addr 127.0.0.1:<free>
    /// --listen-metrics-addr 127.0.0.1:<free> <extra_args>` with `POD_NAMESPACE=<key_namespace>`
    /// and waits until `GET /healthz` answers 200.
    pub fn start(cluster: &Cluster, key_namespace: &str, extra_args: &[&str]) -> Controller {
        Self::start_named(cluster, "controller", key_namespace, extra_args)
    }

    /// [`Controller::start`] with a name used in its log header.
    pub fn start_named(
        cluster: &Cluster,
        name: &str,
        key_namespace: &str,
        extra_args: &[&str],
    ) -> Controller {
        Self::start_listening(
            cluster,
            name,
            IpAddr::from([127, 0, 0, 1]),
            key_namespace,
            extra_args,
        )
    }

    /// [`Controller::start_named`] with both servers listening on `ip` instead of 127.0.0.1
    /// (an address of the test's own network namespace, for the service-proxy tests: the API
    /// server does not proxy to loopback addresses).
    pub fn start_listening(
        cluster: &Cluster,
        name: &str,
        ip: IpAddr,
        key_namespace: &str,
        extra_args: &[&str],
    ) -> Controller {
        Self::start_program(
            cluster,
            &Binaries::get().controller,
            name,
            ip,
            key_namespace,
            extra_args,
        )
    }

    /// Starts `<bin>/gitops-controller` the same way (it serves `/healthz` on
    /// `--listen-addr` and `/metrics` on `--listen-metrics-addr` too), on 127.0.0.1.
    pub fn start_gitops(cluster: &Cluster, name: &str, extra_args: &[&str]) -> Controller {
        Self::start_program(
            cluster,
            &Binaries::get().gitops_controller,
            name,
            IpAddr::from([127, 0, 0, 1]),
            "default",
            extra_args,
        )
    }

    fn start_program(
        cluster: &Cluster,
        program: &Path,
        name: &str,
        ip: IpAddr,
        key_namespace: &str,
        extra_args: &[&str],
    ) -> Controller {
        let log_dir = tempfile::Builder::new()
            .prefix("sealed-secrets-e2e-controller-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let log_path = log_dir.path().join(format!("{name}.log"));
        let addr = SocketAddr::new(ip, free_port());
        let metrics_addr = SocketAddr::new(ip, free_port());
        let mut args: Vec<String> = vec![
            "--kubeconfig".into(),
            cluster.kubeconfig().display().to_string(),
            "--listen-addr".into(),
            addr.to_string(),
            "--listen-metrics-addr".into(),
            metrics_addr.to_string(),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let child = spawn_logged(program, &args, &log_path, |cmd| {
            scrub_env(cmd);
            cmd.env("POD_NAMESPACE", key_namespace).env("NO_COLOR", "1");
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let mut controller = Controller {
            name: name.to_string(),
            child: Some(child),
            addr,
            metrics_addr,
            log_path,
            agent: http_agent(Duration::from_secs(30), None).unwrap_or_else(|e| panic!("{e}")),
            _log_dir: log_dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = controller.exit_status() {
                panic!(
                    "controller {name} exited ({status}) before /healthz answered (args: {args:?})"
                );
            }
            match controller.get("/healthz") {
                Ok(reply) if reply.status == 200 => break,
                Ok(reply) if Instant::now() >= deadline => {
                    panic!(
                        "controller {name}: /healthz answered {} after {READY_TIMEOUT:?}",
                        reply.status
                    )
                }
                Err(err) if Instant::now() >= deadline => {
                    panic!(
                        "controller {name}: /healthz not reachable after {READY_TIMEOUT:?}: {err}"
                    )
                }
                _ => thread::sleep(Duration::from_millis(200)),
            }
        }
        controller
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://<listen address><path>` (127.0.0.1 unless started with
    /// [`Controller::start_listening`]).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET `path` on the main HTTP API.
    pub fn get(&self, path: &str) -> Result<HttpReply, String> {
        http_get(&self.agent, &self.url(path))
    }

    /// POST `body` to `path` on the main HTTP API.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<HttpReply, String> {
        http_post(&self.agent, &self.url(path), content_type, body)
    }

    /// GET `path` on the metrics server.
    pub fn get_metrics(&self, path: &str) -> Result<HttpReply, String> {
        http_get(
            &self.agent,
            &format!("http://{}{}", self.metrics_addr, path),
        )
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has ended (or was stopped).
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.as_mut() {
            None => Some("stopped by the test".into()),
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                _ => None,
            },
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Stops it: SIGTERM, up to 5 s, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, STOP_GRACE);
        }
    }

    /// Sends `signal` (e.g. `libc::SIGUSR1`, which asks the controller for a new key) if it
    /// still runs.
    #[cfg(unix)]
    pub fn signal(&mut self, signal: libc::c_int) {
        if let Some(child) = self.child.as_mut() {
            send_signal(child, signal);
        }
    }

    /// Kills it at once (SIGKILL), as a crash would. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_child(&mut child);
        }
    }

    /// [`wait_for`], with this controller's log in the panic message.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl FnMut() -> Result<T, String>,
    ) -> T {
        poll(timeout, check).unwrap_or_else(|last| {
            panic!(
                "timed out after {timeout:?} waiting for {what}; last: {last}\n--- log of controller {} ---\n{}",
                self.name,
                self.log()
            )
        })
    }

    /// Its log so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log_path.display()))
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            eprintln!(
                "===== log of controller {} ({}) =====\n{}\n===== end of log of controller {} =====",
                self.name,
                self.log_path.display(),
                self.log(),
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dns_labels() {
        let a = unique_name("ss-keys");
        let b = unique_name("ss-keys");
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
        }
    }

    #[test]
    fn ports_are_not_handed_out_twice() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        assert!(a > 0 && b > 0);
    }

    #[test]
    fn pem_bodies_ignore_wrapping() {
        let a = "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n";
        let b = "-----BEGIN CERTIFICATE-----\r\nAAAABBBB\r\n-----END CERTIFICATE-----";
        assert_eq!(pem_body(a), "AAAABBBB");
        assert_eq!(pem_body(a), pem_body(b));
    }

    #[test]
    fn yaml_with_leading_separator() {
        let v = parse_yaml("---\napiVersion: v1\nkind: Secret\ndata:\n  a: \"\"\n").unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["data"]["a"], "");
        assert!(parse_yaml("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn commands_are_bounded_and_capture_output() {
        let out = run_command(
            Command::new("sh").args(["-c", "cat; echo err >&2"]),
            Some(b"hi"),
            COMMAND_TIMEOUT,
        )
        .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout_text(), "hi");
        assert_eq!(out.stderr_text(), "err\n");
        let err = run_command(
            Command::new("sh").args(["-c", "sleep 5"]),
            None,
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    #[test]
    fn stop_child_terminates_then_kills() {
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30"])
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        stop_child(&mut child, Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_some());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// The PKI is what the apiserver, kubectl and kube-rs need: a CA that signs a serving
    /// certificate for 127.0.0.1/localhost and a system:masters client certificate.
    #[test]
    fn pki_chains_and_tls_works_with_client_certificates() {
        let pki = Pki::generate().unwrap();
        assert!(pki.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.sa_public_key.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(
            pki.sa_private_key
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(pki.admin_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let kubeconfig = pki.kubeconfig("https://127.0.0.1:1");
        let parsed = parse_yaml(&kubeconfig).unwrap();
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:1"
        );
        assert_eq!(parsed["current-context"], "e2e");
        let ca = BASE64
            .decode(
                parsed["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(ca, pki.ca_cert.as_bytes());
        // The agent accepts the material.
        http_agent(
            Duration::from_secs(1),
            Some((&pki.ca_cert, &pki.admin_cert, &pki.admin_key)),
        )
        .unwrap();
    }

    /// The admin agent trusts the CA, checks the 127.0.0.1 SAN and presents the client
    /// certificate, against `openssl s_server` demanding one (skipped without openssl).
    #[test]
    fn admin_agent_does_mutual_tls() {
        if Command::new("openssl").arg("version").output().is_err() {
            return;
        }
        let pki = Pki::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            path
        };
        let (ca, cert, key) = (
            file("ca.crt", &pki.ca_cert),
            file("s.crt", &pki.serving_cert),
            file("s.key", &pki.serving_key),
        );
        let port = free_port();
        let mut server = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-Verify",
                "1",
                "-verify_return_error",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .arg("-CAfile")
            .arg(&ca)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("https://127.0.0.1:{port}/readyz");
        let with_cert = http_agent(
            Duration::from_secs(5),
            Some((&pki.ca_cert, &pki.admin_cert, &pki.admin_key)),
        )
        .unwrap();
        let reply = wait_for("openssl s_server", Duration::from_secs(10), || {
            http_get(&with_cert, &url)
        });
        kill_child(&mut server);
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
}
