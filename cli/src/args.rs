//! kubeseal's command line, flag for flag as upstream (pflag): same names, shorthands, defaults
//! and `SEALED_SECRETS_<FLAG>` environment variables (the command line wins over the
//! environment). Boolean flags also accept `--flag=true|false`, as pflag does.
//!
//! Upstream has no subcommands and ignores positional arguments; so do we.

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use clap::{ArgAction, Parser, builder::BoolishValueParser};
use sealed_secrets_core::scope::Scope;

fn parse_scope(value: &str) -> Result<Scope, String> {
    value.parse::<Scope>().map_err(|e| e.to_string())
}

/// All of kubeseal's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubeseal",
    about = "Seal Kubernetes Secrets into SealedSecrets that only the controller can open.",
    long_about = "kubeseal reads a Secret (YAML or JSON, from stdin or -f) and prints a SealedSecret \
                  encrypted with the controller's public certificate. Drop-in compatible with \
                  Bitnami's kubeseal.",
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Args {
    /// Certificate / public key file or URL (http, https, file) to use for encryption.
    /// Overrides --controller-*.
    #[arg(
        long,
        env = "SEALED_SECRETS_CERT",
        default_value = "",
        hide_default_value = true
    )]
    pub cert: String,

    /// Namespace of the sealed-secrets controller.
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    pub controller_namespace: String,

    /// Name of the sealed-secrets controller (its Service).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    pub controller_name: String,

    /// Output format for the sealed secret: json or yaml [default: json].
    #[arg(short = 'o', long = "format", env = "SEALED_SECRETS_FORMAT")]
    pub format: Option<String>,

    /// Sealed secret file path (written atomically; a .yaml/.yml name implies -o yaml).
    #[arg(short = 'w', long, env = "SEALED_SECRETS_SEALED_SECRET_FILE")]
    pub sealed_secret_file: Option<PathBuf>,

    /// Secret file path (default: stdin).
    #[arg(short = 'f', long, env = "SEALED_SECRETS_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,

    /// Write the certificate (from the controller or --cert) to stdout and exit.
    #[arg(long, env = "SEALED_SECRETS_FETCH_CERT", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide_default_value = true)]
    pub fetch_cert: bool,

    /// Allow Secrets without data.
    #[arg(long, env = "SEALED_SECRETS_ALLOW_EMPTY_DATA", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide_default_value = true)]
    pub allow_empty_data: bool,

    /// Validate SealedSecrets against the controller.
    #[arg(long, env = "SEALED_SECRETS_VALIDATE", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide_default_value = true)]
    pub validate: bool,

    /// Merge items from the input Secret into this existing SealedSecret file, in place.
    #[arg(long, env = "SEALED_SECRETS_MERGE_INTO")]
    pub merge_into: Option<PathBuf>,

    /// Encrypt a single raw value (from --from-file or stdin) and print its base64.
    #[arg(long, env = "SEALED_SECRETS_RAW", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide_default_value = true)]
    pub raw: bool,

    /// Name of the Secret (required with --raw and --scope strict).
    #[arg(
        long,
        env = "SEALED_SECRETS_NAME",
        default_value = "",
        hide_default_value = true
    )]
    pub name: String,

    /// (only with --raw) Secret items from files, as [key=]path; only one is allowed.
    #[arg(long, env = "SEALED_SECRETS_FROM_FILE", value_delimiter = ',', action = ArgAction::Append)]
    pub from_file: Vec<String>,

    /// Scope: strict, namespace-wide or cluster-wide (the input's annotations decide under strict).
    #[arg(long, env = "SEALED_SECRETS_SCOPE", default_value = "strict", value_parser = parse_scope)]
    pub scope: Scope,

    /// Seal for these environments of the repository's .sealed-secrets.yaml (comma-separated,
    /// or `all`); with several, -w must contain {env}. Without it, -w's path picks the
    /// environment.
    #[arg(long = "env", env = "SEALED_SECRETS_ENV", value_delimiter = ',', action = ArgAction::Append)]
    pub env: Vec<String>,

    /// Re-encrypt SealedSecrets with the controller's newest key.
    #[arg(long, env = "SEALED_SECRETS_RE_ENCRYPT", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide_default_value = true)]
    pub re_encrypt: bool,

    /// Deprecated alias of --re-encrypt.
    #[arg(long, env = "SEALED_SECRETS_ROTATE", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide = true)]
    pub rotate: bool,

    /// Decrypt a SealedSecret offline with the private keys of --recovery-private-key.
    #[arg(long, env = "SEALED_SECRETS_RECOVERY_UNSEAL", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide_default_value = true)]
    pub recovery_unseal: bool,

    /// Private key files (PEM, or key Secrets / a List of them), repeated or comma-separated.
    #[arg(long, env = "SEALED_SECRETS_RECOVERY_PRIVATE_KEY", value_delimiter = ',',
          action = ArgAction::Append)]
    pub recovery_private_key: Vec<String>,

    /// Print the version and exit.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide_default_value = true)]
    pub version: bool,

    /// Path to the kubeconfig file to use.
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    pub kube: KubeOverrides,

    /// klog verbosity (accepted for compatibility).
    #[arg(
        short = 'v',
        long = "v",
        env = "SEALED_SECRETS_V",
        default_value = "0",
        hide = true
    )]
    pub verbosity: String,

    /// Positional arguments are ignored, as upstream does.
    #[arg(hide = true, num_args = 0.., trailing_var_arg = false)]
    pub ignored: Vec<String>,
}

