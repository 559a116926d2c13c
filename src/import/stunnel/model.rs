//! stunnel.conf as a typed model: the global section's process options,
//! its service-level defaults, and each `[service]` with every option read
//! into a typed field (or kept, with its line, among those with no
//! equivalent). Sans-io: lines in, model out; values stunnel itself would
//! refuse (a `verify` level of 7, `client = maybe`) are refused here with
//! file and line.

use std::collections::HashMap;
use std::fmt;

use super::parse::{At, Item, Line};
use super::StunnelError;

/// An option as written, with where.
#[derive(Debug, Clone)]
pub struct Opt {
    pub key: String,
    pub value: String,
    pub at: At,
}

/// A TLS version as stunnel names it (`sslVersion`, `sslVersionMin/Max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Ssl2,
    Ssl3,
    Tls1,
    Tls11,
    Tls12,
    Tls13,
}

impl Version {
    /// stunnel's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Version::Ssl2 => "SSLv2",
            Version::Ssl3 => "SSLv3",
            Version::Tls1 => "TLSv1",
            Version::Tls11 => "TLSv1.1",
            Version::Tls12 => "TLSv1.2",
            Version::Tls13 => "TLSv1.3",
        }
    }
}

/// `protocol = …`: stunnel's protocol negotiations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    Pgsql,
    Smtp,
    Imap,
    Pop3,
    Ldap,
    Connect,
    Proxy,
    /// cifs, capwin, capwinctrl, nntp, socks: stunnel has them, we do not.
    Unsupported(String),
}

/// A value that must not reach `Debug` or a log (`protocolPassword`).
#[derive(Clone, Default)]
pub struct Hidden(pub String);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hidden(..)")
    }
}

/// A service's options (also the global section's service-level defaults,
/// which each service starts from, as stunnel copies them).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub client: bool,
    pub accept: Option<String>,
    pub connect: Vec<String>,
    pub verify_chain: bool,
    pub verify_peer: bool,
    pub require_cert: bool,
    pub check_host: Vec<String>,
    pub check_ip: Vec<String>,
    pub check_email: Vec<String>,
    pub ca_file: Option<String>,
    pub ca_path: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub crl_file: Option<String>,
    pub crl_path: Option<String>,
    pub sni: Option<String>,
    /// `None`: `all` (no bound).
    pub version_min: Option<Version>,
    pub version_max: Option<Version>,
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
    pub curves: Option<String>,
    pub timeout_connect: Option<u64>,
    pub timeout_idle: Option<u64>,
    pub timeout_close: Option<u64>,
    pub protocol: Option<Protocol>,
    /// `protocol` as written, for messages.
    pub protocol_word: Option<String>,
    pub protocol_host: Option<String>,
    pub protocol_username: Option<String>,
    pub protocol_password: Option<Hidden>,
    pub protocol_authentication: Option<String>,
    pub ocsp_aia: bool,
    /// Options no route can honour, each with why (exec, PSK, transparent…).
    pub refused: Vec<(Opt, &'static str)>,
    /// Process options met here (setuid, debug, socket, …).
    pub process: Vec<Opt>,
    /// Options with no equivalent, kept for the comments.
    pub other: Vec<Opt>,
    /// Where each typed option was last set, by its lowercase name.
    pub at: HashMap<&'static str, At>,
}

/// A `[service]`.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub at: At,
    pub s: Settings,
}

/// The whole file.
#[derive(Debug, Default)]
pub struct Conf {
    /// Global process options (foreground, pid, setuid, output, …).
    pub process: Vec<Opt>,
    /// The global section's service-level options.
    pub defaults: Settings,
    pub services: Vec<Service>,
}

/// Options of the process, not of a connection: listed as comments.
const PROCESS: &[&str] = &[
    "chroot",
    "compression",
    "debug",
    "egd",
    "engine",
    "enginectrl",
    "enginedefault",
    "fips",
    "foreground",
    "iconactive",
    "iconerror",
    "iconidle",
    "log",
    "logid",
    "output",
    "pid",
    "rndbytes",
    "rndfile",
    "rndoverwrite",
    "service",
    "setgid",
    "setuid",
    "socket",
    "stack",
    "syslog",
    "taskbar",
];

