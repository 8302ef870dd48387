//! Sprig's `fromJson`: Go's `json.Unmarshal` into `interface{}`, read straight into template
//! values with every string built in a wiping buffer.
//!
//! `fromJson` reads decrypted items (`{{ (fromJson .config).password }}`), so what it builds
//! on the way is as secret as its input. A general JSON library keeps its own scratch copy of
//! every string that has escapes and, on a syntax error, frees what it had built so far; none
//! of it is ours to wipe. This reader builds strings in [`WipingBuf`]s and values that wipe
//! themselves, so the only copies of the input it makes are the values it returns, and
//! everything it drops (a failed parse, a replaced duplicate key) is wiped.
//!
//! It follows Go, not RFC 8259 strictly, where the two differ:
//! - a syntax error anywhere makes the whole result `nil` (Go validates the whole input
//!   before it decodes, and Sprig's `fromJson` drops the error);
//! - numbers are `float64`; one out of its range is `nil` and the rest of the value is kept
//!   (Go records a type error and goes on);
//! - invalid UTF-8 in a string becomes U+FFFD, one per byte, and so does an escaped surrogate
//!   that is not half of a pair;
//! - of duplicate keys, the last wins.
//!
//! Unlike Go (10,000), nesting deeper than [`MAX_JSON_DEPTH`] (128) is a syntax error: the
//! reader recurses, one stack frame per level.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::limits::MAX_JSON_DEPTH;
use crate::value::{MapValue, Value, footprint, insert_entry};
use crate::wiping::WipingBuf;

/// U+FFFD in UTF-8, for every byte that is not valid UTF-8 and every lone surrogate.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// The value of the JSON text `text` as Go's `json.Unmarshal` into `interface{}` makes it.
/// Reading stops with [`JsonError::TooLarge`] once the value would hold more than `max_size`
/// bytes by [`Value::footprint`]'s estimate (a few bytes of JSON make a list or a map, which
/// take dozens).
pub(crate) fn read_json(text: &[u8], max_size: usize) -> Result<Value, JsonError> {
    let mut reader = Reader {
        text,
        at: 0,
        size: 0,
        max_size,
    };
    let value = reader.value(0)?;
    reader.skip_space();
    if reader.at == text.len() {
        Ok(value)
    } else {
        Err(JsonError::Syntax)
    }
}

/// Why a text was not read.
#[derive(Debug, PartialEq)]
pub(crate) enum JsonError {
    /// It is not JSON (what is wrong is not reported: `fromJson` returns `nil` for all of it).
    Syntax,
    /// Its value would be larger than the limit.
    TooLarge,
}

use JsonError::Syntax;

/// A cursor over the input, and the size of what was built so far.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    size: usize,
    max_size: usize,
}

