//! OCSP stapling (`ocsp = "path"` or `"auto"` next to a listen
//! certificate): the DER response a responder gave for that certificate
//! (a file kept by `openssl ocsp -respout`, a cron job, cert-manager…; or
//! fetched by the sidecar itself, `fetch`) is sent in each handshake that
//! asks for it while it is valid (`stapled`). Here it is parsed and checked
//! to be for that certificate — the CertID's serial number, issuer name
//! hash and issuer key hash (RFC 6960 4.1.1) — and signed by its issuer or
//! a responder the issuer delegated to (`signature`). A response that fails
//! is never stapled (issue 25: a stapled lie makes must-staple clients
//! refuse us); it never blocks the certificate either.

pub mod fetch;
pub mod request;
mod signature;
pub mod stapled;

use der::Decode as _;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};
use x509_parser::certificate::X509Certificate;

/// id-pkix-ocsp-basic (RFC 6960 4.2.1).
const ID_PKIX_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";

/// A checked response, ready to staple.
#[derive(Clone, PartialEq, Eq)]
pub struct Staple {
    pub der: Vec<u8>,
    pub status: Status,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds; `None`: the responder gave none (newer information
    /// may be available at any time).
    pub next_update: Option<i64>,
}

impl std::fmt::Debug for Staple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staple")
            .field("bytes", &self.der.len())
            .field("status", &self.status)
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .finish()
    }
}

/// What the responder says of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Status {
    Good,
    Revoked,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Staple {
    /// Why this response should not be relied on at `now` (Unix seconds),
    /// if it should not: stale, not yet valid, or not "good".
    pub fn concern(&self, now: i64) -> Option<String> {
        use super::material::rfc3339;
        match self.status {
            Status::Revoked => {
                return Some(
                    "says the certificate is REVOKED: clients that check will refuse it".into(),
                )
            }
            Status::Unknown => {
                return Some(
                    "says the responder does not know the certificate (status unknown)".into(),
                )
            }
            Status::Good => {}
        }
        if self.this_update > now + stapled::SKEW {
            return Some(format!(
                "is not valid yet (thisUpdate {}): not stapled until then; check the clocks",
                rfc3339(self.this_update)
            ));
        }
        match self.next_update {
            Some(n) if n <= now => Some(format!(
                "is stale: its nextUpdate was {}; it is not stapled: fetch a fresh one",
                rfc3339(n)
            )),
            None if self.valid_until() <= now => Some(format!(
                "is stale: it has no nextUpdate and its thisUpdate {} is over {} days old; it is not stapled",
                rfc3339(self.this_update),
                stapled::WITHOUT_NEXT_UPDATE / 86_400
            )),
            _ => None,
        }
    }
}

