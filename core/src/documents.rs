//! Reading Kubernetes objects from YAML or JSON streams, and writing them the way upstream's
//! tools print them.
//!
//! Input: kubectl-style streams. JSON when the first non-blank character is `{` (one or more
//! concatenated objects), otherwise YAML with `---` separators; empty documents are skipped.
//! Octal-looking numbers such as `0644` are read as YAML 1.1 did (420), like kubectl.
//!
//! Output: Go's JSON encoder writes struct fields in declaration order and map keys sorted, with
//! a two-space indent and HTML-sensitive characters escaped; its YAML printer sorts every key.
//! Reproducing both keeps our output diff-identical to upstream's in users' repositories.

use serde_json::{Map, Value};

/// Errors reading a YAML or JSON stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The input is not UTF-8 (YAML and JSON must be).
    #[error("input is not valid UTF-8 (first bad byte at offset {0})")]
    NotUtf8(usize),
    /// A JSON syntax error, with its position.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A YAML syntax error, with its position (the parser's first line only: the rest quotes
    /// the input, which may be a Secret).
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// The stream is over one of the parser's limits (see [`Limits`]).
    #[error("the input holds more than {limit} {what}, the limit for {per}; {advice}")]
    Limit {
        /// What was counted: "YAML documents", "YAML nodes"...
        what: &'static str,
        /// The limit that was reached.
        limit: usize,
        /// What the limit is per: "one request", "an input of this size".
        per: &'static str,
        /// How to proceed.
        advice: &'static str,
    },
}

/// How much a YAML stream may make the parser do.
///
/// Why two: the controller parses what the network sends it, so its limits are fixed counts
/// (serde-saphyr's defaults: 1,024 documents, 250,000 nodes, 64 MiB of scalars), small enough
/// that a hostile request cannot make it allocate much. A file a user hands to kubeseal, the
/// lint or the reconcile core is not hostile: a migration seals 10,000 Secrets in one stream,
/// which the fixed counts refuse. Local limits grow with the input, so every real file is read
/// (each document, node and scalar byte needs input bytes of its own) and memory stays
/// proportional to the file; only alias expansion, which lets a few bytes stand for many nodes,
/// stays bounded by the fixed alias limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// Input from the network or the cluster: fixed counts.
    Untrusted,
    /// A file or stream the user gives a local tool: limits that grow with its size.
    Local,
}

impl Limits {
    fn budget(self, input_len: usize) -> serde_saphyr::Budget {
        let mut budget = serde_saphyr::Budget::default();
        if self == Limits::Local {
            // A document needs a separator line; a node at least a byte or two; events are
            // at most a few per node; scalar text is part of the input.
            budget.max_documents = budget.max_documents.max(input_len / 2 + 1);
            budget.max_nodes = budget.max_nodes.max(input_len + 1);
            budget.max_events = budget.max_events.max(input_len.saturating_mul(4) + 1);
            budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(input_len + 1);
            budget.max_reader_input_bytes = budget
                .max_reader_input_bytes
                .map(|max| max.max(input_len + 1));
        }
        budget
    }

    fn error(
        self,
        breach: &serde_saphyr::budget::BudgetBreach,
        budget: &serde_saphyr::Budget,
    ) -> DocumentError {
        use serde_saphyr::budget::BudgetBreach as B;
        let (what, limit) = match breach {
            B::Documents { .. } => ("YAML documents", budget.max_documents),
            B::Nodes { .. } => ("YAML nodes (values, lists and maps)", budget.max_nodes),
            B::Events { .. } => ("YAML parser events", budget.max_events),
            B::ScalarBytes { .. } => ("bytes of YAML values", budget.max_total_scalar_bytes),
            B::Aliases { .. } => ("YAML aliases (*name)", budget.max_aliases),
            B::Anchors { .. } => ("YAML anchors (&name)", budget.max_anchors),
            B::Depth { .. } => ("levels of YAML nesting", budget.max_depth),
            B::MergeKeys { .. } => ("YAML merge keys (<<)", budget.max_merge_keys),
            _ => ("YAML alias expansions", budget.max_aliases),
        };
        match self {
            Limits::Untrusted => DocumentError::Limit {
                what,
                limit,
                per: "one request",
                advice: "send fewer or smaller objects per request, or seal offline with kubeseal --cert",
            },
            Limits::Local => DocumentError::Limit {
                what,
                limit,
                per: "an input of this size",
                advice: "expand YAML aliases (*name) into plain values, reduce the nesting, or split the input into several files",
            },
        }
    }
}

