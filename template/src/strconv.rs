//! Go's `strconv` where templates need it: quoting strings and characters as Go prints them
//! (`%q`, error messages), unquoting string and character literals, and reading number literals
//! (`strconv.ParseInt` / `ParseFloat` with Go's literal syntax).
//!
//! The parser reads template literals with these, `atoi`, `int` and friends read numbers with
//! them, and `printf` and every error message quote with them. It is a leaf: it uses nothing
//! else from the crate, so the lexer, the error type and the functions can all depend on it.

use std::fmt;

use zeroize::Zeroizing;

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

/// Why a number literal is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a number in Go's syntax.
    Illegal,
    /// A complex number (`1i`).
    Complex,
    /// A character literal that is not one character.
    MalformedChar,
}

/// Parses a number or character literal the way Go's template parser does.
pub(crate) fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
    match number_value(text, is_char) {
        Ok(value) => Ok(Number {
            text: text.to_string(),
            value,
        }),
        Err(NumberError::Illegal) => Err(format!("illegal number syntax: {}", go_quote_str(text))),
        Err(NumberError::Complex) => Err("complex numbers are not supported".to_string()),
        Err(NumberError::MalformedChar) => Err(format!("malformed character constant: {text}")),
    }
}

/// The value of a number or character literal.
///
/// `atoi`, `int` and friends read numbers out of template data with this, so it copies
/// nothing of `text` except into buffers that are wiped, and its errors carry no text.
pub(crate) fn number_value(text: &str, is_char: bool) -> Result<NumberValue, NumberError> {
    if is_char {
        let bytes = Zeroizing::new(unquote(text).map_err(|_| NumberError::MalformedChar)?);
        let decoded = std::str::from_utf8(&bytes).ok().and_then(|s| {
            let mut chars = s.chars();
            let c = chars.next()?;
            chars.next().is_none().then_some(c as i64)
        });
        return match (decoded, bytes.as_slice()) {
            (Some(code), _) => Ok(NumberValue::Int(code)),
            (None, [byte]) => Ok(NumberValue::Int(i64::from(*byte))),
            _ => Err(NumberError::MalformedChar),
        };
    }
    if text.ends_with('i') {
        return Err(NumberError::Complex);
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // Exactly the size of `unsigned`: it never grows.
    let lower = Zeroizing::new(unsigned.to_ascii_lowercase());
    let is_hex = lower.starts_with("0x");
    if !is_hex && (lower.contains('.') || lower.contains('e')) {
        let cleaned = without_underscores(text);
        let float: f64 = cleaned.parse().map_err(|_| NumberError::Illegal)?;
        return Ok(NumberValue::Float(float));
    }
    let digits = without_underscores(&lower);
    let (radix, body) = if let Some(rest) = digits.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = digits.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = digits.strip_prefix("0b") {
        (2, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(NumberError::Illegal);
    }
    Ok(match u128::from_str_radix(body, radix) {
        Ok(magnitude) => {
            let signed = if negative {
                -(magnitude as i128)
            } else {
                magnitude as i128
            };
            i64::try_from(signed).map_or(NumberValue::TooLarge, NumberValue::Int)
        }
        Err(_) => NumberValue::TooLarge,
    })
}

/// `text` without its `_` digit separators, in a string of at most its size (so it never
/// grows), wiped when dropped.
fn without_underscores(text: &str) -> Zeroizing<String> {
    let mut kept = Zeroizing::new(String::with_capacity(text.len()));
    kept.extend(text.chars().filter(|&c| c != '_'));
    kept
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

/// Go's `strconv.Quote` of a string (`%q`), appended to `out`.
///
/// Template data is quoted into a wiping buffer (`crate::wiping::WipingBuf`); a `String` is
/// fine for the names and source text quoted in error messages.
pub(crate) fn go_quote_into(bytes: &[u8], out: &mut impl fmt::Write) {
    let _ = out.write_char('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_quoted_char(out, c, '"');
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    let _ = out.write_char('"');
}

/// Go's `strconv.Quote` of a name or of template source, for messages (never of data).
pub(crate) fn go_quote_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    go_quote_into(text.as_bytes(), &mut out);
    out
}

/// Appends `c` as Go quotes it inside `quote` (`"` for strings, `'` for characters).
pub(crate) fn push_quoted_char(out: &mut impl fmt::Write, c: char, quote: char) {
    let _ = match c {
        _ if c == quote || c == '\\' => out.write_char('\\').and(out.write_char(c)),
        '\u{7}' => out.write_str("\\a"),
        '\u{8}' => out.write_str("\\b"),
        '\u{c}' => out.write_str("\\f"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\u{b}' => out.write_str("\\v"),
        _ if is_printable(c) => out.write_char(c),
        _ if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        _ if (c as u32) < 0x10000 => write!(out, "\\u{:04x}", c as u32),
        _ => write!(out, "\\U{:08x}", c as u32),
    };
}
