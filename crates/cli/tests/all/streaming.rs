//! `smime sign | encrypt | decrypt` on messages larger than their 1 MiB buffers (they
//! stream), against OpenSSL both ways, and failures that must leave no output.

use super::common::*;

/// A CA with Jane's RSA key as PEM (`jane.key`, `jane.pem`), the root, and `big.txt`: a
/// 5 MB message with headers and mixed line ends.
fn setup() -> Ca {
    let ca = Ca::new("p384");
    ca.split_chain();
    ca.issue_p12("rsa3072", "modern", "jane.p12").ok();
    ca.jane_pem(true);
    let mut text = String::from("From: Jane Doe <jane.doe@example.org>\nTo: bob@example.org\nSubject: big\n\n");
    let mut n = 0u64;
    while text.len() < 5 * 1024 * 1024 {
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let end = ["\n", "\r\n", "\r\n", "\n"][(n >> 62) as usize];
        text.push_str(&format!("line {n:020} of the report, with some more text to make it longer{end}"));
    }
    std::fs::write(ca.path("big.txt"), text).unwrap();
    ca
}

fn smime(ca: &Ca, args: &[&str]) -> Run {
    let mut all = vec!["smime"];
    all.extend_from_slice(args);
    certdesk_in(ca.dir.path(), &all)
}

