//! Build script: names the build in `tls-sidecar --version`.
//!
//! - `TLS_SIDECAR_COMMIT`: the commit, from `git rev-parse --short HEAD`;
//!   outside a git checkout (a source tarball, a container build without
//!   `.git`) the variable of that name given at build time, else "unknown".
//! - `TLS_SIDECAR_RUSTLS`, `TLS_SIDECAR_AWS_LC_RS`: the TLS library versions
//!   this binary was built with, read from Cargo.lock.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TLS_SIDECAR_COMMIT");
    println!("cargo:rerun-if-changed=Cargo.lock");
    for p in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", p]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // The branch's own ref file, which moves with every commit.
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &r]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let commit = git(&["rev-parse", "--short", "HEAD"])
        .or_else(|| std::env::var("TLS_SIDECAR_COMMIT").ok())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TLS_SIDECAR_COMMIT={commit}");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    for (krate, var) in [
        ("rustls", "TLS_SIDECAR_RUSTLS"),
        ("aws-lc-rs", "TLS_SIDECAR_AWS_LC_RS"),
    ] {
        let v = locked_version(&lock, krate).unwrap_or_else(|| "unknown".to_owned());
        println!("cargo:rustc-env={var}={v}");
    }
}

/// The trimmed output of a successful `git` command.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// The version of `krate` in Cargo.lock (the first entry of that name).
fn locked_version(lock: &str, krate: &str) -> Option<String> {
    let needle = format!("name = \"{krate}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let len = lock[start..].find('"')?;
    Some(lock[start..start + len].to_owned())
}
