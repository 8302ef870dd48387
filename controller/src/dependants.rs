//! Which key each SealedSecret depends on, counted per key.
//!
//! The controller writes the fingerprint of the key that opened a SealedSecret into its
//! `status.keyFingerprint`; the watch sees every SealedSecret with its status (including the
//! ones this replica wrote), so counting them as they pass gives, per key, how many objects
//! still need it: the number an operator looks at before retiring a key
//! (`sealed_secrets_key_dependants`). Pure bookkeeping, no I/O.

use std::{collections::HashMap, sync::Arc};

/// Object (`namespace/name`) → fingerprint, and fingerprint → count. Each object shares its
/// fingerprint with the count's key (a 64-character string per object was 0.8 MB at 10,000).
#[derive(Debug, Default)]
pub struct Dependants {
    by_object: HashMap<String, Arc<str>>,
    counts: HashMap<Arc<str>, i64>,
}

impl Dependants {
    /// Records that `object` depends on `fingerprint` (or on nothing known). Returns whether a
    /// count changed.
    pub fn set(&mut self, object: &str, fingerprint: Option<&str>) -> bool {
        let previous = self.by_object.get(object).map(|f| &**f);
        if previous == fingerprint {
            return false;
        }
        if let Some(previous) = self.by_object.remove(object) {
            self.decrement(&previous);
        }
        if let Some(fingerprint) = fingerprint {
            let shared = match self.counts.get_key_value(fingerprint) {
                Some((known, _)) => Arc::clone(known),
                None => Arc::from(fingerprint),
            };
            *self.counts.entry(Arc::clone(&shared)).or_default() += 1;
            self.by_object.insert(object.to_string(), shared);
        }
        true
    }

    /// Forgets a deleted object. Returns whether a count changed.
    pub fn remove(&mut self, object: &str) -> bool {
        match self.by_object.remove(object) {
            Some(previous) => {
                self.decrement(&previous);
                true
            }
            None => false,
        }
    }

    fn decrement(&mut self, fingerprint: &str) {
        if let Some(count) = self.counts.get_mut(fingerprint) {
            *count -= 1;
            if *count <= 0 {
                self.counts.remove(fingerprint);
            }
        }
    }

    /// Fingerprint → number of objects that depend on it.
    pub fn counts(&self) -> impl Iterator<Item = (&str, &i64)> {
        self.counts
            .iter()
            .map(|(fingerprint, count)| (&**fingerprint, count))
    }

    /// How many objects depend on `fingerprint` (`None`: none).
    pub fn count(&self, fingerprint: &str) -> Option<i64> {
        self.counts.get(fingerprint).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_objects_between_keys() {
        let mut deps = Dependants::default();
        assert!(deps.set("a/x", Some("k1")));
        assert!(deps.set("a/y", Some("k1")));
        assert!(!deps.set("a/y", Some("k1")), "no change, no update");
        assert!(!deps.set("a/z", None), "unknown stays unknown");
        assert_eq!(deps.count("k1"), Some(2));
        // Re-encrypted: y moves to the new key.
        assert!(deps.set("a/y", Some("k2")));
        assert_eq!(deps.count("k1"), Some(1));
        assert_eq!(deps.count("k2"), Some(1));
        assert!(deps.remove("a/x"));
        assert!(!deps.remove("a/x"));
        assert_eq!(deps.count("k1"), None, "a key nobody needs has no count");
        assert!(deps.set("a/y", None));
        assert_eq!(deps.counts().count(), 0);
    }
}
