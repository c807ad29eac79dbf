//! Issue 13: an offline root. The root key stays in a ceremony directory (here a file;
//! it may be a token); the online CA holds only the issuing and OCSP keys. Each step
//! is in the ceremony's chained transcript, which the online audit log imports once;
//! wrong certificates, foreign CRLs and a changed transcript are refused.

use super::common::*;

const ROOT_PASS: &str = "the root ceremony passphrase 2026";

fn audit_count(dir: &std::path::Path) -> usize {
    let run = certdesk_in(dir, &["--data", "online", "audit", "verify"]).ok();
    String::from_utf8(run.stdout).unwrap().split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn an_offline_root_signs_at_ceremonies_and_the_online_ca_works() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    std::fs::write(at.join("rootpass"), format!("{ROOT_PASS}\n")).unwrap();
    std::fs::write(at.join("pass"), format!("{PASSPHRASE}\n")).unwrap();
    let org = [
        "--org",
        "Example University",
        "--country",
        "DE",
        "--org-id",
        "VATDE-123456789",
        "--base-url",
        "http://pki.example.org",
    ];
    let ceremony = |args: &[&str]| {
        let mut all = vec!["--passphrase-file", "rootpass", "ceremony"];
        all.extend_from_slice(args);
        certdesk_in(at, &all)
    };
    let online = |args: &[&str]| {
        let mut all = vec!["--data", "online", "--passphrase-file", "pass"];
        all.extend_from_slice(args);
        certdesk_in(at, &all)
    };
    let mut create = vec!["create-root", "--dir", "root"];
    create.extend_from_slice(&org);
    let made = ceremony(&create).ok();
    assert!(String::from_utf8(made.stdout).unwrap().contains("ceremony.create-root"));
    let mut init = vec!["init", "--offline-root", "root/root.pem"];
    init.extend_from_slice(&org);
    online(&init).ok();
    assert!(!at.join("online/ca/root-key.pem").exists(), "a root key on the online machine");
    // Nothing works before the issuing CA certificate is installed, and it says why.
    let early = online(&["crl", "--out", "x.crl"]);
    assert_eq!(early.code, 2);
    assert!(early.stderr.contains("awaits its issuing CA certificate"), "{}", early.stderr);

    ceremony(&["sign-issuing", "--dir", "root", "--csr", "online/ca/issuing.csr", "--out", "issuing.pem"]).ok();
    // A certificate for another key (a second CA's CSR signed by mistake) is refused.
    let mut other_init =
        vec!["--data", "other", "--passphrase-file", "pass", "init", "--offline-root", "root/root.pem"];
    other_init.extend_from_slice(&org);
    certdesk_in(at, &other_init).ok();
    ceremony(&["sign-issuing", "--dir", "root", "--csr", "other/ca/issuing.csr", "--out", "wrong.pem"]).ok();
    let wrong = online(&["ca", "install-issuing", "--cert", "wrong.pem", "--root-crl", "root/root.crl"]);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("not for this CA's issuing key"), "{}", wrong.stderr);
    // A root CRL of another root is refused.
    let foreign = Ca::new("p384");
    std::fs::copy(foreign.path("data/ca/root.crl"), at.join("foreign.crl")).unwrap();
    let bad_crl = online(&["ca", "install-issuing", "--cert", "issuing.pem", "--root-crl", "foreign.crl"]);
    assert_eq!(bad_crl.code, 1, "{}", bad_crl.stderr);
    assert!(bad_crl.stderr.contains("not signed by this CA's root"), "{}", bad_crl.stderr);
    // A transcript with a record changed is refused.
    let transcript = std::fs::read_to_string(at.join("root/transcript.jsonl")).unwrap();
    std::fs::write(at.join("changed.jsonl"), transcript.replacen("ceremony.create-root", "ceremony.create-rooT", 1))
        .unwrap();
    std::fs::write(at.join("changed.jsonl"), {
        let mut lines: Vec<String> = transcript.lines().map(str::to_string).collect();
        lines[0] = lines[0].replace("\"key\":\"p384\"", "\"key\":\"p256\"");
        lines.join("\n") + "\n"
    })
    .unwrap();
    let changed = online(&[
        "ca",
        "install-issuing",
        "--cert",
        "issuing.pem",
        "--root-crl",
        "root/root.crl",
        "--transcript",
        "changed.jsonl",
    ]);
    assert_eq!(changed.code, 1, "{}", changed.stderr);
    assert!(changed.stderr.contains("does not follow the one before it"), "{}", changed.stderr);
    assert!(!at.join("online/ca/issuing.pem").exists(), "a refused install left a certificate");

    online(&[
        "ca",
        "install-issuing",
        "--cert",
        "issuing.pem",
        "--root-crl",
        "root/root.crl",
        "--transcript",
        "root/transcript.jsonl",
    ])
    .ok();
    // init, the three ceremony records (the mistaken signing too), the install.
    assert_eq!(audit_count(at), 5);

    // The online CA issues and revokes; OpenSSL checks the chain with both CRLs.
    online(&["ca", "chain", "--out", "chain.pem"]).ok();
    tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.key",
            "-subj",
            "/CN=x",
            "-out",
            "k.csr",
        ],
        at,
    )
    .ok();
    online(&[
        "issue",
        "--csr",
        "k.csr",
        "--out",
        "leaf.pem",
        "--email",
        "jane.doe@example.org",
        "--given-name",
        "Jane",
        "--surname",
        "Doe",
    ])
    .ok();
    online(&["crl", "--out", "issuing.crl", "--pem"]).ok();
    tool("openssl", &["crl", "-inform", "DER", "-in", "online/ca/root.crl", "-out", "root.crl.pem"], at).ok();
    tool(
        "openssl",
        &[
            "verify",
            "-crl_check_all",
            "-CAfile",
            "chain.pem",
            "-CRLfile",
            "issuing.crl",
            "-CRLfile",
            "root.crl.pem",
            "leaf.pem",
        ],
        at,
    )
    .ok();
    let findings = pkilint_findings(at, "leaf.pem");
    assert!(findings.trim().is_empty(), "pkilint: {findings}");

    // The root CRL is signed at a ceremony, not online.
    let online_root_crl = online(&["crl", "--root", "--new", "--out", "r.crl"]);
    assert_eq!(online_root_crl.code, 2);
    assert!(online_root_crl.stderr.contains("ceremony sign-root-crl"), "{}", online_root_crl.stderr);
    ceremony(&["sign-root-crl", "--dir", "root", "--out", "root2.crl"]).ok();
    let before = audit_count(at);
    online(&["ca", "install-root-crl", "root2.crl", "--transcript", "root/transcript.jsonl"]).ok();
    // Only the new ceremony record and the install are added.
    assert_eq!(audit_count(at), before + 2);
    let again = online(&["ca", "install-root-crl", "root2.crl"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("not above the installed one's"), "{}", again.stderr);
    let number =
        tool("openssl", &["crl", "-inform", "DER", "-in", "online/ca/root.crl", "-noout", "-crlnumber"], at).ok();
    assert!(String::from_utf8(number.stdout).unwrap().contains("0x02"));

    // A transcript rewritten after import (a record changed, the chain computed anew)
    // is refused: a later transcript must continue the imported one unchanged.
    ceremony(&["sign-root-crl", "--dir", "root", "--out", "root3.crl"]).ok();
    let genuine = std::fs::read_to_string(at.join("root/transcript.jsonl")).unwrap();
    let mut lines: Vec<String> = genuine.lines().map(str::to_string).collect();
    lines[2] = lines[2].replace("\"actor\":\"", "\"actor\":\"someone else, ");
    for i in 1..lines.len() {
        let prev = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, lines[i - 1].as_bytes()));
        let mut record: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        record["prev_sha256"] = serde_json::Value::String(prev);
        lines[i] = record.to_string();
    }
    std::fs::write(at.join("rewritten.jsonl"), lines.join("\n") + "\n").unwrap();
    let rewritten = online(&["ca", "install-root-crl", "root3.crl", "--transcript", "rewritten.jsonl"]);
    assert_eq!(rewritten.code, 1, "{}", rewritten.stderr);
    assert!(rewritten.stderr.contains("does not continue the one imported before"), "{}", rewritten.stderr);
    // A transcript that does not speak of this CRL is refused too.
    std::fs::write(at.join("old.jsonl"), &transcript).unwrap();
    let unrelated = online(&["ca", "install-root-crl", "root3.crl", "--transcript", "old.jsonl"]);
    assert_eq!(unrelated.code, 1, "{}", unrelated.stderr);
    assert!(unrelated.stderr.contains("no ceremony.sign-root-crl record"), "{}", unrelated.stderr);
    online(&["ca", "install-root-crl", "root3.crl", "--transcript", "root/transcript.jsonl"]).ok();
}
