//! The relay: moves bytes between the client's stream and the upstream's
//! until both directions are finished. It knows nothing of upgrades and
//! sees two async byte streams; a stream that holds its bytes itself (the
//! upstream TLS client in [`tls`]) may write them to the other side
//! directly ([`Source::poll_splice`]) instead of through the relay's buffer.
//!
//! Each direction is its own small state machine (`pipe`): read into a fixed
//! buffer, write it all out, flush when the reader has nothing more to give,
//! and on a clean end of input shut the writer down (for a TLS writer that is
//! close_notify, then FIN) while the other direction keeps going. An error on
//! either side ends the relay at once and says which side failed and how, so
//! the caller can carry a truncation or reset through to the other side.

mod pipe;
mod splice;
pub mod tls;

pub use splice::relay_tcp;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use pipe::{Pipe, PipeError};

/// Bytes per direction held at most while in flight. One TLS record's
/// worth of plaintext, so one read fills one record.
pub const BUFFER_SIZE: usize = 16 * 1024;

/// How a relay ended.
#[derive(Debug)]
pub enum End {
    /// Both directions ended cleanly (FIN or close_notify each way).
    Closed,
    /// No byte moved either way for the idle timeout.
    Idle,
    /// The client's side failed.
    Client(Failure),
    /// The upstream's side failed.
    Upstream(Failure),
}

/// One side's failure.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailKind,
    /// The underlying error, for the log.
    pub error: io::Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The stream ended without its clean end (a TLS peer closed TCP without
    /// close_notify): what came before may be incomplete.
    Truncated,
    /// The peer reset the connection (or it was aborted).
    Reset,
    /// Any other I/O or protocol error.
    Error,
}

impl FailKind {
    fn of(e: &io::Error) -> FailKind {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => FailKind::Truncated,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => FailKind::Reset,
            _ => FailKind::Error,
        }
    }
}

/// What a relay did.
#[derive(Debug)]
pub struct Outcome {
    /// Bytes carried client → upstream.
    pub upstream_bytes: u64,
    /// Bytes carried upstream → client.
    pub downstream_bytes: u64,
    pub end: End,
}

/// A stream the relay reads from. Most read into the relay's buffer
/// (`AsyncRead`); a stream that holds the bytes itself (the unbuffered TLS
/// client's decrypted records) can instead write them straight to the
/// other side, saving that copy.
pub trait Source: AsyncRead + Unpin {
    /// Reads what is there and writes it to `writer`. `None`: not
    /// supported, use `poll_read`. `Ready(Ok(0))` is the clean end.
    fn poll_splice<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        _cx: &mut Context<'_>,
        _writer: &mut W,
    ) -> Option<Poll<Result<usize, SpliceError>>> {
        None
    }
}

/// Which side of a splice failed.
#[derive(Debug)]
pub enum SpliceError {
    Read(io::Error),
    Write(io::Error),
}

impl Source for tokio::net::TcpStream {}
impl Source for tokio::io::DuplexStream {}
impl<IO: AsyncRead + AsyncWrite + Unpin> Source for tokio_rustls::client::TlsStream<IO> {}
impl<IO: AsyncRead + AsyncWrite + Unpin> Source for tokio_rustls::server::TlsStream<IO> {}

/// Told of bytes as they are carried, so counters move while a long-lived
/// connection is open rather than only when it closes.
pub trait Observe {
    fn upstream(&self, n: usize);
    fn downstream(&self, n: usize);
}

impl Observe for () {
    fn upstream(&self, _: usize) {}
    fn downstream(&self, _: usize) {}
}

/// Carries bytes both ways between `client` and `upstream` until both
/// directions have ended, one side fails, or nothing moves for `idle`.
pub async fn relay<C, U, O>(
    client: &mut C,
    upstream: &mut U,
    idle: Duration,
    observe: &O,
) -> Outcome
where
    C: Source + AsyncWrite + ?Sized,
    U: Source + AsyncWrite + ?Sized,
    O: Observe + ?Sized,
{
    let mut up = Pipe::new(BUFFER_SIZE);
    let mut down = Pipe::new(BUFFER_SIZE);
    let mut last_activity = Instant::now();
    let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(last_activity + idle));
    let mut seen = (0u64, 0u64);

    let end = poll_fn(|cx| {
        let up_state = up.poll(cx, &mut *client, &mut *upstream, |n| observe.upstream(n));
        if let Poll::Ready(Err(e)) = up_state {
            return Poll::Ready(match e {
                PipeError::Read(error) => End::Client(Failure {
                    kind: FailKind::of(&error),
                    error,
                }),
                PipeError::Write(error) => End::Upstream(Failure {
                    kind: FailKind::of(&error),
                    error,
                }),
            });
        }
        let down_state = down.poll(cx, &mut *upstream, &mut *client, |n| observe.downstream(n));
        if let Poll::Ready(Err(e)) = down_state {
            return Poll::Ready(match e {
                PipeError::Read(error) => End::Upstream(Failure {
                    kind: FailKind::of(&error),
                    error,
                }),
                PipeError::Write(error) => End::Client(Failure {
                    kind: FailKind::of(&error),
                    error,
                }),
            });
        }
        if up_state.is_ready() && down_state.is_ready() {
            return Poll::Ready(End::Closed);
        }

        let now_seen = (up.bytes(), down.bytes());
        if now_seen != seen {
            seen = now_seen;
            last_activity = Instant::now();
        }
        while timer.as_mut().poll(cx).is_ready() {
            let deadline = last_activity + idle;
            if Instant::now() >= deadline {
                return Poll::Ready(End::Idle);
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await;

    Outcome {
        upstream_bytes: up.bytes(),
        downstream_bytes: down.bytes(),
        end,
    }
}

#[cfg(test)]
mod tests;
