//! From SealedSecret watch events to work: the watch cache, what goes to the work queue at
//! once and what to the backlog, and the early lane of the first list.
//!
//! **The early lane.** kube's watcher reports nothing that happens after its first list began
//! until that list is complete, and at start the list holds every SealedSecret of the cluster:
//! at 10,000 objects (about 25 MB of JSON) that took over a second, and a SealedSecret created
//! right after a restart waited for it. So before the list starts, [`early_lane`] reads the
//! collection's current resourceVersion (a list of one object) and watches from there; what it
//! reports while the list runs goes to the watch cache and the work queue at once. It stops
//! when the first list is done, and the main watch takes over from the list's own
//! resourceVersion: the early lane only adds speed, the main watch alone is complete.
//!
//! Nothing is done twice in the usual case: an object the early lane delivered that the list
//! then delivers unchanged has the same trigger hash (spec, labels, annotations, uid) and is
//! skipped, like any relisted object. An object created after the list's snapshot is not in
//! the list, so it leaves the watch cache when the list completes, and the main watch delivers
//! it again a moment later: that one extra pass finds its Secret proven current by its digest
//! (one read, no decryption, no write). Keeping it in the cache instead could leave a deleted
//! object there for good (the early lane may not yet have reported a deletion the list already
//! reflects), and resourceVersions may not be compared to tell which is newer.
//!
//! For the work queue to run while the first list is still going, the watch cache is marked
//! ready at once (kube's controller waits for that); objects the list routes to the work queue
//! at once are put in the cache as they arrive (else the queue would find nothing), and the
//! Secret watch's triggers wait for the first list, when the cache has every object.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    sync::Arc,
};

use futures::{Stream, StreamExt};
use kube::{
    Api, Resource,
    api::{ListParams, WatchEvent, WatchParams},
    runtime::{
        reflector::{ObjectRef, store::Writer},
        watcher,
    },
};
use tokio::sync::{mpsc, watch};

use crate::{
    backlog::{Backlog, ListRouter, Route},
    cached::CachedSealedSecret as Cached,
    decisions::status_is_current,
    reconciler::{Context, Gone, sealed_event_gone, trigger_hash},
    relist::{RelistGaps, object_key},
};

/// One event for [`SealedWatch::handle`]: from kube's watcher, or from the early lane.
#[derive(Debug)]
pub enum Lane {
    /// The main watch (lists, relists, watch events).
    Main(Result<watcher::Event<Cached>, watcher::Error>),
    /// The early lane: `Apply` and `Delete` only, while the first list runs.
    Early(watcher::Event<Cached>),
}

/// The state between the SealedSecret watch and the work queue of one watched scope.
pub struct SealedWatch {
    writer: Writer<Cached>,
    ctx: Arc<Context>,
    backlog: Arc<Backlog>,
    deleted: mpsc::UnboundedSender<Gone>,
    router: ListRouter,
    gaps: RelistGaps<Gone>,
    /// Objects of the list in progress whose status is current: to the backlog when it ends.
    listed: Vec<ObjectRef<Cached>>,
    /// Set once the first list is complete (the early lane stops, Secret triggers flow).
    first_list_done: watch::Sender<bool>,
}

impl SealedWatch {
    /// The state for one scope; marks `writer`'s cache ready (see the module documentation).
    pub fn new(
        mut writer: Writer<Cached>,
        ctx: Arc<Context>,
        backlog: Arc<Backlog>,
        deleted: mpsc::UnboundedSender<Gone>,
        first_list_done: watch::Sender<bool>,
    ) -> Self {
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        Self {
            writer,
            ctx,
            backlog,
            deleted,
            router: ListRouter::default(),
            gaps: RelistGaps::default(),
            listed: Vec::new(),
            first_list_done,
        }
    }

    fn first_list_done(&self) -> bool {
        *self.first_list_done.borrow()
    }