impl Reader<'_> {
    /// Counts `bytes` more towards the value's size.
    fn charge(&mut self, bytes: usize) -> Result<(), JsonError> {
        self.size = self.size.saturating_add(bytes);
        if self.size > self.max_size {
            return Err(JsonError::TooLarge);
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Consumes `byte` after optional white space.
    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    /// Consumes `word` (`true`, `false`, `null`) exactly.
    fn keyword(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    /// One value, after optional white space; `depth` is the number of arrays and objects
    /// around it.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.skip_space();
        let first = self.peek().ok_or(Syntax)?;
        self.charge(match first {
            b'{' | b'[' => footprint::CONTAINER,
            b'"' => footprint::string(0),
            _ => footprint::VALUE,
        })?;
        match first {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => Ok(Value::str(self.string()?)),
            b't' => self.keyword(b"true").map(|()| Value::Bool(true)),
            b'f' => self.keyword(b"false").map(|()| Value::Bool(false)),
            b'n' => self.keyword(b"null").map(|()| Value::Nil),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Syntax),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_JSON_DEPTH {
            return Err(Syntax);
        }
        self.at += 1; // '['
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::list(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::list(items));
                }
                _ => return Err(Syntax),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_JSON_DEPTH {
            return Err(Syntax);
        }
        self.at += 1; // '{'
        // A map value from the start, so its keys are wiped if a later part fails.
        let mut map = MapValue {
            entries: RefCell::new(BTreeMap::new()),
            string_elems: false,
        };
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Map(Rc::new(map)));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(Syntax);
            }
            let key = self.string()?.into_zeroizing();
            self.charge(footprint::key(0))?;
            self.expect(b':')?;
            let value = self.value(depth)?;
            insert_entry(map.entries.get_mut(), key_bytes(key), value);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Map(Rc::new(map)));
                }
                _ => return Err(Syntax),
            }
        }
    }

    /// A number: its JSON syntax checked, its value as Go's `strconv.ParseFloat` gives it;
    /// `nil` when that is out of range.
    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Syntax),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        // Only ASCII digits, signs, '.' and 'e' were consumed.
        let literal = std::str::from_utf8(&self.text[start..self.at]).map_err(|_| Syntax)?;
        let number: f64 = literal.parse().map_err(|_| Syntax)?;
        Ok(if number.is_finite() {
            Value::Float(number)
        } else {
            Value::Nil
        })
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    /// One digit or more.
    fn some_digits(&mut self) -> Result<(), JsonError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(Syntax);
        }
        self.digits();
        Ok(())
    }

    /// A string, from its opening quote, unescaped into a wiping buffer; its bytes are
    /// charged as they are written.
    fn string(&mut self) -> Result<WipingBuf, JsonError> {
        self.at += 1; // '"'
        let rest = &self.text[self.at..];
        // Exact when the string has no escapes and valid UTF-8; growth wipes what it leaves.
        let mut out = WipingBuf::with_capacity(memchr::memchr(b'"', rest).unwrap_or(0));
        loop {
            let rest = &self.text[self.at..];
            let run = rest
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
                .ok_or(Syntax)?;
            let before = out.len();
            push_lossy(&mut out, &rest[..run]);
            self.charge(out.len() - before)?;
            self.at += run;
            match rest[run] {
                b'"' => {
                    self.at += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let before = out.len();
                    self.escape(&mut out)?;
                    self.charge(out.len() - before)?;
                }
                // A control character.
                _ => return Err(Syntax),
            }
        }
    }

    /// One escape sequence, from its backslash.
    fn escape(&mut self, out: &mut WipingBuf) -> Result<(), JsonError> {
        let byte = match self.text.get(self.at + 1).ok_or(Syntax)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4(self.at + 2).ok_or(Syntax)?;
                self.at += 6;
                let decoded = if (0xD800..0xDC00).contains(&unit) {
                    self.low_surrogate(unit)
                } else {
                    char::from_u32(unit)
                };
                let mut utf8 = [0; 4];
                let text = decoded.unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(text.encode_utf8(&mut utf8).as_bytes());
                return Ok(());
            }
            _ => return Err(Syntax),
        };
        out.push(byte);
        self.at += 2;
        Ok(())
    }

    /// The character of the pair that `high` starts, consuming the `\uXXXX` of its low half;
    /// `None` (U+FFFD, with nothing consumed) when no low half follows.
    fn low_surrogate(&mut self, high: u32) -> Option<char> {
        if self.text.get(self.at..self.at + 2) != Some(b"\\u") {
            return None;
        }
        let low = self.hex4(self.at + 2)?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        self.at += 6;
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    /// The four hex digits at `at`, if there are four.
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.text.get(at..at + 4)?;
        digits.iter().try_fold(0, |unit, &digit| {
            let value = char::from(digit).to_digit(16)?;
            Some(unit << 4 | value)
        })
    }
}

/// Appends `bytes` with each byte that is not part of valid UTF-8 replaced by U+FFFD, as Go's
/// decoder does.
fn push_lossy(out: &mut WipingBuf, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            out.extend_from_slice(REPLACEMENT);
        }
    }
}

/// A map key's bytes, moved out of their wiping wrapper (map keys are wiped by the map).
fn key_bytes(mut key: zeroize::Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *key)
}

