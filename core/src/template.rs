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

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Display, Write as _};
use std::rc::Rc;

use base64::Engine as _;

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

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A value during execution, mirroring the Go types templates see.
#[derive(Clone, Debug)]
enum Value {
    /// Go's invalid `reflect.Value`, e.g. a missing map key; prints as `<no value>`.
    Missing,
    /// An untyped `nil`; prints as `<nil>`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Go string: any bytes.
    Str(Rc<[u8]>),
    /// `[]interface{}` (and `[]string`).
    List(Rc<ListValue>),
    /// `map[string]interface{}` (and `map[string]string`); shared, since `set` mutates it.
    Map(Rc<MapValue>),
}

/// The elements of a list.
#[derive(Debug, Default)]
struct ListValue {
    items: Vec<Value>,
}

/// The entries of a map, kept sorted by key as Go sorts keys when printing and ranging.
#[derive(Debug, Default)]
struct MapValue {
    entries: RefCell<BTreeMap<Vec<u8>, Value>>,
    /// True for Go's `map[string]string` (the data), false for `map[string]interface{}`.
    string_elems: bool,
}

impl Drop for ListValue {
    fn drop(&mut self) {
        drop_iteratively(std::mem::take(&mut self.items));
    }
}

impl Drop for MapValue {
    fn drop(&mut self) {
        let entries = std::mem::take(self.entries.get_mut());
        drop_iteratively(entries.into_values().collect());
    }
}

/// Drops nested lists and maps without recursion, so deeply nested values can't overflow
/// the stack.
fn drop_iteratively(mut pending: Vec<Value>) {
    while let Some(value) = pending.pop() {
        match value {
            Value::List(list) => {
                if let Some(mut list) = Rc::into_inner(list) {
                    pending.append(&mut list.items);
                }
            }
            Value::Map(map) => {
                if let Some(mut map) = Rc::into_inner(map) {
                    let entries = std::mem::take(map.entries.get_mut());
                    pending.extend(entries.into_values());
                }
            }
            _ => {}
        }
    }
}

impl Value {
    fn str(bytes: impl AsRef<[u8]>) -> Value {
        Value::Str(Rc::from(bytes.as_ref()))
    }

    fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(ListValue { items }))
    }

    fn map(entries: BTreeMap<Vec<u8>, Value>) -> Value {
        Value::Map(Rc::new(MapValue {
            entries: RefCell::new(entries),
            string_elems: false,
        }))
    }

    /// The data: Go's `map[string]string`.
    fn string_map(values: &BTreeMap<String, Vec<u8>>) -> Value {
        let entries = values
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), Value::str(value)))
            .collect();
        Value::Map(Rc::new(MapValue {
            entries: RefCell::new(entries),
            string_elems: true,
        }))
    }

    /// Go's name of the value's type, for error messages.
    fn type_name(&self) -> &'static str {
        match self {
            Value::Missing => "<invalid Value>",
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(map) if map.string_elems => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    /// Go's notion of truth used by `if`, `with`, `and`, `or` and `not`.
    fn is_true(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(list) => !list.items.is_empty(),
            Value::Map(map) => map.entries.try_borrow().map_or(true, |e| !e.is_empty()),
        }
    }

    /// Sprig's `empty`: the zero value of its type, or nil.
    fn is_empty(&self) -> bool {
        !self.is_true()
    }

    fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// The bytes of a string (empty for other values; callers check types first).
    fn bytes(&self) -> &[u8] {
        match self {
            Value::Str(s) => s,
            _ => &[],
        }
    }

    /// The integer (0 for other values; callers check types first).
    fn int(&self) -> i64 {
        match self {
            Value::Int(i) => *i,
            _ => 0,
        }
    }

    /// A snapshot of a map's entries.
    fn map_entries(map: &MapValue) -> Vec<(Vec<u8>, Value)> {
        map.entries
            .try_borrow()
            .map(|entries| {
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "if" => Keyword::If,
            "else" => Keyword::Else,
            "end" => Keyword::End,
            "range" => Keyword::Range,
            "with" => Keyword::With,
            "define" => Keyword::Define,
            "template" => Keyword::Template,
            "block" => Keyword::Block,
            "break" => Keyword::Break,
            "continue" => Keyword::Continue,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum TokenKind {
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Identifier,
    Keyword(Keyword),
    Field,
    Variable,
    Dot,
    Number,
    Char,
    String,
    RawString,
    Bool,
    Nil,
    LeftParen,
    RightParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    /// Any other printable ASCII character inside an action.
    Punct,
    Eof,
    Error(String),
}

#[derive(Clone, Debug)]
struct Token {
    kind: TokenKind,
    /// Byte range of the token in the template text.
    start: usize,
    end: usize,
}

/// Splits a template into tokens; a lexical error becomes an `Error` token that ends the stream.
struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    paren_depth: usize,
    tokens: Vec<Token>,
}

fn is_trim_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Go's `%#U` rendering of a character, e.g. `U+007D '}'`.
fn describe_char(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

impl<'s> Lexer<'s> {
    fn lex(src: &'s str) -> Vec<Token> {
        let mut lexer = Lexer {
            src,
            pos: 0,
            paren_depth: 0,
            tokens: Vec::new(),
        };
        lexer.run();
        lexer.tokens
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            start,
            end: self.pos,
        });
    }

    fn error(&mut self, start: usize, message: impl Into<String>) {
        self.tokens.push(Token {
            kind: TokenKind::Error(message.into()),
            start,
            end: self.pos.max(start),
        });
    }

    fn run(&mut self) {
        let mut trim_leading = false;
        loop {
            if trim_leading {
                let skipped =
                    self.rest().len() - self.rest().trim_start_matches(is_trim_space).len();
                self.pos += skipped;
            }
            let text_start = self.pos;
            let Some(offset) = self.rest().find("{{") else {
                self.pos = self.src.len();
                if self.pos > text_start {
                    self.push(TokenKind::Text, text_start);
                }
                self.push(TokenKind::Eof, self.pos);
                return;
            };
            let delim = text_start + offset;
            let after = &self.src[delim + 2..];
            let trim_before = after.starts_with('-') && after[1..].starts_with(is_trim_space);
            let text = &self.src[text_start..delim];
            let text_end = if trim_before {
                text_start + text.trim_end_matches(is_trim_space).len()
            } else {
                delim
            };
            if text_end > text_start {
                self.tokens.push(Token {
                    kind: TokenKind::Text,
                    start: text_start,
                    end: text_end,
                });
            }
            self.pos = delim + 2 + if trim_before { 2 } else { 0 };
            let outcome = if self.rest().starts_with("/*") {
                self.lex_comment(delim)
            } else {
                self.tokens.push(Token {
                    kind: TokenKind::LeftDelim,
                    start: delim,
                    end: self.pos,
                });
                self.lex_action()
            };
            match outcome {
                Some(trim_after) => trim_leading = trim_after,
                None => return,
            }
        }
    }

    /// Recognises `}}` or ` -}}` at the current position: `(is delimiter, trims)`.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        let mut chars = rest.chars();
        if let (Some(first), Some('-')) = (chars.next(), chars.next())
            && is_trim_space(first)
            && rest[2..].starts_with("}}")
        {
            return (true, true);
        }
        (rest.starts_with("}}"), false)
    }

    /// Skips a comment; returns whether the following text is trimmed, or None on error.
    fn lex_comment(&mut self, start: usize) -> Option<bool> {
        let Some(end) = self.rest()[2..].find("*/") else {
            self.pos = self.src.len();
            self.error(start, "unclosed comment");
            return None;
        };
        self.pos += 2 + end + 2;
        match self.at_right_delim() {
            (true, trim) => {
                self.pos += if trim { 4 } else { 2 };
                Some(trim)
            }
            (false, _) => {
                self.error(start, "comment ends before closing delimiter");
                None
            }
        }
    }

    /// Lexes the inside of an action up to and including `}}`.
    fn lex_action(&mut self) -> Option<bool> {
        loop {
            let (is_delim, trim) = self.at_right_delim();
            if is_delim {
                let start = self.pos;
                if self.paren_depth > 0 {
                    self.error(start, "unclosed left paren");
                    return None;
                }
                self.pos += if trim { 4 } else { 2 };
                self.push(TokenKind::RightDelim, start);
                return Some(trim);
            }
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                self.error(start, "unclosed action");
                return None;
            };
            let lexed = match c {
                _ if is_trim_space(c) => {
                    self.lex_space();
                    Ok(())
                }
                '=' => self.single(TokenKind::Assign),
                ':' => {
                    if self.rest().starts_with(":=") {
                        self.pos += 2;
                        self.push(TokenKind::Declare, start);
                        Ok(())
                    } else {
                        Err("expected :=".to_string())
                    }
                }
                '|' => self.single(TokenKind::Pipe),
                ',' => self.single(TokenKind::Comma),
                '"' => self.lex_quoted('"', TokenKind::String, "unterminated quoted string"),
                '\'' => self.lex_quoted('\'', TokenKind::Char, "unterminated character constant"),
                '`' => self.lex_raw(),
                '$' => {
                    self.pos += 1;
                    self.lex_word(TokenKind::Variable, start)
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        self.lex_number()
                    } else {
                        self.pos += 1;
                        if next.is_some_and(is_alphanumeric) {
                            self.lex_word(TokenKind::Field, start)
                        } else {
                            self.push(TokenKind::Dot, start);
                            Ok(())
                        }
                    }
                }
                '+' | '-' | '0'..='9' => self.lex_number(),
                '(' => {
                    self.paren_depth += 1;
                    self.single(TokenKind::LeftParen)
                }
                ')' => {
                    if self.paren_depth == 0 {
                        Err(format!("unexpected right paren {}", describe_char(c)))
                    } else {
                        self.paren_depth -= 1;
                        self.single(TokenKind::RightParen)
                    }
                }
                _ if is_alphanumeric(c) => self.lex_identifier(),
                _ if c.is_ascii_graphic() => self.single(TokenKind::Punct),
                _ => Err(format!(
                    "unrecognized character in action: {}",
                    describe_char(c)
                )),
            };
            if let Err(message) = lexed {
                self.error(start, message);
                return None;
            }
        }
    }

    fn single(&mut self, kind: TokenKind) -> Result<(), String> {
        let start = self.pos;
        self.pos += self.peek_char().map_or(1, char::len_utf8);
        self.push(kind, start);
        Ok(())
    }

    fn lex_space(&mut self) {
        let start = self.pos;
        while let Some(c) = self.peek_char() {
            if !is_trim_space(c) || self.at_right_delim() == (true, true) {
                break;
            }
            self.pos += 1;
        }
        if self.pos > start {
            self.push(TokenKind::Space, start);
        }
    }

    fn lex_quoted(
        &mut self,
        quote: char,
        kind: TokenKind,
        unterminated: &str,
    ) -> Result<(), String> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((offset, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, next)) if next != '\n' => {}
                    _ => return Err(unterminated.to_string()),
                },
                '\n' => return Err(unterminated.to_string()),
                _ if c == quote => {
                    self.pos = start + offset + 1;
                    self.push(kind, start);
                    return Ok(());
                }
                _ => {}
            }
        }
        self.pos = self.src.len();
        Err(unterminated.to_string())
    }

    fn lex_raw(&mut self) -> Result<(), String> {
        let start = self.pos;
        match self.rest()[1..].find('`') {
            Some(end) => {
                self.pos = start + 1 + end + 1;
                self.push(TokenKind::RawString, start);
                Ok(())
            }
            None => {
                self.pos = self.src.len();
                Err("unterminated raw quoted string".to_string())
            }
        }
    }

    fn at_terminator(&self) -> bool {
        match self.peek_char() {
            None => true,
            Some(c) if is_trim_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with("}}"),
        }
    }

    /// Lexes the alphanumeric tail of a field or variable whose first character is consumed.
    fn lex_word(&mut self, kind: TokenKind, start: usize) -> Result<(), String> {
        let len = self
            .rest()
            .find(|c: char| !is_alphanumeric(c))
            .unwrap_or(self.rest().len());
        self.pos += len;
        if !self.at_terminator() {
            let c = self.peek_char().unwrap_or(' ');
            return Err(format!("bad character {}", describe_char(c)));
        }
        self.push(kind, start);
        Ok(())
    }

    fn lex_identifier(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.lex_word(TokenKind::Identifier, start)?;
        if let Some(token) = self.tokens.last_mut() {
            let word = &self.src[token.start..token.end];
            token.kind = match word {
                "true" | "false" => TokenKind::Bool,
                "nil" => TokenKind::Nil,
                _ => Keyword::from_word(word).map_or(TokenKind::Identifier, TokenKind::Keyword),
            };
        }
        Ok(())
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek_char() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn lex_number(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek_char().is_some_and(is_alphanumeric) {
            self.pos += self.peek_char().map_or(1, char::len_utf8);
            return Err(format!(
                "bad number syntax: {}",
                go_quote_str(&self.src[start..self.pos])
            ));
        }
        self.push(TokenKind::Number, start);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Node {
    /// Literal text: a byte range of the template.
    Text(usize, usize),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// `if`, `range` and `with`: a pipeline, a body and an optional `else` body.
#[derive(Debug)]
struct Branch {
    pipe: Pipe,
    body: Vec<Node>,
    otherwise: Option<Vec<Node>>,
}

#[derive(Debug)]
struct Pipe {
    pos: usize,
    decl: Vec<String>,
    is_assign: bool,
    cmds: Vec<Command>,
}

#[derive(Debug)]
struct Command {
    pos: usize,
    args: Vec<Arg>,
}

#[derive(Debug)]
struct Arg {
    pos: usize,
    kind: ArgKind,
}

#[derive(Debug)]
enum ArgKind {
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b` (`$x` with no fields)
    Variable(String, Vec<String>),
    /// `(pipe).a.b` and other terms followed by fields.
    Chain(Box<Arg>, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Number(Number),
    Str {
        value: Vec<u8>,
        text: String,
    },
    Function(String),
    Pipe(Box<Pipe>),
}

#[derive(Debug)]
struct Number {
    text: String,
    value: NumberValue,
}

#[derive(Debug, Clone, Copy)]
enum NumberValue {
    Int(i64),
    Float(f64),
    TooLarge,
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[String]) -> fmt::Result {
    fields.iter().try_for_each(|field| write!(f, ".{field}"))
}

impl Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArgKind::Field(fields) => write_fields(f, fields),
            ArgKind::Variable(name, fields) => {
                f.write_str(name)?;
                write_fields(f, fields)
            }
            ArgKind::Chain(term, fields) => {
                write!(f, "{term}")?;
                write_fields(f, fields)
            }
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Number(number) => f.write_str(&number.text),
            ArgKind::Str { text, .. } => f.write_str(text),
            ArgKind::Function(name) => f.write_str(name),
            ArgKind::Pipe(pipe) => write!(f, "({pipe})"),
        }
    }
}

impl Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

/// The parsed templates: the main one and those made by `define` and `block`.
struct Templates {
    trees: HashMap<String, Vec<Node>>,
}

/// Is the tree nothing but white space (Go lets a `define` replace such a template)?
fn is_empty_tree(src: &str, nodes: &[Node]) -> bool {
    nodes.iter().all(|node| match node {
        Node::Text(start, end) => src.get(*start..*end).is_some_and(|t| t.trim().is_empty()),
        _ => false,
    })
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// What ended a list of nodes.
enum ListEnd {
    Eof,
    /// `{{end}}`
    End,
    /// `{{else}}`, or `{{else` followed by a pending `if` / `with`.
    Else,
}

type ParseResult<T> = Result<T, TemplateError>;

struct Parser<'s> {
    name: &'s str,
    src: &'s str,
    tokens: Vec<Token>,
    next: usize,
    /// Variables in scope.
    vars: Vec<String>,
    depth: usize,
    range_depth: usize,
    trees: HashMap<String, Vec<Node>>,
}

impl<'s> Parser<'s> {
    fn parse(name: &'s str, src: &'s str) -> ParseResult<Templates> {
        let mut parser = Parser {
            name,
            src,
            tokens: Lexer::lex(src),
            next: 0,
            vars: vec!["$".to_string()],
            depth: 0,
            range_depth: 0,
            trees: HashMap::new(),
        };
        let main = parser.parse_top_level()?;
        parser.add_tree(name.to_string(), main, 0)?;
        Ok(Templates {
            trees: parser.trees,
        })
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, _) = line_and_column(self.src, pos);
        TemplateError::Parse {
            name: self.name.to_string(),
            line,
            message: message.into(),
        }
    }

    fn token_text(&self, token: &Token) -> &'s str {
        self.src.get(token.start..token.end).unwrap_or("")
    }

    /// Go's rendering of a token in "unexpected …" messages.
    fn describe(&self, token: &Token) -> String {
        match &token.kind {
            TokenKind::Eof => "EOF".to_string(),
            TokenKind::Error(message) => message.clone(),
            TokenKind::Keyword(_) | TokenKind::Bool | TokenKind::Nil | TokenKind::Dot => {
                format!("<{}>", self.token_text(token))
            }
            _ => {
                let text = self.token_text(token);
                if text.chars().count() > 10 {
                    let head: String = text.chars().take(10).collect();
                    format!("{}...", go_quote_str(&head))
                } else {
                    go_quote_str(text)
                }
            }
        }
    }

    fn unexpected(&self, token: &Token, context: &str) -> TemplateError {
        if let TokenKind::Error(message) = &token.kind {
            return self.error_at(token.start, message.clone());
        }
        self.error_at(
            token.start,
            format!("unexpected {} in {context}", self.describe(token)),
        )
    }

    /// The next token; a lexical error stops parsing.
    fn next_token(&mut self) -> ParseResult<Token> {
        let index = self.next.min(self.tokens.len().saturating_sub(1));
        let token = self.tokens.get(index).cloned().unwrap_or(Token {
            kind: TokenKind::Eof,
            start: self.src.len(),
            end: self.src.len(),
        });
        if let TokenKind::Error(message) = &token.kind {
            return Err(self.error_at(token.start, message.clone()));
        }
        if token.kind != TokenKind::Eof {
            self.next += 1;
        }
        Ok(token)
    }

    fn peek(&mut self) -> ParseResult<Token> {
        let saved = self.next;
        let token = self.next_token();
        self.next = saved;
        token
    }

    fn next_non_space(&mut self) -> ParseResult<Token> {
        loop {
            let token = self.next_token()?;
            if token.kind != TokenKind::Space {
                return Ok(token);
            }
        }
    }

    fn peek_non_space(&mut self) -> ParseResult<Token> {
        let token = self.next_non_space()?;
        self.backup(&token);
        Ok(token)
    }

    /// Steps back over `token`, which was just returned.
    fn backup(&mut self, token: &Token) {
        if token.kind != TokenKind::Eof {
            self.next = self.next.saturating_sub(1);
        }
    }

    fn expect(&mut self, kind: TokenKind, context: &str) -> ParseResult<Token> {
        let token = self.next_non_space()?;
        if token.kind != kind {
            return Err(self.unexpected(&token, context));
        }
        Ok(token)
    }

    fn enter(&mut self, pos: usize) -> ParseResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.error_at(pos, "max expression depth exceeded"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Adds a template as Go does: a template that is only white space may be replaced.
    fn add_tree(&mut self, name: String, nodes: Vec<Node>, pos: usize) -> ParseResult<()> {
        match self.trees.get(&name) {
            Some(existing) if !is_empty_tree(self.src, existing) => {
                if is_empty_tree(self.src, &nodes) {
                    return Ok(());
                }
                Err(self.error_at(
                    pos,
                    format!(
                        "template: multiple definition of template {}",
                        go_quote_str(&name)
                    ),
                ))
            }
            _ => {
                self.trees.insert(name, nodes);
                Ok(())
            }
        }
    }

    fn parse_top_level(&mut self) -> ParseResult<Vec<Node>> {
        let mut nodes = Vec::new();
        loop {
            let token = self.peek()?;
            if token.kind == TokenKind::Eof {
                return Ok(nodes);
            }
            if token.kind == TokenKind::LeftDelim {
                let saved = self.next;
                self.next_token()?;
                if self.next_non_space()?.kind == TokenKind::Keyword(Keyword::Define) {
                    self.parse_definition(token.start)?;
                    continue;
                }
                self.next = saved;
            }
            match self.text_or_action()? {
                Parsed::Node(node) => nodes.push(node),
                Parsed::End(pos) => return Err(self.error_at(pos, "unexpected {{end}}")),
                Parsed::Else(pos) => return Err(self.error_at(pos, "unexpected {{else}}")),
            }
        }
    }

    /// Parses a list of nodes up to `{{end}}`, `{{else}}` or the end of the text.
    fn item_list(&mut self) -> ParseResult<(Vec<Node>, ListEnd, usize)> {
        let mut nodes = Vec::new();
        loop {
            let token = self.peek_non_space()?;
            if token.kind == TokenKind::Eof {
                return Ok((nodes, ListEnd::Eof, token.start));
            }
            match self.text_or_action()? {
                Parsed::Node(node) => nodes.push(node),
                Parsed::End(pos) => return Ok((nodes, ListEnd::End, pos)),
                Parsed::Else(pos) => return Ok((nodes, ListEnd::Else, pos)),
            }
        }
    }

    /// A list that must end with `{{end}}`.
    fn list_to_end(&mut self, context: &str) -> ParseResult<Vec<Node>> {
        let (nodes, end, pos) = self.item_list()?;
        match end {
            ListEnd::End => Ok(nodes),
            ListEnd::Else => {
                Err(self.error_at(pos, format!("unexpected {{{{else}}}} in {context}")))
            }
            ListEnd::Eof => Err(self.error_at(pos, "unexpected EOF")),
        }
    }

    fn parse_definition(&mut self, pos: usize) -> ParseResult<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space()?;
        let name = self.template_name(&token, CONTEXT)?;
        self.expect(TokenKind::RightDelim, CONTEXT)?;
        let nodes = self.in_new_scope(|parser| parser.list_to_end(CONTEXT))?;
        self.add_tree(name, nodes, pos)
    }

    /// Runs `body` with fresh variables (`$` only) and outside any `range`, as a new template.
    fn in_new_scope<T>(
        &mut self,
        body: impl FnOnce(&mut Self) -> ParseResult<T>,
    ) -> ParseResult<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let result = body(self);
        self.vars = vars;
        self.range_depth = range_depth;
        result
    }

    fn template_name(&self, token: &Token, context: &str) -> ParseResult<String> {
        match token.kind {
            TokenKind::String | TokenKind::RawString => {
                let bytes = unquote(self.token_text(token))
                    .map_err(|message| self.error_at(token.start, message))?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => Err(self.unexpected(token, context)),
        }
    }

    fn text_or_action(&mut self) -> ParseResult<Parsed> {
        let token = self.next_non_space()?;
        match token.kind {
            TokenKind::Text => Ok(Parsed::Node(Node::Text(token.start, token.end))),
            TokenKind::LeftDelim => self.action(),
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> ParseResult<Parsed> {
        let token = self.next_non_space()?;
        let node = match token.kind {
            TokenKind::Keyword(Keyword::Block) => self.block_control(token.start)?,
            TokenKind::Keyword(Keyword::Break) => self.loop_control(token.start, "break")?,
            TokenKind::Keyword(Keyword::Continue) => self.loop_control(token.start, "continue")?,
            TokenKind::Keyword(Keyword::Else) => {
                let next = self.peek_non_space()?;
                if !matches!(next.kind, TokenKind::Keyword(Keyword::If | Keyword::With)) {
                    self.expect(TokenKind::RightDelim, "else")?;
                }
                return Ok(Parsed::Else(token.start));
            }
            TokenKind::Keyword(Keyword::End) => {
                self.expect(TokenKind::RightDelim, "end")?;
                return Ok(Parsed::End(token.start));
            }
            TokenKind::Keyword(Keyword::If) => Node::If(self.parse_control("if", token.start)?),
            TokenKind::Keyword(Keyword::Range) => {
                Node::Range(self.parse_control("range", token.start)?)
            }
            TokenKind::Keyword(Keyword::With) => {
                Node::With(self.parse_control("with", token.start)?)
            }
            TokenKind::Keyword(Keyword::Template) => self.template_control(token.start)?,
            _ => {
                self.backup(&token);
                Node::Action(self.pipeline("command", TokenKind::RightDelim)?)
            }
        };
        Ok(Parsed::Node(node))
    }

    fn loop_control(&mut self, pos: usize, word: &str) -> ParseResult<Node> {
        let token = self.next_non_space()?;
        if token.kind != TokenKind::RightDelim {
            return Err(self.unexpected(&token, &format!("{{{{{word}}}}}")));
        }
        if self.range_depth == 0 {
            return Err(self.error_at(pos, format!("{{{{{word}}}}} outside {{{{range}}}}")));
        }
        Ok(if word == "break" {
            Node::Break
        } else {
            Node::Continue
        })
    }

    fn parse_control(&mut self, context: &str, pos: usize) -> ParseResult<Branch> {
        self.enter(pos)?;
        let saved_vars = self.vars.len();
        let result = self.parse_control_body(context);
        self.vars.truncate(saved_vars);
        self.leave();
        result
    }

    fn parse_control_body(&mut self, context: &str) -> ParseResult<Branch> {
        let pipe = self.pipeline(context, TokenKind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (body, end, end_pos) = listed?;
        let otherwise = match end {
            ListEnd::Eof => return Err(self.error_at(end_pos, "unexpected EOF")),
            ListEnd::End => None,
            ListEnd::Else => {
                let next = self.peek()?;
                match (context, &next.kind) {
                    ("if", TokenKind::Keyword(Keyword::If)) => {
                        self.next_token()?;
                        Some(vec![Node::If(self.parse_control("if", next.start)?)])
                    }
                    ("with", TokenKind::Keyword(Keyword::With)) => {
                        self.next_token()?;
                        Some(vec![Node::With(self.parse_control("with", next.start)?)])
                    }
                    _ => {
                        let (nodes, end, end_pos) = self.item_list()?;
                        match end {
                            ListEnd::End => Some(nodes),
                            ListEnd::Else => {
                                return Err(self.error_at(end_pos, "expected end; found {{else}}"));
                            }
                            ListEnd::Eof => return Err(self.error_at(end_pos, "unexpected EOF")),
                        }
                    }
                }
            }
        };
        Ok(Branch {
            pipe,
            body,
            otherwise,
        })
    }

    fn template_control(&mut self, pos: usize) -> ParseResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space()?;
        let name = self.template_name(&token, CONTEXT)?;
        let next = self.next_non_space()?;
        let pipe = if next.kind == TokenKind::RightDelim {
            None
        } else {
            self.backup(&next);
            Some(self.pipeline(CONTEXT, TokenKind::RightDelim)?)
        };
        Ok(Node::Template { pos, name, pipe })
    }

    fn block_control(&mut self, pos: usize) -> ParseResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space()?;
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, TokenKind::RightDelim)?;
        self.enter(pos)?;
        let body = self.in_new_scope(|parser| parser.list_to_end(CONTEXT));
        self.leave();
        self.add_tree(name.clone(), body?, pos)?;
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: TokenKind) -> ParseResult<Pipe> {
        let first = self.peek_non_space()?;
        let mut pipe = Pipe {
            pos: first.start,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let token = self.next_non_space()?;
            if token.kind == end {
                self.check_pipeline(&pipe, context, token.start)?;
                return Ok(pipe);
            }
            match token.kind {
                TokenKind::Bool
                | TokenKind::Char
                | TokenKind::Dot
                | TokenKind::Field
                | TokenKind::Identifier
                | TokenKind::Number
                | TokenKind::Nil
                | TokenKind::RawString
                | TokenKind::String
                | TokenKind::Variable
                | TokenKind::LeftParen => {
                    self.backup(&token);
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    /// Parses `$x :=`, `$x =` and, in `range`, `$i, $e :=`.
    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> ParseResult<()> {
        loop {
            let start = self.next;
            let variable = self.next_non_space()?;
            if variable.kind != TokenKind::Variable {
                self.next = start;
                return Ok(());
            }
            let name = self.token_text(&variable).to_string();
            let after = self.next_non_space()?;
            match after.kind {
                TokenKind::Declare | TokenKind::Assign => {
                    pipe.is_assign = after.kind == TokenKind::Assign;
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    return Ok(());
                }
                TokenKind::Comma => {
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        let next = self.peek_non_space()?;
                        if matches!(
                            next.kind,
                            TokenKind::Variable | TokenKind::RightDelim | TokenKind::RightParen
                        ) {
                            continue;
                        }
                        return Err(
                            self.error_at(next.start, "range can only initialize variables")
                        );
                    }
                    return Err(
                        self.error_at(after.start, format!("too many declarations in {context}"))
                    );
                }
                _ => {
                    self.next = start;
                    return Ok(());
                }
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str, pos: usize) -> ParseResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.error_at(pos, format!("missing value for {context}")));
        }
        for (stage, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = cmd.args.first()
                && matches!(
                    first.kind,
                    ArgKind::Bool(_)
                        | ArgKind::Dot
                        | ArgKind::Nil
                        | ArgKind::Number(_)
                        | ArgKind::Str { .. }
                )
            {
                return Err(self.error_at(
                    cmd.pos,
                    format!("non executable command in pipeline stage {}", stage + 1),
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> ParseResult<Command> {
        let first = self.peek_non_space()?;
        let mut cmd = Command {
            pos: first.start,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space()?;
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next_token()?;
            match token.kind {
                TokenKind::Space => continue,
                TokenKind::RightDelim | TokenKind::RightParen => self.backup(&token),
                TokenKind::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.error_at(cmd.pos, "empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> ParseResult<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        // Go positions a chained field at its first chained part (`.b` in `.a.b`).
        let mut pos = term.pos;
        loop {
            let token = self.peek()?;
            if token.kind != TokenKind::Field {
                break;
            }
            if fields.is_empty() {
                pos = token.start;
            }
            self.next_token()?;
            fields.push(self.token_text(&token)[1..].to_string());
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        let kind = match term.kind {
            ArgKind::Field(mut head) => {
                head.append(&mut fields);
                ArgKind::Field(head)
            }
            ArgKind::Variable(name, mut head) => {
                head.append(&mut fields);
                ArgKind::Variable(name, head)
            }
            ArgKind::Bool(_)
            | ArgKind::Str { .. }
            | ArgKind::Number(_)
            | ArgKind::Nil
            | ArgKind::Dot => {
                return Err(self.error_at(
                    pos,
                    format!(
                        "unexpected . after term {}",
                        go_quote_str(&term.to_string())
                    ),
                ));
            }
            _ => ArgKind::Chain(Box::new(term), fields),
        };
        Ok(Some(Arg { pos, kind }))
    }

    fn term(&mut self) -> ParseResult<Option<Arg>> {
        let token = self.next_non_space()?;
        let text = self.token_text(&token);
        let pos = token.start;
        let kind = match token.kind {
            TokenKind::Identifier => {
                if lookup_function(text).is_none() {
                    return Err(
                        self.error_at(pos, format!("function {} not defined", go_quote_str(text)))
                    );
                }
                ArgKind::Function(text.to_string())
            }
            TokenKind::Dot => ArgKind::Dot,
            TokenKind::Nil => ArgKind::Nil,
            TokenKind::Variable => {
                if !self.vars.iter().any(|var| var == text) {
                    return Err(
                        self.error_at(pos, format!("undefined variable {}", go_quote_str(text)))
                    );
                }
                ArgKind::Variable(text.to_string(), Vec::new())
            }
            TokenKind::Field => ArgKind::Field(vec![text[1..].to_string()]),
            TokenKind::Bool => ArgKind::Bool(text == "true"),
            TokenKind::Number | TokenKind::Char => ArgKind::Number(
                parse_number(text, token.kind == TokenKind::Char)
                    .map_err(|message| self.error_at(pos, message))?,
            ),
            TokenKind::LeftParen => {
                self.enter(pos)?;
                let pipe = self.pipeline("parenthesized pipeline", TokenKind::RightParen);
                self.leave();
                ArgKind::Pipe(Box::new(pipe?))
            }
            TokenKind::String | TokenKind::RawString => ArgKind::Str {
                value: unquote(text).map_err(|message| self.error_at(pos, message))?,
                text: text.to_string(),
            },
            _ => {
                self.backup(&token);
                return Ok(None);
            }
        };
        Ok(Some(Arg { pos, kind }))
    }
}

/// One parsed element of a list, or the keyword that ends the list.
enum Parsed {
    Node(Node),
    End(usize),
    Else(usize),
}

/// Parses a number or character literal the way Go's template parser does.
fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
    let illegal = || format!("illegal number syntax: {}", go_quote_str(text));
    if is_char {
        let bytes = unquote(text).map_err(|_| format!("malformed character constant: {text}"))?;
        let decoded = std::str::from_utf8(&bytes).ok().and_then(|s| {
            let mut chars = s.chars();
            let c = chars.next()?;
            chars.next().is_none().then_some(c as i64)
        });
        let value = match (decoded, bytes.as_slice()) {
            (Some(code), _) => code,
            (None, [byte]) => i64::from(*byte),
            _ => return Err(format!("malformed character constant: {text}")),
        };
        return Ok(Number {
            text: text.to_string(),
            value: NumberValue::Int(value),
        });
    }
    if text.ends_with('i') {
        return Err("complex numbers are not supported".to_string());
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let is_hex = lower.starts_with("0x");
    let value = if !is_hex && (lower.contains('.') || lower.contains('e')) {
        let cleaned: String = text.chars().filter(|&c| c != '_').collect();
        let float: f64 = cleaned.parse().map_err(|_| illegal())?;
        NumberValue::Float(float)
    } else {
        let digits: String = lower.chars().filter(|&c| c != '_').collect();
        let (radix, body) = if let Some(rest) = digits.strip_prefix("0x") {
            (16, rest.to_string())
        } else if let Some(rest) = digits.strip_prefix("0o") {
            (8, rest.to_string())
        } else if let Some(rest) = digits.strip_prefix("0b") {
            (2, rest.to_string())
        } else if digits.len() > 1 && digits.starts_with('0') {
            (8, digits[1..].to_string())
        } else {
            (10, digits)
        };
        if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
            return Err(illegal());
        }
        match u128::from_str_radix(&body, radix) {
            Ok(magnitude) => {
                let signed = if negative {
                    -(magnitude as i128)
                } else {
                    magnitude as i128
                };
                i64::try_from(signed).map_or(NumberValue::TooLarge, NumberValue::Int)
            }
            Err(_) => NumberValue::TooLarge,
        }
    };
    Ok(Number {
        text: text.to_string(),
        value,
    })
}

/// Go's `strconv.Unquote` for `"…"`, `'…'` and `` `…` `` literals.
fn unquote(text: &str) -> Result<Vec<u8>, String> {
    let invalid = || "invalid syntax".to_string();
    if let Some(raw) = text.strip_prefix('`') {
        let body = raw.strip_suffix('`').ok_or_else(invalid)?;
        return Ok(body.replace('\r', "").into_bytes());
    }
    let quote = text.chars().next().ok_or_else(invalid)?;
    if text.len() < 2 || !text.ends_with(quote) || !matches!(quote, '"' | '\'') {
        return Err(invalid());
    }
    let body = &text[1..text.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == quote || c == '\n' {
                return Err(invalid());
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let escape = chars.next().ok_or_else(invalid)?;
        match escape {
            'a' => out.push(0x07),
            'b' => out.push(0x08),
            'f' => out.push(0x0c),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(0x0b),
            '\\' => out.push(b'\\'),
            '"' | '\'' if escape == quote => out.push(escape as u8),
            'x' => out.push(
                read_code(&mut chars, 2, 16)
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or_else(invalid)?,
            ),
            '0'..='7' => {
                let rest = read_code(&mut chars, 2, 8).ok_or_else(invalid)?;
                let value = (escape as u32 - '0' as u32) * 64 + rest;
                out.push(u8::try_from(value).map_err(|_| invalid())?);
            }
            'u' | 'U' => {
                let len = if escape == 'u' { 4 } else { 8 };
                let code = read_code(&mut chars, len, 16).ok_or_else(invalid)?;
                let c = char::from_u32(code).ok_or_else(invalid)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(invalid()),
        }
    }
    if quote == '\'' && std::str::from_utf8(&out).map_or(out.len() != 1, |s| s.chars().count() != 1)
    {
        return Err(invalid());
    }
    Ok(out)
}

/// Reads exactly `len` digits of `radix`.
fn read_code(chars: &mut impl Iterator<Item = char>, len: usize, radix: u32) -> Option<u32> {
    let mut value: u32 = 0;
    for _ in 0..len {
        let digit = chars.next()?.to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(digit)?;
    }
    Some(value)
}

/// Line (from 1) and byte column (from 0) of a byte offset, as Go reports them.
fn line_and_column(src: &str, pos: usize) -> (usize, usize) {
    let before = src.as_bytes().get(..pos.min(src.len())).unwrap_or_default();
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(before.len(), |newline| before.len() - newline - 1);
    (line, column)
}

// ---------------------------------------------------------------------------------------------
// Executor
// ---------------------------------------------------------------------------------------------

/// How a list of nodes finished.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

type ExecResult<T> = Result<T, TemplateError>;

/// The state of one render.
struct State<'t> {
    name: &'t str,
    src: &'t str,
    templates: &'t Templates,
    /// Name of the template being executed.
    executing: String,
    vars: Vec<(String, Value)>,
    out: Vec<u8>,
    depth: usize,
    steps: u64,
    allocated: usize,
}

/// Where an error happened: a position in the template and the text of the failing part.
#[derive(Clone, Copy)]
struct At<'a> {
    pos: usize,
    what: &'a dyn Display,
}

impl<'t> State<'t> {
    fn new(name: &'t str, src: &'t str, templates: &'t Templates) -> Self {
        State {
            name,
            src,
            templates,
            executing: name.to_string(),
            vars: Vec::new(),
            out: Vec::new(),
            depth: 0,
            steps: 0,
            allocated: 0,
        }
    }

    fn execute_main(&mut self, root: Value) -> ExecResult<()> {
        let Some(tree) = self.templates.trees.get(self.name) else {
            return Err(
                self.limit_error(format!("no template {} defined", go_quote_str(self.name)))
            );
        };
        self.vars = vec![("$".to_string(), root.clone())];
        self.walk(&root, tree)?;
        Ok(())
    }

    fn error(&self, at: At<'_>, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_and_column(self.src, at.pos);
        let mut context = at.what.to_string();
        if context.chars().count() > 20 {
            context = context.chars().take(20).collect::<String>() + "...";
        }
        TemplateError::Exec {
            name: self.name.to_string(),
            line,
            column,
            executing: self.executing.clone(),
            context,
            message: message.into(),
        }
    }

    fn limit_error(&self, message: impl Into<String>) -> TemplateError {
        TemplateError::Limit {
            name: self.name.to_string(),
            message: message.into(),
        }
    }

    fn step(&mut self) -> ExecResult<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.limit_error(format!("execution stopped after {MAX_STEPS} operations")));
        }
        Ok(())
    }

    fn enter(&mut self) -> ExecResult<()> {
        self.depth += 1;
        if self.depth > MAX_EXEC_DEPTH {
            return Err(self.limit_error(format!(
                "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn write(&mut self, bytes: &[u8]) -> ExecResult<()> {
        if self.out.len() + bytes.len() > MAX_OUTPUT {
            return Err(self.limit_error(format!("output is larger than {MAX_OUTPUT} bytes")));
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Counts what a function produced against the limits.
    fn account(&mut self, value: &Value) -> ExecResult<()> {
        let size = match value {
            Value::Str(s) => s.len(),
            Value::List(list) => list.items.len(),
            Value::Map(map) => map.entries.try_borrow().map_or(0, |e| e.len()),
            _ => 0,
        };
        if size > MAX_STRING {
            return Err(self.limit_error(format!("a value is larger than {MAX_STRING} bytes")));
        }
        self.allocated += size;
        if self.allocated > MAX_ALLOCATED {
            return Err(self.limit_error(format!(
                "functions produced more than {MAX_ALLOCATED} bytes"
            )));
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> ExecResult<Flow> {
        for node in nodes {
            self.step()?;
            let flow = match node {
                Node::Text(start, end) => {
                    let text = self.src.as_bytes().get(*start..*end).unwrap_or_default();
                    self.write(text)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print_value(&value)?;
                    }
                    Flow::Normal
                }
                Node::If(branch) => self.walk_if_or_with(dot, branch, false)?,
                Node::With(branch) => self.walk_if_or_with(dot, branch, true)?,
                Node::Range(branch) => self.walk_range(dot, branch)?,
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref())?
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn print_value(&mut self, value: &Value) -> ExecResult<()> {
        match value {
            Value::Missing => self.write(b"<no value>"),
            Value::Str(s) => self.write(s),
            other => {
                let mut text = Vec::new();
                format_default(other, &mut text, 0);
                self.write(&text)
            }
        }
    }

    fn walk_if_or_with(&mut self, dot: &Value, branch: &Branch, is_with: bool) -> ExecResult<Flow> {
        self.enter()?;
        let mark = self.vars.len();
        let result = self.eval_pipeline(dot, &branch.pipe).and_then(|value| {
            if value.is_true() {
                let body_dot = if is_with { &value } else { dot };
                self.walk(body_dot, &branch.body)
            } else if let Some(otherwise) = &branch.otherwise {
                self.walk(dot, otherwise)
            } else {
                Ok(Flow::Normal)
            }
        });
        self.vars.truncate(mark);
        self.leave();
        result
    }

    fn walk_range(&mut self, dot: &Value, branch: &Branch) -> ExecResult<Flow> {
        self.enter()?;
        let outer_mark = self.vars.len();
        let result = self.walk_range_items(dot, branch);
        self.vars.truncate(outer_mark);
        self.leave();
        result.map(|_| Flow::Normal)
    }

    fn walk_range_items(&mut self, dot: &Value, branch: &Branch) -> ExecResult<()> {
        let pipe = &branch.pipe;
        let value = self.eval_pipeline(dot, pipe)?;
        let at = At {
            pos: pipe.pos,
            what: pipe,
        };
        let items = match &value {
            Value::List(list) => RangeItems::List(list.clone()),
            Value::Map(map) => RangeItems::Entries(Value::map_entries(map)),
            Value::Int(count) => {
                if pipe.decl.len() > 1 {
                    return Err(
                        self.error(at, "can't use int to iterate over more than one variable")
                    );
                }
                RangeItems::Count(*count)
            }
            Value::Missing | Value::Nil => RangeItems::Count(0),
            other => {
                return Err(self.error(
                    at,
                    format!(
                        "range can't iterate over value of type {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let mark = self.vars.len();
        let count = items.len();
        for position in 0..count {
            self.step()?;
            let (index, elem) = items.get(position);
            self.bind_range_vars(at, pipe, mark, index, elem.clone())?;
            let flow = self.walk(&elem, &branch.body);
            self.vars.truncate(mark);
            if flow? == Flow::Break {
                break;
            }
        }
        if count == 0
            && let Some(otherwise) = &branch.otherwise
        {
            self.walk(dot, otherwise)?;
        }
        Ok(())
    }

    fn bind_range_vars(
        &mut self,
        at: At<'_>,
        pipe: &Pipe,
        mark: usize,
        index: Value,
        elem: Value,
    ) -> ExecResult<()> {
        match (pipe.decl.as_slice(), pipe.is_assign) {
            ([], _) => Ok(()),
            ([only], true) => self.set_var(at, only, elem),
            ([first, second, ..], true) => {
                self.set_var(at, first, index)?;
                self.set_var(at, second, elem)
            }
            (decl, false) => {
                if let Some(slot) = mark.checked_sub(1).and_then(|i| self.vars.get_mut(i)) {
                    slot.1 = elem;
                }
                if decl.len() > 1
                    && let Some(slot) = mark.checked_sub(2).and_then(|i| self.vars.get_mut(i))
                {
                    slot.1 = index;
                }
                Ok(())
            }
        }
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        pipe: Option<&Pipe>,
    ) -> ExecResult<Flow> {
        let description = TemplateCall { name, pipe };
        let at = At {
            pos,
            what: &description,
        };
        let Some(tree) = self.templates.trees.get(name) else {
            return Err(self.error(at, format!("template {} not defined", go_quote_str(name))));
        };
        let new_dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Missing,
        };
        self.enter()?;
        let vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
        let executing = std::mem::replace(&mut self.executing, name.to_string());
        let result = self.walk(&new_dot, tree);
        self.vars = vars;
        self.executing = executing;
        self.leave();
        result.map(|_| Flow::Normal)
    }

    fn set_var(&mut self, at: At<'_>, name: &str, value: Value) -> ExecResult<()> {
        match self.vars.iter_mut().rev().find(|(var, _)| var == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.error(at, format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, at: At<'_>, name: &str) -> ExecResult<Value> {
        match self.vars.iter().rev().find(|(var, _)| var == name) {
            Some((_, value)) => Ok(value.clone()),
            None => Err(self.error(at, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> ExecResult<Value> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value.take())?);
        }
        let value = value.unwrap_or(Value::Missing);
        for var in &pipe.decl {
            if pipe.is_assign {
                let at = At {
                    pos: pipe.pos,
                    what: pipe,
                };
                self.set_var(at, var, value.clone())?;
            } else {
                self.vars.push((var.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &Command,
        last: Option<Value>,
    ) -> ExecResult<Value> {
        self.step()?;
        let at = At {
            pos: cmd.pos,
            what: cmd,
        };
        let Some(first) = cmd.args.first() else {
            return Err(self.error(at, "empty command"));
        };
        let has_args = cmd.args.len() > 1 || last.is_some();
        match &first.kind {
            ArgKind::Field(fields) => self.eval_field_chain(first, dot.clone(), fields, has_args),
            ArgKind::Chain(term, fields) => {
                let receiver = self.eval_chain_term(first, dot, term)?;
                self.eval_field_chain(first, receiver, fields, has_args)
            }
            ArgKind::Variable(name, fields) => {
                let value = self.var_value(at, name)?;
                if fields.is_empty() {
                    self.not_a_function(at, first, has_args)?;
                    Ok(value)
                } else {
                    self.eval_field_chain(first, value, fields, has_args)
                }
            }
            ArgKind::Function(name) => self.eval_function(dot, at, name, &cmd.args[1..], last),
            ArgKind::Pipe(pipe) => {
                self.not_a_function(at, first, has_args)?;
                self.enter()?;
                let value = self.eval_pipeline(dot, pipe);
                self.leave();
                value
            }
            ArgKind::Nil => Err(self.error(at, "nil is not a command")),
            ArgKind::Dot | ArgKind::Bool(_) | ArgKind::Number(_) | ArgKind::Str { .. } => {
                self.not_a_function(at, first, has_args)?;
                self.eval_arg(dot, first)
            }
        }
    }

    fn not_a_function(&self, at: At<'_>, first: &Arg, has_args: bool) -> ExecResult<()> {
        if has_args {
            return Err(self.error(at, format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_chain_term(&mut self, node: &Arg, dot: &Value, term: &Arg) -> ExecResult<Value> {
        if matches!(term.kind, ArgKind::Nil) {
            let at = At {
                pos: node.pos,
                what: node,
            };
            return Err(self.error(at, format!("indirection through explicit nil in {node}")));
        }
        self.eval_arg(dot, term)
    }

    fn eval_field_chain(
        &mut self,
        node: &Arg,
        receiver: Value,
        fields: &[String],
        has_args: bool,
    ) -> ExecResult<Value> {
        let mut value = receiver;
        for (i, field) in fields.iter().enumerate() {
            let last = i + 1 == fields.len();
            value = self.eval_field(node, field, value, last && has_args)?;
        }
        Ok(value)
    }

    fn eval_field(
        &self,
        node: &Arg,
        field: &str,
        receiver: Value,
        has_args: bool,
    ) -> ExecResult<Value> {
        let at = At {
            pos: node.pos,
            what: node,
        };
        match receiver {
            Value::Missing => Ok(Value::Missing),
            Value::Map(map) => {
                if has_args {
                    return Err(
                        self.error(at, format!("{field} is not a method but has arguments"))
                    );
                }
                let entries = map
                    .entries
                    .try_borrow()
                    .map_err(|_| self.error(at, "map is being modified"))?;
                Ok(entries
                    .get(field.as_bytes())
                    .cloned()
                    .unwrap_or(Value::Missing))
            }
            Value::Nil => {
                Err(self.error(at, format!("nil pointer evaluating interface {{}}.{field}")))
            }
            other => Err(self.error(
                at,
                format!("can't evaluate field {field} in type {}", other.type_name()),
            )),
        }
    }

    /// Evaluates an argument of a function (missing values stay missing).
    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> ExecResult<Value> {
        let at = At {
            pos: arg.pos,
            what: arg,
        };
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Value::Nil),
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Str { value, .. } => Ok(Value::str(value)),
            ArgKind::Number(number) => match number.value {
                NumberValue::Int(i) => Ok(Value::Int(i)),
                NumberValue::Float(f) => Ok(Value::Float(f)),
                NumberValue::TooLarge => {
                    Err(self.error(at, format!("{} overflows int", number.text)))
                }
            },
            ArgKind::Field(fields) => self.eval_field_chain(arg, dot.clone(), fields, false),
            ArgKind::Variable(name, fields) => {
                let value = self.var_value(at, name)?;
                self.eval_field_chain(arg, value, fields, false)
            }
            ArgKind::Chain(term, fields) => {
                let receiver = self.eval_chain_term(arg, dot, term)?;
                self.eval_field_chain(arg, receiver, fields, false)
            }
            ArgKind::Pipe(pipe) => {
                self.enter()?;
                let value = self.eval_pipeline(dot, pipe);
                self.leave();
                value
            }
            ArgKind::Function(name) => self.eval_function(dot, at, name, &[], None),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        at: At<'_>,
        name: &str,
        arg_nodes: &[Arg],
        last: Option<Value>,
    ) -> ExecResult<Value> {
        let Some(function) = lookup_function(name) else {
            return Err(self.error(
                at,
                format!("{} is not a defined function", go_quote_str(name)),
            ));
        };
        let given = arg_nodes.len() + usize::from(last.is_some());
        let fixed = function.params.len();
        match function.variadic {
            None if given != fixed => {
                return Err(self.error(
                    at,
                    format!("wrong number of args for {name}: want {fixed} got {given}"),
                ));
            }
            Some(_) if given < fixed => {
                return Err(self.error(
                    at,
                    format!("wrong number of args for {name}: want at least {fixed} got {given}"),
                ));
            }
            _ => {}
        }
        let call = match function.call {
            Call::And => return self.eval_and_or(dot, arg_nodes, last, false),
            Call::Or => return self.eval_and_or(dot, arg_nodes, last, true),
            Call::Plain(call) => call,
        };
        let mut args = Vec::with_capacity(given);
        for node in arg_nodes {
            let value = self.eval_arg(dot, node)?;
            let param = function.param(args.len());
            let value = coerce(param, value).map_err(|message| {
                self.error(
                    At {
                        pos: node.pos,
                        what: node,
                    },
                    message,
                )
            })?;
            args.push(value);
        }
        if let Some(value) = last {
            let param = function.param(args.len());
            args.push(coerce(param, value).map_err(|message| self.error(at, message))?);
        }
        self.step()?;
        match call(&args) {
            Ok(result) => {
                self.account(&result)?;
                Ok(result)
            }
            Err(message) => {
                let message = if function.user_message && !is_string_literal(arg_nodes.first()) {
                    "the message is withheld because it is not a string literal".to_string()
                } else {
                    message
                };
                Err(self.error(at, format!("error calling {name}: {message}")))
            }
        }
    }

    /// `and` / `or`: evaluate arguments until one decides the result, and return that one.
    fn eval_and_or(
        &mut self,
        dot: &Value,
        arg_nodes: &[Arg],
        last: Option<Value>,
        is_or: bool,
    ) -> ExecResult<Value> {
        let mut value = Value::Missing;
        for node in arg_nodes {
            value = self.eval_arg(dot, node)?;
            if value.is_true() == is_or {
                return Ok(value);
            }
        }
        Ok(last.unwrap_or(value))
    }
}

fn is_string_literal(arg: Option<&Arg>) -> bool {
    matches!(arg.map(|arg| &arg.kind), Some(ArgKind::Str { .. }))
}

/// `{{template "name" pipe}}`, for error messages.
struct TemplateCall<'a> {
    name: &'a str,
    pipe: Option<&'a Pipe>,
}

impl Display for TemplateCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{template {}", go_quote_str(self.name))?;
        if let Some(pipe) = self.pipe {
            write!(f, " {pipe}")?;
        }
        f.write_str("}}")
    }
}

/// What `range` iterates over.
enum RangeItems {
    List(Rc<ListValue>),
    Entries(Vec<(Vec<u8>, Value)>),
    Count(i64),
}

impl RangeItems {
    fn len(&self) -> usize {
        match self {
            RangeItems::List(list) => list.items.len(),
            RangeItems::Entries(entries) => entries.len(),
            RangeItems::Count(count) => usize::try_from(*count).unwrap_or(0),
        }
    }

    /// The index (or key) and element at `position`.
    fn get(&self, position: usize) -> (Value, Value) {
        let index = Value::Int(i64::try_from(position).unwrap_or(i64::MAX));
        match self {
            RangeItems::List(list) => (
                index,
                list.items.get(position).cloned().unwrap_or(Value::Nil),
            ),
            RangeItems::Entries(entries) => entries
                .get(position)
                .map(|(key, value)| (Value::str(key), value.clone()))
                .unwrap_or((Value::Nil, Value::Nil)),
            RangeItems::Count(_) => (index.clone(), index),
        }
    }
}

/// Converts an argument to what a function parameter accepts, as Go's reflection would.
fn coerce(param: Param, value: Value) -> Result<Value, String> {
    let wrong = |expected: &str, value: &Value| {
        if value.is_nil() {
            format!("invalid value; expected {expected}")
        } else {
            format!(
                "wrong type for value; expected {expected}; got {}",
                value.type_name()
            )
        }
    };
    match (param, value) {
        (Param::Reflect, value) => Ok(value),
        (Param::Any, Value::Missing) => Ok(Value::Nil),
        (Param::Any, value) => Ok(value),
        (Param::Str, value @ Value::Str(_)) => Ok(value),
        (Param::Int, value @ Value::Int(_)) => Ok(value),
        (Param::Bool, value @ Value::Bool(_)) => Ok(value),
        (Param::Map, Value::Missing | Value::Nil) => Ok(Value::map(BTreeMap::new())),
        (Param::Map, Value::Map(map)) if !map.string_elems => Ok(Value::Map(map)),
        (Param::Str, value) => Err(wrong("string", &value)),
        (Param::Int, value) => Err(wrong("int", &value)),
        (Param::Bool, value) => Err(wrong("bool", &value)),
        (Param::Map, value) => Err(wrong("map[string]interface {}", &value)),
    }
}

// ---------------------------------------------------------------------------------------------
// Function table
// ---------------------------------------------------------------------------------------------

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

/// What a function parameter accepts, following the Go signature.
#[derive(Clone, Copy, Debug)]
enum Param {
    /// `interface{}`: anything; a missing value becomes nil.
    Any,
    /// `reflect.Value` of the builtins: anything, missing values included.
    Reflect,
    Str,
    Int,
    Bool,
    /// `map[string]interface{}`
    Map,
}

type Implementation = fn(&[Value]) -> Result<Value, String>;

#[derive(Clone, Copy)]
enum Call {
    And,
    Or,
    Plain(Implementation),
}

#[derive(Clone, Copy)]
struct Function {
    params: &'static [Param],
    variadic: Option<Param>,
    call: Call,
    /// The error message is the template author's (`fail`, `required`).
    user_message: bool,
}

impl Function {
    fn param(&self, index: usize) -> Param {
        self.params
            .get(index)
            .copied()
            .or(self.variadic)
            .unwrap_or(Param::Any)
    }
}

fn lookup_function(name: &str) -> Option<Function> {
    use Param::{Any, Bool, Int, Map, Reflect, Str};
    let fixed = |params: &'static [Param], call: Implementation| Function {
        params,
        variadic: None,
        call: Call::Plain(call),
        user_message: false,
    };
    let variadic = |params: &'static [Param], rest: Param, call: Implementation| Function {
        params,
        variadic: Some(rest),
        call: Call::Plain(call),
        user_message: false,
    };
    let function = match name {
        "and" | "or" => Function {
            params: &[Reflect],
            variadic: Some(Reflect),
            call: if name == "and" { Call::And } else { Call::Or },
            user_message: false,
        },
        "not" => fixed(&[Reflect], builtin_not),
        "len" => fixed(&[Reflect], builtin_len),
        "index" => variadic(&[Reflect], Reflect, builtin_index),
        "slice" => variadic(&[Reflect], Reflect, builtin_slice),
        "print" => variadic(&[], Any, builtin_print),
        "printf" => variadic(&[Str], Any, builtin_printf),
        "println" => variadic(&[], Any, builtin_println),
        "eq" => variadic(&[Reflect], Reflect, builtin_eq),
        "ne" => fixed(&[Reflect, Reflect], builtin_ne),
        "lt" => fixed(&[Reflect, Reflect], builtin_lt),
        "le" => fixed(&[Reflect, Reflect], builtin_le),
        "gt" => fixed(&[Reflect, Reflect], builtin_gt),
        "ge" => fixed(&[Reflect, Reflect], builtin_ge),
        "html" => variadic(&[], Reflect, builtin_html),
        "js" => variadic(&[], Reflect, builtin_js),
        "urlquery" => variadic(&[], Reflect, builtin_urlquery),
        "toString" => fixed(&[Any], sprig_to_string),
        "quote" => variadic(&[], Any, sprig_quote),
        "squote" => variadic(&[], Any, sprig_squote),
        "trim" => fixed(&[Str], sprig_trim),
        "trimAll" | "trimall" => fixed(&[Str, Str], sprig_trim_all),
        "trimPrefix" => fixed(&[Str, Str], sprig_trim_prefix),
        "trimSuffix" => fixed(&[Str, Str], sprig_trim_suffix),
        "upper" => fixed(&[Str], sprig_upper),
        "lower" => fixed(&[Str], sprig_lower),
        "title" => fixed(&[Str], sprig_title),
        "replace" => fixed(&[Str, Str, Str], sprig_replace),
        "repeat" => fixed(&[Int, Str], sprig_repeat),
        "substr" => fixed(&[Int, Int, Str], sprig_substr),
        "trunc" => fixed(&[Int, Str], sprig_trunc),
        "contains" => fixed(&[Str, Str], sprig_contains),
        "hasPrefix" => fixed(&[Str, Str], sprig_has_prefix),
        "hasSuffix" => fixed(&[Str, Str], sprig_has_suffix),
        "cat" => variadic(&[], Any, sprig_cat),
        "indent" => fixed(&[Int, Str], sprig_indent),
        "nindent" => fixed(&[Int, Str], sprig_nindent),
        "nospace" => fixed(&[Str], sprig_nospace),
        "default" => variadic(&[Any], Any, sprig_default),
        "empty" => fixed(&[Any], sprig_empty),
        "coalesce" => variadic(&[], Any, sprig_coalesce),
        "ternary" => fixed(&[Any, Any, Bool], sprig_ternary),
        "required" => Function {
            user_message: true,
            ..fixed(&[Str, Any], sprig_required)
        },
        "fail" => Function {
            user_message: true,
            ..fixed(&[Str], sprig_fail)
        },
        "join" => fixed(&[Str, Any], sprig_join),
        "split" => fixed(&[Str, Str], sprig_split),
        "splitList" => fixed(&[Str, Str], sprig_split_list),
        "toStrings" => fixed(&[Any], sprig_to_strings),
        "sortAlpha" => fixed(&[Any], sprig_sort_alpha),
        "list" => variadic(&[], Any, sprig_list),
        "first" => fixed(&[Any], sprig_first),
        "last" => fixed(&[Any], sprig_last),
        "append" | "push" => fixed(&[Any, Any], sprig_append),
        "has" => fixed(&[Any, Any], sprig_has),
        "dict" => variadic(&[], Any, sprig_dict),
        "get" => fixed(&[Map, Str], sprig_get),
        "set" => fixed(&[Map, Str, Any], sprig_set),
        "unset" => fixed(&[Map, Str], sprig_unset),
        "hasKey" => fixed(&[Map, Str], sprig_has_key),
        "keys" => variadic(&[], Map, sprig_keys),
        "values" => fixed(&[Map], sprig_values),
        "toJson" => fixed(&[Any], sprig_to_json),
        "toPrettyJson" => fixed(&[Any], sprig_to_pretty_json),
        "toRawJson" => fixed(&[Any], sprig_to_raw_json),
        "fromJson" => fixed(&[Str], sprig_from_json),
        "b64enc" => fixed(&[Str], sprig_b64enc),
        "b64dec" => fixed(&[Str], sprig_b64dec),
        "b32enc" => fixed(&[Str], sprig_b32enc),
        "b32dec" => fixed(&[Str], sprig_b32dec),
        "sha1sum" => fixed(&[Str], sprig_sha1sum),
        "sha256sum" => fixed(&[Str], sprig_sha256sum),
        "sha512sum" => fixed(&[Str], sprig_sha512sum),
        "adler32sum" => fixed(&[Str], sprig_adler32sum),
        "atoi" => fixed(&[Str], sprig_atoi),
        "int" | "int64" => fixed(&[Any], sprig_int),
        "float64" => fixed(&[Any], sprig_float64),
        "add" => variadic(&[], Any, sprig_add),
        "add1" => fixed(&[Any], sprig_add1),
        "sub" => fixed(&[Any, Any], sprig_sub),
        "mul" => variadic(&[Any], Any, sprig_mul),
        "div" => fixed(&[Any, Any], sprig_div),
        "mod" => fixed(&[Any, Any], sprig_mod),
        "max" => variadic(&[Any], Any, sprig_max),
        "min" => variadic(&[Any], Any, sprig_min),
        _ => return None,
    };
    Some(function)
}

fn bad_args() -> String {
    "wrong number of arguments".to_string()
}

fn ok_str(bytes: impl AsRef<[u8]>) -> Result<Value, String> {
    Ok(Value::str(bytes))
}

/// Refuses to build strings over the size limit before allocating them.
fn check_size(size: Option<usize>) -> Result<usize, String> {
    match size {
        Some(size) if size <= MAX_STRING => Ok(size),
        _ => Err(format!("result would be larger than {MAX_STRING} bytes")),
    }
}

// --- Go builtins -------------------------------------------------------------------------------

fn builtin_not(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(!value.is_true()))
}

fn builtin_len(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    let len = match value {
        Value::Str(s) => s.len(),
        Value::List(list) => list.items.len(),
        Value::Map(map) => map.entries.try_borrow().map_or(0, |e| e.len()),
        Value::Missing | Value::Nil => return Err("len of nil pointer".to_string()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(Value::Int(i64::try_from(len).unwrap_or(i64::MAX)))
}

/// Checks an index into something of length `len` (`allow_end` for slice bounds).
fn index_in(index: &Value, len: usize, allow_end: bool) -> Result<usize, String> {
    match index {
        Value::Int(i) => {
            let limit = if allow_end {
                len
            } else {
                len.saturating_sub(1)
            };
            match usize::try_from(*i) {
                Ok(i) if i <= limit && (allow_end || len > 0) => Ok(i),
                _ => Err("index out of range".to_string()),
            }
        }
        Value::Missing | Value::Nil => Err("cannot index slice/array with nil".to_string()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

fn builtin_index(args: &[Value]) -> Result<Value, String> {
    let [item, indexes @ ..] = args else {
        return Err(bad_args());
    };
    let mut current = item.clone();
    for index in indexes {
        current = match &current {
            Value::List(list) => {
                let i = index_in(index, list.items.len(), false)?;
                list.items.get(i).cloned().unwrap_or(Value::Nil)
            }
            Value::Str(s) => {
                let i = index_in(index, s.len(), false)?;
                Value::Int(s.get(i).copied().map_or(0, i64::from))
            }
            Value::Map(map) => match index {
                Value::Str(key) => {
                    let entries = map
                        .entries
                        .try_borrow()
                        .map_err(|_| "map is being modified")?;
                    match entries.get(&key[..]) {
                        Some(value) => value.clone(),
                        None if map.string_elems => Value::str(""),
                        None => Value::Nil,
                    }
                }
                Value::Missing | Value::Nil => {
                    return Err("value is nil; should be of type string".to_string());
                }
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Missing | Value::Nil => return Err("index of untyped nil".to_string()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(current)
}

fn builtin_slice(args: &[Value]) -> Result<Value, String> {
    let [item, indexes @ ..] = args else {
        return Err(bad_args());
    };
    let len = match item {
        Value::Str(s) if indexes.len() > 2 => {
            let _ = s;
            return Err("cannot 3-index slice a string".to_string());
        }
        Value::Str(s) => s.len(),
        Value::List(list) => list.items.len(),
        Value::Missing | Value::Nil => return Err("slice of untyped nil".to_string()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if indexes.len() > 3 {
        return Err("too many slice indexes".to_string());
    }
    let mut bounds = [0, len];
    for (slot, index) in bounds.iter_mut().zip(indexes) {
        *slot = index_in(index, len, true)?;
    }
    if let Some(cap) = indexes.get(2) {
        let cap = index_in(cap, len, true)?;
        if bounds[1] > cap {
            return Err("invalid slice index".to_string());
        }
    }
    let [start, end] = bounds;
    if start > end {
        return Err("invalid slice index".to_string());
    }
    match item {
        Value::Str(s) => ok_str(s.get(start..end).unwrap_or_default()),
        Value::List(list) => Ok(Value::list(
            list.items.get(start..end).unwrap_or_default().to_vec(),
        )),
        _ => Err(bad_args()),
    }
}

fn builtin_print(args: &[Value]) -> Result<Value, String> {
    let mut out = Vec::new();
    sprint(args, &mut out);
    ok_str(out)
}

fn builtin_println(args: &[Value]) -> Result<Value, String> {
    let mut out = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        format_default(arg, &mut out, 0);
    }
    out.push(b'\n');
    ok_str(out)
}

fn builtin_printf(args: &[Value]) -> Result<Value, String> {
    let [format, rest @ ..] = args else {
        return Err(bad_args());
    };
    ok_str(go_sprintf(format.bytes(), rest))
}

/// The kind of a value for the comparison builtins.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind_of(value: &Value) -> Kind {
    match value {
        Value::Missing | Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        Value::List(_) | Value::Map(_) => Kind::Other,
    }
}

const INCOMPATIBLE: &str = "incompatible types for comparison";
const BAD_TYPE: &str = "invalid type for comparison";

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind_of(a), kind_of(b));
    if ka != kb {
        if ka != Kind::Invalid && kb != Kind::Invalid {
            return Err(INCOMPATIBLE.to_string());
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ if ka == Kind::Invalid => true,
        _ => return Err(format!("non-comparable type {}", a.type_name())),
    })
}

fn builtin_eq(args: &[Value]) -> Result<Value, String> {
    let [first, others @ ..] = args else {
        return Err(bad_args());
    };
    if others.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    for other in others {
        if equal(first, other)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn builtin_ne(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(!equal(a, b)?))
}

fn less(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind_of(a), kind_of(b));
    if matches!(ka, Kind::Invalid | Kind::Other) || matches!(kb, Kind::Invalid | Kind::Other) {
        return Err(BAD_TYPE.to_string());
    }
    if ka != kb {
        return Err(INCOMPATIBLE.to_string());
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ => Err(BAD_TYPE.to_string()),
    }
}

fn builtin_lt(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(less(a, b)?))
}

fn builtin_le(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(less(a, b)? || equal(a, b)?))
}

fn builtin_gt(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(!(less(a, b)? || equal(a, b)?)))
}

fn builtin_ge(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(!less(a, b)?))
}

/// The text the `html`, `js` and `urlquery` builtins escape.
fn escaper_input(args: &[Value]) -> Vec<u8> {
    if let [Value::Str(s)] = args {
        return s.to_vec();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|arg| {
            if arg.is_nil() {
                Value::str("<no value>")
            } else {
                arg.clone()
            }
        })
        .collect();
    let mut out = Vec::new();
    sprint(&printable, &mut out);
    out
}

fn builtin_html(args: &[Value]) -> Result<Value, String> {
    ok_str(html_escape(&escaper_input(args)))
}

fn builtin_js(args: &[Value]) -> Result<Value, String> {
    ok_str(js_escape(&escaper_input(args)))
}

fn builtin_urlquery(args: &[Value]) -> Result<Value, String> {
    ok_str(query_escape(&escaper_input(args)))
}

// --- Sprig: strings ----------------------------------------------------------------------------

/// Sprig's `strval`: strings as they are, anything else as `fmt` prints it.
fn strval(value: &Value) -> Vec<u8> {
    match value {
        Value::Str(s) => s.to_vec(),
        other => {
            let mut out = Vec::new();
            format_default(other, &mut out, 0);
            out
        }
    }
}

fn sprig_to_string(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    ok_str(strval(value))
}

fn sprig_quote(args: &[Value]) -> Result<Value, String> {
    let quoted: Vec<String> = args
        .iter()
        .filter(|arg| !arg.is_nil())
        .map(|arg| go_quote(&strval(arg)))
        .collect();
    ok_str(quoted.join(" "))
}

fn sprig_squote(args: &[Value]) -> Result<Value, String> {
    let quoted: Vec<Vec<u8>> = args
        .iter()
        .filter(|arg| !arg.is_nil())
        .map(|arg| [&b"'"[..], &strval(arg), b"'"].concat())
        .collect();
    ok_str(quoted.join(&b' '))
}

/// Trims characters matching `strip` from the ends of `s`, keeping invalid UTF-8 bytes.
fn trim_bytes(s: &[u8], strip: impl Fn(char) -> bool) -> &[u8] {
    let mut start = 0;
    if let Some(chunk) = s.utf8_chunks().next() {
        let valid = chunk.valid();
        start = valid.len() - valid.trim_start_matches(&strip).len();
    }
    let mut end = s.len();
    if let Some(chunk) = s.get(start..).and_then(|rest| rest.utf8_chunks().last())
        && chunk.invalid().is_empty()
    {
        let valid = chunk.valid();
        end -= valid.len() - valid.trim_end_matches(&strip).len();
    }
    s.get(start..end.max(start)).unwrap_or_default()
}

fn sprig_trim(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(trim_bytes(s.bytes(), char::is_whitespace))
}

fn sprig_trim_all(args: &[Value]) -> Result<Value, String> {
    let [cutset, s] = args else {
        return Err(bad_args());
    };
    let cutset: Vec<char> = String::from_utf8_lossy(cutset.bytes()).chars().collect();
    ok_str(trim_bytes(s.bytes(), |c| cutset.contains(&c)))
}

fn sprig_trim_prefix(args: &[Value]) -> Result<Value, String> {
    let [prefix, s] = args else {
        return Err(bad_args());
    };
    ok_str(s.bytes().strip_prefix(prefix.bytes()).unwrap_or(s.bytes()))
}

fn sprig_trim_suffix(args: &[Value]) -> Result<Value, String> {
    let [suffix, s] = args else {
        return Err(bad_args());
    };
    ok_str(s.bytes().strip_suffix(suffix.bytes()).unwrap_or(s.bytes()))
}

/// Maps every character through `map` when it yields exactly one character (Go's simple
/// case mapping); invalid UTF-8 becomes U+FFFD as with Go's `strings.Map`.
fn map_chars<I: Iterator<Item = char>>(s: &[u8], map: impl Fn(char) -> I) -> String {
    String::from_utf8_lossy(s)
        .chars()
        .map(|c| {
            let mut mapped = map(c);
            match (mapped.next(), mapped.next()) {
                (Some(single), None) => single,
                _ => c,
            }
        })
        .collect()
}

fn sprig_upper(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    if s.bytes().is_ascii() {
        return ok_str(s.bytes().to_ascii_uppercase());
    }
    ok_str(map_chars(s.bytes(), char::to_uppercase))
}

fn sprig_lower(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    if s.bytes().is_ascii() {
        return ok_str(s.bytes().to_ascii_lowercase());
    }
    ok_str(map_chars(s.bytes(), char::to_lowercase))
}

/// Go's `strings.Title` word separators.
fn is_word_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphabetic() || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

fn sprig_title(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let mut previous = ' ';
    let titled: String = String::from_utf8_lossy(s.bytes())
        .chars()
        .map(|c| {
            let mapped = if is_word_separator(previous) {
                let mut upper = c.to_uppercase();
                match (upper.next(), upper.next()) {
                    (Some(single), None) => single,
                    _ => c,
                }
            } else {
                c
            };
            previous = c;
            mapped
        })
        .collect();
    ok_str(titled)
}

/// Splits into UTF-8 sequences, each invalid byte on its own (Go's rune iteration).
fn utf8_units(s: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    for chunk in s.utf8_chunks() {
        let valid = chunk.valid();
        let mut offset = 0;
        for c in valid.chars() {
            units.push(&valid.as_bytes()[offset..offset + c.len_utf8()]);
            offset += c.len_utf8();
        }
        units.extend(chunk.invalid().chunks(1));
    }
    units
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Go's `strings.Replace(s, old, new, -1)`.
fn replace_all(s: &[u8], old: &[u8], new: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<u8>, bytes: &[u8]| {
        check_size(out.len().checked_add(bytes.len()))?;
        out.extend_from_slice(bytes);
        Ok::<(), String>(())
    };
    if old.is_empty() {
        push(&mut out, new)?;
        for unit in utf8_units(s) {
            push(&mut out, unit)?;
            push(&mut out, new)?;
        }
        return Ok(out);
    }
    let mut rest = s;
    while let Some(at) = find(rest, old) {
        push(&mut out, &rest[..at])?;
        push(&mut out, new)?;
        rest = &rest[at + old.len()..];
    }
    push(&mut out, rest)?;
    Ok(out)
}

fn sprig_replace(args: &[Value]) -> Result<Value, String> {
    let [old, new, s] = args else {
        return Err(bad_args());
    };
    ok_str(replace_all(s.bytes(), old.bytes(), new.bytes())?)
}

fn repeat_bytes(s: &[u8], count: i64) -> Result<Vec<u8>, String> {
    let count = usize::try_from(count).map_err(|_| "strings: negative Repeat count".to_string())?;
    check_size(s.len().checked_mul(count))?;
    Ok(s.repeat(count))
}

fn sprig_repeat(args: &[Value]) -> Result<Value, String> {
    let [count, s] = args else {
        return Err(bad_args());
    };
    ok_str(repeat_bytes(s.bytes(), count.int())?)
}

const OUT_OF_RANGE: &str = "runtime error: slice bounds out of range";

fn sprig_substr(args: &[Value]) -> Result<Value, String> {
    let [start, end, s] = args else {
        return Err(bad_args());
    };
    let (start, end, s) = (start.int(), end.int(), s.bytes());
    let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
    let (from, to) = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    let range = usize::try_from(from).ok().zip(usize::try_from(to).ok());
    match range.and_then(|(from, to)| s.get(from..to)) {
        Some(slice) => ok_str(slice),
        None => Err(OUT_OF_RANGE.to_string()),
    }
}

fn sprig_trunc(args: &[Value]) -> Result<Value, String> {
    let [count, s] = args else {
        return Err(bad_args());
    };
    let (count, s) = (count.int(), s.bytes());
    let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
    let kept = if count < 0 && len + count > 0 {
        s.get(usize::try_from(len + count).unwrap_or(0)..)
    } else if count >= 0 && len > count {
        s.get(..usize::try_from(count).unwrap_or(0))
    } else {
        Some(s)
    };
    ok_str(kept.unwrap_or(s))
}

fn sprig_contains(args: &[Value]) -> Result<Value, String> {
    let [needle, s] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(find(s.bytes(), needle.bytes()).is_some()))
}

fn sprig_has_prefix(args: &[Value]) -> Result<Value, String> {
    let [prefix, s] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(s.bytes().starts_with(prefix.bytes())))
}

fn sprig_has_suffix(args: &[Value]) -> Result<Value, String> {
    let [suffix, s] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(s.bytes().ends_with(suffix.bytes())))
}

fn sprig_cat(args: &[Value]) -> Result<Value, String> {
    let parts: Vec<Vec<u8>> = args
        .iter()
        .filter(|arg| !arg.is_nil())
        .map(|arg| {
            let mut out = Vec::new();
            format_default(arg, &mut out, 0);
            out
        })
        .collect();
    ok_str(parts.join(&b' '))
}

fn indent_bytes(spaces: i64, s: &[u8]) -> Result<Vec<u8>, String> {
    let pad = repeat_bytes(b" ", spaces)?;
    let mut with_newline = b"\n".to_vec();
    with_newline.extend_from_slice(&pad);
    let lines = s.iter().filter(|&&b| b == b'\n').count() + 1;
    check_size(
        lines
            .checked_mul(pad.len())
            .and_then(|p| p.checked_add(s.len())),
    )?;
    let mut out = pad;
    out.extend(replace_all(s, b"\n", &with_newline)?);
    Ok(out)
}

fn sprig_indent(args: &[Value]) -> Result<Value, String> {
    let [spaces, s] = args else {
        return Err(bad_args());
    };
    ok_str(indent_bytes(spaces.int(), s.bytes())?)
}

fn sprig_nindent(args: &[Value]) -> Result<Value, String> {
    let [spaces, s] = args else {
        return Err(bad_args());
    };
    let mut out = b"\n".to_vec();
    out.extend(indent_bytes(spaces.int(), s.bytes())?);
    ok_str(out)
}

fn sprig_nospace(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let kept: String = String::from_utf8_lossy(s.bytes())
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    ok_str(kept)
}

// --- Sprig: defaults and flow ------------------------------------------------------------------

fn sprig_default(args: &[Value]) -> Result<Value, String> {
    let [fallback, given @ ..] = args else {
        return Err(bad_args());
    };
    match given.first() {
        Some(value) if !value.is_empty() => Ok(value.clone()),
        _ => Ok(fallback.clone()),
    }
}

fn sprig_empty(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(value.is_empty()))
}

fn sprig_coalesce(args: &[Value]) -> Result<Value, String> {
    Ok(args
        .iter()
        .find(|arg| !arg.is_empty())
        .cloned()
        .unwrap_or(Value::Nil))
}

fn sprig_ternary(args: &[Value]) -> Result<Value, String> {
    let [if_true, if_false, condition] = args else {
        return Err(bad_args());
    };
    Ok(if condition.is_true() {
        if_true.clone()
    } else {
        if_false.clone()
    })
}

fn sprig_required(args: &[Value]) -> Result<Value, String> {
    let [message, value] = args else {
        return Err(bad_args());
    };
    let absent = match value {
        Value::Missing | Value::Nil => true,
        Value::Str(s) => s.is_empty(),
        _ => false,
    };
    if absent {
        return Err(String::from_utf8_lossy(message.bytes()).into_owned());
    }
    Ok(value.clone())
}

fn sprig_fail(args: &[Value]) -> Result<Value, String> {
    let [message] = args else {
        return Err(bad_args());
    };
    Err(String::from_utf8_lossy(message.bytes()).into_owned())
}

// --- Sprig: lists ------------------------------------------------------------------------------

/// Sprig's `strslice`: the elements of a list as strings (nils dropped), or the value itself.
fn strslice(value: &Value) -> Vec<Vec<u8>> {
    match value {
        Value::List(list) => list
            .items
            .iter()
            .filter(|item| !item.is_nil())
            .map(strval)
            .collect(),
        Value::Missing | Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn string_list(items: Vec<Vec<u8>>) -> Value {
    Value::list(items.into_iter().map(Value::str).collect())
}

fn sprig_join(args: &[Value]) -> Result<Value, String> {
    let [separator, list] = args else {
        return Err(bad_args());
    };
    ok_str(strslice(list).join(separator.bytes()))
}

/// Go's `strings.Split`.
fn split_bytes<'a>(s: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    if separator.is_empty() {
        return utf8_units(s);
    }
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(at) = find(rest, separator) {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest);
    parts
}

fn sprig_split(args: &[Value]) -> Result<Value, String> {
    let [separator, s] = args else {
        return Err(bad_args());
    };
    let entries = split_bytes(s.bytes(), separator.bytes())
        .into_iter()
        .enumerate()
        .map(|(i, part)| (format!("_{i}").into_bytes(), Value::str(part)))
        .collect();
    Ok(Value::map(entries))
}

fn sprig_split_list(args: &[Value]) -> Result<Value, String> {
    let [separator, s] = args else {
        return Err(bad_args());
    };
    let parts = split_bytes(s.bytes(), separator.bytes());
    Ok(Value::list(parts.into_iter().map(Value::str).collect()))
}

fn sprig_to_strings(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(string_list(strslice(value)))
}

fn sprig_sort_alpha(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    let mut items = match value {
        Value::List(_) => strslice(value),
        other => vec![strval(other)],
    };
    items.sort();
    Ok(string_list(items))
}

fn sprig_list(args: &[Value]) -> Result<Value, String> {
    Ok(Value::list(args.to_vec()))
}

/// Sprig's name for the kind of a value that is not a list.
fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Missing | Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
    }
}

fn list_items<'a>(value: &'a Value, operation: &str) -> Result<&'a [Value], String> {
    match value {
        Value::List(list) => Ok(&list.items),
        other => Err(format!("Cannot {operation} on type {}", kind_name(other))),
    }
}

fn sprig_first(args: &[Value]) -> Result<Value, String> {
    let [list] = args else { return Err(bad_args()) };
    let items = list_items(list, "find first")?;
    Ok(items.first().cloned().unwrap_or(Value::Nil))
}

fn sprig_last(args: &[Value]) -> Result<Value, String> {
    let [list] = args else { return Err(bad_args()) };
    let items = list_items(list, "find last")?;
    Ok(items.last().cloned().unwrap_or(Value::Nil))
}

fn sprig_append(args: &[Value]) -> Result<Value, String> {
    let [list, value] = args else {
        return Err(bad_args());
    };
    let mut items = list_items(list, "push")?.to_vec();
    items.push(value.clone());
    Ok(Value::list(items))
}

fn sprig_has(args: &[Value]) -> Result<Value, String> {
    let [needle, haystack] = args else {
        return Err(bad_args());
    };
    if haystack.is_nil() {
        return Ok(Value::Bool(false));
    }
    let items = list_items(haystack, "find has")?;
    Ok(Value::Bool(
        items.iter().any(|item| deep_equal(item, needle, 0)),
    ))
}

/// Go's `reflect.DeepEqual` for template values.
fn deep_equal(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Missing | Value::Nil, Value::Missing | Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.items.len() == y.items.len()
                && x.items
                    .iter()
                    .zip(&y.items)
                    .all(|(x, y)| deep_equal(x, y, depth + 1))
        }
        (Value::Map(x), Value::Map(y)) => {
            let (x, y) = (Value::map_entries(x), Value::map_entries(y));
            x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && deep_equal(vx, vy, depth + 1))
        }
        _ => false,
    }
}

// --- Sprig: dictionaries -----------------------------------------------------------------------

fn sprig_dict(args: &[Value]) -> Result<Value, String> {
    let mut entries = BTreeMap::new();
    for pair in args.chunks(2) {
        let key = pair.first().map(strval).unwrap_or_default();
        let value = pair.get(1).cloned().unwrap_or_else(|| Value::str(""));
        entries.insert(key, value);
    }
    Ok(Value::map(entries))
}

fn map_of(value: &Value) -> Result<&Rc<MapValue>, String> {
    match value {
        Value::Map(map) => Ok(map),
        _ => Err(bad_args()),
    }
}

fn sprig_get(args: &[Value]) -> Result<Value, String> {
    let [map, key] = args else {
        return Err(bad_args());
    };
    let entries = map_of(map)?
        .entries
        .try_borrow()
        .map_err(|_| "map is being modified")?;
    Ok(entries
        .get(key.bytes())
        .cloned()
        .unwrap_or_else(|| Value::str("")))
}

/// Does `value` contain the map `target` (so storing it there would make a cycle)?
fn contains_map(value: &Value, target: &Rc<MapValue>, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        return true;
    }
    match value {
        Value::Map(map) => {
            Rc::ptr_eq(map, target)
                || Value::map_entries(map)
                    .iter()
                    .any(|(_, v)| contains_map(v, target, depth + 1))
        }
        Value::List(list) => list
            .items
            .iter()
            .any(|item| contains_map(item, target, depth + 1)),
        _ => false,
    }
}

fn sprig_set(args: &[Value]) -> Result<Value, String> {
    let [map_value, key, value] = args else {
        return Err(bad_args());
    };
    let map = map_of(map_value)?;
    if contains_map(value, map, 0) {
        return Err("a map can't contain itself".to_string());
    }
    map.entries
        .try_borrow_mut()
        .map_err(|_| "map is being read".to_string())?
        .insert(key.bytes().to_vec(), value.clone());
    Ok(map_value.clone())
}

fn sprig_unset(args: &[Value]) -> Result<Value, String> {
    let [map_value, key] = args else {
        return Err(bad_args());
    };
    let removed = map_of(map_value)?
        .entries
        .try_borrow_mut()
        .map_err(|_| "map is being read".to_string())?
        .remove(key.bytes());
    drop(removed);
    Ok(map_value.clone())
}

fn sprig_has_key(args: &[Value]) -> Result<Value, String> {
    let [map, key] = args else {
        return Err(bad_args());
    };
    let entries = map_of(map)?
        .entries
        .try_borrow()
        .map_err(|_| "map is being modified")?;
    Ok(Value::Bool(entries.contains_key(key.bytes())))
}

fn sprig_keys(args: &[Value]) -> Result<Value, String> {
    let mut keys = Vec::new();
    for map in args {
        keys.extend(Value::map_entries(map_of(map)?).into_iter().map(|(k, _)| k));
    }
    Ok(string_list(keys))
}

fn sprig_values(args: &[Value]) -> Result<Value, String> {
    let [map] = args else { return Err(bad_args()) };
    let values = Value::map_entries(map_of(map)?)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    Ok(Value::list(values))
}

// --- Sprig: encodings and digests --------------------------------------------------------------

fn json_of(value: &Value, style: JsonStyle) -> Result<Value, String> {
    let mut out = Vec::new();
    match encode_json(value, &mut out, style, 0) {
        Ok(()) => ok_str(out),
        Err(()) => ok_str(""),
    }
}

fn sprig_to_json(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    json_of(value, JsonStyle::Compact)
}

fn sprig_to_pretty_json(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    json_of(value, JsonStyle::Pretty)
}

fn sprig_to_raw_json(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    json_of(value, JsonStyle::Raw)
}

fn sprig_from_json(args: &[Value]) -> Result<Value, String> {
    let [text] = args else { return Err(bad_args()) };
    match serde_json::from_slice::<serde_json::Value>(text.bytes()) {
        Ok(json) => Ok(value_from_json(json)),
        Err(_) => Ok(Value::Nil),
    }
}

/// Go's `json.Unmarshal` into `interface{}`: numbers become float64.
fn value_from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(items) => {
            Value::list(items.into_iter().map(value_from_json).collect())
        }
        serde_json::Value::Object(entries) => Value::map(
            entries
                .into_iter()
                .map(|(k, v)| (k.into_bytes(), value_from_json(v)))
                .collect(),
        ),
    }
}

fn sprig_b64enc(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(base64::engine::general_purpose::STANDARD.encode(s.bytes()))
}

/// Go's `base64.StdEncoding`: padding required, stray bits and line breaks tolerated.
const GO_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

fn sprig_b64dec(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let cleaned: Vec<u8> = s
        .bytes()
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    match GO_BASE64.decode(&cleaned) {
        Ok(decoded) => ok_str(decoded),
        Err(error) => {
            let offset = match error {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
                base64::DecodeError::InvalidLength(len) => len,
                base64::DecodeError::InvalidPadding => cleaned.len(),
            };
            ok_str(format!("illegal base64 data at input byte {offset}"))
        }
    }
}

fn sprig_b32enc(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(base32_encode(s.bytes()))
}

fn sprig_b32dec(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    match base32_decode(s.bytes()) {
        Ok(decoded) => ok_str(decoded),
        Err(offset) => ok_str(format!("illegal base32 data at input byte {offset}")),
    }
}

fn hex_digest(algorithm: &'static aws_lc_rs::digest::Algorithm, data: &[u8]) -> Value {
    Value::str(hex(aws_lc_rs::digest::digest(algorithm, data).as_ref()))
}

fn sprig_sha1sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    Ok(hex_digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        s.bytes(),
    ))
}

fn sprig_sha256sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    Ok(hex_digest(&aws_lc_rs::digest::SHA256, s.bytes()))
}

fn sprig_sha512sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    Ok(hex_digest(&aws_lc_rs::digest::SHA512, s.bytes()))
}

fn sprig_adler32sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(adler32(s.bytes()).to_string())
}

// --- Sprig: numbers ----------------------------------------------------------------------------

/// Go's `strconv.Atoi` with the error ignored (out-of-range values saturate).
fn sprig_atoi(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let text = String::from_utf8_lossy(s.bytes());
    let value = match text.parse::<i64>() {
        Ok(value) => value,
        Err(error) => match error.kind() {
            std::num::IntErrorKind::PosOverflow => i64::MAX,
            std::num::IntErrorKind::NegOverflow => i64::MIN,
            _ => 0,
        },
    };
    Ok(Value::Int(value))
}

/// `cast.ToInt64`: numbers, booleans and numeric strings; anything else is 0.
fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => parse_go_int(&String::from_utf8_lossy(s)).unwrap_or(0),
        _ => 0,
    }
}

/// `strconv.ParseInt(s, 0, 64)` after dropping a zero fraction (`"3.0"`), as cast does.
fn parse_go_int(text: &str) -> Option<i64> {
    let mut text = text;
    if let Some(dot) = text.find('.')
        && text[dot + 1..].chars().all(|c| c == '0')
    {
        text = &text[..dot];
    }
    match parse_number(text, false).ok()?.value {
        NumberValue::Int(i) => Some(i),
        _ => None,
    }
}

fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => String::from_utf8_lossy(s).trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn sprig_int(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Int(to_int64(value)))
}

