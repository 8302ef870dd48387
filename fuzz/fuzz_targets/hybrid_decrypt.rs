//! Ciphertext splitting and hybrid RSA-OAEP + AES-GCM decryption, as the controller and
//! `kubeseal --recovery-unseal` run them on every `encryptedData` value.
//!
//! Input: one selector byte, then either a ciphertext to open (any bytes) or, for odd
//! selectors, a plaintext that is sealed with the fuzz key, tampered with at a position taken
//! from the input, and opened again: tampering must always be detected, and an untouched value
//! must open to the same bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealed_secrets_core::{
    crypto::{Decrypter, SystemRandom, hybrid_encrypt, split_ciphertext},
    keys::PrivateKey,
};

/// A throwaway RSA-2048 key committed for fuzzing only.
fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PrivateKey::from_pem(include_bytes!("../keys/fuzz-key.pem")).expect("fuzz key")
    })
}

const LABELS: [&[u8]; 3] = [b"", b"shop", b"shop/db"];

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else { return };
    let label = LABELS[usize::from(*selector >> 1) % LABELS.len()];
    if selector & 1 == 0 {
        if let Ok(parts) = split_ciphertext(rest) {
            assert_eq!(parts.rsa.len() + parts.aes.len() + 2, rest.len());
        }
        // Random bytes never open.
        assert!(key().decrypt(rest, label).is_err());
        return;
    }
    let (tamper, plaintext) = match rest {
        [hi, lo, plaintext @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), plaintext),
        _ => return,
    };
    let mut sealed =
        hybrid_encrypt(&key().public_key(), plaintext, label, &mut SystemRandom).expect("seal");
    let opened = key()
        .decrypt(&sealed, label)
        .expect("untouched value opens");
    assert_eq!(&opened[..], plaintext);
    if tamper < sealed.len() * 8 {
        sealed[tamper / 8] ^= 1 << (tamper % 8);
        assert!(
            key().decrypt(&sealed, label).is_err(),
            "tampering went unnoticed"
        );
    }
});
