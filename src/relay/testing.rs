//! Test support shared by the buffered relay's tests (`tests`) and the
//! spliced relay's (`splice::tests`): scenarios both must pass, run over
//! whichever streams each relays.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The ends of a relay from the client (`app`) to the upstream (`peer`)
/// when the client half-closes: "request" and the client's FIN reach the
/// peer, and the peer's 100,000 bytes and end still reach the client.
pub(crate) async fn client_half_closes_and_downstream_flows<A, P>(app: &mut A, peer: &mut P)
where
    A: AsyncRead + AsyncWrite + Unpin,
    P: AsyncRead + AsyncWrite + Unpin,
{
    app.write_all(b"request").await.unwrap();
    app.shutdown().await.unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).await.unwrap(); // the client's FIN arrived
    assert_eq!(got, b"request");
    for i in 0..100u8 {
        peer.write_all(&[i; 1000]).await.unwrap(); // and the other way still flows
    }
    peer.shutdown().await.unwrap();
    let mut back = Vec::new();
    app.read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), 100_000);
}
