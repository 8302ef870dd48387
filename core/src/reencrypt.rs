//! Re-encryption of a SealedSecret with the current sealing key (the controller's `/v1/rotate`,
//! behind `kubeseal --re-encrypt`).
//!
//! Upstream decrypts the posted object, builds the Secret and seals that Secret again like
//! kubeseal's object mode. Two of its behaviours are deliberately not copied:
//!
//! - **Metadata overwrite.** Since v0.36.0 upstream replaces the whole template metadata with the
//!   outer metadata whenever the two differ, so that the scope re-sealed is the scope the
//!   controller decrypts with. That also discards template-only labels and annotations and copies
//!   server fields (`uid`, `resourceVersion`, `managedFields`, …) into the template. Here only the
//!   template's **scope annotations** are forced to the outer object's scope; everything else in
//!   the template is kept (server fields, owner references and last-applied annotations are
//!   dropped exactly as kubeseal drops them when sealing).
//! - **Rendered templates.** Upstream seals the *rendered* Secret, baking the output of
//!   `spec.template.data` into `encryptedData` and dropping the templates. Here only the
//!   `encryptedData` items are re-encrypted and `spec.template.data` is kept unchanged, so the
//!   object means the same after rotation.
//! - **No template execution.** The templates are not run at all. Upstream runs them and answers
//!   500 when one fails, which turns `/v1/rotate` into an oracle: anyone who can reach the API
//!   can post ciphertexts copied from a Git repository with a template such as
//!   `{{ if hasPrefix "a" .password }}…{{ else }}{{ fail "" }}{{ end }}` and learn the plaintext
//!   a guess at a time from the status code. Since the templates are carried over unchanged,
//!   running them adds nothing: a broken template is exactly as broken after rotation.
//!
//! The ciphertexts are bound to the label the result will be decrypted with (its own outer
//! scope, namespace and name), so a rotated object always opens where the original did.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::{
    crypto::{Decrypter, Randomness},
    keys::PublicKey,
    scope::Scope,
    seal::{NamespaceDefault, SealError, SealOptions, seal_secret, seal_value},
    sealed_secret::SealedSecret,
    unseal::{UnsealError, UnsealOptions, decryption_label, unseal},
};

