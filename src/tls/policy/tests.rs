//! The trust-parity rules on certificates made here with rcgen, through
//! rustls's own WebPKI verifiers (tests/trust_parity.rs has the same cases
//! with OpenSSL-made certificates against real peers).

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::*;
use crate::tls::explain::refusal;
use crate::tls::reason::classify_rustls;

fn now() -> UnixTime {
    UnixTime::now()
}

fn params(cn: &str, sans: &[&str]) -> CertificateParams {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p
}

/// What `openssl req -x509 -subj /CN=host -addext subjectAltName=DNS:host`
/// makes: self-signed, CA:TRUE, no extendedKeyUsage.
fn self_signed_ca(cn: &str, sans: &[&str]) -> CertificateDer<'static> {
    let mut p = params(cn, sans);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.self_signed(&KeyPair::generate().unwrap())
        .unwrap()
        .der()
        .clone()
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut p = params("Parity CA", &[]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, p: CertificateParams) -> CertificateDer<'static> {
    p.signed_by(&KeyPair::generate().unwrap(), ca)
        .unwrap()
        .der()
        .clone()
}

fn server(anchors: &[CertificateDer<'static>], names: NameCheck) -> ServerPolicy {
    let mut store = RootCertStore::empty();
    for a in anchors {
        store.add(a.clone()).unwrap();
    }
    let trusted = Anchors::new(anchors, &store);
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), crate::tls::provider())
            .build()
            .unwrap();
    let inner: Arc<dyn ServerCertVerifier> = if names == NameCheck::None {
        Arc::new(crate::tls::verify::ChainOnly(inner))
    } else {
        inner
    };
    ServerPolicy {
        inner,
        anchors: trusted,
        names,
    }
}

fn verify(
    p: &ServerPolicy,
    cert: &CertificateDer<'_>,
    name: &str,
    at: UnixTime,
) -> Result<(), Error> {
    let name = ServerName::try_from(name).unwrap();
    p.verify_server_cert(cert, &[], &name, &[], at).map(|_| ())
}

fn reason(r: Result<(), Error>) -> Reason {
    classify_rustls(&r.expect_err("refused"))
}

fn text(r: Result<(), Error>) -> String {
    let e = r.expect_err("refused");
    refusal(&e)
        .map(|r| r.text.clone())
        .unwrap_or_else(|| e.to_string())
}

#[test]
fn a_trust_anchor_presented_as_itself_is_trusted_with_its_name_and_dates_still_checked() {
    let host = self_signed_ca("host", &["host"]);
    let full = server(std::slice::from_ref(&host), NameCheck::San);
    assert!(verify(&full, &host, "host", now()).is_ok());
    assert_eq!(
        reason(verify(&full, &host, "other", now())),
        Reason::NameMismatch
    );
    let year_5000 = UnixTime::since_unix_epoch(Duration::from_secs(95_617_584_000));
    assert_eq!(
        reason(verify(&full, &host, "host", year_5000)),
        Reason::Expired
    );
    let long_ago = UnixTime::since_unix_epoch(Duration::from_secs(86_400));
    assert_eq!(
        reason(verify(&full, &host, "host", long_ago)),
        Reason::NotYetValid
    );
    // verify = "chain": the name is not checked, the rest is.
    let chain = server(std::slice::from_ref(&host), NameCheck::None);
    assert!(verify(&chain, &host, "other", now()).is_ok());
    // Another self-signed certificate is an unknown CA, said so.
    let stranger = self_signed_ca("host", &["host"]);
    let r = verify(&full, &stranger, "host", now());
    assert_eq!(reason(r.clone()), Reason::UnknownCa);
    assert!(text(r).contains("is self-signed and is not one of the trust anchors (connect_tls.ca): add this exact certificate to connect_tls.ca"));
}

