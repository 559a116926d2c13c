//! The engine's three buffers (incoming ciphertext, decrypted plaintext
//! waiting for the reader, outgoing records), their sizes, and the
//! per-thread pools they come from. A buffer is held only while bytes are
//! in it; an idle connection holds none.

use crate::pool::{self, Pool};

/// The largest TLS record on the wire: header, 16 KiB of plaintext and the
/// largest expansion TLS 1.2 allows.
pub(crate) const MAX_RECORD: usize = 5 + 16 * 1024 + 2048;
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
pub(crate) const RECORD_PLAIN: usize = 16 * 1024;
/// Bytes a record adds to its plaintext, at most (header, TLS 1.2 explicit
/// nonce, tag, TLS 1.3 content type), rounded up.
pub(crate) const RECORD_OVERHEAD: usize = 64;
/// Outgoing buffer: four full records per socket write.
pub const OUT_SIZE: usize = 4 * (RECORD_PLAIN + RECORD_OVERHEAD);
/// Decrypted plaintext waiting for the reader (grows only while the reader
/// is slower than the incoming buffer is full, so at most about `IN_SIZE`).
pub(crate) const STASH_SIZE: usize = RECORD_PLAIN;

thread_local! {
    /// Buffers kept per thread and kind for reuse; beyond 16 each they are
    /// freed (at most about 2 MiB per thread stays after a burst).
    pub(super) static POOL_IN: Pool<Vec<u8>> = const { Pool::new(16) };
    static POOL_OUT: Pool<Vec<u8>> = const { Pool::new(16) };
    static POOL_STASH: Pool<Vec<u8>> = const { Pool::new(16) };
}

/// A zeroed buffer of `size` bytes (len == size).
fn take_full(pool: &'static pool::Local<Vec<u8>>, size: usize) -> Vec<u8> {
    pool::take(pool)
        .filter(|b| b.len() == size)
        .unwrap_or_else(|| vec![0; size])
}

/// A fresh incoming buffer of the usual size.
fn take_in() -> Vec<u8> {
    take_full(&POOL_IN, IN_SIZE)
}

fn take_out() -> Vec<u8> {
    take_full(&POOL_OUT, OUT_SIZE)
}

/// Returns an incoming buffer; one grown for a handshake is freed instead.
fn give_back_in(buf: Vec<u8>) {
    if buf.len() == IN_SIZE {
        pool::give(&POOL_IN, buf);
    }
}

fn give_back_out(buf: Vec<u8>) {
    pool::give(&POOL_OUT, buf);
}

fn give_back_stash(buf: Vec<u8>) {
    pool::give(&POOL_STASH, buf);
}

/// One of a client's buffers while it holds one; it goes back to its pool
/// when the client is dropped (or gives up its connection to the kernel).
pub struct Slot {
    buf: Option<Vec<u8>>,
    back: fn(Vec<u8>),
}

impl Slot {
    pub(crate) fn new(back: fn(Vec<u8>)) -> Slot {
        Slot { buf: None, back }
    }

    /// Gives the buffer back to its pool now.
    fn release(&mut self) {
        if let Some(b) = self.buf.take() {
            (self.back)(b);
        }
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
        self.release();
    }
}

/// A buffer of fixed length and the bytes in it not yet used up,
/// `buf[start..end]`: ciphertext read but not yet processed by rustls, or
/// records encoded but not yet written. Using bytes up moves `start` (no
/// copy); only [`Window::compact`] moves them to the front.
pub(super) struct Window {
    slot: Slot,
    take: fn() -> Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Window {
    /// For ciphertext read from the socket.
    pub(super) fn incoming() -> Window {
        Window::new(take_in, give_back_in)
    }

    /// For records to write to the socket.
    pub(super) fn outgoing() -> Window {
        Window::new(take_out, give_back_out)
    }

    fn new(take: fn() -> Vec<u8>, back: fn(Vec<u8>)) -> Window {
        Window {
            slot: Slot::new(back),
            take,
            start: 0,
            end: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The bytes not yet used up.
    pub(super) fn pending(&self) -> &[u8] {
        self.slot.as_ref().map_or(&[], |b| &b[self.start..self.end])
    }

    pub(super) fn pending_mut(&mut self) -> &mut [u8] {
        match &mut *self.slot {
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
        let take = self.take;
        self.slot.get_or_insert_with(take)
    }

    /// Bytes free after the pending ones.
    pub(super) fn free(&self) -> usize {
        self.slot.as_ref().map_or(0, |b| b.len() - self.end)
    }

    /// Moves the pending bytes to the front of the buffer.
    pub(super) fn compact(&mut self) {
        if self.start > 0 {
            if let Some(b) = &mut *self.slot {
                b.copy_within(self.start..self.end, 0);
            }
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

    /// Gives the buffer back if nothing is pending.
    pub(super) fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.start = 0;
            self.end = 0;
            self.slot.release();
        }
    }

    /// After the handshake: bytes left in a buffer grown for it (the
    /// first records after the server's Finished) move to one of the usual
    /// size, so an established connection never holds the larger one.
    pub(super) fn shrink(&mut self) {
        let Some(b) = &*self.slot else { return };
        let held = &b[self.start..self.end];
        if b.len() <= IN_SIZE || held.len() > IN_SIZE {
            // Over IN_SIZE is not reachable: the handshake is done, so what
            // is held is at most what one read brought after it; keep it
            // rather than fail.
            return;
        }
        let mut small = take_in();
        small[..held.len()].copy_from_slice(held);
        self.end = held.len();
        self.start = 0;
        // The grown buffer is freed (the pool keeps only `IN_SIZE` ones).
        *self.slot = Some(small);
    }

    pub(super) fn capacity(&self) -> usize {
        self.slot.as_ref().map_or(0, Vec::capacity)
    }
}

/// Decrypted plaintext the reader has not taken yet: `buf[pos..]`.
pub(super) struct Stash {
    slot: Slot,
    pos: usize,
}

impl Stash {
    pub(super) fn new() -> Stash {
        Stash {
            slot: Slot::new(give_back_stash),
            pos: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.slot.as_ref().map_or(0, |s| s.len() - self.pos)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn pending(&self) -> &[u8] {
        self.slot.as_ref().map_or(&[], |s| &s[self.pos..])
    }

    pub(super) fn push(&mut self, data: &[u8]) {
        self.slot
            .get_or_insert_with(|| {
                pool::take(&POOL_STASH)
                    .map(|mut b| {
                        b.clear();
                        b
                    })
                    .unwrap_or_else(|| Vec::with_capacity(STASH_SIZE))
            })
            .extend_from_slice(data);
    }

    /// Marks `n` bytes taken; an emptied stash gives its buffer back.
    pub(super) fn consume(&mut self, n: usize) {
        self.pos += n;
        self.release_if_empty();
    }

    pub(super) fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.pos = 0;
            self.slot.release();
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.slot.as_ref().map_or(0, Vec::capacity)
    }
}
