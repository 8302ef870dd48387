//! The controller's HTTP API (upstream's `:8080` server) and the metrics endpoint (`:8081`).
//!
//! kubeseal talks to these routes through the API server's service proxy, so paths, status
//! codes, headers and bodies follow upstream byte for byte where a client can tell:
//!
//! | Path | Answer |
//! |---|---|
//! | `/healthz` | `200 ok\n` (not instrumented) |
//! | `/v1/cert.pem` | the newest sealing certificate, or `500 cannot get certificate\n` |
//! | `/v1/verify` | `200` opens, `409` does not, `400` body unreadable, `500` not one SealedSecret; rate limited |
//! | `/v1/rotate` | `200` + the re-sealed SealedSecret as JSON, `400` body unreadable, `500` otherwise |
//! | anything else | `404 page not found\n` |
//!
//! Methods are not checked (as upstream's `ServeMux`). `/v1/verify`, `/v1/rotate` and
//! `/v1/cert.pem` are counted in `http_requests_total` and `http_request_duration_seconds`.
//!
//! Decisions where we differ from upstream on purpose:
//! - **Verify does not run `spec.template.data`.** It answers 200 when every `encryptedData`
//!   item opens. Running the templates turns the endpoint into a plaintext oracle: anyone who can
//!   reach it can post ciphertexts copied from Git with a template like
//!   `{{ if hasPrefix "a" .password }}{{ else }}{{ fail "" }}{{ end }}` and read the secret a
//!   guess at a time from 200/409. Template errors still show on the SealedSecret's status once
//!   applied. [`sealed_secrets_core::reencrypt`] makes the same choice for `/v1/rotate`.
//! - **Rate-limit key.** The limiter varies by path and the **last** `X-Forwarded-For` entry, the
//!   address the nearest proxy (the API server) saw; upstream keys on the whole header, which a
//!   client can vary at will because proxies append to it.
//! - **Verify's 500 carries the reason** (`Multistream YAML not supported yet …`,
//!   `unexpected resource type: …`) as `text/plain`, instead of an empty body, so kubeseal users
//!   see why. It only ever describes the posted document's structure.
//! - **Rotate answers `Content-Type: application/json`**; upstream sets the header after writing
//!   the status, so Go sniffs `text/plain; charset=utf-8`.
//! - **Bodies are capped** at [`MAX_BODY_BYTES`]; larger bodies are a read error (400).
//! - **`/v1/cert.pem` is re-encoded** from the key's certificate as exactly one `CERTIFICATE`
//!   block in Go's layout (64-column base64, LF), whatever line endings or extra blocks the key
//!   Secret's `tls.crt` has.
//!
//! `--read-timeout` and `--write-timeout` bound each request as Go's `http.Server` does: the
//! request body must arrive within the read timeout (a late body is a read error, 400, as in
//! upstream's handlers), and the answer must be ready within the write timeout (Go then drops
//! the connection; we answer `503 timeout` so the client learns why). Zero disables either.
//!
//! RSA work runs on the blocking thread pool so that a large object cannot stall the runtime.
//! Nothing here logs or returns plaintext: verify returns a status only, and rotate returns
//! ciphertexts only.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
    routing::any,
};
use base64::Engine;
use sealed_secrets_core::{
    crypto::{Decrypter, SystemRandom},
    documents::{DocumentError, parse_documents},
    keys::PublicKey,
    reencrypt::{ReencryptError, reencrypt},
    sealed_secret::{SealedSecret, SealedSecretParseError},
    unseal::{UnsealOptions, unseal},
};
use serde_json::Value;
use zeroize::Zeroize;

use crate::metrics::{self, Metrics};

/// What the API needs from the controller's key registry.
pub trait KeyService: Send + Sync + 'static {
    /// PEM `CERTIFICATE` of the newest (sealing) key, or `None` before any key exists.
    fn sealing_cert_pem(&self) -> Option<String>;
    /// Public key of the newest (sealing) key.
    fn sealing_public_key(&self) -> Option<PublicKey>;
    /// Trial decryption over every registered key.
    fn decrypter(&self) -> Box<dyn Decrypter + '_>;
}

/// Settings of the API router.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpConfig {
    /// `--rate-limit`: sustained `/v1/verify` requests per second per client. Not positive (or
    /// not finite) allows only the initial burst.
    pub rate_limit: f64,
    /// `--rate-limit-burst`: requests beyond the rate allowed at once (the window is `burst + 1`).
    pub rate_limit_burst: u32,
}

/// Largest request body read by `/v1/verify` and `/v1/rotate`; a SealedSecret of a 1 MiB Secret
/// (the API server's limit) is about 1.4 MiB as JSON.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Number of clients the rate limiter remembers (upstream's memstore size).
pub const RATE_LIMIT_KEYS: usize = 65536;

/// Upstream's refusal of multi-document bodies on `/v1/verify`.
pub const MULTISTREAM_ERROR: &str = "Multistream YAML not supported yet (see https://github.com/bitnami-labs/sealed-secrets/issues/114)";

