//! The rules that keep a local web server safe to run beside a browser that also visits
//! hostile sites: who may talk to it (a login token exchanged for a cookie), from where (the
//! Host header must name the bound address, against DNS rebinding), which writes count (a CSRF
//! token and a matching Origin on every POST), and what a page may load (a strict
//! Content-Security-Policy with no inline script).
//!
//! The decisions are pure functions over header values, tested below; `server.rs` applies them
//! to every request before a view runs.

use std::net::SocketAddr;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

/// Name of the session cookie, before the port: browsers send a cookie to every port of a
/// host, so two UIs on one machine (two clusters) each need their own name.
pub const COOKIE: &str = "kubeseal-ui";

/// Name of the form field (and header) that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The Content-Security-Policy of every response: only our own scripts, styles and fetches;
/// no inline script or style, no plugins, no framing, forms post only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The secrets of one UI process: the token printed in its URL, the session cookie's value
/// and the CSRF token. All three are 256 random bits, new for each start.
#[derive(Clone)]
pub struct Secrets {
    cookie: String,
    login: String,
    session: String,
    csrf: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// The random source failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw random bytes for the UI's login token")]
pub struct RandomError;

fn random_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl Secrets {
    /// New random secrets for the UI listening on `port`.
    pub fn generate(port: u16) -> Result<Secrets, RandomError> {
        Ok(Secrets {
            cookie: format!("{COOKIE}-{port}"),
            login: random_token()?,
            session: random_token()?,
            csrf: random_token()?,
        })
    }

    /// The token that goes into the printed URL.
    pub fn login_token(&self) -> &str {
        &self.login
    }

    /// The CSRF token pages embed in their forms.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether `token` is the login token (constant time).
    pub fn is_login_token(&self, token: &str) -> bool {
        equal(token, &self.login)
    }

    /// Whether `token` is the CSRF token (constant time).
    pub fn is_csrf_token(&self, token: &str) -> bool {
        equal(token, &self.csrf)
    }

    /// Whether a `Cookie` header carries this process's session.
    pub fn has_session(&self, cookie_header: Option<&str>) -> bool {
        cookie_header.is_some_and(|header| {
            header.split(';').any(|pair| {
                pair.trim()
                    .split_once('=')
                    .is_some_and(|(name, value)| name == self.cookie && equal(value, &self.session))
            })
        })
    }

    /// The `Set-Cookie` value that starts a session: not readable by scripts, never sent by
    /// another site's requests, gone when the browser closes.
    pub fn session_cookie(&self) -> String {
        format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            self.cookie, self.session
        )
    }
}

