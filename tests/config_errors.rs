//! Bad configs through the real binary. `check` exits 1 and its message
//! names the file, the route and the key; `run` refuses the same config
//! with the same message before binding anything; a port in use makes `run`
//! fail naming the route (or the admin endpoint) and the address.
//!
//! The bad configs are files in `tests/fixtures/bad-configs/`, each with a
//! header saying what its error must name (see the README there).

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::*;

/// How many bad configs the fixtures directory holds: a loop over fewer
/// files than meant would pass and prove less.
const BAD_CONFIGS: usize = 11;

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `tls-sidecar COMMAND -c config` ([`cli_command`]), as uid/gid `as_user`
/// when given.
fn outcome(command: &[&str], config: &Path, as_user: Option<u32>) -> Outcome {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = command.iter().map(|c| c as _).collect();
    args.push(&"-c");
    args.push(&config);
    let mut cmd = cli_command(&args);
    if let Some(id) = as_user {
        cmd.uid(id).gid(id);
    }
    let (code, stdout, stderr) = cli_output(cmd);
    Outcome {
        code,
        stdout,
        stderr,
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The uid that cannot read a mode 0000 file: ours, or `nobody` for root.
const NOBODY: u32 = 65534;

/// One fixture, read: its text and what its error must name.
struct Fixture {
    name: String,
    text: String,
    route: String,
    key: String,
    says: String,
    setup: Option<String>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-configs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let header: HashMap<&str, &str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# ")?.split_once(": "))
                .collect();
            let get = |k: &str| {
                header
                    .get(k)
                    .unwrap_or_else(|| panic!("{}: no `# {k}:` header", p.display()))
                    .to_string()
            };
            Fixture {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                route: get("route"),
                key: get("key"),
                says: get("says"),
                setup: header.get("setup").map(|s| s.to_string()),
                text,
            }
        })
        .collect()
}

/// The files every fixture may name, written to `dir`.
fn fill(dir: &Path) {
    let pki = Pki::new(dir);
    pki.ca
        .leaf("other", &["other"])
        .write(dir, "other")
        .unwrap();
    pki::write(dir, "unreadable.pem", &pki.ca.cert_pem()).unwrap();
}

