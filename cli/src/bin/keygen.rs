//! `sealed-secrets-keygen`: make a sealing key pair exactly as the controller would (RSA key,
//! self-signed certificate with empty subject, Encipher Only, CA:TRUE), offline.
//!
//! For the offline demo, tests, and "bring your own certificate" setups where upstream's docs
//! send users to openssl. With `--secret-name` it also writes the `kubernetes.io/tls` key Secret
//! (labelled `sealedsecrets.bitnami.com/sealed-secrets-key=active`) ready for `kubectl apply`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use base64::Engine;
use clap::Parser;
use sealed_secrets_core::keys::{TLS_CERT, TLS_KEY, generate_key_pair};

/// Generate a sealing key pair and certificate like the sealed-secrets controller does.
#[derive(Debug, Parser)]
#[command(name = "sealed-secrets-keygen", version)]
struct Args {
    /// RSA key size in bits (2048, 3072, 4096 or 8192).
    #[arg(long, default_value_t = 4096)]
    key_size: usize,
    /// Common name of the certificate's subject and issuer (empty like the controller's default).
    #[arg(long, default_value = "")]
    my_cn: String,
    /// Certificate validity in hours (controller default: 87600h, ten years).
    #[arg(long, default_value_t = 87_600)]
    key_ttl_hours: i64,
    /// Directory to write `tls.key` (PKCS#1 PEM, mode 0600) and `tls.crt` into.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Also write `<out-dir>/<name>.yaml`: the key Secret for the controller's namespace.
    #[arg(long)]
    secret_name: Option<String>,
    /// Namespace of the key Secret.
    #[arg(long, default_value = "kube-system")]
    secret_namespace: String,
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))
}

fn run(args: Args) -> Result<()> {
    let pair = generate_key_pair(
        args.key_size,
        &args.my_cn,
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(args.key_ttl_hours),
    )?;
    let key_pem = pair.key.to_pkcs1_pem()?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("create {}", args.out_dir.display()))?;
    write_private(&args.out_dir.join(TLS_KEY), key_pem.as_bytes())?;
    std::fs::write(args.out_dir.join(TLS_CERT), &pair.cert_pem)
        .with_context(|| format!("write {}", args.out_dir.join(TLS_CERT).display()))?;
    if let Some(name) = &args.secret_name {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let secret = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    sealedsecrets.bitnami.com/sealed-secrets-key: active\ntype: kubernetes.io/tls\ndata:\n  {TLS_CERT}: {crt}\n  {TLS_KEY}: {key}\n",
            ns = args.secret_namespace,
            crt = b64(pair.cert_pem.as_bytes()),
            key = b64(key_pem.as_bytes()),
        );
        write_private(
            &args.out_dir.join(format!("{name}.yaml")),
            secret.as_bytes(),
        )?;
    }
    eprintln!(
        "wrote {} and {} (RSA-{}, fingerprint {})",
        args.out_dir.join(TLS_KEY).display(),
        args.out_dir.join(TLS_CERT).display(),
        args.key_size,
        pair.key.fingerprint()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
