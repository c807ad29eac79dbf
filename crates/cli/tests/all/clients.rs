//! S/MIME with the mail clients' own CMS tools, both ways: gpgsm (GnuPG 2.2, the engine of
//! Kleopatra, KMail and Mutt) and NSS cmsutil (Thunderbird's library). What they sign we
//! verify, what they encrypt we decrypt, and the reverse.
//!
//! What the tools cannot do (checked by hand with gpgsm 2.2.40 and NSS 3.87, Debian 12), so
//! there is no test for it:
//! - gpgsm 2.2 imports only our `compat` .p12, and crashes (SIGSEGV) importing an EC one:
//!   it cannot sign with an EC key of ours. It verifies our ECDSA signatures (tested).
//! - gpgsm 2.2 cannot encrypt to an EC certificate ("Wrong key usage": no ECDH), nor decrypt
//!   RSA-OAEP ("error getting encrypted session key") or AES-GCM (KSBA "error getting IV").
//! - NSS 3.87 cannot encrypt to an EC certificate ("cannot create CMS recipientInfo object",
//!   SEC_ERROR_INVALID_ALGORITHM), nor decrypt ECDH key agreement (SEC_ERROR_BAD_DER, also
//!   for OpenSSL's output), RSA-OAEP (SEC_ERROR_UNSUPPORTED_KEYALG) or AES-GCM
//!   (AuthEnvelopedData: SEC_ERROR_UNRECOGNIZED_OID). cmsutil has no option to choose the
//!   content cipher: it encrypts with AES-128-CBC.
//! - Both tools can sign with SHA-1 (and gpgsm with SHA-224); certdesk refuses those digests
//!   ("the algorithm ... is not supported"), so only SHA-256/384/512 are tested.

use std::path::PathBuf;

use super::common::*;

const HEADERS: &str =
    "From: Jane Doe <jane.doe@example.org>\r\nTo: bob@example.org\r\nSubject: Report\r\nMIME-Version: 1.0\r\n";
/// The signed MIME entity, in canonical (CRLF) form, as a mail client signs it.
const ENTITY: &str = "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello Bob,\r\nall fine.\r\n";

/// A CA with Jane's .p12 (`jane.p12`, key type `key`), her certificate `jane.pem`, the
/// root and issuing CA certificates, a message `msg.txt` and the MIME entity `entity.txt`.
fn setup(key: &str, format: &str) -> Ca {
    let ca = Ca::new("p384");
    ca.split_chain();
    ca.issue_p12(key, format, "jane.p12").ok();
    ca.jane_pem(false);
    std::fs::write(
        ca.path("msg.txt"),
        "From: bob@example.org\nTo: jane.doe@example.org\nSubject: secret\n\nThe plan.\n",
    )
    .unwrap();
    std::fs::write(ca.path("entity.txt"), ENTITY).unwrap();
    std::fs::write(
        ca.path("mail.txt"),
        "From: Jane Doe <jane.doe@example.org>\nTo: bob@example.org\nSubject: Report\n\
         Content-Type: text/plain; charset=us-ascii\n\nHello Bob,\nall fine.\n",
    )
    .unwrap();
    ca
}

fn base64(der: &[u8]) -> String {
    let pem = der::pem::encode_string("CMS", der::pem::LineEnding::CRLF, der).unwrap();
    pem.lines().filter(|l| !l.starts_with("-----")).map(|l| format!("{l}\r\n")).collect()
}

fn unbase64(text: &str) -> Vec<u8> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pem = String::from("-----BEGIN CMS-----\n");
    for chunk in clean.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CMS-----\n");
    der::pem::decode_vec(pem.as_bytes()).unwrap().1
}

/// A multipart/signed message around ENTITY and a detached signature (RFC 8551 3.5.3).
fn multipart_signed(signature: &[u8]) -> String {
    format!(
        "{HEADERS}Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; \
         boundary=\"b-1\"\r\n\r\n--b-1\r\n{ENTITY}\r\n--b-1\r\nContent-Type: application/pkcs7-signature; \
         name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; \
         filename=smime.p7s\r\n\r\n{}\r\n--b-1--\r\n",
        base64(signature)
    )
}

/// An opaque application/pkcs7-mime message around a CMS object.
fn opaque(cms: &[u8], smime_type: &str) -> String {
    format!(
        "{HEADERS}Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n{}",
        base64(cms)
    )
}

