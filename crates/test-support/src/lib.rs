//! Test helpers shared by the certdesk crates (never published, never a normal
//! dependency): deterministic mutation of parser inputs, and running OpenSSL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

/// The DER inside the first PEM block of `pem`.
pub fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    der::pem::decode_vec(pem).expect("PEM").1
}
