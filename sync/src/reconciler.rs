//! The `GitSync` controller: fetch, render and sync every GitSync on its interval, and sooner
//! when something it applied changes.
//!
//! Decisions:
//! - A new revision or a new spec generation applies everything; the same revision only
//!   compares, re-applying drift when `selfHeal` is on (Argo CD's default is off, as ours).
//! - Drift is noticed two ways, as the issue asks: on the interval, and through metadata-only
//!   watches of every kind a GitSync applied, selected by our ownership label. A change of
//!   generation, labels or annotations (or of any field, for kinds without a generation, such
//!   as ConfigMaps), or a deletion, queues the owning GitSync at once.
//! - Status is written only when it changed, and our own status writes do not trigger a
//!   reconcile (the trigger is the generation plus a `requestedAt` annotation), so an idle
//!   GitSync costs one `ls-remote` and a few LISTs per interval.
//! - A failure keeps the previous inventory, so a later successful sync still prunes correctly.
//! - Every request of a sync (credentials, discovery, dry-runs, applies, drift LISTs and
//!   watches, prunes) runs as the GitSync's ServiceAccount ([`crate::tenancy`]); only reading
//!   GitSyncs and writing their status and finalizer use the controller's own identity.
//! - A finalizer prunes the inventory when a GitSync with `prune: true` is deleted (as Flux's
//!   kustomize-controller). Like Flux, a failed cleanup is logged and the finalizer removed
//!   anyway: a GitSync stuck in deletion would block its namespace's deletion.
//! - At most `concurrent` syncs run at once; fetch, render and apply each have a deadline, so
//!   one hung repository cannot hold a worker forever.
//! - Drift watches are shared per (identity, kind, namespace) and reference-counted by the
//!   GitSyncs that need them; the last one to stop needing a watch stops it.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Resource, ResourceExt,
    api::{DynamicObject, PartialObjectMeta, Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::Action as Requeue,
        predicates,
        reflector::{self, ObjectRef},
        watcher,
    },
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{
    audit::{self, DriftRecord, SyncRecord, SyncResult, Trigger, TriggerFacts},
    cluster::{Cluster, Kind},
    engine::{self, Mode, SyncError, SyncReport, Target},
    health::Health,
    notify::{Notifier, Webhook, webhook_from_secret},
    policy::SealedSecretVerifier,
    render::Renderer,
    resource::{
        Condition, FINALIZER, GitSync, GitSyncStatus, InventoryEntry, InventoryStatus, NAME_LABEL,
        NAMESPACE_LABEL, parse_interval,
    },
    source::{CommitInfo, Credentials, Source, SourceSpec},
    tenancy::{Identity, SameClient, SharedClusters, TenancyPolicy},
    trail::Trail,
};

/// Annotation whose change asks for a sync now (value: any, e.g. a timestamp).
pub const REQUESTED_AT_ANNOTATION: &str = "gitops.sealed-secrets-rs.io/requested-at";
/// How soon to look again while applied objects are still progressing.
const PROGRESSING_REQUEUE: Duration = Duration::from_secs(10);
/// How soon to retry after a failure.
const FAILURE_REQUEUE: Duration = Duration::from_secs(30);

/// Deadlines of the stages of one sync.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Fetching the revision (every git command is also killed after its own timeout).
    pub fetch: Duration,
    /// Rendering (kubectl kustomize is killed after the renderer's own timeout).
    pub render: Duration,
    /// Policy check, apply, prune and health together.
    pub apply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            fetch: Duration::from_secs(180),
            render: Duration::from_secs(120),
            apply: Duration::from_secs(300),
        }
    }
}

/// The outcome of one reconcile, for metrics.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    /// The GitSync's namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// The Ready condition's reason (`Synced`, `FetchFailed`, `Forbidden`, ...).
    pub reason: &'a str,
    /// Whether Ready is true.
    pub ready: bool,
    /// The Healthy condition's reason, when a sync got that far.
    pub health: Option<&'a str>,
    /// How long the reconcile took (waiting for a worker not included).
    pub duration: Duration,
    /// What started it (`NewRevision`, `Drift`, ..., `Interval`); `None` when no sync ran
    /// (suspended, invalid spec).
    pub trigger: Option<&'a str>,
    /// When a sync of this GitSync last succeeded (Unix seconds), from status.
    pub last_success: Option<i64>,
}

