//! The `reload` command: validate the config file exactly as `run` would
//! load it, and only if it is valid ask the running sidecar to reload it and
//! wait for the verdict.
//!
//! The running process is found through the config's own `[admin]`
//! endpoint (an unspecified listen address is reached on loopback):
//!
//! - by default, `POST /reload`, which the sidecar accepts from loopback
//!   only and answers once the reload is done (200 reloaded, 409 refused);
//! - with `--pid-file` (the file `run --pid-file` wrote), SIGHUP to that
//!   process, then `/status.json` is polled until its reload generation
//!   moves past the one seen before the signal; `--pid PID` (systemd's
//!   `$MAINPID`) the same with the process id given;
//! - without `[admin]`, only with `--pid`/`--pid-file`: SIGHUP to that
//!   process, which must be a `tls-sidecar`; the file was validated first,
//!   but the verdict is then only in the process's log (and, under systemd,
//!   `systemctl status`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::route::plan;

/// How a `reload` ended; `main` gives each its exit status (one rule for
/// every command).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The running process applied the file.
    Reloaded,
    /// The file does not load: nothing was asked of the running process.
    Invalid(String),
    /// The running process refused it and keeps its previous config.
    Refused(String),
    /// No verdict: no admin endpoint, nothing answering, no such pid, or no
    /// answer in time.
    Unknown(String),
    /// No `[admin]` to read a verdict from: the valid file was announced to
    /// the process with SIGHUP (the message says which pid).
    Signalled(String),
}

/// Which process `reload` signals instead of asking through `POST /reload`.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The file `run --pid-file` wrote.
    PidFile(&'a Path),
    /// A process id (`--pid $MAINPID` in a systemd unit).
    Pid(i32),
}

/// Validates `path`, then asks the sidecar serving it to reload, waiting up
/// to `wait` for the verdict.
pub async fn reload(path: &Path, target: Option<Target<'_>>, wait: Duration) -> Outcome {
    let p = match plan::load(path) {
        Ok(p) => p,
        Err(e) => return Outcome::Invalid(e.to_string()),
    };
    let pid = match target.map(pid_of).transpose() {
        Ok(pid) => pid,
        Err(e) => return Outcome::Unknown(e),
    };
    let Some(admin) = &p.config.admin else {
        return match pid {
            Some(pid) => signal_only(path, pid),
            None => Outcome::Unknown(format!(
                "{} has no [admin] section: `reload` reaches the running sidecar through its \
                 admin endpoint; name the process instead (`reload --pid PID`, under systemd \
                 `--pid $MAINPID`) and read its log",
                path.display()
            )),
        };
    };
    let addr = reachable(admin.listen);
    match pid {
        None => by_post(addr, wait).await,
        Some(pid) => by_signal(addr, pid, wait).await,
    }
}

/// The process id `target` names.
fn pid_of(target: Target<'_>) -> Result<i32, String> {
    match target {
        Target::Pid(p) if p > 0 => Ok(p),
        Target::Pid(p) => Err(format!("{p} is not a process id")),
        Target::PidFile(f) => match std::fs::read_to_string(f) {
            Ok(s) => match s.trim().parse() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(format!("{} does not hold a process id", f.display())),
            },
            Err(e) => Err(format!("failed to read {}: {e}", f.display())),
        },
    }
}

/// No admin endpoint: SIGHUP to `pid` once it is known to be a sidecar.
fn signal_only(path: &Path, pid: i32) -> Outcome {
    if let Err(e) = is_sidecar(pid) {
        return Outcome::Unknown(e);
    }
    match hangup(pid) {
        Ok(()) => Outcome::Signalled(format!(
            "{} is valid; sent SIGHUP to pid {pid}. It has no [admin] section to read the \
             verdict from: the process's log (or `systemctl status`) says whether it took it",
            path.display()
        )),
        Err(e) => Outcome::Unknown(format!("failed to send SIGHUP to pid {pid}: {e}")),
    }
}

