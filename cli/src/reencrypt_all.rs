//! `kubeseal re-encrypt --all PATH`: move a whole repository to the newest sealing key, so old
//! keys stop being needed and can be retired (`kubeseal keys retire`).
//!
//! Every YAML/JSON file under PATH is read; each SealedSecret in it (multi-document YAML and
//! concatenated JSON included) is re-sealed with the newest key, offline
//! (`--recovery-private-key` opens, `--cert` seals, as `kubeseal --re-encrypt
//! --recovery-private-key` does) or through the controller's `/v1/rotate` (as `kubeseal
//! --re-encrypt` does). Files without SealedSecrets are never written.
//!
//! Layout: a repository diff should show new ciphertexts and nothing else. When the re-sealed
//! object differs from the original only in its `encryptedData` values (the usual case), each
//! old ciphertext is replaced in the file's text where it stands, so key order, comments,
//! quoting and other documents stay byte for byte. Otherwise (for example a template scope that
//! the re-seal forces to the object's own scope) that document alone is printed again in
//! upstream's layout (sorted YAML, or Go-style JSON), keeping the comments above it, the
//! separators and every other document. Either way the new text is parsed back and compared with
//! what was meant before anything is written.
//!
//! Failure handling: a file is written (atomically) only when every SealedSecret in it was
//! re-sealed; a failure leaves the whole file as it was, is reported, and makes the exit code 1.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fs,
    ops::Range,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Result, anyhow, bail};
use clap::{ArgAction, Parser};
use serde_json::Value;

use sealed_secrets_core::{
    crypto::SystemRandom,
    documents::{json_stream_with_lines, parse_local_documents, to_go_json, to_sorted_yaml},
    keys::{PrivateKey, PublicKey},
    reencrypt::reencrypt,
    scope::{CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION},
    sealed_secret::{
        API_VERSION, CERTIFICATE_ANNOTATION, KIND, SealedSecret, renamed_to_sealed_for,
    },
    unseal::{UnsealOptions, unseal},
};

use crate::{
    args::{Args, KubeOverrides},
    cluster::Controller,
    commands::{recover::load_keys, rotate::rotated_object, validate::rate_limited},
    env::config::{Environment, Repository},
    io::write_atomically,
};

/// Flags of `kubeseal re-encrypt`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubeseal re-encrypt",
    about = "Re-seal every SealedSecret under a folder with the newest key, in place.",
    long_about = "Re-seals every SealedSecret in the YAML and JSON files under --all PATH with the \
                  newest sealing key and rewrites each changed file atomically. Offline with \
                  --recovery-private-key (the keys that open them) and --cert (the newest \
                  certificate); otherwise through the controller's /v1/rotate via the API server. \
                  One line per SealedSecret, then a summary; exit 1 if any failed (its file is \
                  left untouched). For a single file or stdin, `kubeseal --re-encrypt` keeps \
                  working.",
    max_term_width = 100
)]
struct ReencryptArgs {
    /// Folder (or single file) whose SealedSecrets to re-seal.
    #[arg(long, value_name = "PATH")]
    all: Option<PathBuf>,
    /// Offline: private key files that open the SealedSecrets (PEM, key Secrets, a List).
    #[arg(long, value_delimiter = ',', action = ArgAction::Append)]
    recovery_private_key: Vec<String>,
    /// Offline: the certificate to seal with (file or URL), normally the newest key's.
    #[arg(long)]
    cert: Option<String>,
    /// Report what would change without writing any file.
    #[arg(long, action = ArgAction::SetTrue)]
    dry_run: bool,
    /// Namespace of the sealed-secrets controller (online mode).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    controller_namespace: String,
    /// Name of the controller's Service (online mode).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    controller_name: String,
    /// Path to the kubeconfig file (online mode).
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeOverrides,
}

