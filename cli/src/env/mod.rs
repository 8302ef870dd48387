//! Environments: one repository, many clusters, and sealing that cannot pick the wrong one.
//!
//! A repository declares its environments and routes paths to them in `.sealed-secrets.yaml`
//! ([`config`]). kubeseal then seals by output path or `--env` ([`seal`]) for the name the
//! overlay will render ([`naming`]), refuses a controller whose certificate is not the
//! environment's ([`guard`]), and `kubeseal lint` checks every SealedSecret against its route
//! ([`inventory`]). `kubeseal env list|refresh` is this module's subcommand.
//!
//! Reached as `kubeseal env ...`; upstream's flag surface only gains `--env`.

pub mod config;
pub mod guard;
pub mod inventory;
pub mod naming;
pub mod pattern;
pub mod seal;

use std::{collections::BTreeMap, ffi::OsString, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Parser;
use sealed_secrets_core::cert::Certificate;
use serde::Serialize;

use self::config::{Environment, FILE_NAME, Repository};
use crate::{
    args::{Connection, KubeOverrides, parse_subcommand, upstream_with},
    cluster::Controller,
    io::write_atomically,
};

/// Flags of `kubeseal env`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubeseal env",
    about = "Show a repository's environments, or refresh their committed certificates.",
    long_about = "Reads .sealed-secrets.yaml (in the working directory or the nearest one above).\n\n\
                  list (default): each environment with its certificates (fingerprint, expiry, \
                  which one seals) and how many SealedSecrets in the repository route to it.\n\
                  refresh [ENV...]: fetch each environment's current certificate from its \
                  controller (its `controller` context, namespace and name) and add it to the \
                  committed bundle when it is new, printing old -> new fingerprints. Earlier \
                  certificates stay: SealedSecrets sealed with them still open.\n\
                  schema: print the JSON Schema of .sealed-secrets.yaml (also committed as \
                  docs/schema/sealed-secrets-environments.schema.json).",
    max_term_width = 100
)]
struct EnvArgs {
    /// list (default), refresh, or schema (print the file's JSON Schema, for editors).
    #[arg(value_parser = ["list", "refresh", "schema"])]
    action: Option<String>,
    /// refresh: the environments to refresh (default: all).
    environments: Vec<String>,
    /// list: output format, table (default), json or yaml.
    #[arg(short = 'o', long = "output", default_value = "table",
          value_parser = ["table", "json", "yaml"])]
    output: String,
    /// Path to the kubeconfig file.
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeOverrides,
}

