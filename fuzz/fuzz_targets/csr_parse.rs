//! `certdesk_pki::csr::ValidatedCsr::parse` (PEM or DER).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certdesk_pki::csr::ValidatedCsr::parse(data);
});
