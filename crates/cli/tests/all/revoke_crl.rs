//! Revocation and CRLs, checked by `openssl crl` and `openssl verify -crl_check`.

use super::common::*;

#[test]
fn revoked_certificate_is_listed_and_rejected_by_openssl() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", KeyKind::Rsa2048);
    let good = ca.issue_csr(&csr, "strict", "good.pem");
    let bad = ca.issue_csr(&csr, "strict", "bad.pem");
    let serial = ca.serial_of(&bad);

    ca.run(&["crl", "--out", "empty.crl"]).ok();
    ca.run(&["revoke", &serial, "--reason", "key-compromise"]).ok();
    ca.run(&["crl", "--out", "crl.der"]).ok();
    ca.run(&["crl", "--pem", "--out", "crl.pem"]).ok();

    let text = ca
        .tool("openssl", &["crl", "-in", "crl.der", "-inform", "DER", "-CAfile", "chain.pem", "-noout", "-text"])
        .ok();
    let out = String::from_utf8(text.stdout).unwrap();
    assert!(text.stderr.contains("verify OK"), "{}", text.stderr);
    assert!(out.to_ascii_lowercase().contains(&serial), "{out}");
    assert!(out.contains("Key Compromise"), "{out}");
    assert!(out.contains("X509v3 CRL Number"), "{out}");
    assert!(out.contains("X509v3 Authority Key Identifier"), "{out}");
    // empty.crl was 1; the revocation made it out of date, so crl.der is a new one, 2;
    // crl.pem is that current CRL again (no passphrase needed), --new signs 3.
    let number = |file: &str, form: &str| {
        let run = ca.tool("openssl", &["crl", "-in", file, "-inform", form, "-noout", "-crlnumber"]).ok();
        String::from_utf8(run.stdout).unwrap().trim().to_string()
    };
    assert_eq!(number("empty.crl", "DER"), "crlNumber=0x01");
    assert_eq!(number("crl.der", "DER"), "crlNumber=0x02");
    assert_eq!(number("crl.pem", "PEM"), "crlNumber=0x02");
    let current = certdesk_in(ca.dir.path(), &["--data", "data", "crl", "--out", "again.crl"]);
    assert_eq!(current.code, 0, "{}", current.stderr);
    assert!(current.stderr.contains("CRL number 2 is current"), "{}", current.stderr);
    assert_eq!(std::fs::read(ca.path("again.crl")).unwrap(), std::fs::read(ca.path("crl.der")).unwrap());
    let new = certdesk_in(ca.dir.path(), &["--data", "data", "crl", "--new", "--out", "new.crl"]);
    assert_eq!(new.code, 2, "a new CRL needs the CA passphrase: {}", new.stderr);
    assert!(!ca.path("new.crl").exists());
    ca.run(&["crl", "--new", "--out", "new.crl"]).ok();
    assert_eq!(number("new.crl", "DER"), "crlNumber=0x03");
    // Public files: readable by a web server running as another user, even under a
    // strict umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| std::fs::metadata(ca.path(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("new.crl"), 0o644);
        let script = format!(
            "umask 077; exec {} --data data --passphrase-file pass crl --out strict.crl",
            env!("CARGO_BIN_EXE_certdesk")
        );
        ca.tool("sh", &["-c", &script]).ok();
        assert_eq!(mode("strict.crl"), 0o644);
    }
    // nextUpdate within 10 days.
    let dates = String::from_utf8(
        ca.tool("openssl", &["crl", "-in", "crl.pem", "-noout", "-lastupdate", "-nextupdate"]).ok().stdout,
    )
    .unwrap();
    assert!(dates.contains("nextUpdate="), "{dates}");

    let mut chain_and_crl = std::fs::read_to_string(ca.path("chain.pem")).unwrap();
    chain_and_crl.push_str(&std::fs::read_to_string(ca.path("crl.pem")).unwrap());
    std::fs::write(ca.path("trust.pem"), chain_and_crl).unwrap();
    let rejected = ca.tool("openssl", &["verify", "-crl_check", "-CAfile", "trust.pem", "bad.pem"]);
    assert_ne!(rejected.code, 0);
    assert!(
        String::from_utf8_lossy(&rejected.stdout).contains("certificate revoked")
            || rejected.stderr.contains("certificate revoked")
    );
    ca.tool("openssl", &["verify", "-crl_check", "-CAfile", "trust.pem", good.to_str().unwrap()]).ok();
}

