//! Routes: everything between a listening socket and a relayed connection.
//! `plan` builds a route from config, `listener` accepts and limits,
//! `connect` reaches the upstream with failover, `conn` composes one
//! connection's legs and the relay, `stream` is the byte-stream type they share.
//! [i16-net] `proxy_header` reads a load balancer's PROXY header and makes
//! ours, `via` opens CONNECT tunnels through a forward proxy, `head` reads
//! either head off a socket without taking a byte past it.

pub mod conn;
pub mod connect;
pub mod head;
pub mod listener;
pub mod plan;
pub mod proxy_header;
pub mod stream;
pub mod via;
