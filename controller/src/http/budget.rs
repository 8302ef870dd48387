//! What one API request may cost, and how much RSA work the API may do at once.
//!
//! `/v1/verify` and `/v1/rotate` turn a posted body into RSA private-key operations: one per
//! item per key tried. Without bounds a flood of large bodies whose items no key opens keeps
//! every core busy, piles up blocking jobs (each holding its parsed body) and starves both the
//! unsealing workers and `/healthz`. The bounds, in the order a request meets them:
//!
//! 1. **Bytes**: a body over [`RequestLimits::max_body_bytes`] is refused with `413` before it
//!    is read (by `Content-Length`) or as soon as it grows past the cap (chunked bodies).
//! 2. **Concurrency**: parsing and RSA work run on the blocking pool only while holding a
//!    permit of [`CryptoPool`], sized by default to the cores minus one (at least one), so one
//!    core always stays for the async runtime (`/healthz`, `/metrics`, watches) and the
//!    unsealing workers. A request that cannot get a permit within a short wait is refused
//!    with `503` and `Retry-After` (overload of the server, not a fault of this client: `429`
//!    stays the per-client rate limit's answer). The permit travels with the blocking job and
//!    is released when the job really ends, so the pool never runs more jobs than permits.
//! 3. **Items**: an object with more than [`RequestLimits::max_items`] items is refused with
//!    `413` after parsing, before any RSA work.
//! 4. **Early stop**: a [`Guarded`] decrypter refuses further work after the first item that
//!    does not open (the answer is already known) and once the request is gone.
//! 5. **Cancellation**: dropping the request future (client gone, `--write-timeout`) sets the
//!    job's [`Cancel`] flag, which the job checks between items.

use std::{
    cell::Cell,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, header},
};
use sealed_secrets_core::crypto::{CryptoError, Decrypter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

/// Default `--max-request-bytes`: a SealedSecret of a 1 MiB Secret (the API server's limit) is
/// about 1.4 MiB as JSON, and etcd refuses objects over 1.5 MiB, so 4 MiB leaves room for
/// pretty-printed YAML of any SealedSecret a cluster can hold.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

/// Default `--max-request-items`: each sealed item is at least ~700 bytes of base64 (a 4096-bit
/// RSA block plus the AES-GCM tag), so etcd's 1.5 MiB bounds a storable SealedSecret to about
/// 2,200 items; real Secrets have a handful to a few dozen.
pub const DEFAULT_MAX_ITEMS: usize = 1024;

/// How long a request waits for an RSA permit before it is refused with `503`.
pub const DEFAULT_CRYPTO_WAIT: Duration = Duration::from_millis(500);

/// Seconds announced in `Retry-After` when the API is busy.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

/// Per-request caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest body read, in bytes.
    pub max_body_bytes: usize,
    /// Most `encryptedData` items in one posted object (the deprecated `spec.data` blob
    /// counts as one).
    pub max_items: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_items: DEFAULT_MAX_ITEMS,
        }
    }
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is (or announces to be) larger than the cap.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read (client gone, `--read-timeout`).
    #[error("cannot read the request body: {0}")]
    Read(#[source] axum::Error),
}

/// Reads `body` up to `cap` bytes; announces or content over the cap are [`BodyError::TooLarge`].
pub async fn read_body(headers: &HeaderMap, body: Body, cap: usize) -> Result<Bytes, BodyError> {
    use futures::StreamExt as _;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|len| len > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let capacity = announced.map_or(0, |len| usize::try_from(len).unwrap_or(cap).min(cap));
    let mut out = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if out.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

// ---------------------------------------------------------------------------------------------
// Cancellation

/// Set when the request that started a job is gone; the job checks it between items.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Whether the job should stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Cancels its job when dropped, that is when the request future is dropped or finishes.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

// ---------------------------------------------------------------------------------------------
// The pool

/// Why a job did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No permit became free within the wait.
    #[error("the server is busy")]
    Busy,
    /// The blocking task panicked.
    #[error("task failed: {0}")]
    Failed(#[source] tokio::task::JoinError),
}

/// The blocking jobs of the API: at most `workers` at a time, each waiting at most `wait`.
#[derive(Debug)]
pub struct CryptoPool {
    permits: Arc<Semaphore>,
    workers: usize,
    wait: Duration,
}

impl CryptoPool {
    /// A pool of `workers` (0: [`CryptoPool::default_workers`]) with a queue wait of `wait`.
    pub fn new(workers: usize, wait: Duration) -> Self {
        let workers = if workers == 0 {
            Self::default_workers()
        } else {
            workers
        };
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            wait,
        }
    }

    /// The cores available to this process minus one for the runtime and the unsealing
    /// workers, at least one.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .max(1)
    }

    /// Number of jobs that may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, PoolError> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(PoolError::Busy),
        }
    }

    /// Runs `job` on the blocking pool once a permit is free. Dropping the returned future
    /// cancels the job's [`Cancel`]; the permit is held until the job returns.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        let permit = self.permit().await?;
        let cancel = Cancel::default();
        let _on_drop = CancelOnDrop(cancel.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(&cancel)
        })
        .await
        .map_err(PoolError::Failed)
    }

    /// Waits until every permit is free, that is until no job runs (tests).
    #[cfg(test)]
    pub(crate) async fn idle(&self) {
        let all = u32::try_from(self.workers).unwrap_or(u32::MAX);
        drop(self.permits.acquire_many(all).await);
    }

    /// Takes every permit, as a flood of long jobs would (tests).
    #[cfg(test)]
    pub(crate) async fn exhaust(&self) -> OwnedSemaphorePermit {
        let all = u32::try_from(self.workers).unwrap_or(u32::MAX);
        Arc::clone(&self.permits)
            .acquire_many_owned(all)
            .await
            .expect("semaphore open")
    }
}