const HEALTHZ_PATH: &str = "/healthz";
const CERT_PATH: &str = "/v1/cert.pem";
const VERIFY_PATH: &str = "/v1/verify";
const ROTATE_PATH: &str = "/v1/rotate";
const METRICS_PATH: &str = "/metrics";

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const PEM_FILE: &str = "application/x-pem-file";
const APPLICATION_JSON: &str = "application/json";

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const X_FORWARDED_FOR: &str = "x-forwarded-for";

#[derive(Clone)]
struct ApiState {
    keys: Arc<dyn KeyService>,
    metrics: Arc<Metrics>,
    limiter: Arc<RateLimiter>,
}

/// The main API: `/healthz`, `/v1/cert.pem`, `/v1/verify`, `/v1/rotate`, 404 elsewhere.
pub fn api_router(keys: Arc<dyn KeyService>, metrics: Arc<Metrics>, config: HttpConfig) -> Router {
    let state = ApiState {
        keys,
        metrics,
        limiter: Arc::new(RateLimiter::new(
            config.rate_limit,
            config.rate_limit_burst,
            RATE_LIMIT_KEYS,
        )),
    };
    Router::new()
        .route(HEALTHZ_PATH, any(healthz))
        .route(CERT_PATH, any(cert_pem))
        .route(VERIFY_PATH, any(verify))
        .route(ROTATE_PATH, any(rotate))
        .fallback(not_found)
        .with_state(state)
}

/// `--read-timeout` and `--write-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed for the request body to arrive (zero: unlimited).
    pub read: Duration,
    /// Time allowed to produce the response (zero: unlimited).
    pub write: Duration,
}

/// Applies `timeouts` to every request of `router`.
pub fn with_timeouts(router: Router, timeouts: Timeouts) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        timeouts,
        enforce_timeouts,
    ))
}

async fn enforce_timeouts(
    State(timeouts): State<Timeouts>,
    request: Request,
    next: Next,
) -> Response {
    let request = if timeouts.read.is_zero() {
        request
    } else {
        let deadline = tokio::time::Instant::now() + timeouts.read;
        request.map(|body| body_with_deadline(body, deadline))
    };
    if timeouts.write.is_zero() {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeouts.write, next.run(request)).await {
        Ok(response) => response,
        Err(_) => http_error(StatusCode::SERVICE_UNAVAILABLE, "timeout"),
    }
}

/// A body that fails with `TimedOut` when it has not ended by `deadline`.
fn body_with_deadline(body: Body, deadline: tokio::time::Instant) -> Body {
    use futures::StreamExt;
    let stream = futures::stream::unfold(Some(body.into_data_stream()), move |state| async move {
        let mut data = state?;
        match tokio::time::timeout_at(deadline, data.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(data))),
            Ok(Some(Err(err))) => Some((Err(std::io::Error::other(err)), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "i/o timeout",
                )),
                None,
            )),
        }
    });
    Body::from_stream(stream)
}

/// The metrics server: `/metrics` (OpenMetrics text), 404 elsewhere.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(METRICS_PATH, any(serve_metrics))
        .fallback(not_found)
        .with_state(metrics)
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn healthz() -> Response {
    with_body(StatusCode::OK, TEXT_PLAIN, "ok\n")
}

async fn not_found() -> Response {
    http_error(StatusCode::NOT_FOUND, "404 page not found")
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    with_body(StatusCode::OK, metrics::CONTENT_TYPE, metrics.encode())
}

async fn cert_pem(State(state): State<ApiState>, request: Request) -> Response {
    let start = Instant::now();
    let response = match state
        .keys
        .sealing_cert_pem()
        .as_deref()
        .map(single_certificate)
    {
        Some(Some(pem)) => with_body(StatusCode::OK, PEM_FILE, pem),
        Some(None) => {
            tracing::error!("cannot get certificates: the sealing key's certificate is not PEM");
            http_error(StatusCode::INTERNAL_SERVER_ERROR, "cannot get certificate")
        }
        None => {
            tracing::error!("cannot get certificates: no sealing key yet");
            http_error(StatusCode::INTERNAL_SERVER_ERROR, "cannot get certificate")
        }
    };
    observe(&state.metrics, CERT_PATH, &request, start, &response);
    response
}

