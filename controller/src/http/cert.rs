//! `/v1/cert.pem`: the sealing key's certificate, re-encoded as exactly one `CERTIFICATE` block
//! in Go's layout (64-column base64, LF), whatever line endings or extra blocks the key Secret's
//! `tls.crt` has; `500 cannot get certificate` when there is none.

use std::time::Instant;

use axum::{
    extract::{Request, State},
    http::StatusCode,
    response::Response,
};
use base64::Engine;

use super::{
    response::{PEM_FILE, http_error, observe, with_body},
    state::{ApiState, CERT_PATH},
};

pub(super) async fn cert_pem(State(state): State<ApiState>, request: Request) -> Response {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::{body::Body, http::Method};
    use sealed_secrets_core::cert::Certificate;

    use super::*;
    use crate::http::{
        response::TEXT_PLAIN,
        test_support::{
            TestKeys, generous, key_service, new_key, no_keys, pairs, router_with, send,
        },
    };

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
}
