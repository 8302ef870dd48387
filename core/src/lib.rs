//! The shared core of sealed-secrets-rs: the sealing cryptography, scopes, keys and
//! certificates, the `SealedSecret` type and the conversions between Secrets and SealedSecrets.
//!
//! Everything here is wire-compatible with Bitnami Sealed Secrets (v0.36): values sealed by
//! upstream's kubeseal open here and the other way round. The crate does no I/O of its own —
//! no network, no files, no Kubernetes API calls — so the CLI, the controller and tests can all
//! drive it with whatever bytes they have.
//!
//! Module map:
//! - [`crypto`]: the hybrid RSA-OAEP + AES-GCM format and trial decryption;
//! - [`scope`]: strict / namespace-wide / cluster-wide and their OAEP labels;
//! - [`keys`], [`cert`]: key and certificate parsing, fingerprints, key generation;
//! - [`key_secret`]: key Secrets (labels, `tls.key`/`tls.crt`, recovery files), parsed once;
//! - [`sealed_secret`]: the CRD type;
//! - [`seal`], [`unseal`]: Secret → SealedSecret and back;
//! - [`budget`]: the limits one SealedSecret may use while it is opened;
//! - [`documents`]: YAML/JSON streams in, upstream-shaped output out;
//! - [`duration`]: Go durations, as flags and intervals are written;
//! - [`tagged`]: upstream's folded error text.
//!
//! `spec.template.data` is rendered by the Go text/template engine of the
//! `sealed-secrets-template` crate, which [`unseal`] calls under the per-object [`budget`].

pub mod budget;
pub mod cert;
pub mod crd;
pub mod crypto;
mod der;
pub mod documents;
pub mod duration;
pub mod key_secret;
pub mod keys;
pub mod reencrypt;
pub mod scope;
pub mod seal;
pub mod sealed_secret;
pub mod tagged;
pub mod unseal;
