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
    let text = gpgsm_import(&ca, "gnupg", "compat.p12");
    assert!(text.contains("jane.doe@example.org"), "{text}");
}

/// Imports `p12` into a fresh gpgsm home `home` and returns its secret keys listing.
fn gpgsm_import(ca: &Ca, home: &str, p12: &str) -> String {
    let home = ca.path(home);
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
        p12,
    ];
    super::clients::import_p12_into(home, |_| {
        tool_stdin("gpgsm", &args, ca.dir.path(), format!("{P12_PASSWORD}\n").as_bytes())
    });
    let secret = ca.tool("gpgsm", &["--homedir", home, "--batch", "--disable-dirmngr", "--list-secret-keys"]).ok();
    let _ = ca.tool("gpgconf", &["--homedir", home, "--kill", "all"]);
    String::from_utf8(secret.stdout).unwrap()
}

/// Issue 17: the client advisor's choice for each client, and for a mix, imported by
/// the tool that stands for the client (NSS pk12util for Thunderbird, gpgsm 2.2 for
/// Kleopatra/KMail with GnuPG 2.2, Java keytool for Android's key store, OpenSSL for
/// the rest, with the algorithms each needs); the install steps are printed.
#[test]
fn the_advisor_s_format_is_imported_by_each_client_s_tool() {
    let _serial = super::clients::GPGSM_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ca = Ca::new("p384");
    let cases: &[(&[&str], &str)] = &[
        (&["thunderbird"], "modern"),
        (&["outlook", "apple-mail", "ios"], "modern"),
        (&["kleopatra"], "modern"),
        (&["outlook-old-windows"], "compat"),
        (&["apple-mail-old"], "compat"),
        (&["ios-old"], "compat"),
        (&["android"], "compat"),
        (&["kleopatra-old"], "compat"),
        (&["other"], "compat"),
        (&["thunderbird", "kleopatra-old", "android"], "compat"),
    ];
    for (i, (clients, format)) in cases.iter().enumerate() {
        let out = format!("advised-{i}.p12");
        let mut args = vec![
            "issue",
            "--email",
            "jane.doe@example.org",
            "--given-name",
            "Jane",
            "--surname",
            "Doe",
            "--p12",
            &out,
            "--password-file",
            "p12pass",
        ];
        for client in *clients {
            args.extend_from_slice(&["--client", client]);
        }
        let run = ca.run(&args).ok();
        assert!(run.stderr.contains(&format!(".p12 format {format}")), "{clients:?}: {}", run.stderr);
        assert!(run.stderr.contains("1. ") && run.stderr.contains("3. "), "no install steps: {}", run.stderr);
        // The algorithms in the file, as OpenSSL reads them.
        let info = ca.tool("openssl", &["pkcs12", "-in", &out, "-info", "-noout", "-passin", "file:p12pass"]).ok();
        let info = info.stderr;
        if *format == "modern" {
            assert!(info.contains("PBES2") && info.contains("AES-256-CBC") && info.contains("sha256"), "{info}");
        } else {
            assert!(info.contains("pbeWithSHA1And3-KeyTripleDES-CBC") && info.contains("MAC: sha1"), "{info}");
        }
        for client in *clients {
            match *client {
                "thunderbird" => {
                    let nss = ca.tool("pk12util", &["-l", &out, "-W", P12_PASSWORD]).ok();
                    assert!(String::from_utf8(nss.stdout).unwrap().contains("Key(shrouded)"), "{client}");
                }
                "android" => {
                    let listed = ca
                        .tool(
                            "keytool",
                            &["-list", "-keystore", &out, "-storetype", "PKCS12", "-storepass", P12_PASSWORD],
                        )
                        .ok();
                    assert!(String::from_utf8(listed.stdout).unwrap().contains("PrivateKeyEntry"), "{client}");
                }
                "kleopatra" => {
                    // GnuPG 2.4 reads the modern format; 2.2 (this Debian's) does not,
                    // which is why the advisor gives Kleopatra with GnuPG 2.2 compat.
                    let version = String::from_utf8(ca.tool("gpgsm", &["--version"]).ok().stdout).unwrap();
                    let home = ca.path(&format!("gnupg-{i}"));
                    std::fs::create_dir(&home).unwrap();
                    std::fs::write(home.join("gpg-agent.conf"), "allow-loopback-pinentry\n").unwrap();
                    let home = home.to_str().unwrap();
                    let args = ["--homedir", home, "--batch", "--disable-dirmngr", "--pinentry-mode", "loopback"];
                    let mut import = args.to_vec();
                    import.extend_from_slice(&["--passphrase-fd", "0", "--import", &out]);
                    let run = tool_stdin("gpgsm", &import, ca.dir.path(), format!("{P12_PASSWORD}\n").as_bytes());
                    let _ = ca.tool("gpgconf", &["--homedir", home, "--kill", "all"]);
                    let imported = run.stderr.contains("secret keys imported: 1");
                    if version.contains("gpgsm (GnuPG) 2.2.") {
                        assert!(!imported && run.stderr.contains("PBES2"), "gpgsm 2.2 read PBES2? {}", run.stderr);
                    } else {
                        assert!(imported, "{version}: {}", run.stderr);
                    }
                }
                "kleopatra-old" => {
                    let listing = gpgsm_import(&ca, &format!("gnupg-{i}"), &out);
                    assert!(listing.contains("jane.doe@example.org"), "{listing}");
                }
                _ => {
                    let key = ca
                        .tool("openssl", &["pkcs12", "-in", &out, "-nocerts", "-nodes", "-passin", "file:p12pass"])
                        .ok();
                    assert!(String::from_utf8(key.stdout).unwrap().contains("PRIVATE KEY"), "{client}");
                }
            }
        }
    }
    // An explicit format wins, and the steps say so; an unknown client is refused.
    let run = ca
        .run(&[
            "issue",
            "--email",
            "jane.doe@example.org",
            "--given-name",
            "Jane",
            "--surname",
            "Doe",
            "--p12",
            "explicit.p12",
            "--password-file",
            "p12pass",
            "--client",
            "android",
            "--p12-format",
            "modern",
        ])
        .ok();
    assert!(run.stderr.contains(".p12 format modern (as --p12-format asked"), "{}", run.stderr);
    let bad = ca.run(&[
        "issue",
        "--email",
        "jane.doe@example.org",
        "--given-name",
        "Jane",
        "--surname",
        "Doe",
        "--p12",
        "bad.p12",
        "--password-file",
        "p12pass",
        "--client",
        "eudora",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("eudora") && bad.stderr.contains("thunderbird"), "{}", bad.stderr);
    assert!(!ca.path("bad.p12").exists());
}
