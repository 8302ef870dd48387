//! The `GitSync` custom resource (`gitops.sealed-secrets-rs.io/v1alpha1`): one repository path
//! synced into the cluster.
//!
//! The shape follows what users of Argo CD Applications and Flux Kustomizations already know:
//! a source (URL, revision, path, credentials Secret), a destination namespace, an interval,
//! and the `prune` / `selfHeal` / `createNamespace` / `suspend` switches, with Argo CD's safe
//! defaults (nothing pruned or reverted unless asked). The secret policy is ours: raw `Secret`s
//! in Git are refused unless a user explicitly allows them. Status keeps Flux's inventory format
//! (`<namespace>_<name>_<group>_<kind>` plus version) so operators can read it the same way.

use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::audit::{DriftRecord, SyncRecord};

/// API group of our GitOps resources.
pub const GROUP: &str = "gitops.sealed-secrets-rs.io";
/// Label on every applied object naming the `GitSync` that applied it.
pub const NAME_LABEL: &str = "gitops.sealed-secrets-rs.io/name";
/// Label on every applied object naming the namespace of that `GitSync`.
pub const NAMESPACE_LABEL: &str = "gitops.sealed-secrets-rs.io/namespace";
/// Annotation (or label) that keeps an object when it leaves Git: value `disabled`.
pub const PRUNE_ANNOTATION: &str = "gitops.sealed-secrets-rs.io/prune";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "sealed-secrets-sync";
/// Finalizer that prunes the inventory when a GitSync with `prune: true` is deleted.
pub const FINALIZER: &str = "gitops.sealed-secrets-rs.io/finalizer";
/// Interval used when `spec.interval` is empty.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// Desired state: which repository path to sync where, and how.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gitops.sealed-secrets-rs.io",
    version = "v1alpha1",
    kind = "GitSync",
    plural = "gitsyncs",
    shortname = "gsync",
    namespaced,
    status = "GitSyncStatus",
    doc = "Syncs the manifests of one path of a Git repository into the cluster with server-side apply.",
    printcolumn = r#"{"name": "Revision", "type": "string", "jsonPath": ".status.lastAppliedRevision"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Health", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Healthy\")].reason"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GitSyncSpec {
    /// Where the manifests come from.
    pub source: GitSource,
    /// Where namespaced objects without a namespace go.
    #[serde(default)]
    pub destination: Destination,
    /// How often to look for a new revision and check for drift, as a Go duration ("5m").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: String,
    /// Delete objects that were applied before and are no longer in Git.
    #[serde(default)]
    pub prune: bool,
    /// Put back objects that were changed or deleted by hand, without waiting for a new revision.
    #[serde(default)]
    pub self_heal: bool,
    /// Create the destination namespace when it does not exist.
    #[serde(default)]
    pub create_namespace: bool,
    /// Stop syncing until set back to false.
    #[serde(default)]
    pub suspend: bool,
    /// What Secrets may come from Git.
    #[serde(default)]
    pub secret_policy: SecretPolicySpec,
    /// ServiceAccount of the GitSync's namespace whose permissions every request of the sync
    /// uses (the controller impersonates it). Empty: the controller's
    /// `--default-service-account`; without one the GitSync is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Syncs kept in `status.history` (default 10, at most 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub history_limit: Option<u32>,
    /// Where records of this GitSync are sent (a webhook), and which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationSpec>,
}

/// A webhook that receives records of this GitSync.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSpec {
    /// Secret of the GitSync's namespace with `address` (the webhook URL) and, optionally,
    /// `token` (sent as `Authorization: Bearer`). Read as the GitSync's ServiceAccount.
    pub secret_ref: SecretReference,
    /// Which records to send; empty means all three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotificationEvent>,
}

/// A kind of record a webhook can receive.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum NotificationEvent {
    /// A sync failed.
    SyncFailed,
    /// Drift was found (reverted, re-created or reported).
    Drift,
    /// A sync succeeded after a failed one.
    Recovered,
}

/// A Git repository path.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// Clone URL: https://, ssh:// (or scp-like), or file://.
    pub url: String,
    /// Branch, tag or full commit SHA; empty for the remote's HEAD.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Folder inside the repository; a `kustomization.yaml` there is built with kustomize,
    /// otherwise every YAML file under it is applied.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Secret in the GitSync's namespace with `username`+`password`, `bearerToken`, or
    /// `identity`+`known_hosts` (SSH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
}

