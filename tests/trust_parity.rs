//! Trust parity (issue 23, item 1; the table is docs/src/trust.md): what
//! OpenSSL 3 (`s_client -verify_return_error -verify_hostname`) and JDK 17
//! (the default PKIX trust manager with HTTPS endpoint identification,
//! tests/fixtures/TrustParity.java) accept under the same trust and name,
//! the sidecar accepts, unless it refuses on purpose with a sentence that
//! names the cause and the fix. Every certificate is made at test time the
//! usual way, with `openssl req` / `openssl x509` / `openssl ca`, and each
//! case goes through all three against the same real peer: `openssl
//! s_server` upstream for the connect side; curl presenting the client
//! certificate for the listen side, against the sidecar, `openssl s_server
//! -Verify` and a JDK server.

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// An `openssl` command run in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (install it with tests/setup.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req -x509`: a self-signed certificate for `cn` (SAN DNS:cn),
/// which OpenSSL marks CA:TRUE. Writes NAME.pem and NAME.key.
fn self_signed(dir: &Path, name: &str, cn: &str) -> PathBuf {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let (subj, san) = (format!("/CN={cn}"), format!("subjectAltName=DNS:{cn}"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem,
            "-days", "10", "-subj", &subj, "-addext", &san,
        ],
    );
    dir.join(pem)
}

/// The test CA (ca.pem, ca.key), made with `openssl req -x509`.
fn ca(dir: &Path) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Parity CA",
        ],
    );
    dir.join("ca.pem")
}

/// A certificate the CA issues with `openssl x509 -req`: `ext` is the
/// -extfile's text (None: no -extfile, an X.509 v1 certificate), `more`
/// extra x509 options, `key` the -newkey argument. NAME.pem, NAME.key.
fn issue(dir: &Path, name: &str, subj: &str, ext: Option<&str>, more: &[&str], key: &str) {
    let (pem, k, csr) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    openssl(
        dir,
        &[
            "req", "-new", "-newkey", key, "-nodes", "-keyout", &k, "-out", &csr, "-subj", subj,
        ],
    );
    let extfile = format!("{name}.ext");
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "10",
        "-out",
        &pem,
    ];
    if let Some(ext) = ext {
        std::fs::write(dir.join(&extfile), ext).unwrap();
        args.extend(["-extfile", &extfile]);
    }
    args.extend(more);
    openssl(dir, &args);
}

/// A self-signed CA:TRUE certificate for localhost that expired in 2020,
/// made with `openssl ca -selfsign` (the one way to set past dates in
/// OpenSSL 3.0). expired.pem, expired.key.
fn expired_self_signed(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(dir.join("db/index.txt"), "").unwrap();
    std::fs::write(dir.join("db/serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=db/index.txt\nnew_certs_dir=db\nserial=db/serial\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "expired.key",
            "-out",
            "expired.csr",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "expired.key",
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-notext",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
        ],
    );
    dir.join("expired.pem")
}

/// `keytool -importcert`: a JKS or PKCS#12 trust store holding `pem`,
/// password "changeit" (in store.pw).
fn trust_store(dir: &Path, pem: &Path, name: &str, kind: &str) -> PathBuf {
    let store = dir.join(name);
    run_tool(
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "anchor",
            "-file",
            &pem.display().to_string(),
            "-keystore",
            &store.display().to_string(),
            "-storetype",
            kind,
            "-storepass",
            "changeit",
        ],
    );
    pki::write(dir, "store.pw", "changeit\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("store.pw"), std::fs::Permissions::from_mode(0o600)).unwrap();
    store
}

/// What a peer said of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused,
}
use Verdict::{Accepted, Refused};

/// OpenSSL's verdict: `s_client -verify_return_error -verify_hostname
/// NAME -CAfile CA` to `port`.
fn openssl_verdict(port: u16, ca: &Path, name: &str) -> Verdict {
    let (code, _) = s_client(
        port,
        ca,
        &["-verify_return_error", "-verify_hostname", name],
    );
    if code == 0 {
        Accepted
    } else {
        Refused
    }
}

