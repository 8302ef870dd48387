//! What the watch cache drops of a SealedSecret, and the in-memory annotations that tell a
//! pass what was dropped (the cache's own type is `cached::CachedSealedSecret`).
//!
//! **The payload.** The cache holds every SealedSecret of the cluster for as long as it
//! exists, and the ciphertexts are most of each (about 3 KB for three RSA-4096 items; 30 MB
//! for 10,000, twice that while a relist builds the new listing). Most passes never need
//! them: a Secret already current is proven so by its digest, which covers the spec through
//! its SHA-256 ([`spec_digest`]). A pass that does decrypt reads the object from the API
//! server first. `managedFields` and `kubectl apply`'s copy of the whole object in an
//! annotation are dropped too ([`drop_copies`]): the controller never reads them.
//!
//! **The budget.** The budget (`sealed_secrets_core::budget`) stops an object with 20,000
//! template entries before any key is tried; the cache used to hold such an object whole,
//! parsed, for as long as it existed (about 6 MB for a 0.8 MB bomb, so fifteen of them took
//! the controller past 100 MB although none was ever rendered). Now its verdict is taken when
//! it arrives ([`shape_verdict`]) and carried to the pass, so the status still names the limit
//! and the numbers ([`over_budget`]), and the object is never read whole again.
//!
//! The annotations live only in the controller's memory: the controller never writes a
//! SealedSecret back (it patches `status` alone), and the same annotations arriving from the
//! API server are removed before anything reads them ([`forget_internal`]), so a user cannot
//! mark an object over budget or forge its spec hash.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sealed_secrets_core::{budget::BudgetError, sealed_secret::SealedSecret, unseal::check_shape};

/// Annotation that carries the budget verdict to a pass (in memory only).
pub const OVER_BUDGET: &str = "sealed-secrets-rs.internal/over-budget";

/// What `kubectl apply` keeps on every object it applies: a second copy of the whole object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Annotation (in memory only) carrying the SHA-256 of the `spec` a pass's object no longer
/// holds: what the digest of its Secret covers, and how a pass knows the object was slimmed.
pub const SPEC_SHA256: &str = "sealed-secrets-rs.internal/spec-sha256";

/// Annotations only the controller may set, in memory: removed from anything the API server
/// delivers before the controller reads them, so a user cannot forge them.
const INTERNAL: [&str; 2] = [OVER_BUDGET, SPEC_SHA256];

/// Removes the in-memory annotations from an object read from the API server.
pub fn forget_internal(sealed: &mut SealedSecret) {
    if let Some(annotations) = sealed.metadata.annotations.as_mut() {
        for key in INTERNAL {
            annotations.remove(key);
        }
        if annotations.is_empty() {
            sealed.metadata.annotations = None;
        }
    }
}

/// Drops what the controller never reads of an object's metadata: `managedFields` and
/// `kubectl apply`'s copy of the whole object.
pub fn drop_copies(metadata: &mut ObjectMeta) {
    metadata.managed_fields = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            metadata.annotations = None;
        }
    }
}

/// The budget's verdict on an object's shape, when it is over it and the verdict can be
/// carried to a pass. A limit this module does not know yet gives `None`: the pass then reads
/// the object whole and unsealing reports it.
pub fn shape_verdict(sealed: &SealedSecret) -> Option<BudgetError> {
    let err = check_shape(sealed).err()?;
    verdict_text(&err).is_some().then_some(err)
}

/// The annotation text of a verdict ([`over_budget`] reads it back).
pub fn verdict_text(err: &BudgetError) -> Option<String> {
    match err {
        BudgetError::TemplateEntries { count } => Some(format!("entries={count}")),
        BudgetError::InputBytes { size } => Some(format!("bytes={size}")),
        _ => None,
    }
}

/// SHA-256 of the serialised `spec`.
pub fn spec_digest(sealed: &SealedSecret) -> [u8; 32] {
    let bytes = serde_json::to_vec(&sealed.spec).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// SHA-256 (hex) of the serialised `spec`.
pub fn hash_spec(sealed: &SealedSecret) -> String {
    crate::cached::to_hex(&spec_digest(sealed))
}

/// The SHA-256 of the object's spec: recorded when the cache slimmed it, else computed.
pub fn spec_sha256(sealed: &SealedSecret) -> String {
    match sealed
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SPEC_SHA256))
    {
        Some(recorded) => recorded.clone(),
        None => hash_spec(sealed),
    }
}

/// Whether the cache dropped the object's payload (a pass that must decrypt reads it again).
pub fn is_slimmed(sealed: &SealedSecret) -> bool {
    sealed
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(SPEC_SHA256))
}

