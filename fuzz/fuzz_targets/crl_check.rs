//! `certdesk_pki::path::check_path_crls`: the input as a CRL (next to the good
//! trust-anchor CRL) for a fixed validated NIST PKITS path
//! (ValidCertificatePathTest1EE, GoodCACert, trust anchor) at 2020-01-01.
#![no_main]

use std::sync::OnceLock;

use certdesk_pki::path::{check_path_crls, validate_with, Purpose, ValidatedPath, ValidationOptions};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const ANCHOR: &[u8] =
    include_bytes!("../../crates/pki/tests/data/third-party/pkits/certs/TrustAnchorRootCertificate.crt");
const GOOD_CA: &[u8] = include_bytes!("../../crates/pki/tests/data/third-party/pkits/certs/GoodCACert.crt");
const LEAF: &[u8] =
    include_bytes!("../../crates/pki/tests/data/third-party/pkits/certs/ValidCertificatePathTest1EE.crt");
const ROOT_CRL: &[u8] = include_bytes!("../../crates/pki/tests/data/third-party/pkits/crls/TrustAnchorRootCRL.crl");

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_577_836_800).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn path() -> &'static ValidatedPath {
    static PATH: OnceLock<ValidatedPath> = OnceLock::new();
    PATH.get_or_init(|| {
        let options = ValidationOptions::default().with_purpose(Purpose::Any);
        validate_with(LEAF, &[GOOD_CA.to_vec()], &[ANCHOR.to_vec()], now(), &options).expect("PKITS 4.1.1 validates")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = check_path_crls(path(), &[data.to_vec(), ROOT_CRL.to_vec()], &[], now());
});
