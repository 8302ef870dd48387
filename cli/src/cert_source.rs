//! Where the sealing certificate comes from: `--cert` (or `SEALED_SECRETS_CERT`) as a local
//! path or an `http://`, `https://` or `file://` URL, as upstream resolves it; without it, from
//! the controller through the API server's service proxy (spec §6.5, [`crate::cluster`]).

use std::{path::Path, time::Duration};

use anyhow::{Result, anyhow, bail};

use crate::{args::Args, io::read_file};

/// How long a certificate download may take in total.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A `--cert` value, classified as upstream does (Go's `url.Parse`: no scheme or a one-letter
/// scheme such as a Windows drive means a local file).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CertLocation<'a> {
    File(&'a str),
    Http(&'a str),
    FileUrl(&'a str),
    Unsupported { url: &'a str, scheme: &'a str },
}

fn classify(cert: &str) -> CertLocation<'_> {
    let Some((scheme, rest)) = cert.split_once("://") else {
        return CertLocation::File(cert);
    };
    let valid_scheme = scheme.len() > 1
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !valid_scheme {
        return CertLocation::File(cert);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => CertLocation::Http(cert),
        // file://host/path is rooted at "/" (the host part is ignored, as Go's file transport).
        "file" => CertLocation::FileUrl(rest.find('/').map_or("/", |i| &rest[i..])),
        _ => CertLocation::Unsupported { url: cert, scheme },
    }
}

/// Reads the certificate bytes named by `--cert`.
pub fn read_cert_source(cert: &str) -> Result<Vec<u8>> {
    match classify(cert) {
        CertLocation::File(path) => read_file(Path::new(path)),
        CertLocation::FileUrl(path) => read_file(Path::new(path)),
        CertLocation::Http(url) => fetch_http(url),
        CertLocation::Unsupported { url, scheme } => {
            bail!("Get \"{url}\": unsupported protocol scheme \"{scheme}\"")
        }
    }
}

fn fetch_http(url: &str) -> Result<Vec<u8>> {
    let tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(FETCH_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(url)
        .call()
        .map_err(|e| anyhow!("Get \"{url}\": {e}"))?;
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        bail!("cannot fetch \"{url}\": {status}");
    }
    response
        .into_body()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| anyhow!("Get \"{url}\": {e}"))
}

/// The certificate for sealing: `--cert` when given, else the controller's current one,
/// fetched through the API server (the only case that starts the cluster client).
pub fn open_cert(args: &Args) -> Result<Vec<u8>> {
    if args.cert.is_empty() {
        return crate::cluster::Controller::connect(args, "cannot fetch certificate")?.fetch_cert();
    }
    read_cert_source(&args.cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_classified_like_go_url_parse() {
        assert_eq!(classify("cert.pem"), CertLocation::File("cert.pem"));
        assert_eq!(
            classify("C://certs/c.pem"),
            CertLocation::File("C://certs/c.pem")
        );
        assert_eq!(
            classify("https://x/v1/cert.pem"),
            CertLocation::Http("https://x/v1/cert.pem")
        );
        assert_eq!(
            classify("file:///tmp/c.pem"),
            CertLocation::FileUrl("/tmp/c.pem")
        );
        assert_eq!(
            classify("ftp://x/c.pem"),
            CertLocation::Unsupported {
                url: "ftp://x/c.pem",
                scheme: "ftp"
            }
        );
    }
}
