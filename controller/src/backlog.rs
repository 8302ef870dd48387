//! The backlog: SealedSecrets to check after a list, a relist or a leader takeover.
//!
//! At start every SealedSecret of the cluster arrives at once, and almost none of them needs
//! anything (their Secrets are current, which [`crate::digest`] proves without decrypting). Fed
//! straight to the work queue, they would all be scheduled before a SealedSecret created a
//! second later, which then waits for the whole list: 70 s at 10,000 objects before this
//! module. So the objects of a list go here instead, and are released to the work queue only
//! as workers free up: at most `width` of them are scheduled or running at any time. Anything
//! the watches report afterwards (a new or changed SealedSecret, a deleted Secret) goes to the
//! work queue directly and is therefore at most `width` objects behind: that is the priority,
//! in one work queue and one reconcile path.
//!
//! A standby replica keeps its watches running and puts every object it is asked about here
//! instead of reconciling it; on taking over the Lease the backlog is released, so a failover
//! starts from warm caches instead of a fresh list. The release waits for leadership and for
//! the key ring.
//!
//! Progress is visible: the `backlog_objects` gauge, and a log line when a backlog starts,
//! every 10 s while it drains (objects left, rate), and when it is done.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::Notify;

use crate::{cached::CachedSealedSecret, metrics::Metrics};

/// After this long, a released object whose pass never reported back (it was deleted before
/// the work queue got to it) no longer holds its slot.
const SLOT_EXPIRY: Duration = Duration::from_secs(5);
/// How often a draining backlog logs its progress.
const REPORT_EVERY: Duration = Duration::from_secs(10);

type Ref = ObjectRef<CachedSealedSecret>;

/// What the backlog holds: queued objects, released ones, and progress.
#[derive(Debug, Default)]
pub struct Queue {
    /// One allocation per queued object, shared by the order and the set (each `ObjectRef` is
    /// 96 bytes and two strings: held twice, 10,000 of them were 3 MB at a restart's peak).
    order: VecDeque<Arc<Ref>>,
    queued: HashSet<Arc<Ref>>,
    released: HashMap<Ref, Instant>,
    progress: Option<Progress>,
}

/// One draining backlog, from its first object to empty.
#[derive(Debug, Clone, Copy)]
struct Progress {
    started: Instant,
    checked: usize,
    last_report: Instant,
    checked_at_report: usize,
}

/// What a change of the queue should tell the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A backlog began with this many objects.
    Started {
        /// Objects queued.
        objects: usize,
    },
    /// Progress: objects left and the rate since the last report.
    Draining {
        /// Queued or released, not yet checked.
        left: usize,
        /// Checked per second since the last report.
        per_second: f64,
    },
    /// The backlog is empty.
    Done {
        /// Objects checked since it started.
        checked: usize,
        /// How long it took.
        took: Duration,
    },
}

impl Queue {
    /// Queues `object` unless it is queued already; reports a start.
    pub fn push(&mut self, object: Ref, now: Instant) -> Option<Report> {
        let object = Arc::new(object);
        if self.released.contains_key(&*object) || !self.queued.insert(Arc::clone(&object)) {
            return None;
        }
        self.order.push_back(object);
        self.start(now)
    }

    /// Queues `object` ahead of everything queued (something asked for it while this replica
    /// could not act: a standby's watch event). A copy further back stays in `order` and is
    /// skipped when reached, since [`Queue::release`] takes each object once; no scan here.
    pub fn push_front(&mut self, object: Ref, now: Instant) -> Option<Report> {
        if self.released.contains_key(&object) {
            return None;
        }
        let object = Arc::new(object);
        self.queued.insert(Arc::clone(&object));
        self.order.push_front(object);
        self.start(now)
    }

    /// Starts the progress of a backlog if none is running; reports it.
    fn start(&mut self, now: Instant) -> Option<Report> {
        if self.progress.is_some() {
            return None;
        }
        self.progress = Some(Progress {
            started: now,
            checked: 0,
            last_report: now,
            checked_at_report: 0,
        });
        Some(Report::Started { objects: 1 })
    }

