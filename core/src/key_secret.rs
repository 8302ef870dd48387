//! Key Secrets: the controller's sealing keys as Kubernetes stores them, and the one parser for
//! them.
//!
//! A key Secret is a `kubernetes.io/tls` Secret holding `tls.key` (the private key, PEM) and
//! `tls.crt` (its certificate), labelled [`KEY_LABEL`] with the key's state as value
//! (`active`, `retired`, or anything else, which nobody uses). The controller reads them from
//! the API server, `kubeseal keys` lists and relabels them, and `--recovery-private-key` reads
//! backups of them; all three read them here, so the rules (which data item is required, what
//! orders keys, what an error may say) exist once.
//!
//! Everything here is pure: the callers hand over what they read ([`KeySecretParts`]), in the
//! form they have it (typed `Secret` with decoded bytes, or JSON/YAML with base64 text).
//! Errors name the data item and the problem, never its bytes: base64 decoding errors are
//! dropped because they quote the offending character.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use zeroize::Zeroizing;

use crate::{
    cert::{CertError, Certificate},
    documents,
    keys::{GeneratedKeyPair, KeyError, PrivateKey, TLS_CERT, TLS_KEY},
};

/// Label that marks sealing key Secrets; its value is the key's state.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// Value of [`KEY_LABEL`] on keys the controller uses.
pub const LABEL_ACTIVE: &str = "active";
/// Value of [`KEY_LABEL`] on keys kept but no longer used (`kubeseal keys retire`).
pub const LABEL_RETIRED: &str = "retired";
/// Annotation `kubeseal keys backup` writes on every key Secret it saved (RFC 3339).
pub const BACKED_UP_ANNOTATION: &str = "sealed-secrets-rs.io/backed-up-at";
/// Type of key Secrets.
pub const KEY_SECRET_TYPE: &str = "kubernetes.io/tls";

/// What is wrong with one data item of a key Secret. Never quotes the item's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The item is absent (or not a string in JSON/YAML).
    #[error("missing from the Secret")]
    Missing,
    /// The JSON/YAML value is not base64 (the decoder's text is dropped: it quotes a byte).
    #[error("not base64")]
    NotBase64,
    /// The item does not hold a usable private key.
    #[error(transparent)]
    Key(KeyError),
    /// The item does not hold a usable certificate.
    #[error(transparent)]
    Cert(CertError),
}

/// Why a key Secret cannot be used; each variant names the data item at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySecretError {
    /// `tls.key` is missing or unreadable.
    #[error("{TLS_KEY}: {0}")]
    Key(FieldError),
    /// `tls.crt` is missing or unreadable.
    #[error("{TLS_CERT}: {0}")]
    Cert(FieldError),
    /// The certificate does not belong to the private key.
    #[error("{TLS_CERT}: the certificate does not match the private key in {TLS_KEY}")]
    Mismatch {},
}

/// Which time orders keys (and so picks the sealing key), as `--key-order-priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyOrder {
    /// The certificate's NotBefore (upstream's default).
    #[default]
    CertNotBefore,
    /// The key Secret's creationTimestamp (the certificate's NotBefore when it has none).
    SecretCreationTimestamp,
}

impl KeyOrder {
    /// The ordering time of a key whose certificate starts at `not_before` and whose Secret was
    /// created at `created`.
    pub fn order_time(
        self,
        not_before: jiff::Timestamp,
        created: Option<jiff::Timestamp>,
    ) -> jiff::Timestamp {
        match self {
            Self::CertNotBefore => not_before,
            Self::SecretCreationTimestamp => created.unwrap_or(not_before),
        }
    }
}

/// One data item as the caller has it.
#[derive(Clone, Copy)]
enum Item<'a> {
    /// Decoded bytes (a typed `Secret`).
    Bytes(&'a [u8]),
    /// Base64 text (a JSON/YAML document); surrounding whitespace is ignored.
    Base64(&'a str),
}

/// The bytes of a data item, or why there are none.
fn decode(item: Option<Item<'_>>) -> Result<Zeroizing<Vec<u8>>, FieldError> {
    match item.ok_or(FieldError::Missing)? {
        Item::Bytes(bytes) => Ok(Zeroizing::new(bytes.to_vec())),
        Item::Base64(text) => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(Zeroizing::new)
            .map_err(|_| FieldError::NotBase64),
    }
}

/// The parts of a key Secret the parser reads, borrowed from whatever form it came in.
#[derive(Clone)]
pub struct KeySecretParts<'a> {
    name: &'a str,
    label: Option<&'a str>,
    created: Option<jiff::Timestamp>,
    tls_key: Option<Item<'a>>,
    tls_crt: Option<Item<'a>>,
}

