//! Reaching the sealed-secrets controller through the cluster's API server, exactly as upstream
//! kubeseal does (spec §6.5): the controller's Service is read for its first port's name, then
//! every call goes through the API server's service proxy,
//! `/api/v1/namespaces/<ns>/services/http:<service>:<port-name>/proxy/v1/...`, so the RBAC
//! users already have (`services` get, `services/proxy` get and create) keeps working.
//!
//! Only the online modes come here: the certificate when `--cert` is not given, `--validate`,
//! and `--re-encrypt` without `--recovery-private-key`. They create a current-thread tokio
//! runtime and a kube client; the offline modes never do.

pub(crate) mod config;
mod proxy;

pub use proxy::{Controller, Reply};

/// `error: cause: cause…`, each cause once (kube and hyper repeat their sources in `Display`).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    // kube wraps transport failures as `ServiceError: …`, which says nothing to a user.
    let first = err.to_string();
    let mut text = first
        .strip_prefix("ServiceError: ")
        .unwrap_or(&first)
        .to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !next.is_empty() && !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
