//! PKCS #12 files (RFC 7292): the `.p12`/`.pfx` a subscriber imports into a mail
//! client, carrying the private key, its certificate and the chain.
//!
//! # Writing
//!
//! [`write()`] produces password-integrity mode (RFC 7292 section 3.1, an HMAC
//! over the `AuthenticatedSafe`) with password privacy for both the key and the
//! certificates, in one of two [`Format`]s:
//!
//! - [`Format::Modern`]: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for the
//!   shrouded key bag and the certificate `EncryptedData`, HMAC-SHA256 MAC
//!   keyed with the RFC 7292 appendix B KDF over SHA-256, as OpenSSL 3 writes
//!   by default. Thunderbird, current Windows, OpenSSL 3, Java and recent
//!   gpgsm import it.
//! - [`Format::Compat`]: `pbeWithSHAAnd3-KeyTripleDES-CBC` (RFC 7292 appendix
//!   C) for both, HMAC-SHA1 MAC. macOS Keychain, Windows before Server 2019 /
//!   Windows 10 1709, and gpgsm 2.2 import only this.
//!
//! Both bags carry `localKeyId` (the SHA-1 of the leaf certificate, as OpenSSL
//! writes) and optionally `friendlyName` (RFC 2985 section 5.5.1 and 5.5.2).
//!
//! # Reading
//!
//! [`read()`] accepts BER (indefinite lengths, segmented OCTET STRINGs; see
//! `ber_to_der`), MACs over SHA-1/224/256/384/512, a missing MAC (reported in
//! [`Contents::integrity`]), plain and encrypted `SafeContents`, shrouded and
//! plain key bags, nested `safeContentsBag`s and X.509 certificate bags. Ciphers:
//! PBES2 (see [`crate::pbes2`]), `pbeWithSHAAnd3-KeyTripleDES-CBC`,
//! `pbeWithSHAAnd2-KeyTripleDES-CBC`, `pbeWithSHAAnd128BitRC2-CBC` and
//! `pbeWithSHAAnd40BitRC2-CBC` (which macOS and old Windows use for certificates).
//! Public-key privacy and integrity modes (`envelopedData`, `signedData`) and
//! PBMAC1 (RFC 9579) are refused with [`Error::UnsupportedContentType`] or
//! [`Error::UnsupportedAlgorithm`].
//!
//! # Passwords
//!
//! The RFC 7292 appendix B KDF and the MAC take the password as a BMPString
//! (UTF-16BE with two terminating zero bytes); PBES2 inside PKCS #12 takes its
//! UTF-8 bytes, as OpenSSL does. Iteration counts above
//! [`crate::pbes2::MAX_ITERATIONS`] are refused.
//!
//! A file "without a password" is one made with the empty password, which producers
//! encode in two ways: as the empty BMPString with its terminator (two zero bytes;
//! OpenSSL's `-passout pass:`) or as zero bytes (OpenSSL's `PKCS12_create` with a
//! NULL password, pyca `cryptography`'s `NoEncryption`). Read with `""`, a file opens
//! with whichever encoding its MAC verifies with, as OpenSSL's `PKCS12_parse` does;
//! without a MAC, each encrypted bag is tried with both. Unencrypted `SafeContents`
//! and key bags need no password at all. A non-empty password for a file that opens
//! with the empty one is refused with [`Error::FileHasNoPassword`].

use core::fmt;
use core::num::NonZeroU32;

use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::{digest, hmac};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BmpString, Null, OctetString, SetOfVec};
use der::{Decode, Encode, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::pbes2::{self, LegacyCipher};

mod asn1;
mod kdf;

pub(crate) use crate::ber::ber_to_der;
use asn1::{
    Attribute, AttributeOut, CertBag, ContentInfo, DigestInfo, EncryptedContentInfo, EncryptedData, MacData, Pfx,
    Pkcs12PbeParams, SafeBag,
};
use kdf::{bmp_password, Purpose};

/// `id-data` (RFC 5652 section 4).
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// `id-encryptedData` (RFC 5652 section 8).
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
/// `keyBag` (RFC 7292 section 4.2.1).
const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
/// `pkcs8ShroudedKeyBag` (RFC 7292 section 4.2.2).
const SHROUDED_KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
/// `certBag` (RFC 7292 section 4.2.3).
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
/// `safeContentsBag` (RFC 7292 section 4.2.6).
const SAFE_CONTENTS_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.6");
/// `x509Certificate` cert type (RFC 7292 section 4.2.3).
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
/// `pkcs-9-at-friendlyName` (RFC 2985 section 5.5.1).
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
/// `pkcs-9-at-localKeyId` (RFC 2985 section 5.5.2).
const LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
/// `pbeWithSHAAnd128BitRC2-CBC` (RFC 7292 appendix C).
const PBE_SHA1_RC2_128: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.5");
/// `pbeWithSHAAnd40BitRC2-CBC` (RFC 7292 appendix C).
const PBE_SHA1_RC2_40: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");
/// `pbeWithSHAAnd3-KeyTripleDES-CBC` (RFC 7292 appendix C).
const PBE_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
/// `pbeWithSHAAnd2-KeyTripleDES-CBC` (RFC 7292 appendix C).
const PBE_SHA1_2DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.4");
/// `rsaEncryption` (RFC 8017 appendix A.1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 section 2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `id-Ed25519` (RFC 8410 section 3).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-sha1` (RFC 3279 section 2.2.1).
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// `id-sha224` (RFC 5754 section 2.1).
const SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
/// `id-sha256` (RFC 5754 section 2.2).
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// `id-sha384` (RFC 5754 section 2.3).
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// `id-sha512` (RFC 5754 section 2.4).
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Salt length we write for the MAC and the RFC 7292 PBE, in bytes.
const SALT_LEN: usize = 16;
/// Total key-derivation iterations one file may ask for across all its bags.
const MAX_TOTAL_ITERATIONS: u64 = 4 * pbes2::MAX_ITERATIONS as u64;
/// How deep `safeContentsBag`s may nest.
const MAX_BAG_DEPTH: usize = 4;

/// Which check showed the password to be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordCheck {
    /// The HMAC over the contents (RFC 7292 section 4) did not match.
    Mac,
    /// Decryption gave bad padding or something that is not the expected data.
    Decryption,
}

impl fmt::Display for PasswordCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mac => "the MAC check failed",
            Self::Decryption => "decryption failed",
        })
    }
}

/// Errors from reading or writing a PKCS #12 file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The password does not open the file. A damaged or altered file fails
    /// the same check, but a wrong password is by far the usual cause.
    #[error("the PKCS#12 password is wrong ({check}; a damaged file can also cause this)")]
    WrongPassword {
        /// Which check failed.
        check: PasswordCheck,
    },
    /// The input is not BER at all (truncated, garbage, or not a PKCS #12 file).
    #[error("the PKCS#12 file is not valid BER at byte {offset}: {reason}")]
    Ber {
        /// Byte offset of the problem within the layer being decoded.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A structure does not match RFC 7292.
    #[error("the PKCS#12 file is malformed: {0}")]
    Malformed(#[from] der::Error),
    /// A structure is well-formed DER but not what RFC 7292 allows there.
    #[error("the PKCS#12 file is malformed: {reason}")]
    Invalid {
        /// What is wrong.
        reason: &'static str,
    },
    /// `PFX.version` is not 3.
    #[error("the PKCS#12 version is {version}, only version 3 is supported")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// A password was given, but the file has none: it opens with the empty password.
    #[error("the PKCS#12 password is wrong: the file has no password (it opens with an empty one)")]
    FileHasNoPassword,
    /// An encryption or MAC algorithm we do not implement.
    #[error("the PKCS#12 file uses the unsupported algorithm {oid}")]
    UnsupportedAlgorithm {
        /// Its object identifier.
        oid: ObjectIdentifier,
    },
    /// A content type we do not read, such as public-key privacy (`envelopedData`)
    /// or public-key integrity (`signedData`) mode.
    #[error("the PKCS#12 file uses the unsupported content type {oid}")]
    UnsupportedContentType {
        /// Its object identifier.
        oid: ObjectIdentifier,
    },
    /// An iteration count above [`crate::pbes2::MAX_ITERATIONS`] (or zero).
    #[error("the PKCS#12 iteration count {iterations} is outside 1 to {max}")]
    IterationsOutOfRange {
        /// The count found or asked for.
        iterations: u64,
        /// The limit.
        max: u32,
    },
    /// `safeContentsBag`s nest deeper than we follow.
    #[error("the PKCS#12 bags are nested more than {max} deep")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The file asks for more key-derivation work in total than we do for one
    /// file (many bags, each at a high iteration count).
    #[error("the PKCS#12 file asks for more than {max} key-derivation iterations in total")]
    TooMuchWork {
        /// The total limit.
        max: u64,
    },
    /// The key or a certificate given to [`write()`] is not valid.
    #[error("cannot write PKCS#12: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: &'static str,
    },
    /// A PBES2 problem other than a wrong password or iteration count.
    #[error(transparent)]
    Pbes2(pbes2::Error),
    /// The cryptographic library or the random number generator failed.
    #[error("the cryptographic library failed to {operation}")]
    Crypto {
        /// What it was doing.
        operation: &'static str,
    },
}

