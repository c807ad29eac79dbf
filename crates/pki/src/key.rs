//! Key types: generation, PKCS#8 import/export, the [`Signer`] trait and signature
//! verification.
//!
//! All cryptography is aws-lc-rs (constant-time, FIPS-capable). Subscriber keys follow
//! CA/B Forum S/MIME BR 6.1.5: RSA of at least 2048 bits (modulus a multiple of 8),
//! ECDSA on P-256/P-384/P-521, or Ed25519.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use der::asn1::{ObjectIdentifier, UintRef};
use der::{Decode, Reader, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::oid;

/// Errors from key handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a private key we can read.
    #[error("the private key could not be read: {reason}")]
    InvalidPrivateKey {
        /// What was wrong.
        reason: String,
    },
    /// The public key is not one we accept.
    #[error("the public key is not acceptable: {reason}")]
    UnacceptablePublicKey {
        /// What was wrong.
        reason: String,
    },
    /// The device holding the key (a PKCS#11 token) failed or is not there.
    #[error("the key's token failed: {reason}")]
    Device {
        /// What the device said.
        reason: String,
    },
    /// The signature algorithm is not supported for this key.
    #[error("unsupported signature algorithm {oid} for a {key} key")]
    UnsupportedSignatureAlgorithm {
        /// The algorithm's OID.
        oid: String,
        /// The key kind.
        key: String,
    },
    /// A signature did not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// Key generation or signing failed inside the crypto library.
    #[error("the cryptographic library failed to {operation}")]
    Crypto {
        /// What was being done.
        operation: &'static str,
    },
}

/// A key algorithm certdesk can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA with a 3072-bit modulus (default subscriber key: encrypts in every client).
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384 (default CA key).
    P384,
}

impl KeyAlgorithm {
    /// The name used on the command line and in the config.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa3072 => "rsa3072",
            KeyAlgorithm::Rsa4096 => "rsa4096",
            KeyAlgorithm::P256 => "p256",
            KeyAlgorithm::P384 => "p384",
        }
    }

    /// Parses a name given by [`KeyAlgorithm::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Rsa3072, Self::Rsa4096, Self::P256, Self::P384].into_iter().find(|alg| alg.name() == name)
    }
}

/// The kind and strength of a public key, read from a SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicKeyKind {
    /// RSA with the modulus length in bits.
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
    /// ECDSA on a named curve.
    Ec(Curve),
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl PublicKeyKind {
    /// Whether the key can be used for key transport or key agreement in S/MIME.
    pub fn can_encrypt(self) -> bool {
        !matches!(self, PublicKeyKind::Ed25519)
    }
}

impl std::fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            PublicKeyKind::Ec(curve) => write!(f, "ECDSA {}", curve.name()),
            PublicKeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A NIST curve accepted by CA/B Forum S/MIME BR 6.1.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// secp256r1.
    P256,
    /// secp384r1.
    P384,
    /// secp521r1.
    P521,
}

impl Curve {
    /// The curve's common name.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            o if o == oid::SECP256R1 => Some(Curve::P256),
            o if o == oid::SECP384R1 => Some(Curve::P384),
            o if o == oid::SECP521R1 => Some(Curve::P521),
            _ => None,
        }
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1).
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// A public key that passed the strength rules of CA/B Forum S/MIME BR 6.1.5/6.1.6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedPublicKey {
    spki: SubjectPublicKeyInfoOwned,
    kind: PublicKeyKind,
}