    /// Objects queued or released and not yet checked.
    pub fn len(&self) -> usize {
        self.queued.len() + self.released.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next object to release, if fewer than `width` released ones are unchecked (slots
    /// older than [`SLOT_EXPIRY`] are freed first). `exists` says whether the watch cache still
    /// has an object; one it has not is dropped (deleted since it was queued).
    pub fn release(
        &mut self,
        width: usize,
        now: Instant,
        exists: impl Fn(&Ref) -> bool,
    ) -> Option<Ref> {
        let expired: Vec<Ref> = self
            .released
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= SLOT_EXPIRY)
            .map(|(r, _)| r.clone())
            .collect();
        for object in expired {
            self.released.remove(&object);
        }
        while self.released.len() < width.max(1) {
            let object = self.order.pop_front()?;
            if !self.queued.remove(&*object) {
                continue; // checked meanwhile through another trigger
            }
            let object = Arc::unwrap_or_clone(object);
            if !exists(&object) {
                self.count_checked(now);
                continue;
            }
            self.released.insert(object.clone(), now);
            return Some(object);
        }
        None
    }

    /// `object` was checked (by any trigger): it leaves the queue and frees its slot. Returns
    /// what to report.
    pub fn checked(&mut self, object: &Ref, now: Instant) -> Option<Report> {
        let was_waiting = self.queued.remove(object) | self.released.remove(object).is_some();
        if !was_waiting {
            return None;
        }
        self.count_checked(now);
        self.report(now)
    }

    fn count_checked(&mut self, _now: Instant) {
        if let Some(progress) = self.progress.as_mut() {
            progress.checked += 1;
        }
    }

    /// What to report now: done when empty, progress every [`REPORT_EVERY`].
    pub fn report(&mut self, now: Instant) -> Option<Report> {
        let progress = self.progress.as_mut()?;
        if self.queued.is_empty() && self.released.is_empty() {
            let done = Report::Done {
                checked: progress.checked,
                took: now.duration_since(progress.started),
            };
            self.progress = None;
            self.order.clear();
            return Some(done);
        }
        let since = now.duration_since(progress.last_report);
        if since < REPORT_EVERY {
            return None;
        }
        let per_second =
            (progress.checked - progress.checked_at_report) as f64 / since.as_secs_f64();
        progress.last_report = now;
        progress.checked_at_report = progress.checked;
        Some(Report::Draining {
            left: self.queued.len() + self.released.len(),
            per_second,
        })
    }
}

/// The backlog of one watched scope (all namespaces, or one of `--additional-namespaces`):
/// its release stream checks objects against that scope's watch cache.
#[derive(Debug)]
pub struct Backlog {
    queue: Mutex<Queue>,
    wake: Notify,
    metrics: Arc<Metrics>,
    width: usize,
}

impl Backlog {
    /// A backlog that releases at most `width` objects at a time.
    pub fn new(width: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            queue: Mutex::default(),
            wake: Notify::new(),
            metrics,
            width: width.max(1),
        }
    }

    fn with_queue<T>(&self, f: impl FnOnce(&mut Queue) -> T) -> T {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let before = queue.len();
        let out = f(&mut queue);
        // One gauge for every scope's backlog: each adds what it changed.
        self.metrics.add_backlog(queue.len() as i64 - before as i64);
        out
    }

    /// Queues `object` to be checked when a worker is free (and this replica leads).
    pub fn push(&self, object: Ref) {
        let started = self.with_queue(|q| q.push(object, Instant::now()));
        if started.is_some() {
            tracing::info!("backlog started: SealedSecrets are checked as workers free up");
        }
        self.wake.notify_one();
    }

    /// Queues `object` ahead of the others (see [`Queue::push_front`]).
    pub fn push_urgent(&self, object: Ref) {
        let started = self.with_queue(|q| q.push_front(object, Instant::now()));
        if started.is_some() {
            tracing::info!("backlog started: SealedSecrets are checked as workers free up");
        }
        self.wake.notify_one();
    }

    /// `object` was checked (whatever triggered it).
    pub fn checked(&self, object: &Ref) {
        let report = self.with_queue(|q| q.checked(object, Instant::now()));
        log(report);
        self.wake.notify_one();
    }

