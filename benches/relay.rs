//! Micro-benchmarks of the relay engine, `tls_sidecar::relay::relay`, in
//! bytes per second (issue 7). Each benchmark carries one payload one way
//! through the relay and waits for the relay to end cleanly, so a figure
//! includes the half-close and (for TLS) close_notify at the end:
//!
//! - `duplex_plain`: in memory, plain → plain over `tokio::io::duplex` pairs.
//! - `duplex_tls`: in memory, a rustls client/server pair (tokio-rustls,
//!   TLS 1.3, AES-128-GCM as the comparison's terminator) with the relay on
//!   the client side: `plain_to_tls` (the relay encrypts) and `tls_to_plain`
//!   (the relay decrypts). The handshake is done before the clock starts.
//! - `tcp_loopback`: real sockets on 127.0.0.1, plain → plain, and plain →
//!   TLS for the largest size. Plain → plain also runs `splice`, the
//!   `relay::relay_tcp` of plain routes (splice(2) on Linux), against the
//!   buffered relay on the same sockets.
//!
//! Every figure is measured for the relay and, as the baseline the issue
//! asks to keep, for `tokio::io::copy_bidirectional` on the same streams.
//! Everything runs on a current-thread runtime: writer, relay and reader
//! share one thread, so a figure is the whole path's CPU per byte.
//!
//!   cargo bench --bench relay              # about a minute
//!   cargo bench --bench relay -- --test    # each benchmark once (CI)
//!   cargo bench --bench relay -- duplex_tls

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, Bencher, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use tls_sidecar::relay::{self, End, Source};
use tls_sidecar::tls::engine::TlsClient;

const MIB: usize = 1024 * 1024;
const SIZES: [usize; 2] = [MIB, 16 * MIB];
/// What a writer hands to the stream per call, and a reader asks for.
const CHUNK: usize = 64 * 1024;
/// In-memory pipes hold at most this much, like a loopback socket buffer.
const PIPE: usize = 256 * 1024;
const IDLE: Duration = Duration::from_secs(60);

/// The thing under test, and the baseline it is compared with.
#[derive(Clone, Copy)]
enum Engine {
    Relay,
    CopyBidirectional,
}

impl Engine {
    const ALL: [Engine; 2] = [Engine::Relay, Engine::CopyBidirectional];

    fn name(self) -> &'static str {
        match self {
            Engine::Relay => "relay",
            Engine::CopyBidirectional => "copy_bidirectional",
        }
    }

    /// Runs until both directions have ended; panics on anything but a
    /// clean end, so a benchmark never times a failure.
    async fn run<C, U>(self, client: &mut C, upstream: &mut U)
    where
        C: Source + AsyncWrite,
        U: Source + AsyncWrite,
    {
        match self {
            Engine::Relay => {
                let out = relay::relay(client, upstream, IDLE, &()).await;
                assert!(matches!(out.end, End::Closed), "relay ended {:?}", out.end);
            }
            Engine::CopyBidirectional => {
                tokio::io::copy_bidirectional(client, upstream)
                    .await
                    .expect("copy_bidirectional");
            }
        }
    }
}

/// Writes `total` bytes, then shuts the writer down (FIN / close_notify).
async fn pump<W: AsyncWrite + Unpin>(w: &mut W, total: usize) {
    let chunk = [0x5au8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK);
        w.write_all(&chunk[..n]).await.expect("write");
        left -= n;
    }
    w.shutdown().await.expect("shutdown");
}

/// Reads to the end, then shuts its own writer down so the relay's other
/// direction ends too. Returns the bytes read.
async fn drain<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> usize {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        total += n;
    }
    s.shutdown().await.expect("shutdown");
    black_box(total)
}

/// Carries `total` bytes from `source` through `relay` (an engine relaying
/// between the client and upstream ends) to `sink` (the client's or the
/// upstream's far end, whichever way the bytes go), and returns how long it
/// took.
async fn carry<A, P>(
    total: usize,
    (source, sink): (&mut A, &mut P),
    relay: impl Future<Output = ()>,
) -> Duration
where
    A: AsyncRead + AsyncWrite + Unpin,
    P: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let (_, got, ()) = tokio::join!(
        async {
            pump(source, total).await;
            // The far side's shutdown comes back to us; read it so the
            // relay can finish that direction.
            let mut rest = [0u8; 1];
            assert_eq!(source.read(&mut rest).await.expect("read"), 0);
        },
        drain(sink),
        relay,
    );
    let took = start.elapsed();
    assert_eq!(got, total, "every byte arrives");
    took
}

