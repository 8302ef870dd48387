//! The sealing certificate: where kubeseal gets the public key from.
//!
//! The certificate is informational. Upstream only takes the RSA public key out of the first
//! `CERTIFICATE` block and refuses to seal when `NotAfter` has passed; `NotBefore` and the
//! signature are not checked, and neither do we.

use x509_parser::{prelude::FromDer, public_key::PublicKey as ParsedKey};

use crate::keys::{PublicKey, pem_blocks};

/// Errors reading or using a certificate. Texts follow upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// No `CERTIFICATE` PEM block (client-go's text).
    #[error("data does not contain any valid RSA or ECDSA certificates")]
    NoCertificate,
    /// The first certificate does not parse as X.509.
    #[error("cannot parse certificate: {0}")]
    Malformed(String),
    /// The certificate holds a non-RSA key (upstream prints the Go type).
    #[error("expected RSA public key but found {0}")]
    NotRsa(&'static str),
    /// The key inside the certificate is unusable.
    #[error("{0}")]
    Key(String),
    /// `NotAfter` is in the past (upstream's text and date layout).
    #[error("failed to encrypt using an expired certificate on {0}")]
    Expired(String),
}

/// The parts of a sealing certificate that matter.
#[derive(Debug, Clone)]
pub struct Certificate {
    public_key: PublicKey,
    not_before: jiff::Timestamp,
    not_after: jiff::Timestamp,
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of a PEM document.
    pub fn from_pem(data: &[u8]) -> Result<Self, CertError> {
        let block = pem_blocks(data)
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or(CertError::NoCertificate)?;
        Self::from_der(block.contents())
    }

    /// Reads every `CERTIFICATE` block of a PEM document, in order (a bundle of an
    /// environment's current and earlier sealing certificates).
    pub fn all_from_pem(data: &[u8]) -> Result<Vec<Self>, CertError> {
        let certs = pem_blocks(data)
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| Self::from_der(b.contents()))
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(CertError::NoCertificate);
        }
        Ok(certs)
    }

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let spki = cert.public_key();
        match spki.parsed() {
            Ok(ParsedKey::RSA(_)) => {}
            Ok(ParsedKey::EC(_)) => return Err(CertError::NotRsa("*ecdsa.PublicKey")),
            Ok(ParsedKey::DSA(_)) => return Err(CertError::NotRsa("*dsa.PublicKey")),
            Ok(_) => return Err(CertError::NotRsa("ed25519.PublicKey")),
            Err(e) => return Err(CertError::Malformed(e.to_string())),
        }
        let public_key =
            PublicKey::from_spki_der(spki.raw).map_err(|e| CertError::Key(e.to_string()))?;
        let to_ts = |t: x509_parser::time::ASN1Time| {
            jiff::Timestamp::from_second(t.timestamp())
                .map_err(|e| CertError::Malformed(format!("validity out of range: {e}")))
        };
        Ok(Self {
            public_key,
            not_before: to_ts(cert.validity().not_before)?,
            not_after: to_ts(cert.validity().not_after)?,
        })
    }

    /// The RSA public key to seal with.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Start of validity (used by the controller to order keys).
    pub fn not_before(&self) -> jiff::Timestamp {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> jiff::Timestamp {
        self.not_after
    }

    /// Refuses an expired certificate the way kubeseal does (`now > NotAfter`).
    pub fn check_not_expired(&self, now: jiff::Timestamp) -> Result<(), CertError> {
        if now > self.not_after {
            return Err(CertError::Expired(go_long_date(self.not_after)));
        }
        Ok(())
    }
}

/// Go's `January 2, 2006` layout, in UTC.
fn go_long_date(ts: jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%B %-d, %Y")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_key_pair;

    #[test]
    fn bundles_read_every_certificate_in_order() {
        let now = jiff::Timestamp::now();
        let day = jiff::SignedDuration::from_hours(24);
        let a = generate_key_pair(2048, "a", now, day).unwrap();
        let b = generate_key_pair(2048, "b", now, day).unwrap();
        let bundle = format!("# comment\n{}\n{}", a.cert_pem, b.cert_pem);
        let certs = Certificate::all_from_pem(bundle.as_bytes()).unwrap();
        let prints: Vec<String> = certs.iter().map(|c| c.public_key().fingerprint()).collect();
        assert_eq!(prints, [a.key.fingerprint(), b.key.fingerprint()]);
        assert!(matches!(
            Certificate::all_from_pem(b"no pem here"),
            Err(CertError::NoCertificate)
        ));
    }

    #[test]
    fn expired_certificates_are_refused_with_the_date() {
        let start: jiff::Timestamp = "2020-03-01T10:00:00Z".parse().unwrap();
        let pair =
            generate_key_pair(2048, "x", start, jiff::SignedDuration::from_hours(24 * 5)).unwrap();
        let cert = Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap();
        assert_eq!(cert.not_before(), start);
        let later: jiff::Timestamp = "2021-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            cert.check_not_expired(later).unwrap_err().to_string(),
            "failed to encrypt using an expired certificate on March 6, 2020"
        );
        assert!(cert.check_not_expired(start).is_ok());
    }

    #[test]
    fn non_certificates_are_refused() {
        assert_eq!(
            Certificate::from_pem(b"").unwrap_err(),
            CertError::NoCertificate
        );
        assert_eq!(
            Certificate::from_pem(b"\x00\xff garbage").unwrap_err(),
            CertError::NoCertificate
        );
        let bogus = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3]));
        assert!(matches!(
            Certificate::from_pem(bogus.as_bytes()),
            Err(CertError::Malformed(_))
        ));
        let key_only = pem::encode(&pem::Pem::new("PUBLIC KEY", vec![1, 2, 3]));
        assert_eq!(
            Certificate::from_pem(key_only.as_bytes()).unwrap_err(),
            CertError::NoCertificate
        );
    }
}
