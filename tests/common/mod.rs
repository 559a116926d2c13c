//! Shared test harness: the real `tls-sidecar` binary started on loopback
//! with a config written to a temp dir, plus real TLS peers (rustls
//! in-process servers, `openssl s_server`) and metric scraping.

#![allow(dead_code)]

/// HAProxy, nginx, tinyproxy as peers.
pub mod daemon;
pub mod postgres;
/// A config run as written (for `import`'s tests).
pub mod served;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

#[allow(unused_imports)]
pub use tls_sidecar::pki::{self, Ca, Leaf, Validity};

/// A loopback port the OS chose for this test process and keeps for it.
///
/// The port is bound (SO_REUSEADDR, never listening) by a socket held until
/// the process ends, so the kernel hands it to no one else: no other
/// process's `bind(…:0)` and no outgoing connection's source port can take
/// it, while the sidecar (or a peer: openssl, nginx, HAProxy, PostgreSQL,
/// Redis, tinyproxy all bind with SO_REUSEADDR) can still bind and listen on
/// it. A config names its ports before the process starts, so the port must
/// exist first; holding it, rather than closing a probe listener and hoping,
/// is what makes it safe across the test binaries and helpers that run at
/// once (issue 27: `probe_is_run` saw ECONNREFUSED when a port handed out by
/// one process was taken by another's connection).
pub fn free_port() -> u16 {
    reserved_ports(1)
}

/// `n` consecutive loopback ports reserved as [`free_port`] reserves one;
/// the first of them.
pub fn reserved_ports(n: u16) -> u16 {
    static HELD: Mutex<Vec<socket2::Socket>> = Mutex::new(Vec::new());
    let reserve = |port: u16| -> Option<socket2::Socket> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
        s.set_reuse_address(true).ok()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        s.bind(&addr.into()).ok()?;
        Some(s)
    };
    loop {
        let first = reserve(0).expect("bind 127.0.0.1:0");
        let base = first.local_addr().unwrap().as_socket().unwrap().port();
        let mut held = vec![first];
        for i in 1..n {
            match base.checked_add(i).and_then(reserve) {
                Some(s) => held.push(s),
                None => break,
            }
        }
        if held.len() == usize::from(n) {
            HELD.lock().unwrap().extend(held);
            return base;
        }
    }
}
/// How many times slower than a plain host this run is: 1, unless the
/// environment says otherwise (tests/ktls-guest.sh sets `TEST_SLOWDOWN` for
/// its emulated guest, where two engines' runs share two emulated CPUs).
/// Every wait of the harness, and every test's own bound on how long an
/// event may take, goes through [`patience`]; a bound that is part of what
/// a test checks (a timeout the sidecar must keep) does not.
pub fn slowdown() -> u32 {
    std::env::var("TEST_SLOWDOWN")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// `secs` seconds of patience for an event, scaled by [`slowdown`].
pub fn patience(secs: u64) -> Duration {
    Duration::from_secs(secs) * slowdown()
}

/// Held while a test with thousands of connections (or a load generator)
/// runs: such tests take turns, within this process and across every test
/// process on the machine (an flock on one file in the temp dir), since two
/// at once on two cores starve the handshakes they measure. Released on drop.
pub struct Heavy {
    _local: tokio::sync::MutexGuard<'static, ()>,
    _file: std::fs::File,
}

/// Waits for the machine-wide turn of a heavy test; see [`Heavy`].
pub async fn heavy() -> Heavy {
    static LOCAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let local = LOCAL.lock().await;
    let path = std::env::temp_dir().join("tls-sidecar-tests-heavy.lock");
    let file = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap();
        // SAFETY: flock on a descriptor this function owns; blocks until
        // the other process's turn ends (its descriptor closes at exit too).
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        file
    })
    .await
    .unwrap();
    Heavy {
        _local: local,
        _file: file,
    }
}

