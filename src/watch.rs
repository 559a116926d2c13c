//! Noticing that certificate, key, CA, CRL or OCSP response files, or the
//! config file itself, changed on disk.
//!
//! A periodic stat rather than inotify: Kubernetes rotates mounted secrets
//! by swapping a `..data` symlink in the parent directory, which inotify on
//! the file itself does not report, and some editors and tools replace
//! files by rename. Following the path and comparing (resolved path, inode,
//! size, mtime) every couple of seconds sees all of these, costs a few
//! `stat` calls, and needs no platform-specific code.

use std::path::{Path, PathBuf};
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

/// What one file (the config file) looks like right now. A missing or
/// unreadable file is a state too: its reappearance is a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp(Option<FileState>);

impl FileStamp {
    pub fn of(path: &Path) -> FileStamp {
        FileStamp(stat(path))
    }
}

fn stat(p: &Path) -> Option<FileState> {
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

/// Every certificate, key, keystore, password, OCSP response, CA and CRL
/// path in the config, in order.
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
            for ck in &t.certs {
                out.extend(cert_key_paths(ck));
                out.extend(ck.ocsp.as_ref().and_then(|o| o.file()).map(Into::into));
            }
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
    fn a_rewritten_config_file_changes_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "a = 1\n").unwrap();
        let before = FileStamp::of(&f);
        assert_eq!(before, FileStamp::of(&f));
        std::fs::write(&f, "a = 12\n").unwrap();
        assert_ne!(before, FileStamp::of(&f));
    }

    #[test]
    fn a_configmap_data_symlink_swap_changes_the_stamp() {
        // Kubernetes' layout: c.toml -> ..data/c.toml, ..data -> ..v1; an
        // update writes ..v2 and renames a new ..data link over the old one.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for v in ["..v1", "..v2"] {
            std::fs::create_dir(d.join(v)).unwrap();
            // Same size, and possibly the same mtime: only the target differs.
            std::fs::write(d.join(v).join("c.toml"), "a = 1\n").unwrap();
        }
        std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/c.toml", d.join("c.toml")).unwrap();
        let before = FileStamp::of(&d.join("c.toml"));
        std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        assert_ne!(before, FileStamp::of(&d.join("c.toml")));
    }

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
