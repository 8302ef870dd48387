//! The checks on single objects: raw Secrets, and SealedSecrets that the controller would
//! refuse or fail to open.
//!
//! Checks read the raw JSON value rather than the typed `SealedSecret`, because the typed
//! decoder is lenient on purpose (a malformed `encryptedData` becomes empty so one bad object
//! cannot wedge the controller's watch) and the lint must see exactly what is wrong.
//! Values are decoded and opened but never printed.

use base64::Engine;
use serde_json::{Map, Value};

use sealed_secrets_core::{
    crypto::{GCM_TAG_LEN, split_ciphertext},
    keys::PrivateKey,
    scope::{CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION, Scope},
    sealed_secret::{GROUP, KIND},
    unseal::go_base64_error,
};

use super::{
    docs::Document,
    findings::{self as rules, Finding, Location},
};

/// Settings shared by every check.
#[derive(Debug, Default)]
pub struct Context {
    /// Secret types allowed to be committed with data.
    pub allowed_secret_types: Vec<String>,
    /// RSA block size of the `--cert` key, in bytes.
    pub cert_key_bytes: Option<usize>,
    /// Keys from `--recovery-private-key`: every value must open with them.
    pub keys: Vec<PrivateKey>,
}

/// Where an object's text is, to turn key paths into lines.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// File shown to users.
    pub file: &'a str,
    /// The document holding the object, if known.
    pub doc: Option<&'a Document>,
    /// Whether key paths can be looked up (not for the items of a `List`).
    pub keyed: bool,
}

impl Place<'_> {
    /// The location of `path` inside the object (its first line for an empty path).
    pub fn at(&self, path: &[&str]) -> Location {
        let line = self.doc.map(|d| {
            if self.keyed && !path.is_empty() {
                d.key_line(path)
            } else {
                d.line()
            }
        });
        Location::new(self.file, line)
    }
}

/// The objects of a document: the document itself, or the items of a `List`.
pub fn objects(value: &Value) -> Vec<(&Value, bool)> {
    let kind = kind_of(value);
    match value.get("items").and_then(Value::as_array) {
        Some(items) if kind.ends_with("List") => items.iter().map(|v| (v, false)).collect(),
        _ => vec![(value, true)],
    }
}

fn kind_of(value: &Value) -> &str {
    value.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn meta_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get("metadata")?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// `metadata.name` (may be empty).
pub fn name_of(value: &Value) -> &str {
    meta_str(value, "name").unwrap_or("")
}

/// `metadata.namespace`, if set and not empty.
pub fn namespace_of(value: &Value) -> Option<&str> {
    meta_str(value, "namespace")
}

/// `namespace/name`, or `name` without a namespace.
pub fn identity(value: &Value) -> String {
    match namespace_of(value) {
        Some(ns) => format!("{ns}/{}", name_of(value)),
        None => name_of(value).to_string(),
    }
}

/// Whether the object is a plain `v1` Secret.
pub fn is_secret(value: &Value) -> bool {
    kind_of(value) == "Secret" && value.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// Whether the object is a SealedSecret (any version of the `bitnami.com` group).
pub fn is_sealed_secret(value: &Value) -> bool {
    kind_of(value) == KIND
        && value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.split('/').next() == Some(GROUP))
}

/// The scope the object's own annotations select (what the controller uses to open it).
pub fn scope_of(value: &Value) -> Scope {
    let annotations: Option<std::collections::BTreeMap<String, String>> = value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        });
    Scope::from_annotations(annotations.as_ref())
}

/// `raw-secret`: a Secret committed with data.
pub fn check_secret(value: &Value, ctx: &Context, place: Place<'_>, via: &str) -> Vec<Finding> {
    let secret_type = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Opaque");
    if ctx.allowed_secret_types.iter().any(|t| t == secret_type) {
        return Vec::new();
    }
    let mut items: Vec<&str> = Vec::new();
    let mut fields: Vec<&str> = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(map) = value.get(field).and_then(Value::as_object)
            && !map.is_empty()
        {
            fields.push(field);
            items.extend(map.keys().map(String::as_str));
        }
    }
    if items.is_empty() {
        return Vec::new();
    }
    items.sort_unstable();
    items.dedup();
    vec![Finding::new(
        rules::RAW_SECRET,
        place.at(&[]),
        format!(
            "Secret \"{}\"{via} (type {secret_type}) is committed in plain text: {} {} in {}; \
             commit a SealedSecret instead",
            identity(value),
            items.len(),
            if items.len() == 1 { "item" } else { "items" },
            fields.join(" and "),
        ),
    )]
}

