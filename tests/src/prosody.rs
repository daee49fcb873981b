//! A private Prosody server for tests.
//!
//! Contract:
//!
//! - [`Prosody::start`] renders `deploy/prosody/prosody.cfg.lua.template`
//!   (the same file the stack launcher uses) into a fresh temporary folder,
//!   with two free loopback ports (c2s and HTTP), and runs
//!   `prosody --config FILE -F` as a child process. It returns once Prosody
//!   answers a stream header for the domain with stream features, or fails
//!   within [`ProsodyOptions::ready_timeout`] with an error that carries the
//!   tail of Prosody's log. If another process took one of the ports in the
//!   meantime, it retries with new ports.
//! - Everything lives in that folder ([`Prosody::data_dir`]): the config,
//!   `prosody.log` (Prosody's stdout and stderr), the pidfile, `data/`
//!   (accounts) and `certs/` (empty: the loopback config has no TLS).
//! - [`Prosody::stop`] sends SIGTERM and waits (SIGKILL after 5 s);
//!   [`Prosody::start_again`] starts it again on the same ports with the same
//!   data, so accounts survive and clients can reconnect to the same address.
//! - Dropping a [`Prosody`] kills the process (SIGKILL) and removes the
//!   folder, also when a test panics. If the whole test process dies, the
//!   kernel kills Prosody too (parent-death signal), so nothing is left behind.
//! - Sign-in on the participants' domain is anonymous unless
//!   [`ProsodyOptions::jwt`] is set: then it is token mode (mod_auth_jwt and
//!   mod_muc_jwt, see `deploy/prosody/README.md`); the secret goes into the
//!   rendered config only, never into logs or `Debug` output.
//! - Accounts: [`Prosody::register`] (any host) and
//!   [`Prosody::register_service`] (a random password on `auth.DOMAIN`) run
//!   `prosodyctl register` against the same config; this works whether or
//!   not the server is running and takes well under 100 ms.
//!
//! The blocking calls ([`Prosody::start`], [`Prosody::stop`],
//! [`Prosody::start_again`]) take from ~0.2 s (start) to ~2 s (graceful
//! stop); inside async tests prefer the `_async` variants, which run them on
//! tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::distr::{Alphanumeric, SampleString};
use tempfile::TempDir;

use crate::{ports, process, workspace_root};

/// Where the template and our Prosody modules live, relative to the workspace.
const TEMPLATE: &str = "deploy/prosody/prosody.cfg.lua.template";
const PLUGIN_DIR: &str = "deploy/prosody/plugins";
/// Log line Prosody writes when it cannot bind a listener.
const BIND_FAILED: &str = "Failed to open server port";
/// How many times [`Prosody::start`] picks new ports after a bind failure.
const PORT_ATTEMPTS: usize = 3;
/// Grace period between SIGTERM and SIGKILL in [`Prosody::stop`].
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of log included in error messages.
const ERROR_LOG_LINES: usize = 40;

/// How to start a [`Prosody`]. `ProsodyOptions::default()` gives `meet.test`.
#[derive(Debug, Clone)]
pub struct ProsodyOptions {
    /// Participants' domain; the other hosts are derived from it
    /// (`auth.`, `recorder.`, `conference.`, `internal.`).
    pub domain: String,
    /// Minimum level Prosody logs: `debug`, `info`, `warn` or `error`.
    pub log_level: String,
    /// How long to wait for Prosody to serve streams after each start.
    pub ready_timeout: Duration,
    /// The `prosody` executable.
    pub prosody_bin: PathBuf,
    /// The `prosodyctl` executable.
    pub prosodyctl_bin: PathBuf,
    /// Keep the temporary folder after drop (its path is printed to stderr),
    /// to read the log of a failing test. The process is killed regardless.
    pub keep_data_dir: bool,
    /// Token sign-in on the participants' domain; `None`: anonymous.
    pub jwt: Option<JwtOptions>,
}