/// The signed part (exact bytes) and the DER signature of a multipart/signed message.
fn split_multipart(eml: &str) -> (String, Vec<u8>) {
    let start = eml.find("boundary=\"").unwrap() + "boundary=\"".len();
    let boundary = format!("--{}", &eml[start..start + eml[start..].find('"').unwrap()]);
    let after_first = &eml[eml.find(&format!("{boundary}\r\n")).unwrap() + boundary.len() + 2..];
    let close = format!("\r\n{boundary}");
    let signed = &after_first[..after_first.find(&close).unwrap()];
    let signature_part = &after_first[signed.len() + close.len()..];
    let signature_part = &signature_part[..signature_part.find(&close).unwrap()];
    let body = &signature_part[signature_part.find("\r\n\r\n").unwrap() + 4..];
    (signed.to_string(), unbase64(body))
}

/// The DER CMS object of an opaque application/pkcs7-mime message.
fn opaque_der(eml: &str) -> Vec<u8> {
    unbase64(&eml[eml.find("\r\n\r\n").unwrap() + 4..])
}

fn certdesk_verify(ca: &Ca, eml: &str, what: &str) {
    std::fs::write(ca.path("in.eml"), eml).unwrap();
    let _ = std::fs::remove_file(ca.path("content.txt"));
    let run = certdesk_in(
        ca.dir.path(),
        &["smime", "verify", "--trust", "root.pem", "--in", "in.eml", "--out", "content.txt"],
    );
    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    assert!(run.stderr.contains("signature valid") && run.stderr.contains("jane.doe@example.org"), "{}", run.stderr);
    let content = std::fs::read_to_string(ca.path("content.txt")).unwrap();
    assert!(content.contains("Hello Bob,\r\nall fine."), "{what}: {content:?}");
}

fn certdesk_sign(ca: &Ca, opaque: bool) -> String {
    let mut args =
        vec!["smime", "sign", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "mail.txt", "--out", "s.eml"];
    if opaque {
        args.push("--opaque");
    }
    certdesk_in(ca.dir.path(), &args).ok();
    std::fs::read_to_string(ca.path("s.eml")).unwrap()
}

fn certdesk_decrypt(ca: &Ca, file: &str, what: &str) {
    let run = certdesk_in(
        ca.dir.path(),
        &["smime", "decrypt", "--p12", "jane.p12", "--password-file", "p12pass", "--in", file],
    );
    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    assert!(String::from_utf8_lossy(&run.stdout).contains("The plan."), "{what}");
}

/// certdesk encrypts `msg.txt` to Jane; returns the file name of the bare DER object.
fn certdesk_encrypt(ca: &Ca, cipher: &str) -> String {
    certdesk_in(
        ca.dir.path(),
        &["smime", "encrypt", "--to", "jane.pem", "--cipher", cipher, "--in", "msg.txt", "--out", "e.eml"],
    )
    .ok();
    let der = opaque_der(&std::fs::read_to_string(ca.path("e.eml")).unwrap());
    let name = format!("e-{cipher}.der");
    std::fs::write(ca.path(&name), der).unwrap();
    name
}

/// A GnuPG home in the CA's temp dir; the agent is stopped on drop.
/// gpgsm tests run one at a time: concurrent gpg-agents under load made key import
/// fail now and then (seen on this 2-core machine).
/// Imports a .p12 into gpgsm and checks that its secret key arrived. (An earlier failure
/// here, about one file in 60, was gpgsm's PKCS#12 KDF mishandling a leading zero
/// byte; `compat` files now avoid such salts: see `pki::pkcs12::kdf`.)
pub fn import_p12_into(home: &str, import: impl Fn(usize) -> Run) {
    let _ = std::process::Command::new("gpgconf").args(["--homedir", home, "--launch", "gpg-agent"]).output();
    let run = import(0);
    assert!(run.code == 0 && run.stderr.contains("secret keys imported: 1"), "gpgsm import: {}", run.stderr);
}

