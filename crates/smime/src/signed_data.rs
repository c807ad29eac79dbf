//! CMS `SignedData` (RFC 5652 section 5): signing and signature verification for
//! S/MIME (RFC 8551 section 3.5).
//!
//! ```text
//! SignedData ::= SEQUENCE {
//!     version CMSVersion,
//!     digestAlgorithms DigestAlgorithmIdentifiers,
//!     encapContentInfo EncapsulatedContentInfo,
//!     certificates [0] IMPLICIT CertificateSet OPTIONAL,
//!     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//!     signerInfos SignerInfos }
//! ```
//!
//! The ASN.1 types come from the `cms` crate; building and checking are ours. Input
//! may be BER (indefinite lengths, segmented OCTET STRINGs, as `openssl cms -stream`
//! writes): it is normalised to DER first. Verification here is cryptographic only:
//! path validation, trust and revocation belong to the caller, who gets the signer
//! certificate from [`VerifiedSignature::signer_certificate`].

pub mod stream;

use certdesk_pki::key::{verify_signature, KeyError, Signer};
use certdesk_pki::oid;
use certdesk_pki::path::decode_certificate;
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignedAttributes, SignedData,
    SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;
use x509_cert::Certificate;

/// Largest message [`verify`] accepts (1 GiB): processing is in memory, so this bounds memory use.
pub const MAX_MESSAGE_LEN: usize = 1024 * 1024 * 1024;

/// Errors from signing and verifying CMS `SignedData`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignedDataError {
    /// The input is not well-formed BER/DER of the expected structure.
    #[error("the CMS message is malformed: {what}: {detail}")]
    Malformed {
        /// Which structure was being read.
        what: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// The input is larger than [`MAX_MESSAGE_LEN`].
    #[error("the CMS message is {len} bytes, more than the {max} bytes accepted")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The ContentInfo carries something other than SignedData.
    #[error("the CMS message is not SignedData but content type {content_type}")]
    NotSignedData {
        /// The contentType OID found.
        content_type: String,
    },
    /// The SignedData has no SignerInfo.
    #[error("the SignedData has no signers")]
    NoSigners,
    /// The message has no eContent and no detached content was passed.
    #[error("the signature is detached but no content was supplied")]
    DetachedContentMissing,
    /// Checking this signer needs the content itself, not the digests given.
    #[error("signer {signer} needs the content itself to be checked (no signed attributes, or another digest)")]
    ContentNeeded {
        /// Index of the SignerInfo.
        signer: usize,
    },
    /// Detached content was passed for a message that carries different content.
    #[error("the message carries its content, and the supplied detached content differs from it")]
    DetachedContentConflict,
    /// No certificate in the message or the extra certificates matches a signer.
    #[error("signer {signer}: no certificate matching the signer identifier was found")]
    SignerCertificateNotFound {
        /// Index of the SignerInfo.
        signer: usize,
    },
    /// A required signed attribute is missing or appears in a wrong form.
    #[error("signer {signer}: the signed attribute {attribute} is missing or malformed")]
    BadAttribute {
        /// Index of the SignerInfo.
        signer: usize,
        /// Name of the attribute (RFC 5652 section 11).
        attribute: &'static str,
    },
    /// The contentType attribute differs from eContentType (RFC 5652 section 11.1).
    #[error("signer {signer}: the contentType attribute {attribute} differs from eContentType {econtent_type}")]
    ContentTypeMismatch {
        /// Index of the SignerInfo.
        signer: usize,
        /// OID in the contentType attribute.
        attribute: String,
        /// OID in eContentType.
        econtent_type: String,
    },
    /// Signed content of a type other than id-data needs signed attributes (RFC 5652 5.3).
    #[error("signer {signer}: content of type {econtent_type} is signed without signed attributes")]
    SignedAttributesRequired {
        /// Index of the SignerInfo.
        signer: usize,
        /// OID in eContentType.
        econtent_type: String,
    },
    /// The messageDigest attribute does not match the content: the content was altered.
    #[error("signer {signer}: the message digest does not match the content (the content was altered)")]
    DigestMismatch {
        /// Index of the SignerInfo.
        signer: usize,
    },
    /// The signature value does not verify with the signer's public key.
    #[error("signer {signer}: the signature does not verify")]
    BadSignature {
        /// Index of the SignerInfo.
        signer: usize,
    },
    /// A digest or signature algorithm is not supported.
    #[error("the algorithm {oid} is not supported")]
    UnsupportedAlgorithm {
        /// The algorithm's OID (with details where useful).
        oid: String,
    },
    /// The signer's key or certificate could not be used.
    #[error("signer {signer}: the signer's key cannot be used")]
    SignerKey {
        /// Index of the SignerInfo (0 when signing).
        signer: usize,
        /// What the key code reported.
        #[source]
        source: KeyError,
    },
    /// The certificate passed to [`sign`] does not hold the signer's public key.
    #[error("the signer certificate does not hold the signing key's public key")]
    CertificateKeyMismatch,
    /// A certificate passed in `extra_certs` or `chain` cannot be read.
    #[error("certificate {index} of the supplied certificates cannot be read: {detail}")]
    InvalidCertificate {
        /// Index in the list.
        index: usize,
        /// What the decoder reported.
        detail: String,
    },
    /// The signing time cannot be written (before 1970 or after 9999).
    #[error("the signing time {time} cannot be encoded")]
    InvalidSigningTime {
        /// The time given.
        time: time::OffsetDateTime,
    },
    /// Encoding the output failed (for example a value longer than DER allows).
    #[error("encoding the SignedData failed: {detail}")]
    Encoding {
        /// What the encoder reported.
        detail: String,
    },
}

fn malformed(what: &'static str) -> impl Fn(der::Error) -> SignedDataError {
    move |e| SignedDataError::Malformed { what, detail: e.to_string() }
}

fn encoding(e: der::Error) -> SignedDataError {
    SignedDataError::Encoding { detail: e.to_string() }
}

