//! Proof that a Secret is already what its SealedSecret would produce, without decrypting.
//!
//! After a restart, a relist or a leader failover every SealedSecret is reconciled again, and
//! almost all of their Secrets are already right; opening them again costs one RSA private
//! operation per item (10,000 objects of three RSA-4096 items: about a minute of a core) to
//! change nothing. So every Secret the controller writes carries an annotation,
//! [`DIGEST_ANNOTATION`], holding a keyed digest (HMAC-SHA256) over
//!
//! - what the output depends on in the SealedSecret: its uid, namespace and name, the SHA-256
//!   of its whole `spec` (ciphertexts, template, deprecated data; the watch cache keeps only
//!   this hash, see `cached`) and its scope annotations;
//! - the whole Secret as written: data, type, `immutable`, labels, annotations (but this one)
//!   and owner references;
//!
//! keyed with a secret derived from the private key that opened the object
//! ([`sealed_secrets_core::keys::PrivateKey::derive_secret`]) and naming that key's
//! fingerprint. A pass that finds a Secret whose annotation verifies against the SealedSecret
//! in hand and a key of the ring skips decryption: the Secret is exactly what this controller
//! wrote for exactly this object. Anything else falls back to decrypting: a Secret edited by
//! hand (its content no longer matches), a changed SealedSecret (spec, scope, or a new object
//! of the same name: another uid), a retired or removed key (not in the ring), a missing or
//! malformed annotation (written by upstream or an older version), or a forged one (the digest
//! key never leaves the controller's memory, and a digest over the ciphertexts tells nothing
//! about the plaintext).
//!
//! The digest covers plaintext (the Secret's data); the bytes it is computed over are wiped,
//! and only the MAC, which reveals nothing, is stored.

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use sealed_secrets_core::{keys::PrivateKey, sealed_secret::SealedSecret};
use serde::Serialize;
use zeroize::Zeroizing;

/// Annotation on a generated Secret: `v2:<key fingerprint>:<base64url HMAC-SHA256>` (v1, the
/// first layout, covered the spec's bytes instead of their hash; a v1 Secret is decrypted once
/// and stamped again).
pub const DIGEST_ANNOTATION: &str = "sealed-secrets-rs.io/unsealed-digest";
/// Upstream's scope annotations, which change the OAEP label and therefore the output.
const SCOPE_ANNOTATIONS: [&str; 2] = [
    "sealedsecrets.bitnami.com/cluster-wide",
    "sealedsecrets.bitnami.com/namespace-wide",
];
/// What the digest key is derived for; a new layout gets a new purpose and version.
const PURPOSE: &[u8] = b"sealed-secrets-rs unsealed-digest v2";
const VERSION: &str = "v2";

/// The digest key of one sealing key.
#[derive(Clone)]
pub struct DigestKey {
    fingerprint: String,
    key: hmac::Key,
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DigestKey {
    /// The digest key of `private` (whose fingerprint is `fingerprint`).
    pub fn new(private: &PrivateKey, fingerprint: &str) -> Self {
        let secret = private.derive_secret(PURPOSE);
        Self {
            fingerprint: fingerprint.to_string(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_ref()),
        }
    }

    /// The fingerprint of the sealing key it belongs to.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The parts of a SealedSecret and of a Secret the digest covers, in a fixed order.
#[derive(Serialize)]
struct Covered<'a> {
    uid: &'a str,
    namespace: &'a str,
    name: &'a str,
    scope: BTreeMap<&'a str, &'a str>,
    spec_sha256: String,
    secret_type: &'a str,
    immutable: bool,
    labels: Option<&'a BTreeMap<String, String>>,
    annotations: BTreeMap<&'a str, &'a str>,
    owners: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    data: Option<&'a BTreeMap<String, k8s_openapi::ByteString>>,
}

/// The bytes the MAC is computed over (wiped when dropped: they hold the Secret's data).
fn covered_bytes(sealed: &SealedSecret, secret: &Secret) -> Zeroizing<Vec<u8>> {
    let object_annotations = sealed.metadata.annotations.as_ref();
    let scope = SCOPE_ANNOTATIONS
        .iter()
        .filter_map(|k| Some((*k, object_annotations?.get(*k)?.as_str())))
        .collect();
    let annotations = secret
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != DIGEST_ANNOTATION)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let covered = Covered {
        uid: sealed.metadata.uid.as_deref().unwrap_or_default(),
        namespace: sealed.metadata.namespace.as_deref().unwrap_or_default(),
        name: sealed.metadata.name.as_deref().unwrap_or_default(),
        scope,
        spec_sha256: crate::shed::spec_sha256(sealed),
        secret_type: secret.type_.as_deref().unwrap_or("Opaque"),
        immutable: secret.immutable.unwrap_or(false),
        labels: secret.metadata.labels.as_ref().filter(|l| !l.is_empty()),
        annotations,
        owners: secret
            .metadata
            .owner_references
            .as_deref()
            .unwrap_or_default(),
        data: secret.data.as_ref().filter(|d| !d.is_empty()),
    };
    let mut out = WipingWriter(Zeroizing::new(Vec::with_capacity(4096)));
    // Serialising plain structs and BTreeMaps cannot fail; an empty message would only make
    // every digest mismatch (a fallback to decrypting), never a false match.
    if serde_json::to_writer(&mut out, &covered).is_err() {
        out.0.clear();
    }
    out.0
}

