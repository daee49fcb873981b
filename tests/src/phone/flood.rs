//! Overload and garbage for the gateway's robustness tests: a sipp caller
//! that tries again after 503 as a real phone does, and a bare UDP prober
//! for hand-made (and broken) SIP requests.
//!
//! Contract:
//! - [`retrying_dial_in`] builds a sipp UAC scenario (XML for
//!   `sipp::Scenario::Xml`; sipp 3.6.1 over UDP). The INVITE carries the
//!   room header and a PCMU offer at sipp's media port. A 503 (after a 100
//!   or not) is ACKed in the INVITE's transaction (same branch), then after
//!   [`Retrying::retry_pause`] a new INVITE goes out: same Call-ID and
//!   From-tag, a new branch (`...-try<n>`, counted in a sipp variable) and
//!   the next CSeq. A 200 is ACKed at once, [`Retrying::tone`] plays,
//!   [`Retrying::talk`] later the caller sends BYE and expects 200. Nothing
//!   bounds the tries but sipp's `-timeout`. ACK and BYE take the To header
//!   of the last response (`[last_To:]`), so the tag of an earlier 503
//!   never leaks into the dialog.
//! - [`SipProbe`] is a UDP socket on loopback that sends datagrams as they
//!   are (valid or not) and reads responses, parsed only as far as
//!   [`SipResponse`] needs; datagrams that are not SIP responses are
//!   skipped. [`invite`], [`options`], [`ack`] and [`pcmu_offer`] build
//!   well-formed requests (CRLF lines, a correct Content-Length) to send
//!   whole, cut or spoiled.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::scenario::ROOM_HEADER;

/// A caller for [`retrying_dial_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrying {
    /// The room header's value (text sipp can carry: no `[`, `]`, line breaks).
    pub room: String,
    /// From's user part (also the display name).
    pub caller_user: String,
    /// Played once the call is answered (absolute path; see `write_tone_pcap`).
    pub tone: PathBuf,
    /// From the answer to the caller's BYE.
    pub talk: Duration,
    /// Between a 503 and the next INVITE.
    pub retry_pause: Duration,
}

/// One caller that retries after 503 (see the module contract).
///
/// # Panics
///
/// On text sipp cannot carry, or a relative tone path.
pub fn retrying_dial_in(opts: &Retrying) -> String {
    for text in [&opts.room, &opts.caller_user] {
        assert!(
            !text.contains(['[', ']', '\r', '\n', '"', '<', '>', '&']),
            "{text:?} cannot go into the scenario verbatim"
        );
    }
    assert!(opts.tone.is_absolute(), "{:?} is not absolute", opts.tone);
    let tone = opts.tone.to_string_lossy();
    assert!(!tone.contains(['"', '<', '>', '&']), "{tone:?}");
    let user = &opts.caller_user;
    let from = format!(
        "From: \"{user}\" <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
    );
    let contact = format!("Contact: <sip:{user}@[local_ip]:[local_port]>");
    let branch = "z9hG4bK-[pid]-[call_number]-try[$try]";
    let in_dialog = |method: &str, retrans: &str| {
        format!(
            "<send{retrans}><![CDATA[\n\
             {method} [next_url] SIP/2.0\n\
             Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]\n\
             [routes]\n\
             {from}\n\
             [last_To:]\n\
             Call-ID: [call_id]\n\
             CSeq: [cseq] {method}\n\
             {contact}\n\
             Max-Forwards: 70\n\
             Content-Length: 0\n\
             \n\
             ]]></send>\n"
        )
    };
    let body = format!(
        "<nop><action><assign assign_to=\"try\" value=\"1\"/></action></nop>\n\
         <label id=\"invite\"/>\n\
         <send retrans=\"500\"><![CDATA[\n\
         INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n\
         Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch={branch}\n\
         {from}\n\
         To: <sip:[service]@[remote_ip]:[remote_port]>\n\
         Call-ID: [call_id]\n\
         CSeq: [cseq] INVITE\n\
         {contact}\n\
         Max-Forwards: 70\n\
         {ROOM_HEADER}: {room}\n\
         Content-Type: application/sdp\n\
         Content-Length: [len]\n\
         \n\
         v=0\n\
         o={user} 1 1 IN IP[local_ip_type] [local_ip]\n\
         s=sipp\n\
         c=IN IP[media_ip_type] [media_ip]\n\
         t=0 0\n\
         m=audio [media_port] RTP/AVP 0\n\
         a=rtpmap:0 PCMU/8000\n\
         a=ptime:20\n\
         a=sendrecv\n\
         ]]></send>\n\
         <recv response=\"100\" optional=\"true\"/>\n\
         <recv response=\"503\" optional=\"true\" next=\"refused\"/>\n\
         <recv response=\"200\" rtd=\"true\" rrs=\"true\"/>\n\
         {ack}\
         <nop><action><exec play_pcap_audio=\"{tone}\"/></action></nop>\n\
         <pause milliseconds=\"{talk}\"/>\n\
         {bye}\
         <recv response=\"200\" next=\"done\"/>\n\
         <label id=\"refused\"/>\n\
         <send><![CDATA[\n\
         ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n\
         Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch={branch}\n\
         {from}\n\
         [last_To:]\n\
         Call-ID: [call_id]\n\
         CSeq: [cseq] ACK\n\
         Max-Forwards: 70\n\
         Content-Length: 0\n\
         \n\
         ]]></send>\n\
         <nop><action><add assign_to=\"try\" value=\"1\"/></action></nop>\n\
         <pause milliseconds=\"{retry}\" next=\"invite\"/>\n\
         <label id=\"done\"/>\n",
        room = opts.room,
        ack = in_dialog("ACK", ""),
        bye = in_dialog("BYE", " retrans=\"500\""),
        talk = opts.talk.as_millis().max(1),
        retry = opts.retry_pause.as_millis().max(1),
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n\
         <!DOCTYPE scenario SYSTEM \"sipp.dtd\">\n\
         <scenario name=\"retrying dial-in\">\n{body}</scenario>\n"
    )
}