/// A Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretReference {
    /// Name of the Secret.
    pub name: String,
}

/// Where objects go.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Namespace for namespaced objects that name none; defaults to the GitSync's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// Which Secrets may be applied from Git.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretPolicySpec {
    /// `Refuse` (default): a plain `v1/Secret` in the render fails the sync before anything is
    /// applied. `Allow`: apply it like any object.
    #[serde(default)]
    pub raw_secrets: RawSecretPolicy,
    /// Check, before applying anything, that the controller's keys open every SealedSecret.
    #[serde(default = "yes")]
    pub verify_sealed_secrets: bool,
}

fn yes() -> bool {
    true
}

impl Default for SecretPolicySpec {
    fn default() -> Self {
        SecretPolicySpec {
            raw_secrets: RawSecretPolicy::Refuse,
            verify_sealed_secrets: true,
        }
    }
}

/// Whether plain Secrets may come from Git.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RawSecretPolicy {
    /// Fail the sync.
    #[default]
    Refuse,
    /// Apply them.
    Allow,
}

/// Observed state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSyncStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Commit last fetched from the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetched_revision: Option<String>,
    /// Commit whose manifests were last applied completely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Objects applied by this GitSync (what prune compares against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<InventoryStatus>,
    /// `Ready` (last sync succeeded) and `Healthy` (applied objects are healthy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Message of the last failure, cleared by a successful sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The `requested-at` annotation value last acted on (a change is a manual request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_requested_at: Option<String>,
    /// Syncs that applied, corrected or failed, newest first (at most `spec.historyLimit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<SyncRecord>,
    /// Drift found by syncs, newest first (at most 20, and a byte cap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftRecord>,
}

/// The applied objects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InventoryStatus {
    /// One entry per object, sorted by id.
    pub entries: Vec<InventoryEntry>,
}

/// One applied object, as Flux writes it.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub struct InventoryEntry {
    /// `<namespace>_<name>_<group>_<kind>`; namespace and group empty when not applicable.
    pub id: String,
    /// API version the object was applied with.
    pub v: String,
}

/// A status condition (`metav1.Condition`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready` or `Healthy`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// Generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Path of the committed GitSync CRD, relative to the workspace root.
pub const CRD_PATH: &str = "crds/gitops.sealed-secrets-rs.io_gitsyncs.yaml";

/// The command that regenerates [`CRD_PATH`].
pub const REGENERATE_COMMAND: &str = "UPDATE_CRDS=1 cargo test -p sealed-secrets-sync --test crd";

/// The GitSync CRD as committed at [`CRD_PATH`].
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    sealed_secrets_core::crd::crd_file(&GitSync::crd(), "sync/src/resource.rs", REGENERATE_COMMAND)
}

/// An `interval` that is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.interval: {0:?} is not a duration such as \"30s\", \"5m\" or \"1h30m\"")]
pub struct IntervalError(pub String);

/// Parses a Go duration (`1h30m`, `45s`, `500ms`); empty means [`DEFAULT_INTERVAL`].
/// Durations under one second are raised to one second, so a typo cannot hammer the server.
pub fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_INTERVAL);
    }
    sealed_secrets_core::duration::parse_go_duration(text)
        .map(|d| d.max(Duration::from_secs(1)))
        .map_err(|_| IntervalError(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_like_go_durations() {
        assert_eq!(parse_interval("").unwrap(), DEFAULT_INTERVAL);
        assert_eq!(parse_interval("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_interval("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_interval("10ms").unwrap(), Duration::from_secs(1));
        for bad in ["5", "m", "5x", "-5s", "5m3"] {
            let err = parse_interval(bad).unwrap_err();
            assert!(err.to_string().contains("spec.interval"), "{bad}: {err}");
        }
    }

    #[test]
    fn defaults_are_the_safe_ones() {
        let spec: GitSyncSpec =
            serde_json::from_value(serde_json::json!({"source": {"url": "file:///repo"}})).unwrap();
        assert!(!spec.prune && !spec.self_heal && !spec.suspend && !spec.create_namespace);
        assert_eq!(spec.secret_policy.raw_secrets, RawSecretPolicy::Refuse);
        assert!(spec.secret_policy.verify_sealed_secrets);
    }
}
