//! The one error type of the engine, with Go's message formats.
//!
//! Its own module so the parser and the executor (which make the errors) and the crate root
//! (which returns them) share it without depending on each other.

use crate::strconv::go_quote_str;

/// Why a template could not be rendered.
///
/// The texts follow Go's (`template: NAME:LINE: …` for parse errors,
/// `template: NAME:LINE:COL: executing "NAME" at <ACTION>: …` for execution errors) and only
/// ever contain the template's name, positions, excerpts of the template text and type names,
/// never template data or rendered output.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template text is not a valid template.
    #[error("template: {name}:{line}: {message}")]
    Parse {
        /// Name of the template (the data key).
        name: String,
        /// Line (from 1) where the problem was found.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Executing an action failed.
    #[error(
        "template: {name}:{line}:{column}: executing {} at <{context}>: {message}",
        go_quote_str(.executing)
    )]
    Exec {
        /// Name of the template (the data key).
        name: String,
        /// Line (from 1) of the failing action.
        line: usize,
        /// Byte offset (from 0) of the failing action in its line.
        column: usize,
        /// Name of the template being executed (differs from `name` inside `{{ template }}`).
        executing: String,
        /// The failing part of the action, as written in the template (at most 20 characters).
        context: String,
        /// What went wrong.
        message: String,
    },
    /// The template exceeded one of the limits that protect the renderer.
    #[error("template: {name}: {message}")]
    Limit {
        /// Name of the template (the data key).
        name: String,
        /// Which limit was exceeded.
        message: String,
    },
}
