//! The hybrid encryption that every sealed value uses, byte for byte as upstream.
//!
//! Layout of one sealed value (before base64):
//!
//! ```text
//! [ len(C_rsa) as u16 big-endian ][ C_rsa ][ C_aes || 16-byte GCM tag ]
//! ```
//!
//! `C_rsa` is a fresh 32-byte AES-256 session key encrypted with RSA-OAEP (SHA-256, MGF1-SHA-256,
//! label = scope label); `C_aes` is the plaintext under AES-256-GCM with an all-zero 96-bit nonce
//! and no additional data. The zero nonce looks alarming but is sound here: every session key
//! encrypts exactly one message and is then dropped.
//!
//! There is no key identifier in the format, so decryption is trial decryption over every
//! candidate key ([`Decrypter`]). All RSA work goes through aws-lc-rs, whose private-key
//! operations are constant-time and blinded, because `/v1/verify` and the reconcile loop decrypt
//! ciphertexts chosen by anyone allowed to create a SealedSecret.

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey},
};
use zeroize::Zeroizing;

use crate::keys::{PrivateKey, PublicKey};

/// Length of the AES-256 session key generated for every sealed value.
pub const SESSION_KEY_LEN: usize = 32;
/// Length of the AES-GCM authentication tag appended to the ciphertext.
pub const GCM_TAG_LEN: usize = 16;

/// Errors of the hybrid scheme. None of them carries plaintext or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The ciphertext is shorter than its own length prefix says (upstream's text).
    #[error("SealedSecret data is too short")]
    TooShort,
    /// No candidate key opened the value (upstream's text; wrong key, scope, name or tampering).
    #[error("no key could decrypt secret")]
    NoKeyCouldDecrypt,
    /// The random number generator failed.
    #[error("failed to read random bytes for the session key")]
    Random,
    /// RSA-OAEP encryption failed (for example a key too small for OAEP-SHA256).
    #[error("RSA-OAEP encryption failed")]
    Encrypt,
}

/// A source of the session keys. The default is the operating system's CSPRNG; tests pass a
/// deterministic one so that the AES part of a ciphertext is reproducible.
///
/// The OAEP padding seed is drawn by aws-lc itself and cannot be injected, so RSA blocks are
/// never reproducible; only the session key is.
pub trait Randomness {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError>;
}

/// The operating system's CSPRNG, through aws-lc.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Randomness for SystemRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| CryptoError::Random)
    }
}

fn aes_key(session_key: &[u8]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, session_key)
        .ok()
        .map(LessSafeKey::new)
}

fn zero_nonce() -> Nonce {
    // Safe only because each session key seals exactly one message (see module docs).
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

fn oaep_label(label: &[u8]) -> Option<&[u8]> {
    (!label.is_empty()).then_some(label)
}

/// Seals `plaintext` for `key` with the OAEP `label` of the chosen scope.
pub fn hybrid_encrypt(
    key: &PublicKey,
    plaintext: &[u8],
    label: &[u8],
    rng: &mut dyn Randomness,
) -> Result<Vec<u8>, CryptoError> {
    let mut session_key = Zeroizing::new([0u8; SESSION_KEY_LEN]);
    rng.fill(session_key.as_mut())?;

    let oaep: &OaepPublicEncryptingKey = key.oaep();
    let rsa_len = oaep.ciphertext_size();
    let rsa_len_prefix = u16::try_from(rsa_len).map_err(|_| CryptoError::Encrypt)?;

    let mut out = Vec::with_capacity(2 + rsa_len + plaintext.len() + GCM_TAG_LEN);
    out.extend_from_slice(&rsa_len_prefix.to_be_bytes());
    out.resize(2 + rsa_len, 0);
    let written = oaep
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            session_key.as_ref(),
            &mut out[2..],
            oaep_label(label),
        )
        .map_err(|_| CryptoError::Encrypt)?
        .len();
    if written != rsa_len {
        return Err(CryptoError::Encrypt);
    }

    let aes = aes_key(session_key.as_ref()).ok_or(CryptoError::Encrypt)?;
    // Room for the tag up front, so sealing in place never reallocates and leaves a copy of
    // the plaintext behind; wiped in case sealing fails with plaintext still in it.
    let mut sealed = Zeroizing::new(Vec::with_capacity(plaintext.len() + GCM_TAG_LEN));
    sealed.extend_from_slice(plaintext);
    aes.seal_in_place_append_tag(zero_nonce(), Aad::empty(), &mut *sealed)
        .map_err(|_| CryptoError::Encrypt)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// A ciphertext split into its RSA and AES parts.
#[derive(Debug, Clone, Copy)]
pub struct HybridParts<'a> {
    /// The RSA-OAEP block holding the session key.
    pub rsa: &'a [u8],
    /// AES-GCM ciphertext followed by its tag.
    pub aes: &'a [u8],
}

/// Splits a ciphertext at its length prefix, as upstream does before trying any key.
pub fn split_ciphertext(ciphertext: &[u8]) -> Result<HybridParts<'_>, CryptoError> {
    let [hi, lo, rest @ ..] = ciphertext else {
        return Err(CryptoError::TooShort);
    };
    let rsa_len = usize::from(u16::from_be_bytes([*hi, *lo]));
    if rest.len() < rsa_len {
        return Err(CryptoError::TooShort);
    }
    let (rsa, aes) = rest.split_at(rsa_len);
    Ok(HybridParts { rsa, aes })
}

