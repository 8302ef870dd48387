//! Child processes: bounded runs with captured output, starting a process with its output in a
//! log file, stopping it (SIGTERM, a grace period, SIGKILL), and scrubbing the environment so
//! nothing from the caller's shell (proxies, `KUBECONFIG`, our own variables) steers a child
//! away from the test setup.

use std::{
    fs::{self, File},
    io::{Read, Write},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

/// How long one `kubectl` or `kubeseal` run may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

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
    /// Standard output as text when the run succeeded; else `<shown> failed (<status>):
    /// <stderr>`, where `shown` names the run (program and arguments).
    pub fn stdout_or_failure(&self, shown: &str) -> Result<String, String> {
        if self.status.success() {
            Ok(self.stdout_text())
        } else {
            Err(format!(
                "{shown} failed ({}): {}",
                self.status,
                self.stderr_text().trim()
            ))
        }
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
pub(crate) fn send_signal(child: &mut Child, signal: libc::c_int) {
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
pub(crate) fn spawn_logged(
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(out.stdout_or_failure("cat").unwrap(), "hi");
        let failed = run_command(
            Command::new("sh").args(["-c", "echo out; echo ' why ' >&2; exit 3"]),
            None,
            COMMAND_TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            failed.stdout_or_failure("sh -c x").unwrap_err(),
            format!("sh -c x failed ({}): why", failed.status)
        );
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
}