impl From<crate::ber::BerError> for Error {
    fn from(e: crate::ber::BerError) -> Self {
        Self::Ber { offset: e.offset, reason: e.reason }
    }
}

impl From<pbes2::Error> for Error {
    fn from(e: pbes2::Error) -> Self {
        match e {
            pbes2::Error::WrongPassword => Self::WrongPassword { check: PasswordCheck::Decryption },
            pbes2::Error::IterationsTooHigh { iterations, max } => Self::IterationsOutOfRange { iterations, max },
            pbes2::Error::UnsupportedAlgorithm { oid } => Self::UnsupportedAlgorithm { oid },
            other => Self::Pbes2(other),
        }
    }
}

/// The algorithms [`write()`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for key and certificates,
    /// HMAC-SHA256 MAC. OpenSSL 3's default; Thunderbird, Windows 10 1709 and
    /// later, Java, OpenSSL 3, gpgsm 2.4.
    #[default]
    Modern,
    /// `pbeWithSHAAnd3-KeyTripleDES-CBC` for key and certificates, HMAC-SHA1
    /// MAC. For macOS Keychain, older Windows and gpgsm 2.2.
    Compat,
}

/// Options for [`write()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Which algorithms to use.
    pub format: Format,
    /// Iteration count for key derivation (PBKDF2 or the RFC 7292 KDF) and the
    /// MAC key, `1..=`[`crate::pbes2::MAX_ITERATIONS`].
    pub iterations: u32,
    /// `friendlyName` for the key and leaf certificate: the label mail clients
    /// and key stores show. Characters outside the Basic Multilingual Plane are
    /// refused, since the attribute is a BMPString.
    pub friendly_name: Option<String>,
}

impl Default for WriteOptions {
    /// [`Format::Modern`], [`crate::pbes2::DEFAULT_ITERATIONS`], no friendly name.
    fn default() -> Self {
        Self::new(Format::Modern)
    }
}

impl WriteOptions {
    /// `format` with [`crate::pbes2::DEFAULT_ITERATIONS`] and no friendly name.
    #[must_use]
    pub fn new(format: Format) -> Self {
        Self { format, iterations: pbes2::DEFAULT_ITERATIONS, friendly_name: None }
    }
}

/// How the file's integrity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Integrity {
    /// The password-integrity MAC (RFC 7292 section 4) was present and correct.
    MacVerified,
    /// The file has no MAC; only decryption of the bags checked the password,
    /// and unencrypted bags may have been altered.
    NoMac,
}

/// What [`read()`] found in a PKCS #12 file.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Contents {
    /// The first private key, as DER `PrivateKeyInfo` (RFC 5958), if any.
    pub key_pkcs8_der: Option<Zeroizing<Vec<u8>>>,
    /// Every X.509 certificate, DER, in file order.
    pub certificates: Vec<Vec<u8>>,
    /// The certificate for the key: the one whose `localKeyId` matches the key's,
    /// else the one whose public key matches, else the first.
    pub leaf: Option<Vec<u8>>,
    /// The key's `friendlyName`, else the leaf certificate's.
    pub friendly_name: Option<String>,
    /// Whether a MAC protected the file.
    pub integrity: Integrity,
    /// Every private key in file order, each with its certificate (a file may hold
    /// several, e.g. a keyring's export of every key); the first is the one above.
    pub pairs: Vec<KeyPairFound>,
}

/// One private key of a PKCS #12 file and its certificate.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyPairFound {
    /// The key, DER `PrivateKeyInfo`.
    pub key_pkcs8_der: Zeroizing<Vec<u8>>,
    /// Its certificate, chosen as for [`Contents::leaf`].
    pub leaf: Option<Vec<u8>>,
    /// The key's `friendlyName`, else the certificate's.
    pub friendly_name: Option<String>,
}

impl fmt::Debug for KeyPairFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPairFound")
            .field("key_pkcs8_der", &"<redacted>")
            .field("leaf", &self.leaf.as_ref().map(Vec::len))
            .field("friendly_name", &self.friendly_name)
            .finish()
    }
}

/// One key with its certificate for [`write_all`].
#[derive(Clone, Copy)]
pub struct Bundle<'a> {
    /// The key, DER `PrivateKeyInfo`.
    pub key_pkcs8_der: &'a [u8],
    /// Its certificate, DER.
    pub cert_der: &'a [u8],
    /// The name clients show for it (a BMPString: no characters outside the Basic
    /// Multilingual Plane).
    pub friendly_name: Option<&'a str>,
}

impl fmt::Debug for Bundle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle").field("friendly_name", &self.friendly_name).finish_non_exhaustive()
    }
}

impl fmt::Debug for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contents")
            .field("key_pkcs8_der", &self.key_pkcs8_der.as_ref().map(|_| "<redacted>"))
            .field("certificates", &self.certificates.len())
            .field("leaf", &self.leaf.as_ref().map(Vec::len))
            .field("friendly_name", &self.friendly_name)
            .field("integrity", &self.integrity)
            .finish()
    }
}

