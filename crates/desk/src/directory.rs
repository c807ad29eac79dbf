//! The public directory of certificates to encrypt to (issue 16): which certificates it
//! lists, the people they belong to (for LDAP), and their SMIMEA records (RFC 8162).
//!
//! One query of the store ([`certdesk_store::Store::directory_certificates`]) and one
//! rule ([`listable`]) are behind the web directory, its JSON endpoint, the LDAP server
//! and the SMIMEA zone, so all four show the same certificates.

use certdesk_store::CertificateRecord;

/// What the directory lists: certificates valid at `now`, not revoked, whose key can be
/// encrypted to (keyUsage keyEncipherment or keyAgreement; an Ed25519 certificate only
/// signs).
pub fn listable(cert: &CertificateRecord, now: i64) -> bool {
    if cert.revoked_at.is_some() || cert.not_before > now || now > cert.not_after {
        return false;
    }
    encrypts(&cert.der)
}

/// Whether a certificate's key may be encrypted to (keyUsage keyEncipherment or
/// keyAgreement, or no keyUsage); `false` for a signing-only certificate or one that
/// does not decode.
pub fn encrypts(der: &[u8]) -> bool {
    use x509_cert::ext::pkix::KeyUsages;
    match key_usage(der) {
        Some(Some(usage)) => usage.0.contains(KeyUsages::KeyEncipherment) || usage.0.contains(KeyUsages::KeyAgreement),
        Some(None) => true,
        None => false,
    }
}

/// Whether a certificate's key may sign (keyUsage digitalSignature, or no keyUsage);
/// `true` for one that does not decode (the safe side where signing is what is feared).
pub fn signs(der: &[u8]) -> bool {
    match key_usage(der) {
        Some(Some(usage)) => usage.0.contains(x509_cert::ext::pkix::KeyUsages::DigitalSignature),
        Some(None) | None => true,
    }
}

/// A certificate's keyUsage: `None` if it does not decode, `Some(None)` without one.
fn key_usage(der: &[u8]) -> Option<Option<x509_cert::ext::pkix::KeyUsage>> {
    use der::Decode;
    let parsed = x509_cert::Certificate::from_der(der).ok()?;
    Some(certdesk_pki::issuance::find_extension(parsed.tbs_certificate().extensions()))
}

/// A person of the directory: a mailbox with its current certificates to encrypt to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryPerson {
    /// The mailbox, lower case.
    pub mail: String,
    /// The display name: the subject's commonName, else "givenName surname", else the
    /// mailbox.
    pub common_name: String,
    /// The subject's givenName, when a certificate names one.
    pub given_name: Option<String>,
    /// The subject's surname, when a certificate names one.
    pub surname: Option<String>,
    /// The certificates (DER), longest-lasting first, each with its notAfter (Unix
    /// seconds) so that a reader can leave out one that expired since.
    pub certificates: Vec<(Vec<u8>, i64)>,
}

/// Groups listable certificates (ordered by address, as the store returns them) into
/// people; names come from the longest-lasting certificate that has them.
pub fn people(certs: &[CertificateRecord], now: i64) -> Vec<DirectoryPerson> {
    let mut people: Vec<DirectoryPerson> = Vec::new();
    for cert in certs.iter().filter(|c| listable(c, now)) {
        let names = subject_names(&cert.der);
        let mail = cert.email.to_ascii_lowercase();
        let same = people.last().is_some_and(|p| p.mail == mail);
        if !same {
            people.push(DirectoryPerson {
                common_name: mail.clone(),
                mail,
                given_name: None,
                surname: None,
                certificates: Vec::new(),
            });
        }
        let Some(person) = people.last_mut() else { continue };
        if person.given_name.is_none() && person.surname.is_none() && person.common_name == person.mail {
            person.given_name = names.given_name.clone();
            person.surname = names.surname.clone();
            person.common_name = match (&names.common_name, &names.given_name, &names.surname) {
                (Some(cn), _, _) => cn.clone(),
                (None, Some(given), Some(surname)) => format!("{given} {surname}"),
                _ => person.mail.clone(),
            };
        }
        person.certificates.push((cert.der.clone(), cert.not_after));
    }
    people
}

/// The names in a certificate's subject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectNames {
    /// commonName.
    pub common_name: Option<String>,
    /// givenName.
    pub given_name: Option<String>,
    /// surname.
    pub surname: Option<String>,
}

/// Reads commonName, givenName and surname from a certificate's subject (the first of
/// each; text that is not UTF-8 is left out).
pub fn subject_names(der: &[u8]) -> SubjectNames {
    use der::Decode;
    let Ok(cert) = x509_cert::Certificate::from_der(der) else { return SubjectNames::default() };
    let subject = cert.tbs_certificate().subject();
    let text = |oid| {
        subject
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| std::str::from_utf8(a.value.value()).ok().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
    };
    SubjectNames {
        common_name: text(certdesk_pki::oid::AT_COMMON_NAME),
        given_name: text(certdesk_pki::oid::AT_GIVEN_NAME),
        surname: text(certdesk_pki::oid::AT_SURNAME),
    }
}

/// The owner name of a mailbox's SMIMEA records (RFC 8162, 3): the SHA2-256 of the
/// local part (as written, UTF-8) truncated to 28 octets in hex, `_smimecert`, then the
/// domain, absolute. `None` for an address without `@`.
pub fn smimea_owner(mail: &str) -> Option<String> {
    let (local, domain) = mail.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, local.as_bytes());
    let truncated = digest.as_ref().get(..28)?;
    Some(format!("{}._smimecert.{}.", hex::encode(truncated), domain.trim_end_matches('.').to_ascii_lowercase()))
}

/// The SMIMEA records of the listable certificates of mailboxes in `zone` or below it,
/// in zone-file syntax: certificate usage 3 (DANE-EE: this certificate, no path
/// checks), selector 0 (the whole certificate), matching type 0 (the bytes themselves),
/// so a client gets the certificate from DNS alone. One line per certificate, sorted by
/// owner name.
pub fn smimea_records(certs: &[CertificateRecord], now: i64, zone: &str, ttl: u32) -> Vec<String> {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let mut lines: Vec<String> = certs
        .iter()
        .filter(|c| listable(c, now))
        .filter_map(|c| {
            let domain = c.email.rsplit_once('@')?.1.to_ascii_lowercase();
            let inside = domain == zone || domain.ends_with(&format!(".{zone}"));
            if !inside {
                return None;
            }
            let owner = smimea_owner(&c.email)?;
            Some(format!("{owner} {ttl} IN SMIMEA 3 0 0 {}", hex::encode_upper(&c.der)))
        })
        .collect();
    lines.sort();
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn smimea_owner_name_follows_rfc_8162() {
        // RFC 8162, 3: "hugh@example.com" -> the SHA2-256 of "hugh", 28 octets.
        let owner = smimea_owner("hugh@example.com").unwrap_or_default();
        assert_eq!(owner, "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com.");
        assert_eq!(smimea_owner("no-at-sign"), None);
        assert_eq!(smimea_owner("@example.com"), None);
    }
}