/// kubectl's connection overrides, with upstream's names.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeOverrides {
    /// If present, the namespace scope for this request.
    #[arg(short = 'n', long, env = "SEALED_SECRETS_NAMESPACE")]
    pub namespace: Option<String>,
    /// The name of the kubeconfig context to use.
    #[arg(long, env = "SEALED_SECRETS_CONTEXT")]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, env = "SEALED_SECRETS_CLUSTER")]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, env = "SEALED_SECRETS_USER")]
    pub user: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, env = "SEALED_SECRETS_SERVER")]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, env = "SEALED_SECRETS_TOKEN")]
    pub token: Option<String>,
    /// Username to impersonate for the operation.
    #[arg(long = "as", env = "SEALED_SECRETS_AS")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation (repeatable).
    #[arg(long = "as-group", env = "SEALED_SECRETS_AS_GROUP", action = ArgAction::Append)]
    pub as_group: Vec<String>,
    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", env = "SEALED_SECRETS_AS_UID")]
    pub as_uid: Option<String>,
    /// Username for basic authentication to the API server.
    #[arg(long, env = "SEALED_SECRETS_USERNAME")]
    pub username: Option<String>,
    /// Password for basic authentication to the API server.
    #[arg(long, env = "SEALED_SECRETS_PASSWORD")]
    pub password: Option<String>,
    /// Path to a client certificate file for TLS.
    #[arg(long, env = "SEALED_SECRETS_CLIENT_CERTIFICATE")]
    pub client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS.
    #[arg(long, env = "SEALED_SECRETS_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// Path to a cert file for the certificate authority.
    #[arg(long, env = "SEALED_SECRETS_CERTIFICATE_AUTHORITY")]
    pub certificate_authority: Option<PathBuf>,
    /// If true, the server's certificate will not be checked for validity.
    #[arg(long, env = "SEALED_SECRETS_INSECURE_SKIP_TLS_VERIFY", action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new(),
          hide_default_value = true)]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for server certificate validation.
    #[arg(long, env = "SEALED_SECRETS_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// The length of time to wait before giving up on a single server request (0 = no timeout).
    #[arg(long, env = "SEALED_SECRETS_REQUEST_TIMEOUT", default_value = "0")]
    pub request_timeout: String,
}

/// Parses the flags of `kubeseal <name> ...` (the arguments after `name`). On `--help` or a
/// usage error clap's text is printed and the exit code to end with is returned (0 for help,
/// 2 for usage errors).
pub fn parse_subcommand<T: Parser>(
    name: &str,
    argv: impl Iterator<Item = OsString>,
) -> Result<T, ExitCode> {
    T::try_parse_from(std::iter::once(OsString::from(format!("kubeseal {name}"))).chain(argv))
        .map_err(|err| {
            let _ = err.print();
            ExitCode::from(if err.use_stderr() { 2 } else { 0 })
        })
}

/// What a subcommand says about reaching the cluster and the controller.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// kubectl's connection overrides.
    pub kube: KubeOverrides,
    /// `--controller-name`, when the subcommand has it.
    pub controller_name: Option<String>,
    /// `--controller-namespace`.
    pub controller_namespace: String,
}

/// Upstream's flag set (its defaults and `SEALED_SECRETS_*` variables) with a subcommand's
/// connection flags, for the shared kubeconfig and service-proxy code.
pub fn upstream_with(connection: Connection) -> Result<Args, String> {
    let mut upstream = Args::try_parse_from(["kubeseal"]).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("");
        first.strip_prefix("error: ").unwrap_or(first).to_string()
    })?;
    upstream.kubeconfig = connection.kubeconfig;
    upstream.kube = connection.kube;
    if let Some(name) = connection.controller_name {
        upstream.controller_name = name;
    }
    upstream.controller_namespace = connection.controller_namespace;
    Ok(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn pflag_style_booleans_lists_and_shorthands() {
        let args = Args::try_parse_from([
            "kubeseal",
            "--raw",
            "--allow-empty-data=false",
            "-n",
            "ns",
            "-o",
            "yaml",
            "--recovery-private-key",
            "a.pem,b.pem",
            "--recovery-private-key",
            "c.pem",
            "--scope",
            "cluster-wide",
            "positional",
            "ignored",
        ])
        .unwrap();
        assert!(args.raw);
        assert!(!args.allow_empty_data);
        assert_eq!(args.kube.namespace.as_deref(), Some("ns"));
        assert_eq!(args.format.as_deref(), Some("yaml"));
        assert_eq!(args.recovery_private_key, ["a.pem", "b.pem", "c.pem"]);
        assert_eq!(args.scope, Scope::ClusterWide);
        assert_eq!(args.ignored, ["positional", "ignored"]);
    }

    #[test]
    fn bad_scope_is_a_usage_error() {
        let err = Args::try_parse_from(["kubeseal", "--scope", "galaxy"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be one of: strict, namespace-wide, cluster-wide")
        );
        assert_eq!(err.exit_code(), 2);
    }
}