/// A buffer that leaves no copy of what it held behind: growing copies into a new allocation
/// and wipes the old one, and the last one is wiped when dropped. (k8s-openapi serialises each
/// data value through a temporary base64 string of its own, as every Secret the client sends
/// does; that copy is not ours to wipe.)
struct WipingWriter(Zeroizing<Vec<u8>>);

impl std::io::Write for WipingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            let mut grown = Zeroizing::new(Vec::with_capacity(needed.max(self.0.capacity() * 2)));
            grown.extend_from_slice(&self.0);
            // The old allocation is wiped (its whole capacity) as it drops.
            self.0 = grown;
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn mac(key: &DigestKey, sealed: &SealedSecret, secret: &Secret) -> hmac::Tag {
    hmac::sign(&key.key, &covered_bytes(sealed, secret))
}

/// Puts the digest of `secret` (as it will be written for `sealed`) on it, replacing any.
pub fn stamp(key: &DigestKey, sealed: &SealedSecret, secret: &mut Secret) {
    let tag = mac(key, sealed, secret);
    let value = format!(
        "{VERSION}:{}:{}",
        key.fingerprint,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    );
    secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(DIGEST_ANNOTATION.to_string(), value);
}

/// The fingerprint named by `secret`'s digest annotation, if it has a well-formed one.
pub fn stamped_fingerprint(secret: &Secret) -> Option<&str> {
    let value = secret
        .metadata
        .annotations
        .as_ref()?
        .get(DIGEST_ANNOTATION)?;
    let (version, rest) = value.split_once(':')?;
    let (fingerprint, _) = rest.rsplit_once(':')?;
    (version == VERSION).then_some(fingerprint)
}

