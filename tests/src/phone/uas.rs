//! sipp as the callee of a dial-out: a trunk or phone that rings, answers
//! (or refuses), plays a tone and waits for the caller's BYE.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::sipp::{self, Outcome, Scenario};

/// How the callee answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 180, then 200 with SDP (media to `media`, sent from sipp's own RTP
    /// port), then plays `pcap` and waits up to `wait_bye` for our BYE.
    Accept {
        media: SocketAddr,
        pcap: std::path::PathBuf,
        wait_bye: Duration,
    },
    /// 180, then this final status (486 busy, 603 decline, ...).
    Refuse(u16),
}

/// The callee's scenario.
pub fn callee(answer: &Answer) -> String {
    let head = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee">
  <recv request="INVITE" crlf="true" rrs="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="500"/>
"#;
    let body = match answer {
        Answer::Refuse(status) => format!(
            r#"  <send>
    <![CDATA[
      SIP/2.0 {status} Refused
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
"#
        ),
        Answer::Accept {
            media,
            pcap,
            wait_bye,
        } => format!(
            r#"  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      X-Sipp-Rtp-Source: audio [media_ip] [media_port]
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callee 1 1 IN IP4 {ip}
      s=-
      c=IN IP4 {ip}
      t=0 0
      m=audio {port} RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=ptime:20
    ]]>
  </send>
  <recv request="ACK"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE" timeout="{bye}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"#,
            ip = media.ip(),
            port = media.port(),
            pcap = pcap.display(),
            bye = wait_bye.as_millis(),
        ),
    };
    format!("{head}{body}</scenario>\n")
}

/// Starts sipp as a callee on a free loopback port and waits until it has
/// bound it; returns its address and the run (ended by the scenario, or by
/// `deadline`). Another test process may take the port first: then it
/// tries another.
pub async fn start_callee(
    scenario: String,
    deadline: Duration,
) -> io::Result<(SocketAddr, JoinHandle<io::Result<Outcome>>)> {
    let mut last = None;
    for _ in 0..3 {
        let port = free_udp_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let xml = scenario.clone();
        let task = tokio::spawn(async move {
            let port = port.to_string();
            // sipp takes the last -p given.
            sipp::run(Scenario::Xml(&xml), addr, &["-p", &port], deadline).await
        });
        let bound_by = Instant::now() + Duration::from_secs(5);
        while std::net::UdpSocket::bind(addr).is_ok()
            && !task.is_finished()
            && Instant::now() < bound_by
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !task.is_finished() && std::net::UdpSocket::bind(addr).is_err() {
            return Ok((addr, task));
        }
        task.abort();
        last = Some(io::Error::other(format!("sipp did not bind {addr}")));
    }
    Err(last.unwrap_or_else(|| io::Error::other("sipp did not start")))
}

fn free_udp_port() -> io::Result<u16> {
    for _ in 0..20 {
        let port = crate::free_port()?;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no loopback port free for UDP"))
}

/// sipp as a registrar: 401 with a qop=auth challenge (`nonce`), then
/// `verifyauth` of the answer for `user` against `password` (200 with
/// `expires`, or 403); with `unregister`, then the un-REGISTER (`Expires:
/// 0`, verified again) answered 200. Without it, it ends after its 200.
pub fn registrar(
    user: &str,
    nonce: &str,
    password: &str,
    expires: u32,
    unregister: bool,
) -> String {
    let head = "[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n\
        [last_Call-ID:]\n[last_CSeq:]";
    let unregister = match unregister {
        false => String::new(),
        true => format!(
            r#"  <recv request="REGISTER">
    <action>
      <ereg regexp="Expires: 0[^0-9]" search_in="msg" check_it="true" assign_to="zero"/>
      <verifyauth assign_to="again" username="{user}" password="{password}"/>
    </action>
  </recv>
  <nop hide="true" test="again" next="removed"/>
  <send next="end"><![CDATA[
SIP/2.0 403 Forbidden
{head}
Content-Length: 0

]]></send>
  <label id="removed"/>
  <send><![CDATA[
SIP/2.0 200 OK
{head}
Content-Length: 0

]]>
    <action>
      <log message="binding removed ([$zero])"/>
    </action>
  </send>
"#
        ),
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="challenging registrar">
  <recv request="REGISTER"/>
  <send><![CDATA[
SIP/2.0 401 Unauthorized
{head}
WWW-Authenticate: Digest realm="sipp.example.com", nonce="{nonce}", qop="auth", algorithm=MD5
Content-Length: 0

]]></send>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="authvalid" username="{user}" password="{password}"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good"/>
  <send next="end"><![CDATA[
SIP/2.0 403 Forbidden
{head}
Content-Length: 0

]]></send>
  <label id="good"/>
  <send><![CDATA[
SIP/2.0 200 OK
{head}
[last_Contact:];expires={expires}
Content-Length: 0

]]></send>
{unregister}  <label id="end"/>
</scenario>
"#
    )
}