#[test]
fn revoking_twice_or_unknown_serials_is_a_clear_refusal() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", KeyKind::P256);
    let cert = ca.issue_csr(&csr, "strict", "c.pem");
    let serial = ca.serial_of(&cert);
    // Colon-separated upper-case hex is accepted too.
    let pretty: Vec<String> =
        serial.as_bytes().chunks(2).map(|c| String::from_utf8(c.to_vec()).unwrap().to_uppercase()).collect();
    ca.run(&["revoke", &pretty.join(":"), "--reason", "superseded"]).ok();
    let records = ca.audit_records();

    let twice = ca.run(&["revoke", &serial, "--reason", "superseded"]);
    assert_eq!(twice.code, 1);
    assert!(twice.stderr.contains("already revoked"), "{}", twice.stderr);

    let unknown = ca.run(&["revoke", "0123456789abcdef0123", "--reason", "superseded"]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("no certificate with serial"), "{}", unknown.stderr);

    let garbage = ca.run(&["revoke", "not-hex", "--reason", "superseded"]);
    assert_eq!(garbage.code, 2);
    let reason = ca.run(&["revoke", &serial, "--reason", "bored"]);
    assert_eq!(reason.code, 2);
    assert!(reason.stderr.contains("invalid value 'bored'"), "{}", reason.stderr);
    assert!(reason.stderr.contains("key-compromise"), "the valid reasons are not listed: {}", reason.stderr);

    assert_eq!(ca.audit_records(), records, "a refused revocation was audited as done");
}

