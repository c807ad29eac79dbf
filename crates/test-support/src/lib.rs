//! Test helpers shared by the certdesk crates (never published, never a normal
//! dependency): deterministic mutation of parser inputs, running OpenSSL, subscriber
//! keys and CSRs made by OpenSSL ([`csr`]), and an OpenSSL-made test CA.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod csr;
pub mod mutation;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `openssl` with `args` in `dir` and fails the test, with OpenSSL's output, unless
/// it succeeds. OpenSSL is an interop oracle here: CI installs it.
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir`, recursively (to look for secrets that must not be there).
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The DER inside the first PEM block of `pem`.
pub fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    der::pem::decode_vec(pem).expect("PEM").1
}

/// One end-entity key and certificate from [`openssl_test_ca`].
pub struct TestParty {
    /// The key kind: `rsa` (3072 bits), `p256`, `p384` or `ed25519`.
    pub name: &'static str,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
    /// The private key as unencrypted PKCS #8 DER.
    pub pkcs8: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: Vec<u8>,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
}

/// A test CA and what it issued: see [`openssl_test_ca`].
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: Vec<u8>,
    /// One party per key kind, in the order rsa, p256, p384, ed25519.
    pub parties: Vec<TestParty>,
}

impl TestCa {
    /// The party with key kind `name`.
    pub fn party(&self, name: &str) -> &TestParty {
        self.parties.iter().find(|p| p.name == name).expect("a key kind the test CA made")
    }
}

/// A P-256 test CA made by OpenSSL (common name `ca_name`, ten years) and a certificate
/// it issued (one year) for each key kind: `rsa` (3072 bits), `p256`, `p384`, `ed25519`.
/// `subject(kind)` gives each subject in OpenSSL's `/CN=...` form and `extensions(kind)`
/// its X.509v3 extension lines (keyUsage, extendedKeyUsage, subjectAltName, ...).
pub fn openssl_test_ca(ca_name: &str, subject: impl Fn(&str) -> String, extensions: impl Fn(&str) -> String) -> TestCa {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca_subject = format!("/CN={ca_name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &ca_subject,
            "-days",
            "3650",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let kinds: [(&'static str, &[&str]); 4] = [
        ("rsa", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]),
        ("p256", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("p384", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        ("ed25519", &["-algorithm", "ED25519"]),
    ];
    let mut parties = Vec::new();
    for (name, genargs) in kinds {
        let ext = format!("{name}.cnf");
        std::fs::write(dir.join(&ext), extensions(name)).unwrap();
        let key = format!("{name}.key");
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genargs);
        args.extend_from_slice(&["-out", &key]);
        openssl(dir, &args);
        let csr = format!("{name}.csr");
        openssl(dir, &["req", "-new", "-key", &key, "-subj", &subject(name), "-out", &csr]);
        let cert = format!("{name}.pem");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "365",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        );
        let p8 = format!("{name}.p8");
        openssl(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", &key, "-outform", "DER", "-out", &p8]);
        let cert_pem = std::fs::read(dir.join(&cert)).unwrap();
        parties.push(TestParty {
            name,
            key_pem: std::fs::read(dir.join(&key)).unwrap(),
            pkcs8: std::fs::read(dir.join(&p8)).unwrap(),
            cert_der: pem_to_der(&cert_pem),
            cert_pem,
        });
    }
    TestCa { ca_pem: std::fs::read(dir.join("ca.pem")).unwrap(), parties }
}

/// The environment variable naming the PostgreSQL server of the tests (a URL of an
/// existing database, e.g. `postgres://postgres@127.0.0.1:5432/test`). `.ci/run` sets it.
pub const POSTGRES_ENV: &str = "CERTDESK_TEST_POSTGRES_URL";

/// The reason PostgreSQL tests carry in `#[ignore = ...]`: `scripts/test` runs them (with
/// `--ignored postgres`) when [`POSTGRES_ENV`] is set, as under CI.
pub const POSTGRES_IGNORED: &str = "needs PostgreSQL: scripts/test runs it when CERTDESK_TEST_POSTGRES_URL is set";

/// A new, empty PostgreSQL database on the server of [`POSTGRES_ENV`] (made with `psql`),
/// named `PREFIX_PID_NANOS`; returns its URL. Fails the test, never skips it, when the
/// variable is missing or the server does not answer: a PostgreSQL test that ran must
/// have run against PostgreSQL.
pub fn fresh_postgres_database(prefix: &str) -> String {
    let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!("{POSTGRES_ENV} is not set: this test needs PostgreSQL (scripts/test runs it only when it is set)")
    });
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("{prefix}_{}_{nanos}", std::process::id());
    let out = Command::new("psql")
        .args([base.as_str(), "-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql is needed by the PostgreSQL tests");
    assert!(out.status.success(), "cannot create a test database on {base}: {}", String::from_utf8_lossy(&out.stderr));
    let (prefix, _) = base.rsplit_once('/').expect("the PostgreSQL URL names a database");
    format!("{prefix}/{name}")
}

/// Drops a database made by [`fresh_postgres_database`] (best effort).
pub fn drop_postgres_database(url: &str) {
    let (Ok(base), Some((_, name))) = (std::env::var(POSTGRES_ENV), url.rsplit_once('/')) else { return };
    let _ =
        Command::new("psql").args([base.as_str(), "-q", "-c", &format!("DROP DATABASE {name} WITH (FORCE)")]).output();
}
