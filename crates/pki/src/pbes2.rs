//! Password-based encryption of private keys: PBES2 (RFC 8018 section 6.2)
//! with PBKDF2 (RFC 8018 section 5.2), wrapped as an `EncryptedPrivateKeyInfo`
//! (RFC 5958 section 3).
//!
//! We write PBKDF2-HMAC-SHA256 with a 16-byte random salt and AES-256-CBC with
//! a random IV, which is what OpenSSL 3 writes by default. We read PBKDF2 with
//! HMAC-SHA1/224/256/384/512 and AES-128/192/256-CBC or DES-EDE3-CBC.
//!
//! The same machinery encrypts and decrypts the PBES2-protected bags of
//! [`crate::pkcs12`] files.

use core::num::NonZeroU32;

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
    AES_128, AES_192, AES_256,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::{hmac, pbkdf2};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, Null, OctetString};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use spki::AlgorithmIdentifierOwned;
use zeroize::{Zeroize, Zeroizing};

mod cbc;

pub(crate) use cbc::LegacyCipher;

/// PBKDF2 iteration count we write: PBKDF2-HMAC-SHA256 at 600,000 iterations
/// follows the OWASP password storage recommendation of 2023.
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// Highest iteration count we accept when reading, so a hostile file cannot make
/// us burn minutes of CPU. Real files use 2,048 to 2,000,000.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// `id-PBES2` (RFC 8018 appendix A.4).
pub(crate) const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// `id-PBKDF2` (RFC 8018 appendix A.2).
pub(crate) const PBKDF2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
/// `id-hmacWithSHA1` (RFC 8018 appendix B.1.1), the PBKDF2 default PRF.
const HMAC_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.7");
/// `id-hmacWithSHA224` (RFC 8018 appendix B.1.2).
const HMAC_WITH_SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.8");
/// `id-hmacWithSHA256` (RFC 8018 appendix B.1.2).
const HMAC_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");
/// `id-hmacWithSHA384` (RFC 8018 appendix B.1.2).
const HMAC_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.10");
/// `id-hmacWithSHA512` (RFC 8018 appendix B.1.2).
const HMAC_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.11");
/// `aes128-CBC-PAD` (RFC 8018 appendix B.2.5).
const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
/// `aes192-CBC-PAD` (RFC 8018 appendix B.2.5).
const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
/// `aes256-CBC-PAD` (RFC 8018 appendix B.2.5).
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
/// `des-EDE3-CBC` (RFC 8018 appendix B.2.2).
const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");

/// Salt length we write, in bytes (RFC 8018 section 4.1 asks for at least 8).
const SALT_LEN: usize = 16;

/// Errors from PBES2 encryption and decryption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Decryption failed: bad padding, or the result is not a PKCS #8 key.
    #[error("the password is wrong (the decrypted private key is not valid)")]
    WrongPassword,
    /// An algorithm we do not implement (key derivation, PRF or cipher).
    #[error("unsupported password-based encryption algorithm {oid}")]
    UnsupportedAlgorithm {
        /// The algorithm's object identifier.
        oid: ObjectIdentifier,
    },
    /// The input is not valid DER for the structure it should hold.
    #[error("the encrypted private key is not well-formed DER: {0}")]
    Malformed(#[from] der::Error),
    /// The algorithm parameters are structurally valid but unusable.
    #[error("invalid password-based encryption parameters: {reason}")]
    InvalidParameters {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// The iteration count is above [`MAX_ITERATIONS`].
    #[error("the iteration count {iterations} is above the limit of {max}")]
    IterationsTooHigh {
        /// The iteration count asked for or found in the input.
        iterations: u64,
        /// The limit, [`MAX_ITERATIONS`].
        max: u32,
    },
    /// The data to encrypt is not a DER `PrivateKeyInfo` (RFC 5958).
    #[error("the data to encrypt is not a PKCS #8 private key: {0}")]
    NotPkcs8(der::Error),
    /// The cryptographic library or the random number generator failed.
    #[error("the cryptographic library failed to {operation}")]
    Crypto {
        /// What it was doing.
        operation: &'static str,
    },
}

/// `EncryptedPrivateKeyInfo` (RFC 5958 section 3):
///
/// ```asn1
/// EncryptedPrivateKeyInfo ::= SEQUENCE {
///   encryptionAlgorithm  EncryptionAlgorithmIdentifier,
///   encryptedData        EncryptedData }
/// EncryptedData ::= OCTET STRING
/// ```
///
/// PKCS #12 uses the same structure as `PKCS8ShroudedKeyBag` (RFC 7292 section 4.2.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct EncryptedPrivateKeyInfo {
    /// How the key is encrypted.
    pub(crate) encryption_algorithm: AlgorithmIdentifierOwned,
    /// The encrypted DER `PrivateKeyInfo`.
    pub(crate) encrypted_data: OctetString,
}

