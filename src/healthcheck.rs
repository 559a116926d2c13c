//! The `healthcheck` command: a minimal HTTP/1.1 GET for container images
//! without curl (distroless). Healthy is a `200` within 3 s.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the whole exchange may take.
const WITHIN: Duration = Duration::from_secs(3);

/// `GET url`: `Ok` on a 200, else why not (the status line, the error, or
/// the time out).
pub async fn get(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("only http:// URLs, not {url:?}"));
    };
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(host).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        s.take(4096).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    match tokio::time::timeout(WITHIN, attempt).await {
        Ok(Ok(b)) if b.starts_with(b"HTTP/1.1 200") => Ok(()),
        Ok(Ok(b)) => {
            let status = b.split(|c| *c == b'\n').next().unwrap_or_default();
            Err(String::from_utf8_lossy(status).trim().to_owned())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", WITHIN.as_secs())),
    }
}
