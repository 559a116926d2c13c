//! The engine's three buffers (incoming ciphertext, decrypted plaintext
//! waiting for the reader, outgoing records), their sizes, and the
//! per-thread pools they come from. A buffer is held only while bytes are
//! in it; an idle connection holds none.

use crate::pool::{self, Pool};

/// The largest TLS record on the wire: header, 16 KiB of plaintext and the
/// largest expansion TLS 1.2 allows.
pub(crate) const MAX_RECORD: usize = 5 + 16 * 1024 + 2048;
/// Incoming ciphertext buffer: four full records and the start of a fifth,
/// so one socket read can carry a whole batch (`STASH_SIZE`) of records, as
/// one write carries `OUT_SIZE` of them the other way.
pub const IN_SIZE: usize = 4 * MAX_RECORD + 4096;
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
pub(crate) const RECORD_PLAIN: usize = 16 * 1024;
/// Bytes a record adds to its plaintext, at most (header, TLS 1.2 explicit
/// nonce, tag, TLS 1.3 content type), rounded up.
pub(crate) const RECORD_OVERHEAD: usize = 64;
/// Outgoing buffer: four full records per socket write.
pub const OUT_SIZE: usize = 4 * (RECORD_PLAIN + RECORD_OVERHEAD);
/// Decrypted plaintext waiting for the reader, or for one write to the
/// other side (a splice gathers up to four records here, so that they
/// leave in one write rather than one write per record). Grows only while
/// a reader is slower than the incoming buffer is full, so at most about
/// `IN_SIZE`.
pub const STASH_SIZE: usize = 4 * RECORD_PLAIN;

thread_local! {
    /// Buffers kept per thread and kind for reuse; beyond 16 each they are
    /// freed (at most about 2 MiB per thread stays after a burst).
    pub(super) static POOL_IN: Pool<Vec<u8>> = const { Pool::new(16) };
    static POOL_OUT: Pool<Vec<u8>> = const { Pool::new(16) };
    static POOL_STASH: Pool<Vec<u8>> = const { Pool::new(16) };
}

/// A kind of buffer: its size and the pool of them.
pub(super) struct Kind {
    size: usize,
    pool: &'static pool::Local<Vec<u8>>,
}

/// Ciphertext read from the socket, not yet processed by rustls.
pub(super) const INCOMING: Kind = Kind {
    size: IN_SIZE,
    pool: &POOL_IN,
};
/// Records encoded or encrypted, not yet written to the socket.
pub(super) const OUTGOING: Kind = Kind {
    size: OUT_SIZE,
    pool: &POOL_OUT,
};
/// Plaintext decrypted, not yet taken by the reader.
pub(super) const STASH: Kind = Kind {
    size: STASH_SIZE,
    pool: &POOL_STASH,
};

/// One of a client's buffers while it holds one; it goes back to its pool
/// when the client is dropped (or gives up its connection to the kernel).
pub struct Slot {
    buf: Option<Vec<u8>>,
    kind: &'static Kind,
}

impl Slot {
    /// The buffer, a zeroed one of the kind's size from the pool if none is
    /// held.
    fn get(&mut self) -> &mut Vec<u8> {
        let kind = self.kind;
        self.buf.get_or_insert_with(|| {
            pool::take(kind.pool)
                .filter(|b| b.len() == kind.size)
                .unwrap_or_else(|| vec![0; kind.size])
        })
    }

    /// Gives the buffer back to its pool now. One grown past its kind's
    /// size (for a handshake message, a long stash) is freed instead.
    fn release(&mut self) {
        if let Some(b) = self.buf.take().filter(|b| b.len() == self.kind.size) {
            pool::give(self.kind.pool, b);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// A buffer and the bytes in it not yet used up, `buf[start..end]`:
/// ciphertext not yet processed, plaintext not yet read, records not yet
/// written. Using bytes up moves `start` (no copy); only
/// [`Window::compact`] moves them to the front.
pub(super) struct Window {
    slot: Slot,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Window {
    pub(super) fn new(kind: &'static Kind) -> Window {
        Window {
            slot: Slot { buf: None, kind },
            start: 0,
            end: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    /// The bytes not yet used up.
    pub(super) fn pending(&self) -> &[u8] {
        self.slot
            .buf
            .as_ref()
            .map_or(&[], |b| &b[self.start..self.end])
    }

    pub(super) fn pending_mut(&mut self) -> &mut [u8] {
        match &mut self.slot.buf {
            Some(b) => &mut b[self.start..self.end],
            None => &mut [],
        }
    }

    /// Marks `n` pending bytes used up.
    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The buffer, taken from the pool if none is held.
    pub(super) fn buf(&mut self) -> &mut Vec<u8> {
        self.slot.get()
    }

    /// Bytes free after the pending ones.
    pub(super) fn free(&self) -> usize {
        self.slot.buf.as_ref().map_or(0, |b| b.len() - self.end)
    }

    /// Moves the pending bytes to the front of the buffer.
    pub(super) fn compact(&mut self) {
        if let (Some(b), true) = (&mut self.slot.buf, self.start > 0) {
            b.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Makes room for `n` more bytes after the pending ones.
    pub(super) fn reserve(&mut self, n: usize) {
        self.compact();
        let end = self.end;
        let buf = self.buf();
        if buf.len() - end < n {
            buf.resize(end + n, 0);
        }
    }

    /// Appends `data` to the pending bytes.
    pub(super) fn push(&mut self, data: &[u8]) {
        self.reserve(data.len());
        let end = self.end;
        self.buf()[end..end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// Gives the buffer back if nothing is pending.
    pub(super) fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.slot.release();
        }
    }

    /// After the handshake: bytes left in a buffer grown for it (the
    /// first records after the server's Finished) move to one of the usual
    /// size, so an established connection never holds the larger one.
    pub(super) fn shrink(&mut self) {
        let size = self.slot.kind.size;
        // Held bytes over `size` are not reachable (the handshake is done,
        // so they are at most what one read brought after it): kept.
        if self.slot.buf.as_ref().is_none_or(|b| b.len() <= size) || self.len() > size {
            return;
        }
        // Freed on return: the pool keeps only buffers of the kind's size.
        let grown = self.slot.buf.take().expect("a grown buffer");
        let (start, end) = (self.start, self.end);
        self.buf()[..end - start].copy_from_slice(&grown[start..end]);
        self.start = 0;
        self.end = end - start;
    }

    pub(super) fn capacity(&self) -> usize {
        self.slot.buf.as_ref().map_or(0, Vec::capacity)
    }
}
