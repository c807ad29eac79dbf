//! Signing content that arrives in pieces: the content is hashed as it goes by, and the
//! detached SignedData is built at the end from the digest (RFC 5652 section 5.4: the
//! messageDigest attribute is all the signature needs of the content).
//!
//! [`ContentSigner`] holds no copy of the content, so memory stays bounded whatever
//! its size; it makes detached signatures (for `multipart/signed`, RFC 8551 3.5.3).
//! [`EncapsulatingSigner`] makes the encapsulating (opaque) kind in the same bounded
//! memory: it writes the content into the CMS object as it goes, in BER with
//! indefinite lengths and the eContent as a constructed OCTET STRING of segments, as
//! `openssl cms -sign -stream` does, and puts the SignerInfo (which follows the
//! content) at the end.

use aws_lc_rs::digest;
use certdesk_pki::key::Signer;
use certdesk_pki::oid;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::SetOfVec;
use der::{Decode, Encode};

use super::{encoding, DigestAlgorithm, Prepared, SignOptions, SignedDataError};
use crate::ber_out::{open_indefinite, write_segments};

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

/// An encapsulating (opaque) signature in the making: [`EncapsulatingSigner::new`]
/// writes the start of the BER ContentInfo(SignedData), [`EncapsulatingSigner::push`]
/// hashes each piece of content and writes it as OCTET STRING segments, and
/// [`EncapsulatingSigner::finish`] writes the certificates, the SignerInfo and the
/// end-of-contents octets.
#[derive(Debug)]
pub struct EncapsulatingSigner<'a> {
    signer: ContentSigner<'a>,
}

impl<'a> EncapsulatingSigner<'a> {
    /// Checks the certificate against the key and picks the digest (as [`super::sign`]
    /// does), then appends the start of the message to `out`. `options.detached` is
    /// ignored: the content is always inside.
    pub fn new(
        signer_cert_der: &'a [u8],
        signer: &'a dyn Signer,
        options: &'a SignOptions,
        out: &mut Vec<u8>,
    ) -> Result<Self, SignedDataError> {
        let signer = ContentSigner::new(signer_cert_der, signer, options)?;
        let digest_algorithms = SetOfVec::try_from(vec![signer.prepared.digest.identifier()])
            .map_err(encoding)?
            .to_der()
            .map_err(encoding)?;
        // ContentInfo { contentType, [0] EXPLICIT SignedData { version 1, digestAlgorithms,
        // EncapsulatedContentInfo { eContentType, [0] EXPLICIT OCTET STRING (constructed) {
        open_indefinite(0x30, out);
        out.extend_from_slice(&oid::CMS_SIGNED_DATA.to_der().map_err(encoding)?);
        open_indefinite(0xa0, out);
        open_indefinite(0x30, out);
        out.extend_from_slice(&[0x02, 0x01, 0x01]);
        out.extend_from_slice(&digest_algorithms);
        open_indefinite(0x30, out);
        out.extend_from_slice(&oid::CMS_DATA.to_der().map_err(encoding)?);
        open_indefinite(0xa0, out);
        open_indefinite(0x24, out);
        Ok(Self { signer })
    }

    /// The digest algorithm the signature uses.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.signer.digest_algorithm()
    }

    /// Hashes the next piece of the content and appends it to `out` as segments.
    pub fn push(&mut self, content: &[u8], out: &mut Vec<u8>) {
        self.signer.update(content);
        write_segments(content, out);
    }

    /// Signs, and appends the rest of the message to `out`: the end of the content, the
    /// certificates, the SignerInfo, and the end of every open value. The certificates
    /// and SignerInfo are byte for byte those of the detached signature
    /// [`ContentSigner::finish`] makes over the same content.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), SignedDataError> {
        let detached = self.signer.finish()?;
        let signed_data: SignedData =
            ContentInfo::from_der(&detached).map_err(encoding)?.content.decode_as().map_err(encoding)?;
        // End of the OCTET STRING, of [0] and of EncapsulatedContentInfo.
        out.extend_from_slice(&[0; 6]);
        if let Some(certificates) = &signed_data.certificates {
            // certificates [0] IMPLICIT CertificateSet: the SET's encoding with tag [0].
            let set = certificates.to_der().map_err(encoding)?;
            out.push(0xa0);
            out.extend_from_slice(set.get(1..).unwrap_or_default());
        }
        out.extend_from_slice(&signed_data.signer_infos.to_der().map_err(encoding)?);
        // End of SignedData, of [0] and of ContentInfo.
        out.extend_from_slice(&[0; 6]);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use certdesk_pki::key::PrivateKey;
    use certdesk_test_support::openssl;

    /// A self-signed signer made by OpenSSL in `dir`: (certificate DER, key).
    fn openssl_signer(dir: &std::path::Path, name: &str) -> (Vec<u8>, PrivateKey) {
        let mut args = vec!["req", "-x509", "-newkey", if name == "rsa" { "rsa:2048" } else { "ec" }];
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
        (std::fs::read(dir.join(&cert)).unwrap(), signer)
    }

    fn options() -> SignOptions {
        SignOptions {
            signing_time: time::macros::datetime!(2025-01-02 03:04:05 UTC),
            detached: true,
            chain: Vec::new(),
        }
    }

    fn content() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn signing_in_pieces_is_signing_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["rsa", "p256"] {
            let (cert, signer) = openssl_signer(tmp.path(), name);
            let options = options();
            let content = content();
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

    #[test]
    fn encapsulated_in_pieces_verifies_here_and_in_openssl() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for name in ["rsa", "p256"] {
            let (cert, signer) = openssl_signer(dir, name);
            let options = options();
            let content = content();
            let mut cms = Vec::new();
            let mut streaming = EncapsulatingSigner::new(&cert, &signer, &options, &mut cms).unwrap();
            for piece in content.chunks(100_003) {
                streaming.push(piece, &mut cms);
            }
            streaming.finish(&mut cms).unwrap();
            // BER with indefinite lengths, as openssl -stream writes it.
            assert_eq!(&cms[..2], &[0x30, 0x80]);
            let verified = super::super::verify(&cms, None, &[]).unwrap();
            assert_eq!(verified.content, content);
            assert_eq!(verified.signatures.len(), 1);
            assert_eq!(verified.certificates, vec![cert.clone()]);
            std::fs::write(dir.join("s.p7"), &cms).unwrap();
            openssl(dir, &["cms", "-verify", "-binary", "-inform", "DER", "-in", "s.p7", "-noverify", "-out", "s.out"]);
            assert_eq!(std::fs::read(dir.join("s.out")).unwrap(), content);
            // One changed content byte: the digest no longer matches.
            let mut tampered = cms.clone();
            let at = tampered.windows(4).position(|w| w == [0u8, 1, 2, 3]).unwrap();
            tampered[at + 1] ^= 1;
            assert!(super::super::verify(&tampered, None, &[]).is_err());
        }
    }

    #[test]
    fn empty_content_is_signed_too() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, signer) = openssl_signer(tmp.path(), "p256");
        let options = options();
        let mut cms = Vec::new();
        let streaming = EncapsulatingSigner::new(&cert, &signer, &options, &mut cms).unwrap();
        streaming.finish(&mut cms).unwrap();
        assert!(super::super::verify(&cms, None, &[]).unwrap().content.is_empty());
    }
}
