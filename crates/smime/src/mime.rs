//! MIME for S/MIME (RFC 8551 section 3, RFC 1847, RFC 2045/2046): canonical form,
//! building and taking apart `multipart/signed` and `application/pkcs7-mime`.
//!
//! Signatures are over the canonical form of the first body part of a
//! multipart/signed entity: CRLF line ends (RFC 8551 3.1.1). OpenSSL writes bare LF,
//! so everything read is canonicalised before hashing.

pub mod stream;

use base64::Engine;

/// Errors in MIME structure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MimeError {
    /// The header block is missing or broken.
    #[error("the message headers cannot be read: {reason}")]
    BadHeaders {
        /// Why.
        reason: &'static str,
    },
    /// Not an S/MIME message.
    #[error("the message is {content_type}, not multipart/signed or application/pkcs7-mime")]
    NotSmime {
        /// The Content-Type found.
        content_type: String,
    },
    /// multipart/signed without a usable boundary.
    #[error("the multipart/signed message has no boundary parameter")]
    NoBoundary,
    /// The parts are not where RFC 1847 puts them.
    #[error("the multipart/signed message is broken: {reason}")]
    BrokenMultipart {
        /// Why.
        reason: &'static str,
    },
    /// The signature or opaque body is not valid base64.
    #[error("the S/MIME body is not valid base64")]
    BadBase64,
    /// A transfer encoding we do not read.
    #[error("the content transfer encoding {encoding:?} is not supported for the S/MIME part")]
    UnsupportedEncoding {
        /// The encoding.
        encoding: String,
    },
}

/// Converts line ends to CRLF (bare LF and bare CR become CRLF). Input that is
/// already canonical is returned as it is, without a copy.
pub fn canonicalize(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = |i: usize, b: u8| match b {
        b'\n' => i == 0 || text.get(i - 1) != Some(&b'\r'),
        b'\r' => text.get(i + 1) != Some(&b'\n'),
        _ => false,
    };
    if !text.iter().enumerate().any(|(i, &b)| (b == b'\n' || b == b'\r') && bare(i, b)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len() + text.len() / 40);
    let mut rest = text;
    // Copy runs without line ends in one go; fix up each line end.
    while let Some(at) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        out.extend_from_slice(rest.get(..at).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        let skip = match (rest.get(at), rest.get(at + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            _ => 1,
        };
        rest = rest.get(at + skip..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    std::borrow::Cow::Owned(out)
}

/// A header field: name and unfolded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The field name as written.
    pub name: String,
    /// The value, unfolded, trimmed.
    pub value: String,
    /// The raw lines (with CRLF), to write the field back unchanged.
    pub raw: Vec<u8>,
}

/// An entity split into its header fields and body (both canonical CRLF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entity {
    /// Header fields in order.
    pub headers: Vec<Header>,
    /// The body after the empty line.
    pub body: Vec<u8>,
}

fn is_field_name(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(colon) => line.get(..colon).is_some_and(|name| name.iter().all(|&b| (33..=126).contains(&b))),
    }
}

impl Entity {
    /// Splits canonical (CRLF) bytes into headers and body. Input without a header block
    /// is all body.
    pub fn parse(canonical: &[u8]) -> Result<Self, MimeError> {
        let (headers, body_start) = Self::parse_headers(canonical)?;
        Ok(Self { headers, body: canonical.get(body_start..).unwrap_or_default().to_vec() })
    }

