//! Encodings Sprig needs that no dependency provides: hex, Adler-32, base32 and Go's
//! `encoding/json` output.

use std::fmt::Write as _;

use crate::limits::{MAX_STRING, MAX_VALUE_DEPTH};
use crate::printf::{VecWriter, float_digits, go_exponent, hex_string};
use crate::value::Value;

pub(crate) fn hex(bytes: &[u8]) -> String {
    hex_string(bytes, false, false)
        .into_iter()
        .map(char::from)
        .collect()
}

pub(crate) fn adler32(data: &[u8]) -> u32 {
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
pub(crate) fn base32_encode(data: &[u8]) -> String {
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
pub(crate) fn base32_decode(text: &[u8]) -> Result<Vec<u8>, usize> {
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
pub(crate) enum JsonStyle {
    /// `json.Marshal`: compact, with `<`, `>` and `&` escaped.
    Compact,
    /// `json.MarshalIndent(v, "", "  ")`.
    Pretty,
    /// Compact without HTML escaping.
    Raw,
}

/// Go's `encoding/json` encoding; fails on NaN and infinities as Go does, and stops (failing)
/// once the output passes the size of one value, since indentation and escapes can make it many
/// times larger than the value.
pub(crate) fn encode_json(
    value: &Value,
    out: &mut Vec<u8>,
    style: JsonStyle,
    depth: usize,
) -> Result<(), ()> {
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
                if out.len() > MAX_STRING {
                    return Err(());
                }
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
                if out.len() > MAX_STRING {
                    return Err(());
                }
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
