//! The Sprig functions: strings, defaults and flow, lists, dictionaries, encodings and
//! digests, and numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use zeroize::Zeroizing;

use base64::Engine as _;

use crate::encoding::{JsonStyle, adler32, base32_decode, base32_encode, encode_json, hex};
use crate::helpers::{bad_args, check_size, ok_str, too_large};
use crate::json_read::{JsonError, read_json};
use crate::limits::{MAX_STRING, MAX_VALUE_DEPTH};
use crate::printf::format_default;
use crate::strconv::{NumberValue, go_quote_into, number_value};
use crate::value::{
    MapValue, SecretBytes, Value, insert_entry, lossy_chars, lossy_string, remove_entry, utf8_units,
};
use crate::wiping::WipingBuf;

// --- Sprig: strings ----------------------------------------------------------------------------

/// Sprig's `strval`: strings as they are, anything else as `fmt` prints it. (Every string the
/// functions here build is a `WipingBuf` or `SecretBytes`, so it is wiped when it grows or is
/// dropped.)
fn strval(value: &Value) -> WipingBuf {
    match value {
        Value::Str(s) => WipingBuf::from_slice(s),
        other => {
            let mut out = WipingBuf::new();
            format_default(other, &mut out, 0);
            out
        }
    }
}

pub(crate) fn sprig_to_string(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    ok_str(strval(value))
}

pub(crate) fn sprig_quote(args: &[Value]) -> Result<Value, String> {
    let mut out = WipingBuf::new();
    for (i, arg) in args.iter().filter(|arg| !arg.is_nil()).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        go_quote_into(&strval(arg), &mut out);
    }
    ok_str(out)
}

pub(crate) fn sprig_squote(args: &[Value]) -> Result<Value, String> {
    let mut out = WipingBuf::new();
    for (i, arg) in args.iter().filter(|arg| !arg.is_nil()).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'\'');
        out.extend_from_slice(&strval(arg));
        out.push(b'\'');
    }
    ok_str(out)
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

pub(crate) fn sprig_trim(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(trim_bytes(s.bytes(), char::is_whitespace))
}

pub(crate) fn sprig_trim_all(args: &[Value]) -> Result<Value, String> {
    let [cutset, s] = args else {
        return Err(bad_args());
    };
    // At most one character per byte: it never grows.
    let mut cutset_chars = Zeroizing::new(Vec::with_capacity(cutset.bytes().len()));
    cutset_chars.extend(lossy_chars(cutset.bytes()));
    cutset_chars.sort_unstable();
    cutset_chars.dedup();
    ok_str(trim_bytes(s.bytes(), |c| {
        cutset_chars.binary_search(&c).is_ok()
    }))
}

pub(crate) fn sprig_trim_prefix(args: &[Value]) -> Result<Value, String> {
    let [prefix, s] = args else {
        return Err(bad_args());
    };
    ok_str(s.bytes().strip_prefix(prefix.bytes()).unwrap_or(s.bytes()))
}

pub(crate) fn sprig_trim_suffix(args: &[Value]) -> Result<Value, String> {
    let [suffix, s] = args else {
        return Err(bad_args());
    };
    ok_str(s.bytes().strip_suffix(suffix.bytes()).unwrap_or(s.bytes()))
}

/// Maps every character through `map` when it yields exactly one character (Go's simple
/// case mapping); invalid UTF-8 becomes U+FFFD as with Go's `strings.Map`.
fn map_chars<I: Iterator<Item = char>>(s: &[u8], map: impl Fn(char) -> I) -> WipingBuf {
    let mut out = WipingBuf::with_capacity(s.len());
    for c in lossy_chars(s) {
        let mut mapped = map(c);
        let c = match (mapped.next(), mapped.next()) {
            (Some(single), None) => single,
            _ => c,
        };
        let _ = out.write_char(c);
    }
    out
}

pub(crate) fn sprig_upper(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    if s.bytes().is_ascii() {
        // A copy of exactly the same size: it never grows.
        return ok_str(s.bytes().to_ascii_uppercase());
    }
    ok_str(map_chars(s.bytes(), char::to_uppercase))
}

