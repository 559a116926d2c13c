//! The upgrade engine, every built-in profile, on arbitrary bytes from both
//! sides in arbitrary chunks: it ends (done or failed), never panics, and
//! never hands back more client bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_sidecar::config::Profile;
use tls_sidecar::upgrade::{builtin, Engine, Limits, Next};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let profile = Profile::ALL[selector as usize % Profile::ALL.len()];
    let script = builtin(profile, "fuzz");
    // The rest is split into chunks: each chunk's first byte says its
    // length and which side sent it.
    let mut chunks = Vec::new();
    let mut r = rest;
    while let Some((&h, tail)) = r.split_first() {
        let n = (h as usize & 0x3f).min(tail.len());
        chunks.push((h & 0x80 != 0, &tail[..n]));
        r = &tail[n..];
    }
    let mut up = chunks.iter().filter(|c| !c.0).map(|c| c.1);
    let mut cl = chunks.iter().filter(|c| c.0).map(|c| c.1);
    let given: usize = chunks.iter().filter(|c| c.0).map(|c| c.1.len()).sum();
    let mut e = Engine::new(&script, Limits { max_message: 512, max_total: 4096 });
    for _ in 0..10_000 {
        match e.step() {
            Next::Write { .. } => {}
            Next::ReadUpstream => match up.next() {
                Some(b) => e.upstream_data(b),
                None => e.upstream_eof(),
            },
            Next::ReadClient => match cl.next() {
                Some(b) => e.client_data(b),
                None => e.client_eof(),
            },
            Next::Done(u) => {
                assert!(u.client_early.len() <= given);
                return;
            }
            Next::Failed(_) => return,
        }
    }
    panic!("the engine did not finish");
});
