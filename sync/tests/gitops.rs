//! The reconcile core end to end against the in-memory API server: a local Git repository
//! (`file://`) with a kustomize base and two overlays, as GitOps guides lay them out, fetched
//! with the git CLI, rendered with `kubectl kustomize`, and synced.

use std::{path::Path, process::Command, sync::Arc};

use futures::future::BoxFuture;
use kube::api::ObjectMeta;
use sealed_secrets_core::{
    crypto::SystemRandom,
    keys::{PrivateKey, generate_key_pair},
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
};
use sealed_secrets_sync::{
    audit::{DriftAction, DriftChange, SyncResult, Trigger},
    cluster::Cluster,
    engine::{self, Action, Mode, SyncError, Target},
    notify::{Notifier, Webhook},
    policy::KeysVerifier,
    reconciler::{self, Context},
    render::Renderer,
    resource::{GitSource, GitSync, GitSyncSpec, InventoryEntry, RawSecretPolicy},
    source::{GitCli, Source, SourceSpec},
};
use sealed_secrets_sync_testing::{FakeApiServer, GitRepo};
use serde_json::json;

/// The repository layout of the GitOps guides: one base, a staging and a production overlay.
fn gitops_repo() -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "deploy/base/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- service.yaml\n- config.yaml\n",
    );
    repo.write(
        "deploy/base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    repo.write(
        "deploy/base/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n",
    );
    repo.write(
        "deploy/base/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: hello\n",
    );
    for (env, replicas) in [("staging", 1), ("production", 3)] {
        repo.write(
            &format!("deploy/overlays/{env}/kustomization.yaml"),
            &format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {env}\nresources:\n- ../../base\npatches:\n- target: {{kind: Deployment, name: web}}\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: {replicas}\n"
            ),
        );
    }
    repo.commit("base and overlays");
    repo
}

fn kubectl_available() -> bool {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    Command::new(kubectl)
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

macro_rules! require_kubectl {
    () => {
        if !kubectl_available() {
            eprintln!(
                "skipping: kubectl (with kustomize) not found; set KUBECTL or put it on PATH"
            );
            return;
        }
    };
}

fn fetch(repo: &GitRepo, cache: &Path) -> (String, std::path::PathBuf) {
    let checkout = GitCli::new("git", cache)
        .fetch(&SourceSpec {
            url: repo.url(),
            revision: "main".into(),
            credentials: None,
        })
        .unwrap();
    (checkout.revision, checkout.dir)
}

fn target(prune: bool) -> Target<'static> {
    Target {
        owner_name: "web".into(),
        owner_namespace: "gitops".into(),
        default_namespace: "production".into(),
        prune,
        create_namespace: false,
        raw_secrets: RawSecretPolicy::Refuse,
        verifier: None,
    }
}

#[test]
fn overlays_render_with_their_own_namespace_and_replicas() {
    require_kubectl!();
    let repo = gitops_repo();
    let cache = tempfile::tempdir().unwrap();
    let (_, dir) = fetch(&repo, cache.path());
    for (env, replicas) in [("staging", 1), ("production", 3)] {
        let manifests = Renderer::default()
            .render(&dir, &format!("deploy/overlays/{env}"))
            .unwrap();
        assert_eq!(manifests.len(), 3, "{env}");
        let deployment = manifests.iter().find(|m| m.kind() == "Deployment").unwrap();
        assert_eq!(deployment.object["spec"]["replicas"], replicas);
        assert!(
            manifests
                .iter()
                .all(|m| m.object["metadata"]["namespace"] == env)
        );
        assert!(
            deployment
                .origin
                .file
                .starts_with(&format!("kustomize build deploy/overlays/{env}")),
            "{}",
            deployment.origin
        );
    }
    std::fs::write(
        dir.join("deploy/overlays/staging/kustomization.yaml"),
        "resources: [missing.yaml]\n",
    )
    .unwrap();
    let err = Renderer::default()
        .render(&dir, "deploy/overlays/staging")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("kustomize build deploy/overlays/staging: "),
        "{err}"
    );
}

