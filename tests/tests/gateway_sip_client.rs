//! The gateway's dial-out SIP client and registration cores against a real SIP
//! peer (sipp, Debian `sip-tester`), driven over a plain tokio `UdpSocket` on
//! loopback with real time:
//! - sipp's built-in UAS as the callee: our INVITE gets 180 and 200 (with
//!   sipp's SDP), we ACK, then hang up with BYE and get 200. The client reports
//!   Ringing(180), Answered(sipp's SDP) and Ended(LocalHangup); sipp exits 0,
//!   so it received the ACK and BYE its scenario waits for.
//! - a sipp registrar that challenges with 401 and checks our Authorization
//!   with `verifyauth` against the password before answering 200 (expires 120):
//!   the core reports Registered(120); `unregister` sends `Expires: 0` (checked
//!   by sipp, credentials verified again) and reports Unregistered; sipp exits 0.
//! - the same registrar with a wrong password answers 403: the core reports
//!   RegistrationFailed(403, retry in 1 s).
//!
//! Then the same cores inside `gateway::sip::driver`, on its sockets and
//! timer, with our contact derived from its bound address; in each, no
//! response of theirs may reach the application as `Event::Response`:
//! - `Handle::dial` to sipp's built-in UAS, over UDP and over a TCP
//!   connection the driver opens (`-t t1`): Dial(Ringing 180), Dial(Answered
//!   with SDP); `hangup_dial` gives Dial(Ended(LocalHangup)), sipp exits 0 and
//!   saw our extra header, ACK and BYE; a second `hangup_dial` is refused;
//! - a UAS answering 486: Dial(Failed 486), and sipp gets our ACK;
//! - a UAS that rings: `cancel_dial` gives Dial(Cancelled) after 200/487/ACK;
//! - a UAS that answers, then sends BYE: Dial(Ended(RemoteBye));
//! - `Settings::register` with the challenging registrar: Registration(
//!   Registered 120) at start, `Handle::registered`; shutdown un-registers
//!   first (sipp checks `Expires: 0` and the credentials) and the last event
//!   is Registration(Unregistered);
//! - a registrar granting 4 s exits; a second one on the same port forgot the
//!   nonce and challenges the refresh (about 2 s later) anew: a second
//!   Registered(4); `Handle::unregister` then removes the binding.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use gateway::sip::client::{ClientEndReason, ClientError, Input, Output};
use gateway::sip::driver::{CommandError, Driver, Settings};
use gateway::sip::{
    Client, ClientConfig, ClientEvent, Credentials, Event, RegisterConfig, RegisterEvent,
    Registration, Transport,
};
use tests::sipp::{self, Outcome, Scenario};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const SIPP_DEADLINE: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "Circle Of Life";

const OFFER: &str = "v=0\r\n\
    o=gateway 1 1 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    c=IN IP4 127.0.0.1\r\n\
    t=0 0\r\n\
    m=audio 40000 RTP/AVP 0 8\r\n\
    a=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\n";

/// The two cores, seen the same way by [`pump`].
trait Core {
    type Event: Debug;
    fn input(&mut self, input: Input<'_>);
    fn output(&mut self) -> Output<Self::Event>;
}

impl Core for Client {
    type Event = ClientEvent;
    fn input(&mut self, input: Input<'_>) {
        self.handle_input(input)
    }
    fn output(&mut self) -> Output<ClientEvent> {
        self.poll_output()
    }
}

impl Core for Registration {
    type Event = RegisterEvent;
    fn input(&mut self, input: Input<'_>) {
        self.handle_input(input)
    }
    fn output(&mut self) -> Output<RegisterEvent> {
        self.poll_output()
    }
}

/// Runs `core` over `socket` until `done(events)` holds (or [`WAIT`] passes).
async fn pump<C: Core>(
    core: &mut C,
    socket: &UdpSocket,
    seen: &mut Vec<C::Event>,
    done: impl Fn(&[C::Event]) -> bool,
) -> Result<()> {
    let give_up = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65_535];
    loop {
        let next = loop {
            match core.output() {
                Output::Transmit(t) => {
                    socket.send_to(&t.contents, t.destination).await?;
                }
                Output::Event(e) => seen.push(e),
                Output::Timeout(t) => break t,
            }
        };
        if done(seen) {
            return Ok(());
        }
        ensure!(
            Instant::now() < give_up,
            "gave up waiting; events so far: {seen:?}"
        );
        let wake = next.unwrap_or(give_up).min(give_up);
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, source) = received?;
                core.input(Input::Receive {
                    now: Instant::now(),
                    transport: Transport::Udp,
                    source,
                    data: &buf[..n],
                });
            }
            _ = tokio::time::sleep_until(wake.into()) => core.input(Input::Timeout(Instant::now())),
        }
    }
}

