//! The reconciler's decisions, as pure functions: may we touch this Secret, what should it look
//! like after the write, and does the status need writing. The I/O around them lives in
//! `reconciler.rs`.
//!
//! Upstream behaviour is kept for the wire and for ownership (never overwrite a Secret that is
//! neither owned by the SealedSecret nor marked `managed`/`patch`). Deliberate fixes, see
//! docs/decisions.md: a Secret created with `skip-set-owner-references` is marked `managed` so
//! the next pass does not refuse it; an update keeps the existing type when the template has
//! none; a changed error message is written to the status even when the status stays False.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use sealed_secrets_core::sealed_secret::{SealedSecretCondition, SealedSecretStatus};

/// Annotation on an existing Secret that lets the controller take it over.
pub const MANAGED_ANNOTATION: &str = "sealedsecrets.bitnami.com/managed";
/// Annotation on an existing Secret that makes the controller merge instead of replace.
pub const PATCH_ANNOTATION: &str = "sealedsecrets.bitnami.com/patch";
/// The only condition type upstream writes.
pub const CONDITION_SYNCED: &str = "Synced";

fn annotation_is_true(meta: &ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .is_some_and(|v| v == "true")
}

/// Whether `secret` has a controller owner reference to the SealedSecret with `uid`.
pub fn is_controlled_by(secret: &Secret, uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid && !uid.is_empty())
}

/// Whether the controller may write to an existing Secret.
pub fn may_write(existing: &Secret, uid: &str) -> bool {
    is_controlled_by(existing, uid)
        || annotation_is_true(&existing.metadata, MANAGED_ANNOTATION)
        || annotation_is_true(&existing.metadata, PATCH_ANNOTATION)
}

/// Whom an existing Secret belongs to, as far as its own metadata can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Controlled by this SealedSecret, or marked `managed`/`patch`: ours to write.
    Ours,
    /// Controlled by a SealedSecret **of the same name** with another uid: what a deleted
    /// predecessor left behind, if that uid no longer exists. Only a live read can tell (see
    /// [`predecessor_is_gone`]); a cache cannot, because it may lag the deletion.
    Predecessor {
        /// The uid the Secret's controller reference names.
        uid: String,
    },
    /// Anything else (another owner, another name, no owner and no annotation): never ours.
    Foreign,
}

/// Classifies `existing` for the SealedSecret `name` with `uid`.
pub fn ownership(existing: &Secret, name: &str, uid: &str) -> Ownership {
    if may_write(existing, uid) {
        return Ownership::Ours;
    }
    let controller = existing
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    match controller {
        Some(owner)
            if owner.kind == "SealedSecret"
                && owner.api_version.starts_with("bitnami.com/")
                && owner.name == name
                && !owner.uid.is_empty()
                && owner.uid != uid =>
        {
            Ownership::Predecessor {
                uid: owner.uid.clone(),
            }
        }
        _ => Ownership::Foreign,
    }
}

/// Whether the predecessor with `predecessor_uid` is gone, given what a live read of the
/// SealedSecret's name returned (`live_uid`; `None`: no object of that name).
///
/// A name holds one object at a time, so when the API server has *this* object (`our_uid`)
/// under the name, any other uid of the name has been deleted. When it has no object or
/// another one, it is *our* object that is gone (the pass runs on a stale cache entry) and
/// nothing may be written: `None`.
pub fn predecessor_is_gone(
    predecessor_uid: &str,
    our_uid: &str,
    live_uid: Option<&str>,
) -> Option<bool> {
    match live_uid {
        Some(live) if live == our_uid && !our_uid.is_empty() => Some(live != predecessor_uid),
        _ => None,
    }
}

/// Whether a planned write must be confirmed against the live SealedSecret, before and after
/// it: a write that creates the Secret or puts this SealedSecret's owner reference on it. A
/// stale cache entry (the SealedSecret was deleted and the watch has not said so yet) must not
/// bring its Secret back. A write to a Secret that already names this uid as its controller
/// needs no check: if the uid is gone, garbage collection removes that Secret either way.
pub fn write_needs_live_owner(existing: Option<&Secret>, uid: &str) -> bool {
    existing.is_none_or(|existing| !is_controlled_by(existing, uid))
}

/// What to do with the Secret of a SealedSecret.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretWrite {
    /// No Secret exists: create this one.
    Create(Secret),
    /// Replace the existing Secret with this one (keeps its resourceVersion).
    Update(Secret),
    /// The existing Secret already matches.
    Unchanged,
    /// The Secret exists and is not ours: upstream's message.
    Refuse(String),
}

