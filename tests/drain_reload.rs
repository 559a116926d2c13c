//! Running like a native, through the real binary: the drain delay after
//! SIGTERM (readiness first, then the listeners), the config file watch
//! (in-place edits and a ConfigMap's `..data` swap), and `tls-sidecar
//! reload` (validate first, then ask, then report the running process's
//! verdict) by `POST /reload` and by `--pid-file`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A plain route `name` on a fresh port to `upstream`: (port, config text).
fn echo_route(name: &str, upstream: u16) -> (u16, String) {
    let p = free_port();
    (p, route(name, p, &[format!("127.0.0.1:{upstream}")], ""))
}

/// Whether a new client on `port` gets its bytes echoed.
async fn served(port: u16) -> bool {
    matches!(
        tokio::time::timeout(patience(10), roundtrip(port, b"ping")).await,
        Ok(Ok(ref b)) if b == b"ping"
    )
}

fn reloads(s: &Sidecar, result: &str) -> f64 {
    s.metric("tls_sidecar_config_reloads_total", &[("result", result)])
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_drain_delay_readiness_fails_first_new_clients_are_still_served_then_refused() {
    const DELAY: Duration = Duration::from_secs(6);
    let dir = tmpdir();
    let up = plain_echo().await;
    let (p, body) = echo_route("drain", up);
    let mut s = Sidecar::start(dir.path(), &body);
    s.reload("drain_delay = \"6s\"", &body, 1.0);
    let mut held = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    held.write_all(b"hi").await.unwrap();
    let mut b = [0u8; 2];
    held.read_exact(&mut b).await.unwrap();

    let t0 = Instant::now();
    s.signal("TERM");
    let mut flipped = None;
    while t0.elapsed() < Duration::from_secs(5) {
        if let Some((503, _)) = http_get(s.admin, "/readyz") {
            flipped = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let flipped = flipped.expect("readiness fails at once after SIGTERM");
    // Opened after readiness failed, within the delay: served.
    assert!(
        served(p).await,
        "a client during the drain delay is served; log:\n{}",
        s.logs()
    );
    let served_at = t0.elapsed();
    assert!(
        served_at < DELAY,
        "the check ran inside the delay ({served_at:?}); machine too slow to tell"
    );
    // Then the listener closes: wait for the first refusal.
    let refused_at = loop {
        if TcpStream::connect(("127.0.0.1", p)).await.is_err() {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "never refused");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        refused_at >= DELAY,
        "refused only after drain_delay: readiness flipped at {flipped:?}, refused at {refused_at:?}"
    );
    // The connection opened before SIGTERM carries on in the grace period.
    held.write_all(b"after").await.unwrap();
    let mut b = [0u8; 5];
    held.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"after");
    drop(held);
    assert_eq!(s.wait_exit(15), Some(0), "{}", s.logs());
    assert!(s.has_log("listeners keep accepting for drain_delay"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_ends_the_drain_delay_early() {
    let dir = tmpdir();
    let up = plain_echo().await;
    let (_, body) = echo_route("drain2", up);
    let mut s = Sidecar::start(dir.path(), &body);
    s.reload("drain_delay = \"1h\"", &body, 1.0);
    s.signal("TERM");
    assert!(s.wait_log("listeners keep accepting for drain_delay", 10));
    s.signal("TERM");
    assert_eq!(s.wait_exit(15), Some(0), "{}", s.logs());
    assert!(s.has_log("second signal: ending the drain delay early"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_config_file_is_reloaded_without_a_signal_and_a_bad_edit_is_refused_once() {
    let dir = tmpdir();
    let up = plain_echo().await;
    let (p1, one) = echo_route("one", up);
    let (p2, two) = echo_route("two", up);
    let (config, admin) = write_config(dir.path(), "watch_config = true", &one, "debug");
    let s = Sidecar::spawn(&config, admin, &[]);
    s.wait_ready();
    assert!(!served(p2).await);

    s.rewrite("watch_config = true", &format!("{one}{two}"));
    s.wait_metric("tls_sidecar_config_reloads_total", &[("result", "ok")], 1.0);
    assert!(served(p2).await, "{}", s.logs());
    assert!(s.has_log("trigger=\"the config file changed\""));

    std::fs::write(&s.config, "this is = = not toml").unwrap();
    s.wait_metric(
        "tls_sidecar_config_reloads_total",
        &[("result", "error")],
        1.0,
    );
    assert!(
        served(p1).await && served(p2).await,
        "the old config serves"
    );
    // Counted once per change, not once per poll.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(reloads(&s, "error"), 1.0);
    assert_eq!(reloads(&s, "ok"), 1.0);
    assert!(
        s.has_log("config reload refused, the previous config keeps serving"),
        "{}",
        s.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_data_swap_reloads_and_watch_config_false_turns_the_watch_off() {
    let dir = tmpdir();
    let d = dir.path();
    let up = plain_echo().await;
    let (_, one) = echo_route("one", up);
    let (p2, two) = echo_route("two", up);
    let (p3, three) = echo_route("three", up);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // The kubelet's layout of a mounted ConfigMap.
    let publish = |version: u32, top: &str, routes: &str| {
        let v = format!("..v{version}");
        std::fs::create_dir(d.join(&v)).unwrap();
        std::fs::write(
            d.join(&v).join("tls-sidecar.toml"),
            config_text(admin, top, routes, "debug"),
        )
        .unwrap();
        std::os::unix::fs::symlink(&v, d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    };
    publish(1, "watch_config = true", &one);
    std::os::unix::fs::symlink("..data/tls-sidecar.toml", d.join("tls-sidecar.toml")).unwrap();
    let s = Sidecar::spawn(&d.join("tls-sidecar.toml"), admin, &[]);
    s.wait_ready();

    publish(2, "watch_config = true", &format!("{one}{two}"));
    s.wait_metric("tls_sidecar_config_reloads_total", &[("result", "ok")], 1.0);
    assert!(served(p2).await, "{}", s.logs());

    // watch_config = false: this change is read (it is the watch's last),
    // the next one is not, until SIGHUP.
    publish(3, "watch_config = false", &format!("{one}{two}"));
    s.wait_metric("tls_sidecar_config_reloads_total", &[("result", "ok")], 2.0);
    publish(4, "watch_config = false", &format!("{one}{two}{three}"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(reloads(&s, "ok"), 2.0, "{}", s.logs());
    assert!(!served(p3).await);
    s.signal("HUP");
    s.wait_metric("tls_sidecar_config_reloads_total", &[("result", "ok")], 3.0);
    assert!(served(p3).await, "{}", s.logs());
}

/// Runs `tls-sidecar reload ARGS`: (exit code, stdout, stderr).
fn reload_cmd(args: &[&str]) -> (i32, String, String) {
    let mut cmd = cli_command(&[&"reload"]);
    cmd.args(args);
    cli_output(cmd)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_validates_first_then_reports_the_running_sidecars_verdict() {
    let dir = tmpdir();
    let up = plain_echo().await;
    let (_, one) = echo_route("one", up);
    let (p2, two) = echo_route("two", up);
    let s = Sidecar::start(dir.path(), &one);
    // The watch off (the harness's default, said here as the test relies on
    // it), so only `reload` makes the process read the file.
    s.reload("watch_config = false", &one, 1.0);
    let cfg = path(&s.config);

    // Valid: applied before the command returns.
    s.rewrite("watch_config = false", &format!("{one}{two}"));
    let (code, out, err) = reload_cmd(&["-c", cfg]);
    assert_eq!(
        (code, out.trim()),
        (0, &*format!("reloaded {cfg}")),
        "{err}"
    );
    assert!(served(p2).await, "{}", s.logs());
    assert_eq!(reloads(&s, "ok"), 2.0);

    // Invalid: refused here, the running process is not asked.
    s.rewrite("watch_config = false\ndrain_delay = \"-1s\"", &one);
    let (code, _, err) = reload_cmd(&["-c", cfg]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("key `drain_delay`: \"-1s\": a duration cannot be negative")
            && err.contains("nothing was reloaded"),
        "{err}"
    );
    assert_eq!((reloads(&s, "ok"), reloads(&s, "error")), (2.0, 0.0));
    assert!(served(p2).await);

    // Valid as a file, refused by the running process (the port is taken).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let three = route("three", port, &[format!("127.0.0.1:{up}")], "");
    s.rewrite("watch_config = false", &format!("{one}{two}{three}"));
    let (code, _, err) = reload_cmd(&["-c", cfg]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("reload refused, the previous config keeps serving")
            && err.contains("failed to bind route \"three\""),
        "{err}"
    );
    assert_eq!(reloads(&s, "error"), 1.0);
    assert!(served(p2).await, "the previous config keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_pid_file_signals_that_process_and_waits_for_its_result() {
    let dir = tmpdir();
    let up = plain_echo().await;
    let (_, one) = echo_route("one", up);
    let (p2, two) = echo_route("two", up);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("tls-sidecar.toml");
    let pid_file = dir.path().join("tls-sidecar.pid");
    std::fs::write(
        &config,
        config_text(admin, "watch_config = false", &one, "debug"),
    )
    .unwrap();
    let mut s = Sidecar::spawn_args(&config, admin, &[], &["--pid-file", path(&pid_file)]);
    s.wait_ready();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        s.pid().to_string()
    );
    let args = ["-c", path(&config), "--pid-file", path(&pid_file)];

    std::fs::write(
        &config,
        config_text(
            admin,
            "watch_config = false",
            &format!("{one}{two}"),
            "debug",
        ),
    )
    .unwrap();
    let (code, _, err) = reload_cmd(&args);
    assert_eq!(code, 0, "{err}\n{}", s.logs());
    assert!(served(p2).await);
    assert!(s.has_log("trigger=\"SIGHUP\""), "{}", s.logs());

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let three = route("three", port, &[format!("127.0.0.1:{up}")], "");
    std::fs::write(
        &config,
        config_text(
            admin,
            "watch_config = false",
            &format!("{one}{two}{three}"),
            "debug",
        ),
    )
    .unwrap();
    let (code, _, err) = reload_cmd(&args);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("failed to bind route \"three\""), "{err}");

    s.signal("TERM");
    assert_eq!(s.wait_exit(15), Some(0));
    assert!(!pid_file.exists(), "the pid file is removed at exit");
}

#[test]
fn reload_without_an_admin_endpoint_or_a_running_sidecar_says_so() {
    let dir = tmpdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:1\"\nconnect = [\"127.0.0.1:2\"]\n",
    )
    .unwrap();
    let (code, _, err) = reload_cmd(&["-c", path(&cfg)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no [admin] section"), "{err}");

    let admin = free_port();
    std::fs::write(
        &cfg,
        config_text(
            format!("127.0.0.1:{admin}").parse().unwrap(),
            "",
            &route("r", 1, &["127.0.0.1:2".to_owned()], ""),
            "debug",
        ),
    )
    .unwrap();
    let (code, _, err) = reload_cmd(&["-c", path(&cfg)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "failed to reach the running sidecar's admin endpoint on 127.0.0.1:{admin}"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reload_is_refused_from_a_non_loopback_address() {
    // The endpoint on all addresses, reached through this host's own
    // non-loopback address when it has one.
    let Some(ip) = local_non_loopback_ip() else {
        eprintln!("no non-loopback IPv4 address on this host: nothing to test");
        return;
    };
    let dir = tmpdir();
    let up = plain_echo().await;
    let (_, one) = echo_route("one", up);
    let port = free_port();
    let admin: std::net::SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    let config = dir.path().join("tls-sidecar.toml");
    std::fs::write(&config, config_text(admin, "", &one, "debug")).unwrap();
    let s = Sidecar::spawn(&config, format!("127.0.0.1:{port}").parse().unwrap(), &[]);
    s.wait_ready();
    let mut c = TcpStream::connect((ip, port)).await.unwrap();
    c.write_all(
        format!(
            "POST /reload HTTP/1.1\r\nHost: {ip}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert_eq!(reloads(&s, "ok"), 0.0);
}

fn local_non_loopback_ip() -> Option<std::net::IpAddr> {
    // The source address the kernel picks for an outside destination; no
    // packet is sent by a UDP connect.
    let u = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    u.connect("192.0.2.1:9").ok()?;
    let ip = u.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