/// `PBES2-params` (RFC 8018 appendix A.4):
///
/// ```asn1
/// PBES2-params ::= SEQUENCE {
///   keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},
///   encryptionScheme AlgorithmIdentifier {{PBES2-Encs}} }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Pbes2Params {
    /// Always `id-PBKDF2` for us.
    pub(crate) key_derivation_func: AlgorithmIdentifierOwned,
    /// The block cipher in CBC mode; its parameters are the IV.
    pub(crate) encryption_scheme: AlgorithmIdentifierOwned,
}

/// `PBKDF2-params` (RFC 8018 appendix A.2):
///
/// ```asn1
/// PBKDF2-params ::= SEQUENCE {
///   salt CHOICE {
///     specified OCTET STRING,
///     otherSource AlgorithmIdentifier {{PBKDF2-SaltSources}} },
///   iterationCount INTEGER (1..MAX),
///   keyLength INTEGER (1..MAX) OPTIONAL,
///   prf AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1 }
/// ```
///
/// `otherSource` is reserved and never used; we accept only `specified`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Pbkdf2Params {
    /// The salt.
    pub(crate) salt: OctetString,
    /// The iteration count.
    pub(crate) iteration_count: u64,
    /// The derived key length in bytes, if stated.
    #[asn1(optional = "true")]
    pub(crate) key_length: Option<u32>,
    /// The pseudorandom function; absent means HMAC-SHA1.
    #[asn1(optional = "true")]
    pub(crate) prf: Option<AlgorithmIdentifierOwned>,
}

/// A PBKDF2 pseudorandom function (RFC 8018 appendix B.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prf {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// A PBES2 encryption scheme (RFC 8018 appendix B.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
}

impl Scheme {
    fn from_oid(oid: ObjectIdentifier) -> Result<Self, Error> {
        Ok(match oid {
            AES128_CBC => Self::Aes128,
            AES192_CBC => Self::Aes192,
            AES256_CBC => Self::Aes256,
            DES_EDE3_CBC => Self::DesEde3,
            oid => return Err(Error::UnsupportedAlgorithm { oid }),
        })
    }

    fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 | Self::DesEde3 => 24,
            Self::Aes256 => 32,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Self::DesEde3 => 8,
            _ => 16,
        }
    }
}

/// Checks an iteration count read from input against [`MAX_ITERATIONS`].
pub(crate) fn check_iterations(iterations: u64) -> Result<NonZeroU32, Error> {
    if iterations > u64::from(MAX_ITERATIONS) {
        return Err(Error::IterationsTooHigh { iterations, max: MAX_ITERATIONS });
    }
    u32::try_from(iterations)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or(Error::InvalidParameters { reason: "the iteration count must be at least 1" })
}

