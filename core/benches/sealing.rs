//! Cost of sealing and opening one item, against the floor: one raw RSA-OAEP private-key
//! operation with aws-lc-rs. Run with `cargo bench -p sealed-secrets-core`; figures go to
//! BENCHMARKS.md.

use std::{collections::BTreeMap, hint::black_box};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{
        KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
        PrivateDecryptingKey,
    },
};
use criterion::{Criterion, criterion_main};
use sealed_secrets_core::{
    crypto::{Decrypter, SystemRandom, hybrid_encrypt},
    keys::PrivateKey,
    scope::Scope,
    seal::seal_value,
    sealed_secret::{SealedSecret, SealedSecretSpec},
    unseal::{UnsealOptions, unseal},
};

fn bench_size(c: &mut Criterion, bits: usize, size: KeySize) {
    let raw = PrivateDecryptingKey::generate(size).unwrap();
    let key = PrivateKey::from_pkcs8_der(raw.as_der().unwrap().as_ref()).unwrap();
    let public = key.public_key();
    let label = Scope::Strict.label("shop", "db");
    let value = b"a 32-byte-ish database password!";

    // The floor: one RSA-OAEP-SHA256 private operation on a 32-byte session key, nothing else.
    let oaep_public = OaepPublicEncryptingKey::new(raw.public_key()).unwrap();
    let oaep_private = OaepPrivateDecryptingKey::new(raw.clone()).unwrap();
    let mut rsa_block = vec![0u8; oaep_public.ciphertext_size()];
    oaep_public
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &[7u8; 32],
            &mut rsa_block,
            Some(&label),
        )
        .unwrap();
    let mut out = vec![0u8; oaep_private.min_output_size()];
    c.bench_function(&format!("rsa{bits}/floor_rsa_oaep_private_op"), |b| {
        b.iter(|| {
            oaep_private
                .decrypt(
                    &OAEP_SHA256_MGF1SHA256,
                    black_box(&rsa_block),
                    &mut out,
                    Some(&label),
                )
                .unwrap()
                .len()
        })
    });

    c.bench_function(&format!("rsa{bits}/seal_one_item"), |b| {
        b.iter(|| hybrid_encrypt(&public, black_box(value), &label, &mut SystemRandom).unwrap())
    });

    let sealed = hybrid_encrypt(&public, value, &label, &mut SystemRandom).unwrap();
    c.bench_function(&format!("rsa{bits}/open_one_item"), |b| {
        b.iter(|| key.decrypt(black_box(&sealed), &label).unwrap())
    });

    let mut object = SealedSecret::new("db", SealedSecretSpec::default());
    object.metadata.namespace = Some("shop".into());
    object.spec.encrypted_data = BTreeMap::from_iter(["user", "password", "url"].map(|k| {
        (
            k.to_string(),
            seal_value(&public, value, &label, &mut SystemRandom).unwrap(),
        )
    }));
    let keys = vec![key.clone()];
    c.bench_function(&format!("rsa{bits}/unseal_object_3_items"), |b| {
        b.iter(|| unseal(black_box(&object), &keys, UnsealOptions::default()).unwrap())
    });
}

fn benches(c: &mut Criterion) {
    bench_size(c, 2048, KeySize::Rsa2048);
    bench_size(c, 4096, KeySize::Rsa4096);
}

// The macro defines an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(sealing, super::benches);
}
criterion_main!(group::sealing);
