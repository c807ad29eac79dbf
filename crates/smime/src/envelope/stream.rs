//! EnvelopedData in pieces (RFC 5652 section 6, AES-CBC content, RFC 3565): push-style
//! state machines that take the input a slice at a time and append their output to a
//! `Vec<u8>`, so content of any size is encrypted and decrypted in bounded memory.
//!
//! [`StreamEncryptor`] writes BER with indefinite lengths, the encryptedContent as a
//! constructed `[0]` of OCTET STRING segments, as `openssl cms -stream` does (X.690
//! 8.1.3.6, 8.7.3); OpenSSL, NSS and gpgsm read it, and so does [`super::decrypt`].
//!
//! [`EnvelopeReader`] reads the start of a message (DER or BER) up to the encrypted
//! content, so the caller can choose keys; [`EnvelopeReader::open`] unwraps the
//! content-encryption key exactly as [`super::decrypt`] does (RSA PKCS #1 v1.5 with
//! implicit rejection), and the [`ContentDecryptor`] decrypts the content as it arrives.
//! Plaintext comes out before the end of the message is checked: the padding and the
//! structure are only known good when [`ContentDecryptor::finish`] succeeds, so the
//! caller must hold the output back (a temporary file) until then.
//!
//! What is not streamed, but handled in memory as before (the same results): AES-GCM
//! AuthEnvelopedData (the tag comes after the content), a message with more than one
//! key that opens a recipient (only decrypting shows which is right), and a message
//! whose start is longer than [`MAX_PREFIX_LEN`].

use aws_lc_rs::cipher;
use certdesk_pki::oid;
use cms::enveloped_data::{RecipientInfo, RecipientInfos};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;

use crate::ber_stream::{
    need, open_indefinite, read_header, write_length, BerError, Cursor, Frame, Kind, Length, Walker, SEGMENT_LEN,
};

use super::{
    encoding, open_key_agree, open_key_trans, random, recipient_ids, recipient_infos, unsupported, ContentAlgorithm,
    ContentCipher, EncryptOptions, EnvelopeError, RecipientId, RecipientKey,
};

/// Largest start of a message (everything before the encrypted content) held in memory
/// (16 MiB); a longer one is decrypted in memory.
pub const MAX_PREFIX_LEN: usize = 16 * 1024 * 1024;

fn malformed(detail: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Malformed { what: "BER encoding", detail: detail.into() }
}

impl From<BerError> for EnvelopeError {
    fn from(e: BerError) -> Self {
        malformed(e.0)
    }
}

// ---------------------------------------------------------------------------------
// Encryption
// ---------------------------------------------------------------------------------

/// Encrypts content that arrives in pieces into a BER ContentInfo(EnvelopedData) with
/// AES-CBC (see [`super::encrypt`] for the recipients; AES-GCM is not streamed).
pub struct StreamEncryptor {
    key: cipher::StreamingEncryptingKey,
    /// Plaintext bytes taken so far (to know how much ciphertext each piece makes).
    total: u64,
}

impl std::fmt::Debug for StreamEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncryptor").field("total", &self.total).finish_non_exhaustive()
    }
}