/// Receives what the reconciler did (the controller turns it into Prometheus metrics).
pub trait Observer: Send + Sync {
    /// A reconcile finished.
    fn finished(&self, outcome: &Outcome<'_>);
    /// A GitSync was deleted (its series can go).
    fn deleted(&self, namespace: &str, name: &str);
    /// Reconciles waiting for a worker.
    fn queue_depth(&self, waiting: usize);
    /// Drift watches running.
    fn drift_watches(&self, running: usize);
    /// A sync found drift and recorded it (reverted, re-created or reported).
    fn drift(&self, namespace: &str, name: &str, record: &DriftRecord) {
        let _ = (namespace, name, record);
    }
}

/// What the reconciler needs.
pub struct Context {
    /// The API server, as the controller itself (GitSyncs, their status and finalizer).
    pub cluster: Cluster,
    /// The API server as each GitSync's identity.
    pub clusters: SharedClusters,
    /// Which identity a GitSync syncs with.
    pub tenancy: TenancyPolicy,
    /// Where manifests come from.
    pub source: Arc<dyn Source>,
    /// How folders become objects.
    pub renderer: Renderer,
    /// Opens SealedSecrets for the secret policy; `None` skips that check.
    pub verifier: Option<Arc<dyn SealedSecretVerifier>>,
    /// Stage deadlines.
    pub timeouts: Timeouts,
    observer: Option<Arc<dyn Observer>>,
    recorder: Option<kube::runtime::events::Recorder>,
    notifier: Option<Arc<dyn Notifier>>,
    workers: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    drift: DriftWatches,
    watch_drift: bool,
}

/// Syncs that run at once by default.
pub const DEFAULT_CONCURRENT: usize = 4;

impl Context {
    /// A context; drift watches start lazily, per kind, as GitSyncs apply them.
    ///
    /// Every identity uses `cluster` and GitSyncs without a ServiceAccount use it too, until
    /// [`Context::with_tenancy`] says otherwise: fit for tests against an in-memory server,
    /// which has no RBAC; a controller always sets the tenancy.
    pub fn new(
        cluster: Cluster,
        source: Arc<dyn Source>,
        renderer: Renderer,
        verifier: Option<Arc<dyn SealedSecretVerifier>>,
    ) -> Context {
        Context {
            drift: DriftWatches::new(),
            watch_drift: true,
            clusters: Arc::new(SameClient(cluster.clone())),
            tenancy: TenancyPolicy {
                default_service_account: None,
                allow_controller_identity: true,
            },
            cluster,
            source,
            renderer,
            verifier,
            timeouts: Timeouts::default(),
            observer: None,
            recorder: None,
            notifier: None,
            workers: Arc::new(tokio::sync::Semaphore::new(DEFAULT_CONCURRENT)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Syncs run as identities built by `clusters`, chosen by `policy`.
    pub fn with_tenancy(mut self, clusters: SharedClusters, policy: TenancyPolicy) -> Context {
        self.clusters = clusters;
        self.tenancy = policy;
        self
    }

    /// At most `concurrent` syncs at once (at least one).
    pub fn with_concurrency(mut self, concurrent: usize) -> Context {
        self.workers = Arc::new(tokio::sync::Semaphore::new(concurrent.max(1)));
        self
    }

    /// Stage deadlines.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Context {
        self.timeouts = timeouts;
        self
    }

    /// Reports outcomes to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Context {
        self.observer = Some(observer);
        self
    }

    /// Records Events on GitSyncs (as the controller's own identity), reported by
    /// `controller`.
    pub fn with_events(mut self, controller: &str) -> Context {
        let reporter = kube::runtime::events::Reporter {
            controller: controller.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        self.recorder = Some(kube::runtime::events::Recorder::new(
            self.cluster.client().clone(),
            reporter,
        ));
        self
    }

    /// Sends GitSyncs' notifications through `notifier`; without one, a GitSync that asks for
    /// notifications gets `Notifications=False`.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Context {
        self.notifier = Some(notifier);
        self
    }

    /// Notices drift on the interval only (no watches); for tests against a server without
    /// watch support.
    pub fn without_drift_watches(mut self) -> Context {
        self.watch_drift = false;
        self
    }

    /// Drift watches running now.
    pub fn drift_watch_count(&self) -> usize {
        self.drift.count()
    }
}

/// A reconcile failure that could not even be recorded in status (or the finalizer).
#[derive(Debug, thiserror::Error)]
#[error("writing {what} of GitSync {name}: {source}")]
pub struct StatusError {
    what: &'static str,
    name: String,
    source: kube::Error,
}

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.cluster.client().clone();
    let api: Api<GitSync> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    )
    .applied_objects()
    .predicate_filter(trigger_hash, Default::default());
    if let Some(ns) = &namespace {
        ctx.drift.limit_to_owner_namespace(ns);
    }
    let drift_events = ctx.drift.take_receiver();
    let mut controller = Controller::for_stream(stream, reader);
    if let Some(events) = drift_events {
        controller = controller.reconcile_on(tokio_stream_from(events));
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "gitsync reconcile");
            }
        })
        .await;
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<GitSync>>,
) -> impl futures::Stream<Item = ObjectRef<GitSync>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// What makes a GitSync worth reconciling: its spec generation and the requested-at annotation.
fn trigger_hash(sync: &GitSync) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    predicates::generation(sync).hash(&mut hasher);
    sync.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    sync.annotations()
        .get(REQUESTED_AT_ANNOTATION)
        .hash(&mut hasher);
    Some(hasher.finish())
}

fn error_policy(_sync: Arc<GitSync>, err: &StatusError, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(error = %err, "gitsync status");
    Requeue::requeue(FAILURE_REQUEUE)
}

/// One reconcile of one GitSync, once a worker is free: fetch, render, sync, write status;
/// says when to look again.
pub async fn reconcile(sync: Arc<GitSync>, ctx: Arc<Context>) -> Result<Requeue, StatusError> {
    let waiting = ctx.waiting.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(observer) = &ctx.observer {
        observer.queue_depth(waiting);
    }
    let permit = Arc::clone(&ctx.workers).acquire_owned().await;
    let waiting = ctx.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
    if let Some(observer) = &ctx.observer {
        observer.queue_depth(waiting);
    }
    let started = Instant::now();
    let result = if sync.metadata.deletion_timestamp.is_some() {
        finalize(&sync, &ctx).await
    } else {
        ensure_finalizer(&sync, &ctx).await?;
        reconcile_live(&sync, &ctx, started).await
    };
    drop(permit);
    if let Some(observer) = &ctx.observer {
        observer.drift_watches(ctx.drift.count());
    }
    result
}

