//! The one error type of the config layer: every message names the file, and
//! where it applies the route and the key.

use std::fmt;
use std::path::PathBuf;

/// A configuration that cannot be served, and exactly where it is wrong.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// The route's name (or `route[N]` when the name itself is missing).
    pub route: Option<String>,
    /// The key, dotted from the route (`connect_tls.verify`) or the top.
    pub key: Option<String>,
    pub problem: Problem,
}

/// What is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("failed to read the file: {0}")]
    Read(#[source] std::io::Error),
    #[error("failed to parse: {0}")]
    Syntax(String),
    #[error("failed to read {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// An error at the top of the file, not in a route.
    pub fn top(file: impl Into<PathBuf>, key: Option<&str>, problem: Problem) -> Self {
        ConfigError {
            file: file.into(),
            route: None,
            key: key.map(str::to_owned),
            problem,
        }
    }
}

/// A value the serde structs could not take (an unknown key, a wrong type,
/// a missing key, an unknown word), placed by the path `serde_path_to_error`
/// tracked; `route` is `None` at the top of the file. The message is the
/// deserializer's own, without the key `config` appends to it.
pub(super) fn parse_error(
    file: &std::path::Path,
    route: Option<&str>,
    e: serde_path_to_error::Error<config::ConfigError>,
) -> ConfigError {
    let path = e.path().to_string();
    // The root prints as ".".
    let mut key = (path != ".").then_some(path);
    let message = match e.into_inner() {
        // A missing key: the path is its table, and `config` holds the key
        // dotted from the start ("listen_tls.certs[0]key"): its last name.
        config::ConfigError::NotFound(written) => {
            let name = written.rsplit(['.', ']']).next().unwrap_or(&written);
            key = Some(match key {
                Some(table) => format!("{table}.{name}"),
                None => name.to_owned(),
            });
            config::ConfigError::NotFound(name.to_owned()).to_string()
        }
        other => without_key(other).to_string(),
    };
    ConfigError {
        file: file.to_owned(),
        route: route.map(str::to_owned),
        key,
        problem: Problem::Syntax(message),
    }
}

/// `e` without the key `config` writes after its message: the error names
/// the key already.
fn without_key(e: config::ConfigError) -> config::ConfigError {
    use config::ConfigError as E;
    match e {
        E::At {
            error,
            origin: None,
            ..
        } => without_key(*error),
        E::At { error, origin, .. } => E::At {
            error: Box::new(without_key(*error)),
            origin,
            key: None,
        },
        E::Type {
            origin,
            unexpected,
            expected,
            ..
        } => E::Type {
            origin,
            unexpected,
            expected,
            key: None,
        },
        other => other,
    }
}

/// The message, with the userinfo of any URL in it redacted
/// (`super::redact`): a parser's words may quote the line that holds it.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let mut text = format!("{}", self.file.display());
        if let Some(route) = &self.route {
            let _ = write!(text, ": route \"{route}\"");
        }
        if let Some(key) = &self.key {
            let _ = write!(text, ": key `{key}`");
        }
        let _ = write!(text, ": {}", self.problem);
        f.write_str(&super::redact::userinfo(&text))
    }
}

/// No `source()`: the message already carries the cause (the I/O error, the
/// parser's words), and error reporters that walk the chain (`{:#}`) would
/// print it twice more.
impl std::error::Error for ConfigError {}

/// Builds errors for one route, so each check is a one-liner.
pub struct RouteCtx<'a> {
    pub file: &'a std::path::Path,
    pub route: &'a str,
}

impl RouteCtx<'_> {
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            route: Some(self.route.to_owned()),
            key: Some(key.to_owned()),
            problem: Problem::Invalid(message.into()),
        }
    }
}
