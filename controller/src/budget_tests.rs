//! A SealedSecret over its per-object budget (`sealed_secrets_core::budget`) fails like any
//! object that does not open: `Synced=False` and an event naming the limit, no Secret written.
//! Kept apart from `reconcile_tests.rs` so the scenarios there can change independently.

use std::sync::Arc;

use sealed_secrets_core::sealed_secret::SealedSecret;
use serde_json::Value;

use crate::{
    fixtures::{Expect, assert_quiet, sealed_db, serve, status_error, test_context, test_ring},
    reconciler::{ReconcileError, reconcile_pass},
};

const STATUS: &str = "/apis/bitnami.com/v1alpha1/namespaces/shop/sealedsecrets/db/status";
const EVENTS: &str = "/api/v1/namespaces/shop/events";

#[tokio::test]
async fn an_object_over_budget_is_marked_failed_with_the_limit_and_no_plaintext() {
    assert_over_budget_reported(|_| {}).await;
}

#[tokio::test]
async fn an_object_slimmed_by_the_watch_reports_the_same_limit() {
    assert_over_budget_reported(|sealed| {
        *sealed = crate::cached::CachedSealedSecret::from(sealed.clone()).to_pass();
    })
    .await;
}

/// Reconciles an object with too many template entries, after `prepare` (what the watch stream
/// does to it), and checks the event, the status and that no Secret is written.
async fn assert_over_budget_reported(prepare: impl FnOnce(&mut SealedSecret)) {
    let ring = test_ring();
    let mut sealed = sealed_db(&ring);
    // Each entry alone is harmless; together they are more entries than one object may have.
    sealed.spec.template.data = Some(
        (0..2000)
            .map(|i| (format!("k{i}"), "{{ .password }}".to_string()))
            .collect(),
    );
    prepare(&mut sealed);
    let (ctx, mut handle) = test_context(ring);
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed), ctx));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new(
                "GET",
                "/api/v1/namespaces/shop/secrets/db",
                404,
                status_error(404, "NotFound", "not found"),
            ),
            Expect::new("POST", EVENTS, 201, Value::Null),
            Expect::new("PUT", STATUS, 200, Value::Null),
        ],
    )
    .await;
    let bodies = &bodies[1..];
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, ReconcileError::Unseal(_)));
    let limit = "spec.template.data has 2000 entries, more than the limit of 1024 per SealedSecret";
    assert_eq!(bodies[0]["reason"], "ErrUnsealFailed");
    assert_eq!(bodies[0]["message"], format!("Failed to unseal: {limit}"));
    let condition = &bodies[1]["status"]["conditions"][0];
    assert_eq!(
        (
            &condition["type"],
            &condition["status"],
            &condition["message"]
        ),
        (
            &Value::from("Synced"),
            &Value::from("False"),
            &Value::from(limit)
        )
    );
    for body in bodies {
        assert!(!body.to_string().contains("hunter2"), "{body}");
    }
    assert_quiet(&mut handle).await;
}
