//! Java keystores: PKCS#12 (`.p12`/`.pfx`, legacy RC2/3DES and modern AES
//! encryption) and JKS, the stores GMS and the PSDK applications already
//! have (issue 19). Read with `p12-keystore` and `jks`; this module only
//! detects the format by content, picks the entry and says what went wrong
//! in words an operator can act on.
//!
//! Nothing here knows about routes or config keys: `material::Loader`
//! wraps these errors with the file, the route and the key.

use std::fmt;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// What a certificate, key or trust file holds, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub enum Format {
    /// PEM text (or anything that is not a keystore: the PEM reader says
    /// what is wrong with it).
    #[strum(serialize = "PEM")]
    Pem,
    /// PKCS#12: a DER SEQUENCE.
    #[strum(serialize = "PKCS#12")]
    Pkcs12,
    /// Sun's JKS: magic 0xFEEDFEED.
    #[strum(serialize = "JKS")]
    Jks,
    /// Sun's JCEKS: magic 0xCECECECE (no pure-Rust reader; refused).
    #[strum(serialize = "JCEKS")]
    Jceks,
}

impl Format {
    pub fn detect(bytes: &[u8]) -> Format {
        match bytes {
            [0xFE, 0xED, 0xFE, 0xED, ..] => Format::Jks,
            [0xCE, 0xCE, 0xCE, 0xCE, ..] => Format::Jceks,
            // A PKCS#12 PFX is a SEQUENCE that opens with INTEGER 3 (its
            // version); a DER certificate opens with another SEQUENCE.
            [0x30, len, rest @ ..] if *len >= 0x80 => {
                let skip = usize::from(*len - 0x80);
                if rest.get(skip..skip + 3) == Some(&[0x02, 0x01, 0x03][..]) {
                    Format::Pkcs12
                } else {
                    Format::Pem
                }
            }
            _ => Format::Pem,
        }
    }

