//! Issue 13: the CA keys on a PKCS#11 token (SoftHSM2, Debian `softhsm2`, in a token
//! directory of the test's own): init makes them there, sensitive and never extractable
//! (OpenSC's pkcs11-tool reads the attributes); issue, revoke, CRL and OCSP work, and
//! OpenSSL and pkilint accept the results; a wrong PIN, a missing module and a missing
//! token are clear errors with nothing written.

use std::path::Path;
use std::process::Command;

use super::common::*;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711";

/// A SoftHSM2 configuration and token directory in `dir`, with one token `label`.
fn softhsm(dir: &Path, label: &str) -> String {
    assert!(Path::new(MODULE).exists(), "SoftHSM2 is needed (Debian softhsm2; .ci/run installs it)");
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let run = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "123456"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util is needed (Debian softhsm2)");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    conf
}

#[test]
fn a_ca_with_its_keys_on_a_token_issues_revokes_and_answers_ocsp() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm(dir.path(), "certdesk-ca");
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--data", "data", "--passphrase-file", "pin"];
        all.extend_from_slice(args);
        certdesk_env(dir.path(), &all, &env)
    };
    run(&[
        "init",
        "--org",
        "Example University",
        "--country",
        "DE",
        "--org-id",
        "VATDE-123456789",
        "--base-url",
        "http://pki.example.org",
        "--pkcs11-module",
        MODULE,
        "--token-label",
        "certdesk-ca",
    ])
    .ok();
    // The data directory names the keys; it holds none.
    for key in ["root-key.pem", "issuing-key.pem", "ocsp-key.pem"] {
        let text = std::fs::read_to_string(dir.path().join("data/ca").join(key)).unwrap();
        assert!(text.starts_with("# certdesk: this key is in a PKCS#11 token"), "{key}: {text}");
        assert!(!text.contains("PRIVATE KEY"), "{key}");
    }
    // pkcs11-tool (OpenSC) sees three private keys, sensitive and never extractable.
    let objects = tool_env(
        dir.path(),
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            "certdesk-ca",
            "--login",
            "--pin",
            PIN,
            "--list-objects",
            "--type",
            "privkey",
        ],
        &env,
    )
    .ok();
    let listing = String::from_utf8(objects.stdout).unwrap();
    for label in ["certdesk-root", "certdesk-issuing", "certdesk-ocsp"] {
        let entry = listing
            .split("Private Key Object")
            .find(|e| e.contains(&format!("label:      {label}")))
            .unwrap_or_else(|| panic!("{label} not on the token: {listing}"));
        let line = |name: &str| -> Vec<String> {
            let line = entry.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{entry}"));
            line.split_once(':').unwrap().1.split(',').map(|w| w.trim().to_string()).collect()
        };
        let access = line("Access:");
        for needed in ["sensitive", "always sensitive", "never extractable"] {
            assert!(access.iter().any(|a| a == needed), "{label}: {entry}");
        }
        assert!(!access.iter().any(|a| a == "extractable"), "{label}: {entry}");
        assert_eq!(line("Usage:"), ["sign"], "{label}: a CA key only signs: {entry}");
    }

    run(&["ca", "chain", "--out", "chain.pem"]).ok();
    let csr = |name: &str| {
        tool(
            "openssl",
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:3072",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-subj",
                "/CN=x",
                "-out",
                &format!("{name}.csr"),
            ],
            dir.path(),
        )
        .ok();
    };
    csr("jane");
    let person = ["--email", "jane.doe@example.org", "--given-name", "Jane", "--surname", "Doe"];
    let mut args = vec!["issue", "--csr", "jane.csr", "--out", "jane.pem"];
    args.extend_from_slice(&person);
    run(&args).ok();
    tool("openssl", &["verify", "-CAfile", "chain.pem", "-purpose", "smimesign", "jane.pem"], dir.path()).ok();
    let findings = pkilint_findings(dir.path(), "jane.pem");
    assert!(findings.trim().is_empty(), "pkilint: {findings}");
    // A server-made key as .p12, signed on the token too.
    std::fs::write(dir.path().join("p12pass"), format!("{P12_PASSWORD}\n")).unwrap();
    let mut args = vec!["issue", "--p12", "jane.p12", "--password-file", "p12pass", "--key", "p256"];
    args.extend_from_slice(&person);
    run(&args).ok();
    tool(
        "openssl",
        &["pkcs12", "-in", "jane.p12", "-passin", "file:p12pass", "-nokeys", "-clcerts", "-out", "p12.pem"],
        dir.path(),
    )
    .ok();
    tool("openssl", &["verify", "-CAfile", "chain.pem", "p12.pem"], dir.path()).ok();

    // Revoke: the CRL, signed on the token, lists it; OpenSSL checks the chain with both CRLs.
    let serial = {
        let out = tool("openssl", &["x509", "-in", "jane.pem", "-noout", "-serial"], dir.path()).ok();
        String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial=").to_ascii_lowercase()
    };
    run(&["revoke", &serial, "--reason", "keyCompromise"]).ok();
    run(&["crl", "--out", "issuing.crl", "--pem"]).ok();
    run(&["crl", "--root", "--new", "--out", "root.crl", "--pem"]).ok();
    std::fs::write(
        dir.path().join("crls.pem"),
        [std::fs::read(dir.path().join("issuing.crl")).unwrap(), std::fs::read(dir.path().join("root.crl")).unwrap()]
            .concat(),
    )
    .unwrap();
    let checked = tool(
        "openssl",
        &["verify", "-crl_check_all", "-CAfile", "chain.pem", "-CRLfile", "crls.pem", "jane.pem"],
        dir.path(),
    );
    assert_ne!(checked.code, 0);
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("revoked") || checked.stderr.contains("revoked"),
        "{}",
        checked.stderr
    );
    tool(
        "openssl",
        &["verify", "-crl_check_all", "-CAfile", "chain.pem", "-CRLfile", "crls.pem", "p12.pem"],
        dir.path(),
    )
    .ok();

    // serve: the OCSP responder key is on the token as well.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let _serve =
        serve_process(dir.path(), &["--data", "data", "--passphrase-file", "pin", "serve", "--listen", &listen], &env);
    let chain = std::fs::read_to_string(dir.path().join("chain.pem")).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    std::fs::write(dir.path().join("issuing.pem"), &chain[..chain.find(end).unwrap() + end.len()]).unwrap();
    let url = format!("http://127.0.0.1:{port}/ocsp");
    let ask = |cert: &str| {
        let run = tool(
            "openssl",
            &["ocsp", "-issuer", "issuing.pem", "-CAfile", "chain.pem", "-url", &url, "-cert", cert],
            dir.path(),
        );
        format!("{}{}", String::from_utf8_lossy(&run.stdout), run.stderr)
    };
    let jane = ask("jane.pem");
    assert!(jane.contains("Response verify OK") && jane.contains("jane.pem: revoked"), "{jane}");
    let p12 = ask("p12.pem");
    assert!(p12.contains("Response verify OK") && p12.contains("p12.pem: good"), "{p12}");
}