/// Writes a PKCS #12 file holding `key_pkcs8_der` (DER `PrivateKeyInfo`), its
/// certificate `cert_der` and the chain `chain_der` (issuer first), protected
/// by `password` as `options` say. See the module documentation for the
/// layout.
///
/// # Errors
/// [`Error::InvalidInput`] if the key or a certificate does not parse or the
/// friendly name is not a BMPString, [`Error::IterationsOutOfRange`] for a bad
/// iteration count, [`Error::Crypto`] if the random number generator fails.
pub fn write(
    key_pkcs8_der: &[u8],
    cert_der: &[u8],
    chain_der: &[Vec<u8>],
    password: &str,
    options: &WriteOptions,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, Error> {
    let bundle = Bundle { key_pkcs8_der, cert_der, friendly_name: options.friendly_name.as_deref() };
    write_all(&[bundle], chain_der, password, options, rng)
}

/// Writes a PKCS #12 file holding several keys, each with its certificate (linked by
/// `localKeyId`, SHA-1 of the certificate, as [`write()`] does for one), and the CA
/// certificates `chain_der` once each; `options.friendly_name` is not used (each bundle
/// names itself).
///
/// # Errors
/// As [`write()`]; [`Error::InvalidInput`] as well for no bundle at all.
pub fn write_all(
    bundles: &[Bundle<'_>],
    chain_der: &[Vec<u8>],
    password: &str,
    options: &WriteOptions,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, Error> {
    let iterations = check_iterations(u64::from(options.iterations))?;
    if bundles.is_empty() {
        return Err(Error::InvalidInput { reason: "there is no key to write" });
    }
    for bundle in bundles {
        pkcs8::PrivateKeyInfoRef::from_der(bundle.key_pkcs8_der)
            .map_err(|_| Error::InvalidInput { reason: "the private key is not a DER PKCS#8 PrivateKeyInfo" })?;
    }
    let leaves = bundles.iter().map(|b| b.cert_der);
    for cert in leaves.clone().chain(chain_der.iter().map(Vec::as_slice)) {
        x509_cert::Certificate::from_der(cert)
            .map_err(|_| Error::InvalidInput { reason: "a certificate is not a DER X.509 certificate" })?;
    }
    let bmp = bmp_password(password);

    // Bag attributes shared by each key and its certificate.
    let mut attributes = Vec::with_capacity(bundles.len());
    for bundle in bundles {
        let local_key_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bundle.cert_der);
        let mut these = vec![AttributeOut {
            attr_id: LOCAL_KEY_ID,
            attr_values: SetOfVec::try_from(vec![Any::encode_from(&OctetString::new(local_key_id.as_ref())?)?])?,
        }];
        if let Some(name) = bundle.friendly_name {
            let mut ucs2 = Vec::with_capacity(name.len() * 2);
            for unit in name.encode_utf16() {
                ucs2.extend_from_slice(&unit.to_be_bytes());
            }
            let bmp_name = BmpString::from_ucs2(ucs2).map_err(|_| Error::InvalidInput {
                reason: "the friendly name has characters outside the Basic Multilingual Plane",
            })?;
            these.push(AttributeOut {
                attr_id: FRIENDLY_NAME,
                attr_values: SetOfVec::try_from(vec![Any::encode_from(&bmp_name)?])?,
            });
        }
        attributes.push(Any::encode_from(&SetOfVec::try_from(these)?)?);
    }

    // The certificates: each leaf with its attributes, then each CA certificate once,
    // without (one that is also a leaf is not repeated).
    let mut cert_bags = Vec::with_capacity(chain_der.len() + bundles.len());
    let mut written: Vec<&[u8]> = Vec::new();
    for (cert, attrs) in leaves.zip(attributes.iter()) {
        let bag = CertBag { cert_id: X509_CERTIFICATE, cert_value: Any::encode_from(&OctetString::new(cert)?)? };
        cert_bags.push(SafeBag {
            bag_id: CERT_BAG,
            bag_value: Any::encode_from(&bag)?,
            bag_attributes: Some(attrs.clone()),
        });
        written.push(cert);
    }
    for cert in chain_der {
        if written.contains(&cert.as_slice()) {
            continue;
        }
        let bag =
            CertBag { cert_id: X509_CERTIFICATE, cert_value: Any::encode_from(&OctetString::new(cert.as_slice())?)? };
        cert_bags.push(SafeBag { bag_id: CERT_BAG, bag_value: Any::encode_from(&bag)?, bag_attributes: None });
        written.push(cert);
    }
    let cert_safe_contents = cert_bags.to_der()?;
    let (cert_algorithm, cert_ciphertext) =
        encrypt(options.format, &cert_safe_contents, password, &bmp, iterations, rng)?;
    let encrypted_data = EncryptedData {
        version: 0,
        encrypted_content_info: EncryptedContentInfo {
            content_type: ID_DATA,
            content_encryption_algorithm: cert_algorithm,
            encrypted_content: Some(OctetString::new(cert_ciphertext)?),
        },
    };

    // The keys, each in a shrouded key bag.
    let mut key_bags = Vec::with_capacity(bundles.len());
    for (bundle, attrs) in bundles.iter().zip(attributes) {
        let (key_algorithm, key_ciphertext) =
            encrypt(options.format, bundle.key_pkcs8_der, password, &bmp, iterations, rng)?;
        let shrouded = pbes2::EncryptedPrivateKeyInfo {
            encryption_algorithm: key_algorithm,
            encrypted_data: OctetString::new(key_ciphertext)?,
        };
        key_bags.push(SafeBag {
            bag_id: SHROUDED_KEY_BAG,
            bag_value: Any::encode_from(&shrouded)?,
            bag_attributes: Some(attrs),
        });
    }
    let key_safe_contents = key_bags.to_der()?;

    let auth_safe = vec![
        ContentInfo { content_type: ID_ENCRYPTED_DATA, content: Some(Any::encode_from(&encrypted_data)?) },
        ContentInfo { content_type: ID_DATA, content: Some(Any::encode_from(&OctetString::new(key_safe_contents)?)?) },
    ]
    .to_der()?;

    // The MAC over the AuthenticatedSafe's encoding (RFC 7292 section 4).
    let (mac_hash, mac_hmac, mac_oid) = match options.format {
        Format::Modern => (&digest::SHA256, hmac::HMAC_SHA256, SHA256),
        Format::Compat => (&digest::SHA1_FOR_LEGACY_USE_ONLY, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SHA1),
    };
    let mac_salt = random_bytes::<SALT_LEN>(rng)?;
    let mac_key = kdf::derive(mac_hash, &bmp, &mac_salt, Purpose::Mac, iterations, mac_hash.output_len());
    let tag = hmac::sign(&hmac::Key::new(mac_hmac, &mac_key), &auth_safe);
    let pfx = Pfx {
        version: 3,
        auth_safe: ContentInfo {
            content_type: ID_DATA,
            content: Some(Any::encode_from(&OctetString::new(auth_safe)?)?),
        },
        mac_data: Some(MacData {
            mac: DigestInfo {
                digest_algorithm: AlgorithmIdentifierOwned { oid: mac_oid, parameters: Some(Any::from(Null)) },
                digest: OctetString::new(tag.as_ref())?,
            },
            mac_salt: OctetString::new(mac_salt.to_vec())?,
            iterations: Some(u64::from(iterations.get())),
        }),
    };
    Ok(pfx.to_der()?)
}

/// Reads a PKCS #12 file (DER or BER) with `password`. See the module
/// documentation for what is supported.
///
/// # Errors
/// [`Error::WrongPassword`] if the MAC or a decryption fails,
/// [`Error::FileHasNoPassword`] if a password was given for a file without one; [`Error::Ber`],
/// [`Error::Malformed`] or [`Error::Invalid`] for input that is not a PKCS #12
/// file; the `Unsupported*` variants, [`Error::IterationsOutOfRange`] and
/// [`Error::TooDeep`] for files we will not process.
pub fn read(p12_der: &[u8], password: &str) -> Result<Contents, Error> {
    let pfx = Pfx::from_der(&ber_to_der(p12_der)?)?;
    if pfx.version != 3 {
        return Err(Error::UnsupportedVersion { version: pfx.version });
    }
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(Error::UnsupportedContentType { oid: pfx.auth_safe.content_type });
    }
    let auth_safe_bytes = octet_string_content(pfx.auth_safe.content.as_ref())?;

    // The empty password has two BMPString encodings (see the module documentation):
    // the MAC picks the one the file was made with; without a MAC both are tried.
    let bmp = bmp_password(password);
    let zero_length: &[u8] = &[];
    let mut candidates: Vec<&[u8]> = vec![&bmp];
    if password.is_empty() {
        candidates.push(zero_length);
    }
    let integrity = match &pfx.mac_data {
        None => Integrity::NoMac,
        Some(mac_data) => {
            let mut opened = None;
            for candidate in &candidates {
                if verify_mac(mac_data, candidate, auth_safe_bytes)? {
                    opened = Some(*candidate);
                    break;
                }
            }
            let Some(opened) = opened else {
                // A password was given for a file that has none: say so.
                if !password.is_empty()
                    && (verify_mac(mac_data, &bmp_password(""), auth_safe_bytes)?
                        || verify_mac(mac_data, zero_length, auth_safe_bytes)?)
                {
                    return Err(Error::FileHasNoPassword);
                }
                return Err(Error::WrongPassword { check: PasswordCheck::Mac });
            };
            candidates = vec![opened];
            Integrity::MacVerified
        }
    };

    let passwords = Passwords { bmp: &candidates, utf8: password.as_bytes(), work: core::cell::Cell::new(0) };
    let auth_safe = Vec::<ContentInfo>::from_der(&ber_to_der(auth_safe_bytes)?)?;
    let mut found = Found::default();
    for content_info in &auth_safe {
        let safe_contents: Zeroizing<Vec<u8>> = match content_info.content_type {
            ID_DATA => Zeroizing::new(octet_string_content(content_info.content.as_ref())?.to_vec()),
            ID_ENCRYPTED_DATA => {
                let any = content_info
                    .content
                    .as_ref()
                    .ok_or(Error::Invalid { reason: "an EncryptedData ContentInfo has no content" })?;
                let (algorithm, ciphertext) = decode_encrypted_data(any)?;
                decrypt(&algorithm, &ciphertext, &passwords, is_safe_contents)?
            }
            oid => return Err(Error::UnsupportedContentType { oid }),
        };
        found.safe_contents(&safe_contents, &passwords, 0)?;
    }

    let several = found.keys.len() > 1;
    let pairs: Vec<KeyPairFound> = found
        .keys
        .into_iter()
        .map(|key| {
            // With several keys, "the first certificate" would pair a key with another
            // key's certificate: only a localKeyId or public-key match counts.
            let leaf = choose_leaf(Some(&key), &found.certificates)
                .filter(|&i| !several || i != 0 || matches_key(&key, found.certificates.get(i)));
            let friendly_name = key
                .friendly_name
                .clone()
                .or_else(|| leaf.and_then(|i| found.certificates.get(i)).and_then(|c| c.friendly_name.clone()));
            KeyPairFound {
                leaf: leaf.and_then(|i| found.certificates.get(i)).map(|c| c.der.clone()),
                key_pkcs8_der: key.pkcs8,
                friendly_name,
            }
        })
        .collect();
    let (key_pkcs8_der, leaf, friendly_name) = match pairs.first() {
        Some(first) => (Some(first.key_pkcs8_der.clone()), first.leaf.clone(), first.friendly_name.clone()),
        None => {
            let leaf = choose_leaf(None, &found.certificates).and_then(|i| found.certificates.get(i));
            (None, leaf.map(|c| c.der.clone()), leaf.and_then(|c| c.friendly_name.clone()))
        }
    };
    Ok(Contents {
        key_pkcs8_der,
        certificates: found.certificates.into_iter().map(|c| c.der).collect(),
        leaf,
        friendly_name,
        integrity,
        pairs,
    })
}

/// The password in both encodings PKCS #12 uses.
struct Passwords<'a> {
    /// BMPString for the RFC 7292 KDF, in the order to try: one encoding, or for an
    /// empty password in a file without a MAC, both (two zero bytes, then none).
    bmp: &'a [&'a [u8]],
    /// UTF-8 for PBES2.
    utf8: &'a [u8],
    /// Key-derivation iterations spent so far, against [`MAX_TOTAL_ITERATIONS`].
    work: core::cell::Cell<u64>,
}

