//! The values templates work with: Go's strings (any bytes), numbers, booleans, nil, lists
//! and maps, and helpers for iterating Go strings rune by rune.
//!
//! Strings hold decrypted items and everything derived from them, so their bytes (and the keys
//! of maps, which `dict` can build from values) are wiped when the last reference goes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Deref;
use std::rc::Rc;

use zeroize::{Zeroize, Zeroizing};

use crate::limits::MAX_VALUE_DEPTH;
use crate::wiping::WipingBuf;

/// The bytes of a Go string, wiped (whole capacity) when dropped.
#[derive(Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SecretBytes(Vec<u8>);

impl Deref for SecretBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
}

impl From<zeroize::Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(mut bytes: zeroize::Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(std::mem::take(&mut *bytes))
    }
}

impl From<WipingBuf> for SecretBytes {
    fn from(bytes: WipingBuf) -> Self {
        SecretBytes::from(bytes.into_zeroizing())
    }
}

impl From<String> for SecretBytes {
    fn from(text: String) -> Self {
        SecretBytes(text.into_bytes())
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(bytes: &[u8]) -> Self {
        SecretBytes(bytes.to_vec())
    }
}

impl From<&Vec<u8>> for SecretBytes {
    fn from(bytes: &Vec<u8>) -> Self {
        SecretBytes(bytes.clone())
    }
}

impl From<&str> for SecretBytes {
    fn from(text: &str) -> Self {
        SecretBytes(text.as_bytes().to_vec())
    }
}

impl From<&String> for SecretBytes {
    fn from(text: &String) -> Self {
        SecretBytes(text.as_bytes().to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for SecretBytes {
    fn from(bytes: &[u8; N]) -> Self {
        SecretBytes(bytes.to_vec())
    }
}

/// A value during execution, mirroring the Go types templates see.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// Go's invalid `reflect.Value`, e.g. a missing map key; prints as `<no value>`.
    Missing,
    /// An untyped `nil`; prints as `<nil>`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Go string: any bytes.
    Str(Rc<SecretBytes>),
    /// `[]interface{}` (and `[]string`).
    List(Rc<ListValue>),
    /// `map[string]interface{}` (and `map[string]string`); shared, since `set` mutates it.
    Map(Rc<MapValue>),
}

/// The elements of a list.
#[derive(Debug, Default)]
pub(crate) struct ListValue {
    pub(crate) items: Vec<Value>,
}

/// The entries of a map, kept sorted by key as Go sorts keys when printing and ranging.
#[derive(Debug, Default)]
pub(crate) struct MapValue {
    pub(crate) entries: RefCell<BTreeMap<Vec<u8>, Value>>,
    /// True for Go's `map[string]string` (the data), false for `map[string]interface{}`.
    pub(crate) string_elems: bool,
}

impl Drop for ListValue {
    fn drop(&mut self) {
        drop_iteratively(std::mem::take(&mut self.items));
    }
}

impl Drop for MapValue {
    fn drop(&mut self) {
        let entries = std::mem::take(self.entries.get_mut());
        drop_iteratively(wipe_keys(entries));
    }
}

/// The values of `entries`, after wiping the keys (`dict` can make keys out of values).
fn wipe_keys(entries: BTreeMap<Vec<u8>, Value>) -> Vec<Value> {
    entries
        .into_iter()
        .map(|(mut key, value)| {
            key.zeroize();
            value
        })
        .collect()
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
                    pending.extend(wipe_keys(entries));
                }
            }
            _ => {}
        }
    }
}

impl Value {
    /// A string; owned buffers are taken over without a copy, so no unwiped copy is left.
    pub(crate) fn str(bytes: impl Into<SecretBytes>) -> Value {
        Value::Str(Rc::new(bytes.into()))
    }

