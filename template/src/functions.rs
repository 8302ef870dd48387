//! The function table: which names are defined, the Go signature of each (parameter types)
//! and its implementation.
//!
//! The parser asks it whether a name is defined and the executor how to call it; the
//! implementations (`builtins`, `sprig`) never refer back to it (what they share is in
//! [`crate::helpers`]).

use crate::builtins::{
    builtin_eq, builtin_ge, builtin_gt, builtin_html, builtin_index, builtin_js, builtin_le,
    builtin_len, builtin_lt, builtin_ne, builtin_not, builtin_print, builtin_printf,
    builtin_println, builtin_slice, builtin_urlquery,
};
use crate::sprig::{
    sprig_add, sprig_add1, sprig_adler32sum, sprig_append, sprig_atoi, sprig_b32dec, sprig_b32enc,
    sprig_b64dec, sprig_b64enc, sprig_cat, sprig_coalesce, sprig_contains, sprig_default,
    sprig_dict, sprig_div, sprig_empty, sprig_fail, sprig_first, sprig_float64, sprig_from_json,
    sprig_get, sprig_has, sprig_has_key, sprig_has_prefix, sprig_has_suffix, sprig_indent,
    sprig_int, sprig_join, sprig_keys, sprig_last, sprig_list, sprig_lower, sprig_max, sprig_min,
    sprig_mod, sprig_mul, sprig_nindent, sprig_nospace, sprig_quote, sprig_repeat, sprig_replace,
    sprig_required, sprig_set, sprig_sha1sum, sprig_sha256sum, sprig_sha512sum, sprig_sort_alpha,
    sprig_split, sprig_split_list, sprig_squote, sprig_sub, sprig_substr, sprig_ternary,
    sprig_title, sprig_to_json, sprig_to_pretty_json, sprig_to_raw_json, sprig_to_string,
    sprig_to_strings, sprig_trim, sprig_trim_all, sprig_trim_prefix, sprig_trim_suffix,
    sprig_trunc, sprig_unset, sprig_upper, sprig_values,
};
use crate::value::Value;

/// What a function parameter accepts, following the Go signature.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param {
    /// `interface{}`: anything; a missing value becomes nil.
    Any,
    /// `reflect.Value` of the builtins: anything, missing values included.
    Reflect,
    Str,
    Int,
    Bool,
    /// `map[string]interface{}`
    Map,
}

type Implementation = fn(&[Value]) -> Result<Value, String>;

#[derive(Clone, Copy)]
pub(crate) enum Call {
    And,
    Or,
    Plain(Implementation),
}

#[derive(Clone, Copy)]
pub(crate) struct Function {
    pub(crate) params: &'static [Param],
    pub(crate) variadic: Option<Param>,
    pub(crate) call: Call,
    /// The error message is the template author's (`fail`, `required`).
    pub(crate) user_message: bool,
    /// The function walks its arguments whole (prints, encodes, joins or compares lists and
    /// maps), so their printed size is charged before it runs.
    pub(crate) walks_args: bool,
}

/// Functions whose work grows with the printed size of their arguments.
const WALKING: &[&str] = &[
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "toString",
    "quote",
    "squote",
    "cat",
    "join",
    "toStrings",
    "sortAlpha",
    "has",
    "toJson",
    "toPrettyJson",
    "toRawJson",
];

impl Function {
    pub(crate) fn param(&self, index: usize) -> Param {
        self.params
            .get(index)
            .copied()
            .or(self.variadic)
            .unwrap_or(Param::Any)
    }
}

