//! Key agreement for CMS with elliptic curves: ephemeral-static ECDH (RFC 5753
//! section 3.1), the ANSI X9.63 key derivation function (RFC 5753 section 7.2, SEC 1
//! section 3.6.1) and AES key wrap (RFC 3394, RFC 3565 section 2.3.2).

use super::EnvelopeError;
use aws_lc_rs::{agreement, cipher, digest, key_wrap};
use certdesk_pki::key::Curve;
use certdesk_pki::oid;
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Encode, Sequence};
use spki::AlgorithmIdentifierOwned;

/// ```text
/// ECC-CMS-SharedInfo ::= SEQUENCE {
///     keyInfo         AlgorithmIdentifier,
///     entityUInfo [0] EXPLICIT OCTET STRING OPTIONAL,
///     suppPubInfo [2] EXPLICIT OCTET STRING }
/// ```
/// (RFC 5753 section 7.2). suppPubInfo is the length of the key-encryption key in
/// bits, a 32-bit big-endian integer.
#[derive(Sequence)]
struct EccCmsSharedInfo {
    key_info: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    entity_u_info: Option<OctetString>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    supp_pub_info: OctetString,
}

/// The hash of a `dhSinglePass-stdDH-shaXkdf-scheme` (RFC 5753 section 7.1.4).
pub(super) fn kdf_hash(scheme: &ObjectIdentifier) -> Option<&'static digest::Algorithm> {
    match *scheme {
        o if o == oid::ECDH_STD_SHA1_KDF => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        o if o == oid::ECDH_STD_SHA224_KDF => Some(&digest::SHA224),
        o if o == oid::ECDH_STD_SHA256_KDF => Some(&digest::SHA256),
        o if o == oid::ECDH_STD_SHA384_KDF => Some(&digest::SHA384),
        o if o == oid::ECDH_STD_SHA512_KDF => Some(&digest::SHA512),
        _ => None,
    }
}

/// The ECDH algorithm for a curve.
pub(super) fn ecdh_algorithm(curve: Curve) -> &'static agreement::Algorithm {
    match curve {
        Curve::P256 => &agreement::ECDH_P256,
        Curve::P384 => &agreement::ECDH_P384,
        Curve::P521 => &agreement::ECDH_P521,
    }
}

/// Key length in bytes of an AES key-wrap algorithm (RFC 3565 section 2.3.2).
pub(super) fn wrap_key_len(wrap: &ObjectIdentifier) -> Option<usize> {
    match *wrap {
        o if o == oid::AES128_WRAP => Some(16),
        o if o == oid::AES192_WRAP => Some(24),
        o if o == oid::AES256_WRAP => Some(32),
        _ => None,
    }
}

/// ANSI X9.63 KDF as profiled by RFC 5753 section 7.2:
/// `K = Hash(Z || Counter || SharedInfo)` for Counter = 1, 2, ... (32-bit big-endian),
/// concatenated and truncated to the key-wrap key length.
pub(super) fn derive_kek(
    hash: &'static digest::Algorithm,
    shared_secret: &[u8],
    wrap_algorithm: &AlgorithmIdentifierOwned,
    ukm: Option<&OctetString>,
    key_len: usize,
) -> Result<Vec<u8>, EnvelopeError> {
    let bits = u32::try_from(key_len.saturating_mul(8)).map_err(|_| EnvelopeError::Crypto { operation: "derive" })?;
    let shared_info = EccCmsSharedInfo {
        key_info: wrap_algorithm.clone(),
        entity_u_info: ukm.cloned(),
        supp_pub_info: OctetString::new(bits.to_be_bytes().to_vec()).map_err(super::encoding)?,
    }
    .to_der()
    .map_err(super::encoding)?;
    let mut out = Vec::with_capacity(key_len.saturating_add(hash.output_len()));
    let mut counter: u32 = 1;
    while out.len() < key_len {
        let mut ctx = digest::Context::new(hash);
        ctx.update(shared_secret);
        ctx.update(&counter.to_be_bytes());
        ctx.update(&shared_info);
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(key_len);
    Ok(out)
}

/// ECDH of `private_key` with the peer's uncompressed point, then the KDF.
pub(super) fn agree(
    private_key: &agreement::PrivateKey,
    peer_point: &[u8],
    hash: &'static digest::Algorithm,
    wrap_algorithm: &AlgorithmIdentifierOwned,
    ukm: Option<&OctetString>,
    key_len: usize,
) -> Result<Vec<u8>, EnvelopeError> {
    let peer = agreement::UnparsedPublicKey::new(private_key.algorithm(), peer_point);
    agreement::agree(private_key, peer, EnvelopeError::DecryptionFailed, |z| {
        derive_kek(hash, z, wrap_algorithm, ukm, key_len)
    })
}

/// AES key wrap (RFC 3394) of the content-encryption key.
pub(super) fn wrap(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let failed = || EnvelopeError::Crypto { operation: "wrap the content-encryption key" };
    let cipher = match kek.len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        _ => return Err(failed()),
    };
    let kek = key_wrap::AesKek::new(cipher, kek).map_err(|_| failed())?;
    let mut out = vec![0u8; cek.len().saturating_add(8)];
    let len = key_wrap::KeyWrap::wrap(kek, cek, &mut out).map_err(|_| failed())?.len();
    out.truncate(len);
    Ok(out)
}

