//! Encodings Sprig needs that no dependency provides: hex, Adler-32, base32 and Go's
//! `encoding/json` output. Their input is template data, so they write into [`WipingBuf`]s.

use std::fmt::Write as _;

use zeroize::Zeroizing;

use crate::limits::{MAX_STRING, MAX_VALUE_DEPTH};
use crate::printf::{float_digits, hex_string, push_go_exponent, push_mantissa};
use crate::value::Value;
use crate::wiping::WipingBuf;

/// Lower-case hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> WipingBuf {
    hex_string(bytes, false, false)
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

/// Go's `base32.StdEncoding.EncodeToString`, in a buffer of exactly its size.
pub(crate) fn base32_encode(data: &[u8]) -> WipingBuf {
    let mut out = WipingBuf::with_capacity(data.len().div_ceil(5) * 8);
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
                out.push(BASE32_ALPHABET[index as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// Go's `base32.StdEncoding.DecodeString`; the error is the offending input offset.
pub(crate) fn base32_decode(text: &[u8]) -> Result<WipingBuf, usize> {
    // The symbols without line breaks and their offsets in `text`; at most `text`, so neither
    // grows.
    let mut symbols = WipingBuf::with_capacity(text.len());
    let mut offsets = Zeroizing::new(Vec::with_capacity(text.len()));
    for (offset, &byte) in text.iter().enumerate() {
        if !matches!(byte, b'\r' | b'\n') {
            symbols.push(byte);
            offsets.push(offset);
        }
    }
    // Every block of 8 symbols decodes to at most 5 bytes: it never grows.
    let mut out = WipingBuf::with_capacity(symbols.len() * 5 / 8);
    let block_count = symbols.len().div_ceil(8);
    for (block_index, (block, block_offsets)) in
        symbols.chunks(8).zip(offsets.chunks(8)).enumerate()
    {
        if block.len() < 8 {
            return Err(block_offsets.first().copied().unwrap_or(text.len()));
        }
        let data_len = block.iter().take_while(|&&b| b != b'=').count();
        let padding_ok = block[data_len..].iter().all(|&b| b == b'=');
        let is_last = block_index + 1 == block_count;
        if !padding_ok || (data_len < 8 && !is_last) || !matches!(data_len, 2 | 4 | 5 | 7 | 8) {
            return Err(block_offsets.get(data_len).copied().unwrap_or(text.len()));
        }
        let mut bits = 0u64;
        for (i, (symbol, offset)) in block.iter().zip(block_offsets).enumerate() {
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
    out: &mut WipingBuf,
    style: JsonStyle,
    depth: usize,
) -> Result<(), ()> {
    if depth > MAX_VALUE_DEPTH {
        return Err(());
    }
    let newline = |out: &mut WipingBuf, level: usize| {
        if style == JsonStyle::Pretty {
            out.push(b'\n');
            out.extend_repeat(b' ', level * 2);
        }
    };
    match value {
        Value::Missing | Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => json_float(*f, out)?,
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

/// Appends a float as Go's `encoding/json` writes it (NaN and infinities fail).
fn json_float(f: f64, out: &mut WipingBuf) -> Result<(), ()> {
    if !f.is_finite() {
        return Err(());
    }
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let (digits, exponent) = float_digits(f);
        if f < 0.0 {
            out.push(b'-');
        }
        push_mantissa(&digits, out);
        if exponent < 0 {
            let _ = write!(out, "e-{}", exponent.unsigned_abs());
        } else {
            push_go_exponent(exponent, out);
        }
        return Ok(());
    }
    let _ = write!(out, "{f}");
    Ok(())
}

/// A JSON string as Go writes it: invalid UTF-8 becomes U+FFFD.
fn encode_json_string(s: &[u8], out: &mut WipingBuf, escape_html: bool) {
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
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                '\u{2028}' | '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                _ if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
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
