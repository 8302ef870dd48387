//! One budget per SealedSecret for opening it.
//!
//! Go's `text/template` has no limits, and upstream renders every `spec.template.data` entry of
//! an object even when its items did not open, keeping all output. A 0.8 MB SealedSecret with
//! 20,000 entries of `{{ repeat 16777216 "a" }}` made a controller peak at 7.5 GB. Limits per
//! template do not help against many templates, so the limits here are per object: every entry
//! of one SealedSecret draws on the same [`Budget`] of execution steps, bytes produced by
//! functions and rendered bytes, and the object's shape (entry count, input size) is checked
//! before any key is tried or any template parsed. The first limit hit fails the whole object
//! with an error that names the limit, never the data, which the controller reports as
//! `Synced=False`.
//!
//! # Why these values
//! Everything a SealedSecret can legitimately produce ends in one Kubernetes Secret, and the API
//! server refuses a Secret whose data exceeds 1 MiB (`MaxSecretSize`) and any request body over
//! 3 MiB. The limits are set from those two facts with a wide margin for intermediate values, so
//! no SealedSecret the API server could store and turn into a Secret is refused. For scale: the
//! upstream vectors (`../shared/vectors`, all opened under this budget by
//! `core/tests/upstream_vectors.rs`) are 2-7 KB files with seven items and no templates, and the
//! templates in this repository's tests use a few dozen steps each.

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

/// Most bytes all templates of one SealedSecret may render together: 1 MiB.
///
/// This is Kubernetes' `MaxSecretSize`: a Secret whose data is larger is refused by the API
/// server, so rendering more can never produce a Secret.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

/// Most operations (actions, commands, loop iterations, function calls, elements of lists and
/// maps that a function has to walk) all templates of one SealedSecret may run together.
///
/// Two million is a few hundred milliseconds of CPU at worst; a template that loops over every
/// line of a 1 MiB configuration file needs well under half of it.
pub const MAX_STEPS: u64 = 2_000_000;

/// Most bytes that function calls of all templates of one SealedSecret may produce together
/// (strings, plus the elements of lists and maps they build): 32 MiB.
///
/// Thirty-two times the largest Secret, room for encodings, splits and joins of the largest
/// value; it bounds the memory one object can take while it renders.
pub const MAX_ALLOCATED_BYTES: usize = 32 << 20;

/// What is left of one SealedSecret's budget while its templates render.
///
/// Create one per object with [`Budget::per_object`] and pass the same value to every entry's
/// render, so the limits hold for the object as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Operations run so far.
    pub(crate) steps: u64,
    /// Bytes produced by function calls so far.
    pub(crate) allocated: usize,
    /// Bytes rendered so far.
    pub(crate) rendered: usize,
}

impl Budget {
    /// A fresh budget with the per-object limits of this module.
    pub const fn per_object() -> Self {
        Budget {
            steps: 0,
            allocated: 0,
            rendered: 0,
        }
    }

    /// Operations run so far.
    pub fn steps_used(&self) -> u64 {
        self.steps
    }

    /// Bytes produced by function calls so far.
    pub fn allocated_bytes(&self) -> usize {
        self.allocated
    }

    /// Bytes rendered so far.
    pub fn rendered_bytes(&self) -> usize {
        self.rendered
    }

    /// Bytes that may still be produced by function calls.
    pub(crate) fn allocated_left(&self) -> usize {
        MAX_ALLOCATED_BYTES.saturating_sub(self.allocated)
    }

    /// Bytes that may still be rendered.
    pub(crate) fn rendered_left(&self) -> usize {
        MAX_RENDERED_BYTES.saturating_sub(self.rendered)
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::per_object()
    }
}

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
