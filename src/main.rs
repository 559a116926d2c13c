//! The `tls-sidecar` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use cli::{Cli, Command};
use commands::{
    check_command, healthcheck_command, kernel_tls_words, probe_command, reload_command, Verbosity,
};
use tls_sidecar::config::{self, LogFormat};
use tls_sidecar::{demo, reload, sandbox, serve, telemetry};

mod cli;
mod commands;

/// One exit-status rule for every command ([`cli::EXIT_STATUSES`] says
/// what each means, in `--help` and the man page). `healthcheck` alone
/// follows the container contract instead: 0 healthy, 1 not (Docker
/// reserves 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Done = 0,
    Invalid = 1,
    Usage = 2,
    Refused = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

impl From<&reload::Outcome> for Exit {
    fn from(o: &reload::Outcome) -> Exit {
        match o {
            reload::Outcome::Reloaded | reload::Outcome::Signalled(_) => Exit::Done,
            reload::Outcome::Invalid(_) => Exit::Invalid,
            reload::Outcome::Unknown(_) => Exit::Usage,
            reload::Outcome::Refused(_) => Exit::Refused,
        }
    }
}

/// [`Exit::Done`] when `ok`, else [`Exit::Refused`].
fn verdict(ok: bool) -> ExitCode {
    if ok { Exit::Done } else { Exit::Refused }.into()
}

/// Says `e` on stderr and exits [`Exit::Invalid`].
fn invalid(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    Exit::Invalid.into()
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// A listen_tls route from GMS's etc/jetty-ssl-context.xml (Jetty 9-12).
    Jetty {
        /// The jetty-ssl-context.xml.
        file: PathBuf,
        /// Where the route serves TLS (GMS's HTTPS port).
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: String,
        /// GMS's plain HTTP port the route carries to.
        #[arg(long, default_value = "127.0.0.1:8080")]
        connect: String,
        /// Jetty's properties, in the order Jetty reads them (a later file
        /// wins; repeat the option): start.ini, start.d/ssl.ini,
        /// jetty-ssl.properties. Default: start.ini and start.d/ssl.ini of
        /// the jetty.base above the XML's etc/.
        #[arg(long)]
        properties: Vec<PathBuf>,
        /// Write the config here (and its passwords to CONFIG.password, mode
        /// 0600); without it the config goes to standard output, which is
        /// refused when a password is needed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One route per service of a stunnel.conf (client = yes: TLS towards
    /// connect; client = no: TLS on accept).
    Stunnel {
        /// The stunnel.conf (its include directories are read too).
        file: PathBuf,
        /// Write the config here (and any secret to CONFIG.ROUTE.*, mode
        /// 0600); without it the config goes to standard output, which is
        /// refused when a secret is needed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A route from one Genesys transport-parameter string
    /// ("tls=1;certificate=…;trusted-ca=…").
    Genesys {
        /// The transport parameters.
        params: String,
        /// The parameters are a server port's: a listen_tls route.
        #[arg(long)]
        server_port: bool,
        /// Where the route listens (default: the parameters' port, on
        /// 127.0.0.1 for a connection, 0.0.0.0 for a server port).
        #[arg(long)]
        listen: Option<String>,
        /// Where the route connects (default: the parameters' address:port).
        #[arg(long)]
        connect: Option<String>,
        /// Write the config here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn import(cmd: ImportCommand) -> ExitCode {
    use tls_sidecar::import;
    let (result, out) = match cmd {
        ImportCommand::Jetty {
            file,
            listen,
            connect,
            properties,
            out,
        } => (
            import::jetty::import(
                &file,
                &import::jetty::Options {
                    listen,
                    connect,
                    properties,
                },
            ),
            out,
        ),
        ImportCommand::Stunnel { file, out } => (import::stunnel::import(&file), out),
        ImportCommand::Genesys {
            params,
            server_port,
            listen,
            connect,
            out,
        } => (
            import::genesys::import(
                &params,
                &import::genesys::Options {
                    server_port,
                    listen,
                    connect,
                },
            ),
            out,
        ),
    };
    match result.and_then(|i| i.write(out.as_deref())) {
        Ok(text) => {
            print!("{text}");
            if let Some(out) = out {
                eprintln!("wrote {}", out.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => invalid(e),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!("{}", cli::VERSION);
        if cli.verbose > 0 {
            println!("kernel TLS: {}", kernel_tls_words());
        }
        return ExitCode::SUCCESS;
    }
    let verbosity = Verbosity::of(&cli);
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return Exit::Usage.into();
    };
    let config = cli.config.as_path();
    match command {
        Command::Import(cmd) => import(cmd),
        Command::Check { json } => check_command(config, json, cli.quiet),
        Command::Reload {
            pid_file,
            pid,
            timeout,
        } => {
            let target = match (&pid_file, pid) {
                (Some(f), _) => Some(reload::Target::PidFile(f)),
                (None, Some(p)) => Some(reload::Target::Pid(p)),
                (None, None) => None,
            };
            reload_command(config, target, timeout)
        }
        Command::Run { pid_file } => run_command(config, pid_file),
        Command::Probe {
            route,
            all,
            each,
            json,
        } => probe_command(config, route, all, each, json, verbosity),
        Command::Demo {
            base_port,
            admin_port,
        } => demo_command(base_port, admin_port),
        Command::Healthcheck { url } => healthcheck_command(config, url),
        Command::Completions { shell } => {
            use clap_complete::Shell as S;
            let shell = match shell {
                cli::Shell::Bash => S::Bash,
                cli::Shell::Zsh => S::Zsh,
                cli::Shell::Fish => S::Fish,
            };
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "tls-sidecar", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => match cli::man_page(Cli::command()) {
            Ok(page) => {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&page);
                ExitCode::SUCCESS
            }
            Err(e) => invalid(e),
        },
    }
}

fn run_command(config: &std::path::Path, pid_file: Option<PathBuf>) -> ExitCode {
    // Read and validated once: `run` serves exactly this.
    let loaded = match serve::Loaded::read(config) {
        Ok(l) => l,
        Err(e) => return invalid(e),
    };
    let cfg = &loaded.config;
    let json_logs = matches!(cfg.log.format, config::LogFormat::Json);
    init_logging(cfg.log.level.as_str(), cfg.log.format);
    let metrics = match telemetry::install() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: failed to install the metrics recorder: {e}");
            return Exit::Refused.into();
        }
    };
    // Before the runtime starts its threads: they inherit it.
    sandbox::apply(cfg, config, pid_file.as_deref());
    let rt = serving_runtime(cfg.workers);
    match rt.block_on(serve::run_with(
        config,
        loaded,
        metrics,
        serve::Options { pid_file },
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let config_fault = e.is_invalid();
            let e = match &e {
                serve::ServeError::Invalid(c) => sandbox::describe(c),
                e => format!("{e:#}"),
            };
            // A text log already goes to stderr: say it once there.
            if json_logs {
                tracing::error!("{e}");
            }
            eprintln!("error: {e}");
            if config_fault {
                Exit::Invalid
            } else {
                Exit::Refused
            }
            .into()
        }
    }
}

fn demo_command(base_port: u16, admin_port: u16) -> ExitCode {
    init_logging("info", LogFormat::Text);
    let metrics = match telemetry::install() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: failed to install the metrics recorder: {e}");
            return Exit::Refused.into();
        }
    };
    let ports = demo::Ports {
        base: base_port,
        admin: admin_port,
    };
    match serving_runtime(None).block_on(demo::run(ports, metrics)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Refused.into()
        }
    }
}