/// A wrong PIN, a missing module, a token that is not there: clear errors (exit 2),
/// nothing written, nothing audited.
#[test]
fn token_trouble_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm(dir.path(), "certdesk-ca");
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
    std::fs::write(dir.path().join("wrong"), "0000\n").unwrap();
    let init = |data: &str, pin: &str, module: &str, token: &str| {
        certdesk_env(
            dir.path(),
            &[
                "--data",
                data,
                "--passphrase-file",
                pin,
                "init",
                "--org",
                "X",
                "--country",
                "DE",
                "--pkcs11-module",
                module,
                "--token-label",
                token,
            ],
            &env,
        )
    };
    let wrong = init("a", "wrong", MODULE, "certdesk-ca");
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("PIN of token \"certdesk-ca\" is wrong"), "{}", wrong.stderr);
    assert!(!dir.path().join("a").exists());
    let missing = init("b", "pin", "/nowhere/libpkcs11.so", "certdesk-ca");
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("/nowhere/libpkcs11.so does not exist"), "{}", missing.stderr);
    assert!(!dir.path().join("b").exists());
    let absent = init("c", "pin", MODULE, "no-such-token");
    assert_eq!(absent.code, 2, "{}", absent.stderr);
    assert!(absent.stderr.contains("no token labelled \"no-such-token\""), "{}", absent.stderr);
    assert!(!dir.path().join("c").exists());

    // A CA on the token; then the wrong PIN for a CRL: refused, nothing written.
    init("data", "pin", MODULE, "certdesk-ca").ok();
    let again = init("other", "pin", MODULE, "certdesk-ca");
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already holds a key labelled \"certdesk-root\""), "{}", again.stderr);
    let crl = certdesk_env(
        dir.path(),
        &["--data", "data", "--passphrase-file", "wrong", "crl", "--new", "--out", "x.crl"],
        &env,
    );
    assert_eq!(crl.code, 2, "{}", crl.stderr);
    assert!(crl.stderr.contains("PIN"), "{}", crl.stderr);
    assert!(!dir.path().join("x.crl").exists());
}

