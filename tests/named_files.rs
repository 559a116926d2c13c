//! `run` reads exactly the files `Config::files` lists, under the route and
//! key it lists them with: for each file of each config below (together
//! every kind of file a config can name), that file alone is taken away and
//! the build that `check` and `run` do must fail naming that route, that
//! key and that path (an OCSP file alone is warned about in the same words
//! instead: a missing staple never refuses a certificate). The sandbox's allow-list and the rotation watch are
//! made from the same list, so what `run` reads is what they cover.

use std::collections::BTreeSet;
use std::path::PathBuf;

use tls_sidecar::config::{self, Problem};
use tls_sidecar::pki::{self, Ca};
use tls_sidecar::route::plan;

/// Bytes a keystore reader takes for a PKCS#12 store (its header): enough
/// for the loader to go on to the password files.
const P12_HEADER: &[u8] = &[0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03, 0, 0, 0];

/// The files of one test directory.
struct Files {
    dir: PathBuf,
    ca: Ca,
}

impl Files {
    fn pem(&self, name: &str) -> String {
        let (cert, _) = self.leaf(name);
        cert
    }

    /// A leaf's `NAME.pem` and `NAME.key`, as strings for the config.
    fn leaf(&self, name: &str) -> (String, String) {
        let (c, k) = self
            .ca
            .leaf(name, &["localhost"])
            .write(&self.dir, name)
            .unwrap();
        (c.display().to_string(), k.display().to_string())
    }

    fn ca(&self, name: &str) -> String {
        pki::write(&self.dir, name, &self.ca.cert_pem())
            .unwrap()
            .display()
            .to_string()
    }

    fn crl(&self, name: &str) -> String {
        pki::write(&self.dir, name, &self.ca.crl(&[], 30))
            .unwrap()
            .display()
            .to_string()
    }

    fn text(&self, name: &str, text: &str) -> String {
        pki::write(&self.dir, name, text)
            .unwrap()
            .display()
            .to_string()
    }

    fn p12(&self, name: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, P12_HEADER).unwrap();
        p.display().to_string()
    }
}

const ROUTE: &str =
    "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"localhost:7022\"]\n";

/// Configs that each stop at nothing when all their files are there.
fn configs(f: &Files) -> Vec<String> {
    let (client, client_key) = f.leaf("client");
    let (server, server_key) = f.leaf("server");
    let (one, one_key) = f.leaf("one");
    let (two, two_key) = f.leaf("two");
    let (g, g_key) = f.leaf("g");
    vec![
        // PEM everything, both sides, and the proxy's credentials.
        format!(
            "{ROUTE}via = \"http://127.0.0.1:3128\"\nvia_credentials = \"{}\"\n\
             [route.connect_tls]\nca = \"{}\"\ncrl = [\"{}\", \"{}\"]\ncert = \"{client}\"\nkey = \"{client_key}\"\n\
             [route.listen_tls]\ncert = \"{server}\"\nkey = \"{server_key}\"\nclient_ca = \"{}\"\ncrl = [\"{}\"]\n",
            f.text("proxy.cred", "u:p\n"),
            f.ca("ca.pem"),
            f.crl("a.crl"),
            f.crl("b.crl"),
            f.ca("clients-ca.pem"),
            f.crl("c.crl"),
        ),
        // Several certificates; the OCSP response is read after its pair.
        format!(
            "{ROUTE}[route.listen_tls]\ncerts = [\n  {{ cert = \"{one}\", key = \"{one_key}\" }},\n  \
             {{ cert = \"{two}\", key = \"{two_key}\", ocsp = \"{}\" }},\n]\n",
            f.text("two.ocsp", "not read: the test takes it away")
        ),
        // Keystores and their password files, each side.
        format!(
            "{ROUTE}[route.connect_tls]\nca = \"{}\"\ncert = \"{}\"\npassword_file = \"{}\"\nkey_password_file = \"{}\"\n",
            f.ca("ca2.pem"),
            f.p12("client.p12"),
            f.text("client.pw", "pw\n"),
            f.text("client.keypw", "pw\n"),
        ),
        format!(
            "{ROUTE}[route.connect_tls]\nca = \"{}\"\nca_password_file = \"{}\"\n",
            f.p12("trust.p12"),
            f.text("trust.pw", "pw\n"),
        ),
        format!(
            "{ROUTE}[route.listen_tls]\ncert = \"{}\"\npassword_file = \"{}\"\nkey_password_file = \"{}\"\n",
            f.p12("server.p12"),
            f.text("server.pw", "pw\n"),
            f.text("server.keypw", "pw\n"),
        ),
        format!(
            "{ROUTE}[route.listen_tls]\ncert = \"{server}\"\nkey = \"{server_key}\"\nclient_ca = \"{}\"\nclient_ca_password_file = \"{}\"\n",
            f.p12("clients.p12"),
            f.text("clients.pw", "pw\n"),
        ),
        // Genesys's comma-separated certificate chain.
        format!(
            "{ROUTE}genesys = \"tls=1;tls-mutual=1;certificate={g},{};certificate-key={g_key};trusted-ca={}\"\n",
            f.pem("g-intermediate"),
            f.ca("g-ca.pem"),
        ),
    ]
}

