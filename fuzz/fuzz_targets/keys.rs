//! Key material as kubeseal and the controller read it: PEM private keys (PKCS#1 and PKCS#8),
//! `--recovery-private-key` files (PEM, a key Secret, a `v1.List` of them), certificates in
//! PEM and DER, and SPKI public keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_secrets_core::{
    cert::Certificate,
    key_secret::read_recovery_keys,
    keys::{PrivateKey, PublicKey},
};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = PrivateKey::from_pem(data) {
        let _ = key.fingerprint();
        let _ = key.to_pkcs1_pem();
    }
    let _ = PrivateKey::from_pkcs8_der(data);
    let _ = PrivateKey::from_pkcs1_der(data);
    let _ = read_recovery_keys(data);
    for cert in [Certificate::from_pem(data), Certificate::from_der(data)]
        .into_iter()
        .flatten()
    {
        let _ = cert.public_key().fingerprint();
        let _ = cert.not_after();
    }
    if let Ok(key) = PublicKey::from_spki_der(data) {
        let _ = key.size_bits();
    }
});
