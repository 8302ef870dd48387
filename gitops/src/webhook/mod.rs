//! GitSync notifications over HTTPS webhooks: the [`Notifier`] the reconciler queues records
//! to.
//!
//! Delivery never blocks a sync: [`WebhookNotifier::send`] puts the body on a bounded queue
//! and returns; a full queue drops the notification and counts it
//! (`sealed_secrets_gitops_notifications_total{result="dropped"}`). A worker sends at most
//! [`CONCURRENT`] deliveries at once, each attempt bounded by [`ATTEMPT_TIMEOUT`] (connect,
//! TLS, request and response head together), retried [`ATTEMPTS`] times in all with a
//! doubling pause on connection errors, timeouts, 429 and 5xx. The response body is never
//! read, and redirects are not followed (a redirect could lead past the target checks).
//! Every connection resolves its host through [`policy`] ([`deliver::GuardedResolver`]).

pub mod deliver;
pub mod policy;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use sealed_secrets_sync::notify::{Notifier, Webhook};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use policy::TargetPolicy;

/// Notifications waiting for delivery; more are dropped.
pub const QUEUE: usize = 256;
/// Deliveries in flight at once.
pub const CONCURRENT: usize = 8;
/// Bound of one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per notification.
pub const ATTEMPTS: u32 = 3;
/// Pause before the second attempt (doubled before each next one).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Bound of the DNS lookup of [`Notifier::check`].
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// One queued notification.
struct Delivery {
    webhook: Webhook,
    body: Vec<u8>,
}

/// Sends GitSync notifications to webhooks.
pub struct WebhookNotifier {
    policy: Arc<TargetPolicy>,
    queue: mpsc::Sender<Delivery>,
    metrics: Arc<Metrics>,
}

impl WebhookNotifier {
    /// Starts the delivery worker (on the current Tokio runtime).
    pub fn start(policy: TargetPolicy, metrics: Arc<Metrics>) -> Result<WebhookNotifier, String> {
        let policy = Arc::new(policy);
        let sender = deliver::Sender::new(Arc::clone(&policy))?;
        let (queue, mut receiver) = mpsc::channel::<Delivery>(QUEUE);
        let worker_metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
            while let Some(delivery) = receiver.recv().await {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let sender = sender.clone();
                let metrics = Arc::clone(&worker_metrics);
                tokio::spawn(async move {
                    let result = sender.deliver(&delivery.webhook, delivery.body).await;
                    match &result {
                        Ok(()) => metrics.notification("delivered"),
                        Err(why) => {
                            tracing::warn!(gitsync = %delivery.webhook.gitsync, error = %why, "notification not delivered");
                            metrics.notification("failed");
                        }
                    }
                    drop(slot);
                });
            }
        });
        Ok(WebhookNotifier {
            policy,
            queue,
            metrics,
        })
    }
}

impl Notifier for WebhookNotifier {
    fn check<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let target = policy::parse_target(address, &self.policy)?;
            let addresses: Vec<SocketAddr> = match target.host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, target.port)],
                Err(_) => tokio::time::timeout(
                    CHECK_TIMEOUT,
                    tokio::net::lookup_host((target.host.as_str(), target.port)),
                )
                .await
                .map_err(|_| format!("resolving webhook host {} timed out", target.host))?
                .map_err(|e| format!("cannot resolve webhook host {}: {e}", target.host))?
                .collect(),
            };
            for address in addresses {
                if let Some(why) = policy::refusal(address, &self.policy) {
                    return Err(format!("webhook host {}: {why}", target.host));
                }
            }
            Ok(())
        })
    }

    fn send(&self, webhook: Webhook, body: Value) {
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let gitsync = webhook.gitsync.clone();
        if self.queue.try_send(Delivery { webhook, body }).is_err() {
            tracing::warn!(gitsync = %gitsync, "notification queue full: notification dropped");
            self.metrics.notification("dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use sealed_secrets_sync::notify::Webhook;
    use tokio::{io::AsyncWriteExt, net::TcpListener};
    use zeroize::Zeroizing;

    use super::{policy::Guarded, *};

    fn hook(address: String) -> Webhook {
        Webhook {
            address: Zeroizing::new(address),
            token: Some(Zeroizing::new("tok3n".into())),
            gitsync: "ops/app".into(),
        }
    }

    fn loopback_policy() -> TargetPolicy {
        TargetPolicy {
            allowed: vec![Guarded::Loopback],
            allow_http: true,
            api_server: Vec::new(),
        }
    }

    use crate::test_http::read_request;

    #[tokio::test]
    async fn a_loopback_receiver_allowed_by_the_flag_gets_the_post() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}/hooks/gitops", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            // First answer 503 (retried), then 200.
            let mut seen = Vec::new();
            for status in [503, 200] {
                let (mut socket, _) = listener.accept().await.unwrap();
                seen.push(read_request(&mut socket).await);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                socket.write_all(reply.as_bytes()).await.unwrap();
            }
            seen
        });
        let metrics = Arc::new(Metrics::new());
        let notifier = WebhookNotifier::start(loopback_policy(), Arc::clone(&metrics)).unwrap();
        notifier.check(&address).await.unwrap();
        notifier.send(hook(address), serde_json::json!({"text": "hello"}));
        let seen = tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .unwrap()
            .unwrap();
        assert!(
            seen[1].starts_with("POST /hooks/gitops HTTP/1.1"),
            "{}",
            seen[1]
        );
        let lower = seen[1].to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json"),
            "{}",
            seen[1]
        );
        assert!(lower.contains("authorization: bearer tok3n"), "{}", seen[1]);
        assert!(seen[1].ends_with("{\"text\":\"hello\"}"), "{}", seen[1]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !metrics
            .encode()
            .contains("notifications_total{result=\"delivered\"} 1")
        {
            assert!(Instant::now() < deadline, "{}", metrics.encode());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn link_local_and_unflagged_loopback_targets_are_refused() {
        let metrics = Arc::new(Metrics::new());
        let strict = WebhookNotifier::start(TargetPolicy::default(), Arc::clone(&metrics)).unwrap();
        let err = strict
            .check("https://169.254.169.254/latest/meta-data")
            .await
            .unwrap_err();
        assert!(err.contains("link-local"), "{err}");
        assert!(!err.contains("meta-data"), "{err}");
        let err = strict.check("https://localhost:9443/x").await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        // At delivery time too, whatever the check said before: nothing is sent.
        let lax = WebhookNotifier::start(loopback_policy(), Arc::clone(&metrics)).unwrap();
        let sender = deliver::Sender::new(Arc::clone(&lax.policy)).unwrap();
        let err = sender
            .deliver(&hook("http://169.254.169.254/x".into()), b"{}".to_vec())
            .await
            .unwrap_err();
        assert!(err.contains("link-local"), "{err}");
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        // A receiver that accepts and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}/", listener.local_addr().unwrap());
        let _hang = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let metrics = Arc::new(Metrics::new());
        let notifier = WebhookNotifier::start(loopback_policy(), Arc::clone(&metrics)).unwrap();
        let started = Instant::now();
        for _ in 0..(QUEUE + CONCURRENT + 50) {
            notifier.send(hook(address.clone()), serde_json::json!({}));
        }
        assert!(started.elapsed() < Duration::from_secs(1), "send waited");
        let text = metrics.encode();
        assert!(
            text.lines()
                .any(|l| l
                    .starts_with("sealed_secrets_gitops_notifications_total{result=\"dropped\"}")),
            "{text}"
        );
    }
}
