//! `kubeseal lint [PATH...]`: an offline CI check of committed Secrets and SealedSecrets.
//!
//! Upstream only validates against a live controller (`--validate`) and declined offline
//! validation; teams still want CI to fail when someone commits a raw Secret or a SealedSecret
//! the cluster will not open. This mode walks a repository, renders every kustomization the way
//! the GitOps controller will (`kubectl kustomize`), reads plain manifests directly, and reports
//! findings with file and line. It is reached as `kubeseal lint ...` only, so upstream's flag
//! surface (no subcommands, positional arguments ignored) stays untouched.
//!
//! Exit codes: 0 clean (warnings allowed), 1 error findings, 2 usage or I/O errors.
//!
//! Module map: [`walk`] finds files, [`kustomize`] reads the include graph, [`render`] runs
//! kubectl, [`docs`] parses with line numbers, [`check`], [`origin`] and [`references`] hold the
//! rules, [`proof`] the trial decryption that replaces the scope guess when keys are given,
//! [`findings`] the rule catalog, [`report`] the output formats. docs/lint.md explains the
//! decisions.

pub(crate) mod check;
pub(crate) mod docs;
mod environments;
mod findings;
pub(crate) mod kustomize;
mod origin;
mod parallel;
mod proof;
mod references;
mod render;
mod report;
pub(crate) mod walk;

use std::{
    collections::BTreeSet,
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{ArgAction, Parser};
use sealed_secrets_core::cert::Certificate;

use self::{
    check::{Context, Place, check_sealed_state, check_sealed_structure, check_secret, objects},
    docs::{Document, read_documents},
    findings::{Finding, Location, Severity},
    kustomize::Graph,
    origin::{Index, check_overlay_scope, closure_files, generator_location},
    parallel::parallel_map,
    proof::{Identity, Unopened},
    references::Renamed,
    render::{Rendered, render_all},
    report::{Report, ReportFormat},
};
use crate::{commands::recover::load_keys, io::read_file};

/// Flags of `kubeseal lint`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubeseal lint",
    about = "Check committed Secrets and SealedSecrets offline (for CI and pre-commit).",
    long_about = "Walks PATHs (default: .), renders every kustomization with `kubectl kustomize`, \
                  reads other YAML/JSON manifests directly, and reports raw Secrets, malformed \
                  SealedSecrets, SealedSecrets that overlays move out of their scope (proven by \
                  decryption with --recovery-private-key), and workload references to \
                  SealedSecrets that overlays renamed.\n\n\
                  Exit codes: 0 clean (warnings allowed), 1 errors found, 2 usage or I/O error.",
    max_term_width = 100
)]
pub struct LintArgs {
    /// Files or directories to check.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Sealing certificate: report an expired certificate and values sealed for a key of
    /// another size.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Private key files (PEM, or key Secrets / a List of them), repeated or comma-separated:
    /// every sealed value must open with them under its rendered name and namespace; this
    /// decryption, not the name in the file, then decides whether an overlay broke a scope.
    #[arg(long, value_name = "FILE", value_delimiter = ',', action = ArgAction::Append)]
    pub recovery_private_key: Vec<String>,

    /// Secret type that may be committed with data (repeatable), e.g.
    /// kubernetes.io/service-account-token. Secrets without data are always allowed.
    #[arg(long, value_name = "TYPE", action = ArgAction::Append)]
    pub allow_secret_type: Vec<String>,

    /// File or directory to skip (repeatable).
    #[arg(long, value_name = "PATH", action = ArgAction::Append)]
    pub exclude: Vec<PathBuf>,

    /// kubectl binary used to render kustomizations.
    #[arg(long, value_name = "PATH", default_value = "kubectl")]
    pub kubectl: String,

    /// Check each SealedSecret against the controller's /v1/verify (needs cluster access).
    #[arg(long)]
    pub verify: bool,
}

