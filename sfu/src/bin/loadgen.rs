//! `loadgen`: measures the media plane under synthetic conferences.
//!
//! The plane runs in-process on its own OS thread with a current-thread
//! tokio runtime, so its CPU time is that thread's `utime + stime` from
//! `/proc/self/task/<tid>/stat`; the synthetic participants (str0m clients,
//! one UDP socket each) run as tasks on a separate multi-thread runtime and
//! their CPU is the process total minus the plane thread. Each participant
//! publishes Opus-sized audio (100 bytes every 20 ms, with `--audio`) and
//! VP8-sized video (30 fps at `--video-kbps`); the first 8 bytes of every
//! frame are its send time in ns since the run's origin, so a receiver
//! computes the forwarding delay on the same clock. See docs/benchmarks.md.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use sfu::plane::{self, PlaneConfig, PlaneEvent, PlaneEvents, PlaneHandle, PlaneStats};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::watch;

const AUDIO_PERIOD: Duration = Duration::from_millis(20);
const AUDIO_BYTES: usize = 100;
const VIDEO_FPS: u32 = 30;
const WARMUP: Duration = Duration::from_secs(2);
/// After the window: time for frames in flight to arrive.
const DRAIN: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Parser)]
#[command(about = "Load generator for the SFU media plane")]
struct Args {
    /// Conferences.
    #[arg(long, default_value_t = 2)]
    rooms: usize,
    /// Participants per conference.
    #[arg(long, default_value_t = 3)]
    participants: usize,
    /// Length of the measured window (after a 2 s warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Video bitrate per publisher at 30 fps; 0 sends no video.
    #[arg(long, default_value_t = 600)]
    video_kbps: u32,
    /// Also publish audio (100 bytes every 20 ms).
    #[arg(long)]
    audio: bool,
    /// Worker threads for the synthetic clients.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Turn on the plane's bandwidth estimation (`media.bandwidth_estimation`).
    #[arg(long)]
    bwe: bool,
}

/// The media schedule every client follows, on one clock.
#[derive(Debug, Clone, Copy)]
struct Phase {
    media_start: Instant,
    window_start: Instant,
    window_end: Instant,
    stop: Instant,
}

impl Phase {
    fn in_window(&self, t: Instant) -> bool {
        t >= self.window_start && t < self.window_end
    }
}

/// What one client saw; merged after the run. Counts are for the window.
#[derive(Debug, Default)]
struct Tally {
    audio_sent: u64,
    video_sent: u64,
    audio_recv: u64,
    video_recv: u64,
    rtp_in: u64,
    rtcp_in: u64,
    other_in: u64,
    audio_delay_us: Vec<u32>,
    video_delay_us: Vec<u32>,
    errors: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.audio_sent += o.audio_sent;
        self.video_sent += o.video_sent;
        self.audio_recv += o.audio_recv;
        self.video_recv += o.video_recv;
        self.rtp_in += o.rtp_in;
        self.rtcp_in += o.rtcp_in;
        self.other_in += o.other_in;
        self.audio_delay_us.extend(o.audio_delay_us);
        self.video_delay_us.extend(o.video_delay_us);
        self.errors += o.errors;
    }
}

/// A synthetic participant: a str0m peer with its own socket.
struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    origin: Instant,
    video_bytes: usize,
    audio: bool,
    /// Payload types of our own `audio` and `video` lines, once connected.
    pts: Option<(Pt, Pt)>,
    connected: Arc<AtomicUsize>,
    tally: Tally,
}

