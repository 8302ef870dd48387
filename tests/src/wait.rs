//! Bounded polling: every wait of the suites ends, and a wait that times out says what it
//! waited for and the last answer it got.

use std::{
    thread,
    time::{Duration, Instant},
};

/// How long a readiness wait may take (etcd, apiserver, controller, CRD).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` every 250 ms until it returns `Ok`, and returns that value; panics after
/// `timeout` with `what` and the last error.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Result<T, String>) -> T {
    poll(timeout, check).unwrap_or_else(|last| {
        panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
    })
}

/// Polls `check` every 250 ms until it returns `Ok`; after `timeout`, the last error.
pub(crate) fn poll<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
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