/// Keys made by the HSM's own tools (here OpenSC's pkcs11-tool) are used with
/// `--existing-keys`; a key of a type a CA must not have is refused by name.
#[test]
fn keys_already_on_the_token_are_used_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm(dir.path(), "vendor");
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
    let keygen = |label: &str, key_type: &str| {
        tool_env(
            dir.path(),
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                "vendor",
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                key_type,
                "--label",
                label,
                "--usage-sign",
            ],
            &env,
        )
        .ok();
    };
    keygen("ceremony-root", "EC:secp384r1");
    keygen("ceremony-issuing", "EC:secp384r1");
    keygen("ceremony-ocsp", "EC:prime256v1");
    keygen("weak-root", "EC:secp521r1");
    // A key that may leave the token.
    tool_env(
        dir.path(),
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            "vendor",
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:secp384r1",
            "--label",
            "open-root",
            "--usage-sign",
            "--extractable",
        ],
        &env,
    )
    .ok();
    let init = |data: &str, label: &str| {
        certdesk_env(
            dir.path(),
            &[
                "--data",
                data,
                "--passphrase-file",
                "pin",
                "init",
                "--org",
                "X",
                "--country",
                "DE",
                "--pkcs11-module",
                MODULE,
                "--token-label",
                "vendor",
                "--key-label",
                label,
                "--existing-keys",
            ],
            &env,
        )
    };
    let wrong = init("w", "weak");
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("\"weak-root\"") && wrong.stderr.contains("P-256 and P-384"), "{}", wrong.stderr);
    assert!(!dir.path().join("w").exists());
    let open = init("o", "open");
    assert_eq!(open.code, 1, "{}", open.stderr);
    assert!(open.stderr.contains("can leave the token"), "{}", open.stderr);
    assert!(!dir.path().join("o").exists());
    let missing = init("m", "nothing");
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no private key labelled \"nothing-root\""), "{}", missing.stderr);
    init("data", "ceremony").ok();
    certdesk_env(dir.path(), &["--data", "data", "ca", "chain", "--out", "chain.pem"], &env).ok();
    tool("openssl", &["verify", "-x509_strict", "-CAfile", "chain.pem", "chain.pem"], dir.path()).ok();
    let crl = certdesk_env(
        dir.path(),
        &["--data", "data", "--passphrase-file", "pin", "crl", "--new", "--out", "c.crl"],
        &env,
    );
    crl.ok();
    tool(
        "openssl",
        &["crl", "-inform", "DER", "-in", "c.crl", "-noout", "-CAfile", "chain.pem", "-verify"],
        dir.path(),
    )
    .ok();
}

