//! `certdesk smime reencrypt` (issue 15 item 4): an archive encrypted by OpenSSL, gpgsm
//! and certdesk to three historic keys, with plain, damaged and foreign mail, made
//! readable with a new key; OpenSSL decrypts the result.

use super::common::*;

const KEYRING_PASS: &str = "keyring passphrase for tests";

fn pem_of(ca: &Ca, p12: &str, out: &str) {
    ca.tool("openssl", &["pkcs12", "-in", p12, "-passin", "file:p12pass", "-clcerts", "-nokeys", "-out", out]).ok();
}

fn key_of(ca: &Ca, p12: &str, out: &str) {
    ca.tool("openssl", &["pkcs12", "-in", p12, "-passin", "file:p12pass", "-nocerts", "-nodes", "-out", out]).ok();
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes().chunks(64).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect()
}

/// The messages of an mbox, without their From lines and separating blank lines.
fn mbox_messages(mbox: &str) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    for line in mbox.split_inclusive('\n') {
        if line.starts_with("From ") {
            messages.push(String::new());
        } else if let Some(last) = messages.last_mut() {
            last.push_str(line);
        }
    }
    messages.into_iter().map(|m| m.strip_suffix('\n').unwrap_or(&m).to_string()).collect()
}

struct Archive {
    ca: Ca,
    /// (file name, message text, the words a reader of the decrypted message sees, or
    /// None for a message that stays as it is)
    messages: Vec<(String, String, Option<String>)>,
}

/// Three historic keys in a keyring (RSA from one issuance, P-256 and RSA again), a new
/// certificate, and seven messages: encrypted by OpenSSL, certdesk and gpgsm to the three
/// old keys, plain, signed only, damaged (base64 cut short) and encrypted to a key the
/// keyring does not have.
fn archive() -> Archive {
    let ca = Ca::new("p384");
    ca.split_chain();
    std::fs::write(ca.path("kpass"), format!("{KEYRING_PASS}\n")).unwrap();
    for (name, kind) in
        [("old1", "rsa3072"), ("old2", "p256"), ("old3", "rsa3072"), ("new", "p256"), ("other", "rsa3072")]
    {
        ca.issue_p12(kind, "compat", &format!("{name}.p12")).ok();
        pem_of(&ca, &format!("{name}.p12"), &format!("{name}.pem"));
    }
    for old in ["old1", "old2", "old3"] {
        certdesk_in(
            ca.dir.path(),
            &[
                "smime",
                "keyring",
                "--keyring",
                "kr",
                "--keyring-passphrase-file",
                "kpass",
                "import",
                &format!("{old}.p12"),
                "--password-file",
                "p12pass",
            ],
        )
        .ok();
    }
    let mut messages = Vec::new();
    let plain = |n: usize, words: &str| {
        format!(
            "From: bob@example.org\nTo: jane.doe@example.org\nSubject: report {n}\nMessage-ID: <m{n}@example.org>\n\
             Date: Fri, 04 Dec 2026 10:0{n}:00 +0000\n\n{words}\n"
        )
    };
    // 1: OpenSSL to old1, headers given to it.
    std::fs::write(ca.path("body1.txt"), "Content-Type: text/plain\n\nThe first plan.\n").unwrap();
    ca.tool(
        "openssl",
        &[
            "cms",
            "-encrypt",
            "-aes256",
            "-in",
            "body1.txt",
            "-from",
            "bob@example.org",
            "-to",
            "jane.doe@example.org",
            "-subject",
            "report 1",
            "-out",
            "m1.eml",
            "old1.pem",
        ],
    )
    .ok();
    messages.push((
        "m1".to_string(),
        std::fs::read_to_string(ca.path("m1.eml")).unwrap(),
        Some("The first plan.".into()),
    ));
    // 2: certdesk to old2 (P-256).
    std::fs::write(ca.path("p2.txt"), plain(2, "The second plan.")).unwrap();
    certdesk_in(ca.dir.path(), &["smime", "encrypt", "--to", "old2.pem", "--in", "p2.txt", "--out", "m2.eml"]).ok();
    messages.push(("m2".into(), std::fs::read_to_string(ca.path("m2.eml")).unwrap(), Some("The second plan.".into())));
    // 3: gpgsm to old3 (gpgsm 2.2 encrypts to RSA only), wrapped as a mail client does.
    {
        let gpgsm = super::clients::Gpgsm::new(&ca, false);
        gpgsm.run(&["--import", "old3.pem"]).ok();
        std::fs::write(ca.path("body3.txt"), "Content-Type: text/plain\r\n\r\nThe third plan.\r\n").unwrap();
        gpgsm.run(&["-r", "jane.doe@example.org", "--encrypt", "-o", "m3.p7m", "body3.txt"]).ok();
    }
    let head3 = "From: carol@example.org\nTo: jane.doe@example.org\nSubject: report 3\nMessage-ID: <m3@example.org>\n";
    let m3 = format!(
        "{head3}MIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n\
         Content-Transfer-Encoding: base64\n\n{}",
        base64_lines(&std::fs::read(ca.path("m3.p7m")).unwrap())
    );
    messages.push(("m3".into(), m3, Some("The third plan.".into())));
    // 4: plain.
    messages.push(("m4".into(), plain(4, "Nothing secret."), None));
    // 5: damaged: the base64 of an encrypted message cut short.
    let m2 = std::fs::read_to_string(ca.path("m2.eml")).unwrap().replace("\r\n", "\n");
    messages.push(("m5".into(), m2.get(..m2.len() - 200).unwrap().to_string(), None));
    // 6: encrypted to a key this keyring does not have.
    std::fs::write(ca.path("p6.txt"), plain(6, "For someone else.")).unwrap();
    certdesk_in(ca.dir.path(), &["smime", "encrypt", "--to", "other.pem", "--in", "p6.txt", "--out", "m6.eml"]).ok();
    messages.push(("m6".into(), std::fs::read_to_string(ca.path("m6.eml")).unwrap().replace("\r\n", "\n"), None));
    // 7: signed only (certdesk, with the new key).
    std::fs::write(ca.path("p7.txt"), plain(7, "Signed, not secret.")).unwrap();
    certdesk_in(
        ca.dir.path(),
        &["smime", "sign", "--p12", "new.p12", "--password-file", "p12pass", "--in", "p7.txt", "--out", "m7.eml"],
    )
    .ok();
    messages.push(("m7".into(), std::fs::read_to_string(ca.path("m7.eml")).unwrap(), None));
    Archive { ca, messages }
}

