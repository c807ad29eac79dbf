//! Signing content that arrives in pieces: the content is hashed as it goes by, and the
//! detached SignedData is built at the end from the digest (RFC 5652 section 5.4: the
//! messageDigest attribute is all the signature needs of the content).
//!
//! [`ContentSigner`] holds no copy of the content, so memory stays bounded whatever
//! its size. It makes detached signatures only (for `multipart/signed`, RFC 8551
//! 3.5.3); an encapsulating (opaque) signature needs the content inside the CMS object
//! and is built by [`super::sign`].

use aws_lc_rs::digest;
use certdesk_pki::key::Signer;

use super::{DigestAlgorithm, Prepared, SignOptions, SignedDataError};

/// A detached signature in the making: feed the content with [`ContentSigner::update`],
/// then [`ContentSigner::finish`].
pub struct ContentSigner<'a> {
    prepared: Prepared,
    context: digest::Context,
    signer_cert_der: &'a [u8],
    signer: &'a dyn Signer,
    options: &'a SignOptions,
}

impl std::fmt::Debug for ContentSigner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentSigner").field("digest", &self.prepared.digest).finish_non_exhaustive()
    }
}

impl<'a> ContentSigner<'a> {
    /// Checks the certificate against the key and picks the digest (as [`super::sign`]
    /// does) before any content is read. `options.detached` is ignored: the result is
    /// always a detached signature.
    pub fn new(
        signer_cert_der: &'a [u8],
        signer: &'a dyn Signer,
        options: &'a SignOptions,
    ) -> Result<Self, SignedDataError> {
        let prepared = Prepared::new(signer_cert_der, signer)?;
        let context = digest::Context::new(match prepared.digest {
            DigestAlgorithm::Sha256 => &digest::SHA256,
            DigestAlgorithm::Sha384 => &digest::SHA384,
            DigestAlgorithm::Sha512 => &digest::SHA512,
        });
        Ok(Self { prepared, context, signer_cert_der, signer, options })
    }

    /// The digest algorithm the signature will use (for the `micalg` parameter).
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.prepared.digest
    }

    /// Hashes the next piece of the content (exactly the bytes to be signed).
    pub fn update(&mut self, content: &[u8]) {
        self.context.update(content);
    }

    /// The DER ContentInfo(SignedData) with a detached signature over everything passed
    /// to [`ContentSigner::update`]: what [`super::sign`] makes for the same content with
    /// `detached: true` and the same options (byte for byte with a deterministic
    /// signature scheme such as RSA PKCS #1 v1.5).
    pub fn finish(self) -> Result<Vec<u8>, SignedDataError> {
        let message_digest = self.context.finish();
        self.prepared.assemble(message_digest.as_ref(), None, self.signer_cert_der, self.signer, self.options)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use certdesk_pki::key::PrivateKey;
    use certdesk_test_support::openssl;

    #[test]
    fn signing_in_pieces_is_signing_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (name, genargs) in [("rsa", "rsa:2048"), ("p256", "ec")] {
            let mut args = vec!["req", "-x509", "-newkey", genargs];
            if name == "p256" {
                args.extend_from_slice(&["-pkeyopt", "ec_paramgen_curve:P-256"]);
            }
            let key = format!("{name}.key");
            let cert = format!("{name}.der");
            args.extend_from_slice(&[
                "-nodes",
                "-subj",
                "/CN=signer",
                "-days",
                "30",
                "-keyout",
                &key,
                "-outform",
                "DER",
                "-out",
                &cert,
            ]);
            openssl(dir, &args);
            let p8 = format!("{name}.p8");
            openssl(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", &key, "-outform", "DER", "-out", &p8]);
            let signer = PrivateKey::from_pkcs8_der(&std::fs::read(dir.join(&p8)).unwrap()).unwrap();
            let cert = std::fs::read(dir.join(&cert)).unwrap();
            let options = SignOptions {
                signing_time: time::macros::datetime!(2025-01-02 03:04:05 UTC),
                detached: true,
                chain: Vec::new(),
            };
            let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let mut streaming = ContentSigner::new(&cert, &signer, &options).unwrap();
            for piece in content.chunks(65_521) {
                streaming.update(piece);
            }
            let streamed = streaming.finish().unwrap();
            let verified = super::super::verify(&streamed, Some(&content), &[]).unwrap();
            assert_eq!(verified.signatures.len(), 1);
            assert!(super::super::verify(&streamed, Some(&content[1..]), &[]).is_err());
            if name == "rsa" {
                // PKCS #1 v1.5 is deterministic: the same bytes as the in-memory code.
                assert_eq!(streamed, super::super::sign(&content, &cert, &signer, &options).unwrap());
            }
        }
    }
}
