//! `--raw`: seal one value and print its base64, with no trailing newline.

use std::path::Path;

use anyhow::{Result, bail};
use sealed_secrets_core::{crypto::SystemRandom, scope::Scope, seal::seal_raw};

use crate::{
    args::Args,
    io::{emit, read_file, read_input},
    kubeconfig::configured_namespace,
};

/// The path part of a `--from-file` value (`[key=]path`; the key is ignored with --raw).
fn from_file_path(value: &str) -> &str {
    value.split_once('=').map_or(value, |(_, path)| path)
}

/// Runs the mode.
pub fn run(args: &Args) -> Result<()> {
    let (key, _) = super::sealing_key_routed(args, None)?;
    // Unlike sealing a Secret, `--raw` has no object to take a namespace from and does not
    // fall back to `default`: `seal_raw` refuses an empty namespace for scoped values with
    // upstream's text.
    let namespace = if args.scope == Scope::ClusterWide {
        String::new()
    } else {
        configured_namespace(args)?
            .map(|found| found.namespace)
            .unwrap_or_default()
    };
    let plaintext = match args.from_file.as_slice() {
        [] => {
            read_input(
                None,
                "(tty detected: expecting a secret to encrypt in stdin)",
            )?
            .1
        }
        [one] => read_file(Path::new(from_file_path(one)))?,
        _ => bail!("must provide only one --from-file when encrypting a single item with --raw"),
    };
    let sealed = seal_raw(
        &key,
        &plaintext,
        args.scope,
        &namespace,
        &args.name,
        &mut SystemRandom,
    )?;
    emit(args.sealed_secret_file.as_deref(), sealed.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_part_of_from_file_is_ignored() {
        assert_eq!(from_file_path("password=/tmp/p.txt"), "/tmp/p.txt");
        assert_eq!(from_file_path("/tmp/p.txt"), "/tmp/p.txt");
    }
}
