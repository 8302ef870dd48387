//! `--re-encrypt` offline (upstream #1453): open every SealedSecret of the input with
//! `--recovery-private-key` and seal it again for `--cert`, so a whole repository can be moved
//! to a new key without cluster access. With `-f` and no `-w` the input file is rewritten in
//! place (atomically), as upstream's `--re-encrypt` does.
//!
//! Template labels and annotations are kept; only the template's scope annotations are forced to
//! the object's own scope (see `sealed_secrets_core::reencrypt`). The online form (through the
//! controller's `/v1/rotate`) is [`super::rotate`]; both write through [`Output`].

use std::path::Path;

use anyhow::{Result, anyhow};
use sealed_secrets_core::{
    crypto::SystemRandom, reencrypt::reencrypt, sealed_secret::SealedSecret,
};
use serde_json::Value;

use crate::{
    args::Args,
    commands::{recover::load_keys, seal::input_documents},
    io::{Format, emit, read_input, write_atomically},
};

/// Where `--re-encrypt` writes, and in which format: `-w FILE`; else, with `-f FILE`, that
/// file in place (keeping its own format unless `-o` is given); else stdout.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    format: Format,
    in_place: Option<&'a Path>,
    file: Option<&'a Path>,
}

impl<'a> Output<'a> {
    /// Decides the output for `args`, given the input's bytes.
    pub fn plan(args: &'a Args, input: &[u8]) -> Result<Self> {
        let file = args.sealed_secret_file.as_deref();
        let in_place = file
            .is_none()
            .then_some(args.secret_file.as_deref())
            .flatten();
        let format = match (args.format.as_deref(), in_place) {
            (None, Some(_)) => Format::of_content(input),
            (explicit, _) => Format::parse(explicit)?,
        }
        .for_output(file.or(in_place));
        Ok(Self {
            format,
            in_place,
            file,
        })
    }

    /// Renders `objects` and writes them (atomically to a file).
    pub fn write(&self, objects: &[Value]) -> Result<()> {
        let rendered = self.format.render(objects);
        match self.in_place {
            Some(path) => write_atomically(path, &rendered),
            None => emit(self.file, &rendered),
        }
    }
}

/// The input of `--re-encrypt`.
pub fn read_sealed_input(args: &Args) -> Result<(crate::io::Source, Vec<u8>)> {
    read_input(
        args.secret_file.as_deref(),
        "(tty detected: expecting json/yaml k8s resource in stdin)",
    )
}

/// Runs the mode.
pub fn run(args: &Args) -> Result<()> {
    let keys = load_keys(&args.recovery_private_key)?;
    let new_key = super::sealing_key(args)?;
    let (source, bytes) = read_sealed_input(args)?;
    let output = Output::plan(args, &bytes)?;
    let docs = input_documents(&source, &bytes)?;
    let mut out = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
        let sealed = SealedSecret::from_value(doc)
            .map_err(|e| anyhow!("{e} (document {} of {source})", i + 1))?;
        let rotated = reencrypt(&sealed, &keys, &new_key, &mut SystemRandom)
            .map_err(|e| anyhow!("cannot re-encrypt secret {name:?}: {e}"))?;
        out.push(rotated.to_upstream_value());
    }
    output.write(&out)
}
