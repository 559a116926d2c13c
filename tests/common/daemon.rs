//! Real peer daemons a test starts in the foreground on a
//! loopback port with a generated config (HAProxy, nginx, tinyproxy):
//! started, waited for, killed on drop, with their output kept for failures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon; killed on drop.
pub struct Daemon {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Daemon {
    /// Runs `program args…` with stdout and stderr to `dir/NAME.out`, and
    /// waits (up to 20 s, times the run's `slowdown`) until every port in `ports` accepts on 127.0.0.1.
    pub fn start(dir: &Path, program: &str, args: &[&str], ports: &[u16]) -> Daemon {
        let name = Path::new(program)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let log = dir.join(format!("{name}.out"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (install it with tests/setup.sh)"));
        let mut d = Daemon { child, name, log };
        let deadline = Instant::now() + super::patience(20);
        for port in ports {
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                    break;
                }
                if let Ok(Some(status)) = d.child.try_wait() {
                    panic!("{} exited ({status}):\n{}", d.name, d.output());
                }
                if Instant::now() > deadline {
                    panic!("{} is not listening on {port}:\n{}", d.name, d.output());
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        d
    }

    /// nginx on `port`, HTTP behind `listen … proxy_protocol`: the answer's body
    /// is `$proxy_protocol_addr:$proxy_protocol_port`, and `pp.log` logs it.
    pub fn nginx_proxy_protocol(dir: &Path, port: u16) -> Daemon {
        let d = dir.join("nginx");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.display();
        let conf = format!(
            "pid {p}/nginx.pid;\nerror_log {p}/error.log info;\nworker_processes 1;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {p}; proxy_temp_path {p}; fastcgi_temp_path {p}; uwsgi_temp_path {p}; scgi_temp_path {p};\n\
               log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr';\n\
               server {{\n    listen 127.0.0.1:{port} proxy_protocol;\n    access_log {p}/pp.log pp;\n\
                 location / {{ return 200 \"$proxy_protocol_addr:$proxy_protocol_port\\n\"; }}\n  }}\n}}\n"
        );
        let file = d.join("nginx.conf");
        std::fs::write(&file, conf).unwrap();
        let prefix = d.to_str().unwrap().to_owned();
        Self::start(
            dir,
            "nginx",
            &[
                "-p",
                &prefix,
                "-c",
                file.to_str().unwrap(),
                "-g",
                // One process: killed on drop, it leaves no worker behind
                // (a killed master's workers would run on as orphans).
                "daemon off; master_process off;",
            ],
            &[port],
        )
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
