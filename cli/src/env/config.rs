//! The repository file, `.sealed-secrets.yaml`: which environments a repository seals for, and
//! which paths route to which.
//!
//! Why a file in the repository: the mapping from `overlays/production/` to the production
//! cluster's certificate is a fact about the repository, reviewed like any other change, and the
//! same for everybody who seals into it (SOPS keeps its creation rules in `.sops.yaml` for the
//! same reason). It is found the way git finds `.git`: walking up from the working directory.
//! Certificates are public and committed beside it, so sealing by path needs no cluster.
//!
//! The types here are the file's schema (`docs/schema/sealed-secrets-environments.schema.json`
//! is generated from them); [`Repository`] is the loaded, checked form the rest uses.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use schemars::JsonSchema;
use sealed_secrets_core::{cert::Certificate, documents::parse_local_documents, scope::Scope};
use serde::{Deserialize, Serialize};

use super::pattern::{Pattern, PatternError};

/// The repository file's name.
pub const FILE_NAME: &str = ".sealed-secrets.yaml";

/// The only schema version so far.
pub const VERSION: u32 = 1;

/// The file as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "sealed-secrets-rs repository environments",
    description = "Environments a repository seals for, and which paths route to which (.sealed-secrets.yaml)."
)]
pub struct RepositoryFile {
    /// Schema version; must be 1.
    pub version: u32,
    /// Environments by name (the `{env}` of `kubeseal --env`).
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// Routing rules, tried in order; the first whose path pattern matches decides.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One environment: a cluster (or several clusters sharing a sealing key).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// PEM file (relative to this file) with the environment's sealing certificates: the
    /// current one and, after key renewals, earlier ones. kubeseal seals with the newest
    /// (latest notBefore) that has not expired; lint accepts any of them.
    pub certificates: String,
    /// How to reach the environment's controller, to check and refresh the certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerSpec>,
}

/// Where an environment's controller runs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControllerSpec {
    /// kubeconfig context of the environment's cluster (default: the current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Namespace of the controller (default: kube-system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the controller's Service (default: sealed-secrets-controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A routing rule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSpec {
    /// Path pattern relative to this file: `**` any number of directories, `*` and `?` within
    /// one name. Example: `overlays/production/**`.
    pub path: String,
    /// Environment the matching files are sealed for.
    pub environment: String,
    /// Default scope of Secrets sealed into matching files (strict, namespace-wide or
    /// cluster-wide); the Secret's own scope annotations and an explicit `--scope` win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A certificate of an environment, with what is shown of it.
#[derive(Debug, Clone)]
pub struct EnvCertificate {
    /// Parsed.
    pub cert: Certificate,
    /// Its public key's fingerprint.
    pub fingerprint: String,
}

/// One environment, loaded.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Name.
    pub name: String,
    /// The certificate bundle (absolute).
    pub certificates_file: PathBuf,
    /// The bundle's certificates, in file order.
    pub certificates: Vec<EnvCertificate>,
    /// The controller, when declared.
    pub controller: Option<ControllerSpec>,
}

impl Environment {
    /// The certificate to seal with at `now`: the newest (latest notBefore) not expired.
    pub fn sealing_certificate(&self, now: jiff::Timestamp) -> Option<&EnvCertificate> {
        self.certificates
            .iter()
            .filter(|c| c.cert.check_not_expired(now).is_ok())
            .max_by_key(|c| c.cert.not_before())
    }

    /// Whether a certificate with this fingerprint belongs to the environment.
    pub fn has_fingerprint(&self, fingerprint: &str) -> bool {
        self.certificates
            .iter()
            .any(|c| c.fingerprint == fingerprint)
    }
}

/// One rule, loaded.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its position in the file (0-based), for messages (`rules[2]`).
    pub index: usize,
    /// The path pattern.
    pub pattern: Pattern,
    /// The environment it routes to (exists).
    pub environment: String,
    /// Its default scope.
    pub scope: Option<Scope>,
}

