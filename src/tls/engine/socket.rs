//! The engine's steps on the socket, around the sans-io `drive`, in the
//! manner of tokio-rustls's `Stream`: `read_io` (ciphertext in),
//! `write_io` (records out), the handshake, and the plaintext for a reader
//! or a splice.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::buffers::{HANDSHAKE_IN_SIZE, MAX_RECORD};
use super::records::{Driven, Op};
use super::sink::{NoSink, Sink};
use super::{State, TlsClient};
use crate::source::SpliceError;

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsClient<IO> {
    /// Writes the outgoing records to the socket; `Ready(Ok)` once all
    /// are written (and the buffer went back to the pool).
    pub(super) fn write_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = &mut self.core.outgoing;
        while !out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, out.pending()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            out.consume(n);
        }
        out.release_if_empty();
        Poll::Ready(Ok(()))
    }

    /// Reads more ciphertext from the socket. `Ready(Ok(false))` at EOF.
    fn read_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let incoming = &mut self.incoming;
        // Held from here on (taken from the pool if need be), so `free`
        // counts its room.
        incoming.buf();
        if incoming.free() < MAX_RECORD && incoming.start > 0 {
            incoming.compact();
        }
        if incoming.free() == 0 {
            let handshaking = matches!(self.core.state, State::Handshaking);
            if handshaking && incoming.buf().len() < HANDSHAKE_IN_SIZE {
                // A handshake message rustls is still joining fills the
                // buffer: room for the largest one TLS allows.
                incoming.buf().resize(HANDSHAKE_IN_SIZE, 0);
            } else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    if handshaking {
                        "a TLS handshake message larger than the 64 KiB allowed"
                    } else {
                        "a TLS record larger than the incoming buffer"
                    },
                )));
            }
        }
        let end = incoming.end;
        let mut rb = ReadBuf::new(&mut incoming.buf()[end..]);
        match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
            Poll::Pending => {
                self.incoming.release_if_empty();
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                self.incoming.end += n;
                Poll::Ready(Ok(n > 0))
            }
        }
    }

    pub(super) fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let driven = match self.drive(cx, &mut NoSink, Op::Handshake) {
                Ok(d) => d,
                Err(e) => {
                    // Best effort: the peer learns why from the alert.
                    let _ = self.write_io(cx);
                    return Poll::Ready(Err(e));
                }
            };
            ready!(self.write_io(cx))?;
            if let Driven::Done = driven {
                self.core.state.handshake_done();
                self.incoming.shrink();
                self.release_idle();
                return Poll::Ready(Ok(()));
            }
            if !ready!(self.read_io(cx))? {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )));
            }
        }
    }

    /// Plaintext for `sink`: what waits in the stash first, else records
    /// decrypted from the socket. `Ready(Ok(n))`: `n` bytes taken; 0 is
    /// the clean end (or a reader with no room).
    pub(super) fn poll_plaintext<S: Sink>(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut S,
    ) -> Poll<Result<usize, SpliceError>> {
        loop {
            if !self.core.stash.is_empty() {
                let n = sink.put(cx, self.core.stash.pending());
                self.core.stash.consume(n);
                self.core.stash.release_if_empty();
                return sink.outcome().map_err(SpliceError::Write);
            }
            if self.core.state.read_closed() {
                self.release_idle();
                return Poll::Ready(Ok(0));
            }
            let driven = self.drive(cx, sink, Op::Read);
            // Answers rustls queued (KeyUpdate, alerts) leave when the
            // socket takes them; a socket that cannot take them now does
            // not hold this read up (they leave with the next write).
            if !self.core.outgoing.is_empty() {
                if let Poll::Ready(Err(e)) = self.write_io(cx) {
                    return Poll::Ready(Err(SpliceError::Read(e)));
                }
            }
            let outcome = sink.outcome();
            if let Poll::Ready(Err(e)) = outcome {
                return Poll::Ready(Err(SpliceError::Write(e)));
            }
            let driven = driven.map_err(SpliceError::Read)?;
            match outcome {
                Poll::Ready(Ok(n)) if n > 0 => {
                    if self.incoming.is_empty() {
                        self.release_idle();
                    }
                    return Poll::Ready(Ok(n));
                }
                // The writer will wake us.
                Poll::Pending => return Poll::Pending,
                _ => {}
            }
            let need_input = matches!(driven, Driven::NeedInput);
            if !need_input || !self.core.stash.is_empty() || self.core.state.read_closed() {
                continue;
            }
            if !ready!(self.read_io(cx)).map_err(SpliceError::Read)? {
                return Poll::Ready(Err(SpliceError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                ))));
            }
        }
    }
}
