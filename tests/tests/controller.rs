//! End-to-end tests of the controller (and `kubeseal --cert`) against a real etcd +
//! kube-apiserver found through `KUBEBUILDER_ASSETS`.
//!
//! Without the assets every test prints `skipping e2e: <reason>` once and passes. With them,
//! all tests share one cluster (started by the first test, stopped after the last) with the
//! SealedSecret CRD applied once, and each test runs its own controller(s) on its own key
//! namespace, restricted with `--all-namespaces=false --additional-namespaces=…` to its own
//! namespaces so parallel tests never touch each other's objects.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use sealed_secrets_e2e::sealing::*;
use sealed_secrets_e2e::{
    Assets, Cluster, Controller, KEY_LABEL, SEALED_SECRET_CRD, create_namespace, get_object,
    key_secrets, kubectl_json, kubectl_ok, kubectl_with_stdin, pem_body, read_yaml, resolve_path,
    secret_data, skip, suite_cluster, unique_name, wait_for, workspace_root,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

/// `shared/vectors` beside the workspace (`SEALED_SECRETS_VECTORS_DIR` overrides).
fn vectors_dir() -> PathBuf {
    std::env::var_os("SEALED_SECRETS_VECTORS_DIR")
        .filter(|v| !v.is_empty())
        .map(|v| resolve_path(Path::new(&v)))
        .unwrap_or_else(|| workspace_root().join("..").join("shared").join("vectors"))
}

/// The shared cluster with the SealedSecret CRD, or `None` (skipped) without assets.
fn setup_with(assets: Result<Assets, String>) -> Option<Arc<Cluster>> {
    suite_cluster(
        assets,
        &[("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD)],
    )
}

fn setup() -> Option<Arc<Cluster>> {
    setup_with(Assets::from_env())
}

// ---------------------------------------------------------------------------------------------
// 1. Upstream vectors
// ---------------------------------------------------------------------------------------------

/// One SealedSecret file of the vectors and what upstream's controller made of it.
struct Vector {
    file: PathBuf,
    namespace: String,
    name: String,
    /// `unsealed/<prefix>-<stem>.secret.yaml`; `None` = upstream failed to unseal it.
    expected: Option<Value>,
}

fn vectors(dir: &Path) -> Vec<Vector> {
    let mut out = Vec::new();
    for (folder, prefix) in [("sealed", "sealed"), ("negative", "negative")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(folder))
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.join(folder).display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let stem = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let sealed = read_yaml(&file);
            assert_eq!(sealed["kind"], "SealedSecret", "{}", file.display());
            let expected_file = dir
                .join("unsealed")
                .join(format!("{prefix}-{stem}.secret.yaml"));
            out.push(Vector {
                namespace: sealed["metadata"]["namespace"]
                    .as_str()
                    .expect("namespace")
                    .to_string(),
                name: sealed["metadata"]["name"]
                    .as_str()
                    .expect("name")
                    .to_string(),
                expected: expected_file.is_file().then(|| read_yaml(&expected_file)),
                file,
            });
        }
    }
    out
}

/// The controller's digest annotation on the Secrets it writes.
const DIGEST_ANNOTATION: &str = "sealed-secrets-rs.io/unsealed-digest";

/// Compares a live Secret with upstream's: decoded data, type, immutable, labels, annotations
/// (besides [`DIGEST_ANNOTATION`]).
fn check_like_upstream(expected: &Value, live: &Value) -> Result<(), String> {
    let name = live["metadata"]["name"].as_str().unwrap_or_default();
    let (want, got) = (secret_data(expected)?, secret_data(live)?);
    if want != got {
        let diff: Vec<&String> = want
            .keys()
            .chain(got.keys())
            .filter(|k| want.get(*k) != got.get(*k))
            .collect();
        return Err(format!("Secret {name}: data differs in {diff:?}"));
    }
    let kind_of = |v: &Value| v["type"].as_str().unwrap_or("Opaque").to_string();
    if kind_of(expected) != kind_of(live) {
        return Err(format!(
            "Secret {name}: type {} != {}",
            kind_of(live),
            kind_of(expected)
        ));
    }
    let immutable = |v: &Value| v["immutable"].as_bool().unwrap_or(false);
    if immutable(expected) != immutable(live) {
        return Err(format!(
            "Secret {name}: immutable {} != {}",
            immutable(live),
            immutable(expected)
        ));
    }
    for field in ["labels", "annotations"] {
        let (want, mut got) = (
            map_of(&expected["metadata"][field]),
            map_of(&live["metadata"][field]),
        );
        // Ours alone, on every Secret we write: the digest that lets a restart skip decrypting
        // it (docs/controller.md). It must be well-formed and name the key that opened it.
        if let Some(digest) = got.remove(DIGEST_ANNOTATION)
            && !digest.starts_with("v2:SHA256:")
        {
            return Err(format!(
                "Secret {name}: malformed {DIGEST_ANNOTATION}: {digest}"
            ));
        }
        if want != got {
            return Err(format!("Secret {name}: {field} {got:?} != {want:?}"));
        }
    }
    Ok(())
}

/// All items of `kubectl get secrets,sealedsecrets -n <ns>`, keyed by (kind, name).
fn objects_in(
    cluster: &Cluster,
    namespace: &str,
) -> Result<BTreeMap<(String, String), Value>, String> {
    let list = kubectl_json(
        cluster,
        &["get", "secrets,sealedsecrets.bitnami.com", "-n", namespace],
    )?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            (
                (
                    item["kind"].as_str().unwrap_or_default().to_string(),
                    item["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
                item.clone(),
            )
        })
        .collect())
}

