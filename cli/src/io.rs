//! Reading input and writing output the way upstream does, minus its sharp edges.
//!
//! Output is always produced completely in memory first and then written in one go: to stdout,
//! or to a file through a temporary file in the same directory and a rename, so an error never
//! leaves a half-written or emptied file behind.

use std::{
    fs,
    io::{self, IsTerminal, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow, bail};
use sealed_secrets_core::documents::{to_go_json, to_sorted_yaml};
use serde_json::Value;

/// Go-style text for an I/O error: `open x.pem: no such file or directory`.
pub fn describe_io_error(op: &str, path: &Path, err: &io::Error) -> String {
    let text = err.to_string();
    let text = text
        .find(" (os error")
        .map_or(text.as_str(), |i| &text[..i])
        .to_string();
    let mut chars = text.chars();
    let lowered = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    };
    format!("{op} {}: {lowered}", path.display())
}

/// Go's text for a failed whole-file read: `open <path>: …` when the file cannot be opened
/// (missing), `read <path>: …` otherwise (a folder, an I/O error).
pub fn describe_read_error(path: &Path, err: &io::Error) -> String {
    let op = if err.kind() == io::ErrorKind::NotFound {
        "open"
    } else {
        "read"
    };
    describe_io_error(op, path, err)
}

/// Reads a whole file, with a Go-style error naming it.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| anyhow!(describe_read_error(path, &e)))
}

/// Where input comes from (for error messages).
#[derive(Debug, Clone)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file given with `-f`.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdin => f.write_str("stdin"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Reads the input of object modes: `-f FILE` or stdin, with upstream's TTY hint.
pub fn read_input(secret_file: Option<&Path>, tty_hint: &str) -> Result<(Source, Vec<u8>)> {
    if let Some(path) = secret_file {
        let bytes = read_file(path)
            .map_err(|e| anyhow!("Could not read file specified with --secret-file: {e}"))?;
        return Ok((Source::File(path.to_path_buf()), bytes));
    }
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprintln!("{tty_hint}");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    Ok((Source::Stdin, bytes))
}

/// Output format of objects (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Go-style indented JSON; several objects are concatenated.
    Json,
    /// YAML documents, each preceded by `---`.
    Yaml,
}

impl Format {
    /// Parses `-o` (case-insensitive; empty means json), with upstream's error text.
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("").to_ascii_lowercase().as_str() {
            "" | "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            _ => bail!("unsupported output format: {}", value.unwrap_or("")),
        }
    }

    /// Format of an existing file's content: JSON when it starts with `{`.
    pub fn of_content(bytes: &[u8]) -> Self {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            Self::Json
        } else {
            Self::Yaml
        }
    }

    /// The format to write: `-w x.yaml`/`x.yml` forces YAML, as upstream.
    pub fn for_output(self, output: Option<&Path>) -> Self {
        let yaml_name = output
            .and_then(Path::extension)
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if yaml_name { Self::Yaml } else { self }
    }

    /// Renders objects in this format.
    pub fn render(self, objects: &[Value]) -> Vec<u8> {
        let mut out = String::new();
        for object in objects {
            match self {
                Self::Json => out.push_str(&to_go_json(object)),
                Self::Yaml => {
                    out.push_str("---\n");
                    out.push_str(&to_sorted_yaml(object));
                }
            }
        }
        out.into_bytes()
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
/// An existing file keeps its permissions; a new one gets 0644 like upstream's output.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.is_dir() {
        bail!("open {}: is a directory", path.display());
    }
    let mut temp = tempfile::Builder::new()
        .prefix(".kubeseal-")
        .tempfile_in(dir)
        .map_err(|e| anyhow!(describe_io_error("open", path, &e)))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| anyhow!(describe_io_error("write", path, &e)))?;
    let permissions = match fs::metadata(path) {
        Ok(meta) => meta.permissions(),
        Err(_) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::Permissions::from_mode(0o644)
            }
            #[cfg(not(unix))]
            {
                temp.as_file().metadata()?.permissions()
            }
        }
    };
    fs::set_permissions(temp.path(), permissions)
        .map_err(|e| anyhow!(describe_io_error("chmod", path, &e)))?;
    temp.persist(path)
        .map_err(|e| anyhow!(describe_io_error("rename", path, &e.error)))?;
    Ok(())
}

/// Writes the final output to `-w FILE` (atomically) or stdout.
pub fn emit(output: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match output {
        Some(path) => write_atomically(path, bytes),
        None => {
            let mut stdout = io::stdout().lock();
            stdout.write_all(bytes)?;
            stdout.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_like_go() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(
            describe_io_error("open", Path::new("cert.pem"), &err),
            "open cert.pem: no such file or directory"
        );
    }

    #[test]
    fn formats_parse_case_insensitively_and_yaml_names_force_yaml() {
        assert_eq!(Format::parse(None).unwrap(), Format::Json);
        assert_eq!(Format::parse(Some("YAML")).unwrap(), Format::Yaml);
        assert_eq!(
            Format::parse(Some("xml")).unwrap_err().to_string(),
            "unsupported output format: xml"
        );
        assert_eq!(
            Format::Json.for_output(Some(Path::new("a/b.yml"))),
            Format::Yaml
        );
        assert_eq!(
            Format::Json.for_output(Some(Path::new("a/b.json"))),
            Format::Json
        );
    }

    #[test]
    fn atomic_write_replaces_content_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.yaml");
        write_atomically(&path, b"one").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o644
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
        assert!(write_atomically(dir.path(), b"x").is_err());
    }
}
