//! `certdesk smime sign | verify` against OpenSSL, both ways, and the refusals.

use super::common::*;

/// A CA with Jane's .p12 (`jane.p12`), her key and certificate as PEM, and the root.
fn setup(key: &str) -> Ca {
    let ca = Ca::new("p384");
    ca.split_chain();
    ca.issue_p12(key, "modern", "jane.p12").ok();
    ca.jane_pem(true);
    std::fs::write(
        ca.path("msg.txt"),
        "From: Jane Doe <jane.doe@example.org>\nTo: bob@example.org\nSubject: Report\n\nHello Bob,\nall fine.\n",
    )
    .unwrap();
    ca
}

fn verify(ca: &Ca, input: &str, extra: &[&str]) -> Run {
    let mut args = vec!["smime", "verify", "--trust", "root.pem", "--in", input, "--out", "content.txt"];
    args.extend_from_slice(extra);
    certdesk_in(ca.dir.path(), &args)
}

#[test]
fn our_signatures_verify_in_openssl_and_in_certdesk() {
    for key in ["rsa3072", "p256", "p384"] {
        let ca = setup(key);
        for opaque in [false, true] {
            let mut args = vec![
                "smime",
                "sign",
                "--p12",
                "jane.p12",
                "--password-file",
                "p12pass",
                "--in",
                "msg.txt",
                "--out",
                "s.eml",
            ];
            if opaque {
                args.push("--opaque");
            }
            certdesk_in(ca.dir.path(), &args).ok();
            let run = ca.tool("openssl", &["smime", "-verify", "-in", "s.eml", "-CAfile", "root.pem", "-out", "o.txt"]);
            assert_eq!(run.code, 0, "{key} opaque={opaque}: {}", run.stderr);
            assert!(std::fs::read_to_string(ca.path("o.txt")).unwrap().contains("Hello Bob"));
            let ours = verify(&ca, "s.eml", &[]).ok();
            assert!(
                ours.stderr.contains("signature valid") && ours.stderr.contains("jane.doe@example.org"),
                "{}",
                ours.stderr
            );
            assert!(std::fs::read_to_string(ca.path("content.txt")).unwrap().contains("Hello Bob,\r\nall fine."));
        }
    }
}

#[test]
fn openssl_signatures_verify_in_certdesk() {
    let ca = setup("rsa3072");
    for extra in [&[][..], &["-nodetach"][..], &["-md", "sha512"][..], &["-noattr"][..], &["-nodetach", "-noattr"][..]]
    {
        let mut args = vec![
            "smime",
            "-sign",
            "-in",
            "msg.txt",
            "-signer",
            "jane.pem",
            "-inkey",
            "jane.key",
            "-certfile",
            "issuing.pem",
            "-text",
            "-out",
            "o.eml",
        ];
        args.extend_from_slice(extra);
        ca.tool("openssl", &args).ok();
        let run = verify(&ca, "o.eml", &[]);
        assert_eq!(run.code, 0, "{extra:?}: {}", run.stderr);
        // From stdin too (a signer without signed attributes signs the content itself,
        // which the streamed check reads back: the first part, or the kept CMS object),
        // writing the content to stdout.
        let message = std::fs::read(ca.path("o.eml")).unwrap();
        let run = tool_stdin(
            env!("CARGO_BIN_EXE_certdesk"),
            &["smime", "verify", "--trust", "root.pem"],
            ca.dir.path(),
            &message,
        );
        assert_eq!(run.code, 0, "{extra:?} from stdin: {}", run.stderr);
        assert!(String::from_utf8_lossy(&run.stdout).contains("all fine."), "{extra:?}");
        if extra == ["-noattr"] {
            // Tampered, from stdin: refused, nothing written.
            let text = String::from_utf8(message).unwrap().replace("all fine.", "all lost.");
            let run = tool_stdin(
                env!("CARGO_BIN_EXE_certdesk"),
                &["smime", "verify", "--trust", "root.pem"],
                ca.dir.path(),
                text.as_bytes(),
            );
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(run.stdout.is_empty());
        }
    }
    // CMS with RSA-PSS and streaming (indefinite-length BER).
    ca.tool(
        "openssl",
        &[
            "cms",
            "-sign",
            "-in",
            "msg.txt",
            "-signer",
            "jane.pem",
            "-inkey",
            "jane.key",
            "-certfile",
            "issuing.pem",
            "-keyopt",
            "rsa_padding_mode:pss",
            "-stream",
            "-out",
            "pss.eml",
        ],
    )
    .ok();
    let run = verify(&ca, "pss.eml", &[]);
    assert_eq!(run.code, 0, "PSS: {}", run.stderr);
}

