//! The committed GitSync CRD must match the one generated from the Rust types; `UPDATE_CRDS=1`
//! rewrites it.

use std::path::PathBuf;

use kube::CustomResourceExt;
use sealed_secrets_core::documents::parse_documents;
use sealed_secrets_sync::resource::{CRD_PATH, GitSync, REGENERATE_COMMAND, crd_yaml};

#[test]
fn committed_crd_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_PATH);
    let generated = crd_yaml();
    if std::env::var_os("UPDATE_CRDS").is_some_and(|v| !v.is_empty()) {
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
fn crd_is_namespaced_with_a_status_subresource() {
    let docs = parse_documents(crd_yaml().as_bytes()).unwrap();
    let crd = &docs[0];
    assert_eq!(
        crd["metadata"]["name"],
        "gitsyncs.gitops.sealed-secrets-rs.io"
    );
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    assert_eq!(docs[0], serde_json::to_value(GitSync::crd()).unwrap());
}
