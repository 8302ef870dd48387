//! `--recovery-unseal`: open SealedSecrets offline with private keys from backups.

use std::path::Path;

use anyhow::{Result, anyhow};
use sealed_secrets_core::{
    key_secret::read_recovery_keys,
    keys::PrivateKey,
    sealed_secret::SealedSecret,
    unseal::{UnsealOptions, secret_to_upstream_value, unseal},
};

use crate::{
    args::Args,
    commands::seal::input_documents,
    io::{Format, emit, read_file, read_input},
};

/// Loads every key of every `--recovery-private-key` file; errors name the file.
pub fn load_keys(paths: &[String]) -> Result<Vec<PrivateKey>> {
    let mut keys = Vec::new();
    for path in paths.iter().filter(|p| !p.is_empty()) {
        let bytes = read_file(Path::new(path))?;
        keys.extend(read_recovery_keys(&bytes).map_err(|e| anyhow!("{path}: {e}"))?);
    }
    Ok(keys)
}

/// Runs the mode.
pub fn run(args: &Args) -> Result<()> {
    let format =
        Format::parse(args.format.as_deref())?.for_output(args.sealed_secret_file.as_deref());
    let keys = load_keys(&args.recovery_private_key)?;
    let (source, bytes) = read_input(
        args.secret_file.as_deref(),
        "(tty detected: expecting json/yaml k8s resource in stdin)",
    )?;
    let mut secrets = Vec::new();
    for doc in input_documents(&source, &bytes)? {
        let sealed = SealedSecret::from_value(doc)?;
        // Upstream's library default: the deprecated whole-Secret format is not opened here.
        let secret = unseal(
            &sealed,
            &keys,
            UnsealOptions {
                accept_deprecated_v1_data: false,
            },
        )?;
        secrets.push(secret_to_upstream_value(&secret));
    }
    emit(args.sealed_secret_file.as_deref(), &format.render(&secrets))
}