/// `tls_sidecar::relay::relay_tcp`, what plain ↔ plain routes run: splice(2)
/// on Linux. Panics on anything but a clean end.
async fn splice(client: &mut TcpStream, upstream: &mut TcpStream) {
    let out = relay::relay_tcp(client, upstream, IDLE, &()).await;
    assert!(
        matches!(out.end, End::Closed),
        "relay_tcp ended {:?}",
        out.end
    );
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A TLS 1.3, AES-128-GCM client/server pair trusting a throwaway CA, the
/// way the comparison's nginx terminator is pinned.
struct Tls {
    client: Arc<rustls::ClientConfig>,
    connector: TlsConnector,
    acceptor: TlsAcceptor,
}

impl Tls {
    fn new() -> Tls {
        use rustls::crypto::aws_lc_rs as provider;
        let ca = tls_sidecar::pki::Ca::new("bench CA");
        let leaf = ca.leaf("localhost", &["localhost"]);
        let suite = || {
            let mut p = provider::default_provider();
            p.cipher_suites = vec![provider::cipher_suite::TLS13_AES_128_GCM_SHA256];
            Arc::new(p)
        };
        let server = rustls::ServerConfig::builder_with_provider(suite())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.cert_der.clone())],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key"),
            )
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("CA"))
            .expect("root");
        let client = rustls::ClientConfig::builder_with_provider(suite())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = Arc::new(client);
        Tls {
            client: client.clone(),
            connector: TlsConnector::from(client),
            acceptor: TlsAcceptor::from(Arc::new(server)),
        }
    }

    /// One transfer of `size` bytes (see `one_way`) over a fresh TLS pair on
    /// `(up_io, peer_io)`, the relay's upstream side made with `client`.
    async fn one_way<A, S>(
        &self,
        client: Client,
        engine: Engine,
        size: usize,
        to_tls: bool,
        (app, client_end): (&mut A, &mut A),
        (up_io, peer_io): (S, S),
    ) -> Duration
    where
        A: Source + AsyncRead + AsyncWrite + Unpin,
        S: AsyncRead + AsyncWrite + Unpin,
        TlsClient<S>: Source,
        tokio_rustls::client::TlsStream<S>: Source,
    {
        // The two upstream types differ; the transfer over them does not.
        macro_rules! over {
            ($pair:expr) => {{
                let (mut upstream, mut peer) = $pair.await;
                let (peer, upstream) = (&mut peer, &mut upstream);
                one_way(engine, size, to_tls, app, peer, client_end, upstream).await
            }};
        }
        match client {
            Client::Unbuffered => over!(self.pair_unbuffered(up_io, peer_io)),
            Client::TokioRustls => over!(self.pair(up_io, peer_io)),
        }
    }

    /// Completes a handshake over `client_io`/`server_io`.
    async fn pair<S>(
        &self,
        client_io: S,
        server_io: S,
    ) -> (
        tokio_rustls::client::TlsStream<S>,
        tokio_rustls::server::TlsStream<S>,
    )
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from("localhost").expect("name");
        let (c, s) = tokio::join!(
            self.connector.connect(name, client_io),
            self.acceptor.accept(server_io)
        );
        (c.expect("client handshake"), s.expect("server handshake"))
    }

    /// The same with the sidecar's unbuffered client (`tls::engine`) on
    /// the client side.
    async fn pair_unbuffered<S>(
        &self,
        client_io: S,
        server_io: S,
    ) -> (TlsClient<S>, tokio_rustls::server::TlsStream<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from("localhost").expect("name");
        let (c, s) = tokio::join!(
            tls_sidecar::tls::engine::connect(self.client.clone(), name, client_io),
            self.acceptor.accept(server_io)
        );
        (c.expect("client handshake"), s.expect("server handshake"))
    }
}

/// The upstream's TLS client in a TLS benchmark.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    /// tokio-rustls (buffered rustls): the baseline.
    TokioRustls,
    /// rustls's unbuffered API (`tls::engine`), the sidecar's default.
    Unbuffered,
}

/// The (engine, client) combinations a TLS benchmark runs: both engines on
/// tokio-rustls, and the relay on the unbuffered client.
const TLS_CASES: [(Engine, Client); 3] = [
    (Engine::Relay, Client::TokioRustls),
    (Engine::CopyBidirectional, Client::TokioRustls),
    (Engine::Relay, Client::Unbuffered),
];

fn case_name(engine: Engine, client: Client) -> String {
    match client {
        Client::TokioRustls => engine.name().to_owned(),
        Client::Unbuffered => format!("{}_unbuffered", engine.name()),
    }
}

fn duplex_plain(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = c.benchmark_group("duplex_plain");
    configure(&mut g);
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        for engine in Engine::ALL {
            let id = BenchmarkId::new(engine.name(), label(size));
            g.bench_with_input(id, &size, |b, &size| {
                timed(b, &rt, || async move {
                    let (mut app, mut client) = duplex(PIPE);
                    let (mut upstream, mut peer) = duplex(PIPE);
                    let ends = (&mut app, &mut peer);
                    carry(size, ends, engine.run(&mut client, &mut upstream)).await
                })
            });
        }
    }
    g.finish();
}

