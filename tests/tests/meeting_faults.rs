//! Bad input during a meeting, and participants leaving or being kicked:
//! garbage on the media port, malformed bridge-channel frames, a wrong
//! channel token, malformed Jingle. Nothing crashes, the offenders are
//! refused, and the participants' media keeps flowing (asserted by frames
//! still being decoded). A kicked participant's session ends, the others
//! get `source-remove`, and the room is gone once everyone has left.

use std::time::Duration;

use futures::SinkExt;
use jid::Jid;
use minidom::Element;
use proto::jingle::Action;
use tests::meeting::{has_tone, has_video, meeting, owners, until, Meeting, PEOPLE};
use tests::webrtc::{StreamKind, WebrtcParticipant};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::IqKind;

/// Total decoded video frames of a participant.
fn video_frames(p: &WebrtcParticipant) -> u64 {
    p.received()
        .iter()
        .filter(|s| s.kind == StreamKind::Video)
        .map(|s| s.frames)
        .sum()
}

/// Every participant is still decoding video (more frames than `before`).
async fn media_continues(m: &Meeting, before: &[u64]) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (p, b) in m.people.iter().zip(before) {
        let now = video_frames(p);
        assert!(now > b + 20, "media stopped: {b} -> {now} frames");
    }
}

fn jingle_of(p: &WebrtcParticipant, action: Action) -> proto::jingle::Jingle {
    p.jingle_log()
        .into_iter()
        .find(|r| r.jingle.action == action)
        .map(|r| r.jingle)
        .expect("jingle message")
}

async fn metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_media_keeps_flowing() {
    let mut m = meeting().await;
    for (i, p) in m.people.iter().enumerate() {
        let others: Vec<_> = PEOPLE
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| *x)
            .collect();
        until(p, "media flows", 30, |s| {
            others
                .iter()
                .all(|o| has_video(s, o.2, o.3) && has_tone(s, o.4 as f32))
        })
        .await;
    }
    let before: Vec<u64> = m.people.iter().map(video_frames).collect();

    // Garbage on the media port.
    let initiate = jingle_of(&m.people[0], Action::SessionInitiate);
    let transport = initiate.contents[0].transport.clone().unwrap();
    let cand = &transport.candidates[0];
    let media: std::net::SocketAddr = format!("{}:{}", cand.ip, cand.port).parse().unwrap();
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed = 0x1234_5678_9abc_def1u64;
    for i in 0..300u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = 1 + (seed % 1200) as usize;
        let mut pkt: Vec<u8> = (0..len).map(|k| (seed >> (k % 56)) as u8).collect();
        match i % 6 {
            0 => pkt[0] = 0x00,    // STUN-looking
            1 => pkt.truncate(19), // truncated STUN header
            2 => pkt[0] = 0x16,    // DTLS handshake record
            3 => {
                pkt[0] = 0x80;
                if pkt.len() > 1 {
                    pkt[1] = 0x60;
                }
            } // RTP
            4 => {
                pkt[0] = 0x80;
                if pkt.len() > 1 {
                    pkt[1] = 0xc8;
                }
            } // RTCP SR
            _ => {}
        }
        junk.send_to(&pkt, media).await.unwrap();
    }
    // A binding request with wrong ICE credentials.
    let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7u8; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
    stun.extend_from_slice(b"nope:bad");
    junk.send_to(&stun, media).await.unwrap();

    // The bridge channel: a wrong token is refused; malformed frames on a
    // good socket are dropped.
    let url = transport.web_sockets[0].clone();
    let (bad_url, _) = url.split_once("?pwd=").unwrap();
    assert!(
        tokio_tungstenite::connect_async(format!("{bad_url}?pwd=wrong"))
            .await
            .is_err()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the channel accepts its token");
    for junk in [
        "{",
        "[]",
        "null",
        "{\"colibriClass\":\"Nope\"}",
        "{\"colibriClass\":\"ReceiverVideoConstraints\",\"lastN\":{}}",
    ] {
        ws.send(tokio_tungstenite::tungstenite::Message::Text(junk.into()))
            .await
            .unwrap();
    }

    // Malformed Jingle to the focus.
    let room_focus = Jid::new(&format!("{}/focus", initiate_room(&m))).unwrap();
    let cases = [
        (
            "<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='not-this-one'/>",
            DefinedCondition::ItemNotFound,
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1' action='tickle' sid='x'/>",
            DefinedCondition::FeatureNotImplemented,
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1' action='source-add'/>",
            DefinedCondition::BadRequest,
        ),
    ];
    for (xml, want) in cases {
        let payload: Element = proto::parse_xml(xml).unwrap();
        let err = m.people[1]
            .xmpp()
            .iq(Some(room_focus.clone()), IqKind::Set, payload, None)
            .await
            .expect_err(xml);
        assert_eq!(err.condition(), Some(&want), "{xml}");
    }
    media_continues(&m, &before).await;
    // The media plane's counters saw the garbage and the forwarding.
    let text = metrics(m.http).await;
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from {text}"))
    };
    // Most of the 301 datagrams (a burst: the socket buffer may lose some).
    assert!(value("sfu_packets_dropped_total") >= 250, "{text}");
    assert!(value("sfu_packets_forwarded_total") > 100, "{text}");
    assert_eq!(value("sfu_media_connected"), 3, "{text}");

    // The first participant (the moderator) kicks the third.
    let kick = proto::parse_xml(&format!(
        "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='{}' role='none'/></query>",
        PEOPLE[2].0
    ))
    .unwrap();
    let room = Jid::new(&initiate_room(&m)).unwrap();
    m.people[0]
        .xmpp()
        .iq(Some(room), IqKind::Set, kick, None)
        .await
        .expect("the moderator may kick");
    let kicked = m.people.pop().unwrap();
    kicked
        .wait_for_jingle(Action::SessionTerminate, Duration::from_secs(10))
        .await
        .expect("the kicked one is told");
    for p in &m.people {
        let remove = p
            .wait_for_jingle(Action::SourceRemove, Duration::from_secs(10))
            .await
            .expect("source-remove");
        assert_eq!(owners(&remove), vec![PEOPLE[2].0.to_owned()]);
    }
    drop(kicked);
    let before: Vec<u64> = m.people.iter().map(video_frames).collect();
    media_continues(&m, &before).await;

    // Everyone leaves: the room is gone.
    let http = m.http;
    for p in m.people.drain(..) {
        p.leave().await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(http).await;
        if text.contains("sfu_rooms 0") && text.contains("sfu_participants 0") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room stayed: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    m.end().await;
}

fn initiate_room(m: &Meeting) -> String {
    format!("standup@{}", m.prosody.conference_domain())
}
