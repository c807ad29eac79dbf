//! `certdesk_pki::path::validate_with`: the input as the leaf, NIST PKITS GoodCACert
//! as the intermediate and the PKITS trust anchor, at 2020-01-01.
#![no_main]

use certdesk_pki::path::{validate_with, Purpose, ValidationOptions};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const ANCHOR: &[u8] =
    include_bytes!("../../crates/pki/tests/data/third-party/pkits/certs/TrustAnchorRootCertificate.crt");
const GOOD_CA: &[u8] = include_bytes!("../../crates/pki/tests/data/third-party/pkits/certs/GoodCACert.crt");

fuzz_target!(|data: &[u8]| {
    let now = OffsetDateTime::from_unix_timestamp(1_577_836_800).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let options = ValidationOptions::default().with_purpose(Purpose::Any);
    let _ = validate_with(data, &[GOOD_CA.to_vec()], &[ANCHOR.to_vec()], now, &options);
});
