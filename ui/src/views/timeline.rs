//! One timeline of the events of a GitSync and of its objects, newest first. Pure: the events
//! come in as the API server listed them (core/v1 `Event`), with the uids that belong.

use std::collections::HashSet;

use serde_json::Value;

use super::Age;

/// Events shown at most.
pub const MAX_EVENTS: usize = 200;

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it last happened (RFC 3339), for sorting.
    pub time: String,
    /// Its age.
    pub age: Option<Age>,
    /// `Normal` or `Warning`.
    pub type_: String,
    /// CamelCase reason.
    pub reason: String,
    /// `Kind/name` of the object it is about.
    pub object: String,
    /// What it says.
    pub message: String,
    /// How many times it happened.
    pub count: u64,
}

impl Entry {
    /// Whether it is a warning.
    pub fn is_warning(&self) -> bool {
        self.type_ == "Warning"
    }
}

fn event_time(event: &Value) -> String {
    [
        &event["lastTimestamp"],
        &event["series"]["lastObservedTime"],
        &event["eventTime"],
        &event["firstTimestamp"],
        &event["metadata"]["creationTimestamp"],
    ]
    .iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
    .unwrap_or("")
    .to_string()
}

/// The events about an object whose uid is in `uids`, newest first, at most [`MAX_EVENTS`].
pub fn build(events: &[Value], uids: &HashSet<String>, now: jiff::Timestamp) -> Vec<Entry> {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut entries: Vec<Entry> = events
        .iter()
        .filter(|e| {
            e["involvedObject"]["uid"]
                .as_str()
                .is_some_and(|uid| uids.contains(uid))
        })
        .map(|e| {
            let time = event_time(e);
            Entry {
                age: Age::since(&time, now),
                time,
                type_: text(&e["type"]),
                reason: text(&e["reason"]),
                object: format!(
                    "{}/{}",
                    text(&e["involvedObject"]["kind"]),
                    text(&e["involvedObject"]["name"])
                ),
                message: text(&e["message"]),
                count: e["count"]
                    .as_u64()
                    .or_else(|| e["series"]["count"].as_u64())
                    .unwrap_or(1),
            }
        })
        .collect();
    entries.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.object.cmp(&b.object)));
    entries.truncate(MAX_EVENTS);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(uid: &str, reason: &str, time: &str, kind: &str) -> Value {
        json!({"involvedObject": {"uid": uid, "kind": kind, "name": "web"},
               "type": if reason == "Failed" {"Warning"} else {"Normal"},
               "reason": reason, "message": "m", "lastTimestamp": time, "count": 2})
    }

    #[test]
    fn events_of_the_tree_only_newest_first() {
        let now: jiff::Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let events = vec![
            event("a", "SyncSucceeded", "2026-12-07T11:00:00Z", "GitSync"),
            event("b", "Failed", "2026-12-07T11:30:00Z", "Deployment"),
            event("zzz", "Other", "2026-12-07T11:59:00Z", "Pod"),
            json!({"involvedObject": {"uid": "a", "kind": "GitSync", "name": "web"},
                   "type": "Normal", "reason": "New", "eventTime": "2026-12-07T11:45:00.000000Z"}),
        ];
        let uids: HashSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let timeline = build(&events, &uids, now);
        let reasons: Vec<&str> = timeline.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["New", "Failed", "SyncSucceeded"]);
        assert!(timeline[1].is_warning());
        assert_eq!(timeline[1].object, "Deployment/web");
        assert_eq!(timeline[1].count, 2);
        assert_eq!(timeline[0].count, 1);
        assert_eq!(timeline[2].age.as_ref().unwrap().text, "60m");
    }

    #[test]
    fn the_timeline_is_capped() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let events: Vec<Value> = (0..500)
            .map(|i| {
                event(
                    "a",
                    "R",
                    &format!("2026-12-07T11:{:02}:00Z", i % 60),
                    "GitSync",
                )
            })
            .collect();
        let uids: HashSet<String> = ["a".to_string()].into();
        assert_eq!(build(&events, &uids, now).len(), MAX_EVENTS);
    }
}