#[tokio::test]
async fn apply_resync_drift_change_and_prune() {
    require_kubectl!();
    let repo = gitops_repo();
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    server.roll_out_deployments(true);
    let cluster = Cluster::new(server.client());
    let (_, dir) = fetch(&repo, cache.path());
    let manifests = Renderer::default()
        .render(&dir, "deploy/overlays/production")
        .unwrap();

    // First sync: everything is created, in stage order, and recorded.
    let report = engine::sync(&cluster, &manifests, &target(true), &[], Mode::Apply)
        .await
        .unwrap();
    assert!(
        report.objects.iter().all(|o| o.action == Action::Created),
        "{report:?}"
    );
    let ids: Vec<&str> = report.inventory.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "production_web-config__ConfigMap",
            "production_web__Service",
            "production_web_apps_Deployment"
        ]
    );
    assert!(report.health.is_healthy(), "{:?}", report.health);
    let deployment = server.object("deployments", "production", "web").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["metadata"]["labels"]["gitops.sealed-secrets-rs.io/name"],
        "web"
    );
    let inventory = report.inventory;

    // A resync of the same revision writes nothing and costs one LIST per kind.
    server.clear_requests();
    let report = engine::sync(&cluster, &manifests, &target(true), &inventory, Mode::Check)
        .await
        .unwrap();
    assert!(!report.has_changes(), "{report:?}");
    assert_eq!(server.writes(), 0);
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("labelSelector"))
        .count();
    assert_eq!(lists, 3, "{:?}", server.requests());

    // Someone scales the Deployment by hand: reported without self-heal, reverted with it.
    server.edit("deployments", "production", "web", |d| {
        d["spec"]["replicas"] = json!(10)
    });
    let report = engine::sync(&cluster, &manifests, &target(true), &inventory, Mode::Check)
        .await
        .unwrap();
    let drifted: Vec<&Action> = report
        .objects
        .iter()
        .map(|o| &o.action)
        .filter(|a| **a != Action::Unchanged)
        .collect();
    assert_eq!(
        drifted,
        [&Action::Drifted(vec!["spec.replicas: 10 → 3".into()])]
    );
    assert_eq!(
        server.object("deployments", "production", "web").unwrap()["spec"]["replicas"],
        10
    );
    server.clear_requests();
    let report = engine::sync(&cluster, &manifests, &target(true), &inventory, Mode::Heal)
        .await
        .unwrap();
    assert_eq!(server.writes(), 1, "only the drifted object is re-applied");
    assert!(
        report
            .objects
            .iter()
            .any(|o| o.action == Action::Configured)
    );
    assert_eq!(
        server.object("deployments", "production", "web").unwrap()["spec"]["replicas"],
        3
    );

    // A deleted object comes back with self-heal.
    server.remove("services", "production", "web");
    engine::sync(&cluster, &manifests, &target(true), &inventory, Mode::Heal)
        .await
        .unwrap();
    assert!(server.object("services", "production", "web").is_some());

    // A new revision drops the ConfigMap from the base: pruned with prune on, kept with it off.
    repo.write(
        "deploy/base/kustomization.yaml",
        "resources:\n- deployment.yaml\n- service.yaml\n",
    );
    repo.remove("deploy/base/config.yaml");
    repo.commit("drop the config map");
    let (_, dir) = fetch(&repo, cache.path());
    let manifests = Renderer::default()
        .render(&dir, "deploy/overlays/production")
        .unwrap();
    let report = engine::sync(
        &cluster,
        &manifests,
        &target(false),
        &inventory,
        Mode::Apply,
    )
    .await
    .unwrap();
    assert!(report.pruned.is_empty());
    assert!(
        server
            .object("configmaps", "production", "web-config")
            .is_some()
    );
    let report = engine::sync(&cluster, &manifests, &target(true), &inventory, Mode::Apply)
        .await
        .unwrap();
    assert_eq!(report.pruned.len(), 1);
    assert_eq!(
        report.pruned[0].to_string(),
        "ConfigMap/production/web-config"
    );
    assert!(
        server
            .object("configmaps", "production", "web-config")
            .is_none()
    );
    assert_eq!(report.inventory.len(), 2);
}

