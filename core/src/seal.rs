//! Secret → SealedSecret, exactly as upstream's kubeseal builds it.
//!
//! The decisions (which scope, which namespace, what goes into the template) are made here as
//! pure functions over the input object; the caller supplies the public key, the randomness and
//! the namespace that kubeconfig or `-n` gives.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use serde_json::Value;

use crate::{
    crypto::{CryptoError, Randomness, hybrid_encrypt},
    keys::PublicKey,
    scope::Scope,
    sealed_secret::{LAST_APPLIED_ANNOTATIONS, SealedSecret, SealedSecretSpec, SecretTemplateSpec},
};

/// Errors turning a Secret into a SealedSecret. Texts follow upstream's kubeseal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The Secret has neither `data` nor `stringData`.
    #[error(
        "secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used"
    )]
    EmptyData,
    /// `metadata.name` is missing.
    #[error("missing metadata.name in input Secret")]
    MissingName,
    /// The Secret's namespace differs from an explicit `--namespace`.
    #[error(
        "namespace mismatch: input secret is in namespace {input:?} but {flag:?} was specified"
    )]
    NamespaceMismatch {
        /// Namespace in the input.
        input: String,
        /// Namespace given with `--namespace`.
        flag: String,
    },
    /// A non-cluster-wide Secret ended up without a namespace.
    #[error("secret must declare a namespace")]
    NoNamespace,
    /// The document is not a valid Secret (wrong field types, bad base64 in `data`).
    #[error("invalid Secret: {0}")]
    InvalidSecret(String),
    /// Encryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Where the namespace of a sealed object comes from when its input has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDefault {
    /// The namespace to use (from `-n`, else kubeconfig's context, else `default`).
    pub namespace: String,
    /// Whether it was given with `-n/--namespace` (then a different input namespace is an error).
    pub explicit: bool,
}

/// How to seal Secret objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOptions {
    /// `--scope`. `Strict` (the default) leaves the input's own scope annotations in charge.
    pub scope: Scope,
    /// Namespace for inputs that have none.
    pub namespace: NamespaceDefault,
    /// `--allow-empty-data`.
    pub allow_empty_data: bool,
}

/// Decodes a document into a Secret without checking its `kind` (as upstream).
pub fn secret_from_value(value: Value) -> Result<Secret, SealError> {
    serde_json::from_value(value)
        .map_err(|e| SealError::InvalidSecret(without_values(&e.to_string())))
}

/// A serde message without the values it quotes: `invalid type: integer `48213957`, expected
/// a string` names the wrong value, and in a Secret that value is the secret (upstream's Go
/// message names only the types). Backtick- and double-quoted spans go.
fn without_values(message: &str) -> String {
    if !(message.contains("invalid type") || message.contains("invalid value")) {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '`' || c == '"' => quote = Some(c),
            None => out.push(c),
        }
    }
    out.replace("  ", " ").replace(" ,", ",")
}

/// Removes what the API server sets, so a Secret fetched with `kubectl get -o yaml` seals cleanly.
fn clear_server_fields(meta: &mut ObjectMeta) {
    meta.self_link = None;
    meta.uid = None;
    meta.resource_version = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    // Upstream keeps managedFields (a quirk); they are server bookkeeping and never belong in Git.
    meta.managed_fields = None;
}

/// The metadata a sealed Secret's template carries: the input's, minus server fields, owner
/// references and the last-applied annotations that can hold the plaintext.
fn template_metadata(meta: &ObjectMeta) -> ObjectMeta {
    let mut template = meta.clone();
    template.owner_references = None;
    if let Some(annotations) = &mut template.annotations {
        for key in LAST_APPLIED_ANNOTATIONS {
            annotations.remove(*key);
        }
        if annotations.is_empty() {
            template.annotations = None;
        }
    }
    template
}

