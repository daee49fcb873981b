//! Helpers for the SIP gateway's benchmark (`tests/tests/gateway_bench.rs`):
//! the gateway as a process of its own, CPU time read from `/proc`, a phone
//! that talks in tone bursts leaving at known instants, an ear that
//! timestamps the bursts' onsets, and a counter of RTP per source.
//!
//! Contract:
//! - [`gateway_binary`] builds the `gateway` binary (`cargo build -p gateway
//!   --bin gateway`, `--release` when asked) and returns its path.
//!   [`GatewayProcess::start`] runs it with a config file it writes (SIP and
//!   HTTP on free loopback ports, the sfu's built-in mapper, the prompts),
//!   tied to the test process, and returns once `/health` answers 200;
//!   dropping it kills the process, [`GatewayProcess::stop`] asks first.
//! - [`cpu_time`] is a process's `utime + stime` from `/proc/<pid>/stat`;
//!   [`MachineCpu`] the machine's busy and total time from `/proc/stat`;
//!   [`children_named`] finds this process's children by command name.
//! - [`Talker`] sends G.711 RTP from its own thread, one 20 ms packet per
//!   20 ms on a fixed schedule: silence, and every `period` a tone burst that
//!   starts at a sample offset inside its packet that changes from burst to
//!   burst. It records each burst's onset. [`Ear`] receives RTP on its own
//!   thread, stamps each packet on arrival and finds the onsets in the
//!   decoded audio. An onset is the first sample louder than a quarter of the
//!   loudest sample heard, after [`QUIET`] of quieter samples; its instant is
//!   the arrival (or departure) of its packet plus its place in the packet
//!   (`index / 8000` s). Both sides use one clock, so [`latencies`] pairs
//!   them: the delay a sample gains on the way, framing included.
//! - [`RtpCounter`] counts the RTP packets arriving on one socket, per
//!   source address.
//! - [`BenchLock`] serialises benchmarks across test processes (`flock` on
//!   a file under the target folder).

use std::collections::HashMap;
use std::ffi::c_int;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::g711::Law;
use super::pcap::SAMPLE_RATE;
use super::rtp::{self, Rtp};
use crate::process::{sigterm, spawn_tied};
use crate::{Account, Prosody};

/// G.711 samples in one 20 ms packet.
const PACKET_SAMPLES: usize = 160;
const PACKET_TIME: Duration = Duration::from_millis(20);
/// Quiet before an onset counts (see the module contract).
pub const QUIET: Duration = Duration::from_millis(100);
/// An onset is a sample above this fraction of the loudest one.
const ONSET_FRACTION: f64 = 0.25;

unsafe extern "C" {
    fn sysconf(name: c_int) -> std::ffi::c_long;
    fn flock(fd: c_int, operation: c_int) -> c_int;
}

const SC_CLK_TCK: c_int = 2;
const LOCK_EX: c_int = 2;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The threads holding these locks never panic while they hold them.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------- CPU time

/// Clock ticks per second of `/proc` times (`CLK_TCK`).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

fn ticks(n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / clock_ticks() as f64)
}

/// The fields of `/proc/<pid>/stat` after the command name (field 3 first).
fn stat_fields(pid: u32) -> io::Result<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("unreadable /proc stat"))?;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// `utime + stime` of process `pid` (all its threads).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let f = stat_fields(pid)?;
    // Fields 14 and 15 of stat(5); `f[0]` is field 3.
    let parse = |i: usize| -> io::Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other("no CPU times in /proc stat"))
    };
    Ok(ticks(parse(11)? + parse(12)?))
}

/// This process's children whose command name is `name` (`sipp`).
pub fn children_named(name: &str) -> Vec<u32> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.trim() == name && stat_fields(pid).is_ok_and(|f| f.get(1) == Some(&me))
        })
        .collect()
}

/// The machine's CPU time so far, all cores (`/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineCpu {
    /// Not idle and not waiting for I/O.
    pub busy: Duration,
    pub total: Duration,
}