impl Passwords<'_> {
    /// Books `iterations` of key derivation, refusing past the total limit.
    fn spend(&self, iterations: u64) -> Result<(), Error> {
        let total = self.work.get().saturating_add(iterations);
        if total > MAX_TOTAL_ITERATIONS {
            return Err(Error::TooMuchWork { max: MAX_TOTAL_ITERATIONS });
        }
        self.work.set(total);
        Ok(())
    }
}

struct FoundKey {
    pkcs8: Zeroizing<Vec<u8>>,
    local_key_id: Option<Vec<u8>>,
    friendly_name: Option<String>,
}

struct FoundCert {
    der: Vec<u8>,
    local_key_id: Option<Vec<u8>>,
    friendly_name: Option<String>,
}

#[derive(Default)]
struct Found {
    keys: Vec<FoundKey>,
    certificates: Vec<FoundCert>,
}

impl Found {
    /// Walks one `SafeContents` (BER).
    fn safe_contents(&mut self, ber: &[u8], passwords: &Passwords<'_>, depth: usize) -> Result<(), Error> {
        if depth > MAX_BAG_DEPTH {
            return Err(Error::TooDeep { max: MAX_BAG_DEPTH });
        }
        let bags = Vec::<SafeBag>::from_der(&ber_to_der(ber)?)?;
        for bag in bags {
            let (local_key_id, friendly_name) = read_attributes(bag.bag_attributes.as_ref())?;
            match bag.bag_id {
                KEY_BAG => {
                    let pkcs8 = Zeroizing::new(bag.bag_value.to_der()?);
                    pkcs8::PrivateKeyInfoRef::from_der(&pkcs8)
                        .map_err(|_| Error::Invalid { reason: "a keyBag does not hold a PKCS#8 PrivateKeyInfo" })?;
                    self.keys.push(FoundKey { pkcs8, local_key_id, friendly_name });
                }
                SHROUDED_KEY_BAG => {
                    let epki: pbes2::EncryptedPrivateKeyInfo = bag.bag_value.decode_as()?;
                    let pkcs8 =
                        decrypt(&epki.encryption_algorithm, epki.encrypted_data.as_bytes(), passwords, |plain| {
                            pkcs8::PrivateKeyInfoRef::from_der(plain).is_ok()
                        })?;
                    self.keys.push(FoundKey { pkcs8, local_key_id, friendly_name });
                }
                CERT_BAG => {
                    let cert_bag: CertBag = bag.bag_value.decode_as()?;
                    if cert_bag.cert_id != X509_CERTIFICATE {
                        continue; // sdsiCertificate and friends: not for us.
                    }
                    let der = octet_string_content(Some(&cert_bag.cert_value))?.to_vec();
                    self.certificates.push(FoundCert { der, local_key_id, friendly_name });
                }
                SAFE_CONTENTS_BAG => {
                    self.safe_contents(&bag.bag_value.to_der()?, passwords, depth + 1)?;
                }
                // crlBag, secretBag and unknown bags carry nothing we return.
                _ => {}
            }
        }
        Ok(())
    }
}

/// The certificate belongs to the key by `localKeyId` or public key.
fn matches_key(key: &FoundKey, cert: Option<&FoundCert>) -> bool {
    let Some(cert) = cert else { return false };
    if key.local_key_id.is_some() && key.local_key_id == cert.local_key_id {
        return true;
    }
    public_key_of(&key.pkcs8).is_some_and(|public| certificate_public_key(&cert.der).as_deref() == Some(&public[..]))
}

/// Picks the leaf: `localKeyId` match, else public-key match, else the first.
fn choose_leaf(key: Option<&FoundKey>, certificates: &[FoundCert]) -> Option<usize> {
    if let Some(key) = key {
        if let Some(id) = &key.local_key_id {
            if let Some(i) = certificates.iter().position(|c| c.local_key_id.as_ref() == Some(id)) {
                return Some(i);
            }
        }
        if let Some(public) = public_key_of(&key.pkcs8) {
            if let Some(i) =
                certificates.iter().position(|c| certificate_public_key(&c.der).as_deref() == Some(&public[..]))
            {
                return Some(i);
            }
        }
    }
    (!certificates.is_empty()).then_some(0)
}

/// The public key of a PKCS #8 key in the form the certificate's
/// `subjectPublicKey` BIT STRING holds it.
fn public_key_of(pkcs8_der: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::signature::{self, KeyPair};
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8_der).ok()?;
    match info.algorithm.oid {
        RSA_ENCRYPTION => signature::RsaKeyPair::from_pkcs8(pkcs8_der).ok().map(|k| k.public_key().as_ref().to_vec()),
        EC_PUBLIC_KEY => [
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        ]
        .into_iter()
        .find_map(|alg| signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8_der).ok())
        .map(|k| k.public_key().as_ref().to_vec()),
        ED25519 => signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8_der)
            .ok()
            .map(|k| k.public_key().as_ref().to_vec()),
        _ => None,
    }
}

