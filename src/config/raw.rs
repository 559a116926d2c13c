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
    /// After SIGTERM: readiness fails at once, listeners keep accepting this long.
    pub drain_delay: Option<String>,
    /// Reload when the config file changes (default true).
    pub watch_config: Option<bool>,
    /// Runtime worker threads; absent: one per CPU.
    pub workers: Option<u64>,
    pub admin: Option<RawAdmin>,
    pub log: Option<RawLog>,
    pub defaults: Option<RawDefaults>,
    /// Refuse (or only warn about) private keys that group or others can read.
    pub strict_key_permissions: Option<bool>,
    /// Restrict the process with Landlock after start-up (default true).
    pub sandbox: Option<bool>,
    /// Kernel TLS on TLS legs: "auto" or "off" (issue 18).
    pub kernel_tls: Option<String>,
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
    /// Genesys transport parameters for the connect side
    /// ("tls=1;certificate=…;trusted-ca=…"), translated by `genesys`.
    pub genesys: Option<String>,
    // PROXY protocol and the CONNECT proxy.
    /// "v1" or "v2": send a PROXY header to the upstream.
    pub proxy_protocol: Option<String>,
    /// Require a PROXY header from clients.
    pub accept_proxy_protocol: Option<bool>,
    /// "http://host:port" of a CONNECT proxy.
    pub via: Option<String>,
    /// Path of a file holding "user:password" for the proxy.
    pub via_credentials: Option<String>,
    /// This route's kernel TLS choice, over the top-level `kernel_tls`.
    pub kernel_tls: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
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
    /// The password of a keystore `cert` (and of `ca`, unless
    /// `ca_password_file` is given).
    pub password_file: Option<String>,
    /// The entry of a keystore `cert` that holds the client identity.
    pub alias: Option<String>,
    pub ca_password_file: Option<String>,
    /// A JKS key entry's own password, when it differs from the store's.
    pub key_password_file: Option<String>,
    pub ciphers: Option<Vec<String>>,
    /// More chain files from a `genesys` comma-separated `certificate`;
    /// not a key of the file.
    #[serde(skip)]
    pub genesys_chain: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
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
    /// The password of a keystore `cert` (and of `client_ca`, unless
    /// `client_ca_password_file` is given).
    pub password_file: Option<String>,
    pub alias: Option<String>,
    pub client_ca_password_file: Option<String>,
    pub key_password_file: Option<String>,
    pub ciphers: Option<Vec<String>>,
    /// Genesys transport parameters of a server port ("tls=1;tls-mutual=1;…").
    pub genesys: Option<String>,
    /// As in `RawConnectTls`.
    #[serde(skip)]
    pub genesys_chain: Vec<String>,
    /// A DER OCSP response to staple with `cert` (with `certs`, per entry).
    pub ocsp: Option<String>,
    /// Which verified client identities may connect (needs `client_ca`).
    pub allow: Option<RawAllow>,
}

/// `allow = { dns = [...], uri = [...], ... }`: client identities, by kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    pub dns: Option<Vec<String>>,
    pub uri: Option<Vec<String>>,
    pub ip: Option<Vec<String>>,
    pub email: Option<Vec<String>>,
    pub cn: Option<Vec<String>>,
    pub ou: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertKey {
    pub cert: String,
    /// Absent: `cert` is a keystore that holds the key too.
    pub key: Option<String>,
    pub password_file: Option<String>,
    pub key_password_file: Option<String>,
    pub alias: Option<String>,
    pub ocsp: Option<String>,
}
