//! `tls-sidecar demo` as a newcomer runs it: every printed route answers an
//! echo, the admin endpoint serves metrics, `probe` passes on the config it
//! wrote, and Ctrl-C ends it cleanly and removes its temp files.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_every_mode_then_stops_cleanly_and_removes_its_files() {
    // Four consecutive ports for the routes, reserved for this process.
    let base = reserved_ports(4);
    let admin = free_port();
    let mut child = cli_command(&[
        &"demo",
        &"--base-port",
        &base.to_string(),
        &"--admin-port",
        &admin.to_string(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let deadline = Instant::now() + patience(30);
    while !printed.contains("Ctrl-C stops everything") {
        assert!(
            Instant::now() < deadline,
            "the demo did not print its table: {printed}"
        );
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("the demo exited: {printed}");
        }
        printed.push_str(&line);
    }
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    for _ in 0..200 {
        if let Some((200, _)) = http_get(admin_addr, "/readyz") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }

    // Every route the table names answers an echo through TLS.
    let mut routes = 0;
    for line in printed.lines() {
        let Some(rest) = line.trim().split_once("nc 127.0.0.1 ") else {
            continue;
        };
        let port: u16 = rest.1.split_whitespace().next().unwrap().parse().unwrap();
        let msg = format!("hello route on {port}\n");
        assert_eq!(
            roundtrip(port, msg.as_bytes()).await.unwrap(),
            msg.as_bytes(),
            "{line}"
        );
        routes += 1;
    }
    assert_eq!(routes, 4, "{printed}");
    let (status, metrics) = http_get(admin_addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    for route in ["msgserver", "confserver", "statserver", "chatserver"] {
        assert_eq!(
            metric_value(
                &metrics,
                "tls_sidecar_connections_total",
                &[("route", route), ("result", "ok")]
            ),
            Some(1.0),
            "{route}"
        );
    }

    // probe on the config the demo wrote.
    let config = printed
        .split_whitespace()
        .find(|w| w.ends_with("tls-sidecar.toml"))
        .expect("the table names the config")
        .to_owned();
    let (code, table, _) = cli(&[&"probe", &"-c", &config, &"--all"]);
    assert_eq!(code, 0, "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains(" ok ")).count(),
        4,
        "{table}"
    );

    // Ctrl-C: a clean exit, and the temp dir is gone.
    let dir = std::path::Path::new(&config).parent().unwrap().to_owned();
    assert!(dir.exists());
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + patience(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the demo did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}