#[test]
fn upstream_vectors_become_the_upstream_secrets() {
    let vectors_dir = vectors_dir();
    let assets = Assets::from_env();
    if assets.is_ok() && !vectors_dir.join("controller-key-secret.yaml").is_file() {
        skip(&format!(
            "upstream vectors not found at {}",
            vectors_dir.display()
        ));
        return;
    }
    let Some(cluster) = setup_with(assets) else {
        return;
    };

    // The upstream key Secret, moved into our key namespace.
    let key_ns = create_namespace(&cluster, &unique_name("ss-vec-keys"));
    let upstream_key = read_yaml(&vectors_dir.join("controller-key-secret.yaml"));
    let key = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": upstream_key["metadata"]["name"],
            "namespace": key_ns,
            "labels": upstream_key["metadata"]["labels"],
        },
        "type": upstream_key["type"],
        "data": upstream_key["data"],
    });
    kubectl_with_stdin(
        &cluster,
        &["create", "-f", "-"],
        Some(key.to_string().as_bytes()),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let all = vectors(&vectors_dir);
    let namespaces: BTreeSet<String> = all.iter().map(|v| v.namespace.clone()).collect();
    for ns in &namespaces {
        create_namespace(&cluster, ns);
    }
    let ns_list: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let mut args = restrict_to(&ns_list);
    args.push("--key-renew-period=0".into());
    let controller = Controller::start_named(&cluster, "vectors", &key_ns, &as_strs(&args));

    // It seals with the upstream key.
    let upstream_cert = std::fs::read_to_string(vectors_dir.join("cert.pem")).expect("cert.pem");
    wait_for_cert(&controller, &upstream_cert);

    for vector in &all {
        sealed_secrets_e2e::apply_file(&cluster, &vector.file);
    }

    // The last file applied for an object decides what is expected of it.
    let mut expectations: BTreeMap<(String, String), Option<Value>> = BTreeMap::new();
    for vector in &all {
        expectations.insert(
            (vector.namespace.clone(), vector.name.clone()),
            vector.expected.clone(),
        );
    }
    wait_for(
        "every vector to be unsealed as upstream did (or to fail as upstream did)",
        WAIT,
        || {
            let mut live: BTreeMap<String, BTreeMap<(String, String), Value>> = BTreeMap::new();
            for ns in &namespaces {
                live.insert(ns.clone(), objects_in(&cluster, ns)?);
            }
            for ((ns, name), expected) in &expectations {
                let objects = &live[ns];
                let sealed = objects
                    .get(&("SealedSecret".to_string(), name.clone()))
                    .ok_or_else(|| format!("SealedSecret {ns}/{name} missing"))?;
                let secret = objects.get(&("Secret".to_string(), name.clone()));
                match expected {
                    Some(expected) => {
                        let secret =
                            secret.ok_or_else(|| format!("Secret {ns}/{name} not created yet"))?;
                        check_like_upstream(expected, secret)?;
                        check_owner(secret, sealed)?;
                        check_synced(sealed)?;
                    }
                    None => {
                        if secret.is_some() {
                            return Err(format!(
                                "Secret {ns}/{name} exists but upstream could not unseal it"
                            ));
                        }
                        match synced_condition(sealed) {
                            Some((status, message))
                                if status == "False"
                                    && message.contains("no key could decrypt secret") => {}
                            other => {
                                return Err(format!(
                                    "SealedSecret {ns}/{name}: Synced {other:?}, want False with \"no key could decrypt secret (…)\""
                                ));
                            }
                        }
                        let generation = sealed["metadata"]["generation"].as_i64();
                        if generation != sealed["status"]["observedGeneration"].as_i64() {
                            return Err(format!(
                                "SealedSecret {ns}/{name}: observedGeneration != generation {generation:?}"
                            ));
                        }
                    }
                }
            }
            Ok(())
        },
    );

    // It used the upstream key and made none of its own.
    let keys = key_secrets(&cluster, &key_ns).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        keys.len(),
        1,
        "key Secrets: {:?}",
        keys.iter().map(key_name).collect::<Vec<_>>()
    );
    drop(controller);
}

