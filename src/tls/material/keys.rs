//! A route's own identity read from files: PEM certificate chains and
//! private keys, or a PKCS#12 / JKS keystore, checked to match.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{CertInfo, Loader, SecretKey};
use crate::config::{CertKey, ConfigError};
use crate::tls::keystore::{self, Format, StoreError};

impl Loader<'_> {
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
            self.keystore_identity(ck, &bytes, format)?
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
        rustls::sign::CertifiedKey::from_der(
            chain.clone(),
            key.0.clone_key(),
            &crate::tls::provider(),
        )
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

    /// The chain and key of a PKCS#12 or JKS keystore `ck.cert` (`bytes`,
    /// in `format`), and how to name the key in a mismatch error.
    fn keystore_identity(
        &mut self,
        ck: &CertKey,
        bytes: &[u8],
        format: Format,
    ) -> Result<(Vec<CertificateDer<'static>>, SecretKey, String), ConfigError> {
        let kn = &ck.key_name;
        let cert_key = format!("{kn}.cert");
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
        let id = keystore::identity(bytes, &password, key_password.as_ref(), ck.alias.as_deref())
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
        Ok((id.chain, SecretKey(id.key), what))
    }
}
