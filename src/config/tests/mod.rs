//! Every rule of `validate`, one test each: what a config may say, and for
//! what it may not, the exact file, route and key the error names and the
//! words that say why.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;

/// The smallest valid route; tests append keys or tables to it.
const ROUTE: &str =
    "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"peer.example:7022\"]\n";

/// Another route, `name` listening on `listen`.
fn route(name: &str, listen: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nlisten = \"{listen}\"\nconnect = [\"peer.example:7022\"]\n"
    )
}

/// `ROUTE` with a `[route.connect_tls]` table holding `lines`.
fn connect_tls(lines: &str) -> String {
    format!("{ROUTE}[route.connect_tls]\n{lines}\n")
}

/// `ROUTE` with a `[route.listen_tls]` table holding `lines`.
fn listen_tls(lines: &str) -> String {
    format!("{ROUTE}[route.listen_tls]\n{lines}\n")
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_with(text, &[])
}

/// Loads `text` with exactly these environment variables (never the
/// process's own environment).
fn load_with(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_str(Path::new("t.toml"), text, Some(env))
}

/// Asserts that `text` is refused with exactly this route and key, that the
/// message begins by naming file, route and key, and that it says `words`.
#[track_caller]
fn refused(text: &str, route: Option<&str>, key: Option<&str>, words: &str) {
    refused_err(load(text), text, route, key, words);
}

#[track_caller]
fn refused_err(
    result: Result<Config, ConfigError>,
    text: &str,
    route: Option<&str>,
    key: Option<&str>,
    words: &str,
) {
    let e = match result {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    };
    assert_eq!(e.file, Path::new("t.toml"), "{e}");
    assert_eq!(e.route.as_deref(), route, "{e}");
    assert_eq!(e.key.as_deref(), key, "{e}");
    let shown = e.to_string();
    let mut place = "t.toml".to_owned();
    if let Some(r) = route {
        place.push_str(&format!(": route \"{r}\""));
    }
    if let Some(k) = key {
        place.push_str(&format!(": key `{k}`"));
    }
    place.push_str(": ");
    assert!(
        shown.starts_with(&place),
        "{shown:?} does not start with {place:?}"
    );
    assert!(shown.contains(words), "{shown:?} lacks {words:?}");
}

fn the_route(c: &Config) -> &Route {
    assert_eq!(c.routes.len(), 1);
    &c.routes[0]
}

fn the_connect_tls(c: &Config) -> &ConnectTls {
    the_route(c).connect_tls.as_ref().expect("connect_tls")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

mod certs;
mod connect;
mod defaults;
mod env;
mod files;
mod genesys;
mod keys;
mod listen;
mod routes;
mod scripts;
