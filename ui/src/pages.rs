//! Each page: fetch what it shows from the API server as the user ([`crate::access`]), build
//! its model ([`crate::views`]) and render it into HTML with askama (every value escaped by
//! the template engine; nothing is marked safe but our own rendered fragments).
//!
//! A page renders its main content alone; `server.rs` wraps it in the layout, or sends it bare
//! to the page's own script for a live update.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use askama::Template;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use sealed_secrets_core::key_secret::KEY_LABEL;
use sealed_secrets_sync::{
    engine::{self, Mode, Target},
    manifest::{Manifest, ObjectKey},
    reconciler::REQUESTED_AT_ANNOTATION,
    render::Renderer,
    resource::{GROUP, GitSync, NAME_LABEL, NAMESPACE_LABEL},
    source::{GitCli, Source, SourceSpec},
};
use serde_json::{Value, json};

use crate::{
    App,
    access::{AccessError, Listing},
    security::safe_link,
    views::{
        self, drift,
        overview::{self, Filter, Row},
        seal::{FormError, SealForm, Sealed},
        sealed, short_revision, timeline,
        tree::{self, Node, TreeQuery},
    },
};

/// A rendered page: its title, which nav entry it is, whether it updates live, and its main
/// content.
pub struct Page {
    /// `<title>`.
    pub title: String,
    /// Nav entry: `overview`, `sealed`, `seal` or empty.
    pub active: &'static str,
    /// How often its script re-fetches it, in milliseconds (0: never).
    pub live: u32,
    /// The main content (HTML).
    pub content: String,
    /// HTTP status.
    pub status: u16,
}

/// How often a page fetches itself again: a change in the cluster shows within about a second
/// plus the page's own time.
const LIVE_MS: u32 = 1_000;

/// The drift page dry-runs every object of its GitSync each time: less often.
const DRIFT_LIVE_MS: u32 = 2_000;

/// Renders of distinct revisions kept (a few overlays at a few revisions each).
const MAX_RENDERS: usize = 32;

fn render(template: &impl Template) -> String {
    template
        .render()
        .unwrap_or_else(|e| format!("<p class=\"error\">cannot render this page: {e}</p>"))
}

/// A page that only says something.
pub fn message(status: u16, heading: &str, text: &str) -> Page {
    #[derive(Template)]
    #[template(path = "message.html")]
    struct Message<'a> {
        heading: &'a str,
        message: &'a str,
    }
    Page {
        title: heading.to_string(),
        active: "",
        live: 0,
        content: render(&Message {
            heading,
            message: text,
        }),
        status,
    }
}

fn gitsync_kind() -> (String, &'static str) {
    (format!("{GROUP}/v1alpha1"), "GitSync")
}

async fn gitsyncs(app: &App) -> Result<(Vec<GitSync>, Listing), AccessError> {
    let (api_version, kind) = gitsync_kind();
    let kind = app.access.kind(&api_version, kind).await?;
    let mut listing = app.access.list(&kind, None, "").await?;
    let items = std::mem::take(&mut listing.items)
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    Ok((items, listing))
}

/// The overview.
pub async fn overview(app: &App, filter: Filter) -> Page {
    #[derive(Template)]
    #[template(path = "overview.html")]
    struct View {
        namespaces: Vec<(String, bool)>,
        states: Vec<(&'static str, bool)>,
        filter: Filter,
        forbidden: Vec<String>,
        problem: Option<String>,
        rows: Vec<Row>,
        total: usize,
    }
    let now = jiff::Timestamp::now();
    let (rows, forbidden, problem) = match gitsyncs(app).await {
        Ok((items, listing)) => (
            items
                .iter()
                .map(|s| overview::row(s, now))
                .collect::<Vec<_>>(),
            listing.forbidden,
            None,
        ),
        Err(e) => (
            Vec::new(),
            Vec::new(),
            Some(format!("cannot list GitSyncs: {e}")),
        ),
    };
    let total = rows.len();
    let view = View {
        namespaces: overview::namespaces(&rows)
            .into_iter()
            .map(|ns| {
                let selected = ns == filter.namespace;
                (ns, selected)
            })
            .collect(),
        states: overview::STATES
            .iter()
            .map(|s| (*s, *s == filter.state))
            .collect(),
        rows: filter.apply(rows),
        filter,
        forbidden,
        problem,
        total,
    };
    Page {
        title: "GitSyncs".into(),
        active: "overview",
        live: LIVE_MS,
        content: render(&view),
        status: 200,
    }
}

async fn gitsync(app: &App, namespace: &str, name: &str) -> Result<Option<GitSync>, Page> {
    let api: Api<GitSync> = Api::namespaced(app.access.client(), namespace);
    match tokio::time::timeout(crate::access::REQUEST_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(kube::Error::Api(status))) if status.code == 403 => Err(message(
            403,
            "Not allowed",
            &format!(
                "You may not read GitSync {namespace}/{name}: {}",
                status.message
            ),
        )),
        Ok(Err(e)) => Err(message(
            502,
            "The API server failed",
            &format!("Reading GitSync {namespace}/{name}: {e}"),
        )),
        Err(_) => Err(message(
            504,
            "The API server did not answer",
            &format!("Reading GitSync {namespace}/{name} timed out"),
        )),
    }
}

