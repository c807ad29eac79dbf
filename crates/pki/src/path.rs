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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cloned_ref_to_slice_refs
)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn der(dir: &Path, name: &str) -> Vec<u8> {
        let pem = std::fs::read(dir.join(name)).unwrap();
        der::pem::decode_vec(&pem).unwrap().1
    }

    /// Root -> intermediate (`ca_ext`) -> leaf (`leaf_ext`), made by OpenSSL.
    fn chain(dir: &Path, ca_ext: &str, leaf_ext: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
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
        let mut leaf = vec!["req", "-new", "-subj", "/CN=Leaf", "-keyout", "leaf.key", "-out", "leaf.csr"];
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
}
