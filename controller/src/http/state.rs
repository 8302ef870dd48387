//! The API server's settings, its paths, and the state every handler shares (keys, metrics,
//! rate limiter, request limits, crypto pool). Handlers and the router both depend on this
//! module; it depends on neither.

use std::{sync::Arc, time::Duration};

use super::{
    budget::{self, CryptoPool, RequestLimits},
    key_service::KeyService,
    ratelimit::{RATE_LIMIT_KEYS, RateLimiter, TrustedProxies},
};
use crate::metrics::Metrics;

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

pub(super) const HEALTHZ_PATH: &str = "/healthz";
pub(super) const CERT_PATH: &str = "/v1/cert.pem";
pub(super) const VERIFY_PATH: &str = "/v1/verify";
pub(super) const ROTATE_PATH: &str = "/v1/rotate";

#[derive(Clone)]
pub(super) struct ApiState {
    pub(super) keys: Arc<dyn KeyService>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) trusted_proxies: Arc<TrustedProxies>,
    pub(super) limits: RequestLimits,
    pub(super) pool: Arc<CryptoPool>,
}

impl ApiState {
    pub(super) fn new(
        keys: Arc<dyn KeyService>,
        metrics: Arc<Metrics>,
        config: HttpConfig,
    ) -> Self {
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
