//! `kubeseal keys`: the sealing keys of a cluster, what still depends on each, and their
//! lifecycle (retire, restore, back up), through the API server with the user's kubeconfig.
//!
//! Why it exists: keys accumulate forever upstream (every renewal adds one, none ever goes), and
//! nobody can tell which old key still opens something. The controller records the key that
//! opened each SealedSecret in `status.keyFingerprint`, so counting those tells when a key is
//! no longer needed; retiring relabels its Secret (`active` → `retired`) so the controller stops
//! using it while the key stays in the cluster (and in backups) to be restored if needed.
//!
//! Reached as `kubeseal keys ...` only; upstream's flag surface stays untouched. The decisions
//! are pure functions in [`model`]; the API calls are in [`api`]; [`backup`] builds and writes
//! the backup file.

mod api;
mod backup;
pub(crate) mod model;

use std::{ffi::OsString, io::Write, path::PathBuf, process::ExitCode};

use anyhow::{Result, anyhow, bail};
use clap::{ArgAction, Parser};
use serde::Serialize;

use crate::args::{Args, KubeOverrides};
use api::Cluster;
use model::{Coverage, KeyOrder, KeyRow, Relabel};

/// Flags of `kubeseal keys`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubeseal keys",
    about = "List the controller's sealing keys, retire or restore one, or back them all up.",
    long_about = "Without an action (or with `list`): one row per key Secret of \
                  --controller-namespace with its fingerprint, Secret, creation and expiry, \
                  state (sealing, active, retired), how many SealedSecrets it opened \
                  (status.keyFingerprint), when one last needed it, and whether it is safe to \
                  retire.\n\n\
                  retire FINGERPRINT: relabel the key Secret from active to retired (refused for \
                  the sealing key, and while SealedSecrets depend on it unless --force).\n\
                  restore FINGERPRINT: relabel it back to active.\n\
                  backup -o FILE: write every key Secret as a v1 List (0600, atomically; `-o -` \
                  for a pipe), then annotate each with sealed-secrets-rs.io/backed-up-at.",
    max_term_width = 100
)]
struct KeysArgs {
    /// list (default), retire, restore or backup.
    #[arg(value_parser = ["list", "retire", "restore", "backup"])]
    action: Option<String>,
    /// The key's fingerprint (for retire and restore; the `SHA256:` prefix may be left out).
    fingerprint: Option<String>,
    /// list: output format, table (default), json or yaml. backup: the file to write (`-` for
    /// stdout, refused on a terminal).
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// retire: retire even though SealedSecrets still depend on the key (they stop unsealing).
    #[arg(long, action = ArgAction::SetTrue)]
    force: bool,
    /// Which time picks the sealing key, as the controller's flag of the same name.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_ORDER_PRIORITY",
        value_enum,
        default_value = "CertNotBefore"
    )]
    key_order_priority: KeyOrder,
    /// Namespace of the sealed-secrets controller (where its key Secrets live).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    controller_namespace: String,
    /// Path to the kubeconfig file.
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeOverrides,
}