/// A repository file, loaded and checked.
#[derive(Debug, Clone)]
pub struct Repository {
    /// The file (absolute).
    pub file: PathBuf,
    /// Its directory: patterns and certificate paths are relative to it (canonical).
    pub root: PathBuf,
    /// Environments by name.
    pub environments: BTreeMap<String, Environment>,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// Why the repository file cannot be used. Every message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("{file}: cannot read: {message}")]
    Read {
        /// The file.
        file: String,
        /// What failed.
        message: String,
    },
    /// Not the schema.
    #[error("{file}: {message}")]
    Schema {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A field with a bad value.
    #[error("{file}: {field}: {message}")]
    Field {
        /// The file.
        file: String,
        /// The field, e.g. `rules[1].environment`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Where the JSON Schema generated from [`RepositoryFile`] is committed, for editors
/// (`# yaml-language-server: $schema=...`).
#[cfg(test)]
pub const SCHEMA_PATH: &str = "docs/schema/sealed-secrets-environments.schema.json";

/// The JSON Schema of the repository file, as committed at [`SCHEMA_PATH`].
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RepositoryFile);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Environment names are used in paths (`{env}`) and flags: DNS-label-like.
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name != "all"
}

impl Repository {
    /// Finds the repository file in `start` or the nearest directory above it.
    pub fn find(start: &Path) -> Option<PathBuf> {
        start
            .ancestors()
            .map(|dir| dir.join(FILE_NAME))
            .find(|candidate| candidate.is_file())
    }

    /// Finds and loads the repository file above `start`, if there is one.
    pub fn discover(start: &Path) -> Result<Option<Self>, ConfigError> {
        Self::find(start).map(|file| Self::load(&file)).transpose()
    }

    /// Loads and checks `file`.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let shown = file.display().to_string();
        let read = |message: String| ConfigError::Read {
            file: shown.clone(),
            message,
        };
        let bytes = fs::read(file).map_err(|e| read(e.to_string()))?;
        let root = fs::canonicalize(file.parent().unwrap_or(Path::new(".")))
            .map_err(|e| read(e.to_string()))?;
        let schema = |message: String| ConfigError::Schema {
            file: shown.clone(),
            message,
        };
        let mut docs = parse_local_documents(&bytes).map_err(|e| schema(e.to_string()))?;
        if docs.len() != 1 {
            return Err(schema(format!(
                "holds {} documents; it must hold exactly one",
                docs.len()
            )));
        }
        let spec: RepositoryFile =
            serde_json::from_value(docs.remove(0)).map_err(|e| schema(e.to_string()))?;
        Self::from_spec(spec, file, root)
    }

