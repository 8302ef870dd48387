//! Reading YAML/JSON files into documents that remember where they are.
//!
//! The core parser gives values without positions, and findings must name a line. So a YAML
//! stream is split at its `---` lines first, each document keeps its text and first line, and
//! [`Document::key_line`] finds the line of a key path by indentation. That is approximate for
//! exotic YAML (flow style, anchors) and exact for what kubeseal and kustomize write.
//!
//! Speed: only documents that mention `Secret` or `secret` are parsed at all. Every object this
//! lint checks is a `Secret` or `SealedSecret` (possibly inside a `List`), or a workload that
//! refers to a Secret (`secretRef`, `secretKeyRef`, `secret:`, `imagePullSecrets`), so its text
//! contains one of the two; ConfigMaps, Services and workloads without Secrets are skipped after
//! two substring searches.

use serde_json::Value;

use sealed_secrets_core::documents::{
    content_line, json_stream_with_lines, message_line, parse_local_documents, split_yaml_stream,
};

/// Whether a text may hold a document this lint cares about (see the module docs).
fn interesting(text: &str) -> bool {
    text.contains("Secret") || text.contains("secret")
}

/// One parsed document with its text and position.
#[derive(Debug, Clone)]
pub struct Document {
    /// The parsed object.
    pub value: Value,
    /// 1-based line of the document's first text line.
    pub first_line: usize,
    /// The document's text (used to find the lines of keys).
    pub text: String,
}

/// A document that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    /// 1-based line where the document starts.
    pub line: usize,
    /// The parser's message (first line only, never the input text).
    pub message: String,
}

/// Splits and parses a YAML or JSON stream. Documents that cannot hold a Secret are skipped.
pub fn read_documents(text: &str) -> (Vec<Document>, Vec<ParseFailure>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !interesting(text) {
        return (Vec::new(), Vec::new());
    }
    if text.trim_start().starts_with('{') {
        return read_json(text);
    }
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    for (first_line, chunk) in split_yaml_stream(text) {
        if !interesting(chunk) {
            continue;
        }
        match parse_local_documents(chunk.as_bytes()) {
            Ok(values) => docs.extend(values.into_iter().map(|value| Document {
                value,
                first_line,
                text: chunk.to_string(),
            })),
            Err(err) => {
                let message = err.to_string();
                failures.push(ParseFailure {
                    line: first_line + message_line(&message).unwrap_or(1) - 1,
                    message,
                });
            }
        }
    }
    (docs, failures)
}

/// Concatenated JSON objects; each remembers the line it starts on.
fn read_json(text: &str) -> (Vec<Document>, Vec<ParseFailure>) {
    let (objects, failure) = json_stream_with_lines(text);
    let docs = objects
        .into_iter()
        .map(|(first_line, text, value)| Document {
            value,
            first_line,
            text: text.to_string(),
        })
        .collect();
    let failures = failure
        .map(|(line, message)| ParseFailure {
            line,
            message: format!("invalid JSON: {message}"),
        })
        .into_iter()
        .collect();
    (docs, failures)
}

impl Document {
    /// 1-based line where the object itself starts (first line that is not blank or a comment).
    pub fn line(&self) -> usize {
        content_line(self.first_line, &self.text)
    }

    /// Best-effort line of the key at `path` (e.g. `["spec", "encryptedData", "password"]`):
    /// the deepest key of the path that could be found, else the object's line.
    pub fn key_line(&self, path: &[&str]) -> usize {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut lo = 0;
        let mut hi = lines.len();
        let mut found = None;
        for key in path {
            let mut child_indent = None;
            let mut hit = None;
            for (i, line) in lines.iter().enumerate().take(hi).skip(lo) {
                let trimmed = line.trim_start();
                if is_filler(trimmed) {
                    continue;
                }
                let indent = line.len() - trimmed.len();
                let expected = *child_indent.get_or_insert(indent);
                if indent < expected {
                    break;
                }
                if indent == expected && key_matches(trimmed, key) {
                    hit = Some((i, indent));
                    break;
                }
            }
            let Some((i, indent)) = hit else {
                break;
            };
            found = Some(i);
            lo = i + 1;
            hi = (lo..hi)
                .find(|&j| {
                    let t = lines[j].trim_start();
                    !is_filler(t) && lines[j].len() - t.len() <= indent
                })
                .unwrap_or(hi);
        }
        found.map_or_else(|| self.line(), |i| self.first_line + i)
    }
}

/// Blank lines, comments and JSON's lone brackets carry no key.
fn is_filler(trimmed: &str) -> bool {
    trimmed.is_empty()
        || trimmed.starts_with('#')
        || matches!(trimmed, "{" | "}" | "}," | "[" | "]" | "],")
}

/// Whether a trimmed line starts the mapping entry `key` (plain, double or single quoted).
fn key_matches(trimmed: &str, key: &str) -> bool {
    let rest = if let Some(r) = trimmed.strip_prefix(key) {
        r
    } else if let Some(r) = trimmed
        .strip_prefix('"')
        .and_then(|r| r.strip_prefix(key))
        .and_then(|r| r.strip_prefix('"'))
    {
        r
    } else if let Some(r) = trimmed
        .strip_prefix('\'')
        .and_then(|r| r.strip_prefix(key))
        .and_then(|r| r.strip_prefix('\''))
    {
        r
    } else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.strip_prefix(':')
        .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "\
# leading comment
apiVersion: v1
kind: ConfigMap
metadata:
  name: skipped
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: db
  namespace: shop
spec:
  template:
    metadata:
      name: db
  encryptedData:
    user: AAA=
    password: BBB=
";

    #[test]
    fn documents_without_secrets_are_skipped_and_lines_are_kept() {
        let (docs, failures) = read_documents(STREAM);
        assert!(failures.is_empty());
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(doc.line(), 7);
        assert_eq!(doc.key_line(&["metadata", "name"]), 10);
        assert_eq!(doc.key_line(&["spec", "encryptedData", "password"]), 18);
        assert_eq!(doc.key_line(&["spec", "encryptedData", "absent"]), 16);
        assert_eq!(doc.key_line(&["nothing"]), 7);
    }

    #[test]
    fn json_documents_have_lines_too() {
        let text = "{\"kind\": \"ConfigMap\"}\n\n{\n  \"kind\": \"Secret\",\n  \"data\": {\n    \"a\": \"b\"\n  }\n}\n";
        let (docs, failures) = read_documents(text);
        assert!(failures.is_empty());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line(), 3);
        assert_eq!(docs[1].key_line(&["data", "a"]), 6);
    }

    #[test]
    fn broken_documents_are_failures_that_do_not_echo_the_input() {
        let text = "kind: Secret\ndata: {a: [\n---\nkind: Secret\ndata:\n  a: b\n";
        let (docs, failures) = read_documents(text);
        assert_eq!(docs.len(), 1);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].line, 2);
        assert!(!failures[0].message.contains('\n'));
    }

    #[test]
    fn quoted_keys_match() {
        assert!(key_matches("\"a\": 1", "a"));
        assert!(key_matches("'a':", "a"));
        assert!(key_matches("a:", "a"));
        assert!(!key_matches("ab: 1", "a"));
        assert!(!key_matches("a:b", "a"));
    }
}