impl StreamEncryptor {
    /// Makes the content-encryption key and the RecipientInfos (as [`super::encrypt`]),
    /// and appends the start of the message to `out`. [`ContentCipher::Aes256Gcm`] is
    /// refused with [`EnvelopeError::UnsupportedAlgorithm`]: use [`super::encrypt`].
    pub fn new(
        recipient_certs: &[Vec<u8>],
        options: &EncryptOptions,
        rng: &dyn aws_lc_rs::rand::SecureRandom,
        out: &mut Vec<u8>,
    ) -> Result<Self, EnvelopeError> {
        if recipient_certs.is_empty() {
            return Err(EnvelopeError::NoRecipients);
        }
        let (algorithm, alg_oid, key_len) = match options.cipher {
            ContentCipher::Aes128Cbc => (&cipher::AES_128, oid::AES128_CBC, 16),
            ContentCipher::Aes256Cbc => (&cipher::AES_256, oid::AES256_CBC, 32),
            ContentCipher::Aes256Gcm => return Err(unsupported("streamed content-encryption", &oid::AES256_GCM)),
        };
        let key_material: [u8; 32] = random(rng)?;
        let cek = key_material.get(..key_len).unwrap_or(&key_material);
        let (recip_infos, any_kari) = recipient_infos(recipient_certs, cek, options)?;
        let failed = |_| EnvelopeError::Crypto { operation: "AES-CBC encryption" };
        let iv: [u8; 16] = random(rng)?;
        let key = cipher::StreamingEncryptingKey::less_safe_cbc_pkcs7(
            cipher::UnboundCipherKey::new(algorithm, cek).map_err(failed)?,
            cipher::EncryptionContext::Iv128(aws_lc_rs::iv::FixedLength::from(iv)),
        )
        .map_err(failed)?;
        let content_enc_alg = AlgorithmIdentifierOwned {
            oid: alg_oid,
            parameters: Some(Any::encode_from(&OctetString::new(iv.to_vec()).map_err(encoding)?).map_err(encoding)?),
        };
        // ContentInfo { contentType, [0] EXPLICIT EnvelopedData { version, recipientInfos,
        // EncryptedContentInfo { contentType, contentEncryptionAlgorithm, [0] ...
        open_indefinite(0x30, out);
        out.extend_from_slice(&oid::CMS_ENVELOPED_DATA.to_der().map_err(encoding)?);
        open_indefinite(0xa0, out);
        open_indefinite(0x30, out);
        // RFC 5652 section 6.1: 2 when any RecipientInfo is not version 0 (kari is 3).
        out.extend_from_slice(&[0x02, 0x01, if any_kari { 2 } else { 0 }]);
        out.extend_from_slice(&recip_infos.to_der().map_err(encoding)?);
        open_indefinite(0x30, out);
        out.extend_from_slice(&oid::CMS_DATA.to_der().map_err(encoding)?);
        out.extend_from_slice(&content_enc_alg.to_der().map_err(encoding)?);
        open_indefinite(0xa0, out);
        Ok(Self { key, total: 0 })
    }

    /// Encrypts the next piece of content and appends the ciphertext segments to `out`.
    pub fn push(&mut self, content: &[u8], out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        let failed = |_| EnvelopeError::Crypto { operation: "AES-CBC encryption" };
        for piece in content.chunks(SEGMENT_LEN) {
            let piece_len = u64::try_from(piece.len()).map_err(|_| EnvelopeError::Crypto { operation: "length" })?;
            // CBC gives out whole blocks: what was held back plus this piece, rounded down.
            let held = self.total % 16;
            let produced = usize::try_from((held + piece_len) / 16 * 16)
                .map_err(|_| EnvelopeError::Crypto { operation: "length" })?;
            self.total += piece_len;
            if produced > 0 {
                out.push(0x04);
                write_length(produced, out);
            }
            let start = out.len();
            out.resize(start + piece.len() + 16, 0);
            let target = out.get_mut(start..).unwrap_or_default();
            let written = self.key.update(piece, target).map_err(failed)?.written().len();
            if written != produced {
                return Err(EnvelopeError::Crypto { operation: "AES-CBC encryption (block accounting)" });
            }
            out.truncate(start + written);
        }
        Ok(())
    }

