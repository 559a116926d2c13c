//! The upstream leg's TLS client on rustls's unbuffered API
//! (`UnbufferedClientConnection`), as an `AsyncRead + AsyncWrite` stream.
//!
//! The point is memory and copies on the hot path:
//!
//! - Every buffer is the caller's (this module's) and is taken from a
//!   per-thread pool only while bytes are in flight: ciphertext read from
//!   the socket, plaintext decrypted but not yet read, records encrypted but
//!   not yet written. An idle connection holds none of them; only rustls's
//!   connection state (keys, sequence numbers) stays.
//! - Ciphertext is read from the socket into the incoming buffer and
//!   decrypted there by rustls (in place); with rustls 0.23 the record's
//!   plaintext is then handed over in rustls's own per-record `Vec`, from
//!   which it is copied once into the reader's buffer.
//! - Plaintext is encrypted from the writer's buffer straight into the
//!   outgoing buffer, several 16 KiB records of it, and that buffer goes to
//!   the socket in one write when it is full or on flush.
//!
//! The clean end is close_notify (a read returns 0); a TCP end without it is
//! `UnexpectedEof`, as with tokio-rustls, so the relay reports truncation.
//! Shutting the write side down sends close_notify, then FIN, and reading
//! goes on (half-close). Records the connection must answer after the
//! handshake (KeyUpdate, alerts) go out with the next write or flush, or
//! at once from a read when the socket takes them.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, UnbufferedStatus, WriteTraffic,
};
use rustls::{ClientConfig, CommonState};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::pool::{self, Pool};
use super::{Source, SpliceError};

/// The largest TLS record on the wire: header, 16 KiB of plaintext and the
/// largest expansion TLS 1.2 allows.
const MAX_RECORD: usize = 5 + 16 * 1024 + 2048;
/// Incoming ciphertext buffer: two full records and the start of a third,
/// so one socket read can carry several records.
pub const IN_SIZE: usize = 2 * MAX_RECORD + 4096;
/// The incoming buffer while the handshake runs. rustls joins a handshake
/// message that spans records in place, in this buffer, so the whole
/// message and its record headers must fit: TLS messages may be up to
/// 2^16 - 1 bytes in rustls (a long certificate chain, a CertificateRequest
/// listing every CA of a big trust store, as Java and SChannel servers
/// send). Room for such a message in five records (headers and the largest
/// expansion of each), the start of the next record, and a socket read.
/// rustls refuses a message over the limit itself
/// (`HandshakePayloadTooLarge`). The buffer is this size only while a
/// handshake needs it; it goes back to `IN_SIZE` (and is not pooled) once
/// the handshake is done (issue 14).
pub const HANDSHAKE_IN_SIZE: usize = 0x1_0000 + 5 * (MAX_RECORD - RECORD_PLAIN) + MAX_RECORD;
/// Plaintext per record.
const RECORD_PLAIN: usize = 16 * 1024;
/// Bytes a record adds to its plaintext, at most (header, TLS 1.2 explicit
/// nonce, tag, TLS 1.3 content type), rounded up.
const RECORD_OVERHEAD: usize = 64;
/// Outgoing buffer: four full records per socket write.
pub const OUT_SIZE: usize = 4 * (RECORD_PLAIN + RECORD_OVERHEAD);
/// Decrypted plaintext waiting for the reader (grows only while the reader
/// is slower than the incoming buffer is full, so at most about `IN_SIZE`).
const STASH_SIZE: usize = RECORD_PLAIN;
thread_local! {
    /// Buffers kept per thread and kind for reuse; beyond 16 each they are
    /// freed (at most about 2 MiB per thread stays after a burst).
    static POOL_IN: Pool<Vec<u8>> = const { Pool::new(16) };
    static POOL_OUT: Pool<Vec<u8>> = const { Pool::new(16) };
    static POOL_STASH: Pool<Vec<u8>> = const { Pool::new(16) };
}

