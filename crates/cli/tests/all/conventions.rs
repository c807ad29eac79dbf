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
    let csr = ca.csr("k", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
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
