//! Fetching a Git revision into a local, per-commit work tree cache.
//!
//! # Why the git command line
//!
//! [`GitCli`] shells out to the `git` executable instead of linking libgit2:
//! no C TLS/SSH stack is compiled into the controller, and fetching behaves
//! exactly like the `git` users run themselves (same protocol support, proxy
//! handling, `insteadOf` rules from a mounted global config, error messages).
//!
//! # What a fetch costs
//!
//! A revision is first resolved to a commit sha with one `git ls-remote`
//! (nothing at all when the revision already is a full sha). The cache holds
//! one work tree per commit, so a resync of an unchanged revision costs that
//! single `ls-remote`. A new commit is fetched shallowly (`--depth 1`,
//! `--no-tags`) into a fresh repository, checked out, and its `.git` directory
//! is deleted: the object store is never reused (every commit gets a fresh
//! shallow fetch), and a work tree without `.git` is smaller and safe to walk
//! for manifests.
//!
//! # Cache layout
//!
//! `<cache_dir>/<hash of url>/<sha>/tree` is the work tree and
//! `<cache_dir>/<hash of url>/<sha>/complete` the marker written last. Entries
//! are built in a `.tmp-*` directory beside them and renamed into place, so a
//! visible entry is always complete; if two fetches race, the loser uses the
//! winner's entry. At most [`KEEP_PER_URL`] commits are kept per URL, the least
//! recently served (by marker mtime) are removed first, never the one just
//! returned. Because entries are named by commit sha, a hash collision between
//! two URLs could only ever serve identical content. The cache is keyed by the
//! URL only: a full-sha revision already in the cache is served without asking
//! the remote, so callers sharing one cache directory must trust each other.
//!
//! # Safety of the git runs
//!
//! Every git run gets `GIT_TERMINAL_PROMPT=0`, no askpass program,
//! `GIT_CONFIG_NOSYSTEM=1` and `LC_ALL=C`, is killed after a timeout, and runs
//! with `core.symlinks=false` (a symlink in the repository is checked out as a
//! plain file holding the link text, so manifests cannot point outside the
//! work tree), hooks disabled, the `ext::` transport forbidden and automatic
//! gc/maintenance off. Credentials travel only through the environment or
//! 0600 files deleted right after the run, never through argv. Every message
//! that may contain a URL or git output goes through [`redact`].

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use zeroize::Zeroizing;

/// Default limit for one git command before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Number of commits kept in the cache for one URL.
pub const KEEP_PER_URL: usize = 3;

/// Name of the work tree directory inside a cache entry.
const TREE_DIR: &str = "tree";
/// Name of the marker file inside a cache entry, written last.
const MARKER: &str = "complete";
/// File of a cache entry with the commit's author and subject (`git log -1`).
const COMMIT_FILE: &str = "commit";
/// Bytes of [`COMMIT_FILE`] read back.
const COMMIT_FILE_MAX: usize = 2048;
/// Prefix of the directories in which entries are built.
const TMP_PREFIX: &str = ".tmp-";
/// Prefix of the per-run directories holding SSH key material.
const SCRATCH_PREFIX: &str = ".scratch-";
/// How many trailing lines of git's stderr end up in an error.
const STDERR_LINES: usize = 10;
/// Upper bound on the bytes kept from one output stream of git.
const MAX_OUTPUT: usize = 16 << 20;
/// How long to wait for the output readers after git has exited.
const READER_GRACE: Duration = Duration::from_secs(5);

/// Environment variables inherited from the controller that would redirect or
/// reconfigure git behind our back, make it prompt, or trace secrets.
pub const ENV_REMOVE: &[&str] = &[
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_TRACE",
    "GIT_TRACE_CURL",
    "GIT_TRACE_PACKET",
    "GIT_TRACE_REDACT",
    "GIT_CURL_VERBOSE",
];

/// Configuration forced on every git run (after the optional auth header).
const FORCED_CONFIG: &[(&str, &str)] = &[
    ("protocol.ext.allow", "never"),
    ("core.hooksPath", "/dev/null"),
    ("core.symlinks", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
];

/// Where to fetch from.
#[derive(Clone)]
pub struct SourceSpec {
    /// Repository URL as git understands it (`https://`, `ssh://`, `file://`, scp-like).
    pub url: String,
    /// Branch, tag, full commit sha, exact ref name, or `""` for the remote HEAD.
    pub revision: String,
    /// Credentials for the remote, if any.
    pub credentials: Option<Credentials>,
}

impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceSpec")
            .field("url", &redact(&self.url))
            .field("revision", &self.revision)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// Credentials read from a Kubernetes Secret by the caller.
#[derive(Clone)]
pub enum Credentials {
    /// HTTPS basic auth (username may be e.g. "git" or "x-access-token"); password or token.
    Basic {
        /// User name sent in the basic auth header.
        username: String,
        /// Password or token, used verbatim.
        password: Zeroizing<String>,
    },
    /// HTTPS bearer token (sent as `Authorization: Bearer <token>`).
    Bearer {
        /// The token; CR and LF characters are dropped so it cannot inject headers.
        token: Zeroizing<String>,
    },
    /// SSH private key (PEM/OpenSSH text) and known_hosts lines (required: we never trust an unknown host key).
    Ssh {
        /// Private key text; CRLF is normalised and a final newline added.
        private_key: Zeroizing<String>,
        /// known_hosts lines; the only host keys trusted besides the system-wide file.
        known_hosts: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
            Credentials::Ssh { known_hosts, .. } => f
                .debug_struct("Ssh")
                .field("private_key", &"<redacted>")
                .field("known_hosts_lines", &known_hosts.lines().count())
                .finish(),
        }
    }
}

