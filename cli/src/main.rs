//! `kubeseal`: a drop-in, wire-compatible replacement for Bitnami's kubeseal.
//!
//! The binary is thin: parse flags, pick the mode with upstream's precedence, print
//! `error: <message>` and exit 1 on failure (flag errors exit 2, from clap). The offline path
//! starts no async runtime and no network client.

mod args;
mod cert_source;
mod cluster;
mod commands;
mod env;
mod io;
mod keys;
mod kubeconfig;
mod lint;
mod reencrypt_all;
mod sync;
mod ui;

use std::{io::IsTerminal, process::ExitCode};

use anyhow::{Result, bail};
use clap::Parser;

use crate::args::Args;

/// What `--version` prints after `kubeseal version: `.
const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Chooses and runs the mode, in upstream's order of precedence.
fn run(args: &Args) -> Result<()> {
    if args.version {
        println!("kubeseal version: {VERSION}");
        return Ok(());
    }
    if !args.from_file.is_empty() && !args.raw {
        bail!("--from-file requires --raw");
    }
    if args.rotate {
        eprintln!("Flag --rotate has been deprecated, please use --re-encrypt instead");
    }
    if !args.recovery_private_key.is_empty()
        && !args.recovery_unseal
        && !args.re_encrypt
        && !args.rotate
        && std::io::stderr().is_terminal()
    {
        eprintln!(
            "warning: ignoring --recovery-private-key because unseal command not chosen with --recovery-unseal"
        );
    }
    if args.recovery_unseal {
        return commands::recover::run(args);
    }
    if args.validate {
        return commands::validate::run(args);
    }
    if args.re_encrypt || args.rotate {
        if args.recovery_private_key.is_empty() {
            return commands::rotate::run(args);
        }
        return commands::reencrypt::run(args);
    }
    if args.fetch_cert {
        return commands::fetch_cert::run(args);
    }
    if let Some(path) = &args.merge_into {
        return commands::merge::run(args, path);
    }
    if args.raw {
        return commands::raw::run(args);
    }
    commands::seal::run(args)
}

pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os().skip(1).peekable();
    if argv.peek().is_some_and(|first| first == "lint") {
        return lint::main(argv.skip(1));
    }
    if argv.peek().is_some_and(|first| first == "sync") {
        return sync::main(argv.skip(1));
    }
    if argv.peek().is_some_and(|first| first == "keys") {
        return keys::main(argv.skip(1));
    }
    if argv.peek().is_some_and(|first| first == "env") {
        return env::main(argv.skip(1));
    }
    if argv.peek().is_some_and(|first| first == "ui") {
        return ui::main(argv.skip(1));
    }
    if argv.peek().is_some_and(|first| first == "re-encrypt") {
        return reencrypt_all::main(argv.skip(1));
    }
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
