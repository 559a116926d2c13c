//! PROXY protocol both ways, with real peers: HAProxy (`send-proxy`,
//! `send-proxy-v2`) in front of the sidecar, nginx (`listen … proxy_protocol`,
//! answering and logging `$proxy_protocol_addr`) behind it. Clients connect
//! from 127.0.0.2, so the address nginx reports can only have come through
//! both headers (the sidecar and HAProxy connect from 127.0.0.1).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::daemon::Daemon;
use common::*;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

/// HAProxy in TCP mode: each `(front, back, option)` is a frontend on
/// `front` whose one server is the sidecar on `back` with `option`
/// (`send-proxy` or `send-proxy-v2`).
fn haproxy(dir: &Path, fronts: &[(u16, u16, &str)]) -> Daemon {
    let mut cfg = String::from(
        "global\n  log stderr format short local0 info\n\
         defaults\n  mode tcp\n  log global\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n",
    );
    for (i, (front, back, option)) in fronts.iter().enumerate() {
        cfg.push_str(&format!(
            "frontend f{i}\n  bind 127.0.0.1:{front}\n  default_backend b{i}\n\
             backend b{i}\n  server s{i} 127.0.0.1:{back} {option}\n"
        ));
    }
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, cfg).unwrap();
    let ports: Vec<u16> = fronts.iter().map(|f| f.0).collect();
    Daemon::start(
        dir,
        "haproxy",
        &["-f", file.to_str().unwrap(), "-db"],
        &ports,
    )
}

/// A TCP connection to 127.0.0.1:`port` from 127.0.0.2.
async fn connect_from_2(port: u16) -> TcpStream {
    connect_from_2_as(port).await.1.unwrap()
}

/// As [`connect_from_2`], with the local address it was bound to, and the
/// connect's own outcome: a listener that resets a connection at once (an
/// untrusted PROXY sender) may have reset it before `connect` returned on a
/// busy machine, and then `connect` itself says ECONNRESET.
async fn connect_from_2_as(port: u16) -> (SocketAddr, std::io::Result<TcpStream>) {
    let s = TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let me = s.local_addr().unwrap();
    (
        me,
        s.connect(SocketAddr::from(([127, 0, 0, 1], port))).await,
    )
}

