//! systemd integration without systemd as PID 1: the `Type=notify-reload`
//! protocol and the watchdog over a real `NOTIFY_SOCKET` (a Unix datagram
//! socket this test binds), and the two shipped unit variants differing
//! only in the lines docs/src/deploy/systemd.md documents.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The notify socket a test listens on.
struct Notify {
    sock: UnixDatagram,
    path: std::path::PathBuf,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        Notify { sock, path }
    }

    /// The next datagram within `within`, or None.
    fn next(&self, within: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 4096];
        let n = self.sock.recv(&mut b).ok()?;
        Some(String::from_utf8_lossy(&b[..n]).into_owned())
    }

    /// The next datagram that is not a watchdog ping.
    fn state(&self) -> String {
        let deadline = Instant::now() + patience(20);
        while Instant::now() < deadline {
            if let Some(m) = self.next(Duration::from_secs(20)) {
                if m.trim_end() != "WATCHDOG=1" {
                    return m;
                }
            }
        }
        panic!("no notify message");
    }
}

fn lines(m: &str) -> Vec<&str> {
    m.lines().collect()
}

fn start(dir: &Path, n: &Notify, routes: &str, env: &[(&str, &str)]) -> Sidecar {
    let (config, admin) = write_config(dir, "watch_config = false", routes, "debug");
    let mut env = env.to_vec();
    env.push(("NOTIFY_SOCKET", n.path.to_str().unwrap()));
    Sidecar::spawn(&config, admin, &env)
}

fn plain_route(name: &str) -> String {
    route(name, free_port(), &["127.0.0.1:9".to_owned()], "")
}

#[test]
fn reloads_follow_the_notify_reload_protocol_and_a_refused_one_says_why_in_status() {
    let dir = tmpdir();
    let n = Notify::bind(dir.path());
    let one = plain_route("one");
    let s = start(dir.path(), &n, &one, &[]);
    assert_eq!(
        lines(&n.state()),
        ["READY=1", "STATUS=serving 1 route(s)"],
        "{}",
        s.logs()
    );

    // Accepted: RELOADING=1 with the monotonic clock, then READY=1.
    s.rewrite(
        "watch_config = false",
        &format!("{one}{}", plain_route("two")),
    );
    let before = now_monotonic_usec();
    s.signal("HUP");
    let reloading = n.state();
    let l = lines(&reloading);
    assert_eq!(l.len(), 2, "{reloading}");
    assert_eq!(l[0], "RELOADING=1");
    let usec: u64 = l[1]
        .strip_prefix("MONOTONIC_USEC=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{reloading}"));
    assert!(
        usec >= before && usec <= now_monotonic_usec(),
        "CLOCK_MONOTONIC in µs"
    );
    assert_eq!(
        lines(&n.state()),
        ["STATUS=serving 2 route(s); last reload ok", "READY=1"]
    );

    // Refused: the same envelope, READY=1 (the old config serves), and a
    // STATUS= line that says why.
    std::fs::write(&s.config, "route = 5").unwrap();
    s.signal("HUP");
    assert_eq!(lines(&n.state())[0], "RELOADING=1");
    let refused = n.state();
    let l = lines(&refused);
    assert_eq!(l.len(), 2, "{refused}");
    assert!(
        l[0].starts_with("STATUS=reload refused, the previous config keeps serving: ")
            && l[0].contains("tls-sidecar.toml"),
        "{refused}"
    );
    assert_eq!(l[1], "READY=1");
    s.wait_metric(
        "tls_sidecar_config_reloads_total",
        &[("result", "error")],
        1.0,
    );

    s.signal("TERM");
    assert_eq!(lines(&n.state()), ["STOPPING=1", "STATUS=draining"]);
}

/// CLOCK_MONOTONIC now, in µs (what systemd compares MONOTONIC_USEC with).
fn now_monotonic_usec() -> u64 {
    match sd_notify::NotifyState::monotonic_usec_now().unwrap() {
        sd_notify::NotifyState::MonotonicUsec(u) => u as u64,
        other => panic!("{other:?}"),
    }
}

/// [`start`] on one plain route with `env`, once `n` has heard READY=1.
fn ready(dir: &Path, n: &Notify, env: &[(&str, &str)]) -> Sidecar {
    let s = start(dir, n, &plain_route("one"), env);
    assert_eq!(lines(&n.state())[0], "READY=1", "{}", s.logs());
    s
}

#[test]
fn the_watchdog_is_pinged_every_half_period_from_the_runtime() {
    let dir = tmpdir();
    let n = Notify::bind(dir.path());
    // 400 ms: pings every 200 ms.
    let s = ready(dir.path(), &n, &[("WATCHDOG_USEC", "400000")]);
    let t0 = Instant::now();
    let mut pings = 0;
    while pings < 5 {
        match n.next(Duration::from_secs(10)) {
            Some(m) if m.trim_end() == "WATCHDOG=1" => pings += 1,
            Some(m) => panic!("unexpected {m:?}"),
            None => panic!("no ping within 10 s after {pings}; log:\n{}", s.logs()),
        }
    }
    // Five pings take at least four intervals; an upper bound would be a
    // speed assertion on a shared machine.
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    assert!(s.has_log("systemd watchdog enabled"));
}

#[test]
fn no_watchdog_ping_when_the_watchdog_is_meant_for_another_process() {
    let dir = tmpdir();
    let n = Notify::bind(dir.path());
    let _s = ready(
        dir.path(),
        &n,
        &[("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
    );
    assert_eq!(n.next(Duration::from_millis(1500)), None);
}

/// The lines the README's ```diff block lists: (only in the Type=notify
/// unit, only in the notify-reload unit).
fn documented_differences(readme: &str) -> (Vec<String>, Vec<String>) {
    let block = readme
        .split("```diff\n")
        .nth(1)
        .expect("a ```diff block in docs/src/deploy/systemd.md")
        .split("```")
        .next()
        .unwrap();
    let pick = |sign: char| {
        block
            .lines()
            .filter_map(|l| l.strip_prefix(sign))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    (pick('-'), pick('+'))
}

/// The unit's settings (no comments, no blank lines), in order.
fn settings(unit: &str) -> Vec<String> {
    unit.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_two_unit_variants_differ_only_in_the_lines_the_manual_documents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let notify = settings(&read("tls-sidecar.service"));
    let reload = settings(&read("tls-sidecar-notify-reload.service"));
    let (only_notify, only_reload) = documented_differences(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/deploy/systemd.md"),
        )
        .unwrap(),
    );
    assert_eq!(
        only_notify,
        [
            "Type=notify",
            "ExecReload=/usr/local/bin/tls-sidecar reload -c /etc/tls-sidecar/tls-sidecar.toml --pid $MAINPID"
        ]
    );
    assert_eq!(only_reload, ["Type=notify-reload"]);
    for l in &only_notify {
        assert_eq!(notify.iter().filter(|x| *x == l).count(), 1, "{l}");
        assert!(!reload.contains(l), "{l}");
    }
    for l in &only_reload {
        assert_eq!(reload.iter().filter(|x| *x == l).count(), 1, "{l}");
        assert!(!notify.contains(l), "{l}");
    }
    let rest = |v: &[String], drop: &[String]| {
        v.iter()
            .filter(|l| !drop.contains(l))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(rest(&notify, &only_notify), rest(&reload, &only_reload));
    // Both have the watchdog.
    assert!(notify.contains(&"WatchdogSec=30s".to_owned()));
}
