//! A private RTMP ingest server (nginx with the rtmp module) for tests.
//!
//! Contract:
//!
//! - [`Rtmp::start`] writes an nginx config into a fresh temporary folder
//!   (`daemon off; master_process off;`, the Debian `ngx_rtmp_module.so`,
//!   pid file and error log in the folder) with one application,
//!   `live { live on; record all; record_unique off; }` recording to
//!   `rec/` in that folder, listening on a free loopback port, and runs
//!   `nginx -c CONF -p DIR -e LOG`. It returns once the port accepts
//!   connections (~50 ms), and retries with a new port if the port was
//!   taken in the meantime.
//! - A publisher to [`Rtmp::url`]`(KEY)` is recorded to
//!   [`Rtmp::recorded`]`(KEY)` = `rec/KEY.flv`. nginx closes that file a
//!   moment after the publisher goes away: [`Rtmp::wait_recorded`] waits
//!   until the file is non-empty and nginx no longer holds it open.
//! - nginx runs as one process (no workers), so dropping an [`Rtmp`] kills
//!   everything it started and removes the folder; if the test process
//!   dies, the kernel kills nginx (parent-death signal).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

use crate::{ports, process};

/// Where Debian's `libnginx-mod-rtmp` puts the module.
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
/// The nginx executable.
const NGINX: &str = "nginx";
/// How long nginx may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times [`Rtmp::start`] picks a new port after a bind failure.
const PORT_ATTEMPTS: usize = 3;

/// A running nginx-rtmp; see the module documentation.
#[must_use = "dropping an Rtmp stops it"]
pub struct Rtmp {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl std::fmt::Debug for Rtmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtmp")
            .field("addr", &self.addr)
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Rtmp {
    /// Starts nginx-rtmp on a free loopback port. Blocks for ~50 ms.
    pub fn start() -> Result<Rtmp> {
        if !Path::new(RTMP_MODULE).is_file() {
            bail!("{RTMP_MODULE} is missing: run scripts/setup (it installs nginx and libnginx-mod-rtmp)");
        }
        let dir = tempfile::Builder::new()
            .prefix("rtmp-harness-")
            .tempdir()
            .context("creating nginx's temporary folder")?;
        fs::create_dir(dir.path().join("rec")).context("creating rec/")?;
        let mut last_err = None;
        for attempt in 1..=PORT_ATTEMPTS {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
            match launch(dir.path(), addr) {
                Ok(child) => {
                    tracing::debug!(%addr, "nginx-rtmp ready");
                    return Ok(Rtmp { child, addr, dir });
                }
                Err(Launch::PortInUse(e)) => {
                    tracing::warn!(
                        attempt,
                        "nginx could not bind {addr}, picking another port: {e:#}"
                    );
                    last_err = Some(e);
                }
                Err(Launch::Failed(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no start attempt made")))
    }

    /// Stops nginx and starts it again on the same port and folder: an
    /// ingest that dropped its publishers. A new publish of a key replaces
    /// that key's recording.
    pub fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = match launch(self.dir.path(), self.addr) {
            Ok(child) => child,
            Err(Launch::PortInUse(e) | Launch::Failed(e)) => {
                return Err(e.context("restarting nginx"))
            }
        };
        Ok(())
    }

    /// The RTMP listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `rtmp://127.0.0.1:PORT/live/KEY`: where to publish the stream `key`.
    pub fn url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.addr)
    }

    /// Where nginx records the stream `key` (it may not exist yet).
    pub fn recorded(&self, key: &str) -> PathBuf {
        self.dir.path().join("rec").join(format!("{key}.flv"))
    }

    /// The server's folder: config, `error.log`, pid file, `rec/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines of nginx's error log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.dir.path().join("error.log"), lines)
    }

    /// Waits until the recording of `key` exists, is non-empty and is no
    /// longer open in nginx (the publisher has gone and nginx closed the
    /// file); returns its path. Blocking; polls every 50 ms.
    pub fn wait_recorded(&self, key: &str, timeout: Duration) -> Result<PathBuf> {
        let path = self.recorded(key);
        let deadline = Instant::now() + timeout;
        loop {
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if size > 0 && !holds_open(self.child.id(), &path) {
                return Ok(path);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not closed with content within {timeout:?} (size {size}); nginx log:\n{}",
                    path.display(),
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Rtmp::wait_recorded`] without blocking the async runtime.
    pub async fn wait_recorded_async(&self, key: &str, timeout: Duration) -> Result<PathBuf> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.wait_recorded(key, Duration::ZERO) {
                Ok(path) => return Ok(path),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for Rtmp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // TempDir's drop removes the folder.
    }
}

/// Whether process `pid` has `path` open (Linux: its `/proc/PID/fd` links).
fn holds_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// The nginx config for a server in `dir` listening on `addr`.
fn config(dir: &Path, addr: SocketAddr) -> Result<String> {
    let dir = dir
        .to_str()
        .filter(|d| !d.contains([';', '"', '\'', ' ', '{', '}']))
        .ok_or_else(|| anyhow!("{} cannot be written into an nginx config", dir.display()))?;
    Ok(format!(
        "# Written by the tests' rtmp harness.
load_module {RTMP_MODULE};
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{
    worker_connections 64;
}}
rtmp {{
    server {{
        listen {addr};
        chunk_size 4096;
        application live {{
            live on;
            record all;
            record_path {dir}/rec;
            record_unique off;
        }}
    }}
}}
"
    ))
}

enum Launch {
    /// The port was taken: another port may work.
    PortInUse(anyhow::Error),
    Failed(anyhow::Error),
}

/// Writes the config for `addr`, spawns nginx and waits until it listens.
fn launch(dir: &Path, addr: SocketAddr) -> Result<Child, Launch> {
    let failed = Launch::Failed;
    let conf = dir.join("nginx.conf");
    let log = dir.join("error.log");
    fs::write(&conf, config(dir, addr).map_err(failed)?)
        .context("writing nginx.conf")
        .map_err(failed)?;
    let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut cmd = Command::new(NGINX);
    cmd.arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = process::spawn_tied(cmd)
        .with_context(|| format!("spawning {NGINX} (run scripts/setup)"))
        .map_err(failed)?;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = fs::read(&log).unwrap_or_default();
            let new = String::from_utf8_lossy(&text[(log_start as usize).min(text.len())..]);
            let e = anyhow!("nginx exited during start-up ({status}); log:\n{new}");
            return Err(if new.contains("Address already in use") {
                Launch::PortInUse(e)
            } else {
                Launch::Failed(e)
            });
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            tracing::debug!(elapsed = ?started.elapsed(), "nginx listens");
            return Ok(child);
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Launch::Failed(anyhow!(
                "nginx did not listen on {addr} within {READY_TIMEOUT:?}; log:\n{}",
                log_tail(&log, 20)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_records_live_streams_in_the_folder() {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1935));
        let conf = config(Path::new("/tmp/x"), addr).unwrap();
        assert!(conf.starts_with("# Written"));
        for line in [
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;",
            "daemon off;",
            "pid /tmp/x/nginx.pid;",
            "listen 127.0.0.1:1935;",
            "record_path /tmp/x/rec;",
            "record_unique off;",
        ] {
            assert!(conf.contains(line), "{line} missing in\n{conf}");
        }
        assert!(config(Path::new("/tmp/a b"), addr).is_err());
    }
}
