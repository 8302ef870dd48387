//! The wrong-cluster guard: a certificate a controller serves must belong to the environment
//! the files route to, or nothing is sealed, re-encrypted or written.
//!
//! Why a fingerprint check and not a context-name check: context names are local to each
//! laptop's kubeconfig, while the certificate is what actually decides which cluster can open
//! the result. A renewed certificate is not an error to silence: `kubeseal env refresh`
//! records it in the repository (after which the check passes), so the committed set stays the
//! reviewable truth.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use sealed_secrets_core::cert::Certificate;

use super::config::{Environment, FILE_NAME, Repository, normalise};
use crate::{args::Args, cluster::Controller, kubeconfig};

/// The context a connection uses, for messages: `--context`, else the kubeconfig's current
/// context, else a description.
pub fn context_label(args: &Args) -> String {
    if let Some(context) = args.kube.context.as_deref().filter(|c| !c.is_empty()) {
        return format!("context {context:?}");
    }
    match kubeconfig::read(args.kubeconfig.as_deref()) {
        Ok(Some(merged)) => match kubeconfig::context_name(&merged, None) {
            Some(name) => format!("context {name:?}"),
            None => "the kubeconfig's cluster".to_string(),
        },
        _ => "the in-cluster configuration".to_string(),
    }
}

/// Decides whether a served certificate may be used for `env` (pure: the messages are the
/// interface).
pub fn check_served(
    repo: &Repository,
    env: &Environment,
    served_fingerprint: &str,
    context: &str,
) -> Result<()> {
    if env.has_fingerprint(served_fingerprint) {
        return Ok(());
    }
    let committed: Vec<&str> = env
        .certificates
        .iter()
        .map(|c| c.fingerprint.as_str())
        .collect();
    let owner = match repo.owner_of(served_fingerprint) {
        Some(other) => format!(" (that is environment {:?}'s certificate)", other.name),
        None => String::new(),
    };
    bail!(
        "refusing to use the controller of {context} for environment {:?}: it serves certificate \
         {served_fingerprint}{owner}, and {} lists {} for {:?}; nothing was written. Switch to \
         the environment's context (--context), or, if its key was renewed, run `kubeseal env \
         refresh {}` and commit the result",
        env.name,
        env.certificates_file.display(),
        committed.join(", "),
        env.name,
        env.name
    )
}

/// The environment a single-environment mode works for: `--env` (one), else the route of
/// `path` (the file the mode reads or writes); `None` outside any environment (then upstream's
/// behaviour applies). A `--env` that contradicts the path's route is refused.
pub fn environment_for(args: &Args, path: Option<&Path>) -> Result<Option<(Repository, String)>> {
    if !args.cert.is_empty() {
        if !args.env.is_empty() {
            bail!("--env and --cert both choose the certificate; give only one");
        }
        return Ok(None);
    }
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let Some(repo) = Repository::discover(&cwd)? else {
        if !args.env.is_empty() {
            bail!(
                "--env needs {FILE_NAME} in {} or a directory above it, and none was found",
                cwd.display()
            );
        }
        return Ok(None);
    };
    let routed = match path {
        Some(path) => {
            let resolved = normalise(path)
                .map_err(|e| anyhow!(crate::io::describe_io_error("open", path, &e)))?;
            repo.route(&resolved).cloned()
        }
        None => None,
    };
    let env = if args.env.is_empty() {
        match routed {
            Some(rule) => rule.environment,
            None => return Ok(None),
        }
    } else {
        let selected = repo.select(&args.env).map_err(|e| anyhow!(e))?;
        let [one] = selected.as_slice() else {
            bail!(
                "--env names {} environments; this mode works for one at a time",
                selected.len()
            );
        };
        if let Some(rule) = routed.filter(|r| r.environment != one.name) {
            bail!(
                "{} routes to environment {:?} (rule {}: {}), not {:?} as --env says",
                path.map(|p| p.display().to_string()).unwrap_or_default(),
                rule.environment,
                rule.index + 1,
                rule.pattern,
                one.name
            );
        }
        one.name.clone()
    };
    Ok(Some((repo, env)))
}

/// Checks, for an online mode, that the controller of `args` (already connected, when the
/// mode has it) serves a certificate of the environment `path` routes to (or `--env` names);
/// returns the environment's name and the served fingerprint, or `None` outside any
/// environment.
pub fn check_online(
    args: &Args,
    path: Option<&Path>,
    controller: Option<&Controller>,
) -> Result<Option<(String, String)>> {
    let Some((repo, env)) = environment_for(args, path)? else {
        return Ok(None);
    };
    let environment = repo.environment(&env).map_err(|e| anyhow!(e))?;
    let cert = match controller {
        Some(controller) => checked_certificate(&repo, environment, controller, args)?,
        None => fetch_checked(&repo, environment, args)?,
    };
    Ok(Some((env, cert.public_key().fingerprint())))
}

/// Connects to the controller of `args`' connection, fetches the certificate it serves and
/// checks it belongs to `env`; returns it.
pub fn fetch_checked(repo: &Repository, env: &Environment, args: &Args) -> Result<Certificate> {
    let controller = Controller::connect(args, "cannot fetch certificate")?;
    checked_certificate(repo, env, &controller, args)
}

/// The certificate `controller` (reached with `args`) serves, checked to belong to `env`.
pub fn checked_certificate(
    repo: &Repository,
    env: &Environment,
    controller: &Controller,
    args: &Args,
) -> Result<Certificate> {
    let cert = Certificate::from_pem(&controller.fetch_cert()?)?;
    check_served(
        repo,
        env,
        &cert.public_key().fingerprint(),
        &context_label(args),
    )?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use std::{fs, path::PathBuf};

    use sealed_secrets_core::keys::generate_key_pair;

    use super::*;
    use crate::env::config::{FILE_NAME, Repository};

    #[test]
    fn another_clusters_certificate_is_refused_naming_both_and_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let now = jiff::Timestamp::now();
        let hour = jiff::SignedDuration::from_hours(1);
        let staging = generate_key_pair(2048, "", now, hour).unwrap();
        let production = generate_key_pair(2048, "", now, hour).unwrap();
        fs::write(dir.path().join("s.pem"), &staging.cert_pem).unwrap();
        fs::write(dir.path().join("p.pem"), &production.cert_pem).unwrap();
        let file: PathBuf = dir.path().join(FILE_NAME);
        fs::write(
            &file,
            "version: 1\nenvironments:\n  staging: {certificates: s.pem}\n  production: {certificates: p.pem}\n",
        )
        .unwrap();
        let repo = Repository::load(&file).unwrap();
        let prod = repo.environment("production").unwrap();
        check_served(
            &repo,
            prod,
            &production.key.fingerprint(),
            "context \"prod\"",
        )
        .unwrap();
        let err = check_served(
            &repo,
            prod,
            &staging.key.fingerprint(),
            "context \"staging\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("controller of context \"staging\" for environment \"production\""),
            "{err}"
        );
        assert!(err.contains(&staging.key.fingerprint()), "{err}");
        assert!(err.contains(&production.key.fingerprint()), "{err}");
        assert!(
            err.contains("that is environment \"staging\"'s certificate"),
            "{err}"
        );
        assert!(err.contains("nothing was written"), "{err}");
    }
}