/// A zeroed buffer of `size` bytes (len == size).
fn take_full(pool: &'static pool::Local<Vec<u8>>, size: usize) -> Vec<u8> {
    pool::take(pool)
        .filter(|b| b.len() == size)
        .unwrap_or_else(|| vec![0; size])
}

/// An empty buffer with room for `size` bytes (len == 0).
fn take_empty(pool: &'static pool::Local<Vec<u8>>, size: usize) -> Vec<u8> {
    pool::take(pool)
        .map(|mut b| {
            b.clear();
            b
        })
        .unwrap_or_else(|| Vec::with_capacity(size))
}

/// Returns an incoming buffer; one grown for a handshake is freed instead.
fn give_back_in(buf: Vec<u8>) {
    if buf.len() == IN_SIZE {
        give_back(&POOL_IN, buf);
    }
}

fn give_back(pool: &'static pool::Local<Vec<u8>>, buf: Vec<u8>) {
    pool::give(pool, buf);
}

/// A rustls error as the I/O error tokio-rustls would give, so
/// `tls::reason::classify` sees the same thing either way.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Connects: runs the handshake on `io` and returns the stream. Bound it
/// with a timeout; handshake failures are `io::Error`s wrapping the
/// `rustls::Error`, as with tokio-rustls.
pub async fn connect<IO>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    io: IO,
) -> io::Result<TlsClient<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let conn = UnbufferedClientConnection::new(config, name).map_err(tls_error)?;
    let mut s = TlsClient::new(conn, io);
    poll_fn(|cx| s.poll_handshake(cx)).await?;
    Ok(s)
}

/// What one run of rustls over the buffered records came to.
enum Driven {
    /// rustls needs more bytes from the socket.
    NeedInput,
    /// Plaintext (or the clean end) is there for the reader.
    Readable,
    /// `Op::Encrypt` took this many bytes (0: the outgoing buffer is full).
    Wrote(usize),
    /// The handshake is done (`Op::Handshake`), or the close_notify queued.
    Done,
}

/// What the caller wants of a `drive`.
enum Op<'a> {
    Read,
    Handshake,
    Encrypt(&'a [u8]),
    CloseNotify,
}

pub struct TlsClient<IO> {
    conn: UnbufferedClientConnection,
    io: IO,
    /// Incoming ciphertext, `inbuf[in_start..in_len]` not yet discarded
    /// by rustls. Discarding moves `in_start` (no copy); only a partial
    /// record at the end moves to the front, when room is needed to read.
    inbuf: Slot,
    in_start: usize,
    in_len: usize,
    /// Decrypted plaintext not yet read: `stash[stash_pos..]`.
    stash: Slot,
    stash_pos: usize,
    /// Outgoing records, `out[out_start..out_end]` not yet written.
    out: Slot,
    out_start: usize,
    out_end: usize,
    /// The peer's close_notify arrived: reads end cleanly.
    peer_closed: bool,
    /// The socket reached EOF.
    eof: bool,
    /// Our close_notify is queued.
    close_queued: bool,
    /// The connection failed; every later call reports it.
    failed: Option<rustls::Error>,
    /// The handshake is running: the incoming buffer may grow to
    /// `HANDSHAKE_IN_SIZE`.
    handshaking: bool,
}

impl<IO> TlsClient<IO> {
    fn new(conn: UnbufferedClientConnection, io: IO) -> Self {
        TlsClient {
            conn,
            io,
            inbuf: Slot::new(give_back_in),
            in_start: 0,
            in_len: 0,
            stash: Slot::new(|b| give_back(&POOL_STASH, b)),
            stash_pos: 0,
            out: Slot::new(|b| give_back(&POOL_OUT, b)),
            out_start: 0,
            out_end: 0,
            peer_closed: false,
            eof: false,
            close_queued: false,
            failed: None,
            handshaking: true,
        }
    }

    /// The socket underneath.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The session: version, cipher suite, peer certificates, resumption.
    pub fn session(&self) -> &CommonState {
        &self.conn
    }

