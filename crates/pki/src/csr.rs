//! PKCS#10 certification requests (RFC 2986): parse, check the proof of possession and
//! the key, and nothing else.
//!
//! The subject and extensions a CSR asks for are ignored on purpose: the certificate's
//! content comes from validated data (CA/B Forum S/MIME BR 3.2 and 4.2), never from the
//! request.

use der::{Decode, Encode, Reader, SliceReader};
use x509_cert::request::CertReq;

use crate::key::{verify_signature, AcceptedPublicKey, KeyError};

/// Errors when reading a CSR.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Not PEM or DER of a CertificationRequest.
    #[error("the CSR could not be read: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// The request's signature (proof of possession) does not verify.
    #[error("the CSR's signature does not verify with its own public key (it was altered or damaged)")]
    BadSignature,
    /// The key is not acceptable.
    #[error("{0}")]
    Key(KeyError),
}

/// Builds a PKCS#10 request (RFC 2986 section 4) for `signer`'s key, signed by it (the
/// proof of possession), with an empty subject and no attributes: the CA takes the
/// subject from validated data anyway. DER.
///
/// ```text
/// CertificationRequestInfo ::= SEQUENCE {
///      version       INTEGER { v1(0) } (v1,...),
///      subject       Name,
///      subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
///      attributes    [0] Attributes{{ CRIAttributes }} }
/// ```
pub fn build(signer: &dyn crate::key::Signer) -> Result<Vec<u8>, CsrError> {
    let failed = |e: der::Error| CsrError::Malformed { reason: e.to_string() };
    let info = x509_cert::request::CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: x509_cert::name::Name::default(),
        public_key: signer.public_key().clone(),
        attributes: Default::default(),
    };
    let info_der = info.to_der().map_err(failed)?;
    let signature = signer.sign(&info_der).map_err(CsrError::Key)?;
    let request = CertReq {
        info,
        algorithm: signer.signature_algorithm(),
        signature: der::asn1::BitString::from_bytes(&signature).map_err(failed)?,
    };
    request.to_der().map_err(failed)
}

/// A CSR whose signature verified and whose key passed the key rules.
#[derive(Debug)]
pub struct ValidatedCsr {
    public_key: AcceptedPublicKey,
}

impl ValidatedCsr {
    /// Parses PEM (`-----BEGIN CERTIFICATE REQUEST-----`, read by [`crate::pem`]: text
    /// before it, as `openssl req -text` writes, and a byte order mark are fine) or DER, verifies the
    /// signature over `certificationRequestInfo` with the enclosed key, and checks the key.
    pub fn parse(input: &[u8]) -> Result<Self, CsrError> {
        let der = to_der(input)?;
        let malformed = |e: der::Error| CsrError::Malformed { reason: e.to_string() };
        let request = CertReq::from_der(&der).map_err(malformed)?;
        // Re-encoding must give the same bytes: we sign-check exactly what we parsed.
        if request.to_der().map_err(malformed)? != der {
            return Err(CsrError::Malformed { reason: "the CSR is not DER-encoded".into() });
        }
        let info_der = first_element(&der).map_err(malformed)?;
        let signature = request
            .signature
            .as_bytes()
            .ok_or_else(|| CsrError::Malformed { reason: "the signature is not whole bytes".into() })?;
        // The key rules first: a weak key is refused for what it is.
        let public_key = AcceptedPublicKey::from_spki(request.info.public_key.clone()).map_err(CsrError::Key)?;
        match verify_signature(&request.info.public_key, &request.algorithm, info_der, signature) {
            Ok(()) => {}
            Err(KeyError::BadSignature) => return Err(CsrError::BadSignature),
            Err(other) => return Err(CsrError::Key(other)),
        }
        Ok(Self { public_key })
    }

    /// The checked public key.
    pub fn public_key(&self) -> &AcceptedPublicKey {
        &self.public_key
    }

    /// Gives up the key.
    pub fn into_public_key(self) -> AcceptedPublicKey {
        self.public_key
    }
}

fn to_der(input: &[u8]) -> Result<Vec<u8>, CsrError> {
    if crate::pem::is_pem(input) {
        crate::pem::decode_first(input, &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]).map_err(|e| match e {
            crate::pem::PemError::Missing { found, .. } if !found.is_empty() => CsrError::Malformed {
                reason: format!("the PEM text holds {}, not a CERTIFICATE REQUEST", found.join(", ")),
            },
            other => CsrError::Malformed { reason: other.to_string() },
        })
    } else if input.is_empty() {
        Err(CsrError::Malformed { reason: "the input is empty".into() })
    } else {
        Ok(input.to_vec())
    }
}

