//! The SIP gateway's benchmark (issue 6): concurrent dial-in calls per core
//! in rooms of 10 (8 phone callers and 2 WebRTC participants), G.711 on
//! the phone side, placed by sipp; the gateway's
//! CPU per call beside bare libopus (one encode and one decode per call per
//! 20 ms) as the floor; and the latency the gateway adds, mouth to ear.
//! Method and figures: docs/gateway-benchmark.md.
//!
//! ```text
//! cargo nextest run --release -p tests --test gateway_bench --run-ignored only --no-capture
//! ```
//!
//! The gateway runs as its own process (the `gateway` binary, built here in
//! the release profile unless `GATEWAY_BENCH_PROFILE=debug`), so that its
//! CPU time is its process's `utime + stime`; Prosody runs as a process, the
//! sfu and the harness in this one. Benchmarks take a file lock, so that two
//! never run at once even when nextest starts them in parallel.
//!
//! - `cpu_per_call_{20,50,100}`: N sipp callers (PCMU, each playing a 1 kHz
//!   tone pcap), call i in room `bench{i/8}` with two web participants
//!   ([`WebTalker`], talking Opus through the sfu), all held through a 20 s
//!   window that starts once every call is in its room and the gateway's
//!   RTP reaches every caller; plus a latency probe (two more callers, as
//!   below, in room `probe`) that talks through the window.
//! - `latency_*`: callers whose RTP comes from this process ([`Talker`]:
//!   silence and 120 ms bursts every 500 ms) and goes back to it ([`Ear`]):
//!   the delay from a burst's onset leaving phone A to its onset reaching
//!   phone B, through one gateway (both callers on it) or two (A on one,
//!   B on the other, so the audio crosses the sfu as Opus).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gateway::media::call::FRAME_8K;
use gateway::media::opus::{Layout, OpusDecoder, OpusEncoder, MAX_PACKET};
use gateway::media::resample::PhoneRate;
use gateway::media::FRAME_48K;
use tests::meeting::InProcessSfu;
use tests::phone::bench::{
    children_named, cpu_time, gateway_binary, latencies, load_average, opus_complexity, BenchLock,
    Bursts, Ear, GatewayProcess, MachineCpu, RtpCounter, Talker,
};
use tests::phone::web_talker::{tone_packets, WebTalker};
use tests::phone::{
    dial_in, run_call, run_calls, write_tone_pcap, DialIn, Law, Load, Media, Step, ROOM_HEADER,
};
use tests::{Prosody, ProsodyOptions};

/// Phone callers per room.
const CALLERS_PER_ROOM: usize = 8;
/// WebRTC participants per room (so a room is 10 people).
const WEB_PER_ROOM: usize = 2;
/// The web participants' tones (the callers play 1 kHz).
const WEB_HZ: [f64; WEB_PER_ROOM] = [440.0, 660.0];
/// RFC 6464 level of the web participants' tones (-dBov).
const WEB_LEVEL: u8 = 26;
/// New calls per second while the load builds up.
const CALL_RATE: f64 = 10.0;
/// Time allowed, beyond the ramp, for the last calls to join.
const JOIN_SLACK: Duration = Duration::from_secs(20);
/// From "everyone is in" to the window's start.
const SETTLE: Duration = Duration::from_secs(3);
/// The measured window.
const WINDOW: Duration = Duration::from_secs(20);
/// Opus bit rate the gateway uses towards the room (leg.rs `ROOM_BITRATE`).
const ROOM_BITRATE: i32 = 32_000;
/// Peak of each caller's tone: -23 dBFS (-26 dBov RMS, a usual speech
/// level), so that the sum of nine stays under the mixer's limiter knee
/// (-3 dBFS) whatever their phases.
const TONE_PEAK: f64 = 0.07;

fn release() -> bool {
    std::env::var("GATEWAY_BENCH_PROFILE").as_deref() != Ok("debug")
}

/// `GATEWAY_BENCH_AUDIO_SLOTS`: the sfu's `media.audio_slots` (audio
/// streams each participant receives), for the experiment in the doc.
fn audio_slots() -> Option<usize> {
    std::env::var("GATEWAY_BENCH_AUDIO_SLOTS")
        .ok()?
        .parse()
        .ok()
}

