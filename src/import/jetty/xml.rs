//! Jetty's XML evaluated as `XmlConfiguration` does for the forms the
//! stock `jetty-ssl-context.xml` files use: each `<Set>` of the
//! `<Configure>` to a text, a list or "unset", properties and defaults
//! resolved.

use std::collections::HashMap;

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn properties_files_give_key_value_lines() {
        let p = properties(
            "## comment\n--module=ssl\njetty.sslContext.keyStorePath = etc/gms.p12\n# x=y\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p["jetty.sslContext.keyStorePath"], "etc/gms.p12");
    }

    pub(in crate::import::jetty) const STOCK_10: &str = r#"<?xml version="1.0"?>
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

    pub(in crate::import::jetty) fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
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
}
