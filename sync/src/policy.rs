//! The secret policy: what neither Argo CD nor Flux checks before applying.
//!
//! A plain `v1/Secret` in a rendered repository means a plaintext credential was committed; by
//! default the whole sync fails, naming the file, before anything is applied (applying the rest
//! would leave the cluster half on a new revision). A SealedSecret that the controller's keys
//! cannot open would apply fine and then fail at unseal time, after the workloads that need it
//! rolled out; checking every one up front turns that into one clear sync error instead.

use sealed_secrets_core::{
    keys::PrivateKey,
    sealed_secret::{API_VERSION, KIND, SealedSecret},
    unseal::{UnsealOptions, unseal},
};

use crate::{
    manifest::{Manifest, Origin},
    resource::RawSecretPolicy,
};

/// Opens SealedSecrets with the sealing keys, to prove they were sealed for this cluster.
pub trait SealedSecretVerifier: Send + Sync {
    /// `Ok` when the keys open every item; otherwise a message without any secret material.
    fn verify(&self, sealed: &SealedSecret) -> Result<(), String>;
}

/// Any function of a SealedSecret can verify (the controller passes one over its key ring).
impl<F> SealedSecretVerifier for F
where
    F: Fn(&SealedSecret) -> Result<(), String> + Send + Sync,
{
    fn verify(&self, sealed: &SealedSecret) -> Result<(), String> {
        self(sealed)
    }
}

/// Verifies with a fixed set of private keys (backups given to `kubeseal sync`, or tests).
pub struct KeysVerifier(pub Vec<PrivateKey>);

impl SealedSecretVerifier for KeysVerifier {
    fn verify(&self, sealed: &SealedSecret) -> Result<(), String> {
        let options = UnsealOptions {
            accept_deprecated_v1_data: true,
        };
        unseal(sealed, &self.0, options)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A policy violation, naming the object and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A raw Secret would be applied from Git.
    #[error(
        "{origin}: Secret {name:?} is a plain Secret committed to Git; seal it with kubeseal (or set spec.secretPolicy.rawSecrets: Allow)"
    )]
    RawSecret {
        /// Where it was written.
        origin: Origin,
        /// Its name.
        name: String,
    },
    /// A SealedSecret is malformed or cannot be opened with the controller's keys.
    #[error("{origin}: SealedSecret {name:?} cannot be unsealed by this cluster: {reason}")]
    Unopenable {
        /// Where it was written.
        origin: Origin,
        /// Its name.
        name: String,
        /// Why (no secret material).
        reason: String,
    },
}

/// Whether an object is a plain core Secret.
pub fn is_raw_secret(manifest: &Manifest) -> bool {
    manifest.api_version() == "v1" && manifest.kind() == "Secret"
}

/// Whether an object is a SealedSecret.
pub fn is_sealed_secret(manifest: &Manifest) -> bool {
    manifest.api_version() == API_VERSION && manifest.kind() == KIND
}

fn name_of(manifest: &Manifest) -> String {
    manifest
        .object
        .pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// Checks the whole render; returns every violation (empty when the render may be applied).
///
/// `default_namespace` is where namespaced objects without a namespace will go; SealedSecrets
/// are verified with that namespace filled in, since strict and namespace-wide scopes bind it.
pub fn check(
    manifests: &[Manifest],
    raw_secrets: RawSecretPolicy,
    verifier: Option<&dyn SealedSecretVerifier>,
    default_namespace: &str,
) -> Vec<PolicyError> {
    let mut violations = Vec::new();
    for manifest in manifests {
        if raw_secrets == RawSecretPolicy::Refuse && is_raw_secret(manifest) {
            violations.push(PolicyError::RawSecret {
                origin: manifest.origin.clone(),
                name: name_of(manifest),
            });
        }
        let Some(verifier) = verifier else { continue };
        if !is_sealed_secret(manifest) {
            continue;
        }
        let mut object = manifest.object.clone();
        if object.pointer("/metadata/namespace").is_none()
            && let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut())
        {
            meta.insert("namespace".into(), default_namespace.into());
        }
        let result = SealedSecret::from_value(object)
            .map_err(|e| e.to_string())
            .and_then(|sealed| verifier.verify(&sealed));
        if let Err(reason) = result {
            violations.push(PolicyError::Unopenable {
                origin: manifest.origin.clone(),
                name: name_of(manifest),
                reason,
            });
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn manifest(line: usize, object: Value) -> Manifest {
        Manifest {
            origin: Origin {
                file: "apps/secrets.yaml".into(),
                line,
            },
            object,
        }
    }

    /// Accepts SealedSecrets whose namespace is `good`.
    struct NamespaceVerifier;
    impl SealedSecretVerifier for NamespaceVerifier {
        fn verify(&self, sealed: &SealedSecret) -> Result<(), String> {
            match sealed.metadata.namespace.as_deref() {
                Some("good") => Ok(()),
                _ => Err("no key could decrypt the secret".into()),
            }
        }
    }

    fn render() -> Vec<Manifest> {
        vec![
            manifest(
                1,
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            ),
            manifest(
                5,
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}}),
            ),
            manifest(
                12,
                json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "ok"}, "spec": {"encryptedData": {"a": "AA=="}}}),
            ),
            manifest(
                20,
                json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "other", "namespace": "bad"}, "spec": {"encryptedData": {"a": "AA=="}}}),
            ),
        ]
    }

    #[test]
    fn raw_secrets_are_refused_by_default_naming_file_and_line() {
        let violations = check(&render(), RawSecretPolicy::Refuse, None, "good");
        assert_eq!(violations.len(), 1);
        let message = violations[0].to_string();
        assert!(
            message.starts_with("apps/secrets.yaml:5: Secret \"db\""),
            "{message}"
        );
        assert!(!message.contains("hunter2"));
        assert!(check(&render(), RawSecretPolicy::Allow, None, "good").is_empty());
    }

    #[test]
    fn sealed_secrets_are_verified_in_their_destination_namespace() {
        let violations = check(
            &render(),
            RawSecretPolicy::Allow,
            Some(&NamespaceVerifier),
            "good",
        );
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0]
                .to_string()
                .starts_with("apps/secrets.yaml:20: SealedSecret \"other\" cannot be unsealed"),
            "{}",
            violations[0]
        );
        let violations = check(
            &render(),
            RawSecretPolicy::Refuse,
            Some(&NamespaceVerifier),
            "elsewhere",
        );
        assert_eq!(violations.len(), 3);
    }
}
