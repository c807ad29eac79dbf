//! BER in pieces, for the streaming readers and writers of CMS objects
//! ([`crate::envelope::stream`], [`crate::signed_data::stream`]).
//!
//! Writing: indefinite lengths (X.690 8.1.3.6) and constructed OCTET STRINGs of
//! segments (8.7.3), as `openssl cms -stream` writes them, so a value can start before
//! its length is known.
//!
//! Reading: [`Cursor`] reads the start of a message (held in memory) value by value;
//! [`Walker`] then follows the rest as it arrives, passing the content's octets on,
//! keeping (or skipping) what follows the content, and checking that every value ends
//! where its length says.

/// Largest OCTET STRING segment written inside a constructed string (64 KiB).
pub(crate) const SEGMENT_LEN: usize = 64 * 1024;

/// BER identifier and indefinite length: `tag 80`.
pub(crate) fn open_indefinite(tag: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[tag, 0x80]);
}

/// A definite length (X.690 8.1.3), minimal.
pub(crate) fn write_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len.to_be_bytes().last().copied().unwrap_or(0));
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0x7f));
    out.extend_from_slice(significant);
}

/// `data` as primitive OCTET STRING segments of at most [`SEGMENT_LEN`] bytes (the
/// parts of a constructed OCTET STRING, X.690 8.7.3.2).
pub(crate) fn write_segments(data: &[u8], out: &mut Vec<u8>) {
    for piece in data.chunks(SEGMENT_LEN) {
        out.push(0x04);
        write_length(piece.len(), out);
        out.extend_from_slice(piece);
    }
}

/// Deepest nesting followed.
pub(crate) const MAX_DEPTH: usize = 32;

/// Largest part of a message kept after the content ([`Kind::After`]): 16 MiB.
pub(crate) const MAX_KEPT_LEN: usize = 16 * 1024 * 1024;

/// What is wrong with the BER read (the callers wrap it in their own error type).
#[derive(Debug)]
pub(crate) struct BerError(pub(crate) String);

pub(crate) fn malformed(detail: impl Into<String>) -> BerError {
    BerError(detail.into())
}

/// Returns `Ok($incomplete)` from the enclosing function when a [`Cursor`] read finds
/// the data ending too early.
macro_rules! need {
    ($e:expr, $incomplete:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok($incomplete),
        }
    };
}
pub(crate) use need;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Length {
    Definite(u64),
    Indefinite,
}

/// An identifier and length: the first identifier octet, whether constructed, the
/// length, and how many octets they took. `None` if `buf` ends first.
pub(crate) fn read_header(buf: &[u8]) -> Result<Option<(u8, bool, Length, usize)>, BerError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let mut pos = 1;
    if first & 0x1f == 0x1f {
        // High tag number form (X.690 8.1.2.4).
        loop {
            let Some(&b) = buf.get(pos) else { return Ok(None) };
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 5 {
                return Err(malformed("a tag number is too large"));
            }
        }
    }
    let Some(&len0) = buf.get(pos) else { return Ok(None) };
    pos += 1;
    let length = match len0 {
        0x80 => Length::Indefinite,
        l if l < 0x80 => Length::Definite(u64::from(l)),
        l => {
            let count = usize::from(l & 0x7f);
            if count > 8 {
                return Err(malformed("a length does not fit in eight bytes"));
            }
            let Some(bytes) = buf.get(pos..pos + count) else { return Ok(None) };
            pos += count;
            Length::Definite(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
        }
    };
    let constructed = first & 0x20 != 0;
    if !constructed && length == Length::Indefinite {
        return Err(malformed("a primitive value has an indefinite length"));
    }
    Ok(Some((first, constructed, length, pos)))
}

