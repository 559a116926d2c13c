//! The command line's definition (clap 4 derive) and the texts `--help`,
//! `--version` and the man page share: the exit statuses, the environment
//! read, the files and the signals. `main.rs` dispatches; the import
//! commands' definition stays beside their dispatch there.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use tls_sidecar::config;

/// `--version`: the version, the commit and the TLS libraries built in.
pub const VERSION: &str = concat!(
    "tls-sidecar ",
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TLS_SIDECAR_COMMIT"),
    ")\nrustls ",
    env!("TLS_SIDECAR_RUSTLS"),
    ", aws-lc-rs ",
    env!("TLS_SIDECAR_AWS_LC_RS"),
    " (TLS 1.3 and 1.2 only)"
);

/// One exit-status rule for every command (`healthcheck` aside), so a
/// script or a unit file can tell what happened without reading the
/// message. (status, meaning): `--help`, the man page and docs/src/cli.md
/// say the same (tests/docs.rs).
pub const EXIT_STATUSES: [(u8, &str); 4] = [
    (0, "done"),
    (
        1,
        "the config (or the imported file) is invalid; nothing was done (check, run, probe, reload, import)",
    ),
    (
        2,
        "usage, or nobody to ask: a bad command line, no such route, no running sidecar answered (probe, reload)",
    ),
    (
        3,
        "the config is valid but the world said no: a handshake or connect failed, a listener could not bind, the running sidecar refused the reload (probe, run, reload, demo)",
    ),
];

/// The environment variables read, (name, what for). tests/docs.rs checks
/// that every variable the source reads is here.
pub const ENVIRONMENT: [(&str, &str); 9] = [
    (
        "TLS_SIDECAR_CONFIG",
        "the config file when -c is not given (then /etc/tls-sidecar/tls-sidecar.toml)",
    ),
    (
        "TLS_SIDECAR__KEY__SUBKEY",
        "overrides a config key: TLS_SIDECAR__ADMIN__LISTEN=0.0.0.0:9464 sets admin.listen (double underscore between levels; routes only in the file)",
    ),
    (
        "TLS_SIDECAR_LOG",
        "a tracing filter that replaces log.level, e.g. debug or info,tls_sidecar::route=trace",
    ),
    (
        "NO_COLOR",
        "set and not empty: text logs without colour (they are coloured only on a terminal anyway)",
    ),
    (
        "TLS_SIDECAR_SPLICE",
        "off: plain routes copy through a buffer instead of splice(2)",
    ),
    (
        "SSL_CERT_FILE",
        "with SSL_CERT_DIR: where the OS trust store is read from when a route names no ca",
    ),
    ("SSL_CERT_DIR", "see SSL_CERT_FILE"),
    (
        "TOKIO_WORKER_THREADS",
        "runtime threads when the config sets no workers (default: one per CPU)",
    ),
    (
        "NOTIFY_SOCKET",
        "with WATCHDOG_USEC, set by systemd: READY/RELOADING/STOPPING notifications and watchdog pings",
    ),
];

/// The signals `run` handles.
pub const SIGNALS: [(&str, &str); 2] = [
    (
        "SIGHUP",
        "reload the config and every certificate, key and CA file; open connections stay; an invalid file is refused, logged and counted, the old config keeps serving",
    ),
    (
        "SIGTERM, SIGINT",
        "drain: readiness fails at once, listeners keep accepting for drain_delay, then stop; open connections get shutdown_grace, then are reset (a second signal ends the delay early)",
    ),
];

/// The files read.
pub const FILES: [(&str, &str); 2] = [
    (
        config::DEFAULT_PATH,
        "the config file (TOML, tls-sidecar.toml(5)) when neither -c nor TLS_SIDECAR_CONFIG names one",
    ),
    (
        "--pid-file FILE",
        "written by run --pid-file while serving and removed at exit (the sandbox leaves its directory writable); read by reload --pid-file",
    ),
];

/// The text `--help` ends with.
pub fn after_help() -> String {
    let mut s = String::from("Exit status:\n");
    for (code, what) in EXIT_STATUSES {
        s.push_str(&format!("  {code}  {what}\n"));
    }
    s.push_str("  (healthcheck: 0 healthy, 1 not)\n\nEnvironment:\n");
    for (name, what) in ENVIRONMENT {
        s.push_str(&format!("  {name}\n      {what}\n"));
    }
    s.push_str("\nManual: man tls-sidecar, man 5 tls-sidecar.toml, and docs/ (an mdBook).");
    s
}

