//! The synchronous work behind `/v1/verify` and `/v1/rotate`, run on the crypto pool: the
//! posted body parsed as exactly one SealedSecret, checked against the item cap and for base64
//! before any RSA work, then opened (verify) or re-sealed with the newest key (rotate).
//! Templates are not run (see [`super`]). Error texts describe structure and limits only.

use base64::Engine;
use sealed_secrets_core::{
    crypto::SystemRandom,
    documents::{DocumentError, parse_documents, to_go_json_compact},
    reencrypt::{ReencryptError, reencrypt},
    sealed_secret::{SealedSecret, SealedSecretParseError},
    unseal::{UnsealOptions, unseal},
};
use serde_json::Value;
use zeroize::Zeroize;

use super::{
    budget::{Cancel, Guarded, RequestLimits},
    key_service::KeyService,
};

/// Upstream's refusal of multi-document bodies on `/v1/verify`.
pub const MULTISTREAM_ERROR: &str = "Multistream YAML not supported yet (see https://github.com/bitnami-labs/sealed-secrets/issues/114)";

/// Why a posted body is not one SealedSecret, or was not processed. Texts describe structure
/// and limits only.
#[derive(Debug, thiserror::Error)]
pub(super) enum RequestError {
    #[error("{MULTISTREAM_ERROR}")]
    Multistream,
    #[error("no object in request body")]
    Empty,
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    NotSealedSecret(#[from] SealedSecretParseError),
    #[error("more than {0} items in one SealedSecret")]
    TooManyItems(usize),
    #[error("an item is not valid base64")]
    Undecodable,
    #[error("the request is gone")]
    Cancelled,
    #[error("no sealing key available")]
    NoKey,
    #[error(transparent)]
    Reencrypt(#[from] ReencryptError),
}

fn decode_sealed_secret(body: &[u8]) -> Result<SealedSecret, RequestError> {
    let mut documents = parse_documents(body)?;
    if documents.len() > 1 {
        return Err(RequestError::Multistream);
    }
    let document = documents.pop().ok_or(RequestError::Empty)?;
    Ok(SealedSecret::from_value(document)?)
}

/// Refuses objects over the item cap; the deprecated `spec.data` blob counts as one item.
fn check_items(sealed: &SealedSecret, limits: RequestLimits) -> Result<(), RequestError> {
    let items = sealed.spec.encrypted_data.len() + usize::from(sealed.spec.data.is_some());
    if items > limits.max_items {
        return Err(RequestError::TooManyItems(limits.max_items));
    }
    Ok(())
}

/// Whether every `encryptedData` item is base64, checked before any RSA work: an item that is
/// not cannot open, so the whole object cannot.
fn items_are_base64(sealed: &SealedSecret) -> bool {
    sealed.spec.encrypted_data.values().all(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .is_ok()
    })
}

/// Whether every `encryptedData` item (or the deprecated blob) of the posted object opens in its
/// own scope. Templates are not run (see the module docs). Stops at the first item that does
/// not open, and between items once `cancel` is set.
pub(super) fn opens(
    keys: &dyn KeyService,
    body: &[u8],
    limits: RequestLimits,
    cancel: &Cancel,
) -> Result<bool, RequestError> {
    let mut sealed = decode_sealed_secret(body)?;
    check_items(&sealed, limits)?;
    if !items_are_base64(&sealed) {
        return Ok(false);
    }
    sealed.spec.template.data = None;
    let decrypter = keys.decrypter();
    let guarded = Guarded::new(decrypter.as_ref(), cancel);
    let options = UnsealOptions {
        accept_deprecated_v1_data: true,
    };
    let outcome = unseal(&sealed, &guarded, options);
    if cancel.is_cancelled() {
        return Err(RequestError::Cancelled);
    }
    Ok(match outcome {
        Ok(mut secret) => {
            for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
                value.0.zeroize();
            }
            true
        }
        Err(_) => false,
    })
}

/// `/v1/rotate`: the re-sealed object as JSON without `apiVersion`/`kind`.
pub(super) fn reseal(
    keys: &dyn KeyService,
    body: &[u8],
    limits: RequestLimits,
    cancel: &Cancel,
) -> Result<String, RequestError> {
    let sealed = decode_sealed_secret(body)?;
    check_items(&sealed, limits)?;
    if !items_are_base64(&sealed) {
        return Err(RequestError::Undecodable);
    }
    let key = keys.sealing_public_key().ok_or(RequestError::NoKey)?;
    let decrypter = keys.decrypter();
    let guarded = Guarded::new(decrypter.as_ref(), cancel);
    let resealed = reencrypt(&sealed, &guarded, &key, &mut SystemRandom);
    if cancel.is_cancelled() {
        return Err(RequestError::Cancelled);
    }
    let mut value = resealed?.to_upstream_value();
    if let Value::Object(map) = &mut value {
        map.shift_remove("kind");
        map.shift_remove("apiVersion");
        map.shift_remove("status");
    }
    Ok(to_go_json_compact(&value))
}