impl MachineCpu {
    pub fn now() -> io::Result<MachineCpu> {
        let text = std::fs::read_to_string("/proc/stat")?;
        let line = text
            .lines()
            .find(|l| l.starts_with("cpu "))
            .ok_or_else(|| io::Error::other("no cpu line in /proc/stat"))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest is in user).
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        Ok(MachineCpu {
            busy: ticks(total - idle),
            total: ticks(total),
        })
    }

    /// Busy share of all cores since `earlier` (1.0 = every core busy).
    pub fn busy_since(&self, earlier: &MachineCpu) -> f64 {
        let total = self.total.saturating_sub(earlier.total).as_secs_f64();
        if total == 0.0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy).as_secs_f64() / total
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

// ------------------------------------------------------------ bench lock

/// Held while a benchmark runs; other benchmarks wait in [`BenchLock::take`].
#[must_use = "the lock is released when dropped"]
pub struct BenchLock {
    _file: std::fs::File,
}

impl BenchLock {
    /// Waits (blocking) until no other process holds the lock named `name`.
    pub fn take(name: &str) -> io::Result<BenchLock> {
        use std::os::fd::AsRawFd;
        let dir = target_dir().join("tmp");
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::File::create(dir.join(format!("{name}.lock")))?;
        // SAFETY: flock(2) takes a descriptor we own and an integer.
        if unsafe { flock(file.as_raw_fd(), LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(BenchLock { _file: file })
    }
}

// ------------------------------------------------------- gateway process

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// Builds the `gateway` binary (release or debug profile) and returns its
/// path; cargo makes this a no-op when it is up to date.
pub async fn gateway_binary(release: bool) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = tokio::process::Command::new(cargo);
    cmd.current_dir(crate::workspace_root())
        .args(["build", "-p", "gateway", "--bin", "gateway"]);
    if release {
        cmd.arg("--release");
    }
    let out = cmd.output().await.context("running cargo build")?;
    if !out.status.success() {
        bail!(
            "cargo build -p gateway failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("gateway");
    anyhow::ensure!(path.exists(), "{} was not built", path.display());
    Ok(path)
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A `gateway` process (see the module contract).
pub struct GatewayProcess {
    child: Option<Child>,
    pid: u32,
    /// SIP (UDP and TCP).
    pub sip: SocketAddr,
    /// `/health` and `/metrics`.
    pub http: SocketAddr,
    dir: tempfile::TempDir,
}

/// The gateway's `sip.room_opus_complexity` in benchmarks:
/// `GATEWAY_BENCH_OPUS_COMPLEXITY`, else the gateway's default.
pub fn opus_complexity() -> u8 {
    std::env::var("GATEWAY_BENCH_OPUS_COMPLEXITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(gateway::media::call::DEFAULT_COMPLEXITY)
}

impl GatewayProcess {
    /// Starts `binary` as `account` on `prosody`, with the mapper of the sfu
    /// at `sfu_http`, at most `max_calls` calls, logging at `log_level`.
    pub async fn start(
        binary: &Path,
        prosody: &Prosody,
        account: &Account,
        sfu_http: SocketAddr,
        max_calls: usize,
        log_level: &str,
    ) -> anyhow::Result<GatewayProcess> {
        let dir = tempfile::tempdir()?;
        let ports = crate::free_ports(2)?;
        let sip = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[0]));
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[1]));
        let prompts = crate::gateway::prompts();
        let config = format!(
            "[xmpp]\nserver = {server}\ndomain = {domain}\njid = {jid}\npassword = {password}\n\
             security = \"plaintext\"\n\n\
             [sip]\nlisten = {sip}\nmax_calls = {max_calls}\n\
             room_opus_complexity = {complexity}\n\n\
             [http]\nlisten = {http}\n\n\
             [dial_in]\nprompts = {prompts}\nmapper = {{ kind = \"builtin\", base_url = {mapper} }}\n\n\
             [log]\nlevel = {log_level}\n",
            server = toml_str(&prosody.c2s_addr().to_string()),
            domain = toml_str(prosody.domain()),
            jid = toml_str(&account.jid()),
            password = toml_str(&account.password),
            sip = toml_str(&sip.to_string()),
            http = toml_str(&http.to_string()),
            prompts = toml_str(&prompts.to_string_lossy()),
            mapper = toml_str(&format!("http://{sfu_http}")),
            log_level = toml_str(log_level),
            complexity = opus_complexity(),
        );
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("gateway.log"))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = spawn_tied(cmd).context("starting the gateway")?;
        let pid = child.id();
        let mut gateway = GatewayProcess {
            child: Some(child),
            pid,
            sip,
            http,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(answer) = crate::http::get(http, "/health").await {
                if answer.status == 200 {
                    return Ok(gateway);
                }
            }
            if let Some(status) = gateway.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                bail!("the gateway exited ({status}):\n{}", gateway.log_tail(40));
            }
            if Instant::now() > deadline {
                bail!(
                    "the gateway was not healthy in 15 s:\n{}",
                    gateway.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its CPU time so far.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        cpu_time(self.pid)
    }

    /// The last `lines` of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Log lines holding `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("gateway.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// One value of `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let answer = crate::http::get(self.http, "/metrics").await.ok()?;
        String::from_utf8_lossy(&answer.body).lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok())?
        })
    }

    /// SIGTERM, then SIGKILL after `grace`; true when it stopped on its own.
    pub async fn stop(mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = sigterm(self.pid);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------- talker and ear

/// When a [`Talker`] talks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bursts {
    /// Silence before the first burst.
    pub lead: Duration,
    /// From one burst's start to the next.
    pub period: Duration,
    /// Length of a burst.
    pub length: Duration,
    pub hz: f64,
    /// Peak, fraction of full scale.
    pub amplitude: f64,
}

