//! Series that must be able to disappear, kept by the sidecar itself.
//!
//! metrics-exporter-prometheus 0.18 has no way to delete one series: its
//! only removal is an idle timeout per metric kind, which would also take
//! gauges that are set once and stay true (a configured certificate's
//! not-after, `route_info`). So:
//!
//! - `route_info`, whose labels change with a reload (listen, verify, the
//!   engine): one series per route, replaced, never added beside the old.
//! - The gauges whose label sets change with what peers and files say —
//!   certificate not-after (`role` client/server/ca per route, `peer` per
//!   route and upstream entry) and CRL nextUpdate — live here, in maps keyed
//!   so that each key has one series: a renewed peer certificate under a
//!   new subject replaces the old series instead of adding one (issue 14).
//!   They are rendered after the recorder's text.
//! - The set of live routes is kept here too; the recorder's series of a
//!   route a reload removed are left out of the rendered text.
//!
//! Every label value here comes from the config (route names, upstream
//! entries, configured files) or, for a peer's subject, is one per
//! upstream entry and cut to [`MAX_SUBJECT`] characters: no peer can grow
//! the series or their size without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::{Arc, Mutex};

/// The longest subject label value; a longer one is cut, with "…".
pub const MAX_SUBJECT: usize = 256;

#[derive(Default)]
struct Owned {
    /// Routes being served; `None` until the first `retain_routes` (then
    /// every route's series pass).
    live: Option<BTreeSet<String>>,
    /// Configured certificates: route → [(role, subject, not-after)].
    configured: BTreeMap<String, Vec<(&'static str, String, f64)>>,
    /// Peer certificates: route → upstream entry → (subject, not-after).
    peer: BTreeMap<String, BTreeMap<String, (String, f64)>>,
    /// CRLs: route → [(issuer, nextUpdate)].
    crl: BTreeMap<String, Vec<(String, f64)>>,
    /// OCSP staples: route → [(subject, until when it is stapled now)],
    /// asked at each scrape, so a response leaves the metric the second it
    /// stops being stapled.
    ocsp: BTreeMap<String, Vec<(String, StapledUntil)>>,
    /// `route_info`: route → its labels after `route`, rendered. A reload
    /// that changes one (listen, verify, the engine) replaces the series.
    info: BTreeMap<String, String>,
}

/// Until when (Unix seconds) the response of one certificate is stapled,
/// asked now; `None`: none is.
pub type StapledUntil = Arc<dyn Fn() -> Option<i64> + Send + Sync>;

static OWNED: Mutex<Option<Owned>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Owned) -> R) -> R {
    let mut g = OWNED.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Owned::default))
}

/// The not-after of every certificate configured on `route` (role, subject,
/// Unix seconds), replacing what the route had before.
pub fn set_configured(route: &str, certs: Vec<(&'static str, String, i64)>) {
    let certs = certs
        .into_iter()
        .map(|(role, subject, t)| (role, subject, t as f64))
        .collect();
    with(|o| o.configured.insert(route.to_owned(), certs));
}

/// The last certificate the peer at `upstream` (the route's connect entry)
/// presented: replaces that entry's series, whatever its subject was.
pub fn set_peer(route: &str, upstream: &str, subject: &str, not_after: i64) {
    let not_after = not_after as f64;
    with(|o| {
        // Every connection reports its peer: the usual case, the same
        // certificate again, allocates nothing.
        let same = o
            .peer
            .get(route)
            .and_then(|m| m.get(upstream))
            .is_some_and(|(s, t)| *t == not_after && s == subject);
        if !same {
            o.peer
                .entry(route.to_owned())
                .or_default()
                .insert(upstream.to_owned(), (bounded(subject), not_after));
        }
    });
}

/// The nextUpdate of every CRL configured on `route` (issuer, Unix
/// seconds), replacing what the route had before.
pub fn set_crls(route: &str, crls: Vec<(String, i64)>) {
    let crls = crls.into_iter().map(|(i, t)| (i, t as f64)).collect();
    with(|o| o.crl.insert(route.to_owned(), crls));
}

/// The OCSP staples of `route`'s certificates (subject, probe), replacing
/// what the route had before.
pub fn set_ocsp(route: &str, staples: Vec<(String, StapledUntil)>) {
    with(|o| o.ocsp.insert(route.to_owned(), staples));
}

/// The `route_info` labels of `route` other than `route` itself, as
/// (name, value) pairs in order; replaces the route's previous series.
pub fn set_info(route: &str, labels: &[(&str, &str)]) {
    let mut text = String::new();
    for (k, v) in labels {
        let _ = write!(text, ",{k}=\"{}\"", esc(v));
    }
    with(|o| o.info.insert(route.to_owned(), text));
}

/// The routes now served, with their connect entries: every series of
/// another route, and every peer series of an entry no longer in its
/// route's `connect`, goes.
pub fn retain_routes<'a>(routes: impl IntoIterator<Item = (&'a str, Vec<String>)>) {
    let routes: BTreeMap<String, Vec<String>> =
        routes.into_iter().map(|(r, u)| (r.to_owned(), u)).collect();
    with(|o| {
        o.configured.retain(|r, _| routes.contains_key(r));
        o.crl.retain(|r, _| routes.contains_key(r));
        o.ocsp.retain(|r, _| routes.contains_key(r));
        o.info.retain(|r, _| routes.contains_key(r));
        o.peer.retain(|r, by_upstream| match routes.get(r) {
            Some(ups) => {
                by_upstream.retain(|u, _| ups.contains(u));
                true
            }
            None => false,
        });
        o.live = Some(routes.into_keys().collect());
    });
}

