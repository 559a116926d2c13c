//! The sans-io half of the engine: runs rustls over the buffered incoming
//! records and does what each rustls state asks (decrypted plaintext to
//! the sink or the stash, records to the outgoing buffer, application data
//! encrypted into it). It never touches the socket (a splice's writer is
//! the sink's, the other side's stream).

use std::io;
use std::task::Context;

use rustls::client::ClientConnectionData;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, ReadTraffic, UnbufferedStatus,
    WriteTraffic,
};

use super::buffers::{Window, RECORD_OVERHEAD, RECORD_PLAIN, STASH_SIZE};
use super::sink::Sink;
use super::{tls_error, Core, State, TlsClient};

/// What the caller wants of a [`TlsClient::drive`].
pub(super) enum Op<'a> {
    Read,
    Handshake,
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// What one drive came to.
pub(super) enum Driven {
    /// rustls needs more bytes from the socket.
    NeedInput,
    /// Plaintext (or the clean end) is there for the reader.
    Readable,
    /// `Op::Encrypt` took this many bytes (0: the outgoing buffer is full).
    Wrote(usize),
    /// The handshake is done (`Op::Handshake`), or the close_notify queued.
    Done,
    /// `Op::Encrypt` on a connection closed both ways.
    Closed,
}

/// Room for a close_notify record.
const CLOSE_NOTIFY_ROOM: usize = 1024;
/// Room for one full record of application data.
const PER_RECORD: usize = RECORD_PLAIN + RECORD_OVERHEAD;

/// The outgoing records are a full batch: no room for another whole
/// record, so they go to the socket before more is encrypted (rather than
/// a sliver of a record squeezed in).
pub(super) fn batch_full(out: &Window) -> bool {
    !out.is_empty() && out.free() < PER_RECORD
}

impl<IO> TlsClient<IO> {
    /// Runs rustls over the buffered incoming records until it needs more
    /// input, or `op` is done. A failure is recorded (every later call
    /// reports it) and rustls's alert for the peer queued.
    pub(super) fn drive(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut impl Sink,
        op: Op<'_>,
    ) -> io::Result<Driven> {
        if let State::Failed(e) = &self.core.state {
            return Err(tls_error(e.clone()));
        }
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(self.incoming.pending_mut());
            let step = state.and_then(|s| self.core.on_state(cx, sink, &op, s));
            self.incoming.consume(discard);
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
        self.core.state = State::Failed(e);
        // rustls queues one alert when it fails, and hands it over
        // (EncodeTlsData) at the next call, before it reads any record. One
        // call, not a loop: a second would read the record that failed
        // again (rustls keeps what it could not process), fail again and
        // queue a second alert, which rustls debug-asserts against. The
        // same incoming bytes: rustls's handshake deframer may still point
        // into them.
        let UnbufferedStatus { discard, state } =
            self.conn.process_tls_records(self.incoming.pending_mut());
        if let Ok(ConnectionState::EncodeTlsData(e)) = state {
            encode(e, &mut self.core.outgoing);
        }
        self.incoming.consume(discard);
    }
}

impl Core {
    /// Does what one rustls state asks; `Some` ends the drive.
    fn on_state(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut impl Sink,
        op: &Op<'_>,
        state: ConnectionState<'_, '_, ClientConnectionData>,
    ) -> Result<Option<Driven>, rustls::Error> {
        let reading = matches!(op, Op::Read);
        match state {
            ConnectionState::ReadTraffic(r) => {
                self.read_records(cx, sink, r)?;
                // A reader with room left takes the next record too; a
                // gathering sink, while the stash has room for one more.
                let stop = reading
                    && if sink.gathers() {
                        self.stash.len() + RECORD_PLAIN > STASH_SIZE
                    } else {
                        sink.full() || !self.stash.is_empty()
                    };
                Ok(stop.then_some(Driven::Readable))
            }
            ConnectionState::EncodeTlsData(e) => {
                encode(e, &mut self.outgoing);
                Ok(None)
            }
            // What was encoded is in `outgoing`, in order before anything
            // encrypted later; it leaves with the next `write_io`.
            ConnectionState::TransmitTlsData(t) => {
                t.done();
                Ok(None)
            }
            ConnectionState::PeerClosed => {
                self.state.shutdown_read();
                Ok(reading.then_some(Driven::Readable))
            }
            ConnectionState::Closed => {
                self.state.shutdown_read();
                Ok(Some(match op {
                    Op::Read => Driven::Readable,
                    Op::Encrypt(_) => Driven::Closed,
                    Op::Handshake | Op::CloseNotify => Driven::Done,
                }))
            }
            ConnectionState::BlockedHandshake => Ok(Some(Driven::NeedInput)),
            ConnectionState::WriteTraffic(w) => self.write_traffic(w, op).map(Some),
            other => Err(rustls::Error::General(format!(
                "unexpected TLS client state {other:?}"
            ))),
        }
    }

