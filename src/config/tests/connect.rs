//! `[route.connect_tls]`: how the leg starts (direct, a built-in upgrade
//! profile, a script) and how the upstream is verified.

use super::*;

// ---------------------------------------------------------------------------
// [route.connect_tls]: start and upgrade

#[test]
fn unknown_start_values_are_refused() {
    refused(
        &connect_tls("start = \"later\""),
        Some("r"),
        Some("connect_tls.start"),
        "failed to parse: \"later\" is not one of \"direct\", \"upgrade\"",
    );
}

#[test]
fn start_upgrade_without_upgrade_is_refused() {
    refused(
        &connect_tls("start = \"upgrade\""),
        Some("r"),
        Some("connect_tls.upgrade"),
        "start = \"upgrade\" needs an upgrade profile",
    );
}

#[test]
fn an_upgrade_profile_without_start_upgrade_is_refused() {
    for start in ["", "start = \"direct\"\n"] {
        refused(
            &connect_tls(&format!("{start}upgrade = \"smtp\"")),
            Some("r"),
            Some("connect_tls.upgrade"),
            "an upgrade profile needs start = \"upgrade\"",
        );
    }
}

#[test]
fn an_unknown_upgrade_profile_is_refused_with_the_accepted_words() {
    refused(
        &connect_tls("start = \"upgrade\"\nupgrade = \"smtps\""),
        Some("r"),
        Some("connect_tls.upgrade"),
        "failed to parse: \"smtps\" is not one of \"postgres\", \"smtp\", \"pop3\", \"imap\", \"ftp\", \"ldap\", \"script\"",
    );
}

#[test]
fn every_built_in_profile_is_read_by_its_name() {
    for &profile in Profile::ALL {
        let c = load(&connect_tls(&format!(
            "start = \"upgrade\"\nupgrade = \"{profile}\""
        )))
        .unwrap();
        assert!(matches!(
            &the_connect_tls(&c).start,
            Start::Upgrade(Upgrade::Builtin { profile: p, .. }) if *p == profile
        ));
    }
}

#[test]
fn upgrade_script_without_a_script_is_refused() {
    for script in ["", "\nscript = []"] {
        refused(
            &connect_tls(&format!(
                "start = \"upgrade\"\nupgrade = \"script\"{script}"
            )),
            Some("r"),
            Some("connect_tls.script"),
            "upgrade = \"script\" needs a non-empty script = [ ... ]",
        );
    }
}

#[test]
fn a_script_with_a_built_in_profile_is_refused() {
    refused(
        &connect_tls("start = \"upgrade\"\nupgrade = \"postgres\"\nscript = [{ send = \"x\" }]"),
        Some("r"),
        Some("connect_tls.script"),
        "a script is only used with upgrade = \"script\", not \"postgres\"",
    );
}

#[test]
fn a_script_without_start_upgrade_is_refused() {
    refused(
        &connect_tls("script = [{ send = \"x\" }]"),
        Some("r"),
        Some("connect_tls.script"),
        "a script needs start = \"upgrade\" and upgrade = \"script\"",
    );
}

#[test]
fn upgrade_hostname_is_refused_where_no_built_in_profile_would_use_it() {
    for lines in [
        "upgrade_hostname = \"gms\"",
        "start = \"upgrade\"\nupgrade = \"script\"\nscript = [{ send = \"x\" }]\nupgrade_hostname = \"gms\"",
    ] {
        refused(
            &connect_tls(lines),
            Some("r"),
            Some("connect_tls.upgrade_hostname"),
            "upgrade_hostname is only used with start = \"upgrade\" and a built-in upgrade profile",
        );
    }
}

#[test]
fn a_built_in_profile_takes_its_hostname_or_the_default() {
    let c = load(&connect_tls(
        "start = \"upgrade\"\nupgrade = \"smtp\"\nupgrade_hostname = \"gms\"",
    ))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).start,
        Start::Upgrade(Upgrade::Builtin {
            profile: Profile::Smtp,
            hostname: "gms".into()
        })
    );
    let c = load(&connect_tls("start = \"upgrade\"\nupgrade = \"postgres\"")).unwrap();
    assert_eq!(
        the_connect_tls(&c).start,
        Start::Upgrade(Upgrade::Builtin {
            profile: Profile::Postgres,
            hostname: "tls-sidecar".into()
        })
    );
    assert_eq!(the_route(&c).connect_start(), "upgrade");
}

#[test]
fn an_upgrade_script_is_kept_in_order() {
    let c = load(&connect_tls(
        "start = \"upgrade\"\nupgrade = \"script\"\nscript = [{ send = \"STARTTLS\\r\\n\" }, { expect = \"OK\" }]",
    ))
    .unwrap();
    let Start::Upgrade(Upgrade::Script(steps)) = &the_connect_tls(&c).start else {
        panic!("not a script");
    };
    assert_eq!(
        steps,
        &vec![
            script::ScriptStep::Send(b"STARTTLS\r\n".to_vec()),
            script::ScriptStep::Line {
                prefix: b"OK".to_vec(),
                multiline: false,
                skip: None,
                relay: false
            },
        ]
    );
}

