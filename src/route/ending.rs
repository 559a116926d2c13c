//! How a connection ends: one value made once per connection ([`Ending`]),
//! and one function ([`finish`]) that logs it, counts it and carries it to
//! the sockets. The whole policy is on this screen:
//!
//! | ending | counted | client and upstream get |
//! |---|---|---|
//! | relayed, both directions ended cleanly | `ok` at relay start | a normal close (their FIN / close_notify already passed on) |
//! | idle timeout, nothing in flight | `ok` | close_notify and FIN, within [`CLOSE_GRACE`] |
//! | idle timeout, bytes in flight (relay, or kernel queues) | `ok` | a reset |
//! | cut at the end of `shutdown_grace` | `ok` (or nothing, before the relay) | a reset |
//! | a side failed: truncation, reset, I/O error | `ok`; a TLS 1.3 refusal after the handshake also `handshake_errors` | a reset |
//! | handshake failed or timed out, either leg | `handshake_error` / `upgrade_error` / `timeout` | a reset |
//! | no upstream answered | `connect_error` | a reset |
//!
//! A reset is never sent over bytes still queued: each socket first gets
//! [`DRAIN`] for its send queue to leave, so the peer reads every byte the
//! sidecar passed on (and a direction that already ended cleanly, with
//! its FIN, stays a clean end for its reader), then learns of the failure.
//! A TLS leg that is reset gets no close_notify.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::{timeout, Instant};

use super::connect::ConnectError;
use super::legs::{HandshakeFailure, Side, Stage};
use super::plan::RoutePlan;
use super::stream::{Engine, Stream};
use crate::labels::Reason;
use crate::relay::{End, FailKind, Failure, Outcome};
use crate::telemetry::ConnResult;
use crate::tls::reason::{classify, describe, rustls_error};

/// How long a polite close (close_notify, FIN) may take after an idle
/// timeout before the sockets are simply dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long a socket about to be reset waits for its send queue to leave.
pub const DRAIN: Duration = Duration::from_secs(5);

/// How one connection ended.
#[derive(Debug)]
pub enum Ending {
    /// The relay ran and ended so.
    Relayed(Outcome),
    /// A handshake or the upgrade exchange failed, or timed out.
    Handshake(HandshakeFailure),
    /// No upstream answered.
    Unreachable(ConnectError),
    /// Cut at the end of `shutdown_grace` before the relay started.
    CutEarly,
}

/// What the sockets get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Both directions already passed on their clean end: just close.
    Normal,
    /// close_notify and FIN both ways, bounded by [`CLOSE_GRACE`].
    Polite,
    /// A reset, after the send queues had [`DRAIN`] to leave; no
    /// close_notify.
    Reset,
}

impl Ending {
    /// What the sockets get, from the ending alone (the kernel's queues
    /// may still turn `Polite` into `Reset`, see [`finish`]).
    pub fn close(&self) -> Close {
        match self {
            Ending::Relayed(o) => match o.end {
                End::Closed => Close::Normal,
                End::Idle { in_flight: false } => Close::Polite,
                End::Idle { in_flight: true } | End::Cut | End::Client(_) | End::Upstream(_) => {
                    Close::Reset
                }
            },
            Ending::Handshake(_) | Ending::Unreachable(_) | Ending::CutEarly => Close::Reset,
        }
    }
}

/// A connection at its end: the ending and what it had.
pub struct Finished<'a> {
    pub plan: &'a RoutePlan,
    pub client_addr: SocketAddr,
    pub started: Instant,
    /// The upstream entry (index into `connect`) and address in use.
    pub upstream_at: Option<(usize, SocketAddr)>,
    pub client: Option<Stream>,
    pub upstream: Option<Stream>,
    pub ending: Ending,
}

/// Logs, counts and carries out one connection's ending (issue 16: the
/// one place each is done).
pub async fn finish(f: Finished<'_>) {
    let mut close = f.ending.close();
    if close == Close::Polite
        && [&f.client, &f.upstream]
            .into_iter()
            .flatten()
            .any(Stream::kernel_holds_bytes)
    {
        // Bytes still wait in a socket: a FIN now would cut them off and
        // look like a clean end.
        close = Close::Reset;
    }
    record(&f, close);
    carry_out(close, f.client, f.upstream, &f.ending).await;
}

