//! RSA key material: public keys from certificates, private keys from PEM files, fingerprints
//! and generation of new sealing key pairs. Key Secrets (and recovery files of them) are read
//! by [`crate::key_secret`].
//!
//! Private keys live inside aws-lc (`EVP_PKEY`), which clears them when freed; every
//! intermediate buffer holding key bytes on our side is `Zeroizing`. `Debug` output shows only
//! the public fingerprint.

use std::{fmt, sync::Arc};

use aws_lc_rs::{
    digest,
    encoding::AsDer,
    rsa::{KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey},
};
use base64::Engine;
use zeroize::Zeroizing;

use crate::{der, documents::DocumentError};

/// PEM label of PKCS#1 RSA private keys, the format upstream writes to `tls.key`.
pub const PEM_RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";
/// PEM label of PKCS#8 private keys.
pub const PEM_PRIVATE_KEY: &str = "PRIVATE KEY";
/// PEM label of SEC1 EC private keys (recognised only to be refused).
pub const PEM_EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
/// Data key of the private key in a `kubernetes.io/tls` key Secret.
pub const TLS_KEY: &str = "tls.key";
/// Data key of the certificate in a `kubernetes.io/tls` key Secret.
pub const TLS_CERT: &str = "tls.crt";

/// Errors reading or making keys. Messages name the problem, never key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No PEM block held a private key (client-go's text).
    #[error("data does not contain a valid RSA or ECDSA private key")]
    NoPrivateKey,
    /// A private key of another algorithm (upstream names the Go type).
    #[error("unexpected private key type {0}")]
    UnsupportedPrivateKeyType(&'static str),
    /// The RSA key is malformed or of an unsupported size.
    #[error("invalid RSA private key: {0}")]
    InvalidPrivateKey(String),
    /// The public key could not be used for RSA-OAEP.
    #[error("invalid RSA public key: {0}")]
    InvalidPublicKey(String),
    /// A key Secret without `tls.key` (upstream's text, typo included).
    #[error("secret must contain a 'tls.data' key")]
    MissingTlsKey,
    /// The key file is neither PEM nor a Secret/List document.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// RSA key generation or certificate signing failed.
    #[error("cannot generate key pair: {0}")]
    Generate(String),
}

/// An RSA public key ready for OAEP encryption.
#[derive(Clone)]
pub struct PublicKey {
    oaep: Arc<OaepPublicEncryptingKey>,
    modulus: Arc<[u8]>,
    exponent: Arc<[u8]>,
}

impl PublicKey {
    /// Reads an X.509 `SubjectPublicKeyInfo` holding an RSA key.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, KeyError> {
        use x509_parser::{
            prelude::FromDer, public_key::PublicKey as Parsed, x509::SubjectPublicKeyInfo,
        };
        let (_, info) = SubjectPublicKeyInfo::from_der(spki)
            .map_err(|e| KeyError::InvalidPublicKey(e.to_string()))?;
        let Ok(Parsed::RSA(rsa)) = info.parsed() else {
            return Err(KeyError::InvalidPublicKey("not an RSA key".into()));
        };
        let key = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki)
            .map_err(|e| KeyError::InvalidPublicKey(e.to_string()))?;
        let oaep = OaepPublicEncryptingKey::new(key)
            .map_err(|_| KeyError::InvalidPublicKey("unusable for RSA-OAEP".into()))?;
        Ok(Self {
            oaep: Arc::new(oaep),
            modulus: strip_leading_zeros(rsa.modulus).into(),
            exponent: strip_leading_zeros(rsa.exponent).into(),
        })
    }

    pub(crate) fn oaep(&self) -> &OaepPublicEncryptingKey {
        &self.oaep
    }

    /// Size of the modulus in bytes, which is also the size of every RSA block sealed with it.
    pub fn size_bytes(&self) -> usize {
        self.oaep.key_size_bytes()
    }

    /// Size of the modulus in bits.
    pub fn size_bits(&self) -> usize {
        self.oaep.key_size_bits()
    }

    /// The OpenSSH SHA-256 fingerprint upstream indexes keys by (`SHA256:` + unpadded base64).
    pub fn fingerprint(&self) -> String {
        let mut wire = Vec::with_capacity(self.modulus.len() + 32);
        push_ssh_string(&mut wire, b"ssh-rsa");
        push_ssh_mpint(&mut wire, &self.exponent);
        push_ssh_mpint(&mut wire, &self.modulus);
        let hash = digest::digest(&digest::SHA256, &wire);
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash.as_ref())
        )
    }

    /// Big-endian modulus without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.size_bits())
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.modulus == other.modulus && self.exponent == other.exponent
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros..]
}