pub(crate) fn sprig_lower(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    if s.bytes().is_ascii() {
        // A copy of exactly the same size: it never grows.
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

pub(crate) fn sprig_title(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let mut previous = ' ';
    let mut titled = WipingBuf::with_capacity(s.bytes().len());
    for c in lossy_chars(s.bytes()) {
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
        let _ = titled.write_char(mapped);
    }
    ok_str(titled)
}

/// Go's `strings.Index`, in linear time (a naive search is quadratic in the worst case, and
/// both strings can be megabytes long).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Go's `strings.Replace(s, old, new, -1)`, appended to `out`; what it appends may be at
/// most the size of one value.
fn replace_into(out: &mut WipingBuf, s: &[u8], old: &[u8], new: &[u8]) -> Result<(), String> {
    let start = out.len();
    let push = |out: &mut WipingBuf, bytes: &[u8]| {
        check_size((out.len() - start).checked_add(bytes.len()))?;
        out.extend_from_slice(bytes);
        Ok::<(), String>(())
    };
    if old.is_empty() {
        push(out, new)?;
        for unit in utf8_units(s) {
            push(out, unit)?;
            push(out, new)?;
        }
        return Ok(());
    }
    let mut rest = s;
    while let Some(at) = find(rest, old) {
        push(out, &rest[..at])?;
        push(out, new)?;
        rest = &rest[at + old.len()..];
    }
    push(out, rest)
}

pub(crate) fn sprig_replace(args: &[Value]) -> Result<Value, String> {
    let [old, new, s] = args else {
        return Err(bad_args());
    };
    let mut out = WipingBuf::with_capacity(s.bytes().len());
    replace_into(&mut out, s.bytes(), old.bytes(), new.bytes())?;
    ok_str(out)
}

fn repeat_bytes(s: &[u8], count: i64) -> Result<WipingBuf, String> {
    let count = usize::try_from(count).map_err(|_| "strings: negative Repeat count".to_string())?;
    check_size(s.len().checked_mul(count))?;
    Ok(WipingBuf::repeated(s, count))
}

pub(crate) fn sprig_repeat(args: &[Value]) -> Result<Value, String> {
    let [count, s] = args else {
        return Err(bad_args());
    };
    ok_str(repeat_bytes(s.bytes(), count.int())?)
}

const OUT_OF_RANGE: &str = "runtime error: slice bounds out of range";

pub(crate) fn sprig_substr(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_trunc(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_contains(args: &[Value]) -> Result<Value, String> {
    let [needle, s] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(find(s.bytes(), needle.bytes()).is_some()))
}

pub(crate) fn sprig_has_prefix(args: &[Value]) -> Result<Value, String> {
    let [prefix, s] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(s.bytes().starts_with(prefix.bytes())))
}

pub(crate) fn sprig_has_suffix(args: &[Value]) -> Result<Value, String> {
    let [suffix, s] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(s.bytes().ends_with(suffix.bytes())))
}

pub(crate) fn sprig_cat(args: &[Value]) -> Result<Value, String> {
    let mut out = WipingBuf::new();
    for (i, arg) in args.iter().filter(|arg| !arg.is_nil()).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        format_default(arg, &mut out, 0);
    }
    ok_str(out)
}

/// Sprig's `indent`: `s` with `spaces` spaces before every line, appended to `out`.
fn indent_into(out: &mut WipingBuf, spaces: i64, s: &[u8]) -> Result<(), String> {
    let pad = repeat_bytes(b" ", spaces)?;
    let mut with_newline = WipingBuf::with_capacity(pad.len() + 1);
    with_newline.push(b'\n');
    with_newline.extend_from_slice(&pad);
    let lines = s.iter().filter(|&&b| b == b'\n').count() + 1;
    let size = check_size(
        lines
            .checked_mul(pad.len())
            .and_then(|p| p.checked_add(s.len())),
    )?;
    // The exact size of what follows: `out` grows once, before it holds any of `s`.
    out.reserve(size);
    out.extend_from_slice(&pad);
    replace_into(out, s, b"\n", &with_newline)
}

pub(crate) fn sprig_indent(args: &[Value]) -> Result<Value, String> {
    let [spaces, s] = args else {
        return Err(bad_args());
    };
    let mut out = WipingBuf::new();
    indent_into(&mut out, spaces.int(), s.bytes())?;
    ok_str(out)
}

pub(crate) fn sprig_nindent(args: &[Value]) -> Result<Value, String> {
    let [spaces, s] = args else {
        return Err(bad_args());
    };
    let mut out = WipingBuf::from_slice(b"\n");
    indent_into(&mut out, spaces.int(), s.bytes())?;
    ok_str(out)
}

pub(crate) fn sprig_nospace(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let mut kept = WipingBuf::with_capacity(s.bytes().len());
    for c in lossy_chars(s.bytes()).filter(|c| !c.is_whitespace()) {
        let _ = kept.write_char(c);
    }
    ok_str(kept)
}

