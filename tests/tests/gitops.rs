//! End-to-end test of the reconcile core (`controller --gitops`) against a real etcd +
//! kube-apiserver found through `KUBEBUILDER_ASSETS`.
//!
//! One scenario, in the order a platform team meets it: a GitSync applies a kustomize overlay
//! from a local repository (`file://`); a new commit is applied; a removed file is pruned; a
//! hand edit is reverted with self-heal on and left alone with it off; a raw Secret committed
//! by mistake blocks the sync; a SealedSecret sealed with our kubeseal for the controller's key
//! becomes a Secret. Without the assets the test prints `skipping e2e: <reason>` and passes.
//!
//! Only ConfigMaps, ServiceAccounts and Services are synced: with no kube-controller-manager
//! or kubelet, workloads would never become healthy.

use std::{sync::Arc, thread, time::Duration};

use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD, apply_yaml, create_namespace, get_object,
    kubectl_ok, kubectl_program, kubeseal, secret_data, suite_cluster, unique_name,
};
use sealed_secrets_sync::testing::GitRepo;
use serde_json::Value;

/// Upper bound of every wait on the controller.
const WAIT: Duration = Duration::from_secs(90);
/// Name of the GitSync CRD.
const GITSYNC_CRD: &str = "gitsyncs.gitops.sealed-secrets-rs.io";