/// A message digest algorithm for CMS (RFC 5754 section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `id-sha256` (RFC 5754 section 2.2).
    Sha256,
    /// `id-sha384` (RFC 5754 section 2.3).
    Sha384,
    /// `id-sha512` (RFC 5754 section 2.4).
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha256 => oid::SHA256,
            DigestAlgorithm::Sha384 => oid::SHA384,
            DigestAlgorithm::Sha512 => oid::SHA512,
        }
    }

    /// The algorithm named by `oid`, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512].into_iter().find(|d| d.oid() == *oid)
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            DigestAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
            DigestAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
            DigestAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
    }

    /// The DigestAlgorithmIdentifier, parameters absent (RFC 5754 section 2).
    fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned { oid: self.oid(), parameters: None }
    }

    fn rsa_pkcs1(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha256 => oid::SHA256_WITH_RSA,
            DigestAlgorithm::Sha384 => oid::SHA384_WITH_RSA,
            DigestAlgorithm::Sha512 => oid::SHA512_WITH_RSA,
        }
    }

    fn ecdsa(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha256 => oid::ECDSA_WITH_SHA256,
            DigestAlgorithm::Sha384 => oid::ECDSA_WITH_SHA384,
            DigestAlgorithm::Sha512 => oid::ECDSA_WITH_SHA512,
        }
    }
}

/// Options for [`sign`].
#[derive(Clone, Debug)]
pub struct SignOptions {
    /// The signingTime attribute (RFC 5652 section 11.3); the caller's clock.
    pub signing_time: time::OffsetDateTime,
    /// Leave eContent out (RFC 5652 section 5.2), for `multipart/signed` (RFC 8551 3.5.3).
    pub detached: bool,
    /// Extra certificates (DER) to include after the signer's, usually the issuing chain.
    pub chain: Vec<Vec<u8>>,
}

/// `SMIMECapability ::= SEQUENCE { capabilityID OBJECT IDENTIFIER, parameters ANY OPTIONAL }`
/// (RFC 8551 section 2.5.2).
#[derive(Sequence)]
struct SmimeCapability {
    capability_id: ObjectIdentifier,
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`
/// (RFC 5035 section 4).
#[derive(Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// ```text
/// ESSCertIDv2 ::= SEQUENCE {
///     hashAlgorithm AlgorithmIdentifier DEFAULT {algorithm id-sha256},
///     certHash Hash,
///     issuerSerial IssuerSerial OPTIONAL }
/// ```
/// (RFC 5035 section 4; hashAlgorithm is SHA-256 and so omitted.)
#[derive(Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies ... OPTIONAL }`
/// (RFC 5035 section 3).
#[derive(Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> Result<Attribute, SignedDataError> {
    let value = Any::from_der(&value.to_der().map_err(encoding)?).map_err(encoding)?;
    let values = SetOfVec::try_from(vec![value]).map_err(encoding)?;
    Ok(Attribute { oid, values })
}

fn encode_time(t: time::OffsetDateTime) -> Result<Time, SignedDataError> {
    let invalid = || SignedDataError::InvalidSigningTime { time: t };
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| invalid())?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(|_| invalid())?;
    // RFC 5652 section 11.3: UTCTime for 1950 to 2049, GeneralizedTime otherwise.
    if dt.year() < 2050 {
        Ok(Time::UtcTime(der::asn1::UtcTime::from_date_time(dt).map_err(|_| invalid())?))
    } else {
        Ok(Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt)))
    }
}