/// A checked-out revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// Full commit sha of the checked-out revision.
    pub revision: String,
    /// Work tree root (without `.git`); read-only by convention, shared with other callers.
    pub dir: PathBuf,
    /// `false` when served from the cache without fetching.
    pub fetched: bool,
    /// Subject and author of the commit, when git could tell.
    pub commit: Option<CommitInfo>,
}

/// What the sync history shows of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// First line of the message.
    pub subject: String,
    /// Author's name (never the e-mail address).
    pub author: String,
}

impl CommitInfo {
    /// Parses what `populate` stored: author name, NUL, subject; each cut to a bounded length.
    fn parse(bytes: &[u8]) -> Option<CommitInfo> {
        let text = String::from_utf8_lossy(bytes.get(..COMMIT_FILE_MAX).unwrap_or(bytes));
        let (author, subject) = text.split_once('\0')?;
        let line = |s: &str| crate::audit::cut(s.lines().next().unwrap_or("").trim(), 200);
        Some(CommitInfo {
            author: line(author),
            subject: line(subject),
        })
    }
}

/// Why a fetch failed. URLs and git output in it are always redacted.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The git executable could not be started.
    #[error("could not start git program {}: {source}", program.display())]
    GitUnavailable {
        /// The program that was tried.
        program: PathBuf,
        /// The error from starting it.
        #[source]
        source: io::Error,
    },
    /// The remote has no such branch, tag, ref or commit.
    #[error("revision {revision:?} not found in {url}")]
    RevisionNotFound {
        /// The remote URL, redacted.
        url: String,
        /// The requested revision (`HEAD` for the remote default).
        revision: String,
    },
    /// A git command failed, timed out, or produced unexpected output.
    #[error("git {operation} of {url} failed ({status}): {stderr}")]
    GitFailed {
        /// Which git operation failed (`ls-remote`, `fetch`, `checkout`, ...).
        operation: &'static str,
        /// The remote URL, redacted.
        url: String,
        /// Exit status, timeout or other reason.
        status: String,
        /// The last lines of git's stderr, redacted.
        stderr: String,
    },
    /// Reading or writing the cache (or a credential file) failed.
    #[error("cache I/O error at {}: {source}", path.display())]
    CacheIo {
        /// The path being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Something that can produce a checkout; a trait so tests and other transports can replace git.
pub trait Source: Send + Sync {
    /// Resolve `spec` and return a work tree of the resolved commit.
    fn fetch(&self, spec: &SourceSpec) -> Result<Checkout, SourceError>;
}

/// The git command-line implementation.
#[derive(Clone, Debug)]
pub struct GitCli {
    program: PathBuf,
    cache_dir: PathBuf,
    timeout: Duration,
}

/// Unique suffixes for temporary directories within this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::CacheIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything one sequence of git runs for a spec needs.
struct RunCtx {
    env: Vec<(String, Zeroizing<String>)>,
    secrets: Vec<Zeroizing<String>>,
    url: String,
    /// Keeps SSH key material alive until the runs are over.
    _scratch: Option<ScratchDir>,
}

/// A 0700 directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create(parent: &Path) -> Result<ScratchDir, SourceError> {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        let path = parent.join(format!("{SCRATCH_PREFIX}{}", unique_suffix()));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(io_err(&path))?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A directory removed on drop unless disarmed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// Git's output of a successful run.
struct Output {
    stdout: Vec<u8>,
}

impl GitCli {
    /// `program` is the git executable ("git" to search PATH); `cache_dir` holds one work tree per commit.
    pub fn new(program: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> GitCli {
        GitCli {
            program: program.into(),
            cache_dir: cache_dir.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Kill any single git command that runs longer than `timeout` (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> GitCli {
        self.timeout = timeout;
        self
    }

    /// Resolve a revision to a commit sha with `git ls-remote` (full sha given → returned as is without network; "" → HEAD; try refs/heads/<rev>, refs/tags/<rev> (peeled ^{} for annotated tags), then an exact ref name).
    pub fn resolve(&self, spec: &SourceSpec) -> Result<String, SourceError> {
        if let Some(sha) = full_sha(&spec.revision) {
            return Ok(sha);
        }
        let ctx = self.context(spec)?;
        self.resolve_ref(spec, &ctx).map(|(sha, _)| sha)
    }

    fn context(&self, spec: &SourceSpec) -> Result<RunCtx, SourceError> {
        let scratch = match spec.credentials {
            Some(Credentials::Ssh { .. }) => Some(ScratchDir::create(&self.cache_dir)?),
            _ => None,
        };
        let env = git_env(
            spec.credentials.as_ref(),
            scratch.as_ref().map_or(self.cache_dir.as_path(), |s| &s.0),
        )?;
        Ok(RunCtx {
            env,
            secrets: secrets_of(spec.credentials.as_ref()),
            url: redact(&spec.url),
            _scratch: scratch,
        })
    }

    /// Resolve a symbolic revision; returns the commit sha and the ref it came from.
    fn resolve_ref(
        &self,
        spec: &SourceSpec,
        ctx: &RunCtx,
    ) -> Result<(String, String), SourceError> {
        let rev = spec.revision.as_str();
        let not_found = || SourceError::RevisionNotFound {
            url: ctx.url.clone(),
            revision: if rev.is_empty() { "HEAD" } else { rev }.to_string(),
        };
        let mut args: Vec<OsString> =
            vec!["ls-remote".into(), "--".into(), spec.url.as_str().into()];
        if rev.is_empty() {
            args.push("HEAD".into());
        } else {
            if !plausible_ref(rev) {
                return Err(not_found());
            }
            args.push(rev.into());
            args.push(format!("{rev}^{{}}").into());
        }
        let out = self.run(ctx, "ls-remote", &args)?;
        let listing = String::from_utf8_lossy(&out.stdout);
        let refs: Vec<(&str, &str)> = listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(sha, name)| (sha.trim(), name.trim()))
            .filter(|(sha, _)| full_sha(sha).is_some())
            .collect();
        let lookup = |name: &str| {
            refs.iter()
                .find(|(_, n)| *n == name)
                .map(|(sha, _)| sha.to_ascii_lowercase())
        };
        let candidates: Vec<(String, String)> = if rev.is_empty() {
            vec![("HEAD".into(), "HEAD".into())]
        } else {
            let tag = format!("refs/tags/{rev}");
            vec![
                (format!("refs/heads/{rev}"), format!("refs/heads/{rev}")),
                (format!("{tag}^{{}}"), tag.clone()),
                (tag.clone(), tag),
                (format!("{rev}^{{}}"), rev.to_string()),
                (rev.to_string(), rev.to_string()),
            ]
        };
        candidates
            .into_iter()
            .find_map(|(listed, fetch_ref)| lookup(&listed).map(|sha| (sha, fetch_ref)))
            .ok_or_else(not_found)
    }

    /// Run git with the context's environment; fails on non-zero exit or timeout.
    fn run(
        &self,
        ctx: &RunCtx,
        operation: &'static str,
        args: &[OsString],
    ) -> Result<Output, SourceError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in ENV_REMOVE {
            cmd.env_remove(name);
        }
        for (key, value) in &ctx.env {
            cmd.env(key, value.as_str());
        }
        let mut child = cmd.spawn().map_err(|source| SourceError::GitUnavailable {
            program: self.program.clone(),
            source,
        })?;
        let stdout = child.stdout.take().map(spawn_reader);
        let stderr = child.stderr.take().map(spawn_reader);

        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {
                    let now = Instant::now();
                    if now >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(format!("timed out after {:?}", self.timeout));
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("waiting failed: {e}"));
                }
            }
        };
        let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
            rx.and_then(|rx| rx.recv_timeout(READER_GRACE).ok())
                .unwrap_or_default()
        };
        let stdout = collect(stdout);
        let stderr = collect(stderr);
        let failure = match status {
            Ok(status) if status.success() => return Ok(Output { stdout }),
            Ok(status) => status.to_string(),
            Err(reason) => reason,
        };
        Err(SourceError::GitFailed {
            operation,
            url: ctx.url.clone(),
            status: failure,
            stderr: stderr_tail(&stderr, &ctx.secrets),
        })
    }

    /// Build the cache entry for `sha` in a temporary directory and move it to `entry`.
    fn populate(
        &self,
        spec: &SourceSpec,
        ctx: &RunCtx,
        url_dir: &Path,
        entry: &Path,
        sha: &str,
        fetch_ref: Option<&str>,
    ) -> Result<(), SourceError> {
        fs::create_dir_all(url_dir).map_err(io_err(url_dir))?;
        let tmp = url_dir.join(format!("{TMP_PREFIX}{sha}-{}", unique_suffix()));
        fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let mut guard = TempGuard(Some(tmp.clone()));
        let tree = tmp.join(TREE_DIR);
        let in_tree = |rest: &[&str]| -> Vec<OsString> {
            let mut args: Vec<OsString> = vec!["-C".into(), tree.as_os_str().into()];
            args.extend(rest.iter().map(OsString::from));
            args
        };

        let mut init: Vec<OsString> = vec!["init".into(), "-q".into(), "--template=".into()];
        init.push(tree.as_os_str().into());
        self.run(ctx, "init", &init)?;

        let fetch = |what: &str| {
            let mut args = in_tree(&["fetch", "-q", "--depth", "1", "--no-tags", "--"]);
            args.push(spec.url.as_str().into());
            args.push(what.into());
            self.run(ctx, "fetch", &args)
        };
        if let Err(by_sha) = fetch(sha) {
            match fetch_ref {
                // Servers that refuse unadvertised objects: fetch the ref we
                // resolved and make sure it still points at the same commit.
                Some(name) => {
                    fetch(name)?;
                    let out = self.run(
                        ctx,
                        "rev-parse",
                        &in_tree(&["rev-parse", "--verify", "-q", "FETCH_HEAD^{commit}"]),
                    )?;
                    let got = String::from_utf8_lossy(&out.stdout)
                        .trim()
                        .to_ascii_lowercase();
                    if got != sha {
                        return Err(SourceError::GitFailed {
                            operation: "fetch",
                            url: ctx.url.clone(),
                            status: format!("{name} moved from {sha} to {got} while fetching"),
                            stderr: String::new(),
                        });
                    }
                }
                None => return Err(classify_sha_fetch(by_sha, ctx, sha)),
            }
        }
        self.run(
            ctx,
            "checkout",
            &in_tree(&[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "FETCH_HEAD",
            ]),
        )?;
        // Author and subject for the sync history; a failure here only loses them.
        if let Ok(out) = self.run(
            ctx,
            "log",
            &in_tree(&["log", "-1", "--no-show-signature", "--format=%an%x00%s"]),
        ) {
            let _ = fs::write(tmp.join(COMMIT_FILE), &out.stdout);
        }
        let git_dir = tree.join(".git");
        fs::remove_dir_all(&git_dir).map_err(io_err(&git_dir))?;
        let marker = tmp.join(MARKER);
        fs::write(&marker, format!("{sha}\n")).map_err(io_err(&marker))?;

        match fs::rename(&tmp, entry) {
            Ok(()) => {
                guard.0 = None;
                Ok(())
            }
            // Another fetch of the same commit won the race: use its entry.
            Err(_) if is_complete(entry) => Ok(()),
            Err(first) => {
                // A leftover incomplete entry (never produced by rename): replace it.
                if entry.exists() {
                    fs::remove_dir_all(entry).map_err(io_err(entry))?;
                    match fs::rename(&tmp, entry) {
                        Ok(()) => {
                            guard.0 = None;
                            Ok(())
                        }
                        Err(_) if is_complete(entry) => Ok(()),
                        Err(source) => Err(SourceError::CacheIo {
                            path: entry.to_path_buf(),
                            source,
                        }),
                    }
                } else {
                    Err(SourceError::CacheIo {
                        path: entry.to_path_buf(),
                        source: first,
                    })
                }
            }
        }
    }

    /// Best effort: drop old entries of one URL and stale temporary directories.
    fn prune(&self, url_dir: &Path, keep_sha: &str) {
        let stale_after = self.timeout * 2 + Duration::from_secs(600);
        remove_stale(&self.cache_dir, SCRATCH_PREFIX, stale_after);
        remove_stale(url_dir, TMP_PREFIX, stale_after);
        let Ok(read) = fs::read_dir(url_dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, PathBuf)> = read
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && name != keep_sha
            })
            .filter_map(|e| {
                let mtime = fs::metadata(e.path().join(MARKER)).ok()?.modified().ok()?;
                Some((mtime, e.path()))
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (_, path) in entries.into_iter().skip(KEEP_PER_URL.saturating_sub(1)) {
            let _ = fs::remove_dir_all(path);
        }
    }
}

