//! The config loader on arbitrary text: it may refuse, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tls_sidecar::config::load_str(std::path::Path::new("fuzz.toml"), text, Some(Default::default()));
    }
});