    pub fn is_keystore(self) -> bool {
        self != Format::Pem
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A keystore password. Its `Debug` shows nothing of it.
pub struct Password(String);

impl Password {
    /// The first line of a password file, without its line ending: what
    /// `echo secret > file` and Jetty's tools write.
    pub fn from_file_text(text: &str) -> Password {
        let line = text.split('\n').next().unwrap_or("");
        Password(line.strip_suffix('\r').unwrap_or(line).to_owned())
    }

    pub fn new(s: impl Into<String>) -> Password {
        Password(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Why a keystore could not give what was asked of it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("wrong password for the {0} keystore (its integrity check failed)")]
    WrongPassword(&'static str),
    #[error("wrong password for the JKS key entry \"{0}\" (set key_password_file when the key's password is not the store's)")]
    WrongKeyPassword(String),
    #[error("the {format} keystore has no entry \"{alias}\" (it holds: {available})")]
    NoAlias {
        format: &'static str,
        alias: String,
        available: String,
    },
    #[error("the {format} keystore's entry \"{alias}\" is a trusted certificate, not a private key with its certificate")]
    NotAKeyEntry { format: &'static str, alias: String },
    #[error("the {0} keystore holds no private key entry")]
    NoKeyEntry(&'static str),
    #[error(
        "the {format} keystore holds several private keys ({aliases}): set `alias` to pick one"
    )]
    SeveralKeys {
        format: &'static str,
        aliases: String,
    },
    #[error("the {format} keystore's entry \"{alias}\" has a key but no certificate")]
    NoCertificate { format: &'static str, alias: String },
    #[error("the {0} keystore holds no trusted certificate")]
    NoTrusted(&'static str),
    #[error("JCEKS keystores cannot be read: convert it with `keytool -importkeystore -deststoretype PKCS12`")]
    Jceks,
    #[error("not a readable {format} keystore: {detail}")]
    Malformed {
        format: &'static str,
        detail: String,
    },
}

/// A private key with its certificate chain (leaf first), from one entry.
pub struct Identity {
    pub alias: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("alias", &self.alias)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// One entry as read, before choosing: a key entry or a trusted certificate.
enum Entry {
    Key { chain: Vec<Vec<u8>>, key: Vec<u8> },
    Trusted(Vec<u8>),
}

/// The private key entry named `alias`, or the only one when `alias` is
/// `None`.
/// `key_password` opens a JKS key entry whose password differs from the
/// store's (PKCS#12 has one password for all).
pub fn identity(
    bytes: &[u8],
    password: &Password,
    key_password: Option<&Password>,
    alias: Option<&str>,
) -> Result<Identity, StoreError> {
    let format = Format::detect(bytes);
    let entries = read(format, bytes, password, key_password)?;
    let f = format.as_str();
    let (alias, entry) = match alias {
        Some(want) => {
            let available = aliases_of(&entries, |_| true);
            entries
                .into_iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(want))
                .ok_or_else(|| StoreError::NoAlias {
                    format: f,
                    alias: want.to_owned(),
                    available,
                })?
        }
        None => {
            let mut keys: Vec<_> = entries
                .into_iter()
                .filter(|(_, e)| matches!(e, Entry::Key { .. }))
                .collect();
            match keys.len() {
                0 => return Err(StoreError::NoKeyEntry(f)),
                1 => keys.remove(0),
                _ => {
                    return Err(StoreError::SeveralKeys {
                        format: f,
                        aliases: aliases_of(&keys, |_| true),
                    })
                }
            }
        }
    };
    match entry {
        Entry::Key { chain, key } => {
            if chain.is_empty() {
                return Err(StoreError::NoCertificate { format: f, alias });
            }
            Ok(Identity {
                alias,
                chain: chain.into_iter().map(CertificateDer::from).collect(),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            })
        }
        Entry::Trusted(_) => Err(StoreError::NotAKeyEntry { format: f, alias }),
    }
}

/// Every trusted certificate of a trust store. A PKCS#12 store made by
/// `openssl pkcs12 -export -nokeys` marks none as trusted (only Java's
/// keytool does): then every certificate not tied to a key is taken.
pub fn trusted(
    bytes: &[u8],
    password: &Password,
) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let format = Format::detect(bytes);
    let certs: Vec<CertificateDer<'static>> = if format == Format::Pkcs12 {
        let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password.expose())
            .map_err(|e| p12_error(&e))?;
        let marked: Vec<_> = archive.certs.iter().filter(|c| c.trusted).collect();
        let chosen = if marked.is_empty() {
            archive
                .certs
                .iter()
                .filter(|c| c.local_key_id.is_none())
                .collect()
        } else {
            marked
        };
        chosen
            .into_iter()
            .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
            .collect()
    } else {
        read(format, bytes, password, None)?
            .into_iter()
            .filter_map(|(_, e)| match e {
                Entry::Trusted(der) => Some(CertificateDer::from(der)),
                Entry::Key { .. } => None,
            })
            .collect()
    };
    if certs.is_empty() {
        return Err(StoreError::NoTrusted(format.as_str()));
    }
    Ok(certs)
}

fn aliases_of(entries: &[(String, Entry)], keep: impl Fn(&Entry) -> bool) -> String {
    let mut names: Vec<_> = entries
        .iter()
        .filter(|(_, e)| keep(e))
        .map(|(a, _)| format!("\"{a}\""))
        .collect();
    names.sort();
    if names.is_empty() {
        "no entries".into()
    } else {
        names.join(", ")
    }
}

/// All entries, sorted by alias.
fn read(
    format: Format,
    bytes: &[u8],
    password: &Password,
    key_password: Option<&Password>,
) -> Result<Vec<(String, Entry)>, StoreError> {
    let mut out = match format {
        Format::Pkcs12 => read_pkcs12(bytes, password)?,
        Format::Jks => read_jks(bytes, password, key_password.unwrap_or(password))?,
        Format::Jceks => return Err(StoreError::Jceks),
        Format::Pem => {
            return Err(StoreError::Malformed {
                format: "PKCS#12 or JKS",
                detail: "the file starts like neither".into(),
            })
        }
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn p12_error(e: &p12_keystore::error::Error) -> StoreError {
    use p12_keystore::error::Error as E;
    match e {
        // The MAC over the contents is keyed by the password: a mismatch is
        // a wrong password (or a tampered file).
        E::MacError(_) => StoreError::WrongPassword("PKCS#12"),
        // Without a MAC, a wrong password shows as bad padding or garbage.
        E::UnpadError | E::InvalidPrivateKey => StoreError::WrongPassword("PKCS#12"),
        other => StoreError::Malformed {
            format: "PKCS#12",
            detail: other.to_string(),
        },
    }
}

fn read_pkcs12(bytes: &[u8], password: &Password) -> Result<Vec<(String, Entry)>, StoreError> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password.expose(),
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| p12_error(&e))?;
    let mut out = Vec::new();
    for (alias, entry) in store.entries() {
        match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => out.push((
                alias.clone(),
                Entry::Key {
                    chain: chain.certs().iter().map(|c| c.as_der().to_vec()).collect(),
                    key: chain.key().as_der().to_vec(),
                },
            )),
            p12_keystore::KeyStoreEntry::Certificate(c) => {
                out.push((alias.clone(), Entry::Trusted(c.as_der().to_vec())))
            }
            p12_keystore::KeyStoreEntry::Secret(_) => {}
        }
    }
    Ok(out)
}

fn read_jks(
    bytes: &[u8],
    password: &Password,
    key_password: &Password,
) -> Result<Vec<(String, Entry)>, StoreError> {
    let mut store = jks::KeyStore::new();
    store
        .load(bytes, password.expose().as_bytes())
        .map_err(|e| match e {
            jks::KeyStoreError::InvalidDigest => StoreError::WrongPassword("JKS"),
            other => StoreError::Malformed {
                format: "JKS",
                detail: other.to_string(),
            },
        })?;
    let mut out = Vec::new();
    for alias in store.aliases() {
        if store.is_private_key_entry(&alias) {
            // Keytool protects each key with the key password, which is the
            // store password unless set apart (`-keypass`).
            let entry = store
                .get_private_key_entry(&alias, key_password.expose().as_bytes())
                .map_err(|e| match e {
                    jks::KeyStoreError::InvalidDigest => {
                        StoreError::WrongKeyPassword(alias.clone())
                    }
                    other => StoreError::Malformed {
                        format: "JKS",
                        detail: format!("entry \"{alias}\": {other}"),
                    },
                })?;
            out.push((
                alias,
                Entry::Key {
                    chain: entry
                        .certificate_chain
                        .into_iter()
                        .map(|c| c.content)
                        .collect(),
                    key: entry.private_key,
                },
            ));
        } else if let Ok(t) = store.get_trusted_certificate_entry(&alias) {
            out.push((alias, Entry::Trusted(t.certificate.content)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(Format::detect(b"-----BEGIN CERTIFICATE-----"), Format::Pem);
        assert_eq!(Format::detect(&[0xFE, 0xED, 0xFE, 0xED, 0, 0]), Format::Jks);
        assert_eq!(Format::detect(&[0xCE, 0xCE, 0xCE, 0xCE]), Format::Jceks);
        assert_eq!(
            Format::detect(&[0x30, 0x82, 0x0a, 0x10, 0x02, 0x01, 0x03, 0x30]),
            Format::Pkcs12
        );
        assert_eq!(
            Format::detect(&[0x30, 0x80, 0x02, 0x01, 0x03]),
            Format::Pkcs12
        );
        // A DER certificate is not taken for a keystore: the PEM reader
        // says what is wrong with it.
        assert_eq!(
            Format::detect(&[0x30, 0x82, 0x01, 0x0a, 0x30, 0x81, 0xb0, 0xa0]),
            Format::Pem
        );
        assert_eq!(Format::detect(b""), Format::Pem);
    }

    #[test]
    fn a_password_file_gives_its_first_line_without_the_line_ending() {
        assert_eq!(Password::from_file_text("s3cret\n").expose(), "s3cret");
        assert_eq!(Password::from_file_text("s3cret\r\n").expose(), "s3cret");
        assert_eq!(
            Password::from_file_text("with space ").expose(),
            "with space "
        );
        assert_eq!(Password::from_file_text("").expose(), "");
    }

    #[test]
    fn a_password_prints_nothing_of_itself() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(..)");
    }

    #[test]
    fn a_jceks_store_is_refused_with_the_conversion_to_run() {
        let e = trusted(&[0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2], &Password::new("x")).unwrap_err();
        assert_eq!(e, StoreError::Jceks);
    }
}