async fn verify(State(state): State<ApiState>, request: Request) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let decision = state
        .limiter
        .check(VERIFY_PATH, client_key(request.headers()));
    let response = match decision {
        Err(StoreError) => http_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        Ok(decision) => {
            let mut response = if decision.allowed {
                verify_body(&state, request).await
            } else {
                http_error(StatusCode::TOO_MANY_REQUESTS, "limit exceeded")
            };
            decision.write_headers(response.headers_mut());
            response
        }
    };
    state.metrics.observe_http(
        VERIFY_PATH,
        method.as_str(),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

async fn verify_body(state: &ApiState, request: Request) -> Response {
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "Error handling /v1/verify request");
            return empty(StatusCode::BAD_REQUEST);
        }
    };
    let keys = Arc::clone(&state.keys);
    match tokio::task::spawn_blocking(move || opens(keys.as_ref(), &body)).await {
        Ok(Ok(true)) => empty(StatusCode::OK),
        Ok(Ok(false)) => empty(StatusCode::CONFLICT),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Error validating secret");
            http_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
        }
        Err(err) => {
            tracing::error!(error = %err, "Error validating secret: task failed");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

async fn rotate(State(state): State<ApiState>, request: Request) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let response = rotate_body(&state, request).await;
    state.metrics.observe_http(
        ROTATE_PATH,
        method.as_str(),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

async fn rotate_body(state: &ApiState, request: Request) -> Response {
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "Error handling /v1/rotate request");
            return empty(StatusCode::BAD_REQUEST);
        }
    };
    let keys = Arc::clone(&state.keys);
    match tokio::task::spawn_blocking(move || reseal(keys.as_ref(), &body)).await {
        Ok(Ok(json)) => with_body(StatusCode::OK, APPLICATION_JSON, json),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Error rotating secret");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(err) => {
            tracing::error!(error = %err, "Error rotating secret: task failed");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request processing (synchronous, run on the blocking pool)

/// Why a posted body is not one SealedSecret. Texts describe structure only.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("{MULTISTREAM_ERROR}")]
    Multistream,
    #[error("no object in request body")]
    Empty,
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    NotSealedSecret(#[from] SealedSecretParseError),
    #[error("no sealing key available")]
    NoKey,
    #[error(transparent)]
    Reencrypt(#[from] ReencryptError),
}

fn decode_sealed_secret(body: &[u8]) -> Result<SealedSecret, RequestError> {
    let mut documents = parse_documents(body)?;
    if documents.len() > 1 {
        return Err(RequestError::Multistream);
    }
    let document = documents.pop().ok_or(RequestError::Empty)?;
    Ok(SealedSecret::from_value(document)?)
}

/// Whether every `encryptedData` item (or the deprecated blob) of the posted object opens in its
/// own scope. Templates are not run (see the module docs).
fn opens(keys: &dyn KeyService, body: &[u8]) -> Result<bool, RequestError> {
    let mut sealed = decode_sealed_secret(body)?;
    sealed.spec.template.data = None;
    let decrypter = keys.decrypter();
    let options = UnsealOptions {
        accept_deprecated_v1_data: true,
    };
    Ok(match unseal(&sealed, decrypter.as_ref(), options) {
        Ok(mut secret) => {
            for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
                value.0.zeroize();
            }
            true
        }
        Err(_) => false,
    })
}

/// `/v1/rotate`: the re-sealed object as JSON without `apiVersion`/`kind`.
fn reseal(keys: &dyn KeyService, body: &[u8]) -> Result<String, RequestError> {
    let sealed = decode_sealed_secret(body)?;
    let key = keys.sealing_public_key().ok_or(RequestError::NoKey)?;
    let decrypter = keys.decrypter();
    let resealed = reencrypt(&sealed, decrypter.as_ref(), &key, &mut SystemRandom)?;
    let mut value = resealed.to_upstream_value();
    if let Value::Object(map) = &mut value {
        map.shift_remove("kind");
        map.shift_remove("apiVersion");
        map.shift_remove("status");
    }
    Ok(go_compact_json(&value))
}

/// Go's `json.Marshal`: compact, with `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn go_compact_json(value: &Value) -> String {
    let compact = value.to_string();
    let mut out = String::with_capacity(compact.len());
    for c in compact.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The first `CERTIFICATE` block of `pem`, re-encoded as Go's `pem.Encode` writes it.
fn single_certificate(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)? + BEGIN.len();
    let len = pem[start..].find(END)?;
    let encoded: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|der| !der.is_empty())?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 64 + 64);
    out.push_str(BEGIN);
    out.push('\n');
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        // Base64 is ASCII, so any byte index is a character boundary.
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(END);
    out.push('\n');
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Responses

async fn read_body(request: Request) -> Result<Bytes, axum::Error> {
    axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await
}

