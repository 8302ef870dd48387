//! `kubeseal sync history NAME` and `kubeseal sync drift NAME`: a GitSync's audit records, as
//! the controller keeps them in its status (newest first), as a table or `-o json|yaml`.
//!
//! The table is for people: short revisions, one line per record, paths and field managers
//! joined. JSON and YAML print the records unchanged, for scripts. Nothing here can show a
//! value of a synced object: the records hold none.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow};
use clap::Parser;
use kube::Api;
use sealed_secrets_sync::{
    audit::{DriftRecord, SyncRecord},
    resource::GitSync,
};

use crate::{args::KubeOverrides, cluster::config::client_config};

/// Flags of `kubeseal sync history|drift`.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "Print a GitSync's sync history or drift records (newest first).",
    max_term_width = 100
)]
pub struct RecordArgs {
    /// Name of the GitSync (in -n/--namespace, else the kubeconfig context's namespace).
    name: String,
    /// Output format: table, json or yaml.
    #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json", "yaml"])]
    output: String,
    /// Path to the kubeconfig file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeOverrides,
}

/// Which records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `status.history`.
    History,
    /// `status.drift`.
    Drift,
}

/// Reads the GitSync and prints its records.
pub fn run(which: Which, args: &RecordArgs) -> Result<()> {
    let upstream_args = crate::args::upstream_with(crate::args::Connection {
        kubeconfig: args.kubeconfig.clone(),
        kube: args.kube.clone(),
        controller_name: None,
        controller_namespace: "kube-system".into(),
    })
    .map_err(|e| anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let sync = runtime.block_on(async {
        let config = client_config(&upstream_args).await?;
        let namespace = args
            .kube
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| config.default_namespace.clone());
        let client =
            kube::Client::try_from(config).map_err(|e| anyhow!("invalid configuration: {e}"))?;
        let api: Api<GitSync> = Api::namespaced(client, &namespace);
        api.get_opt(&args.name)
            .await
            .map_err(|e| anyhow!("reading GitSync {namespace}/{}: {e}", args.name))?
            .ok_or_else(|| anyhow!("GitSync {namespace}/{} not found", args.name))
    })?;
    let status = sync.status.unwrap_or_default();
    let text = match which {
        Which::History => render(&status.history, &args.output, history_table)?,
        Which::Drift => render(&status.drift, &args.output, drift_table)?,
    };
    print!("{text}");
    Ok(())
}

fn render<T: serde::Serialize>(
    records: &[T],
    output: &str,
    table: fn(&[T]) -> String,
) -> Result<String> {
    let value = serde_json::to_value(records).context("encoding the records")?;
    Ok(match output {
        "json" => format!(
            "{}\n",
            serde_json::to_string_pretty(&value).context("encoding JSON")?
        ),
        "yaml" => sealed_secrets_core::documents::to_sorted_yaml(&value),
        _ => table(records),
    })
}

