//! End-to-end suite of `kubeseal ui` (issue #20) in a real headless browser: Debian's
//! chromium driven through chromedriver (WebDriver, the fantoccini crate), against a real etcd
//! + kube-apiserver with the sealed-secrets controller and the GitOps controller running.
//!
//! It opens the overview, follows a GitSync, sees a degraded Deployment (and its ReplicaSet) in
//! the tree, makes a hand edit with another field manager and sees the drift with that
//! manager's name, seals a Secret in the form, applies the result and sees the Secret appear,
//! watches a page update without a reload, and checks that a user without RBAC for a namespace
//! sees nothing of it. A canary value typed into the seal form must appear in no page and no
//! log. Screenshots of each page go to `target/ui-screenshots/`.
//!
//! Without the envtest assets, or without chromium and chromedriver, it prints one line and
//! passes.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use base64::Engine as _;
use fantoccini::{
    Client, ClientBuilder, Locator,
    actions::{InputSource, KeyAction, KeyActions},
    key::Key,
};
use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD, Ui, apply_yaml, create_namespace, free_port,
    get_object, kubectl_ok, kubectl_program, kubeseal, skip, suite_cluster, unique_name,
    workspace_root,
};
use sealed_secrets_sync_testing::GitRepo;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
/// Typed into the seal form; must never come back.
const CANARY: &str = "canary-ui-5e7d1f-typed-into-the-form";

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// `None` (after one line) when the browser or its driver is not installed.
    fn start() -> Option<Driver> {
        for program in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(program).exists() {
                skip(&format!(
                    "{program} is missing (install Debian's chromium and chromium-driver)"
                ));
                return None;
            }
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            thread::sleep(Duration::from_millis(100));
        }
        Some(Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _profile: tempfile::tempdir().unwrap(),
        })
    }

    /// A browser session; `dark` makes the system's colour scheme dark.
    async fn session(&self, dark: bool) -> Client {
        let profile = self
            ._profile
            .path()
            .join(if dark { "dark" } else { "light" })
            .display()
            .to_string();
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                    format!("--user-data-dir={profile}"),
                    if dark { "--force-dark-mode" } else { "--no-default-browser-check" }.to_string(),
                ]
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("cannot open a chromium session through chromedriver")
    }
}

fn screenshots() -> PathBuf {
    let dir = workspace_root().join("target").join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits for an element, failing with the page's text.
async fn element(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            let text = client.source().await.unwrap_or_default();
            panic!("no element {css} within {WAIT:?}: {e}\n{text}");
        }
    }
}

/// Waits until `css` matches an element whose text contains `needle`.
async fn text_of(client: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(found) = client.find(Locator::Css(css)).await
            && let Ok(text) = found.text().await
            && text.contains(needle)
        {
            return text;
        }
        if Instant::now() > deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("{css} never showed {needle:?}\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn setup() -> Option<Arc<Cluster>> {
    suite_cluster(
        Assets::from_env(),
        &[
            ("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD),
            (
                "gitops.sealed-secrets-rs.io_gitsyncs.yaml",
                "gitsyncs.gitops.sealed-secrets-rs.io",
            ),
        ],
    )
}

/// The GitSync's ServiceAccount: manages the synced kinds in `app`.
fn deployer(cluster: &Cluster, ops: &str, app: &str) {
    apply_yaml(
        cluster,
        &format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: deployer\n  namespace: {ops}\n\
---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: deployer\n  namespace: {app}\nrules:\n\
- apiGroups: [\"\", apps, bitnami.com]\n  resources: [configmaps, deployments, sealedsecrets]\n  verbs: [get, list, watch, create, update, patch, delete]\n\
---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: deployer\n  namespace: {app}\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: deployer\nsubjects:\n- kind: ServiceAccount\n  name: deployer\n  namespace: {ops}\n"
        ),
    );
}

/// A user who may read GitSyncs in `ops` and objects in `app`, and nothing anywhere else;
/// returns a kubeconfig with its token.
fn viewer_kubeconfig(cluster: &Cluster, ops: &str, app: &str, dir: &Path) -> PathBuf {
    let role = |ns: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: viewer\n  namespace: {ns}\nrules:\n\
- apiGroups: [\"\", apps, bitnami.com, gitops.sealed-secrets-rs.io]\n  resources: [gitsyncs, sealedsecrets, configmaps, deployments, replicasets, pods, events]\n  verbs: [get, list, watch]\n\
---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: viewer\n  namespace: {ns}\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: viewer\nsubjects:\n- kind: ServiceAccount\n  name: viewer\n  namespace: {ops}\n"
        )
    };
    apply_yaml(
        cluster,
        &format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: viewer\n  namespace: {ops}\n{}{}",
            role(ops),
            role(app)
        ),
    );
    let token = kubectl_ok(
        cluster,
        &["create", "token", "viewer", "-n", ops, "--duration=1h"],
    );
    let admin = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .unwrap()
        .to_string();
    let path = dir.join("viewer.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
users:\n- name: viewer\n  user:\n    token: {}\ncontexts:\n- name: viewer\n  context:\n    cluster: e2e\n    user: viewer\n    namespace: {ops}\n\
current-context: viewer\n",
            cluster.server(),
            token.trim()
        ),
    )
    .unwrap();
    path
}

