//! One budget per SealedSecret for opening it.
//!
//! Upstream renders every `spec.template.data` entry of an object without limits, so one small
//! SealedSecret full of template bombs could take a controller to gigabytes (the case is in
//! `sealed_secrets_template::budget`). Limits per template do not help against many templates,
//! so the limits here are per object, in two parts:
//! - the object's shape (entry count, input size, defined here) is checked before any key is
//!   tried or any template parsed;
//! - every entry of one SealedSecret then renders under the same [`Budget`] of execution steps,
//!   bytes produced by functions and rendered bytes. That budget belongs to the template engine
//!   and is defined there (`sealed_secrets_template::budget`); it is re-exported here so this
//!   module stays the one place that lists everything opening one SealedSecret may use, as
//!   [`crate::unseal`] applies it and the docs describe it.
//!
//! The first limit hit fails the whole object with an error that names the limit, never the
//! data, which the controller reports as `Synced=False`.
//!
//! # Why these values
//! Everything a SealedSecret can legitimately produce ends in one Kubernetes Secret, and the API
//! server refuses a Secret whose data exceeds 1 MiB (`MaxSecretSize`) and any request body over
//! 3 MiB. The limits are set from those two facts with a wide margin for intermediate values, so
//! no SealedSecret the API server could store and turn into a Secret is refused. For scale: the
//! upstream vectors (`../shared/vectors`, all opened under this budget by
//! `core/tests/upstream_vectors.rs`) are 2-7 KB files with seven items and no templates, and the
//! templates in this repository's tests use a few dozen steps each.

pub use sealed_secrets_template::budget::{
    Budget, MAX_ALLOCATED_BYTES, MAX_RENDERED_BYTES, MAX_STEPS,
};

/// Most `spec.template.data` entries one SealedSecret may have.
///
/// Real SealedSecrets template a handful of values; a Secret with more than a thousand keys is
/// already unusual. Checked before anything is decrypted or parsed.
pub const MAX_TEMPLATE_ENTRIES: usize = 1024;

/// Most bytes of input one SealedSecret may carry in `spec.encryptedData` (base64 text),
/// `spec.data` and `spec.template.data` (template text) together: 3 MiB.
///
/// The API server refuses request bodies over 3 MiB, so no stored object comes near it; files
/// given to `kubeseal --recovery-unseal` or synced from Git get the same bound. Checked before
/// anything is decrypted or parsed.
pub const MAX_INPUT_BYTES: usize = 3 << 20;

/// A SealedSecret whose shape is over budget before any work starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// Too many `spec.template.data` entries.
    #[error(
        "spec.template.data has {count} entries, more than the limit of {MAX_TEMPLATE_ENTRIES} per SealedSecret"
    )]
    TemplateEntries {
        /// How many entries the object has.
        count: usize,
    },
    /// Too many bytes of ciphertext and template text.
    #[error(
        "spec.encryptedData, spec.data and spec.template.data hold {size} bytes, more than the limit of {MAX_INPUT_BYTES} per SealedSecret"
    )]
    InputBytes {
        /// How many bytes the object carries.
        size: usize,
    },
}
