//! Liveness and observation: `/healthz` on the API server, and the metrics server (`/metrics`
//! in OpenMetrics text, 404 elsewhere). Neither does RSA work nor waits for the crypto pool.

use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::any};

use super::response::{TEXT_PLAIN, not_found, with_body};
use crate::metrics::{self, Metrics};

const METRICS_PATH: &str = "/metrics";

pub(super) async fn healthz() -> Response {
    with_body(StatusCode::OK, TEXT_PLAIN, "ok\n")
}

/// The metrics server: `/metrics` (OpenMetrics text), 404 elsewhere.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(METRICS_PATH, any(serve_metrics))
        .fallback(not_found)
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    with_body(StatusCode::OK, metrics::CONTENT_TYPE, metrics.encode())
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Method};

    use super::*;
    use crate::http::test_support::{generous, key_service, router_with, send};

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
