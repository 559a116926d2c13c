//! Reading the head of a TCP stream (a load balancer's PROXY header, a
//! forward proxy's answer to CONNECT) without taking a byte past it.
//!
//! The bytes after the head belong to someone else (the client's TLS
//! ClientHello, the upstream's banner) and must stay in the socket, where
//! the TLS engine, the upgrade exchange or splice(2) find them. So the head
//! is peeked (MSG_PEEK), fed to a sans-io parser, and only the bytes it
//! claims are read off; this is what HAProxy does with the PROXY header.

use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A sans-io parser's answer to the bytes it was fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed<T> {
    /// Every byte given so far belongs to the head; it is not complete.
    NeedMore,
    /// The head is complete, with the first `.1` bytes of the last input.
    Done(T, usize),
}

/// Why no head was read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError<E> {
    #[error("the peer closed the connection before the end of it")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The parser refused the bytes.
    #[error("{0}")]
    Bad(E),
}

/// Feeds `parse` what arrives on `tcp` (at most `max` bytes at a time)
/// until it is done; reads off exactly the bytes it claimed.
pub async fn read_head<T, E>(
    tcp: &mut TcpStream,
    max: usize,
    mut parse: impl FnMut(&[u8]) -> Result<Fed<T>, E>,
) -> Result<T, HeadError<E>> {
    let mut buf = vec![0u8; max];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        match parse(&buf[..n]).map_err(HeadError::Bad)? {
            // All peeked bytes are head: take them, so that the next peek
            // waits for new ones instead of seeing these again.
            Fed::NeedMore => {
                tcp.read_exact(&mut buf[..n]).await?;
            }
            Fed::Done(head, used) => {
                tcp.read_exact(&mut buf[..used]).await?;
                return Ok(head);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A head of "HEAD\n" sent in two pieces, with data right behind it in
    /// the second piece: the data stays in the socket.
    #[tokio::test]
    async fn a_head_split_across_writes_is_read_and_the_rest_stays_in_the_socket() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let writer = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"HE").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            c.write_all(b"AD\nafter").await.unwrap();
            c
        });
        let (mut s, _) = l.accept().await.unwrap();
        let mut seen = Vec::new();
        let got = read_head(&mut s, 64, |b: &[u8]| {
            let before = seen.len();
            seen.extend_from_slice(b);
            Ok::<_, ()>(match seen.iter().position(|&c| c == b'\n') {
                Some(i) => Fed::Done(seen[..=i].to_vec(), i + 1 - before),
                None => Fed::NeedMore,
            })
        })
        .await
        .unwrap();
        assert_eq!(got, b"HEAD\n");
        let _c = writer.await.unwrap();
        let mut rest = [0u8; 5];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"after");
    }
}
