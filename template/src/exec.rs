//! The executor: walks the syntax tree with the data, handling control flow (`if`, `with`,
//! `range`, `break`, `continue`), variables, template calls, field access, function calls and
//! the coercion of arguments to parameter types, and enforces the execution limits: every
//! operation, every byte a function produces and every byte written is charged to the
//! SealedSecret's [`Budget`], and functions that walk a whole list or map (printing, encoding,
//! joining, comparing) have its printed size charged before they start.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::rc::Rc;

use zeroize::Zeroize;

use crate::budget::{Budget, MAX_ALLOCATED_BYTES, MAX_RENDERED_BYTES, MAX_STEPS};
use crate::error::TemplateError;
use crate::functions::{Call, Param, lookup_function};
use crate::limits::{MAX_EXEC_DEPTH, MAX_STRING};
use crate::parser::{Arg, ArgKind, Branch, Command, Node, Pipe, Templates, line_and_column};
use crate::printf::format_default;
use crate::strconv::{NumberValue, go_quote_str};
use crate::value::{ListValue, SecretBytes, Value};
use crate::wiping::WipingBuf;

/// How a list of nodes finished.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

type ExecResult<T> = Result<T, TemplateError>;

/// The state of one render.
pub(crate) struct State<'t> {
    name: &'t str,
    src: &'t str,
    templates: &'t Templates,
    /// Name of the template being executed.
    executing: String,
    vars: Vec<(String, Value)>,
    /// The rendered bytes; growing wipes the allocation they leave.
    pub(crate) out: WipingBuf,
    depth: usize,
    /// The SealedSecret's budget, shared with the templates rendered before this one.
    pub(crate) budget: Budget,
}

/// Where an error happened: a position in the template and the text of the failing part.
#[derive(Clone, Copy)]
struct At<'a> {
    pos: usize,
    what: &'a dyn Display,
}

impl<'t> State<'t> {
    pub(crate) fn new(
        name: &'t str,
        src: &'t str,
        templates: &'t Templates,
        budget: Budget,
    ) -> Self {
        State {
            name,
            src,
            templates,
            executing: name.to_string(),
            vars: Vec::new(),
            out: WipingBuf::new(),
            depth: 0,
            budget,
        }
    }

    pub(crate) fn execute_main(&mut self, root: Value) -> ExecResult<()> {
        let Some(tree) = self.templates.trees.get(self.name) else {
            return Err(
                self.limit_error(format!("no template {} defined", go_quote_str(self.name)))
            );
        };
        self.vars = vec![("$".to_string(), root.clone())];
        self.walk(&root, tree)?;
        Ok(())
    }

    fn error(&self, at: At<'_>, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_and_column(self.src, at.pos);
        let mut context = at.what.to_string();
        if context.chars().count() > 20 {
            context = context.chars().take(20).collect::<String>() + "...";
        }
        TemplateError::Exec {
            name: self.name.to_string(),
            line,
            column,
            executing: self.executing.clone(),
            context,
            message: message.into(),
        }
    }

    fn limit_error(&self, message: impl Into<String>) -> TemplateError {
        TemplateError::Limit {
            name: self.name.to_string(),
            message: message.into(),
        }
    }

    fn step(&mut self) -> ExecResult<()> {
        self.steps(1)
    }

    fn steps(&mut self, count: u64) -> ExecResult<()> {
        self.budget.steps = self.budget.steps.saturating_add(count);
        if self.budget.steps > MAX_STEPS {
            return Err(self.limit_error(format!(
                "execution stopped: the SealedSecret's templates ran more than {MAX_STEPS} operations (limit per SealedSecret)"
            )));
        }
        Ok(())
    }

    fn rendered_limit_error(&self) -> TemplateError {
        self.limit_error(format!(
            "the SealedSecret's templates rendered more than {MAX_RENDERED_BYTES} bytes (limit per SealedSecret)"
        ))
    }

    fn allocated_limit_error(&self) -> TemplateError {
        self.limit_error(format!(
            "the SealedSecret's template functions produced more than {MAX_ALLOCATED_BYTES} bytes (limit per SealedSecret)"
        ))
    }

