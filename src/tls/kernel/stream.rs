//! A TLS leg on kTLS: the socket with the record keys rustls gave up
//! installed in the kernel (`TLS_TX`, `TLS_RX`), read and written as a
//! plain async stream (the relay splices it, as a `source::SpliceEnd`).
//! What is not application data is handled in [`super::records`]; a TCP
//! end without close_notify is a truncation (`UnexpectedEof`), as on the
//! userspace engine.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustls::ProtocolVersion;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{AfterError, Switched};
use crate::source::{Source, SpliceEnd};

/// A TLS leg on kTLS: the socket, the session left of rustls (for tickets
/// and the version), and how far each direction is closed.
pub struct KtlsStream {
    pub(super) tcp: TcpStream,
    #[cfg(target_os = "linux")]
    pub(super) ctx: ktls_core::Context<super::records::Session>,
    version: ProtocolVersion,
    suite: rustls::SupportedCipherSuite,
    /// The peer's close_notify arrived.
    pub(super) read_closed: bool,
    /// Our close_notify went out (or the connection was aborted).
    pub(super) write_closed: bool,
}

impl KtlsStream {
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    pub fn cipher_suite(&self) -> rustls::SupportedCipherSuite {
        self.suite
    }

    pub(crate) fn is_read_closed(&self) -> bool {
        self.read_closed
    }
}

/// The relay reads a kTLS leg as it reads a socket.
impl Source for KtlsStream {}

/// A kTLS leg is one end of a spliced relay: the kernel decrypts what is
/// spliced out and encrypts what is spliced in.
impl SpliceEnd for KtlsStream {
    fn socket(&self) -> &TcpStream {
        self.tcp()
    }
    fn read_failed(&mut self, e: io::Error) -> io::Result<AfterError> {
        KtlsStream::read_failed(self, e)
    }
    fn read_eof(&mut self) -> io::Result<()> {
        KtlsStream::read_eof(self)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        KtlsStream::shutdown_write(self)
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use crate::tls::kernel::records::Session;
    use ktls_core::{
        ConnectionTrafficSecrets, TlsCryptoInfoRx, TlsCryptoInfoTx, DUMMY_TLS_13_SESSION_SERVER,
    };

    fn install(
        tcp: &TcpStream,
        version: ProtocolVersion,
        secrets: rustls::ExtractedSecrets,
    ) -> io::Result<()> {
        let v = ktls_core::ProtocolVersion::from(version);
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let tx = TlsCryptoInfoTx::new(v, ConnectionTrafficSecrets::try_from(tx)?, tx_seq)?;
        let rx = TlsCryptoInfoRx::new(v, ConnectionTrafficSecrets::try_from(rx)?, rx_seq)?;
        tx.set(tcp)?;
        rx.set(tcp)?;
        Ok(())
    }

    fn names(
        c: &rustls::CommonState,
    ) -> io::Result<(ProtocolVersion, rustls::SupportedCipherSuite)> {
        match (c.protocol_version(), c.negotiated_cipher_suite()) {
            (Some(v), Some(s)) => Ok((v, s)),
            _ => Err(io::Error::other("no negotiated TLS session")),
        }
    }

    /// The upstream leg's keys into the kernel; rustls keeps the session
    /// (tickets that arrive later go to its store).
    pub(in crate::tls::kernel) fn client(
        tcp: TcpStream,
        conn: rustls::client::UnbufferedClientConnection,
    ) -> Switched {
        let (version, suite) = names(&conn)?;
        let (secrets, kernel) = conn
            .dangerous_into_kernel_connection()
            .map_err(io::Error::other)?;
        install(&tcp, version, secrets)?;
        Ok(KtlsStream::new(
            tcp,
            Session::Client(Box::new(kernel)),
            version,
            suite,
        ))
    }

    /// The listen leg's keys into the kernel.
    pub(in crate::tls::kernel) fn server(
        tcp: TcpStream,
        conn: rustls::ServerConnection,
    ) -> Switched {
        let (version, suite) = names(&conn)?;
        let secrets = conn.dangerous_extract_secrets().map_err(io::Error::other)?;
        install(&tcp, version, secrets)?;
        Ok(KtlsStream::new(
            tcp,
            Session::Server(DUMMY_TLS_13_SESSION_SERVER),
            version,
            suite,
        ))
    }

    impl KtlsStream {
        fn new(
            tcp: TcpStream,
            session: Session,
            version: ProtocolVersion,
            suite: rustls::SupportedCipherSuite,
        ) -> KtlsStream {
            KtlsStream {
                tcp,
                ctx: ktls_core::Context::new(session, None),
                version,
                suite,
                read_closed: false,
                write_closed: false,
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;
    pub(in crate::tls::kernel) fn client(
        _: TcpStream,
        _: rustls::client::UnbufferedClientConnection,
    ) -> Switched {
        Err(io::Error::other("kernel TLS is Linux only"))
    }
    pub(in crate::tls::kernel) fn server(_: TcpStream, _: rustls::ServerConnection) -> Switched {
        Err(io::Error::other("kernel TLS is Linux only"))
    }
}

pub(super) use imp::{client, server};

impl AsyncRead for KtlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.is_read_closed() {
                return Poll::Ready(Ok(()));
            }
            ready!(this.tcp.poll_read_ready(cx))?;
            match this.tcp.try_read(buf.initialize_unfilled()) {
                Ok(0) => return Poll::Ready(this.read_eof()),
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => match this.read_failed(e) {
                    Ok(AfterError::Retry) => continue,
                    Ok(AfterError::End) => return Poll::Ready(Ok(())),
                    Err(e) => return Poll::Ready(Err(e)),
                },
            }
        }
    }
}

impl AsyncWrite for KtlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the TLS connection was closed",
            )));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().shutdown_write())
    }
}
