//! Every SealedSecret made by upstream kubeseal v0.36.6 (in `../shared/vectors`) must open with
//! the upstream controller's key to exactly the Secret the upstream controller produced.
//!
//! Skips with one line when the vectors folder is absent.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use base64::Engine;
use sealed_secrets_core::{
    cert::Certificate,
    documents::parse_documents,
    key_secret::read_recovery_keys,
    keys::PrivateKey,
    scope::Scope,
    sealed_secret::SealedSecret,
    unseal::{UnsealOptions, unseal},
};
use serde_json::Value;

fn vectors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors");
    if dir.join("key.pem").exists() {
        Some(dir)
    } else {
        println!("skipping upstream vectors: {} not found", dir.display());
        None
    }
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn key(dir: &Path) -> PrivateKey {
    PrivateKey::from_pem(&read(&dir.join("key.pem"))).expect("upstream key.pem")
}

fn one_doc(path: &Path) -> Value {
    let mut docs =
        parse_documents(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs.remove(0)
}

fn files(dir: &Path, sub: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

fn decoded_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    secret["data"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let b64 = v.as_str().unwrap_or("");
                    (
                        k.clone(),
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compares what we produce with what the upstream controller wrote, field by field.
fn assert_same_secret(ours: &k8s_openapi::api::core::v1::Secret, upstream: &Value, what: &str) {
    let ours_data: BTreeMap<String, Vec<u8>> = ours
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    assert_eq!(ours_data, decoded_data(upstream), "{what}: data");
    let meta = &upstream["metadata"];
    assert_eq!(
        ours.metadata.name.as_deref(),
        meta["name"].as_str(),
        "{what}: name"
    );
    assert_eq!(
        ours.metadata.namespace.as_deref(),
        meta["namespace"].as_str(),
        "{what}: namespace"
    );
    let labels = serde_json::to_value(&ours.metadata.labels).unwrap();
    assert_eq!(
        labels,
        meta.get("labels").cloned().unwrap_or(Value::Null),
        "{what}: labels"
    );
    let annotations = serde_json::to_value(&ours.metadata.annotations).unwrap();
    assert_eq!(
        annotations,
        meta.get("annotations").cloned().unwrap_or(Value::Null),
        "{what}: annotations"
    );
    // The API server defaults an empty type to Opaque.
    assert_eq!(
        ours.type_.as_deref().unwrap_or("Opaque"),
        upstream["type"].as_str().unwrap(),
        "{what}: type"
    );
    assert_eq!(
        ours.immutable,
        upstream["immutable"].as_bool(),
        "{what}: immutable"
    );
    let owner = &ours
        .metadata
        .owner_references
        .as_ref()
        .expect("owner reference")[0];
    let upstream_owner = &meta["ownerReferences"][0];
    assert_eq!(
        owner.api_version, upstream_owner["apiVersion"],
        "{what}: owner apiVersion"
    );
    assert_eq!(owner.kind, upstream_owner["kind"], "{what}: owner kind");
    assert_eq!(
        owner.controller,
        upstream_owner["controller"].as_bool(),
        "{what}: controller"
    );
}

#[test]
fn upstream_key_and_certificate_match_and_key_secrets_read() {
    let Some(dir) = vectors() else { return };
    let key = key(&dir);
    let cert = Certificate::from_pem(&read(&dir.join("cert.pem"))).unwrap();
    assert_eq!(cert.public_key(), &key.public_key());
    assert_eq!(cert.public_key().size_bits(), 4096);
    let served = Certificate::from_pem(&read(&dir.join("cert-from-controller-http.pem"))).unwrap();
    assert_eq!(served.public_key(), &key.public_key());
    for file in ["controller-key-secret.yaml", "controller-key-secrets.yaml"] {
        let keys = read_recovery_keys(&read(&dir.join(file))).unwrap();
        assert!(!keys.is_empty(), "{file}");
        assert!(
            keys.iter().any(|k| k.public_key() == key.public_key()),
            "{file}"
        );
    }
    // Our PKCS#1 output reads back to the same key, as upstream's tls.key would.
    let again = PrivateKey::from_pem(key.to_pkcs1_pem().unwrap().as_bytes()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
}

#[test]
fn every_upstream_sealed_secret_opens_to_the_controllers_secret() {
    let Some(dir) = vectors() else { return };
    let keys = vec![key(&dir)];
    let mut opened = 0;
    for path in files(&dir, "sealed") {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let sealed = SealedSecret::from_value(one_doc(&path)).unwrap();
        let secret = unseal(&sealed, &keys, UnsealOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let expected = dir
            .join("unsealed")
            .join(format!("sealed-{stem}.secret.yaml"));
        assert_same_secret(&secret, &one_doc(&expected), &path.display().to_string());
        opened += 1;
    }
    assert!(opened >= 14, "only {opened} sealed vectors found");
}

#[test]
fn sealed_secrets_as_stored_by_the_api_server_open_too() {
    let Some(dir) = vectors() else { return };
    let keys = vec![key(&dir)];
    for path in files(&dir, "status") {
        let sealed = SealedSecret::from_value(one_doc(&path)).unwrap();
        assert!(sealed.status.is_some(), "{}", path.display());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let result = unseal(&sealed, &keys, UnsealOptions::default());
        let should_fail = name.contains("strict-renamed") || name.contains("moved-namespace");
        assert_eq!(result.is_err(), should_fail, "{name}");
    }
}

#[test]
fn raw_values_open_for_their_scope_only() {
    let Some(dir) = vectors() else { return };
    let keys = vec![key(&dir)];
    for path in files(&dir, "raw") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (scope, rest) = if let Some(rest) = name.strip_prefix("strict-raw-") {
            (Scope::Strict, rest)
        } else if let Some(rest) = name.strip_prefix("namespace-wide-raw-") {
            (Scope::NamespaceWide, rest)
        } else if let Some(rest) = name.strip_prefix("cluster-wide-raw-") {
            (Scope::ClusterWide, rest)
        } else {
            panic!("unexpected raw vector {name}");
        };
        let plain_name = match rest {
            "binary.txt" => "raw-binary.bin",
            "value.txt" => "raw-value.txt",
            "empty.txt" => "raw-empty.txt",
            other => panic!("unexpected raw vector {other}"),
        };
        let encoded = String::from_utf8(read(&path)).unwrap();
        assert!(!encoded.ends_with('\n'), "{name}: --raw prints no newline");
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .unwrap();
        let label = scope.label("vectors", "vec-raw");
        let plaintext = sealed_secrets_core::crypto::Decrypter::decrypt(&keys, &ciphertext, &label)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            &plaintext[..],
            &read(&dir.join("plain").join(plain_name))[..],
            "{name}"
        );
        if scope != Scope::ClusterWide {
            let wrong = scope.label("other", "vec-raw-x");
            assert!(
                sealed_secrets_core::crypto::Decrypter::decrypt(&keys, &ciphertext, &wrong)
                    .is_err()
            );
        }
    }
}

#[test]
fn relocated_sealed_secrets_fail_or_open_by_scope() {
    let Some(dir) = vectors() else { return };
    let keys = vec![key(&dir)];
    for path in files(&dir, "negative") {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let sealed = SealedSecret::from_value(one_doc(&path)).unwrap();
        let result = unseal(&sealed, &keys, UnsealOptions::default());
        if stem.ends_with("-ok") {
            let secret = result.unwrap_or_else(|e| panic!("{stem}: {e}"));
            let expected = dir
                .join("unsealed")
                .join(format!("negative-{stem}.secret.yaml"));
            assert_same_secret(&secret, &one_doc(&expected), &stem);
        } else {
            let message = result.unwrap_err().to_string();
            assert!(
                message.starts_with("no key could decrypt secret ("),
                "{stem}: {message}"
            );
            for item in sealed.spec.encrypted_data.keys() {
                assert!(
                    message.contains(item.as_str()),
                    "{stem}: {message} lacks {item}"
                );
            }
        }
    }
}
