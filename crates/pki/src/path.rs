//! Certification path validation (RFC 5280 section 6) for S/MIME signers (RFC 8550)
//! and, with [`Purpose::Any`], for any end entity.
//!
//! Implemented, applied top-down from the trust anchor as RFC 5280 section 6.1 says:
//! - name chaining (RFC 5280 section 7.1 comparison: case and inner white space do not
//!   matter) with key identifiers as a hint, signatures, validity at a given time;
//! - basicConstraints, pathLenConstraint (self-issued certificates do not count,
//!   6.1.4 (l)), keyUsage keyCertSign for CAs;
//! - name constraints (4.2.1.10, 6.1.3 (b)(c), 6.1.4 (g)) for directoryName,
//!   rfc822Name, dNSName, uniformResourceIdentifier and iPAddress, applied to the
//!   subject DN, its emailAddress attributes and the subjectAltName; a constraint of
//!   any other form fails when the certificate has a name of that form (`path/names.rs`);
//! - certificate policies (6.1.2 to 6.1.5): the valid_policy_tree, policyMappings,
//!   policyConstraints, inhibitAnyPolicy and the initial inputs of
//!   [`ValidationOptions`] (`path/policy.rs`); qualifiers are ignored;
//! - the leaf's keyUsage and extKeyUsage for the chosen [`Purpose`];
//! - critical extensions that are not processed fail the path (6.1.4 (o), 6.1.5 (e));
//! - CRLs (6.3): distribution points, issuingDistributionPoint, indirect CRLs, delta
//!   CRLs, reason partitions, separate CRL signing keys ([`crl`]).
//!
//! The trust anchor is an input (6.1.1 (d)), not part of the path: its name
//! constraints and policies are not applied. Its basicConstraints (cA, keyCertSign,
//! pathLenConstraint) are, as RFC 5937 allows for trust anchor constraints.
//!
//! Conformance: NIST PKITS passes 244 of its 247 cases (see `path/pkits_tests.rs`); the
//! three others need DSA or a date before 1970, which certdesk refuses (fail closed).
//!
//! Not implemented: building more than one candidate path (the path is built greedily,
//! leaf to anchor), DSA signatures and DSA parameter inheritance, OCSP here (see
//! [`crate::ocsp`]), fetching CRLs, attribute certificates, and name constraints of the
//! forms otherName, x400Address, ediPartyName and registeredID (refused, fail closed).

pub mod crl;
mod names;
#[cfg(test)]
mod pkits_tests;
mod policy;

use std::collections::BTreeSet;

use der::asn1::ObjectIdentifier;
use der::Decode;
use time::OffsetDateTime;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, InhibitAnyPolicy, KeyUsage, KeyUsages, NameConstraints,
    PolicyConstraints, PolicyMappings, SubjectKeyIdentifier,
};
use x509_cert::Certificate;

pub use crl::{check_crls, check_crls_at, check_crls_with, check_path_crls, RevocationStatus};

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
    /// The end entity's certificate may not be used for the purpose asked for.
    #[error("the certificate of {subject} may not be used for this purpose ({reason})")]
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
    /// A name of the certificate is outside the permitted subtrees or inside an
    /// excluded subtree of a CA above it (RFC 5280 6.1.3 (b)(c)).
    #[error("the certificate of {subject} has the name {name}, {reason} of a CA above it")]
    NameNotPermitted {
        /// Whose.
        subject: String,
        /// The offending name.
        name: String,
        /// Outside the permitted or inside an excluded subtree.
        reason: &'static str,
    },
    /// A name constraint certdesk cannot apply meets a name of its form (fail closed).
    #[error("a name constraint of form {form} applies to the certificate of {subject}, and certdesk cannot apply it")]
    UnsupportedNameConstraint {
        /// Whose.
        subject: String,
        /// The name form, or the unsupported feature.
        form: &'static str,
    },
    /// Certificate policy processing failed (RFC 5280 6.1.3 (f), 6.1.4 (a), 6.1.5 (g)).
    #[error("certificate policy check failed at {subject}: {reason}")]
    PolicyViolation {
        /// The certificate at which processing failed.
        subject: String,
        /// Why.
        reason: &'static str,
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

/// What the end entity's certificate is to be used for; decides the leaf's keyUsage and
/// extKeyUsage checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// Signing S/MIME messages (RFC 8550 sections 4.4.2 and 4.4.4): keyUsage, when
    /// present, has digitalSignature or nonRepudiation; extKeyUsage, when present, has
    /// emailProtection or anyExtendedKeyUsage.
    #[default]
    SmimeSigning,
    /// Signing CRLs (RFC 5280 6.3.3 (f)): keyUsage, when present, has cRLSign.
    CrlSigning,
    /// Generic RFC 5280 path validation: no leaf usage check.
    Any,
}

/// A set of certificate policies, or every policy (`anyPolicy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySet {
    /// `anyPolicy`: no restriction.
    Any,
    /// These policies (possibly none).
    Policies(BTreeSet<ObjectIdentifier>),
}

