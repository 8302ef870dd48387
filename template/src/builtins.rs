//! Go's `text/template` builtins: `not`, `len`, `index`, `slice`, `print`, `printf`,
//! `println`, the comparisons `eq`, `ne`, `lt`, `le`, `gt`, `ge`, and the escapers `html`,
//! `js` and `urlquery` (`and` and `or` short-circuit, so the executor evaluates them).

use std::fmt::Write as _;

use crate::helpers::{bad_args, ok_str, too_large};
use crate::printf::{format_default, go_sprintf, sprint};
use crate::strconv::is_printable;
use crate::value::{Value, utf8_units};
use crate::wiping::WipingBuf;

pub(crate) fn builtin_not(args: &[Value]) -> Result<Value, String> {
    let [value] = args else {
        return Err(bad_args());
    };
    Ok(Value::Bool(!value.is_true()))
}

pub(crate) fn builtin_len(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn builtin_index(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn builtin_slice(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn builtin_print(args: &[Value]) -> Result<Value, String> {
    let mut out = WipingBuf::new();
    sprint(args, &mut out);
    ok_str(out)
}

pub(crate) fn builtin_println(args: &[Value]) -> Result<Value, String> {
    let mut out = WipingBuf::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        format_default(arg, &mut out, 0);
    }
    out.push(b'\n');
    ok_str(out)
}

pub(crate) fn builtin_printf(args: &[Value]) -> Result<Value, String> {
    let [format, rest @ ..] = args else {
        return Err(bad_args());
    };
    match go_sprintf(format.bytes(), rest) {
        Some(out) => ok_str(out),
        None => Err(too_large()),
    }
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

pub(crate) fn builtin_eq(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn builtin_ne(args: &[Value]) -> Result<Value, String> {
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

pub(crate) fn builtin_lt(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(less(a, b)?))
}

pub(crate) fn builtin_le(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(less(a, b)? || equal(a, b)?))
}

pub(crate) fn builtin_gt(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(!(less(a, b)? || equal(a, b)?)))
}

pub(crate) fn builtin_ge(args: &[Value]) -> Result<Value, String> {
    let [a, b] = args else { return Err(bad_args()) };
    Ok(Value::Bool(!less(a, b)?))
}

/// The text the `html`, `js` and `urlquery` builtins escape.
fn escaper_input(args: &[Value]) -> WipingBuf {
    if let [Value::Str(s)] = args {
        return WipingBuf::from_slice(s);
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
    let mut out = WipingBuf::new();
    sprint(&printable, &mut out);
    out
}

pub(crate) fn builtin_html(args: &[Value]) -> Result<Value, String> {
    ok_str(html_escape(&escaper_input(args)))
}

pub(crate) fn builtin_js(args: &[Value]) -> Result<Value, String> {
    ok_str(js_escape(&escaper_input(args)))
}

pub(crate) fn builtin_urlquery(args: &[Value]) -> Result<Value, String> {
    ok_str(query_escape(&escaper_input(args)))
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &[u8]) -> WipingBuf {
    let mut out = WipingBuf::with_capacity(s.len());
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
fn js_escape(s: &[u8]) -> WipingBuf {
    let mut out = WipingBuf::with_capacity(s.len());
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
                let _ = write!(out, "\\u{:04X}", byte);
            }
            [byte] if *byte < 0x80 => out.push(*byte),
            _ => match std::str::from_utf8(unit)
                .ok()
                .and_then(|s| s.chars().next())
            {
                Some(c) if is_printable(c) => out.extend_from_slice(unit),
                Some(c) => {
                    let _ = write!(out, "\\u{:04X}", c as u32);
                }
                None => out.extend_from_slice(b"\\uFFFD"),
            },
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &[u8]) -> WipingBuf {
    let mut out = WipingBuf::with_capacity(s.len());
    for &byte in s {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte),
            b' ' => out.push(b'+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}