#[test]
fn each_file_taken_away_fails_the_build_naming_its_route_key_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let f = Files {
        dir: dir.path().to_owned(),
        ca: Ca::new("Named Files CA"),
    };
    let mut keys = BTreeSet::new();
    let mut warned_keys = BTreeSet::new();
    let mut tried = 0;
    for (i, text) in configs(&f).iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let c = config::load(&path).unwrap();
        let files = c.files();
        assert!(!files.is_empty(), "{text}");
        for named in &files {
            // A file named under two keys (a keystore's password_file is
            // also a PEM `ca`'s ca_password_file, unread) is read under one.
            let under: Vec<&str> = files
                .iter()
                .filter(|f| f.path == named.path)
                .map(|f| f.key.as_str())
                .collect();
            let aside = named.path.with_extension("aside");
            std::fs::rename(&named.path, &aside).unwrap();
            let built = plan::build(c.clone());
            std::fs::rename(&aside, &named.path).unwrap();
            // An OCSP file is never a reason to refuse the certificate
            // (issue 25): taken away, it is a warning naming the same route,
            // key and path, in check and run alike.
            if named.key.ends_with(".ocsp") {
                let p = built.unwrap_or_else(|e| panic!("{named:?}: {e}"));
                let warned = p.warnings.iter().map(|w| w.to_string()).find(|w| {
                    w.contains(&format!("key `{}`", named.key))
                        && w.contains(&named.path.display().to_string())
                        && w.contains("No such file")
                });
                assert!(warned.is_some(), "{named:?}: {:?}", p.warnings);
                warned_keys.insert(named.key.clone());
                continue;
            }
            let e = built.map(|_| ()).unwrap_err();
            assert_eq!(e.route.as_deref(), Some(named.route.as_str()), "{e}");
            assert!(
                under.contains(&e.key.as_deref().unwrap_or("")),
                "{e}: {under:?}"
            );
            match &e.problem {
                Problem::File { path, source } => {
                    assert_eq!(path, &named.path, "{e}");
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{e}");
                }
                other => panic!("{named:?}: {other}"),
            }
            keys.insert(e.key.clone().unwrap());
            tried += 1;
        }
    }
    assert_eq!(tried, 32);
    assert_eq!(
        warned_keys,
        BTreeSet::from(["listen_tls.certs[1].ocsp".to_owned()])
    );
    let want: BTreeSet<String> = [
        "via_credentials",
        "connect_tls.ca",
        "connect_tls.ca_password_file",
        "connect_tls.crl[0]",
        "connect_tls.crl[1]",
        "connect_tls.cert",
        "connect_tls.key",
        "connect_tls.password_file",
        "connect_tls.key_password_file",
        "listen_tls.cert",
        "listen_tls.key",
        "listen_tls.password_file",
        "listen_tls.key_password_file",
        "listen_tls.client_ca",
        "listen_tls.client_ca_password_file",
        "listen_tls.crl[0]",
        "listen_tls.certs[0].cert",
        "listen_tls.certs[0].key",
        "listen_tls.certs[1].cert",
        "listen_tls.certs[1].key",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(keys, want);
}