/// Options no route can honour, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "exec",
        "a route relays to a network address; it starts no program (put the program behind a port)",
    ),
    (
        "execargs",
        "a route relays to a network address; it starts no program",
    ),
    ("pty", "a route starts no program"),
    ("retry", "a route starts no program"),
    (
        "pskidentity",
        "TLS with pre-shared keys is not offered; use certificates",
    ),
    (
        "psksecrets",
        "TLS with pre-shared keys is not offered; use certificates",
    ),
];

impl Conf {
    /// The model of the lines (includes already expanded).
    pub fn build(lines: &[Line]) -> Result<Conf, StunnelError> {
        let mut conf = Conf::default();
        for l in lines {
            match &l.item {
                Item::Section(name) => conf.services.push(Service {
                    name: name.clone(),
                    at: l.at.clone(),
                    s: conf.defaults.clone(),
                }),
                Item::Option { key, value } => {
                    let opt = Opt {
                        key: key.clone(),
                        value: value.clone(),
                        at: l.at.clone(),
                    };
                    match conf.services.last_mut() {
                        Some(svc) => svc.s.apply(opt)?,
                        None if PROCESS.contains(&key.to_ascii_lowercase().as_str()) => {
                            conf.process.push(opt)
                        }
                        None => conf.defaults.apply(opt)?,
                    }
                }
            }
        }
        Ok(conf)
    }
}

fn yes_no(o: &Opt) -> Result<bool, StunnelError> {
    match o.value.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(o.at.error(format!(
            "{} = {:?}: the argument needs to be either 'yes' or 'no'",
            o.key, o.value
        ))),
    }
}

fn seconds(o: &Opt) -> Result<u64, StunnelError> {
    o.value.parse().map_err(|_| {
        o.at.error(format!(
            "{} = {:?}: a number of seconds is expected",
            o.key, o.value
        ))
    })
}

fn version(o: &Opt) -> Result<Option<Version>, StunnelError> {
    Ok(Some(match o.value.to_ascii_lowercase().as_str() {
        "all" => return Ok(None),
        "sslv2" => Version::Ssl2,
        "sslv3" => Version::Ssl3,
        "tlsv1" => Version::Tls1,
        "tlsv1.1" => Version::Tls11,
        "tlsv1.2" => Version::Tls12,
        "tlsv1.3" => Version::Tls13,
        _ => {
            return Err(o.at.error(format!(
                "{} = {:?}: not one of all, SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
                o.key, o.value
            )))
        }
    }))
}

fn protocol(o: &Opt) -> Result<Protocol, StunnelError> {
    Ok(match o.value.to_ascii_lowercase().as_str() {
        "pgsql" => Protocol::Pgsql,
        "smtp" => Protocol::Smtp,
        "imap" => Protocol::Imap,
        "pop3" => Protocol::Pop3,
        "ldap" => Protocol::Ldap,
        "connect" => Protocol::Connect,
        "proxy" => Protocol::Proxy,
        p @ ("cifs" | "capwin" | "capwinctrl" | "nntp" | "socks") => {
            Protocol::Unsupported(p.to_owned())
        }
        _ => {
            return Err(o.at.error(format!(
                "protocol = {:?}: not a protocol stunnel knows",
                o.value
            )))
        }
    })
}

