//! The thin async shell around the engine: reads only the side the engine
//! asks for, writes and flushes what it says. Timeouts are the caller's
//! (`handshake_timeout` covers the exchange and the TLS handshake).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::engine::{Engine, Next, UpgradeError, Upgraded};
use super::script::Script;
use super::Limits;

/// Runs `script` between `client` and `upstream`.
pub async fn drive<C, U>(
    script: &Script,
    client: &mut C,
    upstream: &mut U,
    limits: Limits,
) -> Result<Upgraded, UpgradeError>
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut engine = Engine::new(script, limits);
    let mut buf = [0u8; 2048];
    loop {
        match engine.step() {
            Next::Write {
                upstream: up,
                client: down,
            } => {
                if !down.is_empty() {
                    client.write_all(&down).await?;
                    client.flush().await?;
                }
                if !up.is_empty() {
                    upstream.write_all(&up).await?;
                    upstream.flush().await?;
                }
            }
            Next::ReadUpstream => match upstream.read(&mut buf).await? {
                0 => engine.upstream_eof(),
                n => engine.upstream_data(&buf[..n]),
            },
            Next::ReadClient => match client.read(&mut buf).await? {
                0 => engine.client_eof(),
                n => engine.client_data(&buf[..n]),
            },
            Next::Done(u) => return Ok(u),
            Next::Failed(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Profile;
    use crate::upgrade::builtin;

    #[tokio::test]
    async fn smtp_over_duplex_streams_relays_the_greeting_and_keeps_the_clients_ehlo() {
        let script = builtin(Profile::Smtp, "sidecar.example");
        let (mut client, mut client_app) = tokio::io::duplex(4096);
        let (mut upstream, mut server) = tokio::io::duplex(4096);
        let srv = tokio::spawn(async move {
            server
                .write_all(b"220-mail.example ESMTP\r\n220 ready\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 256];
            while !got.ends_with(b"STARTTLS\r\n") {
                let n = server.read(&mut b).await.unwrap();
                got.extend_from_slice(&b[..n]);
                if got.ends_with(b"EHLO sidecar.example\r\n") {
                    server
                        .write_all(b"250-mail.example\r\n250 STARTTLS\r\n")
                        .await
                        .unwrap();
                }
            }
            server.write_all(b"220 go ahead\r\n").await.unwrap();
            got
        });
        let app = tokio::spawn(async move {
            let mut greeting = [0u8; 35];
            client_app.read_exact(&mut greeting).await.unwrap();
            client_app.write_all(b"EHLO app\r\n").await.unwrap();
            (greeting, client_app)
        });
        let done = drive(&script, &mut client, &mut upstream, Limits::default())
            .await
            .unwrap();
        let (greeting, _keep) = app.await.unwrap();
        assert_eq!(&greeting, b"220-mail.example ESMTP\r\n220 ready\r\n");
        assert_eq!(srv.await.unwrap(), b"EHLO sidecar.example\r\nSTARTTLS\r\n");
        // The client's EHLO was not read by the exchange: it waits in the
        // stream (or in client_early) for the TLS session.
        let mut rest = done.client_early;
        let mut b = [0u8; 64];
        if rest.is_empty() {
            let n = client.read(&mut b).await.unwrap();
            rest.extend_from_slice(&b[..n]);
        }
        assert_eq!(rest, b"EHLO app\r\n");
    }
}
