//! splice(2) on Linux: a direction moves socket → pipe → socket, its bytes
//! never copied into userspace; each direction borrows a pipe from a
//! per-thread pool only while bytes are in flight.

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
use crate::pool::{self, Pool};
use crate::source::{AfterError, SpliceEnd};

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
            // Out of the pipe first: that makes room for the reader.
            let mut moved = self.drain(cx, to, observe)?;
            if !self.eof && self.failed.is_none() {
                moved |= self.fill(cx, from)?;
            }
            if let Some(end) = self.finish(to) {
                return Poll::Ready(end);
            }
            if !moved {
                return Poll::Pending;
            }
        }
    }

    /// Moves what the pipe holds to the writer; whether bytes moved.
    fn drain<W: SpliceEnd + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        to: &mut W,
        observe: &mut impl FnMut(usize),
    ) -> Result<bool, SpliceError> {
        if self.in_pipe == 0 {
            return Ok(false);
        }
        let pipe = self.pipe.as_ref().expect("bytes in flight have a pipe");
        match poll_out(cx, pipe, to.socket(), self.in_pipe) {
            Poll::Ready(Ok(n)) => {
                self.in_pipe -= n;
                self.bytes += n as u64;
                observe(n);
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(SpliceError::Pipe(PipeError::Write(e))),
            Poll::Pending => Ok(false),
        }
    }

    /// Moves what the reader has into the pipe, as far as it has room;
    /// whether anything happened (bytes, the reader's end, an error).
    fn fill<R: SpliceEnd + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
    ) -> Result<bool, SpliceError> {
        if self.pipe.is_none() {
            self.pipe = Some(take_pipe().map_err(SpliceError::NoPipe)?);
        }
        let pipe = self.pipe.as_ref().expect("just taken");
        if self.in_pipe >= pipe.cap {
            return Ok(false);
        }
        let room = pipe.cap - self.in_pipe;
        Ok(
            match poll_into(cx, from.socket(), pipe, room, self.in_pipe > 0) {
                Poll::Ready(Ok(Moved::Bytes(0))) => {
                    match from.read_eof() {
                        Ok(()) => self.eof = true,
                        Err(e) => self.failed = Some(e),
                    }
                    true
                }
                Poll::Ready(Ok(Moved::Bytes(n))) => {
                    self.in_pipe += n;
                    self.taken += n as u64;
                    true
                }
                Poll::Ready(Ok(Moved::Full)) => false,
                Poll::Ready(Err(e)) => {
                    match from.read_failed(e) {
                        Ok(AfterError::Retry) => {}
                        Ok(AfterError::End) => self.eof = true,
                        Err(e) => self.failed = Some(e),
                    }
                    true
                }
                // Nothing to read and nothing in flight: the pipe goes
                // back to the pool.
                Poll::Pending => {
                    self.release();
                    false
                }
            },
        )
    }

    /// Once the pipe is empty, the direction ends with the reader: its
    /// failure, or its end passed on to the writer (FIN or close_notify).
    fn finish<W: SpliceEnd + ?Sized>(&mut self, to: &mut W) -> Option<Result<(), SpliceError>> {
        if self.in_pipe > 0 {
            return None;
        }
        if let Some(e) = self.failed.take() {
            self.done = true;
            self.release();
            return Some(Err(SpliceError::Pipe(PipeError::Read(e))));
        }
        if !self.eof {
            return None;
        }
        self.done = true;
        self.release();
        Some(
            to.shutdown_write()
                .map_err(|e| SpliceError::Pipe(PipeError::Write(e))),
        )
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
