//! `certdesk_pki::pkcs12::read` with a fixed password (the one of the client test
//! files, so that mutants of them get past the MAC).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certdesk_pki::pkcs12::read(data, "password");
});
