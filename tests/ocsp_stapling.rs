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
        self.respond_at(dir, cert, days, out, revoked, None)
    }

    /// As [`Responder::respond_as`], the responder's clock moved by
    /// `offset` (faketime's relative form: "-3d", "+2d", "-86380").
    fn respond_at(
        &self,
        dir: &Path,
        cert: &Path,
        days: u32,
        out: &str,
        revoked: bool,
        offset: Option<&str>,
    ) -> PathBuf {
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
        let mut cmd = match offset {
            Some(o) => {
                let mut c = Command::new("faketime");
                c.args(["-f", o, "openssl"]);
                c
            }
            None => Command::new("openssl"),
        };
        run(cmd
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

/// The chain file (leaf, then the CA) of the test's server certificate.
fn chain_of(d: &Path, pki: &Pki, leaf: &Leaf, name: &str) -> PathBuf {
    pki::write(d, name, &format!("{}{}", leaf.cert_pem, pki.ca.cert_pem())).unwrap()
}

fn check_warns(config: &Path, route: &str, warning: &str) -> String {
    let (code, out, err) = check(config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(warning), "{warning:?} not in:\n{out}");
    let _ = route;
    out
}

#[test]
fn a_response_for_another_certificate_unsigned_or_not_a_response_is_never_stapled() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let responder = Responder::new(d, &pki.ca);
    let chain = chain_of(d, &pki, &pki.server_leaf, "chain.pem");
    let for_client = responder.respond(d, &pki.client.0, 1, "client.ocsp");
    let garbage = pki::write(d, "garbage.ocsp", "not DER at all").unwrap();
    // Right serial and issuer name, another issuer key.
    let other_key = d.join("other-key.ocsp");
    let good = responder.respond(d, &pki.server.0, 1, "server.ocsp");
    edit(&good, &other_key, |r| {
        r.cert_id.issuer_key_hash = der::asn1::OctetString::new(vec![0u8; 20]).unwrap();
    });
    // The right certificate, a nextUpdate moved: the signature fails.
    let forged = d.join("forged.ocsp");
    edit(&good, &forged, |r| {
        r.next_update = Some(x509_ocsp::OcspGeneralizedTime(
            der::asn1::GeneralizedTime::from_unix_duration(Duration::from_secs(4_000_000_000))
                .unwrap(),
        ));
    });
    // Signed by another CA's key.
    let other_ca = Ca::new("Other CA");
    let stranger = Responder::new(&d.join("x").tap_mkdir(), &other_ca);
    let foreign = stranger.respond(d, &pki.server.0, 1, "foreign.ocsp");
    let config = d.join("t.toml");
    let tls = |ocsp: &Path| {
        format!(
            "cert = \"{}\"\nkey = \"{}\"\nocsp = \"{}\"",
            chain.display(),
            pki.server.1.display(),
            ocsp.display()
        )
    };
    let cases = [
        (
            &for_client,
            "the response is for another certificate: it answers for serial",
        ),
        (&garbage, "not a DER OCSP response"),
        (
            &other_key,
            "the response is for another certificate: it answers for serial",
        ),
        (&forged, "its signature does not verify"),
        (&foreign, "the response is for another certificate"),
    ];
    for (file, words) in cases {
        std::fs::write(&config, listen_route("r", free_port(), &tls(file))).unwrap();
        check_warns(
            &config,
            "r",
            &format!(
                "warning: route \"r\": key `listen_tls.ocsp`: the OCSP response in {} for \"CN=localhost\" is not stapled: {words}",
                file.display()
            ),
        );
    }
    // The certificate is served all the same, without a staple.
    let port = free_port();
    let _s = Sidecar::start(d, &listen_route("r", port, &tls(&forged)));
    let out = s_client_status(port, &pki.ca_path, "-tls1_3");
    assert!(out.contains("OCSP response: no response sent"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
}

trait TapMkdir {
    fn tap_mkdir(self) -> PathBuf;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_at_once_without_the_old_response() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let responder = Responder::new(d, &pki.ca);
    let chain = chain_of(d, &pki, &pki.server_leaf, "chain.pem");
    let resp = responder.respond(d, &pki.server.0, 1, "server.ocsp");
    let port = free_port();
    let routes = listen_route(
        "r",
        port,
        &format!(
            "cert = \"{}\"\nkey = \"{}\"\nocsp = \"{}\"",
            chain.display(),
            pki.server.1.display(),
            resp.display()
        ),
    );
    let s = Sidecar::start_top(d, "watch_config = true", &routes, &[]);
    assert!(s_client_status(port, &pki.ca_path, "-tls1_3").contains("Cert Status: good"));
    let labels = [("route", "r"), ("subject", "CN=localhost")];
    assert!(s
        .metric("tls_sidecar_ocsp_next_update_timestamp_seconds", &labels)
        .is_some());

    // The renewed certificate (same key file name, new serial) before its
    // OCSP response: served at once, without a staple.
    let renewed = pki.ca.leaf("localhost", &["localhost", "127.0.0.1"]);
    std::fs::write(&pki.server.1, &renewed.key_pem).unwrap();
    let tmp = chain_of(d, &pki, &renewed, "chain.pem.new");
    std::fs::rename(&tmp, &chain).unwrap();
    let serial: String = renewed.serial.iter().map(|b| format!("{b:02X}")).collect();
    let deadline = Instant::now() + patience(20);
    loop {
        let out = s_client(port, &pki.ca_path, &["-status", "-tls1_3", "-showcerts"]).1;
        let pem = openssl_x509_serial(&out);
        if pem.as_deref() == Some(serial.as_str()) {
            assert!(out.contains("OCSP response: no response sent"), "{out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served:\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        s.metric("tls_sidecar_ocsp_next_update_timestamp_seconds", &labels),
        None
    );
    assert!(s.wait_log(
        "is not stapled: the response is for another certificate",
        10
    ));
}

/// The serial of the first certificate `s_client -showcerts` printed.
fn openssl_x509_serial(s_client_out: &str) -> Option<String> {
    let begin = s_client_out.find("-----BEGIN CERTIFICATE-----")?;
    let end = s_client_out[begin..].find("-----END CERTIFICATE-----")? + begin + 25;
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    child
        .stdin
        .take()?
        .write_all(&s_client_out.as_bytes()[begin..end])
        .ok()?;
    let out = child.wait_with_output().ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("serial=")
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_from_another_day_are_not_stapled_and_one_is_dropped_when_it_goes_stale() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let responder = Responder::new(d, &pki.ca);
    let chain = chain_of(d, &pki, &pki.server_leaf, "chain.pem");
    // Made by the responder three days ago for one day, and two days ahead.
    let stale = responder.respond_at(d, &pki.server.0, 1, "stale.ocsp", false, Some("-3d"));
    let future = responder.respond_at(d, &pki.server.0, 1, "future.ocsp", false, Some("+2d"));
    // Made a day minus 25 s ago for one day: valid for 25 s more.
    let ending = responder.respond_at(d, &pki.server.0, 1, "ending.ocsp", false, Some("-86375"));
    let tls = |ocsp: &Path| {
        format!(
            "cert = \"{}\"\nkey = \"{}\"\nocsp = \"{}\"",
            chain.display(),
            pki.server.1.display(),
            ocsp.display()
        )
    };
    let config = d.join("t.toml");
    std::fs::write(&config, listen_route("r", free_port(), &tls(&stale))).unwrap();
    let out = check_warns(&config, "r", "is stale: its nextUpdate was ");
    assert!(
        out.contains("it is not stapled: fetch a fresh one"),
        "{out}"
    );
    assert!(out.contains(" ocsp=stale(next-update "), "{out}");
    std::fs::write(&config, listen_route("r", free_port(), &tls(&future))).unwrap();
    check_warns(&config, "r", "is not valid yet (thisUpdate ");

    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let routes = [
        listen_route("stale", p1, &tls(&stale)),
        listen_route("future", p2, &tls(&future)),
        listen_route("ending", p3, &tls(&ending)),
    ]
    .concat();
    let s = Sidecar::start(d, &routes);
    for p in [p1, p2] {
        let out = s_client_status(p, &pki.ca_path, "-tls1_3");
        assert!(out.contains("OCSP response: no response sent"), "{out}");
    }
    let metric = |route| {
        s.metric(
            "tls_sidecar_ocsp_next_update_timestamp_seconds",
            &[("route", route), ("subject", "CN=localhost")],
        )
    };
    assert_eq!((metric("stale"), metric("future")), (None, None));
    // Stapled while valid, then dropped the moment it goes stale.
    assert!(s_client_status(p3, &pki.ca_path, "-tls1_3").contains("Cert Status: good"));
    assert!(metric("ending").is_some());
    assert!(
        s.wait_log(
            "the OCSP response is no longer valid (nextUpdate passed): it is not stapled any more",
            60
        ),
        "{}",
        s.logs()
    );
    let out = s_client_status(p3, &pki.ca_path, "-tls1_3");
    assert!(out.contains("OCSP response: no response sent"), "{out}");
    assert_eq!(metric("ending"), None);
    let json = http_get(s.admin, "/status.json").unwrap().1;
    assert!(json.contains("\"state\": \"stale\""), "{json}");
}

#[test]
fn a_revoked_response_is_stapled_with_a_warning() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let responder = Responder::new(d, &pki.ca);
    let chain = chain_of(d, &pki, &pki.server_leaf, "chain.pem");
    let revoked = responder.respond_as(d, &pki.server.0, 1, "revoked.ocsp", true);
    let config = d.join("t.toml");
    let tls = format!(
        "cert = \"{}\"\nkey = \"{}\"\nocsp = \"{}\"",
        chain.display(),
        pki.server.1.display(),
        revoked.display()
    );
    std::fs::write(&config, listen_route("r", free_port(), &tls)).unwrap();
    let out = check_warns(&config, "r", &format!("the OCSP response in {} for \"CN=localhost\" says the certificate is REVOKED: clients that check will refuse it", revoked.display()));
    assert!(out.contains(" ocsp=revoked(next-update "), "{out}");
}