/// The length of the complete value at the start of `buf` (BER), or `None` if `buf`
/// ends first.
pub(crate) fn element_len(buf: &[u8], depth: usize) -> Result<Option<usize>, BerError> {
    if depth > MAX_DEPTH {
        return Err(malformed("the values are nested too deeply"));
    }
    let Some((_, _, length, header)) = read_header(buf)? else { return Ok(None) };
    match length {
        Length::Definite(len) => {
            let len = usize::try_from(len).map_err(|_| malformed("a length is too large"))?;
            let total = header.checked_add(len).ok_or_else(|| malformed("a length is too large"))?;
            Ok((total <= buf.len()).then_some(total))
        }
        Length::Indefinite => {
            let mut pos = header;
            loop {
                let rest = buf.get(pos..).unwrap_or_default();
                match rest {
                    [0, 0, ..] => return Ok(Some(pos + 2)),
                    [] | [0] => return Ok(None),
                    _ => {}
                }
                let Some(child) = element_len(rest, depth + 1)? else { return Ok(None) };
                pos += child;
            }
        }
    }
}

/// A cursor over the start of a message; every read returns `None` when the data ends
/// too early.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The header of a constructed value with identifier `tag`; returns its end
    /// (absolute), `None` inside for an indefinite length.
    pub(crate) fn open(&mut self, tag: u8, what: &str) -> Result<Option<Option<u64>>, BerError> {
        let Some((found, constructed, length, header)) = read_header(self.buf.get(self.pos..).unwrap_or_default())?
        else {
            return Ok(None);
        };
        if found != tag || !constructed {
            return Err(malformed(format!("{what}: unexpected identifier {found:#04x}")));
        }
        self.pos += header;
        Ok(Some(match length {
            Length::Definite(len) => Some(
                self.absolute()?.checked_add(len).ok_or_else(|| malformed(format!("{what}: a length is too large")))?,
            ),
            Length::Indefinite => None,
        }))
    }

    /// A complete value with identifier `tag`.
    pub(crate) fn element(&mut self, tag: u8, what: &str) -> Result<Option<&'a [u8]>, BerError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match rest.first() {
            None => return Ok(None),
            Some(found) if *found != tag => {
                return Err(malformed(format!("{what}: unexpected identifier {found:#04x}")));
            }
            Some(_) => {}
        }
        let Some(len) = element_len(rest, 0)? else { return Ok(None) };
        self.pos += len;
        Ok(rest.get(..len))
    }

    /// Whether the value `frame` (the innermost open one) ends here: at its definite end,
    /// or at end-of-contents (not consumed). `None` if the data ends first.
    pub(crate) fn at_end_of(&self, frame: &Frame) -> Result<Option<bool>, BerError> {
        match frame.end {
            Some(end) => Ok(Some(self.absolute()? == end)),
            None => match self.buf.get(self.pos..self.pos + 2) {
                None => Ok(None),
                Some(two) => Ok(Some(two == [0, 0])),
            },
        }
    }

    pub(crate) fn absolute(&self) -> Result<u64, BerError> {
        u64::try_from(self.pos).map_err(|_| malformed("offset"))
    }

    /// Checks, at the end of the start, that every definite length holds what was read
    /// and its parent holds it.
    pub(crate) fn check_frames(&self, frames: &[Frame]) -> Result<(), BerError> {
        let here = self.absolute()?;
        let mut limit: Option<u64> = None;
        for frame in frames {
            if let Some(end) = frame.end {
                if end < here || limit.is_some_and(|l| end > l) {
                    return Err(malformed("a value runs past the end of its parent"));
                }
                limit = Some(end);
            }
        }
        Ok(())
    }
}

/// What may come inside an open value while [`Walker`] follows the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A value whose elements the start has read (ContentInfo, its `[0]`, ...): only its
    /// end may come.
    Closed,
    /// The content (a constructed OCTET STRING or `[0]`): segments, passed on.
    Content,
    /// The SEQUENCE around the content: after the content, values with these
    /// identifiers (`None`: any) may follow, appended, identifiers and lengths
    /// included, to [`Walker::kept`] (the reader decodes them at the end).
    After { only: Option<u8> },
    /// Inside a value after the content (kept).
    Inside,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    /// Absolute end of this value, or `None` for an indefinite length.
    pub(crate) end: Option<u64>,
}

