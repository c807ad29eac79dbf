//! Issue 14: the command line follows the conventions of `openssl` and `step`: shell
//! completion, a man page, RFC 5280 reason names.

use super::common::*;

#[test]
fn completion_scripts_and_the_man_page_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let bash = certdesk_in(dir.path(), &["completion", "bash"]).ok();
    let script = String::from_utf8(bash.stdout).unwrap();
    assert!(script.contains("complete -F") && script.contains("certdesk"), "{script}");
    std::fs::write(dir.path().join("certdesk.bash"), &script).unwrap();
    // bash reads it without a syntax error.
    tool("bash", &["-n", "certdesk.bash"], dir.path()).ok();
    for shell in ["zsh", "fish"] {
        let run = certdesk_in(dir.path(), &["completion", shell]).ok();
        let text = String::from_utf8(run.stdout).unwrap();
        assert!(text.contains("smime") && text.contains("serve"), "{shell}: {text}");
    }
    let refused = certdesk_in(dir.path(), &["completion", "tcsh"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    let man = certdesk_in(dir.path(), &["man"]).ok();
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(page.contains(".TH certdesk 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", "serve", "smime", "revoke"] {
        assert!(page.contains(section), "the man page lacks {section}");
    }
}

#[test]
fn revocation_reasons_take_the_rfc_5280_names_too() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", KeyKind::P256);
    let cert = ca.issue_csr(&csr, "strict", "leaf.pem");
    let serial = ca.serial_of(&cert);
    let wrong = ca.run(&["revoke", &serial, "--reason", "KeyCompromised"]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("keyCompromise"), "{}", wrong.stderr);
    ca.run(&["revoke", &serial, "--reason", "keyCompromise"]).ok();
    ca.run(&["crl", "--out", "crl.der"]).ok();
    let text = ca.tool("openssl", &["crl", "-in", "crl.der", "-inform", "DER", "-noout", "-text"]).ok();
    assert!(String::from_utf8(text.stdout).unwrap().contains("Key Compromise"));
}

/// The CA's `--data` and `--passphrase-file` belong to the CA commands: the client
/// commands' help does not show them; they are taken before or after a CA command.
#[test]
fn ca_options_stay_out_of_the_client_commands() {
    let dir = tempfile::tempdir().unwrap();
    for command in
        [&["smime", "--help"][..], &["smime", "sign", "--help"], &["smime", "verify", "--help"], &["enroll", "--help"]]
    {
        let help = String::from_utf8(certdesk_in(dir.path(), command).ok().stdout).unwrap();
        assert!(!help.contains("--data") && !help.contains("--passphrase-file"), "{command:?}: {help}");
    }
    for command in [&["issue", "--help"][..], &["crl", "--help"], &["audit", "verify", "--help"], &["--help"]] {
        let help = String::from_utf8(certdesk_in(dir.path(), command).ok().stdout).unwrap();
        assert!(help.contains("--data") && help.contains("--passphrase-file"), "{command:?}: {help}");
    }
    let ca = Ca::new("p384");
    // After the command, and nested (`audit verify --data`), as before it.
    let after = certdesk_in(ca.dir.path(), &["crl", "--data", "data", "--passphrase-file", "pass", "--out", "a.crl"]);
    after.ok();
    let nested = certdesk_in(ca.dir.path(), &["audit", "verify", "--data", "data"]).ok();
    assert!(String::from_utf8(nested.stdout).unwrap().starts_with("audit log intact"));
    // Without any: the default data directory, which does not exist here.
    let none = certdesk_in(ca.dir.path(), &["audit", "verify"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("certdesk-data"), "{}", none.stderr);
}

/// Fixed value lists are enums in the help, with the library's names.
#[test]
fn value_lists_are_enums_in_the_help() {
    let dir = tempfile::tempdir().unwrap();
    let help = String::from_utf8(certdesk_in(dir.path(), &["issue", "--help"]).ok().stdout).unwrap();
    for name in [
        "sponsor-strict",
        "sponsor-multipurpose",
        "mailbox-strict",
        "mailbox-multipurpose",
        "private",
        "rsa3072",
        "p384",
    ] {
        assert!(help.contains(name), "issue --help lacks {name}: {help}");
    }
    let enroll = String::from_utf8(certdesk_in(dir.path(), &["enroll", "--help"]).ok().stdout).unwrap();
    assert!(enroll.contains("mailbox-multipurpose") && enroll.contains("p256"), "{enroll}");
    let user = String::from_utf8(certdesk_in(dir.path(), &["user", "add", "--help"]).ok().stdout).unwrap();
    assert!(user.contains("officer") && user.contains("admin"), "{user}");
    let wrong = certdesk_in(dir.path(), &["user", "add", "--email", "a@example.org", "--role", "applicant"]);
    assert_eq!(wrong.code, 2);
    assert!(wrong.stderr.contains("[possible values: officer, admin]"), "{}", wrong.stderr);
}

/// `-` is stdin or stdout: a CSR and the password from stdin, the certificate and the
/// CA chain to stdout; two arguments cannot both take stdin.
#[test]
fn a_dash_is_stdin_or_stdout() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", KeyKind::P256);
    let person = ["--email", "jane.doe@example.org", "--given-name", "Jane", "--surname", "Doe"];
    let mut args = vec!["--data", "data", "--passphrase-file", "pass", "issue", "--csr", "-", "--out", "-"];
    args.extend_from_slice(&person);
    let issued = certdesk_stdin(ca.dir.path(), &args, &std::fs::read(&csr).unwrap()).ok();
    std::fs::write(ca.path("leaf.pem"), &issued.stdout).unwrap();
    ca.tool("openssl", &["verify", "-CAfile", "chain.pem", "leaf.pem"]).ok();
    assert!(!ca.path("-").exists(), "a file named - was written");

    // The CA passphrase from stdin.
    let chain = certdesk_stdin(
        ca.dir.path(),
        &["--data", "data", "--passphrase-file", "-", "crl", "--new", "--out", "-"],
        format!("{PASSPHRASE}\n").as_bytes(),
    )
    .ok();
    std::fs::write(ca.path("new.crl"), &chain.stdout).unwrap();
    ca.tool("openssl", &["crl", "-inform", "DER", "-in", "new.crl", "-noout"]).ok();

    // A .p12 to stdout, its password from stdin.
    let mut args = vec![
        "--data",
        "data",
        "--passphrase-file",
        "pass",
        "issue",
        "--p12",
        "-",
        "--password-file",
        "-",
        "--key",
        "p256",
    ];
    args.extend_from_slice(&person);
    let p12 = certdesk_stdin(ca.dir.path(), &args, format!("{P12_PASSWORD}\n").as_bytes()).ok();
    std::fs::write(ca.path("jane.p12"), &p12.stdout).unwrap();
    ca.jane_pem(false);
    ca.tool("openssl", &["verify", "-CAfile", "chain.pem", "jane.pem"]).ok();

    // Two arguments cannot both be stdin: refused before anything is signed.
    let records = ca.audit_records();
    let mut args = vec!["--data", "data", "--passphrase-file", "-", "issue", "--csr", "-"];
    args.extend_from_slice(&person);
    let both = certdesk_stdin(ca.dir.path(), &args, &std::fs::read(&csr).unwrap());
    assert_eq!(both.code, 2, "{}", both.stderr);
    assert!(both.stderr.contains("another argument given as - was read from it"), "{}", both.stderr);
    assert_eq!(ca.audit_records(), records);

    // A device is never replaced by the file written via a rename (session 9 replaced
    // this machine's /dev/null so): refused with the way out.
    let before = std::fs::metadata("/dev/null").unwrap().file_type();
    let device = ca.run(&["crl", "--out", "/dev/null"]);
    assert_eq!(device.code, 2, "{}", device.stderr);
    assert!(device.stderr.contains("not a regular file"), "{}", device.stderr);
    assert_eq!(std::fs::metadata("/dev/null").unwrap().file_type(), before);
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    // smime: sign a message from stdin (`--in -`) to stdout (`--out -`), verify it.
    let signed = certdesk_stdin(
        ca.dir.path(),
        &["smime", "sign", "--p12", "jane.p12", "--password-file", "p12pass", "--in", "-", "--out", "-"],
        b"Content-Type: text/plain\r\n\r\nhello\r\n",
    )
    .ok();
    let verified = certdesk_stdin(
        ca.dir.path(),
        &["smime", "verify", "--trust", "chain.pem", "--offline", "--in", "-"],
        &signed.stdout,
    )
    .ok();
    assert!(String::from_utf8(verified.stdout).unwrap().contains("hello"));
}

/// `--json` prints one object on stdout: the outcome, or the failure with its exit and
/// stable error code (docs/error-codes.md).
#[test]
fn json_outcomes_and_error_codes() {
    let ca = Ca::new("p384");
    let json = |run: &Run| -> serde_json::Value {
        serde_json::from_slice(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&run.stdout)))
    };
    let csr = ca.csr("k", KeyKind::P256);
    let issue = ca
        .run(&[
            "issue",
            "--csr",
            csr.to_str().unwrap(),
            "--email",
            "jane.doe@example.org",
            "--given-name",
            "Jane",
            "--surname",
            "Doe",
            "--json",
        ])
        .ok();
    let issued = json(&issue);
    assert_eq!(issued["ok"], true);
    assert_eq!(issued["profile"], "sponsor-strict");
    let serial = issued["serial"].as_str().unwrap().to_string();
    std::fs::write(ca.path("leaf.pem"), issued["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(ca.serial_of(&ca.path("leaf.pem")), serial);

    let revoked = json(&ca.run(&["revoke", &serial, "--reason", "keyCompromise", "--json"]).ok());
    assert_eq!(revoked["reason"], "key-compromise");
    assert_eq!(revoked["serial"], serial.as_str());
    let again = ca.run(&["revoke", &serial, "--reason", "superseded", "--json"]);
    assert_eq!(again.code, 1);
    let failure = json(&again);
    assert_eq!(
        (failure["ok"].clone(), failure["exit"].clone(), failure["code"].clone()),
        (false.into(), 1.into(), 1004.into())
    );
    assert!(failure["error"].as_str().unwrap().contains("already revoked"));

    let crl = json(&ca.run(&["crl", "--out", "c.crl", "--json"]).ok());
    assert_eq!(crl["new"], true, "a revocation since the last CRL makes a new one: {crl}");
    let number = ca.tool("openssl", &["crl", "-inform", "DER", "-in", "c.crl", "-noout", "-crlnumber"]).ok();
    let number = String::from_utf8(number.stdout).unwrap();
    let number = i64::from_str_radix(number.trim().trim_start_matches("crlNumber=0x"), 16).unwrap();
    assert_eq!(crl["number"], number, "{crl}");
    let no_out = ca.run(&["crl", "--json"]);
    assert_eq!(no_out.code, 2);

    let audit = json(&ca.run(&["audit", "verify", "--json"]).ok());
    assert!(audit["head"].as_str().unwrap().starts_with(&format!("{}:", audit["records"])));

    let config = json(&ca.run(&["config", "check", "--json"]).ok());
    assert!(config["settings"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().starts_with("organisation:")));
    std::fs::write(ca.path("bad.toml"), "[ca]\norganization = 5\n").unwrap();
    let bad = ca.run(&["config", "check", "bad.toml", "--json"]);
    assert_eq!(bad.code, 2);
    assert_eq!(json(&bad)["code"], 1007);

    // A usage error: exit 2, code 1001.
    let missing = ca.run(&[
        "issue",
        "--csr",
        "nowhere.csr",
        "--email",
        "a@example.org",
        "--given-name",
        "A",
        "--surname",
        "B",
        "--json",
    ]);
    assert_eq!((missing.code, json(&missing)["code"].clone()), (2, 1001.into()));

    // cert list / show find it without SQL.
    let list = json(&ca.run(&["cert", "list", "--email", "jane.doe@EXAMPLE.org", "--json"]).ok());
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["status"], "revoked");
    assert_eq!(entries[0]["revocation_reason"], "key-compromise");
    let valid = json(&ca.run(&["cert", "list", "--status", "valid", "--json"]).ok());
    assert!(valid.as_array().unwrap().is_empty(), "{valid}");
    let text = String::from_utf8(ca.run(&["cert", "list"]).ok().stdout).unwrap();
    assert!(text.starts_with(&serial) && text.contains("revoked"), "{text}");
    let upper = serial.to_ascii_uppercase();
    let shown = String::from_utf8(ca.run(&["cert", "show", &upper]).ok().stdout).unwrap();
    assert!(shown.contains("status: revoked") && shown.contains("email: jane.doe@example.org"), "{shown}");
    let pem = ca.run(&["cert", "show", &serial, "--pem"]).ok();
    assert_eq!(pem.stdout, std::fs::read(ca.path("leaf.pem")).unwrap());
    let garbage = ca.run(&["cert", "show", "not-a-serial", "--json"]);
    assert_eq!((garbage.code, json(&garbage)["code"].clone()), (2, 1001.into()));
    let unknown = ca.run(&["cert", "show", "0123456789abcdef", "--json"]);
    assert_eq!((unknown.code, json(&unknown)["code"].clone()), (1, 1003.into()));
}