#[tokio::test]
async fn prune_keeps_objects_marked_to_keep() {
    let server = FakeApiServer::new();
    let cluster = Cluster::new(server.client());
    server.insert(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": "production",
            "labels": {"gitops.sealed-secrets-rs.io/name": "web", "gitops.sealed-secrets-rs.io/namespace": "gitops"},
            "annotations": {"gitops.sealed-secrets-rs.io/prune": "disabled"}}}),
    );
    let previous = [InventoryEntry {
        id: "production_keep__ConfigMap".into(),
        v: "v1".into(),
    }];
    let report = engine::sync(&cluster, &[], &target(true), &previous, Mode::Apply)
        .await
        .unwrap();
    assert!(report.pruned.is_empty());
    assert_eq!(report.kept.len(), 1);
    assert!(server.object("configmaps", "production", "keep").is_some());
}

#[tokio::test]
async fn a_raw_secret_blocks_the_whole_sync() {
    let repo = GitRepo::new();
    repo.write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    repo.write(
        "apps/db.yaml",
        "# committed by mistake\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n",
    );
    repo.commit("oops");
    let cache = tempfile::tempdir().unwrap();
    let (_, dir) = fetch(&repo, cache.path());
    let manifests = Renderer::default().render(&dir, "apps").unwrap();
    let server = FakeApiServer::new();
    let cluster = Cluster::new(server.client());
    let err = engine::sync(&cluster, &manifests, &target(true), &[], Mode::Apply)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Policy(_)));
    assert_eq!(err.reason(), "RawSecretRefused");
    let message = err.to_string();
    assert!(
        message.contains("apps/db.yaml:2: Secret \"db\""),
        "{message}"
    );
    assert!(!message.contains("hunter2"));
    assert_eq!(server.writes(), 0, "nothing is applied");
    assert_eq!(server.count("configmaps"), 0);
}

fn sealed_secret_yaml(key: &PrivateKey, namespace: &str) -> String {
    let secret = secret_from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": namespace},
        "stringData": {"password": "s3cret"},
    }))
    .unwrap();
    let options = SealOptions {
        scope: Scope::Strict,
        namespace: NamespaceDefault {
            namespace: namespace.into(),
            explicit: false,
        },
        allow_empty_data: false,
    };
    let sealed = seal_secret(secret, &key.public_key(), &options, &mut SystemRandom).unwrap();
    serde_json::to_string(&sealed.to_upstream_value()).unwrap()
}

fn new_key() -> PrivateKey {
    generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(1),
    )
    .unwrap()
    .key
}

#[tokio::test]
async fn sealed_secrets_must_open_with_the_cluster_keys_before_anything_is_applied() {
    let cluster_key = new_key();
    let other_key = new_key();
    let repo = GitRepo::new();
    repo.write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    repo.write(
        "apps/db-sealed.json",
        &sealed_secret_yaml(&cluster_key, "production"),
    );
    repo.commit("sealed");
    let cache = tempfile::tempdir().unwrap();
    let (_, dir) = fetch(&repo, cache.path());
    let manifests = Renderer::default().render(&dir, "apps").unwrap();
    let server = FakeApiServer::new();
    let cluster = Cluster::new(server.client());

    let wrong = KeysVerifier(vec![other_key]);
    let mut t = target(true);
    t.verifier = Some(&wrong);
    let err = engine::sync(&cluster, &manifests, &t, &[], Mode::Apply)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "SealedSecretUnopenable");
    assert!(
        err.to_string()
            .contains("apps/db-sealed.json:1: SealedSecret \"db\" cannot be unsealed"),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cret"));
    assert_eq!(server.writes(), 0);

    let right = KeysVerifier(vec![cluster_key]);
    t.verifier = Some(&right);
    let report = engine::sync(&cluster, &manifests, &t, &[], Mode::Apply)
        .await
        .unwrap();
    assert_eq!(report.objects.len(), 2);
    assert!(server.object("sealedsecrets", "production", "db").is_some());
}

