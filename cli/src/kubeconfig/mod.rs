//! The one place kubeseal reads kubeconfig, for the offline and the online modes alike.
//!
//! Sealing in strict or namespace-wide scope binds the ciphertext to a namespace, so even the
//! offline modes need the namespace kubectl would use; the online modes need the whole context
//! (server, credentials, TLS). Both resolve it the same way, client-go's loading rules:
//!
//! - files: `--kubeconfig` (must exist; empty means unset), else every existing file of
//!   `$KUBECONFIG` (duplicates once), else `~/.kube/config` if present;
//! - merging: for each name, and for `current-context`, the first file that sets it wins
//!   (kube's [`Kubeconfig::merge`]; an empty `current-context` does not count as set);
//! - context: `--context`, else `current-context`; `-n` wins over the context's namespace;
//! - with no file and no `--server`, the in-cluster service account ([`in_cluster`]), for the
//!   online modes only.
//!
//! The data model and merging are kube's [`Kubeconfig`] types. Files are not read with kube's
//! `Kubeconfig::read_from`, which refuses what client-go accepts (a context without `cluster`)
//! and quotes the file in its parse errors (a kubeconfig holds tokens): they go through the
//! project's YAML/JSON reader, a lenient step, serde into kube's types, and client-go's
//! relative-path rule. This module reads files and nothing else: no runtime, no network client
//! ([`select`] picks the cluster and user; turning that into a kube client is
//! `cluster::config`'s job, in the online modes only).

pub(crate) mod select;

use std::{
    env, fs,
    path::{Path, PathBuf},
};

use anyhow::{Result, anyhow, bail};
use kube::config::{AuthInfo, Cluster, Context, Kubeconfig, NamedContext};
use sealed_secrets_core::{documents::parse_local_documents, seal::NamespaceDefault};
use serde_json::Value;

use crate::{args::Args, io::describe_read_error};

/// Where the in-cluster service account's token and CA are mounted.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The kubeconfig files to merge, in precedence order.
fn files(explicit: Option<&Path>) -> Result<Vec<PathBuf>> {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        if !path.exists() {
            bail!("stat {}: no such file or directory", path.display());
        }
        return Ok(vec![path.to_path_buf()]);
    }
    if let Some(list) = env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let mut seen = Vec::new();
        for path in env::split_paths(&list).filter(|p| p.is_file()) {
            if !seen.contains(&path) {
                seen.push(path);
            }
        }
        return Ok(seen);
    }
    let home = env::var_os("HOME").map(PathBuf::from);
    Ok(home
        .map(|h| h.join(".kube").join("config"))
        .filter(|p| p.is_file())
        .into_iter()
        .collect())
}

/// `error loading config file "<path>": <cause>`, client-go's text for a file it cannot use.
fn load_error(path: &Path, cause: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("error loading config file \"{}\": {cause}", path.display())
}

/// The file's text: UTF-8 (a byte-order mark allowed), or UTF-16 with its byte-order mark as
/// Windows editors and PowerShell redirections write it.
fn file_text(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| load_error(path, describe_read_error(path, &e)))?;
    let utf16: fn([u8; 2]) -> u16 = match bytes.get(..2) {
        Some([0xFF, 0xFE]) => u16::from_le_bytes,
        Some([0xFE, 0xFF]) => u16::from_be_bytes,
        _ => return Ok(bytes),
    };
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|pair| utf16([pair[0], pair.get(1).copied().unwrap_or(0)]))
        .collect();
    String::from_utf16(&units)
        .map(String::into_bytes)
        .map_err(|_| load_error(path, "input is not valid UTF-16"))
}

/// What serde says about a document that is not a kubeconfig, without the offending value
/// (`invalid type: integer `123456`, expected a string` could be a password).
fn shape_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.split_once(", expected ") {
        Some((what, expected)) if what.starts_with("invalid ") => {
            format!("a value has the wrong type (expected {expected})")
        }
        _ => text,
    }
}

/// One kubeconfig document as kube's types, read as leniently as client-go reads it: a context
/// may leave out `cluster` (a context that only sets a namespace), which kube's `Context`
/// requires, and an empty `current-context` is unset, so that a later file's may win.
fn document(mut doc: Value) -> Result<Kubeconfig, serde_json::Error> {
    if let Some(top) = doc.as_object_mut()
        && top.get("current-context").and_then(Value::as_str) == Some("")
    {
        top.remove("current-context");
    }
    if let Some(contexts) = doc.get_mut("contexts").and_then(Value::as_array_mut) {
        for context in contexts
            .iter_mut()
            .filter_map(|c| c.get_mut("context").and_then(Value::as_object_mut))
        {
            context
                .entry("cluster")
                .or_insert_with(|| Value::String(String::new()));
        }
    }
    serde_json::from_value(doc)
}