    /// Looks at the queue again now (this replica just took the lead) instead of at the next
    /// one-second tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Objects waiting.
    pub fn len(&self) -> usize {
        self.with_queue(|q| q.len())
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects to hand to the work queue, one at a time as slots free up, while `may_run`
    /// says so (this replica leads and has its keys); skips objects `store` no longer has.
    pub fn releases(
        self: Arc<Self>,
        store: Store<CachedSealedSecret>,
        may_run: impl Fn() -> bool + Send + 'static,
    ) -> impl futures::Stream<Item = Ref> + Send {
        futures::stream::unfold(
            (self, store, may_run),
            |(backlog, store, may_run)| async move {
                loop {
                    if may_run() {
                        let next = backlog.with_queue(|q| {
                            q.release(backlog.width, Instant::now(), |r| store.get(r).is_some())
                        });
                        if let Some(object) = next {
                            return Some((object, (backlog, store, may_run)));
                        }
                        let report = backlog.with_queue(|q| q.report(Instant::now()));
                        log(report);
                    }
                    // Woken by a push or a finished check; the timeout frees expired slots and
                    // notices leadership.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), backlog.wake.notified()).await;
                }
            },
        )
    }
}

/// Where an object delivered by a list goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To the work queue at once: new, changed while away, or failing.
    Now,
    /// To the backlog: its status says it was handled as it stands.
    Backlog,
    /// Nowhere: this process has seen it exactly so before (a relist after a watch gap).
    Skip,
}

/// Routes what a list (the first one, or a relist after a watch gap) delivers. A relist
/// repeats every object; those this process already saw with the same trigger hash (spec,
/// labels, annotations, uid) are skipped, so an API server restart costs nothing for objects
/// that did not change (a Secret deleted during the gap is found by the Secret watch's own
/// relist). Objects the list no longer has are forgotten when it ends.
#[derive(Debug, Default)]
pub struct ListRouter {
    /// `namespace/name` → (trigger hash, number of the last list that delivered it; 0: none).
    /// One compact entry per object, and no second set of the objects a list delivered (an
    /// `ObjectRef` key is 96 bytes and two strings; the map was 1.7 MB at 10,000).
    seen: HashMap<Box<str>, (u64, u64)>,
    /// Number of the list in progress, or of the last one.
    list: u64,
}

/// The router's key of an object (names and namespaces hold no `/`).
fn router_key(object: &Ref) -> Box<str> {
    format!(
        "{}/{}",
        object.namespace.as_deref().unwrap_or_default(),
        object.name
    )
    .into_boxed_str()
}

impl ListRouter {
    /// A list begins.
    pub fn list_started(&mut self) {
        self.list += 1;
    }

    /// An object of the list, with its trigger hash and whether its status is current.
    pub fn listed(&mut self, object: Ref, hash: u64, status_current: bool) -> Route {
        let previous = self.seen.insert(router_key(&object), (hash, self.list));
        if previous.map(|(seen, _)| seen) == Some(hash) {
            Route::Skip
        } else if status_current {
            Route::Backlog
        } else {
            Route::Now
        }
    }

    /// An object the watch reported: whether its trigger hash changed (else the event is only
    /// a status or resourceVersion change, ours or another writer's, and needs no pass). This
    /// is the one map of trigger hashes per object (kube's predicate filter kept a second one,
    /// about 700 bytes per object).
    pub fn changed(&mut self, object: Ref, hash: u64) -> bool {
        let key = router_key(&object);
        match self.seen.get_mut(&key) {
            Some((seen, _)) => std::mem::replace(seen, hash) != hash,
            None => {
                self.seen.insert(key, (hash, 0));
                true
            }
        }
    }

    /// An object the watch reported deleted.
    pub fn deleted(&mut self, object: &Ref) {
        self.seen.remove(&router_key(object));
    }

    /// The list is complete: what it did not deliver is gone.
    pub fn list_done(&mut self) {
        let list = self.list;
        self.seen
            .retain(|_, (_, delivered_by)| *delivered_by == list);
    }
}