fn duplex_tls(c: &mut Criterion) {
    let rt = current_thread();
    let tls = Tls::new();
    let mut g = c.benchmark_group("duplex_tls");
    configure(&mut g);
    for size in SIZES {
        tls_cases(&mut g, &rt, &tls, size, || async {
            (duplex(PIPE), duplex(PIPE))
        });
    }
    g.finish();
}

/// Every case of [`TLS_CASES`] both ways at `size`, each transfer over
/// fresh `((app, client end), (upstream io, peer io))` from `pairs`.
fn tls_cases<S, F, Fut>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    tls: &Tls,
    size: usize,
    pairs: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ((S, S), (S, S))>,
    S: Source + AsyncRead + AsyncWrite + Unpin,
    TlsClient<S>: Source,
    tokio_rustls::client::TlsStream<S>: Source,
{
    g.throughput(Throughput::Bytes(size as u64));
    let pairs = &pairs;
    for (engine, client) in TLS_CASES {
        for to_tls in [true, false] {
            let way = if to_tls {
                "plain_to_tls"
            } else {
                "tls_to_plain"
            };
            let id = format!("{}/{way}", case_name(engine, client));
            g.bench_with_input(BenchmarkId::new(id, label(size)), &size, |b, &size| {
                timed(b, rt, || async move {
                    let ((mut app, mut client_end), ends) = pairs().await;
                    let app_ends = (&mut app, &mut client_end);
                    tls.one_way(client, engine, size, to_tls, app_ends, ends)
                        .await
                })
            });
        }
    }
}

/// What `iter_custom` wants: `iters` runs of `once` (one transfer, which
/// returns how long it took) on `rt`, their times summed.
fn timed<F, Fut>(b: &mut Bencher<'_, WallTime>, rt: &Runtime, mut once: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    b.iter_custom(|iters| {
        rt.block_on(async {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                spent += once().await;
            }
            spent
        })
    });
}

/// `carry` towards the TLS peer (`to_tls`) or from it.
async fn one_way<A, P, C, U>(
    engine: Engine,
    size: usize,
    to_tls: bool,
    app: &mut A,
    peer: &mut P,
    client: &mut C,
    upstream: &mut U,
) -> Duration
where
    A: AsyncRead + AsyncWrite + Unpin,
    C: Source + AsyncWrite,
    U: Source + AsyncWrite,
    P: AsyncRead + AsyncWrite + Unpin,
{
    if to_tls {
        carry(size, (app, peer), engine.run(client, upstream)).await
    } else {
        carry(size, (peer, app), engine.run(client, upstream)).await
    }
}

/// Two connected loopback sockets: (connecting side, accepted side).
async fn tcp_pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let (a, b) = tokio::join!(
        TcpStream::connect(l.local_addr().expect("addr")),
        l.accept()
    );
    let (a, (b, _)) = (a.expect("connect"), b.expect("accept"));
    // As the sidecar sets on its sockets.
    a.set_nodelay(true).expect("nodelay");
    b.set_nodelay(true).expect("nodelay");
    (a, b)
}

fn tcp_loopback(c: &mut Criterion) {
    let rt = current_thread();
    let tls = Tls::new();
    let (front, back) = rt.block_on(async {
        (
            TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        )
    });
    let (front, back) = (&front, &back);
    let mut g = c.benchmark_group("tcp_loopback");
    configure(&mut g);
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        // `None`: the spliced relay of plain routes, on the same sockets.
        for engine in [None].into_iter().chain(Engine::ALL.map(Some)) {
            let id = format!("{}/plain_to_plain", engine.map_or("splice", Engine::name));
            g.bench_with_input(BenchmarkId::new(id, label(size)), &size, |b, &size| {
                timed(b, &rt, || async move {
                    let (mut app, mut client) = tcp_pair(front).await;
                    let (mut upstream, mut peer) = tcp_pair(back).await;
                    let ends = (&mut app, &mut peer);
                    match engine {
                        Some(e) => carry(size, ends, e.run(&mut client, &mut upstream)).await,
                        None => carry(size, ends, splice(&mut client, &mut upstream)).await,
                    }
                })
            });
        }
    }
    // The main figure on real sockets, largest size only.
    tls_cases(&mut g, &rt, &tls, SIZES[SIZES.len() - 1], || async {
        (tcp_pair(front).await, tcp_pair(back).await)
    });
    g.finish();
}

/// Small and short, so the whole run stays around a minute on 2 cores.
fn configure<M: criterion::measurement::Measurement>(g: &mut criterion::BenchmarkGroup<'_, M>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
}

fn label(size: usize) -> String {
    format!("{}MiB", size / MIB)
}

criterion_group!(benches, duplex_plain, duplex_tls, tcp_loopback);
criterion_main!(benches);
