//! The key lifecycle end to end, on a real etcd + kube-apiserver with our controller and
//! `kubeseal`: three keys, SealedSecrets sealed with each, `kubeseal keys` counting them,
//! `kubeseal keys backup`, `kubeseal re-encrypt --all` on a repository folder, applying it and
//! watching the counts move to the newest key, retiring the old keys, and every Secret still
//! unsealing after a controller restart, while `/v1/cert.pem` never serves a retired key.
//!
//! Without `KUBEBUILDER_ASSETS` (or envtest's default folder) the test prints the one skip line
//! and passes.

use std::{collections::BTreeMap, fs, path::Path, sync::Arc};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use sealed_secrets_core::keys::{GeneratedKeyPair, generate_key_pair};
use sealed_secrets_e2e::{
    Assets, Binaries, Cluster, Controller, KEY_LABEL, SEALED_SECRET_CRD, apply_yaml,
    create_namespace, get_object, kubectl_json, kubectl_ok, pem_body, run_command, scrub_env,
    sealing::{
        WAIT, as_strs, restrict_to, sample_data, seal, sealing_cert, tempdir, wait_unsealed,
    },
    suite_cluster, unique_name, wait_for,
};
use serde_json::{Value, json};

fn setup() -> Option<Arc<Cluster>> {
    suite_cluster(
        Assets::from_env(),
        &[("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD)],
    )
}

/// A 2048-bit key pair whose certificate starts `days_ago` days back (so the ordering by
/// NotBefore, the controller's default, is fixed).
fn key_pair(days_ago: i64) -> GeneratedKeyPair {
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago);
    generate_key_pair(2048, "", start, jiff::SignedDuration::from_hours(24 * 365))
        .expect("key generation")
}

fn key_secret_json(namespace: &str, name: &str, pair: &GeneratedKeyPair) -> String {
    let key_pem = pair.key.to_pkcs1_pem().expect("PEM");
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace, "labels": {KEY_LABEL: "active"}},
        "data": {"tls.crt": BASE64.encode(pair.cert_pem.as_bytes()),
                 "tls.key": BASE64.encode(key_pem.as_bytes())},
    })
    .to_string()
}

/// Runs our kubeseal with the admin kubeconfig: (exit code, stdout, stderr).
fn kubeseal_run(cluster: &Cluster, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(&Binaries::get().kubeseal);
    scrub_env(&mut cmd);
    cmd.args(args)
        .current_dir(dir)
        .env("KUBECONFIG", cluster.kubeconfig());
    let out = run_command(&mut cmd, None, WAIT).unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        out.stdout_text(),
        out.stderr_text(),
    )
}

fn kubeseal_ok(cluster: &Cluster, dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = kubeseal_run(cluster, dir, args);
    assert_eq!(code, 0, "kubeseal {args:?}: {stderr}");
    stdout
}

/// `kubeseal keys -o json`: per key Secret name, its row.
fn key_rows(cluster: &Cluster, dir: &Path, keys_ns: &str) -> BTreeMap<String, Value> {
    let out = kubeseal_ok(
        cluster,
        dir,
        &["keys", "--controller-namespace", keys_ns, "-o", "json"],
    );
    let listing: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    listing["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|row| {
            (
                row["secret"].as_str().unwrap_or_default().to_string(),
                row.clone(),
            )
        })
        .collect()
}

/// Waits until `kubeseal keys` counts `want` SealedSecrets per key Secret.
fn wait_for_counts(cluster: &Cluster, dir: &Path, keys_ns: &str, want: &[(&str, u64)]) {
    wait_for(&format!("kubeseal keys to count {want:?}"), WAIT, || {
        let rows = key_rows(cluster, dir, keys_ns);
        let got: Vec<(String, u64)> = want
            .iter()
            .map(|(name, _)| {
                let count = rows
                    .get(*name)
                    .and_then(|r| r["sealedSecrets"].as_u64())
                    .unwrap_or(u64::MAX);
                (name.to_string(), count)
            })
            .collect();
        let expected: Vec<(String, u64)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        if got == expected {
            Ok(rows)
        } else {
            Err(format!("counts {got:?}"))
        }
    });
}

