//! Certification path validation (RFC 5280 section 6), the core of it, for S/MIME
//! signers (RFC 8550): name chaining with key identifiers, signatures, validity at a
//! given time, basic constraints and path length, key usage, extended key usage
//! (emailProtection), and CRL status (RFC 5280 6.3, full CRLs of the issuer).
//!
//! Not processed yet, and therefore refused when marked critical (fail closed): name
//! constraints, policy constraints and mappings, inhibitAnyPolicy; certificate policies
//! are accepted but not enforced; delta and indirect CRLs and distribution points are
//! not used.

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::Certificate;

use crate::issuance::{find_extension, to_offset};
use crate::key::verify_signature;
use crate::oid;

/// The longest path we build (leaf + intermediates + anchor).
pub const MAX_PATH_LEN: usize = 8;

/// Why a path could not be validated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// A certificate does not parse.
    #[error("a certificate cannot be read: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// No trusted issuer was found.
    #[error("no path to a trusted root: no issuer found for {subject}")]
    NoTrustedIssuer {
        /// The certificate whose issuer is missing.
        subject: String,
    },
    /// A certificate is outside its validity.
    #[error("the certificate of {subject} is not valid at {at} (valid {not_before} to {not_after})")]
    NotValidAt {
        /// Whose.
        subject: String,
        /// The time checked.
        at: OffsetDateTime,
        /// Start.
        not_before: OffsetDateTime,
        /// End.
        not_after: OffsetDateTime,
    },
    /// An issuer is not a CA, or may not sign certificates.
    #[error("{subject} is not allowed to issue certificates ({reason})")]
    NotACa {
        /// The issuer.
        subject: String,
        /// basicConstraints, pathLenConstraint or keyUsage.
        reason: &'static str,
    },
    /// The signer's certificate may not be used for S/MIME signatures.
    #[error("the certificate of {subject} may not sign e-mail ({reason})")]
    WrongUsage {
        /// Whose.
        subject: String,
        /// keyUsage or extKeyUsage.
        reason: &'static str,
    },
    /// A critical extension we do not process.
    #[error("the certificate of {subject} has a critical extension certdesk does not process ({oid})")]
    UnsupportedCriticalExtension {
        /// Whose.
        subject: String,
        /// The extension.
        oid: String,
    },
    /// The certificate is revoked.
    #[error("the certificate of {subject} was revoked at {at}{}", reason.map(|r| format!(" (reason code {r})")).unwrap_or_default())]
    Revoked {
        /// Whose.
        subject: String,
        /// When.
        at: OffsetDateTime,
        /// CRLReason code, if given.
        reason: Option<u8>,
    },
}

/// A validated path, leaf first, ending at a trust anchor. Only [`validate`] makes one.
#[derive(Debug)]
pub struct ValidatedPath {
    chain: Vec<Vec<u8>>,
}

impl ValidatedPath {
    /// The certificates, leaf first, the trust anchor last (DER).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
}

/// The revocation status of the leaf found in the CRLs given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationStatus {
    /// A current CRL of the issuer does not list it.
    NotRevoked,
    /// No current CRL of the issuer was given.
    Unknown,
}

struct Parsed {
    der: Vec<u8>,
    cert: Certificate,
}

fn parse(der: &[u8]) -> Result<Parsed, PathError> {
    let cert = Certificate::from_der(der).map_err(|e| PathError::Malformed { reason: e.to_string() })?;
    Ok(Parsed { der: der.to_vec(), cert })
}

fn subject_of(cert: &Certificate) -> String {
    crate::subject::rfc4514(cert.tbs_certificate().subject())
}

fn issued_by(child: &Certificate, issuer: &Certificate) -> bool {
    if child.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return false;
    }
    let aki = find_extension::<AuthorityKeyIdentifier>(child.tbs_certificate().extensions());
    let ski = find_extension::<SubjectKeyIdentifier>(issuer.tbs_certificate().extensions());
    match (aki.and_then(|a| a.key_identifier), ski) {
        (Some(aki), Some(ski)) => aki == ski.0,
        _ => true,
    }
}

