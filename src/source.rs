//! What the relay asks of a stream it reads from: `AsyncRead`, and, for a
//! stream that holds its bytes itself (the upstream TLS engine's decrypted
//! records, `tls::engine`), a way to write them straight to the other side
//! instead of copying them through the relay's buffer ([`Source`]). And
//! what the splice(2) relay asks of a socket, plain or on kernel TLS
//! (`tls::kernel`): [`SpliceEnd`]. It sits below both `tls` and `relay` so
//! that neither imports the other for it.

use std::io;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A stream the relay reads from. Most read into the relay's buffer
/// (`AsyncRead`); a stream that holds the bytes itself can instead write
/// them to the other side, saving that copy.
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

impl Source for TcpStream {}
impl Source for tokio::io::DuplexStream {}
impl<IO: AsyncRead + AsyncWrite + Unpin> Source for tokio_rustls::client::TlsStream<IO> {}
impl<IO: AsyncRead + AsyncWrite + Unpin> Source for tokio_rustls::server::TlsStream<IO> {}

/// One end of a spliced relay: a plain TCP socket, or one on kernel TLS.
pub trait SpliceEnd: AsyncRead + AsyncWrite + Unpin {
    /// The socket bytes are spliced from and to.
    fn socket(&self) -> &TcpStream;
    /// A read (splice) failed with `e`: handled (read again, or the clean
    /// end), or the failure.
    fn read_failed(&mut self, e: io::Error) -> io::Result<AfterError>;
    /// The socket's end of input: a clean end, or a truncation.
    fn read_eof(&mut self) -> io::Result<()>;
    /// Passes the clean end on: FIN (after close_notify on kTLS).
    fn shutdown_write(&mut self) -> io::Result<()>;
}

/// What to do after a failed read of a kTLS socket.
pub enum AfterError {
    /// A control record was handled (a ticket): read again.
    Retry,
    /// The peer's close_notify: the clean end of input.
    End,
}

impl SpliceEnd for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
    fn read_failed(&mut self, e: io::Error) -> io::Result<AfterError> {
        Err(e)
    }
    fn read_eof(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        socket2::SockRef::from(&*self).shutdown(std::net::Shutdown::Write)
    }
}