impl AcceptedPublicKey {
    /// Checks a SubjectPublicKeyInfo against the key rules: RSA at least 2048 bits and a
    /// multiple of 8 with an odd exponent of at least 65537; ECDSA on P-256, P-384 or
    /// P-521 with a valid point; or Ed25519.
    pub fn from_spki(spki: SubjectPublicKeyInfoOwned) -> Result<Self, KeyError> {
        let kind = classify(&spki)?;
        let bad = |reason: String| KeyError::UnacceptablePublicKey { reason };
        let raw = spki.subject_public_key.as_bytes().ok_or_else(|| bad("the key bits are not whole bytes".into()))?;
        match kind {
            PublicKeyKind::Rsa { bits } => {
                if bits < 2048 {
                    return Err(bad(format!("RSA-{bits} is too short; at least 2048 bits are required")));
                }
                if bits % 8 != 0 {
                    return Err(bad(format!("an RSA modulus of {bits} bits is not a multiple of 8")));
                }
                let key = RsaPublicKey::from_der(raw).map_err(|e| bad(format!("the RSA key is malformed: {e}")))?;
                let e = key.public_exponent.as_bytes();
                let odd = e.last().is_some_and(|b| b & 1 == 1);
                let big_enough = e.len() > 3 || (e.len() == 3 && e >= [0x01, 0x00, 0x01].as_slice());
                if !odd || !big_enough {
                    return Err(bad("the RSA public exponent must be odd and at least 65537".into()));
                }
            }
            PublicKeyKind::Ec(curve) => {
                let alg: &'static dyn signature::VerificationAlgorithm = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
                    Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1,
                };
                // Parsing rejects points not on the curve.
                signature::ParsedPublicKey::new(alg, raw)
                    .map_err(|_| bad(format!("the {} point is not on the curve", curve.name())))?;
            }
            PublicKeyKind::Ed25519 => {
                if raw.len() != 32 {
                    return Err(bad("an Ed25519 key must be 32 bytes".into()));
                }
            }
        }
        Ok(Self { spki, kind })
    }

    /// The key's kind and size.
    pub fn kind(&self) -> PublicKeyKind {
        self.kind
    }

    /// The SubjectPublicKeyInfo.
    pub fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// The subjectPublicKey bits (what the SKI hashes, RFC 5280 4.2.1.2 method 1).
    pub fn key_bytes(&self) -> &[u8] {
        self.spki.subject_public_key.raw_bytes()
    }
}

/// Reads the kind of a SubjectPublicKeyInfo without judging its strength.
pub fn classify(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKeyKind, KeyError> {
    let bad = |reason: String| KeyError::UnacceptablePublicKey { reason };
    let alg = spki.algorithm.oid;
    if alg == oid::RSA_ENCRYPTION {
        let raw = spki.subject_public_key.raw_bytes();
        let key = RsaPublicKey::from_der(raw).map_err(|e| bad(format!("the RSA key is malformed: {e}")))?;
        let modulus = key.modulus.as_bytes();
        let bits = match modulus.first() {
            Some(first) => (modulus.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
            None => 0,
        };
        Ok(PublicKeyKind::Rsa { bits })
    } else if alg == oid::EC_PUBLIC_KEY {
        let curve_oid: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| bad("the EC key names no curve".into()))?
            .decode_as()
            .map_err(|_| bad("the EC key's parameters are not a named curve".into()))?;
        Curve::from_oid(&curve_oid)
            .map(PublicKeyKind::Ec)
            .ok_or_else(|| bad(format!("the curve {curve_oid} is not allowed (P-256, P-384, P-521 only)")))
    } else if alg == oid::ED25519 {
        Ok(PublicKeyKind::Ed25519)
    } else {
        Err(bad(format!("the key algorithm {alg} is not supported")))
    }
}

/// Verifies `signature` over `message` made with `algorithm` by the key in `spki`.
///
/// Supports RSA PKCS#1 v1.5 with SHA-256/384/512, ECDSA with SHA-256/384/512 and
/// Ed25519 (RFC 5280 4.1.1.2 / RFC 5758 / RFC 8410).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature_bytes: &[u8],
) -> Result<(), KeyError> {
    let kind = classify(spki)?;
    let sig_oid = algorithm.oid;
    let unsupported = || KeyError::UnsupportedSignatureAlgorithm { oid: sig_oid.to_string(), key: kind.to_string() };
    if sig_oid == oid::RSASSA_PSS {
        return match kind {
            PublicKeyKind::Rsa { .. } => verify_rsa_pss(spki, algorithm, message, signature_bytes),
            _ => Err(unsupported()),
        };
    }
    let alg: &'static dyn signature::VerificationAlgorithm = match kind {
        PublicKeyKind::Rsa { .. } => match sig_oid {
            o if o == oid::SHA256_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
            o if o == oid::SHA384_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
            o if o == oid::SHA512_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
            _ => return Err(unsupported()),
        },
        PublicKeyKind::Ec(curve) => match (curve, sig_oid) {
            (Curve::P256, o) if o == oid::ECDSA_WITH_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
            (Curve::P256, o) if o == oid::ECDSA_WITH_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
            (Curve::P256, o) if o == oid::ECDSA_WITH_SHA512 => &signature::ECDSA_P256_SHA512_ASN1,
            (Curve::P384, o) if o == oid::ECDSA_WITH_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
            (Curve::P384, o) if o == oid::ECDSA_WITH_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
            (Curve::P384, o) if o == oid::ECDSA_WITH_SHA512 => &signature::ECDSA_P384_SHA512_ASN1,
            (Curve::P521, o) if o == oid::ECDSA_WITH_SHA256 => &signature::ECDSA_P521_SHA256_ASN1,
            (Curve::P521, o) if o == oid::ECDSA_WITH_SHA384 => &signature::ECDSA_P521_SHA384_ASN1,
            (Curve::P521, o) if o == oid::ECDSA_WITH_SHA512 => &signature::ECDSA_P521_SHA512_ASN1,
            _ => return Err(unsupported()),
        },
        PublicKeyKind::Ed25519 if sig_oid == oid::ED25519 => &signature::ED25519,
        PublicKeyKind::Ed25519 => return Err(unsupported()),
    };
    signature::UnparsedPublicKey::new(alg, spki.subject_public_key.raw_bytes())
        .verify(message, signature_bytes)
        .map_err(|_| KeyError::BadSignature)
}

