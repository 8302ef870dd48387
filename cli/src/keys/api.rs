//! The API calls of `kubeseal keys` and their error texts: reading key Secrets and
//! SealedSecrets, relabelling with an update bound to the resourceVersion read, and annotating
//! after a backup. Plain JSON requests through the kube client (with the user's kubeconfig and
//! kubectl's connection flags), bounded by `--request-timeout`.

use std::time::Duration;

use anyhow::{Result, anyhow};
use http::{Method, Request, header};
use jiff::Timestamp;
use serde_json::Value;

use sealed_secrets_core::key_secret::KeySecretParts;

use super::model::{Coverage, Dependant, KEY_LABEL, KeySecret};
use crate::{
    args::Args,
    cluster::{config, error_chain},
};

/// Items per list page.
const PAGE: usize = 500;

/// A failed API call: the HTTP status when the API server answered, and the text.
#[derive(Debug)]
pub struct CallError {
    /// Status code, `None` for transport failures and timeouts.
    pub code: Option<u16>,
    /// What went wrong (the API server's message, or the transport's).
    pub message: String,
}

impl CallError {
    fn is(&self, code: u16) -> bool {
        self.code == Some(code)
    }
}

/// The cluster, reached as kubectl would.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    timeout: Option<Duration>,
    /// The kubeconfig context's namespace (`-n` wins).
    pub current_namespace: String,
    /// Where key Secrets live.
    pub key_namespace: String,
}

/// One key Secret as read: the object as the API server returned it (for updates and
/// backups, so no field is lost in a round trip), and the reduced view when its certificate is
/// usable.
pub struct ReadKey {
    /// Secret name.
    pub name: String,
    /// The object, as returned.
    pub object: Value,
    /// What the decisions need, or why the Secret cannot be used.
    pub info: Result<KeySecret, String>,
}

