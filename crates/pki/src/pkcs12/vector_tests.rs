//! All 31 PKCS #12 files of pyca `cryptography-vectors` 50.0.2
//! (`tests/data/third-party/pyca-pkcs12`), read with the passwords pyca's own suite
//! gives them (`tests/hazmat/primitives/test_pkcs12.py`: "cryptography" for the
//! `cert-*` files, "password" for `*-pwd`, none for `*-no-pwd`, `no-password.p12` and
//! `java-truststore.p12`), and checked against the key and certificates they hold.
//! 14 of them have no password. Every one opens: none uses an algorithm we refuse
//! (RC2-40 and 3DES are read; see the module documentation).
//!
//! A summary table goes to stderr (`cargo test -p certdesk-pki vector -- --nocapture`).

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;

use super::*;

/// The certificates the files hold, by the name of their PEM file.
const CA: &str = "ca.pem";
const CRYPTOGRAPHY_IO: &str = "cryptography.io.pem";
const LETS_ENCRYPT: &str = "letsencryptx3.pem";
const DSA_CA: &str = "dsa_selfsigned_ca.pem";

/// What a file holds: the password, whether it has the key of `ca_key.pem`, its
/// certificates in file order, and the friendly name [`read()`] reports.
struct Case {
    file: &'static str,
    password: &'static str,
    key: bool,
    certificates: &'static [&'static str],
    friendly_name: Option<&'static str>,
}

const fn case(
    file: &'static str,
    password: &'static str,
    key: bool,
    certificates: &'static [&'static str],
    friendly_name: Option<&'static str>,
) -> Case {
    Case { file, password, key, certificates, friendly_name }
}

const ALL_THREE: &[&str] = &[CA, CRYPTOGRAPHY_IO, LETS_ENCRYPT];
const TWO: &[&str] = &[CRYPTOGRAPHY_IO, LETS_ENCRYPT];

const CASES: [Case; 31] = [
    case("cert-aes256cbc-no-key.p12", "cryptography", false, &[CA], None),
    case("cert-key-aes256cbc.p12", "cryptography", true, &[CA], None),
    case("cert-none-key-none.p12", "cryptography", true, &[CA], None),
    case("cert-rc2-key-3des.p12", "cryptography", true, &[CA], None),
    case("java-truststore.p12", "", false, &[DSA_CA, LETS_ENCRYPT], Some("cert1")),
    case("name-1-no-pwd.p12", "", true, ALL_THREE, Some("name")),
    case("name-1-pwd.p12", "password", true, ALL_THREE, Some("name")),
    case("name-2-3-no-pwd.p12", "", true, ALL_THREE, None),
    case("name-2-3-pwd.p12", "password", true, ALL_THREE, None),
    case("name-2-no-pwd.p12", "", true, ALL_THREE, None),
    case("name-2-pwd.p12", "password", true, ALL_THREE, None),
    case("name-3-no-pwd.p12", "", true, ALL_THREE, None),
    case("name-3-pwd.p12", "password", true, ALL_THREE, None),
    case("name-all-no-pwd.p12", "", true, ALL_THREE, Some("name")),
    case("name-all-pwd.p12", "password", true, ALL_THREE, Some("name")),
    case("name-unicode-no-pwd.p12", "", true, ALL_THREE, Some("☺")),
    case("name-unicode-pwd.p12", "password", true, ALL_THREE, Some("☺")),
    case("no-cert-key-aes256cbc.p12", "cryptography", true, &[], None),
    case("no-cert-name-2-no-pwd.p12", "", false, TWO, Some("name2")),
    case("no-cert-name-2-pwd.p12", "password", false, TWO, Some("name2")),
    case("no-cert-name-3-no-pwd.p12", "", false, TWO, None),
    case("no-cert-name-3-pwd.p12", "password", false, TWO, None),
    case("no-cert-name-all-no-pwd.p12", "", false, TWO, Some("name2")),
    case("no-cert-name-all-pwd.p12", "password", false, TWO, Some("name2")),
    case("no-cert-name-unicode-no-pwd.p12", "", false, TWO, Some("☹")),
    case("no-cert-name-unicode-pwd.p12", "password", false, TWO, Some("☹")),
    case("no-cert-no-name-no-pwd.p12", "", false, TWO, None),
    case("no-cert-no-name-pwd.p12", "password", false, TWO, None),
    case("no-name-no-pwd.p12", "", true, ALL_THREE, None),
    case("no-name-pwd.p12", "password", true, ALL_THREE, None),
    case("no-password.p12", "", true, &[CA], Some("6BC162DA")),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/third-party/pyca-pkcs12")
}

fn pem_der(name: &str) -> Vec<u8> {
    let text = std::fs::read(dir().join(name)).unwrap();
    crate::pem::decode_first(&text, &["CERTIFICATE", "PRIVATE KEY"]).unwrap()
}

/// A short name for an encryption algorithm identifier.
fn algorithm_name(algorithm: &AlgorithmIdentifierOwned) -> String {
    match algorithm.oid {
        PBE_SHA1_3DES => "3DES".into(),
        PBE_SHA1_2DES => "2-key 3DES".into(),
        PBE_SHA1_RC2_40 => "RC2-40".into(),
        PBE_SHA1_RC2_128 => "RC2-128".into(),
        pbes2::PBES2 => {
            let params: pbes2::Pbes2Params = algorithm.parameters.as_ref().unwrap().decode_as().unwrap();
            let cipher = match params.encryption_scheme.oid.to_string().as_str() {
                "2.16.840.1.101.3.4.1.2" => "AES-128".to_owned(),
                "2.16.840.1.101.3.4.1.22" => "AES-192".to_owned(),
                "2.16.840.1.101.3.4.1.42" => "AES-256".to_owned(),
                other => other.to_owned(),
            };
            format!("PBES2 {cipher}")
        }
        other => other.to_string(),
    }
}

