//! The reconcile loop: SealedSecret in, Secret + status + events out.
//!
//! Triggers: every SealedSecret at start, changes of its spec, labels or annotations (never its
//! own status writes, which was upstream's v0.12 infinite loop), and deletion of a Secret it
//! owns or manages (unless `--skip-recreate`). With `--self-heal`, any change of such a Secret
//! also triggers, so hand edits are put back. Secrets are watched as metadata only: the
//! controller never caches the cluster's secret data (upstream's 50+ MB, #1289).
//!
//! Faults are part of the design, not an afterthought:
//! - a watch that was down long enough to relist reports what changed during the gap through
//!   [`crate::relist`]: a Secret deleted meanwhile is re-created, a SealedSecret deleted
//!   meanwhile is cleaned up, exactly as if the events had arrived;
//! - failures are retried by cause ([`crate::retry`]): API trouble without limit, a
//!   SealedSecret that cannot be opened until its object or the key ring changes — and every
//!   such object is requeued when a key is added, changed or removed;
//! - nothing is written once this replica's leadership has lapsed ([`Leadership::holds`]);
//! - a status write that lost a race is retried on a fresh read.
//!
//! Decryption (RSA) runs on the blocking pool so it never stalls the watchers; `--workers`
//! SealedSecrets are processed in parallel. Plaintext (the desired and the existing Secret) is
//! wiped as soon as the pass is done with it.

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, PartialObjectMeta, PostParams, Preconditions},
    runtime::{
        Controller, WatchStreamExt,
        controller::{Action, Config as ControllerConfig},
        reflector::{self, ObjectRef},
        watcher,
    },
};
use sealed_secrets_core::{
    sealed_secret::SealedSecret,
    unseal::{UnsealError, UnsealOptions, unseal},
};

use crate::{
    backlog::Backlog,
    cached::CachedSealedSecret as Cached,
    decisions::{
        MANAGED_ANNOTATION, Ownership, SecretWrite, condition_gauge, immutable_message,
        is_controlled_by, may_write, next_status, ownership, plan_secret_write,
        predecessor_is_gone, wipe_secret, write_needs_live_owner,
    },
    dependants::Dependants,
    digest,
    events::{
        EventPublisher, EventType, MESSAGE_UNSEALED, REASON_UNSEAL_FAILED, REASON_UNSEALED,
        REASON_UPDATE_FAILED,
    },
    keyring::KeyRing,
    leader::Leadership,
    metrics::{Metrics, race},
    relist::{RelistGaps, object_key as relist_key},
    retry::{Cause, classify_kube_error, jitter, next_retry},
    sealed_watch::{Lane, SealedWatch},
};

/// Label copied into the `condition_info` metric.
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Suffix of the API server's error for writes to immutable Secrets.
const IMMUTABLE_ERROR_SUFFIX: &str = "field is immutable when `immutable` is set";
/// Tries of a status write that keeps losing races with other writers.
const STATUS_ATTEMPTS: usize = 4;

/// Reconciler switches.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Write the status subresource.
    pub update_status: bool,
    /// Accept the deprecated `spec.data`.
    pub accept_deprecated_v1_data: bool,
    /// Quick retries of an object that cannot be unsealed before waiting for a change of it or
    /// of the key ring (API failures retry without limit).
    pub max_unseal_retries: u32,
    /// Re-apply the Secret when it is edited by hand.
    pub self_heal: bool,
    /// Delete the Secret when its SealedSecret goes away.
    pub old_gc_behavior: bool,
    /// Do not watch Secrets (no re-create on delete).
    pub skip_recreate: bool,
    /// SealedSecrets processed in parallel.
    pub workers: u16,
    /// Label selector for SealedSecrets and Secrets.
    pub label_selector: String,
}

/// Failures of one object since its last success.
#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    generation: Option<i64>,
    /// When the first failure since the last success happened.
    since: Option<std::time::Instant>,
    transient: u32,
    permanent: u32,
}

/// Shared state of the reconcilers.
pub struct Context {
    /// Kubernetes client for single calls (bounded by a timeout).
    pub client: Client,
    /// Kubernetes client for watches (long-lived streams, no read timeout).
    pub watch_client: Client,
    /// The sealing keys.
    pub keys: Arc<KeyRing>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event recorder.
    pub events: EventPublisher,
    /// Switches.
    pub options: ReconcileOptions,
    /// Whether this replica may write.
    pub leadership: Leadership,
    /// Failures per object since its last success.
    retries: Mutex<HashMap<String, Failures>>,
    /// Objects whose last pass could not unseal them; requeued when the key ring changes.
    unseal_failed: Mutex<HashSet<ObjectRef<Cached>>>,
    /// Which key each SealedSecret depends on (from its status).
    dependants: Mutex<Dependants>,
    /// Objects to check as workers free up (after a list, or deferred while standing by), one
    /// backlog per watched scope (`None`: all namespaces).
    backlogs: Mutex<HashMap<Option<String>, Arc<Backlog>>>,
}

impl Context {
    /// A context that always leads and watches with `client` too.
    pub fn new(
        client: Client,
        keys: Arc<KeyRing>,
        metrics: Arc<Metrics>,
        options: ReconcileOptions,
    ) -> Self {
        Self {
            events: EventPublisher::new(client.clone()),
            watch_client: client.clone(),
            client,
            keys,
            metrics: Arc::clone(&metrics),
            leadership: Leadership::always(),
            retries: Mutex::default(),
            unseal_failed: Mutex::default(),
            dependants: Mutex::default(),
            backlogs: Mutex::default(),
            options,
        }
    }

    /// Records the key `sealed` depends on (its `status.keyFingerprint`), or forgets it
    /// (`None`: deleted), and republishes the counts when they changed.
    pub(crate) fn note_dependency(&self, object: &str, sealed: Option<&Cached>) {
        let mut dependants = self.dependants.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match sealed {
            Some(sealed) => dependants.set(
                object,
                sealed
                    .status
                    .as_ref()
                    .and_then(|s| s.key_fingerprint.as_deref()),
            ),
            None => dependants.remove(object),
        };
        if changed {
            self.metrics.set_dependants(dependants.counts());
        }
    }

    /// The backlog of the scope watching `namespace` (made for `scope` by [`run`]; one for all
    /// namespaces serves every namespace).
    pub fn backlog(&self, namespace: &str) -> Arc<Backlog> {
        let mut backlogs = self.backlogs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(backlog) = backlogs
            .get(&Some(namespace.to_string()))
            .or_else(|| backlogs.get(&None))
        {
            return Arc::clone(backlog);
        }
        // Not watched through `run` (direct calls in tests): a backlog of its own scope.
        Arc::clone(
            backlogs
                .entry(Some(namespace.to_string()))
                .or_insert_with(|| self.new_backlog()),
        )
    }