// --- Sprig: defaults and flow ------------------------------------------------------------------

pub(crate) fn sprig_default(args: &[Value]) -> Result<Value, String> {
    let [fallback, given @ ..] = args else {
        return Err(bad_args());
    };
    match given.first() {
        Some(value) if !value.is_empty() => Ok(value.clone()),
        _ => Ok(fallback.clone()),
    }
}

pub(crate) fn sprig_empty(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(value.is_empty()))
}

pub(crate) fn sprig_coalesce(args: &[Value]) -> Result<Value, String> {
    Ok(args
        .iter()
        .find(|arg| !arg.is_empty())
        .cloned()
        .unwrap_or(Value::Nil))
}

pub(crate) fn sprig_ternary(args: &[Value]) -> Result<Value, String> {
    let [if_true, if_false, condition] = args else {
        return Err(bad_args());
    };
    Ok(if condition.is_true() {
        if_true.clone()
    } else {
        if_false.clone()
    })
}

pub(crate) fn sprig_required(args: &[Value]) -> Result<Value, String> {
    let [message, value] = args else {
        return Err(bad_args());
    };
    let absent = match value {
        Value::Missing | Value::Nil => true,
        Value::Str(s) => s.is_empty(),
        _ => false,
    };
    if absent {
        return Err(user_message(message));
    }
    Ok(value.clone())
}

pub(crate) fn sprig_fail(args: &[Value]) -> Result<Value, String> {
    let [message] = args else {
        return Err(bad_args());
    };
    Err(user_message(message))
}

/// The message of `fail` or `required` (the executor wipes it when it withholds it).
fn user_message(message: &Value) -> String {
    std::mem::take(&mut *lossy_string(message.bytes()))
}

// --- Sprig: lists ------------------------------------------------------------------------------

/// Sprig's `strslice`: the elements of a list as strings (nils dropped), or the value itself.
fn strslice(value: &Value) -> Vec<SecretBytes> {
    match value {
        Value::List(list) => list
            .items
            .iter()
            .filter(|item| !item.is_nil())
            .map(|item| SecretBytes::from(strval(item)))
            .collect(),
        Value::Missing | Value::Nil => Vec::new(),
        other => vec![SecretBytes::from(strval(other))],
    }
}

fn string_list(items: Vec<SecretBytes>) -> Value {
    Value::list(items.into_iter().map(Value::str).collect())
}

pub(crate) fn sprig_join(args: &[Value]) -> Result<Value, String> {
    let [separator, list] = args else {
        return Err(bad_args());
    };
    let parts = strslice(list);
    // The separator is repeated once per element: check before joining.
    let separators = separator
        .bytes()
        .len()
        .checked_mul(parts.len().saturating_sub(1));
    let total = parts
        .iter()
        .try_fold(0usize, |sum, part| sum.checked_add(part.len()));
    let size = check_size(separators.zip(total).and_then(|(a, b)| a.checked_add(b)))?;
    // The exact size: it never grows.
    let mut out = WipingBuf::with_capacity(size);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(separator.bytes());
        }
        out.extend_from_slice(part);
    }
    ok_str(out)
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

