//! The spec hashes of the cached SealedSecrets, outside the objects.
//!
//! [`crate::shed::slim`] replaces an object's payload by the SHA-256 of its spec, in an
//! annotation that exists only in memory. Kept in the object, that annotation costs about
//! 700 bytes per SealedSecret (an annotation map of its own, whose first node alone is
//! 544 bytes, and two strings), more than anything else the watch cache keeps of it. So the
//! watch moves the hash out before the cache keeps the object ([`SpecHashes::take`]): into one
//! table of 32-byte hashes keyed by the object's uid and resourceVersion (48 bytes a slot). A
//! pass puts it back on its own copy before it starts ([`SpecHashes::restore`]), and the rest
//! of the controller reads it from the annotation as before.
//!
//! Keys are 64-bit hashes of the uid and of the resourceVersion. A stale or colliding entry
//! can only make the digest check fail (the digest covers the uid and is keyed), which costs
//! one decryption, never a false "current": a cached object without its payload whose hash is
//! not known is marked with an empty hash, which matches no digest, and is then read whole
//! from the API server before it is opened.

use std::{
    collections::{BTreeMap, HashMap},
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex},
};

use sealed_secrets_core::sealed_secret::SealedSecret;

use crate::shed::SPEC_SHA256;

/// uid hash → (resourceVersion hash, SHA-256 of the spec).
#[derive(Debug, Default)]
pub struct SpecHashes {
    hashes: Mutex<HashMap<u64, (u64, [u8; 32])>>,
    keys: RandomState,
}

impl SpecHashes {
    fn key(&self, value: Option<&str>) -> u64 {
        self.keys.hash_one(value.unwrap_or_default())
    }

    /// Moves the spec hash of a slimmed object out of it, into the table.
    pub fn take(&self, sealed: &mut SealedSecret) {
        let Some(annotations) = sealed.metadata.annotations.as_mut() else {
            return;
        };
        let Some(hex) = annotations.remove(SPEC_SHA256) else {
            return;
        };
        if annotations.is_empty() {
            sealed.metadata.annotations = None;
        }
        let Some(hash) = from_hex(&hex) else {
            return;
        };
        let uid = self.key(sealed.metadata.uid.as_deref());
        let version = self.key(sealed.metadata.resource_version.as_deref());
        self.lock().insert(uid, (version, hash));
    }

    /// `sealed` as a pass needs it: with its spec hash back in the annotation when the cache
    /// slimmed it (see the module documentation for one whose hash is not known).
    pub fn restore(&self, sealed: Arc<SealedSecret>) -> Arc<SealedSecret> {
        let has_payload = !sealed.spec.encrypted_data.is_empty()
            || sealed.spec.data.is_some()
            || sealed.spec.template.data.is_some();
        if has_payload || crate::shed::is_slimmed(&sealed) {
            return sealed;
        }
        let uid = self.key(sealed.metadata.uid.as_deref());
        let version = self.key(sealed.metadata.resource_version.as_deref());
        let hex = match self.lock().get(&uid) {
            Some((known, hash)) if *known == version => to_hex(hash),
            _ => String::new(),
        };
        let mut sealed = Arc::unwrap_or_clone(sealed);
        sealed
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(SPEC_SHA256.to_string(), hex);
        Arc::new(sealed)
    }

    /// Forgets the object with this uid (deleted).
    pub fn forget(&self, uid: &str) {
        let uid = self.key(Some(uid));
        self.lock().remove(&uid);
    }

    /// Hashes held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (u64, [u8; 32])>> {
        self.hashes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn from_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn to_hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shed::{hash_spec, slim, spec_sha256};

    fn sealed(uid: &str, version: &str, item: &str) -> SealedSecret {
        let mut sealed = SealedSecret::new("db", Default::default());
        sealed.metadata.namespace = Some("shop".into());
        sealed.metadata.uid = Some(uid.into());
        sealed.metadata.resource_version = Some(version.into());
        sealed
            .spec
            .encrypted_data
            .insert("password".into(), item.into());
        sealed
    }

    #[test]
    fn the_hash_leaves_the_cached_object_and_comes_back_for_a_pass() {
        let table = SpecHashes::default();
        let whole = sealed("u1", "7", "AAAA");
        let mut cached = whole.clone();
        slim(&mut cached);
        table.take(&mut cached);
        assert_eq!(
            cached.metadata.annotations, None,
            "no annotation map is kept"
        );
        assert_eq!(table.len(), 1);
        let pass = table.restore(Arc::new(cached.clone()));
        assert!(crate::shed::is_slimmed(&pass));
        assert_eq!(spec_sha256(&pass), hash_spec(&whole));
        // A newer version replaces the entry; the older copy no longer finds its hash and is
        // marked with one that matches nothing.
        let mut newer = sealed("u1", "8", "BBBB");
        slim(&mut newer);
        table.take(&mut newer);
        assert_eq!(table.len(), 1);
        let stale = table.restore(Arc::new(cached));
        assert!(crate::shed::is_slimmed(&stale));
        assert_eq!(spec_sha256(&stale), "");
        assert_eq!(
            spec_sha256(&table.restore(Arc::new(newer))),
            hash_spec(&sealed("u1", "8", "BBBB"))
        );
        table.forget("u1");
        assert!(table.is_empty());
    }

    #[test]
    fn an_object_with_its_payload_is_left_alone() {
        let table = SpecHashes::default();
        let whole = Arc::new(sealed("u1", "7", "AAAA"));
        let pass = table.restore(Arc::clone(&whole));
        assert!(Arc::ptr_eq(&pass, &whole));
        assert!(!crate::shed::is_slimmed(&pass));
        // Other annotations stay on the cached object.
        let mut cached = sealed("u2", "1", "AAAA");
        cached.metadata.annotations = Some(
            [(
                "sealedsecrets.bitnami.com/namespace-wide".to_string(),
                "true".to_string(),
            )]
            .into(),
        );
        slim(&mut cached);
        table.take(&mut cached);
        assert_eq!(
            cached.metadata.annotations.as_ref().map(BTreeMap::len),
            Some(1)
        );
    }

    #[test]
    fn hex_round_trips() {
        let hash: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(from_hex(&to_hex(&hash)), Some(hash));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }
}
