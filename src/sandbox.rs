//! The sandbox (`sandbox = true`, the default): once the config is loaded
//! and before any other thread starts, the process restricts its own file
//! access with Landlock to reading what it needs — the directory of the
//! config file and of every file it names ([`Config::files`]; so reload,
//! certificate rotation and the Kubernetes `..data` symlink swap keep
//! working), the public part of the operating system's trust store, the
//! resolver's files, `/proc/self` for the process metrics — and nothing
//! else: no writes anywhere, no reads elsewhere. A bug that lets a peer
//! steer a file path, or a compromised process, can no longer read other
//! secrets on the host.
//!
//! Narrow on purpose: never `/` or a top-level directory such as `/etc`,
//! and never a directory with a `private` subdirectory the config does not
//! name (`/etc/ssl`, `/etc/pki/tls`); a file named directly in such a
//! directory is allowed alone (rotation by rename then needs a restart).
//! `check` enters the same sandbox before it reads the files, so a file
//! `run` could not read fails `check` with the same words.
//!
//! Best effort: the rules are built for Landlock ABI v8's file rights and
//! the kernel enforces what it supports; a kernel without Landlock gets one
//! log line and the sidecar goes on. Threads inherit the domain, which is
//! why it is entered before the runtime starts its workers.
//!
//! Network rights are not handled (the sidecar binds and connects by
//! design), nor is ABI v9's `ResolveUnix`, which would block systemd's
//! notify socket.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::{Config, ConfigError, Problem};

/// What the sandbox lets the process read, beneath each path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Absolute paths (directories, or single files), each once.
    pub read: Vec<PathBuf>,
    /// Directories where files may also be made, written and removed:
    /// only that of `run --pid-file`, when given.
    pub write: Vec<PathBuf>,
}

/// The public parts of the operating system's trust store: what
/// rustls-native-certs (openssl-probe) reads on Linux, and where its links
/// lead (`/etc/ssl/certs` into `/usr/share/ca-certificates`, RHEL's bundle
/// into `/etc/pki/ca-trust/extracted`, Arch's into
/// `/etc/ca-certificates/extracted`). Never `/etc/ssl` or `/etc/pki`
/// whole: their `private` directories hold the host's keys.
const TRUST_STORE: &[&str] = &[
    "/etc/ssl/certs",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/certs",
    "/etc/pki/tls/cert.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted",
    "/etc/ca-certificates/extracted",
    "/etc/security/certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/opt/etc/ssl/certs",
];

/// What glibc's resolver (getaddrinfo, run by tokio's blocking threads)
/// reads: its configuration, the loader cache and the libraries for the NSS
/// modules that nsswitch.conf may name (dlopen'ed on first use).
const RESOLVER: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/ld.so.cache",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
];

/// The process metrics read `/proc/self` (stat, status, limits, fd) and
/// the boot time in `/proc/stat` (for the start time); the runtime's CPU
/// count reads the cgroup's CPU limit.
const PROCESS: &[&str] = &["/proc/self", "/proc/stat", "/sys/fs/cgroup"];

/// The rules for serving `config`, read from `config_path`: the fixed
/// system paths above (those that exist); for the config file and every
/// file it names ([`Config::files`]), its directory as written and, when a
/// symlink leads elsewhere, the directory it resolves to, each narrowed to
/// the file alone where the directory is too broad ([`whole_dir_allowed`]);
/// and the trust store paths of `SSL_CERT_FILE` / `SSL_CERT_DIR`.
pub fn rules(config: &Config, config_path: &Path) -> Rules {
    let mut read: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if p.exists() && !read.contains(&p) {
            read.push(p);
        }
    };
    let named: Vec<PathBuf> = std::iter::once(config_path.to_owned())
        .chain(config.file_paths())
        .map(|p| absolute(&p))
        .collect();
    for f in &named {
        for p in allowances(f, &named) {
            add(p);
        }
    }
    for p in TRUST_STORE.iter().chain(RESOLVER).chain(PROCESS) {
        add(PathBuf::from(p));
    }
    for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        if let Some(v) = std::env::var_os(var) {
            for p in std::env::split_paths(&v) {
                // A file as it is; a directory under the same rule as
                // the config's (never `/etc`, never `/etc/ssl` whole).
                let p = absolute(&p);
                if !p.is_dir() || whole_dir_allowed(&p, &named) {
                    add(p);
                }
            }
        }
    }
    Rules {
        read,
        write: Vec::new(),
    }
}

