//! Writing BER with indefinite lengths (X.690 8.1.3.6), as `openssl cms -stream` does:
//! what the streaming writers ([`crate::envelope::stream::StreamEncryptor`] and
//! [`crate::signed_data::stream::EncapsulatingSigner`]) need to start a value before its
//! length is known.

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
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
}