fn signature_ok(child: &Certificate, issuer: &Certificate) -> bool {
    let Ok(tbs) = child.tbs_certificate().to_der() else { return false };
    let Some(signature) = child.signature().as_bytes() else { return false };
    verify_signature(issuer.tbs_certificate().subject_public_key_info(), child.signature_algorithm(), &tbs, signature)
        .is_ok()
}

const KNOWN_CRITICAL: [der::asn1::ObjectIdentifier; 5] = [
    oid::CE_KEY_USAGE,
    oid::CE_BASIC_CONSTRAINTS,
    oid::CE_SUBJECT_ALT_NAME,
    oid::CE_EXT_KEY_USAGE,
    oid::CE_CERTIFICATE_POLICIES,
];

fn check_common(cert: &Certificate, now: OffsetDateTime) -> Result<(), PathError> {
    let tbs = cert.tbs_certificate();
    let subject = subject_of(cert);
    let (Some(not_before), Some(not_after)) =
        (to_offset(&tbs.validity().not_before), to_offset(&tbs.validity().not_after))
    else {
        return Err(PathError::Malformed { reason: format!("the validity of {subject} cannot be read") });
    };
    if now < not_before || now > not_after {
        return Err(PathError::NotValidAt { subject, at: now, not_before, not_after });
    }
    for ext in tbs.extensions().map(|e| e.as_slice()).unwrap_or_default() {
        if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id) {
            return Err(PathError::UnsupportedCriticalExtension { subject, oid: ext.extn_id.to_string() });
        }
    }
    Ok(())
}

fn check_issuer(cert: &Certificate, certs_below: usize) -> Result<(), PathError> {
    let tbs = cert.tbs_certificate();
    let subject = subject_of(cert);
    let bc = find_extension::<BasicConstraints>(tbs.extensions());
    match bc {
        Some(bc) if bc.ca => {
            if let Some(max) = bc.path_len_constraint {
                // certs_below counts the intermediate CAs under this one.
                if certs_below > usize::from(max) {
                    return Err(PathError::NotACa { subject, reason: "pathLenConstraint exceeded" });
                }
            }
        }
        _ => return Err(PathError::NotACa { subject, reason: "basicConstraints does not say cA" }),
    }
    if let Some(ku) = find_extension::<KeyUsage>(tbs.extensions()) {
        if !ku.0.contains(KeyUsages::KeyCertSign) {
            return Err(PathError::NotACa { subject, reason: "keyUsage lacks keyCertSign" });
        }
    }
    Ok(())
}

fn check_signer_usage(cert: &Certificate) -> Result<(), PathError> {
    let tbs = cert.tbs_certificate();
    let subject = subject_of(cert);
    if let Some(ku) = find_extension::<KeyUsage>(tbs.extensions()) {
        // RFC 8550 4.4.2: digitalSignature or nonRepudiation for signing.
        if !ku.0.contains(KeyUsages::DigitalSignature) && !ku.0.contains(KeyUsages::NonRepudiation) {
            return Err(PathError::WrongUsage { subject, reason: "keyUsage lacks digitalSignature" });
        }
    }
    if let Some(eku) = find_extension::<ExtendedKeyUsage>(tbs.extensions()) {
        // RFC 8550 4.4.4: emailProtection (or anyExtendedKeyUsage) when EKU is present.
        let any = der::asn1::ObjectIdentifier::new_unwrap("2.5.29.37.0");
        if !eku.0.iter().any(|o| *o == oid::KP_EMAIL_PROTECTION || *o == any) {
            return Err(PathError::WrongUsage { subject, reason: "extKeyUsage lacks emailProtection" });
        }
    }
    Ok(())
}