    fn new_backlog(&self) -> Arc<Backlog> {
        Arc::new(Backlog::new(
            usize::from(self.options.workers.max(1)),
            Arc::clone(&self.metrics),
        ))
    }

    /// Makes (or returns) the backlog of `scope`.
    fn backlog_of_scope(&self, scope: Option<&str>) -> Arc<Backlog> {
        let mut backlogs = self.backlogs.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            backlogs
                .entry(scope.map(str::to_string))
                .or_insert_with(|| self.new_backlog()),
        )
    }

    /// Writes only while `leadership` holds.
    pub fn with_leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    /// Watches through `client` (single calls keep theirs).
    pub fn with_watch_client(mut self, client: Client) -> Self {
        self.watch_client = client;
        self
    }

    /// Publishes an event while this replica leads.
    async fn event(&self, sealed: &SealedSecret, type_: EventType, reason: &str, message: &str) {
        if self.leadership.holds() {
            self.events.publish(sealed, type_, reason, message).await;
        }
    }

    fn note_unseal_failure(&self, object: ObjectRef<Cached>, failed: bool) {
        let mut set = self.unseal_failed.lock().unwrap_or_else(|e| e.into_inner());
        if failed {
            set.insert(object);
        } else {
            set.remove(&object);
        }
    }

    /// Objects of `scope` (`None`: all) that could not be unsealed last time.
    pub fn unseal_failures(&self, scope: Option<&str>) -> Vec<ObjectRef<Cached>> {
        self.unseal_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| scope.is_none() || r.namespace.as_deref() == scope)
            .cloned()
            .collect()
    }
}

/// Why a pass failed; the text is what status, events and logs show.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Decryption or template rendering failed.
    #[error("{0}")]
    Unseal(#[source] UnsealError),
    /// Reading or writing the Secret failed.
    #[error("{0}")]
    Api(#[source] kube::Error),
    /// The decryption task died.
    #[error("decryption task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The Secret exists and is not ours.
    #[error("failed update: {0}")]
    Unmanaged(String),
    /// The Secret is immutable; retrying cannot help.
    #[error("{0}")]
    Immutable(String),
    /// This replica's leadership lapsed before it could write.
    #[error("not the leader: nothing written")]
    NotLeader,
    /// The API server no longer has this SealedSecret (the pass ran on a stale cache entry):
    /// nothing was written, or what was written has been taken back.
    #[error("the SealedSecret is no longer in the API server: nothing written")]
    Gone,
    /// The Secret is right but the status could not be written.
    #[error("cannot update status: {0}")]
    Status(#[source] kube::Error),
}

impl ReconcileError {
    /// The `reason` label of `unseal_errors_total`.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Self::Unseal(_) => "unseal",
            Self::Api(_) | Self::Immutable(_) | Self::Task(_) | Self::NotLeader | Self::Gone => {
                "update"
            }
            Self::Status(_) => "status",
            Self::Unmanaged(_) => "unmanaged",
        }
    }

    /// How this failure is retried.
    pub fn cause(&self) -> Cause {
        match self {
            Self::Api(err) | Self::Status(err) => classify_kube_error(err),
            Self::Task(_) | Self::NotLeader => Cause::Transient,
            Self::Unseal(_) | Self::Unmanaged(_) | Self::Immutable(_) | Self::Gone => {
                Cause::Permanent
            }
        }
    }

    /// The `kind` of `reconcile_races_total` when this failure is a race with another writer
    /// that resolves itself (logged quietly, not counted as an unseal error).
    pub fn race(&self) -> Option<&'static str> {
        match self {
            Self::Gone => Some(race::STALE_OBJECT),
            Self::Api(kube::Error::Api(status)) if status.code == 409 => Some(race::CONFLICT),
            Self::Api(kube::Error::Api(status)) if status.code == 404 => Some(race::SECRET_GONE),
            Self::Status(kube::Error::Api(status)) if status.code == 404 => {
                Some(race::STALE_OBJECT)
            }
            _ => None,
        }
    }
}

fn object_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// What a successful pass did to the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Yes,
    No,
}

fn ensure_leader(ctx: &Context) -> Result<(), ReconcileError> {
    if ctx.leadership.holds() {
        Ok(())
    } else {
        Err(ReconcileError::NotLeader)
    }
}