pub(crate) fn lookup_function(name: &str) -> Option<Function> {
    use Param::{Any, Bool, Int, Map, Reflect, Str};
    let fixed = |params: &'static [Param], call: Implementation| Function {
        params,
        variadic: None,
        call: Call::Plain(call),
        user_message: false,
        walks_args: false,
    };
    let variadic = |params: &'static [Param], rest: Param, call: Implementation| Function {
        params,
        variadic: Some(rest),
        call: Call::Plain(call),
        user_message: false,
        walks_args: false,
    };
    let function = match name {
        "and" | "or" => Function {
            params: &[Reflect],
            variadic: Some(Reflect),
            call: if name == "and" { Call::And } else { Call::Or },
            user_message: false,
            walks_args: false,
        },
        "not" => fixed(&[Reflect], builtin_not),
        "len" => fixed(&[Reflect], builtin_len),
        "index" => variadic(&[Reflect], Reflect, builtin_index),
        "slice" => variadic(&[Reflect], Reflect, builtin_slice),
        "print" => variadic(&[], Any, builtin_print),
        "printf" => variadic(&[Str], Any, builtin_printf),
        "println" => variadic(&[], Any, builtin_println),
        "eq" => variadic(&[Reflect], Reflect, builtin_eq),
        "ne" => fixed(&[Reflect, Reflect], builtin_ne),
        "lt" => fixed(&[Reflect, Reflect], builtin_lt),
        "le" => fixed(&[Reflect, Reflect], builtin_le),
        "gt" => fixed(&[Reflect, Reflect], builtin_gt),
        "ge" => fixed(&[Reflect, Reflect], builtin_ge),
        "html" => variadic(&[], Reflect, builtin_html),
        "js" => variadic(&[], Reflect, builtin_js),
        "urlquery" => variadic(&[], Reflect, builtin_urlquery),
        "toString" => fixed(&[Any], sprig_to_string),
        "quote" => variadic(&[], Any, sprig_quote),
        "squote" => variadic(&[], Any, sprig_squote),
        "trim" => fixed(&[Str], sprig_trim),
        "trimAll" | "trimall" => fixed(&[Str, Str], sprig_trim_all),
        "trimPrefix" => fixed(&[Str, Str], sprig_trim_prefix),
        "trimSuffix" => fixed(&[Str, Str], sprig_trim_suffix),
        "upper" => fixed(&[Str], sprig_upper),
        "lower" => fixed(&[Str], sprig_lower),
        "title" => fixed(&[Str], sprig_title),
        "replace" => fixed(&[Str, Str, Str], sprig_replace),
        "repeat" => fixed(&[Int, Str], sprig_repeat),
        "substr" => fixed(&[Int, Int, Str], sprig_substr),
        "trunc" => fixed(&[Int, Str], sprig_trunc),
        "contains" => fixed(&[Str, Str], sprig_contains),
        "hasPrefix" => fixed(&[Str, Str], sprig_has_prefix),
        "hasSuffix" => fixed(&[Str, Str], sprig_has_suffix),
        "cat" => variadic(&[], Any, sprig_cat),
        "indent" => fixed(&[Int, Str], sprig_indent),
        "nindent" => fixed(&[Int, Str], sprig_nindent),
        "nospace" => fixed(&[Str], sprig_nospace),
        "default" => variadic(&[Any], Any, sprig_default),
        "empty" => fixed(&[Any], sprig_empty),
        "coalesce" => variadic(&[], Any, sprig_coalesce),
        "ternary" => fixed(&[Any, Any, Bool], sprig_ternary),
        "required" => Function {
            user_message: true,
            ..fixed(&[Str, Any], sprig_required)
        },
        "fail" => Function {
            user_message: true,
            ..fixed(&[Str], sprig_fail)
        },
        "join" => fixed(&[Str, Any], sprig_join),
        "split" => fixed(&[Str, Str], sprig_split),
        "splitList" => fixed(&[Str, Str], sprig_split_list),
        "toStrings" => fixed(&[Any], sprig_to_strings),
        "sortAlpha" => fixed(&[Any], sprig_sort_alpha),
        "list" => variadic(&[], Any, sprig_list),
        "first" => fixed(&[Any], sprig_first),
        "last" => fixed(&[Any], sprig_last),
        "append" | "push" => fixed(&[Any, Any], sprig_append),
        "has" => fixed(&[Any, Any], sprig_has),
        "dict" => variadic(&[], Any, sprig_dict),
        "get" => fixed(&[Map, Str], sprig_get),
        "set" => fixed(&[Map, Str, Any], sprig_set),
        "unset" => fixed(&[Map, Str], sprig_unset),
        "hasKey" => fixed(&[Map, Str], sprig_has_key),
        "keys" => variadic(&[], Map, sprig_keys),
        "values" => fixed(&[Map], sprig_values),
        "toJson" => fixed(&[Any], sprig_to_json),
        "toPrettyJson" => fixed(&[Any], sprig_to_pretty_json),
        "toRawJson" => fixed(&[Any], sprig_to_raw_json),
        "fromJson" => fixed(&[Str], sprig_from_json),
        "b64enc" => fixed(&[Str], sprig_b64enc),
        "b64dec" => fixed(&[Str], sprig_b64dec),
        "b32enc" => fixed(&[Str], sprig_b32enc),
        "b32dec" => fixed(&[Str], sprig_b32dec),
        "sha1sum" => fixed(&[Str], sprig_sha1sum),
        "sha256sum" => fixed(&[Str], sprig_sha256sum),
        "sha512sum" => fixed(&[Str], sprig_sha512sum),
        "adler32sum" => fixed(&[Str], sprig_adler32sum),
        "atoi" => fixed(&[Str], sprig_atoi),
        "int" | "int64" => fixed(&[Any], sprig_int),
        "float64" => fixed(&[Any], sprig_float64),
        "add" => variadic(&[], Any, sprig_add),
        "add1" => fixed(&[Any], sprig_add1),
        "sub" => fixed(&[Any, Any], sprig_sub),
        "mul" => variadic(&[Any], Any, sprig_mul),
        "div" => fixed(&[Any, Any], sprig_div),
        "mod" => fixed(&[Any, Any], sprig_mod),
        "max" => variadic(&[Any], Any, sprig_max),
        "min" => variadic(&[Any], Any, sprig_min),
        _ => return None,
    };
    Some(Function {
        walks_args: WALKING.contains(&name),
        ..function
    })
}
