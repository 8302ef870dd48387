//! Go `text/template` rendering of `spec.template.data`.
//!
//! Upstream Sealed Secrets lets a SealedSecret shape the values of the Secret it produces:
//! every entry of `spec.template.data` is a Go `text/template`, named after its data key,
//! executed with the decrypted items as its data (a Go `map[string]string`) and the Sprig v3
//! function map minus `env`, `expandenv` and `getHostByName` (so a template can't learn
//! anything about the controller's environment). This module is a small, self-contained
//! re-implementation of that language (lexer, parser and executor written from scratch,
//! following the documented Go semantics), so existing SealedSecrets render byte for byte the
//! same here.
//!
//! # Language
//! Text and actions `{{ }}` with the `{{-` / `-}}` trim markers; comments `{{/* */}}`;
//! pipelines `a | b c` (the piped value is the *last* argument); variables `$x := …`,
//! `$x = …` and `$`; fields `.key`, `$v.key`, `(pipe).key`; literals (strings with Go escapes,
//! raw strings, characters, integers, floats, `true`, `false`, `nil`); `if` / `else if` /
//! `else`, `range` (over lists, maps in key order and integers, with `break`, `continue` and
//! `else`), `with` / `else with` / `else`, `define`, `template` and `block`.
//!
//! # Functions
//! Go builtins: `and`, `or`, `not`, `len`, `index`, `slice`, `print`, `printf`, `println`,
//! `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `html`, `js`, `urlquery`.
//!
//! Sprig: `toString`, `quote`, `squote`, `trim`, `trimAll`, `trimall`, `trimPrefix`,
//! `trimSuffix`, `upper`, `lower`, `title`, `replace`, `repeat`, `substr`, `trunc`,
//! `contains`, `hasPrefix`, `hasSuffix`, `cat`, `indent`, `nindent`, `nospace`, `default`,
//! `empty`, `coalesce`, `ternary`, `required`, `fail`, `join`, `split`, `splitList`,
//! `toStrings`, `sortAlpha`, `list`, `first`, `last`, `append`, `push`, `has`, `dict`, `get`,
//! `set`, `unset`, `hasKey`, `keys`, `values`, `toJson`, `toPrettyJson`, `toRawJson`,
//! `fromJson`, `b64enc`, `b64dec`, `b32enc`, `b32dec`, `sha1sum`, `sha256sum`, `sha512sum`,
//! `adler32sum`, `atoi`, `int`, `int64`, `float64`, `add`, `add1`, `sub`, `mul`, `div`,
//! `mod`, `max`, `min`. The full list is [`SUPPORTED_FUNCTIONS`]; any other name (notably
//! `env`, `expandenv` and `getHostByName`) fails at parse time with
//! `function "NAME" not defined`, as upstream does.
//!
//! # Differences from Go and Sprig
//! - Sprig functions not listed above (dates, regular expressions, random values, crypto
//!   helpers such as `htpasswd` or `genPrivateKey`, semver, …) are not defined.
//! - All integers are 64-bit and any integer is accepted where Go wants an `int`
//!   (Go rejects e.g. an `int64` from `add` passed to `indent`).
//! - `keys` and `values` return map entries in key order (Go's order is random).
//! - Only strings with valid UTF-8 are changed rune-wise (`upper`, `title`, `nospace`, …);
//!   invalid bytes are then replaced by U+FFFD as Go does. Everything else works on bytes, so a
//!   binary value passes through `{{ .key }}`, `b64enc`, `sha256sum`, … unchanged.
//! - `printf` supports the flags `+-# 0`, width, precision and the verbs
//!   `v s q d x X o b c U f F e E g G t %`, but not explicit argument indexes.
//! - Guards against runaway templates that Go does not have: nesting depth, the size of each
//!   string, a `set` that would make a map contain itself, and one [`Budget`] per SealedSecret
//!   shared by all its templates (operations run, bytes produced by functions, bytes
//!   rendered; see [`crate::budget`]). A function that would print, encode, join or compare a
//!   list or map larger than what is left of the budget fails before it starts.
//! - Error messages never quote template data: where Go would print a value (for example the
//!   message of a `fail` that is not a string literal) it is withheld.