fn gitsync_yaml(name: &str, namespace: &str, url: &str, destination: &str) -> String {
    format!(
        "apiVersion: gitops.sealed-secrets-rs.io/v1alpha1\nkind: GitSync\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
spec:\n  serviceAccountName: deployer\n  source:\n    url: {url}\n    revision: main\n    path: deploy\n  destination:\n    namespace: {destination}\n  interval: 2s\n  secretPolicy:\n    verifySealedSecrets: false\n"
    )
}

fn wait_for_sync(controller: &Controller, cluster: &Cluster, ops: &str, revision: &str) {
    controller.wait_for("the first sync", WAIT, || {
        let sync = get_object(cluster, "gitsync", ops, "shop")?.ok_or("no GitSync")?;
        if sync["status"]["lastAppliedRevision"] == revision {
            Ok(())
        } else {
            Err(format!("status: {}", sync["status"]))
        }
    });
}

/// Makes the Deployment look stuck (no kubelet runs Pods here): its status as the Deployment
/// controller writes it after `progressDeadlineSeconds`, and a ReplicaSet it owns.
fn degrade(cluster: &Cluster, app: &str) {
    let deployment = get_object(cluster, "deployment", app, "web")
        .unwrap()
        .unwrap();
    let generation = deployment["metadata"]["generation"].as_i64().unwrap();
    let uid = deployment["metadata"]["uid"].as_str().unwrap();
    let status = serde_json::json!({"status": {
        "observedGeneration": generation, "replicas": 2, "updatedReplicas": 2,
        "unavailableReplicas": 2,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-5d4f\" has timed out progressing."}
        ]
    }});
    kubectl_ok(
        cluster,
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            app,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ],
    );
    let replica_set = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "namespace": app, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid,
            "controller": true
        }]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    });
    apply_yaml(cluster, &replica_set.to_string());
}

