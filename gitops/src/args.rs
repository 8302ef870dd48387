//! Flags of `gitops-controller`, each with a `SEALED_SECRETS_GITOPS_<FLAG>` environment
//! variable (the command line wins).

use std::{path::PathBuf, time::Duration};

use clap::{ArgAction, Parser, builder::BoolishValueParser};

/// Parses a Go duration (`3m`, `90s`, `1h30m`); zero is refused (a deadline of zero would
/// fail every sync).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration =
        sealed_secrets_core::duration::parse_go_duration(text.trim()).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

/// All flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gitops-controller",
    disable_version_flag = true,
    max_term_width = 100,
    about = "Syncs GitSync resources (gitops.sealed-secrets-rs.io) into the cluster, each as its own ServiceAccount."
)]
pub struct Args {
    /// Print the version and exit.
    #[arg(long, action = ArgAction::SetTrue)]
    pub version: bool,
    /// Path to a kubeconfig (default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long, env = "SEALED_SECRETS_GITOPS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of the health server (`/healthz`).
    #[arg(
        long,
        env = "SEALED_SECRETS_GITOPS_LISTEN_ADDR",
        default_value = ":8080"
    )]
    pub listen_addr: String,
    /// Address of the metrics server (`/metrics`).
    #[arg(
        long,
        env = "SEALED_SECRETS_GITOPS_LISTEN_METRICS_ADDR",
        default_value = ":8081"
    )]
    pub listen_metrics_addr: String,
    /// Log level: DEBUG, INFO, WARN, ERROR.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// Log format: text or json.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Comma-separated namespaces whose GitSyncs are synced (default: all).
    #[arg(
        long,
        env = "SEALED_SECRETS_GITOPS_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub watch_namespaces: Vec<String>,
    /// ServiceAccount (of the GitSync's namespace) to impersonate when a GitSync sets no
    /// spec.serviceAccountName (Flux's multi-tenancy lockdown). Without it such GitSyncs are
    /// refused.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_DEFAULT_SERVICE_ACCOUNT")]
    pub default_service_account: Option<String>,
    /// Sync GitSyncs that name no ServiceAccount (and get no default) with this controller's
    /// own permissions. Only for trusted, single-tenant clusters.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_ALLOW_CONTROLLER_IDENTITY", action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub allow_controller_identity: bool,
    /// How many GitSyncs sync at once.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_CONCURRENT", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent: u16,
    /// Deadline of a fetch (each git command is killed after it too).
    #[arg(long, env = "SEALED_SECRETS_GITOPS_FETCH_TIMEOUT", default_value = "3m", value_parser = parse_timeout)]
    pub fetch_timeout: Duration,
    /// Deadline of a render (kubectl kustomize is killed after it).
    #[arg(long, env = "SEALED_SECRETS_GITOPS_RENDER_TIMEOUT", default_value = "2m", value_parser = parse_timeout)]
    pub render_timeout: Duration,
    /// Deadline of the policy check, apply, prune and health of one sync.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_APPLY_TIMEOUT", default_value = "5m", value_parser = parse_timeout)]
    pub apply_timeout: Duration,
    /// Writable folder for Git checkouts.
    #[arg(
        long,
        env = "SEALED_SECRETS_GITOPS_CACHE_DIR",
        default_value = "/tmp/sealed-secrets-gitops"
    )]
    pub cache_dir: PathBuf,
    /// The git program.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_GIT", default_value = "git")]
    pub git: PathBuf,
    /// The kubectl program (for `kubectl kustomize`).
    #[arg(long, env = "SEALED_SECRETS_GITOPS_KUBECTL", default_value = "kubectl")]
    pub kubectl: PathBuf,
    /// Base URL of the sealing controller's HTTP API (e.g.
    /// `http://sealed-secrets-controller.kube-system:8080`); SealedSecrets are checked with its
    /// `/v1/verify`. Default: through the API server's service proxy to --controller-name.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_CONTROLLER_URL")]
    pub controller_url: Option<String>,
    /// Name of the sealing controller's Service (for the service proxy).
    #[arg(
        long,
        env = "SEALED_SECRETS_GITOPS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    pub controller_name: String,
    /// Namespace of the sealing controller's Service (for the service proxy).
    #[arg(
        long,
        env = "SEALED_SECRETS_GITOPS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    pub controller_namespace: String,
    /// Webhook targets refused by default that notifications may reach anyway, comma-separated:
    /// `loopback`, `link-local` (cloud metadata lives there), `api-server`.
    #[arg(long, env = "SEALED_SECRETS_GITOPS_WEBHOOK_ALLOW_TARGETS", value_delimiter = ',',
          value_parser = parse_guarded)]
    pub webhook_allow_targets: Vec<crate::webhook::policy::Guarded>,
    /// Allow webhooks over plain http:// (default: https only).
    #[arg(long, env = "SEALED_SECRETS_GITOPS_WEBHOOK_ALLOW_HTTP", action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub webhook_allow_http: bool,
}

fn parse_guarded(text: &str) -> Result<crate::webhook::policy::Guarded, String> {
    crate::webhook::policy::Guarded::parse(text)
}

impl Args {
    /// The namespaces to watch; `None` for all.
    pub fn namespaces(&self) -> Option<Vec<String>> {
        let list: Vec<String> = self
            .watch_namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        (!list.is_empty()).then_some(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_locked_down() {
        let args = Args::try_parse_from(["gitops-controller"]).unwrap();
        assert_eq!(args.default_service_account, None);
        assert!(!args.allow_controller_identity);
        assert_eq!(args.concurrent, 4);
        assert_eq!(args.fetch_timeout, Duration::from_secs(180));
        assert_eq!(args.namespaces(), None);
        assert!(args.webhook_allow_targets.is_empty() && !args.webhook_allow_http);
    }

    #[test]
    fn flags_parse() {
        let args = Args::try_parse_from([
            "gitops-controller",
            "--watch-namespaces=a, b",
            "--default-service-account=gitsync",
            "--allow-controller-identity",
            "--concurrent=2",
            "--apply-timeout=30s",
            "--webhook-allow-targets=loopback,link-local",
            "--webhook-allow-http",
        ])
        .unwrap();
        assert_eq!(
            args.webhook_allow_targets,
            [
                crate::webhook::policy::Guarded::Loopback,
                crate::webhook::policy::Guarded::LinkLocal
            ]
        );
        assert!(args.webhook_allow_http);
        assert!(
            Args::try_parse_from(["gitops-controller", "--webhook-allow-targets=anything"])
                .is_err()
        );
        assert_eq!(args.namespaces(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(args.default_service_account.as_deref(), Some("gitsync"));
        assert!(args.allow_controller_identity);
        assert_eq!(args.concurrent, 2);
        assert_eq!(args.apply_timeout, Duration::from_secs(30));
        assert!(Args::try_parse_from(["gitops-controller", "--concurrent=0"]).is_err());
        assert!(Args::try_parse_from(["gitops-controller", "--fetch-timeout=0s"]).is_err());
    }
}
