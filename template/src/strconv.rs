//! Go's `strconv` where templates need it: quoting strings and characters as Go prints them
//! (`%q`, error messages), unquoting string and character literals, and reading number literals
//! (`strconv.ParseInt` / `ParseFloat` with Go's literal syntax).
//!
//! The parser reads template literals with these, `atoi`, `int` and friends read numbers with
//! them, and `printf` and every error message quote with them. It is a leaf: it uses nothing
//! else from the crate, so the lexer, the error type and the functions can all depend on it.

use std::fmt::Write as _;

/// A number literal: its text as written and its value.
#[derive(Debug)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) value: NumberValue,
}

/// The value of a number literal.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NumberValue {
    Int(i64),
    Float(f64),
    TooLarge,
}

/// Parses a number or character literal the way Go's template parser does.
pub(crate) fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
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
pub(crate) fn unquote(text: &str) -> Result<Vec<u8>, String> {
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

/// Go's `unicode.IsPrint`, approximately: graphic characters and the ASCII space.
pub(crate) fn is_printable(c: char) -> bool {
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
pub(crate) fn go_quote(bytes: &[u8]) -> String {
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

/// [`go_quote`] of a `str`.
pub(crate) fn go_quote_str(text: &str) -> String {
    go_quote(text.as_bytes())
}

/// Appends `c` as Go quotes it inside `quote` (`"` for strings, `'` for characters).
pub(crate) fn push_quoted_char(out: &mut String, c: char, quote: char) {
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
