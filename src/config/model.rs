//! The validated runtime model: what the rest of the sidecar works from.
//!
//! A value of these types is known good: durations parsed, defaults
//! resolved, modes are enums, addresses parsed, mutually dependent keys
//! checked, upgrade scripts decoded. File *contents* (certificates, keys,
//! CRLs) are read by the `tls` layer from the paths kept here. A mode written
//! as one word whose value carries nothing more (`kernel_tls`, `log.format`)
//! is read from the file straight into its enum here.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::script::ScriptStep;

/// A whole, valid configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub source: PathBuf,
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long the listeners keep accepting while readiness
    /// already fails (so a load balancer can take the endpoint out first).
    pub drain_delay: Duration,
    /// Reload when the config file changes, as SIGHUP does.
    pub watch_config: bool,
    /// Worker threads of the runtime (`workers`); `None`: one per CPU the
    /// process may use. Read at start only: a reload that changes it is
    /// told it takes effect at the next start.
    pub workers: Option<usize>,
    pub admin: Option<Admin>,
    pub log: Log,
    /// Refuse private keys readable by group or others instead of warning.
    pub strict_key_permissions: bool,
    /// Restrict the process's file access with Landlock once started
    /// (`sandbox`, default true). Read at start only.
    pub sandbox: bool,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub listen: SocketAddr,
    /// `hosts`: the names (lowercase, no port) a request's `Host` may give
    /// besides an IP literal or `localhost`; any other gets 421.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `log.level`: the least severe events logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The word used in config, and the `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
}

/// One plaintext (or TLS-terminating) port and the peer it leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub listen: SocketAddr,
    /// Tried in order: primary, then backups.
    pub connect: Vec<Upstream>,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub connect_tls: Option<ConnectTls>,
    pub listen_tls: Option<ListenTls>,
    // PROXY protocol and the CONNECT proxy.
    /// Send a PROXY header of this version to the upstream first.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Require a PROXY header (v1 or v2) from every client first.
    pub accept_proxy_protocol: bool,
    /// Who may send that header (`accept_proxy_protocol_from`); `None`:
    /// anyone who reaches the listener (as before the key existed).
    pub accept_proxy_protocol_from: Option<Vec<Cidr>>,
    /// Reach the upstreams through this HTTP CONNECT proxy.
    pub via: Option<Via>,
    /// Kernel TLS on this route's TLS legs (`kernel_tls`, issue 18).
    pub kernel_tls: KernelTls,
}

/// An address block, `10.0.0.0/8` or `::1/128`: the address with its host
/// bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Is `ip` in this block? An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
    /// as a dual-stack listener sees an IPv4 client) counts as its IPv4 form.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let prefix = u32::from(self.prefix);
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The PROXY protocol version a route sends (`proxy_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ProxyProtocol {
    V1,
    V2,
}

impl ProxyProtocol {
    /// The word used in config and logs: "v1" or "v2".
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An HTTP forward proxy that upstreams are reached through, with CONNECT
/// (`via = "http://host:port"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub proxy: Upstream,
    /// A file holding `user:password` for Basic proxy authentication
    /// (`via_credentials`); read when the route is built, never logged.
    pub credentials: Option<PathBuf>,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.proxy)
    }
}

/// `kernel_tls`: whether a TLS leg hands its keys to the kernel after the
/// handshake (kTLS) and the relay splices, or stays on rustls in userspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum KernelTls {
    /// kTLS where the kernel offers it and the suite allows; else userspace.
    Auto,
    /// Always the userspace engine (the default).
    #[default]
    Off,
}

impl KernelTls {
    /// The value as written in the config (the `kernel_tls` label of
    /// `route_info`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One `connect` entry: a host (DNS name or IP literal, resolved at connect
/// time) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How the upstream leg is secured.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectTls {
    pub start: Start,
    pub verify: Verify,
    /// SNI and the verified name; `None`: the host of the connect entry in use.
    pub server_name: Option<String>,
    /// Trust anchors; `None`: the operating system's store.
    pub ca: Option<PathBuf>,
    pub crl: Vec<PathBuf>,
    /// Present: mutual TLS with this client certificate.
    pub client_cert: Option<CertKey>,
    pub protocols: Vec<TlsVersion>,
    pub alpn: Vec<Vec<u8>>,
    pub resumption: bool,
    /// The password file of a keystore `ca`.
    pub ca_password_file: Option<PathBuf>,
    /// Allowed cipher suites by their rustls names; empty: all rustls offers.
    pub ciphers: Vec<String>,
    /// `name_check_cn_fallback`: with `verify = "full"`, a certificate with
    /// no DNS subjectAltName may name the host in its CN (docs/src/trust.md).
    pub cn_fallback: bool,
    /// How the route's `genesys` parameters were translated, for `check`.
    pub genesys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// TLS at once (a TLS port).
    Direct,
    /// A plain exchange first, then TLS on the same socket.
    Upgrade(Upgrade),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Upgrade {
    /// A built-in profile; `hostname` is what the sidecar calls itself where
    /// the protocol asks (`upgrade_hostname`, SMTP's EHLO).
    Builtin { profile: Profile, hostname: String },
    /// The route's own steps, checked and decoded (never empty).
    Script(Vec<ScriptStep>),
}

/// A built-in upgrade profile (`upgrade = "postgres"`, ...).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::Display, strum::VariantArray,
)]
#[strum(serialize_all = "lowercase")]
pub enum Profile {
    Postgres,
    Smtp,
    Pop3,
    Imap,
    Ftp,
    Ldap,
}