impl Source for GitCli {
    fn fetch(&self, spec: &SourceSpec) -> Result<Checkout, SourceError> {
        let ctx = self.context(spec)?;
        let (sha, fetch_ref) = match full_sha(&spec.revision) {
            Some(sha) => (sha, None),
            None => {
                let (sha, name) = self.resolve_ref(spec, &ctx)?;
                (sha, Some(name))
            }
        };
        let url_dir = self.cache_dir.join(url_key(&spec.url));
        let entry = url_dir.join(&sha);
        let fetched = if is_complete(&entry) {
            // Mark as recently used so pruning keeps it.
            if let Ok(file) = fs::File::options().write(true).open(entry.join(MARKER)) {
                let _ = file.set_modified(SystemTime::now());
            }
            false
        } else {
            self.populate(spec, &ctx, &url_dir, &entry, &sha, fetch_ref.as_deref())?;
            true
        };
        self.prune(&url_dir, &sha);
        let commit = fs::read(entry.join(COMMIT_FILE))
            .ok()
            .and_then(|bytes| CommitInfo::parse(&bytes));
        Ok(Checkout {
            revision: sha,
            dir: entry.join(TREE_DIR),
            fetched,
            commit,
        })
    }
}

/// Removes userinfo (user:password@) from URLs found in a text; used for every message that may include a URL or git output.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '\'' | '"' | '<' | '>' | '`') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        rest = match authority.rfind('@') {
            Some(at) => &after[at + 1..],
            None => after,
        };
    }
    out.push_str(rest);
    out
}