pub static GPGSM_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) struct Gpgsm<'a> {
    ca: &'a Ca,
    home: String,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl<'a> Gpgsm<'a> {
    /// Trusts our root (trustlist.txt); imports `jane.p12` with its key if `import_p12`.
    pub(super) fn new(ca: &'a Ca, import_p12: bool) -> Self {
        let home = ca.path("gnupg");
        std::fs::create_dir(&home).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        std::fs::write(home.join("gpg-agent.conf"), "allow-loopback-pinentry\n").unwrap();
        let serial = GPGSM_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let gpgsm = Gpgsm { ca, home: home.to_str().unwrap().to_string(), _serial: serial };
        if import_p12 {
            import_p12_into(&gpgsm.home, |_| gpgsm.with_password(&["--import", "jane.p12"]));
        }
        gpgsm.run(&["--import", "root.pem", "issuing.pem"]).ok();
        // The root is the self-signed certificate: fingerprint = issuer's fingerprint.
        let listed = String::from_utf8(gpgsm.run(&["--with-colons", "--list-keys"]).ok().stdout).unwrap();
        let root = listed
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f[0] == "fpr" && f.len() > 12 && f[9] == f[12])
            .map(|f| f[9].to_string())
            .unwrap_or_else(|| panic!("no self-signed certificate in {listed}"));
        let colons: Vec<String> =
            root.as_bytes().chunks(2).map(|pair| std::str::from_utf8(pair).unwrap().to_string()).collect();
        std::fs::write(home.join("trustlist.txt"), format!("{} S\n", colons.join(":"))).unwrap();
        gpgsm
    }

    fn args<'b>(&'b self, extra: &[&'b str]) -> Vec<&'b str> {
        // No dirmngr here, so no CRL fetching (the CRL URL is not served in this test).
        let mut args = vec!["--homedir", &self.home, "--batch", "--disable-dirmngr", "--disable-crl-checks"];
        args.extend_from_slice(extra);
        args
    }

    pub(super) fn run(&self, extra: &[&str]) -> Run {
        self.ca.tool("gpgsm", &self.args(extra))
    }

    /// With the .p12 password (which also protects the imported key) on file descriptor 0.
    fn with_password(&self, extra: &[&str]) -> Run {
        let mut args = vec!["--pinentry-mode", "loopback", "--passphrase-fd", "0"];
        args.extend_from_slice(extra);
        tool_stdin("gpgsm", &self.args(&args), self.ca.dir.path(), format!("{P12_PASSWORD}\n").as_bytes())
    }
}

impl Drop for Gpgsm<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf").args(["--homedir", &self.home, "--kill", "all"]).output();
    }
}

#[test]
fn gpgsm_signatures_verify_in_certdesk() {
    let ca = setup("rsa3072", "compat");
    let gpgsm = Gpgsm::new(&ca, true);
    for digest in ["SHA256", "SHA384", "SHA512"] {
        let signer = ["-u", "jane.doe@example.org", "--digest-algo", digest];
        let mut detached = signer.to_vec();
        detached.extend_from_slice(&["--detach-sign", "-o", "g.p7s", "entity.txt"]);
        gpgsm.with_password(&detached).ok();
        certdesk_verify(&ca, &multipart_signed(&std::fs::read(ca.path("g.p7s")).unwrap()), digest);

        let mut attached = signer.to_vec();
        attached.extend_from_slice(&["--sign", "-o", "g.p7m", "entity.txt"]);
        gpgsm.with_password(&attached).ok();
        certdesk_verify(&ca, &opaque(&std::fs::read(ca.path("g.p7m")).unwrap(), "signed-data"), digest);
    }
}

#[test]
fn certdesk_signatures_verify_in_gpgsm() {
    for key in ["rsa3072", "p256", "p384"] {
        let ca = setup(key, "modern");
        let gpgsm = Gpgsm::new(&ca, false);
        let (signed, signature) = split_multipart(&certdesk_sign(&ca, false));
        std::fs::write(ca.path("part.txt"), &signed).unwrap();
        std::fs::write(ca.path("part.p7s"), signature).unwrap();
        let run = gpgsm.run(&["--verify", "part.p7s", "part.txt"]);
        assert_eq!(run.code, 0, "{key}: {}", run.stderr);
        assert!(run.stderr.contains("Good signature"), "{key}: {}", run.stderr);
        // gpgsm does check: a changed part fails.
        std::fs::write(ca.path("part.txt"), signed.replace("all fine.", "all lost.")).unwrap();
        let run = gpgsm.run(&["--verify", "part.p7s", "part.txt"]);
        assert_ne!(run.code, 0, "{key}: tampered part accepted: {}", run.stderr);
        assert!(!run.stderr.contains("Good signature"), "{}", run.stderr);

        std::fs::write(ca.path("s.p7m"), opaque_der(&certdesk_sign(&ca, true))).unwrap();
        let run = gpgsm.run(&["--verify", "-o", "g.out", "s.p7m"]);
        assert_eq!(run.code, 0, "{key} opaque: {}", run.stderr);
        assert!(run.stderr.contains("Good signature"), "{key}: {}", run.stderr);
        assert!(std::fs::read_to_string(ca.path("g.out")).unwrap().contains("Hello Bob,"));
    }
}