/// Parses every non-empty document of a YAML or JSON stream from the network or the cluster,
/// under fixed limits ([`Limits::Untrusted`]).
pub fn parse_documents(input: &[u8]) -> Result<Vec<Value>, DocumentError> {
    parse_documents_within(input, Limits::Untrusted)
}

/// Parses every non-empty document of a user's own file or stream, under limits that grow with
/// its size ([`Limits::Local`]).
pub fn parse_local_documents(input: &[u8]) -> Result<Vec<Value>, DocumentError> {
    parse_documents_within(input, Limits::Local)
}

/// Parses every non-empty document of a YAML or JSON stream under `limits`.
pub fn parse_documents_within(input: &[u8], limits: Limits) -> Result<Vec<Value>, DocumentError> {
    let text = std::str::from_utf8(input).map_err(|e| DocumentError::NotUtf8(e.valid_up_to()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        return serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .map(|doc| doc.map_err(|e| DocumentError::Json(e.to_string())))
            .filter(|doc| !matches!(doc, Ok(Value::Null)))
            .collect();
    }
    let budget = limits.budget(text.len());
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        budget: Some(budget.clone()),
    };
    let docs: Vec<Option<Value>> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| match budget_breach(&e) {
            Some(breach) => limits.error(breach, &budget),
            None => DocumentError::Yaml(first_line(&e.to_string())),
        })?;
    Ok(docs
        .into_iter()
        .flatten()
        .filter(|d| !d.is_null())
        .collect())
}

/// The limit a parser error reports, looking through the wrappers that add a snippet or an
/// alias's location.
fn budget_breach(error: &serde_saphyr::Error) -> Option<&serde_saphyr::budget::BudgetBreach> {
    match error.without_snippet() {
        serde_saphyr::Error::Budget { breach, .. } => Some(breach),
        serde_saphyr::Error::AliasError { error, .. } => budget_breach(error),
        _ => None,
    }
}

/// The first line of a parser message. serde-saphyr follows it with a snippet of the input
/// around the error, and the input may be a Secret: messages must never carry it.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_string()
}

/// Splits a YAML stream at its document separators (`---`, `...`, `--- # comment` lines),
/// giving each document's text and the 1-based line it starts on; empty documents are dropped.
/// Positions let tools name the line of an object. A separator with content after it
/// (`--- !tag`, `--- |`) stays inside the document, so the parser still sees it; only line
/// numbers get less precise there.
pub fn split_yaml_stream(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        let is_separator = bare == "---" || bare == "..." || {
            bare.starts_with("--- #") || bare.starts_with("---\t#")
        };
        if is_separator {
            out.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = index + 2;
        }
        offset += line.len();
    }
    out.push((start_line, &text[start..]));
    out.retain(|(_, chunk)| !chunk.trim().is_empty());
    out
}

/// The line where a document's object starts: its first line that is not blank, a comment or
/// a separator, counted from `first_line` (the document's first line).
pub fn content_line(first_line: usize, text: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && t != "---"
        })
        .map_or(first_line, |i| first_line + i)
}

/// The `line N` a parser message names, relative to the text it parsed.
pub fn message_line(message: &str) -> Option<usize> {
    let rest = &message[message.find("line ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&n| n >= 1)
}

/// One object of a JSON stream: the line it starts on, its text, and its value.
pub type JsonDocument<'a> = (usize, &'a str, Value);

/// A stream of concatenated JSON objects, each with the 1-based line it starts on and its text.
/// Reading stops at the first syntax error, returned with its line and message (without
/// serde_json's own position suffix).
pub fn json_stream_with_lines(text: &str) -> (Vec<JsonDocument<'_>>, Option<(usize, String)>) {
    let mut docs = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return (docs, None),
            Some(Ok(Value::Null)) => {}
            Some(Ok(value)) => {
                let end = stream.byte_offset();
                let skipped = text[start..end].len() - text[start..end].trim_start().len();
                let begin = start + skipped;
                let line = text.as_bytes()[..begin]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                docs.push((line, &text[begin..end], value));
            }
            Some(Err(err)) => {
                let message = err.to_string();
                let message = match message.rfind(" at line ") {
                    Some(i) => message[..i].to_string(),
                    None => message,
                };
                return (docs, Some((err.line().max(1), message)));
            }
        }
    }
}

