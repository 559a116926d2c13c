//! Throwaway certificates for `demo` and the test suites: a CA, leaves it
//! signs (server, client, expired, not yet valid, any names) and self-signed
//! leaves, written as PEM files. Never used by `run`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A certificate authority that can sign leaves, intermediates and CRLs.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate's serial number (for a CRL of its issuer).
    pub serial: Vec<u8>,
}

/// A certificate and its private key, as PEM, plus the certificate's DER.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// The serial number (what a CRL names).
    pub serial: Vec<u8>,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf").finish_non_exhaustive()
    }
}

/// When a leaf is valid, in days from now (negative: in the past).
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub from_days: i64,
    pub to_days: i64,
}

impl Default for Validity {
    fn default() -> Self {
        Validity {
            from_days: -1,
            to_days: 365,
        }
    }
}

fn params(cn: &str, names: &[&str], validity: Validity) -> CertificateParams {
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("valid names");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now + Duration::days(validity.from_days);
    p.not_after = now + Duration::days(validity.to_days);
    p.serial_number = Some(SerialNumber::from(next_serial()));
    p
}

/// A serial number unique in this process and unlikely to repeat across
/// runs: a positive 16-byte big-endian number.
fn next_serial() -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&(t & 0x7fff_ffff_ffff_ffff).to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    out
}

fn serial_of(p: &CertificateParams) -> Vec<u8> {
    p.serial_number
        .as_ref()
        .map(|s| s.to_bytes())
        .unwrap_or_default()
}

impl Ca {
    /// A new CA named `cn`, valid for ten years.
    pub fn new(cn: &str) -> Ca {
        let p = ca_params(cn);
        let serial = serial_of(&p);
        let key = KeyPair::generate().expect("key generation");
        Ca {
            issuer: CertifiedIssuer::self_signed(p, key).expect("CA signing"),
            serial,
        }
    }

    /// An intermediate CA named `cn`, signed by this one.
    pub fn intermediate(&self, cn: &str) -> Ca {
        let p = ca_params(cn);
        let serial = serial_of(&p);
        let key = KeyPair::generate().expect("key generation");
        Ca {
            issuer: CertifiedIssuer::signed_by(p, key, &self.issuer).expect("CA signing"),
            serial,
        }
    }

    /// A CRL of this CA revoking `serials`, PEM; its nextUpdate is
    /// `next_update_days` from now (negative: already past).
    pub fn crl(&self, serials: &[&[u8]], next_update_days: i64) -> String {
        let now = OffsetDateTime::now_utc();
        let this_update = now + Duration::days(next_update_days.min(0) - 1);
        let p = CertificateRevocationListParams {
            this_update,
            next_update: now + Duration::days(next_update_days),
            crl_number: SerialNumber::from(next_serial()),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: this_update,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        p.signed_by(&self.issuer)
            .expect("CRL signing")
            .pem()
            .expect("CRL PEM")
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's private key, PEM (tests sign OCSP responses with it).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A client/server leaf with a subject CN and optional OU, and
    /// subjectAltNames of every kind: `x://…` is a URI, `a@b` an email,
    /// an IP literal an IP address, anything else a DNS name.
    pub fn leaf_named(&self, cn: &str, ou: Option<&str>, sans: &[&str]) -> Leaf {
        let mut p = params(cn, &[], Validity::default());
        if let Some(ou) = ou {
            p.distinguished_name
                .push(DnType::OrganizationalUnitName, ou);
        }
        p.subject_alt_names = sans
            .iter()
            .map(|s| {
                let ia5 = || rcgen::string::Ia5String::try_from(*s).expect("ASCII name");
                if let Ok(ip) = s.parse() {
                    SanType::IpAddress(ip)
                } else if s.contains("://") {
                    SanType::URI(ia5())
                } else if s.contains('@') {
                    SanType::Rfc822Name(ia5())
                } else {
                    SanType::DnsName(ia5())
                }
            })
            .collect();
        self.sign(p)
    }

    /// A leaf for `names` (DNS names or IP addresses), usable by servers and clients.
    pub fn leaf(&self, cn: &str, names: &[&str]) -> Leaf {
        self.leaf_valid(cn, names, Validity::default())
    }

    /// A server leaf whose Authority Information Access names the OCSP
    /// responder `url` (what `ocsp = "auto"` asks).
    pub fn leaf_with_ocsp(&self, cn: &str, names: &[&str], url: &str) -> Leaf {
        let mut p = params(cn, names, Validity::default());
        // SEQUENCE { SEQUENCE { id-ad-ocsp, [6] IA5String url } }
        let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
        let mut loc = vec![0x86, url.len() as u8];
        loc.extend_from_slice(url.as_bytes());
        let mut desc = vec![0x30, (oid.len() + loc.len()) as u8];
        desc.extend_from_slice(&oid);
        desc.extend_from_slice(&loc);
        let mut aia = vec![0x30, desc.len() as u8];
        aia.extend_from_slice(&desc);
        p.custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                aia,
            ));
        self.sign(p)
    }

    /// A certificate this CA delegates OCSP signing to (id-kp-OCSPSigning).
    pub fn ocsp_signer(&self, cn: &str) -> Leaf {
        let mut p = params(cn, &[], Validity::default());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let serial = serial_of(&p);
        let key = KeyPair::generate().expect("key generation");
        let cert = p.signed_by(&key, &self.issuer).expect("signing");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            serial,
        }
    }

    /// A leaf with the given validity window.
    pub fn leaf_valid(&self, cn: &str, names: &[&str], validity: Validity) -> Leaf {
        self.sign(params(cn, names, validity))
    }

    fn sign(&self, mut p: CertificateParams) -> Leaf {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let serial = serial_of(&p);
        let key = KeyPair::generate().expect("key generation");
        let cert = p.signed_by(&key, &self.issuer).expect("signing");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            serial,
        }
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = params(
        cn,
        &[],
        Validity {
            from_days: -1,
            to_days: 3650,
        },
    );
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// A self-signed leaf (what a "trust mode" peer typically presents).
pub fn self_signed(cn: &str, names: &[&str]) -> Leaf {
    let mut p = params(cn, names, Validity::default());
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serial = serial_of(&p);
    let key = KeyPair::generate().expect("key generation");
    let cert = p.self_signed(&key).expect("signing");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        serial,
    }
}

/// Writes `text` to `dir/name`; private keys get mode 0600.
pub fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    if name.ends_with(".key") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(path)
}

impl Leaf {
    /// Writes `dir/NAME.pem` and `dir/NAME.key`; returns (cert, key) paths.
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<(PathBuf, PathBuf)> {
        Ok((
            write(dir, &format!("{name}.pem"), &self.cert_pem)?,
            write(dir, &format!("{name}.key"), &self.key_pem)?,
        ))
    }
}

/// A rustls server config serving the PEM chain `cert` with the PEM key
/// `key`, requiring client certificates signed by `client_ca` when given:
/// the peers of `demo` and of the tests, built one way.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> std::io::Result<std::sync::Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    let pem = |e: rustls::pki_types::pem::Error| std::io::Error::other(e);
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem)?;
    let provider = crate::tls::provider();
    let b = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?;
    let b = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(pem)? {
                roots.add(c.map_err(pem)?).map_err(std::io::Error::other)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(std::io::Error::other)?;
            b.with_client_cert_verifier(verifier)
        }
        None => b.with_no_client_auth(),
    };
    let config = b
        .with_single_cert(chain, key)
        .map_err(std::io::Error::other)?;
    Ok(Arc::new(config))
}
