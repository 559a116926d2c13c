//! The decoder on recorded headers, each followed by the connection's first
//! bytes, split at every byte boundary and fed a byte at a time: it must
//! find the same header and stop exactly where the header ends.

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn addrs(source: &str, destination: &str) -> Option<Addrs> {
    Some(Addrs {
        source: sa(source),
        destination: sa(destination),
    })
}

/// What the bytes after the header look like: a TLS ClientHello's start.
const AFTER: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";

/// Feeds `chunks` in order; returns the header, and the bytes of the input
/// that the decoder left (which must be exactly what followed the header).
fn run(chunks: &[&[u8]]) -> Result<(Header, Vec<u8>), HeaderError> {
    let mut d = Decoder::new();
    for (i, c) in chunks.iter().enumerate() {
        match d.feed(c)? {
            Decoded::NeedMore => {}
            Decoded::Done { header, consumed } => {
                let mut rest = c[consumed..].to_vec();
                for later in &chunks[i + 1..] {
                    rest.extend_from_slice(later);
                }
                return Ok((header, rest));
            }
        }
    }
    panic!(
        "the decoder still wants more after all {} chunks",
        chunks.len()
    );
}

/// `header` then [`AFTER`], whole, split in two at every point, and a byte
/// at a time: each gives `want` and leaves exactly [`AFTER`].
#[track_caller]
fn every_split(header: &[u8], want: Header) {
    let all = [header, AFTER].concat();
    let mut runs = vec![run(&[&all])];
    for i in 0..=all.len() {
        runs.push(run(&[&all[..i], &all[i..]]));
    }
    let bytes: Vec<&[u8]> = all.chunks(1).collect();
    runs.push(run(&bytes));
    for r in runs {
        let (h, rest) = r.unwrap();
        assert_eq!(h, want);
        assert_eq!(rest, AFTER);
    }
}

/// Every split of `bytes` ends in `err` (or, split early, still wants more
/// only where the bytes so far are a valid beginning).
#[track_caller]
fn refused_at_every_split(bytes: &[u8], err: HeaderError) {
    for i in 0..=bytes.len() {
        let mut d = Decoder::new();
        let first = d.feed(&bytes[..i]);
        let got = match first {
            Err(e) => e,
            Ok(Decoded::NeedMore) => d.feed(&bytes[i..]).expect_err("accepted"),
            Ok(Decoded::Done { .. }) => panic!("a header was found in {bytes:?}"),
        };
        assert_eq!(got, err, "split at {i}");
    }
}

fn v1(addrs: Option<Addrs>) -> Header {
    Header {
        version: Version::V1,
        addrs,
    }
}

fn v2(addrs: Option<Addrs>) -> Header {
    Header {
        version: Version::V2,
        addrs,
    }
}

// The v1 examples of the spec (section 2.1) and what HAProxy 2.6
// `send-proxy` sends.

#[test]
fn a_v1_tcp4_header_is_read_at_every_split() {
    every_split(
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        v1(addrs("192.168.0.1:56324", "192.168.0.11:443")),
    );
}

#[test]
fn a_v1_tcp6_header_is_read_at_every_split() {
    every_split(
        b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 7022\r\n",
        v1(addrs("[2001:db8::1]:65535", "[2001:db8::2]:7022")),
    );
}

#[test]
fn a_v1_unknown_header_is_read_and_carries_no_address() {
    every_split(b"PROXY UNKNOWN\r\n", v1(None));
    every_split(
        b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        v1(None),
    );
}

#[test]
fn the_longest_v1_header_the_spec_allows_is_read() {
    let line = format!(
        "PROXY UNKNOWN {} {} 65535 65535\r\n",
        "ffff:".repeat(7) + "ffff",
        "ffff:".repeat(7) + "ffff"
    );
    assert_eq!(line.len(), V1_MAX);
    every_split(line.as_bytes(), v1(None));
}

// v2: the 16 fixed bytes, then addresses, then TLVs (what HAProxy
// `send-proxy-v2` and AWS NLB send).

fn v2_bytes(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut b = V2_SIGNATURE.to_vec();
    b.extend_from_slice(&[ver_cmd, fam]);
    b.extend_from_slice(&(body.len() as u16).to_be_bytes());
    b.extend_from_slice(body);
    b
}

