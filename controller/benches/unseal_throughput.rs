//! Unsealing throughput with many sealing keys: 200 SealedSecrets of 3 items, RSA-4096, each
//! sealed with one of K keys, opened on one thread. Compares upstream's random key order (≈K/2
//! RSA operations per item) with the controller's learned order, against the floor of one RSA
//! operation per item. Prints a Markdown table for BENCHMARKS.md.
//!
//! Run: `cargo bench -p sealed-secrets-controller --bench unseal_throughput`
//! (`UNSEAL_BENCH_KEYS=24` and `UNSEAL_BENCH_OBJECTS=200` change the sizes).

use std::{sync::Arc, time::Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sealed_secrets_controller::keyring::{KeyRing, key_from_secret};
use sealed_secrets_core::{
    crypto::SystemRandom,
    key_secret::{KeyOrder, new_key_secret},
    keys::{PrivateKey, generate_key_pair},
    scope::Scope,
    seal::seal_value,
    sealed_secret::{SealedSecret, SealedSecretSpec},
    unseal::{UnsealOptions, unseal},
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Tiny deterministic generator for the "random" key order of the upstream model.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let key_count = env_usize("UNSEAL_BENCH_KEYS", 24);
    let objects = env_usize("UNSEAL_BENCH_OBJECTS", 200);
    eprintln!("generating {key_count} RSA-4096 keys...");
    let start = jiff::Timestamp::now();
    let pairs: Vec<_> = (0..key_count)
        .map(|i| {
            let not_before = start
                .checked_sub(jiff::SignedDuration::from_hours(
                    24 * 30 * (key_count - i) as i64,
                ))
                .unwrap();
            generate_key_pair(
                4096,
                "",
                not_before,
                jiff::SignedDuration::from_hours(24 * 3650),
            )
            .unwrap()
        })
        .collect();
    let keys: Vec<PrivateKey> = pairs.iter().map(|p| p.key.clone()).collect();

    eprintln!("sealing {objects} SealedSecrets x 3 items...");
    // Each object is created while its key was the sealing key (a few days after the key's
    // NotBefore, within its 30-day turn), as when SealedSecrets are applied soon after sealing.
    let sealed: Vec<SealedSecret> = (0..objects)
        .map(|i| {
            let k = (i * 7 + 3) % key_count;
            let mut ss = seal_object(&keys[k], i);
            let not_before = start
                .checked_sub(jiff::SignedDuration::from_hours(
                    24 * 30 * (key_count - k) as i64,
                ))
                .unwrap();
            let created = not_before
                .checked_add(jiff::SignedDuration::from_hours(24 * (i % 29) as i64 + 1))
                .unwrap();
            ss.metadata.creation_timestamp = Some(Time(created));
            ss
        })
        .collect();
    let items = objects * 3;

    // Floor: one RSA-4096 private operation per item (each item opened with its own key only).
    let t = Instant::now();
    for (i, ss) in sealed.iter().enumerate() {
        let key = &keys[(i * 7 + 3) % key_count];
        unseal(ss, key, UnsealOptions::default()).unwrap();
    }
    let floor = t.elapsed();

    // Upstream model: keys in random order for every item.
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let t = Instant::now();
    for ss in &sealed {
        let mut shuffled = keys.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        unseal(ss, &shuffled, UnsealOptions::default()).unwrap();
    }
    let upstream = t.elapsed();

    // Ours, first start without creation times (every object created after every key, as
    // when a new cluster is built from an old repository): learned recency only.
    let untimed = ring_of(&pairs);
    let t = Instant::now();
    for ss in &sealed {
        let object = format!("bench/{}", ss.metadata.name.as_deref().unwrap());
        unseal(
            ss,
            &untimed.decrypter_for(Some(&object), None),
            UnsealOptions::default(),
        )
        .unwrap();
    }
    let cold_untimed = t.elapsed();

    let ring = Arc::new(ring_of(&pairs));
    // Ours, very first start: no hints, the key current at each object's creation first.
    let t = Instant::now();
    for ss in &sealed {
        let object = format!("bench/{}", ss.metadata.name.as_deref().unwrap());
        let created = ss.metadata.creation_timestamp.as_ref().map(|t| t.0);
        unseal(
            ss,
            &ring.decrypter_for(Some(&object), created),
            UnsealOptions::default(),
        )
        .unwrap();
    }
    let cold = t.elapsed();
    // Ours, warm (the key of each object known, as after one pass or from its status).
    let t = Instant::now();
    for ss in &sealed {
        let object = format!("bench/{}", ss.metadata.name.as_deref().unwrap());
        unseal(
            ss,
            &ring.decrypter_for(Some(&object), None),
            UnsealOptions::default(),
        )
        .unwrap();
    }
    let warm = t.elapsed();

    // Ours, after a restart: a fresh ring, hints seeded from each object's status.keyFingerprint
    // (written by the first pass), as the reconciler does.
    let restarted = ring_of(&pairs);
    let hints: Vec<(String, String)> = sealed
        .iter()
        .map(|ss| {
            let object = format!("bench/{}", ss.metadata.name.as_deref().unwrap());
            let hint = ring.hint_for(&object).unwrap();
            (object, hint)
        })
        .collect();
    let t = Instant::now();
    for (ss, (object, hint)) in sealed.iter().zip(&hints) {
        restarted.seed_hint(object, hint);
        unseal(
            ss,
            &restarted.decrypter_for(Some(object), None),
            UnsealOptions::default(),
        )
        .unwrap();
    }
    let restart = t.elapsed();

    // One key in the cluster (every object sealed with it).
    let one_ring = KeyRing::default();
    let mut one_secret = new_key_secret(&pairs[0], "sealed-secrets-key", "ks", &[], &[]).unwrap();
    one_secret.metadata.name = Some("sealed-secrets-key-only".into());
    one_ring.register(key_from_secret(&one_secret, KeyOrder::CertNotBefore).unwrap());
    let one_key: Vec<SealedSecret> = (0..objects).map(|i| seal_object(&keys[0], i)).collect();
    let t = Instant::now();
    for ss in &one_key {
        let object = format!("bench/{}", ss.metadata.name.as_deref().unwrap());
        unseal(
            ss,
            &one_ring.decrypter_for(Some(&object), None),
            UnsealOptions::default(),
        )
        .unwrap();
    }
    let single = t.elapsed();

    let per_item = |d: std::time::Duration| d.as_secs_f64() * 1000.0 / items as f64;
    let floor_item = per_item(floor);
    println!(
        "| {objects} SealedSecrets x 3 items, {key_count} RSA-4096 keys, 1 thread | total | per item | vs floor |"
    );
    println!("|---|---|---|---|");
    for (name, d) in [
        ("floor: the right key only", floor),
        ("upstream model: random key order", upstream),
        (
            "ours, very first start (no hints; key current at creation first)",
            cold,
        ),
        (
            "ours, very first start without creation times (recency only)",
            cold_untimed,
        ),
        ("ours, second pass (key of each object learned)", warm),
        (
            "ours, after a restart (hints from status.keyFingerprint)",
            restart,
        ),
        ("ours, a cluster with 1 key", single),
    ] {
        println!(
            "| {name} | {:.0} ms | {:.2} ms | {:.2}x |",
            d.as_secs_f64() * 1000.0,
            per_item(d),
            per_item(d) / floor_item
        );
    }
}

/// SealedSecret `bench/app-<i>` with 3 items sealed for `key`.
fn seal_object(key: &PrivateKey, i: usize) -> SealedSecret {
    let name = format!("app-{i}");
    let label = Scope::Strict.label("bench", &name);
    let mut ss = SealedSecret::new(&name, SealedSecretSpec::default());
    ss.metadata.namespace = Some("bench".into());
    for item in ["username", "password", "url"] {
        let value = format!("{item}-{i}");
        let sealed = seal_value(
            &key.public_key(),
            value.as_bytes(),
            &label,
            &mut SystemRandom,
        )
        .unwrap();
        ss.spec.encrypted_data.insert(item.into(), sealed);
    }
    ss
}

/// A key ring holding every pair, as the controller registers key Secrets.
fn ring_of(pairs: &[sealed_secrets_core::keys::GeneratedKeyPair]) -> KeyRing {
    let ring = KeyRing::default();
    for (i, pair) in pairs.iter().enumerate() {
        let mut secret = new_key_secret(pair, "sealed-secrets-key", "ks", &[], &[]).unwrap();
        secret.metadata.name = Some(format!("sealed-secrets-key{i}"));
        ring.register(key_from_secret(&secret, KeyOrder::CertNotBefore).unwrap());
    }
    ring
}