/// Encrypts `pkcs8_der`, a DER `PrivateKeyInfo` (RFC 5958 section 2), into a DER
/// `EncryptedPrivateKeyInfo` (RFC 5958 section 3) with PBES2 (RFC 8018 section
/// 6.2): PBKDF2-HMAC-SHA256 over `password` with a 16-byte random salt and
/// `iterations` rounds, then AES-256-CBC with a random IV.
///
/// # Errors
/// [`Error::NotPkcs8`] if the input is not a `PrivateKeyInfo`,
/// [`Error::IterationsTooHigh`] or [`Error::InvalidParameters`] for an iteration
/// count outside `1..=MAX_ITERATIONS`, [`Error::Crypto`] if the random number
/// generator fails.
pub fn encrypt_private_key_info(
    pkcs8_der: &[u8],
    password: &[u8],
    iterations: u32,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, Error> {
    pkcs8::PrivateKeyInfoRef::from_der(pkcs8_der).map_err(Error::NotPkcs8)?;
    let (encryption_algorithm, ciphertext) = encrypt(pkcs8_der, password, iterations, rng)?;
    let epki = EncryptedPrivateKeyInfo { encryption_algorithm, encrypted_data: OctetString::new(ciphertext)? };
    Ok(epki.to_der()?)
}

/// Decrypts a DER `EncryptedPrivateKeyInfo` (RFC 5958 section 3) protected with
/// PBES2 (RFC 8018 section 6.2) and returns the DER `PrivateKeyInfo`.
///
/// Supported: PBKDF2 with HMAC-SHA1, -SHA224, -SHA256, -SHA384 or -SHA512, and
/// AES-128/192/256-CBC or DES-EDE3-CBC.
///
/// # Errors
/// [`Error::WrongPassword`] if the padding is bad or the plaintext is not a
/// `PrivateKeyInfo`; [`Error::UnsupportedAlgorithm`], [`Error::Malformed`],
/// [`Error::InvalidParameters`] or [`Error::IterationsTooHigh`] for input we
/// cannot or will not process.
pub fn decrypt_private_key_info(encrypted_der: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let epki = EncryptedPrivateKeyInfo::from_der(encrypted_der)?;
    let plaintext = decrypt(&epki.encryption_algorithm, epki.encrypted_data.as_bytes(), password)?;
    if pkcs8::PrivateKeyInfoRef::from_der(&plaintext).is_err() {
        return Err(Error::WrongPassword);
    }
    Ok(plaintext)
}

/// Encrypts `plaintext` with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and returns
/// the `id-PBES2` algorithm identifier with its parameters and the ciphertext.
pub(crate) fn encrypt(
    plaintext: &[u8],
    password: &[u8],
    iterations: u32,
    rng: &dyn SecureRandom,
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), Error> {
    let rounds = check_iterations(u64::from(iterations))?;
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt).map_err(|_| Error::Crypto { operation: "generate a salt" })?;
    let mut iv = [0u8; 16];
    rng.fill(&mut iv).map_err(|_| Error::Crypto { operation: "generate an IV" })?;

    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, rounds, &salt, password, key.as_mut());
    let cipher_key =
        UnboundCipherKey::new(&AES_256, key.as_ref()).map_err(|_| Error::Crypto { operation: "load an AES key" })?;
    let encrypting =
        PaddedBlockEncryptingKey::cbc_pkcs7(cipher_key).map_err(|_| Error::Crypto { operation: "set up AES-CBC" })?;
    let mut buffer = plaintext.to_vec();
    encrypting
        .less_safe_encrypt(&mut buffer, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| Error::Crypto { operation: "encrypt with AES-CBC" })?;

    let kdf = Pbkdf2Params {
        salt: OctetString::new(salt.to_vec())?,
        iteration_count: u64::from(iterations),
        key_length: None,
        prf: Some(AlgorithmIdentifierOwned { oid: HMAC_WITH_SHA256, parameters: Some(Any::from(Null)) }),
    };
    let params = Pbes2Params {
        key_derivation_func: AlgorithmIdentifierOwned { oid: PBKDF2, parameters: Some(Any::encode_from(&kdf)?) },
        encryption_scheme: AlgorithmIdentifierOwned {
            oid: AES256_CBC,
            parameters: Some(Any::encode_from(&OctetString::new(iv.to_vec())?)?),
        },
    };
    let algorithm = AlgorithmIdentifierOwned { oid: PBES2, parameters: Some(Any::encode_from(&params)?) };
    Ok((algorithm, buffer))
}