async fn unseal_and_write(
    sealed: &Arc<SealedSecret>,
    ctx: &Context,
) -> Result<Written, ReconcileError> {
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    let key = object_key(&namespace, &name);
    let options = UnsealOptions {
        accept_deprecated_v1_data: ctx.options.accept_deprecated_v1_data,
    };
    // After a restart the status says which key opened the object last time: try it first.
    if let Some(fingerprint) = sealed
        .status
        .as_ref()
        .and_then(|s| s.key_fingerprint.as_deref())
    {
        ctx.keys.seed_hint(&key, fingerprint);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let update_failed = |err: kube::Error| async move {
        ctx.event(
            sealed,
            EventType::Warning,
            REASON_UPDATE_FAILED,
            &err.to_string(),
        )
        .await;
        ReconcileError::Api(err)
    };
    let existing = match secrets.get_opt(&name).await {
        Ok(existing) => existing.map(Wiped::new),
        Err(err) => return Err(update_failed(err).await),
    };
    // The Secret this controller wrote for exactly this object, untouched since: nothing to
    // decrypt (see `digest`).
    if let Some(fingerprint) = existing
        .as_ref()
        .and_then(|e| proven_current(&ctx.keys, sealed, &e.0))
    {
        ctx.keys.note_opened(&key, &fingerprint);
        ctx.metrics.verified_unchanged();
        return Ok(Written::No);
    }
    // Over budget when it arrived: the cache holds it without its payload (see `shed`).
    let over_budget = crate::shed::over_budget(sealed);
    // The cache keeps no ciphertexts (see `cached`): read the object whole to open it.
    let full = match over_budget {
        Some(_) => Arc::clone(sealed),
        None => full_object(sealed, ctx).await?,
    };
    let unsealed = match over_budget {
        Some(err) => Err(UnsealError::OverBudget(err)),
        None => {
            let (object, keys) = (Arc::clone(&full), Arc::clone(&ctx.keys));
            let created = sealed.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let object_key = key.clone();
            ctx.metrics.decryption();
            tokio::task::spawn_blocking(move || {
                unseal(
                    &object,
                    &keys.decrypter_for(Some(&object_key), created),
                    options,
                )
            })
            .await
            .map_err(ReconcileError::Task)?
        }
    };
    let desired = match unsealed {
        Ok(secret) => secret,
        Err(err) => {
            ctx.event(
                sealed,
                EventType::Warning,
                REASON_UNSEAL_FAILED,
                &format!("Failed to unseal: {err}"),
            )
            .await;
            return Err(ReconcileError::Unseal(err));
        }
    };
    let mut desired = Wiped::new(desired);
    // The key that opened it keys the digest of what is written.
    let digest_key = ctx
        .keys
        .hint_for(&key)
        .and_then(|fingerprint| ctx.keys.digest_key(&fingerprint));

    ensure_leader(ctx)?;
    let uid = sealed.uid().unwrap_or_default();
    let mut owner = LiveOwner::new(ctx, &namespace, &name, &uid);
    // A Secret left by a deleted SealedSecret of the same name is taken over, once a live read
    // proves that predecessor gone (docs/controller.md, "Ownership").
    let mut takeover = false;
    if let Some(Ownership::Predecessor { uid: previous }) = existing
        .as_ref()
        .map(|existing| ownership(&existing.0, &name, &uid))
    {
        let live = owner.live_uid().await.map_err(ReconcileError::Api)?;
        match predecessor_is_gone(&previous, &uid, live.as_deref()) {
            Some(gone) => takeover = gone,
            None => return Err(ReconcileError::Gone),
        }
        if takeover {
            tracing::info!(%namespace, %name, predecessor = %previous, "taking over the Secret left by a deleted SealedSecret of the same name");
            ctx.metrics.race(race::PREDECESSOR_SECRET);
        }
    }
    let existing_secret = existing.as_ref().map(|e| &e.0);
    let needs_live_owner = write_needs_live_owner(existing_secret, &uid);
    let plan = plan_secret_write(
        existing_secret,
        std::mem::take(&mut desired.0),
        &uid,
        takeover,
        |secret| {
            if let Some(digest_key) = &digest_key {
                digest::stamp(digest_key, &full, secret);
            }
        },
    );
    let plan = WipedPlan(plan);
    let writes = matches!(plan.0, SecretWrite::Create(_) | SecretWrite::Update(_));
    if writes && needs_live_owner && !owner.is_ours().await.map_err(ReconcileError::Api)? {
        return Err(ReconcileError::Gone);
    }
    ensure_leader(ctx)?;
    let written = match &plan.0 {
        SecretWrite::Unchanged => return Ok(Written::No),
        SecretWrite::Create(secret) => match secrets.create(&PostParams::default(), secret).await {
            Ok(created) => Wiped::new(created),
            Err(err) if is_race(&err) => return Err(ReconcileError::Api(err)),
            Err(err) => return Err(update_failed(err).await),
        },
        SecretWrite::Update(secret) => {
            match secrets.replace(&name, &PostParams::default(), secret).await {
                Ok(replaced) => Wiped::new(replaced),
                Err(err) if err.to_string().contains(IMMUTABLE_ERROR_SUFFIX) => {
                    let message = immutable_message(&namespace, &name);
                    ctx.event(sealed, EventType::Warning, REASON_UPDATE_FAILED, &message)
                        .await;
                    return Err(ReconcileError::Immutable(message));
                }
                Err(err) if is_race(&err) => return Err(ReconcileError::Api(err)),
                Err(err) => return Err(update_failed(err).await),
            }
        }
        SecretWrite::Refuse(message) => {
            ctx.event(sealed, EventType::Warning, REASON_UPDATE_FAILED, message)
                .await;
            return Err(ReconcileError::Unmanaged(message.clone()));
        }
    };
    drop(plan);
    if needs_live_owner {
        // The SealedSecret may have been deleted between the check and the write: look again,
        // and take back what this pass wrote if it was. A deletion after this read finds the
        // Secret in place and garbage collection removes it, as for any owned object.
        // A read that fails proves nothing: the Secret stays (it is most likely right) and the
        // pass is retried, which reads again.
        if !owner.confirm_again().await.map_err(ReconcileError::Api)? {
            remove_written(&secrets, &written.0).await;
            return Err(ReconcileError::Gone);
        }
    }
    Ok(Written::Yes)
}

/// The object with its payload: `sealed` itself, or, when the watch cache slimmed it, the
/// object as the API server holds it now (the same uid, else it is gone). A newer version than
/// the cached one is fine: it is what gets opened and what the digest then covers, and the
/// watch delivers it next.
async fn full_object(
    sealed: &Arc<SealedSecret>,
    ctx: &Context,
) -> Result<Arc<SealedSecret>, ReconcileError> {
    if !crate::shed::is_slimmed(sealed) {
        return Ok(Arc::clone(sealed));
    }
    let namespace = sealed.namespace().unwrap_or_default();
    let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(mut live) = api
        .get_opt(&sealed.name_any())
        .await
        .map_err(ReconcileError::Api)?
    else {
        return Err(ReconcileError::Gone);
    };
    if live.uid() != sealed.uid() {
        return Err(ReconcileError::Gone);
    }
    crate::shed::forget_internal(&mut live);
    live.metadata.managed_fields = None;
    Ok(Arc::new(live))
}

/// The fingerprint of the key whose digest on `secret` proves it current for `sealed`
/// (controlled by this very object, stamped by a key of the ring, content untouched).
fn proven_current(keys: &KeyRing, sealed: &SealedSecret, secret: &Secret) -> Option<String> {
    if !may_write(secret, sealed.uid().as_deref().unwrap_or_default()) {
        return None;
    }
    let fingerprint = digest::stamped_fingerprint(secret)?;
    let digest_key = keys.digest_key(fingerprint)?;
    digest::verify(&digest_key, sealed, secret).then(|| fingerprint.to_string())
}

/// The live answer to "does the API server hold this SealedSecret (this uid) now?", read at
/// most once before a write unless asked to [`LiveOwner::confirm_again`].
struct LiveOwner<'a> {
    api: Api<SealedSecret>,
    name: &'a str,
    uid: &'a str,
    read: Option<Option<String>>,
}

impl<'a> LiveOwner<'a> {
    fn new(ctx: &Context, namespace: &str, name: &'a str, uid: &'a str) -> Self {
        Self {
            api: Api::namespaced(ctx.client.clone(), namespace),
            name,
            uid,
            read: None,
        }
    }

    /// The uid the API server has under the name now (`None`: no such object); read once.
    async fn live_uid(&mut self) -> Result<Option<String>, kube::Error> {
        if let Some(read) = &self.read {
            return Ok(read.clone());
        }
        let uid = self
            .api
            .get_metadata_opt(self.name)
            .await?
            .and_then(|meta| meta.metadata.uid);
        self.read = Some(uid.clone());
        Ok(uid)
    }

    /// Whether the API server holds this uid under the name (read once).
    async fn is_ours(&mut self) -> Result<bool, kube::Error> {
        let uid = self.uid;
        Ok(!uid.is_empty() && self.live_uid().await?.as_deref() == Some(uid))
    }

    /// [`LiveOwner::is_ours`] with a fresh read.
    async fn confirm_again(&mut self) -> Result<bool, kube::Error> {
        self.read = None;
        self.is_ours().await
    }
}