    /// Applies one event to the watch cache and the bookkeeping; returns the object to hand to
    /// the work queue now, if any.
    pub fn handle(&mut self, lane: Lane) -> Option<Result<Cached, watcher::Error>> {
        let event = match lane {
            Lane::Main(Ok(event)) => event,
            Lane::Main(Err(err)) => return Some(Err(err)),
            Lane::Early(event) => return self.early(event).map(Ok),
        };
        self.writer.apply_watcher_event(&event);
        if let watcher::Event::Apply(sealed) | watcher::Event::InitApply(sealed) = &event
            && let Some(key) = object_key(sealed)
        {
            self.ctx.note_dependency(&key, Some(sealed));
        }
        for gone in sealed_event_gone(&mut self.gaps, &event) {
            let _ = self.deleted.send(gone);
        }
        match event {
            // Only what changes the output needs a pass: not our own status writes.
            watcher::Event::Apply(sealed) => self
                .router
                .changed(bare_ref(&sealed), route_hash(&sealed))
                .then_some(Ok(sealed)),
            watcher::Event::InitApply(sealed) => {
                let object = bare_ref(&sealed);
                let route = self.router.listed(
                    object.clone(),
                    route_hash(&sealed),
                    status_is_current(sealed.status.as_ref(), sealed.metadata.generation),
                );
                match route {
                    // In the cache now (the list's own copy is swapped in when it ends), so
                    // the work queue finds it.
                    Route::Now => {
                        self.writer
                            .apply_watcher_event(&watcher::Event::Apply(sealed.clone()));
                        Some(Ok(sealed))
                    }
                    // Released once the list is complete: the watch cache holds the listed
                    // objects only from then on.
                    Route::Backlog => {
                        self.listed.push(object);
                        None
                    }
                    Route::Skip => None,
                }
            }
            watcher::Event::Delete(sealed) => {
                self.router.deleted(&bare_ref(&sealed));
                None
            }
            watcher::Event::Init => {
                self.router.list_started();
                self.listed.clear();
                None
            }
            watcher::Event::InitDone => {
                self.router.list_done();
                for object in self.listed.drain(..) {
                    self.backlog.push(object);
                }
                self.first_list_done.send_replace(true);
                None
            }
        }
    }

    /// An event of the early lane (ignored once the first list is done).
    fn early(&mut self, event: watcher::Event<Cached>) -> Option<Cached> {
        if self.first_list_done() {
            return None;
        }
        self.writer.apply_watcher_event(&event);
        match event {
            watcher::Event::Apply(sealed) => {
                if let Some(key) = object_key(&sealed) {
                    self.ctx.note_dependency(&key, Some(&sealed));
                }
                self.router
                    .changed(bare_ref(&sealed), route_hash(&sealed))
                    .then_some(sealed)
            }
            watcher::Event::Delete(sealed) => {
                self.router.deleted(&bare_ref(&sealed));
                let _ = self.deleted.send(Gone::of(&sealed));
                None
            }
            watcher::Event::Init | watcher::Event::InitApply(_) | watcher::Event::InitDone => None,
        }
    }
}

/// The name and namespace of an object, as the router and the backlog keep it: kube's
/// `ObjectRef::from_obj` also copies the resourceVersion and uid, which its equality and hash
/// ignore, and which would cost about 100 bytes per object in each of their maps.
pub fn bare_ref(sealed: &impl Resource) -> ObjectRef<Cached> {
    let name = sealed.meta().name.as_deref().unwrap_or_default();
    match sealed.meta().namespace.as_deref() {
        Some(namespace) => ObjectRef::new(name).within(namespace),
        None => ObjectRef::new(name),
    }
}

