//! Records as the store keeps them and the service crates pass them around: plain
//! data, no behaviour beyond what the record itself knows. Serials, profiles and
//! revocation reasons are types, read from stored rows by parsing (a damaged row is a
//! database error, never a default).

pub use certdesk_pki::crl::RevocationReason;
pub use certdesk_pki::profile::ProfileId;

/// A certificate serial number as this CA writes it: lower-case hex without separators
/// or a leading `0x` (what [`normalize_serial`] makes of user input). Only made by
/// [`Serial::parse`] (user input, stored rows) and [`Serial::from_der_bytes`] (a
/// certificate being issued), so a `Serial` is always well-formed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Serial(String);

impl Serial {
    /// Parses hex (`:`-separated, upper case or `0x` allowed).
    pub fn parse(input: &str) -> Result<Self, crate::error::DomainError> {
        normalize_serial(input).map(Serial)
    }

    /// The serial of DER INTEGER content bytes.
    pub fn from_der_bytes(bytes: &[u8]) -> Self {
        Serial(hex::encode(bytes))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Serial {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Serial {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Serial {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Serial {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Serial> for String {
    fn eq(&self, other: &Serial) -> bool {
        *self == other.0
    }
}

impl PartialEq<Serial> for str {
    fn eq(&self, other: &Serial) -> bool {
        *self == other.0
    }
}

impl From<Serial> for String {
    fn from(serial: Serial) -> String {
        serial.0
    }
}

/// A certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial, lower-case hex.
    pub serial: Serial,
    /// Subscriber mailbox.
    pub email: String,
    /// Subject, RFC 4514 string.
    pub subject: String,
    /// Profile.
    pub profile: ProfileId,
    /// Key kind, e.g. "RSA-3072".
    pub key_kind: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// The certificate.
    pub der: Vec<u8>,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Reason, when revoked.
    pub revocation_reason: Option<RevocationReason>,
}

/// A revoked entry for the CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedRecord {
    /// Serial, lower-case hex.
    pub serial: Serial,
    /// Unix seconds.
    pub revoked_at: i64,
    /// Reason.
    pub reason: RevocationReason,
}

/// One audit record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// Sequence number, from 1, without gaps.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What (e.g. `certificate.issue`).
    pub action: String,
    /// On what (a serial, an e-mail address).
    pub subject: String,
    /// JSON details.
    pub details: String,
    /// Hash of the previous record (hex).
    pub prev_hash: String,
    /// Hash of this record (hex).
    pub hash: String,
}

/// A certificate's status, as the OCSP responder needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRow {
    /// Serial, lower-case hex.
    pub serial: Serial,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Reason, when revoked.
    pub revocation_reason: Option<RevocationReason>,
}

/// A stored CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlRecord {
    /// crlNumber.
    pub number: i64,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds.
    pub next_update: i64,
    /// DER.
    pub der: Vec<u8>,
}

/// What the portal keeps about a login in progress (server-side, single use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    /// SHA-256 of `state` (hex): the key.
    pub state_hash: String,
    /// SHA-256 of `nonce` (hex).
    pub nonce_hash: String,
    /// The PKCE code verifier (RFC 7636 §4.1).
    pub code_verifier: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A serial number as the store keeps it: lower-case hex without separators. Accepts
/// `:`-separated and upper-case input, and a `0x` prefix.
pub fn normalize_serial(input: &str) -> Result<String, crate::error::DomainError> {
    use crate::error::{DomainError, ErrorCode};
    let cleaned: String = input.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    let cleaned = cleaned.trim_start_matches("0x").to_string();
    if cleaned.is_empty() || cleaned.len() > 42 || !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(DomainError::new(ErrorCode::BadInput, format!("{input:?} is not a serial number in hex")));
    }
    // Tools that print a serial as a number drop its leading zero (`1a2b...` for the
    // bytes 01 a2 b...): the serial is whole bytes, so an odd count of digits gets it back.
    if cleaned.len() % 2 == 1 {
        return Ok(format!("0{cleaned}"));
    }
    Ok(cleaned)
}

/// An issuance intent, recorded before the certificate is signed (see
/// `certdesk_ca::recovery`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuanceIntent {
    /// Serial, lower-case hex.
    pub serial: Serial,
    /// SHA-256 of the to-be-signed certificate (hex).
    pub tbs_sha256: String,
    /// Subscriber mailbox.
    pub email: String,
    /// Profile.
    pub profile: ProfileId,
    /// Unix seconds.
    pub not_after: i64,
    /// The application the certificate is for.
    pub application_id: Option<String>,
    /// The process that signs (`host/pid/instance`).
    pub owner: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A server-made key's .p12 not yet delivered (encrypted under the subscriber's
/// password), stored with its certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// Serial, lower-case hex.
    pub serial: Serial,
    /// The application (a portal delivery: resumable).
    pub application_id: Option<String>,
    /// The file a command line delivers it to.
    pub destination: Option<String>,
    /// SHA-256 of the .p12 (hex).
    pub sha256: String,
    /// The .p12.
    pub pkcs12: Vec<u8>,
    /// The process that delivers (`host/pid/instance`).
    pub owner: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when the portal last sent it (`None`: never).
    pub handed_out_at: Option<i64>,
    /// Wrong passwords given for a re-download in the window starting `wrong_since`.
    pub wrong_tries: i64,
    /// Unix seconds: the start of the window of `wrong_tries`.
    pub wrong_since: Option<i64>,
    /// The other certificates whose keys only this .p12 holds (the signing certificate
    /// of a profile that escrows separately): revoked with `serial` if it never arrives.
    pub companions: Vec<Serial>,
}