#[tokio::test]
async fn kinds_from_crds_of_the_same_render_wait_for_their_crd() {
    let server = FakeApiServer::new();
    let cluster = Cluster::new(server.client());
    let manifests = sealed_secrets_sync::render::parse_file(
        "crd.yaml",
        b"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets}\n  versions: [{name: v1, served: true, storage: true}]\n",
    )
    .unwrap();
    let establish = {
        let server = server.clone();
        tokio::spawn(async move {
            while server.count("customresourcedefinitions") == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            server.add_kind(sealed_secrets_sync_testing::FakeKind::new(
                "example.com/v1",
                "Widget",
                "widgets",
                true,
            ));
        })
    };
    let report = engine::sync(&cluster, &manifests, &target(true), &[], Mode::Apply)
        .await
        .unwrap();
    establish.await.unwrap();
    let order: Vec<String> = report.objects.iter().map(|o| o.key.kind.clone()).collect();
    assert_eq!(order, ["CustomResourceDefinition", "Widget"]);
    assert!(server.object("widgets", "production", "w").is_some());

    let unknown = sealed_secrets_sync::render::parse_file(
        "x.yaml",
        b"apiVersion: nowhere.io/v1\nkind: Gadget\nmetadata:\n  name: g\n",
    )
    .unwrap();
    let err = engine::sync(&cluster, &unknown, &target(true), &[], Mode::Apply)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.yaml:1: the cluster has no kind Gadget in nowhere.io/v1"
    );
}

/// The reconciler's context against the in-memory server, fetching with git into `cache`.
fn reconciler_context(server: &FakeApiServer, cache: &Path) -> Context {
    Context::new(
        Cluster::new(server.client()),
        Arc::new(GitCli::new("git", cache)),
        Renderer::default(),
        None,
    )
}

fn git_sync(server: &FakeApiServer, repo: &GitRepo, self_heal: bool) -> GitSync {
    let sync = GitSync {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("gitops".into()),
            ..Default::default()
        },
        spec: GitSyncSpec {
            source: GitSource {
                url: repo.url(),
                revision: "main".into(),
                path: "deploy/overlays/production".into(),
                secret_ref: None,
            },
            interval: "1m".into(),
            prune: true,
            self_heal,
            ..Default::default()
        },
        status: None,
    };
    server.insert("gitsyncs", serde_json::to_value(&sync).unwrap());
    read_sync(server)
}

fn read_sync(server: &FakeApiServer) -> GitSync {
    serde_json::from_value(server.object("gitsyncs", "gitops", "web").unwrap()).unwrap()
}

