//! Offer/answer against descriptions shaped like real phones' and PBXs',
//! and mutation tests: every parser the network reaches is fed garbage.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::codec::PhoneCodec;
use super::dtmf::{DtmfReceiver, TelephoneEvent};
use super::rtp::RtpPacket;
use super::sdp::{parse_answer, Direction, LocalMedia, Negotiated, Offer, SdpError};

/// An Asterisk-style offer: G.722 first, static types with rtpmaps.
const ASTERISK: &str = "v=0\r\n\
o=- 1234 1234 IN IP4 192.0.2.10\r\n\
s=Asterisk\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 10000 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

/// A Linphone-style offer: Opus first, speex, telephone-event on three clocks.
const LINPHONE: &str = "v=0\r\n\
o=alice 3140 1282 IN IP4 198.51.100.7\r\n\
s=Talk\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp-fb:* trr-int 1000\r\n";

/// A Cisco-style re-INVITE for music on hold: no session c=, media-level
/// c=, static types without rtpmaps, session-level sendonly, LF endings.
const CISCO_MOH: &str = "v=0
o=CiscoSystemsCCM-SIP 2000 1 IN IP4 203.0.113.5
s=SIP Call
t=0 0
a=sendonly
m=audio 24580 RTP/AVP 18 8 0 101
c=IN IP4 203.0.113.9
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
";

/// RFC 2543-style hold, IPv6 session address, video line first.
const VIDEO_FIRST: &str = "v=0\r\n\
o=bob 1 2 IN IP6 2001:db8::7\r\n\
s=-\r\n\
c=IN IP6 2001:db8::7\r\n\
t=0 0\r\n\
m=video 9000 RTP/AVP 96\r\n\
a=rtpmap:96 H264/90000\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=audio 5004 RTP/AVP 8\r\n\
a=recvonly\r\n";

const SRTP: &str = "v=0\r\n\
o=- 1 1 IN IP4 192.0.2.1\r\n\
s=-\r\n\
c=IN IP4 192.0.2.1\r\n\
t=0 0\r\n\
m=audio 5004 RTP/SAVP 0 8\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

fn local() -> LocalMedia {
    LocalMedia {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99)),
        port: 40000,
        session_id: 77,
        session_version: 1,
    }
}

fn negotiate(sdp: &str) -> Result<Negotiated, SdpError> {
    Offer::parse(sdp)?.negotiate()
}

#[test]
fn asterisk_offer_gets_g722_and_a_complete_answer() {
    let offer = Offer::parse(ASTERISK).unwrap();
    assert_eq!(offer.ptime, Some(20));
    let answer = offer.answer(&local()).unwrap();
    assert_eq!(
        answer.negotiated,
        Negotiated {
            remote: "192.0.2.10:10000".parse().unwrap(),
            codec: PhoneCodec::G722,
            pt: 9,
            dtmf_pt: Some(101),
            direction: Direction::SendRecv,
        }
    );
    assert_eq!(
        answer.sdp,
        "v=0\r\n\
o=- 77 1 IN IP4 192.0.2.99\r\n\
s=-\r\n\
c=IN IP4 192.0.2.99\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 9 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n"
    );
}

#[test]
fn linphone_offer_gets_opus_with_events_on_its_clock() {
    let n = negotiate(LINPHONE).unwrap();
    assert_eq!(
        (n.codec, n.pt, n.dtmf_pt),
        (PhoneCodec::Opus, 96, Some(101))
    );
    let sdp = Offer::parse(LINPHONE)
        .unwrap()
        .answer(&local())
        .unwrap()
        .sdp;
    assert!(sdp.contains("m=audio 40000 RTP/AVP 96 101\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:96 opus/48000/2\r\n"), "{sdp}");
    assert!(
        sdp.contains("a=rtpmap:101 telephone-event/48000\r\n"),
        "{sdp}"
    );
}

#[test]
fn music_on_hold_is_received_only() {
    let n = negotiate(CISCO_MOH).unwrap();
    assert_eq!(n.remote, "203.0.113.9:24580".parse::<SocketAddr>().unwrap());
    // 18 (G.729) is skipped; 8 has no rtpmap but is static PCMA.
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (PhoneCodec::Pcma, 8, Some(101)));
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(!n.direction.sends() && n.direction.receives());
    let sdp = Offer::parse(CISCO_MOH)
        .unwrap()
        .answer(&local())
        .unwrap()
        .sdp;
    assert!(sdp.ends_with("a=recvonly\r\n"), "{sdp}");
}

