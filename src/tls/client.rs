//! The upstream leg's rustls `ClientConfig`, one per route, built from
//! `[route.connect_tls]`.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::danger::AcceptAnyCertificate;
use super::material::{CertInfo, CrlInfo, Loader};
use super::policy::{Anchors, NameCheck, ServerPolicy};
use super::verify::{ChainOnly, NamedServerRevocation, Pinned};
use super::{provider_with, versions};
use crate::config::{ConfigError, ConnectTls, Verify};

/// Everything a connection needs to secure its upstream leg.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    /// Where trust comes from, in words for logs and `probe`.
    pub trust: String,
    /// The configured `server_name`; `None`: the host of the connect entry.
    pub server_name: Option<ServerName<'static>>,
    /// The configured certificates, for `check` and the expiry metric:
    /// (role, info) with role `client` or `ca`.
    pub certs: Vec<(&'static str, CertInfo)>,
    /// The configured revocation lists, for `check` and the nextUpdate metric.
    pub crls: Vec<CrlInfo>,
}

/// The OS trust store, loaded at most once per config load.
#[derive(Default)]
pub struct NativeRoots(Option<Arc<RootCertStore>>);

impl NativeRoots {
    fn get(&mut self) -> Result<Arc<RootCertStore>, String> {
        if let Some(r) = &self.0 {
            return Ok(r.clone());
        }
        let found = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (_added, _ignored) = store.add_parsable_certificates(found.certs);
        if store.is_empty() {
            let why = found
                .errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no certificate found".into());
            return Err(format!(
                "the OS trust store is empty or unreadable ({why}); set `ca` to a CA file"
            ));
        }
        let store = Arc::new(store);
        self.0 = Some(store.clone());
        Ok(store)
    }
}

/// The name check `verify` and `name_check_cn_fallback` ask for.
fn name_check(t: &ConnectTls) -> NameCheck {
    match (&t.verify, t.cn_fallback) {
        (Verify::Full, true) => NameCheck::SanThenCn,
        (Verify::Full, false) => NameCheck::San,
        _ => NameCheck::None,
    }
}

