//! The seal form: its fields read from the posted body, turned into a Secret, and sealed with
//! the cluster's certificate. The plaintext lives only in this request: the form's values are
//! held in zeroizing buffers, never logged, and never rendered back (a form with an error comes
//! back with its names and keys, without a single value).

use std::{collections::BTreeMap, str::FromStr};

use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use sealed_secrets_core::{
    cert::Certificate,
    crypto::SystemRandom,
    documents::{parse_documents, to_go_json, to_sorted_yaml},
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
};
use zeroize::Zeroizing;

/// What the form posted (values wiped when dropped).
#[derive(Default)]
pub struct SealForm {
    /// The CSRF token.
    pub csrf: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `strict`, `namespace-wide` or `cluster-wide`.
    pub scope: String,
    /// Secret `type` (empty: Opaque).
    pub type_: String,
    /// Key/value pairs, in order.
    pub pairs: Vec<(String, Zeroizing<String>)>,
    /// A Secret manifest (YAML or JSON) instead of pairs.
    pub manifest: Zeroizing<String>,
}

impl std::fmt::Debug for SealForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealForm")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("scope", &self.scope)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl SealForm {
    /// Reads an `application/x-www-form-urlencoded` body. `key` and `value` fields pair up in
    /// order; empty pairs are dropped.
    pub fn parse(body: &[u8]) -> SealForm {
        let mut form = SealForm::default();
        let mut keys: Vec<String> = Vec::new();
        let mut values: Vec<Zeroizing<String>> = Vec::new();
        for (field, value) in form_urlencoded::parse(body) {
            match field.as_ref() {
                "csrf" => form.csrf = value.into_owned(),
                "name" => form.name = value.trim().to_string(),
                "namespace" => form.namespace = value.trim().to_string(),
                "scope" => form.scope = value.into_owned(),
                "type" => form.type_ = value.trim().to_string(),
                "key" => keys.push(value.trim().to_string()),
                "value" => values.push(Zeroizing::new(value.into_owned())),
                "manifest" => form.manifest = Zeroizing::new(value.into_owned()),
                _ => {}
            }
        }
        values.resize_with(keys.len().max(values.len()), Zeroizing::default);
        keys.resize(values.len(), String::new());
        form.pairs = keys
            .into_iter()
            .zip(values)
            .filter(|(k, v)| !k.is_empty() || !v.is_empty())
            .collect();
        form
    }

    /// The keys of the pairs (what an error page may show again).
    pub fn keys(&self) -> Vec<String> {
        self.pairs.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// Why the form cannot be sealed; each names the field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormError {
    /// A field is wrong.
    #[error("{field}: {problem}")]
    Field {
        /// The form field.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The certificate could not be used.
    #[error("certificate: {0}")]
    Certificate(String),
    /// Sealing failed.
    #[error("{0}")]
    Seal(String),
}

fn field(field: &str, problem: impl Into<String>) -> FormError {
    FormError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Whether `key` is a valid Secret data key (the API server's rule).
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The Secret the form describes: the manifest when one was given (name, namespace and type
/// from the form override it when filled), else the pairs.
pub fn secret(form: &SealForm) -> Result<Secret, FormError> {
    let mut secret = if form.manifest.trim().is_empty() {
        if form.pairs.is_empty() {
            return Err(field(
                "data",
                "add at least one key and value, or a Secret manifest",
            ));
        }
        let mut data = BTreeMap::new();
        for (index, (key, value)) in form.pairs.iter().enumerate() {
            if !valid_key(key) {
                return Err(field(
                    &format!("key {}", index + 1),
                    format!(
                        "{key:?} is not a valid Secret key (letters, digits, '-', '_' and '.')"
                    ),
                ));
            }
            if data
                .insert(key.clone(), ByteString(value.as_bytes().to_vec()))
                .is_some()
            {
                return Err(field(
                    &format!("key {}", index + 1),
                    format!("{key:?} is given twice"),
                ));
            }
        }
        Secret {
            data: Some(data),
            ..Secret::default()
        }
    } else {
        let mut documents = parse_documents(form.manifest.as_bytes())
            .map_err(|e| field("manifest", e.to_string()))?;
        if documents.len() != 1 {
            return Err(field(
                "manifest",
                format!("holds {} documents; give one Secret", documents.len()),
            ));
        }
        let document = documents.remove(0);
        if document["kind"] != "Secret" {
            return Err(field("manifest", "is not a Secret (kind: Secret)"));
        }
        secret_from_value(document).map_err(|e| field("manifest", e.to_string()))?
    };
    let meta: &mut ObjectMeta = &mut secret.metadata;
    if !form.name.is_empty() {
        meta.name = Some(form.name.clone());
    }
    if !form.namespace.is_empty() {
        meta.namespace = Some(form.namespace.clone());
    }
    if !form.type_.is_empty() {
        secret.type_ = Some(form.type_.clone());
    }
    if secret.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(field("name", "required"));
    }
    Ok(secret)
}

/// A sealed result, ready to copy or download.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    /// Name of the SealedSecret.
    pub name: String,
    /// Its namespace (empty for cluster-wide).
    pub namespace: String,
    /// Scope it was sealed with.
    pub scope: String,
    /// As kubeseal writes YAML.
    pub yaml: String,
    /// As kubeseal writes JSON.
    pub json: String,
    /// Fingerprint of the certificate's public key.
    pub fingerprint: String,
}

/// Seals the form's Secret with `certificate_pem` (the first certificate in it), as `kubeseal`
/// would: same scope rules, same output.
pub fn seal(
    form: &SealForm,
    certificate_pem: &[u8],
    now: jiff::Timestamp,
) -> Result<Sealed, FormError> {
    let scope = Scope::from_str(&form.scope).map_err(|e| field("scope", e.to_string()))?;
    let secret = secret(form)?;
    let certificate = Certificate::from_pem(certificate_pem)
        .map_err(|e| FormError::Certificate(e.to_string()))?;
    certificate
        .check_not_expired(now)
        .map_err(|e| FormError::Certificate(e.to_string()))?;
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let options = SealOptions {
        scope,
        namespace: NamespaceDefault {
            namespace: if namespace.is_empty() {
                "default".into()
            } else {
                namespace
            },
            explicit: false,
        },
        allow_empty_data: false,
    };
    let sealed = seal_secret(
        secret,
        certificate.public_key(),
        &options,
        &mut SystemRandom,
    )
    .map_err(|e| FormError::Seal(e.to_string()))?;
    let value = sealed.to_upstream_value();
    Ok(Sealed {
        name: sealed.metadata.name.clone().unwrap_or_default(),
        namespace: sealed.metadata.namespace.clone().unwrap_or_default(),
        scope: Scope::from_annotations(sealed.metadata.annotations.as_ref()).to_string(),
        yaml: format!("---\n{}", to_sorted_yaml(&value)),
        json: to_go_json(&value),
        fingerprint: certificate.public_key().fingerprint(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_secrets_core::{
        keys::generate_key_pair,
        sealed_secret::SealedSecret,
        unseal::{UnsealOptions, unseal},
    };

    fn pair() -> sealed_secrets_core::keys::GeneratedKeyPair {
        generate_key_pair(
            2048,
            "ui",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(24),
        )
        .unwrap()
    }

    fn body(fields: &[(&str, &str)]) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
            .into_bytes()
    }

    #[test]
    fn pairs_pair_up_in_order_and_empty_rows_drop() {
        let form = SealForm::parse(&body(&[
            ("csrf", "t"),
            ("name", " db "),
            ("key", "user"),
            ("value", "admin"),
            ("key", ""),
            ("value", ""),
            ("key", "password"),
            ("value", "p4ss\nword"),
        ]));
        assert_eq!(form.name, "db");
        assert_eq!(form.keys(), ["user", "password"]);
        assert_eq!(form.pairs[1].1.as_str(), "p4ss\nword");
        let debug = format!("{form:?}");
        assert!(
            !debug.contains("admin") && !debug.contains("p4ss"),
            "{debug}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = |fields: &[(&str, &str)]| secret(&SealForm::parse(&body(fields))).unwrap_err();
        assert_eq!(
            err(&[("name", "x")]).to_string(),
            "data: add at least one key and value, or a Secret manifest"
        );
        assert_eq!(
            err(&[("key", "a"), ("value", "1")]).to_string(),
            "name: required"
        );
        assert!(
            err(&[("name", "x"), ("key", "a b"), ("value", "1")])
                .to_string()
                .starts_with("key 1: \"a b\" is not a valid Secret key")
        );
        assert!(
            err(&[
                ("name", "x"),
                ("key", "a"),
                ("value", "1"),
                ("key", "a"),
                ("value", "2")
            ])
            .to_string()
            .contains("key 2: \"a\" is given twice")
        );
        assert!(
            err(&[("manifest", "kind: ConfigMap\nmetadata: {name: x}")])
                .to_string()
                .starts_with("manifest: is not a Secret")
        );
        assert!(
            err(&[("manifest", "a: [")])
                .to_string()
                .starts_with("manifest: ")
        );
        let scope = seal(
            &SealForm::parse(&body(&[
                ("scope", "galaxy"),
                ("name", "x"),
                ("key", "a"),
                ("value", "1"),
            ])),
            b"",
            jiff::Timestamp::now(),
        )
        .unwrap_err();
        assert!(scope.to_string().starts_with("scope: "), "{scope}");
        let cert = seal(
            &SealForm::parse(&body(&[("name", "x"), ("key", "a"), ("value", "1")])),
            b"not a certificate",
            jiff::Timestamp::now(),
        )
        .unwrap_err();
        assert!(cert.to_string().starts_with("certificate: "), "{cert}");
    }

    #[test]
    fn a_sealed_form_opens_with_the_key_under_its_identity() {
        let pair = pair();
        let form = SealForm::parse(&body(&[
            ("name", "db"),
            ("namespace", "shop"),
            ("scope", "strict"),
            ("type", "kubernetes.io/basic-auth"),
            ("key", "username"),
            ("value", "admin"),
            ("key", "password"),
            ("value", "s3cr3t"),
        ]));
        let sealed = seal(&form, pair.cert_pem.as_bytes(), jiff::Timestamp::now()).unwrap();
        assert_eq!(
            (sealed.name.as_str(), sealed.namespace.as_str()),
            ("db", "shop")
        );
        assert_eq!(sealed.fingerprint, pair.key.fingerprint());
        assert!(!sealed.yaml.contains("s3cr3t") && !sealed.json.contains("s3cr3t"));
        let value: serde_json::Value = serde_json::from_str(&sealed.json).unwrap();
        let object = SealedSecret::from_value(value).unwrap();
        let secret = unseal(&object, &pair.key, UnsealOptions::default()).unwrap();
        let data = secret.data.unwrap();
        assert_eq!(data["password"].0, b"s3cr3t");
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert!(
            sealed
                .yaml
                .starts_with("---\napiVersion: bitnami.com/v1alpha1\n")
        );
    }

    #[test]
    fn a_manifest_seals_and_the_form_names_win() {
        let pair = pair();
        let manifest = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: from-file\n  namespace: a\nstringData:\n  token: t0k3n\n";
        let form = SealForm::parse(&body(&[
            ("manifest", manifest),
            ("namespace", "b"),
            ("scope", "namespace-wide"),
        ]));
        let sealed = seal(&form, pair.cert_pem.as_bytes(), jiff::Timestamp::now()).unwrap();
        assert_eq!(
            (sealed.name.as_str(), sealed.namespace.as_str()),
            ("from-file", "b")
        );
        assert_eq!(sealed.scope, "namespace-wide");
    }

    #[test]
    fn manifest_errors_carry_no_value() {
        const CANARY: &str = "canary-in-a-broken-manifest";
        let manifests = [
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: x}}\nstringData:\n  a: [\"{CANARY}\"\n"
            ),
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: x}}\nstringData:\n  a: [\"{CANARY}\"]\n"
            ),
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: x}}\ndata:\n  a: \"{CANARY}!\"\n"
            ),
            format!(
                "{{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"data\": {{\"a\": \"{CANARY}\"}}"
            ),
            format!("kind: {CANARY}\n"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData:\n  pin: 48213957\n"
                .to_string(),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData:\n  pin: [48213957]\n"
                .to_string(),
            format!("{CANARY}: [\n"),
        ];
        for manifest in manifests {
            let form = SealForm {
                manifest: Zeroizing::new(manifest.clone()),
                name: "x".into(),
                ..SealForm::default()
            };
            let err = secret(&form).unwrap_err().to_string();
            assert!(err.starts_with("manifest: "), "{err}");
            assert!(!err.contains(CANARY), "{manifest:?} -> {err}");
            assert!(!err.contains("48213957"), "{manifest:?} -> {err}");
        }
    }
}
