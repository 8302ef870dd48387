//! `gitops-controller`: the GitSync reconciler of [`sealed_secrets_sync`] as its own process,
//! apart from the sealing controller.
//!
//! Why a separate binary and Deployment: a GitOps controller applies whatever Git says, so it
//! needs wide write access; the sealing controller holds the private keys. In one pod, anyone
//! who could create a GitSync could make the key holder write any object, including reading
//! or replacing the key Secrets. Here the two are split:
//! - this process never reads key Secrets and holds no private key; SealedSecrets in Git are
//!   checked by the sealing controller's `/v1/verify` ([`verify`]), which does not render
//!   templates;
//! - every request of a sync runs as a ServiceAccount of the GitSync's namespace
//!   ([`sealed_secrets_sync::tenancy`]); its own ServiceAccount may only read GitSyncs, write
//!   their status and finalizers, record events and impersonate ServiceAccounts;
//! - the sealing controller no longer links git, kustomize or the sync engine.
//!
//! Module map: [`args`] (flags), [`verify`] (the `/v1/verify` client), [`metrics`]
//! (Prometheus), [`webhook`] (notifications and their target guard), [`app`] (start-up
//! wiring).

pub mod app;
pub mod args;
pub mod metrics;
#[cfg(test)]
mod test_http;
pub mod verify;
pub mod webhook;
