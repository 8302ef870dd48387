//! Reconcile scenarios against a mock API server: every call the reconciler makes is checked
//! (method, path, body) and answered as the API server would.

use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

use crate::{
    decisions::{MANAGED_ANNOTATION, PATCH_ANNOTATION},
    fixtures::{
        Expect, assert_quiet, existing_secret, sealed_db, serve, status_error, test_context,
        test_ring,
    },
    reconciler::{ReconcileError, reconcile_pass},
};

const SECRET: &str = "/api/v1/namespaces/shop/secrets/db";
const SECRETS: &str = "/api/v1/namespaces/shop/secrets";
const STATUS: &str = "/apis/bitnami.com/v1alpha1/namespaces/shop/sealedsecrets/db/status";
const EVENTS: &str = "/api/v1/namespaces/shop/events";
const SEALED: &str = "/apis/bitnami.com/v1alpha1/namespaces/shop/sealedsecrets/db";

/// The read of the Secret, answered "not found".
fn secret_absent() -> Expect {
    Expect::new(
        "GET",
        SECRET,
        404,
        status_error(404, "NotFound", "secrets \"db\" not found"),
    )
}

/// The live read of the SealedSecret's metadata, answered with `uid` (`None`: not found).
fn live_sealed(uid: Option<&str>) -> Expect {
    match uid {
        Some(uid) => Expect::new(
            "GET",
            SEALED,
            200,
            serde_json::json!({
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadata",
                "metadata": {"name": "db", "namespace": "shop", "uid": uid}
            }),
        ),
        None => Expect::new(
            "GET",
            SEALED,
            404,
            status_error(
                404,
                "NotFound",
                "sealedsecrets.bitnami.com \"db\" not found",
            ),
        ),
    }
}

fn decoded(body: &Value, item: &str) -> String {
    let b64 = body["data"][item]
        .as_str()
        .unwrap_or_else(|| panic!("no data item {item} in {body}"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

fn synced(status_body: &Value) -> (String, Option<String>) {
    let condition = &status_body["status"]["conditions"][0];
    assert_eq!(condition["type"], "Synced");
    assert_eq!(status_body["status"]["observedGeneration"], 1);
    (
        condition["status"].as_str().unwrap().to_string(),
        condition["message"].as_str().map(str::to_string),
    )
}

#[tokio::test]
async fn creates_the_secret_with_owner_reference_status_and_event() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let task = tokio::spawn(reconcile_pass(sealed, ctx));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new(
                "GET",
                SECRET,
                404,
                status_error(404, "NotFound", "secrets \"db\" not found"),
            ),
            live_sealed(Some("uid-db")),
            Expect::new("POST", SECRETS, 201, Value::Null),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    let created = &bodies[2];
    assert_eq!(decoded(created, "password"), "hunter2");
    assert_eq!(created["metadata"]["labels"]["app"], "shop");
    let owner = &created["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            owner["kind"].as_str(),
            owner["uid"].as_str(),
            owner["controller"].as_bool()
        ),
        (Some("SealedSecret"), Some("uid-db"), Some(true))
    );
    assert_eq!(synced(&bodies[4]), ("True".into(), None));
    assert_eq!(bodies[5]["reason"], "Unsealed");
    assert_eq!(bodies[5]["message"], "SealedSecret unsealed successfully");
    assert_eq!(bodies[5]["involvedObject"]["kind"], "SealedSecret");
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn updates_an_owned_secret_whose_data_differs() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let existing = existing_secret(&[("password", "old"), ("stale", "x")], &[], Some("uid-db"));
    let task = tokio::spawn(reconcile_pass(sealed, ctx));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&existing).unwrap()),
            Expect::new("PUT", SECRET, 200, Value::Null),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(decoded(&bodies[1], "password"), "hunter2");
    assert!(
        bodies[1]["data"].get("stale").is_none(),
        "replace mode drops items not in the SealedSecret"
    );
    assert_eq!(
        bodies[1]["metadata"]["resourceVersion"], "42",
        "update is conditional on what was read"
    );
}

