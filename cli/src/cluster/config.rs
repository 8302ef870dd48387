//! The cluster client's configuration: the context [`crate::kubeconfig`] resolved, handed to
//! kube, and kubectl's `--request-timeout`. Only the online modes come here (they run it on the
//! current-thread runtime they create); the offline modes read kubeconfig without it.

use std::time::Duration;

use anyhow::{Result, anyhow};
use kube::config::KubeConfigOptions;

use sealed_secrets_core::duration::parse_go_duration;

use crate::{args::Args, kubeconfig::select::resolve};

/// The kube client configuration for `args`. Retries are off: every answer (429 and 503
/// included) is reported as it comes, and `--request-timeout` bounds each request.
pub async fn client_config(args: &Args) -> Result<kube::Config> {
    let kubeconfig = resolve(args)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| anyhow!("invalid configuration: {}", super::error_chain(&e)))?;
    config.default_retry = false;
    Ok(config)
}

/// Parses `--request-timeout` as kubectl does: a Go duration (`1s`, `2m`, `1h30m`, `500ms`) or
/// a bare number of seconds; zero means no timeout.
pub fn parse_request_timeout(value: &str) -> Result<Option<Duration>> {
    let invalid = || {
        anyhow!(
            "invalid timeout value {value:?}: it must be a single integer in seconds, or an \
             integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)"
        )
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok((seconds > 0).then(|| Duration::from_secs(seconds)));
    }
    let duration = parse_go_duration(value).map_err(|_| invalid())?;
    Ok((!duration.is_zero()).then_some(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts_parse_like_kubectl() {
        assert_eq!(parse_request_timeout("0").unwrap(), None);
        assert_eq!(parse_request_timeout("").unwrap(), None);
        assert_eq!(parse_request_timeout("0s").unwrap(), None);
        assert_eq!(
            parse_request_timeout("5").unwrap(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_request_timeout("1s").unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse_request_timeout("1m30s").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_request_timeout("250ms").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_request_timeout("1.5h").unwrap(),
            Some(Duration::from_secs(5400))
        );
        for bad in ["1x", "s", "-1s", "1s2", "abc"] {
            assert!(parse_request_timeout(bad).is_err(), "{bad}");
        }
    }
}
