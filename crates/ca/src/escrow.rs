//! Key escrow (issue 15; design: docs/design/key-escrow.md). The escrow private key
//! exists only in memory: split into Shamir shares, one per key recovery agent, at
//! `escrow init`, and put together again only for a recovery that `threshold` distinct
//! agents approved.
//!
//! This first part is [`share`]: splitting and combining, with our own share format
//! (which escrow key, which agent, how many are needed) and commitments kept at init, so
//! that a share of another escrow key, a repeated or a forged one is refused by name
//! before anything is combined.

pub mod recover;
pub mod share;

use der::Encode;
use zeroize::Zeroizing;

/// Why an escrow key cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EscrowError {
    /// The shares cannot be made.
    #[error(transparent)]
    Share(#[from] share::ShareError),
    /// The key or its certificate cannot be made.
    #[error("the escrow key: {0}")]
    Key(String),
}

/// A new escrow key, as `escrow init` hands it out: the certificate (public), the key
/// id, one share per agent and what is kept of each. The private key is already gone.
#[derive(Debug)]
pub struct NewEscrowKey {
    /// The self-signed escrow certificate (DER).
    pub certificate: Vec<u8>,
    /// SHA-256 of the escrow key's SubjectPublicKeyInfo.
    pub key_id: [u8; 32],
    /// One share per agent, in the agents' order.
    pub shares: Vec<share::EscrowShare>,
    /// What init keeps of each share.
    pub records: Vec<share::ShareRecord>,
}

/// The key id of an escrow certificate: SHA-256 of its SubjectPublicKeyInfo (DER).
///
/// # Errors
/// [`EscrowError::Key`] if it is no certificate.
pub fn key_id_of(certificate: &[u8]) -> Result<[u8; 32], EscrowError> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(certificate).map_err(|e| EscrowError::Key(e.to_string()))?;
    let spki =
        cert.tbs_certificate().subject_public_key_info().to_der().map_err(|e| EscrowError::Key(e.to_string()))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki);
    let mut id = [0u8; 32];
    id.copy_from_slice(digest.as_ref());
    Ok(id)
}

/// Makes an escrow key (EC P-384, docs/design/key-escrow.md), its self-signed
/// certificate (30 years from `now`), and splits its private key into one share per
/// agent, `threshold` of which put it together. The private key is wiped before this
/// returns.
///
/// # Errors
/// [`EscrowError::Share`] for a bad threshold or agent list, [`EscrowError::Key`] if
/// the key or certificate cannot be made.
pub fn create(
    organization: &str,
    threshold: usize,
    agents: &[String],
    now: time::OffsetDateTime,
) -> Result<NewEscrowKey, EscrowError> {
    use certdesk_pki::key::{KeyAlgorithm, PrivateKey};
    let key = PrivateKey::generate(KeyAlgorithm::P384).map_err(|e| EscrowError::Key(e.to_string()))?;
    let common_name = format!("{organization} Key Escrow {}", now.date());
    let subject = certdesk_pki::subject::escape_rfc4514(&common_name);
    let subject: x509_cert::name::Name =
        format!("CN={subject}").parse().map_err(|e: der::Error| EscrowError::Key(e.to_string()))?;
    let not_after = now + time::Duration::days(30 * 365 + 7);
    let certificate = certdesk_pki::issuance::build_escrow_certificate(
        &subject,
        &key,
        now,
        not_after,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .map_err(|e| EscrowError::Key(e.to_string()))?;
    let key_id = key_id_of(&certificate)?;
    let secret = Zeroizing::new(key.pkcs8_der().to_vec());
    drop(key);
    let (shares, records) = share::split(&secret, &key_id, threshold, agents)?;
    Ok(NewEscrowKey { certificate, key_id, shares, records })
}

/// Puts the escrow private key (PKCS#8) of `certificate`, made for `threshold` shares,
/// together from `shares`, checked against `records`, and checks that it is the key the
/// certificate names.
///
/// # Errors
/// The [`share::ShareError`] of a refused share, or [`EscrowError::Key`] if the shares
/// give a key that is not the certificate's.
pub fn recover_key(
    certificate: &[u8],
    threshold: usize,
    shares: &[share::EscrowShare],
    records: &[share::ShareRecord],
) -> Result<Zeroizing<Vec<u8>>, EscrowError> {
    let key_id = key_id_of(certificate)?;
    let secret = share::combine(shares, &key_id, threshold, records)?;
    match key_of_certificate(&secret, certificate) {
        Ok(()) => Ok(secret),
        Err(KeyMismatch::NoKey) => Err(EscrowError::Key("the shares do not give a private key back".into())),
        Err(KeyMismatch::BadCertificate) => Err(EscrowError::Key("the escrow certificate does not decode".into())),
        Err(KeyMismatch::OtherKey) => {
            Err(EscrowError::Key("the shares give a key that is not the escrow certificate's".into()))
        }
    }
}

/// Why a private key is not the key of a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyMismatch {
    /// The bytes are no private key.
    NoKey,
    /// The certificate does not decode.
    BadCertificate,
    /// Another key's.
    OtherKey,
}

