//! The file as written: serde structs that mirror the TOML one to one.
//!
//! Every struct refuses unknown keys, so a typo is an error rather than a
//! setting silently ignored. A key that takes one of a few words is an enum
//! here, read by [`word`] (an unknown word is refused with the accepted
//! ones); durations and addresses stay strings, and `validate` turns them,
//! and the keys that depend on each other, into the runtime model.

use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer};
use serde::Deserialize;

use super::model::{KernelTls, LogFormat, LogLevel, Profile, ProxyProtocol};
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
    #[serde(default, deserialize_with = "word")]
    pub kernel_tls: Option<KernelTls>,
    #[serde(default)]
    pub route: Vec<config::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
    /// Host names the endpoint answers to besides IP literals and
    /// `localhost` (the DNS-rebinding guard).
    pub hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    #[serde(default, deserialize_with = "word")]
    pub level: Option<LogLevel>,
    #[serde(default, deserialize_with = "word")]
    pub format: Option<LogFormat>,
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
    #[serde(default, deserialize_with = "word")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Require a PROXY header from clients.
    pub accept_proxy_protocol: Option<bool>,
    /// CIDR blocks ("10.0.0.0/8") of the load balancers that may send one.
    pub accept_proxy_protocol_from: Option<Vec<String>>,
    /// "http://host:port" of a CONNECT proxy.
    pub via: Option<String>,
    /// Path of a file holding "user:password" for the proxy.
    pub via_credentials: Option<String>,
    /// This route's kernel TLS choice, over the top-level `kernel_tls`.
    #[serde(default, deserialize_with = "word")]
    pub kernel_tls: Option<KernelTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnectTls {
    #[serde(default, deserialize_with = "word")]
    pub start: Option<RawStart>,
    #[serde(default, deserialize_with = "word")]
    pub upgrade: Option<RawUpgrade>,
    pub script: Option<Vec<RawStep>>,
    /// The name the sidecar gives itself in an upgrade exchange that asks for
    /// one (SMTP `EHLO`); default "tls-sidecar".
    pub upgrade_hostname: Option<String>,
    #[serde(default, deserialize_with = "word")]
    pub verify: Option<RawVerify>,
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
    /// With `verify = "full"`: a certificate without a DNS subjectAltName
    /// may name the host in its subject's CN (OpenSSL's and Java's rule).
    pub name_check_cn_fallback: Option<bool>,
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
    /// Offer session resumption (default true).
    pub resumption: Option<bool>,
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

/// `start`: TLS at once, or a plain exchange first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawStart {
    Direct,
    Upgrade,
}

/// `upgrade`: a built-in profile, or the route's own `script`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawUpgrade {
    Postgres,
    Smtp,
    Pop3,
    Imap,
    Ftp,
    Ldap,
    Script,
}

impl RawUpgrade {
    /// The built-in profile; `None` for `script`.
    pub fn profile(self) -> Option<Profile> {
        match self {
            RawUpgrade::Postgres => Some(Profile::Postgres),
            RawUpgrade::Smtp => Some(Profile::Smtp),
            RawUpgrade::Pop3 => Some(Profile::Pop3),
            RawUpgrade::Imap => Some(Profile::Imap),
            RawUpgrade::Ftp => Some(Profile::Ftp),
            RawUpgrade::Ldap => Some(Profile::Ldap),
            RawUpgrade::Script => None,
        }
    }
}

/// `verify`: the mode alone; `pin` takes its keys from `pins`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawVerify {
    Full,
    Chain,
    Pin,
    None,
}

/// Reads a key that takes one word into the enum `T` (a unit-variant serde
/// enum). The word goes through serde's own string deserializer rather than
/// `config`'s enum access, which would name the Rust type and not the words
/// accepted; an unknown word becomes `"x" is not one of "a", "b"`.
pub(super) fn word<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let written = String::deserialize(d)?;
    let words: de::value::StringDeserializer<WordError> = written.into_deserializer();
    T::deserialize(words)
        .map(Some)
        .map_err(|e| de::Error::custom(e.0))
}

/// The error of one word read by [`word`]: its message.
#[derive(Debug)]
pub(super) struct WordError(String);

impl de::Error for WordError {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        WordError(message.to_string())
    }

    fn unknown_variant(written: &str, accepted: &'static [&'static str]) -> Self {
        let accepted: Vec<String> = accepted.iter().map(|w| format!("{w:?}")).collect();
        WordError(format!("{written:?} is not one of {}", accepted.join(", ")))
    }
}

impl std::fmt::Display for WordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WordError {}