fn log(report: Option<Report>) {
    match report {
        Some(Report::Started { .. }) | None => {}
        Some(Report::Draining { left, per_second }) => {
            tracing::info!(
                left,
                per_second = format!("{per_second:.0}"),
                "backlog: SealedSecrets left to check"
            )
        }
        Some(Report::Done { checked, took }) => {
            tracing::info!(checked, took = ?took, "backlog done: every SealedSecret checked")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str) -> Ref {
        ObjectRef::new(name).within("shop")
    }

    #[test]
    fn a_relist_skips_what_this_process_saw_unchanged() {
        let mut router = ListRouter::default();
        router.list_started();
        assert_eq!(router.listed(r("a"), 1, true), Route::Backlog);
        assert_eq!(router.listed(r("b"), 2, false), Route::Now);
        assert_eq!(router.listed(r("c"), 3, true), Route::Backlog);
        router.list_done();
        assert!(router.changed(r("c"), 33));
        assert!(
            !router.changed(r("c"), 33),
            "a status-only event needs no pass"
        );
        assert!(
            !router.changed(r("a"), 1),
            "nor does one for a backlogged object"
        );
        router.deleted(&r("b"));
        // A relist after a watch gap: `a` unchanged, `b` back (deleted and created again),
        // `c` as last seen through the watch, `d` new.
        router.list_started();
        assert_eq!(router.listed(r("a"), 1, true), Route::Skip);
        assert_eq!(router.listed(r("b"), 2, true), Route::Backlog);
        assert_eq!(router.listed(r("c"), 33, true), Route::Skip);
        assert_eq!(router.listed(r("d"), 4, false), Route::Now);
        router.list_done();
        // `a` was deleted during the next gap: forgotten, so its return is not skipped.
        router.list_started();
        for (name, hash) in [("b", 2), ("c", 33), ("d", 4)] {
            assert_eq!(router.listed(r(name), hash, true), Route::Skip);
        }
        router.list_done();
        router.list_started();
        assert_eq!(router.listed(r("a"), 1, true), Route::Backlog);
    }

    #[test]
    fn releases_at_most_width_objects_at_a_time_in_order() {
        let now = Instant::now();
        let mut q = Queue::default();
        assert_eq!(q.push(r("a"), now), Some(Report::Started { objects: 1 }));
        for name in ["b", "c", "a"] {
            assert_eq!(q.push(r(name), now), None);
        }
        assert_eq!(q.len(), 3, "a is queued once");
        let all = |_: &Ref| true;
        assert_eq!(q.release(2, now, all), Some(r("a")));
        assert_eq!(q.release(2, now, all), Some(r("b")));
        assert_eq!(q.release(2, now, all), None, "two slots taken");
        assert_eq!(q.checked(&r("a"), now), None);
        assert_eq!(q.release(2, now, all), Some(r("c")));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn what_a_standby_was_asked_about_goes_first() {
        let now = Instant::now();
        let mut q = Queue::default();
        for name in ["a", "b", "c"] {
            q.push(r(name), now);
        }
        q.push_front(r("new"), now);
        q.push_front(r("c"), now);
        assert_eq!(q.len(), 4);
        let order: Vec<Ref> = std::iter::from_fn(|| q.release(10, now, |_| true)).collect();
        assert_eq!(order, [r("c"), r("new"), r("a"), r("b")]);
    }

    #[test]
    fn an_object_checked_through_another_trigger_is_not_released_again() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.push(r("a"), now);
        q.push(r("b"), now);
        // A watch event reconciled `a` before the backlog got to it.
        q.checked(&r("a"), now);
        assert_eq!(q.release(4, now, |_| true), Some(r("b")));
        assert_eq!(q.release(4, now, |_| true), None);
    }

    #[test]
    fn deleted_objects_are_skipped_and_lost_slots_expire() {
        let now = Instant::now();
        let mut q = Queue::default();
        for name in ["gone", "a", "b"] {
            q.push(r(name), now);
        }
        assert_eq!(q.release(1, now, |o| o.name != "gone"), Some(r("a")));
        // `a` was deleted after its release: its pass never reports back.
        assert_eq!(q.release(1, now + Duration::from_secs(1), |_| true), None);
        assert_eq!(
            q.release(1, now + SLOT_EXPIRY, |_| true),
            Some(r("b")),
            "the slot is freed after the expiry"
        );
    }

    #[test]
    fn progress_is_reported_while_draining_and_when_done() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        for i in 0..30 {
            q.push(r(&format!("s{i}")), t0);
        }
        for i in 0..20 {
            let object = q.release(30, t0, |_| true).unwrap();
            assert_eq!(object, r(&format!("s{i}")));
            assert_eq!(q.checked(&object, t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(
            q.report(t0 + REPORT_EVERY),
            Some(Report::Draining {
                left: 10,
                per_second: 2.0
            })
        );
        for i in 20..30 {
            let object = q.release(30, t0, |_| true).unwrap();
            let report = q.checked(&object, t0 + Duration::from_secs(12));
            if i < 29 {
                assert_eq!(report, None);
            } else {
                assert_eq!(
                    report,
                    Some(Report::Done {
                        checked: 30,
                        took: Duration::from_secs(12)
                    })
                );
            }
        }
        assert!(q.is_empty());
        assert_eq!(q.report(t0 + Duration::from_secs(30)), None);
    }
}
