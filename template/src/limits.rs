//! Limits on a single parse, call or value, which Go does not have: they keep one template
//! from recursing or allocating without bound before the per-object [`Budget`] would notice.
//!
//! The limits shared by all templates of a SealedSecret (steps, bytes produced, bytes
//! rendered) are in [`crate::budget`].
//!
//! [`Budget`]: crate::budget::Budget

/// Deepest nesting of blocks and parenthesised pipelines the parser accepts.
pub(crate) const MAX_PARSE_DEPTH: usize = 100;
/// Deepest nesting of blocks, template calls and parenthesised pipelines during execution.
pub(crate) const MAX_EXEC_DEPTH: usize = 200;
/// Largest string a single function may produce: 4 MiB, four times the largest Secret.
pub(crate) const MAX_STRING: usize = 4 << 20;
/// Deepest nesting of lists and maps that is printed, compared or encoded.
pub(crate) const MAX_VALUE_DEPTH: usize = 100;
/// Largest width or precision `printf` accepts (as Go does).
pub(crate) const MAX_FORMAT_WIDTH: usize = 1_000_000;
/// Deepest nesting of arrays and objects `fromJson` reads (Go allows 10,000; the reader
/// recurses, and serde_json, which `fromJson` used before, stopped at 127).
pub(crate) const MAX_JSON_DEPTH: usize = 128;
