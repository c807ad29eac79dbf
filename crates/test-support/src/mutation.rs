//! Deterministic mutation testing for the parsers (test builds only).
//!
//! The cargo-fuzz targets in `fuzz/` need a nightly toolchain; these helpers give the
//! normal test suite a fixed, repeatable slice of the same idea: real seed inputs,
//! mutated by truncation, bit flips, byte insertion and deletion, length-field
//! inflation, splicing and deep nesting, each fed through a parser that must return
//! (`Ok` or `Err`) without panicking and within [`MAX_PER_INPUT`].
//!
//! Used by the unit tests of `certdesk-pki` and `certdesk-smime` (a dev-dependency).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The longest one parser call may take (debug build, busy 2-core machine).
pub const MAX_PER_INPUT: Duration = Duration::from_secs(2);

/// xorshift64*: a tiny deterministic PRNG, so every run tests the same inputs.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; 0 is made odd).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0x81, 0xff, 0x30, 0xa0];
        if self.next_u64() % 2 == 0 {
            INTERESTING[self.below(INTERESTING.len())]
        } else {
            self.next_u64().to_le_bytes()[0]
        }
    }
}

/// One mutated input and how it was made (printed when it fails).
pub struct Mutant {
    /// What was done to the seed.
    pub how: String,
    /// The input.
    pub bytes: Vec<u8>,
}

/// Length octets that claim far more than any input holds, or are invalid.
const INFLATED_LENGTHS: [&[u8]; 6] = [
    &[0x84, 0xff, 0xff, 0xff, 0xff],
    &[0x84, 0x7f, 0xff, 0xff, 0xff],
    &[0x80],
    &[0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x7f],
];

/// Tag octets after which a DER length is likely (SEQUENCE, SET, INTEGER, BIT/OCTET
/// STRING, OID, context tags, constructed OCTET STRING).
fn looks_like_tag(b: u8) -> bool {
    matches!(b, 0x02..=0x06 | 0x0c | 0x13 | 0x17 | 0x18 | 0x24 | 0x30 | 0x31 | 0x80..=0x83 | 0xa0..=0xa3)
}

/// The span of the length octets starting at `at`, if they are well formed.
fn length_span(input: &[u8], at: usize) -> Option<usize> {
    let first = *input.get(at)?;
    match first {
        0..=0x80 => Some(1),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f) + 1;
            (at + n <= input.len()).then_some(n)
        }
        _ => None,
    }
}

/// The deterministic mutants of `seed`: every truncation (or about 300 of them for
/// long inputs), `rounds` single-bit flips, `rounds / 4` each of insertions,
/// deletions, splices and length inflations, and the seed wrapped in deep BER and DER
/// nesting.
pub fn mutants(seed: &[u8], rounds: usize, rng_seed: u64) -> Vec<Mutant> {
    let mut rng = XorShift::new(rng_seed ^ seed.len() as u64);
    let mut out = Vec::new();
    let len = seed.len();
    let mut push = |how: String, bytes: Vec<u8>| out.push(Mutant { how, bytes });

    // Truncations.
    let mut cuts: Vec<usize> = if len <= 600 {
        (0..len).collect()
    } else {
        let mut cuts: Vec<usize> = (0..100).chain(len - 100..len).collect();
        cuts.extend((0..100).map(|_| rng.below(len)));
        cuts
    };
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        push(format!("truncated to {cut}"), seed[..cut].to_vec());
    }
    if len == 0 {
        return out;
    }
    for _ in 0..rounds {
        let (at, bit) = (rng.below(len), rng.below(8));
        let mut m = seed.to_vec();
        m[at] ^= 1 << bit;
        push(format!("bit {bit} of byte {at} flipped"), m);
    }
    for _ in 0..rounds / 4 {
        let (at, b) = (rng.below(len + 1), rng.byte());
        let mut m = seed.to_vec();
        m.insert(at, b);
        push(format!("{b:#04x} inserted at {at}"), m);
    }
    for _ in 0..rounds / 4 {
        let at = rng.below(len);
        let mut m = seed.to_vec();
        m.remove(at);
        push(format!("byte {at} deleted"), m);
    }
    for _ in 0..rounds / 4 {
        // Copy a random range to a random place (duplicated elements, shifted lengths).
        let start = rng.below(len);
        let end = (start + 1 + rng.below(64)).min(len);
        let at = rng.below(len + 1);
        let mut m = seed.to_vec();
        let chunk = seed[start..end].to_vec();
        m.splice(at..at, chunk);
        push(format!("bytes {start}..{end} copied to {at}"), m);
    }
    // Length inflation at the positions that look like a tag followed by a length.
    let tags: Vec<usize> = (0..len.saturating_sub(1)).filter(|&i| looks_like_tag(seed[i])).collect();
    for _ in 0..rounds / 4 {
        if tags.is_empty() {
            break;
        }
        let tag_at = tags[rng.below(tags.len())];
        let Some(span) = length_span(seed, tag_at + 1) else { continue };
        let inflated = INFLATED_LENGTHS[rng.below(INFLATED_LENGTHS.len())];
        let mut m = seed.to_vec();
        m.splice(tag_at + 1..tag_at + 1 + span, inflated.iter().copied());
        push(format!("length after the tag at {tag_at} set to {inflated:02x?}"), m);
    }
    // The whole seed wrapped in deep nesting.
    let mut ber = [0x30, 0x80].repeat(10_000);
    ber.extend_from_slice(seed);
    ber.extend_from_slice(&[0, 0].repeat(10_000));
    push("wrapped in 10000 indefinite-length SEQUENCEs".into(), ber);
    let mut der = [0x30, 0x84, 0xff, 0xff, 0xff, 0xff].repeat(10_000);
    der.extend_from_slice(seed);
    push("wrapped in 10000 SEQUENCEs of length 2^32-1".into(), der);
    out
}

