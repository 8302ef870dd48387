//! `/v1/verify` and `/v1/rotate`: per-client rate limiting, the capped body, then the job on the
//! crypto pool ([`super::sealed_request`]) and the answers both endpoints share (`413` over a
//! limit, `503` when every worker stays busy, `500` when the job died).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::Response,
};

use super::{
    budget::{BUSY_RETRY_AFTER_SECONDS, BodyError, Cancel, PoolError, RequestLimits, read_body},
    key_service::KeyService,
    ratelimit::{ClientBucket, StoreError, TrustedProxies},
    response::{APPLICATION_JSON, empty, http_error, with_body},
    sealed_request::{RequestError, opens, reseal},
    state::{ApiState, ROTATE_PATH, VERIFY_PATH},
};

pub(super) async fn verify(State(state): State<ApiState>, request: Request) -> Response {
    rate_limited(state, VERIFY_PATH, request, verify_body).await
}

pub(super) async fn rotate(State(state): State<ApiState>, request: Request) -> Response {
    rate_limited(state, ROTATE_PATH, request, rotate_body).await
}

/// The client a request counts against (see [`super::ratelimit`]).
fn client_of(trusted: &TrustedProxies, request: &Request) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    trusted.client_address(peer, request.headers())
}

/// Counts the request against its client's allowance on `path`, runs `handler` if allowed,
/// adds the `X-RateLimit-*` headers and records the metrics.
async fn rate_limited<F, Fut>(
    state: ApiState,
    path: &'static str,
    request: Request,
    handler: F,
) -> Response
where
    F: FnOnce(ApiState, Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let start = Instant::now();
    let method = request.method().clone();
    let client = ClientBucket::from(client_of(&state.trusted_proxies, &request));
    let metrics = Arc::clone(&state.metrics);
    let response = match state.limiter.check(path, client) {
        Err(StoreError) => http_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        Ok(decision) => {
            let mut response = if decision.allowed {
                handler(state, request).await
            } else {
                http_error(StatusCode::TOO_MANY_REQUESTS, "limit exceeded")
            };
            decision.write_headers(response.headers_mut());
            response
        }
    };
    metrics.observe_http(
        path,
        method.as_str(),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

/// Reads the body within `--max-request-bytes`: `413` over it, `400` when unreadable.
async fn capped_body(state: &ApiState, path: &str, request: Request) -> Result<Bytes, Response> {
    let (parts, body) = request.into_parts();
    match read_body(&parts.headers, body, state.limits.max_body_bytes).await {
        Ok(body) => Ok(body),
        Err(err @ BodyError::TooLarge(_)) => {
            tracing::debug!(path, error = %err, "request refused");
            Err(http_error(StatusCode::PAYLOAD_TOO_LARGE, &err.to_string()))
        }
        Err(err) => {
            tracing::error!(error = %err, "Error handling {path} request");
            Err(empty(StatusCode::BAD_REQUEST))
        }
    }
}

/// `503` with `Retry-After`: every RSA worker stayed busy for the whole wait.
fn busy(path: &str) -> Response {
    tracing::debug!(path, "request refused: every API crypto worker is busy");
    let mut response = http_error(StatusCode::SERVICE_UNAVAILABLE, "server busy");
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(BUSY_RETRY_AFTER_SECONDS),
    );
    response
}

/// A crypto job of the API: the keys, the posted body, the limits, the cancellation flag.
type CryptoJob<T> = fn(&dyn KeyService, &[u8], RequestLimits, &Cancel) -> Result<T, RequestError>;

/// Reads the capped body of `request` and runs `job` on the crypto pool. The answers both
/// crypto endpoints share are made here: the body's limits, `413` over the item cap, `503`
/// when every worker stays busy, `500` when the job died. `Ok` carries the job's other
/// outcomes for the endpoint to answer; `what` names the endpoint's work in error logs.
async fn run_crypto<T: Send + 'static>(
    state: ApiState,
    path: &'static str,
    what: &'static str,
    request: Request,
    job: CryptoJob<T>,
) -> Result<Result<T, RequestError>, Response> {
    let body = capped_body(&state, path, request).await?;
    let keys = Arc::clone(&state.keys);
    let limits = state.limits;
    match state
        .pool
        .run(move |cancel| job(keys.as_ref(), &body, limits, cancel))
        .await
    {
        Ok(Err(err @ RequestError::TooManyItems(_))) => {
            tracing::debug!(path, error = %err, "request refused");
            Err(http_error(StatusCode::PAYLOAD_TOO_LARGE, &err.to_string()))
        }
        Ok(outcome) => Ok(outcome),
        Err(PoolError::Busy) => Err(busy(path)),
        Err(err) => {
            tracing::error!(error = %err, "{what}");
            Err(empty(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

async fn verify_body(state: ApiState, request: Request) -> Response {
    match run_crypto(
        state,
        VERIFY_PATH,
        "Error validating secret",
        request,
        opens,
    )
    .await
    {
        Ok(Ok(true)) => empty(StatusCode::OK),
        Ok(Ok(false)) => empty(StatusCode::CONFLICT),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Error validating secret");
            http_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
        }
        Err(response) => response,
    }
}

async fn rotate_body(state: ApiState, request: Request) -> Response {
    match run_crypto(state, ROTATE_PATH, "Error rotating secret", request, reseal).await {
        Ok(Ok(json)) => with_body(StatusCode::OK, APPLICATION_JSON, json),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Error rotating secret");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeMap,
        sync::{
            Mutex,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use axum::{Router, body::Body, http::Method};
    use sealed_secrets_core::{
        crypto::{Decrypter, SystemRandom},
        keys::{PrivateKey, PublicKey},
        scope::Scope,
        seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
        sealed_secret::SealedSecret,
        unseal::{UnsealOptions, unseal},
    };
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::{
        http::{
            HttpConfig, MULTISTREAM_ERROR, Timeouts,
            budget::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS},
            ratelimit,
            response::TEXT_PLAIN,
            router::router,
            test_support::{
                LOCAL_PEER, Reply, generous, json_body, key_service, new_key, no_keys, old_key,
                post, request, router_with, sealed, send, send_from, yaml_body,
            },
            with_timeouts,
        },
        metrics::Metrics,
    };

    fn assert_rate_headers(reply: &Reply) {
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            let value = reply
                .header(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            value.parse::<u64>().unwrap();
        }
    }

    #[tokio::test]
    async fn verify_answers_200_when_it_opens_in_json_and_yaml() {
        let (router, metrics) = router_with(key_service(), generous());
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let object = sealed(scope);
            for body in [json_body(&object), yaml_body(&object)] {
                let reply = post(&router, "/v1/verify", body).await;
                assert_eq!(reply.status, StatusCode::OK, "{scope}");
                assert!(reply.body.is_empty());
                assert_rate_headers(&reply);
                assert_eq!(reply.header("retry-after"), None);
            }
        }
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/verify\",code=\"200\",method=\"post\"} 6"
            )
        );
    }

    #[tokio::test]
    async fn verify_answers_409_when_it_does_not_open() {
        let (router, _) = router_with(key_service(), generous());
        let mut moved = sealed(Scope::Strict);
        moved.metadata.namespace = Some("elsewhere".into());
        let mut tampered = sealed(Scope::Strict);
        tampered
            .spec
            .encrypted_data
            .insert("password".into(), "AAAA".into());
        let (other_keys, _) = router_with(no_keys(), generous());
        for (router, object) in [
            (&router, moved),
            (&router, tampered),
            (&other_keys, sealed(Scope::Strict)),
        ] {
            let reply = post(router, "/v1/verify", json_body(&object)).await;
            assert_eq!(reply.status, StatusCode::CONFLICT);
            assert!(reply.body.is_empty());
            assert_rate_headers(&reply);
        }
    }

    #[tokio::test]
    async fn verify_does_not_run_templates_so_it_is_no_oracle() {
        let (router, _) = router_with(key_service(), generous());
        for template in [
            "{{ if hasPrefix \"h\" .password }}{{ fail \"yes\" }}{{ end }}",
            "{{ if hasPrefix \"x\" .password }}{{ fail \"yes\" }}{{ end }}",
            "{{ broken ",
        ] {
            let mut object = sealed(Scope::Strict);
            object.spec.template.data = Some(BTreeMap::from([(
                "probe".to_string(),
                template.to_string(),
            )]));
            let reply = post(&router, "/v1/verify", json_body(&object)).await;
            assert_eq!(reply.status, StatusCode::OK, "{template}");
        }
    }

    #[tokio::test]
    async fn verify_refuses_multi_documents_and_non_sealed_secrets_with_500() {
        let (router, _) = router_with(key_service(), generous());
        let object = sealed(Scope::Strict);
        let two_yaml = format!("{}---\n{}", yaml_body(&object), yaml_body(&object));
        let two_json = format!("{}\n{}", json_body(&object), json_body(&object));
        for body in [two_yaml, two_json] {
            let reply = post(&router, "/v1/verify", body).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(reply.text(), format!("{MULTISTREAM_ERROR}\n"));
            assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
            assert_rate_headers(&reply);
        }
        let secret = r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}"#;
        let reply = post(&router, "/v1/verify", secret).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            reply.text().starts_with("unexpected resource type:"),
            "{}",
            reply.text()
        );
        for junk in ["", "{\"apiVersion\": ", "a: [1, 2\n", "\u{0}\u{ff}"] {
            let reply = post(&router, "/v1/verify", junk.to_string()).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{junk:?}");
            assert!(reply.text().ends_with('\n'));
        }
        let reply = post(&router, "/v1/verify", vec![0xffu8, 0xfe]).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn oversized_bodies_are_413_naming_the_limit() {
        let mut config = generous();
        config.limits.max_body_bytes = 1000;
        let (router, metrics) = router_with(key_service(), config);
        let big = vec![b' '; 1001];
        for path in ["/v1/verify", "/v1/rotate"] {
            // With a Content-Length (refused unread) and streamed without one.
            let streamed = futures::stream::iter(
                big.chunks(100)
                    .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            );
            for body in [Body::from(big.clone()), Body::from_stream(streamed)] {
                let reply = send(&router, Method::POST, path, &[], body).await;
                assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
                assert_eq!(reply.text(), "request body larger than 1000 bytes\n");
                assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
            }
            // At the cap it is read (and is not a SealedSecret).
            let reply = post(&router, path, vec![b' '; 1000]).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        }
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"413\",method=\"post\"} 2"
            )
        );
        let (router, _) = router_with(key_service(), generous());
        let reply = post(
            &router,
            "/v1/verify",
            vec![b' '; DEFAULT_MAX_BODY_BYTES + 1],
        )
        .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A SealedSecret `shop/db` with `count` items that only `key` opens.
    fn many_items(count: usize, key: &PrivateKey) -> SealedSecret {
        let data: serde_json::Map<String, Value> = (0..count)
            .map(|i| (format!("item-{i:04}"), json!("dmFsdWU=")))
            .collect();
        let secret = secret_from_value(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "data": data
        }))
        .unwrap();
        let options = SealOptions {
            scope: Scope::Strict,
            namespace: NamespaceDefault {
                namespace: "default".into(),
                explicit: false,
            },
            allow_empty_data: false,
        };
        seal_secret(secret, &key.public_key(), &options, &mut SystemRandom).unwrap()
    }

    #[tokio::test]
    async fn too_many_items_are_413_naming_the_limit() {
        let mut config = generous();
        config.limits.max_items = 3;
        let (router, _) = router_with(key_service(), config);
        for path in ["/v1/verify", "/v1/rotate"] {
            let reply = post(&router, path, json_body(&many_items(4, old_key()))).await;
            assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            assert_eq!(reply.text(), "more than 3 items in one SealedSecret\n");
            // At the cap the object is processed.
            let reply = post(&router, path, json_body(&many_items(3, old_key()))).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
        }
        assert_eq!(DEFAULT_MAX_ITEMS, 1024);
    }

    /// One request per 5 s after a burst of 3: slow enough that test time never refills it.
    fn strict_limit() -> HttpConfig {
        HttpConfig {
            rate_limit: 0.2,
            rate_limit_burst: 2,
            ..HttpConfig::default()
        }
    }

    /// Sends `/v1/verify` from `peer` until refused; returns how many were allowed.
    async fn allowance(router: &Router, peer: &str, forwarded: &str, body: &str) -> usize {
        let headers = [("x-forwarded-for", forwarded)];
        let headers: &[(&str, &str)] = if forwarded.is_empty() { &[] } else { &headers };
        for allowed in 0..10 {
            let reply = send_from(
                router,
                peer,
                Method::POST,
                "/v1/verify",
                headers,
                body.to_string(),
            )
            .await;
            if reply.status == StatusCode::TOO_MANY_REQUESTS {
                return allowed;
            }
            assert_eq!(reply.status, StatusCode::OK);
        }
        panic!("never limited");
    }

    #[tokio::test]
    async fn verify_is_rate_limited_per_peer() {
        let (router, metrics) = router_with(key_service(), strict_limit());
        let body = json_body(&sealed(Scope::Strict));
        let alice = "10.0.0.1";
        for expected_remaining in ["2", "1", "0"] {
            let reply = send_from(
                &router,
                alice,
                Method::POST,
                "/v1/verify",
                &[],
                body.clone(),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("x-ratelimit-limit"), Some("3"));
            assert_eq!(
                reply.header("x-ratelimit-remaining"),
                Some(expected_remaining)
            );
            assert_eq!(reply.header("retry-after"), None);
        }
        let refused = send_from(
            &router,
            alice,
            Method::POST,
            "/v1/verify",
            &[],
            body.clone(),
        )
        .await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.text(), "limit exceeded\n");
        assert_eq!(refused.header("content-type"), Some(TEXT_PLAIN));
        assert_eq!(refused.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(refused.header("x-ratelimit-reset"), Some("15"));
        assert_eq!(refused.header("retry-after"), Some("5"));
        // Another peer has its own allowance.
        assert_eq!(allowance(&router, "10.0.0.2", "", &body).await, 3);
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/verify\",code=\"429\",method=\"post\"} 2"
            )
        );
    }

    #[tokio::test]
    async fn forged_forwarded_for_from_an_untrusted_peer_shares_the_peers_bucket() {
        let (router, _) = router_with(key_service(), strict_limit());
        let body = json_body(&sealed(Scope::Strict));
        let attacker = "203.0.113.9";
        // A new forged address on every request: still one client, the peer.
        let mut allowed = 0;
        for i in 0..10 {
            let forged = format!("198.51.100.{i}");
            let headers = [("x-forwarded-for", forged.as_str())];
            let reply = send_from(
                &router,
                attacker,
                Method::POST,
                "/v1/verify",
                &headers,
                body.clone(),
            )
            .await;
            if reply.status == StatusCode::OK {
                allowed += 1;
            } else {
                assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
            }
        }
        assert_eq!(allowed, 3);
        // The forged addresses did not get buckets of their own.
        assert_eq!(allowance(&router, "198.51.100.1", "", &body).await, 3);
    }

    #[tokio::test]
    async fn a_trusted_proxys_forwarded_address_is_the_client() {
        let mut config = strict_limit();
        config.trusted_proxies = ratelimit::TrustedProxies::parse("10.96.0.0/12").unwrap();
        let (router, _) = router_with(key_service(), config);
        let body = json_body(&sealed(Scope::Strict));
        let proxy = "10.96.0.1";
        // Two clients behind the proxy each get their own allowance.
        assert_eq!(allowance(&router, proxy, "192.0.2.1", &body).await, 3);
        assert_eq!(allowance(&router, proxy, "192.0.2.2", &body).await, 3);
        // A client forging entries left of what the proxy appended stays itself.
        assert_eq!(
            allowance(&router, proxy, "198.51.100.7, 192.0.2.1", &body).await,
            0
        );
        // Requests through the proxy without a forwarded address count as the proxy.
        assert_eq!(allowance(&router, proxy, "", &body).await, 3);
    }

    #[tokio::test]
    async fn rotate_is_rate_limited_too() {
        let (router, metrics) = router_with(key_service(), strict_limit());
        let body = json_body(&sealed(Scope::Strict));
        let peer = "10.0.0.5";
        for _ in 0..3 {
            let reply =
                send_from(&router, peer, Method::POST, "/v1/rotate", &[], body.clone()).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert!(reply.header("x-ratelimit-remaining").is_some());
        }
        let refused = send_from(&router, peer, Method::POST, "/v1/rotate", &[], body.clone()).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.text(), "limit exceeded\n");
        assert_eq!(refused.header("retry-after"), Some("5"));
        // Verify keeps its own allowance (upstream keys on the route too).
        assert_eq!(allowance(&router, peer, "", &body).await, 3);
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"429\",method=\"post\"} 1"
            )
        );
    }

    /// Registered keys behind a decrypter that counts how often it is asked to open an item.
    struct CountingKeys {
        keys: Vec<PrivateKey>,
        calls: AtomicUsize,
    }

    struct CountingDecrypter<'a>(&'a CountingKeys);

    impl Decrypter for CountingDecrypter<'_> {
        fn decrypt(
            &self,
            ciphertext: &[u8],
            label: &[u8],
        ) -> Result<zeroize::Zeroizing<Vec<u8>>, sealed_secrets_core::crypto::CryptoError> {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            self.0.keys.as_slice().decrypt(ciphertext, label)
        }
    }

    impl KeyService for CountingKeys {
        fn sealing_cert_pem(&self) -> Option<String> {
            None
        }

        fn sealing_public_key(&self) -> Option<PublicKey> {
            self.keys.last().map(PrivateKey::public_key)
        }

        fn decrypter(&self) -> Box<dyn Decrypter + '_> {
            Box::new(CountingDecrypter(self))
        }
    }

    #[tokio::test]
    async fn verify_stops_at_the_first_item_that_does_not_open() {
        let keys = Arc::new(CountingKeys {
            keys: vec![old_key().clone()],
            calls: AtomicUsize::new(0),
        });
        let (router, _) = router_with(keys.clone(), generous());
        // Thirty items no registered key opens: one attempt, then the answer is known.
        let foreign = many_items(30, new_key());
        let reply = post(&router, "/v1/verify", json_body(&foreign)).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 1);
        // Control: when every item opens, every item is attempted.
        let own = many_items(30, old_key());
        let reply = post(&router, "/v1/verify", json_body(&own)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 30);
        // The eleventh item (in item order) does not open: eleven attempts.
        let mut mixed = own.clone();
        let stranger = foreign.spec.encrypted_data["item-0010"].clone();
        mixed
            .spec
            .encrypted_data
            .insert("item-0010".into(), stranger);
        let reply = post(&router, "/v1/verify", json_body(&mixed)).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 11);
        // Rotate fails as early.
        let reply = post(&router, "/v1/rotate", json_body(&mixed)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(keys.calls.swap(0, Ordering::SeqCst), 11);
        // An item that is not base64 cannot open: no RSA work at all.
        let mut garbled = own;
        garbled
            .spec
            .encrypted_data
            .insert("item-0029".into(), "not base64!".into());
        let reply = post(&router, "/v1/verify", json_body(&garbled)).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        let reply = post(&router, "/v1/rotate", json_body(&garbled)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(keys.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_busy_pool_is_503_with_retry_after_and_healthz_still_answers() {
        let mut config = generous();
        config.crypto_workers = 1;
        config.crypto_wait = std::time::Duration::from_millis(10);
        let state = ApiState::new(key_service(), Arc::new(Metrics::new("test")), config);
        let (pool, metrics) = (Arc::clone(&state.pool), Arc::clone(&state.metrics));
        let router = router(state);
        let body = json_body(&sealed(Scope::Strict));
        let held = pool.exhaust().await;
        for path in ["/v1/verify", "/v1/rotate"] {
            let reply = post(&router, path, body.clone()).await;
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(reply.text(), "server busy\n");
            assert_eq!(reply.header("retry-after"), Some("1"));
        }
        // Neither /healthz nor the certificate waits for an RSA worker.
        let reply = send(&router, Method::GET, "/healthz", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
        let reply = send(&router, Method::GET, "/v1/cert.pem", &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK);
        drop(held);
        let reply = post(&router, "/v1/verify", body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/verify\",code=\"503\",method=\"post\"} 1"
            )
        );
    }

    /// Keys whose decrypter opens anything, but only once the test lets each call return.
    struct GateKeys {
        started: tokio::sync::mpsc::UnboundedSender<()>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
        calls: AtomicUsize,
    }

    impl Decrypter for &GateKeys {
        fn decrypt(
            &self,
            _: &[u8],
            _: &[u8],
        ) -> Result<zeroize::Zeroizing<Vec<u8>>, sealed_secrets_core::crypto::CryptoError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let _ = self.started.send(());
            // Returns when released, or at once when the test dropped the sender.
            let _ = self.release.lock().unwrap().recv();
            Ok(zeroize::Zeroizing::new(b"opened".to_vec()))
        }
    }

    impl KeyService for GateKeys {
        fn sealing_cert_pem(&self) -> Option<String> {
            None
        }

        fn sealing_public_key(&self) -> Option<PublicKey> {
            Some(old_key().public_key())
        }

        fn decrypter(&self) -> Box<dyn Decrypter + '_> {
            Box::new(self)
        }
    }

    fn gate() -> (
        Arc<GateKeys>,
        tokio::sync::mpsc::UnboundedReceiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started, started_rx) = tokio::sync::mpsc::unbounded_channel();
        let (release_tx, release) = std::sync::mpsc::channel();
        let keys = Arc::new(GateKeys {
            started,
            release: Mutex::new(release),
            calls: AtomicUsize::new(0),
        });
        (keys, started_rx, release_tx)
    }

    #[tokio::test]
    async fn dropping_the_request_stops_its_job_between_items() {
        for path in ["/v1/verify", "/v1/rotate"] {
            let (keys, mut started, release) = gate();
            let state = ApiState::new(keys.clone(), Arc::new(Metrics::new("t")), generous());
            let pool = Arc::clone(&state.pool);
            let router = router(state);
            let body = json_body(&many_items(20, old_key()));
            let request = request(LOCAL_PEER, Method::POST, path, &[], body);
            let task = tokio::spawn(router.oneshot(request));
            started.recv().await.expect("the job opens its first item");
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            // From now on every item would open at once; only cancellation stops the job.
            drop(release);
            pool.idle().await;
            assert_eq!(keys.calls.load(Ordering::SeqCst), 1, "{path}");
        }
    }

    #[tokio::test]
    async fn a_write_timeout_stops_the_job_too() {
        let (keys, mut started, release) = gate();
        let state = ApiState::new(keys.clone(), Arc::new(Metrics::new("t")), generous());
        let pool = Arc::clone(&state.pool);
        let router = with_timeouts(
            router(state),
            Timeouts {
                read: std::time::Duration::ZERO,
                write: std::time::Duration::from_millis(50),
            },
        );
        let body = json_body(&many_items(20, old_key()));
        let reply = post(&router, "/v1/verify", body).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.text(), "timeout\n");
        started.recv().await.expect("the job had started");
        drop(release);
        pool.idle().await;
        assert_eq!(keys.calls.load(Ordering::SeqCst), 1);
    }

    fn parse_rotated(reply: &Reply) -> SealedSecret {
        let mut value: Value = serde_json::from_slice(&reply.body).unwrap();
        let map = value.as_object_mut().unwrap();
        assert!(!map.contains_key("apiVersion") && !map.contains_key("kind"));
        assert!(!map.contains_key("status"));
        map.insert("apiVersion".into(), json!("bitnami.com/v1alpha1"));
        map.insert("kind".into(), json!("SealedSecret"));
        SealedSecret::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn rotate_reseals_with_the_newest_key() {
        let (router, metrics) = router_with(key_service(), generous());
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let original = sealed(scope);
            let reply = post(&router, "/v1/rotate", yaml_body(&original)).await;
            assert_eq!(reply.status, StatusCode::OK, "{scope}");
            assert_eq!(reply.header("content-type"), Some(APPLICATION_JSON));
            assert!(reply.header("x-ratelimit-limit").is_some());
            assert!(
                reply.text().starts_with("{\"metadata\":"),
                "{}",
                reply.text()
            );
            let rotated = parse_rotated(&reply);
            assert_eq!(
                Scope::from_annotations(rotated.metadata.annotations.as_ref()),
                scope
            );
            let options = UnsealOptions::default();
            assert!(unseal(&rotated, old_key(), options).is_err());
            let secret = unseal(&rotated, new_key(), options).unwrap();
            assert_eq!(secret.data.unwrap()["password"].0, b"hunter2");
            assert_eq!(
                rotated.spec.template.metadata.labels.unwrap()["app"],
                "shop"
            );
            // Only ciphertexts leave the server.
            assert!(!reply.text().contains("hunter2"));
        }
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"200\",method=\"post\"} 3"
            )
        );
    }

    #[tokio::test]
    async fn rotate_failures_are_empty_500s() {
        let (router, metrics) = router_with(key_service(), generous());
        let object = sealed(Scope::Strict);
        let mut moved = object.clone();
        moved.metadata.name = Some("other".into());
        let bodies = [
            "".to_string(),
            "not: [yaml".to_string(),
            r#"{"apiVersion": "v1", "kind": "Secret"}"#.to_string(),
            format!("{}---\n{}", yaml_body(&object), yaml_body(&object)),
            json_body(&moved),
        ];
        for body in bodies {
            let reply = post(&router, "/v1/rotate", body).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(reply.body.is_empty());
        }
        let (keyless, _) = router_with(no_keys(), generous());
        let reply = post(&keyless, "/v1/rotate", json_body(&object)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.body.is_empty());
        assert!(
            metrics.encode().contains(
                "http_requests_total{path=\"/v1/rotate\",code=\"500\",method=\"post\"} 5"
            )
        );
    }
}
