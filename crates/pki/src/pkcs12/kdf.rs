//! The PKCS #12 key derivation function (RFC 7292 appendix B.2) and the
//! BMPString password encoding it takes (RFC 7292 appendix B.1).

use core::num::NonZeroU32;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

/// What the derived bytes are for (RFC 7292 appendix B.3, the "ID" byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// ID 1: key material for encryption or decryption.
    Key = 1,
    /// ID 2: an initial value (IV).
    Iv = 2,
    /// ID 3: an integrity (MAC) key.
    Mac = 3,
}

/// The password as RFC 7292 appendix B.1 wants it: UTF-16 big-endian with a
/// terminating two-byte zero. Characters outside the Basic Multilingual Plane
/// become surrogate pairs, as OpenSSL does.
pub(crate) fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// Derives `len` bytes from `password` (already BMP-encoded) and `salt` with
/// `hash` iterated `iterations` times (RFC 7292 appendix B.2, steps 1 to 7).
pub(crate) fn derive(
    hash: &'static digest::Algorithm,
    password: &[u8],
    salt: &[u8],
    purpose: Purpose,
    iterations: NonZeroU32,
    len: usize,
) -> Zeroizing<Vec<u8>> {
    derive_noting_gpgsm(hash, password, salt, purpose, iterations, len).0
}

/// [`derive`], and whether gpgsm 2.2 derives the same bytes. Its KDF (`minip12.c`,
/// `string_to_key`) writes each updated `I_j` back with `gcry_mpi_print(USG)`, which
/// drops leading zero bytes without re-aligning the buffer: whenever an updated block
/// starts with 0x00 gpgsm derives a different key and reports "decryption failed"
/// (about one file in 60 with a random salt, seen with gpgsm 2.2.40). OpenSSL, NSS and
/// Windows are not affected.
pub(crate) fn derive_noting_gpgsm(
    hash: &'static digest::Algorithm,
    password: &[u8],
    salt: &[u8],
    purpose: Purpose,
    iterations: NonZeroU32,
    len: usize,
) -> (Zeroizing<Vec<u8>>, bool) {
    let mut gpgsm_agrees = true;
    let u = hash.output_len();
    let v = hash.block_len();
    // Step 1: D is v copies of ID.
    let diversifier = vec![purpose as u8; v];
    // Steps 2 to 4: I = S || P, each repeated to a multiple of v bytes.
    let stretch = |data: &[u8]| -> Zeroizing<Vec<u8>> {
        let target = data.len().div_ceil(v) * v;
        Zeroizing::new(data.iter().copied().cycle().take(target).collect())
    };
    let mut input = stretch(salt);
    input.extend_from_slice(&stretch(password));

    let mut out = Zeroizing::new(Vec::with_capacity(len.div_ceil(u) * u));
    while out.len() < len {
        // Step 6a: A = H^r(D || I).
        let mut ctx = digest::Context::new(hash);
        ctx.update(&diversifier);
        ctx.update(&input);
        let mut block = Zeroizing::new(ctx.finish().as_ref().to_vec());
        for _ in 1..iterations.get() {
            let next = digest::digest(hash, &block);
            block.copy_from_slice(next.as_ref());
        }
        out.extend_from_slice(&block);
        if out.len() >= len {
            break;
        }
        // Step 6b: B = A repeated to v bytes. Step 6c: I_j = (I_j + B + 1) mod 2^(8v).
        let b: Zeroizing<Vec<u8>> = Zeroizing::new(block.iter().copied().cycle().take(v).collect());
        for chunk in input.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in chunk.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum.to_be_bytes()[1];
                carry = sum >> 8;
            }
            if chunk.first() == Some(&0) {
                gpgsm_agrees = false;
            }
        }
    }
    out.truncate(len);
    (out, gpgsm_agrees)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn bmp_encoding() {
        assert_eq!(&bmp_password("")[..], [0, 0]);
        assert_eq!(&bmp_password("aé")[..], [0, b'a', 0, 0xe9, 0, 0]);
    }

    /// Vectors from the Bouncy Castle PKCS12 KDF tests (`PKCS12Test` /
    /// `PKCS12ParametersGeneratorTest`), which OpenSSL reproduces:
    /// password "smeg", SHA-1, salt 0A58CF64530D823F, one iteration.
    #[test]
    fn bouncy_castle_vectors() {
        let pw = bmp_password("smeg");
        let salt = hex::decode("0A58CF64530D823F").unwrap();
        let one = NonZeroU32::new(1).unwrap();
        let key = derive(&digest::SHA1_FOR_LEGACY_USE_ONLY, &pw, &salt, Purpose::Key, one, 24);
        assert_eq!(hex::encode_upper(&key[..]), "8AAAE6297B6CB04642AB5B077851284EB7128F1A2A7FBCA3");
        let iv = derive(&digest::SHA1_FOR_LEGACY_USE_ONLY, &pw, &salt, Purpose::Iv, one, 8);
        assert_eq!(hex::encode_upper(&iv[..]), "79993DFE048D3B76");
    }

    /// A real case: a `compat` file whose key bag gpgsm 2.2.40 could not decrypt
    /// ("decryption failed"), while OpenSSL could. Its salt makes the updated I block
    /// start with 0x00; the certificate bag's salt in the same file does not.
    #[test]
    fn gpgsm_kdf_disagreement_is_detected() {
        let bmp = bmp_password("Tq7#mv!2pLx9-river");
        let iterations = NonZeroU32::new(600_000).unwrap();
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        let key_bag_salt = hex::decode("C07672CA308106192F775CE5964F3254").unwrap();
        let cert_bag_salt = hex::decode("134BBBB94A229364AB15886CDF068EC1").unwrap();
        let (key, agrees) = derive_noting_gpgsm(sha1, &bmp, &key_bag_salt, Purpose::Key, iterations, 24);
        assert!(!agrees);
        assert_eq!(key, derive(sha1, &bmp, &key_bag_salt, Purpose::Key, iterations, 24));
        assert!(derive_noting_gpgsm(sha1, &bmp, &cert_bag_salt, Purpose::Key, iterations, 24).1);
    }
}