/// The PBES2 parameters and their PBKDF2 parameters (the only KDF RFC 8018 defines).
fn pbes2_parameters(algorithm: &AlgorithmIdentifierOwned) -> Result<(Pbes2Params, Pbkdf2Params), Error> {
    if algorithm.oid != PBES2 {
        return Err(Error::UnsupportedAlgorithm { oid: algorithm.oid });
    }
    let params: Pbes2Params = decode_parameters(algorithm)?;
    if params.key_derivation_func.oid != PBKDF2 {
        return Err(Error::UnsupportedAlgorithm { oid: params.key_derivation_func.oid });
    }
    let kdf: Pbkdf2Params = decode_parameters(&params.key_derivation_func)?;
    Ok((params, kdf))
}

/// The PBKDF2 iteration count in a PBES2 `algorithm`, unchecked.
pub(crate) fn iteration_count(algorithm: &AlgorithmIdentifierOwned) -> Result<u64, Error> {
    let (_, kdf) = pbes2_parameters(algorithm)?;
    Ok(kdf.iteration_count)
}

/// Decrypts `ciphertext` protected by `algorithm`, which must be `id-PBES2`.
/// Bad padding maps to [`Error::WrongPassword`].
pub(crate) fn decrypt(
    algorithm: &AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    password: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let (params, kdf) = pbes2_parameters(algorithm)?;
    let scheme = Scheme::from_oid(params.encryption_scheme.oid)?;
    let iv_any = params
        .encryption_scheme
        .parameters
        .as_ref()
        .ok_or(Error::InvalidParameters { reason: "the cipher has no IV" })?;
    if iv_any.tag() != Tag::OctetString || iv_any.value().len() != scheme.iv_len() {
        return Err(Error::InvalidParameters { reason: "the cipher IV is not an OCTET STRING of the block size" });
    }
    let iv = iv_any.value();
    if let Some(len) = kdf.key_length {
        if usize::try_from(len).ok() != Some(scheme.key_len()) {
            return Err(Error::InvalidParameters { reason: "the PBKDF2 key length does not match the cipher" });
        }
    }
    let prf = match &kdf.prf {
        None => Prf::Sha1,
        Some(prf) => match prf.oid {
            HMAC_WITH_SHA1 => Prf::Sha1,
            HMAC_WITH_SHA224 => Prf::Sha224,
            HMAC_WITH_SHA256 => Prf::Sha256,
            HMAC_WITH_SHA384 => Prf::Sha384,
            HMAC_WITH_SHA512 => Prf::Sha512,
            oid => return Err(Error::UnsupportedAlgorithm { oid }),
        },
    };
    let rounds = check_iterations(kdf.iteration_count)?;
    let mut key = Zeroizing::new(vec![0u8; scheme.key_len()]);
    derive_pbkdf2(prf, rounds, kdf.salt.as_bytes(), password, &mut key);

    match scheme {
        Scheme::DesEde3 => {
            let cipher =
                LegacyCipher::triple_des(&key).map_err(|_| Error::Crypto { operation: "load a triple-DES key" })?;
            cipher.cbc_decrypt(iv, ciphertext).map_err(|_| Error::WrongPassword)
        }
        Scheme::Aes128 | Scheme::Aes192 | Scheme::Aes256 => {
            let alg = match scheme {
                Scheme::Aes128 => &AES_128,
                Scheme::Aes192 => &AES_192,
                _ => &AES_256,
            };
            aes_cbc_decrypt(alg, &key, iv, ciphertext)
        }
    }
}

