//! What the user can see and do, asked of the API server as the user: lists across the
//! namespaces they may read (the whole cluster when allowed, else namespace by namespace), and
//! SelfSubjectAccessReviews for the actions a page offers. Nothing here holds a privilege of its
//! own: a 403 means the user may not, and the page says so instead of failing.

use std::{collections::BTreeSet, time::Duration};

use futures::future::join_all;
use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec},
    core::v1::Namespace,
};
use kube::api::{Api, ListParams, PostParams};
use sealed_secrets_sync::cluster::{Cluster, ClusterError, Kind};
use serde_json::Value;

/// How long one API request may take before the page reports it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A failure to read from the API server, for a page to show.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The API server answered with an error, or could not be reached.
    #[error(transparent)]
    Api(#[from] ClusterError),
    /// The API server does not serve this kind (its CRD is not installed).
    #[error("the API server does not serve {0}: is its CRD installed?")]
    NotServed(String),
    /// No answer in time.
    #[error("the API server did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
}

/// Objects of one kind the user may list, and the namespaces they may not.
#[derive(Debug, Default)]
pub struct Listing {
    /// The objects, as JSON.
    pub items: Vec<Value>,
    /// Namespaces whose list was forbidden (empty when the cluster-wide list was allowed).
    pub forbidden: Vec<String>,
    /// Whether the list covered the whole cluster.
    pub cluster_wide: bool,
}

/// Sets `apiVersion` and `kind` on listed items: the API server leaves them out of the items
/// of a LIST of built-in kinds, and the views find objects by them.
fn with_types(mut items: Vec<Value>, kind: &Kind) -> Vec<Value> {
    for item in &mut items {
        if let Some(map) = item.as_object_mut() {
            for (field, value) in [
                ("apiVersion", &kind.resource.api_version),
                ("kind", &kind.resource.kind),
            ] {
                let known = map
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty());
                if !known {
                    map.insert(field.into(), Value::String(value.clone()));
                }
            }
        }
    }
    items
}

/// The API server as the user.
#[derive(Clone)]
pub struct Access {
    cluster: Cluster,
    default_namespace: String,
}

async fn bounded<T>(
    future: impl std::future::Future<Output = Result<T, ClusterError>>,
) -> Result<T, AccessError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(AccessError::Timeout),
    }
}

impl Access {
    /// Wraps a client; `default_namespace` is the kubeconfig context's, the one place a user
    /// without any list permission on namespaces is looked for.
    pub fn new(client: kube::Client, default_namespace: &str) -> Access {
        Access {
            cluster: Cluster::new(client),
            default_namespace: default_namespace.to_string(),
        }
    }

    /// The reconcile core's cluster handle (for the drift page's dry run).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The client.
    pub fn client(&self) -> kube::Client {
        self.cluster.client().clone()
    }

    /// Resolves a kind, or says it is not served.
    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Kind, AccessError> {
        bounded(self.cluster.resolve(api_version, kind))
            .await?
            .ok_or_else(|| AccessError::NotServed(format!("{api_version} {kind}")))
    }

    /// Namespaces to look in when the cluster-wide list is forbidden: every namespace the
    /// user may list, else the context's and `hints` (namespaces the page knows of, such as
    /// those the GitSyncs the user can read deploy to).
    async fn candidate_namespaces(&self, hints: &BTreeSet<String>) -> Vec<String> {
        let api: Api<Namespace> = Api::all(self.client());
        let listed =
            tokio::time::timeout(REQUEST_TIMEOUT, api.list_metadata(&ListParams::default())).await;
        match listed {
            Ok(Ok(list)) => list
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect(),
            _ => {
                let mut names = hints.clone();
                names.insert(self.default_namespace.clone());
                names.into_iter().collect()
            }
        }
    }

    /// Objects of `kind` with `selector`, in `namespaces` when given, else everywhere the user
    /// may list them.
    pub async fn list(
        &self,
        kind: &Kind,
        namespaces: Option<&BTreeSet<String>>,
        selector: &str,
    ) -> Result<Listing, AccessError> {
        self.list_hinted(kind, namespaces, &BTreeSet::new(), selector)
            .await
    }

    /// [`Access::list`] that, when neither the cluster-wide list nor the namespace list is
    /// allowed, also looks in `hints`.
    pub async fn list_hinted(
        &self,
        kind: &Kind,
        namespaces: Option<&BTreeSet<String>>,
        hints: &BTreeSet<String>,
        selector: &str,
    ) -> Result<Listing, AccessError> {
        let mut listing = self.list_untyped(kind, namespaces, hints, selector).await?;
        listing.items = with_types(std::mem::take(&mut listing.items), kind);
        Ok(listing)
    }

    async fn list_untyped(
        &self,
        kind: &Kind,
        namespaces: Option<&BTreeSet<String>>,
        hints: &BTreeSet<String>,
        selector: &str,
    ) -> Result<Listing, AccessError> {
        if !kind.namespaced {
            let items = bounded(self.cluster.list(kind, "", selector)).await?;
            return Ok(Listing {
                items,
                forbidden: Vec::new(),
                cluster_wide: true,
            });
        }
        if namespaces.is_none() {
            match bounded(self.cluster.list(kind, "", selector)).await {
                Ok(items) => {
                    return Ok(Listing {
                        items,
                        forbidden: Vec::new(),
                        cluster_wide: true,
                    });
                }
                Err(AccessError::Api(e)) if e.code == Some(403) => {}
                Err(e) => return Err(e),
            }
        }
        let names: Vec<String> = match namespaces {
            Some(set) => set.iter().cloned().collect(),
            None => self.candidate_namespaces(hints).await,
        };
        let lists = join_all(
            names
                .iter()
                .map(|ns| bounded(self.cluster.list(kind, ns, selector))),
        )
        .await;
        let mut listing = Listing::default();
        for (ns, result) in names.into_iter().zip(lists) {
            match result {
                Ok(items) => listing.items.extend(items),
                Err(AccessError::Api(e)) if e.code == Some(403) => listing.forbidden.push(ns),
                Err(e) => return Err(e),
            }
        }
        Ok(listing)
    }

    /// Like [`Access::list`], but a forbidden list is an empty listing, not an error.
    pub async fn list_or_empty(
        &self,
        api_version: &str,
        kind: &str,
        namespaces: Option<&BTreeSet<String>>,
        selector: &str,
    ) -> Listing {
        let Ok(kind) = self.kind(api_version, kind).await else {
            return Listing::default();
        };
        self.list(&kind, namespaces, selector)
            .await
            .unwrap_or_default()
    }

    /// Whether the user may `verb` `resource` of `group` in `namespace` (a
    /// SelfSubjectAccessReview; any failure counts as no).
    pub async fn may(&self, verb: &str, group: &str, resource: &str, namespace: &str) -> bool {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    namespace: Some(namespace.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client());
        match tokio::time::timeout(REQUEST_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
        {
            Ok(Ok(answer)) => answer.status.is_some_and(|s| s.allowed),
            _ => false,
        }
    }
}
