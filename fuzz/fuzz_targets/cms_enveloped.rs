//! `certdesk_smime::envelope`: the recipient list and decryption of arbitrary
//! ContentInfo bytes with a fixed key (RFC 9216 Bob, RSA), in memory and streamed in
//! pieces (`envelope::stream`), which must agree whenever the streamed one succeeds.
#![no_main]

use std::sync::OnceLock;

use certdesk_smime::envelope::stream::EnvelopeReader;
use certdesk_smime::envelope::{decrypt, recipients, EnvelopeError, RecipientKey};
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
    let keys = std::slice::from_ref(bob());
    let whole = decrypt(data, keys);
    let piece = 1 + data.first().map_or(0, |b| usize::from(*b) % 64);
    let mut parts = data.chunks(piece);
    let mut reader = EnvelopeReader::new();
    let streamed = (|| -> Result<Vec<u8>, EnvelopeError> {
        for part in parts.by_ref() {
            if reader.push(part)? {
                break;
            }
        }
        let mut decryptor = reader.open(keys)?;
        let mut plain = Vec::new();
        for part in parts {
            decryptor.push(part, &mut plain)?;
        }
        decryptor.finish(&mut plain)?;
        Ok(plain)
    })();
    if let Ok(plain) = streamed {
        let whole = whole.expect("the streaming decryptor accepted what decrypt refuses");
        assert_eq!(whole, plain, "the streaming decryptor yields other plaintext");
    }
});