/// The raw TLV bytes of the first element inside the outer SEQUENCE.
pub(crate) fn first_element(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|inner| {
        let first = inner.tlv_bytes()?;
        // Skip the remaining elements so the sequence decodes completely.
        while !inner.is_finished() {
            inner.tlv_bytes()?;
        }
        Ok(first)
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const P256_CSR: &str = include_str!("../tests/data/csr/p256.csr.pem");
    const RSA1024_CSR: &str = include_str!("../tests/data/csr/rsa1024.csr.pem");
    const ED25519_CSR: &str = include_str!("../tests/data/csr/ed25519.csr.pem");
    const P256_TEXT_CSR: &str = include_str!("../tests/data/csr/p256-text.csr.pem");

    #[test]
    fn openssl_csrs_validate() {
        assert_eq!(ValidatedCsr::parse(P256_CSR.as_bytes()).unwrap().public_key().kind().to_string(), "ECDSA P-256");
        assert_eq!(ValidatedCsr::parse(ED25519_CSR.as_bytes()).unwrap().public_key().kind().to_string(), "Ed25519");
    }

    /// RFC 7468 section 2: text before the block (`openssl req -text`), a byte order
    /// mark, CRLF line ends and text after it do not stop a CSR from being read.
    #[test]
    fn explanatory_text_and_byte_order_mark_are_read() {
        assert!(P256_TEXT_CSR.starts_with("Certificate Request:"));
        let inputs = [
            P256_TEXT_CSR.to_owned(),
            format!("\u{feff}{P256_CSR}"),
            format!("\u{feff}{P256_TEXT_CSR}").replace('\n', "\r\n"),
            format!("Paste from the portal:\n{P256_CSR}-- \nJane\n"),
        ];
        for input in inputs {
            let csr = ValidatedCsr::parse(input.as_bytes()).unwrap_or_else(|e| panic!("{e}: {input:?}"));
            assert_eq!(csr.public_key().kind().to_string(), "ECDSA P-256");
        }
        let certificate = "Certificate:\n-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
        let err = ValidatedCsr::parse(certificate.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("not a CERTIFICATE REQUEST"), "{err}");
    }

    #[test]
    fn short_rsa_key_is_refused() {
        let err = ValidatedCsr::parse(RSA1024_CSR.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("too short"), "{err}");
    }

    #[test]
    fn tampered_csr_is_refused() {
        let (_, mut der) = der::pem::decode_vec(P256_CSR.as_bytes()).unwrap();
        // Flip a byte inside the subject (well inside certificationRequestInfo).
        der[30] ^= 0x01;
        assert!(matches!(ValidatedCsr::parse(&der), Err(CsrError::BadSignature | CsrError::Malformed { .. })));
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        assert!(matches!(ValidatedCsr::parse(b""), Err(CsrError::Malformed { .. })));
        assert!(matches!(ValidatedCsr::parse(b"hello"), Err(CsrError::Malformed { .. })));
        let (_, der) = der::pem::decode_vec(P256_CSR.as_bytes()).unwrap();
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            assert!(matches!(ValidatedCsr::parse(&der[..cut]), Err(CsrError::Malformed { .. })), "cut {cut}");
        }
        assert!(ValidatedCsr::parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }

    #[test]
    fn built_requests_validate_for_every_key_type() {
        for algorithm in [crate::key::KeyAlgorithm::P256, crate::key::KeyAlgorithm::Rsa3072] {
            let key = crate::key::PrivateKey::generate(algorithm).unwrap();
            let der = build(&key).unwrap();
            let csr = ValidatedCsr::parse(&der).unwrap();
            assert_eq!(csr.into_public_key().spki(), crate::key::Signer::public_key(&key));
            let mut tampered = der.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            assert!(ValidatedCsr::parse(&tampered).is_err());
        }
    }

    /// The CSR fixtures (DER and PEM), mutated: every outcome is `Ok` or `Err`, never a
    /// panic or a hang (the stable stand-in for the `csr_parse` fuzz target).
    #[test]
    fn mutated_csrs_never_panic() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let mut tried = never_panics("CSR", &hostile(), ValidatedCsr::parse);
        for (i, pem) in [P256_CSR, RSA1024_CSR, ED25519_CSR].into_iter().enumerate() {
            let (_, der) = der::pem::decode_vec(pem.as_bytes()).unwrap();
            tried += never_panics("CSR (DER)", &mutants(&der, 1_000, i as u64), ValidatedCsr::parse);
            tried += never_panics("CSR (PEM)", &mutants(pem.as_bytes(), 100, i as u64), ValidatedCsr::parse);
        }
        let mutated = mutants(&der::pem::decode_vec(P256_CSR.as_bytes()).unwrap().1, 400, 0);
        assert!(mutated.iter().filter(|m| ValidatedCsr::parse(&m.bytes).is_ok()).count() < mutated.len() / 10);
        eprintln!("CSR: {tried} mutated inputs");
    }
}
