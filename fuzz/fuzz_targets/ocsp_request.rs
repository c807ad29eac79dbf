//! `certdesk_pki::ocsp::parse_request`: what the responder reads from anyone.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certdesk_pki::ocsp::parse_request(data);
});