/// AES-CBC decryption with PKCS #7 padding; bad padding is a wrong password.
fn aes_cbc_decrypt(
    alg: &'static aws_lc_rs::cipher::Algorithm,
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let iv: [u8; 16] = iv.try_into().map_err(|_| Error::InvalidParameters { reason: "the AES IV is not 16 bytes" })?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(Error::WrongPassword);
    }
    let cipher_key = UnboundCipherKey::new(alg, key).map_err(|_| Error::Crypto { operation: "load an AES key" })?;
    let decrypting =
        PaddedBlockDecryptingKey::cbc_pkcs7(cipher_key).map_err(|_| Error::Crypto { operation: "set up AES-CBC" })?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let len = decrypting
        .decrypt(buffer.as_mut_slice(), DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| Error::WrongPassword)?
        .len();
    buffer.truncate(len);
    Ok(buffer)
}

/// Decodes the parameters of `algorithm` as `T`.
fn decode_parameters<'a, T>(algorithm: &'a AlgorithmIdentifierOwned) -> Result<T, Error>
where
    T: der::DecodeValue<'a, Error = der::Error> + der::FixedTag + 'a,
{
    let params = algorithm
        .parameters
        .as_ref()
        .ok_or(Error::InvalidParameters { reason: "the algorithm parameters are missing" })?;
    Ok(params.decode_as::<T>()?)
}

/// PBKDF2 (RFC 8018 section 5.2). aws-lc-rs covers every PRF but SHA-224,
/// which we do by hand on HMAC.
fn derive_pbkdf2(prf: Prf, rounds: NonZeroU32, salt: &[u8], password: &[u8], out: &mut [u8]) {
    let algorithm = match prf {
        Prf::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        Prf::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        Prf::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
        Prf::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        Prf::Sha224 => {
            pbkdf2_by_hand(hmac::HMAC_SHA224, rounds, salt, password, out);
            return;
        }
    };
    pbkdf2::derive(algorithm, rounds, salt, password, out);
}

