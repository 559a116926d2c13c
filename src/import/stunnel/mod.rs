//! `import stunnel FILE`: a whole stunnel.conf as routes, one per
//! `[service]` (issue 23).
//!
//! Three steps, the first two sans-io: `parse` reads lines (sections and
//! `option = value`, with file and line), `model` types them (the global
//! section's defaults copied into each service, as stunnel does), and
//! `translate`/`tls` write each service as a `[[route]]` (the route being
//! written, `route`, shared by both). This file does the reading: the
//! file, its `include` directories (the files of each in ascending order of
//! name, spliced where the `include` stands), and `CAfile` when
//! `verifyPeer` wants its certificates pinned.

mod model;
mod parse;
mod route;
mod tls;
mod translate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use super::{Import, ImportError};
use parse::{Item, Line};

/// A stunnel.conf that cannot be translated, with the file and line that
/// say why.
#[derive(Debug, thiserror::Error)]
#[error("{}:{}: {}", .file.display(), .line, .message)]
pub struct StunnelError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// The SPKI pins (`sha256/BASE64`) of the certificates in a `CAfile`.
pub(crate) type Pins<'a> = &'a dyn Fn(&str) -> Result<Vec<String>, String>;

/// How deep `include` may nest (stunnel allows none inside an included
/// file; a loop must end somewhere).
const MAX_INCLUDE_DEPTH: usize = 4;

/// Reads `path` (and what it includes) and translates every service.
pub fn import(path: &Path) -> Result<Import, ImportError> {
    let lines = load(path, 0)?;
    let conf = model::Conf::build(&lines)?;
    Ok(translate::translate(&conf, path, &pins_of)?)
}

/// The translation of one file's text without touching the disk: an
/// `include` is refused, and so is `verifyPeer` (its pins need `CAfile`).
/// What the fuzz target runs.
pub fn translate_text(file: &Path, text: &str) -> Result<Import, StunnelError> {
    let lines = parse::lines(file, text)?;
    if let Some(l) = lines.iter().find(|l| is_include(l).is_some()) {
        return Err(l.at.error("include needs the files it names"));
    }
    let conf = model::Conf::build(&lines)?;
    translate::translate(&conf, file, &|_: &str| Err("not read".to_owned()))
}

fn is_include(l: &Line) -> Option<&str> {
    match &l.item {
        Item::Option { key, value } if key.eq_ignore_ascii_case("include") => Some(value),
        _ => None,
    }
}

fn load(path: &Path, depth: usize) -> Result<Vec<Line>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for line in parse::lines(path, &text)? {
        let Some(dir) = is_include(&line) else {
            out.push(line);
            continue;
        };
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(line
                .at
                .error(format!(
                    "include = {dir}: nested more than {MAX_INCLUDE_DEPTH} deep"
                ))
                .into());
        }
        let dir = resolve(path, dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| ImportError::Read {
                path: dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            out.extend(load(&f, depth + 1)?);
        }
    }
    Ok(out)
}

/// A relative `include` is taken from the including file's directory.
fn resolve(from: &Path, dir: &str) -> PathBuf {
    let d = Path::new(dir);
    if d.is_absolute() {
        d.to_owned()
    } else {
        from.parent().unwrap_or(Path::new(".")).join(d)
    }
}

/// The pins of every certificate in a PEM `CAfile`.
fn pins_of(file: &str) -> Result<Vec<String>, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| format!("cannot be read: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no certificate to pin".into());
    }
    certs
        .iter()
        .map(|c| {
            crate::tls::material::spki_sha256(c)
                .map(|h| crate::tls::material::pin_string(&h))
                .ok_or_else(|| "a certificate whose public key cannot be read".to_owned())
        })
        .collect()
}
