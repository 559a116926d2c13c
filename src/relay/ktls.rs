//! Kernel TLS (kTLS, issue 18): after rustls's handshake, a TLS leg hands
//! its record keys to the socket (`TCP_ULP "tls"`, `TLS_TX`, `TLS_RX`) and
//! the kernel encrypts and decrypts; the relay then moves bytes between the
//! plain socket and the kTLS socket with splice(2), never touching them.
//!
//! The socket options and the TLS control records (sendmsg/recvmsg with
//! their record type) are `ktls-core`'s, so the unsafe code stays in that
//! crate; the keys come from rustls (`dangerous_into_kernel_connection`).
//!
//! A leg switches only when it can do so without losing a byte: the kernel
//! offers the `tls` ULP and the negotiated suite (probed once, see
//! [`kernel`]); TLS 1.3 (see [`Fallback::Tls12`]); and rustls holds nothing
//! in flight (no record read past the handshake, none waiting to be sent).
//! Otherwise the leg stays on the userspace engine, and says why.
//!
//! On the receive path the kernel hands back records that are not
//! application data as an error (EIO from read, EINVAL from splice); they
//! are then read with their record type (`ktls_core::Context`):
//! close_notify is the clean end; any other alert ends the connection with
//! its description; a TLS 1.3 NewSessionTicket goes to rustls (the
//! client's session store, so the next connection can resume); a KeyUpdate
//! (which this kernel path does not follow) ends the connection with that
//! reason and an alert, never a corrupted stream. A TCP end without
//! close_notify is a truncation (`UnexpectedEof`), as on the userspace
//! engine. Shutting the write side sends close_notify through the kernel,
//! then FIN; reading goes on (half-close).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustls::{CipherSuite, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::engine::TlsClient;

/// Why a TLS leg runs on the userspace engine rather than kTLS. Its label
/// is the `reason` of `tls_sidecar_ktls_fallbacks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// The kernel has no `tls` ULP (module not loaded, or not built).
    NoUlp,
    /// The kernel lacks the negotiated cipher suite.
    UnsupportedSuite,
    /// TLS 1.2: the kTLS control-record path answers a TLS 1.2
    /// close_notify at once (RFC 5246), which would end the other
    /// direction of a half-closed connection early; TLS 1.2 stays on
    /// rustls, which carries half-close.
    Tls12,
    /// rustls already holds records past the handshake (read, or to send).
    Buffered,
    /// The other TLS leg of the connection stays in userspace.
    OtherLeg,
    /// The kernel refused the `tls` ULP on this socket (it is no longer
    /// established: the peer already closed).
    UlpRefused,
    /// Not Linux.
    NotLinux,
}

impl Fallback {
    pub fn label(self) -> &'static str {
        match self {
            Fallback::NoUlp => "no_ulp",
            Fallback::UnsupportedSuite => "unsupported_suite",
            Fallback::Tls12 => "tls12",
            Fallback::Buffered => "buffered_records",
            Fallback::OtherLeg => "other_leg",
            Fallback::UlpRefused => "ulp_refused",
            Fallback::NotLinux => "not_linux",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Fallback::NoUlp => "the kernel offers no \"tls\" ULP (modprobe tls)",
            Fallback::UnsupportedSuite => "the kernel lacks the negotiated cipher suite",
            Fallback::Tls12 => {
                "TLS 1.2 stays in userspace (kTLS would answer the peer's close_notify at once and cut half-close)"
            }
            Fallback::Buffered => "TLS records were already buffered in userspace",
            Fallback::OtherLeg => "the connection's other TLS leg stays in userspace",
            Fallback::UlpRefused => {
                "the kernel refused the tls ULP on this socket (no longer established)"
            }
            Fallback::NotLinux => "kernel TLS is Linux only",
        }
    }
}

/// The TLS 1.3 suites the running kernel takes for kTLS.
#[derive(Debug, Clone, Copy, Default)]
pub struct Suites {
    pub aes_128_gcm: bool,
    pub aes_256_gcm: bool,
    pub chacha20_poly1305: bool,
}

/// The suites the running kernel takes, probed once: a throwaway loopback
/// socket per suite we use (TLS 1.3 AES-128-GCM, AES-256-GCM,
/// ChaCha20-Poly1305), the `tls` ULP and a zero TX key on each. Blocks
/// (the kernel may instantiate and self-test its ciphers on first use);
/// `serve` runs it once at start off the runtime's threads.
/// `Err(NoUlp)` when the kernel has no `tls` ULP.
#[cfg(target_os = "linux")]
pub fn kernel() -> Result<Suites, Fallback> {
    use std::sync::OnceLock;
    static PROBED: OnceLock<Option<Suites>> = OnceLock::new();
    let c = PROBED.get_or_init(|| match imp::probe() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "kernel TLS probe failed");
            None
        }
    });
    c.ok_or(Fallback::NoUlp)
}

