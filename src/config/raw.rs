//! The file as written: serde structs that mirror the TOML one to one.
//!
//! Every struct refuses unknown keys, so a typo is an error rather than a
//! setting silently ignored. Values stay as written (strings for durations,
//! modes and addresses); `validate` turns them into the runtime model.

use serde::Deserialize;

use super::script::RawStep;

/// The top level of the file. Routes are kept as untyped values here so that
/// each one is deserialized on its own, and an error in it can name the route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub shutdown_grace: Option<String>,
    /// Runtime worker threads; absent: one per CPU.
    pub workers: Option<u64>,
    pub admin: Option<RawAdmin>,
    pub log: Option<RawLog>,
    pub defaults: Option<RawDefaults>,
    /// Refuse (or only warn about) private keys that group or others can read.
    pub strict_key_permissions: Option<bool>,
    #[serde(default)]
    pub route: Vec<config::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}

/// Settings a route may also set itself; the route wins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub connect_timeout: Option<String>,
    pub handshake_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    pub listen: String,
    pub connect: Vec<String>,
    pub connect_timeout: Option<String>,
    pub handshake_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<u64>,
    pub connect_tls: Option<RawConnectTls>,
    pub listen_tls: Option<RawListenTls>,
    // [i16-net] PROXY protocol and the CONNECT proxy.
    /// "v1" or "v2": send a PROXY header to the upstream.
    pub proxy_protocol: Option<String>,
    /// Require a PROXY header from clients.
    pub accept_proxy_protocol: Option<bool>,
    /// "http://host:port" of a CONNECT proxy.
    pub via: Option<String>,
    /// Path of a file holding "user:password" for the proxy.
    pub via_credentials: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnectTls {
    pub start: Option<String>,
    pub upgrade: Option<String>,
    pub script: Option<Vec<RawStep>>,
    /// The name the sidecar gives itself in an upgrade exchange that asks for
    /// one (SMTP `EHLO`); default "tls-sidecar".
    pub upgrade_hostname: Option<String>,
    pub verify: Option<String>,
    pub server_name: Option<String>,
    pub ca: Option<String>,
    pub pins: Option<Vec<String>>,
    pub crl: Option<Vec<String>>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub protocols: Option<Vec<String>>,
    pub alpn: Option<Vec<String>>,
    /// TLS session resumption towards the upstream (tickets and session IDs).
    pub resumption: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub certs: Option<Vec<RawCertKey>>,
    pub client_ca: Option<String>,
    pub crl: Option<Vec<String>>,
    pub sni_required: Option<bool>,
    pub protocols: Option<Vec<String>>,
    pub alpn: Option<Vec<String>>,
    /// Refuse clients that offer none of `alpn` (default: accept them).
    pub alpn_required: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertKey {
    pub cert: String,
    pub key: String,
}