/// `RSASSA-PSS-params` (RFC 4055 section 3.1; RFC 8017 appendix A.2.3):
///
/// ```text
/// RSASSA-PSS-params ::= SEQUENCE {
///     hashAlgorithm      [0] HashAlgorithm    DEFAULT sha1,
///     maskGenAlgorithm   [1] MaskGenAlgorithm DEFAULT mgf1SHA1,
///     saltLength         [2] INTEGER          DEFAULT 20,
///     trailerField       [3] TrailerField     DEFAULT trailerFieldBC }
/// ```
#[derive(Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// RSASSA-PSS verification (RFC 8017 section 8.1.2) with SHA-256/384/512, MGF1 with the
/// same hash (RFC 4055 section 3.1 recommends it; other combinations are refused) and
/// the salt length the parameters state (OpenSSL signs with the maximum salt length).
fn verify_rsa_pss(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature_bytes: &[u8],
) -> Result<(), KeyError> {
    use aws_lc_rs::rsa::RsaPssSaltLength;
    use aws_lc_rs::signature::VerificationAlgorithm;
    let unsupported = |why: &str| KeyError::UnsupportedSignatureAlgorithm {
        oid: format!("{} ({why})", oid::RSASSA_PSS),
        key: "RSA".into(),
    };
    let params: RsaPssParams = algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("parameters missing"))?
        .decode_as()
        .map_err(|_| unsupported("malformed parameters"))?;
    let hash = params.hash_algorithm.as_ref().map(|a| a.oid).ok_or_else(|| unsupported("SHA-1 is not accepted"))?;
    let mgf = params.mask_gen_algorithm.as_ref().ok_or_else(|| unsupported("MGF1 with SHA-1 is not accepted"))?;
    if mgf.oid != oid::MGF1 {
        return Err(unsupported("the mask generation function is not MGF1"));
    }
    let mgf_hash: AlgorithmIdentifierOwned = mgf
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("MGF1 names no hash"))?
        .decode_as()
        .map_err(|_| unsupported("malformed MGF1 parameters"))?;
    if mgf_hash.oid != hash {
        return Err(unsupported("the MGF1 hash differs from the message hash"));
    }
    if params.trailer_field.is_some_and(|t| t != 1) {
        return Err(unsupported("the trailer field is not trailerFieldBC"));
    }
    let salt = params.salt_length.unwrap_or(20);
    let salt = u16::try_from(salt).map_err(|_| unsupported("the salt is too long"))?;
    let base = match hash {
        h if h == oid::SHA256 => signature::RSA_PSS_2048_8192_SHA256,
        h if h == oid::SHA384 => signature::RSA_PSS_2048_8192_SHA384,
        h if h == oid::SHA512 => signature::RSA_PSS_2048_8192_SHA512,
        _ => return Err(unsupported("the hash is not SHA-256, SHA-384 or SHA-512")),
    };
    let alg = base.with_pss_salt_length(RsaPssSaltLength::Custom(salt));
    alg.verify_sig(spki.subject_public_key.raw_bytes(), message, signature_bytes).map_err(|_| KeyError::BadSignature)
}