/// Errors re-encrypting a SealedSecret. None of them carries plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReencryptError {
    /// An item does not open with any of the keys (upstream's text).
    #[error("error decrypting secret. {0}")]
    Unseal(#[from] UnsealError),
    /// Sealing again failed (for example a strict object without a namespace).
    #[error("error re-sealing secret: {0}")]
    Seal(#[from] SealError),
}

/// Re-seals `sealed` for `new_key`: opens it with `keys`, then encrypts every `encryptedData`
/// item again in the outer object's scope, namespace and name.
///
/// The result has outer metadata `{name, namespace, scope annotation}` and no status; its
/// template keeps the original metadata (scope annotations forced to the outer scope), type,
/// immutability and `data` templates. A deprecated whole-Secret (`spec.data`) object comes back
/// in the `encryptedData` format, its template built from the Secret inside the blob.
pub fn reencrypt(
    sealed: &SealedSecret,
    keys: &dyn Decrypter,
    new_key: &PublicKey,
    rng: &mut dyn Randomness,
) -> Result<SealedSecret, ReencryptError> {
    let deprecated = sealed.spec.data.is_some();
    let templates = if deprecated {
        None
    } else {
        sealed.spec.template.data.clone()
    };

    // Open the items without rendering the templates, so `data` holds exactly the plaintexts of
    // `encryptedData` (a template may override an item of the same name) and no template ever
    // runs over them (see the module docs).
    let mut items_only = sealed.clone();
    items_only.spec.template.data = None;
    let options = UnsealOptions {
        accept_deprecated_v1_data: true,
    };
    let mut secret = unseal(&items_only, keys, options)?;

    let mut plaintexts: BTreeMap<String, Zeroizing<Vec<u8>>> = BTreeMap::new();
    for (item, value) in secret.data.take().into_iter().flatten() {
        plaintexts.insert(item, Zeroizing::new(value.0));
    }
    // Only a deprecated blob can carry `stringData`; it wins over `data` as when sealing.
    for (item, value) in secret.string_data.take().into_iter().flatten() {
        plaintexts.insert(item, Zeroizing::new(value.into_bytes()));
    }

    let scope = Scope::from_annotations(sealed.metadata.annotations.as_ref());
    secret.metadata.owner_references = None;
    let mut annotations = secret.metadata.annotations.take().unwrap_or_default();
    scope.write_annotations(&mut annotations);
    secret.metadata.annotations = (!annotations.is_empty()).then_some(annotations);

    let seal_options = SealOptions {
        // `Strict` leaves the (forced) annotations in charge of the scope.
        scope: Scope::Strict,
        // Upstream refuses to re-seal a namespaced object without a namespace; an empty default
        // reproduces that ("secret must declare a namespace").
        namespace: NamespaceDefault {
            namespace: String::new(),
            explicit: false,
        },
        allow_empty_data: true,
    };
    let mut resealed = seal_secret(secret, new_key, &seal_options, rng)?;

    let label = decryption_label(&resealed);
    for (item, plaintext) in &plaintexts {
        let value = seal_value(new_key, plaintext, &label, rng).map_err(SealError::from)?;
        resealed.spec.encrypted_data.insert(item.clone(), value);
    }
    resealed.spec.template.data = templates;
    Ok(resealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crypto::SystemRandom,
        keys::{PrivateKey, test_keys},
        scope::{CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION},
        seal::secret_from_value,
    };
    use base64::Engine;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn old_key() -> PrivateKey {
        test_keys::rsa2048_a()
    }

    fn new_key() -> PrivateKey {
        test_keys::rsa2048_b()
    }

    /// A SealedSecret sealed with the old key in `scope`, with template labels and annotations.
    fn fixture(scope: Scope) -> SealedSecret {
        let secret = secret_from_value(json!({
            "metadata": {
                "name": "db", "namespace": "shop",
                "labels": {"app": "shop"},
                "annotations": {"team": "payments"}
            },
            "type": "kubernetes.io/basic-auth",
            "immutable": true,
            "stringData": {"username": "admin", "password": "hunter2"}
        }))
        .unwrap();
        let options = SealOptions {
            scope,
            namespace: NamespaceDefault {
                namespace: "default".into(),
                explicit: false,
            },
            allow_empty_data: false,
        };
        seal_secret(secret, &old_key().public_key(), &options, &mut SystemRandom).unwrap()
    }

    fn rotate(sealed: &SealedSecret) -> Result<SealedSecret, ReencryptError> {
        reencrypt(
            sealed,
            &vec![old_key()],
            &new_key().public_key(),
            &mut SystemRandom,
        )
    }

    fn open(sealed: &SealedSecret, keys: &dyn Decrypter) -> BTreeMap<String, Vec<u8>> {
        let secret = unseal(sealed, keys, UnsealOptions::default()).unwrap();
        secret
            .data
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    }

    fn annotation_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_scope_round_trips_and_keeps_its_scope() {
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let original = fixture(scope);
            let rotated = rotate(&original).unwrap();
            assert_eq!(rotated.metadata.name.as_deref(), Some("db"), "{scope}");
            assert_eq!(rotated.metadata.namespace.as_deref(), Some("shop"));
            assert_eq!(
                Scope::from_annotations(rotated.metadata.annotations.as_ref()),
                scope
            );
            assert_eq!(
                Scope::from_annotations(rotated.spec.template.metadata.annotations.as_ref()),
                scope
            );
            assert_eq!(rotated.status, None);
            assert_eq!(rotated.metadata.uid, None);
            let data = open(&rotated, &new_key());
            assert_eq!(data["username"], b"admin");
            assert_eq!(data["password"], b"hunter2");
            assert_eq!(
                rotated.spec.encrypted_data.keys().collect::<Vec<_>>(),
                ["password", "username"]
            );
        }
    }

    #[test]
    fn outer_metadata_is_reduced_to_name_namespace_and_scope() {
        let mut original = fixture(Scope::NamespaceWide);
        original.metadata.uid = Some("uid-1".into());
        original.metadata.resource_version = Some("42".into());
        original.metadata.labels = Some(annotation_map(&[("outer", "label")]));
        original
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("outer".into(), "annotation".into());
        let rotated = rotate(&original).unwrap();
        let value = serde_json::to_value(&rotated.metadata).unwrap();
        assert_eq!(
            value,
            json!({"name": "db", "namespace": "shop",
                   "annotations": {NAMESPACE_WIDE_ANNOTATION: "true"}})
        );
        // Server fields of the outer object never reach the template either.
        assert_eq!(rotated.spec.template.metadata.uid, None);
        assert_eq!(rotated.spec.template.metadata.resource_version, None);
    }

    #[test]
    fn template_labels_annotations_type_and_immutability_are_kept() {
        let original = fixture(Scope::Strict);
        let rotated = rotate(&original).unwrap();
        let template = &rotated.spec.template;
        assert_eq!(template.metadata.labels.as_ref().unwrap()["app"], "shop");
        assert_eq!(
            template.metadata.annotations.as_ref(),
            Some(&annotation_map(&[("team", "payments")]))
        );
        assert_eq!(template.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(template.immutable, Some(true));
        assert_eq!(template.metadata.owner_references, None);
    }

    #[test]
    fn template_scope_is_forced_to_the_outer_scope() {
        // Outer says strict, template claims cluster-wide: the controller decrypts with strict,
        // so the result is strict everywhere.
        let mut original = fixture(Scope::Strict);
        original.spec.template.metadata.annotations = Some(annotation_map(&[
            (CLUSTER_WIDE_ANNOTATION, "true"),
            ("team", "payments"),
        ]));
        let rotated = rotate(&original).unwrap();
        assert_eq!(rotated.metadata.annotations, None);
        assert_eq!(
            rotated.spec.template.metadata.annotations,
            Some(annotation_map(&[("team", "payments")]))
        );
        assert_eq!(open(&rotated, &new_key())["username"], b"admin");

        // Outer says cluster-wide, template has no scope: the template gains the annotation.
        let mut original = fixture(Scope::ClusterWide);
        original.spec.template.metadata.annotations = None;
        let rotated = rotate(&original).unwrap();
        assert_eq!(
            rotated.spec.template.metadata.annotations,
            Some(annotation_map(&[(CLUSTER_WIDE_ANNOTATION, "true")]))
        );
        let mut moved = rotated.clone();
        moved.metadata.namespace = Some("elsewhere".into());
        moved.metadata.name = Some("renamed".into());
        assert_eq!(open(&moved, &new_key())["password"], b"hunter2");
    }

    #[test]
    fn ciphertexts_are_new_and_open_with_the_new_key_only() {
        let original = fixture(Scope::Strict);
        let rotated = rotate(&original).unwrap();
        for (item, value) in &rotated.spec.encrypted_data {
            assert_ne!(value, &original.spec.encrypted_data[item], "{item}");
        }
        assert!(unseal(&rotated, &old_key(), UnsealOptions::default()).is_err());
        assert_eq!(open(&rotated, &new_key())["password"], b"hunter2");
        // Rotating again with the same key still produces fresh ciphertexts.
        let again = reencrypt(
            &rotated,
            &new_key(),
            &new_key().public_key(),
            &mut SystemRandom,
        )
        .unwrap();
        assert_ne!(
            again.spec.encrypted_data["password"],
            rotated.spec.encrypted_data["password"]
        );
    }

    #[test]
    fn template_data_is_kept_as_templates_not_rendered_values() {
        let mut original = fixture(Scope::Strict);
        let templates = BTreeMap::from([
            ("dsn".to_string(), "db://{{ .username }}@shop".to_string()),
            (
                "password".to_string(),
                "{{ .password | upper }}".to_string(),
            ),
        ]);
        original.spec.template.data = Some(templates.clone());
        let rotated = rotate(&original).unwrap();
        assert_eq!(rotated.spec.template.data.as_ref(), Some(&templates));
        assert_eq!(
            rotated.spec.encrypted_data.keys().collect::<Vec<_>>(),
            ["password", "username"],
            "no rendered item is baked into encryptedData"
        );
        let mut raw = rotated.clone();
        raw.spec.template.data = None;
        assert_eq!(open(&raw, &new_key())["password"], b"hunter2");
        let rendered = open(&rotated, &new_key());
        assert_eq!(rendered["password"], b"HUNTER2");
        assert_eq!(rendered["dsn"], b"db://admin@shop");
    }

    #[test]
    fn templates_never_run_so_rotation_is_no_oracle() {
        // A template that fails for every value must not change the outcome: rotation succeeds
        // and carries the template over untouched.
        let mut original = fixture(Scope::Strict);
        let probe = BTreeMap::from([(
            "probe".to_string(),
            "{{ if hasPrefix \"h\" .password }}{{ fail \"yes\" }}{{ end }}{{ .x ".to_string(),
        )]);
        original.spec.template.data = Some(probe.clone());
        let rotated = rotate(&original).unwrap();
        assert_eq!(rotated.spec.template.data, Some(probe));
        assert!(unseal(&rotated, &new_key(), UnsealOptions::default()).is_err());
    }

    #[test]
    fn wrong_key_is_an_error_without_plaintext() {
        let original = fixture(Scope::Strict);
        let err = reencrypt(
            &original,
            &vec![new_key()],
            &new_key().public_key(),
            &mut SystemRandom,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "error decrypting secret. no key could decrypt secret (password, username)"
        );
        // A strict object moved to another name no longer opens either.
        let mut renamed = original.clone();
        renamed.metadata.name = Some("other".into());
        assert!(matches!(
            rotate(&renamed).unwrap_err(),
            ReencryptError::Unseal(_)
        ));
    }

    #[test]
    fn strict_object_without_namespace_cannot_be_resealed() {
        let key = old_key();
        let value = seal_value(&key.public_key(), b"v", b"/x", &mut SystemRandom).unwrap();
        let mut sealed = SealedSecret::new("x", Default::default());
        sealed.spec.encrypted_data.insert("k".into(), value);
        let err = rotate(&sealed).unwrap_err();
        assert_eq!(err, ReencryptError::Seal(SealError::NoNamespace));
    }

    #[test]
    fn deprecated_whole_secret_format_comes_back_as_encrypted_data() {
        let inner = json!({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "ignored", "labels": {"l": "v"}},
                           "data": {"k": "dg=="}});
        let blob = crate::crypto::hybrid_encrypt(
            &old_key().public_key(),
            inner.to_string().as_bytes(),
            b"ns/legacy",
            &mut SystemRandom,
        )
        .unwrap();
        let mut sealed = SealedSecret::new("legacy", Default::default());
        sealed.metadata.namespace = Some("ns".into());
        sealed.spec.data = Some(ByteString(blob));
        let rotated = rotate(&sealed).unwrap();
        assert_eq!(rotated.spec.data, None);
        assert_eq!(
            rotated.spec.template.metadata.labels.as_ref().unwrap()["l"],
            "v"
        );
        assert_eq!(
            rotated.spec.template.metadata.name.as_deref(),
            Some("legacy")
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&rotated.spec.encrypted_data["k"])
            .unwrap();
        assert_eq!(&new_key().decrypt(&bytes, b"ns/legacy").unwrap()[..], b"v");
    }
}
