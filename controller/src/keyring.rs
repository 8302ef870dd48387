//! The sealing keys the controller holds, and the decisions about them.
//!
//! Keys come from `kubernetes.io/tls` Secrets in the key namespace labelled
//! `sealedsecrets.bitnami.com/sealed-secrets-key=active` (plus the legacy Secret named exactly
//! the key prefix), parsed by [`sealed_secrets_core::key_secret`]; this module keeps only the
//! controller's state about them. The newest key by ordering time seals; every key opens.
//!
//! Upstream tries keys in random order, so a cluster with K keys pays about K/2 RSA operations
//! per item. Here the order is: the key that last opened this object, then keys by how recently
//! they opened anything, then newest first — so a cluster that accumulated years of keys still
//! does about one RSA operation per item. The ciphertext format is untouched.
//!
//! Nothing here ever deletes or relabels a key Secret.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use sealed_secrets_core::{
    crypto::{CryptoError, Decrypter, split_ciphertext},
    key_secret::{KeyEntry, KeyOrder, KeySecretError, KeySecretParts},
    keys::{PrivateKey, PublicKey},
};
use zeroize::Zeroizing;

use crate::digest::DigestKey;

/// One registered sealing key.
#[derive(Debug, Clone)]
pub struct SealingKey {
    /// Name of the Secret it came from.
    pub secret_name: String,
    /// The private key.
    pub key: PrivateKey,
    /// PEM of its certificate (what `/v1/cert.pem` serves).
    pub cert_pem: String,
    /// When it was made, by the chosen ordering (cert NotBefore or Secret creation).
    pub order_time: jiff::Timestamp,
    /// Public key fingerprint, the registry's identity of the key.
    pub fingerprint: String,
    /// The key of the digests on Secrets it opened (see [`crate::digest`]).
    pub digest: DigestKey,
}

impl SealingKey {
    /// The ring's entry for a parsed key Secret, ordered by `order`.
    pub fn new(entry: KeyEntry, order: KeyOrder) -> Self {
        Self {
            order_time: entry.order_time(order),
            secret_name: entry.name,
            digest: DigestKey::new(&entry.key, &entry.fingerprint),
            fingerprint: entry.fingerprint,
            key: entry.key,
            cert_pem: entry.cert.pem,
        }
    }
}

/// Reads a key Secret (`tls.key` + matching `tls.crt`) into a ring entry (parsing is
/// [`KeySecretParts::entry`]'s).
pub fn key_from_secret(secret: &Secret, order: KeyOrder) -> Result<SealingKey, KeySecretError> {
    let entry = KeySecretParts::from_secret(secret).entry()?;
    Ok(SealingKey::new(entry, order))
}

/// Whether a new key is needed now: none yet, or the newest predates `--key-cutoff-time`.
pub fn needs_new_key(newest: Option<jiff::Timestamp>, cutoff: Option<jiff::Timestamp>) -> bool {
    match (newest, cutoff) {
        (None, _) => true,
        (Some(newest), Some(cutoff)) => newest < cutoff,
        (Some(_), None) => false,
    }
}

/// When the next renewal is due: `newest + period` (immediately if that has passed); `None`
/// when renewal is disabled.
pub fn next_renewal(
    newest: Option<jiff::Timestamp>,
    period: std::time::Duration,
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    if period.is_zero() {
        return None;
    }
    let period = jiff::SignedDuration::try_from(period).ok()?;
    let due = newest
        .and_then(|t| t.checked_add(period).ok())
        .unwrap_or(now);
    Some(due.max(now))
}

/// Object → the fingerprint of the key that last opened it. Each fingerprint string is held
/// once and shared by its objects (a 64-character copy per object was 0.8 MB at 10,000), and
/// dropped when no object names it any more.
#[derive(Debug, Default)]
struct Hints {
    by_object: HashMap<String, Arc<str>>,
    fingerprints: HashSet<Arc<str>>,
}

impl Hints {
    fn get(&self, object: &str) -> Option<String> {
        self.by_object.get(object).map(|f| f.to_string())
    }

    fn set(&mut self, object: &str, fingerprint: &str) {
        let shared = match self.fingerprints.get(fingerprint) {
            Some(known) => Arc::clone(known),
            None => {
                let new: Arc<str> = Arc::from(fingerprint);
                self.fingerprints.insert(Arc::clone(&new));
                new
            }
        };
        if let Some(previous) = self.by_object.insert(object.to_string(), shared) {
            self.release(previous);
        }
    }

    fn remove(&mut self, object: &str) {
        if let Some(previous) = self.by_object.remove(object) {
            self.release(previous);
        }
    }

