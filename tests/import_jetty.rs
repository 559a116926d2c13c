//! `import jetty` on each Jetty generation's stock `etc/jetty-ssl-context.xml`
//! (tests/fixtures/jetty/: 9.4, 10, 11, 12, each in its own form, with the
//! property files a site of that generation has), end to end: a keystore
//! made by `keytool` where the properties say, the import written, `check`
//! accepting it as written, and `curl` (a real TLS client) served through
//! the imported route by that keystore's certificate.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::served::Served;
use common::*;

/// One generation: its fixture directory, the keystore its properties
/// name, the store's type and password, the property files given on the
/// command line (none: `import` finds start.ini / start.d/ssl.ini itself),
/// and lines the written config must hold.
struct Generation {
    dir: &'static str,
    keystore: &'static str,
    store_type: &'static str,
    store_password: &'static str,
    key_password: &'static str,
    properties: &'static [&'static str],
    lines: &'static [&'static str],
}

const GENERATIONS: &[Generation] = &[
    Generation {
        dir: "9.4",
        keystore: "etc/keystore.jks",
        store_type: "JKS",
        // 9.4's XML defaults: OBF: of "storepwd" and "keypwd".
        store_password: "storepwd",
        key_password: "keypwd",
        properties: &[],
        lines: &[
            "#   KeyStoreType = JKS: the keystore's format is told by its content\n",
            "#   RenegotiationLimit = 5: rustls never renegotiates\n",
        ],
    },
    Generation {
        dir: "10",
        keystore: "etc/gms.p12",
        store_type: "PKCS12",
        store_password: "storepwd",
        key_password: "storepwd",
        properties: &[],
        lines: &["sni_required = true\n"],
    },
    Generation {
        dir: "11",
        keystore: "etc/keystore.p12",
        store_type: "PKCS12",
        store_password: "changeit",
        key_password: "changeit",
        properties: &[],
        lines: &["#   RenegotiationAllowed = false: rustls never renegotiates\n"],
    },
    Generation {
        dir: "12",
        keystore: "etc/keystore.p12",
        store_type: "PKCS12",
        store_password: "storepwd",
        key_password: "storepwd",
        properties: &["start.d/ssl.ini", "jetty-ssl.properties"],
        lines: &["sni_required = true\n"],
    },
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The keystore the generation's properties name, made by keytool, and its
/// certificate as PEM for curl's trust.
fn keystore(base: &Path, g: &Generation) -> PathBuf {
    let ks = base.join(g.keystore).display().to_string();
    run_tool(
        "keytool",
        &[
            "-genkeypair",
            "-alias",
            "jetty",
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
            g.store_type,
            "-storepass",
            g.store_password,
            "-keypass",
            g.key_password,
        ],
    );
    let pem = base.join("jetty-cert.pem");
    run_tool(
        "keytool",
        &[
            "-exportcert",
            "-rfc",
            "-alias",
            "jetty",
            "-keystore",
            &ks,
            "-storepass",
            g.store_password,
            "-file",
            &pem.display().to_string(),
        ],
    );
    pem
}

async fn generation_is_imported_checked_and_served(g: &Generation) {
    let dir = tmpdir();
    let base = dir.path().join("jetty-base");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jetty");
    copy_dir(&fixtures.join(g.dir), &base);
    let pem = keystore(&base, g);
    let backend = http_backend("served by the imported route\n").await;
    let port = free_port();
    let config = dir.path().join("jetty.toml");
    let mut cmd = cli_command(&[]);
    cmd.args(["import", "jetty"])
        .arg(base.join("etc/jetty-ssl-context.xml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--connect", &format!("127.0.0.1:{backend}"), "--out"])
        .arg(&config);
    for p in g.properties {
        cmd.arg("--properties").arg(base.join(p));
    }
    let (code, out, err) = cli_output(cmd);
    assert_eq!(code, 0, "Jetty {}: {out}{err}", g.dir);
    let written = std::fs::read_to_string(&config).unwrap();
    let cert_line = format!("cert = \"{}\"\n", base.join(g.keystore).display());
    assert!(
        written.contains(&cert_line),
        "Jetty {}: {cert_line:?} missing from:\n{written}",
        g.dir
    );
    for line in g.lines {
        assert!(
            written.contains(line),
            "Jetty {}: {line:?} missing from:\n{written}",
            g.dir
        );
    }
    assert!(
        !written.contains(g.store_password),
        "a password in the config:\n{written}"
    );
    let pw = std::fs::read_to_string(format!("{}.password", config.display())).unwrap();
    assert_eq!(pw, format!("{}\n", g.store_password));

    let (code, out, err) = cli(&[&"check", &"-c", &config]);
    assert_eq!(code, 0, "Jetty {}: check: {out}{err}", g.dir);

    let _served = Served::start(&config, &[port]);
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&pem)
        .arg(format!("https://localhost:{port}/"))
        .output()
        .expect("curl (install it with tests/setup.sh)");
    assert!(
        o.status.success(),
        "Jetty {}: curl: {}",
        g.dir,
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "served by the imported route\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetty_9_4_stock_ssl_context_with_start_ini_is_imported_and_serves_curl() {
    generation_is_imported_checked_and_served(&GENERATIONS[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetty_10_stock_ssl_context_with_a_deprecated_property_name_is_imported_and_serves_curl() {
    generation_is_imported_checked_and_served(&GENERATIONS[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetty_11_stock_ssl_context_with_an_expanded_absolute_path_is_imported_and_serves_curl() {
    generation_is_imported_checked_and_served(&GENERATIONS[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetty_12_stock_ssl_context_with_ssl_ini_and_properties_is_imported_and_serves_curl() {
    generation_is_imported_checked_and_served(&GENERATIONS[3]).await;
}
