//! SealedSecret → Secret, exactly as upstream's controller and `kubeseal --recovery-unseal`
//! build it.
//!
//! The label comes from the SealedSecret's own namespace, name and annotations; every item is
//! opened, then `spec.template.data` is rendered over the opened items; any failure fails the
//! whole object (never a partial Secret), with upstream's folded error text.
//!
//! Opening is bounded by one [`Budget`] per object (see [`crate::budget`]): its shape is checked
//! before any key is tried, no template runs unless every item opened, every template is parsed
//! before any runs, and rendering stops at the first error. Decrypted values, the templates'
//! copies of them and rendered output live in buffers that are wiped when dropped, on error
//! paths too; only the returned Secret holds plaintext.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use sealed_secrets_template::{Data, Template};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::{
    budget::{Budget, BudgetError, MAX_INPUT_BYTES, MAX_TEMPLATE_ENTRIES},
    crypto::Decrypter,
    documents::reorder,
    scope::Scope,
    sealed_secret::{API_VERSION, KIND, SealedSecret, meta_value},
    tagged::TaggedErrors,
};

/// Annotation on `spec.template.metadata` that suppresses the owner reference.
pub const SKIP_SET_OWNER_REFERENCES_ANNOTATION: &str =
    "sealedsecrets.bitnami.com/skip-set-owner-references";

/// Errors opening a SealedSecret. Texts follow upstream; none contains plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// Per-item failures, folded (`no key could decrypt secret (a, b)`).
    #[error("{0}")]
    Items(TaggedErrors),
    /// Both the deprecated `spec.data` and `spec.encryptedData` are set.
    #[error(
        "cannot use the field 'encryptedData' and the deprecated field 'data' at the same time"
    )]
    BothDataFormats,
    /// `spec.data` is used but the deprecated format is switched off.
    #[error("using deprecated 'data' field, use 'encryptedData' or flip the feature flag")]
    DeprecatedDataDisabled,
    /// The deprecated blob opened but is not a v1 Secret.
    #[error("cannot decode the deprecated 'data' field as a Secret: {0}")]
    DeprecatedDataInvalid(String),
    /// The object is larger than one SealedSecret may be ([`crate::budget`]); nothing was
    /// decrypted.
    #[error(transparent)]
    OverBudget(#[from] BudgetError),
}

/// Options for opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnsealOptions {
    /// Accept the deprecated whole-Secret `spec.data` format (controller default: yes;
    /// kubeseal `--recovery-unseal`: no).
    pub accept_deprecated_v1_data: bool,
}

/// Go's `base64.CorruptInputError` text for a `base64` crate error.
pub fn go_base64_error(err: &base64::DecodeError, input_len: usize) -> String {
    let offset = match *err {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => input_len,
    };
    format!("illegal base64 data at input byte {offset}")
}

/// The SealedSecret's OAEP label, from its own metadata only.
pub fn decryption_label(sealed: &SealedSecret) -> Vec<u8> {
    let scope = Scope::from_annotations(sealed.metadata.annotations.as_ref());
    scope.label(
        sealed.metadata.namespace.as_deref().unwrap_or(""),
        sealed.metadata.name.as_deref().unwrap_or(""),
    )
}

/// Opens `sealed` with `keys` and builds the Secret the controller would write.
pub fn unseal(
    sealed: &SealedSecret,
    keys: &dyn Decrypter,
    options: UnsealOptions,
) -> Result<Secret, UnsealError> {
    check_shape(sealed)?;
    let label = decryption_label(sealed);
    let mut secret = match &sealed.spec.data {
        Some(blob) => unseal_deprecated(sealed, &blob.0, keys, &label, options)?,
        None => unseal_items(sealed, keys, &label)?,
    };
    secret.metadata.namespace = sealed.metadata.namespace.clone();
    secret.metadata.name = sealed.metadata.name.clone();
    let skip_owner = sealed
        .spec
        .template
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SKIP_SET_OWNER_REFERENCES_ANNOTATION))
        .is_some_and(|v| v == "true");
    secret.metadata.owner_references = (!skip_owner).then(|| vec![owner_reference(sealed)]);
    Ok(secret)
}

