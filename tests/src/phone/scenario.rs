//! sipp scenarios (XML text for `sipp::Scenario::Xml`) for calls into the
//! gateway: [`dial_in`], one caller that talks, presses keys and hangs up;
//! [`flood_invites`], many short calls for load.
//!
//! Contract, both builders (sipp 3.6.1 as UAC over UDP):
//! - The INVITE goes to `sip:[service]@[remote_ip]:[remote_port]` (sipp's
//!   `-s`, default `service`) with an SDP offer, its own fixed branch
//!   (`z9hG4bK-[pid]-[call_number]-invite`, so a non-2xx can be ACKed in the
//!   same transaction) and `CSeq: [cseq] INVITE`. 100, 180 and 183 are
//!   optional; the 200 is received with `rtd="true" rrs="true"` and ACKed at
//!   once to `[next_url]` with `[routes]` (the 200's Contact and
//!   Record-Route). BYEs go the same way.
//! - Text put into messages (room, names, extra headers) must not hold `[`,
//!   `]` (sipp keywords), line breaks or `]]>`: the builders panic on them.
//!
//! sipp facts the steps rely on (3.6.1, read from its source; the phone
//! module's end-to-end tests check them against the real binary):
//! - `play_pcap_audio` sends from a *raw* socket (root or CAP_NET_RAW) from
//!   `[media_ip]:[media_port]` to the address in the last SDP received, and
//!   returns at once; the file plays in a thread, paced by its capture
//!   times. Starting another play (a later PlayPcap or Dtmf step) stops the
//!   one still playing; the call's end stops it too.
//! - sipp learns the RTP source port only from a `[media_port]` written on a
//!   line containing `audio`. With [`Media::At`] the SDP names another
//!   address, so the INVITE carries `X-Sipp-Rtp-Source: audio [media_ip]
//!   [media_port]` to teach it (any SIP stack ignores unknown headers).
//! - A request sipp does not expect *now* fails the call: a BYE that comes
//!   during a `<pause>` (a Pause or Dtmf step) is unexpected. Wait for a BYE
//!   with ExpectBye, while audio plays in the background if need be.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::g711::Law;
use super::rtp::dtmf_event;

/// The header naming the meeting a call joins.
pub const ROOM_HEADER: &str = "Jitsi-Conference-Room";
/// Where Debian's sip-tester puts its pcaps.
pub const SIP_TESTER_DIR: &str = "/usr/share/sip-tester";
/// The RTP payload type in every packet of `dtmf_2833_*.pcap`: 101 (checked
/// by a test). sipp plays the bytes as they are, so the gateway sees PT 101
/// whatever `telephone_event` the SDP offered.
///
/// The same goes for the other header fields: all twelve files share SSRC
/// [`DTMF_PCAP_SSRC`], each starts at its own unrelated sequence number and
/// timestamp (`1` at 7984, `#` at 8436, `9` at 8293, `0` at 12080), so
/// keys played one after another jump back and forth in sequence and time
/// within one SSRC. A receiver that drops "old" sequence numbers per SSRC
/// may drop keys. Each key's event reports a duration of 2240 (280 ms) after
/// 140 ms of packets (+320 per packet, 20 ms apart).
pub const DTMF_PCAP_PT: u8 = 101;
/// The SSRC of every packet of `dtmf_2833_*.pcap` (see [`DTMF_PCAP_PT`]).
pub const DTMF_PCAP_SSRC: u32 = 0x0E05_384E;
/// At least the time from the first to the last packet of each
/// `dtmf_2833_*.pcap` (140.0 to 140.2 ms: 10 packets, 7 updates 20 ms apart
/// and the end packet sent 3 times with the same sequence number).
pub const DTMF_PCAP_SPAN: Duration = Duration::from_millis(141);
/// What a Dtmf step gives each key: the pcap's span and a 100 ms gap, so
/// that the next key's play does not cut the end packets off.
pub const DTMF_KEY_TIME: Duration = Duration::from_millis(240);

/// The sip-tester pcap for one DTMF key (`0`-`9`, `*`, `#`).
pub fn dtmf_pcap(key: char) -> Option<PathBuf> {
    let name = match dtmf_event(key)? {
        digit @ 0..=9 => digit.to_string(),
        10 => "star".to_string(),
        11 => "pound".to_string(),
        _ => return None, // A-D: sip-tester has none
    };
    Some(Path::new(SIP_TESTER_DIR).join(format!("dtmf_2833_{name}.pcap")))
}

