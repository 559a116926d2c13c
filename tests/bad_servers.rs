//! Bad remote servers, made with the openssl CLI (tests/fixtures/bad-servers.sh)
//! and served by `openssl s_server`, against every verify mode. Each is
//! refused or accepted exactly as the mode says, with the matching reason
//! label; the manual's hardening page (docs/src/evidence.md) carries the same table.

mod common;

use common::*;

/// (case, extra s_server args, expected outcome per mode: full, chain, pin, none).
/// "ok" = relayed; anything else = the `reason` label of the refusal.
const TABLE: &[(&str, &[&str], [&str; 4])] = &[
    ("good", &[], ["ok", "ok", "ok", "ok"]),
    ("expired", &[], ["expired", "expired", "ok", "ok"]),
    (
        "notyet",
        &[],
        ["not_yet_valid", "not_yet_valid", "ok", "ok"],
    ),
    ("wrongname", &[], ["name_mismatch", "ok", "ok", "ok"]),
    ("selfsigned", &[], ["unknown_ca", "unknown_ca", "ok", "ok"]),
    ("untrusted", &[], ["unknown_ca", "unknown_ca", "ok", "ok"]),
    ("nointer", &[], ["unknown_ca", "unknown_ca", "ok", "ok"]),
    (
        "badinter",
        &[],
        ["bad_certificate", "bad_certificate", "ok", "ok"],
    ),
    (
        "sha1",
        &["-cipher", "DEFAULT@SECLEVEL=0"],
        ["bad_certificate", "bad_certificate", "ok", "ok"],
    ),
    (
        "rsa1024",
        &["-cipher", "DEFAULT@SECLEVEL=0"],
        [
            "bad_certificate",
            "bad_certificate",
            "bad_certificate",
            "bad_certificate",
        ],
    ),
    (
        "oldtls",
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
        [
            "protocol_version",
            "protocol_version",
            "protocol_version",
            "protocol_version",
        ],
    ),
    (
        "wantsclient",
        &["-Verify", "1", "-verify_return_error"],
        [
            "no_client_cert",
            "no_client_cert",
            "no_client_cert",
            "no_client_cert",
        ],
    ),
];

const MODES: [&str; 4] = ["full", "chain", "pin", "none"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_server_is_refused_or_accepted_exactly_as_each_verify_mode_says() {
    let dir = tmpdir();
    let d = dir.path();
    let made = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bad-servers.sh"
        ))
        .arg(d)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let ca = d.join("ca.pem").display().to_string();

    let mut servers = Vec::new();
    let mut routes = String::new();
    let mut expected = Vec::new();
    for (case, extra, outcomes) in TABLE {
        let cert = d.join(format!("{case}.pem")).display().to_string();
        let key = d.join(format!("{case}.key")).display().to_string();
        // -cert sends the leaf only; -cert_chain adds what else the file holds.
        let mut args = vec![
            "-cert",
            cert.as_str(),
            "-cert_chain",
            cert.as_str(),
            "-key",
            key.as_str(),
            "-quiet",
            "-rev",
        ];
        args.extend_from_slice(extra);
        let srv = OpensslServer::start(&args);
        let leaf = load_chain(std::path::Path::new(&cert))[0].clone();
        let pin = tls_sidecar::tls::material::pin_string(
            &tls_sidecar::tls::material::spki_sha256(&leaf).unwrap(),
        );
        for (mode, want) in MODES.iter().zip(outcomes) {
            let name = format!("{case}-{mode}");
            let port = free_port();
            let tls = match *mode {
                "pin" => format!("verify = \"pin\"\npins = [\"{pin}\"]"),
                "none" => "verify = \"none\"".to_owned(),
                m => format!("verify = \"{m}\"\nca = \"{ca}\""),
            };
            routes.push_str(&route(
                &name,
                port,
                &[format!("localhost:{}", srv.port)],
                &tls,
            ));
            expected.push((name, port, *want));
        }
        servers.push(srv);
    }
    // One more: a pin that matches nothing.
    let good_port = servers[0].port;
    let port = free_port();
    routes.push_str(&route(
        "pin-mismatch",
        port,
        &[format!("localhost:{good_port}")],
        "verify = \"pin\"\npins = [\"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]",
    ));
    expected.push(("pin-mismatch".into(), port, "pin_mismatch"));

    let s = Sidecar::start(d, &routes);
    let mut wrong = Vec::new();
    let mut outcomes = Vec::new();
    for (name, port, want) in &expected {
        let got = line_through(*port, b"hello\n").await.ok();
        let outcome = if got.as_deref() == Some(b"olleh\n".as_slice()) {
            "ok".to_owned()
        } else {
            // Wait for the refusal to be counted, then read its reason.
            let mut reason = None;
            for _ in 0..100 {
                let m = s.metrics();
                reason = tls_sidecar::labels::Reason::ALL.iter().find(|r| {
                    metric_value(
                        &m,
                        "tls_sidecar_handshake_errors_total",
                        &[("route", name), ("side", "connect"), ("reason", r.as_str())],
                    )
                    .is_some_and(|v| v >= 1.0)
                });
                if reason.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            reason.map_or_else(
                || format!("refused, uncounted ({got:?})"),
                |r| r.to_string(),
            )
        };
        if outcome != *want {
            wrong.push(format!("{name}: want {want}, got {outcome}"));
        }
        outcomes.push(outcome);
    }
    // One summary row per bad server: its four verify modes side by side.
    let summary =
        Summary::new("every_bad_server_is_refused_or_accepted_exactly_as_each_verify_mode_says");
    for (i, (case, extra, want)) in TABLE.iter().enumerate() {
        let got = &outcomes[i * MODES.len()..(i + 1) * MODES.len()];
        let served = if extra.is_empty() {
            String::new()
        } else {
            format!(" (`{}`)", extra.join(" "))
        };
        summary.row(
            &format!("bad server: {case}"),
            &format!(
                "`openssl s_server` with the `{case}` certificate{served}; one route per verify mode (full, chain, pin, none)"
            ),
            &want.join(", "),
            &got.join(", "),
            got == want,
            "",
        );
    }
    let last = outcomes.last().unwrap();
    summary.row(
        "bad server: pin matches nothing",
        "the good server behind `verify = \"pin\"` with a pin of another key",
        "pin_mismatch",
        last,
        last == "pin_mismatch",
        "",
    );
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), s.logs());
    // The log line names the failed check (waited for: a line can trail
    // the metric the outcomes were read from).
    for words in [
        "route=expired-full",
        "the certificate has expired",
        "does not cover the expected name",
        "matches none of the pins",
    ] {
        assert!(s.has_log(words), "no line says {words:?}:\n{}", s.logs());
    }
}
