//! Test fixtures: a kube `Client` over a `tower_test` mock, an API-server verifier that asserts
//! each request the reconciler makes and answers it, and builders for SealedSecrets and Secrets.
//!
//! A scenario lists the exact calls expected, in order. If the reconciler makes a call the
//! scenario does not expect, the assertion names it; if it makes fewer, the verifier times out.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use http::{Request, Response, StatusCode};
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Client, client::Body};
use sealed_secrets_core::{
    crypto::SystemRandom,
    key_secret::{KeyOrder, new_key_secret},
    keys::generate_key_pair,
    seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
    sealed_secret::SealedSecret,
};
use serde_json::{Value, json};

use crate::{
    keyring::{KeyRing, key_from_secret},
    metrics::Metrics,
    reconciler::{Context, ReconcileOptions},
};

/// The handle the verifier uses to see and answer requests.
pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A ring with one fresh RSA-2048 key.
pub fn test_ring() -> Arc<KeyRing> {
    let pair = generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(1),
    )
    .unwrap();
    let mut secret = new_key_secret(&pair, "sealed-secrets-key", "kube-system", &[], &[]).unwrap();
    secret.metadata.name = Some("sealed-secrets-keytest".into());
    let ring = KeyRing::default();
    ring.register(key_from_secret(&secret, KeyOrder::CertNotBefore).unwrap());
    Arc::new(ring)
}

/// Default reconcile options for tests.
pub fn options() -> ReconcileOptions {
    ReconcileOptions {
        update_status: true,
        accept_deprecated_v1_data: true,
        max_unseal_retries: 5,
        self_heal: false,
        old_gc_behavior: false,
        skip_recreate: false,
        workers: 1,
        label_selector: String::new(),
    }
}

/// A context over a mock API server.
pub fn test_context(ring: Arc<KeyRing>) -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Context::new(client, ring, Arc::new(Metrics::new("test")), options());
    (Arc::new(ctx), handle)
}

/// A SealedSecret `shop/db` (uid `uid-db`, generation 1) sealed for `ring`'s key.
pub fn sealed_db(ring: &KeyRing) -> SealedSecret {
    let secret = secret_from_value(json!({
        "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "shop"}},
        "stringData": {"password": "hunter2"}
    }))
    .unwrap();
    let options = SealOptions {
        scope: Default::default(),
        namespace: NamespaceDefault {
            namespace: "shop".into(),
            explicit: false,
        },
        allow_empty_data: false,
    };
    let mut sealed = seal_secret(
        secret,
        &ring.sealing_public_key().unwrap(),
        &options,
        &mut SystemRandom,
    )
    .unwrap();
    sealed.metadata.uid = Some("uid-db".into());
    sealed.metadata.generation = Some(1);
    sealed.metadata.resource_version = Some("7".into());
    sealed
}

/// A Secret `shop/db` as it might exist in the cluster.
pub fn existing_secret(
    data: &[(&str, &str)],
    annotations: &[(&str, &str)],
    owner_uid: Option<&str>,
) -> Secret {
    let owner = owner_uid.map(|uid| {
        vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "bitnami.com/v1alpha1".into(),
                kind: "SealedSecret".into(),
                name: "db".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: None,
            },
        ]
    });
    Secret {
        metadata: ObjectMeta {
            name: Some("db".into()),
            namespace: Some("shop".into()),
            resource_version: Some("42".into()),
            annotations: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>()
            }),
            owner_references: owner,
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// One expected API call and the answer to give.
pub struct Expect {
    /// HTTP method.
    pub method: &'static str,
    /// Path (without query).
    pub path: &'static str,
    /// Status to answer with.
    pub status: u16,
    /// Body to answer with (`Value::Null`: echo the request body).
    pub reply: Value,
}

impl Expect {
    /// Expect a call answered with `reply`.
    pub fn new(method: &'static str, path: &'static str, status: u16, reply: Value) -> Self {
        Self {
            method,
            path,
            status,
            reply,
        }
    }
}

/// A Kubernetes `Status` error body.
pub fn status_error(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": reason, "message": message, "code": code})
}

/// Serves `script` in order and returns every request body (as JSON) for further checks.
pub async fn serve(handle: &mut Handle, script: Vec<Expect>) -> Vec<Value> {
    let mut bodies = Vec::new();
    for expect in script {
        let next = tokio::time::timeout(Duration::from_secs(5), handle.next_request()).await;
        let (request, respond) = next
            .unwrap_or_else(|_| panic!("timed out waiting for {} {}", expect.method, expect.path))
            .unwrap_or_else(|| panic!("client closed before {} {}", expect.method, expect.path));
        assert_eq!(
            (request.method().as_str(), request.uri().path()),
            (expect.method, expect.path),
            "unexpected request order"
        );
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let reply = if expect.reply.is_null() {
            body.clone()
        } else {
            expect.reply
        };
        let response = Response::builder()
            .status(StatusCode::from_u16(expect.status).unwrap())
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap();
        respond.send_response(response);
        bodies.push(body);
    }
    bodies
}

/// Asserts no further request arrives within a short time.
pub async fn assert_quiet(handle: &mut Handle) {
    let next = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    if let Ok(Some((request, _))) = next {
        panic!(
            "unexpected extra request {} {}",
            request.method(),
            request.uri().path()
        );
    }
}