fn equal(a: &str, b: &str) -> bool {
    verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// The Host header values this server answers to: the bound address, and `localhost` with the
/// same port when bound to a loopback address. Anything else (a rebound DNS name) is refused.
pub fn allowed_hosts(bound: SocketAddr) -> Vec<String> {
    let mut hosts = vec![bound.to_string()];
    if bound.ip().is_loopback() {
        hosts.push(format!("localhost:{}", bound.port()));
    }
    hosts
}

/// Whether a request's Host header is one of `allowed` (compared case-insensitively, as host
/// names are).
pub fn host_allowed(host: Option<&str>, allowed: &[String]) -> bool {
    host.is_some_and(|host| allowed.iter().any(|a| a.eq_ignore_ascii_case(host)))
}

/// Whether a POST's Origin header is this server as the browser reached it (`http://` and the
/// request's own, already checked, Host). A missing Origin is refused: every browser that can
/// run this UI sends one on POST.
pub fn origin_allowed(origin: Option<&str>, host: &str) -> bool {
    origin.is_some_and(|origin| origin.eq_ignore_ascii_case(&format!("http://{host}")))
}

/// A URL that may become a link: `http` and `https` only, so a `javascript:` or `data:` value
/// from an annotation or a Git URL is shown as text and never runs.
pub fn safe_link(url: &str) -> Option<&str> {
    let trimmed = url.trim();
    let scheme = trimmed.split_once(':')?.0;
    let ok = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    // A scheme with control characters or spaces is not what it looks like.
    let clean = !trimmed.chars().any(|c| c.is_control() || c.is_whitespace());
    (ok && clean && trimmed.len() > scheme.len() + 3).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_compared_whole() {
        let a = Secrets::generate(1).unwrap();
        let b = Secrets::generate(1).unwrap();
        assert_ne!(a.login_token(), b.login_token());
        assert_ne!(a.login_token(), a.csrf_token());
        assert!(a.is_login_token(a.login_token()));
        assert!(!a.is_login_token(b.login_token()));
        assert!(!a.is_login_token(&a.login_token()[..10]));
        assert!(!a.is_login_token(""));
        assert!(a.is_csrf_token(a.csrf_token()));
        assert!(!a.is_csrf_token(a.login_token()));
        assert_eq!(format!("{a:?}"), "Secrets(..)");
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict() {
        let s = Secrets::generate(8123).unwrap();
        let cookie = s.session_cookie();
        assert!(cookie.starts_with("kubeseal-ui-8123="), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let value = cookie.split(';').next().unwrap();
        assert!(s.has_session(Some(value)));
        assert!(s.has_session(Some(&format!("other=1; {value}; x=y"))));
        assert!(!s.has_session(Some("kubeseal-ui=wrong")));
        assert!(!s.has_session(Some(&value.replace("kubeseal-ui", "other"))));
        assert!(!s.has_session(None));
        let other = Secrets::generate(8123).unwrap();
        assert!(!other.has_session(Some(value)));
        let next_port = Secrets::generate(8124).unwrap();
        assert!(!next_port.has_session(Some(value)), "another UI's cookie");
    }

    #[test]
    fn only_the_bound_host_is_answered() {
        let allowed = allowed_hosts("127.0.0.1:8123".parse().unwrap());
        assert!(host_allowed(Some("127.0.0.1:8123"), &allowed));
        assert!(host_allowed(Some("LOCALHOST:8123"), &allowed));
        assert!(!host_allowed(Some("evil.example:8123"), &allowed));
        assert!(!host_allowed(Some("127.0.0.1:8124"), &allowed));
        assert!(!host_allowed(Some("127.0.0.1"), &allowed));
        assert!(!host_allowed(None, &allowed));
        let wide = allowed_hosts("10.1.2.3:80".parse().unwrap());
        assert_eq!(wide, vec!["10.1.2.3:80".to_string()]);
        assert!(!host_allowed(Some("localhost:80"), &wide));
    }

    #[test]
    fn posts_need_our_own_origin() {
        assert!(origin_allowed(
            Some("http://127.0.0.1:8123"),
            "127.0.0.1:8123"
        ));
        assert!(!origin_allowed(
            Some("http://evil.example"),
            "127.0.0.1:8123"
        ));
        assert!(!origin_allowed(Some("null"), "127.0.0.1:8123"));
        assert!(!origin_allowed(
            Some("https://127.0.0.1:8123"),
            "127.0.0.1:8123"
        ));
        assert!(!origin_allowed(None, "127.0.0.1:8123"));
    }

    #[test]
    fn links_are_http_or_https_only() {
        assert_eq!(
            safe_link("https://git.example/repo"),
            Some("https://git.example/repo")
        );
        assert_eq!(safe_link(" HTTP://x.example "), Some("HTTP://x.example"));
        assert_eq!(safe_link("javascript:alert(1)"), None);
        assert_eq!(safe_link("JaVaScRiPt:alert(1)"), None);
        assert_eq!(safe_link("java\tscript:alert(1)"), None);
        assert_eq!(safe_link("data:text/html,<script>"), None);
        assert_eq!(safe_link("vbscript:x"), None);
        assert_eq!(safe_link("git@github.com:org/repo.git"), None);
        assert_eq!(safe_link("ssh://git@host/repo"), None);
        assert_eq!(safe_link("https://a b"), None);
        assert_eq!(safe_link("https:"), None);
        assert_eq!(safe_link("no scheme"), None);
    }

    #[test]
    fn the_policy_allows_no_inline_script() {
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    }
}
