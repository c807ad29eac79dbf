//! Issuance: every profile and key type is accepted by OpenSSL and clean under pkilint.

use super::common::*;

fn lint(ca: &Ca, cert: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["lint", "-s", "WARNING"];
    all.extend_from_slice(args);
    all.push(cert.to_str().unwrap());
    let run = ca.tool(&pkilint(), &all);
    String::from_utf8(run.stdout).unwrap() + &run.stderr
}

#[test]
fn every_br_profile_and_key_type_passes_pkilint_and_openssl() {
    let ca = Ca::new("p384");
    let csrs = [
        ("p256", ca.csr("p256", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])),
        ("p384", ca.csr("p384", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"])),
        ("rsa2048", ca.csr("rsa2048", &["-newkey", "rsa:2048"])),
        ("rsa3072", ca.csr("rsa3072", &["-newkey", "rsa:3072"])),
        ("ed25519", ca.csr("ed25519", &["-newkey", "ed25519"])),
    ];
    for profile in ["strict", "multipurpose", "mailbox-strict", "mailbox-multipurpose"] {
        for (key, csr) in &csrs {
            let cert = ca.issue_csr(csr, profile, &format!("{profile}-{key}.pem"));
            let findings = lint(&ca, &cert, &["-d"]);
            assert!(findings.trim().is_empty(), "pkilint on {profile}/{key}:\n{findings}");
            ca.tool("openssl", &["verify", "-CAfile", "chain.pem", "-purpose", "smimesign", cert.to_str().unwrap()])
                .ok();
            if key.starts_with("rsa") {
                ca.tool(
                    "openssl",
                    &["verify", "-CAfile", "chain.pem", "-purpose", "smimeencrypt", cert.to_str().unwrap()],
                )
                .ok();
            }
        }
    }
    // The subject comes from validated data, never from the CSR.
    let cert = ca.path("strict-p256.pem");
    let subject = ca.tool("openssl", &["x509", "-in", cert.to_str().unwrap(), "-noout", "-subject"]).ok();
    let subject = String::from_utf8(subject.stdout).unwrap();
    assert!(subject.contains("CN = Jane Doe") && !subject.contains("ignored"), "{subject}");
}

#[test]
fn private_profile_differs_from_br_only_where_documented() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", &["-newkey", "rsa:3072"]);
    let cert = ca.issue_csr(&csr, "private", "private.pem");
    let findings = lint(&ca, &cert, &["-t", "SPONSORED-MULTIPURPOSE"]);
    let errors: Vec<&str> = findings
        .lines()
        .filter(|l| l.contains("(ERROR)") || l.contains("(WARNING)") || l.contains("(FATAL)"))
        .collect();
    assert_eq!(errors.len(), 2, "{findings}");
    assert!(findings.contains("certificate_validity_period_exceeds_825_days"), "{findings}");
    assert!(findings.contains("certificate_policies_extension_missing"), "{findings}");
    // Three years: still valid in 1094 days, expired in 1096.
    let in_days = |days: u64| {
        ca.tool("openssl", &["x509", "-in", "private.pem", "-noout", "-checkend", &(days * 86_400).to_string()])
    };
    assert_eq!(in_days(1094).code, 0);
    assert_eq!(in_days(1096).code, 1);
}

#[test]
fn serials_are_unique_random_and_recorded() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let mut serials = std::collections::HashSet::new();
    for i in 0..5 {
        let cert = ca.issue_csr(&csr, "strict", &format!("c{i}.pem"));
        let serial = ca.serial_of(&cert);
        assert!(serial.len() >= 16, "serial {serial} has fewer than 64 bits");
        assert!(serials.insert(serial));
    }
    assert_eq!(ca.audit_records(), 6);
}

#[test]
fn p12_delivery_in_both_formats_opens_in_openssl() {
    let ca = Ca::new("p384");
    for (key, format) in [("rsa3072", "modern"), ("p256", "compat"), ("p384", "modern")] {
        let out = format!("{key}-{format}.p12");
        ca.issue_p12(key, format, &out).ok();
        let mut args = vec!["pkcs12", "-in", out.as_str(), "-passin", "file:p12pass", "-nodes"];
        if format == "compat" {
            // No -legacy: OpenSSL 3 opens 3DES and the SHA-1 MAC with its default provider.
            // -info names the algorithms on stderr.
            args.push("-info");
        }
        let run = ca.tool("openssl", &args).ok();
        let text = String::from_utf8(run.stdout).unwrap();
        assert!(
            text.contains("PRIVATE KEY-----") && text.matches("BEGIN CERTIFICATE").count() == 3,
            "{key}/{format}: {text}"
        );
        if format == "compat" {
            assert!(run.stderr.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{}", run.stderr);
        }
    }
}

#[test]
fn p12_with_weak_password_issues_nothing() {
    let ca = Ca::new("p384");
    std::fs::write(ca.path("weak"), "jane.doe1234\n").unwrap();
    let run = ca.issue_p12_with("weak", "rsa3072", "modern", "x.p12");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("password"), "{}", run.stderr);
    assert!(!ca.path("x.p12").exists());
    assert!(!ca.files().iter().any(|f| f.contains("x.p12")), "{:?}", ca.files());
    assert_eq!(ca.audit_records(), 1);
}
