//! The facts about a certificate or a revocation list that `check`,
//! `probe`, the status page and the expiry metric show.

/// What one certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// DNS names and IP addresses from subjectAltName.
    pub sans: Vec<String>,
}

impl CertInfo {
    /// Parses a DER certificate; `None` if it is not one.
    pub fn parse(der: &[u8]) -> Option<CertInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => sans.push(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => {
                        let s = match ip.len() {
                            4 => <[u8; 4]>::try_from(*ip)
                                .map(|a| std::net::IpAddr::from(a).to_string())
                                .ok(),
                            16 => <[u8; 16]>::try_from(*ip)
                                .map(|a| std::net::IpAddr::from(a).to_string())
                                .ok(),
                            _ => None,
                        };
                        sans.extend(s);
                    }
                    _ => {}
                }
            }
        }
        Some(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            sans,
        })
    }

    /// The not-after as an RFC 3339 UTC time.
    pub fn not_after_rfc3339(&self) -> String {
        rfc3339(self.not_after)
    }
}

/// What a certificate revocation list says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    pub issuer: String,
    /// The issuer's name as DER, as WebPKI matches it to a certificate's
    /// issuer.
    pub issuer_der: Vec<u8>,
    /// Unix seconds; `None` when the list has no nextUpdate.
    pub next_update: Option<i64>,
}

impl CrlInfo {
    /// Parses a DER revocation list; `None` if it is not one.
    pub fn parse(der: &[u8]) -> Option<CrlInfo> {
        let (_, crl) = x509_parser::parse_x509_crl(der).ok()?;
        Some(CrlInfo {
            issuer: crl.issuer().to_string(),
            issuer_der: crl.issuer().as_raw().to_vec(),
            next_update: crl.next_update().map(|t| t.timestamp()),
        })
    }
}

/// Unix seconds as "2026-11-28T06:40:00Z" (no sub-seconds).
pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, the value `pin` mode compares.
pub fn spki_sha256(cert: &[u8]) -> Option<[u8; 32]> {
    let (_, c) = x509_parser::parse_x509_certificate(cert).ok()?;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, c.public_key().raw);
    d.as_ref().try_into().ok()
}

/// A pin as written in config: "sha256/BASE64".
pub fn pin_string(hash: &[u8; 32]) -> String {
    use base64::Engine as _;
    format!(
        "sha256/{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}
