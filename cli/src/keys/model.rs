//! The decisions of `kubeseal keys`, as pure functions over what was read from the cluster:
//! which key seals, how many SealedSecrets each key opened, and whether a key may be retired.
//! Keeping them free of I/O lets the unit tests cover every rule without an API server.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

pub use sealed_secrets_core::key_secret::{
    BACKED_UP_ANNOTATION as BACKED_UP_AT, KEY_LABEL, LABEL_ACTIVE as ACTIVE,
    LABEL_RETIRED as RETIRED,
};

/// Which time orders keys, as the controller's `--key-order-priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyOrder {
    /// The certificate's NotBefore (the controller's default).
    #[value(name = "CertNotBefore")]
    CertNotBefore,
    /// The key Secret's creationTimestamp.
    #[value(name = "SecretCreationTimestamp")]
    SecretCreationTimestamp,
}

/// One key Secret, reduced to what the decisions need (no key material).
#[derive(Debug, Clone, PartialEq)]
pub struct KeySecret {
    /// Secret name.
    pub name: String,
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
    /// Value of [`KEY_LABEL`].
    pub label: String,
    /// Fingerprint of the certificate's public key.
    pub fingerprint: String,
    /// Certificate NotBefore.
    pub not_before: Timestamp,
    /// Certificate NotAfter.
    pub not_after: Timestamp,
}

impl KeySecret {
    fn order_time(&self, order: KeyOrder) -> Timestamp {
        sealed_secrets_core::key_secret::KeyOrder::from(order)
            .order_time(self.not_before, self.created)
    }
}

impl From<KeyOrder> for sealed_secrets_core::key_secret::KeyOrder {
    fn from(order: KeyOrder) -> Self {
        match order {
            KeyOrder::CertNotBefore => Self::CertNotBefore,
            KeyOrder::SecretCreationTimestamp => Self::SecretCreationTimestamp,
        }
    }
}

/// What a SealedSecret says about the key that opened it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependant {
    /// Namespace of the SealedSecret.
    pub namespace: String,
    /// Name of the SealedSecret.
    pub name: String,
    /// `status.keyFingerprint`.
    pub fingerprint: Option<String>,
    /// `lastUpdateTime` of the `Synced` condition.
    pub last_synced: Option<Timestamp>,
}

/// How far the SealedSecret count reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "scope")]
pub enum Coverage {
    /// One cluster-wide list.
    Cluster,
    /// Each listable namespace; `skipped` were forbidden.
    Namespaces {
        /// Namespaces that could not be listed.
        skipped: Vec<String>,
    },
    /// Only the current namespace (neither a cluster-wide list nor the namespaces were allowed).
    CurrentNamespace {
        /// The namespace counted.
        namespace: String,
    },
}

impl Coverage {
    /// Whether every SealedSecret of the cluster was counted.
    pub fn is_complete(&self) -> bool {
        match self {
            Self::Cluster => true,
            Self::Namespaces { skipped } => skipped.is_empty(),
            Self::CurrentNamespace { .. } => false,
        }
    }
}

/// State of a key in the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// The key new SealedSecrets are sealed with.
    Sealing,
    /// In use for opening, not for sealing.
    Active,
    /// Kept, not used by the controller.
    Retired,
    /// Any other label value (the controller ignores such keys too).
    #[serde(untagged)]
    Other(String),
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sealing => f.write_str("sealing"),
            Self::Active => f.write_str(ACTIVE),
            Self::Retired => f.write_str(RETIRED),
            Self::Other(label) => f.write_str(label),
        }
    }
}

/// One row of `kubeseal keys`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRow {
    /// `PublicKey::fingerprint()` of the key.
    pub fingerprint: String,
    /// Name of the key Secret.
    pub secret: String,
    /// When the Secret was created.
    pub created: Option<Timestamp>,
    /// Certificate NotAfter.
    pub expires: Timestamp,
    /// sealing / active / retired.
    pub state: State,
    /// How many SealedSecrets name this key in `status.keyFingerprint`.
    pub sealed_secrets: usize,
    /// Newest `Synced` update among them.
    pub last_needed: Option<Timestamp>,
    /// No dependants and not the sealing key; `None` when the count is incomplete or the key
    /// is not active.
    pub safe_to_retire: Option<bool>,
}