/// Entry point for `kubeseal lint ...`; `args` are the arguments after `lint`.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = LintArgs::parse_from(std::iter::once(OsString::from("kubeseal lint")).chain(args));
    match run(&args) {
        Ok(report) => {
            eprintln!("{}", report.summary());
            if report.count(Severity::Error) > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Paths as users read them: relative to the working directory when inside it.
struct Shown {
    cwd: PathBuf,
}

impl Shown {
    fn path(&self, path: &Path) -> String {
        match path.strip_prefix(&self.cwd) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    fs::canonicalize(path).map_err(|e| anyhow!(crate::io::describe_io_error("open", path, &e)))
}

fn run(args: &LintArgs) -> Result<Report> {
    if args.verify {
        bail!(
            "--verify needs cluster access (the controller's /v1/verify through the API server), \
             which is not supported yet; run kubeseal lint without --verify"
        );
    }
    let cwd = std::env::current_dir()
        .and_then(fs::canonicalize)
        .context("cannot read the working directory")?;
    let shown = Shown { cwd };
    let mut findings = Vec::new();
    let mut ctx = Context {
        allowed_secret_types: args.allow_secret_type.clone(),
        ..Context::default()
    };
    if let Some(path) = &args.cert {
        let cert = Certificate::from_pem(&read_file(path)?)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if let Err(err) = cert.check_not_expired(jiff::Timestamp::now()) {
            findings.push(Finding::new(
                findings::CERT_EXPIRED,
                Location::new(shown.path(&canonical(path)?), None),
                format!("the sealing certificate has expired: {err}"),
            ));
        }
        ctx.cert_key_bytes = Some(cert.public_key().size_bytes());
    }
    ctx.keys = load_keys(&args.recovery_private_key)?;

    let roots: Vec<PathBuf> = args
        .paths
        .iter()
        .map(|p| canonical(p))
        .collect::<Result<_>>()?;
    let excludes: Vec<PathBuf> = args
        .exclude
        .iter()
        .map(|p| fs::canonicalize(p).unwrap_or_else(|_| shown.cwd.join(p)))
        .collect();
    let walked = walk::walk(&roots, &excludes)?;
    let repo_start = roots
        .first()
        .map(|r| {
            if r.is_dir() {
                r.clone()
            } else {
                r.parent().map(Path::to_path_buf).unwrap_or_default()
            }
        })
        .unwrap_or_else(|| shown.cwd.clone());
    if let Some(repo) = crate::env::config::Repository::discover(&repo_start)? {
        findings.extend(environments::check(&repo, &walked.files, &|p| {
            shown.path(p)
        })?);
    }
    let graph = Graph::load(&walked.kustomizations)?;
    let render_roots = graph.roots(&walked.kustomizations);
    let owned = graph.owned_files();

    // Plain files are linted as they are read; files that kustomizations include are only
    // indexed, and linted as rendered.
    let mut jobs: Vec<(PathBuf, bool)> = walked
        .files
        .iter()
        .filter(|f| !owned.contains(*f))
        .map(|f| (f.clone(), false))
        .collect();
    jobs.extend(
        owned
            .iter()
            .filter(|f| {
                matches!(
                    f.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            })
            .map(|f| (f.clone(), true)),
    );
    let mut checked: Vec<String> = jobs
        .iter()
        .filter(|(_, owned)| !owned)
        .map(|(f, _)| shown.path(f))
        .collect();

    let (rendered, files) = std::thread::scope(|scope| {
        let renders = scope.spawn(|| render_all(&args.kubectl, &render_roots));
        let files = parallel_map(&jobs, usize::MAX, |(path, owned)| {
            lint_file(path, *owned, &ctx, &shown)
        });
        let rendered = renders
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (rendered, files)
    });
    let rendered = rendered?;

    let mut index = Index::default();
    for file in files {
        let file = file?;
        findings.extend(file.findings);
        if let Some(docs) = file.docs {
            index.add(&file.path, &shown.path(&file.path), docs);
        }
    }

    let mut objects_to_check = Vec::new();
    let mut closures: Vec<BTreeSet<PathBuf>> = Vec::new();
    for (root, outcome) in render_roots.iter().zip(rendered) {
        let Some(k) = graph.nodes.get(root) else {
            continue;
        };
        let k_shown = shown.path(&k.file);
        checked.push(k_shown.clone());
        match outcome {
            Rendered::Failed(message) => findings.push(Finding::new(
                findings::KUSTOMIZE_FAILED,
                Location::new(k_shown, None),
                format!("kubectl kustomize {} failed: {message}", shown.path(root)),
            )),
            Rendered::Ok(text) => {
                let (docs, failures) = read_documents(&text);
                for failure in failures {
                    findings.push(Finding::new(
                        findings::KUSTOMIZE_FAILED,
                        Location::new(k_shown.clone(), None),
                        format!(
                            "cannot parse the output of kubectl kustomize: {}",
                            failure.message
                        ),
                    ));
                }
                let scope = closures.len();
                closures.push(closure_files(&graph, root));
                findings.extend(check_render_references(
                    root,
                    &docs,
                    &closures[scope],
                    &graph,
                    &index,
                    &shown,
                ));
                objects_to_check.extend(docs.into_iter().map(|d| (root.clone(), d, scope)));
            }
        }
    }
    let rendered_findings = parallel_map(&objects_to_check, usize::MAX, |(root, doc, scope)| {
        lint_rendered(root, doc, &closures[*scope], &graph, &index, &ctx, &shown)
    });
    findings.extend(rendered_findings.into_iter().flatten());

    let report = Report::new(findings, checked);
    let text = report.render(args.format);
    match &args.output {
        Some(path) => crate::io::write_atomically(path, text.as_bytes())?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write the report to stdout")?;
        }
    }
    Ok(report)
}

/// One file read: its findings (plain files) or its documents (included files).
struct FileResult {
    path: PathBuf,
    findings: Vec<Finding>,
    docs: Option<Vec<Document>>,
}

fn lint_file(path: &Path, owned: bool, ctx: &Context, shown: &Shown) -> Result<FileResult> {
    let bytes = read_file(path)?;
    let name = shown.path(path);
    let mut findings = Vec::new();
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            if !owned {
                findings.push(Finding::new(
                    findings::INVALID_YAML,
                    Location::new(name, None),
                    format!(
                        "not UTF-8 (first bad byte at offset {})",
                        err.utf8_error().valid_up_to()
                    ),
                ));
            }
            return Ok(FileResult {
                path: path.to_path_buf(),
                findings,
                docs: None,
            });
        }
    };
    let (docs, failures) = read_documents(&text);
    if owned {
        return Ok(FileResult {
            path: path.to_path_buf(),
            findings,
            docs: Some(docs),
        });
    }
    for failure in failures {
        findings.push(Finding::new(
            findings::INVALID_YAML,
            Location::new(name.clone(), Some(failure.line)),
            failure.message,
        ));
    }
    for doc in &docs {
        for (value, keyed) in objects(&doc.value) {
            let place = Place {
                file: &name,
                doc: Some(doc),
                keyed,
            };
            let (found, unopened) = lint_object(value, ctx, place, "", None);
            findings.extend(found);
            if !unopened.is_empty() {
                findings.push(proof::cannot_decrypt(value, &unopened, place, ""));
            }
        }
    }
    Ok(FileResult {
        path: path.to_path_buf(),
        findings,
        docs: None,
    })
}

/// Every check of one object whose text is at `place`, and, with recovery keys, the values of a
/// SealedSecret that do not open under its identity (tried under those of `written`, its
/// definition as written, too). The caller turns those into a finding: which one depends on
/// whether an overlay is to blame.
fn lint_object(
    value: &serde_json::Value,
    ctx: &Context,
    place: Place<'_>,
    via: &str,
    written: Option<&serde_json::Value>,
) -> (Vec<Finding>, Vec<Unopened>) {
    if check::is_secret(value) {
        return (check_secret(value, ctx, place, via), Vec::new());
    }
    if !check::is_sealed_secret(value) {
        return (Vec::new(), Vec::new());
    }
    let (mut findings, sealed) = check_sealed_structure(value, ctx, place);
    findings.extend(check_sealed_state(value, place, via));
    let unopened = if ctx.keys.is_empty() {
        Vec::new()
    } else {
        proof::trial(
            &ctx.keys,
            &sealed,
            &Identity::of(value),
            &proof::candidates(value, written),
        )
    };
    (findings, unopened)
}

/// Checks one document of a kustomization's output, located at its definition when found.
fn lint_rendered(
    root: &Path,
    doc: &Document,
    files: &BTreeSet<PathBuf>,
    graph: &Graph,
    index: &Index,
    ctx: &Context,
    shown: &Shown,
) -> Vec<Finding> {
    let Some(k) = graph.nodes.get(root) else {
        return Vec::new();
    };
    let k_shown = shown.path(&k.file);
    let via = format!(" (as rendered by {k_shown})");
    let show = |p: &Path| shown.path(p);
    let mut findings = Vec::new();
    for (value, _) in objects(&doc.value) {
        if !(check::is_secret(value) || check::is_sealed_secret(value)) {
            continue;
        }
        let def = index.find(value, files);
        let fallback = match def {
            Some(_) => None,
            None => Some(
                generator_location(graph, root, value, &show)
                    .unwrap_or_else(|| Location::new(k_shown.clone(), None)),
            ),
        };
        let place = match (def, &fallback) {
            (Some(def), _) => def.place(),
            (None, fallback) => Place {
                file: fallback
                    .as_ref()
                    .map_or(k_shown.as_str(), |l| l.file.as_str()),
                doc: None,
                keyed: false,
            },
        };
        let (mut found, unopened) = lint_object(value, ctx, place, &via, def.map(|d| &d.value));
        // Only a resource whose sealed values reach the output unchanged can be blamed on the
        // overlays: values patched in by an overlay are the overlay's own.
        let overlaid = def.filter(|d| {
            check::is_sealed_secret(value)
                && origin::same_values(d, value)
                && graph.is_resource(&d.file)
        });
        let scope_finding = overlaid.and_then(|def| {
            let chain = graph.chain_to_file(root, &def.file).unwrap_or_default();
            // With keys, decryption decides; without, the name in the file is the guess.
            let proof = (!ctx.keys.is_empty()).then_some(unopened.as_slice());
            check_overlay_scope(value, def, &chain, &show, proof)
        });
        if scope_finding.is_none() && !unopened.is_empty() {
            found.push(proof::cannot_decrypt(value, &unopened, place, &via));
        }
        for f in &mut found {
            match &fallback {
                Some(location) => f.location.line = location.line,
                None if f.message.contains(&via) => f.related.push(findings::Related {
                    location: Location::new(k_shown.clone(), None),
                    message: "renders it".into(),
                }),
                None => {}
            }
        }
        findings.extend(found);
        findings.extend(scope_finding);
    }
    findings
}

/// `renamed-sealed-secret-reference` for one render: its SealedSecrets that the overlays renamed,
/// and the workloads that still ask for their old names, located at the reference's line in
/// the source file when it can be traced, else at the kustomization that renames it.
fn check_render_references(
    root: &Path,
    docs: &[Document],
    files: &BTreeSet<PathBuf>,
    graph: &Graph,
    index: &Index,
    shown: &Shown,
) -> Vec<Finding> {
    let Some(k) = graph.nodes.get(root) else {
        return Vec::new();
    };
    let k_shown = shown.path(&k.file);
    let show = |p: &Path| shown.path(p);
    let values: Vec<&serde_json::Value> = docs
        .iter()
        .flat_map(|d| objects(&d.value).into_iter().map(|(v, _)| v))
        .collect();
    let renamed: Vec<Renamed> = values
        .iter()
        .filter(|v| check::is_sealed_secret(v))
        .filter_map(|value| {
            let def = index.find(value, files)?;
            let from = check::name_of(&def.value);
            if from.is_empty() || from == check::name_of(value) {
                return None;
            }
            let chain = graph.chain_to_file(root, &def.file).unwrap_or_default();
            Some(Renamed {
                from: from.to_string(),
                to: check::identity(value),
                namespace: check::namespace_of(value).map(str::to_string),
                defined_at: def.place().at(&[]),
                culprits: origin::culprits(&chain, true, false, &show),
            })
        })
        .collect();
    let via = format!(" (as rendered by {k_shown})");
    references::dangling(&values, &renamed)
        .iter()
        .map(|d| {
            let traced = index
                .workload_sources(d.workload, files, graph)
                .into_iter()
                .filter(|src| src.keyed)
                .find_map(|src| {
                    references::reference_line(&src.doc, &d.reference)
                        .map(|line| Location::new(src.shown.clone(), Some(line)))
                });
            let location = traced.unwrap_or_else(|| {
                d.renamed.culprits.first().map_or_else(
                    || Location::new(k_shown.clone(), None),
                    |(at, _)| at.clone(),
                )
            });
            references::finding(d, location, &via, &k_shown)
        })
        .collect()
}
