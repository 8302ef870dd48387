//! End-to-end tests of the reconcile core (`gitops-controller`, next to the sealing
//! `controller`) against a real etcd + kube-apiserver found through `KUBEBUILDER_ASSETS`.
//!
//! The main scenario, in the order a platform team meets it: a GitSync applies a kustomize
//! overlay from a local repository (`file://`) as its ServiceAccount; a new commit is applied; a
//! removed file is pruned; a hand edit is reverted with self-heal on and left alone with it
//! off; a raw Secret committed by mistake blocks the sync; a SealedSecret sealed with our
//! kubeseal for the sealing controller's key passes `/v1/verify` and becomes a Secret.
//! Then: tenancy (a ServiceAccount without RBAC in a namespace gets `Ready=False` and no
//! objects there; a GitSync with no ServiceAccount is refused), server-side apply field
//! ownership, and the finalizer. Without the assets each test prints
//! `skipping e2e: <reason>` and passes.
//!
//! The API server runs with `--authorization-mode=RBAC`, so impersonated requests are really
//! authorised against the Roles these tests create; the controllers themselves use the admin
//! kubeconfig (the chart's least-privilege RBAC is checked by `.ci/chart.sh`).
//!
//! Only ConfigMaps, ServiceAccounts and Services are synced: with no kube-controller-manager
//! or kubelet, workloads would never become healthy.

use std::{sync::Arc, thread, time::Duration};

use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD, apply_yaml, create_namespace, get_object,
    kubectl, kubectl_json, kubectl_ok, kubectl_program, kubeseal, secret_data, suite_cluster,
    unique_name,
};
use sealed_secrets_sync_testing::GitRepo;
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

/// A ServiceAccount `name` in `sa_namespace`, allowed to manage ConfigMaps, ServiceAccounts,
/// Services and SealedSecrets in each of `namespaces` (and nothing else).
fn deployer(cluster: &Cluster, sa_namespace: &str, name: &str, namespaces: &[&str]) {
    let mut yaml = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {sa_namespace}\n"
    );
    for ns in namespaces {
        yaml.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n- apiGroups: [\"\", \"bitnami.com\"]\n  resources: [configmaps, serviceaccounts, services, sealedsecrets]\n  verbs: [get, list, watch, create, update, patch, delete]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {name}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {name}\nsubjects:\n- kind: ServiceAccount\n  name: {name}\n  namespace: {sa_namespace}\n"
        ));
    }
    apply_yaml(cluster, &yaml);
}

/// The sealing controller (keys in `key_ns`, unsealing in `namespaces`) and a
/// gitops-controller for the GitSyncs of `ops` that verifies SealedSecrets with it.
fn start_controllers(
    cluster: &Cluster,
    key_ns: &str,
    ops: &str,
    namespaces: &[&str],
    cache: &std::path::Path,
    extra: &[&str],
) -> (Controller, Controller) {
    let sealing_args = [
        "--all-namespaces=false".to_string(),
        format!("--additional-namespaces={}", namespaces.join(",")),
    ];
    let refs: Vec<&str> = sealing_args.iter().map(String::as_str).collect();
    let sealing = Controller::start_named(cluster, "sealing", key_ns, &refs);
    let kubectl = kubectl_program();
    let mut args = vec![
        format!("--watch-namespaces={ops}"),
        format!("--controller-url=http://{}", sealing.addr),
        format!("--cache-dir={}", cache.display()),
        format!("--kubectl={}", kubectl.display()),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let gitops = Controller::start_gitops(cluster, "gitops", &refs);
    (sealing, gitops)
}

fn cache_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sealed-secrets-e2e-gitops-cache-")
        .tempdir()
        .unwrap()
}