impl std::fmt::Debug for KeySecretParts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the data items: `tls.key` is the private key.
        f.debug_struct("KeySecretParts")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl<'a> KeySecretParts<'a> {
    /// The parts of a typed Secret (as the API client returns it: data already decoded).
    pub fn from_secret(secret: &'a Secret) -> Self {
        let item = |name: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(name))
                .map(|b| Item::Bytes(b.0.as_slice()))
        };
        Self {
            name: secret.metadata.name.as_deref().unwrap_or(""),
            label: secret
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(KEY_LABEL))
                .map(String::as_str),
            created: secret.metadata.creation_timestamp.as_ref().map(|t| t.0),
            tls_key: item(TLS_KEY),
            tls_crt: item(TLS_CERT),
        }
    }

    /// The parts of a Secret given as a JSON value (a document or backup: data as base64).
    /// Fields of the wrong JSON type count as absent.
    pub fn from_json(secret: &'a serde_json::Value) -> Self {
        let meta = &secret["metadata"];
        let item = |name: &str| secret["data"][name].as_str().map(Item::Base64);
        Self {
            name: meta["name"].as_str().unwrap_or(""),
            label: meta["labels"][KEY_LABEL].as_str(),
            created: meta["creationTimestamp"]
                .as_str()
                .and_then(|t| t.parse().ok()),
            tls_key: item(TLS_KEY),
            tls_crt: item(TLS_CERT),
        }
    }

    /// Secret name (empty when it has none).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Value of [`KEY_LABEL`], if the Secret has it.
    pub fn label(&self) -> Option<&'a str> {
        self.label
    }

    /// Whether the label says the key is in use (`active`).
    pub fn is_active(&self) -> bool {
        self.label == Some(LABEL_ACTIVE)
    }

    /// `metadata.creationTimestamp`.
    pub fn created(&self) -> Option<jiff::Timestamp> {
        self.created
    }

    /// Reads `tls.key` alone (what recovery needs: upstream reads only the private key).
    pub fn private_key(&self) -> Result<PrivateKey, KeySecretError> {
        let pem = decode(self.tls_key).map_err(KeySecretError::Key)?;
        PrivateKey::from_pem(&pem).map_err(|e| KeySecretError::Key(FieldError::Key(e)))
    }

    /// Reads `tls.crt` alone (what listing keys needs: no private key is touched).
    pub fn certificate(&self) -> Result<KeyCertificate, KeySecretError> {
        let pem = decode(self.tls_crt).map_err(KeySecretError::Cert)?;
        let cert =
            Certificate::from_pem(&pem).map_err(|e| KeySecretError::Cert(FieldError::Cert(e)))?;
        Ok(KeyCertificate {
            pem: String::from_utf8_lossy(&pem).into_owned(),
            cert,
        })
    }

    /// Reads the whole key: `tls.crt`, then `tls.key`, which must hold the same public key.
    /// This is what makes a key usable for the controller, so it is also what `kubeseal keys`
    /// counts as a key.
    pub fn entry(&self) -> Result<KeyEntry, KeySecretError> {
        let cert = self.certificate()?;
        let key = self.private_key()?;
        if cert.cert.public_key() != &key.public_key() {
            return Err(KeySecretError::Mismatch {});
        }
        Ok(KeyEntry {
            name: self.name.to_string(),
            label: self.label.map(str::to_string),
            created: self.created,
            fingerprint: key.fingerprint(),
            key,
            cert,
        })
    }
}

/// The certificate of a key Secret, parsed and as stored.
#[derive(Debug, Clone)]
pub struct KeyCertificate {
    /// The parsed certificate.
    pub cert: Certificate,
    /// The PEM text as stored in `tls.crt` (what `/v1/cert.pem` serves).
    pub pem: String,
}

/// One usable key Secret: private key and matching certificate.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// Secret name.
    pub name: String,
    /// Value of [`KEY_LABEL`], if any.
    pub label: Option<String>,
    /// `metadata.creationTimestamp`.
    pub created: Option<jiff::Timestamp>,
    /// Public key fingerprint.
    pub fingerprint: String,
    /// The private key.
    pub key: PrivateKey,
    /// Its certificate.
    pub cert: KeyCertificate,
}

