//! The router end to end, in memory: the guard's rules (Host, session, Origin, CSRF), the
//! headers on every answer, escaping of hostile values from the cluster, and that a seal's
//! plaintext never comes back. The API server is the in-memory fake of `sync-testing`.

use std::sync::Arc;

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use sealed_secrets_sync_testing::FakeApiServer;
use serde_json::json;
use tower::ServiceExt as _;

use crate::{CertificateSource, Settings, bind, server::router};

struct TestCertificate(String);

impl CertificateSource for TestCertificate {
    fn fetch(&self) -> Result<Vec<u8>, String> {
        Ok(self.0.clone().into_bytes())
    }
    fn describe(&self) -> String {
        "a test certificate".into()
    }
}

struct Ui {
    router: axum::Router,
    host: String,
    token: String,
    cookie: String,
    csrf: String,
}

const CANARY: &str = "canary-7f3e9b2a-never-shown";

async fn ui(fake: &FakeApiServer) -> Ui {
    let pair = sealed_secrets_core::keys::generate_key_pair(
        2048,
        "ui",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(24),
    )
    .unwrap();
    let settings = Settings {
        address: "127.0.0.1:0".parse().unwrap(),
        context: "test".into(),
        server: "https://127.0.0.1:6443".into(),
        default_namespace: "default".into(),
        controller_namespace: "kube-system".into(),
        kubectl: "kubectl".into(),
        git: "git".into(),
    };
    let bound = bind(
        fake.client(),
        settings,
        Arc::new(TestCertificate(pair.cert_pem)),
    )
    .await
    .unwrap();
    let url = bound.login_url();
    let host = url
        .strip_prefix("http://")
        .and_then(|u| u.split('/').next())
        .unwrap()
        .to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let app = bound.app.clone();
    let cookie = app.secrets.session_cookie();
    let cookie = cookie.split(';').next().unwrap().to_string();
    Ui {
        router: router(app.clone()),
        host,
        token,
        cookie,
        csrf: app.secrets.csrf_token().to_string(),
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Ui {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    fn get(&self, path: &str) -> axum::http::request::Builder {
        Request::get(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie)
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Request<Body> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        Request::post(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie)
            .header(header::ORIGIN, format!("http://{}", self.host))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    }
}

fn assert_hardened(reply: &Reply) {
    let header = |name: &str| {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(
        header("content-security-policy").contains("script-src 'self'"),
        "{:?}",
        reply.headers
    );
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
}

#[tokio::test]
async fn the_guard_wants_our_host_then_a_session() {
    let fake = FakeApiServer::new();
    let ui = ui(&fake).await;
    // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    let rebound = ui
        .send(
            Request::get("/")
                .header(header::HOST, "evil.example:80")
                .header(header::COOKIE, &ui.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(rebound.status, StatusCode::FORBIDDEN);
    assert_hardened(&rebound);
    let no_session = ui
        .send(
            Request::get("/")
                .header(header::HOST, &ui.host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(no_session.status, StatusCode::UNAUTHORIZED);
    assert!(no_session.body.contains("open the URL"));
    let wrong = ui
        .send(
            Request::get("/login?token=guess")
                .header(header::HOST, &ui.host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    let login = ui
        .send(
            Request::get(format!("/login?token={}", ui.token))
                .header(header::HOST, &ui.host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(
        login.headers[header::LOCATION],
        "/",
        "the token leaves the URL"
    );
    let cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with(&format!("{}-", crate::security::COOKIE)));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert_eq!(cookie.split(';').next().unwrap(), ui.cookie);
    let assets = ui
        .send(
            Request::get("/assets/app.js")
                .header(header::HOST, &ui.host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(assets.status, StatusCode::OK);
    assert!(assets.body.contains("X-Kubeseal-UI"));
    let home = ui.send(ui.get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(home.status, StatusCode::OK);
    assert_hardened(&home);
    assert!(home.body.contains("<main"), "{}", home.body);
    assert!(!home.body.contains("<script>"), "no inline script");
    let partial = ui
        .send(
            ui.get("/")
                .header("x-kubeseal-ui", "partial")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(partial.body.contains("<h1>GitSyncs</h1>"));
    assert!(!partial.body.contains("<html"), "the main content alone");
}

#[tokio::test]
async fn writes_need_our_origin_and_the_csrf_token() {
    let fake = FakeApiServer::new();
    let ui = ui(&fake).await;
    let fields = [
        ("csrf", ui.csrf.as_str()),
        ("name", "db"),
        ("key", "password"),
        ("value", CANARY),
    ];
    let mut no_origin = ui.post("/seal", &fields);
    no_origin.headers_mut().remove(header::ORIGIN);
    assert_eq!(ui.send(no_origin).await.status, StatusCode::FORBIDDEN);
    let mut cross = ui.post("/seal", &fields);
    cross
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let cross = ui.send(cross).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(!cross.body.contains(CANARY));
    let forged = ui
        .send(ui.post(
            "/seal",
            &[
                ("csrf", "forged"),
                ("name", "db"),
                ("key", "password"),
                ("value", CANARY),
            ],
        ))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("CSRF"));
    assert!(!forged.body.contains(CANARY));
    let action = ui
        .send(ui.post(
            "/gitsyncs/a/b/actions",
            &[("csrf", "x"), ("action", "sync")],
        ))
        .await;
    assert_eq!(action.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_seal_never_sends_the_plaintext_back() {
    let fake = FakeApiServer::new();
    let ui = ui(&fake).await;
    let sealed = ui
        .send(ui.post(
            "/seal",
            &[
                ("csrf", ui.csrf.as_str()),
                ("name", "db"),
                ("namespace", "shop"),
                ("scope", "strict"),
                ("key", "password"),
                ("value", CANARY),
            ],
        ))
        .await;
    assert_eq!(sealed.status, StatusCode::OK, "{}", sealed.body);
    assert_hardened(&sealed);
    assert!(
        sealed.body.contains("kind: SealedSecret"),
        "{}",
        sealed.body
    );
    assert!(sealed.body.contains("encryptedData"));
    assert!(!sealed.body.contains(CANARY));
    assert!(
        sealed.body.contains("<code class=\"fingerprint\">SHA256:"),
        "the page names the certificate it sealed for"
    );
    // An error keeps names and keys, never a value.
    let refused = ui
        .send(ui.post(
            "/seal",
            &[
                ("csrf", ui.csrf.as_str()),
                ("name", "db"),
                ("key", "bad key"),
                ("value", CANARY),
            ],
        ))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("key 1: "), "{}", refused.body);
    assert!(refused.body.contains("bad key"));
    assert!(!refused.body.contains(CANARY));
}

#[tokio::test]
async fn hostile_values_from_the_cluster_are_escaped_and_never_links() {
    let fake = FakeApiServer::new();
    fake.insert(
        "gitsyncs",
        json!({
            "apiVersion": "gitops.sealed-secrets-rs.io/v1alpha1", "kind": "GitSync",
            "metadata": {"name": "web", "namespace": "shop", "uid": "g1",
                "annotations": {
                    "link.argocd.argoproj.io/runbook": "javascript:alert(document.cookie)",
                    "link.argocd.argoproj.io/dashboard": "https://grafana.example/d/1"
                }},
            "spec": {"source": {"url": "javascript:alert(1)//x"}},
            "status": {
                "lastAppliedRevision": "0123456789abcdef0123456789abcdef01234567",
                "conditions": [{"type": "Ready", "status": "False", "reason": "ApplyFailed",
                    "message": "<img src=x onerror=alert(1)>", "lastTransitionTime": "2026-12-07T10:00:00Z"}],
                "history": [{"revision": "0123456789abcdef0123456789abcdef01234567",
                    "commitSubject": "<script>alert('subject')</script>",
                    "commitAuthor": "\"><svg onload=alert(2)>",
                    "startedAt": "2026-12-07T10:00:00Z", "finishedAt": "2026-12-07T10:00:01Z",
                    "trigger": "NewRevision", "result": "Failed", "reason": "ApplyFailed"}]
            }
        }),
    );
    let ui = ui(&fake).await;
    for path in ["/", "/gitsyncs/shop/web"] {
        let page = ui.send(ui.get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(
            page.body.contains("&#60;script&#62;alert("),
            "{path}: {}",
            page.body
        );
        for raw in ["<script>alert", "<svg onload", "<img src=x"] {
            assert!(!page.body.contains(raw), "{path} carries {raw}");
        }
        assert!(!page.body.contains("href=\"javascript:"), "{path}");
    }
    let detail = ui
        .send(ui.get("/gitsyncs/shop/web").body(Body::empty()).unwrap())
        .await;
    assert!(detail.body.contains("href=\"https://grafana.example/d/1\""));
    assert!(detail.body.contains("not a web link"));
}

#[tokio::test]
async fn the_tree_finds_the_inventory_objects_by_their_labels() {
    let fake = FakeApiServer::new();
    fake.insert(
        "gitsyncs",
        json!({
            "apiVersion": "gitops.sealed-secrets-rs.io/v1alpha1", "kind": "GitSync",
            "metadata": {"name": "web", "namespace": "ops", "uid": "g1"},
            "spec": {"source": {"url": "https://git.example/repo.git"}},
            "status": {"inventory": {"entries": [
                {"id": "shop_settings__ConfigMap", "v": "v1"},
                {"id": "shop_web_apps_Deployment", "v": "v1"},
                {"id": "shop_gone__ConfigMap", "v": "v1"}
            ]}}
        }),
    );
    let labels = json!({"gitops.sealed-secrets-rs.io/name": "web",
                        "gitops.sealed-secrets-rs.io/namespace": "ops"});
    fake.insert(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": "shop", "uid": "c1", "labels": labels}}),
    );
    fake.insert(
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "labels": labels,
                            "generation": 1},
               "spec": {"replicas": 1},
               "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing",
                   "status": "False", "reason": "ProgressDeadlineExceeded", "message": "stuck"}]}}),
    );
    let ui = ui(&fake).await;
    let page = ui
        .send(ui.get("/gitsyncs/ops/web").body(Body::empty()).unwrap())
        .await;
    let node = |id: &str| {
        let start = page
            .body
            .find(&format!("data-node=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {}", page.body));
        page.body[start..]
            .split("</li>")
            .next()
            .unwrap()
            .to_string()
    };
    assert!(
        node("ConfigMap/shop/settings").contains("Healthy"),
        "{}",
        page.body
    );
    assert!(
        node("Deployment/shop/web").contains("Degraded"),
        "{}",
        page.body
    );
    assert!(node("ConfigMap/shop/gone").contains("Missing"));
}
