//! NIST PKITS signed messages through `certdesk smime verify` (issue 12): a differential
//! test against `pki::path`, and the PKITS verdicts themselves.
//!
//! PKITS ships one signed message per test (`smime/Signed<Test>.eml`); each carries the
//! certificates and every CRL its path needs. For every message, `smime verify
//! --revocation require --offline` with only the trust anchor and what the message
//! carries must give the verdict of `pki::path::validate` + `check_path_crls` with all
//! PKITS certificates and CRL files, and, for the cases whose initial inputs are the
//! defaults `smime verify` uses, the verdict the PKITS document expects.

use std::collections::BTreeMap;
use std::path::PathBuf;

use certdesk_pki::path::{check_path_crls, validate, RevocationStatus};
use certdesk_smime::mime::{self, SmimeBody};
use certdesk_smime::signed_data;

use super::common::{certdesk_in, tool};

/// Cases `smime verify` does not pass, and why; a case that starts passing fails the test
/// until it is taken off this list.
const KNOWN_FAILURES: &[(&str, &str)] = &[
    ("4.1.4", "DSA signatures are not supported (aws-lc-rs verifies no DSA): fails closed"),
    ("4.1.5", "DSA signatures and DSA parameter inheritance are not supported: fails closed"),
];

fn pkits() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pki/tests/data/third-party/pkits")
}

fn read_dir(sub: &str) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(pkits().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

/// The PKITS document's expected verdict per end entity, for the cases run with the
/// default initial inputs (no policy set, no explicit policy, no inhibits): (id, valid).
fn default_input_cases() -> BTreeMap<String, (String, bool)> {
    let text = std::fs::read_to_string(pkits().join("../../pkits-cases.txt")).unwrap();
    let mut cases = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [id, ee, verdict] = words.as_slice() {
            cases.entry((*ee).to_string()).or_insert(((*id).to_string(), *verdict == "valid"));
        }
    }
    cases
}

