//! Certificate revocation lists (RFC 5280 section 5): building and signing a v2 CRL with
//! crlNumber, authorityKeyIdentifier and per-entry reason codes.

use der::asn1::{BitString, OctetString};
use der::Encode;
use time::OffsetDateTime;
use x509_cert::crl::{RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::serial_number::SerialNumber;

use crate::issuance::{extension, uint, x509_time, IssueError, IssuerInfo};
use crate::key::Signer;

/// The longest CRL validity we produce (CA/B Forum S/MIME BR 4.9.7: nextUpdate at most
/// 10 days after thisUpdate for subscriber CRLs).
pub const MAX_CRL_VALIDITY_DAYS: i64 = 10;

/// The longest validity of a CRL that covers CA certificates (an ARL, signed by the
/// root): BR 4.9.7 allows nextUpdate at most twelve months after thisUpdate; 365 days.
pub const MAX_CA_CRL_VALIDITY_DAYS: i64 = 365;

/// Errors when building a CRL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// nextUpdate is not within (thisUpdate, thisUpdate + the limit]: 10 days
    /// ([`MAX_CRL_VALIDITY_DAYS`]), or [`MAX_CA_CRL_VALIDITY_DAYS`] for [`build_ca_crl`].
    #[error("nextUpdate must be after thisUpdate and at most {max_days} days later")]
    BadValidity {
        /// The limit that applies.
        max_days: i64,
    },
    /// Building or signing failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// DER encoding failed.
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
}

/// RFC 5280 5.3.1 reason codes a subscriber or officer may give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// unspecified (0): written as an entry without a reason code, as RFC 5280 5.3.1 asks.
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
}

impl RevocationReason {
    /// Every reason.
    pub const ALL: [RevocationReason; 5] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key-compromise",
            RevocationReason::AffiliationChanged => "affiliation-changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation-of-operation",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
        }
    }

    /// The RFC 5280 (ASN.1) name, e.g. `keyCompromise`.
    pub fn rfc5280_name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
        }
    }

    /// Reads a name: ours (`key-compromise`) or the RFC 5280 one (`keyCompromise`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name || r.rfc5280_name() == name)
    }

    /// Reads a code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    fn crl_reason(self) -> Option<CrlReason> {
        match self {
            RevocationReason::Unspecified => None,
            RevocationReason::KeyCompromise => Some(CrlReason::KeyCompromise),
            RevocationReason::AffiliationChanged => Some(CrlReason::AffiliationChanged),
            RevocationReason::Superseded => Some(CrlReason::Superseded),
            RevocationReason::CessationOfOperation => Some(CrlReason::CessationOfOperation),
        }
    }
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number bytes.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What goes into one CRL.
#[derive(Clone, Debug)]
pub struct CrlContent<'a> {
    /// The crlNumber (monotonically increasing, RFC 5280 5.2.3).
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The revoked, unexpired certificates.
    pub entries: &'a [RevokedEntry],
}

/// Builds and signs a CRL v2 for the issuing CA.
pub fn build_crl(issuer: &IssuerInfo, content: &CrlContent<'_>, signer: &dyn Signer) -> Result<Vec<u8>, CrlError> {
    build(issuer, content, signer, MAX_CRL_VALIDITY_DAYS)
}

/// Builds and signs a CRL v2 of CA certificates (an ARL) for the root: the same as
/// [`build_crl`], with nextUpdate up to [`MAX_CA_CRL_VALIDITY_DAYS`] after thisUpdate,
/// since an offline root signs rarely (BR 4.9.7).
pub fn build_ca_crl(issuer: &IssuerInfo, content: &CrlContent<'_>, signer: &dyn Signer) -> Result<Vec<u8>, CrlError> {
    build(issuer, content, signer, MAX_CA_CRL_VALIDITY_DAYS)
}

fn build(
    issuer: &IssuerInfo,
    content: &CrlContent<'_>,
    signer: &dyn Signer,
    max_days: i64,
) -> Result<Vec<u8>, CrlError> {
    let span = content.next_update - content.this_update;
    if span <= time::Duration::ZERO || span > time::Duration::days(max_days) {
        return Err(CrlError::BadValidity { max_days });
    }
    let mut revoked: Vec<RevokedCert> = Vec::with_capacity(content.entries.len());
    for entry in content.entries {
        let crl_entry_extensions = match entry.reason.crl_reason() {
            Some(reason) => Some(vec![extension(false, &reason)?]),
            None => None,
        };
        revoked.push(RevokedCert {
            serial_number: SerialNumber::new(&entry.serial)?,
            revocation_date: x509_time(entry.revoked_at)?,
            crl_entry_extensions,
        });
    }
    let tbs = TbsCertList {
        version: x509_cert::certificate::Version::V2,
        signature: issuer.signature_algorithm().clone(),
        issuer: issuer.name().clone(),
        this_update: x509_time(content.this_update)?,
        next_update: Some(x509_time(content.next_update)?),
        revoked_certificates: if revoked.is_empty() { None } else { Some(revoked) },
        crl_extensions: Some(vec![
            extension(
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(issuer.key_identifier().to_vec())?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
            extension(false, &CrlNumber(uint(content.number)?))?,
        ]),
    };
    let tbs_der = tbs.to_der()?;
    if signer.public_key() != issuer.public_key() {
        return Err(CrlError::Issue(IssueError::WrongSigner));
    }
    let signature = signer.sign(&tbs_der).map_err(IssueError::from)?;
    let list = x509_cert::crl::CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signer.signature_algorithm(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(list.to_der()?)
}
