//! The controller's HTTP API through the API server's service proxy, with upstream's error
//! texts and a hint for each failure users hit: no Service, no permission, controller down,
//! wrong port, timeouts.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use http::{Method, Request, header};
use kube::client::Body;
use serde_json::Value;

use super::{config, error_chain};
use crate::args::Args;

/// The hint upstream appends when the controller's Service cannot be read.
const SERVICE_HINT: &str = "Please, use the flag --controller-name and --controller-namespace to \
     set up the name and namespace of the sealed secrets controller";

/// At most this much of an unexpected response body is quoted in an error.
const QUOTED_BODY_LIMIT: usize = 200;

/// An answer that came back through the proxy (any status).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The message of a Kubernetes `Status` body (what the API server itself answers with).
    fn status_message(&self) -> Option<String> {
        let value: Value = serde_json::from_slice(&self.body).ok()?;
        if value.get("kind").and_then(Value::as_str) != Some("Status") {
            return None;
        }
        value
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    }

    /// The body for quoting in an error: trimmed, bounded, `unknown` when empty (as client-go).
    fn quoted_body(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.is_empty() {
            return "unknown".into();
        }
        let mut end = text.len().min(QUOTED_BODY_LIMIT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if end < text.len() {
            format!("{}…", &text[..end])
        } else {
            text.to_string()
        }
    }

    /// client-go's text for a failed request: the `Status` message when the body is one, else
    /// its generic text for the code, followed by `(<verb> <resource> <name>)`.
    pub fn describe(&self, verb: &str, resource: &str, name: &str) -> String {
        if let Some(message) = self.status_message() {
            return message;
        }
        let generic = match self.status {
            400 => "the server rejected our request for an unknown reason".to_string(),
            401 => "the server has asked for the client to provide credentials".to_string(),
            403 => format!("forbidden: {}", self.quoted_body()),
            404 => "the server could not find the requested resource".to_string(),
            409 => "the server reported a conflict".to_string(),
            429 => "the server has received too many requests and has asked us to try again later"
                .to_string(),
            503 => "the server is currently unable to handle the request".to_string(),
            504 => "the server was unable to return a response in the time allotted, but may \
                    still be processing the request"
                .to_string(),
            500..=599 => format!(
                "an error on the server (\"{}\") has prevented the request from succeeding",
                self.quoted_body()
            ),
            code => format!(
                "the server responded with the status code {code} but did not return more \
                 information"
            ),
        };
        format!("{generic} ({verb} {resource} {name})")
    }

    /// Whether the body is a Kubernetes `Status`, i.e. the API server (not the controller)
    /// answered.
    pub fn answered_by_api_server(&self) -> bool {
        self.status_message().is_some()
    }
}

