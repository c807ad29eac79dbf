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
//!
//! [`EncapsulatedReader`] verifies such a message (DER or BER) as it arrives: it hands
//! out the content's octets as they come, hashes them with the digest algorithms the
//! SignedData announces, keeps the certificates, CRLs and SignerInfos that follow, and
//! checks the signatures at the end exactly as [`super::verify_detached_digests`] does.
//! The content must not be used before [`EncapsulatedReader::finish`] succeeds.

use aws_lc_rs::digest;
use certdesk_pki::key::Signer;
use certdesk_pki::oid;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::SetOfVec;
use der::{Decode, Encode};

use super::{encoding, DigestAlgorithm, Prepared, SignOptions, SignedDataError, VerifiedMessage};
use crate::ber_stream::{
    need, open_indefinite, read_header, write_segments, BerError, Cursor, Frame, Kind, Length, Walker,
};

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

/// Largest start of a message (everything before the content) held in memory (1 MiB).
pub const MAX_START_LEN: usize = 1024 * 1024;

impl From<BerError> for SignedDataError {
    fn from(e: BerError) -> Self {
        SignedDataError::Malformed { what: "BER encoding", detail: e.0 }
    }
}

/// The start of a SignedData, read up to its content.
struct Start {
    /// Octets taken by the start.
    consumed: usize,
    frames: Vec<Frame>,
    /// A primitive OCTET STRING of this length is next; else `frames` ends with the
    /// constructed one.
    primitive: Option<u64>,
    /// version, digestAlgorithms and eContentType, as received.
    version: Vec<u8>,
    digest_algorithms: Vec<u8>,
    econtent_type: Vec<u8>,
    /// The digest algorithms announced (those known).
    digests: Vec<DigestAlgorithm>,
}

fn parse_start(buf: &[u8]) -> Result<Option<Start>, SignedDataError> {
    let mut c = Cursor::new(buf);
    let mut frames = Vec::new();
    let end = need!(c.open(0x30, "ContentInfo"), None);
    frames.push(Frame { kind: Kind::Closed, end });
    let content_type = need!(c.element(0x06, "contentType"), None);
    let content_type = const_oid::ObjectIdentifier::from_der(content_type)
        .map_err(|e| SignedDataError::Malformed { what: "contentType", detail: e.to_string() })?;
    if content_type != oid::CMS_SIGNED_DATA {
        return Err(SignedDataError::NotSignedData { content_type: content_type.to_string() });
    }
    let end = need!(c.open(0xa0, "ContentInfo content"), None);
    frames.push(Frame { kind: Kind::Closed, end });
    let end = need!(c.open(0x30, "SignedData"), None);
    // After the EncapsulatedContentInfo: certificates, CRLs and SignerInfos, kept.
    frames.push(Frame { kind: Kind::After { only: None }, end });
    let version = need!(c.element(0x02, "version"), None).to_vec();
    let digest_algorithms = need!(c.element(0x31, "digestAlgorithms"), None).to_vec();
    let end = need!(c.open(0x30, "EncapsulatedContentInfo"), None);
    let eci = Frame { kind: Kind::Closed, end };
    frames.push(eci);
    let econtent_type = need!(c.element(0x06, "eContentType"), None).to_vec();
    if need!(c.at_end_of(&eci), None) {
        return Err(SignedDataError::DetachedContentMissing);
    }
    let end = need!(c.open(0xa0, "eContent"), None);
    frames.push(Frame { kind: Kind::Closed, end });
    let primitive = match c.peek_tag() {
        None => return Ok(None),
        Some(0x04) => {
            let Some((_, _, length, header)) = read_header(buf.get(c.pos..).unwrap_or_default())? else {
                return Ok(None);
            };
            c.pos += header;
            match length {
                Length::Definite(len) => Some(len),
                Length::Indefinite => None,
            }
        }
        Some(0x24) => {
            let end = need!(c.open(0x24, "eContent"), None);
            frames.push(Frame { kind: Kind::Content, end });
            None
        }
        Some(other) => {
            return Err(SignedDataError::Malformed {
                what: "eContent",
                detail: format!("expected an OCTET STRING, found identifier {other:#04x}"),
            })
        }
    };
    c.check_frames(&frames)?;
    let der = certdesk_pki::ber::ber_to_der(&digest_algorithms)
        .map_err(|e| SignedDataError::Malformed { what: "digestAlgorithms", detail: e.reason.to_string() })?;
    let announced = SetOfVec::<spki::AlgorithmIdentifierOwned>::from_der(&der)
        .map_err(|e| SignedDataError::Malformed { what: "digestAlgorithms", detail: e.to_string() })?;
    let mut digests: Vec<DigestAlgorithm> =
        announced.iter().filter_map(|a| DigestAlgorithm::from_oid(&a.oid)).collect();
    digests.dedup();
    if digests.is_empty() {
        // None we know: every one we know, so the signers' own choice is checked.
        digests = vec![DigestAlgorithm::Sha256, DigestAlgorithm::Sha384, DigestAlgorithm::Sha512];
    }
    Ok(Some(Start { consumed: c.pos, frames, primitive, version, digest_algorithms, econtent_type, digests }))
}

