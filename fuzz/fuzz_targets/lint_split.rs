//! `kubeseal lint`'s reading of a file (core/src/documents.rs): a YAML stream split at its
//! `---` lines with the first line of each document, each part parsed, line numbers taken from
//! parser messages; or a stream of concatenated JSON objects with their lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_secrets_core::documents::{
    content_line, json_stream_with_lines, message_line, parse_documents, split_yaml_stream,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    let mut previous = 0;
    for (first_line, chunk) in split_yaml_stream(text) {
        assert!(first_line >= previous, "documents come in order");
        previous = first_line;
        let _ = content_line(first_line, chunk);
        if let Err(err) = parse_documents(chunk.as_bytes()) {
            let _ = message_line(&err.to_string());
        }
    }
    let (docs, error) = json_stream_with_lines(text);
    for (line, doc_text, _) in docs {
        assert!(line <= lines + 1 && text.contains(doc_text));
    }
    if let Some((line, _)) = error {
        assert!(line >= 1);
    }
});