/// Deletes the Secret this pass just wrote, only if it is still exactly that write (uid and
/// resourceVersion as preconditions): anyone's later write wins.
async fn remove_written(secrets: &Api<Secret>, written: &Secret) {
    let name = written.metadata.name.clone().unwrap_or_default();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: written.metadata.uid.clone(),
            resource_version: written.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match secrets.delete(&name, &params).await {
        Ok(_) => {
            tracing::info!(namespace = ?written.metadata.namespace, %name, "SealedSecret deleted during the write; removed the Secret written for it")
        }
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {
            tracing::debug!(namespace = ?written.metadata.namespace, %name, "the Secret written for a deleted SealedSecret is already gone or rewritten")
        }
        // Garbage collection removes it (its owner is gone); nothing needs a person.
        Err(err) => {
            tracing::info!(namespace = ?written.metadata.namespace, %name, error = %err, "cannot remove the Secret written for a deleted SealedSecret; garbage collection will")
        }
    }
}

/// Whether an API error is a race with another writer that a retry resolves: a conflict (the
/// object changed, or appeared, since it was read) or a Secret deleted since it was read.
fn is_race(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409 || status.code == 404)
}

/// A planned write whose plaintext is wiped when dropped.
struct WipedPlan(SecretWrite);

impl Drop for WipedPlan {
    fn drop(&mut self) {
        if let SecretWrite::Create(secret) | SecretWrite::Update(secret) = &mut self.0 {
            wipe_secret(secret);
        }
    }
}

/// A Secret that is wiped when dropped.
struct Wiped(Secret);

impl Drop for Wiped {
    fn drop(&mut self) {
        wipe_secret(&mut self.0);
    }
}

impl Wiped {
    fn new(secret: Secret) -> Self {
        Self(secret)
    }
}

/// What became of a pass's status.
#[derive(Debug)]
enum StatusWrite {
    /// Written.
    Written,
    /// Already right (or another writer keeps changing it: written next pass).
    Unchanged,
    /// The SealedSecret is gone, or this replica stopped leading: nothing to write.
    Skipped,
    /// The API server refused or could not be reached: the pass is retried.
    Failed(kube::Error),
}

/// Writes the status when it changed. A write that loses a race (409) is retried on a fresh
/// read, keeping the generation this pass processed.
async fn write_status(sealed: &SealedSecret, ctx: &Context, error: Option<&str>) -> StatusWrite {
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    let instance = sealed
        .labels()
        .get(INSTANCE_LABEL)
        .cloned()
        .unwrap_or_default();
    let opened_with = if error.is_none() {
        ctx.keys.hint_for(&object_key(&namespace, &name))
    } else {
        None
    };
    let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut current = sealed.clone();
    for _ in 0..STATUS_ATTEMPTS {
        let Some(status) = next_status(
            current.status.as_ref(),
            sealed.meta().generation,
            error,
            opened_with.as_deref(),
            jiff::Timestamp::now(),
        ) else {
            ctx.metrics.set_condition(
                &namespace,
                &name,
                &instance,
                condition_gauge(current.status.as_ref()),
            );
            return StatusWrite::Unchanged;
        };
        if !ctx.leadership.holds() {
            return StatusWrite::Skipped;
        }
        current.status = Some(status);
        match api
            .replace_status(&name, &PostParams::default(), &current)
            .await
        {
            Ok(_) => {
                ctx.metrics.set_condition(
                    &namespace,
                    &name,
                    &instance,
                    condition_gauge(current.status.as_ref()),
                );
                return StatusWrite::Written;
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!(%namespace, %name, "status write conflicted; reading again");
                ctx.metrics.race(race::CONFLICT);
                match api.get_opt(&name).await {
                    Ok(Some(fresh)) if fresh.uid() == sealed.uid() => current = fresh,
                    Ok(_) => {
                        ctx.metrics.race(race::STALE_OBJECT);
                        return StatusWrite::Skipped;
                    }
                    Err(err) => return StatusWrite::Failed(err),
                }
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                tracing::debug!(%namespace, %name, "SealedSecret deleted before its status was written");
                ctx.metrics.race(race::STALE_OBJECT);
                return StatusWrite::Skipped;
            }
            Err(err) => return StatusWrite::Failed(err),
        }
    }
    tracing::info!(%namespace, %name, "status write kept conflicting; will write it next pass");
    StatusWrite::Unchanged
}

/// One pass over one SealedSecret of the watch cache.
pub async fn reconcile(cached: Arc<Cached>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    reconcile_pass(Arc::new(cached.to_pass()), ctx).await
}

/// One pass over one SealedSecret: as the cache gives it (see `cached`), or whole (tests).
pub async fn reconcile_pass(
    sealed: Arc<SealedSecret>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let object = crate::sealed_watch::bare_ref(sealed.as_ref());
    let backlog = ctx.backlog(object.namespace.as_deref().unwrap_or_default());
    if !ctx.leadership.holds() {
        // A standby keeps what it was asked about (new or changed objects, deleted Secrets)
        // for when it leads, ahead of its list (see `backlog`).
        backlog.push_urgent(object);
        return Err(ReconcileError::NotLeader);
    }
    let outcome = reconcile_leading(&sealed, &ctx).await;
    if matches!(outcome, Err(ReconcileError::NotLeader)) {
        backlog.push(object);
    } else {
        backlog.checked(&object);
    }
    outcome
}

async fn reconcile_leading(
    sealed: &Arc<SealedSecret>,
    ctx: &Arc<Context>,
) -> Result<Action, ReconcileError> {
    let (sealed, ctx) = (Arc::clone(sealed), Arc::clone(ctx));
    ctx.metrics.unseal_request();
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    tracing::info!(%namespace, %name, "Updating");
    let outcome = unseal_and_write(&sealed, &ctx).await;
    match &outcome {
        Err(ReconcileError::NotLeader) => return Err(ReconcileError::NotLeader),
        // No status for an object the API server no longer has; nothing to count as an error.
        Err(ReconcileError::Gone) => {
            tracing::info!(%namespace, %name, "SealedSecret no longer in the API server; nothing written");
            ctx.metrics.race(race::STALE_OBJECT);
            return Err(ReconcileError::Gone);
        }
        _ => {}
    }
    ctx.note_unseal_failure(
        crate::sealed_watch::bare_ref(sealed.as_ref()),
        matches!(outcome, Err(ReconcileError::Unseal(_))),
    );
    let status = if ctx.options.update_status {
        let error = outcome.as_ref().err().map(ToString::to_string);
        write_status(&sealed, &ctx, error.as_deref()).await
    } else {
        StatusWrite::Unchanged
    };
    let outcome = match (outcome, status) {
        (Ok(_), StatusWrite::Failed(err)) => Err(ReconcileError::Status(err)),
        (outcome, status) => outcome.map(|written| (written, status)),
    };
    match outcome {
        Ok((written, status)) => {
            ctx.retries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&object_key(&namespace, &name));
            // Upstream records `Unsealed` on every pass; we record it when something changed,
            // so restarts do not flood every namespace with identical events.
            if written == Written::Yes || matches!(status, StatusWrite::Written) {
                ctx.event(
                    &sealed,
                    EventType::Normal,
                    REASON_UNSEALED,
                    MESSAGE_UNSEALED,
                )
                .await;
            }
            Ok(Action::await_change())
        }
        Err(err) => {
            match err.race() {
                Some(kind) => ctx.metrics.race(kind),
                None => ctx.metrics.unseal_error(err.metric_reason(), &namespace),
            }
            Err(err)
        }
    }
}