fn not_found(namespace: &str, name: &str) -> Page {
    message(
        404,
        "No such GitSync",
        &format!("There is no GitSync {namespace}/{name} (or it was deleted)."),
    )
}

/// One history record, ready to show.
struct HistoryRow {
    finished_at: String,
    revision: String,
    subject: String,
    author: String,
    trigger: &'static str,
    ok: bool,
    reason: String,
    message: String,
    counts: String,
}

/// Kinds whose children the tree looks for, and the kinds those children are.
const CHILD_KINDS: &[(&str, &str, &[&str])] = &[
    ("apps/v1", "ReplicaSet", &["Deployment"]),
    (
        "v1",
        "Pod",
        &[
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
        ],
    ),
    ("batch/v1", "Job", &["CronJob"]),
];

/// Live objects of the inventory, the children found below them, and what could not be listed.
pub async fn tree_objects(app: &App, sync: &GitSync) -> (Vec<Value>, Vec<Value>, Vec<String>) {
    let owner = sync.metadata.name.clone().unwrap_or_default();
    let owner_ns = sync.metadata.namespace.clone().unwrap_or_default();
    let selector = format!("{NAME_LABEL}={owner},{NAMESPACE_LABEL}={owner_ns}");
    let entries = sync
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.clone())
        .unwrap_or_default();
    let mut by_kind: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for entry in &entries {
        if let Some(key) = ObjectKey::from_id(&entry.id) {
            by_kind
                .entry((
                    views::tree::api_version(&key.group, &entry.v),
                    key.kind.clone(),
                ))
                .or_default()
                .insert(key.namespace.clone());
        }
    }
    let mut hidden = Vec::new();
    let lists = futures::future::join_all(by_kind.iter().map(|((api_version, kind), nss)| {
        let selector = selector.clone();
        async move {
            let result = match app.access.kind(api_version, kind).await {
                Ok(k) => app.access.list(&k, Some(nss), &selector).await,
                Err(e) => Err(e),
            };
            (kind.clone(), result)
        }
    }))
    .await;
    let mut live = Vec::new();
    for (kind, result) in lists {
        match result {
            Ok(listing) => {
                live.extend(listing.items);
                hidden.extend(listing.forbidden.iter().map(|ns| format!("{kind} in {ns}")));
            }
            Err(e) => hidden.push(format!("{kind}: {e}")),
        }
    }
    let namespaces: BTreeSet<String> = live
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_string))
        .collect();
    let kinds_present: BTreeSet<&str> = live.iter().filter_map(|o| o["kind"].as_str()).collect();
    let mut others = Vec::new();
    for (api_version, kind, parents) in CHILD_KINDS {
        if !parents.iter().any(|p| kinds_present.contains(p)) {
            continue;
        }
        let listing = app
            .access
            .list_or_empty(api_version, kind, Some(&namespaces), "")
            .await;
        others.extend(listing.items);
    }
    if kinds_present.contains("SealedSecret") {
        others.extend(secrets_metadata(app, &namespaces).await);
    }
    (live, others, hidden)
}

/// The Secrets of `namespaces` as metadata only (ownerReferences tie them to their
/// SealedSecret): the UI never asks the API server for a Secret's data here.
async fn secrets_metadata(app: &App, namespaces: &BTreeSet<String>) -> Vec<Value> {
    let lists = futures::future::join_all(namespaces.iter().map(|ns| async move {
        let api: Api<Secret> = Api::namespaced(app.access.client(), ns);
        tokio::time::timeout(
            crate::access::REQUEST_TIMEOUT,
            api.list_metadata(&ListParams::default()),
        )
        .await
    }))
    .await;
    lists
        .into_iter()
        .filter_map(|r| r.ok()?.ok())
        .flat_map(|list| list.items)
        .map(|meta| json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta.metadata}))
        .collect()
}