pub fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A running sidecar; killed on drop.
pub struct Sidecar {
    child: Child,
    pub admin: SocketAddr,
    pub config: PathBuf,
    log: Arc<Mutex<String>>,
    /// The `[log] level` that [`Sidecar::rewrite`] writes.
    level: &'static str,
}

impl Sidecar {
    /// Writes `routes` (TOML text with `[[route]]` tables) plus an admin
    /// section to `dir/tls-sidecar.toml` and starts `run` on it, waiting
    /// until `/readyz` answers 200.
    pub fn start(dir: &Path, routes: &str) -> Sidecar {
        Self::start_with(dir, routes, &[])
    }

    pub fn start_with(dir: &Path, routes: &str, env: &[(&str, &str)]) -> Sidecar {
        Self::start_top(dir, "", routes, env)
    }

    /// [`Sidecar::start_with`] with top-level keys `top` (TOML lines, as
    /// [`Sidecar::rewrite`] takes them).
    pub fn start_top(dir: &Path, top: &str, routes: &str, env: &[(&str, &str)]) -> Sidecar {
        Self::start_full(dir, top, routes, env, "debug")
    }

    /// [`Sidecar::start`] logging at `level` (`warn` where a debug line per
    /// connection would only slow a load test down).
    pub fn start_at(dir: &Path, routes: &str, level: &'static str) -> Sidecar {
        Self::start_full(dir, "", routes, &[], level)
    }

    fn start_full(
        dir: &Path,
        top: &str,
        routes: &str,
        env: &[(&str, &str)],
        level: &'static str,
    ) -> Sidecar {
        let (config, admin) = write_config(dir, top, routes, level);
        let mut s = Self::spawn(&config, admin, env);
        s.level = level;
        s.wait_ready();
        s
    }

    /// Starts `run` on an existing config file without waiting.
    pub fn spawn(config: &Path, admin: SocketAddr, env: &[(&str, &str)]) -> Sidecar {
        Self::spawn_args(config, admin, env, &[])
    }