/// The entity certdesk signs or encrypts for big.txt: its body, canonical.
fn canonical_body(ca: &Ca) -> Vec<u8> {
    let text = std::fs::read(ca.path("big.txt")).unwrap();
    let body = &text[text.windows(2).position(|w| w == b"\n\n").unwrap() + 2..];
    String::from_utf8_lossy(body).replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

#[test]
fn big_messages_sign_and_verify_both_ways() {
    let ca = setup();
    smime(
        &ca,
        &[
            "sign",
            "--cert",
            "jane.pem",
            "--key",
            "jane.key",
            "--chain",
            "issuing.pem",
            "--in",
            "big.txt",
            "--out",
            "s.eml",
        ],
    )
    .ok();
    let run = ca.tool("openssl", &["cms", "-verify", "-in", "s.eml", "-CAfile", "root.pem", "-out", "o.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let signed = std::fs::read(ca.path("o.txt")).unwrap();
    assert!(signed.ends_with(&canonical_body(&ca)), "OpenSSL's content differs");
    let run = smime(&ca, &["verify", "--trust", "root.pem", "--revocation", "off", "--in", "s.eml", "--out", "c.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // From stdin to stdout too (through the shell: output starts before the input ends).
    let command = format!(
        "'{}' smime sign --cert jane.pem --key jane.key --chain issuing.pem < big.txt > s2.eml",
        env!("CARGO_BIN_EXE_certdesk")
    );
    ca.tool("sh", &["-c", &command]).ok();
    let run = ca.tool("openssl", &["cms", "-verify", "-in", "s2.eml", "-CAfile", "root.pem", "-out", "o2.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn big_messages_encrypt_and_decrypt_both_ways() {
    let ca = setup();
    let body = canonical_body(&ca);
    for cipher in ["aes-256-cbc", "aes-128-cbc"] {
        smime(&ca, &["encrypt", "--to", "jane.pem", "--cipher", cipher, "--in", "big.txt", "--out", "e.eml"]).ok();
        let run = ca.tool(
            "openssl",
            &[
                "cms", "-decrypt", "-binary", "-in", "e.eml", "-recip", "jane.pem", "-inkey", "jane.key", "-out",
                "o.txt",
            ],
        );
        assert_eq!(run.code, 0, "{cipher}: {}", run.stderr);
        let theirs = std::fs::read(ca.path("o.txt")).unwrap();
        assert!(theirs.ends_with(&body), "{cipher}: OpenSSL's plaintext differs");
        smime(&ca, &["decrypt", "--cert", "jane.pem", "--key", "jane.key", "--in", "e.eml", "--out", "d.txt"]).ok();
        assert!(std::fs::read(ca.path("d.txt")).unwrap() == theirs, "{cipher}");
        // stdout: the plaintext only after the whole message decrypted.
        let run = smime(&ca, &["decrypt", "--cert", "jane.pem", "--key", "jane.key", "--in", "e.eml"]).ok();
        assert!(run.stdout == theirs);
    }
    // What `openssl cms -encrypt -stream` writes (BER in base64, LF line ends), and its DER.
    for extra in [&["-stream"][..], &["-outform", "DER"][..]] {
        let mut args = vec!["cms", "-encrypt", "-binary", "-aes256", "-in", "big.txt", "-out", "ossl.p7m"];
        args.extend_from_slice(extra);
        args.push("jane.pem");
        ca.tool("openssl", &args).ok();
        let run = smime(&ca, &["decrypt", "--cert", "jane.pem", "--key", "jane.key", "--in", "ossl.p7m"]);
        assert_eq!(run.code, 0, "{extra:?}: {}", run.stderr);
        assert!(run.stdout == std::fs::read(ca.path("big.txt")).unwrap(), "{extra:?}");
    }
}

#[test]
fn failed_decryption_leaves_no_plaintext() {
    let ca = setup();
    ca.issue_p12("rsa3072", "modern", "other.p12").ok();
    smime(&ca, &["encrypt", "--to", "jane.pem", "--in", "big.txt", "--out", "e.eml"]).ok();
    let text = std::fs::read_to_string(ca.path("e.eml")).unwrap();
    let decrypt = |input: &str, out: Option<&str>| {
        let mut args = vec!["decrypt", "--cert", "jane.pem", "--key", "jane.key", "--in", input];
        if let Some(out) = out {
            args.extend_from_slice(&["--out", out]);
        }
        smime(&ca, &args)
    };
    // Truncated after most of the ciphertext (at a line end, so the base64 is fine).
    let cut = text[..text.len() * 3 / 4].rfind("\r\n").unwrap() + 2;
    std::fs::write(ca.path("cut.eml"), &text[..cut]).unwrap();
    let run = decrypt("cut.eml", Some("x.txt"));
    assert_ne!(run.code, 0);
    assert!(!ca.path("x.txt").exists());
    let run = decrypt("cut.eml", None);
    assert_ne!(run.code, 0);
    assert!(run.stdout.is_empty(), "plaintext on stdout for a truncated message");
    // The padding byte flipped (through the last byte of the block before it: the last
    // segment holds one block, then come ten end-of-contents bytes): bad padding at the
    // very end, after all the rest decrypted.
    let header_end = text.find("\r\n\r\n").unwrap() + 4;
    let clean: String = text[header_end..].chars().filter(|c| !c.is_whitespace()).collect();
    let mut pem = String::from("-----BEGIN CMS-----\n");
    for chunk in clean.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CMS-----\n");
    let mut der = der::pem::decode_vec(pem.as_bytes()).unwrap().1;
    let at = der.len() - 10 - 16 - 2 - 1;
    der[at] ^= 0x55;
    let encoded = der::pem::encode_string("CMS", der::pem::LineEnding::CRLF, &der).unwrap();
    let body: String = encoded.lines().filter(|l| !l.starts_with("-----")).map(|l| format!("{l}\r\n")).collect();
    std::fs::write(ca.path("bad.eml"), format!("{}{body}", &text[..header_end])).unwrap();
    let run = decrypt("bad.eml", Some("x.txt"));
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(!ca.path("x.txt").exists());
    let run = decrypt("bad.eml", None);
    assert_ne!(run.code, 0);
    assert!(run.stdout.is_empty());
    // A key that is not a recipient.
    let run =
        smime(&ca, &["decrypt", "--p12", "other.p12", "--password-file", "p12pass", "--in", "e.eml", "--out", "x.txt"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!ca.path("x.txt").exists());
    assert!(!ca.files().iter().any(|f| f.contains(".tmp")), "{:?}", ca.files());
}

/// `smime verify` streams multipart/signed: from a file and from stdin, with the
/// announced micalg or a wrong one, and a tampered message writes nothing.
#[test]
fn big_messages_verify_streaming_and_tampering_writes_nothing() {
    let ca = setup();
    let sign = ["sign", "--cert", "jane.pem", "--key", "jane.key", "--chain", "issuing.pem", "--in", "big.txt"];
    let mut args = sign.to_vec();
    args.extend_from_slice(&["--out", "s.eml"]);
    smime(&ca, &args).ok();
    let verify = |input: &str, out: &str| {
        smime(&ca, &["verify", "--trust", "root.pem", "--revocation", "off", "--in", input, "--out", out])
    };
    let run = verify("s.eml", "c.txt");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let content = std::fs::read(ca.path("c.txt")).unwrap();
    assert!(content.ends_with(&canonical_body(&ca)));
    // From stdin (through the shell), the same content.
    let command =
        format!("'{}' smime verify --trust root.pem --revocation off < s.eml > c2.txt", env!("CARGO_BIN_EXE_certdesk"));
    ca.tool("sh", &["-c", &command]).ok();
    assert_eq!(std::fs::read(ca.path("c2.txt")).unwrap(), content);
    // A wrong micalg: the signer's own digest is used (from the file by reading it
    // again, from stdin because every digest is computed).
    let signed = std::fs::read_to_string(ca.path("s.eml")).unwrap();
    let wrong =
        signed.replacen("micalg=\"sha-256\"", "micalg=\"sha-512\"", 1).replacen("micalg=sha-256", "micalg=sha-512", 1);
    assert_ne!(wrong, signed, "no micalg to change");
    std::fs::write(ca.path("w.eml"), &wrong).unwrap();
    let run = verify("w.eml", "w.txt");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let command =
        format!("'{}' smime verify --trust root.pem --revocation off < w.eml > w2.txt", env!("CARGO_BIN_EXE_certdesk"));
    ca.tool("sh", &["-c", &command]).ok();
    // One changed byte in the middle of the content: refused, no output file.
    let mut tampered = signed.into_bytes();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(ca.path("t.eml"), &tampered).unwrap();
    let run = verify("t.eml", "t.txt");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NOT valid"), "{}", run.stderr);
    assert!(!ca.path("t.txt").exists(), "content written for a tampered message");
    assert!(ca.files().iter().all(|f| !f.contains(".tmp")), "{:?}", ca.files());
}

/// `smime sign --opaque` and `verify` of opaque signed-data stream: OpenSSL reads ours,
/// we read OpenSSL's (DER and BER), from a file and from stdin, and a tampered message
/// writes nothing.
#[test]
fn big_opaque_messages_stream_both_ways_and_tampering_writes_nothing() {
    let ca = setup();
    let body = canonical_body(&ca);
    let mut args = vec!["sign", "--opaque", "--cert", "jane.pem", "--key", "jane.key", "--chain", "issuing.pem"];
    args.extend_from_slice(&["--in", "big.txt", "--out", "o.eml"]);
    smime(&ca, &args).ok();
    let run = ca.tool("openssl", &["cms", "-verify", "-in", "o.eml", "-CAfile", "root.pem", "-out", "o.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read(ca.path("o.txt")).unwrap().ends_with(&body), "OpenSSL's content differs");
    // OpenSSL's, as DER and as BER (-stream), opaque (-nodetach).
    let entity = std::fs::read(ca.path("o.txt")).unwrap();
    std::fs::write(ca.path("entity.txt"), &entity).unwrap();
    for (name, stream) in [("der.eml", false), ("ber.eml", true)] {
        let mut args = vec!["cms", "-sign", "-nodetach", "-binary", "-in", "entity.txt", "-signer", "jane.pem"];
        args.extend_from_slice(&["-inkey", "jane.key", "-certfile", "issuing.pem", "-out", name]);
        if stream {
            args.push("-stream");
        }
        ca.tool("openssl", &args).ok();
    }
    for input in ["o.eml", "der.eml", "ber.eml"] {
        let run =
            smime(&ca, &["verify", "--trust", "root.pem", "--revocation", "off", "--in", input, "--out", "c.txt"]);
        assert_eq!(run.code, 0, "{input}: {}", run.stderr);
        assert_eq!(std::fs::read(ca.path("c.txt")).unwrap(), entity, "{input}");
        let command = format!(
            "'{}' smime verify --trust root.pem --revocation off < {input} > c2.txt",
            env!("CARGO_BIN_EXE_certdesk")
        );
        ca.tool("sh", &["-c", &command]).ok();
        assert_eq!(std::fs::read(ca.path("c2.txt")).unwrap(), entity, "{input} from stdin");
    }
    // One changed base64 character in the middle: refused, no output.
    let mut tampered = std::fs::read(ca.path("o.eml")).unwrap();
    let at = tampered.len() / 2;
    let at = at + tampered[at..].iter().position(|b| b.is_ascii_alphabetic()).unwrap();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(ca.path("t.eml"), &tampered).unwrap();
    let run = smime(&ca, &["verify", "--trust", "root.pem", "--revocation", "off", "--in", "t.eml", "--out", "t.txt"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NOT valid"), "{}", run.stderr);
    assert!(!ca.path("t.txt").exists(), "content written for a tampered message");
    // Cut short: refused, no output.
    std::fs::write(ca.path("cut.eml"), &tampered[..at]).unwrap();
    let run =
        smime(&ca, &["verify", "--trust", "root.pem", "--revocation", "off", "--in", "cut.eml", "--out", "cut.txt"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(!ca.path("cut.txt").exists(), "content written for a truncated message");
    assert!(ca.files().iter().all(|f| !f.contains(".tmp")), "{:?}", ca.files());
}