/// Starts sipp on a free loopback port and waits until it has bound it.
async fn start_sipp(
    scenario: String,
    builtin: bool,
    us: SocketAddr,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<Outcome>>)> {
    start_sipp_over(scenario, builtin, us, Transport::Udp).await
}

/// [`start_sipp`] over `transport`. Tests run in parallel processes whose
/// sockets take ports `free_port` cannot know of: a port taken meanwhile is
/// given up for another.
async fn start_sipp_over(
    scenario: String,
    builtin: bool,
    us: SocketAddr,
    transport: Transport,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<Outcome>>)> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let port = free_sip_port()?;
        let started = start_sipp_at(port, scenario.clone(), builtin, us, transport).await;
        match started {
            Err(e) if attempts < 3 && format!("{e:#}").contains("Unable to bind") => {
                tracing::warn!(port, "sipp lost its port to another test; trying another");
            }
            started => return started,
        }
    }
}

/// A loopback port free for both TCP and UDP (sipp binds one, the driver both).
fn free_sip_port() -> Result<u16> {
    for _ in 0..20 {
        let port = tests::free_port()?;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no loopback port free for both TCP and UDP")
}

/// Starts sipp on `port` (UDP, or TCP with `-t t1`) and waits until it has bound it.
async fn start_sipp_at(
    port: u16,
    scenario: String,
    builtin: bool,
    us: SocketAddr,
    transport: Transport,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<Outcome>>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let task = tokio::spawn(async move {
        let port = port.to_string();
        // sipp takes the last -p given: ours, not the harness's.
        let mut extra = vec!["-p", port.as_str()];
        if transport == Transport::Tcp {
            extra.extend(["-t", "t1"]);
        }
        let scenario = match builtin {
            true => Scenario::BuiltIn(&scenario),
            false => Scenario::Xml(&scenario),
        };
        sipp::run(scenario, us, &extra, SIPP_DEADLINE).await
    });
    let bound_by = Instant::now() + Duration::from_secs(5);
    let free = |addr| match transport {
        Transport::Udp => std::net::UdpSocket::bind(addr).is_ok(),
        Transport::Tcp => std::net::TcpListener::bind(addr).is_ok(),
    };
    while free(addr) {
        if task.is_finished() {
            let outcome = sipp_outcome(task).await?;
            anyhow::bail!("sipp ended before binding {addr}:\n{}", outcome.report());
        }
        ensure!(Instant::now() < bound_by, "sipp never bound {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((addr, task))
}

fn messages_log(outcome: &Outcome) -> &str {
    outcome
        .logs
        .iter()
        .find(|(name, _)| name.ends_with("_messages.log"))
        .map_or("", |(_, text)| text.as_str())
}

/// Adds what sipp saw to a failure (sipp ends by its own `-timeout`).
async fn with_sipp_report(
    error: anyhow::Error,
    sipp: JoinHandle<std::io::Result<Outcome>>,
) -> anyhow::Error {
    match sipp_outcome(sipp).await {
        Ok(outcome) => error.context(outcome.report()),
        Err(e) => error.context(format!("sipp: {e}")),
    }
}

async fn sipp_outcome(task: JoinHandle<std::io::Result<Outcome>>) -> Result<Outcome> {
    Ok(task.await.context("sipp task")??)
}

#[tokio::test]
async fn dial_out_to_sipp_rings_answers_and_hangs_up() -> Result<()> {
    tests::init_logs();
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let us = socket.local_addr()?;
    let (callee, sipp) = start_sipp("uas".into(), true, us).await?;
    let mut client = Client::new(ClientConfig {
        contact: format!("sip:gateway@{us}"),
        from_uri: "sip:gateway@127.0.0.1".into(),
        from_display: Some("Meeting".into()),
        ..ClientConfig::default()
    })?;
    let target = format!("sip:service@{callee}");
    let call = client.invite(&target, callee, Transport::Udp, OFFER, &[], Instant::now())?;
    let mut seen = Vec::new();
    let answered = |seen: &[ClientEvent]| {
        seen.iter()
            .any(|e| matches!(e, ClientEvent::Answered { .. } | ClientEvent::Failed { .. }))
    };
    if let Err(e) = pump(&mut client, &socket, &mut seen, answered).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    ensure!(
        seen.iter()
            .any(|e| matches!(e, ClientEvent::Ringing { status: 180, .. })),
        "no 180 Ringing seen: {seen:?}"
    );
    let sdp = seen.iter().find_map(|e| match e {
        ClientEvent::Answered { call_id, sdp } if *call_id == call => sdp.clone(),
        _ => None,
    });
    let sdp = sdp.with_context(|| format!("not answered with SDP: {seen:?}"))?;
    ensure!(sdp.contains("m=audio"), "sipp's answer has no audio: {sdp}");

    client.hangup(&call, Instant::now())?;
    let ended = |seen: &[ClientEvent]| seen.iter().any(|e| matches!(e, ClientEvent::Ended { .. }));
    if let Err(e) = pump(&mut client, &socket, &mut seen, ended).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let reason = ClientEndReason::LocalHangup;
    ensure!(
        seen.last()
            == Some(&ClientEvent::Ended {
                call_id: call.clone(),
                reason
            }),
        "call did not end by our BYE: {seen:?}"
    );
    let outcome = sipp_outcome(sipp).await?;
    ensure!(outcome.success(), "sipp UAS failed:\n{}", outcome.report());
    let log = messages_log(&outcome);
    for sent in ["m=audio 40000 RTP/AVP 0 8", "\nACK sip:", "\nBYE sip:"] {
        ensure!(
            log.contains(sent),
            "sipp never saw {sent:?}:\n{}",
            outcome.report()
        );
    }
    ensure!(client.is_empty(), "the call is still held");
    Ok(())
}

/// A registrar: 401 with a qop=auth challenge, `verifyauth` of the answer
/// against `password` (200 expires=120, or 403), then the un-REGISTER
/// (`Expires: 0`, verified again) answered 200.
fn registrar_scenario(password: &str) -> String {
    registrar("4b2f1a9e0c7d", password, 120, true)
}

/// [`tests::phone::uas::registrar`] for the user `gateway`.
fn registrar(nonce: &str, password: &str, expires: u32, unregister: bool) -> String {
    tests::phone::uas::registrar("gateway", nonce, password, expires, unregister)
}

fn registration(us: SocketAddr, registrar: SocketAddr, password: &str) -> Result<Registration> {
    Ok(Registration::new(RegisterConfig {
        contact: format!("sip:gateway@{us}"),
        ..registration_config(registrar, password)
    })?)
}

fn registration_config(registrar: SocketAddr, password: &str) -> RegisterConfig {
    RegisterConfig {
        registrar,
        transport: Transport::Udp,
        aor: "sip:gateway@sipp.example.com".into(),
        registrar_uri: "sip:sipp.example.com".into(),
        credentials: Credentials::new("gateway", password),
        expires: 300,
        ..RegisterConfig::default()
    }
}

#[tokio::test]
async fn registers_with_a_challenging_sipp_registrar_and_unregisters() -> Result<()> {
    tests::init_logs();
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let us = socket.local_addr()?;
    let (registrar, sipp) = start_sipp(registrar_scenario(PASSWORD), false, us).await?;
    let mut reg = registration(us, registrar, PASSWORD)?;
    reg.register(Instant::now());
    let mut seen = Vec::new();
    if let Err(e) = pump(&mut reg, &socket, &mut seen, |seen| !seen.is_empty()).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    ensure!(
        seen == [RegisterEvent::Registered { expires: 120 }],
        "not registered: {seen:?}"
    );
    ensure!(reg.is_registered());
    reg.unregister(Instant::now());
    if let Err(e) = pump(&mut reg, &socket, &mut seen, |seen| seen.len() == 2).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    ensure!(
        seen[1] == RegisterEvent::Unregistered,
        "unregister failed: {seen:?}"
    );
    ensure!(!reg.is_registered());
    let outcome = sipp_outcome(sipp).await?;
    ensure!(
        outcome.success(),
        "sipp registrar failed:\n{}",
        outcome.report()
    );
    let log = messages_log(&outcome);
    ensure!(
        log.matches("SIP/2.0 200 OK").count() == 2 && !log.contains("403 Forbidden"),
        "sipp did not accept both authenticated REGISTERs:\n{}",
        outcome.report()
    );
    Ok(())
}

#[tokio::test]
async fn wrong_password_is_refused_by_sipp_and_backs_off() -> Result<()> {
    tests::init_logs();
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let us = socket.local_addr()?;
    let (registrar, sipp) = start_sipp(registrar_scenario(PASSWORD), false, us).await?;
    let mut reg = registration(us, registrar, "not the password")?;
    reg.register(Instant::now());
    let mut seen = Vec::new();
    if let Err(e) = pump(&mut reg, &socket, &mut seen, |seen| !seen.is_empty()).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let want = RegisterEvent::RegistrationFailed {
        status: 403,
        retry_in: Duration::from_secs(1),
    };
    ensure!(seen == [want], "expected a 403 failure: {seen:?}");
    ensure!(!reg.is_registered());
    let outcome = sipp_outcome(sipp).await?;
    ensure!(
        outcome.success(),
        "sipp registrar failed:\n{}",
        outcome.report()
    );
    Ok(())
}

/// The driver with the client (and `register`, if given) on a loopback port,
/// and the events it delivered so far.
struct Gateway {
    driver: Driver,
    events: mpsc::UnboundedReceiver<Event>,
    seen: Vec<Event>,
}

impl Gateway {
    async fn start(register: Option<RegisterConfig>) -> Result<Self> {
        tests::init_logs();
        let settings = Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            register,
            ..Settings::default()
        };
        let (driver, events) = Driver::start(settings).await?;
        let seen = Vec::new();
        Ok(Self {
            driver,
            events,
            seen,
        })
    }

    /// Collects events until `done` holds on them (or [`WAIT`] passes).
    async fn until(&mut self, done: impl Fn(&[Event]) -> bool) -> Result<()> {
        let give_up = tokio::time::Instant::now() + WAIT;
        while !done(&self.seen) {
            match tokio::time::timeout_at(give_up, self.events.recv()).await {
                Ok(Some(event)) => self.seen.push(event),
                Ok(None) => anyhow::bail!("driver stopped; events: {:?}", self.seen),
                Err(_) => anyhow::bail!("gave up waiting; events: {:?}", self.seen),
            }
        }
        Ok(())
    }

    /// The dial-out events seen, in order.
    fn dial_events(&self) -> Vec<&ClientEvent> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Dial(event) => Some(event),
                _ => None,
            })
            .collect()
    }

    /// Nothing the client or registration owns leaked out as a raw response.
    fn no_raw_responses(&self) -> Result<()> {
        let raw = self
            .seen
            .iter()
            .any(|e| matches!(e, Event::Response { .. }));
        ensure!(!raw, "responses leaked to the application: {:?}", self.seen);
        Ok(())
    }
}