/// Makes the file paths of `config` (CA, client certificate and key, token file, exec command
/// with a path separator) relative to the kubeconfig's folder instead of the working
/// directory, as client-go's `ResolvePaths` does.
fn resolve_paths(config: &mut Kubeconfig, dir: &Path) {
    let absolute = |field: &mut Option<String>| {
        if let Some(path) = field.as_deref().filter(|p| Path::new(p).is_relative())
            && let Some(joined) = dir.join(path).to_str()
        {
            *field = Some(joined.to_string());
        }
    };
    for cluster in config
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        absolute(&mut cluster.certificate_authority);
    }
    for user in config
        .auth_infos
        .iter_mut()
        .filter_map(|u| u.auth_info.as_mut())
    {
        absolute(&mut user.client_certificate);
        absolute(&mut user.client_key);
        absolute(&mut user.token_file);
        // A bare command name (`aws`) is looked up in PATH, not next to the kubeconfig.
        if let Some(exec) = user.exec.as_mut()
            && exec
                .command
                .as_deref()
                .is_some_and(|c| c.contains(std::path::MAIN_SEPARATOR))
        {
            absolute(&mut exec.command);
        }
    }
}

/// Reads one kubeconfig file: every document, merged, paths made absolute.
fn read_file(path: &Path) -> Result<Kubeconfig> {
    let text = file_text(path)?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut merged = Kubeconfig::default();
    for doc in parse_local_documents(&text).map_err(|e| load_error(path, e))? {
        let mut config = document(doc).map_err(|e| load_error(path, shape_error(&e)))?;
        resolve_paths(&mut config, dir);
        merged = merged.merge(config).map_err(|e| load_error(path, e))?;
    }
    Ok(merged)
}

/// Reads and merges the kubeconfig files of `explicit` (`--kubeconfig`) or the environment;
/// `None` when there is no file at all.
pub fn read(explicit: Option<&Path>) -> Result<Option<Kubeconfig>> {
    let mut merged: Option<Kubeconfig> = None;
    for file in files(explicit)? {
        let config = read_file(&file)?;
        merged = Some(match merged {
            None => config,
            Some(merged) => merged.merge(config).map_err(|e| load_error(&file, e))?,
        });
    }
    Ok(merged)
}

/// A kubeconfig describing the in-cluster service account, when running in a Pod.
pub fn in_cluster() -> Option<Kubeconfig> {
    let host = env::var("KUBERNETES_SERVICE_HOST")
        .ok()
        .filter(|h| !h.is_empty())?;
    let port = env::var("KUBERNETES_SERVICE_PORT")
        .ok()
        .filter(|p| !p.is_empty())?;
    let dir = Path::new(SERVICE_ACCOUNT_DIR);
    let token = dir.join("token");
    if !token.is_file() {
        return None;
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let ca = dir.join("ca.crt");
    let cluster = Cluster {
        server: Some(format!("https://{host}:{port}")),
        certificate_authority: ca.is_file().then(|| ca.display().to_string()),
        ..Default::default()
    };
    let user = AuthInfo {
        token_file: Some(token.display().to_string()),
        ..Default::default()
    };
    Some(select::single_context(cluster, user, Context::default()))
}

/// The name of the context to use: `--context`, else the merged `current-context`.
pub fn context_name<'a>(merged: &'a Kubeconfig, flag: Option<&'a str>) -> Option<&'a str> {
    flag.filter(|c| !c.is_empty())
        .or(merged.current_context.as_deref())
        .filter(|c| !c.is_empty())
}

/// The context entry named `name`, if the merged files define it.
pub fn find_context<'a>(merged: &'a Kubeconfig, name: &str) -> Option<&'a NamedContext> {
    merged.contexts.iter().find(|c| c.name == name)
}

