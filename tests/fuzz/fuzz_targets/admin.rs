//! The admin endpoint's request handling on arbitrary bytes: hyper's
//! parser, then the Host and browser guards and the routing of
//! `admin::connection`, over an in-memory stream. It never panics, always
//! ends (the stream is closed after the input), and whatever it answers is
//! HTTP/1.1 (HTTP/1.0 to an HTTP/1.0 request) — never a reload: the
//! supervisor side of `POST /reload` is never listening here, so a request
//! that got through every guard would be answered 503 and is checked to
//! have come from loopback without any browser header.
#![no_main]

use std::sync::{Arc, OnceLock};

use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tls_sidecar::admin::{connection, AdminState, Marker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn state() -> AdminState {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    let metrics = HANDLE
        .get_or_init(|| metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle())
        .clone();
    let (reload, _) = tokio::sync::mpsc::channel(1);
    AdminState {
        metrics,
        process: Arc::new(metrics_process::Collector::default()),
        board: Arc::new(tls_sidecar::status::Board::default()),
        reload,
        hosts: vec!["gms.example".to_owned()].into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let peer = "127.0.0.1:40000".parse().unwrap();
        let serve = tokio::spawn(connection(TokioIo::new(server), peer, state(), Marker::default()));
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut out = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), client.read_to_end(&mut out));
        assert!(read.await.is_ok(), "the connection did not end");
        let _ = serve.await;
        if !out.is_empty() {
            // hyper answers an HTTP/1.0 request in HTTP/1.0.
            assert!(
                out.starts_with(b"HTTP/1.1 ") || out.starts_with(b"HTTP/1.0 "),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
        }
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("reloaded\n"), "a reload was answered");
    });
});
