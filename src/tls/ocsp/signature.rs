//! Who signed an OCSP response (RFC 6960 4.2.2.2): the certificate's
//! issuer itself, or a responder certificate carried in the response that
//! the issuer signed, with id-kp-OCSPSigning, valid now. Anything else is
//! not stapled: a client that checks would refuse it, and one that does
//! not would believe a forgery.

use der::Encode as _;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm};
use webpki::aws_lc_rs as alg;
use webpki::EndEntityCert;
use x509_ocsp::BasicOcspResponse;
use x509_parser::certificate::X509Certificate;

/// The verification algorithms a signature algorithm OID may stand for
/// (the key, which the verifier checks, picks among them).
fn algorithms(oid: &str) -> Vec<&'static dyn SignatureVerificationAlgorithm> {
    match oid {
        "1.2.840.113549.1.1.11" => vec![
            alg::RSA_PKCS1_2048_8192_SHA256,
            alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        ],
        "1.2.840.113549.1.1.12" => vec![
            alg::RSA_PKCS1_2048_8192_SHA384,
            alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        ],
        "1.2.840.113549.1.1.13" => vec![
            alg::RSA_PKCS1_2048_8192_SHA512,
            alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        ],
        "1.2.840.113549.1.1.10" => vec![
            alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        ],
        "1.2.840.10045.4.3.2" => vec![alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
        "1.2.840.10045.4.3.3" => vec![alg::ECDSA_P256_SHA384, alg::ECDSA_P384_SHA384],
        "1.2.840.10045.4.3.4" => vec![alg::ECDSA_P521_SHA512],
        "1.3.101.112" => vec![alg::ED25519],
        _ => vec![],
    }
}

/// Did the holder of `signer` (a DER certificate) sign `msg`?
fn signed_by(signer: &[u8], oid: &str, msg: &[u8], sig: &[u8]) -> bool {
    let der = CertificateDer::from(signer);
    let Ok(cert) = EndEntityCert::try_from(&der) else {
        return false;
    };
    algorithms(oid)
        .iter()
        .any(|a| cert.verify_signature(*a, msg, sig).is_ok())
}

/// Checks that `basic` is signed by `issuer` (DER) or by a responder it
/// delegated to; `now`: Unix seconds, for the responder's validity. The
/// message says why not.
pub fn check(basic: &BasicOcspResponse, issuer: &[u8], now: i64) -> Result<(), String> {
    let tbs = basic
        .tbs_response_data
        .to_der()
        .map_err(|e| format!("the response does not re-encode ({e})"))?;
    let oid = basic.signature_algorithm.oid.to_string();
    if algorithms(&oid).is_empty() {
        return Err(format!("its signature algorithm {oid} is not supported"));
    }
    let sig = basic.signature.raw_bytes();
    if signed_by(issuer, &oid, &tbs, sig) {
        return Ok(());
    }
    let (_, ca) = x509_parser::parse_x509_certificate(issuer)
        .map_err(|_| "the issuer certificate does not parse")?;
    let mut why = "its signature does not verify with the issuer's key".to_owned();
    for responder in basic.certs.iter().flatten() {
        let Ok(der) = responder.to_der() else {
            continue;
        };
        match delegated(&der, &ca, issuer, now) {
            Ok(()) if signed_by(&der, &oid, &tbs, sig) => return Ok(()),
            Ok(()) => {
                why =
                    "its signature does not verify with the issuer's key or its responder's".into()
            }
            Err(Some(w)) => why = w,
            // The issuer's own certificate, sent along: already tried.
            Err(None) => {}
        }
    }
    Err(why)
}

/// Is `der` a responder certificate `ca` delegated OCSP signing to, valid
/// at `now`? `Err(None)`: it is the issuer's own certificate.
fn delegated(
    der: &[u8],
    ca: &X509Certificate<'_>,
    ca_der: &[u8],
    now: i64,
) -> Result<(), Option<String>> {
    let (_, r) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| Some("its responder certificate does not parse".to_owned()))?;
    if r.subject().as_raw() == ca.subject().as_raw() && r.public_key().raw == ca.public_key().raw {
        return Err(None);
    }
    let name = r.subject().to_string();
    if r.issuer().as_raw() != ca.subject().as_raw() {
        return Err(Some(format!(
            "its responder \"{name}\" was not issued by the certificate's issuer \"{}\"",
            ca.subject()
        )));
    }
    let ocsp_signing = r
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|e| e.value.ocsp_signing);
    if !ocsp_signing {
        return Err(Some(format!(
            "its responder \"{name}\" lacks the OCSPSigning extended key usage"
        )));
    }
    let v = r.validity();
    if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
        return Err(Some(format!(
            "its responder certificate \"{name}\" is not valid now"
        )));
    }
    let oid = r.signature_algorithm.algorithm.to_id_string();
    if !signed_by(
        ca_der,
        &oid,
        r.tbs_certificate.as_ref(),
        &r.signature_value.data,
    ) {
        return Err(Some(format!(
            "its responder certificate \"{name}\" is not signed by the certificate's issuer"
        )));
    }
    Ok(())
}