    /// Encrypts the last block (with PKCS #7 padding) and closes every open value.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        let mut last = [0u8; 32];
        let (_, update) =
            self.key.finish(&mut last).map_err(|_| EnvelopeError::Crypto { operation: "AES-CBC encryption" })?;
        let written = update.written();
        if !written.is_empty() {
            out.push(0x04);
            write_length(written.len(), out);
            out.extend_from_slice(written);
        }
        // End-of-contents for [0], EncryptedContentInfo, EnvelopedData, [0] and ContentInfo.
        out.extend_from_slice(&[0; 10]);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Reading BER
// ---------------------------------------------------------------------------------

/// The start of an EnvelopedData, read.
struct Prefix {
    /// Octets taken by the start.
    consumed: usize,
    frames: Vec<Frame>,
    /// A primitive `[0]` of this length is next; else `frames` ends with the constructed one.
    primitive_content: Option<u64>,
    recipient_infos: Vec<RecipientInfo>,
    algorithm: AlgorithmIdentifierOwned,
    /// The fields around the encrypted content, for [`Skeleton::check`].
    skeleton: Skeleton,
}

/// The EnvelopedData fields other than the encrypted content, in DER: the streaming
/// reader checks them with the decoder [`super::decrypt`] uses, so that it accepts no
/// message the in-memory path refuses (a bad version, originatorInfo, contentType or
/// unprotectedAttrs would otherwise pass unread).
#[derive(Clone)]
struct Skeleton {
    /// version, originatorInfo and recipientInfos.
    head: Vec<u8>,
    /// The EncryptedContentInfo's contentType and contentEncryptionAlgorithm.
    content_head: Vec<u8>,
}

impl Skeleton {
    /// Decodes an EnvelopedData made of these fields, an empty encryptedContent and
    /// `trailer` (what followed the EncryptedContentInfo: unprotectedAttrs, BER).
    fn check(&self, trailer: &[u8]) -> Result<(), EnvelopeError> {
        let mut content_info = self.content_head.clone();
        content_info.extend_from_slice(&[0x80, 0x00]);
        let mut body = self.head.clone();
        body.push(0x30);
        write_length(content_info.len(), &mut body);
        body.extend_from_slice(&content_info);
        if !trailer.is_empty() {
            body.extend_from_slice(&to_der(trailer)?);
        }
        let mut data = vec![0x30];
        write_length(body.len(), &mut data);
        data.extend_from_slice(&body);
        super::EnvelopedDataBer::from_ber(&data).map_err(super::malformed("EnvelopedData"))?;
        Ok(())
    }
}

fn to_der(ber: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    certdesk_pki::ber::ber_to_der(ber).map_err(|e| malformed(e.reason))
}

enum PrefixParse {
    Incomplete,
    /// AuthEnvelopedData: decrypted in memory.
    Authenticated,
    Done(Box<Prefix>),
}

fn parse_prefix(buf: &[u8]) -> Result<PrefixParse, EnvelopeError> {
    let mut c = Cursor::new(buf);
    let mut frames = Vec::new();
    let end = need!(c.open(0x30, "ContentInfo"), PrefixParse::Incomplete);
    frames.push(Frame { kind: Kind::Closed, end });
    let content_type = need!(c.element(0x06, "contentType"), PrefixParse::Incomplete);
    let content_type = ObjectIdentifier::from_der(content_type).map_err(|e| malformed(e.to_string()))?;
    if content_type == oid::CMS_AUTH_ENVELOPED_DATA {
        return Ok(PrefixParse::Authenticated);
    }
    if content_type != oid::CMS_ENVELOPED_DATA {
        return Err(EnvelopeError::NotEnvelopedData { content_type: content_type.to_string() });
    }
    let end = need!(c.open(0xa0, "ContentInfo content"), PrefixParse::Incomplete);
    frames.push(Frame { kind: Kind::Closed, end });
    let end = need!(c.open(0x30, "EnvelopedData"), PrefixParse::Incomplete);
    // After the EncryptedContentInfo only unprotectedAttrs [1] may come (kept, checked at the end).
    frames.push(Frame { kind: Kind::After { only: Some(0xa1) }, end });
    let mut head = to_der(need!(c.element(0x02, "version"), PrefixParse::Incomplete))?;
    if c.peek_tag() == Some(0xa0) {
        head.extend_from_slice(&to_der(need!(c.element(0xa0, "originatorInfo"), PrefixParse::Incomplete))?);
    }
    let infos = to_der(need!(c.element(0x31, "recipientInfos"), PrefixParse::Incomplete))?;
    head.extend_from_slice(&infos);
    let infos = RecipientInfos::from_ber(&infos).map_err(super::malformed("RecipientInfos"))?;
    let end = need!(c.open(0x30, "EncryptedContentInfo"), PrefixParse::Incomplete);
    frames.push(Frame { kind: Kind::Closed, end });
    let mut content_head = to_der(need!(c.element(0x06, "contentType"), PrefixParse::Incomplete))?;
    let algorithm = to_der(need!(c.element(0x30, "contentEncryptionAlgorithm"), PrefixParse::Incomplete))?;
    content_head.extend_from_slice(&algorithm);
    let algorithm =
        AlgorithmIdentifierOwned::from_ber(&algorithm).map_err(super::malformed("contentEncryptionAlgorithm"))?;
    let skeleton = Skeleton { head, content_head };
    skeleton.check(&[])?;
    let eci_ended = frames.last().and_then(|f| f.end).is_some_and(|end| c.absolute().ok() == Some(end));
    let absent = || EnvelopeError::Malformed {
        what: "encryptedContent",
        detail: "the encrypted content is absent (detached content is not supported)".into(),
    };
    if eci_ended {
        return Err(absent());
    }
    let primitive_content = match c.peek_tag() {
        None => return Ok(PrefixParse::Incomplete),
        Some(0x80) => {
            let Some((_, _, length, header)) = read_header(buf.get(c.pos..).unwrap_or_default())? else {
                return Ok(PrefixParse::Incomplete);
            };
            c.pos += header;
            match length {
                Length::Definite(len) => Some(len),
                Length::Indefinite => return Err(malformed("encryptedContent has an indefinite length")),
            }
        }
        Some(0xa0) => {
            let end = need!(c.open(0xa0, "encryptedContent"), PrefixParse::Incomplete);
            frames.push(Frame { kind: Kind::Content, end });
            None
        }
        Some(_) => return Err(absent()),
    };
    c.check_frames(&frames)?;
    Ok(PrefixParse::Done(Box::new(Prefix {
        consumed: c.pos,
        frames,
        primitive_content,
        recipient_infos: infos.0.into_vec(),
        algorithm,
        skeleton,
    })))
}

// ---------------------------------------------------------------------------------
// Decryption
// ---------------------------------------------------------------------------------

/// Reads the start of a ContentInfo(EnvelopedData), DER or BER, given in pieces.
#[derive(Default)]
pub struct EnvelopeReader {
    buf: Vec<u8>,
    prefix: Option<Box<Prefix>>,
    /// Not streamable (AuthEnvelopedData, or a very long start): kept whole.
    whole: bool,
}

impl std::fmt::Debug for EnvelopeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeReader")
            .field("buffered", &self.buf.len())
            .field("ready", &self.prefix.is_some())
            .finish_non_exhaustive()
    }
}