impl Client {
    async fn join(
        plane: &PlaneHandle,
        conference: &str,
        endpoint: &str,
        args: &Args,
        origin: Instant,
        connected: Arc<AtomicUsize>,
    ) -> Result<Client> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let offer = plane.create_endpoint(conference, endpoint).await?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp")?);
        let answer = rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer)?)?;
        plane
            .accept_answer(endpoint, &answer.to_sdp_string())
            .await?;
        Ok(Client {
            rtc,
            socket,
            addr,
            origin,
            video_bytes: (args.video_kbps as usize * 1000 / 8 / VIDEO_FPS as usize).max(8),
            audio: args.audio,
            pts: None,
            connected,
            tally: Tally::default(),
        })
    }

    fn stamp(&self, now: Instant) -> [u8; 8] {
        (now.duration_since(self.origin).as_nanos() as u64).to_be_bytes()
    }

    fn feed(&mut self, data: &[u8], source: SocketAddr, now: Instant, phase: Option<&Phase>) {
        if phase.is_some_and(|p| p.in_window(now)) {
            match (data.first(), data.get(1)) {
                (Some(128..=191), Some(192..=223)) => self.tally.rtcp_in += 1,
                (Some(128..=191), _) => self.tally.rtp_in += 1,
                _ => self.tally.other_in += 1,
            }
        }
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.addr,
                contents,
            },
        );
        if self.rtc.accepts(&input) && self.rtc.handle_input(input).is_err() {
            self.tally.errors += 1;
        }
    }

    /// Drains the Rtc's output; returns when it next wants a timeout.
    fn drain(&mut self, phase: Option<&Phase>) -> Instant {
        loop {
            match self.rtc.poll_output() {
                Err(_) => {
                    self.tally.errors += 1;
                    return Instant::now() + Duration::from_millis(10);
                }
                Ok(Output::Timeout(t)) => return t,
                Ok(Output::Transmit(t)) => {
                    if self.socket.try_send_to(&t.contents, t.destination).is_err() {
                        self.tally.errors += 1;
                    }
                }
                Ok(Output::Event(Event::Connected)) => {
                    self.connected.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Output::Event(Event::MediaData(d))) => {
                    let now = Instant::now();
                    let Some(sent) = d.data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok())
                    else {
                        continue;
                    };
                    let sent = self.origin + Duration::from_nanos(u64::from_be_bytes(sent));
                    if !phase.is_some_and(|p| p.in_window(sent)) {
                        continue;
                    }
                    let us = now.saturating_duration_since(sent).as_micros() as u32;
                    if d.params.spec().codec == Codec::Opus {
                        self.tally.audio_recv += 1;
                        self.tally.audio_delay_us.push(us);
                    } else {
                        self.tally.video_recv += 1;
                        self.tally.video_delay_us.push(us);
                    }
                }
                Ok(Output::Event(_)) => {}
            }
        }
    }

    fn pt_of(&mut self, mid: &str, codec: Codec) -> Option<Pt> {
        let writer = self.rtc.writer(Mid::from(mid))?;
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)?
            .pt();
        Some(pt)
    }

    /// Writes frame `n` of one kind on our own line, stamped with `now`.
    fn send(&mut self, audio: bool, n: u64, now: Instant, phase: &Phase) {
        if self.pts.is_none() {
            self.pts = self
                .pt_of("audio", Codec::Opus)
                .zip(self.pt_of("video", Codec::Vp8));
        }
        let Some((apt, vpt)) = self.pts else {
            self.tally.errors += 1;
            return;
        };
        let (mid, pt, time, len) = if audio {
            let t = MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ);
            ("audio", apt, t, AUDIO_BYTES)
        } else {
            let t = MediaTime::new(n * 3000, Frequency::NINETY_KHZ);
            ("video", vpt, t, self.video_bytes)
        };
        // A big-endian ns stamp starts with a 0 byte: a VP8 key frame bit.
        let mut payload = vec![0xAB; len];
        payload[..8].copy_from_slice(&self.stamp(now));
        let Some(writer) = self.rtc.writer(Mid::from(mid)) else {
            self.tally.errors += 1;
            return;
        };
        if writer.write(pt, now, time, payload).is_err() {
            self.tally.errors += 1;
        } else if phase.in_window(now) {
            if audio {
                self.tally.audio_sent += 1;
            } else {
                self.tally.video_sent += 1;
            }
        }
    }

    /// Runs the client until the phase's stop time; `offset` staggers its
    /// frames against the other clients'.
    async fn run(
        mut self,
        mut phase_rx: watch::Receiver<Option<Phase>>,
        offset: Duration,
    ) -> Tally {
        let mut buf = vec![0u8; 2048];
        let video_period = Duration::from_secs(1) / VIDEO_FPS;
        // (next audio, next video, frame counters)
        let mut schedule: Option<(Instant, Instant, u64, u64)> = None;
        loop {
            let phase = *phase_rx.borrow();
            let mut wake = self.drain(phase.as_ref());
            if let Some(p) = &phase {
                let s = schedule.get_or_insert((
                    p.media_start + rem(offset, AUDIO_PERIOD),
                    p.media_start + rem(offset, video_period),
                    0,
                    0,
                ));
                wake = wake.min(p.stop);
                if self.audio {
                    wake = wake.min(s.0);
                }
                if self.video_bytes > 8 {
                    wake = wake.min(s.1);
                }
            }
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = r {
                        self.feed(&buf[..n], source, Instant::now(), phase.as_ref());
                        // Whatever else is queued, up to a batch.
                        for _ in 0..32 {
                            let Ok((n, source)) = self.socket.try_recv_from(&mut buf) else {
                                break;
                            };
                            self.feed(&buf[..n], source, Instant::now(), phase.as_ref());
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = phase_rx.changed(), if phase.is_none() => {}
            }
            let now = Instant::now();
            if let (Some(p), Some(s)) = (&phase, &mut schedule) {
                if now >= p.stop {
                    break;
                }
                if self.audio && now >= s.0 && now < p.window_end {
                    self.send(true, s.2, now, p);
                    s.2 += 1;
                    s.0 = next_tick(s.0, AUDIO_PERIOD, now);
                }
                if self.video_bytes > 8 && now >= s.1 && now < p.window_end {
                    self.send(false, s.3, now, p);
                    s.3 += 1;
                    s.1 = next_tick(s.1, video_period, now);
                }
            }
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                self.tally.errors += 1;
            }
        }
        self.tally
    }
}