    /// Bytes of buffers held right now (0 when idle).
    pub fn buffered_capacity(&self) -> usize {
        self.inbuf.as_ref().map_or(0, |b| b.capacity())
            + self.stash.as_ref().map_or(0, |b| b.capacity())
            + self.out.as_ref().map_or(0, |b| b.capacity())
    }

    fn stashed(&self) -> usize {
        self.stash.as_ref().map_or(0, |s| s.len() - self.stash_pos)
    }

    /// Runs rustls over the buffered incoming records until it needs more
    /// input, or `op` is done. Handshake and alert records go to `out`,
    /// decrypted plaintext to `dst` (as much as fits) then the stash.
    fn drive(&mut self, dst: &mut impl Sink, op: Op<'_>) -> io::Result<Driven> {
        if let Some(e) = &self.failed {
            return Err(tls_error(e.clone()));
        }
        loop {
            let TlsClient {
                conn,
                inbuf,
                in_start,
                in_len,
                stash,
                out,
                out_start,
                out_end,
                peer_closed,
                ..
            } = self;
            let incoming: &mut [u8] = match &mut **inbuf {
                Some(b) => &mut b[*in_start..*in_len],
                None => &mut [],
            };
            let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
            let step: Result<Option<Driven>, rustls::Error> = match state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    let mut res: Result<(), rustls::Error> = Ok(());
                    while let Some(rec) = r.next_record() {
                        let payload = match rec {
                            Ok(rec) => rec.payload,
                            Err(e) => {
                                res = Err(e);
                                break;
                            }
                        };
                        // Plaintext already waiting goes first.
                        let taken = if stash.is_none() { dst.put(payload) } else { 0 };
                        let payload = &payload[taken..];
                        if !payload.is_empty() {
                            stash
                                .get_or_insert_with(|| take_empty(&POOL_STASH, STASH_SIZE))
                                .extend_from_slice(payload);
                        }
                    }
                    // A reader with room left takes the next record too.
                    res.map(|()| {
                        (matches!(op, Op::Read) && (dst.full() || stash.is_some()))
                            .then_some(Driven::Readable)
                    })
                }
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    let buf = out.get_or_insert_with(|| take_full(&POOL_OUT, OUT_SIZE));
                    loop {
                        match e.encode(&mut buf[*out_end..]) {
                            Ok(n) => {
                                *out_end += n;
                                break;
                            }
                            Err(EncodeError::InsufficientSize(s)) => {
                                compact(buf, out_start, out_end);
                                if buf.len() - *out_end < s.required_size {
                                    buf.resize(*out_end + s.required_size, 0);
                                }
                            }
                            Err(EncodeError::AlreadyEncoded) => break,
                        }
                    }
                    Ok(None)
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    // What was encoded is in `out`, in order before
                    // anything encrypted later; it leaves with the next
                    // push.
                    t.done();
                    Ok(None)
                }
                Ok(ConnectionState::PeerClosed) => {
                    *peer_closed = true;
                    Ok(matches!(op, Op::Read).then_some(Driven::Readable))
                }
                Ok(ConnectionState::Closed) => {
                    *peer_closed = true;
                    Ok(Some(match op {
                        Op::Read => Driven::Readable,
                        Op::Encrypt(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::BrokenPipe,
                                "write after the TLS connection was closed",
                            ))
                        }
                        _ => Driven::Done,
                    }))
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(Driven::NeedInput)),
                Ok(ConnectionState::WriteTraffic(mut w)) => match op {
                    Op::Read => Ok(Some(Driven::NeedInput)),
                    Op::Handshake => Ok(Some(Driven::Done)),
                    Op::Encrypt(data) => {
                        let buf = out.get_or_insert_with(|| take_full(&POOL_OUT, OUT_SIZE));
                        encrypt(&mut w, data, buf, out_start, out_end)
                            .map(|n| Some(Driven::Wrote(n)))
                    }
                    Op::CloseNotify => {
                        let buf = out.get_or_insert_with(|| take_full(&POOL_OUT, OUT_SIZE));
                        compact(buf, out_start, out_end);
                        if buf.len() - *out_end < 1024 {
                            buf.resize(*out_end + 1024, 0);
                        }
                        match w.queue_close_notify(&mut buf[*out_end..]) {
                            Ok(n) => {
                                *out_end += n;
                                Ok(Some(Driven::Done))
                            }
                            Err(e) => Err(rustls::Error::General(e.to_string())),
                        }
                    }
                },
                Ok(other) => Err(rustls::Error::General(format!(
                    "unexpected TLS client state {other:?}"
                ))),
            };
            discard_front(in_start, in_len, discard);
            match step {
                Ok(None) => continue,
                Ok(Some(d)) => return Ok(d),
                Err(e) => {
                    self.fail(e.clone());
                    return Err(tls_error(e));
                }
            }
        }
    }

    /// Records the failure and queues the alert rustls has for the peer.
    fn fail(&mut self, e: rustls::Error) {
        self.failed = Some(e);
        for _ in 0..4 {
            let TlsClient {
                conn,
                inbuf,
                in_start,
                in_len,
                out,
                out_start,
                out_end,
                ..
            } = self;
            // The same incoming bytes: rustls's handshake deframer may
            // still point into them.
            let incoming: &mut [u8] = match &mut **inbuf {
                Some(b) => &mut b[*in_start..*in_len],
                None => &mut [],
            };
            let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
            let more = match state {
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    let buf = out.get_or_insert_with(|| take_full(&POOL_OUT, OUT_SIZE));
                    compact(buf, out_start, out_end);
                    if let Ok(n) = e.encode(&mut buf[*out_end..]) {
                        *out_end += n;
                    }
                    true
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    t.done();
                    true
                }
                _ => false,
            };
            discard_front(in_start, in_len, discard);
            if !more {
                break;
            }
        }
    }

    /// After the handshake: bytes left in a grown incoming buffer (the
    /// first records after the server's Finished) move to one of the usual
    /// size, so an established connection never holds the larger one.
    fn shrink_inbuf(&mut self) {
        let Some(b) = &*self.inbuf else { return };
        if b.len() <= IN_SIZE {
            return;
        }
        let held = &b[self.in_start..self.in_len];
        if held.len() > IN_SIZE {
            // Not reachable: the handshake is done, so what is held is at
            // most what one read brought after it; keep it rather than fail.
            return;
        }
        let mut small = take_full(&POOL_IN, IN_SIZE);
        small[..held.len()].copy_from_slice(held);
        self.in_len = held.len();
        self.in_start = 0;
        *self.inbuf = Some(small);
    }

    fn release_idle(&mut self) {
        if self.in_len == 0 {
            if let Some(b) = self.inbuf.take() {
                give_back_in(b);
            }
        }
        if self.stashed() == 0 {
            self.stash_pos = 0;
            if let Some(b) = self.stash.take() {
                give_back(&POOL_STASH, b);
            }
        }
        if self.out_start == self.out_end {
            self.out_start = 0;
            self.out_end = 0;
            if let Some(b) = self.out.take() {
                give_back(&POOL_OUT, b);
            }
        }
    }
}