/// Entry point for `kubeseal env ...`.
pub fn main(argv: impl Iterator<Item = OsString>) -> ExitCode {
    let args: EnvArgs = match parse_subcommand("env", argv) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let result = match args.action.as_deref().unwrap_or("list") {
        "refresh" => refresh(&args),
        "schema" => print(&config::schema_json()),
        _ => list(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if crate::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn repository() -> Result<Repository> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    Repository::discover(&cwd)?.ok_or_else(|| {
        anyhow!(
            "no {FILE_NAME} in {} or a directory above it; see docs/environments.md to write one",
            cwd.display()
        )
    })
}

/// One row of `env list`.
#[derive(Debug, Serialize)]
struct EnvRow {
    name: String,
    certificates_file: String,
    certificates: Vec<CertRow>,
    sealed_secrets: usize,
    files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
}

#[derive(Debug, Serialize)]
struct CertRow {
    fingerprint: String,
    not_before: String,
    not_after: String,
    sealing: bool,
    expired: bool,
}

fn rows(repo: &Repository) -> Result<Vec<EnvRow>> {
    let files = inventory::sealed_files(std::slice::from_ref(&repo.root))?;
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for file in &files {
        if let Some(rule) = repo.route(&file.path) {
            let entry = counts.entry(rule.environment.as_str()).or_default();
            entry.0 += file.sealed.len();
            entry.1 += 1;
        }
    }
    let now = jiff::Timestamp::now();
    Ok(repo
        .environments
        .values()
        .map(|env: &Environment| {
            let sealing = env.sealing_certificate(now).map(|c| c.fingerprint.clone());
            let (sealed_secrets, files) =
                counts.get(env.name.as_str()).copied().unwrap_or_default();
            EnvRow {
                name: env.name.clone(),
                certificates_file: repo
                    .relative(&env.certificates_file)
                    .unwrap_or_else(|| env.certificates_file.display().to_string()),
                certificates: env
                    .certificates
                    .iter()
                    .map(|c| CertRow {
                        fingerprint: c.fingerprint.clone(),
                        not_before: c.cert.not_before().to_string(),
                        not_after: c.cert.not_after().to_string(),
                        sealing: sealing.as_deref() == Some(c.fingerprint.as_str()),
                        expired: c.cert.check_not_expired(now).is_err(),
                    })
                    .collect(),
                sealed_secrets,
                files,
                context: env.controller.as_ref().and_then(|c| c.context.clone()),
            }
        })
        .collect())
}

fn list(args: &EnvArgs) -> Result<()> {
    let repo = repository()?;
    let rows = rows(&repo)?;
    let text = match args.output.as_str() {
        "json" => serde_json::to_string_pretty(&rows)? + "\n",
        "yaml" => sealed_secrets_core::documents::to_sorted_yaml(&serde_json::to_value(&rows)?),
        _ => table(&rows),
    };
    print(&text)
}

fn print(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn table(rows: &[EnvRow]) -> String {
    let mut out = String::new();
    let mut lines: Vec<[String; 7]> = Vec::new();
    for row in rows {
        for (i, cert) in row.certificates.iter().enumerate() {
            let first = i == 0;
            let state = if cert.sealing {
                "sealing"
            } else if cert.expired {
                "expired"
            } else {
                "accepted"
            };
            lines.push([
                if first {
                    row.name.clone()
                } else {
                    String::new()
                },
                if first {
                    row.sealed_secrets.to_string()
                } else {
                    String::new()
                },
                if first {
                    row.files.to_string()
                } else {
                    String::new()
                },
                if first {
                    row.context.clone().unwrap_or_else(|| "-".into())
                } else {
                    String::new()
                },
                cert.fingerprint.clone(),
                cert.not_after.clone(),
                state.to_string(),
            ]);
        }
    }
    let header = [
        "ENVIRONMENT",
        "SEALEDSECRETS",
        "FILES",
        "CONTEXT",
        "CERTIFICATE",
        "NOT AFTER",
        "STATE",
    ];
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut push = |cells: &[String]| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push(&header.map(str::to_string));
    for line in &lines {
        push(line);
    }
    out
}

/// The connection to an environment's controller: its declared context, namespace and name,
/// with command-line flags winning.
fn connection_for(args: &EnvArgs, env: &Environment) -> Result<crate::args::Args> {
    let spec = env.controller.clone().unwrap_or_default();
    let mut kube = args.kube.clone();
    if kube.context.is_none() {
        kube.context = spec.context;
    }
    upstream_with(Connection {
        kubeconfig: args.kubeconfig.clone(),
        kube,
        controller_name: spec.name,
        controller_namespace: spec.namespace.unwrap_or_else(|| "kube-system".to_string()),
    })
    .map_err(|e| anyhow!(e))
}

/// The first `CERTIFICATE` block of a PEM text, from its BEGIN line to its END line.
fn certificate_block(pem: &[u8]) -> Option<&str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find(BEGIN)?;
    let end = start + text[start..].find(END)? + END.len();
    Some(&text[start..end])
}

/// What `refresh` does with one environment's served certificate (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Already committed.
    UpToDate,
    /// New: append it.
    Append {
        /// The newest committed fingerprint before.
        old: Option<String>,
    },
}

/// Decides what to do with a served certificate.
pub fn decide_refresh(env: &Environment, served_fingerprint: &str) -> Refresh {
    if env.has_fingerprint(served_fingerprint) {
        return Refresh::UpToDate;
    }
    let old = env
        .certificates
        .iter()
        .max_by_key(|c| c.cert.not_before())
        .map(|c| c.fingerprint.clone());
    Refresh::Append { old }
}

fn refresh(args: &EnvArgs) -> Result<()> {
    let repo = repository()?;
    let envs = if args.environments.is_empty() {
        repo.environments.values().collect()
    } else {
        repo.select(&args.environments).map_err(|e| anyhow!(e))?
    };
    let mut failed = 0;
    for env in envs {
        match refresh_one(args, &repo, env) {
            Ok(line) => println!("{line}"),
            Err(err) => {
                failed += 1;
                eprintln!("error: {}: {err:#}", env.name);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} environment(s) could not be refreshed");
    }
    Ok(())
}

fn refresh_one(args: &EnvArgs, repo: &Repository, env: &Environment) -> Result<String> {
    let upstream = connection_for(args, env)?;
    let pem = Controller::connect(&upstream, "cannot fetch certificate")?.fetch_cert()?;
    let cert = Certificate::from_pem(&pem)?;
    let served = cert.public_key().fingerprint();
    let shown = repo
        .relative(&env.certificates_file)
        .unwrap_or_else(|| env.certificates_file.display().to_string());
    match decide_refresh(env, &served) {
        Refresh::UpToDate => Ok(format!("{}: up to date ({served})", env.name)),
        Refresh::Append { old } => {
            let mut bundle = std::fs::read(&env.certificates_file)
                .with_context(|| format!("cannot read {shown}"))?;
            if !bundle.ends_with(b"\n") && !bundle.is_empty() {
                bundle.push(b'\n');
            }
            // Only the certificate goes into the committed file, not whatever else the answer
            // held around it.
            let block = certificate_block(&pem)
                .ok_or_else(|| anyhow!("the controller's answer holds no PEM certificate block"))?;
            bundle.extend_from_slice(block.as_bytes());
            bundle.push(b'\n');
            write_atomically(&env.certificates_file, &bundle)?;
            Ok(format!(
                "{}: {} -> {served} (added to {shown}; earlier certificates stay, SealedSecrets \
                 sealed with them still open; commit the change)",
                env.name,
                old.unwrap_or_else(|| "none".into())
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_certificate_block_of_an_answer_is_kept() {
        let pem = "junk before\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nno\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            certificate_block(pem.as_bytes()),
            Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")
        );
        assert_eq!(certificate_block(b"no pem"), None);
    }
}