fn with_body(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Go's `http.Error`: `text/plain`, `nosniff`, the message and a newline.
fn http_error(status: StatusCode, message: &str) -> Response {
    let mut response = with_body(status, TEXT_PLAIN, format!("{message}\n"));
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn observe(metrics: &Metrics, path: &str, request: &Request, start: Instant, response: &Response) {
    metrics.observe_http(
        path,
        request.method().as_str(),
        response.status().as_u16(),
        start.elapsed(),
    );
}

// ---------------------------------------------------------------------------------------------
// Rate limiting

/// The client part of the limiter key: the last entry of the last `X-Forwarded-For` header.
fn client_key(headers: &HeaderMap) -> &[u8] {
    let Some(value) = headers.get_all(X_FORWARDED_FOR).iter().next_back() else {
        return b"";
    };
    let bytes = value.as_bytes();
    let last = bytes.rsplit(|b| *b == b',').next().unwrap_or(bytes);
    last.trim_ascii()
}

/// The limiter's store failed (a poisoned lock); upstream answers `500 internal error`.
#[derive(Debug)]
struct StoreError;

/// The outcome of one check, with what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decision {
    allowed: bool,
    limit: u64,
    remaining: u64,
    /// Nanoseconds until the client's allowance is whole again.
    reset_after: i128,
    /// Nanoseconds until the next request would be allowed (refusals only).
    retry_after: Option<i128>,
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// Emission interval used for a rate that is not positive: about a year.
const MAX_EMISSION_INTERVAL: i128 = 365 * 24 * 3600 * NANOS_PER_SECOND;

fn ceil_seconds(nanos: i128) -> u64 {
    if nanos <= 0 {
        return 0;
    }
    u64::try_from((nanos + NANOS_PER_SECOND - 1) / NANOS_PER_SECOND).unwrap_or(u64::MAX)
}

impl Decision {
    /// throttled's headers: limit, remaining, reset (seconds, rounded up) and, on refusal,
    /// `Retry-After` (seconds, rounded up).
    fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(
            X_RATELIMIT_RESET,
            HeaderValue::from(ceil_seconds(self.reset_after)),
        );
        if let Some(retry_after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(ceil_seconds(retry_after)),
            );
        }
    }
}

/// GCRA (generic cell rate algorithm) limiter with throttled v2's arithmetic: emission interval
/// `T = 1/rate`, tolerance `T × (burst + 1)`, one theoretical arrival time per key. Keys are
/// kept as 64-bit keyed hashes, so memory stays bounded whatever clients send; at `capacity`
/// keys, keys whose allowance is whole again are dropped first, then the eighth closest to it.
struct RateLimiter {
    emission_interval: i128,
    tolerance: i128,
    limit: u64,
    capacity: usize,
    origin: Instant,
    hasher: RandomState,
    /// Key hash → theoretical arrival time, in nanoseconds since `origin`.
    store: Mutex<HashMap<u64, i128>>,
}

impl RateLimiter {
    fn new(rate: f64, burst: u32, capacity: usize) -> Self {
        let emission_interval = if rate.is_finite() && rate > 0.0 {
            // Float to integer casts saturate; the clamp keeps the interval sane.
            ((1e9 / rate).round() as i128).clamp(1, MAX_EMISSION_INTERVAL)
        } else {
            MAX_EMISSION_INTERVAL
        };
        let window = i128::from(burst) + 1;
        Self {
            emission_interval,
            tolerance: emission_interval * window,
            limit: u64::from(burst) + 1,
            capacity: capacity.max(1),
            origin: Instant::now(),
            hasher: RandomState::new(),
            store: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, path: &str, client: &[u8]) -> Result<Decision, StoreError> {
        let now = i128::try_from(self.origin.elapsed().as_nanos()).unwrap_or(i128::MAX / 4);
        self.check_at(path, client, now)
    }

    fn check_at(&self, path: &str, client: &[u8], now: i128) -> Result<Decision, StoreError> {
        let key = self.hasher.hash_one((path, client));
        let mut store = self.store.lock().map_err(|_| StoreError)?;
        let stored = store.get(&key).copied();
        let tat = stored.unwrap_or(now);
        let new_tat = tat.max(now) + self.emission_interval;
        let allow_at = new_tat - self.tolerance;
        let diff = now - allow_at;
        let (allowed, ttl, retry_after) = if diff < 0 {
            (false, tat - now, Some(-diff))
        } else {
            if stored.is_none() && store.len() >= self.capacity {
                self.evict(&mut store, now);
            }
            store.insert(key, new_tat);
            (true, new_tat - now, None)
        };
        let next = self.tolerance - ttl;
        let remaining = if next > -self.emission_interval {
            u64::try_from(next / self.emission_interval).unwrap_or(0)
        } else {
            0
        };
        Ok(Decision {
            allowed,
            limit: self.limit,
            remaining,
            reset_after: ttl,
            retry_after,
        })
    }

    fn evict(&self, store: &mut HashMap<u64, i128>, now: i128) {
        // A key whose arrival time has passed is indistinguishable from an unknown key.
        store.retain(|_, tat| *tat > now);
        if store.len() < self.capacity {
            return;
        }
        let mut tats: Vec<i128> = store.values().copied().collect();
        let nth = (self.capacity / 8).min(tats.len() - 1);
        let (_, threshold, _) = tats.select_nth_unstable(nth);
        let threshold = *threshold;
        store.retain(|_, tat| *tat > threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{collections::BTreeMap, sync::OnceLock};

    use axum::http::{Method, Request as HttpRequest};
    use sealed_secrets_core::{
        cert::Certificate,
        keys::{GeneratedKeyPair, PrivateKey, generate_key_pair},
        scope::Scope,
        seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
    };
    use serde_json::json;
    use tower::ServiceExt;

    // -- fixtures ------------------------------------------------------------------------------

    fn pairs() -> &'static [GeneratedKeyPair; 2] {
        static PAIRS: OnceLock<[GeneratedKeyPair; 2]> = OnceLock::new();
        PAIRS.get_or_init(|| {
            let now = jiff::Timestamp::now();
            let ttl = jiff::SignedDuration::from_hours(24 * 365);
            let make = || generate_key_pair(2048, "", now, ttl).expect("keygen");
            [make(), make()]
        })
    }

    fn old_key() -> &'static PrivateKey {
        &pairs()[0].key
    }

    fn new_key() -> &'static PrivateKey {
        &pairs()[1].key
    }

