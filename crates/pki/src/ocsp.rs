//! The Online Certificate Status Protocol (RFC 6960): reading requests, building and
//! signing responses, and reading responses.
//!
//! A responder answers for one issuing CA. It
//!
//! 1. reads the request with [`parse_request`] (DER only, at most
//!    [`MAX_REQUEST_LEN`] bytes and [`MAX_CERT_IDS`] CertIDs),
//! 2. checks each [`CertId`] against the CA's [`IssuerHashes`] (a CertID for another
//!    issuer gets [`CertStatus::Unknown`]) and looks the serial up,
//! 3. signs the answers with [`build_response`] using a delegated responder key, whose
//!    certificate carries `id-kp-OCSPSigning` (RFC 6960 section 4.2.2.2), and
//! 4. answers anything it cannot read with an unsigned [`error_response`]
//!    ([`OcspError::error_status`] says which one).
//!
//! The nonce extension is echoed as RFC 6960 section 4.4.1 (as replaced by RFC 9654)
//! asks. No I/O and no clock: `produced_at`, `this_update` and `next_update` are
//! parameters.

mod asn1;

use der::asn1::{AnyRef, BitString, GeneralizedTime, Int, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::{Extension, Extensions};

use self::asn1::{
    BasicOcspResponse, CertIdAsn1, CertStatusAsn1, OcspRequest, OcspResponse, OcspResponseStatus, ResponderId,
    ResponseBytes, ResponseData, RevokedInfo, SingleResponse, Version,
};
use crate::crl::RevocationReason;
use crate::key::{key_identifier, KeyError, Signer};
use crate::oid;

/// The longest request [`parse_request`] reads (64 KiB). A request for 16 CertIDs with
/// a nonce is well under 2 KiB; the limit only bounds the work a hostile client causes.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// The most CertIDs one request may ask about.
pub const MAX_CERT_IDS: usize = 16;

/// The longest nonce accepted: RFC 9654 section 2.1, `Nonce ::= OCTET STRING(SIZE(1..128))`.
pub const MAX_NONCE_LEN: usize = 128;

/// The longest serial number: RFC 5280 section 4.1.2.2 (20 octets).
const MAX_SERIAL_LEN: usize = 20;

/// Errors from reading OCSP requests and responses and from building responses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The input is longer than allowed.
    #[error("the OCSP message is {len} bytes long; at most {max} are accepted")]
    TooLarge {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not the DER structure expected (includes trailing data).
    #[error("the {what} is not valid DER: {source}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What the decoder found.
        #[source]
        source: der::Error,
    },
    /// The request asks about no certificate.
    #[error("the OCSP request asks about no certificate")]
    NoRequests,
    /// The request asks about more certificates than allowed.
    #[error("the OCSP request asks about {count} certificates; at most {max} are accepted")]
    TooManyRequests {
        /// How many CertIDs the request holds.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A CertID uses a hash algorithm we do not support.
    #[error("the CertID hash algorithm {oid} is not supported (SHA-1, SHA-256, SHA-384 and SHA-512 are)")]
    UnsupportedHash {
        /// The algorithm's OID.
        oid: ObjectIdentifier,
    },
    /// A CertID is not well formed.
    #[error("the CertID is not well formed: {reason}")]
    BadCertId {
        /// What is wrong.
        reason: &'static str,
    },
    /// The nonce extension is empty, too long or not an OCTET STRING.
    #[error("the nonce is not acceptable: {reason}")]
    BadNonce {
        /// What is wrong.
        reason: &'static str,
    },
    /// An extension is marked critical and we do not understand it (RFC 6960 4.1.2).
    #[error("the critical extension {oid} is not supported")]
    UnsupportedCriticalExtension {
        /// The extension's OID.
        oid: ObjectIdentifier,
    },
    /// An extension appears twice (RFC 5280 section 4.2).
    #[error("the extension {oid} appears more than once")]
    DuplicateExtension {
        /// The extension's OID.
        oid: ObjectIdentifier,
    },
    /// A certificate given to us could not be read.
    #[error("the {what} certificate could not be read: {source}")]
    BadCertificate {
        /// Which certificate.
        what: &'static str,
        /// What the decoder found.
        #[source]
        source: der::Error,
    },
    /// The signer's key is not the responder certificate's key.
    #[error("the signing key does not match the responder certificate")]
    WrongSigner,
    /// A response must answer at least one CertID.
    #[error("an OCSP response needs at least one answer")]
    NoAnswers,
    /// nextUpdate is before thisUpdate.
    #[error("nextUpdate ({next_update}) is before thisUpdate ({this_update})")]
    BadValidity {
        /// thisUpdate.
        this_update: OffsetDateTime,
        /// nextUpdate.
        next_update: OffsetDateTime,
    },
    /// A time cannot be written as a GeneralizedTime (before 1970 or after 9999).
    #[error("the time {time} cannot be encoded")]
    Time {
        /// The time.
        time: OffsetDateTime,
    },
    /// A response is of a type other than id-pkix-ocsp-basic.
    #[error("the OCSP response type {oid} is not supported (only id-pkix-ocsp-basic is)")]
    UnsupportedResponseType {
        /// The responseType OID.
        oid: ObjectIdentifier,
    },
    /// A successful response carries no responseBytes, or an error response carries some.
    #[error("the OCSP response with status {status} is inconsistent: {reason}")]
    InconsistentResponse {
        /// The responseStatus.
        status: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// Encoding the response failed.
    #[error("DER encoding of the {what} failed: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: der::Error,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] KeyError),
    /// The responder answered with an error status instead of a status.
    #[error("the OCSP responder answered with error status {status} ({})", ErrorStatus::name_of(*status))]
    ResponderError {
        /// The OCSPResponseStatus.
        status: u8,
    },
    /// The response does not answer for the certificate asked about.
    #[error("the OCSP response does not answer for the certificate asked about")]
    NoAnswerForCertificate,
    /// No key trusted for this issuer verifies the response's signature.
    #[error("the OCSP response is not signed by the issuer or by a responder it authorised: {reason}")]
    UntrustedSignature {
        /// What is wrong.
        reason: &'static str,
    },
    /// The response is not current.
    #[error("the OCSP answer is not current at {now} (thisUpdate {this_update}, nextUpdate {next_update:?})")]
    NotCurrent {
        /// The time checked.
        now: OffsetDateTime,
        /// thisUpdate.
        this_update: OffsetDateTime,
        /// nextUpdate.
        next_update: Option<OffsetDateTime>,
    },
    /// The response echoes a nonce other than the one sent.
    #[error("the OCSP response carries a different nonce than the request (a replayed response?)")]
    NonceMismatch,
}

impl OcspError {
    /// The responseStatus a responder should send for this error: `malformedRequest` for
    /// anything wrong with the request, `internalError` for failures on our side.
    pub fn error_status(&self) -> ErrorStatus {
        match self {
            OcspError::TooLarge { .. }
            | OcspError::Malformed { .. }
            | OcspError::NoRequests
            | OcspError::TooManyRequests { .. }
            | OcspError::UnsupportedHash { .. }
            | OcspError::BadCertId { .. }
            | OcspError::BadNonce { .. }
            | OcspError::UnsupportedCriticalExtension { .. }
            | OcspError::DuplicateExtension { .. } => ErrorStatus::MalformedRequest,
            OcspError::BadCertificate { .. }
            | OcspError::WrongSigner
            | OcspError::NoAnswers
            | OcspError::BadValidity { .. }
            | OcspError::Time { .. }
            | OcspError::UnsupportedResponseType { .. }
            | OcspError::InconsistentResponse { .. }
            | OcspError::Encode { .. }
            | OcspError::Sign(_)
            | OcspError::ResponderError { .. }
            | OcspError::NoAnswerForCertificate
            | OcspError::UntrustedSignature { .. }
            | OcspError::NotCurrent { .. }
            | OcspError::NonceMismatch => ErrorStatus::InternalError,
        }
    }
}

fn malformed(what: &'static str) -> impl FnOnce(der::Error) -> OcspError {
    move |source| OcspError::Malformed { what, source }
}

fn encode_failed(what: &'static str) -> impl FnOnce(der::Error) -> OcspError {
    move |source| OcspError::Encode { what, source }
}

// ---------------------------------------------------------------------------------------
// Error responses

/// The `OCSPResponseStatus` values of an unsuccessful response (RFC 6960 section 4.2.1).
///
/// ```text
/// OCSPResponseStatus ::= ENUMERATED {
///     successful            (0),  -- Response has valid confirmations
///     malformedRequest      (1),  -- Illegal confirmation request
///     internalError         (2),  -- Internal error in issuer
///     tryLater              (3),  -- Try again later
///                                 -- (4) is not used
///     sigRequired           (5),  -- Must sign the request
///     unauthorized          (6)   -- Request unauthorized
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorStatus {
    /// malformedRequest (1): the request could not be read.
    MalformedRequest,
    /// internalError (2): the responder failed.
    InternalError,
    /// tryLater (3): the responder cannot answer now.
    TryLater,
    /// sigRequired (5): the request must be signed.
    SigRequired,
    /// unauthorized (6): the responder does not answer for this issuer (RFC 5019 2.2.3).
    Unauthorized,
}

impl ErrorStatus {
    /// The OCSPResponseStatus value.
    pub fn code(self) -> u8 {
        match self {
            ErrorStatus::MalformedRequest => 1,
            ErrorStatus::InternalError => 2,
            ErrorStatus::TryLater => 3,
            ErrorStatus::SigRequired => 5,
            ErrorStatus::Unauthorized => 6,
        }
    }

    /// The RFC 6960 name of an OCSPResponseStatus value.
    pub fn name_of(code: u8) -> &'static str {
        match code {
            0 => "successful",
            1 => "malformedRequest",
            2 => "internalError",
            3 => "tryLater",
            5 => "sigRequired",
            6 => "unauthorized",
            _ => "not defined by RFC 6960",
        }
    }
}

/// An unsigned error response: `OCSPResponse` with only `responseStatus` (RFC 6960
/// section 4.2.1: "If the value of responseStatus is one of the error conditions,
/// the responseBytes field is not set").
///
/// ```text
/// OCSPResponse ::= SEQUENCE {
///    responseStatus         OCSPResponseStatus,
///    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
/// ```
///
/// The encoding is `SEQUENCE { ENUMERATED status }`: `30 03 0a 01 xx`.
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status.code()]
}

