//! Unsealing on a real API server: 200 SealedSecrets of 3 RSA-4096 items each, applied in one
//! `kubectl apply`, with 1 key and with 24 keys in the cluster. Reports how long after the last
//! SealedSecret was created every Secret existed, the whole run from the first create, and the
//! controller's peak resident memory (VmHWM). Prints a Markdown table for BENCHMARKS.md.
//!
//! Run with release binaries: `bench/unseal-real-api.sh` (it builds them and sets
//! `SEALED_SECRETS_BIN_DIR`). Needs kube-apiserver and etcd (`KUBEBUILDER_ASSETS`, else
//! `/usr/local/kubebuilder/bin`); without them it prints one line and exits 0.
//! `UNSEAL_BENCH_OBJECTS` and `UNSEAL_BENCH_KEYS` (comma list, default `1,24`) change the sizes.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::ByteString;
use sealed_secrets_core::{
    crypto::SystemRandom,
    keys::{GeneratedKeyPair, generate_key_pair},
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, seal_secret},
};
use sealed_secrets_e2e::{
    Assets, Binaries, Cluster, Controller, SEALED_SECRET_CRD, create_namespace, kubectl_with_stdin,
    private_cluster,
    sealing::{key_secret_json, restrict_to},
    unique_name,
};
use serde_json::{Value, json};

fn apply_list(cluster: &Cluster, items: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    kubectl_with_stdin(cluster, &["apply", "-f", "-"], Some(list.as_bytes()))
        .unwrap_or_else(|e| panic!("kubectl apply: {e}"));
}

fn secret_count(cluster: &Cluster, namespace: &str) -> usize {
    let reply = cluster
        .get(&format!("/api/v1/namespaces/{namespace}/secrets"))
        .unwrap_or_else(|e| panic!("{e}"));
    let list: Value = serde_json::from_str(&reply.text()).unwrap_or_default();
    list["items"].as_array().map_or(0, Vec::len)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Outcome {
    keys: usize,
    after_last: Duration,
    total: Duration,
    apply: Duration,
    peak_kib: Option<u64>,
}

fn run(cluster: &Cluster, pairs: &[GeneratedKeyPair], key_count: usize, objects: usize) -> Outcome {
    let keys_ns = create_namespace(cluster, &unique_name("bench-keys"));
    let app = create_namespace(cluster, &unique_name("bench-app"));
    // Oldest first: the newest key is the sealing key.
    let used = &pairs[pairs.len() - key_count..];
    apply_list(
        cluster,
        used.iter()
            .enumerate()
            .map(|(i, p)| key_secret_json(&keys_ns, &format!("bench-key-{i:02}"), p))
            .collect(),
    );
    let args = restrict_to(&[&app]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let controller = Controller::start(cluster, &keys_ns, &args);
    let sealing = used.last().expect("a key").key.public_key();
    let options = SealOptions {
        scope: Scope::Strict,
        namespace: NamespaceDefault {
            namespace: app.clone(),
            explicit: false,
        },
        allow_empty_data: false,
    };
    let sealed: Vec<Value> = (0..objects)
        .map(|i| {
            let mut secret = k8s_openapi::api::core::v1::Secret::default();
            secret.metadata.name = Some(format!("bench-{i:04}"));
            secret.metadata.namespace = Some(app.clone());
            secret.data = Some(BTreeMap::from([
                (
                    "username".into(),
                    ByteString(format!("user-{i}").into_bytes()),
                ),
                (
                    "password".into(),
                    ByteString(format!("pass-{i}-xyz").into_bytes()),
                ),
                ("token".into(), ByteString(vec![i as u8; 64])),
            ]));
            let ss = seal_secret(secret, &sealing, &options, &mut SystemRandom).expect("seal");
            serde_json::to_value(&ss).expect("JSON")
        })
        .collect();
    let before = secret_count(cluster, &app);
    let started = Instant::now();
    apply_list(cluster, sealed);
    let applied = Instant::now();
    let deadline = applied + Duration::from_secs(300);
    loop {
        if secret_count(cluster, &app) >= before + objects {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every Secret appeared within 5 minutes:\n{}",
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = Instant::now();
    Outcome {
        keys: key_count,
        after_last: done - applied,
        total: done - started,
        apply: applied - started,
        peak_kib: controller.pid().and_then(peak_rss_kib),
    }
}

fn main() {
    let objects: usize = std::env::var("UNSEAL_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let key_counts: Vec<usize> = std::env::var("UNSEAL_BENCH_KEYS")
        .unwrap_or_else(|_| "1,24".into())
        .split(',')
        .filter_map(|k| k.trim().parse().ok())
        .collect();
    let most = key_counts.iter().copied().max().unwrap_or(1).max(1);
    eprintln!("generating {most} RSA-4096 keys...");
    let now = jiff::Timestamp::now();
    let pairs: Vec<GeneratedKeyPair> = (0..most)
        .map(|i| {
            let not_before = now
                .checked_sub(jiff::SignedDuration::from_hours(
                    24 * 30 * (most - i) as i64,
                ))
                .expect("time");
            generate_key_pair(
                4096,
                "",
                not_before,
                jiff::SignedDuration::from_hours(87_600),
            )
            .expect("keygen")
        })
        .collect();
    let Some(cluster) = private_cluster(
        Assets::from_env(),
        &[("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD)],
    ) else {
        return;
    };
    eprintln!("controller: {}", Binaries::get().controller.display());
    println!(
        "| {objects} SealedSecrets x 3 RSA-4096 items | keys | kubectl apply | all Secrets after the last create | whole run | controller peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for keys in key_counts {
        let outcome = run(&cluster, &pairs, keys.clamp(1, most), objects);
        println!(
            "| real kube-apiserver | {} | {:.2} s | {:.3} s | {:.2} s | {} |",
            outcome.keys,
            outcome.apply.as_secs_f64(),
            outcome.after_last.as_secs_f64(),
            outcome.total.as_secs_f64(),
            outcome.peak_kib.map_or("n/a".to_string(), |k| format!(
                "{:.1} MB",
                k as f64 / 1024.0
            )),
        );
    }
}
