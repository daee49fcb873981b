//! The phone helpers end to end: real sipp (3.6.1) calls a tiny UAS written
//! here on a tokio `UdpSocket`. The UAS answers INVITEs (100, 180, then 200
//! with an SDP pointing at an [`RtpSink`], or a rejection), takes ACKs,
//! answers BYEs, and can send its own BYE. What sipp plays must reach the
//! sink: tones at their frequency, DTMF pcaps as RFC 4733 events.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::*;
use crate::sipp::{Outcome, Scenario};

const SIPP_DEADLINE: Duration = Duration::from_secs(20);

/// A SIP message, just enough parsed.
struct Sip {
    first_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Sip {
    fn parse(text: &str) -> Option<Sip> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let first_line = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Sip {
            first_line,
            headers,
            body: body.to_string(),
        })
    }

    fn header<'a>(&'a self, name: &'a str) -> &'a str {
        self.all(name).next().unwrap_or("")
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn method(&self) -> &str {
        self.first_line.split(' ').next().unwrap_or("")
    }

    /// `c=` address and `m=audio` port of the SDP body.
    fn sdp_audio(&self) -> Option<SocketAddr> {
        let ip = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))?;
        let port = self.body.lines().find_map(|l| l.strip_prefix("m=audio "))?;
        let port = port.split(' ').next()?;
        format!("{}:{}", ip.trim(), port).parse().ok()
    }
}

/// How the UAS treats calls.
struct UasPlan {
    /// Where its SDP answer sends the caller's RTP.
    media: SocketAddr,
    law: Law,
    /// Final status for the n-th new INVITE (from 0).
    decide: fn(usize) -> u16,
    /// Send our own BYE this long after an answered call's ACK.
    bye_after: Option<Duration>,
}

/// What the UAS saw; retransmissions count once (per call).
#[derive(Debug, Default)]
struct UasReport {
    invites: Vec<String>,
    decisions: Vec<u16>,
    acks: usize,
    byes: usize,
    /// 200s received for our own BYEs.
    bye_answers: usize,
}

struct Call {
    invite: Sip,
    from: SocketAddr,
    to_tag: String,
    final_response: String,
    acked: bool,
    bye_received: bool,
    bye_answered: bool,
}

struct Uas {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<UasReport>,
}

