//! Error aggregation in upstream's format, so status messages, events and CLI errors read the
//! same as with the Go controller: identical messages are folded into one line with their tags
//! in parentheses (`no key could decrypt secret (password, username)`), and distinct messages
//! are joined with newlines.

use std::fmt;

/// A list of `(message, tag)` pairs, displayed folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaggedErrors {
    entries: Vec<(String, String)>,
}

impl TaggedErrors {
    /// Records `message` for item `tag`.
    pub fn push(&mut self, tag: impl Into<String>, message: impl fmt::Display) {
        self.entries.push((message.to_string(), tag.into()));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The distinct messages with their tags, in order of first appearance.
    pub fn folded(&self) -> Vec<(&str, Vec<&str>)> {
        let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
        for (message, tag) in &self.entries {
            match out.iter_mut().find(|(m, _)| m == message) {
                Some((_, tags)) => tags.push(tag),
                None => out.push((message, vec![tag])),
            }
        }
        out
    }
}

impl fmt::Display for TaggedErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (message, tags)) in self.folded().into_iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{message} ({})", tags.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for TaggedErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_messages_fold_and_distinct_ones_join_with_newlines() {
        let mut errors = TaggedErrors::default();
        errors.push("foo", "no key could decrypt secret");
        errors.push("b64", "illegal base64 data at input byte 3");
        errors.push("bar", "no key could decrypt secret");
        assert_eq!(
            errors.to_string(),
            "no key could decrypt secret (foo, bar)\nillegal base64 data at input byte 3 (b64)"
        );
    }
}
