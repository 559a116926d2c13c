//! Load through a mutual-TLS route: a real `redis-server` that requires
//! client certificates (`--tls-auth-clients yes`), the sidecar carrying a
//! plain local port to it with its client certificate, and `redis-benchmark`
//! driving 50 concurrent clients through the route. Every benchmark test must
//! report a rate and no error; redis must refuse a client without a
//! certificate (so mutual TLS is really on); the sidecar counts every
//! connection and no handshake error.

mod common;

use std::io::Read;
use std::net::TcpStream as StdStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The benchmark: 5 tests × 20,000 requests, 50 clients (sized for 2 cores).
const REQUESTS: u32 = 20_000;
const CLIENTS: u32 = 50;
const TESTS: &[&str] = &["SET", "GET", "INCR", "LPUSH", "LPOP"];

/// Fails (never skips) when a tool of tests/setup.sh is missing.
fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is not installed: run `bash tests/setup.sh` (it installs redis-server and redis-tools)"
    );
}

/// `redis-server` with TLS only, client certificates required; killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path, pki: &Pki) -> Redis {
        require("redis-server");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port"])
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(&pki.server.0)
            .arg("--tls-key-file")
            .arg(&pki.server.1)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca_path)
            .args(["--tls-auth-clients", "yes"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--protected-mode", "no", "--maxclients", "1000"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-server (install it with tests/setup.sh)");
        let mut redis = Redis { child, port };
        let deadline = Instant::now() + patience(10);
        while Instant::now() < deadline {
            if StdStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            if let Ok(Some(st)) = redis.child.try_wait() {
                let mut out = String::new();
                let _ = redis.child.stdout.take().unwrap().read_to_string(&mut out);
                panic!("redis-server exited ({st}) before listening:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on {port}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PING over TLS straight to redis, with or without the client certificate;
/// returns what redis answered (empty: closed, or the error).
async fn direct_ping(port: u16, pki: &Pki, with_cert: bool) -> String {
    let client = with_cert.then_some((pki.client.0.as_path(), pki.client.1.as_path()));
    let cfg = client_config(&pki.ca_path, client);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = match tokio_rustls::TlsConnector::from(cfg)
        .connect("localhost".try_into().unwrap(), tcp)
        .await
    {
        Ok(t) => t,
        Err(e) => return format!("handshake failed: {e}"),
    };
    if let Err(e) = tls.write_all(b"PING\r\n").await {
        return format!("write failed: {e}");
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(patience(5), tls.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Ok(Err(e)) => format!("read failed: {e}"),
        Err(_) => "no answer in 5 s".into(),
    }
}

/// Sum of every `name` series carrying `route="ROUTE"` in a scrape.
fn route_sum(scrape: &str, name: &str, route: &str) -> f64 {
    let label = format!("route=\"{route}\"");
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_benchmark_through_a_mutual_tls_route_has_no_errors() {
    require("redis-benchmark");
    let _alone = heavy().await;
    let summary = Summary::new("redis_benchmark_through_a_mutual_tls_route_has_no_errors");
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let redis = Redis::start(dir.path(), &pki);

    // mTLS is really on: no certificate, no service; with it, PONG.
    let refused = direct_ping(redis.port, &pki, false).await;
    let accepted = direct_ping(redis.port, &pki, true).await;
    let held = !refused.contains("PONG") && accepted.starts_with("+PONG");
    summary.row(
        "redis requires client certificates",
        "TLS PING straight to redis-server `--tls-auth-clients yes`, without and with the client certificate",
        "refused without, `+PONG` with",
        &format!("without: {:?}; with: {:?}", refused.trim(), accepted.trim()),
        held,
        "",
    );
    assert!(
        held,
        "redis without a client certificate answered {refused:?}; with one {accepted:?}"
    );

    let p = free_port();
    let tls = format!(
        "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
        pki.ca_path.display(),
        pki.client.0.display(),
        pki.client.1.display()
    );
    // `warn`: a debug line per connection would only slow the benchmark.
    let text = route("redis", p, &[format!("localhost:{}", redis.port)], &tls);
    let s = Sidecar::start_at(dir.path(), &text, "warn");
    let before = s.metrics();
    assert!(
        before
            .lines()
            .any(|l| l.starts_with("tls_sidecar_route_info{")
                && l.contains("route=\"redis\"")
                && l.contains("mutual=\"true\"")),
        "the route is mutual TLS:\n{before}"
    );
    let hs_before = route_sum(&before, "tls_sidecar_handshake_errors_total", "redis");

    // The benchmark, bounded: killed after 60 s.
    let t0 = Instant::now();
    let mut bench = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &p.to_string()])
        .args(["-n", &REQUESTS.to_string(), "-c", &CLIENTS.to_string()])
        .args(["-t", "set,get,incr,lpush,lpop", "-q", "--csv"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-benchmark (install it with tests/setup.sh)");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = r.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(bench.stdout.take().unwrap()));
    let err = drain(Box::new(bench.stderr.take().unwrap()));
    let deadline = Instant::now() + patience(60);
    let status = loop {
        if let Some(st) = bench.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = bench.kill();
            break bench.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let elapsed = t0.elapsed();

    // --csv: a header, then `"TEST","rps",...` per test; anything else is an error.
    let mut rates = Vec::new();
    let mut stray = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.split(',').map(|c| c.trim_matches('"')).collect();
        if cols.first() == Some(&"test") {
            continue;
        }
        match (
            cols.first(),
            cols.get(1).and_then(|r| r.parse::<f64>().ok()),
        ) {
            (Some(t), Some(rps)) if TESTS.contains(t) && rps > 0.0 => {
                rates.push((t.to_string(), rps))
            }
            _ => stray.push(line.to_owned()),
        }
    }
    let err_lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let all_rated = TESTS.iter().all(|t| rates.iter().any(|(r, _)| r == t));
    let figure = rates
        .iter()
        .map(|(t, r)| format!("{t} {r:.0}/s"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "\nredis-benchmark -n {REQUESTS} -c {CLIENTS} through the mTLS route ({:.1} s): {figure}\n",
        elapsed.as_secs_f64()
    );

    // Every connection counted, and closed; no handshake failed.
    let mut after = String::new();
    let deadline = Instant::now() + patience(10);
    while Instant::now() < deadline {
        after = s.metrics();
        if metric_value(
            &after,
            "tls_sidecar_connections_active",
            &[("route", "redis")],
        ) == Some(0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ok = metric_value(
        &after,
        "tls_sidecar_connections_total",
        &[("route", "redis"), ("result", "ok")],
    )
    .unwrap_or(0.0);
    let other = route_sum(&after, "tls_sidecar_connections_total", "redis") - ok;
    let hs_after = route_sum(&after, "tls_sidecar_handshake_errors_total", "redis");
    let sessions = route_sum(&after, "tls_sidecar_tls_sessions_total", "redis");
    let min_conns = (CLIENTS as usize * TESTS.len()) as f64;

    let held = status.success()
        && all_rated
        && stray.is_empty()
        && err_lines.is_empty()
        && ok >= min_conns
        && other == 0.0
        && hs_after == hs_before;
    summary.row(
        "load through a mutual-TLS route (redis)",
        &format!(
            "`redis-benchmark -n {REQUESTS} -c {CLIENTS} -t set,get,incr,lpush,lpop` through plain → mTLS route to `redis-server --tls-auth-clients yes`"
        ),
        "every test reports a rate, no error line; every connection `ok`, no handshake error",
        &format!(
            "{} of {} tests rated, {} error lines, in {:.1} s; connections ok {ok}, other {other}; handshake errors {}; TLS sessions {sessions}",
            rates.len(),
            TESTS.len(),
            stray.len() + err_lines.len(),
            elapsed.as_secs_f64(),
            hs_after - hs_before
        ),
        held,
        &format!("requests/s: {figure}"),
    );
    assert!(
        status.success(),
        "redis-benchmark exited {status} (killed after 60 s?)\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        all_rated && stray.is_empty() && err_lines.is_empty(),
        "redis-benchmark reported errors or missed a test\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        ok >= min_conns && other == 0.0,
        "connections: ok {ok} (want ≥ {min_conns}), other results {other}\n{after}"
    );
    assert_eq!(
        hs_after, hs_before,
        "handshake errors on the route changed\n{after}"
    );
    assert!(sessions >= min_conns, "TLS sessions {sessions}\n{after}");
}