impl PolicySet {
    /// Whether `policy` is in the set.
    pub fn contains(&self, policy: &ObjectIdentifier) -> bool {
        match self {
            PolicySet::Any => true,
            PolicySet::Policies(set) => set.contains(policy),
        }
    }
}

/// The inputs of RFC 5280 section 6.1.1 (c), (e), (f), (g), (h), and the purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationOptions {
    /// What the leaf is to be used for.
    pub purpose: Purpose,
    /// user-initial-policy-set (6.1.1 (c)); [`PolicySet::Any`] by default.
    pub user_initial_policy_set: PolicySet,
    /// initial-policy-mapping-inhibit (6.1.1 (e)).
    pub initial_policy_mapping_inhibit: bool,
    /// initial-explicit-policy (6.1.1 (f)).
    pub initial_explicit_policy: bool,
    /// initial-any-policy-inhibit (6.1.1 (g)).
    pub initial_any_policy_inhibit: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions {
            purpose: Purpose::SmimeSigning,
            user_initial_policy_set: PolicySet::Any,
            initial_policy_mapping_inhibit: false,
            initial_explicit_policy: false,
            initial_any_policy_inhibit: false,
        }
    }
}

impl ValidationOptions {
    /// These options, for `purpose`.
    pub fn with_purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// These options, with `policies` as the user-initial-policy-set.
    pub fn with_user_initial_policy_set(mut self, policies: PolicySet) -> Self {
        self.user_initial_policy_set = policies;
        self
    }

    /// These options, with initial-explicit-policy set: the path must be valid for at
    /// least one policy of the user-initial-policy-set.
    pub fn with_initial_explicit_policy(mut self) -> Self {
        self.initial_explicit_policy = true;
        self
    }

    /// These options, with initial-policy-mapping-inhibit set.
    pub fn with_initial_policy_mapping_inhibit(mut self) -> Self {
        self.initial_policy_mapping_inhibit = true;
        self
    }

    /// These options, with initial-any-policy-inhibit set.
    pub fn with_initial_any_policy_inhibit(mut self) -> Self {
        self.initial_any_policy_inhibit = true;
        self
    }
}

/// A validated path, leaf first, ending at a trust anchor. Only [`validate`] and
/// [`validate_with`] make one.
#[derive(Debug)]
pub struct ValidatedPath {
    chain: Vec<Vec<u8>>,
    policies: PolicySet,
}

impl ValidatedPath {
    /// The certificates, leaf first, the trust anchor last (DER).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The user-constrained policy set (RFC 5280 6.1.5 (g), 6.1.6): the policies of
    /// the trust anchor's domain that the path is valid for, within the
    /// user-initial-policy-set. [`PolicySet::Any`] when no CA restricted it; empty when
    /// the path is valid without a policy (no explicit policy was required).
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }
}

pub(crate) struct Parsed {
    pub(crate) der: Vec<u8>,
    pub(crate) cert: Certificate,
}

/// Decodes a certificate as path validation does: with the leniency RFC 5280 section
/// 4.1.2.5 allows for old certificates (a UTCTime validity bound before 1970 is read as
/// 1970-01-01). Signatures over it must be checked over `der` as received, never over a
/// re-encoding of the result.
pub fn decode_certificate(der: &[u8]) -> Result<Certificate, PathError> {
    parse(der).map(|parsed| parsed.cert)
}

pub(crate) fn parse(der: &[u8]) -> Result<Parsed, PathError> {
    let cert = match Certificate::from_der(der) {
        Ok(cert) => cert,
        Err(e) => {
            // Only if the certificate as received does not decode.
            let clamped = clamp_pre_1970(der).ok_or_else(|| PathError::Malformed { reason: e.to_string() })?;
            Certificate::from_der(&clamped).map_err(|_| PathError::Malformed { reason: e.to_string() })?
        }
    };
    Ok(Parsed { der: der.to_vec(), cert })
}

