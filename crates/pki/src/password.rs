//! Password strength rules for PKCS#12 files and CA passphrases.
//!
//! A .p12 leaves our hands once; its password is all that protects the key on a
//! laptop or in a mailbox. We refuse short and guessable passwords with a reason a
//! person can act on. The chosen password is never stored or logged by certdesk.

/// Why a password was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// Fewer characters than required.
    #[error("the password is too short: use at least {min} characters (a few unrelated words work well)")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// Easy to guess.
    #[error("the password is too easy to guess ({why}); choose something longer and less predictable")]
    TooGuessable {
        /// What made it guessable.
        why: &'static str,
    },
}

/// The minimum length of a PKCS#12 password or CA passphrase.
pub const MIN_LENGTH: usize = 12;

const COMMON: &[&str] = &[
    "password",
    "passwort",
    "123456",
    "qwerty",
    "qwertz",
    "letmein",
    "welcome",
    "willkommen",
    "iloveyou",
    "admin",
    "secret",
    "geheim",
    "changeme",
    "monkey",
    "dragon",
    "football",
    "sunshine",
    "princess",
    "abc123",
    "trustno1",
    "master",
    "hallo",
    "test",
    "certificate",
    "zertifikat",
    "smime",
];

/// Checks a password; `personal` are words from the subscriber's own data (e-mail local
/// part, names) that must not make up the password.
pub fn check_strength(password: &str, personal: &[&str]) -> Result<(), PasswordError> {
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < MIN_LENGTH {
        return Err(PasswordError::TooShort { min: MIN_LENGTH });
    }
    let distinct = {
        let mut seen = chars.clone();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    if distinct < 5 {
        return Err(PasswordError::TooGuessable { why: "it repeats too few different characters" });
    }
    let is_run = chars.windows(2).all(|w| matches!(w, [a, b] if (*b as i64 - *a as i64).abs() <= 1));
    if is_run {
        return Err(PasswordError::TooGuessable { why: "it is a keyboard or alphabet sequence" });
    }
    let lower = password.to_lowercase();
    let mut stripped = lower.clone();
    for word in COMMON {
        stripped = stripped.replace(word, "");
    }
    for word in personal.iter().filter(|w| w.chars().count() >= 3) {
        stripped = stripped.replace(&word.to_lowercase(), "");
    }
    let rest: String = stripped.chars().filter(|c| c.is_alphanumeric()).collect();
    let rest_distinct = {
        let mut r: Vec<char> = rest.chars().collect();
        r.sort_unstable();
        r.dedup();
        r.len()
    };
    if rest.chars().count() < 6 || rest_distinct < 4 {
        return Err(PasswordError::TooGuessable { why: "it is mostly a common word, your name or your address" });
    }
    if chars.iter().all(char::is_ascii_digit) && chars.len() < 16 {
        return Err(PasswordError::TooGuessable { why: "it has only digits" });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn strong_passwords_pass() {
        check_strength("correct horse battery staple", &[]).unwrap();
        check_strength("Tq7#mv!2pLx9", &[]).unwrap();
    }

    #[test]
    fn weak_passwords_fail_with_reason() {
        assert_eq!(check_strength("short", &[]), Err(PasswordError::TooShort { min: 12 }));
        assert!(matches!(check_strength("aaaaaaaaaaaaaaa", &[]), Err(PasswordError::TooGuessable { .. })));
        assert!(matches!(check_strength("abcdefghijklmn", &[]), Err(PasswordError::TooGuessable { .. })));
        assert!(matches!(check_strength("Password123456", &[]), Err(PasswordError::TooGuessable { .. })));
        assert!(matches!(
            check_strength("jane.doe2024!!", &["jane.doe", "Jane", "Doe"]),
            Err(PasswordError::TooGuessable { .. })
        ));
        assert!(matches!(check_strength("738261947362", &[]), Err(PasswordError::TooGuessable { .. })));
    }
}
