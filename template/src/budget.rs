//! The rendering budget one SealedSecret's templates share.
//!
//! Go's `text/template` has no limits, and upstream renders every `spec.template.data` entry of
//! an object even when its items did not open, keeping all output. A 0.8 MB SealedSecret with
//! 20,000 entries of `{{ repeat 16777216 "a" }}` made a controller peak at 7.5 GB. Limits per
//! template do not help against many templates, so these limits are per object: every entry of
//! one SealedSecret draws on the same [`Budget`] of execution steps, bytes produced by functions
//! and rendered bytes. The first limit hit fails the render with a
//! [`TemplateError::Limit`](crate::TemplateError::Limit) that names the limit, never the data.
//!
//! The checks on the object's shape made before anything is decrypted or parsed (entry count,
//! input size) belong to the caller that knows the object (`sealed_secrets_core::budget`).
//!
//! # Why these values
//! Everything a SealedSecret can legitimately produce ends in one Kubernetes Secret, and the API
//! server refuses a Secret whose data exceeds 1 MiB (`MaxSecretSize`). The limits are set from
//! that fact with a wide margin for intermediate values, so no SealedSecret the API server could
//! store and turn into a Secret is refused. The templates in this repository's tests use a few
//! dozen steps each.

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