/// Creates CMS SignedData (RFC 5652 section 5) in a ContentInfo, DER-encoded.
///
/// eContentType is id-data; there is one SignerInfo with sid = issuerAndSerialNumber.
/// The digest matches the signer's signature algorithm: SHA-256 for RSA and P-256,
/// SHA-384 for P-384, SHA-512 for Ed25519 (RFC 8419 section 3). Signed attributes:
/// contentType, messageDigest, signingTime (RFC 5652 section 11), SMIMECapabilities
/// (RFC 8551 section 2.5.2: AES-256-CBC, AES-128-CBC) and ESS signingCertificateV2
/// (RFC 5035, SHA-256 of the signer certificate). signatureAlgorithm is what OpenSSL
/// writes: rsaEncryption for RSA PKCS#1 v1.5 (RFC 3370 section 3.2), ecdsa-with-SHAxxx
/// (RFC 5753 section 2.1.1), id-Ed25519 (RFC 8419). certificates = signer certificate
/// followed by `options.chain`. `options.detached` leaves eContent out.
pub fn sign(
    content: &[u8],
    signer_cert_der: &[u8],
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Vec<u8>, SignedDataError> {
    let prepared = Prepared::new(signer_cert_der, signer)?;
    let message_digest = prepared.digest.digest(content);
    let econtent = if options.detached { None } else { Some(content) };
    prepared.assemble(&message_digest, econtent, signer_cert_der, signer, options)
}

/// The signer's certificate and algorithms, checked before any content is hashed.
struct Prepared {
    cert: Certificate,
    digest: DigestAlgorithm,
    signature_algorithm: AlgorithmIdentifierOwned,
}

impl Prepared {
    fn new(signer_cert_der: &[u8], signer: &dyn Signer) -> Result<Self, SignedDataError> {
        let cert = Certificate::from_der(signer_cert_der)
            .map_err(|e| SignedDataError::InvalidCertificate { index: 0, detail: e.to_string() })?;
        if cert.tbs_certificate().subject_public_key_info() != signer.public_key() {
            return Err(SignedDataError::CertificateKeyMismatch);
        }
        let signer_alg = signer.signature_algorithm();
        let (digest, signature_algorithm) = match signer_alg.oid {
            o if o == oid::SHA256_WITH_RSA => (
                DigestAlgorithm::Sha256,
                AlgorithmIdentifierOwned { oid: oid::RSA_ENCRYPTION, parameters: Some(der::asn1::Null.into()) },
            ),
            o if o == oid::ECDSA_WITH_SHA256 => (DigestAlgorithm::Sha256, signer_alg.clone()),
            o if o == oid::ECDSA_WITH_SHA384 => (DigestAlgorithm::Sha384, signer_alg.clone()),
            o if o == oid::ECDSA_WITH_SHA512 => (DigestAlgorithm::Sha512, signer_alg.clone()),
            o if o == oid::ED25519 => (DigestAlgorithm::Sha512, signer_alg.clone()),
            other => return Err(SignedDataError::UnsupportedAlgorithm { oid: other.to_string() }),
        };
        Ok(Self { cert, digest, signature_algorithm })
    }

    /// Signs the attributes over `message_digest` (the digest of the content) and builds
    /// the ContentInfo; `econtent` is the content for an encapsulated signature, `None`
    /// for a detached one.
    fn assemble(
        self,
        message_digest: &[u8],
        econtent: Option<&[u8]>,
        signer_cert_der: &[u8],
        signer: &dyn Signer,
        options: &SignOptions,
    ) -> Result<Vec<u8>, SignedDataError> {
        let Prepared { cert, digest, signature_algorithm } = self;
        let capabilities = vec![
            SmimeCapability { capability_id: oid::AES256_CBC },
            SmimeCapability { capability_id: oid::AES128_CBC },
        ];
        let ess = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(DigestAlgorithm::Sha256.digest(signer_cert_der)).map_err(encoding)?,
                issuer_serial: IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(cert.tbs_certificate().issuer().clone())],
                    serial_number: cert.tbs_certificate().serial_number().clone(),
                },
            }],
        };
        let attrs = vec![
            attribute(oid::CMS_CONTENT_TYPE, &oid::CMS_DATA)?,
            attribute(oid::CMS_SIGNING_TIME, &encode_time(options.signing_time)?)?,
            attribute(oid::CMS_MESSAGE_DIGEST, &OctetString::new(message_digest.to_vec()).map_err(encoding)?)?,
            attribute(oid::SMIME_CAPABILITIES, &capabilities)?,
            attribute(oid::AA_SIGNING_CERTIFICATE_V2, &ess)?,
        ];
        // DER SET OF: sorted by encoding (X.690 section 11.6).
        let signed_attrs: SignedAttributes = SetOfVec::try_from(attrs).map_err(encoding)?;
        let to_sign = signed_attrs.to_der().map_err(encoding)?;
        let signature = signer.sign(&to_sign).map_err(|source| SignedDataError::SignerKey { signer: 0, source })?;

        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: cert.tbs_certificate().issuer().clone(),
                serial_number: cert.tbs_certificate().serial_number().clone(),
            }),
            digest_alg: digest.identifier(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm,
            signature: OctetString::new(signature).map_err(encoding)?,
            unsigned_attrs: None,
        };

        let mut certificates = vec![cms::cert::CertificateChoices::Certificate(cert)];
        for (index, extra) in options.chain.iter().enumerate() {
            let c = Certificate::from_der(extra)
                .map_err(|e| SignedDataError::InvalidCertificate { index, detail: e.to_string() })?;
            let choice = cms::cert::CertificateChoices::Certificate(c);
            if !certificates.contains(&choice) {
                certificates.push(choice);
            }
        }
        let econtent = econtent.map(|content| Any::new(Tag::OctetString, content)).transpose().map_err(encoding)?;
        let signed_data = SignedData {
            // RFC 5652 section 5.1: version 1 (no attribute certificates, id-data, v1 SignerInfos).
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![digest.identifier()]).map_err(encoding)?,
            encap_content_info: EncapsulatedContentInfo { econtent_type: oid::CMS_DATA, econtent },
            certificates: Some(CertificateSet(SetOfVec::try_from(certificates).map_err(encoding)?)),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(encoding)?),
        };
        let content_info = ContentInfo {
            content_type: oid::CMS_SIGNED_DATA,
            content: Any::encode_from(&signed_data).map_err(encoding)?,
        };
        content_info.to_der().map_err(encoding)
    }
}

/// A signature that verified cryptographically (the digest matched and the signature
/// verified with the public key of [`VerifiedSignature::signer_certificate`]).
///
/// It says nothing about trust: validate the signer certificate's path before relying
/// on it.
#[derive(Debug)]
pub struct VerifiedSignature {
    signer_certificate: Vec<u8>,
    signing_time: Option<time::OffsetDateTime>,
    digest_algorithm: DigestAlgorithm,
}

impl VerifiedSignature {
    /// The signer's certificate (DER).
    pub fn signer_certificate(&self) -> &[u8] {
        &self.signer_certificate
    }

    /// The signingTime signed attribute (RFC 5652 section 11.3), if present. Claimed by
    /// the signer, not proven.
    pub fn signing_time(&self) -> Option<time::OffsetDateTime> {
        self.signing_time
    }

    /// The digest algorithm the signer used.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.digest_algorithm
    }
}

/// A SignedData message whose every signature verified.
#[derive(Debug)]
pub struct VerifiedMessage {
    /// The signed content (from eContent, or the detached content passed in).
    pub content: Vec<u8>,
    /// One entry per SignerInfo, in message order.
    pub signatures: Vec<VerifiedSignature>,
    /// All certificates carried in the message (DER).
    pub certificates: Vec<Vec<u8>>,
    /// All CRLs carried in the message (DER, RFC 5652 section 10.2.1); not verified.
    pub crls: Vec<Vec<u8>>,
}

/// Parses a ContentInfo(SignedData) in DER or BER and checks every SignerInfo
/// (RFC 5652 section 5.6).
///
/// Each signer's certificate is found by issuerAndSerialNumber or subjectKeyIdentifier,
/// in the message or in `extra_certs`. With signed attributes, the contentType
/// attribute must equal eContentType, messageDigest must equal the content's digest,
/// and the signature over the DER `SET OF` signed attributes must verify; without
/// them, the signature over the content. Any failing signer fails the whole message.
/// No path validation, trust or revocation checking is done.
pub fn verify(
    content_info: &[u8],
    detached_content: Option<&[u8]>,
    extra_certs: &[Vec<u8>],
) -> Result<VerifiedMessage, SignedDataError> {
    verify_against(content_info, detached_content.map(Signed::Content), extra_certs)
}

