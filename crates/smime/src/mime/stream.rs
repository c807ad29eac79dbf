//! MIME in pieces: push-style state machines that take the input a slice at a time and
//! append their output to a `Vec<u8>`, so a message of any size is handled in bounded
//! memory. The caller owns the I/O: read a chunk, push it, write out what was appended.
//!
//! They produce the same bytes as the in-memory functions of [`super`]:
//! [`Canonicalizer`] as [`super::canonicalize`], [`EntitySplitter`] as
//! [`super::split_for_signing`], [`MultipartSignedWriter`] as [`super::build_signed`],
//! [`opaque_header`] with [`Base64Lines`] as [`super::build_opaque`]. [`HeaderReader`]
//! and [`Base64Decoder`] read what [`super::parse`] reads.

use base64::Engine;

use super::{is_field_name, Entity, Header, MimeError};

/// Longest header block the streaming readers hold in memory (1 MiB): header fields are
/// a few kilobytes; a header block that does not end by then is refused.
pub const MAX_HEADER_LEN: usize = 1024 * 1024;

/// The header fields of a message and the canonical start of its body.
pub type HeaderSplit = (Vec<Header>, Vec<u8>);

/// Converts line ends to CRLF as they go by (bare LF and bare CR become CRLF), as
/// [`super::canonicalize`] does for a whole message. A CR at the end of one piece is held
/// back until the next piece shows whether an LF follows.
#[derive(Debug, Default)]
pub struct Canonicalizer {
    pending_cr: bool,
}

