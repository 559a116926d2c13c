//! `import jetty`: GMS's `etc/jetty-ssl-context.xml` (Jetty 9 to 12) as a
//! `[[route]]` with `[route.listen_tls]`.
//!
//! Jetty's XML is evaluated the way Jetty's `XmlConfiguration` does for the
//! forms its stock files use: `<Set name="…">` with a literal value,
//! `<Set name="…" property="…"/>`, `<Property name="…" default="…"/>`
//! (also with `deprecated`, and with `<Name>`, `<Deprecated>` and a nested
//! `<Default>` as the stock files write `jetty.base`), `<SystemProperty>`,
//! `<Array>` of `<Item>`s, and `XmlConfiguration.resolvePath` (Jetty 10 to
//! 12). The factory is the root (9.4) or the `<New>` that Jetty 10 to 12
//! add to the `Server` with `<Call name="addBean">`. Properties come from
//! `--properties` (`start.ini`, `start.d/ssl.ini`, `jetty-ssl.properties`,
//! a later file winning), by default from `$JETTY_BASE`'s own. Each setting is then mapped
//! onto our keys; what has none becomes a comment, never silently dropped.

mod obf;
mod protocols;
mod sets;
#[cfg(test)]
mod testing;
mod translate;
mod xml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use obf::deobfuscate;
pub use xml::properties;

use super::{Import, ImportError};
use translate::translate;
use xml::settings;

/// Where the route listens and connects, and the files read.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: String,
    pub connect: String,
    /// Property files in the order Jetty reads them (a later one wins):
    /// `start.ini`, `start.d/ssl.ini`, `jetty-ssl.properties`. Empty:
    /// `$JETTY_BASE/start.ini` and `$JETTY_BASE/start.d/ssl.ini`, those that
    /// exist.
    pub properties: Vec<PathBuf>,
}

/// Reads the XML (and properties) at the paths given and translates them.
pub fn import(xml_path: &Path, opts: &Options) -> Result<Import, ImportError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| ImportError::Read {
            path: p.to_owned(),
            source,
        })
    };
    let xml = read(xml_path)?;
    let sources = if opts.properties.is_empty() {
        let base = jetty_base(xml_path);
        ["start.ini", "start.d/ssl.ini"]
            .iter()
            .map(|f| base.join(f))
            .filter(|p| p.is_file())
            .collect()
    } else {
        opts.properties.clone()
    };
    let mut props = HashMap::new();
    for p in &sources {
        props.extend(properties(&read(p)?));
    }
    let base_note = if props.contains_key("jetty.base") {
        None
    } else {
        let base = jetty_base(xml_path);
        let note = format!(
            "jetty.base = {} (the directory above the XML's etc/; set it in --properties if not)",
            base.display()
        );
        props.insert("jetty.base".into(), base.display().to_string());
        Some(note)
    };
    expand(&mut props);
    let sets = settings(&xml, &props).map_err(|message| ImportError::Invalid {
        path: xml_path.to_owned(),
        message,
    })?;
    let mut head = format!(
        "Imported by `tls-sidecar import jetty {}`{}.\n",
        xml_path.display(),
        opts.properties
            .iter()
            .map(|p| format!(" --properties {}", p.display()))
            .collect::<String>()
    );
    if opts.properties.is_empty() {
        let read: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
        head.push_str(&match read.as_slice() {
            [] => "No start.ini or start.d/ssl.ini beside etc/: the XML's defaults stand.\n".into(),
            _ => format!(
                "Properties read from {} (a later file wins).\n",
                read.join(", ")
            ),
        });
    }
    if let Some(n) = base_note {
        head.push_str(&format!("{n}\n"));
    }
    translate(&sets, opts, &head, &props).map_err(|message| ImportError::Invalid {
        path: xml_path.to_owned(),
        message,
    })
}

/// The translation of an XML text and one property file's text, without
/// touching the disk (`jetty.base` is `/jetty-base` unless the properties
/// say): what the fuzz target runs.
pub fn translate_text(xml: &str, props_text: &str, opts: &Options) -> Result<Import, String> {
    let mut props = properties(props_text);
    props
        .entry("jetty.base".into())
        .or_insert_with(|| "/jetty-base".into());
    expand(&mut props);
    let sets = settings(xml, &props)?;
    translate(&sets, opts, "", &props)
}

/// start.jar's `${name}` in a property's value (`keyStoreAbsolutePath=
/// ${jetty.base}/etc/keystore`), from the other properties; an unknown name
/// stays as written.
fn expand(props: &mut HashMap<String, String>) {
    let known = props.clone();
    for v in props.values_mut() {
        let mut out = String::new();
        let mut rest = v.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) if known.contains_key(&after[..end]) => {
                    out.push_str(&known[&after[..end]]);
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        *v = out;
    }
}

/// `$JETTY_BASE` for a file at `$JETTY_BASE/etc/jetty-ssl-context.xml`.
fn jetty_base(xml: &Path) -> PathBuf {
    let abs = if xml.is_absolute() {
        xml.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(xml))
            .unwrap_or_else(|_| xml.to_owned())
    };
    let dir = abs.parent().unwrap_or(Path::new("/"));
    if dir.file_name().is_some_and(|n| n == "etc") {
        dir.parent().unwrap_or(dir).to_owned()
    } else {
        dir.to_owned()
    }
}
