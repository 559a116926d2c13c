//! One OCSP fetch over plain HTTP (RFC 6960 appendix A.1): the DER request
//! POSTed to the responder, the DER response read back, bounded in time
//! and size. The caller checks what comes back as it checks a file.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::request::Responder;

/// The most bytes of a response read (a response with a long chain of
/// responder certificates is a few KiB).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// POSTs `request` to `responder`; the response body, all within `limit`.
pub async fn fetch(
    responder: &Responder,
    request: Vec<u8>,
    limit: Duration,
) -> Result<Vec<u8>, String> {
    match tokio::time::timeout(limit, exchange(responder, request)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{} did not answer within {}",
            responder.url,
            humantime::format_duration(limit)
        )),
    }
}

async fn exchange(responder: &Responder, request: Vec<u8>) -> Result<Vec<u8>, String> {
    let url = &responder.url;
    let tcp = TcpStream::connect((responder.host.as_str(), responder.port))
        .await
        .map_err(|e| format!("failed to connect to {url}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("failed to speak HTTP to {url}: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = if responder.host.contains(':') {
        format!("[{}]", responder.host)
    } else {
        responder.host.clone()
    };
    let host = if responder.port == 80 {
        host
    } else {
        format!("{host}:{}", responder.port)
    };
    let req = Request::post(responder.path.as_str())
        .header("host", host)
        .header("content-type", "application/ocsp-request")
        .header("accept", "application/ocsp-response")
        .body(Full::new(Bytes::from(request)))
        .map_err(|e| format!("failed to build the request to {url}: {e}"))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{url} gave no answer: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered HTTP {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| format!("failed to read the answer of {url}: {e}"))?;
        Ok(body.to_bytes().to_vec())
    }
    .await;
    driver.abort();
    result
}
