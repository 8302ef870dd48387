//! The HTTP side: the routes, and the guard every request passes before a page runs (Host,
//! session, Origin on writes) and the headers every response carries (CSP, no caching, no
//! framing). Pages come from [`crate::pages`]; this module only maps requests onto them.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

use crate::{
    App,
    pages::{self, Page},
    security::{self, CONTENT_SECURITY_POLICY},
    views::{overview::Filter, seal::SealForm, tree::TreeQuery},
};

/// The largest body a POST may have: a Secret is at most 1 MiB, and URL encoding can triple it.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The header the page script sends to get the main content alone.
const PARTIAL: &str = "x-kubeseal-ui";

const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// The router of one UI process.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login))
        .route("/gitsyncs/{namespace}/{name}", get(gitsync))
        .route("/gitsyncs/{namespace}/{name}/drift", get(drift))
        .route(
            "/gitsyncs/{namespace}/{name}/actions",
            axum::routing::post(action),
        )
        .route("/sealedsecrets", get(sealed))
        .route("/seal", get(seal_form).post(seal))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Applied to every request: Host first (DNS rebinding), then the session (except the login
/// and the static assets), then Origin on every write; and the security headers on every
/// answer, refusals included.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let mut response = check(&app, request, next).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Not `no-referrer`: with it, browsers send `Origin: null` on our own form posts, which
    // the Origin check must refuse. `same-origin` sends nothing to other sites.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    response
}

async fn check(app: &App, request: Request, next: Next) -> Response {
    let (host, cookie, origin, public, write) = {
        let header_text = |name: header::HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let path = request.uri().path();
        (
            header_text(header::HOST),
            header_text(header::COOKIE),
            header_text(header::ORIGIN),
            path == "/login" || path.starts_with("/assets/"),
            request.method() != Method::GET && request.method() != Method::HEAD,
        )
    };
    if !security::host_allowed(host.as_deref(), &app.allowed_hosts) {
        return plain(
            StatusCode::FORBIDDEN,
            "403 Forbidden: this server answers only requests addressed to the address it \
             printed when it started",
        );
    }
    if !public && !app.secrets.has_session(cookie.as_deref()) {
        return plain(
            StatusCode::UNAUTHORIZED,
            "401 Unauthorized: open the URL that `kubeseal ui` printed (it carries the login \
             token), in this browser",
        );
    }
    if write && !security::origin_allowed(origin.as_deref(), host.as_deref().unwrap_or("")) {
        return plain(
            StatusCode::FORBIDDEN,
            "403 Forbidden: a change must come from a page of this server (Origin differs)",
        );
    }
    next.run(request).await
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Wraps a page in the layout, or sends its content alone to the live-update script.
fn respond(app: &App, headers: &HeaderMap, page: Page) -> Response {
    #[derive(askama::Template)]
    #[template(path = "layout.html")]
    struct Layout<'a> {
        title: &'a str,
        active: &'a str,
        context: &'a str,
        server: &'a str,
        live: u32,
        content: &'a str,
    }
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::OK);
    let body = if headers.contains_key(PARTIAL) {
        page.content
    } else {
        askama::Template::render(&Layout {
            title: &page.title,
            active: page.active,
            context: &app.settings.context,
            server: &app.settings.server,
            live: page.live,
            content: &page.content,
        })
        .unwrap_or_else(|e| format!("cannot render the page: {e}"))
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    #[serde(default)]
    token: String,
}

/// Exchanges the printed token for the session cookie and sends the browser to a clean URL.
async fn login(State(app): State<Arc<App>>, Query(query): Query<LoginQuery>) -> Response {
    if !app.secrets.is_login_token(&query.token) {
        return plain(
            StatusCode::UNAUTHORIZED,
            "401 Unauthorized: this login link is not the one `kubeseal ui` printed",
        );
    }
    let mut response = Redirect::to("/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&app.secrets.session_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn overview(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    let page = pages::overview(&app, filter).await;
    respond(&app, &headers, page)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct GitSyncQuery {
    problems: bool,
    kind: String,
    page: usize,
    done: String,
}

async fn gitsync(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<GitSyncQuery>,
) -> Response {
    let tree = TreeQuery {
        problems: query.problems,
        kind: query.kind,
        page: query.page,
    };
    let page = pages::gitsync_page(&app, &namespace, &name, tree, &query.done).await;
    respond(&app, &headers, page)
}

async fn drift(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let page = pages::drift_page(&app, &namespace, &name).await;
    respond(&app, &headers, page)
}

fn csrf_refused(app: &App, headers: &HeaderMap) -> Response {
    respond(
        app,
        headers,
        pages::message(
            403,
            "Refused",
            "The form's CSRF token is missing or wrong: reload the page and try again.",
        ),
    )
}

async fn action(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut csrf = String::new();
    let mut action = String::new();
    for (field, value) in form_urlencoded::parse(&body) {
        match field.as_ref() {
            security::CSRF_FIELD => csrf = value.into_owned(),
            "action" => action = value.into_owned(),
            _ => {}
        }
    }
    if !app.secrets.is_csrf_token(&csrf) {
        return csrf_refused(&app, &headers);
    }
    match pages::act(&app, &namespace, &name, &action).await {
        Ok(()) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("done", &action)
                .finish();
            let path = format!(
                "/gitsyncs/{}/{}?{query}",
                form_urlencoded::byte_serialize(namespace.as_bytes()).collect::<String>(),
                form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            );
            Redirect::to(&path).into_response()
        }
        Err(page) => respond(&app, &headers, page),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct TextQuery {
    q: String,
}

async fn sealed(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<TextQuery>,
) -> Response {
    let page = pages::sealed_page(&app, query.q).await;
    respond(&app, &headers, page)
}

async fn seal_form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let page = pages::seal_page(&app, None, None);
    respond(&app, &headers, page)
}

async fn seal(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = SealForm::parse(&body);
    drop(body);
    if !app.secrets.is_csrf_token(&form.csrf) {
        return csrf_refused(&app, &headers);
    }
    let page = pages::seal_post(&app, &form).await;
    respond(&app, &headers, page)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from(body),
    )
        .into_response()
}

async fn not_found(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    respond(
        &app,
        &headers,
        pages::message(404, "Not found", "There is no such page."),
    )
}