fn bounded(s: &str) -> String {
    if s.chars().count() <= MAX_SUBJECT {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_SUBJECT - 1).collect();
    out.push('…');
    out
}

/// A label value escaped for the text format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The recorder's text without the series of removed routes, followed by
/// the owned families.
pub fn render(recorder: &str) -> String {
    with(|o| {
        let mut out = filter_routes(recorder, o.live.as_ref());
        if !o.info.is_empty() {
            let _ = writeln!(
                out,
                "# HELP {0} One series per route, value 1, to join on.\n# TYPE {0} gauge",
                super::ROUTE_INFO
            );
            for (route, labels) in &o.info {
                let _ = writeln!(
                    out,
                    "{}{{route=\"{}\"{labels}}} 1",
                    super::ROUTE_INFO,
                    esc(route)
                );
            }
            out.push('\n');
        }
        let mut expiry = String::new();
        for (route, certs) in &o.configured {
            for (role, subject, t) in certs {
                let _ = writeln!(
                    expiry,
                    "{}{{route=\"{}\",role=\"{role}\",subject=\"{}\"}} {t}",
                    super::CERT_EXPIRY,
                    esc(route),
                    esc(subject)
                );
            }
        }
        let peers = o
            .peer
            .iter()
            .flat_map(|(r, m)| m.iter().map(move |(u, v)| (r, u, v)));
        for (route, upstream, (subject, t)) in peers {
            let _ = writeln!(
                expiry,
                "{}{{route=\"{}\",role=\"peer\",upstream=\"{}\",subject=\"{}\"}} {t}",
                super::CERT_EXPIRY,
                esc(route),
                esc(upstream),
                esc(subject)
            );
        }
        if !expiry.is_empty() {
            let _ = write!(
                out,
                "# HELP {0} Not-after of each configured certificate and of the last certificate each upstream entry presented.\n# TYPE {0} gauge\n{expiry}\n",
                super::CERT_EXPIRY
            );
        }
        let mut crl = String::new();
        for (route, list) in &o.crl {
            for (issuer, t) in list {
                let _ = writeln!(
                    crl,
                    "{}{{route=\"{}\",issuer=\"{}\"}} {t}",
                    super::CRL_NEXT_UPDATE,
                    esc(route),
                    esc(issuer)
                );
            }
        }
        if !crl.is_empty() {
            let _ = write!(
                out,
                "# HELP {0} nextUpdate of each configured certificate revocation list.\n# TYPE {0} gauge\n{crl}\n",
                super::CRL_NEXT_UPDATE
            );
        }
        render_ocsp(&o.ocsp, &mut out);
        out
    })
}