/// A sealed value that decoded and split, ready to be opened.
#[derive(Debug)]
pub struct Sealed {
    /// Item name (`data` for the deprecated whole-Secret field).
    pub item: String,
    /// The ciphertext bytes.
    pub bytes: Vec<u8>,
    /// The key path of the item, for its line.
    pub path: Vec<String>,
}

/// Shape checks of a SealedSecret; returns the findings and the values that can be opened.
pub fn check_sealed_structure(
    value: &Value,
    ctx: &Context,
    place: Place<'_>,
) -> (Vec<Finding>, Vec<Sealed>) {
    let who = format!("SealedSecret \"{}\"", identity(value));
    let mut findings = Vec::new();
    let mut sealed = Vec::new();

    if name_of(value).is_empty() {
        findings.push(Finding::new(
            rules::MALFORMED,
            place.at(&["metadata"]),
            format!("{who} has no metadata.name"),
        ));
    }
    check_scope_annotations(value, &who, place, &mut findings);

    let spec = value.get("spec").filter(|s| !s.is_null());
    let Some(spec) = spec.and_then(Value::as_object) else {
        let message = if spec.is_some() {
            format!("{who}: spec is not a mapping")
        } else {
            format!("{who} has no spec")
        };
        let rule = if spec.is_some() {
            rules::MALFORMED
        } else {
            rules::EMPTY_ENCRYPTED_DATA
        };
        findings.push(Finding::new(rule, place.at(&[]), message));
        return (findings, sealed);
    };

    let items = encrypted_items(spec, &who, place, &mut findings);
    let deprecated = spec.get("data").filter(|d| !d.is_null());
    match (deprecated, items.is_empty()) {
        (Some(_), false) => findings.push(Finding::new(
            rules::BOTH_DATA_FORMATS,
            place.at(&["spec", "data"]),
            format!(
                "{who} sets both the deprecated spec.data and spec.encryptedData; the \
                 controller refuses it"
            ),
        )),
        (Some(_), true) => findings.push(Finding::new(
            rules::DEPRECATED_DATA,
            place.at(&["spec", "data"]),
            format!("{who} uses the deprecated whole-Secret spec.data field"),
        )),
        (None, true) if !findings.iter().any(|f| f.rule == rules::MALFORMED.id) => {
            findings.push(Finding::new(
                rules::EMPTY_ENCRYPTED_DATA,
                place.at(&["spec", "encryptedData"]),
                format!("{who} has no items in spec.encryptedData"),
            ));
        }
        (None, _) => {}
    }

    let mut values: Vec<(String, Vec<String>, &str)> = items
        .into_iter()
        .map(|(item, text)| {
            let path = vec!["spec".into(), "encryptedData".into(), item.clone()];
            (format!("item \"{item}\""), path, text)
        })
        .collect();
    if let Some(text) = deprecated.and_then(Value::as_str) {
        values.push(("spec.data".into(), vec!["spec".into(), "data".into()], text));
    } else if deprecated.is_some() {
        findings.push(Finding::new(
            rules::MALFORMED,
            place.at(&["spec", "data"]),
            format!("{who}: spec.data is not a string"),
        ));
    }

    for (what, path, text) in values {
        let path_refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let location = place.at(&path_refs);
        let bytes = match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => bytes,
            Err(err) => {
                findings.push(Finding::new(
                    rules::INVALID_BASE64,
                    location,
                    format!(
                        "{who}: {what} is not valid base64 ({})",
                        go_base64_error(&err, text.len())
                    ),
                ));
                continue;
            }
        };
        match check_ciphertext(&bytes, ctx) {
            Ok(()) => sealed.push(Sealed {
                item: what,
                bytes,
                path,
            }),
            Err((rule, problem)) => {
                findings.push(Finding::new(
                    rule,
                    location,
                    format!("{who}: {what} {problem}"),
                ));
            }
        }
    }
    (findings, sealed)
}