    /// The header fields and where the body starts (no copy of the body).
    pub fn parse_headers(canonical: &[u8]) -> Result<(Vec<Header>, usize), MimeError> {
        let mut headers: Vec<Header> = Vec::new();
        let mut pos = 0;
        let first_line_end = canonical.windows(2).position(|w| w == b"\r\n").unwrap_or(canonical.len());
        let first_line = canonical.get(..first_line_end).unwrap_or_default();
        if !is_field_name(first_line) {
            return Ok((headers, 0));
        }
        loop {
            let rest = canonical.get(pos..).unwrap_or_default();
            let line_len = match rest.windows(2).position(|w| w == b"\r\n") {
                Some(n) => n,
                None => {
                    return Err(MimeError::BadHeaders { reason: "the header block does not end with an empty line" })
                }
            };
            let line = rest.get(..line_len).unwrap_or_default();
            if line.is_empty() {
                pos += 2;
                break;
            }
            let raw_line = rest.get(..line_len + 2).unwrap_or_default();
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                let header =
                    headers.last_mut().ok_or(MimeError::BadHeaders { reason: "a continuation line comes first" })?;
                header.value.push(' ');
                header.value.push_str(String::from_utf8_lossy(line).trim());
                header.raw.extend_from_slice(raw_line);
            } else {
                if !is_field_name(line) {
                    return Err(MimeError::BadHeaders { reason: "a header line has no field name" });
                }
                let text = String::from_utf8_lossy(line);
                let (name, value) = text.split_once(':').unwrap_or((&text, ""));
                headers.push(Header {
                    name: name.to_string(),
                    value: value.trim().to_string(),
                    raw: raw_line.to_vec(),
                });
            }
            pos += line_len + 2;
        }
        Ok((headers, pos))
    }

    /// The first value of a header field (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    /// The media type, lower case (`text/plain` when absent, RFC 2045 5.2).
    pub fn media_type(&self) -> String {
        self.header("Content-Type")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_else(|| "text/plain".into())
    }
}

/// A parameter of a structured header value (`boundary`, `smime-type`), unquoted.
pub fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|part| {
        let (key, val) = part.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let val = val.trim();
        Some(val.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(val).to_string())
    })
}

/// The pieces of a multipart/signed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedParts {
    /// The exact canonical bytes of the first part (what the signature covers).
    pub signed: Vec<u8>,
    /// The detached CMS SignedData (DER/BER) from the second part.
    pub signature: Vec<u8>,
}

/// What an S/MIME message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmimeBody {
    /// multipart/signed (RFC 8551 3.5.3).
    MultipartSigned(SignedParts),
    /// application/pkcs7-mime: the CMS object, and its smime-type parameter.
    Opaque {
        /// DER/BER of the ContentInfo.
        cms: Vec<u8>,
        /// `signed-data`, `enveloped-data`, `authEnveloped-data`, ... if given.
        smime_type: Option<String>,
    },
}

fn decode_body(entity: &Entity) -> Result<Vec<u8>, MimeError> {
    decode(entity.header("Content-Transfer-Encoding"), &entity.body)
}

fn decode(transfer_encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, MimeError> {
    let encoding = transfer_encoding.unwrap_or("7bit").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "base64" => {
            let mut text = Vec::with_capacity(body.len());
            for chunk in body.split(|b| b.is_ascii_whitespace()) {
                text.extend_from_slice(chunk);
            }
            base64::engine::general_purpose::STANDARD.decode(&text).map_err(|_| MimeError::BadBase64)
        }
        "binary" => Ok(body.to_vec()),
        other => Err(MimeError::UnsupportedEncoding { encoding: other.to_string() }),
    }
}

/// Reads an S/MIME message (any line ends).
pub fn parse(message: &[u8]) -> Result<SmimeBody, MimeError> {
    let canonical = canonicalize(message);
    let (headers, body_start) = Entity::parse_headers(&canonical)?;
    let body = canonical.get(body_start..).unwrap_or_default();
    let entity = Entity { headers, body: Vec::new() };
    let media_type = entity.media_type();
    match media_type.as_str() {
        "multipart/signed" => {
            let content_type = entity.header("Content-Type").unwrap_or_default();
            let boundary =
                parameter(content_type, "boundary").filter(|b| !b.is_empty()).ok_or(MimeError::NoBoundary)?;
            Ok(SmimeBody::MultipartSigned(split_signed(body, &boundary)?))
        }
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            let smime_type = entity.header("Content-Type").and_then(|v| parameter(v, "smime-type"));
            Ok(SmimeBody::Opaque { cms: decode(entity.header("Content-Transfer-Encoding"), body)?, smime_type })
        }
        other => Err(MimeError::NotSmime { content_type: other.to_string() }),
    }
}