/// How a file is protected: the MAC, then each `SafeContents` (`certs` or `key`,
/// `plain` or the cipher), e.g. `SHA1 MAC; certs RC2-40, key 3DES`.
fn describe(p12: &[u8]) -> String {
    let pfx = Pfx::from_der(&ber_to_der(p12).unwrap()).unwrap();
    let mac = match &pfx.mac_data {
        None => "no MAC".to_owned(),
        Some(mac) => {
            let hash = match mac.mac.digest_algorithm.oid {
                SHA1 => "SHA1",
                SHA256 => "SHA256",
                _ => "other",
            };
            format!("{hash} MAC")
        }
    };
    let auth_safe = octet_string_content(pfx.auth_safe.content.as_ref()).unwrap();
    let mut parts = Vec::new();
    for info in Vec::<ContentInfo>::from_der(&ber_to_der(auth_safe).unwrap()).unwrap() {
        if info.content_type == ID_ENCRYPTED_DATA {
            let (algorithm, _) = decode_encrypted_data(info.content.as_ref().unwrap()).unwrap();
            parts.push(format!("bags {}", algorithm_name(&algorithm)));
            continue;
        }
        let bags = Vec::<SafeBag>::from_der(octet_string_content(info.content.as_ref()).unwrap()).unwrap();
        let mut kinds = Vec::new();
        for bag in bags {
            let kind = match bag.bag_id {
                CERT_BAG => "certs plain".to_owned(),
                KEY_BAG => "key plain".to_owned(),
                SHROUDED_KEY_BAG => {
                    let epki: pbes2::EncryptedPrivateKeyInfo = bag.bag_value.decode_as().unwrap();
                    format!("key {}", algorithm_name(&epki.encryption_algorithm))
                }
                other => other.to_string(),
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        parts.push(kinds.join(", "));
    }
    format!("{mac}; {}", parts.join("; "))
}

/// Which encoding of the empty password the file's MAC was made with.
fn empty_password_encoding(p12: &[u8]) -> &'static str {
    let pfx = Pfx::from_der(&ber_to_der(p12).unwrap()).unwrap();
    let auth_safe = octet_string_content(pfx.auth_safe.content.as_ref()).unwrap();
    let Some(mac) = &pfx.mac_data else {
        return "no MAC";
    };
    if verify_mac(mac, &[0, 0], auth_safe).unwrap() {
        "00 00"
    } else if verify_mac(mac, &[], auth_safe).unwrap() {
        "zero-length"
    } else {
        "-"
    }
}

#[test]
fn every_pyca_vector_opens_with_its_password() {
    let key_public = public_key_of(&pem_der("ca_key.pem")).unwrap();
    let mut rows = vec![format!(
        "{:<33} {:<14} {:<11} {:<3} {:<5} {:<45} {}",
        "file", "password", "empty as", "key", "certs", "protection", "result"
    )];
    let mut failures = Vec::new();
    let mut without_password = 0;
    for case in &CASES {
        let p12 = std::fs::read(dir().join(case.file)).unwrap();
        let mut problems = Vec::new();
        match read(&p12, case.password) {
            Ok(contents) => {
                let key = contents.key_pkcs8_der.as_deref().map(|k| public_key_of(k).unwrap());
                if key.as_ref() != case.key.then_some(&key_public) {
                    problems.push("wrong key".to_owned());
                }
                let expected: Vec<Vec<u8>> = case.certificates.iter().map(|c| pem_der(c)).collect();
                if contents.certificates != expected {
                    problems.push(format!(
                        "{} certificates, not the expected {}",
                        contents.certificates.len(),
                        expected.len()
                    ));
                }
                if contents.leaf.as_ref() != expected.first() {
                    problems.push("wrong leaf".to_owned());
                }
                if contents.friendly_name.as_deref() != case.friendly_name {
                    problems.push(format!("friendly name {:?}", contents.friendly_name));
                }
                if contents.integrity != Integrity::MacVerified {
                    problems.push("MAC not verified".to_owned());
                }
            }
            Err(e) => problems.push(format!("refused: {e}")),
        }
        // A wrong password never opens it, with a reason that fits.
        if case.password.is_empty() {
            without_password += 1;
            match read(&p12, "wrong") {
                Err(Error::FileHasNoPassword) => {}
                other => problems.push(format!("a password for a file without one: {other:?}")),
            }
        } else {
            for wrong in ["wrong", ""] {
                match read(&p12, wrong) {
                    Err(Error::WrongPassword { check: PasswordCheck::Mac }) => {}
                    other => problems.push(format!("wrong password {wrong:?}: {other:?}")),
                }
            }
        }
        let result = if problems.is_empty() { "opens".to_owned() } else { problems.join("; ") };
        let password = if case.password.is_empty() { "(none)" } else { case.password };
        let encoding = if case.password.is_empty() { empty_password_encoding(&p12) } else { "" };
        rows.push(format!(
            "{:<33} {:<14} {:<11} {:<3} {:<5} {:<45} {}",
            case.file,
            password,
            encoding,
            if case.key { "yes" } else { "no" },
            case.certificates.len(),
            describe(&p12),
            result
        ));
        if !problems.is_empty() {
            failures.push(case.file);
        }
    }
    eprintln!("pyca cryptography-vectors 50.0.2, pkcs12/:\n{}", rows.join("\n"));
    assert_eq!(without_password, 14);
    assert!(failures.is_empty(), "{failures:?} (see the table)");
}