    fn enter(&mut self) -> ExecResult<()> {
        self.depth += 1;
        if self.depth > MAX_EXEC_DEPTH {
            return Err(self.limit_error(format!(
                "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn write(&mut self, bytes: &[u8]) -> ExecResult<()> {
        if bytes.len() > self.budget.rendered_left() {
            return Err(self.rendered_limit_error());
        }
        self.budget.rendered += bytes.len();
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Counts what a function produced against the limits: the bytes of a string, or for a
    /// list or map its slots plus every string, list and map in it that the call made
    /// ([`Value::footprint`]; elements it shares with other values were charged when made).
    fn account(&mut self, value: &Value) -> ExecResult<()> {
        let size = match value {
            Value::Str(s) => s.len(),
            Value::List(_) | Value::Map(_) => value.footprint(MAX_STRING).unwrap_or(usize::MAX),
            _ => 0,
        };
        if size > MAX_STRING {
            return Err(self.limit_error(format!("a value is larger than {MAX_STRING} bytes")));
        }
        if size > self.budget.allocated_left() {
            return Err(self.allocated_limit_error());
        }
        self.budget.allocated += size;
        Ok(())
    }

    /// Charges a function that walks its whole arguments (printing, encoding, joining or
    /// comparing them) before it runs: their printed size must fit in what may still be
    /// produced (and in one value), and the walk costs one step per element.
    fn charge_walk(&mut self, args: &[Value]) -> ExecResult<()> {
        let cap = self.budget.allocated_left().min(MAX_STRING);
        let mut visited = 0u64;
        let mut total = 0usize;
        let mut fits = true;
        for arg in args {
            match arg.printed_size(cap - total, &mut visited) {
                Some(size) => total += size,
                None => {
                    fits = false;
                    break;
                }
            }
        }
        self.steps(visited)?;
        if fits {
            Ok(())
        } else if cap < MAX_STRING {
            Err(self.allocated_limit_error())
        } else {
            Err(self.limit_error(format!(
                "the arguments of a function are larger than {MAX_STRING} bytes"
            )))
        }
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> ExecResult<Flow> {
        for node in nodes {
            self.step()?;
            let flow = match node {
                Node::Text(start, end) => {
                    let text = self.src.as_bytes().get(*start..*end).unwrap_or_default();
                    self.write(text)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print_value(&value)?;
                    }
                    Flow::Normal
                }
                Node::If(branch) => self.walk_if_or_with(dot, branch, false)?,
                Node::With(branch) => self.walk_if_or_with(dot, branch, true)?,
                Node::Range(branch) => self.walk_range(dot, branch)?,
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref())?
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn print_value(&mut self, value: &Value) -> ExecResult<()> {
        match value {
            Value::Missing => self.write(b"<no value>"),
            Value::Str(s) => self.write(s),
            other => {
                let mut visited = 0u64;
                let fits = other
                    .printed_size(self.budget.rendered_left(), &mut visited)
                    .is_some();
                self.steps(visited)?;
                if !fits {
                    return Err(self.rendered_limit_error());
                }
                let mut text = WipingBuf::new();
                format_default(other, &mut text, 0);
                self.write(&text)
            }
        }
    }

    fn walk_if_or_with(&mut self, dot: &Value, branch: &Branch, is_with: bool) -> ExecResult<Flow> {
        self.enter()?;
        let mark = self.vars.len();
        let result = self.eval_pipeline(dot, &branch.pipe).and_then(|value| {
            if value.is_true() {
                let body_dot = if is_with { &value } else { dot };
                self.walk(body_dot, &branch.body)
            } else if let Some(otherwise) = &branch.otherwise {
                self.walk(dot, otherwise)
            } else {
                Ok(Flow::Normal)
            }
        });
        self.vars.truncate(mark);
        self.leave();
        result
    }

    fn walk_range(&mut self, dot: &Value, branch: &Branch) -> ExecResult<Flow> {
        self.enter()?;
        let outer_mark = self.vars.len();
        let result = self.walk_range_items(dot, branch);
        self.vars.truncate(outer_mark);
        self.leave();
        result.map(|_| Flow::Normal)
    }

    fn walk_range_items(&mut self, dot: &Value, branch: &Branch) -> ExecResult<()> {
        let pipe = &branch.pipe;
        let value = self.eval_pipeline(dot, pipe)?;
        let at = At {
            pos: pipe.pos,
            what: pipe,
        };
        let items = match &value {
            Value::List(list) => RangeItems::List(list.clone()),
            Value::Map(map) => RangeItems::Entries(Value::map_entries(map)),
            Value::Int(count) => {
                if pipe.decl.len() > 1 {
                    return Err(
                        self.error(at, "can't use int to iterate over more than one variable")
                    );
                }
                RangeItems::Count(*count)
            }
            Value::Missing | Value::Nil => RangeItems::Count(0),
            other => {
                return Err(self.error(
                    at,
                    format!(
                        "range can't iterate over value of type {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let mark = self.vars.len();
        let count = items.len();
        for position in 0..count {
            self.step()?;
            let (index, elem) = items.get(position);
            self.bind_range_vars(at, pipe, mark, index, elem.clone())?;
            let flow = self.walk(&elem, &branch.body);
            self.vars.truncate(mark);
            if flow? == Flow::Break {
                break;
            }
        }
        if count == 0
            && let Some(otherwise) = &branch.otherwise
        {
            self.walk(dot, otherwise)?;
        }
        Ok(())
    }

    fn bind_range_vars(
        &mut self,
        at: At<'_>,
        pipe: &Pipe,
        mark: usize,
        index: Value,
        elem: Value,
    ) -> ExecResult<()> {
        match (pipe.decl.as_slice(), pipe.is_assign) {
            ([], _) => Ok(()),
            ([only], true) => self.set_var(at, only, elem),
            ([first, second, ..], true) => {
                self.set_var(at, first, index)?;
                self.set_var(at, second, elem)
            }
            (decl, false) => {
                if let Some(slot) = mark.checked_sub(1).and_then(|i| self.vars.get_mut(i)) {
                    slot.1 = elem;
                }
                if decl.len() > 1
                    && let Some(slot) = mark.checked_sub(2).and_then(|i| self.vars.get_mut(i))
                {
                    slot.1 = index;
                }
                Ok(())
            }
        }
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        pipe: Option<&Pipe>,
    ) -> ExecResult<Flow> {
        let description = TemplateCall { name, pipe };
        let at = At {
            pos,
            what: &description,
        };
        let Some(tree) = self.templates.trees.get(name) else {
            return Err(self.error(at, format!("template {} not defined", go_quote_str(name))));
        };
        let new_dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Missing,
        };
        self.enter()?;
        let vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
        let executing = std::mem::replace(&mut self.executing, name.to_string());
        let result = self.walk(&new_dot, tree);
        self.vars = vars;
        self.executing = executing;
        self.leave();
        result.map(|_| Flow::Normal)
    }

    fn set_var(&mut self, at: At<'_>, name: &str, value: Value) -> ExecResult<()> {
        match self.vars.iter_mut().rev().find(|(var, _)| var == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.error(at, format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, at: At<'_>, name: &str) -> ExecResult<Value> {
        match self.vars.iter().rev().find(|(var, _)| var == name) {
            Some((_, value)) => Ok(value.clone()),
            None => Err(self.error(at, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> ExecResult<Value> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value.take())?);
        }
        let value = value.unwrap_or(Value::Missing);
        for var in &pipe.decl {
            if pipe.is_assign {
                let at = At {
                    pos: pipe.pos,
                    what: pipe,
                };
                self.set_var(at, var, value.clone())?;
            } else {
                self.vars.push((var.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &Command,
        last: Option<Value>,
    ) -> ExecResult<Value> {
        self.step()?;
        let at = At {
            pos: cmd.pos,
            what: cmd,
        };
        let Some(first) = cmd.args.first() else {
            return Err(self.error(at, "empty command"));
        };
        let has_args = cmd.args.len() > 1 || last.is_some();
        match &first.kind {
            ArgKind::Field(fields) => self.eval_field_chain(first, dot.clone(), fields, has_args),
            ArgKind::Chain(term, fields) => {
                let receiver = self.eval_chain_term(first, dot, term)?;
                self.eval_field_chain(first, receiver, fields, has_args)
            }
            ArgKind::Variable(name, fields) => {
                let value = self.var_value(at, name)?;
                if fields.is_empty() {
                    self.not_a_function(at, first, has_args)?;
                    Ok(value)
                } else {
                    self.eval_field_chain(first, value, fields, has_args)
                }
            }
            ArgKind::Function(name) => self.eval_function(dot, at, name, &cmd.args[1..], last),
            ArgKind::Pipe(pipe) => {
                self.not_a_function(at, first, has_args)?;
                self.enter()?;
                let value = self.eval_pipeline(dot, pipe);
                self.leave();
                value
            }
            ArgKind::Nil => Err(self.error(at, "nil is not a command")),
            ArgKind::Dot | ArgKind::Bool(_) | ArgKind::Number(_) | ArgKind::Str { .. } => {
                self.not_a_function(at, first, has_args)?;
                self.eval_arg(dot, first)
            }
        }
    }

    fn not_a_function(&self, at: At<'_>, first: &Arg, has_args: bool) -> ExecResult<()> {
        if has_args {
            return Err(self.error(at, format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_chain_term(&mut self, node: &Arg, dot: &Value, term: &Arg) -> ExecResult<Value> {
        if matches!(term.kind, ArgKind::Nil) {
            let at = At {
                pos: node.pos,
                what: node,
            };
            return Err(self.error(at, format!("indirection through explicit nil in {node}")));
        }
        self.eval_arg(dot, term)
    }

    fn eval_field_chain(
        &mut self,
        node: &Arg,
        receiver: Value,
        fields: &[String],
        has_args: bool,
    ) -> ExecResult<Value> {
        let mut value = receiver;
        for (i, field) in fields.iter().enumerate() {
            let last = i + 1 == fields.len();
            value = self.eval_field(node, field, value, last && has_args)?;
        }
        Ok(value)
    }

    fn eval_field(
        &self,
        node: &Arg,
        field: &str,
        receiver: Value,
        has_args: bool,
    ) -> ExecResult<Value> {
        let at = At {
            pos: node.pos,
            what: node,
        };
        match receiver {
            Value::Missing => Ok(Value::Missing),
            Value::Map(map) => {
                if has_args {
                    return Err(
                        self.error(at, format!("{field} is not a method but has arguments"))
                    );
                }
                let entries = map
                    .entries
                    .try_borrow()
                    .map_err(|_| self.error(at, "map is being modified"))?;
                Ok(entries
                    .get(field.as_bytes())
                    .cloned()
                    .unwrap_or(Value::Missing))
            }
            Value::Nil => {
                Err(self.error(at, format!("nil pointer evaluating interface {{}}.{field}")))
            }
            other => Err(self.error(
                at,
                format!("can't evaluate field {field} in type {}", other.type_name()),
            )),
        }
    }

    /// Evaluates an argument of a function (missing values stay missing).
    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> ExecResult<Value> {
        let at = At {
            pos: arg.pos,
            what: arg,
        };
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Value::Nil),
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Str { value, .. } => Ok(Value::str(value)),
            ArgKind::Number(number) => match number.value {
                NumberValue::Int(i) => Ok(Value::Int(i)),
                NumberValue::Float(f) => Ok(Value::Float(f)),
                NumberValue::TooLarge => {
                    Err(self.error(at, format!("{} overflows int", number.text)))
                }
            },
            ArgKind::Field(fields) => self.eval_field_chain(arg, dot.clone(), fields, false),
            ArgKind::Variable(name, fields) => {
                let value = self.var_value(at, name)?;
                self.eval_field_chain(arg, value, fields, false)
            }
            ArgKind::Chain(term, fields) => {
                let receiver = self.eval_chain_term(arg, dot, term)?;
                self.eval_field_chain(arg, receiver, fields, false)
            }
            ArgKind::Pipe(pipe) => {
                self.enter()?;
                let value = self.eval_pipeline(dot, pipe);
                self.leave();
                value
            }
            ArgKind::Function(name) => self.eval_function(dot, at, name, &[], None),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        at: At<'_>,
        name: &str,
        arg_nodes: &[Arg],
        last: Option<Value>,
    ) -> ExecResult<Value> {
        let Some(function) = lookup_function(name) else {
            return Err(self.error(
                at,
                format!("{} is not a defined function", go_quote_str(name)),
            ));
        };
        let given = arg_nodes.len() + usize::from(last.is_some());
        let fixed = function.params.len();
        match function.variadic {
            None if given != fixed => {
                return Err(self.error(
                    at,
                    format!("wrong number of args for {name}: want {fixed} got {given}"),
                ));
            }
            Some(_) if given < fixed => {
                return Err(self.error(
                    at,
                    format!("wrong number of args for {name}: want at least {fixed} got {given}"),
                ));
            }
            _ => {}
        }
        let call = match function.call {
            Call::And => return self.eval_and_or(dot, arg_nodes, last, false),
            Call::Or => return self.eval_and_or(dot, arg_nodes, last, true),
            Call::Plain(call) => call,
        };
        let mut args = Vec::with_capacity(given);
        for node in arg_nodes {
            let value = self.eval_arg(dot, node)?;
            let param = function.param(args.len());
            let value = coerce(param, value).map_err(|message| {
                self.error(
                    At {
                        pos: node.pos,
                        what: node,
                    },
                    message,
                )
            })?;
            args.push(value);
        }
        if let Some(value) = last {
            let param = function.param(args.len());
            args.push(coerce(param, value).map_err(|message| self.error(at, message))?);
        }
        self.step()?;
        if function.walks_args {
            self.charge_walk(&args)?;
        }
        match call(&args) {
            Ok(result) => {
                self.account(&result)?;
                Ok(result)
            }
            Err(message) => {
                let message = if function.user_message && !is_string_literal(arg_nodes.first()) {
                    // The message may be made of template data: wipe it.
                    let mut message = message;
                    message.zeroize();
                    "the message is withheld because it is not a string literal".to_string()
                } else {
                    message
                };
                Err(self.error(at, format!("error calling {name}: {message}")))
            }
        }
    }

    /// `and` / `or`: evaluate arguments until one decides the result, and return that one.
    fn eval_and_or(
        &mut self,
        dot: &Value,
        arg_nodes: &[Arg],
        last: Option<Value>,
        is_or: bool,
    ) -> ExecResult<Value> {
        let mut value = Value::Missing;
        for node in arg_nodes {
            value = self.eval_arg(dot, node)?;
            if value.is_true() == is_or {
                return Ok(value);
            }
        }
        Ok(last.unwrap_or(value))
    }
}

fn is_string_literal(arg: Option<&Arg>) -> bool {
    matches!(arg.map(|arg| &arg.kind), Some(ArgKind::Str { .. }))
}

/// `{{template "name" pipe}}`, for error messages.
struct TemplateCall<'a> {
    name: &'a str,
    pipe: Option<&'a Pipe>,
}

impl Display for TemplateCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{template {}", go_quote_str(self.name))?;
        if let Some(pipe) = self.pipe {
            write!(f, " {pipe}")?;
        }
        f.write_str("}}")
    }
}

/// What `range` iterates over.
enum RangeItems {
    List(Rc<ListValue>),
    Entries(Vec<(SecretBytes, Value)>),
    Count(i64),
}

impl RangeItems {
    fn len(&self) -> usize {
        match self {
            RangeItems::List(list) => list.items.len(),
            RangeItems::Entries(entries) => entries.len(),
            RangeItems::Count(count) => usize::try_from(*count).unwrap_or(0),
        }
    }

    /// The index (or key) and element at `position`.
    fn get(&self, position: usize) -> (Value, Value) {
        let index = Value::Int(i64::try_from(position).unwrap_or(i64::MAX));
        match self {
            RangeItems::List(list) => (
                index,
                list.items.get(position).cloned().unwrap_or(Value::Nil),
            ),
            RangeItems::Entries(entries) => entries
                .get(position)
                .map(|(key, value)| (Value::str(&key[..]), value.clone()))
                .unwrap_or((Value::Nil, Value::Nil)),
            RangeItems::Count(_) => (index.clone(), index),
        }
    }
}

/// Converts an argument to what a function parameter accepts, as Go's reflection would.
fn coerce(param: Param, value: Value) -> Result<Value, String> {
    let wrong = |expected: &str, value: &Value| {
        if value.is_nil() {
            format!("invalid value; expected {expected}")
        } else {
            format!(
                "wrong type for value; expected {expected}; got {}",
                value.type_name()
            )
        }
    };
    match (param, value) {
        (Param::Reflect, value) => Ok(value),
        (Param::Any, Value::Missing) => Ok(Value::Nil),
        (Param::Any, value) => Ok(value),
        (Param::Str, value @ Value::Str(_)) => Ok(value),
        (Param::Int, value @ Value::Int(_)) => Ok(value),
        (Param::Bool, value @ Value::Bool(_)) => Ok(value),
        (Param::Map, Value::Missing | Value::Nil) => Ok(Value::map(BTreeMap::new())),
        (Param::Map, Value::Map(map)) if !map.string_elems => Ok(Value::Map(map)),
        (Param::Str, value) => Err(wrong("string", &value)),
        (Param::Int, value) => Err(wrong("int", &value)),
        (Param::Bool, value) => Err(wrong("bool", &value)),
        (Param::Map, value) => Err(wrong("map[string]interface {}", &value)),
    }
}
