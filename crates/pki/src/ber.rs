//! A small BER to DER normaliser (X.690 sections 8 and 10), enough for the
//! streaming encodings PKCS #12 and CMS producers emit (shared by `pkcs12` and by
//! `certdesk-smime`'s SignedData and EnvelopedData readers).
//!
//! Firefox/NSS, gpgsm, Outlook, `openssl cms -stream` and some Windows versions write `.p12` files and CMS with
//! indefinite lengths (X.690 section 8.1.3.6) and constructed OCTET STRINGs
//! split into segments (X.690 section 8.7.3). `der` decodes only DER, so every
//! layer of a PKCS #12 file goes through [`ber_to_der`] first. It rewrites
//! every length in its minimal definite form and joins constructed universal
//! OCTET STRINGs into one primitive OCTET STRING. The contents of primitive
//! values are copied as they are, so certificates (carried inside OCTET
//! STRINGs) keep their exact bytes. Schema-dependent rules (SET OF ordering,
//! DEFAULT values, implicitly tagged constructed strings) are left to the
//! decoder that knows the schema.

/// Deepest nesting we follow. PKCS #12 layers nest about ten levels and a SignedData with
/// certificates about fifteen; the
/// limit stops stack exhaustion from hostile input.
pub const MAX_DEPTH: usize = 48;

/// Why the input is not BER we can normalise, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BerError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Universal tag number 4, OCTET STRING, primitive and constructed.
const OCTET_STRING: u8 = 0x04;
const OCTET_STRING_CONSTRUCTED: u8 = 0x24;

/// Converts one BER-encoded value (with nothing after it) to DER.
pub fn ber_to_der(input: &[u8]) -> Result<Vec<u8>, BerError> {
    let mut parser = Parser { input, pos: 0 };
    let element = parser.element(0)?;
    if parser.pos != input.len() {
        return Err(BerError { offset: parser.pos, reason: "trailing data after the outer value" });
    }
    let mut out = Vec::with_capacity(input.len());
    element.write(&mut out);
    Ok(out)
}

/// One normalised value: its identifier octets and its content octets.
struct Element {
    tag: Vec<u8>,
    content: Vec<u8>,
}

impl Element {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag);
        write_length(self.content.len(), out);
        out.extend_from_slice(&self.content);
    }
}

/// Definite length in the minimal form (X.690 section 10.1).
fn write_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        // Fits in seven bits.
        out.push(len.to_be_bytes().last().copied().unwrap_or(0));
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or(&[]);
    // At most size_of::<usize>() bytes, far below 127.
    out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0x7f));
    out.extend_from_slice(significant);
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

enum Length {
    Definite(usize),
    Indefinite,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> BerError {
        BerError { offset: self.pos, reason }
    }

    fn byte(&mut self) -> Result<u8, BerError> {
        let b = *self.input.get(self.pos).ok_or_else(|| self.error("the data ends in the middle of a value"))?;
        self.pos += 1;
        Ok(b)
    }

    fn at_end_of_contents(&self) -> bool {
        matches!(self.input.get(self.pos..self.pos + 2), Some([0, 0]))
    }

    fn tag(&mut self) -> Result<(Vec<u8>, bool), BerError> {
        let first = self.byte()?;
        let constructed = first & 0x20 != 0;
        let mut tag = vec![first];
        if first & 0x1f == 0x1f {
            // High tag number form (X.690 section 8.1.2.4); four bytes is plenty.
            loop {
                let b = self.byte()?;
                tag.push(b);
                if b & 0x80 == 0 {
                    break;
                }
                if tag.len() > 5 {
                    return Err(self.error("the tag number is too large"));
                }
            }
        }
        Ok((tag, constructed))
    }