mod builtins;
mod encoding;
mod exec;
mod functions;
mod lexer;
mod parser;
mod printf;
mod sprig;
mod value;

use std::collections::BTreeMap;

use zeroize::Zeroizing;

pub use crate::budget::Budget;
use exec::State;
use parser::{Parser, Templates};
use printf::go_quote_str;
use value::Value;

/// Deepest nesting of blocks and parenthesised pipelines the parser accepts.
const MAX_PARSE_DEPTH: usize = 100;
/// Deepest nesting of blocks, template calls and parenthesised pipelines during execution.
const MAX_EXEC_DEPTH: usize = 200;
/// Largest string a single function may produce: 4 MiB, four times the largest Secret.
///
/// The limits shared by all templates of a SealedSecret (steps, bytes produced, bytes
/// rendered) are in [`crate::budget`].
const MAX_STRING: usize = 4 << 20;
/// Deepest nesting of lists and maps that is printed, compared or encoded.
const MAX_VALUE_DEPTH: usize = 100;
/// Largest width or precision `printf` accepts (as Go does).
const MAX_FORMAT_WIDTH: usize = 1_000_000;

/// A parsed template, ready to render any number of times.
pub struct Template<'a> {
    name: &'a str,
    src: &'a str,
    templates: Templates,
}

impl<'a> Template<'a> {
    /// Parses `text`, the template of data key `name`.
    ///
    /// `name` names the template in error messages (`template: <name>:<line>:<col>: …`) and
    /// can be used with `{{ template "<name>" }}`.
    pub fn parse(name: &'a str, text: &'a str) -> Result<Self, TemplateError> {
        Ok(Template {
            name,
            src: text,
            templates: Parser::parse(name, text)?,
        })
    }

    /// Renders with `data` as `.`, charging steps, produced bytes and output to `budget`.
    ///
    /// # Errors
    /// The first execution error, or the first limit of `budget` (or of a single value) that
    /// is exceeded; the budget then stays spent.
    pub fn render(
        &self,
        data: &Data,
        budget: &mut Budget,
    ) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
        let mut state = State::new(self.name, self.src, &self.templates, *budget);
        let result = state.execute_main(data.root.clone());
        *budget = state.budget;
        result?;
        Ok(std::mem::take(&mut state.out))
    }
}

/// The data context of templates (Go's `map[string]string` of the opened items), built once
/// per SealedSecret and shared by all its templates. Its copies of the values are wiped when
/// it is dropped.
pub struct Data {
    root: Value,
}

impl Data {
    /// The data context for `values` (data key -> value).
    pub fn new<V: AsRef<[u8]>>(values: &BTreeMap<String, V>) -> Self {
        Data {
            root: Value::string_map(values),
        }
    }
}

/// Renders one template with `values` as the data context, under a fresh per-object
/// [`Budget`].
///
/// `name` is the data key the template belongs to; it names the template in error messages
/// (`template: <name>:<line>:<col>: …`) and can be used with `{{ template "<name>" }}`.
pub fn render<V: AsRef<[u8]>>(
    name: &str,
    template: &str,
    values: &BTreeMap<String, V>,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let template = Template::parse(name, template)?;
    template.render(&Data::new(values), &mut Budget::per_object())
}

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

/// Names of the supported functions (for docs/tests).
pub const SUPPORTED_FUNCTIONS: &[&str] = &[
    // Go builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    // Sprig: strings
    "toString",
    "quote",
    "squote",
    "trim",
    "trimAll",
    "trimall",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "title",
    "replace",
    "repeat",
    "substr",
    "trunc",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "cat",
    "indent",
    "nindent",
    "nospace",
    // Sprig: defaults and flow
    "default",
    "empty",
    "coalesce",
    "ternary",
    "required",
    "fail",
    // Sprig: lists
    "join",
    "split",
    "splitList",
    "toStrings",
    "sortAlpha",
    "list",
    "first",
    "last",
    "append",
    "push",
    "has",
    // Sprig: dictionaries
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "keys",
    "values",
    // Sprig: encodings and digests
    "toJson",
    "toPrettyJson",
    "toRawJson",
    "fromJson",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    // Sprig: numbers
    "atoi",
    "int",
    "int64",
    "float64",
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
];

#[cfg(test)]
mod tests;
