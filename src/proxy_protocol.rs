//! PROXY protocol headers, v1 (text) and v2 (binary), as HAProxy specifies
//! them (doc/proxy-protocol.txt): the few bytes a load balancer puts before
//! a connection's data to say who the client really is.
//!
//! Sans-io, like the upgrade engine: a [`Decoder`] is fed bytes as they
//! come and answers "need more", "done: this header, the first N bytes of
//! what you just gave me were it", or why the bytes are not a header. It
//! never takes a byte past the header, so the caller can read exactly the
//! header off the socket and leave the rest (a TLS ClientHello, the client's
//! first request) where it is. [`encode`] writes the header we send.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use crate::config::ProxyProtocol as Version;

/// The v2 signature: the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The spec's bound for a v1 line, CRLF included ("PROXY UNKNOWN ffff:…").
pub const V1_MAX: usize = 107;
/// Our bound for a whole v2 header (16 fixed bytes, addresses, TLVs). The
/// spec allows 16 + 65535; senders in practice (HAProxy with its SSL TLVs,
/// AWS NLB, F5) stay far below this.
pub const V2_MAX: usize = 4096;
/// The most bytes a header can span: what a reader must be ready to hold.
pub const MAX_HEADER: usize = V2_MAX;

/// The connection's endpoints a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// The original client.
    pub source: SocketAddr,
    /// The address the client connected to (the load balancer's front).
    pub destination: SocketAddr,
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    /// `None` for v1 `UNKNOWN`, v2 `LOCAL` (a health check by the sender
    /// itself), and v2 families without an IP address (UNSPEC, UNIX): the
    /// connection's own peer address stands.
    pub addrs: Option<Addrs>,
}

/// Why bytes are not an acceptable header. Cheap to make: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The first bytes are neither `PROXY ` nor the v2 signature.
    #[error("no PROXY header: the connection began with byte {0:#04x}{hint}", hint = first_byte_hint(*.0))]
    Missing(u8),
    #[error("malformed PROXY v1 header: {0}")]
    MalformedV1(&'static str),
    #[error("malformed PROXY v2 header: {0}")]
    MalformedV2(&'static str),
    /// Longer than [`V1_MAX`] or [`V2_MAX`]; the length the header claims
    /// (v2) or has reached without its end (v1).
    #[error("PROXY {} header too long: {} bytes or more, at most {}", .0.as_str(), .1, .2)]
    Oversized(Version, usize, usize),
}

impl HeaderError {
    fn oversized(v: Version, len: usize) -> Self {
        let max = match v {
            Version::V1 => V1_MAX,
            Version::V2 => V2_MAX,
        };
        HeaderError::Oversized(v, len, max)
    }
}

fn first_byte_hint(b: u8) -> &'static str {
    match b {
        0x16 => " (a TLS handshake: the client sent no header)",
        b'A'..=b'Z' | b'a'..=b'z' => " (text: the client sent no header)",
        _ => "",
    }
}

/// What [`Decoder::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Every byte given so far is part of a header not yet complete.
    NeedMore,
    /// The header is complete. `consumed`: how many bytes of the *last*
    /// `feed` call's input were header; the rest of that input is not.
    Done { header: Header, consumed: usize },
}

/// Reads one header from bytes fed in pieces of any size.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Header bytes received so far (never more than [`MAX_HEADER`]).
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Feeds the next bytes. After `Done` or an error, the decoder is spent.
    pub fn feed(&mut self, data: &[u8]) -> Result<Decoded, HeaderError> {
        let before = self.buf.len();
        // Never hold more than a header can span (plus one byte, to tell
        // "too long" from "complete at the bound").
        let take = data.len().min(MAX_HEADER + 1 - before.min(MAX_HEADER + 1));
        self.buf.extend_from_slice(&data[..take]);
        match parse(&self.buf)? {
            None => Ok(Decoded::NeedMore),
            Some((header, len)) => Ok(Decoded::Done {
                header,
                consumed: len - before,
            }),
        }
    }
}

/// Parses the start of `buf`: `None` when a header has begun but is not
/// complete, or the header and its length.
fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let n = buf.len();
    if V1_PREFIX.starts_with(&buf[..n.min(V1_PREFIX.len())]) {
        parse_v1(buf)
    } else if V2_SIGNATURE.starts_with(&buf[..n.min(V2_SIGNATURE.len())]) {
        parse_v2(buf)
    } else {
        Err(HeaderError::Missing(first))
    }
}

fn parse_v1(buf: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    let bad = HeaderError::MalformedV1;
    let window = &buf[..buf.len().min(V1_MAX)];
    // Only printable ASCII and the final CRLF may appear: refuse at once
    // rather than wait for 107 bytes of garbage.
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if window.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
            return Err(bad("a byte that is not printable ASCII before the CRLF"));
        }
        if buf.len() >= V1_MAX {
            return Err(HeaderError::oversized(Version::V1, buf.len()));
        }
        return Ok(None);
    };
    if window[..cr].iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(bad("a byte that is not printable ASCII before the CRLF"));
    }
    match window.get(cr + 1) {
        None if cr + 1 >= V1_MAX => return Err(HeaderError::oversized(Version::V1, cr + 1)),
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(bad("CR not followed by LF")),
    }
    let len = cr + 2;
    // The prefix was checked; the line is ASCII.
    let line = std::str::from_utf8(&window[V1_PREFIX.len()..cr]).map_err(|_| bad("not ASCII"))?;
    let mut fields = line.split(' ');
    let addrs = match fields.next() {
        Some("UNKNOWN") => None,
        Some(proto @ ("TCP4" | "TCP6")) => {
            let v6 = proto == "TCP6";
            let mut next = || fields.next().ok_or(bad("fewer than four address fields"));
            let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
            if fields.next().is_some() {
                return Err(bad("more than four address fields"));
            }
            let source = SocketAddr::new(ip(src, v6)?, port(sport)?);
            let destination = SocketAddr::new(ip(dst, v6)?, port(dport)?);
            Some(Addrs {
                source,
                destination,
            })
        }
        _ => return Err(bad("the protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    Ok(Some((
        Header {
            version: Version::V1,
            addrs,
        },
        len,
    )))
}

