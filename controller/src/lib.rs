//! The sealed-secrets controller, wire- and RBAC-compatible with Bitnami's: it holds the
//! sealing keys in Secrets of its namespace, renews them, turns SealedSecrets into Secrets, and
//! serves the certificate and the verify/rotate API.
//!
//! Module map:
//! - [`args`]: upstream's flags and ours;
//! - [`keyring`]: the keys in memory, which one seals, which order to try them in;
//! - [`key_manager`]: loading, watching, generating and renewing key Secrets;
//! - [`decisions`]: pure reconcile decisions (ownership, patch/replace, status);
//! - [`dependants`]: which key each SealedSecret needs, counted per key;
//! - [`reconciler`]: the watch-driven reconcile loop around them;
//! - [`cached`], [`shed`]: what the watch cache keeps of a SealedSecret;
//! - [`sealed_watch`]: from SealedSecret watch events to work (cache, backlog, early lane);
//! - [`relist`], [`retry`]: what a watch missed during a gap, and which failures to retry when;
//! - [`events`], [`metrics`], [`http`]: what users and tools observe;
//! - [`leader`]: Lease-based leader election for several replicas;
//! - [`app`]: start-up wiring.

pub mod app;
pub mod args;
pub mod backlog;
pub mod cached;
pub mod decisions;
pub mod dependants;
pub mod digest;
pub mod events;
pub mod http;
pub mod key_manager;
pub mod keyring;
pub mod leader;
pub mod metrics;
pub mod reconciler;
pub mod relist;
pub mod retry;
pub mod sealed_watch;
pub mod shed;

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod reconcile_tests;