// ---------------------------------------------------------------------------
// [route.connect_tls]: verification

#[test]
fn each_verify_mode_is_read() {
    for (written, want) in [
        ("full", Verify::Full),
        ("chain", Verify::Chain),
        ("none", Verify::None),
    ] {
        let c = load(&connect_tls(&format!("verify = \"{written}\""))).unwrap();
        assert_eq!(the_connect_tls(&c).verify, want);
        assert_eq!(want.as_str(), written);
    }
}

#[test]
fn unknown_verify_values_are_refused() {
    for bad in ["maybe", "Full", "strict"] {
        refused(
            &connect_tls(&format!("verify = \"{bad}\"")),
            Some("r"),
            Some("connect_tls.verify"),
            &format!(
                "failed to parse: \"{bad}\" is not one of \"full\", \"chain\", \"pin\", \"none\""
            ),
        );
    }
}

#[test]
fn verify_pin_without_pins_is_refused() {
    for pins in ["", "\npins = []"] {
        refused(
            &connect_tls(&format!("verify = \"pin\"{pins}")),
            Some("r"),
            Some("connect_tls.pins"),
            "verify = \"pin\" needs pins = [\"sha256/BASE64\", ...]",
        );
    }
}

#[test]
fn pins_with_another_verify_mode_are_refused() {
    let pin = format!("sha256/{}=", "A".repeat(43));
    for (verify, named) in [
        ("", "full"),
        ("verify = \"full\"\n", "full"),
        ("verify = \"chain\"\n", "chain"),
        ("verify = \"none\"\n", "none"),
    ] {
        refused(
            &connect_tls(&format!("{verify}pins = [\"{pin}\"]")),
            Some("r"),
            Some("connect_tls.pins"),
            &format!("pins are only used with verify = \"pin\", not \"{named}\""),
        );
    }
}

#[test]
fn bad_pins_are_refused_naming_their_index() {
    let good = format!("sha256/{}=", "A".repeat(43));
    for (bad, words) in [
        ("md5/AAAA".to_owned(), "a pin is written \"sha256/BASE64\""),
        (format!("sha256/{}", "!".repeat(44)), "not valid base64"),
        (
            "sha256/AAAA".to_owned(),
            "a SHA-256 pin is 32 bytes, this is 3",
        ),
        (
            good.trim_start_matches("sha256/").to_owned(),
            "a pin is written \"sha256/BASE64\"",
        ),
    ] {
        refused(
            &connect_tls(&format!("verify = \"pin\"\npins = [\"{good}\", \"{bad}\"]")),
            Some("r"),
            Some("connect_tls.pins[1]"),
            words,
        );
    }
}

#[test]
fn good_pins_are_decoded_to_32_bytes_each() {
    let zeros = format!("sha256/{}=", "A".repeat(43));
    let ones = format!("sha256/{}", "/".repeat(42) + "8=");
    let c = load(&connect_tls(&format!(
        "verify = \"pin\"\npins = [\"{zeros}\", \"{ones}\"]"
    )))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).verify,
        Verify::Pin(vec![[0; 32], [0xff; 32]])
    );
}

#[test]
fn a_server_name_must_be_a_dns_name_or_an_ip_address() {
    refused(
        &connect_tls("server_name = \"not a name!\""),
        Some("r"),
        Some("connect_tls.server_name"),
        "\"not a name!\" is neither a DNS name nor an IP address",
    );
    let c = load(&connect_tls("server_name = \"192.0.2.10\"\nca = \"/etc/ca.pem\"\ncrl = [\"/etc/a.crl\", \"/etc/b.crl\"]")).unwrap();
    let t = the_connect_tls(&c);
    assert_eq!(t.server_name.as_deref(), Some("192.0.2.10"));
    assert_eq!(t.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert_eq!(t.crl, [Path::new("/etc/a.crl"), Path::new("/etc/b.crl")]);
}

#[test]
fn name_check_cn_fallback_is_off_by_default_and_only_for_verify_full() {
    let c = load(&connect_tls("")).unwrap();
    assert!(!the_connect_tls(&c).cn_fallback);
    let c = load(&connect_tls("name_check_cn_fallback = true\n")).unwrap();
    assert!(the_connect_tls(&c).cn_fallback);
    for named in ["chain", "none"] {
        refused(
            &connect_tls(&format!(
                "verify = \"{named}\"\nname_check_cn_fallback = true\n"
            )),
            Some("r"),
            Some("connect_tls.name_check_cn_fallback"),
            &format!("name_check_cn_fallback = true changes how the name is checked, and verify = \"{named}\" checks no name; use it with verify = \"full\""),
        );
    }
}