fn has_finalizer(sync: &GitSync) -> bool {
    sync.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds our finalizer (optimistically locked on the resourceVersion read).
async fn ensure_finalizer(sync: &GitSync, ctx: &Context) -> Result<(), StatusError> {
    if has_finalizer(sync) {
        return Ok(());
    }
    let mut finalizers = sync.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    patch_finalizers(sync, ctx, finalizers).await
}

async fn patch_finalizers(
    sync: &GitSync,
    ctx: &Context,
    finalizers: Vec<String>,
) -> Result<(), StatusError> {
    let name = sync.name_any();
    let api: Api<GitSync> = Api::namespaced(
        ctx.cluster.client().clone(),
        &sync.namespace().unwrap_or_default(),
    );
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": sync.resource_version(),
    }});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: nothing left to finalize.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(StatusError {
            what: "finalizers",
            name,
            source,
        }),
    }
}

/// A deleted GitSync: prune its inventory when `prune` is on (and it is not suspended), stop
/// its drift watches, then let it go.
async fn finalize(sync: &GitSync, ctx: &Context) -> Result<Requeue, StatusError> {
    let name = sync.name_any();
    let namespace = sync.namespace().unwrap_or_default();
    ctx.drift.release(&ObjectRef::from_obj(sync));
    if let Some(observer) = &ctx.observer {
        observer.deleted(&namespace, &name);
    }
    if !has_finalizer(sync) {
        return Ok(Requeue::await_change());
    }
    let inventory = sync
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.clone())
        .unwrap_or_default();
    if sync.spec.prune && !sync.spec.suspend && !inventory.is_empty() {
        match prune_all(sync, ctx, &inventory).await {
            Ok(count) => {
                tracing::info!(gitsync = %name, namespace = %namespace, pruned = count, "GitSync deleted: inventory pruned");
            }
            Err(message) => {
                tracing::warn!(gitsync = %name, namespace = %namespace, error = %message, "GitSync deleted: pruning failed; objects left in place");
            }
        }
    }
    let others: Vec<String> = sync
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(sync, ctx, others).await?;
    Ok(Requeue::await_change())
}

/// Deletes every object of `inventory` as the GitSync's identity (same rules as prune).
async fn prune_all(
    sync: &GitSync,
    ctx: &Context,
    inventory: &[InventoryEntry],
) -> Result<usize, String> {
    let namespace = sync.namespace().unwrap_or_default();
    let identity = ctx
        .tenancy
        .identity(&namespace, sync.spec.service_account_name.as_deref())
        .map_err(|e| e.to_string())?;
    let cluster = ctx
        .clusters
        .cluster_for(&identity)
        .map_err(|e| e.to_string())?;
    let target = Target {
        owner_name: sync.name_any(),
        owner_namespace: namespace.clone(),
        default_namespace: namespace,
        prune: true,
        create_namespace: false,
        raw_secrets: sync.spec.secret_policy.raw_secrets,
        verifier: None,
    };
    let work = engine::sync(&cluster, &[], &target, inventory, Mode::Apply);
    match tokio::time::timeout(ctx.timeouts.apply, work).await {
        Ok(Ok(report)) => Ok(report.pruned.len()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("timed out after {:?}", ctx.timeouts.apply)),
    }
}