    /// [`Sidecar::spawn`] with more arguments to `run` (`--pid-file F`).
    pub fn spawn_args(
        config: &Path,
        admin: SocketAddr,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Sidecar {
        let mut cmd = cli_command(&[&"run", &"-c", &config]);
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tls-sidecar");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        // Whole lines only: a wait for the start of a line must not see it
        // before its end has been read.
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut pending = Vec::new();
            loop {
                let n = stderr.read(&mut buf).unwrap_or(0);
                pending.extend_from_slice(&buf[..n]);
                if n == 0 && !pending.is_empty() {
                    pending.push(b'\n'); // the last line, unfinished
                }
                if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                    let lines: Vec<u8> = pending.drain(..=end).collect();
                    sink.lock()
                        .unwrap()
                        .push_str(&strip_ansi(&String::from_utf8_lossy(&lines)));
                }
                if n == 0 {
                    break;
                }
            }
        });
        Sidecar {
            child,
            admin,
            config: config.to_owned(),
            log,
            level: "debug",
        }
    }

    /// Rewrites the config as `start` wrote it, with the top-level keys
    /// `top` (TOML lines, may be empty) and `routes`; no signal is sent.
    pub fn rewrite(&self, top: &str, routes: &str) {
        std::fs::write(
            &self.config,
            config_text(self.admin, top, routes, self.level),
        )
        .unwrap();
    }

    /// [`Sidecar::rewrite`], SIGHUP, then waits until `ok` reloads in all
    /// have succeeded.
    pub fn reload(&self, top: &str, routes: &str, ok: f64) {
        self.rewrite(top, routes);
        self.signal("HUP");
        self.wait_metric("tls_sidecar_config_reloads_total", &[("result", "ok")], ok);
        // The log is read by another thread and can trail the metric: wait
        // for the reload's own line, so what it logged before is in too.
        let deadline = Instant::now() + patience(10);
        while self.logs().matches("config reloaded").count() < ok as usize
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_ready(&self) {
        // Generous: under emulation (tests/ktls-guest.sh) on a loaded host,
        // a start with kernel_tls = "auto" (its kernel probe) took over 20 s.
        let deadline = Instant::now() + patience(60);
        while Instant::now() < deadline {
            if let Some((200, _)) = http_get(self.admin, "/readyz") {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("sidecar not ready; log:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to `secs` (times [`slowdown`]) for `needle` to appear in
    /// the log.
    pub fn wait_log(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + patience(secs);
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True once the log holds `needle`: the positive check on a log line.
    ///
    /// The sidecar may count an event before it logs it, and the log is
    /// read from its stderr by another thread, so a line can trail the
    /// metric or the answer a test has just waited for (issue 27: the
    /// sandbox test read the log 3 ms before the refusal line came). A
    /// positive check therefore waits for its line; `!s.logs().contains(…)`
    /// stays the check that something was not logged.
    pub fn has_log(&self, needle: &str) -> bool {
        self.has_any_log(&[needle])
    }

    /// [`Sidecar::has_log`] for one of several spellings of a line.
    pub fn has_any_log(&self, needles: &[&str]) -> bool {
        let deadline = Instant::now() + patience(10);
        loop {
            let logs = self.logs();
            if needles.iter().any(|n| logs.contains(n)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first log line that contains `needle`, once it is there; panics
    /// with the whole log if it does not come.
    pub fn log_line(&self, needle: &str) -> String {
        if !self.has_log(needle) {
            panic!("no log line with {needle:?}; log:\n{}", self.logs());
        }
        let logs = self.logs();
        logs.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_owned()
    }

    pub fn metrics(&self) -> String {
        http_get(self.admin, "/metrics").expect("scrape").1
    }

    /// The value of the series `key` (name and labels exactly as rendered,
    /// labels in any order), or None.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric_value(&self.metrics(), name, labels)
    }

    /// Waits until the series equals `want`, or panics with the scrape.
    pub fn wait_metric(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        self.wait_metric_for(name, labels, want, 10)
    }

    /// [`Sidecar::wait_metric`] for up to `secs` (times [`slowdown`]), for
    /// an event that is slow by design (a reload that parses a large bundle).
    pub fn wait_metric_for(&self, name: &str, labels: &[(&str, &str)], want: f64, secs: u64) {
        let deadline = Instant::now() + patience(secs);
        while Instant::now() < deadline {
            if metric_value(&self.metrics(), name, labels) == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{name}{labels:?} never became {want}; scrape:\n{}\nlog:\n{}",
            self.metrics(),
            self.logs()
        );
    }

    /// [`Sidecar::wait_metric`] on `tls_sidecar_handshake_errors_total`:
    /// `route`'s `side` ("listen" or "connect") has counted `n` of `reason`.
    pub fn wait_handshake_errors(&self, route: &str, side: &str, reason: &str, n: f64) {
        self.wait_metric(
            "tls_sidecar_handshake_errors_total",
            &[("route", route), ("side", side), ("reason", reason)],
            n,
        );
    }

    /// [`Sidecar::wait_metric`] on `tls_sidecar_connections_total`: `route`
    /// has counted `n` connections that ended with `result`.
    pub fn wait_connections(&self, route: &str, result: &str, n: f64) {
        self.wait_metric(
            "tls_sidecar_connections_total",
            &[("route", route), ("result", result)],
            n,
        );
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + patience(secs);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- sidecar log ----\n{}", self.logs());
        }
    }
}

/// Finds `name{labels}` in a Prometheus text scrape, labels in any order.
pub fn metric_value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    for line in scrape.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, l) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let have: Vec<(&str, &str)> = if l.is_empty() {
            vec![]
        } else {
            l.split("\",")
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k, v.trim_matches('"'))
                })
                .collect()
        };
        if have.len() == labels.len() && labels.iter().all(|want| have.contains(want)) {
            return value.parse().ok();
        }
    }
    None
}

