//! Routes: everything between a listening socket and a relayed connection.
//! `plan` builds a route from config, `listener` accepts and limits,
//! `connect` reaches the upstream with failover, `conn` composes one
//! connection's legs and the relay, `stream` is the byte-stream type they share.

pub mod conn;
pub mod connect;
pub mod listener;
pub mod plan;
pub mod stream;