fn sprig_float64(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Float(to_float64(value)))
}

fn sprig_add(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(
        args.iter()
            .fold(0i64, |sum, v| sum.wrapping_add(to_int64(v))),
    ))
}

fn sprig_add1(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Int(to_int64(value).wrapping_add(1)))
}

fn sprig_sub(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Int(to_int64(a).wrapping_sub(to_int64(b))))
}

fn sprig_mul(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(args.iter().fold(1i64, |product, v| {
        product.wrapping_mul(to_int64(v))
    })))
}

const DIVIDE_BY_ZERO: &str = "runtime error: integer divide by zero";

fn sprig_div(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    match to_int64(b) {
        0 => Err(DIVIDE_BY_ZERO.to_string()),
        divisor => Ok(Value::Int(to_int64(a).wrapping_div(divisor))),
    }
}

fn sprig_mod(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    match to_int64(b) {
        0 => Err(DIVIDE_BY_ZERO.to_string()),
        divisor => Ok(Value::Int(to_int64(a).wrapping_rem(divisor))),
    }
}

fn sprig_max(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(args.iter().map(to_int64).max().unwrap_or(0)))
}

fn sprig_min(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(args.iter().map(to_int64).min().unwrap_or(0)))
}

// ---------------------------------------------------------------------------------------------
// Formatting (Go's fmt, strconv and encoding/json conventions)
// ---------------------------------------------------------------------------------------------