#[tokio::test]
async fn refuses_a_secret_it_does_not_own() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    // Controlled by a SealedSecret of another name: never ours, whatever exists.
    let mut foreign = existing_secret(&[("password", "theirs")], &[], Some("someone-else"));
    foreign.metadata.owner_references.as_mut().unwrap()[0].name = "db-other".into();
    let task = tokio::spawn(reconcile_pass(sealed, ctx));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&foreign).unwrap()),
            Expect::new("POST", EVENTS, 201, Value::Null),
            Expect::new("PUT", STATUS, 200, Value::Null),
        ],
    )
    .await;
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, ReconcileError::Unmanaged(_)));
    assert_eq!(bodies[1]["reason"], "ErrUpdateFailed");
    assert_eq!(
        bodies[1]["message"],
        "Resource \"db\" already exists and is not managed by SealedSecret"
    );
    assert_eq!(
        synced(&bodies[2]),
        (
            "False".into(),
            Some(
                "failed update: Resource \"db\" already exists and is not managed by SealedSecret"
                    .into()
            )
        )
    );
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn takes_over_a_managed_secret() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let managed = existing_secret(
        &[("password", "old")],
        &[(MANAGED_ANNOTATION, "true")],
        None,
    );
    let task = tokio::spawn(reconcile_pass(sealed, ctx));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&managed).unwrap()),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", SECRET, 200, Value::Null),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(bodies[2]["metadata"]["ownerReferences"][0]["uid"], "uid-db");
    assert_eq!(decoded(&bodies[2], "password"), "hunter2");
}

#[tokio::test]
async fn merges_into_a_patch_annotated_secret() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let patched = existing_secret(&[("keep", "mine")], &[(PATCH_ANNOTATION, "true")], None);
    let task = tokio::spawn(reconcile_pass(sealed, ctx));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&patched).unwrap()),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", SECRET, 200, Value::Null),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(decoded(&bodies[2], "keep"), "mine");
    assert_eq!(decoded(&bodies[2], "password"), "hunter2");
    assert!(bodies[2]["metadata"].get("ownerReferences").is_none());
}

#[tokio::test]
async fn decrypt_failure_records_event_and_status_and_leaves_the_secret_alone() {
    let ring = test_ring();
    let mut sealed = sealed_db(&ring);
    sealed.metadata.name = Some("db".into());
    sealed.metadata.namespace = Some("shop".into());
    // Sealed for another key: the controller cannot open it.
    let other = test_ring();
    sealed.spec.encrypted_data = sealed_db(&other).spec.encrypted_data;
    let (ctx, mut handle) = test_context(ring);
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed), ctx));
    let bodies = serve(
        &mut handle,
        vec![
            secret_absent(),
            Expect::new("POST", EVENTS, 201, Value::Null),
            Expect::new("PUT", STATUS, 200, Value::Null),
        ],
    )
    .await;
    let bodies = &bodies[1..];
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, ReconcileError::Unseal(_)));
    assert_eq!(bodies[0]["reason"], "ErrUnsealFailed");
    assert_eq!(bodies[0]["type"], "Warning");
    assert_eq!(
        bodies[0]["message"],
        "Failed to unseal: no key could decrypt secret (password)"
    );
    assert_eq!(
        synced(&bodies[1]),
        (
            "False".into(),
            Some("no key could decrypt secret (password)".into())
        )
    );
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn immutable_secret_gets_upstreams_message_and_no_retry() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let mut immutable = existing_secret(&[("password", "old")], &[], Some("uid-db"));
    immutable.immutable = Some(true);
    let task = tokio::spawn(reconcile_pass(Arc::clone(&sealed), Arc::clone(&ctx)));
    let bodies = serve(&mut handle, vec![
        Expect::new("GET", SECRET, 200, serde_json::to_value(&immutable).unwrap()),
        Expect::new("PUT", SECRET, 422, status_error(422, "Invalid",
            "Secret \"db\" is invalid: data: Forbidden: field is immutable when `immutable` is set")),
        Expect::new("POST", EVENTS, 201, Value::Null),
        Expect::new("PUT", STATUS, 200, Value::Null),
    ])
    .await;
    let err = task.await.unwrap().unwrap_err();
    assert!(
        bodies[2]["message"]
            .as_str()
            .unwrap()
            .starts_with("Error updating shop/db: the target Secret is immutable.")
    );
    let action = error_policy_of(sealed, &err, ctx);
    assert_eq!(action, kube::runtime::controller::Action::await_change());
}