/// Refuses to signal a process that is not a `tls-sidecar` (a stale pid).
fn is_sidecar(pid: i32) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map_err(|e| format!("no process {pid}: {e}"))?;
        if comm.trim() != "tls-sidecar" {
            return Err(format!(
                "pid {pid} is {:?}, not a tls-sidecar: nothing was signalled",
                comm.trim()
            ));
        }
    }
    let _ = pid;
    Ok(())
}

/// The address to reach a listener bound to `listen` from this host.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, listen.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, listen.port()).into(),
        _ => listen,
    }
}

async fn by_post(addr: SocketAddr, wait: Duration) -> Outcome {
    match http(addr, "POST", "/reload", wait).await {
        Ok((200, _)) => Outcome::Reloaded,
        Ok((409, body)) => Outcome::Refused(body.trim().to_owned()),
        Ok((status, body)) => Outcome::Unknown(format!(
            "the admin endpoint on {addr} answered {status}: {}",
            body.trim()
        )),
        Err(e) => Outcome::Unknown(format!(
            "failed to reach the running sidecar's admin endpoint on {addr} (is it running?): {e}"
        )),
    }
}

async fn by_signal(addr: SocketAddr, pid: i32, wait: Duration) -> Outcome {
    let before = match status(addr, wait).await {
        Ok(s) => s,
        Err(e) => return Outcome::Unknown(e),
    };
    if before.pid != pid {
        return Outcome::Unknown(format!(
            "the admin endpoint on {addr} is served by pid {}, not by pid {pid}",
            before.pid
        ));
    }
    if let Err(e) = hangup(pid) {
        return Outcome::Unknown(format!("failed to send SIGHUP to pid {pid}: {e}"));
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match status(addr, wait).await {
            Ok(now) if now.generation > before.generation => {
                return match now.last_error {
                    None => Outcome::Reloaded,
                    Some(e) => Outcome::Refused(format!(
                        "reload refused, the previous config keeps serving: {e}"
                    )),
                }
            }
            _ if tokio::time::Instant::now() >= deadline => {
                return Outcome::Unknown(format!(
                    "sent SIGHUP to pid {pid}, but no reload finished within {}",
                    humantime::format_duration(wait)
                ))
            }
            _ => {}
        }
    }
}

#[cfg(target_os = "linux")]
fn hangup(pid: i32) -> std::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).map_err(Into::into)
}

#[cfg(not(target_os = "linux"))]
fn hangup(_pid: i32) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "--pid and --pid-file are supported on Linux only",
    ))
}

/// What `reload --pid-file` reads from `/status.json`.
struct Seen {
    pid: i32,
    generation: u64,
    last_error: Option<String>,
}

async fn status(addr: SocketAddr, wait: Duration) -> Result<Seen, String> {
    let (code, body) = http(addr, "GET", "/status.json", wait)
        .await
        .map_err(|e| format!("failed to reach the admin endpoint on {addr}: {e}"))?;
    if code != 200 {
        return Err(format!("{addr}/status.json answered {code}"));
    }
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("{addr}/status.json is not the sidecar's: {e}"))?;
    let r = &v["reloads"];
    Ok(Seen {
        pid: v["pid"].as_i64().unwrap_or(-1) as i32,
        generation: r["generation"].as_u64().unwrap_or(0),
        last_error: r["last_error"].as_str().map(str::to_owned),
    })
}

/// A minimal HTTP/1.1 exchange; (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    wait: Duration,
) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.take(1 << 20).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(wait, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"))??;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not HTTP"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_admin_address_is_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:9464".parse().unwrap()),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:9464".parse().unwrap()),
            "[::1]:9464".parse().unwrap()
        );
        assert_eq!(
            reachable("10.0.0.5:9464".parse().unwrap()),
            "10.0.0.5:9464".parse().unwrap()
        );
    }
}
