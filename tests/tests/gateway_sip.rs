//! The gateway's SIP driver against a real SIP user agent (sipp, Debian
//! `sip-tester`) and a raw TCP client.
//!
//! Each test starts `gateway::sip::driver` on a free loopback port with a tiny
//! application: calls carrying `Jitsi-Conference-Room` are answered with 200 and
//! a fixed G.711 SDP, calls without it get 404 (no such meeting). Then:
//! - a sipp UAC call with the room header completes INVITE/100/200/ACK/BYE/200
//!   (sipp exits 0), sipp received our SDP, and the application saw
//!   IncomingCall(room "standup"), CallEstablished and CallEnded(RemoteBye);
//! - a sipp UAC call without the header receives 404 and ACKs it (exit 0);
//! - OPTIONS over TCP, split across writes and sent back to back after a
//!   keep-alive, gets one 200 per request on the same connection; shutdown
//!   closes the connection and the handle reports `Stopped`;
//! - the gateway hangs up an established call: sipp receives our BYE and
//!   answers 200 (exit 0), the application sees CallEnded(LocalHangup);
//! - sipp sends DTMF by INFO (`application/dtmf-relay` and `application/dtmf`):
//!   each gets 200 and the application sees the digits;
//! - a session timer of 3 s (Min-SE lowered to 2 s): our 200 carries
//!   `Session-Expires: 3;refresher=uac` and `Require: timer`, sipp never
//!   refreshes, and our BYE comes about 2 s after the call was established
//!   (CallEnded(SessionExpired));
//! - with `max_calls` 1, a second call while the first is up gets 503 with
//!   Retry-After, and so does a call after `set_accepting(false)`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use gateway::sip::driver::{CommandError, Driver, Settings};
use gateway::sip::{CallId, Config, EndReason, Event};
use tests::sipp::{self, Scenario};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const ROOM_HEADER: &str = "Jitsi-Conference-Room";
const SIPP_DEADLINE: Duration = Duration::from_secs(10);

/// Our fixed SDP answer: G.711 µ-law and A-law.
const ANSWER_SDP: &str = "v=0\r\n\
    o=gateway 1 1 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    c=IN IP4 127.0.0.1\r\n\
    t=0 0\r\n\
    m=audio 40000 RTP/AVP 0 8\r\n\
    a=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\n\
    a=sendrecv\r\n";

/// The driver plus what its application saw.
struct Gateway {
    driver: Driver,
    seen: mpsc::UnboundedReceiver<Event>,
}

impl Gateway {
    async fn start() -> Result<Self> {
        Self::start_with(Config::default()).await
    }

    async fn start_with(server: Config) -> Result<Self> {
        tests::init_logs();
        let settings = Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            server,
            ..Settings::default()
        };
        let (driver, mut events) = Driver::start(settings).await?;
        let handle = driver.handle();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::IncomingCall {
                    call_id,
                    room_header,
                    ..
                } = &event
                {
                    let decided = match room_header {
                        Some(_) => handle.answer(call_id, ANSWER_SDP).await,
                        None => handle.reject(call_id, 404).await,
                    };
                    if let Err(e) = decided {
                        tracing::error!(%call_id, error = %e, "application could not decide");
                    }
                }
                let _ = seen_tx.send(event);
            }
        });
        Ok(Self { driver, seen })
    }

    fn addr(&self) -> SocketAddr {
        self.driver.local_addr()
    }

    /// Events seen so far, waiting up to `wait` for `until` to hold on them.
    async fn events_until(
        &mut self,
        wait: Duration,
        until: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut events = Vec::new();
        while !until(&events) {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(event)) => events.push(event),
                _ => break,
            }
        }
        events
    }
}

/// Header lines every request of sipp's call carries.
const COMMON: &str =
    "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n\
      Call-ID: [call_id]\n\
      Contact: sip:sipp@[local_ip]:[local_port]\n\
      Max-Forwards: 70";
const TO: &str = "To: <sip:standup@[remote_ip]:[remote_port]>";
const RURI: &str = "sip:standup@[remote_ip]:[remote_port]";
const VIA: &str = "Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]";

