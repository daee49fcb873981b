//! The media plane over real UDP on loopback, with in-process str0m clients
//! (ordinary, non-ICE-lite peers) as participants.

mod common;

use common::{connect, pump_for, Peer};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sfu::plane::{self, PlaneConfig, PlaneEvents, PlaneHandle};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, KeyframeRequestKind, MediaTime, Mid};
use str0m::{Candidate, Event, Rtc};
use tokio::net::UdpSocket;

/// A participant: a str0m peer with its own socket.
struct Client {
    name: &'static str,
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    connected: bool,
    /// (mid, payload) of every frame received.
    received: Vec<(String, Vec<u8>)>,
    /// The plane's ufrag for this session (from the offer).
    plane_ufrag: String,
    /// Mids of keyframe requests received.
    keyframe_requests: Vec<String>,
}

impl Client {
    async fn join(plane: &PlaneHandle, conference: &str, name: &'static str) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let offer = plane.create_endpoint(conference, name).await.unwrap();
        let plane_ufrag = offer
            .lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .expect("ufrag in offer")
            .trim()
            .to_owned();
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        // The plane's host candidate comes with the offer.
        let offer = SdpOffer::from_sdp_string(&offer).unwrap();
        let answer = rtc.sdp_api().accept_offer(offer).unwrap();
        plane
            .accept_answer(name, &answer.to_sdp_string())
            .await
            .unwrap();
        Client {
            name,
            rtc,
            socket,
            addr,
            connected: false,
            received: Vec::new(),
            plane_ufrag,
            keyframe_requests: Vec::new(),
        }
    }

    /// Feeds whatever the socket has, then drains the Rtc's output.
    fn pump(&mut self) {
        common::pump(&mut self.rtc, &self.socket, self.addr, |e| match e {
            Event::Connected => self.connected = true,
            Event::KeyframeRequest(r) => {
                self.keyframe_requests.push(r.mid.to_string());
            }
            Event::MediaData(d) => {
                self.received.push((d.mid.to_string(), d.data.to_vec()));
            }
            _ => {}
        });
    }

    /// Writes one frame on our own `audio` or `video` line.
    fn send(&mut self, audio: bool, n: u32, payload: &[u8]) {
        let (mid, codec, time) = if audio {
            (
                "audio",
                Codec::Opus,
                MediaTime::new(u64::from(n) * 960, Frequency::FORTY_EIGHT_KHZ),
            )
        } else {
            (
                "video",
                Codec::Vp8,
                MediaTime::new(u64::from(n) * 3000, Frequency::NINETY_KHZ),
            )
        };
        let writer = self.rtc.writer(Mid::from(mid)).expect("own line");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .expect("codec negotiated")
            .pt();
        writer
            .write(pt, Instant::now(), time, payload.to_vec())
            .unwrap();
    }

