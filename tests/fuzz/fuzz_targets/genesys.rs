//! `import genesys` (and so the config layer's translation of a Genesys
//! transport-parameter string) on arbitrary text, as a connection's
//! parameters and as a server port's: it may refuse, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_sidecar::import::genesys::{import, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(params) = std::str::from_utf8(data) else { return };
    for server_port in [false, true] {
        let opts = Options {
            server_port,
            listen: Some("127.0.0.1:7000".into()),
            connect: Some("localhost:7001".into()),
        };
        let _ = import(params, &opts);
    }
});
