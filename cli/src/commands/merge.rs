//! `--merge-into FILE`: seal the input's items for FILE's SealedSecret and merge them in place.
//!
//! Two deliberate differences from upstream, both fixes of reported pain:
//! - the file keeps its own format (YAML stays YAML) unless `-o` is given explicitly;
//! - the values are sealed in the file's scope; a different non-default `--scope` is refused
//!   instead of producing values the controller cannot open. Missing label/annotation maps in
//!   the file's template are created (upstream panics on them).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Result, anyhow, bail};
use sealed_secrets_core::{
    crypto::SystemRandom,
    documents::parse_local_documents,
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, merge_into, seal_secret, secret_from_value},
    sealed_secret::{
        CERTIFICATE_ANNOTATION, SEALED_FOR_ANNOTATION, SealedSecret, parse_sealed_for,
    },
};

use crate::{
    args::Args,
    commands::seal::input_documents,
    io::{Format, read_file, read_input, write_atomically},
};

fn read_target(path: &Path) -> Result<(SealedSecret, Format)> {
    let bytes = read_file(path)?;
    let mut docs = parse_local_documents(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if docs.len() != 1 {
        bail!(
            "{}: expected exactly one SealedSecret, found {} documents",
            path.display(),
            docs.len()
        );
    }
    let sealed =
        SealedSecret::from_value(docs.remove(0)).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((sealed, Format::of_content(&bytes)))
}

/// Runs the mode.
pub fn run(args: &Args, path: &Path) -> Result<()> {
    let (mut target, file_format) = read_target(path)?;
    let format = match args.format.as_deref() {
        Some(explicit) => Format::parse(Some(explicit))?,
        None => file_format,
    };
    let file_scope = Scope::from_annotations(target.metadata.annotations.as_ref());
    if args.scope != Scope::Strict && args.scope != file_scope {
        bail!(
            "--scope {} does not match the scope of {} ({file_scope}); values sealed in another \
             scope could not be opened",
            args.scope,
            path.display()
        );
    }
    // A file sealed for an overlay's rendered name records it: new items are sealed for it too.
    let recorded = target
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SEALED_FOR_ANNOTATION))
        .and_then(|v| parse_sealed_for(v))
        .map(|(ns, name)| (name.to_string(), ns.unwrap_or_default().to_string()));
    let (name, namespace) = recorded.unwrap_or_else(|| {
        (
            target.metadata.name.clone().unwrap_or_default(),
            target.metadata.namespace.clone().unwrap_or_default(),
        )
    });
    let (key, fingerprint) = super::sealing_key_routed(args, Some(path))?;
    let options = SealOptions {
        scope: Scope::Strict,
        namespace: NamespaceDefault {
            namespace: namespace.clone(),
            explicit: false,
        },
        allow_empty_data: args.allow_empty_data,
    };

    let (source, bytes) = read_input(
        args.secret_file.as_deref(),
        "(tty detected: expecting json/yaml k8s resource in stdin)",
    )?;
    for doc in input_documents(&source, &bytes)? {
        let mut secret = secret_from_value(doc)?;
        secret.metadata.name = Some(name.clone());
        secret.metadata.namespace = Some(namespace.clone()).filter(|n| !n.is_empty());
        file_scope.write_annotations(
            secret
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new),
        );
        let update = seal_secret(secret, &key, &options, &mut SystemRandom)?;
        merge_into(&mut target, update);
    }
    if let Some(fingerprint) = fingerprint {
        target
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(CERTIFICATE_ANNOTATION.to_string(), fingerprint);
    }
    write_atomically(path, &format.render(&[target.to_upstream_value()]))
}
