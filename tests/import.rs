//! `tls-sidecar import` (issue 19), end to end with the real binary: the
//! seed's Jetty snippet (GMS's `etc/jetty-ssl-context.xml`, plus the stock
//! keystore settings and a keystore made by `keytool`) imported, checked
//! as written, and served, probed with `openssl s_client` for TLS 1.2 and
//! 1.3 only and SNI required; a Genesys transport-parameter string
//! imported and carried to `openssl s_server -Verify`.

mod common;

use std::io::Read as _;
use std::net::TcpStream as StdStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The seed's settings (GMS 8.5.227+ `etc/jetty-ssl-context.xml`), inside
/// Jetty 9.4's stock file with its keystore settings and their stock
/// `OBF:` passwords ("storepwd", "keypwd").
const JETTY_XML: &str = r#"<?xml version="1.0"?>
<!DOCTYPE Configure PUBLIC "-//Jetty//Configure//EN" "http://www.eclipse.org/jetty/configure_9_3.dtd">
<Configure id="sslContextFactory" class="org.eclipse.jetty.util.ssl.SslContextFactory$Server">
  <Set name="Provider"><Property name="jetty.sslContext.provider"/></Set>
  <Set name="KeyStorePath"><Property name="jetty.base" default="." />/<Property name="jetty.sslContext.keyStorePath" deprecated="jetty.keystore" default="etc/keystore"/></Set>
  <Set name="KeyStorePassword"><Property name="jetty.sslContext.keyStorePassword" deprecated="jetty.keystore.password" default="OBF:1vny1zlo1x8e1vnw1vn61x8g1zlu1vn4"/></Set>
  <Set name="KeyStoreType"><Property name="jetty.sslContext.keyStoreType" default="JKS"/></Set>
  <Set name="KeyStoreProvider"><Property name="jetty.sslContext.keyStoreProvider"/></Set>
  <Set name="KeyManagerPassword"><Property name="jetty.sslContext.keyManagerPassword" deprecated="jetty.keymanager.password" default="OBF:1u2u1wml1z7s1z7a1wnl1u2g"/></Set>
  <Set name="TrustStorePath"><Property name="jetty.base" default="." />/<Property name="jetty.sslContext.trustStorePath" deprecated="jetty.truststore" default="etc/keystore"/></Set>
  <Set name="NeedClientAuth"><Property name="jetty.sslContext.needClientAuth" deprecated="jetty.ssl.needClientAuth" default="false"/></Set>
  <Set name="WantClientAuth"><Property name="jetty.sslContext.wantClientAuth" deprecated="jetty.ssl.wantClientAuth" default="false"/></Set>
  <Set name="useCipherSuitesOrder"><Property name="jetty.sslContext.useCipherSuitesOrder" default="true"/></Set>
  <Set name="RenegotiationAllowed"><Property name="jetty.sslContext.renegotiationAllowed" default="true"/></Set>
  <Set name="SniRequired">
    <Property name="jetty.sslContext.sniRequired" default="false"/>
  </Set>
  <Set name="IncludeProtocols">
    <Array type="String">
      <Item>TLSv1.3</Item>
      <Item>TLSv1.2</Item>
    </Array>
  </Set>
  <Set name="ExcludeProtocols">
    <Array type="String">
      <Item>TLSv1</Item>
      <Item>TLSv1.1</Item>
      <Item>SSLv3</Item>
    </Array>
  </Set>
</Configure>
"#;

