//! Certificate issuance in two phases (STYLE.md, Boulder's lint-before-sign):
//!
//! 1. [`prepare`] builds the to-be-signed certificate from validated data and the
//!    profile, decodes it back with an independent parser and lints it (CA/B Forum
//!    S/MIME BR 4.3.1.2 pre-issuance linting). It returns the TBS bytes (for the audit
//!    log) and an [`IssuanceToken`]: only `prepare` can create one, and it cannot be
//!    cloned.
//! 2. [`issue`] consumes the token and signs exactly the bytes that were linted.
//!
//! CA certificates (root and issuing CA) are made by [`build_ca_certificate`].

use const_oid::AssociatedOid;
use der::asn1::{BitString, Ia5String, OctetString, Uint};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::key::{key_identifier, KeyError, PublicKeyKind, Signer};
use crate::oid;
use crate::profile::SubscriberProfile;
use crate::subject::{rfc4514, NameBuilder, SubjectError};

// The issuance inputs live in `crate::request`, below the pre-issuance lint that reads
// them; their public paths are here.
pub use crate::request::{IssuerInfo, KeyUse, PublicationUrls, SubscriberRequest};
pub use crate::x509::find_extension;

/// Errors from issuance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The to-be-signed certificate failed pre-issuance linting; nothing was signed.
    #[error("pre-issuance lint failed, nothing was signed: {}", findings.join("; "))]
    LintFailed {
        /// One line per finding.
        findings: Vec<String>,
    },
    /// The profile needs subject data we don't have.
    #[error("the {profile} profile needs {missing}")]
    MissingSubjectData {
        /// The profile.
        profile: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// The commonName made from the subject data is longer than X.520 allows.
    #[error("the commonName {value:?} ({source_of}) has {chars} characters, more than the 64 a commonName may have (RFC 5280 appendix A): {hint}")]
    CommonNameTooLong {
        /// The commonName.
        value: String,
        /// What it is made of.
        source_of: &'static str,
        /// Its length in characters.
        chars: usize,
        /// What to do.
        hint: &'static str,
    },
    /// The key cannot be used as the request asks (an Ed25519 key for encryption).
    #[error("a {kind} key cannot be used for key management (encryption)")]
    KeyUseUnsupported {
        /// The key's kind.
        kind: PublicKeyKind,
    },
    /// The signer is not the key the token was prepared for.
    #[error("the signing key does not match the issuing CA the certificate was prepared for")]
    WrongSigner,
    /// Subject data could not be encoded.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The issuing CA certificate is unusable.
    #[error("the issuing CA certificate is unusable: {reason}")]
    BadIssuer {
        /// Why.
        reason: String,
    },
    /// DER encoding failed.
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    /// A time could not be represented.
    #[error("the time {0} cannot be written into a certificate")]
    Time(OffsetDateTime),
}

// Implemented here rather than in `crate::request` because it returns this module's error.
impl IssuerInfo {
    /// Reads the issuing CA's name and key from its certificate; `signature_algorithm`
    /// is what its signer produces.
    pub fn from_certificate(
        ca_der: &[u8],
        signature_algorithm: AlgorithmIdentifierOwned,
        urls: PublicationUrls,
    ) -> Result<Self, IssueError> {
        let cert =
            x509_cert::Certificate::from_der(ca_der).map_err(|e| IssueError::BadIssuer { reason: e.to_string() })?;
        let tbs = cert.tbs_certificate();
        let public_key = tbs.subject_public_key_info().clone();
        let key_identifier = find_extension::<SubjectKeyIdentifier>(tbs.extensions())
            .map(|ski| ski.0.as_bytes().to_vec())
            .unwrap_or_else(|| key_identifier(&public_key));
        Ok(Self::new(tbs.subject().clone(), key_identifier, public_key, signature_algorithm, urls))
    }
}

