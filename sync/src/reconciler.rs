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

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
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
    cluster::{Cluster, Kind},
    engine::{self, Mode, SyncError, SyncReport, Target},
    health::Health,
    policy::SealedSecretVerifier,
    render::Renderer,
    resource::{
        Condition, GitSync, GitSyncStatus, InventoryStatus, NAME_LABEL, NAMESPACE_LABEL,
        parse_interval,
    },
    source::{Credentials, Source, SourceSpec},
};

/// Annotation whose change asks for a sync now (value: any, e.g. a timestamp).
pub const REQUESTED_AT_ANNOTATION: &str = "gitops.sealed-secrets-rs.io/requested-at";
/// How soon to look again while applied objects are still progressing.
const PROGRESSING_REQUEUE: Duration = Duration::from_secs(10);
/// How soon to retry after a failure.
const FAILURE_REQUEUE: Duration = Duration::from_secs(30);

/// What the reconciler needs.
pub struct Context {
    /// The API server.
    pub cluster: Cluster,
    /// Where manifests come from.
    pub source: Arc<dyn Source>,
    /// How folders become objects.
    pub renderer: Renderer,
    /// Opens SealedSecrets for the secret policy; `None` skips that check.
    pub verifier: Option<Arc<dyn SealedSecretVerifier>>,
    drift: DriftWatches,
    watch_drift: bool,
}

impl Context {
    /// A context; drift watches start lazily, per kind, as GitSyncs apply them.
    pub fn new(
        cluster: Cluster,
        source: Arc<dyn Source>,
        renderer: Renderer,
        verifier: Option<Arc<dyn SealedSecretVerifier>>,
    ) -> Context {
        Context {
            drift: DriftWatches::new(cluster.clone()),
            watch_drift: true,
            cluster,
            source,
            renderer,
            verifier,
        }
    }

    /// Notices drift on the interval only (no watches); for tests against a server without
    /// watch support.
    pub fn without_drift_watches(mut self) -> Context {
        self.watch_drift = false;
        self
    }
}

/// A reconcile failure that could not even be recorded in status.
#[derive(Debug, thiserror::Error)]
#[error("writing status of GitSync {name}: {source}")]
pub struct StatusError {
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
    sync.annotations()
        .get(REQUESTED_AT_ANNOTATION)
        .hash(&mut hasher);
    Some(hasher.finish())
}

fn error_policy(_sync: Arc<GitSync>, err: &StatusError, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(error = %err, "gitsync status");
    Requeue::requeue(FAILURE_REQUEUE)
}

/// One reconcile of one GitSync: fetch, render, sync, write status; says when to look again.
pub async fn reconcile(sync: Arc<GitSync>, ctx: Arc<Context>) -> Result<Requeue, StatusError> {
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
            write_status(&ctx, &sync, &old, &status).await?;
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
        write_status(&ctx, &sync, &old, &status).await?;
        return Ok(Requeue::await_change());
    }

    let outcome = run_sync(&sync, &ctx, &mut status).await;
    let requeue = match outcome {
        Ok((revision, report)) => {
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
                ctx.drift.ensure(&ctx.cluster, &report.inventory).await;
            }
            if report.health.is_healthy() {
                interval
            } else {
                interval.min(PROGRESSING_REQUEUE)
            }
        }
        Err((reason, message)) => {
            tracing::info!(gitsync = %name, namespace = %namespace, reason, "sync failed");
            status.last_error = Some(message.clone());
            set(&mut status, "Ready", Some(false), reason, message);
            interval.min(FAILURE_REQUEUE)
        }
    };
    write_status(&ctx, &sync, &old, &status).await?;
    Ok(Requeue::requeue(requeue))
}

/// Fetch, render, sync. Errors come back as (condition reason, message).
async fn run_sync(
    sync: &GitSync,
    ctx: &Context,
    status: &mut GitSyncStatus,
) -> Result<(String, SyncReport), (&'static str, String)> {
    let namespace = sync.namespace().unwrap_or_default();
    let credentials = match &sync.spec.source.secret_ref {
        Some(reference) => Some(
            read_credentials(ctx, &namespace, &reference.name)
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
    let checkout = tokio::task::spawn_blocking(move || source.fetch(&spec))
        .await
        .map_err(|e| ("FetchFailed", e.to_string()))?
        .map_err(|e| ("FetchFailed", e.to_string()))?;
    status.last_fetched_revision = Some(checkout.revision.clone());

    let renderer = ctx.renderer.clone();
    let path = sync.spec.source.path.clone();
    let dir = checkout.dir.clone();
    let manifests = tokio::task::spawn_blocking(move || renderer.render(&dir, &path))
        .await
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
    let report = engine::sync(&ctx.cluster, &manifests, &target, &previous, mode)
        .await
        .map_err(|e: SyncError| (e.reason(), e.to_string()))?;
    Ok((checkout.revision, report))
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
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Credentials, String> {
    let api: Api<Secret> = Api::namespaced(ctx.cluster.client().clone(), namespace);
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
        ] {
            map.entry(field).or_insert(Value::Null);
        }
    }
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": value })),
    )
    .await
    .map(|_| ())
    .map_err(|source| StatusError { name, source })
}

/// Metadata-only watches of the kinds GitSyncs applied, feeding drift into the controller.
struct DriftWatches {
    cluster: Cluster,
    started: Mutex<HashSet<String>>,
    sender: tokio::sync::mpsc::UnboundedSender<ObjectRef<GitSync>>,
    receiver: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ObjectRef<GitSync>>>>,
    /// Label selector of the watches: our objects, or those of GitSyncs of one namespace.
    selector: Mutex<String>,
}

impl DriftWatches {
    fn new(cluster: Cluster) -> DriftWatches {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        DriftWatches {
            cluster,
            started: Mutex::default(),
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

    /// Starts a watch for every kind of the inventory that has none yet.
    async fn ensure(&self, cluster: &Cluster, inventory: &[crate::resource::InventoryEntry]) {
        for entry in inventory {
            let Some(key) = crate::manifest::ObjectKey::from_id(&entry.id) else {
                continue;
            };
            let api_version = entry.api_version(&key);
            let id = format!("{api_version}/{}", key.kind);
            let fresh = self
                .started
                .lock()
                .map(|mut started| started.insert(id.clone()))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            match cluster.resolve(&api_version, &key.kind).await {
                Ok(Some(kind)) => self.spawn(kind),
                _ => {
                    if let Ok(mut started) = self.started.lock() {
                        started.remove(&id);
                    }
                }
            }
        }
    }

    fn spawn(&self, kind: Kind) {
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.cluster.client().clone(), &kind.resource);
        let sender = self.sender.clone();
        let plural = kind.resource.plural.clone();
        let selector = self
            .selector
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| NAME_LABEL.to_string());
        tokio::spawn(async move {
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
