//! Picking the context, cluster and user for the online modes, with the connection flags.
//!
//! `--context` picks the context (default: `current-context`), `--cluster` and `--user` replace
//! its cluster and user, and the connection flags override single fields, as client-go's
//! `ConfigOverrides` do: `--server`, `--certificate-authority`, `--insecure-skip-tls-verify`,
//! `--tls-server-name`, `--token`, `--username`/`--password`, `--client-certificate`/
//! `--client-key`, `--as`, `--as-group`, `--as-uid`. The outcome is a kubeconfig of that one
//! context, which `cluster::config` hands to kube (exec credential plugins and token files work
//! through kube's own support). Pure data: nothing here connects.

use anyhow::{Result, anyhow, bail};
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

use super::{context_name, find_context, in_cluster, read};
use crate::args::{Args, KubeOverrides};

/// The name of the single context kubeseal builds from the merged files and the flags.
const SELECTED: &str = "kubeseal";

/// client-go's text when nothing says where the cluster is.
pub const NO_CONFIGURATION: &str = "invalid configuration: no configuration has been provided, \
     try setting KUBERNETES_MASTER environment variable";

/// What to add to [`NO_CONFIGURATION`] so users know what kubeseal looked at.
const NO_CONFIGURATION_HINT: &str = "kubeseal found no kubeconfig (no --kubeconfig, no existing \
     file in KUBECONFIG, no ~/.kube/config) and is not running in a cluster: pass --kubeconfig \
     or --server to reach the sealed-secrets controller, or seal offline with --cert";

/// A kubeconfig of one context, cluster and user, all named [`SELECTED`], current.
pub(super) fn single_context(cluster: Cluster, user: AuthInfo, mut context: Context) -> Kubeconfig {
    context.cluster = SELECTED.into();
    context.user = Some(SELECTED.into());
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: SELECTED.into(),
            cluster: Some(cluster),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: SELECTED.into(),
            auth_info: Some(user),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: SELECTED.into(),
            context: Some(context),
            ..Default::default()
        }],
        current_context: Some(SELECTED.into()),
        ..Default::default()
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Picks the context, cluster and user of `merged` (with `--context`, `--cluster`, `--user`)
/// and applies the connection flags, as client-go's `DirectClientConfig` does.
fn select(merged: &Kubeconfig, flags: &KubeOverrides) -> Result<Kubeconfig> {
    let context_name = context_name(merged, flags.context.as_deref());
    let context = match context_name {
        Some(name) => find_context(merged, name)
            .map(|c| c.context.clone().unwrap_or_default())
            .ok_or_else(|| anyhow!("context was not found for specified context: {name}"))?,
        None => Context::default(),
    };
    let cluster_name = non_empty(&flags.cluster).unwrap_or(&context.cluster);
    let cluster = merged
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .map(|c| c.cluster.clone().unwrap_or_default());
    let mut cluster = match (cluster, non_empty(&flags.cluster)) {
        (Some(cluster), _) => cluster,
        (None, Some(name)) => bail!("cluster \"{name}\" does not exist in the kubeconfig"),
        (None, None) => Cluster::default(),
    };
    let user_name = non_empty(&flags.user).or(context.user.as_deref());
    let user = user_name.and_then(|name| merged.auth_infos.iter().find(|u| u.name == name));
    let mut user = match (user, non_empty(&flags.user)) {
        (Some(user), _) => user.auth_info.clone().unwrap_or_default(),
        (None, Some(name)) => bail!("auth info \"{name}\" does not exist"),
        (None, None) => AuthInfo::default(),
    };
    apply_cluster_flags(&mut cluster, flags);
    apply_user_flags(&mut user, flags);
    if cluster.server.as_deref().is_none_or(str::is_empty) {
        if merged.clusters.is_empty() && merged.contexts.is_empty() {
            bail!("{NO_CONFIGURATION}; {NO_CONFIGURATION_HINT}");
        }
        bail!(
            "invalid configuration: no server found for cluster \"{cluster_name}\" (context \
             \"{}\"); pass --server or fix the kubeconfig",
            context_name.unwrap_or("")
        );
    }
    Ok(single_context(cluster, user, context))
}

fn apply_cluster_flags(cluster: &mut Cluster, flags: &KubeOverrides) {
    if let Some(server) = non_empty(&flags.server) {
        cluster.server = Some(server.to_string());
    }
    if let Some(ca) = &flags.certificate_authority {
        cluster.certificate_authority = Some(ca.display().to_string());
        cluster.certificate_authority_data = None;
    }
    if flags.insecure_skip_tls_verify {
        cluster.insecure_skip_tls_verify = Some(true);
        cluster.certificate_authority = None;
        cluster.certificate_authority_data = None;
    }
    if let Some(name) = non_empty(&flags.tls_server_name) {
        cluster.tls_server_name = Some(name.to_string());
    }
}

