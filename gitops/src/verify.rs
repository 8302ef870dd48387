//! The secret policy's SealedSecret check, answered by the sealing controller.
//!
//! This process holds no private key and may not read key Secrets: it asks the sealing
//! controller's `/v1/verify`, which opens the SealedSecret with the cluster's keys and answers
//! 200 or 409 without rendering `spec.template` (so the answer cannot be used to learn
//! anything about a Secret's values through template errors). Two ways to reach it: a base URL
//! (`--controller-url`, the Service's in-cluster address) or the API server's service proxy
//! (`services/<name>:http/proxy/v1/verify`), as `kubeseal --validate` does.
//!
//! The policy check is synchronous (the sync engine calls it between render and apply, and
//! `kubeseal sync` shares it), so each check blocks its worker thread with
//! `block_in_place`; this needs the multi-threaded runtime the binary starts. The controller
//! rate-limits `/v1/verify`; a 429 is retried after a pause a few times before it counts as a
//! failure.

use std::time::Duration;

use kube::Client;
use sealed_secrets_core::sealed_secret::SealedSecret;
use sealed_secrets_sync::policy::SealedSecretVerifier;

/// How many times a rate-limited verify is tried.
const ATTEMPTS: u32 = 5;
/// Pause before the first retry (doubled each time).
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Asks the sealing controller whether it can open a SealedSecret.
pub struct ControllerVerifier {
    client: Client,
    path: String,
    shown: String,
}

impl ControllerVerifier {
    /// Straight to the controller's HTTP API at `base` (`http://host:port`).
    pub fn direct(base: &str) -> Result<ControllerVerifier, String> {
        let uri: http::Uri = base
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("--controller-url {base:?}: {e}"))?;
        if uri.scheme().is_none() || uri.host().is_none() {
            return Err(format!(
                "--controller-url {base:?}: needs a scheme and host, e.g. http://sealed-secrets-controller.kube-system:8080"
            ));
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        let config = kube::Config::new(uri);
        let client =
            Client::try_from(config).map_err(|e| format!("--controller-url {base:?}: {e}"))?;
        Ok(ControllerVerifier {
            client,
            path: format!("{base_path}/v1/verify"),
            shown: format!("{}/v1/verify", base.trim_end_matches('/')),
        })
    }

    /// Through the API server's service proxy, with this controller's own client.
    pub fn service_proxy(client: Client, namespace: &str, service: &str) -> ControllerVerifier {
        let path =
            format!("/api/v1/namespaces/{namespace}/services/{service}:http/proxy/v1/verify");
        ControllerVerifier {
            client,
            shown: format!("service {namespace}/{service} /v1/verify"),
            path,
        }
    }

    async fn ask(&self, body: Vec<u8>) -> Result<(), String> {
        let mut pause = FIRST_PAUSE;
        for attempt in 1..=ATTEMPTS {
            let request = http::Request::post(&self.path)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .map_err(|e| e.to_string())?;
            let reply = match self
                .client
                .send(request.map(kube::client::Body::from))
                .await
            {
                Ok(reply) => reply,
                Err(err) => return Err(format!("cannot reach {}: {err}", self.shown)),
            };
            let status = reply.status();
            if status.is_success() {
                return Ok(());
            }
            match status.as_u16() {
                409 => {
                    return Err(
                        "no key of the sealing controller can decrypt it (/v1/verify answered 409)"
                            .into(),
                    );
                }
                429 if attempt < ATTEMPTS => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                code => {
                    // The controller's error texts name no secret material; keep one short line.
                    let body = reply.into_body().collect_bytes().await.unwrap_or_default();
                    let text = String::from_utf8_lossy(&body);
                    let line: String = text
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect();
                    return Err(format!(
                        "{} answered HTTP {code}: {}",
                        self.shown,
                        line.trim()
                    ));
                }
            }
        }
        Err(format!(
            "{} kept answering 429 (rate limited) after {ATTEMPTS} attempts",
            self.shown
        ))
    }
}

impl SealedSecretVerifier for ControllerVerifier {
    fn verify(&self, sealed: &SealedSecret) -> Result<(), String> {
        let body = serde_json::to_vec(&sealed.to_upstream_value()).map_err(|e| e.to_string())?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "the verify check needs a Tokio runtime".to_string())?;
        tokio::task::block_in_place(|| handle.block_on(self.ask(body)))
    }
}

#[cfg(test)]
mod tests {
    use tokio::{io::AsyncWriteExt, net::TcpListener};

    use super::*;

    /// A one-route HTTP server on loopback answering each request with the next status of
    /// `statuses`; returns its base URL and the bodies it received.
    async fn controller(
        statuses: Vec<u16>,
    ) -> (String, tokio::task::JoinHandle<Vec<(String, String)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for status in statuses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let text = crate::test_http::read_request(&mut socket).await;
                if let Some(end) = text.find("\r\n\r\n") {
                    let line = text.lines().next().unwrap_or_default().to_string();
                    seen.push((line, text[end + 4..].to_string()));
                }
                let body = "{}";
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(reply.as_bytes()).await.unwrap();
                let _ = socket.shutdown().await;
            }
            seen
        });
        (base, task)
    }

    fn sealed() -> SealedSecret {
        SealedSecret::from_value(serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"encryptedData": {"password": "AgBy"},
                     "template": {"data": {"dsn": "{{ .password }}"}}}
        }))
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_map_to_the_policy_verdict() {
        let (base, server) = controller(vec![200, 409, 429, 200]).await;
        let verifier = ControllerVerifier::direct(&base).unwrap();
        let sealed = sealed();
        let verdicts = tokio::task::spawn_blocking(move || {
            // `block_in_place` needs a runtime worker; run the checks from one.
            let handle = tokio::runtime::Handle::current();
            handle.block_on(async {
                tokio::spawn(async move {
                    vec![
                        verifier.verify(&sealed),
                        verifier.verify(&sealed),
                        verifier.verify(&sealed),
                    ]
                })
                .await
                .unwrap()
            })
        })
        .await
        .unwrap();
        assert_eq!(verdicts[0], Ok(()));
        let refused = verdicts[1].clone().unwrap_err();
        assert!(refused.contains("409"), "{refused}");
        // 429, then 200: retried.
        assert_eq!(verdicts[2], Ok(()));
        let seen = server.await.unwrap();
        assert_eq!(seen.len(), 4);
        assert!(seen[0].0.starts_with("POST /v1/verify "), "{:?}", seen[0]);
        let body: serde_json::Value = serde_json::from_str(&seen[0].1).unwrap();
        assert_eq!(body["spec"]["encryptedData"]["password"], "AgBy");
        assert_eq!(body["metadata"]["namespace"], "shop");
    }

    #[tokio::test]
    async fn urls_need_a_scheme_and_host() {
        assert!(ControllerVerifier::direct("sealed-secrets-controller:8080").is_err());
        let direct = ControllerVerifier::direct("http://controller.kube-system:8080/").unwrap();
        assert_eq!(direct.path, "/v1/verify");
    }
}