/// Entry point for `kubeseal keys ...` (arguments after `keys`). Exit 0 on success, 1 on
/// errors, 2 on usage errors.
pub fn main(argv: impl Iterator<Item = OsString>) -> ExitCode {
    let args: KeysArgs = match crate::args::parse_subcommand("keys", argv) {
        Ok(args) => args,
        Err(code) => return code,
    };
    if let Err(err) = check_usage(&args) {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if crate::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Upstream's flag set with this command's connection flags, for the shared kubeconfig code.
fn connection(args: &KeysArgs) -> Result<Args> {
    crate::args::upstream_with(crate::args::Connection {
        kubeconfig: args.kubeconfig.clone(),
        kube: args.kube.clone(),
        controller_name: None,
        controller_namespace: args.controller_namespace.clone(),
    })
    .map_err(|e| anyhow!("{e}"))
}

/// Checks the flags against the action before anything is contacted.
fn check_usage(args: &KeysArgs) -> Result<&str> {
    let action = args.action.as_deref().unwrap_or("list");
    let needs_fingerprint = matches!(action, "retire" | "restore");
    match (&args.fingerprint, needs_fingerprint) {
        (None, true) => {
            bail!("kubeseal keys {action} needs the key's FINGERPRINT (see `kubeseal keys`)")
        }
        (Some(extra), false) => bail!("kubeseal keys {action} takes no argument, got {extra:?}"),
        _ => {}
    }
    if args.force && action != "retire" {
        bail!("--force only applies to `kubeseal keys retire`");
    }
    match action {
        "backup" if args.output.as_deref().is_none_or(str::is_empty) => bail!(
            "kubeseal keys backup needs -o FILE (the file gets mode 0600; `-o -` writes to a pipe)"
        ),
        "retire" | "restore" if args.output.is_some() => {
            bail!("-o is for `kubeseal keys` (format) and `kubeseal keys backup` (file)")
        }
        _ => {}
    }
    Ok(action)
}

fn run(args: &KeysArgs) -> Result<()> {
    let action = check_usage(args)?;
    let format = if action == "list" {
        Some(ListFormat::parse(args.output.as_deref())?)
    } else {
        None
    };
    if action == "backup" {
        // Refuse a terminal before any key is read.
        backup::check_destination(args.output.as_deref().unwrap_or(""))?;
    }
    let cluster = Cluster::connect(&connection(args)?)?;
    match action {
        "retire" => relabel(args, &cluster, Relabel::Retire),
        "restore" => relabel(args, &cluster, Relabel::Restore),
        "backup" => backup::run(&cluster, args.output.as_deref().unwrap_or("")),
        _ => list(args, &cluster, format.unwrap_or(ListFormat::Table)),
    }
}

/// `-o` of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
    Yaml,
}

impl ListFormat {
    fn parse(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("").to_ascii_lowercase().as_str() {
            "" | "table" | "wide" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            other => bail!("unsupported output format {other:?} for -o: use table, json or yaml"),
        }
    }
}

/// What `-o json|yaml` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing<'a> {
    namespace: &'a str,
    counted: &'a Coverage,
    keys: &'a [KeyRow],
}

/// The key Secrets the controller can use (certificate and matching private key); the others
/// are named on stderr.
fn usable(cluster: &Cluster, keys: &[api::ReadKey]) -> Vec<model::KeySecret> {
    let mut out = Vec::new();
    for key in keys {
        match &key.info {
            Ok(info) => out.push(info.clone()),
            Err(reason) => eprintln!(
                "warning: key Secret {}/{} left out: {reason}",
                cluster.key_namespace, key.name
            ),
        }
    }
    out
}