fn apply_user_flags(user: &mut AuthInfo, flags: &KubeOverrides) {
    if let Some(token) = non_empty(&flags.token) {
        // An explicit token is the identity: nothing of the kubeconfig's user may win over it.
        user.token = Some(token.to_string().into());
        user.token_file = None;
        user.username = None;
        user.password = None;
        user.exec = None;
        user.auth_provider = None;
    }
    if non_empty(&flags.username).is_some() || non_empty(&flags.password).is_some() {
        if let Some(username) = non_empty(&flags.username) {
            user.username = Some(username.to_string());
        }
        if let Some(password) = non_empty(&flags.password) {
            user.password = Some(password.to_string().into());
        }
        user.token = None;
        user.token_file = None;
        user.exec = None;
        user.auth_provider = None;
    }
    if let Some(cert) = &flags.client_certificate {
        user.client_certificate = Some(cert.display().to_string());
        user.client_certificate_data = None;
    }
    if let Some(key) = &flags.client_key {
        user.client_key = Some(key.display().to_string());
        user.client_key_data = None;
    }
    if let Some(name) = non_empty(&flags.as_user) {
        user.impersonate = Some(name.to_string());
    }
    let groups: Vec<String> = flags
        .as_group
        .iter()
        .filter(|g| !g.is_empty())
        .cloned()
        .collect();
    if !groups.is_empty() {
        user.impersonate_groups = Some(groups);
    }
    if let Some(uid) = non_empty(&flags.as_uid) {
        user.impersonate_uid = Some(uid.to_string());
    }
}

/// Reads and merges the kubeconfig files (or, with none and no `--server`, the in-cluster
/// configuration) and applies the flags: one context, cluster and user, ready for kube.
pub fn resolve(args: &Args) -> Result<Kubeconfig> {
    let merged = match read(args.kubeconfig.as_deref())? {
        Some(merged) => merged,
        None if non_empty(&args.kube.server).is_none() => in_cluster().unwrap_or_default(),
        None => Kubeconfig::default(),
    };
    select(&merged, &args.kube)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(yaml).unwrap()
    }

    const TWO_CONTEXTS: &str = "
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster: {server: 'https://dev.example:6443', certificate-authority-data: Zm9v}
- name: prod-cluster
  cluster: {server: 'https://prod.example:6443'}
users:
- name: dev-user
  user: {token: dev-token}
- name: prod-user
  user: {client-certificate: /c.pem, client-key: /k.pem}
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
";

    fn selected(config: &Kubeconfig) -> (&Cluster, &AuthInfo, &Context) {
        (
            config.clusters[0].cluster.as_ref().unwrap(),
            config.auth_infos[0].auth_info.as_ref().unwrap(),
            config.contexts[0].context.as_ref().unwrap(),
        )
    }

    #[test]
    fn current_context_then_flags_pick_cluster_and_user() {
        let merged = parse(TWO_CONTEXTS);
        let out = select(&merged, &KubeOverrides::default()).unwrap();
        let (cluster, user, context) = selected(&out);
        assert_eq!(cluster.server.as_deref(), Some("https://dev.example:6443"));
        assert!(user.token.is_some());
        assert_eq!(context.namespace.as_deref(), Some("team"));

        let flags = KubeOverrides {
            context: Some("prod".into()),
            ..Default::default()
        };
        let out = select(&merged, &flags).unwrap();
        let (cluster, user, _) = selected(&out);
        assert_eq!(cluster.server.as_deref(), Some("https://prod.example:6443"));
        assert_eq!(user.client_certificate.as_deref(), Some("/c.pem"));

        let flags = KubeOverrides {
            cluster: Some("prod-cluster".into()),
            user: Some("prod-user".into()),
            ..Default::default()
        };
        let out = select(&merged, &flags).unwrap();
        let (cluster, user, _) = selected(&out);
        assert_eq!(cluster.server.as_deref(), Some("https://prod.example:6443"));
        assert!(user.token.is_none());

        let flags = KubeOverrides {
            context: Some("nope".into()),
            ..Default::default()
        };
        let err = select(&merged, &flags).unwrap_err().to_string();
        assert_eq!(err, "context was not found for specified context: nope");
    }

    #[test]
    fn connection_flags_override_fields() {
        let merged = parse(TWO_CONTEXTS);
        let flags = KubeOverrides {
            server: Some("https://other:443".into()),
            insecure_skip_tls_verify: true,
            tls_server_name: Some("api.internal".into()),
            token: Some("flag-token".into()),
            as_user: Some("jane".into()),
            as_group: vec!["devs".into(), "ops".into()],
            as_uid: Some("42".into()),
            ..Default::default()
        };
        let out = select(&merged, &flags).unwrap();
        let (cluster, user, _) = selected(&out);
        assert_eq!(cluster.server.as_deref(), Some("https://other:443"));
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert!(cluster.certificate_authority_data.is_none());
        assert_eq!(cluster.tls_server_name.as_deref(), Some("api.internal"));
        assert_eq!(user.impersonate.as_deref(), Some("jane"));
        assert_eq!(
            user.impersonate_groups.as_deref(),
            Some(&["devs".to_string(), "ops".to_string()][..])
        );
        assert_eq!(user.impersonate_uid.as_deref(), Some("42"));

        let flags = KubeOverrides {
            context: Some("prod".into()),
            client_certificate: Some("/other.pem".into()),
            certificate_authority: Some("/ca.pem".into()),
            ..Default::default()
        };
        let out = select(&merged, &flags).unwrap();
        let (cluster, user, _) = selected(&out);
        assert_eq!(cluster.certificate_authority.as_deref(), Some("/ca.pem"));
        assert_eq!(user.client_certificate.as_deref(), Some("/other.pem"));
        assert_eq!(user.client_key.as_deref(), Some("/k.pem"));
    }

    #[test]
    fn empty_configuration_needs_a_server() {
        let err = select(&Kubeconfig::default(), &KubeOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(NO_CONFIGURATION), "{err}");
        assert!(err.contains("--kubeconfig"), "{err}");
        let flags = KubeOverrides {
            server: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        };
        let out = select(&Kubeconfig::default(), &flags).unwrap();
        assert_eq!(
            selected(&out).0.server.as_deref(),
            Some("http://127.0.0.1:1")
        );
    }
}