async fn reconcile_live(
    sync: &Arc<GitSync>,
    ctx: &Arc<Context>,
    started: Instant,
) -> Result<Requeue, StatusError> {
    let name = sync.name_any();
    let namespace = sync.namespace().unwrap_or_default();
    let old = sync.status.clone().unwrap_or_default();
    let generation = sync.metadata.generation;
    let mut status = old.clone();
    status.observed_generation = generation;
    let now = jiff::Timestamp::now().to_string();
    let set = |status: &mut GitSyncStatus,
               type_: &str,
               ok: Option<bool>,
               reason: &str,
               message: String| {
        set_condition(
            &mut status.conditions,
            type_,
            ok,
            reason,
            &message,
            generation,
            &now,
        );
    };
    let observe = |status: &GitSyncStatus,
                   reason: &str,
                   ready: bool,
                   health: Option<&str>,
                   trigger: Option<Trigger>| {
        if let Some(observer) = &ctx.observer {
            observer.finished(&Outcome {
                namespace: &namespace,
                name: &name,
                reason,
                ready,
                health,
                duration: started.elapsed(),
                trigger: trigger.map(Trigger::as_str),
                // Now for a success; else the newest success the history still holds. (Not a
                // status field: it would change, and be written, at every idle resync.)
                last_success: if ready {
                    Some(jiff::Timestamp::now().as_second())
                } else {
                    status
                        .history
                        .iter()
                        .find(|r| r.result == SyncResult::Succeeded)
                        .and_then(|r| r.finished_at.parse::<jiff::Timestamp>().ok())
                        .map(|t| t.as_second())
                },
            });
        }
    };

    let interval = match parse_interval(&sync.spec.interval) {
        Ok(interval) => interval,
        Err(err) => {
            status.last_error = Some(err.to_string());
            set(
                &mut status,
                "Ready",
                Some(false),
                "InvalidSpec",
                err.to_string(),
            );
            write_status(ctx, sync, &old, &status).await?;
            observe(&status, "InvalidSpec", false, None, None);
            return Ok(Requeue::await_change());
        }
    };
    if sync.spec.suspend {
        set(
            &mut status,
            "Ready",
            Some(false),
            "Suspended",
            "spec.suspend is true".into(),
        );
        write_status(ctx, sync, &old, &status).await?;
        observe(&status, "Suspended", false, None, None);
        return Ok(Requeue::await_change());
    }
    let identity = match ctx
        .tenancy
        .identity(&namespace, sync.spec.service_account_name.as_deref())
    {
        Ok(identity) => identity,
        Err(err) => {
            status.last_error = Some(err.to_string());
            set(
                &mut status,
                "Ready",
                Some(false),
                "NoServiceAccount",
                err.to_string(),
            );
            write_status(ctx, sync, &old, &status).await?;
            observe(&status, "NoServiceAccount", false, None, None);
            // A new default needs a restart of the controller; a spec change re-triggers.
            return Ok(Requeue::requeue(interval));
        }
    };

    // The webhook first: a refused target is a condition of its own and never stops a sync.
    let webhook = match &sync.spec.notifications {
        None => {
            status.conditions.retain(|c| c.type_ != NOTIFICATIONS);
            None
        }
        Some(spec) => {
            match prepare_webhook(ctx, &identity, &namespace, &name, &spec.secret_ref.name).await {
                Ok((webhook, notifier)) => {
                    set(
                        &mut status,
                        NOTIFICATIONS,
                        Some(true),
                        "WebhookReady",
                        "records are sent to the webhook of the notification Secret".into(),
                    );
                    Some((webhook, notifier))
                }
                Err((reason, message)) => {
                    tracing::info!(gitsync = %name, namespace = %namespace, reason, "notifications off");
                    set(&mut status, NOTIFICATIONS, Some(false), reason, message);
                    None
                }
            }
        }
    };

    let requested_at = sync.annotations().get(REQUESTED_AT_ANNOTATION).cloned();
    let facts = TriggerFacts {
        requested: requested_at.is_some() && requested_at != old.last_handled_requested_at,
        spec_changed: old.observed_generation.is_some() && old.observed_generation != generation,
        after_failure: old.last_error.is_some()
            || old
                .history
                .first()
                .is_some_and(|r| r.result == SyncResult::Failed),
        ..TriggerFacts::default()
    };
    status.last_handled_requested_at = requested_at;
    let previous_record = old.history.first().cloned();
    let history_limit = audit::history_limit(sync.spec.history_limit);

    let mut fetched: Option<(String, Option<CommitInfo>)> = None;
    let outcome = run_sync(sync, ctx, &identity, &mut status, &mut fetched).await;
    let finished = jiff::Timestamp::now().to_string();
    let (commit_subject, commit_author) = match fetched.as_ref().and_then(|f| f.1.clone()) {
        Some(commit) => (Some(commit.subject), Some(commit.author)),
        None => (None, None),
    };
    let mut new_drift: Vec<DriftRecord> = Vec::new();
    let mut record: Option<SyncRecord> = None;
    let requeue = match outcome {
        Ok(Synced {
            revision,
            report,
            cluster,
            mode,
        }) => {
            let found = audit::drift_records(&report.objects, mode, &revision, &now);
            new_drift = audit::push_drift(&mut status.drift, found);
            let count = |f: fn(&engine::Action) -> bool| {
                u32::try_from(report.objects.iter().filter(|o| f(&o.action)).count())
                    .unwrap_or(u32::MAX)
            };
            let created = count(|a| matches!(a, engine::Action::Created));
            let configured = count(|a| matches!(a, engine::Action::Configured));
            let pruned = u32::try_from(report.pruned.len()).unwrap_or(u32::MAX);
            let trigger = audit::trigger(TriggerFacts {
                new_revision: old.last_applied_revision.as_deref() != Some(revision.as_str()),
                drift_found: !new_drift.is_empty(),
                ..facts
            });
            if trigger != Trigger::Interval || created + configured + pruned > 0 {
                record = Some(SyncRecord {
                    revision: revision.clone(),
                    commit_subject: commit_subject.clone(),
                    commit_author: commit_author.clone(),
                    started_at: now.clone(),
                    finished_at: finished.clone(),
                    trigger,
                    result: SyncResult::Succeeded,
                    reason: "Synced".into(),
                    message: String::new(),
                    created,
                    configured,
                    unchanged: count(|a| matches!(a, engine::Action::Unchanged)),
                    pruned,
                    drifted: u32::try_from(new_drift.len()).unwrap_or(u32::MAX),
                    attempts: 1,
                });
            }
            status.last_applied_revision = Some(revision.clone());
            status.last_error = None;
            status.inventory = Some(InventoryStatus {
                entries: report.inventory.clone(),
            });
            set(
                &mut status,
                "Ready",
                Some(true),
                "Synced",
                summary(&revision, &report),
            );
            let (ok, reason) = match &report.health {
                Health::Healthy => (Some(true), "Healthy"),
                Health::Progressing { .. } => (Some(false), "Progressing"),
                Health::Degraded { .. } => (Some(false), "Degraded"),
            };
            let message = match &report.health {
                Health::Healthy => "all applied objects are healthy".to_string(),
                Health::Progressing { reason } | Health::Degraded { reason } => reason.clone(),
            };
            set(&mut status, "Healthy", ok, reason, message);
            if ctx.watch_drift {
                ctx.drift
                    .ensure(
                        ObjectRef::from_obj(sync.as_ref()),
                        &cluster,
                        &identity,
                        &report.inventory,
                    )
                    .await;
            }
            observe(&status, "Synced", true, Some(reason), Some(trigger));
            if report.health.is_healthy() {
                interval
            } else {
                interval.min(PROGRESSING_REQUEUE)
            }
        }
        Err((reason, message)) => {
            tracing::info!(gitsync = %name, namespace = %namespace, reason, "sync failed");
            let trigger = audit::trigger(TriggerFacts {
                new_revision: fetched
                    .as_ref()
                    .is_some_and(|f| old.last_applied_revision.as_deref() != Some(f.0.as_str())),
                ..facts
            });
            record = Some(SyncRecord {
                revision: fetched.as_ref().map(|f| f.0.clone()).unwrap_or_default(),
                commit_subject,
                commit_author,
                started_at: now.clone(),
                finished_at: finished.clone(),
                trigger,
                result: SyncResult::Failed,
                reason: reason.to_string(),
                message: audit::cut(&message, audit::MAX_MESSAGE),
                created: 0,
                configured: 0,
                unchanged: 0,
                pruned: 0,
                drifted: 0,
                attempts: 1,
            });
            status.last_error = Some(message.clone());
            set(&mut status, "Ready", Some(false), reason, message);
            observe(&status, reason, false, None, Some(trigger));
            interval.min(FAILURE_REQUEUE)
        }
    };
    if let Some(record) = &record {
        audit::push_history(&mut status.history, record.clone(), history_limit);
    }
    write_status(ctx, sync, &old, &status).await?;

    // Status holds the records; now the Events, audit lines and webhook.
    let trail = Trail {
        sync: sync.as_ref(),
        recorder: ctx.recorder.as_ref(),
        webhook,
    };
    // Every record is counted and logged; Events and webhooks (requests of their own) are
    // sent for the first few, so a wiped namespace does not become hundreds of requests.
    for (index, drift) in new_drift.iter().enumerate() {
        if let Some(observer) = &ctx.observer {
            observer.drift(&namespace, &name, drift);
        }
        trail.drift(drift, index < MAX_PUBLISHED_DRIFT).await;
    }
    if new_drift.len() > MAX_PUBLISHED_DRIFT {
        trail
            .more_drift(new_drift.len() - MAX_PUBLISHED_DRIFT)
            .await;
    }
    if let Some(kept) = status.history.first()
        && record.is_some()
    {
        let recovered = crate::notify::is_recovery(kept, previous_record.as_ref());
        trail.sync_record(kept, recovered).await;
    }
    Ok(Requeue::requeue(requeue))
}