    /// Checks a parsed file whose directory is `root`.
    pub fn from_spec(
        spec: RepositoryFile,
        file: &Path,
        root: PathBuf,
    ) -> Result<Self, ConfigError> {
        let shown = file.display().to_string();
        let field = |field: String, message: String| ConfigError::Field {
            file: shown.clone(),
            field,
            message,
        };
        if spec.version != VERSION {
            return Err(field(
                "version".into(),
                format!(
                    "{} is not supported; this kubeseal reads version {VERSION}",
                    spec.version
                ),
            ));
        }
        if spec.environments.is_empty() {
            return Err(field(
                "environments".into(),
                "declares no environment; add at least one".into(),
            ));
        }
        let mut environments = BTreeMap::new();
        for (name, env) in spec.environments {
            let at = format!("environments.{name}");
            if !valid_env_name(&name) {
                return Err(field(
                    at,
                    "environment names use lowercase letters, digits, - and _ (at most 63), and `all` is reserved".into(),
                ));
            }
            let certificates_file = root.join(&env.certificates);
            let pem = fs::read(&certificates_file).map_err(|e| {
                field(
                    format!("{at}.certificates"),
                    format!("cannot read {}: {e}", certificates_file.display()),
                )
            })?;
            let certificates = Certificate::all_from_pem(&pem)
                .map_err(|e| {
                    field(
                        format!("{at}.certificates"),
                        format!("{}: {e}", certificates_file.display()),
                    )
                })?
                .into_iter()
                .map(|cert| EnvCertificate {
                    fingerprint: cert.public_key().fingerprint(),
                    cert,
                })
                .collect();
            environments.insert(
                name.clone(),
                Environment {
                    name,
                    certificates_file,
                    certificates,
                    controller: env.controller,
                },
            );
        }
        let mut rules = Vec::new();
        for (index, rule) in spec.rules.into_iter().enumerate() {
            let at = format!("rules[{index}]");
            let pattern = Pattern::parse(&rule.path)
                .map_err(|e: PatternError| field(format!("{at}.path"), e.to_string()))?;
            if !environments.contains_key(&rule.environment) {
                return Err(field(
                    format!("{at}.environment"),
                    format!(
                        "no environment named {:?} (declared: {})",
                        rule.environment,
                        environments.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let scope = rule
                .scope
                .as_deref()
                .map(str::parse::<Scope>)
                .transpose()
                .map_err(|e| field(format!("{at}.scope"), e.to_string()))?;
            rules.push(Rule {
                index,
                pattern,
                environment: rule.environment,
                scope,
            });
        }
        Ok(Self {
            file: file.to_path_buf(),
            root,
            environments,
            rules,
        })
    }

    /// The path of `path` (absolute, normalised) relative to the root, `/`-separated, when it
    /// is inside the repository.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// The first rule matching `path` (absolute, normalised).
    pub fn route(&self, path: &Path) -> Option<&Rule> {
        let rel = self.relative(path)?;
        self.rules.iter().find(|r| r.pattern.matches(&rel))
    }

    /// The environment named `name`, or an error listing the declared ones.
    pub fn environment(&self, name: &str) -> Result<&Environment, String> {
        self.environments.get(name).ok_or_else(|| {
            format!(
                "{}: no environment named {name:?} (declared: {})",
                self.file.display(),
                self.environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Environments named by `--env` (comma-separated; `all` for every one).
    pub fn select(&self, names: &[String]) -> Result<Vec<&Environment>, String> {
        if names.iter().any(|n| n == "all") {
            return Ok(self.environments.values().collect());
        }
        let mut out: Vec<&Environment> = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let env = self.environment(name)?;
            if !out.iter().any(|e| e.name == env.name) {
                out.push(env);
            }
        }
        if out.is_empty() {
            return Err("--env names no environment".into());
        }
        Ok(out)
    }

    /// The environment that owns a certificate fingerprint, if any (for messages).
    pub fn owner_of(&self, fingerprint: &str) -> Option<&Environment> {
        self.environments
            .values()
            .find(|e| e.has_fingerprint(fingerprint))
    }
}

/// Lexically normalises an absolute path whose file may not exist yet: its parent is resolved
/// through the file system (symlinks, `..`), the file name is kept.
pub fn normalise(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    if let Ok(canonical) = fs::canonicalize(&absolute) {
        return Ok(canonical);
    }
    let name = absolute.file_name().map(ToOwned::to_owned);
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    let parent = fs::canonicalize(parent)?;
    Ok(match name {
        Some(name) => parent.join(name),
        None => parent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_secrets_core::keys::generate_key_pair;

    fn repo(text: &str) -> (tempfile::TempDir, Result<Repository, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let now = jiff::Timestamp::now();
        let pair = generate_key_pair(2048, "", now, jiff::SignedDuration::from_hours(1)).unwrap();
        fs::create_dir_all(dir.path().join("certs")).unwrap();
        fs::write(dir.path().join("certs/a.pem"), &pair.cert_pem).unwrap();
        fs::write(dir.path().join(FILE_NAME), text).unwrap();
        let loaded = Repository::load(&dir.path().join(FILE_NAME));
        (dir, loaded)
    }

    const GOOD: &str = "version: 1\nenvironments:\n  staging: {certificates: certs/a.pem}\n  production:\n    certificates: certs/a.pem\n    controller: {context: prod}\nrules:\n- path: overlays/staging/**\n  environment: staging\n- path: overlays/production/**\n  environment: production\n  scope: namespace-wide\n";

    #[test]
    fn rules_route_in_order_and_environments_load_their_certificates() {
        let (dir, repo) = repo(GOOD);
        let repo = repo.unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let rule = repo
            .route(&root.join("overlays/production/db.yaml"))
            .unwrap();
        assert_eq!(rule.environment, "production");
        assert_eq!(rule.scope, Some(Scope::NamespaceWide));
        assert!(repo.route(&root.join("base/db.yaml")).is_none());
        assert!(
            repo.route(Path::new("/elsewhere/overlays/production/x.yaml"))
                .is_none()
        );
        let env = repo.environment("production").unwrap();
        assert_eq!(env.certificates.len(), 1);
        assert!(env.sealing_certificate(jiff::Timestamp::now()).is_some());
        assert_eq!(
            env.controller.as_ref().unwrap().context.as_deref(),
            Some("prod")
        );
        assert_eq!(repo.select(&["all".into()]).unwrap().len(), 2);
        assert!(
            repo.select(&["qa".into()])
                .unwrap_err()
                .contains("no environment named \"qa\"")
        );
        // Found from a subdirectory, as git finds .git.
        fs::create_dir_all(root.join("overlays/staging")).unwrap();
        let found = Repository::find(&root.join("overlays/staging")).unwrap();
        assert_eq!(found, root.join(FILE_NAME));
    }

    /// The committed schema matches the types; `UPDATE_SCHEMA=1` rewrites it.
    #[test]
    fn committed_json_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(SCHEMA_PATH);
        let generated = schema_json();
        if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| !v.is_empty()) {
            fs::write(&path, &generated).unwrap();
        }
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{SCHEMA_PATH} is stale; regenerate it with `UPDATE_SCHEMA=1 cargo test -p sealed-secrets-cli committed_json_schema_is_current`"
        );
        assert!(generated.contains("\"certificates\"") && generated.contains("\"rules\""));
    }

    /// The complete example in docs/environments.md is a valid file.
    #[test]
    fn the_documented_example_is_valid() {
        let doc = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/environments.md"),
        )
        .unwrap();
        let start = doc.find("```yaml\n").unwrap() + 8;
        let end = start + doc[start..].find("```").unwrap();
        let value = parse_local_documents(&doc.as_bytes()[start..end])
            .unwrap()
            .remove(0);
        let spec: RepositoryFile = serde_json::from_value(value).unwrap();
        assert_eq!(spec.environments.len(), 2);
        for rule in &spec.rules {
            assert!(spec.environments.contains_key(&rule.environment));
            Pattern::parse(&rule.path).unwrap();
        }
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let (_d, err) =
            repo("version: 1\nenvironments:\n  staging: {certificates: certs/missing.pem}\n");
        let message = err.unwrap_err().to_string();
        assert!(
            message
                .contains(".sealed-secrets.yaml: environments.staging.certificates: cannot read"),
            "{message}"
        );
        let (_d, err) = repo(
            "version: 1\nenvironments:\n  staging: {certificates: certs/a.pem}\nrules:\n- {path: x/**, environment: prod}\n",
        );
        let message = err.unwrap_err().to_string();
        assert!(
            message.contains(
                "rules[0].environment: no environment named \"prod\" (declared: staging)"
            ),
            "{message}"
        );
        let (_d, err) = repo("version: 2\nenvironments: {}\n");
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("version: 2 is not supported")
        );
        let (_d, err) = repo("version: 1\nenvironments:\n  staging: {certificate: certs/a.pem}\n");
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("unknown field `certificate`")
        );
        let (_d, err) = repo(
            "version: 1\nenvironments:\n  staging: {certificates: certs/a.pem}\nrules:\n- {path: /abs/**, environment: staging}\n",
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("rules[0].path: pattern")
        );
        let (_d, err) = repo("version: 1\nenvironments:\n  Prod: {certificates: certs/a.pem}\n");
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("environments.Prod: environment names")
        );
    }
}