/// What to allow for the named file `file` (absolute): the allowance of
/// the path as written and, when a symlink leads elsewhere, that of the
/// file it resolves to.
fn allowances(file: &Path, named: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![allowance(file, named)];
    if let Ok(real) = std::fs::canonicalize(file) {
        let a = allowance(&real, named);
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The directory of `file` when it may be allowed whole (so a rotation
/// that renames a new file over it, or swaps a `..data` link beside it,
/// stays readable), else `file` alone.
fn allowance(file: &Path, named: &[PathBuf]) -> PathBuf {
    match file.parent() {
        Some(dir) if whole_dir_allowed(dir, named) => dir.to_owned(),
        _ => file.to_owned(),
    }
}

/// May all of `dir` be readable? Not `/` or a top-level directory (`/etc`,
/// `/root`, `/home`, `/tmp`…: each holds other secrets), nor a directory
/// with a `private` subdirectory that no named file is in (`/etc/ssl`,
/// `/etc/pki/tls`: their `private` holds the host's keys). A `private`
/// that is a symlink does not count: Landlock judges a file by where it
/// really is, so allowing `dir` does not reach the link's target.
pub fn whole_dir_allowed(dir: &Path, named: &[PathBuf]) -> bool {
    if top_level(dir) {
        return false;
    }
    let private = dir.join("private");
    let is_dir = std::fs::symlink_metadata(&private).is_ok_and(|m| m.is_dir());
    !is_dir
        || named.iter().any(|n| {
            n.starts_with(&private)
                || std::fs::canonicalize(n).is_ok_and(|c| c.starts_with(&private))
        })
}

/// `/` or a directory directly beneath it.
fn top_level(p: &Path) -> bool {
    p.components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .count()
        <= 1
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

impl Rules {
    /// Also lets the process write `pid_file` (its directory: the file is
    /// made at start and removed at exit).
    pub fn with_pid_file(mut self, pid_file: &Path) -> Rules {
        if let Some(dir) = absolute(pid_file).parent() {
            self.write.push(dir.to_owned());
        }
        self
    }

    /// Would the sandbox let the process read `path`? (By the paths as
    /// written; the kernel decides by the file's place in the tree.)
    pub fn covers(&self, path: &Path) -> bool {
        let p = absolute(path);
        let real = std::fs::canonicalize(&p).ok();
        self.read
            .iter()
            .any(|r| p.starts_with(r) || real.as_ref().is_some_and(|c| c.starts_with(r)))
    }
}

/// How entering the sandbox went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Every requested restriction is enforced.
    Full,
    /// The kernel enforces part of them (an older Landlock ABI).
    Partial,
    /// The kernel has no Landlock (or it is disabled): nothing is restricted.
    Unsupported,
}

/// A failure to build or enter the sandbox (not a missing kernel feature:
/// that is [`Entered::Unsupported`]).
#[derive(Debug, thiserror::Error)]
#[error("failed to enter the Landlock sandbox: {0}")]
pub struct SandboxError(#[from] landlock::RulesetError);

/// The rules in force, once entered (and enforced at least in part).
static ACTIVE: OnceLock<Rules> = OnceLock::new();

/// Restricts this thread, and every thread it starts from now on, to
/// `rules`. Call it before the runtime starts.
pub fn enter(rules: &Rules) -> Result<Entered, SandboxError> {
    use landlock::{
        path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, ABI,
    };
    // ABI v8's file rights: everything up to IoctlDev, without v9's
    // ResolveUnix (see the module comment).
    let abi = ABI::V8;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(&rules.read, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(
            &rules.write,
            AccessFs::from_read(abi) | AccessFs::from_write(abi),
        ))?
        .restrict_self()?;
    let entered = match status.ruleset {
        RulesetStatus::FullyEnforced => Entered::Full,
        RulesetStatus::PartiallyEnforced => Entered::Partial,
        RulesetStatus::NotEnforced => Entered::Unsupported,
    };
    if entered != Entered::Unsupported {
        let _ = ACTIVE.set(rules.clone());
    }
    Ok(entered)
}

/// Enters the sandbox for `config` (when `sandbox = true`) and says so in
/// one log line. Never stops the sidecar: at worst it serves unsandboxed,
/// and says that.
pub fn apply(config: &Config, config_path: &Path, pid_file: Option<&Path>) {
    if !config.sandbox {
        tracing::info!("sandbox: off (sandbox = false)");
        return;
    }
    let mut rules = rules(config, config_path);
    if let Some(p) = pid_file {
        rules = rules.with_pid_file(p);
    }
    tracing::debug!(paths = ?rules.read, "sandbox: read-only access beneath these paths");
    match enter(&rules) {
        Ok(Entered::Full) => tracing::info!(
            paths = rules.read.len(),
            "sandbox: Landlock enforced; the process may only read the config's and its files' directories, the trust store and the resolver's files"
        ),
        Ok(Entered::Partial) => tracing::info!(
            paths = rules.read.len(),
            "sandbox: Landlock partly enforced (this kernel supports only some of its file rights)"
        ),
        Ok(Entered::Unsupported) => tracing::warn!(
            "sandbox: this kernel has no Landlock (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK, \"landlock\" in the lsm= list); going on without it"
        ),
        Err(e) => tracing::warn!("sandbox: {e}; going on without it"),
    }
}

/// The rules in force, if the sandbox is entered.
pub fn active() -> Option<&'static Rules> {
    ACTIVE.get()
}

/// When `err` is a file the sandbox kept the process from reading, the
/// words that say so and what to do.
pub fn explain(err: &ConfigError) -> Option<String> {
    match &err.problem {
        Problem::File { path, source } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            active()?.denied(path)
        }
        _ => None,
    }
}

/// `err` as `run` and `check` print it: with [`explain`]'s words when the
/// sandbox is why.
pub fn describe(err: &ConfigError) -> String {
    match explain(err) {
        Some(hint) => format!("{err} ({hint})"),
        None => err.to_string(),
    }
}

impl Rules {
    /// Why these rules keep the process from reading `path`, if they do.
    pub fn denied(&self, path: &Path) -> Option<String> {
        let p = absolute(path);
        if !self.covers(&p) {
            return Some(format!(
                "{} is outside the directories the sandbox allowed at start (those of the config and of the files it named then): restart the sidecar to include it, or set sandbox = false",
                p.display()
            ));
        }
        let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        let alone = self
            .read
            .iter()
            .any(|r| (*r == p || *r == real) && !r.is_dir());
        alone.then(|| {
            format!(
                "the sandbox allowed the file {} alone, not its directory (a top-level directory, or one whose private/ the config does not name): a file renamed over it since is not covered; restart the sidecar, or keep the file in a directory of its own",
                p.display()
            )
        })
    }
}

#[cfg(test)]
mod tests;
