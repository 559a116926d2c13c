//! Keeps each listen certificate's OCSP staple honest as time passes: a
//! task per certificate that has `ocsp` warns the moment its response goes
//! stale (the resolver has stopped stapling it by then, `tls::ocsp::stapled`)
//! and, with `ocsp = "auto"`, fetches the response from the certificate's
//! responder at start and again before half of its validity has passed,
//! retrying with back-off, keeping the last good one while it is valid.
//! Nothing here blocks a start or a handshake: the certificate is served
//! without a staple until a response arrives.
//!
//! The tasks of a route are replaced when a new plan of it is published
//! (reload, rotation) and stopped when the route goes; a new plan takes
//! over a still-valid response of the same certificate, so a reload never
//! drops a good staple.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;

use crate::config::Ocsp;
use crate::telemetry::RouteMetrics;
use crate::tls::material::now_unix;
use crate::tls::ocsp::stapled::Stapled;
use crate::tls::ocsp::{self, fetch, request, Staple, Status};
use crate::tls::server::ServerTls;

/// One fetch, connect to body, within this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries after a failed fetch: from the first, doubling to the last.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(600);
/// A good response is fetched again no sooner than this.
const REFRESH_MIN: i64 = 60;
/// Wake up at least this often (a clock that jumps is noticed).
const WAKE_MAX: i64 = 3600;

struct Keeper {
    stop: CancellationToken,
    stapled: Vec<Arc<Stapled>>,
}

static KEEPERS: Mutex<BTreeMap<String, Keeper>> = Mutex::new(BTreeMap::new());

/// Starts keeping the staples of route `route`'s listen certificates
/// (`server_tls`), replacing the route's previous tasks.
pub fn start(route: &str, server_tls: Option<&ServerTls>, metrics: &RouteMetrics) {
    let route = route.to_owned();
    let old = KEEPERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&route);
    if let Some(old) = &old {
        old.stop.cancel();
    }
    let Some(st) = server_tls else { return };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let stop = CancellationToken::new();
    for ((stapled, source), (_, info)) in st.stapled.iter().zip(&st.ocsp).zip(&st.certs) {
        let Some(source) = source else { continue };
        take_over(stapled, old.as_ref());
        runtime.spawn(keep(
            metrics.clone(),
            info.subject.clone(),
            stapled.clone(),
            matches!(source, Ocsp::Auto),
            stop.clone(),
        ));
    }
    let keeper = Keeper {
        stop,
        stapled: st.stapled.clone(),
    };
    KEEPERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(route, keeper);
}

/// Stops the tasks of every route not in `live`.
pub fn retain(live: &BTreeSet<&str>) {
    KEEPERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|route, k| {
            let keep = live.contains(route.as_str());
            if !keep {
                k.stop.cancel();
            }
            keep
        });
}

/// A new plan's certificate without a response takes the previous plan's
/// response for the same certificate, if it is still valid.
fn take_over(new: &Stapled, old: Option<&Keeper>) {
    if new.held().is_some() {
        return;
    }
    let now = now_unix();
    let previous = old
        .into_iter()
        .flat_map(|k| k.stapled.iter())
        .find(|o| o.chain().first() == new.chain().first())
        .and_then(|o| o.stapled(now));
    if previous.is_some() {
        new.set(previous);
    }
}