fn secret_value(cluster: &Cluster, namespace: &str, name: &str, key: &str) -> Option<String> {
    let secret: Value = get_object(cluster, "secret", namespace, name).ok()??;
    let encoded = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_in_a_real_browser() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let Some(cluster) = setup() else { return };
    let ops = unique_name("ui-ops");
    let app = unique_name("ui-app");
    let hidden = unique_name("ui-hidden");
    for ns in [&ops, &app, &hidden] {
        create_namespace(&cluster, ns);
    }
    let work = tempfile::tempdir().unwrap();

    // The sealed-secrets controller (its keys in `ops`) and its certificate for sealing.
    let sealer = Controller::start(&cluster, &ops, &[]);
    let cert = sealer.wait_for("the controller's certificate", WAIT, || {
        match sealer.get("/v1/cert.pem") {
            Ok(reply) if reply.status == 200 => Ok(reply.text()),
            Ok(reply) => Err(format!("status {}", reply.status)),
            Err(e) => Err(e),
        }
    });
    let cert_file = work.path().join("cert.pem");
    std::fs::write(&cert_file, &cert).unwrap();
    let cert_arg = cert_file.display().to_string();

    // A repository: a Deployment, a ConfigMap and a SealedSecret.
    let repo = GitRepo::new();
    repo.write(
        "deploy/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  progressDeadlineSeconds: 5\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    repo.write(
        "deploy/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n",
    );
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {app}\nstringData:\n  password: from-git\n"
    );
    let sealed = kubeseal(
        &cluster,
        &["--cert", &cert_arg, "-o", "yaml"],
        secret.as_bytes(),
    )
    .unwrap();
    repo.write("deploy/sealed.yaml", &sealed);
    let first = repo.commit("web, settings and the db password");

    deployer(&cluster, &ops, &app);
    let cache = tempfile::tempdir().unwrap();
    let gitops_args = [
        format!("--watch-namespaces={ops}"),
        format!("--cache-dir={}", cache.path().display()),
        format!("--kubectl={}", kubectl_program().display()),
    ];
    let refs: Vec<&str> = gitops_args.iter().map(String::as_str).collect();
    let gitops = Controller::start_gitops(&cluster, "gitops-ui", &refs);
    apply_yaml(&cluster, &gitsync_yaml("shop", &ops, &repo.url(), &app));
    // A GitSync and a SealedSecret in a namespace the viewer may not read.
    apply_yaml(
        &cluster,
        &gitsync_yaml("secret-project", &hidden, &repo.url(), &hidden),
    );
    let hidden_sealed = kubeseal(
        &cluster,
        &["--cert", &cert_arg, "-o", "yaml"],
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hidden-db\n  namespace: {hidden}\nstringData:\n  a: b\n"
        )
        .as_bytes(),
    )
    .unwrap();
    apply_yaml(&cluster, &hidden_sealed);
    wait_for_sync(&gitops, &cluster, &ops, &first);
    degrade(&cluster, &app);

    let ui = Ui::start(
        cluster.kubeconfig(),
        &["--cert", &cert_arg, "--controller-namespace", &ops],
    );
    let base = ui.base();
    let client = driver.session(false).await;

    // Overview: the login link sets the cookie and lands on a clean URL.
    client.goto(&ui.url).await.unwrap();
    element(&client, &format!("tr[data-gitsync=\"{ops}/shop\"]")).await;
    let landed = client.current_url().await.unwrap();
    assert_eq!(
        landed.as_str(),
        format!("{base}/"),
        "the token left the URL"
    );
    element(
        &client,
        &format!("tr[data-gitsync=\"{hidden}/secret-project\"]"),
    )
    .await;
    screenshot(&client, "overview").await;

    // Keyboard: the first Tab reaches "Skip to content", the next the first page of the nav.
    let tab = || {
        KeyActions::new("keyboard".to_string())
            .then(KeyAction::Down {
                value: Key::Tab.into(),
            })
            .then(KeyAction::Up {
                value: Key::Tab.into(),
            })
    };
    client.perform_actions(tab()).await.unwrap();
    let focused = client.active_element().await.unwrap().text().await.unwrap();
    assert_eq!(focused, "Skip to content");
    client.perform_actions(tab()).await.unwrap();
    let focused = client.active_element().await.unwrap().text().await.unwrap();
    assert_eq!(focused, "GitSyncs");

    // Live: a GitSync created now appears without a reload.
    let started = Instant::now();
    // Suspended: it must not take the objects of `shop` over.
    apply_yaml(
        &cluster,
        &format!(
            "{}  suspend: true\n",
            gitsync_yaml("late", &ops, &repo.url(), &app)
        ),
    );
    element(&client, &format!("tr[data-gitsync=\"{ops}/late\"]")).await;
    let appeared = started.elapsed();
    eprintln!("ui: a new GitSync appeared on the open overview after {appeared:?}");
    assert!(appeared < Duration::from_secs(5), "{appeared:?}");
    assert_eq!(
        client.current_url().await.unwrap().as_str(),
        format!("{base}/"),
        "no navigation happened"
    );

    // A GitSync: the degraded Deployment with its ReplicaSet, the SealedSecret with its Secret.
    client
        .find(Locator::Css(&format!("a[href=\"/gitsyncs/{ops}/shop\"]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let web = text_of(
        &client,
        &format!("li[data-node=\"Deployment/{app}/web\"]"),
        "Degraded",
    )
    .await;
    assert!(
        web.contains("ProgressDeadlineExceeded") || web.contains("timed out"),
        "{web}"
    );
    element(
        &client,
        &format!("li[data-node=\"ReplicaSet/{app}/web-5d4f\"]"),
    )
    .await;
    element(&client, &format!("li[data-node=\"Secret/{app}/db\"]")).await;
    text_of(
        &client,
        "table.history",
        "web, settings and the db password",
    )
    .await;
    screenshot(&client, "gitsync").await;
    // Problems only keeps the Deployment and drops the healthy ConfigMap.
    client
        .goto(&format!("{base}/gitsyncs/{ops}/shop?problems=true"))
        .await
        .unwrap();
    element(&client, &format!("li[data-node=\"Deployment/{app}/web\"]")).await;
    assert!(
        client
            .find(Locator::Css(&format!(
                "li[data-node=\"ConfigMap/{app}/settings\"]"
            )))
            .await
            .is_err()
    );

    // Drift: a hand edit by another field manager, named on the drift page.
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
            "{\"data\":{\"greeting\":\"edited by hand\"}}",
            "--field-manager=oncall-hand-edit",
        ],
    );
    client
        .goto(&format!("{base}/gitsyncs/{ops}/shop/drift"))
        .await
        .unwrap();
    let drift = text_of(
        &client,
        "section.drift[data-object*=\"ConfigMap\"]",
        "oncall-hand-edit",
    )
    .await;
    assert!(drift.contains("data.greeting"), "{drift}");
    assert!(drift.contains("edited by hand"), "{drift}");
    screenshot(&client, "drift").await;

    // Seal: fill the form, copy the YAML, apply it, the controller unseals it.
    client.goto(&format!("{base}/seal")).await.unwrap();
    let fill = |css: &'static str, text: String| {
        let client = client.clone();
        async move {
            let field = client.find(Locator::Css(css)).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(&text).await.unwrap();
        }
    };
    fill("input[name=name]", "fresh".into()).await;
    fill("input[name=namespace]", app.clone()).await;
    fill("input[name=key]", "password".into()).await;
    fill("textarea[name=value]", CANARY.into()).await;
    client
        .find(Locator::Css("button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let yaml = element(&client, "#sealed-yaml")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(yaml.contains("kind: SealedSecret"), "{yaml}");
    assert!(!yaml.contains(CANARY));
    let page = client.source().await.unwrap();
    assert!(!page.contains(CANARY), "the plaintext came back");
    assert!(page.contains("For context <b>kubeseal</b>"), "{page}");
    assert!(
        page.contains("certificate <code class=\"fingerprint\">SHA256:"),
        "{page}"
    );
    screenshot(&client, "seal").await;
    apply_yaml(&cluster, &yaml);
    sealer.wait_for("the sealed Secret", WAIT, || {
        match secret_value(&cluster, &app, "fresh", "password") {
            Some(v) if v == CANARY => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // SealedSecrets: the new one, unsealed, with the key that opened it.
    client.goto(&format!("{base}/sealedsecrets")).await.unwrap();
    text_of(&client, &format!("tr[data-sealed=\"{app}/fresh\"]"), "True").await;
    text_of(&client, "table.keys", "SHA256:").await;
    screenshot(&client, "sealedsecrets").await;
    assert!(!client.source().await.unwrap().contains(CANARY));

    // A user without RBAC in `hidden` sees nothing of it.
    let viewer_config = viewer_kubeconfig(&cluster, &ops, &app, work.path());
    let viewer = Ui::start(&viewer_config, &["--cert", &cert_arg]);
    client.goto(&viewer.url).await.unwrap();
    element(&client, &format!("tr[data-gitsync=\"{ops}/shop\"]")).await;
    let overview = client.source().await.unwrap();
    assert!(!overview.contains(&hidden), "the viewer saw {hidden}");
    assert!(!overview.contains("secret-project"));
    assert!(
        client
            .find(Locator::Css("button[name=action]"))
            .await
            .is_err(),
        "no action on the overview"
    );
    screenshot(&client, "viewer-overview").await;
    client
        .goto(&format!("{}/gitsyncs/{ops}/shop", viewer.base()))
        .await
        .unwrap();
    element(&client, &format!("li[data-node=\"Deployment/{app}/web\"]")).await;
    assert!(
        client
            .find(Locator::Css("button[name=action]"))
            .await
            .is_err(),
        "the viewer may not patch GitSyncs, so no action is offered"
    );
    client
        .goto(&format!(
            "{}/gitsyncs/{hidden}/secret-project",
            viewer.base()
        ))
        .await
        .unwrap();
    let denied = client.source().await.unwrap();
    assert!(denied.contains("Not allowed"), "{denied}");
    client
        .goto(&format!("{}/sealedsecrets", viewer.base()))
        .await
        .unwrap();
    element(&client, "table.sealed").await;
    let sealed_page = client.source().await.unwrap();
    assert!(
        sealed_page.contains(&format!("{app}/fresh")),
        "{sealed_page}"
    );
    assert!(!sealed_page.contains("hidden-db"));
    assert!(sealed_page.contains("You may not list the controller"));

    // The admin may act: Suspend is offered and works.
    client
        .goto(&format!("{base}/gitsyncs/{ops}/shop"))
        .await
        .unwrap();
    element(&client, "button[value=suspend]")
        .await
        .click()
        .await
        .unwrap();
    text_of(&client, "p.note", "Suspended").await;
    let sync = get_object(&cluster, "gitsync", &ops, "shop")
        .unwrap()
        .unwrap();
    assert_eq!(sync["spec"]["suspend"], true);

    client.close().await.unwrap();

    // Dark mode follows the system's setting.
    let dark = driver.session(true).await;
    dark.goto(&ui.url).await.unwrap();
    element(&dark, &format!("tr[data-gitsync=\"{ops}/shop\"]")).await;
    let background = dark
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(background, "rgb(13, 17, 23)", "the dark palette");
    screenshot(&dark, "overview-dark").await;
    dark.close().await.unwrap();

    for log in [ui.output(), viewer.output()] {
        assert!(!log.contains(CANARY), "the canary reached the UI's output");
    }
    eprintln!(
        "ui: browser suite done; screenshots in {}",
        screenshots().display()
    );
}
