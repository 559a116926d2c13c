//! `import jetty`'s reader on arbitrary text: the input is the XML, then
//! (after a NUL byte, if any) a properties file. It may refuse, never
//! panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_sidecar::import::jetty::{translate_text, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (xml, props) = text.split_once('\0').unwrap_or((text, ""));
    let opts = Options {
        listen: "127.0.0.1:8443".into(),
        connect: "127.0.0.1:8080".into(),
        properties: Vec::new(),
    };
    let _ = translate_text(xml, props, &opts);
});