// ---------------------------------------------------------------------------------------------
// 2. Key generation
// ---------------------------------------------------------------------------------------------

#[test]
fn controller_generates_a_key_when_none_exists() {
    let Some(cluster) = setup() else { return };
    let key_ns = create_namespace(&cluster, &unique_name("ss-gen-keys"));
    let app_ns = create_namespace(&cluster, &unique_name("ss-gen-app"));
    let args = restrict_to(&[&app_ns]);
    let mut first = Controller::start_named(&cluster, "first", &key_ns, &as_strs(&args));

    let keys = wait_for_keys(&cluster, &key_ns, 1);
    assert_eq!(
        keys.len(),
        1,
        "keys: {:?}",
        keys.iter().map(key_name).collect::<Vec<_>>()
    );
    let key = &keys[0];
    let name = key_name(key);
    assert_eq!(key["type"], "kubernetes.io/tls", "{key}");
    assert_eq!(
        key["metadata"]["generateName"], "sealed-secrets-key",
        "{key}"
    );
    assert!(
        name.starts_with("sealed-secrets-key") && name.len() > "sealed-secrets-key".len(),
        "{name}"
    );
    assert_eq!(key["metadata"]["labels"][KEY_LABEL], "active", "{key}");
    let data = secret_data(key).unwrap_or_else(|e| panic!("{e}"));
    let crt = String::from_utf8(data["tls.crt"].clone()).expect("tls.crt UTF-8");
    let tls_key = String::from_utf8(data["tls.key"].clone()).expect("tls.key UTF-8");
    assert!(crt.starts_with("-----BEGIN CERTIFICATE-----"), "{crt}");
    assert!(
        tls_key.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "tls.key is not PKCS#1 PEM"
    );

    // /v1/cert.pem serves that certificate.
    wait_for_cert(&first, &crt);

    // OUR kubeseal seals with it, the controller opens it.
    let dir = tempdir();
    let cert_file = write_cert(
        dir.path(),
        &first.get("/v1/cert.pem").expect("cert.pem").text(),
    );
    let secret_name = unique_name("generated");
    let secret = sample_data(&secret_name);
    let sealed = seal(&cluster, &cert_file, &app_ns, &secret_name, &secret, "yaml");
    sealed_secrets_e2e::apply_yaml(&cluster, &sealed);
    wait_unsealed(&cluster, &app_ns, &secret_name, &secret);

    // A restart finds the key and generates no other.
    first.stop();
    let second = Controller::start_named(&cluster, "second", &key_ns, &as_strs(&args));
    wait_for_cert(&second, &crt);
    thread::sleep(Duration::from_secs(5));
    let keys = key_secrets(&cluster, &key_ns).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        keys.len(),
        1,
        "after restart: {:?}",
        keys.iter().map(key_name).collect::<Vec<_>>()
    );
    assert_eq!(key_name(&keys[0]), name);
    wait_for_cert(&second, &crt);
    drop(second);
    drop(first);
}

