//! The relay for plain ↔ plain routes on Linux: splice(2) socket → pipe →
//! socket, so the bytes never enter user space.
//!
//! The semantics are the buffered relay's ([`super::relay`]), direction by
//! direction: a clean end of input (FIN) becomes a shutdown of the other
//! socket's writing side once everything before it has left, while the other
//! direction keeps flowing; a read or write error ends the relay at once and
//! names the side (a reset is `FailKind::Reset`), after whatever was already
//! taken from the failing reader has been handed on; no byte moving either
//! way for `idle` ends it; every byte is told to the [`Observe`]r as it is
//! written out. Backpressure is the pipe's: a direction takes from its
//! reader at most what its pipe can hold and reads again only as the writer
//! drains it.
//!
//! A direction holds a pipe (two descriptors) only while bytes are in
//! flight: it takes one from a per-thread pool of empty pipes when its
//! reader has something, and gives it back once the pipe is empty and the
//! reader has nothing more for now, so an idle connection holds no pipe. If
//! no pipe can be had (EMFILE, ENFILE), that direction carries on with the
//! buffered copy of `pipe.rs` for the rest of the connection.
//!
//! Off Linux, or with `TLS_SIDECAR_SPLICE=off` in the environment,
//! [`relay_tcp`] is the buffered relay.

use std::time::Duration;

use tokio::net::TcpStream;

use super::{Observe, Outcome, SpliceEnd};

/// Relays between two plain TCP streams: splice(2) on Linux, the buffered
/// relay elsewhere or with `TLS_SIDECAR_SPLICE=off`. Same outcome, same
/// semantics as [`super::relay`]. A plain socket is one kind of
/// [`SpliceEnd`]: this is [`relay_spliced_until`] without a stop signal.
pub async fn relay_tcp<O>(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
    observe: &O,
) -> Outcome
where
    O: Observe + ?Sized,
{
    relay_spliced_until(client, upstream, idle, observe, std::future::pending()).await
}

/// Relays between two sockets each plain or on kernel TLS
/// (`tls::kernel`): splice(2) both ways, the kernel encrypting and
/// decrypting the kTLS side. Same outcome and semantics as
/// [`super::relay`]; a kTLS reader's clean end is close_notify, its
/// shutdown sends close_notify. With `TLS_SIDECAR_SPLICE=off`, or off
/// Linux, the buffered relay over the same streams.
pub async fn relay_spliced_until<C, U, O, S>(
    client: &mut C,
    upstream: &mut U,
    idle: Duration,
    observe: &O,
    stop: S,
) -> Outcome
where
    C: SpliceEnd + super::Source + tokio::io::AsyncWrite,
    U: SpliceEnd + super::Source + tokio::io::AsyncWrite,
    O: Observe + ?Sized,
    S: std::future::Future<Output = ()>,
{
    #[cfg(target_os = "linux")]
    if enabled() {
        let r = super::Relay::new(linux::Direction::new(), linux::Direction::new(), idle);
        return r.run(client, upstream, observe, stop).await;
    }
    super::relay_until(client, upstream, idle, observe, stop).await
}

/// `TLS_SIDECAR_SPLICE=off` (or `0`, `false`, `no`) in the environment turns
/// splice off: plain routes then use the buffered relay too. For measuring
/// one against the other, and as an escape hatch. Read once.
#[cfg(target_os = "linux")]
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let v = std::env::var("TLS_SIDECAR_SPLICE").unwrap_or_default();
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    })
}

#[cfg(target_os = "linux")]
mod linux;

#[cfg(all(test, target_os = "linux"))]
mod tests;