/// Follows the BER of a message after its start: the content's segments (passed to the
/// sink), then what comes after them, then the end of every value.
#[derive(Debug)]
pub(crate) struct Walker {
    offset: u64,
    stack: Vec<Frame>,
    /// Identifier and length octets read so far of the next value.
    header: Vec<u8>,
    /// Inside a primitive value: octets left, and whether they are kept (else content).
    primitive: Option<(u64, bool)>,
    /// The values after the content that are kept, as received.
    pub(crate) kept: Vec<u8>,
    /// Which structure this is (for error messages).
    what: &'static str,
}

impl Walker {
    /// A walker at absolute offset `offset`, inside `stack` (outermost first); a
    /// primitive content value of `primitive` octets comes first when given.
    pub(crate) fn new(
        offset: usize,
        stack: Vec<Frame>,
        primitive: Option<u64>,
        what: &'static str,
    ) -> Result<Self, BerError> {
        Ok(Self {
            offset: u64::try_from(offset).map_err(|_| malformed("offset"))?,
            stack,
            header: Vec::new(),
            primitive: primitive.map(|len| (len, false)),
            kept: Vec::new(),
            what,
        })
    }

    /// The nearest definite end around the current position.
    fn limit(&self) -> Option<u64> {
        self.stack.iter().filter_map(|f| f.end).min()
    }

    fn keep(&mut self, octets: &[u8]) -> Result<(), BerError> {
        if self.kept.len() + octets.len() > MAX_KEPT_LEN {
            return Err(malformed(format!("more than {MAX_KEPT_LEN} bytes follow the content in the {}", self.what)));
        }
        self.kept.extend_from_slice(octets);
        Ok(())
    }