// ---------------------------------------------------------------------------------------------
// 3. /v1/verify and /v1/rotate
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_and_rotate_endpoints() {
    let Some(cluster) = setup() else { return };
    let key_ns = create_namespace(&cluster, &unique_name("ss-api-keys"));
    let app_ns = create_namespace(&cluster, &unique_name("ss-api-app"));
    let mut args = restrict_to(&[&app_ns]);
    args.push("--key-size=2048".into());
    let controller = Controller::start_named(&cluster, "api", &key_ns, &as_strs(&args));

    let dir = tempdir();
    let cert_file = write_cert(dir.path(), &sealing_cert(&controller));
    let name = unique_name("verified");
    let data = sample_data(&name);
    let good = seal(&cluster, &cert_file, &app_ns, &name, &data, "json");
    let good_value: Value = serde_json::from_str(&good).expect("kubeseal -o json output");

    // Good: decryptable with the controller's key.
    let reply = verify(&controller, &good);
    assert_eq!(reply.status, 200, "verify(good): {}", reply.text());

    // Bad: the same strict-scope SealedSecret under another name cannot be opened.
    let mut bad = good_value.clone();
    let other = format!("{name}-renamed");
    bad["metadata"]["name"] = json!(other);
    if bad["spec"]["template"]["metadata"].is_object() {
        bad["spec"]["template"]["metadata"]["name"] = json!(other);
    }
    let reply = verify(&controller, &bad.to_string());
    assert_eq!(
        reply.status,
        409,
        "verify(renamed strict): {}",
        reply.text()
    );

    // Rotate: a re-encrypted SealedSecret that opens.
    let reply = controller
        .post("/v1/rotate", "application/json", good.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.status, 200, "rotate: {}", reply.text());
    let mut rotated: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("rotate answered non-JSON ({e}): {}", reply.text()));
    assert_eq!(rotated["metadata"]["name"], json!(name), "{rotated}");
    assert_eq!(rotated["metadata"]["namespace"], json!(app_ns), "{rotated}");
    let before = good_value["spec"]["encryptedData"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let after = rotated["spec"]["encryptedData"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "rotate changed the item names"
    );
    assert!(
        before.iter().all(|(k, v)| after[k] != *v),
        "rotate did not re-encrypt every value"
    );
    // Upstream answers without apiVersion/kind (kubeseal adds them back).
    rotated["apiVersion"] = json!("bitnami.com/v1alpha1");
    rotated["kind"] = json!("SealedSecret");
    if let Some(status) = rotated.as_object_mut() {
        status.remove("status");
    }
    sealed_secrets_e2e::apply_yaml(&cluster, &rotated.to_string());
    wait_unsealed(&cluster, &app_ns, &name, &data);
    drop(controller);
}

// ---------------------------------------------------------------------------------------------
// 4. Deleted Secrets come back
// ---------------------------------------------------------------------------------------------

#[test]
fn deleted_secret_is_recreated() {
    let Some(cluster) = setup() else { return };
    let key_ns = create_namespace(&cluster, &unique_name("ss-del-keys"));
    let app_ns = create_namespace(&cluster, &unique_name("ss-del-app"));
    let mut args = restrict_to(&[&app_ns]);
    args.push("--key-size=2048".into());
    let controller = Controller::start_named(&cluster, "recreate", &key_ns, &as_strs(&args));

    let dir = tempdir();
    let cert_file = write_cert(dir.path(), &sealing_cert(&controller));
    let name = unique_name("recreated");
    let data = sample_data(&name);
    sealed_secrets_e2e::apply_yaml(
        &cluster,
        &seal(&cluster, &cert_file, &app_ns, &name, &data, "yaml"),
    );
    let secret = wait_unsealed(&cluster, &app_ns, &name, &data);
    let old_uid = secret["metadata"]["uid"].as_str().expect("uid").to_string();

    kubectl_ok(
        &cluster,
        &["delete", "secret", &name, "-n", &app_ns, "--wait=true"],
    );
    wait_for(
        &format!("Secret {app_ns}/{name} to come back"),
        WAIT,
        || {
            let secret =
                get_object(&cluster, "secrets", &app_ns, &name)?.ok_or("not re-created yet")?;
            if secret["metadata"]["uid"].as_str() == Some(old_uid.as_str()) {
                return Err("still the old Secret".into());
            }
            Ok(())
        },
    );
    wait_unsealed(&cluster, &app_ns, &name, &data);
    drop(controller);
}

// ---------------------------------------------------------------------------------------------
// 5. Key renewal
// ---------------------------------------------------------------------------------------------