/// Go's `%v`.
fn format_default(value: &Value, out: &mut Vec<u8>, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.extend_from_slice(b"...");
        return;
    }
    match value {
        Value::Missing | Value::Nil => out.extend_from_slice(b"<nil>"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(format_float_shortest(*f).as_bytes()),
        Value::Str(s) => out.extend_from_slice(s),
        Value::List(list) => {
            out.push(b'[');
            for (i, item) in list.items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                format_default(item, out, depth + 1);
            }
            out.push(b']');
        }
        Value::Map(map) => {
            out.extend_from_slice(b"map[");
            for (i, (key, item)) in Value::map_entries(map).iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(key);
                out.push(b':');
                format_default(item, out, depth + 1);
            }
            out.push(b']');
        }
    }
}

/// Shortest decimal digits and exponent of a finite float: `1.5e3` -> ("15", 3).
fn float_digits(f: f64) -> (String, i32) {
    let text = format!("{:e}", f.abs());
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    (mantissa.replace('.', ""), exponent.parse().unwrap_or(0))
}

/// Go's `%e`-style exponent: at least two digits and a sign.
fn go_exponent(exponent: i32) -> String {
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exponent.unsigned_abs())
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which `%v` uses.
fn format_float_shortest(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (digits, exponent) = float_digits(f);
    if (-4..6).contains(&exponent) {
        return format!("{f}");
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let mantissa = match digits.split_at_checked(1) {
        Some((head, tail)) if !tail.is_empty() => format!("{head}.{tail}"),
        _ => digits.clone(),
    };
    format!("{sign}{mantissa}{}", go_exponent(exponent))
}

/// Go's `%e` with a precision.
fn format_float_exponent(f: f64, precision: usize, upper: bool) -> String {
    let text = format!("{f:.precision$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let formatted = format!("{mantissa}{}", go_exponent(exponent.parse().unwrap_or(0)));
    if upper {
        formatted.to_uppercase()
    } else {
        formatted
    }
}

/// Go's `unicode.IsPrint`, approximately: graphic characters and the ASCII space.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xD800..=0xDFFF | 0xE000..=0xF8FF | 0xFEFF
        | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..)
}

