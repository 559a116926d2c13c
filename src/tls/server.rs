//! The listen leg's rustls `ServerConfig`, built from `[route.listen_tls]`:
//! one or more certificates chosen by SNI, optional client certificates,
//! protocol and ALPN policy.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use super::identity::AllowList;
use super::material::{now_unix, CertInfo, CrlInfo, Loader};
use super::names::name_matches;
use super::ocsp::stapled::Stapled;
use super::ocsp::{self, Staple};
use super::policy::{Anchors, ClientPolicy};
use super::verify::NamedClientRevocation;
use super::{provider_with, versions};
use crate::config::{ConfigError, ListenTls, Ocsp};

/// Everything a connection needs to terminate TLS from its client.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub sni_required: bool,
    pub alpn_required: bool,
    /// The names each certificate serves, in order (the first is the default).
    pub names: Vec<Vec<String>>,
    /// Configured certificates: (role, info), role `server` or `ca`.
    pub certs: Vec<(&'static str, CertInfo)>,
    /// Each server certificate, in order, with the OCSP response stapled
    /// to it while valid.
    pub stapled: Vec<Arc<Stapled>>,
    /// Where each one's response comes from (`ocsp`), in the same order.
    pub ocsp: Vec<Option<Ocsp>>,
    /// The configured revocation lists, for `check` and the nextUpdate metric.
    pub crls: Vec<CrlInfo>,
}

/// Picks the certificate whose names match the client's SNI. Without a match
/// (or without SNI) it serves the first one, unless SNI is required: then
/// no certificate is returned and rustls ends the handshake with an alert.
#[derive(Debug)]
struct SniResolver {
    entries: Vec<(Vec<String>, Arc<Stapled>)>,
    sni_required: bool,
}

impl SniResolver {
    fn find(&self, sni: &str) -> Option<&Stapled> {
        self.entries
            .iter()
            .find(|(names, _)| names.iter().any(|n| name_matches(n, sni)))
            .map(|(_, ck)| &**ck)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = match hello.server_name() {
            Some(sni) => self.find(sni).or_else(|| self.default()),
            None => self.default(),
        };
        // The staple only while it is valid: checked now, each handshake.
        chosen.map(|s| s.key(now_unix()))
    }
}

impl SniResolver {
    fn default(&self) -> Option<&Stapled> {
        if self.sni_required {
            None
        } else {
            self.entries.first().map(|(_, ck)| &**ck)
        }
    }
}

impl ServerTls {
    /// Would a client naming `sni` be served a certificate that covers it?
    pub fn serves(&self, sni: &str) -> bool {
        self.names.iter().flatten().any(|n| name_matches(n, sni))
    }
}

/// Builds the listen side of a route: its certificates (with their OCSP
/// staples), the versions, the client verifier of `client_ca` (with CRLs
/// and the allow list), SNI, ALPN and resumption, in that order of errors.
pub fn build(loader: &mut Loader<'_>, t: &ListenTls) -> Result<ServerTls, ConfigError> {
    let provider = provider_with(&t.ciphers);
    let Identities {
        entries,
        names,
        mut certs,
        stapled,
    } = identities(loader, t, &provider)?;
    let mut crl_infos = Vec::new();

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(&t.protocols))
        .map_err(|e| loader.ctx.invalid("listen_tls.protocols", e.to_string()))?;
    let builder = match &t.client_ca {
        Some(path) => builder.with_client_cert_verifier(client_verifier(
            loader,
            t,
            path,
            &provider,
            &mut certs,
            &mut crl_infos,
        )?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver {
        entries,
        sni_required: t.sni_required,
    }));
    config.alpn_protocols = t.alpn.clone();
    // Lets a finished session give its record keys to the kernel (kernel
    // TLS, `tls::kernel`); nothing extracts them unless the route's
    // kernel_tls = "auto" and the kernel takes them.
    config.enable_secret_extraction = true;
    if !t.resumption {
        // No TLS 1.3 tickets (stateful or not) and no session-ID cache:
        // every client gets a full handshake.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        // The ticketer is rustls's default, one that never makes a
        // stateless ticket (nothing here sets another).
        debug_assert!(!config.ticketer.enabled());
    }

    Ok(ServerTls {
        config: Arc::new(config),
        sni_required: t.sni_required,
        alpn_required: t.alpn_required,
        names,
        certs,
        stapled,
        ocsp: t.certs.iter().map(|c| c.ocsp.clone()).collect(),
        crls: crl_infos,
    })
}

