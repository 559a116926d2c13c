//! Every example in conf/ passes `tls-sidecar check`, with the files it
//! names generated into a temp dir under the same names.

mod common;

use std::process::Command;

use common::*;

/// The example configs shipped; the test fails if the count changes
/// without this list (a loop over zero files proves nothing).
const EXAMPLES: &[&str] = &["minimal.toml", "tls-sidecar.toml"];

#[test]
fn every_example_config_passes_check_with_its_files_in_place() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf");
    let mut found: Vec<String> = std::fs::read_dir(conf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    found.sort();
    assert_eq!(found, EXAMPLES);

    for name in EXAMPLES {
        let dir = tmpdir();
        let d = dir.path();
        let text = std::fs::read_to_string(format!("{conf}/{name}")).unwrap();
        // Generate every /etc/tls-sidecar/FILE the example names.
        let ca = Ca::new("Genesys CA");
        let mut files: Vec<&str> = text
            .match_indices("/etc/tls-sidecar/")
            .map(|(i, _)| {
                let rest = &text[i + "/etc/tls-sidecar/".len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        files.sort();
        files.dedup();
        for f in &files {
            let stem = f.rsplit_once('.').unwrap().0;
            if f.ends_with(".key") {
                continue; // written with its certificate
            }
            if stem.contains("ca") {
                pki::write(d, f, &ca.cert_pem()).unwrap();
            } else {
                let leaf = ca.leaf(stem, &["gms.genesys.example"]);
                pki::write(d, f, &leaf.cert_pem).unwrap();
                pki::write(d, &format!("{stem}.key"), &leaf.key_pem).unwrap();
            }
        }
        let config = d.join(name);
        std::fs::write(
            &config,
            text.replace("/etc/tls-sidecar/", &format!("{}/", d.display())),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tls-sidecar"))
            .arg("check")
            .arg("-c")
            .arg(&config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let routes = text.lines().filter(|l| l.trim() == "[[route]]").count();
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with("route ")).count(),
            routes,
            "{name}: {stdout}"
        );
        if text.contains("verify = \"none\"") {
            assert!(
                stdout.contains("warning: route \"chatserver\": verify = \"none\""),
                "{stdout}"
            );
        }
        if text.contains("verify = \"chain\"") {
            assert!(
                stdout.contains("warning: route \"urs\": verify = \"chain\""),
                "{stdout}"
            );
        }
    }
}
