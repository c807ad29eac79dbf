//! CRL processing (RFC 5280 section 6.3) for the certificates of a validated path.
//!
//! For each distribution point of the certificate (or, when it has no
//! cRLDistributionPoints extension, one implied point whose CRL issuer is the
//! certificate's issuer), the complete CRLs given are tried in turn (6.3.3):
//! - (a) the CRL is current: thisUpdate <= now <= nextUpdate (a CRL without nextUpdate
//!   is never current); a CRL that is not current settles nothing, except that a
//!   revocation it lists, other than a hold, is still reported;
//! - (b) its issuer and scope fit: the certificate's issuer, or the cRLIssuer of the
//!   distribution point for an indirect CRL; the issuingDistributionPoint name matches
//!   the distribution point, onlyContainsUserCerts / onlyContainsCACerts fit the
//!   certificate, onlyContainsAttributeCerts is not set;
//! - (c), (d) the reasons it covers (onlySomeReasons and the point's reasons) add a
//!   reason not covered yet;
//! - (e) a delta CRL (deltaCRLIndicator) of the same issuer and scope, current, whose
//!   BaseCRLNumber is at most the complete CRL's cRLNumber, is used with it;
//! - (f), (g) the CRL is signed by a certificate of the CRL issuer whose keyUsage (if
//!   any) has cRLSign: the certificate's issuer from the path, another certificate of
//!   the path, or one of the `crl_issuers` given, whose own path to the same trust
//!   anchor is validated and whose own revocation status is checked (to a small depth);
//! - (h), (i), (j) the certificate is looked up in the delta CRL and then the complete
//!   CRL; for indirect CRLs an entry belongs to the issuer named by the last
//!   certificateIssuer entry extension; removeFromCRL on a delta CRL undoes a hold.
//!
//! A CRL or CRL entry with a critical extension not listed here makes the CRL unusable.
//! The status is [`RevocationStatus::NotRevoked`] only when the usable CRLs cover all
//! reasons (6.3.3 (k), 6.3.3 final step).

use std::cmp::Ordering;

use der::asn1::ObjectIdentifier;
use der::oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CERTIFICATE_ISSUER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS,
    ID_CE_DELTA_CRL_INDICATOR, ID_CE_FRESHEST_CRL, ID_CE_HOLD_INSTRUCTION_CODE, ID_CE_INVALIDITY_DATE,
    ID_CE_ISSUER_ALT_NAME, ID_CE_ISSUING_DISTRIBUTION_POINT,
};
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, GeneralNames};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BaseCrlNumber, BasicConstraints, CrlDistributionPoints, CrlNumber, CrlReason, KeyUsage,
    KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extensions;
use x509_cert::name::{Name, RdnSequence};
use x509_cert::Certificate;

use super::{
    decode_extension, names_equal, parse, subject_of, validate_with, Parsed, PathError, Purpose, ValidatedPath,
};
use crate::key::verify_signature;
use crate::x509::to_offset;

/// The revocation status of a certificate found in the CRLs given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Usable, current CRLs covering every reason do not list it.
    NotRevoked,
    /// The CRLs given do not settle it (none usable, or not all reasons covered).
    Unknown,
}

/// Every reason of ReasonFlags but `unused` (RFC 5280 section 4.2.1.13), bits 1 to 8.
const ALL_REASONS: u16 = 0x01fe;

/// How deep CRL issuer certificates are themselves checked for revocation.
const MAX_CRL_ISSUER_DEPTH: u8 = 2;

/// CRL extensions certdesk processes or may ignore (RFC 5280 section 5.2).
const KNOWN_CRL_EXTENSIONS: [ObjectIdentifier; 6] = [
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ID_CE_ISSUER_ALT_NAME,
    ID_CE_CRL_NUMBER,
    ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_ISSUING_DISTRIBUTION_POINT,
    ID_CE_FRESHEST_CRL,
];

/// CRL entry extensions certdesk processes or may ignore (RFC 5280 section 5.3).
const KNOWN_ENTRY_EXTENSIONS: [ObjectIdentifier; 4] =
    [ID_CE_CRL_REASONS, ID_CE_INVALIDITY_DATE, ID_CE_CERTIFICATE_ISSUER, ID_CE_HOLD_INSTRUCTION_CODE];