/// A UAC scenario: INVITE (with `extra_header` if given), then either the
/// answered path (200, ACK, BYE, 200) or `final_status` and its ACK.
fn uac_scenario(extra_header: Option<&str>, final_status: u16) -> String {
    let (common, to, ruri, via) = (COMMON, TO, RURI, VIA);
    let after = if final_status == 200 {
        format!(
            r#"  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK {ruri} SIP/2.0
{via}
{to}[peer_tag_param]
{common}
CSeq: 1 ACK
Content-Length: 0

]]></send>
  <pause milliseconds="100"/>
  <send retrans="500"><![CDATA[
BYE {ruri} SIP/2.0
{via}
{to}[peer_tag_param]
{common}
CSeq: 2 BYE
Content-Length: 0

]]></send>
  <recv response="200"/>"#
        )
    } else {
        // An ACK to a non-2xx final response is part of the INVITE
        // transaction: it carries the INVITE's branch (message 0, three back).
        let via = via.replace("[branch]", "[branch-3]");
        format!(
            r#"  <recv response="{final_status}" rtd="true"/>
  <send><![CDATA[
ACK {ruri} SIP/2.0
{via}
{to}[peer_tag_param]
{common}
CSeq: 1 ACK
Content-Length: 0

]]></send>"#
        )
    };
    invite_scenario(extra_header, &after)
}

/// INVITE (with `extra_header` lines if given) and an optional 100, then `after`.
fn invite_scenario(extra_header: Option<&str>, after: &str) -> String {
    let header = extra_header.map(|h| format!("{h}\n")).unwrap_or_default();
    let (common, to, ruri, via) = (COMMON, TO, RURI, VIA);
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="gateway dial-in">
  <send retrans="500"><![CDATA[
INVITE {ruri} SIP/2.0
{via}
{to}
{common}
CSeq: 1 INVITE
{header}Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 8
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000

]]></send>
  <recv response="100" optional="true"/>
{after}
</scenario>
"#
    )
}

/// INVITE (with `extra_header` lines), 200 and ACK: an established call; then `then`.
fn answered_scenario(extra_header: Option<&str>, then: &str) -> String {
    let ack = format!(
        r#"  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK {RURI} SIP/2.0
{VIA}
{TO}[peer_tag_param]
{COMMON}
CSeq: 1 ACK
Content-Length: 0

]]></send>
{then}"#
    );
    invite_scenario(extra_header, &ack)
}

/// sipp waits up to `wait_ms` for our BYE and answers it with 200.
fn bye_received(wait_ms: u64) -> String {
    format!(
        r#"  <recv request="BYE" timeout="{wait_ms}"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>"#
    )
}

/// sipp sends `method` in the dialog (CSeq `cseq`, an optional body) and expects 200.
fn in_dialog(method: &str, cseq: u32, content_type: Option<&str>, body: &str) -> String {
    let content_type = content_type
        .map(|c| format!("Content-Type: {c}\n"))
        .unwrap_or_default();
    format!(
        r#"  <send retrans="500"><![CDATA[
{method} {RURI} SIP/2.0
{VIA}
{TO}[peer_tag_param]
{COMMON}
CSeq: {cseq} {method}
{content_type}Content-Length: [len]

{body}]]></send>
  <recv response="200"/>"#
    )
}

fn messages_log(outcome: &sipp::Outcome) -> &str {
    outcome
        .logs
        .iter()
        .find(|(name, _)| name.ends_with("_messages.log"))
        .map_or("", |(_, text)| text.as_str())
}

