//! The controller's flags: every upstream flag with its default and `SEALED_SECRETS_<FLAG>`
//! environment variable (command line wins), plus our additions, each off or set to a value that
//! keeps upstream's behaviour unless noted.

use std::{path::PathBuf, time::Duration};

use clap::{ArgAction, Parser, builder::BoolishValueParser};

use crate::http::{
    budget::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS},
    ratelimit::TrustedProxies,
};

/// Parses a flag's Go duration (`720h0m0s`, `5s`, `1h30m`, `0`); empty means zero.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Duration::ZERO);
    }
    sealed_secrets_core::duration::parse_go_duration(text).map_err(|e| e.to_string())
}

/// Which timestamp orders keys (and so picks the sealing key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyOrderPriority {
    /// The certificate's NotBefore (upstream's default).
    #[value(name = "CertNotBefore")]
    CertNotBefore,
    /// The key Secret's creationTimestamp.
    #[value(name = "SecretCreationTimestamp")]
    SecretCreationTimestamp,
}

impl From<KeyOrderPriority> for sealed_secrets_core::key_secret::KeyOrder {
    fn from(priority: KeyOrderPriority) -> Self {
        match priority {
            KeyOrderPriority::CertNotBefore => Self::CertNotBefore,
            KeyOrderPriority::SecretCreationTimestamp => Self::SecretCreationTimestamp,
        }
    }
}

