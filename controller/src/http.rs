//! TEMPORARY placeholder until the HTTP module lands (being written in parallel).
use crate::metrics::Metrics;
use std::sync::Arc;
/// Keys for the API.
pub trait KeyService: Send + Sync + 'static {
    /// Cert.
    fn sealing_cert_pem(&self) -> Option<String>;
    /// Public key.
    fn sealing_public_key(&self) -> Option<sealed_secrets_core::keys::PublicKey>;
    /// Decrypter.
    fn decrypter(&self) -> Box<dyn sealed_secrets_core::crypto::Decrypter + '_>;
}
/// Config.
pub struct HttpConfig {
    /// r
    pub rate_limit: f64,
    /// b
    pub rate_limit_burst: u32,
}
/// Router.
pub fn api_router(
    _keys: Arc<dyn KeyService>,
    _metrics: Arc<Metrics>,
    _config: HttpConfig,
) -> axum::Router {
    axum::Router::new()
}
/// Router.
pub fn metrics_router(_metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
}