/// The owner reference upstream puts on generated Secrets (no `blockOwnerDeletion`).
pub fn owner_reference(sealed: &SealedSecret) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: KIND.to_string(),
        name: sealed.metadata.name.clone().unwrap_or_default(),
        uid: sealed.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Checks the object against the per-object limits that need no decryption: the entry count and
/// the input size (see [`crate::budget`]). [`unseal`] runs it first; a controller may run it
/// earlier too, to keep an object over budget out of its caches.
pub fn check_shape(sealed: &SealedSecret) -> Result<(), BudgetError> {
    let templates = sealed.spec.template.data.as_ref();
    let count = templates.map_or(0, BTreeMap::len);
    if count > MAX_TEMPLATE_ENTRIES {
        return Err(BudgetError::TemplateEntries { count });
    }
    let entries = |map: &BTreeMap<String, String>| {
        map.iter()
            .fold(0usize, |sum, (k, v)| sum.saturating_add(k.len() + v.len()))
    };
    let size = entries(&sealed.spec.encrypted_data)
        .saturating_add(templates.map_or(0, entries))
        .saturating_add(sealed.spec.data.as_ref().map_or(0, |blob| blob.0.len()));
    if size > MAX_INPUT_BYTES {
        return Err(BudgetError::InputBytes { size });
    }
    Ok(())
}

fn unseal_items(
    sealed: &SealedSecret,
    keys: &dyn Decrypter,
    label: &[u8],
) -> Result<Secret, UnsealError> {
    let template = &sealed.spec.template;
    let mut errors = TaggedErrors::default();
    let mut opened: BTreeMap<String, Zeroizing<Vec<u8>>> = BTreeMap::new();
    for (item, encoded) in &sealed.spec.encrypted_data {
        let ciphertext = match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(bytes) => bytes,
            Err(err) => {
                errors.push(item, go_base64_error(&err, encoded.len()));
                continue;
            }
        };
        match keys.decrypt(&ciphertext, label) {
            Ok(plaintext) => {
                opened.insert(item.clone(), plaintext);
            }
            Err(err) => errors.push(item, err),
        }
    }
    // Templates only ever see a complete set of values: an object whose items did not all open
    // fails here, before any template is parsed or run (upstream renders them anyway).
    if !errors.is_empty() {
        return Err(UnsealError::Items(errors));
    }
    let mut rendered = match &template.data {
        Some(templates) => render_templates(templates, &opened)?,
        None => BTreeMap::new(),
    };

    // A template overrides the item of the same name.
    let mut data: BTreeMap<String, ByteString> = opened
        .iter()
        .filter(|(item, _)| !rendered.contains_key(*item))
        .map(|(item, value)| (item.clone(), ByteString(value.to_vec())))
        .collect();
    for (item, value) in &mut rendered {
        data.insert(item.clone(), ByteString(std::mem::take(&mut **value)));
    }
    Ok(Secret {
        metadata: template.metadata.clone(),
        type_: template.type_.clone(),
        immutable: template.immutable,
        data: Some(data),
        ..Secret::default()
    })
}