fn rem(a: Duration, b: Duration) -> Duration {
    Duration::from_nanos((a.as_nanos() % b.as_nanos().max(1)) as u64)
}

/// The next tick after `at`, skipping ticks that are already a period late.
fn next_tick(at: Instant, period: Duration, now: Instant) -> Instant {
    let next = at + period;
    if next + period < now {
        now + period
    } else {
        next
    }
}

/// CPU ticks (utime + stime) of a `/proc/.../stat` file.
fn cpu_ticks(path: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are 14, 15.
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // `rest` starts at field 3 (state), so field k is at index k - 3.
    num(14 - 3) + num(15 - 3)
}

/// Second field of a `/proc/.../schedstat`: time spent waiting to run.
fn runqueue_ns(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// `Udp: RcvbufErrors` of /proc/net/snmp (the whole network namespace).
fn udp_rcvbuf_errors() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut udp = s.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Per-socket kernel drops of /proc/net/udp, by local port.
fn udp_socket_drops() -> std::collections::HashMap<u16, u64> {
    let s = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(1)?.rsplit_once(':')?.1;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some((port, f.last()?.parse().ok()?))
        })
        .collect()
}

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Starts the plane on its own OS thread and current-thread runtime;
/// returns its handle, events and the thread's `/proc` stat path.
fn start_plane(
    config: PlaneConfig,
) -> Result<(
    PlaneHandle,
    PlaneEvents,
    String,
    std::thread::JoinHandle<()>,
)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("plane".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            // "<pid>/task/<tid>" names this very thread.
            let stat = std::fs::read_link("/proc/thread-self")
                .map(|p| format!("/proc/{}/stat", p.display()));
            rt.block_on(async move {
                match (plane::start(config).await, stat) {
                    (Ok((handle, events, task)), Ok(stat)) => {
                        let _ = tx.send(Ok((handle, events, stat)));
                        let _ = task.await;
                    }
                    (Err(e), _) => drop(tx.send(Err(e.into()))),
                    (_, Err(e)) => drop(tx.send(Err(e.into()))),
                }
            });
        })?;
    let (handle, events, stat) = rx.recv().context("plane thread died")??;
    Ok((handle, events, stat, thread))
}

struct Snapshot {
    stats: PlaneStats,
    /// Host-wide UDP `RcvbufErrors` (datagrams the kernel dropped).
    udp_rcvbuf_errors: u64,
    plane_ticks: u64,
    process_ticks: u64,
    /// ns the plane thread was runnable but waiting for a CPU.
    plane_runqueue_ns: u64,
}

async fn snapshot(plane: &PlaneHandle, stat: &str) -> Snapshot {
    Snapshot {
        stats: plane.stats().await,
        udp_rcvbuf_errors: udp_rcvbuf_errors(),
        plane_ticks: cpu_ticks(stat),
        process_ticks: cpu_ticks("/proc/self/stat"),
        plane_runqueue_ns: runqueue_ns(&stat.replace("/stat", "/schedstat")),
    }
}

