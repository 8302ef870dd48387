//! The environment checks: every SealedSecret against the environment its path routes to in
//! `.sealed-secrets.yaml`, offline, from the certificate fingerprint kubeseal records when it
//! seals for an environment.
//!
//! Why fingerprints and not trial decryption: CI has the public certificates (committed) and
//! not the private keys, and a file copied from `overlays/staging` into `overlays/production`
//! is well-formed, opens in staging, and fails only when production's controller tries it.

use std::path::PathBuf;

use anyhow::Result;

use super::findings::{self as rules, Finding, Location};
use crate::env::{config::Repository, inventory};

/// Findings for the SealedSecrets of `files` (the files the lint walked), and for the rules,
/// against the whole repository (walked only when a rule matches none of `files`). `shown`
/// turns a path into what users read.
pub fn check(
    repo: &Repository,
    files: &[PathBuf],
    shown: &dyn Fn(&std::path::Path) -> String,
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for file in inventory::sealed_in_files(files) {
        if repo.relative(&file.path).is_none() {
            continue;
        }
        let name = shown(&file.path);
        let Some(rule) = repo.route(&file.path) else {
            findings.push(Finding::new(
                rules::UNROUTED_SEALED_SECRET,
                Location::new(name.clone(), file.sealed.first().map(|f| f.line)),
                format!(
                    "{} SealedSecret(s) in a file no rule of {} routes to an environment",
                    file.sealed.len(),
                    shown(&repo.file)
                ),
            ));
            continue;
        };
        let Some(env) = repo.environments.get(&rule.environment) else {
            continue;
        };
        for found in &file.sealed {
            let at = Location::new(name.clone(), Some(found.line));
            match &found.certificate {
                None => findings.push(Finding::new(
                    rules::UNRECORDED_CERTIFICATE,
                    at,
                    format!(
                        "SealedSecret {:?} routes to environment {:?} (rule {}: {}) but does not \
                         record which certificate sealed it",
                        found.name,
                        env.name,
                        rule.index + 1,
                        rule.pattern
                    ),
                )),
                Some(fingerprint) if !env.has_fingerprint(fingerprint) => {
                    let owner = match repo.owner_of(fingerprint) {
                        Some(other) => format!("environment {:?}'s certificate", other.name),
                        None => "a certificate of no environment".to_string(),
                    };
                    findings.push(Finding::new(
                        rules::WRONG_ENVIRONMENT,
                        at,
                        format!(
                            "SealedSecret {:?} was sealed with {fingerprint} ({owner}), but its \
                             path routes to environment {:?} (rule {}: {}), whose certificates \
                             are {}",
                            found.name,
                            env.name,
                            rule.index + 1,
                            rule.pattern,
                            env.certificates
                                .iter()
                                .map(|c| c.fingerprint.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let matches_any = |rule: &crate::env::config::Rule, paths: &[PathBuf]| {
        paths.iter().any(|f| {
            repo.relative(f)
                .is_some_and(|rel| rule.pattern.matches(&rel))
        })
    };
    let walked: Vec<PathBuf> = files
        .iter()
        .map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
        .collect();
    let mut all: Option<Vec<PathBuf>> = None;
    let text = std::fs::read_to_string(&repo.file).unwrap_or_default();
    for rule in &repo.rules {
        if matches_any(rule, &walked) {
            continue;
        }
        if all.is_none() {
            all = Some(inventory::all_files(std::slice::from_ref(&repo.root))?);
        }
        let used = matches_any(rule, all.as_deref().unwrap_or_default());
        if !used {
            let line = text
                .lines()
                .position(|l| l.contains(rule.pattern.as_str()))
                .map(|i| i + 1);
            findings.push(Finding::new(
                rules::UNUSED_RULE,
                Location::new(shown(&repo.file), line),
                format!(
                    "rule {} ({} -> {}) matches no file of the repository",
                    rule.index + 1,
                    rule.pattern,
                    rule.environment
                ),
            ));
        }
    }
    Ok(findings)
}