fn context(algorithm: DigestAlgorithm) -> digest::Context {
    digest::Context::new(match algorithm {
        DigestAlgorithm::Sha256 => &digest::SHA256,
        DigestAlgorithm::Sha384 => &digest::SHA384,
        DigestAlgorithm::Sha512 => &digest::SHA512,
    })
}

/// Reads a ContentInfo(SignedData) with encapsulated content, DER or BER, given in
/// pieces (see the module documentation).
#[derive(Default)]
pub struct EncapsulatedReader {
    /// The start of the message, until it is read.
    buf: Vec<u8>,
    streaming: Option<Box<Streaming>>,
}

struct Streaming {
    start: Start,
    walker: Walker,
    hashers: Vec<(DigestAlgorithm, digest::Context)>,
}

impl std::fmt::Debug for EncapsulatedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncapsulatedReader")
            .field("buffered", &self.buf.len())
            .field("streaming", &self.streaming.is_some())
            .finish_non_exhaustive()
    }
}

impl EncapsulatedReader {
    /// A reader at the start of the message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds input; appends the content octets it yields to `content` (not to be used
    /// before [`EncapsulatedReader::finish`] succeeds).
    pub fn push(&mut self, input: &[u8], content: &mut Vec<u8>) -> Result<(), SignedDataError> {
        let Some(streaming) = &mut self.streaming else {
            self.buf.extend_from_slice(input);
            let Some(start) = parse_start(&self.buf)? else {
                if self.buf.len() > MAX_START_LEN {
                    return Err(SignedDataError::Malformed {
                        what: "SignedData",
                        detail: format!("more than {MAX_START_LEN} bytes come before the content"),
                    });
                }
                return Ok(());
            };
            let walker = Walker::new(start.consumed, start.frames.clone(), start.primitive, "SignedData")?;
            let hashers = start.digests.iter().map(|a| (*a, context(*a))).collect();
            let rest = self.buf.split_off(start.consumed.min(self.buf.len()));
            self.buf = Vec::new();
            self.streaming = Some(Box::new(Streaming { start, walker, hashers }));
            return self.push(&rest, content);
        };
        let Streaming { walker, hashers, .. } = &mut **streaming;
        walker.feed(input, &mut |octets: &[u8]| -> Result<(), SignedDataError> {
            for (_, context) in hashers.iter_mut() {
                context.update(octets);
            }
            content.extend_from_slice(octets);
            Ok(())
        })
    }

