//! Sealing scopes: which renames and moves a SealedSecret survives.
//!
//! The scope is bound into every ciphertext through the RSA-OAEP label, so it is enforced by the
//! cryptography, not by a check that could be skipped: `strict` binds `namespace/name`,
//! `namespace-wide` binds the namespace, `cluster-wide` binds nothing.
//!
//! At decrypt time the scope comes from the SealedSecret's **own** `metadata.annotations`
//! (cluster-wide wins over namespace-wide), never from the template.

use std::{collections::BTreeMap, fmt, str::FromStr};

/// Annotation that selects the cluster-wide scope when its value is exactly `"true"`.
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Annotation that selects the namespace-wide scope when its value is exactly `"true"`.
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";

/// How tightly a ciphertext is bound to the object that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Bound to namespace and name (upstream's default).
    #[default]
    Strict,
    /// Bound to the namespace; the object may be renamed.
    NamespaceWide,
    /// Bound to nothing; the object may be renamed and moved.
    ClusterWide,
}

/// An unknown `--scope` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: strict, namespace-wide, cluster-wide")]
pub struct ScopeParseError;

impl FromStr for Scope {
    type Err = ScopeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "strict" => Ok(Self::Strict),
            "namespace-wide" => Ok(Self::NamespaceWide),
            "cluster-wide" => Ok(Self::ClusterWide),
            _ => Err(ScopeParseError),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Strict => "strict",
            Self::NamespaceWide => "namespace-wide",
            Self::ClusterWide => "cluster-wide",
        })
    }
}

impl Scope {
    /// The scope an object's annotations select (cluster-wide wins if both are set).
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Self {
        let is_true = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .is_some_and(|v| v == "true")
        };
        if is_true(CLUSTER_WIDE_ANNOTATION) {
            Self::ClusterWide
        } else if is_true(NAMESPACE_WIDE_ANNOTATION) {
            Self::NamespaceWide
        } else {
            Self::Strict
        }
    }

    /// The RSA-OAEP label for an object with this scope, namespace and name.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Self::Strict => format!("{namespace}/{name}").into_bytes(),
            Self::NamespaceWide => namespace.as_bytes().to_vec(),
            Self::ClusterWide => Vec::new(),
        }
    }

    /// The annotation that marks this scope, if any (`strict` has none).
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            Self::Strict => None,
            Self::NamespaceWide => Some(NAMESPACE_WIDE_ANNOTATION),
            Self::ClusterWide => Some(CLUSTER_WIDE_ANNOTATION),
        }
    }

    /// Rewrites `annotations` so they select exactly this scope: both scope annotations are
    /// removed, then the one of this scope (if any) is added with `"true"`.
    pub fn write_annotations(self, annotations: &mut BTreeMap<String, String>) {
        annotations.remove(CLUSTER_WIDE_ANNOTATION);
        annotations.remove(NAMESPACE_WIDE_ANNOTATION);
        if let Some(key) = self.annotation() {
            annotations.insert(key.to_string(), "true".to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_match_upstream_table() {
        assert_eq!(Scope::Strict.label("myns", "myname"), b"myns/myname");
        assert_eq!(Scope::NamespaceWide.label("myns", "myname"), b"myns");
        assert_eq!(Scope::ClusterWide.label("myns", "myname"), b"");
    }

    #[test]
    fn parsing_accepts_upstream_values_only() {
        assert_eq!("".parse(), Ok(Scope::Strict));
        assert_eq!("strict".parse(), Ok(Scope::Strict));
        assert_eq!("namespace-wide".parse(), Ok(Scope::NamespaceWide));
        assert_eq!("cluster-wide".parse(), Ok(Scope::ClusterWide));
        let err = "Cluster-Wide".parse::<Scope>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "must be one of: strict, namespace-wide, cluster-wide"
        );
    }

    #[test]
    fn cluster_wide_wins_and_only_true_counts() {
        let both = annotations(&[
            (CLUSTER_WIDE_ANNOTATION, "true"),
            (NAMESPACE_WIDE_ANNOTATION, "true"),
        ]);
        assert_eq!(Scope::from_annotations(Some(&both)), Scope::ClusterWide);
        let yes = annotations(&[
            (CLUSTER_WIDE_ANNOTATION, "yes"),
            (NAMESPACE_WIDE_ANNOTATION, "true"),
        ]);
        assert_eq!(Scope::from_annotations(Some(&yes)), Scope::NamespaceWide);
        assert_eq!(Scope::from_annotations(None), Scope::Strict);
    }

    #[test]
    fn writing_annotations_replaces_any_previous_scope() {
        let mut a = annotations(&[(CLUSTER_WIDE_ANNOTATION, "true"), ("other", "kept")]);
        Scope::NamespaceWide.write_annotations(&mut a);
        assert_eq!(
            a,
            annotations(&[(NAMESPACE_WIDE_ANNOTATION, "true"), ("other", "kept")])
        );
        Scope::Strict.write_annotations(&mut a);
        assert_eq!(a, annotations(&[("other", "kept")]));
    }
}
