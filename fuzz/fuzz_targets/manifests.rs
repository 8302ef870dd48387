//! SealedSecret and Secret manifests in YAML and JSON, read as kubeseal's modes read them:
//! the input stream parsed into documents; each document sealed (default mode), read as a
//! SealedSecret and opened with the fuzz key (`--recovery-unseal`, `--validate`, the
//! controller; this runs its templates under the per-object budget), merged into
//! (`--merge-into`), and written back as JSON and YAML.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealed_secrets_core::{
    crypto::SystemRandom,
    documents::{parse_documents, to_go_json, to_sorted_yaml},
    keys::PrivateKey,
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, merge_into, seal_secret, secret_from_value},
    sealed_secret::SealedSecret,
    unseal::{UnsealOptions, secret_to_upstream_value, unseal},
};

/// A throwaway RSA-2048 key committed for fuzzing only.
fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PrivateKey::from_pem(include_bytes!("../keys/fuzz-key.pem")).expect("fuzz key")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(docs) = parse_documents(data) else {
        return;
    };
    let options = SealOptions {
        scope: Scope::Strict,
        namespace: NamespaceDefault {
            namespace: "default".into(),
            explicit: false,
        },
        allow_empty_data: false,
    };
    for doc in docs.into_iter().take(8) {
        let _ = to_go_json(&doc);
        let _ = to_sorted_yaml(&doc);
        if let Ok(secret) = secret_from_value(doc.clone())
            && let Ok(sealed) =
                seal_secret(secret, &key().public_key(), &options, &mut SystemRandom)
        {
            let _ = to_go_json(&sealed.to_upstream_value());
            // What was just sealed opens again.
            unseal(&sealed, key(), UnsealOptions::default()).expect("fresh seal opens");
        }
        let Ok(mut sealed) = SealedSecret::from_value(doc) else {
            continue;
        };
        let _ = to_sorted_yaml(&sealed.to_upstream_value());
        for accept_deprecated_v1_data in [false, true] {
            let options = UnsealOptions {
                accept_deprecated_v1_data,
            };
            if let Ok(secret) = unseal(&sealed, key(), options) {
                let _ = to_go_json(&secret_to_upstream_value(&secret));
            }
        }
        let update = sealed.clone();
        merge_into(&mut sealed, update);
    }
});