/// Token mode: what `deploy/prosody/plugins/mod_auth_jwt.lua` checks.
#[derive(Clone, Default)]
pub struct JwtOptions {
    /// The shared HS256 key (`jwt_secret`).
    pub secret: String,
    /// `jwt_issuer`; empty: `iss` is not checked.
    pub issuer: String,
    /// `jwt_audience`; empty: `aud` is not checked.
    pub audience: String,
}

impl std::fmt::Debug for JwtOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtOptions")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Default for ProsodyOptions {
    fn default() -> Self {
        ProsodyOptions {
            domain: "meet.test".into(),
            log_level: "debug".into(),
            ready_timeout: Duration::from_secs(10),
            prosody_bin: "prosody".into(),
            prosodyctl_bin: "prosodyctl".into(),
            keep_data_dir: false,
            jwt: None,
        }
    }
}

impl ProsodyOptions {
    /// Default options for `domain`.
    pub fn for_domain(domain: impl Into<String>) -> Self {
        ProsodyOptions {
            domain: domain.into(),
            ..Default::default()
        }
    }

    /// Default options in token mode with `secret` (no issuer or audience).
    pub fn with_jwt(secret: impl Into<String>) -> Self {
        ProsodyOptions {
            jwt: Some(JwtOptions {
                secret: secret.into(),
                ..JwtOptions::default()
            }),
            ..Default::default()
        }
    }
}

/// An account created with [`Prosody::register`] or [`Prosody::register_service`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Local part, e.g. `focus`.
    pub username: String,
    /// Host, e.g. `auth.meet.test`.
    pub host: String,
    /// Plain-text password (loopback tests only).
    pub password: String,
}

impl Account {
    /// The bare JID, `username@host`.
    pub fn jid(&self) -> String {
        format!("{}@{}", self.username, self.host)
    }
}

/// A running (or stopped) private Prosody; see the module documentation.
#[must_use = "dropping a Prosody kills it"]
pub struct Prosody {
    opts: ProsodyOptions,
    launch: Launch,
    child: Option<ChildGuard>,
    /// `None` only during drop.
    dir: Option<TempDir>,
}

impl std::fmt::Debug for Prosody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prosody")
            .field("domain", &self.opts.domain)
            .field("c2s", &self.launch.c2s)
            .field("http", &self.launch.http)
            .field("pid", &self.pid())
            .field("data_dir", &self.data_dir())
            .finish()
    }
}

