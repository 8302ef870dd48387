//! Which failures are worth retrying, and when.
//!
//! A failure is either **transient** (the same request may well succeed later: the connection
//! broke, the call timed out, the API server was overloaded or restarting, our write raced with
//! another) or **permanent** for the object as it stands (no key opens it, its template is
//! wrong, its target is immutable, the API server rejected what we would write as invalid).
//!
//! - Transient failures retry without limit, with exponential backoff capped at
//!   [`MAX_BACKOFF`] and full jitter, so a fleet of objects that failed together (an API
//!   server restart) does not retry in lock-step.
//! - Permanent failures retry `--max-unseal-retries` times on the same schedule (a key Secret
//!   being written at the same moment is the common reason the first try fails), then wait:
//!   for a change of the object (its spec, labels or annotations), of its Secret, or of the
//!   key ring (every object that failed to unseal is requeued when a key is added, changed
//!   or removed).
//!
//! API errors count as transient except those that say the request itself is wrong (400 Bad
//! Request, 422 Invalid, and a malformed request we could not even build): a 403 is retried,
//! because RBAC is often granted after the controller starts (a chart installs both at once),
//! and nothing else would ever wake the object.

use std::{
    hash::{BuildHasher, RandomState},
    time::Duration,
};

/// First retry delay.
pub const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How a failure should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Retry without limit.
    Transient,
    /// Retry a few times, then wait for a change.
    Permanent,
}

/// The retry class of a Kubernetes client error.
pub fn classify_kube_error(err: &kube::Error) -> Cause {
    match err {
        kube::Error::Api(status) => classify_status(status.code),
        kube::Error::BuildRequest(_) | kube::Error::SerdeError(_) => Cause::Permanent,
        // Connection, TLS, timeout, protocol, auth-token refresh, service errors: transient.
        _ => Cause::Transient,
    }
}

/// The retry class of an API status code.
pub fn classify_status(code: u16) -> Cause {
    match code {
        400 | 422 => Cause::Permanent,
        _ => Cause::Transient,
    }
}

/// What to do after failure number `attempt` (1-based) of class `cause`: retry after the
/// returned delay, or `None` to wait for a change. `jitter` is uniform in `[0, 1)`.
pub fn next_retry(cause: Cause, attempt: u32, max_permanent: u32, jitter: f64) -> Option<Duration> {
    if cause == Cause::Permanent && attempt > max_permanent {
        return None;
    }
    let ceiling = backoff_ceiling(attempt);
    // Full jitter (a uniform pick below the ceiling), but never below the base delay.
    let picked = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
    Some(picked.max(BASE_BACKOFF))
}

/// The exponential ceiling for retry number `attempt`: 100 ms doubling, at most [`MAX_BACKOFF`].
pub fn backoff_ceiling(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    BASE_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF)
}

/// A uniform number in `[0, 1)` from the standard library's per-process random hasher keys
/// (jitter needs spread, not cryptographic quality).
pub fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        for code in [409, 429, 500, 502, 503, 504, 403, 404, 401] {
            assert_eq!(classify_status(code), Cause::Transient, "{code}");
        }
        for code in [400, 422] {
            assert_eq!(classify_status(code), Cause::Permanent, "{code}");
        }
    }

    #[test]
    fn kube_errors() {
        let api = |code| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("x", "Conflict").with_code(code),
            ))
        };
        assert_eq!(classify_kube_error(&api(409)), Cause::Transient);
        assert_eq!(classify_kube_error(&api(422)), Cause::Permanent);
        let io = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )));
        assert_eq!(classify_kube_error(&io), Cause::Transient);
    }

    #[test]
    fn transient_failures_retry_forever_with_a_capped_backoff() {
        assert_eq!(
            next_retry(Cause::Transient, 1, 0, 0.999),
            Some(BASE_BACKOFF)
        );
        assert_eq!(backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(4), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(40), MAX_BACKOFF);
        let late = next_retry(Cause::Transient, 1000, 0, 0.5).unwrap();
        assert_eq!(late, MAX_BACKOFF / 2);
        assert!(next_retry(Cause::Transient, u32::MAX, 0, 0.999).unwrap() <= MAX_BACKOFF);
    }

    #[test]
    fn permanent_failures_stop_after_the_budget() {
        assert!(next_retry(Cause::Permanent, 5, 5, 0.0).is_some());
        assert_eq!(next_retry(Cause::Permanent, 6, 5, 0.0), None);
        assert_eq!(next_retry(Cause::Permanent, 1, 0, 0.0), None);
    }

    #[test]
    fn jitter_spreads() {
        let picks: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(picks.iter().all(|j| (0.0..1.0).contains(j)));
        let distinct: std::collections::BTreeSet<u64> = picks.iter().map(|j| j.to_bits()).collect();
        assert!(distinct.len() > 32, "{picks:?}");
    }
}