/// A connection to the sealed-secrets controller through the API server.
pub struct Controller {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    server: String,
    namespace: String,
    service: String,
    port_name: String,
    timeout: Option<Duration>,
    timeout_text: String,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .field("service", &self.service)
            .field("port_name", &self.port_name)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes a path segment (Go's `url.PathEscape` keeps `:` and `@`).
fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What to add to a failed proxied call so the user knows what to fix. `verb` is the RBAC
/// verb of the call (`get` for the certificate, `create` for POSTs).
fn hint(reply: &Reply, ns: &str, svc: &str, port: &str, verb: &str) -> Option<String> {
    // The API server's texts when it cannot reach any endpoint (whatever the code).
    let text = String::from_utf8_lossy(&reply.body);
    let unreachable = reply.status >= 500
        && (text.contains("error trying to reach service")
            || text.contains("no endpoints available"));
    match reply.status {
        _ if unreachable => Some(format!(
            "the API server cannot reach the sealed-secrets controller behind service \
             \"{ns}/{svc}\" port \"{port}\": is the controller running and ready?"
        )),
        401 => Some(
            "the API server did not accept kubeseal's credentials; check the kubeconfig's user"
                .into(),
        ),
        403 => Some(format!(
            "kubeseal needs RBAC permission to {verb} \"services/proxy\" for service \
             \"{svc}\" in namespace \"{ns}\" (get for the certificate, create for --validate \
             and --re-encrypt)"
        )),
        502..=504 => Some(format!(
            "the API server cannot reach the sealed-secrets controller behind service \
             \"{ns}/{svc}\" port \"{port}\": is the controller running and ready?"
        )),
        404 => Some(format!(
            "service \"{ns}/{svc}\" port \"{port}\" does not answer like a sealed-secrets \
             controller; check --controller-name and --controller-namespace"
        )),
        _ => None,
    }
}

impl Controller {
    /// Loads the client configuration, starts a current-thread runtime, and reads the
    /// controller's Service for its port name (upstream's `getServicePortName`). Configuration
    /// errors are prefixed with `what` (e.g. `cannot fetch certificate`); a failure to read the
    /// Service has upstream's own text.
    pub fn connect(args: &Args, what: &str) -> Result<Controller> {
        Self::start(args)
            .map_err(|e| anyhow!("{what}: {e:#}"))?
            .with_port_name()
    }

    fn start(args: &Args) -> Result<Controller> {
        let timeout = config::parse_request_timeout(&args.kube.request_timeout)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow!("cannot start the cluster client: {e}"))?;
        let (client, server) = runtime.block_on(async {
            let config = config::client_config(args).await?;
            let server = config.cluster_url.to_string();
            let client = kube::Client::try_from(config)
                .map_err(|e| anyhow!("cannot create the cluster client: {}", error_chain(&e)))?;
            Ok::<_, anyhow::Error>((client, server))
        })?;
        Ok(Controller {
            runtime,
            client,
            server: server.trim_end_matches('/').to_string(),
            namespace: args.controller_namespace.clone(),
            service: args.controller_name.clone(),
            port_name: String::new(),
            timeout,
            timeout_text: args.kube.request_timeout.trim().to_string(),
        })
    }

    fn with_port_name(mut self) -> Result<Controller> {
        self.port_name = self.service_port_name()?;
        Ok(self)
    }

    /// `http:<service>:<port-name>` (Go's `net.JoinSchemeNamePort`; an unnamed port gives
    /// `http:<service>:`).
    pub fn proxy_name(&self) -> String {
        format!("http:{}:{}", self.service, self.port_name)
    }

    fn proxy_path(&self, suffix: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/services/{}/proxy{suffix}",
            escape_segment(&self.namespace),
            escape_segment(&self.proxy_name())
        )
    }

    fn service_port_name(&self) -> Result<String> {
        let path = format!(
            "/api/v1/namespaces/{}/services/{}",
            escape_segment(&self.namespace),
            escape_segment(&self.service)
        );
        let fail =
            |err: String| anyhow!("cannot get sealed secret service: {err}.\n{SERVICE_HINT}");
        let reply = self
            .request(Method::GET, &path, "application/json, */*", None)
            .map_err(fail)?;
        if !reply.is_success() {
            return Err(fail(reply.describe("get", "services", &self.service)));
        }
        let service: Value = serde_json::from_slice(&reply.body)
            .map_err(|e| fail(format!("invalid Service object from the API server: {e}")))?;
        let Some(first) = service["spec"]["ports"].as_array().and_then(|p| p.first()) else {
            bail!(
                "sealed secret service \"{}/{}\" has no ports: kubeseal reaches the controller \
                 through the first port of its Service.\n{SERVICE_HINT}",
                self.namespace,
                self.service
            );
        };
        Ok(first["name"].as_str().unwrap_or("").to_string())
    }