/// Upstream's text when a Secret of the same name is not ours.
pub fn unmanaged_message(name: &str) -> String {
    format!("Resource {name:?} already exists and is not managed by SealedSecret")
}

/// Overwrites the values of a Secret (plaintext) before it is dropped.
pub fn wipe_secret(secret: &mut Secret) {
    use zeroize::Zeroize;
    for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
        value.0.zeroize();
    }
    for value in secret.string_data.iter_mut().flat_map(|d| d.values_mut()) {
        value.zeroize();
    }
}

/// Decides the write for `desired` (from `unseal`) given the Secret currently in the cluster.
/// `takeover` says a live read proved the existing Secret a leftover of a deleted predecessor
/// ([`Ownership::Predecessor`], [`predecessor_is_gone`]): it is replaced as if it were ours.
/// `stamp` puts the digest on the Secret as it would be written ([`crate::digest::stamp`]);
/// the existing Secret is unchanged only when it already carries the same digest.
pub fn plan_secret_write(
    existing: Option<&Secret>,
    mut desired: Secret,
    uid: &str,
    takeover: bool,
    stamp: impl FnOnce(&mut Secret),
) -> SecretWrite {
    let Some(existing) = existing else {
        if desired.metadata.owner_references.is_none() {
            // skip-set-owner-references: without an owner, only `managed` lets the next pass
            // recognise the Secret as ours (upstream fails right after creating it).
            desired
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(MANAGED_ANNOTATION.into(), "true".into());
        }
        stamp(&mut desired);
        return SecretWrite::Create(desired);
    };
    if !takeover && !may_write(existing, uid) {
        wipe_secret(&mut desired);
        return SecretWrite::Refuse(unmanaged_message(
            existing.metadata.name.as_deref().unwrap_or_default(),
        ));
    }
    let mut updated = existing.clone();
    let patch = annotation_is_true(&existing.metadata, PATCH_ANNOTATION);
    if patch {
        let data = updated.data.get_or_insert_with(BTreeMap::new);
        data.extend(desired.data.take().unwrap_or_default());
        if let Some(labels) = desired.metadata.labels.take() {
            updated
                .metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .extend(labels);
        }
        if let Some(annotations) = desired.metadata.annotations.take() {
            updated
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(annotations);
        }
        if annotation_is_true(&existing.metadata, MANAGED_ANNOTATION) {
            updated.metadata.owner_references = desired.metadata.owner_references.take();
        }
    } else {
        updated.data = desired.data.take();
        updated.metadata.labels = desired.metadata.labels.take();
        // Keep `managed` if the user set it: dropping it would make the Secret unowned when
        // owner references are skipped.
        let keep_managed = annotation_is_true(&existing.metadata, MANAGED_ANNOTATION);
        let mut annotations = desired.metadata.annotations.take().unwrap_or_default();
        if keep_managed {
            annotations.insert(MANAGED_ANNOTATION.into(), "true".into());
        }
        updated.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        updated.metadata.owner_references = desired.metadata.owner_references.take();
    }
    if desired.type_.is_some() {
        updated.type_ = desired.type_.take();
    }
    if desired.immutable == Some(true) {
        updated.immutable = Some(true);
    }
    wipe_secret(&mut desired);
    stamp(&mut updated);
    if same_content(existing, &updated) {
        wipe_secret(&mut updated);
        SecretWrite::Unchanged
    } else {
        SecretWrite::Update(updated)
    }
}

fn same_content(a: &Secret, b: &Secret) -> bool {
    let empty_map =
        |m: &Option<BTreeMap<String, String>>| m.as_ref().is_none_or(BTreeMap::is_empty);
    let maps_equal = |x: &Option<BTreeMap<String, String>>,
                      y: &Option<BTreeMap<String, String>>| {
        (empty_map(x) && empty_map(y)) || x == y
    };
    let data = |s: &Secret| s.data.clone().unwrap_or_default();
    data(a) == data(b)
        && maps_equal(&a.metadata.labels, &b.metadata.labels)
        && maps_equal(&a.metadata.annotations, &b.metadata.annotations)
        && a.metadata.owner_references.clone().unwrap_or_default()
            == b.metadata.owner_references.clone().unwrap_or_default()
        && a.type_.as_deref().unwrap_or("Opaque") == b.type_.as_deref().unwrap_or("Opaque")
        && a.immutable.unwrap_or(false) == b.immutable.unwrap_or(false)
}

