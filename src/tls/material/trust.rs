//! What a route trusts, read from files: trust anchors (PEM or a trust
//! store) and certificate revocation lists.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

use super::{now_unix, rfc3339, CrlInfo, Loader};
use crate::config::ConfigError;
use crate::tls::keystore::{self, Format, StoreError};

impl Loader<'_> {
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
}