/// Go's `encoding/json` indented output: two spaces, `<`, `>`, `&`, U+2028 and U+2029 escaped,
/// and a trailing newline.
pub fn to_go_json(value: &Value) -> String {
    // serde_json only fails on non-string map keys, which `Value` cannot hold.
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut out = go_escaped(&pretty);
    out.push('\n');
    out
}

/// Go's `json.Marshal`: compact, with `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn to_go_json_compact(value: &Value) -> String {
    go_escaped(&value.to_string())
}

/// JSON text with the characters Go's encoder escapes for HTML safety escaped.
fn go_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 1);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// YAML with every mapping's keys sorted, as `sigs.k8s.io/yaml` prints Kubernetes objects.
pub fn to_sorted_yaml(value: &Value) -> String {
    let sorted = sort_keys(value.clone());
    let options = serde_saphyr::ser_options! {
        compact_list_indent: true,
        min_fold_chars: usize::MAX,
        folded_wrap_chars: usize::MAX,
    };
    let mut out = String::new();
    // Serialising a `Value` cannot fail: it has only string keys and finite numbers.
    let _ = serde_saphyr::to_fmt_writer_with_options(&mut out, &sorted, options);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// Field order of Go's `metav1.ObjectMeta`.
pub const OBJECT_META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Field order of Go's `metav1.OwnerReference`.
pub const OWNER_REFERENCE_ORDER: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];

/// Returns `value` (an object) with the listed keys first, in that order, then any others in
/// their existing order.
pub fn reorder(value: Value, order: &[&str]) -> Value {
    let Value::Object(mut map) = value else {
        return value;
    };
    let mut out = Map::with_capacity(map.len());
    for key in order {
        if let Some(v) = map.shift_remove(*key) {
            out.insert((*key).to_string(), v);
        }
    }
    out.extend(map);
    Value::Object(out)
}

/// Reorders an `ObjectMeta` value (and its owner references) into Go's field order.
pub fn reorder_object_meta(meta: Value) -> Value {
    let mut meta = reorder(meta, OBJECT_META_ORDER);
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        for r in refs.iter_mut() {
            *r = reorder(std::mem::take(r), OWNER_REFERENCE_ORDER);
        }
    }
    meta
}

#[cfg(test)]
mod positioned_tests {
    use super::*;