impl Prosody {
    /// Starts a new instance in a fresh folder on free ports and waits until
    /// it serves streams. Blocks for ~0.2 s.
    pub fn start(opts: ProsodyOptions) -> Result<Prosody> {
        check_domain(&opts.domain)?;
        let template_path = workspace_root().join(TEMPLATE);
        let template = fs::read_to_string(&template_path)
            .with_context(|| format!("reading {}", template_path.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("prosody-harness-")
            .tempdir()
            .context("creating Prosody's temporary folder")?;
        let root = dir.path().to_path_buf();
        for sub in ["data", "certs"] {
            fs::create_dir(root.join(sub)).with_context(|| format!("creating {sub}/"))?;
        }

        let mut last_err = None;
        for attempt in 1..=PORT_ATTEMPTS {
            let [c2s, http] = ports::free_ports(2)?[..] else {
                unreachable!("asked for two ports")
            };
            let launch = Launch::prepare(&opts, &template, &root, c2s, http)?;
            match launch.run() {
                Ok(child) => {
                    tracing::debug!(domain = %opts.domain, c2s = %launch.c2s, http = %launch.http, "prosody ready");
                    return Ok(Prosody {
                        opts,
                        launch,
                        child: Some(child),
                        dir: Some(dir),
                    });
                }
                Err(LaunchError::PortInUse(err)) => {
                    tracing::warn!(
                        attempt,
                        "prosody could not bind its ports, picking new ones: {err:#}"
                    );
                    last_err = Some(err);
                }
                Err(LaunchError::Failed(err)) => return Err(err),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no start attempt made")))
    }

    /// [`Prosody::start`] on tokio's blocking pool.
    pub async fn start_async(opts: ProsodyOptions) -> Result<Prosody> {
        tokio::task::spawn_blocking(move || Prosody::start(opts)).await?
    }

    /// Stops the server: SIGTERM, then SIGKILL if it is still running after
    /// 5 s. Takes 1-2 s (Prosody closes its sessions first). Doing it twice
    /// is harmless.
    pub fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(child) => child.terminate(STOP_GRACE).map(drop),
            None => Ok(()),
        }
    }

    /// [`Prosody::stop`] on tokio's blocking pool.
    pub async fn stop_async(&mut self) -> Result<()> {
        match self.child.take() {
            Some(child) => tokio::task::spawn_blocking(move || child.terminate(STOP_GRACE))
                .await?
                .map(drop),
            None => Ok(()),
        }
    }

    /// Starts the server again with the same config, ports and data (stops
    /// it first if it is running) and waits until it serves streams.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop()?;
        let child = self.launch.run().map_err(LaunchError::into_inner)?;
        self.child = Some(child);
        Ok(())
    }

    /// [`Prosody::start_again`] on tokio's blocking pool.
    pub async fn start_again_async(&mut self) -> Result<()> {
        self.stop_async().await?;
        let launch = self.launch.clone();
        let child = tokio::task::spawn_blocking(move || launch.run())
            .await?
            .map_err(LaunchError::into_inner)?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the Prosody process is alive (started and not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(ChildGuard::is_alive)
    }

    /// Process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::id)
    }

    /// Participants' domain, e.g. `meet.test`.
    pub fn domain(&self) -> &str {
        &self.opts.domain
    }

    /// `auth.DOMAIN`: service accounts.
    pub fn auth_domain(&self) -> String {
        format!("auth.{}", self.opts.domain)
    }

    /// `recorder.DOMAIN`: the hidden domain recorders join meetings from.
    pub fn recorder_domain(&self) -> String {
        format!("recorder.{}", self.opts.domain)
    }

    /// `conference.DOMAIN`: meeting rooms.
    pub fn conference_domain(&self) -> String {
        format!("conference.{}", self.opts.domain)
    }

    /// `internal.DOMAIN`: breweries, open to `auth.DOMAIN` only.
    pub fn internal_domain(&self) -> String {
        format!("internal.{}", self.opts.domain)
    }

    /// Client-to-server address (plain TCP, no TLS), `127.0.0.1:PORT`.
    pub fn c2s_addr(&self) -> SocketAddr {
        self.launch.c2s
    }

    /// HTTP port on 127.0.0.1 (BOSH and WebSocket).
    pub fn http_port(&self) -> u16 {
        self.launch.http.port()
    }

    /// `ws://127.0.0.1:PORT/xmpp-websocket`.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/xmpp-websocket", self.launch.http)
    }

    /// `http://127.0.0.1:PORT/http-bind`.
    pub fn bosh_url(&self) -> String {
        format!("http://{}/http-bind", self.launch.http)
    }

    /// The instance's folder: config, log, pidfile, `data/`, `certs/`.
    pub fn data_dir(&self) -> &Path {
        &self.launch.dir
    }

    /// The rendered config file (for `prosodyctl --config`).
    pub fn config_path(&self) -> &Path {
        &self.launch.config
    }

    /// Prosody's stdout and stderr, all starts appended.
    pub fn log_path(&self) -> &Path {
        &self.launch.log
    }