#[test]
fn a_v2_inet_header_is_read_at_every_split() {
    let body = [10, 0, 0, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb];
    every_split(
        &v2_bytes(0x21, 0x11, &body),
        v2(addrs("10.0.0.7:56324", "10.0.0.1:443")),
    );
}

#[test]
fn a_v2_inet6_header_with_tlvs_is_read_at_every_split() {
    let mut body = Vec::new();
    body.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&[0x1f, 0x90, 0x1b, 0x6e]);
    // PP2_TYPE_AUTHORITY "gms.example" and an AWS NLB VPC endpoint TLV.
    body.extend_from_slice(&[0x02, 0x00, 0x0b]);
    body.extend_from_slice(b"gms.example");
    body.extend_from_slice(&[0xea, 0x00, 0x05, 0x01]);
    body.extend_from_slice(b"vpce");
    every_split(
        &v2_bytes(0x21, 0x21, &body),
        v2(addrs("[2001:db8::7]:8080", "[2001:db8::1]:7022")),
    );
}

#[test]
fn a_v2_local_header_carries_no_address() {
    every_split(&v2_bytes(0x20, 0x00, &[]), v2(None));
    // LOCAL with addresses (HAProxy's health checks may send them): ignored.
    every_split(
        &v2_bytes(0x20, 0x11, &[127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2]),
        v2(None),
    );
}

#[test]
fn a_v2_unix_or_unspec_header_carries_no_address() {
    every_split(&v2_bytes(0x21, 0x31, &[0u8; 216]), v2(None));
    every_split(&v2_bytes(0x21, 0x00, &[]), v2(None));
}

// Refusals.

#[test]
fn a_tls_client_hello_without_a_header_is_refused_at_its_first_byte() {
    let mut d = Decoder::new();
    assert_eq!(d.feed(&AFTER[..1]), Err(HeaderError::Missing(0x16)));
    assert!(HeaderError::Missing(0x16)
        .to_string()
        .contains("a TLS handshake"));
}

#[test]
fn plain_text_without_a_header_is_refused() {
    refused_at_every_split(b"GET / HTTP/1.1\r\n\r\n", HeaderError::Missing(b'G'));
}

#[test]
fn an_empty_feed_asks_for_more() {
    assert_eq!(Decoder::new().feed(b""), Ok(Decoded::NeedMore));
}

#[test]
fn v1_with_an_unknown_protocol_is_refused() {
    refused_at_every_split(
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        HeaderError::MalformedV1("the protocol is not TCP4, TCP6 or UNKNOWN"),
    );
}