struct Crl {
    der_tbs: Vec<u8>,
    crl: CertificateList,
    idp: Option<IssuingDistributionPoint>,
    number: Option<Vec<u8>>,
    /// BaseCRLNumber, for a delta CRL.
    base: Option<Vec<u8>>,
    author_key: Option<Vec<u8>>,
}

fn find<T: der::oid::AssociatedOid + for<'a> Decode<'a>>(extensions: Option<&Extensions>) -> Result<Option<T>, ()> {
    find_by_oid(extensions, T::OID)
}

fn find_by_oid<T: for<'a> Decode<'a>>(extensions: Option<&Extensions>, id: ObjectIdentifier) -> Result<Option<T>, ()> {
    match extensions.into_iter().flatten().find(|e| e.extn_id == id) {
        None => Ok(None),
        Some(e) => T::from_der(e.extn_value.as_bytes()).map(Some).map_err(|_| ()),
    }
}

fn unknown_critical(extensions: Option<&Extensions>, known: &[ObjectIdentifier]) -> bool {
    extensions.into_iter().flatten().any(|e| e.critical && !known.contains(&e.extn_id))
}

/// Parses a CRL and keeps it only if it is usable at all: it decodes, its extensions
/// decode, and neither it nor an entry has an unknown critical extension.
fn parse_crl(der: &[u8]) -> Option<Crl> {
    let crl = CertificateList::from_der(der).ok()?;
    let tbs = &crl.tbs_cert_list;
    let extensions = tbs.crl_extensions.as_ref();
    if unknown_critical(extensions, &KNOWN_CRL_EXTENSIONS) {
        return None;
    }
    if tbs.revoked_certificates.iter().flatten().any(|r| {
        unknown_critical(r.crl_entry_extensions.as_ref(), &KNOWN_ENTRY_EXTENSIONS)
            || find::<CrlReason>(r.crl_entry_extensions.as_ref()).is_err()
    }) {
        return None;
    }
    // By OID: x509-cert 0.3.0 gives IssuingDistributionPoint the OID of
    // subjectInfoAccess (1.3.6.1.5.5.7.1.11) instead of id-ce-issuingDistributionPoint.
    let idp = find_by_oid::<IssuingDistributionPoint>(extensions, ID_CE_ISSUING_DISTRIBUTION_POINT).ok()?;
    let number = find::<CrlNumber>(extensions).ok()?.map(|n| n.0.as_bytes().to_vec());
    let base = find::<BaseCrlNumber>(extensions).ok()?.map(|n| n.0.as_bytes().to_vec());
    let author_key = find::<AuthorityKeyIdentifier>(extensions).ok()?.and_then(|a| a.key_identifier);
    let author_key = author_key.map(|k| k.as_bytes().to_vec());
    let der_tbs = super::signed_bytes(der)?.to_vec();
    Some(Crl { der_tbs, crl, idp, number, base, author_key })
}

fn uint_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |x: &[u8]| -> Vec<u8> { x.iter().copied().skip_while(|&b| b == 0).collect() };
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

impl Crl {
    fn issuer(&self) -> &Name {
        &self.crl.tbs_cert_list.issuer
    }

    /// 6.3.3 (a): thisUpdate <= now <= nextUpdate.
    fn current(&self, now: OffsetDateTime) -> bool {
        let tbs = &self.crl.tbs_cert_list;
        to_offset(&tbs.this_update).is_some_and(|t| t <= now)
            && tbs.next_update.as_ref().and_then(to_offset).is_some_and(|t| now <= t)
    }

    fn signed_by(&self, signer: &Certificate) -> bool {
        let Some(signature) = self.crl.signature.as_bytes() else { return false };
        verify_signature(
            signer.tbs_certificate().subject_public_key_info(),
            &self.crl.signature_algorithm,
            &self.der_tbs,
            signature,
        )
        .is_ok()
    }

    fn indirect(&self) -> bool {
        self.idp.as_ref().is_some_and(|i| i.indirect_crl)
    }

    fn reasons(&self) -> u16 {
        self.idp.as_ref().and_then(|i| i.only_some_reasons).map_or(ALL_REASONS, |r| r.bits() & ALL_REASONS)
    }

