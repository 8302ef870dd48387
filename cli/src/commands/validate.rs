//! `--validate`: ask the controller (through the API server's service proxy, `/v1/verify`)
//! whether it can open every SealedSecret of the input. Stops at the first failure; prints
//! nothing on success.

use anyhow::{Result, anyhow, bail};
use sealed_secrets_core::sealed_secret::SealedSecret;
use serde_json::Value;

use crate::{
    args::Args,
    cluster::{Controller, Reply},
    commands::{reencrypt::read_sealed_input, seal::input_documents},
    io::Source,
};

/// The input's documents, each checked to be a SealedSecret; errors say which document.
pub fn sealed_documents(source: &Source, bytes: &[u8]) -> Result<Vec<(Value, SealedSecret)>> {
    let docs = input_documents(source, bytes)?;
    let count = docs.len();
    docs.into_iter()
        .enumerate()
        .map(|(i, doc)| {
            let sealed = SealedSecret::from_value(doc.clone()).map_err(|e| {
                if count > 1 {
                    anyhow!("{e} (document {} of {source})", i + 1)
                } else {
                    anyhow!("{e} ({source})")
                }
            })?;
            Ok((doc, sealed))
        })
        .collect()
}

/// The text for a 429: who throttles, and when to come back if the answer says.
pub fn rate_limited(prefix: &str, reply: &Reply) -> String {
    let who = if reply.answered_by_api_server() {
        "the API server"
    } else {
        "the controller"
    };
    let mut text = format!("{prefix}: {who} is rate limiting requests (HTTP 429); retry later");
    if let Some(after) = reply.retry_after.as_deref().map(str::trim) {
        let unit = if after.parse::<u64>().is_ok() {
            "s"
        } else {
            ""
        };
        text.push_str(&format!(" (Retry-After: {after}{unit})"));
    }
    text
}

/// Runs the mode.
pub fn run(args: &Args) -> Result<()> {
    let controller = Controller::connect(args, "cannot validate sealed secret")?;
    crate::env::guard::check_online(args, args.secret_file.as_deref(), Some(&controller))?;
    let (source, bytes) = read_sealed_input(args)?;
    let docs = sealed_documents(&source, &bytes)
        .map_err(|e| anyhow!("unable to decrypt sealed secret ({e:#})"))?;
    for (doc, sealed) in docs {
        let name = sealed.metadata.name.as_deref().unwrap_or("");
        let body = serde_json::to_vec(&doc)?;
        let reply = controller
            .post("/v1/verify", body)
            .map_err(|e| anyhow!("cannot validate sealed secret: {e}"))?;
        match reply.status {
            200..=299 => {}
            409 => bail!("unable to decrypt sealed secret: {name}"),
            429 => bail!(rate_limited("cannot validate sealed secret", &reply)),
            _ => bail!(
                "cannot validate sealed secret: {}",
                controller.failure(&reply, "post", "create")
            ),
        }
    }
    Ok(())
}