/// Retry policy by cause (see [`crate::retry`]): API trouble retries without limit with
/// capped, jittered backoff; an object that cannot be unsealed gets `--max-unseal-retries`
/// quick retries, then waits for a change of itself, its Secret or the key ring.
pub fn error_policy(sealed: Arc<Cached>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    match err {
        ReconcileError::Immutable(_) => {
            tracing::warn!(%namespace, %name, "the target Secret is immutable; not retrying");
            return Action::await_change();
        }
        // Kept in the backlog for when this replica leads.
        ReconcileError::NotLeader => {
            tracing::debug!(%namespace, %name, "not the leader; kept for when it leads");
            return Action::await_change();
        }
        // Logged by `reconcile`; the watch's delete event finishes the job.
        ReconcileError::Gone => return Action::await_change(),
        _ => {}
    }
    let cause = err.cause();
    let generation = sealed.meta().generation;
    let now = std::time::Instant::now();
    let (attempts, failing_for) = {
        let mut retries = ctx.retries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = retries.entry(object_key(&namespace, &name)).or_default();
        if entry.generation != generation || entry.since.is_none() {
            *entry = Failures {
                generation,
                since: Some(now),
                ..Failures::default()
            };
        }
        let attempts = match cause {
            Cause::Transient => {
                entry.transient = entry.transient.saturating_add(1);
                entry.transient
            }
            Cause::Permanent => {
                entry.permanent = entry.permanent.saturating_add(1);
                entry.permanent
            }
        };
        (
            attempts,
            entry.since.map_or_else(Default::default, |t| now - t),
        )
    };
    let Some(delay) = next_retry(cause, attempts, ctx.options.max_unseal_retries, jitter()) else {
        tracing::error!(%namespace, %name, error = %err, "Error updating; waiting for a change of the object or of the keys");
        return Action::await_change();
    };
    match retry_log_level(err.race().is_some(), cause, attempts, failing_for) {
        LogLevel::Debug => {
            tracing::debug!(%namespace, %name, error = %err, attempt = attempts, ?delay, "lost a race with another writer; retrying")
        }
        LogLevel::Info => {
            tracing::info!(%namespace, %name, error = %err, attempt = attempts, ?delay, "cannot update yet; will retry")
        }
        LogLevel::Quiet => {
            tracing::debug!(%namespace, %name, error = %err, attempt = attempts, ?delay, "still cannot update; will retry")
        }
        LogLevel::Warn => {
            tracing::warn!(%namespace, %name, error = %err, attempt = attempts, ?cause, ?delay, "Error updating, will retry")
        }
    }
    Action::requeue(delay)
}

/// How long transient failures of one object may go on before they need a person.
pub const TRANSIENT_WARN_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a retried failure is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// A race with another writer (409, a Secret deleted since read, a stale cache entry): it
    /// resolves itself; counted in `reconcile_races_total`.
    Debug,
    /// The first failure of a transient episode (the API server restarting, a timeout).
    Info,
    /// Later failures of the same episode, before [`TRANSIENT_WARN_AFTER`].
    Quiet,
    /// What needs a person: a permanent failure, or a transient one that has lasted
    /// [`TRANSIENT_WARN_AFTER`].
    Warn,
}

/// The log level of failure number `attempt` of its kind, failing since `failing_for`.
pub fn retry_log_level(
    race: bool,
    cause: Cause,
    attempt: u32,
    failing_for: std::time::Duration,
) -> LogLevel {
    match cause {
        Cause::Permanent => LogLevel::Warn,
        Cause::Transient if failing_for >= TRANSIENT_WARN_AFTER => LogLevel::Warn,
        Cause::Transient if race => LogLevel::Debug,
        Cause::Transient if attempt <= 1 => LogLevel::Info,
        Cause::Transient => LogLevel::Quiet,
    }
}

/// The SealedSecret a Secret event should wake, if the Secret is one we own or manage.
pub fn sealed_secret_for(secret: &PartialObjectMeta<Secret>) -> Option<ObjectRef<Cached>> {
    let namespace = secret.metadata.namespace.as_deref()?;
    let owner = secret.metadata.owner_references.iter().flatten().find(|r| {
        r.controller == Some(true)
            && r.kind == "SealedSecret"
            && r.api_version.starts_with("bitnami.com/")
    });
    if let Some(owner) = owner {
        return Some(ObjectRef::new(&owner.name).within(namespace));
    }
    let managed = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANAGED_ANNOTATION))
        .is_some_and(|v| v == "true");
    managed
        .then(|| {
            secret
                .metadata
                .name
                .as_deref()
                .map(|n| ObjectRef::new(n).within(namespace))
        })
        .flatten()
}

/// What the Secret watch remembers of a Secret we own: which SealedSecret it belongs to and
/// its resourceVersion (to see changes made during a gap). One per owned Secret of the
/// cluster, so it is compact: the owner as one `namespace/name` string (an `ObjectRef` and a
/// `String` made a 144-byte slot, 2.4 MB of hash table at 10,000 Secrets; now 56).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMark {
    owner: Box<str>,
    version: Option<Box<str>>,
}

impl SecretMark {
    fn new(owner: &ObjectRef<Cached>, version: Option<&str>) -> Self {
        let namespace = owner.namespace.as_deref().unwrap_or_default();
        Self {
            owner: format!("{namespace}/{}", owner.name).into(),
            version: version.map(Into::into),
        }
    }

    /// The SealedSecret the Secret belongs to (names and namespaces hold no `/`).
    fn owner(&self) -> ObjectRef<Cached> {
        match self.owner.split_once('/') {
            Some((namespace, name)) => ObjectRef::new(name).within(namespace),
            None => ObjectRef::new(&self.owner),
        }
    }
}