impl std::fmt::Debug for ReadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the object: it holds the private key.
        f.debug_struct("ReadKey")
            .field("name", &self.name)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn percent(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Cluster {
    /// Connects with the flags of `args` (kubeconfig, context, server, token, timeout…).
    pub fn connect(args: &Args) -> Result<Self> {
        let timeout = config::parse_request_timeout(&args.kube.request_timeout)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow!("cannot start the cluster client: {e}"))?;
        let client = runtime.block_on(async {
            let config = config::client_config(args).await?;
            kube::Client::try_from(config)
                .map_err(|e| anyhow!("cannot create the cluster client: {}", error_chain(&e)))
        })?;
        let current_namespace = args
            .kube
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| client.default_namespace().to_string());
        Ok(Self {
            runtime,
            client,
            timeout,
            current_namespace,
            key_namespace: args.controller_namespace.clone(),
        })
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value, CallError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/json");
        let bytes = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request = builder.body(bytes).map_err(|e| CallError {
            code: None,
            message: e.to_string(),
        })?;
        let call = self.client.request::<Value>(request);
        let result = self.runtime.block_on(async {
            match self.timeout {
                Some(limit) => tokio::time::timeout(limit, call).await.ok(),
                None => Some(call.await),
            }
        });
        match result {
            None => Err(CallError {
                code: None,
                message: "request timed out (--request-timeout)".into(),
            }),
            Some(Ok(value)) => Ok(value),
            Some(Err(kube::Error::Api(status))) => Err(CallError {
                code: Some(status.code),
                message: if status.message.is_empty() {
                    format!("the server answered {}", status.code)
                } else {
                    status.message.clone()
                },
            }),
            Some(Err(other)) => Err(CallError {
                code: None,
                message: format!(
                    "{}; is the API server reachable (check --kubeconfig, --context, --server)?",
                    error_chain(&other)
                ),
            }),
        }
    }

    /// Every item of a list, page by page.
    fn list(&self, path: &str, selector: Option<&str>) -> Result<Vec<Value>, CallError> {
        let mut items = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = format!("limit={PAGE}");
            if let Some(selector) = selector {
                query.push_str(&format!("&labelSelector={}", percent(selector)));
            }
            if !token.is_empty() {
                query.push_str(&format!("&continue={}", percent(&token)));
            }
            let page = self.call(Method::GET, &format!("{path}?{query}"), None)?;
            if let Some(list) = page["items"].as_array() {
                items.extend(list.iter().cloned());
            }
            token = page["metadata"]["continue"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if token.is_empty() {
                return Ok(items);
            }
        }
    }

    fn secrets_path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/secrets",
            percent(&self.key_namespace)
        )
    }

    /// Every key Secret of the controller namespace (any label value).
    pub fn key_secrets(&self) -> Result<Vec<ReadKey>> {
        let items = self
            .list(&self.secrets_path(), Some(KEY_LABEL))
            .map_err(|e| {
                let mut text = format!(
                    "cannot list key Secrets in namespace {:?}: {}",
                    self.key_namespace, e.message
                );
                if e.is(403) {
                    text.push_str(&format!(
                        "; kubeseal keys needs RBAC permission to list (and, to retire, restore \
                         or back up: update and patch) \"secrets\" in namespace {:?} \
                         (--controller-namespace)",
                        self.key_namespace
                    ));
                }
                anyhow!(text)
            })?;
        Ok(items
            .into_iter()
            .map(|object| ReadKey {
                name: object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                info: reduce(&object),
                object,
            })
            .collect())
    }

    /// Every SealedSecret the user may list: cluster-wide; on 403 each listable namespace; if
    /// that is forbidden too, the current namespace. Says on stderr when the count is partial.
    pub fn dependants(&self) -> Result<(Vec<Dependant>, Coverage)> {
        const ALL: &str = "/apis/bitnami.com/v1alpha1/sealedsecrets";
        match self.list(ALL, None) {
            Ok(items) => return Ok((items.iter().map(dependant).collect(), Coverage::Cluster)),
            Err(e) if e.is(404) => {
                eprintln!(
                    "note: the API server does not serve SealedSecrets (is the CRD installed?); \
                     counting none"
                );
                return Ok((Vec::new(), Coverage::Cluster));
            }
            Err(e) if e.is(403) => {}
            Err(e) => return Err(anyhow!("cannot list SealedSecrets: {}", e.message)),
        }
        let in_namespace = |ns: &str| {
            self.list(
                &format!(
                    "/apis/bitnami.com/v1alpha1/namespaces/{}/sealedsecrets",
                    percent(ns)
                ),
                None,
            )
        };
        match self.list("/api/v1/namespaces", None) {
            Ok(namespaces) => {
                let mut found = Vec::new();
                let mut skipped = Vec::new();
                for ns in namespaces {
                    let name = ns["metadata"]["name"].as_str().unwrap_or("").to_string();
                    match in_namespace(&name) {
                        Ok(items) => found.extend(items.iter().map(dependant)),
                        Err(e) if e.is(403) || e.is(404) => skipped.push(name),
                        Err(e) => {
                            return Err(anyhow!(
                                "cannot list SealedSecrets in namespace {name:?}: {}",
                                e.message
                            ));
                        }
                    }
                }
                if !skipped.is_empty() {
                    eprintln!(
                        "note: counts leave out namespaces where listing SealedSecrets is \
                         forbidden: {}",
                        skipped.join(", ")
                    );
                }
                Ok((found, Coverage::Namespaces { skipped }))
            }
            Err(e) if e.is(403) => {
                let ns = self.current_namespace.clone();
                let items = in_namespace(&ns).map_err(|e| {
                    anyhow!(
                        "cannot list SealedSecrets: forbidden cluster-wide, and listing \
                         namespaces and namespace {ns:?} failed too ({}); kubeseal keys needs \
                         RBAC permission to list \"sealedsecrets\"",
                        e.message
                    )
                })?;
                eprintln!(
                    "note: listing SealedSecrets cluster-wide and listing namespaces are \
                     forbidden; counts cover only namespace {ns:?}"
                );
                Ok((
                    items.iter().map(dependant).collect(),
                    Coverage::CurrentNamespace { namespace: ns },
                ))
            }
            Err(e) => Err(anyhow!("cannot list namespaces: {}", e.message)),
        }
    }

    /// Replaces a key Secret with `object`, which carries the resourceVersion read: the API
    /// server refuses it (409) when the Secret changed since.
    pub fn update_key_secret(&self, object: &Value) -> Result<()> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let body = serde_json::to_vec(object)?;
        self.call(
            Method::PUT,
            &format!("{}/{}", self.secrets_path(), percent(&name)),
            Some(("application/json", body)),
        )
        .map(|_| ())
        .map_err(|e| self.write_error(&name, "update", &e))
    }

    /// Sets one annotation on a key Secret, with the resourceVersion read as precondition.
    pub fn annotate_key_secret(
        &self,
        name: &str,
        resource_version: &str,
        annotation: &str,
        value: &str,
    ) -> Result<()> {
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": resource_version,
            "annotations": {annotation: value},
        }});
        self.call(
            Method::PATCH,
            &format!("{}/{}", self.secrets_path(), percent(name)),
            Some(("application/merge-patch+json", serde_json::to_vec(&patch)?)),
        )
        .map(|_| ())
        .map_err(|e| self.write_error(name, "patch", &e))
    }

    fn write_error(&self, name: &str, verb: &str, e: &CallError) -> anyhow::Error {
        let place = format!("key Secret {}/{name}", self.key_namespace);
        if e.is(409) {
            anyhow!(
                "{place} changed since kubeseal read it ({}); nothing was overwritten, run the \
                 command again",
                e.message
            )
        } else if e.is(403) {
            anyhow!(
                "cannot {verb} {place}: {}; this needs RBAC permission to {verb} \"secrets\" in \
                 namespace {:?}",
                e.message,
                self.key_namespace
            )
        } else {
            anyhow!("cannot {verb} {place}: {}", e.message)
        }
    }
}

