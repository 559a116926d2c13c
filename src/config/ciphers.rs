//! Cipher suite names: the suites rustls offers, under each of the names
//! operators know them by (rustls's, IANA's as Java and Jetty write them,
//! OpenSSL's as Genesys's `cipher-list` writes them). A name that is not one
//! of them is refused with the list of what can be had: rustls offers only
//! AEAD suites with forward secrecy, so RSA key exchange, CBC, RC4, 3DES and
//! the like cannot be honoured.

/// (rustls name, IANA name, OpenSSL name) of every suite rustls offers.
pub const SUITES: &[(&str, &str, &str)] = &[
    (
        "TLS13_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
    ),
    (
        "TLS13_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
    ),
    (
        "TLS13_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ),
];

/// Is this rustls name a TLS 1.3 suite?
pub fn is_tls13(rustls_name: &str) -> bool {
    rustls_name.starts_with("TLS13_")
}

/// The rustls name of a suite written in any of its three forms.
pub fn suite(name: &str) -> Result<&'static str, String> {
    let n = name.trim();
    if let Some((r, _, _)) = SUITES
        .iter()
        .find(|(r, i, o)| [*r, *i, *o].iter().any(|x| x.eq_ignore_ascii_case(n)))
    {
        return Ok(r);
    }
    const KEYWORDS: &[&str] = &[
        "ALL",
        "DEFAULT",
        "HIGH",
        "MEDIUM",
        "LOW",
        "EXPORT",
        "COMPLEMENTOFALL",
        "COMPLEMENTOFDEFAULT",
        "SECLEVEL",
    ];
    let word = n.trim_start_matches(['!', '+', '-', '@']);
    if n.starts_with(['!', '+', '-', '@'])
        || KEYWORDS
            .iter()
            .any(|k| word.to_ascii_uppercase().starts_with(k))
        || [
            "aNULL", "eNULL", "NULL", "kRSA", "aRSA", "ECDHE", "EECDH", "AESGCM", "CHACHA20",
            "SHA256", "SHA384",
        ]
        .contains(&word)
    {
        return Err(format!(
            "{n:?} is an OpenSSL selection rule, not a suite: list the suites by name ({})",
            openssl_names()
        ));
    }
    Err(format!(
        "{n:?} is not a suite rustls offers (only AEAD suites with ECDHE key exchange): use {}",
        openssl_names()
    ))
}

/// The OpenSSL names, for messages.
pub fn openssl_names() -> String {
    SUITES
        .iter()
        .map(|(_, _, o)| *o)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_suite_is_known_by_its_rustls_iana_and_openssl_names() {
        assert_eq!(SUITES.len(), 9);
        for (r, i, o) in SUITES {
            assert_eq!(suite(r), Ok(*r));
            assert_eq!(suite(i), Ok(*r));
            assert_eq!(suite(o), Ok(*r));
            assert_eq!(suite(&o.to_ascii_lowercase()), Ok(*r));
        }
    }

    #[test]
    fn a_suite_rustls_lacks_is_refused_with_what_it_offers() {
        assert_eq!(
            suite("AES256-SHA").unwrap_err(),
            format!("\"AES256-SHA\" is not a suite rustls offers (only AEAD suites with ECDHE key exchange): use {}", openssl_names())
        );
        assert!(suite("TLS_RSA_WITH_AES_128_CBC_SHA").is_err());
    }

    #[test]
    fn an_openssl_rule_is_refused_as_a_rule() {
        for rule in ["HIGH", "!aNULL", "DEFAULT", "@SECLEVEL=2"] {
            assert!(
                suite(rule)
                    .unwrap_err()
                    .contains("is an OpenSSL selection rule, not a suite"),
                "{rule}"
            );
        }
    }
}
