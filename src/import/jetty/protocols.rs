//! Which TLS versions and cipher suites Jetty's Include/Exclude lists
//! leave, as `protocols` and `ciphers`.

use super::sets::{Route, Sets};
use crate::config::ciphers;
use crate::import::toml;

/// The protocol versions Include/ExcludeProtocols leave, newest first.
pub(super) fn protocols(s: &mut Sets<'_>, r: &mut Route) -> Result<Vec<&'static str>, String> {
    let mut protocols: Vec<&str> = vec!["TLSv1.3", "TLSv1.2"];
    let old = ["TLSv1", "TLSv1.1", "SSLv3", "SSLv2", "SSLv2Hello"];
    if let Some(inc) = s.list("IncludeProtocols")? {
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
    if let Some(exc) = s.list("ExcludeProtocols")? {
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
    Ok(protocols)
}

/// Cipher suites: Jetty's lists are regular expressions over the IANA
/// names (Java's), matched whole. A version left with no suite is dropped
/// from `protocols`.
pub(super) fn cipher_suites(
    s: &mut Sets<'_>,
    r: &mut Route,
    protocols: &mut Vec<&'static str>,
) -> Result<(), String> {
    let inc = s.list("IncludeCipherSuites")?;
    let exc = s.list("ExcludeCipherSuites")?;
    if inc.is_none() && exc.is_none() {
        return Ok(());
    }
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
            "IncludeCipherSuites/ExcludeCipherSuites leave none of the suites rustls offers".into(),
        );
    }
    if chosen.len() == ciphers::SUITES.len() {
        r.notes.push(
            "IncludeCipherSuites/ExcludeCipherSuites keep every suite rustls offers (only AEAD with ECDHE): no ciphers key".into(),
        );
        return Ok(());
    }
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::import::jetty::testing::{props, STOCK_10};
    use crate::import::jetty::translate::translate;
    use crate::import::jetty::xml::settings;
    use crate::import::jetty::Options;

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
            properties: Vec::new(),
        };
        let text = translate(&sets, &opts, "", &p)
            .unwrap()
            .text_for(Path::new("/c"));
        assert!(text.contains("ciphers = [\"TLS_AES_256_GCM_SHA384\", \"TLS_AES_128_GCM_SHA256\", \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\", \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n"), "{text}");
    }
}