/// The key Secret the controller seals with: the newest `active` key by `order`; ties keep the
/// first in `keys` (the controller keeps the earlier-registered key, and it registers in list
/// order).
pub fn sealing_key(keys: &[KeySecret], order: KeyOrder) -> Option<&KeySecret> {
    let mut best: Option<&KeySecret> = None;
    for key in keys.iter().filter(|k| k.label == ACTIVE) {
        if best.is_none_or(|b| key.order_time(order) > b.order_time(order)) {
            best = Some(key);
        }
    }
    best
}

/// Per fingerprint: how many dependants, and the newest `Synced` time among them.
fn usage(dependants: &[Dependant]) -> BTreeMap<&str, (usize, Option<Timestamp>)> {
    let mut usage: BTreeMap<&str, (usize, Option<Timestamp>)> = BTreeMap::new();
    for dependant in dependants {
        let Some(fingerprint) = dependant.fingerprint.as_deref() else {
            continue;
        };
        let entry = usage.entry(fingerprint).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(dependant.last_synced);
    }
    usage
}

/// The listing: one row per key Secret, oldest first by `order`.
pub fn rows(
    keys: &[KeySecret],
    dependants: &[Dependant],
    coverage: &Coverage,
    order: KeyOrder,
) -> Vec<KeyRow> {
    let sealing = sealing_key(keys, order).map(|k| k.name.clone());
    let usage = usage(dependants);
    let mut sorted: Vec<&KeySecret> = keys.iter().collect();
    sorted.sort_by_key(|k| k.order_time(order));
    sorted
        .into_iter()
        .map(|key| {
            let (count, last) = usage
                .get(key.fingerprint.as_str())
                .copied()
                .unwrap_or_default();
            let state = if sealing.as_deref() == Some(key.name.as_str()) {
                State::Sealing
            } else if key.label == ACTIVE {
                State::Active
            } else if key.label == RETIRED {
                State::Retired
            } else {
                State::Other(key.label.clone())
            };
            let safe_to_retire = match state {
                State::Sealing => Some(false),
                State::Active if !coverage.is_complete() && count == 0 => None,
                State::Active => Some(count == 0),
                _ => None,
            };
            KeyRow {
                fingerprint: key.fingerprint.clone(),
                secret: key.name.clone(),
                created: key.created,
                expires: key.not_after,
                state,
                sealed_secrets: count,
                last_needed: last,
                safe_to_retire,
            }
        })
        .collect()
}

/// Why a key cannot be relabelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    /// No key Secret holds this fingerprint.
    #[error(
        "no key Secret in namespace {namespace:?} has fingerprint {fingerprint}; `kubeseal keys` \
         lists the fingerprints"
    )]
    UnknownFingerprint {
        /// The fingerprint asked for.
        fingerprint: String,
        /// The controller namespace searched.
        namespace: String,
    },
    /// The key is the one the controller seals with.
    #[error(
        "refusing to retire {fingerprint} (key Secret {secret}): it is the sealing key, the one \
         the controller seals new SealedSecrets with; a newer key must exist first (the \
         controller makes one every --key-renew-period, or add one with sealed-secrets-keygen)"
    )]
    SealingKey {
        /// The fingerprint.
        fingerprint: String,
        /// Its Secret.
        secret: String,
    },
    /// SealedSecrets still open with the key.
    #[error(
        "refusing to retire {fingerprint}: {count} SealedSecret(s) still depend on it ({examples}); \
         re-encrypt them first (`kubeseal re-encrypt --all PATH`, then apply), or pass --force to \
         retire it anyway (they will stop unsealing)"
    )]
    HasDependants {
        /// The fingerprint.
        fingerprint: String,
        /// How many.
        count: usize,
        /// Up to three `namespace/name`.
        examples: String,
    },
    /// Not every namespace could be counted.
    #[error(
        "refusing to retire {fingerprint}: kubeseal could not list the SealedSecrets of every \
         namespace ({coverage}), so it cannot tell whether any still depends on this key; pass \
         --force to retire it anyway"
    )]
    IncompleteCount {
        /// The fingerprint.
        fingerprint: String,
        /// What was counted.
        coverage: String,
    },
}

