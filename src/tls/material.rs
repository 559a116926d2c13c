//! Certificate material read from files: chains, private keys (PKCS#8,
//! PKCS#1, SEC1), trust anchors and revocation lists, and the facts about a
//! certificate that `check`, `probe` and the expiry metric show.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::keystore::{self, Format, Password, StoreError};
use crate::config::{CertKey, ConfigError, Problem, RouteCtx};

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

/// A private key. Its `Debug` shows nothing of the key.
pub struct SecretKey(pub PrivateKeyDer<'static>);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Something worth telling the operator that does not stop the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub route: Option<String>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.route {
            Some(r) => write!(f, "route \"{r}\": {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads material for one route, turning every failure into a `ConfigError`
/// that names the route and the key, and collecting warnings.
pub struct Loader<'a> {
    pub ctx: RouteCtx<'a>,
    pub warnings: &'a mut Vec<Warning>,
    /// Refuse, rather than warn about, keys readable by group or others.
    pub strict_key_permissions: bool,
}

impl Loader<'_> {
    /// The bytes of a file, or an error naming the route and the key.
    pub fn read(&self, key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
        std::fs::read(path).map_err(|source| ConfigError {
            file: self.ctx.file.to_owned(),
            route: Some(self.ctx.route.to_owned()),
            key: Some(key.to_owned()),
            problem: Problem::File {
                path: path.to_owned(),
                source,
            },
        })
    }

    pub fn warn(&mut self, message: String) {
        self.warnings.push(Warning {
            route: Some(self.ctx.route.to_owned()),
            message,
        });
    }

    /// A PEM file of one or more certificates, in order.
    pub fn certs(
        &self,
        key: &str,
        path: &Path,
    ) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let pem = self.read(key, path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                self.ctx.invalid(
                    key,
                    format!("{}: not a valid PEM certificate file: {e}", path.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(self.ctx.invalid(
                key,
                format!(
                    "{}: holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
                    path.display()
                ),
            ));
        }
        for (i, c) in certs.iter().enumerate() {
            if CertInfo::parse(c).is_none() {
                return Err(self.ctx.invalid(
                    key,
                    format!(
                        "{}: certificate #{} is not a valid X.509 certificate",
                        path.display(),
                        i + 1
                    ),
                ));
            }
        }
        Ok(certs)
    }

    /// A PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub fn key(&mut self, key: &str, path: &Path) -> Result<SecretKey, ConfigError> {
        let pem = self.read(key, path)?;
        let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
            self.ctx.invalid(
                key,
                format!(
                    "{}: holds no PEM private key (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\")",
                    path.display()
                ),
            )
        })?;
        self.check_mode(key, path, "private key")?;
        Ok(SecretKey(der))
    }

    #[cfg(unix)]
    fn check_mode(&mut self, key: &str, path: &Path, what: &str) -> Result<(), ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(());
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let msg = format!(
                "{what} {} is readable by group or others (mode {mode:04o}); make it 0600 or 0400 for the sidecar's user",
                path.display()
            );
            if self.strict_key_permissions {
                return Err(self
                    .ctx
                    .invalid(key, format!("{msg} (strict_key_permissions = true)")));
            }
            self.warn(format!("key `{key}`: {msg}"));
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn check_mode(&mut self, _key: &str, _path: &Path, _what: &str) -> Result<(), ConfigError> {
        Ok(())
    }

    /// A keystore password from the file `path` names (config key `key`).
    /// Like a private key, the file should be readable by the sidecar only.
    pub fn password(&mut self, key: &str, path: &Path) -> Result<Password, ConfigError> {
        let bytes = self.read(key, path)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            self.ctx.invalid(
                key,
                format!("{}: the password is not UTF-8 text", path.display()),
            )
        })?;
        self.check_mode(key, path, "password file")?;
        Ok(Password::from_file_text(&text))
    }

    /// The certificate chain and private key of one cert setting: PEM
    /// `cert` and `key` files, or a PKCS#12 or JKS keystore `cert` (told by
    /// content) opened with `password_file` at entry `alias`. Refuses a key
    /// that does not match its certificate.
    pub fn identity(
        &mut self,
        ck: &CertKey,
    ) -> Result<(Vec<CertificateDer<'static>>, SecretKey), ConfigError> {
        let kn = &ck.key_name;
        let cert_key = format!("{kn}.cert");
        let bytes = self.read(&cert_key, &ck.cert)?;
        let format = Format::detect(&bytes);
        let (mut chain, key, what) = if format.is_keystore() {
            if ck.key.is_some() {
                return Err(self.ctx.invalid(
                    &format!("{kn}.key"),
                    format!(
                        "{} is a {} keystore, which holds the key: omit key",
                        ck.cert.display(),
                        format.as_str()
                    ),
                ));
            }
            let pw_key = format!("{kn}.password_file");
            let Some(pw_path) = &ck.password_file else {
                return Err(self.ctx.invalid(
                    &pw_key,
                    format!(
                        "{} is a {} keystore: give password_file, the file holding its password",
                        ck.cert.display(),
                        format.as_str()
                    ),
                ));
            };
            let password = self.password(&pw_key, pw_path)?;
            let key_pw_key = format!("{kn}.key_password_file");
            let key_password = match &ck.key_password_file {
                Some(p) => Some(self.password(&key_pw_key, p)?),
                None => None,
            };
            let id = keystore::identity(
                &bytes,
                &password,
                key_password.as_ref(),
                ck.alias.as_deref(),
            )
            .map_err(|e| {
                let key = match e {
                    StoreError::WrongPassword(_) => pw_key.clone(),
                    StoreError::WrongKeyPassword(_) if ck.key_password_file.is_some() => {
                        key_pw_key.clone()
                    }
                    StoreError::WrongKeyPassword(_) => pw_key.clone(),
                    StoreError::NoAlias { .. }
                    | StoreError::NotAKeyEntry { .. }
                    | StoreError::SeveralKeys { .. } => format!("{kn}.alias"),
                    _ => cert_key.clone(),
                };
                self.ctx
                    .invalid(&key, format!("{}: {e}", ck.cert.display()))
            })?;
            let what = format!("the key of entry \"{}\" in {}", id.alias, ck.cert.display());
            (id.chain, SecretKey(id.key), what)
        } else {
            let Some(key_path) = &ck.key else {
                return Err(self.ctx.invalid(
                    &format!("{kn}.key"),
                    format!(
                        "{} is not a PKCS#12 or JKS keystore: a PEM cert needs key",
                        ck.cert.display()
                    ),
                ));
            };
            let chain = self.certs(&cert_key, &ck.cert)?;
            let key = self.key(&format!("{kn}.key"), key_path)?;
            (chain, key, key_path.display().to_string())
        };
        for c in &chain {
            if CertInfo::parse(c).is_none() {
                return Err(self.ctx.invalid(
                    &cert_key,
                    format!(
                        "{}: holds a certificate that is not valid X.509",
                        ck.cert.display()
                    ),
                ));
            }
        }
        for extra in &ck.chain {
            chain.extend(self.certs(&cert_key, extra)?);
        }
        rustls::sign::CertifiedKey::from_der(chain.clone(), key.0.clone_key(), &super::provider())
            .map_err(|e| {
                let key_name = if ck.key.is_some() {
                    format!("{kn}.key")
                } else {
                    cert_key.clone()
                };
                self.ctx.invalid(
                    &key_name,
                    format!(
                        "{what} does not match the certificate in {}: {e}",
                        ck.cert.display()
                    ),
                )
            })?;
        self.warn_expiry(&cert_key, &ck.cert, &chain);
        Ok((chain, key))
    }

    /// Trust anchors: a PEM file of CA certificates, or every trusted
    /// certificate of a PKCS#12 or JKS trust store opened with the password
    /// in `password_file` (config key `pw_key`).
    pub fn anchors(
        &mut self,
        key: &str,
        path: &Path,
        pw_key: &str,
        password_file: Option<&Path>,
    ) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let bytes = self.read(key, path)?;
        let format = Format::detect(&bytes);
        let anchors = if format.is_keystore() {
            let Some(pw_path) = password_file else {
                return Err(self.ctx.invalid(
                    pw_key,
                    format!(
                        "{} is a {} trust store: give {pw_key} (or password_file), the file holding its password",
                        path.display(),
                        format.as_str()
                    ),
                ));
            };
            let password = self.password(pw_key, pw_path)?;
            keystore::trusted(&bytes, &password).map_err(|e| {
                let k = if matches!(e, StoreError::WrongPassword(_)) {
                    pw_key
                } else {
                    key
                };
                self.ctx.invalid(k, format!("{}: {e}", path.display()))
            })?
        } else {
            self.certs(key, path)?
        };
        self.warn_expiry(key, path, &anchors);
        Ok(anchors)
    }

    /// Revocation lists, each PEM ("X509 CRL") or DER. A list past its
    /// nextUpdate still loads (the CA may be late to publish; refusing every
    /// handshake would be worse) with a warning: `check` prints it, `run`
    /// logs it at start, reload and rotation, and
    /// `tls_sidecar_crl_next_update_timestamp_seconds` shows it.
    pub fn crls(
        &mut self,
        key: &str,
        paths: &[PathBuf],
    ) -> Result<Vec<CertificateRevocationListDer<'static>>, ConfigError> {
        let mut out = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let k = format!("{key}[{i}]");
            let bytes = self.read(&k, path)?;
            let pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .unwrap_or_default();
            if !pem.is_empty() {
                out.extend(pem);
            } else if bytes.first() == Some(&0x30) {
                out.push(CertificateRevocationListDer::from(bytes));
            } else {
                return Err(self.ctx.invalid(
                    &k,
                    format!(
                        "{}: neither a PEM (\"X509 CRL\") nor a DER revocation list",
                        path.display()
                    ),
                ));
            }
            if let Some(bad) = out
                .iter()
                .find(|c| webpki::OwnedCertRevocationList::from_der(c).is_err())
            {
                let _ = bad;
                return Err(self.ctx.invalid(
                    &k,
                    format!("{}: not a valid revocation list", path.display()),
                ));
            }
        }
        let now = now_unix();
        let stale: Vec<String> = out
            .iter()
            .filter_map(|c| CrlInfo::parse(c))
            .filter_map(|i| match i.next_update {
                Some(t) if t < now => Some(format!(
                    "key `{key}`: the revocation list of \"{}\" is past its nextUpdate ({}): revocations since then are not known; fetch a current one",
                    i.issuer,
                    rfc3339(t)
                )),
                _ => None,
            })
            .collect();
        for w in stale {
            self.warn(w);
        }
        Ok(out)
    }

    /// Warns when a certificate expires within 30 days (or already has).
    pub fn warn_expiry(&mut self, key: &str, path: &Path, certs: &[CertificateDer<'_>]) {
        let now = now_unix();
        for c in certs {
            if let Some(info) = CertInfo::parse(c) {
                let left = info.not_after - now;
                if left < 0 {
                    self.warn(format!(
                        "key `{key}`: certificate \"{}\" in {} EXPIRED at {}",
                        info.subject,
                        path.display(),
                        info.not_after_rfc3339()
                    ));
                } else if left < 30 * 86_400 {
                    self.warn(format!(
                        "key `{key}`: certificate \"{}\" in {} expires in {} days ({})",
                        info.subject,
                        path.display(),
                        left / 86_400,
                        info.not_after_rfc3339()
                    ));
                }
            }
        }
    }
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