/// The budget verdict a pass's object carries, if the cache found it over budget.
pub fn over_budget(sealed: &SealedSecret) -> Option<BudgetError> {
    let verdict = sealed.metadata.annotations.as_ref()?.get(OVER_BUDGET)?;
    let (what, number) = verdict.split_once('=')?;
    let number = number.parse().ok()?;
    match what {
        "entries" => Some(BudgetError::TemplateEntries { count: number }),
        "bytes" => Some(BudgetError::InputBytes { size: number }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cached::CachedSealedSecret;
    use sealed_secrets_core::budget::{MAX_INPUT_BYTES, MAX_TEMPLATE_ENTRIES};
    use std::collections::BTreeMap;

    fn sealed(entries: usize, item_bytes: usize) -> SealedSecret {
        let mut sealed = SealedSecret::new("bomb", Default::default());
        sealed.metadata.namespace = Some("shop".into());
        sealed
            .spec
            .encrypted_data
            .insert("k".into(), "A".repeat(item_bytes));
        sealed.spec.template.data = Some(
            (0..entries)
                .map(|i| (format!("k{i}"), "{{ .k }}".to_string()))
                .collect(),
        );
        sealed
    }

    /// The object a pass gets for `sealed` after the watch cache held it.
    fn through_cache(sealed: SealedSecret) -> SealedSecret {
        CachedSealedSecret::from(sealed).to_pass()
    }

    #[test]
    fn the_cache_drops_only_what_the_controller_never_reads() {
        let mut object = sealed(3, 100);
        let scope = "sealedsecrets.bitnami.com/namespace-wide";
        object.metadata.annotations = Some(
            [
                (
                    LAST_APPLIED.to_string(),
                    "{\"a whole copy\": 1}".to_string(),
                ),
                (scope.to_string(), "true".to_string()),
            ]
            .into(),
        );
        object.metadata.managed_fields = Some(vec![Default::default()]);
        let hash = hash_spec(&object);
        let pass = through_cache(object);
        assert_eq!(pass.metadata.managed_fields, None);
        assert_eq!(
            pass.metadata.annotations,
            Some(
                [
                    (scope.to_string(), "true".to_string()),
                    (SPEC_SHA256.to_string(), hash.clone()),
                ]
                .into()
            )
        );
        assert!(pass.spec.encrypted_data.is_empty() && pass.spec.template.data.is_none());
        assert!(is_slimmed(&pass));
        assert_eq!(spec_sha256(&pass), hash);
        // A forged hash from the API server is dropped before the real one is recorded.
        let mut forged = sealed(1, 1);
        let real = hash_spec(&forged);
        forged.metadata.annotations = Some([(SPEC_SHA256.to_string(), "0".repeat(64))].into());
        assert_eq!(spec_sha256(&through_cache(forged)), real);
        let mut read = sealed(1, 1);
        read.metadata.annotations = Some([(SPEC_SHA256.to_string(), "0".repeat(64))].into());
        forget_internal(&mut read);
        assert_eq!(read.metadata.annotations, None);
        assert!(!is_slimmed(&read));
    }

    #[test]
    fn objects_within_budget_have_no_verdict() {
        let object = sealed(3, 100);
        assert_eq!(shape_verdict(&object), None);
        assert_eq!(over_budget(&through_cache(object)), None);
    }

    #[test]
    fn too_many_entries_are_dropped_and_the_count_kept() {
        let bomb = through_cache(sealed(MAX_TEMPLATE_ENTRIES + 1, 100));
        assert!(bomb.spec.encrypted_data.is_empty());
        assert_eq!(bomb.spec.template.data, None);
        assert_eq!(
            over_budget(&bomb),
            Some(BudgetError::TemplateEntries {
                count: MAX_TEMPLATE_ENTRIES + 1
            })
        );
        assert_eq!(bomb.metadata.name.as_deref(), Some("bomb"));
    }

    #[test]
    fn too_many_bytes_are_dropped_and_the_size_kept() {
        let bomb = through_cache(sealed(0, MAX_INPUT_BYTES));
        assert!(bomb.spec.encrypted_data.is_empty());
        assert_eq!(
            over_budget(&bomb),
            Some(BudgetError::InputBytes {
                size: MAX_INPUT_BYTES + 1
            })
        );
    }

    #[test]
    fn a_verdict_sent_by_the_api_server_is_not_believed() {
        let mut forged = sealed(3, 100);
        forged
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(OVER_BUDGET.into(), "entries=5000".into());
        assert_eq!(over_budget(&through_cache(forged)), None);
    }
}