/// [`verify`] for a detached signature whose content streamed past: `digests` are the
/// content's digests (computed with the algorithms the message announced, e.g. the
/// `micalg` of multipart/signed). The returned message's `content` is empty (the caller
/// kept it). A signer whose digest algorithm was not computed, or who signed without
/// signed attributes (then the signature covers the content itself), fails with
/// [`SignedDataError::ContentNeeded`]: verify such a message with [`verify`].
pub fn verify_detached_digests(
    content_info: &[u8],
    digests: &[(DigestAlgorithm, Vec<u8>)],
    extra_certs: &[Vec<u8>],
) -> Result<VerifiedMessage, SignedDataError> {
    verify_against(content_info, Some(Signed::Digests(digests)), extra_certs)
}

/// What signatures are checked against: the content, or its digests.
#[derive(Clone, Copy)]
enum Signed<'a> {
    Content(&'a [u8]),
    Digests(&'a [(DigestAlgorithm, Vec<u8>)]),
}

/// SignedData (RFC 5652 section 5.1) as received, with every certificate and CRL kept
/// as its encoding rather than decoded by the `cms` crate's types.
#[derive(Sequence)]
struct ReceivedSignedData {
    version: CmsVersion,
    digest_algorithms: DigestAlgorithmIdentifiers,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<SetOfVec<Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<SetOfVec<Any>>,
    signer_infos: SignerInfos,
}

/// A certificate that may have signed: its bytes as received, and it decoded.
struct Candidate {
    der: Vec<u8>,
    cert: Certificate,
}

fn verify_against(
    content_info: &[u8],
    detached: Option<Signed<'_>>,
    extra_certs: &[Vec<u8>],
) -> Result<VerifiedMessage, SignedDataError> {
    if content_info.len() > MAX_MESSAGE_LEN {
        return Err(SignedDataError::TooLarge { len: content_info.len(), max: MAX_MESSAGE_LEN });
    }
    let der_bytes = certdesk_pki::ber::ber_to_der(content_info).map_err(|e| SignedDataError::Malformed {
        what: "BER encoding",
        detail: format!("{} at byte {}", e.reason, e.offset),
    })?;
    // Decode with BER rules over the DER bytes: SET OF keeps the received order, so
    // signed attributes re-encode to exactly the bytes that were signed.
    let info = ContentInfo::from_ber(&der_bytes).map_err(malformed("ContentInfo"))?;
    if info.content_type != oid::CMS_SIGNED_DATA {
        return Err(SignedDataError::NotSignedData { content_type: info.content_type.to_string() });
    }
    let inner = info.content.to_der().map_err(malformed("SignedData"))?;
    let signed_data = ReceivedSignedData::from_ber(&inner).map_err(malformed("SignedData"))?;

    let econtent_type = signed_data.encap_content_info.econtent_type;
    let (content, signed): (Vec<u8>, Signed<'_>) = match (&signed_data.encap_content_info.econtent, detached) {
        (Some(any), detached) => {
            if any.tag() != Tag::OctetString {
                return Err(SignedDataError::Malformed {
                    what: "eContent",
                    detail: format!("expected an OCTET STRING, found {}", any.tag()),
                });
            }
            match detached {
                Some(Signed::Content(d)) if d != any.value() => return Err(SignedDataError::DetachedContentConflict),
                Some(Signed::Digests(_)) => return Err(SignedDataError::DetachedContentConflict),
                _ => {}
            }
            (any.value().to_vec(), Signed::Content(any.value()))
        }
        (None, Some(Signed::Content(d))) => (d.to_vec(), Signed::Content(d)),
        (None, Some(Signed::Digests(list))) => (Vec::new(), Signed::Digests(list)),
        (None, None) => return Err(SignedDataError::DetachedContentMissing),
    };
    if signed_data.signer_infos.0.is_empty() {
        return Err(SignedDataError::NoSigners);
    }

    // Certificates and CRLs are kept as received: a re-encoding need not equal the
    // signed bytes (a GeneralizedTime before 2050), and a certificate with a UTCTime
    // before 1970 decodes only as `pki::path` decodes it.
    let mut certificates = Vec::new();
    for choice in signed_data.certificates.iter().flat_map(|set| set.iter()) {
        // Only `certificate`; the other CertificateChoices are attribute certificates.
        if choice.tag() == Tag::Sequence {
            let der = choice.to_der().map_err(malformed("certificate"))?;
            let cert = decode_certificate(&der)
                .map_err(|e| SignedDataError::Malformed { what: "certificate", detail: e.to_string() })?;
            certificates.push(Candidate { der, cert });
        }
    }
    let message_certs = certificates.len();
    for (index, extra) in extra_certs.iter().enumerate() {
        let cert = decode_certificate(extra)
            .map_err(|e| SignedDataError::InvalidCertificate { index, detail: e.to_string() })?;
        certificates.push(Candidate { der: extra.clone(), cert });
    }

    let mut signatures = Vec::new();
    for (index, signer_info) in signed_data.signer_infos.0.iter().enumerate() {
        let against = match signed {
            Signed::Content(_) => Signed::Content(&content),
            digests => digests,
        };
        signatures.push(verify_signer(index, signer_info, econtent_type, against, &certificates)?);
    }
    let mut crls = Vec::new();
    for choice in signed_data.crls.iter().flat_map(|set| set.iter()) {
        // Only `crl`; `other` [1] (OCSP responses and the like) is not used.
        if choice.tag() == Tag::Sequence {
            crls.push(choice.to_der().map_err(malformed("CRL"))?);
        }
    }
    certificates.truncate(message_certs);
    let certificates = certificates.into_iter().map(|c| c.der).collect();
    Ok(VerifiedMessage { content, signatures, certificates, crls })
}

fn matches_signer(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer == *tbs.issuer() && ias.serial_number == *tbs.serial_number()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            let from_extension = tbs
                .extensions()
                .into_iter()
                .flatten()
                .filter(|ext| ext.extn_id == oid::CE_SUBJECT_KEY_IDENTIFIER)
                .find_map(|ext| SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes()).ok());
            match from_extension {
                Some(own) => own.0.as_bytes() == ski.0.as_bytes(),
                None => {
                    let computed = aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                        tbs.subject_public_key_info().subject_public_key.raw_bytes(),
                    );
                    computed.as_ref() == ski.0.as_bytes()
                }
            }
        }
    }
}

