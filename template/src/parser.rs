//! The syntax tree and the parser that builds it from tokens (literals are read with
//! [`crate::strconv`]).

use std::collections::HashMap;
use std::fmt::{self, Display};

use crate::error::TemplateError;
use crate::functions::lookup_function;
use crate::lexer::{Keyword, Lexer, Token, TokenKind};
use crate::limits::MAX_PARSE_DEPTH;
use crate::strconv::{Number, go_quote_str, parse_number, unquote};

// ---------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
pub(crate) enum Node {
    /// Literal text: a byte range of the template.
    Text(usize, usize),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// `if`, `range` and `with`: a pipeline, a body and an optional `else` body.
#[derive(Debug)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) body: Vec<Node>,
    pub(crate) otherwise: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Command>,
}

#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) struct Arg {
    pub(crate) pos: usize,
    pub(crate) kind: ArgKind,
}

#[derive(Debug)]
pub(crate) enum ArgKind {
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b` (`$x` with no fields)
    Variable(String, Vec<String>),
    /// `(pipe).a.b` and other terms followed by fields.
    Chain(Box<Arg>, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Number(Number),
    Str {
        value: Vec<u8>,
        text: String,
    },
    Function(String),
    Pipe(Box<Pipe>),
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[String]) -> fmt::Result {
    fields.iter().try_for_each(|field| write!(f, ".{field}"))
}

impl Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArgKind::Field(fields) => write_fields(f, fields),
            ArgKind::Variable(name, fields) => {
                f.write_str(name)?;
                write_fields(f, fields)
            }
            ArgKind::Chain(term, fields) => {
                write!(f, "{term}")?;
                write_fields(f, fields)
            }
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Number(number) => f.write_str(&number.text),
            ArgKind::Str { text, .. } => f.write_str(text),
            ArgKind::Function(name) => f.write_str(name),
            ArgKind::Pipe(pipe) => write!(f, "({pipe})"),
        }
    }
}

impl Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

/// The parsed templates: the main one and those made by `define` and `block`.
pub(crate) struct Templates {
    pub(crate) trees: HashMap<String, Vec<Node>>,
}

/// Is the tree nothing but white space (Go lets a `define` replace such a template)?
fn is_empty_tree(src: &str, nodes: &[Node]) -> bool {
    nodes.iter().all(|node| match node {
        Node::Text(start, end) => src.get(*start..*end).is_some_and(|t| t.trim().is_empty()),
        _ => false,
    })
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// What ended a list of nodes.
enum ListEnd {
    Eof,
    /// `{{end}}`
    End,
    /// `{{else}}`, or `{{else` followed by a pending `if` / `with`.
    Else,
}

type ParseResult<T> = Result<T, TemplateError>;

pub(crate) struct Parser<'s> {
    name: &'s str,
    src: &'s str,
    tokens: Vec<Token>,
    next: usize,
    /// Variables in scope.
    vars: Vec<String>,
    depth: usize,
    range_depth: usize,
    trees: HashMap<String, Vec<Node>>,
}

impl<'s> Parser<'s> {
    pub(crate) fn parse(name: &'s str, src: &'s str) -> ParseResult<Templates> {
        let mut parser = Parser {
            name,
            src,
            tokens: Lexer::lex(src),
            next: 0,
            vars: vec!["$".to_string()],
            depth: 0,
            range_depth: 0,
            trees: HashMap::new(),
        };
        let main = parser.parse_top_level()?;
        parser.add_tree(name.to_string(), main, 0)?;
        Ok(Templates {
            trees: parser.trees,
        })
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, _) = line_and_column(self.src, pos);
        TemplateError::Parse {
            name: self.name.to_string(),
            line,
            message: message.into(),
        }
    }

    fn token_text(&self, token: &Token) -> &'s str {
        self.src.get(token.start..token.end).unwrap_or("")
    }

    /// Go's rendering of a token in "unexpected …" messages.
    fn describe(&self, token: &Token) -> String {
        match &token.kind {
            TokenKind::Eof => "EOF".to_string(),
            TokenKind::Error(message) => message.clone(),
            TokenKind::Keyword(_) | TokenKind::Bool | TokenKind::Nil | TokenKind::Dot => {
                format!("<{}>", self.token_text(token))
            }
            _ => {
                let text = self.token_text(token);
                if text.chars().count() > 10 {
                    let head: String = text.chars().take(10).collect();
                    format!("{}...", go_quote_str(&head))
                } else {
                    go_quote_str(text)
                }
            }
        }
    }

    fn unexpected(&self, token: &Token, context: &str) -> TemplateError {
        if let TokenKind::Error(message) = &token.kind {
            return self.error_at(token.start, message.clone());
        }
        self.error_at(
            token.start,
            format!("unexpected {} in {context}", self.describe(token)),
        )
    }

    /// The next token; a lexical error stops parsing.
    fn next_token(&mut self) -> ParseResult<Token> {
        let index = self.next.min(self.tokens.len().saturating_sub(1));
        let token = self.tokens.get(index).cloned().unwrap_or(Token {
            kind: TokenKind::Eof,
            start: self.src.len(),
            end: self.src.len(),
        });
        if let TokenKind::Error(message) = &token.kind {
            return Err(self.error_at(token.start, message.clone()));
        }
        if token.kind != TokenKind::Eof {
            self.next += 1;
        }
        Ok(token)
    }

    fn peek(&mut self) -> ParseResult<Token> {
        let saved = self.next;
        let token = self.next_token();
        self.next = saved;
        token
    }

    fn next_non_space(&mut self) -> ParseResult<Token> {
        loop {
            let token = self.next_token()?;
            if token.kind != TokenKind::Space {
                return Ok(token);
            }
        }
    }

    fn peek_non_space(&mut self) -> ParseResult<Token> {
        let token = self.next_non_space()?;
        self.backup(&token);
        Ok(token)
    }

    /// Steps back over `token`, which was just returned.
    fn backup(&mut self, token: &Token) {
        if token.kind != TokenKind::Eof {
            self.next = self.next.saturating_sub(1);
        }
    }

    fn expect(&mut self, kind: TokenKind, context: &str) -> ParseResult<Token> {
        let token = self.next_non_space()?;
        if token.kind != kind {
            return Err(self.unexpected(&token, context));
        }
        Ok(token)
    }

    fn enter(&mut self, pos: usize) -> ParseResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.error_at(pos, "max expression depth exceeded"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Adds a template as Go does: a template that is only white space may be replaced.
    fn add_tree(&mut self, name: String, nodes: Vec<Node>, pos: usize) -> ParseResult<()> {
        match self.trees.get(&name) {
            Some(existing) if !is_empty_tree(self.src, existing) => {
                if is_empty_tree(self.src, &nodes) {
                    return Ok(());
                }
                Err(self.error_at(
                    pos,
                    format!(
                        "template: multiple definition of template {}",
                        go_quote_str(&name)
                    ),
                ))
            }
            _ => {
                self.trees.insert(name, nodes);
                Ok(())
            }
        }
    }

    fn parse_top_level(&mut self) -> ParseResult<Vec<Node>> {
        let mut nodes = Vec::new();
        loop {
            let token = self.peek()?;
            if token.kind == TokenKind::Eof {
                return Ok(nodes);
            }
            if token.kind == TokenKind::LeftDelim {
                let saved = self.next;
                self.next_token()?;
                if self.next_non_space()?.kind == TokenKind::Keyword(Keyword::Define) {
                    self.parse_definition(token.start)?;
                    continue;
                }
                self.next = saved;
            }
            match self.text_or_action()? {
                Parsed::Node(node) => nodes.push(node),
                Parsed::End(pos) => return Err(self.error_at(pos, "unexpected {{end}}")),
                Parsed::Else(pos) => return Err(self.error_at(pos, "unexpected {{else}}")),
            }
        }
    }

    /// Parses a list of nodes up to `{{end}}`, `{{else}}` or the end of the text.
    fn item_list(&mut self) -> ParseResult<(Vec<Node>, ListEnd, usize)> {
        let mut nodes = Vec::new();
        loop {
            let token = self.peek_non_space()?;
            if token.kind == TokenKind::Eof {
                return Ok((nodes, ListEnd::Eof, token.start));
            }
            match self.text_or_action()? {
                Parsed::Node(node) => nodes.push(node),
                Parsed::End(pos) => return Ok((nodes, ListEnd::End, pos)),
                Parsed::Else(pos) => return Ok((nodes, ListEnd::Else, pos)),
            }
        }
    }

    /// A list that must end with `{{end}}`.
    fn list_to_end(&mut self, context: &str) -> ParseResult<Vec<Node>> {
        let (nodes, end, pos) = self.item_list()?;
        match end {
            ListEnd::End => Ok(nodes),
            ListEnd::Else => {
                Err(self.error_at(pos, format!("unexpected {{{{else}}}} in {context}")))
            }
            ListEnd::Eof => Err(self.error_at(pos, "unexpected EOF")),
        }
    }

    fn parse_definition(&mut self, pos: usize) -> ParseResult<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space()?;
        let name = self.template_name(&token, CONTEXT)?;
        self.expect(TokenKind::RightDelim, CONTEXT)?;
        let nodes = self.in_new_scope(|parser| parser.list_to_end(CONTEXT))?;
        self.add_tree(name, nodes, pos)
    }

    /// Runs `body` with fresh variables (`$` only) and outside any `range`, as a new template.
    fn in_new_scope<T>(
        &mut self,
        body: impl FnOnce(&mut Self) -> ParseResult<T>,
    ) -> ParseResult<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let result = body(self);
        self.vars = vars;
        self.range_depth = range_depth;
        result
    }

    fn template_name(&self, token: &Token, context: &str) -> ParseResult<String> {
        match token.kind {
            TokenKind::String | TokenKind::RawString => {
                let bytes = unquote(self.token_text(token))
                    .map_err(|message| self.error_at(token.start, message))?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => Err(self.unexpected(token, context)),
        }
    }

    fn text_or_action(&mut self) -> ParseResult<Parsed> {
        let token = self.next_non_space()?;
        match token.kind {
            TokenKind::Text => Ok(Parsed::Node(Node::Text(token.start, token.end))),
            TokenKind::LeftDelim => self.action(),
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> ParseResult<Parsed> {
        let token = self.next_non_space()?;
        let node = match token.kind {
            TokenKind::Keyword(Keyword::Block) => self.block_control(token.start)?,
            TokenKind::Keyword(Keyword::Break) => self.loop_control(token.start, "break")?,
            TokenKind::Keyword(Keyword::Continue) => self.loop_control(token.start, "continue")?,
            TokenKind::Keyword(Keyword::Else) => {
                let next = self.peek_non_space()?;
                if !matches!(next.kind, TokenKind::Keyword(Keyword::If | Keyword::With)) {
                    self.expect(TokenKind::RightDelim, "else")?;
                }
                return Ok(Parsed::Else(token.start));
            }
            TokenKind::Keyword(Keyword::End) => {
                self.expect(TokenKind::RightDelim, "end")?;
                return Ok(Parsed::End(token.start));
            }
            TokenKind::Keyword(Keyword::If) => Node::If(self.parse_control("if", token.start)?),
            TokenKind::Keyword(Keyword::Range) => {
                Node::Range(self.parse_control("range", token.start)?)
            }
            TokenKind::Keyword(Keyword::With) => {
                Node::With(self.parse_control("with", token.start)?)
            }
            TokenKind::Keyword(Keyword::Template) => self.template_control(token.start)?,
            _ => {
                self.backup(&token);
                Node::Action(self.pipeline("command", TokenKind::RightDelim)?)
            }
        };
        Ok(Parsed::Node(node))
    }

    fn loop_control(&mut self, pos: usize, word: &str) -> ParseResult<Node> {
        let token = self.next_non_space()?;
        if token.kind != TokenKind::RightDelim {
            return Err(self.unexpected(&token, &format!("{{{{{word}}}}}")));
        }
        if self.range_depth == 0 {
            return Err(self.error_at(pos, format!("{{{{{word}}}}} outside {{{{range}}}}")));
        }
        Ok(if word == "break" {
            Node::Break
        } else {
            Node::Continue
        })
    }

    fn parse_control(&mut self, context: &str, pos: usize) -> ParseResult<Branch> {
        self.enter(pos)?;
        let saved_vars = self.vars.len();
        let result = self.parse_control_body(context);
        self.vars.truncate(saved_vars);
        self.leave();
        result
    }

    fn parse_control_body(&mut self, context: &str) -> ParseResult<Branch> {
        let pipe = self.pipeline(context, TokenKind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (body, end, end_pos) = listed?;
        let otherwise = match end {
            ListEnd::Eof => return Err(self.error_at(end_pos, "unexpected EOF")),
            ListEnd::End => None,
            ListEnd::Else => {
                let next = self.peek()?;
                match (context, &next.kind) {
                    ("if", TokenKind::Keyword(Keyword::If)) => {
                        self.next_token()?;
                        Some(vec![Node::If(self.parse_control("if", next.start)?)])
                    }
                    ("with", TokenKind::Keyword(Keyword::With)) => {
                        self.next_token()?;
                        Some(vec![Node::With(self.parse_control("with", next.start)?)])
                    }
                    _ => {
                        let (nodes, end, end_pos) = self.item_list()?;
                        match end {
                            ListEnd::End => Some(nodes),
                            ListEnd::Else => {
                                return Err(self.error_at(end_pos, "expected end; found {{else}}"));
                            }
                            ListEnd::Eof => return Err(self.error_at(end_pos, "unexpected EOF")),
                        }
                    }
                }
            }
        };
        Ok(Branch {
            pipe,
            body,
            otherwise,
        })
    }

    fn template_control(&mut self, pos: usize) -> ParseResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space()?;
        let name = self.template_name(&token, CONTEXT)?;
        let next = self.next_non_space()?;
        let pipe = if next.kind == TokenKind::RightDelim {
            None
        } else {
            self.backup(&next);
            Some(self.pipeline(CONTEXT, TokenKind::RightDelim)?)
        };
        Ok(Node::Template { pos, name, pipe })
    }

    fn block_control(&mut self, pos: usize) -> ParseResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space()?;
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, TokenKind::RightDelim)?;
        self.enter(pos)?;
        let body = self.in_new_scope(|parser| parser.list_to_end(CONTEXT));
        self.leave();
        self.add_tree(name.clone(), body?, pos)?;
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: TokenKind) -> ParseResult<Pipe> {
        let first = self.peek_non_space()?;
        let mut pipe = Pipe {
            pos: first.start,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let token = self.next_non_space()?;
            if token.kind == end {
                self.check_pipeline(&pipe, context, token.start)?;
                return Ok(pipe);
            }
            match token.kind {
                TokenKind::Bool
                | TokenKind::Char
                | TokenKind::Dot
                | TokenKind::Field
                | TokenKind::Identifier
                | TokenKind::Number
                | TokenKind::Nil
                | TokenKind::RawString
                | TokenKind::String
                | TokenKind::Variable
                | TokenKind::LeftParen => {
                    self.backup(&token);
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    /// Parses `$x :=`, `$x =` and, in `range`, `$i, $e :=`.
    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> ParseResult<()> {
        loop {
            let start = self.next;
            let variable = self.next_non_space()?;
            if variable.kind != TokenKind::Variable {
                self.next = start;
                return Ok(());
            }
            let name = self.token_text(&variable).to_string();
            let after = self.next_non_space()?;
            match after.kind {
                TokenKind::Declare | TokenKind::Assign => {
                    pipe.is_assign = after.kind == TokenKind::Assign;
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    return Ok(());
                }
                TokenKind::Comma => {
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        let next = self.peek_non_space()?;
                        if matches!(
                            next.kind,
                            TokenKind::Variable | TokenKind::RightDelim | TokenKind::RightParen
                        ) {
                            continue;
                        }
                        return Err(
                            self.error_at(next.start, "range can only initialize variables")
                        );
                    }
                    return Err(
                        self.error_at(after.start, format!("too many declarations in {context}"))
                    );
                }
                _ => {
                    self.next = start;
                    return Ok(());
                }
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str, pos: usize) -> ParseResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.error_at(pos, format!("missing value for {context}")));
        }
        for (stage, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = cmd.args.first()
                && matches!(
                    first.kind,
                    ArgKind::Bool(_)
                        | ArgKind::Dot
                        | ArgKind::Nil
                        | ArgKind::Number(_)
                        | ArgKind::Str { .. }
                )
            {
                return Err(self.error_at(
                    cmd.pos,
                    format!("non executable command in pipeline stage {}", stage + 1),
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> ParseResult<Command> {
        let first = self.peek_non_space()?;
        let mut cmd = Command {
            pos: first.start,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space()?;
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next_token()?;
            match token.kind {
                TokenKind::Space => continue,
                TokenKind::RightDelim | TokenKind::RightParen => self.backup(&token),
                TokenKind::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.error_at(cmd.pos, "empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> ParseResult<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        // Go positions a chained field at its first chained part (`.b` in `.a.b`).
        let mut pos = term.pos;
        loop {
            let token = self.peek()?;
            if token.kind != TokenKind::Field {
                break;
            }
            if fields.is_empty() {
                pos = token.start;
            }
            self.next_token()?;
            fields.push(self.token_text(&token)[1..].to_string());
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        let kind = match term.kind {
            ArgKind::Field(mut head) => {
                head.append(&mut fields);
                ArgKind::Field(head)
            }
            ArgKind::Variable(name, mut head) => {
                head.append(&mut fields);
                ArgKind::Variable(name, head)
            }
            ArgKind::Bool(_)
            | ArgKind::Str { .. }
            | ArgKind::Number(_)
            | ArgKind::Nil
            | ArgKind::Dot => {
                return Err(self.error_at(
                    pos,
                    format!(
                        "unexpected . after term {}",
                        go_quote_str(&term.to_string())
                    ),
                ));
            }
            _ => ArgKind::Chain(Box::new(term), fields),
        };
        Ok(Some(Arg { pos, kind }))
    }

    fn term(&mut self) -> ParseResult<Option<Arg>> {
        let token = self.next_non_space()?;
        let text = self.token_text(&token);
        let pos = token.start;
        let kind = match token.kind {
            TokenKind::Identifier => {
                if lookup_function(text).is_none() {
                    return Err(
                        self.error_at(pos, format!("function {} not defined", go_quote_str(text)))
                    );
                }
                ArgKind::Function(text.to_string())
            }
            TokenKind::Dot => ArgKind::Dot,
            TokenKind::Nil => ArgKind::Nil,
            TokenKind::Variable => {
                if !self.vars.iter().any(|var| var == text) {
                    return Err(
                        self.error_at(pos, format!("undefined variable {}", go_quote_str(text)))
                    );
                }
                ArgKind::Variable(text.to_string(), Vec::new())
            }
            TokenKind::Field => ArgKind::Field(vec![text[1..].to_string()]),
            TokenKind::Bool => ArgKind::Bool(text == "true"),
            TokenKind::Number | TokenKind::Char => ArgKind::Number(
                parse_number(text, token.kind == TokenKind::Char)
                    .map_err(|message| self.error_at(pos, message))?,
            ),
            TokenKind::LeftParen => {
                self.enter(pos)?;
                let pipe = self.pipeline("parenthesized pipeline", TokenKind::RightParen);
                self.leave();
                ArgKind::Pipe(Box::new(pipe?))
            }
            TokenKind::String | TokenKind::RawString => ArgKind::Str {
                value: unquote(text).map_err(|message| self.error_at(pos, message))?,
                text: text.to_string(),
            },
            _ => {
                self.backup(&token);
                return Ok(None);
            }
        };
        Ok(Some(Arg { pos, kind }))
    }
}

/// One parsed element of a list, or the keyword that ends the list.
enum Parsed {
    Node(Node),
    End(usize),
    Else(usize),
}

/// Line (from 1) and byte column (from 0) of a byte offset, as Go reports them.
pub(crate) fn line_and_column(src: &str, pos: usize) -> (usize, usize) {
    let before = src.as_bytes().get(..pos.min(src.len())).unwrap_or_default();
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(before.len(), |newline| before.len() - newline - 1);
    (line, column)
}
