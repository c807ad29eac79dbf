//! PEM (RFC 7468) as people's files hold it: the one PEM reader of certdesk.
//!
//! RFC 7468 section 2: "Data before the encapsulation boundaries are permitted, and
//! parsers MUST NOT malfunction when processing such data." `openssl req -text`,
//! `openssl x509 -text` and CA download pages put a human-readable dump there, and
//! editors on Windows start a UTF-8 file with a byte order mark. So this reader takes:
//!
//! - a UTF-8 byte order mark at the start, and any text (any bytes but NUL) before,
//!   between and after the blocks;
//! - boundary lines with whitespace around them, CRLF, CR or LF line ends, and base64
//!   lines of any length with whitespace anywhere (the "lax" grammar of RFC 7468
//!   section 3, figure 4);
//!
//! and refuses, with a reason: a block without its `-----END` line or with another
//! label there, a block carrying RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`: an
//! OpenSSL "traditional" encrypted key), and base64 that does not decode. The base64
//! itself is decoded by `pem-rfc7468` (through `der::pem`) in constant time.
//!
//! Labels are compared exactly (RFC 7468 labels are case-sensitive).

use zeroize::Zeroizing;

/// The start of a pre-encapsulation boundary line.
const BEGIN: &[u8] = b"-----BEGIN ";
/// The start of a post-encapsulation boundary line.
const END: &[u8] = b"-----END ";
/// The end of either boundary line.
const DASHES: &[u8] = b"-----";
/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Errors from reading PEM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// No block with a wanted label; `found` lists the labels there are.
    #[error("{}", missing_message(expected, found))]
    Missing {
        /// The labels asked for.
        expected: Vec<String>,
        /// The other labels found, each once, in order of appearance.
        found: Vec<String>,
    },
    /// A `-----BEGIN` line without its `-----END` line.
    #[error("the PEM block {label} has no -----END {label}----- line")]
    Unterminated {
        /// The block's label.
        label: String,
    },
    /// The `-----END` line names another label.
    #[error("the PEM block {begin} ends with -----END {end}-----")]
    MismatchedEnd {
        /// The label of the `-----BEGIN` line.
        begin: String,
        /// The label of the `-----END` line.
        end: String,
    },
    /// The block carries RFC 1421 headers, such as the `Proc-Type: 4,ENCRYPTED` of a
    /// traditional OpenSSL encrypted key.
    #[error(
        "the PEM block {label} has RFC 1421 headers (such as Proc-Type: 4,ENCRYPTED, a traditional encrypted key), \
         which are not supported"
    )]
    Headers {
        /// The block's label.
        label: String,
    },
    /// The base64 text does not decode.
    #[error("the PEM block {label} is not valid base64 ({reason})")]
    Base64 {
        /// The block's label.
        label: String,
        /// What the decoder said.
        reason: String,
    },
    /// A NUL byte in the text: this is binary data, not PEM.
    #[error("the PEM text holds a NUL byte (binary data?)")]
    Binary,
}

fn missing_message(expected: &[String], found: &[String]) -> String {
    let expected = expected.join(" or ");
    if found.is_empty() {
        format!("no PEM block {expected} found")
    } else {
        format!("no PEM block {expected} found (only {})", found.join(", "))
    }
}

/// One PEM block: its label and the DER it encodes.
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    /// The label of the boundary lines, e.g. `CERTIFICATE`.
    pub label: String,
    /// The decoded bytes.
    pub der: Vec<u8>,
}

impl core::fmt::Debug for Block {
    /// The label and length only: a block may be a private key.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Block").field("label", &self.label).field("der_len", &self.der.len()).finish()
    }
}

/// Whether `input` is PEM rather than DER: some line (after an optional byte order
/// mark and any explanatory text) starts with `-----BEGIN `.
#[must_use]
pub fn is_pem(input: &[u8]) -> bool {
    lines(strip_bom(input)).any(|line| line.trim_ascii().starts_with(BEGIN))
}

