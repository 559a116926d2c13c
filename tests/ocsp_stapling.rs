//! OCSP stapling (`ocsp = "path"`): responses made by a real responder
//! (`openssl ocsp -index … -rsigner …`), seen stapled by a real client
//! (`openssl s_client -status`), followed on change, refused at load when
//! for another certificate, and warned about when stale.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use der::{Decode, Encode};

/// The CA's files as the `openssl ocsp` responder needs them.
struct Responder {
    ca: PathBuf,
    key: PathBuf,
}

impl Responder {
    fn new(dir: &Path, ca: &Ca) -> Responder {
        Responder {
            ca: pki::write(dir, "ca-cert.pem", &ca.cert_pem()).unwrap(),
            key: pki::write(dir, "ca.key", &ca.key_pem()).unwrap(),
        }
    }

    /// A DER response for `cert` ("good", next update in `days`), made by
    /// `openssl ocsp` as a responder over an index that lists `cert`.
    fn respond(&self, dir: &Path, cert: &Path, days: u32, out: &str) -> PathBuf {
        self.respond_as(dir, cert, days, out, false)
    }

    /// As [`Responder::respond`]; `revoked`: the index lists `cert` as revoked.
    fn respond_as(&self, dir: &Path, cert: &Path, days: u32, out: &str, revoked: bool) -> PathBuf {
        let serial = openssl(&["x509", "-noout", "-serial", "-in"], cert);
        let serial = serial.trim().trim_start_matches("serial=").to_owned();
        let index = dir.join(format!("{out}.index"));
        let entry = if revoked {
            format!("R\t351231000000Z\t251201000000Z\t{serial}\tunknown\t/CN=x\n")
        } else {
            format!("V\t351231000000Z\t\t{serial}\tunknown\t/CN=x\n")
        };
        std::fs::write(&index, entry).unwrap();
        let req = dir.join(format!("{out}.req"));
        run(Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&self.ca)
            .arg("-cert")
            .arg(cert)
            .arg("-reqout")
            .arg(&req));
        let resp = dir.join(out);
        run(Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(&index)
            .arg("-rsigner")
            .arg(&self.ca)
            .arg("-rkey")
            .arg(&self.key)
            .arg("-CA")
            .arg(&self.ca)
            .arg("-reqin")
            .arg(&req)
            .arg("-respout")
            .arg(&resp)
            .args(["-ndays", &days.to_string()]));
        resp
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("openssl");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(args: &[&str], file: &Path) -> String {
    run(Command::new("openssl").args(args).arg(file))
}

/// `openssl s_client -status` to `port`; returns its output.
fn s_client_status(port: u16, ca: &Path, version: &str) -> String {
    s_client(port, ca, &["-status", version]).1
}

fn listen_route(name: &str, port: u16, listen_tls: &str) -> String {
    common::listen_route(name, port, 9, listen_tls)
}

/// `tls-sidecar check -c config`: (exit code, stdout, stderr).
fn check(config: &Path) -> (i32, String, String) {
    cli(&[&"check", &"-c", &config])
}

/// Rewrites the first SingleResponse of the DER response in `from` into
/// `to` (its signature then no longer holds: the sidecar leaves that to
/// the client, and these tests are about what the sidecar checks).
fn edit(from: &Path, to: &Path, change: impl FnOnce(&mut x509_ocsp::SingleResponse)) {
    let mut resp = x509_ocsp::OcspResponse::from_der(&std::fs::read(from).unwrap()).unwrap();
    let bytes = resp.response_bytes.as_mut().unwrap();
    let mut basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    change(&mut basic.tbs_response_data.responses[0]);
    bytes.response = der::asn1::OctetString::new(basic.to_der().unwrap()).unwrap();
    std::fs::write(to, resp.to_der().unwrap()).unwrap();
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_status_sees_the_stapled_response_and_it_follows_the_file() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let responder = Responder::new(d, &pki.ca);
    // The chain holds the issuer, so the issuer key hash is checked too.
    let chain = pki::write(
        d,
        "chain.pem",
        &format!("{}{}", pki.server_leaf.cert_pem, pki.ca.cert_pem()),
    )
    .unwrap();
    let resp = responder.respond(d, &pki.server.0, 1, "server.ocsp");
    let p = free_port();
    let plain = free_port();
    let routes = format!(
        "{}{}",
        listen_route(
            "stapled",
            p,
            &format!(
                "cert = \"{}\"\nkey = \"{}\"\nocsp = \"{}\"",
                chain.display(),
                pki.server.1.display(),
                resp.display()
            )
        ),
        listen_route("unstapled", plain, &pki.listen_tls())
    );
    let s = Sidecar::start(d, &routes);

    for v in ["-tls1_3", "-tls1_2"] {
        let out = s_client_status(p, &pki.ca_path, v);
        assert!(
            out.contains("OCSP Response Status: successful (0x0)"),
            "{v}:\n{out}"
        );
        assert!(out.contains("Cert Status: good"), "{v}:\n{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{v}:\n{out}");
    }
    let out = s_client_status(plain, &pki.ca_path, "-tls1_3");
    assert!(out.contains("OCSP response: no response sent"), "{out}");

    let labels = [("route", "stapled"), ("subject", "CN=localhost")];
    let next = s
        .metric("tls_sidecar_ocsp_next_update_timestamp_seconds", &labels)
        .expect("the nextUpdate gauge");
    assert!(
        (next - (now() + 86_400.0)).abs() < 3600.0,
        "nextUpdate {next}"
    );

    // A fresh response, written over the file, is stapled from then on.
    let fresh = responder.respond(d, &pki.server.0, 3, "fresh.ocsp");
    std::fs::rename(&fresh, &resp).unwrap();
    let deadline = Instant::now() + patience(20);
    loop {
        let now_next = s
            .metric("tls_sidecar_ocsp_next_update_timestamp_seconds", &labels)
            .unwrap();
        if now_next > next + 86_400.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new response was not picked up:\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = s_client_status(p, &pki.ca_path, "-tls1_3");
    assert!(out.contains("Cert Status: good"), "{out}");
    // s_client prints "Next Update: Dec  4 14:41:56 2026 GMT".
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(3);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let want = format!(
        "Next Update: {} {:>2} ",
        MONTHS[t.month() as usize - 1],
        t.day()
    );
    assert!(out.contains(&want), "{want:?} not in:\n{out}");
}

#[test]
fn an_ocsp_response_for_another_certificate_or_not_a_response_is_refused() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let responder = Responder::new(d, &pki.ca);
    let for_client = responder.respond(d, &pki.client.0, 1, "client.ocsp");
    let garbage = pki::write(d, "garbage.ocsp", "not DER at all").unwrap();
    // Right serial and issuer name, another issuer key: refused when the
    // chain file holds the issuer (its key hash is then checked).
    let chain = pki::write(
        d,
        "chain.pem",
        &format!("{}{}", pki.server_leaf.cert_pem, pki.ca.cert_pem()),
    )
    .unwrap();
    let other_key = d.join("other-key.ocsp");
    edit(
        &responder.respond(d, &pki.server.0, 1, "server.ocsp"),
        &other_key,
        |r| {
            r.cert_id.issuer_key_hash = der::asn1::OctetString::new(vec![0u8; 20]).unwrap();
        },
    );
    let config = d.join("t.toml");
    let cases = [
        (
            format!("{}\nocsp = \"{}\"", pki.listen_tls(), for_client.display()),
            "listen_tls.ocsp",
            format!(
                "{}: the response is for another certificate: it answers for serial",
                for_client.display()
            ),
        ),
        (
            format!(
                "certs = [{{ cert = \"{}\", key = \"{}\", ocsp = \"{}\" }}]",
                pki.server.0.display(),
                pki.server.1.display(),
                garbage.display()
            ),
            "listen_tls.certs[0].ocsp",
            format!("{}: not a DER OCSP response", garbage.display()),
        ),
        (
            format!(
                "cert = \"{}\"\nkey = \"{}\"\nocsp = \"{}\"",
                chain.display(),
                pki.server.1.display(),
                other_key.display()
            ),
            "listen_tls.ocsp",
            format!(
                "{}: the response is for another certificate: it answers for serial",
                other_key.display()
            ),
        ),
    ];
    for (tls, key, words) in cases {
        std::fs::write(&config, listen_route("r", free_port(), &tls)).unwrap();
        let (code, out, err) = check(&config);
        assert_eq!(code, 1, "{out}{err}");
        let place = format!(
            "error: {}: route \"r\": key `{key}`: {words}",
            config.display()
        );
        assert!(
            err.starts_with(&place),
            "{err:?} does not start with {place:?}"
        );
    }
}

#[test]
fn a_stale_response_is_stapled_with_a_warning_and_check_shows_it() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let responder = Responder::new(d, &pki.ca);
    let good = responder.respond(d, &pki.server.0, 1, "good.ocsp");
    // The same response with its nextUpdate moved into the past.
    let stale = d.join("stale.ocsp");
    let at = |secs| {
        x509_ocsp::OcspGeneralizedTime(
            der::asn1::GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).unwrap(),
        )
    };
    edit(&good, &stale, |r| {
        r.this_update = at(1_690_000_000);
        r.next_update = Some(at(1_700_000_000));
    });

    let config = d.join("t.toml");
    let tls = format!("{}\nocsp = \"{}\"", pki.listen_tls(), stale.display());
    std::fs::write(&config, listen_route("r", free_port(), &tls)).unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    let warning = format!(
        "warning: route \"r\": key `listen_tls.ocsp`: the OCSP response in {} for \"CN=localhost\" is stale: its nextUpdate was 2023-11-14T22:13:20Z",
        stale.display()
    );
    assert!(out.contains(&warning), "{out}");
    assert!(
        out.contains(" ocsp=good(next-update 2023-11-14T22:13:20Z) "),
        "{out}"
    );
    assert!(out.ends_with("config OK (1 warning(s))\n"), "{out}");

    // A response that says "revoked" is stapled too (clients must learn
    // it), and warned about.
    let revoked = responder.respond_as(d, &pki.server.0, 1, "revoked.ocsp", true);
    std::fs::write(
        &config,
        listen_route(
            "r",
            free_port(),
            &tls.replace(&stale.display().to_string(), &revoked.display().to_string()),
        ),
    )
    .unwrap();
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("the OCSP response in {} for \"CN=localhost\" says the certificate is REVOKED: clients that check will refuse it", revoked.display())), "{out}");
    assert!(out.contains(" ocsp=revoked(next-update "), "{out}");
}