impl EnvelopeReader {
    /// A reader at the start of the message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds input. Returns `true` once the recipients and the content-encryption
    /// algorithm are read: then call [`EnvelopeReader::open`] (pushing more only
    /// buffers it). Until then keep pushing; at the end of the input call
    /// [`EnvelopeReader::open`] anyway (a message that cannot be streamed is then
    /// decrypted in memory).
    pub fn push(&mut self, input: &[u8]) -> Result<bool, EnvelopeError> {
        self.buf.extend_from_slice(input);
        if self.prefix.is_some() {
            return Ok(true);
        }
        if self.whole {
            return Ok(false);
        }
        match parse_prefix(&self.buf)? {
            PrefixParse::Done(prefix) => {
                self.prefix = Some(prefix);
                Ok(true)
            }
            PrefixParse::Authenticated => {
                self.whole = true;
                Ok(false)
            }
            PrefixParse::Incomplete => {
                self.whole = self.buf.len() > MAX_PREFIX_LEN;
                Ok(false)
            }
        }
    }

    /// The recipients named in the message (as [`super::recipients`]).
    pub fn recipients(&self) -> Result<Vec<RecipientId>, EnvelopeError> {
        match &self.prefix {
            Some(prefix) => Ok(recipient_ids(&prefix.recipient_infos)),
            None => super::recipients(&self.buf),
        }
    }

