//! Answers as Go's `net/http` writes them: the content types, `http.Error`'s text layout, empty
//! bodies, the 404 of an unknown path, and the request metrics every instrumented route records.

use std::time::Instant;

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};

use crate::metrics::Metrics;

pub(super) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
pub(super) const PEM_FILE: &str = "application/x-pem-file";
pub(super) const APPLICATION_JSON: &str = "application/json";

pub(super) async fn not_found() -> Response {
    http_error(StatusCode::NOT_FOUND, "404 page not found")
}

pub(super) fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Go's `http.Error`: `text/plain`, `nosniff`, the message and a newline.
pub(super) fn http_error(status: StatusCode, message: &str) -> Response {
    let mut response = with_body(status, TEXT_PLAIN, format!("{message}\n"));
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub(super) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

pub(super) fn observe(
    metrics: &Metrics,
    path: &str,
    request: &Request,
    start: Instant,
    response: &Response,
) {
    metrics.observe_http(
        path,
        request.method().as_str(),
        response.status().as_u16(),
        start.elapsed(),
    );
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Method};

    use super::*;
    use crate::http::test_support::{generous, key_service, router_with, send};

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
}