    /// Drops a fingerprint no object names any more (held only by the set and `previous`).
    fn release(&mut self, previous: Arc<str>) {
        if Arc::strong_count(&previous) == 2 {
            self.fingerprints.remove(&previous);
        }
    }
}

/// The registry of keys, shared by the reconciler and (through [`crate::app`]'s adapter) the
/// HTTP API.
#[derive(Debug)]
pub struct KeyRing {
    keys: RwLock<Vec<Arc<SealingKey>>>,
    /// Counts changes of the key set; the reconciler requeues failed objects on each.
    changes: tokio::sync::watch::Sender<u64>,
    /// Fingerprint → sequence number of its last successful decryption.
    last_success: Mutex<HashMap<String, u64>>,
    /// Object (`ns/name`) → fingerprint that last opened it.
    per_object: Mutex<Hints>,
    sequence: AtomicU64,
}

impl Default for KeyRing {
    fn default() -> Self {
        Self {
            keys: RwLock::default(),
            changes: tokio::sync::watch::channel(0).0,
            last_success: Mutex::default(),
            per_object: Mutex::default(),
            sequence: AtomicU64::default(),
        }
    }
}

impl KeyRing {
    /// A receiver that sees a new value each time a key is added, replaced or removed.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Adds or replaces a key (identity: fingerprint; a Secret that changed its key replaces
    /// its old entry). Returns whether anything changed.
    pub fn register(&self, key: SealingKey) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys
            .iter()
            .any(|k| k.fingerprint == key.fingerprint && k.secret_name == key.secret_name)
        {
            return false;
        }
        let before = keys.len();
        keys.retain(|k| k.secret_name != key.secret_name);
        if keys.iter().any(|k| k.fingerprint == key.fingerprint) {
            // Same key in two Secrets (a copied backup): keep one entry.
            let removed = keys.len() != before;
            drop(keys);
            if removed {
                self.changed();
            }
            return removed;
        }
        keys.push(Arc::new(key));
        drop(keys);
        self.changed();
        true
    }

    /// Drops the key that came from Secret `name` (deleted or relabelled). Returns whether
    /// anything changed.
    pub fn unregister(&self, secret_name: &str) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let before = keys.len();
        keys.retain(|k| k.secret_name != secret_name);
        let changed = keys.len() != before;
        drop(keys);
        if changed {
            self.changed();
        }
        changed
    }

    /// Every registered key.
    pub fn keys(&self) -> Vec<Arc<SealingKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sealing key: the newest by ordering time; ties keep the earlier-registered key.
    pub fn latest(&self) -> Option<Arc<SealingKey>> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let mut best: Option<&Arc<SealingKey>> = None;
        for key in keys.iter() {
            if best.is_none_or(|b| key.order_time > b.order_time) {
                best = Some(key);
            }
        }
        best.cloned()
    }

    /// Public key of the sealing key.
    pub fn sealing_public_key(&self) -> Option<PublicKey> {
        self.latest().map(|k| k.key.public_key())
    }

    /// The keys in the order to try for `object` (`ns/name`, or `None` for one-off requests)
    /// created at `created` (its `creationTimestamp`, when known).
    pub fn trial_order(
        &self,
        object: Option<&str>,
        created: Option<jiff::Timestamp>,
    ) -> Vec<Arc<SealingKey>> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        let last = self
            .last_success
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let hint = object.and_then(|o| {
            self.per_object
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(o)
        });
        order_keys(keys, hint.as_deref(), &last, created)
    }

    fn record_success(&self, object: Option<&str>, fingerprint: &str) {
        let stamp = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        self.last_success
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fingerprint.to_string(), stamp);
        if let Some(object) = object {
            self.per_object
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set(object, fingerprint);
        }
    }

    /// The digest key of the ring's key with `fingerprint`, if the ring has it.
    pub fn digest_key(&self, fingerprint: &str) -> Option<DigestKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|k| k.fingerprint == fingerprint)
            .map(|k| k.digest.clone())
    }

    /// Records that `object` was (proven) opened with `fingerprint`, as a decryption would.
    pub fn note_opened(&self, object: &str, fingerprint: &str) {
        self.record_success(Some(object), fingerprint);
    }

    /// The fingerprint of the key that last opened `object`, if known.
    pub fn hint_for(&self, object: &str) -> Option<String> {
        self.per_object
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(object)
    }

    /// Seeds the hint of `object` (from its status after a restart) unless one is known.
    pub fn seed_hint(&self, object: &str, fingerprint: &str) {
        let mut hints = self.per_object.lock().unwrap_or_else(|e| e.into_inner());
        if hints.get(object).is_none() {
            hints.set(object, fingerprint);
        }
    }

    /// Forgets the hint of a deleted object.
    pub fn forget_object(&self, object: &str) {
        self.per_object
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(object);
    }

    /// A decrypter for one object that tries keys in [`KeyRing::trial_order`] and learns.
    pub fn decrypter_for<'a>(
        &'a self,
        object: Option<&str>,
        created: Option<jiff::Timestamp>,
    ) -> RingDecrypter<'a> {
        RingDecrypter {
            ring: self,
            object: object.map(str::to_string),
            order: Mutex::new(self.trial_order(object, created)),
        }
    }
}

