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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::toml;
use super::{secret_path, Import, ImportError, Secret};
use crate::config::ciphers;
use crate::tls::keystore::Password;

/// Where the route listens and connects, and the files read.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: String,
    pub connect: String,
    pub properties: Option<PathBuf>,
}

/// A `<Set>`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    List(Vec<String>),
    /// A property with no value and no default: Jetty leaves the setting alone.
    Unset,
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

/// `key=value` lines of a properties or start.d ini file; `#` comments and
/// `--module=` lines are skipped.
pub fn properties(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("--"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Jetty's `OBF:` obfuscation undone (`org.eclipse.jetty.util.security.
/// Password.deobfuscate`): four base-36 digits per byte, or `U` and four
/// digits for a byte of a multi-byte character.
pub fn deobfuscate(obf: &str) -> Result<String, String> {
    let s = obf.strip_prefix("OBF:").unwrap_or(obf).as_bytes();
    let bad = |why: &str| format!("the OBF: string does not decode ({why})");
    let digits = |chunk: &[u8]| -> Result<u32, String> {
        let t = std::str::from_utf8(chunk).map_err(|_| bad("not ASCII"))?;
        u32::from_str_radix(t, 36).map_err(|_| bad(&format!("{t:?} is not base 36")))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'U' {
            let chunk = s.get(i + 1..i + 5).ok_or_else(|| bad("it ends short"))?;
            out.push((digits(chunk)? >> 8) as u8);
            i += 5;
        } else {
            let chunk = s.get(i..i + 4).ok_or_else(|| bad("it ends short"))?;
            let n = digits(chunk)?;
            let (hi, lo) = (n / 256, n % 256);
            let sum = (hi + lo)
                .checked_sub(254)
                .ok_or_else(|| bad("a group is out of range"))?;
            if sum % 2 != 0 || sum / 2 > 255 {
                return Err(bad("a group is out of range"));
            }
            out.push((sum / 2) as u8);
            i += 4;
        }
    }
    if out.is_empty() {
        return Err(bad("it is empty"));
    }
    String::from_utf8(out).map_err(|_| bad("the result is not UTF-8"))
}

/// One `<Set>` (or other element) by name, with its value or why it has
/// none we can use.
type Setting = (String, Result<Value, String>);

/// Every `<Set>` of the `<Configure>` of an SslContextFactory, in order,
/// with unsupported content reported as an error string in the value.
fn settings(xml: &str, props: &HashMap<String, String>) -> Result<Vec<Setting>, String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(xml, opts).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    let class = root.attribute("class").unwrap_or("");
    if root.tag_name().name() != "Configure"
        || !(class.contains("SslContextFactory")
            || root
                .attribute("id")
                .is_some_and(|i| i.eq_ignore_ascii_case("sslContextFactory")))
    {
        return Err(format!(
            "not Jetty's SSL context: the root is <{}{}>, not <Configure class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\">",
            root.tag_name().name(),
            if class.is_empty() {
                String::new()
            } else {
                format!(" class=\"{class}\"")
            }
        ));
    }
    let mut out = Vec::new();
    for child in root.children().filter(|n| n.is_element()) {
        let tag = child.tag_name().name();
        match tag {
            "Set" => {
                let name = child
                    .attribute("name")
                    .ok_or("a <Set> without name")?
                    .to_owned();
                let value = match child.attribute("property") {
                    Some(p) => Ok(props
                        .get(p)
                        .map(|v| Value::Text(v.clone()))
                        .unwrap_or(Value::Unset)),
                    None => value(child, props),
                };
                out.push((name, value));
            }
            other => out.push((
                format!(
                    "<{other}{}>",
                    child
                        .attribute("name")
                        .map(|n| format!(" name=\"{n}\""))
                        .unwrap_or_default()
                ),
                Err(format!("<{other}> is not translated")),
            )),
        }
    }
    Ok(out)
}

/// The value of an element's content.
fn value(node: roxmltree::Node<'_, '_>, props: &HashMap<String, String>) -> Result<Value, String> {
    let elements: Vec<_> = node.children().filter(|n| n.is_element()).collect();
    if let [only] = elements.as_slice() {
        if only.tag_name().name() == "Array" {
            let items = only
                .children()
                .filter(|n| n.has_tag_name("Item"))
                .map(|i| match value(i, props)? {
                    Value::Text(t) => Ok(t),
                    _ => Err("an <Item> without a value".to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Value::List(items));
        }
    }
    let mut text = String::new();
    for child in node.children() {
        if child.is_text() {
            text.push_str(child.text().unwrap_or(""));
            continue;
        }
        if !child.is_element() {
            continue;
        }
        match child.tag_name().name() {
            "Property" | "SystemProperty" | "Env" => match property(child, props)? {
                Some(v) => text.push_str(&v),
                None => return Ok(Value::Unset),
            },
            other => return Err(format!("<{other}> inside a value is not translated")),
        }
    }
    Ok(Value::Text(text.trim().to_owned()))
}

/// A `<Property>` (or `<SystemProperty>`, `<Env>`): the property's value,
/// a deprecated name's, or the default; `None`: unset.
fn property(
    node: roxmltree::Node<'_, '_>,
    props: &HashMap<String, String>,
) -> Result<Option<String>, String> {
    let child_text = |tag: &str| {
        node.children()
            .filter(|n| n.has_tag_name(tag))
            .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
            .collect::<Vec<_>>()
    };
    let mut names: Vec<String> = node
        .attribute("name")
        .map(str::to_owned)
        .into_iter()
        .collect();
    names.extend(child_text("Name"));
    if let Some(d) = node.attribute("deprecated") {
        names.extend(d.split(',').map(|s| s.trim().to_owned()));
    }
    names.extend(child_text("Deprecated"));
    if names.is_empty() {
        return Err(format!("a <{}> without a name", node.tag_name().name()));
    }
    // <Env> reads the environment of the JVM, which is not this one; its
    // default stands.
    if node.tag_name().name() != "Env" {
        if let Some(v) = names.iter().find_map(|n| props.get(n)) {
            return Ok(Some(v.clone()));
        }
    }
    if let Some(d) = node.attribute("default") {
        return Ok(Some(d.to_owned()));
    }
    match node.children().find(|n| n.has_tag_name("Default")) {
        Some(d) => match value(d, props)? {
            Value::Text(t) => Ok(Some(t)),
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

/// What the route is built from.
#[derive(Default)]
struct Route {
    listen_tls: Vec<String>,
    notes: Vec<String>,
    untranslated: Vec<String>,
    secrets: Vec<Secret>,
}

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name} = {v:?} is neither true nor false")),
    }
}

fn password(name: &str, v: &str) -> Result<Password, String> {
    if v.starts_with("OBF:") {
        return deobfuscate(v)
            .map(Password::new)
            .map_err(|e| format!("{name}: {e}"));
    }
    if v.starts_with("MD5:") || v.starts_with("CRYPT:") {
        return Err(format!(
            "{name} is a one-way hash ({}…), which cannot open a keystore: give the password (plain or OBF:)",
            &v[..v.find(':').unwrap_or(0) + 1]
        ));
    }
    Ok(Password::new(v))
}

fn translate(
    sets: &[Setting],
    opts: &Options,
    head: &str,
    props: &HashMap<String, String>,
) -> Result<Import, String> {
    // Normalized names (Jetty calls setX for both "X" and "x").
    let mut by_name: HashMap<String, &Value> = HashMap::new();
    let mut r = Route::default();
    for (name, v) in sets {
        match v {
            Ok(Value::Unset) => {}
            Ok(v) => {
                by_name.insert(name.to_ascii_lowercase(), v);
            }
            Err(why) => r.untranslated.push(format!("{name}: {why}")),
        }
    }
    let text = |n: &str| -> Result<Option<String>, String> {
        match by_name.get(&n.to_ascii_lowercase()) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t.clone())),
            Some(_) => Err(format!("{n} should be a single value, not an <Array>")),
        }
    };
    let list = |n: &str| -> Result<Option<Vec<String>>, String> {
        match by_name.get(&n.to_ascii_lowercase()) {
            None => Ok(None),
            Some(Value::List(l)) => Ok(Some(l.clone())),
            Some(Value::Text(t)) => Ok(Some(
                t.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )),
            Some(Value::Unset) => Ok(None),
        }
    };
    let base = PathBuf::from(props.get("jetty.base").cloned().unwrap_or_default());
    let path = |p: String| -> String {
        let pb = PathBuf::from(&p);
        if pb.is_absolute() {
            p
        } else {
            base.join(pb).display().to_string()
        }
    };
    let mut handled: Vec<&str> = Vec::new();
    let mut take = |n: &'static str| handled.push(n);

    // The keystore: the listener's identity.
    take("KeyStorePath");
    let keystore = text("KeyStorePath")?
        .map(path)
        .ok_or("KeyStorePath is not set: Jetty's SSL context needs a keystore")?;
    r.listen_tls
        .push(format!("cert = {}", toml::string(&keystore)));
    r.notes.push(format!("KeyStorePath → cert = {keystore:?}"));
    for (setting, what) in [
        ("KeyStoreType", "keystore"),
        ("TrustStoreType", "trust store"),
    ] {
        take(if what == "keystore" {
            "KeyStoreType"
        } else {
            "TrustStoreType"
        });
        if let Some(t) = text(setting)? {
            match t.to_ascii_uppercase().as_str() {
                "JKS" | "PKCS12" => r.notes.push(format!(
                    "{setting} = {t}: the {what}'s format is told by its content"
                )),
                _ => {
                    return Err(format!(
                        "{setting} = {t}: tls-sidecar reads JKS and PKCS12 {what}s only"
                    ))
                }
            }
        }
    }
    take("KeyStorePassword");
    let store_pw = match text("KeyStorePassword")? {
        Some(v) => password("KeyStorePassword", &v)?,
        None => return Err("KeyStorePassword is not set: the keystore cannot be opened".into()),
    };
    r.listen_tls.push(format!(
        "password_file = {}",
        toml::string(&secret_path(".password"))
    ));
    r.notes
        .push("KeyStorePassword → password_file = CONFIG.password (decoded, mode 0600)".into());
    take("KeyManagerPassword");
    if let Some(v) = text("KeyManagerPassword")? {
        let key_pw = password("KeyManagerPassword", &v)?;
        if key_pw.expose() != store_pw.expose() {
            r.listen_tls.push(format!(
                "key_password_file = {}",
                toml::string(&secret_path(".keymanager.password"))
            ));
            r.notes.push(
                "KeyManagerPassword (not the store's) → key_password_file = CONFIG.keymanager.password"
                    .into(),
            );
            r.secrets.push(Secret {
                suffix: ".keymanager.password",
                password: key_pw,
            });
        } else {
            r.notes
                .push("KeyManagerPassword is the store's password: nothing more to say".into());
        }
    }
    take("CertAlias");
    if let Some(a) = text("CertAlias")? {
        r.listen_tls.push(format!("alias = {}", toml::string(&a)));
        r.notes.push(format!("CertAlias → alias = {a:?}"));
    }

    // Client certificates.
    take("NeedClientAuth");
    take("WantClientAuth");
    take("TrustStorePath");
    take("TrustStorePassword");
    take("CrlPath");
    let need = text("NeedClientAuth")?
        .map(|v| boolean("NeedClientAuth", &v))
        .transpose()?
        .unwrap_or(false);
    let want = text("WantClientAuth")?
        .map(|v| boolean("WantClientAuth", &v))
        .transpose()?
        .unwrap_or(false);
    let trust = text("TrustStorePath")?.map(path);
    if need {
        let Some(trust) = &trust else {
            return Err(
                "NeedClientAuth = true without TrustStorePath: give the trust store that holds the clients' CA"
                    .into(),
            );
        };
        r.listen_tls
            .push(format!("client_ca = {}", toml::string(trust)));
        r.notes.push(format!(
            "NeedClientAuth = true, TrustStorePath → client_ca = {trust:?} (clients must present a certificate it signed)"
        ));
        if let Some(v) = text("TrustStorePassword")? {
            let pw = password("TrustStorePassword", &v)?;
            if pw.expose() != store_pw.expose() {
                r.listen_tls.push(format!(
                    "client_ca_password_file = {}",
                    toml::string(&secret_path(".truststore.password"))
                ));
                r.notes.push(
                    "TrustStorePassword → client_ca_password_file = CONFIG.truststore.password"
                        .into(),
                );
                r.secrets.push(Secret {
                    suffix: ".truststore.password",
                    password: pw,
                });
            }
        }
        if let Some(crl) = text("CrlPath")?.map(path) {
            r.listen_tls.push(format!("crl = [{}]", toml::string(&crl)));
            r.notes.push(format!("CrlPath → crl = [{crl:?}]"));
        }
    } else {
        if want {
            r.untranslated.push(
                "WantClientAuth = true: tls-sidecar asks for client certificates only to require them (NeedClientAuth); clients are served without one".into(),
            );
        }
        if let Some(t) = &trust {
            r.untranslated.push(format!(
                "TrustStorePath = {t}: not used, no client certificate is required"
            ));
        }
        if text("CrlPath")?.is_some() {
            r.untranslated
                .push("CrlPath: not used, no client certificate is required".into());
        }
    }

    // SNI.
    take("SniRequired");
    if let Some(v) = text("SniRequired")? {
        let on = boolean("SniRequired", &v)?;
        r.listen_tls.push(format!("sni_required = {on}"));
        r.notes
            .push(format!("SniRequired = {on} → sni_required = {on}"));
    }

    // Protocols.
    take("IncludeProtocols");
    take("ExcludeProtocols");
    let mut protocols: Vec<&str> = vec!["TLSv1.3", "TLSv1.2"];
    let old = ["TLSv1", "TLSv1.1", "SSLv3", "SSLv2", "SSLv2Hello"];
    if let Some(inc) = list("IncludeProtocols")? {
        let mut dropped = Vec::new();
        let mut kept = Vec::new();
        for p in &inc {
            match p.as_str() {
                "TLSv1.3" | "TLSv1.2" => {
                    kept.push(if p == "TLSv1.3" { "TLSv1.3" } else { "TLSv1.2" })
                }
                o if old.contains(&o) => dropped.push(o.to_owned()),
                o => return Err(format!("IncludeProtocols: unknown protocol {o:?}")),
            }
        }
        if !dropped.is_empty() {
            r.notes.push(format!(
                "IncludeProtocols: {} dropped (TLS 1.0/1.1 and SSL are never offered: RFC 8996)",
                dropped.join(", ")
            ));
        }
        kept.sort_by(|a, b| b.cmp(a));
        kept.dedup();
        protocols = kept;
    }
    if let Some(exc) = list("ExcludeProtocols")? {
        let never: Vec<_> = exc
            .iter()
            .filter(|p| old.contains(&p.as_str()))
            .cloned()
            .collect();
        if !never.is_empty() {
            r.notes.push(format!(
                "ExcludeProtocols: {} (never offered anyway)",
                never.join(", ")
            ));
        }
        protocols.retain(|p| !exc.iter().any(|e| e == p));
    }

    // Cipher suites: Jetty's lists are regular expressions over the IANA
    // names (Java's), matched whole.
    take("IncludeCipherSuites");
    take("ExcludeCipherSuites");
    let inc = list("IncludeCipherSuites")?;
    let exc = list("ExcludeCipherSuites")?;
    if inc.is_some() || exc.is_some() {
        let re = |pats: &[String], which: &str| -> Result<Vec<regex::Regex>, String> {
            pats.iter()
                .map(|p| {
                    regex::Regex::new(&format!("^(?:{p})$"))
                        .map_err(|e| format!("{which}: {p:?} is not a regular expression: {e}"))
                })
                .collect()
        };
        let inc_re = inc
            .as_deref()
            .map(|l| re(l, "IncludeCipherSuites"))
            .transpose()?;
        let exc_re = re(exc.as_deref().unwrap_or_default(), "ExcludeCipherSuites")?;
        let chosen: Vec<&str> = ciphers::SUITES
            .iter()
            .map(|(_, iana, _)| *iana)
            .filter(|n| {
                inc_re
                    .as_ref()
                    .is_none_or(|r| r.iter().any(|x| x.is_match(n)))
            })
            .filter(|n| !exc_re.iter().any(|x| x.is_match(n)))
            .collect();
        if chosen.is_empty() {
            return Err(
                "IncludeCipherSuites/ExcludeCipherSuites leave none of the suites rustls offers"
                    .into(),
            );
        }
        if chosen.len() == ciphers::SUITES.len() {
            r.notes.push(
                "IncludeCipherSuites/ExcludeCipherSuites keep every suite rustls offers (only AEAD with ECDHE): no ciphers key".into(),
            );
        } else {
            for (v, tls13) in [("TLSv1.3", true), ("TLSv1.2", false)] {
                let has = chosen
                    .iter()
                    .any(|n| ciphers::suite(n).is_ok_and(|s| ciphers::is_tls13(s) == tls13));
                if !has && protocols.contains(&v) {
                    protocols.retain(|p| *p != v);
                    r.notes.push(format!(
                        "the cipher lists keep no {v} suite: {v} is dropped, as Jetty could not use it"
                    ));
                }
            }
            r.listen_tls
                .push(format!("ciphers = {}", toml::strings(&chosen)));
            r.notes.push(format!(
                "IncludeCipherSuites/ExcludeCipherSuites → ciphers = {chosen:?}"
            ));
        }
    }
    if protocols.is_empty() {
        return Err("the protocol settings leave neither TLSv1.2 nor TLSv1.3".into());
    }
    r.listen_tls
        .push(format!("protocols = {}", toml::strings(&protocols)));
    r.notes
        .push(format!("protocols → protocols = {protocols:?}"));

    // Everything else: no equivalent.
    const WHY: &[(&str, &str)] = &[
        ("RenegotiationAllowed", "rustls never renegotiates"),
        ("RenegotiationLimit", "rustls never renegotiates"),
        (
            "UseCipherSuitesOrder",
            "rustls's server picks by its own order",
        ),
        ("SslSessionCacheSize", "rustls keeps its own session cache"),
        ("SslSessionTimeout", "rustls keeps its own session cache"),
        (
            "EndpointIdentificationAlgorithm",
            "a client setting; the listener checks no server name",
        ),
        ("Provider", "rustls with aws-lc-rs is the only provider"),
        (
            "KeyStoreProvider",
            "keystores are read by tls-sidecar itself",
        ),
        (
            "TrustStoreProvider",
            "keystores are read by tls-sidecar itself",
        ),
    ];
    for (name, v) in sets {
        let Ok(v) = v else { continue };
        if *v == Value::Unset || handled.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            continue;
        }
        let shown = match v {
            Value::Text(_) if name.to_ascii_lowercase().contains("password") => {
                "(hidden)".to_owned()
            }
            Value::Text(t) => t.clone(),
            Value::List(l) => l.join(", "),
            Value::Unset => unreachable!(),
        };
        let why = WHY
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, w)| *w)
            .unwrap_or("no tls-sidecar equivalent");
        r.untranslated.push(format!("{name} = {shown}: {why}"));
    }

    r.secrets.insert(
        0,
        Secret {
            suffix: ".password",
            password: store_pw,
        },
    );
    let mut out = toml::comment(head);
    out.push_str("#\n# Jetty settings and what they became:\n");
    for n in &r.notes {
        out.push_str(&toml::comment(&format!("  {n}")));
    }
    if !r.untranslated.is_empty() {
        out.push_str("#\n# Not translated (no tls-sidecar equivalent):\n");
        for n in &r.untranslated {
            out.push_str(&toml::comment(&format!("  {n}")));
        }
    }
    out.push_str(&format!(
        "\n[[route]]\nname = \"gms-https\"\n# GMS's HTTPS port, now served by the sidecar; GMS itself listens plain on connect.\nlisten = {}\nconnect = [{}]\n\n[route.listen_tls]\n",
        toml::string(&opts.listen),
        toml::string(&opts.connect)
    ));
    for l in &r.listen_tls {
        out.push_str(l);
        out.push('\n');
    }
    Ok(Import {
        toml: out,
        secrets: r.secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jettys_stock_obf_passwords_decode() {
        assert_eq!(
            deobfuscate("OBF:1vny1zlo1x8e1vnw1vn61x8g1zlu1vn4").unwrap(),
            "storepwd"
        );
        assert_eq!(
            deobfuscate("OBF:1u2u1wml1z7s1z7a1wnl1u2g").unwrap(),
            "keypwd"
        );
    }

    #[test]
    fn an_obf_string_that_does_not_decode_is_refused() {
        assert_eq!(
            deobfuscate("OBF:1vny1zl").unwrap_err(),
            "the OBF: string does not decode (it ends short)"
        );
        assert_eq!(
            deobfuscate("OBF:1vn!").unwrap_err(),
            "the OBF: string does not decode (\"1vn!\" is not base 36)"
        );
        assert_eq!(
            deobfuscate("OBF:").unwrap_err(),
            "the OBF: string does not decode (it is empty)"
        );
    }

    #[test]
    fn properties_files_give_key_value_lines() {
        let p = properties(
            "## comment\n--module=ssl\njetty.sslContext.keyStorePath = etc/gms.p12\n# x=y\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p["jetty.sslContext.keyStorePath"], "etc/gms.p12");
    }

    const STOCK_10: &str = r#"<?xml version="1.0"?>
<!DOCTYPE Configure PUBLIC "-//Jetty//Configure//EN" "https://www.eclipse.org/jetty/configure_10_0.dtd">
<Configure id="sslContextFactory" class="org.eclipse.jetty.util.ssl.SslContextFactory$Server">
  <Set name="Provider" property="jetty.sslContext.provider"/>
  <Set name="KeyStorePath">
    <Property name="jetty.sslContext.keyStoreAbsolutePath">
      <Default>
        <Property name="jetty.base" default="."/>/<Property name="jetty.sslContext.keyStorePath" default="etc/keystore.p12"/>
      </Default>
    </Property>
  </Set>
  <Set name="KeyStorePassword"><Property name="jetty.sslContext.keyStorePassword" deprecated="jetty.keystore.password" default="OBF:1vny1zlo1x8e1vnw1vn61x8g1zlu1vn4"/></Set>
  <Set name="KeyStoreType" property="jetty.sslContext.keyStoreType"/>
  <Set name="NeedClientAuth"><Property name="jetty.sslContext.needClientAuth" default="false"/></Set>
  <Set name="RenegotiationAllowed"><Property name="jetty.sslContext.renegotiationAllowed" default="true"/></Set>
  <Set name="SniRequired">
    <Property name="jetty.sslContext.sniRequired" default="false"/>
  </Set>
  <Set name="IncludeProtocols">
    <Array type="String">
      <Item>TLSv1.3</Item>
      <Item>TLSv1.2</Item>
    </Array>
  </Set>
  <Set name="ExcludeProtocols">
    <Array type="String">
      <Item>TLSv1</Item>
      <Item>TLSv1.1</Item>
      <Item>SSLv3</Item>
    </Array>
  </Set>
</Configure>
"#;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_stock_jetty_10_forms_evaluate_with_properties_and_defaults() {
        let p = props(&[
            ("jetty.base", "/opt/gms"),
            ("jetty.sslContext.sniRequired", "true"),
        ]);
        let sets = settings(STOCK_10, &p).unwrap();
        let get = |n: &str| {
            sets.iter()
                .find(|(k, _)| k == n)
                .unwrap()
                .1
                .clone()
                .unwrap()
        };
        assert_eq!(get("Provider"), Value::Unset);
        assert_eq!(
            get("KeyStorePath"),
            Value::Text("/opt/gms/etc/keystore.p12".into())
        );
        assert_eq!(
            get("KeyStorePassword"),
            Value::Text("OBF:1vny1zlo1x8e1vnw1vn61x8g1zlu1vn4".into())
        );
        assert_eq!(get("SniRequired"), Value::Text("true".into()));
        assert_eq!(
            get("ExcludeProtocols"),
            Value::List(vec!["TLSv1".into(), "TLSv1.1".into(), "SSLv3".into()])
        );
    }

    #[test]
    fn a_deprecated_property_name_is_honoured() {
        let p = props(&[
            ("jetty.base", "/b"),
            ("jetty.keystore.password", "plain-pw"),
        ]);
        let sets = settings(STOCK_10, &p).unwrap();
        let pw = &sets
            .iter()
            .find(|(k, _)| k == "KeyStorePassword")
            .unwrap()
            .1;
        assert_eq!(pw.as_ref().unwrap(), &Value::Text("plain-pw".into()));
    }

    #[test]
    fn xml_that_is_not_jettys_ssl_context_is_refused() {
        let e = settings("<beans><bean/></beans>", &HashMap::new()).unwrap_err();
        assert_eq!(
            e,
            "not Jetty's SSL context: the root is <beans>, not <Configure class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\">"
        );
        assert!(settings("<Configure", &HashMap::new())
            .unwrap_err()
            .starts_with("not XML: "));
    }

    #[test]
    fn the_stock_file_becomes_a_listen_tls_route_with_every_setting_accounted_for() {
        let p = props(&[
            ("jetty.base", "/opt/gms"),
            ("jetty.sslContext.sniRequired", "true"),
        ]);
        let sets = settings(STOCK_10, &p).unwrap();
        let opts = Options {
            listen: "0.0.0.0:8443".into(),
            connect: "127.0.0.1:8080".into(),
            properties: None,
        };
        let imp = translate(&sets, &opts, "head\n", &p).unwrap();
        let text = imp.text_for(Path::new("/etc/tls-sidecar/gms.toml"));
        assert!(
            text.contains("cert = \"/opt/gms/etc/keystore.p12\"\n"),
            "{text}"
        );
        assert!(text.contains("password_file = \"/etc/tls-sidecar/gms.toml.password\"\n"));
        assert!(text.contains("sni_required = true\n"));
        assert!(text.contains("protocols = [\"TLSv1.3\", \"TLSv1.2\"]\n"));
        assert!(
            text.contains("#   ExcludeProtocols: TLSv1, TLSv1.1, SSLv3 (never offered anyway)\n")
        );
        assert!(text.contains("#   RenegotiationAllowed = true: rustls never renegotiates\n"));
        assert!(!text.contains("storepwd"));
        assert_eq!(imp.secrets.len(), 1);
        assert_eq!(imp.secrets[0].password.expose(), "storepwd");
        crate::config::load_str(Path::new("t"), &text, Some(HashMap::new())).unwrap();
    }

    #[test]
    fn jetty_cipher_patterns_select_rustls_suites_by_iana_name() {
        let xml = STOCK_10.replace(
            "</Configure>",
            r#"<Set name="ExcludeCipherSuites"><Array type="String"><Item>^.*_(MD5|SHA|SHA1)$</Item><Item>.*CHACHA20.*</Item></Array></Set></Configure>"#,
        );
        let p = props(&[("jetty.base", "/b")]);
        let sets = settings(&xml, &p).unwrap();
        let opts = Options {
            listen: "0.0.0.0:8443".into(),
            connect: "127.0.0.1:8080".into(),
            properties: None,
        };
        let text = translate(&sets, &opts, "", &p)
            .unwrap()
            .text_for(Path::new("/c"));
        assert!(text.contains("ciphers = [\"TLS_AES_256_GCM_SHA384\", \"TLS_AES_128_GCM_SHA256\", \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\", \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n"), "{text}");
    }

    #[test]
    fn need_client_auth_without_a_trust_store_is_refused() {
        let p = props(&[
            ("jetty.base", "/b"),
            ("jetty.sslContext.needClientAuth", "true"),
        ]);
        let sets = settings(STOCK_10, &p).unwrap();
        let opts = Options {
            listen: "0.0.0.0:8443".into(),
            connect: "127.0.0.1:8080".into(),
            properties: None,
        };
        assert_eq!(
            translate(&sets, &opts, "", &p).unwrap_err(),
            "NeedClientAuth = true without TrustStorePath: give the trust store that holds the clients' CA"
        );
    }

    #[test]
    fn need_client_auth_takes_the_trust_store_with_its_own_password_and_want_is_a_comment() {
        let xml = STOCK_10.replace(
            "</Configure>",
            r#"<Set name="TrustStorePath">/opt/gms/etc/truststore.jks</Set>
  <Set name="TrustStorePassword">OBF:1u2u1wml1z7s1z7a1wnl1u2g</Set>
  <Set name="WantClientAuth">true</Set></Configure>"#,
        );
        let opts = Options {
            listen: "0.0.0.0:8443".into(),
            connect: "127.0.0.1:8080".into(),
            properties: None,
        };
        let p = props(&[
            ("jetty.base", "/opt/gms"),
            ("jetty.sslContext.needClientAuth", "true"),
        ]);
        let imp = translate(&settings(&xml, &p).unwrap(), &opts, "", &p).unwrap();
        let text = imp.text_for(Path::new("/c.toml"));
        assert!(
            text.contains("client_ca = \"/opt/gms/etc/truststore.jks\"\n"),
            "{text}"
        );
        assert!(text.contains("client_ca_password_file = \"/c.toml.truststore.password\"\n"));
        let secrets: Vec<_> = imp
            .secrets
            .iter()
            .map(|s| (s.suffix, s.password.expose()))
            .collect();
        assert_eq!(
            secrets,
            [
                (".password", "storepwd"),
                (".truststore.password", "keypwd")
            ]
        );
        // Without NeedClientAuth, WantClientAuth has no equivalent.
        let p = props(&[("jetty.base", "/opt/gms")]);
        let text = translate(&settings(&xml, &p).unwrap(), &opts, "", &p)
            .unwrap()
            .text_for(Path::new("/c.toml"));
        assert!(text.contains("#   WantClientAuth = true: tls-sidecar asks for client certificates only to require them (NeedClientAuth); clients are served without one\n"), "{text}");
        assert!(!text.contains("client_ca"));
    }

    #[test]
    fn an_md5_password_is_refused_as_a_hash() {
        assert_eq!(
            password("KeyStorePassword", "MD5:abc").unwrap_err(),
            "KeyStorePassword is a one-way hash (MD5:…), which cannot open a keystore: give the password (plain or OBF:)"
        );
    }
}