/// The single value of the signed attribute `oid`; `None` if absent, an error if it
/// occurs twice or has other than one value (RFC 5652 sections 5.3 and 11).
fn single_value<'a>(
    attrs: &'a SignedAttributes,
    attr_oid: ObjectIdentifier,
    signer: usize,
    name: &'static str,
) -> Result<Option<&'a Any>, SignedDataError> {
    let mut found = attrs.iter().filter(|a| a.oid == attr_oid);
    let Some(first) = found.next() else { return Ok(None) };
    if found.next().is_some() || first.values.len() != 1 {
        return Err(SignedDataError::BadAttribute { signer, attribute: name });
    }
    Ok(first.values.iter().next())
}

fn verify_signer(
    index: usize,
    signer_info: &SignerInfo,
    econtent_type: ObjectIdentifier,
    signed: Signed<'_>,
    candidates: &[Candidate],
) -> Result<VerifiedSignature, SignedDataError> {
    let digest = DigestAlgorithm::from_oid(&signer_info.digest_alg.oid)
        .ok_or_else(|| SignedDataError::UnsupportedAlgorithm { oid: signer_info.digest_alg.oid.to_string() })?;
    let Candidate { der: cert_der, cert } = candidates
        .iter()
        .find(|c| matches_signer(&signer_info.sid, &c.cert))
        .ok_or(SignedDataError::SignerCertificateNotFound { signer: index })?;

    let mut signing_time = None;
    let signed_bytes: Vec<u8> = match &signer_info.signed_attrs {
        Some(attrs) => {
            let bad = |attribute| SignedDataError::BadAttribute { signer: index, attribute };
            let content_type: ObjectIdentifier = single_value(attrs, oid::CMS_CONTENT_TYPE, index, "contentType")?
                .ok_or_else(|| bad("contentType"))?
                .decode_as()
                .map_err(|_| bad("contentType"))?;
            if content_type != econtent_type {
                return Err(SignedDataError::ContentTypeMismatch {
                    signer: index,
                    attribute: content_type.to_string(),
                    econtent_type: econtent_type.to_string(),
                });
            }
            let claimed: OctetString = single_value(attrs, oid::CMS_MESSAGE_DIGEST, index, "messageDigest")?
                .ok_or_else(|| bad("messageDigest"))?
                .decode_as()
                .map_err(|_| bad("messageDigest"))?;
            // A digest is not secret; comparing in variable time leaks nothing.
            let actual = match signed {
                Signed::Content(content) => digest.digest(content),
                Signed::Digests(list) => list
                    .iter()
                    .find(|(algorithm, _)| *algorithm == digest)
                    .map(|(_, value)| value.clone())
                    .ok_or(SignedDataError::ContentNeeded { signer: index })?,
            };
            if claimed.as_bytes() != actual.as_slice() {
                return Err(SignedDataError::DigestMismatch { signer: index });
            }
            if let Some(value) = single_value(attrs, oid::CMS_SIGNING_TIME, index, "signingTime")? {
                let t: Time = value.decode_as().map_err(|_| bad("signingTime"))?;
                let secs = i64::try_from(t.to_unix_duration().as_secs()).map_err(|_| bad("signingTime"))?;
                signing_time = Some(time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad("signingTime"))?);
            }
            // RFC 5652 section 5.4: the DER encoding of the SET OF, with its own tag.
            attrs.to_der().map_err(malformed("signed attributes"))?
        }
        None => {
            if econtent_type != oid::CMS_DATA {
                return Err(SignedDataError::SignedAttributesRequired {
                    signer: index,
                    econtent_type: econtent_type.to_string(),
                });
            }
            match signed {
                Signed::Content(content) => content.to_vec(),
                Signed::Digests(_) => return Err(SignedDataError::ContentNeeded { signer: index }),
            }
        }
    };

    let sig_alg = &signer_info.signature_algorithm;
    // RFC 3370 section 3.2 / RFC 5753: the digest may be given by digestAlgorithm alone.
    let algorithm = match sig_alg.oid {
        o if o == oid::RSA_ENCRYPTION => {
            AlgorithmIdentifierOwned { oid: digest.rsa_pkcs1(), parameters: Some(der::asn1::Null.into()) }
        }
        o if o == oid::EC_PUBLIC_KEY => AlgorithmIdentifierOwned { oid: digest.ecdsa(), parameters: None },
        _ => sig_alg.clone(),
    };
    let spki = cert.tbs_certificate().subject_public_key_info();
    verify_signature(spki, &algorithm, &signed_bytes, signer_info.signature.as_bytes()).map_err(|e| match e {
        KeyError::BadSignature => SignedDataError::BadSignature { signer: index },
        KeyError::UnsupportedSignatureAlgorithm { oid, .. } => SignedDataError::UnsupportedAlgorithm { oid },
        source => SignedDataError::SignerKey { signer: index, source },
    })?;
    Ok(VerifiedSignature { signer_certificate: cert_der.clone(), signing_time, digest_algorithm: digest })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use certdesk_pki::key::PrivateKey;
    use certdesk_test_support::{openssl, openssl_test_ca, pem_to_der};
    use std::path::Path;
    use std::sync::OnceLock;

    const DATA: &[u8] = b"Content-Type: text/plain\r\n\r\nHello, S/MIME world.\r\n";

    pub(super) struct Party {
        pub(super) name: &'static str,
        pub(super) key_pem: Vec<u8>,
        pub(super) key: PrivateKey,
        pub(super) cert_pem: Vec<u8>,
        pub(super) cert_der: Vec<u8>,
        digest: DigestAlgorithm,
    }

    pub(super) struct Fixture {
        ca_pem: Vec<u8>,
        pub(super) parties: Vec<Party>,
    }

    /// A P-256 test CA issuing S/MIME certificates (emailProtection) for RSA-3072,
    /// P-256, P-384 and Ed25519 keys, made once with OpenSSL (also used by the tests of
    /// [`super::stream`]).
    pub(super) fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let ca = openssl_test_ca(
                "certdesk test CA",
                |name| format!("/CN=Alice {name}/emailAddress=alice@example.com"),
                |_| {
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n\
                     extendedKeyUsage=emailProtection\nsubjectAltName=email:alice@example.com\n\
                     subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
                        .to_string()
                },
            );
            let parties = ca
                .parties
                .into_iter()
                .map(|p| Party {
                    name: p.name,
                    key: PrivateKey::from_pkcs8_der(&p.pkcs8).unwrap(),
                    digest: match p.name {
                        "p384" => DigestAlgorithm::Sha384,
                        "ed25519" => DigestAlgorithm::Sha512,
                        _ => DigestAlgorithm::Sha256,
                    },
                    key_pem: p.key_pem,
                    cert_pem: p.cert_pem,
                    cert_der: p.cert_der,
                })
                .collect();
            Fixture { ca_pem: ca.ca_pem, parties }
        })
    }

    fn options(detached: bool) -> SignOptions {
        SignOptions { signing_time: time::macros::datetime!(2025-03-04 05:06:07 UTC), detached, chain: vec![] }
    }

    /// Writes the party's files and the data into a fresh directory for OpenSSL.
    fn workdir(party: &Party) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ca.pem"), &fixture().ca_pem).unwrap();
        std::fs::write(tmp.path().join("signer.pem"), &party.cert_pem).unwrap();
        std::fs::write(tmp.path().join("signer.key"), &party.key_pem).unwrap();
        std::fs::write(tmp.path().join("data.txt"), DATA).unwrap();
        tmp
    }

    #[test]
    fn round_trip_and_openssl_accepts_ours() {
        let ca_der = pem_to_der(&fixture().ca_pem);
        for party in &fixture().parties {
            let tmp = workdir(party);
            for detached in [false, true] {
                let mut opts = options(detached);
                opts.chain = vec![ca_der.clone()];
                let signed = sign(DATA, &party.cert_der, &party.key, &opts).unwrap();
                // Our own encoding is DER and round-trips.
                let ci = ContentInfo::from_der(&signed).unwrap();
                assert_eq!(ci.to_der().unwrap(), signed);

                let verified = verify(&signed, detached.then_some(DATA), &[]).unwrap();
                assert_eq!(verified.content, DATA, "{}", party.name);
                assert_eq!(verified.signatures.len(), 1);
                let sig = &verified.signatures[0];
                assert_eq!(sig.signer_certificate(), party.cert_der.as_slice());
                assert_eq!(sig.signing_time(), Some(opts.signing_time));
                assert_eq!(sig.digest_algorithm(), party.digest, "{}", party.name);
                assert_eq!(verified.certificates.len(), 2);
                assert!(verified.certificates.contains(&ca_der));

                std::fs::write(tmp.path().join("sig.der"), &signed).unwrap();
                let mut args =
                    vec!["cms", "-verify", "-inform", "DER", "-in", "sig.der", "-binary", "-CAfile", "ca.pem"];
                if detached {
                    args.extend_from_slice(&["-content", "data.txt"]);
                }
                args.extend_from_slice(&["-out", "out.txt"]);
                if party.name == "ed25519" {
                    // OpenSSL 3.0 cannot verify Ed25519 with the SHA-512 digest RFC 8419
                    // requires ("eddsa_digest_signverify_init:invalid digest").
                    continue;
                }
                openssl(tmp.path(), &args);
                assert_eq!(std::fs::read(tmp.path().join("out.txt")).unwrap(), DATA, "{}", party.name);
            }
        }
    }

    #[test]
    fn we_accept_openssl_output() {
        for party in &fixture().parties {
            let tmp = workdir(party);
            let mut variants: Vec<Vec<&str>> = Vec::new();
            // OpenSSL 3.0 cannot sign Ed25519 CMS at all ("invalid digest"); the RFC 9216
            // vectors cover Ed25519 in this direction.
            let mds: &[&str] = if party.name == "ed25519" { &[] } else { &["sha256", "sha384", "sha512"] };
            for md in mds {
                variants.push(vec!["-md", md]);
            }
            if party.name == "rsa" {
                variants.push(vec!["-md", "sha256", "-keyopt", "rsa_padding_mode:pss"]);
                variants.push(vec![
                    "-md",
                    "sha512",
                    "-keyopt",
                    "rsa_padding_mode:pss",
                    "-keyopt",
                    "rsa_pss_saltlen:32",
                ]);
            }
            for variant in &variants {
                for (attached, stream) in [(true, false), (false, false), (true, true), (false, true)] {
                    if stream && variant.contains(&"rsa_padding_mode:pss") {
                        // OpenSSL 3.0 fails to stream RSA-PSS ("illegal zero content").
                        continue;
                    }
                    let mut args = vec![
                        "cms",
                        "-sign",
                        "-binary",
                        "-in",
                        "data.txt",
                        "-signer",
                        "signer.pem",
                        "-inkey",
                        "signer.key",
                        "-outform",
                        "DER",
                        "-out",
                        "sig.der",
                    ];
                    args.extend_from_slice(variant);
                    if attached {
                        args.push("-nodetach");
                    }
                    if stream {
                        args.push("-stream");
                    }
                    openssl(tmp.path(), &args);
                    let signed = std::fs::read(tmp.path().join("sig.der")).unwrap();
                    if stream {
                        // Streaming output uses indefinite lengths.
                        assert_eq!(signed[1], 0x80, "{} {variant:?}: expected BER", party.name);
                    }
                    let verified = verify(&signed, (!attached).then_some(DATA), &[]).unwrap_or_else(|e| {
                        panic!("{} {variant:?} attached={attached} stream={stream}: {e}", party.name)
                    });
                    assert_eq!(verified.content, DATA);
                    assert_eq!(verified.signatures[0].signer_certificate(), party.cert_der.as_slice());
                    assert!(verified.signatures[0].signing_time().is_some());

                    // Tampered content fails.
                    let mut altered = DATA.to_vec();
                    altered[30] ^= 1;
                    // OpenSSL 3.0 embeds the content even without -nodetach when streaming DER.
                    if let Some(pos) = signed.windows(DATA.len()).position(|w| w == DATA) {
                        let mut bad = signed.clone();
                        bad[pos + 30] ^= 1;
                        let result = verify(&bad, None, &[]);
                        assert!(matches!(result, Err(SignedDataError::DigestMismatch { signer: 0 })), "{result:?}");
                    } else {
                        assert!(!attached);
                        let result = verify(&signed, Some(&altered), &[]);
                        assert!(
                            matches!(result, Err(SignedDataError::DigestMismatch { signer: 0 })),
                            "{} {variant:?} stream={stream}: {result:?}",
                            party.name
                        );
                    }
                }
            }
        }
    }

    fn vector(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cms-examples").join(name)).unwrap()
    }

    fn lamps_certs() -> (Vec<u8>, Vec<u8>) {
        (pem_to_der(&vector("lamps-alice.crt")), pem_to_der(&vector("lamps-carlos.crt")))
    }

    #[test]
    fn rfc9216_examples_verify() {
        let (alice, carlos) = lamps_certs();
        let extra = vec![alice.clone(), carlos.clone()];
        for (file, signer) in [
            ("signedByAliceRSA.p7m", &alice),
            ("signedByAliceRSAPSS.p7m", &alice),
            ("signedByCarlosEd25519.p7m", &carlos),
        ] {
            let m = verify(&vector(file), None, &extra).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(m.signatures.len(), 1, "{file}");
            assert_eq!(m.signatures[0].signer_certificate(), signer.as_slice(), "{file}");
            assert!(!m.content.is_empty());
        }
        let m = verify(&vector("signedByAliceAndCarlosNoCerts.p7m"), None, &extra).unwrap();
        assert_eq!(m.signatures.len(), 2);
        assert!(m.certificates.is_empty());
        let signers: Vec<&[u8]> = m.signatures.iter().map(|s| s.signer_certificate()).collect();
        assert!(signers.contains(&alice.as_slice()) && signers.contains(&carlos.as_slice()));
        // Without the certificates the signers cannot be found.
        assert!(matches!(
            verify(&vector("signedByAliceAndCarlosNoCerts.p7m"), None, &[]),
            Err(SignedDataError::SignerCertificateNotFound { .. })
        ));
        // Only Alice's: Carlos is missing.
        assert!(matches!(
            verify(&vector("signedByAliceAndCarlosNoCerts.p7m"), None, std::slice::from_ref(&alice)),
            Err(SignedDataError::SignerCertificateNotFound { .. })
        ));
        // The detached example parses; its content is not in the vector set.
        assert!(matches!(
            verify(&vector("signedByCarlosDetached.p7m"), None, &extra),
            Err(SignedDataError::DetachedContentMissing)
        ));
    }

    /// The RFC 9216 / cms-examples SignedData vectors and ours (attached and detached),
    /// mutated by `certdesk_test_support::mutation`: `verify`, opaque and detached, returns without
    /// panicking or hanging (the stable stand-in for the `cms_signed` fuzz target).
    #[test]
    fn mutated_signed_data_never_panics() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let (alice, carlos) = lamps_certs();
        let extra = vec![alice, carlos];
        let party = p256();
        let mut seeds: Vec<(Vec<u8>, Option<&[u8]>)> = [
            "signedByAliceRSA.p7m",
            "signedByAliceRSAPSS.p7m",
            "signedByCarlosEd25519.p7m",
            "signedByAliceAndCarlosNoCerts.p7m",
        ]
        .into_iter()
        .map(|name| (vector(name), None))
        .collect();
        seeds.push((vector("signedByCarlosDetached.p7m"), Some(b"This is some sample content.")));
        seeds.push((sign(DATA, &party.cert_der, &party.key, &options(false)).unwrap(), None));
        seeds.push((sign(DATA, &party.cert_der, &party.key, &options(true)).unwrap(), Some(DATA)));
        let mut tried = never_panics("SignedData", &hostile(), |b| verify(b, None, &extra));
        tried += never_panics("SignedData (detached)", &hostile(), |b| verify(b, Some(DATA), &extra));
        for (i, (seed, detached)) in seeds.iter().enumerate() {
            tried += never_panics("SignedData", &mutants(seed, 400, i as u64), |b| verify(b, *detached, &extra));
        }
        eprintln!("SignedData: {tried} mutated inputs");
    }

    fn p256() -> &'static Party {
        fixture().parties.iter().find(|p| p.name == "p256").unwrap()
    }

    #[test]
    fn tampering_is_detected() {
        let party = p256();
        let attached = sign(DATA, &party.cert_der, &party.key, &options(false)).unwrap();
        let detached = sign(DATA, &party.cert_der, &party.key, &options(true)).unwrap();

        // Altered attached content.
        let pos = attached.windows(DATA.len()).position(|w| w == DATA).unwrap();
        let mut bad = attached.clone();
        bad[pos + 3] ^= 0x20;
        assert!(matches!(verify(&bad, None, &[]), Err(SignedDataError::DigestMismatch { signer: 0 })));
        // Altered detached content.
        assert!(matches!(
            verify(&detached, Some(b"something else"), &[]),
            Err(SignedDataError::DigestMismatch { signer: 0 })
        ));
        assert!(matches!(verify(&detached, None, &[]), Err(SignedDataError::DetachedContentMissing)));
        assert!(matches!(verify(&attached, Some(b"other"), &[]), Err(SignedDataError::DetachedContentConflict)));
        verify(&attached, Some(DATA), &[]).unwrap();

        // Altered signature value (the last bytes of the message are the signature).
        let mut bad = attached.clone();
        let last = bad.len() - 5;
        bad[last] ^= 1;
        assert!(matches!(verify(&bad, None, &[]), Err(SignedDataError::BadSignature { signer: 0 })));

        // Altered signed attribute (the signing time): the signature fails.
        let t = b"250304050607Z";
        let pos = attached.windows(t.len()).position(|w| w == t).unwrap();
        let mut bad = attached.clone();
        bad[pos + 1] = b'6';
        assert!(matches!(verify(&bad, None, &[]), Err(SignedDataError::BadSignature { signer: 0 })));
    }

    /// Builds a SignedData with the certificates removed.
    fn strip_certificates(signed: &[u8]) -> Vec<u8> {
        let ci = ContentInfo::from_der(signed).unwrap();
        let mut sd: SignedData = ci.content.decode_as().unwrap();
        sd.certificates = None;
        ContentInfo { content_type: ci.content_type, content: Any::encode_from(&sd).unwrap() }.to_der().unwrap()
    }

    #[test]
    fn signer_certificate_must_be_found() {
        let party = p256();
        let other = fixture().parties.iter().find(|p| p.name == "p384").unwrap();
        let signed = strip_certificates(&sign(DATA, &party.cert_der, &party.key, &options(false)).unwrap());
        assert!(matches!(verify(&signed, None, &[]), Err(SignedDataError::SignerCertificateNotFound { signer: 0 })));
        assert!(matches!(
            verify(&signed, None, std::slice::from_ref(&other.cert_der)),
            Err(SignedDataError::SignerCertificateNotFound { signer: 0 })
        ));
        let m = verify(&signed, None, &[other.cert_der.clone(), party.cert_der.clone()]).unwrap();
        assert_eq!(m.signatures[0].signer_certificate(), party.cert_der.as_slice());
        assert!(m.certificates.is_empty());
        assert!(matches!(
            verify(&signed, None, &[b"not a cert".to_vec()]),
            Err(SignedDataError::InvalidCertificate { index: 0, .. })
        ));
    }

    #[test]
    fn sign_refuses_a_certificate_for_another_key() {
        let party = p256();
        let other = fixture().parties.iter().find(|p| p.name == "p384").unwrap();
        assert!(matches!(
            sign(DATA, &other.cert_der, &party.key, &options(false)),
            Err(SignedDataError::CertificateKeyMismatch)
        ));
        assert!(matches!(
            sign(DATA, b"garbage", &party.key, &options(false)),
            Err(SignedDataError::InvalidCertificate { .. })
        ));
    }

    #[test]
    fn subject_key_identifier_finds_the_signer() {
        let party = p256();
        let signed = sign(DATA, &party.cert_der, &party.key, &options(false)).unwrap();
        let ci = ContentInfo::from_der(&signed).unwrap();
        let mut sd: SignedData = ci.content.decode_as().unwrap();
        let cert = Certificate::from_der(&party.cert_der).unwrap();
        let ski = cert
            .tbs_certificate()
            .extensions()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == oid::CE_SUBJECT_KEY_IDENTIFIER)
            .map(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).unwrap())
            .unwrap();
        let mut infos: Vec<SignerInfo> = sd.signer_infos.0.iter().cloned().collect();
        infos[0].sid = SignerIdentifier::SubjectKeyIdentifier(ski);
        infos[0].version = CmsVersion::V3;
        sd.signer_infos = SignerInfos(SetOfVec::try_from(infos).unwrap());
        let again = ContentInfo { content_type: ci.content_type, content: Any::encode_from(&sd).unwrap() };
        let m = verify(&again.to_der().unwrap(), None, &[]).unwrap();
        assert_eq!(m.signatures[0].signer_certificate(), party.cert_der.as_slice());
    }

    #[test]
    fn garbage_is_malformed() {
        let party = p256();
        let signed = sign(DATA, &party.cert_der, &party.key, &options(false)).unwrap();
        for input in [&b""[..], b"garbage", b"\x30\x80", b"\x30\x03\x02\x01", &signed[..signed.len() - 1]] {
            assert!(matches!(verify(input, None, &[]), Err(SignedDataError::Malformed { .. })), "{input:?}");
        }
        // Every truncation fails cleanly.
        for len in 0..signed.len() {
            assert!(verify(&signed[..len], None, &[]).is_err());
        }
        // Deep nesting.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0, 0]);
        }
        assert!(matches!(verify(&deep, None, &[]), Err(SignedDataError::Malformed { .. })));
        // Trailing data.
        let mut trailing = signed.clone();
        trailing.push(0);
        assert!(matches!(verify(&trailing, None, &[]), Err(SignedDataError::Malformed { .. })));
    }

    #[test]
    fn other_content_types_are_not_signed_data() {
        let ci = ContentInfo {
            content_type: oid::CMS_DATA,
            content: Any::encode_from(&OctetString::new(DATA).unwrap()).unwrap(),
        };
        assert!(matches!(
            verify(&ci.to_der().unwrap(), None, &[]),
            Err(SignedDataError::NotSignedData { content_type }) if content_type == "1.2.840.113549.1.7.1"
        ));
    }

    #[test]
    fn unsupported_digest_is_reported() {
        let party = p256();
        let signed = sign(DATA, &party.cert_der, &party.key, &options(false)).unwrap();
        let ci = ContentInfo::from_der(&signed).unwrap();
        let mut sd: SignedData = ci.content.decode_as().unwrap();
        let mut infos: Vec<SignerInfo> = sd.signer_infos.0.iter().cloned().collect();
        infos[0].digest_alg = AlgorithmIdentifierOwned { oid: oid::SHA1, parameters: None };
        sd.signer_infos = SignerInfos(SetOfVec::try_from(infos).unwrap());
        let again = ContentInfo { content_type: ci.content_type, content: Any::encode_from(&sd).unwrap() };
        assert!(matches!(
            verify(&again.to_der().unwrap(), None, &[]),
            Err(SignedDataError::UnsupportedAlgorithm { oid }) if oid == "1.3.14.3.2.26"
        ));
    }
}