/// Where the caller's SDP tells the gateway to send RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// sipp's own media socket (`[media_ip]:[media_port]`), which absorbs it.
    Sipp,
    /// Another address, e.g. an `RtpSink`'s.
    At(SocketAddr),
}

/// What the caller does once the call is up (after the ACK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start playing a pcap (absolute path) and go on at once.
    PlayPcap(PathBuf),
    /// Do nothing for a while (any request arriving meanwhile fails the call).
    Pause(Duration),
    /// Play the sip-tester RFC 4733 pcap of each key (`0`-`9`, `*`, `#`),
    /// [`DTMF_KEY_TIME`] apiece.
    Dtmf(String),
    /// Send BYE and expect 200. Only pauses may follow.
    SendBye,
    /// Wait up to this long for a BYE and answer 200 (the call fails when
    /// none comes). Only pauses may follow.
    ExpectBye(Duration),
    /// End the scenario without BYE, as a caller whose phone vanished; must
    /// be last. Audio still playing stops.
    HangUpSilently,
}

/// A caller for [`dial_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialIn {
    /// The room header's value; `None` leaves the header out.
    pub room: Option<String>,
    /// Default [`ROOM_HEADER`].
    pub room_header: String,
    /// From's display name; default `sipp caller`.
    pub caller_name: String,
    /// From's and Contact's user part; default `sipp`.
    pub caller_user: String,
    /// Default [`Media::Sipp`].
    pub media: Media,
    /// Offered in this order; default PCMU, PCMA.
    pub codecs: Vec<Law>,
    /// telephone-event payload type offered; default `Some(101)`.
    pub telephone_event: Option<u8>,
    /// Further INVITE header lines (`Name: value`).
    pub extra_headers: Vec<String>,
    pub steps: Vec<Step>,
}

impl Default for DialIn {
    fn default() -> Self {
        DialIn {
            room: None,
            room_header: ROOM_HEADER.to_string(),
            caller_name: "sipp caller".to_string(),
            caller_user: "sipp".to_string(),
            media: Media::Sipp,
            codecs: vec![Law::Pcmu, Law::Pcma],
            telephone_event: Some(DTMF_PCAP_PT),
            extra_headers: Vec::new(),
            steps: Vec::new(),
        }
    }
}

/// Panics when `text` cannot go into a sipp message verbatim.
fn check_text(what: &str, text: &str) {
    assert!(
        !text.contains(['[', ']', '\r', '\n']),
        "{what} {text:?}: sipp would read [..] as a keyword; no line breaks either"
    );
}

/// `text` for an XML attribute value.
fn xml_attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Lines every request of the dialog carries after the request line.
struct Party {
    from: String,
    contact: String,
}

impl Party {
    fn new(name: &str, user: &str) -> Party {
        check_text("caller name", name);
        check_text("caller user", user);
        let name = name.replace('\\', "\\\\").replace('"', "\\\"");
        Party {
            from: format!(
                "From: \"{name}\" <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
            ),
            contact: format!("Contact: <sip:{user}@[local_ip]:[local_port]>"),
        }
    }
}

const TO: &str = "To: <sip:[service]@[remote_ip]:[remote_port]>";
const INVITE_BRANCH: &str = "z9hG4bK-[pid]-[call_number]-invite";

fn xml_document(name: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n\
         <!DOCTYPE scenario SYSTEM \"sipp.dtd\">\n\
         <scenario name=\"{name}\">\n{body}</scenario>\n"
    )
}

/// The INVITE with `headers` (complete lines) and `sdp`, and the optional
/// provisional responses.
fn invite(party: &Party, headers: &[String], sdp: &str) -> String {
    let mut extra = String::new();
    for line in headers {
        extra.push_str(line);
        extra.push('\n');
    }
    format!(
        "<send retrans=\"500\"><![CDATA[\n\
         INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n\
         Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch={INVITE_BRANCH}\n\
         {from}\n\
         {TO}\n\
         Call-ID: [call_id]\n\
         CSeq: [cseq] INVITE\n\
         {contact}\n\
         Max-Forwards: 70\n\
         {extra}\
         Content-Type: application/sdp\n\
         Content-Length: [len]\n\
         \n\
         {sdp}\
         ]]></send>\n\
         <recv response=\"100\" optional=\"true\"/>\n\
         <recv response=\"180\" optional=\"true\"/>\n\
         <recv response=\"183\" optional=\"true\"/>\n",
        from = party.from,
        contact = party.contact,
    )
}

