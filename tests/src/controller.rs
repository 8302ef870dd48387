//! Our controller (or gitops-controller) run out of cluster as a child process against a test
//! cluster: loopback listen addresses, readiness on `/healthz`, HTTP access to its API and
//! metrics, signals, and its log printed when a test fails.

use std::{
    fs,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::Child,
    thread,
    time::{Duration, Instant},
};

#[cfg(unix)]
use crate::process::send_signal;
use crate::{
    binaries::Binaries,
    cluster::Cluster,
    http::{HttpReply, http_agent, http_get, http_post},
    names::free_port,
    process::{STOP_GRACE, kill_child, scrub_env, spawn_logged, stop_child},
    wait::{READY_TIMEOUT, poll},
};

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

    /// [`wait_for`](crate::wait_for), with this controller's log in the panic message.
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
