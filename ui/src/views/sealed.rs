//! The SealedSecrets page's model: every SealedSecret the user can list, those that failed to
//! unseal first, and the controller's keys (public parts only). Pure.

use sealed_secrets_core::key_secret::KeySecretParts;
use serde_json::Value;

use super::Age;

/// One SealedSecret.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `True`, `False` or `Unknown` (not unsealed yet).
    pub synced: String,
    /// The condition's message (the controller's error when it failed).
    pub message: String,
    /// Fingerprint of the key that opened it (`status.keyFingerprint`).
    pub key: String,
    /// Scope (strict, namespace-wide, cluster-wide).
    pub scope: String,
    /// Items sealed.
    pub items: usize,
    /// Age.
    pub age: Option<Age>,
}

impl SealedRow {
    /// CSS class of its badge.
    pub fn class(&self) -> &'static str {
        match self.synced.as_str() {
            "True" => "ok",
            "False" => "bad",
            _ => "unknown",
        }
    }
}

/// The rows, failed first, then not yet unsealed, then by namespace and name. `q` filters by
/// text in the namespace, name or message.
pub fn rows(objects: &[Value], q: &str, now: jiff::Timestamp) -> Vec<SealedRow> {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let q = q.trim().to_lowercase();
    let mut rows: Vec<SealedRow> = objects
        .iter()
        .map(|o| {
            let synced = o["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Synced"));
            let annotations = o["metadata"]["annotations"]
                .as_object()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), text(v)))
                        .collect::<std::collections::BTreeMap<_, _>>()
                })
                .unwrap_or_default();
            SealedRow {
                namespace: text(&o["metadata"]["namespace"]),
                name: text(&o["metadata"]["name"]),
                synced: synced.map_or_else(|| "Unknown".into(), |c| text(&c["status"])),
                message: synced.map(|c| text(&c["message"])).unwrap_or_default(),
                key: text(&o["status"]["keyFingerprint"]),
                scope: sealed_secrets_core::scope::Scope::from_annotations(Some(&annotations))
                    .to_string(),
                items: o["spec"]["encryptedData"]
                    .as_object()
                    .map_or(0, |m| m.len()),
                age: Age::since(
                    o["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
                    now,
                ),
            }
        })
        .filter(|r| {
            q.is_empty()
                || [&r.namespace, &r.name, &r.message]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&q))
        })
        .collect();
    let rank = |r: &SealedRow| match r.synced.as_str() {
        "False" => 0,
        "True" => 2,
        _ => 1,
    };
    rows.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.namespace.cmp(&b.namespace))
            .then_with(|| a.name.cmp(&b.name))
    });
    rows
}

/// One sealing key of the controller, as `kubeseal keys` lists it (no private part).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    /// Secret name.
    pub name: String,
    /// `active`, `retired`, or the label's other value.
    pub state: String,
    /// Public key fingerprint, or why it could not be read.
    pub fingerprint: String,
    /// Certificate expiry (RFC 3339).
    pub expires: String,
    /// Created.
    pub created: String,
    /// Whether this is the newest active key (the one that seals).
    pub sealing: bool,
}

/// The keys among `secrets` (the controller namespace's Secrets with the key label), newest
/// first. Only `tls.crt` is read.
pub fn keys(secrets: &[Value]) -> Vec<KeyRow> {
    let mut rows: Vec<(Option<jiff::Timestamp>, KeyRow)> = secrets
        .iter()
        .filter_map(|s| {
            let parts = KeySecretParts::from_json(s);
            parts.label()?;
            let (fingerprint, expires) = match parts.certificate() {
                Ok(c) => (
                    c.cert.public_key().fingerprint(),
                    c.cert.not_after().to_string(),
                ),
                Err(e) => (format!("unreadable certificate: {e}"), String::new()),
            };
            Some((
                parts.created(),
                KeyRow {
                    name: parts.name().to_string(),
                    state: parts.label().unwrap_or("").to_string(),
                    fingerprint,
                    expires,
                    created: parts.created().map(|t| t.to_string()).unwrap_or_default(),
                    sealing: false,
                },
            ))
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    let mut rows: Vec<KeyRow> = rows.into_iter().map(|(_, r)| r).collect();
    if let Some(newest) = rows.iter_mut().find(|r| r.state == "active") {
        newest.sealing = true;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sealed(ns: &str, name: &str, synced: Option<(&str, &str)>) -> Value {
        let mut o = json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-12-07T11:00:00Z",
                         "annotations": {"sealedsecrets.bitnami.com/namespace-wide": "true"}},
            "spec": {"encryptedData": {"a": "x", "b": "y"}}
        });
        if let Some((status, message)) = synced {
            o["status"] = json!({"conditions": [{"type": "Synced", "status": status, "message": message}],
                                 "keyFingerprint": "SHA256:abc"});
        }
        o
    }

    #[test]
    fn failures_come_first_with_their_message() {
        let now: jiff::Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let objects = vec![
            sealed("a", "ok", Some(("True", ""))),
            sealed("b", "new", None),
            sealed(
                "c",
                "bad",
                Some(("False", "no key could decrypt secret (a)")),
            ),
        ];
        let rows = rows(&objects, "", now);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["bad", "new", "ok"]);
        assert_eq!(rows[0].class(), "bad");
        assert_eq!(rows[0].message, "no key could decrypt secret (a)");
        assert_eq!(rows[2].key, "SHA256:abc");
        assert_eq!(rows[2].scope, "namespace-wide");
        assert_eq!(rows[2].items, 2);
        assert_eq!(rows[2].age.as_ref().unwrap().text, "60m");
        assert_eq!(rows[1].synced, "Unknown");
        let found = super::rows(&objects, "DECRYPT", now);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn keys_read_the_certificate_only() {
        let pair = sealed_secrets_core::keys::generate_key_pair(
            2048,
            "test",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(24),
        )
        .unwrap();
        let cert = pair.cert_pem.clone();
        let b64 = |s: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(s)
        };
        let secret = |name: &str, label: &str, created: &str, crt: &str| {
            json!({"metadata": {"name": name, "creationTimestamp": created,
                                "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": label}},
                   "data": {"tls.crt": crt}})
        };
        let rows = keys(&[
            secret(
                "k1",
                "active",
                "2026-01-01T00:00:00Z",
                &b64(cert.as_bytes()),
            ),
            secret(
                "k2",
                "active",
                "2026-06-01T00:00:00Z",
                &b64(cert.as_bytes()),
            ),
            secret(
                "k0",
                "retired",
                "2025-01-01T00:00:00Z",
                &b64(cert.as_bytes()),
            ),
            secret("bad", "active", "2024-01-01T00:00:00Z", "bm90IGEgY2VydA=="),
            json!({"metadata": {"name": "unlabelled"}}),
        ]);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["k2", "k1", "k0", "bad"]);
        assert!(rows[0].sealing && !rows[1].sealing);
        assert_eq!(rows[0].fingerprint, pair.key.fingerprint());
        assert!(!rows[0].expires.is_empty());
        assert!(rows[3].fingerprint.starts_with("unreadable certificate"));
    }
}