/// All controller flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "controller",
    disable_version_flag = true,
    max_term_width = 100,
    about = "The sealed-secrets controller: unseals SealedSecrets into Secrets."
)]
pub struct Args {
    /// Prefix of sealing key Secrets (generateName), and name of the legacy key Secret.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_PREFIX",
        default_value = "sealed-secrets-key"
    )]
    pub key_prefix: String,
    /// Size of generated RSA keys in bits.
    #[arg(long, env = "SEALED_SECRETS_KEY_SIZE", default_value_t = 4096)]
    pub key_size: usize,
    /// Validity of generated certificates (Go duration).
    #[arg(long, env = "SEALED_SECRETS_KEY_TTL", default_value = "87600h0m0s", value_parser = parse_go_duration)]
    pub key_ttl: Duration,
    /// Common name of generated certificates.
    #[arg(long, env = "SEALED_SECRETS_MY_CN", default_value = "")]
    pub my_cn: String,
    /// How often a new sealing key is generated (0 disables renewal).
    #[arg(long, env = "SEALED_SECRETS_KEY_RENEW_PERIOD", default_value = "720h0m0s", value_parser = parse_go_duration)]
    pub key_renew_period: Duration,
    /// Deprecated alias of --key-renew-period.
    #[arg(long, env = "SEALED_SECRETS_ROTATE_PERIOD", value_parser = parse_go_duration, hide = true)]
    pub rotate_period: Option<Duration>,
    /// Which time orders keys: CertNotBefore or SecretCreationTimestamp.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_ORDER_PRIORITY",
        default_value = "CertNotBefore"
    )]
    pub key_order_priority: KeyOrderPriority,
    /// Generate a new key at start when the newest is older than this (RFC 1123Z, as `date -R`).
    #[arg(long, env = "SEALED_SECRETS_KEY_CUTOFF_TIME", default_value = "")]
    pub key_cutoff_time: String,
    /// Accept the deprecated whole-Secret `spec.data` format.
    #[arg(long, env = "SEALED_SECRETS_ACCEPT_DEPRECATED_V1_DATA", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "true", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub accept_deprecated_v1_data: bool,
    /// Watch SealedSecrets in all namespaces.
    #[arg(long, env = "SEALED_SECRETS_ALL_NAMESPACES", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "true", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub all_namespaces: bool,
    /// Comma-separated namespaces to watch besides the controller's own.
    #[arg(long, env = "SEALED_SECRETS_ADDITIONAL_NAMESPACES", default_value = "")]
    pub additional_namespaces: String,
    /// Label selector for the SealedSecrets (and Secrets) watched.
    #[arg(long, env = "SEALED_SECRETS_LABEL_SELECTOR", default_value = "")]
    pub label_selector: String,
    /// Sustained requests per second allowed on /v1/verify per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT", default_value_t = 2.0)]
    pub rate_limit: f64,
    /// Burst allowed on /v1/verify per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT_BURST", default_value_t = 2)]
    pub rate_limit_burst: u32,
    /// Annotations for generated key Secrets (`k=v,k2=v2`).
    #[arg(
        long,
        env = "SEALED_SECRETS_PRIVATEKEY_ANNOTATIONS",
        default_value = ""
    )]
    pub privatekey_annotations: String,
    /// Labels for generated key Secrets (`k=v,k2=v2`).
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_LABELS", default_value = "")]
    pub privatekey_labels: String,
    /// Delete the Secret when its SealedSecret is deleted (instead of leaving it to GC).
    #[arg(long, env = "SEALED_SECRETS_OLD_GC_BEHAVIOR", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub old_gc_behavior: bool,
    /// Write the SealedSecret status subresource.
    #[arg(long, env = "SEALED_SECRETS_UPDATE_STATUS", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "true", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub update_status: bool,
    /// Accepted for compatibility: key Secrets are always watched.
    #[arg(long, env = "SEALED_SECRETS_WATCH_FOR_SECRETS", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub watch_for_secrets: bool,
    /// Do not watch Secrets, so deleted Secrets are not re-created.
    #[arg(long, env = "SEALED_SECRETS_SKIP_RECREATE", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub skip_recreate: bool,
    /// Info logs to stdout, warnings and errors to stderr.
    #[arg(long, env = "SEALED_SECRETS_LOG_INFO_STDOUT", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "true", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub log_info_stdout: bool,
    /// Log level: DEBUG, INFO, WARN, ERROR.
    #[arg(long, env = "SEALED_SECRETS_LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// Log format: text or json.
    #[arg(long, env = "SEALED_SECRETS_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Retries of a failing SealedSecret before giving up until its next change.
    #[arg(long, env = "SEALED_SECRETS_MAX_UNSEAL_RETRIES", default_value_t = 5)]
    pub max_unseal_retries: u32,
    /// Kubernetes client requests per second (negative: unlimited).
    #[arg(
        long,
        env = "SEALED_SECRETS_KUBECLIENT_QPS",
        default_value_t = 5.0,
        allow_negative_numbers = true
    )]
    pub kubeclient_qps: f32,
    /// Kubernetes client burst.
    #[arg(long, env = "SEALED_SECRETS_KUBECLIENT_BURST", default_value_t = 10)]
    pub kubeclient_burst: u32,
    /// Address of the HTTP API.
    #[arg(long, env = "SEALED_SECRETS_LISTEN_ADDR", default_value = ":8080")]
    pub listen_addr: String,
    /// Address of the metrics server.
    #[arg(
        long,
        env = "SEALED_SECRETS_LISTEN_METRICS_ADDR",
        default_value = ":8081"
    )]
    pub listen_metrics_addr: String,
    /// HTTP read timeout.
    #[arg(long, env = "SEALED_SECRETS_READ_TIMEOUT", default_value = "2m0s", value_parser = parse_go_duration)]
    pub read_timeout: Duration,
    /// HTTP write timeout.
    #[arg(long, env = "SEALED_SECRETS_WRITE_TIMEOUT", default_value = "2m0s", value_parser = parse_go_duration)]
    pub write_timeout: Duration,
    /// Print the version and exit.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub version: bool,

    // ---- Beyond upstream ----
    /// Kubeconfig to use outside a cluster (default: in-cluster, else KUBECONFIG / ~/.kube/config).
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the sealing keys (default: POD_NAMESPACE, else the service account's, else default).
    #[arg(long, env = "SEALED_SECRETS_KEY_NAMESPACE")]
    pub key_namespace: Option<String>,
    /// SealedSecrets reconciled in parallel.
    #[arg(long, env = "SEALED_SECRETS_WORKERS", default_value_t = 4)]
    pub workers: u16,
    /// Put back the data of a Secret the controller manages when someone edits it by hand.
    #[arg(long, env = "SEALED_SECRETS_SELF_HEAL", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub self_heal: bool,
    /// Run several replicas: only the holder of a Lease reconciles and manages keys.
    #[arg(long, env = "SEALED_SECRETS_LEADER_ELECT", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub leader_elect: bool,
    /// Name of the Lease (in the key namespace).
    #[arg(
        long,
        env = "SEALED_SECRETS_LEADER_ELECT_LEASE_NAME",
        default_value = "sealed-secrets-controller"
    )]
    pub leader_elect_lease_name: String,
    /// Identity of this replica in the Lease (default: POD_NAME, else hostname and PID).
    #[arg(long, env = "SEALED_SECRETS_LEADER_ELECT_ID")]
    pub leader_elect_id: Option<String>,
    /// Retired: the GitSync reconciler is its own binary, `gitops-controller`. Set, the
    /// controller refuses to start and says so (the flag is kept only for that message).
    #[arg(long, env = "SEALED_SECRETS_GITOPS", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide = true)]
    pub gitops: bool,
    /// Proxies (comma-separated addresses or CIDRs) whose X-Forwarded-For names the client
    /// for the rate limit; from any other peer the client is the peer (default: none).
    #[arg(long, env = "SEALED_SECRETS_TRUSTED_PROXIES", default_value = "",
          value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
    /// Largest body accepted by /v1/verify and /v1/rotate, in bytes (larger: 413).
    #[arg(long, env = "SEALED_SECRETS_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_request_bytes: usize,
    /// Most items in one SealedSecret posted to /v1/verify or /v1/rotate (more: 413).
    #[arg(long, env = "SEALED_SECRETS_MAX_REQUEST_ITEMS", default_value_t = DEFAULT_MAX_ITEMS)]
    pub max_request_items: usize,
    /// RSA jobs of /v1/verify and /v1/rotate run at once (0: the cores minus one, at least one);
    /// a request that finds them all busy for 0.5 s gets 503.
    #[arg(long, env = "SEALED_SECRETS_API_CRYPTO_WORKERS", default_value_t = 0)]
    pub api_crypto_workers: usize,
}

