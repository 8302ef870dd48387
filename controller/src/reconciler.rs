//! The reconcile loop: SealedSecret in, Secret + status + events out.
//!
//! Triggers: every SealedSecret at start, changes of its spec, labels or annotations (never its
//! own status writes, which was upstream's v0.12 infinite loop), and deletion of a Secret it
//! owns or manages (unless `--skip-recreate`). With `--self-heal`, any change of such a Secret
//! also triggers, so hand edits are put back. Secrets are watched as metadata only: the
//! controller never caches the cluster's secret data (upstream's 50+ MB, #1289).
//!
//! Decryption (RSA) runs on the blocking pool so it never stalls the watchers; `--workers`
//! SealedSecrets are processed in parallel.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, PartialObjectMeta, PostParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::{Action, Config as ControllerConfig},
        reflector::{self, ObjectRef},
        watcher,
    },
};
use sealed_secrets_core::{
    sealed_secret::SealedSecret,
    unseal::{UnsealOptions, unseal},
};

use crate::{
    decisions::{
        MANAGED_ANNOTATION, SecretWrite, condition_gauge, immutable_message, is_controlled_by,
        may_write, next_status, plan_secret_write,
    },
    events::{
        EventPublisher, EventType, MESSAGE_UNSEALED, REASON_UNSEAL_FAILED, REASON_UNSEALED,
        REASON_UPDATE_FAILED,
    },
    keyring::KeyRing,
    metrics::Metrics,
};

/// Label copied into the `condition_info` metric.
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Suffix of the API server's error for writes to immutable Secrets.
const IMMUTABLE_ERROR_SUFFIX: &str = "field is immutable when `immutable` is set";

/// Reconciler switches.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Write the status subresource.
    pub update_status: bool,
    /// Accept the deprecated `spec.data`.
    pub accept_deprecated_v1_data: bool,
    /// Retries of a failing object before waiting for its next change.
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

/// Shared state of the reconcilers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// The sealing keys.
    pub keys: Arc<KeyRing>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event recorder.
    pub events: EventPublisher,
    /// Switches.
    pub options: ReconcileOptions,
    /// Failures per object since its last success: (generation, count).
    retries: Mutex<HashMap<String, (Option<i64>, u32)>>,
}

impl Context {
    /// A context.
    pub fn new(
        client: Client,
        keys: Arc<KeyRing>,
        metrics: Arc<Metrics>,
        options: ReconcileOptions,
    ) -> Self {
        Self {
            events: EventPublisher::new(client.clone()),
            client,
            keys,
            metrics,
            options,
            retries: Mutex::default(),
        }
    }
}

/// Why a pass failed; the text is what status, events and logs show.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Decryption or template rendering failed.
    #[error("{0}")]
    Unseal(String),
    /// Reading or writing the Secret failed.
    #[error("{0}")]
    Update(String),
    /// The Secret exists and is not ours.
    #[error("failed update: {0}")]
    Unmanaged(String),
    /// The Secret is immutable; retrying cannot help.
    #[error("{0}")]
    Immutable(String),
}

impl ReconcileError {
    /// The `reason` label of `unseal_errors_total`.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Self::Unseal(_) => "unseal",
            Self::Update(_) | Self::Immutable(_) => "update",
            Self::Unmanaged(_) => "unmanaged",
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
    let (object, keys) = (Arc::clone(sealed), Arc::clone(&ctx.keys));
    let created = sealed.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let unsealed = tokio::task::spawn_blocking(move || {
        unseal(&object, &keys.decrypter_for(Some(&key), created), options)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ReconcileError::Unseal(format!("decryption task failed: {e}")))?;
    let desired = match unsealed {
        Ok(secret) => secret,
        Err(message) => {
            ctx.events
                .publish(
                    sealed,
                    EventType::Warning,
                    REASON_UNSEAL_FAILED,
                    &format!("Failed to unseal: {message}"),
                )
                .await;
            return Err(ReconcileError::Unseal(message));
        }
    };

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let update_failed = |message: String| async move {
        ctx.events
            .publish(sealed, EventType::Warning, REASON_UPDATE_FAILED, &message)
            .await;
        ReconcileError::Update(message)
    };
    let existing = match secrets.get_opt(&name).await {
        Ok(existing) => existing,
        Err(err) => return Err(update_failed(err.to_string()).await),
    };
    let uid = sealed.uid().unwrap_or_default();
    match plan_secret_write(existing.as_ref(), desired, &uid) {
        SecretWrite::Unchanged => Ok(Written::No),
        SecretWrite::Create(secret) => {
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => Ok(Written::Yes),
                Err(err) => Err(update_failed(err.to_string()).await),
            }
        }
        SecretWrite::Update(secret) => match secrets
            .replace(&name, &PostParams::default(), &secret)
            .await
        {
            Ok(_) => Ok(Written::Yes),
            Err(err) if err.to_string().contains(IMMUTABLE_ERROR_SUFFIX) => {
                let message = immutable_message(&namespace, &name);
                ctx.events
                    .publish(sealed, EventType::Warning, REASON_UPDATE_FAILED, &message)
                    .await;
                Err(ReconcileError::Immutable(message))
            }
            Err(err) => Err(update_failed(err.to_string()).await),
        },
        SecretWrite::Refuse(message) => {
            ctx.events
                .publish(sealed, EventType::Warning, REASON_UPDATE_FAILED, &message)
                .await;
            Err(ReconcileError::Unmanaged(message))
        }
    }
}

