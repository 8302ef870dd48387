//! What the controller suites share: sealing with our kubeseal, waiting for unsealed Secrets,
//! keys and the Lease, and the checks that say a Secret is what its SealedSecret promises.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde_json::{Value, json};

use crate::{
    binaries::kubeseal,
    cluster::Cluster,
    controller::Controller,
    http::HttpReply,
    kubectl::{get_object, key_secrets},
    objects::{pem_body, secret_data},
    wait::wait_for,
};

/// Upper bound of every wait on the controller.
pub const WAIT: Duration = Duration::from_secs(60);
/// The Lease the replicas compete for (the controller's default `--leader-elect-lease-name`).
pub const LEASE_NAME: &str = "sealed-secrets-controller";

/// Flags that keep a controller to its key namespace plus `namespaces`.
pub fn restrict_to(namespaces: &[&str]) -> Vec<String> {
    vec![
        "--all-namespaces=false".to_string(),
        format!("--additional-namespaces={}", namespaces.join(",")),
    ]
}

/// Borrows owned flags (such as [`restrict_to`]'s) as the `&[&str]` the starters take.
pub fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Waits until the controller serves a certificate on `/v1/cert.pem` and returns it.
pub fn sealing_cert(controller: &Controller) -> String {
    wait_for(
        &format!("controller {} to serve /v1/cert.pem", controller.name()),
        WAIT,
        || {
            let reply = controller.get("/v1/cert.pem")?;
            if reply.status == 200 && reply.text().contains("-----BEGIN CERTIFICATE-----") {
                Ok(reply.text())
            } else {
                Err(format!("HTTP {}: {}", reply.status, reply.text().trim()))
            }
        },
    )
}

/// Waits until `/v1/cert.pem` serves exactly `cert_pem` (compared without PEM wrapping).
pub fn wait_for_cert(controller: &Controller, cert_pem: &str) {
    let want = pem_body(cert_pem);
    wait_for(
        &format!(
            "controller {} to serve the expected certificate",
            controller.name()
        ),
        WAIT,
        || {
            let reply = controller.get("/v1/cert.pem")?;
            if reply.status == 200 && pem_body(&reply.text()) == want {
                Ok(())
            } else {
                Err(format!("HTTP {}: {}", reply.status, reply.text().trim()))
            }
        },
    );
}

/// A key Secret's `tls.crt`, decoded.
pub fn key_cert(key: &Value) -> String {
    let data = secret_data(key).unwrap_or_else(|e| panic!("key Secret: {e}"));
    let crt = data
        .get("tls.crt")
        .unwrap_or_else(|| panic!("key Secret without tls.crt: {key}"));
    String::from_utf8(crt.clone()).expect("tls.crt is not UTF-8")
}

/// The name of a key Secret as listed by kubectl (`metadata.name`).
pub fn key_name(key: &Value) -> String {
    key["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until `namespace` holds at least one active key Secret and returns them all.
pub fn wait_for_keys(cluster: &Cluster, namespace: &str, at_least: usize) -> Vec<Value> {
    wait_for(
        &format!("{at_least} active key Secret(s) in {namespace}"),
        WAIT,
        || {
            let keys = key_secrets(cluster, namespace)?;
            if keys.len() >= at_least {
                Ok(keys)
            } else {
                Err(format!("{} key Secret(s)", keys.len()))
            }
        },
    )
}

/// A plain Secret as kubeseal input.
pub fn secret_json(namespace: &str, name: &str, data: &BTreeMap<String, Vec<u8>>) -> String {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(BASE64.encode(v))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": data,
    })
    .to_string()
}

/// Three items of test plaintext, distinct per `tag`, to seal and compare after unsealing.
pub fn sample_data(tag: &str) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        ("username".to_string(), b"admin".to_vec()),
        ("password".to_string(), format!("s3cr3t-{tag}").into_bytes()),
        ("binary".to_string(), (0u8..=255).collect()),
    ])
}

