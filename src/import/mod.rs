//! `import`: a complete, commented `[[route]]` from settings GMS already
//! has (issue 19): Jetty's `jetty-ssl-context.xml` (`jetty`) or one Genesys
//! transport-parameter string (`genesys`); and from a whole stunnel.conf,
//! one route per service (`stunnel`, issue 23).
//!
//! Each importer is a pure function from the text it reads to an
//! [`Import`]: the TOML, and the secrets that must go to password files
//! beside it. [`Import::write`] puts them on disk (mode 0600); a password
//! is never printed, so without an output file an import that needs one is
//! refused. The TOML is validated by the config layer before it is written:
//! what `import` writes, `check` accepts.

pub mod genesys;
pub mod jetty;
pub mod stunnel;
mod toml;

use std::path::{Path, PathBuf};

use crate::tls::keystore::Password;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Stunnel(#[from] stunnel::StunnelError),
    #[error("the result would not load, which is a bug in import: {0}")]
    Unloadable(String),
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A password the route needs, written to `CONFIG` + `suffix`.
#[derive(Debug)]
pub struct Secret {
    /// ".password", ".truststore.password", ...
    pub suffix: String,
    pub password: Password,
}

/// The result of an import: TOML text whose password files are named by
/// the placeholder [`SECRET_DIR`] + suffix until [`Import::write`] knows
/// the config's path.
#[derive(Debug)]
pub struct Import {
    pub toml: String,
    pub secrets: Vec<Secret>,
}

/// Stands for the config's own path in `Import::toml` until it is known.
const CONFIG_PLACEHOLDER: &str = "\u{0}CONFIG\u{0}";

/// A password file's path in the TOML: `CONFIG` + `suffix`.
pub(crate) fn secret_path(suffix: &str) -> String {
    format!("{CONFIG_PLACEHOLDER}{suffix}")
}

impl Import {
    /// The TOML with password files next to `config`.
    pub fn text_for(&self, config: &Path) -> String {
        self.toml.replace(
            CONFIG_PLACEHOLDER,
            &toml::escape(&config.display().to_string()),
        )
    }

    /// Writes the password files (0600) and then the config to `out`, or,
    /// with no `out`, returns the config for standard output (refused when
    /// a password would have to go with it). The text is validated first.
    pub fn write(&self, out: Option<&Path>) -> Result<String, ImportError> {
        let Some(out) = out else {
            if let Some(s) = self.secrets.first() {
                return Err(ImportError::Usage(format!(
                    "the route needs a password file, and passwords are never printed: give --out CONFIG (the password goes to CONFIG{}, mode 0600)",
                    s.suffix
                )));
            }
            let text = self.text_for(Path::new("CONFIG"));
            validate(&text)?;
            return Ok(text);
        };
        let out = absolute(out);
        let text = self.text_for(&out);
        validate(&text)?;
        for s in &self.secrets {
            let path = PathBuf::from(format!("{}{}", out.display(), s.suffix));
            write_private(&path, &format!("{}\n", s.password.expose()))?;
        }
        std::fs::write(&out, &text).map_err(|source| ImportError::Write {
            path: out.clone(),
            source,
        })?;
        Ok(String::new())
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    }
}

/// The config layer's verdict on the text (without reading the files it
/// names: `check` does that).
fn validate(text: &str) -> Result<(), ImportError> {
    crate::config::load_str(Path::new("import"), text, Some(Default::default()))
        .map(|_| ())
        .map_err(|e| ImportError::Unloadable(e.to_string()))
}

/// Creates `path` readable by its owner only, before a byte is written.
fn write_private(path: &Path, text: &str) -> Result<(), ImportError> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| ImportError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    // An existing file keeps its mode through open(): set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}