#[test]
fn keys_are_renewed_each_period() {
    const PERIOD: Duration = Duration::from_secs(5);
    let Some(cluster) = setup() else { return };
    let key_ns = create_namespace(&cluster, &unique_name("ss-renew-keys"));
    let app_ns = create_namespace(&cluster, &unique_name("ss-renew-app"));
    let mut args = restrict_to(&[&app_ns]);
    args.extend([
        "--key-renew-period=5s".to_string(),
        "--key-size=2048".to_string(),
    ]);
    let controller = Controller::start_named(&cluster, "renew", &key_ns, &as_strs(&args));

    let first = wait_for_keys(&cluster, &key_ns, 1);
    let first_seen = Instant::now();
    let first_cert = key_cert(&first[0]);

    // A second key appears and becomes the sealing key.
    wait_for("a renewed key to be served on /v1/cert.pem", WAIT, || {
        let keys = key_secrets(&cluster, &key_ns)?;
        if keys.len() < 2 {
            return Err(format!("{} key Secret(s)", keys.len()));
        }
        let newest = key_cert(keys.last().expect("non-empty"));
        if pem_body(&newest) == pem_body(&first_cert) {
            return Err("the newest key is still the first one".into());
        }
        let served = controller.get("/v1/cert.pem")?;
        if served.status == 200 && pem_body(&served.text()) == pem_body(&newest) {
            Ok(())
        } else {
            Err(format!(
                "served {} is not the newest key {}",
                served.status,
                key_name(keys.last().expect("non-empty"))
            ))
        }
    });

    // Never more than one new key per period.
    let settle = Duration::from_secs(7);
    if let Some(rest) = settle.checked_sub(first_seen.elapsed()) {
        thread::sleep(rest);
    }
    let elapsed = first_seen.elapsed();
    let keys = key_secrets(&cluster, &key_ns).unwrap_or_else(|e| panic!("{e}"));
    // The first key, one per whole period since, and one of slack for where in a period we
    // first saw it (3 at ~7 s).
    let bound = 2 + (elapsed.as_secs() / PERIOD.as_secs()) as usize;
    assert!(
        keys.len() <= bound,
        "{} keys {:.1} s after the first (at most {bound}): {:?}",
        keys.len(),
        elapsed.as_secs_f64(),
        keys.iter().map(key_name).collect::<Vec<_>>()
    );
    drop(controller);
}

// ---------------------------------------------------------------------------------------------
// 6. Two replicas with leader election
// ---------------------------------------------------------------------------------------------

#[test]
fn leader_election_one_key_and_failover() {
    let Some(cluster) = setup() else { return };
    let key_ns = create_namespace(&cluster, &unique_name("ss-ha-keys"));
    let app_ns = create_namespace(&cluster, &unique_name("ss-ha-app"));
    let mut args = restrict_to(&[&app_ns]);
    args.extend([
        "--leader-elect=true".to_string(),
        "--key-size=2048".to_string(),
    ]);
    let with_id = |id: &str| {
        let mut all = args.clone();
        all.push(format!("--leader-elect-id={id}"));
        all
    };
    let mut replicas = vec![
        Controller::start_named(
            &cluster,
            "replica-a",
            &key_ns,
            &as_strs(&with_id("replica-a")),
        ),
        Controller::start_named(
            &cluster,
            "replica-b",
            &key_ns,
            &as_strs(&with_id("replica-b")),
        ),
    ];

    let holder = wait_for("a replica to hold the Lease", WAIT, || {
        let holder = lease_holder(&cluster, &key_ns)?;
        if replicas.iter().any(|r| r.name() == holder) {
            Ok(holder)
        } else {
            Err(format!("holder {holder:?} is neither replica"))
        }
    });

    // Exactly one key, served by both replicas.
    let keys = wait_for_keys(&cluster, &key_ns, 1);
    thread::sleep(Duration::from_secs(5));
    let keys_later = key_secrets(&cluster, &key_ns).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        keys_later.len(),
        1,
        "two replicas made {:?}",
        keys_later.iter().map(key_name).collect::<Vec<_>>()
    );
    assert_eq!(key_name(&keys_later[0]), key_name(&keys[0]));
    let cert = key_cert(&keys_later[0]);
    for replica in &replicas {
        wait_for_cert(replica, &cert);
    }

    // Kill the leader the hard way; the survivor takes over.
    let leader_index = replicas
        .iter()
        .position(|r| r.name() == holder)
        .expect("holder is a replica");
    replicas[leader_index].kill();
    let survivor = &replicas[1 - leader_index];
    let survivor_name = survivor.name().to_string();

    let dir = tempdir();
    let cert_file = write_cert(dir.path(), &sealing_cert(survivor));
    let name = unique_name("failover");
    let data = sample_data(&name);
    sealed_secrets_e2e::apply_yaml(
        &cluster,
        &seal(&cluster, &cert_file, &app_ns, &name, &data, "yaml"),
    );
    wait_unsealed(&cluster, &app_ns, &name, &data);
    wait_for("the survivor to hold the Lease", WAIT, || {
        let holder = lease_holder(&cluster, &key_ns)?;
        if holder == survivor_name {
            Ok(())
        } else {
            Err(format!("holder {holder:?}"))
        }
    });

    thread::sleep(Duration::from_secs(3));
    let keys_after = key_secrets(&cluster, &key_ns).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        keys_after.len(),
        1,
        "after failover: {:?}",
        keys_after.iter().map(key_name).collect::<Vec<_>>()
    );
    drop(replicas);
}
