//! What the lint reports: a catalog of rules with stable ids, and findings that point at a file
//! and line.
//!
//! Rule ids are part of the interface (SARIF `ruleId`, JSON, JUnit, people's suppressions), so
//! they never change meaning; new checks get new ids. Messages name objects, items and files,
//! never a value: a finding about a raw Secret must not leak the secret into CI logs.

use std::fmt;

/// How bad a finding is. Errors fail the run (exit 1); warnings are reported only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The cluster will not be able to use the object, or a secret is exposed.
    Error,
    /// Suspicious but usable.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// One check the lint can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, e.g. `raw-secret`.
    pub id: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// One line: what is wrong.
    pub summary: &'static str,
    /// How to fix it.
    pub help: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $sev:ident, $summary:literal, $help:literal;)*) => {
        $(
            #[doc = $summary]
            pub const $name: Rule = Rule {
                id: $id,
                severity: Severity::$sev,
                summary: $summary,
                help: $help,
            };
        )*
        /// Every rule, in documentation order.
        pub const ALL_RULES: &[Rule] = &[$($name),*];
    };
}

rules! {
    RAW_SECRET = "raw-secret", Error,
        "A plain Secret with data is committed",
        "Seal it with `kubeseal --cert CERT -o yaml < secret.yaml > sealed.yaml` and commit only the SealedSecret; allow non-secret types with --allow-secret-type.";
    INVALID_YAML = "invalid-yaml", Error,
        "A file that may hold a Secret or SealedSecret cannot be parsed",
        "Fix the YAML/JSON syntax, or exclude the file with --exclude.";
    KUSTOMIZE_FAILED = "kustomize-build-failed", Error,
        "`kubectl kustomize` cannot render a kustomization",
        "Run `kubectl kustomize DIR` locally and fix the reported problem.";
    MALFORMED = "malformed-sealed-secret", Error,
        "A SealedSecret field has the wrong shape",
        "encryptedData must map item names to base64 strings; metadata.name must be set. Re-seal the Secret with kubeseal.";
    EMPTY_ENCRYPTED_DATA = "empty-encrypted-data", Error,
        "A SealedSecret has no encryptedData items",
        "Re-seal the Secret; an empty SealedSecret creates an empty Secret.";
    BOTH_DATA_FORMATS = "both-data-and-encrypted-data", Error,
        "A SealedSecret sets both the deprecated spec.data and spec.encryptedData",
        "The controller refuses such objects; keep only encryptedData.";
    DEPRECATED_DATA = "deprecated-data-field", Warning,
        "A SealedSecret uses the deprecated whole-Secret spec.data format",
        "Re-seal with a current kubeseal, which writes spec.encryptedData.";
    INVALID_BASE64 = "invalid-base64", Error,
        "A sealed value is not valid base64",
        "The value was damaged (line wrapping, truncation, editing); re-seal the item with `kubeseal --raw` or --merge-into.";
    TRUNCATED = "ciphertext-truncated", Error,
        "A sealed value is shorter than its length prefix says",
        "The value was truncated or is not a sealed value; re-seal the item.";
    UNKNOWN_SCOPE_ANNOTATION = "unknown-scope-annotation", Error,
        "A scope annotation has a value other than \"true\"",
        "Only \"true\" selects a scope; any other value silently means strict. Use --scope when sealing instead of editing annotations.";
    CERT_EXPIRED = "cert-expired", Error,
        "The sealing certificate given with --cert has expired",
        "Fetch the current certificate from the controller (`kubeseal --fetch-cert`) and re-seal with it.";
    KEY_SIZE_MISMATCH = "rsa-key-size-mismatch", Error,
        "A sealed value's RSA block does not match the certificate's key size",
        "The value was sealed for another key; re-seal it with the current certificate.";
    OVERLAY_BREAKS_SCOPE = "overlay-breaks-scope", Error,
        "A kustomize overlay renames or moves a SealedSecret out of the scope it was sealed for (proven by the recovery keys when given, else judged from the name in the file)",
        "Seal the Secret for its final name and namespace in the overlay, or seal it namespace-wide (renames) or cluster-wide (moves). Without --recovery-private-key the lint assumes the values were sealed for the name and namespace written in the file; run it with the key to replace the guess by a trial decryption.";
    MISSING_NAMESPACE = "missing-namespace", Error,
        "A strict or namespace-wide SealedSecret has no namespace after rendering",
        "Set metadata.namespace to the namespace it was sealed for, or set `namespace:` in the kustomization.";
    CANNOT_DECRYPT = "cannot-decrypt", Error,
        "A SealedSecret's values do not open with the recovery keys under its rendered name and namespace",
        "They were sealed for another key, name, namespace or scope (the message says which, when a trial found one); re-seal them for the object as rendered.";
    WRONG_ENVIRONMENT = "sealed-for-another-environment", Error,
        "A SealedSecret records a certificate that is not one of the environment its path routes to (.sealed-secrets.yaml)",
        "The file was sealed for another cluster (often copied from another overlay); re-seal it for its path: `kubeseal -f secret.yaml -w PATH`, or `kubeseal re-encrypt --all PATH` with that environment's keys.";
    UNRECORDED_CERTIFICATE = "unrecorded-certificate", Warning,
        "A SealedSecret in an environment's path does not record the certificate it was sealed with",
        "Re-seal it with kubeseal by path (it records sealed-secrets-rs.io/sealed-with-certificate), so lint can tell a file sealed for another environment.";
    UNROUTED_SEALED_SECRET = "unrouted-sealed-secret", Warning,
        "A file with SealedSecrets matches no rule of .sealed-secrets.yaml",
        "Add a rule routing its path to the environment it is sealed for, or move the file under a routed path.";
    UNUSED_RULE = "rule-matches-nothing", Warning,
        "A rule of .sealed-secrets.yaml matches no file of the repository",
        "Fix the rule's path pattern (it is relative to the file's directory) or remove the rule.";
    RENAMED_REFERENCE = "renamed-sealed-secret-reference", Error,
        "A workload refers to a Secret by the name a SealedSecret had before kustomize renamed it",
        "kustomize rewrites references to Secrets, not to SealedSecrets. Add a `nameReference` for kind SealedSecret (the message has a ready snippet) in a file listed under `configurations:` of the kustomization that renames it.";
}

/// A place in the repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Path as shown to users (relative to where the lint runs when possible).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
}

impl Location {
    /// A location at `line` of `file`.
    pub fn new(file: impl Into<String>, line: Option<usize>) -> Self {
        Self {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// Another place that explains a finding (e.g. the base file of an object an overlay renames).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Related {
    /// Where.
    pub location: Location,
    /// Why it matters.
    pub message: String,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    /// Primary location.
    pub location: Location,
    /// Rule id (see [`ALL_RULES`]).
    pub rule: &'static str,
    /// Severity (the rule's).
    pub severity: Severity,
    /// What is wrong, naming objects and items but never values.
    pub message: String,
    /// Other places involved.
    pub related: Vec<Related>,
}

impl Finding {
    /// A finding of `rule` at `location`.
    pub fn new(rule: Rule, location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            rule: rule.id,
            severity: rule.severity,
            message: message.into(),
            related: Vec::new(),
        }
    }

    /// Adds a related location.
    pub fn with_related(mut self, location: Location, message: impl Into<String>) -> Self {
        self.related.push(Related {
            location,
            message: message.into(),
        });
        self
    }
}