#[tokio::test]
async fn unchanged_secret_and_status_mean_no_writes() {
    let ring = test_ring();
    let mut sealed = sealed_db(&ring);
    let fingerprint = ring.latest().unwrap().fingerprint.clone();
    sealed.status = crate::decisions::next_status(
        None,
        Some(1),
        None,
        Some(&fingerprint),
        jiff::Timestamp::now(),
    );
    let (ctx, mut handle) = test_context(Arc::clone(&ring));
    // What the controller would have written before.
    let desired = sealed_secrets_core::unseal::unseal(
        &sealed,
        &ring.decrypter_for(None, None),
        Default::default(),
    )
    .unwrap();
    let mut written = desired.clone();
    let key = ring.latest().unwrap();
    crate::digest::stamp(&key.digest, &sealed, &mut written);
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed.clone()), Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![Expect::new(
            "GET",
            SECRET,
            200,
            serde_json::to_value(&written).unwrap(),
        )],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_quiet(&mut handle).await;
    // Proven by its digest: nothing was decrypted.
    let text = ctx.metrics.encode();
    assert!(
        text.contains("sealed_secrets_controller_decryptions_total 0\n"),
        "{text}"
    );
    assert!(text.contains("sealed_secrets_controller_unchanged_verified_total 1\n"));

    // The same Secret without its digest (written by upstream or an older version) is
    // decrypted and rewritten once, with the digest.
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed.clone()), Arc::clone(&ctx)));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&desired).unwrap()),
            Expect::new("PUT", SECRET, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    let rewritten: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(bodies[1].clone()).unwrap();
    assert!(crate::digest::verify(&key.digest, &sealed, &rewritten));
    assert_eq!(rewritten.data, desired.data);
    assert!(
        ctx.metrics
            .encode()
            .contains("sealed_secrets_controller_decryptions_total 1\n")
    );
}

/// The watch cache keeps no ciphertexts: a slimmed object whose Secret is current needs no
/// read of the object; one that must be opened is read whole first, and its uid checked.
#[tokio::test]
async fn a_slimmed_object_is_read_whole_only_when_it_must_be_opened() {
    let ring = test_ring();
    let whole = sealed_db(&ring);
    let cached = crate::cached::CachedSealedSecret::from(whole.clone()).to_pass();
    assert!(cached.spec.encrypted_data.is_empty());
    let cached = Arc::new(cached);

    // Current: proven by the digest through the spec hash, no read of the object.
    let (ctx, mut handle) = test_context(Arc::clone(&ring));
    let mut written = sealed_secrets_core::unseal::unseal(
        &whole,
        &ring.decrypter_for(None, None),
        Default::default(),
    )
    .unwrap();
    crate::digest::stamp(&ring.latest().unwrap().digest, &whole, &mut written);
    written.metadata.resource_version = Some("42".into());
    let task = tokio::spawn(reconcile_pass(Arc::clone(&cached), Arc::clone(&ctx)));
    let current = serde_json::to_value(&written).unwrap();
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, current.clone()),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(synced(&bodies[1]).0, "True");
    assert!(
        ctx.metrics
            .encode()
            .contains("sealed_secrets_controller_decryptions_total 0\n")
    );

    // Absent Secret: the object is read whole (a forged internal annotation on it is
    // ignored), opened and written.
    let (ctx, mut handle) = test_context(Arc::clone(&ring));
    let mut served = serde_json::to_value(&whole).unwrap();
    served["metadata"]["annotations"] =
        serde_json::json!({crate::shed::SPEC_SHA256: "0".repeat(64)});
    let task = tokio::spawn(reconcile_pass(Arc::clone(&cached), Arc::clone(&ctx)));
    let bodies = serve(
        &mut handle,
        vec![
            secret_absent(),
            Expect::new("GET", SEALED, 200, served),
            live_sealed(Some("uid-db")),
            Expect::new("POST", SECRETS, 201, Value::Null),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(decoded(&bodies[3], "password"), "hunter2");
    // What was written verifies against the cached (slimmed) object: the next pass is free.
    let stamped: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(bodies[3].clone()).unwrap();
    assert!(crate::digest::verify(
        &ring.latest().unwrap().digest,
        &cached,
        &stamped
    ));

    // Gone, or another object under the name: nothing is opened or written.
    let (ctx, mut handle) = test_context(Arc::clone(&ring));
    let mut other = serde_json::to_value(&whole).unwrap();
    other["metadata"]["uid"] = Value::from("uid-other");
    let task = tokio::spawn(reconcile_pass(Arc::clone(&cached), Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![secret_absent(), Expect::new("GET", SEALED, 200, other)],
    )
    .await;
    assert!(matches!(task.await.unwrap(), Err(ReconcileError::Gone)));
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn a_hand_edited_secret_is_decrypted_again_and_put_back() {
    let ring = test_ring();
    let sealed = sealed_db(&ring);
    let (ctx, mut handle) = test_context(Arc::clone(&ring));
    let mut written = sealed_secrets_core::unseal::unseal(
        &sealed,
        &ring.decrypter_for(None, None),
        Default::default(),
    )
    .unwrap();
    crate::digest::stamp(&ring.latest().unwrap().digest, &sealed, &mut written);
    written.metadata.resource_version = Some("42".into());
    // Someone changed the password by hand; the digest annotation stayed.
    written.data.as_mut().unwrap().insert(
        "password".into(),
        k8s_openapi::ByteString(b"changed".to_vec()),
    );
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed), Arc::clone(&ctx)));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&written).unwrap()),
            Expect::new("PUT", SECRET, 200, Value::Null),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(decoded(&bodies[1], "password"), "hunter2");
    assert!(
        ctx.metrics
            .encode()
            .contains("sealed_secrets_controller_decryptions_total 1\n")
    );
}

