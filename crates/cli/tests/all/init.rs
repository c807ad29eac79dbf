//! `certdesk init`: creates a working CA once, refuses to run twice, leaves nothing on failure.

use super::common::*;

fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push((entry.display().to_string(), std::fs::read(&entry).unwrap()));
    }
    out.sort();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn init_makes_a_chain_openssl_accepts_and_keys_are_encrypted() {
    for key in ["p384", "rsa4096"] {
        let ca = Ca::new(key);
        // The chain verifies: issuing CA under the self-signed root.
        ca.split_chain();
        ca.tool("openssl", &["verify", "-CAfile", "root.pem", "issuing.pem"]).ok();
        let text =
            String::from_utf8(ca.tool("openssl", &["x509", "-in", "issuing.pem", "-noout", "-text"]).ok().stdout)
                .unwrap();
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains("E-mail Protection"));
        // Keys at rest are encrypted: OpenSSL needs the passphrase to open them.
        let key_pem = std::fs::read_to_string(ca.path("data/ca/issuing-key.pem")).unwrap();
        assert!(key_pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let wrong = ca.tool("openssl", &["pkey", "-in", "data/ca/issuing-key.pem", "-passin", "pass:wrong", "-noout"]);
        assert_ne!(wrong.code, 0);
        ca.tool(
            "openssl",
            &["pkey", "-in", "data/ca/issuing-key.pem", "-passin", &format!("pass:{PASSPHRASE}"), "-noout"],
        )
        .ok();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ca.path("data/ca/issuing-key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key file readable by others");
        }
    }
}

