//! `certdesk_smime::mime`: the S/MIME message reader, the entity splitter and the
//! input splitter of `smime sign`.
#![no_main]

use certdesk_smime::mime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mime::parse(data);
    let _ = mime::Entity::parse(data);
    let _ = mime::split_for_signing(data);
});