/// The `subjectPublicKey` bits of a DER certificate.
fn certificate_public_key(cert_der: &[u8]) -> Option<Vec<u8>> {
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    Some(cert.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes().to_vec())
}

/// Reads `localKeyId` and `friendlyName` from a bag's attribute SET.
fn read_attributes(set: Option<&Any>) -> Result<(Option<Vec<u8>>, Option<String>), Error> {
    let mut local_key_id = None;
    let mut friendly_name = None;
    let Some(set) = set else {
        return Ok((None, None));
    };
    if set.tag() != Tag::Set {
        return Err(Error::Invalid { reason: "bag attributes are not a SET" });
    }
    let mut reader = SliceReader::new(set.value())?;
    while !der::Reader::is_finished(&reader) {
        let attribute = Attribute::decode(&mut reader)?;
        if attribute.attr_values.tag() != Tag::Set {
            return Err(Error::Invalid { reason: "attribute values are not a SET" });
        }
        let mut values = SliceReader::new(attribute.attr_values.value())?;
        let Ok(first) = Any::decode(&mut values) else {
            continue;
        };
        match attribute.attr_id {
            LOCAL_KEY_ID if first.tag() == Tag::OctetString => {
                local_key_id = Some(first.value().to_vec());
            }
            FRIENDLY_NAME => {
                // Windows ends the BMPString with a NUL character, which is no part of the name.
                friendly_name =
                    first.decode_as::<BmpString>().ok().map(|s| s.to_string().trim_end_matches('\0').to_owned());
            }
            _ => {}
        }
    }
    Ok((local_key_id, friendly_name))
}

/// The contents of an `Any` that must be a primitive OCTET STRING.
fn octet_string_content(any: Option<&Any>) -> Result<&[u8], Error> {
    match any {
        Some(any) if any.tag() == Tag::OctetString => Ok(any.value()),
        _ => Err(Error::Invalid { reason: "expected an OCTET STRING" }),
    }
}

/// Decodes an `EncryptedData` (RFC 5652 section 8) and returns its algorithm
/// and ciphertext. `encryptedContent` is `[0] IMPLICIT OCTET STRING`; BER
/// producers send it constructed, as a run of OCTET STRING segments.
fn decode_encrypted_data(any: &Any) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), Error> {
    if any.tag() != Tag::Sequence {
        return Err(Error::Invalid { reason: "EncryptedData is not a SEQUENCE" });
    }
    let mut reader = SliceReader::new(any.value())?;
    let _version = u8::decode(&mut reader)?;
    let info = Any::decode(&mut reader)?;
    // unprotectedAttrs [1] may follow; we do not use it.
    if info.tag() != Tag::Sequence {
        return Err(Error::Invalid { reason: "EncryptedContentInfo is not a SEQUENCE" });
    }
    let mut reader = SliceReader::new(info.value())?;
    let content_type = ObjectIdentifier::decode(&mut reader)?;
    if content_type != ID_DATA {
        return Err(Error::UnsupportedContentType { oid: content_type });
    }
    let algorithm = AlgorithmIdentifierOwned::decode(&mut reader)?;
    let content =
        Any::decode(&mut reader).map_err(|_| Error::Invalid { reason: "EncryptedData has no encrypted content" })?;
    let ciphertext = match content.tag() {
        Tag::ContextSpecific { constructed: false, number: TagNumber(0) } => content.value().to_vec(),
        Tag::ContextSpecific { constructed: true, number: TagNumber(0) } => {
            let mut segments = SliceReader::new(content.value())?;
            let mut joined = Vec::with_capacity(content.value().len());
            while !der::Reader::is_finished(&segments) {
                let segment = OctetString::decode(&mut segments)?;
                joined.extend_from_slice(segment.as_bytes());
            }
            joined
        }
        _ => return Err(Error::Invalid { reason: "encryptedContent is not [0] IMPLICIT OCTET STRING" }),
    };
    Ok((algorithm, ciphertext))
}

/// Checks an iteration count against [`crate::pbes2::MAX_ITERATIONS`].
fn check_iterations(iterations: u64) -> Result<NonZeroU32, Error> {
    pbes2::check_iterations(iterations)
        .map_err(|_| Error::IterationsOutOfRange { iterations, max: pbes2::MAX_ITERATIONS })
}

/// The hash for a MAC or digest algorithm identifier.
fn mac_hash(oid: ObjectIdentifier) -> Result<(&'static digest::Algorithm, hmac::Algorithm), Error> {
    Ok(match oid {
        SHA1 => (&digest::SHA1_FOR_LEGACY_USE_ONLY, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        SHA224 => (&digest::SHA224, hmac::HMAC_SHA224),
        SHA256 => (&digest::SHA256, hmac::HMAC_SHA256),
        SHA384 => (&digest::SHA384, hmac::HMAC_SHA384),
        SHA512 => (&digest::SHA512, hmac::HMAC_SHA512),
        oid => return Err(Error::UnsupportedAlgorithm { oid }),
    })
}

/// Verifies the MAC (RFC 7292 section 4) in constant time.
fn verify_mac(mac_data: &MacData, bmp: &[u8], data: &[u8]) -> Result<bool, Error> {
    let (hash, hmac_alg) = mac_hash(mac_data.mac.digest_algorithm.oid)?;
    let iterations = check_iterations(mac_data.iterations.unwrap_or(1))?;
    let key = kdf::derive(hash, bmp, mac_data.mac_salt.as_bytes(), Purpose::Mac, iterations, hash.output_len());
    let key = hmac::Key::new(hmac_alg, &key);
    Ok(hmac::verify(&key, data, mac_data.mac.digest.as_bytes()).is_ok())
}

/// One of the RFC 7292 appendix C PBE schemes.
#[derive(Clone, Copy)]
enum LegacyPbe {
    TripleDes,
    TwoKeyTripleDes,
    Rc2 { key_len: usize },
}

impl LegacyPbe {
    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            PBE_SHA1_3DES => Some(Self::TripleDes),
            PBE_SHA1_2DES => Some(Self::TwoKeyTripleDes),
            PBE_SHA1_RC2_128 => Some(Self::Rc2 { key_len: 16 }),
            PBE_SHA1_RC2_40 => Some(Self::Rc2 { key_len: 5 }),
            _ => None,
        }
    }

    /// Derives key and IV (RFC 7292 appendix B.2, SHA-1) and keys the cipher.
    fn cipher(
        self,
        bmp: &[u8],
        salt: &[u8],
        iterations: NonZeroU32,
    ) -> Result<(LegacyCipher, Zeroizing<Vec<u8>>), Error> {
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        let key_len = match self {
            Self::TripleDes => 24,
            Self::TwoKeyTripleDes => 16,
            Self::Rc2 { key_len } => key_len,
        };
        let key = kdf::derive(sha1, bmp, salt, Purpose::Key, iterations, key_len);
        let iv = kdf::derive(sha1, bmp, salt, Purpose::Iv, iterations, 8);
        let cipher = match self {
            Self::TripleDes | Self::TwoKeyTripleDes => LegacyCipher::triple_des(&key),
            Self::Rc2 { key_len } => LegacyCipher::rc2(&key, key_len * 8),
        }
        .map_err(|_| Error::Crypto { operation: "set up a legacy block cipher" })?;
        Ok((cipher, iv))
    }
}

/// Whether `plain` is a `SafeContents` (what an `EncryptedData` must decrypt to).
fn is_safe_contents(plain: &[u8]) -> bool {
    ber_to_der(plain).is_ok_and(|der| Vec::<SafeBag>::from_der(&der).is_ok())
}