fn condition<'a>(sync: &'a GitSync, type_: &str) -> &'a sealed_secrets_sync::resource::Condition {
    let status = sync.status.as_ref().expect("status written");
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[tokio::test]
async fn the_reconciler_syncs_heals_and_records_status() {
    require_kubectl!();
    let repo = gitops_repo();
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    server.roll_out_deployments(true);
    let ctx = Arc::new(reconciler_context(&server, cache.path()).without_drift_watches());
    let head = repo.git(&["rev-parse", "HEAD"]);
    let sync = git_sync(&server, &repo, true);
    reconciler::reconcile(Arc::new(sync), Arc::clone(&ctx))
        .await
        .unwrap();
    let sync = read_sync(&server);
    let status = sync.status.clone().unwrap();
    assert_eq!(status.last_applied_revision.as_deref(), Some(head.as_str()));
    assert_eq!(status.inventory.as_ref().unwrap().entries.len(), 3);
    assert_eq!(condition(&sync, "Ready").status, "True", "{:?}", status);
    assert_eq!(condition(&sync, "Healthy").reason, "Healthy");
    assert_eq!(
        server.object("deployments", "production", "web").unwrap()["spec"]["replicas"],
        3
    );

    // Self-heal on: a hand edit is put back on the next reconcile.
    server.edit("deployments", "production", "web", |d| {
        d["spec"]["replicas"] = json!(7)
    });
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(
        server.object("deployments", "production", "web").unwrap()["spec"]["replicas"],
        3
    );
    // ... and recorded: the path, the revision restored, the trigger.
    let status = read_sync(&server).status.unwrap();
    let drift = &status.drift[0];
    assert_eq!(drift.object.to_string(), "Deployment/production/web");
    assert_eq!(drift.paths, ["spec.replicas"]);
    assert_eq!(drift.action, DriftAction::Reverted);
    assert_eq!(drift.revision, head);
    assert!(drift.resource_version_before.is_some());
    assert_eq!(status.history.len(), 2, "{:?}", status.history);
    assert_eq!(status.history[0].trigger, Trigger::Drift);
    assert_eq!(status.history[0].configured, 1);
    assert_eq!(status.history[1].trigger, Trigger::NewRevision);
    assert_eq!(status.history[1].created, 3);
    assert!(status.history[1].commit_subject.is_some());

    // A manual request is recorded even when it changes nothing.
    server.edit(
        "gitsyncs",
        "gitops",
        "web",
        |s| {
            s["metadata"]["annotations"] =
                json!({"gitops.sealed-secrets-rs.io/requested-at": "2026-12-07T02:00:00Z"})
        },
    );
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    let status = read_sync(&server).status.unwrap();
    assert_eq!(status.history.len(), 3, "{:?}", status.history);
    assert_eq!(status.history[0].trigger, Trigger::ManualRequest);
    assert_eq!(status.history[0].unchanged, 3);

    // A deleted object is re-created, and recorded as such.
    server.remove("services", "production", "web");
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert!(server.object("services", "production", "web").is_some());
    let status = read_sync(&server).status.unwrap();
    assert_eq!(status.drift[0].object.to_string(), "Service/production/web");
    assert_eq!(status.drift[0].change, DriftChange::Deleted);
    assert_eq!(status.drift[0].action, DriftAction::Recreated);
    // A resync that finds nothing adds nothing.
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    let again = read_sync(&server).status.unwrap();
    assert_eq!(again.history, status.history);
    assert_eq!(again.drift, status.drift);

    // Self-heal off: left alone, and the Ready message says so.
    server.edit("gitsyncs", "gitops", "web", |s| {
        s["spec"]["selfHeal"] = json!(false)
    });
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    server.edit("deployments", "production", "web", |d| {
        d["spec"]["replicas"] = json!(7)
    });
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(
        server.object("deployments", "production", "web").unwrap()["spec"]["replicas"],
        7
    );
    let sync = read_sync(&server);
    assert!(
        condition(&sync, "Ready")
            .message
            .contains("1 drifted from Git"),
        "{:?}",
        condition(&sync, "Ready")
    );
    // Reported once, not at every resync.
    let drift = sync.status.clone().unwrap().drift;
    assert_eq!(drift[0].action, DriftAction::ReportedOnly);
    assert_eq!(drift[0].paths, ["spec.replicas"]);
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(read_sync(&server).status.unwrap().drift, drift);

    // A new commit is applied; a raw Secret in the next one blocks the sync and keeps status.
    repo.write("deploy/base/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: bonjour\n");
    let second = repo.commit("french");
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(
        server
            .object("configmaps", "production", "web-config")
            .unwrap()["data"]["greeting"],
        "bonjour"
    );
    repo.write(
        "deploy/base/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\nstringData:\n  token: abc\n",
    );
    repo.write(
        "deploy/base/kustomization.yaml",
        "resources:\n- deployment.yaml\n- service.yaml\n- config.yaml\n- secret.yaml\n",
    );
    let third = repo.commit("leak");
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    let sync = read_sync(&server);
    let status = sync.status.clone().unwrap();
    assert_eq!(condition(&sync, "Ready").status, "False");
    assert_eq!(condition(&sync, "Ready").reason, "RawSecretRefused");
    assert_eq!(
        status.last_fetched_revision.as_deref(),
        Some(third.as_str())
    );
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(second.as_str())
    );
    assert!(status.last_error.unwrap().contains("leaked"));
    assert!(server.object("secrets", "production", "leaked").is_none());
    let failed = &status.history[0];
    assert_eq!(failed.result, SyncResult::Failed);
    assert_eq!(failed.reason, "RawSecretRefused");
    assert_eq!(failed.revision, third);
    assert_eq!(failed.commit_subject.as_deref(), Some("leak"));
    assert_eq!(failed.trigger, Trigger::NewRevision);
    // The raw Secret's value is in no record.
    let text = serde_json::to_string(&status.history).unwrap();
    assert!(!text.contains("abc\""), "{text}");
}