/// Hostile inputs that need no seed: deep nesting, huge declared lengths, empty and
/// one-byte input.
pub fn hostile() -> Vec<Mutant> {
    let mut out = Vec::new();
    let mut push = |how: &str, bytes: Vec<u8>| out.push(Mutant { how: how.to_owned(), bytes });
    push("empty", Vec::new());
    push("one zero byte", vec![0]);
    push("a bare SEQUENCE tag", vec![0x30]);
    push("10000 nested indefinite SEQUENCEs, unterminated", [0x30, 0x80].repeat(10_000));
    let mut closed = [0x30, 0x80].repeat(10_000);
    closed.extend_from_slice(&[0, 0].repeat(10_000));
    push("10000 nested indefinite SEQUENCEs, terminated", closed);
    push("10000 nested constructed OCTET STRINGs", [0x24, 0x80].repeat(10_000));
    push("10000 nested context [0]", [0xa0, 0x80].repeat(10_000));
    push("10000 SEQUENCEs of length 2^32-1", [0x30, 0x84, 0xff, 0xff, 0xff, 0xff].repeat(10_000));
    let mut nested = Vec::new();
    for _ in 0..2_000 {
        // Definite lengths that are right: each SEQUENCE wraps the one inside.
        let mut outer = vec![0x30];
        let len = nested.len();
        if len < 0x80 {
            outer.push(len as u8);
        } else {
            let bytes = (len as u32).to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            outer.push(0x80 | (4 - skip) as u8);
            outer.extend_from_slice(&bytes[skip..]);
        }
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    push("2000 correctly nested definite-length SEQUENCEs", nested);
    push("SEQUENCE claiming 2^32-1 bytes", vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00]);
    push("SEQUENCE with a 9-byte length", vec![0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    push("OCTET STRING claiming 2^31 bytes", vec![0x04, 0x84, 0x80, 0x00, 0x00, 0x00]);
    push("high tag number that never ends", [0x1f].into_iter().chain([0xff; 64]).collect());
    push("64 KiB of 0xff", vec![0xff; 65_536]);
    push("64 KiB of zeros", vec![0; 65_536]);
    out
}

/// Feeds every input through `parse`, which must return (its result is the caller's
/// business) without panicking and within [`MAX_PER_INPUT`]. Returns how many inputs
/// were tried. A failure prints the mutation and the input in hex: keep it as a
/// regression test.
pub fn never_panics<T>(what: &str, inputs: &[Mutant], mut parse: impl FnMut(&[u8]) -> T) -> usize {
    for input in inputs {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _ = parse(&input.bytes);
        }));
        let took = started.elapsed();
        if outcome.is_err() {
            panic!(
                "{what}: panicked on the input {} ({}): {}",
                input.how,
                input.bytes.len(),
                hex::encode(&input.bytes)
            );
        }
        assert!(
            took <= MAX_PER_INPUT,
            "{what}: {took:?} on the input {} ({} bytes): {}",
            input.how,
            input.bytes.len(),
            hex::encode(&input.bytes)
        );
    }
    inputs.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_deterministic_and_varied() {
        let seed = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        let a: Vec<Vec<u8>> = mutants(&seed, 40, 7).into_iter().map(|m| m.bytes).collect();
        let b: Vec<Vec<u8>> = mutants(&seed, 40, 7).into_iter().map(|m| m.bytes).collect();
        assert_eq!(a, b);
        assert!(a.len() > 80);
        assert!(a.iter().any(|m| m.windows(5).any(|w| w == [0x84, 0xff, 0xff, 0xff, 0xff])));
        assert!(!hostile().is_empty());
    }
}