/// Drift records of one sync sent as Events and to the webhook; the rest are only logged,
/// counted and (the newest) kept in status.
const MAX_PUBLISHED_DRIFT: usize = 10;

/// Condition type of the webhook's state.
const NOTIFICATIONS: &str = "Notifications";

/// Reads the notification Secret as the GitSync's identity and checks its address against
/// the controller's target policy. Errors are (condition reason, message); messages name the
/// Secret and the key, never the address.
async fn prepare_webhook(
    ctx: &Context,
    identity: &Identity,
    namespace: &str,
    name: &str,
    secret: &str,
) -> Result<(Webhook, Arc<dyn Notifier>), (&'static str, String)> {
    let Some(notifier) = ctx.notifier.clone() else {
        return Err((
            "NotificationsUnavailable",
            "this controller sends no notifications".into(),
        ));
    };
    let cluster = ctx
        .clusters
        .cluster_for(identity)
        .map_err(|e| ("WebhookSecretUnreadable", e.to_string()))?;
    let api: Api<Secret> = Api::namespaced(cluster.client().clone(), namespace);
    let found = api.get_opt(secret).await.map_err(|e| {
        (
            "WebhookSecretUnreadable",
            format!("spec.notifications.secretRef: reading Secret {namespace}/{secret}: {e}"),
        )
    })?;
    let secret_obj = found.ok_or_else(|| {
        (
            "WebhookSecretUnreadable",
            format!("spec.notifications.secretRef: Secret {namespace}/{secret} not found"),
        )
    })?;
    let data = secret_obj.data.unwrap_or_default();
    let webhook = webhook_from_secret(&data, &format!("{namespace}/{name}")).map_err(|m| {
        (
            "WebhookSecretInvalid",
            format!("spec.notifications.secretRef: Secret {namespace}/{secret}: {m}"),
        )
    })?;
    notifier
        .check(&webhook.address)
        .await
        .map_err(|m| ("WebhookRefused", m))?;
    Ok((webhook, notifier))
}

/// A sync that got to the end.
struct Synced {
    revision: String,
    report: SyncReport,
    cluster: Cluster,
    mode: Mode,
}

