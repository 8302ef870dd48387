//! Whose permissions a sync runs with.
//!
//! A controller that applies whatever a GitSync names with its own identity turns "may create
//! a GitSync" into "may create anything anywhere". Flux's answer, which we follow: every
//! request of a sync impersonates a ServiceAccount of the GitSync's own namespace
//! (`system:serviceaccount:<namespace>:<name>`), so the API server's RBAC decides what the
//! GitSync's author may change. The controller itself only needs to read GitSyncs, write their
//! status and impersonate ServiceAccounts.
//!
//! Which ServiceAccount: `spec.serviceAccountName`, else the controller's
//! `--default-service-account` (Flux's multi-tenancy lockdown). With neither, the GitSync is
//! refused, unless the operator declared the cluster trusted and single-tenant, when the
//! controller's own identity is used.
//!
//! One client (and one kind cache) is kept per impersonated user, built from the controller's
//! own configuration with the `Impersonate-User` header; the API server adds the
//! ServiceAccount's groups itself.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::cluster::Cluster;

/// Why a GitSync cannot get an identity to sync with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenancyError {
    /// Neither `spec.serviceAccountName` nor a controller default, and the controller's own
    /// identity is not allowed.
    #[error(
        "spec.serviceAccountName is empty and the controller has no --default-service-account: \
         refusing to sync with the controller's own permissions"
    )]
    NoServiceAccount,
    /// The ServiceAccount name is not a valid object name.
    #[error("spec.serviceAccountName {0:?} is not a valid ServiceAccount name")]
    InvalidName(String),
    /// No client could be built for the user.
    #[error("cannot build a client impersonating {user}: {message}")]
    Client {
        /// The impersonated user.
        user: String,
        /// Why.
        message: String,
    },
}

/// Who a sync runs as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A ServiceAccount of the GitSync's namespace (`system:serviceaccount:<ns>:<name>`).
    ServiceAccount {
        /// Its namespace (the GitSync's).
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The controller itself (trusted single-tenant clusters only).
    Controller,
}

impl Identity {
    /// The user name the API server sees, as RBAC subjects and audit logs name it.
    pub fn user(&self) -> String {
        match self {
            Identity::ServiceAccount { namespace, name } => {
                format!("system:serviceaccount:{namespace}:{name}")
            }
            Identity::Controller => "the controller's own identity".to_string(),
        }
    }
}

/// The tenancy settings of a controller.
#[derive(Debug, Clone, Default)]
pub struct TenancyPolicy {
    /// ServiceAccount used when a GitSync names none (`--default-service-account`).
    pub default_service_account: Option<String>,
    /// Use the controller's own identity when neither names one (trusted single tenant).
    pub allow_controller_identity: bool,
}

impl TenancyPolicy {
    /// The identity a GitSync in `namespace` with `spec.serviceAccountName` syncs with.
    pub fn identity(
        &self,
        namespace: &str,
        service_account: Option<&str>,
    ) -> Result<Identity, TenancyError> {
        let chosen = service_account.filter(|s| !s.is_empty()).or(self
            .default_service_account
            .as_deref()
            .filter(|s| !s.is_empty()));
        match chosen {
            Some(name) if valid_name(name) => Ok(Identity::ServiceAccount {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }),
            Some(name) => Err(TenancyError::InvalidName(name.to_string())),
            None if self.allow_controller_identity => Ok(Identity::Controller),
            None => Err(TenancyError::NoServiceAccount),
        }
    }
}

/// A DNS subdomain (what a ServiceAccount name must be); also keeps `:` out of the user name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Builds the API client a sync uses for an identity.
pub trait Clusters: Send + Sync {
    /// The cluster as `identity` sees it.
    fn cluster_for(&self, identity: &Identity) -> Result<Cluster, TenancyError>;
}

/// Impersonates through the `Impersonate-User` header, one cached client per user.
pub struct Impersonating {
    config: kube::Config,
    own: Cluster,
    cache: Mutex<HashMap<String, Cluster>>,
}

impl Impersonating {
    /// From the controller's own configuration (and its client, for [`Identity::Controller`]).
    pub fn new(config: kube::Config, own: Cluster) -> Impersonating {
        Impersonating {
            config,
            own,
            cache: Mutex::default(),
        }
    }
}

impl Clusters for Impersonating {
    fn cluster_for(&self, identity: &Identity) -> Result<Cluster, TenancyError> {
        if *identity == Identity::Controller {
            return Ok(self.own.clone());
        }
        let user = identity.user();
        if let Some(found) = self.cache.lock().ok().and_then(|c| c.get(&user).cloned()) {
            return Ok(found);
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = None;
        let client = kube::Client::try_from(config).map_err(|e| TenancyError::Client {
            user: user.clone(),
            message: e.to_string(),
        })?;
        let cluster = Cluster::new(client);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(user, cluster.clone());
        }
        Ok(cluster)
    }
}

/// Every identity gets the same client: for tests against an in-memory API server, which has
/// no RBAC to enforce.
pub struct SameClient(pub Cluster);

impl Clusters for SameClient {
    fn cluster_for(&self, _identity: &Identity) -> Result<Cluster, TenancyError> {
        Ok(self.0.clone())
    }
}

/// Shared handle.
pub type SharedClusters = Arc<dyn Clusters>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_wins_then_the_default_then_refusal() {
        let locked = TenancyPolicy {
            default_service_account: Some("gitsync".into()),
            allow_controller_identity: false,
        };
        assert_eq!(
            locked.identity("team-a", Some("deployer")).unwrap().user(),
            "system:serviceaccount:team-a:deployer"
        );
        assert_eq!(
            locked.identity("team-a", None).unwrap().user(),
            "system:serviceaccount:team-a:gitsync"
        );
        let open = TenancyPolicy::default();
        assert_eq!(
            open.identity("team-a", None),
            Err(TenancyError::NoServiceAccount)
        );
        assert_eq!(
            open.identity("team-a", Some("")),
            Err(TenancyError::NoServiceAccount)
        );
        let trusted = TenancyPolicy {
            allow_controller_identity: true,
            ..Default::default()
        };
        assert_eq!(trusted.identity("x", None), Ok(Identity::Controller));
    }

    #[test]
    fn names_cannot_smuggle_another_user() {
        let policy = TenancyPolicy::default();
        for bad in ["a:b", "kube-system:admin", "Upper", "-x", "x-", "a b"] {
            assert!(
                matches!(
                    policy.identity("ns", Some(bad)),
                    Err(TenancyError::InvalidName(_))
                ),
                "{bad}"
            );
        }
    }
}