pub(crate) fn sprig_split(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_split_list(args: &[Value]) -> Result<Value, String> {
    let [separator, s] = args else {
        return Err(bad_args());
    };
    let parts = split_bytes(s.bytes(), separator.bytes());
    Ok(Value::list(parts.into_iter().map(Value::str).collect()))
}

pub(crate) fn sprig_to_strings(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(string_list(strslice(value)))
}

pub(crate) fn sprig_sort_alpha(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    let mut items = match value {
        Value::List(_) => strslice(value),
        other => vec![SecretBytes::from(strval(other))],
    };
    // Sorting moves the strings' handles, never their bytes.
    items.sort();
    Ok(string_list(items))
}

pub(crate) fn sprig_list(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_first(args: &[Value]) -> Result<Value, String> {
    let [list] = args else { return Err(bad_args()) };
    let items = list_items(list, "find first")?;
    Ok(items.first().cloned().unwrap_or(Value::Nil))
}

pub(crate) fn sprig_last(args: &[Value]) -> Result<Value, String> {
    let [list] = args else { return Err(bad_args()) };
    let items = list_items(list, "find last")?;
    Ok(items.last().cloned().unwrap_or(Value::Nil))
}

pub(crate) fn sprig_append(args: &[Value]) -> Result<Value, String> {
    let [list, value] = args else {
        return Err(bad_args());
    };
    let mut items = list_items(list, "push")?.to_vec();
    items.push(value.clone());
    Ok(Value::list(items))
}

pub(crate) fn sprig_has(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_dict(args: &[Value]) -> Result<Value, String> {
    let mut entries = BTreeMap::new();
    for pair in args.chunks(2) {
        // Map keys are wiped when the map is dropped.
        let key = pair
            .first()
            .map(|key| std::mem::take(&mut *strval(key).into_zeroizing()))
            .unwrap_or_default();
        let value = pair.get(1).cloned().unwrap_or_else(|| Value::str(""));
        insert_entry(&mut entries, key, value);
    }
    Ok(Value::map(entries))
}

fn map_of(value: &Value) -> Result<&Rc<MapValue>, String> {
    match value {
        Value::Map(map) => Ok(map),
        _ => Err(bad_args()),
    }
}

/// The entries of a map argument, for reading (`get`, `hasKey`).
fn entries_of(value: &Value) -> Result<std::cell::Ref<'_, BTreeMap<Vec<u8>, Value>>, String> {
    map_of(value)?
        .entries
        .try_borrow()
        .map_err(|_| "map is being modified".to_string())
}

pub(crate) fn sprig_get(args: &[Value]) -> Result<Value, String> {
    let [map, key] = args else {
        return Err(bad_args());
    };
    let entries = entries_of(map)?;
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

pub(crate) fn sprig_set(args: &[Value]) -> Result<Value, String> {
    let [map_value, key, value] = args else {
        return Err(bad_args());
    };
    let map = map_of(map_value)?;
    if contains_map(value, map, 0) {
        return Err("a map can't contain itself".to_string());
    }
    insert_entry(
        &mut *map
            .entries
            .try_borrow_mut()
            .map_err(|_| "map is being read".to_string())?,
        key.bytes().to_vec(),
        value.clone(),
    );
    Ok(map_value.clone())
}

pub(crate) fn sprig_unset(args: &[Value]) -> Result<Value, String> {
    let [map_value, key] = args else {
        return Err(bad_args());
    };
    let removed = remove_entry(
        &mut *map_of(map_value)?
            .entries
            .try_borrow_mut()
            .map_err(|_| "map is being read".to_string())?,
        key.bytes(),
    );
    drop(removed);
    Ok(map_value.clone())
}

pub(crate) fn sprig_has_key(args: &[Value]) -> Result<Value, String> {
    let [map, key] = args else {
        return Err(bad_args());
    };
    let entries = entries_of(map)?;
    Ok(Value::Bool(entries.contains_key(key.bytes())))
}

pub(crate) fn sprig_keys(args: &[Value]) -> Result<Value, String> {
    let mut keys = Vec::new();
    for map in args {
        keys.extend(Value::map_entries(map_of(map)?).into_iter().map(|(k, _)| k));
    }
    Ok(string_list(keys))
}

pub(crate) fn sprig_values(args: &[Value]) -> Result<Value, String> {
    let [map] = args else { return Err(bad_args()) };
    let values = Value::map_entries(map_of(map)?)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    Ok(Value::list(values))
}

// --- Sprig: encodings and digests --------------------------------------------------------------

fn json_of(value: &Value, style: JsonStyle) -> Result<Value, String> {
    let mut out = WipingBuf::new();
    match encode_json(value, &mut out, style, 0) {
        Ok(()) => {
            check_size(Some(out.len()))?;
            ok_str(out)
        }
        Err(()) if out.len() > MAX_STRING => Err(too_large()),
        // Sprig's toJson swallows encoding errors.
        Err(()) => ok_str(""),
    }
}

pub(crate) fn sprig_to_json(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    json_of(value, JsonStyle::Compact)
}

pub(crate) fn sprig_to_pretty_json(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    json_of(value, JsonStyle::Pretty)
}

pub(crate) fn sprig_to_raw_json(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    json_of(value, JsonStyle::Raw)
}

/// Sprig's `fromJson`: `nil` for anything that is not JSON. Its own reader, so that no copy
/// of the text is left unwiped ([`crate::json_read`]); it stops at a value of more than
/// [`MAX_STRING`] bytes, as any other function's result is limited (the executor then charges
/// the whole tree to the object's budget, as it does every new part of a result).
pub(crate) fn sprig_from_json(args: &[Value]) -> Result<Value, String> {
    let [text] = args else { return Err(bad_args()) };
    match read_json(text.bytes(), MAX_STRING) {
        Ok(value) => Ok(value),
        Err(JsonError::Syntax) => Ok(Value::Nil),
        Err(JsonError::TooLarge) => Err(too_large()),
    }
}

pub(crate) fn sprig_b64enc(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    // The exact size of the encoding: it never grows.
    let len = base64::encoded_len(s.bytes().len(), true).ok_or_else(too_large)?;
    let mut out = WipingBuf::zeroed(len);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(s.bytes(), &mut out)
        .map_err(|_| too_large())?;
    out.truncate(written);
    ok_str(out)
}

/// Go's `base64.StdEncoding`: padding required, stray bits and line breaks tolerated.
const GO_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

pub(crate) fn sprig_b64dec(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    // At most the input: it never grows.
    let mut cleaned = WipingBuf::with_capacity(s.bytes().len());
    for &byte in s.bytes() {
        if !matches!(byte, b'\r' | b'\n') {
            cleaned.push(byte);
        }
    }
    // Decoded into a buffer of ours, so a failed decode leaves nothing unwiped either.
    let mut decoded = WipingBuf::zeroed(base64::decoded_len_estimate(cleaned.len()));
    match GO_BASE64.decode_slice(&*cleaned, &mut decoded) {
        Ok(written) => {
            decoded.truncate(written);
            ok_str(decoded)
        }
        Err(base64::DecodeSliceError::DecodeError(error)) => {
            let offset = match error {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
                base64::DecodeError::InvalidLength(len) => len,
                base64::DecodeError::InvalidPadding => cleaned.len(),
            };
            ok_str(format!("illegal base64 data at input byte {offset}"))
        }
        // `decoded_len_estimate` is never too small.
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => Err(too_large()),
    }
}

pub(crate) fn sprig_b32enc(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(base32_encode(s.bytes()))
}

pub(crate) fn sprig_b32dec(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    match base32_decode(s.bytes()) {
        Ok(decoded) => ok_str(decoded),
        Err(offset) => ok_str(format!("illegal base32 data at input byte {offset}")),
    }
}

fn hex_digest(algorithm: &'static aws_lc_rs::digest::Algorithm, data: &[u8]) -> Value {
    Value::str(hex(aws_lc_rs::digest::digest(algorithm, data).as_ref()))
}

pub(crate) fn sprig_sha1sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    Ok(hex_digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        s.bytes(),
    ))
}

pub(crate) fn sprig_sha256sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    Ok(hex_digest(&aws_lc_rs::digest::SHA256, s.bytes()))
}