/// `triggers`, held back until `first_list` says the first list is done, while a task of its
/// own keeps pulling them (the Secret watch lists on meanwhile, so a Secret deleted after its
/// list is an event, not a gap). The task ends with the stream or when the output is dropped.
pub fn after_first_list<S>(
    triggers: S,
    first_list: watch::Receiver<bool>,
) -> impl Stream<Item = ObjectRef<Cached>> + Send + use<S>
where
    S: Stream<Item = ObjectRef<Cached>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut triggers = std::pin::pin!(triggers);
        loop {
            tokio::select! {
                next = triggers.next() => {
                    let Some(object) = next else { return };
                    if tx.send(object).is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    futures::stream::unfold(
        (first_list, rx, false),
        |(mut first_list, mut rx, released)| async move {
            if !released {
                let _ = first_list.wait_for(|done| *done).await;
            }
            let object = rx.recv().await?;
            Some((object, (first_list, rx, true)))
        },
    )
}

/// The router's hash of an object: its trigger hash and its uid (a new object of the same name
/// is new work).
fn route_hash(sealed: &Cached) -> u64 {
    let mut hasher = DefaultHasher::new();
    trigger_hash(sealed).hash(&mut hasher);
    sealed.meta().uid.hash(&mut hasher);
    hasher.finish()
}

/// The early lane of `api` (see the module documentation): what changes after now, as
/// `Apply` and `Delete` events, until the watch ends or fails. Reads the collection's current
/// resourceVersion first; if that fails there is no early lane (an empty stream), and the
/// main watch does the work alone.
pub async fn early_lane(
    api: Api<Cached>,
    label_selector: &str,
) -> impl Stream<Item = watcher::Event<Cached>> + Send + use<> {
    let mut list = ListParams::default().limit(1);
    let mut params = WatchParams::default();
    if !label_selector.is_empty() {
        list = list.labels(label_selector);
        params = params.labels(label_selector);
    }
    let version = match api.list_metadata(&list).await {
        Ok(list) => list.metadata.resource_version.filter(|v| !v.is_empty()),
        Err(err) => {
            tracing::debug!(error = %err, "cannot read where to watch from; no early lane");
            None
        }
    };
    let watch = match version {
        Some(version) => match api.watch(&params, &version).await {
            Ok(events) => Some(events),
            Err(err) => {
                tracing::debug!(error = %err, "cannot start the early watch");
                None
            }
        },
        None => None,
    };
    futures::stream::iter(watch)
        .flatten()
        .take_while(|event| {
            let go_on = matches!(event, Ok(e) if !matches!(e, WatchEvent::Error(_)));
            if !go_on {
                tracing::debug!("the early watch ended; the main watch goes on alone");
            }
            std::future::ready(go_on)
        })
        .filter_map(|event| {
            std::future::ready(match event {
                Ok(WatchEvent::Added(sealed) | WatchEvent::Modified(sealed)) => {
                    Some(watcher::Event::Apply(sealed))
                }
                Ok(WatchEvent::Deleted(sealed)) => Some(watcher::Event::Delete(sealed)),
                _ => None,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decisions::next_status, fixtures::test_context, keyring::KeyRing};
    use kube::runtime::reflector::{self, Store};

    struct Harness {
        watch: SealedWatch,
        store: Store<Cached>,
        backlog: Arc<Backlog>,
        gone: mpsc::UnboundedReceiver<Gone>,
        done: watch::Receiver<bool>,
    }

    fn harness() -> Harness {
        let (ctx, _api) = test_context(Arc::new(KeyRing::default()));
        let (store, writer) = reflector::store();
        let backlog = ctx.backlog("shop");
        let (deleted, gone) = mpsc::unbounded_channel();
        let (done_tx, done) = watch::channel(false);
        let watch = SealedWatch::new(writer, ctx, Arc::clone(&backlog), deleted, done_tx);
        Harness {
            watch,
            store,
            backlog,
            gone,
            done,
        }
    }

    /// An object as the cache keeps it; `handled` gives it a current status.
    fn sealed(name: &str, uid: &str, generation: i64, handled: bool) -> Cached {
        let mut sealed =
            sealed_secrets_core::sealed_secret::SealedSecret::new(name, Default::default());
        sealed.metadata.namespace = Some("shop".into());
        sealed.metadata.uid = Some(uid.into());
        sealed.metadata.generation = Some(generation);
        if handled {
            sealed.status = next_status(None, Some(generation), None, None, jiff::Timestamp::now());
        }
        Cached::from(sealed)
    }

    fn main(event: watcher::Event<Cached>) -> Lane {
        Lane::Main(Ok(event))
    }

    fn emitted(out: Option<Result<Cached, watcher::Error>>) -> Option<String> {
        out.map(|o| o.expect("no error").metadata.name.unwrap_or_default())
    }

    #[tokio::test]
    async fn the_cache_is_ready_before_the_first_list() {
        let h = harness();
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            h.store.wait_until_ready(),
        )
        .await
        .expect("ready at once")
        .expect("writer alive");
        assert!(h.store.is_empty());
        drop(h.watch);
    }

    #[tokio::test]
    async fn an_object_created_during_the_first_list_is_worked_on_at_once_and_once() {
        let mut h = harness();
        let new = sealed("new", "u-new", 1, false);
        assert_eq!(emitted(h.watch.handle(main(watcher::Event::Init))), None);
        assert_eq!(
            emitted(h.watch.handle(main(watcher::Event::InitApply(sealed(
                "old", "u-old", 1, true
            ))))),
            None,
            "a handled object waits for the backlog"
        );
        // The early lane reports the new object while the list runs: to the cache and the
        // work queue at once.
        assert_eq!(
            emitted(
                h.watch
                    .handle(Lane::Early(watcher::Event::Apply(new.clone())))
            ),
            Some("new".into())
        );
        assert!(h.store.get(&ObjectRef::from_obj(&new)).is_some());
        // Our own status write, seen by the early lane: no second pass.
        let mut handled = new.clone();
        handled.status = sealed("new", "u-new", 1, true).status;
        assert_eq!(
            emitted(
                h.watch
                    .handle(Lane::Early(watcher::Event::Apply(handled.clone())))
            ),
            None
        );
        // The list's snapshot holds it too, unchanged: skipped.
        assert_eq!(
            emitted(
                h.watch
                    .handle(main(watcher::Event::InitApply(handled.clone())))
            ),
            None
        );
        assert_eq!(
            emitted(h.watch.handle(main(watcher::Event::InitDone))),
            None
        );
        assert!(*h.done.borrow());
        assert_eq!(h.backlog.len(), 1, "only the old object is in the backlog");
        assert!(h.store.get(&ObjectRef::from_obj(&new)).is_some());
        // The main watch goes on from the list: the same object again needs nothing.
        assert_eq!(
            emitted(h.watch.handle(main(watcher::Event::Apply(handled)))),
            None
        );
        // The early lane is ignored from now on.
        assert_eq!(
            emitted(h.watch.handle(Lane::Early(watcher::Event::Apply(sealed(
                "late", "u-late", 1, false
            ))))),
            None
        );
        assert!(
            h.store
                .get(&ObjectRef::new("late").within("shop"))
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_early_object_the_list_does_not_hold_comes_back_through_the_main_watch() {
        let mut h = harness();
        let new = sealed("new", "u-new", 1, false);
        h.watch.handle(main(watcher::Event::Init));
        assert_eq!(
            emitted(
                h.watch
                    .handle(Lane::Early(watcher::Event::Apply(new.clone())))
            ),
            Some("new".into())
        );
        // Created after the list's snapshot: the list completes without it...
        h.watch.handle(main(watcher::Event::InitDone));
        assert!(h.store.get(&ObjectRef::from_obj(&new)).is_none());
        // ...and the main watch's event puts it back and hands it to the work queue (a pass
        // that its digest makes cheap), so a failed early pass is never lost.
        assert_eq!(
            emitted(h.watch.handle(main(watcher::Event::Apply(new.clone())))),
            Some("new".into())
        );
        assert!(h.store.get(&ObjectRef::from_obj(&new)).is_some());
    }

    #[tokio::test]
    async fn objects_the_list_sends_to_work_at_once_are_in_the_cache_before_it_ends() {
        let mut h = harness();
        h.watch.handle(main(watcher::Event::Init));
        let changed = sealed("changed", "u-c", 2, false);
        assert_eq!(
            emitted(
                h.watch
                    .handle(main(watcher::Event::InitApply(changed.clone())))
            ),
            Some("changed".into())
        );
        assert!(
            h.store.get(&ObjectRef::from_obj(&changed)).is_some(),
            "the work queue finds it while the list runs"
        );
        h.watch.handle(main(watcher::Event::InitDone));
        assert!(h.store.get(&ObjectRef::from_obj(&changed)).is_some());
        assert!(h.backlog.is_empty());
    }

    #[tokio::test]
    async fn secret_triggers_wait_for_the_first_list_and_the_watch_runs_on() {
        use std::time::Duration;
        let (source_tx, mut source_rx) = mpsc::channel::<ObjectRef<Cached>>(1);
        let source = futures::stream::poll_fn(move |cx| source_rx.poll_recv(cx));
        let (done_tx, done_rx) = watch::channel(false);
        let mut out = std::pin::pin!(after_first_list(source, done_rx));
        // The watch is drained while the first list runs (a channel of one would block)...
        for name in ["a", "b", "c"] {
            tokio::time::timeout(
                Duration::from_secs(1),
                source_tx.send(ObjectRef::new(name).within("shop")),
            )
            .await
            .expect("the source is drained")
            .expect("the task is alive");
        }
        // ...but nothing is handed on yet.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), out.next())
                .await
                .is_err()
        );
        done_tx.send_replace(true);
        for name in ["a", "b", "c"] {
            assert_eq!(out.next().await.map(|r| r.name), Some(name.to_string()));
        }
        drop(source_tx);
        assert_eq!(out.next().await, None, "ends with the source");
    }

    #[tokio::test]
    async fn an_early_deletion_is_cleaned_up() {
        let mut h = harness();
        h.watch.handle(main(watcher::Event::Init));
        let doomed = sealed("doomed", "u-d", 1, false);
        h.watch
            .handle(Lane::Early(watcher::Event::Apply(doomed.clone())));
        h.watch
            .handle(Lane::Early(watcher::Event::Delete(doomed.clone())));
        assert!(h.store.get(&ObjectRef::from_obj(&doomed)).is_none());
        let gone = h.gone.try_recv().expect("cleanup requested");
        assert_eq!((gone.name.as_str(), gone.uid.as_str()), ("doomed", "u-d"));
    }
}
