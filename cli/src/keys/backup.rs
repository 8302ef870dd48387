//! `kubeseal keys backup -o FILE`: every key Secret (active and retired) as one `v1` `List`,
//! the shape both `kubectl apply -f` and `kubeseal --recovery-private-key` read.
//!
//! The file holds private keys, so it is never written to a terminal, it is created with mode
//! 0600 and written atomically (a temporary file in the same folder, then a rename), and
//! server-set metadata is stripped so it applies cleanly to any cluster. Only after the file is
//! complete is each included Secret annotated with the backup time, so the annotation never
//! claims a backup that does not exist.

use std::{
    fs,
    io::{IsTerminal, Write},
    path::Path,
};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use sealed_secrets_core::documents::to_sorted_yaml;

use super::{api::Cluster, model};
use crate::io::describe_io_error;

/// Metadata fields the API server sets, stripped from backups.
const SERVER_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "managedFields",
    "creationTimestamp",
    "selfLink",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Refuses destinations that are terminals or not regular files.
pub fn check_destination(output: &str) -> Result<()> {
    if output == "-" {
        if std::io::stdout().is_terminal() {
            bail!(
                "refusing to write private keys to a terminal: pass -o FILE, or pipe `-o -` into \
                 a file or a secret store"
            );
        }
        return Ok(());
    }
    let path = Path::new(output);
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => bail!("-o {output}: is a directory"),
        Ok(meta) if !meta.is_file() => bail!(
            "-o {output}: not a regular file; kubeseal writes backups only to regular files (0600) \
             or, with `-o -`, to a pipe"
        ),
        _ => Ok(()),
    }
}

/// The backup document: a `v1` `List` of the key Secrets without server-set metadata.
pub fn backup_list(secrets: &[&Value]) -> Value {
    let mut items = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let mut value = (*secret).clone();
        value["apiVersion"] = json!("v1");
        value["kind"] = json!("Secret");
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_FIELDS {
                meta.remove(*field);
            }
        }
        items.push(value);
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// Writes `bytes` to `path` through a 0600 temporary file in the same folder and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates the file with mode 0600 on Unix.
    let mut temp = tempfile::Builder::new()
        .prefix(".kubeseal-keys-")
        .tempfile_in(dir)
        .map_err(|e| anyhow!(describe_io_error("open", path, &e)))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o600))
            .map_err(|e| anyhow!(describe_io_error("chmod", path, &e)))?;
    }
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| anyhow!(describe_io_error("write", path, &e)))?;
    temp.persist(path)
        .map_err(|e| anyhow!(describe_io_error("rename", path, &e.error)))?;
    Ok(())
}

/// Runs the backup.
pub fn run(cluster: &Cluster, output: &str) -> Result<()> {
    let started = jiff::Timestamp::now();
    let keys = cluster.key_secrets()?;
    if keys.is_empty() {
        bail!(
            "no key Secrets (label {}) in namespace {:?}: nothing to back up; is \
             --controller-namespace right?",
            model::KEY_LABEL,
            cluster.key_namespace
        );
    }
    let objects: Vec<&Value> = keys.iter().map(|k| &k.object).collect();
    let text = to_sorted_yaml(&backup_list(&objects));
    if output == "-" {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
    } else {
        write_private(Path::new(output), text.as_bytes())?;
    }
    let retired = keys
        .iter()
        .filter(|k| k.object["metadata"]["labels"][model::KEY_LABEL] == model::RETIRED)
        .count();
    eprintln!(
        "backed up {} key Secret(s) of namespace {:?} ({} retired) to {}",
        keys.len(),
        cluster.key_namespace,
        retired,
        if output == "-" { "stdout" } else { output }
    );
    let stamp = super::rfc3339(started);
    let mut failures = Vec::new();
    for key in &keys {
        let version = key.object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        if let Err(err) =
            cluster.annotate_key_secret(&key.name, version, model::BACKED_UP_AT, &stamp)
        {
            failures.push(format!("{err:#}"));
        }
    }
    if !failures.is_empty() {
        bail!(
            "the backup is complete, but {} key Secret(s) were not annotated with {}: {}",
            failures.len(),
            model::BACKED_UP_AT,
            failures.join("; ")
        );
    }
    eprintln!("annotated each with {}={stamp}", model::BACKED_UP_AT);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use sealed_secrets_core::{key_secret::read_recovery_keys, keys::generate_key_pair};

    fn key_secret(name: &str, label: &str) -> (Value, String) {
        let pair = generate_key_pair(
            2048,
            "",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(1),
        )
        .unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let value = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "kube-system", "uid": "u-1",
                "resourceVersion": "17", "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "controller"}],
                "labels": {model::KEY_LABEL: label}},
            "data": {"tls.key": b64(pair.key.to_pkcs1_pem().unwrap().as_bytes()),
                     "tls.crt": b64(pair.cert_pem.as_bytes())}
        });
        (
            serde_json::from_value(value).unwrap(),
            pair.key.fingerprint(),
        )
    }

    #[test]
    fn backup_is_a_list_recovery_reads_without_server_fields() {
        let (active, fp_active) = key_secret("k1", model::ACTIVE);
        let (retired, fp_retired) = key_secret("k2", model::RETIRED);
        let list = backup_list(&[&active, &retired]);
        let text = to_sorted_yaml(&list);
        assert!(text.starts_with("apiVersion: v1\nitems:\n"), "{text}");
        assert!(text.contains("kind: List"));
        for field in [
            "uid",
            "resourceVersion",
            "managedFields",
            "creationTimestamp",
        ] {
            assert!(!text.contains(field), "{field} left in the backup");
        }
        assert!(text.contains("sealedsecrets.bitnami.com/sealed-secrets-key: retired"));
        assert!(text.contains("type: kubernetes.io/tls"));
        let keys = read_recovery_keys(text.as_bytes()).unwrap();
        let fingerprints: Vec<String> = keys.iter().map(|k| k.fingerprint()).collect();
        assert_eq!(fingerprints, [fp_active, fp_retired]);
    }

    #[test]
    fn private_files_are_0600_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.yaml");
        fs::write(&path, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        }
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_private(&dir.path().join("missing/keys.yaml"), b"x").is_err());
    }

    #[test]
    fn destinations_that_are_not_regular_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_destination(dir.path().to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("is a directory"));
        #[cfg(unix)]
        {
            let err = check_destination("/dev/null").unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        assert!(check_destination(dir.path().join("new.yaml").to_str().unwrap()).is_ok());
    }
}
