//! The issuer: the only code that holds or calls the CA's signing key.
//!
//! It unlocks the issuing CA key with the passphrase, and signs exactly what
//! `certdesk_pki::issuance::prepare` linted, and CRLs.

use certdesk_pki::crl::{build_crl, CrlContent};
use certdesk_pki::issuance::{issue, IssuanceToken, IssuedCertificate, IssuerInfo, PublicationUrls};
use certdesk_pki::key::{PrivateKey, Signer};
use zeroize::Zeroizing;

use crate::datadir::{read, DataDir};
use crate::error::{DomainError, ErrorCode};

/// The unlocked issuing CA.
pub struct Issuer {
    key: PrivateKey,
    info: IssuerInfo,
    chain_der: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("name", &self.info.name().to_string()).finish_non_exhaustive()
    }
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` PEM file's content.
pub fn unlock_key(pem: &[u8], passphrase: &str) -> Result<PrivateKey, DomainError> {
    let (label, der) = der::pem::decode_vec(pem)
        .map_err(|e| DomainError::new(ErrorCode::DataDir, format!("the CA key file is damaged: {e}")))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(DomainError::new(ErrorCode::DataDir, "the CA key file is not an encrypted private key"));
    }
    let plain: Zeroizing<Vec<u8>> = match certdesk_pki::pbes2::decrypt_private_key_info(&der, passphrase.as_bytes()) {
        Ok(plain) => plain,
        Err(certdesk_pki::pbes2::Error::WrongPassword) => {
            return Err(DomainError::new(ErrorCode::Passphrase, "the CA passphrase is wrong"))
        }
        Err(e) => return Err(DomainError::new(ErrorCode::DataDir, format!("the CA key cannot be decrypted: {e}"))),
    };
    PrivateKey::from_pkcs8_der(&plain)
        .map_err(|e| DomainError::new(ErrorCode::DataDir, format!("the CA key is damaged: {e}")))
}

/// Reads the first certificate of a PEM file as DER.
pub fn read_cert_pem(bytes: &[u8]) -> Result<Vec<u8>, DomainError> {
    let (label, der) = der::pem::decode_vec(bytes)
        .map_err(|e| DomainError::new(ErrorCode::DataDir, format!("a CA certificate file is damaged: {e}")))?;
    if label != "CERTIFICATE" {
        return Err(DomainError::new(ErrorCode::DataDir, "a CA certificate file holds no certificate"));
    }
    Ok(der)
}

impl Issuer {
    /// Unlocks the issuing CA of a data directory.
    pub fn unlock(data: &DataDir, passphrase: &str, urls: PublicationUrls) -> Result<Self, DomainError> {
        let key = unlock_key(&read(&data.issuing_key())?, passphrase)?;
        let issuing = read_cert_pem(&read(&data.issuing_cert())?)?;
        let root = read_cert_pem(&read(&data.root_cert())?)?;
        let info = IssuerInfo::from_certificate(&issuing, key.signature_algorithm(), urls)
            .map_err(|e| DomainError::new(ErrorCode::DataDir, e.to_string()))?;
        if info.public_key() != key.public_key() {
            return Err(DomainError::new(ErrorCode::DataDir, "the issuing CA key does not match its certificate"));
        }
        Ok(Self { key, info, chain_der: vec![issuing, root] })
    }

    /// What issuance needs to know of this CA.
    pub fn info(&self) -> &IssuerInfo {
        &self.info
    }

    /// Issuing CA then root, DER.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// Signs a linted certificate.
    pub fn sign_certificate(&self, token: IssuanceToken) -> Result<IssuedCertificate, DomainError> {
        issue(token, &self.key).map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
    }

    /// Builds and signs a CRL.
    pub fn sign_crl(&self, content: &CrlContent<'_>) -> Result<Vec<u8>, DomainError> {
        build_crl(&self.info, content, &self.key).map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))
    }
}