/// Go's `strconv.Quote` of a string (`%q`).
fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_quoted_char(&mut out, c, '"');
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

fn go_quote_str(text: &str) -> String {
    go_quote(text.as_bytes())
}

fn push_quoted_char(out: &mut String, c: char, quote: char) {
    match c {
        _ if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ if is_printable(c) => out.push(c),
        _ if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        _ if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        _ => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
fn sprint(args: &[Value], out: &mut Vec<u8>) {
    let mut previous_is_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !previous_is_string {
            out.push(b' ');
        }
        format_default(arg, out, 0);
        previous_is_string = is_string;
    }
}

/// One `%` directive of a format string.
#[derive(Default, Clone, Copy)]
struct Directive {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
}

/// Go's `fmt.Sprintf` for the common verbs.
fn go_sprintf(format: &[u8], args: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(format.len());
    let mut next_arg = 0;
    let mut i = 0;
    while i < format.len() {
        let Some(offset) = format[i..].iter().position(|&b| b == b'%') else {
            out.extend_from_slice(&format[i..]);
            break;
        };
        out.extend_from_slice(&format[i..i + offset]);
        i += offset + 1;
        let mut directive = Directive::default();
        while let Some(&flag) = format.get(i) {
            match flag {
                b'-' => directive.minus = true,
                b'+' => directive.plus = true,
                b'#' => directive.sharp = true,
                b' ' => directive.space = true,
                b'0' => directive.zero = true,
                _ => break,
            }
            i += 1;
        }
        match read_format_number(format, &mut i, args, &mut next_arg) {
            Ok(width) => directive.width = width,
            Err(()) => out.extend_from_slice(b"%!(BADWIDTH)"),
        }
        if format.get(i) == Some(&b'.') {
            i += 1;
            match read_format_number(format, &mut i, args, &mut next_arg) {
                Ok(precision) => directive.precision = Some(precision.unwrap_or(0)),
                Err(()) => out.extend_from_slice(b"%!(BADPREC)"),
            }
        }
        let Some(rest) = format.get(i..).filter(|rest| !rest.is_empty()) else {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        };
        let (verb, verb_len) = first_char(rest);
        i += verb_len;
        directive.verb = verb;
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        match args.get(next_arg) {
            Some(arg) => {
                next_arg += 1;
                format_directive(&directive, arg, &mut out);
            }
            None => {
                let _ = write!(VecWriter(&mut out), "%!{verb}(MISSING)");
            }
        }
    }
    if next_arg < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (n, arg) in args[next_arg..].iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(b", ");
            }
            describe_bad_arg(arg, &mut out);
        }
        out.push(b')');
    }
    out
}

