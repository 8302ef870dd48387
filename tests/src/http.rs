//! HTTP on loopback: one way to build a client agent (no proxy from the environment, a
//! per-request timeout, 4xx and 5xx returned as answers, optionally mutual TLS with the test
//! PKI) and to read its answers, for etcd, kube-apiserver and our controller alike.

use std::{sync::Arc, time::Duration};

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A ureq agent that does not turn 4xx/5xx into errors, with a per-request timeout; with
/// `client`, it trusts only `ca_pem` and presents the client certificate.
pub(crate) fn http_agent(
    timeout: Duration,
    client: Option<(&str, &str, &str)>,
) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(crypto_provider());
    if let Some((ca_pem, cert_pem, key_pem)) = client {
        let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes())
            .map_err(|e| format!("CA PEM: {e}"))?;
        let cert = ureq::tls::Certificate::from_pem(cert_pem.as_bytes())
            .map_err(|e| format!("client cert PEM: {e}"))?;
        let key = ureq::tls::PrivateKey::from_pem(key_pem.as_bytes())
            .map_err(|e| format!("client key PEM: {e}"))?;
        tls = tls
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
            .client_cert(Some(ureq::tls::ClientCert::new_with_certs(&[cert], key)));
    }
    Ok(ureq::Agent::config_builder()
        // Everything is on loopback: never go through a proxy from the environment.
        .proxy(None)
        .tls_config(tls.build())
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into())
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// Body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn read_reply(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    url: &str,
) -> Result<HttpReply, String> {
    let mut response = result.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| format!("{url}: reading body: {e}"))?;
    Ok(HttpReply {
        status,
        retry_after,
        body,
    })
}

pub(crate) fn http_get(agent: &ureq::Agent, url: &str) -> Result<HttpReply, String> {
    read_reply(agent.get(url).call(), url)
}

pub(crate) fn http_post(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<HttpReply, String> {
    read_reply(
        agent
            .post(url)
            .header("Content-Type", content_type)
            .send(body),
        url,
    )
}

/// Any method with an optional body (PUT, PATCH, DELETE, ...).
pub(crate) fn http_send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<HttpReply, String> {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", content_type)
        .body(body.to_vec())
        .map_err(|e| format!("{method} {url}: {e}"))?;
    read_reply(agent.run(request), url)
}