// ---------------------------------------------------------------------------------------
// CertID

/// The hash algorithm of a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1 (`1.3.14.3.2.26`): what OpenSSL, NSS and RFC 5019 clients send.
    Sha1,
    /// SHA-256 (RFC 5754).
    Sha256,
    /// SHA-384 (RFC 5754).
    Sha384,
    /// SHA-512 (RFC 5754).
    Sha512,
}

impl CertIdHash {
    /// Every supported hash.
    pub const ALL: [CertIdHash; 4] = [CertIdHash::Sha1, CertIdHash::Sha256, CertIdHash::Sha384, CertIdHash::Sha512];

    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            CertIdHash::Sha1 => oid::SHA1,
            CertIdHash::Sha256 => oid::SHA256,
            CertIdHash::Sha384 => oid::SHA384,
            CertIdHash::Sha512 => oid::SHA512,
        }
    }

    /// The hash with this OID, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.oid() == *oid)
    }

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        self.algorithm().output_len()
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(self.algorithm(), data).as_ref().to_vec()
    }

    fn algorithm(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            CertIdHash::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            CertIdHash::Sha256 => &aws_lc_rs::digest::SHA256,
            CertIdHash::Sha384 => &aws_lc_rs::digest::SHA384,
            CertIdHash::Sha512 => &aws_lc_rs::digest::SHA512,
        }
    }
}

/// What a request asks about: one `CertID` (RFC 6960 section 4.1.1).
///
/// ```text
/// CertID ::= SEQUENCE {
///     hashAlgorithm       AlgorithmIdentifier,
///     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
///     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
///     serialNumber        CertificateSerialNumber }
/// ```
///
/// Values read by [`parse_request`] or [`parse_response`] have hashes of the right
/// length for `hash` and a positive serial of at most 20 octets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The hash algorithm of the two hashes.
    pub hash: CertIdHash,
    /// Hash of the DER of the issuer's subject name.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey BIT STRING value (without tag, length and
    /// unused-bits octet).
    pub issuer_key_hash: Vec<u8>,
    /// The serial number: positive integer bytes, no leading zero.
    pub serial: Vec<u8>,
}

impl CertId {
    fn from_asn1(asn: &CertIdAsn1) -> Result<Self, OcspError> {
        let algorithm = &asn.hash_algorithm;
        let hash = CertIdHash::from_oid(&algorithm.oid).ok_or(OcspError::UnsupportedHash { oid: algorithm.oid })?;
        // RFC 5754 section 2: implementations MUST accept absent or NULL parameters.
        if let Some(params) = &algorithm.parameters {
            if params.decode_as::<Null>().is_err() {
                return Err(OcspError::BadCertId { reason: "the hash algorithm parameters must be absent or NULL" });
            }
        }
        let issuer_name_hash = asn.issuer_name_hash.as_bytes().to_vec();
        let issuer_key_hash = asn.issuer_key_hash.as_bytes().to_vec();
        if issuer_name_hash.len() != hash.output_len() || issuer_key_hash.len() != hash.output_len() {
            return Err(OcspError::BadCertId { reason: "the issuer hashes do not have the hash algorithm's length" });
        }
        let serial = positive_serial(asn.serial_number.as_bytes())?;
        Ok(Self { hash, issuer_name_hash, issuer_key_hash, serial })
    }

    fn to_asn1(&self) -> Result<CertIdAsn1, OcspError> {
        let what = "CertID";
        let serial = normalize_serial(&self.serial);
        let serial_number = if serial.first().is_some_and(|b| b & 0x80 != 0) {
            let mut padded = Vec::with_capacity(serial.len() + 1);
            padded.push(0);
            padded.extend_from_slice(serial);
            Int::new(&padded)
        } else if serial.is_empty() {
            Int::new(&[0])
        } else {
            Int::new(serial)
        }
        .map_err(encode_failed(what))?;
        Ok(CertIdAsn1 {
            // OpenSSL and NSS write NULL parameters for the CertID hash.
            hash_algorithm: AlgorithmIdentifierOwned { oid: self.hash.oid(), parameters: Some(Null.into()) },
            issuer_name_hash: OctetString::new(self.issuer_name_hash.clone()).map_err(encode_failed(what))?,
            issuer_key_hash: OctetString::new(self.issuer_key_hash.clone()).map_err(encode_failed(what))?,
            serial_number,
        })
    }
}

/// Strips leading zero octets.
fn normalize_serial(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    serial.get(start..).unwrap_or_default()
}

/// Reads the two's-complement INTEGER content of a serial number as positive bytes.
fn positive_serial(int_bytes: &[u8]) -> Result<Vec<u8>, OcspError> {
    if int_bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(OcspError::BadCertId { reason: "the serial number is negative" });
    }
    let serial = normalize_serial(int_bytes);
    if serial.is_empty() {
        return Err(OcspError::BadCertId { reason: "the serial number is zero" });
    }
    if serial.len() > MAX_SERIAL_LEN {
        return Err(OcspError::BadCertId { reason: "the serial number is longer than 20 octets" });
    }
    Ok(serial.to_vec())
}

/// The issuer a responder answers for: the hashes of its name and key for each
/// supported hash (RFC 6960 section 4.1.1: "issuerNameHash is the hash of the issuer's
/// distinguished name ... issuerKeyHash is the hash of the issuer's public key. The hash
/// shall be calculated over the value (excluding tag and length) of the subject public
/// key field in the issuer's certificate").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerHashes {
    /// `(hash, name hash, key hash)` for each of [`CertIdHash::ALL`].
    hashes: Vec<(CertIdHash, Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    /// Computes the hashes from the issuing CA's certificate (DER). The name hash covers
    /// the DER of the certificate's subject, the key hash the subjectPublicKey bits.
    pub fn new(issuer_cert_der: &[u8]) -> Result<Self, OcspError> {
        let what = "issuer";
        let cert = x509_cert::Certificate::from_der(issuer_cert_der)
            .map_err(|source| OcspError::BadCertificate { what, source })?;
        let tbs = cert.tbs_certificate();
        let name_der = tbs.subject().to_der().map_err(|source| OcspError::BadCertificate { what, source })?;
        let key_bits = tbs.subject_public_key_info().subject_public_key.raw_bytes();
        let hashes = CertIdHash::ALL.into_iter().map(|h| (h, h.digest(&name_der), h.digest(key_bits))).collect();
        Ok(Self { hashes })
    }

    /// Whether `id` names this issuer (the serial is not looked at).
    pub fn matches(&self, id: &CertId) -> bool {
        self.hashes
            .iter()
            .any(|(h, name, key)| *h == id.hash && *name == id.issuer_name_hash && *key == id.issuer_key_hash)
    }

    /// The CertID of the certificate with `serial` issued by this issuer.
    pub fn cert_id(&self, hash: CertIdHash, serial: &[u8]) -> CertId {
        let (issuer_name_hash, issuer_key_hash) = self
            .hashes
            .iter()
            .find(|(h, _, _)| *h == hash)
            .map(|(_, name, key)| (name.clone(), key.clone()))
            .unwrap_or_default();
        CertId { hash, issuer_name_hash, issuer_key_hash, serial: normalize_serial(serial).to_vec() }
    }
}

// ---------------------------------------------------------------------------------------
// Requests

/// A request that passed [`parse_request`]: between 1 and [`MAX_CERT_IDS`] CertIDs and
/// the nonce, if one was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The certificates asked about, in request order.
    pub cert_ids: Vec<CertId>,
    /// The nonce (the `Nonce` OCTET STRING's content, 1 to [`MAX_NONCE_LEN`] bytes);
    /// echo it with [`build_response`].
    pub nonce: Option<Vec<u8>>,
}

/// Checks extensions: no duplicates, and no critical extension other than `understood`.
fn check_extensions(extensions: &Extensions, understood: &[ObjectIdentifier]) -> Result<(), OcspError> {
    for (i, ext) in extensions.iter().enumerate() {
        if extensions.iter().take(i).any(|earlier| earlier.extn_id == ext.extn_id) {
            return Err(OcspError::DuplicateExtension { oid: ext.extn_id });
        }
        if ext.critical && !understood.contains(&ext.extn_id) {
            return Err(OcspError::UnsupportedCriticalExtension { oid: ext.extn_id });
        }
    }
    Ok(())
}

