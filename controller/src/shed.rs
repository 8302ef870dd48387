//! SealedSecrets over the per-object budget are slimmed before the watch cache keeps them.
//!
//! The budget (`sealed_secrets_core::budget`) stops an object with 20,000 template entries
//! before any key is tried, but the watch cache would still hold the whole object, parsed, for
//! as long as it exists: about 6 MB for a 0.8 MB bomb, so fifteen of them took the controller
//! past 100 MB although none of them was ever rendered. Every object the watch delivers passes
//! through [`shed_over_budget`] first: one that fails the shape check (entry count, input
//! bytes) keeps its metadata, loses its `spec` payload, and carries the verdict in an in-memory
//! annotation that [`over_budget`] reads back when the object is reconciled, so the status
//! still names the limit and the numbers.
//!
//! The annotation lives only in the controller's memory: the controller never writes a
//! SealedSecret back (it patches `status` alone), and the same annotation arriving from the API
//! server is removed before the check, so a user cannot mark an object over budget.

use std::collections::BTreeMap;

use sealed_secrets_core::{budget::BudgetError, sealed_secret::SealedSecret, unseal::check_shape};

/// Annotation that carries the verdict on a slimmed object (in memory only).
const OVER_BUDGET: &str = "sealed-secrets-rs.internal/over-budget";

/// Slims `sealed` when its shape is over the per-object budget; leaves it untouched otherwise.
pub fn shed_over_budget(sealed: &mut SealedSecret) {
    forget_internal(sealed);
    let Err(err) = check_shape(sealed) else {
        return;
    };
    sealed.spec.encrypted_data = BTreeMap::new();
    sealed.spec.data = None;
    sealed.spec.template.data = None;
    let verdict = match err {
        BudgetError::TemplateEntries { count } => format!("entries={count}"),
        BudgetError::InputBytes { size } => format!("bytes={size}"),
        // A shape limit this module does not know yet: keep the object whole rather than lose
        // the reason; unsealing reports it.
        _ => return,
    };
    sealed
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(OVER_BUDGET.to_string(), verdict);
}

/// What `kubectl apply` keeps on every object it applies: a second copy of the whole object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Annotation (in memory only) carrying the SHA-256 of the `spec` a cached object no longer
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

/// SHA-256 (hex) of the serialised `spec`.
pub fn hash_spec(sealed: &SealedSecret) -> String {
    let bytes = serde_json::to_vec(&sealed.spec).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
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

/// Drops what the controller does not need to keep before the watch cache holds an object:
/// its `managedFields`, `kubectl apply`'s copy of the whole object in an annotation, and the
/// payload of its `spec` (ciphertexts, deprecated data, template data), recorded as a SHA-256
/// in [`SPEC_SHA256`].
///
/// Why the payload: the cache holds every SealedSecret of the cluster for as long as it
/// exists, and the ciphertexts are most of each (about 3 KB for three RSA-4096 items; 30 MB
/// for 10,000, twice that while a relist builds the new listing). Most passes never need
/// them: a Secret already current is proven so by its digest, which covers the spec through
/// this hash. A pass that does decrypt reads the object from the API server first.
pub fn slim(sealed: &mut SealedSecret) {
    sealed.metadata.managed_fields = None;
    if let Some(annotations) = sealed.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        annotations.remove(SPEC_SHA256);
    }
    let hash = hash_spec(sealed);
    sealed.spec.encrypted_data = BTreeMap::new();
    sealed.spec.data = None;
    sealed.spec.template.data = None;
    sealed
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(SPEC_SHA256.to_string(), hash);
}

/// The budget verdict of an object [`shed_over_budget`] slimmed, if it was.
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
    use sealed_secrets_core::budget::{MAX_INPUT_BYTES, MAX_TEMPLATE_ENTRIES};

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

    #[test]
    fn slimming_drops_only_what_the_controller_never_reads() {
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
        let template = object.spec.template.metadata.clone();
        slim(&mut object);
        assert_eq!(object.metadata.managed_fields, None);
        assert_eq!(
            object.metadata.annotations,
            Some(
                [
                    (scope.to_string(), "true".to_string()),
                    (SPEC_SHA256.to_string(), hash.clone()),
                ]
                .into()
            )
        );
        assert!(object.spec.encrypted_data.is_empty() && object.spec.template.data.is_none());
        assert_eq!(
            object.spec.template.metadata, template,
            "the template's metadata stays"
        );
        assert!(is_slimmed(&object));
        assert_eq!(spec_sha256(&object), hash);
        // A forged hash from the API server is dropped before the real one is recorded.
        let mut forged = sealed(1, 1);
        let real = hash_spec(&forged);
        forged.metadata.annotations = Some([(SPEC_SHA256.to_string(), "0".repeat(64))].into());
        slim(&mut forged);
        assert_eq!(spec_sha256(&forged), real);
        let mut read = sealed(1, 1);
        read.metadata.annotations = Some([(SPEC_SHA256.to_string(), "0".repeat(64))].into());
        forget_internal(&mut read);
        assert_eq!(read.metadata.annotations, None);
        assert!(!is_slimmed(&read));
    }

    #[test]
    fn objects_within_budget_are_kept_whole() {
        let original = sealed(3, 100);
        let mut kept = original.clone();
        shed_over_budget(&mut kept);
        assert_eq!(
            serde_json::to_value(&kept).unwrap(),
            serde_json::to_value(&original).unwrap()
        );
        assert_eq!(over_budget(&kept), None);
    }

    #[test]
    fn too_many_entries_are_dropped_and_the_count_kept() {
        let mut bomb = sealed(MAX_TEMPLATE_ENTRIES + 1, 100);
        shed_over_budget(&mut bomb);
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
        let mut bomb = sealed(0, MAX_INPUT_BYTES);
        shed_over_budget(&mut bomb);
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
        shed_over_budget(&mut forged);
        assert_eq!(over_budget(&forged), None);
        assert_eq!(forged.spec.encrypted_data.len(), 1);
    }
}
