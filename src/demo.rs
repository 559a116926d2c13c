//! `demo`: a self-contained demonstration on loopback. It makes a throwaway
//! CA and certificates in a temp dir, starts built-in peers for each mode
//! (a TLS echo server, an upgrade-mode echo server, a mutual-TLS echo
//! server, a self-signed server for trust mode), writes a config with one
//! route to each plus the admin endpoint, and then serves it with exactly
//! the code `run` uses. Ctrl-C drains, stops, and removes the temp dir.

use std::net::SocketAddr;
use std::path::Path;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::pki::{self, Ca};

/// Where the demo listens.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The four routes listen on base, base+1, base+2, base+3.
    pub base: u16,
    pub admin: u16,
}

/// The upgrade exchange the demo's "Configuration Server" speaks: the
/// client asks with a line, the server agrees with a line, then TLS.
pub const DEMO_UPGRADE_REQUEST: &str = "STARTTLS\r\n";
pub const DEMO_UPGRADE_GO_AHEAD: &str = "OK starting TLS\r\n";

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Its temp dir, certificates, config or peers could not be made.
    #[error("failed to set up the demo: {0}")]
    Setup(#[from] std::io::Error),
    /// Its sidecar could not serve (a port in use, say).
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
}

/// Runs the demo until SIGINT/SIGTERM: make the certificates and start
/// the peers, write the config, print the table, serve.
pub async fn run(ports: Ports, metrics: PrometheusHandle) -> Result<(), DemoError> {
    let dir = tempfile::Builder::new()
        .prefix("tls-sidecar-demo-")
        .tempdir()?;
    let d = dir.path();
    let peers = start_peers(d).await?;
    let config = config(ports, d, &peers)?;
    let config_path = pki::write(d, "tls-sidecar.toml", &config)?;
    print_table(ports, d, &config_path);
    let served = crate::serve::run(&config_path, metrics).await;
    drop(dir);
    println!("demo stopped; temporary files removed");
    Ok(served?)
}

/// The demo's four peers: where each listens.
struct Peers {
    msg: SocketAddr,
    conf: SocketAddr,
    stat: SocketAddr,
    chat: SocketAddr,
}

/// Makes the CA and certificates in `d` and starts the four peers: a TLS
/// echo server, an upgrade-mode one, a mutual-TLS one, a self-signed one.
async fn start_peers(d: &Path) -> std::io::Result<Peers> {
    let ca = Ca::new("tls-sidecar demo CA");
    let ca_path = pki::write(d, "ca.pem", &ca.cert_pem())?;
    let server = ca.leaf("demo-peer", &["localhost", "127.0.0.1"]);
    server.write(d, "peer")?;
    ca.leaf("gms-demo-client", &["gms-demo-client"])
        .write(d, "client")?;
    let selfsigned = pki::self_signed("chat-demo (self-signed)", &["localhost"]);
    selfsigned.write(d, "selfsigned")?;

    let tls = acceptor(&d.join("peer.pem"), &d.join("peer.key"), None)?;
    let mtls = acceptor(&d.join("peer.pem"), &d.join("peer.key"), Some(&ca_path))?;
    let trust = acceptor(&d.join("selfsigned.pem"), &d.join("selfsigned.key"), None)?;
    Ok(Peers {
        msg: spawn_peer(tls.clone(), false).await?,
        conf: spawn_peer(tls, true).await?,
        stat: spawn_peer(mtls, false).await?,
        chat: spawn_peer(trust, false).await?,
    })
}

