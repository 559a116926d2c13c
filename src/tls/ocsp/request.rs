//! What `ocsp = "auto"` asks: the responder named in the certificate's
//! Authority Information Access (id-ad-ocsp, an `http://` URL), and the
//! DER OCSPRequest for the certificate (RFC 6960 4.1.1: one CertID, SHA-1
//! hashes as every responder takes, no nonce so that responders may cache).

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// id-ad-ocsp.
const ID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// An `http://host[:port]/path` responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
    /// The URL as the certificate gives it.
    pub url: String,
}

/// The responder of `leaf`: its first `http://` OCSP URL.
pub fn responder(leaf: &X509Certificate<'_>) -> Result<Responder, String> {
    let mut urls = Vec::new();
    for ext in leaf.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for d in &aia.accessdescs {
                if d.access_method.to_id_string() == ID_AD_OCSP {
                    if let GeneralName::URI(u) = d.access_location {
                        urls.push(u.to_owned());
                    }
                }
            }
        }
    }
    if urls.is_empty() {
        return Err("the certificate names no OCSP responder (no id-ad-ocsp in its Authority Information Access)".into());
    }
    urls.iter().find_map(|u| parse_url(u).ok()).ok_or_else(|| {
        format!(
            "no OCSP responder URL of the certificate is http://host[:port]/path: {}",
            urls.join(", ")
        )
    })
}

/// `http://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<Responder, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: bad IPv6 host"))?;
            (h, p.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port"))?,
    };
    if host.is_empty() || authority.contains('@') {
        return Err(format!("{url:?}: no host"));
    }
    Ok(Responder {
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        url: url.to_owned(),
    })
}

/// The DER OCSPRequest for `leaf`, issued by `issuer`.
pub fn request(leaf: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Vec<u8> {
    use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY as SHA1};
    let name_hash = digest(&SHA1, leaf.issuer().as_raw());
    let key_hash = digest(&SHA1, &issuer.public_key().subject_public_key.data);
    // sha1 (1.3.14.3.2.26) with NULL parameters.
    let sha1 = tlv(
        0x30,
        &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00],
    );
    let cert_id = tlv(
        0x30,
        &[
            sha1,
            tlv(0x04, name_hash.as_ref()),
            tlv(0x04, key_hash.as_ref()),
            tlv(0x02, leaf.raw_serial()),
        ]
        .concat(),
    );
    let request = tlv(0x30, &cert_id);
    let request_list = tlv(0x30, &request);
    let tbs = tlv(0x30, &request_list);
    tlv(0x30, &tbs)
}

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_urls_are_http_host_port_path() {
        let r = parse_url("http://ocsp.example.com/").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("ocsp.example.com", 80, "/")
        );
        let r = parse_url("http://127.0.0.1:8888").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("127.0.0.1", 8888, "/")
        );
        let r = parse_url("http://[::1]:81/a/b").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("::1", 81, "/a/b")
        );
        for bad in [
            "https://x/",
            "ldap://x",
            "http://:80/",
            "http://u@x/",
            "http://x:y/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_past_127_take_the_long_form() {
        assert_eq!(tlv(0x04, &[7; 3]), [4, 3, 7, 7, 7]);
        let long = tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[4, 0x82, 1, 44]);
        assert_eq!(long.len(), 304);
    }
}
