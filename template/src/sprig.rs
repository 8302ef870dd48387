//! The Sprig functions: strings, defaults and flow, lists, dictionaries, encodings and
//! digests, and numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use zeroize::Zeroizing;

use base64::Engine as _;

use crate::encoding::{JsonStyle, adler32, base32_decode, base32_encode, encode_json, hex};
use crate::helpers::{bad_args, check_size, ok_str, too_large};
use crate::limits::{MAX_STRING, MAX_VALUE_DEPTH};
use crate::printf::format_default;
use crate::strconv::{NumberValue, go_quote, parse_number};
use crate::value::{MapValue, Value, utf8_units};

// --- Sprig: strings ----------------------------------------------------------------------------

/// Sprig's `strval`: strings as they are, anything else as `fmt` prints it. (Copies of values
/// made by the functions here are `Zeroizing`, so they are wiped when dropped.)
fn strval(value: &Value) -> Zeroizing<Vec<u8>> {
    match value {
        Value::Str(s) => Zeroizing::new(s.to_vec()),
        other => {
            let mut out = Zeroizing::new(Vec::new());
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
    let quoted: Zeroizing<Vec<String>> = Zeroizing::new(
        args.iter()
            .filter(|arg| !arg.is_nil())
            .map(|arg| go_quote(&strval(arg)))
            .collect(),
    );
    ok_str(quoted.join(" "))
}

pub(crate) fn sprig_squote(args: &[Value]) -> Result<Value, String> {
    let quoted: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(
        args.iter()
            .filter(|arg| !arg.is_nil())
            .map(|arg| [&b"'"[..], &strval(arg)[..], b"'"].concat())
            .collect(),
    );
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

pub(crate) fn sprig_trim(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    ok_str(trim_bytes(s.bytes(), char::is_whitespace))
}

pub(crate) fn sprig_trim_all(args: &[Value]) -> Result<Value, String> {
    let [cutset, s] = args else {
        return Err(bad_args());
    };
    let cutset: BTreeSet<char> = String::from_utf8_lossy(cutset.bytes()).chars().collect();
    ok_str(trim_bytes(s.bytes(), |c| cutset.contains(&c)))
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

pub(crate) fn sprig_upper(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    if s.bytes().is_ascii() {
        return ok_str(s.bytes().to_ascii_uppercase());
    }
    ok_str(map_chars(s.bytes(), char::to_uppercase))
}

pub(crate) fn sprig_lower(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_title(args: &[Value]) -> Result<Value, String> {
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

/// Go's `strings.Index`, in linear time (a naive search is quadratic in the worst case, and
/// both strings can be megabytes long).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
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

pub(crate) fn sprig_replace(args: &[Value]) -> Result<Value, String> {
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
    let parts: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(
        args.iter()
            .filter(|arg| !arg.is_nil())
            .map(|arg| {
                let mut out = Vec::new();
                format_default(arg, &mut out, 0);
                out
            })
            .collect(),
    );
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

pub(crate) fn sprig_indent(args: &[Value]) -> Result<Value, String> {
    let [spaces, s] = args else {
        return Err(bad_args());
    };
    ok_str(indent_bytes(spaces.int(), s.bytes())?)
}

pub(crate) fn sprig_nindent(args: &[Value]) -> Result<Value, String> {
    let [spaces, s] = args else {
        return Err(bad_args());
    };
    let mut out = b"\n".to_vec();
    out.extend(indent_bytes(spaces.int(), s.bytes())?);
    ok_str(out)
}

pub(crate) fn sprig_nospace(args: &[Value]) -> Result<Value, String> {
    let [s] = args else { return Err(bad_args()) };
    let kept: String = String::from_utf8_lossy(s.bytes())
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
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
        return Err(String::from_utf8_lossy(message.bytes()).into_owned());
    }
    Ok(value.clone())
}

pub(crate) fn sprig_fail(args: &[Value]) -> Result<Value, String> {
    let [message] = args else {
        return Err(bad_args());
    };
    Err(String::from_utf8_lossy(message.bytes()).into_owned())
}

// --- Sprig: lists ------------------------------------------------------------------------------

/// Sprig's `strslice`: the elements of a list as strings (nils dropped), or the value itself.
fn strslice(value: &Value) -> Zeroizing<Vec<Vec<u8>>> {
    Zeroizing::new(match value {
        Value::List(list) => list
            .items
            .iter()
            .filter(|item| !item.is_nil())
            .map(|item| std::mem::take(&mut *strval(item)))
            .collect(),
        Value::Missing | Value::Nil => Vec::new(),
        other => vec![std::mem::take(&mut *strval(other))],
    })
}

fn string_list(mut items: Zeroizing<Vec<Vec<u8>>>) -> Value {
    Value::list(
        std::mem::take(&mut *items)
            .into_iter()
            .map(Value::str)
            .collect(),
    )
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
    check_size(separators.zip(total).and_then(|(a, b)| a.checked_add(b)))?;
    ok_str(parts.join(separator.bytes()))
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
        other => Zeroizing::new(vec![std::mem::take(&mut *strval(other))]),
    };
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
            .map(|key| std::mem::take(&mut *strval(key)))
            .unwrap_or_default();
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

pub(crate) fn sprig_get(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_set(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_unset(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_has_key(args: &[Value]) -> Result<Value, String> {
    let [map, key] = args else {
        return Err(bad_args());
    };
    let entries = map_of(map)?
        .entries
        .try_borrow()
        .map_err(|_| "map is being modified")?;
    Ok(Value::Bool(entries.contains_key(key.bytes())))
}

pub(crate) fn sprig_keys(args: &[Value]) -> Result<Value, String> {
    let mut keys = Zeroizing::new(Vec::new());
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
    let mut out = Zeroizing::new(Vec::new());
    match encode_json(value, &mut out, style, 0) {
        Ok(()) => {
            check_size(Some(out.len()))?;
            ok_str(std::mem::take(&mut *out))
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

pub(crate) fn sprig_from_json(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_b64enc(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn sprig_b64dec(args: &[Value]) -> Result<Value, String> {
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
    ok_str(adler32(s.bytes()).to_string())
}

// --- Sprig: numbers ----------------------------------------------------------------------------

/// Go's `strconv.Atoi` with the error ignored (out-of-range values saturate).
pub(crate) fn sprig_atoi(args: &[Value]) -> Result<Value, String> {
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