/// Opens an already split ciphertext with one key. `None` means "this key does not open it".
pub fn open_with_key(
    key: &PrivateKey,
    parts: HybridParts<'_>,
    label: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let oaep: &OaepPrivateDecryptingKey = key.oaep();
    let mut session_key = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
    let recovered_len = oaep
        .decrypt(
            &OAEP_SHA256_MGF1SHA256,
            parts.rsa,
            &mut session_key,
            oaep_label(label),
        )
        .ok()?
        .len();
    // Go accepts any valid AES key length here; upstream only ever writes 32 bytes, and
    // AES-256-GCM is the only cipher we open.
    let aes = aes_key(&session_key[..recovered_len])?;
    let mut buffer = Zeroizing::new(parts.aes.to_vec());
    let plain_len = aes
        .open_in_place(zero_nonce(), Aad::empty(), &mut buffer)
        .ok()?
        .len();
    buffer.truncate(plain_len);
    Some(buffer)
}

/// Something that can open sealed values: one key, a list of keys, or a controller's key
/// registry with its own ordering heuristics.
pub trait Decrypter {
    /// Opens `ciphertext` sealed with OAEP `label`, or says why not.
    fn decrypt(&self, ciphertext: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

impl Decrypter for PrivateKey {
    fn decrypt(&self, ciphertext: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        std::slice::from_ref(self).decrypt(ciphertext, label)
    }
}

/// Trial decryption in slice order; the first key that opens the value wins.
impl Decrypter for [PrivateKey] {
    fn decrypt(&self, ciphertext: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parts = split_ciphertext(ciphertext)?;
        self.iter()
            .find_map(|key| open_with_key(key, parts, label))
            .ok_or(CryptoError::NoKeyCouldDecrypt)
    }
}

impl Decrypter for Vec<PrivateKey> {
    fn decrypt(&self, ciphertext: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.as_slice().decrypt(ciphertext, label)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::test_keys;

    /// A deterministic session-key source for tests (a counter, not random at all).
    pub(crate) struct CountingRandom(pub u8);

    impl Randomness for CountingRandom {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
            for b in dest {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
            Ok(())
        }
    }

    #[test]
    fn round_trip_keeps_every_byte_and_layout_matches_upstream() {
        let key = test_keys::rsa2048_a();
        for plaintext in [&b""[..], b"x", &[0u8, 255, 1, 254], &[7u8; 5000]] {
            let sealed =
                hybrid_encrypt(&key.public_key(), plaintext, b"ns/name", &mut SystemRandom)
                    .unwrap();
            assert_eq!(&sealed[..2], &[0x01, 0x00], "RSA-2048 block length prefix");
            assert_eq!(sealed.len(), 2 + 256 + plaintext.len() + GCM_TAG_LEN);
            let opened = key.decrypt(&sealed, b"ns/name").unwrap();
            assert_eq!(&opened[..], plaintext);
        }
    }

    #[test]
    fn the_aes_part_is_deterministic_given_the_session_key() {
        let key = test_keys::rsa2048_a();
        let a = hybrid_encrypt(&key.public_key(), b"same", b"", &mut CountingRandom(9)).unwrap();
        let b = hybrid_encrypt(&key.public_key(), b"same", b"", &mut CountingRandom(9)).unwrap();
        assert_eq!(
            a[2 + 256..],
            b[2 + 256..],
            "AES-GCM output depends only on the session key"
        );
        assert_ne!(
            a[2..2 + 256],
            b[2..2 + 256],
            "OAEP padding stays randomized"
        );
    }

    #[test]
    fn wrong_label_fails() {
        let key = test_keys::rsa2048_a();
        let sealed =
            hybrid_encrypt(&key.public_key(), b"v", b"ns/name", &mut SystemRandom).unwrap();
        for wrong in [&b"ns/other"[..], b"ns", b""] {
            assert_eq!(
                key.decrypt(&sealed, wrong).unwrap_err(),
                CryptoError::NoKeyCouldDecrypt
            );
        }
    }

    #[test]
    fn tampering_anywhere_fails() {
        let key = test_keys::rsa2048_a();
        let sealed = hybrid_encrypt(&key.public_key(), b"value", b"l", &mut SystemRandom).unwrap();
        for position in [2, 100, 2 + 255, 2 + 256, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[position] ^= 0x01;
            assert!(key.decrypt(&tampered, b"l").is_err(), "flip at {position}");
        }
        let mut truncated = sealed.clone();
        truncated.pop();
        assert!(key.decrypt(&truncated, b"l").is_err());
    }

    #[test]
    fn too_short_inputs_are_reported_as_upstream_does() {
        let key = test_keys::rsa2048_a();
        for input in [&b""[..], &[1u8], &[0x01, 0x00, 0xaa], &[0xff, 0xff]] {
            assert_eq!(key.decrypt(input, b"").unwrap_err(), CryptoError::TooShort);
            assert_eq!(
                CryptoError::TooShort.to_string(),
                "SealedSecret data is too short"
            );
        }
    }

    #[test]
    fn any_of_several_keys_opens_and_others_do_not() {
        let a = test_keys::rsa2048_a();
        let b = test_keys::rsa2048_b();
        let sealed = hybrid_encrypt(&b.public_key(), b"multi", b"x", &mut SystemRandom).unwrap();
        let ring = vec![a.clone(), b.clone()];
        assert_eq!(&ring.decrypt(&sealed, b"x").unwrap()[..], b"multi");
        assert_eq!(
            a.decrypt(&sealed, b"x").unwrap_err(),
            CryptoError::NoKeyCouldDecrypt
        );
        let empty: Vec<PrivateKey> = Vec::new();
        assert_eq!(
            empty.decrypt(&sealed, b"x").unwrap_err(),
            CryptoError::NoKeyCouldDecrypt
        );
    }
}