/// The SealedSecrets one Secret watch event should wake: a deleted Secret's owner; with
/// `self_heal`, a changed one's; after a relist, the owners of Secrets deleted (and, with
/// `self_heal`, changed) while the watch was down.
pub fn secret_event_triggers(
    gaps: &mut RelistGaps<SecretMark>,
    event: &watcher::Event<PartialObjectMeta<Secret>>,
    self_heal: bool,
) -> Vec<ObjectRef<Cached>> {
    let gap = gaps.observe(event, |meta: &PartialObjectMeta<Secret>| {
        let owner = sealed_secret_for(meta)?;
        Some((
            relist_key(meta)?,
            SecretMark::new(&owner, meta.metadata.resource_version.as_deref()),
        ))
    });
    let mut triggers: Vec<ObjectRef<Cached>> = match event {
        watcher::Event::Delete(meta) => sealed_secret_for(meta).into_iter().collect(),
        watcher::Event::Apply(meta) if self_heal => sealed_secret_for(meta).into_iter().collect(),
        _ => Vec::new(),
    };
    if !gap.vanished.is_empty() {
        tracing::info!(
            count = gap.vanished.len(),
            "Secrets deleted while the watch was down; re-creating"
        );
    }
    triggers.extend(gap.vanished.iter().map(SecretMark::owner));
    if self_heal {
        triggers.extend(gap.changed.iter().map(|(_, now)| now.owner()));
    }
    triggers
}

/// A SealedSecret that went away (or was replaced by a new object of the same name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its uid (a Secret is only deleted for it when it was this object's).
    pub uid: String,
    /// A new object of the same name exists: keep its metrics and key hint.
    pub replaced: bool,
}

impl Gone {
    pub(crate) fn of(sealed: &impl Resource) -> Self {
        Self {
            namespace: sealed.namespace().unwrap_or_default(),
            name: sealed.name_any(),
            uid: sealed.uid().unwrap_or_default(),
            replaced: false,
        }
    }
}

/// The SealedSecrets one SealedSecret watch event says are gone: a deleted one; after a
/// relist, those deleted (or deleted and re-created) while the watch was down.
pub fn sealed_event_gone(gaps: &mut RelistGaps<Gone>, event: &watcher::Event<Cached>) -> Vec<Gone> {
    let gap = gaps.observe(event, |sealed: &Cached| {
        Some((relist_key(sealed)?, Gone::of(sealed)))
    });
    let mut gone: Vec<Gone> = match event {
        watcher::Event::Delete(sealed) => vec![Gone::of(sealed)],
        _ => Vec::new(),
    };
    gone.extend(gap.vanished);
    gone.extend(gap.changed.into_iter().map(|(before, _)| Gone {
        replaced: true,
        ..before
    }));
    gone
}

/// Reconcile triggers: spec (generation and the spec hash), labels and annotations — not
/// status.
pub(crate) fn trigger_hash(sealed: &Cached) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    sealed.meta().generation.hash(&mut hasher);
    sealed.meta().labels.hash(&mut hasher);
    sealed.meta().annotations.hash(&mut hasher);
    sealed.spec_sha256.hash(&mut hasher);
    Some(hasher.finish())
}

/// Cleans up after a deleted SealedSecret (metrics, key hints; Secret with --old-gc-behavior).
async fn on_deleted(gone: Gone, ctx: Arc<Context>) {
    let Gone {
        namespace,
        name,
        uid,
        replaced,
    } = gone;
    ctx.unseal_failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&ObjectRef::new(&name).within(&namespace));
    if !replaced {
        ctx.note_dependency(&object_key(&namespace, &name), None);
        ctx.metrics.unseal_request();
        ctx.metrics.remove_condition(&namespace, &name);
        ctx.keys.forget_object(&object_key(&namespace, &name));
        ctx.retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&object_key(&namespace, &name));
    }
    if !ctx.options.old_gc_behavior || !ctx.leadership.holds() {
        return;
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    match secrets.get_opt(&name).await {
        // Only a Secret that was ours: never delete someone else's Secret of the same name.
        // Of a replaced object, only the Secret the old object controlled.
        Ok(Some(mut secret))
            if is_controlled_by(&secret, &uid) || (!replaced && may_write(&secret, "")) =>
        {
            wipe_secret(&mut secret);
            if let Err(err) = secrets.delete(&name, &DeleteParams::default()).await {
                tracing::warn!(%namespace, %name, error = %err, "cannot delete Secret of deleted SealedSecret");
            }
        }
        Ok(Some(mut secret)) => wipe_secret(&mut secret),
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(%namespace, %name, error = %err, "cannot read Secret of deleted SealedSecret")
        }
    }
}

/// Page size of the lists of SealedSecrets: each page is parsed whole (ciphertexts included)
/// before the cache slims its objects, so a smaller page is a smaller transient peak (50
/// objects of three RSA-4096 items: about 0.15 MB of JSON, against 1.5 MB at kube's default
/// of 500). The early lane (see `sealed_watch`) keeps the extra round trips off anything's
/// latency.
const SEALED_LIST_PAGE_SIZE: u32 = 50;

/// Page size of the initial list of all Secrets (metadata only).
const SECRET_LIST_PAGE_SIZE: u32 = 100;

