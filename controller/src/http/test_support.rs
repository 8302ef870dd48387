//! Fixtures shared by the HTTP modules' tests: two sealing keys, a [`KeyService`] over them,
//! routers built from them, and a client that sends one request and reads the whole reply.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request},
    http::{HeaderMap, Method, Request as HttpRequest, StatusCode},
};
use sealed_secrets_core::{
    crypto::{Decrypter, SystemRandom},
    keys::{GeneratedKeyPair, PrivateKey, PublicKey, generate_key_pair},
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
    sealed_secret::SealedSecret,
};
use serde_json::json;
use tower::ServiceExt;

use super::{HttpConfig, KeyService, api_router};
use crate::metrics::Metrics;

pub(super) fn pairs() -> &'static [GeneratedKeyPair; 2] {
    static PAIRS: OnceLock<[GeneratedKeyPair; 2]> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let now = jiff::Timestamp::now();
        let ttl = jiff::SignedDuration::from_hours(24 * 365);
        let make = || generate_key_pair(2048, "", now, ttl).expect("keygen");
        [make(), make()]
    })
}

pub(super) fn old_key() -> &'static PrivateKey {
    &pairs()[0].key
}

pub(super) fn new_key() -> &'static PrivateKey {
    &pairs()[1].key
}

/// Both keys registered, the second one newest (sealing).
pub(super) struct TestKeys {
    pub(super) keys: Vec<PrivateKey>,
    pub(super) cert: Option<String>,
}

impl KeyService for TestKeys {
    fn sealing_cert_pem(&self) -> Option<String> {
        self.cert.clone()
    }

    fn sealing_public_key(&self) -> Option<PublicKey> {
        self.keys.last().map(PrivateKey::public_key)
    }

    fn decrypter(&self) -> Box<dyn Decrypter + '_> {
        Box::new(self.keys.clone())
    }
}

pub(super) fn key_service() -> Arc<dyn KeyService> {
    Arc::new(TestKeys {
        keys: vec![old_key().clone(), new_key().clone()],
        cert: Some(pairs()[1].cert_pem.clone()),
    })
}

pub(super) fn no_keys() -> Arc<dyn KeyService> {
    Arc::new(TestKeys {
        keys: Vec::new(),
        cert: None,
    })
}

pub(super) fn generous() -> HttpConfig {
    HttpConfig {
        rate_limit: 1000.0,
        rate_limit_burst: 1000,
        ..HttpConfig::default()
    }
}

pub(super) fn router_with(keys: Arc<dyn KeyService>, config: HttpConfig) -> (Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new("test"));
    (api_router(keys, Arc::clone(&metrics), config), metrics)
}

pub(super) fn sealed(scope: Scope) -> SealedSecret {
    let secret = secret_from_value(json!({
        "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "shop"}},
        "stringData": {"password": "hunter2", "user": "admin"}
    }))
    .unwrap();
    let options = SealOptions {
        scope,
        namespace: NamespaceDefault {
            namespace: "default".into(),
            explicit: false,
        },
        allow_empty_data: false,
    };
    seal_secret(secret, &old_key().public_key(), &options, &mut SystemRandom).unwrap()
}

pub(super) fn json_body(sealed: &SealedSecret) -> String {
    sealed.to_upstream_value().to_string()
}

pub(super) fn yaml_body(sealed: &SealedSecret) -> String {
    sealed_secrets_core::documents::to_sorted_yaml(&sealed.to_upstream_value())
}

pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(super) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// The peer of requests sent with [`send`].
pub(super) const LOCAL_PEER: &str = "127.0.0.1";

pub(super) fn request(
    peer: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Request {
    let mut request = HttpRequest::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(body.into()).unwrap();
    let peer = SocketAddr::new(peer.parse().unwrap(), 40000);
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

pub(super) async fn send(
    router: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    send_from(router, LOCAL_PEER, method, path, headers, body).await
}

/// Sends a request that arrived from `peer` (what `ConnectInfo` would record).
pub(super) async fn send_from(
    router: &Router,
    peer: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    let request = request(peer, method, path, headers, body);
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub(super) async fn post(router: &Router, path: &str, body: impl Into<Body>) -> Reply {
    send(router, Method::POST, path, &[], body).await
}