fn push_ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn push_ssh_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let magnitude = strip_leading_zeros(magnitude);
    let pad = magnitude.first().is_some_and(|b| b & 0x80 != 0);
    let len = magnitude.len() + usize::from(pad);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

/// An RSA private key ready for OAEP decryption, with its public half.
#[derive(Clone)]
pub struct PrivateKey {
    oaep: Arc<OaepPrivateDecryptingKey>,
    der_pkcs8: Arc<Zeroizing<Vec<u8>>>,
    public: PublicKey,
}

impl PrivateKey {
    /// Reads a PKCS#8 `PrivateKeyInfo` (DER) holding an RSA key.
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, KeyError> {
        match der::pkcs8_algorithm_oid(pkcs8) {
            Some(der::OID_EC_PUBLIC_KEY) => {
                return Err(KeyError::UnsupportedPrivateKeyType("*ecdsa.PrivateKey"));
            }
            Some(der::OID_ED25519) => {
                return Err(KeyError::UnsupportedPrivateKeyType("ed25519.PrivateKey"));
            }
            _ => {}
        }
        let key = PrivateDecryptingKey::from_pkcs8(pkcs8)
            .map_err(|e| KeyError::InvalidPrivateKey(e.to_string()))?;
        Self::from_decrypting_key(key, Zeroizing::new(pkcs8.to_vec()))
    }

    /// Reads a PKCS#1 `RSAPrivateKey` (DER), the body of an `RSA PRIVATE KEY` PEM block.
    pub fn from_pkcs1_der(pkcs1: &[u8]) -> Result<Self, KeyError> {
        let pkcs8 = der::pkcs1_to_pkcs8(pkcs1);
        let key = PrivateDecryptingKey::from_pkcs8(&pkcs8)
            .map_err(|e| KeyError::InvalidPrivateKey(e.to_string()))?;
        Self::from_decrypting_key(key, pkcs8)
    }

