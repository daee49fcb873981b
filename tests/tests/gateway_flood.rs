//! The SIP gateway under load and abuse, end to end: a private Prosody, the
//! sfu and the gateway in process, a webrtcbin participant in room `board`
//! ([`Stack`]), and sipp or hand-made UDP as the phones.
//!
//! - A flood of 200 INVITEs a second for 10 s against `sip.max_calls` 20
//!   (calls without the room header: answered at once, PIN prompt, BYE a
//!   second later) is mostly refused with 503, partly answered; calls up
//!   never pass the limit; a real caller placed 3 s into the flood, retrying
//!   after 503, is heard in the room; the gateway still runs and answers.
//! - Garbage on the SIP port is dropped when it has no Via and CSeq to
//!   answer to, else answered 400, 404 (room header cut to nothing) or 488
//!   (no SDP left, or an SDP we cannot use); garbage on a call's RTP port is
//!   dropped: the call goes on, heard both ways; OPTIONS still gets 200.
//! - A graceful shutdown refuses new INVITEs with 503 while the call that is
//!   up goes on, heard in the room; once it hangs up, the gateway stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tests::gateway::{Stack, PHONE_HZ, WEB_HZ};
use tests::meeting::{has_tone, until};
use tests::phone::flood::{ack, invite, options, pcmu_offer, retrying_dial_in, Retrying, SipProbe};
use tests::phone::{dial_in, flood_invites, run_call, run_calls, Flood, Load};
use tests::phone::{RtpSink, Step, ROOM_HEADER};
use tests::sipp::{Outcome, Scenario};
use tests::webrtc::{StreamKind, StreamStats, WebrtcParticipant};
use tokio::net::UdpSocket;

/// The flood's call limit: small, so that most of the flood is refused.
const MAX_CALLS: usize = 20;