fn bin() -> Command {
    cli_command(&[])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `$JETTY_BASE` as GMS has it: etc/jetty-ssl-context.xml, etc/keystore.jks
/// made by keytool (store password "storepwd", key password "keypwd", as
/// Jetty's stock demo keystore), start.d/ssl.ini. Returns (base, the
/// certificate as PEM for the client's trust).
fn jetty_base(dir: &Path, ini: &str) -> (PathBuf, PathBuf) {
    let base = dir.join("gms");
    std::fs::create_dir_all(base.join("etc")).unwrap();
    std::fs::create_dir_all(base.join("start.d")).unwrap();
    std::fs::write(base.join("etc/jetty-ssl-context.xml"), JETTY_XML).unwrap();
    std::fs::write(base.join("start.d/ssl.ini"), ini).unwrap();
    let ks = base.join("etc/keystore.jks").display().to_string();
    run_tool(
        "keytool",
        &[
            "-genkeypair",
            "-alias",
            "gms",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-dname",
            "CN=localhost",
            "-ext",
            "san=dns:localhost,ip:127.0.0.1",
            "-validity",
            "30",
            "-keystore",
            &ks,
            "-storetype",
            "JKS",
            "-storepass",
            "storepwd",
            "-keypass",
            "keypwd",
        ],
    );
    let pem = dir.join("gms-cert.pem");
    run_tool(
        "keytool",
        &[
            "-exportcert",
            "-rfc",
            "-alias",
            "gms",
            "-keystore",
            &ks,
            "-storepass",
            "storepwd",
            "-file",
            &pem.display().to_string(),
        ],
    );
    (base, pem)
}

/// `tls-sidecar run` on a config as written (no admin endpoint added);
/// killed on drop.
struct Served(Child);

impl Served {
    fn start(config: &Path, port: u16) -> Served {
        let mut served = Served(
            bin()
                .args(["run", "-c"])
                .arg(config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + patience(20);
        while Instant::now() < deadline {
            if StdStream::connect(("127.0.0.1", port)).is_ok() {
                return served;
            }
            if let Ok(Some(_)) = served.0.try_wait() {
                let mut err = String::new();
                served
                    .0
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("the imported config did not serve: {err}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the imported config did not listen on {port}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s_client(port: u16, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_jetty_settings_are_imported_checked_and_served_tls12_tls13_only_with_sni_required(
) {
    let dir = tmpdir();
    let (base, pem) = jetty_base(
        dir.path(),
        "# GMS's ssl module\n--module=ssl\njetty.sslContext.keyStorePath=etc/keystore.jks\njetty.sslContext.sniRequired=true\n",
    );
    let bport = plain_echo().await;
    let port = free_port();
    let xml = base.join("etc/jetty-ssl-context.xml");
    let ini = base.join("start.d/ssl.ini");
    let config = dir.path().join("gms.toml");
    let args = |out: Option<&Path>| {
        let mut c = bin();
        c.args(["import", "jetty"])
            .arg(&xml)
            .arg("--properties")
            .arg(&ini)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--connect", &format!("127.0.0.1:{bport}")]);
        if let Some(o) = out {
            c.arg("--out").arg(o);
        }
        c.output().unwrap()
    };

    // Without --out the password would have to be printed: refused.
    let o = args(None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "error: the route needs a password file, and passwords are never printed: give --out CONFIG (the password goes to CONFIG.password, mode 0600)\n"
    );
    assert_eq!(text(&o.stdout), "");

    let o = args(Some(&config));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(&config).unwrap();
    for secret in ["storepwd", "keypwd"] {
        assert!(
            !written.contains(secret)
                && !text(&o.stdout).contains(secret)
                && !text(&o.stderr).contains(secret)
        );
    }
    {
        use std::os::unix::fs::PermissionsExt;
        for (suffix, want) in [
            (".password", "storepwd\n"),
            (".keymanager.password", "keypwd\n"),
        ] {
            let p = PathBuf::from(format!("{}{suffix}", config.display()));
            assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
    for line in [
        "sni_required = true\n",
        "protocols = [\"TLSv1.3\", \"TLSv1.2\"]\n",
        "#   ExcludeProtocols: TLSv1, TLSv1.1, SSLv3 (never offered anyway)\n",
        "#   KeyStoreType = JKS: the keystore's format is told by its content\n",
        "#   RenegotiationAllowed = true: rustls never renegotiates\n",
        "#   useCipherSuitesOrder = true: rustls's server picks by its own order\n",
    ] {
        assert!(written.contains(line), "{line:?} missing from:\n{written}");
    }

    // `check` accepts it as written.
    let (code, out, err) = cli(&[&"check", &"-c", &config]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sni-required"), "{out}");

    // And it serves as GMS's Jetty would.
    let _served = Served::start(&config, port);
    let ca = pem.display().to_string();
    for v in ["-tls1_2", "-tls1_3"] {
        let o = s_client(
            port,
            &[
                v,
                "-servername",
                "localhost",
                "-CAfile",
                &ca,
                "-verify_return_error",
            ],
        );
        assert!(
            o.status.success(),
            "{v}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(text(&o.stdout).contains("Verify return code: 0 (ok)"));
    }
    let o = s_client(
        port,
        &[
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-servername",
            "localhost",
        ],
    );
    assert!(
        !o.status.success(),
        "TLS 1.1 was accepted: {}",
        text(&o.stdout)
    );
    let o = s_client(port, &["-noservername", "-CAfile", &ca]);
    assert!(
        !o.status.success(),
        "no SNI was accepted: {}",
        text(&o.stdout)
    );
}

#[test]
fn import_refuses_xml_that_is_not_jettys_and_an_obf_password_that_does_not_decode() {
    let dir = tmpdir();
    let d = dir.path();
    let not_jetty = d.join("beans.xml");
    std::fs::write(&not_jetty, "<beans><bean id=\"x\"/></beans>").unwrap();
    let (code, _, err) = cli(&[&"import", &"jetty", &not_jetty]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "error: {}: not Jetty's SSL context: the root is <beans>, neither <Configure class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\"> (Jetty 9.4) nor <Configure class=\"org.eclipse.jetty.server.Server\"> with a <New class=\"org.eclipse.jetty.util.ssl.SslContextFactory$Server\"> (Jetty 10 to 12)\n",
            not_jetty.display()
        )
    );
    let bad_obf = d.join("jetty-ssl-context.xml");
    std::fs::write(
        &bad_obf,
        JETTY_XML.replace("OBF:1vny1zlo1x8e1vnw1vn61x8g1zlu1vn4", "OBF:1vny1zl"),
    )
    .unwrap();
    let (code, _, err) = cli(&[&"import", &"jetty", &bad_obf, &"--out", &d.join("x.toml")]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "error: {}: KeyStorePassword: the OBF: string does not decode (it ends short)\n",
            bad_obf.display()
        )
    );
    assert!(!d.join("x.toml").exists() && !d.join("x.toml.password").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genesys_parameter_string_is_imported_checked_and_carries_mutual_tls() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let ca = pki.ca_path.display().to_string();
    let server = pki.s_server_rev(true);
    let port = free_port();
    let params = format!(
        "tls=1;tls-mutual=1;certificate={};certificate-key={};trusted-ca={ca};tls-target-name-check=host;sec-protocol=TLSv12;cipher-list=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;port={}",
        pki.client.0.display(),
        pki.client.1.display(),
        server.port
    );
    let config = dir.path().join("stat.toml");
    let o = bin()
        .args([
            "import",
            "genesys",
            &params,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--connect", &format!("localhost:{}", server.port), "--out"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (code, out, err) = cli(&[&"check", &"-c", &config]);
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "start=direct verify=full mutual=yes protocols=TLSv1.2",
        "  genesys: tls-target-name-check=host → verify = \"full\"\n",
        "  genesys: sec-protocol=TLSv12 → protocols = [\"TLSv1.2\"]\n",
        "  genesys: tls-mutual=1 → the certificate is presented (mutual TLS)\n",
        &format!("  genesys: port={} ignored: not a TLS setting (the route's listen and connect say where)\n", server.port),
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    let _served = Served::start(&config, port);
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"stat\n").await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(patience(10), BufReader::new(s).read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line, "tats\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genesys_server_port_requires_client_certificates_and_offers_only_its_cipher_list() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let bport = plain_echo().await;
    let port = free_port();
    let ca = pki.ca_path.display().to_string();
    let params = format!(
        "tls=1;tls-mutual=1;certificate={};certificate-key={};trusted-ca={ca};sec-protocol=TLSv12;cipher-list=ECDHE-ECDSA-AES256-GCM-SHA384",
        pki.server.0.display(),
        pki.server.1.display()
    );
    let config = dir.path().join("port.toml");
    let o = bin()
        .args(["import", "genesys", "--server-port", &params])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--connect", &format!("127.0.0.1:{bport}"), "--out"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let _served = Served::start(&config, port);
    let (cert, key) = (
        pki.client.0.display().to_string(),
        pki.client.1.display().to_string(),
    );
    let with_cert = [
        "-cert",
        cert.as_str(),
        "-key",
        key.as_str(),
        "-CAfile",
        ca.as_str(),
        "-servername",
        "localhost",
    ];
    // The listed suite, with a client certificate: served.
    let mut args = vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"];
    args.extend(with_cert);
    let o = s_client(port, &args);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains("Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"),
        "{}",
        text(&o.stdout)
    );
    // A suite not in cipher-list: refused.
    let mut args = vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"];
    args.extend(with_cert);
    let o = s_client(port, &args);
    assert!(
        !o.status.success(),
        "an unlisted suite was accepted: {}",
        text(&o.stdout)
    );
    // TLS 1.3 is not offered with sec-protocol=TLSv12.
    let mut args = vec!["-tls1_3"];
    args.extend(with_cert);
    let o = s_client(port, &args);
    assert!(
        !o.status.success(),
        "TLS 1.3 was accepted: {}",
        text(&o.stdout)
    );
    // No client certificate: the handshake (or the first read) fails.
    let o = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_2",
        ])
        .args(["-CAfile", &ca, "-servername", "localhost"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        !o.status.success() || all.contains("alert") || all.contains("certificate required"),
        "served without a client certificate: {all}"
    );
}
