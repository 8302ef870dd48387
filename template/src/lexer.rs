//! The lexer: splits template text into text runs and the tokens of `{{ }}` actions.

use crate::strconv::go_quote_str;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyword {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "if" => Keyword::If,
            "else" => Keyword::Else,
            "end" => Keyword::End,
            "range" => Keyword::Range,
            "with" => Keyword::With,
            "define" => Keyword::Define,
            "template" => Keyword::Template,
            "block" => Keyword::Block,
            "break" => Keyword::Break,
            "continue" => Keyword::Continue,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Identifier,
    Keyword(Keyword),
    Field,
    Variable,
    Dot,
    Number,
    Char,
    String,
    RawString,
    Bool,
    Nil,
    LeftParen,
    RightParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    /// Any other printable ASCII character inside an action.
    Punct,
    Eof,
    Error(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte range of the token in the template text.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Splits a template into tokens; a lexical error becomes an `Error` token that ends the stream.
pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    paren_depth: usize,
    tokens: Vec<Token>,
}

fn is_trim_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Go's `%#U` rendering of a character, e.g. `U+007D '}'`.
fn describe_char(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

impl<'s> Lexer<'s> {
    pub(crate) fn lex(src: &'s str) -> Vec<Token> {
        let mut lexer = Lexer {
            src,
            pos: 0,
            paren_depth: 0,
            tokens: Vec::new(),
        };
        lexer.run();
        lexer.tokens
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            start,
            end: self.pos,
        });
    }

    fn error(&mut self, start: usize, message: impl Into<String>) {
        self.tokens.push(Token {
            kind: TokenKind::Error(message.into()),
            start,
            end: self.pos.max(start),
        });
    }

    fn run(&mut self) {
        let mut trim_leading = false;
        loop {
            if trim_leading {
                let skipped =
                    self.rest().len() - self.rest().trim_start_matches(is_trim_space).len();
                self.pos += skipped;
            }
            let text_start = self.pos;
            let Some(offset) = self.rest().find("{{") else {
                self.pos = self.src.len();
                if self.pos > text_start {
                    self.push(TokenKind::Text, text_start);
                }
                self.push(TokenKind::Eof, self.pos);
                return;
            };
            let delim = text_start + offset;
            let after = &self.src[delim + 2..];
            let trim_before = after.starts_with('-') && after[1..].starts_with(is_trim_space);
            let text = &self.src[text_start..delim];
            let text_end = if trim_before {
                text_start + text.trim_end_matches(is_trim_space).len()
            } else {
                delim
            };
            if text_end > text_start {
                self.tokens.push(Token {
                    kind: TokenKind::Text,
                    start: text_start,
                    end: text_end,
                });
            }
            self.pos = delim + 2 + if trim_before { 2 } else { 0 };
            let outcome = if self.rest().starts_with("/*") {
                self.lex_comment(delim)
            } else {
                self.tokens.push(Token {
                    kind: TokenKind::LeftDelim,
                    start: delim,
                    end: self.pos,
                });
                self.lex_action()
            };
            match outcome {
                Some(trim_after) => trim_leading = trim_after,
                None => return,
            }
        }
    }

    /// Recognises `}}` or ` -}}` at the current position: `(is delimiter, trims)`.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        let mut chars = rest.chars();
        if let (Some(first), Some('-')) = (chars.next(), chars.next())
            && is_trim_space(first)
            && rest[2..].starts_with("}}")
        {
            return (true, true);
        }
        (rest.starts_with("}}"), false)
    }

    /// Skips a comment; returns whether the following text is trimmed, or None on error.
    fn lex_comment(&mut self, start: usize) -> Option<bool> {
        let Some(end) = self.rest()[2..].find("*/") else {
            self.pos = self.src.len();
            self.error(start, "unclosed comment");
            return None;
        };
        self.pos += 2 + end + 2;
        match self.at_right_delim() {
            (true, trim) => {
                self.pos += if trim { 4 } else { 2 };
                Some(trim)
            }
            (false, _) => {
                self.error(start, "comment ends before closing delimiter");
                None
            }
        }
    }

    /// Lexes the inside of an action up to and including `}}`.
    fn lex_action(&mut self) -> Option<bool> {
        loop {
            let (is_delim, trim) = self.at_right_delim();
            if is_delim {
                let start = self.pos;
                if self.paren_depth > 0 {
                    self.error(start, "unclosed left paren");
                    return None;
                }
                self.pos += if trim { 4 } else { 2 };
                self.push(TokenKind::RightDelim, start);
                return Some(trim);
            }
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                self.error(start, "unclosed action");
                return None;
            };
            let lexed = match c {
                _ if is_trim_space(c) => {
                    self.lex_space();
                    Ok(())
                }
                '=' => self.single(TokenKind::Assign),
                ':' => {
                    if self.rest().starts_with(":=") {
                        self.pos += 2;
                        self.push(TokenKind::Declare, start);
                        Ok(())
                    } else {
                        Err("expected :=".to_string())
                    }
                }
                '|' => self.single(TokenKind::Pipe),
                ',' => self.single(TokenKind::Comma),
                '"' => self.lex_quoted('"', TokenKind::String, "unterminated quoted string"),
                '\'' => self.lex_quoted('\'', TokenKind::Char, "unterminated character constant"),
                '`' => self.lex_raw(),
                '$' => {
                    self.pos += 1;
                    self.lex_word(TokenKind::Variable, start)
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        self.lex_number()
                    } else {
                        self.pos += 1;
                        if next.is_some_and(is_alphanumeric) {
                            self.lex_word(TokenKind::Field, start)
                        } else {
                            self.push(TokenKind::Dot, start);
                            Ok(())
                        }
                    }
                }
                '+' | '-' | '0'..='9' => self.lex_number(),
                '(' => {
                    self.paren_depth += 1;
                    self.single(TokenKind::LeftParen)
                }
                ')' => {
                    if self.paren_depth == 0 {
                        Err(format!("unexpected right paren {}", describe_char(c)))
                    } else {
                        self.paren_depth -= 1;
                        self.single(TokenKind::RightParen)
                    }
                }
                _ if is_alphanumeric(c) => self.lex_identifier(),
                _ if c.is_ascii_graphic() => self.single(TokenKind::Punct),
                _ => Err(format!(
                    "unrecognized character in action: {}",
                    describe_char(c)
                )),
            };
            if let Err(message) = lexed {
                self.error(start, message);
                return None;
            }
        }
    }

    fn single(&mut self, kind: TokenKind) -> Result<(), String> {
        let start = self.pos;
        self.pos += self.peek_char().map_or(1, char::len_utf8);
        self.push(kind, start);
        Ok(())
    }

    fn lex_space(&mut self) {
        let start = self.pos;
        while let Some(c) = self.peek_char() {
            if !is_trim_space(c) || self.at_right_delim() == (true, true) {
                break;
            }
            self.pos += 1;
        }
        if self.pos > start {
            self.push(TokenKind::Space, start);
        }
    }

    fn lex_quoted(
        &mut self,
        quote: char,
        kind: TokenKind,
        unterminated: &str,
    ) -> Result<(), String> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((offset, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, next)) if next != '\n' => {}
                    _ => return Err(unterminated.to_string()),
                },
                '\n' => return Err(unterminated.to_string()),
                _ if c == quote => {
                    self.pos = start + offset + 1;
                    self.push(kind, start);
                    return Ok(());
                }
                _ => {}
            }
        }
        self.pos = self.src.len();
        Err(unterminated.to_string())
    }

    fn lex_raw(&mut self) -> Result<(), String> {
        let start = self.pos;
        match self.rest()[1..].find('`') {
            Some(end) => {
                self.pos = start + 1 + end + 1;
                self.push(TokenKind::RawString, start);
                Ok(())
            }
            None => {
                self.pos = self.src.len();
                Err("unterminated raw quoted string".to_string())
            }
        }
    }

    fn at_terminator(&self) -> bool {
        match self.peek_char() {
            None => true,
            Some(c) if is_trim_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with("}}"),
        }
    }

    /// Lexes the alphanumeric tail of a field or variable whose first character is consumed.
    fn lex_word(&mut self, kind: TokenKind, start: usize) -> Result<(), String> {
        let len = self
            .rest()
            .find(|c: char| !is_alphanumeric(c))
            .unwrap_or(self.rest().len());
        self.pos += len;
        if !self.at_terminator() {
            let c = self.peek_char().unwrap_or(' ');
            return Err(format!("bad character {}", describe_char(c)));
        }
        self.push(kind, start);
        Ok(())
    }

    fn lex_identifier(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.lex_word(TokenKind::Identifier, start)?;
        if let Some(token) = self.tokens.last_mut() {
            let word = &self.src[token.start..token.end];
            token.kind = match word {
                "true" | "false" => TokenKind::Bool,
                "nil" => TokenKind::Nil,
                _ => Keyword::from_word(word).map_or(TokenKind::Identifier, TokenKind::Keyword),
            };
        }
        Ok(())
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek_char() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn lex_number(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek_char().is_some_and(is_alphanumeric) {
            self.pos += self.peek_char().map_or(1, char::len_utf8);
            return Err(format!(
                "bad number syntax: {}",
                go_quote_str(&self.src[start..self.pos])
            ));
        }
        self.push(TokenKind::Number, start);
        Ok(())
    }
}
