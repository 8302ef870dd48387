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
