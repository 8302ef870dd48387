//! One module per kubeseal mode. Each mode builds its whole output in memory and hands it to
//! [`crate::io::emit`], so nothing is written when anything fails.

pub mod fetch_cert;
pub mod merge;
pub mod raw;
pub mod recover;
pub mod reencrypt;
pub mod rotate;
pub mod seal;
pub mod validate;

use std::path::Path;

use anyhow::Result;
use sealed_secrets_core::{cert::Certificate, keys::PublicKey};

use crate::{args::Args, cert_source::open_cert};

/// The public key to seal with: `--cert`, parsed, and refused when expired.
pub fn sealing_key(args: &Args) -> Result<PublicKey> {
    let pem = open_cert(args)?;
    let cert = Certificate::from_pem(&pem)?;
    cert.check_not_expired(jiff::Timestamp::now())?;
    Ok(cert.public_key().clone())
}

/// The public key to seal with for a mode that reads or writes `path`: the environment's
/// (by `--env` or the path's route, checked against the controller when a connection is named)
/// with its fingerprint to record, else [`sealing_key`].
pub fn sealing_key_routed(args: &Args, path: Option<&Path>) -> Result<(PublicKey, Option<String>)> {
    let Some((repo, env)) = crate::env::guard::environment_for(args, path)? else {
        return Ok((sealing_key(args)?, None));
    };
    let (cert, source) = crate::env::seal::certificate_for(&repo, &env, args)?;
    let fingerprint = cert.public_key().fingerprint();
    eprintln!("kubeseal: sealing for environment {env:?} with certificate {fingerprint} {source}");
    Ok((cert.public_key().clone(), Some(fingerprint)))
}
