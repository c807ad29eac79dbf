//! What certdesk must read although it is not the strictest form (issue 12): .p12 files
//! without a password (pyca `cryptography-vectors`, OpenSSL), and PEM with explanatory
//! text before the block (`openssl req -text`, `openssl x509 -text`, `openssl pkcs12
//! -nodes`) or a UTF-8 byte order mark. And what it must still refuse: a wrong
//! password, a PEM block of the wrong kind, with exit 1 or 2, one sentence on stderr
//! and nothing written.

use std::path::{Path, PathBuf};

use super::common::*;

const KEYRING_PASS: &str = "keyring passphrase for tests";
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The pyca vectors of `certdesk-pki` (README there: source and licence).
fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pki/tests/data/third-party/pyca-pkcs12")
}

fn vector(name: &str) -> String {
    vectors().join(name).to_str().unwrap().to_owned()
}

/// A temp dir with the password files `empty`, `newline` (just a line end), `wrong`, `cryptography`, `password`, the
/// keyring passphrase `kpass` and a message `msg.txt`.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("empty", String::new()),
        ("newline", "\n".into()),
        ("wrong", "wrong\n".into()),
        ("cryptography", "cryptography\n".into()),
        ("password", "password\n".into()),
        ("kpass", format!("{KEYRING_PASS}\n")),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("msg.txt"), "From: bob@example.org\nSubject: secret\n\nThe plan.\n").unwrap();
    dir
}