#[test]
fn other_media_lines_are_rejected_in_order() {
    let offer = Offer::parse(VIDEO_FIRST).unwrap();
    assert_eq!(offer.audio, 2);
    let answer = offer.answer(&local()).unwrap();
    assert_eq!(answer.negotiated.remote.to_string(), "[2001:db8::7]:5004");
    assert_eq!(answer.negotiated.direction, Direction::SendOnly);
    let m: Vec<&str> = answer.sdp.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m,
        [
            "m=video 0 RTP/AVP 96",
            "m=audio 0 RTP/AVP 0",
            "m=audio 40000 RTP/AVP 8"
        ]
    );
}

#[test]
fn old_style_hold_and_inactive() {
    let hold = ASTERISK.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
    let offer = Offer::parse(&hold).unwrap();
    assert!(offer.hold);
    assert_eq!(offer.remote_direction(), Direction::SendOnly);
    assert_eq!(offer.negotiate().unwrap().direction, Direction::RecvOnly);
    let inactive = ASTERISK.replace("a=sendrecv", "a=inactive");
    let answer = Offer::parse(&inactive).unwrap().answer(&local()).unwrap();
    assert_eq!(answer.negotiated.direction, Direction::Inactive);
    assert!(answer.sdp.ends_with("a=inactive\r\n"));
    let recvonly = ASTERISK.replace("a=sendrecv", "a=recvonly");
    assert_eq!(negotiate(&recvonly).unwrap().direction, Direction::SendOnly);
}

#[test]
fn refusals_name_the_problem() {
    let err = negotiate(SRTP).unwrap_err();
    assert_eq!(err, SdpError::Srtp("RTP/SAVP".into()));
    assert_eq!(err.sip_status(), 488);
    assert!(err.to_string().contains("SRTP"), "{err}");
    let webrtc = SRTP.replace("RTP/SAVP", "UDP/TLS/RTP/SAVPF");
    assert!(matches!(negotiate(&webrtc), Err(SdpError::Srtp(_))));

    let video_only = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=video 5000 RTP/AVP 96\r\n";
    assert_eq!(negotiate(video_only), Err(SdpError::NoAudio));
    assert_eq!(negotiate(""), Err(SdpError::NoAudio));

    let exotic = ASTERISK.replace(
        "m=audio 10000 RTP/AVP 9 0 8 101",
        "m=audio 10000 RTP/AVP 18 4 97",
    );
    let err = negotiate(&(exotic + "a=rtpmap:97 iLBC/8000\r\n")).unwrap_err();
    assert_eq!(
        err,
        SdpError::NoCommonCodec {
            offered: "18 4 97(iLBC/8000)".into()
        }
    );
    assert_eq!(err.sip_status(), 488);

    let host = ASTERISK.replace("c=IN IP4 192.0.2.10", "c=IN IP4 pbx.example.com");
    let err = negotiate(&host).unwrap_err();
    assert!(matches!(err, SdpError::BadConnection(_)), "{err}");
    assert_eq!(err.sip_status(), 400);
    let none = ASTERISK.replace("c=IN IP4 192.0.2.10\r\n", "");
    assert_eq!(negotiate(&none), Err(SdpError::NoConnection));
    let disabled = ASTERISK.replace("m=audio 10000", "m=audio 0");
    assert_eq!(negotiate(&disabled), Err(SdpError::AudioDisabled));
    let bad_port = ASTERISK.replace("m=audio 10000", "m=audio 99999");
    assert!(matches!(negotiate(&bad_port), Err(SdpError::BadMedia(_))));
    assert_eq!(Offer::parse_bytes(&[0xFF, 0xFE]), Err(SdpError::NotText));
}

#[test]
fn multicast_ttl_and_port_count_are_read() {
    let sdp = ASTERISK
        .replace("c=IN IP4 192.0.2.10", "c=IN IP4 233.252.0.1/127")
        .replace("m=audio 10000 RTP/AVP", "m=audio 10000/2 RTP/AVP");
    let n = negotiate(&sdp).unwrap();
    assert_eq!(n.remote, "233.252.0.1:10000".parse::<SocketAddr>().unwrap());
}