/// RFC 5280 4.1.2.5.1: a UTCTime year of 50 to 69 means 1950 to 1969, which der 0.8
/// cannot represent (its dates start in 1970). For any validation time since 1970 a
/// validity bound that early is the same as 1970-01-01T00:00:00Z, so the certificate is
/// decoded with such bounds moved there (same length, same structure). Its signature is
/// still checked over the bytes as received ([`Parsed::der`]). `None` when the
/// validity has no such bound or the DER cannot be followed.
fn clamp_pre_1970(der: &[u8]) -> Option<Vec<u8>> {
    /// (identifier, offset of the value, value length) of the DER value at `pos`.
    fn tlv(der: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
        let tag = *der.get(pos)?;
        let first = *der.get(pos + 1)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return None;
            }
            let bytes = der.get(pos + 2..pos + 2 + count)?;
            (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), 2 + count)
        };
        Some((tag, pos + header, len))
    }
    let (_, certificate, _) = tlv(der, 0).filter(|(tag, ..)| *tag == 0x30)?;
    let (_, tbs, _) = tlv(der, certificate).filter(|(tag, ..)| *tag == 0x30)?;
    let mut pos = tbs;
    // version [0] (optional), serialNumber, signature, issuer, then validity.
    let mut skip = |expected: &[u8]| -> Option<()> {
        let (tag, start, len) = tlv(der, pos)?;
        if !expected.contains(&tag) {
            return None;
        }
        pos = start + len;
        Some(())
    };
    if der.get(tbs) == Some(&0xa0) {
        skip(&[0xa0])?;
    }
    skip(&[0x02])?;
    skip(&[0x30])?;
    skip(&[0x30])?;
    let (_, validity, _) = tlv(der, pos).filter(|(tag, ..)| *tag == 0x30)?;
    let mut out = der.to_vec();
    let mut changed = false;
    let mut at = validity;
    for _ in 0..2 {
        let (tag, start, len) = tlv(der, at)?;
        let value = der.get(start..start + len)?;
        let early = match (tag, value) {
            // UTCTime YYMMDDHHMMSSZ with YY 50..69.
            (0x17, [y1, y2, ..]) if len == 13 => matches!((y1, y2), (b'5' | b'6', b'0'..=b'9')),
            // GeneralizedTime YYYYMMDDHHMMSSZ before 1970.
            (0x18, [a, b, c, _, ..]) if len == 15 => *a < b'1' || (*a == b'1' && (*b < b'9' || *c < b'7')),
            _ => false,
        };
        if early {
            let replacement: &[u8] = if tag == 0x17 { b"700101000000Z" } else { b"19700101000000Z" };
            out.get_mut(start..start + len)?.copy_from_slice(replacement);
            changed = true;
        }
        at = start + len;
    }
    changed.then_some(out)
}

pub(crate) fn subject_of(cert: &Certificate) -> String {
    crate::subject::rfc4514(cert.tbs_certificate().subject())
}

/// Decodes the extension of type `T`, if present; a present extension that does not
/// decode is an error, never taken as absent.
pub(crate) fn decode_extension<T: der::oid::AssociatedOid + for<'a> Decode<'a>>(
    cert: &Certificate,
) -> Result<Option<T>, PathError> {
    let extensions = cert.tbs_certificate().extensions();
    let Some(ext) = extensions.into_iter().flatten().find(|e| e.extn_id == T::OID) else { return Ok(None) };
    T::from_der(ext.extn_value.as_bytes())
        .map(Some)
        .map_err(|e| PathError::Malformed { reason: format!("extension {} of {}: {e}", T::OID, subject_of(cert)) })
}

pub(crate) fn names_equal(a: &x509_cert::name::Name, b: &x509_cert::name::Name) -> bool {
    names::dn_equal(a, b)
}

fn self_issued(cert: &Certificate) -> bool {
    names::dn_equal(cert.tbs_certificate().issuer(), cert.tbs_certificate().subject())
}

fn issued_by(child: &Certificate, issuer: &Certificate) -> bool {
    if !names::dn_equal(child.tbs_certificate().issuer(), issuer.tbs_certificate().subject()) {
        return false;
    }
    let aki = decode_extension::<AuthorityKeyIdentifier>(child).ok().flatten();
    let ski = decode_extension::<SubjectKeyIdentifier>(issuer).ok().flatten();
    match (aki.and_then(|a| a.key_identifier), ski) {
        (Some(aki), Some(ski)) => aki == ski.0,
        _ => true,
    }
}

/// The first element of the outer SEQUENCE of `der`, as encoded: the signed part of a
/// certificate or CRL. Signatures are checked over these bytes, not over a re-encoding,
/// which need not be identical (a GeneralizedTime before 2050, for one).
pub(crate) fn signed_bytes(der: &[u8]) -> Option<&[u8]> {
    use der::Reader;
    let mut reader = der::SliceReader::new(der).ok()?;
    der::Header::decode(&mut reader).ok()?;
    reader.tlv_bytes().ok()
}

fn signature_ok(child: &Parsed, issuer: &Certificate) -> bool {
    let Some(tbs) = signed_bytes(&child.der) else { return false };
    let Some(signature) = child.cert.signature().as_bytes() else { return false };
    verify_signature(
        issuer.tbs_certificate().subject_public_key_info(),
        child.cert.signature_algorithm(),
        tbs,
        signature,
    )
    .is_ok()
}

const KNOWN_CRITICAL: [ObjectIdentifier; 9] = [
    oid::CE_KEY_USAGE,
    oid::CE_BASIC_CONSTRAINTS,
    oid::CE_SUBJECT_ALT_NAME,
    oid::CE_EXT_KEY_USAGE,
    oid::CE_CERTIFICATE_POLICIES,
    <NameConstraints as der::oid::AssociatedOid>::OID,
    <PolicyMappings as der::oid::AssociatedOid>::OID,
    <PolicyConstraints as der::oid::AssociatedOid>::OID,
    <InhibitAnyPolicy as der::oid::AssociatedOid>::OID,
];