/// The environment for every git run: no prompts, no system config, C
/// locale, the forced config, and the credentials (an `http.extraHeader` as
/// config entry 0, or an SSH command whose key and known_hosts files are
/// written with mode 0600 into `scratch`, which must exist).
fn git_env(
    creds: Option<&Credentials>,
    scratch: &Path,
) -> Result<Vec<(String, Zeroizing<String>)>, SourceError> {
    let plain = |k: &str, v: &str| (k.to_string(), Zeroizing::new(v.to_string()));
    let mut env = vec![
        plain("GIT_TERMINAL_PROMPT", "0"),
        plain("GIT_CONFIG_NOSYSTEM", "1"),
        plain("GCM_INTERACTIVE", "never"),
        plain("SSH_ASKPASS_REQUIRE", "never"),
        plain("LC_ALL", "C"),
    ];
    let mut config: Vec<(String, Zeroizing<String>)> = Vec::new();
    match creds {
        None => {}
        Some(Credentials::Basic { username, password }) => {
            let pair = Zeroizing::new(format!("{username}:{}", password.as_str()));
            let encoded =
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
            config.push((
                "http.extraHeader".into(),
                Zeroizing::new(format!("Authorization: Basic {}", encoded.as_str())),
            ));
        }
        Some(Credentials::Bearer { token }) => {
            let clean: Zeroizing<String> = Zeroizing::new(
                token
                    .chars()
                    .filter(|c| !matches!(c, '\r' | '\n'))
                    .collect(),
            );
            config.push((
                "http.extraHeader".into(),
                Zeroizing::new(format!("Authorization: Bearer {}", clean.trim())),
            ));
        }
        Some(Credentials::Ssh {
            private_key,
            known_hosts,
        }) => {
            let mut key = Zeroizing::new(private_key.replace("\r\n", "\n"));
            if !key.ends_with('\n') {
                key.push('\n');
            }
            let key_path = scratch.join("identity");
            write_private(&key_path, key.as_bytes())?;
            let hosts_path = scratch.join("known_hosts");
            let mut hosts = known_hosts.replace("\r\n", "\n");
            if !hosts.ends_with('\n') {
                hosts.push('\n');
            }
            write_private(&hosts_path, hosts.as_bytes())?;
            let command = format!(
                "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o {} -o BatchMode=yes",
                sh_quote(&key_path.to_string_lossy()),
                sh_quote(&format!(
                    "UserKnownHostsFile={}",
                    ssh_quote(&hosts_path.to_string_lossy())
                )),
            );
            env.push(("GIT_SSH_COMMAND".into(), Zeroizing::new(command)));
        }
    }
    config.extend(
        FORCED_CONFIG
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string()))),
    );
    env.push(plain("GIT_CONFIG_COUNT", &config.len().to_string()));
    for (i, (key, value)) in config.into_iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), Zeroizing::new(key)));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), value));
    }
    Ok(env)
}