#[derive(Parser)]
#[command(
    name = "tls-sidecar",
    version = env!("CARGO_PKG_VERSION"),
    disable_version_flag = true,
    about = "Carries plaintext connections to their peers over TLS, each the way its peer needs it.",
    after_help = after_help(),
)]
pub struct Cli {
    /// The config file (TOML). Before or after the command.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        env = "TLS_SIDECAR_CONFIG",
        default_value = config::DEFAULT_PATH,
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Print the version, the commit and the TLS libraries (with -v: the
    /// running kernel's kernel-TLS support too).
    #[arg(short = 'V', long)]
    pub version: bool,
    /// More detail (probe: debug log of each attempt; --version: kernel TLS).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less output (probe and check: nothing on success, only what failed).
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The shells `completions` writes for.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve every route of the config until SIGTERM/SIGINT.
    Run {
        /// Write the process id to this file while serving (for `reload --pid-file`).
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
    },
    /// Validate the config file; only if it is valid, ask the running sidecar
    /// to reload it and wait for the result. Exit status: 0 reloaded (or,
    /// without [admin], signalled), 1 the file is invalid (nothing changed),
    /// 2 no answer from a running sidecar, 3 the running sidecar refused it
    /// (it keeps its previous config).
    Reload {
        /// Signal the process named in this file (written by `run --pid-file`)
        /// with SIGHUP instead of asking through `POST /reload`.
        #[arg(long, value_name = "FILE", conflicts_with = "pid")]
        pid_file: Option<PathBuf>,
        /// Signal this process with SIGHUP (a systemd unit: `--pid $MAINPID`).
        /// With [admin] the result is read from the admin endpoint; without
        /// it, the valid file is announced and the process's log has the
        /// verdict.
        #[arg(long, value_name = "PID")]
        pid: Option<i32>,
        /// How long to wait for the result.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Load and validate the config; print each route, the kernel's TLS
    /// support and every warning.
    Check {
        /// Print one JSON object (fields: docs/src/cli.md).
        #[arg(long)]
        json: bool,
    },
    /// Connect to a route's upstreams as `run` would and report the handshake.
    Probe {
        /// The route to probe.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        route: Option<String>,
        /// Probe every route and print a table.
        #[arg(long)]
        all: bool,
        /// Probe every upstream of the route, not just the one `run` would use.
        #[arg(long)]
        each: bool,
        /// Print JSON (fields: docs/src/cli.md).
        #[arg(long)]
        json: bool,
    },
    /// A self-contained demonstration on loopback: throwaway CA, demo peers
    /// for every mode, a route to each, the admin endpoint.
    Demo {
        /// The four demo routes listen on this port and the three after it.
        #[arg(long, default_value_t = 7101)]
        base_port: u16,
        /// The admin endpoint's port.
        #[arg(long, default_value_t = 9464)]
        admin_port: u16,
    },
    /// Write a route from settings GMS already has.
    #[command(subcommand)]
    Import(crate::ImportCommand),
    /// Exit 0 if healthy (for container health checks): GET URL answers
    /// 200; without URL, the config's [admin] /readyz does (no [admin]:
    /// healthy).
    Healthcheck {
        /// e.g. http://127.0.0.1:9464/readyz
        url: Option<String>,
    },
    /// Print a shell completion script on standard output.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page tls-sidecar(1) (roff) on standard output.
    #[command(hide = true)]
    Man,
}

/// tls-sidecar(1) in roff: clap's synopsis, options and commands, each
/// command's own options, then EXIT STATUS, ENVIRONMENT, FILES, SIGNALS.
pub fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(&mut out, "tls-sidecar", sub)?;
    }
    section(
        &mut out,
        "EXIT STATUS",
        EXIT_STATUSES.map(|(c, w)| (c.to_string(), w)),
    )?;
    section(
        &mut out,
        "ENVIRONMENT",
        ENVIRONMENT.map(|(n, w)| (n.to_owned(), w)),
    )?;
    section(&mut out, "FILES", FILES.map(|(n, w)| (n.to_owned(), w)))?;
    section(&mut out, "SIGNALS", SIGNALS.map(|(n, w)| (n.to_owned(), w)))?;
    out.extend_from_slice(
        b".SH \"SEE ALSO\"\ntls-sidecar.toml(5), systemctl(1), openssl-s_client(1)\n",
    );
    Ok(out)
}

/// One command's usage and options as a subsection, then its own commands.
fn command_section(out: &mut Vec<u8>, parent: &str, sub: &clap::Command) -> std::io::Result<()> {
    let name = format!("{parent} {}", sub.get_name());
    if sub.has_subcommands() {
        for s in sub.get_subcommands() {
            command_section(out, &name, s)?;
        }
        return Ok(());
    }
    let sub = sub.clone().bin_name(&name);
    let mut usage = sub.clone().render_usage().to_string();
    usage = usage.trim_start_matches("Usage: ").to_owned();
    out.extend_from_slice(format!(".SS \"{name}\"\n{}\n.br\n", roff_text(&usage)).as_bytes());
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        out.extend_from_slice(format!("{}\n", roff_text(&about.to_string())).as_bytes());
    }
    let mut opts = Vec::new();
    clap_mangen::Man::new(sub).render_options_section(&mut opts)?;
    // Without the section header: these are the command's own options, in
    // its subsection.
    for line in String::from_utf8_lossy(&opts).lines() {
        if !line.starts_with(".SH") {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    Ok(())
}

/// A section of tagged paragraphs.
fn section<const N: usize>(
    out: &mut Vec<u8>,
    title: &str,
    items: [(String, &str); N],
) -> std::io::Result<()> {
    out.extend_from_slice(format!(".SH \"{title}\"\n").as_bytes());
    for (tag, text) in items {
        out.extend_from_slice(
            format!(".TP\n\\fB{}\\fR\n{}\n", roff_text(&tag), roff_text(text)).as_bytes(),
        );
    }
    Ok(())
}

/// Text safe in a roff paragraph: backslashes escaped, no line starting with
/// a control character.
fn roff_text(s: &str) -> String {
    s.replace('\\', "\\e")
        .lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