async fn keep(
    m: RouteMetrics,
    subject: String,
    stapled: Arc<Stapled>,
    auto: bool,
    stop: CancellationToken,
) {
    let mut next_fetch = auto.then(now_unix);
    let mut retry = RETRY_FIRST;
    let mut was_stapled = stapled.stapled(now_unix()).is_some();
    loop {
        let now = now_unix();
        if next_fetch.is_some_and(|t| t <= now) {
            next_fetch = Some(match refresh(&m, &subject, &stapled).await {
                Some(s) => {
                    retry = RETRY_FIRST;
                    let half = s.this_update + (s.valid_until() - s.this_update) / 2;
                    half.max(now_unix() + REFRESH_MIN)
                }
                None => {
                    let at = now_unix() + retry.as_secs() as i64;
                    retry = (retry * 2).min(RETRY_MAX);
                    at
                }
            });
            continue;
        }
        let current = stapled.stapled(now);
        if was_stapled && current.is_none() {
            tracing::warn!(route = %m.route, %subject,
                "the OCSP response is no longer valid (nextUpdate passed): it is not stapled any more{}",
                if auto { "; fetching a fresh one" } else { "; put a fresh one in the file" });
        }
        was_stapled = current.is_some();
        // Wake when the response goes stale or becomes valid, or to fetch.
        let held = stapled.held();
        let mut wake = now + WAKE_MAX;
        if let Some(s) = &held {
            for t in [s.valid_until(), s.this_update - ocsp::stapled::SKEW] {
                if t > now {
                    wake = wake.min(t);
                }
            }
        }
        if let Some(t) = next_fetch {
            wake = wake.min(t);
        }
        let secs = (wake - now).max(1) as u64;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
        }
    }
}

/// One fetch: counted, logged, and stapled if it passes every check. The
/// response to schedule from, if one was taken.
async fn refresh(m: &RouteMetrics, subject: &str, stapled: &Stapled) -> Option<Staple> {
    let route = &m.route;
    match fetch_checked(stapled.chain()).await {
        Ok(s) if s.status == Status::Unknown => {
            m.ocsp_fetch("error");
            tracing::warn!(%route, %subject, "the OCSP responder does not know the certificate (status unknown); keeping the last good response while it is valid");
            stapled.note(Some("the responder answered \"unknown\"".into()));
            None
        }
        Ok(s) => {
            let revoked = s.status == Status::Revoked;
            m.ocsp_fetch(if revoked { "revoked" } else { "ok" });
            if revoked {
                tracing::error!(%route, %subject, "the OCSP responder says the certificate is REVOKED: stapling that answer; clients that check will refuse it");
            } else {
                tracing::info!(%route, %subject, next_update = s.next_update.map(crate::tls::material::rfc3339).as_deref().unwrap_or("none"), "OCSP response fetched and stapled");
            }
            stapled.set(Some(s.clone()));
            stapled.note(None);
            Some(s)
        }
        Err(why) => {
            m.ocsp_fetch("error");
            let kept = if stapled.stapled(now_unix()).is_some() {
                "keeping the last good response while it is valid"
            } else {
                "no response is stapled"
            };
            tracing::warn!(%route, %subject, "failed to fetch the OCSP response: {why}; {kept}");
            stapled.note(Some(why));
            None
        }
    }
}

/// Asks the responder of `chain[0]` and checks the answer as a file's.
async fn fetch_checked(chain: &[CertificateDer<'static>]) -> Result<Staple, String> {
    fn parse(d: &[u8]) -> Result<x509_parser::certificate::X509Certificate<'_>, String> {
        x509_parser::parse_x509_certificate(d)
            .map(|(_, c)| c)
            .map_err(|_| "the certificate does not parse".to_owned())
    }
    let (leaf_der, issuer_der) = match chain {
        [leaf, issuer, ..] => (leaf.as_ref(), issuer.as_ref()),
        _ => return Err("the certificate file holds no issuer certificate after the certificate: put the chain in it".into()),
    };
    let (responder, req) = {
        let (leaf, issuer) = (parse(leaf_der)?, parse(issuer_der)?);
        (request::responder(&leaf)?, request::request(&leaf, &issuer))
    };
    let der = fetch::fetch(&responder, req, FETCH_TIMEOUT).await?;
    let now = now_unix();
    let s = ocsp::check(&der, &[leaf_der, issuer_der], now).map_err(|e| {
        format!(
            "{} answered a response that is not stapled: {e}",
            responder.url
        )
    })?;
    if !s.valid_at(now) {
        return Err(format!(
            "{} answered a response that is not valid now: {}",
            responder.url,
            s.concern(now).unwrap_or_default()
        ));
    }
    Ok(s)
}
