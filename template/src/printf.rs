//! Go's `fmt` and `strconv` formatting: `%v` printing of values, `print`/`println`
//! spacing, `printf` directives and float formatting (quoting is in [`crate::strconv`]).

use std::fmt::{self, Write as _};

use zeroize::Zeroize;

use crate::limits::{MAX_FORMAT_WIDTH, MAX_STRING, MAX_VALUE_DEPTH};
use crate::strconv::{go_quote, push_quoted_char};
use crate::value::{Value, utf8_units};

/// Go's `%v`.
pub(crate) fn format_default(value: &Value, out: &mut Vec<u8>, depth: usize) {
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
pub(crate) fn float_digits(f: f64) -> (String, i32) {
    let text = format!("{:e}", f.abs());
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    (mantissa.replace('.', ""), exponent.parse().unwrap_or(0))
}

/// Go's `%e`-style exponent: at least two digits and a sign.
pub(crate) fn go_exponent(exponent: i32) -> String {
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exponent.unsigned_abs())
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which `%v` uses.
pub(crate) fn format_float_shortest(f: f64) -> String {
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

/// Most digits after the point Rust's formatter is asked for. Rust panics on a precision over
/// 65,535 while Go accepts up to a million; every `f64` has an exact decimal expansion of at
/// most 1,074 digits after the point (767 significant), so further digits are zeros and are
/// appended instead.
const MAX_EXACT_DIGITS: usize = 1100;

/// `f` with `precision` digits after the point, exactly (Go's `%.Nf`).
fn format_fixed(f: f64, precision: usize) -> String {
    let exact = precision.min(MAX_EXACT_DIGITS);
    let mut text = format!("{f:.exact$}");
    text.extend(std::iter::repeat_n('0', precision - exact));
    text
}

/// Go's `%e` with a precision.
fn format_float_exponent(f: f64, precision: usize, upper: bool) -> String {
    let exact = precision.min(MAX_EXACT_DIGITS);
    let text = format!("{f:.exact$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let zeros = "0".repeat(precision - exact);
    let formatted = format!(
        "{mantissa}{zeros}{}",
        go_exponent(exponent.parse().unwrap_or(0))
    );
    if upper {
        formatted.to_uppercase()
    } else {
        formatted
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value], out: &mut Vec<u8>) {
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
pub(crate) fn go_sprintf(format: &[u8], args: &[Value]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(format.len());
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
    (out.len() <= MAX_STRING).then_some(out)
}

/// Adapts a byte vector to `fmt::Write`.
pub(crate) struct VecWriter<'a>(pub(crate) &'a mut Vec<u8>);

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
        Some(mut body) => {
            pad(directive, &body, out);
            body.zeroize();
        }
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

pub(crate) fn hex_string(s: &[u8], upper: bool, spaced: bool) -> Vec<u8> {
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
        ('f' | 'F', precision) => format_fixed(magnitude, precision.unwrap_or(6)),
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
    // Trailing zeros are removed, so digits past the exact expansion change nothing.
    let precision = precision.min(MAX_EXACT_DIGITS);
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
