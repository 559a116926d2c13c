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

use super::{Observe, Outcome};

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
/// ([`super::ktls`]): splice(2) both ways, the kernel encrypting and
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

/// One end of a spliced relay: a plain TCP socket, or one on kernel TLS.
pub trait SpliceEnd: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {
    /// The socket bytes are spliced from and to.
    fn socket(&self) -> &TcpStream;
    /// A read (splice) failed with `e`: handled (read again, or the clean
    /// end), or the failure.
    fn read_failed(&mut self, e: std::io::Error) -> std::io::Result<AfterError>;
    /// The socket's end of input: a clean end, or a truncation.
    fn read_eof(&mut self) -> std::io::Result<()>;
    /// Passes the clean end on: FIN (after close_notify on kTLS).
    fn shutdown_write(&mut self) -> std::io::Result<()>;
}

pub use super::ktls::AfterError;

impl SpliceEnd for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
    fn read_failed(&mut self, e: std::io::Error) -> std::io::Result<AfterError> {
        Err(e)
    }
    fn read_eof(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        socket2::SockRef::from(&*self).shutdown(std::net::Shutdown::Write)
    }
}

impl SpliceEnd for super::ktls::KtlsStream {
    fn socket(&self) -> &TcpStream {
        self.tcp()
    }
    fn read_failed(&mut self, e: std::io::Error) -> std::io::Result<AfterError> {
        super::ktls::KtlsStream::read_failed(self, e)
    }
    fn read_eof(&mut self) -> std::io::Result<()> {
        super::ktls::KtlsStream::read_eof(self)
    }
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        super::ktls::KtlsStream::shutdown_write(self)
    }
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
mod linux {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::task::{ready, Context, Poll};

    use rustix::io::Errno;
    use rustix::pipe::{
        fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags,
    };
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use super::super::{Flow, Pipe, PipeError, BUFFER_SIZE};
    use super::{AfterError, SpliceEnd};
    use crate::pool::{self, Pool};

    /// The capacity asked of each pipe (F_SETPIPE_SZ): at most this many
    /// bytes per direction are in flight. If the kernel refuses (the
    /// per-user pipe limit), the pipe keeps the size it has.
    pub(super) const PIPE_SIZE: usize = 256 * 1024;

    pub(super) struct KernelPipe {
        read: OwnedFd,
        write: OwnedFd,
        /// Its capacity in bytes.
        cap: usize,
    }

    thread_local! {
        /// Empty pipes kept per thread for reuse; beyond 32 they are closed.
        static POOL: Pool<KernelPipe> = const { Pool::new(32) };
    }