/// The runtime of the short-lived commands (probe, healthcheck).
fn runtime() -> tokio::runtime::Runtime {
    runtime_with(None)
}

/// The runtime that serves routes (`run`, `demo`): `workers` threads (config
/// key `workers`) or tokio's default, one per CPU the process may use (or
/// `TOKIO_WORKER_THREADS`). The crypto provider's random generator is seeded
/// before the first client arrives: seeding costs tens of milliseconds of
/// CPU (measured: 50-60 ms), which the first handshake would pay otherwise.
/// It is a one-off for the process (64 worker threads start no slower than
/// one), so the main thread does it.
fn serving_runtime(workers: Option<usize>) -> tokio::runtime::Runtime {
    tls_sidecar::tls::warm_up();
    runtime_with(workers)
}

fn runtime_with(workers: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all()
        .build()
        .expect("failed to start the tokio runtime")
}

fn init_logging(level: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TLS_SIDECAR_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{level},rustls=warn,hyper=warn"))
        });
    let colour = colour_logs(
        format,
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().flatten_event(true).init(),
        LogFormat::Text => b.init(),
    }
}

/// Whether log lines carry ANSI colour: only text lines, only to a terminal,
/// and only when `NO_COLOR` is unset or empty (<https://no-color.org>). A log
/// that goes to a file, journald or a container runtime stays plain (issue 14).
fn colour_logs(
    format: LogFormat,
    stderr_is_terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
) -> bool {
    matches!(format, LogFormat::Text) && stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn logs_are_coloured_only_as_text_to_a_terminal_without_no_color() {
        assert!(colour_logs(LogFormat::Text, true, None));
        assert!(colour_logs(LogFormat::Text, true, Some(OsStr::new(""))));
        assert!(!colour_logs(LogFormat::Text, true, Some(OsStr::new("1"))));
        assert!(!colour_logs(LogFormat::Text, false, None));
        assert!(!colour_logs(LogFormat::Json, true, None));
        assert!(!colour_logs(LogFormat::Json, false, None));
    }

    #[test]
    fn reload_outcomes_follow_the_one_exit_rule() {
        use reload::Outcome;
        assert_eq!(Exit::from(&Outcome::Reloaded), Exit::Done);
        assert_eq!(Exit::from(&Outcome::Invalid(String::new())), Exit::Invalid);
        assert_eq!(Exit::from(&Outcome::Unknown(String::new())), Exit::Usage);
        assert_eq!(Exit::from(&Outcome::Refused(String::new())), Exit::Refused);
    }
}