    /// Unwraps the content-encryption key with whichever of `keys` matches a recipient
    /// (as [`super::decrypt`] does, with the same errors) and returns the decryptor for
    /// the content.
    pub fn open(self, keys: &[RecipientKey]) -> Result<ContentDecryptor<'_>, EnvelopeError> {
        let Some(prefix) = self.prefix else {
            return Ok(ContentDecryptor { mode: Mode::Whole { data: self.buf, keys } });
        };
        let content_algorithm = ContentAlgorithm::parse(&prefix.algorithm, false)?;
        let ContentAlgorithm::Cbc { algorithm, iv, key_len } = content_algorithm else {
            return Err(unsupported("content-encryption", &prefix.algorithm.oid));
        };
        let mut first_error: Option<EnvelopeError> = None;
        let mut candidates: Vec<Vec<u8>> = Vec::new();
        let mut attempt = |result: Result<Vec<u8>, EnvelopeError>| match result {
            Ok(cek) if cek.len() == key_len => candidates.push(cek),
            Ok(_) => {
                first_error.get_or_insert(EnvelopeError::DecryptionFailed);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        };
        for info in &prefix.recipient_infos {
            match info {
                RecipientInfo::Ktri(ktri) => {
                    for key in keys.iter().filter(|k| k.matches(&ktri.rid)) {
                        attempt(open_key_trans(key, ktri, key_len));
                    }
                }
                RecipientInfo::Kari(kari) => {
                    for rek in &kari.recipient_enc_keys {
                        for key in keys.iter().filter(|k| k.matches_kari(&rek.rid)) {
                            attempt(open_key_agree(key, kari, rek.enc_key.as_bytes()));
                        }
                    }
                }
                RecipientInfo::Kekri(_) | RecipientInfo::Pwri(_) | RecipientInfo::Ori(_) => {}
            }
        }
        let cek = match candidates.as_slice() {
            [] => {
                return Err(first_error.unwrap_or_else(|| EnvelopeError::NoMatchingRecipient {
                    recipients: recipient_ids(&prefix.recipient_infos),
                }))
            }
            [cek] => cek,
            // Only decrypting to the end shows which key is right: in memory.
            _ => return Ok(ContentDecryptor { mode: Mode::Whole { data: self.buf, keys } }),
        };
        let failed = |_| EnvelopeError::DecryptionFailed;
        let key = cipher::StreamingDecryptingKey::cbc_pkcs7(
            cipher::UnboundCipherKey::new(algorithm, cek).map_err(failed)?,
            cipher::DecryptionContext::Iv128(aws_lc_rs::iv::FixedLength::from(iv)),
        )
        .map_err(failed)?;
        let mut buf = self.buf;
        let pending = buf.split_off(prefix.consumed.min(buf.len()));
        let walker = Walker::new(prefix.consumed, prefix.frames.clone(), prefix.primitive_content, "EnvelopedData")?;
        let skeleton = prefix.skeleton;
        Ok(ContentDecryptor {
            mode: Mode::Stream(Box::new(Streaming { key, walker, pending, failure: first_error, skeleton })),
        })
    }
}

struct Streaming {
    key: cipher::StreamingDecryptingKey,
    walker: Walker,
    /// Input read with the start of the message, not yet decrypted.
    pending: Vec<u8>,
    /// An earlier recipient's error, reported if the content does not decrypt (as
    /// [`super::decrypt`] reports the first error).
    failure: Option<EnvelopeError>,
    skeleton: Skeleton,
}

impl Streaming {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        let key = &mut self.key;
        let mut sink = |ciphertext: &[u8]| -> Result<(), EnvelopeError> {
            let start = out.len();
            out.resize(start + ciphertext.len() + 16, 0);
            let target = out.get_mut(start..).unwrap_or_default();
            let written = key.update(ciphertext, target).map_err(|_| EnvelopeError::DecryptionFailed)?.written().len();
            out.truncate(start + written);
            Ok(())
        };
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.walker.feed(&pending, &mut sink)?;
        }
        self.walker.feed(input, &mut sink)
    }
}

enum Mode<'k> {
    Stream(Box<Streaming>),
    /// Decrypted in memory at the end by [`super::decrypt`].
    Whole {
        data: Vec<u8>,
        keys: &'k [RecipientKey],
    },
}

/// Decrypts the content of a message as it arrives (from [`EnvelopeReader::open`]).
///
/// Nothing it writes may be used before [`ContentDecryptor::finish`] returns `Ok`: the
/// padding, and that the message is complete, are only checked there.
pub struct ContentDecryptor<'k> {
    mode: Mode<'k>,
}

impl std::fmt::Debug for ContentDecryptor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let streamed = matches!(self.mode, Mode::Stream(_));
        f.debug_struct("ContentDecryptor").field("streamed", &streamed).finish_non_exhaustive()
    }
}

