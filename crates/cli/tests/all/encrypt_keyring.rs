//! `certdesk smime encrypt | decrypt` and the keyring, against OpenSSL.

use super::common::*;

const KEYRING_PASS: &str = "keyring passphrase for tests";

fn setup() -> Ca {
    let ca = Ca::new("p384");
    ca.split_chain();
    std::fs::write(ca.path("kpass"), format!("{KEYRING_PASS}\n")).unwrap();
    std::fs::write(
        ca.path("msg.txt"),
        "From: bob@example.org\nTo: jane.doe@example.org\nSubject: secret\n\nThe plan.\n",
    )
    .unwrap();
    ca
}

fn pem_of(ca: &Ca, p12: &str, out: &str) {
    ca.tool("openssl", &["pkcs12", "-in", p12, "-passin", "file:p12pass", "-clcerts", "-nokeys", "-out", out]).ok();
}

fn smime(ca: &Ca, args: &[&str]) -> Run {
    let mut all = vec!["smime"];
    all.extend_from_slice(args);
    certdesk_in(ca.dir.path(), &all)
}

#[test]
fn encrypt_decrypt_both_ways_with_openssl() {
    let ca = setup();
    for (key, p12) in [("rsa3072", "rsa.p12"), ("p256", "ec.p12")] {
        ca.issue_p12(key, "modern", p12).ok();
        pem_of(&ca, p12, "recip.pem");
        for cipher in ["aes-256-cbc", "aes-128-cbc", "aes-256-gcm"] {
            let out = format!("{key}-{cipher}.eml");
            smime(&ca, &["encrypt", "--to", "recip.pem", "--cipher", cipher, "--in", "msg.txt", "--out", &out]).ok();
            // OpenSSL reads it.
            ca.tool(
                "openssl",
                &["pkcs12", "-in", p12, "-passin", "file:p12pass", "-nocerts", "-nodes", "-out", "k.pem"],
            )
            .ok();
            let run = ca.tool(
                "openssl",
                &["cms", "-decrypt", "-in", &out, "-recip", "recip.pem", "-inkey", "k.pem", "-out", "o.txt"],
            );
            assert_eq!(run.code, 0, "{key}/{cipher}: {}", run.stderr);
            assert!(std::fs::read_to_string(ca.path("o.txt")).unwrap().contains("The plan."));
            // And we read it.
            smime(&ca, &["decrypt", "--p12", p12, "--password-file", "p12pass", "--in", &out, "--out", "d.txt"]).ok();
            assert!(std::fs::read_to_string(ca.path("d.txt")).unwrap().contains("The plan."));
        }
        // What OpenSSL encrypts, we decrypt (its defaults: PKCS#1 v1.5, ECDH with the SHA-1 KDF).
        for extra in [&["-aes256"][..], &["-aes128", "-stream"][..]] {
            let mut args = vec!["cms", "-encrypt", "-in", "msg.txt", "-out", "ossl.eml"];
            args.extend_from_slice(extra);
            args.push("recip.pem");
            ca.tool("openssl", &args).ok();
            let run = smime(&ca, &["decrypt", "--p12", p12, "--password-file", "p12pass", "--in", "ossl.eml"]);
            assert_eq!(run.code, 0, "{key} {extra:?}: {}", run.stderr);
            assert!(String::from_utf8_lossy(&run.stdout).contains("The plan."));
        }
    }
}

