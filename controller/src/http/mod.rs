//! The controller's HTTP API (upstream's `:8080` server) and the metrics endpoint (`:8081`).
//!
//! kubeseal talks to these routes through the API server's service proxy, so paths, status
//! codes, headers and bodies follow upstream byte for byte where a client can tell:
//!
//! | Path | Answer |
//! |---|---|
//! | `/healthz` | `200 ok\n` (not instrumented) |
//! | `/v1/cert.pem` | the newest sealing certificate, or `500 cannot get certificate\n` |
//! | `/v1/verify` | `200` opens, `409` does not, `400` body unreadable, `500` not one SealedSecret; rate limited (`429`), bounded (`413`, `503`) |
//! | `/v1/rotate` | `200` + the re-sealed SealedSecret as JSON, `400` body unreadable, `500` otherwise; rate limited and bounded as verify |
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
//! - **Rate-limit key.** The limiter keys on the route and the TCP peer's address, not on the
//!   client-written `X-Forwarded-For` (upstream), which a client can vary at will; a forwarded
//!   address counts only when the peer is in `--trusted-proxies` ([`ratelimit`] has the rule).
//!   `/v1/rotate` is limited too (upstream: not at all) and also sends the `X-RateLimit-*`
//!   headers.
//! - **Requests are bounded** ([`budget`] has the details): a body over `--max-request-bytes`
//!   or an object with more than `--max-request-items` items is refused with `413` and a short
//!   text naming the limit; RSA work runs at most `--api-crypto-workers` at a time, and a
//!   request that cannot start within [`budget::DEFAULT_CRYPTO_WAIT`] gets `503 server busy`
//!   with `Retry-After: 1`; verify stops at the first item that does not open, and the work of
//!   a request that is gone (client left, `--write-timeout`) stops at the next item. These
//!   refusals, like `429`, are logged at debug level only: a flood must not flood the logs;
//!   `http_requests_total` counts them by code.
//! - **Verify's 500 carries the reason** (`Multistream YAML not supported yet …`,
//!   `unexpected resource type: …`) as `text/plain`, instead of an empty body, so kubeseal users
//!   see why. It only ever describes the posted document's structure.
//! - **Rotate answers `Content-Type: application/json`**; upstream sets the header after writing
//!   the status, so Go sniffs `text/plain; charset=utf-8`.
//! - **`/v1/cert.pem` is re-encoded** from the key's certificate as exactly one `CERTIFICATE`
//!   block in Go's layout (64-column base64, LF), whatever line endings or extra blocks the key
//!   Secret's `tls.crt` has.
//!
//! `--read-timeout` and `--write-timeout` bound each request as Go's `http.Server` does: the
//! request body must arrive within the read timeout (a late body is a read error, 400, as in
//! upstream's handlers), and the answer must be ready within the write timeout (Go then drops
//! the connection; we answer `503 timeout` so the client learns why). Zero disables either.
//!
//! `/healthz`, `/v1/cert.pem` and `/metrics` do no RSA work and never wait for the pool.
//! Nothing here logs or returns plaintext: verify returns a status only, and rotate returns
//! ciphertexts only.

pub mod budget;
pub mod ratelimit;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
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

use self::{
    budget::{
        BUSY_RETRY_AFTER_SECONDS, BodyError, Cancel, CryptoPool, Guarded, PoolError, RequestLimits,
        read_body,
    },
    ratelimit::{ClientBucket, RATE_LIMIT_KEYS, RateLimiter, StoreError, TrustedProxies},
};

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
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// `--rate-limit`: sustained `/v1/verify` (and `/v1/rotate`) requests per second per
    /// client. Not positive (or not finite) allows only the initial burst.
    pub rate_limit: f64,
    /// `--rate-limit-burst`: requests beyond the rate allowed at once (the window is `burst + 1`).
    pub rate_limit_burst: u32,
    /// `--trusted-proxies`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// `--max-request-bytes` and `--max-request-items`.
    pub limits: RequestLimits,
    /// `--api-crypto-workers`: RSA jobs at once (0: cores minus one, at least one).
    pub crypto_workers: usize,
    /// How long a request waits for an RSA worker before `503`.
    pub crypto_wait: Duration,
}

