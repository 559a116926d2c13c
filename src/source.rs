//! What the relay asks of a stream it reads from: `AsyncRead`, and, for a
//! stream that holds its bytes itself (the upstream TLS engine's decrypted
//! records, `tls::engine`), a way to write them straight to the other side
//! instead of copying them through the relay's buffer. It sits below both
//! `tls` and `relay` so that neither imports the other for it.

use std::io;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

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

impl Source for tokio::net::TcpStream {}
impl Source for tokio::io::DuplexStream {}
impl<IO: AsyncRead + AsyncWrite + Unpin> Source for tokio_rustls::client::TlsStream<IO> {}
impl<IO: AsyncRead + AsyncWrite + Unpin> Source for tokio_rustls::server::TlsStream<IO> {}
