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
        ("p256", ca.csr("p256", KeyKind::P256)),
        ("p384", ca.csr("p384", KeyKind::P384)),
        ("rsa2048", ca.csr("rsa2048", KeyKind::Rsa2048)),
        ("rsa3072", ca.csr("rsa3072", KeyKind::Rsa3072)),
        ("ed25519", ca.csr("ed25519", KeyKind::Ed25519)),
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
    let csr = ca.csr("k", KeyKind::Rsa3072);
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
    let csr = ca.csr("k", KeyKind::P256);
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

/// pkilint, in one Python process for many files: the interpreter of the
/// `lint_cabf_smime_cert` script on the PATH (or `CERTDESK_PKILINT`), calling its `main`
/// once per file (a process per file costs half a second). ERROR and FATAL only.
/// Returns each file's findings (empty: clean).
fn pkilint_batch(dir: &std::path::Path, files: &[std::path::PathBuf]) -> Vec<String> {
    let script = pkilint();
    let script = if script.contains('/') {
        std::path::PathBuf::from(script)
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(&script))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{script} is needed by this test (.ci/run installs pkilint)"))
    };
    let first = std::fs::read_to_string(&script).unwrap();
    let python = first.lines().next().unwrap().trim_start_matches("#!").trim().to_string();
    let driver = r#"
import contextlib, io, sys
from pkilint.bin.lint_cabf_smime_cert import main
for path in sys.argv[1:]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main(["lint", "-d", "-s", "ERROR", path])
    except BaseException as e:
        out.write("FATAL: pkilint raised %r" % (e,))
    print("=== " + path)
    print(out.getvalue().strip())
"#;
    std::fs::write(dir.join("pkilint-batch.py"), driver).unwrap();
    let mut args = vec!["pkilint-batch.py".to_string()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = tool(&python, &args, dir);
    assert_eq!(run.code, 0, "pkilint batch failed: {}", run.stderr);
    let text = String::from_utf8(run.stdout).unwrap();
    let mut out = Vec::new();
    for file in files {
        let marker = format!("=== {}\n", file.to_str().unwrap());
        let start = text.find(&marker).unwrap_or_else(|| panic!("no pkilint result for {file:?}")) + marker.len();
        let rest = &text[start..];
        let end = rest.find("\n=== ").unwrap_or(rest.len());
        out.push(rest[..end].trim().to_string());
    }
    out
}

/// What a case of the differential test expects of certdesk.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Signed (and then pkilint must find no ERROR or FATAL).
    Issued,
    /// Refused, with this in the message.
    Refused(&'static str),
}