/// The parts of a key Secret the decisions need; the reason when the controller could not use
/// it (parsed by [`KeySecretParts::entry`], as the controller does, so both agree on which key
/// seals; its errors never quote the Secret's data).
fn reduce(secret: &Value) -> Result<KeySecret, String> {
    let parts = KeySecretParts::from_json(secret);
    let cert = parts.entry().map_err(|e| e.to_string())?.cert.cert;
    Ok(KeySecret {
        name: parts.name().to_string(),
        created: parts.created(),
        label: parts.label().unwrap_or("").to_string(),
        fingerprint: cert.public_key().fingerprint(),
        not_before: cert.not_before(),
        not_after: cert.not_after(),
    })
}

/// What one listed SealedSecret says (read leniently: a malformed status counts as none).
fn dependant(item: &Value) -> Dependant {
    let last_synced = item["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Synced")
        .and_then(|c| c["lastUpdateTime"].as_str())
        .and_then(|t| t.parse::<Timestamp>().ok());
    Dependant {
        namespace: item["metadata"]["namespace"].as_str().unwrap_or("").into(),
        name: item["metadata"]["name"].as_str().unwrap_or("").into(),
        fingerprint: item["status"]["keyFingerprint"]
            .as_str()
            .filter(|f| !f.is_empty())
            .map(str::to_string),
        last_synced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dependants_are_read_leniently() {
        let full = json!({"metadata": {"namespace": "shop", "name": "db"},
            "status": {"keyFingerprint": "SHA256:a", "conditions": [
                {"type": "Other", "lastUpdateTime": "2020-01-01T00:00:00Z"},
                {"type": "Synced", "status": "True", "lastUpdateTime": "2026-01-02T03:04:05Z"}]}});
        let d = dependant(&full);
        assert_eq!(d.fingerprint.as_deref(), Some("SHA256:a"));
        assert_eq!(d.last_synced, Some("2026-01-02T03:04:05Z".parse().unwrap()));
        let bare = dependant(&json!({"metadata": {"name": "x"}, "status": {"conditions": "junk"}}));
        assert_eq!(bare.fingerprint, None);
        assert_eq!(bare.last_synced, None);
    }

    #[test]
    fn key_secrets_the_controller_cannot_use_are_left_out() {
        use base64::Engine as _;
        use sealed_secrets_core::keys::generate_key_pair;
        let pair = || {
            generate_key_pair(
                2048,
                "",
                "2026-01-01T00:00:00Z".parse().unwrap(),
                jiff::SignedDuration::from_hours(24),
            )
            .unwrap()
        };
        let (own, other) = (pair(), pair());
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let secret = |key: &sealed_secrets_core::keys::PrivateKey| {
            json!({"metadata": {"name": "k", "labels": {KEY_LABEL: "active"}},
                "data": {"tls.key": b64(key.to_pkcs1_pem().unwrap().as_bytes()),
                         "tls.crt": b64(own.cert_pem.as_bytes())}})
        };
        let usable = reduce(&secret(&own.key)).unwrap();
        assert_eq!(usable.fingerprint, own.key.fingerprint());
        assert_eq!(usable.label, "active");
        // A certificate whose private key is another one: the controller skips it, so must we.
        let reason = reduce(&secret(&other.key)).unwrap_err();
        assert!(reason.contains("does not match"), "{reason}");
        let mut no_key = secret(&own.key);
        no_key["data"]["tls.key"] = json!(null);
        assert_eq!(
            reduce(&no_key).unwrap_err(),
            "tls.key: missing from the Secret"
        );
    }

    #[test]
    fn selectors_and_tokens_are_escaped() {
        assert_eq!(
            percent(KEY_LABEL),
            "sealedsecrets.bitnami.com%2Fsealed-secrets-key"
        );
        assert_eq!(percent("a=b c"), "a%3Db%20c");
    }
}
