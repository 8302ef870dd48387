//! The API server's router: upstream's paths mapped to the handlers of [`super::health`],
//! [`super::cert`] and [`super::verify_rotate`], 404 elsewhere.

use std::sync::Arc;

use axum::{Router, routing::any};

use super::{
    cert::cert_pem,
    health::healthz,
    key_service::KeyService,
    response::not_found,
    state::{ApiState, CERT_PATH, HEALTHZ_PATH, HttpConfig, ROTATE_PATH, VERIFY_PATH},
    verify_rotate::{rotate, verify},
};
use crate::metrics::Metrics;

/// The main API: `/healthz`, `/v1/cert.pem`, `/v1/verify`, `/v1/rotate`, 404 elsewhere.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the rate limiter keys
/// on the peer address. Without it every request counts as one client.
pub fn api_router(keys: Arc<dyn KeyService>, metrics: Arc<Metrics>, config: HttpConfig) -> Router {
    router(ApiState::new(keys, metrics, config))
}

pub(super) fn router(state: ApiState) -> Router {
    Router::new()
        .route(HEALTHZ_PATH, any(healthz))
        .route(CERT_PATH, any(cert_pem))
        .route(VERIFY_PATH, any(verify))
        .route(ROTATE_PATH, any(rotate))
        .fallback(not_found)
        .with_state(state)
}
