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
//!   closes the connection and the handle reports `Stopped`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use gateway::sip::driver::{CommandError, Driver, Settings};
use gateway::sip::{CallId, EndReason, Event};
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
        tests::init_logs();
        let settings = Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
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

/// A UAC scenario: INVITE (with `extra_header` if given), then either the
/// answered path (200, ACK, BYE, 200) or `final_status` and its ACK.
fn uac_scenario(extra_header: Option<&str>, final_status: u16) -> String {
    let header = extra_header.map(|h| format!("{h}\n")).unwrap_or_default();
    let common = "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n\
      Call-ID: [call_id]\n\
      Contact: sip:sipp@[local_ip]:[local_port]\n\
      Max-Forwards: 70";
    let to = "To: <sip:standup@[remote_ip]:[remote_port]>";
    let ruri = "sip:standup@[remote_ip]:[remote_port]";
    let via = "Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]";
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