    fn from_decrypting_key(
        key: PrivateDecryptingKey,
        der_pkcs8: Zeroizing<Vec<u8>>,
    ) -> Result<Self, KeyError> {
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| KeyError::InvalidPrivateKey("cannot derive the public key".into()))?;
        let public = PublicKey::from_spki_der(spki.as_ref())?;
        let oaep = OaepPrivateDecryptingKey::new(key)
            .map_err(|_| KeyError::InvalidPrivateKey("unusable for RSA-OAEP".into()))?;
        Ok(Self {
            oaep: Arc::new(oaep),
            der_pkcs8: Arc::new(der_pkcs8),
            public,
        })
    }

    /// Reads the first usable private key of a PEM file, as client-go's keyutil does:
    /// `RSA PRIVATE KEY` (PKCS#1) or `PRIVATE KEY` (PKCS#8); EC keys are refused.
    pub fn from_pem(data: &[u8]) -> Result<Self, KeyError> {
        let mut refusal = None;
        for block in pem_blocks(data) {
            let parsed = match block.tag() {
                PEM_RSA_PRIVATE_KEY => Self::from_pkcs1_der(block.contents()),
                PEM_PRIVATE_KEY => Self::from_pkcs8_der(block.contents()),
                PEM_EC_PRIVATE_KEY => Err(KeyError::UnsupportedPrivateKeyType("*ecdsa.PrivateKey")),
                _ => continue,
            };
            match parsed {
                Ok(key) => return Ok(key),
                Err(err) => refusal = refusal.or(Some(err)),
            }
        }
        Err(refusal.unwrap_or(KeyError::NoPrivateKey))
    }

    pub(crate) fn oaep(&self) -> &OaepPrivateDecryptingKey {
        &self.oaep
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The public key's fingerprint (see [`PublicKey::fingerprint`]).
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint()
    }

    /// A 32-byte secret derived from this private key for `purpose` (HMAC-SHA256 keyed with
    /// the key's PKCS#8 DER): whoever holds the private key can compute it, nobody else can,
    /// and different purposes give unrelated secrets. The controller keys its digests of
    /// unsealed Secrets with it.
    pub fn derive_secret(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.der_pkcs8);
        let tag = aws_lc_rs::hmac::sign(&key, purpose);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// PEM `RSA PRIVATE KEY` (PKCS#1), the format upstream writes into `tls.key`.
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let pkcs1 = der::pkcs8_to_pkcs1(&self.der_pkcs8)
            .ok_or_else(|| KeyError::InvalidPrivateKey("not an RSA PKCS#8 document".into()))?;
        let block = pem::Pem::new(PEM_RSA_PRIVATE_KEY, pkcs1.to_vec());
        let text = pem::encode(&block);
        zeroize::Zeroize::zeroize(&mut block.into_contents());
        Ok(Zeroizing::new(text))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("bits", &self.public.size_bits())
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Every well-formed PEM block of `data`, skipping text around and between them.
///
/// Go's `pem.Decode` tolerates junk and keeps scanning; the `pem` crate fails on the first bad
/// block, so blocks are cut out one by one here.
pub(crate) fn pem_blocks(data: &[u8]) -> impl Iterator<Item = pem::Pem> + '_ {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    let mut rest = data;
    std::iter::from_fn(move || {
        loop {
            let start = find(rest, BEGIN)?;
            let after_begin = &rest[start..];
            let Some(end_marker) = find(after_begin, END) else {
                rest = &[];
                return None;
            };
            let after_end = &after_begin[end_marker + END.len()..];
            let line_end = after_end
                .iter()
                .position(|b| *b == b'\n')
                .map_or(after_end.len(), |p| p + 1);
            let block_len = end_marker + END.len() + line_end;
            let block = &after_begin[..block_len];
            rest = &after_begin[block_len..];
            if let Ok(parsed) = pem::parse(block)
                && parsed.headers().iter().next().is_none()
            {
                return Some(parsed);
            }
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A freshly generated sealing key pair with its self-signed certificate.
pub struct GeneratedKeyPair {
    /// The private key.
    pub key: PrivateKey,
    /// PEM `CERTIFICATE` block.
    pub cert_pem: String,
}

impl fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKeyPair")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Generates an RSA key and the certificate upstream's controller would make for it: empty
/// subject and issuer (or `CN=common_name`), validity `[not_before, not_before + ttl]`, key usage
/// Encipher Only, CA:TRUE, random 128-bit serial, sha256WithRSAEncryption.
pub fn generate_key_pair(
    bits: usize,
    common_name: &str,
    not_before: jiff::Timestamp,
    ttl: jiff::SignedDuration,
) -> Result<GeneratedKeyPair, KeyError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose,
        PKCS_RSA_SHA256, SerialNumber,
    };
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        8192 => KeySize::Rsa8192,
        other => {
            return Err(KeyError::Generate(format!(
                "unsupported RSA key size {other} (use 2048, 3072, 4096 or 8192)"
            )));
        }
    };
    let generated =
        PrivateDecryptingKey::generate(size).map_err(|e| KeyError::Generate(e.to_string()))?;
    let pkcs8 = Zeroizing::new(
        generated
            .as_der()
            .map_err(|e| KeyError::Generate(e.to_string()))?
            .as_ref()
            .to_vec(),
    );
    let key = PrivateKey::from_pkcs8_der(&pkcs8)?;

    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types_der(&pkcs8),
        &PKCS_RSA_SHA256,
    )
    .map_err(|e| KeyError::Generate(e.to_string()))?;

    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    if !common_name.is_empty() {
        name.push(DnType::CommonName, common_name);
    }
    params.distinguished_name = name;
    params.not_before = to_offset_date_time(not_before)?;
    let not_after = not_before
        .checked_add(ttl)
        .map_err(|e| KeyError::Generate(format!("certificate validity: {e}")))?;
    params.not_after = to_offset_date_time(not_after)?;
    params.key_usages = vec![KeyUsagePurpose::EncipherOnly];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|e| KeyError::Generate(e.to_string()))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params
        .self_signed(&signer)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok(GeneratedKeyPair {
        key,
        cert_pem: cert.pem(),
    })
}

fn rustls_pki_types_der(pkcs8: &[u8]) -> rustls_pki_types::PrivatePkcs8KeyDer<'_> {
    rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8)
}

