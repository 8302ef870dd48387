//! Go's `fmt` and `strconv` formatting: `%v` printing of values, `print`/`println`
//! spacing, `printf` directives and float formatting (quoting is in [`crate::strconv`]).
//!
//! Everything here formats template data, so all text is built in [`WipingBuf`]s, numbers
//! included (a number can be read out of a secret with `atoi` or `float64`).

use std::fmt::Write as _;

use crate::limits::{MAX_FORMAT_WIDTH, MAX_STRING, MAX_VALUE_DEPTH};
use crate::strconv::{go_quote_into, push_quoted_char};
use crate::value::{Value, utf8_units};
use crate::wiping::WipingBuf;

/// Go's `%v`.
pub(crate) fn format_default(value: &Value, out: &mut WipingBuf, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.extend_from_slice(b"...");
        return;
    }
    match value {
        Value::Missing | Value::Nil => out.extend_from_slice(b"<nil>"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.extend_from_slice(&format_float_shortest(*f)),
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
pub(crate) fn float_digits(f: f64) -> (WipingBuf, i32) {
    let text = WipingBuf::formatted(format_args!("{:e}", f.abs()));
    let (mantissa, exponent) = split_exponent(&text);
    let mut digits = WipingBuf::with_capacity(mantissa.len());
    for &byte in mantissa.iter().filter(|&&byte| byte != b'.') {
        digits.push(byte);
    }
    (digits, exponent)
}

/// Splits Rust's `{:e}` text at the `e`: the mantissa and the exponent.
fn split_exponent(text: &[u8]) -> (&[u8], i32) {
    match text.iter().position(|&byte| byte == b'e') {
        Some(at) => {
            let exponent = std::str::from_utf8(&text[at + 1..])
                .ok()
                .and_then(|exponent| exponent.parse().ok())
                .unwrap_or(0);
            (&text[..at], exponent)
        }
        None => (text, 0),
    }
}

/// Appends Go's `%e`-style exponent: at least two digits and a sign.
pub(crate) fn push_go_exponent(exponent: i32, out: &mut WipingBuf) {
    let sign = if exponent < 0 { '-' } else { '+' };
    let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
}

/// Appends the digits of [`float_digits`] as a mantissa: `d.ddd`, or `d` alone.
pub(crate) fn push_mantissa(digits: &[u8], out: &mut WipingBuf) {
    match digits.split_first() {
        Some((head, tail)) if !tail.is_empty() => {
            out.push(*head);
            out.push(b'.');
            out.extend_from_slice(tail);
        }
        _ => out.extend_from_slice(digits),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which `%v` uses.
pub(crate) fn format_float_shortest(f: f64) -> WipingBuf {
    if f.is_nan() {
        return WipingBuf::from_slice(b"NaN");
    }
    if f.is_infinite() {
        return WipingBuf::from_slice(if f > 0.0 { b"+Inf" } else { b"-Inf" });
    }
    if f == 0.0 {
        return WipingBuf::from_slice(if f.is_sign_negative() { b"-0" } else { b"0" });
    }
    let (digits, exponent) = float_digits(f);
    if (-4..6).contains(&exponent) {
        return WipingBuf::formatted(format_args!("{f}"));
    }
    let mut out = WipingBuf::new();
    if f.is_sign_negative() {
        out.push(b'-');
    }
    push_mantissa(&digits, &mut out);
    push_go_exponent(exponent, &mut out);
    out
}

/// Most digits after the point Rust's formatter is asked for. Rust panics on a precision over
/// 65,535 while Go accepts up to a million; every `f64` has an exact decimal expansion of at
/// most 1,074 digits after the point (767 significant), so further digits are zeros and are
/// appended instead.
const MAX_EXACT_DIGITS: usize = 1100;

/// `f` with `precision` digits after the point, exactly (Go's `%.Nf`).
fn format_fixed(f: f64, precision: usize) -> WipingBuf {
    let exact = precision.min(MAX_EXACT_DIGITS);
    let mut text = WipingBuf::formatted(format_args!("{f:.exact$}"));
    text.extend_repeat(b'0', precision - exact);
    text
}

/// Go's `%e` with a precision.
fn format_float_exponent(f: f64, precision: usize, upper: bool) -> WipingBuf {
    let exact = precision.min(MAX_EXACT_DIGITS);
    let text = WipingBuf::formatted(format_args!("{f:.exact$e}"));
    let (mantissa, exponent) = split_exponent(&text);
    let mut formatted = WipingBuf::new();
    formatted.extend_from_slice(mantissa);
    formatted.extend_repeat(b'0', precision - exact);
    push_go_exponent(exponent, &mut formatted);
    if upper {
        formatted.make_ascii_uppercase();
    }
    formatted
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value], out: &mut WipingBuf) {
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
///
/// Widths repeat and lists multiply them, so the output is checked after every directive and
/// formatting stops once it passes the size of one value (`None`).
pub(crate) fn go_sprintf(format: &[u8], args: &[Value]) -> Option<WipingBuf> {
    let mut out = WipingBuf::with_capacity(format.len());
    let mut next_arg = 0;
    let mut i = 0;
    while i < format.len() {
        if out.len() > MAX_STRING {
            return None;
        }
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
                let _ = write!(out, "%!{verb}(MISSING)");
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
    (out.len() <= MAX_STRING).then_some(out)
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
fn describe_bad_arg(arg: &Value, out: &mut WipingBuf) {
    if arg.is_nil() {
        out.extend_from_slice(b"<nil>");
        return;
    }
    out.extend_from_slice(arg.type_name().as_bytes());
    out.push(b'=');
    format_default(arg, out, 0);
}

fn format_directive(directive: &Directive, arg: &Value, out: &mut WipingBuf) {
    let verb = directive.verb;
    // Dropping the body wipes it.
    let body: Option<WipingBuf> = match (verb, arg) {
        ('v', Value::Str(s)) if directive.sharp => Some(quoted(s)),
        ('v', Value::Int(i)) => Some(format_integer(*i, 10, false, directive)),
        ('v', Value::Float(f)) => Some(format_float_verb(*f, 'g', directive)),
        ('v', Value::List(list)) => {
            format_each(directive, &list.items, out);
            return;
        }
        ('v', Value::Missing | Value::Nil) => Some(WipingBuf::from_slice(b"<nil>")),
        ('v', other) => {
            let mut text = WipingBuf::new();
            format_default(other, &mut text, 0);
            Some(text)
        }
        ('s', Value::Str(s)) => Some(truncate_chars(s, directive.precision)),
        ('q', Value::Str(s)) => Some(quoted(&truncate_chars(s, directive.precision))),
        ('x' | 'X', Value::Str(s)) => Some(hex_string(s, verb == 'X', directive.space)),
        ('s' | 'q' | 'x' | 'X' | 'd', Value::List(list)) => {
            format_each(directive, &list.items, out);
            return;
        }
        ('s', Value::Map(_)) => {
            let mut text = WipingBuf::new();
            format_default(arg, &mut text, 0);
            Some(text)
        }
        ('d', Value::Int(i)) => Some(format_integer(*i, 10, false, directive)),
        ('x', Value::Int(i)) => Some(format_integer(*i, 16, false, directive)),
        ('X', Value::Int(i)) => Some(format_integer(*i, 16, true, directive)),
        ('o', Value::Int(i)) => Some(format_integer(*i, 8, false, directive)),
        ('b', Value::Int(i)) => Some(format_integer(*i, 2, false, directive)),
        ('c', Value::Int(i)) => Some(WipingBuf::formatted(format_args!("{}", char_of(*i)))),
        ('q', Value::Int(i)) => {
            let mut quoted = WipingBuf::new();
            quoted.push(b'\'');
            push_quoted_char(&mut quoted, char_of(*i), '\'');
            quoted.push(b'\'');
            Some(quoted)
        }
        ('U', Value::Int(i)) => Some(WipingBuf::formatted(format_args!(
            "U+{:04X}",
            char_of(*i) as u32
        ))),
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(f)) => {
            Some(format_float_verb(*f, verb, directive))
        }
        ('t', Value::Bool(b)) => Some(WipingBuf::from_slice(if *b { b"true" } else { b"false" })),
        _ => None,
    };
    match body {
        Some(body) => pad(directive, &body, out),
        None => {
            let _ = write!(out, "%!{verb}(");
            describe_bad_arg(arg, out);
            out.push(b')');
        }
    }
}

/// Go's `strconv.Quote` of `s`, in a wiping buffer.
fn quoted(s: &[u8]) -> WipingBuf {
    let mut out = WipingBuf::with_capacity(s.len() + 2);
    go_quote_into(s, &mut out);
    out
}

/// `[a b c]` with the verb applied to each element.
fn format_each(directive: &Directive, items: &[Value], out: &mut WipingBuf) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        // A width applies to every element: stop early, `go_sprintf` reports the size.
        if out.len() > MAX_STRING {
            return;
        }
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

fn truncate_chars(s: &[u8], precision: Option<usize>) -> WipingBuf {
    match precision {
        Some(limit) => {
            // At most `s`: it never grows.
            let mut kept = WipingBuf::with_capacity(s.len());
            for unit in utf8_units(s).into_iter().take(limit) {
                kept.extend_from_slice(unit);
            }
            kept
        }
        None => WipingBuf::from_slice(s),
    }
}

/// Hex digits of `s` (`%x`, `%X`, `% x`), in a buffer of their exact size.
pub(crate) fn hex_string(s: &[u8], upper: bool, spaced: bool) -> WipingBuf {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let spaces = if spaced { s.len().saturating_sub(1) } else { 0 };
    let mut text = WipingBuf::with_capacity(s.len() * 2 + spaces);
    for (i, byte) in s.iter().enumerate() {
        if spaced && i > 0 {
            text.push(b' ');
        }
        text.push(digits[usize::from(byte >> 4)]);
        text.push(digits[usize::from(byte & 0x0f)]);
    }
    text
}

fn format_integer(value: i64, radix: u32, upper: bool, directive: &Directive) -> WipingBuf {
    let magnitude = value.unsigned_abs();
    let digits = match radix {
        16 if upper => WipingBuf::formatted(format_args!("{magnitude:X}")),
        16 => WipingBuf::formatted(format_args!("{magnitude:x}")),
        8 => WipingBuf::formatted(format_args!("{magnitude:o}")),
        2 => WipingBuf::formatted(format_args!("{magnitude:b}")),
        _ => WipingBuf::formatted(format_args!("{magnitude}")),
    };
    let zeros = directive
        .precision
        .map_or(0, |precision| precision.saturating_sub(digits.len()));
    let prefix: &[u8] = match (directive.sharp, radix) {
        (true, 16) if upper => b"0X",
        (true, 16) => b"0x",
        (true, 8) => b"0",
        (true, 2) => b"0b",
        _ => b"",
    };
    let sign = sign_of(value < 0, directive);
    // The exact size: it never grows.
    let mut text = WipingBuf::with_capacity(sign.len() + prefix.len() + zeros + digits.len());
    text.extend_from_slice(sign.as_bytes());
    text.extend_from_slice(prefix);
    text.extend_repeat(b'0', zeros);
    text.extend_from_slice(&digits);
    text
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

fn format_float_verb(f: f64, verb: char, directive: &Directive) -> WipingBuf {
    if !f.is_finite() {
        let text: &[u8] = match (f.is_nan(), f > 0.0) {
            (true, _) => b"NaN",
            (false, true) if directive.plus => b"+Inf",
            (false, true) => b"+Inf",
            (false, false) => b"-Inf",
        };
        return WipingBuf::from_slice(text);
    }
    let sign = sign_of(f.is_sign_negative(), directive);
    let magnitude = f.abs();
    let mut body = match (verb, directive.precision) {
        ('e' | 'E', precision) => {
            format_float_exponent(magnitude, precision.unwrap_or(6), verb == 'E')
        }
        ('f' | 'F', precision) => format_fixed(magnitude, precision.unwrap_or(6)),
        (_, None) => format_float_shortest(magnitude),
        (_, Some(precision)) => format_float_general(magnitude, precision.max(1)),
    };
    if verb == 'G' {
        body.make_ascii_uppercase();
    }
    // The exact size: it never grows.
    let mut text = WipingBuf::with_capacity(sign.len() + body.len());
    text.extend_from_slice(sign.as_bytes());
    text.extend_from_slice(&body);
    text
}

/// Go's `%.Ng`: `%e` or `%f` with N significant digits, trailing zeros removed.
fn format_float_general(f: f64, precision: usize) -> WipingBuf {
    // Trailing zeros are removed, so digits past the exact expansion change nothing.
    let precision = precision.min(MAX_EXACT_DIGITS);
    let rounded = WipingBuf::formatted(format_args!("{f:.*e}", precision - 1));
    let (_, exponent) = split_exponent(&rounded);
    let exponent = i64::from(exponent);
    let limit = i64::try_from(precision).unwrap_or(i64::MAX);
    if exponent < -4 || exponent >= limit {
        let text = format_float_exponent(f, precision - 1, false);
        let (mantissa, exp) = match text.iter().position(|&byte| byte == b'e') {
            Some(at) => (&text[..at], &text[at + 1..]),
            None => (&text[..], &b""[..]),
        };
        let mut out = WipingBuf::new();
        out.extend_from_slice(strip_fraction_zeros(mantissa));
        out.push(b'e');
        out.extend_from_slice(exp);
        return out;
    }
    let decimals = usize::try_from(limit - 1 - exponent).unwrap_or(0);
    let fixed = WipingBuf::formatted(format_args!("{f:.decimals$}"));
    WipingBuf::from_slice(strip_fraction_zeros(&fixed))
}

fn strip_fraction_zeros(text: &[u8]) -> &[u8] {
    if !text.contains(&b'.') {
        return text;
    }
    let end = text
        .iter()
        .rposition(|&byte| byte != b'0')
        .map_or(0, |at| at + 1);
    let text = &text[..end];
    let end = text
        .iter()
        .rposition(|&byte| byte != b'.')
        .map_or(0, |at| at + 1);
    &text[..end]
}

/// Pads to the directive's width (counted in characters, as Go does).
fn pad(directive: &Directive, body: &[u8], out: &mut WipingBuf) {
    let len = utf8_units(body).len();
    let width = directive.width.unwrap_or(0);
    if len >= width {
        out.extend_from_slice(body);
        return;
    }
    let fill = width - len;
    if directive.minus {
        out.extend_from_slice(body);
        out.extend_repeat(b' ', fill);
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
        out.extend_repeat(b'0', fill);
        out.extend_from_slice(&body[sign_len..]);
    } else {
        out.extend_repeat(b' ', fill);
        out.extend_from_slice(body);
    }
}