#[test]
fn gpgsm_encrypts_certdesk_decrypts() {
    let ca = setup("rsa3072", "compat");
    let gpgsm = Gpgsm::new(&ca, true);
    for cipher in ["AES", "AES192", "AES256"] {
        let out = format!("g-{cipher}.p7m");
        gpgsm.run(&["--cipher-algo", cipher, "-r", "jane.doe@example.org", "--encrypt", "-o", &out, "msg.txt"]).ok();
        certdesk_decrypt(&ca, &out, cipher);
        std::fs::write(ca.path("g.eml"), opaque(&std::fs::read(ca.path(&out)).unwrap(), "enveloped-data")).unwrap();
        certdesk_decrypt(&ca, "g.eml", cipher);
    }
    // gpgsm also offers ciphers certdesk does not implement: refused cleanly, no output.
    for cipher in ["3DES", "SEED", "CAMELLIA128"] {
        gpgsm.run(&["--cipher-algo", cipher, "-r", "jane.doe@example.org", "--encrypt", "-o", "x.p7m", "msg.txt"]).ok();
        let run = certdesk_in(
            ca.dir.path(),
            &["smime", "decrypt", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "x.p7m", "--out", "x.txt"],
        );
        assert_eq!(run.code, 1, "{cipher}: {}", run.stderr);
        assert!(run.stderr.contains("not supported"), "{cipher}: {}", run.stderr);
        assert!(!ca.path("x.txt").exists());
    }
}

#[test]
fn certdesk_encrypts_gpgsm_decrypts() {
    let ca = setup("rsa3072", "compat");
    let gpgsm = Gpgsm::new(&ca, true);
    // RSA PKCS#1 v1.5 only: gpgsm 2.2 has neither OAEP nor GCM (see the top of this file).
    for cipher in ["aes-256-cbc", "aes-128-cbc"] {
        let file = certdesk_encrypt(&ca, cipher);
        let run = gpgsm.with_password(&["--decrypt", "-o", "g.out", &file]);
        assert_eq!(run.code, 0, "{cipher}: {}", run.stderr);
        assert!(std::fs::read_to_string(ca.path("g.out")).unwrap().contains("The plan."), "{cipher}");
        std::fs::remove_file(ca.path("g.out")).unwrap();
    }
}

/// An NSS database `nss` with Jane's .p12 and our root trusted for e-mail.
struct Nss<'a> {
    ca: &'a Ca,
    db: String,
    nickname: String,
}

impl<'a> Nss<'a> {
    fn new(ca: &'a Ca) -> Self {
        let dir: PathBuf = ca.path("nss");
        std::fs::create_dir(&dir).unwrap();
        let db = format!("sql:{}", dir.to_str().unwrap());
        ca.tool("certutil", &["-N", "-d", &db, "--empty-password"]).ok();
        ca.tool("pk12util", &["-i", "jane.p12", "-d", &db, "-W", P12_PASSWORD]).ok();
        ca.tool("certutil", &["-A", "-d", &db, "-n", "our root", "-t", "C,C,C", "-i", "root.pem"]).ok();
        let listed = String::from_utf8(ca.tool("certutil", &["-L", "-d", &db]).ok().stdout).unwrap();
        // "Jane Doe (jane.doe@example.org)      u,u,u": the user certificate, with its key.
        let line = listed.lines().find(|l| l.trim_end().ends_with("u,u,u")).unwrap_or_else(|| panic!("{listed}"));
        let nickname = line.trim_end().trim_end_matches("u,u,u").trim_end().to_string();
        Nss { ca, db, nickname }
    }

    fn cmsutil(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-d", &self.db, "-p", ""]);
        self.ca.tool("cmsutil", &all)
    }