/// Every block in `input`, in order.
///
/// # Errors
/// [`PemError`] for a block that is not well formed, or NUL bytes. Text that holds no
/// block at all gives an empty list.
pub fn decode_all(input: &[u8]) -> Result<Vec<Block>, PemError> {
    let input = strip_bom(input);
    if input.contains(&0) {
        return Err(PemError::Binary);
    }
    let mut blocks = Vec::new();
    let mut lines = lines(input);
    while let Some(line) = lines.next() {
        let Some(label) = boundary_label(line, BEGIN) else {
            continue; // explanatory text
        };
        let label = String::from_utf8_lossy(label).into_owned();
        let mut base64 = Zeroizing::new(Vec::new());
        let mut terminated = false;
        for line in lines.by_ref() {
            if let Some(end) = boundary_label(line, END) {
                if end != label.as_bytes() {
                    return Err(PemError::MismatchedEnd {
                        begin: label,
                        end: String::from_utf8_lossy(end).into_owned(),
                    });
                }
                terminated = true;
                break;
            }
            if boundary_label(line, BEGIN).is_some() {
                break; // a new block before this one ended
            }
            if line.contains(&b':') {
                return Err(PemError::Headers { label });
            }
            base64.extend(line.iter().filter(|b| !is_whitespace(**b)));
        }
        if !terminated {
            return Err(PemError::Unterminated { label });
        }
        let der = decode_base64(&label, &base64)?;
        blocks.push(Block { label, der });
    }
    Ok(blocks)
}

/// The DER of every block labelled with one of `labels`, in order; blocks with other
/// labels (a key next to a certificate, say) are skipped.
///
/// # Errors
/// [`PemError::Missing`] if there is no such block, else as [`decode_all`].
pub fn decode_labelled(input: &[u8], labels: &[&str]) -> Result<Vec<Vec<u8>>, PemError> {
    let blocks = decode_all(input)?;
    let mut found = Vec::new();
    let mut wanted = Vec::new();
    for block in blocks {
        if labels.contains(&block.label.as_str()) {
            wanted.push(block.der);
        } else if !found.contains(&block.label) {
            found.push(block.label);
        }
    }
    if wanted.is_empty() {
        return Err(PemError::Missing { expected: labels.iter().map(|l| (*l).to_owned()).collect(), found });
    }
    Ok(wanted)
}

/// The DER of the first block labelled with one of `labels`.
///
/// # Errors
/// As [`decode_labelled`].
pub fn decode_first(input: &[u8], labels: &[&str]) -> Result<Vec<u8>, PemError> {
    let mut all = decode_labelled(input, labels)?;
    // decode_labelled never returns an empty list.
    Ok(if all.is_empty() { Vec::new() } else { all.swap_remove(0) })
}

fn strip_bom(input: &[u8]) -> &[u8] {
    input.strip_prefix(BOM).unwrap_or(input)
}

/// Lines ended by LF, CRLF or CR (RFC 7468 section 3), without their ends.
fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input.split(|b| *b == b'\n').flat_map(|line| line.strip_suffix(b"\r").unwrap_or(line).split(|b| *b == b'\r'))
}

/// The label of a boundary line `-----BEGIN label-----` (or `END`), whitespace
/// around it allowed.
fn boundary_label<'a>(line: &'a [u8], start: &[u8]) -> Option<&'a [u8]> {
    line.trim_ascii().strip_prefix(start)?.strip_suffix(DASHES)
}