fn list(args: &KeysArgs, cluster: &Cluster, format: ListFormat) -> Result<()> {
    let keys = cluster.key_secrets()?;
    let infos = usable(cluster, &keys);
    let (dependants, coverage) = cluster.dependants()?;
    let rows = model::rows(&infos, &dependants, &coverage, args.key_order_priority);
    if rows.is_empty() {
        eprintln!(
            "no key Secrets (label {}) in namespace {:?}; is --controller-namespace right?",
            model::KEY_LABEL,
            cluster.key_namespace
        );
    }
    for row in rows
        .iter()
        .filter(|r| r.state == model::State::Retired && r.sealed_secrets > 0)
    {
        eprintln!(
            "warning: {} SealedSecret(s) were last opened with retired key {}; they will not \
             unseal until it is restored (`kubeseal keys restore {}`) or they are re-encrypted",
            row.sealed_secrets, row.fingerprint, row.fingerprint
        );
    }
    let listing = Listing {
        namespace: &cluster.key_namespace,
        counted: &coverage,
        keys: &rows,
    };
    let text = match format {
        ListFormat::Table => table(&rows),
        ListFormat::Json => {
            let mut text = serde_json::to_string_pretty(&listing)?;
            text.push('\n');
            text
        }
        ListFormat::Yaml => {
            sealed_secrets_core::documents::to_sorted_yaml(&serde_json::to_value(&listing)?)
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// RFC 3339 in UTC to the second.
pub(crate) fn rfc3339(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The default listing: aligned columns, `-` for unknown values.
fn table(rows: &[KeyRow]) -> String {
    let mut lines = vec![[
        "FINGERPRINT".to_string(),
        "SECRET".into(),
        "CREATED".into(),
        "EXPIRES".into(),
        "STATE".into(),
        "SEALEDSECRETS".into(),
        "LAST NEEDED".into(),
        "SAFE TO RETIRE".into(),
    ]];
    for row in rows {
        lines.push([
            row.fingerprint.clone(),
            row.secret.clone(),
            row.created.map_or("-".into(), rfc3339),
            rfc3339(row.expires),
            row.state.to_string(),
            row.sealed_secrets.to_string(),
            row.last_needed.map_or("-".into(), rfc3339),
            match row.safe_to_retire {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None if row.state == model::State::Active => "unknown".into(),
                None => "-".into(),
            },
        ]);
    }
    let mut widths = [0usize; 8];
    for line in &lines {
        for (i, cell) in line.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

fn relabel(args: &KeysArgs, cluster: &Cluster, change: Relabel) -> Result<()> {
    let fingerprint = model::normalize_fingerprint(args.fingerprint.as_deref().unwrap_or(""));
    let keys = cluster.key_secrets()?;
    let infos = usable(cluster, &keys);
    // Restoring never needs the count; retiring does (unless the key is unknown or sealing,
    // which the plan refuses first).
    let (dependants, coverage) = if change == Relabel::Retire
        && infos.iter().any(|k| k.fingerprint == fingerprint)
        && model::sealing_key(&infos, args.key_order_priority)
            .is_none_or(|s| s.fingerprint != fingerprint)
    {
        cluster.dependants()?
    } else {
        (Vec::new(), Coverage::Cluster)
    };
    let observed = model::Observed {
        keys: &infos,
        dependants: &dependants,
        coverage: &coverage,
        order: args.key_order_priority,
        namespace: &cluster.key_namespace,
    };
    let todo = model::plan_relabel(change, &fingerprint, args.force, observed)?;
    if todo.is_empty() {
        eprintln!(
            "key {fingerprint} is already {}; nothing to change",
            change.target_label()
        );
        return Ok(());
    }
    for info in todo {
        let read = keys
            .iter()
            .find(|k| k.name == info.name)
            .ok_or_else(|| anyhow!("key Secret {} vanished from the listing", info.name))?;
        let mut object = read.object.clone();
        object["metadata"]["labels"][model::KEY_LABEL] = change.target_label().into();
        cluster.update_key_secret(&object)?;
        let verb = match change {
            Relabel::Retire => "retired",
            Relabel::Restore => "restored",
        };
        println!(
            "{verb} key {fingerprint} (key Secret {}/{}: {}={})",
            cluster.key_namespace,
            info.name,
            model::KEY_LABEL,
            change.target_label()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> KeysArgs {
        KeysArgs::try_parse_from(std::iter::once("kubeseal keys").chain(argv.iter().copied()))
            .unwrap()
    }

    #[test]
    fn actions_and_their_arguments() {
        assert_eq!(check_usage(&parse(&[])).unwrap(), "list");
        assert_eq!(check_usage(&parse(&["-o", "json"])).unwrap(), "list");
        assert_eq!(
            check_usage(&parse(&["retire", "SHA256:x", "--force"])).unwrap(),
            "retire"
        );
        let err = check_usage(&parse(&["retire"])).unwrap_err().to_string();
        assert!(err.contains("needs the key's FINGERPRINT"), "{err}");
        let err = check_usage(&parse(&["backup"])).unwrap_err().to_string();
        assert!(err.contains("needs -o FILE"), "{err}");
        let err = check_usage(&parse(&["restore", "x", "--force"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--force only applies"), "{err}");
        let err = check_usage(&parse(&["list", "extra"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("takes no argument"), "{err}");
        assert!(
            KeysArgs::try_parse_from(["kubeseal keys", "delete"]).is_err(),
            "no delete action"
        );
        assert!(ListFormat::parse(Some("xml")).is_err());
        assert_eq!(ListFormat::parse(Some("YAML")).unwrap(), ListFormat::Yaml);
    }

    #[test]
    fn table_aligns_columns_and_marks_unknowns() {
        let rows = vec![KeyRow {
            fingerprint: "SHA256:abc".into(),
            secret: "sealed-secrets-key1".into(),
            created: None,
            expires: jiff::Timestamp::from_second(0).unwrap(),
            state: model::State::Active,
            sealed_secrets: 0,
            last_needed: None,
            safe_to_retire: None,
        }];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("FINGERPRINT   SECRET"), "{text}");
        assert!(
            lines[1].contains("1970-01-01T00:00:00Z   active   0"),
            "{text}"
        );
        assert!(lines[1].ends_with("unknown"), "{text}");
    }
}