    /// The input has ended: checks that the message is complete and every signature
    /// (as [`super::verify_detached_digests`]; the returned message's `content` is
    /// empty, the caller has it). A signer who used a digest the SignedData did not
    /// announce, or signed without signed attributes, fails with
    /// [`SignedDataError::ContentNeeded`]: verify such a message with [`super::verify`].
    pub fn finish(self) -> Result<VerifiedMessage, SignedDataError> {
        let Some(streaming) = self.streaming else {
            return Err(SignedDataError::Malformed { what: "SignedData", detail: "the message ends early".into() });
        };
        let Streaming { start, walker, hashers } = *streaming;
        if !walker.complete() {
            return Err(SignedDataError::Malformed { what: "SignedData", detail: "the message ends early".into() });
        }
        // The same SignedData without its content: what follows the content, as received.
        let mut detached = Vec::with_capacity(walker.kept.len() + 128);
        open_indefinite(0x30, &mut detached);
        detached.extend_from_slice(&oid::CMS_SIGNED_DATA.to_der().map_err(encoding)?);
        open_indefinite(0xa0, &mut detached);
        open_indefinite(0x30, &mut detached);
        detached.extend_from_slice(&start.version);
        detached.extend_from_slice(&start.digest_algorithms);
        open_indefinite(0x30, &mut detached);
        detached.extend_from_slice(&start.econtent_type);
        detached.extend_from_slice(&[0, 0]);
        detached.extend_from_slice(&walker.kept);
        detached.extend_from_slice(&[0; 6]);
        let digests: Vec<(DigestAlgorithm, Vec<u8>)> =
            hashers.into_iter().map(|(a, context)| (a, context.finish().as_ref().to_vec())).collect();
        super::verify_detached_digests(&detached, &digests, &[])
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use certdesk_pki::key::PrivateKey;
    use certdesk_test_support::openssl;

    /// The signed_data tests' OpenSSL-made signer with key kind `name`, its files
    /// (`NAME.pem`, `NAME.key`) written to `dir`.
    fn party_files(dir: &std::path::Path, name: &str) -> &'static super::super::tests::Party {
        let party = super::super::tests::fixture().parties.iter().find(|p| p.name == name).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), &party.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), &party.key_pem).unwrap();
        party
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
            let party = party_files(tmp.path(), name);
            let (cert, signer) = (party.cert_der.clone(), &party.key);
            let options = options();
            let content = content();
            let mut streaming = ContentSigner::new(&cert, signer, &options).unwrap();
            for piece in content.chunks(65_521) {
                streaming.update(piece);
            }
            let streamed = streaming.finish().unwrap();
            let verified = super::super::verify(&streamed, Some(&content), &[]).unwrap();
            assert_eq!(verified.signatures.len(), 1);
            assert!(super::super::verify(&streamed, Some(&content[1..]), &[]).is_err());
            if name == "rsa" {
                // PKCS #1 v1.5 is deterministic: the same bytes as the in-memory code.
                assert_eq!(streamed, super::super::sign(&content, &cert, signer, &options).unwrap());
            }
        }
    }

    #[test]
    fn encapsulated_in_pieces_verifies_here_and_in_openssl() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for name in ["rsa", "p256"] {
            let party = party_files(dir, name);
            let (cert, signer) = (party.cert_der.clone(), &party.key);
            let options = options();
            let content = content();
            let mut cms = Vec::new();
            let mut streaming = EncapsulatingSigner::new(&cert, signer, &options, &mut cms).unwrap();
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
        let party = party_files(tmp.path(), "p256");
        let (cert, signer) = (party.cert_der.clone(), &party.key);
        let options = options();
        let mut cms = Vec::new();
        let streaming = EncapsulatingSigner::new(&cert, signer, &options, &mut cms).unwrap();
        streaming.finish(&mut cms).unwrap();
        assert!(super::super::verify(&cms, None, &[]).unwrap().content.is_empty());
    }

    /// Streams `cms` through an [`EncapsulatedReader`] in pieces of `piece` bytes.
    fn read_in_pieces(cms: &[u8], piece: usize) -> Result<(Vec<u8>, VerifiedMessage), SignedDataError> {
        let mut reader = EncapsulatedReader::new();
        let mut content = Vec::new();
        for part in cms.chunks(piece) {
            reader.push(part, &mut content)?;
        }
        let verified = reader.finish()?;
        Ok((content, verified))
    }

    fn encapsulated(cert: &[u8], signer: &PrivateKey, content: &[u8]) -> Vec<u8> {
        let options = options();
        let mut cms = Vec::new();
        let mut streaming = EncapsulatingSigner::new(cert, signer, &options, &mut cms).unwrap();
        streaming.push(content, &mut cms);
        streaming.finish(&mut cms).unwrap();
        cms
    }

    #[test]
    fn reads_ours_and_openssl_der_and_ber_in_any_pieces() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let party = party_files(dir, "p256");
        let (cert, signer) = (party.cert_der.clone(), &party.key);
        let content: Vec<u8> = content().into_iter().take(300_000).collect();
        std::fs::write(dir.join("content"), &content).unwrap();
        let mut messages = vec![("ours", encapsulated(&cert, signer, &content))];
        for (name, stream) in [("openssl DER", false), ("openssl BER", true)] {
            let mut args = vec!["cms", "-sign", "-nodetach", "-binary", "-in", "content", "-signer", "p256.pem"];
            args.extend_from_slice(&["-inkey", "p256.key", "-outform", "DER", "-out", "o.p7"]);
            if stream {
                args.push("-stream");
            }
            openssl(dir, &args);
            messages.push((name, std::fs::read(dir.join("o.p7")).unwrap()));
        }
        assert_eq!(messages[1].1[1] & 0x80, 0x80, "DER: a long definite length");
        assert_eq!(messages[2].1[1], 0x80, "BER: an indefinite length");
        for (name, cms) in &messages {
            for piece in [1, 7, 4096, 100_003, cms.len()] {
                let (got, verified) = read_in_pieces(cms, piece).unwrap_or_else(|e| panic!("{name}/{piece}: {e}"));
                assert_eq!(got, content, "{name}/{piece}");
                assert_eq!(verified.signatures.len(), 1);
                assert_eq!(verified.signatures[0].signer_certificate(), cert.as_slice());
            }
            // The same verdict as the in-memory code.
            assert_eq!(super::super::verify(cms, None, &[]).unwrap().content, content);
        }
    }

    #[test]
    fn tampering_truncation_and_trailing_data_fail() {
        let tmp = tempfile::tempdir().unwrap();
        let party = party_files(tmp.path(), "rsa");
        let (cert, signer) = (party.cert_der.clone(), &party.key);
        let content = b"Content-Type: text/plain\r\n\r\nPay 100 EUR to Alice.\r\n".to_vec();
        let cms = encapsulated(&cert, signer, &content);
        // One changed content byte.
        let mut tampered = cms.clone();
        let at = tampered.windows(3).position(|w| w == b"100").unwrap();
        tampered[at] = b'9';
        assert!(matches!(read_in_pieces(&tampered, 5), Err(SignedDataError::DigestMismatch { .. })));
        // Every truncation fails; none yields a verdict.
        for len in 0..cms.len() {
            assert!(read_in_pieces(&cms[..len], 3).is_err(), "cut at {len}");
        }
        let mut trailing = cms.clone();
        trailing.extend_from_slice(&[0x04, 0x01, 0x41]);
        assert!(read_in_pieces(&trailing, 64).is_err());
    }

    #[test]
    fn detached_and_enveloped_messages_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let party = party_files(tmp.path(), "p256");
        let (cert, signer) = (party.cert_der.clone(), &party.key);
        let detached = super::super::sign(b"x", &cert, signer, &options()).unwrap();
        assert!(matches!(read_in_pieces(&detached, 10), Err(SignedDataError::DetachedContentMissing)));
        // ContentInfo { id-envelopedData, [0] { SEQUENCE {} } }
        let enveloped =
            [0x30, 0x0f, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x02, 0x30, 0x00];
        assert!(matches!(read_in_pieces(&enveloped, 10), Err(SignedDataError::NotSignedData { .. })));
    }

    #[test]
    fn mutants_never_panic_and_never_pass_where_the_in_memory_code_fails() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let tmp = tempfile::tempdir().unwrap();
        let party = party_files(tmp.path(), "p256");
        let (cert, signer) = (party.cert_der.clone(), &party.key);
        let seed = encapsulated(&cert, signer, b"Content-Type: text/plain\r\n\r\nhello\r\n");
        let mut inputs = hostile();
        inputs.extend(mutants(&seed, 400, 7));
        let tried = never_panics("EncapsulatedReader", &inputs, |b| {
            if let Ok((content, _)) = read_in_pieces(b, 13) {
                // What streams through must be what the whole message says.
                let whole = super::super::verify(b, None, &[]).expect("the in-memory code accepts it too");
                assert_eq!(whole.content, content);
            }
        });
        assert!(tried > 500);
    }
}