impl Default for Bursts {
    fn default() -> Self {
        Bursts {
            lead: Duration::from_secs(1),
            period: Duration::from_millis(500),
            length: Duration::from_millis(120),
            hz: 1000.0,
            amplitude: 0.5,
        }
    }
}

/// The onset (first sample above `threshold` after [`QUIET`] below it) of
/// each burst in `packets`: (instant of the packet, samples), in order.
fn onsets<'a>(
    packets: impl IntoIterator<Item = (Instant, &'a [i16])>,
    threshold: f64,
) -> Vec<Instant> {
    let quiet_needed = (QUIET.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
    let mut quiet = 0usize;
    let mut found = Vec::new();
    for (at, pcm) in packets {
        for (i, &s) in pcm.iter().enumerate() {
            if f64::from(s).abs() > threshold {
                if quiet >= quiet_needed {
                    found.push(at + sample_time(i));
                }
                quiet = 0;
            } else {
                quiet += 1;
            }
        }
    }
    found
}

fn sample_time(index: usize) -> Duration {
    Duration::from_secs_f64(index as f64 / f64::from(SAMPLE_RATE))
}

fn loudest<'a>(packets: impl IntoIterator<Item = &'a [i16]>) -> f64 {
    packets
        .into_iter()
        .flat_map(|p| p.iter())
        .map(|&s| f64::from(s).abs())
        .fold(0.0, f64::max)
}

/// For each heard onset, the delay since the latest sent onset before it
/// (none for onsets heard more than `within` after any sent one).
pub fn latencies(sent: &[Instant], heard: &[Instant], within: Duration) -> Vec<Duration> {
    heard
        .iter()
        .filter_map(|&h| {
            let s = sent.iter().rev().find(|&&s| s <= h)?;
            let d = h - *s;
            (d <= within).then_some(d)
        })
        .collect()
}

/// Packets of decoded audio with the instant each left or arrived.
type Stamped = Vec<(Instant, Vec<i16>)>;

/// A phone that talks in bursts (see the module contract).
pub struct Talker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    sent: Arc<Mutex<Stamped>>,
    bursts: Bursts,
}