fn dial_ended(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            Event::Dial(
                ClientEvent::Answered { .. }
                    | ClientEvent::Failed { .. }
                    | ClientEvent::Cancelled { .. }
                    | ClientEvent::Ended { .. }
            )
        )
    })
}

/// Dials sipp's built-in UAS through the driver over `transport`; it rings and
/// answers, and our `hangup_dial` ends the call with BYE.
async fn dial_sipp_uas(transport: Transport) -> Result<()> {
    let mut gateway = Gateway::start(None).await?;
    let handle = gateway.driver.handle();
    let (callee, sipp) =
        start_sipp_over("uas".into(), true, handle.local_addr(), transport).await?;
    let headers = vec![("X-Meeting".to_owned(), "standup".to_owned())];
    let target = format!("sip:service@{callee}");
    let call = handle
        .dial(target, callee, transport, OFFER, headers)
        .await?;
    if let Err(e) = gateway.until(dial_ended).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let dial = gateway.dial_events();
    let ringing = ClientEvent::Ringing {
        call_id: call.clone(),
        status: 180,
        sdp: None,
    };
    ensure!(dial.first() == Some(&&ringing), "no 180 first: {dial:?}");
    let Some(ClientEvent::Answered { sdp: Some(sdp), .. }) = dial.get(1) else {
        anyhow::bail!("not answered with SDP: {dial:?}");
    };
    ensure!(sdp.contains("m=audio"), "sipp's answer has no audio: {sdp}");

    handle.hangup_dial(&call).await?;
    let ended = |seen: &[Event]| {
        seen.iter()
            .any(|e| matches!(e, Event::Dial(ClientEvent::Ended { .. })))
    };
    if let Err(e) = gateway.until(ended).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let reason = ClientEndReason::LocalHangup;
    let want = ClientEvent::Ended {
        call_id: call.clone(),
        reason,
    };
    ensure!(
        gateway.dial_events().last() == Some(&&want),
        "{:?}",
        gateway.seen
    );
    gateway.no_raw_responses()?;
    let gone = handle.hangup_dial(&call).await.unwrap_err();
    ensure!(
        gone == CommandError::Client(ClientError::UnknownCall),
        "{gone}"
    );
    ensure!(gone.to_string() == "dial-out call: no such call", "{gone}");

    let outcome = sipp_outcome(sipp).await?;
    ensure!(outcome.success(), "sipp UAS failed:\n{}", outcome.report());
    let log = messages_log(&outcome);
    let via = format!("Via: SIP/2.0/{transport:?}").to_uppercase();
    for sent in ["X-Meeting: standup", "\nACK sip:", "\nBYE sip:", &via] {
        ensure!(
            log.to_uppercase().contains(&sent.to_uppercase()),
            "sipp never saw {sent:?}:\n{}",
            outcome.report()
        );
    }
    gateway.driver.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn driver_dials_sipp_which_rings_answers_and_gets_our_bye() -> Result<()> {
    dial_sipp_uas(Transport::Udp).await
}

#[tokio::test]
async fn driver_dials_sipp_over_a_tcp_connection_it_opens() -> Result<()> {
    dial_sipp_uas(Transport::Tcp).await
}

/// A UAS that receives the INVITE and does `then`.
fn uas(then: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callee">
  <recv request="INVITE">
    <action>
      <ereg regexp="tag=([^;> ]+)" search_in="hdr" header="From:" assign_to="whole,their_tag"/>
      <ereg regexp="([0-9]+)" search_in="hdr" header="CSeq:" assign_to="cseq,invite_cseq"/>
    </action>
  </recv>
  <Reference variables="whole,cseq,their_tag"/>
{then}
</scenario>
"#
    )
}

