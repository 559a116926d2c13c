//! A route ready to serve: its validated config plus everything built from
//! it (rustls configs, the compiled upgrade script, metric handles). A
//! `Plan` is the whole config built this way; `check`, `probe` and `run`
//! all go through [`load`], so `check` reports exactly what `run` would.

use std::path::Path;
use std::sync::Arc;

use super::stream::Engine;
use crate::config::{
    self, Config, ConfigError, KernelTls, Route, RouteCtx, Start, TlsVersion, Upgrade,
};
use crate::telemetry::{RouteInfo, RouteMetrics};
use crate::tls::client::{self, ClientTls, NativeRoots};
use crate::tls::material::{now_unix, Loader, Warning};
use crate::tls::server::{self, ServerTls};
use crate::upgrade::{self, Script};

/// One route, built.
#[derive(Debug)]
pub struct RoutePlan {
    pub route: Route,
    pub client_tls: Option<ClientTls>,
    pub server_tls: Option<ServerTls>,
    pub upgrade: Option<Script>,
    pub metrics: RouteMetrics,
    /// The CONNECT proxy upstreams are reached through.
    pub via: Option<super::via::ViaPlan>,
}

/// A whole config, built.
#[derive(Debug)]
pub struct Plan {
    pub config: Config,
    pub routes: Vec<Arc<RoutePlan>>,
    pub warnings: Vec<Warning>,
}

/// Reads, validates and builds the config at `path`.
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    build(config::load(path)?)
}

/// Builds every route of a validated config: reads certificates, keys, CAs
/// and CRLs, builds the TLS configs, compiles upgrade scripts.
pub fn build(config: Config) -> Result<Plan, ConfigError> {
    let mut warnings = Vec::new();
    let mut native = NativeRoots::default();
    let mut routes = Vec::with_capacity(config.routes.len());
    for route in &config.routes {
        let mut loader = Loader {
            ctx: RouteCtx {
                file: &config.source,
                route: &route.name,
            },
            warnings: &mut warnings,
            strict_key_permissions: config.strict_key_permissions,
        };
        let client_tls = match &route.connect_tls {
            Some(t) => Some(client::build(&mut loader, t, &mut native)?),
            None => None,
        };
        let server_tls = match &route.listen_tls {
            Some(t) => Some(server::build(&mut loader, t)?),
            None => None,
        };
        let upgrade = match route.connect_tls.as_ref().map(|t| &t.start) {
            Some(Start::Upgrade(Upgrade::Builtin { profile, hostname })) => {
                Some(upgrade::builtin(*profile, hostname))
            }
            Some(Start::Upgrade(Upgrade::Script(steps))) => Some(Script::from_steps(steps)),
            _ => None,
        };

        let via = match &route.via {
            Some(v) => Some(super::via::build(&mut loader, v)?),
            None => None,
        };
        routes.push(Arc::new(RoutePlan {
            via,
            metrics: RouteMetrics::new(&route.name),
            route: route.clone(),
            client_tls,
            server_tls,
            upgrade,
        }));
    }

    warnings.extend(super::proxy_warnings::self_warnings(&config));
    warnings.extend(super::proxy_warnings::open_warnings(&config));
    Ok(Plan {
        config,
        routes,
        warnings,
    })
}

impl RoutePlan {
    /// Is the sidecar's client certificate presented upstream?
    pub fn mutual(&self) -> bool {
        self.route
            .connect_tls
            .as_ref()
            .is_some_and(|t| t.client_cert.is_some())
    }

    /// The `verify` label: the upstream verify mode, or "plain".
    pub fn verify_label(&self) -> &'static str {
        self.route
            .connect_tls
            .as_ref()
            .map_or("plain", |t| t.verify.as_str())
    }

    /// The `engine` label: plain without a TLS leg; kTLS when
    /// `kernel_tls = "auto"`, the kernel offers kTLS and every TLS leg may
    /// speak TLS 1.3 (such sessions with a suite the kernel takes then run
    /// on it; a connection that cannot is counted in
    /// `ktls_fallbacks_total`); else userspace.
    pub fn engine(&self) -> Engine {
        let r = &self.route;
        let tls13 = |p: &[TlsVersion]| p.contains(&TlsVersion::Tls13);
        if r.connect_tls.is_none() && r.listen_tls.is_none() {
            Engine::Plain
        } else if r.kernel_tls == KernelTls::Auto
            && r.connect_tls.as_ref().is_none_or(|t| tls13(&t.protocols))
            && r.listen_tls.as_ref().is_none_or(|t| tls13(&t.protocols))
            && crate::tls::kernel::available()
        {
            Engine::Ktls
        } else {
            Engine::Userspace
        }
    }

    /// Publishes the route's info series and the not-after of every
    /// configured certificate.
    pub fn publish_metrics(&self) {
        let m = &self.metrics;
        m.info(RouteInfo {
            listen: &self.route.listen.to_string(),
            connect_start: self.route.connect_start(),
            verify: self.verify_label(),
            mutual: self.mutual(),
            kernel_tls: self.route.kernel_tls.as_str(),
            engine: self.engine().as_str(),
        });
        let certs = self
            .client_tls
            .iter()
            .flat_map(|c| c.certs.iter())
            .chain(self.server_tls.iter().flat_map(|s| s.certs.iter()));
        m.configured_certs(
            certs
                .map(|(role, info)| (*role, info.subject.clone(), info.not_after))
                .collect(),
        );
        m.crl_next_update(
            self.client_tls
                .iter()
                .flat_map(|c| c.crls.iter())
                .chain(self.server_tls.iter().flat_map(|s| s.crls.iter()))
                .filter_map(|c| Some((c.issuer.clone(), c.next_update?)))
                .collect(),
        );
        // The server certificates come first in `certs`, in `stapled`'s
        // order; the gauge asks each one at every scrape.
        if let Some(st) = &self.server_tls {
            let staples = st
                .certs
                .iter()
                .zip(&st.stapled)
                .zip(&st.ocsp)
                .filter(|(_, source)| source.is_some())
                .map(|(((_, info), s), _)| {
                    let s = s.clone();
                    let until: crate::telemetry::owned::StapledUntil =
                        Arc::new(move || s.stapled(now_unix()).map(|s| s.valid_until()));
                    (info.subject.clone(), until)
                })
                .collect();
            m.ocsp_staples(staples);
        }
        super::stapling::start(&self.route.name, self.server_tls.as_ref(), &self.metrics);
    }
}