/// RFC 2046 5.1.1: a delimiter is CRLF "--" boundary at the start of a line; the CRLF
/// before it belongs to the delimiter, not to the part.
fn split_signed(body: &[u8], boundary: &str) -> Result<SignedParts, MimeError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let broken = |reason| MimeError::BrokenMultipart { reason };
    // Positions of lines that start with the delimiter.
    let mut starts = Vec::new();
    let mut line_start = 0;
    while line_start <= body.len() {
        let rest = body.get(line_start..).unwrap_or_default();
        if rest.starts_with(delimiter) {
            starts.push(line_start);
        }
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(n) => line_start += n + 2,
            None => break,
        }
    }
    let line_end = |at: usize| -> Result<usize, MimeError> {
        let rest = body.get(at..).unwrap_or_default();
        rest.windows(2).position(|w| w == b"\r\n").map(|n| at + n + 2).ok_or(broken("a boundary line does not end"))
    };
    let [first, second, third, ..] = starts.as_slice() else {
        return Err(broken("it does not have two parts between boundaries"));
    };
    let closing = body.get(*third..).unwrap_or_default();
    if !closing.starts_with(format!("--{boundary}--").as_bytes()) {
        return Err(broken("the closing boundary is missing after the signature"));
    }
    let part1_start = line_end(*first)?;
    let part1_end = second.checked_sub(2).filter(|e| *e >= part1_start).ok_or(broken("the first part is empty"))?;
    let part2_start = line_end(*second)?;
    let part2_end = third.checked_sub(2).filter(|e| *e >= part2_start).ok_or(broken("the signature part is empty"))?;
    let signed = body.get(part1_start..part1_end).ok_or(broken("the first part is out of range"))?.to_vec();
    let part2 = body.get(part2_start..part2_end).ok_or(broken("the signature part is out of range"))?;
    Ok(SignedParts { signed, signature: signature_part(part2)? })
}

/// The CMS bytes of a multipart/signed signature part (its header fields and body,
/// canonical): it must be application/pkcs7-signature; its transfer encoding is undone.
pub fn signature_part(part: &[u8]) -> Result<Vec<u8>, MimeError> {
    let signature_entity = Entity::parse(part)?;
    let media = signature_entity.media_type();
    if media != "application/pkcs7-signature" && media != "application/x-pkcs7-signature" {
        return Err(MimeError::BrokenMultipart { reason: "the second part is not application/pkcs7-signature" });
    }
    decode_body(&signature_entity)
}

