//! The relay: moves bytes between the client's stream and the upstream's
//! until both directions are finished. It knows nothing of upgrades and
//! sees two async byte streams; a stream that holds its bytes itself (the
//! upstream TLS engine, `tls::engine`) may write them to the other side
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

pub use crate::source::{AfterError, Source, SpliceEnd, SpliceError};
pub use splice::{relay_spliced_until, relay_tcp};

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::time::{Instant, Sleep};

pub(crate) use pipe::{Pipe, PipeError};

/// Bytes per direction held at most while in flight. One TLS record's
/// worth of plaintext, so one read fills one record.
pub const BUFFER_SIZE: usize = 16 * 1024;

/// How a relay ended.
#[derive(Debug)]
pub enum End {
    /// Both directions ended cleanly (FIN or close_notify each way).
    Closed,
    /// No byte moved either way for the idle timeout. `in_flight`: bytes
    /// taken from one side were still waiting to be written to the other.
    Idle { in_flight: bool },
    /// The caller's stop signal (the end of `shutdown_grace`) cut it.
    Cut,
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
    /// The failed side refused a write (rather than failing as a reader).
    pub writing: bool,
    /// The other direction had already ended cleanly: everything in it,
    /// and its end, was passed on before this failure.
    pub other_done: bool,
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
    /// How an I/O error ended a stream.
    pub fn of(e: &io::Error) -> FailKind {
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
    /// The client → upstream direction ended cleanly: the upstream was
    /// sent everything, then its FIN or close_notify.
    pub upstream_done: bool,
    /// The upstream → client direction ended cleanly.
    pub downstream_done: bool,
    pub end: End,
}

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
    relay_until(client, upstream, idle, observe, std::future::pending()).await
}

/// [`relay`], cut short (`End::Cut`) when `stop` completes.
///
/// Not an `async fn`: it returns the driver's future itself, so the relay's
/// state is laid out once in the connection's task (an `async fn` around
/// it would hold a moved-from copy of it and of its arguments beside it,
/// for every idle connection; issue 26).
pub fn relay_until<'a, C, U, O, S>(
    client: &'a mut C,
    upstream: &'a mut U,
    idle: Duration,
    observe: &'a O,
    stop: S,
) -> impl Future<Output = Outcome> + use<'a, C, U, O, S>
where
    C: Source + AsyncWrite + ?Sized,
    U: Source + AsyncWrite + ?Sized,
    O: Observe + ?Sized,
    S: Future<Output = ()>,
{
    let r = Relay::new(Pipe::new(BUFFER_SIZE), Pipe::new(BUFFER_SIZE), idle);
    r.run(client, upstream, observe, stop)
}

/// One direction of a relay, as the driver sees it: the buffered copy
/// ([`Pipe`]) or splice(2) (`splice::linux::Direction`).
pub(crate) trait Flow<R: ?Sized, W: ?Sized> {
    /// Moves bytes from `reader` to `writer` as far as it can without
    /// blocking. `Ready(Ok)` once the reader's clean end was passed on as
    /// the writer's shutdown; `Ready(Err)` once, naming the side that
    /// failed.
    fn poll_flow(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        observe: impl FnMut(usize),
    ) -> Poll<Result<(), PipeError>>;

    /// Bytes written out so far.
    fn bytes(&self) -> u64;

    /// Bytes taken from the reader are waiting to be written.
    fn in_flight(&self) -> bool;
}

/// The one relay driver: both directions, the idle timer, and the policy
/// of when a relay has ended.
///
/// - Both directions ended cleanly: `Closed`.
/// - A reader failed (truncation, reset, error): the relay ends at once;
///   that stream is broken, nothing more will come from it.
/// - A writer refused bytes: that direction is over, but the other one
///   goes on until it ends too. Its reader is the side that refused, whose
///   last bytes and clean end may still be on their way (a server that sent
///   a whole response and close_notify, then reset because the client was
///   still sending).
pub(crate) struct Relay<Up, Down> {
    pub(crate) up: Up,
    pub(crate) down: Down,
    up_end: Option<Result<(), PipeError>>,
    down_end: Option<Result<(), PipeError>>,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
    seen: (u64, u64),
    idle: Duration,
}

impl<Up, Down> Relay<Up, Down> {
    pub(crate) fn new(up: Up, down: Down, idle: Duration) -> Self {
        let last_activity = Instant::now();
        Relay {
            up,
            down,
            up_end: None,
            down_end: None,
            last_activity,
            timer: Box::pin(tokio::time::sleep_until(last_activity + idle)),
            seen: (0, 0),
            idle,
        }
    }