    #[test]
    fn yaml_errors_never_quote_the_input() {
        let err =
            parse_documents(b"stringData:\n  password: hunter2\n  x: [unclosed\n").unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("invalid YAML: "), "{message}");
        assert!(message.contains("line 3"), "{message}");
        assert!(
            !message.contains("hunter2") && !message.contains('\n'),
            "{message}"
        );
    }

    fn many_documents(count: usize) -> String {
        (0..count)
            .map(|i| format!("---\nkind: Secret\nmetadata:\n  name: s{i}\nstringData:\n  a: b\n"))
            .collect()
    }

    #[test]
    fn local_streams_are_bounded_by_their_size_not_a_count() {
        let text = many_documents(10_000);
        assert_eq!(
            parse_local_documents(text.as_bytes()).unwrap().len(),
            10_000
        );
        // One List of 20,000 small items: 160,000 nodes in one document.
        let list = format!(
            "kind: List\nitems:\n{}",
            (0..20_000)
                .map(|i| format!(
                    "- {{kind: Secret, metadata: {{name: s{i}}}, stringData: {{a: b, c: d}}}}\n"
                ))
                .collect::<String>()
        );
        assert_eq!(
            parse_local_documents(list.as_bytes()).unwrap()[0]["items"]
                .as_array()
                .unwrap()
                .len(),
            20_000
        );
    }

    #[test]
    fn untrusted_streams_keep_fixed_counts_and_say_which_in_a_sentence() {
        let text = many_documents(1_025);
        let err = parse_documents(text.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the input holds more than 1024 YAML documents, the limit for one request; send fewer or smaller objects per request, or seal offline with \
             kubeseal --cert"
        );
        assert!(parse_documents(many_documents(1_024).as_bytes()).is_ok());
    }

    #[test]
    fn local_limits_still_stop_alias_expansion() {
        // Each level doubles: 2^40 nodes from a few hundred bytes.
        let mut text = String::from("a0: &a0 [x, x]\n");
        for i in 1..40 {
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
        }
        let err = parse_local_documents(text.as_bytes()).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(
                err,
                DocumentError::Limit {
                    per: "an input of this size",
                    ..
                }
            ),
            "{message}"
        );
        assert!(message.contains("expand YAML aliases"), "{message}");
    }

    #[test]
    fn streams_split_with_lines() {
        let text = "# c\na: 1\n---\n\n---\nb: |\n  ---\n  x\n--- # next\nc: 3\n";
        let docs = split_yaml_stream(text);
        assert_eq!(docs.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 6, 10]);
        assert_eq!(content_line(docs[0].0, docs[0].1), 2);
        assert!(docs[1].1.contains("  ---"));
        assert_eq!(message_line("error: line 5 column 6: x"), Some(5));
        assert_eq!(message_line("no position"), None);
        let (objects, failure) = json_stream_with_lines("{\"a\": 1}\n\n{\"b\":\n 2}\n{\"c\": ");
        assert_eq!(objects.iter().map(|o| o.0).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(objects[1].2["b"], 2);
        let (line, message) = failure.unwrap();
        assert_eq!(line, 5);
        assert!(!message.contains(" at line "), "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rotate_json_escapes_like_go() {
        assert_eq!(
            to_go_json_compact(&json!({"a": "<&>\u{2028}"})),
            "{\"a\":\"\\u003c\\u0026\\u003e\\u2028\"}"
        );
    }

    #[test]
    fn yaml_streams_skip_empty_documents() {
        let docs = parse_documents(b"---\n---\na: 1\n---\n\n---\nb: [x]\n---\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": ["x"]})]);
    }

    #[test]
    fn concatenated_json_objects_are_separate_documents() {
        let docs = parse_documents(b"  {\"a\": 1}\n{\"b\": 2}{\"c\": 3}").unwrap();
        assert_eq!(docs.len(), 3);
    }

    #[test]
    fn legacy_octal_reads_as_kubectl_does() {
        let docs = parse_documents(b"mode: 0644\n").unwrap();
        assert_eq!(docs[0]["mode"], json!(420));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_documents(b"\xff\xfe\x00garbage"),
            Err(DocumentError::NotUtf8(0))
        ));
        assert!(matches!(
            parse_documents(b"{\"a\": "),
            Err(DocumentError::Json(_))
        ));
        assert!(matches!(
            parse_documents(b"a: [1, 2\n"),
            Err(DocumentError::Yaml(_))
        ));
        assert_eq!(parse_documents(b"").unwrap(), Vec::<Value>::new());
        assert_eq!(parse_documents(b"\n\n  \n").unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn go_json_escapes_html_characters() {
        let out = to_go_json(&json!({"k": "<a&b>"}));
        assert_eq!(out, "{\n  \"k\": \"\\u003ca\\u0026b\\u003e\"\n}\n");
    }

    #[test]
    fn yaml_output_sorts_keys_quotes_ambiguous_strings_and_keeps_long_lines() {
        let long = "A".repeat(700);
        let out = to_sorted_yaml(&json!({
            "b": "true", "a": {"z": 1, "y": [{"k": "v"}]}, "long": long, "multi": "l1\nl2\n"
        }));
        let reparsed = parse_documents(out.as_bytes()).unwrap();
        assert_eq!(reparsed[0]["b"], json!("true"));
        assert_eq!(reparsed[0]["long"], json!(long));
        assert_eq!(reparsed[0]["multi"], json!("l1\nl2\n"));
        assert!(out.find("a:").unwrap() < out.find("b:").unwrap());
        assert!(out.contains(&format!("long: {long}\n")), "{out}");
    }

    #[test]
    fn object_meta_is_ordered_like_go() {
        let meta =
            json!({"annotations": {}, "labels": {}, "namespace": "n", "name": "x", "extra": 1});
        let ordered = reorder_object_meta(meta);
        let keys: Vec<&str> = ordered
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["name", "namespace", "labels", "annotations", "extra"]
        );
    }
}