/// Whether a session with this version and suite can run on kTLS here.
#[cfg(target_os = "linux")]
pub fn suite_fits(version: ProtocolVersion, suite: CipherSuite) -> Result<(), Fallback> {
    let k = kernel()?;
    if version != ProtocolVersion::TLSv1_3 {
        return Err(Fallback::Tls12);
    }
    let ok = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => k.aes_128_gcm,
        CipherSuite::TLS13_AES_256_GCM_SHA384 => k.aes_256_gcm,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => k.chacha20_poly1305,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Fallback::UnsupportedSuite)
    }
}

#[cfg(not(target_os = "linux"))]
pub fn suite_fits(_: ProtocolVersion, _: CipherSuite) -> Result<(), Fallback> {
    Err(Fallback::NotLinux)
}

/// The kernel offers the `tls` ULP with at least one suite we use.
pub fn available() -> bool {
    offer().is_ok()
}

/// What the kernel offers, in words (for `check`, `probe`, the start log).
pub fn offer() -> Result<String, Fallback> {
    #[cfg(target_os = "linux")]
    {
        let k = kernel()?;
        let mut s = Vec::new();
        if k.aes_128_gcm {
            s.push("TLS13_AES_128_GCM_SHA256");
        }
        if k.aes_256_gcm {
            s.push("TLS13_AES_256_GCM_SHA384");
        }
        if k.chacha20_poly1305 {
            s.push("TLS13_CHACHA20_POLY1305_SHA256");
        }
        if s.is_empty() {
            return Err(Fallback::UnsupportedSuite);
        }
        Ok(s.join(", "))
    }
    #[cfg(not(target_os = "linux"))]
    Err(Fallback::NotLinux)
}

fn session_fits(s: &rustls::CommonState) -> Result<(), Fallback> {
    match (s.protocol_version(), s.negotiated_cipher_suite()) {
        (Some(v), Some(c)) => suite_fits(v, c.suite()),
        _ => Err(Fallback::Buffered),
    }
}

/// Whether the upstream leg could switch (checked before any leg does).
pub fn client_fits(t: &TlsClient<TcpStream>) -> Result<(), Fallback> {
    session_fits(t.session())?;
    t.in_flight().map_or(Ok(()), |_| Err(Fallback::Buffered))
}

/// Whether the listen leg could switch.
pub fn server_fits(s: &ServerTls) -> Result<(), Fallback> {
    let (framed, conn) = s.get_ref();
    session_fits(conn)?;
    if conn.wants_write() || !framed.at_boundary() {
        return Err(Fallback::Buffered);
    }
    Ok(())
}

/// The listen leg's TLS stream, over a socket read one record at a time
/// during the handshake (see [`Framed`]).
pub type ServerTls = tokio_rustls::server::TlsStream<Framed>;

/// A TLS leg on kTLS: the socket, the session left of rustls (for tickets
/// and the version), and how far each direction is closed.
pub struct KtlsStream {
    tcp: TcpStream,
    #[cfg(target_os = "linux")]
    ctx: ktls_core::Context<Session>,
    version: ProtocolVersion,
    suite: rustls::SupportedCipherSuite,
    /// The peer's close_notify arrived.
    read_closed: bool,
    /// Our close_notify went out (or the connection was aborted).
    write_closed: bool,
}

/// The outcome of a switch the checks allowed: the kTLS stream, or the
/// error of a kernel that refused the keys after rustls gave them up (the
/// connection is then lost, and ends as a failure).
pub type Switched = io::Result<KtlsStream>;

/// Switches the upstream leg. `Err` gives the client back, untouched.
#[allow(clippy::type_complexity)]
pub fn from_client(
    t: Box<TlsClient<TcpStream>>,
) -> Result<Switched, (Box<TlsClient<TcpStream>>, Fallback)> {
    if let Err(f) = client_fits(&t) {
        return Err((t, f));
    }
    if let Err(f) = imp::ulp(t.get_ref()) {
        return Err((t, f));
    }
    let (tcp, conn) = match t.into_parts() {
        Ok(p) => p,
        Err((t, _)) => return Err((t, Fallback::Buffered)),
    };
    Ok(imp::client(tcp, conn))
}