/// Writes the status when it changed; returns whether it was written.
async fn write_status(sealed: &SealedSecret, ctx: &Context, error: Option<&str>) -> bool {
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
    let Some(status) = next_status(
        sealed.status.as_ref(),
        sealed.meta().generation,
        error,
        opened_with.as_deref(),
        jiff::Timestamp::now(),
    ) else {
        ctx.metrics.set_condition(
            &namespace,
            &name,
            &instance,
            condition_gauge(sealed.status.as_ref()),
        );
        return false;
    };
    let mut updated = sealed.clone();
    updated.status = Some(status);
    let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {
            ctx.metrics.set_condition(
                &namespace,
                &name,
                &instance,
                condition_gauge(updated.status.as_ref()),
            );
            true
        }
        Err(err) => {
            tracing::warn!(%namespace, %name, error = %err, "cannot update status");
            ctx.metrics.unseal_error("status", &namespace);
            false
        }
    }
}

/// One pass over one SealedSecret.
pub async fn reconcile(
    sealed: Arc<SealedSecret>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    ctx.metrics.unseal_request();
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    tracing::info!(%namespace, %name, "Updating");
    let outcome = unseal_and_write(&sealed, &ctx).await;
    let status_written = if ctx.options.update_status {
        let error = outcome.as_ref().err().map(ToString::to_string);
        write_status(&sealed, &ctx, error.as_deref()).await
    } else {
        false
    };
    match outcome {
        Ok(written) => {
            ctx.retries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&object_key(&namespace, &name));
            // Upstream records `Unsealed` on every pass; we record it when something changed,
            // so restarts do not flood every namespace with identical events.
            if written == Written::Yes || status_written {
                ctx.events
                    .publish(
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
            ctx.metrics.unseal_error(err.metric_reason(), &namespace);
            Err(err)
        }
    }
}

/// Retry policy: exponential backoff up to `--max-unseal-retries`, then wait for a change.
pub fn error_policy(sealed: Arc<SealedSecret>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    if matches!(err, ReconcileError::Immutable(_)) {
        tracing::warn!(%namespace, %name, "the target Secret is immutable; not retrying");
        return Action::await_change();
    }
    let key = object_key(&namespace, &name);
    let generation = sealed.meta().generation;
    let attempts = {
        let mut retries = ctx.retries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = retries.entry(key).or_insert((generation, 0));
        if entry.0 != generation {
            *entry = (generation, 0);
        }
        entry.1 += 1;
        entry.1
    };
    match retry_delay(attempts, ctx.options.max_unseal_retries) {
        Some(delay) => {
            tracing::warn!(%namespace, %name, error = %err, attempt = attempts, "Error updating, will retry");
            Action::requeue(delay)
        }
        None => {
            tracing::error!(%namespace, %name, error = %err, "Error updating, giving up");
            Action::await_change()
        }
    }
}

/// Delay before retry number `attempt` (1-based): 100 ms doubling, at most 5 min; `None` once
/// `max` retries are used up.
pub fn retry_delay(attempt: u32, max: u32) -> Option<Duration> {
    if attempt > max {
        return None;
    }
    let millis = 100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    Some(Duration::from_millis(millis.min(300_000)))
}

/// The SealedSecret a Secret event should wake, if the Secret is one we own or manage.
pub fn sealed_secret_for(secret: &PartialObjectMeta<Secret>) -> Option<ObjectRef<SealedSecret>> {
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

/// Reconcile triggers: spec (generation), labels and annotations — not status.
fn trigger_hash(sealed: &SealedSecret) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    sealed.meta().generation.hash(&mut hasher);
    sealed.meta().labels.hash(&mut hasher);
    sealed.meta().annotations.hash(&mut hasher);
    Some(hasher.finish())
}

/// Cleans up after a deleted SealedSecret (metrics, key hints; Secret with --old-gc-behavior).
async fn on_deleted(sealed: SealedSecret, ctx: Arc<Context>) {
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    ctx.metrics.unseal_request();
    ctx.metrics.remove_condition(&namespace, &name);
    ctx.keys.forget_object(&object_key(&namespace, &name));
    if !ctx.options.old_gc_behavior {
        return;
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    match secrets.get_opt(&name).await {
        // Only a Secret that was ours: never delete someone else's Secret of the same name.
        Ok(Some(secret))
            if is_controlled_by(&secret, &sealed.uid().unwrap_or_default())
                || may_write(&secret, "") =>
        {
            if let Err(err) = secrets.delete(&name, &DeleteParams::default()).await {
                tracing::warn!(%namespace, %name, error = %err, "cannot delete Secret of deleted SealedSecret");
            }
        }
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(%namespace, %name, error = %err, "cannot read Secret of deleted SealedSecret")
        }
    }
}

/// Page size of the initial list of all Secrets (metadata only).
const SECRET_LIST_PAGE_SIZE: u32 = 100;

/// Runs the reconciler for one scope (`None`: all namespaces) until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (sealed_api, secret_api): (Api<SealedSecret>, Api<PartialObjectMeta<Secret>>) =
        match &namespace {
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
    let (deleted_tx, mut deleted_rx) = tokio::sync::mpsc::unbounded_channel::<SealedSecret>();
    let cleanup_ctx = Arc::clone(&ctx);
    tokio::spawn(async move {
        while let Some(sealed) = deleted_rx.recv().await {
            on_deleted(sealed, Arc::clone(&cleanup_ctx)).await;
        }
    });
    let sealed_stream = reflector::reflector(
        writer,
        watcher(sealed_api, watch_config.clone()).default_backoff(),
    )
    .inspect(move |event| {
        if let Ok(watcher::Event::Delete(sealed)) = event {
            let _ = deleted_tx.send(sealed.clone());
        }
    })
    .applied_objects()
    .predicate_filter(trigger_hash, Default::default());

    let mut controller = Controller::for_stream(sealed_stream, reader)
        .with_config(ControllerConfig::default().concurrency(ctx.options.workers.max(1)));
    if !ctx.options.skip_recreate {
        let self_heal = ctx.options.self_heal;
        // Small pages: every Secret of the cluster passes through this list at start, and only
        // deletions (and, with self-heal, changes) matter; 100 per page keeps the transient
        // buffers of a 10,000-Secret list to a few hundred KiB (see BENCHMARKS.md).
        let secret_stream = watcher(secret_api, watch_config.page_size(SECRET_LIST_PAGE_SIZE))
            .default_backoff()
            .filter_map(move |event| async move {
                match event {
                    Ok(watcher::Event::Delete(meta)) => Some(Ok(meta)),
                    Ok(watcher::Event::Apply(meta)) if self_heal => Some(Ok(meta)),
                    Ok(_) => None,
                    Err(err) => Some(Err(err)),
                }
            });
        controller = controller.watches_stream(secret_stream, |meta: PartialObjectMeta<Secret>| {
            sealed_secret_for(&meta)
        });
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

    #[test]
    fn retries_back_off_and_stop() {
        assert_eq!(retry_delay(1, 5), Some(Duration::from_millis(100)));
        assert_eq!(retry_delay(3, 5), Some(Duration::from_millis(400)));
        assert_eq!(retry_delay(5, 5), Some(Duration::from_millis(1600)));
        assert_eq!(retry_delay(6, 5), None);
        assert_eq!(retry_delay(30, 40), Some(Duration::from_secs(300)));
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
    fn status_changes_do_not_trigger_but_annotations_do() {
        let mut sealed = SealedSecret::new("db", Default::default());
        sealed.metadata.generation = Some(1);
        let before = trigger_hash(&sealed);
        sealed.status = Some(Default::default());
        assert_eq!(trigger_hash(&sealed), before);
        sealed.metadata.annotations = Some(
            [(
                "sealedsecrets.bitnami.com/cluster-wide".into(),
                "true".into(),
            )]
            .into(),
        );
        assert_ne!(trigger_hash(&sealed), before);
    }
}