fn to_offset_date_time(ts: jiff::Timestamp) -> Result<time::OffsetDateTime, KeyError> {
    time::OffsetDateTime::from_unix_timestamp(ts.as_second())
        .map_err(|e| KeyError::Generate(format!("certificate validity: {e}")))
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Keys shared by unit tests; generated once per test binary.
    use std::sync::OnceLock;

    use super::*;

    fn cached(cell: &'static OnceLock<PrivateKey>) -> PrivateKey {
        cell.get_or_init(|| {
            let key = PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("keygen");
            let der = key.as_der().expect("pkcs8");
            PrivateKey::from_pkcs8_der(der.as_ref()).expect("parse")
        })
        .clone()
    }

    /// First RSA-2048 test key.
    pub(crate) fn rsa2048_a() -> PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        cached(&KEY)
    }

    /// Second RSA-2048 test key.
    pub(crate) fn rsa2048_b() -> PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        cached(&KEY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_pem_round_trip_keeps_the_key() {
        let key = test_keys::rsa2048_a();
        let pem = key.to_pkcs1_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let again = PrivateKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(again.fingerprint(), key.fingerprint());
    }

    #[test]
    fn derived_secrets_depend_on_the_key_and_the_purpose() {
        let (a, b) = (test_keys::rsa2048_a(), test_keys::rsa2048_b());
        let one = a.derive_secret(b"purpose one");
        assert_eq!(*one, *a.derive_secret(b"purpose one"), "deterministic");
        assert_ne!(*one, *a.derive_secret(b"purpose two"));
        assert_ne!(*one, *b.derive_secret(b"purpose one"));
        // The same key read again (PKCS#1 round trip) derives the same secret.
        let again = PrivateKey::from_pem(a.to_pkcs1_pem().unwrap().as_bytes()).unwrap();
        assert_eq!(*one, *again.derive_secret(b"purpose one"));
    }

    #[test]
    fn pkcs8_pem_is_accepted_and_junk_around_blocks_is_skipped() {
        let key = test_keys::rsa2048_b();
        let pem = pem::encode(&pem::Pem::new(PEM_PRIVATE_KEY, key.der_pkcs8.to_vec()));
        let noisy =
            format!("some text\n-----BEGIN FOO-----\nnot base64!\n-----END FOO-----\n{pem}trailer");
        assert_eq!(
            PrivateKey::from_pem(noisy.as_bytes()).unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn ec_keys_and_empty_input_are_refused_with_upstream_texts() {
        let ec = pem::encode(&pem::Pem::new(PEM_EC_PRIVATE_KEY, vec![0x30, 0x00]));
        assert_eq!(
            PrivateKey::from_pem(ec.as_bytes()).unwrap_err().to_string(),
            "unexpected private key type *ecdsa.PrivateKey"
        );
        assert_eq!(
            PrivateKey::from_pem(b"").unwrap_err().to_string(),
            "data does not contain a valid RSA or ECDSA private key"
        );
        let broken = pem::encode(&pem::Pem::new(PEM_RSA_PRIVATE_KEY, vec![1, 2, 3]));
        assert!(matches!(
            PrivateKey::from_pem(broken.as_bytes()),
            Err(KeyError::InvalidPrivateKey(_))
        ));
    }

    #[test]
    fn debug_output_shows_no_key_bytes() {
        let key = test_keys::rsa2048_a();
        let debug = format!("{key:?}");
        assert!(debug.contains("SHA256:"));
        assert!(debug.len() < 200, "{debug}");
    }

    #[test]
    fn fingerprint_has_the_openssh_shape() {
        let fp = test_keys::rsa2048_a().fingerprint();
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp.len(), "SHA256:".len() + 43);
        assert_ne!(fp, test_keys::rsa2048_b().fingerprint());
    }

    #[test]
    fn generated_pairs_have_matching_certificates() {
        let now = jiff::Timestamp::now();
        let pair = generate_key_pair(2048, "", now, jiff::SignedDuration::from_hours(24)).unwrap();
        let cert = crate::cert::Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap();
        assert_eq!(cert.public_key(), &pair.key.public_key());
        assert!(cert.check_not_expired(now).is_ok());
        assert!(generate_key_pair(1024, "", now, jiff::SignedDuration::from_hours(1)).is_err());
    }
}
