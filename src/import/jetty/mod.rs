//! `import jetty`: GMS's `etc/jetty-ssl-context.xml` (Jetty 9 to 12) as a
//! `[[route]]` with `[route.listen_tls]`.
//!
//! Jetty's XML is evaluated the way Jetty's `XmlConfiguration` does for the
//! forms its stock files use: `<Set name="…">` with a literal value,
//! `<Set name="…" property="…"/>`, `<Property name="…" default="…"/>`
//! (also with `deprecated`, and with `<Name>`, `<Deprecated>` and a nested
//! `<Default>` as the stock files write `jetty.base`), `<SystemProperty>`,
//! and `<Array>` of `<Item>`s. Properties come from `--properties`
//! (`jetty-ssl.properties`, `start.d/ssl.ini`). Each setting is then mapped
//! onto our keys; what has none becomes a comment, never silently dropped.

mod obf;
mod protocols;
mod translate;
mod xml;

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
    pub properties: Option<PathBuf>,
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
    let props_text = match &opts.properties {
        Some(p) => Some(read(p)?),
        None => None,
    };
    let mut props = props_text.as_deref().map(properties).unwrap_or_default();
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
    let sets = settings(&xml, &props).map_err(|message| ImportError::Invalid {
        path: xml_path.to_owned(),
        message,
    })?;
    let mut head = format!(
        "Imported by `tls-sidecar import jetty {}`{}.\n",
        xml_path.display(),
        opts.properties
            .as_ref()
            .map(|p| format!(" --properties {}", p.display()))
            .unwrap_or_default()
    );
    if let Some(n) = base_note {
        head.push_str(&format!("{n}\n"));
    }
    translate(&sets, opts, &head, &props).map_err(|message| ImportError::Invalid {
        path: xml_path.to_owned(),
        message,
    })
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