#[test]
fn encrypt_then_sign_messages_decrypt() {
    let ca = setup();
    ca.issue_p12("rsa3072", "modern", "jane.p12").ok();
    pem_of(&ca, "jane.p12", "jane.pem");
    // Jane writes to herself: the signer is the sender (RFC 8550 3).
    std::fs::write(ca.path("note.txt"), "From: jane.doe@example.org\nSubject: note\n\nThe plan.\n").unwrap();
    smime(&ca, &["encrypt", "--to", "jane.pem", "--in", "note.txt", "--out", "e.eml"]).ok();
    for opaque in [true, false] {
        let mut args =
            vec!["sign", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "e.eml", "--out", "es.eml"];
        if opaque {
            args.push("--opaque");
        }
        smime(&ca, &args).ok();
        // The signature verifies (its content is the encrypted part) ...
        let run = certdesk_in(
            ca.dir.path(),
            &["smime", "verify", "--trust", "root.pem", "--in", "es.eml", "--out", "inner.eml"],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        // ... and decrypt finds the encrypted part inside.
        let run = smime(&ca, &["decrypt", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "es.eml"]);
        assert_eq!(run.code, 0, "opaque={opaque}: {}", run.stderr);
        assert!(String::from_utf8_lossy(&run.stdout).contains("The plan."));
    }
}

#[test]
fn decrypt_refusals_leave_no_output() {
    let ca = setup();
    ca.issue_p12("rsa3072", "modern", "jane.p12").ok();
    ca.issue_p12("rsa3072", "modern", "other.p12").ok();
    pem_of(&ca, "jane.p12", "jane.pem");
    smime(&ca, &["encrypt", "--to", "jane.pem", "--in", "msg.txt", "--out", "e.eml"]).ok();
    // Wrong key.
    let run =
        smime(&ca, &["decrypt", "--p12", "other.p12", "--password-file", "p12pass", "--in", "e.eml", "--out", "x.txt"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!ca.path("x.txt").exists());
    // Tampered ciphertext: the padding byte flipped (through the last byte of the block
    // before it; DER from OpenSSL, so the ciphertext ends the message). A change anywhere
    // else in unauthenticated CBC, or in the RSA-encrypted key (implicit rejection),
    // yields garbage that passes the padding check about once in 256 runs.
    ca.tool("openssl", &["cms", "-cmsout", "-in", "e.eml", "-outform", "DER", "-out", "e.der"]).ok();
    let mut der = std::fs::read(ca.path("e.der")).unwrap();
    let at = der.len() - 1 - 16;
    der[at] ^= 0x55;
    std::fs::write(ca.path("t.der"), der).unwrap();
    let run =
        smime(&ca, &["decrypt", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "t.der", "--out", "x.txt"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!ca.path("x.txt").exists());
    // Garbage and an Ed25519-only certificate cannot be encrypted to.
    std::fs::write(ca.path("g.eml"), "Content-Type: application/pkcs7-mime\n\n!!!").unwrap();
    assert_eq!(smime(&ca, &["decrypt", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "g.eml"]).code, 2);
}

#[test]
fn the_keyring_keeps_every_key_and_decrypts_old_mail() {
    let ca = setup();
    let kr = ["--keyring", "kr", "--keyring-passphrase-file", "kpass"];
    // Two generations of Jane's certificate; mail was encrypted to the old one.
    ca.issue_p12("rsa3072", "modern", "old.p12").ok();
    ca.issue_p12("p256", "compat", "new.p12").ok();
    pem_of(&ca, "old.p12", "old.pem");
    smime(&ca, &["encrypt", "--to", "old.pem", "--in", "msg.txt", "--out", "old-mail.eml"]).ok();
    let mut args = vec!["keyring"];
    args.extend_from_slice(&kr);
    args.extend_from_slice(&["import", "old.p12", "--password-file", "p12pass"]);
    smime(&ca, &args).ok();
    // The keyring options may also follow the verb.
    let mut args = vec!["keyring", "import", "new.p12", "--password-file", "p12pass"];
    args.extend_from_slice(&kr);
    smime(&ca, &args).ok();
    // The four client-made files (Firefox, macOS RC2-40, Windows AES and 3DES).
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../pki/tests/data/pkcs12-clients");
    std::fs::write(ca.path("vpass"), "password\n").unwrap();
    for name in [
        "ValidCertificatePathTest1EE_firefox.p12",
        "ValidCertificatePathTest1EE_macos.p12",
        "ValidCertificatePathTest1EE_windows_aes.p12.pfx",
        "ValidCertificatePathTest1EE_windows_tdes.p12.pfx",
    ] {
        let path = format!("{vectors}/{name}");
        let mut args = vec!["keyring"];
        args.extend_from_slice(&kr);
        args.extend_from_slice(&["import", &path, "--password-file", "vpass"]);
        smime(&ca, &args).ok();
    }
    let mut list = vec!["keyring"];
    list.extend_from_slice(&kr);
    list.push("list");
    let listed = String::from_utf8(smime(&ca, &list).ok().stdout).unwrap();
    // The same PKITS key and certificate four times is one entry.
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(listed.contains("Valid EE Certificate Test1"), "{listed}");

    // Mark the old key revoked: it still decrypts old mail.
    let old_pem = std::fs::read_to_string(ca.path("old.pem")).unwrap();
    let old_der = der::pem::decode_vec(&old_pem.as_bytes()[old_pem.find("-----BEGIN").unwrap()..]).unwrap().1;
    let old_id = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &old_der))[..16].to_string();
    assert!(listed.contains(&old_id), "{listed}");
    let mut args = vec!["keyring"];
    args.extend_from_slice(&kr);
    args.extend_from_slice(&["mark-revoked", &old_id]);
    smime(&ca, &args).ok();
    let listed = String::from_utf8(smime(&ca, &list).ok().stdout).unwrap();
    let old_line = listed.lines().find(|l| l.starts_with(&old_id)).unwrap();
    assert!(old_line.contains("revoked"), "{listed}");
    let mut args = vec!["decrypt"];
    args.extend_from_slice(&kr);
    args.extend_from_slice(&["--in", "old-mail.eml"]);
    let run = smime(&ca, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(String::from_utf8_lossy(&run.stdout).contains("The plan."));

    // Export a key for another client: OpenSSL opens it.
    let mut args = vec!["keyring"];
    args.extend_from_slice(&kr);
    args.extend_from_slice(&["export", &old_id, "--p12", "exported.p12", "--password-file", "p12pass"]);
    smime(&ca, &args).ok();
    ca.tool("openssl", &["pkcs12", "-in", "exported.p12", "-passin", "file:p12pass", "-nodes", "-noout"]).ok();
    // With the CA certificates it came with, so the other client builds the chain.
    let cas = ca
        .tool("openssl", &["pkcs12", "-in", "exported.p12", "-passin", "file:p12pass", "-nokeys", "-cacerts"])
        .ok()
        .stdout;
    let cas = String::from_utf8(cas).unwrap();
    assert!(cas.contains("CN = Example University S/MIME Issuing CA"), "{cas}");
    // In the compat format for older clients; an unknown format is bad usage.
    let mut args = vec!["keyring"];
    args.extend_from_slice(&kr);
    args.extend_from_slice(&["export", &old_id, "--p12", "compat.p12", "--password-file", "p12pass"]);
    let mut compat = args.clone();
    compat.extend_from_slice(&["--p12-format", "compat"]);
    smime(&ca, &compat).ok();
    let info = ca.tool("openssl", &["pkcs12", "-in", "compat.p12", "-passin", "file:p12pass", "-info", "-noout"]).ok();
    assert!(info.stderr.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{}", info.stderr);
    let at = args.len() - 3;
    args[at] = "bogus.p12";
    args.extend_from_slice(&["--p12-format", "bogus"]);
    assert_eq!(smime(&ca, &args).code, 2);
    assert!(!ca.path("bogus.p12").exists());

    // A wrong keyring passphrase opens nothing.
    std::fs::write(ca.path("wrongpass"), "not the keyring passphrase\n").unwrap();
    let run = smime(
        &ca,
        &[
            "decrypt",
            "--keyring",
            "kr",
            "--keyring-passphrase-file",
            "wrongpass",
            "--in",
            "old-mail.eml",
            "--out",
            "x.txt",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("passphrase is wrong"), "{}", run.stderr);
    assert!(!ca.path("x.txt").exists());
}

/// Issue 15 item 5: `keyring export --all` puts every key and certificate of the keyring
/// (the old one kept for old mail as well) in one .p12, which OpenSSL, NSS pk12util
/// (Thunderbird) and Java keytool read with every key, and which a new keyring imports
/// whole: both generations of mail decrypt there. Nothing to export and ambiguous usage
/// are clear errors that write no file.
#[test]
fn exporting_the_whole_keyring_moves_every_key() {
    let ca = setup();
    let keyring = |dir: &'static str, rest: &[&str]| -> Run {
        let mut args = vec!["keyring", "--keyring", dir, "--keyring-passphrase-file", "kpass"];
        args.extend_from_slice(rest);
        smime(&ca, &args)
    };
    ca.issue_p12("rsa3072", "modern", "old.p12").ok();
    ca.issue_p12("p256", "modern", "new.p12").ok();
    pem_of(&ca, "old.p12", "old.pem");
    pem_of(&ca, "new.p12", "new.pem");
    smime(&ca, &["encrypt", "--to", "old.pem", "--in", "msg.txt", "--out", "old-mail.eml"]).ok();
    smime(&ca, &["encrypt", "--to", "new.pem", "--in", "msg.txt", "--out", "new-mail.eml"]).ok();

    // No keyring: nothing to export.
    std::fs::create_dir(ca.path("empty")).unwrap();
    let run = keyring("empty", &["export", "--all", "--p12", "none.p12", "--password-file", "p12pass"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("there is no keyring at empty"), "{}", run.stderr);
    assert!(!ca.path("none.p12").exists());

    keyring("kr", &["import", "old.p12", "--password-file", "p12pass"]).ok();
    keyring("kr", &["import", "new.p12", "--password-file", "p12pass"]).ok();
    // Neither an id nor --all, and both: usage errors.
    let run = keyring("kr", &["export", "--p12", "x.p12", "--password-file", "p12pass"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = keyring("kr", &["export", "abcd", "--all", "--p12", "x.p12", "--password-file", "p12pass"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!ca.path("x.p12").exists());

    for format in ["modern", "compat"] {
        let out = format!("all-{format}.p12");
        let run =
            keyring("kr", &["export", "--all", "--p12", &out, "--password-file", "p12pass", "--p12-format", format]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("exported 2 keys"), "{}", run.stderr);
        // OpenSSL: both keys, both certificates, the CA certificates once.
        let dump = ca.tool("openssl", &["pkcs12", "-in", &out, "-passin", "file:p12pass", "-nodes", "-info"]).ok();
        let text = String::from_utf8(dump.stdout).unwrap();
        assert_eq!(text.matches("BEGIN PRIVATE KEY").count(), 2, "{format}: {text}");
        assert!(text.matches("subject=").count() >= 3, "{format}: two leaves and their CA: {text}");
        if format == "compat" {
            assert!(dump.stderr.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{}", dump.stderr);
        }
        // NSS (Thunderbird's library) and Java keytool: two keys.
        let nss = ca.tool("pk12util", &["-l", &out, "-W", P12_PASSWORD]).ok();
        let listed = String::from_utf8(nss.stdout).unwrap();
        assert_eq!(listed.matches("Key(shrouded)").count(), 2, "pk12util on {format}: {listed}");
        let keytool =
            ca.tool("keytool", &["-list", "-keystore", &out, "-storetype", "PKCS12", "-storepass", P12_PASSWORD]).ok();
        let listed = String::from_utf8(keytool.stdout).unwrap();
        assert_eq!(listed.matches("PrivateKeyEntry").count(), 2, "keytool on {format}: {listed}");
    }

    // A new computer: the whole export imported at once reads both generations of mail.
    let run = keyring("kr2", &["import", "all-modern.p12", "--password-file", "p12pass"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr.matches("imported").count(), 2, "{}", run.stderr);
    let listed = String::from_utf8(keyring("kr2", &["list"]).ok().stdout).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    for mail in ["old-mail.eml", "new-mail.eml"] {
        let run = smime(&ca, &["decrypt", "--keyring", "kr2", "--keyring-passphrase-file", "kpass", "--in", mail]);
        assert_eq!(run.code, 0, "{mail}: {}", run.stderr);
        assert!(String::from_utf8_lossy(&run.stdout).contains("The plan."), "{mail}");
    }
    // Importing it again adds nothing.
    let run = keyring("kr2", &["import", "all-modern.p12", "--password-file", "p12pass"]);
    assert_eq!(run.stderr.matches("already in the keyring").count(), 2, "{}", run.stderr);
}
