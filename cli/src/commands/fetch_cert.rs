//! `--fetch-cert`: copy the certificate bytes verbatim to the output.

use anyhow::Result;

use crate::{args::Args, cert_source::open_cert, io::emit};

/// Runs the mode.
pub fn run(args: &Args) -> Result<()> {
    if !args.env.is_empty() {
        crate::env::guard::check_online(args, None, None)?;
    }
    let pem = open_cert(args)?;
    emit(args.sealed_secret_file.as_deref(), &pem)
}