    /// Payloads received on slots of one kind, in order.
    fn payloads(&self, audio: bool) -> Vec<Vec<u8>> {
        let prefix = if audio { "audio" } else { "video" };
        self.received
            .iter()
            .filter(|(mid, _)| mid.starts_with(prefix))
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn slots_used(&self) -> Vec<String> {
        let mut mids: Vec<String> = self.received.iter().map(|(m, _)| m.clone()).collect();
        mids.sort();
        mids.dedup();
        mids
    }
}

fn audio_frame(n: u32) -> Vec<u8> {
    let mut p = b"opus".to_vec();
    p.extend_from_slice(&n.to_be_bytes());
    p
}

fn video_frame(n: u32) -> Vec<u8> {
    // A VP8 key frame header's first bit is 0; the rest is a counter and filler.
    let mut p = vec![0x10, 0x02, 0x00];
    p.extend_from_slice(&n.to_be_bytes());
    p.extend(std::iter::repeat_n(0xAB, 200));
    p
}

async fn start_plane() -> (PlaneHandle, PlaneEvents, tokio::task::JoinHandle<()>) {
    start_plane_with(3).await
}

async fn start_plane_with(
    audio_slots: usize,
) -> (PlaneHandle, PlaneEvents, tokio::task::JoinHandle<()>) {
    plane::start(PlaneConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        audio_slots,
        video_slots: 3,
        ..PlaneConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn audio_and_video_reach_the_other_participant_in_order() {
    let (plane, mut events, task) = start_plane().await;
    let mut a = Client::join(&plane, "room", "a").await;
    let mut b = Client::join(&plane, "room", "b").await;
    connect(&mut [&mut a, &mut b], &mut events).await;
    assert_eq!(
        plane.accept_answer("a", "v=0").await,
        Err(plane::PlaneError::NoPendingOffer),
        "the offer was answered already"
    );

    let frames = 25;
    for n in 0..frames {
        a.send(true, n, &audio_frame(n));
        a.send(false, n, &video_frame(n));
        pump_for(&mut [&mut a, &mut b], Duration::from_millis(20)).await;
    }
    pump_for(&mut [&mut a, &mut b], Duration::from_millis(200)).await;

    let audio: Vec<Vec<u8>> = (0..frames).map(audio_frame).collect();
    let video: Vec<Vec<u8>> = (0..frames).map(video_frame).collect();
    assert_eq!(b.payloads(true), audio, "audio at b");
    assert_eq!(b.payloads(false), video, "video at b");
    // a's streams are the first at b: its `audio` line (audio slot 0) and
    // the first video slot.
    assert_eq!(
        b.slots_used(),
        vec!["audio".to_string(), "video_1".to_string()]
    );
    assert!(
        a.received.is_empty(),
        "b sent nothing, a got {:?}",
        a.slots_used()
    );

    let stats = plane.stats().await;
    assert_eq!(stats.endpoints, 2);
    assert_eq!(stats.connected, 2);
    assert_eq!(stats.packets_forwarded, u64::from(frames) * 2);
    assert_eq!(stats.forwarding_errors, 0);
    drop(plane);
    task.await.unwrap();
}

/// Random bytes, a truncated STUN request and a well-formed STUN request
/// with a real ufrag but no valid integrity, from a stranger's address.
fn garbage(plane_ufrag: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in [1usize, 12, 20, 100, 1200] {
        let mut p = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p.push(x as u8);
        }
        out.push(p);
    }
    // A DTLS handshake record header and an RTP/RTCP header, then noise.
    for head in [
        &[22u8, 0xfe, 0xfd, 0, 0][..],
        &[0x80, 111, 0, 1],
        &[0x81, 200, 0, 6],
    ] {
        let mut p = head.to_vec();
        p.extend_from_slice(&out[3][..60]);
        out.push(p);
    }
    let username = format!("{plane_ufrag}:evil");
    let mut attrs = vec![0x00, 0x06];
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    // MESSAGE-INTEGRITY of zeros.
    attrs.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
    attrs.extend_from_slice(&[0; 20]);
    let mut stun = vec![0x00, 0x01];
    stun.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    stun.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    stun.extend_from_slice(&[5; 12]);
    stun.extend_from_slice(&attrs);
    out.push(stun[..stun.len() - 10].to_vec());
    out.push(stun[..24].to_vec());
    out.push(stun);
    out
}

#[tokio::test]
async fn three_participants_survive_garbage_and_removal_stops_delivery() {
    let (plane, mut events, task) = start_plane().await;
    let mut a = Client::join(&plane, "room", "a").await;
    let mut b = Client::join(&plane, "room", "b").await;
    let mut c = Client::join(&plane, "room", "c").await;
    // Someone in another conference sees nothing of this one.
    let mut x = Client::join(&plane, "elsewhere", "x").await;
    connect(&mut [&mut a, &mut b, &mut c, &mut x], &mut events).await;

    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut bad = garbage(&b.plane_ufrag);
    bad.extend(garbage(&a.plane_ufrag));
    let mut n = 0u32;
    let send_round = |a: &mut Client, n: &mut u32| {
        a.send(true, *n, &audio_frame(*n));
        *n += 1;
    };
    for i in 0..20 {
        send_round(&mut a, &mut n);
        if i == 10 {
            for p in &bad {
                stranger.send_to(p, plane.local_addr()).await.unwrap();
                // The same from a participant's own address (spoofable).
                c.socket.send_to(p, plane.local_addr()).await.unwrap();
            }
        }
        pump_for(
            &mut [&mut a, &mut b, &mut c, &mut x],
            Duration::from_millis(20),
        )
        .await;
    }
    pump_for(
        &mut [&mut a, &mut b, &mut c, &mut x],
        Duration::from_millis(150),
    )
    .await;
    let sent: Vec<Vec<u8>> = (0..n).map(audio_frame).collect();
    assert_eq!(b.payloads(true), sent, "b, through the garbage");
    assert_eq!(c.payloads(true), sent, "c, through the garbage");
    assert!(
        x.received.is_empty(),
        "other conference got {:?}",
        x.slots_used()
    );
    let stats = plane.stats().await;
    assert!(stats.dropped >= bad.len() as u64, "{stats:?}");
    assert_eq!(stats.connected, 4, "{stats:?}");
    assert!(events.try_recv().is_err(), "no disconnects");

    // Removing a receiver stops delivery to it; the others go on.
    plane.remove_endpoint("b").await;
    let (b_before, c_before) = (b.payloads(true).len(), c.payloads(true).len());
    for _ in 0..10 {
        send_round(&mut a, &mut n);
        pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(20)).await;
    }
    pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(150)).await;
    assert_eq!(b.payloads(true).len(), b_before, "b removed");
    assert_eq!(c.payloads(true).len(), c_before + 10, "c still served");

    // Removing the publisher stops delivery from it.
    plane.remove_endpoint("a").await;
    let c_before = c.payloads(true).len();
    for _ in 0..5 {
        send_round(&mut a, &mut n);
        pump_for(&mut [&mut a, &mut c], Duration::from_millis(20)).await;
    }
    assert_eq!(c.payloads(true).len(), c_before, "a removed");
    let stats = plane.stats().await;
    assert_eq!(stats.endpoints, 2, "{stats:?}");
    drop(plane);
    task.await.unwrap();
}