/// Parses `der` and checks that it answers for `chain[0]`, issued by
/// `chain[1]`, and is signed by that issuer or its delegated responder
/// (valid at `now`, Unix seconds). The message says what is wrong.
pub fn check(der: &[u8], chain: &[&[u8]], now: i64) -> Result<Staple, String> {
    let resp = OcspResponse::from_der(der).map_err(|e| format!("not a DER OCSP response ({e})"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(format!(
            "the responder did not answer: status {:?}",
            resp.response_status
        ));
    }
    let bytes = resp
        .response_bytes
        .ok_or("a successful OCSP response without a response")?;
    if bytes.response_type.to_string() != ID_PKIX_OCSP_BASIC {
        return Err(format!(
            "response type {} is not a basic OCSP response",
            bytes.response_type
        ));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| format!("not a valid basic OCSP response ({e})"))?;

    let (_, leaf) = x509_parser::parse_x509_certificate(chain.first().ok_or("no certificate")?)
        .map_err(|_| "the certificate does not parse")?;
    let (issuer_der, issuer) = chain
        .get(1)
        .and_then(|d| Some((*d, x509_parser::parse_x509_certificate(d).ok()?.1)))
        .filter(|(_, c)| c.subject().as_raw() == leaf.issuer().as_raw())
        .ok_or("its signature cannot be checked: the certificate file holds no issuer certificate after the certificate (put the chain in it)")?;

    let mut others = Vec::new();
    for single in &basic.tbs_response_data.responses {
        let id = &single.cert_id;
        let serial = trim(id.serial_number.as_bytes());
        let Some(hash) = digest(&id.hash_algorithm.oid.to_string()) else {
            others.push(format!(
                "serial {} (hash {})",
                hex(serial),
                id.hash_algorithm.oid
            ));
            continue;
        };
        let h = |data: &[u8]| aws_lc_rs::digest::digest(hash, data).as_ref().to_vec();
        let ours = serial == trim(leaf.raw_serial())
            && id.issuer_name_hash.as_bytes() == h(leaf.issuer().as_raw())
            && key_hash_matches(&issuer, id.issuer_key_hash.as_bytes(), &h);
        if !ours {
            others.push(format!("serial {}", hex(serial)));
            continue;
        }
        signature::check(&basic, issuer_der, now)?;
        let status = match single.cert_status {
            CertStatus::Good(_) => Status::Good,
            CertStatus::Revoked(_) => Status::Revoked,
            CertStatus::Unknown(_) => Status::Unknown,
        };
        return Ok(Staple {
            der: der.to_vec(),
            status,
            this_update: single.this_update.0.to_unix_duration().as_secs() as i64,
            next_update: single
                .next_update
                .map(|t| t.0.to_unix_duration().as_secs() as i64),
        });
    }
    Err(format!(
        "the response is for another certificate: it answers for {}, not for \"{}\" (serial {}, issuer \"{}\")",
        if others.is_empty() { "none".to_owned() } else { others.join(", ") },
        leaf.subject(),
        hex(trim(leaf.raw_serial())),
        leaf.issuer()
    ))
}

fn key_hash_matches(
    issuer: &X509Certificate<'_>,
    want: &[u8],
    h: &impl Fn(&[u8]) -> Vec<u8>,
) -> bool {
    h(&issuer.public_key().subject_public_key.data) == want
}

/// The digest named by a CertID's hash algorithm OID.
fn digest(oid: &str) -> Option<&'static aws_lc_rs::digest::Algorithm> {
    use aws_lc_rs::digest as d;
    match oid {
        "1.3.14.3.2.26" => Some(&d::SHA1_FOR_LEGACY_USE_ONLY),
        "2.16.840.1.101.3.4.2.1" => Some(&d::SHA256),
        "2.16.840.1.101.3.4.2.2" => Some(&d::SHA384),
        "2.16.840.1.101.3.4.2.3" => Some(&d::SHA512),
        _ => None,
    }
}

/// A DER integer's bytes without the leading zero of a positive sign.
fn trim(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == 0).count();
    &b[n.min(b.len().saturating_sub(1))..]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staple(status: Status, this_update: i64, next_update: Option<i64>) -> Staple {
        Staple {
            der: vec![],
            status,
            this_update,
            next_update,
        }
    }

    #[test]
    fn a_fresh_good_response_raises_no_concern() {
        assert_eq!(staple(Status::Good, 1000, Some(5000)).concern(2000), None);
        assert_eq!(staple(Status::Good, 1000, None).concern(2000), None);
    }

    #[test]
    fn stale_future_revoked_and_unknown_responses_are_named() {
        let c = |s: Staple| s.concern(10_000).unwrap();
        assert!(c(staple(Status::Good, 1000, Some(5000)))
            .starts_with("is stale: its nextUpdate was 1970-01-01T01:23:20Z"));
        assert!(c(staple(Status::Good, 20_000, None)).starts_with("is not valid yet"));
        assert!(c(staple(Status::Revoked, 1000, None)).contains("REVOKED"));
        assert!(c(staple(Status::Unknown, 1000, None)).contains("status unknown"));
    }

    #[test]
    fn bytes_that_are_not_an_ocsp_response_are_refused() {
        let e = check(b"not DER", &[], 0).unwrap_err();
        assert!(e.starts_with("not a DER OCSP response"), "{e}");
    }

    #[test]
    fn serials_compare_without_their_sign_byte() {
        assert_eq!(trim(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(trim(&[0]), &[0]);
        assert_eq!(hex(&[0x0a, 0xff]), "0AFF");
    }
}