impl Canonicalizer {
    /// A canonicalizer at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the canonical form of `input` to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            if rest.first() == Some(&b'\n') {
                rest = rest.get(1..).unwrap_or_default();
            }
        }
        out.reserve(rest.len() + rest.len() / 64 + 2);
        // Copy runs without line ends in one go; fix up each line end.
        while let Some(at) = memchr::memchr2(b'\r', b'\n', rest) {
            out.extend_from_slice(rest.get(..at).unwrap_or_default());
            let skip = match (rest.get(at), rest.get(at + 1)) {
                (Some(b'\r'), Some(b'\n')) => 2,
                (Some(b'\r'), None) => {
                    // Decided by the next piece.
                    self.pending_cr = true;
                    return;
                }
                _ => 1,
            };
            out.extend_from_slice(b"\r\n");
            rest = rest.get(at + skip..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
    }

    /// Ends the message: a CR held back becomes CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Reads the header block of a message that arrives in pieces (any line ends).
///
/// It canonicalizes what it is given and holds it until the header block is complete
/// (an empty line) or the input shows it has none (its first line is not a header
/// field), then returns the header fields and the canonical start of the body, exactly
/// as [`Entity::parse_headers`] splits the whole canonical message.
#[derive(Debug, Default)]
pub struct HeaderReader {
    canon: Canonicalizer,
    buf: Vec<u8>,
    /// How much of `buf` was searched for the end of the header block.
    scanned: usize,
}

impl HeaderReader {
    /// A reader at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds input; returns the header fields and the canonical body bytes read so far
    /// once the header block is known. Push no more after that: the rest of the body is
    /// the caller's (canonicalize it with [`HeaderReader::into_canonicalizer`]).
    pub fn push(&mut self, input: &[u8]) -> Result<Option<HeaderSplit>, MimeError> {
        self.canon.push(input, &mut self.buf);
        let Some(first_line_end) = memchr::memmem::find(&self.buf, b"\r\n") else {
            return self.too_long();
        };
        if !is_field_name(self.buf.get(..first_line_end).unwrap_or_default()) {
            return Ok(Some((Vec::new(), std::mem::take(&mut self.buf))));
        }
        let from = self.scanned.saturating_sub(3);
        if let Some(at) = memchr::memmem::find(self.buf.get(from..).unwrap_or_default(), b"\r\n\r\n") {
            let end = from + at + 4;
            let (headers, body_start) = Entity::parse_headers(self.buf.get(..end).unwrap_or_default())?;
            let body = self.buf.split_off(body_start.min(self.buf.len()));
            return Ok(Some((headers, body)));
        }
        self.scanned = self.buf.len();
        self.too_long()
    }

    fn too_long(&mut self) -> Result<Option<HeaderSplit>, MimeError> {
        if self.buf.len() <= MAX_HEADER_LEN {
            return Ok(None);
        }
        if !self.buf.contains(&b'\n') && !is_field_name(&self.buf) {
            // A first line of more than 1 MiB that is no header field: all body.
            return Ok(Some((Vec::new(), std::mem::take(&mut self.buf))));
        }
        // A bad line is reported as the in-memory parser reports it.
        Entity::parse_headers(&self.buf)?;
        Err(MimeError::BadHeaders { reason: "the header block is longer than 1 MiB" })
    }

    /// The input has ended: splits what was read (the whole message).
    pub fn finish(mut self) -> Result<(Vec<Header>, Vec<u8>), MimeError> {
        self.canon.finish(&mut self.buf);
        let (headers, body_start) = Entity::parse_headers(&self.buf)?;
        let body = self.buf.split_off(body_start.min(self.buf.len()));
        Ok((headers, body))
    }

    /// The canonicalizer, to go on with the body after [`HeaderReader::push`] returned
    /// the headers (it may hold back a CR).
    pub fn into_canonicalizer(self) -> Canonicalizer {
        self.canon
    }
}

#[derive(Debug)]
enum Split {
    Headers(HeaderReader),
    Body(Canonicalizer),
}

/// [`super::split_for_signing`] in pieces: splits what the user gave into the outer
/// header fields (From, To, Subject, ...) and the canonical MIME entity to sign or
/// encrypt, which it appends to `inner` as the input arrives.
#[derive(Debug)]
pub struct EntitySplitter {
    split: Split,
    outer: Option<Vec<Header>>,
}

impl Default for EntitySplitter {
    fn default() -> Self {
        Self { split: Split::Headers(HeaderReader::new()), outer: None }
    }
}

impl EntitySplitter {
    /// A splitter at the start of the input.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the header block has been read (from then on, each push appends the
    /// canonical form of its input to `inner`, nothing else).
    pub fn in_body(&self) -> bool {
        matches!(self.split, Split::Body(_))
    }

    /// Adds input; appends to `inner` whatever part of the entity is known.
    pub fn push(&mut self, input: &[u8], inner: &mut Vec<u8>) -> Result<(), MimeError> {
        match &mut self.split {
            Split::Body(canon) => canon.push(input, inner),
            Split::Headers(reader) => {
                if let Some((headers, body_start)) = reader.push(input)? {
                    self.outer = Some(super::entity_start(headers, &body_start, inner));
                    let reader = std::mem::take(reader);
                    self.split = Split::Body(reader.into_canonicalizer());
                }
            }
        }
        Ok(())
    }

    /// The input has ended: appends the rest of the entity to `inner`.
    pub fn finish(&mut self, inner: &mut Vec<u8>) -> Result<(), MimeError> {
        match &mut self.split {
            Split::Body(canon) => canon.finish(inner),
            Split::Headers(reader) => {
                let (headers, body) = std::mem::take(reader).finish()?;
                self.outer = Some(super::entity_start(headers, &body, inner));
                self.split = Split::Body(Canonicalizer::new());
            }
        }
        Ok(())
    }

    /// The outer header fields, once the header block has been read (given out once).
    pub fn take_outer(&mut self) -> Option<Vec<Header>> {
        self.outer.take()
    }
}

/// A boundary for a `multipart/signed` message written before its content is known.
///
/// It carries 128 random bits, so the chance that a line of the content starts with it
/// (RFC 2046 5.1.1: only such a line could be taken for a delimiter) is about 2^-128 per
/// line: it is not checked against the content, which is not at hand yet.
pub fn random_boundary(rng: &dyn aws_lc_rs::rand::SecureRandom) -> Result<String, MimeError> {
    let mut random = [0u8; 16];
    rng.fill(&mut random).map_err(|_| MimeError::BadHeaders { reason: "no random bytes for a boundary" })?;
    Ok(format!("----certdesk-{}", hex::encode(random)))
}

/// Writes a `multipart/signed` message (RFC 8551 3.5.3) while the content streams
/// through: the header and first boundary as soon as the input's header block is read,
/// the canonical entity as it arrives, the signature part at the end.
///
/// Every byte of the signed entity goes through the `signed` callback too (for the
/// digest). The output is what [`super::build_signed`] makes of
/// [`super::split_for_signing`]'s result with the same boundary.
#[derive(Debug)]
pub struct MultipartSignedWriter {
    splitter: EntitySplitter,
    micalg: String,
    boundary: String,
    scratch: Vec<u8>,
}

impl MultipartSignedWriter {
    /// `micalg` as for [`super::build_signed`]; `boundary` from [`random_boundary`].
    pub fn new(micalg: &str, boundary: String) -> Self {
        Self { splitter: EntitySplitter::new(), micalg: micalg.to_string(), boundary, scratch: Vec::new() }
    }

    /// Adds input; appends output to `out` and passes the signed bytes to `signed`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>, signed: &mut dyn FnMut(&[u8])) -> Result<(), MimeError> {
        if self.splitter.in_body() {
            // The common case: canonical content straight into the output, hashed there.
            let start = out.len();
            self.splitter.push(input, out)?;
            signed(out.get(start..).unwrap_or_default());
            return Ok(());
        }
        self.scratch.clear();
        self.splitter.push(input, &mut self.scratch)?;
        self.emit_scratch(out, signed);
        Ok(())
    }

    fn emit_scratch(&mut self, out: &mut Vec<u8>, signed: &mut dyn FnMut(&[u8])) {
        if let Some(outer) = self.splitter.take_outer() {
            super::signed_preamble(&outer, &self.micalg, &self.boundary, out);
        }
        signed(&self.scratch);
        out.extend_from_slice(&self.scratch);
        // Only needed until the header block is read.
        self.scratch = Vec::new();
    }

    /// The input has ended: appends the end of the signed entity. Then sign, and
    /// [`MultipartSignedWriter::finish`].
    pub fn end_content(&mut self, out: &mut Vec<u8>, signed: &mut dyn FnMut(&[u8])) -> Result<(), MimeError> {
        self.scratch.clear();
        self.splitter.finish(&mut self.scratch)?;
        self.emit_scratch(out, signed);
        Ok(())
    }

    /// Appends the signature part (the DER SignedData) and the closing boundary.
    pub fn finish(self, signature_der: &[u8], out: &mut Vec<u8>) {
        super::signature_trailer(&self.boundary, signature_der, out);
    }
}

