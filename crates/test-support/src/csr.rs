//! Subscriber keys and CSRs made by OpenSSL, the way an applicant's own tool makes them:
//! the one fixture the CLI and service tests use for "a CSR from outside" (issue 11).

use std::path::{Path, PathBuf};

/// The kind of key `openssl req -newkey` makes for a test CSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
    /// ECDSA P-521.
    P521,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 1024 bits: too weak, refused by certdesk.
    Rsa1024,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// The `-newkey` arguments of `openssl req` for this kind.
    pub fn newkey_args(self) -> &'static [&'static str] {
        match self {
            KeyKind::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyKind::P384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyKind::P521 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
            KeyKind::Rsa2048 => &["-newkey", "rsa:2048"],
            KeyKind::Rsa3072 => &["-newkey", "rsa:3072"],
            KeyKind::Rsa1024 => &["-newkey", "rsa:1024"],
            KeyKind::Ed25519 => &["-newkey", "ed25519"],
        }
    }
}

/// What a test CSR looks like; [`CsrOptions::default`] is a P-256 key, subject
/// `/CN=jane`, PEM.
#[derive(Clone, Copy, Debug)]
pub struct CsrOptions<'a> {
    /// The key's kind.
    pub key: KeyKind,
    /// The subject, as `openssl req -subj` reads it (certdesk ignores it: the subject
    /// comes from the validated application).
    pub subject: &'a str,
    /// DER instead of PEM (`-outform DER`).
    pub der: bool,
    /// The request as text before the PEM block (`-text`, RFC 7468 section 2).
    pub text: bool,
}

impl Default for CsrOptions<'_> {
    fn default() -> Self {
        Self { key: KeyKind::P256, subject: "/CN=jane", der: false, text: false }
    }
}

/// A key and a CSR for it, in files OpenSSL wrote.
#[derive(Clone, Debug)]
pub struct TestCsr {
    /// The private key (unencrypted PKCS #8 PEM): `NAME.key`.
    pub key: PathBuf,
    /// The CSR: `NAME.csr` (PEM) or `NAME.der`.
    pub csr: PathBuf,
}

impl TestCsr {
    /// The CSR's bytes, as written.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.csr).unwrap()
    }

    /// The CSR as text (PEM, or text then PEM).
    pub fn pem(&self) -> String {
        String::from_utf8(self.bytes()).expect("a PEM CSR")
    }
}

/// Makes a key and a CSR for it with `openssl req -new` in `dir`, as `NAME.key` and
/// `NAME.csr` (`NAME.der` for DER); fails the test with OpenSSL's output if it cannot.
pub fn openssl_csr(dir: &Path, name: &str, options: &CsrOptions<'_>) -> TestCsr {
    let key = format!("{name}.key");
    let csr = format!("{name}.{}", if options.der { "der" } else { "csr" });
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(options.key.newkey_args());
    args.extend_from_slice(&["-nodes", "-subj", options.subject, "-keyout", &key, "-out", &csr]);
    if options.der {
        args.extend_from_slice(&["-outform", "DER"]);
    }
    if options.text {
        args.push("-text");
    }
    crate::openssl(dir, &args);
    TestCsr { key: dir.join(key), csr: dir.join(csr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_form_is_made_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        for (i, key) in [KeyKind::P256, KeyKind::P384, KeyKind::Rsa1024, KeyKind::Ed25519].into_iter().enumerate() {
            let made = openssl_csr(dir.path(), &format!("k{i}"), &CsrOptions { key, ..CsrOptions::default() });
            let text =
                crate::openssl(dir.path(), &["req", "-in", made.csr.to_str().unwrap(), "-noout", "-text", "-verify"]);
            let text = String::from_utf8_lossy(&text.stdout).to_string();
            let expected = match key {
                KeyKind::P256 => "NIST CURVE: P-256",
                KeyKind::P384 => "NIST CURVE: P-384",
                KeyKind::P521 => "NIST CURVE: P-521",
                KeyKind::Rsa2048 => "Public-Key: (2048 bit)",
                KeyKind::Rsa3072 => "Public-Key: (3072 bit)",
                KeyKind::Rsa1024 => "Public-Key: (1024 bit)",
                KeyKind::Ed25519 => "ED25519",
            };
            assert!(text.contains(expected), "{key:?}: {text}");
            assert!(made.pem().starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
            assert!(std::fs::read_to_string(&made.key).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        let der = openssl_csr(dir.path(), "d", &CsrOptions { der: true, ..CsrOptions::default() });
        assert!(der.csr.ends_with("d.der") && der.bytes().first() == Some(&0x30));
        let text = openssl_csr(dir.path(), "t", &CsrOptions { text: true, ..CsrOptions::default() });
        assert!(text.pem().starts_with("Certificate Request:"), "{}", text.pem());
    }
}