/// A SIP response as a [`SipProbe`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipResponse {
    pub status: u16,
    /// (lower-case name, value), in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SipResponse {
    /// Reads a response (`SIP/2.0 NNN ...`, headers, blank line, body).
    pub fn parse(data: &[u8]) -> Option<SipResponse> {
        let text = String::from_utf8_lossy(data);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()?
            .strip_prefix("SIP/2.0 ")?
            .get(..3)?
            .parse()
            .ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(SipResponse {
            status,
            headers,
            body: body.to_string(),
        })
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `c=IN IP4` address and `m=audio` port of an SDP body.
    pub fn sdp_audio(&self) -> Option<SocketAddr> {
        let ip = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))?;
        let port = self.body.lines().find_map(|l| l.strip_prefix("m=audio "))?;
        let port = port.split(' ').next()?;
        format!("{}:{port}", ip.trim()).parse().ok()
    }
}

/// A loopback UDP socket that talks SIP to one target (see the module
/// contract).
#[derive(Debug)]
pub struct SipProbe {
    socket: UdpSocket,
    target: SocketAddr,
}

impl SipProbe {
    /// Binds `127.0.0.1:0`.
    pub async fn bind(target: SocketAddr) -> io::Result<SipProbe> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Ok(SipProbe { socket, target })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound UDP socket has an address")
    }

    /// Sends one datagram to the target as it is.
    pub async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        self.socket.send_to(datagram, self.target).await.map(|_| ())
    }

    /// The next SIP response within `wait`.
    pub async fn response(&self, wait: Duration) -> Option<SipResponse> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 65_535];
        loop {
            let received = tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf));
            let (n, _) = received.await.ok()?.ok()?;
            if let Some(response) = SipResponse::parse(&buf[..n]) {
                return Some(response);
            }
        }
    }

    /// The next final (2xx-6xx) response whose top Via names `branch`,
    /// within `wait`; provisional ones and others are skipped.
    pub async fn final_response(&self, branch: &str, wait: Duration) -> Option<SipResponse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let response = self.response(left).await?;
            let ours = response
                .header("via")
                .is_some_and(|via| via.contains(&format!("branch={branch}")));
            if ours && response.status >= 200 {
                return Some(response);
            }
        }
    }

    /// Whatever responses come within `wait`.
    pub async fn responses(&self, wait: Duration) -> Vec<SipResponse> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.response(left).await {
                Some(response) => out.push(response),
                None => return out,
            }
        }
    }
}