fn ip(s: &str, v6: bool) -> Result<IpAddr, HeaderError> {
    if v6 {
        s.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| HeaderError::MalformedV1("a TCP6 address is not an IPv6 address"))
    } else {
        s.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| HeaderError::MalformedV1("a TCP4 address is not an IPv4 address"))
    }
}

/// Decimal 0-65535, digits only (`u16::from_str` would take a `+`).
fn port(s: &str) -> Result<u16, HeaderError> {
    let bad = HeaderError::MalformedV1("a port is not a number from 0 to 65535");
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

fn parse_v2(buf: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    let bad = HeaderError::MalformedV2;
    // Check each fixed byte as soon as it is here.
    if let Some(&ver_cmd) = buf.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(bad("the version is not 2"));
        }
        if ver_cmd & 0x0f > 1 {
            return Err(bad("the command is neither LOCAL nor PROXY"));
        }
    }
    if let Some(&fam) = buf.get(13) {
        if fam >> 4 > 3 || fam & 0x0f > 2 {
            return Err(bad("unknown address family or transport"));
        }
    }
    if buf.len() < 16 {
        return Ok(None);
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX {
        return Err(HeaderError::oversized(Version::V2, len));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let (cmd, fam, body) = (buf[12] & 0x0f, buf[13], &buf[16..len]);
    let addrs = match (cmd, fam >> 4) {
        // LOCAL: the sender's own connection (a health check); any
        // addresses are to be ignored.
        (0, _) => None,
        (_, 0) | (_, 3) => None,
        (_, 1) => {
            let a = body
                .get(..12)
                .ok_or(bad("an INET header shorter than its 12 address bytes"))?;
            let v4 = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            Some(Addrs {
                source: SocketAddr::new(v4(&a[0..4]), be16(&a[8..10])),
                destination: SocketAddr::new(v4(&a[4..8]), be16(&a[10..12])),
            })
        }
        (_, _) => {
            let a = body
                .get(..36)
                .ok_or(bad("an INET6 header shorter than its 36 address bytes"))?;
            let v6 = |b: &[u8]| {
                let o: [u8; 16] = b.try_into().expect("16 bytes");
                IpAddr::V6(Ipv6Addr::from(o))
            };
            Some(Addrs {
                source: SocketAddr::new(v6(&a[0..16]), be16(&a[32..34])),
                destination: SocketAddr::new(v6(&a[16..32]), be16(&a[34..36])),
            })
        }
    };
    Ok(Some((
        Header {
            version: Version::V2,
            addrs,
        },
        len,
    )))
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// The header we send for a connection. `None`: no client to speak for
/// (the `probe` command): v1 `UNKNOWN`, v2 `LOCAL`, which receivers take as
/// the sender's own connection.
///
/// IPv4-mapped IPv6 addresses (a client on a dual-stack `[::]` listener)
/// are written as IPv4; when one address is IPv4 and the other IPv6, the
/// IPv4 one is written mapped, since a header carries one family.
pub fn encode(version: Version, addrs: Option<Addrs>) -> Vec<u8> {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let addrs = addrs.map(|a| {
        let (s, d) = (canonical(a.source), canonical(a.destination));
        if s.is_ipv4() == d.is_ipv4() {
            (s, d)
        } else {
            let mapped = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
                IpAddr::V6(_) => a,
            };
            (mapped(s), mapped(d))
        }
    });
    match version {
        Version::V1 => match addrs {
            None => b"PROXY UNKNOWN\r\n".to_vec(),
            Some((s, d)) => format!(
                "PROXY {} {} {} {} {}\r\n",
                if s.is_ipv4() { "TCP4" } else { "TCP6" },
                s.ip(),
                d.ip(),
                s.port(),
                d.port()
            )
            .into_bytes(),
        },
        Version::V2 => {
            let mut out = Vec::with_capacity(16 + 36);
            out.extend_from_slice(&V2_SIGNATURE);
            match addrs {
                None => out.extend_from_slice(&[0x20, 0x00, 0, 0]),
                Some((s, d)) => {
                    match (s.ip(), d.ip()) {
                        (IpAddr::V4(si), IpAddr::V4(di)) => {
                            out.extend_from_slice(&[0x21, 0x11, 0, 12]);
                            out.extend_from_slice(&si.octets());
                            out.extend_from_slice(&di.octets());
                        }
                        (si, di) => {
                            let v6 = |ip: IpAddr| match ip {
                                IpAddr::V6(a) => a,
                                IpAddr::V4(a) => a.to_ipv6_mapped(),
                            };
                            out.extend_from_slice(&[0x21, 0x21, 0, 36]);
                            out.extend_from_slice(&v6(si).octets());
                            out.extend_from_slice(&v6(di).octets());
                        }
                    }
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests;
