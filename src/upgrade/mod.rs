//! Upgrade mode: the connection starts plain, an in-band exchange happens
//! (STARTTLS, SSLRequest, an in-house script), then both ends switch to TLS
//! on the same socket.
//!
//! `script` is the [`Script`] the engine runs: a route's steps as `config`
//! checked them, or a built-in profile (`profiles`); `engine` is the sans-io
//! state machine that runs it — fed the bytes each side sends, it says what
//! to write where, when to start TLS, or why it failed, and never touches a
//! socket; `driver` is the thin async shell that runs the engine over two
//! streams.
//!
//! Two rules hold at the switch. Bytes the client sent early (psql's
//! StartupMessage right after our `N`) are returned in
//! [`Upgraded::client_early`] and relayed once TLS is up. Bytes the server
//! sent after its go-ahead have no right to exist (a TLS server speaks only
//! after the ClientHello): they are the classic STARTTLS injection, and the
//! exchange fails with `upgrade_protocol`.

mod driver;
mod engine;
mod profiles;
mod script;

pub use driver::drive;
pub use engine::{Engine, Next, UpgradeError, Upgraded};
pub use profiles::builtin;
pub use script::{Matcher, Relay, Script, Step};

/// Bounds on what a peer may send during the exchange.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest line or message one wait may take.
    pub max_message: usize,
    /// The most bytes either side may send in the whole exchange.
    pub max_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 8 * 1024,
            max_total: 64 * 1024,
        }
    }
}