/// Secret strings that must never appear in an error, even outside a URL.
fn secrets_of(creds: Option<&Credentials>) -> Vec<Zeroizing<String>> {
    let mut secrets = Vec::new();
    match creds {
        Some(Credentials::Basic { username, password }) => {
            secrets.push(password.clone());
            let pair = format!("{username}:{}", password.as_str());
            secrets.push(Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()),
            ));
        }
        Some(Credentials::Bearer { token }) => {
            secrets.push(Zeroizing::new(token.trim().to_string()))
        }
        Some(Credentials::Ssh { .. }) | None => {}
    }
    secrets.retain(|s| s.len() >= 3);
    secrets
}

/// Create `path` (which must not exist) readable by the owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), SourceError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(contents).map_err(io_err(path))
}

/// Quote a word for the shell that runs `GIT_SSH_COMMAND`.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Quote a path for ssh's own option parser when it contains whitespace.
fn ssh_quote(path: &str) -> String {
    if path.contains(char::is_whitespace) {
        format!("\"{path}\"")
    } else {
        path.to_string()
    }
}

/// Read a stream to its end on a thread, keeping at most [`MAX_OUTPUT`] bytes.
fn spawn_reader<R: Read + Send + 'static>(mut stream: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

/// The last lines of git's stderr with URLs and known secrets redacted.
fn stderr_tail(stderr: &[u8], secrets: &[Zeroizing<String>]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
    let mut tail = redact(&tail);
    for secret in secrets {
        tail = tail.replace(secret.as_str(), "<redacted>");
    }
    tail
}

/// A failed fetch of a user-given sha: "not found" if the remote says so.
fn classify_sha_fetch(err: SourceError, ctx: &RunCtx, sha: &str) -> SourceError {
    match &err {
        SourceError::GitFailed { stderr, .. }
            if [
                "not our ref",
                "unadvertised object",
                "couldn't find remote ref",
            ]
            .iter()
            .any(|p| stderr.contains(p)) =>
        {
            SourceError::RevisionNotFound {
                url: ctx.url.clone(),
                revision: sha.to_string(),
            }
        }
        _ => err,
    }
}

/// A full SHA-1 or SHA-256 commit id, lowercased.
fn full_sha(rev: &str) -> Option<String> {
    ((rev.len() == 40 || rev.len() == 64) && rev.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| rev.to_ascii_lowercase())
}

/// Whether `rev` could name a ref; rejects what git forbids in ref names and
/// what `ls-remote` would treat as a glob or an option.
fn plausible_ref(rev: &str) -> bool {
    !rev.starts_with('-')
        && !rev.contains("..")
        && !rev
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "*?[\\:^~".contains(c))
}