impl Settings {
    /// One option of this section.
    fn apply(&mut self, o: Opt) -> Result<(), StunnelError> {
        let k = o.key.to_ascii_lowercase();
        if self.trust(&k, &o)? || self.identity(&k, &o)? || self.route(&k, &o)? {
            return Ok(());
        }
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == k) {
            self.refused.push((o, *why));
        } else if k == "transparent" {
            if !matches!(o.value.to_ascii_lowercase().as_str(), "none" | "no") {
                self.refused.push((
                    o,
                    "the route connects from its own address to the connect address; transparent proxying (TPROXY, the original destination) is not offered",
                ));
            }
        } else if PROCESS.contains(&k.as_str()) {
            self.process.push(o);
        } else {
            self.other.push(o);
        }
        Ok(())
    }

    fn mark(&mut self, key: &'static str, o: &Opt) {
        self.at.insert(key, o.at.clone());
    }

    /// Who the peer must be: verification, trust, names, revocation.
    fn trust(&mut self, k: &str, o: &Opt) -> Result<bool, StunnelError> {
        let v = || Some(o.value.clone());
        match k {
            "verifychain" => self.verify_chain = yes_no(o)?,
            "verifypeer" => self.verify_peer = yes_no(o)?,
            "requirecert" => self.require_cert = yes_no(o)?,
            "verify" => {
                let level = match o.value.parse::<u8>() {
                    Ok(l @ 0..=4) => l,
                    _ => {
                        return Err(o
                            .at
                            .error(format!("verify = {:?}: bad verify level (0 to 4)", o.value)))
                    }
                };
                // stunnel's options.c: the legacy level as the three switches.
                self.require_cert = level >= 2;
                self.verify_chain = (1..=3).contains(&level);
                self.verify_peer = level >= 3;
                self.mark("requirecert", o);
                self.mark("verifychain", o);
                self.mark("verifypeer", o);
            }
            "checkhost" => self.check_host.push(o.value.clone()),
            "checkip" => self.check_ip.push(o.value.clone()),
            "checkemail" => self.check_email.push(o.value.clone()),
            "cafile" => self.ca_file = v(),
            "capath" => self.ca_path = v(),
            "crlfile" => self.crl_file = v(),
            "crlpath" => self.crl_path = v(),
            "ocspaia" => self.ocsp_aia = yes_no(o)?,
            _ => return Ok(false),
        }
        const KEYS: &[&str] = &[
            "verifychain",
            "verifypeer",
            "requirecert",
            "checkhost",
            "checkip",
            "checkemail",
            "cafile",
            "capath",
            "crlfile",
            "crlpath",
            "ocspaia",
        ];
        if let Some(key) = KEYS.iter().find(|n| **n == k) {
            self.mark(key, o);
        }
        Ok(true)
    }

    /// Our side of the handshake: certificate, versions, suites, SNI.
    fn identity(&mut self, k: &str, o: &Opt) -> Result<bool, StunnelError> {
        let v = || Some(o.value.clone());
        let key: &'static str = match k {
            "cert" => {
                self.cert = v();
                "cert"
            }
            "key" => {
                self.key = v();
                "key"
            }
            "sni" => {
                self.sni = v();
                "sni"
            }
            "sslversion" => {
                self.version_min = version(o)?;
                self.version_max = self.version_min;
                "sslversion"
            }
            "sslversionmin" => {
                self.version_min = version(o)?;
                "sslversionmin"
            }
            "sslversionmax" => {
                self.version_max = version(o)?;
                "sslversionmax"
            }
            "ciphers" => {
                self.ciphers = v();
                "ciphers"
            }
            "ciphersuites" => {
                self.ciphersuites = v();
                "ciphersuites"
            }
            "curves" => {
                self.curves = v();
                "curves"
            }
            _ => return Ok(false),
        };
        self.mark(key, o);
        Ok(true)
    }

    /// Where the route listens and connects, how long it waits, and what
    /// it says first.
    fn route(&mut self, k: &str, o: &Opt) -> Result<bool, StunnelError> {
        let v = || Some(o.value.clone());
        let key: &'static str = match k {
            "client" => {
                self.client = yes_no(o)?;
                "client"
            }
            "accept" => {
                self.accept = v();
                "accept"
            }
            "connect" => {
                self.connect.push(o.value.clone());
                "connect"
            }
            "timeoutconnect" => {
                self.timeout_connect = Some(seconds(o)?);
                "timeoutconnect"
            }
            "timeoutidle" => {
                self.timeout_idle = Some(seconds(o)?);
                "timeoutidle"
            }
            "timeoutclose" => {
                self.timeout_close = Some(seconds(o)?);
                "timeoutclose"
            }
            "protocol" => {
                self.protocol = Some(protocol(o)?);
                self.protocol_word = v();
                "protocol"
            }
            "protocolhost" => {
                self.protocol_host = v();
                "protocolhost"
            }
            "protocolusername" => {
                self.protocol_username = v();
                "protocolusername"
            }
            "protocolpassword" => {
                self.protocol_password = Some(Hidden(o.value.clone()));
                "protocolpassword"
            }
            "protocolauthentication" => {
                self.protocol_authentication = v();
                "protocolauthentication"
            }
            _ => return Ok(false),
        };
        self.mark(key, o);
        Ok(true)
    }
}