/// Seals a Secret with OUR kubeseal and `--cert <file>`; `format` is `yaml` or `json`.
pub fn seal(
    cluster: &Cluster,
    cert_file: &Path,
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
    format: &str,
) -> String {
    let cert = cert_file.display().to_string();
    kubeseal(
        cluster,
        &["--cert", &cert, "-o", format],
        secret_json(namespace, name, data).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Writes a sealing certificate to `dir` and returns its path (for `kubeseal --cert`).
pub fn write_cert(dir: &Path, cert_pem: &str) -> PathBuf {
    let path = dir.join("cert.pem");
    std::fs::write(&path, cert_pem).expect("cannot write cert.pem");
    path
}

/// The SealedSecret's condition `Synced`, if any: (status, message).
pub fn synced_condition(sealed: &Value) -> Option<(String, String)> {
    sealed["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Synced")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Checks the SealedSecret is `Synced=True` with `observedGeneration == generation`.
pub fn check_synced(sealed: &Value) -> Result<(), String> {
    let name = sealed["metadata"]["name"].as_str().unwrap_or_default();
    match synced_condition(sealed) {
        Some((status, _)) if status == "True" => {}
        other => {
            return Err(format!(
                "SealedSecret {name}: Synced condition is {other:?}"
            ));
        }
    }
    let generation = sealed["metadata"]["generation"].as_i64();
    let observed = sealed["status"]["observedGeneration"].as_i64();
    if generation.is_none() || generation != observed {
        return Err(format!(
            "SealedSecret {name}: observedGeneration {observed:?} != generation {generation:?}"
        ));
    }
    Ok(())
}

/// Checks `secret` is controlled by `sealed`: exactly one ownerReference, kind SealedSecret,
/// apiVersion bitnami.com/v1alpha1, controller true, same name and uid.
pub fn check_owner(secret: &Value, sealed: &Value) -> Result<(), String> {
    let name = secret["metadata"]["name"].as_str().unwrap_or_default();
    let refs = secret["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let [owner] = refs.as_slice() else {
        return Err(format!(
            "Secret {name}: ownerReferences {refs:?}, want exactly one"
        ));
    };
    let ok = owner["kind"] == "SealedSecret"
        && owner["apiVersion"] == "bitnami.com/v1alpha1"
        && owner["controller"] == true
        && owner["name"] == sealed["metadata"]["name"]
        && owner["uid"] == sealed["metadata"]["uid"]
        && owner["uid"].is_string();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Secret {name}: ownerReference {owner} does not point at SealedSecret uid {}",
            sealed["metadata"]["uid"]
        ))
    }
}

/// Waits until Secret `namespace/name` has `data`, is owned by its SealedSecret, and the
/// SealedSecret is Synced; returns the Secret.
pub fn wait_unsealed(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Value {
    wait_for(
        &format!("Secret {namespace}/{name} to be unsealed"),
        WAIT,
        || {
            let sealed = get_object(cluster, "sealedsecrets.bitnami.com", namespace, name)?
                .ok_or_else(|| format!("SealedSecret {namespace}/{name} does not exist"))?;
            let secret = get_object(cluster, "secrets", namespace, name)?
                .ok_or_else(|| format!("Secret {namespace}/{name} does not exist yet"))?;
            let live = secret_data(&secret)?;
            if &live != data {
                return Err(format!(
                    "Secret {namespace}/{name} has keys {:?}",
                    live.keys().collect::<Vec<_>>()
                ));
            }
            check_owner(&secret, &sealed)?;
            check_synced(&sealed)?;
            Ok(secret)
        },
    )
}

/// POSTs to `/v1/verify`, waiting out upstream's rate limit (429) if it answers so.
pub fn verify(controller: &Controller, body: &str) -> HttpReply {
    for _ in 0..10 {
        let reply = controller
            .post("/v1/verify", "application/json", body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        if reply.status != 429 {
            return reply;
        }
        let wait = reply
            .retry_after
            .as_deref()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .clamp(1, 5);
        thread::sleep(Duration::from_secs(wait));
    }
    panic!("/v1/verify kept answering 429");
}

/// A JSON object of strings (such as a Secret's `data`) as a sorted map.
pub fn map_of(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A temporary directory for one test's files, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sealed-secrets-e2e-test-")
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// Who holds the controller's leader-election Lease in `namespace` now.
pub fn lease_holder(cluster: &Cluster, namespace: &str) -> Result<String, String> {
    let lease = get_object(cluster, "leases.coordination.k8s.io", namespace, LEASE_NAME)?
        .ok_or_else(|| format!("no Lease {namespace}/{LEASE_NAME} yet"))?;
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "Lease {namespace}/{LEASE_NAME} has no holder: {}",
                lease["spec"]
            )
        })
}

/// The key Secret the controller would write for a key pair (`tls.key` PKCS#1 PEM, `tls.crt`),
/// labelled `active`.
pub fn key_secret_json(
    namespace: &str,
    name: &str,
    pair: &sealed_secrets_core::keys::GeneratedKeyPair,
) -> Value {
    let key_pem = pair.key.to_pkcs1_pem().expect("PEM of a generated key");
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"},
        },
        "data": {
            "tls.crt": BASE64.encode(pair.cert_pem.as_bytes()),
            "tls.key": BASE64.encode(key_pem.as_bytes()),
        },
    })
}