/// Decrypts a bag or `EncryptedData` with PBES2 or an RFC 7292 PBE scheme; `valid`
/// says whether the plaintext is what was expected (else the password was wrong).
/// With two candidate BMPString encodings, the second is tried if the first fails.
fn decrypt(
    algorithm: &AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    passwords: &Passwords<'_>,
    valid: impl Fn(&[u8]) -> bool,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let wrong = Error::WrongPassword { check: PasswordCheck::Decryption };
    if algorithm.oid == pbes2::PBES2 {
        passwords.spend(pbes2::iteration_count(algorithm)?)?;
        let plain = pbes2::decrypt(algorithm, ciphertext, passwords.utf8)?;
        return if valid(&plain) { Ok(plain) } else { Err(wrong) };
    }
    let scheme = LegacyPbe::from_oid(algorithm.oid).ok_or(Error::UnsupportedAlgorithm { oid: algorithm.oid })?;
    let params: Pkcs12PbeParams =
        algorithm.parameters.as_ref().ok_or(Error::Invalid { reason: "PBE parameters are missing" })?.decode_as()?;
    let iterations = check_iterations(params.iterations)?;
    for bmp in passwords.bmp {
        passwords.spend(params.iterations)?;
        let (cipher, iv) = scheme.cipher(bmp, params.salt.as_bytes(), iterations)?;
        if let Ok(plain) = cipher.cbc_decrypt(&iv, ciphertext) {
            if valid(&plain) {
                return Ok(plain);
            }
        }
    }
    Err(wrong)
}

/// Encrypts `plaintext` for `format`; returns the algorithm and ciphertext.
fn encrypt(
    format: Format,
    plaintext: &[u8],
    password: &str,
    bmp: &[u8],
    iterations: NonZeroU32,
    rng: &dyn SecureRandom,
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), Error> {
    match format {
        Format::Modern => Ok(pbes2::encrypt(plaintext, password.as_bytes(), iterations.get(), rng)?),
        Format::Compat => {
            // `compat` exists for gpgsm 2.2 among others: draw salts until gpgsm's KDF
            // derives the same 3DES key as RFC 7292 (see `kdf::derive_noting_gpgsm`).
            let mut salt = random_bytes::<SALT_LEN>(rng)?;
            for _ in 0..32 {
                let (_, gpgsm_agrees) = kdf::derive_noting_gpgsm(
                    &digest::SHA1_FOR_LEGACY_USE_ONLY,
                    bmp,
                    &salt,
                    kdf::Purpose::Key,
                    iterations,
                    24,
                );
                if gpgsm_agrees {
                    break;
                }
                salt = random_bytes::<SALT_LEN>(rng)?;
            }
            let (cipher, iv) = LegacyPbe::TripleDes.cipher(bmp, &salt, iterations)?;
            let ciphertext = cipher
                .cbc_encrypt(&iv, plaintext)
                .map_err(|_| Error::Crypto { operation: "encrypt with triple DES" })?;
            let params =
                Pkcs12PbeParams { salt: OctetString::new(salt.to_vec())?, iterations: u64::from(iterations.get()) };
            Ok((
                AlgorithmIdentifierOwned { oid: PBE_SHA1_3DES, parameters: Some(Any::encode_from(&params)?) },
                ciphertext,
            ))
        }
    }
}

fn random_bytes<const N: usize>(rng: &dyn SecureRandom) -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    rng.fill(&mut out).map_err(|_| Error::Crypto { operation: "generate random bytes" })?;
    Ok(out)
}