#[tokio::test]
async fn sipp_call_with_room_header_is_answered_and_ended_by_bye() -> Result<()> {
    let mut gateway = Gateway::start().await?;
    let scenario = uac_scenario(Some(&format!("{ROOM_HEADER}: standup")), 200);
    let outcome = sipp::run(Scenario::Xml(&scenario), gateway.addr(), &[], SIPP_DEADLINE).await?;
    eprintln!("answered call: sipp ran {:?}", outcome.elapsed);
    ensure!(outcome.success(), "sipp call failed:\n{}", outcome.report());
    ensure!(
        messages_log(&outcome).contains("m=audio 40000 RTP/AVP 0 8"),
        "sipp did not receive our SDP answer:\n{}",
        outcome.report()
    );

    let ended = |events: &[Event]| events.iter().any(|e| matches!(e, Event::CallEnded { .. }));
    let events = gateway.events_until(Duration::from_secs(2), ended).await;
    let call_id: CallId = events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall {
                call_id,
                room_header,
                from_uri,
                sdp_offer,
                ..
            } => {
                assert_eq!(room_header.as_deref(), Some("standup"), "{events:?}");
                assert!(from_uri.starts_with("sip:sipp@"), "{from_uri}");
                let offer = sdp_offer.as_deref().unwrap_or_default();
                assert!(offer.contains("a=rtpmap:8 PCMA/8000"), "{offer}");
                Some(call_id.clone())
            }
            _ => None,
        })
        .context(format!("no IncomingCall in {events:?}"))?;
    let expected = [
        Event::CallEstablished {
            call_id: call_id.clone(),
        },
        Event::CallEnded {
            call_id: call_id.clone(),
            reason: EndReason::RemoteBye,
        },
    ];
    ensure!(
        events[1..] == expected,
        "events after IncomingCall: {events:?}"
    );
    gateway.driver.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn sipp_call_without_room_header_gets_404() -> Result<()> {
    let mut gateway = Gateway::start().await?;
    let scenario = uac_scenario(None, 404);
    let outcome = sipp::run(Scenario::Xml(&scenario), gateway.addr(), &[], SIPP_DEADLINE).await?;
    eprintln!("rejected call: sipp ran {:?}", outcome.elapsed);
    ensure!(outcome.success(), "sipp call failed:\n{}", outcome.report());
    ensure!(
        messages_log(&outcome).contains("SIP/2.0 404 Not Found"),
        "no 404 in sipp's log:\n{}",
        outcome.report()
    );
    let events = gateway
        .events_until(Duration::from_millis(300), |e| !e.is_empty())
        .await;
    ensure!(
        matches!(
            events.as_slice(),
            [Event::IncomingCall {
                room_header: None,
                ..
            }]
        ),
        "events: {events:?}"
    );
    gateway.driver.shutdown().await;
    Ok(())
}

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:gateway@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5099;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=p1\r\n\
         To: <sip:gateway@127.0.0.1>\r\n\
         Call-ID: options-{branch}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn options_over_tcp_get_200_on_the_same_connection() -> Result<()> {
    let gateway = Gateway::start().await?;
    let handle = gateway.driver.handle();
    let mut tcp = TcpStream::connect(gateway.addr()).await?;
    let local_port = tcp.local_addr()?.port();
    let started = Instant::now();

    // A keep-alive, then two requests split mid-message across two writes.
    let stream = format!(
        "\r\n\r\n{}{}",
        options("z9hG4bKtcp1"),
        options("z9hG4bKtcp2")
    );
    let (first, second) = stream.split_at(stream.len() / 2 + 7);
    tcp.write_all(first.as_bytes()).await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    tcp.write_all(second.as_bytes()).await?;

    let mut received = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while received.matches("\r\n\r\n").count() < 2 {
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .context(format!("timed out; received so far:\n{received}"))??;
        ensure!(n > 0, "connection closed; received:\n{received}");
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    eprintln!("two OPTIONS over TCP answered in {:?}", started.elapsed());
    let responses: Vec<&str> = received
        .split("SIP/2.0 ")
        .filter(|r| !r.is_empty())
        .collect();
    ensure!(responses.len() == 2, "responses:\n{received}");
    for (response, branch) in responses.iter().zip(["z9hG4bKtcp1", "z9hG4bKtcp2"]) {
        ensure!(response.starts_with("200 OK\r\n"), "response:\n{response}");
        ensure!(
            response.contains(&format!("branch={branch};rport={local_port}")),
            "response Via does not echo {branch} with rport:\n{response}"
        );
    }

    // Shutdown closes the connection and the handle reports it.
    gateway.driver.shutdown().await;
    let n = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf))
        .await
        .context("connection still open after shutdown")?
        .unwrap_or(0);
    ensure!(n == 0, "unexpected data after shutdown");
    let refused = handle.reject(&CallId::new("gone"), 404).await;
    ensure!(refused == Err(CommandError::Stopped), "{refused:?}");
    Ok(())
}