/// The OCSP gauges: each staple asked now; a response no longer stapled
/// has no series.
fn render_ocsp(staples: &BTreeMap<String, Vec<(String, StapledUntil)>>, out: &mut String) {
    let mut ocsp = String::new();
    for (route, list) in staples {
        for (subject, until) in list {
            if let Some(t) = until() {
                let _ = writeln!(
                    ocsp,
                    "{}{{route=\"{}\",subject=\"{}\"}} {t}",
                    super::OCSP_NEXT_UPDATE,
                    esc(route),
                    esc(subject)
                );
            }
        }
    }
    if !ocsp.is_empty() {
        let _ = write!(
            out,
            "# HELP {0} nextUpdate of the OCSP response being stapled (absent: none is).\n# TYPE {0} gauge\n{ocsp}\n",
            super::OCSP_NEXT_UPDATE
        );
    }
}

/// `text` without the samples whose `route` label names a route not in
/// `live`, and without the HELP/TYPE lines of a family left empty.
fn filter_routes(text: &str, live: Option<&BTreeSet<String>>) -> String {
    let Some(live) = live else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    // HELP/TYPE lines of the family being read, written before its first
    // kept sample.
    let mut pending = String::new();
    let mut pending_family = "";
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            let family = line.split(' ').nth(2).unwrap_or_default();
            if family != pending_family {
                pending.clear();
                pending_family = family;
            }
            pending.push_str(line);
            pending.push('\n');
            continue;
        }
        if route_of(line).is_some_and(|r| !live.contains(r)) {
            continue;
        }
        out.push_str(&pending);
        pending.clear();
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The `route` label of a sample line, if it has one.
fn route_of(line: &str) -> Option<&str> {
    let labels = &line[line.find('{')? + 1..];
    let at = if labels.starts_with("route=\"") {
        0
    } else {
        labels.find(",route=\"")? + 1
    };
    let value = &labels[at + "route=\"".len()..];
    value.find('"').map(|end| &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_removed_routes_and_their_empty_families_are_left_out() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{route=\"gone\",result=\"ok\"} 3\na_total{route=\"kept\",result=\"ok\"} 1\n\n# HELP b B.\n# TYPE b gauge\nb{route=\"gone\"} 1\n\n# TYPE c counter\nc{result=\"ok\",route=\"gone\"} 2\nc{result=\"error\"} 0\n";
        let live: BTreeSet<String> = ["kept".to_owned()].into();
        assert_eq!(
            filter_routes(text, Some(&live)),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{route=\"kept\",result=\"ok\"} 1\n# TYPE c counter\nc{result=\"error\"} 0\n"
        );
        assert_eq!(filter_routes(text, None), text);
    }

    #[test]
    fn the_route_label_is_found_only_as_a_whole_label() {
        assert_eq!(route_of("x{route=\"a\"} 1"), Some("a"));
        assert_eq!(route_of("x{side=\"l\",route=\"b-1\"} 1"), Some("b-1"));
        assert_eq!(route_of("x{upstream_route=\"c\"} 1"), None);
        assert_eq!(route_of("x 1"), None);
    }

    #[test]
    fn a_new_peer_subject_replaces_the_series_of_its_upstream() {
        set_peer("unit-peer", "a:1", "CN=old", 10);
        set_peer("unit-peer", "a:1", "CN=new", 20);
        set_peer("unit-peer", "b:2", "CN=other", 30);
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains("route=\"unit-peer\""))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            lines(&render("")),
            [
                "tls_sidecar_certificate_expiry_timestamp_seconds{route=\"unit-peer\",role=\"peer\",upstream=\"a:1\",subject=\"CN=new\"} 20",
                "tls_sidecar_certificate_expiry_timestamp_seconds{route=\"unit-peer\",role=\"peer\",upstream=\"b:2\",subject=\"CN=other\"} 30",
            ]
        );
        // b:2 leaves the route's connect list; then the route goes.
        retain_routes([("unit-peer", vec!["a:1".to_owned()])]);
        assert_eq!(lines(&render("")).len(), 1);
        retain_routes([]);
        assert!(lines(&render("")).is_empty());
    }

    #[test]
    fn a_long_subject_is_cut_and_quotes_are_escaped() {
        let long = "C".repeat(1000);
        assert_eq!(bounded(&long).chars().count(), MAX_SUBJECT);
        assert_eq!(esc("CN=a\"b\\c\nd"), "CN=a\\\"b\\\\c\\nd");
    }
}