    /// Runs to the end, or until `stop` completes.
    pub(crate) fn run<'a, C, U, O, S>(
        self,
        client: &'a mut C,
        upstream: &'a mut U,
        observe: &'a O,
        stop: S,
    ) -> Run<'a, Up, Down, C, U, O, S>
    where
        C: ?Sized,
        U: ?Sized,
        O: ?Sized,
    {
        Run {
            relay: self,
            client,
            upstream,
            observe,
            stop,
        }
    }

    pub(crate) fn poll<C, U, O>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut U,
        observe: &O,
    ) -> Poll<End>
    where
        C: ?Sized,
        U: ?Sized,
        Up: Flow<C, U>,
        Down: Flow<U, C>,
        O: Observe + ?Sized,
    {
        if self.up_end.is_none() {
            if let Poll::Ready(r) = self
                .up
                .poll_flow(cx, &mut *client, &mut *upstream, |n| observe.upstream(n))
            {
                self.up_end = Some(r);
            }
        }
        if self.down_end.is_none() {
            if let Poll::Ready(r) = self
                .down
                .poll_flow(cx, &mut *upstream, &mut *client, |n| observe.downstream(n))
            {
                self.down_end = Some(r);
            }
        }
        if let Some(end) = decide(&mut self.up_end, &mut self.down_end) {
            return Poll::Ready(end);
        }

        let now_seen = (self.up.bytes(), self.down.bytes());
        if now_seen != self.seen {
            self.seen = now_seen;
            self.last_activity = Instant::now();
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            let deadline = self.last_activity + self.idle;
            if Instant::now() >= deadline {
                return Poll::Ready(End::Idle {
                    in_flight: self.up.in_flight() || self.down.in_flight(),
                });
            }
            self.timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// [`Relay::run`]'s future: the relay, the two streams and the stop
    /// signal, each laid out once. It is a named future, not an `async fn`,
    /// because an `async fn` keeps its arguments beside the locals it moves
    /// them into (rust-lang/rust#62958): a second relay and a second stop
    /// signal, 688 bytes against 328 in every connection's task, idle ones
    /// included (issue 26).
    pub(crate) struct Run<'a, Up, Down, C: ?Sized, U: ?Sized, O: ?Sized, S> {
        relay: Relay<Up, Down>,
        client: &'a mut C,
        upstream: &'a mut U,
        observe: &'a O,
        #[pin]
        stop: S,
    }
}

impl<Up, Down, C, U, O, S> Future for Run<'_, Up, Down, C, U, O, S>
where
    C: ?Sized,
    U: ?Sized,
    Up: Flow<C, U>,
    Down: Flow<U, C>,
    O: Observe + ?Sized,
    S: Future<Output = ()>,
{
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.project();
        let relay = this.relay;
        let end = match relay.poll(cx, &mut **this.client, &mut **this.upstream, *this.observe) {
            Poll::Ready(end) => end,
            Poll::Pending => match this.stop.poll(cx) {
                Poll::Ready(()) => End::Cut,
                Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(Outcome {
            upstream_bytes: relay.up.bytes(),
            downstream_bytes: relay.down.bytes(),
            upstream_done: matches!(relay.up_end, Some(Ok(()))),
            downstream_done: matches!(relay.down_end, Some(Ok(()))),
            end,
        })
    }
}

/// Whether the directions' ends so far end the relay, and how (see
/// [`Relay`]). Takes the failure it reports.
fn decide(
    up: &mut Option<Result<(), PipeError>>,
    down: &mut Option<Result<(), PipeError>>,
) -> Option<End> {
    // Which side a direction's error is: up reads the client and writes
    // the upstream, down the other way round.
    fn end(e: PipeError, up: bool, other_done: bool) -> End {
        let (client, error, writing) = match (e, up) {
            (PipeError::Read(e), true) => (true, e, false),
            (PipeError::Write(e), true) => (false, e, true),
            (PipeError::Read(e), false) => (false, e, false),
            (PipeError::Write(e), false) => (true, e, true),
        };
        let f = Failure {
            kind: FailKind::of(&error),
            error,
            writing,
            other_done,
        };
        if client {
            End::Client(f)
        } else {
            End::Upstream(f)
        }
    }
    type DirEnd = Option<Result<(), PipeError>>;
    let reader_broke = |d: &DirEnd| matches!(d, Some(Err(PipeError::Read(_))));
    let failed = |d: &DirEnd| matches!(d, Some(Err(_)));
    // The direction whose failure ends the relay now, if any: a broken
    // reader at once (it is the cause), a refused write once the other
    // direction is over too.
    let report_up = if reader_broke(up) {
        true
    } else if reader_broke(down) {
        false
    } else if up.is_none() || down.is_none() {
        return None;
    } else if failed(up) {
        true
    } else if failed(down) {
        false
    } else {
        return Some(End::Closed);
    };
    let (mine, other) = if report_up { (up, down) } else { (down, up) };
    let other_done = matches!(other, Some(Ok(())));
    match mine.take() {
        Some(Err(e)) => Some(end(e, report_up, other_done)),
        _ => None,
    }
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
