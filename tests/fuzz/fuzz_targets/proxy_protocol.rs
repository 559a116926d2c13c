//! The PROXY header decoder on arbitrary bytes in arbitrary chunks: it
//! never panics, never claims more bytes than it was given or more than a
//! header may span, and a header it found decodes the same when fed whole.
//! The first byte picks the chunk size; the CONNECT answer decoder of
//! `route::via` gets the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_sidecar::proxy_protocol::{Decoded, Decoder, MAX_HEADER};
use tls_sidecar::route::head::Fed;
use tls_sidecar::route::via::{AnswerDecoder, MAX_ANSWER};

fuzz_target!(|data: &[u8]| {
    let Some((&size, bytes)) = data.split_first() else { return };
    let size = usize::from(size % 64) + 1;

    let mut d = Decoder::new();
    let mut fed = 0;
    for chunk in bytes.chunks(size) {
        match d.feed(chunk) {
            Ok(Decoded::NeedMore) => fed += chunk.len(),
            Ok(Decoded::Done { header, consumed }) => {
                assert!(consumed <= chunk.len());
                let len = fed + consumed;
                assert!(len <= MAX_HEADER);
                let again = Decoder::new().feed(&bytes[..len]);
                assert_eq!(again, Ok(Decoded::Done { header, consumed: len }));
                break;
            }
            Err(_) => break,
        }
    }

    let mut a = AnswerDecoder::default();
    let mut fed = 0;
    for chunk in bytes.chunks(size) {
        match a.feed(chunk) {
            Ok(Fed::NeedMore) => fed += chunk.len(),
            Ok(Fed::Done(_, used)) => {
                assert!(used <= chunk.len());
                assert!(fed + used <= MAX_ANSWER);
                break;
            }
            Err(_) => break,
        }
    }
});
