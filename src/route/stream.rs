//! The byte streams a connection is made of: plain TCP, or TCP under TLS
//! on either side. One enum so the relay and the connection code see a
//! single type.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::relay::tls::TlsClient;
use crate::relay::{Source, SpliceError};

pub enum Stream {
    Plain(TcpStream),
    /// We are the TLS client (the upstream leg).
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// We are the TLS client, on rustls's unbuffered API (the default
    /// upstream engine; `Client` is the tokio-rustls baseline).
    Unbuffered(Box<TlsClient<TcpStream>>),
    /// We are the TLS server (the listen leg).
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Client(s) => s.get_ref().0,
            Stream::Unbuffered(s) => s.get_ref(),
            Stream::Server(s) => s.get_ref().0,
        }
    }

    /// The TLS session, if this stream is TLS.
    pub fn tls(&self) -> Option<&rustls::CommonState> {
        match self {
            Stream::Plain(_) => None,
            Stream::Client(s) => Some(s.get_ref().1),
            Stream::Unbuffered(s) => Some(s.session()),
            Stream::Server(s) => Some(s.get_ref().1),
        }
    }

    /// Ends the connection with a TCP reset and no TLS close_notify, so the
    /// other end sees an error, not a clean end.
    pub fn abort(self) {
        let _ = self.tcp().set_zero_linger();
        drop(self);
    }
}

/// Resets a bare TCP socket (see [`Stream::abort`]).
pub fn abort_tcp(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Client($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            Stream::Unbuffered($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            Stream::Server($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl Source for Stream {
    fn poll_splice<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut W,
    ) -> Option<Poll<Result<usize, SpliceError>>> {
        match self {
            Stream::Unbuffered(s) => s.poll_splice(cx, writer),
            _ => None,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Client(s) => s.is_write_vectored(),
            Stream::Unbuffered(s) => s.is_write_vectored(),
            Stream::Server(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_shutdown(cx))
    }
}