/// Where decrypted plaintext goes first (the rest waits in the stash).
trait Sink {
    /// Takes what it can of `data`; returns how much.
    fn put(&mut self, data: &[u8]) -> usize;
    /// Takes nothing more.
    fn full(&self) -> bool;
}

/// Everything to the stash.
struct NoSink;

impl Sink for NoSink {
    fn put(&mut self, _: &[u8]) -> usize {
        0
    }
    fn full(&self) -> bool {
        true
    }
}

/// A reader's buffer (`AsyncRead`): one copy out of rustls's record.
struct BufSink<'a, 'b>(&'a mut ReadBuf<'b>);

impl Sink for BufSink<'_, '_> {
    fn put(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.0.remaining());
        self.0.put_slice(&data[..n]);
        n
    }
    fn full(&self) -> bool {
        self.0.remaining() == 0
    }
}

/// Another stream (the relay's splice): the plaintext is written from
/// rustls's record straight to it; only what it does not take now is
/// copied, to the stash.
struct WriterSink<'a, 'c, W: ?Sized> {
    w: &'a mut W,
    cx: &'a mut Context<'c>,
    written: usize,
    blocked: bool,
    error: Option<io::Error>,
}

impl<W: AsyncWrite + Unpin + ?Sized> Sink for WriterSink<'_, '_, W> {
    fn put(&mut self, data: &[u8]) -> usize {
        let mut off = 0;
        while off < data.len() && !self.full() {
            match Pin::new(&mut *self.w).poll_write(self.cx, &data[off..]) {
                Poll::Pending => self.blocked = true,
                Poll::Ready(Ok(0)) => self.error = Some(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    off += n;
                    self.written += n;
                }
                Poll::Ready(Err(e)) => self.error = Some(e),
            }
        }
        off
    }
    fn full(&self) -> bool {
        self.blocked || self.error.is_some()
    }
}

