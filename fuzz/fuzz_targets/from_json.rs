//! Sprig's `fromJson` (the template engine's own JSON reader) against serde_json: any bytes
//! are read through `{{ toJson (fromJson .raw) }}`.
//!
//! Where serde_json accepts the input (valid UTF-8, no lone surrogate escape, numbers in
//! range, nesting within 127), `fromJson` must accept it too and mean the same value: its `toJson` output, read back
//! by serde_json, equals serde_json's reading of the input (numbers compared as `float64`, as
//! Go keeps them, to within 1e-12 relative: serde_json's default number parser is not always
//! correctly rounded for long digit strings, `fromJson`'s is, as Go's; a unit test pins the
//! exact values). Where serde_json rejects the input, `fromJson` may still accept it (Go
//! turns invalid UTF-8 and lone surrogates into U+FFFD, and an out-of-range number into
//! `nil`); then it must still render without a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use sealed_secrets_template::{Data, Template, budget::Budget};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let values = BTreeMap::from([("raw".to_string(), data.to_vec())]);
    let template = Template::parse("k", "{{ toJson (fromJson .raw) }}").expect("a fixed template");
    let mut budget = Budget::per_object();
    let Ok(rendered) = template.render(&Data::new(&values), &mut budget) else {
        // Over the budget (a large input): nothing to compare.
        return;
    };
    let Ok(expected) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let ours: Value = serde_json::from_slice(&rendered).expect("toJson writes JSON");
    assert!(same(&expected, &ours), "fromJson read a different value");
});

/// Equal as Go values: numbers as `float64`, objects as maps.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}