impl ContentDecryptor<'_> {
    /// Whether the content is decrypted as it arrives (`false`: in memory at the end).
    pub fn is_streamed(&self) -> bool {
        matches!(self.mode, Mode::Stream(_))
    }

    /// Adds input; appends the plaintext it yields to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        match &mut self.mode {
            Mode::Stream(streaming) => streaming.feed(input, out),
            Mode::Whole { data, .. } => {
                data.extend_from_slice(input);
                Ok(())
            }
        }
    }

    /// The input has ended: checks that the message is complete and the padding right,
    /// and appends the last plaintext.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        match self.mode {
            Mode::Whole { data, keys } => {
                out.extend_from_slice(&super::decrypt(&data, keys)?);
                Ok(())
            }
            Mode::Stream(mut streaming) => {
                streaming.feed(&[], out)?;
                if !streaming.walker.complete() {
                    return Err(malformed("the message ends early"));
                }
                let Streaming { key, failure, skeleton, walker, .. } = *streaming;
                skeleton.check(&walker.kept)?;
                let mut last = [0u8; 32];
                match key.finish(&mut last) {
                    Ok(update) => {
                        out.extend_from_slice(update.written());
                        Ok(())
                    }
                    Err(_) => Err(failure.unwrap_or(EnvelopeError::DecryptionFailed)),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use certdesk_test_support::openssl;

    struct Keys {
        dir: tempfile::TempDir,
        cert_der: Vec<u8>,
        key: RecipientKey,
        other: RecipientKey,
    }

    /// An RSA recipient (and another one), made by OpenSSL.
    fn keys() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let mut made = Vec::new();
        for name in ["me", "other"] {
            openssl(
                dir.path(),
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &format!("/CN={name}"),
                    "-days",
                    "30",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
            openssl(
                dir.path(),
                &["x509", "-in", &format!("{name}.pem"), "-outform", "DER", "-out", &format!("{name}.der")],
            );
            openssl(
                dir.path(),
                &[
                    "pkcs8",
                    "-topk8",
                    "-nocrypt",
                    "-in",
                    &format!("{name}.key"),
                    "-outform",
                    "DER",
                    "-out",
                    &format!("{name}.p8"),
                ],
            );
            let cert = std::fs::read(dir.path().join(format!("{name}.der"))).unwrap();
            let p8 = std::fs::read(dir.path().join(format!("{name}.p8"))).unwrap();
            made.push((RecipientKey::new(&p8, &cert).unwrap(), cert));
        }
        let (other, _) = made.pop().unwrap();
        let (key, cert_der) = made.pop().unwrap();
        Keys { dir, cert_der, key, other }
    }

    /// Content of `len` bytes, not all alike.
    fn content(len: usize) -> Vec<u8> {
        let mut state = 0x1234_5678u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }

    fn encrypt_in_pieces(plain: &[u8], cert: &[u8], cipher: ContentCipher, piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encryptor = StreamEncryptor::new(
            &[cert.to_vec()],
            &EncryptOptions { cipher, oaep: false },
            &SystemRandom::new(),
            &mut out,
        )
        .unwrap();
        for chunk in plain.chunks(piece.max(1)) {
            encryptor.push(chunk, &mut out).unwrap();
        }
        encryptor.finish(&mut out).unwrap();
        out
    }

    fn decrypt_in_pieces(cms: &[u8], keys: &[RecipientKey], piece: usize) -> Result<Vec<u8>, EnvelopeError> {
        let mut reader = EnvelopeReader::new();
        let mut chunks = cms.chunks(piece.max(1));
        for chunk in chunks.by_ref() {
            if reader.push(chunk)? {
                break;
            }
        }
        let mut decryptor = reader.open(keys)?;
        let mut out = Vec::new();
        for chunk in chunks {
            decryptor.push(chunk, &mut out)?;
        }
        decryptor.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_in_pieces_and_matches_the_in_memory_code() {
        let k = keys();
        let big = content(5 * 1024 * 1024 + 7);
        for (len, piece) in [(0, 1), (1, 1), (15, 3), (16, 16), (17, 5), (100_000, 4093), (big.len(), 1 << 20)] {
            let plain = &big[..len];
            for cipher in [ContentCipher::Aes128Cbc, ContentCipher::Aes256Cbc] {
                let cms = encrypt_in_pieces(plain, &k.cert_der, cipher, piece);
                // The in-memory decryptor reads the streamed BER ...
                assert_eq!(super::super::decrypt(&cms, std::slice::from_ref(&k.key)).unwrap(), plain);
                // ... and the streaming one reads it, and the in-memory DER, in pieces of any size.
                let der = super::super::encrypt(
                    plain,
                    std::slice::from_ref(&k.cert_der),
                    &EncryptOptions { cipher, oaep: false },
                    &SystemRandom::new(),
                )
                .unwrap();
                for input in [&cms, &der] {
                    for read in [1, 7, 4096, 1 << 20] {
                        if len > 100_000 && read < 4096 {
                            continue;
                        }
                        let got = decrypt_in_pieces(input, std::slice::from_ref(&k.key), read).unwrap();
                        assert!(got == plain, "{len} {cipher:?} {read}");
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_keys_truncation_and_tampering_fail() {
        let k = keys();
        let plain = content(70_000);
        let cms = encrypt_in_pieces(&plain, &k.cert_der, ContentCipher::Aes256Cbc, 10_000);
        assert!(matches!(
            decrypt_in_pieces(&cms, std::slice::from_ref(&k.other), 4096),
            Err(EnvelopeError::NoMatchingRecipient { .. })
        ));
        // Cut anywhere: an error, never plaintext, never a panic.
        for cut in (0..cms.len()).step_by(97).chain(cms.len() - 12..cms.len()) {
            assert!(decrypt_in_pieces(&cms[..cut], std::slice::from_ref(&k.key), 1000).is_err(), "cut at {cut}");
        }
        // Trailing data.
        let mut longer = cms.clone();
        longer.extend_from_slice(&[0x04, 0x00]);
        assert!(decrypt_in_pieces(&longer, std::slice::from_ref(&k.key), 1000).is_err());
        // The padding byte flipped (through the last byte of the block before it, which
        // the last segment of 16 bytes follows, then ten end-of-contents bytes): the
        // padding check at the very end fails.
        let mut tampered = cms.clone();
        let at = tampered.len() - 10 - 16 - 2 - 1;
        tampered[at] ^= 0x55;
        assert!(matches!(
            decrypt_in_pieces(&tampered, std::slice::from_ref(&k.key), 1000),
            Err(EnvelopeError::DecryptionFailed)
        ));
    }

    /// The fields around the encrypted content are decoded as the in-memory path decodes
    /// them: the streaming reader accepts nothing `decrypt` refuses (fuzzing found a
    /// version of 40 that it let through unread) and refuses nothing it accepts.
    #[test]
    fn the_fields_around_the_content_are_checked_as_in_memory() {
        let k = keys();
        let plain = content(1000);
        let cms = encrypt_in_pieces(&plain, &k.cert_der, ContentCipher::Aes256Cbc, 300);
        let one = std::slice::from_ref(&k.key);
        let both = |input: &[u8]| {
            let whole = super::super::decrypt(input, one);
            let streamed = [1, 7, 4096].map(|piece| decrypt_in_pieces(input, one, piece));
            (whole, streamed)
        };
        let refused = |input: &[u8], why: &str| {
            let (whole, streamed) = both(input);
            assert!(whole.is_err(), "{why}: in memory");
            for got in streamed {
                assert!(matches!(got, Err(EnvelopeError::Malformed { .. })), "{why}: streamed {got:?}");
            }
        };
        // The EnvelopedData version, the first INTEGER: 40 is no CMSVersion.
        let at = cms.windows(3).position(|w| w == [0x02, 0x01, 0x00]).unwrap() + 2;
        let mut version = cms.clone();
        version[at] = 40;
        refused(&version, "version 40");
        // The EncryptedContentInfo's contentType (id-data) ending inside an arc.
        let data = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
        let at = cms.windows(data.len()).position(|w| w == data).unwrap() + 10;
        let mut content_type = cms.clone();
        content_type[at] = 0x81;
        refused(&content_type, "contentType");
        // unprotectedAttrs [1] go after the EncryptedContentInfo's end-of-contents, before
        // those of the EnvelopedData, its [0] and the ContentInfo.
        let with_attrs = |attrs: &[u8]| {
            let mut out = cms[..cms.len() - 6].to_vec();
            out.extend_from_slice(attrs);
            out.extend_from_slice(&[0; 6]);
            out
        };
        let attribute = [0xa1, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x31, 0x03, 0x0c, 0x01, 0x41];
        let (whole, streamed) = both(&with_attrs(&attribute));
        assert_eq!(whole.unwrap(), plain);
        for got in streamed {
            assert!(got.unwrap() == plain);
        }
        refused(&with_attrs(&[0xa1, 0x03, 0x02, 0x01, 0x00]), "an INTEGER as an attribute");
        refused(&with_attrs(&[attribute, attribute].concat()), "unprotectedAttrs twice");
    }

    #[test]
    fn mutants_never_panic_and_never_pass_where_the_in_memory_code_fails() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let k = keys();
        let plain = content(100);
        let one = std::slice::from_ref(&k.key);
        let ber = encrypt_in_pieces(&plain, &k.cert_der, ContentCipher::Aes128Cbc, 40);
        let options = EncryptOptions { cipher: ContentCipher::Aes128Cbc, oaep: false };
        let der =
            super::super::encrypt(&plain, std::slice::from_ref(&k.cert_der), &options, &SystemRandom::new()).unwrap();
        let mut inputs = hostile();
        inputs.extend(mutants(&ber, 400, 11));
        inputs.extend(mutants(&der, 400, 12));
        let tried = never_panics("EnvelopeReader", &inputs, |b| {
            if let Ok(streamed) = decrypt_in_pieces(b, one, 13) {
                let whole = super::super::decrypt(b, one).expect("the in-memory code accepts it too");
                assert!(whole == streamed, "other plaintext");
            }
        });
        assert!(tried > 1000);
    }

    #[test]
    fn gcm_and_several_keys_fall_back_to_memory() {
        let k = keys();
        let plain = content(3000);
        let gcm = super::super::encrypt(
            &plain,
            std::slice::from_ref(&k.cert_der),
            &EncryptOptions { cipher: ContentCipher::Aes256Gcm, oaep: false },
            &SystemRandom::new(),
        )
        .unwrap();
        assert_eq!(decrypt_in_pieces(&gcm, std::slice::from_ref(&k.key), 100).unwrap(), plain);
        let mut out = Vec::new();
        assert!(matches!(
            StreamEncryptor::new(
                std::slice::from_ref(&k.cert_der),
                &EncryptOptions { cipher: ContentCipher::Aes256Gcm, oaep: false },
                &SystemRandom::new(),
                &mut out
            ),
            Err(EnvelopeError::UnsupportedAlgorithm { .. })
        ));
        // The same recipient twice: two keys open, only decrypting shows which is right.
        let twice = super::super::encrypt(
            &plain,
            &[k.cert_der.clone(), k.cert_der.clone()],
            &EncryptOptions { cipher: ContentCipher::Aes256Cbc, oaep: false },
            &SystemRandom::new(),
        )
        .unwrap();
        let mut reader = EnvelopeReader::new();
        assert!(reader.push(&twice).unwrap());
        assert_eq!(reader.recipients().unwrap().len(), 2);
        let decryptor = reader.open(std::slice::from_ref(&k.key)).unwrap();
        assert!(!decryptor.is_streamed());
        let mut out = Vec::new();
        decryptor.finish(&mut out).unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn openssl_reads_ours_and_we_read_openssl_streaming() {
        let k = keys();
        let dir = k.dir.path();
        let plain = content(2 * 1024 * 1024 + 5);
        std::fs::write(dir.join("plain.bin"), &plain).unwrap();
        let cms = encrypt_in_pieces(&plain, &k.cert_der, ContentCipher::Aes256Cbc, 300_000);
        std::fs::write(dir.join("ours.der"), &cms).unwrap();
        openssl(
            dir,
            &[
                "cms", "-decrypt", "-binary", "-inform", "DER", "-in", "ours.der", "-recip", "me.pem", "-inkey",
                "me.key", "-out", "ours.out",
            ],
        );
        assert!(std::fs::read(dir.join("ours.out")).unwrap() == plain);
        for extra in [&["-stream"][..], &[][..]] {
            let mut args = vec![
                "cms",
                "-encrypt",
                "-binary",
                "-aes256",
                "-in",
                "plain.bin",
                "-outform",
                "DER",
                "-out",
                "theirs.der",
            ];
            args.extend_from_slice(extra);
            args.push("me.pem");
            openssl(dir, &args);
            let theirs = std::fs::read(dir.join("theirs.der")).unwrap();
            let got = decrypt_in_pieces(&theirs, std::slice::from_ref(&k.key), 65_536).unwrap();
            assert!(got == plain, "{extra:?}");
        }
    }
}
