//! The sandbox (`sandbox = true`, the default): once the config is loaded
//! and before any other thread starts, the process restricts its own file
//! access with Landlock to reading what it needs — the directories of the
//! config file and of every file it names (so reload, certificate rotation
//! and the Kubernetes `..data` symlink swap keep working), the operating
//! system's trust store, the resolver's files, `/proc/self` for the process
//! metrics — and nothing else: no writes anywhere, no reads elsewhere. A
//! bug that lets a peer steer a file path, or a compromised process, can no
//! longer read other secrets on the host.
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
use crate::watch::material_paths;

/// What the sandbox lets the process read, beneath each path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Absolute paths (directories, or single files), each once.
    pub read: Vec<PathBuf>,
    /// Directories where files may also be made, written and removed:
    /// only that of `run --pid-file`, when given.
    pub write: Vec<PathBuf>,
}

/// The operating system's trust store (rustls-native-certs looks here, as
/// OpenSSL does; `/etc/ssl/certs` links into `/usr/share/ca-certificates`).
const TRUST_STORE: &[&str] = &[
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/usr/lib/ssl",
    "/usr/local/ssl",
    "/etc/openssl",
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
/// system paths above (those that exist), the directory of the config and
/// of every file it names — each as written and, when a symlink leads
/// elsewhere, where it leads — and the trust store paths of
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`.
pub fn rules(config: &Config, config_path: &Path) -> Rules {
    let mut read: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if p.exists() && !read.contains(&p) {
            read.push(p);
        }
    };
    let files = std::iter::once(config_path.to_owned()).chain(material_paths(config));
    for f in files {
        for dir in dirs_of(&f) {
            add(dir);
        }
    }
    for p in TRUST_STORE.iter().chain(RESOLVER).chain(PROCESS) {
        add(PathBuf::from(p));
    }
    for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        if let Some(v) = std::env::var_os(var) {
            for p in std::env::split_paths(&v) {
                add(absolute(&p));
            }
        }
    }
    Rules {
        read,
        write: Vec::new(),
    }
}

/// The directory of `file` as written (absolute), and that of the file it
/// resolves to when a symlink leads elsewhere.
fn dirs_of(file: &Path) -> Vec<PathBuf> {
    let written = absolute(file);
    let mut out = Vec::new();
    out.extend(written.parent().map(Path::to_path_buf));
    if let Ok(real) = std::fs::canonicalize(&written) {
        if let Some(d) = real.parent() {
            if !out.iter().any(|o| o == d) {
                out.push(d.to_path_buf());
            }
        }
    }
    out
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
    let rules = active()?;
    match &err.problem {
        Problem::File { path, source }
            if source.kind() == std::io::ErrorKind::PermissionDenied && !rules.covers(path) =>
        {
            Some(format!(
                "{} is outside the directories the sandbox allowed at start (those of the config and of the files it named then): restart the sidecar to include it, or set sandbox = false",
                path.display()
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> (Config, PathBuf) {
        let path = dir.join("tls-sidecar.toml");
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let text = format!(
            "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"peer.example:7022\"]\n\
             [route.listen_tls]\ncert = \"{0}/web.pem\"\nkey = \"{0}/web.key\"\nclient_ca = \"/nonexistent-dir/ca.pem\"\n",
            certs.display()
        );
        std::fs::write(&path, &text).unwrap();
        (crate::config::load(&path).unwrap(), path)
    }

    #[test]
    fn the_rules_cover_the_config_its_files_and_the_system_paths_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, path) = config(dir.path());
        let r = rules(&cfg, &path);
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        assert!(r.read.contains(&dir));
        assert!(r.read.contains(&dir.join("certs")));
        // A directory that does not exist is left out (it cannot be opened).
        assert!(!r.read.iter().any(|p| p.starts_with("/nonexistent-dir")));
        assert!(r.read.contains(&PathBuf::from("/proc/self")));
        assert!(r.read.contains(&PathBuf::from("/etc/hosts")) || !Path::new("/etc/hosts").exists());
        assert!(r.covers(&dir.join("certs/web.pem")));
        assert!(r.covers(&dir.join("tls-sidecar.toml")));
        assert!(!r.covers(Path::new("/root/.ssh/id_ed25519")));
        assert!(!r.covers(Path::new("/etc/shadow")));
        assert!(!r.covers(Path::new("/tmp/elsewhere/x.pem")) || dir.starts_with("/tmp/elsewhere"));
        let unique: std::collections::HashSet<_> = r.read.iter().collect();
        assert_eq!(unique.len(), r.read.len());
    }

    #[test]
    fn the_ruleset_builds_from_the_rules() {
        // Building the ruleset without entering it: every rule's path opens
        // and is accepted by the running kernel (or the kernel has no
        // Landlock, which best effort accepts too).
        use landlock::{
            path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, ABI,
        };
        let dir = tempfile::tempdir().unwrap();
        let (cfg, path) = config(dir.path());
        let r = rules(&cfg, &path);
        let created = Ruleset::default()
            .handle_access(AccessFs::from_all(ABI::V8))
            .unwrap()
            .create()
            .unwrap()
            .add_rules(path_beneath_rules(&r.read, AccessFs::from_read(ABI::V8)));
        assert!(created.is_ok(), "{:?}", created.err());
    }

    #[test]
    fn a_refusal_is_explained_only_inside_an_entered_sandbox() {
        let e = ConfigError {
            file: "t.toml".into(),
            route: Some("r".into()),
            key: Some("listen_tls.cert".into()),
            problem: Problem::File {
                path: "/elsewhere/web.pem".into(),
                source: std::io::ErrorKind::PermissionDenied.into(),
            },
        };
        // The unit tests never enter the sandbox (it would bind the test
        // process): nothing to explain.
        assert_eq!(explain(&e), None);
    }
}
