//! The CONNECT answer decoder (`route::via`) on arbitrary bytes in
//! arbitrary chunks: it never panics, never claims more bytes than it was
//! given or more than [`MAX_ANSWER`], and what it decides does not depend
//! on how the bytes were split (fed whole, it decides the same and claims
//! the same bytes). The first byte picks the chunk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_sidecar::route::head::Fed;
use tls_sidecar::route::via::{Answer, AnswerDecoder, MAX_ANSWER};

/// Feeds `bytes` in chunks of `size`: the answer and the bytes claimed.
fn run(bytes: &[u8], size: usize) -> Option<Result<(Answer, usize), &'static str>> {
    let mut d = AnswerDecoder::default();
    let mut fed = 0;
    for chunk in bytes.chunks(size) {
        match d.feed(chunk) {
            Ok(Fed::NeedMore) => fed += chunk.len(),
            Ok(Fed::Done(a, used)) => {
                assert!(used <= chunk.len());
                assert!(fed + used <= MAX_ANSWER);
                return Some(Ok((a, fed + used)));
            }
            Err(e) => return Some(Err(e)),
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, bytes)) = data.split_first() else { return };
    let size = usize::from(size % 64) + 1;
    let chunked = run(bytes, size);
    let whole = run(bytes, bytes.len().max(1));
    match (&chunked, &whole) {
        // Fed whole, the decoder may see past a bound the chunks stopped at.
        (Some(Err(_)), _) | (_, Some(Err(_))) => {}
        _ => assert_eq!(chunked, whole),
    }
});