/// The header of an opaque application/pkcs7-mime message (RFC 8551 3.2): what
/// [`super::build_opaque`] writes before the base64 body.
pub fn opaque_header(outer: &[Header], smime_type: &str) -> Vec<u8> {
    let mut out = super::outer_headers(outer);
    out.extend_from_slice(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out
}

/// Bytes per base64 line: 57 bytes make 76 characters (RFC 2045 6.8).
const LINE_BYTES: usize = 57;
/// A base64 line with its CRLF.
const LINE_CHARS: usize = 78;

/// Base64 in lines of 76 characters with CRLF (RFC 2045 6.8), as data arrives.
#[derive(Debug)]
pub struct Base64Lines {
    pending: [u8; LINE_BYTES],
    len: usize,
}

impl Default for Base64Lines {
    fn default() -> Self {
        Self { pending: [0; LINE_BYTES], len: 0 }
    }
}

impl Base64Lines {
    /// An encoder at the start of the data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the complete lines `input` makes (with what was held back) to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        if self.len > 0 {
            let take = (LINE_BYTES - self.len).min(rest.len());
            let (head, tail) = rest.split_at(take);
            if let Some(slot) = self.pending.get_mut(self.len..self.len + take) {
                slot.copy_from_slice(head);
            }
            self.len += take;
            rest = tail;
            if self.len < LINE_BYTES {
                return;
            }
            let line = self.pending;
            encode_lines(&line, out);
            self.len = 0;
        }
        let whole = rest.len() / LINE_BYTES * LINE_BYTES;
        let (lines, tail) = rest.split_at(whole);
        encode_lines(lines, out);
        if let Some(slot) = self.pending.get_mut(..tail.len()) {
            slot.copy_from_slice(tail);
            self.len = tail.len();
        }
    }

    /// Appends the last, shorter line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.len > 0 {
            let line = self.pending;
            let len = self.len;
            self.len = 0;
            let text = base64::engine::general_purpose::STANDARD.encode(line.get(..len).unwrap_or_default());
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Encodes whole 57-byte lines (`data.len()` a multiple of 57) into `out`.
fn encode_lines(data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let lines = data.len() / LINE_BYTES;
    out.resize(start + lines * LINE_CHARS, 0);
    let target = out.get_mut(start..).unwrap_or_default();
    for (line, chunk) in target.chunks_exact_mut(LINE_CHARS).zip(data.chunks_exact(LINE_BYTES)) {
        let (text, crlf) = line.split_at_mut(LINE_CHARS - 2);
        // 57 bytes always make exactly 76 characters.
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(chunk, text);
        crlf.copy_from_slice(b"\r\n");
    }
}