/// The files of a directory, sorted (to show that nothing was written).
fn listing(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// `certdesk smime keyring --keyring KR import FILE [--password-file P]` in `dir`.
fn import(dir: &Path, keyring: &str, file: &str, password_file: Option<&str>) -> Run {
    let mut args = vec!["smime", "keyring", "--keyring", keyring, "--keyring-passphrase-file", "kpass", "import", file];
    if let Some(p) = password_file {
        args.extend_from_slice(&["--password-file", p]);
    }
    certdesk_in(dir, &args)
}

fn one_sentence(run: &Run) -> bool {
    run.stderr.trim().lines().count() == 1 && run.stdout.is_empty()
}

/// Every one of pyca's 31 .p12 files through `keyring import`: with its password (none
/// for the 14 without one: no `--password-file`, or an empty one), it is imported, or
/// refused for what it lacks (a keyring entry needs a key and its certificate); with a
/// wrong password, or none for a protected file, it is refused with exit 1 and the
/// keyring is untouched. A table goes to stderr.
#[test]
fn every_pyca_p12_through_keyring_import() {
    let dir = workdir();
    let mut files: Vec<String> = listing(&vectors()).into_iter().filter(|f| f.ends_with(".p12")).collect();
    files.sort();
    assert_eq!(files.len(), 31);
    let mut rows = vec![format!("{:<33} {:<13} {:<32} {}", "file", "password", "with it", "wrong / missing password")];
    let mut without_password = 0;
    for (i, file) in files.iter().enumerate() {
        let password = if file.starts_with("cert-") || file.starts_with("no-cert-key-") {
            Some("cryptography")
        } else if file.ends_with("-pwd.p12") && !file.ends_with("-no-pwd.p12") {
            Some("password")
        } else {
            None
        };
        let has_key = file == "no-cert-key-aes256cbc.p12"
            || !(file.starts_with("no-cert-") || file == "cert-aes256cbc-no-key.p12" || file == "java-truststore.p12");
        let has_cert = file != "no-cert-key-aes256cbc.p12";
        let path = vector(file);

        // Wrong passwords first, into a keyring of their own: refused, nothing written.
        let keyring = format!("kr{i}");
        let wrong_cases: Vec<(Option<&str>, &str)> = match password {
            Some(_) => {
                vec![(Some("wrong"), "password is wrong"), (Some("empty"), "is empty"), (None, "--password-file")]
            }
            None => vec![(Some("wrong"), "the file has no password")],
        };
        for (given, needle) in &wrong_cases {
            let run = import(dir.path(), &keyring, &path, *given);
            assert_eq!(run.code, 1, "{file} with {given:?}: {}", run.stderr);
            assert!(run.stderr.contains(needle) && one_sentence(&run), "{file} with {given:?}: {}", run.stderr);
            assert!(run.stderr.contains(file.as_str()), "{file}: {}", run.stderr);
            assert!(listing(&dir.path().join(&keyring).join("keys")).is_empty(), "{file}: {given:?} wrote a key");
        }

        // With the right password (for a file without one: none, and an empty file).
        let attempts: Vec<Option<&str>> = match password {
            Some(p) => vec![Some(p)],
            None => {
                without_password += 1;
                vec![None, Some("empty")]
            }
        };
        let mut outcome = String::new();
        for (j, given) in attempts.iter().enumerate() {
            let keyring = format!("kr{i}-{j}");
            let run = import(dir.path(), &keyring, &path, *given);
            let expected = match (has_key, has_cert) {
                (true, true) => (0, "imported CN=cryptography CA"),
                (false, _) => (2, "holds no private key"),
                (true, false) => (2, "holds no certificate"),
            };
            assert_eq!(run.code, expected.0, "{file} with {given:?}: {}", run.stderr);
            assert!(run.stderr.contains(expected.1) && one_sentence(&run), "{file} with {given:?}: {}", run.stderr);
            let keys = listing(&dir.path().join(&keyring).join("keys"));
            assert_eq!(keys.is_empty(), expected.0 != 0, "{file}: {keys:?}");
            outcome = if expected.0 == 0 { "imported".into() } else { format!("refused: {}", expected.1) };
        }
        let wrong = wrong_cases.iter().map(|(g, _)| g.unwrap_or("none")).collect::<Vec<_>>().join(", ");
        rows.push(format!("{file:<33} {:<13} {outcome:<32} exit 1 ({wrong})", password.unwrap_or("(none)"),));
    }
    assert_eq!(without_password, 14);
    eprintln!("keyring import of pyca's .p12 files:\n{}", rows.join("\n"));
}

/// `smime decrypt` and `smime sign` with `--p12` of a file without a password and an
/// empty password file (or one with just a line end); the recipient's certificate given as `openssl
/// x509 -text` output and with a byte order mark; a wrong password or an empty file for
/// a protected .p12 is exit 1 with no output file.
#[test]
fn smime_with_a_p12_without_password_and_pem_with_text() {
    let dir = workdir();
    let d = dir.path();
    let ca_pem = std::fs::read(vectors().join("ca.pem")).unwrap();
    let text = tool("openssl", &["x509", "-in", &vector("ca.pem"), "-text"], d).ok();
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("Certificate:"));
    std::fs::write(d.join("ca-text.pem"), &text.stdout).unwrap();
    std::fs::write(d.join("ca-bom.pem"), [BOM, &ca_pem].concat()).unwrap();
    let cmd = |args: &[&str]| {
        let mut all = vec!["smime"];
        all.extend_from_slice(args);
        certdesk_in(d, &all)
    };
    for to in ["ca-text.pem", "ca-bom.pem"] {
        cmd(&["encrypt", "--to", to, "--in", "msg.txt", "--out", "e.eml"]).ok();
        for password_file in ["empty", "newline"] {
            let p12 = vector("no-password.p12");
            cmd(&["decrypt", "--p12", &p12, "--password-file", password_file, "--in", "e.eml", "--out", "d.txt"]).ok();
            assert!(std::fs::read_to_string(d.join("d.txt")).unwrap().contains("The plan."), "{to}");
            std::fs::remove_file(d.join("d.txt")).unwrap();
        }
        // OpenSSL agrees that the .p12 opens without a password and decrypts it too.
        tool(
            "openssl",
            &["pkcs12", "-legacy", "-in", &vector("no-password.p12"), "-passin", "pass:", "-nodes", "-out", "k.pem"],
            d,
        )
        .ok();
        let run =
            tool("openssl", &["cms", "-decrypt", "-in", "e.eml", "-inkey", "k.pem", "-recip", &vector("ca.pem")], d);
        assert_eq!(run.code, 0, "{to}: {}", run.stderr);
    }
    // Signing with a .p12 without a password (pyca's: key and certificate in plain bags).
    cmd(&[
        "sign",
        "--p12",
        &vector("name-1-no-pwd.p12"),
        "--password-file",
        "empty",
        "--in",
        "msg.txt",
        "--out",
        "s.eml",
    ])
    .ok();
    let verified = cmd(&["verify", "--trust", "ca-text.pem", "--revocation", "off", "--in", "s.eml"]).ok();
    assert!(String::from_utf8_lossy(&verified.stdout).contains("The plan."));
    let args = ["cms", "-verify", "-purpose", "any", "-in", "s.eml", "-CAfile", "ca-text.pem", "-out", "v.txt"];
    tool("openssl", &args, d).ok();

    // Refusals: exit 1, one sentence, no output file.
    let refusals = [
        ("no-password.p12", "wrong", "the file has no password"),
        ("cert-key-aes256cbc.p12", "wrong", "password is wrong"),
        ("cert-key-aes256cbc.p12", "empty", "the password file empty is empty"),
        ("cert-rc2-key-3des.p12", "newline", "the password file newline is empty"),
    ];
    for (p12, password_file, needle) in refusals {
        let p12 = vector(p12);
        for verb in ["decrypt", "sign"] {
            let input = if verb == "decrypt" { "e.eml" } else { "msg.txt" };
            let run = cmd(&[verb, "--p12", &p12, "--password-file", password_file, "--in", input, "--out", "o.eml"]);
            assert_eq!(run.code, 1, "{verb} {p12} {password_file}: {}", run.stderr);
            assert!(run.stderr.contains(needle) && one_sentence(&run), "{verb} {p12}: {}", run.stderr);
            assert!(!d.join("o.eml").exists(), "{verb} {p12} {password_file} wrote o.eml");
        }
    }
    assert!(!listing(d).iter().any(|f| f.contains("tmp")), "{:?}", listing(d));
}

