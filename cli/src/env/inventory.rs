//! The SealedSecrets of a repository, by file, with the certificate each records: what
//! `kubeseal env list` counts and `kubeseal lint` checks against the routing rules.

use std::{fs, path::PathBuf};

use anyhow::Result;
use sealed_secrets_core::sealed_secret::CERTIFICATE_ANNOTATION;
use serde_json::Value;

use crate::lint::{
    check::{is_sealed_secret, name_of, objects},
    docs::read_documents,
    walk::walk,
};

/// One SealedSecret found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// 1-based line of its document.
    pub line: usize,
    /// `metadata.name`.
    pub name: String,
    /// The fingerprint it records, if any.
    pub certificate: Option<String>,
}

/// A file with SealedSecrets.
#[derive(Debug, Clone)]
pub struct SealedFile {
    /// The file (canonical).
    pub path: PathBuf,
    /// Its SealedSecrets.
    pub sealed: Vec<Found>,
}

/// The fingerprint a SealedSecret records.
pub fn recorded_certificate(value: &Value) -> Option<String> {
    value
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CERTIFICATE_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// SealedSecrets of one file's text.
pub fn sealed_in(text: &str) -> Vec<Found> {
    let (docs, _) = read_documents(text);
    let mut out = Vec::new();
    for doc in &docs {
        for (value, _) in objects(&doc.value) {
            if is_sealed_secret(value) {
                out.push(Found {
                    line: doc.line(),
                    name: name_of(value).to_string(),
                    certificate: recorded_certificate(value),
                });
            }
        }
    }
    out
}

/// Every YAML/JSON file under `roots` (the walk `kubeseal lint` does) that holds SealedSecrets.
pub fn sealed_files(roots: &[PathBuf]) -> Result<Vec<SealedFile>> {
    Ok(sealed_in_files(&walk(roots, &[])?.files))
}

/// Those of `files` that hold SealedSecrets, with them (canonical paths).
pub fn sealed_in_files(files: &[PathBuf]) -> Vec<SealedFile> {
    let mut out = Vec::new();
    for path in files {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        let sealed = sealed_in(&text);
        if !sealed.is_empty() {
            let path = fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            out.push(SealedFile { path, sealed });
        }
    }
    out
}

/// Every YAML/JSON file under `roots`, canonical (rules are checked against all of them).
pub fn all_files(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(walk(roots, &[])?
        .files
        .into_iter()
        .map(|p| fs::canonicalize(&p).unwrap_or(p))
        .collect())
}
