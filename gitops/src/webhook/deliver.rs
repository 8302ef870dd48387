//! One delivery: resolve through the target policy, POST the JSON body, retry with backoff.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::{
    client::legacy::{
        Client,
        connect::{HttpConnector, dns::Name},
    },
    rt::TokioExecutor,
};
use sealed_secrets_sync::notify::Webhook;

use super::{
    ATTEMPT_TIMEOUT, ATTEMPTS, FIRST_BACKOFF,
    policy::{self, TargetPolicy},
};

/// Resolves a webhook host and refuses the connection when any address it resolves to is
/// refused by the policy (checked at connection time, so a changed DNS answer cannot slip
/// past the check made at reconcile time).
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<TargetPolicy>,
    port: u16,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        let port = self.port;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect();
            for address in &addresses {
                if let Some(why) = policy::refusal(*address, &policy) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!("webhook host {host}: {why}"),
                    ));
                }
            }
            Ok(addresses.into_iter())
        })
    }
}

/// Sends notifications; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    policy: Arc<TargetPolicy>,
    tls: Arc<rustls::ClientConfig>,
}

impl Sender {
    /// With the system's trusted roots.
    pub fn new(policy: Arc<TargetPolicy>) -> Result<Sender, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!("no trusted root certificates found: https webhooks will fail");
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration for webhooks: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Sender {
            policy,
            tls: Arc::new(tls),
        })
    }

    /// Delivers `body` to the webhook, retrying transient failures. Errors name the host,
    /// never the path, query or token.
    pub async fn deliver(&self, webhook: &Webhook, body: Vec<u8>) -> Result<(), String> {
        let target = policy::parse_target(&webhook.address, &self.policy)?;
        // An IP literal skips the resolver: check it here.
        if let Ok(ip) = target.host.parse::<IpAddr>()
            && let Some(why) = policy::refusal(SocketAddr::new(ip, target.port), &self.policy)
        {
            return Err(format!("webhook host {}: {why}", target.host));
        }
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            policy: Arc::clone(&self.policy),
            port: target.port,
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        let body = Bytes::from(body);
        let mut pause = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut request = http::Request::post(webhook.address.as_str())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(
                    http::header::USER_AGENT,
                    concat!("gitops-controller/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(token) = &webhook.token {
                request = request.header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", token.as_str()),
                );
            }
            let request = request
                .body(Full::new(body.clone()))
                .map_err(|_| format!("webhook host {}: cannot build the request", target.host))?;
            let retry = match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(request)).await {
                Err(_) => {
                    last = format!(
                        "webhook host {}: no answer within {ATTEMPT_TIMEOUT:?}",
                        target.host
                    );
                    true
                }
                Ok(Err(err)) => {
                    last = format!("webhook host {}: {}", target.host, error_chain(&err));
                    // A refused target stays refused.
                    !last.contains("refused unless")
                }
                Ok(Ok(reply)) => {
                    let status = reply.status();
                    // The body is never read.
                    drop(reply);
                    if status.is_success() {
                        return Ok(());
                    }
                    last = format!(
                        "webhook host {} answered HTTP {}",
                        target.host,
                        status.as_u16()
                    );
                    status.is_server_error() || status.as_u16() == 429
                }
            };
            if !retry || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        Err(last)
    }
}

/// The error and its sources on one line (hyper's top-level message alone says little).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