/// Renders every `spec.template.data` entry over the opened items, under one [`Budget`].
///
/// All entries are parsed first (cheap, bounded by the input size, and every parse error is
/// reported as upstream does); then they run in key order, stopping at the first error.
fn render_templates(
    templates: &BTreeMap<String, String>,
    opened: &BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, UnsealError> {
    let mut errors = TaggedErrors::default();
    let mut parsed = Vec::with_capacity(templates.len());
    for (item, text) in templates {
        match Template::parse(item, text) {
            Ok(template) => parsed.push((item, template)),
            Err(err) => errors.push(item, err),
        }
    }
    if !errors.is_empty() {
        return Err(UnsealError::Items(errors));
    }
    let data = Data::new(opened);
    let mut budget = Budget::per_object();
    let mut rendered = BTreeMap::new();
    for (item, template) in parsed {
        match template.render(&data, &mut budget) {
            Ok(output) => {
                rendered.insert(item.clone(), output);
            }
            Err(err) => {
                errors.push(item, err);
                return Err(UnsealError::Items(errors));
            }
        }
    }
    Ok(rendered)
}

fn unseal_deprecated(
    sealed: &SealedSecret,
    blob: &[u8],
    keys: &dyn Decrypter,
    label: &[u8],
    options: UnsealOptions,
) -> Result<Secret, UnsealError> {
    if !sealed.spec.encrypted_data.is_empty() {
        return Err(UnsealError::BothDataFormats);
    }
    if !options.accept_deprecated_v1_data {
        return Err(UnsealError::DeprecatedDataDisabled);
    }
    let plaintext = keys.decrypt(blob, label).map_err(|err| {
        let mut errors = TaggedErrors::default();
        errors.push("data", err);
        UnsealError::Items(errors)
    })?;
    // Errors from serde_json name a position, never the content.
    serde_json::from_slice(&plaintext)
        .map_err(|e| UnsealError::DeprecatedDataInvalid(e.to_string()))
}

/// A Secret as upstream's JSON encoder lays it out: `kind, apiVersion, metadata, immutable,
/// data, stringData, type`.
pub fn secret_to_upstream_value(secret: &Secret) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), Value::String("Secret".into()));
    out.insert("apiVersion".into(), Value::String("v1".into()));
    out.insert("metadata".into(), meta_value(&secret.metadata));
    if let Some(immutable) = secret.immutable {
        out.insert("immutable".into(), Value::Bool(immutable));
    }
    if let Some(data) = &secret.data {
        out.insert(
            "data".into(),
            serde_json::to_value(data).unwrap_or_default(),
        );
    }
    if let Some(string_data) = &secret.string_data {
        out.insert(
            "stringData".into(),
            serde_json::to_value(string_data).unwrap_or_default(),
        );
    }
    if let Some(type_) = &secret.type_ {
        out.insert("type".into(), Value::String(type_.clone()));
    }
    reorder(Value::Object(out), &["kind", "apiVersion"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crypto::{SystemRandom, hybrid_encrypt},
        keys::{PrivateKey, test_keys},
        scope::{CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION},
        seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
    };
    use serde_json::json;

    fn sealed_fixture(scope: Scope) -> SealedSecret {
        let secret = secret_from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "shop"}},
            "type": "Opaque",
            "data": {"password": "aHVudGVyMg=="}, "stringData": {"user": "admin"}
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
        seal_secret(
            secret,
            &test_keys::rsa2048_a().public_key(),
            &options,
            &mut SystemRandom,
        )
        .unwrap()
    }

    fn keys() -> Vec<PrivateKey> {
        vec![test_keys::rsa2048_b(), test_keys::rsa2048_a()]
    }

    fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
        secret
            .data
            .clone()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    }

    #[test]
    fn round_trip_per_scope_with_owner_reference() {
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let mut sealed = sealed_fixture(scope);
            sealed.metadata.uid = Some("uid-1".into());
            let secret = unseal(&sealed, &keys(), UnsealOptions::default()).unwrap();
            let data = data_of(&secret);
            assert_eq!(data["password"], b"hunter2");
            assert_eq!(data["user"], b"admin");
            assert_eq!(secret.metadata.labels.unwrap()["app"], "shop");
            let owner = &secret.metadata.owner_references.unwrap()[0];
            assert_eq!(
                (owner.uid.as_str(), owner.controller),
                ("uid-1", Some(true))
            );
        }
    }

    #[test]
    fn renaming_and_moving_respect_the_scope() {
        let cases = [
            (Scope::Strict, "other", "shop", false),
            (Scope::Strict, "db", "elsewhere", false),
            (Scope::NamespaceWide, "other", "shop", true),
            (Scope::NamespaceWide, "db", "elsewhere", false),
            (Scope::ClusterWide, "other", "elsewhere", true),
        ];
        for (scope, name, namespace, opens) in cases {
            let mut sealed = sealed_fixture(scope);
            sealed.metadata.name = Some(name.into());
            sealed.metadata.namespace = Some(namespace.into());
            let result = unseal(&sealed, &keys(), UnsealOptions::default());
            assert_eq!(result.is_ok(), opens, "{scope} {namespace}/{name}");
            if let Ok(secret) = result {
                assert_eq!(secret.metadata.name.as_deref(), Some(name));
                assert_eq!(secret.metadata.namespace.as_deref(), Some(namespace));
            } else {
                assert_eq!(
                    result.unwrap_err().to_string(),
                    "no key could decrypt secret (password, user)"
                );
            }
        }
    }

    #[test]
    fn scope_comes_from_outer_annotations_not_the_template() {
        let mut sealed = sealed_fixture(Scope::ClusterWide);
        sealed.metadata.annotations = None;
        assert!(unseal(&sealed, &keys(), UnsealOptions::default()).is_err());
        let mut sealed = sealed_fixture(Scope::Strict);
        sealed.metadata.annotations = Some(BTreeMap::from([(
            NAMESPACE_WIDE_ANNOTATION.into(),
            "true".into(),
        )]));
        assert!(unseal(&sealed, &keys(), UnsealOptions::default()).is_err());
        let mut sealed = sealed_fixture(Scope::ClusterWide);
        sealed.spec.template.metadata.annotations = None;
        assert!(
            sealed
                .metadata
                .annotations
                .as_ref()
                .unwrap()
                .contains_key(CLUSTER_WIDE_ANNOTATION)
        );
        assert!(unseal(&sealed, &keys(), UnsealOptions::default()).is_ok());
    }

    #[test]
    fn bad_base64_and_bad_ciphertext_are_folded_per_message() {
        let mut sealed = sealed_fixture(Scope::Strict);
        sealed
            .spec
            .encrypted_data
            .insert("broken".into(), "a$b=".into());
        sealed
            .spec
            .encrypted_data
            .insert("short".into(), "AQ==".into());
        let err = unseal(&sealed, &keys(), UnsealOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "illegal base64 data at input byte 1 (broken)\nSealedSecret data is too short (short)"
        );
    }

    #[test]
    fn template_data_renders_over_opened_items_and_overrides_them() {
        let mut sealed = sealed_fixture(Scope::Strict);
        sealed.spec.template.data = Some(BTreeMap::from([
            (
                "dsn".into(),
                "postgres://{{ .user }}:{{ .password }}@db/shop".into(),
            ),
            ("password".into(), "{{ .password | upper }}".into()),
            (
                "config.json".into(),
                "{\"auth\": {{ toJson .user }}}".into(),
            ),
        ]));
        let secret = unseal(&sealed, &keys(), UnsealOptions::default()).unwrap();
        let data = data_of(&secret);
        assert_eq!(data["dsn"], b"postgres://admin:hunter2@db/shop");
        assert_eq!(data["password"], b"HUNTER2");
        assert_eq!(data["config.json"], b"{\"auth\": \"admin\"}");
        assert_eq!(data["user"], b"admin");
    }

    #[test]
    fn template_errors_fail_the_object_without_leaking_values() {
        let mut sealed = sealed_fixture(Scope::Strict);
        sealed.spec.template.data = Some(BTreeMap::from([
            ("leak".into(), "{{ env \"HOME\" }}".into()),
            ("broken".into(), "{{ .password ".into()),
        ]));
        let err = unseal(&sealed, &keys(), UnsealOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("function \"env\" not defined"), "{err}");
        assert!(err.contains("(leak)") && err.contains("(broken)"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("admin"), "{err}");
    }

    /// `sealed_fixture` with `spec.template.data` set to `templates`.
    fn with_templates(templates: &[(&str, &str)]) -> SealedSecret {
        let mut sealed = sealed_fixture(Scope::Strict);
        sealed.spec.template.data = Some(
            templates
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        sealed
    }

    /// The error text of opening `sealed`; it must never contain the fixture's plaintext.
    fn budget_error(sealed: &SealedSecret) -> String {
        let err = unseal(sealed, &keys(), UnsealOptions::default())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2") && !err.contains("admin"), "{err}");
        err
    }

    #[test]
    fn the_measured_attack_fails_on_the_entry_count_before_any_work() {
        // Issue 12: 20,000 entries of `repeat 16777216 "a"` and an item no key opens.
        let mut sealed = sealed_fixture(Scope::Strict);
        sealed.spec.template.data = Some(
            (0..20_000)
                .map(|i| (format!("k{i}"), "{{ repeat 16777216 \"a\" }}".to_string()))
                .collect(),
        );
        sealed
            .spec
            .encrypted_data
            .insert("nobody".into(), "AAAA".into());
        assert_eq!(
            budget_error(&sealed),
            "spec.template.data has 20000 entries, more than the limit of 1024 per SealedSecret"
        );
        assert!(matches!(
            unseal(&sealed, &keys(), UnsealOptions::default()),
            Err(UnsealError::OverBudget(BudgetError::TemplateEntries {
                count: 20_000
            }))
        ));
    }

    #[test]
    fn the_input_size_is_checked_before_decrypting() {
        let big = "x".repeat(MAX_INPUT_BYTES);
        let sealed = with_templates(&[("big", &big)]);
        let err = budget_error(&sealed);
        assert!(
            err.ends_with("more than the limit of 3145728 per SealedSecret"),
            "{err}"
        );
        // Exactly at the limit (ciphertexts, keys and template text) still opens.
        let mut sealed = with_templates(&[("t", "{{ .user }}")]);
        let used: usize = sealed
            .spec
            .encrypted_data
            .iter()
            .chain(sealed.spec.template.data.iter().flatten())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        let comment = format!(
            "{{{{/* {} */}}}}",
            "y".repeat(MAX_INPUT_BYTES - used - "pad".len() - "{{/*  */}}".len())
        );
        let templates = sealed.spec.template.data.as_mut().unwrap();
        templates.insert("pad".into(), comment);
        let secret = unseal(&sealed, &keys(), UnsealOptions::default()).unwrap();
        assert_eq!(data_of(&secret)["t"], b"admin");
        assert_eq!(data_of(&secret)["pad"], b"");
        sealed
            .spec
            .template
            .data
            .as_mut()
            .unwrap()
            .insert("u".into(), String::new());
        assert!(budget_error(&sealed).contains("hold 3145729 bytes"));
    }

    #[test]
    fn rendered_bytes_are_one_budget_for_all_entries() {
        // 700,000 bytes each: either alone fits in 1 MiB, both do not.
        let one = "{{ repeat 100000 .password }}";
        let secret = unseal(
            &with_templates(&[("a", one)]),
            &keys(),
            UnsealOptions::default(),
        )
        .unwrap();
        assert_eq!(data_of(&secret)["a"].len(), 700_000);
        let err = budget_error(&with_templates(&[("a", one), ("b", one)]));
        assert_eq!(
            err,
            "template: b: the SealedSecret's templates rendered more than 1048576 bytes (limit per SealedSecret) (b)"
        );
    }

    #[test]
    fn steps_and_allocations_are_one_budget_for_all_entries() {
        let loop_ = "{{ range 1200000 }}{{ end }}";
        assert!(
            unseal(
                &with_templates(&[("a", loop_)]),
                &keys(),
                UnsealOptions::default()
            )
            .is_ok()
        );
        let err = budget_error(&with_templates(&[("a", loop_), ("b", loop_)]));
        assert!(
            err.contains("ran more than 2000000 operations (limit per SealedSecret)"),
            "{err}"
        );
        // 4,000,000 bytes produced (and dropped) per entry: eight fit in 32 MiB, nine do not.
        let alloc = "{{ $x := repeat 4000000 \"a\" }}ok";
        let eight: Vec<(String, &str)> = (0..8).map(|i| (format!("k{i}"), alloc)).collect();
        let eight: Vec<(&str, &str)> = eight.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert!(unseal(&with_templates(&eight), &keys(), UnsealOptions::default()).is_ok());
        let mut nine = eight.clone();
        nine.push(("k8", alloc));
        let err = budget_error(&with_templates(&nine));
        assert_eq!(
            err,
            "template: k8: the SealedSecret's template functions produced more than 33554432 bytes (limit per SealedSecret) (k8)"
        );
    }

    #[test]
    fn no_template_runs_unless_every_item_opened() {
        // A template with a parse error would add its own message if templates were looked at.
        let mut sealed = with_templates(&[
            ("broken", "{{ .password "),
            ("slow", "{{ range 100000000 }}{{ end }}"),
        ]);
        sealed
            .spec
            .encrypted_data
            .insert("stranger".into(), "AAAA".into());
        assert_eq!(
            budget_error(&sealed),
            "no key could decrypt secret (stranger)"
        );
    }

    #[test]
    fn rendering_stops_at_the_first_execution_error() {
        let sealed = with_templates(&[
            ("a", "{{ fail \"first\" }}"),
            ("b", "{{ fail \"second\" }}"),
        ]);
        let err = budget_error(&sealed);
        assert!(err.contains("first") && !err.contains("second"), "{err}");
        assert!(err.ends_with("(a)"), "{err}");
    }

    #[test]
    fn skip_owner_references_annotation_is_honoured() {
        let mut sealed = sealed_fixture(Scope::Strict);
        sealed.spec.template.metadata.annotations = Some(BTreeMap::from([(
            SKIP_SET_OWNER_REFERENCES_ANNOTATION.into(),
            "true".into(),
        )]));
        let secret = unseal(&sealed, &keys(), UnsealOptions::default()).unwrap();
        assert_eq!(secret.metadata.owner_references, None);
    }

    #[test]
    fn deprecated_whole_secret_format() {
        let key = test_keys::rsa2048_a();
        let inner = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ignored"},
                           "data": {"k": "dg=="}});
        let blob = hybrid_encrypt(
            &key.public_key(),
            inner.to_string().as_bytes(),
            b"ns/legacy",
            &mut SystemRandom,
        )
        .unwrap();
        let mut sealed = SealedSecret::new("legacy", Default::default());
        sealed.metadata.namespace = Some("ns".into());
        sealed.spec.data = Some(ByteString(blob));
        let accept = UnsealOptions {
            accept_deprecated_v1_data: true,
        };
        let secret = unseal(&sealed, &keys(), accept).unwrap();
        assert_eq!(secret.metadata.name.as_deref(), Some("legacy"));
        assert_eq!(data_of(&secret)["k"], b"v");
        assert_eq!(
            unseal(&sealed, &keys(), UnsealOptions::default()).unwrap_err(),
            UnsealError::DeprecatedDataDisabled
        );
        sealed.spec.encrypted_data.insert("x".into(), "eA==".into());
        assert_eq!(
            unseal(&sealed, &keys(), accept).unwrap_err().to_string(),
            "cannot use the field 'encryptedData' and the deprecated field 'data' at the same time"
        );
    }

    #[test]
    fn secret_output_has_upstream_field_order() {
        let sealed = sealed_fixture(Scope::Strict);
        let secret = unseal(&sealed, &keys(), UnsealOptions::default()).unwrap();
        let value = secret_to_upstream_value(&secret);
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata", "data", "type"]);
    }
}