/// Builds the client side of a route: trust, revocation lists, the
/// verifier of its `verify` mode, then rustls's config (versions, client
/// identity, ALPN, resumption), in that order of errors.
pub fn build(
    loader: &mut Loader<'_>,
    t: &ConnectTls,
    native: &mut NativeRoots,
) -> Result<ClientTls, ConfigError> {
    let provider = provider_with(&t.ciphers);
    let mut certs = Vec::new();
    let Trust {
        roots,
        anchors,
        words: trust,
    } = trust(loader, t, native, &mut certs)?;

    let crls = loader.crls("connect_tls.crl", &t.crl)?;
    let crl_infos: Vec<CrlInfo> = crls.iter().filter_map(|c| CrlInfo::parse(c)).collect();
    if !crls.is_empty() && roots.is_none() {
        return Err(loader.ctx.invalid(
            "connect_tls.crl",
            format!(
                "revocation lists are checked with the chain; verify = \"{}\" checks no chain",
                t.verify.as_str()
            ),
        ));
    }
    let verifier = verifier(loader, t, roots, &anchors, crls, &provider)?;

    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(&t.protocols))
        .map_err(|e| loader.ctx.invalid("connect_tls.protocols", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    let mut config = match &t.client_cert {
        Some(ck) => {
            let (chain, key) = loader.identity(ck)?;
            certs.extend(CertInfo::parse(&chain[0]).map(|i| ("client", i)));
            builder
                .with_client_auth_cert(chain, key.0)
                .map_err(|e| loader.ctx.invalid("connect_tls.key", e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = t.alpn.clone();
    // Lets a finished session give its record keys to the kernel (kernel
    // TLS, `tls::kernel`); nothing extracts them unless the route's
    // kernel_tls = "auto" and the kernel takes them.
    config.enable_secret_extraction = true;
    if !t.resumption {
        config.resumption = Resumption::disabled();
    }

    let server_name = match &t.server_name {
        Some(n) => Some(
            ServerName::try_from(n.clone())
                .map_err(|e| loader.ctx.invalid("connect_tls.server_name", e.to_string()))?,
        ),
        None => None,
    };
    warn_weak(loader, t);

    Ok(ClientTls {
        config: Arc::new(config),
        trust,
        server_name,
        certs,
        crls: crl_infos,
    })
}

/// Where a route's trust comes from.
struct Trust {
    /// The roots a chain is checked against; `None` for `pin` and `none`.
    roots: Option<Arc<RootCertStore>>,
    /// The anchors of `connect_tls.ca`, as read (for `policy::Anchors`).
    anchors: Vec<CertificateDer<'static>>,
    /// In words, for logs and `probe`.
    words: String,
}

/// The trust of `verify`: the CA file's anchors (added to `certs` for
/// `check` and the expiry metric), the OS store, or none.
fn trust(
    loader: &mut Loader<'_>,
    t: &ConnectTls,
    native: &mut NativeRoots,
    certs: &mut Vec<(&'static str, CertInfo)>,
) -> Result<Trust, ConfigError> {
    let (roots, anchors, words) = match (&t.verify, &t.ca) {
        (Verify::Full | Verify::Chain, Some(path)) => {
            let anchors = loader.anchors(
                "connect_tls.ca",
                path,
                "connect_tls.ca_password_file",
                t.ca_password_file.as_deref(),
            )?;
            let mut store = RootCertStore::empty();
            for a in &anchors {
                store.add(a.clone()).map_err(|e| {
                    loader.ctx.invalid(
                        "connect_tls.ca",
                        format!("{}: not usable as a trust anchor: {e}", path.display()),
                    )
                })?;
                certs.extend(CertInfo::parse(a).map(|i| ("ca", i)));
            }
            let words = format!("CA file {}", path.display());
            (Some(Arc::new(store)), anchors, words)
        }
        (Verify::Full | Verify::Chain, None) => {
            let store = native
                .get()
                .map_err(|m| loader.ctx.invalid("connect_tls.ca", m))?;
            (Some(store), Vec::new(), "the OS trust store".to_owned())
        }
        (Verify::Pin(pins), _) => (None, Vec::new(), format!("{} pinned key(s)", pins.len())),
        (Verify::None, _) => (
            None,
            Vec::new(),
            "nothing (verify = \"none\": any certificate is accepted)".to_owned(),
        ),
    };
    Ok(Trust {
        roots,
        anchors,
        words,
    })
}

/// The verifier of `verify`: WebPKI against `roots` (with CRLs, the chain
/// only for `chain`, then our trust policy), the pins, or none.
fn verifier(
    loader: &mut Loader<'_>,
    t: &ConnectTls,
    roots: Option<Arc<RootCertStore>>,
    anchor_ders: &[CertificateDer<'static>],
    crls: Vec<CertificateRevocationListDer<'static>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, ConfigError> {
    Ok(match (&t.verify, roots) {
        (Verify::Full | Verify::Chain, Some(roots)) => {
            // With CRLs, every certificate of the chain but the anchor is
            // checked (WebPKI's default depth), and one whose issuer has no
            // CRL fails as revocation_unknown (issue 14).
            let anchors = Anchors::new(anchor_ders, &roots);
            let mut b = WebPkiServerVerifier::builder_with_provider(roots, provider.clone());
            let crl_issuers: Vec<Vec<u8>> = crls
                .iter()
                .filter_map(|c| CrlInfo::parse(c))
                .map(|i| i.issuer_der)
                .collect();
            if !crls.is_empty() {
                b = b.with_crls(crls);
            }
            let webpki = b.build().map_err(|e| {
                loader.ctx.invalid(
                    "connect_tls.ca",
                    format!("failed to build the verifier: {e}"),
                )
            })?;
            let v: Arc<dyn ServerCertVerifier> = if t.verify == Verify::Chain {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            };
            let v: Arc<dyn ServerCertVerifier> = if crl_issuers.is_empty() {
                v
            } else {
                Arc::new(NamedServerRevocation {
                    inner: v,
                    crl_issuers,
                })
            };
            Arc::new(ServerPolicy {
                inner: v,
                anchors,
                names: name_check(t),
            })
        }
        (Verify::Pin(pins), _) => Arc::new(Pinned {
            pins: pins.clone(),
            provider: provider.clone(),
        }),
        _ => Arc::new(AcceptAnyCertificate {
            provider: provider.clone(),
        }),
    })
}

/// The weaker modes are said out loud when the config is loaded.
fn warn_weak(loader: &mut Loader<'_>, t: &ConnectTls) {
    match &t.verify {
        Verify::None => loader.warn(
            "verify = \"none\": the upstream's certificate is NOT checked (trust mode); the link is encrypted but not authenticated".into(),
        ),
        Verify::Chain => loader.warn(
            "verify = \"chain\": the upstream's host name is NOT checked against its certificate".into(),
        ),
        _ => {}
    }
    if t.ca.is_some() && matches!(t.verify, Verify::None | Verify::Pin(_)) {
        loader.warn(
            "connect_tls.ca is not used: with verify = \"none\" or \"pin\" no chain is checked against it".into(),
        );
    }
}