impl KeyEntry {
    /// When the key was made, by `order`.
    pub fn order_time(&self, order: KeyOrder) -> jiff::Timestamp {
        order.order_time(self.cert.cert.not_before(), self.created)
    }
}

/// The Secret that stores a newly generated key, as upstream writes it: `generateName` the
/// prefix, type `kubernetes.io/tls`, label [`KEY_LABEL`]`=active` (a value for that label in
/// `extra_labels` is overridden).
pub fn new_key_secret(
    pair: &GeneratedKeyPair,
    prefix: &str,
    namespace: &str,
    extra_labels: &[(String, String)],
    annotations: &[(String, String)],
) -> Result<Secret, KeyError> {
    let mut labels: BTreeMap<String, String> = extra_labels
        .iter()
        .filter(|(k, _)| k != KEY_LABEL)
        .cloned()
        .collect();
    labels.insert(KEY_LABEL.into(), LABEL_ACTIVE.into());
    let annotations: BTreeMap<String, String> = annotations.iter().cloned().collect();
    let key_pem: Zeroizing<String> = pair.key.to_pkcs1_pem()?;
    Ok(Secret {
        metadata: ObjectMeta {
            generate_name: Some(prefix.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        type_: Some(KEY_SECRET_TYPE.into()),
        data: Some(BTreeMap::from([
            (
                TLS_CERT.to_string(),
                ByteString(pair.cert_pem.as_bytes().to_vec()),
            ),
            (TLS_KEY.to_string(), ByteString(key_pem.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    })
}

/// Reads the keys of a `--recovery-private-key` file, as upstream does: a PEM private key; else
/// a `v1.List` of key Secrets (`kubectl get secret -l ... -o yaml`); else one or more Secret
/// documents. Each Secret must carry `tls.key`; its label and `tls.crt` are not looked at (a
/// retired key or one with a damaged certificate still opens what it sealed).
pub fn read_recovery_keys(data: &[u8]) -> Result<Vec<PrivateKey>, KeyError> {
    let pem_error = match PrivateKey::from_pem(data) {
        Ok(key) => return Ok(vec![key]),
        Err(err) => err,
    };
    let docs: Vec<serde_json::Value> = documents::parse_documents(data)
        .unwrap_or_default()
        .into_iter()
        .filter(serde_json::Value::is_object)
        .collect();
    if docs.is_empty() {
        // Neither a PEM key nor Secret documents (a PEM file parses as a YAML string): the PEM
        // error is the useful one.
        return Err(pem_error);
    }
    let mut keys = Vec::new();
    for doc in docs {
        let secrets = match doc.get("items").and_then(|v| v.as_array()) {
            Some(items) if doc.get("kind").and_then(|v| v.as_str()) == Some("List") => {
                items.clone()
            }
            _ => vec![doc],
        };
        for secret in secrets {
            keys.push(recovery_key(&secret)?);
        }
    }
    Ok(keys)
}

/// The private key of one key Secret of a recovery file, with upstream's error texts.
fn recovery_key(secret: &serde_json::Value) -> Result<PrivateKey, KeyError> {
    KeySecretParts::from_json(secret)
        .private_key()
        .map_err(|err| match err {
            KeySecretError::Key(FieldError::Missing) => KeyError::MissingTlsKey,
            KeySecretError::Key(FieldError::Key(err)) => err,
            other => KeyError::InvalidPrivateKey(other.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_key_pair, test_keys};

    fn make_secret(name: &str, not_before: &str) -> Secret {
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
        secret
    }

    fn key_from_secret(secret: &Secret) -> Result<KeyEntry, KeySecretError> {
        KeySecretParts::from_secret(secret).entry()
    }

    #[test]
    fn key_secrets_round_trip_with_upstream_shape() {
        let pair = generate_key_pair(
            2048,
            "",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(1),
        )
        .unwrap();
        let labels = vec![
            ("team".to_string(), "a".to_string()),
            (KEY_LABEL.to_string(), "x".to_string()),
        ];
        let secret = new_key_secret(&pair, "sealed-secrets-key", "ks", &labels, &[]).unwrap();
        assert_eq!(
            secret.metadata.generate_name.as_deref(),
            Some("sealed-secrets-key")
        );
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let labels = secret.metadata.labels.clone().unwrap();
        assert_eq!(labels[KEY_LABEL], "active");
        assert_eq!(labels["team"], "a");
        let tls_key = &secret.data.as_ref().unwrap()[TLS_KEY].0;
        assert!(tls_key.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
        let key = key_from_secret(&secret).unwrap();
        assert_eq!(key.key.public_key(), pair.key.public_key());
    }

    #[test]
    fn unreadable_key_secrets_are_reported_not_fatal() {
        let mut secret = make_secret("k", "2024-01-01T00:00:00Z");
        secret.data.as_mut().unwrap().remove(TLS_CERT);
        assert!(matches!(
            key_from_secret(&secret),
            Err(KeySecretError::Cert { .. })
        ));
        let other = make_secret("o", "2024-01-01T00:00:00Z");
        let mut mixed = make_secret("m", "2024-01-01T00:00:00Z");
        mixed
            .data
            .as_mut()
            .unwrap()
            .insert(TLS_CERT.into(), other.data.unwrap()[TLS_CERT].clone());
        assert!(matches!(
            key_from_secret(&mixed),
            Err(KeySecretError::Mismatch { .. })
        ));
    }

    #[test]
    fn errors_name_the_item_and_never_quote_its_bytes() {
        let mut secret = make_secret("k", "2024-01-01T00:00:00Z");
        secret.data.as_mut().unwrap().remove(TLS_KEY);
        assert_eq!(
            key_from_secret(&secret).unwrap_err(),
            KeySecretError::Key(FieldError::Missing)
        );
        // The decoder's own text would quote the offending byte and its offset.
        let json = serde_json::json!({"data": {"tls.key": "c2VjcmV0!", "tls.crt": "c2Vj*"}});
        let parts = KeySecretParts::from_json(&json);
        let key_err = parts.private_key().unwrap_err().to_string();
        assert_eq!(key_err, "tls.key: not base64");
        assert_eq!(
            parts.certificate().unwrap_err().to_string(),
            "tls.crt: not base64"
        );
        assert!(matches!(
            read_recovery_keys(b"kind: Secret\ndata:\n  tls.key: c2VjcmV0!\n"),
            Err(KeyError::InvalidPrivateKey(text)) if text == "tls.key: not base64"
        ));
    }

    #[test]
    fn parts_read_labels_and_creation_from_both_forms() {
        let mut secret = make_secret("k", "2024-01-01T00:00:00Z");
        secret.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2025-02-03T04:05:06Z".parse().unwrap(),
            ));
        let typed = KeySecretParts::from_secret(&secret);
        assert!(typed.is_active());
        assert_eq!(typed.name(), "k");
        let json = serde_json::to_value(&secret).unwrap();
        let parts = KeySecretParts::from_json(&json);
        assert_eq!(parts.label(), Some(LABEL_ACTIVE));
        assert_eq!(parts.created(), typed.created());
        let entry = parts.entry().unwrap();
        assert_eq!(entry.fingerprint, typed.entry().unwrap().fingerprint);
        let not_before: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(entry.order_time(KeyOrder::CertNotBefore), not_before);
        assert_eq!(
            entry.order_time(KeyOrder::SecretCreationTimestamp),
            "2025-02-03T04:05:06Z".parse::<jiff::Timestamp>().unwrap()
        );
        assert_eq!(
            KeyOrder::SecretCreationTimestamp.order_time(not_before, None),
            not_before
        );
        let unlabelled = serde_json::json!({"metadata": {"labels": {KEY_LABEL: LABEL_RETIRED}}});
        assert!(!KeySecretParts::from_json(&unlabelled).is_active());
    }

    #[test]
    fn key_secrets_and_lists_are_read() {
        let key = test_keys::rsa2048_a();
        let pem_b64 = base64::engine::general_purpose::STANDARD
            .encode(key.to_pkcs1_pem().unwrap().as_bytes());
        let secret = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: k\ndata:\n  tls.key: {pem_b64}\n"
        );
        assert_eq!(read_recovery_keys(secret.as_bytes()).unwrap().len(), 1);
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  data:\n    tls.key: {pem_b64}\n- apiVersion: v1\n  kind: Secret\n  data:\n    tls.key: {pem_b64}\n"
        );
        assert_eq!(read_recovery_keys(list.as_bytes()).unwrap().len(), 2);
        let missing = "apiVersion: v1\nkind: Secret\ndata:\n  tls.crt: eA==\n";
        assert_eq!(
            read_recovery_keys(missing.as_bytes())
                .unwrap_err()
                .to_string(),
            "secret must contain a 'tls.data' key"
        );
    }
}