/// Checks that `pkcs8` is the private key of the certificate `cert_der` (its
/// SubjectPublicKeyInfo): the escrow key put together, a recovered key.
pub(crate) fn key_of_certificate(pkcs8: &[u8], cert_der: &[u8]) -> Result<(), KeyMismatch> {
    use der::Decode;
    let key = certdesk_pki::key::PrivateKey::from_pkcs8_der(pkcs8).map_err(|_| KeyMismatch::NoKey)?;
    let cert = x509_cert::Certificate::from_der(cert_der).map_err(|_| KeyMismatch::BadCertificate)?;
    if cert.tbs_certificate().subject_public_key_info() != certdesk_pki::key::Signer::public_key(&key) {
        return Err(KeyMismatch::OtherKey);
    }
    Ok(())
}

/// What `escrow init` kept of the shares of escrow key `key_id`: each agent's index,
/// address and commitment, read from the store.
///
/// # Errors
/// The store's error, or [`certdesk_core::error::ErrorCode::Internal`] for a stored
/// commitment that is not 32 bytes of hex (a damaged row).
pub async fn stored_share_records(
    store: &certdesk_store::Store,
    key_id: &str,
) -> Result<Vec<share::ShareRecord>, certdesk_core::error::DomainError> {
    let mut records = Vec::new();
    for agent in store.escrow_agents(key_id).await? {
        let mut commitment = [0u8; 32];
        hex::decode_to_slice(&agent.commitment, &mut commitment).map_err(|_| {
            certdesk_core::error::DomainError::new(
                certdesk_core::error::ErrorCode::Internal,
                format!("the stored commitment of agent {} is damaged", agent.index),
            )
        })?;
        records.push(share::ShareRecord { index: agent.index, agent: agent.email, commitment });
    }
    Ok(records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_new_escrow_key_comes_back_from_its_shares_and_takes_encryption() {
        let agents: Vec<String> = ["a@example.org", "b@example.org", "c@example.org"].map(String::from).to_vec();
        let now = time::OffsetDateTime::now_utc();
        let made = create("Example University", 2, &agents, now).unwrap();
        assert_eq!(made.key_id, key_id_of(&made.certificate).unwrap());
        assert_eq!(made.shares.len(), 3);
        // An EC key (CMS encrypts to it by key agreement; the CLI test does), and two
        // shares give it back.
        let cert = <x509_cert::Certificate as der::Decode>::from_der(&made.certificate).unwrap();
        assert_eq!(cert.tbs_certificate().subject_public_key_info().algorithm.oid.to_string(), "1.2.840.10045.2.1");
        let key = recover_key(&made.certificate, 2, &made.shares[1..], &made.records).unwrap();
        assert!(certdesk_pki::key::PrivateKey::from_pkcs8_der(&key).is_ok());
        // Another escrow key's certificate with these shares: refused.
        let other = create("Example University", 2, &agents, now).unwrap();
        assert!(recover_key(&other.certificate, 2, &made.shares[..2], &made.records).is_err());
    }
}