/// Runs the reconciler for one scope (`None`: all namespaces) until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.watch_client.clone();
    let (sealed_api, secret_api): (Api<Cached>, Api<PartialObjectMeta<Secret>>) = match &namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let mut watch_config = watcher::Config::default();
    if !ctx.options.label_selector.is_empty() {
        watch_config = watch_config.labels(&ctx.options.label_selector);
    }
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        "Starting informer"
    );

    let (reader, writer) = reflector::store();
    let (deleted_tx, mut deleted_rx) = tokio::sync::mpsc::unbounded_channel::<Gone>();
    let cleanup_ctx = Arc::clone(&ctx);
    tokio::spawn(async move {
        while let Some(gone) = deleted_rx.recv().await {
            on_deleted(gone, Arc::clone(&cleanup_ctx)).await;
        }
    });
    let backlog = ctx.backlog_of_scope(namespace.as_deref());
    let (first_list_tx, first_list_rx) = tokio::sync::watch::channel(false);
    // See `sealed_watch`: the early lane serves what changes while the first list runs.
    let early = {
        let mut done = first_list_rx.clone();
        crate::sealed_watch::early_lane(sealed_api.clone(), &ctx.options.label_selector)
            .await
            .take_until(async move {
                let _ = done.wait_for(|done| *done).await;
            })
            .map(Lane::Early)
    };
    let main = watcher(
        sealed_api,
        watch_config.clone().page_size(SEALED_LIST_PAGE_SIZE),
    )
    .default_backoff()
    .map(Lane::Main);
    let mut sealed_watch = SealedWatch::new(
        writer,
        Arc::clone(&ctx),
        Arc::clone(&backlog),
        deleted_tx,
        first_list_tx,
    );
    // What a (re)list delivers goes to the backlog, released as workers free up; what the
    // watch reports afterwards is reconciled at once, ahead of it (see `backlog`).
    let sealed_stream = futures::stream::select(main, early)
        .filter_map(move |lane| std::future::ready(sealed_watch.handle(lane)));
    // A standby's backlog (what it was asked about while standing by first) is released the
    // moment it takes the Lease over, not at the release loop's next tick.
    {
        let (leadership, backlog) = (ctx.leadership.clone(), Arc::clone(&backlog));
        tokio::spawn(async move {
            leadership.won().await;
            backlog.wake();
        });
    }
    let leadership = ctx.leadership.clone();
    let backlog = backlog.releases(reader.clone(), move || leadership.holds());

    // A key added, changed or removed: try again every object that could not be unsealed.
    let failed_again = futures::stream::unfold(
        (ctx.keys.subscribe(), Arc::clone(&ctx), namespace.clone()),
        |(mut changes, ctx, scope)| async move {
            changes.changed().await.ok()?;
            let failed = ctx.unseal_failures(scope.as_deref());
            if !failed.is_empty() {
                tracing::info!(
                    count = failed.len(),
                    "key ring changed; retrying SealedSecrets that could not be unsealed"
                );
            }
            Some((futures::stream::iter(failed), (changes, ctx, scope)))
        },
    )
    .flatten();

    let mut controller = Controller::for_stream(sealed_stream, reader)
        .with_config(ControllerConfig::default().concurrency(ctx.options.workers.max(1)))
        .reconcile_on(failed_again)
        .reconcile_on(backlog);
    if !ctx.options.skip_recreate {
        let self_heal = ctx.options.self_heal;
        let mut secret_gaps = RelistGaps::default();
        // Small pages: every Secret of the cluster passes through this list at start, and only
        // deletions (and, with self-heal, changes) matter; 100 per page keeps the transient
        // buffers of a 10,000-Secret list to a few hundred KiB (see BENCHMARKS.md).
        let secret_triggers = watcher(secret_api, watch_config.page_size(SECRET_LIST_PAGE_SIZE))
            .default_backoff()
            .flat_map(move |event| {
                let triggers = match event {
                    Ok(event) => secret_event_triggers(&mut secret_gaps, &event, self_heal),
                    Err(err) => {
                        tracing::debug!(error = %err, "Secret watch failed; retrying");
                        Vec::new()
                    }
                };
                futures::stream::iter(triggers)
            });
        // The watch cache is ready before the first list is done (see `sealed_watch`): the
        // Secret watch runs on, and what it triggers waits for that list, so the SealedSecret
        // is found in the cache.
        controller = controller.reconcile_on(crate::sealed_watch::after_first_list(
            secret_triggers,
            first_list_rx,
        ));
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn owned_secret(name: &str, owner: &str, version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("shop".into()),
                resource_version: Some(version.into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "bitnami.com/v1alpha1".into(),
                    kind: "SealedSecret".into(),
                    name: owner.into(),
                    uid: "u".into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                ..ObjectMeta::default()
            },
            _phantom: Default::default(),
        }
    }

    fn names(refs: &[ObjectRef<Cached>]) -> Vec<String> {
        let mut names: Vec<String> = refs.iter().map(|r| r.name.clone()).collect();
        names.sort();
        names
    }

    fn relist_secrets(
        gaps: &mut RelistGaps<SecretMark>,
        secrets: &[PartialObjectMeta<Secret>],
        self_heal: bool,
    ) -> Vec<String> {
        let mut all = secret_event_triggers(gaps, &watcher::Event::Init, self_heal);
        for secret in secrets {
            all.extend(secret_event_triggers(
                gaps,
                &watcher::Event::InitApply(secret.clone()),
                self_heal,
            ));
        }
        all.extend(secret_event_triggers(
            gaps,
            &watcher::Event::InitDone,
            self_heal,
        ));
        names(&all)
    }

    #[test]
    fn a_secret_deleted_during_a_watch_gap_wakes_its_sealed_secret() {
        let mut gaps = RelistGaps::default();
        let (a, b) = (
            owned_secret("a", "a-owner", "1"),
            owned_secret("b", "b-owner", "2"),
        );
        assert!(relist_secrets(&mut gaps, &[a.clone(), b.clone()], false).is_empty());
        // Seen deletions trigger as before.
        let deleted = secret_event_triggers(&mut gaps, &watcher::Event::Delete(b.clone()), false);
        assert_eq!(names(&deleted), ["b-owner"]);
        let applied = secret_event_triggers(&mut gaps, &watcher::Event::Apply(b), false);
        assert!(applied.is_empty(), "changes only trigger with self-heal");
        // `a` is deleted while the watch is down: the relist never says so, the gap does.
        assert_eq!(
            relist_secrets(&mut gaps, &[owned_secret("b", "b-owner", "2")], false),
            ["a-owner"]
        );
    }

    #[test]
    fn a_secret_mark_keeps_its_owner_and_version() {
        let owner = ObjectRef::<Cached>::new("db").within("shop");
        let mark = SecretMark::new(&owner, Some("7"));
        let back = mark.owner();
        assert_eq!(
            (back.name.as_str(), back.namespace.as_deref()),
            ("db", Some("shop"))
        );
        assert_ne!(mark, SecretMark::new(&owner, Some("8")), "versions differ");
    }

    #[test]
    fn with_self_heal_a_secret_edited_during_a_gap_is_put_back() {
        let mut gaps = RelistGaps::default();
        relist_secrets(&mut gaps, &[owned_secret("a", "a-owner", "1")], true);
        assert_eq!(
            relist_secrets(&mut gaps, &[owned_secret("a", "a-owner", "9")], true),
            ["a-owner"]
        );
        let mut quiet = RelistGaps::default();
        relist_secrets(&mut quiet, &[owned_secret("a", "a-owner", "1")], false);
        assert!(relist_secrets(&mut quiet, &[owned_secret("a", "a-owner", "9")], false).is_empty());
    }

    fn sealed(name: &str, uid: &str) -> Cached {
        let mut sealed = SealedSecret::new(name, Default::default());
        sealed.metadata.namespace = Some("shop".into());
        sealed.metadata.uid = Some(uid.into());
        Cached::from(sealed)
    }

    #[test]
    fn a_sealed_secret_deleted_during_a_gap_is_cleaned_up() {
        let mut gaps = RelistGaps::default();
        let events = |gaps: &mut RelistGaps<Gone>, objects: Vec<Cached>| {
            let mut gone = sealed_event_gone(gaps, &watcher::Event::Init);
            for object in objects {
                gone.extend(sealed_event_gone(gaps, &watcher::Event::InitApply(object)));
            }
            gone.extend(sealed_event_gone(gaps, &watcher::Event::InitDone));
            gone.sort_by(|a, b| a.name.cmp(&b.name));
            gone
        };
        assert!(
            events(
                &mut gaps,
                vec![sealed("a", "1"), sealed("b", "2"), sealed("c", "3")]
            )
            .is_empty()
        );
        let seen = sealed_event_gone(&mut gaps, &watcher::Event::Delete(sealed("c", "3")));
        assert_eq!(seen, [Gone::of(&sealed("c", "3"))]);
        // During the gap: `a` deleted, `b` deleted and created again (a new uid).
        let gone = events(&mut gaps, vec![sealed("b", "22")]);
        assert_eq!(
            gone,
            [
                Gone::of(&sealed("a", "1")),
                Gone {
                    replaced: true,
                    ..Gone::of(&sealed("b", "2"))
                }
            ]
        );
    }

    #[test]
    fn a_relist_tombstone_of_a_sealed_secret_and_of_its_secret() {
        // The churn's first kind, seen through a watch gap: `db` (uid 1) and its Secret are
        // deleted, `db` is created again (uid 2), and garbage collection has not yet removed
        // the old Secret when the watches list again. Neither relist is an event of its own
        // (client-go would hand out DeletedFinalStateUnknown tombstones); both are found.
        let mut sealed_gaps = RelistGaps::default();
        let mut secret_gaps = RelistGaps::default();
        let relist_sealed = |gaps: &mut RelistGaps<Gone>, objects: Vec<Cached>| {
            let mut gone = sealed_event_gone(gaps, &watcher::Event::Init);
            for object in objects {
                gone.extend(sealed_event_gone(gaps, &watcher::Event::InitApply(object)));
            }
            gone.extend(sealed_event_gone(gaps, &watcher::Event::InitDone));
            gone
        };
        assert!(relist_sealed(&mut sealed_gaps, vec![sealed("db", "1")]).is_empty());
        relist_secrets(&mut secret_gaps, &[owned_secret("db", "db", "5")], false);
        // After the gap: a new `db`; the Secret was deleted by hand and written again (by a
        // pass on the old object) with another resourceVersion, or is gone altogether.
        assert_eq!(
            relist_sealed(&mut sealed_gaps, vec![sealed("db", "2")]),
            [Gone {
                replaced: true,
                ..Gone::of(&sealed("db", "1"))
            }],
            "the old uid is reported replaced: metrics and key hint stay for the new one"
        );
        assert_eq!(
            relist_secrets(&mut secret_gaps, &[], false),
            ["db"],
            "a Secret that vanished during the gap wakes the SealedSecret of its name"
        );
        // The same gap without the new object: the SealedSecret is gone for good.
        let mut sealed_gaps = RelistGaps::default();
        relist_sealed(&mut sealed_gaps, vec![sealed("db", "1")]);
        assert_eq!(
            relist_sealed(&mut sealed_gaps, vec![]),
            [Gone::of(&sealed("db", "1"))]
        );
    }

    #[test]
    fn failures_are_classified_by_cause() {
        let api = |code| {
            ReconcileError::Api(kube::Error::Api(Box::new(
                kube::core::Status::failure("x", "y").with_code(code),
            )))
        };
        assert_eq!(api(409).cause(), Cause::Transient);
        assert_eq!(api(500).cause(), Cause::Transient);
        assert_eq!(api(429).cause(), Cause::Transient);
        assert_eq!(api(422).cause(), Cause::Permanent);
        let unseal = ReconcileError::Unseal(UnsealError::DeprecatedDataDisabled);
        assert_eq!(unseal.cause(), Cause::Permanent);
        assert_eq!(unseal.metric_reason(), "unseal");
        assert_eq!(
            ReconcileError::Immutable("x".into()).cause(),
            Cause::Permanent
        );
        assert_eq!(ReconcileError::NotLeader.cause(), Cause::Transient);
    }

    #[test]
    fn only_what_needs_a_person_is_logged_as_a_warning() {
        use std::time::Duration;
        let early = Duration::from_secs(5);
        // A conflict or a stale entry resolves itself: debug, however often.
        assert_eq!(
            retry_log_level(true, Cause::Transient, 7, early),
            LogLevel::Debug
        );
        // An API server restart: the first failure at info, the rest quiet...
        assert_eq!(
            retry_log_level(false, Cause::Transient, 1, Duration::ZERO),
            LogLevel::Info
        );
        assert_eq!(
            retry_log_level(false, Cause::Transient, 2, early),
            LogLevel::Quiet
        );
        // ...until it has lasted long enough to need someone, races included.
        assert_eq!(
            retry_log_level(false, Cause::Transient, 9, TRANSIENT_WARN_AFTER),
            LogLevel::Warn
        );
        assert_eq!(
            retry_log_level(true, Cause::Transient, 9, TRANSIENT_WARN_AFTER),
            LogLevel::Warn
        );
        // A SealedSecret that cannot be opened, a foreign Secret: always a warning.
        assert_eq!(
            retry_log_level(false, Cause::Permanent, 1, Duration::ZERO),
            LogLevel::Warn
        );
    }

    #[test]
    fn races_are_told_from_failures() {
        let api = |code| {
            ReconcileError::Api(kube::Error::Api(Box::new(
                kube::core::Status::failure("x", "y").with_code(code),
            )))
        };
        assert_eq!(api(409).race(), Some(race::CONFLICT));
        assert_eq!(api(404).race(), Some(race::SECRET_GONE));
        assert_eq!(api(500).race(), None);
        assert_eq!(api(403).race(), None);
        assert_eq!(ReconcileError::Gone.race(), Some(race::STALE_OBJECT));
        assert_eq!(ReconcileError::Unmanaged("x".into()).race(), None);
    }

    #[test]
    fn secret_events_map_to_their_sealed_secret() {
        let mut meta: PartialObjectMeta<Secret> = PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("shop".into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "bitnami.com/v1alpha1".into(),
                    kind: "SealedSecret".into(),
                    name: "db-sealed".into(),
                    uid: "u".into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                ..ObjectMeta::default()
            },
            _phantom: Default::default(),
        };
        let target = sealed_secret_for(&meta).unwrap();
        assert_eq!(
            (target.name.as_str(), target.namespace.as_deref()),
            ("db-sealed", Some("shop"))
        );
        meta.metadata.owner_references = None;
        assert!(sealed_secret_for(&meta).is_none());
        meta.metadata.annotations =
            Some([(MANAGED_ANNOTATION.to_string(), "true".to_string())].into());
        assert_eq!(sealed_secret_for(&meta).unwrap().name, "db");
    }

    #[test]
    fn status_changes_do_not_trigger_but_annotations_and_the_spec_do() {
        let mut sealed = SealedSecret::new("db", Default::default());
        sealed.metadata.generation = Some(1);
        let before = trigger_hash(&Cached::from(sealed.clone()));
        sealed.status = Some(Default::default());
        assert_eq!(trigger_hash(&Cached::from(sealed.clone())), before);
        let mut annotated = sealed.clone();
        annotated.metadata.annotations = Some(
            [(
                "sealedsecrets.bitnami.com/cluster-wide".into(),
                "true".into(),
            )]
            .into(),
        );
        assert_ne!(trigger_hash(&Cached::from(annotated)), before);
        // A spec change the generation does not show (a cache that missed it): the hash does.
        sealed.spec.encrypted_data.insert("a".into(), "AgB=".into());
        assert_ne!(trigger_hash(&Cached::from(sealed)), before);
    }
}