#[test]
fn the_fixtures_directory_holds_the_expected_number_of_bad_configs() {
    let all = fixtures();
    assert_eq!(
        all.len(),
        BAD_CONFIGS,
        "{:?}",
        all.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
}

#[test]
fn check_and_run_name_the_file_route_and_key_of_every_bad_config() {
    let mut tried = 0;
    for f in fixtures() {
        let dir = tmpdir();
        let d = dir.path();
        fill(d);
        let mut as_user = None;
        if f.setup.as_deref() == Some("unreadable") {
            std::fs::set_permissions(
                d.join("unreadable.pem"),
                std::fs::Permissions::from_mode(0o000),
            )
            .unwrap();
            if is_root() {
                // root reads any file: run the sidecar as nobody, who may
                // read the directory and the config but not that file.
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
                as_user = Some(NOBODY);
            }
        } else {
            assert_eq!(f.setup, None, "{}: unknown setup", f.name);
        }
        // Held while `run` starts: a `run` that bound before validating
        // would fail with "failed to bind" instead of the config error.
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port().to_string();
        let d_str = d.display().to_string();
        let fill_in = |s: &str| s.replace("@DIR@", &d_str).replace("@PORT@", &port);
        let config = d.join(&f.name);
        std::fs::write(&config, fill_in(&f.text)).unwrap();
        if as_user.is_some() {
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        }

        let want = format!(
            "error: {}: route \"{}\": key `{}`: ",
            config.display(),
            f.route,
            f.key
        );
        let says = fill_in(&f.says);
        let check = outcome(&["check"], &config, as_user);
        assert_eq!(
            check.code, 1,
            "{}: {}{}",
            f.name, check.stdout, check.stderr
        );
        assert_eq!(check.stdout, "", "{}", f.name);
        assert!(
            check.stderr.starts_with(&want),
            "{}: {:?} does not start with {want:?}",
            f.name,
            check.stderr
        );
        assert!(
            check.stderr.contains(&says),
            "{}: {:?} lacks {says:?}",
            f.name,
            check.stderr
        );
        assert_eq!(check.stderr.lines().count(), 1, "{}: one line", f.name);

        let run = outcome(&["run"], &config, as_user);
        assert_ne!(run.code, 0, "{}", f.name);
        assert!(
            run.stderr.contains(check.stderr.trim_end()),
            "{}: run says {:?}, check said {:?}",
            f.name,
            run.stderr,
            check.stderr
        );
        assert!(!run.stderr.contains("failed to bind"), "{}", f.name);
        // One rule for every command: an invalid config exits 1, and each
        // says what `check` said.
        for cmd in [&["run"][..], &["probe", "--all"], &["reload"]] {
            let o = outcome(cmd, &config, as_user);
            assert_eq!(o.code, 1, "{} {cmd:?}: {}{}", f.name, o.stdout, o.stderr);
            assert!(
                o.stderr.contains(check.stderr.trim_end()),
                "{} {cmd:?} says {:?}, check said {:?}",
                f.name,
                o.stderr,
                check.stderr
            );
        }
        drop(held);
        tried += 1;
    }
    assert_eq!(tried, BAD_CONFIGS);
}

/// A route presenting the client certificate of `pki`, listening on a free port.
fn mutual_route(pki: &Pki) -> String {
    format!(
        "[[route]]\nname = \"statserver\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"statserv.genesys.example:7022\"]\n\
         [route.connect_tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        free_port(),
        pki.ca_path.display(),
        pki.client.0.display(),
        pki.client.1.display()
    )
}

#[test]
fn a_group_readable_key_is_a_warning_by_default() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    std::fs::set_permissions(&pki.client.1, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = d.join("keys.toml");
    std::fs::write(&config, mutual_route(&pki)).unwrap();
    let out = outcome(&["check"], &config, None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let warning = format!(
        "warning: route \"statserver\": key `connect_tls.key`: private key {} is readable by group or others (mode 0644); make it 0600 or 0400 for the sidecar's user\n",
        pki.client.1.display()
    );
    assert!(out.stdout.contains(&warning), "{}", out.stdout);
    assert!(
        out.stdout.ends_with("config OK (1 warning(s))\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_group_readable_key_is_an_error_with_strict_key_permissions() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    std::fs::set_permissions(&pki.client.1, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = d.join("keys.toml");
    std::fs::write(
        &config,
        format!("strict_key_permissions = true\n{}", mutual_route(&pki)),
    )
    .unwrap();
    let want = format!(
        "error: {}: route \"statserver\": key `connect_tls.key`: private key {} is readable by group or others (mode 0644); make it 0600 or 0400 for the sidecar's user (strict_key_permissions = true)\n",
        config.display(),
        pki.client.1.display()
    );
    let out = outcome(&["check"], &config, None);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, want);
    let run = outcome(&["run"], &config, None);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains(want.trim_end()), "{}", run.stderr);

    // The same key at 0600 passes, with no warning.
    std::fs::set_permissions(&pki.client.1, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = outcome(&["check"], &config, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.ends_with("config OK (0 warning(s))\n"),
        "{}",
        out.stdout
    );
}

/// Runs the config `text(addr)` while `addr` is taken: `check` passes (it
/// binds nothing), `run` exits 3 (a valid config the world refuses) and
/// says `says(addr)`.
fn run_with_a_taken_port(text: impl Fn(SocketAddr) -> String, says: impl Fn(SocketAddr) -> String) {
    let dir = tmpdir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = dir.path().join("taken.toml");
    std::fs::write(&config, text(addr)).unwrap();
    let check = outcome(&["check"], &config, None);
    assert_eq!(check.code, 0, "check does not bind: {}", check.stderr);
    let out = outcome(&["run"], &config, None);
    assert_eq!(
        out.code, 3,
        "a valid config that cannot be served: {}",
        out.stderr
    );
    assert!(out.stderr.contains(&says(addr)), "{}", out.stderr);
}

#[test]
fn run_names_the_route_and_address_when_a_port_is_taken() {
    run_with_a_taken_port(
        |addr| {
            format!(
                "[[route]]\nname = \"chatserver\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"chat.genesys.example:4125\"]\n\
                 [[route]]\nname = \"msgserver\"\nlisten = \"{addr}\"\nconnect = [\"msgserv.genesys.example:4025\"]\n",
                free_port()
            )
        },
        |addr| {
            format!(
                "failed to bind route \"msgserver\" on {addr} (key `listen`): Address already in use"
            )
        },
    );
}

#[test]
fn run_names_the_admin_endpoint_when_its_port_is_taken() {
    run_with_a_taken_port(
        |addr| {
            let chat = route(
                "chatserver",
                free_port(),
                &["chat.genesys.example:4125".to_owned()],
                "",
            );
            config_text(addr, "", &chat, "debug")
        },
        |addr| format!("failed to bind the admin endpoint on {addr} (key `admin.listen`)"),
    );
}

#[test]
fn a_ca_that_verify_none_or_pin_would_ignore_is_a_warning() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let config = d.join("ignored-ca.toml");
    std::fs::write(
        &config,
        format!(
            "[[route]]\nname = \"chatserver\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"chat.genesys.example:4443\"]\n\
             [route.connect_tls]\nverify = \"none\"\nca = \"{}\"\n",
            free_port(),
            pki.ca_path.display()
        ),
    )
    .unwrap();
    let out = outcome(&["check"], &config, None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "warning: route \"chatserver\": connect_tls.ca is not used: with verify = \"none\" or \"pin\" no chain is checked against it\n"
        ),
        "{}",
        out.stdout
    );
}