/// The issuing CA certificate names the root's CRL of CA certificates, which `init`
/// signs and `crl --root` re-signs with the next number; OpenSSL checks the whole chain
/// against both CRLs (`-crl_check_all`).
#[test]
fn the_root_crl_covers_the_issuing_ca_and_openssl_checks_the_whole_chain() {
    let ca = Ca::new("p384");
    let csr = ca.csr("k", KeyKind::Rsa2048);
    let leaf = ca.issue_csr(&csr, "strict", "leaf.pem");
    let text = String::from_utf8(
        ca.tool("openssl", &["x509", "-in", "data/ca/issuing.pem", "-noout", "-ext", "crlDistributionPoints"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("URI:http://pki.example.org/crl/root.crl"), "{text}");
    let verified = ca.tool(
        "openssl",
        &["crl", "-in", "data/ca/root.crl", "-inform", "DER", "-CAfile", "data/ca/root.pem", "-noout", "-crlnumber"],
    );
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(verified.stderr.contains("verify OK"), "{}", verified.stderr);
    assert_eq!(String::from_utf8(verified.stdout).unwrap().trim(), "crlNumber=0x01");

    // The current one as it is; --new re-signs it.
    ca.run(&["crl", "--root", "--pem", "--out", "root-crl.pem"]).ok();
    let number = ca.tool("openssl", &["crl", "-in", "root-crl.pem", "-noout", "-crlnumber", "-nextupdate"]).ok();
    assert!(String::from_utf8(number.stdout).unwrap().contains("crlNumber=0x01"));
    ca.run(&["crl", "--root", "--new", "--pem", "--out", "root-crl.pem"]).ok();
    let number = ca.tool("openssl", &["crl", "-in", "root-crl.pem", "-noout", "-crlnumber", "-nextupdate"]).ok();
    let out = String::from_utf8(number.stdout).unwrap();
    assert!(out.contains("crlNumber=0x02"), "{out}");
    ca.run(&["crl", "--pem", "--out", "issuing-crl.pem"]).ok();
    let mut trust = std::fs::read_to_string(ca.path("chain.pem")).unwrap();
    trust.push_str(&std::fs::read_to_string(ca.path("root-crl.pem")).unwrap());
    trust.push_str(&std::fs::read_to_string(ca.path("issuing-crl.pem")).unwrap());
    std::fs::write(ca.path("trust.pem"), trust).unwrap();
    let run = ca.tool("openssl", &["verify", "-crl_check_all", "-CAfile", "trust.pem", leaf.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", String::from_utf8_lossy(&run.stdout), run.stderr);
    // Without the root's CRL, the issuing CA's status is unknown to OpenSSL.
    let mut without = std::fs::read_to_string(ca.path("chain.pem")).unwrap();
    without.push_str(&std::fs::read_to_string(ca.path("issuing-crl.pem")).unwrap());
    std::fs::write(ca.path("without.pem"), without).unwrap();
    let run = ca.tool("openssl", &["verify", "-crl_check_all", "-CAfile", "without.pem", leaf.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    // Both re-signings are in the audit log, which still verifies.
    ca.run(&["audit", "verify"]).ok();
}

/// `audit verify` prints the head as SEQ:HASH; `--checkpoint` with a head noted earlier
/// holds while the log grows, and fails once records are cut off its end (which the
/// chain alone cannot show). The cut is made as an attacker with database access would:
/// dropping the append-only trigger first.
#[test]
fn an_audit_checkpoint_catches_records_cut_off_the_end() {
    let ca = Ca::new("p384");
    let head = |ca: &Ca| {
        let out = String::from_utf8(ca.run(&["audit", "verify"]).ok().stdout).unwrap();
        out.split_whitespace().nth(6).unwrap().trim_end_matches(',').to_string()
    };
    let csr = ca.csr("k", KeyKind::Rsa2048);
    ca.issue_csr(&csr, "strict", "a.pem");
    let noted = head(&ca);
    assert!(noted.starts_with(&format!("{}:", ca.audit_records())), "{noted}");
    ca.issue_csr(&csr, "strict", "b.pem");
    let out = String::from_utf8(ca.run(&["audit", "verify", "--checkpoint", &noted]).ok().stdout).unwrap();
    assert!(out.contains("held"), "{out}");
    let later = head(&ca);
    let seq: i64 = noted.split(':').next().unwrap().parse().unwrap();
    let script = format!(
        "import sqlite3; c = sqlite3.connect('data/certdesk.db'); \
         c.execute('DROP TRIGGER audit_log_no_delete'); c.execute('DELETE FROM audit_log WHERE seq > {seq}'); c.commit()"
    );
    ca.tool("python3", &["-c", &script]).ok();
    // The chain alone still verifies; the later checkpoint does not.
    ca.run(&["audit", "verify", "--checkpoint", &noted]).ok();
    let run = ca.run(&["audit", "verify", "--checkpoint", &later]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("removed"), "{}", run.stderr);
    let run = ca.run(&["audit", "verify", "--checkpoint", "1:abc"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// `audit checkpoint` mails the verified head to the auditors of `[audit]
/// checkpoint_to` (here into the outbox) and prints it; the printed checkpoint then holds
/// in `audit verify --checkpoint`. Once records up to it are cut off, the next run mails
/// an alert instead and exits 1.
#[test]
fn audit_checkpoint_mails_the_head_and_then_the_alert() {
    let ca = Ca::new("p384");
    let run = ca.run(&["audit", "checkpoint"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("checkpoint_to"), "{}", run.stderr);

    let config = ca.path("data/certdesk.toml");
    // init writes every section, [audit] empty.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\n[audit]\n"), "{text}");
    let text = text.replace("\n[audit]\n", "\n[audit]\ncheckpoint_to = [\"auditor@example.org\"]\n");
    std::fs::write(&config, text).unwrap();
    let csr = ca.csr("k", KeyKind::Rsa2048);
    ca.issue_csr(&csr, "strict", "a.pem");
    let run = ca.run(&["audit", "checkpoint"]).ok();
    let checkpoint = String::from_utf8(run.stdout).unwrap().trim().to_string();
    assert!(checkpoint.starts_with(&format!("{}:", ca.audit_records() - 1)), "{checkpoint}");
    assert!(run.stderr.contains("auditor@example.org"), "{}", run.stderr);
    let mails = |needle: &str| -> Vec<String> {
        std::fs::read_dir(ca.path("data/outbox"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            // Quoted-printable soft line breaks (lines over 76 characters).
            .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
            .filter(|m| m.contains(needle))
            .collect()
    };
    let sent = mails(&format!("certdesk audit verify --checkpoint {checkpoint}"));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("To: auditor@example.org"), "{}", sent[0]);
    ca.run(&["audit", "verify", "--checkpoint", &checkpoint]).ok();

    let script = "import sqlite3; c = sqlite3.connect('data/certdesk.db'); \
         c.execute('DROP TRIGGER audit_log_no_delete'); c.execute('DELETE FROM audit_log WHERE seq > 1'); c.commit()";
    ca.tool("python3", &["-c", script]).ok();
    let run = ca.run(&["audit", "checkpoint"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("removed") && run.stderr.contains("alerted"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert_eq!(mails("ALERT").len(), 1);
}