#[test]
fn tampered_untrusted_revoked_and_misaddressed_messages_are_refused() {
    let ca = setup("p256");
    certdesk_in(
        ca.dir.path(),
        &["smime", "sign", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "msg.txt", "--out", "s.eml"],
    )
    .ok();
    let signed = std::fs::read_to_string(ca.path("s.eml")).unwrap();

    // Tampered content.
    std::fs::write(ca.path("t.eml"), signed.replace("all fine.", "all lost.")).unwrap();
    let run = verify(&ca, "t.eml", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!ca.path("content.txt").exists(), "content written for a bad signature");

    // --json: the verdict as one JSON object on stderr, nothing else there.
    let run = verify(&ca, "s.eml", &["--json", "--revocation", "off"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let verdict: serde_json::Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["signers"][0]["addresses"], serde_json::json!(["jane.doe@example.org"]));
    assert_eq!(verdict["signers"][0]["chain"].as_array().unwrap().len(), 3, "{verdict}");
    assert!(verdict["signers"][0]["signing_time"].is_string(), "{verdict}");
    std::fs::remove_file(ca.path("content.txt")).unwrap();
    let run = verify(&ca, "t.eml", &["--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let verdict: serde_json::Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!((verdict["valid"].clone(), verdict["exit"].clone()), (serde_json::json!(false), serde_json::json!(1)));
    assert!(verdict["reason"].as_str().unwrap().contains("NOT valid"), "{verdict}");
    assert!(!ca.path("content.txt").exists());

    // Another sender.
    std::fs::write(
        ca.path("f.eml"),
        signed.replace("From: Jane Doe <jane.doe@example.org>", "From: mallory@example.org"),
    )
    .unwrap();
    let run = verify(&ca, "f.eml", &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("mallory@example.org"), "{}", run.stderr);

    // An untrusted root.
    let other = Ca::new("p384");
    other.split_chain();
    std::fs::copy(other.path("root.pem"), ca.path("other-root.pem")).unwrap();
    let run = certdesk_in(ca.dir.path(), &["smime", "verify", "--trust", "other-root.pem", "--in", "s.eml"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no path to a trusted root"), "{}", run.stderr);

    // Revocation: soft warns without a CRL, require fails, a CRL listing the signer fails.
    let run = verify(&ca, "s.eml", &["--revocation", "require"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("revocation status unknown"), "{}", run.stderr);
    std::fs::remove_file(ca.path("content.txt")).ok();
    ca.run(&["crl", "--out", "before.crl"]).ok();
    // The signer's CRL alone: the issuing CA's status (the root's CRL) is still unknown.
    let run = verify(&ca, "s.eml", &["--revocation", "require", "--offline", "--crl", "before.crl"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("revocation status of CA CN=Example University S/MIME Issuing CA"), "{}", run.stderr);
    std::fs::remove_file(ca.path("content.txt")).ok();
    ca.run(&["crl", "--root", "--pem", "--out", "root-crl.pem"]).ok();
    let run = verify(&ca, "s.eml", &["--revocation", "require", "--crl", "before.crl", "--crl", "root-crl.pem"]).ok();
    assert!(
        run.stderr.contains("CA CN=Example University S/MIME Issuing CA,O=Example University,C=DE not revoked"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(ca.path("content.txt")).ok();
    let serial = ca.serial_of(&ca.path("jane.pem"));
    ca.run(&["revoke", &serial, "--reason", "key-compromise"]).ok();
    ca.run(&["crl", "--out", "after.crl"]).ok();
    let run = verify(&ca, "s.eml", &["--crl", "after.crl"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    assert!(!ca.path("content.txt").exists());

    // Garbage and truncation: unreadable input, exit 2.
    std::fs::write(ca.path("g.eml"), "Content-Type: text/plain\n\nhello").unwrap();
    assert_eq!(verify(&ca, "g.eml", &[]).code, 2);
    std::fs::write(ca.path("h.eml"), &signed[..signed.len() / 2]).unwrap();
    assert_eq!(verify(&ca, "h.eml", &[]).code, 2);
    // A wrong .p12 password signs nothing.
    std::fs::write(ca.path("wrong"), "not the password at all\n").unwrap();
    let run = certdesk_in(
        ca.dir.path(),
        &["smime", "sign", "--p12", "jane.p12", "--password-file", "wrong", "--in", "msg.txt", "--out", "x.eml"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!ca.path("x.eml").exists());
}

/// A certificate of the older kind keeps the mailbox only in the subject's emailAddress
/// (no subjectAltName): RFC 8550 section 3 says that address counts, so a message from
/// someone else is refused, and `keyring list` shows it. Certificates and signature are
/// OpenSSL's.
#[test]
fn the_subject_email_address_of_older_certificates_is_matched_against_from() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let openssl = |args: &[&str]| tool("openssl", args, cwd).ok();
    std::fs::write(
        cwd.join("ext.cnf"),
        "[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\n\
         [leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "root.key"]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        "root.key",
        "-subj",
        "/CN=Legacy Root",
        "-days",
        "30",
        "-extensions",
        "root",
        "-config",
        "ext.cnf",
        "-out",
        "root.pem",
    ]);
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-subj",
        "/CN=Jane Legacy/emailAddress=Jane@Legacy.Example",
        "-out",
        "leaf.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-days",
        "30",
        "-extfile",
        "ext.cnf",
        "-extensions",
        "leaf",
        "-out",
        "leaf.pem",
    ]);
    let text =
        String::from_utf8(tool("openssl", &["x509", "-in", "leaf.pem", "-noout", "-text"], cwd).ok().stdout).unwrap();
    assert!(!text.contains("Subject Alternative Name"), "{text}");
    for (name, from) in [("good", "jane@legacy.example"), ("forged", "mallory@example.org")] {
        std::fs::write(cwd.join(format!("{name}.txt")), "Hello.\n").unwrap();
        openssl(&[
            "cms",
            "-sign",
            "-in",
            &format!("{name}.txt"),
            "-signer",
            "leaf.pem",
            "-inkey",
            "leaf.key",
            "-text",
            "-from",
            from,
            "-subject",
            "hi",
            "-out",
            &format!("{name}.eml"),
        ]);
    }
    let verify = |name: &str| {
        certdesk_in(
            cwd,
            &["smime", "verify", "--trust", "root.pem", "--revocation", "off", "--in", &format!("{name}.eml")],
        )
    };
    let run = verify("good");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = verify("forged");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("the message is from mallory@example.org, but the certificate is for jane@legacy.example"),
        "{}",
        run.stderr
    );
    // The keyring shows the address too.
    let both = [std::fs::read(cwd.join("leaf.key")).unwrap(), std::fs::read(cwd.join("leaf.pem")).unwrap()].concat();
    std::fs::write(cwd.join("both.pem"), both).unwrap();
    std::fs::write(cwd.join("kpass"), "a keyring passphrase of some length\n").unwrap();
    let kr = ["--keyring", "kr", "--keyring-passphrase-file", "kpass"];
    certdesk_in(cwd, &[&["smime", "keyring", "import", "both.pem"][..], &kr].concat()).ok();
    let listed =
        String::from_utf8(certdesk_in(cwd, &[&["smime", "keyring", "list"][..], &kr].concat()).ok().stdout).unwrap();
    assert!(listed.contains("Jane@Legacy.Example"), "{listed}");
    let json = certdesk_in(cwd, &[&["smime", "keyring", "list", "--json"][..], &kr].concat()).ok().stdout;
    let entries: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(entries[0]["emails"], serde_json::json!(["Jane@Legacy.Example"]));
    assert_eq!(entries[0]["state"], "current", "{entries}");
}