#[test]
fn our_offer_and_answers_to_it() {
    let offer = local().offer();
    assert_eq!(
        offer,
        "v=0\r\n\
o=- 77 1 IN IP4 192.0.2.99\r\n\
s=-\r\n\
c=IN IP4 192.0.2.99\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 9 111 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n"
    );
    // Answered by our own answerer: PCMU, the first in our order.
    let answer = Offer::parse(&offer).unwrap().answer(&local()).unwrap();
    let n = parse_answer(&answer.sdp).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (PhoneCodec::Pcmu, 0, Some(101)));
    assert_eq!(n.remote, "192.0.2.99:40000".parse::<SocketAddr>().unwrap());

    // A terse answer that leaves out the rtpmaps of our dynamic types.
    let terse = "v=0\r\no=- 5 5 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\n\
t=0 0\r\nm=audio 30000 RTP/AVP 111 101\r\na=recvonly\r\n";
    let n = parse_answer(terse).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (PhoneCodec::Opus, 111, None));
    assert_eq!(n.direction, Direction::SendOnly);
    let g722 = terse.replace("111 101", "9 101");
    let n = parse_answer(&g722).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (PhoneCodec::G722, 9, Some(101)));
    // Rejected.
    let rejected = terse.replace("m=audio 30000", "m=audio 0");
    assert_eq!(parse_answer(&rejected), Err(SdpError::AudioDisabled));
}

/// xorshift64: deterministic randomness for the mutation tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"m=audio ",
    b"m=",
    b"c=IN IP6 ",
    b"c=IN IP4 0.0.0.0",
    b"a=rtpmap:",
    b"a=fmtp:",
    b"a=sendonly",
    b"/",
    b" ",
    b"\r\n",
    b"\n",
    b"=",
    b":",
    b"65536",
    b"4294967296",
    b"-1",
    b"RTP/SAVP",
    b"\xF0\x9F\x93\x9E",
    b"\0",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => {
                let end = (at + rng.below(40)).min(v.len());
                v.drain(at..end);
            }
            2 => v.truncate(at),
            3 => {
                let end = (at + rng.below(60)).min(v.len());
                let copy = v[at..end].to_vec();
                v.splice(at..at, copy);
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, token.iter().copied());
            }
        }
    }
    v
}

/// Parses, negotiates and answers; when an answer is made, our own answer
/// parser must agree with it.
fn exercise_sdp(bytes: &[u8]) {
    let _ = parse_answer(&String::from_utf8_lossy(bytes));
    let Ok(offer) = Offer::parse_bytes(bytes) else {
        return;
    };
    if let Ok(answer) = offer.answer(&local()) {
        let back = parse_answer(&answer.sdp).expect("our answer parses");
        let n = answer.negotiated;
        assert_eq!(
            (back.codec, back.pt, back.dtmf_pt),
            (n.codec, n.pt, n.dtmf_pt)
        );
    }
}

#[test]
fn mutated_and_truncated_sdp_never_panics() {
    let seeds = [ASTERISK, LINPHONE, CISCO_MOH, VIDEO_FIRST, SRTP];
    let mut rng = Rng(0x5DEE_CE66_D1CE_F00D);
    for seed in seeds {
        for cut in 0..=seed.len() {
            exercise_sdp(&seed.as_bytes()[..cut]);
        }
        for _ in 0..3000 {
            exercise_sdp(&mutate(&mut rng, seed.as_bytes()));
        }
    }
    for _ in 0..2000 {
        let len = rng.below(300);
        let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise_sdp(&noise);
    }
}

#[test]
fn mutated_rtp_and_events_never_panic() {
    let mut rng = Rng(0xA076_1D64_78BD_642F);
    let mut valid = vec![0xB1, 0xE5, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9];
    valid.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 11, 0x8A, 3, 0x20, 0, 2]);
    let mut rx = DtmfReceiver::new();
    let now = Instant::now();
    for _ in 0..20_000 {
        let bytes = if rng.below(2) == 0 {
            mutate(&mut rng, &valid)
        } else {
            (0..rng.below(40)).map(|_| rng.next() as u8).collect()
        };
        if let Ok(p) = RtpPacket::parse(&bytes) {
            assert!(p.payload.len() <= bytes.len());
            let _ = p.csrcs().count();
            let _ = TelephoneEvent::parse(p.payload);
            let _ = rx.receive(now, p.header.ts, p.payload);
        }
    }
    rx.handle_timeout(now + std::time::Duration::from_secs(1));
    while rx.poll_digit().is_some() {}
}
