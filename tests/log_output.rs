//! Logs fit where they go (issue 14, item 5 of "what was seen"): a log
//! written to a file, journald or a container runtime carries no ANSI
//! colour codes, in text or JSON, even with `NO_COLOR` unset.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs the real binary with stderr going to a file and `NO_COLOR` unset,
/// makes it log at every level it uses (start, a refused connection, a
/// drain), and returns what it wrote.
fn log_to_file(format: &str) -> String {
    let dir = tmpdir();
    let admin = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let port = free_port();
    let dead = free_port();
    let routes = route("dead", port, &[format!("127.0.0.1:{dead}")], "");
    let config = dir.path().join("tls-sidecar.toml");
    let text = config_text(admin, "", &routes, "debug").replace(
        "level = \"debug\"",
        &format!("level = \"debug\"\nformat = \"{format}\""),
    );
    std::fs::write(&config, text).unwrap();
    let log_path = dir.path().join("stderr.log");
    // Colour is on unless NO_COLOR says otherwise: a file gets none anyway.
    let mut child = cli_command(&[&"run", &"-c", &config])
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + patience(20);
    while http_get(admin, "/readyz").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "sidecar not ready");
        std::thread::sleep(Duration::from_millis(25));
    }
    // A connection whose upstream refuses: a warning with fields.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(patience(10))).unwrap();
    let _ = std::io::Read::read(&mut c, &mut [0u8; 16]);
    let deadline = Instant::now() + patience(10);
    loop {
        let m = http_get(admin, "/metrics").unwrap().1;
        if metric_value(
            &m,
            "tls_sidecar_connections_total",
            &[("route", "dead"), ("result", "connect_error")],
        ) == Some(1.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no connect_error counted");
        std::thread::sleep(Duration::from_millis(25));
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let _ = child.wait();
    std::fs::read_to_string(&log_path).unwrap()
}

#[test]
fn a_text_log_written_to_a_file_has_no_escape_codes() {
    let log = log_to_file("text");
    assert!(log.contains("serving"), "log: {log}");
    assert!(log.contains("connect"), "log: {log}");
    let held = !log.contains('\x1b');
    Summary::new("a_text_log_written_to_a_file_has_no_escape_codes").row(
        "Text log written to a file (journald, kubectl logs)",
        "`run` with stderr to a file and NO_COLOR unset; start, a refused upstream, SIGTERM",
        "no ANSI escape code",
        &format!(
            "{} ESC bytes in {} lines",
            log.matches('\x1b').count(),
            log.lines().count()
        ),
        held,
        "",
    );
    assert!(held, "ESC in a log written to a file: {log:?}");
}

#[test]
fn a_json_log_written_to_a_file_is_plain_json_lines() {
    let log = log_to_file("json");
    assert!(!log.contains('\x1b'), "ESC in a JSON log: {log:?}");
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 3, "log: {log}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["level"].is_string(), "{line}");
    }
}