async fn events(app: &App, namespaces: &BTreeSet<String>) -> Vec<Value> {
    app.access
        .list_or_empty("v1", "Event", Some(namespaces), "")
        .await
        .items
}

/// Links a GitSync declares in annotations (`link.argocd.argoproj.io/<label>`, as Argo CD
/// reads them, or `gitops.sealed-secrets-rs.io/link.<label>`), with whether each is a safe
/// web link.
fn links(sync: &GitSync) -> Vec<(String, String, bool)> {
    sync.metadata
        .annotations
        .iter()
        .flatten()
        .filter_map(|(key, url)| {
            let label = key
                .strip_prefix("link.argocd.argoproj.io/")
                .or_else(|| key.strip_prefix("gitops.sealed-secrets-rs.io/link."))?;
            Some((label.to_string(), url.clone(), safe_link(url).is_some()))
        })
        .collect()
}

/// Depth-first rows of a node (the template draws depth as indentation).
fn flatten(mut node: Node, depth: usize, out: &mut Vec<(usize, Node)>) {
    let children = std::mem::take(&mut node.children);
    out.push((depth, node));
    for child in children {
        flatten(child, depth + 1, out);
    }
}

/// The notice after an action.
fn notice(done: &str) -> Option<&'static str> {
    match done {
        "sync" => Some("Sync requested: the controller syncs within seconds."),
        "suspend" => Some("Suspended: no sync runs until it is resumed."),
        "resume" => Some("Resumed."),
        _ => None,
    }
}

/// A GitSync: its tree, events and history.
pub async fn gitsync_page(
    app: &App,
    namespace: &str,
    name: &str,
    query: TreeQuery,
    done: &str,
) -> Page {
    #[derive(Template)]
    #[template(path = "gitsync.html")]
    struct View {
        namespace: String,
        name: String,
        row: Row,
        path: String,
        source_link: Option<String>,
        links: Vec<(String, String, bool)>,
        may_patch: bool,
        csrf: String,
        notice: Option<&'static str>,
        query: TreeQuery,
        tree: tree::TreePage,
        kinds: Vec<(String, usize, bool)>,
        summary: Vec<(&'static str, &'static str, usize)>,
        groups: Vec<(String, Vec<(usize, Node)>)>,
        hidden: Vec<String>,
        page_query: String,
        events: Vec<timeline::Entry>,
        history: Vec<HistoryRow>,
    }
    let sync = match gitsync(app, namespace, name).await {
        Ok(Some(sync)) => sync,
        Ok(None) => return not_found(namespace, name),
        Err(page) => return page,
    };
    let now = jiff::Timestamp::now();
    let (tree_data, may_patch) = futures::future::join(
        tree_objects(app, &sync),
        app.access.may("patch", GROUP, "gitsyncs", namespace),
    )
    .await;
    let (live, others, hidden) = tree_data;
    let entries = sync
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.clone())
        .unwrap_or_default();
    let mut uids = tree::uids(&live, &others);
    if let Some(uid) = &sync.metadata.uid {
        uids.insert(uid.clone());
    }
    let mut event_namespaces: BTreeSet<String> = live
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_string))
        .collect();
    event_namespaces.insert(namespace.to_string());
    let event_list = events(app, &event_namespaces).await;
    let nodes = tree::build(&entries, &live, &others);
    let tree_page = tree::page(nodes, &query);
    let groups = tree_page
        .groups
        .iter()
        .map(|(kind, nodes)| {
            let mut rows = Vec::new();
            for node in nodes.iter().cloned() {
                flatten(node, 0, &mut rows);
            }
            (kind.clone(), rows)
        })
        .collect();
    let history = sync
        .status
        .as_ref()
        .map(|s| s.history.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|h| HistoryRow {
            finished_at: h.finished_at,
            revision: short_revision(&h.revision).to_string(),
            subject: h.commit_subject.unwrap_or_default(),
            author: h.commit_author.unwrap_or_default(),
            trigger: h.trigger.as_str(),
            ok: h.result == sealed_secrets_sync::audit::SyncResult::Succeeded,
            reason: if h.attempts > 1 {
                format!("{} ×{}", h.reason, h.attempts)
            } else {
                h.reason
            },
            message: h.message,
            counts: format!(
                "{} created, {} configured, {} unchanged, {} pruned, {} drifted",
                h.created, h.configured, h.unchanged, h.pruned, h.drifted
            ),
        })
        .collect();
    let mut page_query = form_urlencoded::Serializer::new(String::new());
    if query.problems {
        page_query.append_pair("problems", "true");
    }
    if !query.kind.is_empty() {
        page_query.append_pair("kind", &query.kind);
    }
    let view = View {
        namespace: namespace.to_string(),
        name: name.to_string(),
        row: overview::row(&sync, now),
        path: sync.spec.source.path.clone(),
        source_link: safe_link(&sync.spec.source.url).map(str::to_string),
        links: links(&sync),
        may_patch,
        csrf: app.secrets.csrf_token().to_string(),
        notice: notice(done),
        kinds: tree_page
            .kinds
            .iter()
            .map(|(k, n)| (k.clone(), *n, *k == query.kind))
            .collect(),
        summary: tree_page
            .summary
            .iter()
            .map(|(label, n)| {
                let class = match *label {
                    "Healthy" => "ok",
                    "Progressing" => "unknown",
                    _ => "bad",
                };
                (*label, class, *n)
            })
            .collect(),
        groups,
        tree: tree_page,
        query,
        hidden,
        page_query: page_query.finish(),
        events: timeline::build(&event_list, &uids, now),
        history,
    };
    Page {
        title: format!("{namespace}/{name}"),
        active: "overview",
        live: LIVE_MS,
        content: render(&view),
        status: 200,
    }
}

