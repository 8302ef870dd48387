//! The control plane: etcd and kube-apiserver started as envtest starts them, with the flags
//! of `shared/spec/e2e-harness.md`, on free loopback ports, and what tests do to a running
//! one (stop, start or restart the apiserver, compact etcd). Teardown stops the apiserver
//! first, then etcd, then deletes the folder.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Child,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    assets::Assets,
    http::{HttpReply, http_agent, http_get, http_post, http_send},
    names::free_port,
    pki::Pki,
    process::{STOP_GRACE, spawn_logged, stop_child, tail},
    wait::READY_TIMEOUT,
};

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A running etcd + kube-apiserver on loopback, with an admin kubeconfig.
pub struct Cluster {
    etcd: Option<Child>,
    apiserver: Option<Child>,
    controller_manager: Option<Child>,
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
        Cluster::start_with(assets, None)
    }

    /// [`Cluster::start`] with an API server audit policy (YAML): every request it selects is
    /// logged, as JSON lines, to [`Cluster::audit_log`].
    pub fn start_with_audit_policy(assets: &Assets, policy: &str) -> Cluster {
        Cluster::start_with(assets, Some(policy))
    }

    /// The API server's audit log (written with `SEALED_SECRETS_E2E_AUDIT=1` or an audit
    /// policy).
    pub fn audit_log(&self) -> std::path::PathBuf {
        self.root.join("audit.log")
    }

    fn start_with(assets: &Assets, audit_policy: Option<&str>) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("sealed-secrets-e2e-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let root = dir.path().to_path_buf();
        let pki = Pki::generate().unwrap_or_else(|e| panic!("cannot make the test PKI: {e}"));
        let mut cluster = Cluster {
            etcd: None,
            apiserver: None,
            controller_manager: None,
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
        if let Err(err) = cluster.boot(assets, audit_policy) {
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

    fn boot(&mut self, assets: &Assets, audit_policy: Option<&str>) -> Result<(), String> {
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
        // SEALED_SECRETS_E2E_AUDIT=1: every request's metadata in <cluster folder>/audit.log
        // (who wrote what, when), to find the writer of an object when a suite fails. Keep the
        // folder with SEALED_SECRETS_E2E_KEEP=1.
        let mut apiserver_args = apiserver_args;
        let audit = audit_policy.map(str::to_string).or_else(|| {
            std::env::var_os("SEALED_SECRETS_E2E_AUDIT")
                .is_some_and(|v| !v.is_empty())
                .then(|| "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n".to_string())
        });
        if let Some(audit) = audit {
            let policy = self.root.join("audit-policy.yaml");
            write_file(&policy, &audit)?;
            apiserver_args.push(format!("--audit-policy-file={}", policy.display()));
            apiserver_args.push(format!(
                "--audit-log-path={}",
                self.root.join("audit.log").display()
            ));
            apiserver_args.push("--audit-log-format=json".into());
        }
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

    /// The folder kubectl keeps its discovery cache in for this cluster.
    pub(crate) fn kubectl_cache(&self) -> &Path {
        &self.kubectl_cache
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

    /// Sends `method path` with `body` to the apiserver with the admin certificate.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpReply, String> {
        let agent = self.agent.as_ref().ok_or("cluster not started")?;
        http_send(
            agent,
            method,
            &format!("{}{}", self.server(), path),
            content_type,
            body,
        )
    }

    /// Starts kube-controller-manager from `assets`, running only the garbage collector, with
    /// the admin kubeconfig and without leader election (so it outlives apiserver restarts, as
    /// a cluster's own would by taking the lease again), serving nothing. Returns `false`
    /// (after one line saying so) when the assets have no kube-controller-manager.
    pub fn start_garbage_collector(&mut self, assets: &Assets) -> bool {
        let Some(program) = assets.kube_controller_manager.clone() else {
            eprintln!(
                "e2e: no kube-controller-manager in {}: garbage collection does not run",
                assets.dir.display()
            );
            return false;
        };
        assert!(
            self.controller_manager.is_none(),
            "kube-controller-manager is already running"
        );
        let args: Vec<String> = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "--controllers=garbagecollector".into(),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
            "--concurrent-gc-syncs=20".into(),
            // SEALED_SECRETS_E2E_KCM_V=5: the garbage collector's decisions in its log.
            format!(
                "--v={}",
                std::env::var("SEALED_SECRETS_E2E_KCM_V").unwrap_or_else(|_| "1".into())
            ),
        ];
        let log = self.root.join("kube-controller-manager.log");
        match spawn_logged(&program, &args, &log, |_| {}) {
            Ok(child) => self.controller_manager = Some(child),
            Err(err) => panic!("cannot start kube-controller-manager: {err}"),
        }
        true
    }

    /// The kube-controller-manager log file.
    pub fn controller_manager_log(&self) -> PathBuf {
        self.root.join("kube-controller-manager.log")
    }

    /// Whether kube-controller-manager (when started) still runs.
    pub fn controller_manager_running(&mut self) -> bool {
        self.controller_manager
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills kube-apiserver at once (SIGKILL), as a crash would, and leaves etcd running.
    pub fn kill_apiserver(&mut self) {
        if let Some(mut apiserver) = self.apiserver.take() {
            crate::process::kill_child(&mut apiserver);
        }
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

    /// Stops kube-controller-manager and the apiserver (SIGTERM, up to 5 s, SIGKILL), then etcd
    /// the same way. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut manager) = self.controller_manager.take() {
            stop_child(&mut manager, STOP_GRACE);
        }
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