/// Adapts a byte vector to `fmt::Write`.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The first character of `bytes` and its length (U+FFFD for an invalid byte).
fn first_char(bytes: &[u8]) -> (char, usize) {
    match bytes.utf8_chunks().next() {
        Some(chunk) => match chunk.valid().chars().next() {
            Some(c) => (c, c.len_utf8()),
            None => ('\u{FFFD}', 1),
        },
        None => ('\u{FFFD}', 1),
    }
}

/// Reads a width or precision: digits or `*` (taken from the arguments).
fn read_format_number(
    format: &[u8],
    i: &mut usize,
    args: &[Value],
    next_arg: &mut usize,
) -> Result<Option<usize>, ()> {
    if format.get(*i) == Some(&b'*') {
        *i += 1;
        let arg = args.get(*next_arg);
        *next_arg += 1;
        return match arg {
            Some(Value::Int(n)) => usize::try_from(*n)
                .ok()
                .filter(|n| *n <= MAX_FORMAT_WIDTH)
                .map(Some)
                .ok_or(()),
            _ => Err(()),
        };
    }
    let start = *i;
    while format.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    if *i == start {
        return Ok(None);
    }
    std::str::from_utf8(&format[start..*i])
        .ok()
        .and_then(|digits| digits.parse::<usize>().ok())
        .filter(|n| *n <= MAX_FORMAT_WIDTH)
        .map(Some)
        .ok_or(())
}

/// `type=value` (or `<nil>`) as Go prints a bad or extra argument.
fn describe_bad_arg(arg: &Value, out: &mut Vec<u8>) {
    if arg.is_nil() {
        out.extend_from_slice(b"<nil>");
        return;
    }
    out.extend_from_slice(arg.type_name().as_bytes());
    out.push(b'=');
    format_default(arg, out, 0);
}

fn format_directive(directive: &Directive, arg: &Value, out: &mut Vec<u8>) {
    let verb = directive.verb;
    let body: Option<Vec<u8>> = match (verb, arg) {
        ('v', Value::Str(s)) if directive.sharp => Some(go_quote(s).into_bytes()),
        ('v', Value::Int(i)) => Some(format_integer(*i, 10, false, directive)),
        ('v', Value::Float(f)) => Some(format_float_verb(*f, 'g', directive)),
        ('v', Value::List(list)) => {
            format_each(directive, &list.items, out);
            return;
        }
        ('v', Value::Missing | Value::Nil) => Some(b"<nil>".to_vec()),
        ('v', other) => {
            let mut text = Vec::new();
            format_default(other, &mut text, 0);
            Some(text)
        }
        ('s', Value::Str(s)) => Some(truncate_chars(s, directive.precision)),
        ('q', Value::Str(s)) => {
            Some(go_quote(&truncate_chars(s, directive.precision)).into_bytes())
        }
        ('x' | 'X', Value::Str(s)) => Some(hex_string(s, verb == 'X', directive.space)),
        ('s' | 'q' | 'x' | 'X' | 'd', Value::List(list)) => {
            format_each(directive, &list.items, out);
            return;
        }
        ('s', Value::Map(_)) => {
            let mut text = Vec::new();
            format_default(arg, &mut text, 0);
            Some(text)
        }
        ('d', Value::Int(i)) => Some(format_integer(*i, 10, false, directive)),
        ('x', Value::Int(i)) => Some(format_integer(*i, 16, false, directive)),
        ('X', Value::Int(i)) => Some(format_integer(*i, 16, true, directive)),
        ('o', Value::Int(i)) => Some(format_integer(*i, 8, false, directive)),
        ('b', Value::Int(i)) => Some(format_integer(*i, 2, false, directive)),
        ('c', Value::Int(i)) => Some(char_of(*i).to_string().into_bytes()),
        ('q', Value::Int(i)) => {
            let mut quoted = String::from("'");
            push_quoted_char(&mut quoted, char_of(*i), '\'');
            quoted.push('\'');
            Some(quoted.into_bytes())
        }
        ('U', Value::Int(i)) => Some(format!("U+{:04X}", char_of(*i) as u32).into_bytes()),
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(f)) => {
            Some(format_float_verb(*f, verb, directive))
        }
        ('t', Value::Bool(b)) => Some(b.to_string().into_bytes()),
        _ => None,
    };
    match body {
        Some(body) => pad(directive, &body, out),
        None => {
            let _ = write!(VecWriter(out), "%!{verb}(");
            describe_bad_arg(arg, out);
            out.push(b')');
        }
    }
}

/// `[a b c]` with the verb applied to each element.
fn format_each(directive: &Directive, items: &[Value], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        format_directive(directive, item, out);
    }
    out.push(b']');
}

fn char_of(code: i64) -> char {
    u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}

fn truncate_chars(s: &[u8], precision: Option<usize>) -> Vec<u8> {
    match precision {
        Some(limit) => utf8_units(s)
            .into_iter()
            .take(limit)
            .flatten()
            .copied()
            .collect(),
        None => s.to_vec(),
    }
}

fn hex_string(s: &[u8], upper: bool, spaced: bool) -> Vec<u8> {
    let mut text = String::with_capacity(s.len() * 3);
    for (i, byte) in s.iter().enumerate() {
        if spaced && i > 0 {
            text.push(' ');
        }
        let _ = if upper {
            write!(text, "{byte:02X}")
        } else {
            write!(text, "{byte:02x}")
        };
    }
    text.into_bytes()
}

fn format_integer(value: i64, radix: u32, upper: bool, directive: &Directive) -> Vec<u8> {
    let magnitude = value.unsigned_abs();
    let mut digits = match radix {
        16 if upper => format!("{magnitude:X}"),
        16 => format!("{magnitude:x}"),
        8 => format!("{magnitude:o}"),
        2 => format!("{magnitude:b}"),
        _ => magnitude.to_string(),
    };
    if let Some(precision) = directive.precision
        && digits.len() < precision
    {
        digits = "0".repeat(precision - digits.len()) + &digits;
    }
    let prefix = match (directive.sharp, radix) {
        (true, 16) if upper => "0X",
        (true, 16) => "0x",
        (true, 8) => "0",
        (true, 2) => "0b",
        _ => "",
    };
    let sign = sign_of(value < 0, directive);
    format!("{sign}{prefix}{digits}").into_bytes()
}

fn sign_of(negative: bool, directive: &Directive) -> &'static str {
    if negative {
        "-"
    } else if directive.plus {
        "+"
    } else if directive.space {
        " "
    } else {
        ""
    }
}

fn format_float_verb(f: f64, verb: char, directive: &Directive) -> Vec<u8> {
    if !f.is_finite() {
        let text = match (f.is_nan(), f > 0.0) {
            (true, _) => "NaN",
            (false, true) if directive.plus => "+Inf",
            (false, true) => "+Inf",
            (false, false) => "-Inf",
        };
        return text.as_bytes().to_vec();
    }
    let sign = sign_of(f.is_sign_negative(), directive);
    let magnitude = f.abs();
    let body = match (verb, directive.precision) {
        ('e' | 'E', precision) => {
            format_float_exponent(magnitude, precision.unwrap_or(6), verb == 'E')
        }
        ('f' | 'F', precision) => format!("{magnitude:.*}", precision.unwrap_or(6)),
        (_, None) => format_float_shortest(magnitude),
        (_, Some(precision)) => format_float_general(magnitude, precision.max(1)),
    };
    let body = if verb == 'G' {
        body.to_uppercase()
    } else {
        body
    };
    format!("{sign}{body}").into_bytes()
}

/// Go's `%.Ng`: `%e` or `%f` with N significant digits, trailing zeros removed.
fn format_float_general(f: f64, precision: usize) -> String {
    let rounded = format!("{f:.*e}", precision - 1);
    let (_, exponent) = rounded.split_once('e').unwrap_or((&rounded, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let limit = i64::try_from(precision).unwrap_or(i64::MAX);
    if exponent < -4 || exponent >= limit {
        let text = format_float_exponent(f, precision - 1, false);
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, ""));
        let mantissa = strip_fraction_zeros(mantissa);
        return format!("{mantissa}e{exp}");
    }
    let decimals = usize::try_from(limit - 1 - exponent).unwrap_or(0);
    strip_fraction_zeros(&format!("{f:.decimals$}")).to_string()
}

