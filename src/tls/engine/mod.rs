//! The upstream leg's TLS client on rustls's unbuffered API
//! (`UnbufferedClientConnection`), as an `AsyncRead + AsyncWrite` stream.
//!
//! The point is memory and copies on the hot path:
//!
//! - Every buffer is the caller's (this module's) and is taken from a
//!   per-thread pool only while bytes are in flight: ciphertext read from
//!   the socket, plaintext decrypted but not yet read, records encrypted but
//!   not yet written (`buffers`). An idle connection holds none of them;
//!   only rustls's connection state (keys, sequence numbers) stays.
//! - Ciphertext is read from the socket into the incoming buffer, up to
//!   four records a read, and decrypted there by rustls (in place); with
//!   rustls 0.23 the record's plaintext is then handed over in rustls's own
//!   per-record `Vec`, from which it is copied once into the reader's
//!   buffer, or, for another stream (`Source::poll_splice`, `sink`), into
//!   the stash, where the records of one read gather to leave in one write
//!   (issue 26: one 16 KiB write per record cost the decrypting direction
//!   four times the writes, and on loopback the packets, of the encrypting
//!   one).
//! - Plaintext is encrypted from the writer's buffer straight into the
//!   outgoing buffer, several 16 KiB records of it, and that buffer goes to
//!   the socket in one write when it is full or on flush.
//!
//! The clean end is close_notify (a read returns 0); a TCP end without it is
//! `UnexpectedEof`, as with tokio-rustls, so the relay reports truncation.
//! Shutting the write side down sends close_notify, then FIN, and reading
//! goes on (half-close). Records the connection must answer after the
//! handshake (KeyUpdate, alerts) go out with the next write or flush, or
//! at once from a read when the socket takes them.
//!
//! The shape is tokio-rustls's: one [`State`] for where the connection is,
//! a sans-io step that runs rustls over the buffered records (`records`),
//! and small socket steps around it (`socket`: `read_io`, `write_io`, the
//! handshake, the plaintext for a reader or a splice).

mod buffers;
mod records;
mod sink;
mod socket;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, CommonState};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use buffers::{Slot, HANDSHAKE_IN_SIZE, IN_SIZE, OUT_SIZE, STASH_SIZE};
use buffers::{Window, INCOMING, OUTGOING, STASH};
use records::{Driven, Op};
use sink::{BufSink, NoSink, WriterSink};

use crate::source::{Source, SpliceError};

/// A rustls error as the I/O error tokio-rustls would give, so
/// `tls::reason::classify` sees the same thing either way.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Connects: runs the handshake on `io` and returns the stream. Bound it
/// with a timeout; handshake failures are `io::Error`s wrapping the
/// `rustls::Error`, as with tokio-rustls.
pub async fn connect<IO>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    io: IO,
) -> io::Result<TlsClient<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let conn = UnbufferedClientConnection::new(config, name).map_err(tls_error)?;
    let mut s = TlsClient::new(conn, io);
    poll_fn(|cx| s.poll_handshake(cx)).await?;
    Ok(s)
}

/// Where the connection is in its life: one value rather than a flag per
/// event, as tokio-rustls's `TlsState`. The socket's own end (TCP FIN) is
/// not a state: a read that meets it fails as a truncation at once.
#[derive(Debug)]
enum State {
    /// The handshake runs: the incoming buffer may grow to
    /// `HANDSHAKE_IN_SIZE`.
    Handshaking,
    /// Application data both ways.
    Stream,
    /// The peer's close_notify arrived: reads end cleanly, writes go on.
    ReadShutdown,
    /// Our close_notify is queued: writes are refused, reads go on.
    WriteShutdown,
    /// Both close_notifys.
    FullyShutdown,
    /// The connection failed; every later call reports it.
    Failed(rustls::Error),
}

impl State {
    /// The peer's close_notify arrived.
    fn read_closed(&self) -> bool {
        matches!(self, State::ReadShutdown | State::FullyShutdown)
    }

    /// Our close_notify is queued.
    fn write_closed(&self) -> bool {
        matches!(self, State::WriteShutdown | State::FullyShutdown)
    }

    fn handshake_done(&mut self) {
        if let State::Handshaking = self {
            *self = State::Stream;
        }
    }

    fn shutdown_read(&mut self) {
        match self {
            State::Handshaking | State::Stream => *self = State::ReadShutdown,
            State::WriteShutdown => *self = State::FullyShutdown,
            _ => {}
        }
    }