/// A PCMU-only SDP offer with media at `media`.
pub fn pcmu_offer(media: SocketAddr) -> String {
    format!(
        "v=0\r\n\
         o=probe 1 1 IN IP4 {ip}\r\n\
         s=probe\r\n\
         c=IN IP4 {ip}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=sendrecv\r\n",
        ip = media.ip(),
        port = media.port()
    )
}

/// An INVITE from `from` to `to` (Call-ID `call_id`, top Via branch
/// `z9hG4bK` + `branch`, CSeq 1) with `extra` header lines and `sdp` as
/// `application/sdp` (none when empty).
pub fn invite(
    from: SocketAddr,
    to: SocketAddr,
    call_id: &str,
    branch: &str,
    extra: &[String],
    sdp: &str,
) -> String {
    let mut headers: Vec<String> = extra.to_vec();
    if !sdp.is_empty() {
        headers.push("Content-Type: application/sdp".into());
    }
    request("INVITE", from, to, call_id, branch, 1, "", &headers, sdp)
}

/// An OPTIONS outside any dialog.
pub fn options(from: SocketAddr, to: SocketAddr, call_id: &str, branch: &str) -> String {
    request("OPTIONS", from, to, call_id, branch, 1, "", &[], "")
}

/// The ACK of a non-2xx final `response` to an [`invite`] with the same
/// arguments: same branch and CSeq number, the response's To (with its tag).
pub fn ack(
    from: SocketAddr,
    to: SocketAddr,
    call_id: &str,
    branch: &str,
    response: &SipResponse,
) -> String {
    let to_header = response.header("to").unwrap_or_default();
    request("ACK", from, to, call_id, branch, 1, to_header, &[], "")
}

#[allow(clippy::too_many_arguments)]
fn request(
    method: &str,
    from: SocketAddr,
    to: SocketAddr,
    call_id: &str,
    branch: &str,
    cseq: u32,
    to_header: &str,
    extra: &[String],
    body: &str,
) -> String {
    let to_header = if to_header.is_empty() {
        format!("<sip:gateway@{to}>")
    } else {
        to_header.to_string()
    };
    let mut out = format!(
        "{method} sip:gateway@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};rport;branch=z9hG4bK{branch}\r\n\
         From: \"Probe\" <sip:+15550100@{from}>;tag=probe-{call_id}\r\n\
         To: {to_header}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:+15550100@{from}>\r\n\
         Max-Forwards: 70\r\n"
    );
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_with_their_sdp() {
        let data = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKx\r\n\
                    To: <sip:a@b>;tag=t\r\nContent-Length: 10\r\n\r\n\
                    v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
        let r = SipResponse::parse(data.as_bytes()).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("TO"), Some("<sip:a@b>;tag=t"));
        assert_eq!(r.sdp_audio(), Some("127.0.0.1:4000".parse().unwrap()));
        assert_eq!(SipResponse::parse(b"INVITE sip:a@b SIP/2.0\r\n\r\n"), None);
    }

    #[test]
    fn requests_count_their_body() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let sdp = pcmu_offer(a);
        let text = invite(a, b, "c1", "-1", &["X-Room: r".into()], &sdp);
        assert!(text.starts_with("INVITE sip:gateway@127.0.0.1:2000 SIP/2.0\r\n"));
        assert!(text.contains("X-Room: r\r\nContent-Type: application/sdp\r\n"));
        assert!(text.ends_with(&format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len())));
        let xml = retrying_dial_in(&Retrying {
            room: "board".into(),
            caller_user: "caller".into(),
            tone: "/tmp/tone.pcap".into(),
            talk: Duration::from_secs(2),
            retry_pause: Duration::from_millis(100),
        });
        assert!(xml.contains("<recv response=\"503\" optional=\"true\" next=\"refused\"/>"));
        assert!(xml.contains("<pause milliseconds=\"100\" next=\"invite\"/>"));
        assert!(xml.contains("Jitsi-Conference-Room: board\n"));
    }
}