/// One value of the gateway's `/metrics` at `http`.
async fn metric(http: SocketAddr, name: &str) -> Option<f64> {
    let answer = tests::http::get(http, "/metrics").await.ok()?;
    String::from_utf8_lossy(&answer.body).lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

/// The web participant's audio stream carrying the phone's tone.
fn phone_stream(s: &[StreamStats]) -> Option<&StreamStats> {
    s.iter().find(|s| {
        s.kind == StreamKind::Audio
            && s.rms > 0.01
            && (s.dominant_hz - PHONE_HZ as f32).abs() < 15.0
    })
}

/// The phone's tone is still reaching the room *now*: over one second the
/// web participant decodes more audio on the phone's stream, and the last
/// 0.5 s of it is the tone (the statistics keep the last audio decoded, so
/// a tone alone could be a stream that stopped).
async fn phone_still_heard(web: &WebrtcParticipant, when: &str) {
    let before = until(web, &format!("{when}: the phone is heard"), 5, |s| {
        phone_stream(s).is_some()
    })
    .await;
    let mid = phone_stream(&before).and_then(|s| s.mid.clone());
    let frames = |s: &[StreamStats]| -> u64 {
        s.iter()
            .filter(|s| s.kind == StreamKind::Audio && s.mid == mid)
            .map(|s| s.frames)
            .sum()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = web.received();
    let grew = frames(&after) - frames(&before);
    let still = after
        .iter()
        .any(|s| s.mid == mid && phone_stream(std::slice::from_ref(s)).is_some());
    assert!(
        grew >= 20 && still,
        "{when}: the phone's stream ({mid:?}) decoded {grew} audio buffers in 1 s, tone: {still}: {after:#?}"
    );
}

/// The caller hears the web participant through `sink` (the gateway's RTP
/// to the phone carries [`WEB_HZ`]).
async fn caller_hears_the_room(sink: &RtpSink, when: &str) {
    let before = sink.packets();
    assert!(
        sink.wait_until(Duration::from_secs(5), |s| s.packets() >= before + 25
            && s.dominant_hz(Duration::from_secs(1))
                .is_some_and(|hz| (hz - WEB_HZ).abs() < 15.0))
            .await,
        "{when}: the caller should hear {WEB_HZ} Hz; got {:?} Hz, {} packets ({before} before)",
        sink.dominant_hz(Duration::from_secs(1)),
        sink.packets(),
    );
}

/// sipp's message log (`-trace_msg`) of a one-call run.
fn messages(outcome: &Outcome) -> &str {
    outcome
        .logs
        .iter()
        .find(|(name, _)| name.ends_with("_messages.log"))
        .map_or("", |(_, text)| text.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_invites_is_refused_with_503_and_a_real_call_still_connects() {
    let stack = Stack::start(|c| c.sip.max_calls = MAX_CALLS).await;
    let (sip, http) = (stack.gateway.sip, stack.gateway.http);

    // calls_active, sampled all through the flood.
    let flooding = Arc::new(AtomicBool::new(true));
    let watcher = {
        let flooding = flooding.clone();
        tokio::spawn(async move {
            let (mut most, mut samples) = (0.0f64, 0u32);
            while flooding.load(Ordering::Relaxed) {
                if let Some(v) = metric(http, "gateway_calls_active").await {
                    most = most.max(v);
                    samples += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (most, samples)
        })
    };

    // Cheap calls that are held: no room header, so each is answered at
    // once with the PIN prompt (no XMPP login, no WebRTC leg) and holds
    // its slot for a second until its BYE.
    let flood = flood_invites(&Flood {
        room: None,
        caller_user: "flood".into(),
        hold: Duration::from_secs(1),
        ..Flood::default()
    });
    let load = Load {
        rate: 200.0,
        calls: 2000,
        deadline: Duration::from_secs(30),
        ..Load::default()
    };
    let flood_started = Instant::now();
    let flood = tokio::spawn(async move {
        run_calls(Scenario::Xml(&flood), sip, &load)
            .await
            .expect("sipp ran")
    });

    // A real caller, 3.5 s into the flood. The flood's first calls took
    // every slot at once and are held a second each, so slots free up in
    // waves about a second apart; half-way between two waves the gateway
    // is full. A real phone (or the trunk in front of it) tries again after
    // a 503: here after 100 ms rather than the Retry-After's 5 s, so that
    // it gets in while the flood still runs instead of after it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let caller = retrying_dial_in(&Retrying {
        room: "board".into(),
        caller_user: "caller".into(),
        tone: stack.tone(),
        talk: Duration::from_secs(6),
        retry_pause: Duration::from_millis(100),
    });
    let caller = tokio::spawn(async move {
        run_call(Scenario::Xml(&caller), sip, &[], Duration::from_secs(35))
            .await
            .expect("sipp ran")
    });
    until(
        &stack.web,
        "the real caller is heard in the room",
        25,
        |s| has_tone(s, PHONE_HZ as f32),
    )
    .await;
    let heard_at = flood_started.elapsed();

    let flood = flood.await.unwrap();
    let flood_took = flood_started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let (most_active, samples) = watcher.await.unwrap();
    let caller = caller.await.unwrap();

    let counts = &flood.counts;
    let sent = counts.sent("INVITE");
    let refused = counts.received(503);
    let answered = counts.responses(200).first().copied().unwrap_or(0);
    let tries = messages(&caller).matches("SIP/2.0 503").count() + 1;
    tracing::info!(
        sent,
        refused,
        answered,
        most_active,
        samples,
        ?heard_at,
        ?flood_took,
        tries,
        stats = ?flood.stats,
        "flood over"
    );
    assert_eq!(sent, 2000, "sipp sent every INVITE: {counts:?}");
    assert!(
        refused >= 1000,
        "most of the flood should be refused with 503: {refused} of {sent}: {counts:?}"
    );
    assert!(
        answered > MAX_CALLS as u64,
        "calls ending free slots for new ones: {answered} answered: {counts:?}"
    );
    assert_eq!(
        refused + answered,
        sent,
        "every INVITE of the flood is answered, 200 or 503: {counts:?}"
    );
    assert!(
        samples >= 50,
        "calls_active was read only {samples} times during the flood"
    );
    assert!(
        most_active <= MAX_CALLS as f64,
        "calls_active reached {most_active} with max_calls {MAX_CALLS}"
    );
    assert!(
        caller.success(),
        "the real caller, after {tries} tries: {}",
        caller.report()
    );
    assert!(
        heard_at < flood_took,
        "the real caller got in only after the flood ({heard_at:?}, flood {flood_took:?})"
    );
    if tries > 1 {
        assert!(
            messages(&caller).contains("Retry-After: "),
            "the 503s say when to try again: {}",
            caller.report()
        );
    }

    // The gateway is still there and answers.
    assert!(stack.gateway.is_running(), "the gateway's task ended");
    let health = tests::http::get(http, "/health").await.unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    let probe = SipProbe::bind(sip).await.unwrap();
    let asked = options(probe.local_addr(), sip, "after-flood", "-after-flood");
    probe.send(asked.as_bytes()).await.unwrap();
    let answer = probe
        .final_response("z9hG4bK-after-flood", Duration::from_secs(2))
        .await;
    assert_eq!(
        answer.map(|a| a.status),
        Some(200),
        "OPTIONS after the flood"
    );
    stack.until_metric("gateway_calls_active", 0.0, 10).await;
    stack.end().await;
}

/// Datagrams that are not SIP requests anyone could answer: no response.
fn sip_noise(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..200)
        .map(|_| {
            let mut d = vec![0u8; rng.random_range(1..1400)];
            rng.fill(&mut d[..]);
            d
        })
        .collect();
    out.push(Vec::new());
    out.push(b"\r\n\r\n".to_vec());
    out.push(vec![b'A'; 60_000]);
    out.push(vec![0xff; 1500]);
    out.push(b"INVITE sip:gateway@127.0.0.1 SIP/2.0\r\n\r\n".to_vec());
    out.push(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnope\r\n\r\n".to_vec());
    out
}

/// Datagrams for a call's RTP port that no phone sends: random bytes, RTP
/// headers whose lengths lie, other versions, RTCP, odd payload types.
fn rtp_noise(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..1000)
        .map(|_| {
            let mut d = vec![0u8; rng.random_range(1..1400)];
            rng.fill(&mut d[..]);
            d
        })
        .collect();
    let header = |first: u8, second: u8| {
        let mut h = vec![
            first, second, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef,
        ];
        h.extend_from_slice(&[0xd5; 160]);
        h
    };
    out.push(Vec::new());
    out.push(vec![0x80; 11]); // shorter than a header
    out.push(header(0x8f, 0x00)[..20].to_vec()); // 15 CSRCs announced, none there
    let mut ext = header(0x90, 0x00);
    ext[12..16].copy_from_slice(&[0xbe, 0xde, 0xff, 0xff]); // extension longer than the packet
    out.push(ext[..24].to_vec());
    let mut pad = header(0xa0, 0x00);
    *pad.last_mut().unwrap() = 0xff; // padding longer than the payload
    out.push(pad);
    out.push(header(0x40, 0x00)); // version 1
    out.push(header(0xc0, 0x00)); // version 3
    out.push(header(0x80, 0x60)); // PT 96, never offered
    out.push(header(0x80, 0x7f)); // PT 127
    out.push(header(0x80, 0x65)[..14].to_vec()); // telephone-event, 2-byte payload
    out.push(vec![0x80, 0xc8, 0x00, 0x06, 0, 0, 0, 1]); // RTCP SR, cut
    out.push(vec![0x81, 0xcb, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // RTCP BYE
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_sip_and_rtp_do_not_disturb_a_call() {
    let stack = Stack::start(|_| {}).await;
    let sip = stack.gateway.sip;
    let sink = RtpSink::bind().await.unwrap();
    let sipp = stack.call(dial_in(&stack.board_caller(
        &sink,
        vec![Step::Pause(Duration::from_secs(14)), Step::SendBye],
    )));
    until(&stack.web, "the phone is heard", 15, |s| {
        has_tone(s, PHONE_HZ as f32)
    })
    .await;
    caller_hears_the_room(&sink, "before the garbage").await;
    // The gateway sends the call's RTP from the call's media socket, the
    // port its SDP answer named.
    let sources = sink.sources();
    assert_eq!(sources.len(), 1, "one media source: {sources:?}");
    let media = sources[0];
    assert_eq!(media.ip(), sip.ip());
    let mut rng = StdRng::seed_from_u64(0x5eed);

    // SIP: noise is dropped without an answer.
    let probe = SipProbe::bind(sip).await.unwrap();
    let me = probe.local_addr();
    for datagram in sip_noise(&mut rng) {
        probe.send(&datagram).await.unwrap();
    }
    let answered = probe.responses(Duration::from_millis(500)).await;
    assert!(answered.is_empty(), "noise was answered: {answered:?}");

    // An INVITE cut anywhere: once its CSeq is in (Via, From, To and
    // Call-ID come first) it is answered 400 (malformed), 404 (the room
    // header cut to nothing) or 488 (no SDP offer left); before that it
    // cannot be answered at all.
    let room = [format!("{ROOM_HEADER}: board")];
    let offer = pcmu_offer("127.0.0.1:4000".parse().unwrap());
    let mut cut = Vec::new();
    for at in (0..).step_by(9) {
        let (call_id, branch) = (format!("cut-{at}"), format!("-cut-{at}"));
        let whole = invite(me, sip, &call_id, &branch, &room, &offer);
        if at >= whole.len() {
            break;
        }
        probe.send(&whole.as_bytes()[..at]).await.unwrap();
        cut.push((call_id, branch, whole[..at].contains("CSeq:")));
    }
    let mut finals = std::collections::HashMap::new();
    for response in probe.responses(Duration::from_secs(2)).await {
        let Some(via) = response.header("via") else {
            continue;
        };
        if let Some((_, branch)) = via.split_once("branch=z9hG4bK") {
            let branch = branch.split(';').next().unwrap_or_default().to_string();
            if response.status >= 200 {
                finals.insert(branch, response);
            }
        }
    }
    let mut statuses = std::collections::BTreeMap::new();
    for response in finals.values() {
        *statuses.entry(response.status).or_insert(0) += 1;
    }
    tracing::info!(cut = cut.len(), ?statuses, "cut INVITEs answered");
    for (call_id, branch, readable) in &cut {
        let status = finals.get(branch).map(|r| r.status);
        if *readable {
            assert!(
                matches!(status, Some(400 | 404 | 488)),
                "INVITE {call_id} (CSeq in) got {status:?}"
            );
            let response = &finals[branch];
            let acked = ack(me, sip, call_id, branch, response);
            probe.send(acked.as_bytes()).await.unwrap();
        } else {
            assert_eq!(status, None, "INVITE {call_id} (no CSeq) was answered");
        }
    }

    // Whole INVITEs whose SDP is broken or offers nothing we speak.
    let broken = [
        ("garbage", "this is not SDP at all\r\n".to_string()),
        (
            "bad-port",
            offer.replace("m=audio 4000", "m=audio 99999999"),
        ),
        ("no-connection", offer.replace("c=IN IP4 127.0.0.1\r\n", "")),
        (
            "g729-only",
            offer
                .replace("RTP/AVP 0", "RTP/AVP 18")
                .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000"),
        ),
        // Stands in for bytes that are not UTF-8 (below).
        ("binary", "0123".to_string()),
    ];
    let refused_before = stack.metric("gateway_rejected_media_total").await;
    for (name, sdp) in &broken {
        let (call_id, branch) = (format!("sdp-{name}"), format!("-sdp-{name}"));
        let mut request = invite(me, sip, &call_id, &branch, &room, sdp).into_bytes();
        if *name == "binary" {
            let body = request.len() - sdp.len();
            request[body..].copy_from_slice(&[0xc3, 0x28, 0xa0, 0xa1]);
        }
        probe.send(&request).await.unwrap();
        let response = probe
            .final_response(&format!("z9hG4bK{branch}"), Duration::from_secs(2))
            .await;
        let status = response.as_ref().map(|r| r.status);
        tracing::info!(name, ?status, "INVITE with broken SDP");
        assert!(
            matches!(status, Some(400 | 488)),
            "INVITE with SDP {name:?} got {status:?}"
        );
        if let Some(response) = response {
            let acked = ack(me, sip, &call_id, &branch, &response);
            probe.send(acked.as_bytes()).await.unwrap();
        }
    }
    let refused = stack.metric("gateway_rejected_media_total").await - refused_before;
    assert_eq!(refused, broken.len() as f64, "refused for their SDP");

    // RTP: noise from elsewhere at the call's media port.
    let noise = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for datagram in rtp_noise(&mut rng) {
        noise.send_to(&datagram, media).await.unwrap();
    }

    // The call goes on, both ways; the gateway still answers.
    phone_still_heard(&stack.web, "after the garbage").await;
    caller_hears_the_room(&sink, "after the garbage").await;
    let asked = options(me, sip, "after-garbage", "-after-garbage");
    probe.send(asked.as_bytes()).await.unwrap();
    let answer = probe
        .final_response("z9hG4bK-after-garbage", Duration::from_secs(2))
        .await;
    assert_eq!(
        answer.map(|a| a.status),
        Some(200),
        "OPTIONS after the garbage"
    );
    assert_eq!(stack.metric("gateway_calls_active").await, 1.0);
    assert!(stack.gateway.is_running(), "the gateway's task ended");

    let outcome = sipp.await.unwrap();
    assert!(outcome.success(), "{}", outcome.report());
    // The noise went where the call's media is: the port of the answer.
    let answer = messages(&outcome)
        .split("SIP/2.0 200 OK")
        .nth(1)
        .and_then(|r| r.lines().find_map(|l| l.strip_prefix("m=audio ")))
        .and_then(|m| m.split(' ').next()?.parse::<u16>().ok());
    assert_eq!(answer, Some(media.port()), "{}", outcome.report());
    stack.until_metric("gateway_calls_active", 0.0, 5).await;
    stack.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_lets_calls_finish_and_refuses_new_ones() {
    let stack = Stack::start(|_| {}).await;
    let sink = RtpSink::bind().await.unwrap();
    let sipp = stack.call(dial_in(&stack.board_caller(
        &sink,
        vec![Step::Pause(Duration::from_secs(10)), Step::SendBye],
    )));
    until(&stack.web, "the phone is heard", 15, |s| {
        has_tone(s, PHONE_HZ as f32)
    })
    .await;
    let Stack {
        prosody,
        sfu,
        gateway,
        web,
        pcap,
        ..
    } = stack;
    let (sip, http) = (gateway.sip, gateway.http);

    // Shutdown begins; it drains.
    let ending = tokio::spawn(gateway.end(Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(http, "gateway_draining").await != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the gateway never began draining"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = tests::http::get(http, "/health").await.unwrap();
    assert_eq!(
        (health.status, String::from_utf8_lossy(&health.body).trim()),
        (200, "draining")
    );

    // A new call is refused, with a time to try again (elsewhere).
    let probe = SipProbe::bind(sip).await.unwrap();
    let me = probe.local_addr();
    let room = format!("{ROOM_HEADER}: board");
    let offer = pcmu_offer("127.0.0.1:4000".parse().unwrap());
    let request = invite(me, sip, "while-draining", "-draining", &[room], &offer);
    probe.send(request.as_bytes()).await.unwrap();
    let refused = probe
        .final_response("z9hG4bK-draining", Duration::from_secs(2))
        .await
        .expect("an answer to the INVITE while draining");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    let acked = ack(me, sip, "while-draining", "-draining", &refused);
    probe.send(acked.as_bytes()).await.unwrap();

    // The call that is up goes on, both ways.
    phone_still_heard(&web, "while draining").await;
    caller_hears_the_room(&sink, "while draining").await;
    assert_eq!(metric(http, "gateway_calls_active").await, Some(1.0));
    assert!(!ending.is_finished(), "the gateway stopped with a call up");

    // The caller hangs up; then the gateway stops.
    let outcome = sipp.await.unwrap();
    let hung_up = Instant::now();
    assert!(outcome.success(), "{}", outcome.report());
    let stopped = tokio::time::timeout(Duration::from_secs(5), ending)
        .await
        .expect("the gateway did not stop within 5 s of the last call's BYE")
        .unwrap();
    let took = hung_up.elapsed();
    tracing::info!(?took, "the gateway stopped after the last call");
    assert!(stopped, "InProcessGateway::end timed out");

    drop(web);
    sfu.end().await;
    drop(prosody);
    drop(pcap);
}