/// The config: one route to each peer, plus the admin endpoint.
fn config(ports: Ports, d: &Path, peers: &Peers) -> std::io::Result<String> {
    let b = ports.base;
    Ok(format!(
        r#"# Written by `tls-sidecar demo`; removed when the demo stops.
shutdown_grace = "2s"

[admin]
listen = "127.0.0.1:{admin}"

[[route]]
name = "msgserver"                 # Message Server: a TLS port, full verification
listen = "127.0.0.1:{p0}"
connect = ["localhost:{msg}"]
[route.connect_tls]
ca = "{dir}/ca.pem"

[[route]]
name = "confserver"                # Configuration Server: upgrade mode (a script)
listen = "127.0.0.1:{p1}"
connect = ["localhost:{conf}"]
[route.connect_tls]
start = "upgrade"
upgrade = "script"
script = [ {{ send = "STARTTLS\r\n" }}, {{ expect = "OK" }} ]
ca = "{dir}/ca.pem"

[[route]]
name = "statserver"                # Statistics Server: mutual TLS
listen = "127.0.0.1:{p2}"
connect = ["127.0.0.1:{dead}", "localhost:{stat}"]   # a dead primary, then the backup
[route.connect_tls]
ca = "{dir}/ca.pem"
cert = "{dir}/client.pem"
key = "{dir}/client.key"

[[route]]
name = "chatserver"                # Chat Server: trust mode (no certificate check)
listen = "127.0.0.1:{p3}"
connect = ["localhost:{chat}"]
[route.connect_tls]
verify = "none"
"#,
        admin = ports.admin,
        p0 = b,
        p1 = b + 1,
        p2 = b + 2,
        p3 = b + 3,
        dir = d.display(),
        msg = peers.msg.port(),
        conf = peers.conf.port(),
        stat = peers.stat.port(),
        chat = peers.chat.port(),
        dead = dead_port()?,
    ))
}

/// What to try, printed before serving.
fn print_table(ports: Ports, d: &Path, config_path: &Path) {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "tls-sidecar".into());
    let b = ports.base;
    println!(
        "\ntls-sidecar demo: four Genesys-style peers on loopback, one route to each.\n\
         Certificates and config: {dir}\n\n\
         \x20 ROUTE        TRY                                  WHAT IT SHOWS\n\
         \x20 msgserver    nc 127.0.0.1 {p0:<5}                   a TLS port, full verification (echo)\n\
         \x20 confserver   nc 127.0.0.1 {p1:<5}                   upgrade mode: a plain exchange, then TLS (echo)\n\
         \x20 statserver   nc 127.0.0.1 {p2:<5}                   mutual TLS, failover from a dead primary (echo)\n\
         \x20 chatserver   nc 127.0.0.1 {p3:<5}                   trust mode, verify = \"none\" (echo)\n\n\
         \x20 curl 127.0.0.1:{admin}/metrics\n\
         \x20 open http://127.0.0.1:{admin}/status in a browser (the status page; /status.json for scripts)\n\
         \x20 {exe} probe -c {config} --all\n\n\
         Type a line into nc and it comes back through TLS. Ctrl-C stops everything and removes {dir}.\n",
        dir = d.display(),
        p0 = b,
        p1 = b + 1,
        p2 = b + 2,
        p3 = b + 3,
        admin = ports.admin,
        config = config_path.display(),
    );
}

fn acceptor(cert: &Path, key: &Path, client_ca: Option<&Path>) -> std::io::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(pki::server_config(cert, key, client_ca)?))
}

/// A port nothing listens on (the demo's dead primary).
fn dead_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts an echo peer; with `upgrade`, it first expects the demo's upgrade
/// request in plain text and answers with the go-ahead.
async fn spawn_peer(acceptor: TlsAcceptor, upgrade: bool) -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = serve_peer(acceptor, tcp, upgrade).await;
            });
        }
    });
    Ok(addr)
}

async fn serve_peer(
    acceptor: TlsAcceptor,
    mut tcp: TcpStream,
    upgrade: bool,
) -> std::io::Result<()> {
    if upgrade {
        let mut line = String::new();
        // Read the request byte by byte so nothing after it is consumed.
        let mut r = BufReader::with_capacity(1, &mut tcp);
        r.read_line(&mut line).await?;
        if line != DEMO_UPGRADE_REQUEST {
            tcp.write_all(b"ERR expected STARTTLS\r\n").await?;
            return Ok(());
        }
        tcp.write_all(DEMO_UPGRADE_GO_AHEAD.as_bytes()).await?;
    }
    let tls = acceptor.accept(tcp).await?;
    let (mut r, mut w) = tokio::io::split(tls);
    tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await
}
