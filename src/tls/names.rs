//! Certificate name matching: does a name a certificate carries (maybe a
//! `*.` wildcard) cover a host? The one rule behind SNI selection
//! (`server`), `listen_tls.allow` DNS entries (`identity`) and the CN
//! fallback (`policy`), kept below all three.

/// Does certificate name `pattern` (maybe `*.example.com`) cover `host`?
pub fn name_matches(pattern: &str, host: &str) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    match (pattern.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => {
            !label.is_empty() && suffix.eq_ignore_ascii_case(rest)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn wildcard_covers_exactly_one_label() {
        assert!(name_matches("*.example.com", "gms.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(name_matches("GMS.example.com", "gms.EXAMPLE.com"));
        assert!(!name_matches("gms.example.com", "web.example.com"));
    }
}
