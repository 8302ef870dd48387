//! The Go text/template + Sprig engine: parse and execute, several entries under one
//! per-object budget as `unseal` renders them. Entries are separated by 0xFF bytes (never part
//! of UTF-8 text); invalid UTF-8 is replaced as a Kubernetes string would be.
//!
//! Besides panics, libFuzzer's `-rss_limit_mb`/`-malloc_limit_mb` and `-timeout` turn a
//! template that escapes the budget (memory or time) into a reported crash.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use sealed_secrets_template::{
    Data, Template,
    budget::{Budget, MAX_RENDERED_BYTES, MAX_STEPS},
};

fuzz_target!(|data: &[u8]| {
    let values: BTreeMap<String, Vec<u8>> = BTreeMap::from([
        ("user".to_string(), b"admin".to_vec()),
        ("password".to_string(), b"hunter2".to_vec()),
        (
            "json".to_string(),
            br#"{"a":[1,2.5,"x"],"b":{"c":true}}"#.to_vec(),
        ),
        ("bin".to_string(), vec![0, 0xff, b'\n', 0x80]),
    ]);
    let data_context = Data::new(&values);
    let mut budget = Budget::per_object();
    let texts: Vec<String> = data
        .split(|&b| b == 0xff)
        .take(4)
        .map(|text| String::from_utf8_lossy(text).into_owned())
        .collect();
    let mut rendered = 0;
    let mut failed = false;
    for (i, text) in texts.iter().enumerate() {
        let name = format!("k{i}");
        let Ok(template) = Template::parse(&name, text) else {
            continue;
        };
        match template.render(&data_context, &mut budget) {
            Ok(out) => rendered += out.len(),
            Err(err) => {
                // Error texts never carry the values.
                let message = err.to_string();
                assert!(!message.contains("hunter2"), "{message}");
                failed = true;
                break;
            }
        }
    }
    // Whatever succeeded stayed within the object's budget (a failed render may have charged
    // the walk that pushed it over).
    assert!(rendered <= MAX_RENDERED_BYTES);
    if !failed {
        assert!(budget.steps_used() <= MAX_STEPS);
    }
});
