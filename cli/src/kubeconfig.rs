//! The default namespace, read offline from kubeconfig the way kubectl resolves it.
//!
//! Sealing in strict or namespace-wide scope binds the ciphertext to a namespace, so kubeseal
//! needs the same namespace kubectl would use: `-n`, else the namespace of the current context
//! (`--context` overrides which), else `default`. Files come from `--kubeconfig` (must exist),
//! else every file of `$KUBECONFIG` (missing ones skipped; for each name the first file that
//! defines it wins), else `~/.kube/config` if present. No network is touched.

use std::{
    env,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use sealed_secrets_core::{documents::parse_documents, seal::NamespaceDefault};
use serde_json::Value;

use crate::{args::Args, io::describe_io_error};

/// The kubeconfig files to read, in precedence order.
fn kubeconfig_paths(explicit: Option<&Path>) -> Result<Vec<PathBuf>> {
    if let Some(path) = explicit {
        if !path.exists() {
            bail!("stat {}: no such file or directory", path.display());
        }
        return Ok(vec![path.to_path_buf()]);
    }
    if let Some(list) = env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return Ok(env::split_paths(&list).filter(|p| p.is_file()).collect());
    }
    let home = env::var_os("HOME").map(PathBuf::from);
    Ok(home
        .map(|h| h.join(".kube").join("config"))
        .filter(|p| p.is_file())
        .into_iter()
        .collect())
}

fn read_kubeconfig(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{}", describe_io_error("open", path, &e)))?;
    let mut docs = parse_documents(&bytes)
        .with_context(|| format!("error loading config file \"{}\"", path.display()))?;
    Ok(if docs.is_empty() {
        Value::Null
    } else {
        docs.swap_remove(0)
    })
}

/// The namespace of `context` (or the current context) across the merged files.
fn context_namespace(configs: &[Value], context: Option<&str>) -> Option<String> {
    let current = context.map(str::to_string).or_else(|| {
        configs
            .iter()
            .filter_map(|c| c.get("current-context").and_then(Value::as_str))
            .find(|s| !s.is_empty())
            .map(str::to_string)
    })?;
    configs
        .iter()
        .filter_map(|c| c.get("contexts").and_then(Value::as_array))
        .flatten()
        .find(|entry| entry.get("name").and_then(Value::as_str) == Some(current.as_str()))
        .and_then(|entry| entry.get("context")?.get("namespace")?.as_str())
        .filter(|ns| !ns.is_empty())
        .map(str::to_string)
}

/// The namespace to seal into when the input has none, and whether `-n` chose it.
pub fn default_namespace(args: &Args) -> Result<NamespaceDefault> {
    Ok(match configured_namespace(args)? {
        Some(namespace) => namespace,
        None => NamespaceDefault {
            namespace: "default".to_string(),
            explicit: false,
        },
    })
}

/// The namespace `-n` or the kubeconfig's context names, without the `default` fallback.
///
/// `--raw` needs this: a value sealed for `default` only because nothing named a namespace
/// would never open where it is pasted, so upstream refuses instead.
pub fn configured_namespace(args: &Args) -> Result<Option<NamespaceDefault>> {
    if let Some(ns) = args.kube.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        return Ok(Some(NamespaceDefault {
            namespace: ns.to_string(),
            explicit: true,
        }));
    }
    let configs = kubeconfig_paths(args.kubeconfig.as_deref())?
        .iter()
        .map(|p| read_kubeconfig(p))
        .collect::<Result<Vec<_>>>()?;
    Ok(
        context_namespace(&configs, args.kube.context.as_deref()).map(|namespace| {
            NamespaceDefault {
                namespace,
                explicit: false,
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_definition_wins_and_context_flag_overrides_current() {
        let a = json!({"current-context": "dev", "contexts": [
            {"name": "dev", "context": {"namespace": "team-a"}},
            {"name": "prod", "context": {}}]});
        let b = json!({"current-context": "other", "contexts": [
            {"name": "dev", "context": {"namespace": "shadowed"}},
            {"name": "ops", "context": {"namespace": "ops-ns"}}]});
        let configs = [a, b];
        assert_eq!(context_namespace(&configs, None).as_deref(), Some("team-a"));
        assert_eq!(
            context_namespace(&configs, Some("ops")).as_deref(),
            Some("ops-ns")
        );
        assert_eq!(context_namespace(&configs, Some("prod")), None);
        assert_eq!(context_namespace(&[], None), None);
    }
}