    /// Decrypted records to `sink`, as much as it takes, the rest to the
    /// stash. Plaintext already waiting goes first; a gathering sink gets
    /// everything through the stash.
    fn read_records(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut impl Sink,
        mut records: ReadTraffic<'_, '_, ClientConnectionData>,
    ) -> Result<(), rustls::Error> {
        while let Some(record) = records.next_record() {
            let payload = record?.payload;
            let taken = if self.stash.is_empty() && !sink.gathers() {
                sink.put(cx, payload)
            } else {
                0
            };
            if taken < payload.len() {
                self.stash.push(&payload[taken..]);
            }
        }
        Ok(())
    }

    /// The connection may send application data: what `op` wanted of it.
    fn write_traffic(
        &mut self,
        mut w: WriteTraffic<'_, ClientConnectionData>,
        op: &Op<'_>,
    ) -> Result<Driven, rustls::Error> {
        match op {
            Op::Read => Ok(Driven::NeedInput),
            Op::Handshake => Ok(Driven::Done),
            Op::Encrypt(data) => encrypt(&mut w, data, &mut self.outgoing).map(Driven::Wrote),
            Op::CloseNotify => {
                let out = &mut self.outgoing;
                out.reserve(CLOSE_NOTIFY_ROOM);
                let end = out.end;
                let n = w
                    .queue_close_notify(&mut out.buf()[end..])
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                out.end += n;
                Ok(Driven::Done)
            }
        }
    }
}

/// A record rustls made (handshake, alert, KeyUpdate) into `out`.
fn encode(mut e: EncodeTlsData<'_, ClientConnectionData>, out: &mut Window) {
    loop {
        let end = out.end;
        match e.encode(&mut out.buf()[end..]) {
            Ok(n) => {
                out.end += n;
                return;
            }
            Err(EncodeError::InsufficientSize(s)) => out.reserve(s.required_size),
            Err(EncodeError::AlreadyEncoded) => return,
        }
    }
}

/// Encrypts as much of `data` as fits in the free part of `out` (whole
/// records where it can). Returns the plaintext bytes taken; 0 if `out` is
/// too full for a record.
fn encrypt(
    w: &mut WriteTraffic<'_, ClientConnectionData>,
    data: &[u8],
    out: &mut Window,
) -> Result<usize, rustls::Error> {
    if data.is_empty() {
        return Ok(0);
    }
    // Held from here on, so `free` counts its room.
    out.buf();
    if out.free() < PER_RECORD {
        out.compact();
    }
    let free = out.free();
    let fits =
        (free / PER_RECORD) * RECORD_PLAIN + (free % PER_RECORD).saturating_sub(RECORD_OVERHEAD);
    let mut take = data.len().min(fits);
    if take == 0 {
        if out.end > 0 {
            return Ok(0);
        }
        // An empty buffer always takes a record.
        out.buf().resize(PER_RECORD, 0);
        take = data.len().min(RECORD_PLAIN);
    }
    loop {
        let end = out.end;
        match w.encrypt(&data[..take], &mut out.buf()[end..]) {
            Ok(n) => {
                out.end += n;
                return Ok(take);
            }
            Err(EncryptError::InsufficientSize(s)) => {
                // Records rustls had queued (a KeyUpdate) come first.
                if out.end > 0 {
                    return Ok(0);
                }
                out.buf().resize(s.required_size, 0);
            }
            Err(EncryptError::EncryptExhausted) => return Err(rustls::Error::EncryptError),
        }
    }
}