/// Fetch, render, sync. Errors come back as (condition reason, message). `fetched` gets the
/// revision and commit as soon as the fetch succeeded, for the history of a later failure.
async fn run_sync(
    sync: &GitSync,
    ctx: &Context,
    identity: &Identity,
    status: &mut GitSyncStatus,
    fetched: &mut Option<(String, Option<CommitInfo>)>,
) -> Result<Synced, (&'static str, String)> {
    let namespace = sync.namespace().unwrap_or_default();
    let cluster = ctx
        .clusters
        .cluster_for(identity)
        .map_err(|e| ("NoServiceAccount", e.to_string()))?;
    let credentials = match &sync.spec.source.secret_ref {
        Some(reference) => Some(
            read_credentials(&cluster, &namespace, &reference.name)
                .await
                .map_err(|m| ("CredentialsFailed", m))?,
        ),
        None => None,
    };
    let spec = SourceSpec {
        url: sync.spec.source.url.clone(),
        revision: sync.spec.source.revision.clone(),
        credentials,
    };
    let source = Arc::clone(&ctx.source);
    let fetch = tokio::task::spawn_blocking(move || source.fetch(&spec));
    let checkout = tokio::time::timeout(ctx.timeouts.fetch, fetch)
        .await
        .map_err(|_| ("FetchFailed", timed_out("fetch", ctx.timeouts.fetch)))?
        .map_err(|e| ("FetchFailed", e.to_string()))?
        .map_err(|e| ("FetchFailed", e.to_string()))?;
    status.last_fetched_revision = Some(checkout.revision.clone());
    *fetched = Some((checkout.revision.clone(), checkout.commit.clone()));

    let renderer = ctx.renderer.clone();
    let path = sync.spec.source.path.clone();
    let dir = checkout.dir.clone();
    let render = tokio::task::spawn_blocking(move || renderer.render(&dir, &path));
    let manifests = tokio::time::timeout(ctx.timeouts.render, render)
        .await
        .map_err(|_| ("RenderFailed", timed_out("render", ctx.timeouts.render)))?
        .map_err(|e| ("RenderFailed", e.to_string()))?
        .map_err(|e| ("RenderFailed", e.to_string()))?;

    let same_revision = status.last_applied_revision.as_deref() == Some(checkout.revision.as_str());
    let same_spec =
        sync.status.as_ref().and_then(|s| s.observed_generation) == sync.metadata.generation;
    let mode = match (same_revision && same_spec, sync.spec.self_heal) {
        (false, _) => Mode::Apply,
        (true, true) => Mode::Heal,
        (true, false) => Mode::Check,
    };
    let default_namespace = if sync.spec.destination.namespace.is_empty() {
        namespace.clone()
    } else {
        sync.spec.destination.namespace.clone()
    };
    let verifier = if sync.spec.secret_policy.verify_sealed_secrets {
        ctx.verifier.as_deref()
    } else {
        None
    };
    let target = Target {
        owner_name: sync.name_any(),
        owner_namespace: namespace,
        default_namespace,
        prune: sync.spec.prune,
        create_namespace: sync.spec.create_namespace,
        raw_secrets: sync.spec.secret_policy.raw_secrets,
        verifier,
    };
    let previous = status
        .inventory
        .as_ref()
        .map(|i| i.entries.clone())
        .unwrap_or_default();
    let work = engine::sync(&cluster, &manifests, &target, &previous, mode);
    let report = tokio::time::timeout(ctx.timeouts.apply, work)
        .await
        .map_err(|_| ("ApplyFailed", timed_out("apply", ctx.timeouts.apply)))?
        .map_err(|e: SyncError| (e.reason(), e.to_string()))?;
    Ok(Synced {
        revision: checkout.revision,
        report,
        cluster,
        mode,
    })
}

fn timed_out(stage: &str, limit: Duration) -> String {
    format!("{stage} did not finish within {limit:?}")
}

/// One line for the Ready condition.
fn summary(revision: &str, report: &SyncReport) -> String {
    use engine::Action;
    let short: String = revision.chars().take(12).collect();
    let count = |f: fn(&Action) -> bool| report.objects.iter().filter(|o| f(&o.action)).count();
    let drifted = count(|a| matches!(a, Action::Drifted(_) | Action::Missing));
    let mut message = format!(
        "applied revision {short}: {} objects ({} created, {} configured), {} pruned",
        report.objects.len(),
        count(|a| matches!(a, Action::Created)),
        count(|a| matches!(a, Action::Configured)),
        report.pruned.len()
    );
    if drifted > 0 {
        message.push_str(&format!("; {drifted} drifted from Git (selfHeal is off)"));
    }
    message
}

