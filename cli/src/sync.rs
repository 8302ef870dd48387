//! `kubeseal sync diff|apply`: the reconcile core run once, from a laptop or a CI job.
//! (`kubeseal sync history|drift NAME` print a GitSync's audit records: [`records`].)
//!
//! It renders a folder (a local checkout, or `--repo` fetched with git) exactly as the
//! controller's GitSync would, applies the same secret policy, and either shows what applying
//! would change (server-side dry-run, nothing written) or applies it. Without a GitSync object
//! to hold the inventory, the last applied set is kept in a ConfigMap `gitsync-<name>` of the
//! owner namespace, so `--prune` works across runs (as kapp keeps its app ConfigMap).
//!
//! The owner namespace is `-n`, else the kubeconfig context's: objects are labelled for it,
//! namespaced objects without a namespace go there, and it holds the inventory. When a GitSync
//! of `--name` exists there, `diff` compares against that GitSync (its labels and its
//! inventory), so it shows what the next sync would change; `apply` refuses, since the
//! controller owns those objects and its inventory.
//!
//! Reached as `kubeseal sync ...` only; upstream's flag surface stays untouched.
//!
//! Exit codes (as `kubectl diff`): 0 in sync / applied, 1 `diff` found differences, 2 errors.

use std::{
    ffi::OsString,
    path::{Component, Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{ArgAction, Parser};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use sealed_secrets_sync::{
    cluster::Cluster,
    engine::{self, Action, Mode, SyncReport, Target},
    policy::{KeysVerifier, SealedSecretVerifier},
    render::Renderer,
    resource::{FIELD_MANAGER, GitSync, InventoryEntry, RawSecretPolicy},
    source::{GitCli, Source, SourceSpec},
};

use sealed_secrets_core::sealed_secret::SealedSecret;

use crate::{
    args::KubeOverrides,
    cluster::{Controller, config::client_config},
    commands::{recover::load_keys, validate::rate_limited},
};

/// Flags of `kubeseal sync`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubeseal sync",
    about = "Render a repository folder and diff it against, or apply it to, the cluster.",
    long_about = "Renders PATH (a kustomization is built with `kubectl kustomize`; otherwise every \
                  YAML file under it) from the working tree or from --repo, refuses raw Secrets, \
                  optionally checks SealedSecrets against private keys, then shows a server-side \
                  dry-run diff (`diff`) or applies with server-side apply (`apply`).\n\n\
                  Exit codes: 0 in sync or applied, 1 differences found (diff), 2 error.\n\n\
                  `kubeseal sync history NAME` and `kubeseal sync drift NAME` print a GitSync's \
                  sync history and drift records (table, -o json|yaml).",
    max_term_width = 100
)]
struct SyncArgs {
    /// `diff` (dry-run, nothing written) or `apply`.
    #[arg(value_parser = ["diff", "apply"])]
    verb: String,
    /// Folder to render: a local folder, or a path inside --repo.
    #[arg(long, default_value = ".")]
    path: String,
    /// Git URL to fetch instead of reading the working tree.
    #[arg(long)]
    repo: Option<String>,
    /// Branch, tag or commit of --repo (default: its HEAD).
    #[arg(long, default_value = "")]
    revision: String,
    /// Name of this sync: labels applied objects and names the inventory ConfigMap.
    #[arg(long)]
    name: String,
    /// Namespace for namespaced objects that name none (default: the namespace of -n/--namespace,
    /// else of the kubeconfig context, which also holds the inventory ConfigMap).
    #[arg(long)]
    destination_namespace: Option<String>,
    /// Delete objects applied by an earlier run that left the folder.
    #[arg(long, action = ArgAction::SetTrue)]
    prune: bool,
    /// Create the destination namespace when missing.
    #[arg(long, action = ArgAction::SetTrue)]
    create_namespace: bool,
    /// Apply plain Secrets instead of failing.
    #[arg(long, action = ArgAction::SetTrue)]
    allow_raw_secrets: bool,
    /// Private keys (PEM files, or a key Secret list) that must open every SealedSecret.
    #[arg(long = "recovery-private-key", value_delimiter = ',')]
    recovery_private_key: Vec<String>,
    /// Check every SealedSecret with the controller (`/v1/verify` through the API server's
    /// service proxy, as `kubeseal --validate`) before anything is applied.
    #[arg(long, action = ArgAction::SetTrue, conflicts_with = "recovery_private_key")]
    validate: bool,
    /// Namespace of the sealed-secrets controller (for --validate).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    controller_namespace: String,
    /// Name of the sealed-secrets controller's Service (for --validate).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    controller_name: String,
    /// Path to the kubeconfig file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeOverrides,
}

mod records;

