//! Noticing that certificate, key, CA or CRL files changed on disk.
//!
//! A periodic stat rather than inotify: Kubernetes rotates mounted secrets
//! by swapping a `..data` symlink in the parent directory, which inotify on
//! the file itself does not report, and some editors and tools replace
//! files by rename. Following the path and comparing (resolved path, inode,
//! size, mtime) every couple of seconds sees all of these, costs a few
//! `stat` calls, and needs no platform-specific code.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::config::{CertKey, Config};

/// What the material files of a config look like right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, Option<FileState>)>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    resolved: PathBuf,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Fingerprint {
    /// Stats every file the config names.
    pub fn of(config: &Config) -> Fingerprint {
        Fingerprint(
            material_paths(config)
                .into_iter()
                .map(|p| {
                    let state = stat(&p);
                    (p, state)
                })
                .collect(),
        )
    }
}

fn stat(p: &std::path::Path) -> Option<FileState> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(p).ok()?;
    Some(FileState {
        resolved: std::fs::canonicalize(p).ok()?,
        inode: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// The files of one certificate setting: the certificate (or keystore),
/// the key, more chain files and the keystore's password file.
fn cert_key_paths(ck: &CertKey) -> Vec<PathBuf> {
    let mut out = vec![ck.cert.clone()];
    out.extend(ck.key.clone());
    out.extend(ck.chain.iter().cloned());
    out.extend(ck.password_file.clone());
    out.extend(ck.key_password_file.clone());
    out
}

/// Every certificate, key, keystore, password, CA and CRL path in the
/// config, in order.
pub fn material_paths(config: &Config) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for r in &config.routes {
        if let Some(t) = &r.connect_tls {
            out.extend(t.ca.clone());
            if t.ca.is_some() {
                out.extend(t.ca_password_file.clone());
            }
            out.extend(t.crl.iter().cloned());
            out.extend(t.client_cert.iter().flat_map(cert_key_paths));
        }
        if let Some(t) = &r.listen_tls {
            out.extend(t.certs.iter().flat_map(cert_key_paths));
            out.extend(t.client_ca.clone());
            if t.client_ca.is_some() {
                out.extend(t.client_ca_password_file.clone());
            }
            out.extend(t.crl.iter().cloned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystores_their_password_files_and_chain_files_are_watched() {
        let text = "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"p:1\"]\n\
            genesys = \"certificate=/g/c.pem,/g/i.pem;certificate-key=/g/c.key\"\n\
            [route.connect_tls]\nca = \"/t.jks\"\nca_password_file = \"/t.pass\"\n\
            [route.listen_tls]\ncert = \"/s.p12\"\npassword_file = \"/s.pass\"\nkey_password_file = \"/k.pass\"\n";
        let c = crate::config::load_str(
            std::path::Path::new("t.toml"),
            text,
            Some(Default::default()),
        )
        .unwrap();
        let got: Vec<String> = material_paths(&c)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "/t.jks", "/t.pass", "/g/c.pem", "/g/c.key", "/g/i.pem", "/s.p12", "/s.pass",
                "/k.pass"
            ]
        );
    }
}