/// A request inside the dialog set up by the 200 (ACK, BYE).
fn in_dialog(party: &Party, method: &str, retrans: bool) -> String {
    let retrans = if retrans { " retrans=\"500\"" } else { "" };
    format!(
        "<send{retrans}><![CDATA[\n\
         {method} [next_url] SIP/2.0\n\
         Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]\n\
         [routes]\n\
         {from}\n\
         {TO}[peer_tag_param]\n\
         Call-ID: [call_id]\n\
         CSeq: [cseq] {method}\n\
         {contact}\n\
         Max-Forwards: 70\n\
         Content-Length: 0\n\
         \n\
         ]]></send>\n",
        from = party.from,
        contact = party.contact,
    )
}

/// The 200 and its ACK.
fn answered(party: &Party) -> String {
    format!(
        "<recv response=\"200\" rtd=\"true\" rrs=\"true\"/>\n{}",
        in_dialog(party, "ACK", false)
    )
}

fn pause(d: Duration) -> String {
    format!("<pause milliseconds=\"{}\"/>\n", d.as_millis().max(1))
}

fn play(path: &Path) -> String {
    format!(
        "<nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n",
        xml_attr(&path.to_string_lossy())
    )
}

fn room_line(header: &str, room: &Option<String>) -> Option<String> {
    room.as_ref().map(|room| {
        check_text("room header", header);
        check_text("room", room);
        format!("{header}: {room}")
    })
}

/// The SDP offer for `opts`.
fn offer_sdp(opts: &DialIn) -> String {
    let (c, port) = match opts.media {
        Media::Sipp => (
            "IN IP[media_ip_type] [media_ip]".to_string(),
            "[media_port]".to_string(),
        ),
        Media::At(addr) => {
            let family = if addr.is_ipv4() { 4 } else { 6 };
            (
                format!("IN IP{family} {}", addr.ip()),
                addr.port().to_string(),
            )
        }
    };
    let mut pts: Vec<String> = opts
        .codecs
        .iter()
        .map(|law| law.payload_type().to_string())
        .collect();
    let mut attributes = String::new();
    for law in &opts.codecs {
        attributes.push_str(&format!(
            "a=rtpmap:{} {}/8000\n",
            law.payload_type(),
            law.encoding_name()
        ));
    }
    if let Some(pt) = opts.telephone_event {
        pts.push(pt.to_string());
        attributes.push_str(&format!(
            "a=rtpmap:{pt} telephone-event/8000\na=fmtp:{pt} 0-16\n"
        ));
    }
    format!(
        "v=0\n\
         o={user} 1 1 IN IP[local_ip_type] [local_ip]\n\
         s=sipp\n\
         c={c}\n\
         t=0 0\n\
         m=audio {port} RTP/AVP {pts}\n\
         {attributes}\
         a=ptime:20\n\
         a=sendrecv\n",
        user = opts.caller_user,
        pts = pts.join(" "),
    )
}