/// Drops `n` processed bytes from the front of the incoming bytes.
fn discard_front(start: &mut usize, len: &mut usize, n: usize) {
    *start += n;
    debug_assert!(*start <= *len);
    if *start == *len {
        *start = 0;
        *len = 0;
    }
}

/// Moves the unwritten part of `buf` to its front.
fn compact(buf: &mut [u8], start: &mut usize, end: &mut usize) {
    if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    }
}

/// Encrypts as much of `data` as fits in the free part of `buf` (whole
/// records where it can). Returns the plaintext bytes taken; 0 if `buf` is
/// too full for a record.
fn encrypt(
    w: &mut WriteTraffic<'_, ClientConnectionData>,
    data: &[u8],
    buf: &mut Vec<u8>,
    start: &mut usize,
    end: &mut usize,
) -> Result<usize, rustls::Error> {
    if data.is_empty() {
        return Ok(0);
    }
    if buf.len() - *end < RECORD_PLAIN + RECORD_OVERHEAD {
        compact(buf, start, end);
    }
    let free = buf.len() - *end;
    let per = RECORD_PLAIN + RECORD_OVERHEAD;
    let fits = (free / per) * RECORD_PLAIN + (free % per).saturating_sub(RECORD_OVERHEAD);
    let mut take = data.len().min(fits);
    if take == 0 {
        if *end > 0 {
            return Ok(0);
        }
        // An empty buffer always takes a record.
        buf.resize(per, 0);
        take = data.len().min(RECORD_PLAIN);
    }
    loop {
        match w.encrypt(&data[..take], &mut buf[*end..]) {
            Ok(n) => {
                *end += n;
                return Ok(take);
            }
            Err(EncryptError::InsufficientSize(s)) => {
                // Records rustls had queued (a KeyUpdate) come first.
                if *end > 0 {
                    return Ok(0);
                }
                buf.resize(s.required_size, 0);
            }
            Err(EncryptError::EncryptExhausted) => {
                return Err(rustls::Error::EncryptError);
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsClient<IO> {
    /// Writes the outgoing records to the socket; `Ready(Ok)` once all
    /// are written (and the buffer went back to the pool).
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_start < self.out_end {
            let buf = self.out.as_deref().expect("pending records have a buffer");
            let n =
                ready!(Pin::new(&mut self.io).poll_write(cx, &buf[self.out_start..self.out_end]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_start += n;
        }
        self.out_start = 0;
        self.out_end = 0;
        if let Some(b) = self.out.take() {
            give_back(&POOL_OUT, b);
        }
        Poll::Ready(Ok(()))
    }

    /// Reads more ciphertext from the socket. `Ready(Ok(false))` at EOF.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let buf = self
            .inbuf
            .get_or_insert_with(|| take_full(&POOL_IN, IN_SIZE));
        if buf.len() - self.in_len < MAX_RECORD && self.in_start > 0 {
            compact(buf, &mut self.in_start, &mut self.in_len);
        }
        if self.in_len == buf.len() {
            if self.handshaking && buf.len() < HANDSHAKE_IN_SIZE {
                // A handshake message rustls is still joining fills the
                // buffer: room for the largest one TLS allows.
                buf.resize(HANDSHAKE_IN_SIZE, 0);
            } else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    if self.handshaking {
                        "a TLS handshake message larger than the 64 KiB allowed"
                    } else {
                        "a TLS record larger than the incoming buffer"
                    },
                )));
            }
        }
        let mut rb = ReadBuf::new(&mut buf[self.in_len..]);
        match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
            Poll::Pending => {
                if self.in_len == 0 {
                    if let Some(b) = self.inbuf.take() {
                        give_back_in(b);
                    }
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                self.in_len += n;
                if n == 0 {
                    self.eof = true;
                }
                Poll::Ready(Ok(n > 0))
            }
        }
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let driven = match self.drive(&mut NoSink, Op::Handshake) {
                Ok(d) => d,
                Err(e) => {
                    // Best effort: the peer learns why from the alert.
                    let _ = self.poll_push(cx);
                    return Poll::Ready(Err(e));
                }
            };
            ready!(self.poll_push(cx))?;
            if let Driven::Done = driven {
                self.handshaking = false;
                self.shrink_inbuf();
                self.release_idle();
                return Poll::Ready(Ok(()));
            }
            if self.eof || !ready!(self.poll_fill(cx))? {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )));
            }
        }
    }

    fn read_into(&mut self, cx: &mut Context<'_>, dst: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(s) = &*self.stash {
                let avail = &s[self.stash_pos..];
                if !avail.is_empty() {
                    let n = avail.len().min(dst.remaining());
                    dst.put_slice(&avail[..n]);
                    self.stash_pos += n;
                    if self.stashed() == 0 {
                        self.stash_pos = 0;
                        if let Some(b) = self.stash.take() {
                            give_back(&POOL_STASH, b);
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
            }
            if self.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let before = dst.filled().len();
            let driven = self.drive(&mut BufSink(dst), Op::Read);
            // Answers rustls queued (KeyUpdate, alerts) leave when they can.
            if self.out_end > self.out_start {
                if let Poll::Ready(Err(e)) = self.poll_push(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            let driven = driven?;
            if dst.filled().len() > before || self.peer_closed {
                if self.in_len == 0 {
                    self.release_idle();
                }
                return Poll::Ready(Ok(()));
            }
            if !matches!(driven, Driven::NeedInput) {
                continue;
            }
            if self.eof {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                )));
            }
            ready!(self.poll_fill(cx))?;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Source for TlsClient<IO> {
    fn poll_splice<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut W,
    ) -> Option<Poll<Result<usize, SpliceError>>> {
        Some(self.splice(cx, writer))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsClient<IO> {
    /// Decrypts and writes to `writer` without a copy in between when it
    /// takes the bytes. `Ready(Ok(0))`: the clean end.
    fn splice<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut W,
    ) -> Poll<Result<usize, SpliceError>> {
        loop {
            if let Some(s) = &*self.stash {
                let avail = &s[self.stash_pos..];
                if !avail.is_empty() {
                    let n = ready!(Pin::new(&mut *writer).poll_write(cx, avail))
                        .map_err(SpliceError::Write)?;
                    if n == 0 {
                        return Poll::Ready(Err(SpliceError::Write(
                            io::ErrorKind::WriteZero.into(),
                        )));
                    }
                    self.stash_pos += n;
                    if self.stashed() == 0 {
                        self.stash_pos = 0;
                        if let Some(b) = self.stash.take() {
                            give_back(&POOL_STASH, b);
                        }
                    }
                    return Poll::Ready(Ok(n));
                }
            }
            if self.peer_closed {
                return Poll::Ready(Ok(0));
            }
            let mut sink = WriterSink {
                w: &mut *writer,
                cx: &mut *cx,
                written: 0,
                blocked: false,
                error: None,
            };
            let driven = self.drive(&mut sink, Op::Read);
            let (written, error) = (sink.written, sink.error);
            if self.out_end > self.out_start {
                if let Poll::Ready(Err(e)) = self.poll_push(cx) {
                    return Poll::Ready(Err(SpliceError::Read(e)));
                }
            }
            if let Some(e) = error {
                return Poll::Ready(Err(SpliceError::Write(e)));
            }
            let driven = driven.map_err(SpliceError::Read)?;
            if written > 0 {
                if self.in_len == 0 {
                    self.release_idle();
                }
                return Poll::Ready(Ok(written));
            }
            if self.peer_closed {
                continue;
            }
            if self.stashed() > 0 {
                // The writer is blocked; it will wake us.
                return Poll::Pending;
            }
            if !matches!(driven, Driven::NeedInput) {
                continue;
            }
            if self.eof {
                return Poll::Ready(Err(SpliceError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                ))));
            }
            ready!(self.poll_fill(cx)).map_err(SpliceError::Read)?;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsClient<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().read_into(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsClient<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.close_queued {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        loop {
            match this.drive(&mut NoSink, Op::Encrypt(buf))? {
                Driven::Wrote(n) if n > 0 => {
                    // A full batch leaves now; a partial one waits for more
                    // or for the flush.
                    if this
                        .out
                        .as_ref()
                        .is_some_and(|b| b.len() - this.out_end < RECORD_PLAIN + RECORD_OVERHEAD)
                    {
                        let _ = this.poll_push(cx)?;
                    }
                    return Poll::Ready(Ok(n));
                }
                Driven::NeedInput => {
                    return Poll::Ready(Err(io::Error::other(
                        "the TLS connection cannot send application data now",
                    )))
                }
                _ => ready!(this.poll_push(cx))?,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_push(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            if this.failed.is_none() {
                this.drive(&mut NoSink, Op::CloseNotify)?;
            }
            this.close_queued = true;
        }
        ready!(this.poll_push(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// One of a client's buffers while it holds one; it goes back to its pool
/// when the client is dropped (or gives up its connection to the kernel).
struct Slot {
    buf: Option<Vec<u8>>,
    back: fn(Vec<u8>),
}

impl Slot {
    fn new(back: fn(Vec<u8>)) -> Slot {
        Slot { buf: None, back }
    }
}

impl std::ops::Deref for Slot {
    type Target = Option<Vec<u8>>;
    fn deref(&self) -> &Self::Target {
        &self.buf
    }
}

impl std::ops::DerefMut for Slot {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.buf
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            (self.back)(b);
        }
    }
}

impl<IO> TlsClient<IO> {
    /// Gives up the socket and the rustls connection, for kernel TLS
    /// (`relay::ktls`), when nothing is in flight: no ciphertext read and
    /// not yet processed, no plaintext waiting, no record waiting to be
    /// written, no close begun either way. Otherwise the client comes back
    /// with the reason, unchanged.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self: Box<Self>,
    ) -> Result<(IO, UnbufferedClientConnection), (Box<Self>, &'static str)> {
        if let Some(why) = self.in_flight() {
            return Err((self, why));
        }
        let TlsClient { conn, io, .. } = *self;
        Ok((io, conn))
    }

    /// Why [`TlsClient::into_parts`] would refuse, if it would.
    pub fn in_flight(&self) -> Option<&'static str> {
        if self.failed.is_some() || self.peer_closed || self.eof || self.close_queued {
            return Some("the connection is closing");
        }
        if self.in_len > self.in_start || self.stashed() > 0 || self.out_end > self.out_start {
            return Some("TLS records are already buffered in userspace");
        }
        None
    }
}

#[cfg(test)]
mod tests;
