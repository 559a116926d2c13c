//! A config served as written (`tls-sidecar run -c FILE`, no admin endpoint
//! added): what `import` wrote, run as an operator would run it.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `tls-sidecar run` on a config; killed on drop.
pub struct Served(Child);

impl Served {
    /// Starts it and waits until every port in `ports` accepts.
    pub fn start(config: &Path, ports: &[u16]) -> Served {
        let mut served = Served(
            super::cli_command(&[])
                .args(["run", "-c"])
                .arg(config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in ports {
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                if let Ok(Some(_)) = served.0.try_wait() {
                    let mut err = String::new();
                    let _ = served.0.stderr.take().unwrap().read_to_string(&mut err);
                    panic!("the config did not serve: {err}");
                }
                assert!(Instant::now() < deadline, "nothing listens on {port}");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