/// Which label change to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relabel {
    /// `active` → `retired`.
    Retire,
    /// `retired` → `active`.
    Restore,
}

impl Relabel {
    /// The label value a Secret must have to be changed.
    pub fn source_label(self) -> &'static str {
        match self {
            Self::Retire => ACTIVE,
            Self::Restore => RETIRED,
        }
    }

    /// The label value it gets.
    pub fn target_label(self) -> &'static str {
        match self {
            Self::Retire => RETIRED,
            Self::Restore => ACTIVE,
        }
    }
}

/// Accepts a fingerprint with or without its `SHA256:` prefix.
pub fn normalize_fingerprint(text: &str) -> String {
    let text = text.trim();
    if text.starts_with("SHA256:") {
        text.to_string()
    } else {
        format!("SHA256:{text}")
    }
}

/// Describes `coverage` for messages.
pub fn describe_coverage(coverage: &Coverage) -> String {
    match coverage {
        Coverage::Cluster => "all namespaces".into(),
        Coverage::Namespaces { skipped } if skipped.is_empty() => {
            "every namespace, one by one".into()
        }
        Coverage::Namespaces { skipped } => {
            format!("namespaces {} could not be listed", skipped.join(", "))
        }
        Coverage::CurrentNamespace { namespace } => format!("only namespace {namespace:?}"),
    }
}

/// What was read from the cluster, for [`plan_relabel`].
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The key Secrets.
    pub keys: &'a [KeySecret],
    /// The SealedSecrets counted.
    pub dependants: &'a [Dependant],
    /// How far the count reaches.
    pub coverage: &'a Coverage,
    /// Which time picks the sealing key.
    pub order: KeyOrder,
    /// The controller namespace (for messages).
    pub namespace: &'a str,
}