impl Default for HttpConfig {
    /// Upstream's rate limit (2/s, burst 2), no trusted proxy, the default caps.
    fn default() -> Self {
        Self {
            rate_limit: 2.0,
            rate_limit_burst: 2,
            trusted_proxies: TrustedProxies::default(),
            limits: RequestLimits::default(),
            crypto_workers: 0,
            crypto_wait: budget::DEFAULT_CRYPTO_WAIT,
        }
    }
}

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

#[derive(Clone)]
struct ApiState {
    keys: Arc<dyn KeyService>,
    metrics: Arc<Metrics>,
    limiter: Arc<RateLimiter>,
    trusted_proxies: Arc<TrustedProxies>,
    limits: RequestLimits,
    pool: Arc<CryptoPool>,
}

impl ApiState {
    fn new(keys: Arc<dyn KeyService>, metrics: Arc<Metrics>, config: HttpConfig) -> Self {
        Self {
            keys,
            metrics,
            limiter: Arc::new(RateLimiter::new(
                config.rate_limit,
                config.rate_limit_burst,
                RATE_LIMIT_KEYS,
            )),
            trusted_proxies: Arc::new(config.trusted_proxies),
            limits: config.limits,
            pool: Arc::new(CryptoPool::new(config.crypto_workers, config.crypto_wait)),
        }
    }
}

/// The main API: `/healthz`, `/v1/cert.pem`, `/v1/verify`, `/v1/rotate`, 404 elsewhere.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the rate limiter keys
/// on the peer address. Without it every request counts as one client.
pub fn api_router(keys: Arc<dyn KeyService>, metrics: Arc<Metrics>, config: HttpConfig) -> Router {
    router(ApiState::new(keys, metrics, config))
}

fn router(state: ApiState) -> Router {
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
    rate_limited(state, VERIFY_PATH, request, verify_body).await
}

async fn rotate(State(state): State<ApiState>, request: Request) -> Response {
    rate_limited(state, ROTATE_PATH, request, rotate_body).await
}

/// The client a request counts against (see [`ratelimit`]).
fn client_of(trusted: &TrustedProxies, request: &Request) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    trusted.client_address(peer, request.headers())
}

