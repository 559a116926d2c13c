//! Bad configs through the real binary: `check` exits 1 naming the file,
//! the route and the key; `run` refuses the same before binding anything,
//! and names the route and address when a port is taken.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

fn cli(args: &[&str], config: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tls-sidecar"))
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_names_the_file_route_and_key_of_each_error_and_run_refuses_the_same() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let other = pki.ca.leaf("other", &["other"]).write(d, "other").unwrap();
    let unreadable = pki::write(d, "unreadable.pem", "x").unwrap();
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (cert, ca) = (
        pki.client.0.display().to_string(),
        pki.ca_path.display().to_string(),
    );
    let route = |tls: &str| {
        format!("[[route]]\nname = \"statserver\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"stat.example:7022\"]\n[route.connect_tls]\n{tls}\n", free_port())
    };
    let running_as_root = is_root();
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("{}bogus = 1\n", route("")), "statserver", "bogus"),
        (route(&format!("ca = \"{}/missing-ca.pem\"", d.display())), "key `connect_tls.ca`", "missing-ca.pem: No such file"),
        (route(&format!("ca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{}\"", other.1.display())), "key `connect_tls.key`", "does not match the certificate"),
        (route("verify = \"pin\""), "key `connect_tls.pins`", "needs pins"),
        (route("protocols = [\"TLSv1.1\"]"), "key `connect_tls.protocols`", "RFC 8996"),
        (route(&format!("cert = \"{cert}\"")), "key `connect_tls.key`", "without key"),
        (route(&format!("ca = \"{}\"", pki.client.1.display())), "key `connect_tls.ca`", "holds no PEM certificate"),
        (
            format!("{}[[route]]\nname = \"other\"\nlisten = \"127.0.0.1:1\"\nconnect = [\"x:1\"]\n[[route]]\nname = \"third\"\nlisten = \"127.0.0.1:1\"\nconnect = [\"x:1\"]\n", route("")),
            "route \"third\": key `listen`",
            "already used by other",
        ),
    ];
    let mut cases = cases;
    if !running_as_root {
        cases.push((
            route(&format!("ca = \"{}\"", unreadable.display())),
            "key `connect_tls.ca`",
            "Permission denied",
        ));
    }
    for (i, (text, place, words)) in cases.iter().enumerate() {
        let config = d.join(format!("bad{i}.toml"));
        std::fs::write(&config, text).unwrap();
        let (code, _, err) = cli(&["check"], &config);
        assert_eq!(code, 1, "{text}\n{err}");
        assert!(
            err.contains(&config.display().to_string()),
            "names the file: {err}"
        );
        assert!(
            err.contains("statserver") || err.contains("third"),
            "names the route: {err}"
        );
        assert!(
            err.contains(place) || (i == 0 && err.contains("bogus")),
            "names the key ({place}): {err}"
        );
        assert!(err.contains(words), "says why ({words}): {err}");
        let (code, _, run_err) = cli(&["run"], &config);
        assert_ne!(code, 0);
        assert!(run_err.contains(words), "run refuses the same: {run_err}");
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn group_readable_keys_warn_and_strict_key_permissions_makes_them_errors() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    std::fs::set_permissions(&pki.client.1, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tls = format!(
        "[[route]]\nname = \"statserver\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"stat.example:7022\"]\n[route.connect_tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        free_port(),
        pki.ca_path.display(),
        pki.client.0.display(),
        pki.client.1.display()
    );
    let config = d.join("keys.toml");
    std::fs::write(&config, &tls).unwrap();
    let (code, out, _) = cli(&["check"], &config);
    assert_eq!(code, 0);
    assert!(
        out.contains("warning: route \"statserver\": key `connect_tls.key`: private key")
            && out.contains("(mode 0644)"),
        "{out}"
    );
    std::fs::write(&config, format!("strict_key_permissions = true\n{tls}")).unwrap();
    let (code, _, err) = cli(&["check"], &config);
    assert_eq!(code, 1);
    assert!(
        err.contains("key `connect_tls.key`") && err.contains("strict_key_permissions = true"),
        "{err}"
    );
}

#[test]
fn run_names_the_route_and_address_when_a_port_is_taken() {
    let dir = tmpdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = dir.path().join("taken.toml");
    std::fs::write(
        &config,
        format!(
            "[[route]]\nname = \"msgserver\"\nlisten = \"{addr}\"\nconnect = [\"x.example:1\"]\n"
        ),
    )
    .unwrap();
    let (code, _, err) = cli(&["run"], &config);
    assert_ne!(code, 0);
    assert!(
        err.contains("route \"msgserver\"")
            && err.contains(&addr.to_string())
            && err.contains("key `listen`"),
        "{err}"
    );
}
