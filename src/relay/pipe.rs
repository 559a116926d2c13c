//! One direction of the relay: reader → fixed buffer → writer.
//!
//! The buffer is held only while bytes are in flight: it is taken from a
//! per-thread pool when the direction is polled to read, and given back
//! when the reader has nothing more for now and everything was written. An
//! idle connection (GMS keeps many open for days) holds no relay buffer.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncWrite, ReadBuf};

use super::{Flow, Source, SpliceError};
use crate::pool::{self, Pool};

pub(crate) enum PipeError {
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

thread_local! {
    /// Buffers kept per thread for reuse; beyond 64 they are freed.
    static POOL: Pool<Box<[u8]>> = const { Pool::new(64) };
}

fn take_buffer(size: usize) -> Box<[u8]> {
    pool::take(&POOL)
        .filter(|b| b.len() == size)
        .unwrap_or_else(|| vec![0; size].into_boxed_slice())
}

fn give_back(buf: Box<[u8]>) {
    pool::give(&POOL, buf);
}

pub(crate) struct Pipe {
    size: usize,
    buf: Option<Box<[u8]>>,
    pos: usize,
    cap: usize,
    need_flush: bool,
    state: State,
    bytes: u64,
}

impl Pipe {
    pub(crate) fn new(size: usize) -> Pipe {
        Pipe {
            size,
            buf: None,
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

    /// The reader has nothing more for now, and nothing is in flight: the
    /// buffer goes back to the pool, and what was written is pushed out
    /// (tokio#4001). `Pending` unless the flush fails.
    fn idle<W>(&mut self, cx: &mut Context<'_>, writer: &mut W) -> Poll<Result<(), PipeError>>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        if let Some(b) = self.buf.take() {
            give_back(b);
        }
        if self.need_flush {
            ready!(Pin::new(&mut *writer).poll_flush(cx)).map_err(PipeError::Write)?;
            self.need_flush = false;
        }
        Poll::Pending
    }

    /// Drives this direction as far as it can go without blocking.
    /// `Ready(Ok)` once the writer has been shut down after a clean end.
    // Long: a state machine's single poll loop (read, write, flush, shut down), as tokio's copy.rs has it: clearer as one function than split, since the states share the buffer borrows.
    pub(super) fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        mut observe: impl FnMut(usize),
    ) -> Poll<Result<(), PipeError>>
    where
        R: Source + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            match &mut self.state {
                State::Running => {
                    if self.pos == self.cap {
                        // A reader that writes its bytes itself.
                        if let Some(p) = reader.poll_splice(cx, &mut *writer) {
                            match p {
                                Poll::Pending => return self.idle(cx, writer),
                                Poll::Ready(Ok(0)) => self.state = State::ShuttingDown,
                                Poll::Ready(Ok(n)) => {
                                    self.bytes += n as u64;
                                    self.need_flush = true;
                                    observe(n);
                                }
                                Poll::Ready(Err(SpliceError::Read(e))) => {
                                    self.state = State::Failing(Some(e));
                                }
                                Poll::Ready(Err(SpliceError::Write(e))) => {
                                    return Poll::Ready(Err(PipeError::Write(e)));
                                }
                            }
                            continue;
                        }
                        let size = self.size;
                        let buf = self.buf.get_or_insert_with(|| take_buffer(size));
                        let mut rb = ReadBuf::new(buf);
                        match Pin::new(&mut *reader).poll_read(cx, &mut rb) {
                            Poll::Pending => return self.idle(cx, writer),
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
                        let buf = self.buf.as_deref().expect("bytes in flight have a buffer");
                        let n =
                            ready!(Pin::new(&mut *writer).poll_write(cx, &buf[self.pos..self.cap]))
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

impl<R, W> Flow<R, W> for Pipe
where
    R: Source + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
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
        self.bytes
    }

    fn in_flight(&self) -> bool {
        self.pos < self.cap
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            give_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_idle_direction_holds_no_buffer_and_a_busy_one_takes_one_back_from_the_pool() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (mut c, _d) = tokio::io::duplex(1 << 20);
        let mut pipe = Pipe::new(16 * 1024);
        let waker = futures_noop();
        let mut cx = Context::from_waker(&waker);
        assert!(pipe.poll(&mut cx, &mut b, &mut c, |_| {}).is_pending());
        assert!(pipe.buf.is_none(), "nothing to read: no buffer held");
        tokio::io::AsyncWriteExt::write_all(&mut a, b"data")
            .await
            .unwrap();
        assert!(pipe.poll(&mut cx, &mut b, &mut c, |_| {}).is_pending());
        assert_eq!(pipe.bytes(), 4);
        assert!(
            pipe.buf.is_none(),
            "written and idle again: the buffer went back"
        );
        assert!(
            POOL.with(|p| p.len() > 0),
            "and is in the pool for the next burst"
        );
    }

    fn futures_noop() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