/// Names of the objects of `kind` in `namespace` labelled as applied by a GitSync.
fn synced_objects(cluster: &Cluster, kind: &str, namespace: &str) -> Vec<String> {
    let list = kubectl_json(
        cluster,
        &[
            "get",
            kind,
            "-n",
            namespace,
            "-l",
            "gitops.sealed-secrets-rs.io/name",
            "-o",
            "json",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
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
    named_gitsync(cluster, namespace, "app")
}

fn named_gitsync(cluster: &Cluster, namespace: &str, name: &str) -> Result<Value, String> {
    get_object(cluster, "gitsync", namespace, name)?
        .ok_or_else(|| format!("GitSync {name} not found"))
}

/// A GitSync manifest.
fn gitsync_yaml(name: &str, ops: &str, url: &str, path: &str, extra: &str) -> String {
    format!(
        "apiVersion: gitops.sealed-secrets-rs.io/v1alpha1\nkind: GitSync\nmetadata:\n  name: {name}\n  namespace: {ops}\nspec:\n  source:\n    url: {url}\n    revision: main\n    path: {path}\n  interval: 2s\n{extra}"
    )
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

    let cache = cache_dir();
    deployer(&cluster, &ops, "deployer", &[&app]);
    let (sealing, controller) =
        start_controllers(&cluster, &key_ns, &ops, &[&ops, &app], cache.path(), &[]);

    apply_yaml(
        &cluster,
        &format!(
            "apiVersion: gitops.sealed-secrets-rs.io/v1alpha1\nkind: GitSync\nmetadata:\n  name: app\n  namespace: {ops}\nspec:\n  serviceAccountName: deployer\n  source:\n    url: {}\n    revision: main\n    path: deploy/overlays/production\n  destination:\n    namespace: {app}\n  interval: 2s\n  prune: true\n  selfHeal: true\n",
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

    // 7. The secret sealed for the sealing controller instead: /v1/verify accepts it and the
    //    sealing controller turns it into a Secret.
    let cert = sealing.wait_for("the controller's certificate", WAIT, || {
        let reply = sealing.get("/v1/cert.pem")?;
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
    let secret = sealing.wait_for("the SealedSecret to become a Secret", WAIT, || {
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

/// Waits for GitSync `name`'s Ready condition to have `reason`; returns the condition.
fn wait_reason(
    controller: &Controller,
    cluster: &Cluster,
    ops: &str,
    name: &str,
    reason: &str,
) -> Value {
    controller.wait_for(
        &format!("GitSync {name} Ready reason {reason}"),
        WAIT,
        || {
            let sync = named_gitsync(cluster, ops, name)?;
            match condition(&sync, "Ready") {
                Some(ready) if ready["reason"] == reason => Ok(ready),
                _ => Err(format!("status: {}", sync["status"])),
            }
        },
    )
}

#[test]
fn gitsyncs_run_as_their_service_account() {
    let Some(cluster) = setup() else { return };
    let key_ns = unique_name("tenancy-keys");
    let ops = unique_name("tenancy-ops");
    let allowed = unique_name("tenancy-allowed");
    let forbidden = unique_name("tenancy-forbidden");
    for ns in [&key_ns, &ops, &allowed, &forbidden] {
        create_namespace(&cluster, ns);
    }
    // `deployer` may write in `allowed` only.
    deployer(&cluster, &ops, "deployer", &[&allowed]);

    let repo = GitRepo::new();
    repo.write("allowed/config.yaml", &config_map("settings", "hello"));
    repo.write(
        "forbidden/config.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {forbidden}\ndata:\n  greeting: intruder\n"
        ),
    );
    repo.write("anon/config.yaml", &config_map("anon", "hi"));
    repo.commit("three folders");
    let cache = cache_dir();
    let (_sealing, controller) =
        start_controllers(&cluster, &key_ns, &ops, &[&ops], cache.path(), &[]);

    // Allowed: the objects land.
    apply_yaml(
        &cluster,
        &gitsync_yaml(
            "ok",
            &ops,
            &repo.url(),
            "allowed",
            &format!("  serviceAccountName: deployer\n  destination:\n    namespace: {allowed}\n"),
        ),
    );
    // Same ServiceAccount, a namespace its RBAC does not cover: refused by the API server.
    apply_yaml(
        &cluster,
        &gitsync_yaml(
            "intruder",
            &ops,
            &repo.url(),
            "forbidden",
            "  serviceAccountName: deployer\n",
        ),
    );
    // No ServiceAccount and no --default-service-account: refused by the controller.
    apply_yaml(
        &cluster,
        &gitsync_yaml(
            "anonymous",
            &ops,
            &repo.url(),
            "anon",
            &format!("  destination:\n    namespace: {allowed}\n"),
        ),
    );

    controller.wait_for("GitSync ok to be Ready", WAIT, || {
        let sync = named_gitsync(&cluster, &ops, "ok")?;
        match condition(&sync, "Ready") {
            Some(ready) if ready["status"] == "True" => Ok(()),
            _ => Err(format!("status: {}", sync["status"])),
        }
    });
    assert_eq!(greeting(&cluster, &allowed).unwrap(), "hello");

    let denied = wait_reason(&controller, &cluster, &ops, "intruder", "Forbidden");
    assert_eq!(denied["status"], "False");
    let message = denied["message"].as_str().unwrap_or("");
    for part in [
        format!("system:serviceaccount:{ops}:deployer"),
        "configmaps".to_string(),
        forbidden.clone(),
    ] {
        assert!(message.contains(&part), "{part} not in {message}");
    }
    assert!(
        message.contains("cannot list") || message.contains("cannot patch"),
        "{message}"
    );
    assert!(synced_objects(&cluster, "configmaps", &forbidden).is_empty());
    assert!(
        get_object(&cluster, "configmap", &forbidden, "settings")
            .unwrap()
            .is_none()
    );

    let refused = wait_reason(&controller, &cluster, &ops, "anonymous", "NoServiceAccount");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("--default-service-account"),
        "{refused}"
    );
    drop(controller);

    // The lockdown default applies to GitSyncs that name no ServiceAccount.
    let (_sealing2, controller) = start_controllers(
        &cluster,
        &key_ns,
        &ops,
        &[&ops],
        cache.path(),
        &["--default-service-account=deployer"],
    );
    controller.wait_for("GitSync anonymous to sync as the default", WAIT, || {
        let sync = named_gitsync(&cluster, &ops, "anonymous")?;
        match condition(&sync, "Ready") {
            Some(ready) if ready["status"] == "True" => Ok(()),
            _ => Err(format!("status: {}", sync["status"])),
        }
    });
}

#[test]
fn server_side_apply_keeps_other_managers_fields_and_the_finalizer_prunes() {
    let Some(cluster) = setup() else { return };
    let key_ns = unique_name("ssa-keys");
    let ops = unique_name("ssa-ops");
    let app = unique_name("ssa-app");
    for ns in [&key_ns, &ops, &app] {
        create_namespace(&cluster, ns);
    }
    deployer(&cluster, &ops, "deployer", &[&app]);
    let repo = GitRepo::new();
    repo.write(
        "deploy/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n  colour: blue\n",
    );
    repo.write(
        "deploy/account.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
    );
    let first = repo.commit("config");
    let cache = cache_dir();
    let (_sealing, controller) =
        start_controllers(&cluster, &key_ns, &ops, &[&ops], cache.path(), &[]);
    apply_yaml(
        &cluster,
        &gitsync_yaml(
            "app",
            &ops,
            &repo.url(),
            "deploy",
            &format!(
                "  serviceAccountName: deployer\n  prune: true\n  destination:\n    namespace: {app}\n"
            ),
        ),
    );
    wait_ready_at(&controller, &cluster, &ops, &first, "the first commit");
    let sync = gitsync(&cluster, &ops).unwrap();
    assert!(
        sync["metadata"]["finalizers"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f == "gitops.sealed-secrets-rs.io/finalizer")),
        "{}",
        sync["metadata"]
    );

    // Another field manager owns data.owner and a label.
    let other = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {app}\n  labels:\n    team: payments\ndata:\n  owner: someone-else\n"
    );
    let path = cache.path().join("other.yaml");
    std::fs::write(&path, other).unwrap();
    kubectl_ok(
        &cluster,
        &[
            "apply",
            "--server-side",
            "--field-manager=other-team",
            "-f",
            &path.display().to_string(),
        ],
    );

    // Git drops data.colour and changes greeting.
    repo.write(
        "deploy/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: bonjour\n",
    );
    let second = repo.commit("drop colour");
    wait_ready_at(&controller, &cluster, &ops, &second, "the second commit");
    let map = get_object(&cluster, "configmap", &app, "settings")
        .unwrap()
        .unwrap();
    assert_eq!(map["data"]["greeting"], "bonjour");
    assert!(map["data"].get("colour").is_none(), "{}", map["data"]);
    assert_eq!(map["data"]["owner"], "someone-else");
    assert_eq!(map["metadata"]["labels"]["team"], "payments");
    // kubectl hides managedFields unless asked.
    let full = kubectl_json(
        &cluster,
        &[
            "get",
            "configmap",
            "settings",
            "-n",
            &app,
            "--show-managed-fields",
            "-o",
            "json",
        ],
    )
    .unwrap();
    let managers: Vec<String> = full["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str().map(str::to_string))
        .collect();
    assert!(
        managers.contains(&"sealed-secrets-sync".to_string())
            && managers.contains(&"other-team".to_string()),
        "{managers:?}"
    );

    // Deleting the GitSync (prune: true) deletes what it applied, then the GitSync goes.
    kubectl_ok(
        &cluster,
        &["delete", "gitsync", "app", "-n", &ops, "--wait=false"],
    );
    controller.wait_for("the GitSync's objects to be pruned", WAIT, || {
        let left: Vec<String> = ["configmaps", "serviceaccounts"]
            .iter()
            .flat_map(|kind| synced_objects(&cluster, kind, &app))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("still there: {left:?}"))
        }
    });
    controller.wait_for("the GitSync to be gone", WAIT, || {
        match kubectl(
            &cluster,
            &["get", "gitsync", "app", "-n", &ops, "-o", "name"],
        ) {
            Err(err) if err.contains("NotFound") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// `kubeseal sync apply -n NS`: objects land in NS, are labelled for NS, and the inventory
/// ConfigMap is in NS (not in the context's `default`); `diff -n NS` then finds nothing to change.
#[test]
fn kubeseal_sync_honours_the_namespace_flag() {
    let Some(cluster) = setup() else { return };
    let ns = unique_name("sync-n");
    create_namespace(&cluster, &ns);
    let dir = tempfile::Builder::new()
        .prefix("sealed-secrets-e2e-sync-n-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("deploy")).unwrap();
    std::fs::write(
        dir.path().join("deploy/config.yaml"),
        config_map("settings", "hi"),
    )
    .unwrap();
    let path = dir.path().join("deploy").display().to_string();
    kubeseal(
        &cluster,
        &[
            "sync", "apply", "--name", "shop", "--path", &path, "-n", &ns,
        ],
        b"",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let map = get_object(&cluster, "configmap", &ns, "settings")
        .unwrap()
        .expect("applied into -n");
    assert_eq!(
        map["metadata"]["labels"]["gitops.sealed-secrets-rs.io/namespace"],
        ns.as_str()
    );
    assert!(
        get_object(&cluster, "configmap", &ns, "gitsync-shop")
            .unwrap()
            .is_some()
    );
    assert!(
        get_object(&cluster, "configmap", "default", "settings")
            .unwrap()
            .is_none()
    );
    let diff = kubeseal(
        &cluster,
        &["sync", "diff", "--name", "shop", "--path", &path, "-n", &ns],
        b"",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(diff.contains("in sync"), "{diff}");
}