/// A caller that dials in, is answered, then runs `opts.steps` (see the
/// module contract).
///
/// # Panics
///
/// On text sipp cannot carry (see the module contract), no codec, an
/// unknown DTMF key, a relative pcap path, a step after
/// [`Step::HangUpSilently`], or a step other than a pause after a BYE.
pub fn dial_in(opts: &DialIn) -> String {
    assert!(!opts.codecs.is_empty(), "dial_in needs at least one codec");
    let party = Party::new(&opts.caller_name, &opts.caller_user);
    let mut headers: Vec<String> = room_line(&opts.room_header, &opts.room)
        .into_iter()
        .collect();
    for line in &opts.extra_headers {
        check_text("extra header", line);
        headers.push(line.clone());
    }
    if let Media::At(_) = opts.media {
        headers.push("X-Sipp-Rtp-Source: audio [media_ip] [media_port]".to_string());
    }
    let mut body = invite(&party, &headers, &offer_sdp(opts));
    body.push_str(&answered(&party));

    let mut dialog_over = false;
    for (i, step) in opts.steps.iter().enumerate() {
        assert!(
            !dialog_over || matches!(step, Step::Pause(_)),
            "dial_in step {i} ({step:?}) comes after the call ended"
        );
        match step {
            Step::PlayPcap(path) => {
                assert!(path.is_absolute(), "pcap path {path:?} is not absolute");
                body.push_str(&play(path));
            }
            Step::Pause(d) => body.push_str(&pause(*d)),
            Step::Dtmf(keys) => {
                for key in keys.chars() {
                    let path = dtmf_pcap(key)
                        .unwrap_or_else(|| panic!("no sip-tester DTMF pcap for {key:?}"));
                    body.push_str(&play(&path));
                    body.push_str(&pause(DTMF_KEY_TIME));
                }
            }
            Step::SendBye => {
                body.push_str(&in_dialog(&party, "BYE", true));
                body.push_str("<recv response=\"200\"/>\n");
                dialog_over = true;
            }
            Step::ExpectBye(wait) => {
                body.push_str(&format!(
                    "<recv request=\"BYE\" timeout=\"{}\"/>\n\
                     <send><![CDATA[\n\
                     SIP/2.0 200 OK\n\
                     [last_Via:]\n\
                     [last_From:]\n\
                     [last_To:]\n\
                     [last_Call-ID:]\n\
                     [last_CSeq:]\n\
                     {contact}\n\
                     Content-Length: 0\n\
                     \n\
                     ]]></send>\n",
                    wait.as_millis().max(1),
                    contact = party.contact,
                ));
                dialog_over = true;
            }
            Step::HangUpSilently => {
                assert!(
                    i + 1 == opts.steps.len(),
                    "HangUpSilently must be the last step"
                );
                body.push_str("<!-- the caller vanishes: no BYE -->\n");
            }
        }
    }
    xml_document("dial-in", &body)
}

/// Many calls for [`flood_invites`], run with `phone::run_calls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flood {
    /// The room header's value; `None` leaves the header out.
    pub room: Option<String>,
    /// Default [`ROOM_HEADER`].
    pub room_header: String,
    /// From's user part; default `load`.
    pub caller_user: String,
    /// How long an answered call stays up before its BYE; default 100 ms.
    pub hold: Duration,
    /// Final responses accepted (and ACKed) instead of 200; default 404,
    /// 480, 486, 503.
    pub rejections: Vec<u16>,
}

impl Default for Flood {
    fn default() -> Self {
        Flood {
            room: None,
            room_header: ROOM_HEADER.to_string(),
            caller_user: "load".to_string(),
            hold: Duration::from_millis(100),
            rejections: vec![404, 480, 486, 503],
        }
    }
}

/// One call of a load run: INVITE (PCMU to sipp's media port), then either
/// 200, ACK, `hold`, BYE, 200; or one of `rejections` and its ACK. Both ends
/// count as a successful call. In `Counts`, the first `200` column is the
/// INVITE's answer and the second the BYE's.
///
/// # Panics
///
/// On a room or user sipp cannot carry, or a rejection outside 300..=699.
pub fn flood_invites(opts: &Flood) -> String {
    let party = Party::new(&opts.caller_user, &opts.caller_user);
    let headers: Vec<String> = room_line(&opts.room_header, &opts.room)
        .into_iter()
        .collect();
    let sdp = offer_sdp(&DialIn {
        caller_user: opts.caller_user.clone(),
        codecs: vec![Law::Pcmu],
        telephone_event: None,
        ..DialIn::default()
    });
    let mut body = invite(&party, &headers, &sdp);
    for code in &opts.rejections {
        assert!((300..700).contains(code), "{code} is not a final rejection");
        body.push_str(&format!(
            "<recv response=\"{code}\" optional=\"true\" next=\"rejected\"/>\n"
        ));
    }
    body.push_str(&answered(&party));
    body.push_str(&pause(opts.hold));
    body.push_str(&in_dialog(&party, "BYE", true));
    body.push_str("<recv response=\"200\" next=\"done\"/>\n");
    // The ACK of a non-2xx answer belongs to the INVITE transaction: same
    // branch, same CSeq number ([cseq] moves only on new requests).
    body.push_str(&format!(
        "<label id=\"rejected\"/>\n\
         <send><![CDATA[\n\
         ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n\
         Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch={INVITE_BRANCH}\n\
         {from}\n\
         {TO}[peer_tag_param]\n\
         Call-ID: [call_id]\n\
         CSeq: [cseq] ACK\n\
         Max-Forwards: 70\n\
         Content-Length: 0\n\
         \n\
         ]]></send>\n\
         <label id=\"done\"/>\n",
        from = party.from,
    ));
    xml_document("flood", &body)
}