/// Switches the listen leg. `Err` gives the stream back, untouched but for
/// its reads, which pass straight through from then on (it stays in
/// userspace: no reason to read record by record any more).
///
/// Plaintext rustls already decrypted (the client's first bytes, read
/// with its Finished) comes out with the stream, for the other leg.
pub fn from_server(mut s: ServerTls) -> Result<(Switched, Vec<u8>), (Box<ServerTls>, Fallback)> {
    let stay = |mut s: ServerTls, f: Fallback| {
        s.get_mut().0.pass_through();
        Err((Box::new(s), f))
    };
    if let Err(f) = server_fits(&s) {
        return stay(s, f);
    }
    // Before any plaintext is taken out of rustls: a refusal here leaves
    // the stream whole in userspace.
    if let Err(f) = imp::ulp(s.get_ref().0.get_ref()) {
        return stay(s, f);
    }
    let early = {
        let conn = &mut s.get_mut().1;
        match conn.process_new_packets() {
            Ok(st) if !st.peer_has_closed() => {
                let mut early = vec![0; st.plaintext_bytes_to_read()];
                if std::io::Read::read_exact(&mut conn.reader(), &mut early).is_err() {
                    return stay(s, Fallback::Buffered);
                }
                early
            }
            _ => return stay(s, Fallback::Buffered),
        }
    };
    let (framed, conn) = s.into_inner();
    Ok((imp::server(framed.into_inner(), conn), early))
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
}

/// What to do after a failed read of a kTLS socket.
pub enum AfterError {
    /// A control record was handled (a ticket): read again.
    Retry,
    /// The peer's close_notify: the clean end of input.
    End,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use ktls_core::{
        setup_ulp, ConnectionTrafficSecrets, DummyTlsSession, Peer, TlsCryptoInfoRx,
        TlsCryptoInfoTx, TlsSession, DUMMY_TLS_13_SESSION_SERVER,
    };
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

    /// See [`kernel`]. `Ok(None)`: no `tls` ULP.
    pub(super) fn probe() -> io::Result<Option<Suites>> {
        use ktls_core::AeadKey;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut held = Vec::new();
        let mut try_one = |secrets: ConnectionTrafficSecrets| -> io::Result<Option<bool>> {
            let sock = std::net::TcpStream::connect(addr)?;
            held.push(listener.accept()?.0);
            if let Err(e) = setup_ulp(&sock) {
                if e.is_ktls_unsupported() {
                    return Ok(None);
                }
                return Err(e.into());
            }
            let v = ktls_core::ProtocolVersion::TLSv1_3;
            Ok(Some(
                TlsCryptoInfoTx::new(v, secrets, 0)
                    .and_then(|tx| tx.set(&sock))
                    .is_ok(),
            ))
        };
        let Some(aes_128_gcm) = try_one(ConnectionTrafficSecrets::Aes128Gcm {
            key: AeadKey::new(Default::default()),
            iv: Default::default(),
            salt: Default::default(),
        })?
        else {
            return Ok(None);
        };
        let aes_256_gcm = try_one(ConnectionTrafficSecrets::Aes256Gcm {
            key: AeadKey::new(Default::default()),
            iv: Default::default(),
            salt: Default::default(),
        })?
        .unwrap_or(false);
        let chacha20_poly1305 = try_one(ConnectionTrafficSecrets::Chacha20Poly1305 {
            key: AeadKey::new(Default::default()),
            iv: Default::default(),
            salt: Default::default(),
        })?
        .unwrap_or(false);
        Ok(Some(Suites {
            aes_128_gcm,
            aes_256_gcm,
            chacha20_poly1305,
        }))
    }

    /// The `tls` ULP alone: until keys are set the socket passes bytes
    /// through as before, so a refusal here still lets the leg stay on
    /// rustls.
    pub(super) fn ulp(tcp: &TcpStream) -> Result<(), Fallback> {
        setup_ulp(tcp).map_err(|e| {
            tracing::debug!(error = %e, "the kernel refused the tls ULP");
            if e.is_ktls_unsupported() {
                Fallback::NoUlp
            } else {
                Fallback::UlpRefused
            }
        })
    }

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

    pub(super) fn client(
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

    pub(super) fn server(tcp: TcpStream, conn: rustls::ServerConnection) -> Switched {
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

        pub(crate) fn is_read_closed(&self) -> bool {
            self.read_closed
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

#[cfg(target_os = "linux")]
use imp::Session;

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;
    pub(super) fn client(_: TcpStream, _: rustls::client::UnbufferedClientConnection) -> Switched {
        Err(io::Error::other("kernel TLS is Linux only"))
    }
    pub(super) fn server(_: TcpStream, _: rustls::ServerConnection) -> Switched {
        Err(io::Error::other("kernel TLS is Linux only"))
    }
    pub(super) fn ulp(_: &TcpStream) -> Result<(), Fallback> {
        Err(Fallback::NotLinux)
    }
    impl KtlsStream {
        pub fn read_failed(&mut self, e: io::Error) -> io::Result<AfterError> {
            Err(e)
        }
        pub fn read_eof(&self) -> io::Result<()> {
            Ok(())
        }
        pub(crate) fn is_read_closed(&self) -> bool {
            self.read_closed
        }
        pub fn shutdown_write(&mut self) -> io::Result<()> {
            socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Write)
        }
    }
}

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