/// Logs the ending once and counts it once.
fn record(f: &Finished<'_>, close: Close) {
    let Finished {
        plan,
        client_addr,
        started,
        upstream_at,
        client,
        upstream,
        ending,
    } = f;
    let route = &plan.route.name;
    let m = &plan.metrics;
    let entry = upstream_at.map(|(i, _)| &plan.route.connect[i]);
    let upstream_label = entry.map_or_else(|| "-".to_owned(), |e| e.to_string());
    let addr = upstream_at.map_or_else(|| "-".to_owned(), |(_, a)| a.to_string());

    match ending {
        Ending::Relayed(o) => {
            let (tls, cipher) = upstream
                .as_ref()
                .and_then(Stream::tls_names)
                .unwrap_or(("none", "none"));
            let engine = [client, upstream]
                .into_iter()
                .flatten()
                .map(Stream::engine)
                .max()
                .unwrap_or(Engine::Plain)
                .as_str();
            if let Some(reason) = refused_after_handshake(o) {
                if let End::Upstream(fail) = &o.end {
                    tracing::warn!(route = %route, client = %client_addr, upstream = %upstream_label,
                        side = Side::Upstream.as_str(), reason = reason.as_str(),
                        "upstream refused us after the handshake: {}",
                        describe(&fail.error));
                }
                m.handshake_error(Side::Upstream, reason);
            }
            tracing::info!(route = %route, client = %client_addr, upstream = %upstream_label, addr = %addr,
                tls, cipher, engine, bytes_up = o.upstream_bytes, bytes_down = o.downstream_bytes,
                duration_ms = started.elapsed().as_millis() as u64,
                end = %describe_end(&o.end, close), "connection closed");
        }
        Ending::Handshake(h) => {
            m.handshake_error(h.side, h.reason);
            m.connection(h.result());
            match h.side {
                Side::Client if h.stage == Stage::ProxyHeader => {
                    tracing::warn!(route = %route, client = %client_addr, side = h.side.as_str(),
                    reason = h.reason.as_str(), "closing the client: {}", h.detail)
                }
                Side::Client => {
                    tracing::warn!(route = %route, client = %client_addr, side = h.side.as_str(),
                    reason = h.reason.as_str(), "client TLS handshake failed: {}", h.detail)
                }
                Side::Upstream => {
                    let trust = plan.client_tls.as_ref().map(|ct| ct.trust.to_string());
                    tracing::warn!(route = %route, client = %client_addr,
                        upstream = %upstream_label, addr = %addr, side = h.side.as_str(),
                        reason = h.reason.as_str(),
                        trust = trust.as_deref().unwrap_or("-"),
                        "upstream handshake failed: {}", h.detail)
                }
            }
        }
        Ending::Unreachable(e) => {
            m.connection(ConnResult::ConnectError);
            tracing::warn!(route = %route, client = %client_addr, "closing the client: {e}");
        }
        Ending::CutEarly => {
            tracing::info!(route = %route, client = %client_addr,
                "connection cut before it was relayed: shutdown_grace ran out; reset");
        }
    }
}

/// Carries the ending to the sockets: nothing more, a polite shutdown of
/// both (bounded by `CLOSE_GRACE`), or a reset after the drain.
async fn carry_out(
    close: Close,
    client: Option<Stream>,
    upstream: Option<Stream>,
    ending: &Ending,
) {
    match close {
        Close::Normal => {}
        Close::Polite => {
            let _ = timeout(CLOSE_GRACE, async {
                use tokio::io::AsyncWriteExt;
                if let Some(mut u) = upstream {
                    let _ = u.shutdown().await;
                }
                if let Some(mut c) = client {
                    let _ = c.shutdown().await;
                }
            })
            .await;
        }
        Close::Reset => {
            // Which sockets' writing side the relay already shut down.
            let (client_shut, upstream_shut) = match ending {
                Ending::Relayed(o) => (o.downstream_done, o.upstream_done),
                _ => (false, false),
            };
            let reset = |s: Option<Stream>, shut: bool| async move {
                if let Some(s) = s {
                    s.reset(DRAIN, shut).await;
                }
            };
            tokio::join!(reset(client, client_shut), reset(upstream, upstream_shut));
        }
    }
}

