//! The values templates work with: Go's strings (any bytes), numbers, booleans, nil, lists
//! and maps, and helpers for iterating Go strings rune by rune.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A value during execution, mirroring the Go types templates see.
#[derive(Clone, Debug)]
pub(super) enum Value {
    /// Go's invalid `reflect.Value`, e.g. a missing map key; prints as `<no value>`.
    Missing,
    /// An untyped `nil`; prints as `<nil>`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Go string: any bytes.
    Str(Rc<[u8]>),
    /// `[]interface{}` (and `[]string`).
    List(Rc<ListValue>),
    /// `map[string]interface{}` (and `map[string]string`); shared, since `set` mutates it.
    Map(Rc<MapValue>),
}

/// The elements of a list.
#[derive(Debug, Default)]
pub(super) struct ListValue {
    pub(super) items: Vec<Value>,
}

/// The entries of a map, kept sorted by key as Go sorts keys when printing and ranging.
#[derive(Debug, Default)]
pub(super) struct MapValue {
    pub(super) entries: RefCell<BTreeMap<Vec<u8>, Value>>,
    /// True for Go's `map[string]string` (the data), false for `map[string]interface{}`.
    pub(super) string_elems: bool,
}

impl Drop for ListValue {
    fn drop(&mut self) {
        drop_iteratively(std::mem::take(&mut self.items));
    }
}

impl Drop for MapValue {
    fn drop(&mut self) {
        let entries = std::mem::take(self.entries.get_mut());
        drop_iteratively(entries.into_values().collect());
    }
}

/// Drops nested lists and maps without recursion, so deeply nested values can't overflow
/// the stack.
fn drop_iteratively(mut pending: Vec<Value>) {
    while let Some(value) = pending.pop() {
        match value {
            Value::List(list) => {
                if let Some(mut list) = Rc::into_inner(list) {
                    pending.append(&mut list.items);
                }
            }
            Value::Map(map) => {
                if let Some(mut map) = Rc::into_inner(map) {
                    let entries = std::mem::take(map.entries.get_mut());
                    pending.extend(entries.into_values());
                }
            }
            _ => {}
        }
    }
}

impl Value {
    pub(super) fn str(bytes: impl AsRef<[u8]>) -> Value {
        Value::Str(Rc::from(bytes.as_ref()))
    }

    pub(super) fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(ListValue { items }))
    }

    pub(super) fn map(entries: BTreeMap<Vec<u8>, Value>) -> Value {
        Value::Map(Rc::new(MapValue {
            entries: RefCell::new(entries),
            string_elems: false,
        }))
    }

    /// The data: Go's `map[string]string`.
    pub(super) fn string_map(values: &BTreeMap<String, Vec<u8>>) -> Value {
        let entries = values
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), Value::str(value)))
            .collect();
        Value::Map(Rc::new(MapValue {
            entries: RefCell::new(entries),
            string_elems: true,
        }))
    }

    /// Go's name of the value's type, for error messages.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Missing => "<invalid Value>",
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(map) if map.string_elems => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    /// Go's notion of truth used by `if`, `with`, `and`, `or` and `not`.
    pub(super) fn is_true(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(list) => !list.items.is_empty(),
            Value::Map(map) => map.entries.try_borrow().map_or(true, |e| !e.is_empty()),
        }
    }

    /// Sprig's `empty`: the zero value of its type, or nil.
    pub(super) fn is_empty(&self) -> bool {
        !self.is_true()
    }

    pub(super) fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// The bytes of a string (empty for other values; callers check types first).
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Value::Str(s) => s,
            _ => &[],
        }
    }

    /// The integer (0 for other values; callers check types first).
    pub(super) fn int(&self) -> i64 {
        match self {
            Value::Int(i) => *i,
            _ => 0,
        }
    }

    /// A snapshot of a map's entries.
    pub(super) fn map_entries(map: &MapValue) -> Vec<(Vec<u8>, Value)> {
        map.entries
            .try_borrow()
            .map(|entries| {
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Splits into UTF-8 sequences, each invalid byte on its own (Go's rune iteration).
pub(super) fn utf8_units(s: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    for chunk in s.utf8_chunks() {
        let valid = chunk.valid();
        let mut offset = 0;
        for c in valid.chars() {
            units.push(&valid.as_bytes()[offset..offset + c.len_utf8()]);
            offset += c.len_utf8();
        }
        units.extend(chunk.invalid().chunks(1));
    }
    units
}