/// Decodes a base64 body as it arrives, skipping whitespace (line ends anywhere), as
/// [`super::parse`] decodes a whole one. Data after the padding is an error.
#[derive(Debug, Default)]
pub struct Base64Decoder {
    quad: [u8; 4],
    len: usize,
    padded: bool,
}

impl Base64Decoder {
    /// A decoder at the start of the body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the bytes `input` decodes to (with what was held back) to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), MimeError> {
        let mut rest = input;
        while !rest.is_empty() {
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(at) => (rest.get(..at).unwrap_or_default(), rest.get(at + 1..).unwrap_or_default()),
                None => (rest, &[][..]),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.line(line, out)?;
            rest = next;
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), MimeError> {
        if line.is_empty() {
            return Ok(());
        }
        if self.len == 0 && !self.padded && line.len() % 4 == 0 {
            // Fast path: a whole line of complete groups, decoded in place.
            let start = out.len();
            out.resize(start + line.len() / 4 * 3, 0);
            let target = out.get_mut(start..).unwrap_or_default();
            if let Ok(n) = base64::engine::general_purpose::STANDARD.decode_slice(line, target) {
                out.truncate(start + n);
                self.padded = line.last() == Some(&b'=');
                return Ok(());
            }
            out.truncate(start);
        }
        for &b in line {
            if b.is_ascii_whitespace() {
                continue;
            }
            if self.padded {
                return Err(MimeError::BadBase64);
            }
            if let Some(slot) = self.quad.get_mut(self.len) {
                *slot = b;
            }
            self.len += 1;
            if self.len == 4 {
                self.len = 0;
                let mut bytes = [0u8; 3];
                let n = base64::engine::general_purpose::STANDARD
                    .decode_slice(self.quad, &mut bytes)
                    .map_err(|_| MimeError::BadBase64)?;
                out.extend_from_slice(bytes.get(..n).unwrap_or_default());
                self.padded = self.quad.last() == Some(&b'=');
            }
        }
        Ok(())
    }

    /// The body has ended: an incomplete group is an error.
    pub fn finish(&self) -> Result<(), MimeError> {
        if self.len != 0 {
            return Err(MimeError::BadBase64);
        }
        Ok(())
    }
}