/// The key Secrets to relabel for `fingerprint`, or why not. Secrets already in the target
/// state are left out (an empty answer means nothing to do).
pub fn plan_relabel<'a>(
    change: Relabel,
    fingerprint: &str,
    force: bool,
    observed: Observed<'a>,
) -> Result<Vec<&'a KeySecret>, RelabelError> {
    let Observed {
        keys,
        dependants,
        coverage,
        order,
        namespace,
    } = observed;
    let matching: Vec<&KeySecret> = keys
        .iter()
        .filter(|k| k.fingerprint == fingerprint)
        .collect();
    if matching.is_empty() {
        return Err(RelabelError::UnknownFingerprint {
            fingerprint: fingerprint.to_string(),
            namespace: namespace.to_string(),
        });
    }
    let todo: Vec<&KeySecret> = matching
        .into_iter()
        .filter(|k| k.label == change.source_label())
        .collect();
    if change == Relabel::Restore || todo.is_empty() {
        return Ok(todo);
    }
    if let Some(sealing) = sealing_key(keys, order)
        && sealing.fingerprint == fingerprint
    {
        return Err(RelabelError::SealingKey {
            fingerprint: fingerprint.to_string(),
            secret: sealing.name.clone(),
        });
    }
    if force {
        return Ok(todo);
    }
    let users: Vec<&Dependant> = dependants
        .iter()
        .filter(|d| d.fingerprint.as_deref() == Some(fingerprint))
        .collect();
    if !users.is_empty() {
        let mut examples: Vec<String> = users
            .iter()
            .take(3)
            .map(|d| format!("{}/{}", d.namespace, d.name))
            .collect();
        if users.len() > 3 {
            examples.push("…".into());
        }
        return Err(RelabelError::HasDependants {
            fingerprint: fingerprint.to_string(),
            count: users.len(),
            examples: examples.join(", "),
        });
    }
    if !coverage.is_complete() {
        return Err(RelabelError::IncompleteCount {
            fingerprint: fingerprint.to_string(),
            coverage: describe_coverage(coverage),
        });
    }
    Ok(todo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn key(name: &str, label: &str, fingerprint: &str, made: i64) -> KeySecret {
        KeySecret {
            name: name.into(),
            created: Some(ts(made)),
            label: label.into(),
            fingerprint: fingerprint.into(),
            not_before: ts(made),
            not_after: ts(made + 1000),
        }
    }

    fn user(name: &str, fingerprint: Option<&str>, synced: Option<i64>) -> Dependant {
        Dependant {
            namespace: "shop".into(),
            name: name.into(),
            fingerprint: fingerprint.map(str::to_string),
            last_synced: synced.map(ts),
        }
    }

    fn ring() -> Vec<KeySecret> {
        vec![
            key("k-new", ACTIVE, "SHA256:c", 300),
            key("k-old", ACTIVE, "SHA256:a", 100),
            key("k-mid", RETIRED, "SHA256:b", 200),
        ]
    }

    #[test]
    fn sealing_key_is_the_newest_active_one() {
        let keys = ring();
        assert_eq!(
            sealing_key(&keys, KeyOrder::CertNotBefore).unwrap().name,
            "k-new"
        );
        // A newer key that is retired never seals.
        let mut keys = ring();
        keys.push(key("k-retired-newest", RETIRED, "SHA256:d", 400));
        assert_eq!(
            sealing_key(&keys, KeyOrder::CertNotBefore).unwrap().name,
            "k-new"
        );
        // Creation order can disagree with the certificate's.
        keys[1].created = Some(ts(999));
        assert_eq!(
            sealing_key(&keys, KeyOrder::SecretCreationTimestamp)
                .unwrap()
                .name,
            "k-old"
        );
        // Ties keep the first listed.
        let tied = vec![
            key("x", ACTIVE, "SHA256:x", 5),
            key("y", ACTIVE, "SHA256:y", 5),
        ];
        assert_eq!(
            sealing_key(&tied, KeyOrder::CertNotBefore).unwrap().name,
            "x"
        );
        assert!(
            sealing_key(&[key("r", RETIRED, "SHA256:r", 1)], KeyOrder::CertNotBefore).is_none()
        );
    }

    #[test]
    fn rows_count_dependants_and_their_last_sync() {
        let dependants = vec![
            user("a", Some("SHA256:a"), Some(50)),
            user("b", Some("SHA256:a"), Some(70)),
            user("c", Some("SHA256:c"), None),
            user("never-synced", None, None),
            user("foreign", Some("SHA256:zzz"), Some(1)),
        ];
        let rows = rows(
            &ring(),
            &dependants,
            &Coverage::Cluster,
            KeyOrder::CertNotBefore,
        );
        let names: Vec<&str> = rows.iter().map(|r| r.secret.as_str()).collect();
        assert_eq!(names, ["k-old", "k-mid", "k-new"], "oldest first");
        assert_eq!(rows[0].state, State::Active);
        assert_eq!(rows[0].sealed_secrets, 2);
        assert_eq!(rows[0].last_needed, Some(ts(70)));
        assert_eq!(rows[0].safe_to_retire, Some(false));
        assert_eq!(rows[0].expires, ts(1100));
        assert_eq!(rows[1].state, State::Retired);
        assert_eq!(rows[1].sealed_secrets, 0);
        assert_eq!(rows[1].safe_to_retire, None);
        assert_eq!(rows[2].state, State::Sealing);
        assert_eq!(rows[2].sealed_secrets, 1);
        assert_eq!(rows[2].last_needed, None);
        assert_eq!(rows[2].safe_to_retire, Some(false), "never the sealing key");
    }

    #[test]
    fn unused_active_key_is_safe_only_when_every_namespace_was_counted() {
        let complete = rows(&ring(), &[], &Coverage::Cluster, KeyOrder::CertNotBefore);
        assert_eq!(complete[0].safe_to_retire, Some(true));
        let partial = Coverage::CurrentNamespace {
            namespace: "shop".into(),
        };
        let rows = rows(&ring(), &[], &partial, KeyOrder::CertNotBefore);
        assert_eq!(rows[0].safe_to_retire, None);
        let skipped = Coverage::Namespaces {
            skipped: vec!["secret-ns".into()],
        };
        assert!(!skipped.is_complete());
        assert!(Coverage::Namespaces { skipped: vec![] }.is_complete());
    }

    fn plan(
        change: Relabel,
        fingerprint: &str,
        dependants: &[Dependant],
        coverage: &Coverage,
        force: bool,
    ) -> Result<Vec<String>, RelabelError> {
        let keys = ring();
        let observed = Observed {
            keys: &keys,
            dependants,
            coverage,
            order: KeyOrder::CertNotBefore,
            namespace: "kube-system",
        };
        plan_relabel(change, fingerprint, force, observed)
            .map(|v| v.into_iter().map(|k| k.name.clone()).collect())
    }

    #[test]
    fn retiring_an_unused_key_is_allowed() {
        let out = plan(Relabel::Retire, "SHA256:a", &[], &Coverage::Cluster, false).unwrap();
        assert_eq!(out, ["k-old"]);
        // Already retired: nothing to do.
        let out = plan(Relabel::Retire, "SHA256:b", &[], &Coverage::Cluster, false).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn retiring_is_refused_with_dependants_unless_forced() {
        let users = [
            user("a", Some("SHA256:a"), None),
            user("b", Some("SHA256:a"), None),
            user("c", Some("SHA256:a"), None),
            user("d", Some("SHA256:a"), None),
        ];
        let err = plan(
            Relabel::Retire,
            "SHA256:a",
            &users,
            &Coverage::Cluster,
            false,
        )
        .unwrap_err();
        assert!(matches!(err, RelabelError::HasDependants { count: 4, .. }));
        let text = err.to_string();
        assert!(text.contains("shop/a, shop/b, shop/c, …"), "{text}");
        assert!(text.contains("--force"), "{text}");
        let out = plan(
            Relabel::Retire,
            "SHA256:a",
            &users,
            &Coverage::Cluster,
            true,
        )
        .unwrap();
        assert_eq!(out, ["k-old"]);
    }

    #[test]
    fn the_sealing_key_is_always_refused() {
        for force in [false, true] {
            let err =
                plan(Relabel::Retire, "SHA256:c", &[], &Coverage::Cluster, force).unwrap_err();
            assert_eq!(
                err,
                RelabelError::SealingKey {
                    fingerprint: "SHA256:c".into(),
                    secret: "k-new".into()
                }
            );
            assert!(err.to_string().contains("it is the sealing key"));
        }
    }

    #[test]
    fn unknown_fingerprints_are_named() {
        let err = plan(
            Relabel::Retire,
            "SHA256:nope",
            &[],
            &Coverage::Cluster,
            true,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string().lines().next().unwrap(),
            "no key Secret in namespace \"kube-system\" has fingerprint SHA256:nope; `kubeseal \
             keys` lists the fingerprints"
        );
        assert!(
            plan(
                Relabel::Restore,
                "SHA256:nope",
                &[],
                &Coverage::Cluster,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn incomplete_counts_refuse_unless_forced() {
        let partial = Coverage::CurrentNamespace {
            namespace: "shop".into(),
        };
        let err = plan(Relabel::Retire, "SHA256:a", &[], &partial, false).unwrap_err();
        assert!(matches!(err, RelabelError::IncompleteCount { .. }), "{err}");
        assert!(err.to_string().contains("only namespace \"shop\""));
        assert_eq!(
            plan(Relabel::Retire, "SHA256:a", &[], &partial, true).unwrap(),
            ["k-old"]
        );
    }

    #[test]
    fn restore_relabels_retired_keys_only() {
        assert_eq!(
            plan(Relabel::Restore, "SHA256:b", &[], &Coverage::Cluster, false).unwrap(),
            ["k-mid"]
        );
        assert!(
            plan(Relabel::Restore, "SHA256:a", &[], &Coverage::Cluster, false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn fingerprints_may_omit_their_prefix() {
        assert_eq!(normalize_fingerprint(" abc "), "SHA256:abc");
        assert_eq!(normalize_fingerprint("SHA256:abc"), "SHA256:abc");
    }
}