/// Pure ordering: the hinted key (the one that opened this object before); then the key that
/// was the sealing key when the object was created (kubeseal seals with the newest key, and a
/// SealedSecret is usually applied soon after it is sealed, so on a first start this is nearly
/// always right); then by last success (most recent first); then newest first.
pub fn order_keys(
    mut keys: Vec<Arc<SealingKey>>,
    hint: Option<&str>,
    last_success: &HashMap<String, u64>,
    created: Option<jiff::Timestamp>,
) -> Vec<Arc<SealingKey>> {
    let current_at_creation = created.and_then(|created| {
        keys.iter()
            .filter(|k| k.order_time <= created)
            .max_by_key(|k| k.order_time)
            .map(|k| k.fingerprint.clone())
    });
    keys.sort_by(|a, b| {
        let hinted = |k: &SealingKey| hint == Some(k.fingerprint.as_str());
        let current =
            |k: &SealingKey| current_at_creation.as_deref() == Some(k.fingerprint.as_str());
        hinted(b)
            .cmp(&hinted(a))
            .then_with(|| current(b).cmp(&current(a)))
            .then_with(|| {
                let sa = last_success.get(&a.fingerprint).copied().unwrap_or(0);
                let sb = last_success.get(&b.fingerprint).copied().unwrap_or(0);
                sb.cmp(&sa)
            })
            .then_with(|| b.order_time.cmp(&a.order_time))
    });
    keys
}

/// Trial decryption over a [`KeyRing`] snapshot, recording which key opened what.
pub struct RingDecrypter<'a> {
    ring: &'a KeyRing,
    object: Option<String>,
    /// Trial order; the key that opens an item moves to the front for the object's next items
    /// (kubeseal seals all items of a Secret with one key).
    order: Mutex<Vec<Arc<SealingKey>>>,
}

impl Decrypter for RingDecrypter<'_> {
    fn decrypt(&self, ciphertext: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parts = split_ciphertext(ciphertext)?;
        let order = self.order.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (position, key) in order.iter().enumerate() {
            if let Some(plain) = sealed_secrets_core::crypto::open_with_key(&key.key, parts, label)
            {
                self.ring
                    .record_success(self.object.as_deref(), &key.fingerprint);
                if position > 0 {
                    let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(found) = order.iter().position(|k| k.fingerprint == key.fingerprint)
                    {
                        let key = order.remove(found);
                        order.insert(0, key);
                    }
                }
                return Ok(plain);
            }
        }
        Err(CryptoError::NoKeyCouldDecrypt)
    }
}