fn established_id(events: &[Event]) -> Option<CallId> {
    events.iter().find_map(|e| match e {
        Event::CallEstablished { call_id } => Some(call_id.clone()),
        _ => None,
    })
}

fn has_ended(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::CallEnded { .. }))
}

#[tokio::test]
async fn gateway_hangs_up_an_established_call() -> Result<()> {
    let mut gateway = Gateway::start().await?;
    let (handle, addr) = (gateway.driver.handle(), gateway.addr());
    let room = format!("{ROOM_HEADER}: standup");
    let scenario = answered_scenario(Some(&room), &bye_received(5000));
    let app = async {
        let up = |events: &[Event]| established_id(events).is_some();
        let mut events = gateway.events_until(Duration::from_secs(5), up).await;
        let call_id = established_id(&events).context(format!("not established: {events:?}"))?;
        handle.hangup(&call_id).await?;
        events.extend(
            gateway
                .events_until(Duration::from_secs(5), has_ended)
                .await,
        );
        anyhow::Ok((call_id, events))
    };
    let sipp = sipp::run(Scenario::Xml(&scenario), addr, &[], SIPP_DEADLINE);
    let (outcome, app) = tokio::join!(sipp, app);
    let outcome = outcome?;
    eprintln!("hung-up call: sipp ran {:?}", outcome.elapsed);
    ensure!(outcome.success(), "sipp call failed:\n{}", outcome.report());
    let (call_id, events) = app?;
    ensure!(
        messages_log(&outcome).contains("BYE sip:sipp@"),
        "sipp saw no BYE:\n{}",
        outcome.report()
    );
    let ended = Event::CallEnded {
        call_id,
        reason: EndReason::LocalHangup,
    };
    ensure!(events.last() == Some(&ended), "events: {events:?}");
    gateway.driver.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn dtmf_by_info_reaches_the_application() -> Result<()> {
    let mut gateway = Gateway::start().await?;
    let room = format!("{ROOM_HEADER}: standup");
    let then = [
        in_dialog(
            "INFO",
            2,
            Some("application/dtmf-relay"),
            "Signal=5\nDuration=160\n",
        ),
        in_dialog("INFO", 3, Some("application/dtmf"), "#"),
        in_dialog("BYE", 4, None, ""),
    ]
    .join("\n");
    let scenario = answered_scenario(Some(&room), &then);
    let outcome = sipp::run(Scenario::Xml(&scenario), gateway.addr(), &[], SIPP_DEADLINE).await?;
    eprintln!("DTMF call: sipp ran {:?}", outcome.elapsed);
    ensure!(outcome.success(), "sipp call failed:\n{}", outcome.report());
    let events = gateway
        .events_until(Duration::from_secs(2), has_ended)
        .await;
    let digits: String = events
        .iter()
        .filter_map(|e| match e {
            Event::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    ensure!(digits == "5#", "digits {digits:?} in {events:?}");
    ensure!(
        matches!(
            events.last(),
            Some(Event::CallEnded {
                reason: EndReason::RemoteBye,
                ..
            })
        ),
        "events: {events:?}"
    );
    gateway.driver.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unrefreshed_session_timer_ends_the_call_with_our_bye() -> Result<()> {
    let config = Config {
        min_se: Duration::from_secs(2),
        ..Config::default()
    };
    let mut gateway = Gateway::start_with(config).await?;
    let addr = gateway.addr();
    let headers =
        format!("{ROOM_HEADER}: standup\nSupported: timer\nSession-Expires: 3;refresher=uac");
    let scenario = answered_scenario(Some(&headers), &bye_received(8000));
    let app = async {
        let up = |events: &[Event]| established_id(events).is_some();
        let mut events = gateway.events_until(Duration::from_secs(5), up).await;
        let established = Instant::now();
        events.extend(
            gateway
                .events_until(Duration::from_secs(8), has_ended)
                .await,
        );
        (established.elapsed(), events)
    };
    let sipp = sipp::run(Scenario::Xml(&scenario), addr, &[], SIPP_DEADLINE);
    let (outcome, (lasted, events)) = tokio::join!(sipp, app);
    let outcome = outcome?;
    eprintln!("session timer: call lasted {lasted:?} after establishment");
    ensure!(outcome.success(), "sipp call failed:\n{}", outcome.report());
    let log = messages_log(&outcome);
    ensure!(
        log.contains("Session-Expires: 3;refresher=uac") && log.contains("Require: timer"),
        "no session timer in our 200:\n{}",
        outcome.report()
    );
    ensure!(
        matches!(
            events.last(),
            Some(Event::CallEnded {
                reason: EndReason::SessionExpired,
                ..
            })
        ),
        "events: {events:?}"
    );
    // BYE at expiry minus min(32 s, 3 s / 3) = 2 s after our 200.
    ensure!(
        (Duration::from_millis(1500)..Duration::from_millis(3000)).contains(&lasted),
        "BYE after {lasted:?}"
    );
    gateway.driver.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn calls_over_the_limit_or_while_not_accepting_get_503() -> Result<()> {
    let config = Config {
        max_calls: 1,
        ..Config::default()
    };
    let mut gateway = Gateway::start_with(config).await?;
    let (handle, addr) = (gateway.driver.handle(), gateway.addr());
    let room = format!("{ROOM_HEADER}: standup");
    let held = format!(
        "  <pause milliseconds=\"1500\"/>\n{}",
        in_dialog("BYE", 2, None, "")
    );
    let first = answered_scenario(Some(&room), &held);
    let refused = uac_scenario(Some(&room), 503);
    let second = async {
        let up = |events: &[Event]| established_id(events).is_some();
        let events = gateway.events_until(Duration::from_secs(5), up).await;
        ensure!(established_id(&events).is_some(), "events: {events:?}");
        Ok(sipp::run(Scenario::Xml(&refused), addr, &[], SIPP_DEADLINE).await?)
    };
    let (first, second) = tokio::join!(
        sipp::run(Scenario::Xml(&first), addr, &[], SIPP_DEADLINE),
        second
    );
    let (first, second) = (first?, second?);
    ensure!(first.success(), "held call failed:\n{}", first.report());
    ensure!(
        second.success(),
        "refused call failed:\n{}",
        second.report()
    );
    let log = messages_log(&second);
    ensure!(
        log.contains("SIP/2.0 503 Service Unavailable") && log.contains("Retry-After: 5"),
        "no 503 with Retry-After:\n{}",
        second.report()
    );
    let events = gateway
        .events_until(Duration::from_secs(2), has_ended)
        .await;
    ensure!(has_ended(&events), "first call did not end: {events:?}");

    // Graceful shutdown: no new calls, although there is room again.
    handle.set_accepting(false).await?;
    let outcome = sipp::run(Scenario::Xml(&refused), addr, &[], SIPP_DEADLINE).await?;
    ensure!(
        outcome.success(),
        "call while not accepting:\n{}",
        outcome.report()
    );
    handle.set_accepting(true).await?;
    let answered = uac_scenario(Some(&room), 200);
    let outcome = sipp::run(Scenario::Xml(&answered), addr, &[], SIPP_DEADLINE).await?;
    ensure!(
        outcome.success(),
        "call after accepting again:\n{}",
        outcome.report()
    );
    let events = gateway
        .events_until(Duration::from_millis(500), |e| e.len() >= 3)
        .await;
    let incoming = events
        .iter()
        .filter(|e| matches!(e, Event::IncomingCall { .. }))
        .count();
    ensure!(
        incoming == 1,
        "refused calls reached the application: {events:?}"
    );
    gateway.driver.shutdown().await;
    Ok(())
}
