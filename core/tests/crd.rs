//! The committed CRD (`crds/bitnami.com_sealedsecrets.yaml`) must match the one generated from
//! the Rust types; `UPDATE_CRDS=1` rewrites it. Key facts of upstream's CRD are asserted too, so
//! a regression in the derive is caught even when the file is regenerated without a look.

use std::path::PathBuf;

use kube::CustomResourceExt;
use sealed_secrets_core::crd::{CRD_PATH, REGENERATE_COMMAND, crd, crd_yaml};
use sealed_secrets_core::documents::parse_documents;
use sealed_secrets_core::sealed_secret::SealedSecret;
use serde_json::{Value, json};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_PATH)
}

#[test]
fn committed_crd_is_up_to_date() {
    let path = committed_path();
    let generated = crd_yaml();
    if std::env::var_os("UPDATE_CRDS").is_some_and(|v| !v.is_empty()) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{CRD_PATH} is stale; regenerate it with:\n\n    {REGENERATE_COMMAND}\n"
    );
}

#[test]
fn generated_yaml_reads_back_as_the_crd() {
    let docs = parse_documents(crd_yaml().as_bytes()).unwrap();
    assert_eq!(docs, [serde_json::to_value(crd()).unwrap()]);
}

fn crd_value() -> Value {
    serde_json::to_value(crd()).unwrap()
}

#[test]
fn identity_matches_upstream() {
    let crd = crd_value();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "sealedsecrets.bitnami.com");
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "bitnami.com");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(
        spec["names"],
        json!({
            "kind": "SealedSecret",
            "listKind": "SealedSecretList",
            "plural": "sealedsecrets",
            "singular": "sealedsecret",
        })
    );
    let versions = spec["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    let version = &versions[0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["served"], true);
    assert_eq!(version["storage"], true);
    assert_eq!(version["subresources"], json!({"status": {}}));
    assert_eq!(
        version["additionalPrinterColumns"],
        json!([
            {"name": "Status", "type": "string", "jsonPath": ".status.conditions[0].message"},
            {"name": "Synced", "type": "string", "jsonPath": ".status.conditions[0].status"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ])
    );
}

#[test]
fn schema_matches_upstream() {
    let crd = crd_value();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(root["type"], "object");
    assert_eq!(root["required"], json!(["spec"]));
    assert_eq!(root["properties"]["metadata"], json!({"type": "object"}));

    let spec = &root["properties"]["spec"];
    assert_eq!(spec["required"], json!(["encryptedData"]));
    let props = &spec["properties"];
    assert_eq!(props["data"]["type"], "string");
    assert_eq!(props["data"]["format"], "byte");
    let encrypted = &props["encryptedData"];
    assert_eq!(encrypted["type"], "object");
    assert_eq!(encrypted["additionalProperties"], json!({"type": "string"}));
    assert_eq!(encrypted["x-kubernetes-preserve-unknown-fields"], true);

    let template = &props["template"]["properties"];
    assert_eq!(template["data"]["nullable"], true);
    assert_eq!(
        template["data"]["additionalProperties"],
        json!({"type": "string"})
    );
    assert_eq!(template["immutable"]["type"], "boolean");
    assert_eq!(template["type"]["type"], "string");
    let meta = &template["metadata"];
    assert_eq!(meta["nullable"], true);
    assert_eq!(meta["x-kubernetes-preserve-unknown-fields"], true);
    let meta_keys: Vec<&String> = meta["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        meta_keys,
        ["annotations", "finalizers", "labels", "name", "namespace"]
    );

    let status = &root["properties"]["status"]["properties"];
    assert_eq!(
        status["observedGeneration"],
        json!({"type": "integer", "format": "int64", "description": status["observedGeneration"]["description"]})
    );
    let condition = &status["conditions"]["items"];
    assert_eq!(condition["required"], json!(["status", "type"]));
    for field in ["type", "status", "reason", "message"] {
        assert_eq!(condition["properties"][field]["type"], "string", "{field}");
    }
    for field in ["lastUpdateTime", "lastTransitionTime"] {
        assert_eq!(condition["properties"][field]["type"], "string", "{field}");
        assert_eq!(
            condition["properties"][field]["format"], "date-time",
            "{field}"
        );
    }
}

/// Structural-schema and apiserver rules the derive could silently break: no `default`s
/// injected into stored objects, no `$ref`/`anyOf`/`title`-style leftovers, every node typed.
#[test]
fn schema_is_structural_without_defaults() {
    fn walk(path: &str, node: &Value) {
        let obj = node
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not an object"));
        for banned in [
            "default",
            "$ref",
            "anyOf",
            "oneOf",
            "allOf",
            "definitions",
            "$defs",
        ] {
            assert!(!obj.contains_key(banned), "{path}: has {banned}");
        }
        assert!(obj.contains_key("type"), "{path}: no type");
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (k, v) in props {
                walk(&format!("{path}.{k}"), v);
            }
        }
        if let Some(items) = obj.get("items") {
            walk(&format!("{path}[]"), items);
        }
        if let Some(extra @ Value::Object(_)) = obj.get("additionalProperties") {
            walk(&format!("{path}{{}}"), extra);
        }
    }
    let crd = crd_value();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert!(root.get("title").is_none());
    walk("", root);
}

/// The derive alone already yields upstream's `spec` and `status` schemas; [`crd`] only adds
/// what `#[derive(CustomResource)]` cannot express.
#[test]
fn derive_produces_spec_and_status_schemas() {
    let derived = serde_json::to_value(SealedSecret::crd()).unwrap();
    let full = crd_value();
    let path = |v: &Value, p: &str| {
        v["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][p].clone()
    };
    assert_eq!(path(&derived, "spec"), path(&full, "spec"));
    let mut status = path(&derived, "status");
    status.as_object_mut().unwrap().remove("nullable");
    assert_eq!(status, path(&full, "status"));
    assert_eq!(
        derived["spec"]["versions"][0]["additionalPrinterColumns"],
        full["spec"]["versions"][0]["additionalPrinterColumns"]
    );
}
