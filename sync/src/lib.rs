//! The reconcile core: sync one path of a Git repository into a cluster, the pull-model GitOps
//! way, with the secret checks that the sealed-secrets workflow needs.
//!
//! The pipeline is fetch ([`source`]) → render ([`render`]) → secret policy ([`policy`]) →
//! staged server-side apply, prune and health ([`engine`], deciding with the pure functions of
//! [`plan`] and [`health`], talking to the API server through [`cluster`]). The [`reconciler`]
//! runs it for every `GitSync` object ([`resource`]); `kubeseal sync` runs it once from a
//! laptop or CI.

pub mod audit;
pub mod cluster;
pub mod engine;
pub mod health;
pub mod manifest;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod reconciler;
pub mod render;
pub mod resource;
pub mod source;
pub mod tenancy;
pub mod trail;
