//! A private S3 server (moto) for tests.
//!
//! Contract:
//!
//! - [`Moto::start`] runs `moto_server -H 127.0.0.1 -p PORT` from the venv
//!   `scripts/setup` creates (`.local/venv`) on a free loopback port, with
//!   its log in a fresh temporary folder, and returns once it answers HTTP
//!   (~1 s). If another process took the port, it retries with a new one.
//!   A missing venv fails with a message naming `scripts/setup`.
//! - Nothing global is set: tests pass [`Moto::endpoint`],
//!   [`Moto::REGION`] and [`Moto::credentials`] (`test`/`test`) to the code
//!   under test, with path-style addressing.
//! - [`Moto::create_bucket`], [`Moto::get_object`], [`Moto::list`] and
//!   [`Moto::pending_uploads`] look at the server through aws-sdk-s3.
//! - Dropping a [`Moto`] kills the server and removes the folder; if the
//!   test process dies, the kernel kills it (parent-death signal).
//!
//! The data lives in moto's memory only: each instance starts empty.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::Client;
use tempfile::TempDir;

use crate::{ports, process, workspace_root};

/// The moto executable, relative to the workspace root.
const MOTO_SERVER: &str = ".local/venv/bin/moto_server";
/// How long moto may take to answer after it was spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times [`Moto::start`] picks a new port after a bind failure.
const PORT_ATTEMPTS: usize = 3;

/// A running moto S3 server; see the module documentation.
#[must_use = "dropping a Moto stops it"]
pub struct Moto {
    child: Child,
    addr: SocketAddr,
    endpoint: String,
    client: Client,
    dir: TempDir,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Moto {
    /// The region every client of the server uses.
    pub const REGION: &'static str = "us-east-1";

    /// The moto executable this harness runs.
    pub fn server_bin() -> PathBuf {
        workspace_root().join(MOTO_SERVER)
    }

    /// Starts a server on a free port and waits until it answers. Blocks
    /// for ~1 s; in async tests prefer [`Moto::start_async`].
    pub fn start() -> Result<Moto> {
        let bin = Moto::server_bin();
        if !bin.is_file() {
            bail!(
                "{} is missing: run scripts/setup (it installs moto[server] into .local/venv)",
                bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("moto-harness-")
            .tempdir()
            .context("creating moto's temporary folder")?;
        let log = dir.path().join("moto.log");
        let mut last_err = None;
        for attempt in 1..=PORT_ATTEMPTS {
            let port = ports::free_port()?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match launch(&bin, addr, &log) {
                Ok(child) => {
                    let endpoint = format!("http://{addr}");
                    tracing::debug!(%endpoint, "moto ready");
                    return Ok(Moto {
                        client: client(&endpoint),
                        child,
                        addr,
                        endpoint,
                        dir,
                    });
                }
                Err(Launch::PortInUse(e)) => {
                    tracing::warn!(
                        attempt,
                        "moto could not bind {addr}, picking another port: {e:#}"
                    );
                    last_err = Some(e);
                }
                Err(Launch::Failed(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no start attempt made")))
    }

    /// [`Moto::start`] on tokio's blocking pool.
    pub async fn start_async() -> Result<Moto> {
        tokio::task::spawn_blocking(Moto::start).await?
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Credentials moto accepts (`test`/`test`).
    pub fn credentials() -> Credentials {
        Credentials::new("test", "test", None, None, "moto-harness")
    }

    /// A path-style client of this server.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The last `lines` lines of moto's log (one line per request).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.dir.path().join("moto.log"), lines)
    }

    /// Creates the bucket `name`.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        self.client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
            .with_context(|| format!("creating bucket {name}"))?;
        Ok(())
    }

    /// The whole body of `bucket/key`.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
            .with_context(|| format!("getting {bucket}/{key}"))?;
        let body = out
            .body
            .collect()
            .await
            .with_context(|| format!("reading {bucket}/{key}"))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Every object in `bucket`: key → size in bytes.
    pub async fn list(&self, bucket: &str) -> Result<BTreeMap<String, u64>> {
        let mut objects = BTreeMap::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
                .with_context(|| format!("listing {bucket}"))?;
            for object in page.contents() {
                let key = object.key().unwrap_or_default().to_owned();
                let size = object.size().unwrap_or_default().max(0) as u64;
                objects.insert(key, size);
            }
        }
        Ok(objects)
    }

    /// Keys of the multipart uploads in `bucket` that were neither
    /// completed nor aborted.
    pub async fn pending_uploads(&self, bucket: &str) -> Result<Vec<String>> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
            .with_context(|| format!("listing multipart uploads of {bucket}"))?;
        Ok(out
            .uploads()
            .iter()
            .map(|u| u.key().unwrap_or_default().to_owned())
            .collect())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // TempDir's drop removes the folder.
    }
}

/// A path-style client of `endpoint` with moto's credentials.
fn client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(Moto::REGION))
        .credentials_provider(Moto::credentials())
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

enum Launch {
    /// The port was taken: another port may work.
    PortInUse(anyhow::Error),
    Failed(anyhow::Error),
}

/// Spawns moto on `addr` and waits until it answers HTTP.
fn launch(bin: &Path, addr: SocketAddr, log: &Path) -> Result<Child, Launch> {
    let failed = Launch::Failed;
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .context("opening moto.log")
        .map_err(failed)?;
    let err = out
        .try_clone()
        .context("duplicating the log handle")
        .map_err(failed)?;
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let started = Instant::now();
    let mut child = process::spawn_tied(cmd)
        .with_context(|| format!("spawning {}", bin.display()))
        .map_err(failed)?;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log_tail(log, 20);
            let e = anyhow!("moto_server exited during start-up ({status}); log:\n{tail}");
            return Err(if tail.contains("Address already in use") {
                Launch::PortInUse(e)
            } else {
                Launch::Failed(e)
            });
        }
        if answers_http(addr) {
            tracing::debug!(elapsed = ?started.elapsed(), "moto answers");
            return Ok(child);
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Launch::Failed(anyhow!(
                "moto_server did not answer on {addr} within {READY_TIMEOUT:?}; log:\n{}",
                log_tail(log, 20)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether an HTTP request to `addr` gets an HTTP answer.
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if tcp.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    tcp.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
