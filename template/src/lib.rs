//! Go `text/template` with the Sprig functions, as Sealed Secrets renders `spec.template.data`.
//!
//! Upstream Sealed Secrets lets a SealedSecret shape the values of the Secret it produces:
//! every entry of `spec.template.data` is a Go `text/template`, named after its data key,
//! executed with the decrypted items as its data (a Go `map[string]string`) and the Sprig v3
//! function map minus `env`, `expandenv` and `getHostByName` (so a template can't learn
//! anything about the controller's environment). This crate is a small, self-contained
//! re-implementation of that language (lexer, parser and executor written from scratch,
//! following the documented Go semantics), so existing SealedSecrets render byte for byte the
//! same here.
//!
//! `sealed-secrets-core` renders every template of a SealedSecret with it (`unseal`), under one
//! [`Budget`] per object:
//!
//! ```
//! use std::collections::BTreeMap;
//! use sealed_secrets_template::{Budget, Data, Template};
//!
//! let items = BTreeMap::from([("user".to_string(), b"alice".to_vec())]);
//! let data = Data::new(&items);
//! let mut budget = Budget::per_object();
//! let template = Template::parse("greeting", r#"{{ .user | upper | printf "hi %s" }}"#)?;
//! assert_eq!(template.render(&data, &mut budget)?.as_slice(), b"hi ALICE");
//! # Ok::<(), sealed_secrets_template::TemplateError>(())
//! ```
//!
//! # Why a crate of its own
//! The engine is a language implementation (about 6,000 lines, more than half of what the core
//! crate was) that shares nothing with the sealing cryptography, the CRD types or key
//! handling: it takes a template and a map of byte strings and returns bytes. On its own it
//! builds and tests without Kubernetes types, YAML or X.509, its fuzz target depends on it
//! alone, and the dependency points one way: `sealed-secrets-core` uses this crate, never the
//! other way round.
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
//!   rendered; see [`budget`]). A function that would print, encode, join or compare a
//!   list or map larger than what is left of the budget fails before it starts.
//! - `fromJson` reads at most 128 levels of nesting (deeper is `nil`, as any text that is not
//!   JSON) and fails when the value it builds would take more than 4 MiB.
//! - A function's result is charged by the memory it holds that nothing else holds: a list or
//!   map counts its slots plus every string, list and map the call made in it (an estimated
//!   64 bytes each plus their bytes), so a `splitList` into more than about 65,000 pieces is
//!   over the 4 MiB limit of one value.
//! - Error messages never quote template data: where Go would print a value (for example the
//!   message of a `fail` that is not a string literal) it is withheld.

//!
//! # Limits
//! Per object, shared by every template of one SealedSecret ([`budget`]): at most
//! [`budget::MAX_STEPS`] operations, [`budget::MAX_ALLOCATED_BYTES`] bytes produced by function
//! calls and [`budget::MAX_RENDERED_BYTES`] bytes rendered. Per value and call: strings of at
//! most 4 MiB, nesting of blocks and pipelines at most 100 deep when parsing and 200 when
//! executing, lists and maps printed or compared at most 100 deep, `printf` widths at most
//! 1,000,000. Over a limit the render fails with [`TemplateError::Limit`], which names the
//! limit and nothing of the data. The checks on the object's shape before anything is
//! decrypted (entry count, input size) are the caller's (`sealed_secrets_core::budget`).
//!
//! # Modules and their dependency order
//! Each module uses only modules above it (the root uses `budget`, `error`, `exec`, `parser`
//! and `value`), so no two modules import each other:
//!
//! | module | uses | what it is |
//! |---|---|---|
//! | `limits` | – | per-value limits (string size, nesting depths, `printf` width) |
//! | `wiping` | – | the byte buffer that wipes what it leaves when it grows or is dropped |
//! | [`budget`] | – | the per-object budget and its limits |
//! | `strconv` | – | Go's quoting, unquoting and number literals |
//! | `value` | limits, wiping | template values (secret strings, numbers, lists, maps) |
//! | `error` | strconv | [`TemplateError`] |
//! | `printf` | limits, strconv, value, wiping | Go's `fmt`: `%v`, `print`, `printf`, floats |
//! | `encoding` | limits, printf, value, wiping | hex, Adler-32, base32, Go's JSON output |
//! | `helpers` | limits, value | errors and size checks shared by the functions |
//! | `json_read` | limits, value, wiping | `fromJson`'s reader: Go's JSON decoding into values |
//! | `builtins` | helpers, printf, strconv, value, wiping | Go's builtin functions |
//! | `sprig` | encoding, helpers, json_read, limits, printf, strconv, value, wiping | the Sprig functions |
//! | `functions` | builtins, sprig, value | the function table: names, signatures, calls |
//! | `lexer` | strconv | template text to tokens |
//! | `parser` | error, functions, lexer, limits, strconv | tokens to the syntax tree |
//! | `exec` | budget, error, functions, limits, parser, printf, strconv, value, wiping | the executor |

pub mod budget;
mod builtins;
mod encoding;
mod error;
mod exec;
mod functions;
mod helpers;
mod json_read;
mod lexer;
mod limits;
mod parser;
mod printf;
mod sprig;
mod strconv;
mod value;
mod wiping;

use std::collections::BTreeMap;

use zeroize::Zeroizing;

pub use budget::Budget;
pub use error::TemplateError;
use exec::State;
use parser::{Parser, Templates};
use value::Value;

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
        Ok(std::mem::take(&mut state.out).into_zeroizing())
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