/// Something that signs with a CA key. A file key today; a PKCS#11 token later.
pub trait Signer {
    /// The AlgorithmIdentifier written into certificates and CRLs this signer signs.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// The signer's public key.
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// Signs `message` (the DER to be signed; hashing is part of the algorithm).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

enum KeyPairInner {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key held in memory, with its PKCS#8 encoding and public key.
pub struct PrivateKey {
    inner: KeyPairInner,
    pkcs8: Zeroizing<Vec<u8>>,
    spki: SubjectPublicKeyInfoOwned,
    kind: PublicKeyKind,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("PrivateKey").field("kind", &self.kind()).finish_non_exhaustive()
    }
}

/// `PrivateKeyInfo` header fields we need to pick the key type (RFC 5958 section 2).
#[derive(Sequence)]
struct PrivateKeyInfoHead<'a> {
    version: u8,
    algorithm: spki::AlgorithmIdentifierRef<'a>,
}

impl PrivateKey {
    /// Generates a new key. RSA generation takes a second or more: callers in async code
    /// run it on a blocking thread.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let failed = KeyError::Crypto { operation: "generate a key" };
        let pkcs8: Vec<u8> = match algorithm {
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let size = if algorithm == KeyAlgorithm::Rsa3072 { KeySize::Rsa3072 } else { KeySize::Rsa4096 };
                let pair = RsaKeyPair::generate(size).map_err(|_| failed)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                    pair.as_der().map_err(|_| KeyError::Crypto { operation: "encode a key" })?;
                der.as_ref().to_vec()
            }
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
                let alg = if algorithm == KeyAlgorithm::P256 {
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let pair = EcdsaKeyPair::generate(alg).map_err(|_| failed)?;
                pair.to_pkcs8v1().map_err(|_| KeyError::Crypto { operation: "encode a key" })?.as_ref().to_vec()
            }
        };
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Reads an unencrypted PKCS#8 `PrivateKeyInfo` (RSA, EC P-256/P-384/P-521, Ed25519).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::InvalidPrivateKey { reason };
        let mut reader = der::SliceReader::new(der).map_err(|e| invalid(e.to_string()))?;
        let head = der::Reader::sequence(&mut reader, |r| {
            let version = u8::decode(r)?;
            let algorithm = spki::AlgorithmIdentifierRef::decode(r)?;
            // Skip the rest (privateKey, attributes, publicKey).
            while !r.is_finished() {
                let _ = der::asn1::AnyRef::decode(r)?;
            }
            Ok::<_, der::Error>(PrivateKeyInfoHead { version, algorithm })
        })
        .map_err(|e| invalid(format!("not a PKCS#8 PrivateKeyInfo ({e})")))?;
        if head.version > 1 {
            return Err(invalid(format!("unknown PKCS#8 version {}", head.version)));
        }
        let rejected = |e: aws_lc_rs::error::KeyRejected| invalid(e.to_string());
        let inner = match head.algorithm.oid {
            o if o == oid::RSA_ENCRYPTION => KeyPairInner::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
            o if o == oid::EC_PUBLIC_KEY => {
                let curve_oid: ObjectIdentifier = head
                    .algorithm
                    .parameters
                    .ok_or_else(|| invalid("the EC key names no curve".into()))?
                    .decode_as()
                    .map_err(|_| invalid("the EC key's parameters are not a named curve".into()))?;
                let alg = match Curve::from_oid(&curve_oid) {
                    Some(Curve::P256) => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    Some(Curve::P384) => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    Some(Curve::P521) => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                    None => return Err(invalid(format!("the curve {curve_oid} is not supported"))),
                };
                KeyPairInner::Ecdsa(EcdsaKeyPair::from_pkcs8(alg, der).map_err(rejected)?)
            }
            o if o == oid::ED25519 => {
                KeyPairInner::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?)
            }
            other => return Err(invalid(format!("the key algorithm {other} is not supported"))),
        };
        let spki_der: Vec<u8> = match &inner {
            KeyPairInner::Rsa(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            KeyPairInner::Ecdsa(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            KeyPairInner::Ed25519(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| KeyError::Crypto { operation: "encode a public key" })?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der).map_err(|e| invalid(e.to_string()))?;
        let kind = classify(&spki)?;
        Ok(Self { inner, pkcs8: Zeroizing::new(der.to_vec()), spki, kind })
    }

    /// The unencrypted PKCS#8 encoding. Handle with care: encrypt before storing.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The kind and size of the key.
    pub fn kind(&self) -> PublicKeyKind {
        self.kind
    }

    /// The public key as an accepted key (our own keys always pass the rules).
    pub fn accepted_public_key(&self) -> Result<AcceptedPublicKey, KeyError> {
        AcceptedPublicKey::from_spki(self.spki.clone())
    }
}