fn check_common(cert: &Certificate, now: OffsetDateTime) -> Result<(), PathError> {
    let tbs = cert.tbs_certificate();
    let subject = subject_of(cert);
    let (Some(not_before), Some(not_after)) =
        (crate::x509::to_offset(&tbs.validity().not_before), crate::x509::to_offset(&tbs.validity().not_after))
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

/// 6.1.4 (k), (n): the certificate is a CA that may sign certificates. Returns its
/// pathLenConstraint.
fn check_ca(cert: &Certificate) -> Result<Option<u8>, PathError> {
    let subject = subject_of(cert);
    let path_len = match decode_extension::<BasicConstraints>(cert)? {
        Some(bc) if bc.ca => bc.path_len_constraint,
        _ => return Err(PathError::NotACa { subject, reason: "basicConstraints does not say cA" }),
    };
    if let Some(ku) = decode_extension::<KeyUsage>(cert)? {
        if !ku.0.contains(KeyUsages::KeyCertSign) {
            return Err(PathError::NotACa { subject, reason: "keyUsage lacks keyCertSign" });
        }
    }
    Ok(path_len)
}

fn check_leaf_usage(cert: &Certificate, purpose: Purpose) -> Result<(), PathError> {
    let subject = subject_of(cert);
    let key_usage = decode_extension::<KeyUsage>(cert)?;
    match purpose {
        Purpose::Any => {}
        Purpose::CrlSigning => {
            if key_usage.is_some_and(|ku| !ku.0.contains(KeyUsages::CRLSign)) {
                return Err(PathError::WrongUsage { subject, reason: "keyUsage lacks cRLSign" });
            }
        }
        Purpose::SmimeSigning => {
            if let Some(ku) = key_usage {
                // RFC 8550 4.4.2: digitalSignature or nonRepudiation for signing.
                if !ku.0.contains(KeyUsages::DigitalSignature) && !ku.0.contains(KeyUsages::NonRepudiation) {
                    return Err(PathError::WrongUsage { subject, reason: "keyUsage lacks digitalSignature" });
                }
            }
            if let Some(eku) = decode_extension::<ExtendedKeyUsage>(cert)? {
                // RFC 8550 4.4.4: emailProtection (or anyExtendedKeyUsage) when EKU is present.
                let any = ObjectIdentifier::new_unwrap("2.5.29.37.0");
                if !eku.0.iter().any(|o| *o == oid::KP_EMAIL_PROTECTION || *o == any) {
                    return Err(PathError::WrongUsage { subject, reason: "extKeyUsage lacks emailProtection" });
                }
            }
        }
    }
    Ok(())
}

/// Builds one path greedily: leaf first, the trust anchor last; `None` as the anchor
/// when the leaf itself is trusted.
/// At most this many candidate paths are built and validated for one leaf.
const MAX_CANDIDATES: usize = 16;
/// At most this many issuer signature checks are made while building them (bounds the
/// work a message with many same-named certificates can cause).
const MAX_SIGNATURE_CHECKS: usize = 256;

/// Path building state: candidates found, the budget left, and the first dead end.
struct Builder<'a> {
    intermediates: &'a [Parsed],
    anchors: &'a [Parsed],
    found: Vec<Vec<Parsed>>,
    checks_left: usize,
    dead_end: Option<String>,
}

impl Builder<'_> {
    fn signs(&mut self, child: &Parsed, issuer: &Parsed) -> bool {
        if !issued_by(&child.cert, &issuer.cert) || self.checks_left == 0 {
            return false;
        }
        self.checks_left -= 1;
        signature_ok(child, &issuer.cert)
    }

    /// Depth first: an anchor that signs the last certificate ends a candidate;
    /// intermediates not yet on the chain extend it.
    fn extend(&mut self, chain: &mut Vec<Parsed>) {
        let Some(current) = chain.last().map(|c| Parsed { der: c.der.clone(), cert: c.cert.clone() }) else { return };
        let mut extended = false;
        for anchor in self.anchors {
            if self.found.len() >= MAX_CANDIDATES {
                return;
            }
            if self.signs(&current, anchor) {
                let mut candidate: Vec<Parsed> =
                    chain.iter().map(|c| Parsed { der: c.der.clone(), cert: c.cert.clone() }).collect();
                candidate.push(Parsed { der: anchor.der.clone(), cert: anchor.cert.clone() });
                self.found.push(candidate);
                extended = true;
            }
        }
        if chain.len() < MAX_PATH_LEN {
            for next in self.intermediates {
                if self.found.len() >= MAX_CANDIDATES {
                    return;
                }
                if !chain.iter().any(|c| c.der == next.der) && self.signs(&current, next) {
                    chain.push(Parsed { der: next.der.clone(), cert: next.cert.clone() });
                    self.extend(chain);
                    chain.pop();
                    extended = true;
                }
            }
        }
        if !extended && self.dead_end.is_none() {
            self.dead_end = Some(subject_of(&current.cert));
        }
    }
}