/// Entry point for `kubeseal re-encrypt ...` (arguments after `re-encrypt`). Exit 0 when
/// everything was re-sealed, 1 when anything failed, 2 on usage errors.
pub fn main(argv: impl Iterator<Item = OsString>) -> ExitCode {
    let args: ReencryptArgs = match crate::args::parse_subcommand("re-encrypt", argv) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let repo = match environments(&args) {
        Ok(repo) => repo,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let root = match check_usage(&args, repo.is_some()) {
        Ok(root) => root,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let outcome = match &repo {
        Some(repo) => run_by_environment(&args, repo, &root),
        None => run(&args, &root),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) if crate::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository's environments, when re-encryption goes by them: a `.sealed-secrets.yaml` is
/// found above the working directory, and neither `--cert` nor a connection flag chooses one
/// certificate for every file.
fn environments(args: &ReencryptArgs) -> Result<Option<Repository>> {
    let explicit = args.cert.as_deref().is_some_and(|c| !c.is_empty())
        || args.kube.context.is_some()
        || args.kube.server.is_some()
        || args.kubeconfig.is_some();
    if explicit {
        return Ok(None);
    }
    let cwd = std::env::current_dir()?;
    Ok(Repository::discover(&cwd)?)
}

fn check_usage(args: &ReencryptArgs, by_environment: bool) -> Result<PathBuf> {
    let Some(root) = args.all.clone() else {
        bail!(
            "kubeseal re-encrypt needs --all PATH (a folder or file); for one file or stdin use \
             `kubeseal --re-encrypt -f FILE`"
        );
    };
    let offline_keys = !args.recovery_private_key.iter().all(String::is_empty);
    let cert = args.cert.as_deref().is_some_and(|c| !c.is_empty());
    if offline_keys != cert && !by_environment {
        bail!(
            "offline re-encryption needs both --recovery-private-key (to open) and --cert (to \
             seal); give neither to re-encrypt through the controller"
        );
    }
    if !root.exists() {
        bail!("--all {}: no such file or folder", root.display());
    }
    Ok(root)
}

/// Re-seals one SealedSecret: `Ok(None)` when it is already sealed with the newest key.
trait Resealer {
    fn reseal(&self, sealed: &SealedSecret, doc: &Value) -> Result<Option<SealedSecret>, String>;

    /// The fingerprint to record on re-sealed objects (environments only).
    fn certificate(&self) -> Option<&str> {
        None
    }
}

/// A resealer for one environment: records the environment's certificate.
struct ForEnvironment<R> {
    inner: R,
    fingerprint: String,
}

impl<R: Resealer> Resealer for ForEnvironment<R> {
    fn reseal(&self, sealed: &SealedSecret, doc: &Value) -> Result<Option<SealedSecret>, String> {
        self.inner.reseal(sealed, doc)
    }

    fn certificate(&self) -> Option<&str> {
        Some(&self.fingerprint)
    }
}

impl Totals {
    /// Prints the summary (and the error line when anything failed); whether all went well.
    fn finish(&self, dry_run: bool) -> bool {
        println!("{}", self.summary(dry_run));
        if self.failed > 0 {
            eprintln!(
                "error: {} SealedSecret(s) or file(s) could not be re-encrypted; their files were \
                 left untouched",
                self.failed
            );
        }
        self.failed == 0
    }
}

/// Re-seals one SealedSecret under the identity it opens with: a SealedSecret kubeseal sealed
/// for the name an overlay renders records it
/// ([`sealed_secrets_core::sealed_secret::SEALED_FOR_ANNOTATION`]) and is opened and
/// re-sealed under it, whatever the resealer; the result keeps the name written in its file.
fn reseal_as_sealed_for(
    resealer: &dyn Resealer,
    sealed: &SealedSecret,
    doc: &Value,
) -> Result<Option<SealedSecret>, String> {
    let Some(renamed_doc) = renamed_to_sealed_for(doc) else {
        return resealer.reseal(sealed, doc);
    };
    let renamed = SealedSecret::from_value(renamed_doc.clone()).map_err(|e| e.to_string())?;
    Ok(resealer.reseal(&renamed, &renamed_doc)?.map(|mut out| {
        out.metadata.name = sealed.metadata.name.clone();
        out.metadata.namespace = sealed.metadata.namespace.clone();
        out.spec.template.metadata.name = sealed.spec.template.metadata.name.clone();
        out.spec.template.metadata.namespace = sealed.spec.template.metadata.namespace.clone();
        out
    }))
}

/// Offline: open with the recovery keys, seal for `--cert`.
struct Offline {
    keys: Vec<PrivateKey>,
    new_key: PublicKey,
    /// The newest key's private half, when it is among the recovery keys: lets objects that
    /// already open with it be left alone.
    new_private: Option<PrivateKey>,
}

impl Resealer for Offline {
    fn reseal(&self, sealed: &SealedSecret, _doc: &Value) -> Result<Option<SealedSecret>, String> {
        if let Some(newest) = &self.new_private
            && !sealed.spec.encrypted_data.is_empty()
            && sealed.spec.data.is_none()
        {
            let mut items = sealed.clone();
            items.spec.template.data = None;
            if unseal(&items, newest, UnsealOptions::default()).is_ok() {
                return Ok(None);
            }
        }
        reencrypt(sealed, &self.keys, &self.new_key, &mut SystemRandom)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Online: the controller's `/v1/rotate` through the API server.
struct Online(Controller);

impl Resealer for Online {
    fn reseal(&self, sealed: &SealedSecret, doc: &Value) -> Result<Option<SealedSecret>, String> {
        let body = serde_json::to_vec(doc).map_err(|e| e.to_string())?;
        let reply = self.0.post("/v1/rotate", body)?;
        match reply.status {
            200..=299 => {
                let value = rotated_object(sealed, &reply.body).map_err(|e| format!("{e:#}"))?;
                SealedSecret::from_value(value)
                    .map(Some)
                    .map_err(|e| format!("the controller's answer: {e}"))
            }
            409 => Err("the controller cannot open it with any of its keys (409)".into()),
            429 => Err(rate_limited("/v1/rotate", &reply)),
            _ => Err(self.0.failure(&reply, "post", "create")),
        }
    }
}

fn run(args: &ReencryptArgs, root: &Path) -> Result<bool> {
    let resealer: Box<dyn Resealer> = if args.cert.as_deref().is_some_and(|c| !c.is_empty()) {
        let mut upstream = upstream_args(args)?;
        upstream.cert = args.cert.clone().unwrap_or_default();
        let new_key = crate::commands::sealing_key(&upstream)?;
        let keys = load_keys(&args.recovery_private_key)?;
        let new_private = keys.iter().find(|k| k.public_key() == new_key).cloned();
        Box::new(Offline {
            keys,
            new_key,
            new_private,
        })
    } else {
        Box::new(Online(Controller::connect(
            &upstream_args(args)?,
            "cannot re-encrypt secrets",
        )?))
    };
    let files = collect_files(root)?;
    let mut totals = Totals::default();
    for file in &files {
        let report = process_file(file, resealer.as_ref(), args.dry_run);
        for line in &report.lines {
            println!("{}: {line}", file.display());
        }
        totals.add(&report);
    }
    Ok(totals.finish(args.dry_run))
}

/// Re-seals each file with its own environment's newest certificate: offline with the
/// environment's keys among `--recovery-private-key` (a file sealed for another environment
/// does not open with them and is reported, not silently moved), or online through the
/// environment's controller after the wrong-cluster guard.
fn run_by_environment(args: &ReencryptArgs, repo: &Repository, root: &Path) -> Result<bool> {
    let files = collect_files(root)?;
    let keys = load_keys(&args.recovery_private_key)?;
    let offline = !keys.is_empty();
    let mut by_env: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut totals = Totals::default();
    for file in files {
        let resolved = fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        match repo.route(&resolved) {
            Some(rule) => by_env
                .entry(rule.environment.clone())
                .or_default()
                .push(file),
            None => {
                let text = fs::read_to_string(&file).unwrap_or_default();
                if !crate::env::inventory::sealed_in(&text).is_empty() {
                    println!(
                        "{}: skipped: no rule of {} routes it to an environment",
                        file.display(),
                        repo.file.display()
                    );
                }
            }
        }
    }
    for (env_name, files) in &by_env {
        let env = repo.environment(env_name).map_err(|e| anyhow!(e))?;
        let resealer: Result<Box<dyn Resealer>> = if offline {
            environment_offline(env, &keys)
        } else {
            environment_online(args, repo, env)
        };
        match resealer {
            Ok(resealer) => {
                for file in files {
                    let report = process_file(file, resealer.as_ref(), args.dry_run);
                    for line in &report.lines {
                        println!("{}: [{env_name}] {line}", file.display());
                    }
                    totals.add(&report);
                }
            }
            Err(err) => {
                for file in files {
                    println!("{}: [{env_name}] failed: {err:#}", file.display());
                    totals.failed += 1;
                }
            }
        }
    }
    Ok(totals.finish(args.dry_run))
}

fn environment_offline(env: &Environment, keys: &[PrivateKey]) -> Result<Box<dyn Resealer>> {
    let newest = env
        .sealing_certificate(jiff::Timestamp::now())
        .ok_or_else(|| {
            anyhow!(
                "every certificate of environment {:?} has expired",
                env.name
            )
        })?;
    let own: Vec<PrivateKey> = keys
        .iter()
        .filter(|k| env.has_fingerprint(&k.fingerprint()))
        .cloned()
        .collect();
    if own.is_empty() {
        bail!(
            "none of the --recovery-private-key keys belongs to environment {:?} (its \
             certificates: {})",
            env.name,
            env.certificates
                .iter()
                .map(|c| c.fingerprint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let new_key = newest.cert.public_key().clone();
    let new_private = own.iter().find(|k| k.public_key() == new_key).cloned();
    Ok(Box::new(ForEnvironment {
        inner: Offline {
            keys: own,
            new_key,
            new_private,
        },
        fingerprint: newest.fingerprint.clone(),
    }))
}

fn environment_online(
    args: &ReencryptArgs,
    repo: &Repository,
    env: &Environment,
) -> Result<Box<dyn Resealer>> {
    let spec = env.controller.clone().unwrap_or_default();
    let mut kube = args.kube.clone();
    kube.context = spec.context;
    let upstream = crate::args::upstream_with(crate::args::Connection {
        kubeconfig: args.kubeconfig.clone(),
        kube,
        controller_name: Some(spec.name.unwrap_or_else(|| args.controller_name.clone())),
        controller_namespace: spec
            .namespace
            .unwrap_or_else(|| args.controller_namespace.clone()),
    })
    .map_err(|e| anyhow!("{e}"))?;
    let controller = Controller::connect(&upstream, "cannot re-encrypt secrets")?;
    let cert = crate::env::guard::checked_certificate(repo, env, &controller, &upstream)?;
    Ok(Box::new(ForEnvironment {
        inner: Online(controller),
        fingerprint: cert.public_key().fingerprint(),
    }))
}

/// Upstream's flag set with this command's connection flags, for the shared code.
fn upstream_args(args: &ReencryptArgs) -> Result<Args> {
    crate::args::upstream_with(crate::args::Connection {
        kubeconfig: args.kubeconfig.clone(),
        kube: args.kube.clone(),
        controller_name: Some(args.controller_name.clone()),
        controller_namespace: args.controller_namespace.clone(),
    })
    .map_err(|e| anyhow!("{e}"))
}

/// Every `.yaml`, `.yml` and `.json` file under `root` (or `root` itself), sorted; hidden
/// entries (`.git`) and symbolic links are skipped.
fn collect_files(root: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .map_err(|e| anyhow!("cannot read folder {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                walk(&entry.path(), out)?;
            } else if kind.is_file() && is_manifest(&entry.path()) {
                out.push(entry.path());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if root.is_file() {
        out.push(root.to_path_buf());
    } else {
        walk(root, &mut out)?;
    }
    Ok(out)
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["yaml", "yml", "json"].contains(&e.to_ascii_lowercase().as_str()))
}

/// What happened in one file.
#[derive(Debug, Default)]
struct FileReport {
    lines: Vec<String>,
    reencrypted: usize,
    unchanged: usize,
    failed: usize,
    written: bool,
}

#[derive(Debug, Default)]
struct Totals {
    reencrypted: usize,
    unchanged: usize,
    failed: usize,
    files_written: usize,
}

impl Totals {
    fn add(&mut self, report: &FileReport) {
        self.reencrypted += report.reencrypted;
        self.unchanged += report.unchanged;
        self.failed += report.failed;
        self.files_written += usize::from(report.written);
    }

    fn summary(&self, dry_run: bool) -> String {
        let verb = if dry_run {
            "would re-encrypt"
        } else {
            "re-encrypted"
        };
        let files = if dry_run {
            "nothing written (--dry-run)".to_string()
        } else {
            format!("{} file(s) written", self.files_written)
        };
        format!(
            "{verb} {} SealedSecret(s), {} already on the newest key, {} failed; {files}",
            self.reencrypted, self.unchanged, self.failed
        )
    }
}

/// One document of a file: where its text is, and its value.
#[derive(Debug, Clone)]
struct Doc {
    span: Range<usize>,
    value: Value,
}

fn is_sealed_secret(value: &Value) -> bool {
    value.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
        && value.get("kind").and_then(Value::as_str) == Some(KIND)
}

/// The documents of a file with their spans. YAML is cut at separator lines (`---`, `...`);
/// JSON is a stream of objects. `Err` when the text cannot be read as such.
fn split_documents(text: &str) -> Result<(Vec<Doc>, bool), String> {
    let body = text.trim_start_matches('\u{feff}');
    if body.trim_start().starts_with('{') {
        let (docs, error) = json_stream_with_lines(text);
        if let Some((line, message)) = error {
            return Err(format!("line {line}: {message}"));
        }
        let base = text.as_ptr() as usize;
        let docs = docs
            .into_iter()
            .map(|(_, slice, value)| {
                let start = slice.as_ptr() as usize - base;
                Doc {
                    span: start..start + slice.len(),
                    value,
                }
            })
            .collect();
        return Ok((docs, true));
    }
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    fn push(text: &str, range: Range<usize>, docs: &mut Vec<Doc>) -> Result<(), String> {
        let chunk = &text[range.clone()];
        let mut parsed = parse_local_documents(chunk.as_bytes()).map_err(|e| e.to_string())?;
        match parsed.len() {
            0 => Ok(()),
            1 => {
                docs.push(Doc {
                    span: range,
                    value: parsed.remove(0),
                });
                Ok(())
            }
            _ => Err(
                "a document separator kubeseal cannot place (`--- ` followed by content)".into(),
            ),
        }
    }
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        let separator = bare == "---"
            || bare == "..."
            || bare.starts_with("--- #")
            || bare.starts_with("---\t#");
        if separator {
            push(text, start..offset, &mut docs)?;
            start = offset + line.len();
        }
        offset += line.len();
    }
    push(text, start..text.len(), &mut docs)?;
    Ok((docs, false))
}

/// The object to write for a re-sealed SealedSecret: the new one, keeping the original's outer
/// labels and annotations (the scope annotations are the same: re-sealing keeps the scope).
fn merged(original: &SealedSecret, rotated: &SealedSecret) -> SealedSecret {
    let mut out = rotated.clone();
    out.metadata.labels = original.metadata.labels.clone();
    let mut annotations = original.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(CLUSTER_WIDE_ANNOTATION);
    annotations.remove(NAMESPACE_WIDE_ANNOTATION);
    for key in [CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION] {
        if let Some(value) = rotated
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
        {
            annotations.insert(key.to_string(), value.clone());
        }
    }
    out.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    out
}

/// Whether `original` with `rotated`'s ciphertexts is the object we mean to write.
fn only_ciphertexts_differ(original: &SealedSecret, target: &SealedSecret) -> bool {
    let mut swapped = original.clone();
    swapped.spec.encrypted_data = target.spec.encrypted_data.clone();
    swapped.status = None;
    let mut target = target.clone();
    target.status = None;
    swapped.to_upstream_value() == target.to_upstream_value()
}

/// Rewrites `text` so every SealedSecret `replacements[i] = (doc index, original, target)`
/// becomes its target; the other documents stay byte for byte. The result is checked by
/// parsing it back.
fn rewrite(
    text: &str,
    docs: &[Doc],
    json: bool,
    replacements: &[(usize, SealedSecret, SealedSecret)],
) -> Result<String, String> {
    let mut expected: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
    // In place: each old ciphertext occurs once, and only ciphertexts change.
    let in_place = replacements.iter().all(|(index, original, target)| {
        let mut swapped = docs[*index].value.clone();
        swapped["spec"]["encryptedData"] =
            serde_json::to_value(&target.spec.encrypted_data).unwrap_or_default();
        expected[*index] = swapped;
        only_ciphertexts_differ(original, target)
            && original
                .spec
                .encrypted_data
                .keys()
                .eq(target.spec.encrypted_data.keys())
            && original
                .spec
                .encrypted_data
                .values()
                .all(|old| !old.is_empty() && text.matches(old.as_str()).count() == 1)
    });
    if in_place {
        let mut out = text.to_string();
        for (_, original, target) in replacements {
            for (item, old) in &original.spec.encrypted_data {
                out = out.replacen(old.as_str(), &target.spec.encrypted_data[item], 1);
            }
        }
        if parse_local_documents(out.as_bytes()).ok().as_ref() == Some(&expected) {
            return Ok(out);
        }
    }
    // Print each re-sealed document again, in upstream's layout, in its own place.
    let mut out = text.to_string();
    let mut expected: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
    let mut ordered: Vec<&(usize, SealedSecret, SealedSecret)> = replacements.iter().collect();
    ordered.sort_by_key(|(index, _, _)| std::cmp::Reverse(*index));
    for (index, _, target) in ordered {
        let value = target.to_upstream_value();
        let span = docs[*index].span.clone();
        let chunk = &text[span.clone()];
        let rendered = if json {
            to_go_json(&value).trim_end().to_string()
        } else {
            // Keep the comments and blank lines above the object.
            let mut head = 0;
            for line in chunk.split_inclusive('\n') {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    head += line.len();
                } else {
                    break;
                }
            }
            format!("{}{}", &chunk[..head], to_sorted_yaml(&value))
        };
        out.replace_range(span, &rendered);
        expected[*index] = value;
    }
    let parsed = parse_local_documents(out.as_bytes()).map_err(|e| e.to_string())?;
    if parsed != expected {
        return Err("the rewritten file does not read back as intended; left untouched".into());
    }
    Ok(out)
}

fn object_name(value: &Value) -> String {
    let meta = &value["metadata"];
    let name = meta["name"].as_str().unwrap_or("<no name>");
    match meta["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("SealedSecret {ns}/{name}"),
        _ => format!("SealedSecret {name}"),
    }
}

/// Re-seals the SealedSecrets of one file and writes it when all of them succeeded.
fn process_file(path: &Path, resealer: &dyn Resealer, dry_run: bool) -> FileReport {
    let mut report = FileReport::default();
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.failed += 1;
            report.lines.push(format!("failed: cannot read: {e}"));
            return report;
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        // Not text: not a manifest of ours.
        return report;
    };
    if !text.contains(KIND) {
        return report;
    }
    let (docs, json) = match split_documents(text) {
        Ok(found) => found,
        Err(reason) => {
            // A file that mentions SealedSecret but does not parse (a Helm template, say) might
            // hold one we cannot see: say so, but only count it as failed when it plainly is one.
            if text.contains(API_VERSION) {
                report.failed += 1;
                report
                    .lines
                    .push(format!("failed: cannot read as YAML or JSON: {reason}"));
            }
            return report;
        }
    };
    let mut replacements = Vec::new();
    let mut outcomes = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        if !is_sealed_secret(&doc.value) {
            continue;
        }
        let name = object_name(&doc.value);
        let original = match SealedSecret::from_value(doc.value.clone()) {
            Ok(sealed) => sealed,
            Err(e) => {
                report.failed += 1;
                outcomes.push(format!("{name}: failed: {e}"));
                continue;
            }
        };
        match reseal_as_sealed_for(resealer, &original, &doc.value) {
            Ok(None) => {
                report.unchanged += 1;
                outcomes.push(format!(
                    "{name}: unchanged (already sealed with the newest key)"
                ));
            }
            Ok(Some(rotated)) => {
                let mut target = merged(&original, &rotated);
                if let Some(fingerprint) = resealer.certificate() {
                    target
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(CERTIFICATE_ANNOTATION.to_string(), fingerprint.to_string());
                }
                replacements.push((index, original, target));
                outcomes.push(format!("{name}: re-encrypted"));
            }
            Err(e) => {
                report.failed += 1;
                outcomes.push(format!("{name}: failed: {e}"));
            }
        }
    }
    if report.failed > 0 {
        for line in outcomes {
            if line.ends_with(": re-encrypted") {
                report.lines.push(line.replace(
                    ": re-encrypted",
                    ": not written (another SealedSecret of this file failed)",
                ));
            } else {
                report.lines.push(line);
            }
        }
        return report;
    }
    if replacements.is_empty() {
        report.lines = outcomes;
        return report;
    }
    let new_text = match rewrite(text, &docs, json, &replacements) {
        Ok(new_text) => new_text,
        Err(reason) => {
            report.failed += 1;
            report.lines.push(format!("failed: {reason}"));
            return report;
        }
    };
    if !dry_run && let Err(e) = write_atomically(path, new_text.as_bytes()) {
        report.failed += 1;
        report.lines.push(format!("failed: {e:#}"));
        return report;
    }
    report.reencrypted = replacements.len();
    report.written = !dry_run;
    report.lines = outcomes;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_secrets_core::keys::generate_key_pair;

    /// Seals with key `old`, re-seals offline for `new`.
    struct Fixture {
        old: PrivateKey,
        new: PrivateKey,
    }

    fn fixture() -> Fixture {
        let make = || {
            generate_key_pair(
                2048,
                "",
                jiff::Timestamp::now(),
                jiff::SignedDuration::from_hours(1),
            )
            .unwrap()
            .key
        };
        Fixture {
            old: make(),
            new: make(),
        }
    }

    impl Fixture {
        fn offline(&self) -> Offline {
            Offline {
                keys: vec![self.old.clone(), self.new.clone()],
                new_key: self.new.public_key(),
                new_private: Some(self.new.clone()),
            }
        }

        fn sealed_yaml(&self, key: &PrivateKey, name: &str) -> String {
            use sealed_secrets_core::seal::{
                NamespaceDefault, SealOptions, seal_secret, secret_from_value,
            };
            let secret = secret_from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "shop", "labels": {"app": "shop"}},
                "stringData": {"password": "hunter2", "user": "admin"}
            }))
            .unwrap();
            let options = SealOptions {
                scope: sealed_secrets_core::scope::Scope::Strict,
                namespace: NamespaceDefault {
                    namespace: "shop".into(),
                    explicit: false,
                },
                allow_empty_data: false,
            };
            let sealed =
                seal_secret(secret, &key.public_key(), &options, &mut SystemRandom).unwrap();
            to_sorted_yaml(&sealed.to_upstream_value())
        }
    }

    fn open(text: &str, key: &PrivateKey) -> Vec<String> {
        parse_local_documents(text.as_bytes())
            .unwrap()
            .into_iter()
            .filter(is_sealed_secret)
            .map(|doc| {
                let sealed = SealedSecret::from_value(doc).unwrap();
                let secret = unseal(&sealed, key, UnsealOptions::default()).unwrap();
                String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap()
            })
            .collect()
    }

    #[test]
    fn only_ciphertexts_change_and_everything_else_stays_byte_for_byte() {
        let fx = fixture();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.yaml");
        let config = "# the app's settings\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings # inline comment\ndata: {mode: fast}\n";
        let original = format!(
            "{config}---\n# database password, rotated yearly\n{}--- # already new\n{}",
            fx.sealed_yaml(&fx.old, "db"),
            fx.sealed_yaml(&fx.new, "web")
        );
        fs::write(&path, &original).unwrap();
        let report = process_file(&path, &fx.offline(), false);
        assert_eq!(
            report.lines,
            [
                "SealedSecret shop/db: re-encrypted",
                "SealedSecret shop/web: unchanged (already sealed with the newest key)"
            ]
        );
        assert!(report.written);
        let after = fs::read_to_string(&path).unwrap();
        assert!(after.starts_with(config), "untouched document");
        assert!(after.contains("---\n# database password, rotated yearly\n"));
        assert!(after.contains("--- # already new\n"));
        assert_eq!(
            after.len(),
            original.len(),
            "same layout, same-size ciphertexts"
        );
        let changed_lines = original
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed_lines, 2, "two encryptedData values of db");
        assert_eq!(open(&after, &fx.new), ["hunter2", "hunter2"]);
        // Nothing left to do on a second run: the file is not written again.
        let report = process_file(&path, &fx.offline(), false);
        assert!(!report.written);
        assert_eq!(report.unchanged, 2);
    }

    #[test]
    fn a_forced_scope_change_reprints_that_document_only_in_upstream_layout() {
        let fx = fixture();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.yaml");
        // A template claiming cluster-wide under a strict object: re-sealing forces it strict.
        let sealed = fx.sealed_yaml(&fx.old, "db").replace(
            "      labels:\n",
            "      annotations:\n        sealedsecrets.bitnami.com/cluster-wide: \"true\"\n      labels:\n",
        );
        assert!(sealed.contains("cluster-wide"));
        let other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
        fs::write(&path, format!("{other}---\n# keep me\n{sealed}")).unwrap();
        let report = process_file(&path, &fx.offline(), false);
        assert_eq!(report.reencrypted, 1, "{:?}", report.lines);
        let after = fs::read_to_string(&path).unwrap();
        assert!(after.starts_with(&format!(
            "{other}---\n# keep me\napiVersion: bitnami.com/v1alpha1\n"
        )));
        assert!(!after.contains("cluster-wide"), "{after}");
        assert_eq!(open(&after, &fx.new), ["hunter2"]);
    }

    #[test]
    fn json_streams_keep_their_other_objects() {
        let fx = fixture();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.json");
        let doc: Value = serde_yaml_value(&fx.sealed_yaml(&fx.old, "db"));
        let text = format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"x\"}}}}\n{}",
            to_go_json(&doc)
        );
        fs::write(&path, &text).unwrap();
        let report = process_file(&path, &fx.offline(), false);
        assert_eq!(report.reencrypted, 1, "{:?}", report.lines);
        let after = fs::read_to_string(&path).unwrap();
        assert!(after.starts_with("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\""));
        assert_eq!(after.len(), text.len());
        assert_eq!(open(&after, &fx.new), ["hunter2"]);
    }

    fn serde_yaml_value(text: &str) -> Value {
        parse_local_documents(text.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn a_failure_leaves_the_whole_file_untouched() {
        let fx = fixture();
        let stranger = generate_key_pair(
            2048,
            "",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(1),
        )
        .unwrap()
        .key;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.yaml");
        let text = format!(
            "{}---\n{}",
            fx.sealed_yaml(&fx.old, "db"),
            fx.sealed_yaml(&stranger, "foreign")
        );
        fs::write(&path, &text).unwrap();
        let report = process_file(&path, &fx.offline(), false);
        assert_eq!(report.failed, 1);
        assert!(!report.written);
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert!(
            report.lines[0].contains("not written"),
            "{:?}",
            report.lines
        );
        assert!(report.lines[1].contains("foreign: failed: error decrypting secret"));
        // Dry runs write nothing either.
        let single = dir.path().join("single.yaml");
        let text = fx.sealed_yaml(&fx.old, "db");
        fs::write(&single, &text).unwrap();
        let report = process_file(&single, &fx.offline(), true);
        assert_eq!(report.reencrypted, 1);
        assert_eq!(fs::read_to_string(&single).unwrap(), text);
    }

    #[test]
    fn non_manifests_and_templates_are_left_alone() {
        let fx = fixture();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/x.yaml"), "kind: SealedSecret").unwrap();
        fs::write(dir.path().join("notes.txt"), "SealedSecret").unwrap();
        fs::write(
            dir.path().join("chart.yaml"),
            "kind: SealedSecret\nname: {{ .x }\n",
        )
        .unwrap();
        fs::write(dir.path().join("cm.yaml"), "kind: ConfigMap\n").unwrap();
        let files = collect_files(dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["chart.yaml", "cm.yaml"]);
        for file in &files {
            let report = process_file(file, &fx.offline(), false);
            assert_eq!(report.failed, 0, "{:?}", report.lines);
            assert!(!report.written);
        }
    }
}