/// `certdesk issue --csr` with a CSR written by `openssl req -new -text` (the request
/// as text, then the PEM block), one with a byte order mark and CRLF line ends; the
/// certificate issued, printed by `openssl x509 -text`, is a recipient for `smime
/// encrypt`. A PEM file holding a certificate instead, or a block without its END line,
/// is refused with exit 2, one sentence and no file.
#[test]
fn issue_reads_csrs_with_text_and_a_byte_order_mark() {
    let ca = Ca::new("p384");
    let issue = |csr: &str, out: &str| {
        ca.run(&[
            "issue",
            "--csr",
            csr,
            "--email",
            "jane.doe@example.org",
            "--given-name",
            "Jane",
            "--surname",
            "Doe",
            "--out",
            out,
        ])
    };
    let text_csr = openssl_csr(ca.dir.path(), "text", &CsrOptions { text: true, ..CsrOptions::default() }).bytes();
    assert!(text_csr.starts_with(b"Certificate Request:"));
    let plain = std::fs::read(ca.csr("b", KeyKind::Rsa3072)).unwrap();
    let crlf = String::from_utf8(plain).unwrap().replace('\n', "\r\n");
    std::fs::write(ca.path("bom.csr"), [BOM, crlf.as_bytes()].concat()).unwrap();

    issue("text.csr", "text.pem").ok();
    issue("bom.csr", "bom.pem").ok();
    for cert in ["text.pem", "bom.pem"] {
        ca.tool("openssl", &["verify", "-CAfile", "chain.pem", cert]).ok();
    }
    let dump = ca.tool("openssl", &["x509", "-in", "text.pem", "-text"]).ok();
    std::fs::write(ca.path("jane-text.pem"), &dump.stdout).unwrap();
    std::fs::write(ca.path("msg.txt"), "Subject: x\n\nThe plan.\n").unwrap();
    ca.run(&["smime", "encrypt", "--to", "jane-text.pem", "--in", "msg.txt", "--out", "e.eml"]).ok();
    let run = ca.tool("openssl", &["cms", "-decrypt", "-in", "e.eml", "-inkey", "text.key", "-recip", "text.pem"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(String::from_utf8_lossy(&run.stdout).contains("The plan."));

    let chain = std::fs::read_to_string(ca.path("chain.pem")).unwrap();
    let unterminated = String::from_utf8(text_csr).unwrap().replace("-----END CERTIFICATE REQUEST-----", "");
    let refused: [(&str, String, &str); 2] = [
        ("a certificate with text", format!("Certificate:\n    Data:\n{chain}"), "not a CERTIFICATE REQUEST"),
        ("no END line", unterminated, "has no -----END"),
    ];
    let audit = ca.audit_records();
    for (name, content, needle) in refused {
        std::fs::write(ca.path("bad.csr"), content).unwrap();
        let run = issue("bad.csr", "bad.pem");
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(needle) && run.stderr.trim().lines().count() == 1, "{name}: {}", run.stderr);
        assert!(!ca.path("bad.pem").exists(), "{name} left a file");
    }
    assert_eq!(ca.audit_records(), audit);
}

/// `keyring import` of a PEM identity as `openssl pkcs12 -nodes` writes it ("Bag
/// Attributes" text before every block), with a byte order mark in front.
#[test]
fn keyring_imports_pem_identities_with_text() {
    let dir = workdir();
    let d = dir.path();
    let args = ["pkcs12", "-in", &vector("name-all-no-pwd.p12"), "-passin", "pass:", "-nodes", "-out", "id.pem"];
    tool("openssl", &args, d).ok();
    let pem = std::fs::read(d.join("id.pem")).unwrap();
    assert!(pem.starts_with(b"Bag Attributes"), "{}", String::from_utf8_lossy(&pem));
    std::fs::write(d.join("bom.pem"), [BOM, &pem].concat()).unwrap();
    for (i, file) in ["id.pem", "bom.pem"].into_iter().enumerate() {
        let run = import(d, &format!("kr{i}"), file, None).ok();
        assert!(run.stderr.contains("imported CN=cryptography CA"), "{file}: {}", run.stderr);
    }
}