/// Runs a GitSync action (`sync`, `suspend`, `resume`) as the user. The API server decides
/// whether the user may: the page offered the action only when a review said yes.
pub async fn act(app: &App, namespace: &str, name: &str, action: &str) -> Result<(), Page> {
    let patch = match action {
        "sync" => json!({"metadata": {"annotations": {
            REQUESTED_AT_ANNOTATION: jiff::Timestamp::now().to_string()
        }}}),
        "suspend" => json!({"spec": {"suspend": true}}),
        "resume" => json!({"spec": {"suspend": false}}),
        other => {
            return Err(message(
                400,
                "Unknown action",
                &format!("action {other:?}: use sync, suspend or resume"),
            ));
        }
    };
    let api: Api<GitSync> = Api::namespaced(app.access.client(), namespace);
    match tokio::time::timeout(
        crate::access::REQUEST_TIMEOUT,
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(status))) => Err(message(
            status.code,
            "The API server refused",
            &format!("{action} {namespace}/{name}: {}", status.message),
        )),
        Ok(Err(e)) => Err(message(502, "The API server failed", &e.to_string())),
        Err(_) => Err(message(504, "The API server did not answer", action)),
    }
}

/// A render of one revision, kept while the UI runs (a revision's files never change).
pub type RenderCache = tokio::sync::Mutex<BTreeMap<(String, String, String), Arc<Vec<Manifest>>>>;

async fn rendered(app: &App, sync: &GitSync, revision: &str) -> Result<Arc<Vec<Manifest>>, String> {
    let source = &sync.spec.source;
    let key = (
        source.url.clone(),
        revision.to_string(),
        source.path.clone(),
    );
    let mut cache = app.renders.lock().await;
    if let Some(found) = cache.get(&key) {
        return Ok(found.clone());
    }
    let git = GitCli::new(app.settings.git.clone(), app.checkouts.path());
    let kubectl = app.settings.kubectl.clone();
    let spec = SourceSpec {
        url: source.url.clone(),
        revision: revision.to_string(),
        credentials: None,
    };
    let path = if source.path.is_empty() {
        ".".to_string()
    } else {
        source.path.clone()
    };
    let manifests = tokio::task::spawn_blocking(move || {
        let checkout = git
            .fetch(&spec)
            .map_err(|e| format!("fetching {}: {e}", spec.url))?;
        Renderer::new(kubectl)
            .render(&checkout.dir, &path)
            .map_err(|e| format!("rendering {path}: {e}"))
    })
    .await
    .map_err(|e| format!("the render failed: {e}"))??;
    let manifests = Arc::new(manifests);
    if cache.len() >= MAX_RENDERS {
        cache.clear();
    }
    cache.insert(key, manifests.clone());
    Ok(manifests)
}