/// The linted to-be-signed certificate, as it goes into the audit log.
#[derive(Clone, Debug)]
pub struct PreparedCertificate {
    /// DER of the TBSCertificate.
    pub tbs_der: Vec<u8>,
    /// The serial number bytes (positive, no leading zero).
    pub serial: Vec<u8>,
    /// The subject as an RFC 4514 string.
    pub subject: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Permission to sign one linted certificate. Created only by [`prepare`]; not `Clone`.
#[derive(Debug)]
pub struct IssuanceToken {
    tbs_der: Vec<u8>,
    signature_algorithm: AlgorithmIdentifierOwned,
    issuer_key: SubjectPublicKeyInfoOwned,
}

/// A signed certificate.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// DER of the certificate.
    pub der: Vec<u8>,
}

/// `TBSCertificate` (RFC 5280 section 4.1), for encoding.
///
/// ```text
/// TBSCertificate  ::=  SEQUENCE  {
///      version         [0]  EXPLICIT Version DEFAULT v1,
///      serialNumber         CertificateSerialNumber,
///      signature            AlgorithmIdentifier,
///      issuer               Name,
///      validity             Validity,
///      subject              Name,
///      subjectPublicKeyInfo SubjectPublicKeyInfo,
///      extensions      [3]  EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Sequence)]
struct TbsCertificateOut {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Extensions,
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`
/// (RFC 5280 section 4.1), with the TBS kept as the exact signed bytes.
#[derive(Sequence)]
struct SignedOut<'a> {
    tbs: der::asn1::AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub(crate) fn x509_time(t: OffsetDateTime) -> Result<Time, IssueError> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| IssueError::Time(t))?;
    let dt =
        der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(|_| IssueError::Time(t))?;
    if t.year() < 2050 {
        Ok(Time::UtcTime(der::asn1::UtcTime::from_date_time(dt).map_err(|_| IssueError::Time(t))?))
    } else {
        Ok(Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt)))
    }
}

pub(crate) fn extension<T: AssociatedOid + Encode>(critical: bool, value: &T) -> Result<Extension, der::Error> {
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// A positive serial number from 16 random bytes: 126 bits of entropy, well above the
/// 64 of BR 7.1, never a leading zero byte, never negative, at most 20 octets.
pub fn random_serial(rng: &dyn aws_lc_rs::rand::SecureRandom) -> Result<Vec<u8>, KeyError> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| KeyError::Crypto { operation: "draw random bytes" })?;
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    Ok(bytes.to_vec())
}

/// The serial of a subscriber certificate: a marker byte `0x01`, the issuance time in
/// milliseconds since 1970 (6 bytes, big-endian) and 12 random bytes (96 bits of entropy,
/// above the 64 of BR 7.1): positive, never a leading zero byte, 19 octets. The time first
/// keeps the serials of one batch together in the store's indexes (each batch writes a
/// few index pages instead of one per certificate: issue 11); the random part keeps
/// them unpredictable and non-sequential.
pub fn subscriber_serial(now: OffsetDateTime, rng: &dyn aws_lc_rs::rand::SecureRandom) -> Result<Vec<u8>, KeyError> {
    let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut random = [0u8; 12];
    rng.fill(&mut random).map_err(|_| KeyError::Crypto { operation: "draw random bytes" })?;
    let mut serial = Vec::with_capacity(19);
    serial.push(0x01);
    serial.extend(millis.to_be_bytes().into_iter().skip(2));
    serial.extend_from_slice(&random);
    Ok(serial)
}

fn ia5(s: &str) -> Result<Ia5String, der::Error> {
    Ia5String::new(s)
}

fn subscriber_subject(profile: &SubscriberProfile, request: &SubscriberRequest) -> Result<Name, IssueError> {
    let email = request.person.email.as_str();
    let too_long = |value: String, source_of, hint| {
        let chars = value.chars().count();
        (chars > crate::attribute::MAX_COMMON_NAME).then_some(IssueError::CommonNameTooLong {
            value,
            source_of,
            chars,
            hint,
        })
    };
    let common_name = if profile.id().names_the_person() { request.person.personal_name() } else { email.to_string() };
    let problem = if profile.id().names_the_person() {
        too_long(
            common_name,
            "given name and surname",
            "record the names as shorter forms the identity document allows",
        )
    } else {
        too_long(
            common_name,
            "the mailbox address",
            "issue it under a sponsor-validated profile, whose commonName is the name",
        )
    };
    if let Some(e) = problem {
        return Err(e);
    }
    if !profile.id().names_the_person() {
        // BR 7.1.4.2.3: mailbox-validated subjects carry only the mailbox.
        return Ok(NameBuilder::default().utf8(oid::AT_COMMON_NAME, email)?.build()?);
    }
    let org = &request.organization;
    let mut name = NameBuilder::default()
        .printable(oid::AT_COUNTRY, &org.country)?
        .utf8(oid::AT_ORGANIZATION, org.name.as_str())?;
    if let Some(id) = &org.identifier {
        name = name.utf8(oid::AT_ORGANIZATION_IDENTIFIER, id)?;
    } else if profile.id() != crate::profile::ProfileId::Private {
        return Err(IssueError::MissingSubjectData {
            profile: profile.id().name(),
            missing: "the organisation's organizationIdentifier (set ca.organization_identifier, e.g. VATDE-123456789)",
        });
    }
    Ok(name
        .utf8(oid::AT_SURNAME, request.person.surname.as_str())?
        .utf8(oid::AT_GIVEN_NAME, request.person.given_name.as_str())?
        .utf8(oid::AT_COMMON_NAME, &request.person.personal_name())?
        .build()?)
}

/// Phase 1: build and lint the to-be-signed certificate.
pub fn prepare(
    profile: &SubscriberProfile,
    issuer: &IssuerInfo,
    request: &SubscriberRequest,
    now: OffsetDateTime,
    rng: &dyn aws_lc_rs::rand::SecureRandom,
) -> Result<(PreparedCertificate, IssuanceToken), IssueError> {
    let serial = subscriber_serial(now, rng)?;
    let not_before = now.replace_nanosecond(0).map_err(|_| IssueError::Time(now))?;
    // Validity counts both ends inclusively (RFC 5280 4.1.2.5), so end one second early.
    let not_after = not_before + time::Duration::days(i64::from(profile.validity_days())) - time::Duration::seconds(1);
    let kind = request.public_key.kind();
    let spki = request.public_key.spki().clone();
    // BR 7.1.2.3 (e): as the request's key use says.
    let key_usage = request.key_use.key_usage(kind).ok_or(IssueError::KeyUseUnsupported { kind })?;

    let urls = issuer.urls();
    let mut extensions = vec![
        extension(true, &key_usage)?,
        extension(false, &ExtendedKeyUsage(profile.id().extended_key_usages().to_vec()))?,
        extension(false, &SubjectAltName(vec![GeneralName::Rfc822Name(ia5(request.person.email.as_str())?)]))?,
        extension(true, &BasicConstraints { ca: false, path_len_constraint: None })?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(key_identifier(&spki))?))?,
        extension(
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer.key_identifier().to_vec())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        extension(
            false,
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(ia5(&urls.crl)?),
                ])),
                reasons: None,
                crl_issuer: None,
            }]),
        )?,
        extension(
            false,
            &AuthorityInfoAccessSyntax(vec![
                AccessDescription {
                    access_method: oid::AD_OCSP,
                    access_location: GeneralName::UniformResourceIdentifier(ia5(&urls.ocsp)?),
                },
                AccessDescription {
                    access_method: oid::AD_CA_ISSUERS,
                    access_location: GeneralName::UniformResourceIdentifier(ia5(&urls.ca_issuers)?),
                },
            ]),
        )?,
    ];
    let policies = profile.policies();
    if !policies.is_empty() {
        let infos = policies
            .into_iter()
            .map(|policy_identifier| PolicyInformation { policy_identifier, policy_qualifiers: None })
            .collect();
        extensions.push(extension(false, &CertificatePolicies(infos))?);
    }

    let subject = subscriber_subject(profile, request)?;
    let tbs = TbsCertificateOut {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial)?,
        signature: issuer.signature_algorithm().clone(),
        issuer: issuer.name().clone(),
        validity: Validity::new(x509_time(not_before)?, x509_time(not_after)?),
        subject: subject.clone(),
        subject_public_key_info: spki,
        extensions,
    };
    let tbs_der = tbs.to_der()?;
    let findings = crate::lint::lint_subscriber(&tbs_der, profile, issuer, request);
    if !findings.is_empty() {
        return Err(IssueError::LintFailed { findings });
    }
    let token = IssuanceToken {
        tbs_der: tbs_der.clone(),
        signature_algorithm: issuer.signature_algorithm().clone(),
        issuer_key: issuer.public_key().clone(),
    };
    Ok((PreparedCertificate { tbs_der, serial, subject: rfc4514(&subject), not_before, not_after }, token))
}

/// Phase 2: sign the linted bytes. Consumes the token.
pub fn issue(token: IssuanceToken, signer: &dyn Signer) -> Result<IssuedCertificate, IssueError> {
    if signer.public_key() != &token.issuer_key || signer.signature_algorithm() != token.signature_algorithm {
        return Err(IssueError::WrongSigner);
    }
    Ok(IssuedCertificate { der: sign_tbs(&token.tbs_der, signer)? })
}

pub(crate) fn sign_tbs(tbs_der: &[u8], signer: &dyn Signer) -> Result<Vec<u8>, IssueError> {
    let signature = signer.sign(tbs_der)?;
    let out = SignedOut {
        tbs: der::asn1::AnyRef::from_der(tbs_der)?,
        signature_algorithm: signer.signature_algorithm(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(out.to_der()?)
}

/// What a CA certificate is made of.
#[derive(Clone, Debug)]
pub struct CaCertificateRequest {
    /// The CA's subject.
    pub subject: Name,
    /// The CA's public key.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// `Some(0)` for an issuing CA that signs only end-entity certificates; `None` for a root.
    pub path_len: Option<u8>,
    /// Restrict the CA to S/MIME (EKU emailProtection, BR 7.1.2.2 (g)).
    pub email_protection_only: bool,
    /// For a subordinate CA: where the issuer's CRL of CA certificates is published
    /// (cRLDistributionPoints, BR 7.1.2.2 (c)), so relying parties can check it.
    pub crl_url: Option<String>,
}

/// Builds and signs a CA certificate. For a root, `issuer` is `None` and `signer` holds
/// the root's own key (self-signed).
pub fn build_ca_certificate(
    request: &CaCertificateRequest,
    issuer: Option<(&Name, &[u8])>,
    signer: &dyn Signer,
    rng: &dyn aws_lc_rs::rand::SecureRandom,
) -> Result<Vec<u8>, IssueError> {
    let ski = key_identifier(&request.public_key);
    let (issuer_name, issuer_key_id) = match issuer {
        Some((name, key_id)) => (name.clone(), key_id.to_vec()),
        None => (request.subject.clone(), ski.clone()),
    };
    let mut extensions = vec![
        extension(true, &BasicConstraints { ca: true, path_len_constraint: request.path_len })?,
        extension(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(ski)?))?,
    ];
    if issuer.is_some() {
        extensions.push(extension(
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer_key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?);
    }
    if request.email_protection_only {
        extensions.push(extension(false, &ExtendedKeyUsage(vec![oid::KP_EMAIL_PROTECTION]))?);
    }
    if let Some(url) = &request.crl_url {
        extensions.push(extension(
            false,
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(ia5(url)?),
                ])),
                reasons: None,
                crl_issuer: None,
            }]),
        )?);
    }
    let tbs = TbsCertificateOut {
        version: Version::V3,
        serial_number: SerialNumber::new(&random_serial(rng)?)?,
        signature: signer.signature_algorithm(),
        issuer: issuer_name,
        validity: Validity::new(x509_time(request.not_before)?, x509_time(request.not_after)?),
        subject: request.subject.clone(),
        subject_public_key_info: request.public_key.clone(),
        extensions,
    };
    sign_tbs(&tbs.to_der()?, signer)
}

/// Builds the self-signed certificate of a key escrow key (issue 15,
/// docs/design/key-escrow.md): the container that lets CMS EnvelopedData encrypt a
/// subscriber key to the escrow key. No CA, keyUsage keyAgreement (an EC key) or
/// keyEncipherment (RSA) only; relying parties never see it. `key` signs it and is the
/// key it names.
pub fn build_escrow_certificate(
    subject: &Name,
    key: &crate::key::PrivateKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    rng: &dyn aws_lc_rs::rand::SecureRandom,
) -> Result<Vec<u8>, IssueError> {
    let public_key = key.public_key().clone();
    let usage = match key.kind() {
        PublicKeyKind::Rsa { .. } => KeyUsage(KeyUsages::KeyEncipherment.into()),
        PublicKeyKind::Ec(_) => KeyUsage(KeyUsages::KeyAgreement.into()),
        PublicKeyKind::Ed25519 => return Err(IssueError::WrongSigner),
    };
    let extensions = vec![
        extension(true, &BasicConstraints { ca: false, path_len_constraint: None })?,
        extension(true, &usage)?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(key_identifier(&public_key))?))?,
    ];
    let tbs = TbsCertificateOut {
        version: Version::V3,
        serial_number: SerialNumber::new(&random_serial(rng)?)?,
        signature: key.signature_algorithm(),
        issuer: subject.clone(),
        validity: Validity::new(x509_time(not_before)?, x509_time(not_after)?),
        subject: subject.clone(),
        subject_public_key_info: public_key,
        extensions,
    };
    sign_tbs(&tbs.to_der()?, key)
}

/// Builds and signs a delegated OCSP responder certificate (RFC 6960 4.2.2.2): issued by
/// the CA whose certificates it answers for, EKU id-kp-OCSPSigning only, keyUsage
/// digitalSignature, and id-pkix-ocsp-nocheck so clients do not ask for its own status
/// (which is why it must be short-lived and renewed).
pub fn build_ocsp_responder_certificate(
    subject: &Name,
    public_key: &SubjectPublicKeyInfoOwned,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    issuer: &IssuerInfo,
    signer: &dyn Signer,
    rng: &dyn aws_lc_rs::rand::SecureRandom,
) -> Result<Vec<u8>, IssueError> {
    if signer.public_key() != issuer.public_key() {
        return Err(IssueError::WrongSigner);
    }
    // RFC 6960 4.2.2.2.1: the value of id-pkix-ocsp-nocheck is NULL.
    let nocheck = Extension {
        extn_id: oid::OCSP_NOCHECK,
        critical: false,
        extn_value: OctetString::new(der::asn1::Null.to_der()?)?,
    };
    let extensions = vec![
        extension(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        extension(false, &ExtendedKeyUsage(vec![oid::KP_OCSP_SIGNING]))?,
        extension(true, &BasicConstraints { ca: false, path_len_constraint: None })?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(key_identifier(public_key))?))?,
        extension(
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer.key_identifier().to_vec())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        nocheck,
    ];
    let tbs = TbsCertificateOut {
        version: Version::V3,
        serial_number: SerialNumber::new(&random_serial(rng)?)?,
        signature: signer.signature_algorithm(),
        issuer: issuer.name().clone(),
        validity: Validity::new(x509_time(not_before)?, x509_time(not_after)?),
        subject: subject.clone(),
        subject_public_key_info: public_key.clone(),
        extensions,
    };
    sign_tbs(&tbs.to_der()?, signer)
}

/// `Uint` helper for other modules.
pub(crate) fn uint(n: u64) -> Result<Uint, der::Error> {
    Uint::new(&n.to_be_bytes())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_serials_are_positive_19_octets_in_time_order_with_96_random_bits() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_796_000_000_123_456_789).unwrap();
        let one = subscriber_serial(at, &rng).unwrap();
        let two = subscriber_serial(at, &rng).unwrap();
        assert_eq!(one.len(), 19);
        assert_eq!(one[0], 0x01, "positive, no leading zero byte");
        assert_eq!(&one[1..7], &1_796_000_000_123u64.to_be_bytes()[2..], "milliseconds since 1970");
        assert_eq!(one[..7], two[..7]);
        assert_ne!(one[7..], two[7..], "the last 12 bytes are random");
        let later = subscriber_serial(at + time::Duration::milliseconds(1), &rng).unwrap();
        assert!(hex::encode(&later) > hex::encode(&one), "a later serial sorts after (as hex text too)");
        // Before 1970 (a wrong clock): still a valid serial, not an error.
        let old = subscriber_serial(OffsetDateTime::from_unix_timestamp(-5).unwrap(), &rng).unwrap();
        assert_eq!((old.len(), old[0]), (19, 0x01));
    }
}