#[cfg(test)]
mod tests {
    use super::super::pcap::read_rtp_pcap;
    use super::*;

    #[test]
    fn sip_tester_dtmf_pcaps_carry_pt_101_within_the_key_time() {
        for key in "0123456789*#".chars() {
            let path = dtmf_pcap(key).unwrap();
            let packets = read_rtp_pcap(&path).unwrap();
            assert_eq!(packets.len(), 10, "{path:?}");
            assert!(packets.iter().all(|p| p.payload_type == DTMF_PCAP_PT));
            assert!(packets.iter().all(|p| p.ssrc == DTMF_PCAP_SSRC));
            assert!(packets
                .iter()
                .all(|p| p.payload[0] == dtmf_event(key).unwrap()));
            let span = packets.last().unwrap().at;
            assert!(
                span <= DTMF_PCAP_SPAN && DTMF_PCAP_SPAN < DTMF_KEY_TIME,
                "{path:?} spans {span:?}"
            );
            assert!(packets[0].marker && packets.last().unwrap().payload[1] & 0x80 != 0);
        }
        assert_eq!(dtmf_pcap('A'), None);
    }

    #[test]
    fn a_sink_address_goes_into_the_sdp_and_sipp_still_learns_its_port() {
        let xml = dial_in(&DialIn {
            room: Some("standup".into()),
            media: Media::At("127.0.0.1:40002".parse().unwrap()),
            codecs: vec![Law::Pcma],
            steps: vec![Step::Dtmf("5#".into()), Step::SendBye],
            ..DialIn::default()
        });
        for line in [
            "Jitsi-Conference-Room: standup\n",
            "X-Sipp-Rtp-Source: audio [media_ip] [media_port]\n",
            "c=IN IP4 127.0.0.1\n",
            "m=audio 40002 RTP/AVP 8 101\n",
            "a=rtpmap:8 PCMA/8000\n",
            "a=rtpmap:101 telephone-event/8000\n",
            "<recv response=\"200\" rtd=\"true\" rrs=\"true\"/>\n<send><![CDATA[\nACK [next_url] SIP/2.0\n",
            "play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_5.pcap\"",
            "play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_pound.pcap\"",
            "<pause milliseconds=\"240\"/>\n",
            "BYE [next_url] SIP/2.0\n",
            "CSeq: [cseq] BYE\n",
        ] {
            assert!(xml.contains(line), "no {line:?} in\n{xml}");
        }
        assert!(!xml.contains("[media_port] RTP/AVP"), "{xml}");
    }

    #[test]
    fn sipp_media_and_defaults_offer_both_laws_and_events() {
        let xml = dial_in(&DialIn::default());
        assert!(
            xml.contains("m=audio [media_port] RTP/AVP 0 8 101\n"),
            "{xml}"
        );
        assert!(xml.contains("From: \"sipp caller\" <sip:sipp@[local_ip]:[local_port]>"));
        assert!(!xml.contains(ROOM_HEADER), "{xml}");
        assert!(!xml.contains("X-Sipp-Rtp-Source"), "{xml}");
    }

    #[test]
    fn flood_branches_on_every_rejection_and_acks_in_the_invite_transaction() {
        let xml = flood_invites(&Flood {
            room: Some("load".into()),
            ..Flood::default()
        });
        for code in [404, 480, 486, 503] {
            let line = format!("<recv response=\"{code}\" optional=\"true\" next=\"rejected\"/>");
            assert!(xml.contains(&line), "{xml}");
        }
        let rejected = xml.split("<label id=\"rejected\"/>").nth(1).unwrap();
        assert!(rejected.contains(&format!("branch={INVITE_BRANCH}\n")));
        assert!(rejected.contains("CSeq: [cseq] ACK\n"));
    }

    #[test]
    #[should_panic(expected = "keyword")]
    fn rooms_with_brackets_are_refused() {
        dial_in(&DialIn {
            room: Some("room[1]".into()),
            ..DialIn::default()
        });
    }

    #[test]
    #[should_panic(expected = "last step")]
    fn nothing_may_follow_a_silent_hang_up() {
        dial_in(&DialIn {
            steps: vec![Step::HangUpSilently, Step::Pause(Duration::from_millis(1))],
            ..DialIn::default()
        });
    }
}