impl Talker {
    /// Starts sending `law` RTP to `target` at once.
    pub fn start(target: SocketAddr, law: Law, bursts: Bursts) -> io::Result<Talker> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (stop2, sent2) = (stop.clone(), sent.clone());
        let thread = std::thread::Builder::new()
            .name("bench-talker".into())
            .spawn(move || talk(socket, target, law, bursts, &stop2, &sent2))?;
        Ok(Talker {
            stop,
            thread: Some(thread),
            sent,
            bursts,
        })
    }

    /// The onsets sent so far.
    pub fn onsets(&self) -> Vec<Instant> {
        let sent = lock(&self.sent);
        let threshold = self.bursts.amplitude * f64::from(i16::MAX) * ONSET_FRACTION;
        onsets(sent.iter().map(|(t, p)| (*t, p.as_slice())), threshold)
    }

    /// Stops sending.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The talker's thread: packet `k` leaves at `start + k × 20 ms`. Burst `j`
/// starts `37 × j mod 160` samples into its first packet, so that onsets
/// fall at every place in a packet.
fn talk(
    socket: UdpSocket,
    target: SocketAddr,
    law: Law,
    b: Bursts,
    stop: &AtomicBool,
    sent: &Mutex<Stamped>,
) {
    let rate = f64::from(SAMPLE_RATE);
    let lead = (b.lead.as_secs_f64() * rate) as usize;
    let period = (b.period.as_secs_f64() * rate).max(1.0) as usize;
    let length = (b.length.as_secs_f64() * rate) as usize;
    let peak = b.amplitude * f64::from(i16::MAX);
    let step = 2.0 * std::f64::consts::PI * b.hz / rate;
    let sample = |n: usize| -> i16 {
        if n < lead {
            return 0;
        }
        let j = (n - lead) / period;
        let burst_start = lead + j * period + (37 * j) % PACKET_SAMPLES;
        if n < burst_start || n >= burst_start + length {
            return 0;
        }
        (peak * (step * (n - burst_start) as f64).sin()).round() as i16
    };
    let start = Instant::now() + PACKET_TIME;
    let mut payload = [0u8; PACKET_SAMPLES];
    let mut datagram = Vec::with_capacity(12 + PACKET_SAMPLES);
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let due = start + PACKET_TIME * k as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let pcm: Vec<i16> = (0..PACKET_SAMPLES)
            .map(|i| sample(k * PACKET_SAMPLES + i))
            .collect();
        for (code, &s) in payload.iter_mut().zip(&pcm) {
            *code = law.encode(s);
        }
        datagram.clear();
        rtp::write(
            &Rtp {
                marker: k == 0,
                payload_type: law.payload_type(),
                sequence: k as u16,
                timestamp: (k * PACKET_SAMPLES) as u32,
                ssrc: 0x7A1C_0001,
                payload: &payload,
            },
            &mut datagram,
        );
        let at = Instant::now();
        let _ = socket.send_to(&datagram, target);
        lock(sent).push((at, pcm));
        k += 1;
    }
}

#[derive(Debug, Default)]
struct Heard {
    packets: Stamped,
    sources: Vec<SocketAddr>,
}

/// A phone's ear (see the module contract).
pub struct Ear {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    heard: Arc<Mutex<Heard>>,
}

impl Ear {
    /// Binds `127.0.0.1:0` and listens.
    pub fn bind() -> io::Result<Ear> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let heard = Arc::new(Mutex::new(Heard::default()));
        let (stop2, heard2) = (stop.clone(), heard.clone());
        let thread = std::thread::Builder::new()
            .name("bench-ear".into())
            .spawn(move || listen(socket, &stop2, &heard2))?;
        Ok(Ear {
            addr,
            stop,
            thread: Some(thread),
            heard,
        })
    }

    /// Where to send RTP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Source addresses of the RTP heard, in order of first packet.
    pub fn sources(&self) -> Vec<SocketAddr> {
        lock(&self.heard).sources.clone()
    }

    pub fn packets(&self) -> usize {
        lock(&self.heard).packets.len()
    }

    /// The onsets heard so far (threshold: a quarter of the loudest sample).
    pub fn onsets(&self) -> Vec<Instant> {
        let heard = lock(&self.heard);
        let peak = loudest(heard.packets.iter().map(|(_, p)| p.as_slice()));
        if peak < 1000.0 {
            return Vec::new(); // nothing but silence and noise
        }
        onsets(
            heard.packets.iter().map(|(t, p)| (*t, p.as_slice())),
            peak * ONSET_FRACTION,
        )
    }
}

