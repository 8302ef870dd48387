//! The audit trail's bounds under load (issue #21): 10,000 drift corrections pushed into one
//! GitSync's status, each record as large as the per-record caps allow (16 paths of 200 bytes,
//! 8 field managers), and the sync history with 10,000 syncs. Prints the largest serialized size
//! the drift records and the whole status reached, then times one correction (build, bound,
//! serialize) with criterion. Run with `cargo bench -p sealed-secrets-sync --bench audit_10k`;
//! figures go to BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use sealed_secrets_sync::{
    audit::{
        self, DriftAction, DriftChange, DriftFinding, FieldManagerRecord, MAX_DRIFT_BYTES,
        MAX_MANAGERS, MAX_PATHS, MAX_TEXT, SyncRecord, SyncResult, Trigger,
    },
    manifest::ObjectKey,
    resource::GitSyncStatus,
};

const CORRECTIONS: usize = 10_000;

/// The largest record the caps allow.
fn worst_finding(n: usize) -> DriftFinding {
    let path = |i: usize| format!("spec.{}{i:02}", "x".repeat(MAX_TEXT - 8));
    let paths: Vec<String> = (0..MAX_PATHS * 2).map(path).collect();
    DriftFinding {
        change: DriftChange::Changed,
        managers: (0..MAX_MANAGERS * 2)
            .map(|m| FieldManagerRecord {
                manager: format!("{}{m:02}", "m".repeat(MAX_TEXT - 2)),
                operation: "Update".into(),
                time: "2026-12-07T01:55:40Z".into(),
                paths: paths.iter().take(MAX_PATHS).cloned().collect(),
            })
            .collect(),
        resource_version: Some(format!("{}", 1_000_000 + n)),
        paths,
    }
}

fn key(n: usize) -> ObjectKey {
    ObjectKey {
        group: "apps".into(),
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: format!("web-{}", n % 500),
    }
}

fn sync_record(n: usize) -> SyncRecord {
    SyncRecord {
        revision: format!("{n:040}"),
        commit_subject: Some("s".repeat(MAX_TEXT)),
        commit_author: Some("a".repeat(MAX_TEXT)),
        started_at: "2026-12-07T01:55:40.000000000Z".into(),
        finished_at: "2026-12-07T01:55:41.000000000Z".into(),
        trigger: Trigger::Drift,
        result: SyncResult::Succeeded,
        reason: "Synced".into(),
        message: String::new(),
        created: 0,
        configured: 1,
        unchanged: 499,
        pruned: 0,
        drifted: 1,
        attempts: 1,
    }
}

fn main_benches() {
    let mut status = GitSyncStatus::default();
    let (mut max_drift, mut max_status) = (0usize, 0usize);
    let started = std::time::Instant::now();
    for n in 0..CORRECTIONS {
        let record = worst_finding(n).record(
            &key(n),
            "apps/v1",
            &format!("{n:040}"),
            DriftAction::Reverted,
            "2026-12-07T01:55:41.000000000Z",
        );
        audit::push_drift(&mut status.drift, vec![record]);
        audit::push_history(
            &mut status.history,
            sync_record(n),
            audit::MAX_HISTORY_LIMIT,
        );
        let drift: usize = status.drift.iter().map(audit::record_bytes).sum();
        max_drift = max_drift.max(drift);
        max_status = max_status.max(serde_json::to_vec(&status).unwrap().len());
    }
    println!(
        "audit_10k: {CORRECTIONS} corrections in {:?}; drift records kept {}, largest drift list {} bytes (cap {MAX_DRIFT_BYTES}); history kept {}; largest status {} bytes",
        started.elapsed(),
        status.drift.len(),
        max_drift,
        status.history.len(),
        max_status
    );
    assert!(max_drift <= MAX_DRIFT_BYTES);

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("audit");
    group.sample_size(20);
    let mut n = 0;
    group.bench_function("one_worst_case_correction_recorded", |b| {
        b.iter(|| {
            n += 1;
            let record = worst_finding(n).record(
                &key(n),
                "apps/v1",
                "rev",
                DriftAction::Reverted,
                "2026-12-07T01:55:41.000000000Z",
            );
            audit::push_drift(&mut status.drift, vec![record]);
            black_box(serde_json::to_vec(&status).unwrap().len())
        })
    });
    group.finish();
}

criterion_main!(main_benches);