/// Length prefix and key size of one decoded value.
fn check_ciphertext(bytes: &[u8], ctx: &Context) -> Result<(), (rules::Rule, String)> {
    let truncated = |problem: String| (rules::TRUNCATED, problem);
    let parts = split_ciphertext(bytes).map_err(|_| {
        truncated(match bytes {
            [hi, lo, rest @ ..] => format!(
                "announces a {}-byte RSA block but only {} bytes follow its length prefix",
                u16::from_be_bytes([*hi, *lo]),
                rest.len()
            ),
            _ => format!(
                "is {} bytes long, too short for a length prefix",
                bytes.len()
            ),
        })
    })?;
    if parts.rsa.is_empty() {
        return Err(truncated("announces an empty RSA block".into()));
    }
    if parts.aes.len() < GCM_TAG_LEN {
        return Err(truncated(format!(
            "has {} bytes after its {}-byte RSA block, fewer than the {GCM_TAG_LEN}-byte AES-GCM tag",
            parts.aes.len(),
            parts.rsa.len()
        )));
    }
    if let Some(expected) = ctx.cert_key_bytes
        && parts.rsa.len() != expected
    {
        return Err((
            rules::KEY_SIZE_MISMATCH,
            format!(
                "has a {}-byte RSA block (a {}-bit key) but the certificate's key is {}-bit",
                parts.rsa.len(),
                parts.rsa.len() * 8,
                expected * 8
            ),
        ));
    }
    Ok(())
}

fn encrypted_items<'a>(
    spec: &'a Map<String, Value>,
    who: &str,
    place: Place<'_>,
    findings: &mut Vec<Finding>,
) -> Vec<(String, &'a str)> {
    let mut items = Vec::new();
    match spec.get("encryptedData") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (item, value) in map {
                match value.as_str() {
                    Some(text) => items.push((item.clone(), text)),
                    None => findings.push(Finding::new(
                        rules::MALFORMED,
                        place.at(&["spec", "encryptedData", item]),
                        format!(
                            "{who}: item \"{item}\" of spec.encryptedData is not a string; the \
                             controller ignores the whole encryptedData then"
                        ),
                    )),
                }
            }
        }
        Some(_) => findings.push(Finding::new(
            rules::MALFORMED,
            place.at(&["spec", "encryptedData"]),
            format!("{who}: spec.encryptedData is not a mapping of item names to strings"),
        )),
    }
    items
}

fn check_scope_annotations(
    value: &Value,
    who: &str,
    place: Place<'_>,
    findings: &mut Vec<Finding>,
) {
    let Some(annotations) = value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    else {
        return;
    };
    for key in [CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION] {
        let Some(v) = annotations.get(key) else {
            continue;
        };
        if v.as_str() == Some("true") {
            continue;
        }
        findings.push(Finding::new(
            rules::UNKNOWN_SCOPE_ANNOTATION,
            place.at(&["metadata", "annotations", key]),
            format!(
                "{who}: annotation {key} is {v}; only \"true\" selects a scope, any other value \
                 means strict"
            ),
        ));
    }
}

/// Checks of the object as it will be applied: a namespace for scoped objects. (Whether its
/// values open under that name and namespace is [`super::proof`]'s.)
pub fn check_sealed_state(value: &Value, place: Place<'_>, via: &str) -> Vec<Finding> {
    let who = format!("SealedSecret \"{}\"{via}", identity(value));
    let scope = scope_of(value);
    let mut findings = Vec::new();
    if namespace_of(value).is_none() && scope != Scope::ClusterWide {
        findings.push(Finding::new(
            rules::MISSING_NAMESPACE,
            place.at(&["metadata"]),
            format!(
                "{who} is {scope} but has no namespace; it was sealed for a specific namespace \
                 and opens only there"
            ),
        ));
    }
    findings
}