/// The signer's certificate of a signed message, as the library reads it; `None` for the
/// DSA messages (SHA-1 with DSA, which certdesk does not verify).
fn signer_of(message: &[u8]) -> Option<Vec<u8>> {
    let Ok(SmimeBody::MultipartSigned(parts)) = mime::parse(message) else { panic!("not multipart/signed") };
    match signed_data::verify(&parts.signature, Some(&parts.signed), &[]) {
        Ok(verified) => Some(verified.signatures[0].signer_certificate().to_vec()),
        Err(signed_data::SignedDataError::UnsupportedAlgorithm { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn pkits_signed_messages_get_the_verdict_of_pki_path() {
    let certs = read_dir("certs");
    let crls: Vec<Vec<u8>> = read_dir("crls").into_values().collect();
    let pool: Vec<Vec<u8>> = certs.values().cloned().collect();
    let anchor = certs["TrustAnchorRootCertificate.crt"].clone();
    let cases = default_input_cases();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ta.der"), &anchor).unwrap();
    tool("openssl", &["x509", "-inform", "DER", "-in", "ta.der", "-out", "ta.pem"], dir.path()).ok();
    let messages = read_dir("smime");
    assert!(messages.len() > 200, "the PKITS messages are missing");

    let now = time::OffsetDateTime::now_utc();
    let (mut differ, mut wrong, mut lines) = (Vec::new(), Vec::new(), Vec::new());
    let (mut agreed, mut as_expected, mut checked_against_pkits) = (0, 0, 0);
    for file in messages.keys() {
        let test = file.strip_prefix("Signed").and_then(|f| f.strip_suffix(".eml")).unwrap();
        // The end entity is the signer (the message names do not always match the
        // certificates' names); by name for what certdesk cannot verify.
        let (ee, leaf) = match signer_of(&messages[file]) {
            Some(signer) => certs.iter().find(|(_, der)| **der == signer),
            None => certs.iter().find(|(name, _)| name.eq_ignore_ascii_case(&format!("{test}EE.crt"))),
        }
        .map(|(name, der)| (name.trim_end_matches(".crt").to_string(), der.clone()))
        .unwrap_or_else(|| panic!("{file}: the signer is not a PKITS certificate"));
        let by_path =
            validate(&leaf, &pool, std::slice::from_ref(&anchor), now).map_err(|e| e.to_string()).and_then(|path| {
                match check_path_crls(&path, &crls, &pool, now) {
                    Ok(RevocationStatus::NotRevoked) => Ok(()),
                    Ok(RevocationStatus::Unknown) => Err("revocation status unknown".to_string()),
                    Err(e) => Err(e.to_string()),
                }
            });
        let message = pkits().join("smime").join(file);
        let run = certdesk_in(
            dir.path(),
            &[
                "smime",
                "verify",
                "--trust",
                "ta.pem",
                "--revocation",
                "require",
                "--offline",
                "--json",
                "--in",
                message.to_str().unwrap(),
                "--out",
                "content.txt",
            ],
        );
        assert!(run.code == 0 || run.code == 1, "{file}: exit {}: {}", run.code, run.stderr);
        let by_smime = run.code == 0;
        // A refused message writes nothing.
        assert_eq!(dir.path().join("content.txt").exists(), by_smime, "{file}");
        let _ = std::fs::remove_file(dir.path().join("content.txt"));

        let verdict = |valid: bool| if valid { "valid" } else { "invalid" };
        if by_smime == by_path.is_ok() {
            agreed += 1;
        } else {
            differ.push(format!("{test}: smime verify {}, pki::path {by_path:?}", run.stderr.trim()));
        }
        let expected = cases.get(&ee);
        let known = expected.and_then(|(id, _)| KNOWN_FAILURES.iter().find(|(k, _)| k == id));
        if let Some((id, valid)) = expected {
            checked_against_pkits += 1;
            match (by_smime == *valid, known) {
                (true, None) => as_expected += 1,
                (false, Some(_)) => {}
                (true, Some(_)) => wrong.push(format!("{id} {test} now passes: take it off KNOWN_FAILURES")),
                (false, None) => wrong.push(format!(
                    "{id} {test}: PKITS says {}, smime verify: {}",
                    verdict(*valid),
                    run.stderr.trim()
                )),
            }
        }
        lines.push(format!(
            "{:8} {:60} smime {:7} path {:7} pkits {}",
            expected.map_or("-", |(id, _)| id.as_str()),
            test,
            verdict(by_smime),
            verdict(by_path.is_ok()),
            expected.map_or("(other inputs)", |(_, v)| verdict(*v))
        ));
    }
    eprintln!("{}", lines.join("\n"));
    eprintln!(
        "PKITS messages: {} in all; smime verify and pki::path agree on {agreed}; {as_expected} of {} with default \
         inputs as PKITS expects, {} known failures",
        messages.len(),
        checked_against_pkits,
        KNOWN_FAILURES.len()
    );
    assert!(differ.is_empty(), "smime verify and pki::path differ on {}:\n{}", differ.len(), differ.join("\n"));
    assert!(wrong.is_empty(), "{} PKITS verdicts wrong:\n{}", wrong.len(), wrong.join("\n"));
}

fn pkits_file(sub: &str, name: &str) -> String {
    pkits().join(sub).join(name).to_str().unwrap().to_string()
}

/// `smime verify --revocation require --offline` of `message` with the PKITS trust
/// anchor and `extra` arguments, in `dir` (which holds ta.pem).
fn verify_pkits(dir: &std::path::Path, message: &str, extra: &[&str]) -> super::common::Run {
    let mut args = vec!["smime", "verify", "--trust", "ta.pem", "--revocation", "require", "--offline"];
    args.extend_from_slice(&["--in", message, "--out", "content.txt"]);
    args.extend_from_slice(extra);
    certdesk_in(dir, &args)
}

fn anchor_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let anchor = pkits_file("certs", "TrustAnchorRootCertificate.crt");
    tool("openssl", &["x509", "-inform", "DER", "-in", &anchor, "-out", "ta.pem"], dir.path()).ok();
    dir
}

/// Issue 12, found 1: PKITS 4.4.2 with its CRLs given as files (as the issue ran it) is
/// refused, naming the revoked CA, and writes nothing.
#[test]
fn a_revoked_intermediate_ca_is_refused_with_the_crls_given_as_files() {
    let dir = anchor_dir();
    let (good, sub) = (pkits_file("crls", "GoodCACRL.crl"), pkits_file("crls", "RevokedsubCACRL.crl"));
    let message = pkits_file("smime", "SignedInvalidRevokedCATest2.eml");
    let run = verify_pkits(dir.path(), &message, &["--crl", &good, "--crl", &sub]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("CN=Revoked subCA") && run.stderr.contains("was revoked"), "{}", run.stderr);
    assert!(!dir.path().join("content.txt").exists());
}

/// The PKITS 4.1.1 message with the CRLs it carries removed (they are outside what is
/// signed), so that only `--crl` files are at hand.
fn without_crls(dir: &std::path::Path) -> String {
    use der::{Decode, Encode, Tagged};
    let text = std::fs::read_to_string(pkits_file("smime", "SignedAllCertificatesSamePolicyTest1.eml")).unwrap();
    let start = text.find("filename=\"smime.p7s\"").unwrap();
    let body_start =
        start + text[start..].find("\r\n\r\n").map_or_else(|| text[start..].find("\n\n").unwrap() + 2, |i| i + 4);
    let body_end =
        body_start + text[body_start..].find("\n\n").or_else(|| text[body_start..].find("\r\n\r\n")).unwrap();
    let b64: String = text[body_start..body_end].split_whitespace().collect();
    let p7s = super::common::tool_stdin("openssl", &["base64", "-d", "-A"], dir, b64.as_bytes()).ok().stdout;
    let info = Vec::<der::Any>::from_der(&p7s).unwrap();
    let fields = Vec::<der::Any>::from_der(info[1].value()).unwrap();
    let crls_tag = der::Tag::ContextSpecific { constructed: true, number: der::TagNumber(1) };
    assert!(fields.iter().any(|f| f.tag() == crls_tag), "the message carries CRLs");
    let kept: Vec<der::Any> = fields.into_iter().filter(|f| f.tag() != crls_tag).collect();
    let signed_data = der::Any::new(info[1].tag(), kept.to_der().unwrap()).unwrap();
    let p7s = vec![info[0].clone(), signed_data].to_der().unwrap();
    let b64 = super::common::tool_stdin("openssl", &["base64"], dir, &p7s).ok().stdout;
    let rebuilt = format!("{}{}{}", &text[..body_start], String::from_utf8(b64).unwrap().trim_end(), &text[body_end..]);
    std::fs::write(dir.join("nocrls.eml"), rebuilt).unwrap();
    dir.join("nocrls.eml").to_str().unwrap().to_string()
}

/// A CA certificate that names no CRL distribution point and no OCSP responder is
/// checked against a CRL of its issuer when one is at hand; only when none is may
/// `--revocation require` accept it, and the verdict says so. The signer itself always
/// needs a status.
#[test]
fn a_ca_is_checked_against_any_crl_at_hand_and_the_verdict_says_when_none_is() {
    let dir = anchor_dir();
    let message = without_crls(dir.path());
    let (good, root) = (pkits_file("crls", "GoodCACRL.crl"), pkits_file("crls", "TrustAnchorRootCRL.crl"));

    let run = verify_pkits(dir.path(), &message, &["--crl", &good]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "CA CN=Good CA,O=Test Certificates 2011,C=US: publishes no revocation information and no CRL at hand covers it"
        ),
        "{}",
        run.stderr
    );

    let run = verify_pkits(dir.path(), &message, &["--crl", &good, "--crl", &root]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("CA CN=Good CA,O=Test Certificates 2011,C=US not revoked"), "{}", run.stderr);
    let _ = std::fs::remove_file(dir.path().join("content.txt"));

    // Without the signer's CRL the signer's status is unknown: refused.
    let run = verify_pkits(dir.path(), &message, &["--crl", &root]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("revocation status unknown"), "{}", run.stderr);
    assert!(!dir.path().join("content.txt").exists());
}