fn algorithm_without_params(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters: None }
}

impl Signer for PrivateKey {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match &self.inner {
            // RFC 4055 section 5: the parameters of sha*WithRSAEncryption are NULL.
            KeyPairInner::Rsa(_) => {
                AlgorithmIdentifierOwned { oid: oid::SHA256_WITH_RSA, parameters: Some(der::asn1::Null.into()) }
            }
            KeyPairInner::Ecdsa(pair) => {
                let alg = pair.algorithm();
                if std::ptr::eq(alg, &signature::ECDSA_P256_SHA256_ASN1_SIGNING) {
                    algorithm_without_params(oid::ECDSA_WITH_SHA256)
                } else if std::ptr::eq(alg, &signature::ECDSA_P384_SHA384_ASN1_SIGNING) {
                    algorithm_without_params(oid::ECDSA_WITH_SHA384)
                } else {
                    algorithm_without_params(oid::ECDSA_WITH_SHA512)
                }
            }
            KeyPairInner::Ed25519(_) => algorithm_without_params(oid::ED25519),
        }
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = KeyError::Crypto { operation: "sign" };
        // aws-lc draws signing randomness from its own DRBG; the argument is for API
        // compatibility only, so no caller's generator could be used here.
        #[allow(clippy::disallowed_methods)]
        let rng = SystemRandom::new();
        match &self.inner {
            KeyPairInner::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out).map_err(|_| failed)?;
                Ok(out)
            }
            KeyPairInner::Ecdsa(pair) => Ok(pair.sign(&rng, message).map_err(|_| failed)?.as_ref().to_vec()),
            KeyPairInner::Ed25519(pair) => Ok(pair.try_sign(message).map_err(|_| failed)?.as_ref().to_vec()),
        }
    }
}

/// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt, encoded exactly as
/// S/MIME BR 7.1.3.2.1 lists it (the parameters spelled out, trailerField absent).
pub const RSA_PSS_SHA256_DER: [u8; 67] = [
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d,
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09,
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
    0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
];

