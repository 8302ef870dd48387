//! What a watch missed while it was down.
//!
//! When a watch breaks for longer than the API server keeps history (a restart, an etcd
//! compaction, a frozen process), kube-runtime's watcher lists again and reports the result as
//! `Init`, `InitApply`… `InitDone`: never as `Delete`. An object deleted during the gap simply
//! is not in the new list, and one changed during the gap looks like any other listed object.
//! Code that reacts only to `Delete` (re-create a deleted Secret, forget a deleted
//! SealedSecret, stop using a deleted key) would miss it forever.
//!
//! [`RelistGaps`] remembers, per watch, a small value for each object it was told about (the
//! object's identity and version, never its data) and, when a relist completes, names the ones
//! that vanished and the ones whose value changed, so the caller can handle them exactly as if
//! the events had arrived. It is pure bookkeeping: no I/O, no clock.

use std::collections::HashMap;

use kube::runtime::watcher::Event;

/// What a completed relist revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap<V> {
    /// Known before the gap, absent from the new list: deleted while the watch was down.
    pub vanished: Vec<V>,
    /// Known before the gap and listed again with a different value: changed meanwhile, as
    /// `(before, now)`.
    pub changed: Vec<(V, V)>,
}

impl<V> Gap<V> {
    /// Whether the relist revealed nothing.
    pub fn is_empty(&self) -> bool {
        self.vanished.is_empty() && self.changed.is_empty()
    }
}

impl<V> Default for Gap<V> {
    fn default() -> Self {
        Self {
            vanished: Vec::new(),
            changed: Vec::new(),
        }
    }
}

/// The objects one watch has reported, keyed by a caller-chosen identity (`namespace/name`).
#[derive(Debug)]
pub struct RelistGaps<V> {
    known: HashMap<String, V>,
    /// The listing in progress (between `Init` and `InitDone`).
    listing: Option<HashMap<String, V>>,
}

impl<V> Default for RelistGaps<V> {
    fn default() -> Self {
        Self {
            known: HashMap::new(),
            listing: None,
        }
    }
}

impl<V: Clone + PartialEq> RelistGaps<V> {
    /// Feeds one watch event. `track` gives the key and value of an object to remember, or
    /// `None` for objects the caller does not care about (they are forgotten). Returns what a
    /// relist revealed when `event` completes one, else an empty [`Gap`].
    pub fn observe<K>(
        &mut self,
        event: &Event<K>,
        track: impl Fn(&K) -> Option<(String, V)>,
    ) -> Gap<V>
    where
        K: kube::Resource,
    {
        match event {
            Event::Apply(object) => {
                match track(object) {
                    Some((key, value)) => {
                        self.known.insert(key, value);
                    }
                    None => {
                        if let Some(key) = object_key(object) {
                            self.known.remove(&key);
                        }
                    }
                }
                Gap::default()
            }
            Event::Delete(object) => {
                if let Some(key) = object_key(object) {
                    self.known.remove(&key);
                }
                Gap::default()
            }
            Event::Init => {
                self.listing = Some(HashMap::new());
                Gap::default()
            }
            Event::InitApply(object) => {
                if let Some((key, value)) = track(object) {
                    self.listing
                        .get_or_insert_with(HashMap::new)
                        .insert(key, value);
                }
                Gap::default()
            }
            Event::InitDone => self.finish_listing(),
        }
    }

    fn finish_listing(&mut self) -> Gap<V> {
        let listed = self.listing.take().unwrap_or_default();
        let mut gap = Gap::default();
        for (key, old) in self.known.drain() {
            match listed.get(&key) {
                None => gap.vanished.push(old),
                Some(new) if *new != old => gap.changed.push((old, new.clone())),
                Some(_) => {}
            }
        }
        self.known = listed;
        gap
    }

    /// Number of objects remembered.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }
}

/// `namespace/name` of an object (the name alone for cluster-scoped ones).
pub fn object_key<K: kube::Resource>(object: &K) -> Option<String> {
    let meta = object.meta();
    let name = meta.name.as_deref()?;
    Some(match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn cm(name: &str, version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn track(object: &ConfigMap) -> Option<(String, String)> {
        Some((
            object_key(object)?,
            object.metadata.resource_version.clone()?,
        ))
    }

    fn relist(gaps: &mut RelistGaps<String>, objects: &[ConfigMap]) -> Gap<String> {
        assert!(gaps.observe(&Event::Init, track).is_empty());
        for object in objects {
            assert!(
                gaps.observe(&Event::InitApply(object.clone()), track)
                    .is_empty()
            );
        }
        let mut gap = gaps.observe(&Event::<ConfigMap>::InitDone, track);
        gap.vanished.sort();
        gap.changed.sort();
        gap
    }

    #[test]
    fn the_first_listing_reveals_nothing() {
        let mut gaps = RelistGaps::default();
        assert!(relist(&mut gaps, &[cm("a", "1"), cm("b", "2")]).is_empty());
        assert_eq!(gaps.len(), 2);
    }

    #[test]
    fn a_relist_names_what_was_deleted_and_changed_during_the_gap() {
        let mut gaps = RelistGaps::default();
        relist(&mut gaps, &[cm("a", "1"), cm("b", "2"), cm("c", "3")]);
        // Watched normally: d arrives, c is deleted (both seen).
        gaps.observe(&Event::Apply(cm("d", "4")), track);
        gaps.observe(&Event::Delete(cm("c", "3")), track);
        // Gap: a deleted, b changed, e created; then the relist.
        let gap = relist(&mut gaps, &[cm("b", "7"), cm("d", "4"), cm("e", "8")]);
        assert_eq!(gap.vanished, vec!["1".to_string()]);
        assert_eq!(gap.changed, vec![("2".to_string(), "7".to_string())]);
        // The new listing is what is known now: a second identical relist reveals nothing.
        assert!(relist(&mut gaps, &[cm("b", "7"), cm("d", "4"), cm("e", "8")]).is_empty());
    }

    #[test]
    fn untracked_objects_are_forgotten() {
        let mut gaps = RelistGaps::default();
        relist(&mut gaps, &[cm("a", "1")]);
        // An update makes `a` uninteresting (say, its owner reference was removed).
        gaps.observe(&Event::Apply(cm("a", "2")), |_: &ConfigMap| None);
        assert!(gaps.is_empty());
        assert!(relist(&mut gaps, &[]).is_empty());
    }

    #[test]
    fn a_relist_without_init_still_completes() {
        // kube's watcher always sends Init first; a stray InitDone must not lose state.
        let mut gaps = RelistGaps::default();
        relist(&mut gaps, &[cm("a", "1")]);
        let gap = gaps.observe(&Event::<ConfigMap>::InitDone, track);
        assert_eq!(gap.vanished, vec!["1".to_string()]);
    }
}
