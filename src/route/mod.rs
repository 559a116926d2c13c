//! Routes: everything between a listening socket and a relayed connection.
//! `plan` builds a route from config (with `proxy_warnings`, what its PROXY
//! keys risk), `listener` accepts and limits, `connect` reaches the
//! upstream with failover (directly, or through a CONNECT tunnel: `via`;
//! both dial TCP through `dial`), `legs` sets up each leg (TLS termination;
//! upgrade and TLS to the upstream; shared with `probe`), `conn` composes
//! one connection's legs and the relay, `ending` decides, logs and carries
//! out how it ended, `stream` is the byte-stream type they share.
//! `proxy_header` reads a load balancer's PROXY header and makes ours, and
//! `head` reads either head off a socket without taking a byte past it.
//! `stapling` keeps each listen certificate's OCSP staple valid over time
//! (and fetches it with `ocsp = "auto"`).

pub mod conn;
pub mod connect;
pub mod dial;
pub mod ending;
pub mod head;
pub mod legs;
pub mod listener;
pub mod plan;
pub mod proxy_header;
pub mod proxy_warnings;
pub mod stapling;
pub mod stream;
#[cfg(test)]
mod tls_relay_tests;
pub mod via;