// ---------------------------------------------------------------------------------------------
// The guarded decrypter

/// Wraps the key ring's decrypter for one request: once an item has not opened, or the request
/// is gone, every further item fails at once without touching a key.
pub struct Guarded<'a> {
    inner: &'a dyn Decrypter,
    cancel: &'a Cancel,
    failed: Cell<bool>,
}

impl<'a> Guarded<'a> {
    /// Guards `inner` with the job's `cancel` flag.
    pub fn new(inner: &'a dyn Decrypter, cancel: &'a Cancel) -> Self {
        Self {
            inner,
            cancel,
            failed: Cell::new(false),
        }
    }
}

impl Decrypter for Guarded<'_> {
    fn decrypt(&self, ciphertext: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if self.failed.get() || self.cancel.is_cancelled() {
            return Err(CryptoError::NoKeyCouldDecrypt);
        }
        let result = self.inner.decrypt(ciphertext, label);
        if result.is_err() {
            self.failed.set(true);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Opens every other call; counts calls.
    struct Alternating(AtomicUsize);

    impl Decrypter for Alternating {
        fn decrypt(&self, _: &[u8], _: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(2) {
                Ok(Zeroizing::new(b"x".to_vec()))
            } else {
                Err(CryptoError::NoKeyCouldDecrypt)
            }
        }
    }

    #[test]
    fn guarded_stops_after_the_first_failure_and_on_cancel() {
        let inner = Alternating(AtomicUsize::new(0));
        let cancel = Cancel::default();
        let guarded = Guarded::new(&inner, &cancel);
        assert!(guarded.decrypt(b"c", b"l").is_ok());
        assert!(guarded.decrypt(b"c", b"l").is_err());
        for _ in 0..10 {
            assert!(guarded.decrypt(b"c", b"l").is_err());
        }
        assert_eq!(inner.0.load(Ordering::Relaxed), 2);

        let inner = Alternating(AtomicUsize::new(0));
        let guarded = Guarded::new(&inner, &cancel);
        cancel.cancel();
        assert!(guarded.decrypt(b"c", b"l").is_err());
        assert_eq!(inner.0.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn default_workers_leave_a_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = CryptoPool::default_workers();
        assert!(workers >= 1);
        assert!(workers < cores || cores == 1);
        assert_eq!(CryptoPool::new(0, DEFAULT_CRYPTO_WAIT).workers(), workers);
        assert_eq!(CryptoPool::new(3, DEFAULT_CRYPTO_WAIT).workers(), 3);
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_and_frees_permits_when_jobs_end() {
        let pool = CryptoPool::new(1, Duration::ZERO);
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
        let held = pool.exhaust().await;
        assert!(matches!(pool.run(|_| 7).await, Err(PoolError::Busy)));
        drop(held);
        assert_eq!(pool.run(|_| 8).await.unwrap(), 8);
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused() {
        let mut headers = HeaderMap::new();
        let body = read_body(&headers, Body::from("12345"), 5).await.unwrap();
        assert_eq!(&body[..], b"12345");
        assert!(matches!(
            read_body(&headers, Body::from("123456"), 5).await,
            Err(BodyError::TooLarge(5))
        ));
        // Announced too large: refused before reading.
        headers.insert(header::CONTENT_LENGTH, "6".parse().unwrap());
        assert!(matches!(
            read_body(&headers, Body::from("1"), 5).await,
            Err(BodyError::TooLarge(5))
        ));
        // Chunked bodies are stopped as soon as they pass the cap.
        let chunks = futures::stream::iter(
            [b"123".as_slice(), b"456", b"789"]
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        assert!(matches!(
            read_body(&HeaderMap::new(), Body::from_stream(chunks), 5).await,
            Err(BodyError::TooLarge(5))
        ));
    }
}