fn setup() -> Option<Arc<Cluster>> {
    suite_cluster(
        Assets::from_env(),
        &[
            ("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD),
            ("gitops.sealed-secrets-rs.io_gitsyncs.yaml", GITSYNC_CRD),
        ],
    )
}

/// `data.greeting` of the synced ConfigMap `settings`.
fn greeting(cluster: &Cluster, namespace: &str) -> Result<String, String> {
    let map = get_object(cluster, "configmap", namespace, "settings")?
        .ok_or_else(|| format!("ConfigMap {namespace}/settings not found"))?;
    map["data"]["greeting"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("ConfigMap {namespace}/settings has no data.greeting: {map}"))
}

fn greeting_is(cluster: &Cluster, namespace: &str, want: &str) -> Result<(), String> {
    match greeting(cluster, namespace)? {
        value if value == want => Ok(()),
        other => Err(format!("greeting is {other}")),
    }
}

/// `kubectl patch --type=merge`, as a user editing by hand.
fn merge_patch(cluster: &Cluster, kind: &str, name: &str, namespace: &str, patch: &str) {
    kubectl_ok(
        cluster,
        &[
            "patch",
            kind,
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            patch,
        ],
    );
}

/// The GitSync's Ready condition.
fn ready_condition(cluster: &Cluster, namespace: &str) -> Result<Value, String> {
    let sync = gitsync(cluster, namespace)?;
    condition(&sync, "Ready").ok_or_else(|| format!("no Ready condition: {}", sync["status"]))
}

/// Waits until the GitSync is Ready with `revision` applied.
fn wait_ready_at(
    controller: &Controller,
    cluster: &Cluster,
    namespace: &str,
    revision: &str,
    what: &str,
) {
    controller.wait_for(&format!("GitSync Ready on {what}"), WAIT, || {
        let sync = gitsync(cluster, namespace)?;
        let ready = condition(&sync, "Ready").ok_or("no Ready condition")?;
        if ready["status"] == "True" && sync["status"]["lastAppliedRevision"] == revision {
            Ok(())
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
}

fn gitsync(cluster: &Cluster, namespace: &str) -> Result<Value, String> {
    get_object(cluster, "gitsync", namespace, "app")?.ok_or_else(|| "GitSync app not found".into())
}

fn condition(sync: &Value, type_: &str) -> Option<Value> {
    sync["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

fn config_map(name: &str, greeting: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  greeting: {greeting}\n"
    )
}

/// The layout of the GitOps guides: a base and an overlay that sets the namespace.
fn write_overlay(repo: &GitRepo, namespace: &str, base: &[&str]) {
    let resources: String = base.iter().map(|r| format!("- {r}\n")).collect();
    repo.write(
        "deploy/base/kustomization.yaml",
        &format!("resources:\n{resources}"),
    );
    repo.write(
        "deploy/overlays/production/kustomization.yaml",
        &format!("namespace: {namespace}\nresources:\n- ../../base\n"),
    );
}

#[test]
fn gitsync_applies_prunes_heals_and_guards_secrets() {
    let Some(cluster) = setup() else { return };
    let key_ns = unique_name("gitops-keys");
    let ops = unique_name("gitops-ops");
    let app = unique_name("gitops-app");
    for ns in [&key_ns, &ops, &app] {
        create_namespace(&cluster, ns);
    }

    let repo = GitRepo::new();
    repo.write("deploy/base/config.yaml", &config_map("settings", "hello"));
    repo.write(
        "deploy/base/account.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
    );
    repo.write(
        "deploy/base/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n",
    );
    write_overlay(
        &repo,
        &app,
        &["config.yaml", "account.yaml", "service.yaml"],
    );
    let first = repo.commit("base and production overlay");

    let cache = tempfile::Builder::new()
        .prefix("sealed-secrets-e2e-gitops-cache-")
        .tempdir()
        .unwrap();
    let kubectl = kubectl_program();
    let args = [
        "--all-namespaces=false".to_string(),
        format!("--additional-namespaces={ops},{app}"),
        "--gitops".to_string(),
        format!("--gitops-cache-dir={}", cache.path().display()),
        format!("--gitops-kubectl={}", kubectl.display()),
    ];
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let controller = Controller::start_named(&cluster, "gitops", &key_ns, &arg_refs);

    apply_yaml(
        &cluster,
        &format!(
            "apiVersion: gitops.sealed-secrets-rs.io/v1alpha1\nkind: GitSync\nmetadata:\n  name: app\n  namespace: {ops}\nspec:\n  source:\n    url: {}\n    revision: main\n    path: deploy/overlays/production\n  destination:\n    namespace: {app}\n  interval: 2s\n  prune: true\n  selfHeal: true\n",
            repo.url()
        ),
    );

    // 1. The overlay is applied and the status records it.
    wait_ready_at(&controller, &cluster, &ops, &first, "the first commit");
    assert_eq!(greeting(&cluster, &app).unwrap(), "hello");
    let account = get_object(&cluster, "serviceaccount", &app, "web")
        .unwrap()
        .unwrap();
    assert_eq!(
        account["metadata"]["labels"]["gitops.sealed-secrets-rs.io/name"],
        "app"
    );

    // 2. A new commit is applied.
    repo.write(
        "deploy/base/config.yaml",
        &config_map("settings", "bonjour"),
    );
    let second = repo.commit("french");
    wait_ready_at(&controller, &cluster, &ops, &second, "the new commit");
    assert_eq!(greeting(&cluster, &app).unwrap(), "bonjour");

    // 3. A file removed from Git is pruned.
    repo.remove("deploy/base/service.yaml");
    write_overlay(&repo, &app, &["config.yaml", "account.yaml"]);
    repo.commit("drop the service");
    controller.wait_for("the Service to be pruned", WAIT, || {
        match get_object(&cluster, "service", &app, "web")? {
            None => Ok(()),
            Some(_) => Err("Service web still exists".into()),
        }
    });

    // 4. Self-heal on: a hand edit is reverted.
    merge_patch(
        &cluster,
        "configmap",
        "settings",
        &app,
        r#"{"data":{"greeting":"edited"}}"#,
    );
    controller.wait_for("the hand edit to be reverted", WAIT, || {
        greeting_is(&cluster, &app, "bonjour")
    });

    // 5. Self-heal off: a hand edit stays, and the Ready message reports the drift.
    merge_patch(
        &cluster,
        "gitsync",
        "app",
        &ops,
        r#"{"spec":{"selfHeal":false}}"#,
    );
    controller.wait_for("the spec change to be observed", WAIT, || {
        let sync = gitsync(&cluster, &ops)?;
        if sync["status"]["observedGeneration"] == sync["metadata"]["generation"] {
            Ok(())
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
    merge_patch(
        &cluster,
        "configmap",
        "settings",
        &app,
        r#"{"data":{"greeting":"edited"}}"#,
    );
    controller.wait_for("the drift to be reported", WAIT, || {
        let ready = ready_condition(&cluster, &ops)?;
        if ready["message"]
            .as_str()
            .unwrap_or("")
            .contains("drifted from Git")
        {
            Ok(())
        } else {
            Err(format!("Ready: {ready}"))
        }
    });
    thread::sleep(Duration::from_secs(5));
    assert_eq!(greeting(&cluster, &app).unwrap(), "edited");

    // 6. A raw Secret in Git blocks the sync; nothing of that revision is applied.
    repo.write(
        "deploy/base/leaked.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\nstringData:\n  token: do-not-apply\n",
    );
    repo.write(
        "deploy/base/config.yaml",
        &config_map("settings", "blocked"),
    );
    write_overlay(&repo, &app, &["config.yaml", "account.yaml", "leaked.yaml"]);
    let leaked = repo.commit("commit a raw secret by mistake");
    controller.wait_for("the raw Secret to block the sync", WAIT, || {
        let sync = gitsync(&cluster, &ops)?;
        let ready = ready_condition(&cluster, &ops)?;
        if ready["reason"] == "RawSecretRefused"
            && sync["status"]["lastFetchedRevision"] == leaked.as_str()
        {
            Ok(())
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
    assert!(
        get_object(&cluster, "secret", &app, "leaked")
            .unwrap()
            .is_none()
    );
    assert_ne!(greeting(&cluster, &app).unwrap(), "blocked");
    let sync = gitsync(&cluster, &ops).unwrap();
    assert!(!sync.to_string().contains("do-not-apply"));

    // 7. The secret sealed for this controller instead: it becomes a Secret.
    let cert = controller.wait_for("the controller's certificate", WAIT, || {
        let reply = controller.get("/v1/cert.pem")?;
        if reply.status == 200 {
            Ok(reply.text())
        } else {
            Err(format!("HTTP {}", reply.status))
        }
    });
    let cert_path = cache.path().join("cert.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {app}\nstringData:\n  password: s3cret\n"
    );
    let sealed = kubeseal(
        &cluster,
        &["--cert", &cert_path.display().to_string(), "-o", "yaml"],
        secret.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    repo.remove("deploy/base/leaked.yaml");
    repo.write("deploy/base/db-sealed.yaml", &sealed);
    write_overlay(
        &repo,
        &app,
        &["config.yaml", "account.yaml", "db-sealed.yaml"],
    );
    let sealed_rev = repo.commit("seal it");
    let secret = controller.wait_for("the SealedSecret to become a Secret", WAIT, || {
        get_object(&cluster, "secret", &app, "db")?.ok_or_else(|| "Secret db not found".to_string())
    });
    let data = secret_data(&secret).unwrap();
    assert_eq!(
        data.get("password").map(Vec::as_slice),
        Some(b"s3cret".as_slice())
    );
    wait_ready_at(
        &controller,
        &cluster,
        &ops,
        &sealed_rev,
        "the sealed commit",
    );
}
