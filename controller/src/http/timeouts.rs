//! `--read-timeout` and `--write-timeout`, as Go's `http.Server` applies them: the body must
//! arrive within the read timeout (a late body is a read error), the answer must be ready within
//! the write timeout (`503 timeout`; Go would drop the connection). Zero disables either.

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::Response,
};

use super::response::http_error;

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

#[cfg(test)]
mod tests {
    use axum::{
        body::{Body, Bytes},
        http::{Method, StatusCode},
        routing::any,
    };

    use super::*;
    use crate::http::test_support::{generous, key_service, post, router_with, send};

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
}
