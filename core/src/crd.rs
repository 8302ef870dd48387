//! The `SealedSecret` CustomResourceDefinition, as committed under `crds/` at the workspace root.
//!
//! The schema is derived from the Rust types in [`crate::sealed_secret`], whose `schemars`
//! attributes shape it after upstream's shipped CRD (helm `crds/bitnami.com_sealedsecrets.yaml`).
//! [`crd`] then fills in the few things `#[derive(CustomResource)]` cannot express: `listKind`,
//! the top-level `apiVersion`/`kind`/`metadata` properties, no `title`, and a non-nullable
//! `status` — all as upstream's. `core/tests/crd.rs` fails when the committed YAML is stale.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;

use crate::documents::to_sorted_yaml;
use crate::sealed_secret::SealedSecret;

/// Path of the committed CRD, relative to the workspace root.
pub const CRD_PATH: &str = "crds/bitnami.com_sealedsecrets.yaml";

/// The command that regenerates [`CRD_PATH`].
pub const REGENERATE_COMMAND: &str = "UPDATE_CRDS=1 cargo test -p sealed-secrets-core --test crd";

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The SealedSecret CRD: [`SealedSecret::crd`] completed the way upstream's CRD is.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = SealedSecret::crd();
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        schema.title = None;
        let properties = schema.properties.get_or_insert_with(Default::default);
        if let Some(status) = properties.get_mut("status") {
            status.nullable = None;
        }
        properties.insert(
            "apiVersion".into(),
            string_property(API_VERSION_DESCRIPTION),
        );
        properties.insert("kind".into(), string_property(KIND_DESCRIPTION));
        properties.insert(
            "metadata".into(),
            JSONSchemaProps {
                type_: Some("object".into()),
                ..Default::default()
            },
        );
    }
    crd
}

fn string_property(description: &str) -> JSONSchemaProps {
    JSONSchemaProps {
        description: Some(description.into()),
        type_: Some("string".into()),
        ..Default::default()
    }
}

/// The CRD as deterministic, key-sorted YAML with a header naming its source, as committed at
/// [`CRD_PATH`].
pub fn crd_yaml() -> String {
    crd_file(&crd(), "core/src/sealed_secret.rs", REGENERATE_COMMAND)
}

/// A CRD as committed under `crds/`: a header naming the Rust source and the command that
/// regenerates it, then key-sorted YAML (deterministic, so a stale file shows as a diff).
pub fn crd_file(crd: &CustomResourceDefinition, source: &str, regenerate: &str) -> String {
    // Serialising a k8s-openapi type to a `Value` cannot fail.
    let value = serde_json::to_value(crd).unwrap_or_default();
    format!(
        "# Generated from {source}; regenerate with: {regenerate}\n{}",
        to_sorted_yaml(&value)
    )
}
