//! The trust boundary, checked on the dependency graph (issue 11): only `certdesk-ca`
//! holds CA keys, and the registration desk and the web tier cannot name its types
//! because they do not depend on it, directly or through another crate; the web tier
//! cannot run SQL because it does not depend on the store. Dev-dependencies (tests) do
//! not count: they are not in the binary.

use std::collections::BTreeSet;

/// Every package `krate` depends on through normal (non-dev, non-build) dependencies,
/// directly or not, on this platform: `cargo tree -e normal`.
fn reaches(krate: &str) -> BTreeSet<String> {
    tree(krate, &[])
}

/// The packages `krate` names itself (its direct normal dependencies): the only crates
/// whose public items it can use.
fn names(krate: &str) -> BTreeSet<String> {
    tree(krate, &["--depth", "1"])
}

fn tree(krate: &str, extra: &[&str]) -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().skip(1).filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect()
}

#[test]
fn the_desk_and_the_web_cannot_reach_the_ca_keys() {
    // Not even through another crate: the key holder.
    for (krate, forbidden) in [
        ("certdesk-web", &["certdesk-ca"][..]),
        ("certdesk-desk", &["certdesk-ca"][..]),
        ("certdesk-store", &["certdesk-ca", "certdesk-desk", "certdesk-web"][..]),
        ("certdesk-core", &["certdesk-ca", "certdesk-store", "certdesk-desk", "certdesk-web"][..]),
        ("certdesk-ca", &["certdesk-desk", "certdesk-web", "axum", "lettre"][..]),
        ("certdesk-pki", &["tokio", "sqlx", "axum"][..]),
        ("certdesk-smime", &["tokio", "sqlx", "axum"][..]),
    ] {
        let reached = reaches(krate);
        assert!(reached.contains("der") || krate == "certdesk-store", "{krate}: the dependency graph is empty");
        for name in forbidden {
            assert!(!reached.contains(*name), "{krate} reaches {name}: {reached:?}");
        }
    }
    // The web tier cannot name the store or run SQL itself (the desk uses the store).
    let web = names("certdesk-web");
    assert!(web.contains("certdesk-desk"), "{web:?}");
    for name in ["certdesk-store", "certdesk-ca", "sqlx"] {
        assert!(!web.contains(name), "certdesk-web names {name}");
    }
    // The binary puts them together; that is the only place the CA is handed to the desk.
    let cli = reaches("certdesk-cli");
    for name in ["certdesk-ca", "certdesk-desk", "certdesk-web", "certdesk-store"] {
        assert!(cli.contains(name), "the binary does not use {name}");
    }
    // And the test is not vacuous: the desk does reach the store and core.
    let desk = reaches("certdesk-desk");
    assert!(desk.contains("certdesk-store") && desk.contains("certdesk-core"));
}

/// Issue 15: only the CA crate splits and combines the escrow key (the Shamir crate is
/// reached from nowhere else).
#[test]
fn only_the_ca_crate_handles_escrow_shares() {
    assert!(names("certdesk-ca").contains("vsss-rs"), "the test would be vacuous");
    for krate in ["certdesk-web", "certdesk-desk", "certdesk-store", "certdesk-core", "certdesk-pki", "certdesk-smime"]
    {
        assert!(!reaches(krate).contains("vsss-rs"), "{krate} reaches vsss-rs");
    }
}

/// No service crate but `certdesk-ca` opens a CA key file or unlocks a CA key (the
/// binary, the composition root, asks `certdesk-ca` to).
#[test]
fn only_the_ca_crate_unlocks_keys() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for krate in ["core", "store", "desk", "web"] {
        let mut stack = vec![root.join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    // Unit tests may set up a CA; the library code may not.
                    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                    if path.ends_with("core/src/datadir.rs") {
                        continue; // names the key files (the layout), opens none
                    }
                    for needle in [
                        "unlock_key(",
                        "Issuer::unlock",
                        "OcspResponder::unlock",
                        ".issuing_key()",
                        ".root_key()",
                        ".ocsp_key()",
                    ] {
                        assert!(
                            !text.contains(needle),
                            "{} calls {needle}: only certdesk-ca may unlock a CA key",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}
