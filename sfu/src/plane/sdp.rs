//! The session description of one participant's session, written and read
//! by the plane itself (str0m runs in its direct API, see `endpoint`).
//!
//! Contract:
//! - **The offer** ([`write_offer`]) is ours: ICE-lite with one host
//!   candidate, `a=setup:actpass`, rtcp-mux, BUNDLE of every line, the codecs
//!   and header extensions below (the same numbers str0m is configured with),
//!   one `a=ssrc` (plus an `FID` group for video) per line we send on, and
//!   on the participant's own video line (recvonly: we never send there)
//!   the receive side of a three-layer simulcast
//!   (`a=rid:l recv`, `m`, `h`; `a=simulcast:recv l;m;h`, lowest first).
//!   Mids are the contract's names (`audio`, `video`, `audio_N`, `video_N`: what
//!   str0m's `Mid` holds, so the MID header extension on the wire matches).
//! - **The answer** ([`read_answer`]) gives what the session needs: ICE
//!   credentials, the DTLS fingerprint and role, and per m-line (matched to
//!   the offer by position, as RFC 3264 orders them) whether it was
//!   rejected, its SSRCs with their `FID` (RTX) and `SIM` groups, and the rids
//!   it sends in `a=simulcast:send` order. Text that does not parse, or that
//!   lacks credentials or a fingerprint, is an error naming what is missing.

use std::fmt::Write as _;
use std::net::SocketAddr;

use proto::sdp::{MediaSection, Sdp};

use super::PlaneError;

pub const PT_OPUS: u8 = 111;
pub const PT_TELEPHONE_EVENT: u8 = 126;
pub const PT_VP8: u8 = 100;
pub const PT_VP8_RTX: u8 = 96;
pub const PT_H264: u8 = 107;
pub const PT_H264_RTX: u8 = 99;
pub const H264_PROFILE_LEVEL_ID: u32 = 0x42e01f;

pub const EXT_AUDIO_LEVEL: u8 = 1;
pub const EXT_ABS_SEND_TIME: u8 = 3;
pub const EXT_TRANSPORT_CC: u8 = 5;
pub const EXT_MID: u8 = 10;
pub const EXT_RID: u8 = 11;
pub const EXT_REPAIRED_RID: u8 = 12;

/// The rids of the simulcast we receive, lowest layer first.
pub const SIMULCAST_RIDS: [&str; 3] = ["l", "m", "h"];

const URI_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
const URI_TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const URI_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
const URI_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// The SSRCs we send with on one m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSsrcs {
    /// The media SSRC.
    pub ssrc: u32,
    /// Its retransmission SSRC (video only).
    pub rtx: Option<u32>,
}

/// One m-line of our offer.
#[derive(Debug, Clone)]
pub struct OfferLine {
    pub mid: String,
    pub audio: bool,
    /// The participant's own line: what it sends comes in here (audio is
    /// sendrecv and also its first audio slot; video is recvonly and takes
    /// the simulcast). Otherwise a receive slot (sendonly from our side).
    pub own: bool,
    /// What we send on the line (none on the own video line).
    pub ssrcs: Option<SendSsrcs>,
}

/// Everything the offer says.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    pub session_id: u64,
    pub ufrag: &'a str,
    pub pwd: &'a str,
    /// `sha-256 AB:CD:..`
    pub fingerprint: &'a str,
    pub candidate: SocketAddr,
    /// `a=msid` stream id and `a=ssrc .. cname` of every line.
    pub cname: &'a str,
    pub lines: &'a [OfferLine],
}

