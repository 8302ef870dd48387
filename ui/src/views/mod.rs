//! The models of the pages: pure functions from what the API server returned (and the query)
//! to what a page shows. They know nothing of HTTP or HTML, so another front end (an
//! in-cluster mode with login) can serve the same views; `pages.rs` fetches and renders.

pub mod drift;
pub mod overview;
pub mod seal;
pub mod sealed;
pub mod timeline;
pub mod tree;

/// How long ago something happened, in kubectl's short form (`45s`, `3m`, `5h`, `2d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Age {
    /// The short form.
    pub text: String,
    /// The RFC 3339 time it counts from (for the element's title).
    pub at: String,
}

impl Age {
    /// The age of RFC 3339 `time` at `now`; `None` when `time` does not parse.
    pub fn since(time: &str, now: jiff::Timestamp) -> Option<Age> {
        let then: jiff::Timestamp = time.parse().ok()?;
        let seconds = now.as_second().saturating_sub(then.as_second()).max(0);
        let text = match seconds {
            0..=119 => format!("{seconds}s"),
            120..=7_199 => format!("{}m", seconds / 60),
            7_200..=172_799 => format!("{}h", seconds / 3_600),
            _ => format!("{}d", seconds / 86_400),
        };
        Some(Age {
            text,
            at: time.to_string(),
        })
    }
}

/// The first seven characters of a commit SHA (Git's short form).
pub fn short_revision(revision: &str) -> &str {
    revision.get(..7).unwrap_or(revision)
}

/// One page of `items` (1-based `page`, clamped into range) and the number of pages.
pub fn paginate<T>(items: Vec<T>, page: usize, per_page: usize) -> (Vec<T>, usize, usize) {
    let per_page = per_page.max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    let start = (page - 1) * per_page;
    let slice = items.into_iter().skip(start).take(per_page).collect();
    (slice, page, pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let now: jiff::Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let age = |t: &str| Age::since(t, now).unwrap().text;
        assert_eq!(age("2026-12-07T11:59:15Z"), "45s");
        assert_eq!(age("2026-12-07T11:57:00Z"), "3m");
        assert_eq!(age("2026-12-07T07:00:00Z"), "5h");
        assert_eq!(age("2026-12-05T12:00:00Z"), "2d");
        assert_eq!(
            age("2026-12-07T12:00:09Z"),
            "0s",
            "a clock ahead is not negative"
        );
        assert!(Age::since("yesterday", now).is_none());
    }

    #[test]
    fn pages_are_clamped() {
        let items: Vec<u32> = (1..=250).collect();
        let (first, page, pages) = paginate(items.clone(), 1, 100);
        assert_eq!((first.len(), page, pages), (100, 1, 3));
        let (last, page, _) = paginate(items.clone(), 9, 100);
        assert_eq!((last.len(), page, last[0]), (50, 3, 201));
        let (none, page, pages) = paginate(Vec::<u32>::new(), 0, 100);
        assert_eq!((none.len(), page, pages), (0, 1, 1));
        assert_eq!(short_revision("abc"), "abc");
        assert_eq!(short_revision("0123456789"), "0123456");
    }
}
