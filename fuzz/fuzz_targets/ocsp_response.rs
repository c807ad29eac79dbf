//! `certdesk_pki::ocsp::parse_response`, and `check_response` against a fixed issuer
//! (NIST PKITS GoodCACert) so that well-formed mutants reach the signature and
//! CertID checks.
#![no_main]

use certdesk_pki::ocsp::{check_response, parse_response};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const ISSUER: &[u8] = include_bytes!("../../crates/pki/tests/data/third-party/pkits/certs/GoodCACert.crt");

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data);
    let now = OffsetDateTime::from_unix_timestamp(1_577_836_800).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let _ = check_response(data, ISSUER, &[1], Some(&[5; 16]), now);
});