/// A listener's certificates, loaded: what SNI picks from, and what
/// `check`, the metrics and the staple keepers see of them.
struct Identities {
    /// Each certificate's names and its key with its staple, for SNI.
    entries: Vec<(Vec<String>, Arc<Stapled>)>,
    names: Vec<Vec<String>>,
    certs: Vec<(&'static str, CertInfo)>,
    stapled: Vec<Arc<Stapled>>,
}

/// Loads every `cert`/`key` pair of `listen_tls`, each with the OCSP
/// response of its `ocsp` file, if any.
fn identities(
    loader: &mut Loader<'_>,
    t: &ListenTls,
    provider: &Arc<CryptoProvider>,
) -> Result<Identities, ConfigError> {
    let mut out = Identities {
        entries: Vec::new(),
        names: Vec::new(),
        certs: Vec::new(),
        stapled: Vec::new(),
    };
    for ck in &t.certs {
        let (chain, key) = loader.identity(ck)?;
        let info = CertInfo::parse(&chain[0]).expect("checked when loaded");
        let staple = match ck.ocsp.as_ref().and_then(|o| o.file()) {
            Some(path) => staple(loader, &ck.key_name, path, &chain, &info),
            None => None,
        };
        let certified = CertifiedKey::from_der(chain, key.0, provider).map_err(|e| {
            loader
                .ctx
                .invalid(&format!("{}.cert", ck.key_name), e.to_string())
        })?;
        let s = Arc::new(Stapled::new(Arc::new(certified)));
        s.set(staple);
        out.stapled.push(s.clone());
        out.names.push(info.sans.clone());
        out.entries.push((info.sans.clone(), s));
        out.certs.push(("server", info));
    }
    Ok(out)
}

/// The client certificate verifier of `client_ca` (at `path`): WebPKI
/// with the CRLs, then our trust policy, then the allow list. The anchors
/// go to `certs` and the CRLs to `crl_infos`, for `check` and the metrics.
fn client_verifier(
    loader: &mut Loader<'_>,
    t: &ListenTls,
    path: &Path,
    provider: &Arc<CryptoProvider>,
    certs: &mut Vec<(&'static str, CertInfo)>,
    crl_infos: &mut Vec<CrlInfo>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let anchors = loader.anchors(
        "listen_tls.client_ca",
        path,
        "listen_tls.client_ca_password_file",
        t.client_ca_password_file.as_deref(),
    )?;
    let mut store = RootCertStore::empty();
    for a in &anchors {
        store.add(a.clone()).map_err(|e| {
            loader.ctx.invalid(
                "listen_tls.client_ca",
                format!("{}: not usable as a trust anchor: {e}", path.display()),
            )
        })?;
        certs.extend(CertInfo::parse(a).map(|i| ("ca", i)));
    }
    let crls = loader.crls("listen_tls.crl", &t.crl)?;
    crl_infos.extend(crls.iter().filter_map(|c| CrlInfo::parse(c)));
    // With CRLs, the whole chain but the anchor is checked, and a
    // certificate whose issuer has no CRL fails as
    // revocation_unknown (issue 14).
    let crl_issuers: Vec<Vec<u8>> = crls
        .iter()
        .filter_map(|c| CrlInfo::parse(c))
        .map(|i| i.issuer_der)
        .collect();
    let trusted = Anchors::new(&anchors, &store);
    let mut vb = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone());
    if !crls.is_empty() {
        vb = vb.with_crls(crls);
    }
    let verifier = vb.build().map_err(|e| {
        loader.ctx.invalid(
            "listen_tls.client_ca",
            format!("failed to build the client verifier: {e}"),
        )
    })?;
    let verifier: Arc<dyn ClientCertVerifier> = if crl_issuers.is_empty() {
        verifier
    } else {
        Arc::new(NamedClientRevocation {
            inner: verifier,
            crl_issuers,
        })
    };
    let verifier = Arc::new(ClientPolicy {
        inner: verifier,
        anchors: trusted,
    });
    Ok(match &t.allow {
        Some(allow) => Arc::new(AllowList {
            inner: verifier,
            allow: allow.clone(),
        }),
        None => verifier,
    })
}

/// Reads and checks the OCSP response of one certificate (`KEY.ocsp`).
/// Whatever is wrong with it is a warning, never an error: the certificate
/// is served all the same, without the response (issue 25: a renewed
/// certificate placed before its OCSP file must not be refused).
fn staple(
    loader: &mut Loader<'_>,
    key_name: &str,
    path: &std::path::Path,
    chain: &[rustls::pki_types::CertificateDer<'static>],
    info: &CertInfo,
) -> Option<Staple> {
    let key = format!("{key_name}.ocsp");
    let now = now_unix();
    let ders: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
    let checked = std::fs::read(path)
        .map_err(|e| format!("failed to read it: {e}"))
        .and_then(|der| ocsp::check(&der, &ders, now));
    let staple = match checked {
        Ok(s) => s,
        Err(why) => {
            loader.warn(format!(
                "key `{key}`: the OCSP response in {} for \"{}\" is not stapled: {why}",
                path.display(),
                info.subject
            ));
            return None;
        }
    };
    if let Some(why) = staple.concern(now) {
        loader.warn(format!(
            "key `{key}`: the OCSP response in {} for \"{}\" {why}",
            path.display(),
            info.subject
        ));
    }
    Some(staple)
}