pub(crate) fn sprig_sha512sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    Ok(hex_digest(&aws_lc_rs::digest::SHA512, s.bytes()))
}

pub(crate) fn sprig_adler32sum(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(WipingBuf::formatted(format_args!("{}", adler32(s.bytes()))))
}

// --- Sprig: numbers ----------------------------------------------------------------------------

/// Go's `strconv.Atoi` with the error ignored (out-of-range values saturate).
pub(crate) fn sprig_atoi(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let text = lossy_string(s.bytes());
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
        Value::Str(s) => parse_go_int(&lossy_string(s)).unwrap_or(0),
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
    match number_value(text, false).ok()? {
        NumberValue::Int(i) => Some(i),
        _ => None,
    }
}

fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => lossy_string(s).trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

pub(crate) fn sprig_int(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Int(to_int64(value)))
}

pub(crate) fn sprig_float64(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Float(to_float64(value)))
}

pub(crate) fn sprig_add(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(
        args.iter()
            .fold(0i64, |sum, v| sum.wrapping_add(to_int64(v))),
    ))
}

pub(crate) fn sprig_add1(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Int(to_int64(value).wrapping_add(1)))
}

pub(crate) fn sprig_sub(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Int(to_int64(a).wrapping_sub(to_int64(b))))
}

pub(crate) fn sprig_mul(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(args.iter().fold(1i64, |product, v| {
        product.wrapping_mul(to_int64(v))
    })))
}

const DIVIDE_BY_ZERO: &str = "runtime error: integer divide by zero";

pub(crate) fn sprig_div(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    match to_int64(b) {
        0 => Err(DIVIDE_BY_ZERO.to_string()),
        divisor => Ok(Value::Int(to_int64(a).wrapping_div(divisor))),
    }
}

pub(crate) fn sprig_mod(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    match to_int64(b) {
        0 => Err(DIVIDE_BY_ZERO.to_string()),
        divisor => Ok(Value::Int(to_int64(a).wrapping_rem(divisor))),
    }
}

pub(crate) fn sprig_max(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(args.iter().map(to_int64).max().unwrap_or(0)))
}

pub(crate) fn sprig_min(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(args.iter().map(to_int64).min().unwrap_or(0)))
}
