//! Kernel TLS (kTLS, issue 18): after rustls's handshake, a TLS leg hands
//! its record keys to the socket (`TCP_ULP "tls"`, `TLS_TX`, `TLS_RX`) and
//! the kernel encrypts and decrypts; the relay then moves bytes between the
//! plain socket and the kTLS socket with splice(2), never touching them
//! (a [`KtlsStream`] is a `SpliceEnd` to it, like a plain socket).
//! This file decides whether a leg switches, and switches it.
//!
//! The socket options and the TLS control records (sendmsg/recvmsg with
//! their record type) are `ktls-core`'s, so the unsafe code stays in that
//! crate; the keys come from rustls (`dangerous_into_kernel_connection`).
//!
//! A leg switches only when it can do so without losing a byte: the kernel
//! offers the `tls` ULP and the negotiated suite (probed once, see
//! [`kernel()`]); TLS 1.3 (see [`Fallback::Tls12`]); and rustls holds
//! nothing in flight (no record read past the handshake, none waiting to
//! be sent). Otherwise the leg stays on the userspace engine, and says why.
//!
//! - [`support`]: what the running kernel supports (and offers us);
//! - [`stream`]: the kTLS leg as an async stream ([`KtlsStream`]);
//! - [`records`]: the control records (alerts, tickets, KeyUpdate,
//!   close_notify) on a kTLS socket;
//! - [`framed`]: the listen leg's socket read record by record during the
//!   handshake ([`Framed`]).

use std::io;

use tokio::net::TcpStream;

use crate::tls::engine::TlsClient;

mod framed;
mod records;
mod stream;
mod support;

pub use framed::Framed;
pub use stream::KtlsStream;
#[cfg(target_os = "linux")]
pub use support::kernel;
pub use support::{available, offer, suite_fits, Suites};

/// Why a TLS leg runs on the userspace engine rather than kTLS. Its label
/// is the `reason` of `tls_sidecar_ktls_fallbacks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Fallback {
    /// The kernel has no `tls` ULP (module not loaded, or not built).
    NoUlp,
    /// The kernel lacks the negotiated cipher suite.
    UnsupportedSuite,
    /// TLS 1.2: the kTLS control-record path answers a TLS 1.2
    /// close_notify at once (RFC 5246), which would end the other
    /// direction of a half-closed connection early; TLS 1.2 stays on
    /// rustls, which carries half-close.
    #[strum(serialize = "tls12")]
    Tls12,
    /// rustls already holds records past the handshake (read, or to send).
    #[strum(serialize = "buffered_records")]
    Buffered,
    /// The other TLS leg of the connection stays in userspace.
    OtherLeg,
    /// The kernel refused the `tls` ULP on this socket (it is no longer
    /// established: the peer already closed).
    UlpRefused,
    /// Not Linux.
    NotLinux,
}

impl Fallback {
    pub fn label(self) -> &'static str {
        self.into()
    }

    pub fn describe(self) -> &'static str {
        match self {
            Fallback::NoUlp => "the kernel offers no \"tls\" ULP (modprobe tls)",
            Fallback::UnsupportedSuite => "the kernel lacks the negotiated cipher suite",
            Fallback::Tls12 => {
                "TLS 1.2 stays in userspace (kTLS would answer the peer's close_notify at once and cut half-close)"
            }
            Fallback::Buffered => "TLS records were already buffered in userspace",
            Fallback::OtherLeg => "the connection's other TLS leg stays in userspace",
            Fallback::UlpRefused => {
                "the kernel refused the tls ULP on this socket (no longer established)"
            }
            Fallback::NotLinux => "kernel TLS is Linux only",
        }
    }
}

pub use crate::source::AfterError;

/// The listen leg's TLS stream, over a socket read one record at a time
/// during the handshake (see [`Framed`]).
pub type ServerTls = tokio_rustls::server::TlsStream<Framed>;

/// The outcome of a switch the checks allowed: the kTLS stream, or the
/// error of a kernel that refused the keys after rustls gave them up (the
/// connection is then lost, and ends as a failure).
pub type Switched = io::Result<KtlsStream>;

fn session_fits(s: &rustls::CommonState) -> Result<(), Fallback> {
    match (s.protocol_version(), s.negotiated_cipher_suite()) {
        (Some(v), Some(c)) => suite_fits(v, c.suite()),
        _ => Err(Fallback::Buffered),
    }
}

/// Whether the upstream leg could switch (checked before any leg does).
pub fn client_fits(t: &TlsClient<TcpStream>) -> Result<(), Fallback> {
    session_fits(t.session())?;
    t.in_flight().map_or(Ok(()), |_| Err(Fallback::Buffered))
}

/// Whether the listen leg could switch.
pub fn server_fits(s: &ServerTls) -> Result<(), Fallback> {
    let (framed, conn) = s.get_ref();
    session_fits(conn)?;
    if conn.wants_write() || !framed.at_boundary() {
        return Err(Fallback::Buffered);
    }
    Ok(())
}

/// Switches the upstream leg. `Err` gives the client back, untouched.
#[allow(clippy::type_complexity)]
pub fn from_client(
    t: Box<TlsClient<TcpStream>>,
) -> Result<Switched, (Box<TlsClient<TcpStream>>, Fallback)> {
    if let Err(f) = client_fits(&t) {
        return Err((t, f));
    }
    if let Err(f) = support::ulp(t.get_ref()) {
        return Err((t, f));
    }
    let (tcp, conn) = match t.into_parts() {
        Ok(p) => p,
        Err((t, _)) => return Err((t, Fallback::Buffered)),
    };
    Ok(stream::client(tcp, conn))
}

/// Switches the listen leg. `Err` gives the stream back, untouched but for
/// its reads, which pass straight through from then on (it stays in
/// userspace: no reason to read record by record any more).
///
/// Plaintext rustls already decrypted (the client's first bytes, read
/// with its Finished) comes out with the stream, for the other leg.
pub fn from_server(mut s: ServerTls) -> Result<(Switched, Vec<u8>), (Box<ServerTls>, Fallback)> {
    let stay = |mut s: ServerTls, f: Fallback| {
        s.get_mut().0.pass_through();
        Err((Box::new(s), f))
    };
    if let Err(f) = server_fits(&s) {
        return stay(s, f);
    }
    // Before any plaintext is taken out of rustls: a refusal here leaves
    // the stream whole in userspace.
    if let Err(f) = support::ulp(s.get_ref().0.get_ref()) {
        return stay(s, f);
    }
    let early = {
        let conn = &mut s.get_mut().1;
        match conn.process_new_packets() {
            Ok(st) if !st.peer_has_closed() => {
                let mut early = vec![0; st.plaintext_bytes_to_read()];
                if std::io::Read::read_exact(&mut conn.reader(), &mut early).is_err() {
                    return stay(s, Fallback::Buffered);
                }
                early
            }
            _ => return stay(s, Fallback::Buffered),
        }
    };
    let (framed, conn) = s.into_inner();
    Ok((stream::server(framed.into_inner(), conn), early))
}