/// Base64 of a PEM for logs of the certificate (public, safe to log).
pub fn cert_for_log(key: &SealingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.cert_pem.as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn hints_share_fingerprints_and_drop_unused_ones() {
        let mut hints = Hints::default();
        hints.set("shop/a", "k1");
        hints.set("shop/b", "k1");
        assert_eq!(hints.fingerprints.len(), 1);
        assert!(Arc::ptr_eq(
            &hints.by_object["shop/a"],
            &hints.by_object["shop/b"]
        ));
        hints.set("shop/a", "k2");
        assert_eq!(hints.fingerprints.len(), 2);
        hints.remove("shop/b");
        assert_eq!(hints.fingerprints.len(), 1, "k1 is named by nobody");
        assert_eq!(hints.get("shop/a").as_deref(), Some("k2"));
        hints.remove("shop/a");
        assert!(hints.fingerprints.is_empty());
    }
    use sealed_secrets_core::{
        crypto::{SystemRandom, hybrid_encrypt},
        key_secret::new_key_secret,
        keys::generate_key_pair,
    };

    pub(crate) fn make_key(name: &str, not_before: &str) -> (SealingKey, Secret) {
        let pair = generate_key_pair(
            2048,
            "",
            not_before.parse().unwrap(),
            jiff::SignedDuration::from_hours(24 * 365),
        )
        .unwrap();
        let mut secret =
            new_key_secret(&pair, "sealed-secrets-key", "kube-system", &[], &[]).unwrap();
        secret.metadata.name = Some(name.into());
        (
            key_from_secret(&secret, KeyOrder::CertNotBefore).unwrap(),
            secret,
        )
    }

    #[test]
    fn latest_is_newest_by_order_time_and_ties_keep_first() {
        let ring = KeyRing::default();
        let (old, _) = make_key("old", "2020-01-01T00:00:00Z");
        let (new, _) = make_key("new", "2024-01-01T00:00:00Z");
        let (tie, _) = make_key("tie", "2024-01-01T00:00:00Z");
        assert!(ring.register(old));
        assert!(ring.register(new.clone()));
        assert!(ring.register(tie));
        assert!(!ring.register(new), "same key twice is a no-op");
        assert_eq!(ring.latest().unwrap().secret_name, "new");
        assert!(ring.unregister("new"));
        assert_eq!(ring.latest().unwrap().secret_name, "tie");
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn renewal_decisions() {
        let t = |s: &str| -> jiff::Timestamp { s.parse().unwrap() };
        assert!(needs_new_key(None, None));
        assert!(!needs_new_key(Some(t("2024-01-01T00:00:00Z")), None));
        assert!(needs_new_key(
            Some(t("2024-01-01T00:00:00Z")),
            Some(t("2024-06-01T00:00:00Z"))
        ));
        assert!(!needs_new_key(
            Some(t("2024-07-01T00:00:00Z")),
            Some(t("2024-06-01T00:00:00Z"))
        ));

        let day = std::time::Duration::from_secs(86_400);
        let now = t("2024-01-10T00:00:00Z");
        assert_eq!(
            next_renewal(Some(t("2024-01-01T00:00:00Z")), day * 30, now),
            Some(t("2024-01-31T00:00:00Z"))
        );
        assert_eq!(
            next_renewal(Some(t("2023-01-01T00:00:00Z")), day * 30, now),
            Some(now)
        );
        assert_eq!(
            next_renewal(Some(now), std::time::Duration::ZERO, now),
            None
        );
    }

    #[test]
    fn trial_order_learns_so_many_keys_cost_about_one_rsa_op() {
        let ring = KeyRing::default();
        let mut keys = Vec::new();
        for (i, year) in ["2019", "2020", "2021", "2022", "2023"].iter().enumerate() {
            let (key, _) = make_key(&format!("k{i}"), &format!("{year}-01-01T00:00:00Z"));
            keys.push(key.clone());
            ring.register(key);
        }
        // Newest first before anything is known.
        let names: Vec<String> = ring
            .trial_order(None, None)
            .iter()
            .map(|k| k.secret_name.clone())
            .collect();
        assert_eq!(names, ["k4", "k3", "k2", "k1", "k0"]);

        // An old key opens something: it moves to the front for everyone.
        let sealed =
            hybrid_encrypt(&keys[1].key.public_key(), b"v", b"ns/a", &mut SystemRandom).unwrap();
        let opened = ring
            .decrypter_for(Some("ns/a"), None)
            .decrypt(&sealed, b"ns/a")
            .unwrap();
        assert_eq!(&opened[..], b"v");
        assert_eq!(ring.trial_order(None, None)[0].secret_name, "k1");

        // Per-object hint beats global recency.
        let other =
            hybrid_encrypt(&keys[3].key.public_key(), b"w", b"ns/b", &mut SystemRandom).unwrap();
        ring.decrypter_for(Some("ns/b"), None)
            .decrypt(&other, b"ns/b")
            .unwrap();
        assert_eq!(ring.trial_order(None, None)[0].secret_name, "k3");
        assert_eq!(ring.trial_order(Some("ns/a"), None)[0].secret_name, "k1");
        assert!(
            ring.decrypter_for(None, None)
                .decrypt(&other, b"wrong")
                .is_err()
        );

        let t = |s: &str| -> jiff::Timestamp { s.parse().unwrap() };
        // A new object: the key that was sealing when it was created comes right after any hint,
        // before global recency.
        let created = Some(t("2021-06-01T00:00:00Z"));
        assert_eq!(
            ring.trial_order(Some("ns/new"), created)[0].secret_name,
            "k2"
        );
        assert_eq!(ring.trial_order(Some("ns/a"), created)[0].secret_name, "k1");
        assert_eq!(
            ring.trial_order(Some("ns/new"), created)[1].secret_name,
            "k3"
        );
        // Created before every key (clock skew, restored backup): recency decides.
        let early = Some(t("2010-01-01T00:00:00Z"));
        assert_eq!(ring.trial_order(Some("ns/new"), early)[0].secret_name, "k3");
    }
}
