//! Where decrypted plaintext goes first: nowhere (a write or the handshake
//! is running), the reader's buffer (`AsyncRead`), or another stream (the
//! relay's splice). What the sink does not take waits in the stash.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncWrite, ReadBuf};

pub(super) trait Sink {
    /// Takes what it can of `data` now; returns how much.
    fn put(&mut self, cx: &mut Context<'_>, data: &[u8]) -> usize;
    /// Takes nothing more for now.
    fn full(&self) -> bool;
    /// Records are gathered in the stash and handed over together, rather
    /// than one `put` each (a writer: one write per batch, not per record).
    fn gathers(&self) -> bool {
        false
    }
    /// What it came to: the bytes taken; or the writer's failure; or, with
    /// nothing taken, `Pending` while the writer is not ready (it wakes the
    /// task).
    fn outcome(&mut self) -> Poll<io::Result<usize>>;
}

/// Everything to the stash.
pub(super) struct NoSink;

impl Sink for NoSink {
    fn put(&mut self, _: &mut Context<'_>, _: &[u8]) -> usize {
        0
    }
    fn full(&self) -> bool {
        true
    }
    fn outcome(&mut self) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(0))
    }
}

/// A reader's buffer (`AsyncRead`): one copy out of rustls's record.
pub(super) struct BufSink<'a, 'b> {
    buf: &'a mut ReadBuf<'b>,
    taken: usize,
}

impl<'a, 'b> BufSink<'a, 'b> {
    pub(super) fn new(buf: &'a mut ReadBuf<'b>) -> Self {
        BufSink { buf, taken: 0 }
    }
}

impl Sink for BufSink<'_, '_> {
    fn put(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        let n = data.len().min(self.buf.remaining());
        self.buf.put_slice(&data[..n]);
        self.taken += n;
        n
    }
    fn full(&self) -> bool {
        self.buf.remaining() == 0
    }
    fn outcome(&mut self) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.taken))
    }
}

/// Another stream (the relay's splice): the records decrypted from one
/// read gather in the stash and are written to it together.
pub(super) struct WriterSink<'a, W: ?Sized> {
    w: &'a mut W,
    taken: usize,
    blocked: bool,
    error: Option<io::Error>,
}

impl<'a, W: ?Sized> WriterSink<'a, W> {
    pub(super) fn new(w: &'a mut W) -> Self {
        WriterSink {
            w,
            taken: 0,
            blocked: false,
            error: None,
        }
    }
}

impl<W: AsyncWrite + Unpin + ?Sized> Sink for WriterSink<'_, W> {
    fn put(&mut self, cx: &mut Context<'_>, data: &[u8]) -> usize {
        let mut off = 0;
        while off < data.len() && !self.full() {
            match Pin::new(&mut *self.w).poll_write(cx, &data[off..]) {
                Poll::Pending => self.blocked = true,
                Poll::Ready(Ok(0)) => self.error = Some(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    off += n;
                    self.taken += n;
                }
                Poll::Ready(Err(e)) => self.error = Some(e),
            }
        }
        off
    }
    fn full(&self) -> bool {
        self.blocked || self.error.is_some()
    }
    fn gathers(&self) -> bool {
        true
    }
    fn outcome(&mut self) -> Poll<io::Result<usize>> {
        match (self.error.take(), self.taken) {
            (Some(e), _) => Poll::Ready(Err(e)),
            (None, 0) if self.blocked => Poll::Pending,
            (None, n) => Poll::Ready(Ok(n)),
        }
    }
}