/// Where a [`SignedSplitter`] is in a multipart/signed body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SplitPhase {
    Preamble,
    Content,
    Signature,
    Epilogue,
}

/// The largest signature part accepted (certificates and CRLs included).
pub const MAX_SIGNATURE_PART: usize = 16 * 1024 * 1024;

/// Splits the canonical body of multipart/signed as it streams past, with the same rules
/// as the in-memory parser (RFC 2046 5.1.1: a delimiter is a line that starts with
/// "--" boundary; the CRLF before it belongs to the delimiter): the first part's bytes
/// (the signed content) go to a callback, the signature part is kept (at most
/// [`MAX_SIGNATURE_PART`]). Memory: a line prefix and the signature part.
pub struct SignedSplitter {
    delimiter: Vec<u8>,
    phase: SplitPhase,
    carry: Vec<u8>,
    at_line_start: bool,
    held_crlf: bool,
    content_seen: bool,
    signature: Vec<u8>,
}

impl SignedSplitter {
    /// A splitter for `boundary` (the Content-Type parameter).
    pub fn new(boundary: &str) -> Self {
        Self {
            delimiter: format!("--{boundary}").into_bytes(),
            phase: SplitPhase::Preamble,
            carry: Vec::new(),
            at_line_start: true,
            held_crlf: false,
            content_seen: false,
            signature: Vec::new(),
        }
    }

    fn broken(reason: &'static str) -> MimeError {
        MimeError::BrokenMultipart { reason }
    }