    /// 6.3.3 (i), (h): the entry for `cert`, as (revocation date, reason).
    fn entry_for(&self, cert: &Certificate) -> Option<(OffsetDateTime, Option<CrlReason>)> {
        let tbs = &self.crl.tbs_cert_list;
        let mut entry_issuer = tbs.issuer.clone();
        for entry in tbs.revoked_certificates.iter().flatten() {
            let extensions = entry.crl_entry_extensions.as_ref();
            // RFC 5280 5.3.3: certificateIssuer names the issuer of this and the following
            // entries of an indirect CRL.
            if self.indirect() {
                if let Ok(Some(names)) = find_by_oid::<GeneralNames>(extensions, ID_CE_CERTIFICATE_ISSUER) {
                    if let Some(name) = names.iter().find_map(|n| match n {
                        GeneralName::DirectoryName(d) => Some(d.clone()),
                        _ => None,
                    }) {
                        entry_issuer = name;
                    }
                }
            }
            if &entry.serial_number == cert.tbs_certificate().serial_number()
                && names_equal(&entry_issuer, cert.tbs_certificate().issuer())
            {
                let at = to_offset(&entry.revocation_date)?;
                return Some((at, find::<CrlReason>(extensions).ok().flatten()));
            }
        }
        None
    }
}

/// The full names of a distribution point name; a name relative to the CRL issuer is
/// appended to `issuer` (RFC 5280 section 4.2.1.13).
fn full_names(name: &DistributionPointName, issuer: &Name) -> Vec<GeneralName> {
    match name {
        DistributionPointName::FullName(names) => names.clone(),
        DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
            let mut sequence: RdnSequence = issuer.clone().into();
            sequence.push(rdn.clone());
            // Through DER, as x509-cert builds a Name from an RdnSequence only that way.
            let name = sequence.to_der().ok().and_then(|der| Name::from_der(&der).ok());
            name.map(GeneralName::DirectoryName).into_iter().collect()
        }
    }
}

fn general_names_meet(a: &[GeneralName], b: &[GeneralName]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| match (x, y) {
            (GeneralName::DirectoryName(p), GeneralName::DirectoryName(q)) => names_equal(p, q),
            _ => x == y,
        })
    })
}

fn directory_names(names: &[GeneralName]) -> impl Iterator<Item = &Name> {
    names.iter().filter_map(|n| match n {
        GeneralName::DirectoryName(d) => Some(d),
        _ => None,
    })
}

/// 6.3.3 (b): the CRL's issuer and scope fit the certificate and distribution point.
fn in_scope(cert: &Certificate, dp: &DistributionPoint, crl: &Crl) -> bool {
    let cert_issuer = cert.tbs_certificate().issuer();
    // (b)(1)
    match &dp.crl_issuer {
        Some(names) => {
            if !crl.indirect() || !directory_names(names).any(|n| names_equal(n, crl.issuer())) {
                return false;
            }
        }
        None => {
            if !names_equal(crl.issuer(), cert_issuer) {
                return false;
            }
        }
    }
    // (b)(2)
    let Some(idp) = &crl.idp else { return true };
    if let Some(idp_name) = &idp.distribution_point {
        let idp_names = full_names(idp_name, crl.issuer());
        let matched = match (&dp.distribution_point, &dp.crl_issuer) {
            (Some(dp_name), issuers) => {
                let dp_issuer = issuers.as_ref().and_then(|n| directory_names(n).next()).unwrap_or(cert_issuer);
                general_names_meet(&idp_names, &full_names(dp_name, dp_issuer))
            }
            (None, Some(issuers)) => general_names_meet(&idp_names, issuers),
            (None, None) => false,
        };
        if !matched {
            return false;
        }
    }
    let is_ca = decode_extension::<BasicConstraints>(cert).ok().flatten().is_some_and(|b| b.ca);
    !(idp.only_contains_user_certs && is_ca
        || idp.only_contains_ca_certs && !is_ca
        || idp.only_contains_attribute_certs)
}

/// The state shared by the checks of one path.
struct Context<'a> {
    /// The validated path, leaf first, anchor last.
    path: Vec<Parsed>,
    crls: &'a [Crl],
    raw_crls: &'a [Vec<u8>],
    crl_issuers: &'a [Vec<u8>],
    now: OffsetDateTime,
    depth: u8,
}