fn percentile(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    f64::from(v[i]) / 1000.0
}

async fn wait_connected(
    events: &mut PlaneEvents,
    clients: &AtomicUsize,
    total: usize,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut announced = 0;
    while announced < total || clients.load(Ordering::Relaxed) < total {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "only {announced}/{total} connected at the plane, {}/{total} at the clients",
                clients.load(Ordering::Relaxed)
            );
        }
        match tokio::time::timeout(left.min(Duration::from_millis(100)), events.recv()).await {
            Ok(Some(PlaneEvent::Connected { .. })) => announced += 1,
            Ok(Some(PlaneEvent::Disconnected { endpoint })) => bail!("{endpoint} disconnected"),
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => bail!("plane stopped"),
        }
    }
    Ok(())
}

async fn run(args: Args, plane: PlaneHandle, mut events: PlaneEvents, stat: String) -> Result<()> {
    let origin = Instant::now();
    let total = args.rooms * args.participants;
    let connected = Arc::new(AtomicUsize::new(0));
    let (phase_tx, phase_rx) = watch::channel(None);
    let rss_before = rss_kib();
    let mut tasks = Vec::with_capacity(total);
    let mut ports = Vec::with_capacity(total);
    for r in 0..args.rooms {
        for p in 0..args.participants {
            let endpoint = format!("r{r}p{p}");
            let client = Client::join(
                &plane,
                &format!("room-{r}"),
                &endpoint,
                &args,
                origin,
                connected.clone(),
            )
            .await
            .with_context(|| format!("joining {endpoint}"))?;
            ports.push(client.addr.port());
            let i = tasks.len() as u32;
            // Spread the clients' frames over the frame period.
            let offset = Duration::from_micros(u64::from(i) * 1_618_033 % 33_333);
            tasks.push(tokio::spawn(client.run(phase_rx.clone(), offset)));
        }
    }
    wait_connected(&mut events, &connected, total).await?;
    let rss_connected = rss_kib();

    let media_start = Instant::now() + Duration::from_millis(100);
    let window_start = media_start + WARMUP;
    let window_end = window_start + Duration::from_secs(args.seconds);
    let phase = Phase {
        media_start,
        window_start,
        window_end,
        stop: window_end + DRAIN,
    };
    phase_tx.send_replace(Some(phase));
    tokio::time::sleep_until(window_start.into()).await;
    let a = snapshot(&plane, &stat).await;
    let t0 = Instant::now();
    tokio::time::sleep_until(window_end.into()).await;
    let b = snapshot(&plane, &stat).await;
    let secs = t0.elapsed().as_secs_f64();
    let rss_end = rss_kib();

    let drops = udp_socket_drops();
    let plane_drops = drops.get(&plane.local_addr().port()).copied().unwrap_or(0);
    let client_drops: u64 = ports.iter().filter_map(|p| drops.get(p)).sum();
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await?);
    }
    let after = plane.stats().await;
    report(&args, &tally, &a, &b, secs, &after);
    let per = |kib: u64| kib.saturating_sub(rss_before) as f64 / total.max(1) as f64;
    println!(
        "rss per participant (plane + client session): {:.0} KiB connected, {:.0} KiB after media (before {} KiB, connected {} KiB, end {} KiB)",
        per(rss_connected),
        per(rss_end),
        rss_before,
        rss_connected,
        rss_end
    );
    println!(
        "kernel drops at the sockets over the whole run: plane {plane_drops}, clients {client_drops}"
    );
    Ok(())
}