impl Args {
    /// `--key-renew-period`, or the deprecated `--rotate-period` when only that is given.
    pub fn renew_period(&self) -> Duration {
        self.rotate_period.unwrap_or(self.key_renew_period)
    }

    /// The namespaces to watch: `None` for all, else the explicit list (own namespace first).
    pub fn watched_namespaces(&self, own: &str) -> Option<Vec<String>> {
        let additional: Vec<String> = self
            .additional_namespaces
            .split(',')
            .map(str::trim)
            .filter(|ns| !ns.is_empty() && *ns != own)
            .map(str::to_string)
            .collect();
        if self.all_namespaces && additional.is_empty() {
            return None;
        }
        let mut namespaces = vec![own.to_string()];
        for ns in additional {
            if !namespaces.contains(&ns) {
                namespaces.push(ns);
            }
        }
        Some(namespaces)
    }
}

/// Parses `k=v,k2=v2` (duplicates: last wins); an entry without `=` is an error (upstream crashes).
pub fn parse_key_values(text: &str, flag: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (k, v) = entry
            .split_once('=')
            .ok_or_else(|| format!("--{flag}: entry {entry:?} is not of the form key=value"))?;
        out.retain(|(existing, _)| existing != k);
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Checks `--key-prefix` as upstream does.
pub fn validate_key_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() >= 245 {
        return Err(format!(
            "name is too long, must be shorter than 245, got {}",
            prefix.len()
        ));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("name contains illegal character {c}"));
    }
    Ok(())
}

