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
//! - [`tls`]: certificate material from files, the rustls client and server
//!   configs of each route, the verifiers of each `verify` mode (the
//!   no-verify one in `tls::danger`), handshake failure reasons.
//! - [`upgrade`]: the sans-io engine for "plain exchange, then TLS on the
//!   same socket" (PostgreSQL, SMTP, …, or a route's own script) and its
//!   thin async driver.
//! - [`proxy_protocol`]: the sans-io PROXY protocol v1/v2 header decoder
//!   (a load balancer's header in front of a client's bytes) and encoder
//!   (ours, in front of the upstream's).
//! - [`relay`]: moves bytes both ways between two streams, carrying
//!   half-close, truncation and resets; and the upstream TLS client on
//!   rustls's unbuffered API (`relay::tls`), whose buffers are held only
//!   while bytes are in flight.
//! - [`telemetry`]: metric names and per-route handles.
//! - [`watch`]: notices changed certificate files.
//! - [`route`]: per-route plan, listener and limits, upstream failover, and
//!   the per-connection pipeline composing the pieces above.
//! - [`admin`]: the `/metrics`, `/healthz`, `/readyz` endpoint.
//! - [`serve`]: the `run` supervisor: bind, reload, rotate, drain.
//! - [`check`], [`probe`]: the reports of those commands.
//! - [`demo`]: the `demo` command: throwaway PKI and peers around `serve`.
//! - [`pki`]: throwaway CAs and certificates for `demo` and the tests.
//!
//! `main.rs` is the command line: it parses arguments, sets up logging and
//! the metrics recorder, and calls into these.

#![forbid(unsafe_code)]

pub mod admin;
pub mod check;
pub mod config;
pub mod demo;
pub mod pki;
pub mod probe;
pub mod proxy_protocol;
pub mod relay;
pub mod route;
pub mod serve;
pub mod telemetry;
pub mod tls;
pub mod upgrade;
pub mod watch;
