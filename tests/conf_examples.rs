//! Every example in `conf/` passes `tls-sidecar check` (the real binary).
//!
//! The examples name `/etc/tls-sidecar/...` files, as a deployment would.
//! Each example is copied to a temp dir with that prefix rewritten to a
//! directory filled, under the same file names, with certificates and keys
//! made by `tls_sidecar::pki`: the example stays realistic and the test
//! proves every file it names is of the right kind.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use common::*;

const PREFIX: &str = "/etc/tls-sidecar/";

/// The examples shipped and the routes each serves, in order. A conf file
/// added without an entry here fails the test: a loop over an unexpected
/// set of files proves nothing.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("minimal.toml", &["msgserver"]),
    (
        "tls-sidecar.toml",
        &[
            "msgserver",
            "statserver",
            "chatserver",
            "ucs",
            "emailserver",
            "orchestration",
            "webapi",
            "urs",
            "gms-https",
        ],
    ),
    (
        "genesys-peers.toml",
        &["msgserver", "statserver", "tserver", "gms-port"],
    ),
];

fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(conf_dir().join(name)).unwrap()
}

/// The `/etc/tls-sidecar/` file names on lines TOML reads (not in comments).
fn named_files(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split('#').next().unwrap();
        let mut rest = code;
        while let Some(i) = rest.find(PREFIX) {
            let after = &rest[i + PREFIX.len()..];
            // A path ends with its string, or inside a `genesys` string
            // with its parameter (`;`) or chain entry (`,`).
            let end = after
                .find(['"', ';', ','])
                .expect("a path ends with a quote");
            out.insert(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// The password of every example keystore (each `.password` file holds it).
const STORE_PASSWORD: &str = "changeit";

/// Writes into `dir`, under the names `text` uses, a CA for `*ca.pem`, and
/// for every other `NAME.pem` a leaf the CA signed with its key in
/// `NAME.key`; `NAME.p12`/`.pfx` a PKCS#12 store of such a leaf (entry
/// NAME, by `openssl pkcs12`), `*trust*.jks` a JKS trust store of the CA
/// and any other `NAME.jks` a JKS key store of a leaf (by `keytool`), each
/// with the password every `.password` file (mode 0600) holds. Returns the
/// config rewritten to point into `dir`.
fn materialize(text: &str, dir: &Path) -> String {
    let files = named_files(text);
    let ca = Ca::new("Genesys Example CA");
    let ca_pem = pki::write(dir, "example-ca.pem.src", &ca.cert_pem()).unwrap();
    let work = dir.join("keystore-sources");
    std::fs::create_dir_all(&work).unwrap();
    let pass_src = work.join("pass");
    std::fs::write(&pass_src, STORE_PASSWORD).unwrap();
    let p12 = |stem: &str, out: &Path| {
        let (cert, key) = ca
            .leaf(stem, &[&format!("{stem}.genesys.example")])
            .write(&work, stem)
            .unwrap();
        run_tool(
            "openssl",
            &[
                "pkcs12",
                "-export",
                "-in",
                &cert.display().to_string(),
                "-inkey",
                &key.display().to_string(),
                "-certfile",
                &ca_pem.display().to_string(),
                "-name",
                stem,
                "-passout",
                &format!("file:{}", pass_src.display()),
                "-out",
                &out.display().to_string(),
            ],
        );
    };
    for f in &files {
        let (stem, ext) = f.rsplit_once('.').expect("a file name with an extension");
        let out = dir.join(f);
        match ext {
            "password" => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::write(&out, format!("{STORE_PASSWORD}\n")).unwrap();
                std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            "p12" | "pfx" => p12(stem, &out),
            "jks" if stem.contains("trust") => run_tool(
                "keytool",
                &[
                    "-importcert",
                    "-noprompt",
                    "-alias",
                    "genesys-ca",
                    "-file",
                    &ca_pem.display().to_string(),
                    "-keystore",
                    &out.display().to_string(),
                    "-storetype",
                    "JKS",
                    "-storepass",
                    STORE_PASSWORD,
                ],
            ),
            "jks" => {
                let src = work.join(format!("{stem}.p12"));
                p12(stem, &src);
                run_tool(
                    "keytool",
                    &[
                        "-importkeystore",
                        "-noprompt",
                        "-srckeystore",
                        &src.display().to_string(),
                        "-srcstoretype",
                        "PKCS12",
                        "-srcstorepass",
                        STORE_PASSWORD,
                        "-destkeystore",
                        &out.display().to_string(),
                        "-deststoretype",
                        "JKS",
                        "-deststorepass",
                        STORE_PASSWORD,
                    ],
                );
            }
            "pem" if stem.ends_with("ca") => {
                pki::write(dir, f, &ca.cert_pem()).unwrap();
            }
            "pem" => {
                let key = format!("{stem}.key");
                assert!(
                    files.contains(&key),
                    "{f} is named without its key {key}: {files:?}"
                );
                let leaf = ca.leaf(stem, &[&format!("{stem}.genesys.example")]);
                leaf.write(dir, stem).unwrap();
            }
            "key" => assert!(
                files.contains(&format!("{stem}.pem")),
                "{f} is named without its certificate {stem}.pem"
            ),
            // A proxy's user:password file.
            "cred" => {
                use std::os::unix::fs::PermissionsExt;
                let p = dir.join(f);
                std::fs::write(&p, "gms:example\n").unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            other => panic!("no generator for .{other} files ({f}): add one here"),
        }
    }
    text.replace(PREFIX, &format!("{}/", dir.display()))
}

/// `tls-sidecar check -c config`: (exit code, stdout, stderr).
fn check(config: &Path) -> (i32, String, String) {
    cli(&[&"check", &"-c", &config])
}

/// Runs `check` on `text` made concrete in a temp dir; asserts it passes
/// with exactly one `route ` line per route of `routes`, in order, and
/// exactly the warnings of its weak verify modes. Returns stdout.
fn passes_check(label: &str, text: &str, routes: &[&str]) -> String {
    let dir = tmpdir();
    let config = dir.path().join("tls-sidecar.toml");
    std::fs::write(&config, materialize(text, dir.path())).unwrap();
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, 0, "{label}: check failed:\n{stdout}{stderr}");
    assert_eq!(stderr, "", "{label}");

    let loaded = tls_sidecar::config::load_with_env(&config, Some(HashMap::new())).unwrap();
    let names: Vec<&str> = loaded.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, routes, "{label}");

    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("route ")).collect();
    assert_eq!(lines.len(), routes.len(), "{label}: {stdout}");
    let mut warnings = BTreeSet::new();
    for (line, route) in lines.iter().zip(&loaded.routes) {
        assert!(
            line.starts_with(&format!("route {} ", route.name)),
            "{label}: {line:?} is not route {}",
            route.name
        );
        let listen = match route.listen_tls {
            // Then its options (client-cert, allow=…), if any.
            Some(_) => format!(" listen tls {}", route.listen),
            None => format!(" listen plain {} -> ", route.listen),
        };
        assert!(line.contains(&listen), "{label}: {line:?} lacks {listen:?}");
        match &route.connect_tls {
            None => assert!(line.contains(" | plain | "), "{label}: {line:?}"),
            Some(t) => {
                let verify = format!(" verify={} ", t.verify.as_str());
                assert!(line.contains(&verify), "{label}: {line:?} lacks {verify:?}");
                if matches!(t.verify.as_str(), "none" | "chain") {
                    warnings.insert(format!(
                        "warning: route \"{}\": verify = \"{}\"",
                        route.name,
                        t.verify.as_str()
                    ));
                }
            }
        }
    }
    // Exactly the weak-mode warnings: no expiry, key permission or other one.
    let shown: BTreeSet<String> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(|l| {
            l.split_once(": the upstream")
                .map_or(l, |(w, _)| w)
                .to_owned()
        })
        .collect();
    assert_eq!(shown, warnings, "{label}: {stdout}");
    assert!(
        stdout.ends_with(&format!("config OK ({} warning(s))\n", warnings.len())),
        "{label}: {stdout}"
    );
    stdout
}

#[test]
fn conf_holds_exactly_the_examples_this_test_knows() {
    let mut found: Vec<String> = std::fs::read_dir(conf_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    found.sort();
    let mut known: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
    known.sort();
    assert_eq!(found, known);
    assert_eq!(found.len(), 3);
}

#[test]
fn every_example_config_passes_check_with_its_files_in_place() {
    let mut checked = 0;
    for (name, routes) in EXAMPLES {
        passes_check(name, &example(name), routes);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn the_gms_example_warns_about_each_trust_mode_and_chain_only_route() {
    let stdout = passes_check(
        "tls-sidecar.toml",
        &example("tls-sidecar.toml"),
        EXAMPLES[1].1,
    );
    for route in ["chatserver", "ucs", "emailserver"] {
        assert!(
            stdout.contains(&format!(
                "warning: route \"{route}\": verify = \"none\": the upstream's certificate is NOT checked"
            )),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(
            "warning: route \"urs\": verify = \"chain\": the upstream's host name is NOT checked"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.matches("warning: ").count(), 4, "{stdout}");
}

#[test]
fn the_gms_example_follows_the_gms_guide() {
    let text = example("tls-sidecar.toml");
    let dir = tmpdir();
    let config = dir.path().join("tls-sidecar.toml");
    std::fs::write(&config, materialize(&text, dir.path())).unwrap();
    let c = tls_sidecar::config::load_with_env(&config, Some(HashMap::new())).unwrap();
    let route = |name: &str| c.routes.iter().find(|r| r.name == name).unwrap();
    use tls_sidecar::config::{TlsVersion, Verify};

    // Statistics Server: mutual TLS.
    let stat = route("statserver").connect_tls.as_ref().unwrap();
    assert!(stat.client_cert.is_some());
    assert_eq!(stat.verify, Verify::Full);
    // Chat, UCS, E-mail: trust server mode.
    for name in ["chatserver", "ucs", "emailserver"] {
        assert_eq!(
            route(name).connect_tls.as_ref().unwrap().verify,
            Verify::None
        );
    }
    // ORS, Web API, URS: HTTPS with http/1.1.
    for name in ["orchestration", "webapi", "urs"] {
        assert_eq!(
            route(name).connect_tls.as_ref().unwrap().alpn,
            [b"http/1.1".to_vec()]
        );
    }
    // GMS's HTTPS: the Jetty policy, on 8443 in front of 8080.
    let web = route("gms-https");
    assert_eq!(web.listen, "0.0.0.0:8443".parse().unwrap());
    assert_eq!(web.connect[0].to_string(), "127.0.0.1:8080");
    assert!(web.connect_tls.is_none());
    let lt = web.listen_tls.as_ref().unwrap();
    assert_eq!(lt.protocols, [TlsVersion::Tls13, TlsVersion::Tls12]);
    assert!(!lt.sni_required);
    // Configuration Server is shipped commented out.
    assert!(c.routes.iter().all(|r| r.name != "confserver"));
    assert!(text.contains("# name = \"confserver\""));
}

#[test]
fn the_commented_out_configuration_server_route_is_valid_once_uncommented() {
    let text = with_block_enabled(&example("tls-sidecar.toml"), "confserver");
    let mut routes = vec!["confserver"];
    routes.extend_from_slice(EXAMPLES[1].1);
    let stdout = passes_check("confserver enabled", &text, &routes);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("route confserver "))
        .unwrap();
    assert!(
        line.contains(
            "-> connect confserv-a.genesys.example:2020,confserv-b.genesys.example:2020 | start=upgrade=script(2 steps) verify=full mutual=no"
        ),
        "{line}"
    );
}

#[test]
fn the_commented_out_client_identity_rules_are_valid_once_uncommented() {
    let text = example("tls-sidecar.toml");
    let mut uncommented = String::new();
    for line in text.lines() {
        let line = match line.strip_prefix("# ") {
            Some(l) if l.starts_with("client_ca = ") || l.starts_with("allow = ") => l,
            _ => line,
        };
        uncommented.push_str(line);
        uncommented.push('\n');
    }
    assert_eq!(
        uncommented
            .lines()
            .filter(|l| l.starts_with("client_ca = ") || l.starts_with("allow = "))
            .count(),
        2
    );
    let stdout = passes_check("client identity rules", &uncommented, EXAMPLES[1].1);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("route gms-https "))
        .unwrap();
    assert!(
        line.contains(" client-cert allow=dns:1,uri:1 -> "),
        "{line}"
    );
    assert!(stdout.contains("\nsandbox: on (Landlock"), "{stdout}");
}

#[test]
fn the_genesys_example_is_translated_with_genesys_meaning_and_check_prints_it() {
    let text = example("genesys-peers.toml");
    let stdout = passes_check("genesys-peers.toml", &text, EXAMPLES[2].1);
    for line in [
        "  genesys: tls-target-name-check=host → verify = \"full\"\n",
        "  genesys: port=7022 ignored: not a TLS setting (the route's listen and connect say where)\n",
        "  genesys: cipher-list names no TLS 1.3 suite: TLS 1.3 keeps all its suites\n",
        "  listen_tls.genesys: sec-protocol=TLSv13 → protocols = [\"TLSv1.3\"]\n",
        "warning: route \"tserver\": verify = \"chain\"",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    let dir = tmpdir();
    let config = dir.path().join("genesys-peers.toml");
    std::fs::write(&config, materialize(&text, dir.path())).unwrap();
    let c = tls_sidecar::config::load_with_env(&config, Some(HashMap::new())).unwrap();
    let route = |name: &str| c.routes.iter().find(|r| r.name == name).unwrap();
    use tls_sidecar::config::{TlsVersion, Verify};
    let stat = route("statserver").connect_tls.as_ref().unwrap();
    assert_eq!(stat.verify, Verify::Full);
    assert!(stat.client_cert.as_ref().unwrap().key.is_none());
    let t = route("tserver").connect_tls.as_ref().unwrap();
    assert_eq!(t.verify, Verify::Chain);
    assert_eq!(t.client_cert.as_ref().unwrap().chain.len(), 1);
    assert_eq!(
        route("msgserver").connect_tls.as_ref().unwrap().protocols,
        [TlsVersion::Tls12]
    );
    let port = route("gms-port").listen_tls.as_ref().unwrap();
    assert!(port.client_ca.is_some());
    assert_eq!(port.protocols, [TlsVersion::Tls13]);
}

/// The commented-out block starting `# [[route]]\n# name = "NAME"`,
/// uncommented.
fn with_block_enabled(text: &str, name: &str) -> String {
    let start = text
        .find(&format!("# [[route]]\n# name = \"{name}\""))
        .unwrap_or_else(|| panic!("the {name} block"));
    let end = text[start..]
        .find("\n\n")
        .map_or(text.len(), |e| start + e + 1);
    let block: String = text[start..end]
        .lines()
        .map(|l| {
            let l = l
                .strip_prefix('#')
                .expect("every line of the block is commented");
            format!("{}\n", l.strip_prefix(' ').unwrap_or(l))
        })
        .collect();
    format!("{}{block}{}", &text[..start], &text[end..])
}

#[test]
fn the_commented_out_proxy_protocol_and_forward_proxy_routes_are_valid_once_uncommented() {
    let text = example("tls-sidecar.toml");
    let text = with_block_enabled(&with_block_enabled(&text, "gms-https-lb"), "cloud-api");
    let mut routes = EXAMPLES[1].1.to_vec();
    routes.extend_from_slice(&["gms-https-lb", "cloud-api"]);
    let stdout = passes_check("PROXY protocol and via enabled", &text, &routes);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("route {name} ")))
            .unwrap()
            .to_owned()
    };
    assert!(
        line("gms-https-lb").contains(
            "listen tls 0.0.0.0:8444 -> connect 127.0.0.1:8081 | plain | accept-proxy-protocol proxy-protocol=v2 | not-after"
        ),
        "{stdout}"
    );
    let cloud = line("cloud-api");
    assert!(
        cloud.contains("-> connect api-a.genesys.example:443,api-b.genesys.example:443 via http://proxy.corp.example:3128 (credentials from "),
        "{cloud}"
    );
    assert!(
        cloud.contains("proxy.cred) | start=direct verify=full"),
        "{cloud}"
    );
}
