//! `certdesk_smime::signed_data::verify` on arbitrary ContentInfo bytes, opaque and
//! detached, with the RFC 9216 signer certificates offered (so that well-formed
//! mutants reach the signature check); and the streaming
//! `signed_data::stream::EncapsulatedReader` on the same bytes in pieces, which must
//! never accept what the in-memory `verify` refuses, nor yield other content.
#![no_main]

use std::sync::OnceLock;

use certdesk_smime::signed_data::stream::EncapsulatedReader;
use certdesk_smime::signed_data::verify;
use libfuzzer_sys::fuzz_target;

const ALICE: &[u8] = include_bytes!("../../crates/smime/tests/data/cms-examples/lamps-alice.crt");
const CARLOS: &[u8] = include_bytes!("../../crates/smime/tests/data/cms-examples/lamps-carlos.crt");

fn certificates() -> &'static [Vec<u8>] {
    static CERTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CERTS.get_or_init(|| {
        [ALICE, CARLOS]
            .iter()
            .map(|pem| der::pem::decode_vec(pem).map(|(_, der)| der).expect("the committed PEM fixture decodes"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let extra = certificates();
    let _ = verify(data, None, extra);
    let _ = verify(data, Some(b"This is some sample content."), extra);
    let whole = verify(data, None, &[]);
    let piece = 1 + data.first().map_or(0, |b| usize::from(*b) % 64);
    let mut reader = EncapsulatedReader::new();
    let mut content = Vec::new();
    let streamed = data.chunks(piece).try_for_each(|part| reader.push(part, &mut content)).and_then(|()| reader.finish());
    if streamed.is_ok() {
        let whole = whole.expect("the streaming reader accepted what verify refuses");
        assert_eq!(whole.content, content, "the streaming reader yields other content");
    }
});
