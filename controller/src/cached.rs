//! What the watch cache keeps of a SealedSecret: its metadata, its status, and a SHA-256 of
//! its `spec` in place of the spec itself.
//!
//! Why a type of its own: the cache holds every SealedSecret of the cluster for as long as it
//! exists, and kube's store keeps each as one allocation of the watched type. A
//! `SealedSecret`, even with its payload dropped, is 896 bytes before any string (its template
//! carries a second `ObjectMeta` of 360 bytes, mostly empty options); this one is about half
//! that, and the spec hash that used to live in a table beside the cache is a field. At 10,000
//! objects that is over 5 MB less, the difference between missing and meeting issue 23's
//! 50 MB (BENCHMARKS.md).
//!
//! The conversion happens while a list page or a watch event is parsed ([`Deserialize`] goes
//! through `SealedSecret`), so each object's ciphertexts are freed as soon as it is hashed,
//! not when its whole page is. Everything the controller decides from the cache (routing,
//! triggers, backlog, status checks) needs metadata and status only; a pass turns the entry
//! back into a `SealedSecret` without payload ([`CachedSealedSecret::to_pass`]) whose
//! in-memory annotations carry the spec hash and any budget verdict (see `shed`), and reads
//! the object whole from the API server before it decrypts anything.

use std::{borrow::Cow, collections::BTreeMap};

use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::Resource;
use sealed_secrets_core::{
    budget::BudgetError,
    sealed_secret::{SealedSecret, SealedSecretStatus},
};
use serde::Deserialize;

use crate::shed;

/// One SealedSecret as the watch cache holds it (see the module documentation).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "SealedSecret")]
pub struct CachedSealedSecret {
    /// The object's metadata, without `managedFields`, `kubectl apply`'s copy of the object
    /// and any forged in-memory annotation.
    pub metadata: ObjectMeta,
    /// The object's status as the API server delivered it.
    pub status: Option<SealedSecretStatus>,
    /// SHA-256 of the serialised `spec` as delivered (what the digest of its Secret covers).
    pub spec_sha256: [u8; 32],
    /// The per-object budget's verdict when the object is over it (never decrypted).
    pub over_budget: Option<BudgetError>,
}

impl From<SealedSecret> for CachedSealedSecret {
    fn from(mut sealed: SealedSecret) -> Self {
        shed::forget_internal(&mut sealed);
        let over_budget = shed::shape_verdict(&sealed);
        let spec_sha256 = shed::spec_digest(&sealed);
        shed::drop_copies(&mut sealed.metadata);
        Self {
            metadata: sealed.metadata,
            status: sealed.status,
            spec_sha256,
            over_budget,
        }
    }
}

impl CachedSealedSecret {
    /// The `SealedSecret` a pass works on: metadata and status, no payload, the spec hash and
    /// any budget verdict in the in-memory annotations `shed` reads.
    pub fn to_pass(&self) -> SealedSecret {
        let mut sealed = SealedSecret::new(
            self.metadata.name.as_deref().unwrap_or_default(),
            Default::default(),
        );
        sealed.metadata = self.metadata.clone();
        sealed.status = self.status.clone();
        let annotations = sealed
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        annotations.insert(shed::SPEC_SHA256.to_string(), to_hex(&self.spec_sha256));
        if let Some(verdict) = self.over_budget.as_ref().and_then(shed::verdict_text) {
            annotations.insert(shed::OVER_BUDGET.to_string(), verdict);
        }
        sealed
    }
}

impl Resource for CachedSealedSecret {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        SealedSecret::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        SealedSecret::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        SealedSecret::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        SealedSecret::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Lowercase hex of a SHA-256.
pub fn to_hex(hash: &[u8; 32]) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_secrets_core::budget::MAX_TEMPLATE_ENTRIES;