/// A blocking HTTP/1.1 GET; (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = StdStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Certificates for one test: a CA, a server leaf for localhost/127.0.0.1,
/// a client leaf, all written to `dir`.
pub struct Pki {
    pub ca: Ca,
    pub ca_path: PathBuf,
    pub server: (PathBuf, PathBuf),
    pub server_leaf: Leaf,
    pub client: (PathBuf, PathBuf),
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca = Ca::new("Test CA");
        let ca_path = pki::write(dir, "ca.pem", &ca.cert_pem()).unwrap();
        let server_leaf = ca.leaf("localhost", &["localhost", "127.0.0.1"]);
        let server = server_leaf.write(dir, "server").unwrap();
        let client = ca
            .leaf("gms-client", &["gms-client"])
            .write(dir, "client")
            .unwrap();
        Pki {
            ca,
            ca_path,
            server,
            server_leaf,
            client,
        }
    }
}

impl Pki {
    /// A TLS echo server with the server leaf, asking no client certificate.
    pub async fn echo(&self) -> SocketAddr {
        tls_echo(self.server_config()).await
    }

    /// A rustls server config with the server leaf (`localhost`), no
    /// client authentication.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        server_config(&self.server.0, &self.server.1, None)
    }

    /// The `listen_tls` lines that serve the server leaf: `cert` and `key`.
    pub fn listen_tls(&self) -> String {
        format!(
            "cert = \"{}\"\nkey = \"{}\"",
            self.server.0.display(),
            self.server.1.display()
        )
    }

    /// A plain→TLS route (see [`tls_route`]) to `upstream` by the server
    /// leaf's name, `localhost`, verified against this CA.
    pub fn route_to(&self, name: &str, port: u16, upstream: SocketAddr) -> String {
        tls_route(
            name,
            port,
            &[format!("localhost:{}", upstream.port())],
            &self.ca_path,
        )
    }

    /// [`Pki::route_to`] with route keys (`idle_timeout = "1s"`, ...) of
    /// its own.
    pub fn route_with(&self, name: &str, port: u16, upstream: SocketAddr, keys: &str) -> String {
        self.route_to(name, port, upstream).replace(
            "[route.connect_tls]",
            &format!("{keys}\n[route.connect_tls]"),
        )
    }
}

impl Pki {
    /// `openssl s_server -rev` with the server leaf; when `mutual`, it
    /// demands a client certificate signed by this CA.
    pub fn s_server_rev(&self, mutual: bool) -> OpensslServer {
        let (cert, key) = (self.server.0.display(), self.server.1.display());
        let (cert, key, ca) = (cert.to_string(), key.to_string(), self.ca_path.display());
        let ca = ca.to_string();
        let mut args = vec!["-cert", &cert, "-key", &key, "-rev", "-quiet"];
        if mutual {
            args.extend(["-Verify", "1", "-verify_return_error", "-CAfile", &ca]);
        }
        OpensslServer::start(&args)
    }
}

pub fn load_chain(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(|c| c.unwrap())
        .collect()
}

pub fn load_key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).unwrap()
}

/// A rustls server config for (cert, key), optionally requiring client
/// certificates signed by `client_ca` (the builder `demo` uses too).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Arc<rustls::ServerConfig> {
    pki::server_config(cert, key, client_ca).unwrap()
}

/// A rustls client config trusting `ca`.
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_chain(ca) {
        roots.add(c).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(tls_sidecar::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client {
        Some((c, k)) => b.with_client_auth_cert(load_chain(c), load_key(k)).unwrap(),
        None => b.with_no_client_auth(),
    })
}

/// An in-process TLS server on 127.0.0.1 that runs `handler` for each
/// connection. Returns its address.
pub async fn tls_server<F, Fut>(config: Arc<rustls::ServerConfig>, handler: F) -> SocketAddr
where
    F: Fn(tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                // More patient than the sidecar's own handshake_timeout
                // (10 s by default): a slow handshake is then the sidecar's
                // `timeout`, never this peer closing on it (`peer_closed`).
                if let Ok(Ok(s)) = tokio::time::timeout(patience(60), acceptor.accept(tcp)).await {
                    handler(s).await;
                }
            });
        }
    });
    addr
}