#[tokio::test]
async fn a_suspended_gitsync_does_nothing() {
    let repo = GitRepo::new();
    repo.write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    repo.commit("one");
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    let ctx = Arc::new(reconciler_context(&server, cache.path()).without_drift_watches());
    let mut sync = git_sync(&server, &repo, false);
    sync.spec.suspend = true;
    reconciler::reconcile(Arc::new(sync), ctx).await.unwrap();
    let sync = read_sync(&server);
    assert_eq!(condition(&sync, "Ready").reason, "Suspended");
    assert_eq!(server.count("configmaps"), 0);
}

#[tokio::test]
async fn create_namespace_makes_the_destination_once_and_keeps_it_out_of_the_inventory() {
    let server = FakeApiServer::new();
    let cluster = Cluster::new(server.client());
    let manifests = sealed_secrets_sync::render::parse_file(
        "app.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    )
    .unwrap();
    let mut t = target(true);
    t.create_namespace = true;
    let report = engine::sync(&cluster, &manifests, &t, &[], Mode::Apply)
        .await
        .unwrap();
    assert!(server.object("namespaces", "", "production").is_some());
    assert_eq!(report.inventory.len(), 1, "{:?}", report.inventory);
    assert_eq!(report.inventory[0].id, "production_c__ConfigMap");
    // A dry run never creates it.
    let dry = FakeApiServer::new();
    let dry_cluster = Cluster::new(dry.client());
    engine::sync(&dry_cluster, &manifests, &t, &[], Mode::Diff)
        .await
        .unwrap();
    assert!(dry.object("namespaces", "", "production").is_none());
    assert_eq!(dry.writes(), 0);
}

/// Polls `check` for up to 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_seen_through_watches_is_healed_without_waiting_for_the_interval() {
    let repo = GitRepo::new();
    repo.write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: production\ndata:\n  mode: fast\n",
    );
    repo.commit("one");
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    let mut sync = git_sync(&server, &repo, true);
    sync.spec.source.path = "apps".into();
    sync.spec.interval = "1h".into();
    server.insert("gitsyncs", serde_json::to_value(&sync).unwrap());
    let ctx = Arc::new(reconciler_context(&server, cache.path()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(reconciler::run(ctx, None, async move {
        let _ = stopped.await;
    }));

    let mode = |server: &FakeApiServer| {
        server
            .object("configmaps", "production", "settings")
            .and_then(|c| c["data"]["mode"].as_str().map(str::to_string))
    };
    eventually("the first sync", || {
        mode(&server).as_deref() == Some("fast")
    })
    .await;
    eventually("the drift watch on ConfigMaps", || {
        server
            .requests()
            .iter()
            .any(|r| r.contains("/configmaps?") && r.contains("watch=true"))
    })
    .await;

    // The interval is an hour: only the watch can bring the GitSync back this fast.
    server.edit("configmaps", "production", "settings", |c| {
        c["data"]["mode"] = json!("slow")
    });
    eventually("the hand edit to be reverted", || {
        mode(&server).as_deref() == Some("fast")
    })
    .await;
    server.remove("configmaps", "production", "settings");
    eventually("the deleted object to be re-created", || {
        mode(&server).is_some()
    })
    .await;

    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), controller)
        .await
        .expect("the reconciler stops on shutdown")
        .unwrap();
}