impl std::fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingDelivery")
            .field("serial", &self.serial)
            .field("application_id", &self.application_id)
            .field("destination", &self.destination)
            .field("owner", &self.owner)
            .field("handed_out_at", &self.handed_out_at)
            .field("companions", &self.companions)
            .finish_non_exhaustive()
    }
}

/// A root CRL's thisUpdate and nextUpdate (Unix seconds), for the HTTP cache headers.
pub fn root_crl_dates(der: &[u8]) -> Result<(i64, i64), crate::error::DomainError> {
    read_root_crl(der).map(|(_, this_update, next_update)| (this_update, next_update))
}

/// What the root CRL says of itself: its crlNumber, thisUpdate and nextUpdate (Unix
/// seconds).
pub fn read_root_crl(der: &[u8]) -> Result<(u64, i64, i64), crate::error::DomainError> {
    use der::Decode;
    let damaged = |detail: String| {
        crate::error::DomainError::new(crate::error::ErrorCode::DataDir, format!("the root CRL is damaged: {detail}"))
    };
    let crl = x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
        .map_err(|e| damaged(e.to_string()))?;
    let number = crl
        .tbs_cert_list
        .crl_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == certdesk_pki::oid::CE_CRL_NUMBER)
        .ok_or_else(|| damaged("it has no crlNumber".into()))?;
    let value = der::asn1::Uint::from_der(number.extn_value.as_bytes()).map_err(|e| damaged(e.to_string()))?;
    let bytes = value.as_bytes();
    if bytes.len() > 8 {
        return Err(damaged("its crlNumber is too large".into()));
    }
    let number = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let next_update = crl
        .tbs_cert_list
        .next_update
        .and_then(|t| i64::try_from(t.to_unix_duration().as_secs()).ok())
        .ok_or_else(|| damaged("it has no nextUpdate".into()))?;
    let this_update = i64::try_from(crl.tbs_cert_list.this_update.to_unix_duration().as_secs())
        .map_err(|_| damaged("its thisUpdate is out of range".into()))?;
    Ok((number, this_update, next_update))
}

/// Where a recovery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryState {
    /// A holder's own request, waiting for an officer's identity check in person.
    Requested,
    /// Open: agents give their shares until the window ends.
    Open,
    /// Enough agents gave their share: the recipient can take the .p12 once.
    Ready,
    /// The .p12 was handed out.
    Delivered,
    /// Cancelled by the holder, the requester or an administrator.
    Cancelled,
    /// The window ended first.
    Expired,
    /// The shares or the escrowed keys did not give the keys back.
    Failed,
}

impl RecoveryState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            RecoveryState::Requested => "requested",
            RecoveryState::Open => "open",
            RecoveryState::Ready => "ready",
            RecoveryState::Delivered => "delivered",
            RecoveryState::Cancelled => "cancelled",
            RecoveryState::Expired => "expired",
            RecoveryState::Failed => "failed",
        }
    }

    /// Reads a name of [`RecoveryState::name`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "requested" => RecoveryState::Requested,
            "open" => RecoveryState::Open,
            "ready" => RecoveryState::Ready,
            "delivered" => RecoveryState::Delivered,
            "cancelled" => RecoveryState::Cancelled,
            "expired" => RecoveryState::Expired,
            "failed" => RecoveryState::Failed,
            _ => return None,
        })
    }

    /// Whether nothing more happens to it.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            RecoveryState::Delivered | RecoveryState::Cancelled | RecoveryState::Expired | RecoveryState::Failed
        )
    }
}

/// A key recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecoveryRecord {
    /// Random id.
    pub id: String,
    /// The escrow key every key of it is escrowed to.
    pub key_id: String,
    /// Whose keys (lower case).
    pub holder: String,
    /// Who receives the .p12 (lower case): the holder, or a successor or stand-in.
    pub recipient: String,
    /// The certificates whose keys are recovered (lower-case hex), fixed at request.
    pub serials: Vec<String>,
    /// Why (written by the requester).
    pub reason: String,
    /// Who authorised a recovery for someone else (an administrator's request).
    pub authorised_by: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// Where it stands.
    pub state: RecoveryState,
    /// Unix seconds.
    pub created_at: i64,
    /// When agents could start giving shares.
    pub opened_at: Option<i64>,
    /// When the window ends.
    pub expires_at: Option<i64>,
    /// When it was delivered, cancelled, expired or failed.
    pub closed_at: Option<i64>,
    /// Bumped by every transition.
    pub version: i64,
}

/// An agent's approval of a recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryApproval {
    /// The agent's share index.
    pub index: u8,
    /// The agent's address.
    pub agent: String,
    /// Unix seconds.
    pub approved_at: i64,
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalised_to_whole_bytes_of_lower_case_hex() {
        assert_eq!(normalize_serial("01:A2:b3").unwrap(), "01a2b3");
        assert_eq!(normalize_serial("0x01A2B3").unwrap(), "01a2b3");
        // As a tool that prints the serial as a number shows it: the leading zero back.
        assert_eq!(normalize_serial("1A2B3").unwrap(), "01a2b3");
        assert_eq!(Serial::parse("1a2b3").unwrap().as_str(), "01a2b3");
        for bad in ["", "0x", "12g4", "not hex"] {
            assert!(normalize_serial(bad).is_err(), "{bad:?} accepted");
        }
    }
}