/// Builds and validates a path from `leaf` through `intermediates` to one of
/// `anchors` (trusted certificates) at time `now`, for an S/MIME signer.
pub fn validate(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<ValidatedPath, PathError> {
    let leaf = parse(leaf)?;
    check_common(&leaf.cert, now)?;
    check_signer_usage(&leaf.cert)?;
    let anchors: Vec<Parsed> = anchors.iter().map(|a| parse(a)).collect::<Result<_, _>>()?;
    let intermediates: Vec<Parsed> = intermediates.iter().filter_map(|c| parse(c).ok()).collect();
    let mut chain = vec![leaf.der.clone()];
    let mut current = leaf.cert;
    if anchors.iter().any(|a| a.der == leaf.der) {
        return Ok(ValidatedPath { chain });
    }
    for depth in 0..MAX_PATH_LEN {
        if let Some(anchor) = anchors.iter().find(|a| issued_by(&current, &a.cert) && signature_ok(&current, &a.cert)) {
            check_issuer(&anchor.cert, depth)?;
            chain.push(anchor.der.clone());
            return Ok(ValidatedPath { chain });
        }
        let next = intermediates
            .iter()
            .find(|i| !chain.contains(&i.der) && issued_by(&current, &i.cert) && signature_ok(&current, &i.cert));
        let Some(next) = next else {
            return Err(PathError::NoTrustedIssuer { subject: subject_of(&current) });
        };
        check_common(&next.cert, now)?;
        check_issuer(&next.cert, depth)?;
        chain.push(next.der.clone());
        current = next.cert.clone();
    }
    Err(PathError::NoTrustedIssuer { subject: subject_of(&current) })
}

/// Looks the leaf of a validated path up in CRLs (RFC 5280 6.3, simplified): a CRL
/// counts if its issuer is the leaf's issuer, its signature verifies with that issuer's
/// key, and `now` lies between thisUpdate and nextUpdate.
pub fn check_crls(path: &ValidatedPath, crls: &[Vec<u8>], now: OffsetDateTime) -> Result<RevocationStatus, PathError> {
    let (Some(leaf_der), Some(issuer_der)) = (path.chain.first(), path.chain.get(1)) else {
        return Ok(RevocationStatus::Unknown);
    };
    let leaf = parse(leaf_der)?.cert;
    let issuer = parse(issuer_der)?.cert;
    let mut status = RevocationStatus::Unknown;
    for crl_der in crls {
        let Ok(crl) = CertificateList::from_der(crl_der) else { continue };
        let tbs = &crl.tbs_cert_list;
        if &tbs.issuer != issuer.tbs_certificate().subject() {
            continue;
        }
        let (Ok(tbs_der), Some(signature)) = (tbs.to_der(), crl.signature.as_bytes()) else { continue };
        if verify_signature(
            issuer.tbs_certificate().subject_public_key_info(),
            &crl.signature_algorithm,
            &tbs_der,
            signature,
        )
        .is_err()
        {
            continue;
        }
        let this_update = to_offset(&tbs.this_update);
        let next_update = tbs.next_update.as_ref().and_then(to_offset);
        let current = this_update.is_some_and(|t| t <= now) && next_update.is_some_and(|t| now <= t);
        let serial = leaf.tbs_certificate().serial_number();
        let entry = tbs.revoked_certificates.iter().flatten().find(|r| &r.serial_number == serial);
        if let Some(entry) = entry {
            // A revocation is final, even from a CRL that is no longer current.
            let reason =
                find_extension::<x509_cert::ext::pkix::CrlReason>(entry.crl_entry_extensions.as_ref()).map(|r| r as u8);
            return Err(PathError::Revoked {
                subject: subject_of(&leaf),
                at: to_offset(&entry.revocation_date).unwrap_or(now),
                reason,
            });
        }
        if current {
            status = RevocationStatus::NotRevoked;
        }
    }
    Ok(status)
}
