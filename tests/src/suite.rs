//! What a suite starts with: the one skip line without the envtest binaries, otherwise kubectl
//! checked, our binaries built, and a cluster (shared by the test binary, or the test's own)
//! with the suite's CRDs applied and `Established`.

use std::sync::{Arc, Mutex, Weak};

use crate::{
    assets::{Assets, skip, workspace_root},
    binaries::Binaries,
    cluster::Cluster,
    kubectl::{install_crd, require_kubectl},
};

/// Checks what every suite needs before a cluster: `None` (after the one skip line) without
/// assets; otherwise kubectl checked and our binaries built.
fn suite_assets(assets: Result<Assets, String>) -> Option<Assets> {
    match assets {
        Ok(assets) => {
            require_kubectl();
            Binaries::get();
            Some(assets)
        }
        Err(reason) => {
            skip(&reason);
            None
        }
    }
}

fn install_crds(cluster: &Cluster, crds: &[(&str, &str)]) {
    for (file, name) in crds {
        install_crd(cluster, &workspace_root().join("crds").join(file), name);
    }
}

/// What a suite starts with: `None` (after the one skip line) without assets; otherwise
/// kubectl checked, our binaries built, and the shared cluster with each CRD of `crds` (file
/// name under `<workspace>/crds`, CRD name) applied and `Established`.
pub fn suite_cluster(
    assets: Result<Assets, String>,
    crds: &[(&str, &str)],
) -> Option<Arc<Cluster>> {
    let assets = suite_assets(assets)?;
    Some(shared_cluster(&assets, |cluster| {
        install_crds(cluster, crds)
    }))
}

/// [`suite_cluster`] for a test that needs a cluster of its own (it restarts or compacts it):
/// a new cluster, owned by the caller.
pub fn private_cluster(assets: Result<Assets, String>, crds: &[(&str, &str)]) -> Option<Cluster> {
    let assets = suite_assets(assets)?;
    let cluster = Cluster::start(&assets);
    install_crds(&cluster, crds);
    Some(cluster)
}

/// [`private_cluster`] whose API server writes an audit log with `policy` (YAML) to
/// [`Cluster::audit_log`].
pub fn private_cluster_with_audit(
    assets: Result<Assets, String>,
    crds: &[(&str, &str)],
    policy: &str,
) -> Option<Cluster> {
    let assets = suite_assets(assets)?;
    let cluster = Cluster::start_with_audit_policy(&assets, policy);
    install_crds(&cluster, crds);
    Some(cluster)
}

/// The cluster shared by all tests of this test binary: started (and `init` run on it) by the
/// first test that asks, kept while any test holds it, stopped when the last one lets go. A
/// start failure is remembered, so later tests fail at once instead of waiting again.
pub fn shared_cluster(assets: &Assets, init: impl FnOnce(&Cluster)) -> Arc<Cluster> {
    struct Shared {
        cluster: Weak<Cluster>,
        failed: Option<String>,
    }
    static SHARED: Mutex<Shared> = Mutex::new(Shared {
        cluster: Weak::new(),
        failed: None,
    });
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.cluster.upgrade() {
        return cluster;
    }
    if let Some(failed) = &shared.failed {
        panic!("the shared test cluster failed to start earlier: {failed}");
    }
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let cluster = Cluster::start(assets);
        init(&cluster);
        Arc::new(cluster)
    }));
    match started {
        Ok(cluster) => {
            shared.cluster = Arc::downgrade(&cluster);
            cluster
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panic".into());
            shared.failed = Some(message.lines().next().unwrap_or_default().to_string());
            drop(shared);
            std::panic::resume_unwind(payload);
        }
    }
}
