//! The keyring model: every key and certificate a person has had, kept for good.
//!
//! Mail encrypted to a certificate that expired or was revoked years ago must still
//! open, so keys are never deleted; their state is derived (current, expired, not yet
//! valid) or marked (revoked). Keys are stored encrypted (PKCS#8 PBES2) by the caller;
//! this module only models entries and finds the one a message was encrypted to.

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::Certificate;

/// Errors of the keyring model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// The certificate cannot be read.
    #[error("the certificate cannot be read: {reason}")]
    BadCertificate {
        /// Why.
        reason: String,
    },
}

/// What a keyring entry says about its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// Stable id: SHA-256 of the certificate, hex (first 16 characters shown to users).
    pub id: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// subjectKeyIdentifier (from the extension, else SHA-1 of the key), hex.
    pub key_id: String,
    /// Mailboxes in subjectAltName.
    pub emails: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// The state of a key at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Valid now.
    Current,
    /// Past its certificate's validity: still decrypts old mail.
    Expired,
    /// Not valid yet.
    NotYetValid,
    /// Marked revoked: still decrypts old mail, never used to sign or encrypt.
    Revoked,
}

impl KeyState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Current => "current",
            KeyState::Expired => "expired",
            KeyState::NotYetValid => "not yet valid",
            KeyState::Revoked => "revoked",
        }
    }
}

fn time_of(t: &x509_cert::time::Time) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(i64::try_from(t.to_unix_duration().as_secs()).ok()?).ok()
}

impl EntryInfo {
    /// Reads what the keyring shows and matches on from a certificate.
    pub fn from_certificate(cert_der: &[u8]) -> Result<Self, KeyringError> {
        let bad = |reason: String| KeyringError::BadCertificate { reason };
        let cert = Certificate::from_der(cert_der).map_err(|e| bad(e.to_string()))?;
        let tbs = cert.tbs_certificate();
        let id = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der));
        let key_id = certdesk_pki::issuance::find_extension::<SubjectKeyIdentifier>(tbs.extensions())
            .map(|ski| ski.0.as_bytes().to_vec())
            .unwrap_or_else(|| certdesk_pki::key::key_identifier(tbs.subject_public_key_info()));
        let emails = certdesk_pki::subject::certificate_mailboxes(&cert);
        let not_before = time_of(&tbs.validity().not_before).ok_or_else(|| bad("unreadable notBefore".into()))?;
        let not_after = time_of(&tbs.validity().not_after).ok_or_else(|| bad("unreadable notAfter".into()))?;
        let _ = tbs.to_der().map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            id,
            subject: certdesk_pki::subject::rfc4514(tbs.subject()),
            issuer: certdesk_pki::subject::rfc4514(tbs.issuer()),
            serial: hex::encode(tbs.serial_number().as_bytes()),
            key_id: hex::encode(key_id),
            emails,
            not_before,
            not_after,
        })
    }

    /// The state at `now`, given whether the entry was marked revoked.
    pub fn state(&self, now: OffsetDateTime, revoked: bool) -> KeyState {
        if revoked {
            KeyState::Revoked
        } else if now > self.not_after {
            KeyState::Expired
        } else if now < self.not_before {
            KeyState::NotYetValid
        } else {
            KeyState::Current
        }
    }

    /// Whether a recipient identifier (issuer + serial, or subject key identifier)
    /// names this entry's certificate (RFC 5652 6.2.1).
    pub fn is_recipient(&self, issuer: Option<&str>, serial_hex: Option<&str>, key_id_hex: Option<&str>) -> bool {
        let by_serial = matches!((issuer, serial_hex), (Some(i), Some(s)) if i == self.issuer && s.eq_ignore_ascii_case(&self.serial));
        let by_key = key_id_hex.is_some_and(|k| k.eq_ignore_ascii_case(&self.key_id));
        by_serial || by_key
    }

    /// Whether any of a message's recipient identifiers names this entry's certificate.
    pub fn named_by(&self, wanted: &[crate::envelope::RecipientId]) -> bool {
        wanted.iter().any(|id| match id {
            crate::envelope::RecipientId::IssuerSerial { issuer, serial_hex } => {
                self.is_recipient(Some(issuer), Some(serial_hex), None)
            }
            crate::envelope::RecipientId::SubjectKeyId(key_id) => self.is_recipient(None, None, Some(key_id)),
            _ => false,
        })
    }
}