impl Profile {
    /// Every built-in profile.
    pub const ALL: &'static [Profile] = <Self as strum::VariantArray>::VARIANTS;

    /// The word used in config and in `check`'s output.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How the upstream's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Verify {
    /// Chain to a trust anchor, and the name.
    Full,
    /// Chain only; the name is not checked.
    Chain,
    /// The SHA-256 of the leaf's SubjectPublicKeyInfo must be one of these.
    Pin(Vec<[u8; 32]>),
    /// DANGER: any certificate is accepted (the GMS "trust server" mode).
    None,
}

impl Verify {
    /// The word used in config, logs and the `verify` metric label.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::IntoStaticStr)]
pub enum TlsVersion {
    #[strum(serialize = "TLSv1.2")]
    Tls12,
    #[strum(serialize = "TLSv1.3")]
    Tls13,
}

impl TlsVersion {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A certificate chain file and its private key file, or a keystore
/// (PKCS#12 or JKS) holding both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKey {
    pub cert: PathBuf,
    /// `None`: `cert` is a keystore that holds the key (told by content
    /// when loaded).
    pub key: Option<PathBuf>,
    /// More PEM certificate files appended to the chain, in order
    /// (Genesys's comma-separated `certificate`).
    pub chain: Vec<PathBuf>,
    /// The keystore's password file.
    pub password_file: Option<PathBuf>,
    /// A JKS key entry's password file, when not the store's password
    /// (Jetty's `KeyManagerPassword`).
    pub key_password_file: Option<PathBuf>,
    /// The keystore entry to use; `None`: the only private key entry.
    pub alias: Option<String>,
    /// The table this pair was given in, for messages: `connect_tls`,
    /// `listen_tls` or `listen_tls.certs[1]` (its keys are `.cert`, `.key`).
    pub key_name: String,
    /// Where the OCSP response stapled with this certificate comes from
    /// (listen side only).
    pub ocsp: Option<Ocsp>,
}

/// `ocsp`: a DER response file kept by someone else, or `"auto"`: fetched
/// from the certificate's responder by the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ocsp {
    File(PathBuf),
    Auto,
}

impl Ocsp {
    /// `"auto"`, or a path (`./auto` for a file of that name).
    pub fn from_config(s: &str) -> Ocsp {
        if s == "auto" {
            Ocsp::Auto
        } else {
            Ocsp::File(PathBuf::from(s))
        }
    }

    /// The file, if the response comes from one.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Ocsp::File(p) => Some(p),
            Ocsp::Auto => None,
        }
    }
}

/// TLS termination on the listen side.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenTls {
    /// The first is the default for clients that send no SNI, or an unknown name.
    pub certs: Vec<CertKey>,
    /// Present: clients must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
    pub crl: Vec<PathBuf>,
    pub sni_required: bool,
    pub protocols: Vec<TlsVersion>,
    pub alpn: Vec<Vec<u8>>,
    pub alpn_required: bool,
    /// The password file of a keystore `client_ca`.
    pub client_ca_password_file: Option<PathBuf>,
    /// Allowed cipher suites by their rustls names; empty: all rustls offers.
    pub ciphers: Vec<String>,
    /// How the table's `genesys` parameters were translated, for `check`.
    pub genesys: Vec<String>,
    /// Present: only verified clients with one of these identities get in.
    pub allow: Option<Allow>,
    /// Sessions may be resumed (TLS 1.3 tickets, a TLS 1.2 session-ID
    /// cache). `false`: every handshake is a full one.
    pub resumption: bool,
}

/// The client identities a TLS listener lets in (`listen_tls.allow`). A
/// client matches when any entry matches: subjectAltName entries (DNS, URI,
/// IP, email) first, then the subject's CN and OU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// Lower-case DNS names; `*` only as the whole leftmost label.
    pub dns: Vec<String>,
    /// Exact URIs, SPIFFE IDs included (`spiffe://example.org/gms`).
    pub uri: Vec<String>,
    pub ip: Vec<IpAddr>,
    /// rfc822Name entries, matched without regard to case.
    pub email: Vec<String>,
    /// Subject common names, exact.
    pub cn: Vec<String>,
    /// Subject organizational units, exact.
    pub ou: Vec<String>,
}

impl Allow {
    /// How many entries in all.
    pub fn len(&self) -> usize {
        self.dns.len()
            + self.uri.len()
            + self.ip.len()
            + self.email.len()
            + self.cn.len()
            + self.ou.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Route {
    /// The `connect_start` label: plain, direct or upgrade.
    pub fn connect_start(&self) -> &'static str {
        match &self.connect_tls {
            None => "plain",
            Some(t) => match t.start {
                Start::Direct => "direct",
                Start::Upgrade(_) => "upgrade",
            },
        }
    }
}