fn short(revision: &str) -> String {
    if revision.is_empty() {
        "-".into()
    } else {
        revision.chars().take(12).collect()
    }
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

/// Aligns rows under a header, two spaces between columns; the last column is not padded.
fn columns(rows: Vec<Vec<String>>) -> String {
    let count = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..count)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == count {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The history as a table.
pub fn history_table(records: &[SyncRecord]) -> String {
    if records.is_empty() {
        return "No syncs recorded.\n".into();
    }
    let mut rows = vec![
        [
            "FINISHED",
            "REVISION",
            "TRIGGER",
            "RESULT",
            "REASON",
            "CREATED",
            "CONFIGURED",
            "UNCHANGED",
            "PRUNED",
            "DRIFTED",
            "COMMIT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in records {
        let commit = match (&r.commit_subject, &r.commit_author) {
            (Some(s), Some(a)) => format!("{s} ({a})"),
            (Some(s), None) => s.clone(),
            _ => "-".into(),
        };
        let mut result = format!("{:?}", r.result);
        if r.attempts > 1 {
            result.push_str(&format!(" x{}", r.attempts));
        }
        rows.push(vec![
            r.finished_at.clone(),
            short(&r.revision),
            r.trigger.as_str().to_string(),
            result,
            r.reason.clone(),
            r.created.to_string(),
            r.configured.to_string(),
            r.unchanged.to_string(),
            r.pruned.to_string(),
            r.drifted.to_string(),
            commit,
        ]);
    }
    columns(rows)
}

/// The drift records as a table.
pub fn drift_table(records: &[DriftRecord]) -> String {
    if records.is_empty() {
        return "No drift recorded.\n".into();
    }
    let mut rows = vec![
        [
            "DETECTED",
            "OBJECT",
            "CHANGE",
            "ACTION",
            "REVISION",
            "RESOURCEVERSION",
            "MANAGERS",
            "PATHS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in records {
        let managers: Vec<String> = r
            .managers
            .iter()
            .map(|m| format!("{} ({} {})", m.manager, m.operation, m.time))
            .collect();
        let mut paths = r.paths.join(",");
        if r.paths_omitted > 0 {
            paths.push_str(&format!(" +{}", r.paths_omitted));
        }
        rows.push(vec![
            r.detected_at.clone(),
            r.object.to_string(),
            format!("{:?}", r.change),
            format!("{:?}", r.action),
            short(&r.revision),
            or_dash(r.resource_version_before.as_deref().unwrap_or("")),
            or_dash(&managers.join(", ")),
            or_dash(&paths),
        ]);
    }
    columns(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift() -> Vec<DriftRecord> {
        serde_json::from_value(serde_json::json!([{
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "settings"},
            "change": "Changed", "paths": ["data.greeting"],
            "managers": [{"manager": "alice-laptop", "operation": "Update", "time": "2026-01-01T00:00:00Z", "paths": ["data.greeting"]}],
            "resourceVersionBefore": "812", "revision": "0123456789abcdef",
            "action": "Reverted", "detectedAt": "2026-01-01T00:00:02Z"
        }, {
            "object": {"apiVersion": "v1", "kind": "Service", "namespace": "shop", "name": "web"},
            "change": "Deleted", "revision": "0123456789abcdef",
            "action": "Recreated", "detectedAt": "2026-01-01T00:00:01Z"
        }]))
        .unwrap()
    }

    #[test]
    fn drift_table_shows_who_what_and_the_revision() {
        let table = drift_table(&drift());
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("DETECTED") && lines[0].ends_with("PATHS"),
            "{table}"
        );
        assert!(lines[1].contains("ConfigMap/shop/settings"), "{table}");
        assert!(
            lines[1].contains("alice-laptop (Update 2026-01-01T00:00:00Z)"),
            "{table}"
        );
        assert!(
            lines[1].contains("812") && lines[1].ends_with("data.greeting"),
            "{table}"
        );
        assert!(lines[1].contains("0123456789ab "), "{table}");
        assert!(
            lines[2].contains("Deleted") && lines[2].contains("Recreated"),
            "{table}"
        );
        assert_eq!(drift_table(&[]), "No drift recorded.\n");
    }

    #[test]
    fn json_and_yaml_print_the_records_as_kept() {
        let records = drift();
        let json = render(&records, "json", drift_table).unwrap();
        let back: Vec<DriftRecord> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, records);
        let yaml = render(&records, "yaml", drift_table).unwrap();
        assert!(yaml.contains("manager: alice-laptop"), "{yaml}");
    }

    #[test]
    fn history_table_folds_repeated_failures() {
        let records: Vec<SyncRecord> = serde_json::from_value(serde_json::json!([{
            "revision": "abcdef0123456789", "commitSubject": "scale web", "commitAuthor": "Alice",
            "startedAt": "t0", "finishedAt": "t1", "trigger": "Retry", "result": "Failed",
            "reason": "Forbidden", "attempts": 3
        }]))
        .unwrap();
        let table = history_table(&records);
        assert!(table.contains("Failed x3"), "{table}");
        assert!(table.contains("scale web (Alice)"), "{table}");
        assert!(table.contains("abcdef012345 "), "{table}");
    }
}