/// Deleting a GitSync with `prune: true`: the finalizer prunes its inventory, then lets it go.
#[tokio::test]
async fn the_finalizer_prunes_the_inventory_of_a_deleted_gitsync() {
    let repo = GitRepo::new();
    repo.write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  annotations:\n    gitops.sealed-secrets-rs.io/prune: disabled\n",
    );
    repo.commit("two maps");
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    let ctx = Arc::new(reconciler_context(&server, cache.path()).without_drift_watches());
    let mut sync = git_sync(&server, &repo, false);
    sync.spec.source.path = "apps".into();
    server.insert("gitsyncs", serde_json::to_value(&sync).unwrap());
    let sync = read_sync(&server);
    reconciler::reconcile(Arc::new(sync), Arc::clone(&ctx))
        .await
        .unwrap();
    let sync = read_sync(&server);
    assert_eq!(
        sync.metadata.finalizers.as_deref(),
        Some(&["gitops.sealed-secrets-rs.io/finalizer".to_string()][..])
    );
    assert_eq!(server.count("configmaps"), 2);
    assert!(server.object("configmaps", "gitops", "c").is_some());

    let client = server.client();
    let api: kube::Api<GitSync> = kube::Api::namespaced(client, "gitops");
    api.delete("web", &Default::default()).await.unwrap();
    let deleting = read_sync(&server);
    assert!(deleting.metadata.deletion_timestamp.is_some());
    reconciler::reconcile(Arc::new(deleting), Arc::clone(&ctx))
        .await
        .unwrap();
    // Pruned, except what is marked to keep; the GitSync is gone.
    assert!(server.object("configmaps", "gitops", "c").is_none());
    assert!(server.object("configmaps", "gitops", "d").is_some());
    assert!(server.object("gitsyncs", "gitops", "web").is_none());
}

/// With `prune: false` deletion leaves the objects, and only removes the finalizer.
#[tokio::test]
async fn deleting_a_gitsync_without_prune_keeps_its_objects() {
    let repo = GitRepo::new();
    repo.write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    repo.commit("one map");
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    let ctx = Arc::new(reconciler_context(&server, cache.path()).without_drift_watches());
    let mut sync = git_sync(&server, &repo, false);
    sync.spec.source.path = "apps".into();
    sync.spec.prune = false;
    server.insert("gitsyncs", serde_json::to_value(&sync).unwrap());
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    let api: kube::Api<GitSync> = kube::Api::namespaced(server.client(), "gitops");
    api.delete("web", &Default::default()).await.unwrap();
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert!(server.object("gitsyncs", "gitops", "web").is_none());
    assert!(server.object("configmaps", "gitops", "c").is_some());
}

/// A locked-down controller refuses a GitSync that names no ServiceAccount, before fetching.
#[tokio::test]
async fn without_a_service_account_the_gitsync_is_refused() {
    let repo = gitops_repo();
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    let cluster = Cluster::new(server.client());
    let ctx = Arc::new(
        reconciler_context(&server, cache.path())
            .without_drift_watches()
            .with_tenancy(
                Arc::new(sealed_secrets_sync::tenancy::SameClient(cluster)),
                sealed_secrets_sync::tenancy::TenancyPolicy::default(),
            ),
    );
    let sync = git_sync(&server, &repo, false);
    reconciler::reconcile(Arc::new(sync), Arc::clone(&ctx))
        .await
        .unwrap();
    let sync = read_sync(&server);
    let ready = condition(&sync, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NoServiceAccount")
    );
    assert!(
        ready.message.contains("--default-service-account"),
        "{}",
        ready.message
    );
    assert_eq!(server.count("configmaps") + server.count("deployments"), 0);
    assert!(sync.status.unwrap().last_fetched_revision.is_none());
}

/// Drift watches follow the inventory: started for the kinds a GitSync applied, stopped when
/// the GitSync is deleted and nothing else needs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_watches_stop_when_no_gitsync_needs_them() {
    let repo = GitRepo::new();
    repo.write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    repo.commit("one map");
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    let ctx = Arc::new(reconciler_context(&server, cache.path()));
    let mut sync = git_sync(&server, &repo, false);
    sync.spec.source.path = "apps".into();
    server.insert("gitsyncs", serde_json::to_value(&sync).unwrap());
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(ctx.drift_watch_count(), 1);
    let api: kube::Api<GitSync> = kube::Api::namespaced(server.client(), "gitops");
    api.delete("web", &Default::default()).await.unwrap();
    reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(ctx.drift_watch_count(), 0);
}

/// A notifier that refuses link-local addresses and keeps what it was asked to send.
#[derive(Default)]
struct RecordingNotifier {
    sent: std::sync::Mutex<Vec<serde_json::Value>>,
}