/// Upstream's event text when a write fails because the Secret is immutable.
pub fn immutable_message(namespace: &str, name: &str) -> String {
    format!(
        "Error updating {namespace}/{name}: the target Secret is immutable. Once a Secret is marked as immutable, it is not possible to revert this change nor to mutate the contents of the data field. You can only delete and recreate the Secret."
    )
}

/// The status to write after a pass, or `None` when the stored one is still right.
///
/// Written when the Synced status flips, when the message changes (upstream keeps a stale
/// message), or when `observedGeneration` lags `generation` (Argo CD reads it).
pub fn next_status(
    current: Option<&SealedSecretStatus>,
    generation: Option<i64>,
    error: Option<&str>,
    key_fingerprint: Option<&str>,
    now: jiff::Timestamp,
) -> Option<SealedSecretStatus> {
    let previous_key = current.and_then(|s| s.key_fingerprint.clone());
    let key_fingerprint = key_fingerprint.map(str::to_string).or(previous_key.clone());
    let status = if error.is_some() { "False" } else { "True" };
    let message = error.map(str::to_string);
    let previous = current
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION_SYNCED));
    let observed = current.and_then(|s| s.observed_generation);
    let same_condition = previous.is_some_and(|p| {
        p.status == status && p.message.as_deref().unwrap_or("") == message.as_deref().unwrap_or("")
    });
    if same_condition && observed == generation && key_fingerprint == previous_key {
        return None;
    }
    let transition = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    let mut conditions: Vec<SealedSecretCondition> = current
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != CONDITION_SYNCED)
        .collect();
    conditions.insert(
        0,
        SealedSecretCondition {
            type_: CONDITION_SYNCED.into(),
            status: status.into(),
            last_update_time: Some(Time(now)),
            last_transition_time: transition,
            reason: None,
            message: message.filter(|m| !m.is_empty()),
        },
    );
    Some(SealedSecretStatus {
        observed_generation: generation,
        conditions: Some(conditions),
        key_fingerprint,
    })
}

/// Whether a listed SealedSecret's status says it was handled as it stands: `Synced=True` at
/// its current generation. One that does not (new, changed while the controller was away, or
/// failing) is reconciled at once; one that does waits in the backlog behind them.
pub fn status_is_current(status: Option<&SealedSecretStatus>, generation: Option<i64>) -> bool {
    let Some(status) = status else {
        return false;
    };
    status.observed_generation.is_some()
        && status.observed_generation == generation
        && condition_gauge(Some(status)) == 1
}