/// AES key unwrap (RFC 3394 section 2.2.2) with the integrity check of section 2.2.3.
/// Any failure is [`EnvelopeError::DecryptionFailed`].
pub(super) fn unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let failed = || EnvelopeError::DecryptionFailed;
    let cipher = match kek.len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        24 => return unwrap_aes192(kek, wrapped),
        _ => return Err(failed()),
    };
    let kek = key_wrap::AesKek::new(cipher, kek).map_err(|_| failed())?;
    let mut out = vec![0u8; wrapped.len()];
    let len = key_wrap::KeyWrap::unwrap(kek, wrapped, &mut out).map_err(|_| failed())?.len();
    out.truncate(len);
    Ok(out)
}

/// RFC 3394 section 2.2.2 (index-based unwrap) on AES-192 in ECB mode, which
/// aws-lc-rs's `key_wrap` module does not offer. OpenSSL uses id-aes192-wrap when the
/// content is encrypted with AES-192.
fn unwrap_aes192(kek: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let failed = || EnvelopeError::DecryptionFailed;
    if wrapped.len() < 24 || wrapped.len() % 8 != 0 {
        return Err(failed());
    }
    let key = cipher::UnboundCipherKey::new(&cipher::AES_192, kek).map_err(|_| failed())?;
    let key = cipher::DecryptingKey::ecb(key).map_err(|_| failed())?;
    let mut blocks: Vec<[u8; 8]> =
        wrapped.chunks_exact(8).map(|c| <[u8; 8]>::try_from(c).map_err(|_| failed())).collect::<Result<_, _>>()?;
    let n = blocks.len().saturating_sub(1);
    let mut a = *blocks.first().ok_or_else(failed)?;
    for j in (0..6u64).rev() {
        for i in (1..=n).rev() {
            let t = (n as u64).wrapping_mul(j).wrapping_add(i as u64);
            let r = blocks.get_mut(i).ok_or_else(failed)?;
            let mut block = [0u8; 16];
            for (dst, (x, y)) in block.iter_mut().zip(a.iter().zip(t.to_be_bytes())) {
                *dst = x ^ y;
            }
            block.get_mut(8..).ok_or_else(failed)?.copy_from_slice(r);
            key.decrypt(&mut block, cipher::DecryptionContext::None).map_err(|_| failed())?;
            a.copy_from_slice(block.get(..8).ok_or_else(failed)?);
            r.copy_from_slice(block.get(8..).ok_or_else(failed)?);
        }
    }
    // Compare the integrity check value without an early exit.
    let diff = a.iter().fold(0u8, |acc, b| acc | (b ^ 0xa6));
    if diff != 0 {
        return Err(failed());
    }
    Ok(blocks.iter().skip(1).flatten().copied().collect())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// RFC 3394 section 4.2 (192-bit KEK, 128-bit key data) and 4.1 (128-bit KEK).
    #[test]
    fn rfc3394_vectors() {
        let kek = hex::decode("000102030405060708090A0B0C0D0E0F1011121314151617").unwrap();
        let wrapped = hex::decode("96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D").unwrap();
        let data = hex::decode("00112233445566778899AABBCCDDEEFF").unwrap();
        assert_eq!(unwrap(&kek, &wrapped).unwrap(), data);
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert!(matches!(unwrap(&kek, &bad), Err(EnvelopeError::DecryptionFailed)));

        let kek = hex::decode("000102030405060708090A0B0C0D0E0F").unwrap();
        let wrapped = hex::decode("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5").unwrap();
        assert_eq!(wrap(&kek, &data).unwrap(), wrapped);
        assert_eq!(unwrap(&kek, &wrapped).unwrap(), data);
    }

    /// The KDF with one and two hash blocks (SEC 1 section 3.6.1 structure).
    #[test]
    fn kdf_lengths() {
        let wrap = AlgorithmIdentifierOwned { oid: oid::AES256_WRAP, parameters: None };
        let a = derive_kek(&digest::SHA1_FOR_LEGACY_USE_ONLY, &[1; 32], &wrap, None, 32).unwrap();
        assert_eq!(a.len(), 32);
        let b = derive_kek(&digest::SHA256, &[1; 32], &wrap, None, 32).unwrap();
        assert_ne!(a, b);
    }
}