/// `GET /` over `s`; the answer's body.
async fn get<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> String {
    s.write_all(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(patience(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => body.trim().to_owned(),
        _ => panic!("not a 200 answer: {text:?}"),
    }
}

/// What a client gets back before the connection ends (closed or reset).
async fn answer(mut s: TcpStream, send: &[u8]) -> Vec<u8> {
    let _ = s.write_all(send).await;
    let mut out = Vec::new();
    let ended = tokio::time::timeout(patience(15), async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was not closed");
    out
}

fn pp_route(name: &str, listen: u16, backend: u16, keys: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nlisten = \"127.0.0.1:{listen}\"\nconnect = [\"127.0.0.1:{backend}\"]\n{keys}\n"
    )
}

#[tokio::test]
async fn haproxy_in_front_and_nginx_behind_see_the_original_client_through_v1_v2_and_tls() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let ng = free_port();
    let _nginx = Daemon::nginx_proxy_protocol(dir.path(), ng);
    let (a, b, c) = (free_port(), free_port(), free_port());
    let routes = [
        pp_route(
            "lb-v1",
            a,
            ng,
            "accept_proxy_protocol = true\nproxy_protocol = \"v1\"",
        ),
        pp_route(
            "lb-v2",
            b,
            ng,
            "accept_proxy_protocol = true\nproxy_protocol = \"v2\"",
        ),
        pp_route(
            "lb-tls",
            c,
            ng,
            &format!(
                "accept_proxy_protocol = true\nproxy_protocol = \"v2\"\n[route.listen_tls]\n{}",
                pki.listen_tls()
            ),
        ),
    ]
    .concat();
    let s = Sidecar::start(dir.path(), &routes);
    let (h1, h2, h3) = (free_port(), free_port(), free_port());
    let hp = haproxy(
        dir.path(),
        &[
            (h1, a, "send-proxy"),
            (h2, b, "send-proxy-v2"),
            (h3, c, "send-proxy-v2"),
        ],
    );

    // send-proxy (v1) in, v1 out.
    let tcp = connect_from_2(h1).await;
    let me = tcp.local_addr().unwrap();
    assert_eq!(get(tcp).await, me.to_string(), "{}", hp.output());

    // send-proxy-v2 in, v2 out.
    let tcp = connect_from_2(h2).await;
    let me = tcp.local_addr().unwrap();
    assert_eq!(get(tcp).await, me.to_string());

    // send-proxy-v2 in front of TLS termination: the header comes before
    // the ClientHello, and the TLS client never sees it.
    let tcp = connect_from_2(h3).await;
    let me = tcp.local_addr().unwrap();
    let tls = TlsConnector::from(client_config(&pki.ca_path, None))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(get(tls).await, me.to_string());

    // nginx logged each client by the address its header named; the socket
    // it saw was the sidecar's.
    let log = std::fs::read_to_string(dir.path().join("nginx/pp.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    for l in lines {
        assert!(
            l.starts_with("127.0.0.2 ") && l.ends_with(" 127.0.0.1"),
            "{l}"
        );
    }
    // The sidecar logged the original client too.
    assert!(s.wait_log(&format!("client={me}"), 10), "{}", s.logs());
    s.wait_connections("lb-tls", "ok", 1.0);
}

#[tokio::test]
async fn a_client_without_a_header_is_closed_with_reason_proxy_protocol_and_its_address_logged() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let (plain, tls) = (free_port(), free_port());
    let routes = [
        pp_route("pp", plain, free_port(), "accept_proxy_protocol = true"),
        pp_route(
            "pp-tls",
            tls,
            free_port(),
            &format!(
                "accept_proxy_protocol = true\n[route.listen_tls]\n{}",
                pki.listen_tls()
            ),
        ),
    ]
    .concat();
    let s = Sidecar::start(dir.path(), &routes);

    let tcp = TcpStream::connect(("127.0.0.1", plain)).await.unwrap();
    let me = tcp.local_addr().unwrap();
    assert_eq!(answer(tcp, b"GET / HTTP/1.0\r\n\r\n").await, b"");
    s.wait_handshake_errors("pp", "listen", "proxy_protocol", 1.0);
    s.wait_connections("pp", "handshake_error", 1.0);
    // The log is read from the sidecar's stderr by a thread: wait for it.
    assert!(s.wait_log(&format!("client={me}"), 10), "{}", s.logs());
    let logs = s.logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&format!("client={me}")) && l.contains("reason=\"proxy_protocol\""))
        .unwrap_or_else(|| panic!("no refusal logged for {me}:\n{logs}"));
    assert!(
        line.contains("no PROXY header: the connection began with byte 0x47 (text"),
        "{line}"
    );

    // A TLS client that sends no header: refused at its ClientHello.
    let tcp = TcpStream::connect(("127.0.0.1", tls)).await.unwrap();
    let r = TlsConnector::from(client_config(&pki.ca_path, None))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(r.is_err());
    s.wait_handshake_errors("pp-tls", "listen", "proxy_protocol", 1.0);
    assert!(s.wait_log("began with byte 0x16 (a TLS handshake", 10));
}

#[tokio::test]
async fn a_late_oversized_or_malformed_header_is_refused() {
    let dir = tmpdir();
    let port = free_port();
    let s = Sidecar::start(
        dir.path(),
        &pp_route(
            "pp",
            port,
            free_port(),
            "accept_proxy_protocol = true\nhandshake_timeout = \"1s\"",
        ),
    );
    let connect = || TcpStream::connect(("127.0.0.1", port));

    // Late: half a header, then nothing.
    assert_eq!(
        answer(connect().await.unwrap(), b"PROXY TCP4 10.0.0.1").await,
        b""
    );
    assert!(s.wait_log("no complete PROXY header within 1s (handshake_timeout)", 10));

    // Oversized: a v1 line without its CRLF, and a v2 header claiming 64 KiB.
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
    assert_eq!(answer(connect().await.unwrap(), &long).await, b"");
    assert!(s.wait_log("PROXY v1 header too long", 10));
    let mut v2 = tls_sidecar::proxy_protocol::V2_SIGNATURE.to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(answer(connect().await.unwrap(), &v2).await, b"");
    assert!(s.wait_log(
        "PROXY v2 header too long: 65551 bytes or more, at most 4096",
        10
    ));

    // Malformed.
    assert_eq!(
        answer(
            connect().await.unwrap(),
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n"
        )
        .await,
        b""
    );
    assert!(s.wait_log("malformed PROXY v1 header: a port is not a number", 10));

    s.wait_handshake_errors("pp", "listen", "proxy_protocol", 4.0);
}