fn strip_fraction_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// Pads to the directive's width (counted in characters, as Go does).
fn pad(directive: &Directive, body: &[u8], out: &mut Vec<u8>) {
    let len = utf8_units(body).len();
    let width = directive.width.unwrap_or(0);
    if len >= width {
        out.extend_from_slice(body);
        return;
    }
    let fill = width - len;
    if directive.minus {
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if directive.zero
        && matches!(
            directive.verb,
            'd' | 'x' | 'X' | 'o' | 'b' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'v'
        )
    {
        let sign_len = usize::from(
            body.first()
                .is_some_and(|b| matches!(b, b'-' | b'+' | b' ')),
        );
        out.extend_from_slice(&body[..sign_len]);
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(&body[sign_len..]);
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(body);
    }
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &byte in s {
        match byte {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'"' => out.extend_from_slice(b"&#34;"),
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            _ => out.push(byte),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for unit in utf8_units(s) {
        match unit {
            [b'\\'] => out.extend_from_slice(b"\\\\"),
            [b'\''] => out.extend_from_slice(b"\\'"),
            [b'"'] => out.extend_from_slice(b"\\\""),
            [b'<'] => out.extend_from_slice(b"\\u003C"),
            [b'>'] => out.extend_from_slice(b"\\u003E"),
            [b'&'] => out.extend_from_slice(b"\\u0026"),
            [b'='] => out.extend_from_slice(b"\\u003D"),
            [byte] if *byte < b' ' => {
                let _ = write!(VecWriter(&mut out), "\\u{:04X}", byte);
            }
            [byte] if *byte < 0x80 => out.push(*byte),
            _ => match std::str::from_utf8(unit)
                .ok()
                .and_then(|s| s.chars().next())
            {
                Some(c) if is_printable(c) => out.extend_from_slice(unit),
                Some(c) => {
                    let _ = write!(VecWriter(&mut out), "\\u{:04X}", c as u32);
                }
                None => out.extend_from_slice(b"\\uFFFD"),
            },
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &byte in s {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte),
            b' ' => out.push(b'+'),
            _ => {
                let _ = write!(VecWriter(&mut out), "%{byte:02X}");
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    hex_string(bytes, false, false)
        .into_iter()
        .map(char::from)
        .collect()
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Go's `base32.StdEncoding.EncodeToString`.
fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    for block in data.chunks(5) {
        let mut buffer = [0u8; 5];
        buffer[..block.len()].copy_from_slice(block);
        let bits = buffer
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let symbols = (block.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < symbols {
                let index = (bits >> (35 - i * 5)) & 0x1f;
                out.push(char::from(BASE32_ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `base32.StdEncoding.DecodeString`; the error is the offending input offset.
fn base32_decode(text: &[u8]) -> Result<Vec<u8>, usize> {
    let input: Vec<(usize, u8)> = text
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, b)| !matches!(b, b'\r' | b'\n'))
        .collect();
    let mut out = Vec::with_capacity(input.len() * 5 / 8);
    let blocks = input.chunks(8);
    let block_count = blocks.len();
    for (block_index, block) in blocks.enumerate() {
        if block.len() < 8 {
            return Err(block.first().map_or(text.len(), |(offset, _)| *offset));
        }
        let data_len = block.iter().take_while(|(_, b)| *b != b'=').count();
        let padding_ok = block[data_len..].iter().all(|(_, b)| *b == b'=');
        let is_last = block_index + 1 == block_count;
        if !padding_ok || (data_len < 8 && !is_last) || !matches!(data_len, 2 | 4 | 5 | 7 | 8) {
            let offset = block
                .get(data_len)
                .map_or(text.len(), |(offset, _)| *offset);
            return Err(offset);
        }
        let mut bits = 0u64;
        for (i, (offset, symbol)) in block.iter().enumerate() {
            let value = if i < data_len {
                BASE32_ALPHABET
                    .iter()
                    .position(|a| a == symbol)
                    .ok_or(*offset)? as u64
            } else {
                0
            };
            bits = (bits << 5) | value;
        }
        let produced = data_len * 5 / 8;
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[3..3 + produced]);
    }
    Ok(out)
}

/// How `toJson`, `toPrettyJson` and `toRawJson` lay out JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonStyle {
    /// `json.Marshal`: compact, with `<`, `>` and `&` escaped.
    Compact,
    /// `json.MarshalIndent(v, "", "  ")`.
    Pretty,
    /// Compact without HTML escaping.
    Raw,
}

/// Go's `encoding/json` encoding; fails on NaN and infinities as Go does.
fn encode_json(value: &Value, out: &mut Vec<u8>, style: JsonStyle, depth: usize) -> Result<(), ()> {
    if depth > MAX_VALUE_DEPTH {
        return Err(());
    }
    let newline = |out: &mut Vec<u8>, level: usize| {
        if style == JsonStyle::Pretty {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', level * 2));
        }
    };
    match value {
        Value::Missing | Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(json_float(*f)?.as_bytes()),
        Value::Str(s) => encode_json_string(s, out, style != JsonStyle::Raw),
        Value::List(list) => {
            out.push(b'[');
            for (i, item) in list.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, depth + 1);
                encode_json(item, out, style, depth + 1)?;
            }
            if !list.items.is_empty() {
                newline(out, depth);
            }
            out.push(b']');
        }
        Value::Map(map) => {
            let entries = Value::map_entries(map);
            out.push(b'{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, depth + 1);
                encode_json_string(key, out, style != JsonStyle::Raw);
                out.push(b':');
                if style == JsonStyle::Pretty {
                    out.push(b' ');
                }
                encode_json(item, out, style, depth + 1)?;
            }
            if !entries.is_empty() {
                newline(out, depth);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn json_float(f: f64) -> Result<String, ()> {
    if !f.is_finite() {
        return Err(());
    }
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let (digits, exponent) = float_digits(f);
        let sign = if f < 0.0 { "-" } else { "" };
        let mantissa = match digits.split_at_checked(1) {
            Some((head, tail)) if !tail.is_empty() => format!("{head}.{tail}"),
            _ => digits.clone(),
        };
        let exponent = if exponent < 0 {
            format!("e-{}", exponent.unsigned_abs())
        } else {
            go_exponent(exponent)
        };
        return Ok(format!("{sign}{mantissa}{exponent}"));
    }
    Ok(format!("{f}"))
}

/// A JSON string as Go writes it: invalid UTF-8 becomes U+FFFD.
fn encode_json_string(s: &[u8], out: &mut Vec<u8>, escape_html: bool) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '<' | '>' | '&' if escape_html => {
                    let _ = write!(VecWriter(out), "\\u{:04x}", c as u32);
                }
                '\u{2028}' | '\u{2029}' => {
                    let _ = write!(VecWriter(out), "\\u{:04x}", c as u32);
                }
                _ if (c as u32) < 0x20 => {
                    let _ = write!(VecWriter(out), "\\u{:04x}", c as u32);
                }
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-P@ss";

    fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    fn sample() -> BTreeMap<String, Vec<u8>> {
        data(&[
            ("username", b"admin"),
            ("password", SECRET.as_bytes()),
            ("user", b"alice"),
            ("pass", b"wonder land"),
            ("token", b"a\"b<c>&d"),
            ("cert", b"-----BEGIN-----\nAAAA\n-----END-----"),
            ("empty", b""),
            ("num", b"42"),
            ("json", br#"{"a":[1,2.5,"x"],"b":{"c":true}}"#),
        ])
    }

    /// Renders against `sample()` and returns the output as text.
    fn ok(template: &str) -> String {
        match render("key", template, &sample()) {
            Ok(out) => String::from_utf8_lossy(&out).into_owned(),
            Err(error) => panic!("{template:?} failed: {error}"),
        }
    }

    /// Renders against `sample()` and returns the error text.
    fn err(template: &str) -> String {
        match render("key", template, &sample()) {
            Ok(out) => panic!("{template:?} rendered {:?}", String::from_utf8_lossy(&out)),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn plain_text_and_fields() {
        assert_eq!(ok("hello"), "hello");
        assert_eq!(ok(""), "");
        assert_eq!(
            ok("{{ .username }}:{{ .password }}"),
            format!("admin:{SECRET}")
        );
        assert_eq!(ok("{{.username}}"), "admin");
        assert_eq!(ok("a{{/* comment */}}b"), "ab");
        assert_eq!(ok("a {{- /* comment */ -}} b"), "ab");
    }

    #[test]
    fn missing_key_prints_no_value_like_go() {
        assert_eq!(ok("[{{ .nope }}]"), "[<no value>]");
        assert_eq!(ok("[{{ index . \"nope\" }}]"), "[]");
        assert_eq!(ok("{{ .nope | default \"d\" }}"), "d");
        assert_eq!(ok("{{ if .nope }}y{{ else }}n{{ end }}"), "n");
        assert_eq!(ok("{{ .nope.deeper }}"), "<no value>");
    }

    #[test]
    fn trim_markers() {
        assert_eq!(ok("a  {{- .user -}}  b"), "aaliceb");
        assert_eq!(ok("a \n\t{{- .user }} b"), "aalice b");
        assert_eq!(ok("a {{ .user -}}\n\n b"), "a aliceb");
        assert_eq!(ok("{{-3}}"), "-3");
        assert_eq!(ok("x\n{{- if true }}\n  y\n{{- end }}\n"), "x\n  y\n");
    }

    #[test]
    fn pipelines_pass_the_value_last() {
        assert_eq!(ok("{{ .user | upper }}"), "ALICE");
        assert_eq!(ok("{{ .user | replace \"a\" \"4\" }}"), "4lice");
        assert_eq!(ok("{{ .user | printf \"%s!\" }}"), "alice!");
        assert_eq!(ok("{{ .user | upper | quote }}"), "\"ALICE\"");
        assert_eq!(ok("{{ \"x\" | printf \"%s-%s\" .user }}"), "alice-x");
        assert_eq!(
            ok("{{ printf \"%s:%s\" .user .pass | b64enc }}"),
            "YWxpY2U6d29uZGVyIGxhbmQ="
        );
    }

    #[test]
    fn parenthesised_calls_and_chains() {
        assert_eq!(
            ok("{{ upper (printf \"%s-%s\" .user .username) }}"),
            "ALICE-ADMIN"
        );
        assert_eq!(ok("{{ (dict \"a\" \"b\").a }}"), "b");
        assert_eq!(
            ok("{{ $d := dict \"x\" (dict \"y\" \"z\") }}{{ $d.x.y }}"),
            "z"
        );
        assert_eq!(ok("{{ len (list 1 2 3) }}"), "3");
    }

    #[test]
    fn conditionals() {
        assert_eq!(ok("{{ if .user }}yes{{ end }}"), "yes");
        assert_eq!(ok("{{ if .empty }}yes{{ else }}no{{ end }}"), "no");
        let chain =
            "{{ if eq .user \"bob\" }}b{{ else if eq .user \"alice\" }}a{{ else }}x{{ end }}";
        assert_eq!(ok(chain), "a");
        assert_eq!(ok("{{ if and .user .empty }}y{{ else }}n{{ end }}"), "n");
        assert_eq!(ok("{{ if or .empty .user }}y{{ end }}"), "y");
        assert_eq!(ok("{{ or .empty \"fallback\" }}"), "fallback");
        assert_eq!(ok("{{ and .user .username }}"), "admin");
        assert_eq!(ok("{{ if not .empty }}y{{ end }}"), "y");
        assert_eq!(ok("{{ with .user }}<{{ . }}>{{ end }}"), "<alice>");
        assert_eq!(ok("{{ with .empty }}x{{ else }}none{{ end }}"), "none");
        assert_eq!(
            ok("{{ with .empty }}x{{ else with .user }}{{ . }}{{ end }}"),
            "alice"
        );
    }

    #[test]
    fn and_or_short_circuit() {
        assert_eq!(ok("{{ and false (fail \"boom\") }}"), "false");
        assert_eq!(ok("{{ or true (fail \"boom\") }}"), "true");
    }

    #[test]
    fn variables() {
        assert_eq!(ok("{{ $x := .user }}{{ $x }}"), "alice");
        assert_eq!(ok("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
        assert_eq!(ok("{{ $.user }}"), "alice");
        assert_eq!(ok("{{ with .user }}{{ $.username }}{{ end }}"), "admin");
        assert_eq!(
            ok("{{ $x := \"out\" }}{{ if true }}{{ $x := \"in\" }}{{ $x }}{{ end }}{{ $x }}"),
            "inout"
        );
        assert_eq!(
            ok("{{ $x := \"a\" }}{{ range list 1 2 }}{{ $x = \"b\" }}{{ end }}{{ $x }}"),
            "b"
        );
    }

    #[test]
    fn range_over_lists_maps_and_numbers() {
        assert_eq!(
            ok("{{ range list \"a\" \"b\" }}[{{ . }}]{{ end }}"),
            "[a][b]"
        );
        assert_eq!(
            ok("{{ range $i, $e := list \"a\" \"b\" }}{{ $i }}={{ $e }} {{ end }}"),
            "0=a 1=b "
        );
        assert_eq!(
            ok("{{ range $e := list \"a\" \"b\" }}{{ $e }}{{ end }}"),
            "ab"
        );
        assert_eq!(
            ok("{{ range $k, $v := dict \"b\" 2 \"a\" 1 }}{{ $k }}={{ $v }};{{ end }}"),
            "a=1;b=2;"
        );
        assert_eq!(
            ok("{{ range $k, $v := . }}{{ if eq $k \"user\" }}{{ $v }}{{ end }}{{ end }}"),
            "alice"
        );
        assert_eq!(ok("{{ range list }}x{{ else }}empty{{ end }}"), "empty");
        assert_eq!(ok("{{ range .nope }}x{{ else }}none{{ end }}"), "none");
        assert_eq!(ok("{{ range 3 }}{{ . }}{{ end }}"), "012");
        assert_eq!(
            ok(
                "{{ range list 1 2 3 4 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}"
            ),
            "13"
        );
        assert_eq!(
            ok("{{ range splitList \",\" \"a,b\" }}{{ . }};{{ end }}"),
            "a;b;"
        );
    }

    #[test]
    fn define_template_and_block() {
        assert_eq!(
            ok("{{ define \"t\" }}<{{ . }}>{{ end }}{{ template \"t\" .user }}"),
            "<alice>"
        );
        assert_eq!(ok("{{ block \"b\" .user }}[{{ . }}]{{ end }}"), "[alice]");
        assert_eq!(
            ok("{{ define \"key\" }}from define{{ end }}"),
            "from define"
        );
        assert!(err("{{ template \"nope\" }}").contains("template \"nope\" not defined"));
    }

    #[test]
    fn literals() {
        assert_eq!(ok(r#"{{ "a\tb\n\x41\u00e9\101" }}"#), "a\tb\nAé\u{41}");
        assert_eq!(ok("{{ `raw \\n` }}"), "raw \\n");
        assert_eq!(ok("{{ 'a' }}"), "97");
        assert_eq!(
            ok("{{ 0x1F }} {{ 1_000 }} {{ 010 }} {{ -5 }} {{ 1.5 }} {{ 1e3 }}"),
            "31 1000 8 -5 1.5 1000"
        );
        assert_eq!(ok("{{ true }} {{ false }}"), "true false");
        assert_eq!(ok("{{ print nil }}"), "<nil>");
    }

    #[test]
    fn builtin_functions() {
        assert_eq!(
            ok("{{ len .user }} {{ len (list 1 2) }} {{ len (dict \"a\" 1) }}"),
            "5 2 1"
        );
        assert_eq!(ok("{{ index . \"user\" }}"), "alice");
        assert_eq!(ok("{{ index (list \"a\" \"b\") 1 }}"), "b");
        assert_eq!(ok("{{ index (dict \"a\" (list 1 2)) \"a\" 0 }}"), "1");
        assert_eq!(ok("{{ index .user 0 }}"), "97");
        assert_eq!(
            ok("{{ slice .user 1 3 }} {{ slice (list 1 2 3) 1 }}"),
            "li [2 3]"
        );
        assert_eq!(ok("{{ print \"a\" 1 2 \"b\" }}"), "a1 2b");
        assert_eq!(ok("{{ println \"a\" 1 }}"), "a 1\n");
        assert_eq!(
            ok("{{ eq 1 2 1 }} {{ eq .user \"alice\" }} {{ ne 1 2 }}"),
            "true true true"
        );
        assert_eq!(
            ok("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }}"),
            "true true true false"
        );
        assert_eq!(ok("{{ html .token }}"), "a&#34;b&lt;c&gt;&amp;d");
        assert_eq!(ok("{{ js .token }}"), "a\\\"b\\u003Cc\\u003E\\u0026d");
        assert_eq!(ok("{{ urlquery .pass \"&=\" }}"), "wonder+land%26%3D");
        assert_eq!(ok("{{ not 0 }}"), "true");
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(
            ok("{{ printf \"%s|%d|%v|%q|%x|%%\" .user 42 true .user .user }}"),
            "alice|42|true|\"alice\"|616c696365|%"
        );
        assert_eq!(
            ok("{{ printf \"%5s|%-5s|%05d|%x|%X|%o|%b\" \"a\" \"b\" 42 255 255 8 5 }}"),
            "    a|b    |00042|ff|FF|10|101"
        );
        assert_eq!(
            ok("{{ printf \"%.2f|%e|%g|%v\" 3.14159 1234.5 0.5 1e6 }}"),
            "3.14|1.234500e+03|0.5|1e+06"
        );
        assert_eq!(ok("{{ printf \"%d\" \"x\" }}"), "%!d(string=x)");
        assert_eq!(ok("{{ printf \"%s %s\" \"x\" }}"), "x %!s(MISSING)");
        assert_eq!(ok("{{ printf \"%s\" \"x\" \"y\" }}"), "x%!(EXTRA string=y)");
        assert_eq!(ok("{{ printf \"%v\" (list 1 \"a\") }}"), "[1 a]");
        assert_eq!(ok("{{ printf \"%v\" (dict \"k\" \"v\") }}"), "map[k:v]");
        assert_eq!(
            ok("{{ printf \"%.3s|%c|%U\" \"abcdef\" 65 65 }}"),
            "abc|A|U+0041"
        );
        assert_eq!(ok("{{ printf \"%s\" .nope }}"), "%!s(<nil>)");
    }

    #[test]
    fn sprig_string_functions() {
        assert_eq!(ok("{{ toString 42 }} {{ toString .user }}"), "42 alice");
        assert_eq!(
            ok("{{ quote .user \"b\\\"c\" }} {{ squote .user }}"),
            "\"alice\" \"b\\\"c\" 'alice'"
        );
        assert_eq!(ok("[{{ trim \"  x y \\n\" }}]"), "[x y]");
        assert_eq!(ok("{{ trimAll \"$\" \"$$5.00$\" }}"), "5.00");
        assert_eq!(
            ok("{{ trimPrefix \"al\" .user }} {{ trimSuffix \"ce\" .user }}"),
            "ice ali"
        );
        assert_eq!(
            ok("{{ upper \"héllo\" }} {{ lower \"HÉLLO\" }} {{ title \"hello wide-world\" }}"),
            "HÉLLO héllo Hello Wide-World"
        );
        assert_eq!(ok("{{ replace \" \" \"-\" .pass }}"), "wonder-land");
        assert_eq!(ok("{{ repeat 3 \"ab\" }}"), "ababab");
        assert_eq!(
            ok("{{ substr 1 3 .user }} {{ substr 2 99 .user }} {{ substr -1 2 .user }}"),
            "li ice al"
        );
        assert_eq!(
            ok("{{ trunc 3 .user }} {{ trunc -2 .user }} {{ trunc 99 .user }}"),
            "ali ce alice"
        );
        assert_eq!(
            ok(
                "{{ contains \"lic\" .user }} {{ hasPrefix \"al\" .user }} {{ hasSuffix \"x\" .user }}"
            ),
            "true true false"
        );
        assert_eq!(ok("{{ cat \"a\" 1 nil \"b\" }}"), "a 1 b");
        assert_eq!(ok("{{ indent 2 \"a\\nb\" }}"), "  a\n  b");
        assert_eq!(ok("{{ nindent 2 \"a\" }}"), "\n  a");
        assert_eq!(ok("{{ nospace \" a b\\tc \" }}"), "abc");
    }

    #[test]
    fn sprig_defaults_and_flow() {
        assert_eq!(
            ok("{{ default \"d\" .empty }} {{ default \"d\" .user }} {{ .empty | default \"p\" }}"),
            "d alice p"
        );
        assert_eq!(
            ok("{{ default 5 0 }} {{ default \"x\" false }} {{ default \"y\" (list) }}"),
            "5 x y"
        );
        assert_eq!(
            ok("{{ empty .empty }} {{ empty .user }} {{ empty 0 }} {{ empty (dict) }}"),
            "true false true true"
        );
        assert_eq!(ok("{{ coalesce .empty .nope .user }}"), "alice");
        assert_eq!(
            ok("{{ ternary \"y\" \"n\" true }} {{ true | ternary \"y\" \"n\" }}"),
            "y y"
        );
        assert_eq!(ok("{{ required \"need user\" .user }}"), "alice");
        assert_eq!(
            err("{{ required \"need it\" .empty }}"),
            "template: key:1:3: executing \"key\" at <required \"need it\" ....>: error calling required: need it"
        );
        assert!(err("{{ fail \"stop here\" }}").ends_with("error calling fail: stop here"));
    }

    #[test]
    fn sprig_lists_and_dicts() {
        assert_eq!(ok("{{ join \",\" (list \"a\" 1 nil \"b\") }}"), "a,1,b");
        assert_eq!(
            ok("{{ $s := split \",\" \"a,b\" }}{{ $s._0 }}{{ $s._1 }}"),
            "ab"
        );
        assert_eq!(ok("{{ splitList \",\" \"a,,b\" | len }}"), "3");
        assert_eq!(ok("{{ list 1 \"a\" (list 2) }}"), "[1 a [2]]");
        assert_eq!(
            ok("{{ first (list 1 2) }} {{ last (list 1 2) }} {{ append (list 1) 2 }}"),
            "1 2 [1 2]"
        );
        assert_eq!(
            ok("{{ has 2 (list 1 2) }} {{ has \"x\" (list 1 2) }}"),
            "true false"
        );
        assert_eq!(
            ok("{{ sortAlpha (list \"b\" \"a\" \"c\") }} {{ toStrings (list 1 2) }}"),
            "[a b c] [1 2]"
        );
        assert_eq!(
            ok("{{ $d := dict \"a\" 1 \"b\" }}{{ $d.a }}[{{ $d.b }}]"),
            "1[]"
        );
        assert_eq!(
            ok("{{ $d := dict \"a\" 1 }}{{ get $d \"a\" }}[{{ get $d \"z\" }}]"),
            "1[]"
        );
        assert_eq!(
            ok("{{ $d := dict }}{{ $_ := set $d \"k\" \"v\" }}{{ $d.k }} {{ hasKey $d \"k\" }}"),
            "v true"
        );
        assert_eq!(
            ok("{{ $d := dict \"k\" 1 }}{{ $_ := unset $d \"k\" }}{{ hasKey $d \"k\" }}"),
            "false"
        );
        assert_eq!(
            ok("{{ keys (dict \"b\" 1 \"a\" 2) }} {{ values (dict \"b\" 1 \"a\" 2) }}"),
            "[a b] [2 1]"
        );
        assert_eq!(ok("{{ dict \"a\" 1 \"b\" (list 1) }}"), "map[a:1 b:[1]]");
        assert!(
            err("{{ $d := dict }}{{ set $d \"self\" $d }}").contains("a map can't contain itself")
        );
        assert!(
            err("{{ keys . }}").contains("expected map[string]interface {}; got map[string]string")
        );
    }

    #[test]
    fn sprig_json() {
        assert_eq!(
            ok("{\"auth\": {{ toJson .token }}}"),
            r#"{"auth": "a\"b\u003cc\u003e\u0026d"}"#
        );
        assert_eq!(ok("{{ toRawJson .token }}"), r#""a\"b<c>&d""#);
        assert_eq!(
            ok("{{ toJson (dict \"b\" (list 1 2.5 true nil) \"a\" \"x\") }}"),
            r#"{"a":"x","b":[1,2.5,true,null]}"#
        );
        assert_eq!(
            ok("{{ toPrettyJson (dict \"a\" (list 1) \"b\" (dict)) }}"),
            "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}"
        );
        assert_eq!(
            ok("{{ toJson \"\\n\\u2028\\x01\" }}"),
            r#""\n\u2028\u0001""#
        );
        assert_eq!(
            ok("{{ $j := fromJson .json }}{{ $j.b.c }} {{ index $j.a 1 }} {{ toJson $j }}"),
            r#"true 2.5 {"a":[1,2.5,"x"],"b":{"c":true}}"#
        );
        assert_eq!(
            ok("{{ toJson 1e21 }} {{ toJson 0.000001 }} {{ toJson 1e-7 }}"),
            "1e+21 0.000001 1e-7"
        );
    }

    #[test]
    fn dockerconfigjson() {
        let template = r#"{{ $auth := printf "%s:%s" .user .pass | b64enc }}{{ dict "auths" (dict "registry.example.com" (dict "username" .user "password" .pass "auth" $auth)) | toJson }}"#;
        assert_eq!(
            ok(template),
            r#"{"auths":{"registry.example.com":{"auth":"YWxpY2U6d29uZGVyIGxhbmQ=","password":"wonder land","username":"alice"}}}"#
        );
    }

    #[test]
    fn certificate_with_nindent() {
        assert_eq!(
            ok("tls:\n  cert: |{{ .cert | nindent 4 }}"),
            "tls:\n  cert: |\n    -----BEGIN-----\n    AAAA\n    -----END-----"
        );
    }

    #[test]
    fn sprig_encodings_and_digests() {
        assert_eq!(
            ok("{{ b64enc .user }} {{ b64dec \"YWxpY2U=\" }}"),
            "YWxpY2U= alice"
        );
        assert_eq!(
            ok("{{ b64dec \"!!\" }}"),
            "illegal base64 data at input byte 0"
        );
        assert_eq!(
            ok("{{ b32enc \"alice\" }} {{ b32enc \"a\" }} {{ b32dec \"ME======\" }}"),
            "MFWGSY3F ME====== a"
        );
        assert_eq!(ok("{{ b32dec (b32enc \"hello world\") }}"), "hello world");
        assert_eq!(
            ok("{{ sha1sum \"abc\" }}"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            ok("{{ sha256sum \"abc\" }}"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ok("{{ adler32sum \"Wikipedia\" }}"), "300286872");
        assert_eq!(ok("{{ sha512sum \"\" | trunc 16 }}"), "cf83e1357eefb8bd");
    }

    #[test]
    fn sprig_numbers() {
        assert_eq!(
            ok(
                "{{ atoi .num }} {{ atoi \"x\" }} {{ int \"12\" }} {{ int64 3.9 }} {{ float64 \"1.5\" }}"
            ),
            "42 0 12 3 1.5"
        );
        assert_eq!(
            ok(
                "{{ add 1 2 3 }} {{ add1 .num }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }}"
            ),
            "6 43 -2 24 3 1"
        );
        assert_eq!(ok("{{ max 1 5 3 }} {{ min 4 -1 }}"), "5 -1");
        assert!(
            err("{{ div 1 0 }}")
                .ends_with("error calling div: runtime error: integer divide by zero")
        );
    }

    #[test]
    fn binary_values_pass_through() {
        let binary: Vec<u8> = (0..=255u8).collect();
        let values = data(&[("bin", &binary)]);
        assert_eq!(
            render("bin", "{{ .bin }}", &values).ok(),
            Some(binary.clone())
        );
        let mut expected = b"<".to_vec();
        expected.extend_from_slice(&binary);
        expected.push(b'>');
        assert_eq!(
            render("bin", "<{{ index . \"bin\" }}>", &values).ok(),
            Some(expected)
        );
        let encoded = render("bin", "{{ .bin | b64enc }}", &values).unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_default();
        assert_eq!(decoded, binary);
        let invalid = data(&[("bin", b"\xff\xfe")]);
        assert_eq!(
            render("bin", "{{ toJson .bin }}", &invalid).ok(),
            Some(br#""\ufffd\ufffd""#.to_vec())
        );
        assert_eq!(
            render("bin", "{{ printf \"%q\" .bin }}", &invalid).ok(),
            Some(br#""\xff\xfe""#.to_vec())
        );
    }

    #[test]
    fn environment_functions_are_not_defined() {
        assert_eq!(
            err("{{ env \"HOME\" }}"),
            "template: key:1: function \"env\" not defined"
        );
        assert_eq!(
            err("x\n{{ expandenv \"$HOME\" }}"),
            "template: key:2: function \"expandenv\" not defined"
        );
        assert_eq!(
            err("{{ getHostByName \"example.com\" }}"),
            "template: key:1: function \"getHostByName\" not defined"
        );
        // A parse error is reported even when the action would never run.
        assert!(
            err("{{ if false }}{{ env \"X\" }}{{ end }}").contains("function \"env\" not defined")
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(err("{{ .user "), "template: key:1: unclosed action");
        assert_eq!(err("{{ if .user }}x"), "template: key:1: unexpected EOF");
        assert_eq!(err("{{ end }}"), "template: key:1: unexpected {{end}}");
        assert_eq!(err("{{ else }}"), "template: key:1: unexpected {{else}}");
        assert_eq!(err("{{ }}"), "template: key:1: missing value for command");
        assert_eq!(
            err("{{ $x }}"),
            "template: key:1: undefined variable \"$x\""
        );
        assert_eq!(
            err("{{ \"abc }}"),
            "template: key:1: unterminated quoted string"
        );
        assert_eq!(err("{{ (1 }}"), "template: key:1: unclosed left paren");
        assert_eq!(
            err("{{ 1) }}"),
            "template: key:1: unexpected right paren U+0029 ')'"
        );
        assert_eq!(
            err("{{ break }}"),
            "template: key:1: {{break}} outside {{range}}"
        );
        assert_eq!(
            err("{{ .a | 3 }}"),
            "template: key:1: non executable command in pipeline stage 2"
        );
        assert_eq!(err("{{/* x "), "template: key:1: unclosed comment");
        assert_eq!(
            err("{{ 3x }}"),
            "template: key:1: bad number syntax: \"3x\""
        );
        assert_eq!(
            err("{{ \"a\".b }}"),
            "template: key:1: unexpected . after term \"\\\"a\\\"\""
        );
        assert_eq!(
            err("{{ range $a, $b, $c := . }}{{ end }}"),
            "template: key:1: too many declarations in range"
        );
    }

    #[test]
    fn execution_errors() {
        assert_eq!(
            err("{{ upper 1 2 }}"),
            "template: key:1:3: executing \"key\" at <upper 1 2>: wrong number of args for upper: want 1 got 2"
        );
        assert_eq!(
            err("line1\n  {{ .user.name }}"),
            "template: key:2:10: executing \"key\" at <.user.name>: can't evaluate field name in type string"
        );
        assert_eq!(
            err("{{ upper 3 }}"),
            "template: key:1:9: executing \"key\" at <3>: wrong type for value; expected string; got int"
        );
        assert_eq!(
            err("{{ .nope | upper }}"),
            "template: key:1:11: executing \"key\" at <upper>: invalid value; expected string"
        );
        assert!(err("{{ .user 1 }}").contains("user is not a method but has arguments"));
        assert!(err("{{ nil }}").contains("nil is not a command"));
        assert!(
            err("{{ eq 1 \"a\" }}").contains("error calling eq: incompatible types for comparison")
        );
        assert!(err("{{ index (list 1) 5 }}").contains("error calling index: index out of range"));
        assert!(
            err("{{ range true }}{{ end }}")
                .contains("range can't iterate over value of type bool")
        );
        assert!(err("{{ repeat -1 \"x\" }}").contains("negative Repeat count"));
        assert!(err("{{ 99999999999999999999 }}").contains("overflows int"));
    }

    #[test]
    fn errors_never_contain_values() {
        let templates = [
            "{{ fail .password }}",
            "{{ fail (printf \"bad %s\" .password) }}",
            "{{ required .password .empty }}",
            "{{ .empty | required (.password) }}",
            "{{ .password.field }}",
            "{{ index .password 99 }}",
            "{{ range .password }}{{ end }}",
            "{{ upper .password 1 }}",
            "{{ eq .password 1 }}",
            "{{ substr 0 99 .password | repeat -1 }}",
            "{{ div (len .password) 0 }}",
            "{{ template \"x\" .password }}",
            "{{ $x := .password }}{{ $x.y }}",
            "{{ lt .password (list) }}",
            "{{ env .password }}",
            "{{ .password | b64enc | b64dec | atoi | upper }}",
        ];
        for template in templates {
            let message = err(template);
            assert!(!message.contains(SECRET), "{template}: {message}");
            assert!(!message.contains("s3cr3t"), "{template}: {message}");
        }
        assert!(err("{{ fail .password }}").contains("withheld"));
    }

    #[test]
    fn malformed_templates_never_panic() {
        let fragments = [
            "{{", "}}", "{{-", "-}}", "(", ")", "|", "$", "$x", ":=", "=", ",", ".", "..", "\"",
            "`", "'", "/*", "*/", "if", "else", "end", "range", "with", "define", "template",
            "block", "break", "continue", "nil", "true", "1", "-", "+", "0x", "1e", "'\\", "\\",
            "printf", "index", "dict", "set", "\n", " ", "é", "\u{0}", "{{/*", "*/}}", ".a.b",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..4000 {
            let mut template = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                template.push_str(fragments[(seed % fragments.len() as u64) as usize]);
                if seed.is_multiple_of(3) {
                    template.push(' ');
                }
            }
            let _ = render("fuzz", &template, &sample());
        }
    }

    #[test]
    fn runaway_templates_are_stopped() {
        let deep = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(err(&format!("{{{{ {deep} }}}}")).contains("max expression depth exceeded"));
        let recursive = "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}";
        assert!(err(recursive).contains("maximum template depth"));
        assert!(err("{{ range 100000000 }}{{ end }}").contains("operations"));
        assert!(err("{{ repeat 100000000 \"0123456789\" }}").contains("larger than"));
        let doubling = "{{ $s := \"xxxxxxxxxxxxxxxx\" }}{{ range 40 }}{{ $s = printf \"%s%s\" $s $s }}{{ end }}";
        assert!(err(doubling).contains("larger than"));
        let nested = "{{ $d := dict }}{{ range 300 }}{{ $d = dict \"x\" $d }}{{ end }}{{ toJson $d | len }} {{ $d | len }}";
        assert_eq!(ok(nested), "0 1");
    }

    #[test]
    fn misc_semantics() {
        assert_eq!(
            ok("{{ eq .nope \"x\" }} {{ \"a\" | eq \"a\" }} {{ .user | len }}"),
            "false true 5"
        );
        assert_eq!(ok("{{ .user | default \"x\" | upper }}"), "ALICE");
        assert_eq!(
            ok("{{ $d := dict \"n\" nil }}{{ $d.n }} {{ index $d \"zz\" }}"),
            "<nil> <nil>"
        );
        assert_eq!(ok("{{ . | len }}"), sample().len().to_string());
        assert!(
            err("{{ range . }}{{ else if true }}{{ end }}").contains("unexpected <if> in input")
        );
        assert!(
            err("{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}")
                .contains("unexpected <define>")
        );
        assert!(err("{{ $x := 1 }}{{ $x.y }}").contains("can't evaluate field y in type int"));
        assert!(err("{{ \"x\" 1 }}").contains("can't give argument to non-function \"x\""));
    }

    #[test]
    fn supported_functions_all_resolve() {
        for name in SUPPORTED_FUNCTIONS {
            assert!(lookup_function(name).is_some(), "{name}");
        }
        for name in ["env", "expandenv", "getHostByName", "call", "nope"] {
            assert!(lookup_function(name).is_none(), "{name}");
            assert!(!SUPPORTED_FUNCTIONS.contains(&name));
        }
    }

    #[test]
    fn float_formatting_matches_go() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-10, "-2.5e-10"),
            (1e21, "1e+21"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_float_shortest(value), expected);
        }
    }
}