/// Reads the nonce extension's value: `Nonce ::= OCTET STRING(SIZE(1..128))` (RFC 9654
/// section 2.1), carried DER-encoded in extnValue.
fn read_nonce(extensions: Option<&Extensions>) -> Result<Option<Vec<u8>>, OcspError> {
    let Some(ext) = extensions.and_then(|exts| exts.iter().find(|e| e.extn_id == oid::OCSP_NONCE)) else {
        return Ok(None);
    };
    let nonce = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|_| OcspError::BadNonce { reason: "the extension value is not a DER OCTET STRING" })?;
    let bytes = nonce.as_bytes();
    if bytes.is_empty() {
        return Err(OcspError::BadNonce { reason: "the nonce is empty" });
    }
    if bytes.len() > MAX_NONCE_LEN {
        return Err(OcspError::BadNonce { reason: "the nonce is longer than 128 octets" });
    }
    Ok(Some(bytes.to_vec()))
}

/// Parses a DER `OCSPRequest` (RFC 6960 section 4.1.1).
///
/// ```text
/// OCSPRequest ::= SEQUENCE {
///     tbsRequest                  TBSRequest,
///     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
///
/// TBSRequest ::= SEQUENCE {
///     version             [0]     EXPLICIT Version DEFAULT v1,
///     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
///     requestList                 SEQUENCE OF Request,
///     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
///
/// Request ::= SEQUENCE {
///     reqCert                     CertID,
///     singleRequestExtensions     [0] EXPLICIT Extensions OPTIONAL }
/// ```
///
/// Refuses input longer than [`MAX_REQUEST_LEN`], anything that is not exactly one DER
/// `OCSPRequest` (trailing data included), a version other than v1, an empty request
/// list or more than [`MAX_CERT_IDS`] entries, a CertID hash other than SHA-1/-2
/// ([`OcspError::UnsupportedHash`]), a malformed CertID, a bad nonce, duplicate
/// extensions and critical extensions we do not understand. A request signature is
/// not checked: anyone may ask.
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, OcspError> {
    if der.len() > MAX_REQUEST_LEN {
        return Err(OcspError::TooLarge { len: der.len(), max: MAX_REQUEST_LEN });
    }
    let request = OcspRequest::from_der(der).map_err(malformed("OCSP request"))?;
    let tbs = request.tbs_request;
    let list = &tbs.request_list;
    if list.is_empty() {
        return Err(OcspError::NoRequests);
    }
    if list.len() > MAX_CERT_IDS {
        return Err(OcspError::TooManyRequests { count: list.len(), max: MAX_CERT_IDS });
    }
    if let Some(extensions) = &tbs.request_extensions {
        check_extensions(extensions, &[oid::OCSP_NONCE])?;
    }
    let mut cert_ids = Vec::with_capacity(list.len());
    for entry in list {
        if let Some(extensions) = &entry.single_request_extensions {
            check_extensions(extensions, &[])?;
        }
        cert_ids.push(CertId::from_asn1(&entry.req_cert)?);
    }
    let nonce = read_nonce(tbs.request_extensions.as_ref())?;
    Ok(ParsedRequest { cert_ids, nonce })
}

fn nonce_extension(nonce: &[u8]) -> Result<Extension, OcspError> {
    let what = "nonce";
    let value = OctetString::new(nonce).map_err(encode_failed(what))?.to_der().map_err(encode_failed(what))?;
    Ok(Extension {
        extn_id: oid::OCSP_NONCE,
        critical: false,
        extn_value: OctetString::new(value).map_err(encode_failed(what))?,
    })
}

/// Builds an unsigned DER `OCSPRequest` (RFC 6960 section 4.1.1) for `cert_ids`, with a
/// nonce extension if `nonce` is given (1 to [`MAX_NONCE_LEN`] bytes; the caller draws
/// it from a CSPRNG, RFC 9654 section 2.1).
pub fn build_request(cert_ids: &[CertId], nonce: Option<&[u8]>) -> Result<Vec<u8>, OcspError> {
    let what = "OCSP request";
    if let Some(n) = nonce {
        if n.is_empty() || n.len() > MAX_NONCE_LEN {
            return Err(OcspError::BadNonce { reason: "the nonce must be 1 to 128 octets" });
        }
    }
    let request_list = cert_ids
        .iter()
        .map(|id| Ok(asn1::Request { req_cert: id.to_asn1()?, single_request_extensions: None }))
        .collect::<Result<Vec<_>, OcspError>>()?;
    let request_extensions = nonce.map(|n| nonce_extension(n).map(|e| vec![e])).transpose()?;
    let request = OcspRequest {
        tbs_request: asn1::TbsRequest { version: Version::V1, requestor_name: None, request_list, request_extensions },
        optional_signature: None,
    };
    request.to_der().map_err(encode_failed(what))
}

// ---------------------------------------------------------------------------------------
// Responses

/// The status of one certificate (RFC 6960 section 4.2.1 `CertStatus`).
///
/// ```text
/// CertStatus ::= CHOICE {
///     good        [0]     IMPLICIT NULL,
///     revoked     [1]     IMPLICIT RevokedInfo,
///     unknown     [2]     IMPLICIT UnknownInfo }
///
/// RevokedInfo ::= SEQUENCE {
///     revocationTime              GeneralizedTime,
///     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked (RFC 6960 section 2.2: "a positive response to the status inquiry").
    Good,
    /// Revoked at `at`.
    Revoked {
        /// revocationTime.
        at: OffsetDateTime,
        /// The reason. `None` and `Some(Unspecified)` are both written without a
        /// revocationReason (RFC 5280 5.3.1). When reading, `None` also stands for a
        /// reason [`RevocationReason`] does not name (see [`ParsedAnswer::reason_code`]).
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// One answer to put in a response: `SingleResponse` (RFC 6960 section 4.2.1).
///
/// ```text
/// SingleResponse ::= SEQUENCE {
///    certID                       CertID,
///    certStatus                   CertStatus,
///    thisUpdate                   GeneralizedTime,
///    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
///    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleAnswer {
    /// The CertID, as the request gave it.
    pub cert_id: CertId,
    /// The status.
    pub status: CertStatus,
    /// When the status was known to be correct.
    pub this_update: OffsetDateTime,
    /// When newer status will be available (always sent; RFC 5019 2.2.4).
    pub next_update: OffsetDateTime,
}

/// GeneralizedTime without fractional seconds (RFC 6960 section 4.2.2.1, RFC 5280
/// 4.1.2.5.2): sub-second parts are dropped.
fn generalized_time(time: OffsetDateTime) -> Result<GeneralizedTime, OcspError> {
    let secs = u64::try_from(time.unix_timestamp()).map_err(|_| OcspError::Time { time })?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|_| OcspError::Time { time })?;
    Ok(GeneralizedTime::from_date_time(dt))
}

fn offset_time(time: &GeneralizedTime) -> Result<OffsetDateTime, OcspError> {
    let secs = i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| OcspError::Malformed {
        what: "OCSP response time",
        source: der::Tag::GeneralizedTime.value_error().into(),
    })
}

fn crl_reason(reason: RevocationReason) -> Option<CrlReason> {
    match reason {
        RevocationReason::Unspecified => None,
        RevocationReason::KeyCompromise => Some(CrlReason::KeyCompromise),
        RevocationReason::AffiliationChanged => Some(CrlReason::AffiliationChanged),
        RevocationReason::Superseded => Some(CrlReason::Superseded),
        RevocationReason::CessationOfOperation => Some(CrlReason::CessationOfOperation),
    }
}

fn single_response(answer: &SingleAnswer) -> Result<SingleResponse, OcspError> {
    if answer.next_update < answer.this_update {
        return Err(OcspError::BadValidity { this_update: answer.this_update, next_update: answer.next_update });
    }
    let cert_status = match answer.status {
        CertStatus::Good => CertStatusAsn1::Good(Null),
        CertStatus::Revoked { at, reason } => CertStatusAsn1::Revoked(RevokedInfo {
            revocation_time: generalized_time(at)?,
            revocation_reason: reason.and_then(crl_reason),
        }),
        CertStatus::Unknown => CertStatusAsn1::Unknown(Null),
    };
    Ok(SingleResponse {
        cert_id: answer.cert_id.to_asn1()?,
        cert_status,
        this_update: generalized_time(answer.this_update)?,
        next_update: Some(generalized_time(answer.next_update)?),
        single_extensions: None,
    })
}