#[tokio::test]
async fn errors_name_the_problem() {
    let (plane, _events, _task) = start_plane().await;
    plane.create_endpoint("room", "a").await.unwrap();
    assert_eq!(
        plane.create_endpoint("room", "a").await,
        Err(plane::PlaneError::EndpointExists("a".into()))
    );
    assert_eq!(
        plane.accept_answer("nobody", "v=0").await,
        Err(plane::PlaneError::UnknownEndpoint("nobody".into()))
    );
    assert!(matches!(
        plane.accept_answer("a", "this is not sdp").await,
        Err(plane::PlaneError::BadAnswer(_))
    ));
    // Unparsable text leaves the offer open.
    assert!(matches!(
        plane.accept_answer("a", "v=0").await,
        Err(plane::PlaneError::BadAnswer(_))
    ));
    assert!(plane::start(PlaneConfig::default()).await.is_err());
}

/// Sends `frames` audio frames from `from`, 20 ms apart, pumping everyone.
async fn talk(clients: &mut [&mut Client], from: usize, first: u32, frames: u32) {
    for n in first..first + frames {
        clients[from].send(true, n, &audio_frame(n));
        pump_for(clients, Duration::from_millis(20)).await;
    }
    pump_for(clients, Duration::from_millis(150)).await;
}

#[tokio::test]
async fn a_freed_slot_goes_to_the_waiting_publisher() {
    // Two audio slots: d hears a and b; c waits until a leaves.
    let (plane, mut events, _task) = start_plane_with(2).await;
    let mut a = Client::join(&plane, "room", "a").await;
    let mut b = Client::join(&plane, "room", "b").await;
    let mut c = Client::join(&plane, "room", "c").await;
    let mut d = Client::join(&plane, "room", "d").await;
    connect(&mut [&mut a, &mut b, &mut c, &mut d], &mut events).await;

    talk(&mut [&mut a, &mut b, &mut c, &mut d], 2, 0, 5).await;
    assert!(
        d.received.is_empty(),
        "no slot for c yet: {:?}",
        d.slots_used()
    );
    assert_eq!(a.payloads(true).len(), 5, "a has a free slot for c");

    plane.remove_endpoint("a").await;
    talk(&mut [&mut b, &mut c, &mut d], 1, 5, 5).await;
    let expected: Vec<Vec<u8>> = (5..10).map(audio_frame).collect();
    assert_eq!(d.payloads(true), expected);
    assert_eq!(d.slots_used(), vec!["audio".to_string()], "a's old slot");
}

#[tokio::test]
async fn force_mute_stops_and_resumes_forwarding() {
    let (plane, mut events, _task) = start_plane().await;
    let mut a = Client::join(&plane, "room", "a").await;
    let mut b = Client::join(&plane, "room", "b").await;
    connect(&mut [&mut a, &mut b], &mut events).await;

    plane.force_mute("a", true, true).await;
    talk(&mut [&mut a, &mut b], 0, 0, 5).await;
    assert!(b.received.is_empty(), "muted");
    // Muting video leaves audio alone.
    plane.force_mute("a", true, false).await;
    plane.force_mute("a", false, true).await;
    talk(&mut [&mut a, &mut b], 0, 5, 5).await;
    let expected: Vec<Vec<u8>> = (5..10).map(audio_frame).collect();
    assert_eq!(b.payloads(true), expected);
}

#[tokio::test]
async fn keyframe_request_on_a_slot_reaches_the_publisher() {
    let (plane, mut events, _task) = start_plane().await;
    let mut a = Client::join(&plane, "room", "a").await;
    let mut b = Client::join(&plane, "room", "b").await;
    connect(&mut [&mut a, &mut b], &mut events).await;

    // Video flows for a while (past the plane's own keyframe requests).
    for n in 0..35 {
        a.send(false, n, &video_frame(n));
        pump_for(&mut [&mut a, &mut b], Duration::from_millis(20)).await;
    }
    assert!(!b.payloads(false).is_empty());
    let before = a.keyframe_requests.len();
    let slot = Mid::from(b.slots_used()[0].as_str());
    let mut writer = b.rtc.writer(slot).expect("slot writer");
    assert!(writer.is_request_keyframe_possible(KeyframeRequestKind::Pli));
    writer
        .request_keyframe(None, KeyframeRequestKind::Pli)
        .unwrap();
    pump_for(&mut [&mut a, &mut b], Duration::from_millis(200)).await;
    assert!(
        a.keyframe_requests[before..].iter().any(|m| m == "video"),
        "a got {:?}",
        a.keyframe_requests
    );
}

impl Peer for Client {
    fn pump(&mut self) {
        Client::pump(self)
    }
    fn is_connected(&self) -> bool {
        self.connected
    }
    fn endpoint(&self) -> String {
        self.name.to_owned()
    }
}
