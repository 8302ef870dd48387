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

use std::{
    path::PathBuf,
    process::Command,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use sealed_secrets_e2e::{
    Assets, Binaries, Cluster, Controller, SEALED_SECRET_CRD, apply_yaml, create_namespace,
    get_object, install_crd, kubectl_ok, kubectl_program, kubeseal, secret_data, shared_cluster,
    skip, unique_name, workspace_root,
};
use serde_json::Value;

/// Upper bound of every wait on the controller.
const WAIT: Duration = Duration::from_secs(90);
/// Name of the GitSync CRD.
const GITSYNC_CRD: &str = "gitsyncs.gitops.sealed-secrets-rs.io";

fn setup() -> Option<Arc<Cluster>> {
    let assets = match Assets::from_env() {
        Ok(assets) => assets,
        Err(reason) => {
            skip(&reason);
            return None;
        }
    };
    let kubectl_works = Command::new(kubectl_program())
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        kubectl_works,
        "KUBEBUILDER_ASSETS is set but `{}` does not run: the e2e suite needs kubectl (set KUBECTL or PATH)",
        kubectl_program().display()
    );
    Binaries::get();
    Some(shared_cluster(&assets, |cluster| {
        let crds = workspace_root().join("crds");
        install_crd(
            cluster,
            &crds.join("bitnami.com_sealedsecrets.yaml"),
            SEALED_SECRET_CRD,
        );
        install_crd(
            cluster,
            &crds.join("gitops.sealed-secrets-rs.io_gitsyncs.yaml"),
            GITSYNC_CRD,
        );
    }))
}

/// A Git repository in a temporary folder, committed to with a fixed identity.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::Builder::new()
                .prefix("sealed-secrets-e2e-repo-")
                .tempdir()
                .expect("cannot create a temporary directory"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .env("GIT_AUTHOR_NAME", "e2e")
            .env("GIT_AUTHOR_EMAIL", "e2e@example.com")
            .env("GIT_COMMITTER_NAME", "e2e")
            .env("GIT_COMMITTER_EMAIL", "e2e@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.dir.path())
            .output()
            .expect("git must be installed for the gitops e2e test");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let full = self.path(rel);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path(rel)).unwrap();
    }

    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

/// Polls `check` until it succeeds; on timeout panics with the controller's log.
fn wait<T>(controller: &Controller, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let last = match check() {
            Ok(value) => return value,
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            panic!(
                "timed out after {WAIT:?} waiting for {what}; last: {last}\n--- controller log ---\n{}",
                controller.log()
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

fn config_value(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, String> {
    let map = get_object(cluster, "configmap", namespace, name)?
        .ok_or_else(|| format!("ConfigMap {namespace}/{name} not found"))?;
    map["data"][key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("ConfigMap {namespace}/{name} has no data.{key}: {map}"))
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
fn write_overlay(repo: &Repo, namespace: &str, base: &[&str]) {
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

    let repo = Repo::new();
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
    wait(&controller, "the overlay to be applied", || {
        config_value(&cluster, &app, "settings", "greeting")
    });
    wait(&controller, "GitSync Ready with the first revision", || {
        let sync = gitsync(&cluster, &ops)?;
        let ready = condition(&sync, "Ready").ok_or("no Ready condition")?;
        if ready["status"] == "True" && sync["status"]["lastAppliedRevision"] == first.as_str() {
            Ok(sync)
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
    let labels = get_object(&cluster, "serviceaccount", &app, "web")
        .unwrap()
        .unwrap();
    assert_eq!(
        labels["metadata"]["labels"]["gitops.sealed-secrets-rs.io/name"],
        "app"
    );

    // 2. A new commit is applied.
    repo.write(
        "deploy/base/config.yaml",
        &config_map("settings", "bonjour"),
    );
    repo.commit("french");
    wait(
        &controller,
        "the new commit to be applied",
        || match config_value(&cluster, &app, "settings", "greeting")? {
            v if v == "bonjour" => Ok(()),
            other => Err(format!("greeting is {other}")),
        },
    );

    // 3. A file removed from Git is pruned.
    repo.remove("deploy/base/service.yaml");
    write_overlay(&repo, &app, &["config.yaml", "account.yaml"]);
    repo.commit("drop the service");
    wait(
        &controller,
        "the Service to be pruned",
        || match get_object(&cluster, "service", &app, "web")? {
            None => Ok(()),
            Some(_) => Err("Service web still exists".into()),
        },
    );

    // 4. Self-heal on: a hand edit is reverted.
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            &app,
            "--type=merge",
            "-p",
            r#"{"data":{"greeting":"edited"}}"#,
        ],
    );
    wait(
        &controller,
        "the hand edit to be reverted",
        || match config_value(&cluster, &app, "settings", "greeting")? {
            v if v == "bonjour" => Ok(()),
            other => Err(format!("greeting is {other}")),
        },
    );

    // 5. Self-heal off: a hand edit stays, and the Ready message reports the drift.
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "gitsync",
            "app",
            "-n",
            &ops,
            "--type=merge",
            "-p",
            r#"{"spec":{"selfHeal":false}}"#,
        ],
    );
    wait(&controller, "the spec change to be observed", || {
        let sync = gitsync(&cluster, &ops)?;
        if sync["status"]["observedGeneration"] == sync["metadata"]["generation"] {
            Ok(())
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            &app,
            "--type=merge",
            "-p",
            r#"{"data":{"greeting":"edited"}}"#,
        ],
    );
    wait(&controller, "the drift to be reported", || {
        let sync = gitsync(&cluster, &ops)?;
        let ready = condition(&sync, "Ready").ok_or("no Ready condition")?;
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
    assert_eq!(
        config_value(&cluster, &app, "settings", "greeting").unwrap(),
        "edited"
    );

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
    wait(&controller, "the raw Secret to block the sync", || {
        let sync = gitsync(&cluster, &ops)?;
        let ready = condition(&sync, "Ready").ok_or("no Ready condition")?;
        if ready["reason"] == "RawSecretRefused"
            && sync["status"]["lastFetchedRevision"] == leaked.as_str()
        {
            Ok(ready)
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
    assert!(
        get_object(&cluster, "secret", &app, "leaked")
            .unwrap()
            .is_none()
    );
    assert_ne!(
        config_value(&cluster, &app, "settings", "greeting").unwrap(),
        "blocked"
    );
    let sync = gitsync(&cluster, &ops).unwrap();
    assert!(!sync.to_string().contains("do-not-apply"));

    // 7. The secret sealed for this controller instead: it becomes a Secret.
    let cert = wait(&controller, "the controller's certificate", || {
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
    let secret = wait(&controller, "the SealedSecret to become a Secret", || {
        get_object(&cluster, "secret", &app, "db")?.ok_or_else(|| "Secret db not found".to_string())
    });
    let data = secret_data(&secret).unwrap();
    assert_eq!(
        data.get("password").map(Vec::as_slice),
        Some(b"s3cret".as_slice())
    );
    wait(&controller, "GitSync Ready on the sealed revision", || {
        let sync = gitsync(&cluster, &ops)?;
        let ready = condition(&sync, "Ready").ok_or("no Ready condition")?;
        if ready["status"] == "True" && sync["status"]["lastAppliedRevision"] == sealed_rev.as_str()
        {
            Ok(())
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
}