/// Builds and signs a successful response: a `BasicOCSPResponse` wrapped in
/// `OCSPResponse` (RFC 6960 sections 4.2.1 and 4.2.2).
///
/// ```text
/// OCSPResponse ::= SEQUENCE {
///    responseStatus         OCSPResponseStatus,
///    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
///
/// ResponseBytes ::=       SEQUENCE {
///     responseType   OBJECT IDENTIFIER,   -- id-pkix-ocsp-basic
///     response       OCTET STRING }       -- DER of BasicOCSPResponse
///
/// BasicOCSPResponse       ::= SEQUENCE {
///    tbsResponseData      ResponseData,
///    signatureAlgorithm   AlgorithmIdentifier,
///    signature            BIT STRING,
///    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
///
/// ResponseData ::= SEQUENCE {
///    version              [0] EXPLICIT Version DEFAULT v1,
///    responderID              ResponderID,
///    producedAt               GeneralizedTime,
///    responses                SEQUENCE OF SingleResponse,
///    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
/// ```
///
/// The responderID is `byKey` (SHA-1 of the responder certificate's subjectPublicKey,
/// RFC 5019 2.2.3 recommends it), the version is v1 (omitted), the nonce is echoed in
/// responseExtensions if given, and `certs` holds `responder_cert_der` so that clients
/// can verify a delegated responder (RFC 6960 4.2.2.2). The DER of ResponseData is
/// signed with `signer`, which must hold the responder certificate's key.
pub fn build_response(
    signer: &dyn Signer,
    responder_cert_der: &[u8],
    answers: &[SingleAnswer],
    produced_at: OffsetDateTime,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, OcspError> {
    if answers.is_empty() {
        return Err(OcspError::NoAnswers);
    }
    let what = "responder";
    let responder = x509_cert::Certificate::from_der(responder_cert_der)
        .map_err(|source| OcspError::BadCertificate { what, source })?;
    let responder_key: &SubjectPublicKeyInfoOwned = responder.tbs_certificate().subject_public_key_info();
    if signer.public_key() != responder_key {
        return Err(OcspError::WrongSigner);
    }
    let responses = answers.iter().map(single_response).collect::<Result<Vec<_>, _>>()?;
    let response_extensions = nonce.map(|n| nonce_extension(n).map(|e| vec![e])).transpose()?;
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(
            OctetString::new(key_identifier(responder_key)).map_err(encode_failed("responder ID"))?,
        ),
        produced_at: generalized_time(produced_at)?,
        responses,
        response_extensions,
    };
    let tbs_der = data.to_der().map_err(encode_failed("ResponseData"))?;
    let signature = signer.sign(&tbs_der)?;

    let what = "BasicOCSPResponse";
    let basic = BasicOcspResponse {
        tbs_response_data: AnyRef::from_der(&tbs_der).map_err(encode_failed(what))?,
        signature_algorithm: signer.signature_algorithm(),
        signature: BitString::from_bytes(&signature).map_err(encode_failed(what))?,
        certs: Some(vec![AnyRef::from_der(responder_cert_der).map_err(encode_failed(what))?]),
    };
    let basic_der = basic.to_der().map_err(encode_failed(what))?;
    let what = "OCSPResponse";
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: oid::OCSP_BASIC,
            response: OctetString::new(basic_der).map_err(encode_failed(what))?,
        }),
    }
    .to_der()
    .map_err(encode_failed(what))
}

/// One `SingleResponse` read by [`parse_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAnswer {
    /// The CertID answered.
    pub cert_id: CertId,
    /// The status.
    pub status: CertStatus,
    /// The CRLReason code as sent, if any (also for reasons [`RevocationReason`] does
    /// not name, such as cACompromise(2) or certificateHold(6)).
    pub reason_code: Option<u8>,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate, if given.
    pub next_update: Option<OffsetDateTime>,
}

/// A response read by [`parse_response`]. Nothing here is verified: check the
/// signature over `tbs_response_data` with the key of a certificate you trust for this
/// issuer (the CA itself or a delegated responder it issued with id-kp-OCSPSigning),
/// then the nonce and the times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedResponse {
    /// The OCSPResponseStatus (0 = successful). For other values every other field is
    /// empty.
    pub status: u8,
    /// The answers.
    pub answers: Vec<ParsedAnswer>,
    /// The nonce echoed (the `Nonce` OCTET STRING's content).
    pub nonce: Option<Vec<u8>>,
    /// The certificates in `certs` (DER), typically the delegated responder's.
    pub certs: Vec<Vec<u8>>,
    /// The responderID `byKey` value (SHA-1 of the responder's subjectPublicKey), if
    /// the responder is named by key.
    pub responder_key_hash: Option<Vec<u8>>,
    /// producedAt (`None` for unsuccessful responses).
    pub produced_at: Option<OffsetDateTime>,
    /// The exact DER of ResponseData: the signed bytes.
    pub tbs_response_data: Vec<u8>,
    /// The signature algorithm (`None` for unsuccessful responses).
    pub signature_algorithm: Option<AlgorithmIdentifierOwned>,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

fn reason_code(reason: CrlReason) -> u8 {
    // CRLReason values are 0..=10 (RFC 5280 5.3.1).
    u8::try_from(reason as u32).unwrap_or(u8::MAX)
}

fn parse_answer(single: &SingleResponse) -> Result<ParsedAnswer, OcspError> {
    let (status, reason_code) = match &single.cert_status {
        CertStatusAsn1::Good(_) => (CertStatus::Good, None),
        CertStatusAsn1::Unknown(_) => (CertStatus::Unknown, None),
        CertStatusAsn1::Revoked(info) => {
            let code = info.revocation_reason.map(reason_code);
            let reason = code.and_then(RevocationReason::from_code);
            (CertStatus::Revoked { at: offset_time(&info.revocation_time)?, reason }, code)
        }
    };
    Ok(ParsedAnswer {
        cert_id: CertId::from_asn1(&single.cert_id)?,
        status,
        reason_code,
        this_update: offset_time(&single.this_update)?,
        next_update: single.next_update.as_ref().map(offset_time).transpose()?,
    })
}

/// Parses a DER `OCSPResponse` (RFC 6960 section 4.2.1) of type id-pkix-ocsp-basic.
/// Does not verify anything (see [`ParsedResponse`]).
pub fn parse_response(der: &[u8]) -> Result<ParsedResponse, OcspError> {
    let response = OcspResponse::from_der(der).map_err(malformed("OCSP response"))?;
    let status = response.response_status as u8;
    let bytes = match (response.response_status, response.response_bytes) {
        (OcspResponseStatus::Successful, Some(bytes)) => bytes,
        (OcspResponseStatus::Successful, None) => {
            return Err(OcspError::InconsistentResponse {
                status,
                reason: "a successful response has no responseBytes",
            })
        }
        (_, Some(_)) => {
            return Err(OcspError::InconsistentResponse { status, reason: "an error response has responseBytes" })
        }
        (_, None) => {
            return Ok(ParsedResponse {
                status,
                answers: Vec::new(),
                nonce: None,
                certs: Vec::new(),
                responder_key_hash: None,
                produced_at: None,
                tbs_response_data: Vec::new(),
                signature_algorithm: None,
                signature: Vec::new(),
            })
        }
    };
    if bytes.response_type != oid::OCSP_BASIC {
        return Err(OcspError::UnsupportedResponseType { oid: bytes.response_type });
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(malformed("BasicOCSPResponse"))?;
    let tbs_response_data = basic.tbs_response_data.to_der().map_err(malformed("ResponseData"))?;
    let data = ResponseData::from_der(&tbs_response_data).map_err(malformed("ResponseData"))?;
    if let Some(extensions) = &data.response_extensions {
        check_extensions(extensions, &[oid::OCSP_NONCE])?;
    }
    let answers = data.responses.iter().map(parse_answer).collect::<Result<Vec<_>, _>>()?;
    let nonce = read_nonce(data.response_extensions.as_ref())?;
    let certs = basic
        .certs
        .unwrap_or_default()
        .iter()
        .map(|c| c.to_der().map_err(malformed("certificate")))
        .collect::<Result<Vec<_>, _>>()?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or(OcspError::Malformed { what: "signature", source: der::Tag::BitString.value_error().into() })?
        .to_vec();
    let responder_key_hash = match &data.responder_id {
        ResponderId::ByKey(hash) => Some(hash.as_bytes().to_vec()),
        ResponderId::ByName(_) => None,
    };
    Ok(ParsedResponse {
        status,
        answers,
        nonce,
        certs,
        responder_key_hash,
        produced_at: Some(offset_time(&data.produced_at)?),
        tbs_response_data,
        signature_algorithm: Some(basic.signature_algorithm),
        signature,
    })
}

/// How long an answer without nextUpdate counts as current after its thisUpdate, and
/// how far in the future thisUpdate may lie (clock skew), when checking a response.
pub const RESPONSE_GRACE: time::Duration = time::Duration::minutes(5);

/// How long an answer without nextUpdate counts as current (RFC 6960 section 4.2.2.1:
/// "responses where nextUpdate is not set are equivalent to a CRL with no time for
/// nextUpdate"; we accept them for one day after thisUpdate).
pub const MAX_AGE_WITHOUT_NEXT_UPDATE: time::Duration = time::Duration::days(1);

/// The status of one certificate read from a response that passed [`check_response`].
/// Only [`check_response`] makes one.
#[derive(Debug, PartialEq, Eq)]
pub struct CheckedStatus {
    status: CertStatus,
    reason_code: Option<u8>,
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
}

impl CheckedStatus {
    /// good, revoked or unknown.
    pub fn status(&self) -> &CertStatus {
        &self.status
    }

    /// The CRLReason code as sent, for revoked certificates.
    pub fn reason_code(&self) -> Option<u8> {
        self.reason_code
    }

    /// thisUpdate of the answer.
    pub fn this_update(&self) -> OffsetDateTime {
        self.this_update
    }

    /// nextUpdate of the answer; until then the answer may be cached (RFC 5019 section 4).
    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.next_update
    }
}

fn is_authorised_responder(candidate_der: &[u8], issuer: &x509_cert::Certificate, now: OffsetDateTime) -> bool {
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    let Ok(candidate) = x509_cert::Certificate::from_der(candidate_der) else { return false };
    let tbs = candidate.tbs_certificate();
    if tbs.issuer() != issuer.tbs_certificate().subject() {
        return false;
    }
    // RFC 6960 section 4.2.2.2: the responder's certificate carries id-kp-OCSPSigning
    // and is issued directly by the CA that issued the certificate in question.
    let eku = crate::x509::find_extension::<ExtendedKeyUsage>(tbs.extensions());
    if !eku.is_some_and(|eku| eku.0.contains(&oid::KP_OCSP_SIGNING)) {
        return false;
    }
    let valid = crate::x509::to_offset(&tbs.validity().not_before).is_some_and(|t| t <= now)
        && crate::x509::to_offset(&tbs.validity().not_after).is_some_and(|t| now <= t);
    let (Ok(candidate_tbs), Some(signature)) = (tbs.to_der(), candidate.signature().as_bytes()) else {
        return false;
    };
    valid
        && crate::key::verify_signature(
            issuer.tbs_certificate().subject_public_key_info(),
            candidate.signature_algorithm(),
            &candidate_tbs,
            signature,
        )
        .is_ok()
}

