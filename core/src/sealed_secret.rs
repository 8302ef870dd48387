//! The `SealedSecret` custom resource (`bitnami.com/v1alpha1`), field for field as upstream.
//!
//! The `schemars` attributes shape the derived CRD schema after upstream's shipped CRD (helm
//! `crds/bitnami.com_sealedsecrets.yaml`): optional fields are not `nullable` except where
//! upstream's are, no `default`s are injected, and `template.metadata` is the short
//! preserve-unknown-fields object rather than the whole `ObjectMeta` schema. See [`crate::crd`].
//!
//! Two details of upstream's Go types matter for compatibility and are kept here:
//! - `spec.template` and its `metadata` are Go structs, so they are always present in output;
//! - `spec.encryptedData` is decoded leniently: malformed content becomes an empty map instead of
//!   failing the whole object, so one bad object cannot wedge a watch.

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::documents::reorder_object_meta;

/// API group of SealedSecrets.
pub const GROUP: &str = "bitnami.com";
/// The only API version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of SealedSecrets.
pub const API_VERSION: &str = "bitnami.com/v1alpha1";
/// Kind of SealedSecrets.
pub const KIND: &str = "SealedSecret";
/// Annotation on a SealedSecret's own metadata recording the fingerprint
/// ([`crate::keys::PublicKey::fingerprint`]) of the certificate it was sealed with, written when
/// kubeseal seals for a repository's environment so `kubeseal lint` can tell, offline, a file
/// sealed for another environment. Upstream's controller and kubeseal ignore unknown annotations
/// on the SealedSecret itself (the Secret is built from `spec.template` only).
pub const CERTIFICATE_ANNOTATION: &str = "sealed-secrets-rs.io/sealed-with-certificate";
/// Annotation recording the `namespace/name` a SealedSecret was sealed for when that is not the
/// name written in its file: kubeseal seals a file under a kustomize overlay for the name the
/// overlay renders (`db` → `db-prod`), and `kubeseal lint` reads this instead of guessing from
/// the written name. Ignored by upstream, like [`CERTIFICATE_ANNOTATION`].
pub const SEALED_FOR_ANNOTATION: &str = "sealed-secrets-rs.io/sealed-for";
/// The [`SEALED_FOR_ANNOTATION`] value for an identity: `namespace/name` (`/name` when it has
/// no namespace, as cluster-wide objects).
pub fn sealed_for_value(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

/// Reads a [`SEALED_FOR_ANNOTATION`] value: the namespace (if any) and the name.
pub fn parse_sealed_for(value: &str) -> Option<(Option<&str>, &str)> {
    let (namespace, name) = value.split_once('/')?;
    (!name.is_empty()).then_some(((!namespace.is_empty()).then_some(namespace), name))
}

/// The identity an object (as a JSON value) records it was sealed for, if it records one.
pub fn recorded_sealed_for(object: &Value) -> Option<(Option<&str>, &str)> {
    parse_sealed_for(
        object
            .pointer("/metadata/annotations")?
            .get(SEALED_FOR_ANNOTATION)?
            .as_str()?,
    )
}

/// The object renamed to the identity it records it was sealed for, which is the identity it
/// opens under (what a controller's `/v1/rotate` or an offline re-encryption must see); `None`
/// when it records none.
pub fn renamed_to_sealed_for(object: &Value) -> Option<Value> {
    let (namespace, name) = recorded_sealed_for(object)?;
    let mut renamed = object.clone();
    if let Some(meta) = renamed.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), Value::from(name));
        match namespace {
            Some(namespace) => meta.insert("namespace".into(), Value::from(namespace)),
            None => meta.remove("namespace"),
        };
    }
    Some(renamed)
}

/// Annotations kubeseal strips from the template because they can hold the plaintext (#227).
pub const LAST_APPLIED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
];

/// Desired state of a SealedSecret: the encrypted items and the template of the Secret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "bitnami.com",
    version = "v1alpha1",
    kind = "SealedSecret",
    plural = "sealedsecrets",
    namespaced,
    status = "SealedSecretStatus",
    doc = "A Secret sealed (encrypted) with the controller's key; the controller unseals it into a Secret of the same name.",
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[0].message"}"#,
    printcolumn = r#"{"name": "Synced", "type": "string", "jsonPath": ".status.conditions[0].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = spec_schema)]