#[tokio::test]
async fn a_status_conflict_is_retried_on_a_fresh_read() {
    let ring = test_ring();
    let mut sealed = sealed_db(&ring);
    sealed.metadata.resource_version = Some("1".into());
    let mut fresh = sealed.clone();
    // Someone else wrote meanwhile (an annotation): a newer resourceVersion.
    fresh.metadata.resource_version = Some("2".into());
    let (ctx, mut handle) = test_context(ring);
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed), ctx));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new(
                "GET",
                SECRET,
                404,
                status_error(404, "NotFound", "not found"),
            ),
            live_sealed(Some("uid-db")),
            Expect::new("POST", SECRETS, 201, Value::Null),
            live_sealed(Some("uid-db")),
            Expect::new(
                "PUT",
                STATUS,
                409,
                status_error(409, "Conflict", "the object has been modified"),
            ),
            Expect::new("GET", SEALED, 200, serde_json::to_value(&fresh).unwrap()),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(bodies[4]["metadata"]["resourceVersion"], "1");
    assert_eq!(
        bodies[6]["metadata"]["resourceVersion"], "2",
        "the retry used the fresh read"
    );
    assert_eq!(synced(&bodies[6]), ("True".into(), None));
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn api_failures_retry_without_limit_and_unseal_failures_wait_for_a_change() {
    use kube::runtime::controller::Action;
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, _handle) = test_context(ring);
    let unavailable = || {
        ReconcileError::Api(kube::Error::Api(Box::new(
            kube::core::Status::failure("etcdserver: request timed out", "InternalError")
                .with_code(500),
        )))
    };
    for _ in 0..50 {
        let action = error_policy_of(Arc::clone(&sealed), &unavailable(), Arc::clone(&ctx));
        assert_ne!(
            action,
            Action::await_change(),
            "a transient failure never gives up"
        );
    }
    let unseal =
        || ReconcileError::Unseal(sealed_secrets_core::unseal::UnsealError::DeprecatedDataDisabled);
    // `--max-unseal-retries` (5 here) quick retries, not eaten by the API failures above.
    for attempt in 1..=5 {
        let action = error_policy_of(Arc::clone(&sealed), &unseal(), Arc::clone(&ctx));
        assert_ne!(action, Action::await_change(), "attempt {attempt}");
    }
    let action = error_policy_of(Arc::clone(&sealed), &unseal(), Arc::clone(&ctx));
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn objects_that_cannot_be_unsealed_are_remembered_for_the_next_key() {
    let ring = test_ring();
    let mut sealed = sealed_db(&ring);
    let other = test_ring();
    sealed.spec.encrypted_data = sealed_db(&other).spec.encrypted_data;
    let (ctx, mut handle) = test_context(Arc::clone(&ring));
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed.clone()), Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![
            secret_absent(),
            Expect::new("POST", EVENTS, 201, Value::Null),
            Expect::new("PUT", STATUS, 200, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap_err();
    let failed = ctx.unseal_failures(Some("shop"));
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "db");
    assert!(ctx.unseal_failures(Some("elsewhere")).is_empty());

    // The key arrives (the other ring's key): the same object now opens and is forgotten.
    let changes = ring.subscribe();
    ring.register(
        other
            .latest()
            .map(|k| crate::keyring::SealingKey::clone(&k))
            .unwrap(),
    );
    assert!(
        changes.has_changed().unwrap(),
        "registering a key is announced"
    );
    let task = tokio::spawn(reconcile_pass(Arc::new(sealed), Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![
            Expect::new(
                "GET",
                SECRET,
                404,
                status_error(404, "NotFound", "not found"),
            ),
            live_sealed(Some("uid-db")),
            Expect::new("POST", SECRETS, 201, Value::Null),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert!(ctx.unseal_failures(None).is_empty());
}

#[tokio::test]
async fn nothing_is_written_without_leadership() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let ctx = Arc::new(
        Arc::into_inner(ctx)
            .expect("sole owner")
            .with_leadership(crate::leader::Leadership::elected()),
    );
    let err = reconcile_pass(sealed, Arc::clone(&ctx)).await.unwrap_err();
    assert!(matches!(err, ReconcileError::NotLeader));
    assert_quiet(&mut handle).await;
    // A standby keeps it for when it leads.
    assert_eq!(ctx.backlog("shop").len(), 1);
}

fn race_count(ctx: &crate::reconciler::Context, kind: &str) -> u64 {
    let text = ctx.metrics.encode();
    let series = format!("sealed_secrets_controller_reconcile_races_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_secret_left_by_a_deleted_predecessor_of_the_same_name_is_taken_over() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    // `db` was deleted and created again (uid-db) before garbage collection removed the
    // Secret of the first one (uid-old).
    let leftover = existing_secret(&[("password", "old")], &[], Some("uid-old"));
    let task = tokio::spawn(reconcile_pass(sealed, Arc::clone(&ctx)));
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&leftover).unwrap()),
            // The live read proves uid-old gone: the name holds uid-db.
            live_sealed(Some("uid-db")),
            Expect::new("PUT", SECRET, 200, Value::Null),
            live_sealed(Some("uid-db")),
            Expect::new("PUT", STATUS, 200, Value::Null),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    let owners = bodies[2]["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(
        (owners.len(), owners[0]["uid"].as_str()),
        (1, Some("uid-db"))
    );
    assert_eq!(decoded(&bodies[2], "password"), "hunter2");
    assert_eq!(synced(&bodies[4]), ("True".into(), None));
    assert_eq!(race_count(&ctx, "predecessor_secret"), 1);
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn a_pass_on_a_stale_cache_entry_writes_nothing() {
    // The cache still has `db` (uid-db); the API server has no `db`, or another object of
    // that name. Neither the missing Secret nor a predecessor's Secret may be written.
    for live in [None, Some("uid-newer")] {
        for existing in [None, Some("uid-old")] {
            let ring = test_ring();
            let sealed = Arc::new(sealed_db(&ring));
            let (ctx, mut handle) = test_context(ring);
            let task = tokio::spawn(reconcile_pass(Arc::clone(&sealed), Arc::clone(&ctx)));
            let read = match existing {
                None => Expect::new(
                    "GET",
                    SECRET,
                    404,
                    status_error(404, "NotFound", "not found"),
                ),
                Some(owner) => Expect::new(
                    "GET",
                    SECRET,
                    200,
                    serde_json::to_value(existing_secret(&[("password", "x")], &[], Some(owner)))
                        .unwrap(),
                ),
            };
            serve(&mut handle, vec![read, live_sealed(live)]).await;
            let err = task.await.unwrap().unwrap_err();
            assert!(
                matches!(err, ReconcileError::Gone),
                "{live:?} {existing:?}: {err}"
            );
            assert_eq!(
                error_policy_of(sealed, &err, Arc::clone(&ctx)),
                kube::runtime::controller::Action::await_change()
            );
            assert_eq!(race_count(&ctx, "stale_object"), 1);
            assert!(
                !ctx.metrics.encode().contains("unseal_errors_total{"),
                "a stale entry is not an unseal error"
            );
            // No write, no status, no event.
            assert_quiet(&mut handle).await;
        }
    }
}

#[tokio::test]
async fn a_secret_created_while_its_sealed_secret_is_deleted_is_taken_back() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let task = tokio::spawn(reconcile_pass(sealed, Arc::clone(&ctx)));
    let mut created = existing_secret(&[("password", "hunter2")], &[], Some("uid-db"));
    created.metadata.uid = Some("secret-uid".into());
    created.metadata.resource_version = Some("77".into());
    let bodies = serve(
        &mut handle,
        vec![
            Expect::new(
                "GET",
                SECRET,
                404,
                status_error(404, "NotFound", "not found"),
            ),
            live_sealed(Some("uid-db")),
            Expect::new(
                "POST",
                SECRETS,
                201,
                serde_json::to_value(&created).unwrap(),
            ),
            // Deleted between the first read and the write.
            live_sealed(None),
            Expect::new(
                "DELETE",
                SECRET,
                200,
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
            ),
        ],
    )
    .await;
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, ReconcileError::Gone));
    assert_eq!(
        bodies[4]["preconditions"],
        serde_json::json!({"uid": "secret-uid", "resourceVersion": "77"}),
        "only exactly what this pass wrote is removed"
    );
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn a_secret_created_by_someone_else_meanwhile_is_a_race_not_an_error() {
    use kube::runtime::controller::Action;
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let task = tokio::spawn(reconcile_pass(Arc::clone(&sealed), Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![
            Expect::new(
                "GET",
                SECRET,
                404,
                status_error(404, "NotFound", "not found"),
            ),
            live_sealed(Some("uid-db")),
            Expect::new(
                "POST",
                SECRETS,
                409,
                status_error(409, "AlreadyExists", "secrets \"db\" already exists"),
            ),
            Expect::new("PUT", STATUS, 200, Value::Null),
        ],
    )
    .await;
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(err.race(), Some("conflict"));
    assert_eq!(race_count(&ctx, "conflict"), 1);
    assert!(!ctx.metrics.encode().contains("unseal_errors_total{"));
    let action = error_policy_of(sealed, &err, ctx);
    assert_ne!(action, Action::await_change(), "retried at once");
    assert_quiet(&mut handle).await;
}

#[tokio::test]
async fn a_status_for_a_sealed_secret_deleted_meanwhile_is_skipped() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let mut owned = existing_secret(&[("password", "old")], &[], Some("uid-db"));
    owned.metadata.resource_version = Some("3".into());
    let task = tokio::spawn(reconcile_pass(sealed, Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&owned).unwrap()),
            Expect::new("PUT", SECRET, 200, Value::Null),
            Expect::new(
                "PUT",
                STATUS,
                404,
                status_error(404, "NotFound", "not found"),
            ),
            Expect::new("POST", EVENTS, 201, Value::Null),
        ],
    )
    .await;
    task.await.unwrap().unwrap();
    assert_eq!(race_count(&ctx, "stale_object"), 1);
    assert!(!ctx.metrics.encode().contains("unseal_errors_total{"));
}