impl Notifier for RecordingNotifier {
    fn check<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if address.contains("169.254.") {
                Err("169.254.169.254 is a link-local address".to_string())
            } else {
                Ok(())
            }
        })
    }

    fn send(&self, webhook: Webhook, body: serde_json::Value) {
        assert_eq!(webhook.token.as_deref().map(String::as_str), Some("t0ken"));
        self.sent.lock().unwrap().push(body);
    }
}

fn notification_secret(server: &FakeApiServer, address: &str) {
    use base64::Engine as _;
    server.remove("secrets", "gitops", "hook");
    server.insert(
        "secrets",
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "hook", "namespace": "gitops"},
               "data": {"address": base64::engine::general_purpose::STANDARD.encode(address),
                        "token": base64::engine::general_purpose::STANDARD.encode("t0ken")}}),
    );
}

#[tokio::test]
async fn notifications_go_out_for_drift_new_failures_and_recoveries_only() {
    require_kubectl!();
    let repo = gitops_repo();
    let cache = tempfile::tempdir().unwrap();
    let server = FakeApiServer::new();
    server.roll_out_deployments(true);
    let notifier = Arc::new(RecordingNotifier::default());
    let ctx = Arc::new(
        reconciler_context(&server, cache.path())
            .without_drift_watches()
            .with_notifier(Arc::clone(&notifier) as _),
    );
    notification_secret(&server, "https://hooks.example/T0/secret");
    git_sync(&server, &repo, true);
    server.edit("gitsyncs", "gitops", "web", |s| {
        s["spec"]["notifications"] = json!({"secretRef": {"name": "hook"}})
    });
    let sent = || notifier.sent.lock().unwrap().clone();
    let reconcile = || reconciler::reconcile(Arc::new(read_sync(&server)), Arc::clone(&ctx));

    // A first sync that succeeds sends nothing (not a recovery, no drift).
    reconcile().await.unwrap();
    let sync = read_sync(&server);
    assert_eq!(condition(&sync, "Notifications").reason, "WebhookReady");
    assert!(sent().is_empty(), "{:?}", sent());

    // Drift: one DriftReverted body.
    server.edit("deployments", "production", "web", |d| {
        d["spec"]["replicas"] = json!(9)
    });
    reconcile().await.unwrap();
    let bodies = sent();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["reason"], "DriftReverted");
    assert_eq!(bodies[0]["record"]["paths"], json!(["spec.replicas"]));

    // A failure is sent once, not at each retry; the recovery is sent.
    repo.write(
        "deploy/base/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\nstringData:\n  token: hunter2\n",
    );
    repo.write(
        "deploy/base/kustomization.yaml",
        "resources:\n- deployment.yaml\n- service.yaml\n- config.yaml\n- secret.yaml\n",
    );
    repo.commit("leak");
    reconcile().await.unwrap();
    reconcile().await.unwrap();
    let bodies = sent();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[1]["reason"], "SyncFailed");
    assert_eq!(bodies[1]["severity"], "error");
    assert_eq!(read_sync(&server).status.unwrap().history[0].attempts, 2);
    repo.remove("deploy/base/secret.yaml");
    repo.write(
        "deploy/base/kustomization.yaml",
        "resources:\n- deployment.yaml\n- service.yaml\n- config.yaml\n",
    );
    repo.commit("unleak");
    reconcile().await.unwrap();
    let bodies = sent();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert_eq!(bodies[2]["reason"], "SyncRecovered");
    assert!(
        !serde_json::to_string(&bodies).unwrap().contains("hunter2"),
        "a value reached a payload"
    );

    // A refused target: condition False, nothing sent, the sync itself goes on.
    notification_secret(&server, "http://169.254.169.254/latest");
    server.edit("deployments", "production", "web", |d| {
        d["spec"]["replicas"] = json!(4)
    });
    reconcile().await.unwrap();
    let sync = read_sync(&server);
    let refused = condition(&sync, "Notifications");
    assert_eq!(refused.status, "False");
    assert_eq!(refused.reason, "WebhookRefused");
    assert!(refused.message.contains("link-local"), "{refused:?}");
    assert_eq!(condition(&sync, "Ready").status, "True");
    assert_eq!(sent().len(), 3);
    assert_eq!(
        server.object("deployments", "production", "web").unwrap()["spec"]["replicas"],
        3
    );
}
