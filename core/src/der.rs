//! Minimal DER plumbing for RSA private keys.
//!
//! aws-lc-rs reads and writes RSA private keys as PKCS#8 only, while upstream sealed-secrets
//! stores `tls.key` as PKCS#1 (`RSA PRIVATE KEY`). The two differ by one fixed wrapper
//! (`PrivateKeyInfo { version 0, AlgorithmIdentifier rsaEncryption, OCTET STRING pkcs1 }`), so
//! this module adds or removes that wrapper instead of pulling in a full ASN.1 stack.

use zeroize::Zeroizing;

/// DER of `AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }`.
const RSA_ALGORITHM_IDENTIFIER: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// DER of `INTEGER 0` (the PKCS#8 v1 version field).
const VERSION_ZERO: &[u8] = &[0x02, 0x01, 0x00];

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Wraps a PKCS#1 `RSAPrivateKey` into a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut octets = Zeroizing::new(Vec::with_capacity(pkcs1.len() + 8));
    octets.push(0x04);
    push_length(&mut octets, pkcs1.len());
    octets.extend_from_slice(pkcs1);

    let body_len = VERSION_ZERO.len() + RSA_ALGORITHM_IDENTIFIER.len() + octets.len();
    let mut out = Zeroizing::new(Vec::with_capacity(body_len + 8));
    out.push(0x30);
    push_length(&mut out, body_len);
    out.extend_from_slice(VERSION_ZERO);
    out.extend_from_slice(RSA_ALGORITHM_IDENTIFIER);
    out.extend_from_slice(&octets);
    out
}

/// Reads one DER TLV at the start of `input`: returns (tag, contents, rest).
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > std::mem::size_of::<usize>() || rest.len() < count {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..count] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Extracts the PKCS#1 `RSAPrivateKey` from an RSA PKCS#8 `PrivateKeyInfo`.
///
/// Returns `None` when the document is not PKCS#8 or its algorithm is not rsaEncryption.
pub(crate) fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (tag, body, _) = read_tlv(pkcs8)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, version, rest) = read_tlv(body)?;
    if tag != 0x02 || version != [0] {
        return None;
    }
    let (tag, algorithm, rest) = read_tlv(rest)?;
    if tag != 0x30 || !RSA_ALGORITHM_IDENTIFIER.ends_with(algorithm) {
        return None;
    }
    let (tag, key, _) = read_tlv(rest)?;
    if tag != 0x04 {
        return None;
    }
    Some(Zeroizing::new(key.to_vec()))
}

/// The OID of the algorithm inside a PKCS#8 `PrivateKeyInfo`, as DER content bytes.
pub(crate) fn pkcs8_algorithm_oid(pkcs8: &[u8]) -> Option<&[u8]> {
    let (_, body, _) = read_tlv(pkcs8)?;
    let (_, _, rest) = read_tlv(body)?;
    let (_, algorithm, _) = read_tlv(rest)?;
    let (tag, oid, _) = read_tlv(algorithm)?;
    (tag == 0x06).then_some(oid)
}

/// DER content bytes of the id-ecPublicKey OID (1.2.840.10045.2.1).
pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER content bytes of the Ed25519 OID (1.3.101.112).
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_then_unwrap_is_identity_for_long_and_short_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 2350, 70_000] {
            let inner: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let wrapped = pkcs1_to_pkcs8(&inner);
            assert_eq!(
                pkcs8_to_pkcs1(&wrapped).as_deref().map(Vec::as_slice),
                Some(&inner[..])
            );
        }
    }

    #[test]
    fn truncated_or_foreign_documents_are_rejected() {
        let wrapped = pkcs1_to_pkcs8(&[1, 2, 3]);
        for cut in 0..wrapped.len() {
            assert!(pkcs8_to_pkcs1(&wrapped[..cut]).is_none(), "cut at {cut}");
        }
        assert!(pkcs8_to_pkcs1(b"garbage").is_none());
        assert!(read_tlv(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_none());
    }
}