impl Context<'_> {
    /// 6.3.3 (f), (g): a validated certificate of the CRL issuer that signed `crl`.
    fn signer(&self, crl: &Crl, index: usize) -> Option<Certificate> {
        let key_ok = |candidate: &Certificate| {
            let ski = decode_extension::<SubjectKeyIdentifier>(candidate).ok().flatten();
            let aki_fits = match (&crl.author_key, ski) {
                (Some(aki), Some(ski)) => aki.as_slice() == ski.0.as_bytes(),
                _ => true,
            };
            let usage = decode_extension::<KeyUsage>(candidate).ok();
            let crl_sign = usage.is_some_and(|u| u.is_none_or(|u| u.0.contains(KeyUsages::CRLSign)));
            aki_fits
                && crl_sign
                && names_equal(candidate.tbs_certificate().subject(), crl.issuer())
                && crl.signed_by(candidate)
        };
        // Certificates of the path above the one checked are validated already. When
        // the path is that of a CRL issuer (depth > 0), its own key may have signed the
        // CRL that covers it (as in PKITS 4.14.30): the path of that key is validated.
        let first = if self.depth > 0 && index == 0 { 0 } else { index + 1 };
        for above in self.path.iter().skip(first) {
            if key_ok(&above.cert) {
                return Some(above.cert.clone());
            }
        }
        if self.depth >= MAX_CRL_ISSUER_DEPTH {
            return None;
        }
        let anchor = self.path.last()?;
        let mut pool: Vec<Vec<u8>> = self.crl_issuers.to_vec();
        pool.extend(self.path.iter().map(|p| p.der.clone()));
        for der in self.crl_issuers {
            let Ok(candidate) = parse(der) else { continue };
            if self.path.iter().any(|p| p.der == candidate.der) || !key_ok(&candidate.cert) {
                continue;
            }
            let options = super::ValidationOptions::default().with_purpose(Purpose::CrlSigning);
            let Ok(path) = validate_with(der, &pool, std::slice::from_ref(&anchor.der), self.now, &options) else {
                continue;
            };
            let status = check(&path, self.raw_crls, self.crl_issuers, self.now, self.depth + 1, 0, path.chain.len());
            if status == Ok(RevocationStatus::NotRevoked) {
                return Some(candidate.cert);
            }
        }
        None
    }

    /// RFC 5280 6.3.3 for the certificate at `index` of the path (0 is the leaf).
    fn status(&self, index: usize) -> Result<RevocationStatus, PathError> {
        let Some(cert) = self.path.get(index).map(|p| &p.cert) else { return Ok(RevocationStatus::Unknown) };
        let points = match decode_extension::<CrlDistributionPoints>(cert)? {
            Some(points) => points.0,
            None => vec![DistributionPoint { distribution_point: None, reasons: None, crl_issuer: None }],
        };
        let mut reasons_mask: u16 = 0;
        for dp in &points {
            let dp_reasons = dp.reasons.map_or(ALL_REASONS, |r| r.bits() & ALL_REASONS);
            for complete in self.crls.iter().filter(|c| c.base.is_none()) {
                if reasons_mask == ALL_REASONS {
                    break;
                }
                if !in_scope(cert, dp, complete) {
                    continue;
                }
                if !complete.current(self.now) {
                    // A stale CRL settles nothing, but a revocation it lists (other than a
                    // hold) is final: RFC 5280 section 5.3.1 lets only certificateHold be undone.
                    let listed = complete
                        .entry_for(cert)
                        .filter(|(_, r)| !matches!(r, Some(CrlReason::CertificateHold | CrlReason::RemoveFromCRL)));
                    if let Some((at, reason)) = listed {
                        if self.signer(complete, index).is_some() {
                            let reason = reason.map(|r| r as u8);
                            return Err(PathError::Revoked { subject: subject_of(cert), at, reason });
                        }
                    }
                    continue;
                }
                let interim = dp_reasons & complete.reasons();
                if interim & !reasons_mask == 0 {
                    continue;
                }
                let Some(signer) = self.signer(complete, index) else { continue };
                // (e): the newest current delta CRL of the same issuer and scope.
                let delta = self
                    .crls
                    .iter()
                    .filter(|d| {
                        d.base.as_ref().is_some_and(|base| {
                            complete.number.as_ref().is_some_and(|n| uint_cmp(base, n) != Ordering::Greater)
                        }) && names_equal(d.issuer(), complete.issuer())
                            && d.idp == complete.idp
                            && d.current(self.now)
                            && d.signed_by(&signer)
                    })
                    .max_by(|a, b| match (&a.number, &b.number) {
                        (Some(x), Some(y)) => uint_cmp(x, y),
                        _ => Ordering::Equal,
                    });
                // (h), (i), (j)
                let entry = match delta.and_then(|d| d.entry_for(cert)) {
                    Some((_, Some(CrlReason::RemoveFromCRL))) => None,
                    Some(found) => Some(found),
                    None => complete.entry_for(cert).filter(|(_, r)| *r != Some(CrlReason::RemoveFromCRL)),
                };
                if let Some((at, reason)) = entry {
                    return Err(PathError::Revoked { subject: subject_of(cert), at, reason: reason.map(|r| r as u8) });
                }
                reasons_mask |= interim;
            }
        }
        Ok(if reasons_mask == ALL_REASONS { RevocationStatus::NotRevoked } else { RevocationStatus::Unknown })
    }
}