/// A TLS 1.3 server checks our certificate only after our side of the
/// handshake is done, so its refusal (certificate_required, unknown_ca,
/// ...) arrives as the first read. It is a handshake failure all the same:
/// its reason, when the relay ended so before any byte came down.
fn refused_after_handshake(o: &Outcome) -> Option<Reason> {
    let End::Upstream(f) = &o.end else {
        return None;
    };
    let alert = matches!(
        rustls_error(&f.error),
        Some(rustls::Error::AlertReceived(_))
    );
    let reason = classify(&f.error);
    (alert && reason != Reason::Other && o.downstream_bytes == 0).then_some(reason)
}

/// How a relay ended, in words for the log.
fn describe_end(end: &End, close: Close) -> String {
    let then = match close {
        Close::Reset => "; both sides were reset",
        _ => "",
    };
    let side = |who: &str, f: &Failure| {
        let what = match f.kind {
            FailKind::Truncated => format!("{who} closed without close_notify (truncated)"),
            FailKind::Reset => format!("{who} reset the connection"),
            FailKind::Error => format!("{who} failed: {}", f.error),
        };
        let when = if f.other_done {
            " after the other direction had ended cleanly"
        } else {
            ""
        };
        format!("{what}{when}; the other side was reset")
    };
    match end {
        End::Closed => "closed".into(),
        End::Idle { .. } => format!("idle timeout{then}"),
        End::Cut => format!("cut at the end of shutdown_grace{then}"),
        End::Client(f) => side("client", f),
        End::Upstream(f) => side("upstream", f),
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::route::legs::Stage;

    fn relayed(end: End) -> Ending {
        Ending::Relayed(Outcome {
            upstream_bytes: 0,
            downstream_bytes: 0,
            upstream_done: false,
            downstream_done: false,
            end,
        })
    }

    fn failure(kind: io::ErrorKind) -> Failure {
        Failure {
            kind: FailKind::of(&kind.into()),
            error: kind.into(),
            writing: false,
            other_done: false,
        }
    }

    #[test]
    fn only_a_clean_end_closes_normally_and_only_an_idle_one_with_nothing_in_flight_politely() {
        assert_eq!(relayed(End::Closed).close(), Close::Normal);
        assert_eq!(
            relayed(End::Idle { in_flight: false }).close(),
            Close::Polite
        );
        for end in [
            End::Idle { in_flight: true },
            End::Cut,
            End::Client(failure(io::ErrorKind::ConnectionReset)),
            End::Upstream(failure(io::ErrorKind::UnexpectedEof)),
            End::Upstream(failure(io::ErrorKind::Other)),
        ] {
            let label = format!("{end:?}");
            assert_eq!(relayed(end).close(), Close::Reset, "{label}");
        }
    }

    #[test]
    fn every_ending_before_the_relay_is_a_reset() {
        let handshake = Ending::Handshake(HandshakeFailure {
            side: Side::Upstream,
            stage: Stage::Timeout,
            reason: Reason::Timeout,
            detail: String::new(),
        });
        let unreachable = Ending::Unreachable(ConnectError {
            attempts: Vec::new(),
        });
        for e in [handshake, unreachable, Ending::CutEarly] {
            assert_eq!(e.close(), Close::Reset, "{e:?}");
        }
    }

    #[test]
    fn the_log_says_how_a_relay_ended_and_what_the_sockets_got() {
        assert_eq!(describe_end(&End::Closed, Close::Normal), "closed");
        assert_eq!(
            describe_end(&End::Idle { in_flight: true }, Close::Reset),
            "idle timeout; both sides were reset"
        );
        assert_eq!(
            describe_end(&End::Cut, Close::Reset),
            "cut at the end of shutdown_grace; both sides were reset"
        );
        let mut f = failure(io::ErrorKind::ConnectionReset);
        f.other_done = true;
        assert_eq!(
            describe_end(&End::Upstream(f), Close::Reset),
            "upstream reset the connection after the other direction had ended cleanly; the other side was reset"
        );
        assert_eq!(
            describe_end(
                &End::Upstream(failure(io::ErrorKind::UnexpectedEof)),
                Close::Reset
            ),
            "upstream closed without close_notify (truncated); the other side was reset"
        );
    }
}