    fn length(&mut self) -> Result<Length, BerError> {
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(Length::Definite(usize::from(first)));
        }
        if first == 0x80 {
            return Ok(Length::Indefinite);
        }
        let count = usize::from(first & 0x7f);
        if count > 4 {
            return Err(self.error("the length does not fit in four bytes"));
        }
        let mut len = 0usize;
        for _ in 0..count {
            len = (len << 8) | usize::from(self.byte()?);
        }
        Ok(Length::Definite(len))
    }

    fn element(&mut self, depth: usize) -> Result<Element, BerError> {
        if depth > MAX_DEPTH {
            return Err(self.error("the values are nested too deeply"));
        }
        let (tag, constructed) = self.tag()?;
        let length = self.length()?;
        if !constructed {
            let Length::Definite(len) = length else {
                return Err(self.error("a primitive value has an indefinite length"));
            };
            let end = self
                .pos
                .checked_add(len)
                .filter(|end| *end <= self.input.len())
                .ok_or_else(|| self.error("a length runs past the end of the data"))?;
            let content = self.input.get(self.pos..end).unwrap_or(&[]).to_vec();
            self.pos = end;
            return Ok(Element { tag, content });
        }

        let joins_octets = tag.as_slice() == [OCTET_STRING_CONSTRUCTED];
        let mut children = Vec::new();
        match length {
            Length::Definite(len) => {
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|end| *end <= self.input.len())
                    .ok_or_else(|| self.error("a length runs past the end of the data"))?;
                while self.pos < end {
                    children.push(self.element(depth + 1)?);
                }
                if self.pos != end {
                    return Err(self.error("a value runs past the end of its parent"));
                }
            }
            Length::Indefinite => loop {
                if self.at_end_of_contents() {
                    self.pos += 2;
                    break;
                }
                if self.pos >= self.input.len() {
                    return Err(self.error("an indefinite length has no end-of-contents"));
                }
                children.push(self.element(depth + 1)?);
            },
        }

        let mut content = Vec::new();
        if joins_octets {
            for child in children {
                if child.tag.as_slice() != [OCTET_STRING] {
                    return Err(self.error("a constructed OCTET STRING holds a non-OCTET STRING"));
                }
                content.extend_from_slice(&child.content);
            }
            return Ok(Element { tag: vec![OCTET_STRING], content });
        }
        for child in children {
            child.write(&mut content);
        }
        Ok(Element { tag, content })
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn indefinite_and_segmented() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" }, NULL }
        let ber = hex::decode("3080248004026162040163000005000000").unwrap();
        let der = ber_to_der(&ber).unwrap();
        assert_eq!(hex::encode(der), "300704036162630500");
    }

    #[test]
    fn long_lengths_become_minimal() {
        assert_eq!(ber_to_der(&[0x04, 0x81, 0x01, 0xaa]).unwrap(), [0x04, 0x01, 0xaa]);
        let big = [&[0x04, 0x82, 0x01, 0x00][..], &[7u8; 256][..]].concat();
        assert_eq!(ber_to_der(&big).unwrap(), big);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &[][..],
            &[0x30][..],
            &[0x30, 0x80][..],
            &[0x30, 0x80, 0x05, 0x00][..],
            &[0x04, 0x80, 0x00, 0x00][..],
            &[0x04, 0x05, 0x00][..],
            &[0x30, 0x03, 0x04, 0x05, 0x00][..],
            &[0x05, 0x00, 0x00][..],
            &[0x24, 0x03, 0x02, 0x01, 0x00][..],
            &[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00][..],
            &[0x04, 0x85, 1, 0, 0, 0, 0][..],
        ] {
            assert!(ber_to_der(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn nesting_bomb_is_refused() {
        let bomb: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 100_000).flatten().collect();
        assert_eq!(ber_to_der(&bomb).unwrap_err().reason, "the values are nested too deeply");
    }

    /// The normaliser under every reader of CMS and PKCS #12, fed mutated BER: never a
    /// panic or a hang, and whatever it accepts comes out as DER it accepts again unchanged.
    #[test]
    fn mutated_ber_never_panics() {
        use certdesk_test_support::mutation::{hostile, mutants, never_panics};
        let seeds: [&[u8]; 3] = [
            include_bytes!("../tests/data/pkcs12-clients/ValidCertificatePathTest1EE_firefox.p12"),
            include_bytes!("../tests/data/pkcs12-clients/ValidCertificatePathTest1EE_macos.p12"),
            &hex::decode("3080248004026162040163000005000000").unwrap(),
        ];
        let mut tried = never_panics("BER", &hostile(), ber_to_der);
        for (i, seed) in seeds.into_iter().enumerate() {
            tried += never_panics("BER", &mutants(seed, 2_000, i as u64), |input| {
                if let Ok(der) = ber_to_der(input) {
                    assert_eq!(ber_to_der(&der).as_ref(), Ok(&der), "DER output is a fixed point");
                }
            });
        }
        eprintln!("BER: {tried} mutated inputs");
    }
}