/// The JDK's verdicts, one JVM for every (CA, name, port), in order: the
/// verdict and Java's words.
fn java_verdicts(cases: &[(&Path, &str, u16)]) -> Vec<(Verdict, String)> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/TrustParity.java");
    let mut cmd = Command::new("java");
    cmd.arg(&fixture).arg("client");
    for (ca, name, port) in cases {
        cmd.arg(ca).arg(name).arg(port.to_string());
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("java (openjdk-17-jdk-headless, tests/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let verdicts: Vec<(Verdict, String)> = text
        .lines()
        .zip(cases)
        .map(|(l, (_, _, port))| {
            let rest = l.strip_prefix(&format!("{port} ")).expect("PORT first");
            let v = if rest == "OK" { Accepted } else { Refused };
            (v, rest.to_owned())
        })
        .collect();
    assert_eq!(text.lines().count(), cases.len(), "{text}");
    verdicts
}

/// The sidecar's verdict on a connect route: a line through it to
/// `openssl s_server -rev` comes back reversed, or the route refuses.
async fn sidecar_verdict(port: u16) -> Verdict {
    match line_through(port, b"parity\n").await {
        Ok(b) if b == b"ytirap\n" => Accepted,
        Ok(b) if b.is_empty() => Refused,
        Err(_) => Refused,
        Ok(b) => panic!("unexpected answer {b:?}"),
    }
}

/// `openssl s_server -rev` with NAME.pem and NAME.key; `weak`: at security
/// level 0, so that OpenSSL serves a SHA-1 or 1024-bit certificate at all.
fn upstream(dir: &Path, name: &str, weak: bool) -> OpensslServer {
    let cert = dir.join(format!("{name}.pem")).display().to_string();
    let key = dir.join(format!("{name}.key")).display().to_string();
    let mut args = vec!["-cert", &cert, "-key", &key, "-rev", "-quiet"];
    if weak {
        args.extend(["-cipher", "DEFAULT@SECLEVEL=0"]);
    }
    OpensslServer::start(&args)
}

/// Every certificate of the connect-side table, made in `dir` the usual
/// ways. Returns the pin of the v1 leaf.
fn make_upstream_certificates(dir: &Path) -> String {
    ca(dir);
    let san = "subjectAltName=DNS:localhost\n";
    let rsa = "rsa:2048";
    issue(
        dir,
        "good",
        "/CN=localhost",
        Some(&format!("{san}basicConstraints=CA:FALSE\n")),
        &[],
        rsa,
    );
    issue(
        dir,
        "catrue",
        "/CN=localhost",
        Some(&format!("{san}basicConstraints=critical,CA:TRUE\n")),
        &[],
        rsa,
    );
    issue(dir, "v1", "/CN=localhost", None, &[], rsa);
    issue(
        dir,
        "cnonly",
        "/CN=localhost",
        Some("basicConstraints=CA:FALSE\n"),
        &[],
        rsa,
    );
    issue(
        dir,
        "cnwrong",
        "/CN=other.example",
        Some("basicConstraints=CA:FALSE\n"),
        &[],
        rsa,
    );
    issue(
        dir,
        "cnsan",
        "/CN=localhost",
        Some("subjectAltName=DNS:other.example\n"),
        &[],
        rsa,
    );
    issue(dir, "sha1", "/CN=localhost", Some(san), &["-sha1"], rsa);
    issue(dir, "rsa1024", "/CN=localhost", Some(san), &[], "rsa:1024");
    issue(
        dir,
        "critical",
        "/CN=localhost",
        Some(&format!("{san}1.2.3.4.5=critical,ASN1:UTF8String:parity\n")),
        &[],
        rsa,
    );
    issue(
        dir,
        "clienteku",
        "/CN=localhost",
        Some(&format!("{san}extendedKeyUsage=clientAuth\n")),
        &[],
        rsa,
    );
    issue(
        dir,
        "kucertsign",
        "/CN=localhost",
        Some(&format!("{san}keyUsage=critical,keyCertSign,cRLSign\n")),
        &[],
        rsa,
    );
    issue(
        dir,
        "kuencipher",
        "/CN=localhost",
        Some(&format!("{san}keyUsage=critical,keyEncipherment\n")),
        &[],
        rsa,
    );
    self_signed(dir, "self", "localhost");
    self_signed(dir, "stranger", "localhost");
    expired_self_signed(dir);
    let v1 = load_chain(&dir.join("v1.pem"));
    tls_sidecar::tls::material::pin_string(
        &tls_sidecar::tls::material::spki_sha256(&v1[0]).unwrap(),
    )
}

/// One row of the connect-side table.
struct Case {
    route: &'static str,
    /// The certificate `openssl s_server` serves (NAME.pem, NAME.key).
    cert: &'static str,
    /// The trust anchors OpenSSL and Java are given (a PEM file in dir).
    trust: &'static str,
    /// The name all three check.
    name: &'static str,
    /// The route's trust lines (`ca = …` or a `genesys` string).
    keys: String,
    /// Expected verdicts: OpenSSL's and Java's (None: the mode has no
    /// counterpart there), then ours: Ok, or the reason and words.
    openssl: Option<Verdict>,
    java: Option<Verdict>,
    ours: Result<(), (&'static str, &'static str)>,
}

/// The trust table, one line per case, as the docs' table reads.
fn connect_cases(dir: &Path, v1_pin: &str) -> Vec<Case> {
    let p = |n: &str| dir.join(n).display().to_string();
    let ca = format!("ca = \"{}\"", p("ca.pem"));
    let full = |trust: &str| format!("verify = \"full\"\nca = \"{}\"", p(trust));
    let store = |s: &str| {
        format!(
            "verify = \"full\"\nca = \"{}\"\nca_password_file = \"{}\"",
            p(s),
            p("store.pw")
        )
    };
    let fallback = format!("{ca}\nname_check_cn_fallback = true");
    let genesys = format!(
        "genesys = \"tls=1;trusted-ca={};tls-target-name-check=host\"",
        p("ca.pem")
    );
    let c = |route, cert, trust, name, keys: String, openssl, java, ours| Case {
        route,
        cert,
        trust,
        name,
        keys,
        openssl,
        java,
        ours,
    };
    let (a, r) = (Some(Accepted), Some(Refused));
    let bad = "bad_certificate";
    vec![
        c("good", "good", "ca.pem", "localhost", ca.clone(), a, a, Ok(())),
        c("anchor", "self", "self.pem", "localhost", full("self.pem"), a, a, Ok(())),
        c("anchor-jks", "self", "self.pem", "localhost", store("self.jks"), a, a, Ok(())),
        c("anchor-p12", "self", "self.pem", "localhost", store("self.p12"), a, a, Ok(())),
        c("anchor-wrong-name", "self", "self.pem", "other.example", full("self.pem"), r, r, Err(("name_mismatch", "does not cover the expected name"))),
        c("anchor-chain", "self", "self.pem", "other.example", format!("verify = \"chain\"\nca = \"{}\"", p("self.pem")), None, None, Ok(())),
        c("anchor-expired", "expired", "expired.pem", "localhost", full("expired.pem"), r, a, Err(("expired", "the certificate has expired"))),
        c("stranger", "stranger", "self.pem", "localhost", full("self.pem"), r, r, Err(("unknown_ca", "is self-signed and is not one of the trust anchors (connect_tls.ca)"))),
        c("ca-true-leaf", "catrue", "ca.pem", "localhost", ca.clone(), a, a, Err((bad, "is a CA certificate (basicConstraints CA:TRUE) used as a server's own certificate"))),
        c("v1", "v1", "ca.pem", "localhost", ca.clone(), a, a, Err((bad, "is X.509 version 1, and only version 3 is accepted"))),
        c("v1-pinned", "v1", "ca.pem", "localhost", format!("verify = \"pin\"\npins = [\"{v1_pin}\"]"), None, None, Ok(())),
        c("v1-pinned-tls12", "v1", "ca.pem", "localhost", format!("verify = \"pin\"\npins = [\"{v1_pin}\"]\nprotocols = [\"TLSv1.2\"]"), None, None, Ok(())),
        c("v1-trust-mode", "v1", "ca.pem", "localhost", "verify = \"none\"".to_owned(), None, None, Ok(())),
        c("cn-only", "cnonly", "ca.pem", "localhost", ca.clone(), a, a, Err(("name_mismatch", "name_check_cn_fallback = true"))),
        c("cn-fallback", "cnonly", "ca.pem", "localhost", fallback.clone(), a, a, Ok(())),
        c("cn-genesys", "cnonly", "ca.pem", "localhost", genesys, a, a, Ok(())),
        c("cn-wrong", "cnwrong", "ca.pem", "localhost", fallback.clone(), r, r, Err(("name_mismatch", "does not cover the expected name"))),
        c("cn-beside-san", "cnsan", "ca.pem", "localhost", fallback, r, r, Err(("name_mismatch", "does not cover the expected name"))),
        c("sha1", "sha1", "ca.pem", "localhost", ca.clone(), r, a, Err((bad, "is signed with sha1WithRSAEncryption; SHA-1 and MD5 signatures are refused on purpose"))),
        c("rsa1024", "rsa1024", "ca.pem", "localhost", ca.clone(), r, a, Err((bad, "has a 1024-bit RSA key; RSA keys under 2048 bits are refused on purpose"))),
        c("critical-ext", "critical", "ca.pem", "localhost", ca.clone(), r, r, Err((bad, "has a critical extension this verifier does not know (1.2.3.4.5)"))),
        c("client-eku", "clienteku", "ca.pem", "localhost", ca.clone(), r, r, Err((bad, "is for clientAuth only (extendedKeyUsage) and a server needs serverAuth"))),
        c("ku-certsign", "kucertsign", "ca.pem", "localhost", ca.clone(), r, r, Err((bad, "without digitalSignature, but its key signs the TLS handshake"))),
        c("ku-encipher", "kuencipher", "ca.pem", "localhost", ca, a, r, Err((bad, "without digitalSignature, but its key signs the TLS handshake"))),
    ]
}

/// The route of a case: to `localhost:PORT`, verifying `case.name`.
fn case_route(case: &Case, listen: u16, upstream: u16) -> String {
    let connect = format!("\"localhost:{upstream}\"");
    let head = format!(
        "[[route]]\nname = \"{}\"\nlisten = \"127.0.0.1:{listen}\"\nconnect = [{connect}]\n",
        case.route
    );
    if case.keys.starts_with("genesys") {
        return format!("{head}{}\n", case.keys);
    }
    let name = if case.name == "localhost" {
        String::new()
    } else {
        format!("server_name = \"{}\"\n", case.name)
    };
    format!("{head}[route.connect_tls]\n{}\n{name}", case.keys)
}

/// Waits (10 s at most) for a log line of `route` saying `words`.
fn logged(s: &Sidecar, route: &str, words: &str) -> bool {
    let deadline = std::time::Instant::now() + patience(10);
    let tag = format!("route={route} ");
    loop {
        if s.logs()
            .lines()
            .any(|l| l.contains(&tag) && l.contains(words))
        {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn word(v: Verdict) -> &'static str {
    match v {
        Accepted => "accepted",
        Refused => "refused",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_made_server_certificates_get_the_verdicts_of_openssl_and_java_or_a_stated_refusal()
{
    let dir = tmpdir();
    let d = dir.path();
    let pin = make_upstream_certificates(d);
    trust_store(d, &d.join("self.pem"), "self.jks", "JKS");
    trust_store(d, &d.join("self.pem"), "self.p12", "PKCS12");
    let cases = connect_cases(d, &pin);
    let mut servers: HashMap<&str, OpensslServer> = HashMap::new();
    for case in &cases {
        let weak = matches!(case.cert, "sha1" | "rsa1024");
        servers
            .entry(case.cert)
            .or_insert_with(|| upstream(d, case.cert, weak));
    }
    let ports: Vec<u16> = cases.iter().map(|_| free_port()).collect();
    let routes: Vec<String> = cases
        .iter()
        .zip(&ports)
        .map(|(c, p)| case_route(c, *p, servers[c.cert].port))
        .collect();
    let s = Sidecar::start(d, &routes.join("\n"));

    let trusts: Vec<PathBuf> = cases.iter().map(|c| d.join(c.trust)).collect();
    let java_cases: Vec<(&Path, &str, u16)> = cases
        .iter()
        .zip(&trusts)
        .filter(|(c, _)| c.java.is_some())
        .map(|(c, t)| (t.as_path(), c.name, servers[c.cert].port))
        .collect();
    let mut java = java_verdicts(&java_cases).into_iter();
    for (case, port) in cases.iter().zip(&ports) {
        let upstream = servers[case.cert].port;
        let openssl = case
            .openssl
            .map(|_| openssl_verdict(upstream, &d.join(case.trust), case.name));
        let jdk = case
            .java
            .map(|_| java.next().expect("a Java verdict per case"));
        let ours = sidecar_verdict(*port).await;
        println!(
            "| {} | {} | {} | {} |",
            case.route,
            openssl.map_or("-", word),
            jdk.as_ref()
                .map_or("-".to_owned(), |(v, w)| format!("{} ({w})", word(*v))),
            word(ours)
        );
        assert_eq!(openssl, case.openssl, "{}: OpenSSL", case.route);
        assert_eq!(jdk.map(|j| j.0), case.java, "{}: Java", case.route);
        match case.ours {
            Ok(()) => assert_eq!(ours, Accepted, "{}: {}", case.route, s.logs()),
            Err((reason, words)) => {
                assert_eq!(ours, Refused, "{}", case.route);
                s.wait_handshake_errors(case.route, "connect", reason, 1.0);
                assert!(
                    logged(&s, case.route, words),
                    "{}: no log line says {words:?}:\n{}",
                    case.route,
                    s.logs()
                );
            }
        }
        // Parity: what both references accept, we accept, unless the
        // table says why not.
        if case.openssl == Some(Accepted) && case.java == Some(Accepted) {
            assert!(
                ours == Accepted || matches!(case.route, "ca-true-leaf" | "v1" | "cn-only"),
                "{}: refused what OpenSSL and Java accept, without a stated reason",
                case.route
            );
        }
    }
    assert!(!s.logs().contains("malformed"), "{}", s.logs());
    // The refusals as an operator reads them (cargo test -- --nocapture).
    for line in s.logs().lines().filter(|l| l.contains("reason=")) {
        println!("{line}");
    }
}

/// `java TrustParity.java server …`: a JDK server demanding a client
/// certificate trusted by `client_ca`; killed on drop.
struct JavaServer {
    child: Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<String>,
}

impl JavaServer {
    fn start(cert: &Path, key: &Path, client_ca: &Path) -> JavaServer {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/TrustParity.java");
        let port = free_port();
        let mut child = Command::new("java")
            .arg(fixture)
            .arg("server")
            .arg(port.to_string())
            .args([cert, key, client_ca])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("java (openjdk-17-jdk-headless, tests/setup.sh)");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let server = JavaServer { child, port, lines };
        assert_eq!(server.next(), "listening");
        server
    }

    /// The server's next line: "listening", "OK subject" or "REFUSED why".
    fn next(&self) -> String {
        self.lines
            .recv_timeout(patience(120))
            .expect("a line from the JDK server")
    }
}

impl Drop for JavaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl to `https://localhost:PORT/` presenting NAME.pem: its verdict.
fn curl_verdict(dir: &Path, port: u16, client: &str) -> Verdict {
    let out = curl_with_cert(
        port,
        &dir.join("ca.pem"),
        &dir.join(format!("{client}.pem")),
        &dir.join(format!("{client}.key")),
    );
    if out.status.success() {
        Accepted
    } else {
        Refused
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_client_certificate_given_as_client_ca_is_trusted_as_itself_as_by_openssl_and_java(
) {
    let dir = tmpdir();
    let d = dir.path();
    ca(d);
    issue(
        d,
        "listen",
        "/CN=localhost",
        Some("subjectAltName=DNS:localhost\n"),
        &[],
        "rsa:2048",
    );
    let client_ca = self_signed(d, "client", "gms-client");
    self_signed(d, "intruder", "gms-client");
    let jks = trust_store(d, &client_ca, "client.jks", "JKS");
    let backend = http_backend("parity").await;
    let (p_pem, p_jks) = (free_port(), free_port());
    let listen = |store: &Path, pw: &str| {
        format!(
            "cert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n{pw}",
            d.join("listen.pem").display(),
            d.join("listen.key").display(),
            store.display()
        )
    };
    let pw = format!(
        "client_ca_password_file = \"{}\"",
        d.join("store.pw").display()
    );
    let routes = [
        listen_route("client-anchor", p_pem, backend, &listen(&client_ca, "")),
        listen_route("client-anchor-jks", p_jks, backend, &listen(&jks, &pw)),
    ]
    .join("\n");
    let s = Sidecar::start(d, &routes);
    let (cert, key) = (d.join("listen.pem"), d.join("listen.key"));
    let reference = OpensslServer::start(&[
        "-cert",
        &cert.display().to_string(),
        "-key",
        &key.display().to_string(),
        "-www",
        "-Verify",
        "1",
        "-verify_return_error",
        "-CAfile",
        &client_ca.display().to_string(),
    ]);
    let java = JavaServer::start(&cert, &key, &client_ca);

    for (client, want) in [("client", Accepted), ("intruder", Refused)] {
        let openssl = curl_verdict(d, reference.port, client);
        let _ = curl_verdict(d, java.port, client);
        let jdk = java.next();
        let ours = curl_verdict(d, p_pem, client);
        let ours_jks = curl_verdict(d, p_jks, client);
        println!(
            "| {client} | {} | {jdk} | {} | {} |",
            word(openssl),
            word(ours),
            word(ours_jks)
        );
        assert_eq!(openssl, want, "{client}: OpenSSL");
        assert_eq!(
            jdk.starts_with("OK "),
            want == Accepted,
            "{client}: Java said {jdk}"
        );
        assert_eq!((ours, ours_jks), (want, want), "{client}: {}", s.logs());
    }
    s.wait_connections("client-anchor", "ok", 1.0);
    s.wait_handshake_errors("client-anchor", "listen", "unknown_ca", 1.0);
    s.wait_handshake_errors("client-anchor-jks", "listen", "unknown_ca", 1.0);
    assert!(
        logged(
            &s,
            "client-anchor",
            "is self-signed and is not one of the trust anchors (listen_tls.client_ca)"
        ),
        "{}",
        s.logs()
    );
}

/// Serves the certificate `cert` with the private key of another one:
/// what an impostor replaying a trusted certificate looks like.
#[derive(Debug)]
struct Impostor(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Impostor {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_presenting_the_trusted_certificate_without_its_key_is_refused_as_by_openssl_and_java(
) {
    let dir = tmpdir();
    let d = dir.path();
    let anchor = self_signed(d, "self", "localhost");
    self_signed(d, "stranger", "localhost");
    let provider = tls_sidecar::tls::provider();
    let wrong_key = provider
        .key_provider
        .load_private_key(load_key(&d.join("stranger.key")))
        .unwrap();
    let replayed = rustls::sign::CertifiedKey::new(load_chain(&anchor), wrong_key);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Impostor(Arc::new(replayed))));
    let impostor = tls_echo(Arc::new(config)).await;
    let port = free_port();
    let s = Sidecar::start(
        d,
        &route(
            "impostor",
            port,
            &[format!("localhost:{}", impostor.port())],
            &format!("ca = \"{}\"", anchor.display()),
        ),
    );
    let openssl = openssl_verdict(impostor.port(), &anchor, "localhost");
    let java = java_verdicts(&[(anchor.as_path(), "localhost", impostor.port())]);
    let ours = roundtrip(port, b"parity").await;
    println!(
        "| impostor | {} | {} ({}) | {ours:?} |",
        word(openssl),
        word(java[0].0),
        java[0].1
    );
    assert_eq!((openssl, java[0].0), (Refused, Refused));
    assert!(ours.as_ref().map_or(true, |b| b.is_empty()), "{ours:?}");
    s.wait_handshake_errors("impostor", "connect", "bad_certificate", 1.0);
    assert!(
        logged(
            &s,
            "impostor",
            "does not hold that certificate's private key"
        ),
        "{}",
        s.logs()
    );
}
