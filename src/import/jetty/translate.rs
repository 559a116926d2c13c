//! The evaluated Jetty settings mapped onto a `[[route]]` with
//! `[route.listen_tls]`; what has no equivalent becomes a comment, never
//! silently dropped.

use std::collections::HashMap;

use super::obf::password;
use super::sets::{boolean, Route, Sets};
use super::xml::{Setting, Value};
use super::Options;
use crate::import::{secret_path, toml, Import, Secret};
use crate::tls::keystore::Password;

/// The evaluated settings as an [`Import`]: one step per group of Jetty
/// settings, then everything no step took as a comment.
pub(super) fn translate(
    sets: &[Setting],
    opts: &Options,
    head: &str,
    props: &HashMap<String, String>,
) -> Result<Import, String> {
    let mut r = Route::default();
    let mut s = Sets::new(sets, props, &mut r);
    let store_pw = keystore(&mut s, &mut r)?;
    client_auth(&mut s, &mut r, &store_pw)?;
    if let Some(v) = s.text("SniRequired")? {
        let on = boolean("SniRequired", &v)?;
        r.listen_tls.push(format!("sni_required = {on}"));
        r.notes
            .push(format!("SniRequired = {on} → sni_required = {on}"));
    }
    let mut protocols = super::protocols::protocols(&mut s, &mut r)?;
    super::protocols::cipher_suites(&mut s, &mut r, &mut protocols)?;
    if protocols.is_empty() {
        return Err("the protocol settings leave neither TLSv1.2 nor TLSv1.3".into());
    }
    r.listen_tls
        .push(format!("protocols = {}", toml::strings(&protocols)));
    r.notes
        .push(format!("protocols → protocols = {protocols:?}"));
    not_translated(sets, &s.handled, &mut r);
    r.secrets.insert(
        0,
        Secret {
            suffix: ".password".into(),
            password: store_pw,
        },
    );
    Ok(render(head, opts, r))
}

/// The keystore, the listener's identity; returns the store's password.
fn keystore(s: &mut Sets<'_>, r: &mut Route) -> Result<Password, String> {
    let keystore = s
        .path("KeyStorePath")?
        .ok_or("KeyStorePath is not set: Jetty's SSL context needs a keystore")?;
    r.listen_tls
        .push(format!("cert = {}", toml::string(&keystore)));
    r.notes.push(format!("KeyStorePath → cert = {keystore:?}"));
    for (setting, what) in [
        ("KeyStoreType", "keystore"),
        ("TrustStoreType", "trust store"),
    ] {
        if let Some(t) = s.text(setting)? {
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
    let store_pw = match s.text("KeyStorePassword")? {
        Some(v) => password("KeyStorePassword", &v)?,
        None => return Err("KeyStorePassword is not set: the keystore cannot be opened".into()),
    };
    r.listen_tls.push(format!(
        "password_file = {}",
        toml::string(&secret_path(".password"))
    ));
    r.notes
        .push("KeyStorePassword → password_file = CONFIG.password (decoded, mode 0600)".into());
    if let Some(v) = s.text("KeyManagerPassword")? {
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
                suffix: ".keymanager.password".into(),
                password: key_pw,
            });
        } else {
            r.notes
                .push("KeyManagerPassword is the store's password: nothing more to say".into());
        }
    }
    if let Some(a) = s.text("CertAlias")? {
        r.listen_tls.push(format!("alias = {}", toml::string(&a)));
        r.notes.push(format!("CertAlias → alias = {a:?}"));
    }
    Ok(store_pw)
}

/// Client certificates: required (NeedClientAuth) with the trust store as
/// `client_ca`, or not asked for at all.
fn client_auth(s: &mut Sets<'_>, r: &mut Route, store_pw: &Password) -> Result<(), String> {
    s.take("TrustStorePassword");
    s.take("CrlPath");
    let need = s.flag("NeedClientAuth")?;
    let want = s.flag("WantClientAuth")?;
    let trust = s.path("TrustStorePath")?;
    if !need {
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
        if s.text("CrlPath")?.is_some() {
            r.untranslated
                .push("CrlPath: not used, no client certificate is required".into());
        }
        return Ok(());
    }
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
    if let Some(v) = s.text("TrustStorePassword")? {
        let pw = password("TrustStorePassword", &v)?;
        if pw.expose() != store_pw.expose() {
            r.listen_tls.push(format!(
                "client_ca_password_file = {}",
                toml::string(&secret_path(".truststore.password"))
            ));
            r.notes.push(
                "TrustStorePassword → client_ca_password_file = CONFIG.truststore.password".into(),
            );
            r.secrets.push(Secret {
                suffix: ".truststore.password".into(),
                password: pw,
            });
        }
    }
    if let Some(crl) = s.path("CrlPath")? {
        r.listen_tls.push(format!("crl = [{}]", toml::string(&crl)));
        r.notes.push(format!("CrlPath → crl = [{crl:?}]"));
    }
    Ok(())
}

/// Every set value no step took, as a comment saying why it has no
/// equivalent (passwords hidden).
fn not_translated(sets: &[Setting], handled: &[&str], r: &mut Route) {
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
}

/// The commented TOML: the notes, what was not translated, the route.
fn render(head: &str, opts: &Options, r: Route) -> Import {
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
    Import {
        toml: out,
        secrets: r.secrets,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::import::jetty::testing::{props, STOCK_10};
    use crate::import::jetty::xml::settings;

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
            properties: Vec::new(),
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
    fn need_client_auth_without_a_trust_store_is_refused() {
        let p = props(&[
            ("jetty.base", "/b"),
            ("jetty.sslContext.needClientAuth", "true"),
        ]);
        let sets = settings(STOCK_10, &p).unwrap();
        let opts = Options {
            listen: "0.0.0.0:8443".into(),
            connect: "127.0.0.1:8080".into(),
            properties: Vec::new(),
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
            properties: Vec::new(),
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
            .map(|s| (s.suffix.as_str(), s.password.expose()))
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
}
