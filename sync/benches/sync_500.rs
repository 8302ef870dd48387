//! Cost of syncing 500 objects on our side: render, plan, requests, decisions. The API server
//! is the in-memory fake of `sealed_secrets_sync::testing`, so these figures exclude network and
//! API-server time; the request counts printed first are exact and carry over to a real
//! cluster. Run with `cargo bench -p sealed-secrets-sync`; figures go to BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use sealed_secrets_sync::{
    audit,
    cluster::Cluster,
    engine::{self, Mode, Target},
    manifest::Manifest,
    render::Renderer,
    resource::{GitSyncStatus, InventoryEntry, RawSecretPolicy},
};
use sealed_secrets_sync_testing::FakeApiServer;

const OBJECTS: usize = 500;

/// A plain folder of 500 objects: 250 ConfigMaps and 250 Services, 50 per file.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in 0..OBJECTS / 50 {
        let mut text = String::new();
        for i in 0..50 {
            let n = file * 50 + i;
            if n % 2 == 0 {
                text.push_str(&format!(
                    "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{n}\n  labels: {{app: bench}}\ndata:\n  key: value-{n}\n  other: \"{n}\"\n"
                ));
            } else {
                text.push_str(&format!(
                    "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{n}\nspec:\n  selector: {{app: bench}}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
                ));
            }
        }
        std::fs::write(dir.path().join(format!("objects-{file:02}.yaml")), text).unwrap();
    }
    dir
}

fn target() -> Target<'static> {
    Target {
        owner_name: "bench".into(),
        owner_namespace: "ops".into(),
        default_namespace: "bench".into(),
        prune: true,
        create_namespace: false,
        raw_secrets: RawSecretPolicy::Refuse,
        verifier: None,
    }
}

fn sync(
    runtime: &tokio::runtime::Runtime,
    server: &FakeApiServer,
    manifests: &[Manifest],
    previous: &[InventoryEntry],
    mode: Mode,
) -> Vec<InventoryEntry> {
    let _guard = runtime.enter();
    let cluster = Cluster::new(server.client());
    runtime
        .block_on(engine::sync(&cluster, manifests, &target(), previous, mode))
        .unwrap()
        .inventory
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let repo = repository();
    let manifests = Renderer::default().render(repo.path(), ".").unwrap();
    assert_eq!(manifests.len(), OBJECTS);

    // Request counts, once.
    let server = FakeApiServer::new();
    let inventory = sync(&runtime, &server, &manifests, &[], Mode::Apply);
    let first = server.requests().len();
    server.clear_requests();
    sync(&runtime, &server, &manifests, &inventory, Mode::Heal);
    let resync = server.requests().len();
    println!(
        "requests: first apply of {OBJECTS} objects = {first} ({} writes); no-op resync = {resync} (0 writes)",
        OBJECTS
    );

    let mut group = c.benchmark_group("sync_500");
    group.sample_size(20);
    group.bench_function("render_plain_folder", |b| {
        b.iter(|| black_box(Renderer::default().render(repo.path(), ".").unwrap()))
    });
    group.bench_function("first_apply", |b| {
        b.iter(|| {
            let server = FakeApiServer::new();
            black_box(sync(&runtime, &server, &manifests, &[], Mode::Apply))
        })
    });
    group.bench_function("reapply_new_revision", |b| {
        b.iter(|| black_box(sync(&runtime, &server, &manifests, &inventory, Mode::Apply)))
    });
    group.bench_function("noop_resync_self_heal", |b| {
        b.iter(|| black_box(sync(&runtime, &server, &manifests, &inventory, Mode::Heal)))
    });
    // The same resync plus what the reconciler records from it (issue #21): drift records of
    // the report, their bounds, the trigger, and the status that holds them serialized (as the
    // status write does). The engine's own drift findings cost nothing for in-sync objects.
    let mut status = GitSyncStatus::default();
    group.bench_function("noop_resync_self_heal_recorded", |b| {
        b.iter(|| {
            let _guard = runtime.enter();
            let cluster = Cluster::new(server.client());
            let report = runtime
                .block_on(engine::sync(
                    &cluster,
                    &manifests,
                    &target(),
                    &inventory,
                    Mode::Heal,
                ))
                .unwrap();
            let found = audit::drift_records(&report.objects, Mode::Heal, "rev", "now");
            let added = audit::push_drift(&mut status.drift, found);
            let trigger = audit::trigger(audit::TriggerFacts {
                drift_found: !added.is_empty(),
                ..Default::default()
            });
            black_box((trigger, serde_json::to_vec(&status).unwrap()))
        })
    });
    group.finish();
}

fn main_benches() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
}

criterion_main!(main_benches);