impl Uas {
    async fn start(plan: UasPlan) -> Uas {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(socket, plan, stopped));
        Uas { addr, stop, task }
    }

    /// Stops after `settle` (late messages) and returns what it saw.
    async fn finish(self, settle: Duration) -> UasReport {
        tokio::time::sleep(settle).await;
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn response(req: &Sip, code: u16, to_tag: &str, local: SocketAddr, sdp: Option<&str>) -> String {
    let mut out = format!("SIP/2.0 {code} {}\r\n", reason(code));
    for via in req.all("via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    let to = req.header("to");
    let to = if code > 100 && !to.contains(";tag=") {
        format!("{to};tag={to_tag}")
    } else {
        to.to_string()
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:uas@{local}>\r\n",
        req.header("from"),
        req.header("call-id"),
        req.header("cseq"),
    ));
    let body = sdp.unwrap_or("");
    if sdp.is_some() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

async fn serve(socket: UdpSocket, plan: UasPlan, mut stopped: oneshot::Receiver<()>) -> UasReport {
    let local = socket.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n",
        ip = plan.media.ip(),
        port = plan.media.port(),
        pt = plan.law.payload_type(),
        name = plan.law.encoding_name(),
    );
    let (bye_tx, mut bye_rx) = mpsc::unbounded_channel::<String>();
    let mut calls: HashMap<String, Call> = HashMap::new();
    let mut report = UasReport::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, from) = tokio::select! {
            _ = &mut stopped => return report,
            Some(call_id) = bye_rx.recv() => {
                let call = &calls[&call_id];
                let target = call.invite.header("contact").trim_matches(['<', '>']);
                let bye = format!(
                    "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-bye-{tag}\r\n\
                     From: {to};tag={tag}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: 1 BYE\r\n\
                     Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                    to = call.invite.header("to"),
                    tag = call.to_tag,
                    from = call.invite.header("from"),
                );
                socket.send_to(bye.as_bytes(), call.from).await.unwrap();
                continue;
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(_) => continue, // an ICMP error from a sipp that has left
            },
        };
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        let Some(msg) = Sip::parse(&text) else {
            continue;
        };
        let call_id = msg.header("call-id").to_string();
        match msg.method() {
            "INVITE" => {
                if let Some(call) = calls.get(&call_id) {
                    socket
                        .send_to(call.final_response.as_bytes(), from)
                        .await
                        .unwrap();
                    continue;
                }
                let code = (plan.decide)(report.decisions.len());
                report.decisions.push(code);
                report.invites.push(text.clone());
                let to_tag = format!("uas{}", report.decisions.len());
                for provisional in [100, 180] {
                    let r = response(&msg, provisional, &to_tag, local, None);
                    socket.send_to(r.as_bytes(), from).await.unwrap();
                }
                let body = (code == 200).then_some(sdp.as_str());
                let final_response = response(&msg, code, &to_tag, local, body);
                socket
                    .send_to(final_response.as_bytes(), from)
                    .await
                    .unwrap();
                let call = Call {
                    invite: msg,
                    from,
                    to_tag,
                    final_response,
                    acked: false,
                    bye_received: false,
                    bye_answered: false,
                };
                calls.insert(call_id, call);
            }
            "ACK" => {
                let Some(call) = calls.get_mut(&call_id) else {
                    continue;
                };
                if std::mem::replace(&mut call.acked, true) {
                    continue;
                }
                report.acks += 1;
                let answered = call.final_response.starts_with("SIP/2.0 200");
                if let (true, Some(wait)) = (answered, plan.bye_after) {
                    let bye_tx = bye_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let _ = bye_tx.send(call_id);
                    });
                }
            }
            "BYE" => {
                let Some(call) = calls.get_mut(&call_id) else {
                    continue;
                };
                if !std::mem::replace(&mut call.bye_received, true) {
                    report.byes += 1;
                }
                let r = response(&msg, 200, &call.to_tag, local, None);
                socket.send_to(r.as_bytes(), from).await.unwrap();
            }
            "SIP/2.0"
                if msg.header("cseq").ends_with("BYE") && msg.first_line.contains(" 200 ") =>
            {
                if let Some(call) = calls.get_mut(&call_id) {
                    if !std::mem::replace(&mut call.bye_answered, true) {
                        report.bye_answers += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

fn always_200(_: usize) -> u16 {
    200
}

fn check(outcome: &Outcome) {
    assert!(outcome.success(), "sipp call failed:\n{}", outcome.report());
}

/// A tone pcap in a temporary folder (kept alive by the returned guard).
fn tone(hz: f64, seconds: f64, law: Law) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.pcap");
    write_tone_pcap(&path, hz, seconds, law, 0.5).unwrap();
    (dir, path)
}

const HALF_SCALE_RMS: f64 = 0.5 * 32_767.0 / std::f64::consts::SQRT_2;

#[tokio::test]
async fn sipp_plays_a_pcmu_tone_pcap_to_the_answering_side() {
    let sink = RtpSink::bind().await.unwrap();
    let uas = Uas::start(UasPlan {
        media: sink.addr(),
        law: Law::Pcmu,
        decide: always_200,
        bye_after: None,
    })
    .await;
    let (_dir, pcap) = tone(440.0, 1.5, Law::Pcmu);
    let xml = dial_in(&DialIn {
        room: Some("standup".into()),
        caller_name: "Alice Caller".into(),
        steps: vec![
            Step::PlayPcap(pcap),
            Step::Pause(Duration::from_millis(1800)),
            Step::SendBye,
        ],
        ..DialIn::default()
    });
    let outcome = run_call(Scenario::Xml(&xml), uas.addr, &[], SIPP_DEADLINE)
        .await
        .unwrap();
    check(&outcome);
    let report = uas.finish(Duration::from_millis(100)).await;

    assert_eq!(sink.packets(), 75, "{}", outcome.report());
    assert_eq!(sink.payload_types(), vec![0]);
    let hz = sink.dominant_hz(Duration::from_secs(1)).unwrap();
    assert!((hz - 440.0).abs() <= 15.0, "heard {hz} Hz");
    let rms = sink.rms(Duration::from_secs(1));
    assert!(
        (rms - HALF_SCALE_RMS).abs() < HALF_SCALE_RMS * 0.1,
        "rms {rms}"
    );
    // sipp sent from its media port, which the SDP offer named.
    let sources = sink.sources();
    assert_eq!(sources.len(), 1);
    let invite = Sip::parse(&report.invites[0]).unwrap();
    assert_eq!(invite.sdp_audio(), Some(sources[0]));
    assert_eq!(invite.header("jitsi-conference-room"), "standup");
    assert!(invite
        .header("from")
        .starts_with("\"Alice Caller\" <sip:sipp@127.0.0.1:"));
    assert!(invite.body.contains("m=audio") && invite.body.contains(" RTP/AVP 0 8 101\r\n"));
    assert_eq!((report.acks, report.byes), (1, 1), "{}", outcome.report());
}

#[tokio::test]
async fn with_a_sink_in_the_offer_sipp_still_plays_from_its_media_port() {
    // The caller's offer names `ours`; the UAS's answer sends sipp's RTP to `theirs`.
    let ours = RtpSink::bind().await.unwrap();
    let theirs = RtpSink::bind().await.unwrap();
    let plan = UasPlan {
        media: theirs.addr(),
        law: Law::Pcma,
        decide: always_200,
        bye_after: None,
    };
    let uas = Uas::start(plan).await;
    let (_dir, pcap) = tone(1000.0, 1.0, Law::Pcma);
    let xml = dial_in(&DialIn {
        room: Some("standup".into()),
        media: Media::At(ours.addr()),
        codecs: vec![Law::Pcma],
        steps: vec![
            Step::PlayPcap(pcap),
            Step::Pause(Duration::from_millis(1300)),
            Step::SendBye,
        ],
        ..DialIn::default()
    });
    let outcome = run_call(Scenario::Xml(&xml), uas.addr, &[], SIPP_DEADLINE)
        .await
        .unwrap();
    check(&outcome);
    let report = uas.finish(Duration::from_millis(100)).await;

    let invite = Sip::parse(&report.invites[0]).unwrap();
    assert_eq!(invite.sdp_audio(), Some(ours.addr()));
    assert!(
        invite.body.contains(" RTP/AVP 8 101\r\n"),
        "{}",
        invite.body
    );
    assert_eq!(theirs.packets(), 50, "{}", outcome.report());
    assert_eq!(theirs.payload_types(), vec![8]);
    let hz = theirs.dominant_hz(Duration::from_millis(800)).unwrap();
    assert!((hz - 1000.0).abs() <= 15.0, "heard {hz} Hz");
    // The X-Sipp-Rtp-Source line taught sipp its source port.
    let source = theirs.sources()[0];
    let advertised = invite.header("x-sipp-rtp-source");
    assert_eq!(
        advertised,
        format!("audio {} {}", source.ip(), source.port())
    );
    assert_ne!(source.port(), 0);
    assert_eq!(ours.packets(), 0);
}

#[tokio::test]
async fn dtmf_steps_arrive_as_rfc4733_events_with_pt_101() {
    let sink = RtpSink::bind().await.unwrap();
    let uas = Uas::start(UasPlan {
        media: sink.addr(),
        law: Law::Pcmu,
        decide: always_200,
        bye_after: None,
    })
    .await;
    let xml = dial_in(&DialIn {
        room: Some("standup".into()),
        steps: vec![Step::Dtmf("1#9*".into()), Step::SendBye],
        ..DialIn::default()
    });
    let outcome = run_call(Scenario::Xml(&xml), uas.addr, &[], SIPP_DEADLINE)
        .await
        .unwrap();
    check(&outcome);
    let report = uas.finish(Duration::from_millis(100)).await;

    assert_eq!(sink.digits(), "1#9*", "{}", outcome.report());
    assert_eq!(sink.payload_types(), vec![DTMF_PCAP_PT]);
    assert_eq!(sink.packets(), 40);
    for event in sink.dtmf_events() {
        assert!(event.ended && event.packets == 10, "{event:?}");
        assert_eq!(event.duration, 2240, "{event:?}");
    }
    assert_eq!(report.byes, 1);
}

#[tokio::test]
async fn expect_bye_answers_the_far_ends_bye_and_the_audio_stops() {
    let sink = RtpSink::bind().await.unwrap();
    let plan = UasPlan {
        media: sink.addr(),
        law: Law::Pcmu,
        decide: always_200,
        bye_after: Some(Duration::from_millis(500)),
    };
    let uas = Uas::start(plan).await;
    let (_dir, pcap) = tone(700.0, 5.0, Law::Pcmu);
    let xml = dial_in(&DialIn {
        room: Some("standup".into()),
        steps: vec![
            Step::PlayPcap(pcap),
            Step::ExpectBye(Duration::from_secs(5)),
        ],
        ..DialIn::default()
    });
    let outcome = run_call(Scenario::Xml(&xml), uas.addr, &[], SIPP_DEADLINE)
        .await
        .unwrap();
    check(&outcome);
    let report = uas.finish(Duration::from_millis(300)).await;

    assert_eq!(
        (report.bye_answers, report.byes),
        (1, 0),
        "{}",
        outcome.report()
    );
    // About 0.5 s of the 5 s tone, then nothing.
    let packets = sink.packets();
    assert!((15..=50).contains(&packets), "{packets} packets");
    assert!(sink.last_packet_age().unwrap() >= Duration::from_millis(250));
    let hz = sink.dominant_hz(Duration::from_millis(300)).unwrap();
    assert!((hz - 700.0).abs() <= 15.0, "heard {hz} Hz");
}

#[tokio::test]
async fn hang_up_silently_ends_the_call_without_bye() {
    let uas = Uas::start(UasPlan {
        media: SocketAddr::from(([127, 0, 0, 1], 9)),
        law: Law::Pcmu,
        decide: always_200,
        bye_after: None,
    })
    .await;
    let xml = dial_in(&DialIn {
        room: Some("standup".into()),
        steps: vec![
            Step::Pause(Duration::from_millis(200)),
            Step::HangUpSilently,
        ],
        ..DialIn::default()
    });
    let outcome = run_call(Scenario::Xml(&xml), uas.addr, &[], SIPP_DEADLINE)
        .await
        .unwrap();
    check(&outcome);
    let report = uas.finish(Duration::from_millis(500)).await;
    assert_eq!(
        (report.decisions.len(), report.acks, report.byes),
        (1, 1, 0)
    );
}

/// Every fifth call is answered; the others get 503, 486, 480, 404 in turn.
fn mixed(n: usize) -> u16 {
    [200, 503, 486, 480, 404][n % 5]
}

#[tokio::test]
async fn a_flood_is_counted_per_answer() {
    let uas = Uas::start(UasPlan {
        media: SocketAddr::from(([127, 0, 0, 1], 9)),
        law: Law::Pcmu,
        decide: mixed,
        bye_after: None,
    })
    .await;
    let xml = flood_invites(&Flood {
        room: Some("load".into()),
        hold: Duration::from_millis(50),
        ..Flood::default()
    });
    let load = Load {
        rate: 100.0,
        calls: 50,
        limit: Some(20),
        ..Load::default()
    };
    let run = run_calls(Scenario::Xml(&xml), uas.addr, &load)
        .await
        .unwrap();
    let report = uas.finish(Duration::from_millis(100)).await;
    assert!(run.outcome.success(), "{}", run.outcome.report());

    let decided = |code| report.decisions.iter().filter(|&&d| d == code).count() as u64;
    assert_eq!(report.decisions.len(), 50);
    let counts = &run.counts;
    assert_eq!(counts.sent("INVITE"), 50, "{counts:?}");
    assert_eq!(
        counts.responses(200),
        vec![decided(200), decided(200)],
        "INVITE's, BYE's"
    );
    for code in [503, 486, 480, 404] {
        assert_eq!(counts.received(code), decided(code), "{code}");
    }
    assert_eq!(counts.sent("ACK"), 50);
    assert_eq!(counts.sent("BYE"), 10);
    assert_eq!((counts.unexpected(), counts.timeouts()), (0, 0));
    assert_eq!(report.byes, 10);
    assert_eq!(report.acks, 50);
    assert_eq!(run.stats.calls_created(), Some(50), "{:?}", run.stats);
    assert_eq!(run.stats.successful_calls(), Some(50));
    assert_eq!(run.stats.failed_calls(), Some(0));
    assert!(run
        .outcome
        .logs
        .iter()
        .any(|(name, _)| name.ends_with("_screen.log")));
}