/// Checks a response (DER) to a request about `serial` issued by `issuer_cert_der`, as
/// an OCSP client must (RFC 6960 section 3.2):
///
/// 1. the response status is successful and an answer names the certificate (the
///    CertID's issuer hashes and serial);
/// 2. the signature verifies with the issuer's key, or with the key of a certificate in
///    the response that the issuer signed, that carries id-kp-OCSPSigning and that is
///    valid at `now` (a delegated responder);
/// 3. thisUpdate is not later than `now` (allowing [`RESPONSE_GRACE`] of clock skew)
///    and nextUpdate, if set, not earlier; without nextUpdate the answer counts for
///    [`MAX_AGE_WITHOUT_NEXT_UPDATE`];
/// 4. a nonce in the response equals `nonce`. Pre-signed responses (RFC 5019) carry
///    none, which is accepted.
pub fn check_response(
    der: &[u8],
    issuer_cert_der: &[u8],
    serial: &[u8],
    nonce: Option<&[u8]>,
    now: OffsetDateTime,
) -> Result<CheckedStatus, OcspError> {
    let response = parse_response(der)?;
    if response.status != 0 {
        return Err(OcspError::ResponderError { status: response.status });
    }
    let what = "issuer";
    let issuer = x509_cert::Certificate::from_der(issuer_cert_der)
        .map_err(|source| OcspError::BadCertificate { what, source })?;
    let hashes = IssuerHashes::new(issuer_cert_der)?;
    let serial = normalize_serial(serial);
    let answer = response
        .answers
        .iter()
        .find(|a| hashes.matches(&a.cert_id) && a.cert_id.serial == serial)
        .ok_or(OcspError::NoAnswerForCertificate)?;
    let Some(algorithm) = &response.signature_algorithm else {
        return Err(OcspError::UntrustedSignature { reason: "the response has no signature" });
    };
    let verifies = |spki: &SubjectPublicKeyInfoOwned| {
        crate::key::verify_signature(spki, algorithm, &response.tbs_response_data, &response.signature).is_ok()
    };
    let signed_by_issuer = verifies(issuer.tbs_certificate().subject_public_key_info());
    let signed_by_delegate = !signed_by_issuer
        && response.certs.iter().any(|c| {
            is_authorised_responder(c, &issuer, now)
                && x509_cert::Certificate::from_der(c)
                    .is_ok_and(|cert| verifies(cert.tbs_certificate().subject_public_key_info()))
        });
    if !signed_by_issuer && !signed_by_delegate {
        return Err(OcspError::UntrustedSignature {
            reason: "neither the issuer's key nor an authorised responder certificate verifies it",
        });
    }
    let current = answer.this_update <= now + RESPONSE_GRACE
        && match answer.next_update {
            Some(next) => now <= next,
            None => now <= answer.this_update + MAX_AGE_WITHOUT_NEXT_UPDATE,
        };
    if !current {
        return Err(OcspError::NotCurrent { now, this_update: answer.this_update, next_update: answer.next_update });
    }
    if let (Some(sent), Some(echoed)) = (nonce, response.nonce.as_deref()) {
        if sent != echoed {
            return Err(OcspError::NonceMismatch);
        }
    }
    Ok(CheckedStatus {
        status: answer.status,
        reason_code: answer.reason_code,
        this_update: answer.this_update,
        next_update: answer.next_update,
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::path::Path;
    use std::process::{Command, Output};

    use aws_lc_rs::rand::SystemRandom;
    use der::Sequence;
    use time::macros::datetime;
    use x509_cert::certificate::Version as CertVersion;
    use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::Validity;

    use super::*;
    use crate::issuance::{build_ca_certificate, extension, random_serial, sign_tbs, x509_time, CaCertificateRequest};
    use crate::key::{verify_signature, KeyAlgorithm, PrivateKey};
    use crate::subject::{ca_name, Organization};

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
    const MD5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");

    /// `TBSCertificate` (RFC 5280 section 4.1) for the test responder certificate.
    #[derive(Sequence)]
    struct TbsOut {
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
        version: CertVersion,
        serial_number: SerialNumber,
        signature: AlgorithmIdentifierOwned,
        issuer: Name,
        validity: Validity,
        subject: Name,
        subject_public_key_info: SubjectPublicKeyInfoOwned,
        #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
        extensions: Extensions,
    }

    /// A CA, a certificate it issued (the "leaf"; a sub-CA is as good as any for OCSP)
    /// and a delegated responder, all valid 2025-01-01 to 2035-01-01.
    struct Pki {
        dir: tempfile::TempDir,
        ca_der: Vec<u8>,
        ca_key: PrivateKey,
        leaf_serial: Vec<u8>,
        responder_der: Vec<u8>,
        responder_key: PrivateKey,
        hashes: IssuerHashes,
    }

    fn pem(der: &[u8]) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap()
    }

    fn pki() -> Pki {
        let rng = SystemRandom::new();
        let org = Organization::new("Certdesk Test", "DE", None).unwrap();
        let not_before = datetime!(2025-01-01 0:00 UTC);
        let not_after = datetime!(2035-01-01 0:00 UTC);
        let ca_key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let ca_subject = ca_name("Certdesk Test CA", &org).unwrap();
        let ca_der = build_ca_certificate(
            &CaCertificateRequest {
                subject: ca_subject.clone(),
                public_key: ca_key.public_key().clone(),
                not_before,
                not_after,
                path_len: Some(0),
                email_protection_only: true,
                crl_url: None,
            },
            None,
            &ca_key,
            &rng,
        )
        .unwrap();
        let ca_ski = key_identifier(ca_key.public_key());

        let leaf_key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let leaf_der = build_ca_certificate(
            &CaCertificateRequest {
                subject: ca_name("Certdesk Test Leaf", &org).unwrap(),
                public_key: leaf_key.public_key().clone(),
                not_before,
                not_after,
                path_len: Some(0),
                email_protection_only: true,
                crl_url: None,
            },
            Some((&ca_subject, &ca_ski)),
            &ca_key,
            &rng,
        )
        .unwrap();
        let leaf = x509_cert::Certificate::from_der(&leaf_der).unwrap();
        let leaf_serial = normalize_serial(leaf.tbs_certificate().serial_number().as_bytes()).to_vec();

        let responder_key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let nocheck = Extension {
            extn_id: oid::OCSP_NOCHECK,
            critical: false,
            extn_value: OctetString::new(Null.to_der().unwrap()).unwrap(),
        };
        let tbs = TbsOut {
            version: CertVersion::V3,
            serial_number: SerialNumber::new(&random_serial(&rng).unwrap()).unwrap(),
            signature: ca_key.signature_algorithm(),
            issuer: ca_subject,
            validity: Validity::new(x509_time(not_before).unwrap(), x509_time(not_after).unwrap()),
            subject: ca_name("Certdesk Test OCSP Responder", &org).unwrap(),
            subject_public_key_info: responder_key.public_key().clone(),
            extensions: vec![
                extension(true, &BasicConstraints { ca: false, path_len_constraint: None }).unwrap(),
                extension(true, &KeyUsage(KeyUsages::DigitalSignature.into())).unwrap(),
                extension(false, &ExtendedKeyUsage(vec![oid::KP_OCSP_SIGNING])).unwrap(),
                extension(
                    false,
                    &AuthorityKeyIdentifier {
                        key_identifier: Some(OctetString::new(ca_ski).unwrap()),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: None,
                    },
                )
                .unwrap(),
                nocheck,
            ],
        };
        let responder_der = sign_tbs(&tbs.to_der().unwrap(), &ca_key).unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), pem(&ca_der)).unwrap();
        std::fs::write(dir.path().join("leaf.pem"), pem(&leaf_der)).unwrap();
        std::fs::write(dir.path().join("responder.pem"), pem(&responder_der)).unwrap();
        let hashes = IssuerHashes::new(&ca_der).unwrap();
        Pki { dir, ca_der, ca_key, leaf_serial, responder_der, responder_key, hashes }
    }

    fn openssl(args: &[&str], dir: &Path) -> Output {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl must be installed (CI installs it): {e}"))
    }

    fn openssl_ok(args: &[&str], dir: &Path) -> String {
        let out = openssl(args, dir);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
        text
    }

    fn attime() -> String {
        NOW.unix_timestamp().to_string()
    }

    /// Asks OpenSSL to make a request for the leaf.
    fn openssl_request(pki: &Pki, extra: &[&str]) -> Vec<u8> {
        // Options such as -sha256 must come before -cert.
        let mut args = vec!["ocsp"];
        args.extend_from_slice(extra);
        args.extend(["-issuer", "ca.pem", "-cert", "leaf.pem", "-reqout", "req.der"]);
        openssl_ok(&args, pki.dir.path());
        std::fs::read(pki.dir.path().join("req.der")).unwrap()
    }

    fn answer(pki: &Pki, cert_id: CertId, status: CertStatus) -> SingleAnswer {
        let _ = pki;
        SingleAnswer { cert_id, status, this_update: NOW, next_update: NOW + time::Duration::days(4) }
    }

    fn respond(pki: &Pki, answers: &[SingleAnswer], nonce: Option<&[u8]>) -> Vec<u8> {
        build_response(&pki.responder_key, &pki.responder_der, answers, NOW, nonce).unwrap()
    }

    /// Has OpenSSL verify `resp` for the leaf and returns its summary.
    fn openssl_check(pki: &Pki, resp: &[u8]) -> String {
        std::fs::write(pki.dir.path().join("resp.der"), resp).unwrap();
        let at = attime();
        openssl_ok(
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-issuer",
                "ca.pem",
                "-cert",
                "leaf.pem",
                "-CAfile",
                "ca.pem",
                "-attime",
                &at,
                "-no_nonce",
                "-resp_text",
            ],
            pki.dir.path(),
        )
    }

    /// Whether OpenSSL's summary gives `status` for the leaf. OpenSSL checks the status
    /// times against the wall clock (`-attime` only applies to the chain) and, when the
    /// fixed test times are out of its window, puts a warning between name and status.
    fn summary_says(text: &str, status: &str) -> bool {
        text.lines().any(|l| l == status || l == format!("leaf.pem: {status}"))
    }

    #[test]
    fn error_responses_are_fixed_encodings() {
        for (status, code) in [
            (ErrorStatus::MalformedRequest, 1),
            (ErrorStatus::InternalError, 2),
            (ErrorStatus::TryLater, 3),
            (ErrorStatus::SigRequired, 5),
            (ErrorStatus::Unauthorized, 6),
        ] {
            let der = error_response(status);
            assert_eq!(der, [0x30, 0x03, 0x0a, 0x01, code]);
            let parsed = parse_response(&der).unwrap();
            assert_eq!(parsed.status, code);
            assert!(parsed.answers.is_empty() && parsed.signature_algorithm.is_none());
        }
    }

    #[test]
    fn openssl_reads_error_responses() {
        let dir = tempfile::tempdir().unwrap();
        for (status, name) in [
            (ErrorStatus::MalformedRequest, "malformedrequest"),
            (ErrorStatus::InternalError, "internalerror"),
            (ErrorStatus::TryLater, "trylater"),
            (ErrorStatus::SigRequired, "sigrequired"),
            (ErrorStatus::Unauthorized, "unauthorized"),
        ] {
            std::fs::write(dir.path().join("err.der"), error_response(status)).unwrap();
            let out = openssl(&["ocsp", "-respin", "err.der", "-resp_text"], dir.path());
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(text.to_lowercase().contains(&format!("{name} ({})", status.code())), "{status:?}: {text}");
        }
    }

    #[test]
    fn reads_openssl_requests() {
        let pki = pki();
        let expected_sha1 = pki.hashes.cert_id(CertIdHash::Sha1, &pki.leaf_serial);

        let req = openssl_request(&pki, &["-no_nonce"]);
        let parsed = parse_request(&req).unwrap();
        assert_eq!(parsed.cert_ids, std::slice::from_ref(&expected_sha1));
        assert!(pki.hashes.matches(&parsed.cert_ids[0]));
        assert_eq!(parsed.nonce, None);

        let req = openssl_request(&pki, &[]);
        let parsed = parse_request(&req).unwrap();
        assert_eq!(parsed.cert_ids, std::slice::from_ref(&expected_sha1));
        assert_eq!(parsed.nonce.as_ref().map(Vec::len), Some(16), "OpenSSL sends a 16-byte nonce");

        let req = openssl_request(&pki, &["-sha256", "-no_nonce"]);
        let parsed = parse_request(&req).unwrap();
        let expected_sha256 = pki.hashes.cert_id(CertIdHash::Sha256, &pki.leaf_serial);
        assert_eq!(parsed.cert_ids, [expected_sha256]);
        assert!(pki.hashes.matches(&parsed.cert_ids[0]));

        // Two CertIDs in one request, one for an issuer we don't answer for.
        let args = ["ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-issuer", "leaf.pem", "-cert", "responder.pem"];
        let mut args = args.to_vec();
        args.extend(["-no_nonce", "-reqout", "req2.der"]);
        openssl_ok(&args, pki.dir.path());
        let parsed = parse_request(&std::fs::read(pki.dir.path().join("req2.der")).unwrap()).unwrap();
        assert_eq!(parsed.cert_ids.len(), 2);
        assert!(pki.hashes.matches(&parsed.cert_ids[0]));
        assert!(!pki.hashes.matches(&parsed.cert_ids[1]));
    }

    #[test]
    fn issuer_hashes_match_only_their_issuer() {
        let pki = pki();
        let id = pki.hashes.cert_id(CertIdHash::Sha384, &[0, 0, 0x12]);
        assert_eq!(id.serial, [0x12]);
        assert!(pki.hashes.matches(&id));
        let mut other = id.clone();
        other.issuer_key_hash[0] ^= 1;
        assert!(!pki.hashes.matches(&other));
        let mut other = id.clone();
        other.issuer_name_hash[0] ^= 1;
        assert!(!pki.hashes.matches(&other));
        let responder = IssuerHashes::new(&pki.responder_der).unwrap();
        assert!(!responder.matches(&id));
        assert!(matches!(IssuerHashes::new(b"junk"), Err(OcspError::BadCertificate { .. })));
    }

    #[test]
    fn openssl_verifies_good_revoked_and_unknown() {
        let pki = pki();
        let id = pki.hashes.cert_id(CertIdHash::Sha1, &pki.leaf_serial);

        let text = openssl_check(&pki, &respond(&pki, &[answer(&pki, id.clone(), CertStatus::Good)], None));
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(summary_says(&text, "good"), "{text}");

        let revoked =
            CertStatus::Revoked { at: datetime!(2026-02-27 8:30 UTC), reason: Some(RevocationReason::KeyCompromise) };
        let text = openssl_check(&pki, &respond(&pki, &[answer(&pki, id.clone(), revoked)], None));
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(summary_says(&text, "revoked"), "{text}");
        assert!(text.contains("Reason: keyCompromise"), "{text}");
        assert!(text.contains("Revocation Time: Feb 27 08:30:00 2026 GMT"), "{text}");

        let text = openssl_check(&pki, &respond(&pki, &[answer(&pki, id.clone(), CertStatus::Unknown)], None));
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(summary_says(&text, "unknown"), "{text}");
        let key_id = hex::encode_upper(key_identifier(pki.responder_key.public_key()));
        assert!(text.contains(&format!("Responder Id: {key_id}")), "responderID byKey: {text}");
        assert!(text.contains("Version: 1 (0x0)"), "{text}");
    }

    #[test]
    fn openssl_verifies_sha256_and_checks_the_nonce() {
        let pki = pki();
        let req = openssl_request(&pki, &["-sha256"]);
        let parsed = parse_request(&req).unwrap();
        let nonce = parsed.nonce.clone().unwrap();
        let answers: Vec<_> = parsed.cert_ids.iter().map(|id| answer(&pki, id.clone(), CertStatus::Good)).collect();
        let resp = respond(&pki, &answers, Some(&nonce));
        std::fs::write(pki.dir.path().join("resp.der"), &resp).unwrap();
        let at = attime();
        let args =
            ["ocsp", "-reqin", "req.der", "-respin", "resp.der", "-CAfile", "ca.pem", "-attime", &at, "-resp_text"];
        let text = openssl_ok(&args, pki.dir.path());
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(!text.contains("WARNING: no nonce"), "{text}");
        assert!(text.contains("Cert Status: good"), "{text}");
        assert!(text.contains("OCSP Nonce"), "{text}");

        // A response with another nonce is refused.
        let mut wrong = nonce.clone();
        wrong[0] ^= 0xff;
        std::fs::write(pki.dir.path().join("resp.der"), respond(&pki, &answers, Some(&wrong))).unwrap();
        let out = openssl(&args, pki.dir.path());
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("Nonce Verify error"), "{text}");

        // Without the nonce OpenSSL warns.
        std::fs::write(pki.dir.path().join("resp.der"), respond(&pki, &answers, None)).unwrap();
        let text = openssl_ok(&args, pki.dir.path());
        assert!(text.contains("WARNING: no nonce in response"), "{text}");
    }

    #[test]
    fn openssl_refuses_a_tampered_response() {
        let pki = pki();
        let id = pki.hashes.cert_id(CertIdHash::Sha1, &pki.leaf_serial);
        let resp = respond(&pki, &[answer(&pki, id, CertStatus::Good)], None);
        // Change producedAt's last seconds digit (the first GeneralizedTime, 15 bytes).
        let mut tampered = resp.clone();
        let pos = tampered.windows(2).position(|w| w == [0x18, 0x0f]).unwrap() + 2 + 13;
        tampered[pos] ^= 0x01;
        std::fs::write(pki.dir.path().join("resp.der"), &tampered).unwrap();
        let at = attime();
        let out = openssl(
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-issuer",
                "ca.pem",
                "-cert",
                "leaf.pem",
                "-CAfile",
                "ca.pem",
                "-attime",
                &at,
                "-no_nonce",
            ],
            pki.dir.path(),
        );
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains("Response verify OK"), "{text}");
        assert!(text.contains("Response Verify Failure"), "{text}");
    }

    #[test]
    fn our_parser_reads_our_responses() {
        let pki = pki();
        let id = pki.hashes.cert_id(CertIdHash::Sha512, &pki.leaf_serial);
        let at = datetime!(2026-02-27 8:30:15.5 UTC);
        let answers = [
            answer(&pki, id.clone(), CertStatus::Good),
            answer(&pki, id.clone(), CertStatus::Revoked { at, reason: Some(RevocationReason::Superseded) }),
            answer(&pki, id.clone(), CertStatus::Revoked { at, reason: Some(RevocationReason::Unspecified) }),
            answer(&pki, id.clone(), CertStatus::Revoked { at, reason: None }),
            answer(&pki, id.clone(), CertStatus::Unknown),
        ];
        let nonce = [7u8; 32];
        let resp = respond(&pki, &answers, Some(&nonce));
        let parsed = parse_response(&resp).unwrap();
        assert_eq!(parsed.status, 0);
        assert_eq!(parsed.nonce.as_deref(), Some(&nonce[..]));
        assert_eq!(parsed.certs, std::slice::from_ref(&pki.responder_der));
        assert_eq!(parsed.produced_at, Some(NOW));
        assert_eq!(parsed.responder_key_hash, Some(key_identifier(pki.responder_key.public_key())));
        let whole_second = datetime!(2026-02-27 8:30:15 UTC);
        let statuses: Vec<_> = parsed.answers.iter().map(|a| (a.status, a.reason_code)).collect();
        assert_eq!(
            statuses,
            [
                (CertStatus::Good, None),
                (CertStatus::Revoked { at: whole_second, reason: Some(RevocationReason::Superseded) }, Some(4)),
                // unspecified is written as no reason (RFC 5280 5.3.1).
                (CertStatus::Revoked { at: whole_second, reason: None }, None),
                (CertStatus::Revoked { at: whole_second, reason: None }, None),
                (CertStatus::Unknown, None),
            ]
        );
        for a in &parsed.answers {
            assert_eq!(a.cert_id, id);
            assert_eq!(a.this_update, NOW);
            assert_eq!(a.next_update, Some(NOW + time::Duration::days(4)));
        }
        // ResponseData: version omitted (v1 is the DEFAULT), responderID byKey [2].
        let tbs = &parsed.tbs_response_data;
        assert_eq!(tbs[0], 0x30);
        let body = if tbs[1] & 0x80 != 0 { 2 + usize::from(tbs[1] & 0x7f) } else { 2 };
        assert_eq!(tbs[body], 0xa2, "the first field is responderID byKey");
        // The signature is over exactly tbs_response_data, by the responder key.
        let responder = x509_cert::Certificate::from_der(&parsed.certs[0]).unwrap();
        let spki = responder.tbs_certificate().subject_public_key_info();
        let alg = parsed.signature_algorithm.clone().unwrap();
        verify_signature(spki, &alg, tbs, &parsed.signature).unwrap();
        assert!(verify_signature(pki.ca_key.public_key(), &alg, tbs, &parsed.signature).is_err());
        assert_eq!(alg, pki.responder_key.signature_algorithm());
    }

    #[test]
    fn build_response_refuses_bad_input() {
        let pki = pki();
        let id = pki.hashes.cert_id(CertIdHash::Sha1, &pki.leaf_serial);
        let good = [answer(&pki, id.clone(), CertStatus::Good)];
        let err = build_response(&pki.ca_key, &pki.responder_der, &good, NOW, None).unwrap_err();
        assert!(matches!(err, OcspError::WrongSigner), "{err}");
        assert_eq!(err.error_status(), ErrorStatus::InternalError);
        let err = build_response(&pki.responder_key, &pki.responder_der, &[], NOW, None).unwrap_err();
        assert!(matches!(err, OcspError::NoAnswers), "{err}");
        let err = build_response(&pki.responder_key, b"junk", &good, NOW, None).unwrap_err();
        assert!(matches!(err, OcspError::BadCertificate { .. }), "{err}");
        let mut backwards = good[0].clone();
        backwards.next_update = NOW - time::Duration::seconds(1);
        let err = build_response(&pki.responder_key, &pki.responder_der, &[backwards], NOW, None).unwrap_err();
        assert!(matches!(err, OcspError::BadValidity { .. }), "{err}");
        let err = build_response(&pki.responder_key, &pki.responder_der, &good, datetime!(1969-12-31 23:59 UTC), None)
            .unwrap_err();
        assert!(matches!(err, OcspError::Time { .. }), "{err}");
        // The CA itself may sign when the CA certificate is given as responder.
        let resp = build_response(&pki.ca_key, &pki.ca_der, &good, NOW, None).unwrap();
        let text = openssl_check(&pki, &resp);
        assert!(text.contains("Response verify OK") && summary_says(&text, "good"), "{text}");
    }

    #[test]
    fn build_request_round_trips() {
        let pki = pki();
        let ids: Vec<_> = CertIdHash::ALL
            .into_iter()
            .map(|h| pki.hashes.cert_id(h, &[0x80, 0x01]))
            .chain([pki.hashes.cert_id(CertIdHash::Sha1, &[0x01])])
            .collect();
        let nonce = [0xab; 32];
        let der = build_request(&ids, Some(&nonce)).unwrap();
        let parsed = parse_request(&der).unwrap();
        assert_eq!(parsed.cert_ids, ids);
        assert_eq!(parsed.nonce.as_deref(), Some(&nonce[..]));
        // OpenSSL reads it too.
        std::fs::write(pki.dir.path().join("ours.der"), &der).unwrap();
        let text = openssl_ok(&["ocsp", "-reqin", "ours.der", "-req_text"], pki.dir.path());
        assert!(text.contains("Serial Number: 8001"), "{text}");
        assert!(text.contains("OCSP Nonce"), "{text}");
        assert!(matches!(build_request(&ids, Some(&[])), Err(OcspError::BadNonce { .. })));
    }

    /// Encodes a request from raw parts, for the hostile cases.
    fn raw_request(cert_ids: Vec<CertIdAsn1>, extensions: Option<Extensions>) -> Vec<u8> {
        OcspRequest {
            tbs_request: asn1::TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: cert_ids
                    .into_iter()
                    .map(|req_cert| asn1::Request { req_cert, single_request_extensions: None })
                    .collect(),
                request_extensions: extensions,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    fn raw_cert_id(hash: ObjectIdentifier, len: usize, serial: &[u8]) -> CertIdAsn1 {
        CertIdAsn1 {
            hash_algorithm: AlgorithmIdentifierOwned { oid: hash, parameters: None },
            issuer_name_hash: OctetString::new(vec![1; len]).unwrap(),
            issuer_key_hash: OctetString::new(vec![2; len]).unwrap(),
            serial_number: Int::new(serial).unwrap(),
        }
    }

    fn nonce_ext(extn_value: Vec<u8>, critical: bool) -> Extension {
        Extension { extn_id: oid::OCSP_NONCE, critical, extn_value: OctetString::new(extn_value).unwrap() }
    }

    #[test]
    fn hostile_requests_are_refused_with_clear_errors() {
        let sha1 = || raw_cert_id(oid::SHA1, 20, &[0x01]);
        // A valid baseline: absent hash parameters are fine (RFC 5754).
        assert_eq!(parse_request(&raw_request(vec![sha1()], None)).unwrap().cert_ids[0].serial, [1]);

        type Check = fn(&OcspError) -> bool;
        let cases: Vec<(&str, Vec<u8>, Check)> = vec![
            ("empty", vec![], |e| matches!(e, OcspError::Malformed { .. })),
            ("garbage", b"GET / HTTP/1.1\r\n\r\n".to_vec(), |e| matches!(e, OcspError::Malformed { .. })),
            ("huge", vec![0x30; MAX_REQUEST_LEN + 1], |e| matches!(e, OcspError::TooLarge { .. })),
            ("no requests", raw_request(vec![], None), |e| matches!(e, OcspError::NoRequests)),
            ("17 requests", raw_request(vec![sha1(); 17], None), |e| {
                matches!(e, OcspError::TooManyRequests { count: 17, max: 16 })
            }),
            (
                "md5",
                raw_request(vec![raw_cert_id(MD5, 16, &[1])], None),
                |e| matches!(e, OcspError::UnsupportedHash { oid } if *oid == MD5),
            ),
            ("short hash", raw_request(vec![raw_cert_id(oid::SHA256, 20, &[1])], None), |e| {
                matches!(e, OcspError::BadCertId { .. })
            }),
            ("negative serial", raw_request(vec![raw_cert_id(oid::SHA1, 20, &[0x80])], None), |e| {
                matches!(e, OcspError::BadCertId { .. })
            }),
            ("zero serial", raw_request(vec![raw_cert_id(oid::SHA1, 20, &[0])], None), |e| {
                matches!(e, OcspError::BadCertId { .. })
            }),
            ("21-octet serial", raw_request(vec![raw_cert_id(oid::SHA1, 20, &[0x7f; 21])], None), |e| {
                matches!(e, OcspError::BadCertId { .. })
            }),
            ("empty nonce", raw_request(vec![sha1()], Some(vec![nonce_ext(vec![0x04, 0x00], false)])), |e| {
                matches!(e, OcspError::BadNonce { .. })
            }),
            (
                "129-byte nonce",
                raw_request(
                    vec![sha1()],
                    Some(vec![nonce_ext(OctetString::new(vec![9; 129]).unwrap().to_der().unwrap(), false)]),
                ),
                |e| matches!(e, OcspError::BadNonce { .. }),
            ),
            ("unwrapped nonce", raw_request(vec![sha1()], Some(vec![nonce_ext(vec![9; 16], false)])), |e| {
                matches!(e, OcspError::BadNonce { .. })
            }),
            (
                "two nonces",
                raw_request(
                    vec![sha1()],
                    Some(vec![nonce_ext(vec![0x04, 0x01, 0x01], false), nonce_ext(vec![0x04, 0x01, 0x02], false)]),
                ),
                |e| matches!(e, OcspError::DuplicateExtension { .. }),
            ),
            (
                "unknown critical extension",
                raw_request(
                    vec![sha1()],
                    Some(vec![Extension {
                        extn_id: oid::CE_KEY_USAGE,
                        critical: true,
                        extn_value: OctetString::new(vec![0x05, 0x00]).unwrap(),
                    }]),
                ),
                |e| matches!(e, OcspError::UnsupportedCriticalExtension { .. }),
            ),
        ];
        for (name, der, expected) in cases {
            let err = parse_request(&der).unwrap_err();
            assert!(expected(&err), "{name}: got {err:?}");
            assert_eq!(err.error_status(), ErrorStatus::MalformedRequest, "{name}");
            assert!(!err.to_string().is_empty());
        }

        // A critical nonce is understood, so accepted.
        let der = raw_request(vec![sha1()], Some(vec![nonce_ext(vec![0x04, 0x01, 0x01], true)]));
        assert_eq!(parse_request(&der).unwrap().nonce, Some(vec![1]));

        // Parameters other than NULL on the hash are refused.
        let mut odd = sha1();
        odd.hash_algorithm.parameters = Some(der::asn1::Any::from(oid::SHA1));
        assert!(matches!(parse_request(&raw_request(vec![odd], None)), Err(OcspError::BadCertId { .. })));
    }

    #[test]
    fn mangled_messages_never_panic() {
        let pki = pki();
        let id = pki.hashes.cert_id(CertIdHash::Sha1, &pki.leaf_serial);
        let req = build_request(&[id.clone(), id.clone()], Some(&[5; 16])).unwrap();
        assert!(parse_request(&req).is_ok());

        // Trailing data.
        let mut trailing = req.clone();
        trailing.push(0);
        assert!(matches!(parse_request(&trailing), Err(OcspError::Malformed { .. })));

        // Every truncation fails.
        for len in 0..req.len() {
            assert!(parse_request(&req[..len]).is_err(), "truncated to {len}");
        }
        // Every single-bit flip either fails or still yields a sane request.
        for i in 0..req.len() {
            for bit in 0..8 {
                let mut m = req.clone();
                m[i] ^= 1 << bit;
                if let Ok(parsed) = parse_request(&m) {
                    assert!(!parsed.cert_ids.is_empty() && parsed.cert_ids.len() <= MAX_CERT_IDS);
                }
            }
        }

        let resp = respond(&pki, &[answer(&pki, id.clone(), CertStatus::Good)], Some(&[5; 16]));
        assert!(parse_response(&resp).is_ok());
        for len in 0..resp.len() {
            assert!(parse_response(&resp[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..resp.len() {
            let mut m = resp.clone();
            m[i] ^= 0x41;
            let _ = parse_response(&m);
        }
        // Deep nesting and absurd lengths.
        let mut deep = vec![];
        for _ in 0..10_000 {
            deep.extend([0x30, 0x84, 0xff, 0xff, 0xff]);
        }
        assert!(parse_request(&deep).is_err());
        assert!(parse_response(&deep).is_err());
        assert!(parse_response(&[0x30, 0x03, 0x0a, 0x01, 0x04]).is_err(), "status 4 is not used");
    }

    /// Requests and responses (ours, with and without nonce, several answers, every
    /// status, error responses) mutated by `certdesk_test_support::mutation`: `parse_request`,
    /// `parse_response` and `check_response` return without panicking or hanging (the
    /// stable stand-in for the `ocsp_request` and `ocsp_response` fuzz targets).
    #[test]
    fn mutated_requests_and_responses_never_panic() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let pki = pki();
        let sha1 = pki.hashes.cert_id(CertIdHash::Sha1, &pki.leaf_serial);
        let sha256 = pki.hashes.cert_id(CertIdHash::Sha256, &pki.leaf_serial);
        let requests = [
            build_request(std::slice::from_ref(&sha1), None).unwrap(),
            build_request(&[sha1.clone(), sha256.clone()], Some(&[5; 16])).unwrap(),
        ];
        let revoked = CertStatus::Revoked { at: NOW, reason: Some(RevocationReason::KeyCompromise) };
        let responses = [
            respond(&pki, &[answer(&pki, sha1.clone(), CertStatus::Good)], Some(&[5; 16])),
            respond(
                &pki,
                &[answer(&pki, sha256.clone(), revoked), answer(&pki, sha1.clone(), CertStatus::Unknown)],
                None,
            ),
            build_response(&pki.ca_key, &pki.ca_der, &[answer(&pki, sha256, CertStatus::Good)], NOW, None).unwrap(),
            error_response(ErrorStatus::TryLater),
        ];
        let check = |b: &[u8]| check_response(b, &pki.ca_der, &pki.leaf_serial, Some(&[5; 16]), NOW);
        let mut tried = never_panics("OCSP request", &hostile(), parse_request);
        tried += never_panics("OCSP response", &hostile(), parse_response);
        tried += never_panics("OCSP response check", &hostile(), check);
        for (i, request) in requests.iter().enumerate() {
            tried += never_panics("OCSP request", &mutants(request, 800, i as u64), parse_request);
        }
        for (i, response) in responses.iter().enumerate() {
            let inputs = mutants(response, 500, i as u64);
            tried += never_panics("OCSP response", &inputs, parse_response);
            tried += never_panics("OCSP response check", &inputs, check);
        }
        eprintln!("OCSP: {tried} mutated inputs");
    }

    #[test]
    fn check_response_accepts_only_signed_current_matching_answers() {
        let pki = pki();
        let id = pki.hashes.cert_id(CertIdHash::Sha256, &pki.leaf_serial);
        let good = respond(&pki, &[answer(&pki, id.clone(), CertStatus::Good)], Some(b"n1"));
        let checked = check_response(&good, &pki.ca_der, &pki.leaf_serial, Some(b"n1"), NOW).unwrap();
        assert_eq!(checked.status(), &CertStatus::Good);
        assert_eq!(checked.next_update(), Some(NOW + time::Duration::days(4)));
        // Pre-signed responses carry no nonce: accepted.
        let presigned = respond(&pki, &[answer(&pki, id.clone(), CertStatus::Good)], None);
        assert!(check_response(&presigned, &pki.ca_der, &pki.leaf_serial, Some(b"n1"), NOW).is_ok());
        // Signed by the CA itself.
        let by_ca =
            build_response(&pki.ca_key, &pki.ca_der, &[answer(&pki, id.clone(), CertStatus::Good)], NOW, None).unwrap();
        assert!(check_response(&by_ca, &pki.ca_der, &pki.leaf_serial, None, NOW).is_ok());
        // Revoked, with its reason.
        let at = NOW - time::Duration::hours(1);
        let revoked = CertStatus::Revoked { at, reason: Some(RevocationReason::KeyCompromise) };
        let resp = respond(&pki, &[answer(&pki, id.clone(), revoked)], None);
        let checked = check_response(&resp, &pki.ca_der, &pki.leaf_serial, None, NOW).unwrap();
        assert_eq!(checked.status(), &revoked);
        assert_eq!(checked.reason_code(), Some(1));

        // Another serial: no answer for it.
        let err = check_response(&good, &pki.ca_der, &[0x42], None, NOW).unwrap_err();
        assert!(matches!(err, OcspError::NoAnswerForCertificate), "{err}");
        // Nonce echoed but different: a replay.
        let err = check_response(&good, &pki.ca_der, &pki.leaf_serial, Some(b"other"), NOW).unwrap_err();
        assert!(matches!(err, OcspError::NonceMismatch), "{err}");
        // Not current: before thisUpdate (beyond the grace) and after nextUpdate.
        for at in [NOW - time::Duration::hours(1), NOW + time::Duration::days(5)] {
            let err = check_response(&good, &pki.ca_der, &pki.leaf_serial, None, at).unwrap_err();
            assert!(matches!(err, OcspError::NotCurrent { .. }), "{err}");
        }
        // A tampered signature.
        let mut tampered = good.clone();
        let last = tampered.len() - 3;
        tampered[last] ^= 1;
        let err = check_response(&tampered, &pki.ca_der, &pki.leaf_serial, None, NOW).unwrap_err();
        assert!(matches!(err, OcspError::UntrustedSignature { .. } | OcspError::Malformed { .. }), "{err}");
        // A rogue CA with the same name signs with its own key and includes its certificate.
        let rng = SystemRandom::new();
        let org = Organization::new("Certdesk Test", "DE", None).unwrap();
        let rogue_key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let rogue = build_ca_certificate(
            &CaCertificateRequest {
                subject: ca_name("Certdesk Test CA", &org).unwrap(),
                public_key: rogue_key.public_key().clone(),
                not_before: datetime!(2025-01-01 0:00 UTC),
                not_after: datetime!(2035-01-01 0:00 UTC),
                path_len: Some(0),
                email_protection_only: true,
                crl_url: None,
            },
            None,
            &rogue_key,
            &rng,
        )
        .unwrap();
        let forged = build_response(&rogue_key, &rogue, &[answer(&pki, id, CertStatus::Good)], NOW, None).unwrap();
        let err = check_response(&forged, &pki.ca_der, &pki.leaf_serial, None, NOW).unwrap_err();
        assert!(matches!(err, OcspError::UntrustedSignature { .. }), "{err}");
        // An error status.
        let err = check_response(&error_response(ErrorStatus::TryLater), &pki.ca_der, &pki.leaf_serial, None, NOW)
            .unwrap_err();
        assert!(matches!(err, OcspError::ResponderError { status: 3 }), "{err}");
        assert!(err.to_string().contains("tryLater"));
        // Garbage.
        assert!(check_response(b"\x30\x03garbage", &pki.ca_der, &pki.leaf_serial, None, NOW).is_err());
    }
}