/// A response of the UAS to the INVITE (To gets its tag).
fn uas_response(status: &str, more: &str) -> String {
    format!(
        r#"  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$invite_cseq] INVITE
{more}Content-Length: [len]

]]></send>
"#
    )
}

#[tokio::test]
async fn driver_reports_a_busy_callee_as_failed_486() -> Result<()> {
    let mut gateway = Gateway::start(None).await?;
    let handle = gateway.driver.handle();
    let scenario = uas(&format!(
        "{}  <recv request=\"ACK\"/>",
        uas_response("486 Busy Here", "")
    ));
    let (callee, sipp) = start_sipp(scenario, false, handle.local_addr()).await?;
    let target = format!("sip:busy@{callee}");
    let call = handle
        .dial(target, callee, Transport::Udp, OFFER, Vec::new())
        .await?;
    if let Err(e) = gateway.until(dial_ended).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let failed = gateway.dial_events();
    let busy = matches!(
        failed[..],
        [ClientEvent::Failed { call_id, status: 486, .. }] if *call_id == call
    );
    ensure!(busy, "expected Failed(486): {failed:?}");
    gateway.no_raw_responses()?;
    let outcome = sipp_outcome(sipp).await?;
    ensure!(
        outcome.success(),
        "sipp never got our ACK:\n{}",
        outcome.report()
    );
    gateway.driver.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn driver_cancels_a_ringing_call() -> Result<()> {
    let mut gateway = Gateway::start(None).await?;
    let handle = gateway.driver.handle();
    let cancelled = format!(
        "{}  <recv request=\"CANCEL\"/>\n{}{}  <recv request=\"ACK\"/>",
        uas_response("180 Ringing", ""),
        r#"  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"#,
        uas_response("487 Request Terminated", ""),
    );
    let (callee, sipp) = start_sipp(uas(&cancelled), false, handle.local_addr()).await?;
    let target = format!("sip:ringing@{callee}");
    let call = handle
        .dial(target, callee, Transport::Udp, OFFER, Vec::new())
        .await?;
    let ringing = |seen: &[Event]| {
        seen.iter()
            .any(|e| matches!(e, Event::Dial(ClientEvent::Ringing { .. })))
    };
    if let Err(e) = gateway.until(ringing).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    handle.cancel_dial(&call).await?;
    if let Err(e) = gateway.until(dial_ended).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let want = ClientEvent::Cancelled { call_id: call };
    ensure!(
        gateway.dial_events().last() == Some(&&want),
        "{:?}",
        gateway.seen
    );
    gateway.no_raw_responses()?;
    let outcome = sipp_outcome(sipp).await?;
    ensure!(outcome.success(), "sipp UAS failed:\n{}", outcome.report());
    gateway.driver.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn driver_reports_the_callees_bye() -> Result<()> {
    let mut gateway = Gateway::start(None).await?;
    let handle = gateway.driver.handle();
    let sdp = "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n\
        Content-Type: application/sdp\n";
    let answer_sdp = "\nv=0\no=sipp 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\n\
        m=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000";
    let answer = uas_response("200 OK", sdp).replace("\n\n]]>", &format!("\n{answer_sdp}\n\n]]>"));
    let bye = r#"  <recv request="ACK"/>
  <pause milliseconds="200"/>
  <send retrans="500"><![CDATA[
BYE sip:gateway@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:hangs.up@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: <sip:gateway@[remote_ip]>;tag=[$their_tag]
[last_Call-ID:]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>"#;
    let scenario = uas(&format!("{answer}{bye}"));
    let (callee, sipp) = start_sipp(scenario, false, handle.local_addr()).await?;
    let target = format!("sip:hangs.up@{callee}");
    let call = handle
        .dial(target, callee, Transport::Udp, OFFER, Vec::new())
        .await?;
    let ended = |seen: &[Event]| {
        seen.iter().any(|e| {
            matches!(
                e,
                Event::Dial(ClientEvent::Ended { .. } | ClientEvent::Failed { .. })
            )
        })
    };
    if let Err(e) = gateway.until(ended).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let dial = gateway.dial_events();
    let answered = matches!(dial[..], [ClientEvent::Answered { sdp: Some(_), .. }, _]);
    let reason = ClientEndReason::RemoteBye;
    let want = ClientEvent::Ended {
        call_id: call,
        reason,
    };
    ensure!(answered && dial.last() == Some(&&want), "{dial:?}");
    gateway.no_raw_responses()?;
    let outcome = sipp_outcome(sipp).await?;
    ensure!(
        outcome.success(),
        "sipp never got our 200 to its BYE:\n{}",
        outcome.report()
    );
    gateway.driver.shutdown().await;
    Ok(())
}

/// Settings for a registration with sipp's registrar; our contact is derived
/// from the driver's address.
fn register_settings(registrar: SocketAddr) -> RegisterConfig {
    RegisterConfig {
        registrar,
        contact: String::new(),
        ..registration_config(registrar, PASSWORD)
    }
}

fn registered(expires: u32) -> impl Fn(&[Event]) -> bool {
    move |seen| {
        let want = Event::Registration(RegisterEvent::Registered { expires });
        seen.iter().filter(|e| **e == want).count() >= 1
    }
}

#[tokio::test]
async fn driver_registers_at_start_and_unregisters_at_shutdown() -> Result<()> {
    // The registrar answers wherever REGISTER comes from; sipp only wants a target.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
    let (registrar, sipp) = start_sipp(registrar_scenario(PASSWORD), false, nowhere).await?;
    let mut gateway = Gateway::start(Some(register_settings(registrar))).await?;
    let handle = gateway.driver.handle();
    if let Err(e) = gateway.until(registered(120)).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    ensure!(handle.registered(), "handle does not say registered");
    let Gateway {
        driver, mut events, ..
    } = gateway;
    driver.shutdown().await;
    let mut after = Vec::new();
    while let Some(event) = events.recv().await {
        after.push(event);
    }
    let unregistered = Event::Registration(RegisterEvent::Unregistered);
    ensure!(
        after == [unregistered],
        "shutdown did not unregister: {after:?}"
    );
    ensure!(!handle.registered());
    ensure!(handle.unregister().await == Err(CommandError::Stopped));
    let outcome = sipp_outcome(sipp).await?;
    ensure!(
        outcome.success(),
        "sipp registrar failed:\n{}",
        outcome.report()
    );
    let log = messages_log(&outcome);
    ensure!(
        log.matches("SIP/2.0 200 OK").count() == 2 && !log.contains("403 Forbidden"),
        "sipp did not accept both authenticated REGISTERs:\n{}",
        outcome.report()
    );
    Ok(())
}

#[tokio::test]
async fn driver_registers_again_with_a_restarted_registrar() -> Result<()> {
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
    // The first registrar grants 4 s (refresh after 2 s) and exits.
    let first = registrar("first", PASSWORD, 4, false);
    let (registrar_addr, sipp) = start_sipp(first, false, nowhere).await?;
    let port = registrar_addr.port();
    let mut gateway = Gateway::start(Some(register_settings(registrar_addr))).await?;
    let handle = gateway.driver.handle();
    if let Err(e) = gateway.until(registered(4)).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let outcome = sipp_outcome(sipp).await?;
    ensure!(
        outcome.success(),
        "first registrar failed:\n{}",
        outcome.report()
    );
    let registered_at = Instant::now();

    // The second one, on the same port, forgot us: it challenges the refresh anew.
    let second = registrar("second", PASSWORD, 4, true);
    let (_, sipp) = start_sipp_at(port, second, false, nowhere, Transport::Udp).await?;
    let twice = |seen: &[Event]| {
        let want = Event::Registration(RegisterEvent::Registered { expires: 4 });
        seen.iter().filter(|e| **e == want).count() == 2
    };
    if let Err(e) = gateway.until(twice).await {
        return Err(with_sipp_report(e, sipp).await);
    }
    let refreshed_after = registered_at.elapsed();
    ensure!(
        refreshed_after > Duration::from_millis(1500) && refreshed_after < Duration::from_secs(4),
        "refresh after {refreshed_after:?}, expected about 2 s"
    );
    let registrations = gateway
        .seen
        .iter()
        .filter(|e| matches!(e, Event::Registration(_)));
    ensure!(
        registrations.count() == 2,
        "unexpected events: {:?}",
        gateway.seen
    );
    ensure!(handle.registered());
    handle.unregister().await?;
    ensure!(!handle.registered());
    handle.unregister().await?;
    let outcome = sipp_outcome(sipp).await?;
    ensure!(
        outcome.success(),
        "second registrar failed:\n{}",
        outcome.report()
    );
    let log = messages_log(&outcome);
    ensure!(
        log.contains("nonce=\"first\"") && log.contains("nonce=\"second\""),
        "the refresh did not reuse the old challenge, then answer the new:\n{}",
        outcome.report()
    );
    gateway.driver.shutdown().await;
    Ok(())
}
