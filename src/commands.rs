//! The commands that only read and report (`check`, `reload`, `probe`,
//! `healthcheck`): each loads the config, calls into the library and turns
//! the outcome into output and the exit status (`main.rs`'s one rule).

use std::path::Path;
use std::process::ExitCode;

use tls_sidecar::config::{self, LogFormat};
use tls_sidecar::route::plan;
use tls_sidecar::{check, healthcheck, probe, reload, report, sandbox};

use crate::cli::Cli;
use crate::{init_logging, invalid, runtime, verdict, Exit};

/// What the running kernel offers for kernel TLS, in words.
pub fn kernel_tls_words() -> String {
    match tls_sidecar::tls::kernel::offer() {
        Ok(suites) => format!("available ({suites})"),
        Err(f) => format!("not available: {}", f.describe()),
    }
}

/// `-v`/`-q` as the commands that honour them read it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose(u8),
}

impl Verbosity {
    pub fn of(cli: &Cli) -> Verbosity {
        match (cli.quiet, cli.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, n) => Verbosity::Verbose(n),
        }
    }

    /// The log filter of a short-lived command.
    pub fn log_level(self) -> &'static str {
        match self {
            Verbosity::Quiet => "error",
            Verbosity::Normal => "warn",
            Verbosity::Verbose(1) => "debug",
            Verbosity::Verbose(_) => "trace",
        }
    }
}

pub fn check_command(config: &Path, json: bool, quiet: bool) -> ExitCode {
    match checked(config) {
        Ok(p) if json => {
            println!("{:#}", report::check(&p));
            ExitCode::SUCCESS
        }
        Ok(p) => {
            if !quiet {
                // The kernel's offer before the verdict, which stays last.
                let report = check::report(&p);
                let body = report.trim_end_matches('\n');
                let (head, verdict) = body.rsplit_once('\n').unwrap_or(("", body));
                println!("{head}\nkernel TLS: {}\n{verdict}", kernel_tls_words());
            }
            ExitCode::SUCCESS
        }
        Err(e) if json => {
            println!("{:#}", report::invalid(config, &e));
            Exit::Invalid.into()
        }
        Err(e) => invalid(e),
    }
}

/// The config read and built as `run` does, inside the sandbox `run`
/// enters before it reads the files: a file `run` could not read fails here
/// with the same words.
fn checked(config: &Path) -> Result<plan::Plan, String> {
    let cfg = config::load(config).map_err(|e| e.to_string())?;
    if cfg.sandbox {
        let _ = sandbox::enter(&sandbox::rules(&cfg, config));
    }
    plan::build(cfg).map_err(|e| sandbox::describe(&e))
}

pub fn reload_command(
    config: &Path,
    target: Option<reload::Target<'_>>,
    timeout: std::time::Duration,
) -> ExitCode {
    let outcome = runtime().block_on(reload::reload(config, target, timeout));
    match &outcome {
        reload::Outcome::Reloaded => println!("reloaded {}", config.display()),
        reload::Outcome::Signalled(m) => println!("{m}"),
        reload::Outcome::Invalid(e) => {
            eprintln!("error: {e}\nnothing was reloaded: the running sidecar keeps its config")
        }
        reload::Outcome::Refused(e) => eprintln!("error: {e}"),
        reload::Outcome::Unknown(e) => eprintln!("error: {e}"),
    }
    Exit::from(&outcome).into()
}

pub fn probe_command(
    config: &Path,
    route: Option<String>,
    all: bool,
    each: bool,
    json: bool,
    v: Verbosity,
) -> ExitCode {
    let p = match plan::load(config) {
        Ok(p) => p,
        Err(e) => return invalid(e),
    };
    init_logging(v.log_level(), LogFormat::Text);
    let routes: Vec<_> = if all {
        p.routes.iter().collect()
    } else {
        let name = route.unwrap_or_default();
        let Some(rp) = p.routes.iter().find(|r| r.route.name == name) else {
            let names: Vec<_> = p.routes.iter().map(|r| r.route.name.as_str()).collect();
            eprintln!(
                "error: no route named {name:?} in {} (routes: {})",
                config.display(),
                names.join(", ")
            );
            return Exit::Usage.into();
        };
        vec![rp]
    };
    let results = runtime().block_on(async {
        let mut out = Vec::new();
        for rp in routes {
            out.push((rp, probe::probe(rp, each).await));
        }
        out
    });
    let ok = results.iter().all(|(_, a)| probe::verdict(a));
    print!("{}", probe_output(&results, all, json, v));
    verdict(ok)
}

/// What `probe` prints: JSON, the `--all` table, one route's report, or
/// with `-q` only the routes that failed (on stderr).
fn probe_output(
    results: &[(&std::sync::Arc<plan::RoutePlan>, Vec<probe::Attempt>)],
    all: bool,
    json: bool,
    v: Verbosity,
) -> String {
    if json {
        let each: Vec<_> = results.iter().map(|(rp, a)| report::probe(rp, a)).collect();
        let value = match (all, each.as_slice()) {
            (false, [one]) => one.clone(),
            _ => serde_json::json!({
                "ok": results.iter().all(|(_, a)| probe::verdict(a)),
                "routes": each,
            }),
        };
        return format!("{value:#}\n");
    }
    if v == Verbosity::Quiet {
        for (rp, a) in results.iter().filter(|(_, a)| !probe::verdict(a)) {
            eprintln!("{}", probe::table_row(rp, a));
        }
        return String::new();
    }
    if !all {
        return results.iter().map(|(rp, a)| probe::report(rp, a)).collect();
    }
    let mut out = format!(
        "{:<16} {:<32} {:<16} {:<8} CIPHER\n",
        "ROUTE", "UPSTREAM", "RESULT", "VERSION"
    );
    for (rp, a) in results {
        out.push_str(&probe::table_row(rp, a));
        out.push('\n');
    }
    out
}

/// `healthcheck [URL]`: 0 healthy, 1 not. Without a URL, the config's
/// `[admin]` `/readyz`; a config without `[admin]` is healthy (nothing to
/// ask), one that does not load is not.
pub fn healthcheck_command(config: &Path, url: Option<String>) -> ExitCode {
    let url = match url {
        Some(u) => u,
        None => match config::load(config) {
            Ok(c) => match c.admin {
                Some(a) => format!("http://{}/readyz", reload::reachable(a.listen)),
                None => {
                    println!("healthy: {} has no [admin] to ask", config.display());
                    return ExitCode::SUCCESS;
                }
            },
            Err(e) => {
                eprintln!("unhealthy: {e}");
                return ExitCode::from(1);
            }
        },
    };
    match runtime().block_on(healthcheck::get(&url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::from(1)
        }
    }
}