#[test]
fn a_ca_true_leaf_under_a_trusted_ca_is_refused_with_the_reason_and_the_fix() {
    let ca = ca();
    let mut p = params("host", &["host"]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = leaf(&ca, p);
    let policy = server(&[ca.der().clone()], NameCheck::San);
    let r = verify(&policy, &cert, "host", now());
    assert_eq!(reason(r.clone()), Reason::BadCertificate);
    let t = text(r);
    assert!(
        t.contains(
            "is a CA certificate (basicConstraints CA:TRUE) used as a server's own certificate"
        ),
        "{t}"
    );
    assert!(
        t.contains("Reissue it with basicConstraints=CA:FALSE"),
        "{t}"
    );
    assert!(!t.contains("malformed"), "{t}");
}

#[test]
fn the_cn_stands_in_only_when_asked_and_only_without_a_dns_subject_alt_name() {
    let ca = ca();
    let policy = |n| server(&[ca.der().clone()], n);
    let cn_only = leaf(&ca, params("host.example", &[]));
    assert_eq!(
        reason(verify(
            &policy(NameCheck::San),
            &cn_only,
            "host.example",
            now()
        )),
        Reason::NameMismatch
    );
    assert!(verify(
        &policy(NameCheck::SanThenCn),
        &cn_only,
        "host.example",
        now()
    )
    .is_ok());
    assert_eq!(
        reason(verify(
            &policy(NameCheck::SanThenCn),
            &cn_only,
            "other.example",
            now()
        )),
        Reason::NameMismatch
    );
    let wildcard = leaf(&ca, params("*.example", &[]));
    assert!(verify(
        &policy(NameCheck::SanThenCn),
        &wildcard,
        "host.example",
        now()
    )
    .is_ok());
    assert!(verify(
        &policy(NameCheck::SanThenCn),
        &wildcard,
        "a.b.example",
        now()
    )
    .is_err());
    // A DNS subjectAltName is the whole list: the CN is not looked at.
    let both = leaf(&ca, params("host.example", &["web.example"]));
    assert_eq!(
        reason(verify(
            &policy(NameCheck::SanThenCn),
            &both,
            "host.example",
            now()
        )),
        Reason::NameMismatch
    );
    // An IP address is never matched against the CN.
    let ip = leaf(&ca, params("127.0.0.1", &[]));
    assert!(verify(&policy(NameCheck::SanThenCn), &ip, "127.0.0.1", now()).is_err());
}

#[test]
fn a_key_usage_without_digital_signature_is_refused_by_name() {
    let ca = ca();
    let mut p = params("host", &["host"]);
    p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let cert = leaf(&ca, p);
    let r = verify(
        &server(&[ca.der().clone()], NameCheck::San),
        &cert,
        "host",
        now(),
    );
    assert_eq!(reason(r.clone()), Reason::BadCertificate);
    let t = text(r);
    assert!(
        t.contains("keyUsage \"Key Encipherment\" without digitalSignature"),
        "{t}"
    );
}

#[test]
fn a_server_only_certificate_is_refused_to_a_client_by_its_purposes() {
    let ca = ca();
    let mut p = params("client", &["client"]);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf(&ca, p);
    let mut store = RootCertStore::empty();
    store.add(ca.der().clone()).unwrap();
    let trusted = Anchors::new(&[ca.der().clone()], &store);
    let inner =
        WebPkiClientVerifier::builder_with_provider(Arc::new(store), crate::tls::provider())
            .build()
            .unwrap();
    let policy = ClientPolicy {
        inner,
        anchors: trusted,
    };
    let r = policy.verify_client_cert(&cert, &[], now()).map(|_| ());
    assert_eq!(reason(r.clone()), Reason::BadCertificate);
    let t = text(r);
    assert!(
        t.contains("is for serverAuth only (extendedKeyUsage) and a client needs clientAuth"),
        "{t}"
    );
}

#[test]
fn a_client_certificate_that_is_a_trust_anchor_is_trusted_as_itself() {
    let me = self_signed_ca("gms-client", &["gms-client"]);
    let mut store = RootCertStore::empty();
    store.add(me.clone()).unwrap();
    let trusted = Anchors::new(std::slice::from_ref(&me), &store);
    let inner =
        WebPkiClientVerifier::builder_with_provider(Arc::new(store), crate::tls::provider())
            .build()
            .unwrap();
    let policy = ClientPolicy {
        inner,
        anchors: trusted,
    };
    assert!(policy.verify_client_cert(&me, &[], now()).is_ok());
    let other = self_signed_ca("gms-client", &["gms-client"]);
    let r = policy.verify_client_cert(&other, &[], now()).map(|_| ());
    assert_eq!(reason(r), Reason::UnknownCa);
}