/// [`RSA_PSS_SHA256_DER`] as an AlgorithmIdentifier.
pub fn rsa_pss_sha256_algorithm() -> AlgorithmIdentifierOwned {
    use der::Decode;
    // A constant that decodes; the fallback is never taken (a test decodes it).
    AlgorithmIdentifierOwned::from_der(&RSA_PSS_SHA256_DER)
        .unwrap_or(AlgorithmIdentifierOwned { oid: oid::RSASSA_PSS, parameters: None })
}

/// An RSA key that signs with RSASSA-PSS (SHA-256) instead of PKCS#1 v1.5: for CAs
/// whose policy asks for PSS.
pub struct RsaPssKey(PrivateKey);

impl std::fmt::Debug for RsaPssKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RsaPssKey").field(&self.0).finish()
    }
}

impl RsaPssKey {
    /// `key` signing with PSS; refused for a key that is not RSA.
    pub fn new(key: PrivateKey) -> Result<Self, KeyError> {
        match key.inner {
            KeyPairInner::Rsa(_) => Ok(Self(key)),
            _ => Err(KeyError::UnsupportedSignatureAlgorithm {
                oid: oid::RSASSA_PSS.to_string(),
                key: key.kind().to_string(),
            }),
        }
    }

    /// The key itself.
    pub fn key(&self) -> &PrivateKey {
        &self.0
    }
}

impl Signer for RsaPssKey {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        rsa_pss_sha256_algorithm()
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.0.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = KeyError::Crypto { operation: "sign" };
        #[allow(clippy::disallowed_methods)]
        let rng = SystemRandom::new();
        match &self.0.inner {
            KeyPairInner::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PSS_SHA256, &rng, message, &mut out).map_err(|_| failed)?;
                Ok(out)
            }
            _ => Err(failed),
        }
    }
}

/// SHA-1 of the subjectPublicKey bits: the key identifier of RFC 5280 4.2.1.2 method (1),
/// what OpenSSL, NSS and Windows compute and match on.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.subject_public_key.raw_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_key_signs_and_verifies() {
        for alg in [KeyAlgorithm::P256, KeyAlgorithm::P384, KeyAlgorithm::Rsa3072] {
            let key = PrivateKey::generate(alg).unwrap();
            let sig = key.sign(b"hello").unwrap();
            verify_signature(key.public_key(), &key.signature_algorithm(), b"hello", &sig).unwrap();
            assert!(matches!(
                verify_signature(key.public_key(), &key.signature_algorithm(), b"hellO", &sig),
                Err(KeyError::BadSignature)
            ));
            let again = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            key.accepted_public_key().unwrap();
        }
    }

    #[test]
    fn garbage_is_not_a_private_key() {
        assert!(matches!(PrivateKey::from_pkcs8_der(b"\x30\x03\x02\x01"), Err(KeyError::InvalidPrivateKey { .. })));
        assert!(matches!(PrivateKey::from_pkcs8_der(&[]), Err(KeyError::InvalidPrivateKey { .. })));
    }

    #[test]
    fn key_names_round_trip() {
        for alg in [KeyAlgorithm::Rsa3072, KeyAlgorithm::Rsa4096, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            assert_eq!(KeyAlgorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(KeyAlgorithm::from_name("rsa1024"), None);
    }

    #[test]
    fn rsa_pss_keys_sign_what_verify_signature_accepts_in_the_br_encoding() {
        use der::Encode;
        let algorithm = rsa_pss_sha256_algorithm();
        assert_eq!(algorithm.to_der().unwrap(), RSA_PSS_SHA256_DER.to_vec());
        let key = RsaPssKey::new(PrivateKey::generate(KeyAlgorithm::Rsa3072).unwrap()).unwrap();
        let signature = key.sign(b"to be signed").unwrap();
        verify_signature(key.public_key(), &key.signature_algorithm(), b"to be signed", &signature).unwrap();
        assert!(verify_signature(key.public_key(), &key.signature_algorithm(), b"changed", &signature).is_err());
        assert!(RsaPssKey::new(PrivateKey::generate(KeyAlgorithm::P256).unwrap()).is_err());
    }
}