    /// Both keys registered, the second one newest (sealing).
    struct TestKeys {
        keys: Vec<PrivateKey>,
        cert: Option<String>,
    }

    impl KeyService for TestKeys {
        fn sealing_cert_pem(&self) -> Option<String> {
            self.cert.clone()
        }

        fn sealing_public_key(&self) -> Option<PublicKey> {
            self.keys.last().map(PrivateKey::public_key)
        }

        fn decrypter(&self) -> Box<dyn Decrypter + '_> {
            Box::new(self.keys.clone())
        }
    }

    fn key_service() -> Arc<dyn KeyService> {
        Arc::new(TestKeys {
            keys: vec![old_key().clone(), new_key().clone()],
            cert: Some(pairs()[1].cert_pem.clone()),
        })
    }

    fn no_keys() -> Arc<dyn KeyService> {
        Arc::new(TestKeys {
            keys: Vec::new(),
            cert: None,
        })
    }

    const GENEROUS: HttpConfig = HttpConfig {
        rate_limit: 1000.0,
        rate_limit_burst: 1000,
    };

    fn router_with(keys: Arc<dyn KeyService>, config: HttpConfig) -> (Router, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new("test"));
        (api_router(keys, Arc::clone(&metrics), config), metrics)
    }

    fn sealed(scope: Scope) -> SealedSecret {
        let secret = secret_from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "shop"}},
            "stringData": {"password": "hunter2", "user": "admin"}
        }))
        .unwrap();
        let options = SealOptions {
            scope,
            namespace: NamespaceDefault {
                namespace: "default".into(),
                explicit: false,
            },
            allow_empty_data: false,
        };
        seal_secret(secret, &old_key().public_key(), &options, &mut SystemRandom).unwrap()
    }

    fn json_body(sealed: &SealedSecret) -> String {
        sealed.to_upstream_value().to_string()
    }

    fn yaml_body(sealed: &SealedSecret) -> String {
        sealed_secrets_core::documents::to_sorted_yaml(&sealed.to_upstream_value())
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }

        fn text(&self) -> &str {
            std::str::from_utf8(&self.body).unwrap()
        }
    }

    async fn send(
        router: &Router,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = HttpRequest::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn post(router: &Router, path: &str, body: impl Into<Body>) -> Reply {
        send(router, Method::POST, path, &[], body).await
    }

    // -- /healthz, 404 -------------------------------------------------------------------------

    #[tokio::test]
    async fn healthz_answers_any_method_and_is_not_instrumented() {
        let (router, metrics) = router_with(key_service(), GENEROUS);
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let reply = send(&router, method, "/healthz", &[], Body::empty()).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.text(), "ok\n");
            assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
        }
        assert!(!metrics.encode().contains("/healthz"));
    }

    #[tokio::test]
    async fn unknown_paths_are_404_like_go() {
        let (router, metrics) = router_with(key_service(), GENEROUS);
        for path in ["/", "/healthz/", "/v1/cert.pem/x", "/v1", "/metrics"] {
            let reply = send(&router, Method::GET, path, &[], Body::empty()).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.text(), "404 page not found\n");
            assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
            assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        }
        assert!(!metrics.encode().contains("http_requests_total{"));
    }

    // -- /v1/cert.pem --------------------------------------------------------------------------

    #[tokio::test]
    async fn cert_is_one_pem_block_of_the_sealing_key() {
        let (router, metrics) = router_with(key_service(), GENEROUS);
        let reply = send(&router, Method::GET, "/v1/cert.pem", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("application/x-pem-file"));
        let pem = reply.text();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"), "{pem}");
        assert_eq!(pem.matches("BEGIN").count(), 1);
        assert!(!pem.contains('\r'));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let cert = Certificate::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(cert.public_key(), &new_key().public_key());
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/cert.pem\",code=\"200\",method=\"get\"} 1"
            )
        );
    }

    #[tokio::test]
    async fn cert_pem_is_normalised_from_crlf_and_chains() {
        let original = &pairs()[1].cert_pem;
        let crlf = original.replace('\n', "\r\n");
        let chain = format!("{crlf}{}", pairs()[0].cert_pem);
        let keys = Arc::new(TestKeys {
            keys: vec![new_key().clone()],
            cert: Some(chain),
        });
        let (router, _) = router_with(keys, GENEROUS);
        let reply = send(&router, Method::GET, "/v1/cert.pem", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.text(),
            single_certificate(original).unwrap(),
            "first block only"
        );
        let cert = Certificate::from_pem(&reply.body).unwrap();
        assert_eq!(cert.public_key(), &new_key().public_key());
    }

    #[tokio::test]
    async fn cert_without_key_is_500_with_upstream_text() {
        let (router, metrics) = router_with(no_keys(), GENEROUS);
        let reply = send(&router, Method::GET, "/v1/cert.pem", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.text(), "cannot get certificate\n");
        assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
        assert!(metrics.encode().contains("code=\"500\""));

        let garbage = Arc::new(TestKeys {
            keys: Vec::new(),
            cert: Some("not a pem".into()),
        });
        let (router, _) = router_with(garbage, GENEROUS);
        let reply = send(&router, Method::GET, "/v1/cert.pem", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.text(), "cannot get certificate\n");
    }

    // -- /v1/verify ----------------------------------------------------------------------------

    fn assert_rate_headers(reply: &Reply) {
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            let value = reply
                .header(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            value.parse::<u64>().unwrap();
        }
    }

    #[tokio::test]
    async fn verify_answers_200_when_it_opens_in_json_and_yaml() {
        let (router, metrics) = router_with(key_service(), GENEROUS);
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let object = sealed(scope);
            for body in [json_body(&object), yaml_body(&object)] {
                let reply = post(&router, "/v1/verify", body).await;
                assert_eq!(reply.status, StatusCode::OK, "{scope}");
                assert!(reply.body.is_empty());
                assert_rate_headers(&reply);
                assert_eq!(reply.header("retry-after"), None);
            }
        }
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/verify\",code=\"200\",method=\"post\"} 6"
            )
        );
    }

    #[tokio::test]
    async fn verify_answers_409_when_it_does_not_open() {
        let (router, _) = router_with(key_service(), GENEROUS);
        let mut moved = sealed(Scope::Strict);
        moved.metadata.namespace = Some("elsewhere".into());
        let mut tampered = sealed(Scope::Strict);
        tampered
            .spec
            .encrypted_data
            .insert("password".into(), "AAAA".into());
        let (other_keys, _) = router_with(no_keys(), GENEROUS);
        for (router, object) in [
            (&router, moved),
            (&router, tampered),
            (&other_keys, sealed(Scope::Strict)),
        ] {
            let reply = post(router, "/v1/verify", json_body(&object)).await;
            assert_eq!(reply.status, StatusCode::CONFLICT);
            assert!(reply.body.is_empty());
            assert_rate_headers(&reply);
        }
    }

    #[tokio::test]
    async fn verify_does_not_run_templates_so_it_is_no_oracle() {
        let (router, _) = router_with(key_service(), GENEROUS);
        for template in [
            "{{ if hasPrefix \"h\" .password }}{{ fail \"yes\" }}{{ end }}",
            "{{ if hasPrefix \"x\" .password }}{{ fail \"yes\" }}{{ end }}",
            "{{ broken ",
        ] {
            let mut object = sealed(Scope::Strict);
            object.spec.template.data = Some(BTreeMap::from([(
                "probe".to_string(),
                template.to_string(),
            )]));
            let reply = post(&router, "/v1/verify", json_body(&object)).await;
            assert_eq!(reply.status, StatusCode::OK, "{template}");
        }
    }

    #[tokio::test]
    async fn verify_refuses_multi_documents_and_non_sealed_secrets_with_500() {
        let (router, _) = router_with(key_service(), GENEROUS);
        let object = sealed(Scope::Strict);
        let two_yaml = format!("{}---\n{}", yaml_body(&object), yaml_body(&object));
        let two_json = format!("{}\n{}", json_body(&object), json_body(&object));
        for body in [two_yaml, two_json] {
            let reply = post(&router, "/v1/verify", body).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(reply.text(), format!("{MULTISTREAM_ERROR}\n"));
            assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
            assert_rate_headers(&reply);
        }
        let secret = r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}"#;
        let reply = post(&router, "/v1/verify", secret).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            reply.text().starts_with("unexpected resource type:"),
            "{}",
            reply.text()
        );
        for junk in ["", "{\"apiVersion\": ", "a: [1, 2\n", "\u{0}\u{ff}"] {
            let reply = post(&router, "/v1/verify", junk.to_string()).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{junk:?}");
            assert!(reply.text().ends_with('\n'));
        }
        let reply = post(&router, "/v1/verify", vec![0xffu8, 0xfe]).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn oversized_bodies_are_a_read_error() {
        let (router, _) = router_with(key_service(), GENEROUS);
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        for path in ["/v1/verify", "/v1/rotate"] {
            let reply = post(&router, path, big.clone()).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(reply.body.is_empty());
        }
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_a_read_error() {
        use futures::StreamExt as _;
        let (router, _) = router_with(key_service(), GENEROUS);
        let router = with_timeouts(
            router,
            Timeouts {
                read: std::time::Duration::from_millis(50),
                write: std::time::Duration::ZERO,
            },
        );
        for path in ["/v1/verify", "/v1/rotate"] {
            // One chunk, then nothing: a client that stalls mid-body.
            let stalled =
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{"))])
                    .chain(futures::stream::pending());
            let started = std::time::Instant::now();
            let reply = post(&router, path, Body::from_stream(stalled)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
        // Bodies that arrive in time are untouched.
        let reply = send(&router, Method::GET, "/healthz", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn an_answer_that_is_not_ready_in_time_is_a_503() {
        let slow = Router::new().route(
            "/slow",
            any(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                "late"
            }),
        );
        let timeouts = Timeouts {
            read: std::time::Duration::ZERO,
            write: std::time::Duration::from_millis(50),
        };
        let reply = send(
            &with_timeouts(slow.clone(), timeouts),
            Method::GET,
            "/slow",
            &[],
            Body::empty(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.text(), "timeout\n");
        let quick = Router::new().route("/quick", any(|| async { "ok" }));
        let reply = send(
            &with_timeouts(quick, timeouts),
            Method::GET,
            "/quick",
            &[],
            Body::empty(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn verify_is_rate_limited_per_client() {
        // One request per 5 s after a burst of 3: slow enough that test time never refills it.
        let config = HttpConfig {
            rate_limit: 0.2,
            rate_limit_burst: 2,
        };
        let (router, metrics) = router_with(key_service(), config);
        let body = json_body(&sealed(Scope::Strict));
        let alice = [("x-forwarded-for", "10.0.0.1")];
        for expected_remaining in ["2", "1", "0"] {
            let reply = send(&router, Method::POST, "/v1/verify", &alice, body.clone()).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("x-ratelimit-limit"), Some("3"));
            assert_eq!(
                reply.header("x-ratelimit-remaining"),
                Some(expected_remaining)
            );
            assert_eq!(reply.header("retry-after"), None);
        }
        let refused = send(&router, Method::POST, "/v1/verify", &alice, body.clone()).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.text(), "limit exceeded\n");
        assert_eq!(refused.header("content-type"), Some(TEXT_PLAIN));
        assert_eq!(refused.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(refused.header("x-ratelimit-reset"), Some("15"));
        assert_eq!(refused.header("retry-after"), Some("5"));

        // Another client has its own allowance; a spoofed prefix does not make a new client.
        let bob = [("x-forwarded-for", "10.0.0.2")];
        let reply = send(&router, Method::POST, "/v1/verify", &bob, body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK);
        let spoofed = [("x-forwarded-for", "1.2.3.4, 10.0.0.1")];
        let reply = send(&router, Method::POST, "/v1/verify", &spoofed, body.clone()).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        // No header at all is one more client.
        let reply = post(&router, "/v1/verify", body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK);

        // Other routes are not limited.
        for _ in 0..4 {
            let reply = send(&router, Method::POST, "/v1/rotate", &alice, body.clone()).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/verify\",code=\"429\",method=\"post\"} 2"
            )
        );
    }

    // -- /v1/rotate ----------------------------------------------------------------------------

    fn parse_rotated(reply: &Reply) -> SealedSecret {
        let mut value: Value = serde_json::from_slice(&reply.body).unwrap();
        let map = value.as_object_mut().unwrap();
        assert!(!map.contains_key("apiVersion") && !map.contains_key("kind"));
        assert!(!map.contains_key("status"));
        map.insert("apiVersion".into(), json!("bitnami.com/v1alpha1"));
        map.insert("kind".into(), json!("SealedSecret"));
        SealedSecret::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn rotate_reseals_with_the_newest_key() {
        let (router, metrics) = router_with(key_service(), GENEROUS);
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let original = sealed(scope);
            let reply = post(&router, "/v1/rotate", yaml_body(&original)).await;
            assert_eq!(reply.status, StatusCode::OK, "{scope}");
            assert_eq!(reply.header("content-type"), Some(APPLICATION_JSON));
            assert!(reply.header("x-ratelimit-limit").is_none());
            assert!(
                reply.text().starts_with("{\"metadata\":"),
                "{}",
                reply.text()
            );
            let rotated = parse_rotated(&reply);
            assert_eq!(
                Scope::from_annotations(rotated.metadata.annotations.as_ref()),
                scope
            );
            let options = UnsealOptions::default();
            assert!(unseal(&rotated, old_key(), options).is_err());
            let secret = unseal(&rotated, new_key(), options).unwrap();
            assert_eq!(secret.data.unwrap()["password"].0, b"hunter2");
            assert_eq!(
                rotated.spec.template.metadata.labels.unwrap()["app"],
                "shop"
            );
            // Only ciphertexts leave the server.
            assert!(!reply.text().contains("hunter2"));
        }
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"200\",method=\"post\"} 3"
            )
        );
    }

    #[tokio::test]
    async fn rotate_failures_are_empty_500s() {
        let (router, metrics) = router_with(key_service(), GENEROUS);
        let object = sealed(Scope::Strict);
        let mut moved = object.clone();
        moved.metadata.name = Some("other".into());
        let bodies = [
            "".to_string(),
            "not: [yaml".to_string(),
            r#"{"apiVersion": "v1", "kind": "Secret"}"#.to_string(),
            format!("{}---\n{}", yaml_body(&object), yaml_body(&object)),
            json_body(&moved),
        ];
        for body in bodies {
            let reply = post(&router, "/v1/rotate", body).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(reply.body.is_empty());
        }
        let (keyless, _) = router_with(no_keys(), GENEROUS);
        let reply = post(&keyless, "/v1/rotate", json_body(&object)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.body.is_empty());
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"500\",method=\"post\"} 5"
            )
        );
    }

    #[test]
    fn rotate_json_escapes_like_go() {
        assert_eq!(
            go_compact_json(&json!({"a": "<&>\u{2028}"})),
            "{\"a\":\"\\u003c\\u0026\\u003e\\u2028\"}"
        );
    }

    // -- /metrics ------------------------------------------------------------------------------

    #[tokio::test]
    async fn metrics_router_serves_openmetrics_and_404s() {
        let metrics = Arc::new(Metrics::new("v9"));
        metrics.unseal_request();
        let router = metrics_router(Arc::clone(&metrics));
        let reply = send(&router, Method::GET, "/metrics", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some(metrics::CONTENT_TYPE));
        assert!(
            reply
                .text()
                .contains("sealed_secrets_controller_build_info{revision=\"v9\"} 1")
        );
        assert!(
            reply
                .text()
                .contains("sealed_secrets_controller_unseal_requests_total 1")
        );
        let reply = send(&router, Method::GET, "/healthz", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.text(), "404 page not found\n");
    }

    // -- limiter arithmetic ----------------------------------------------------------------------

    const S: i128 = NANOS_PER_SECOND;

    #[test]
    fn gcra_matches_throttled_arithmetic() {
        // 2/s, burst 2: three at once, then one every 500 ms.
        let limiter = RateLimiter::new(2.0, 2, 16);
        let at = |t: i128| limiter.check_at("/v1/verify", b"c", t).unwrap();
        let first = at(0);
        assert_eq!((first.allowed, first.remaining, first.limit), (true, 2, 3));
        assert_eq!(ceil_seconds(first.reset_after), 1);
        assert_eq!(at(0).remaining, 1);
        let third = at(0);
        assert_eq!((third.allowed, third.remaining), (true, 0));
        assert_eq!(ceil_seconds(third.reset_after), 2);
        let refused = at(0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(S / 2));
        assert_eq!(refused.reset_after, 3 * S / 2);
        assert!(!at(S / 2 - 1).allowed);
        assert!(at(S / 2).allowed);
        assert!(!at(S / 2).allowed);
        // After a full reset the whole burst is back.
        assert_eq!(at(10 * S).remaining, 2);
    }

    #[test]
    fn zero_burst_allows_one_per_interval() {
        let limiter = RateLimiter::new(1.0, 0, 16);
        let at = |t: i128| limiter.check_at("/p", b"c", t).unwrap();
        assert!(at(0).allowed);
        let refused = at(0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(S));
        assert!(at(S).allowed);
    }

    #[test]
    fn non_positive_rates_allow_only_the_burst() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let limiter = RateLimiter::new(rate, 1, 16);
            let at = |t: i128| limiter.check_at("/p", b"c", t).unwrap();
            assert!(at(0).allowed, "{rate}");
            assert!(at(0).allowed, "{rate}");
            assert!(!at(3600 * S).allowed, "{rate}");
        }
        // A huge rate still limits to the burst within one nanosecond.
        let limiter = RateLimiter::new(1e18, 0, 16);
        assert!(limiter.check_at("/p", b"c", 0).unwrap().allowed);
        assert!(!limiter.check_at("/p", b"c", 0).unwrap().allowed);
    }

    #[test]
    fn the_store_stays_bounded() {
        let limiter = RateLimiter::new(1.0, 0, 64);
        for i in 0..10_000u32 {
            let client = i.to_be_bytes();
            assert!(limiter.check_at("/p", &client, 0).unwrap().allowed);
            assert!(limiter.store.lock().unwrap().len() <= 64);
        }
        // Expired keys are dropped before live ones.
        let limiter = RateLimiter::new(1.0, 0, 4);
        for i in 0..4u8 {
            limiter.check_at("/p", &[i], 0).unwrap();
        }
        limiter.check_at("/p", b"late", 5 * S).unwrap();
        assert_eq!(limiter.store.lock().unwrap().len(), 1);
    }

    #[test]
    fn client_key_is_the_last_forwarded_hop() {
        let mut headers = HeaderMap::new();
        assert_eq!(client_key(&headers), b"");
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("1.1.1.1, 2.2.2.2 "),
        );
        assert_eq!(client_key(&headers), b"2.2.2.2");
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("3.3.3.3"));
        assert_eq!(client_key(&headers), b"3.3.3.3");
    }
}