fn report(args: &Args, t: &Tally, a: &Snapshot, b: &Snapshot, secs: f64, after: &PlaneStats) {
    let hz = clock_ticks_per_second();
    let plane_cpu = b.plane_ticks.saturating_sub(a.plane_ticks) as f64 / hz;
    let process_cpu = b.process_ticks.saturating_sub(a.process_ticks) as f64 / hz;
    let d = |f: fn(&PlaneStats) -> u64| f(&b.stats).saturating_sub(f(&a.stats)) as f64;
    let pkts_out = d(|s| s.packets_out);
    let pkts_in = d(|s| s.packets_in);
    let forwarded = d(|s| s.packets_forwarded);
    let fanout = args.participants.saturating_sub(1) as f64;
    let expected = (t.audio_sent + t.video_sent) as f64 * fanout;
    let received = (t.audio_recv + t.video_recv) as f64;
    let per_core = if plane_cpu > 0.0 {
        pkts_out / plane_cpu
    } else {
        f64::NAN
    };
    let mut audio = t.audio_delay_us.clone();
    let mut video = t.video_delay_us.clone();
    let mut all: Vec<u32> = audio.iter().chain(video.iter()).copied().collect();

    println!(
        "loadgen: {} rooms x {} participants, video {} kbps @ {} fps, audio {}, window {:.1} s",
        args.rooms,
        args.participants,
        args.video_kbps,
        VIDEO_FPS,
        if args.audio { "on" } else { "off" },
        secs
    );
    let rows: Vec<(&str, String)> = vec![
        ("plane datagrams in /s", format!("{:.0}", pkts_in / secs)),
        (
            "plane datagrams out /s (packets_out)",
            format!("{:.0}", pkts_out / secs),
        ),
        (
            "RTP packets received by clients /s",
            format!("{:.0}", t.rtp_in as f64 / secs),
        ),
        (
            "RTCP / other datagrams at clients /s",
            format!(
                "{:.0} / {:.0}",
                t.rtcp_in as f64 / secs,
                t.other_in as f64 / secs
            ),
        ),
        (
            "packets forwarded /s (plane)",
            format!("{:.0}", forwarded / secs),
        ),
        (
            "frames delivered / expected",
            format!(
                "{:.0} / {:.0} ({:.2}%)",
                received,
                expected,
                100.0 * received / expected.max(1.0)
            ),
        ),
        (
            "plane CPU (s) / share of one core",
            format!("{:.2} / {:.0}%", plane_cpu, 100.0 * plane_cpu / secs),
        ),
        (
            "plane waiting for a CPU (s, schedstat)",
            format!(
                "{:.2}",
                b.plane_runqueue_ns.saturating_sub(a.plane_runqueue_ns) as f64 / 1e9
            ),
        ),
        (
            "clients+rest CPU (s)",
            format!("{:.2}", (process_cpu - plane_cpu).max(0.0)),
        ),
        (
            "plane CPU s per 1M datagrams out",
            format!("{:.2}", plane_cpu / (pkts_out / 1e6).max(1e-9)),
        ),
        (
            "plane CPU s per 1M packets forwarded",
            format!("{:.2}", plane_cpu / (forwarded / 1e6).max(1e-9)),
        ),
        (
            "datagrams out per plane-CPU-second",
            format!(
                "{:.0} ({:.3} of 250k target)",
                per_core,
                per_core / 250_000.0
            ),
        ),
        (
            "delay p50 / p99 / max ms (all)",
            format!(
                "{:.2} / {:.2} / {:.2}",
                percentile(&mut all, 0.5),
                percentile(&mut all, 0.99),
                percentile(&mut all, 1.0)
            ),
        ),
        (
            "delay p50 / p99 ms (audio)",
            format!(
                "{:.2} / {:.2}",
                percentile(&mut audio, 0.5),
                percentile(&mut audio, 0.99)
            ),
        ),
        (
            "delay p50 / p99 ms (video, last packet)",
            format!(
                "{:.2} / {:.2}",
                percentile(&mut video, 0.5),
                percentile(&mut video, 0.99)
            ),
        ),
        (
            "plane forwarding errors / dropped",
            format!("{} / {}", after.forwarding_errors, after.dropped),
        ),
        ("client errors", format!("{}", t.errors)),
        (
            "kernel UDP receive-buffer drops (host)",
            format!(
                "{}",
                b.udp_rcvbuf_errors.saturating_sub(a.udp_rcvbuf_errors)
            ),
        ),
    ];
    for (k, v) in rows {
        println!("  {k:<40} {v}");
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rooms == 0 || args.participants < 2 || args.seconds == 0 || args.client_threads == 0 {
        bail!("--rooms >= 1, --participants >= 2, --seconds >= 1, --client-threads >= 1");
    }
    let slots = args.participants - 1;
    let (plane, events, stat, thread) = start_plane(PlaneConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise: None,
        audio_slots: slots,
        video_slots: slots,
        bandwidth_estimation: args.bwe,
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let result = rt.block_on(run(args, plane, events, stat));
    drop(rt);
    // The plane's task ends with its last handle, dropped by `run`.
    let _ = thread.join();
    result
}
