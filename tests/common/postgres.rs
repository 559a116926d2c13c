//! A real PostgreSQL cluster for the tests: initdb in a temp dir, TLS with
//! the test PKI, run as the `postgres` user (installed by tests/setup.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{free_port, Pki};

pub fn pg_bin(tool: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL (install it with tests/setup.sh)")
        .map(|e| e.unwrap().path().join("bin"))
        .collect();
    dirs.sort();
    dirs.pop().unwrap().join(tool)
}

/// A PostgreSQL cluster in a temp dir, run as the `postgres` user; stopped on drop.
pub struct Postgres {
    pub data: PathBuf,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// `hba` is the whole pg_hba.conf.
    pub fn start(pki: &Pki, hba: &str) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let data = dir.path().join("data");
        run("chmod", &["755", dir.path().to_str().unwrap()]);
        run(
            "chown",
            &["postgres:postgres", dir.path().to_str().unwrap()],
        );
        as_postgres(
            &pg_bin("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        for (src, name) in [
            (&pki.server.0, "server.crt"),
            (&pki.server.1, "server.key"),
            (&pki.ca_path, "root.crt"),
        ] {
            std::fs::copy(src, data.join(name)).unwrap();
            run(
                "chown",
                &["postgres:postgres", data.join(name).to_str().unwrap()],
            );
            run("chmod", &["600", data.join(name).to_str().unwrap()]);
        }
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'root.crt'\nfsync = off\n",
            dir.path().display()
        );
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).unwrap();
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        as_postgres(
            &pg_bin("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                data.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        let pg = Postgres {
            data,
            port,
            _dir: dir,
        };
        pg.admin_sql("CREATE ROLE certuser LOGIN; CREATE ROLE gms LOGIN SUPERUSER;");
        pg
    }

    /// SQL over the unix socket as postgres (not through TLS or the sidecar).
    pub fn admin_sql(&self, sql: &str) -> String {
        let sock = self.data.parent().unwrap();
        as_postgres(
            &pg_bin("psql"),
            &[
                "-h",
                sock.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-tAc",
                sql,
            ],
        )
    }

    /// Waits until a new session sees `setting` as `value` (after
    /// `pg_reload_conf()`, the server applies it when it gets to it).
    pub fn wait_setting(&self, setting: &str, value: &str) {
        let deadline = std::time::Instant::now() + super::patience(10);
        while self.admin_sql(&format!("SHOW {setting}")).trim() != value {
            assert!(
                std::time::Instant::now() < deadline,
                "{setting} never became {value}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap();
    assert!(st.success(), "{cmd} {args:?}");
}

pub fn as_postgres(bin: &Path, args: &[&str]) -> String {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin:?} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