/// How a [`tls_reader`] upstream saw its stream end: `Ok(())` for a clean
/// close_notify, else the error's kind.
pub type StreamEnd = Result<(), std::io::ErrorKind>;

/// A TLS upstream for tests that end the client's side of a running relay:
/// its first connection reads exactly `first` and says so through the first
/// receiver (the TLS leg is up and relaying: wait for it rather than
/// sleeping, since an upstream handshake can take seconds under emulation),
/// then reads to the end and sends how the stream ended through the second.
pub async fn tls_reader(
    config: Arc<rustls::ServerConfig>,
    first: &'static [u8],
) -> (
    SocketAddr,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Receiver<StreamEnd>,
) {
    use tokio::io::AsyncReadExt;
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    let (end_tx, end) = tokio::sync::oneshot::channel();
    let once = Mutex::new(Some((arrived_tx, end_tx)));
    let addr = tls_server(config, move |mut s| {
        let chans = once.lock().unwrap().take();
        async move {
            let Some((arrived_tx, end_tx)) = chans else {
                return;
            };
            let mut got = vec![0u8; first.len()];
            if s.read_exact(&mut got).await.is_ok() && got == first {
                let _ = arrived_tx.send(());
            }
            let mut rest = Vec::new();
            let _ = end_tx.send(
                s.read_to_end(&mut rest)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.kind()),
            );
        }
    })
    .await;
    (addr, arrived, end)
}

/// Waits (with [`patience`]) for a oneshot a peer fires when an event has
/// happened; panics naming `what` if it does not come.
pub async fn arrives<T>(rx: tokio::sync::oneshot::Receiver<T>, secs: u64, what: &str) -> T {
    match tokio::time::timeout(patience(secs), rx).await {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => panic!("{what}: the peer went away without saying"),
        Err(_) => panic!("{what}: not within {:?}", patience(secs)),
    }
}

/// Echo until EOF, then close cleanly (close_notify).
pub async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    use tokio::io::AsyncWriteExt;
    let (mut r, mut w) = tokio::io::split(&mut s);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// A plain TCP echo server on 127.0.0.1; its port.
pub async fn plain_echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(echo(s));
        }
    });
    port
}

/// A plain backend that greets each client with "hello" and closes; its
/// port.
pub async fn greeter() -> u16 {
    use tokio::io::AsyncWriteExt;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"hello\n").await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

/// A plain HTTP backend that answers every request with 200 and `body`,
/// then closes; its port.
pub async fn http_backend(body: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

/// `curl https://localhost:PORT/` trusting `ca` and presenting the client
/// certificate `cert` (`key`), for at most 10 s.
pub fn curl_with_cert(port: u16, ca: &Path, cert: &Path, key: &Path) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg(format!("https://localhost:{port}/"))
        .output()
        .expect("curl (install it with tests/setup.sh)")
}

/// Reads `r` to its end, each read within 60 s: (bytes read, their
/// SHA-256).
pub async fn sha256_to_end<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> (usize, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        let k = tokio::time::timeout(patience(60), r.read(&mut buf))
            .await
            .expect("a read within 60 s")
            .unwrap();
        if k == 0 {
            return (n, h.finish().as_ref().to_vec());
        }
        h.update(&buf[..k]);
        n += k;
    }
}

/// A TLS echo server.
pub async fn tls_echo(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    tls_server(config, |s| async move { echo(s).await }).await
}

/// `openssl s_server` on a free port; killed on drop.
pub struct OpensslServer {
    child: Child,
    pub port: u16,
}