pub struct SealedSecretSpec {
    /// Metadata, type and templated data of the Secret to create.
    #[serde(default)]
    pub template: SecretTemplateSpec,
    /// Deprecated: the whole Secret as JSON, sealed as one value (kubeseal before 0.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "byte_string_schema")]
    pub data: Option<ByteString>,
    /// Item name to base64 of one hybrid ciphertext.
    #[serde(default, deserialize_with = "lenient_string_map")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub encrypted_data: BTreeMap<String, String>,
}

/// What the generated Secret looks like apart from its data.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = drop_property_defaults)]
pub struct SecretTemplateSpec {
    /// Labels, annotations and other metadata copied to the Secret.
    #[serde(default)]
    #[schemars(schema_with = "template_metadata_schema")]
    pub metadata: ObjectMeta,
    /// Secret type (`Opaque`, `kubernetes.io/tls`, ...).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub type_: Option<String>,
    /// Whether the Secret is created immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub immutable: Option<bool>,
    /// Go text/template strings rendered with the decrypted items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// Observed state written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// Generation of the spec the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "i64")]
    pub observed_generation: Option<i64>,
    /// The `Synced` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<SealedSecretCondition>")]
    pub conditions: Option<Vec<SealedSecretCondition>>,
    /// Fingerprint of the sealing key that opened this object last (not in upstream's CRD).
    /// Lets a restarted controller try that key first instead of all of them; with upstream's
    /// CRD the API server prunes it and nothing else changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub key_fingerprint: Option<String>,
}

/// One status condition (upstream only writes type `Synced`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretCondition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the condition was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub last_update_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub last_transition_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub reason: Option<String>,
    /// Human-readable message (the error text on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub message: Option<String>,
}

/// `spec`: `encryptedData` is required (as upstream, although serde defaults it) and no
/// property carries a `default`, which the API server would otherwise write into stored objects.
fn spec_schema(schema: &mut Schema) {
    drop_property_defaults(schema);
    schema.insert("required".into(), serde_json::json!(["encryptedData"]));
}

/// Removes the `default` schemars derives from `#[serde(default)]` on each property.
fn drop_property_defaults(schema: &mut Schema) {
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for property in properties.values_mut() {
            if let Value::Object(property) = property {
                property.remove("default");
            }
        }
    }
}

/// `spec.data`: base64 in JSON, as Go's `[]byte`.
fn byte_string_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "byte"})
}

/// Condition timestamps (`metav1.Time`), not nullable.
fn date_time_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date-time"})
}

/// `spec.template.metadata`: upstream's short metadata schema, unknown fields preserved, rather
/// than the whole `ObjectMeta` schema.
fn template_metadata_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "name": {"type": "string"},
            "namespace": {"type": "string"},
        },
    })
}

/// Accepts a map of strings; anything else (wrong types, null) becomes an empty map, as upstream.
fn lenient_string_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    let Value::Object(map) = value else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        match v {
            Value::String(s) => {
                out.insert(k, s);
            }
            _ => return Ok(BTreeMap::new()),
        }
    }
    Ok(out)
}

impl SealedSecret {
    /// The object as upstream's JSON encoder lays it out: `kind, apiVersion, metadata, spec
    /// {template {metadata, type, immutable, data}, data, encryptedData}, status`.
    pub fn to_upstream_value(&self) -> Value {
        let mut template = serde_json::Map::new();
        template.insert("metadata".into(), meta_value(&self.spec.template.metadata));
        if let Some(t) = &self.spec.template.type_ {
            template.insert("type".into(), Value::String(t.clone()));
        }
        if let Some(i) = self.spec.template.immutable {
            template.insert("immutable".into(), Value::Bool(i));
        }
        if let Some(d) = &self.spec.template.data {
            template.insert("data".into(), serde_json::to_value(d).unwrap_or_default());
        }
        let mut spec = serde_json::Map::new();
        spec.insert("template".into(), Value::Object(template));
        if let Some(d) = &self.spec.data {
            spec.insert("data".into(), serde_json::to_value(d).unwrap_or_default());
        }
        spec.insert(
            "encryptedData".into(),
            serde_json::to_value(&self.spec.encrypted_data).unwrap_or_default(),
        );
        let mut out = serde_json::Map::new();
        out.insert("kind".into(), Value::String(KIND.into()));
        out.insert("apiVersion".into(), Value::String(API_VERSION.into()));
        out.insert("metadata".into(), meta_value(&self.metadata));
        out.insert("spec".into(), Value::Object(spec));
        if let Some(status) = &self.status {
            out.insert(
                "status".into(),
                serde_json::to_value(status).unwrap_or_default(),
            );
        }
        Value::Object(out)
    }

