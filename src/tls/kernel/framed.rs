//! The listen leg's socket while rustls handshakes on it, read one TLS
//! record at a time so that the handshake ends with nothing of the
//! client's past its Finished inside rustls: the kernel can then take
//! over at a record boundary without losing a byte.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The listen leg's socket while rustls handshakes on it: with `exact`
/// set, each read returns at most the rest of the current TLS record, so
/// when the handshake is done rustls holds no byte past the client's
/// Finished and the kernel can take over at a record boundary. Without
/// `exact` (kernel_tls = "off"), reads pass straight through.
pub struct Framed {
    tcp: TcpStream,
    exact: bool,
    /// Bytes of the current record's header read so far, and its header.
    head: [u8; 5],
    head_len: usize,
    /// Bytes of the current record's body still to come.
    body_left: usize,
}

impl Framed {
    pub fn new(tcp: TcpStream, exact: bool) -> Framed {
        Framed {
            tcp,
            exact,
            head: [0; 5],
            head_len: 0,
            body_left: 0,
        }
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn into_inner(self) -> TcpStream {
        self.tcp
    }

    /// Reads so far ended on a record boundary (always false without
    /// `exact`: nothing is known then).
    pub fn at_boundary(&self) -> bool {
        self.exact && self.head_len == 0 && self.body_left == 0
    }

    /// Once the leg stays in userspace: reads pass straight through.
    pub fn pass_through(&mut self) {
        self.exact = false;
    }
}

impl AsyncRead for Framed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.exact {
            return Pin::new(&mut this.tcp).poll_read(cx, buf);
        }
        // At most the rest of the header, or the rest of the body.
        let want = if this.body_left > 0 {
            this.body_left
        } else {
            5 - this.head_len
        };
        let n = want.min(buf.remaining());
        let mut limited = ReadBuf::new(&mut buf.initialize_unfilled()[..n]);
        ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut limited))?;
        let got = limited.filled().len();
        if got == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.body_left > 0 {
            this.body_left -= got;
        } else {
            let filled = limited.filled();
            this.head[this.head_len..this.head_len + got].copy_from_slice(filled);
            this.head_len += got;
            if this.head_len == 5 {
                this.body_left = u16::from_be_bytes([this.head[3], this.head[4]]) as usize;
                this.head_len = 0;
            }
        }
        buf.advance(got);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Framed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn framed_reads_stop_at_every_record_boundary_whatever_the_reader_asks() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut w = TcpStream::connect(addr).await.unwrap();
        let (r, _) = l.accept().await.unwrap();
        // Two records (3 and 4 bytes of body), sent in one write.
        let wire = [22, 3, 3, 0, 3, 1, 2, 3, 23, 3, 3, 0, 4, 9, 9, 9, 9];
        w.write_all(&wire).await.unwrap();
        let mut f = Framed::new(r, true);
        let mut got = Vec::new();
        let mut boundaries = Vec::new();
        while got.len() < wire.len() {
            let mut b = [0u8; 64];
            let n = f.read(&mut b).await.unwrap();
            got.extend_from_slice(&b[..n]);
            if f.at_boundary() {
                boundaries.push(got.len());
            }
        }
        assert_eq!(got, wire);
        assert_eq!(boundaries, vec![8, 17]);
    }
}