/// PBKDF2 on an HMAC (RFC 8018 section 5.2, steps 1 to 5).
fn pbkdf2_by_hand(algorithm: hmac::Algorithm, rounds: NonZeroU32, salt: &[u8], password: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(algorithm, password);
    let h_len = algorithm.digest_algorithm().output_len();
    for (i, chunk) in out.chunks_mut(h_len).enumerate() {
        let block_index = u32::try_from(i).unwrap_or(u32::MAX).wrapping_add(1);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(salt);
        ctx.update(&block_index.to_be_bytes());
        let mut u = ctx.sign();
        let mut t = Zeroizing::new(u.as_ref().to_vec());
        for _ in 1..rounds.get() {
            u = hmac::sign(&key, u.as_ref());
            for (a, b) in t.iter_mut().zip(u.as_ref()) {
                *a ^= b;
            }
        }
        for (o, b) in chunk.iter_mut().zip(t.iter()) {
            *o = *b;
        }
        t.zeroize();
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use std::process::Command;

    /// An Ed25519 PKCS #8 key (RFC 8410 section 10.3).
    const ED25519_PKCS8: &str = "302e020100300506032b657004220420\
        d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842";

    fn key() -> Vec<u8> {
        hex::decode(ED25519_PKCS8).unwrap()
    }

    #[test]
    fn round_trip() {
        let rng = SystemRandom::new();
        let enc = encrypt_private_key_info(&key(), b"secret", 1000, &rng).unwrap();
        let dec = decrypt_private_key_info(&enc, b"secret").unwrap();
        assert_eq!(&dec[..], &key()[..]);
        assert!(matches!(decrypt_private_key_info(&enc, b"wrong"), Err(Error::WrongPassword)));
    }

    #[test]
    fn rejects_bad_input() {
        let rng = SystemRandom::new();
        assert!(matches!(encrypt_private_key_info(b"not a key", b"pw", 1000, &rng), Err(Error::NotPkcs8(_))));
        assert!(matches!(encrypt_private_key_info(&key(), b"pw", 0, &rng), Err(Error::InvalidParameters { .. })));
        assert!(matches!(
            encrypt_private_key_info(&key(), b"pw", MAX_ITERATIONS + 1, &rng),
            Err(Error::IterationsTooHigh { .. })
        ));
        let enc = encrypt_private_key_info(&key(), b"pw", 1000, &rng).unwrap();
        for cut in [0, 1, 10, enc.len() / 2, enc.len() - 1] {
            assert!(decrypt_private_key_info(&enc[..cut], b"pw").is_err());
        }
        assert!(decrypt_private_key_info(b"\x30\x80garbage", b"pw").is_err());
        // Flipping any byte must give an error, never a panic.
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x55;
            let _ = decrypt_private_key_info(&bad, b"pw");
        }
    }

    #[test]
    fn hostile_iteration_count_is_refused() {
        let rng = SystemRandom::new();
        let enc = encrypt_private_key_info(&key(), b"pw", 1000, &rng).unwrap();
        // 1000 = 02 02 03 e8; replace by 02 04 7f ff ff ff with lengths adjusted.
        let mut epki = EncryptedPrivateKeyInfo::from_der(&enc).unwrap();
        let mut params: Pbes2Params = decode_parameters(&epki.encryption_algorithm).unwrap();
        let mut kdf: Pbkdf2Params = decode_parameters(&params.key_derivation_func).unwrap();
        kdf.iteration_count = 0x7fff_ffff;
        params.key_derivation_func.parameters = Some(Any::encode_from(&kdf).unwrap());
        epki.encryption_algorithm.parameters = Some(Any::encode_from(&params).unwrap());
        let err = decrypt_private_key_info(&epki.to_der().unwrap(), b"pw").unwrap_err();
        assert!(matches!(err, Error::IterationsTooHigh { iterations: 0x7fff_ffff, .. }));
    }

    #[test]
    fn pbkdf2_sha224_by_hand_matches_aws_lc_for_sha256() {
        let rounds = NonZeroU32::new(5).unwrap();
        let mut a = [0u8; 40];
        let mut b = [0u8; 40];
        pbkdf2_by_hand(hmac::HMAC_SHA256, rounds, b"salt", b"pw", &mut a);
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, rounds, b"salt", b"pw", &mut b);
        assert_eq!(a, b);
    }

    fn openssl_encrypt(args: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("k.pem");
        std::fs::write(
            &pem,
            pkcs8::der::pem::encode_string("PRIVATE KEY", pkcs8::der::pem::LineEnding::LF, &key()).unwrap(),
        )
        .unwrap();
        let out = Command::new("openssl")
            .args(["pkcs8", "-topk8", "-outform", "DER", "-passout", "pass:pässword", "-in"])
            .arg(&pem)
            .args(args)
            .output()
            .expect("openssl must be installed");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    #[test]
    fn reads_what_openssl_writes() {
        for args in [
            &["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"][..],
            &["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"][..],
            &["-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA512"][..],
            &["-v2", "des3", "-v2prf", "hmacWithSHA384"][..],
            &["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA224"][..],
        ] {
            let der = openssl_encrypt(args);
            let dec = decrypt_private_key_info(&der, "pässword".as_bytes()).unwrap();
            assert_eq!(&dec[..], &key()[..], "{args:?}");
        }
    }

    #[test]
    fn openssl_reads_what_we_write() {
        let rng = SystemRandom::new();
        let enc = encrypt_private_key_info(&key(), "pässword".as_bytes(), 2048, &rng).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.der");
        std::fs::write(&path, &enc).unwrap();
        let out = Command::new("openssl")
            .args(["pkcs8", "-inform", "DER", "-outform", "DER", "-passin", "pass:pässword", "-in"])
            .arg(&path)
            .output()
            .expect("openssl must be installed");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, key());
    }
}
