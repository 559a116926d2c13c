//! The byte streams a connection is made of: plain TCP, or TCP under TLS
//! on either side. One enum so the relay and the connection code see a
//! single type.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::relay::{AfterError, Source, SpliceEnd, SpliceError};
use crate::tls::engine::TlsClient;
use crate::tls::kernel::{KtlsStream, ServerTls};

/// The engine a leg runs on: the `engine` label of `route_info` and of
/// the "connection closed" line. Ordered, so that a connection's engine is
/// its legs' greatest: kTLS if either leg runs there, plain only when
/// neither leg is TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Engine {
    Plain,
    Userspace,
    Ktls,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

pub enum Stream {
    Plain(TcpStream),
    /// We are the TLS client (the upstream leg), on rustls's unbuffered
    /// API (`tls::engine`).
    Unbuffered(Box<TlsClient<TcpStream>>),
    /// We are the TLS server (the listen leg).
    Server(Box<ServerTls>),
    /// Either TLS leg after the switch to kernel TLS (`tls::kernel`).
    Ktls(Box<KtlsStream>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Unbuffered(s) => s.get_ref(),
            Stream::Server(s) => s.get_ref().0.get_ref(),
            Stream::Ktls(s) => s.tcp(),
        }
    }

    /// The TLS session, if this stream is TLS in userspace.
    pub fn tls(&self) -> Option<&rustls::CommonState> {
        match self {
            Stream::Plain(_) | Stream::Ktls(_) => None,
            Stream::Unbuffered(s) => Some(s.session()),
            Stream::Server(s) => Some(s.get_ref().1),
        }
    }

    /// The TLS version and cipher suite, on either engine.
    pub fn tls_names(&self) -> Option<(&'static str, &'static str)> {
        use crate::tls::{suite_name, version_name};
        match self {
            Stream::Ktls(k) => Some((
                version_name(Some(k.protocol_version())),
                suite_name(Some(k.cipher_suite())),
            )),
            s => s.tls().map(|t| {
                (
                    version_name(t.protocol_version()),
                    suite_name(t.negotiated_cipher_suite()),
                )
            }),
        }
    }

    /// Plain TCP or kernel TLS: the relay can splice this stream.
    pub fn spliceable(&self) -> bool {
        matches!(self, Stream::Plain(_) | Stream::Ktls(_))
    }

    /// The engine this leg runs on.
    pub fn engine(&self) -> Engine {
        match self {
            Stream::Plain(_) => Engine::Plain,
            Stream::Ktls(_) => Engine::Ktls,
            Stream::Unbuffered(_) | Stream::Server(_) => Engine::Userspace,
        }
    }

    /// Ends the connection with a TCP reset and no TLS close_notify, so the
    /// other end sees an error, not a clean end.
    pub fn abort(self) {
        let _ = self.tcp().set_zero_linger();
        drop(self);
    }

    /// [`Stream::abort`], once the bytes already written have reached the
    /// peer, or `within` has passed: a reset discards the send queue, and
    /// the peer must get every byte before it learns of the failure.
    ///
    /// `shut`: this socket's writing side was already shut down (its FIN
    /// or close_notify sent). The kernel then no longer says how much is
    /// unsent, so the socket lingers as nginx's lingering close does: what
    /// the peer still sends is read and dropped until it closes, or
    /// `within` has passed.
    pub async fn reset(self, within: Duration, shut: bool) {
        let deadline = tokio::time::Instant::now() + within;
        if shut {
            linger(self.tcp(), deadline).await;
        } else {
            while unsent(self.tcp()) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.abort();
    }

    /// The kernel still holds bytes of this connection: received and not
    /// read by us, or written and not yet sent to the peer. Closing such a
    /// connection with a FIN would not be a clean end.
    pub fn kernel_holds_bytes(&self) -> bool {
        unread(self.tcp()) || unsent(self.tcp())
    }
}

/// Reads and drops what `tcp` receives until the peer closes or fails, or
/// `deadline`.
async fn linger(tcp: &TcpStream, deadline: tokio::time::Instant) {
    let mut buf = [0u8; 2048];
    loop {
        match tokio::time::timeout_at(deadline, tcp.readable()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        match tcp.try_read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Bytes written to `tcp` that the kernel has not sent yet. Asked through
/// poll(2) with `TCP_NOTSENT_LOWAT` at 1: the socket is then writable only
/// while nothing is left unsent. A socket that failed or hung up holds
/// nothing it can still send.
#[cfg(target_os = "linux")]
fn unsent(tcp: &TcpStream) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    if socket2::SockRef::from(tcp)
        .set_tcp_notsent_lowat(1)
        .is_err()
    {
        return false;
    }
    let mut fds = [PollFd::new(tcp, PollFlags::OUT)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(_) => !fds[0]
            .revents()
            .intersects(PollFlags::OUT | PollFlags::ERR | PollFlags::HUP),
        Err(_) => false,
    }
}

#[cfg(not(target_os = "linux"))]
fn unsent(_: &TcpStream) -> bool {
    false
}

/// Bytes received on `tcp` and not read yet.
#[cfg(target_os = "linux")]
fn unread(tcp: &TcpStream) -> bool {
    rustix::io::ioctl_fionread(tcp).is_ok_and(|n| n > 0)
}

#[cfg(not(target_os = "linux"))]
fn unread(_: &TcpStream) -> bool {
    false
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
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
            Stream::Ktls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

/// Only `Plain` and `Ktls` streams are spliced ([`Stream::spliceable`]);
/// the others read and fail as a plain socket would, never reached.
impl SpliceEnd for Stream {
    fn socket(&self) -> &TcpStream {
        self.tcp()
    }
    fn read_failed(&mut self, e: io::Error) -> io::Result<AfterError> {
        match self {
            Stream::Ktls(k) => SpliceEnd::read_failed(&mut **k, e),
            _ => Err(e),
        }
    }
    fn read_eof(&mut self) -> io::Result<()> {
        match self {
            Stream::Ktls(k) => SpliceEnd::read_eof(&mut **k),
            _ => Ok(()),
        }
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Ktls(k) => SpliceEnd::shutdown_write(&mut **k),
            s => socket2::SockRef::from(s.tcp()).shutdown(std::net::Shutdown::Write),
        }
    }
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
            Stream::Unbuffered(s) => s.is_write_vectored(),
            Stream::Server(s) => s.is_write_vectored(),
            Stream::Ktls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_shutdown(cx))
    }
}
