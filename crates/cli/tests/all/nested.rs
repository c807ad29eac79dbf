//! Sign-then-encrypt (what Thunderbird and Outlook send when both are on): the
//! decrypted content is a signed message that verifies, both ways with OpenSSL.

use super::common::*;

#[test]
fn sign_then_encrypt_both_ways_with_openssl() {
    let ca = Ca::new("p384");
    ca.split_chain();
    ca.issue_p12("rsa3072", "modern", "jane.p12").ok();
    ca.jane_pem(true);
    std::fs::write(ca.path("note.txt"), "From: jane.doe@example.org\nSubject: note\n\nThe plan, signed and sealed.\n")
        .unwrap();
    let smime = |args: &[&str]| {
        let mut all = vec!["smime"];
        all.extend_from_slice(args);
        certdesk_in(ca.dir.path(), &all)
    };

    // Ours: sign, then encrypt; OpenSSL decrypts and verifies the inner signature.
    smime(&["sign", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "note.txt", "--out", "s.eml"]).ok();
    smime(&["encrypt", "--to", "jane.pem", "--in", "s.eml", "--out", "se.eml"]).ok();
    let run = ca.tool(
        "openssl",
        &["cms", "-decrypt", "-in", "se.eml", "-recip", "jane.pem", "-inkey", "jane.key", "-out", "inner.eml"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = ca.tool("openssl", &["smime", "-verify", "-in", "inner.eml", "-CAfile", "root.pem", "-out", "plain.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_to_string(ca.path("plain.txt")).unwrap().contains("signed and sealed"));
    // And we: decrypt, then verify.
    smime(&["decrypt", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "se.eml", "--out", "ours.eml"]).ok();
    let run = smime(&["verify", "--trust", "root.pem", "--offline", "--in", "ours.eml", "--out", "ours.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_to_string(ca.path("ours.txt")).unwrap().contains("signed and sealed"));

    // OpenSSL's: sign, then encrypt; we decrypt and verify.
    ca.tool(
        "openssl",
        &[
            "smime",
            "-sign",
            "-in",
            "note.txt",
            "-signer",
            "jane.pem",
            "-inkey",
            "jane.key",
            "-certfile",
            "issuing.pem",
            "-out",
            "os.eml",
        ],
    )
    .ok();
    ca.tool("openssl", &["cms", "-encrypt", "-aes256", "-in", "os.eml", "-out", "ose.eml", "jane.pem"]).ok();
    smime(&["decrypt", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "ose.eml", "--out", "theirs.eml"])
        .ok();
    let run = smime(&["verify", "--trust", "root.pem", "--offline", "--in", "theirs.eml", "--out", "theirs.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_to_string(ca.path("theirs.txt")).unwrap().contains("signed and sealed"));
}
