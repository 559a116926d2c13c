//! One direction of the relay: reader → fixed buffer → writer.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(super) enum PipeError {
    Read(io::Error),
    Write(io::Error),
}

enum State {
    /// Reading and writing.
    Running,
    /// The reader ended cleanly: shut the writer down (close_notify / FIN).
    ShuttingDown,
    /// The reader failed: flush what was already written, then report it.
    Failing(Option<io::Error>),
    Done,
}

pub(super) struct Pipe {
    buf: Box<[u8]>,
    pos: usize,
    cap: usize,
    need_flush: bool,
    state: State,
    bytes: u64,
}

impl Pipe {
    pub(super) fn new(size: usize) -> Pipe {
        Pipe {
            buf: vec![0; size].into_boxed_slice(),
            pos: 0,
            cap: 0,
            need_flush: false,
            state: State::Running,
            bytes: 0,
        }
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Drives this direction as far as it can go without blocking.
    /// `Ready(Ok)` once the writer has been shut down after a clean end.
    pub(super) fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        mut observe: impl FnMut(usize),
    ) -> Poll<Result<(), PipeError>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            match &mut self.state {
                State::Running => {
                    if self.pos == self.cap {
                        let mut rb = ReadBuf::new(&mut self.buf);
                        match Pin::new(&mut *reader).poll_read(cx, &mut rb) {
                            Poll::Pending => {
                                // The reader has nothing more for now: push
                                // out what was written (tokio#4001).
                                if self.need_flush {
                                    ready!(Pin::new(&mut *writer).poll_flush(cx))
                                        .map_err(PipeError::Write)?;
                                    self.need_flush = false;
                                }
                                return Poll::Pending;
                            }
                            Poll::Ready(Err(e)) => {
                                self.state = State::Failing(Some(e));
                                continue;
                            }
                            Poll::Ready(Ok(())) => {
                                let n = rb.filled().len();
                                if n == 0 {
                                    self.state = State::ShuttingDown;
                                    continue;
                                }
                                self.pos = 0;
                                self.cap = n;
                            }
                        }
                    }
                    while self.pos < self.cap {
                        let n =
                            ready!(Pin::new(&mut *writer)
                                .poll_write(cx, &self.buf[self.pos..self.cap]))
                            .map_err(PipeError::Write)?;
                        if n == 0 {
                            return Poll::Ready(Err(PipeError::Write(
                                io::ErrorKind::WriteZero.into(),
                            )));
                        }
                        self.pos += n;
                        self.bytes += n as u64;
                        self.need_flush = true;
                        observe(n);
                    }
                    self.pos = 0;
                    self.cap = 0;
                }
                State::ShuttingDown => {
                    ready!(Pin::new(&mut *writer).poll_shutdown(cx)).map_err(PipeError::Write)?;
                    self.state = State::Done;
                }
                State::Failing(e) => {
                    // Everything read before the failure was written; make
                    // sure it also left, whatever happens after.
                    if self.need_flush {
                        let _ = ready!(Pin::new(&mut *writer).poll_flush(cx));
                        self.need_flush = false;
                    }
                    let e = e.take().unwrap_or_else(|| io::ErrorKind::Other.into());
                    self.state = State::Done;
                    return Poll::Ready(Err(PipeError::Read(e)));
                }
                State::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}
