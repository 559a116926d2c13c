//! The relay's state handling on arbitrary event sequences: reads of any
//! size, EOFs, errors and stalls on either side, short writes. Whatever the
//! order, it ends, never panics, and every byte it reports carried arrived
//! in order at the other side.
#![no_main]

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A side scripted by fuzz input: reads play back `reads`, then EOF or an
/// error; writes accept at most `write_max` bytes at a time.
struct Side {
    reads: VecDeque<Vec<u8>>,
    end: Option<io::ErrorKind>,
    write_max: usize,
    written: Vec<u8>,
    sent: Vec<u8>,
}

impl AsyncRead for Side {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.reads.pop_front() {
            Some(mut b) => {
                let n = b.len().min(buf.remaining());
                buf.put_slice(&b[..n]);
                self.sent.extend_from_slice(&b[..n]);
                if n < b.len() {
                    let rest = b.split_off(n);
                    self.reads.push_front(rest);
                }
                Poll::Ready(Ok(()))
            }
            None => match self.end {
                Some(k) => Poll::Ready(Err(k.into())),
                None => Poll::Ready(Ok(())),
            },
        }
    }
}

impl AsyncWrite for Side {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let n = b.len().min(self.write_max.max(1));
        self.written.extend_from_slice(&b[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn side(data: &mut &[u8]) -> Side {
    let mut reads = VecDeque::new();
    let take = |d: &mut &[u8]| -> u8 {
        let (h, t) = d.split_first().map(|(h, t)| (*h, t)).unwrap_or((0, &[]));
        *d = t;
        h
    };
    let count = take(data) % 8;
    for _ in 0..count {
        let len = (take(data) as usize * 97) % 40_000;
        reads.push_back((0..len).map(|i| i as u8).collect());
    }
    let end = match take(data) % 4 {
        0 => None,
        1 => Some(io::ErrorKind::UnexpectedEof),
        2 => Some(io::ErrorKind::ConnectionReset),
        _ => Some(io::ErrorKind::InvalidData),
    };
    let write_max = take(data) as usize * 64;
    Side { reads, end, write_max, written: Vec::new(), sent: Vec::new() }
}

impl tls_sidecar::relay::Source for Side {}

fuzz_target!(|data: &[u8]| {
    let mut d = data;
    let mut client = side(&mut d);
    let mut upstream = side(&mut d);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let out = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(5),
            tls_sidecar::relay::relay(&mut client, &mut upstream, Duration::from_secs(3600), &()),
        )
        .await
        .expect("the relay ended")
    });
    assert_eq!(out.upstream_bytes as usize, upstream.written.len());
    assert_eq!(out.downstream_bytes as usize, client.written.len());
    assert!(client.sent.starts_with(&upstream.written), "client → upstream bytes in order");
    assert!(upstream.sent.starts_with(&client.written), "upstream → client bytes in order");
});