    /// Sends one request to the API server, bounded by `--request-timeout`. The error is the
    /// transport failure, in Go's `Get "<url>": <cause>` form.
    fn request(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.server);
        let go_method = match method {
            Method::GET => "Get",
            Method::POST => "Post",
            _ => method.as_str(),
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::ACCEPT, accept);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Body::from(body.unwrap_or_default()))
            .map_err(|e| format!("{go_method} \"{url}\": {e}"))?;
        let call = async {
            let response = self.client.send(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect_bytes().await?;
            Ok::<_, kube::Error>((parts, bytes))
        };
        let result = self.runtime.block_on(async {
            match self.timeout {
                Some(limit) => tokio::time::timeout(limit, call).await.ok(),
                None => Some(call.await),
            }
        });
        let Some(result) = result else {
            return Err(format!(
                "{go_method} \"{url}\": request timed out after {} (--request-timeout)",
                self.timeout_text
            ));
        };
        let (parts, bytes) =
            result.map_err(|e| format!("{go_method} \"{url}\": {}", error_chain(&e)))?;
        Ok(Reply {
            status: parts.status.as_u16(),
            retry_after: parts
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: bytes.to_vec(),
        })
    }

    /// `describe` plus the hint, for a failed proxied call.
    pub fn failure(&self, reply: &Reply, method: &str, verb: &str) -> String {
        let text = reply.describe(method, "services", &self.proxy_name());
        match hint(reply, &self.namespace, &self.service, &self.port_name, verb) {
            Some(hint) => format!("{text}; {hint}"),
            None => text,
        }
    }

    /// GET `/v1/cert.pem` through the proxy: the controller's current certificate.
    pub fn fetch_cert(&self) -> Result<Vec<u8>> {
        let path = self.proxy_path("/v1/cert.pem");
        let reply = self
            .request(Method::GET, &path, "application/x-pem-file, */*", None)
            .map_err(|e| anyhow!("cannot fetch certificate: {e}"))?;
        if !reply.is_success() {
            bail!(
                "cannot fetch certificate: {}",
                self.failure(&reply, "get", "get")
            );
        }
        Ok(reply.body)
    }

    /// POSTs `body` (JSON) to the controller's `suffix` (`/v1/verify`, `/v1/rotate`) through
    /// the proxy. Any status comes back as a [`Reply`]; the error is a transport failure.
    pub fn post(&self, suffix: &str, body: Vec<u8>) -> Result<Reply, String> {
        let path = self.proxy_path(suffix);
        self.request(Method::POST, &path, "application/json, */*", Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn failures_read_like_client_go() {
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services \"x\" not found","reason":"NotFound","code":404}"#;
        assert_eq!(
            reply(404, status).describe("get", "services", "x"),
            "services \"x\" not found"
        );
        assert!(reply(404, status).answered_by_api_server());
        assert_eq!(
            reply(404, "404 page not found\n").describe("post", "services", "http:s:http"),
            "the server could not find the requested resource (post services http:s:http)"
        );
        assert_eq!(
            reply(500, "").describe("post", "services", "http:s:http"),
            "an error on the server (\"unknown\") has prevented the request from succeeding \
             (post services http:s:http)"
        );
        let long = "x".repeat(1000);
        assert!(reply(500, &long).describe("get", "a", "b").len() < 400);
        assert_eq!(
            reply(409, "").describe("post", "services", "n"),
            "the server reported a conflict (post services n)"
        );
    }

    #[test]
    fn hints_name_what_to_fix() {
        let hint = |reply: &Reply, verb| hint(reply, "kube-system", "ss", "http", verb);
        let forbidden = hint(&reply(403, "{}"), "create").unwrap();
        assert!(
            forbidden.contains("permission to create \"services/proxy\""),
            "{forbidden}"
        );
        assert!(
            forbidden.contains("namespace \"kube-system\""),
            "{forbidden}"
        );
        let plain = reply(
            500,
            "error trying to reach service: dial tcp 10.0.0.1:80: refused",
        );
        assert!(
            hint(&plain, "get")
                .unwrap()
                .contains("is the controller running")
        );
        assert!(
            hint(&reply(503, ""), "get")
                .unwrap()
                .contains("is the controller running")
        );
        assert!(
            hint(&reply(404, ""), "get")
                .unwrap()
                .contains("--controller-name")
        );
        assert_eq!(hint(&reply(500, ""), "get"), None);
    }

    #[test]
    fn segments_keep_colons_and_escape_the_rest() {
        assert_eq!(
            escape_segment("http:sealed-secrets-controller:http"),
            "http:sealed-secrets-controller:http"
        );
        assert_eq!(escape_segment("a b/c"), "a%20b%2Fc");
    }
}
