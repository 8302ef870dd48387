//! The default mode: seal every Secret of the input stream.

use anyhow::{Result, anyhow, bail};
use sealed_secrets_core::{
    crypto::SystemRandom,
    documents::{DocumentError, parse_local_documents},
    seal::{SealOptions, seal_secret, secret_from_value},
};
use serde_json::Value;

use crate::{
    args::Args,
    io::{Format, Source, emit, read_input},
    kubeconfig::default_namespace,
};

/// Upstream's text when the input holds no document.
pub const NO_SECRETS: &str = "no secrets found. Ensure the input is valid and UTF-8 encoded";

/// Parses the input stream into documents, with upstream's text for empty or non-UTF-8 input.
pub fn input_documents(source: &Source, bytes: &[u8]) -> Result<Vec<Value>> {
    let docs = match parse_local_documents(bytes) {
        Ok(docs) => docs,
        Err(DocumentError::NotUtf8(_)) => bail!(NO_SECRETS),
        Err(err) => return Err(anyhow!("cannot read {source}: {err}")),
    };
    if docs.is_empty() {
        bail!(NO_SECRETS);
    }
    Ok(docs)
}

/// Seals each input document; errors keep upstream's text and say which document failed.
pub fn seal_documents(args: &Args, docs: Vec<Value>, source: &Source) -> Result<Vec<Value>> {
    let key = super::sealing_key(args)?;
    let options = SealOptions {
        scope: args.scope,
        namespace: default_namespace(args)?,
        allow_empty_data: args.allow_empty_data,
    };
    let count = docs.len();
    docs.into_iter()
        .enumerate()
        .map(|(i, doc)| {
            let where_ = || {
                if count > 1 {
                    format!("document {} of {source}", i + 1)
                } else {
                    source.to_string()
                }
            };
            let sealed = secret_from_value(doc)
                .and_then(|secret| seal_secret(secret, &key, &options, &mut SystemRandom))
                .map_err(|e| anyhow!("{e} ({})", where_()))?;
            Ok(sealed.to_upstream_value())
        })
        .collect()
}

/// Runs the mode.
pub fn run(args: &Args) -> Result<()> {
    let cwd =
        std::env::current_dir().map_err(|e| anyhow!("cannot read the working directory: {e}"))?;
    if let Some((repo, targets)) = crate::env::seal::plan(args, &cwd)? {
        return crate::env::seal::run(args, &repo, &targets);
    }
    let format =
        Format::parse(args.format.as_deref())?.for_output(args.sealed_secret_file.as_deref());
    let (source, bytes) = read_input(
        args.secret_file.as_deref(),
        "(tty detected: expecting json/yaml k8s resource in stdin)",
    )?;
    let docs = input_documents(&source, &bytes)?;
    let sealed = seal_documents(args, docs, &source)?;
    emit(args.sealed_secret_file.as_deref(), &format.render(&sealed))
}