/// An awkward input: what it is, (email, given name, surname), the expectation for the
/// sponsor profiles and for the mailbox profiles.
type Awkward = (&'static str, (String, String, String), Expect, Expect);

struct Case {
    ca: usize,
    label: String,
    profile: &'static str,
    key: &'static str,
    email: String,
    given: String,
    surname: String,
    expect: Expect,
}

enum Outcome {
    Issued(std::path::PathBuf),
    Refused { code: i32, message: String },
}

fn attempt(ca: &Ca, case: &Case, out: &str) -> Outcome {
    let csr = format!("{}.csr", case.key);
    let run = ca.run(&[
        "issue",
        "--csr",
        &csr,
        "--email",
        &case.email,
        "--given-name",
        &case.given,
        "--surname",
        &case.surname,
        "--profile",
        case.profile,
        "--out",
        out,
    ]);
    if run.code == 0 {
        Outcome::Issued(ca.path(out))
    } else {
        assert!(!ca.path(out).exists(), "{}: refused but left {out}", case.label);
        Outcome::Refused { code: run.code, message: run.stderr.trim().to_string() }
    }
}

/// Issue 12: for every BR profile x subscriber key x CA key, and for awkward inputs
/// (long, non-ASCII, upper-case, +tagged, IDN, internal names, HTML entities,
/// placeholders, a P-521 key, internal base URLs), certdesk either refuses with one
/// clear sentence and records nothing, or pkilint finds no ERROR or FATAL in what it
/// signed. The matrix is printed (`--nocapture`).
#[test]
fn differential_against_pkilint_refused_or_clean() {
    const PROFILES: [&str; 4] = ["strict", "multipurpose", "mailbox-strict", "mailbox-multipurpose"];
    const KEYS: [(&str, KeyKind); 6] = [
        ("p256", KeyKind::P256),
        ("p384", KeyKind::P384),
        ("p521", KeyKind::P521),
        ("rsa2048", KeyKind::Rsa2048),
        ("rsa3072", KeyKind::Rsa3072),
        ("ed25519", KeyKind::Ed25519),
    ];
    // CA 0: P-384, CA 1: RSA-4096 (both public base URLs); CA 2: an organisation name
    // with non-ASCII letters and an LEI; CA 3: 42 characters, the longest that fits.
    let long_org = format!("Hochschule {}", "x".repeat(31));
    assert_eq!(long_org.chars().count(), 42);
    let cas: Vec<Ca> = std::thread::scope(|s| {
        let inits: Vec<Vec<&str>> = vec![
            vec!["--key", "p384"],
            vec!["--key", "rsa4096"],
            vec!["--org", "Universität zu Köln", "--org-id", "LEIXG-5493001KJTIIGC8Y1R12"],
            vec!["--org", &long_org],
        ];
        let handles: Vec<_> = inits.into_iter().map(|args| s.spawn(move || Ca::with_init_args(&args))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ca in &cas {
        for (name, newkey) in KEYS {
            let csr = ca.csr(name, newkey);
            assert!(csr.exists());
        }
    }

    let mut cases: Vec<Case> = Vec::new();
    let person = |email: &str, given: &str, surname: &str| (email.to_string(), given.to_string(), surname.to_string());
    let jane = person("jane.doe@example.org", "Jane", "Doe");
    for ca in 0..2 {
        for profile in PROFILES {
            for (key, _) in KEYS {
                let expect = if key == "p521" { Expect::Refused("P-521") } else { Expect::Issued };
                let (email, given, surname) = jane.clone();
                let label = format!("CA {} / {profile} / {key}", ["p384", "rsa4096"][ca]);
                cases.push(Case { ca, label, profile, key, email, given, surname, expect });
            }
        }
    }
    let g32 = "G".repeat(32);
    let s32 = "S".repeat(32);
    let s31 = "S".repeat(31);
    let local60 = format!("{}@example.org", "l".repeat(60));
    let umlauts_given = "Ü".repeat(32);
    let umlauts_surname = "ö".repeat(31);
    // (what, email, given, surname, expectation for sponsor profiles, for mailbox profiles)
    let awkward: Vec<Awkward> = vec![
        ("given+surname 65 chars", person("a@example.org", &g32, &s32), Expect::Refused("commonName"), Expect::Issued),
        ("given+surname 64 chars", person("a@example.org", &g32, &s31), Expect::Issued, Expect::Issued),
        (
            "non-ASCII 64 chars",
            person("a@example.org", &umlauts_given, &umlauts_surname),
            Expect::Issued,
            Expect::Issued,
        ),
        ("mailbox 72 chars", person(&local60, "Jane", "Doe"), Expect::Issued, Expect::Refused("commonName")),
        (
            "non-ASCII names",
            person("j@example.org", "Jürgen-Ólafur", "Müller-Lüdenscheidt"),
            Expect::Issued,
            Expect::Issued,
        ),
        ("CJK names", person("li@example.org", "小龙", "李"), Expect::Issued, Expect::Issued),
        ("Arabic names", person("m@example.org", "محمد", "علي"), Expect::Issued, Expect::Issued),
        ("apostrophe, AT&T", person("o@example.org", "Seán", "O'Brien AT&T"), Expect::Issued, Expect::Issued),
        ("upper-case address", person("Jane.Doe@Example.ORG", "Jane", "Doe"), Expect::Issued, Expect::Issued),
        ("+tagged address", person("jane.doe+smime@example.org", "Jane", "Doe"), Expect::Issued, Expect::Issued),
        ("odd local part", person("o'hara_{x}=1@example.org", "Jane", "Doe"), Expect::Issued, Expect::Issued),
        ("IDN domain (xn--)", person("jane@xn--bcher-kva.de", "Jane", "Doe"), Expect::Issued, Expect::Issued),
        (
            "IDN domain (Unicode)",
            person("jane@bücher.de", "Jane", "Doe"),
            Expect::Refused("e-mail"),
            Expect::Refused("e-mail"),
        ),
        (
            "mailbox in .internal",
            person("a@corp.internal", "A", "B"),
            Expect::Refused("internal"),
            Expect::Refused("internal"),
        ),
        (
            "mailbox in .local",
            person("a@host.local", "A", "B"),
            Expect::Refused("internal"),
            Expect::Refused("internal"),
        ),
        (
            "mailbox in .example",
            person("a@mail.example", "A", "B"),
            Expect::Refused("internal"),
            Expect::Refused("internal"),
        ),
        (
            "mailbox in .invalid",
            person("a@mail.invalid", "A", "B"),
            Expect::Refused("internal"),
            Expect::Refused("internal"),
        ),
        ("mailbox in .test", person("a@mail.test", "A", "B"), Expect::Refused("internal"), Expect::Refused("internal")),
        (
            "mailbox in .corp",
            person("a@mail.corp", "A", "B"),
            Expect::Refused("top-level"),
            Expect::Refused("top-level"),
        ),
        ("mailbox at localhost", person("a@localhost", "A", "B"), Expect::Refused("e-mail"), Expect::Refused("e-mail")),
        (
            "HTML entity",
            person("a@example.org", "Anna", "Smith &amp; Sons"),
            Expect::Refused("HTML"),
            Expect::Refused("HTML"),
        ),
        (
            "numeric entity",
            person("a@example.org", "Anna", "A&#38;B"),
            Expect::Refused("HTML"),
            Expect::Refused("HTML"),
        ),
        (
            "'.' as a name",
            person("a@example.org", ".", "Doe"),
            Expect::Refused("no letter"),
            Expect::Refused("no letter"),
        ),
        (
            "'-' as a name",
            person("a@example.org", "Jane", "-"),
            Expect::Refused("no letter"),
            Expect::Refused("no letter"),
        ),
    ];
    // The awkward inputs under one profile of each kind (the multipurpose twins differ in
    // EKU and policy OID only, which the matrix above covers).
    for (what, (email, given, surname), sponsor, mailbox) in &awkward {
        for profile in ["strict", "mailbox-strict"] {
            let expect = if profile.starts_with("mailbox") { *mailbox } else { *sponsor };
            let label = format!("{profile} / {what}: {email} {given:?} {surname:?}");
            cases.push(Case {
                ca: 0,
                label,
                profile,
                key: "p256",
                email: email.clone(),
                given: given.clone(),
                surname: surname.clone(),
                expect,
            });
        }
    }
    for (ca, what) in [(2, "org Universität zu Köln, LEI"), (3, "org of 42 characters")] {
        for profile in PROFILES {
            let (email, given, surname) = jane.clone();
            let label = format!("{profile} / {what}");
            cases.push(Case { ca, label, profile, key: "rsa3072", email, given, surname, expect: Expect::Issued });
        }
    }

    // Each CA's cases in a thread of their own (the two cores pay off on the RSA CA).
    let outcomes: Vec<(usize, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cas.len())
            .map(|ca_index| {
                let ca = &cas[ca_index];
                let mine: Vec<(usize, &Case)> = cases.iter().enumerate().filter(|(_, c)| c.ca == ca_index).collect();
                s.spawn(move || {
                    mine.into_iter().map(|(i, c)| (i, attempt(ca, c, &format!("case{i}.pem")))).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let issued: Vec<std::path::PathBuf> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Issued(path) => Some(path.clone()),
            Outcome::Refused { .. } => None,
        })
        .collect();
    let findings = pkilint_batch(cas[0].dir.path(), &issued);

    let mut problems = Vec::new();
    let mut lines = Vec::new();
    let (mut clean, mut refused) = (0, 0);
    for (i, outcome) in &outcomes {
        let case = &cases[*i];
        let line = match outcome {
            Outcome::Issued(path) => {
                let found = &findings[issued.iter().position(|p| p == path).unwrap()];
                if found.is_empty() {
                    clean += 1;
                } else {
                    problems.push(format!("{}: signed, but pkilint reports:\n{found}", case.label));
                }
                if let Expect::Refused(_) = case.expect {
                    problems.push(format!("{}: signed, but should have been refused", case.label));
                }
                format!("{} -> pkilint {}", case.label, if found.is_empty() { "clean" } else { "ERROR" })
            }
            Outcome::Refused { code, message } => {
                refused += 1;
                let clear = message.lines().count() == 1 && message.starts_with("certdesk: ") && [1, 2].contains(code);
                if !clear {
                    problems.push(format!("{}: refused unclearly (exit {code}): {message}", case.label));
                }
                match case.expect {
                    Expect::Issued => {
                        problems.push(format!("{}: refused, but should be issued: {message}", case.label))
                    }
                    Expect::Refused(needle) if !message.contains(needle) => {
                        problems.push(format!("{}: refused without naming {needle:?}: {message}", case.label))
                    }
                    Expect::Refused(_) => {}
                }
                format!("{} -> refused (exit {code}): {}", case.label, message.trim_start_matches("certdesk: "))
            }
        };
        lines.push(line);
    }
    println!("pkilint differential matrix ({} cases):", lines.len());
    for line in &lines {
        println!("  {line}");
    }
    println!("{clean} issued and pkilint clean, {refused} refused");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Refusals recorded nothing: the audit log holds init and the issued certificates.
    for (index, ca) in cas.iter().enumerate() {
        let signed = outcomes.iter().filter(|(i, o)| cases[*i].ca == index && matches!(o, Outcome::Issued(_))).count();
        assert_eq!(ca.audit_records(), 1 + signed, "CA {index}");
    }
}

/// Issue 12: the base URL goes into every certificate's CRL DP and AIA. Internal names
/// (localhost, IP addresses, .local, .internal, .test, .example, .invalid, single
/// labels, unknown TLDs) make the BR profiles refuse with the fix in the message, while
/// the private profile still issues; public ones (IDN, port, path, upper case) are
/// clean under pkilint. The base URL is changed in certdesk.toml between attempts.
#[test]
fn internal_base_urls_refuse_br_profiles_and_public_ones_are_clean() {
    let ca = Ca::new("p384");
    ca.csr("p256", KeyKind::P256);
    let config_path = ca.path("data/certdesk.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let internal = [
        "http://localhost:8080",
        "http://127.0.0.1:8080",
        "http://10.0.0.5",
        "http://192.168.1.10:8080",
        "http://[::1]:8080",
        "http://pki",
        "http://pki.local",
        "http://pki.internal",
        "http://pki.localhost",
        "http://pki.test",
        "http://pki.example",
        "http://pki.invalid",
        "http://pki.corp",
    ];
    let public = ["http://pki.xn--bcher-kva.de", "http://PKI.Example.ORG:8080/certdesk", "http://ca.example.com/pki/"];
    let mut issued = Vec::new();
    let mut lines = Vec::new();
    let mut signed = 0;
    for (n, url) in internal.iter().chain(public.iter()).enumerate() {
        let config = original.replace("base_url = \"http://pki.example.org\"", &format!("base_url = \"{url}\""));
        assert_ne!(config, original);
        std::fs::write(&config_path, config).unwrap();
        for profile in ["strict", "mailbox-strict", "private"] {
            let out = format!("u{n}-{profile}.pem");
            let run = ca.run(&[
                "issue",
                "--csr",
                "p256.csr",
                "--email",
                "jane.doe@example.org",
                "--given-name",
                "Jane",
                "--surname",
                "Doe",
                "--profile",
                profile,
                "--out",
                &out,
            ]);
            let is_internal = internal.contains(url);
            if is_internal && profile != "private" {
                assert_eq!(run.code, 2, "{url} {profile}: {}", run.stderr);
                assert!(
                    run.stderr.contains("public base URL") && run.stderr.trim().lines().count() == 1,
                    "{}",
                    run.stderr
                );
                assert!(!ca.path(&out).exists());
                lines.push(format!("{url} / {profile} -> refused: {}", run.stderr.trim()));
            } else {
                assert_eq!(run.code, 0, "{url} {profile}: {}", run.stderr);
                signed += 1;
                if profile == "private" {
                    lines.push(format!("{url} / {profile} -> issued (private profile, not BR: not linted)"));
                } else {
                    issued.push((format!("{url} / {profile}"), ca.path(&out)));
                }
            }
        }
    }
    let paths: Vec<std::path::PathBuf> = issued.iter().map(|(_, p)| p.clone()).collect();
    let findings = pkilint_batch(ca.dir.path(), &paths);
    for ((label, _), found) in issued.iter().zip(&findings) {
        assert!(found.is_empty(), "{label}: pkilint reports\n{found}");
        lines.push(format!("{label} -> pkilint clean"));
    }
    println!("base URL matrix:");
    for line in &lines {
        println!("  {line}");
    }
    assert_eq!(ca.audit_records(), 1 + signed);
}

/// Issue 13: `init --key rsa4096 --rsa-pss`: the root, the issuing CA, certificates and
/// CRLs are signed with RSASSA-PSS in the encoding BR 7.1.3.2 lists; OpenSSL verifies
/// them and pkilint finds nothing. PSS is refused for a P-384 CA.
#[test]
fn an_rsa_pss_ca_signs_in_the_br_encoding() {
    let ca = Ca::with_init_args(&["--key", "rsa4096", "--rsa-pss"]);
    ca.split_chain();
    let csr = ca.csr("k", KeyKind::Rsa3072);
    let cert = ca.issue_csr(&csr, "strict", "leaf.pem");
    ca.tool(
        "openssl",
        &["verify", "-x509_strict", "-CAfile", "chain.pem", "-purpose", "smimesign", cert.to_str().unwrap()],
    )
    .ok();
    for file in ["leaf.pem", "issuing.pem"] {
        let der = ca.tool("openssl", &["x509", "-in", file, "-outform", "DER"]).ok().stdout;
        assert!(hex::encode(&der).contains(
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120"
        ), "{file} is not signed with RSASSA-PSS in the BR encoding");
    }
    let findings = pkilint_findings(ca.dir.path(), "leaf.pem");
    assert!(findings.trim().is_empty(), "pkilint: {findings}");
    ca.run(&["crl", "--new", "--out", "c.crl"]).ok();
    ca.tool("openssl", &["crl", "-inform", "DER", "-in", "c.crl", "-noout", "-CAfile", "chain.pem", "-verify"]).ok();
    let refused = certdesk_in(
        ca.dir.path(),
        &["--data", "other", "--passphrase-file", "pass", "init", "--org", "X", "--country", "DE", "--rsa-pss"],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("--key rsa4096"), "{}", refused.stderr);
}