#[test]
fn init_twice_refuses_and_changes_nothing() {
    let ca = Ca::new("p384");
    let before = snapshot(&ca.path("data"));
    let again = ca.run(&["init", "--org", "Other", "--country", "FR"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(snapshot(&ca.path("data")), before);
    assert_eq!(ca.audit_records(), 1);
}

#[test]
fn init_failures_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // No passphrase at all.
    let run = certdesk_in(cwd, &["--data", "d", "init", "--org", "X", "--country", "DE"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("passphrase"), "{}", run.stderr);
    // A weak passphrase.
    std::fs::write(cwd.join("weak"), "secret\n").unwrap();
    let run = init_in(cwd, "weak", &["--country", "DE"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("too short"), "{}", run.stderr);
    // A bad country code and a bad organizationIdentifier.
    std::fs::write(cwd.join("pass"), PASSPHRASE).unwrap();
    let run = init_in(cwd, "pass", &["--country", "Germany"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("country"), "{}", run.stderr);
    let run = init_in(cwd, "pass", &["--country", "DE", "--org-id", "12345"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("organizationIdentifier"), "{}", run.stderr);
    let mut names: Vec<String> =
        std::fs::read_dir(cwd).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, vec!["pass", "weak"], "something was left behind");
}

#[test]
fn missing_or_half_initialised_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = certdesk_in(dir.path(), &["--data", "nowhere", "ca", "chain"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("run `certdesk init` first"), "{}", run.stderr);

    let ca = Ca::new("p384");
    std::fs::remove_file(ca.path("data/ca/issuing-key.pem")).unwrap();
    let run = ca.run(&["crl"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("incomplete") && run.stderr.contains("issuing-key.pem"), "{}", run.stderr);
}

#[test]
fn wrong_passphrase_is_refused_without_output() {
    let ca = Ca::new("p384");
    std::fs::write(ca.path("wrong"), "a different passphrase entirely").unwrap();
    let run = certdesk_in(ca.dir.path(), &["--data", "data", "--passphrase-file", "wrong", "crl", "--out", "x.crl"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("passphrase is wrong"), "{}", run.stderr);
    assert!(!ca.path("x.crl").exists());
    assert_eq!(ca.audit_records(), 1);
}

/// `config check` validates a configuration as every command would, without starting
/// anything: the file `init` wrote passes and is summarised; a bad value, an unknown key
/// and an SMTP transport without a host are each refused with the reason (exit 2).
#[test]
fn config_check_validates_without_starting() {
    let ca = Ca::new("p384");
    let run = certdesk_in(ca.dir.path(), &["--data", "data", "config", "check"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = String::from_utf8(run.stdout).unwrap();
    assert!(out.contains("publication: CRL http://pki.example.org/crl/issuing.crl"), "{out}");
    assert!(out.contains("CAA: not checked") && out.contains("mail: outbox folder"), "{out}");
    let original = std::fs::read_to_string(ca.path("data/certdesk.toml")).unwrap();
    for (broken, reason) in [
        (original.replace("base_url = \"http://pki.example.org\"", "base_url = \"ftp://x\""), "not an http:// URL"),
        (format!("{original}\n[nonsense]\nx = 1\n"), "unknown field"),
        (original.replace("transport = \"outbox\"", "transport = \"smtp\""), "needs mail.smtp_host"),
    ] {
        std::fs::write(ca.path("other.toml"), &broken).unwrap();
        let run = certdesk_in(ca.dir.path(), &["config", "check", "other.toml"]);
        assert_eq!(run.code, 2, "{broken}");
        assert!(run.stderr.contains(reason), "{reason}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // A database URL is shown without its credentials, whatever they hold.
    for url in ["postgres://pki:s3cret@db.example.org/pki?password=more", "postgres://pki:s3c@r?e/t@db.example.org/pki"]
    {
        let with_db = original.replace("[database]\n", &format!("[database]\nurl = \"{url}\"\n"));
        std::fs::write(ca.path("db.toml"), &with_db).unwrap();
        let run = certdesk_in(ca.dir.path(), &["config", "check", "db.toml"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let out = String::from_utf8(run.stdout).unwrap();
        assert!(out.contains("database: postgres://db.example.org\n"), "{out}");
        assert!(!out.contains("s3c") && !out.contains("more") && !out.contains("pki:"), "{out}");
    }
    // A line the parser cannot read is not quoted back (it may hold a secret).
    let unquoted = original.replace("[database]\n", "[database]\nurl = postgres://pki:s3cret@db/pki\n");
    std::fs::write(ca.path("bad.toml"), &unquoted).unwrap();
    let run = certdesk_in(ca.dir.path(), &["config", "check", "bad.toml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("line ") && !run.stderr.contains("s3cret"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(ca.path("data/certdesk.toml")).unwrap(), original, "the checked file changed");
}

/// Issue 12: what would make every certificate of the CA fail pkilint is refused at
/// init, with one sentence, exit 2 and nothing left behind: an organisation name too
/// long for the CA names, a country that does not exist, an organizationIdentifier of
/// another country, HTML entities or placeholders as the name, a base URL with a query,
/// fragment or user information.
#[test]
fn init_refuses_names_and_urls_pkilint_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("pass"), PASSPHRASE).unwrap();
    let org43 = "O".repeat(43);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--org", &org43, "--country", "DE"], "at most 42 characters"),
        (vec!["--org", "X", "--country", "UK"], "not a country code in use"),
        (vec!["--org", "X", "--country", "XX"], "not a country code in use"),
        (vec!["--org", "X", "--country", "DE", "--org-id", "VATFR-123456789"], "organisation's country"),
        (vec!["--org", "X", "--country", "DE", "--org-id", "GOVDE-1"], "no registration reference"),
        (vec!["--org", "Smith &amp; Sons", "--country", "DE"], "HTML"),
        (vec!["--org", "-", "--country", "DE"], "no letter"),
        (vec!["--org", "X", "--country", "DE", "--base-url", "http://pki.example.org/?x=1"], "query"),
        (vec!["--org", "X", "--country", "DE", "--base-url", "http://pki.example.org/#x"], "fragment"),
        (vec!["--org", "X", "--country", "DE", "--base-url", "http://u:p@pki.example.org/"], "user information"),
        (vec!["--org", "X", "--country", "DE", "--base-url", "https://pki.example.org"], "http://"),
        (vec!["--org", "X", "--country", "DE", "--base-url", "http://pki.example.org:99999"], "port"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["--data", "d", "--passphrase-file", "pass", "init"];
        all.extend_from_slice(&args);
        let run = certdesk_in(cwd, &all);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{args:?}: {}", run.stderr);
        let left: Vec<_> = std::fs::read_dir(cwd).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("pass")], "{args:?} left something behind");
    }
    // 42 characters fit: "<org> S/MIME OCSP Responder" is 64.
    let org42 = "O".repeat(42);
    certdesk_in(cwd, &["--data", "d", "--passphrase-file", "pass", "init", "--org", &org42, "--country", "GB"]).ok();
}

/// Issue 12 item 5: `init` says which profiles the CA can issue and why not the others,
/// and `issue` without --profile takes one it can: with the defaults (localhost, no
/// --org-id) that is private; the BR profiles are refused with the fix in the message,
/// nothing signed or recorded.
#[test]
fn init_names_the_profiles_it_can_issue_and_issue_defaults_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("pass"), PASSPHRASE).unwrap();
    let run = init_in(cwd, "pass", &["--country", "DE"]).ok();
    assert!(run.stderr.contains("can issue: private (issue's default: private)"), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot issue sponsor-strict, sponsor-multipurpose: sponsor-validated"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot issue mailbox-strict, mailbox-multipurpose: ca.base_url http://localhost:8080"),
        "{}",
        run.stderr
    );
    openssl_csr(cwd, "r", &CsrOptions { key: KeyKind::Rsa2048, ..CsrOptions::default() });
    let issue = |extra: &[&str]| {
        let mut args = vec!["--data", "d", "--passphrase-file", "pass", "issue", "--csr", "r.csr"];
        args.extend_from_slice(&["--email", "a@example.org", "--given-name", "A", "--surname", "B", "--out", "o.pem"]);
        args.extend_from_slice(extra);
        certdesk_in(cwd, &args)
    };
    for profile in ["mailbox-strict", "mailbox-multipurpose"] {
        let run = issue(&["--profile", profile]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("localhost") && run.stderr.contains("set a public base URL"), "{}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(!cwd.join("o.pem").exists());
    }
    let audit = |cwd: &std::path::Path| {
        let run = certdesk_in(cwd, &["--data", "d", "audit", "verify"]).ok();
        String::from_utf8(run.stdout).unwrap().split_whitespace().nth(3).unwrap().to_string()
    };
    assert_eq!(audit(cwd), "1", "a refusal was recorded");
    let run = issue(&[]).ok();
    assert!(run.stderr.contains("(private)"), "{}", run.stderr);
    // config check says the same.
    let run = certdesk_in(cwd, &["--data", "d", "config", "check"]).ok();
    let out = String::from_utf8(run.stdout).unwrap();
    assert!(out.contains("can issue: private") && out.contains("cannot issue mailbox-strict"), "{out}");
}