#[tokio::test]
async fn the_accepted_header_is_never_relayed_and_its_client_is_the_one_passed_on() {
    let dir = tmpdir();
    let up = plain_echo().await;
    let (strip, pass) = (free_port(), free_port());
    let routes = [
        pp_route("strip", strip, up, "accept_proxy_protocol = true"),
        pp_route(
            "pass",
            pass,
            up,
            "accept_proxy_protocol = true\nproxy_protocol = \"v1\"",
        ),
    ]
    .concat();
    let s = Sidecar::start(dir.path(), &routes);
    use tls_sidecar::proxy_protocol::{encode, Addrs, Version};
    let lb = Addrs {
        source: "203.0.113.9:4242".parse().unwrap(),
        destination: "198.51.100.1:443".parse().unwrap(),
    };

    // Header and data in one write: the upstream gets the data only.
    let v2 = encode(Version::V2, Some(lb));
    let out = roundtrip(strip, &[v2.as_slice(), b"hello"].concat()).await;
    assert_eq!(out.unwrap(), b"hello");
    assert!(s.wait_log("client=203.0.113.9:4242", 10), "{}", s.logs());

    // The header split over two writes, data behind it: the same.
    let mut tcp = TcpStream::connect(("127.0.0.1", strip)).await.unwrap();
    tcp.write_all(&v2[..7]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tcp.write_all(&[&v2[7..], b"world"].concat()).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"world");

    // A route that also sends a header: ours names the accepted client.
    let out = roundtrip(pass, &[v2.as_slice(), b"data"].concat()).await;
    assert_eq!(
        String::from_utf8_lossy(&out.unwrap()),
        "PROXY TCP4 203.0.113.9 198.51.100.1 4242 443\r\ndata"
    );

    // A LOCAL header (a balancer's health check): the socket's addresses.
    let mut tcp = TcpStream::connect(("127.0.0.1", pass)).await.unwrap();
    let me = tcp.local_addr().unwrap();
    tcp.write_all(&[encode(Version::V2, None).as_slice(), b"x"].concat())
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("PROXY TCP4 127.0.0.1 127.0.0.1 {} {pass}\r\nx", me.port())
    );
}

/// `accept_proxy_protocol_from` (issue 25): HAProxy, connecting from
/// 127.0.0.1, is a trusted sender and its header is believed; a client
/// connecting straight from 127.0.0.2 with a forged header is closed before
/// a byte is read, logged by its own address, and counted.
#[tokio::test]
async fn only_the_listed_senders_may_send_a_proxy_header() {
    let dir = tmpdir();
    let up = plain_echo().await;
    let port = free_port();
    let s = Sidecar::start(
        dir.path(),
        &pp_route(
            "lb",
            port,
            up,
            "accept_proxy_protocol = true\naccept_proxy_protocol_from = [\"10.0.0.0/8\", \"127.0.0.1/32\", \"::1/128\"]\nproxy_protocol = \"v1\"",
        ),
    );
    let front = free_port();
    let _hp = haproxy(dir.path(), &[(front, port, "send-proxy")]);

    // Through HAProxy: the header is believed and passed on.
    let mut tcp = connect_from_2(front).await;
    let me = tcp.local_addr().unwrap();
    tcp.write_all(b"data").await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(patience(10), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with(&format!("PROXY TCP4 127.0.0.2 127.0.0.1 {} ", me.port()))
            && out.ends_with("\r\ndata"),
        "{out:?}"
    );

    // Straight from 127.0.0.2 with a forged header: closed, nothing relayed.
    let (me, tcp) = connect_from_2_as(port).await;
    let forged = b"PROXY TCP4 10.1.2.3 127.0.0.1 4242 443\r\nhello";
    match tcp {
        Ok(tcp) => assert_eq!(answer(tcp, forged).await, b""),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    s.wait_handshake_errors("lb", "listen", "proxy_protocol", 1.0);
    s.wait_connections("lb", "handshake_error", 1.0);
    let needle = "127.0.0.2 may not send a PROXY header: it is not in accept_proxy_protocol_from";
    assert!(s.wait_log(needle, 10), "{}", s.logs());
    let logs = s.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(lines[0].contains(&format!("client={me}")), "{}", lines[0]);
    assert!(
        !logs.contains("10.1.2.3"),
        "the forged address was believed:\n{logs}"
    );
}
