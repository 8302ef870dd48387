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
//! - Guards against runaway templates that Go does not have: nesting depth, number of
//!   executed operations, size of strings and of the output, and a `set` that would make a
//!   map contain itself.
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

use exec::State;
use parser::Parser;
use printf::go_quote_str;
use value::Value;

/// Deepest nesting of blocks and parenthesised pipelines the parser accepts.
const MAX_PARSE_DEPTH: usize = 100;
/// Deepest nesting of blocks, template calls and parenthesised pipelines during execution.
const MAX_EXEC_DEPTH: usize = 200;
/// Most operations (actions, commands, loop iterations, copied elements) one render may run.
const MAX_STEPS: u64 = 2_000_000;
/// Largest rendered output.
const MAX_OUTPUT: usize = 16 << 20;
/// Largest string a single function may produce.
const MAX_STRING: usize = 16 << 20;
/// Most bytes of strings all function calls of one render may produce together.
const MAX_ALLOCATED: usize = 256 << 20;
/// Deepest nesting of lists and maps that is printed, compared or encoded.
const MAX_VALUE_DEPTH: usize = 100;
/// Largest width or precision `printf` accepts (as Go does).
const MAX_FORMAT_WIDTH: usize = 1_000_000;

/// Renders one template with `values` as the data context (`.` is a map key -> string).
///
/// `name` is the data key the template belongs to; it names the template in error messages
/// (`template: <name>:<line>:<col>: …`) and can be used with `{{ template "<name>" }}`.
pub fn render(
    name: &str,
    template: &str,
    values: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, TemplateError> {
    let templates = Parser::parse(name, template)?;
    let root = Value::string_map(values);
    let mut state = State::new(name, template, &templates);
    state.execute_main(root)?;
    Ok(state.out)
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