/// Entry point for `kubeseal sync ...` (arguments after `sync`).
pub fn main(argv: impl Iterator<Item = OsString>) -> ExitCode {
    let mut argv = argv.peekable();
    let which = match argv.peek().and_then(|verb| verb.to_str()) {
        Some("history") => Some(records::Which::History),
        Some("drift") => Some(records::Which::Drift),
        _ => None,
    };
    if let Some(which) = which {
        let verb = argv.next().unwrap_or_default();
        let name = format!("sync {}", verb.to_string_lossy());
        let args: records::RecordArgs = match crate::args::parse_subcommand(&name, argv) {
            Ok(args) => args,
            Err(code) => return code,
        };
        return match records::run(which, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(2)
            }
        };
    }
    let args: SyncArgs = match crate::args::parse_subcommand("sync", argv) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the verb; `Ok(true)` when `diff` found differences.
fn run(args: &SyncArgs) -> Result<bool> {
    let (root, path, _cache) = checkout(args)?;
    let manifests = Renderer::default()
        .render(&root, &path)
        .map_err(|e| anyhow!("{e}"))?;
    // Upstream's flag set, for the shared kubeconfig and service-proxy code: defaults and
    // SEALED_SECRETS_* variables, then this command's connection flags.
    let upstream_args = crate::args::upstream_with(crate::args::Connection {
        kubeconfig: args.kubeconfig.clone(),
        kube: args.kube.clone(),
        controller_name: Some(args.controller_name.clone()),
        controller_namespace: args.controller_namespace.clone(),
    })
    .map_err(|e| anyhow!("{e}"))?;
    let verifier: Option<Box<dyn SealedSecretVerifier>> = if args.validate {
        // Connected before our runtime starts: the proxy client runs its own.
        let controller = Controller::connect(&upstream_args, "--validate")?;
        Some(Box::new(ControllerVerifier(controller)))
    } else if !args.recovery_private_key.is_empty() {
        Some(Box::new(KeysVerifier(load_keys(
            &args.recovery_private_key,
        )?)))
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let config = client_config(&upstream_args).await?;
        let namespace = owner_namespace(args.kube.namespace.as_deref(), &config.default_namespace);
        let client =
            kube::Client::try_from(config).map_err(|e| anyhow!("invalid configuration: {e}"))?;
        let inventory_api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        let gitsyncs: Api<GitSync> = Api::namespaced(client.clone(), &namespace);
        let gitsync = gitsyncs.get_opt(&args.name).await.unwrap_or(None);
        let previous = match &gitsync {
            Some(_) if args.verb == "apply" => bail!(
                "GitSync {namespace}/{} exists: gitops-controller applies it and keeps its inventory; \
                 use `kubeseal sync diff`, or another --name",
                args.name
            ),
            Some(sync) => sync
                .status
                .as_ref()
                .and_then(|s| s.inventory.as_ref())
                .map(|i| i.entries.clone())
                .unwrap_or_default(),
            None => read_inventory(&inventory_api, &args.name).await?,
        };
        let target = Target {
            owner_name: args.name.clone(),
            owner_namespace: namespace.clone(),
            default_namespace: args
                .destination_namespace
                .clone()
                .unwrap_or_else(|| namespace.clone()),
            prune: args.prune,
            create_namespace: args.create_namespace,
            raw_secrets: if args.allow_raw_secrets {
                RawSecretPolicy::Allow
            } else {
                RawSecretPolicy::Refuse
            },
            verifier: verifier.as_deref(),
        };
        let mode = if args.verb == "apply" {
            Mode::Apply
        } else {
            Mode::Diff
        };
        let cluster = Cluster::new(client);
        let report = engine::sync(&cluster, &manifests, &target, &previous, mode)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        print!("{}", describe(&report, mode));
        if mode == Mode::Apply {
            write_inventory(&inventory_api, &args.name, &report.inventory).await?;
            return Ok(false);
        }
        Ok(report.has_changes())
    })
}

/// The owner namespace: `-n` when given (and not empty), else the kubeconfig context's.
fn owner_namespace(flag: Option<&str>, context: &str) -> String {
    flag.filter(|ns| !ns.is_empty())
        .unwrap_or(context)
        .to_string()
}

/// Asks the controller whether it can open a SealedSecret (`/v1/verify`), as `--validate`.
struct ControllerVerifier(Controller);

impl SealedSecretVerifier for ControllerVerifier {
    fn verify(&self, sealed: &SealedSecret) -> Result<(), String> {
        let body = serde_json::to_vec(&sealed.to_upstream_value()).map_err(|e| e.to_string())?;
        // The proxy client blocks on its own runtime, which cannot run inside ours: ask from
        // another thread (the sync waits for the policy check anyway).
        let reply = std::thread::scope(|scope| {
            scope
                .spawn(|| self.0.post("/v1/verify", body))
                .join()
                .unwrap_or_else(|_| Err("the verify request failed".to_string()))
        })?;
        match reply.status {
            200..=299 => Ok(()),
            409 => Err("the controller's keys cannot decrypt it (/v1/verify answered 409)".into()),
            429 => Err(rate_limited("/v1/verify", &reply)),
            _ => Err(self.0.failure(&reply, "post", "create")),
        }
    }
}

