//! `kubeseal ui` as a child process for the UI suites: started with a kubeconfig, its login
//! URL read from its first line of output, everything it prints kept (the canary checks read
//! it), killed on drop.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use crate::{binaries::Binaries, kubectl::kubectl_program, process::scrub_env};

/// A running `kubeseal ui`, its URL and its output (kept for the canary check).
pub struct Ui {
    child: Child,
    /// The login URL it printed.
    pub url: String,
    output: Arc<Mutex<String>>,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ui {
    /// Starts `kubeseal ui --kubeconfig KUBECONFIG ARGS...` and waits for its URL.
    pub fn start(kubeconfig: &Path, args: &[&str]) -> Ui {
        let mut cmd = Command::new(&Binaries::get().kubeseal);
        scrub_env(&mut cmd);
        cmd.arg("ui")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("KUBECTL", kubectl_program())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start kubeseal ui");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let kept = Arc::clone(&output);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("kubeseal ui: open ") {
                    let _ = tx.send(url.to_string());
                }
                kept.lock().unwrap().push_str(&line);
                kept.lock().unwrap().push('\n');
            }
        });
        let stderr = child.stderr.take().unwrap();
        let kept = Arc::clone(&output);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push_str(&line);
                kept.lock().unwrap().push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "kubeseal ui printed no URL: {}",
                    output.lock().unwrap().clone()
                )
            });
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Ui { child, url, output }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        self.url.split("/login").next().unwrap().to_string()
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Ui {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