fn profile() -> &'static str {
    if release() {
        "release"
    } else {
        "debug"
    }
}

/// Waits for the benchmark lock without blocking the runtime.
async fn bench_lock() -> BenchLock {
    tokio::task::spawn_blocking(|| BenchLock::take("gateway-bench"))
        .await
        .unwrap()
        .expect("taking the benchmark lock")
}

/// Prosody and the sfu, with the gateway binary built.
struct Stack {
    prosody: Prosody,
    sfu: InProcessSfu,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Stack {
        tests::init_logs();
        let binary = gateway_binary(release()).await.unwrap();
        let prosody = Prosody::start_async(ProsodyOptions::default())
            .await
            .unwrap();
        let sfu = InProcessSfu::start(&prosody, |c| {
            if let Some(slots) = audio_slots() {
                c.media.audio_slots = slots;
            }
        })
        .await;
        Stack {
            prosody,
            sfu,
            binary,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A gateway process logging in as `account_name`.
    async fn gateway(&self, account_name: &str, max_calls: usize) -> GatewayProcess {
        let account = self.prosody.register_service(account_name).unwrap();
        GatewayProcess::start(
            &self.binary,
            &self.prosody,
            &account,
            self.sfu.http,
            max_calls,
            "info",
        )
        .await
        .unwrap()
    }

    async fn end(self) {
        self.sfu.end().await;
        drop(self.prosody);
    }
}

async fn wait_metric(
    gateway: &GatewayProcess,
    name: &str,
    done: impl Fn(f64) -> bool,
    within: Duration,
) -> f64 {
    let deadline = Instant::now() + within;
    loop {
        let v = gateway.metric(name).await.unwrap_or(f64::NAN);
        if done(v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ----------------------------------------------------------------- floor

/// Bare libopus per call per 20 ms frame: one encode with the gateway's
/// settings towards the room (mono, 32 kbit/s, from 8 kHz PCM as a G.711
/// call's, at the benchmark's complexity) and one decode to 48 kHz, of 20 s
/// of a tone. Returns (encode, decode) time per frame.
fn opus_floor() -> (Duration, Duration) {
    let frames = 1000;
    let pcm: Vec<i16> = (0..frames * FRAME_8K)
        .map(|n| {
            (12_000.0 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 8_000.0).sin()) as i16
        })
        .collect();
    let mut best = (Duration::MAX, Duration::MAX);
    // The best of three runs: the floor is what the codec costs when
    // nothing else disturbs it.
    for _ in 0..3 {
        let mut enc =
            OpusEncoder::for_phone(Some(PhoneRate::Hz8000), ROOM_BITRATE, opus_complexity())
                .unwrap();
        let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
        let mut packets = Vec::with_capacity(frames);
        let mut buf = [0u8; MAX_PACKET];
        let t = Instant::now();
        for f in pcm.chunks_exact(FRAME_8K) {
            let n = enc.encode(f, &mut buf).unwrap();
            packets.push(buf[..n].to_vec());
        }
        let encode = t.elapsed() / frames as u32;
        let mut out = vec![0i16; FRAME_48K];
        let t = Instant::now();
        for p in &packets {
            std::hint::black_box(dec.decode(p, &mut out).unwrap());
        }
        let decode = t.elapsed() / frames as u32;
        best = (best.0.min(encode), best.1.min(decode));
    }
    best
}

// ------------------------------------------------------------ CPU per call

/// CPU time of the processes on the machine at one instant.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    gateway: Duration,
    harness: Duration,
    prosody: Duration,
    sipp: Duration,
    machine: MachineCpu,
    packets: u64,
    /// Datagrams the sfu sent (to the gateway's legs) and received.
    sfu_out: f64,
    sfu_in: f64,
}

/// One value of the sfu's `/metrics`.
async fn sfu_metric(sfu: &InProcessSfu, name: &str) -> f64 {
    let Ok(answer) = tests::http::get(sfu.http, "/metrics").await else {
        return f64::NAN;
    };
    String::from_utf8_lossy(&answer.body)
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(f64::NAN)
}

async fn snapshot(gateway: &GatewayProcess, stack: &Stack, counter: &RtpCounter) -> Snapshot {
    let sfu_out = sfu_metric(&stack.sfu, "sfu_packets_out_total").await;
    let sfu_in = sfu_metric(&stack.sfu, "sfu_packets_in_total").await;
    let sipp = children_named("sipp")
        .into_iter()
        .filter_map(|pid| cpu_time(pid).ok())
        .sum();
    Snapshot {
        at: Instant::now(),
        gateway: gateway.cpu_time().unwrap(),
        harness: cpu_time(std::process::id()).unwrap(),
        prosody: stack
            .prosody
            .pid()
            .and_then(|p| cpu_time(p).ok())
            .unwrap_or_default(),
        sipp,
        machine: MachineCpu::now().unwrap(),
        packets: counter.total(),
        sfu_out,
        sfu_in,
    }
}

/// `WEB_PER_ROOM` web participants in each of the rooms `bench0..`, talking.
async fn web_talkers(stack: &Stack, rooms: usize) -> Vec<WebTalker> {
    let focus = jid::Jid::new(&format!("focus@auth.{}/focus", stack.prosody.domain())).unwrap();
    let tones =
        WEB_HZ.map(|hz| std::sync::Arc::new(tone_packets(hz, TONE_PEAK, ROOM_BITRATE).unwrap()));
    let mut joins = Vec::new();
    for r in 0..rooms {
        let room =
            jid::BareJid::new(&format!("bench{r}@{}", stack.prosody.conference_domain())).unwrap();
        for (k, packets) in tones.iter().enumerate() {
            joins.push(WebTalker::join(
                tests::meeting::xmpp(&stack.prosody),
                focus.clone(),
                room.clone(),
                format!("web{r}x{k}"),
                packets.clone(),
                WEB_LEVEL,
            ));
        }
    }
    futures::future::try_join_all(joins)
        .await
        .expect("the web participants join")
}

async fn cpu_per_call(calls: usize) {
    let _lock = bench_lock().await;
    let load_before = load_average();
    let stack = Stack::start().await;
    let gateway = stack.gateway("gateway", calls + PROBE_CALLS + 10).await;

    let ramp = Duration::from_secs_f64(calls as f64 / CALL_RATE);
    // Every call stays up until the window has closed for the last one.
    let hold = ramp + JOIN_SLACK + SETTLE + WINDOW + Duration::from_secs(2);
    let tone = stack.dir.path().join("tone.pcap");
    write_tone_pcap(
        &tone,
        1000.0,
        hold.as_secs_f64() + 2.0,
        Law::Pcmu,
        TONE_PEAK,
    )
    .unwrap();
    // sipp reads the room of call i from line i of this file.
    let rooms = stack.dir.path().join("rooms.csv");
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..calls {
        csv.push_str(&format!("bench{};\n", i / CALLERS_PER_ROOM));
    }
    std::fs::write(&rooms, csv).unwrap();
    let web = web_talkers(&stack, calls.div_ceil(CALLERS_PER_ROOM)).await;
    let counter = RtpCounter::bind().await.unwrap();
    let xml = dial_in(&DialIn {
        room: Some("ROOMFIELD".into()),
        caller_name: "bench caller".into(),
        caller_user: "+15550100".into(),
        media: Media::At(counter.addr()),
        codecs: vec![Law::Pcmu],
        steps: vec![Step::PlayPcap(tone), Step::Pause(hold), Step::SendBye],
        ..DialIn::default()
    })
    .replace(
        &format!("{ROOM_HEADER}: ROOMFIELD"),
        &format!("{ROOM_HEADER}: [field0]"),
    );
    assert!(xml.contains("[field0]"));
    // The latency probe joins first and talks through the whole run.
    let mut probe = Pair::call(&gateway, &gateway, "probe", hold + ramp);
    probe.talk().await;
    let load = Load {
        rate: CALL_RATE,
        calls: calls as u64,
        limit: Some(calls as u32),
        deadline: hold + ramp + Duration::from_secs(60),
        extra: vec!["-inf".into(), rooms.to_string_lossy().into_owned()],
        ..Load::default()
    };
    let target = gateway.sip;
    let sipp = tokio::spawn(async move {
        run_calls(tests::sipp::Scenario::Xml(&xml), target, &load)
            .await
            .expect("sipp ran")
    });

    let started = Instant::now();
    let all_calls = calls + PROBE_CALLS;
    let connected = wait_metric(
        &gateway,
        "gateway_connected_total",
        |v| v >= all_calls as f64,
        ramp + JOIN_SLACK,
    )
    .await;
    let join_time = started.elapsed();
    assert_eq!(
        connected,
        all_calls as f64,
        "calls in their rooms after {join_time:?} (join failures: {:?}):\n{}",
        gateway.metric("gateway_join_failures_total").await,
        gateway.log_tail(30)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while counter.sources() < calls && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        counter.sources(),
        calls,
        "every caller hears the gateway's RTP"
    );
    tokio::time::sleep(SETTLE).await;
    let rooms_active = gateway.metric("gateway_rooms_active").await;

    let before = snapshot(&gateway, &stack, &counter).await;
    tokio::time::sleep(WINDOW).await;
    let after = snapshot(&gateway, &stack, &counter).await;
    let active = gateway.metric("gateway_calls_active").await;
    assert_eq!(
        active,
        Some(all_calls as f64),
        "every call lasted through the window"
    );

    let per_call_s =
        |a: f64, b: f64| (a - b) / (after.at - before.at).as_secs_f64() / all_calls as f64;
    let from_sfu = per_call_s(after.sfu_out, before.sfu_out);
    let to_sfu = per_call_s(after.sfu_in, before.sfu_in);
    let outcome = sipp.await.unwrap();
    assert_eq!(
        outcome.stats.successful_calls(),
        Some(calls as u64),
        "{}",
        outcome.outcome.report()
    );
    let (delays, bursts) = probe.latencies(before.at, after.at);
    assert!(
        !delays.is_empty() && delays.len() * 10 >= bursts * 8,
        "the probe heard {} of {bursts} bursts",
        delays.len()
    );
    probe.hang_up().await;
    for w in web {
        w.leave().await;
    }
    wait_metric(
        &gateway,
        "gateway_calls_active",
        |v| v == 0.0,
        Duration::from_secs(10),
    )
    .await;
    let failures = gateway.metric("gateway_join_failures_total").await;
    let inactivity = gateway.metric("gateway_inactivity_ends_total").await;
    assert!(
        gateway.stop(Duration::from_secs(10)).await,
        "the gateway stopped on SIGTERM"
    );
    stack.end().await;

    let window = (after.at - before.at).as_secs_f64();
    let share = |a: Duration, b: Duration| (a - b).as_secs_f64() / window;
    let gateway_cores = share(after.gateway, before.gateway);
    assert!(gateway_cores > 0.0, "the gateway's CPU time was measured");
    let per_call = gateway_cores / all_calls as f64;
    let per_core = 1.0 / per_call;
    let pps = (after.packets - before.packets) as f64 / window / calls as f64;
    let probe_report = summary(&delays);
    let (encode, decode) = tokio::task::spawn_blocking(opus_floor).await.unwrap();
    let floor = (encode + decode).as_secs_f64() / 0.020;
    eprintln!(
        "\ngateway benchmark, {calls} calls in {rooms} rooms of {CALLERS_PER_ROOM} callers and \
         {WEB_PER_ROOM} web participants + {PROBE_CALLS} probe calls, \
         PCMU, {profile} gateway, {window:.1} s window (load average before {load_before:.2})\n\
         \x20 joins: all {all_calls} in their rooms {join_time:.1?} after the first INVITE \
         ({CALL_RATE} calls/s); gateway_rooms_active {rooms_active:?}; join failures {failures:?}; \
         inactivity ends {inactivity:?}\n\
         \x20 gateway CPU: {gateway_cores:.3} cores = {per_call_ms:.2} ms CPU per call-second \
         ({per_call_pct:.2}% of a core per call, {all_calls} calls) => {per_core:.0} calls per core \
         (target 150)\n\
         \x20 floor, bare libopus per call (8 kHz in, complexity {complexity}): encode {encode:.1?} + decode {decode:.1?} per 20 ms \
         = {floor_ms:.2} ms per call-second => {floor_calls:.0} calls per core; gateway/floor {ratio:.2}x\n\
         \x20 others: harness (sfu in process) {harness:.3} cores, prosody {prosody:.3}, sipp {sipp:.3}; \
         machine busy {busy:.0}% of 2 cores\n\
         \x20 RTP to each caller: {pps:.1} packets/s (50 expected); per call, datagrams from the sfu \
         {from_sfu:.1}/s and to it {to_sfu:.1}/s (sfu audio slots {slots})\n\
         \x20 probe latency, phone -> gateway -> phone, {n} of {bursts} bursts in the window: \
         {probe_report}\n",
        n = delays.len(),
        rooms = calls.div_ceil(CALLERS_PER_ROOM),
        profile = profile(),
        per_call_ms = per_call * 1000.0,
        per_call_pct = per_call * 100.0,
        floor_ms = floor * 1000.0,
        floor_calls = 1.0 / floor,
        ratio = per_call / floor,
        harness = share(after.harness, before.harness),
        prosody = share(after.prosody, before.prosody),
        sipp = share(after.sipp, before.sipp),
        busy = after.machine.busy_since(&before.machine) * 100.0,
        complexity = opus_complexity(),
        slots = audio_slots().map_or("3 (default)".to_string(), |n| n.to_string()),
    );
    assert!(
        pps > 40.0,
        "callers got {pps:.1} packets/s from the gateway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: --run-ignored only, see the module docs"]
async fn cpu_per_call_20() {
    cpu_per_call(20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: --run-ignored only, see the module docs"]
async fn cpu_per_call_50() {
    cpu_per_call(50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: --run-ignored only, see the module docs"]
async fn cpu_per_call_100() {
    cpu_per_call(100).await;
}

// ---------------------------------------------------------------- latency

/// The latency probe's two callers, beside the load in the CPU runs.
const PROBE_CALLS: usize = 2;
/// Rooms measured at once (each room's task has its own 20 ms clock, so
/// each pair samples another phase of it).
const PAIRS: usize = 4;
/// How long the talker talks.
const TALK: Duration = Duration::from_secs(10);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Runs one sipp caller in `room` whose media goes to `ear`.
fn caller(
    gateway: &GatewayProcess,
    room: String,
    ear: std::net::SocketAddr,
    hold: Duration,
) -> tokio::task::JoinHandle<tests::sipp::Outcome> {
    let xml = dial_in(&DialIn {
        room: Some(room),
        media: Media::At(ear),
        codecs: vec![Law::Pcmu],
        steps: vec![Step::Pause(hold), Step::SendBye],
        ..DialIn::default()
    });
    let target = gateway.sip;
    tokio::spawn(async move {
        run_call(
            tests::sipp::Scenario::Xml(&xml),
            target,
            &[],
            hold + Duration::from_secs(60),
        )
        .await
        .expect("sipp ran")
    })
}

/// Waits until `ear` hears RTP; returns its source (the gateway's media
/// socket for that call).
async fn gateway_media(ear: &Ear, within: Duration) -> std::net::SocketAddr {
    let deadline = Instant::now() + within;
    loop {
        if let Some(&source) = ear.sources().first() {
            return source;
        }
        assert!(Instant::now() < deadline, "no RTP from the gateway");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Phone A talks and phone B listens, in one room: A's call on one
/// gateway, B's on the same or another.
struct Pair {
    ear_a: Ear,
    ear_b: Ear,
    calls: Vec<tokio::task::JoinHandle<tests::sipp::Outcome>>,
    talkers: Vec<Talker>,
    bursts: Bursts,
}

impl Pair {
    /// Places both calls (each held `hold`, then BYE).
    fn call(a: &GatewayProcess, b: &GatewayProcess, room: &str, hold: Duration) -> Pair {
        let (ear_a, ear_b) = (Ear::bind().unwrap(), Ear::bind().unwrap());
        let calls = vec![
            caller(a, room.to_owned(), ear_a.addr(), hold),
            caller(b, room.to_owned(), ear_b.addr(), hold),
        ];
        Pair {
            ear_a,
            ear_b,
            calls,
            talkers: Vec::new(),
            bursts: Bursts::default(),
        }
    }

    /// Once both are in the room, A talks in bursts and B sends silence (a
    /// phone sends RTP all the time).
    async fn talk(&mut self) {
        let to_a = gateway_media(&self.ear_a, Duration::from_secs(30)).await;
        let to_b = gateway_media(&self.ear_b, Duration::from_secs(30)).await;
        let silent = Bursts {
            amplitude: 0.0,
            ..self.bursts
        };
        self.talkers = vec![
            Talker::start(to_a, Law::Pcmu, self.bursts).unwrap(),
            Talker::start(to_b, Law::Pcmu, silent).unwrap(),
        ];
    }

    /// The delays of the bursts A sent from `from` to `to` (sorted), and
    /// how many it sent then.
    fn latencies(&self, from: Instant, to: Instant) -> (Vec<Duration>, usize) {
        let sent: Vec<Instant> = self.talkers[0]
            .onsets()
            .into_iter()
            .filter(|&t| t >= from && t < to)
            .collect();
        let heard = self.ear_b.onsets();
        let mut got = latencies(&sent, &heard, self.bursts.period - self.bursts.length);
        got.sort();
        (got, sent.len())
    }

    /// Waits for both calls to end with the callers' BYE (the phones talk
    /// until then: a silent phone is hung up after 30 s), then stops the
    /// talkers.
    async fn hang_up(mut self) {
        for call in self.calls {
            let outcome = call.await.unwrap();
            assert!(outcome.success(), "{}", outcome.report());
        }
        self.talkers.iter_mut().for_each(Talker::stop);
    }
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "min {:.1?} p50 {:.1?} p95 {:.1?} max {:.1?}",
        sorted[0],
        percentile(sorted, 0.5),
        percentile(sorted, 0.95),
        sorted[sorted.len() - 1]
    )
}

/// Phone A talks to phone B in `PAIRS` rooms; A's calls go to the first
/// gateway, B's to the second when `two_gateways`.
async fn latency(two_gateways: bool) {
    let _lock = bench_lock().await;
    let load_before = load_average();
    let stack = Stack::start().await;
    let first = stack.gateway("gateway", 20).await;
    let second = if two_gateways {
        Some(stack.gateway("gateway2", 20).await)
    } else {
        None
    };
    let b_side = second.as_ref().unwrap_or(&first);
    let hold = TALK + Duration::from_secs(10);
    let mut pairs: Vec<Pair> = (0..PAIRS)
        .map(|p| Pair::call(&first, b_side, &format!("latency{p}"), hold))
        .collect();
    for pair in &mut pairs {
        pair.talk().await;
    }
    let from = Instant::now();
    tokio::time::sleep(TALK).await;
    let to = Instant::now();
    // The last bursts sent are still on their way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut all = Vec::new();
    let mut report = String::new();
    for (p, pair) in pairs.into_iter().enumerate() {
        let (got, sent) = pair.latencies(from, to);
        assert!(
            !got.is_empty() && got.len() * 10 >= sent * 8,
            "room {p}: {} of {sent} bursts heard ({} packets at B): {got:?}",
            got.len(),
            pair.ear_b.packets()
        );
        report.push_str(&format!(
            "  room {p}: {} of {sent} bursts, {}\n",
            got.len(),
            summary(&got)
        ));
        all.extend(got);
        pair.hang_up().await;
    }
    all.sort();
    let path = if two_gateways {
        "phone A -> gateway 1 -> sfu -> gateway 2 -> phone B"
    } else {
        "phone A -> gateway -> phone B (both callers on one gateway)"
    };
    eprintln!(
        "\ngateway latency, {profile} gateway, {path} (load average before {load_before:.2})\n\
         {report}\
         \x20 all {n}: {all}\n",
        profile = profile(),
        n = all.len(),
        all = summary(&all),
    );
    for g in [Some(first), second].into_iter().flatten() {
        assert!(g.stop(Duration::from_secs(10)).await, "a gateway stopped");
    }
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: --run-ignored only, see the module docs"]
async fn latency_through_one_gateway() {
    latency(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: --run-ignored only, see the module docs"]
async fn latency_through_two_gateways_and_the_sfu() {
    latency(true).await;
}