/// Counts the request against its client's allowance on `path`, runs `handler` if allowed,
/// adds the `X-RateLimit-*` headers and records the metrics.
async fn rate_limited<F, Fut>(
    state: ApiState,
    path: &'static str,
    request: Request,
    handler: F,
) -> Response
where
    F: FnOnce(ApiState, Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let start = Instant::now();
    let method = request.method().clone();
    let client = ClientBucket::from(client_of(&state.trusted_proxies, &request));
    let metrics = Arc::clone(&state.metrics);
    let response = match state.limiter.check(path, client) {
        Err(StoreError) => http_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        Ok(decision) => {
            let mut response = if decision.allowed {
                handler(state, request).await
            } else {
                http_error(StatusCode::TOO_MANY_REQUESTS, "limit exceeded")
            };
            decision.write_headers(response.headers_mut());
            response
        }
    };
    metrics.observe_http(
        path,
        method.as_str(),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

/// Reads the body within `--max-request-bytes`: `413` over it, `400` when unreadable.
async fn capped_body(state: &ApiState, path: &str, request: Request) -> Result<Bytes, Response> {
    let (parts, body) = request.into_parts();
    match read_body(&parts.headers, body, state.limits.max_body_bytes).await {
        Ok(body) => Ok(body),
        Err(err @ BodyError::TooLarge(_)) => {
            tracing::debug!(path, error = %err, "request refused");
            Err(http_error(StatusCode::PAYLOAD_TOO_LARGE, &err.to_string()))
        }
        Err(err) => {
            tracing::error!(error = %err, "Error handling {path} request");
            Err(empty(StatusCode::BAD_REQUEST))
        }
    }
}

/// `503` with `Retry-After`: every RSA worker stayed busy for the whole wait.
fn busy(path: &str) -> Response {
    tracing::debug!(path, "request refused: every API crypto worker is busy");
    let mut response = http_error(StatusCode::SERVICE_UNAVAILABLE, "server busy");
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(BUSY_RETRY_AFTER_SECONDS),
    );
    response
}

/// A crypto job of the API: the keys, the posted body, the limits, the cancellation flag.
type CryptoJob<T> = fn(&dyn KeyService, &[u8], RequestLimits, &Cancel) -> Result<T, RequestError>;

/// Reads the capped body of `request` and runs `job` on the crypto pool. The answers both
/// crypto endpoints share are made here: the body's limits, `413` over the item cap, `503`
/// when every worker stays busy, `500` when the job died. `Ok` carries the job's other
/// outcomes for the endpoint to answer; `what` names the endpoint's work in error logs.
async fn run_crypto<T: Send + 'static>(
    state: ApiState,
    path: &'static str,
    what: &'static str,
    request: Request,
    job: CryptoJob<T>,
) -> Result<Result<T, RequestError>, Response> {
    let body = capped_body(&state, path, request).await?;
    let keys = Arc::clone(&state.keys);
    let limits = state.limits;
    match state
        .pool
        .run(move |cancel| job(keys.as_ref(), &body, limits, cancel))
        .await
    {
        Ok(Err(err @ RequestError::TooManyItems(_))) => {
            tracing::debug!(path, error = %err, "request refused");
            Err(http_error(StatusCode::PAYLOAD_TOO_LARGE, &err.to_string()))
        }
        Ok(outcome) => Ok(outcome),
        Err(PoolError::Busy) => Err(busy(path)),
        Err(err) => {
            tracing::error!(error = %err, "{what}");
            Err(empty(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

async fn verify_body(state: ApiState, request: Request) -> Response {
    match run_crypto(
        state,
        VERIFY_PATH,
        "Error validating secret",
        request,
        opens,
    )
    .await
    {
        Ok(Ok(true)) => empty(StatusCode::OK),
        Ok(Ok(false)) => empty(StatusCode::CONFLICT),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Error validating secret");
            http_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
        }
        Err(response) => response,
    }
}

async fn rotate_body(state: ApiState, request: Request) -> Response {
    match run_crypto(state, ROTATE_PATH, "Error rotating secret", request, reseal).await {
        Ok(Ok(json)) => with_body(StatusCode::OK, APPLICATION_JSON, json),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Error rotating secret");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(response) => response,
    }
}

// ---------------------------------------------------------------------------------------------
// Request processing (synchronous, run on the blocking pool)

/// Why a posted body is not one SealedSecret, or was not processed. Texts describe structure
/// and limits only.
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
    #[error("more than {0} items in one SealedSecret")]
    TooManyItems(usize),
    #[error("an item is not valid base64")]
    Undecodable,
    #[error("the request is gone")]
    Cancelled,
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

/// Refuses objects over the item cap; the deprecated `spec.data` blob counts as one item.
fn check_items(sealed: &SealedSecret, limits: RequestLimits) -> Result<(), RequestError> {
    let items = sealed.spec.encrypted_data.len() + usize::from(sealed.spec.data.is_some());
    if items > limits.max_items {
        return Err(RequestError::TooManyItems(limits.max_items));
    }
    Ok(())
}

/// Whether every `encryptedData` item is base64, checked before any RSA work: an item that is
/// not cannot open, so the whole object cannot.
fn items_are_base64(sealed: &SealedSecret) -> bool {
    sealed.spec.encrypted_data.values().all(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .is_ok()
    })
}

/// Whether every `encryptedData` item (or the deprecated blob) of the posted object opens in its
/// own scope. Templates are not run (see the module docs). Stops at the first item that does
/// not open, and between items once `cancel` is set.
fn opens(
    keys: &dyn KeyService,
    body: &[u8],
    limits: RequestLimits,
    cancel: &Cancel,
) -> Result<bool, RequestError> {
    let mut sealed = decode_sealed_secret(body)?;
    check_items(&sealed, limits)?;
    if !items_are_base64(&sealed) {
        return Ok(false);
    }
    sealed.spec.template.data = None;
    let decrypter = keys.decrypter();
    let guarded = Guarded::new(decrypter.as_ref(), cancel);
    let options = UnsealOptions {
        accept_deprecated_v1_data: true,
    };
    let outcome = unseal(&sealed, &guarded, options);
    if cancel.is_cancelled() {
        return Err(RequestError::Cancelled);
    }
    Ok(match outcome {
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
fn reseal(
    keys: &dyn KeyService,
    body: &[u8],
    limits: RequestLimits,
    cancel: &Cancel,
) -> Result<String, RequestError> {
    let sealed = decode_sealed_secret(body)?;
    check_items(&sealed, limits)?;
    if !items_are_base64(&sealed) {
        return Err(RequestError::Undecodable);
    }
    let key = keys.sealing_public_key().ok_or(RequestError::NoKey)?;
    let decrypter = keys.decrypter();
    let guarded = Guarded::new(decrypter.as_ref(), cancel);
    let resealed = reencrypt(&sealed, &guarded, &key, &mut SystemRandom);
    if cancel.is_cancelled() {
        return Err(RequestError::Cancelled);
    }
    let mut value = resealed?.to_upstream_value();
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

#[cfg(test)]
mod tests {
    use super::{budget::DEFAULT_MAX_BODY_BYTES, budget::DEFAULT_MAX_ITEMS, *};
    use std::{
        collections::BTreeMap,
        sync::{
            Mutex, OnceLock,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use axum::http::{HeaderMap, Method, Request as HttpRequest};
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

    fn generous() -> HttpConfig {
        HttpConfig {
            rate_limit: 1000.0,
            rate_limit_burst: 1000,
            ..HttpConfig::default()
        }
    }

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

    /// The peer of requests sent with [`send`].
    const LOCAL_PEER: &str = "127.0.0.1";

    fn request(
        peer: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Request {
        let mut request = HttpRequest::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(body.into()).unwrap();
        let peer = SocketAddr::new(peer.parse().unwrap(), 40000);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    async fn send(
        router: &Router,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        send_from(router, LOCAL_PEER, method, path, headers, body).await
    }

    /// Sends a request that arrived from `peer` (what `ConnectInfo` would record).
    async fn send_from(
        router: &Router,
        peer: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let request = request(peer, method, path, headers, body);
        let response = router.clone().oneshot(request).await.unwrap();
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
        let (router, metrics) = router_with(key_service(), generous());
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
        let (router, metrics) = router_with(key_service(), generous());
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
        let (router, metrics) = router_with(key_service(), generous());
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
        let (router, _) = router_with(keys, generous());
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
        let (router, metrics) = router_with(no_keys(), generous());
        let reply = send(&router, Method::GET, "/v1/cert.pem", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.text(), "cannot get certificate\n");
        assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
        assert!(metrics.encode().contains("code=\"500\""));

        let garbage = Arc::new(TestKeys {
            keys: Vec::new(),
            cert: Some("not a pem".into()),
        });
        let (router, _) = router_with(garbage, generous());
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
        let (router, metrics) = router_with(key_service(), generous());
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
        let (router, _) = router_with(key_service(), generous());
        let mut moved = sealed(Scope::Strict);
        moved.metadata.namespace = Some("elsewhere".into());
        let mut tampered = sealed(Scope::Strict);
        tampered
            .spec
            .encrypted_data
            .insert("password".into(), "AAAA".into());
        let (other_keys, _) = router_with(no_keys(), generous());
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
        let (router, _) = router_with(key_service(), generous());
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
        let (router, _) = router_with(key_service(), generous());
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
    async fn oversized_bodies_are_413_naming_the_limit() {
        let mut config = generous();
        config.limits.max_body_bytes = 1000;
        let (router, metrics) = router_with(key_service(), config);
        let big = vec![b' '; 1001];
        for path in ["/v1/verify", "/v1/rotate"] {
            // With a Content-Length (refused unread) and streamed without one.
            let streamed = futures::stream::iter(
                big.chunks(100)
                    .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            );
            for body in [Body::from(big.clone()), Body::from_stream(streamed)] {
                let reply = send(&router, Method::POST, path, &[], body).await;
                assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
                assert_eq!(reply.text(), "request body larger than 1000 bytes\n");
                assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
            }
            // At the cap it is read (and is not a SealedSecret).
            let reply = post(&router, path, vec![b' '; 1000]).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        }
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"413\",method=\"post\"} 2"
            )
        );
        let (router, _) = router_with(key_service(), generous());
        let reply = post(
            &router,
            "/v1/verify",
            vec![b' '; DEFAULT_MAX_BODY_BYTES + 1],
        )
        .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A SealedSecret `shop/db` with `count` items that only `key` opens.
    fn many_items(count: usize, key: &PrivateKey) -> SealedSecret {
        let data: serde_json::Map<String, Value> = (0..count)
            .map(|i| (format!("item-{i:04}"), json!("dmFsdWU=")))
            .collect();
        let secret = secret_from_value(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "data": data
        }))
        .unwrap();
        let options = SealOptions {
            scope: Scope::Strict,
            namespace: NamespaceDefault {
                namespace: "default".into(),
                explicit: false,
            },
            allow_empty_data: false,
        };
        seal_secret(secret, &key.public_key(), &options, &mut SystemRandom).unwrap()
    }

    #[tokio::test]
    async fn too_many_items_are_413_naming_the_limit() {
        let mut config = generous();
        config.limits.max_items = 3;
        let (router, _) = router_with(key_service(), config);
        for path in ["/v1/verify", "/v1/rotate"] {
            let reply = post(&router, path, json_body(&many_items(4, old_key()))).await;
            assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            assert_eq!(reply.text(), "more than 3 items in one SealedSecret\n");
            // At the cap the object is processed.
            let reply = post(&router, path, json_body(&many_items(3, old_key()))).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
        }
        assert_eq!(DEFAULT_MAX_ITEMS, 1024);
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_a_read_error() {
        use futures::StreamExt as _;
        let (router, _) = router_with(key_service(), generous());
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

    /// One request per 5 s after a burst of 3: slow enough that test time never refills it.
    fn strict_limit() -> HttpConfig {
        HttpConfig {
            rate_limit: 0.2,
            rate_limit_burst: 2,
            ..HttpConfig::default()
        }
    }

    /// Sends `/v1/verify` from `peer` until refused; returns how many were allowed.
    async fn allowance(router: &Router, peer: &str, forwarded: &str, body: &str) -> usize {
        let headers = [("x-forwarded-for", forwarded)];
        let headers: &[(&str, &str)] = if forwarded.is_empty() { &[] } else { &headers };
        for allowed in 0..10 {
            let reply = send_from(
                router,
                peer,
                Method::POST,
                "/v1/verify",
                headers,
                body.to_string(),
            )
            .await;
            if reply.status == StatusCode::TOO_MANY_REQUESTS {
                return allowed;
            }
            assert_eq!(reply.status, StatusCode::OK);
        }
        panic!("never limited");
    }

    #[tokio::test]
    async fn verify_is_rate_limited_per_peer() {
        let (router, metrics) = router_with(key_service(), strict_limit());
        let body = json_body(&sealed(Scope::Strict));
        let alice = "10.0.0.1";
        for expected_remaining in ["2", "1", "0"] {
            let reply = send_from(
                &router,
                alice,
                Method::POST,
                "/v1/verify",
                &[],
                body.clone(),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("x-ratelimit-limit"), Some("3"));
            assert_eq!(
                reply.header("x-ratelimit-remaining"),
                Some(expected_remaining)
            );
            assert_eq!(reply.header("retry-after"), None);
        }
        let refused = send_from(
            &router,
            alice,
            Method::POST,
            "/v1/verify",
            &[],
            body.clone(),
        )
        .await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.text(), "limit exceeded\n");
        assert_eq!(refused.header("content-type"), Some(TEXT_PLAIN));
        assert_eq!(refused.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(refused.header("x-ratelimit-reset"), Some("15"));
        assert_eq!(refused.header("retry-after"), Some("5"));
        // Another peer has its own allowance.
        assert_eq!(allowance(&router, "10.0.0.2", "", &body).await, 3);
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/verify\",code=\"429\",method=\"post\"} 2"
            )
        );
    }

    #[tokio::test]
    async fn forged_forwarded_for_from_an_untrusted_peer_shares_the_peers_bucket() {
        let (router, _) = router_with(key_service(), strict_limit());
        let body = json_body(&sealed(Scope::Strict));
        let attacker = "203.0.113.9";
        // A new forged address on every request: still one client, the peer.
        let mut allowed = 0;
        for i in 0..10 {
            let forged = format!("198.51.100.{i}");
            let headers = [("x-forwarded-for", forged.as_str())];
            let reply = send_from(
                &router,
                attacker,
                Method::POST,
                "/v1/verify",
                &headers,
                body.clone(),
            )
            .await;
            if reply.status == StatusCode::OK {
                allowed += 1;
            } else {
                assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
            }
        }
        assert_eq!(allowed, 3);
        // The forged addresses did not get buckets of their own.
        assert_eq!(allowance(&router, "198.51.100.1", "", &body).await, 3);
    }

    #[tokio::test]
    async fn a_trusted_proxys_forwarded_address_is_the_client() {
        let mut config = strict_limit();
        config.trusted_proxies = ratelimit::TrustedProxies::parse("10.96.0.0/12").unwrap();
        let (router, _) = router_with(key_service(), config);
        let body = json_body(&sealed(Scope::Strict));
        let proxy = "10.96.0.1";
        // Two clients behind the proxy each get their own allowance.
        assert_eq!(allowance(&router, proxy, "192.0.2.1", &body).await, 3);
        assert_eq!(allowance(&router, proxy, "192.0.2.2", &body).await, 3);
        // A client forging entries left of what the proxy appended stays itself.
        assert_eq!(
            allowance(&router, proxy, "198.51.100.7, 192.0.2.1", &body).await,
            0
        );
        // Requests through the proxy without a forwarded address count as the proxy.
        assert_eq!(allowance(&router, proxy, "", &body).await, 3);
    }

    #[tokio::test]
    async fn rotate_is_rate_limited_too() {
        let (router, metrics) = router_with(key_service(), strict_limit());
        let body = json_body(&sealed(Scope::Strict));
        let peer = "10.0.0.5";
        for _ in 0..3 {
            let reply =
                send_from(&router, peer, Method::POST, "/v1/rotate", &[], body.clone()).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert!(reply.header("x-ratelimit-remaining").is_some());
        }
        let refused = send_from(&router, peer, Method::POST, "/v1/rotate", &[], body.clone()).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.text(), "limit exceeded\n");
        assert_eq!(refused.header("retry-after"), Some("5"));
        // Verify keeps its own allowance (upstream keys on the route too).
        assert_eq!(allowance(&router, peer, "", &body).await, 3);
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"429\",method=\"post\"} 1"
            )
        );
    }

    // -- RSA budget ------------------------------------------------------------------------------

    /// Registered keys behind a decrypter that counts how often it is asked to open an item.
    struct CountingKeys {
        keys: Vec<PrivateKey>,
        calls: AtomicUsize,
    }

    struct CountingDecrypter<'a>(&'a CountingKeys);

    impl Decrypter for CountingDecrypter<'_> {
        fn decrypt(
            &self,
            ciphertext: &[u8],
            label: &[u8],
        ) -> Result<zeroize::Zeroizing<Vec<u8>>, sealed_secrets_core::crypto::CryptoError> {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            self.0.keys.as_slice().decrypt(ciphertext, label)
        }
    }

    impl KeyService for CountingKeys {
        fn sealing_cert_pem(&self) -> Option<String> {
            None
        }

        fn sealing_public_key(&self) -> Option<PublicKey> {
            self.keys.last().map(PrivateKey::public_key)
        }

        fn decrypter(&self) -> Box<dyn Decrypter + '_> {
            Box::new(CountingDecrypter(self))
        }
    }

    #[tokio::test]
    async fn verify_stops_at_the_first_item_that_does_not_open() {
        let keys = Arc::new(CountingKeys {
            keys: vec![old_key().clone()],
            calls: AtomicUsize::new(0),
        });
        let (router, _) = router_with(keys.clone(), generous());
        // Thirty items no registered key opens: one attempt, then the answer is known.
        let foreign = many_items(30, new_key());
        let reply = post(&router, "/v1/verify", json_body(&foreign)).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 1);
        // Control: when every item opens, every item is attempted.
        let own = many_items(30, old_key());
        let reply = post(&router, "/v1/verify", json_body(&own)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 30);
        // The eleventh item (in item order) does not open: eleven attempts.
        let mut mixed = own.clone();
        let stranger = foreign.spec.encrypted_data["item-0010"].clone();
        mixed
            .spec
            .encrypted_data
            .insert("item-0010".into(), stranger);
        let reply = post(&router, "/v1/verify", json_body(&mixed)).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 11);
        // Rotate fails as early.
        let reply = post(&router, "/v1/rotate", json_body(&mixed)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 11);
        // An item that is not base64 cannot open: no RSA work at all.
        let mut garbled = own;
        garbled
            .spec
            .encrypted_data
            .insert("item-0029".into(), "not base64!".into());
        let reply = post(&router, "/v1/verify", json_body(&garbled)).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        let reply = post(&router, "/v1/rotate", json_body(&garbled)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(keys.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_busy_pool_is_503_with_retry_after_and_healthz_still_answers() {
        let mut config = generous();
        config.crypto_workers = 1;
        config.crypto_wait = std::time::Duration::from_millis(10);
        let state = ApiState::new(key_service(), Arc::new(Metrics::new("test")), config);
        let (pool, metrics) = (Arc::clone(&state.pool), Arc::clone(&state.metrics));
        let router = router(state);
        let body = json_body(&sealed(Scope::Strict));
        let held = pool.exhaust().await;
        for path in ["/v1/verify", "/v1/rotate"] {
            let reply = post(&router, path, body.clone()).await;
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(reply.text(), "server busy\n");
            assert_eq!(reply.header("retry-after"), Some("1"));
        }
        // Neither /healthz nor the certificate waits for an RSA worker.
        let reply = send(&router, Method::GET, "/healthz", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
        let reply = send(&router, Method::GET, "/v1/cert.pem", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
        drop(held);
        let reply = post(&router, "/v1/verify", body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/verify\",code=\"503\",method=\"post\"} 1"
            )
        );
    }

    /// Keys whose decrypter opens anything, but only once the test lets each call return.
    struct GateKeys {
        started: tokio::sync::mpsc::UnboundedSender<()>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
        calls: AtomicUsize,
    }

    impl Decrypter for &GateKeys {
        fn decrypt(
            &self,
            _: &[u8],
            _: &[u8],
        ) -> Result<zeroize::Zeroizing<Vec<u8>>, sealed_secrets_core::crypto::CryptoError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let _ = self.started.send(());
            // Returns when released, or at once when the test dropped the sender.
            let _ = self.release.lock().unwrap().recv();
            Ok(zeroize::Zeroizing::new(b"opened".to_vec()))
        }
    }

    impl KeyService for GateKeys {
        fn sealing_cert_pem(&self) -> Option<String> {
            None
        }

        fn sealing_public_key(&self) -> Option<PublicKey> {
            Some(old_key().public_key())
        }

        fn decrypter(&self) -> Box<dyn Decrypter + '_> {
            Box::new(self)
        }
    }

    fn gate() -> (
        Arc<GateKeys>,
        tokio::sync::mpsc::UnboundedReceiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started, started_rx) = tokio::sync::mpsc::unbounded_channel();
        let (release_tx, release) = std::sync::mpsc::channel();
        let keys = Arc::new(GateKeys {
            started,
            release: Mutex::new(release),
            calls: AtomicUsize::new(0),
        });
        (keys, started_rx, release_tx)
    }

    #[tokio::test]
    async fn dropping_the_request_stops_its_job_between_items() {
        for path in ["/v1/verify", "/v1/rotate"] {
            let (keys, mut started, release) = gate();
            let state = ApiState::new(keys.clone(), Arc::new(Metrics::new("t")), generous());
            let pool = Arc::clone(&state.pool);
            let router = router(state);
            let body = json_body(&many_items(20, old_key()));
            let request = request(LOCAL_PEER, Method::POST, path, &[], body);
            let task = tokio::spawn(router.oneshot(request));
            started.recv().await.expect("the job opens its first item");
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            // From now on every item would open at once; only cancellation stops the job.
            drop(release);
            pool.idle().await;
            assert_eq!(keys.calls.load(Ordering::SeqCst), 1, "{path}");
        }
    }

    #[tokio::test]
    async fn a_write_timeout_stops_the_job_too() {
        let (keys, mut started, release) = gate();
        let state = ApiState::new(keys.clone(), Arc::new(Metrics::new("t")), generous());
        let pool = Arc::clone(&state.pool);
        let router = with_timeouts(
            router(state),
            Timeouts {
                read: std::time::Duration::ZERO,
                write: std::time::Duration::from_millis(50),
            },
        );
        let body = json_body(&many_items(20, old_key()));
        let reply = post(&router, "/v1/verify", body).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.text(), "timeout\n");
        started.recv().await.expect("the job had started");
        drop(release);
        pool.idle().await;
        assert_eq!(keys.calls.load(Ordering::SeqCst), 1);
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
        let (router, metrics) = router_with(key_service(), generous());
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let original = sealed(scope);
            let reply = post(&router, "/v1/rotate", yaml_body(&original)).await;
            assert_eq!(reply.status, StatusCode::OK, "{scope}");
            assert_eq!(reply.header("content-type"), Some(APPLICATION_JSON));
            assert!(reply.header("x-ratelimit-limit").is_some());
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
        let (router, metrics) = router_with(key_service(), generous());
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
        let (keyless, _) = router_with(no_keys(), generous());
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
}