    /// The last `lines` lines of Prosody's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.launch.log, lines)
    }

    /// Creates (or re-keys) `user@host` with `password` through
    /// `prosodyctl --config FILE register`. `host` must be one of the
    /// virtual hosts with accounts (`auth.DOMAIN`, `recorder.DOMAIN`).
    /// Works while the server runs or is stopped; takes ~60 ms.
    pub fn register(&self, user: &str, host: &str, password: &str) -> Result<Account> {
        let out = Command::new(&self.opts.prosodyctl_bin)
            .arg("--config")
            .arg(&self.launch.config)
            .args(["register", user, host, password])
            .current_dir(&self.launch.dir)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.opts.prosodyctl_bin.display()))?;
        if !out.status.success() {
            bail!(
                "prosodyctl register {user} {host} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Account {
            username: user.into(),
            host: host.into(),
            password: password.into(),
        })
    }

    /// Logs `account` in over c2s with SASL PLAIN and its password.
    pub async fn login(&self, account: &Account) -> Result<crate::raw_xmpp::RawXmpp> {
        crate::raw_xmpp::RawXmpp::login_plain(
            self.c2s_addr(),
            &account.host,
            &account.username,
            &account.password,
        )
        .await
    }

    /// Creates `name@auth.DOMAIN` (a service account: focus, recorder,
    /// gateway) with a random password.
    pub fn register_service(&self, name: &str) -> Result<Account> {
        self.register(name, &self.auth_domain(), &random_password())
    }

    /// Creates `name@recorder.DOMAIN` (the identity a recorder joins a
    /// meeting with) with a random password.
    pub fn register_recorder(&self, name: &str) -> Result<Account> {
        self.register(name, &self.recorder_domain(), &random_password())
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        // ChildGuard's own drop sends SIGKILL and reaps the process.
        drop(self.child.take());
        if let Some(dir) = self.dir.take() {
            if self.opts.keep_data_dir {
                eprintln!("prosody harness: kept {}", dir.keep().display());
            }
            // Otherwise TempDir's drop removes the folder.
        }
    }
}

/// Replaces every `{{KEY}}` in `template` by its value. Fails if a
/// placeholder is left (a typo in the template or a missing value).
pub fn render_template(template: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = out.find("{{") {
        let rest = &out[at..];
        let end = rest.find("}}").map_or(rest.len().min(40), |e| e + 2);
        bail!("template placeholder {} has no value", &rest[..end]);
    }
    Ok(out)
}

/// A random 24-character alphanumeric password.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

fn check_domain(domain: &str) -> Result<()> {
    let ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        bail!(
            "invalid domain {domain:?}: expected dot-separated labels of letters, digits and '-'"
        );
    }
    Ok(())
}

/// A path as it may appear inside a Lua string in the config.
fn lua_path(path: &Path) -> Result<&str> {
    let s = path
        .to_str()
        .ok_or_else(|| anyhow!("path {} is not UTF-8", path.display()))?;
    if s.contains(['"', '\\', '\n']) {
        bail!("path {s:?} cannot be written into the Lua config");
    }
    Ok(s)
}

/// A value as it may appear inside a Lua string in the config. The value
/// itself is not part of the error (it may be a secret).
fn lua_string<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if value.contains(['"', '\\', '\n', '\r']) || value.contains("{{") {
        bail!("{what} cannot be written into the Lua config (no quotes, backslashes, line breaks or {{{{)");
    }
    Ok(value)
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Everything needed to (re)start one instance; cheap to clone onto a
/// blocking thread.
#[derive(Debug, Clone)]
struct Launch {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    dir: PathBuf,
    domain: String,
    c2s: SocketAddr,
    http: SocketAddr,
    timeout: Duration,
}

enum LaunchError {
    /// A listener could not bind: retrying on other ports may help.
    PortInUse(anyhow::Error),
    Failed(anyhow::Error),
}

impl LaunchError {
    fn into_inner(self) -> anyhow::Error {
        match self {
            LaunchError::PortInUse(e) | LaunchError::Failed(e) => e,
        }
    }
}

impl Launch {
    /// Renders the config for these ports into `root` (which holds `data/`
    /// and `certs/`).
    fn prepare(
        opts: &ProsodyOptions,
        template: &str,
        root: &Path,
        c2s: u16,
        http: u16,
    ) -> Result<Launch> {
        let launch = Launch {
            bin: opts.prosody_bin.clone(),
            config: root.join("prosody.cfg.lua"),
            log: root.join("prosody.log"),
            dir: root.to_path_buf(),
            domain: opts.domain.clone(),
            c2s: SocketAddr::from((Ipv4Addr::LOCALHOST, c2s)),
            http: SocketAddr::from((Ipv4Addr::LOCALHOST, http)),
            timeout: opts.ready_timeout,
        };
        let (auth, jwt) = match &opts.jwt {
            Some(jwt) => {
                if jwt.secret.is_empty() {
                    bail!("jwt.secret is empty: token mode needs a secret");
                }
                ("jwt", jwt.clone())
            }
            None => ("anonymous", JwtOptions::default()),
        };
        let config = render_template(
            template,
            &[
                ("DOMAIN", opts.domain.as_str()),
                ("C2S_PORT", &c2s.to_string()),
                ("HTTP_PORT", &http.to_string()),
                ("DATA_DIR", lua_path(root)?),
                ("PLUGIN_DIR", lua_path(&workspace_root().join(PLUGIN_DIR))?),
                ("LOG_LEVEL", opts.log_level.as_str()),
                ("DOMAIN_AUTH", auth),
                ("JWT_SECRET", lua_string("jwt.secret", &jwt.secret)?),
                ("JWT_ISSUER", lua_string("jwt.issuer", &jwt.issuer)?),
                ("JWT_AUDIENCE", lua_string("jwt.audience", &jwt.audience)?),
            ],
        )?;
        fs::write(&launch.config, config).context("writing prosody.cfg.lua")?;
        Ok(launch)
    }