/// Whether `secret` carries a digest that proves it is what `sealed` produces, keyed with
/// `key` (the ring's key of the fingerprint the annotation names). Constant-time comparison.
pub fn verify(key: &DigestKey, sealed: &SealedSecret, secret: &Secret) -> bool {
    let Some(value) = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DIGEST_ANNOTATION))
    else {
        return false;
    };
    let Some((head, encoded)) = value.rsplit_once(':') else {
        return false;
    };
    if head != format!("{VERSION}:{}", key.fingerprint) {
        return false;
    }
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded) else {
        return false;
    };
    hmac::verify(&key.key, &covered_bytes(sealed, secret), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{
        ByteString,
        apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
    };

    /// One change made to a copy of an object.
    type Edit<T> = Box<dyn Fn(&mut T)>;

    fn keys() -> (DigestKey, DigestKey) {
        let a = crate::fixtures::test_ring().latest().unwrap();
        let b = crate::fixtures::test_ring().latest().unwrap();
        (
            DigestKey::new(&a.key, &a.fingerprint),
            DigestKey::new(&b.key, &b.fingerprint),
        )
    }

    fn sealed() -> SealedSecret {
        let mut sealed = SealedSecret::new("db", Default::default());
        sealed.metadata.namespace = Some("shop".into());
        sealed.metadata.uid = Some("uid-1".into());
        sealed
            .spec
            .encrypted_data
            .insert("password".into(), "AgBy8hCi...".into());
        sealed
    }

    fn secret() -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("shop".into()),
                labels: Some([("app".to_string(), "shop".to_string())].into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "bitnami.com/v1alpha1".into(),
                    kind: "SealedSecret".into(),
                    name: "db".into(),
                    uid: "uid-1".into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            data: Some([("password".to_string(), ByteString(b"hunter2".to_vec()))].into()),
            ..Secret::default()
        }
    }

    fn stamped(key: &DigestKey) -> Secret {
        let mut written = secret();
        stamp(key, &sealed(), &mut written);
        written
    }

    #[test]
    fn a_stamped_secret_verifies_against_its_sealed_secret_and_key() {
        let (key, other) = keys();
        let written = stamped(&key);
        assert!(verify(&key, &sealed(), &written));
        assert_eq!(stamped_fingerprint(&written), Some(key.fingerprint()));
        assert!(!verify(&other, &sealed(), &written), "another key");
        // The server's bookkeeping (resourceVersion, managedFields) is not covered.
        let mut served = written.clone();
        served.metadata.resource_version = Some("99".into());
        served.metadata.managed_fields = Some(Vec::new());
        assert!(verify(&key, &sealed(), &served));
        // The value holds no plaintext.
        let value = &written.metadata.annotations.as_ref().unwrap()[DIGEST_ANNOTATION];
        assert!(!value.contains("hunter2"));
    }

    #[test]
    fn the_wiping_writer_grows_without_losing_bytes() {
        use std::io::Write;
        let mut out = WipingWriter(Zeroizing::new(Vec::with_capacity(2)));
        let chunks: Vec<Vec<u8>> = (0u8..50).map(|i| vec![i; usize::from(i) + 1]).collect();
        for chunk in &chunks {
            out.write_all(chunk).unwrap();
        }
        assert_eq!(*out.0, chunks.concat());
        // The covered bytes are exactly the JSON of what is covered.
        let bytes = covered_bytes(&sealed(), &secret());
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["uid"], "uid-1");
        assert_eq!(value["data"]["password"], "aHVudGVyMg==");
    }

    #[test]
    fn any_hand_edit_of_the_secret_breaks_the_digest() {
        let (key, _) = keys();
        let edits: Vec<Edit<Secret>> = vec![
            Box::new(|s| {
                s.data
                    .as_mut()
                    .unwrap()
                    .insert("password".into(), ByteString(b"other".to_vec()));
            }),
            Box::new(|s| {
                s.data
                    .as_mut()
                    .unwrap()
                    .insert("extra".into(), ByteString(b"x".to_vec()));
            }),
            Box::new(|s| s.data = None),
            Box::new(|s| s.type_ = Some("kubernetes.io/tls".into())),
            Box::new(|s| s.immutable = Some(true)),
            Box::new(|s| s.metadata.labels = None),
            Box::new(|s| {
                s.metadata
                    .annotations
                    .as_mut()
                    .unwrap()
                    .insert("note".into(), "x".into());
            }),
            Box::new(|s| s.metadata.owner_references = None),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut edited = stamped(&key);
            edit(&mut edited);
            assert!(!verify(&key, &sealed(), &edited), "edit {i}");
        }
    }

    #[test]
    fn any_change_of_the_sealed_secret_breaks_the_digest() {
        let (key, _) = keys();
        let written = stamped(&key);
        let changes: Vec<Edit<SealedSecret>> = vec![
            Box::new(|s| s.metadata.uid = Some("uid-2".into())),
            Box::new(|s| s.metadata.name = Some("db2".into())),
            Box::new(|s| s.metadata.namespace = Some("other".into())),
            Box::new(|s| {
                s.spec
                    .encrypted_data
                    .insert("password".into(), "AgCx...".into());
            }),
            Box::new(|s| {
                s.spec.template.type_ = Some("kubernetes.io/basic-auth".into());
            }),
            Box::new(|s| {
                s.metadata.annotations = Some(
                    [(
                        "sealedsecrets.bitnami.com/cluster-wide".to_string(),
                        "true".to_string(),
                    )]
                    .into(),
                );
            }),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = sealed();
            change(&mut changed);
            assert!(!verify(&key, &changed, &written), "change {i}");
        }
        // Other annotations and labels of the SealedSecret do not change the output.
        let mut labelled = sealed();
        labelled.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        assert!(verify(&key, &labelled, &written));
    }

    /// The watch cache keeps a hash of the spec, not the spec: a digest stamped with the whole
    /// object verifies against the slimmed one, and a changed payload does not.
    #[test]
    fn slimmed_objects_verify_through_the_spec_hash() {
        let (key, _) = keys();
        let mut written = secret();
        stamp(&key, &sealed(), &mut written);
        let cached = crate::cached::CachedSealedSecret::from(sealed()).to_pass();
        assert!(cached.spec.encrypted_data.is_empty());
        assert!(verify(&key, &cached, &written));
        let mut changed = sealed();
        changed
            .spec
            .encrypted_data
            .insert("new".into(), "AAAA".into());
        let changed = crate::cached::CachedSealedSecret::from(changed).to_pass();
        assert!(!verify(&key, &changed, &written));
    }

    #[test]
    fn missing_malformed_or_forged_annotations_do_not_verify() {
        let (key, _) = keys();
        assert!(!verify(&key, &sealed(), &secret()), "no annotation");
        let set = |value: &str| {
            let mut s = secret();
            s.metadata.annotations =
                Some([(DIGEST_ANNOTATION.to_string(), value.to_string())].into());
            s
        };
        let fp = key.fingerprint().to_string();
        for value in [
            "",
            "v2",
            "v3:x:y",
            &format!("v2:{fp}:"),
            &format!("v2:{fp}:not base64!"),
            &format!("v2:{fp}:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            assert!(!verify(&key, &sealed(), &set(value)), "{value:?}");
        }
        assert_eq!(stamped_fingerprint(&set("v3:x:y")), None);
        // The first layout (over the spec's bytes) is not read: such a Secret is decrypted once.
        assert_eq!(stamped_fingerprint(&set(&format!("v1:{fp}:abc"))), None);
        assert_eq!(
            stamped_fingerprint(&set(&format!("v2:{fp}:abc"))),
            Some(fp.as_str())
        );
    }
}