    fn shutdown_write(&mut self) {
        match self {
            State::Handshaking | State::Stream => *self = State::WriteShutdown,
            State::ReadShutdown => *self = State::FullyShutdown,
            _ => {}
        }
    }
}

pub struct TlsClient<IO> {
    conn: UnbufferedClientConnection,
    io: IO,
    /// Ciphertext read from the socket and not yet processed by rustls
    /// (which may decrypt it in place, so it is apart from `core`).
    incoming: Window,
    core: Core,
}

/// What rustls's states write to: the connection's state and the buffers
/// other than the incoming one.
struct Core {
    state: State,
    /// Decrypted plaintext the reader has not taken yet.
    stash: Window,
    /// Records not yet written to the socket.
    outgoing: Window,
}

impl<IO> TlsClient<IO> {
    fn new(conn: UnbufferedClientConnection, io: IO) -> Self {
        TlsClient {
            conn,
            io,
            incoming: Window::new(&INCOMING),
            core: Core {
                state: State::Handshaking,
                stash: Window::new(&STASH),
                outgoing: Window::new(&OUTGOING),
            },
        }
    }

    /// The socket underneath.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The session: version, cipher suite, peer certificates, resumption.
    pub fn session(&self) -> &CommonState {
        &self.conn
    }

    /// Bytes of buffers held right now (0 when idle).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.core.stash.capacity() + self.core.outgoing.capacity()
    }

    /// Decrypted plaintext waiting for the reader.
    #[cfg(test)]
    pub(crate) fn stashed(&self) -> usize {
        self.core.stash.len()
    }

    /// Gives back every buffer that holds nothing.
    fn release_idle(&mut self) {
        self.incoming.release_if_empty();
        self.core.stash.release_if_empty();
        self.core.outgoing.release_if_empty();
    }

    /// Gives up the socket and the rustls connection, for kernel TLS
    /// (`tls::kernel`), when nothing is in flight: no ciphertext read and
    /// not yet processed, no plaintext waiting, no record waiting to be
    /// written, no close begun either way. Otherwise the client comes back
    /// with the reason, unchanged.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self: Box<Self>,
    ) -> Result<(IO, UnbufferedClientConnection), (Box<Self>, &'static str)> {
        if let Some(why) = self.in_flight() {
            return Err((self, why));
        }
        let TlsClient { conn, io, .. } = *self;
        Ok((io, conn))
    }

    /// Why [`TlsClient::into_parts`] would refuse, if it would.
    pub fn in_flight(&self) -> Option<&'static str> {
        if !matches!(self.core.state, State::Handshaking | State::Stream) {
            return Some("the connection is closing");
        }
        if !self.incoming.is_empty()
            || !self.core.stash.is_empty()
            || !self.core.outgoing.is_empty()
        {
            return Some("TLS records are already buffered in userspace");
        }
        None
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Source for TlsClient<IO> {
    /// Decrypts and writes to `writer` without a copy in between when it
    /// takes the bytes.
    fn poll_splice<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut W,
    ) -> Option<Poll<Result<usize, SpliceError>>> {
        Some(self.poll_plaintext(cx, &mut WriterSink::new(writer)))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsClient<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // A reader's buffer never refuses, so every error is the read's.
        let r = ready!(self.get_mut().poll_plaintext(cx, &mut BufSink::new(buf)));
        Poll::Ready(r.map(drop).map_err(|e| match e {
            SpliceError::Read(e) | SpliceError::Write(e) => e,
        }))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsClient<IO> {
    /// Encrypts what fits in the outgoing buffer. A full batch goes to the
    /// socket first; `Pending` only while the socket cannot take it (and
    /// then nothing was taken).
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.core.state.write_closed() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        loop {
            if records::batch_full(&this.core.outgoing) {
                ready!(this.write_io(cx))?;
            }
            match this.drive(cx, &mut NoSink, Op::Encrypt(buf))? {
                Driven::Wrote(n) if n > 0 => return Poll::Ready(Ok(n)),
                Driven::NeedInput => {
                    return Poll::Ready(Err(io::Error::other(
                        "the TLS connection cannot send application data now",
                    )))
                }
                Driven::Closed => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "write after the TLS connection was closed",
                    )))
                }
                // The outgoing buffer has no room for a record.
                _ => ready!(this.write_io(cx))?,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.write_io(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Once: not after our close_notify, nor after a failure (its
        // alert is queued instead).
        if matches!(
            this.core.state,
            State::Handshaking | State::Stream | State::ReadShutdown
        ) {
            this.drive(cx, &mut NoSink, Op::CloseNotify)?;
            this.core.state.shutdown_write();
        }
        ready!(this.write_io(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