    /// Spawns Prosody and waits until it serves streams for the domain.
    fn run(&self) -> Result<ChildGuard, LaunchError> {
        let failed = |e: anyhow::Error| LaunchError::Failed(e);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .context("opening prosody.log")
            .map_err(failed)?;
        let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let err_log = log
            .try_clone()
            .context("duplicating the log handle")
            .map_err(failed)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("-F")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        let started = Instant::now();
        let mut child = process::spawn_tied(cmd)
            .map(ChildGuard)
            .with_context(|| format!("spawning {}", self.bin.display()))
            .map_err(failed)?;

        let deadline = started + self.timeout;
        loop {
            let new_log = read_from(&self.log, log_start);
            if new_log.contains(BIND_FAILED) {
                let lines: Vec<&str> = new_log
                    .lines()
                    .filter(|l| l.contains(BIND_FAILED))
                    .collect();
                let err = anyhow!(
                    "prosody could not bind c2s {} or http {}: {}",
                    self.c2s,
                    self.http,
                    lines.join("; ")
                );
                return Err(LaunchError::PortInUse(err));
            }
            if let Some(status) = child.try_wait() {
                return Err(failed(anyhow!(
                    "prosody exited during start-up ({status}); log:\n{}",
                    log_tail(&self.log, ERROR_LOG_LINES)
                )));
            }
            let gave_up = || read_from(&self.log, log_start).contains(BIND_FAILED);
            match probe_stream(self.c2s, &self.domain, gave_up) {
                Ok(true)
                    if TcpStream::connect_timeout(&self.http, Duration::from_millis(200))
                        .is_ok() =>
                {
                    // Bind errors are logged before the event loop serves
                    // anyone, so the log is complete for this start.
                    if read_from(&self.log, log_start).contains(BIND_FAILED) {
                        continue;
                    }
                    tracing::debug!(elapsed = ?started.elapsed(), "prosody serves streams");
                    return Ok(child);
                }
                Ok(_) => {}
                Err(e) => return Err(failed(e.context(log_tail(&self.log, ERROR_LOG_LINES)))),
            }
            if Instant::now() >= deadline {
                return Err(failed(anyhow!(
                    "prosody did not serve c2s on {} within {:?}; log:\n{}",
                    self.c2s,
                    self.timeout,
                    log_tail(&self.log, ERROR_LOG_LINES)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The log's content from byte `from` on.
fn read_from(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// Opens a client stream to `domain`: `Ok(true)` once stream features
/// arrive, `Ok(false)` if the server is not answering yet (or `give_up`
/// says to stop waiting), `Err` if it answers with a stream error (a config
/// fault that waiting cannot fix).
fn probe_stream(addr: SocketAddr, domain: &str, give_up: impl Fn() -> bool) -> Result<bool> {
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return Ok(false);
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = tcp.set_write_timeout(Some(Duration::from_millis(500)));
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    if tcp.write_all(header.as_bytes()).is_err() {
        return Ok(false);
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The kernel accepts as soon as the port listens; Prosody answers once
    // its event loop runs, after every host is loaded.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if give_up() {
                    break;
                }
            }
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&seen);
        if text.contains("<stream:error") {
            bail!("prosody refused a stream to {domain}: {text}");
        }
        if text.contains("<stream:features") {
            let _ = tcp.write_all(b"</stream:stream>");
            return Ok(true);
        }
    }
    Ok(false)
}

/// A Prosody child process; dropping it kills and reaps the process.
struct ChildGuard(Child);

impl ChildGuard {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// Exit status if the process has exited.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().ok().flatten()
    }

    fn is_alive(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    fn terminate(mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Ok(status);
        }
        let started = Instant::now();
        process::sigterm(self.id()).context("sending SIGTERM to prosody")?;
        while started.elapsed() < grace {
            if let Some(status) = self.try_wait() {
                tracing::debug!(elapsed = ?started.elapsed(), "prosody stopped");
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!("prosody ignored SIGTERM for {grace:?}; killing it");
        let _ = self.0.kill();
        self.0.wait().context("reaping prosody")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let out = render_template("a={{A}} b={{B}} a={{A}}", &[("A", "1"), ("B", "two")]).unwrap();
        assert_eq!(out, "a=1 b=two a=1");
    }

    #[test]
    fn a_missing_value_names_the_placeholder() {
        let err = render_template("x={{X}} y={{Y}}", &[("X", "1")]).unwrap_err();
        assert_eq!(err.to_string(), "template placeholder {{Y}} has no value");
    }

    #[test]
    fn the_real_template_uses_only_known_placeholders() {
        let template = fs::read_to_string(workspace_root().join(TEMPLATE)).unwrap();
        let keys = [
            "DOMAIN",
            "C2S_PORT",
            "HTTP_PORT",
            "DATA_DIR",
            "PLUGIN_DIR",
            "LOG_LEVEL",
            "DOMAIN_AUTH",
            "JWT_SECRET",
            "JWT_ISSUER",
            "JWT_AUDIENCE",
        ];
        let values: Vec<_> = keys.iter().map(|k| (*k, "v")).collect();
        render_template(&template, &values).unwrap();
        for key in keys {
            assert!(template.contains(&format!("{{{{{key}}}}}")), "{key} unused");
        }
    }

    #[test]
    fn jwt_values_are_checked_and_the_secret_is_not_shown() {
        assert_eq!(lua_string("k", "abc-_.+/=").unwrap(), "abc-_.+/=");
        for bad in ["a\"b", "a\\b", "a\nb", "{{X}}"] {
            let err = lua_string("jwt.secret", bad).unwrap_err().to_string();
            assert!(err.starts_with("jwt.secret cannot"), "{err}");
            assert!(!err.contains(bad), "{err}");
        }
        let opts = ProsodyOptions::with_jwt("s3cr3t-value-xyz");
        assert!(!format!("{opts:?}").contains("s3cr3t"), "{opts:?}");
    }

    #[test]
    fn domains_are_checked() {
        check_domain("meet.test").unwrap();
        check_domain("a-b.c1").unwrap();
        for bad in ["", "meet..test", "meet.test.", "me\"et", "meet test", "x/y"] {
            assert!(check_domain(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_taken_port_is_reported_as_port_in_use() {
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let free = ports::free_port().unwrap();
        let template = fs::read_to_string(workspace_root().join(TEMPLATE)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for sub in ["data", "certs"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let opts = ProsodyOptions::default();
        for (c2s, http) in [(taken_port, free), (free, taken_port)] {
            let launch = Launch::prepare(&opts, &template, dir.path(), c2s, http).unwrap();
            match launch.run() {
                Err(LaunchError::PortInUse(err)) => {
                    assert!(err.to_string().contains(BIND_FAILED), "{err:#}")
                }
                Err(LaunchError::Failed(err)) => panic!("expected PortInUse, got {err:#}"),
                Ok(_) => panic!("prosody started on a taken port"),
            }
        }
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "1\n2\n3\n4\n").unwrap();
        assert_eq!(log_tail(&path, 2), "3\n4");
        assert_eq!(log_tail(&path, 10), "1\n2\n3\n4");
        assert_eq!(log_tail(&dir.path().join("missing"), 3), "");
    }
}
