//! Time-based one-time passwords (RFC 6238, on HOTP RFC 4226): HMAC-SHA-1, 6 digits,
//! 30-second steps, what every authenticator app uses by default. Officers and
//! administrators give one as their second factor (BR 6.5.1: multi-factor
//! authentication for accounts that can cause issuance).

use aws_lc_rs::{constant_time, hmac};

/// Seconds per time step (RFC 6238 section 4.1, X = 30).
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps of clock drift accepted either way (RFC 6238 section 5.2 recommends at most one).
pub const DRIFT_STEPS: i64 = 1;

/// The time step of Unix time `unix` (RFC 6238 section 4.2, T0 = 0).
pub fn step_at(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECONDS)
}

/// HOTP value for counter `counter` (RFC 4226 section 5.3), `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation: the low 4 bits of the last byte give the offset.
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let bytes: [u8; 4] = match mac.get(offset..offset + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        Some(b) => b,
        None => return 0,
    };
    let binary = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// The 6-digit code for `step`, zero-padded.
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    format!("{:06}", hotp(secret, u64::try_from(step).unwrap_or(0), DIGITS))
}

/// Checks `code` at Unix time `now`, allowing [`DRIFT_STEPS`]; returns the matching
/// step (the caller refuses steps already used). Constant-time comparison.
pub fn verify(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    for step in current - DRIFT_STEPS..=current + DRIFT_STEPS {
        let expected = code_at_step(secret, step);
        if constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding (what `otpauth://` URIs carry).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((buffer >> bits) & 31) as usize;
            out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
        }
    }
    if bits > 0 {
        let index = ((buffer << (5 - bits)) & 31) as usize;
        out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
    }
    out
}

/// Decodes RFC 4648 base32 (upper or lower case, padding and spaces ignored); `None`
/// for any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            b'=' | b' ' => continue,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://totp/...` URI authenticator apps import (Key Uri Format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    /// RFC 4226 appendix D.
    #[test]
    fn hotp_matches_rfc_4226() {
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(SECRET, counter as u64, 6), *want);
        }
    }

    /// RFC 6238 appendix B (SHA-1 rows, 8 digits).
    #[test]
    fn totp_matches_rfc_6238() {
        for (time, want) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(SECRET, step_at(time) as u64, 8), want, "T = {time}");
        }
    }

    #[test]
    fn verify_accepts_one_step_of_drift_and_nothing_else() {
        let now = 1_790_000_000;
        let code = code_at_step(SECRET, step_at(now));
        assert_eq!(verify(SECRET, &code, now), Some(step_at(now)));
        assert_eq!(verify(SECRET, &code, now + 30), Some(step_at(now)));
        assert_eq!(verify(SECRET, &code, now + 90), None);
        assert_eq!(verify(SECRET, "12345", now), None);
        assert_eq!(verify(SECRET, "abcdef", now), None);
        assert_eq!(verify(b"another secret......", &code, now), None);
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, want) in [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foobar", "MZXW6YTBOI")] {
            assert_eq!(base32(input.as_bytes()), want);
        }
        for input in ["", "f", "fo", "foo", "foobar", "12345678901234567890"] {
            assert_eq!(base32_decode(&base32(input.as_bytes())).unwrap(), input.as_bytes());
        }
        assert_eq!(base32_decode("MZXW6==="), Some(b"foo".to_vec()));
        assert_eq!(base32_decode("MZ!W6"), None);
        assert!(otpauth_uri("certdesk demo", "a@b.org", SECRET).starts_with("otpauth://totp/certdesk%20demo:a@b.org?"));
    }
}
