//! The command line's conventions (issue 24): `-c` before or after the
//! command, `--version` with the commit and the TLS libraries, shell
//! completions, `--json` on `check` and `probe` with their documented
//! fields, `probe ROUTE --all` a usage error, `-q` on `probe`, and
//! `reload --pid` for a sidecar without `[admin]` (what `systemctl reload`
//! runs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Sidecar;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tls-sidecar"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env_remove("TLS_SIDECAR_CONFIG")
        .output()
        .expect("run tls-sidecar")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A config with one plain route to a closed local port, no `[admin]`.
fn plain_config(dir: &Path) -> PathBuf {
    let port = common::free_port();
    let upstream = common::free_port();
    let path = dir.join("plain.toml");
    std::fs::write(
        &path,
        format!(
            "[log]\nlevel = \"debug\"\n\n[[route]]\nname = \"plain\"\nlisten = \"127.0.0.1:{port}\"\nconnect = [\"127.0.0.1:{upstream}\"]\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn config_is_global_before_or_after_the_command() {
    let dir = common::tmpdir();
    let c = plain_config(dir.path());
    let c = c.to_str().unwrap();
    for args in [
        vec!["-c", c, "check"],
        vec!["check", "-c", c],
        vec!["--config", c, "check", "--json"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
    // And from the environment.
    let o = bin()
        .args(["check"])
        .env("TLS_SIDECAR_CONFIG", c)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn version_names_the_commit_and_the_tls_libraries() {
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(&format!(
            "tls-sidecar {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(out.contains("rustls 0.23."), "{out}");
    assert!(out.contains("aws-lc-rs "), "{out}");
    assert!(!out.contains("kernel TLS"), "{out}");
    let o = run(&["--version", "--verbose"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\nkernel TLS: "), "{out}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("tls-sidecar"), "{shell}");
        assert!(
            out.contains("probe") && out.contains("completions"),
            "{shell}"
        );
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn usage_errors_exit_2() {
    let dir = common::tmpdir();
    let c = plain_config(dir.path());
    let c = c.to_str().unwrap();
    for args in [
        vec!["-c", c, "probe", "plain", "--all"],
        vec!["-c", c, "probe"],
        vec!["-c", c, "probe", "nosuchroute"],
        vec!["frobnicate"],
        vec![],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

#[test]
fn help_ends_with_the_exit_statuses_and_the_environment() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    let tail = &out[out.find("Exit status:").expect("exit statuses")..];
    for needle in [
        "  0  done",
        "  1  the config",
        "  2  usage",
        "  3  the config is valid but the world said no",
        "Environment:",
        "TLS_SIDECAR_CONFIG",
        "TLS_SIDECAR_LOG",
        "TLS_SIDECAR__",
        "NO_COLOR",
        "TLS_SIDECAR_SPLICE",
    ] {
        assert!(tail.contains(needle), "{needle} in\n{tail}");
    }
}

#[test]
fn check_json_has_the_documented_fields() {
    let dir = common::tmpdir();
    let c = plain_config(dir.path());
    let o = run(&["-c", c.to_str().unwrap(), "check", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["valid"], true);
    for k in [
        "config",
        "routes",
        "admin",
        "sandbox",
        "kernel_tls",
        "warnings",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    let r = &v["routes"][0];
    assert_eq!(r["name"], "plain");
    assert_eq!(r["connect_start"], "plain");
    assert_eq!(r["engine"], "plain");
    for k in [
        "listen",
        "listen_tls",
        "client_cert_required",
        "connect",
        "verify",
        "mutual",
        "protocols",
        "kernel_tls",
        "certificates",
    ] {
        assert!(r.get(k).is_some(), "{k} in {r}");
    }
    // An invalid config: valid false, the error, exit 1.
    std::fs::write(&c, "[[route]]\nname = \"x\"\n").unwrap();
    let o = run(&["-c", c.to_str().unwrap(), "check", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("route"), "{v}");
}

#[test]
fn probe_json_and_quiet() {
    let dir = common::tmpdir();
    let c = plain_config(dir.path());
    let c = c.to_str().unwrap();
    // The upstream port is closed: the probe fails with connect_error.
    let o = run(&["-c", c, "probe", "plain", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["route"], "plain");
    assert_eq!(v["ok"], false);
    let a = &v["attempts"][0];
    assert_eq!(a["ok"], false);
    assert_eq!(a["reason"], "connect_error");
    for k in ["upstream", "version", "cipher", "alpn", "chain"] {
        assert!(a.get(k).is_some(), "{k} in {a}");
    }
    let o = run(&["-c", c, "probe", "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["routes"][0]["route"], "plain");
    // -q: nothing on stdout, the failed route on stderr.
    let o = run(&["-c", c, "probe", "plain", "-q"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("connect_error"),
        "{}",
        text(&o)
    );
}

#[test]
fn reload_signals_the_main_pid_of_a_sidecar_without_admin() {
    let dir = common::tmpdir();
    let c = plain_config(dir.path());
    // The admin address is never asked: the config has no [admin].
    let s = Sidecar::spawn(&c, "127.0.0.1:9".parse().unwrap(), &[]);
    assert!(s.wait_log("serving routes=1", 30), "{}", s.logs());
    let pid = s.pid().to_string();
    let cs = c.to_str().unwrap();
    // Without --pid there is nobody to ask: 2.
    let o = run(&["-c", cs, "reload"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // With --pid (systemd: $MAINPID): validated, signalled, taken.
    let o = run(&["-c", cs, "reload", "--pid", &pid]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("sent SIGHUP to pid {pid}")));
    assert!(s.wait_log("config reloaded", 30), "{}", s.logs());
    // An invalid file: 1, and nothing is signalled.
    std::fs::write(&c, "[[route]]\nname = \"broken\"\n").unwrap();
    let o = run(&["-c", cs, "reload", "--pid", &pid]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A pid that is not a sidecar is never signalled.
    let me = std::process::id().to_string();
    let c = plain_config(dir.path());
    let o = run(&["-c", c.to_str().unwrap(), "reload", "--pid", &me]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a tls-sidecar"),
        "{}",
        text(&o)
    );
}

#[test]
fn healthcheck_follows_the_configs_admin_address() {
    let dir = common::tmpdir();
    // No [admin]: healthy, nothing to ask.
    let c = plain_config(dir.path());
    let o = run(&["-c", c.to_str().unwrap(), "healthcheck"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // [admin] on a port nothing listens on: unhealthy.
    let port = common::free_port();
    let text_cfg = std::fs::read_to_string(&c).unwrap();
    std::fs::write(
        &c,
        format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n{text_cfg}"),
    )
    .unwrap();
    let o = run(&["-c", c.to_str().unwrap(), "healthcheck"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A running sidecar with [admin]: healthy.
    let route = format!(
        "[[route]]\nname = \"p\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"127.0.0.1:{}\"]\n",
        common::free_port(),
        common::free_port()
    );
    let s = Sidecar::start(dir.path(), &route);
    let o = run(&["-c", s.config.to_str().unwrap(), "healthcheck"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
