//! Jetty's XML evaluated as `XmlConfiguration` does for the forms the
//! stock `jetty-ssl-context.xml` files use: each `<Set>` of the
//! `<Configure>` to a text, a list or "unset", properties and defaults
//! resolved.

use std::collections::HashMap;

/// How deep a value's elements may nest.
const MAX_DEPTH: usize = 64;

/// A `<Set>`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Text(String),
    List(Vec<String>),
    /// A property with no value and no default: Jetty leaves the setting alone.
    Unset,
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
/// One `<Set>` (or other element) by name, with its value or why it has
/// none we can use.
pub(super) type Setting = (String, Result<Value, String>);

/// Every `<Set>` of the `<Configure>` of an SslContextFactory, in order,
/// with unsupported content reported as an error string in the value.
pub(super) fn settings(xml: &str, props: &HashMap<String, String>) -> Result<Vec<Setting>, String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(xml, opts).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    let factory = factory(root)?;
    let mut out = outside(root, factory);
    for child in factory.children().filter(|n| n.is_element()) {
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

/// The `SslContextFactory$Server` the file configures: the root itself
/// (Jetty 9.4's `<Configure class="…SslContextFactory$Server">`), or the one
/// `<New>` inside `<Configure class="org.eclipse.jetty.server.Server">`
/// (Jetty 10 to 12: `<Call name="addBean"><Arg><New …>`).
fn factory<'a, 'i>(root: roxmltree::Node<'a, 'i>) -> Result<roxmltree::Node<'a, 'i>, String> {
    let is_factory = |n: &roxmltree::Node<'_, '_>| {
        let class = n.attribute("class").unwrap_or("");
        (class.contains("SslContextFactory") && !class.ends_with("$Client"))
            || n.attribute("id")
                .is_some_and(|i| i.eq_ignore_ascii_case("sslContextFactory"))
    };
    let class = root.attribute("class").unwrap_or("");
    if root.tag_name().name() == "Configure" {
        if is_factory(&root) {
            return Ok(root);
        }
        let found: Vec<_> = root
            .descendants()
            .filter(|n| n.has_tag_name("New") && is_factory(n))
            .collect();
        match found.as_slice() {
            [one] => return Ok(*one),
            [] => {}
            _ => {
                return Err(format!(
                    "<Configure class=\"{class}\"> makes {} SslContextFactory objects; import a file with one",
                    found.len()
                ))
            }
        }
    }
    Err(format!(
        "not Jetty's SSL context: the root is <{}{}>, neither <Configure class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\"> (Jetty 9.4) nor <Configure class=\"org.eclipse.jetty.server.Server\"> with a <New class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\"> (Jetty 10 to 12)",
        root.tag_name().name(),
        if class.is_empty() {
            String::new()
        } else {
            format!(" class=\"{class}\"")
        }
    ))
}

/// What the file does besides configuring the factory (elements of the
/// `<Configure>` that do not lead to it), each reported as not translated.
fn outside(root: roxmltree::Node<'_, '_>, factory: roxmltree::Node<'_, '_>) -> Vec<Setting> {
    if root == factory {
        return Vec::new();
    }
    root.children()
        .filter(|n| n.is_element() && !n.descendants().any(|d| d == factory))
        .map(|n| {
            let tag = n.tag_name().name();
            let name = n
                .attribute("name")
                .map(|a| format!(" name=\"{a}\""))
                .unwrap_or_default();
            (
                format!("<{tag}{name}> on the Server"),
                Err(format!(
                    "<{tag}> outside the SslContextFactory is not translated"
                )),
            )
        })
        .collect()
}

/// `XmlConfiguration.resolvePath(dir, path)` as the stock Jetty 10-12 files
/// call it for `KeyStorePath`: `path` against `dir` unless absolute; unset
/// when either is empty (Jetty then sets nothing useful either).
fn resolve_path(
    call: roxmltree::Node<'_, '_>,
    props: &HashMap<String, String>,
) -> Result<Value, String> {
    let args: Vec<_> = call.children().filter(|n| n.has_tag_name("Arg")).collect();
    let [dir, path] = args.as_slice() else {
        return Err(format!(
            "<Call name=\"resolvePath\"> with {} <Arg>s, not 2",
            args.len()
        ));
    };
    let (Value::Text(dir), Value::Text(path)) = (value(*dir, props)?, value(*path, props)?) else {
        return Ok(Value::Unset);
    };
    if dir.is_empty() || path.is_empty() {
        return Ok(Value::Unset);
    }
    let joined = std::path::Path::new(&dir).join(&path);
    Ok(Value::Text(normalize(&joined)))
}

/// `Path.normalize()`: `.` dropped, `x/..` folded, without touching the disk.
fn normalize(p: &std::path::Path) -> String {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// The value of an element's content.
fn value(node: roxmltree::Node<'_, '_>, props: &HashMap<String, String>) -> Result<Value, String> {
    // A value nests <Property><Default><Property>… at most a few deep in
    // any real file; a deeper one is refused before the recursion is.
    if node.ancestors().count() > MAX_DEPTH {
        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
    }
    let elements: Vec<_> = node.children().filter(|n| n.is_element()).collect();
    if let [only] = elements.as_slice() {
        if only.tag_name().name() == "Call" && only.attribute("name") == Some("resolvePath") {
            return resolve_path(*only, props);
        }
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

#[cfg(test)]
mod tests {
    use super::super::testing::{props, STOCK_10};
    use super::*;

    #[test]
    fn properties_files_give_key_value_lines() {
        let p = properties(
            "## comment\n--module=ssl\njetty.sslContext.keyStorePath = etc/gms.p12\n# x=y\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p["jetty.sslContext.keyStorePath"], "etc/gms.p12");
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
            "not Jetty's SSL context: the root is <beans>, neither <Configure class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\"> (Jetty 9.4) nor <Configure class=\"org.eclipse.jetty.server.Server\"> with a <New class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\"> (Jetty 10 to 12)"
        );
        assert!(settings("<Configure", &HashMap::new())
            .unwrap_err()
            .starts_with("not XML: "));
    }

    #[test]
    fn the_server_wrapped_form_of_jetty_10_to_12_finds_the_factory_and_resolves_paths() {
        let xml = include_str!("../../../tests/fixtures/jetty/12/etc/jetty-ssl-context.xml");
        let p = props(&[
            ("jetty.base", "/opt/gms"),
            ("jetty.sslContext.keyStorePassword", "pw"),
            ("jetty.sslContext.trustStoreAbsolutePath", "/etc/trust.p12"),
        ]);
        let sets = settings(xml, &p).unwrap();
        let get = |n: &str| {
            sets.iter()
                .find(|(k, _)| k == n)
                .unwrap()
                .1
                .clone()
                .unwrap()
        };
        assert_eq!(
            get("KeyStorePath"),
            Value::Text("/opt/gms/etc/keystore.p12".into())
        );
        // A deprecated name, absolute: resolvePath keeps it as it is.
        assert_eq!(get("TrustStorePath"), Value::Text("/etc/trust.p12".into()));
        assert_eq!(get("KeyStorePassword"), Value::Text("pw".into()));
        assert_eq!(get("SniRequired"), Value::Unset);
        assert_eq!(sets.len(), 19, "{sets:?}");
        // Without jetty.base's value resolvePath gives nothing to set.
        let none = settings(xml, &props(&[])).unwrap();
        assert!(none
            .iter()
            .any(|(k, v)| k == "KeyStorePath" && *v == Ok(Value::Unset)));
        // Anything else on the Server is reported, not dropped.
        let extra = xml.replace(
            "</Configure>",
            "<Call name=\"addConnector\"><Arg>x</Arg></Call></Configure>",
        );
        let sets = settings(&extra, &p).unwrap();
        assert_eq!(
            &sets[0],
            &(
                "<Call name=\"addConnector\"> on the Server".to_owned(),
                Err("<Call> outside the SslContextFactory is not translated".to_owned())
            )
        );
    }
}