/// Writes the offer (CRLF line ends).
pub fn write_offer(o: &Offer<'_>) -> String {
    let mut s = String::with_capacity(1200 * o.lines.len() + 200);
    let ip = o.candidate.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\no=- {} 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE",
        o.session_id
    );
    for l in o.lines {
        s.push(' ');
        s.push_str(&l.mid);
    }
    s.push_str("\r\na=ice-lite\r\na=msid-semantic: WMS *\r\n");
    for (i, l) in o.lines.iter().enumerate() {
        let (media, formats) = if l.audio {
            ("audio", format!("{PT_OPUS} {PT_TELEPHONE_EVENT}"))
        } else {
            (
                "video",
                format!("{PT_VP8} {PT_VP8_RTX} {PT_H264} {PT_H264_RTX}"),
            )
        };
        // RFC 8839: c= of the first line carries the default (our only)
        // candidate; the others are bundled.
        let conn = if i == 0 {
            format!("{family} {ip}")
        } else {
            "IP4 0.0.0.0".to_owned()
        };
        let _ = write!(
            s,
            "m={media} 9 UDP/TLS/RTP/SAVPF {formats}\r\nc=IN {conn}\r\n\
             a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:{}\r\na=setup:actpass\r\n\
             a=mid:{}\r\n",
            o.ufrag, o.pwd, o.fingerprint, l.mid
        );
        if l.audio {
            let _ = write!(s, "a=extmap:{EXT_AUDIO_LEVEL} {URI_AUDIO_LEVEL}\r\n");
        }
        let _ = write!(
            s,
            "a=extmap:{EXT_ABS_SEND_TIME} {URI_ABS_SEND_TIME}\r\n\
             a=extmap:{EXT_TRANSPORT_CC} {URI_TRANSPORT_CC}\r\na=extmap:{EXT_MID} {URI_MID}\r\n"
        );
        if !l.audio {
            let _ = write!(
                s,
                "a=extmap:{EXT_RID} {URI_RID}\r\na=extmap:{EXT_REPAIRED_RID} {URI_REPAIRED_RID}\r\n"
            );
        }
        let dir = match (l.own, l.ssrcs.is_some()) {
            (true, true) => "sendrecv",
            (true, false) => "recvonly",
            (false, _) => "sendonly",
        };
        let track = format!("{}-{}", o.cname, l.mid);
        let _ = write!(s, "a={dir}\r\n");
        if l.ssrcs.is_some() {
            let _ = write!(s, "a=msid:{track} {track}\r\n");
        }
        s.push_str("a=rtcp-mux\r\n");
        if l.audio {
            let _ = write!(
                s,
                "a=rtpmap:{PT_OPUS} opus/48000/2\r\na=rtcp-fb:{PT_OPUS} transport-cc\r\n\
                 a=fmtp:{PT_OPUS} minptime=10;useinbandfec=1;stereo=1\r\n\
                 a=rtpmap:{PT_TELEPHONE_EVENT} telephone-event/8000\r\n"
            );
        } else {
            for (pt, rtx, name, fmtp) in [
                (PT_VP8, PT_VP8_RTX, "VP8", String::new()),
                (
                    PT_H264,
                    PT_H264_RTX,
                    "H264",
                    format!(
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={H264_PROFILE_LEVEL_ID:06x}"
                    ),
                ),
            ] {
                let _ = write!(s, "a=rtpmap:{pt} {name}/90000\r\n");
                for fb in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] {
                    let _ = write!(s, "a=rtcp-fb:{pt} {fb}\r\n");
                }
                if !fmtp.is_empty() {
                    let _ = write!(s, "a=fmtp:{pt} {fmtp}\r\n");
                }
                let _ = write!(s, "a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={pt}\r\n");
            }
        }
        if !l.audio && l.own {
            for rid in SIMULCAST_RIDS {
                let _ = write!(s, "a=rid:{rid} recv\r\n");
            }
            let _ = write!(s, "a=simulcast:recv {}\r\n", SIMULCAST_RIDS.join(";"));
        }
        if let Some(SendSsrcs { ssrc, rtx }) = l.ssrcs {
            if let Some(rtx) = rtx {
                let _ = write!(s, "a=ssrc-group:FID {ssrc} {rtx}\r\n");
            }
            for x in std::iter::once(ssrc).chain(rtx) {
                let _ = write!(
                    s,
                    "a=ssrc:{x} cname:{}\r\na=ssrc:{x} msid:{track} {track}\r\n",
                    o.cname
                );
            }
        }
        if i == 0 {
            let _ = write!(
                s,
                "a=candidate:1 1 udp 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
                ip,
                o.candidate.port()
            );
        }
    }
    s
}

/// The participant's DTLS role, from `a=setup` of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// It connects (DTLS client): we are the server.
    Active,
    /// It waits: we connect.
    Passive,
}

/// One m-line of the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerLine {
    pub mid: String,
    /// Port 0: the participant refused the line.
    pub rejected: bool,
    /// Media SSRCs in order of appearance (RTX SSRCs of `FID` groups left out).
    pub ssrcs: Vec<u32>,
    /// `(media, rtx)` pairs from `a=ssrc-group:FID`.
    pub fid: Vec<(u32, u32)>,
    /// `a=ssrc-group:SIM`, lowest layer first.
    pub sim: Vec<u32>,
    /// Rids it sends, in `a=simulcast:send` order (else `a=rid:.. send` order).
    pub send_rids: Vec<String>,
    /// It kept the transport-wide congestion control extension.
    pub transport_cc: bool,
}

