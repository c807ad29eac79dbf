//! `certdesk_smime::envelope`: the recipient list and decryption of arbitrary
//! ContentInfo bytes with a fixed key (RFC 9216 Bob, RSA).
#![no_main]

use std::sync::OnceLock;

use certdesk_smime::envelope::{decrypt, recipients, RecipientKey};
use libfuzzer_sys::fuzz_target;

const BOB_KEY: &[u8] = include_bytes!("../../crates/smime/tests/data/cms-examples/lamps-bob.decrypt.p8.pem");
const BOB_CERT: &[u8] = include_bytes!("../../crates/smime/tests/data/cms-examples/lamps-bob.encrypt.crt");

fn bob() -> &'static RecipientKey {
    static BOB: OnceLock<RecipientKey> = OnceLock::new();
    BOB.get_or_init(|| {
        let der =
            |pem: &[u8]| der::pem::decode_vec(pem).map(|(_, der)| der).expect("the committed PEM fixture decodes");
        RecipientKey::new(&der(BOB_KEY), &der(BOB_CERT)).expect("Bob's key matches his certificate")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = recipients(data);
    let _ = decrypt(data, std::slice::from_ref(bob()));
});
