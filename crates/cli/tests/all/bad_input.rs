//! Bad input: one sentence on stderr, the right exit code, no file, no record.

use super::common::*;

fn issue_with_csr_bytes(ca: &Ca, bytes: &[u8]) -> Run {
    std::fs::write(ca.path("in.csr"), bytes).unwrap();
    ca.run(&[
        "issue",
        "--csr",
        "in.csr",
        "--email",
        "jane.doe@example.org",
        "--given-name",
        "Jane",
        "--surname",
        "Doe",
        "--out",
        "out.pem",
    ])
}

#[test]
fn broken_csrs_are_refused_and_nothing_is_issued() {
    let ca = Ca::new("p384");
    let csr_path = ca.csr("k", KeyKind::P256);
    let pem = std::fs::read_to_string(&csr_path).unwrap();
    let (_, der) = der::pem::decode_vec(pem.as_bytes()).unwrap();

    let mut tampered = der.clone();
    // Inside the public key: still parses, but the proof of possession fails.
    let n = tampered.len();
    tampered[n - 80] ^= 0x01;
    let weak = ca.csr("weak", KeyKind::Rsa1024);
    let cases: Vec<(&str, Vec<u8>, i32, &str)> = vec![
        ("empty", Vec::new(), 2, "could not be read"),
        ("garbage", b"this is not a CSR".to_vec(), 2, "could not be read"),
        ("truncated DER", der[..der.len() / 2].to_vec(), 2, "could not be read"),
        ("truncated PEM", pem.as_bytes()[..pem.len() / 2].to_vec(), 2, "could not be read"),
        ("a certificate", std::fs::read(ca.path("chain.pem")).unwrap(), 2, "not a CERTIFICATE REQUEST"),
        ("tampered", tampered, 1, ""),
        ("weak key", std::fs::read(weak).unwrap(), 1, "too short"),
    ];
    for (name, bytes, code, message) in cases {
        let run = issue_with_csr_bytes(&ca, &bytes);
        assert_eq!(run.code, code, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{name}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{name}: {}", run.stderr);
        assert!(!ca.path("out.pem").exists(), "{name} left a file");
    }
    assert!(!ca.files().iter().any(|f| f.contains("tmp")), "{:?}", ca.files());
    assert_eq!(ca.audit_records(), 1);
}

#[test]
fn bad_subject_data_and_profiles_are_refused() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", KeyKind::P256);
    let csr = csr.to_str().unwrap();
    let base = |email: &str, given: &str, profile: &str| {
        ca.run(&[
            "issue",
            "--csr",
            csr,
            "--email",
            email,
            "--given-name",
            given,
            "--surname",
            "Doe",
            "--profile",
            profile,
            "--out",
            "o.pem",
        ])
    };
    for (email, given, profile, needle) in [
        ("jane", "Jane", "strict", "not a valid e-mail address"),
        ("jane@localhost", "Jane", "strict", "not a valid e-mail address"),
        ("jane.doe@example.org", "", "strict", "given name"),
        ("jane.doe@example.org", "Jane", "gold", "invalid value 'gold'"),
    ] {
        let run = base(email, given, profile);
        assert_eq!(run.code, 2, "{email}/{given}/{profile}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
        assert!(!ca.path("o.pem").exists());
    }
    let unknown_key = ca.issue_p12("rsa1024", "modern", "x.p12");
    assert_eq!(unknown_key.code, 2);
    assert!(!ca.path("x.p12").exists());
    assert_eq!(ca.audit_records(), 1);
}

#[test]
fn sponsor_profiles_need_an_organization_identifier() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pass"), PASSPHRASE).unwrap();
    init_in(dir.path(), "pass", &["--country", "DE", "--base-url", "http://pki.example.org"]).ok();
    certdesk_test_support::csr::openssl_csr(dir.path(), "r", &Default::default());
    let args = |profile: &'static str| {
        vec![
            "--data",
            "d",
            "--passphrase-file",
            "pass",
            "issue",
            "--csr",
            "r.csr",
            "--email",
            "a@example.org",
            "--given-name",
            "A",
            "--surname",
            "B",
            "--profile",
            profile,
            "--out",
            "o.pem",
        ]
    };
    let run = certdesk_in(dir.path(), &args("strict"));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("organizationIdentifier"), "{}", run.stderr);
    // Mailbox-validated certificates do not name the organisation.
    certdesk_in(dir.path(), &args("mailbox-strict")).ok();
}