/// The root and relative path to render, and the temporary cache that must outlive them.
fn checkout(args: &SyncArgs) -> Result<(PathBuf, String, Option<tempfile::TempDir>)> {
    let Some(url) = &args.repo else {
        let (root, path) = local_root(&args.path);
        if !root.join(&path).is_dir() {
            bail!("--path {}: no such folder", args.path);
        }
        return Ok((root, path, None));
    };
    let cache = tempfile::tempdir().context("cannot create a temporary folder for --repo")?;
    let checkout = GitCli::new("git", cache.path())
        .fetch(&SourceSpec {
            url: url.clone(),
            revision: args.revision.clone(),
            credentials: None,
        })
        .map_err(|e| anyhow!("--repo: {e}"))?;
    eprintln!("fetched {}", checkout.revision);
    Ok((checkout.dir, args.path.clone(), Some(cache)))
}

/// A working-tree folder: relative paths below the current directory render from there (so
/// messages name `deploy/prod/app.yaml`); others render from the folder itself.
fn local_root(path: &str) -> (PathBuf, String) {
    let below = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if below {
        (PathBuf::from("."), path.to_string())
    } else {
        (PathBuf::from(path), ".".to_string())
    }
}

fn inventory_name(name: &str) -> String {
    format!("gitsync-{name}")
}

async fn read_inventory(api: &Api<ConfigMap>, name: &str) -> Result<Vec<InventoryEntry>> {
    let map = api
        .get_opt(&inventory_name(name))
        .await
        .map_err(|e| anyhow!("reading inventory ConfigMap {}: {e}", inventory_name(name)))?;
    let Some(text) = map
        .and_then(|m| m.data)
        .and_then(|d| d.get("inventory").cloned())
    else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "inventory ConfigMap {}: key inventory: {e}",
            inventory_name(name)
        )
    })
}

async fn write_inventory(
    api: &Api<ConfigMap>,
    name: &str,
    entries: &[InventoryEntry],
) -> Result<()> {
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": inventory_name(name)},
        "data": {"inventory": serde_json::to_string(entries)?},
    });
    api.patch(
        &inventory_name(name),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| anyhow!("writing inventory ConfigMap {}: {e}", inventory_name(name)))?;
    Ok(())
}

/// What `diff` or `apply` prints: one line per object, kubectl-style, then a summary.
fn describe(report: &SyncReport, mode: Mode) -> String {
    let mut out = String::new();
    for object in &report.objects {
        let line = match &object.action {
            Action::Created => format!("{} created", object.key),
            Action::Configured => format!("{} configured", object.key),
            Action::Unchanged if mode == Mode::Apply => format!("{} unchanged", object.key),
            Action::Unchanged => continue,
            Action::WouldCreate => format!("+ {} ({})", object.key, object.origin),
            Action::WouldChange(changes) | Action::Drifted(changes) => {
                let mut text = format!("~ {} ({})", object.key, object.origin);
                for change in changes {
                    text.push_str(&format!("\n    {change}"));
                }
                text
            }
            Action::Missing => format!("+ {} (missing)", object.key),
        };
        out.push_str(&line);
        out.push('\n');
    }
    for key in &report.pruned {
        if mode == Mode::Apply {
            out.push_str(&format!("{key} pruned\n"));
        } else {
            out.push_str(&format!("- {key}\n"));
        }
    }
    for (key, reason) in &report.kept {
        out.push_str(&format!("{key} kept: {reason}\n"));
    }
    if mode != Mode::Apply && !report.has_changes() {
        out.push_str("in sync: nothing to change\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_flag_wins_over_the_context() {
        assert_eq!(owner_namespace(Some("shop"), "default"), "shop");
        assert_eq!(owner_namespace(Some(""), "team"), "team");
        assert_eq!(owner_namespace(None, "team"), "team");
    }

    #[test]
    fn verbs_and_defaults() {
        let err = SyncArgs::try_parse_from(["kubeseal sync", "deploy", "--name", "x"]).unwrap_err();
        assert!(err.to_string().contains("invalid value 'deploy'"), "{err}");
        let args = SyncArgs::try_parse_from([
            "kubeseal sync",
            "diff",
            "--name",
            "web",
            "--path",
            "deploy/prod",
        ])
        .unwrap();
        assert!(!args.prune && !args.allow_raw_secrets && args.repo.is_none());
        assert_eq!(
            local_root("deploy/prod"),
            (PathBuf::from("."), "deploy/prod".to_string())
        );
        assert_eq!(
            local_root("/srv/repo/app"),
            (PathBuf::from("/srv/repo/app"), ".".to_string())
        );
        assert_eq!(
            local_root("../other"),
            (PathBuf::from("../other"), ".".to_string())
        );
    }
}