#[test]
fn v1_with_bad_addresses_or_ports_is_refused() {
    let ip4 = HeaderError::MalformedV1("a TCP4 address is not an IPv4 address");
    refused_at_every_split(b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", ip4);
    refused_at_every_split(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", ip4);
    refused_at_every_split(
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        HeaderError::MalformedV1("a TCP6 address is not an IPv6 address"),
    );
    let port = HeaderError::MalformedV1("a port is not a number from 0 to 65535");
    refused_at_every_split(b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", port);
    refused_at_every_split(b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", port);
    refused_at_every_split(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        HeaderError::MalformedV1("fewer than four address fields"),
    );
    refused_at_every_split(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        HeaderError::MalformedV1("more than four address fields"),
    );
    // Two spaces make an empty field, one too many.
    refused_at_every_split(
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        HeaderError::MalformedV1("more than four address fields"),
    );
}

#[test]
fn v1_with_a_bare_lf_or_a_control_byte_is_refused_at_once() {
    let e = HeaderError::MalformedV1("a byte that is not printable ASCII before the CRLF");
    refused_at_every_split(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", e);
    refused_at_every_split(b"PROXY TCP4 1.2.3.4\x00 5.6.7.8 1 2\r\n", e);
    refused_at_every_split(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        HeaderError::MalformedV1("CR not followed by LF"),
    );
}

#[test]
fn v1_without_its_crlf_within_107_bytes_is_oversized() {
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'a'; 200]].concat();
    let mut d = Decoder::new();
    assert_eq!(
        d.feed(&long),
        Err(HeaderError::Oversized(Version::V1, 214, 107))
    );
    // A byte at a time: refused at the 107th byte, not later.
    let mut d = Decoder::new();
    for (i, b) in long.iter().enumerate() {
        match d.feed(std::slice::from_ref(b)) {
            Ok(Decoded::NeedMore) => assert!(i < 106, "still waiting at byte {i}"),
            Err(e) => {
                assert_eq!((i, e), (106, HeaderError::Oversized(Version::V1, 107, 107)));
                return;
            }
            Ok(d) => panic!("{d:?}"),
        }
    }
}

#[test]
fn v2_with_a_wrong_version_command_or_family_is_refused() {
    refused_at_every_split(
        &v2_bytes(0x11, 0x11, &[0; 12]),
        HeaderError::MalformedV2("the version is not 2"),
    );
    refused_at_every_split(
        &v2_bytes(0x22, 0x11, &[0; 12]),
        HeaderError::MalformedV2("the command is neither LOCAL nor PROXY"),
    );
    refused_at_every_split(
        &v2_bytes(0x21, 0x41, &[0; 12]),
        HeaderError::MalformedV2("unknown address family or transport"),
    );
    refused_at_every_split(
        &v2_bytes(0x21, 0x13, &[0; 12]),
        HeaderError::MalformedV2("unknown address family or transport"),
    );
}

#[test]
fn v2_shorter_than_its_addresses_is_refused() {
    refused_at_every_split(
        &v2_bytes(0x21, 0x11, &[0; 11]),
        HeaderError::MalformedV2("an INET header shorter than its 12 address bytes"),
    );
    refused_at_every_split(
        &v2_bytes(0x21, 0x21, &[0; 35]),
        HeaderError::MalformedV2("an INET6 header shorter than its 36 address bytes"),
    );
}

#[test]
fn v2_longer_than_the_bound_is_refused_from_its_length_field() {
    let mut head = V2_SIGNATURE.to_vec();
    head.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    refused_at_every_split(
        &head,
        HeaderError::Oversized(Version::V2, 16 + 65535, V2_MAX),
    );
    // At the bound exactly: read.
    let body = vec![0u8; V2_MAX - 16];
    let mut ok = v2_bytes(0x21, 0x11, &body);
    ok.extend_from_slice(AFTER);
    let (h, rest) = run(&[&ok]).unwrap();
    assert_eq!((h.addrs.is_some(), rest.as_slice()), (true, AFTER));
}

#[test]
fn a_wrong_signature_byte_is_refused_as_missing() {
    let mut b = v2_bytes(0x21, 0x11, &[0; 12]);
    b[5] = b'X';
    refused_at_every_split(&b, HeaderError::Missing(b'\r'));
}

// The encoder, read back by the decoder.

#[test]
fn encoded_headers_read_back_as_the_same_addresses() {
    let cases = [
        addrs("192.0.2.7:40000", "192.0.2.1:7021"),
        addrs("[2001:db8::7]:40000", "[2001:db8::1]:7021"),
        None,
    ];
    for version in [Version::V1, Version::V2] {
        for a in cases {
            let bytes = encode(version, a);
            let (h, rest) = run(&[&[bytes.as_slice(), AFTER].concat()]).unwrap();
            assert_eq!(h, Header { version, addrs: a });
            assert_eq!(rest, AFTER);
        }
    }
}

#[test]
fn encoded_headers_are_the_bytes_the_spec_shows() {
    let a = addrs("192.0.2.7:40000", "192.0.2.1:7021");
    assert_eq!(
        encode(Version::V1, a),
        b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 7021\r\n"
    );
    assert_eq!(encode(Version::V1, None), b"PROXY UNKNOWN\r\n");
    assert_eq!(
        encode(Version::V2, a),
        v2_bytes(
            0x21,
            0x11,
            &[192, 0, 2, 7, 192, 0, 2, 1, 0x9c, 0x40, 0x1b, 0x6d]
        )
    );
    assert_eq!(encode(Version::V2, None), v2_bytes(0x20, 0x00, &[]));
}

#[test]
fn mapped_ipv4_is_written_as_ipv4_and_mixed_families_as_ipv6() {
    let mapped = addrs("[::ffff:192.0.2.7]:40000", "[::ffff:192.0.2.1]:7021");
    assert_eq!(
        encode(Version::V1, mapped),
        b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 7021\r\n"
    );
    let mixed = addrs("192.0.2.7:40000", "[2001:db8::1]:7021");
    assert_eq!(
        encode(Version::V1, mixed),
        b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 40000 7021\r\n"
    );
    let (h, _) = run(&[&encode(Version::V2, mixed)]).unwrap();
    assert_eq!(
        h.addrs,
        addrs("[::ffff:192.0.2.7]:40000", "[2001:db8::1]:7021")
    );
}