    /// Reads a SealedSecret from a JSON value, requiring upstream's `apiVersion` and `kind`.
    pub fn from_value(value: Value) -> Result<Self, SealedSecretParseError> {
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != API_VERSION || kind != KIND {
            return Err(SealedSecretParseError::WrongKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            });
        }
        serde_json::from_value(value).map_err(|e| SealedSecretParseError::Invalid(e.to_string()))
    }
}

/// An object that is not a well-formed SealedSecret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealedSecretParseError {
    /// Not `bitnami.com/v1alpha1` `SealedSecret`.
    #[error(
        "unexpected resource type: apiVersion {api_version:?}, kind {kind:?} (expected bitnami.com/v1alpha1 SealedSecret)"
    )]
    WrongKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// Fields of the wrong type.
    #[error("invalid SealedSecret: {0}")]
    Invalid(String),
}

/// `ObjectMeta` as a value in Go's field order, empty maps and lists dropped (`omitempty`).
pub(crate) fn meta_value(meta: &ObjectMeta) -> Value {
    let mut value = serde_json::to_value(meta).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| match v {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        });
    }
    reorder_object_meta(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_encrypted_data_becomes_empty_instead_of_failing() {
        let ss = SealedSecret::from_value(json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "a"},
            "spec": {"encryptedData": {"k": 5}}
        }))
        .unwrap();
        assert!(ss.spec.encrypted_data.is_empty());
    }

    #[test]
    fn other_kinds_are_refused() {
        let err =
            SealedSecret::from_value(json!({"apiVersion": "v1", "kind": "Secret"})).unwrap_err();
        assert!(matches!(err, SealedSecretParseError::WrongKind { .. }));
    }

    #[test]
    fn upstream_layout_puts_kind_first_and_template_before_encrypted_data() {
        let mut ss = SealedSecret::new("n", SealedSecretSpec::default());
        ss.metadata.namespace = Some("ns".into());
        ss.spec.encrypted_data.insert("b".into(), "x".into());
        ss.spec.encrypted_data.insert("a".into(), "y".into());
        let value = ss.to_upstream_value();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata", "spec"]);
        let spec_keys: Vec<&String> = value["spec"].as_object().unwrap().keys().collect();
        assert_eq!(spec_keys, ["template", "encryptedData"]);
        assert_eq!(value["spec"]["template"], json!({"metadata": {}}));
        let items: Vec<&String> = value["spec"]["encryptedData"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(items, ["a", "b"]);
    }

    #[test]
    fn sealed_for_identities_round_trip_and_rename_the_object() {
        assert_eq!(sealed_for_value(Some("prod"), "db-prod"), "prod/db-prod");
        assert_eq!(
            parse_sealed_for("prod/db-prod"),
            Some((Some("prod"), "db-prod"))
        );
        assert_eq!(
            parse_sealed_for(&sealed_for_value(None, "db")),
            Some((None, "db"))
        );
        assert_eq!(parse_sealed_for("prod/"), None);
        assert_eq!(parse_sealed_for("no-slash"), None);
        let object = serde_json::json!({"metadata": {"name": "db", "namespace": "shop",
            "annotations": {SEALED_FOR_ANNOTATION: "prod/db-prod"}}});
        let renamed = renamed_to_sealed_for(&object).unwrap();
        assert_eq!(renamed["metadata"]["name"], "db-prod");
        assert_eq!(renamed["metadata"]["namespace"], "prod");
        assert_eq!(
            renamed_to_sealed_for(&serde_json::json!({"metadata": {"name": "x"}})),
            None
        );
    }
}