    /// Takes `input`, passing content octets to `sink`.
    pub(crate) fn feed<E: From<BerError>>(
        &mut self,
        mut input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            if let Some((left, kept)) = self.primitive {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                let (now, rest) = input.split_at(take);
                if kept {
                    self.keep(now)?;
                } else {
                    sink(now)?;
                }
                let taken = u64::try_from(take).map_err(|_| malformed("offset"))?;
                self.offset += taken;
                input = rest;
                if left > taken {
                    self.primitive = Some((left - taken, kept));
                    return Ok(());
                }
                self.primitive = None;
            }
            while let Some(frame) = self.stack.last() {
                match frame.end {
                    Some(end) if end == self.offset => {
                        self.stack.pop();
                    }
                    Some(end) if end < self.offset => {
                        return Err(malformed("a value runs past the end of its parent").into())
                    }
                    _ => break,
                }
            }
            if input.is_empty() {
                return Ok(());
            }
            if self.stack.is_empty() {
                return Err(malformed("trailing data after the outer value").into());
            }
            // The next identifier and length, octet by octet (they may be split).
            let Some((&byte, rest)) = input.split_first() else { return Ok(()) };
            input = rest;
            self.header.push(byte);
            let Some((tag, constructed, length, len)) = read_header(&self.header)? else {
                continue;
            };
            self.offset += u64::try_from(len).map_err(|_| malformed("offset"))?;
            let header = std::mem::take(&mut self.header);
            if tag == 0 && header != [0, 0] {
                // X.690 8.1.5: end-of-contents is exactly two zero octets.
                return Err(malformed("a malformed end-of-contents").into());
            }
            if self.value(tag, constructed, length)? {
                self.keep(&header)?;
            }
        }
    }

    /// Opens the value whose header was just read; says whether its header is kept.
    fn value(&mut self, tag: u8, constructed: bool, length: Length) -> Result<bool, BerError> {
        let top = self.stack.last().copied().ok_or_else(|| malformed("trailing data after the outer value"))?;
        let end = match length {
            Length::Definite(len) => {
                let end = self.offset.checked_add(len).ok_or_else(|| malformed("a length is too large"))?;
                if self.limit().is_some_and(|limit| end > limit) {
                    return Err(malformed("a value runs past the end of its parent"));
                }
                Some(end)
            }
            Length::Indefinite => None,
        };
        if tag == 0 && !constructed {
            // End-of-contents: closes the innermost indefinite value.
            if length != Length::Definite(0) || top.end.is_some() {
                return Err(malformed("an unexpected end-of-contents"));
            }
            self.stack.pop();
            return Ok(top.kind == Kind::Inside);
        }
        if self.stack.len() > MAX_DEPTH {
            return Err(malformed("the values are nested too deeply"));
        }
        let len = end.unwrap_or(self.offset) - self.offset;
        match (top.kind, tag) {
            (Kind::Content, 0x04) => {
                self.primitive = Some((len, false));
                return Ok(false);
            }
            (Kind::Content, 0x24) => {
                self.stack.push(Frame { kind: Kind::Content, end });
                return Ok(false);
            }
            (Kind::Inside, _) => {}
            (Kind::After { only }, _) if only.is_none_or(|t| t == tag) => {}
            _ => return Err(malformed(format!("an unexpected value {tag:#04x} in the {}", self.what))),
        }
        if constructed {
            self.stack.push(Frame { kind: Kind::Inside, end });
        } else {
            self.primitive = Some((len, true));
        }
        Ok(true)
    }

    /// Whether every value has ended.
    pub(crate) fn complete(&self) -> bool {
        self.stack.is_empty() && self.primitive.is_none() && self.header.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_minimal() {
        for (len, expected) in [
            (0usize, vec![0x00]),
            (0x7f, vec![0x7f]),
            (0x80, vec![0x81, 0x80]),
            (0xff, vec![0x81, 0xff]),
            (0x100, vec![0x82, 0x01, 0x00]),
            (65_536, vec![0x83, 0x01, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            write_length(len, &mut out);
            assert_eq!(out, expected, "{len}");
        }
    }

    #[test]
    fn segments_split_at_the_limit() {
        let data = vec![7u8; SEGMENT_LEN + 3];
        let mut out = Vec::new();
        write_segments(&data, &mut out);
        assert_eq!(&out[..5], &[0x04, 0x83, 0x01, 0x00, 0x00]);
        assert_eq!(&out[5 + SEGMENT_LEN..5 + SEGMENT_LEN + 2], &[0x04, 0x03]);
        assert_eq!(out.len(), 5 + SEGMENT_LEN + 2 + 3);
        let mut none = Vec::new();
        write_segments(&[], &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn a_length_past_the_end_of_memory_is_an_error_not_an_overflow() {
        let buf = [0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let mut c = Cursor::new(&buf);
        assert!(c.open(0x30, "SEQUENCE").is_err());
        // The same inside the streamed part.
        let mut walker = Walker::new(0, vec![Frame { kind: Kind::Content, end: None }], None, "test").unwrap();
        let mut sink = |_: &[u8]| -> Result<(), BerError> { Ok(()) };
        assert!(walker.feed(&[0x24, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &mut sink).is_err());
    }

    #[test]
    fn end_of_contents_is_exactly_two_zero_octets() {
        let walk = |input: &[u8]| {
            let mut walker = Walker::new(0, vec![Frame { kind: Kind::Content, end: None }], None, "test").unwrap();
            let mut content = Vec::new();
            let mut sink = |b: &[u8]| -> Result<(), BerError> {
                content.extend_from_slice(b);
                Ok(())
            };
            walker.feed(input, &mut sink).map(|()| walker.complete())
        };
        assert!(walk(&[0x04, 0x01, 0x41, 0x00, 0x00]).unwrap());
        assert!(walk(&[0x04, 0x01, 0x41, 0x00, 0x81, 0x00]).is_err());
        assert!(walk(&[0x04, 0x01, 0x41, 0x00, 0x01, 0x00]).is_err());
        assert!(!walk(&[0x04, 0x01, 0x41]).unwrap(), "not complete before the end-of-contents");
    }
}