/// Every path from `leaf` to an anchor (up to [`MAX_CANDIDATES`]), in preference order:
/// at each step an anchor before an intermediate, and certificates in the order given.
/// When several issuers match (a re-keyed CA, cross-certificates), validation tries the
/// next candidate if one fails (RFC 4158's depth-first path building, bounded).
fn build(leaf: Parsed, intermediates: &[Parsed], anchors: &[Parsed]) -> Result<Vec<Vec<Parsed>>, PathError> {
    if anchors.iter().any(|a| a.der == leaf.der) {
        return Ok(vec![vec![leaf]]);
    }
    let subject = subject_of(&leaf.cert);
    let mut builder =
        Builder { intermediates, anchors, found: Vec::new(), checks_left: MAX_SIGNATURE_CHECKS, dead_end: None };
    builder.extend(&mut vec![leaf]);
    if builder.found.is_empty() {
        return Err(PathError::NoTrustedIssuer { subject: builder.dead_end.unwrap_or(subject) });
    }
    Ok(builder.found)
}

/// Builds and validates a path from `leaf` through `intermediates` to one of
/// `anchors` (trusted certificates) at time `now`, for an S/MIME signer, with the
/// default [`ValidationOptions`].
pub fn validate(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<ValidatedPath, PathError> {
    validate_with(leaf, intermediates, anchors, now, &ValidationOptions::default())
}

/// Builds a path from `leaf` through `intermediates` to one of `anchors` and validates
/// it at time `now` as RFC 5280 section 6.1 says, with the inputs of `options`.
pub fn validate_with(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
    options: &ValidationOptions,
) -> Result<ValidatedPath, PathError> {
    let leaf = parse(leaf)?;
    let anchors: Vec<Parsed> = anchors.iter().map(|a| parse(a)).collect::<Result<_, _>>()?;
    let intermediates: Vec<Parsed> = intermediates.iter().filter_map(|c| parse(c).ok()).collect();
    let mut first_error = None;
    for chain in build(leaf, &intermediates, &anchors)? {
        match process(&chain, now, options) {
            Ok(policies) => return Ok(ValidatedPath { chain: chain.into_iter().map(|c| c.der).collect(), policies }),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // The first candidate's reason: it is the path a reader would expect.
    Err(first_error.unwrap_or(PathError::NoTrustedIssuer { subject: String::new() }))
}

/// RFC 5280 6.1.2 to 6.1.5 over `chain` (leaf first, anchor last).
fn process(chain: &[Parsed], now: OffsetDateTime, options: &ValidationOptions) -> Result<PolicySet, PathError> {
    let Some((leaf, rest)) = chain.split_first() else {
        return Err(PathError::NoTrustedIssuer { subject: String::new() });
    };
    let Some((anchor, _)) = rest.split_last() else {
        // A directly trusted certificate: the path has no certificate to process.
        check_common(&leaf.cert, now)?;
        check_leaf_usage(&leaf.cert, options.purpose)?;
        return Ok(options.user_initial_policy_set.clone());
    };
    // The prospective path, certificate 1 (issued by the anchor) to n (the leaf).
    let path: Vec<&Certificate> = chain.iter().rev().skip(1).map(|c| &c.cert).collect();
    let n = path.len();
    let mut max_path_length = match check_ca(&anchor.cert)? {
        Some(len) => usize::from(len),
        None => n,
    };
    let mut names = names::NameConstraintsState::default();
    let mut policies = policy::PolicyState::new(n, options);
    for (index, cert) in path.iter().enumerate() {
        let i = index + 1;
        let last = i == n;
        let is_self_issued = self_issued(cert);
        // 6.1.3 (a)(2), (o) / 6.1.5 (e): validity and unknown critical extensions.
        check_common(cert, now)?;
        // 6.1.3 (b)(c): name constraints (self-issued intermediates excepted).
        if last || !is_self_issued {
            names.check(cert)?;
        }
        // 6.1.3 (d)-(f)
        policies.process(cert, i, is_self_issued)?;
        if last {
            break;
        }
        // 6.1.4
        policies.prepare_next(cert, i, is_self_issued)?;
        names.update(cert)?;
        let path_len = check_ca(cert)?;
        if !is_self_issued {
            if max_path_length == 0 {
                return Err(PathError::NotACa { subject: subject_of(cert), reason: "pathLenConstraint exceeded" });
            }
            max_path_length -= 1;
        }
        if let Some(len) = path_len {
            max_path_length = max_path_length.min(usize::from(len));
        }
    }
    // 6.1.5
    check_leaf_usage(&leaf.cert, options.purpose)?;
    policies.wrap_up(&leaf.cert, options)
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cloned_ref_to_slice_refs
)]
mod tests {
    use super::*;
    use certdesk_test_support::openssl;
    use std::path::Path;

    fn der(dir: &Path, name: &str) -> Vec<u8> {
        let pem = std::fs::read(dir.join(name)).unwrap();
        der::pem::decode_vec(&pem).unwrap().1
    }

    /// Root -> intermediate (`ca_ext`) -> leaf (`leaf_ext`), made by OpenSSL.
    fn chain(dir: &Path, ca_ext: &str, leaf_ext: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        chain_for(dir, ca_ext, leaf_ext, "/CN=Leaf")
    }

    /// [`chain`] with the leaf's subject.
    fn chain_for(dir: &Path, ca_ext: &str, leaf_ext: &str, leaf_subject: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        std::fs::write(dir.join("ca.ext"), ca_ext).unwrap();
        std::fs::write(dir.join("leaf.ext"), leaf_ext).unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let mut root =
            vec!["req", "-x509", "-days", "30", "-subj", "/CN=Root", "-keyout", "root.key", "-out", "root.pem"];
        root.extend_from_slice(&ec);
        root.extend_from_slice(&[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &root);
        let mut ca = vec!["req", "-new", "-subj", "/CN=Intermediate", "-keyout", "ca.key", "-out", "ca.csr"];
        ca.extend_from_slice(&ec);
        openssl(dir, &ca);
        openssl(
            dir,
            &[
                "x509", "-req", "-in", "ca.csr", "-CA", "root.pem", "-CAkey", "root.key", "-days", "30", "-extfile",
                "ca.ext", "-out", "ca.pem",
            ],
        );
        let mut leaf = vec!["req", "-new", "-subj", leaf_subject, "-keyout", "leaf.key", "-out", "leaf.csr"];
        leaf.extend_from_slice(&ec);
        openssl(dir, &leaf);
        openssl(
            dir,
            &[
                "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "10", "-extfile",
                "leaf.ext", "-out", "leaf.pem",
            ],
        );
        (der(dir, "root.pem"), der(dir, "ca.pem"), der(dir, "leaf.pem"))
    }

    const GOOD_CA: &str = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";
    const GOOD_LEAF: &str = "keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n";

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn a_good_chain_validates_and_bad_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let (root, ca, leaf) = chain(dir.path(), GOOD_CA, GOOD_LEAF);
        let path = validate(&leaf, &[ca.clone()], &[root.clone()], now()).unwrap();
        assert_eq!(path.chain(), &[leaf.clone(), ca.clone(), root.clone()]);

        // Time: expired and not yet valid.
        let later = now() + time::Duration::days(11);
        assert!(matches!(validate(&leaf, &[ca.clone()], &[root.clone()], later), Err(PathError::NotValidAt { .. })));
        let earlier = now() - time::Duration::days(1);
        assert!(matches!(validate(&leaf, &[ca.clone()], &[root.clone()], earlier), Err(PathError::NotValidAt { .. })));
        // Missing intermediate, wrong anchor.
        assert!(matches!(validate(&leaf, &[], &[root.clone()], now()), Err(PathError::NoTrustedIssuer { .. })));
        assert!(matches!(validate(&leaf, &[ca.clone()], &[], now()), Err(PathError::NoTrustedIssuer { .. })));
        // A directly trusted certificate is its own path.
        assert_eq!(validate(&leaf, &[], &[leaf.clone()], now()).unwrap().chain().len(), 1);
        // A tampered leaf signature.
        let mut bad = leaf.clone();
        let n = bad.len();
        bad[n - 5] ^= 1;
        assert!(validate(&bad, &[ca.clone()], &[root.clone()], now()).is_err());
        // Garbage.
        assert!(matches!(validate(b"garbage", &[], &[root], now()), Err(PathError::Malformed { .. })));
    }

    #[test]
    fn usage_and_constraint_violations_are_refused() {
        let cases: [(&str, &str, &str); 5] = [
            (GOOD_CA, "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n", "extKeyUsage"),
            (GOOD_CA, "keyUsage=critical,keyEncipherment\n", "digitalSignature"),
            (GOOD_CA, "keyUsage=critical,digitalSignature\n1.2.3.4=critical,ASN1:NULL\n", "critical extension"),
            ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign\n", GOOD_LEAF, "cA"),
            ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n", GOOD_LEAF, "keyCertSign"),
        ];
        for (ca_ext, leaf_ext, needle) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (root, ca, leaf) = chain(dir.path(), ca_ext, leaf_ext);
            let err = validate(&leaf, &[ca], &[root], now()).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn path_length_is_enforced() {
        // The root allows no intermediate CA below it (pathlen:0), but one sits there.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (_, ca, leaf) = chain(d, GOOD_CA, GOOD_LEAF);
        std::fs::write(
            d.join("top.ext"),
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n",
        )
        .unwrap();
        // Re-issue the root's key as a pathlen:0 anchor over a middle CA that signed `ca`.
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-key",
                "root.key",
                "-days",
                "30",
                "-subj",
                "/CN=Top",
                "-out",
                "top.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE,pathlen:0",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        );
        openssl(d, &["x509", "-x509toreq", "-in", "root.pem", "-signkey", "root.key", "-out", "mid.csr"]);
        std::fs::write(d.join("mid.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n")
            .unwrap();
        openssl(
            d,
            &[
                "x509", "-req", "-in", "mid.csr", "-CA", "top.pem", "-CAkey", "root.key", "-days", "30", "-extfile",
                "mid.ext", "-out", "mid.pem",
            ],
        );
        let (top, mid) = (der(d, "top.pem"), der(d, "mid.pem"));
        let err = validate(&leaf, &[ca, mid], &[top], now()).unwrap_err();
        assert!(err.to_string().contains("pathLenConstraint"), "{err}");
    }

    const NC_CA: &str = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n\
                         nameConstraints=critical,permitted;email:.example.com,permitted;email:example.com,\
                         excluded;email:bad.example.com\n";

    #[test]
    fn email_name_constraints_apply_to_the_subject_alt_name_and_the_email_address_attribute() {
        let leaf_with = |san: &str| format!("{GOOD_LEAF}subjectAltName={san}\n");
        let cases: [(&str, &str, Option<&str>); 6] = [
            ("/CN=Leaf", "email:alice@example.com", None),
            ("/CN=Leaf", "email:alice@mail.example.com", None),
            ("/CN=Leaf", "email:alice@other.org", Some("outside the permitted")),
            ("/CN=Leaf", "email:alice@bad.example.com", Some("within an excluded")),
            ("/CN=Leaf/emailAddress=alice@other.org", "DNS:leaf.example.net", Some("outside the permitted")),
            ("/CN=Leaf", "RID:1.2.3.4", None),
        ];
        for (subject, san, refusal) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (root, ca, leaf) = chain_for(dir.path(), NC_CA, &leaf_with(san), subject);
            let result = validate(&leaf, &[ca], &[root], now());
            match refusal {
                None => assert!(result.is_ok(), "{subject} {san}: {result:?}"),
                Some(needle) => {
                    let err = result.unwrap_err();
                    assert!(matches!(err, PathError::NameNotPermitted { .. }), "{san}: {err}");
                    assert!(err.to_string().contains(needle), "{san}: {err}");
                }
            }
        }
    }

    #[test]
    fn a_name_constraint_certdesk_cannot_apply_fails_closed_only_when_it_applies() {
        let ca = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n\
                  nameConstraints=critical,permitted;RID:1.2.3.4\n";
        let dir = tempfile::tempdir().unwrap();
        let (root, ca_der, leaf) = chain(dir.path(), ca, &format!("{GOOD_LEAF}subjectAltName=RID:1.2.3.5\n"));
        let err = validate(&leaf, &[ca_der], &[root], now()).unwrap_err();
        assert!(matches!(err, PathError::UnsupportedNameConstraint { form: "registeredID", .. }), "{err}");
        // Without a registeredID name the constraint does not apply.
        let dir = tempfile::tempdir().unwrap();
        let (root, ca_der, leaf) = chain(dir.path(), ca, &format!("{GOOD_LEAF}subjectAltName=email:a@example.com\n"));
        assert!(validate(&leaf, &[ca_der], &[root], now()).is_ok());
    }

    #[test]
    fn certificate_policies_are_reported_and_enforced() {
        let policy = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.55555.1");
        let other = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.55555.2");
        let ca = format!("{GOOD_CA}certificatePolicies={policy}\n");
        let leaf_ext = format!("{GOOD_LEAF}certificatePolicies={policy}\n");
        let dir = tempfile::tempdir().unwrap();
        let (root, ca_der, leaf) = chain(dir.path(), &ca, &leaf_ext);
        let intermediates = [ca_der.clone()];
        let path = validate(&leaf, &intermediates, &[root.clone()], now()).unwrap();
        assert_eq!(path.policies(), &PolicySet::Policies([policy].into()));
        // The user asks for another policy and requires an explicit one.
        let options = ValidationOptions::default()
            .with_user_initial_policy_set(PolicySet::Policies([other].into()))
            .with_initial_explicit_policy();
        let err = validate_with(&leaf, &intermediates, &[root.clone()], now(), &options).unwrap_err();
        assert!(matches!(err, PathError::PolicyViolation { .. }), "{err}");
        // Without the explicit-policy requirement the path is valid for no policy.
        let options = ValidationOptions::default().with_user_initial_policy_set(PolicySet::Policies([other].into()));
        let path = validate_with(&leaf, &intermediates, &[root.clone()], now(), &options).unwrap();
        assert_eq!(path.policies(), &PolicySet::Policies(BTreeSet::new()));

        // requireExplicitPolicy:0 in the CA, and a leaf without policies.
        let ca = format!("{GOOD_CA}certificatePolicies={policy}\npolicyConstraints=critical,requireExplicitPolicy:0\n");
        let dir = tempfile::tempdir().unwrap();
        let (root, ca_der, leaf) = chain(dir.path(), &ca, GOOD_LEAF);
        let err = validate(&leaf, &[ca_der], &[root], now()).unwrap_err();
        assert!(matches!(err, PathError::PolicyViolation { .. }), "{err}");
    }

    #[test]
    fn check_crls_looks_at_the_leaf_only() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/third-party/pkits");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let at = time::macros::datetime!(2020-01-01 00:00 UTC);
        let anchor = read("certs/TrustAnchorRootCertificate.crt");
        let ca = read("certs/GoodCACert.crt");
        let generic = ValidationOptions::default().with_purpose(Purpose::Any);
        let good = read("certs/ValidCertificatePathTest1EE.crt");
        let path = validate_with(&good, &[ca.clone()], &[anchor.clone()], at, &generic).unwrap();
        let good_crl = read("crls/GoodCACRL.crl");
        assert_eq!(check_crls(&path, &[good_crl.clone()], at), Ok(RevocationStatus::NotRevoked));
        assert_eq!(check_crls(&path, &[], at), Ok(RevocationStatus::Unknown));
        // The CA's own CRL (from the anchor) is not needed for the leaf, but is for the path.
        assert_eq!(check_path_crls(&path, &[good_crl.clone()], &[], at), Ok(RevocationStatus::Unknown));
        let root_crl = read("crls/TrustAnchorRootCRL.crl");
        let both = [good_crl.clone(), root_crl];
        assert_eq!(check_path_crls(&path, &both, &[], at), Ok(RevocationStatus::NotRevoked));
        // A CRL past its nextUpdate says nothing.
        let later = time::macros::datetime!(2031-06-01 00:00 UTC);
        assert_eq!(check_crls(&path, &[good_crl.clone()], later), Ok(RevocationStatus::Unknown));
        // Revoked, also on that stale CRL.
        let revoked = read("certs/InvalidRevokedEETest3EE.crt");
        let path = validate_with(&revoked, &[ca], &[anchor], at, &generic).unwrap();
        assert!(matches!(check_crls(&path, &[good_crl.clone()], at), Err(PathError::Revoked { reason: Some(1), .. })));
        assert!(matches!(check_crls(&path, &[good_crl], later), Err(PathError::Revoked { .. })));
    }

    #[test]
    fn another_candidate_path_is_tried_when_the_first_fails() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ca.ext"), GOOD_CA).unwrap();
        std::fs::write(d.join("leaf.ext"), GOOD_LEAF).unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        for (name, subject) in [("ra", "/CN=Root A"), ("rb", "/CN=Root B")] {
            let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
            let mut args = vec!["req", "-x509", "-days", "60", "-subj", subject, "-keyout", &key, "-out", &pem];
            args.extend_from_slice(&ec);
            args.extend_from_slice(&[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(d, &args);
        }
        let mut args = vec!["req", "-new", "-subj", "/CN=Intermediate", "-keyout", "ca.key", "-out", "ca.csr"];
        args.extend_from_slice(&ec);
        openssl(d, &args);
        // One intermediate key, certified by root A for one day and by root B for 30.
        for (root, days, out) in [("ra", "1", "ca-a.pem"), ("rb", "30", "ca-b.pem")] {
            let (ca, key) = (format!("{root}.pem"), format!("{root}.key"));
            openssl(
                d,
                &[
                    "x509", "-req", "-in", "ca.csr", "-CA", &ca, "-CAkey", &key, "-days", days, "-extfile", "ca.ext",
                    "-out", out,
                ],
            );
        }
        let mut args = vec!["req", "-new", "-subj", "/CN=Leaf", "-keyout", "leaf.key", "-out", "leaf.csr"];
        args.extend_from_slice(&ec);
        openssl(d, &args);
        openssl(
            d,
            &[
                "x509", "-req", "-in", "leaf.csr", "-CA", "ca-a.pem", "-CAkey", "ca.key", "-days", "10", "-extfile",
                "leaf.ext", "-out", "leaf.pem",
            ],
        );
        let (ra, rb, ca_a, ca_b, leaf) =
            (der(d, "ra.pem"), der(d, "rb.pem"), der(d, "ca-a.pem"), der(d, "ca-b.pem"), der(d, "leaf.pem"));
        let later = now() + time::Duration::days(5);
        // The first candidate (via root A) fails on the expired cross-certificate; the
        // second (via root B) validates.
        let path = validate(&leaf, &[ca_a.clone(), ca_b.clone()], &[ra.clone(), rb.clone()], later).unwrap();
        assert_eq!(path.chain(), &[leaf.clone(), ca_b.clone(), rb.clone()]);
        // Only the expired one: its reason is reported.
        let err = validate(&leaf, &[ca_a.clone()], &[ra.clone(), rb.clone()], later).unwrap_err();
        assert!(matches!(err, PathError::NotValidAt { .. }), "{err}");
        // Today both paths are fine, and the first is taken.
        let path = validate(&leaf, &[ca_a.clone(), ca_b], &[ra.clone(), rb], now()).unwrap();
        assert_eq!(path.chain(), &[leaf, ca_a, ra]);
    }
}