/// The `condition_info` gauge value of a status: 1 True, -1 False, 0 otherwise.
pub fn condition_gauge(status: Option<&SealedSecretStatus>) -> i64 {
    let synced = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION_SYNCED));
    match synced.map(|c| c.status.as_str()) {
        Some("True") => 1,
        Some("False") => -1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{ByteString, apimachinery::pkg::apis::meta::v1::OwnerReference};

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "bitnami.com/v1alpha1".into(),
            kind: "SealedSecret".into(),
            name: "db".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    fn secret(
        data: &[(&str, &str)],
        annotations: &[(&str, &str)],
        owner_uid: Option<&str>,
    ) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("shop".into()),
                annotations: (!annotations.is_empty()).then(|| {
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                }),
                owner_references: owner_uid.map(|u| vec![owner(u)]),
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

    #[test]
    fn creates_when_missing_and_marks_ownerless_secrets_managed() {
        let desired = secret(&[("k", "v")], &[], Some("u1"));
        assert_eq!(
            plan_secret_write(None, desired.clone(), "u1", false, |_| {}),
            SecretWrite::Create(desired)
        );
        let ownerless = secret(&[("k", "v")], &[], None);
        let SecretWrite::Create(created) = plan_secret_write(None, ownerless, "u1", false, |_| {})
        else {
            panic!()
        };
        assert_eq!(
            created.metadata.annotations.unwrap()[MANAGED_ANNOTATION],
            "true"
        );
    }

    #[test]
    fn refuses_unowned_and_unmanaged_secrets_with_upstream_text() {
        let existing = secret(&[("k", "old")], &[], Some("someone-else"));
        assert_eq!(
            plan_secret_write(
                Some(&existing),
                secret(&[("k", "v")], &[], Some("u1")),
                "u1",
                false,
                |_| {}
            ),
            SecretWrite::Refuse(
                "Resource \"db\" already exists and is not managed by SealedSecret".into()
            )
        );
    }

    #[test]
    fn a_secret_of_a_same_named_predecessor_is_told_apart_from_a_foreign_one() {
        let ours = secret(&[("k", "v")], &[], Some("u1"));
        assert_eq!(ownership(&ours, "db", "u1"), Ownership::Ours);
        let managed = secret(&[("k", "v")], &[(MANAGED_ANNOTATION, "true")], None);
        assert_eq!(ownership(&managed, "db", "u1"), Ownership::Ours);
        let left = secret(&[("k", "v")], &[], Some("u0"));
        assert_eq!(
            ownership(&left, "db", "u1"),
            Ownership::Predecessor { uid: "u0".into() }
        );
        // Owned by a SealedSecret of another name, by another kind, or not a controller
        // reference: never a predecessor.
        let mut other_name = left.clone();
        other_name.metadata.owner_references.as_mut().unwrap()[0].name = "db-old".into();
        assert_eq!(ownership(&other_name, "db", "u1"), Ownership::Foreign);
        let mut other_kind = left.clone();
        other_kind.metadata.owner_references.as_mut().unwrap()[0].kind = "Deployment".into();
        assert_eq!(ownership(&other_kind, "db", "u1"), Ownership::Foreign);
        let mut other_group = left.clone();
        other_group.metadata.owner_references.as_mut().unwrap()[0].api_version =
            "example.com/v1".into();
        assert_eq!(ownership(&other_group, "db", "u1"), Ownership::Foreign);
        let mut not_controller = left.clone();
        not_controller.metadata.owner_references.as_mut().unwrap()[0].controller = None;
        assert_eq!(ownership(&not_controller, "db", "u1"), Ownership::Foreign);
        let unowned = secret(&[("k", "v")], &[], None);
        assert_eq!(ownership(&unowned, "db", "u1"), Ownership::Foreign);
    }

    #[test]
    fn a_predecessor_is_gone_only_when_the_live_name_holds_this_object() {
        assert_eq!(predecessor_is_gone("u0", "u1", Some("u1")), Some(true));
        // The live object is the predecessor, another one, or none: this pass is stale.
        assert_eq!(predecessor_is_gone("u0", "u1", Some("u0")), None);
        assert_eq!(predecessor_is_gone("u0", "u1", Some("u2")), None);
        assert_eq!(predecessor_is_gone("u0", "u1", None), None);
        assert_eq!(predecessor_is_gone("u0", "", Some("")), None);
    }

    #[test]
    fn a_leftover_is_replaced_whole_when_taken_over() {
        let mut left = secret(&[("k", "old"), ("gone", "x")], &[("a", "b")], Some("u0"));
        left.metadata.labels = Some([("old".to_string(), "label".to_string())].into());
        let desired = secret(&[("k", "new")], &[], Some("u1"));
        assert!(matches!(
            plan_secret_write(Some(&left), desired.clone(), "u1", false, |_| {}),
            SecretWrite::Refuse(_)
        ));
        let SecretWrite::Update(taken) =
            plan_secret_write(Some(&left), desired.clone(), "u1", true, |_| {})
        else {
            panic!("a proven leftover is updated")
        };
        assert_eq!(taken.data, desired.data);
        assert_eq!(taken.metadata.labels, None);
        assert_eq!(taken.metadata.annotations, None);
        let owners = taken.metadata.owner_references.unwrap();
        assert_eq!((owners.len(), owners[0].uid.as_str()), (1, "u1"));
    }

    #[test]
    fn only_writes_that_create_or_claim_a_secret_need_the_live_owner() {
        assert!(write_needs_live_owner(None, "u1"));
        let ours = secret(&[("k", "v")], &[], Some("u1"));
        assert!(!write_needs_live_owner(Some(&ours), "u1"));
        let left = secret(&[("k", "v")], &[], Some("u0"));
        assert!(write_needs_live_owner(Some(&left), "u1"));
        let managed = secret(&[("k", "v")], &[(MANAGED_ANNOTATION, "true")], None);
        assert!(write_needs_live_owner(Some(&managed), "u1"));
    }

    #[test]
    fn updates_owned_secret_and_detects_no_change() {
        let existing = secret(&[("k", "old"), ("extra", "x")], &[("a", "b")], Some("u1"));
        let desired = secret(&[("k", "new")], &[], Some("u1"));
        let SecretWrite::Update(updated) =
            plan_secret_write(Some(&existing), desired.clone(), "u1", false, |_| {})
        else {
            panic!()
        };
        assert_eq!(updated.data, desired.data, "replace drops extra items");
        assert_eq!(updated.metadata.annotations, None);
        assert_eq!(
            plan_secret_write(Some(&updated), desired, "u1", false, |_| {}),
            SecretWrite::Unchanged
        );
    }

    #[test]
    fn managed_takeover_and_patch_merge() {
        let managed = secret(&[("old", "x")], &[(MANAGED_ANNOTATION, "true")], None);
        let desired = secret(&[("k", "v")], &[], Some("u1"));
        let SecretWrite::Update(taken) =
            plan_secret_write(Some(&managed), desired.clone(), "u1", false, |_| {})
        else {
            panic!()
        };
        assert_eq!(taken.metadata.owner_references.unwrap()[0].uid, "u1");
        assert_eq!(
            taken.metadata.annotations.unwrap()[MANAGED_ANNOTATION],
            "true"
        );

        let patched = secret(
            &[("old", "x"), ("k", "stale")],
            &[(PATCH_ANNOTATION, "true")],
            None,
        );
        let SecretWrite::Update(merged) =
            plan_secret_write(Some(&patched), desired, "u1", false, |_| {})
        else {
            panic!()
        };
        let data = merged.data.unwrap();
        assert_eq!(data["old"].0, b"x");
        assert_eq!(data["k"].0, b"v");
        assert_eq!(
            merged.metadata.owner_references, None,
            "patch without managed keeps owners"
        );
        assert_eq!(
            merged.metadata.annotations.unwrap()[PATCH_ANNOTATION],
            "true"
        );
    }

    #[test]
    fn type_is_kept_when_template_has_none_and_immutable_is_applied() {
        let mut existing = secret(&[("k", "v")], &[], Some("u1"));
        existing.type_ = Some("kubernetes.io/basic-auth".into());
        let mut desired = secret(&[("k", "v2")], &[], Some("u1"));
        desired.immutable = Some(true);
        let SecretWrite::Update(updated) =
            plan_secret_write(Some(&existing), desired, "u1", false, |_| {})
        else {
            panic!()
        };
        assert_eq!(updated.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(updated.immutable, Some(true));
    }

    #[test]
    fn only_objects_synced_at_their_generation_look_current() {
        let now = jiff::Timestamp::now();
        let mut sealed =
            sealed_secrets_core::sealed_secret::SealedSecret::new("db", Default::default());
        sealed.metadata.generation = Some(2);
        assert!(
            !status_is_current(sealed.status.as_ref(), sealed.metadata.generation),
            "never handled"
        );
        sealed.status = next_status(None, Some(2), None, None, now);
        assert!(status_is_current(
            sealed.status.as_ref(),
            sealed.metadata.generation
        ));
        sealed.metadata.generation = Some(3);
        assert!(
            !status_is_current(sealed.status.as_ref(), sealed.metadata.generation),
            "changed since"
        );
        sealed.status = next_status(None, Some(3), Some("no key could decrypt"), None, now);
        assert!(
            !status_is_current(sealed.status.as_ref(), sealed.metadata.generation),
            "failing"
        );
    }

    #[test]
    fn status_transitions() {
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: jiff::Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let ok = next_status(None, Some(1), None, Some("SHA256:a"), t0).unwrap();
        assert_eq!(ok.observed_generation, Some(1));
        let c = &ok.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.message.as_deref()),
            ("Synced", "True", None)
        );
        assert_eq!(condition_gauge(Some(&ok)), 1);
        assert_eq!(
            next_status(Some(&ok), Some(1), None, Some("SHA256:a"), t1),
            None,
            "nothing changed: no write"
        );

        let failed = next_status(
            Some(&ok),
            Some(1),
            Some("no key could decrypt secret (k)"),
            None,
            t1,
        )
        .unwrap();
        let c = &failed.conditions.as_ref().unwrap()[0];
        assert_eq!(c.status, "False");
        assert_eq!(c.last_transition_time, Some(Time(t1)));
        assert_eq!(condition_gauge(Some(&failed)), -1);

        let other = next_status(Some(&failed), Some(1), Some("another error"), None, t1).unwrap();
        let c = &other.conditions.as_ref().unwrap()[0];
        assert_eq!(
            c.message.as_deref(),
            Some("another error"),
            "message refreshed"
        );
        assert_eq!(c.last_transition_time, Some(Time(t1)));

        assert!(
            next_status(Some(&ok), Some(2), None, None, t1).is_some(),
            "generation moved"
        );
        let rekeyed = next_status(Some(&ok), Some(1), None, Some("SHA256:b"), t1).unwrap();
        assert_eq!(
            rekeyed.key_fingerprint.as_deref(),
            Some("SHA256:b"),
            "new key recorded"
        );
        assert_eq!(
            failed.key_fingerprint.as_deref(),
            Some("SHA256:a"),
            "kept across failures"
        );
        assert_eq!(condition_gauge(None), 0);
    }
}