    /// The status of the first signer, and cmsutil's whole output (report and content, as
    /// `-o` would take the report too). cmsutil exits 0 even for a bad signature.
    fn signature_status(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["-D", "-h", "1"];
        all.extend_from_slice(args);
        let run = self.cmsutil(&all).ok();
        let report = String::from_utf8(run.stdout).unwrap();
        let status = report
            .split(';')
            .find_map(|field| field.trim().strip_prefix("signer0.status="))
            .unwrap_or_else(|| panic!("no signer status: {report}"))
            .to_string();
        (status, report)
    }
}

#[test]
fn nss_signatures_verify_in_certdesk() {
    for key in ["rsa3072", "p256", "p384"] {
        let ca = setup(key, "modern");
        let nss = Nss::new(&ca);
        for digest in ["SHA256", "SHA384", "SHA512"] {
            let what = format!("{key}/{digest}");
            let signer = ["-S", "-N", &nss.nickname, "-H", digest, "-i", "entity.txt"];
            let mut detached = signer.to_vec();
            detached.extend_from_slice(&["-T", "-o", "n.p7s"]);
            nss.cmsutil(&detached).ok();
            certdesk_verify(&ca, &multipart_signed(&std::fs::read(ca.path("n.p7s")).unwrap()), &what);

            let mut attached = signer.to_vec();
            attached.extend_from_slice(&["-o", "n.p7m"]);
            nss.cmsutil(&attached).ok();
            certdesk_verify(&ca, &opaque(&std::fs::read(ca.path("n.p7m")).unwrap(), "signed-data"), &what);
        }
    }
}

#[test]
fn certdesk_signatures_verify_in_nss() {
    for key in ["rsa3072", "p256", "p384"] {
        let ca = setup(key, "modern");
        let nss = Nss::new(&ca);
        let (signed, signature) = split_multipart(&certdesk_sign(&ca, false));
        std::fs::write(ca.path("part.txt"), &signed).unwrap();
        std::fs::write(ca.path("part.p7s"), signature).unwrap();
        let (status, report) = nss.signature_status(&["-n", "-i", "part.p7s", "-c", "part.txt"]);
        assert_eq!(status, "GoodSignature", "{key}: {report}");
        // cmsutil does check: a changed part fails.
        std::fs::write(ca.path("part.txt"), signed.replace("all fine.", "all lost.")).unwrap();
        let (status, report) = nss.signature_status(&["-n", "-i", "part.p7s", "-c", "part.txt"]);
        assert_eq!(status, "DigestMismatch", "{key}: {report}");

        std::fs::write(ca.path("s.p7m"), opaque_der(&certdesk_sign(&ca, true))).unwrap();
        let (status, report) = nss.signature_status(&["-i", "s.p7m"]);
        assert_eq!(status, "GoodSignature", "{key} opaque: {report}");
        assert!(report.contains("Hello Bob,"), "{report}");
    }
}

#[test]
fn nss_encrypts_certdesk_decrypts() {
    // RSA only: NSS 3.87 cannot encrypt to an EC certificate (see the top of this file).
    let ca = setup("rsa3072", "modern");
    let nss = Nss::new(&ca);
    nss.cmsutil(&["-E", "-r", "jane.doe@example.org", "-i", "msg.txt", "-o", "n.p7m"]).ok();
    certdesk_decrypt(&ca, "n.p7m", "cmsutil -E");
    std::fs::write(ca.path("n.eml"), opaque(&std::fs::read(ca.path("n.p7m")).unwrap(), "enveloped-data")).unwrap();
    certdesk_decrypt(&ca, "n.eml", "cmsutil -E as MIME");
}

#[test]
fn certdesk_encrypts_nss_decrypts() {
    let ca = setup("rsa3072", "modern");
    let nss = Nss::new(&ca);
    // RSA PKCS#1 v1.5 and AES-CBC only: NSS 3.87 has neither OAEP nor GCM in CMS.
    for cipher in ["aes-256-cbc", "aes-128-cbc"] {
        let file = certdesk_encrypt(&ca, cipher);
        let run = nss.cmsutil(&["-D", "-i", &file, "-o", "n.out"]);
        assert_eq!(run.code, 0, "{cipher}: {}", run.stderr);
        assert!(std::fs::read_to_string(ca.path("n.out")).unwrap().contains("The plan."), "{cipher}");
        std::fs::remove_file(ca.path("n.out")).unwrap();
    }
}