/// Reads the source credentials from a Secret of the GitSync's namespace.
async fn read_credentials(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Credentials, String> {
    let api: Api<Secret> = Api::namespaced(cluster.client().clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|e| format!("spec.source.secretRef: reading Secret {namespace}/{name}: {e}"))?
        .ok_or_else(|| format!("spec.source.secretRef: Secret {namespace}/{name} not found"))?;
    credentials_from_secret(&secret)
        .map_err(|m| format!("spec.source.secretRef: Secret {namespace}/{name}: {m}"))
}

/// Maps a credentials Secret: `bearerToken`; or `username` + `password`; or `identity` +
/// `known_hosts` (SSH).
pub fn credentials_from_secret(secret: &Secret) -> Result<Credentials, String> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| -> Result<Option<Zeroizing<String>>, String> {
        match data.get(key) {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.0.clone())
                .map(|s| Some(Zeroizing::new(s)))
                .map_err(|_| format!("key {key} is not UTF-8")),
        }
    };
    if let Some(token) = text("bearerToken")? {
        return Ok(Credentials::Bearer { token });
    }
    if let Some(private_key) = text("identity")? {
        let known_hosts = text("known_hosts")?
            .ok_or("key identity needs known_hosts (host keys are never trusted blindly)")?;
        return Ok(Credentials::Ssh {
            private_key,
            known_hosts: known_hosts.to_string(),
        });
    }
    match (text("username")?, text("password")?) {
        (Some(username), Some(password)) => Ok(Credentials::Basic {
            username: username.to_string(),
            password,
        }),
        _ => Err("needs bearerToken, username and password, or identity and known_hosts".into()),
    }
}

/// Sets a condition, keeping its transition time when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: Option<bool>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &str,
) {
    let status = match ok {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    let previous = conditions.iter().position(|c| c.type_ == type_);
    let transition = match previous.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now.to_string(),
    };
    let condition = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: transition,
        observed_generation: generation,
    };
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// Writes status through the status subresource when it changed.
async fn write_status(
    ctx: &Context,
    sync: &GitSync,
    old: &GitSyncStatus,
    new: &GitSyncStatus,
) -> Result<(), StatusError> {
    if old == new {
        return Ok(());
    }
    let name = sync.name_any();
    let api: Api<GitSync> = Api::namespaced(
        ctx.cluster.client().clone(),
        &sync.namespace().unwrap_or_default(),
    );
    let mut value = serde_json::to_value(new).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        // A merge patch only clears what it names.
        for field in [
            "lastError",
            "inventory",
            "lastAppliedRevision",
            "lastFetchedRevision",
            "lastHandledRequestedAt",
        ] {
            map.entry(field).or_insert(Value::Null);
        }
        // Lists are cleared with an empty list (a null would not read back as a list).
        for field in ["history", "drift"] {
            map.entry(field).or_insert(Value::Array(Vec::new()));
        }
    }
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": value })),
    )
    .await
    .map(|_| ())
    .map_err(|source| StatusError {
        what: "status",
        name,
        source,
    })
}

/// A drift watch: who it runs as, which kind, which namespace (empty: all / cluster-scoped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WatchKey {
    user: String,
    kind: String,
    namespace: String,
}

/// A running drift watch and the GitSyncs that need it.
struct DriftWatch {
    users: HashSet<ObjectRef<GitSync>>,
    task: tokio::task::AbortHandle,
}

/// Metadata-only watches of the kinds GitSyncs applied, feeding drift into the controller.
///
/// Each runs as the identity that applied the objects, in the namespace they live in (a
/// tenant's ServiceAccount may watch nothing else), and stops when no GitSync needs it.
struct DriftWatches {
    watches: Mutex<HashMap<WatchKey, DriftWatch>>,
    sender: tokio::sync::mpsc::UnboundedSender<ObjectRef<GitSync>>,
    receiver: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ObjectRef<GitSync>>>>,
    /// Label selector of the watches: our objects, or those of GitSyncs of one namespace.
    selector: Mutex<String>,
}

impl DriftWatches {
    fn new() -> DriftWatches {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        DriftWatches {
            watches: Mutex::default(),
            sender,
            receiver: Mutex::new(Some(receiver)),
            selector: Mutex::new(NAME_LABEL.to_string()),
        }
    }

    /// Watches only objects of GitSyncs in `namespace` (a controller restricted to it).
    fn limit_to_owner_namespace(&self, namespace: &str) {
        if let Ok(mut selector) = self.selector.lock() {
            *selector = format!("{NAME_LABEL},{NAMESPACE_LABEL}={namespace}");
        }
    }