/// Checks `count` certificates of `path` from `start` (0: the leaf), never the anchor.
fn check(
    path: &ValidatedPath,
    crls: &[Vec<u8>],
    crl_issuers: &[Vec<u8>],
    now: OffsetDateTime,
    depth: u8,
    start: usize,
    count: usize,
) -> Result<RevocationStatus, PathError> {
    let path: Vec<Parsed> = path.chain.iter().map(|c| parse(c)).collect::<Result<_, _>>()?;
    let parsed: Vec<Crl> = crls.iter().filter_map(|c| parse_crl(c)).collect();
    let context = Context { path, crls: &parsed, raw_crls: crls, crl_issuers, now, depth };
    let end = start.saturating_add(count).min(context.path.len().saturating_sub(1));
    let mut status = if start >= end { RevocationStatus::Unknown } else { RevocationStatus::NotRevoked };
    for index in start..end {
        if context.status(index)? == RevocationStatus::Unknown {
            status = RevocationStatus::Unknown;
        }
    }
    Ok(status)
}

/// The revocation status of the leaf of a validated path, from `crls` (DER), as RFC
/// 5280 section 6.3 says. A revoked leaf is [`PathError::Revoked`]. The CRLs must be
/// signed by a certificate of the path (see [`check_crls_with`] for other CRL issuers).
pub fn check_crls(path: &ValidatedPath, crls: &[Vec<u8>], now: OffsetDateTime) -> Result<RevocationStatus, PathError> {
    check_crls_with(path, crls, &[], now)
}

/// Like [`check_crls`], with `crl_issuers`: further certificates (DER) that may have
/// signed CRLs (indirect CRLs, separate CRL signing keys). Each is used only if its own
/// path to the path's trust anchor validates and is not revoked.
pub fn check_crls_with(
    path: &ValidatedPath,
    crls: &[Vec<u8>],
    crl_issuers: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<RevocationStatus, PathError> {
    check(path, crls, crl_issuers, now, 0, 0, 1)
}

/// The revocation status of certificate `index` of a validated path (0: the leaf, 1: its
/// issuer, ...), from `crls` (DER), as [`check_crls_with`] gives the leaf's, with
/// `crl_issuers` as further certificates that may have signed CRLs. Every certificate
/// is checked against the CRLs at hand whether or not it names a CRL distribution point
/// (RFC 5280 section 6.3: a CRL of its issuer covers it). The trust anchor (the last
/// certificate) has none: [`RevocationStatus::Unknown`].
pub fn check_crls_at(
    path: &ValidatedPath,
    crls: &[Vec<u8>],
    crl_issuers: &[Vec<u8>],
    now: OffsetDateTime,
    index: usize,
) -> Result<RevocationStatus, PathError> {
    check(path, crls, crl_issuers, now, 0, index, 1)
}

/// The revocation status of every certificate of the path but the trust anchor:
/// [`PathError::Revoked`] if one is revoked, [`RevocationStatus::NotRevoked`] only if
/// the status of each is known.
pub fn check_path_crls(
    path: &ValidatedPath,
    crls: &[Vec<u8>],
    crl_issuers: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<RevocationStatus, PathError> {
    check(path, crls, crl_issuers, now, 0, 0, usize::MAX)
}
