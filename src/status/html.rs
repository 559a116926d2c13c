//! The status page as one self-contained HTML page: no script, no
//! external asset, everything from the config or a certificate escaped.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::view::{RouteView, Snapshot};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (a subject may hold any byte) are shown,
            // not passed on to the browser.
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn format_unix(t: i64) -> String {
    let d = UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(d).to_string()
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d2329;background:#f6f7f9}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:0}\
.meta{color:#5b6570;margin-bottom:1em}\
.route{background:#fff;border:1px solid #d5dae0;border-radius:6px;padding:.8em 1em;margin-bottom:1em}\
.route.trust{border-left:6px solid #c0392b}\
table{border-collapse:collapse;margin:.4em 0 .6em}\
th,td{text-align:left;padding:.2em .8em .2em 0;vertical-align:top;font-size:.92em}\
th{color:#5b6570;font-weight:600}\
.badge{display:inline-block;border-radius:3px;padding:0 .4em;margin-left:.4em;font-size:.8em;background:#e4e8ec}\
.badge.trust{background:#c0392b;color:#fff;font-weight:700}\
td.ok{color:#1e7e34}td.error{color:#b52a1c;font-weight:600}td.none{color:#8a939c}\
tr.warning td{background:#fff3cd}tr.critical td{background:#f8d7da}tr.expired td{background:#dc3545;color:#fff}\
.state{font-weight:700}.state.ready{color:#1e7e34}.state.notready{color:#b52a1c}\
code{font-size:.95em}";

/// The HTML page. It refreshes itself every 10 seconds (a meta refresh: no
/// script).
pub fn html(s: &Snapshot) -> String {
    let mut h = String::with_capacity(8192);
    let state = match (s.ready, s.draining) {
        (_, true) => ("notready", "draining"),
        (true, false) => ("ready", "ready"),
        (false, false) => ("notready", "not ready"),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"10\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>tls-sidecar status</title><style>{STYLE}</style></head><body>\n\
         <h1>tls-sidecar status</h1>\n<div class=\"meta\">version {} · pid {} · \
         <span class=\"state {}\" id=\"state\">{}</span> · up since {} · \
         reloads: {} ok, {} refused{} · counts over the last {} minutes · generated {}</div>\n",
        escape(s.version),
        s.pid,
        state.0,
        state.1,
        format_unix(s.started_unix),
        s.reloads.ok,
        s.reloads.error,
        match &s.reloads.last_error {
            Some(e) => format!(" (last refused: {})", escape(e)),
            None => String::new(),
        },
        s.window_minutes,
        format_unix(s.generated_unix),
    );
    for r in &s.routes {
        route_html(&mut h, r);
    }
    h.push_str("</body></html>\n");
    h
}

fn route_html(h: &mut String, r: &RouteView) {
    let name = escape(&r.name);
    let _ = write!(
        h,
        "<section class=\"route{}\" id=\"route-{name}\" data-route=\"{name}\">\n<h2>{name}",
        if r.trust_mode { " trust" } else { "" },
    );
    if r.trust_mode {
        h.push_str(
            "<span class=\"badge trust\" title=\"verify = none: any upstream certificate is accepted\">\
             TRUST MODE: upstream not verified</span>",
        );
    }
    let tls_in = if r.listen_tls { "TLS" } else { "plain" };
    let tls_out = match r.connect_start {
        "plain" => "plain".to_owned(),
        start => format!("TLS ({start}), verify {}", r.verify),
    };
    let _ = write!(
        h,
        "</h2>\n<table class=\"summary\"><tr><th>listen</th><td><code>{}</code> ({tls_in})</td>\
         <th>upstream</th><td>{}{}</td><th>open connections</th><td class=\"open\">{}</td></tr></table>\n",
        escape(&r.listen),
        escape(&tls_out),
        if r.mutual { ", mutual TLS" } else { "" },
        r.open_connections,
    );

    upstreams_html(h, r);
    counts_html(h, r);
    certificates_html(h, r);
    ocsp_html(h, r);
    h.push_str("</section>\n");
}

/// The upstream table: each address in failover order with its last
/// connect.
fn upstreams_html(h: &mut String, r: &RouteView) {
    h.push_str("<table class=\"upstreams\"><tr><th>#</th><th>upstream</th><th>last connect</th><th>latency</th><th>at</th><th>connected</th><th>failed</th></tr>\n");
    for (i, u) in r.upstreams.iter().enumerate() {
        let result = match (&u.last_result, &u.last_error) {
            (&"error", Some(e)) => format!("error: {}", escape(e)),
            (res, _) => res.to_string(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"{}\">{result}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if i == 0 { "primary".to_owned() } else { format!("backup {i}") },
            escape(&u.address),
            u.last_result,
            u.last_latency_ms.map_or("-".to_owned(), |l| format!("{l:.1} ms")),
            u.last_unix.map_or("-".to_owned(), format_unix),
            u.connected,
            u.failed,
        );
    }
    h.push_str("</table>\n");
}

/// Connection outcomes over the window, then handshake failures if any.
fn counts_html(h: &mut String, r: &RouteView) {
    h.push_str("<table class=\"recent\"><tr>");
    for c in &r.recent {
        let _ = write!(h, "<th>{}</th>", c.result);
    }
    h.push_str("</tr><tr>");
    for c in &r.recent {
        let class = match (c.result, c.count) {
            (_, 0) => "none",
            ("ok", _) => "ok",
            _ => "error",
        };
        let _ = write!(
            h,
            "<td class=\"{class}\" data-result=\"{}\">{}</td>",
            c.result, c.count
        );
    }
    h.push_str("</tr></table>\n");
    if !r.failures.is_empty() {
        h.push_str("<table class=\"failures\"><tr><th>handshake failures</th><th>side</th><th>count</th></tr>\n");
        for f in &r.failures {
            let _ = writeln!(
                h,
                "<tr><td class=\"error\">{}</td><td>{}</td><td>{}</td></tr>",
                f.reason, f.side, f.count
            );
        }
        h.push_str("</table>\n");
    }
}

/// The certificates with their expiry level.
fn certificates_html(h: &mut String, r: &RouteView) {
    if !r.certificates.is_empty() {
        h.push_str("<table class=\"certs\"><tr><th>certificate</th><th>subject</th><th>not after</th><th>days left</th></tr>\n");
        for c in &r.certificates {
            let _ = writeln!(
                h,
                "<tr class=\"{}\" data-role=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"days\">{}</td></tr>",
                c.level,
                c.role,
                c.role,
                escape(&c.subject),
                format_unix(c.not_after_unix),
                c.days_left,
            );
        }
        h.push_str("</table>\n");
    }
}

/// Each listen certificate's OCSP staple: stapled until when, or why not.
fn ocsp_html(h: &mut String, r: &RouteView) {
    if r.ocsp.is_empty() {
        return;
    }
    h.push_str("<table class=\"ocsp\"><tr><th>OCSP</th><th>subject</th><th>stapled</th><th>says</th><th>next update</th><th>last fetch</th></tr>\n");
    for o in &r.ocsp {
        let class = match (o.state, o.status) {
            ("stapled", Some("good")) => "ok",
            ("none", _) if o.last_error.is_none() => "none",
            _ => "error",
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\" data-ocsp=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            o.state,
            o.source,
            escape(&o.subject),
            o.state,
            o.status.unwrap_or("-"),
            o.next_update_unix.map_or("-".to_owned(), format_unix),
            match (o.source, &o.last_error) {
                (_, Some(e)) => format!("error: {}", escape(e)),
                ("auto", None) => "ok".to_owned(),
                _ => "-".to_owned(),
            },
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Board;

    #[test]
    fn escape_leaves_no_markup_and_no_control_character() {
        assert_eq!(
            escape("CN=<script>alert('x')</script>&\"\u{1b}[31m"),
            "CN=&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\u{1b}[31m"
        );
    }

    #[test]
    fn the_page_escapes_a_hostile_reload_error_and_names_its_state() {
        let b = Board::default();
        b.reloaded(Err("<img src=x onerror=alert(1)>".into()));
        let page = html(&b.snapshot());
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains(">not ready<"), "{page}");
    }
}