    fn take_receiver(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<ObjectRef<GitSync>>> {
        self.receiver.lock().ok()?.take()
    }

    fn count(&self) -> usize {
        self.watches.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Makes `owner` need exactly the watches of its inventory: starts missing ones, and
    /// stops those that no GitSync needs any more.
    async fn ensure(
        &self,
        owner: ObjectRef<GitSync>,
        cluster: &Cluster,
        identity: &Identity,
        inventory: &[InventoryEntry],
    ) {
        let user = identity.user();
        let mut needed: HashMap<WatchKey, Kind> = HashMap::new();
        let mut kinds: BTreeSet<(String, String)> = BTreeSet::new();
        let mut objects = Vec::new();
        for entry in inventory {
            let Some(key) = crate::manifest::ObjectKey::from_id(&entry.id) else {
                continue;
            };
            let api_version = entry.api_version(&key);
            kinds.insert((api_version.clone(), key.kind.clone()));
            objects.push((api_version, key));
        }
        let mut resolved: HashMap<(String, String), Kind> = HashMap::new();
        for (api_version, kind) in kinds {
            if let Ok(Some(found)) = cluster.resolve(&api_version, &kind).await {
                resolved.insert((api_version, kind), found);
            }
        }
        for (api_version, key) in objects {
            let Some(kind) = resolved.get(&(api_version.clone(), key.kind.clone())) else {
                continue;
            };
            let namespace = if kind.namespaced {
                key.namespace.clone()
            } else {
                String::new()
            };
            needed.insert(
                WatchKey {
                    user: user.clone(),
                    kind: format!("{api_version}/{}", key.kind),
                    namespace,
                },
                kind.clone(),
            );
        }
        let Ok(mut watches) = self.watches.lock() else {
            return;
        };
        watches.retain(|key, watch| {
            if !needed.contains_key(key) {
                watch.users.remove(&owner);
            }
            let keep = !watch.users.is_empty();
            if !keep {
                watch.task.abort();
            }
            keep
        });
        for (key, kind) in needed {
            match watches.get_mut(&key) {
                Some(watch) => {
                    watch.users.insert(owner.clone());
                }
                None => {
                    let task = self.spawn(cluster, kind, &key.namespace);
                    watches.insert(
                        key,
                        DriftWatch {
                            users: HashSet::from([owner.clone()]),
                            task,
                        },
                    );
                }
            }
        }
    }

    /// `owner` needs no watch any more (it was deleted).
    fn release(&self, owner: &ObjectRef<GitSync>) {
        if let Ok(mut watches) = self.watches.lock() {
            watches.retain(|_, watch| {
                watch.users.remove(owner);
                let keep = !watch.users.is_empty();
                if !keep {
                    watch.task.abort();
                }
                keep
            });
        }
    }

    fn spawn(&self, cluster: &Cluster, kind: Kind, namespace: &str) -> tokio::task::AbortHandle {
        let api: Api<PartialObjectMeta<DynamicObject>> = if namespace.is_empty() {
            Api::all_with(cluster.client().clone(), &kind.resource)
        } else {
            Api::namespaced_with(cluster.client().clone(), namespace, &kind.resource)
        };
        let sender = self.sender.clone();
        let plural = kind.resource.plural.clone();
        let selector = self
            .selector
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| NAME_LABEL.to_string());
        let task = tokio::spawn(async move {
            let mut seen: HashMap<String, u64> = HashMap::new();
            let mut events = std::pin::pin!(
                watcher(api, watcher::Config::default().labels(&selector)).default_backoff()
            );
            while let Some(event) = events.next().await {
                let (meta, deleted) = match event {
                    Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m)) => (m, false),
                    Ok(watcher::Event::Delete(m)) => (m, true),
                    Ok(_) => continue,
                    Err(err) => {
                        tracing::debug!(resource = %plural, error = %err, "drift watch");
                        continue;
                    }
                };
                let uid = meta.uid().unwrap_or_default();
                let fingerprint = drift_fingerprint(&meta);
                let changed = deleted || seen.insert(uid.clone(), fingerprint) != Some(fingerprint);
                if deleted {
                    seen.remove(&uid);
                }
                if !changed {
                    continue;
                }
                let labels = meta.labels();
                if let (Some(name), Some(namespace)) =
                    (labels.get(NAME_LABEL), labels.get(NAMESPACE_LABEL))
                    && sender.send(ObjectRef::new(name).within(namespace)).is_err()
                {
                    return;
                }
            }
        });
        task.abort_handle()
    }
}

/// What counts as a change: generation, labels and annotations; every change for kinds that
/// have no generation.
fn drift_fingerprint(meta: &PartialObjectMeta<DynamicObject>) -> u64 {
    let mut hasher = DefaultHasher::new();
    match meta.meta().generation {
        Some(generation) => generation.hash(&mut hasher),
        None => meta.meta().resource_version.hash(&mut hasher),
    }
    meta.labels().hash(&mut hasher);
    meta.annotations().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn conditions_keep_transition_time_until_status_changes() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            "Ready",
            Some(true),
            "Synced",
            "a",
            Some(1),
            "t1",
        );
        set_condition(
            &mut conditions,
            "Ready",
            Some(true),
            "Synced",
            "b",
            Some(2),
            "t2",
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, "t1");
        assert_eq!(conditions[0].message, "b");
        set_condition(
            &mut conditions,
            "Ready",
            Some(false),
            "ApplyFailed",
            "c",
            Some(2),
            "t3",
        );
        assert_eq!(conditions[0].last_transition_time, "t3");
        set_condition(
            &mut conditions,
            "Healthy",
            None,
            "Unknown",
            "d",
            Some(2),
            "t3",
        );
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[1].status, "Unknown");
    }

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn credentials_come_from_the_documented_keys() {
        assert!(matches!(
            credentials_from_secret(&secret(&[("bearerToken", "t")])),
            Ok(Credentials::Bearer { .. })
        ));
        assert!(matches!(
            credentials_from_secret(&secret(&[("username", "git"), ("password", "p")])),
            Ok(Credentials::Basic { .. })
        ));
        assert!(matches!(
            credentials_from_secret(&secret(&[("identity", "k"), ("known_hosts", "h")])),
            Ok(Credentials::Ssh { .. })
        ));
        let err = credentials_from_secret(&secret(&[("identity", "k")])).unwrap_err();
        assert!(err.contains("known_hosts"), "{err}");
        let err = credentials_from_secret(&secret(&[("password", "hunter2")])).unwrap_err();
        assert!(!err.contains("hunter2"));
    }
}
