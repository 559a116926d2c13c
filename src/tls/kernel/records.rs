//! The TLS control records of a kTLS socket: on the receive path the
//! kernel hands back what is not application data as an error (EIO from
//! read, EINVAL from splice), and it is read here with its record type
//! (`ktls_core::Context`): close_notify is the clean end; any other alert
//! ends the connection with its description; a TLS 1.3 NewSessionTicket
//! goes to rustls (the client's session store, so the next connection can
//! resume); a KeyUpdate, which this kernel path does not follow, ends the
//! connection with that reason and an alert, never a corrupted stream. On
//! the send path, shutting the write side sends close_notify through the
//! kernel, then FIN.

use std::io;

use super::{AfterError, KtlsStream};

#[cfg(target_os = "linux")]
pub(super) use imp::Session;

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use ktls_core::{DummyTlsSession, Peer, TlsCryptoInfoRx, TlsCryptoInfoTx, TlsSession};
    use rustls::client::ClientConnectionData;
    use rustls::kernel::KernelConnection;

    /// The session behind a kTLS socket: the client's keeps rustls's
    /// (tickets go to its session store); the server needs none.
    pub(crate) enum Session {
        Client(Box<KernelConnection<ClientConnectionData>>),
        Server(DummyTlsSession),
    }

    impl TlsSession for Session {
        fn peer(&self) -> Peer {
            match self {
                Session::Client(k) => TlsSession::peer(&**k),
                Session::Server(d) => d.peer(),
            }
        }
        fn protocol_version(&self) -> ktls_core::ProtocolVersion {
            match self {
                Session::Client(k) => TlsSession::protocol_version(&**k),
                Session::Server(d) => d.protocol_version(),
            }
        }
        fn update_tx_secret(&mut self) -> ktls_core::error::Result<TlsCryptoInfoTx> {
            match self {
                Session::Client(k) => TlsSession::update_tx_secret(&mut **k),
                Session::Server(d) => d.update_tx_secret(),
            }
        }
        fn update_rx_secret(&mut self) -> ktls_core::error::Result<TlsCryptoInfoRx> {
            match self {
                Session::Client(k) => TlsSession::update_rx_secret(&mut **k),
                Session::Server(d) => d.update_rx_secret(),
            }
        }
        fn handle_new_session_ticket(&mut self, payload: &[u8]) -> ktls_core::error::Result<()> {
            match self {
                Session::Client(k) => TlsSession::handle_new_session_ticket(&mut **k, payload),
                Session::Server(d) => d.handle_new_session_ticket(payload),
            }
        }
    }

    impl KtlsStream {
        /// A read (or splice) of the socket failed with `e`. The kernel
        /// says "a record that is not application data is next" with EIO
        /// (read) or EINVAL (splice): it is read and handled.
        pub fn read_failed(&mut self, e: io::Error) -> io::Result<AfterError> {
            let control = matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EINVAL));
            if !control {
                return Err(e);
            }
            let eio = io::Error::from_raw_os_error(libc::EIO);
            match self.ctx.handle_io_error(&self.tcp, eio) {
                Ok(()) if self.ctx.state().is_read_closed() => {
                    self.read_closed = true;
                    if self.ctx.state().is_write_closed() {
                        self.write_closed = true;
                    }
                    Ok(AfterError::End)
                }
                Ok(()) => Ok(AfterError::Retry),
                Err(e) => {
                    self.read_closed = true;
                    self.write_closed = true;
                    let what = e.to_string();
                    let why = if what.contains("key update") {
                        format!("the peer sent a TLS KeyUpdate, which kernel TLS here does not follow; connection ended ({what})")
                    } else {
                        format!("kernel TLS: {what}")
                    };
                    Err(io::Error::new(e.kind(), why))
                }
            }
        }

        /// The socket's end of input: clean only after close_notify.
        pub fn read_eof(&self) -> io::Result<()> {
            if self.read_closed {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                ))
            }
        }

        /// close_notify through the kernel, then FIN.
        pub fn shutdown_write(&mut self) -> io::Result<()> {
            if !self.write_closed {
                self.write_closed = true;
                self.ctx.shutdown(&self.tcp);
            }
            socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Write)
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl KtlsStream {
    pub fn read_failed(&mut self, e: io::Error) -> io::Result<AfterError> {
        Err(e)
    }
    pub fn read_eof(&self) -> io::Result<()> {
        Ok(())
    }
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Write)
    }
}