    fn sealed() -> SealedSecret {
        let mut sealed = SealedSecret::new("db", Default::default());
        sealed.metadata.namespace = Some("shop".into());
        sealed.metadata.uid = Some("u1".into());
        sealed.metadata.managed_fields = Some(vec![Default::default()]);
        sealed.metadata.annotations = Some(
            [
                ("team".to_string(), "shop".to_string()),
                (
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    "{...}".to_string(),
                ),
                (shed::SPEC_SHA256.to_string(), "0".repeat(64)),
            ]
            .into(),
        );
        sealed
            .spec
            .encrypted_data
            .insert("password".into(), "AgBy3i4OJSWK+PiTySYZZA==".into());
        sealed.spec.template.type_ = Some("kubernetes.io/basic-auth".into());
        sealed
    }

    #[test]
    fn the_cache_keeps_metadata_status_and_the_spec_hash_only() {
        let whole = sealed();
        let cached = CachedSealedSecret::from(whole.clone());
        assert_eq!(cached.spec_sha256, shed::spec_digest(&whole));
        assert_eq!(cached.metadata.managed_fields, None);
        let annotations = cached.metadata.annotations.as_ref().expect("annotations");
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["team"],
            "last-applied and the forged in-memory hash are gone"
        );
        assert!(cached.over_budget.is_none());
        assert!(
            std::mem::size_of::<CachedSealedSecret>() * 2
                <= std::mem::size_of::<SealedSecret>() + 64,
            "about half a SealedSecret: {} bytes",
            std::mem::size_of::<CachedSealedSecret>()
        );
    }

    #[test]
    fn a_pass_gets_the_hash_the_digest_covers_and_no_payload() {
        let whole = sealed();
        let pass = CachedSealedSecret::from(whole.clone()).to_pass();
        assert!(pass.spec.encrypted_data.is_empty() && pass.spec.template.type_.is_none());
        assert!(shed::is_slimmed(&pass));
        assert_eq!(
            shed::spec_sha256(&pass),
            to_hex(&shed::spec_digest(&whole)),
            "the hash of the spec as delivered, not of the empty one"
        );
        assert_eq!(shed::over_budget(&pass), None);
    }

    #[test]
    fn the_hash_changes_with_any_part_of_the_spec() {
        let a = CachedSealedSecret::from(sealed());
        let mut changed = sealed();
        changed.spec.template.type_ = Some("Opaque".into());
        assert_ne!(a.spec_sha256, CachedSealedSecret::from(changed).spec_sha256);
        let mut changed = sealed();
        changed
            .spec
            .encrypted_data
            .insert("password".into(), "AgBy3i4OJSWK+PiTySYZZB==".into());
        assert_ne!(a.spec_sha256, CachedSealedSecret::from(changed).spec_sha256);
    }

    #[test]
    fn an_object_over_budget_carries_its_verdict_to_the_pass() {
        let mut bomb = sealed();
        bomb.spec.template.data = Some(
            (0..=MAX_TEMPLATE_ENTRIES)
                .map(|i| (format!("k{i}"), String::new()))
                .collect(),
        );
        let cached = CachedSealedSecret::from(bomb);
        assert_eq!(
            cached.over_budget,
            Some(BudgetError::TemplateEntries {
                count: MAX_TEMPLATE_ENTRIES + 1
            })
        );
        assert_eq!(shed::over_budget(&cached.to_pass()), cached.over_budget);
    }

    #[test]
    fn it_parses_from_the_api_servers_json() {
        let json = serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1", "generation": 3},
            "spec": {"encryptedData": {"password": "AgBy"}, "template": {"type": "Opaque"}},
            "status": {"observedGeneration": 3, "keyFingerprint": "ab"}
        });
        let cached: CachedSealedSecret = serde_json::from_value(json.clone()).expect("parses");
        let whole: SealedSecret = serde_json::from_value(json).expect("parses");
        assert_eq!(cached.spec_sha256, shed::spec_digest(&whole));
        assert_eq!(cached.metadata.generation, Some(3));
        assert_eq!(
            cached.status.and_then(|s| s.key_fingerprint).as_deref(),
            Some("ab")
        );
    }
}