fn base64_lines(der: &[u8]) -> Vec<u8> {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = Vec::with_capacity(text.len() + text.len() / 38 + 2);
    for chunk in text.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Splits what the user gave to `smime sign` into outer RFC 5322 header fields (From,
/// To, Subject, ...) and the MIME entity to sign (its Content-* fields and body). Input
/// without headers becomes a text/plain entity.
pub fn split_for_signing(input: &[u8]) -> Result<(Vec<Header>, Vec<u8>), MimeError> {
    let canonical = canonicalize(input);
    let (headers, body_start) = Entity::parse_headers(&canonical)?;
    let body = canonical.get(body_start..).unwrap_or_default();
    let mut inner = Vec::with_capacity(body.len() + 1024);
    let outer = entity_start(headers, body, &mut inner);
    Ok((outer, inner))
}

/// Appends to `inner` the start of the MIME entity to sign or encrypt (its Content-*
/// fields, or a text/plain one, and `body_start`); returns the outer header fields
/// (without MIME-Version). Shared by [`split_for_signing`] and
/// [`stream::EntitySplitter`].
pub(crate) fn entity_start(headers: Vec<Header>, body_start: &[u8], inner: &mut Vec<u8>) -> Vec<Header> {
    if headers.is_empty() {
        inner.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
        inner.extend_from_slice(body_start);
        return Vec::new();
    }
    let (content, outer): (Vec<Header>, Vec<Header>) =
        headers.into_iter().partition(|h| h.name.to_ascii_lowercase().starts_with("content-"));
    if content.is_empty() {
        inner.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    }
    for header in &content {
        inner.extend_from_slice(&header.raw);
    }
    inner.extend_from_slice(b"\r\n");
    inner.extend_from_slice(body_start);
    outer.into_iter().filter(|h| !h.name.eq_ignore_ascii_case("MIME-Version")).collect()
}

fn outer_headers(outer: &[Header]) -> Vec<u8> {
    let mut out = Vec::new();
    for header in outer {
        out.extend_from_slice(&header.raw);
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    out
}

/// Builds a multipart/signed message (RFC 8551 3.5.3) around the canonical entity that
/// was signed. `micalg` is e.g. `sha-256`; `boundary` must not occur in `signed`.
pub fn build_signed(outer: &[Header], signed: &[u8], signature_der: &[u8], micalg: &str, boundary: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(signed.len() + signature_der.len() * 2 + 4096);
    signed_preamble(outer, micalg, boundary, &mut out);
    out.extend_from_slice(signed);
    signature_trailer(boundary, signature_der, &mut out);
    out
}

/// The part of a multipart/signed message before the signed entity: the outer header
/// fields, the multipart/signed Content-Type, the preamble and the first delimiter.
pub(crate) fn signed_preamble(outer: &[Header], micalg: &str, boundary: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&outer_headers(outer));
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg={micalg}; boundary=\"{boundary}\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(b"This is an S/MIME signed message\r\n\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
}

/// The part of a multipart/signed message after the signed entity: the delimiter, the
/// application/pkcs7-signature part in base64 lines, and the close delimiter.
pub(crate) fn signature_trailer(boundary: &str, signature_der: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n",
    );
    out.extend_from_slice(&base64_lines(signature_der));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
}

/// Builds an opaque application/pkcs7-mime message (RFC 8551 3.2) with `smime_type`
/// (`signed-data`, `enveloped-data`).
pub fn build_opaque(outer: &[Header], cms_der: &[u8], smime_type: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(cms_der.len() / 3 * 4 + cms_der.len() / 38 + 4096);
    out.extend_from_slice(&outer_headers(outer));
    out.extend_from_slice(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&base64_lines(cms_der));
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_uses_crlf() {
        assert_eq!(canonicalize(b"a\nb\r\nc\rd").as_ref(), b"a\r\nb\r\nc\r\nd");
        assert_eq!(canonicalize(b"\r\r\n\n").as_ref(), b"\r\n\r\n\r\n");
        assert_eq!(canonicalize(b"no line end").as_ref(), b"no line end");
        assert!(matches!(canonicalize(b"a\r\nb"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(canonicalize(b"").as_ref(), b"");
    }

    #[test]
    fn signed_message_round_trips() {
        let (outer, inner) = split_for_signing(b"From: a@example.org\nSubject: hi\n\nHello\n").unwrap();
        assert_eq!(outer.len(), 2);
        assert_eq!(inner, b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n");
        let message = build_signed(&outer, &inner, b"\x30\x00", "sha-256", "----certdesk-test");
        match parse(&message).unwrap() {
            SmimeBody::MultipartSigned(parts) => {
                assert_eq!(parts.signed, inner);
                assert_eq!(parts.signature, b"\x30\x00");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_messages_are_refused() {
        let inner = b"Content-Type: text/plain\r\n\r\nHello".to_vec();
        let good = build_signed(&[], &inner, b"\x30\x00", "sha-256", "b1");
        // No closing boundary.
        let text = String::from_utf8(good.clone()).unwrap();
        let cut = text.replace("--b1--", "");
        assert!(matches!(parse(cut.as_bytes()), Err(MimeError::BrokenMultipart { .. })));
        // Truncated anywhere: an error, never a panic.
        for n in 0..good.len() {
            let _ = parse(&good[..n]);
        }
        assert!(matches!(parse(b"Content-Type: text/plain\r\n\r\nhi"), Err(MimeError::NotSmime { .. })));
        assert!(matches!(parse(b"Content-Type: multipart/signed\r\n\r\nhi"), Err(MimeError::NoBoundary)));
        let garbage = text.replace("MAA=", "!!!!");
        assert_eq!(parse(garbage.as_bytes()), Err(MimeError::BadBase64));
    }

    /// `n` multipart/mixed entities nested in one another, each with its own boundary.
    fn nested_multipart(n: usize) -> Vec<u8> {
        let mut entity = b"Content-Type: text/plain\r\n\r\nthe innermost part\r\n".to_vec();
        for level in 0..n {
            let mut outer =
                format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n").into_bytes();
            outer.extend_from_slice(&entity);
            outer.extend_from_slice(format!("\r\n--b{level}--\r\n").as_bytes());
            entity = outer;
        }
        entity
    }

    /// Messages that stress the structure rather than the bytes.
    fn hostile_messages() -> Vec<(String, Vec<u8>)> {
        let nested = nested_multipart(1_000);
        let mut out = vec![
            ("1000 nested multiparts signed".to_owned(), build_signed(&[], &nested, b"\x30\x00", "sha-256", "outer")),
            ("1000 nested multiparts".to_owned(), nested.clone()),
        ];
        let mut signed_in_signed = b"Content-Type: text/plain\r\n\r\nx".to_vec();
        for level in 0..1_000 {
            let message = build_signed(&[], &signed_in_signed, b"\x30\x00", "sha-256", &format!("s{level}"));
            signed_in_signed = message;
        }
        out.push(("1000 multipart/signed nested".to_owned(), signed_in_signed));
        let mut same_boundary = b"Content-Type: multipart/signed; boundary=b\r\n\r\n".to_vec();
        same_boundary.extend_from_slice(&b"--b\r\n".repeat(100_000));
        out.push(("100000 boundary lines".to_owned(), same_boundary));
        let mut folded = b"Content-Type: application/pkcs7-mime;\r\n".to_vec();
        folded.extend_from_slice(&b" smime-type=signed-data;\r\n".repeat(100_000));
        folded.extend_from_slice(b"\r\nMAA=\r\n");
        out.push(("100000 folded header lines".to_owned(), folded));
        let mut many_headers = Vec::new();
        for i in 0..50_000 {
            many_headers.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        out.push(("50000 header fields, no end".to_owned(), many_headers));
        let long_boundary = "b".repeat(65_536);
        out.push((
            "a 64 KiB boundary".to_owned(),
            build_signed(&[], b"Content-Type: text/plain\r\n\r\nx", b"\x30\x00", "sha-256", &long_boundary),
        ));
        let mut long_line =
            b"Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
        long_line.extend_from_slice(&b"A".repeat(1 << 20));
        out.push(("a 1 MiB base64 line".to_owned(), long_line));
        out.push(("200000 bare CRs".to_owned(), b"\r".repeat(200_000)));
        out.push(("200000 bare LFs".to_owned(), b"\n".repeat(200_000)));
        out.push(("a header line that never ends".to_owned(), b"Content-Type: multipart/signed".repeat(10_000)));
        out.push(("only a colon".to_owned(), b":".to_vec()));
        out.push(("empty".to_owned(), Vec::new()));
        out
    }

    /// Signed and opaque messages (CRLF and LF, base64 and binary) mutated by
    /// `certdesk_test_support::mutation`, and the structural bombs of [`hostile_messages`]: `parse`,
    /// `Entity::parse` and `split_for_signing` return without panicking or hanging (the
    /// stable stand-in for the `mime_parse` fuzz target).
    #[test]
    fn mutated_messages_never_panic() {
        use certdesk_test_support::mutation::{mutants, never_panics, Mutant};
        let cms = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cms-examples/signedByAliceRSA.p7m"),
        )
        .unwrap();
        let (outer, inner) = split_for_signing(b"From: a@example.org\nSubject: hi\n\nHello\n").unwrap();
        let signed = build_signed(&outer, &inner, &cms, "sha-256", "----certdesk-b1");
        let lf_only = String::from_utf8(signed.clone()).unwrap().replace("\r\n", "\n").into_bytes();
        let opaque = build_opaque(&outer, &cms, "signed-data");
        let mut binary =
            b"Content-Type: application/x-pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                .to_vec();
        binary.extend_from_slice(&cms);
        let each = |b: &[u8]| {
            let _ = parse(b);
            let _ = Entity::parse(b);
            let _ = split_for_signing(b);
        };
        let hostile: Vec<Mutant> = hostile_messages().into_iter().map(|(how, bytes)| Mutant { how, bytes }).collect();
        let mut tried = never_panics("MIME", &hostile, each);
        for (i, seed) in [signed, lf_only, opaque, binary].iter().enumerate() {
            tried += never_panics("MIME", &mutants(seed, 800, i as u64), each);
        }
        eprintln!("MIME: {tried} mutated inputs");
    }
}
