//! Configuration: read one TOML file plus `TLS_SIDECAR__…` environment
//! overrides with the `config` crate, and turn it, in one place
//! (`validate`), into the runtime model of `model`. No sockets, no TLS here.

pub mod ciphers;
mod error;
mod files;
pub mod genesys;
pub mod keys;
mod model;
mod raw;
pub mod redact;
pub mod script;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use error::RouteCtx;
pub use error::{ConfigError, Problem};
pub use files::NamedFile;
pub use model::*;

/// Where `-c` points when it is not given and `$TLS_SIDECAR_CONFIG` is unset.
pub const DEFAULT_PATH: &str = "/etc/tls-sidecar/tls-sidecar.toml";

/// The environment prefix: `TLS_SIDECAR__ADMIN__LISTEN` overrides `admin.listen`.
pub const ENV_PREFIX: &str = "TLS_SIDECAR";

/// Reads and validates the file at `path`, with overrides from the process
/// environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, None)
}

/// As [`load`], with the environment given explicitly (`None`: the process's).
/// Tests use this to try overrides without touching the real environment.
pub fn load_with_env(
    path: &Path,
    env: Option<HashMap<String, String>>,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::top(path, None, Problem::Read(e)))?;
    load_str(path, &text, env)
}

/// Parses `text` as if read from `path`.
pub fn load_str(
    path: &Path,
    text: &str,
    env: Option<HashMap<String, String>>,
) -> Result<Config, ConfigError> {
    let env_source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(env);
    let merged = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(env_source)
        .build()
        .map_err(|e| ConfigError::top(path, None, Problem::Syntax(e.to_string())))?;
    let raw: raw::RawFile =
        serde_path_to_error::deserialize(merged).map_err(|e| error::parse_error(path, None, e))?;
    validate::validate(PathBuf::from(path), raw)
}

#[cfg(test)]
mod tests;