#[cfg(test)]
mod tests {
    use super::{JsonError, read_json};
    use crate::value::Value;
    use crate::wiping::retired;

    /// The value printed as Go's `%v` would, to compare whole trees at once.
    fn shown(text: &str) -> String {
        match read_json(text.as_bytes(), usize::MAX) {
            Err(error) => format!("{error:?}"),
            Ok(value) => show(&value),
        }
    }

    fn show(value: &Value) -> String {
        match value {
            Value::Nil => "nil".into(),
            Value::Bool(b) => b.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{:?}", String::from_utf8_lossy(s)),
            Value::List(list) => {
                let items: Vec<String> = list.items.iter().map(show).collect();
                format!("[{}]", items.join(" "))
            }
            Value::Map(map) => {
                let entries: Vec<String> = map
                    .entries
                    .borrow()
                    .iter()
                    .map(|(k, v)| format!("{}:{}", String::from_utf8_lossy(k), show(v)))
                    .collect();
                format!("map[{}]", entries.join(" "))
            }
            other => format!("unexpected {}", other.type_name()),
        }
    }

    #[test]
    fn reads_every_kind_of_value() {
        assert_eq!(
            shown(r#" {"a": [1, 2.5, -0, 1e3, true, false, null], "b": {"c": "d"}, "": ""} "#),
            r#"map[:"" a:[1 2.5 -0 1000 true false nil] b:map[c:"d"]]"#
        );
        assert_eq!(shown("\t\r\n\"x\"\n"), r#""x""#);
        assert_eq!(shown("[]"), "[]");
        assert_eq!(shown("{}"), "map[]");
        assert_eq!(shown("12345678901234567890"), "12345678901234567000");
    }

    #[test]
    fn unescapes_as_go_does() {
        assert_eq!(
            shown(r#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac""#),
            format!("{:?}", "\"\\/\u{8}\u{c}\n\r\tAé€")
        );
        // A surrogate pair is one character; a half on its own is U+FFFD, and what follows a
        // lone high half is read on its own.
        assert_eq!(shown(r#""\ud83d\ude00""#), format!("{:?}", "😀"));
        assert_eq!(shown(r#""\ud83d""#), format!("{:?}", "\u{FFFD}"));
        assert_eq!(shown(r#""\ude00x""#), format!("{:?}", "\u{FFFD}x"));
        assert_eq!(shown(r#""\ud83d\u0041""#), format!("{:?}", "\u{FFFD}A"));
        assert_eq!(
            shown(r#""\ud83d\ud83d""#),
            format!("{:?}", "\u{FFFD}\u{FFFD}")
        );
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        let value = read_json(b"[\"a\xe2\x82b\xffc\", \"\xc3\xa9\"]", usize::MAX).unwrap();
        let Value::List(list) = value else { panic!() };
        let Value::Str(first) = &list.items[0] else {
            panic!()
        };
        assert_eq!(&first[..], "a\u{FFFD}\u{FFFD}b\u{FFFD}c".as_bytes());
        let Value::Str(second) = &list.items[1] else {
            panic!()
        };
        assert_eq!(&second[..], "é".as_bytes());
    }

    #[test]
    fn out_of_range_numbers_are_nil_and_the_rest_is_kept() {
        assert_eq!(shown("[1e400, -1e400, 1e-400, 2]"), "[nil nil 0 2]");
        assert_eq!(shown("1e400"), "nil");
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        assert_eq!(shown(r#"{"a": 1, "b": 2, "a": 3}"#), "map[a:3 b:2]");
    }

    #[test]
    fn anything_that_is_not_json_is_a_syntax_error() {
        for text in [
            "",
            " ",
            "[",
            "]",
            "{",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{1:2}",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "0x10",
            "tru",
            "nul",
            "True",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"a\nb\"",
            "\"\t\"",
            "1 2",
            "[1] x",
            "'a'",
            "NaN",
            "Infinity",
            "\u{feff}1",
        ] {
            assert_eq!(shown(text), "Syntax", "{text:?}");
        }
    }

    #[test]
    fn nesting_is_limited() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let read = |text: String| read_json(text.as_bytes(), usize::MAX).map(drop);
        assert_eq!(read(deep(super::MAX_JSON_DEPTH)), Ok(()));
        assert_eq!(
            read(deep(super::MAX_JSON_DEPTH + 1)),
            Err(JsonError::Syntax)
        );
        let objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        assert_eq!(read(objects(super::MAX_JSON_DEPTH)), Ok(()));
        assert_eq!(
            read(objects(super::MAX_JSON_DEPTH + 1)),
            Err(JsonError::Syntax)
        );
        // Far deeper input fails without overflowing the stack.
        assert_eq!(read(deep(1_000_000)), Err(JsonError::Syntax));
    }

    #[test]
    fn reading_stops_at_the_size_limit_and_agrees_with_the_footprint() {
        for text in [
            r#"[[], [], {"a": [1, "xyz", null]}, "\u00e9", true]"#,
            r#"{"k": {"k": {"k": "v"}}, "": [[[[]]]]}"#,
            r#""a string""#,
            r#"["\u00e9\ud800", 1, 2]"#,
        ] {
            let value = read_json(text.as_bytes(), usize::MAX).unwrap();
            let size = value.footprint(usize::MAX).unwrap();
            // Exactly at the limit it is read; one byte less and it is not.
            assert!(read_json(text.as_bytes(), size).is_ok(), "{text}");
            let cut = read_json(text.as_bytes(), size - 1).map(drop);
            assert_eq!(cut, Err(JsonError::TooLarge), "{text}");
        }
        // Three bytes of JSON per list: the size grows far faster than the text.
        let lists = format!("[{}[]]", "[],".repeat(10_000));
        let value = read_json(lists.as_bytes(), usize::MAX).unwrap();
        assert!(value.footprint(usize::MAX).unwrap() > 20 * lists.len());
    }

    const SECRET: &str = "correct horse battery staple";

    #[test]
    fn strings_with_escapes_leave_no_copy_behind() {
        // Escapes and invalid UTF-8 make the decoded string longer than its first estimate, so
        // its buffer grows; the allocation it leaves is wiped.
        let long = format!("{SECRET}\\u00e9\\n{}", "\u{e9}".repeat(40));
        retired::take();
        let mut text = format!("{{\"k\\u0065y\": \"{long}").into_bytes();
        text.extend_from_slice(b"\xff\xff\xff\"}");
        let value = read_json(&text, usize::MAX);
        let freed = retired::take();
        // The buffer grew once (by the last U+FFFD), leaving an allocation of the raw length.
        assert_eq!(freed.iter().map(Vec::len).max(), Some(long.len() + 3));
        assert!(freed.iter().flatten().all(|&byte| byte == 0));
        let Ok(Value::Map(map)) = value else { panic!() };
        let entries = map.entries.borrow();
        let Some(Value::Str(decoded)) = entries.get(b"key".as_slice()) else {
            panic!()
        };
        assert!(decoded.starts_with(format!("{SECRET}\u{e9}\n").as_bytes()));
        assert!(decoded.ends_with("\u{FFFD}\u{FFFD}\u{FFFD}".as_bytes()));
    }

    #[test]
    fn a_string_cut_off_by_an_error_leaves_no_copy_behind() {
        // The string is decoded up to the control character, then dropped with the parse.
        for text in [
            format!("{{\"a\": \"{SECRET}\\n{SECRET}\u{1}\"}}"),
            format!("[\"{SECRET}\\n{SECRET}"),
            format!("[\"{SECRET}\\q\"]"),
        ] {
            retired::take();
            assert!(read_json(text.as_bytes(), usize::MAX).is_err(), "{text:?}");
            let freed = retired::take();
            assert!(
                freed.iter().any(|block| block.len() >= SECRET.len()),
                "the decoded string is freed through its wiping buffer: {text:?}"
            );
            assert!(freed.iter().flatten().all(|&byte| byte == 0), "{text:?}");
        }
    }
}