/// The drift page: the applied revision rendered and dry-run applied as the user.
pub async fn drift_page(app: &App, namespace: &str, name: &str) -> Page {
    #[derive(Template)]
    #[template(path = "drift.html")]
    struct View {
        namespace: String,
        name: String,
        revision: Option<String>,
        problem: Option<String>,
        rows: Vec<drift::DriftRow>,
        records: Vec<RecordRow>,
    }
    struct RecordRow {
        detected_at: String,
        object: String,
        change: String,
        action: &'static str,
        paths: String,
        managers: String,
    }
    let sync = match gitsync(app, namespace, name).await {
        Ok(Some(sync)) => sync,
        Ok(None) => return not_found(namespace, name),
        Err(page) => return page,
    };
    let status = sync.status.clone().unwrap_or_default();
    let revision = status.last_applied_revision.clone();
    let (rows, problem) = match &revision {
        None => (
            Vec::new(),
            Some("Nothing was applied yet: there is no revision to compare with.".to_string()),
        ),
        Some(revision) => match diff(app, &sync, revision).await {
            Ok(rows) => (rows, None),
            Err(problem) => (Vec::new(), Some(problem)),
        },
    };
    let records = status
        .drift
        .iter()
        .map(|r| RecordRow {
            detected_at: r.detected_at.clone(),
            object: r.object.to_string(),
            change: format!("{:?}", r.change),
            action: r.action.as_str(),
            paths: r.paths.join(", "),
            managers: r
                .managers
                .iter()
                .map(|m| format!("{} ({}, {})", m.manager, m.operation, m.time))
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    let view = View {
        namespace: namespace.to_string(),
        name: name.to_string(),
        revision: revision.as_deref().map(|r| short_revision(r).to_string()),
        problem,
        rows,
        records,
    };
    Page {
        title: format!("Drift of {namespace}/{name}"),
        active: "overview",
        live: DRIFT_LIVE_MS,
        content: render(&view),
        status: 200,
    }
}

async fn diff(app: &App, sync: &GitSync, revision: &str) -> Result<Vec<drift::DriftRow>, String> {
    let manifests = rendered(app, sync, revision).await?;
    let _turn = app.diffs.acquire().await.map_err(|e| e.to_string())?;
    let owner_namespace = sync.metadata.namespace.clone().unwrap_or_default();
    let target = Target {
        owner_name: sync.metadata.name.clone().unwrap_or_default(),
        default_namespace: Some(sync.spec.destination.namespace.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| owner_namespace.clone()),
        owner_namespace,
        prune: sync.spec.prune,
        create_namespace: false,
        raw_secrets: sync.spec.secret_policy.raw_secrets,
        verifier: None,
    };
    let previous = sync
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.clone())
        .unwrap_or_default();
    let report = tokio::time::timeout(
        crate::access::REQUEST_TIMEOUT * 3,
        engine::sync(
            app.access.cluster(),
            &manifests,
            &target,
            &previous,
            Mode::Diff,
        ),
    )
    .await
    .map_err(|_| "the dry run did not finish within 60 s".to_string())?
    .map_err(|e| format!("the dry run failed: {e}"))?;
    Ok(drift::rows(&report))
}

/// Namespaces GitSyncs deploy to: their own, their destination, their inventory's.
fn deployed_namespaces(syncs: &[GitSync]) -> BTreeSet<String> {
    let mut namespaces = BTreeSet::new();
    for sync in syncs {
        namespaces.extend(sync.metadata.namespace.clone());
        if !sync.spec.destination.namespace.is_empty() {
            namespaces.insert(sync.spec.destination.namespace.clone());
        }
        for entry in sync
            .status
            .iter()
            .filter_map(|s| s.inventory.as_ref())
            .flat_map(|i| &i.entries)
        {
            if let Some(key) = ObjectKey::from_id(&entry.id)
                && !key.namespace.is_empty()
            {
                namespaces.insert(key.namespace);
            }
        }
    }
    namespaces
}

/// The SealedSecrets page.
pub async fn sealed_page(app: &App, q: String) -> Page {
    #[derive(Template)]
    #[template(path = "sealed.html")]
    struct View {
        q: String,
        forbidden: Vec<String>,
        problem: Option<String>,
        rows: Vec<sealed::SealedRow>,
        keys: Option<Vec<sealed::KeyRow>>,
        controller_namespace: String,
    }
    let now = jiff::Timestamp::now();
    let listing = async {
        let kind = app
            .access
            .kind("bitnami.com/v1alpha1", "SealedSecret")
            .await?;
        // A user who may list neither everything nor namespaces: look where the GitSyncs
        // they can read deploy to.
        let hints = match gitsyncs(app).await {
            Ok((syncs, _)) => deployed_namespaces(&syncs),
            Err(_) => BTreeSet::new(),
        };
        app.access.list_hinted(&kind, None, &hints, "").await
    };
    let keys = async {
        let ns = BTreeSet::from([app.settings.controller_namespace.clone()]);
        let kind = app.access.kind("v1", "Secret").await.ok()?;
        let listing = app.access.list(&kind, Some(&ns), KEY_LABEL).await.ok()?;
        if !listing.forbidden.is_empty() {
            return None;
        }
        Some(sealed::keys(&listing.items))
    };
    let (listing, keys) = futures::future::join(listing, keys).await;
    let (rows, forbidden, problem) = match listing {
        Ok(listing) => (
            sealed::rows(&listing.items, &q, now),
            listing.forbidden,
            None,
        ),
        Err(e) => (
            Vec::new(),
            Vec::new(),
            Some(format!("cannot list SealedSecrets: {e}")),
        ),
    };
    Page {
        title: "SealedSecrets".into(),
        active: "sealed",
        live: LIVE_MS,
        content: render(&View {
            q,
            forbidden,
            problem,
            rows,
            keys,
            controller_namespace: app.settings.controller_namespace.clone(),
        }),
        status: 200,
    }
}

/// Rows of the form shown when nothing was posted yet.
const EMPTY_PAIRS: usize = 3;

/// The seal page: the form, and after a post the result or the error.
pub fn seal_page(
    app: &App,
    form: Option<&SealForm>,
    outcome: Option<Result<Sealed, FormError>>,
) -> Page {
    #[derive(Template)]
    #[template(path = "seal.html")]
    struct View<'a> {
        certificate_from: String,
        context: &'a str,
        server: &'a str,
        csrf: &'a str,
        problem: Option<String>,
        sealed: Option<Sealed>,
        name: String,
        namespace: String,
        scopes: Vec<(&'static str, bool)>,
        type_: String,
        keys: Vec<String>,
    }
    let (sealed, problem) = match outcome {
        Some(Ok(sealed)) => (Some(sealed), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    // After a success the form starts empty; after an error it keeps names and keys only.
    let keep = form.filter(|_| problem.is_some());
    let mut keys = keep.map(SealForm::keys).unwrap_or_default();
    keys.resize(keys.len().max(EMPTY_PAIRS), String::new());
    let scope = keep
        .map(|f| f.scope.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "strict".into());
    let view = View {
        certificate_from: app.certificates.describe(),
        context: &app.settings.context,
        server: &app.settings.server,
        csrf: app.secrets.csrf_token(),
        problem,
        sealed,
        name: keep.map(|f| f.name.clone()).unwrap_or_default(),
        namespace: keep
            .map(|f| f.namespace.clone())
            .unwrap_or_else(|| app.settings.default_namespace.clone()),
        scopes: ["strict", "namespace-wide", "cluster-wide"]
            .into_iter()
            .map(|s| (s, s == scope))
            .collect(),
        type_: keep.map(|f| f.type_.clone()).unwrap_or_default(),
        keys,
    };
    Page {
        title: "Seal".into(),
        active: "seal",
        live: 0,
        content: render(&view),
        status: if view.problem.is_some() { 422 } else { 200 },
    }
}

/// Seals a posted form with the current certificate (fetched for each seal, so a renewed
/// key is used at once).
pub async fn seal_post(app: &App, form: &SealForm) -> Page {
    // The certificate source may run a runtime of its own (kubeseal's proxy client): it gets
    // a plain thread, outside ours, and we wait for its answer without blocking a worker.
    let source = app.certificates.clone();
    let (answer, certificate) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = answer.send(source.fetch());
    });
    let certificate = certificate
        .await
        .unwrap_or_else(|_| Err("the certificate fetch failed".into()));
    let outcome = match certificate {
        Ok(pem) => views::seal::seal(form, &pem, jiff::Timestamp::now()),
        Err(e) => Err(FormError::Certificate(e)),
    };
    seal_page(app, Some(form), Some(outcome))
}