impl AnswerLine {
    /// The RTX SSRC paired with `ssrc`, if any.
    pub fn rtx_of(&self, ssrc: u32) -> Option<u32> {
        self.fid.iter().find(|(m, _)| *m == ssrc).map(|(_, r)| *r)
    }
}

/// What the session needs from the participant's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ufrag: String,
    pub pwd: String,
    /// `sha-256 AB:CD:..`
    pub fingerprint: String,
    pub setup: Setup,
    pub lines: Vec<AnswerLine>,
}

fn bad(reason: impl Into<String>) -> PlaneError {
    PlaneError::BadAnswer(reason.into())
}

/// Reads the participant's answer.
pub fn read_answer(text: &str) -> Result<Answer, PlaneError> {
    let sdp = Sdp::parse(text).map_err(|e| bad(e.to_string()))?;
    if sdp.media.is_empty() {
        return Err(bad("no m-line"));
    }
    // Session-level values, else those of the first line that has them.
    let find = |name: &str| -> Option<String> {
        sdp.attr(name)
            .and_then(|a| a.value.clone())
            .or_else(|| {
                sdp.media
                    .iter()
                    .find_map(|m| m.attr_value(name).map(str::to_owned))
            })
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let ufrag = find("ice-ufrag").ok_or_else(|| bad("a=ice-ufrag missing"))?;
    let pwd = find("ice-pwd").ok_or_else(|| bad("a=ice-pwd missing"))?;
    let fingerprint = find("fingerprint").ok_or_else(|| bad("a=fingerprint missing"))?;
    let setup = match find("setup").as_deref() {
        // actpass is not a valid answer; a peer that says it lets us pick.
        Some("active") | Some("actpass") | None => Setup::Active,
        Some("passive") => Setup::Passive,
        Some(other) => return Err(bad(format!("a=setup:{other} is not a DTLS role"))),
    };
    let lines = sdp.media.iter().map(read_line).collect();
    Ok(Answer {
        ufrag,
        pwd,
        fingerprint,
        setup,
        lines,
    })
}

fn numbers(s: &str) -> Vec<u32> {
    s.split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect()
}

fn read_line(m: &MediaSection) -> AnswerLine {
    let mut line = AnswerLine {
        mid: m.mid().unwrap_or_default().to_owned(),
        rejected: m.port == 0,
        transport_cc: m.attrs("extmap").any(|a| {
            a.value
                .as_deref()
                .is_some_and(|v| v.contains(URI_TRANSPORT_CC))
        }),
        ..Default::default()
    };
    for a in m.attrs("ssrc-group") {
        let v = a.value.as_deref().unwrap_or_default();
        if let Some(rest) = v.strip_prefix("FID ") {
            if let [media, rtx] = numbers(rest)[..] {
                line.fid.push((media, rtx));
            }
        } else if let Some(rest) = v.strip_prefix("SIM ") {
            line.sim = numbers(rest);
        }
    }
    for a in m.attrs("ssrc") {
        let v = a.value.as_deref().unwrap_or_default();
        let Some(ssrc) = v.split(' ').next().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let is_rtx = line.fid.iter().any(|(_, r)| *r == ssrc);
        if !is_rtx && !line.ssrcs.contains(&ssrc) {
            line.ssrcs.push(ssrc);
        }
    }
    if let Some(sim) = m.attr_value("simulcast") {
        let mut it = sim.split_whitespace();
        while let Some(dir) = it.next() {
            let list = it.next().unwrap_or_default();
            if dir == "send" {
                // `a;b,c`: alternatives after commas; `~` marks a paused rid.
                line.send_rids = list
                    .split(';')
                    .filter_map(|alt| alt.split(',').next())
                    .map(|r| r.trim_start_matches('~').to_owned())
                    .filter(|r| !r.is_empty())
                    .collect();
            }
        }
    }
    if line.send_rids.is_empty() {
        line.send_rids = m
            .attrs("rid")
            .filter_map(|a| {
                let v = a.value.as_deref()?;
                let mut it = v.split_whitespace();
                let rid = it.next()?;
                (it.next() == Some("send")).then(|| rid.to_owned())
            })
            .collect();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> String {
        let lines = [
            OfferLine {
                mid: "audio".into(),
                audio: true,
                own: true,
                ssrcs: Some(SendSsrcs {
                    ssrc: 11,
                    rtx: None,
                }),
            },
            OfferLine {
                mid: "video".into(),
                audio: false,
                own: true,
                ssrcs: None,
            },
            OfferLine {
                mid: "video_1".into(),
                audio: false,
                own: false,
                ssrcs: Some(SendSsrcs {
                    ssrc: 31,
                    rtx: Some(32),
                }),
            },
        ];
        write_offer(&Offer {
            session_id: 7,
            ufrag: "uf",
            pwd: "pw",
            fingerprint: "sha-256 AB:CD",
            candidate: "10.0.0.1:10000".parse().unwrap(),
            cname: "jvb-a",
            lines: &lines,
        })
    }

    #[test]
    fn offer_parses_and_says_what_the_contract_says() {
        let text = offer();
        let sdp = Sdp::parse(&text).expect("our offer parses");
        assert_eq!(sdp.media.len(), 3);
        let video = &sdp.media[1];
        assert_eq!(video.mid(), Some("video"));
        assert!(video.attr("recvonly").is_some());
        assert!(video.attr("ssrc").is_none());
        assert!(sdp.media[0].attr("sendrecv").is_some());
        assert_eq!(video.attr_value("simulcast"), Some("recv l;m;h"));
        assert_eq!(video.attrs("rid").count(), 3);
        assert!(sdp.media[2].attr("sendonly").is_some());
        assert!(sdp.media[2].attr("simulcast").is_none());
        for needle in [
            "a=group:BUNDLE audio video video_1\r\n",
            "a=ice-lite\r\n",
            "c=IN IP4 10.0.0.1\r\n",
            "a=candidate:1 1 udp 2130706431 10.0.0.1 10000 typ host\r\n",
            "a=fingerprint:sha-256 AB:CD\r\n",
            "a=ssrc-group:FID 31 32\r\n",
            "a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
            "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert_eq!(text.matches("a=candidate").count(), 1);
    }

    #[test]
    fn answer_with_ssrc_simulcast_and_fid() {
        let text = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n\
a=fingerprint:sha-256 01:02\r\na=setup:passive\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio\r\na=ssrc:5 cname:x\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 100 96\r\na=mid:video\r\na=ssrc-group:SIM 1 2 3\r\n\
a=ssrc-group:FID 1 4\r\na=ssrc:1 cname:x\r\na=ssrc:4 cname:x\r\na=ssrc:2 cname:x\r\na=ssrc:3 cname:x\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 100\r\na=mid:video_1\r\n";
        let a = read_answer(text).unwrap();
        assert_eq!((a.ufrag.as_str(), a.pwd.as_str()), ("u", "p"));
        assert_eq!(a.fingerprint, "sha-256 01:02");
        assert_eq!(a.setup, Setup::Passive);
        assert_eq!(a.lines[0].ssrcs, vec![5]);
        assert_eq!(a.lines[1].sim, vec![1, 2, 3]);
        assert_eq!(a.lines[1].ssrcs, vec![1, 2, 3]);
        assert_eq!(a.lines[1].rtx_of(1), Some(4));
        assert!(a.lines[2].rejected);
    }

    #[test]
    fn answer_with_rid_simulcast_at_media_level() {
        let text = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=mid:video\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n\
a=fingerprint:sha-256 01:02\r\na=setup:active\r\na=rid:h send\r\na=rid:l send\r\n\
a=simulcast:send l;~h\r\n";
        let a = read_answer(text).unwrap();
        assert_eq!(a.setup, Setup::Active);
        assert_eq!(a.lines[0].send_rids, vec!["l", "h"]);
    }

    #[test]
    fn answers_missing_what_the_session_needs_are_refused_by_name() {
        for (text, needle) in [
            ("garbage", ""),
            ("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\n", "no m-line"),
            (
                "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/SAVPF 111\r\na=ice-pwd:p\r\na=fingerprint:x y\r\n",
                "ice-ufrag",
            ),
            (
                "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/SAVPF 111\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n",
                "fingerprint",
            ),
            (
                "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/SAVPF 111\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:x y\r\na=setup:sideways\r\n",
                "setup",
            ),
        ] {
            match read_answer(text) {
                Err(PlaneError::BadAnswer(reason)) => {
                    assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }
}