impl Drop for Ear {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn listen(socket: UdpSocket, stop: &AtomicBool, heard: &Mutex<Heard>) {
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            continue; // the read timeout, to look at `stop`
        };
        let at = Instant::now();
        let Some(packet) = rtp::parse(&buf[..len]) else {
            continue;
        };
        let Some(law) = Law::from_payload_type(packet.payload_type) else {
            continue;
        };
        let pcm = packet.payload.iter().map(|&c| law.decode(c)).collect();
        let mut h = lock(heard);
        if !h.sources.contains(&from) {
            h.sources.push(from);
        }
        h.packets.push((at, pcm));
    }
}

// ------------------------------------------------------------ RTP counter

/// Counts RTP per source on one loopback socket (see the module contract).
#[must_use = "dropping the counter closes its socket"]
pub struct RtpCounter {
    addr: SocketAddr,
    counts: Arc<Mutex<HashMap<SocketAddr, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RtpCounter {
    pub async fn bind() -> io::Result<RtpCounter> {
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = socket.local_addr()?;
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let counts2 = counts.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                match socket.recv_from(&mut buf).await {
                    Ok((len, from)) => {
                        if rtp::parse(&buf[..len]).is_some() {
                            *lock(&counts2).entry(from).or_insert(0) += 1;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                    Err(_) => return,
                }
            }
        });
        Ok(RtpCounter { addr, counts, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sources heard so far.
    pub fn sources(&self) -> usize {
        lock(&self.counts).len()
    }

    /// Packets heard so far, all sources.
    pub fn total(&self) -> u64 {
        lock(&self.counts).values().sum()
    }

    /// Packets per source so far.
    pub fn per_source(&self) -> HashMap<SocketAddr, u64> {
        lock(&self.counts).clone()
    }
}

impl Drop for RtpCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onsets_come_after_quiet_and_count_the_place_in_the_packet() {
        let t0 = Instant::now();
        let silence = vec![0i16; PACKET_SAMPLES];
        let mut burst = vec![0i16; PACKET_SAMPLES];
        burst[40..].fill(10_000);
        let packets: Vec<(Instant, &[i16])> = (0..20)
            .map(|k| {
                let pcm: &[i16] = if k == 10 || k == 11 { &burst } else { &silence };
                (t0 + PACKET_TIME * k, pcm)
            })
            .collect();
        let found = onsets(packets.iter().copied(), 2500.0);
        // The second burst packet follows the first at once: one onset.
        assert_eq!(
            found,
            vec![t0 + PACKET_TIME * 10 + Duration::from_millis(5)]
        );
        assert_eq!(loudest(packets.iter().map(|(_, p)| *p)), 10_000.0);
    }

    #[test]
    fn each_heard_onset_pairs_with_the_sent_one_before_it() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let sent = [t0, t0 + ms(500), t0 + ms(1000)];
        let heard = [t0 + ms(60), t0 + ms(570), t0 + ms(1900)];
        assert_eq!(
            latencies(&sent, &heard, ms(400)),
            vec![ms(60), ms(70)],
            "the last one is too late to pair"
        );
    }

    #[test]
    fn cpu_times_are_read_for_this_process_and_the_machine() {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0u64);
        }
        assert!(cpu_time(std::process::id()).unwrap() > Duration::ZERO);
        let m = MachineCpu::now().unwrap();
        assert!(m.total >= m.busy && m.busy > Duration::ZERO);
        assert!(clock_ticks() >= 100);
    }
}