/// Parses `--key-cutoff-time` (RFC 1123 with numeric zone, `Mon, 02 Jan 2006 15:04:05 -0700`).
pub fn parse_cutoff(text: &str) -> Result<Option<jiff::Timestamp>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    jiff::fmt::rfc2822::parse(text.trim())
        .map(|zoned| Some(zoned.timestamp()))
        .map_err(|e| format!("--key-cutoff-time: cannot parse {text:?} as RFC 1123Z: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_consistent_and_defaults_match_upstream() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["controller"]).unwrap();
        assert_eq!(args.key_prefix, "sealed-secrets-key");
        assert_eq!(args.key_size, 4096);
        assert_eq!(args.key_ttl, Duration::from_secs(87_600 * 3600));
        assert_eq!(args.renew_period(), Duration::from_secs(720 * 3600));
        assert_eq!(args.key_order_priority, KeyOrderPriority::CertNotBefore);
        assert!(args.accept_deprecated_v1_data && args.all_namespaces && args.update_status);
        assert!(
            !args.skip_recreate && !args.old_gc_behavior && !args.self_heal && !args.leader_elect
        );
        assert!(!args.gitops);
        assert_eq!((args.rate_limit, args.rate_limit_burst), (2.0, 2));
        assert!(args.trusted_proxies.is_empty());
        assert_eq!(
            (args.max_request_bytes, args.max_request_items),
            (4 << 20, 1024)
        );
        assert_eq!(args.api_crypto_workers, 0);
        assert_eq!(args.max_unseal_retries, 5);
        assert_eq!(
            (args.listen_addr.as_str(), args.listen_metrics_addr.as_str()),
            (":8080", ":8081")
        );
    }

    #[test]
    fn api_limit_flags_parse() {
        let args = Args::try_parse_from([
            "controller",
            "--trusted-proxies",
            "10.0.0.0/8, fd00::/8",
            "--max-request-bytes",
            "1000",
            "--max-request-items",
            "5",
            "--api-crypto-workers",
            "2",
        ])
        .unwrap();
        assert_eq!(
            args.trusted_proxies,
            TrustedProxies::parse("10.0.0.0/8,fd00::/8").unwrap()
        );
        assert_eq!(
            (
                args.max_request_bytes,
                args.max_request_items,
                args.api_crypto_workers
            ),
            (1000, 5, 2)
        );
        let err = Args::try_parse_from(["controller", "--trusted-proxies", "10.0.0.0/40"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.0/40"), "{err}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("720h0m0s").unwrap(),
            Duration::from_secs(720 * 3600)
        );
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5x").is_err());
    }

    #[test]
    fn namespaces_keys_values_prefix_and_cutoff() {
        let mut args = Args::try_parse_from(["controller"]).unwrap();
        assert_eq!(args.watched_namespaces("kube-system"), None);
        args.additional_namespaces = "a, b,kube-system,a".into();
        assert_eq!(
            args.watched_namespaces("kube-system").unwrap(),
            ["kube-system", "a", "b"]
        );
        args.additional_namespaces.clear();
        args.all_namespaces = false;
        assert_eq!(args.watched_namespaces("ks").unwrap(), ["ks"]);

        assert_eq!(
            parse_key_values("a=1,b=2,a=3", "privatekey-labels").unwrap(),
            [
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "3".to_string())
            ]
        );
        assert!(parse_key_values("novalue", "privatekey-labels").is_err());

        assert!(validate_key_prefix("sealed-secrets-key").is_ok());
        assert_eq!(
            validate_key_prefix("Bad").unwrap_err(),
            "name contains illegal character B"
        );
        assert!(
            validate_key_prefix(&"a".repeat(245))
                .unwrap_err()
                .starts_with("name is too long")
        );

        let cutoff = parse_cutoff("Mon, 02 Jan 2006 15:04:05 -0700")
            .unwrap()
            .unwrap();
        assert_eq!(cutoff.to_string(), "2006-01-02T22:04:05Z");
        assert_eq!(parse_cutoff("").unwrap(), None);
        assert!(parse_cutoff("yesterday").is_err());
    }
}