    #[cfg(test)]
    thread_local! {
        /// Tests: pipe creation fails as with EMFILE.
        pub(super) static NO_PIPES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn take_pipe() -> io::Result<KernelPipe> {
        #[cfg(test)]
        if NO_PIPES.with(|f| f.get()) {
            return Err(Errno::MFILE.into());
        }
        if let Some(p) = pool::take(&POOL) {
            return Ok(p);
        }
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        let _ = fcntl_setpipe_size(&write, PIPE_SIZE);
        let cap = fcntl_getpipe_size(&write)?;
        Ok(KernelPipe { read, write, cap })
    }

    /// Only an empty pipe may go back.
    fn give_back(p: KernelPipe) {
        pool::give(&POOL, p);
    }

    #[cfg(test)]
    pub(super) fn pooled() -> usize {
        POOL.with(Pool::len)
    }

    const FLAGS: SpliceFlags = SpliceFlags::NONBLOCK.union(SpliceFlags::MOVE);

    enum Moved {
        /// Bytes moved from the socket into the pipe; 0 is the end of input.
        Bytes(usize),
        /// EAGAIN with bytes already in the pipe: the pipe may be full (its
        /// slots hold socket fragments, not whole pages), so the socket's
        /// readiness is kept and the pipe drained first.
        Full,
    }

    /// Socket → pipe, at most `len` bytes.
    fn poll_into(
        cx: &mut Context<'_>,
        from: &TcpStream,
        pipe: &KernelPipe,
        len: usize,
        has_bytes: bool,
    ) -> Poll<io::Result<Moved>> {
        loop {
            ready!(from.poll_read_ready(cx))?;
            let r = from.try_io(Interest::READABLE, || {
                match splice(from, None, &pipe.write, None, len, FLAGS) {
                    Ok(n) => Ok(Moved::Bytes(n)),
                    Err(Errno::AGAIN) if has_bytes => Ok(Moved::Full),
                    Err(e) => Err(e.into()),
                }
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    /// Pipe → socket, at most `len` bytes (all the pipe holds).
    fn poll_out(
        cx: &mut Context<'_>,
        pipe: &KernelPipe,
        to: &TcpStream,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(to.poll_write_ready(cx))?;
            let r = to.try_io(Interest::WRITABLE, || {
                splice(&pipe.read, None, to, None, len, FLAGS).map_err(io::Error::from)
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                r => return Poll::Ready(r),
            }
        }
    }

    /// One direction, spliced.
    pub(super) struct Spliced {
        pipe: Option<KernelPipe>,
        /// Bytes in the pipe now.
        in_pipe: usize,
        /// The reader ended cleanly.
        eof: bool,
        /// The reader failed; reported once the pipe is empty.
        failed: Option<io::Error>,
        done: bool,
        /// Bytes written out.
        bytes: u64,
        /// Bytes taken from the reader.
        taken: u64,
    }

    enum SpliceError {
        Pipe(PipeError),
        /// No pipe could be made: carry on without splice.
        NoPipe(io::Error),
    }

    impl Spliced {
        fn new() -> Spliced {
            Spliced {
                pipe: None,
                in_pipe: 0,
                eof: false,
                failed: None,
                done: false,
                bytes: 0,
                taken: 0,
            }
        }

        fn release(&mut self) {
            if self.in_pipe == 0 {
                if let Some(p) = self.pipe.take() {
                    give_back(p);
                }
            }
        }

        fn poll<R: SpliceEnd + ?Sized, W: SpliceEnd + ?Sized>(
            &mut self,
            cx: &mut Context<'_>,
            from: &mut R,
            to: &mut W,
            observe: &mut impl FnMut(usize),
        ) -> Poll<Result<(), SpliceError>> {
            loop {
                if self.done {
                    return Poll::Ready(Ok(()));
                }
                let mut moved = false;
                // Out of the pipe first: that makes room for the reader.
                if self.in_pipe > 0 {
                    let pipe = self.pipe.as_ref().expect("bytes in flight have a pipe");
                    match poll_out(cx, pipe, to.socket(), self.in_pipe) {
                        Poll::Ready(Ok(n)) => {
                            self.in_pipe -= n;
                            self.bytes += n as u64;
                            observe(n);
                            moved = true;
                        }
                        Poll::Ready(Err(e)) => {
                            return Poll::Ready(Err(SpliceError::Pipe(PipeError::Write(e))))
                        }
                        Poll::Pending => {}
                    }
                }
                if !self.eof && self.failed.is_none() {
                    if self.pipe.is_none() {
                        match take_pipe() {
                            Ok(p) => self.pipe = Some(p),
                            Err(e) => return Poll::Ready(Err(SpliceError::NoPipe(e))),
                        }
                    }
                    let pipe = self.pipe.as_ref().expect("just taken");
                    if self.in_pipe < pipe.cap {
                        let room = pipe.cap - self.in_pipe;
                        match poll_into(cx, from.socket(), pipe, room, self.in_pipe > 0) {
                            Poll::Ready(Ok(Moved::Bytes(0))) => {
                                match from.read_eof() {
                                    Ok(()) => self.eof = true,
                                    Err(e) => self.failed = Some(e),
                                }
                                moved = true;
                            }
                            Poll::Ready(Ok(Moved::Bytes(n))) => {
                                self.in_pipe += n;
                                self.taken += n as u64;
                                moved = true;
                            }
                            Poll::Ready(Ok(Moved::Full)) => {}
                            Poll::Ready(Err(e)) => {
                                match from.read_failed(e) {
                                    Ok(AfterError::Retry) => {}
                                    Ok(AfterError::End) => self.eof = true,
                                    Err(e) => self.failed = Some(e),
                                }
                                moved = true;
                            }
                            // Nothing to read and nothing in flight: the
                            // pipe goes back to the pool.
                            Poll::Pending => self.release(),
                        }
                    }
                }
                if self.in_pipe == 0 {
                    if let Some(e) = self.failed.take() {
                        self.done = true;
                        self.release();
                        return Poll::Ready(Err(SpliceError::Pipe(PipeError::Read(e))));
                    }
                    if self.eof {
                        self.done = true;
                        self.release();
                        to.shutdown_write()
                            .map_err(|e| SpliceError::Pipe(PipeError::Write(e)))?;
                        return Poll::Ready(Ok(()));
                    }
                }
                if !moved {
                    return Poll::Pending;
                }
            }
        }
    }

    impl Drop for Spliced {
        fn drop(&mut self) {
            // A pipe still holding bytes is closed with them.
            self.release();
        }
    }

    /// One direction: spliced, or the buffered copy once no pipe could be
    /// had.
    pub(super) enum Direction {
        Spliced(Spliced),
        /// The buffered copy, and the bytes spliced before it took over.
        Copy(Pipe, u64),
    }

    impl Direction {
        pub(super) fn new() -> Direction {
            Direction::Spliced(Spliced::new())
        }

        pub(super) fn bytes(&self) -> u64 {
            match self {
                Direction::Spliced(s) => s.bytes,
                Direction::Copy(p, before) => before + p.bytes(),
            }
        }

        /// Bytes taken from the reader and not yet written out.
        #[cfg(test)]
        pub(super) fn in_flight_bytes(&self) -> u64 {
            match self {
                Direction::Spliced(s) => s.taken - s.bytes,
                Direction::Copy(..) => 0,
            }
        }

        #[cfg(test)]
        pub(super) fn holds_pipe(&self) -> bool {
            matches!(self, Direction::Spliced(Spliced { pipe: Some(_), .. }))
        }

        pub(super) fn poll<R, W>(
            &mut self,
            cx: &mut Context<'_>,
            from: &mut R,
            to: &mut W,
            mut observe: impl FnMut(usize),
        ) -> Poll<Result<(), PipeError>>
        where
            R: SpliceEnd + super::super::Source + ?Sized,
            W: SpliceEnd + ?Sized,
        {
            loop {
                match self {
                    Direction::Spliced(s) => match s.poll(cx, from, to, &mut observe) {
                        Poll::Ready(Err(SpliceError::NoPipe(e))) => {
                            tracing::debug!(error = %e, "no pipe for splice; copying through a buffer");
                            *self = Direction::Copy(Pipe::new(BUFFER_SIZE), s.bytes);
                        }
                        Poll::Ready(Err(SpliceError::Pipe(e))) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                        Poll::Pending => return Poll::Pending,
                    },
                    Direction::Copy(p, _) => return p.poll(cx, from, to, observe),
                }
            }
        }
    }

    impl<R, W> Flow<R, W> for Direction
    where
        R: SpliceEnd + super::super::Source + ?Sized,
        W: SpliceEnd + ?Sized,
    {
        fn poll_flow(
            &mut self,
            cx: &mut Context<'_>,
            reader: &mut R,
            writer: &mut W,
            observe: impl FnMut(usize),
        ) -> Poll<Result<(), PipeError>> {
            self.poll(cx, reader, writer, observe)
        }

        fn bytes(&self) -> u64 {
            Direction::bytes(self)
        }

        fn in_flight(&self) -> bool {
            match self {
                Direction::Spliced(s) => s.in_pipe > 0,
                Direction::Copy(p, _) => Flow::<R, W>::in_flight(p),
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