/// Seals one Secret.
pub fn seal_secret(
    mut secret: Secret,
    key: &PublicKey,
    options: &SealOptions,
    rng: &mut dyn Randomness,
) -> Result<SealedSecret, SealError> {
    let has_data = secret.data.as_ref().is_some_and(|d| !d.is_empty())
        || secret.string_data.as_ref().is_some_and(|d| !d.is_empty());
    if !has_data && !options.allow_empty_data {
        return Err(SealError::EmptyData);
    }
    let name = secret
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(SealError::MissingName)?;

    if options.scope != Scope::Strict {
        options.scope.write_annotations(
            secret
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new),
        );
    }
    let scope = Scope::from_annotations(secret.metadata.annotations.as_ref());

    if scope != Scope::ClusterWide {
        let input_ns = secret.metadata.namespace.clone().unwrap_or_default();
        if input_ns.is_empty() {
            secret.metadata.namespace = Some(options.namespace.namespace.clone());
        } else if options.namespace.explicit && input_ns != options.namespace.namespace {
            return Err(SealError::NamespaceMismatch {
                input: input_ns,
                flag: options.namespace.namespace.clone(),
            });
        }
    }
    clear_server_fields(&mut secret.metadata);

    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    if scope != Scope::ClusterWide && namespace.is_empty() {
        return Err(SealError::NoNamespace);
    }
    let label = scope.label(&namespace, &name);

    let mut encrypted_data = BTreeMap::new();
    for (item, value) in secret.data.iter().flatten() {
        encrypted_data.insert(item.clone(), seal_value(key, &value.0, &label, rng)?);
    }
    for (item, value) in secret.string_data.iter().flatten() {
        encrypted_data.insert(
            item.clone(),
            seal_value(key, value.as_bytes(), &label, rng)?,
        );
    }

    let outer_annotations = scope
        .annotation()
        .map(|annotation| BTreeMap::from([(annotation.to_string(), "true".to_string())]));
    let mut sealed = SealedSecret::new(
        &name,
        SealedSecretSpec {
            template: SecretTemplateSpec {
                metadata: template_metadata(&secret.metadata),
                type_: secret.type_.clone(),
                immutable: secret.immutable,
                data: None,
            },
            data: None,
            encrypted_data,
        },
    );
    sealed.metadata.namespace = secret.metadata.namespace.clone().filter(|n| !n.is_empty());
    sealed.metadata.annotations = outer_annotations;
    Ok(sealed)
}

/// Seals one value and returns it as standard padded base64 (the `encryptedData` form).
pub fn seal_value(
    key: &PublicKey,
    plaintext: &[u8],
    label: &[u8],
    rng: &mut dyn Randomness,
) -> Result<String, CryptoError> {
    let ciphertext = hybrid_encrypt(key, plaintext, label, rng)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(ciphertext))
}

/// Errors of `kubeseal --raw` argument checks (upstream's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RawSealError {
    /// Strict and namespace-wide need a namespace.
    #[error("must provide the --namespace flag with --raw and --scope {0}")]
    MissingNamespace(Scope),
    /// Strict needs a name.
    #[error("must provide the --name flag with --raw and --scope strict")]
    MissingName,
    /// Encryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// `kubeseal --raw`: seals one value for `scope`, `namespace` and `name`.
pub fn seal_raw(
    key: &PublicKey,
    plaintext: &[u8],
    scope: Scope,
    namespace: &str,
    name: &str,
    rng: &mut dyn Randomness,
) -> Result<String, RawSealError> {
    if scope != Scope::ClusterWide && namespace.is_empty() {
        return Err(RawSealError::MissingNamespace(scope));
    }
    if scope == Scope::Strict && name.is_empty() {
        return Err(RawSealError::MissingName);
    }
    Ok(seal_value(
        key,
        plaintext,
        &scope.label(namespace, name),
        rng,
    )?)
}

