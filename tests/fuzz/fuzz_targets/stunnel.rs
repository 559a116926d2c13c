//! `import stunnel`'s reader on arbitrary text as a stunnel.conf: parsed,
//! typed and translated (without the disk: `include` and `verifyPeer`'s
//! pins are refused), and what it writes loaded by the config layer. It
//! may refuse, never panic or hang.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(import) = tls_sidecar::import::stunnel::translate_text(Path::new("fuzz.conf"), text) {
        let toml = import.text_for(Path::new("/fuzz/config.toml"));
        let _ = tls_sidecar::config::load_str(Path::new("fuzz.toml"), &toml, Some(Default::default()));
    }
});
