//! Path patterns of routing rules: `overlays/production/**`, `clusters/*/secrets/*.yaml`.
//!
//! Why our own matcher: the language is four tokens (`**`, `*`, `?`, literal text) over
//! `/`-separated paths relative to the repository file, the same in every shell and on every
//! system, and it must be a pure function the tests can pin down. `**` as a whole segment
//! matches any number of segments (zero included); `*` and `?` never cross a `/`.

use std::fmt;

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole segments.
    Any,
    /// One segment with `*` and `?` wildcards.
    Glob(String),
}

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty text.
    #[error("the pattern is empty")]
    Empty,
    /// Rooted or escaping the repository.
    #[error(
        "pattern {0:?} must be relative to the repository file's directory, without `..` or a leading `/`"
    )]
    NotRelative(String),
    /// `**` glued to other text.
    #[error("pattern {0:?}: `**` must be a whole path segment (`a/**/b`, not `a**`)")]
    BadDoubleStar(String),
}

impl Pattern {
    /// Compiles `text`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(PatternError::Empty);
        }
        let relative = trimmed.strip_prefix("./").unwrap_or(trimmed);
        if relative.starts_with('/') || relative.split('/').any(|s| s == "..") {
            return Err(PatternError::NotRelative(text.to_string()));
        }
        let mut segments = Vec::new();
        for part in relative.split('/').filter(|s| !s.is_empty() && *s != ".") {
            if part == "**" {
                if segments.last() != Some(&Segment::Any) {
                    segments.push(Segment::Any);
                }
            } else if part.contains("**") {
                return Err(PatternError::BadDoubleStar(text.to_string()));
            } else {
                segments.push(Segment::Glob(part.to_string()));
            }
        }
        if segments.is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(Self {
            text: trimmed.to_string(),
            segments,
        })
    }

    /// Whether `path` (relative, `/`-separated) matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match_segments(&self.segments, &parts)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn match_segments(pattern: &[Segment], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((Segment::Any, rest)) => {
            (0..=parts.len()).any(|skip| match_segments(rest, &parts[skip..]))
        }
        Some((Segment::Glob(glob), rest)) => match parts.split_first() {
            Some((part, tail)) => {
                match_glob(glob.as_bytes(), part.as_bytes()) && { match_segments(rest, tail) }
            }
            None => false,
        },
    }
}

/// `*` and `?` within one segment, by the classic two-pointer walk with backtracking to the
/// last `*` (linear in practice, never exponential).
fn match_glob(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == b'?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == b'*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((star_g, star_t)) = star {
            g = star_g + 1;
            t = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(path)
    }

    #[test]
    fn double_star_spans_any_number_of_segments() {
        assert!(m("overlays/production/**", "overlays/production/db.yaml"));
        assert!(m(
            "overlays/production/**",
            "overlays/production/a/b/c.yaml"
        ));
        assert!(!m(
            "overlays/production/**",
            "overlays/production-eu/db.yaml"
        ));
        assert!(!m("overlays/production/**", "overlays/staging/db.yaml"));
        assert!(m("**/secrets/*.yaml", "secrets/a.yaml"));
        assert!(m("**/secrets/*.yaml", "x/y/secrets/a.yaml"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("./clusters/**", "clusters/x"));
    }

    #[test]
    fn single_star_and_question_mark_stay_within_a_segment() {
        assert!(m("clusters/*/sealed-*.yaml", "clusters/eu/sealed-db.yaml"));
        assert!(!m(
            "clusters/*/sealed-*.yaml",
            "clusters/eu/x/sealed-db.yaml"
        ));
        assert!(m("env-?/*", "env-1/db.yaml"));
        assert!(!m("env-?/*", "env-12/db.yaml"));
        assert!(m("*", "db.yaml"));
        assert!(!m("*", "a/db.yaml"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        assert_eq!(Pattern::parse(" "), Err(PatternError::Empty));
        assert!(matches!(
            Pattern::parse("/etc/**"),
            Err(PatternError::NotRelative(_))
        ));
        assert!(matches!(
            Pattern::parse("a/../b"),
            Err(PatternError::NotRelative(_))
        ));
        assert!(matches!(
            Pattern::parse("a**"),
            Err(PatternError::BadDoubleStar(_))
        ));
    }

    #[test]
    fn pathological_globs_stay_fast() {
        let glob = "*a".repeat(30);
        let text = "a".repeat(5_000);
        // A naive backtracking matcher would not finish these.
        assert!(m(&glob, &text));
        assert!(!m(&format!("{glob}b"), &text));
    }
}