fn reencrypt(ca: &Ca, source: &[&str], out: &str) -> Run {
    let mut args =
        vec!["smime", "reencrypt", "--keyring", "kr", "--keyring-passphrase-file", "kpass", "--to", "new.pem"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["--out", out]);
    certdesk_in(ca.dir.path(), &args)
}

/// OpenSSL decrypts `file` with the new key; the plaintext.
fn openssl_decrypts(ca: &Ca, file: &str) -> String {
    let run = ca.tool("openssl", &["cms", "-decrypt", "-in", file, "-recip", "new.pem", "-inkey", "new.key"]);
    assert_eq!(run.code, 0, "{file}: {}", run.stderr);
    String::from_utf8(run.stdout).unwrap()
}

/// The header fields of a message (its lines up to the first empty one), without the
/// Content-* fields and MIME-Version, which re-encryption makes anew.
fn kept_headers(message: &str) -> Vec<String> {
    message
        .replace("\r\n", "\n")
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            !lower.starts_with("content-") && !lower.starts_with("mime-version") && !l.starts_with(' ')
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn an_mbox_of_three_historic_keys_is_read_with_the_new_key() {
    let Archive { ca, messages } = archive();
    key_of(&ca, "new.p12", "new.key");
    let mut mbox = String::new();
    for (_, text, _) in &messages {
        let text = text.replace("\r\n", "\n");
        mbox.push_str("From bob@example.org Fri Dec  4 10:00:00 2026\n");
        mbox.push_str(&text);
        if !text.ends_with('\n') {
            mbox.push('\n');
        }
        mbox.push('\n');
    }
    std::fs::write(ca.path("archive.mbox"), &mbox).unwrap();

    let run = reencrypt(&ca, &["--mbox", "archive.mbox"], "new.mbox");
    assert_eq!(run.code, 1, "copied messages make exit 1: {}", run.stderr);
    assert!(run.stderr.contains("7 messages: 3 re-encrypted, 2 not encrypted, 1 no key, 1 damaged"), "{}", run.stderr);
    assert!(run.stderr.contains("<m6@example.org>: no key in the keyring"), "{}", run.stderr);
    assert!(run.stderr.contains("message 5"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(ca.path("archive.mbox")).unwrap(), mbox, "the input is never changed");

    let out = std::fs::read_to_string(ca.path("new.mbox")).unwrap();
    let written = mbox_messages(&out);
    assert_eq!(written.len(), messages.len(), "{out}");
    assert_eq!(out.matches("\nFrom bob@example.org Fri Dec  4 10:00:00 2026\n").count(), messages.len() - 1);
    for ((name, original, words), new) in messages.iter().zip(&written) {
        let original = original.replace("\r\n", "\n");
        match words {
            Some(words) => {
                assert!(!new.contains('\r'), "{name}: the mbox's line ends are kept");
                assert_eq!(kept_headers(new), kept_headers(&original), "{name}: header fields kept");
                let file = format!("{name}.new.eml");
                std::fs::write(ca.path(&file), new).unwrap();
                assert!(openssl_decrypts(&ca, &file).contains(words.as_str()), "{name}");
            }
            None => assert_eq!(new.trim_end(), original.trim_end(), "{name}: copied as it is"),
        }
    }
    // Many batches (64 messages at a time, on every core): order, counts and the copied
    // messages are the same as one by one.
    let big: String = std::iter::repeat_n(mbox.as_str(), 20).collect();
    std::fs::write(ca.path("big.mbox"), &big).unwrap();
    let run = reencrypt(&ca, &["--mbox", "big.mbox"], "big-new.mbox");
    assert!(
        run.stderr.contains("140 messages: 60 re-encrypted, 40 not encrypted, 20 no key, 20 damaged"),
        "{}",
        run.stderr
    );
    let big_out = mbox_messages(&std::fs::read_to_string(ca.path("big-new.mbox")).unwrap());
    assert_eq!(big_out.len(), 140);
    for (i, new) in big_out.iter().enumerate() {
        let (name, original, words) = &messages[i % messages.len()];
        match words {
            Some(_) => assert_eq!(kept_headers(new), kept_headers(original), "{i} {name}"),
            None => assert_eq!(new.trim_end(), original.replace("\r\n", "\n").trim_end(), "{i} {name}"),
        }
    }

    // The old keys no longer open the re-encrypted mail.
    key_of(&ca, "old1.p12", "old1.key");
    std::fs::write(ca.path("first.eml"), &written[0]).unwrap();
    let run = ca.tool("openssl", &["cms", "-decrypt", "-in", "first.eml", "-recip", "old1.pem", "-inkey", "old1.key"]);
    assert_ne!(run.code, 0);

    // The destination exists: refused, nothing changed.
    let before = std::fs::read(ca.path("new.mbox")).unwrap();
    let run = reencrypt(&ca, &["--mbox", "archive.mbox"], "new.mbox");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("never writes over one"), "{}", run.stderr);
    assert_eq!(std::fs::read(ca.path("new.mbox")).unwrap(), before);
    // Not an mbox, and a --to that is not a certificate: refused, no output.
    let run = reencrypt(&ca, &["--mbox", "m1.eml"], "x.mbox");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not an mbox"), "{}", run.stderr);
    std::fs::write(ca.path("garbage.pem"), "not a certificate").unwrap();
    let mut args = vec!["smime", "reencrypt", "--keyring", "kr", "--keyring-passphrase-file", "kpass"];
    args.extend_from_slice(&["--to", "garbage.pem", "--mbox", "archive.mbox", "--out", "y.mbox"]);
    assert_eq!(certdesk_in(ca.dir.path(), &args).code, 2);
    // A wrong keyring passphrase: nothing written.
    std::fs::write(ca.path("wrong"), "not the passphrase\n").unwrap();
    let mut args = vec!["smime", "reencrypt", "--keyring", "kr", "--keyring-passphrase-file", "wrong"];
    args.extend_from_slice(&["--to", "new.pem", "--mbox", "archive.mbox", "--out", "z.mbox"]);
    assert_ne!(certdesk_in(ca.dir.path(), &args).code, 0);
    for left in ["x.mbox", "y.mbox", "z.mbox"] {
        assert!(!ca.path(left).exists(), "{left}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(ca.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_maildir_and_a_single_message_are_reencrypted() {
    let Archive { ca, messages } = archive();
    key_of(&ca, "new.p12", "new.key");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(ca.path(&format!("Mail/{sub}"))).unwrap();
    }
    for (i, (name, text, _)) in messages.iter().enumerate() {
        let sub = if i % 2 == 0 { "cur" } else { "new" };
        let file = if sub == "cur" { format!("1733300000.{name}.host:2,S") } else { format!("1733300000.{name}.host") };
        // One message is a symbolic link to the file (as some tools leave them).
        if name == "m2" {
            std::fs::write(ca.path("m2-elsewhere.eml"), text).unwrap();
            std::os::unix::fs::symlink(ca.path("m2-elsewhere.eml"), ca.path(&format!("Mail/{sub}/{file}"))).unwrap();
        } else {
            std::fs::write(ca.path(&format!("Mail/{sub}/{file}")), text).unwrap();
        }
    }
    std::fs::write(ca.path("Mail/dovecot-keywords"), "0 $Important\n").unwrap();
    std::fs::create_dir_all(ca.path("Mail/.Sent/cur")).unwrap();
    // The new mailbox inside the input: refused.
    let run = reencrypt(&ca, &["--maildir", "Mail"], "Mail/cur/x");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("lies inside the input"), "{}", run.stderr);
    assert!(!ca.path("Mail/cur/x").exists());
    let run = reencrypt(&ca, &["--maildir", "Mail"], "NewMail");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("7 messages: 3 re-encrypted, 2 not encrypted, 1 no key, 1 damaged"), "{}", run.stderr);
    assert!(run.stderr.contains("Maildir++ folders .Sent"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(ca.path("NewMail/dovecot-keywords")).unwrap(), "0 $Important\n");
    for (i, (name, text, words)) in messages.iter().enumerate() {
        let sub = if i % 2 == 0 { "cur" } else { "new" };
        let file = if sub == "cur" { format!("1733300000.{name}.host:2,S") } else { format!("1733300000.{name}.host") };
        let path = format!("NewMail/{sub}/{file}");
        let new = std::fs::read_to_string(ca.path(&path)).unwrap();
        match words {
            Some(words) => assert!(openssl_decrypts(&ca, &path).contains(words.as_str()), "{name}"),
            None => assert_eq!(&new, text, "{name}: copied byte for byte"),
        }
    }
    assert!(ca.path("NewMail/tmp").is_dir());
    // No staging directory is left behind.
    let staged: Vec<_> = std::fs::read_dir(ca.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
    // Not a Maildir: refused, nothing made.
    let run = reencrypt(&ca, &["--maildir", "kr"], "Nothing");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not a Maildir"), "{}", run.stderr);
    assert!(!ca.path("Nothing").exists());

    // One message (CRLF kept), AES-256-GCM: exit 0 when everything was re-encrypted.
    let mut args = vec!["smime", "reencrypt", "--keyring", "kr", "--keyring-passphrase-file", "kpass"];
    args.extend_from_slice(&["--to", "new.pem", "--cipher", "aes-256-gcm", "--in", "m1.eml", "--out", "one.eml"]);
    let run = certdesk_in(ca.dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("1 messages: 1 re-encrypted"), "{}", run.stderr);
    let one = std::fs::read_to_string(ca.path("one.eml")).unwrap();
    assert!(one.contains("smime-type=authEnveloped-data"), "{one}");
    assert!(openssl_decrypts(&ca, "one.eml").contains("The first plan."));

    // Encrypted, then signed around the encryption (opaque and multipart): a new
    // encryption would break the signature; copied, counted, exit 1.
    for (opaque, out) in [(true, "so-opaque.eml"), (false, "so-multipart.eml")] {
        let mut args = vec!["smime", "sign", "--p12", "new.p12", "--password-file", "p12pass", "--in", "m2.eml"];
        args.extend_from_slice(&["--out", out]);
        if opaque {
            args.push("--opaque");
        }
        certdesk_in(ca.dir.path(), &args).ok();
        let mut args = vec!["smime", "reencrypt", "--keyring", "kr", "--keyring-passphrase-file", "kpass"];
        let result = format!("{out}.new");
        args.extend_from_slice(&["--to", "new.pem", "--in", out, "--out", &result]);
        let run = certdesk_in(ca.dir.path(), &args);
        assert_eq!(run.code, 1, "{out}: {}", run.stderr);
        assert!(run.stderr.contains("1 signed around the encryption"), "{out}: {}", run.stderr);
        assert_eq!(std::fs::read(ca.path(&result)).unwrap(), std::fs::read(ca.path(out)).unwrap());
    }
    // Plain mail with a header line that is no field: not encrypted, not damaged.
    std::fs::write(ca.path("odd.eml"), "From: a@example.org\nthis line has no colon\n\nHello\n").unwrap();
    let mut args = vec!["smime", "reencrypt", "--keyring", "kr", "--keyring-passphrase-file", "kpass"];
    args.extend_from_slice(&["--to", "new.pem", "--in", "odd.eml", "--out", "odd.new"]);
    let run = certdesk_in(ca.dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("1 messages: 0 re-encrypted, 1 not encrypted"), "{}", run.stderr);
}