/// Directory name for a URL: 64-bit FNV-1a, stable across Rust versions.
fn url_key(url: &str) -> String {
    let hash = url.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn is_complete(entry: &Path) -> bool {
    entry.join(MARKER).is_file() && entry.join(TREE_DIR).is_dir()
}

/// Remove directories in `dir` named `prefix*` not modified for `age`.
fn remove_stale(dir: &Path, prefix: &str, age: Duration) {
    let Ok(read) = fs::read_dir(dir) else {
        return;
    };
    for entry in read.filter_map(Result::ok) {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed > age);
        if old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use sealed_secrets_sync_testing::run_git as git;

    struct Repo {
        _tmp: tempfile::TempDir,
        path: PathBuf,
        cache: PathBuf,
        url: String,
    }

    impl Repo {
        fn new() -> Repo {
            let tmp = tempfile::tempdir().expect("tempdir");
            let path = tmp.path().join("origin");
            fs::create_dir(&path).expect("mkdir");
            git(&path, &["init", "-q"]);
            let cache = tmp.path().join("cache");
            let url = format!("file://{}", path.display());
            let repo = Repo {
                _tmp: tmp,
                path,
                cache,
                url,
            };
            repo.commit("app.yaml", "kind: ConfigMap\n");
            repo
        }

        fn commit(&self, file: &str, contents: &str) -> String {
            fs::write(self.path.join(file), contents).expect("write");
            git(&self.path, &["add", "-A"]);
            git(&self.path, &["commit", "-q", "-m", file]);
            git(&self.path, &["rev-parse", "HEAD"])
        }

        fn spec(&self, revision: &str) -> SourceSpec {
            SourceSpec {
                url: self.url.clone(),
                revision: revision.into(),
                credentials: None,
            }
        }

        fn cli(&self) -> GitCli {
            GitCli::new("git", &self.cache)
        }

        fn entries(&self) -> Vec<String> {
            let dir = self.cache.join(url_key(&self.url));
            let mut names: Vec<String> = fs::read_dir(dir)
                .expect("url dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    #[test]
    fn fetches_branch_then_serves_from_cache() {
        let repo = Repo::new();
        let head = repo.commit("b.yaml", "b: 1\n");
        let cli = repo.cli();
        let first = cli.fetch(&repo.spec("main")).expect("fetch");
        assert_eq!(first.revision, head);
        assert!(first.fetched);
        assert_eq!(
            fs::read_to_string(first.dir.join("b.yaml")).expect("b"),
            "b: 1\n"
        );
        assert!(first.dir.join("app.yaml").is_file());
        assert!(!first.dir.join(".git").exists(), ".git is deleted");
        let commit = first.commit.clone().expect("commit info");
        assert_eq!(commit.subject, "b.yaml");
        assert!(!commit.author.is_empty() && !commit.author.contains('@'));

        let second = cli.fetch(&repo.spec("main")).expect("refetch");
        assert!(!second.fetched);
        assert_eq!(second.dir, first.dir);
        assert_eq!(second.revision, head);
        assert_eq!(second.commit, first.commit, "kept in the cache entry");

        // Remote HEAD resolves to the same commit.
        let head_spec = cli.fetch(&repo.spec("")).expect("HEAD");
        assert_eq!(head_spec.revision, head);
        assert!(!head_spec.fetched);
    }

    #[test]
    fn new_commit_gives_new_dir() {
        let repo = Repo::new();
        let cli = repo.cli();
        let first = cli.fetch(&repo.spec("main")).expect("fetch");
        let next = repo.commit("c.yaml", "c: 1\n");
        let second = cli.fetch(&repo.spec("main")).expect("fetch 2");
        assert_eq!(second.revision, next);
        assert!(second.fetched);
        assert_ne!(second.dir, first.dir);
        assert!(second.dir.join("c.yaml").is_file());
        assert!(!first.dir.join("c.yaml").exists());
    }

    #[test]
    fn fetches_tags_and_full_sha() {
        let repo = Repo::new();
        let first = git(&repo.path, &["rev-parse", "HEAD"]);
        git(&repo.path, &["tag", "light"]);
        let second = repo.commit("v2.yaml", "v: 2\n");
        git(&repo.path, &["tag", "-a", "v2", "-m", "release v2"]);
        repo.commit("later.yaml", "l: 1\n");
        let cli = repo.cli();

        let light = cli.fetch(&repo.spec("light")).expect("lightweight tag");
        assert_eq!(light.revision, first);
        assert!(!light.dir.join("v2.yaml").exists());

        let annotated = cli.fetch(&repo.spec("v2")).expect("annotated tag");
        assert_eq!(annotated.revision, second, "tag is peeled to its commit");
        assert!(annotated.dir.join("v2.yaml").is_file());
        assert!(!annotated.dir.join("later.yaml").exists());

        // A full sha that is not a branch tip, in upper case.
        let spec = repo.spec(&first.to_ascii_uppercase());
        assert_eq!(cli.resolve(&spec).expect("resolve"), first);
        let by_sha = repo.cli().fetch(&spec).expect("by sha");
        assert_eq!(by_sha.revision, first);
        assert_eq!(by_sha.dir, light.dir);
        assert!(!by_sha.fetched);

        // Exact ref name.
        let exact = cli.fetch(&repo.spec("refs/tags/v2")).expect("exact ref");
        assert_eq!(exact.revision, second);
    }

    #[test]
    fn full_sha_not_in_cache_is_fetched() {
        let repo = Repo::new();
        let old = git(&repo.path, &["rev-parse", "HEAD"]);
        repo.commit("new.yaml", "n: 1\n");
        let got = repo.cli().fetch(&repo.spec(&old)).expect("fetch by sha");
        assert_eq!(got.revision, old);
        assert!(got.fetched);
        assert!(!got.dir.join("new.yaml").exists());
    }

    #[cfg(unix)]
    fn wrapper(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write wrapper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[cfg(unix)]
    #[test]
    fn falls_back_to_ref_when_sha_fetch_is_refused() {
        let repo = Repo::new();
        let head = repo.commit("x.yaml", "x: 1\n");
        git(&repo.path, &["tag", "-a", "rel", "-m", "rel"]);
        let log = repo.path.parent().expect("parent").join("calls.log");
        let script = wrapper(
            repo.path.parent().expect("parent"),
            "git-no-sha",
            &format!(
                r#"for a; do last=$a; done
case " $* " in *" fetch "*)
  echo "fetch $last" >> '{}'
  if printf '%s' "$last" | grep -Eq '^[0-9a-f]{{40}}$'; then
    echo "error: Server does not allow request for unadvertised object $last" >&2; exit 128
  fi;;
esac
exec git "$@"
"#,
                log.display()
            ),
        );
        let cli = GitCli::new(&script, &repo.cache);
        let got = cli.fetch(&repo.spec("main")).expect("fallback fetch");
        assert_eq!(got.revision, head);
        assert!(got.dir.join("x.yaml").is_file());
        let tag = cli.fetch(&repo.spec("rel")).expect("fallback tag fetch");
        assert_eq!(tag.revision, head);
        let calls = fs::read_to_string(&log).expect("log");
        assert_eq!(
            calls,
            format!("fetch {head}\nfetch refs/heads/main\n"),
            "tag was served from cache"
        );

        // A user-given sha the server refuses is reported as not found.
        let missing = "0123456789abcdef0123456789abcdef01234567";
        let other = tempfile::tempdir().expect("tmp");
        let err = GitCli::new(&script, other.path())
            .fetch(&repo.spec(missing))
            .expect_err("refused sha");
        assert!(
            matches!(&err, SourceError::RevisionNotFound { revision, .. } if revision == missing),
            "{err:?}"
        );
    }

    #[test]
    fn missing_revision_is_an_error() {
        let repo = Repo::new();
        let cli = repo.cli();
        for rev in ["no-such-branch", "bad*glob", "-x"] {
            let err = cli.fetch(&repo.spec(rev)).expect_err("missing");
            assert!(
                matches!(&err, SourceError::RevisionNotFound { revision, .. } if revision == rev),
                "{err:?}"
            );
            assert!(err.to_string().contains(rev), "{err}");
        }
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let err = cli.fetch(&repo.spec(sha)).expect_err("missing sha");
        assert!(err.to_string().contains(sha), "{err}");
    }

    #[test]
    fn bad_url_error_is_redacted() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cli = GitCli::new("git", tmp.path()).with_timeout(Duration::from_secs(30));
        let spec = SourceSpec {
            url: "https://user:secret@127.0.0.1:9/x.git".into(),
            revision: "main".into(),
            credentials: Some(Credentials::Bearer {
                token: Zeroizing::new("tok-hidden".into()),
            }),
        };
        let err = cli.fetch(&spec).expect_err("connection refused");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("tok-hidden"), "{shown}");
        assert!(shown.contains("127.0.0.1:9"), "{shown}");
        assert!(matches!(
            err,
            SourceError::GitFailed {
                operation: "ls-remote",
                ..
            }
        ));
    }

    #[test]
    fn missing_git_program_is_named() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cli = GitCli::new("/nonexistent/git-xyz", tmp.path());
        let spec = SourceSpec {
            url: "file:///nowhere".into(),
            revision: "main".into(),
            credentials: None,
        };
        let err = cli.fetch(&spec).expect_err("no git");
        assert!(matches!(err, SourceError::GitUnavailable { .. }));
        assert!(err.to_string().contains("/nonexistent/git-xyz"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn slow_git_is_killed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let script = wrapper(tmp.path(), "slow-git", "exec sleep 10\n");
        let cli =
            GitCli::new(&script, tmp.path().join("cache")).with_timeout(Duration::from_millis(200));
        let start = Instant::now();
        let err = cli
            .fetch(&SourceSpec {
                url: "file:///nowhere".into(),
                revision: "main".into(),
                credentials: None,
            })
            .expect_err("timeout");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("timed out"), "{err}");
    }

    #[test]
    fn cache_keeps_at_most_three_commits() {
        let repo = Repo::new();
        let cli = repo.cli();
        let mut dirs = Vec::new();
        for i in 0..5 {
            repo.commit("n.yaml", &format!("n: {i}\n"));
            let got = cli.fetch(&repo.spec("main")).expect("fetch");
            assert!(got.dir.is_dir());
            dirs.push(got);
            // Distinct marker mtimes even on coarse file systems.
            std::thread::sleep(Duration::from_millis(20));
        }
        let entries = repo.entries();
        assert_eq!(entries.len(), KEEP_PER_URL, "{entries:?}");
        for kept in &dirs[2..] {
            assert!(entries.contains(&kept.revision));
        }
        // Serving an old entry refreshes it so it survives the next prune.
        let old = cli.fetch(&repo.spec(&dirs[2].revision)).expect("old");
        assert!(!old.fetched);
        std::thread::sleep(Duration::from_millis(20));
        let newest = repo.commit("n.yaml", "n: 5\n");
        cli.fetch(&repo.spec("main")).expect("fetch");
        let entries = repo.entries();
        assert_eq!(entries.len(), KEEP_PER_URL);
        assert!(entries.contains(&newest));
        assert!(entries.contains(&dirs[2].revision));
        assert!(!entries.contains(&dirs[3].revision));
    }

    #[test]
    fn concurrent_fetches_share_one_entry() {
        let repo = Repo::new();
        let cli = repo.cli();
        let spec = repo.spec("main");
        let results: Vec<Checkout> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| cli.fetch(&spec))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("fetch"))
                .collect()
        });
        assert!(results.iter().all(|c| c.dir == results[0].dir));
        assert!(results[0].dir.join("app.yaml").is_file());
        assert_eq!(repo.entries(), vec![results[0].revision.clone()]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_checked_out_as_plain_files() {
        let repo = Repo::new();
        std::os::unix::fs::symlink("/etc/hostname", repo.path.join("link.yaml")).expect("symlink");
        repo.commit("other.yaml", "o: 1\n");
        let got = repo.cli().fetch(&repo.spec("main")).expect("fetch");
        let meta = fs::symlink_metadata(got.dir.join("link.yaml")).expect("meta");
        assert!(meta.file_type().is_file());
        assert_eq!(
            fs::read_to_string(got.dir.join("link.yaml")).expect("read"),
            "/etc/hostname"
        );
    }

    #[test]
    fn redact_removes_userinfo() {
        let cases = [
            ("https://user:secret@host/x.git", "https://host/x.git"),
            ("https://token@host", "https://host"),
            (
                "fatal: unable to access 'https://a:b@h:8443/r/': refused",
                "fatal: unable to access 'https://h:8443/r/': refused",
            ),
            (
                "two http://u:p@a/x and ssh://git@b:22/y",
                "two http://a/x and ssh://b:22/y",
            ),
            ("https://host/path@v1", "https://host/path@v1"),
            ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
            ("no url here", "no url here"),
            ("https://u:p@", "https://"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    fn env_map(env: &[(String, Zeroizing<String>)]) -> std::collections::HashMap<&str, &str> {
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    fn assert_common(env: &std::collections::HashMap<&str, &str>) {
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
        assert_eq!(env["GIT_CONFIG_NOSYSTEM"], "1");
        assert_eq!(env["LC_ALL"], "C");
        let count: usize = env["GIT_CONFIG_COUNT"].parse().expect("count");
        for i in 0..count {
            assert!(env.contains_key(format!("GIT_CONFIG_KEY_{i}").as_str()));
            assert!(env.contains_key(format!("GIT_CONFIG_VALUE_{i}").as_str()));
        }
        assert!(!env.contains_key(format!("GIT_CONFIG_KEY_{count}").as_str()));
    }

    #[test]
    fn git_env_without_credentials() {
        let tmp = tempfile::tempdir().expect("tmp");
        let env = git_env(None, tmp.path()).expect("env");
        let map = env_map(&env);
        assert_common(&map);
        assert!(!map.values().any(|v| v.contains("Authorization")));
        assert!(!map.contains_key("GIT_SSH_COMMAND"));
        assert_eq!(map["GIT_CONFIG_COUNT"], FORCED_CONFIG.len().to_string());
    }

    #[test]
    fn git_env_basic_and_bearer() {
        let tmp = tempfile::tempdir().expect("tmp");
        let basic = Credentials::Basic {
            username: "x-access-token".into(),
            password: Zeroizing::new("s3cr3t".into()),
        };
        let env = git_env(Some(&basic), tmp.path()).expect("env");
        let map = env_map(&env);
        assert_common(&map);
        assert_eq!(map["GIT_CONFIG_KEY_0"], "http.extraHeader");
        // base64("x-access-token:s3cr3t")
        assert_eq!(
            map["GIT_CONFIG_VALUE_0"],
            "Authorization: Basic eC1hY2Nlc3MtdG9rZW46czNjcjN0"
        );

        let bearer = Credentials::Bearer {
            token: Zeroizing::new("abc.def\n".into()),
        };
        let env = git_env(Some(&bearer), tmp.path()).expect("env");
        let map = env_map(&env);
        assert_common(&map);
        assert_eq!(map["GIT_CONFIG_KEY_0"], "http.extraHeader");
        assert_eq!(map["GIT_CONFIG_VALUE_0"], "Authorization: Bearer abc.def");
        assert_eq!(
            fs::read_dir(tmp.path()).expect("dir").count(),
            0,
            "no files"
        );
    }

    #[cfg(unix)]
    #[test]
    fn git_env_ssh_writes_private_files() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let scratch = tmp.path().join("dir with space");
        fs::create_dir(&scratch).expect("mkdir");
        let ssh = Credentials::Ssh {
            private_key: Zeroizing::new(
                "-----BEGIN OPENSSH PRIVATE KEY-----\r\nAAAA\r\n-----END OPENSSH PRIVATE KEY-----"
                    .into(),
            ),
            known_hosts: "github.com ssh-ed25519 AAAAC3Nza".into(),
        };
        let env = git_env(Some(&ssh), &scratch).expect("env");
        let map = env_map(&env);
        assert_common(&map);
        assert!(!map.values().any(|v| v.contains("Authorization")));
        let key = scratch.join("identity");
        let hosts = scratch.join("known_hosts");
        for file in [&key, &hosts] {
            let mode = fs::metadata(file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        assert_eq!(
            fs::read_to_string(&key).expect("key"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
        );
        assert_eq!(
            fs::read_to_string(&hosts).expect("hosts"),
            "github.com ssh-ed25519 AAAAC3Nza\n"
        );
        let command = map["GIT_SSH_COMMAND"];
        assert_eq!(
            command,
            format!(
                "ssh -i '{}' -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=\"{}\"' -o BatchMode=yes",
                key.display(),
                hosts.display()
            )
        );
        assert!(!command.contains("AAAA"));
    }

    #[cfg(unix)]
    #[test]
    fn ssh_key_files_are_removed_after_fetch() {
        let repo = Repo::new();
        let spec = SourceSpec {
            credentials: Some(Credentials::Ssh {
                private_key: Zeroizing::new("not a real key".into()),
                known_hosts: String::new(),
            }),
            ..repo.spec("main")
        };
        repo.cli().fetch(&spec).expect("file:// ignores ssh");
        let leftovers: Vec<_> = fs::read_dir(&repo.cache)
            .expect("cache")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(SCRATCH_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let specs = [
            Credentials::Basic {
                username: "git".into(),
                password: Zeroizing::new("pw-SECRET".into()),
            },
            Credentials::Bearer {
                token: Zeroizing::new("tok-SECRET".into()),
            },
            Credentials::Ssh {
                private_key: Zeroizing::new("key-SECRET".into()),
                known_hosts: "host ssh-ed25519 AAAA".into(),
            },
        ];
        for creds in specs {
            let spec = SourceSpec {
                url: "https://u:url-SECRET@example.com/r.git".into(),
                revision: "main".into(),
                credentials: Some(creds),
            };
            let shown = format!("{spec:?} {spec:#?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("example.com/r.git"), "{shown}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(
            full_sha("ABCDEF0123456789abcdef0123456789abcdef01").as_deref(),
            Some("abcdef0123456789abcdef0123456789abcdef01")
        );
        assert_eq!(full_sha("abc123"), None);
        assert!(plausible_ref("release/v1.2"));
        assert!(!plausible_ref("a b"));
        assert!(!plausible_ref("--upload-pack=x"));
        assert_eq!(url_key("file:///x"), url_key("file:///x"));
        assert_ne!(url_key("file:///x"), url_key("file:///y"));
        let tail = stderr_tail(
            b"line\nfatal: https://u:p@h/ said tok-123\n",
            &[Zeroizing::new("tok-123".into())],
        );
        assert_eq!(tail, "line\nfatal: https://h/ said <redacted>");
    }
}
