//! tls-sidecar: a per-host secure connection broker. It exposes plaintext
//! ports on the host and carries each connection to its peer over TLS the
//! way that peer needs it (a TLS port, an in-band upgrade, mutual TLS,
//! trust mode), and can terminate TLS in front of a local plain port.
//!
//! # Layout
//!
//! Dependencies point one way, from the top of this list to the bottom:
//!
//! - [`config`]: reads the TOML file and `TLS_SIDECAR__…` overrides, and
//!   validates them, in one place, into the runtime model. No sockets.
//! - [`source`], [`labels`] and `pool`: small pieces under every layer
//!   below: the `Source` trait (a stream the relay reads from, which may
//!   write its bytes straight to the other side) and the `SpliceEnd` trait
//!   (a socket the splice relay moves bytes through), the labels several
//!   layers name (`Reason`, `Side`), and the per-thread pool the relay's
//!   and the TLS engine's buffers come from.
//! - [`tls`]: certificate material from files, the rustls client and server
//!   configs of each route, the verifiers of each `verify` mode (the
//!   no-verify one in `tls::danger`), certificate name matching
//!   (`tls::names`), client identity rules (`tls::identity`), stapled OCSP responses (`tls::ocsp`), trust parity
//!   with OpenSSL and Java (`tls::policy`: an anchor presented as itself,
//!   the CN fallback, refusals told with the certificate's facts), handshake
//!   failure reasons and sides (`tls::reason`) with a sentence naming cause
//!   and fix for every certificate error (`tls::explain`), and the two
//!   engines that carry a TLS leg's bytes once the handshake is done: the
//!   upstream TLS client on rustls's unbuffered API (`tls::engine`), whose
//!   buffers are held only while bytes are in flight, and kernel TLS
//!   (`tls::kernel`), which hands a leg's keys to the socket.
//! - [`upgrade`]: the sans-io engine for "plain exchange, then TLS on the
//!   same socket" (PostgreSQL, SMTP, …, or a route's own script) and its
//!   thin async driver.
//! - [`proxy_protocol`]: the sans-io PROXY protocol v1/v2 header decoder
//!   (a load balancer's header in front of a client's bytes) and encoder
//!   (ours, in front of the upstream's).
//! - [`relay`]: moves bytes both ways between two streams (a buffered
//!   copy, or splice(2) between sockets), carrying half-close, truncation
//!   and resets. It names no TLS type: it sees streams through `source`'s
//!   traits.
//! - [`activity`]: each route's recent activity for the status page
//!   (outcomes per minute, upstreams' last result, open connections, peer
//!   certificates seen), recorded by the metric handles.
//! - [`telemetry`]: metric names and per-route handles; the series that must
//!   be able to disappear (certificate expiry, CRL nextUpdate, a removed
//!   route's) are kept and rendered by `telemetry::owned`.
//! - [`watch`]: notices changed certificate files and config file.
//! - [`route`]: per-route plan, listener and limits, upstream failover
//!   (the TCP dial in `route::dial`), and the per-connection pipeline
//!   composing the pieces above: it picks each TLS leg's engine.
//! - [`status`]: the status page (`/status` HTML, `/status.json`) built
//!   from the serving routes and their activity.
//! - [`admin`]: the `/metrics`, `/healthz`, `/readyz`, `/status` endpoint
//!   and the loopback-only `POST /reload`.
//! - [`serve`]: the `run` supervisor, one function per phase: bind,
//!   publish, serve (reload, rotate) until a signal, drain.
//! - [`sandbox`]: the Landlock restriction `run` enters once the config is
//!   loaded (read-only access to the files it needs, nothing else).
//! - [`check`], [`probe`]: the reports of those commands; [`report`]: their
//!   `--json` forms.
//! - [`import`]: `import jetty` and `import genesys`: a commented route from
//!   GMS's Jetty SSL context or a Genesys transport-parameter string.
//! - [`reload`]: the `reload` command: validate, ask the running sidecar,
//!   wait for its verdict.
//! - [`demo`]: the `demo` command: throwaway PKI and peers around `serve`.
//! - [`healthcheck`]: the `healthcheck` command's HTTP GET.
//! - [`pki`]: throwaway CAs and certificates for `demo` and the tests.
//!
//! `main.rs` is the command line: it parses arguments, sets up logging and
//! the metrics recorder, and calls into these. `ARCHITECTURE.md` at the
//! repository root follows one connection through these modules and says
//! where each policy lives.

#![forbid(unsafe_code)]

pub mod activity;
pub mod admin;
pub mod check;
pub mod config;
pub mod demo;
pub mod healthcheck;
pub mod import;
pub mod labels;
pub mod pki;
mod pool;
pub mod probe;
pub mod proxy_protocol;
pub mod relay;
pub mod reload;
pub mod report;
pub mod route;
pub mod sandbox;
pub mod serve;
pub mod source;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod upgrade;
pub mod watch;
