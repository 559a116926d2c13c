//! The `tls-sidecar` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tls_sidecar::config::{self, LogFormat};
use tls_sidecar::route::plan;
use tls_sidecar::{check, demo, healthcheck, probe, reload, sandbox, serve, telemetry};

/// One exit-status rule for every command, so a script or a unit file can
/// tell what happened without reading the message:
///
/// | status | meaning | from |
/// |---|---|---|
/// | 0 | done | every command |
/// | 1 | the config (or the imported file) is invalid; nothing was done | `check`, `run`, `probe`, `reload`, `import` |
/// | 2 | usage, or no one to ask: a bad command line (clap's own status), no such route, no running sidecar answered | `probe`, `reload`, clap |
/// | 3 | the config is valid but the world said no: a handshake or connect failed, a listener could not bind, the running sidecar refused the reload | `probe`, `run`, `reload`, `demo` |
///
/// `healthcheck` alone follows the container contract instead: 0 healthy, 1
/// not (Docker reserves 2).
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
            reload::Outcome::Reloaded => Exit::Done,
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

#[derive(Parser)]
#[command(
    name = "tls-sidecar",
    version,
    about = "Carries plaintext connections to their peers over TLS, each the way its peer needs it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ConfigArg {
    /// The config file (TOML).
    #[arg(short = 'c', long = "config", env = "TLS_SIDECAR_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route of the config until SIGTERM/SIGINT.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Write the process id to this file while serving (for `reload --pid-file`).
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
    },
    /// Validate the config file; only if it is valid, ask the running sidecar
    /// to reload it and wait for the result. Exit status: 0 reloaded, 1 the
    /// file is invalid (nothing changed), 2 no answer from a running sidecar,
    /// 3 the running sidecar refused it (it keeps its previous config).
    Reload {
        #[command(flatten)]
        config: ConfigArg,
        /// Signal the process named in this file (written by `run --pid-file`)
        /// with SIGHUP instead of asking through `POST /reload`; the result is
        /// still read from the admin endpoint.
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// How long to wait for the result.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Load and validate the config; print each route and every warning.
    Check(ConfigArg),
    /// Connect to a route's upstreams as `run` would and report the handshake.
    Probe {
        #[command(flatten)]
        config: ConfigArg,
        /// The route to probe.
        #[arg(required_unless_present = "all")]
        route: Option<String>,
        /// Probe every route and print a table.
        #[arg(long)]
        all: bool,
        /// Probe every upstream of the route, not just the one `run` would use.
        #[arg(long)]
        each: bool,
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
    Import(ImportCommand),
    /// Exit 0 if GET URL answers 200 (for container health checks).
    Healthcheck {
        /// e.g. http://127.0.0.1:9464/readyz
        url: String,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
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

// Long: one arm per CLI command, each a few lines that call into the library.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Import(cmd) => import(cmd),
        Command::Check(c) => match plan::load(&c.config) {
            Ok(p) => {
                print!("{}", check::report(&p));
                ExitCode::SUCCESS
            }
            Err(e) => invalid(e),
        },
        Command::Reload {
            config: c,
            pid_file,
            timeout,
        } => {
            let outcome =
                runtime().block_on(reload::reload(&c.config, pid_file.as_deref(), timeout));
            match &outcome {
                reload::Outcome::Reloaded => println!("reloaded {}", c.config.display()),
                reload::Outcome::Invalid(e) => {
                    eprintln!(
                        "error: {e}\nnothing was reloaded: the running sidecar keeps its config"
                    )
                }
                reload::Outcome::Refused(e) => eprintln!("error: {e}"),
                reload::Outcome::Unknown(e) => eprintln!("error: {e}"),
            }
            Exit::from(&outcome).into()
        }
        Command::Run {
            config: c,
            pid_file,
        } => {
            // Read and validated once: `run` serves exactly this.
            let loaded = match serve::Loaded::read(&c.config) {
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
            sandbox::apply(cfg, &c.config, pid_file.as_deref());
            let rt = serving_runtime(cfg.workers);
            match rt.block_on(serve::run_with(
                &c.config,
                loaded,
                metrics,
                serve::Options { pid_file },
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // A text log already goes to stderr: say it once there.
                    if json_logs {
                        tracing::error!("{e:#}");
                    }
                    eprintln!("error: {e:#}");
                    if e.is_invalid() {
                        Exit::Invalid
                    } else {
                        Exit::Refused
                    }
                    .into()
                }
            }
        }
        Command::Probe {
            config: c,
            route,
            all,
            each,
        } => {
            let p = match plan::load(&c.config) {
                Ok(p) => p,
                Err(e) => return invalid(e),
            };
            init_logging("warn", LogFormat::Text);
            let rt = runtime();
            rt.block_on(async {
                if all {
                    let mut ok = true;
                    println!(
                        "{:<16} {:<32} {:<16} {:<8} CIPHER",
                        "ROUTE", "UPSTREAM", "RESULT", "VERSION"
                    );
                    for rp in &p.routes {
                        let attempts = probe::probe(rp, each).await;
                        ok &= probe::verdict(&attempts);
                        println!("{}", probe::table_row(rp, &attempts));
                    }
                    verdict(ok)
                } else {
                    let name = route.unwrap_or_default();
                    let Some(rp) = p.routes.iter().find(|r| r.route.name == name) else {
                        eprintln!(
                            "error: no route named {name:?} in {} (routes: {})",
                            c.config.display(),
                            p.routes
                                .iter()
                                .map(|r| r.route.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        return Exit::Usage.into();
                    };
                    let attempts = probe::probe(rp, each).await;
                    print!("{}", probe::report(rp, &attempts));
                    verdict(probe::verdict(&attempts))
                }
            })
        }
        Command::Demo {
            base_port,
            admin_port,
        } => {
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
        Command::Healthcheck { url } => match runtime().block_on(healthcheck::get(&url)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::from(1)
            }
        },
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
