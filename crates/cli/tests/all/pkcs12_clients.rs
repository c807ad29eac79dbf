//! Our .p12 files in the clients' own tools: gpgsm, NSS pk12util (Thunderbird's
//! library) and Java keytool.

use super::common::*;

#[test]
fn keytool_and_pk12util_read_both_formats() {
    let ca = Ca::new("p384");
    for format in ["modern", "compat"] {
        let out = format!("{format}.p12");
        ca.issue_p12("rsa3072", format, &out).ok();
        let listed =
            ca.tool("keytool", &["-list", "-keystore", &out, "-storetype", "PKCS12", "-storepass", P12_PASSWORD]).ok();
        let text = String::from_utf8(listed.stdout).unwrap();
        assert!(text.contains("PrivateKeyEntry"), "keytool on {format}: {text}");
        let nss = ca.tool("pk12util", &["-l", &out, "-W", P12_PASSWORD]).ok();
        let text = String::from_utf8(nss.stdout).unwrap();
        assert!(text.contains("Key(shrouded)") && text.contains("Jane Doe"), "pk12util on {format}: {text}");
        let wrong = ca.tool("pk12util", &["-l", &out, "-W", "not the password"]);
        assert_ne!(wrong.code, 0);
    }
}

#[test]
fn gpgsm_imports_the_compat_p12_with_its_secret_key() {
    let _serial = super::clients::GPGSM_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ca = Ca::new("p384");
    ca.issue_p12("rsa3072", "compat", "compat.p12").ok();
    let home = ca.path("gnupg");
    std::fs::create_dir(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(home.join("gpg-agent.conf"), "allow-loopback-pinentry\n").unwrap();
    let home = home.to_str().unwrap();
    // gpgsm ignores --passphrase for .p12 import; the password must come on a file descriptor.
    let args = [
        "--homedir",
        home,
        "--batch",
        "--disable-dirmngr",
        "--pinentry-mode",
        "loopback",
        "--passphrase-fd",
        "0",
        "--import",
        "compat.p12",
    ];
    super::clients::import_p12_into(home, |_| {
        tool_stdin("gpgsm", &args, ca.dir.path(), format!("{P12_PASSWORD}\n").as_bytes())
    });
    let secret = ca.tool("gpgsm", &["--homedir", home, "--batch", "--disable-dirmngr", "--list-secret-keys"]).ok();
    let text = String::from_utf8(secret.stdout).unwrap();
    assert!(text.contains("jane.doe@example.org"), "{text}");
    let _ = ca.tool("gpgconf", &["--homedir", home, "--kill", "all"]);
}