impl OpensslServer {
    /// Starts `openssl s_server -accept PORT ARGS...` and waits until it accepts.
    pub fn start(args: &[&str]) -> OpensslServer {
        let port = free_port();
        let child = Command::new("openssl")
            .arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server (install it with tests/setup.sh)");
        let server = OpensslServer { child, port };
        // Generous: with hundreds of CA names to load, under emulation on a
        // loaded host (tests/ktls-guest.sh), it took over 10 s.
        let deadline = Instant::now() + patience(60);
        while Instant::now() < deadline {
            if StdStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("openssl s_server did not start");
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `s` until it ends: `Ok(())` for a clean EOF, the error's kind
/// otherwise; each read bounded by `secs`. Returns what was read too.
pub async fn read_until_end<R: tokio::io::AsyncRead + Unpin>(
    s: &mut R,
    secs: u64,
) -> (Vec<u8>, Result<(), std::io::ErrorKind>) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(patience(secs), s.read(&mut buf))
            .await
            .expect("the stream neither ended nor failed in time")
        {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e.kind())),
        }
    }
}

/// Sends `line` through a plain connection to `port` and reads one line
/// back, within 10 s, leaving the connection open (as `openssl s_server
/// -rev`, which answers each line reversed, wants). Err if the connection
/// fails or no line comes.
pub async fn line_through(port: u16, line: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(line).await?;
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    tokio::time::timeout(patience(10), r.read_until(b'\n', &mut out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no line"))??;
    Ok(out)
}

/// Sends `msg` through a plain connection to `port`, shuts down writing,
/// and reads everything back. Err if the connection fails or is reset.
pub async fn roundtrip(port: u16, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(msg).await?;
    s.shutdown().await?;
    let mut out = Vec::new();
    tokio::time::timeout(patience(10), s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no end"))??;
    Ok(out)
}

/// The config file of a test sidecar: `top` (top-level keys), a short
/// shutdown grace, the admin endpoint on `admin`, logs at `level`, then
/// `routes`. The config watch is off unless `top` sets `watch_config`: a
/// test that rewrites the file and sends SIGHUP would otherwise race the
/// watch's own reload of the same change (two reloads where it counts one).
pub fn config_text(admin: SocketAddr, top: &str, routes: &str, level: &str) -> String {
    let watch = if top.contains("watch_config") {
        ""
    } else {
        "watch_config = false\n"
    };
    format!("{top}\n{watch}shutdown_grace = \"2s\"\n[admin]\nlisten = \"{admin}\"\n[log]\nlevel = \"{level}\"\n\n{routes}")
}

/// Writes [`config_text`] to `dir/tls-sidecar.toml` with the admin endpoint
/// on a free port; returns (config path, admin address).
pub fn write_config(dir: &Path, top: &str, routes: &str, level: &str) -> (PathBuf, SocketAddr) {
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("tls-sidecar.toml");
    std::fs::write(&config, config_text(admin, top, routes, level)).unwrap();
    (config, admin)
}

/// The binary's command line `tls-sidecar ARGS`, stdin closed, without any
/// `TLS_SIDECAR_*` variable of the test's own environment (an exported
/// config path or log level must not change what a test sees) and without
/// colour. One is kept: [`ENGINE_VAR`], by which tests/ktls-guest.sh runs
/// the same tests on each TLS engine.
pub fn cli_command(args: &[&dyn AsRef<OsStr>]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tls-sidecar"));
    for a in args {
        cmd.arg(a);
    }
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("TLS_SIDECAR") && name != ENGINE_VAR {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// The top-level `kernel_tls` of every sidecar a test starts, when the
/// test's environment sets it (tests/ktls-guest.sh: "auto", then "off");
/// it overrides the file's top-level key, and a route's own key wins.
pub const ENGINE_VAR: &str = "TLS_SIDECAR__KERNEL_TLS";

/// The `kernel_tls` and `engine` labels of `route_info` for a TLS route
/// whose config leaves `kernel_tls` to the top level and the top level to
/// [`ENGINE_VAR`] (unset: "off").
pub fn engine_labels() -> [(&'static str, &'static str); 2] {
    let auto = std::env::var(ENGINE_VAR).is_ok_and(|v| v == "auto");
    let engine = if auto && tls_sidecar::tls::kernel::available() {
        "ktls"
    } else {
        "userspace"
    };
    [
        ("kernel_tls", if auto { "auto" } else { "off" }),
        ("engine", engine),
    ]
}

/// Runs [`cli_command`]`(args)` to its end: (exit code, stdout, stderr).
pub fn cli(args: &[&dyn AsRef<OsStr>]) -> (i32, String, String) {
    cli_output(cli_command(args))
}

/// Runs `cmd` (a [`cli_command`]) to its end: (exit code, stdout, stderr).
/// Killed, and the test failed, after 60 s: `run` on a config it should
/// refuse would otherwise serve forever.
pub fn cli_output(mut cmd: Command) -> (i32, String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tls-sidecar");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(patience(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            let out = rx.recv().unwrap().unwrap();
            panic!(
                "{cmd:?} did not exit within 60 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Open file descriptors of process `pid`. Panics with the reason when
/// they cannot be counted (no /proc, another user's process): a count of 0
/// would make every "no more fds than before" check pass without meaning.
pub fn fd_count(pid: u32) -> usize {
    let dir = format!("/proc/{pid}/fd");
    let n = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot count the fds of process {pid} in {dir}: {e}"))
        .count();
    assert!(n > 0, "{dir} lists no fd at all: process {pid} is gone");
    n
}

/// A plain→TLS route (see [`route`]) whose upstream is verified against `ca`.
pub fn tls_route(name: &str, port: u16, upstreams: &[String], ca: &Path) -> String {
    route(name, port, upstreams, &format!("ca = \"{}\"", ca.display()))
}

/// A route table entry: `name`, listening on `port`, to `connect`, with
/// `connect_tls` lines (empty: plain).
pub fn route(name: &str, port: u16, connect: &[String], connect_tls: &str) -> String {
    let list = connect
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!(
        "[[route]]\nname = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nconnect = [{list}]\n"
    );
    if !connect_tls.is_empty() {
        s.push_str("[route.connect_tls]\n");
        s.push_str(connect_tls);
        s.push('\n');
    }
    s
}

/// `openssl s_client` to `port` as `localhost`, trusting `ca`, with more
/// `args`, nothing on stdin and killed after 20 s: (exit code, stdout then
/// stderr).
pub fn s_client(port: u16, ca: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-servername", "localhost"])
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(ca)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (install it with tests/setup.sh)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A TLS→plain route: `name` listening with `listen_tls` lines on `port`,
/// to 127.0.0.1:`backend`.
pub fn listen_route(name: &str, port: u16, backend: u16, listen_tls: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nconnect = [\"127.0.0.1:{backend}\"]\n[route.listen_tls]\n{listen_tls}\n"
    )
}

/// Runs `program ARGS` (a tool tests/setup.sh installs: openssl, keytool)
/// with nothing on stdin and insists it succeeded.
pub fn run_tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} (install it with tests/setup.sh): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rows of the hardening summary (`bash tests/hardening-summary.sh`): each
/// test writes its own file, target/hardening-summary/CRATE__TEST.md, one
/// Markdown table row per case as the case is decided (so a test that fails
/// half way still leaves the rows it reached), and the script concatenates
/// the files in a stable order.
pub struct Summary {
    path: PathBuf,
}

impl Summary {
    /// Starts (truncates) the row file of `test` in the calling test crate.
    pub fn new(test: &str) -> Summary {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hardening-summary");
        let _ = std::fs::create_dir_all(&dir);
        let crate_name = env!("CARGO_CRATE_NAME");
        let path = dir.join(format!("{crate_name}__{test}.md"));
        let _ = std::fs::write(&path, "");
        Summary { path }
    }

    /// Appends one row: case, what was done, expected, observed, held, figure.
    pub fn row(
        &self,
        case: &str,
        done: &str,
        expected: &str,
        observed: &str,
        held: bool,
        figure: &str,
    ) {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let line = format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            cell(case),
            cell(done),
            cell(expected),
            cell(observed),
            if held { "yes" } else { "**no**" },
            cell(figure)
        );
        print!("summary: {line}");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    }
}