    pub(crate) fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(ListValue { items }))
    }

    pub(crate) fn map(entries: BTreeMap<Vec<u8>, Value>) -> Value {
        Value::Map(Rc::new(MapValue {
            entries: RefCell::new(entries),
            string_elems: false,
        }))
    }

    /// The data: Go's `map[string]string`.
    pub(crate) fn string_map<V: AsRef<[u8]>>(values: &BTreeMap<String, V>) -> Value {
        let entries = values
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), Value::str(value.as_ref())))
            .collect();
        Value::Map(Rc::new(MapValue {
            entries: RefCell::new(entries),
            string_elems: true,
        }))
    }

    /// Go's name of the value's type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
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
    pub(crate) fn is_true(&self) -> bool {
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
    pub(crate) fn is_empty(&self) -> bool {
        !self.is_true()
    }

    pub(crate) fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// The bytes of a string (empty for other values; callers check types first).
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Value::Str(s) => s,
            _ => &[],
        }
    }

    /// The integer (0 for other values; callers check types first).
    pub(crate) fn int(&self) -> i64 {
        match self {
            Value::Int(i) => *i,
            _ => 0,
        }
    }

    /// An upper bound of the bytes `fmt` prints for this value (and of what JSON encoding,
    /// joining or comparing it walks), or `None` when it exceeds `cap`.
    ///
    /// `visited` counts the lists, maps and elements walked, so callers can charge the walk as
    /// steps. Lists and maps can share elements, so a small template can build a value whose
    /// printed form is exponentially large; the walk stops as soon as `cap` is passed, and every
    /// element counts at least one byte, so it never visits more than `cap` elements.
    pub(crate) fn printed_size(&self, cap: usize, visited: &mut u64) -> Option<usize> {
        let mut total = 0usize;
        let mut pending: Vec<(Value, usize)> = vec![(self.clone(), 0)];
        while let Some((value, depth)) = pending.pop() {
            *visited += 1;
            let size = if depth > MAX_VALUE_DEPTH {
                3
            } else {
                match &value {
                    Value::Missing => 10,
                    Value::Nil | Value::Bool(_) => 5,
                    // `-9223372036854775808`; floats print at most 24 bytes.
                    Value::Int(_) | Value::Float(_) => 24,
                    Value::Str(s) => s.len(),
                    Value::List(list) => {
                        let size = 2 + list.items.len();
                        if total.checked_add(size)? > cap {
                            return None;
                        }
                        pending.extend(list.items.iter().map(|item| (item.clone(), depth + 1)));
                        size
                    }
                    Value::Map(map) => {
                        let entries = map.entries.try_borrow().ok()?;
                        let mut size = 5usize;
                        for key in entries.keys() {
                            size = size.checked_add(key.len() + 2)?;
                        }
                        if total.checked_add(size)? > cap {
                            return None;
                        }
                        pending.extend(entries.values().map(|item| (item.clone(), depth + 1)));
                        size
                    }
                }
            };
            total = total.checked_add(size)?;
            if total > cap {
                return None;
            }
        }
        Some(total)
    }

    /// An estimate of the heap bytes this value holds that nothing else holds, or `None` when
    /// it exceeds `cap`: the value itself, and, inside it, every string, list and map that is
    /// referenced from this value alone, whole ([`footprint`]). An element that something else
    /// also references (a variable, the data, another list) counts only its slot: it was
    /// charged when it was made.
    ///
    /// This is what a function's result is charged: a call that makes new strings inside a
    /// list (`splitList`, `keys`, `split`) or a whole tree (`fromJson`) pays for all of them,
    /// and one that only arranges existing values (`list`, `append`, `dict`) pays for the
    /// slots. The walk stops once `cap` is passed, and every element counts at least
    /// [`footprint::VALUE`] bytes, so it visits at most `cap / VALUE` elements.
    pub(crate) fn footprint(&self, cap: usize) -> Option<usize> {
        let mut total = 0usize;
        let mut pending: Vec<Value> = vec![self.clone()];
        let mut outermost = true;
        while let Some(value) = pending.pop() {
            let size = match &value {
                Value::Str(s) => footprint::string(s.len()),
                Value::List(list) => {
                    let mut size = footprint::CONTAINER;
                    for item in &list.items {
                        size = size.checked_add(footprint::VALUE)?;
                        if total.checked_add(size)? > cap {
                            return None;
                        }
                        push_if_unshared(item, &mut pending);
                    }
                    size
                }
                Value::Map(map) => {
                    let entries = map.entries.try_borrow().ok()?;
                    let mut size = footprint::CONTAINER;
                    for (key, item) in entries.iter() {
                        size = size.checked_add(footprint::key(key.len()) + footprint::VALUE)?;
                        if total.checked_add(size)? > cap {
                            return None;
                        }
                        push_if_unshared(item, &mut pending);
                    }
                    size
                }
                _ => footprint::VALUE,
            };
            // An inner part replaces its slot, already counted, by its whole size.
            let size = if outermost {
                size
            } else {
                size - footprint::VALUE
            };
            outermost = false;
            total = total.checked_add(size)?;
            if total > cap {
                return None;
            }
        }
        Some(total)
    }

    /// A snapshot of a map's entries (the copies of the keys are wiped when dropped).
    pub(crate) fn map_entries(map: &MapValue) -> Vec<(SecretBytes, Value)> {
        map.entries
            .try_borrow()
            .map(|entries| {
                entries
                    .iter()
                    .map(|(k, v)| (SecretBytes::from(k), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sets `key` to `value` in a map's entries. A map keeps the key it has, so when `key` is
/// already there, the new copy is wiped instead of being dropped as it is.
pub(crate) fn insert_entry(entries: &mut BTreeMap<Vec<u8>, Value>, mut key: Vec<u8>, value: Value) {
    match entries.get_mut(key.as_slice()) {
        Some(slot) => {
            *slot = value;
            key.zeroize();
        }
        None => {
            entries.insert(key, value);
        }
    }
}

/// Removes `key` from a map's entries, wiping the map's copy of it; returns the value.
pub(crate) fn remove_entry(entries: &mut BTreeMap<Vec<u8>, Value>, key: &[u8]) -> Option<Value> {
    entries.remove_entry(key).map(|(mut key, value)| {
        key.zeroize();
        value
    })
}

/// The characters of a Go string, each invalid sequence as one U+FFFD, as
/// `String::from_utf8_lossy` reads them, without a copy of the string.
pub(crate) fn lossy_chars(s: &[u8]) -> impl Iterator<Item = char> + '_ {
    s.utf8_chunks().flat_map(|chunk| {
        let invalid = (!chunk.invalid().is_empty()).then_some(char::REPLACEMENT_CHARACTER);
        chunk.valid().chars().chain(invalid)
    })
}

/// `String::from_utf8_lossy(s)` built in a string of exactly its size (so it never grows and
/// leaves a copy behind), wiped when dropped.
pub(crate) fn lossy_string(s: &[u8]) -> Zeroizing<String> {
    let len = lossy_chars(s).map(char::len_utf8).sum();
    let mut text = Zeroizing::new(String::with_capacity(len));
    text.extend(lossy_chars(s));
    text
}

/// Splits into UTF-8 sequences, each invalid byte on its own (Go's rune iteration).
pub(crate) fn utf8_units(s: &[u8]) -> Vec<&[u8]> {
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

/// Queues `item` for [`Value::footprint`]'s walk if this is its only reference: a string, list
/// or map that nothing else holds was made for the value being measured.
fn push_if_unshared(item: &Value, pending: &mut Vec<Value>) {
    let unshared = match item {
        Value::Str(s) => Rc::strong_count(s) == 1,
        Value::List(list) => Rc::strong_count(list) == 1,
        Value::Map(map) => Rc::strong_count(map) == 1,
        _ => false,
    };
    if unshared {
        pending.push(item.clone());
    }
}

/// Estimated heap bytes of the parts of a value, for charging what a function call made to the
/// per-object budget ([`Value::footprint`]): the value's own slot, plus the shared allocation
/// (reference counts and a vector or map header) of a string, list or map, plus the bytes of
/// a string or map key. A map entry counts its key and its value's slot.
pub(crate) mod footprint {
    use super::Value;

    /// One value's slot in its list or map.
    pub(crate) const VALUE: usize = std::mem::size_of::<Value>();
    /// A list or a map: its slot and its shared allocation.
    pub(crate) const CONTAINER: usize = VALUE + 48;

    /// A string of `len` bytes.
    pub(crate) const fn string(len: usize) -> usize {
        CONTAINER.saturating_add(len)
    }

    /// A map key of `len` bytes (its vector header and bytes).
    pub(crate) const fn key(len: usize) -> usize {
        24usize.saturating_add(len)
    }
}
