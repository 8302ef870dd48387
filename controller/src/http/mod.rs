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
//!
//! Modules, one per job: `state` (settings, paths, shared state), `router`, `timeouts`,
//! `cert` (`/v1/cert.pem`), `verify_rotate` (the two crypto endpoints, from rate limit to
//! crypto pool) with `sealed_request` (the work they run), `health` (`/healthz`, the metrics
//! server), `response` (Go-shaped answers), [`ratelimit`], [`budget`], and [`key_service`]
//! (what the API needs of the keys: the HTTP layer owns the port, the wiring implements it).

pub mod budget;
mod cert;
mod health;
pub mod key_service;
pub mod ratelimit;
mod response;
mod router;
mod sealed_request;
mod state;
#[cfg(test)]
mod test_support;
mod timeouts;
mod verify_rotate;

pub use self::{
    health::metrics_router,
    key_service::KeyService,
    router::api_router,
    sealed_request::MULTISTREAM_ERROR,
    state::HttpConfig,
    timeouts::{Timeouts, with_timeouts},
};