/// The certificate the controller serves never belongs to a retired key.
fn assert_serves(controller: &Controller, pair: &GeneratedKeyPair, retired: &[&GeneratedKeyPair]) {
    let served = pem_body(&sealing_cert(controller));
    assert_eq!(
        served,
        pem_body(&pair.cert_pem),
        "/v1/cert.pem is not the newest key"
    );
    for old in retired {
        assert_ne!(
            served,
            pem_body(&old.cert_pem),
            "/v1/cert.pem serves a retired key"
        );
    }
}

#[test]
fn key_lifecycle_count_reencrypt_retire_restart() {
    let Some(cluster) = setup() else {
        return;
    };
    let keys_ns = create_namespace(&cluster, &unique_name("keys"));
    let app = create_namespace(&cluster, &unique_name("app"));
    let dir = tempdir();
    let work = dir.path();

    // Three keys, oldest first; the controller picks up all of them and seals with key-c.
    let pairs = [key_pair(3), key_pair(2), key_pair(1)];
    let names = ["key-a", "key-b", "key-c"];
    for (name, pair) in names.iter().zip(&pairs) {
        apply_yaml(&cluster, &key_secret_json(&keys_ns, name, pair));
    }
    let mut args = restrict_to(&[&app]);
    args.push("--key-renew-period=0".into());
    let controller = Controller::start(&cluster, &keys_ns, &as_strs(&args));
    assert_serves(&controller, &pairs[2], &[]);

    // A repository: a SealedSecret per key, two of them in one multi-document file.
    let repo = work.join("repo");
    fs::create_dir_all(repo.join("shop")).expect("mkdir");
    let data: Vec<_> = names.iter().map(|n| sample_data(n)).collect();
    let mut sealed = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let cert = work.join(format!("cert-{i}.pem"));
        fs::write(&cert, &pair.cert_pem).expect("write cert");
        sealed.push(seal(
            &cluster,
            &cert,
            &app,
            &format!("s{i}"),
            &data[i],
            "yaml",
        ));
    }
    let config = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {app}\ndata:\n  mode: fast\n"
    );
    fs::write(
        repo.join("shop/secrets.yaml"),
        format!(
            "{config}---\n# sealed with the two old keys\n{}{}",
            sealed[0], sealed[1]
        ),
    )
    .expect("write");
    fs::write(repo.join("s2.yaml"), &sealed[2]).expect("write");
    fs::write(repo.join("plain.yaml"), &config).expect("write");
    for file in ["shop/secrets.yaml", "s2.yaml"] {
        kubectl_ok(
            &cluster,
            &["apply", "-f", &repo.join(file).display().to_string()],
        );
    }
    for (i, data) in data.iter().enumerate() {
        wait_unsealed(&cluster, &app, &format!("s{i}"), data);
    }

    // kubeseal keys: one dependant each, key-c sealing, nothing safe to retire yet.
    let rows = {
        wait_for_counts(
            &cluster,
            work,
            &keys_ns,
            &[("key-a", 1), ("key-b", 1), ("key-c", 1)],
        );
        key_rows(&cluster, work, &keys_ns)
    };
    assert_eq!(rows["key-a"]["fingerprint"], pairs[0].key.fingerprint());
    assert_eq!(rows["key-a"]["state"], "active");
    assert_eq!(rows["key-c"]["state"], "sealing");
    assert_eq!(rows["key-a"]["safeToRetire"], false);
    assert!(rows["key-a"]["lastNeeded"].is_string(), "{}", rows["key-a"]);
    let table = kubeseal_ok(
        &cluster,
        work,
        &["keys", "--controller-namespace", &keys_ns],
    );
    eprintln!("e2e keys: before re-encryption\n{table}");

    // Retiring a key with dependants, or the sealing key, is refused and changes nothing.
    let fp: Vec<String> = pairs.iter().map(|p| p.key.fingerprint()).collect();
    let (code, _, stderr) = kubeseal_run(
        &cluster,
        work,
        &["keys", "retire", &fp[0], "--controller-namespace", &keys_ns],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("still depend on it"), "{stderr}");
    let (code, _, stderr) = kubeseal_run(
        &cluster,
        work,
        &[
            "keys",
            "retire",
            &fp[2],
            "--force",
            "--controller-namespace",
            &keys_ns,
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("it is the sealing key"), "{stderr}");

    // Back up every key (the backup opens everything, and is what re-encryption reads).
    let stderr_backup = {
        let (code, _, stderr) = kubeseal_run(
            &cluster,
            work,
            &[
                "keys",
                "backup",
                "-o",
                "keys.yaml",
                "--controller-namespace",
                &keys_ns,
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        stderr
    };
    assert!(
        stderr_backup.contains("backed up 3 key Secret(s)"),
        "{stderr_backup}"
    );
    let backup = fs::read_to_string(work.join("keys.yaml")).expect("backup");
    assert!(backup.contains("kind: List") && !backup.contains("resourceVersion"));
    for name in names {
        let secret = get_object(&cluster, "secrets", &keys_ns, name)
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("key Secret");
        assert!(
            secret["metadata"]["annotations"]["sealed-secrets-rs.io/backed-up-at"].is_string(),
            "{name} not annotated"
        );
    }

    // Re-encrypt the repository offline with the backup and the newest certificate.
    let before_plain = fs::read(repo.join("plain.yaml")).expect("read");
    let report = kubeseal_ok(
        &cluster,
        work,
        &[
            "re-encrypt",
            "--all",
            "repo",
            "--recovery-private-key",
            "keys.yaml",
            "--cert",
            "cert-2.pem",
        ],
    );
    eprintln!("e2e keys: {report}");
    assert!(
        report.contains("re-encrypted 2 SealedSecret(s), 1 already on the newest key, 0 failed; 1 file(s) written"),
        "{report}"
    );
    assert_eq!(
        fs::read(repo.join("plain.yaml")).expect("read"),
        before_plain
    );
    let rewritten = fs::read_to_string(repo.join("shop/secrets.yaml")).expect("read");
    assert!(rewritten.starts_with(&format!("{config}---\n# sealed with the two old keys\n")));
    kubectl_ok(
        &cluster,
        &[
            "apply",
            "-f",
            &repo.join("shop/secrets.yaml").display().to_string(),
        ],
    );

    // The controller re-opens the changed objects with key-c: the counts move to it.
    wait_for_counts(
        &cluster,
        work,
        &keys_ns,
        &[("key-a", 0), ("key-b", 0), ("key-c", 3)],
    );
    for (i, data) in data.iter().enumerate() {
        wait_unsealed(&cluster, &app, &format!("s{i}"), data);
    }
    let rows = key_rows(&cluster, work, &keys_ns);
    assert_eq!(rows["key-a"]["safeToRetire"], true);
    assert_eq!(rows["key-b"]["safeToRetire"], true);

    // Retire the two old keys.
    for fp in &fp[..2] {
        let out = kubeseal_ok(
            &cluster,
            work,
            &["keys", "retire", fp, "--controller-namespace", &keys_ns],
        );
        assert!(out.contains("retired key"), "{out}");
    }
    let labels = kubectl_json(
        &cluster,
        &["get", "secrets", "-n", &keys_ns, "-l", KEY_LABEL],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let states: BTreeMap<String, String> = labels["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| {
            (
                s["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                s["metadata"]["labels"][KEY_LABEL]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("key-a".to_string(), "retired".to_string()),
            ("key-b".to_string(), "retired".to_string()),
            ("key-c".to_string(), "active".to_string()),
        ]),
        "retired, never deleted"
    );
    let table = kubeseal_ok(
        &cluster,
        work,
        &["keys", "--controller-namespace", &keys_ns],
    );
    eprintln!("e2e keys: after retiring\n{table}");
    assert_serves(&controller, &pairs[2], &[&pairs[0], &pairs[1]]);

    // Restart the controller; every Secret is made again from its SealedSecret with key-c.
    drop(controller);
    for i in 0..3 {
        kubectl_ok(
            &cluster,
            &["delete", "secret", &format!("s{i}"), "-n", &app],
        );
    }
    let controller = Controller::start(&cluster, &keys_ns, &as_strs(&args));
    for (i, data) in data.iter().enumerate() {
        wait_unsealed(&cluster, &app, &format!("s{i}"), data);
    }
    assert_serves(&controller, &pairs[2], &[&pairs[0], &pairs[1]]);
    eprintln!("e2e keys: all 3 Secrets unsealed after a restart with 2 of 3 keys retired");
    drop(controller);
}