    fn emit(&mut self, bytes: &[u8], content: &mut dyn FnMut(&[u8])) -> Result<(), MimeError> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self.phase {
            SplitPhase::Content => {
                self.content_seen = true;
                content(bytes);
            }
            SplitPhase::Signature => {
                if self.signature.len() + bytes.len() > MAX_SIGNATURE_PART {
                    return Err(Self::broken("the signature part is larger than 16 MiB"));
                }
                self.signature.extend_from_slice(bytes);
            }
            SplitPhase::Preamble | SplitPhase::Epilogue => {}
        }
        Ok(())
    }

    /// Releases a CRLF held back at the end of the previous line: it was not a
    /// delimiter's after all.
    fn release_crlf(&mut self, content: &mut dyn FnMut(&[u8])) -> Result<(), MimeError> {
        if self.held_crlf {
            self.held_crlf = false;
            self.emit(b"\r\n", content)?;
        }
        Ok(())
    }

    /// Adds canonical (CRLF) body bytes; the first part's bytes go to `content`.
    pub fn push(&mut self, input: &[u8], content: &mut dyn FnMut(&[u8])) -> Result<(), MimeError> {
        self.carry.extend_from_slice(input);
        self.drain(content, false)
    }

    fn drain(&mut self, content: &mut dyn FnMut(&[u8]), at_end: bool) -> Result<(), MimeError> {
        // Worked on outside `self`, so that lines are emitted as slices, not copies.
        let carry = std::mem::take(&mut self.carry);
        let result = self.drain_from(&carry, content, at_end);
        let pos = result.as_ref().map_or(carry.len(), |p| *p);
        self.carry = carry;
        self.carry.drain(..pos.min(self.carry.len()));
        result.map(|_| ())
    }

    fn drain_from(&mut self, carry: &[u8], content: &mut dyn FnMut(&[u8]), at_end: bool) -> Result<usize, MimeError> {
        let mut pos = 0;
        loop {
            let rest = carry.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            if self.at_line_start {
                let dlen = self.delimiter.len();
                if rest.len() < dlen && !at_end {
                    // Not yet known whether this line is a delimiter.
                    if !self.delimiter.starts_with(rest) {
                        self.at_line_start = false;
                        self.release_crlf(content)?;
                        continue;
                    }
                    break;
                }
                if rest.starts_with(&self.delimiter) {
                    let Some(end) = memchr::memmem::find(rest, b"\r\n") else {
                        if at_end && self.phase == SplitPhase::Signature && rest.starts_with(b"--") {
                            // A closing delimiter at the very end without CRLF.
                            self.check_closing(rest)?;
                            pos = carry.len();
                            break;
                        }
                        if rest.len() > 4096 {
                            return Err(Self::broken("a boundary line does not end"));
                        }
                        if at_end {
                            return Err(Self::broken("a boundary line does not end"));
                        }
                        break;
                    };
                    // The CRLF before a delimiter belongs to it.
                    self.held_crlf = false;
                    self.next_phase(rest.get(..end).unwrap_or_default())?;
                    pos += end + 2;
                    continue;
                }
                self.at_line_start = false;
                self.release_crlf(content)?;
                continue;
            }
            match memchr::memmem::find(rest, b"\r\n") {
                Some(end) => {
                    self.emit(rest.get(..end).unwrap_or_default(), content)?;
                    self.held_crlf = true;
                    self.at_line_start = true;
                    pos += end + 2;
                }
                None => {
                    // Keep a final CR: it may be the start of the next CRLF.
                    let keep = usize::from(rest.last() == Some(&b'\r') && !at_end);
                    self.emit(rest.get(..rest.len() - keep).unwrap_or_default(), content)?;
                    pos = carry.len() - keep;
                    break;
                }
            }
        }
        Ok(pos)
    }

    fn check_closing(&mut self, line: &[u8]) -> Result<(), MimeError> {
        let mut closing = self.delimiter.clone();
        closing.extend_from_slice(b"--");
        if !line.starts_with(&closing) {
            return Err(Self::broken("the closing boundary is missing after the signature"));
        }
        if self.signature.is_empty() {
            return Err(Self::broken("the signature part is empty"));
        }
        self.phase = SplitPhase::Epilogue;
        Ok(())
    }

    fn next_phase(&mut self, line: &[u8]) -> Result<(), MimeError> {
        match self.phase {
            SplitPhase::Preamble => self.phase = SplitPhase::Content,
            SplitPhase::Content => {
                if !self.content_seen {
                    return Err(Self::broken("the first part is empty"));
                }
                self.phase = SplitPhase::Signature;
            }
            SplitPhase::Signature => self.check_closing(line)?,
            SplitPhase::Epilogue => {}
        }
        Ok(())
    }

    /// The input has ended: the signature part (its header fields and body), or why the
    /// multipart is broken.
    pub fn finish(mut self, content: &mut dyn FnMut(&[u8])) -> Result<Vec<u8>, MimeError> {
        self.drain(content, true)?;
        match self.phase {
            SplitPhase::Epilogue => Ok(self.signature),
            SplitPhase::Preamble | SplitPhase::Content => {
                Err(Self::broken("it does not have two parts between boundaries"))
            }
            SplitPhase::Signature => Err(Self::broken("the closing boundary is missing after the signature")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::super::{base64_lines, build_opaque, build_signed, canonicalize, parse, split_for_signing, SmimeBody};
    use super::*;

    /// Cuts `data` into pieces of the given sizes, cycling.
    fn pieces<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            out.push(&rest[..n]);
            rest = &rest[n..];
            i += 1;
        }
        out
    }

    const SPLITS: [&[usize]; 5] = [&[1], &[2, 3], &[7, 1, 13], &[4096], &[1 << 20]];

    fn samples() -> Vec<Vec<u8>> {
        let mut big = Vec::new();
        for i in 0..50_000u32 {
            big.extend_from_slice(format!("line {i} with some text").as_bytes());
            big.extend_from_slice(match i % 5 {
                0 => b"\r\n",
                1 => b"\n",
                2 => b"\r",
                3 => b"\r\r\n",
                _ => b"\n\r",
            });
        }
        let mut with_headers = b"From: a@example.org\nSubject: big\nContent-Type: text/plain\n\n".to_vec();
        with_headers.extend_from_slice(&big);
        vec![
            Vec::new(),
            b"no line end".to_vec(),
            b"a\nb\r\nc\rd\r".to_vec(),
            b"\r\r\n\n".to_vec(),
            b"From: a@example.org\nSubject: hi\n\nHello\n".to_vec(),
            b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n folded\r\n\r\n<p>x</p>\r\n"
                .to_vec(),
            b"Not a header line\nFrom: x\n\nbody".to_vec(),
            b"From: a@example.org\nSubject: no body".to_vec(),
            big,
            with_headers,
        ]
    }

    #[test]
    fn canonicalizer_matches_canonicalize() {
        for sample in samples() {
            for sizes in SPLITS {
                let mut canon = Canonicalizer::new();
                let mut out = Vec::new();
                for piece in pieces(&sample, sizes) {
                    canon.push(piece, &mut out);
                }
                canon.finish(&mut out);
                assert_eq!(out, canonicalize(&sample).as_ref(), "{sizes:?}");
            }
        }
    }

    #[test]
    fn multipart_signed_writer_matches_build_signed() {
        for sample in samples() {
            let expected = split_for_signing(&sample);
            for sizes in SPLITS {
                let mut writer = MultipartSignedWriter::new("sha-256", "b-1".into());
                let mut out = Vec::new();
                let mut signed = Vec::new();
                let mut result = Ok(());
                for piece in pieces(&sample, sizes) {
                    result = result.and_then(|_| writer.push(piece, &mut out, &mut |s| signed.extend_from_slice(s)));
                }
                let result = result.and_then(|_| writer.end_content(&mut out, &mut |s| signed.extend_from_slice(s)));
                match &expected {
                    Ok((outer, inner)) => {
                        result.unwrap();
                        writer.finish(b"\x30\x00", &mut out);
                        assert_eq!(&signed, inner);
                        assert_eq!(out, build_signed(outer, inner, b"\x30\x00", "sha-256", "b-1"), "{sizes:?}");
                        let SmimeBody::MultipartSigned(parts) = parse(&out).unwrap() else { panic!() };
                        assert_eq!(&parts.signed, inner);
                    }
                    Err(e) => assert_eq!(result.unwrap_err(), *e),
                }
            }
        }
    }

    #[test]
    fn opaque_writer_matches_build_opaque() {
        for len in [0usize, 1, 56, 57, 58, 114, 1000, 100_000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for sizes in SPLITS {
                let mut out = opaque_header(&[], "enveloped-data");
                let mut lines = Base64Lines::new();
                for piece in pieces(&der, sizes) {
                    lines.push(piece, &mut out);
                }
                lines.finish(&mut out);
                assert_eq!(out, build_opaque(&[], &der, "enveloped-data"), "{len} {sizes:?}");
                let mut body = Vec::new();
                lines = Base64Lines::new();
                lines.push(&der, &mut body);
                lines.finish(&mut body);
                assert_eq!(body, base64_lines(&der));
                // And back, in pieces of every kind.
                let mut decoder = Base64Decoder::new();
                let mut decoded = Vec::new();
                for piece in pieces(&body, sizes) {
                    decoder.push(piece, &mut decoded).unwrap();
                }
                decoder.finish().unwrap();
                assert_eq!(decoded, der);
            }
        }
    }

    #[test]
    fn base64_decoder_is_lenient_about_whitespace_and_strict_about_the_rest() {
        let decode = |text: &[u8]| {
            let mut decoder = Base64Decoder::new();
            let mut out = Vec::new();
            for piece in pieces(text, &[3, 5]) {
                decoder.push(piece, &mut out)?;
            }
            decoder.finish().map(|_| out)
        };
        assert_eq!(decode(b"aGVs bG8=\n").unwrap(), b"hello");
        assert_eq!(decode(b"aGVsbG8=\r\n\r\n").unwrap(), b"hello");
        assert_eq!(decode(b"a\tG\nVsb\r\nG8=").unwrap(), b"hello");
        assert_eq!(decode(b"aGVsbG8"), Err(MimeError::BadBase64));
        assert_eq!(decode(b"aGVsbG8=aGVs"), Err(MimeError::BadBase64));
        assert_eq!(decode(b"aGVs!G8="), Err(MimeError::BadBase64));
    }

    #[test]
    fn header_reader_limits_the_header_block() {
        let mut reader = HeaderReader::new();
        let mut long = b"X-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEADER_LEN));
        assert!(reader.push(b"From: a@example.org\n").unwrap().is_none());
        assert!(matches!(reader.push(&long), Err(MimeError::BadHeaders { .. })));
        // A long first line that is no header field is body.
        let mut reader = HeaderReader::new();
        let body = vec![b' '; MAX_HEADER_LEN + 1];
        let (headers, start) = reader.push(&body).unwrap().unwrap();
        assert!(headers.is_empty());
        assert_eq!(start, body);
    }

    #[test]
    fn random_boundaries_differ() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let a = random_boundary(&rng).unwrap();
        assert_ne!(a, random_boundary(&rng).unwrap());
        assert_eq!(a.len(), "----certdesk-".len() + 32);
    }

    #[test]
    fn the_signed_splitter_agrees_with_the_in_memory_parser() {
        let sig = b"\x30\x03\x02\x01\x01";
        let messages: Vec<Vec<u8>> = vec![
            crate::mime::build_signed(&[], b"Content-Type: text/plain\r\n\r\nHello\r\n\r\n", sig, "sha-256", "b1"),
            crate::mime::build_signed(
                &[],
                b"Content-Type: text/plain\r\n\r\n-b1 not a boundary\r\n--b\r\nend",
                sig,
                "sha-256",
                "b1",
            ),
            crate::mime::build_signed(
                &[],
                &[b"x".repeat(300_000), b"\r\n\r\r\n".to_vec()].concat(),
                sig,
                "sha-512",
                "=_z",
            ),
        ];
        for message in &messages {
            let canonical = crate::mime::canonicalize(message);
            let (headers, start) = crate::mime::Entity::parse_headers(&canonical).unwrap();
            let boundary = crate::mime::parameter(
                crate::mime::Entity { headers, body: Vec::new() }.header("Content-Type").unwrap(),
                "boundary",
            )
            .unwrap();
            let body = &canonical[start..];
            let crate::mime::SmimeBody::MultipartSigned(expected) = crate::mime::parse(message).unwrap() else {
                panic!("not multipart/signed")
            };
            for chunk in [1, 2, 3, 7, 64, 4096, body.len()] {
                let mut splitter = SignedSplitter::new(&boundary);
                let mut content = Vec::new();
                for piece in body.chunks(chunk) {
                    splitter.push(piece, &mut |b| content.extend_from_slice(b)).unwrap();
                }
                let part = splitter.finish(&mut |b| content.extend_from_slice(b)).unwrap();
                assert_eq!(content, expected.signed, "chunk {chunk}");
                assert_eq!(crate::mime::signature_part(&part).unwrap(), expected.signature, "chunk {chunk}");
            }
        }
        // Broken ones fail as the in-memory parser does.
        for broken in
            [&b"--b1\r\nno second part\r\n"[..], b"--b1\r\n\r\n--b1\r\nsig\r\n", b"--b1\r\nA\r\n--b1\r\nS\r\n--b1\r\n"]
        {
            let mut splitter = SignedSplitter::new("b1");
            let whole = splitter.push(broken, &mut |_| {}).is_ok() && splitter.finish(&mut |_| {}).is_ok();
            assert!(!whole, "{}", String::from_utf8_lossy(broken));
        }
    }
}