/// The namespace of the chosen context across the merged files (none if it names none).
fn context_namespace(merged: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let name = context_name(merged, context)?;
    find_context(merged, name)?
        .context
        .as_ref()?
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
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
    let Some(merged) = read(args.kubeconfig.as_deref())? else {
        return Ok(None);
    };
    Ok(
        context_namespace(&merged, args.kube.context.as_deref()).map(|namespace| {
            NamespaceDefault {
                namespace,
                explicit: false,
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn parse(yaml: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(yaml).unwrap()
    }

    #[test]
    fn first_definition_wins_and_context_flag_overrides_current() {
        let a = parse(
            "current-context: dev
contexts:
- {name: dev, context: {cluster: c, namespace: team-a}}
- {name: prod, context: {cluster: c}}",
        );
        let b = parse(
            "current-context: other
contexts:
- {name: dev, context: {cluster: c, namespace: shadowed}}
- {name: ops, context: {cluster: c, namespace: ops-ns}}",
        );
        let merged = a.merge(b).unwrap();
        assert_eq!(context_namespace(&merged, None).as_deref(), Some("team-a"));
        assert_eq!(
            context_namespace(&merged, Some("ops")).as_deref(),
            Some("ops-ns")
        );
        assert_eq!(context_namespace(&merged, Some("prod")), None);
        assert_eq!(context_namespace(&Kubeconfig::default(), None), None);
    }

    #[test]
    fn files_merge_in_order_and_errors_name_the_file_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let empty_current = dir.path().join("a");
        let named = dir.path().join("b");
        fs::write(&empty_current, "current-context: ''\n").unwrap();
        fs::write(
            &named,
            "current-context: ops
contexts:
- {name: ops, context: {cluster: c, namespace: ops-ns}}",
        )
        .unwrap();
        let mut merged = read(Some(&empty_current)).unwrap().unwrap();
        assert_eq!(merged.current_context, None);
        merged = merged.merge(read(Some(&named)).unwrap().unwrap()).unwrap();
        assert_eq!(context_namespace(&merged, None).as_deref(), Some("ops-ns"));

        let broken = dir.path().join("broken");
        fs::write(&broken, "users:\n- name: u\n  user: {token: s3cr3t-t0ken\n").unwrap();
        let err = read(Some(&broken)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "error loading config file \"{}\"",
                broken.display()
            )),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");

        let err = read(Some(dir.path())).unwrap_err().to_string();
        assert!(err.ends_with("is a directory"), "{err}");
        let err = read(Some(&dir.path().join("missing")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("stat ") && err.ends_with("no such file or directory"));
    }

    #[test]
    fn contexts_without_a_cluster_and_relative_paths_read_as_client_go_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(
            &path,
            "apiVersion: v1
kind: Config
current-context: ns-only
clusters:
- {name: c, cluster: {server: 'https://x', certificate-authority: certs/ca.pem}}
users:
- name: u
  user:
    client-certificate: /abs/cert.pem
    client-key: key.pem
    tokenFile: token
    exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/helper}
- name: v
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}
contexts:
- {name: ns-only, context: {namespace: team-b}}
---
contexts:
- {name: second-document, context: {cluster: c}}
",
        )
        .unwrap();
        let config = read(Some(&path)).unwrap().unwrap();
        assert_eq!(context_namespace(&config, None).as_deref(), Some("team-b"));
        assert!(find_context(&config, "second-document").is_some());
        let in_dir = |p: &str| Some(dir.path().join(p).display().to_string());
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate_authority, in_dir("certs/ca.pem"));
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.client_certificate.as_deref(), Some("/abs/cert.pem"));
        assert_eq!(user.client_key, in_dir("key.pem"));
        assert_eq!(user.token_file, in_dir("token"));
        assert_eq!(user.exec.as_ref().unwrap().command, in_dir("./bin/helper"));
        let path_lookup = config.auth_infos[1].auth_info.as_ref().unwrap();
        assert_eq!(
            path_lookup.exec.as_ref().unwrap().command.as_deref(),
            Some("aws")
        );
    }

    #[test]
    fn utf16_files_read_and_wrong_types_are_named_without_their_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("utf16");
        let text = "current-context: dev\ncontexts:\n- {name: dev, context: {namespace: wide}}\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        fs::write(&path, bytes).unwrap();
        let config = read(Some(&path)).unwrap().unwrap();
        assert_eq!(context_namespace(&config, None).as_deref(), Some("wide"));

        fs::write(&path, "users:\n- name: u\n  user: {password: 918273645}\n").unwrap();
        let err = read(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("a value has the wrong type (expected"),
            "{err}"
        );
        assert!(!err.contains("918273645"), "{err}");
    }
}