/// `kubeseal --merge-into`: copies the newly sealed items, template labels, annotations and
/// template data into `original`. Missing maps in the original are created (upstream panics).
pub fn merge_into(original: &mut SealedSecret, update: SealedSecret) {
    original
        .spec
        .encrypted_data
        .extend(update.spec.encrypted_data);
    let new_template = update.spec.template;
    let target = &mut original.spec.template;
    if let Some(annotations) = new_template.metadata.annotations {
        target
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(annotations);
    }
    if let Some(labels) = new_template.metadata.labels {
        target
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(labels);
    }
    if let Some(data) = new_template.data {
        target.data.get_or_insert_with(BTreeMap::new).extend(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crypto::{Decrypter, SystemRandom},
        keys::test_keys,
        scope::{CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION},
    };
    use serde_json::json;

    fn options(scope: Scope) -> SealOptions {
        SealOptions {
            scope,
            namespace: NamespaceDefault {
                namespace: "default".into(),
                explicit: false,
            },
            allow_empty_data: false,
        }
    }

    fn input(value: Value) -> Secret {
        secret_from_value(value).unwrap()
    }

    fn open(sealed: &SealedSecret, item: &str, label: &[u8]) -> Vec<u8> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&sealed.spec.encrypted_data[item])
            .unwrap();
        test_keys::rsa2048_a()
            .decrypt(&bytes, label)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn strict_sealing_fills_namespace_and_binds_name() {
        let key = test_keys::rsa2048_a().public_key();
        let secret = input(json!({"metadata": {"name": "db"}, "data": {"p": "aHVudGVyMg=="}}));
        let sealed = seal_secret(secret, &key, &options(Scope::Strict), &mut SystemRandom).unwrap();
        assert_eq!(sealed.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(sealed.metadata.annotations, None);
        assert_eq!(open(&sealed, "p", b"default/db"), b"hunter2");
    }

    #[test]
    fn scope_flag_rewrites_annotations_in_metadata_and_template() {
        let key = test_keys::rsa2048_a().public_key();
        let secret = input(json!({
            "metadata": {"name": "db", "namespace": "shop",
                         "annotations": {CLUSTER_WIDE_ANNOTATION: "true"}},
            "stringData": {"u": "admin"}
        }));
        let sealed = seal_secret(
            secret,
            &key,
            &options(Scope::NamespaceWide),
            &mut SystemRandom,
        )
        .unwrap();
        let expected =
            BTreeMap::from([(NAMESPACE_WIDE_ANNOTATION.to_string(), "true".to_string())]);
        assert_eq!(sealed.metadata.annotations.as_ref(), Some(&expected));
        assert_eq!(
            sealed.spec.template.metadata.annotations.as_ref(),
            Some(&expected)
        );
        assert_eq!(open(&sealed, "u", b"shop"), b"admin");
    }

    #[test]
    fn cluster_wide_by_annotation_keeps_missing_namespace() {
        let key = test_keys::rsa2048_a().public_key();
        let secret = input(json!({
            "metadata": {"name": "x", "annotations": {CLUSTER_WIDE_ANNOTATION: "true"}},
            "data": {"k": "dg=="}
        }));
        let sealed = seal_secret(secret, &key, &options(Scope::Strict), &mut SystemRandom).unwrap();
        assert_eq!(sealed.metadata.namespace, None);
        assert_eq!(open(&sealed, "k", b""), b"v");
    }

    #[test]
    fn string_data_overrides_data_and_template_drops_server_fields() {
        let key = test_keys::rsa2048_a().public_key();
        let secret = input(json!({
            "metadata": {"name": "x", "namespace": "n", "uid": "u", "resourceVersion": "9",
                         "labels": {"a": "b"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "o", "uid": "1"}],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{secret}"}},
            "type": "kubernetes.io/tls", "immutable": true,
            "data": {"k": "ZnJvbWRhdGE="}, "stringData": {"k": "fromstring"}
        }));
        let sealed = seal_secret(secret, &key, &options(Scope::Strict), &mut SystemRandom).unwrap();
        assert_eq!(open(&sealed, "k", b"n/x"), b"fromstring");
        let template = &sealed.spec.template;
        assert_eq!(template.metadata.uid, None);
        assert_eq!(template.metadata.resource_version, None);
        assert_eq!(template.metadata.owner_references, None);
        assert_eq!(template.metadata.annotations, None);
        assert_eq!(template.metadata.labels.as_ref().unwrap()["a"], "b");
        assert_eq!(template.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(template.immutable, Some(true));
    }

    #[test]
    fn input_errors_use_upstream_texts() {
        let key = test_keys::rsa2048_a().public_key();
        let mut rng = SystemRandom;
        let empty = input(json!({"metadata": {"name": "x"}}));
        assert_eq!(
            seal_secret(empty.clone(), &key, &options(Scope::Strict), &mut rng).unwrap_err(),
            SealError::EmptyData
        );
        let mut allow = options(Scope::Strict);
        allow.allow_empty_data = true;
        assert!(seal_secret(empty, &key, &allow, &mut rng).is_ok());

        let unnamed = input(json!({"metadata": {}, "data": {"k": "dg=="}}));
        assert_eq!(
            seal_secret(unnamed, &key, &options(Scope::Strict), &mut rng)
                .unwrap_err()
                .to_string(),
            "missing metadata.name in input Secret"
        );

        let elsewhere =
            input(json!({"metadata": {"name": "x", "namespace": "a"}, "data": {"k": "dg=="}}));
        let mut explicit = options(Scope::Strict);
        explicit.namespace = NamespaceDefault {
            namespace: "b".into(),
            explicit: true,
        };
        assert_eq!(
            seal_secret(elsewhere, &key, &explicit, &mut rng)
                .unwrap_err()
                .to_string(),
            "namespace mismatch: input secret is in namespace \"a\" but \"b\" was specified"
        );
        assert!(matches!(
            secret_from_value(json!({"data": {"k": "not base64!"}})),
            Err(SealError::InvalidSecret(_))
        ));
    }

    #[test]
    fn an_invalid_secret_is_described_without_its_values() {
        for document in [
            json!({"stringData": {"pin": 48213957}}),
            json!({"stringData": {"pin": ["48213957"]}}),
            json!({"data": {"pin": "48213957!"}}),
            json!({"data": {"pin": 48213957.5}}),
            json!({"type": 48213957}),
        ] {
            let err = secret_from_value(document.clone()).unwrap_err().to_string();
            assert!(err.starts_with("invalid Secret: "), "{err}");
            assert!(!err.contains("48213957"), "{document} -> {err}");
        }
        let err = secret_from_value(json!({"stringData": {"pin": 48213957}}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid type: integer, expected a string"),
            "{err}"
        );
    }

    #[test]
    fn raw_mode_checks_arguments_per_scope() {
        let key = test_keys::rsa2048_a().public_key();
        let mut rng = SystemRandom;
        assert_eq!(
            seal_raw(&key, b"v", Scope::Strict, "ns", "", &mut rng)
                .unwrap_err()
                .to_string(),
            "must provide the --name flag with --raw and --scope strict"
        );
        assert_eq!(
            seal_raw(&key, b"v", Scope::NamespaceWide, "", "", &mut rng)
                .unwrap_err()
                .to_string(),
            "must provide the --namespace flag with --raw and --scope namespace-wide"
        );
        let sealed = seal_raw(&key, b"v", Scope::ClusterWide, "", "", &mut rng).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .unwrap();
        assert_eq!(
            &test_keys::rsa2048_a().decrypt(&bytes, b"").unwrap()[..],
            b"v"
        );
    }

    #[test]
    fn merge_creates_missing_maps_instead_of_panicking() {
        let mut original = SealedSecret::new("x", SealedSecretSpec::default());
        let mut update = SealedSecret::new("x", SealedSecretSpec::default());
        update
            .spec
            .encrypted_data
            .insert("new".into(), "c2VhbGVk".into());
        update.spec.template.metadata.labels = Some(BTreeMap::from([("l".into(), "v".into())]));
        update.spec.template.metadata.annotations =
            Some(BTreeMap::from([("a".into(), "v".into())]));
        merge_into(&mut original, update);
        assert_eq!(original.spec.encrypted_data["new"], "c2VhbGVk");
        assert_eq!(original.spec.template.metadata.labels.unwrap()["l"], "v");
        assert_eq!(
            original.spec.template.metadata.annotations.unwrap()["a"],
            "v"
        );
    }
}
