//! Certificate material read from files: chains, private keys (PKCS#8,
//! PKCS#1, SEC1), trust anchors and revocation lists, and the facts about a
//! certificate that `check`, `probe` and the expiry metric show.

mod info;
mod keys;
mod trust;

use std::fmt;
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use info::{now_unix, pin_string, rfc3339, spki_sha256, CertInfo, CrlInfo};

use super::keystore::Password;
use crate::config::{ConfigError, Problem, RouteCtx};

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