/// The token goes away while `serve` runs (its SoftHSM directory moved away, as a
/// pulled HSM): OCSP keeps answering from the pre-signed responses, `/ready` says why
/// it cannot sign; when the token is back, serve finds it again (the module started
/// anew) and the revocation made meanwhile shows in OCSP.
#[test]
fn serve_rides_out_a_token_that_goes_away_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm(dir.path(), "certdesk-ca");
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--data", "data", "--passphrase-file", "pin"];
        all.extend_from_slice(args);
        certdesk_env(dir.path(), &all, &env)
    };
    run(&["init", "--org", "X", "--country", "DE", "--pkcs11-module", MODULE, "--token-label", "certdesk-ca"]).ok();
    run(&["ca", "chain", "--out", "chain.pem"]).ok();
    let chain = std::fs::read_to_string(dir.path().join("chain.pem")).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    std::fs::write(dir.path().join("issuing.pem"), &chain[..chain.find(end).unwrap() + end.len()]).unwrap();
    tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.key",
            "-subj",
            "/CN=x",
            "-out",
            "k.csr",
        ],
        dir.path(),
    )
    .ok();
    run(&[
        "issue",
        "--csr",
        "k.csr",
        "--out",
        "leaf.pem",
        "--email",
        "a@example.org",
        "--given-name",
        "A",
        "--surname",
        "B",
    ])
    .ok();
    let serial = {
        let out = tool("openssl", &["x509", "-in", "leaf.pem", "-noout", "-serial"], dir.path()).ok();
        String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial=").to_string()
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--data", "data", "--passphrase-file", "pin", "serve", "--refresh-seconds", "1", "--listen", &listen];
    let _serve = serve_process(dir.path(), &args, &env);
    let addr = format!("127.0.0.1:{port}");
    let ask = || {
        let url = format!("http://{addr}/ocsp");
        let run = tool(
            "openssl",
            &["ocsp", "-issuer", "issuing.pem", "-CAfile", "chain.pem", "-url", &url, "-cert", "leaf.pem"],
            dir.path(),
        );
        format!("{}{}", String::from_utf8_lossy(&run.stdout), run.stderr)
    };
    let ready = || {
        let (status, _, body) = super::serve::http_get(&addr, "/ready");
        (status, String::from_utf8_lossy(&body).to_string())
    };
    assert!(ask().contains("leaf.pem: good"));
    assert_eq!(ready().0, 200);

    let tokens = dir.path().join("tokens");
    let away = dir.path().join("tokens.away");
    std::fs::rename(&tokens, &away).unwrap();
    run(&["revoke", &serial, "--reason", "keyCompromise"]).ok();
    assert!(
        super::serve::wait_for(|| ready().0 == 503 && ready().1.contains("the last status refresh failed")),
        "/ready never said the token is gone: {:?}",
        ready()
    );
    // The answer signed before the token went is still served, within its validity.
    let meanwhile = ask();
    assert!(meanwhile.contains("Response verify OK") && meanwhile.contains("leaf.pem: good"), "{meanwhile}");

    std::fs::rename(&away, &tokens).unwrap();
    assert!(super::serve::wait_for(|| ask().contains("leaf.pem: revoked")), "the revocation never showed: {}", ask());
    assert!(super::serve::wait_for(|| ready().0 == 200), "{:?}", ready());
}

/// RSA keys on the token sign with RSASSA-PSS (CKM_SHA256_RSA_PKCS_PSS) when the CA
/// asks for it; OpenSSL verifies the chain, a certificate and a CRL.
#[test]
fn an_rsa_pss_ca_on_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm(dir.path(), "pss");
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--data", "data", "--passphrase-file", "pin"];
        all.extend_from_slice(args);
        certdesk_env(dir.path(), &all, &env)
    };
    run(&[
        "init",
        "--org",
        "X",
        "--country",
        "DE",
        "--key",
        "rsa4096",
        "--rsa-pss",
        "--pkcs11-module",
        MODULE,
        "--token-label",
        "pss",
    ])
    .ok();
    run(&["ca", "chain", "--out", "chain.pem"]).ok();
    tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.key",
            "-subj",
            "/CN=x",
            "-out",
            "k.csr",
        ],
        dir.path(),
    )
    .ok();
    run(&[
        "issue",
        "--csr",
        "k.csr",
        "--out",
        "leaf.pem",
        "--email",
        "a@example.org",
        "--given-name",
        "A",
        "--surname",
        "B",
        "--profile",
        "private",
    ])
    .ok();
    tool("openssl", &["verify", "-CAfile", "chain.pem", "leaf.pem"], dir.path()).ok();
    let text =
        String::from_utf8(tool("openssl", &["x509", "-in", "leaf.pem", "-noout", "-text"], dir.path()).ok().stdout)
            .unwrap();
    assert!(text.contains("rsassaPss"), "{text}");
    run(&["crl", "--new", "--out", "c.crl"]).ok();
    tool(
        "openssl",
        &["crl", "-inform", "DER", "-in", "c.crl", "-noout", "-CAfile", "chain.pem", "-verify"],
        dir.path(),
    )
    .ok();
}