#[tokio::test]
async fn a_status_that_cannot_be_written_retries_the_pass() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let owned = existing_secret(&[("password", "old")], &[], Some("uid-db"));
    let task = tokio::spawn(reconcile_pass(Arc::clone(&sealed), Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![
            Expect::new("GET", SECRET, 200, serde_json::to_value(&owned).unwrap()),
            Expect::new("PUT", SECRET, 200, Value::Null),
            Expect::new(
                "PUT",
                STATUS,
                503,
                status_error(503, "ServiceUnavailable", "apiserver is shutting down"),
            ),
        ],
    )
    .await;
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, ReconcileError::Status(_)), "{err}");
    assert_eq!(err.metric_reason(), "status");
    assert_ne!(
        error_policy_of(sealed, &err, ctx),
        kube::runtime::controller::Action::await_change()
    );
}

#[tokio::test]
async fn a_check_after_the_write_that_fails_keeps_the_secret_and_retries() {
    let ring = test_ring();
    let sealed = Arc::new(sealed_db(&ring));
    let (ctx, mut handle) = test_context(ring);
    let task = tokio::spawn(reconcile_pass(Arc::clone(&sealed), Arc::clone(&ctx)));
    serve(
        &mut handle,
        vec![
            secret_absent(),
            live_sealed(Some("uid-db")),
            Expect::new("POST", SECRETS, 201, Value::Null),
            // The API server cannot answer the second read: that proves nothing.
            Expect::new(
                "GET",
                SEALED,
                503,
                status_error(503, "ServiceUnavailable", "apiserver is shutting down"),
            ),
            Expect::new("PUT", STATUS, 200, Value::Null),
        ],
    )
    .await;
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, ReconcileError::Api(_)), "{err}");
    assert_ne!(
        error_policy_of(sealed, &err, ctx),
        kube::runtime::controller::Action::await_change(),
        "retried"
    );
    // No DELETE of the Secret just written.
    assert_quiet(&mut handle).await;
}

/// `error_policy` for an object as the watch cache would hold it.
fn error_policy_of(
    sealed: Arc<sealed_secrets_core::sealed_secret::SealedSecret>,
    err: &ReconcileError,
    ctx: Arc<crate::reconciler::Context>,
) -> kube::runtime::controller::Action {
    let cached = crate::cached::CachedSealedSecret::from(Arc::unwrap_or_clone(sealed));
    crate::reconciler::error_policy(Arc::new(cached), err, ctx)
}