/// RFC 7468's `W`: space, tab, line ends, vertical tab, form feed.
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Decodes the base64 of one block: written out again as strict RFC 7468 PEM with
/// 64-character lines and handed to `der::pem` (constant-time base64).
fn decode_base64(label: &str, base64: &[u8]) -> Result<Vec<u8>, PemError> {
    let bad = |reason: String| PemError::Base64 { label: label.to_owned(), reason };
    // The label is written as "DATA": pem-rfc7468 is stricter about labels than RFC
    // 7468, and the label is ours already.
    let mut strict = Zeroizing::new(Vec::with_capacity(base64.len() + base64.len() / 64 + 40));
    strict.extend_from_slice(b"-----BEGIN DATA-----\n");
    for chunk in base64.chunks(64) {
        strict.extend_from_slice(chunk);
        strict.push(b'\n');
    }
    strict.extend_from_slice(b"-----END DATA-----\n");
    let (_, der) = der::pem::decode_vec(&strict).map_err(|e| bad(e.to_string()))?;
    Ok(der)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const CERT_B64: &str = "MAMCAQE="; // SEQUENCE { INTEGER 1 }

    fn pem(label: &str, body: &str) -> String {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    }

    #[test]
    fn strict_pem_reads() {
        let blocks = decode_all(pem("CERTIFICATE", CERT_B64).as_bytes()).unwrap();
        assert_eq!(blocks, vec![Block { label: "CERTIFICATE".into(), der: vec![0x30, 0x03, 0x02, 0x01, 0x01] }]);
    }

    #[test]
    fn explanatory_text_bom_and_line_ends_are_accepted() {
        let text = format!(
            "Certificate:\n    Data:\n        Version: 3 (0x2)\n        Subject: CN = x, O = \"a:b\"\n{}trailing words\n",
            pem("CERTIFICATE", CERT_B64)
        );
        let with_bom = format!("\u{feff}{}", pem("CERTIFICATE", CERT_B64));
        let crlf = pem("CERTIFICATE", CERT_B64).replace('\n', "\r\n");
        let cr = format!("intro\r{}", pem("CERTIFICATE", CERT_B64).replace('\n', "\r"));
        let spaced = "  -----BEGIN CERTIFICATE-----  \n MAM CAQ\tE= \n\n -----END CERTIFICATE----- \n".to_owned();
        let no_final_newline = pem("CERTIFICATE", CERT_B64).trim_end().to_owned();
        for input in [text, with_bom, crlf, cr, spaced, no_final_newline] {
            assert!(is_pem(input.as_bytes()), "{input:?}");
            let der = decode_first(input.as_bytes(), &["CERTIFICATE"]).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(der, vec![0x30, 0x03, 0x02, 0x01, 0x01], "{input:?}");
        }
    }

    #[test]
    fn several_blocks_and_labels() {
        let text = format!(
            "subject=CN = a\n{}\nsubject=CN = b\n{}{}",
            pem("CERTIFICATE", CERT_B64),
            pem("PRIVATE KEY", "MAMCAQI="),
            pem("CERTIFICATE", "MAMCAQM=")
        );
        assert_eq!(decode_all(text.as_bytes()).unwrap().len(), 3);
        assert_eq!(decode_labelled(text.as_bytes(), &["CERTIFICATE"]).unwrap().len(), 2);
        assert_eq!(decode_first(text.as_bytes(), &["PRIVATE KEY"]).unwrap(), vec![0x30, 0x03, 0x02, 0x01, 0x02]);
        assert_eq!(
            decode_labelled(text.as_bytes(), &["X509 CRL"]),
            Err(PemError::Missing {
                expected: vec!["X509 CRL".into()],
                found: vec!["CERTIFICATE".into(), "PRIVATE KEY".into()]
            })
        );
        let message = decode_labelled(text.as_bytes(), &["X509 CRL"]).unwrap_err().to_string();
        assert!(message.contains("only CERTIFICATE, PRIVATE KEY"), "{message}");
    }

    #[test]
    fn broken_blocks_are_refused() {
        let unterminated = format!("-----BEGIN CERTIFICATE-----\n{CERT_B64}\n");
        let mismatched = format!("-----BEGIN CERTIFICATE-----\n{CERT_B64}\n-----END PRIVATE KEY-----\n");
        let headers = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{CERT_B64}\n\
             -----END RSA PRIVATE KEY-----\n"
        );
        let nested = format!("-----BEGIN CERTIFICATE-----\n{CERT_B64}\n{}", pem("CERTIFICATE", CERT_B64));
        assert!(matches!(decode_all(unterminated.as_bytes()), Err(PemError::Unterminated { .. })));
        assert!(matches!(decode_all(mismatched.as_bytes()), Err(PemError::MismatchedEnd { .. })));
        assert!(matches!(decode_all(headers.as_bytes()), Err(PemError::Headers { .. })));
        assert!(matches!(decode_all(nested.as_bytes()), Err(PemError::Unterminated { .. })));
        for body in ["MAMCAQ", "MAMC*QE=", "MAMCAQE=MAMCAQE="] {
            let result = decode_all(pem("CERTIFICATE", body).as_bytes());
            assert!(matches!(result, Err(PemError::Base64 { .. })), "{body}: {result:?}");
        }
        assert_eq!(decode_all(b"-----BEGIN X-----\n\0\n-----END X-----\n"), Err(PemError::Binary));
        assert_eq!(decode_all(b"no PEM here").unwrap(), vec![]);
        assert!(!is_pem(&[0x30, 0x03, 0x02, 0x01, 0x01]));
        assert!(!is_pem(b"text mentioning -----BEGIN CERTIFICATE----- inside a line"));
    }

    #[test]
    fn mutated_input_never_panics() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let seed = format!("intro\n{}{}", pem("CERTIFICATE", CERT_B64), pem("PRIVATE KEY", "MAMCAQI="));
        let mut tried = never_panics("PEM", &hostile(), decode_all);
        tried += never_panics("PEM", &mutants(seed.as_bytes(), 500, 1), decode_all);
        assert!(tried > 500);
    }
}