#[cfg(test)]
mod vector_tests;

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use std::path::Path;
    use std::process::{Command, Output};

    const EXPECTED_PEM: &str = include_str!("../tests/data/pkcs12-clients/ValidCertificatePathTest1EE.pem");
    const CA_PEM: &str = include_str!("../tests/data/pkcs12-clients/GoodCACert.crt");
    const CLIENT_FILES: [(&str, &[u8]); 4] = [
        ("firefox", include_bytes!("../tests/data/pkcs12-clients/ValidCertificatePathTest1EE_firefox.p12")),
        ("macos", include_bytes!("../tests/data/pkcs12-clients/ValidCertificatePathTest1EE_macos.p12")),
        ("windows_aes", include_bytes!("../tests/data/pkcs12-clients/ValidCertificatePathTest1EE_windows_aes.p12.pfx")),
        (
            "windows_tdes",
            include_bytes!("../tests/data/pkcs12-clients/ValidCertificatePathTest1EE_windows_tdes.p12.pfx"),
        ),
    ];
    /// Fast iteration count for tests that do not measure the default.
    const TEST_ITERATIONS: u32 = 2048;

    /// The DER of the PEM blocks labelled `label` in `text` (OpenSSL puts "Bag
    /// Attributes" text before each).
    fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
        crate::pem::decode_labelled(text.as_bytes(), &[label]).unwrap_or_default()
    }

    fn expected_key() -> Vec<u8> {
        pem_blocks(EXPECTED_PEM, "PRIVATE KEY").remove(0)
    }

    fn expected_cert() -> Vec<u8> {
        pem_blocks(EXPECTED_PEM, "CERTIFICATE").remove(0)
    }

    fn ca_cert() -> Vec<u8> {
        pem_blocks(CA_PEM, "CERTIFICATE").remove(0)
    }

    fn options(format: Format) -> WriteOptions {
        WriteOptions { format, iterations: TEST_ITERATIONS, friendly_name: Some("Test Ü".to_owned()) }
    }

    fn ours(format: Format, password: &str) -> Vec<u8> {
        let rng = SystemRandom::new();
        write(&expected_key(), &expected_cert(), &[ca_cert()], password, &options(format), &rng).unwrap()
    }

    fn run(program: &str, args: &[&str], dir: &Path) -> Output {
        let out = Command::new(program)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (CI installs it): {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    #[test]
    fn reads_client_files() {
        for (name, file) in CLIENT_FILES {
            let contents = read(file, "password").unwrap_or_else(|e| panic!("{name}: {e}"));
            let key = contents.key_pkcs8_der.as_ref().expect(name);
            assert_eq!(public_key_of(key), public_key_of(&expected_key()), "{name}: wrong key");
            assert_eq!(contents.leaf.as_deref(), Some(&expected_cert()[..]), "{name}");
            assert!(contents.certificates.contains(&expected_cert()), "{name}");
            assert_eq!(contents.integrity, Integrity::MacVerified, "{name}");
            assert!(matches!(read(file, "wrong"), Err(Error::WrongPassword { check: PasswordCheck::Mac })), "{name}");
        }
    }

    #[test]
    fn round_trip_both_formats() {
        for format in [Format::Modern, Format::Compat] {
            let p12 = ours(format, "pässwörd");
            let contents = read(&p12, "pässwörd").unwrap();
            assert_eq!(contents.key_pkcs8_der.as_deref().map(Vec::as_slice), Some(&expected_key()[..]));
            assert_eq!(contents.certificates, vec![expected_cert(), ca_cert()]);
            assert_eq!(contents.leaf, Some(expected_cert()));
            assert_eq!(contents.friendly_name.as_deref(), Some("Test Ü"));
            assert_eq!(contents.integrity, Integrity::MacVerified);
            assert!(!format!("{contents:?}").contains("30 82"));
            assert!(matches!(read(&p12, "passwörd"), Err(Error::WrongPassword { check: PasswordCheck::Mac })));
        }
    }

    #[test]
    fn empty_password_and_no_friendly_name() {
        let rng = SystemRandom::new();
        let p12 = write(
            &expected_key(),
            &expected_cert(),
            &[],
            "",
            &WriteOptions { iterations: 1, ..WriteOptions::new(Format::Compat) },
            &rng,
        )
        .unwrap();
        let contents = read(&p12, "").unwrap();
        assert_eq!(contents.certificates.len(), 1);
        assert_eq!(contents.friendly_name, None);
    }

    #[test]
    fn write_rejects_bad_input() {
        let rng = SystemRandom::new();
        let opts = options(Format::Modern);
        let key = expected_key();
        let cert = expected_cert();
        assert!(matches!(write(b"junk", &cert, &[], "pw", &opts, &rng), Err(Error::InvalidInput { .. })));
        assert!(matches!(write(&key, b"junk", &[], "pw", &opts, &rng), Err(Error::InvalidInput { .. })));
        assert!(matches!(write(&key, &cert, &[b"junk".to_vec()], "pw", &opts, &rng), Err(Error::InvalidInput { .. })));
        let emoji = WriteOptions { friendly_name: Some("🔑".to_owned()), ..options(Format::Modern) };
        assert!(matches!(write(&key, &cert, &[], "pw", &emoji, &rng), Err(Error::InvalidInput { .. })));
        for iterations in [0, pbes2::MAX_ITERATIONS + 1] {
            let o = WriteOptions { iterations, ..options(Format::Compat) };
            assert!(matches!(write(&key, &cert, &[], "pw", &o, &rng), Err(Error::IterationsOutOfRange { .. })));
        }
    }

    #[test]
    fn garbage_truncation_and_tampering_are_errors() {
        assert!(read(b"", "pw").is_err());
        assert!(read(b"not a pkcs12 file at all", "pw").is_err());
        assert!(read(&[0x30, 0x80, 0x30, 0x80], "pw").is_err());
        for format in [Format::Modern, Format::Compat] {
            let p12 = ours(format, "pw");
            for cut in (0..p12.len()).step_by(97) {
                assert!(read(&p12[..cut], "pw").is_err(), "cut at {cut}");
            }
            for i in (0..p12.len()).step_by(11) {
                let mut bad = p12.clone();
                bad[i] ^= 0x01;
                assert!(read(&bad, "pw").is_err(), "flip at {i}");
            }
        }
        // Client files too, including the BER one.
        for (name, file) in CLIENT_FILES {
            for cut in [1, 20, file.len() / 2, file.len() - 1] {
                assert!(read(&file[..cut], "password").is_err(), "{name} cut {cut}");
            }
        }
    }

    /// Our files (both formats, with and without a MAC, so that mutations get past the
    /// MAC to the bags) and the client files, mutated by `certdesk_test_support::mutation`: `read` returns
    /// without panicking or hanging (the stable stand-in for the `pkcs12_read` fuzz
    /// target). Firefox's file (600000 iterations) is only truncated, to keep it fast.
    #[test]
    fn mutated_files_never_panic() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let mut seeds: Vec<(Vec<u8>, &str)> = Vec::new();
        for format in [Format::Modern, Format::Compat] {
            let p12 = ours(format, "pw");
            let mut pfx = Pfx::from_der(&p12).unwrap();
            pfx.mac_data = None;
            let unprotected = pfx.to_der().unwrap();
            assert_eq!(read(&unprotected, "pw").unwrap().integrity, Integrity::NoMac);
            seeds.push((p12, "pw"));
            seeds.push((unprotected, "pw"));
        }
        for (name, file) in CLIENT_FILES {
            if name != "firefox" {
                seeds.push((file.to_vec(), "password"));
            }
        }
        let mut tried = never_panics("PKCS #12", &hostile(), |b| read(b, "pw"));
        for (i, (seed, password)) in seeds.iter().enumerate() {
            tried += never_panics("PKCS #12", &mutants(seed, 300, i as u64), |b| read(b, password));
        }
        let firefox = CLIENT_FILES[0].1;
        tried += never_panics("PKCS #12", &mutants(firefox, 0, 9), |b| read(b, "password"));
        eprintln!("PKCS #12: {tried} mutated inputs");
    }

    #[test]
    fn hostile_iteration_count_is_refused() {
        let p12 = ours(Format::Compat, "pw");
        let mut pfx = Pfx::from_der(&p12).unwrap();
        pfx.mac_data.as_mut().unwrap().iterations = Some(u64::from(u32::MAX));
        assert!(matches!(read(&pfx.to_der().unwrap(), "pw"), Err(Error::IterationsOutOfRange { .. })));
    }

    #[test]
    fn total_work_is_capped() {
        let passwords = Passwords { bmp: &[&[0, 0]], utf8: b"", work: core::cell::Cell::new(0) };
        for _ in 0..4 {
            passwords.spend(u64::from(pbes2::MAX_ITERATIONS)).unwrap();
        }
        assert!(matches!(passwords.spend(1), Err(Error::TooMuchWork { .. })));
    }

    #[test]
    fn openssl_reads_ours() {
        let dir = tempfile::tempdir().unwrap();
        for (format, name) in [(Format::Modern, "modern.p12"), (Format::Compat, "compat.p12")] {
            std::fs::write(dir.path().join(name), ours(format, "s3cret")).unwrap();
            let out = run("openssl", &["pkcs12", "-in", name, "-passin", "pass:s3cret", "-nodes"], dir.path());
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("-----BEGIN PRIVATE KEY-----"), "{name}: {text}");
            assert_eq!(pem_blocks(&text, "CERTIFICATE"), [expected_cert(), ca_cert()]);
            assert_eq!(pem_blocks(&text, "PRIVATE KEY"), [expected_key()]);
            assert!(text.contains("friendlyName: Test "), "{name}: {text}");
        }
    }

    /// A file "without a password" as different producers make it: the certificates in
    /// an `EncryptedData` and the key shrouded, both 3DES keyed from `bags_bmp` (one
    /// encoding of the empty password), and a SHA-1 MAC keyed from `mac_bmp`, if any.
    fn empty_password_file(bags_bmp: &[u8], mac_bmp: Option<&[u8]>) -> Vec<u8> {
        let rng = SystemRandom::new();
        let iterations = NonZeroU32::new(TEST_ITERATIONS).unwrap();
        let cert_bag = CertBag {
            cert_id: X509_CERTIFICATE,
            cert_value: Any::encode_from(&OctetString::new(expected_cert()).unwrap()).unwrap(),
        };
        let certs =
            vec![SafeBag { bag_id: CERT_BAG, bag_value: Any::encode_from(&cert_bag).unwrap(), bag_attributes: None }];
        let (algorithm, ciphertext) =
            encrypt(Format::Compat, &certs.to_der().unwrap(), "", bags_bmp, iterations, &rng).unwrap();
        let encrypted_data = EncryptedData {
            version: 0,
            encrypted_content_info: EncryptedContentInfo {
                content_type: ID_DATA,
                content_encryption_algorithm: algorithm,
                encrypted_content: Some(OctetString::new(ciphertext).unwrap()),
            },
        };
        let (algorithm, ciphertext) = encrypt(Format::Compat, &expected_key(), "", bags_bmp, iterations, &rng).unwrap();
        let shrouded = pbes2::EncryptedPrivateKeyInfo {
            encryption_algorithm: algorithm,
            encrypted_data: OctetString::new(ciphertext).unwrap(),
        };
        let keys = vec![SafeBag {
            bag_id: SHROUDED_KEY_BAG,
            bag_value: Any::encode_from(&shrouded).unwrap(),
            bag_attributes: None,
        }];
        let auth_safe = vec![
            ContentInfo { content_type: ID_ENCRYPTED_DATA, content: Some(Any::encode_from(&encrypted_data).unwrap()) },
            ContentInfo {
                content_type: ID_DATA,
                content: Some(Any::encode_from(&OctetString::new(keys.to_der().unwrap()).unwrap()).unwrap()),
            },
        ]
        .to_der()
        .unwrap();
        let mac_data = mac_bmp.map(|bmp| {
            let salt = [9u8; 8];
            let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
            let key = kdf::derive(sha1, bmp, &salt, Purpose::Mac, iterations, 20);
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key), &auth_safe);
            MacData {
                mac: DigestInfo {
                    digest_algorithm: AlgorithmIdentifierOwned { oid: SHA1, parameters: Some(Any::from(Null)) },
                    digest: OctetString::new(tag.as_ref()).unwrap(),
                },
                mac_salt: OctetString::new(salt.to_vec()).unwrap(),
                iterations: Some(u64::from(TEST_ITERATIONS)),
            }
        });
        let auth_safe = Any::encode_from(&OctetString::new(auth_safe).unwrap()).unwrap();
        Pfx { version: 3, auth_safe: ContentInfo { content_type: ID_DATA, content: Some(auth_safe) }, mac_data }
            .to_der()
            .unwrap()
    }

    /// Both encodings of the empty password (two zero bytes, none), with and without a
    /// MAC, open with `""`; a password given for such a file is refused, and so is a
    /// file whose MAC and bags disagree on the encoding (OpenSSL refuses it too).
    #[test]
    fn both_encodings_of_the_empty_password() {
        let terminator: &[u8] = &[0, 0];
        let zero_length: &[u8] = &[];
        let opening = [
            ("00 00, MAC 00 00", terminator, Some(terminator), Integrity::MacVerified),
            ("zero-length, MAC zero-length", zero_length, Some(zero_length), Integrity::MacVerified),
            ("00 00, no MAC", terminator, None, Integrity::NoMac),
            ("zero-length, no MAC", zero_length, None, Integrity::NoMac),
        ];
        for (name, bags, mac, integrity) in opening {
            let p12 = empty_password_file(bags, mac);
            let contents = read(&p12, "").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(contents.key_pkcs8_der.as_deref().map(Vec::as_slice), Some(&expected_key()[..]), "{name}");
            assert_eq!(contents.leaf, Some(expected_cert()), "{name}");
            assert_eq!(contents.integrity, integrity, "{name}");
            let wrong = read(&p12, "password");
            match mac {
                Some(_) => assert!(matches!(wrong, Err(Error::FileHasNoPassword)), "{name}: {wrong:?}"),
                None => assert!(
                    matches!(wrong, Err(Error::WrongPassword { check: PasswordCheck::Decryption })),
                    "{name}: {wrong:?}"
                ),
            }
        }
        let mixed = empty_password_file(zero_length, Some(terminator));
        let result = read(&mixed, "");
        assert!(matches!(result, Err(Error::WrongPassword { check: PasswordCheck::Decryption })), "{result:?}");
        // A protected file read with the empty password is a wrong password.
        let protected = ours(Format::Compat, "pw");
        assert!(matches!(read(&protected, ""), Err(Error::WrongPassword { check: PasswordCheck::Mac })));
    }

    /// What `openssl pkcs12 -export -passout pass:` writes in each of its modes opens
    /// with the empty password (OpenSSL encodes it as two zero bytes).
    #[test]
    fn reads_openssl_files_without_password() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("k.pem"),
            der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &expected_key()).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("c.pem"), EXPECTED_PEM).unwrap();
        let variants: [(&str, &[&str], Integrity); 4] = [
            ("default.p12", &[], Integrity::MacVerified),
            ("legacy.p12", &["-legacy"], Integrity::MacVerified),
            ("legacy-nomac.p12", &["-legacy", "-nomac"], Integrity::NoMac),
            ("plain-nomac.p12", &["-keypbe", "NONE", "-certpbe", "NONE", "-nomac"], Integrity::NoMac),
        ];
        for (name, extra, integrity) in variants {
            let mut args =
                vec!["pkcs12", "-export", "-inkey", "k.pem", "-in", "c.pem", "-passout", "pass:", "-out", name];
            args.extend_from_slice(extra);
            run("openssl", &args, dir.path());
            let p12 = std::fs::read(dir.path().join(name)).unwrap();
            let contents = read(&p12, "").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(contents.key_pkcs8_der.as_deref().map(Vec::as_slice), Some(&expected_key()[..]), "{name}");
            assert_eq!(contents.leaf, Some(expected_cert()), "{name}");
            assert_eq!(contents.integrity, integrity, "{name}");
            if name != "plain-nomac.p12" {
                assert!(read(&p12, "password").is_err(), "{name}");
            }
        }
    }

    #[test]
    fn reads_openssl_output() {
        let dir = tempfile::tempdir().unwrap();
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=t",
                "-days",
                "1",
                "-keyout",
                "k.pem",
                "-out",
                "c.pem",
            ],
            dir.path(),
        );
        let key = pem_blocks(&std::fs::read_to_string(dir.path().join("k.pem")).unwrap(), "PRIVATE KEY").remove(0);
        let cert = pem_blocks(&std::fs::read_to_string(dir.path().join("c.pem")).unwrap(), "CERTIFICATE").remove(0);
        let variants: [(&str, &[&str], Integrity); 5] = [
            ("default.p12", &[], Integrity::MacVerified),
            (
                "3des.p12",
                &["-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"],
                Integrity::MacVerified,
            ),
            ("legacy.p12", &["-legacy"], Integrity::MacVerified),
            (
                "sha512.p12",
                &["-macalg", "sha512", "-certpbe", "AES-128-CBC", "-keypbe", "AES-192-CBC"],
                Integrity::MacVerified,
            ),
            ("nomac.p12", &["-nomac"], Integrity::NoMac),
        ];
        for (name, extra, integrity) in variants {
            let mut args = vec![
                "pkcs12", "-export", "-inkey", "k.pem", "-in", "c.pem", "-passout", "pass:pw", "-name", "friendly",
                "-out", name,
            ];
            args.extend_from_slice(extra);
            run("openssl", &args, dir.path());
            let p12 = std::fs::read(dir.path().join(name)).unwrap();
            let contents = read(&p12, "pw").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(contents.key_pkcs8_der.as_deref().map(Vec::as_slice), Some(&key[..]), "{name}");
            assert_eq!(contents.leaf.as_deref(), Some(&cert[..]), "{name}");
            assert_eq!(contents.friendly_name.as_deref(), Some("friendly"), "{name}");
            assert_eq!(contents.integrity, integrity, "{name}");
            assert!(read(&p12, "wrong").is_err(), "{name}");
        }
    }

    #[test]
    fn keytool_lists_ours() {
        let dir = tempfile::tempdir().unwrap();
        for (format, name) in [(Format::Modern, "modern.p12"), (Format::Compat, "compat.p12")] {
            std::fs::write(dir.path().join(name), ours(format, "s3cret")).unwrap();
            let out = run(
                "keytool",
                &["-list", "-keystore", name, "-storetype", "PKCS12", "-storepass", "s3cret"],
                dir.path(),
            );
            let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
            assert!(text.contains("privatekeyentry"), "{name}: {text}");
        }
    }

    #[test]
    fn pk12util_lists_ours() {
        let dir = tempfile::tempdir().unwrap();
        for (format, name) in [(Format::Modern, "modern.p12"), (Format::Compat, "compat.p12")] {
            std::fs::write(dir.path().join(name), ours(format, "s3cret")).unwrap();
            let out = run("pk12util", &["-l", name, "-W", "s3cret"], dir.path());
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("Key(shrouded)"), "{name}: {text}");
            assert!(text.contains("Valid EE Certificate Test1"), "{name}: {text}");
        }
    }

    #[test]
    fn gpgsm_imports_compat() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("gnupg");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(home.join("gpg-agent.conf"), "allow-loopback-pinentry\n").unwrap();
        std::fs::write(dir.path().join("compat.p12"), ours(Format::Compat, "s3cret")).unwrap();
        let home_str = home.to_str().unwrap();
        // gpgsm takes the PKCS#12 passphrase through the agent's loopback
        // inquiry, which `--passphrase-fd` answers (`--passphrase` does not).
        let mut child = Command::new("gpgsm")
            .args([
                "--homedir",
                home_str,
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                "0",
                "--import",
                "compat.p12",
            ])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gpgsm must be installed (CI installs it)");
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
        }
        let import = child.wait_with_output().unwrap();
        let import_log = String::from_utf8_lossy(&import.stderr);
        assert!(import.status.success(), "{import_log}");
        assert!(import_log.contains("secret keys imported: 1"), "{import_log}");
        let out = run("gpgsm", &["--homedir", home_str, "--list-secret-keys"], dir.path());
        let text = String::from_utf8_lossy(&out.stdout);
        let _ = Command::new("gpgconf").args(["--homedir", home_str, "--kill", "all"]).output();
        assert!(text.contains("Valid EE Certificate Test1"), "{text}");
    }
}
