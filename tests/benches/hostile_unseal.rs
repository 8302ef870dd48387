//! Template bombs against a real controller on a real API server (issue 12's first attack):
//! SealedSecrets whose `spec.template.data` asks for gigabytes, applied together with a normal
//! SealedSecret. Reports how long the normal one took to become a Secret, the slowest
//! `/healthz` probe while the bombs were processed, the controller's peak RSS (VmHWM), and the
//! status message each bomb got. Prints a Markdown table for BENCHMARKS.md.
//!
//! Run with release binaries: `bench/hostile-unseal.sh`. Needs kube-apiserver and etcd
//! (`KUBEBUILDER_ASSETS`, else `/usr/local/kubebuilder/bin`); without them it prints one line.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use sealed_secrets_core::{
    crypto::SystemRandom,
    keys::{GeneratedKeyPair, PublicKey, generate_key_pair},
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, seal_secret},
};
use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD, create_namespace, get_object,
    kubectl_with_stdin, private_cluster,
    sealing::{key_secret_json, restrict_to},
    unique_name,
};
use serde_json::Value;

fn pair(bits: usize) -> GeneratedKeyPair {
    generate_key_pair(
        bits,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(87_600),
    )
    .expect("keygen")
}

fn sealed(namespace: &str, name: &str, key: &PublicKey, templates: &[(String, String)]) -> Value {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some(namespace.into());
    secret.data = Some(BTreeMap::from([(
        "password".to_string(),
        ByteString(b"s3cr3t".to_vec()),
    )]));
    let options = SealOptions {
        scope: Scope::Strict,
        namespace: NamespaceDefault {
            namespace: namespace.into(),
            explicit: false,
        },
        allow_empty_data: false,
    };
    let ss = seal_secret(secret, key, &options, &mut SystemRandom).expect("seal");
    let mut value = serde_json::to_value(&ss).expect("JSON");
    if !templates.is_empty() {
        let data: serde_json::Map<String, Value> = templates
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        value["spec"]["template"]["data"] = Value::Object(data);
    }
    value
}

fn apply(cluster: &Cluster, object: &Value) {
    kubectl_with_stdin(
        cluster,
        &["apply", "--server-side", "-f", "-"],
        Some(object.to_string().as_bytes()),
    )
    .unwrap_or_else(|e| panic!("kubectl apply: {e}"));
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

fn synced_message(cluster: &Cluster, namespace: &str, name: &str) -> Option<String> {
    let object = get_object(cluster, "sealedsecrets.bitnami.com", namespace, name).ok()??;
    let condition = object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Synced")?
        .clone();
    Some(format!(
        "{}: {}",
        condition["status"].as_str().unwrap_or_default(),
        condition["message"].as_str().unwrap_or_default()
    ))
}

fn main() {
    let Some(cluster) = private_cluster(
        Assets::from_env(),
        &[("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD)],
    ) else {
        return;
    };
    let keys = create_namespace(&cluster, &unique_name("bomb-keys"));
    let app = create_namespace(&cluster, &unique_name("bomb-app"));
    let ours = pair(4096);
    let foreign = pair(2048);
    let (our_public, foreign_public) = (ours.key.public_key(), foreign.key.public_key());
    kubectl_with_stdin(
        &cluster,
        &["apply", "-f", "-"],
        Some(
            key_secret_json(&keys, "bench-key", &ours)
                .to_string()
                .as_bytes(),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let args = restrict_to(&[&app]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let controller = Controller::start(&cluster, &keys, &args);
    let idle_kib = controller.pid().and_then(peak_rss_kib);

    let repeat = |count: usize, size: usize| -> Vec<(String, String)> {
        (0..count)
            .map(|i| (format!("k{i}"), format!("{{{{ repeat {size} \"a\" }}}}")))
            .collect()
    };
    // Five copies of each bomb (15 objects), as an attacker with create rights would send.
    let kinds: [(&str, &str, &PublicKey, usize, usize); 3] = [
        (
            "issue-bomb",
            "20,000 entries of `repeat 16777216`, an item no key opens",
            &foreign_public,
            20_000,
            16_777_216,
        ),
        (
            "wide-bomb",
            "1,000 entries of `repeat 16777216`, items open",
            &our_public,
            1_000,
            16_777_216,
        ),
        (
            "deep-bomb",
            "1,000 entries of `repeat 4000000`, items open",
            &our_public,
            1_000,
            4_000_000,
        ),
    ];
    let app_ns = app.as_str();
    let bombs: Vec<(String, &str, Value)> = kinds
        .iter()
        .flat_map(|(name, what, key, count, size)| {
            let templates = repeat(*count, *size);
            (0..5).map(move |copy| {
                let name = format!("{name}-{copy}");
                let object = sealed(app_ns, &name, key, &templates);
                (name, *what, object)
            })
        })
        .collect();
    let started = Instant::now();
    for (_, _, object) in &bombs {
        apply(&cluster, object);
    }
    let normal = sealed(&app, "normal", &our_public, &[]);
    apply(&cluster, &normal);
    let applied = Instant::now();
    let mut slowest_probe = Duration::ZERO;
    let mut probes = 0;
    let deadline = applied + Duration::from_secs(120);
    let normal_after = loop {
        let probe = Instant::now();
        let healthy = controller.get("/healthz").map(|r| r.status == 200);
        slowest_probe = slowest_probe.max(probe.elapsed());
        probes += 1;
        assert_eq!(healthy, Ok(true), "/healthz failed:\n{}", controller.log());
        if get_object(&cluster, "secrets", &app, "normal")
            .ok()
            .flatten()
            .is_some()
        {
            break applied.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "the normal SealedSecret was not unsealed in 2 minutes:\n{}",
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let the bombs' statuses land, probing /healthz meanwhile.
    let mut messages: Vec<(&str, String)> = Vec::new();
    for (name, what, _) in &bombs {
        let wait = Instant::now() + Duration::from_secs(60);
        let message = loop {
            let probe = Instant::now();
            let healthy = controller.get("/healthz").map(|r| r.status == 200);
            slowest_probe = slowest_probe.max(probe.elapsed());
            probes += 1;
            assert_eq!(healthy, Ok(true), "/healthz failed:\n{}", controller.log());
            if let Some(m) = synced_message(&cluster, &app, name) {
                break m;
            }
            assert!(Instant::now() < wait, "no status on {name}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            get_object(&cluster, "secrets", &app, name)
                .ok()
                .flatten()
                .is_none(),
            "a Secret was written for {name}"
        );
        if messages.iter().all(|(w, _)| w != what) {
            messages.push((*what, message));
        }
    }
    let peak_kib = controller.pid().and_then(peak_rss_kib);
    let mb = |k: Option<u64>| k.map_or("n/a".into(), |k| format!("{:.1} MB", k as f64 / 1024.0));
    println!(
        "| 15 bombs + 1 normal SealedSecret | normal unsealed after | slowest /healthz ({probes} probes) | controller peak RSS (idle → after) | whole run |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| real kube-apiserver, release controller | {:.2} s | {:.1} ms | {} → {} | {:.1} s |",
        normal_after.as_secs_f64(),
        slowest_probe.as_secs_f64() * 1000.0,
        mb(idle_kib),
        mb(peak_kib),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| bomb | Synced condition |");
    println!("|---|---|");
    for (what, message) in messages {
        println!("| {what} | {} |", message.replace('|', "\\|"));
    }
}
