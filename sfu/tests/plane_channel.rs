//! The media plane and the bridge channel together: in-process str0m clients
//! send media over loopback UDP, and each also holds its bridge-channel
//! WebSocket, on which we check what the plane says (dominant speaker, who
//! is in which slot).

mod common;

use common::{connect, pump_for, Peer};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use proto::bridge_channel::BridgeMessage;
use sfu::channel::Channels;
use sfu::plane::{self, PlaneConfig, PlaneEvents, PlaneHandle};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid};
use str0m::{Candidate, Event, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const ROOM: &str = "room@conference.meet.test";

/// A participant: a str0m peer on its own socket plus its bridge channel.
struct Client {
    nick: &'static str,
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    connected: bool,
    /// The plane's offer to this client.
    offer: String,
    /// (mid, payload) of every frame received.
    received: Vec<(String, Vec<u8>)>,
    /// Bridge-channel messages, parsed, as they arrive.
    channel: mpsc::UnboundedReceiver<BridgeMessage>,
    /// Our side of the bridge channel.
    sink: futures::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
    messages: Vec<BridgeMessage>,
}

fn key(nick: &str) -> String {
    format!("{ROOM}/{nick}")
}

impl Client {
    async fn join(
        plane: &PlaneHandle,
        channels: &Channels,
        http: SocketAddr,
        nick: &'static str,
    ) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let offer = plane.create_endpoint(ROOM, &key(nick)).await.unwrap();
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let answer = rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
            .unwrap();
        plane
            .accept_answer(&key(nick), &answer.to_sdp_string())
            .await
            .unwrap();

        // The bridge channel, as the focus would announce it.
        let token = format!("pwd-{nick}");
        channels.expect(ROOM, &key(nick), &token);
        let url = format!("ws://{http}{}", channels.path(ROOM, &key(nick), &token));
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("bridge channel connects");
        let (sink, mut ws) = ws.split();
        let (tx, channel) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(t) = frame {
                    let m = BridgeMessage::parse(&t).expect("the bridge sends valid messages");
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            }
        });
        Client {
            nick,
            rtc,
            socket,
            addr,
            connected: false,
            offer,
            received: Vec::new(),
            channel,
            sink,
            messages: Vec::new(),
        }
    }

    /// Feeds whatever the socket and the channel have, then drains the Rtc.
    fn pump(&mut self) {
        while let Ok(m) = self.channel.try_recv() {
            self.messages.push(m);
        }
        common::pump(&mut self.rtc, &self.socket, self.addr, |e| match e {
            Event::Connected => self.connected = true,
            Event::MediaData(d) => {
                self.received.push((d.mid.to_string(), d.data.to_vec()));
            }
            _ => {}
        });
    }

    /// Writes frame `n` on our own `audio` line with an RFC 6464 `level`.
    fn send_audio(&mut self, n: u32, level: u8) {
        let writer = self.rtc.writer(Mid::from("audio")).expect("own line");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .expect("opus")
            .pt();
        let time = MediaTime::new(u64::from(n) * 960, Frequency::FORTY_EIGHT_KHZ);
        // str0m takes the level negated (-dBov).
        let level = -i8::try_from(level.min(127)).unwrap();
        writer
            .audio_level(level, level > -127)
            .write(pt, Instant::now(), time, frame(self.nick, n))
            .unwrap();
    }

    /// Writes frame `n` on our own `video` line.
    fn send_video(&mut self, n: u32) {
        let writer = self.rtc.writer(Mid::from("video")).expect("own line");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Vp8)
            .expect("vp8")
            .pt();
        let time = MediaTime::new(u64::from(n) * 3000, Frequency::NINETY_KHZ);
        // A VP8 key frame header's first bit is 0; then who and which frame.
        let mut payload = vec![0x10, 0x02, 0x00];
        payload.extend(frame(self.nick, n));
        payload.extend(std::iter::repeat_n(0xAB, 100));
        writer.write(pt, Instant::now(), time, payload).unwrap();
    }

    /// The mids on which frames of `nick` arrived.
    fn mids_from(&self, nick: &str, video: bool) -> BTreeSet<String> {
        let skip = if video { 3 } else { 0 };
        self.received
            .iter()
            .filter(|(mid, p)| {
                mid.starts_with(if video { "video" } else { "audio" })
                    && p.get(skip..)
                        .is_some_and(|p| p.starts_with(nick.as_bytes()))
            })
            .map(|(mid, _)| mid.clone())
            .collect()
    }
}

fn frame(nick: &str, n: u32) -> Vec<u8> {
    let mut p = nick.as_bytes().to_vec();
    p.push(b':');
    p.extend_from_slice(&n.to_be_bytes());
    p
}

/// A plane wired to a bridge channel served on loopback.
async fn start() -> (PlaneHandle, PlaneEvents, Channels, SocketAddr) {
    let channels = Channels::new("sfu-test");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let app = channels.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (plane, events, _task) = plane::start_with_channels(
        PlaneConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            audio_slots: 3,
            video_slots: 3,
            ..PlaneConfig::default()
        },
        channels.clone(),
    )
    .await
    .unwrap();
    (plane, events, channels, http)
}

fn dominant_speakers(c: &Client) -> Vec<(String, bool)> {
    c.messages
        .iter()
        .filter_map(|m| match m {
            BridgeMessage::DominantSpeakerEndpointChangeEvent(e) => Some((
                e.dominant_speaker_endpoint.clone(),
                e.silence.unwrap_or(false),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_one_who_talks_becomes_dominant_speaker() {
    let (plane, mut events, channels, http) = start().await;
    let mut a = Client::join(&plane, &channels, http, "alice").await;
    let mut b = Client::join(&plane, &channels, http, "bob").await;
    let mut c = Client::join(&plane, &channels, http, "carol").await;
    connect(&mut [&mut a, &mut b, &mut c], &mut events).await;

    // Alice talks (a level that varies, as speech does); the others send
    // silence. Within about a second everyone hears that alice is dominant.
    let start = Instant::now();
    let mut n = 0;
    let heard = |c: &Client| dominant_speakers(c).contains(&("alice".to_owned(), false));
    while !(heard(&a) && heard(&b) && heard(&c)) {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "no dominant speaker event in time: a {:?} b {:?} c {:?}",
            dominant_speakers(&a),
            dominant_speakers(&b),
            dominant_speakers(&c)
        );
        a.send_audio(n, if n % 2 == 0 { 15 } else { 45 });
        b.send_audio(n, 127);
        c.send_audio(n, 127);
        n += 1;
        pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(20)).await;
    }
    // Nobody else was ever named, and the event carries nicks, not keys.
    for client in [&a, &b, &c] {
        assert!(
            dominant_speakers(client).iter().all(|(d, _)| d == "alice"),
            "{:?}",
            dominant_speakers(client)
        );
    }
    // The levels were forwarded: bob heard alice.
    assert!(!b.mids_from("alice", false).is_empty());

    // Someone joining later is told who speaks once its channel is open.
    let mut d = Client::join(&plane, &channels, http, "dave").await;
    connect(&mut [&mut d], &mut events).await;
    pump_for(&mut [&mut d], Duration::from_millis(400)).await;
    assert!(
        dominant_speakers(&d).iter().any(|(s, _)| s == "alice"),
        "{:?}",
        d.messages
    );
}

/// (source, ssrc, mid) of an `AudioSourcesMap` entry.
type AudioEntry = (String, u32, Option<String>);
/// (source, ssrc, rtx) of a `VideoSourcesMap` entry.
type VideoEntry = (String, u32, u32);

/// The entries of the last sources maps (owners checked against names).
fn last_maps(c: &Client) -> (Vec<AudioEntry>, Vec<VideoEntry>) {
    let audio = c.messages.iter().rev().find_map(|m| match m {
        BridgeMessage::AudioSourcesMap(m) => Some(
            m.mapped_sources
                .iter()
                .map(|s| {
                    assert_eq!(s.owner.as_deref(), s.source.strip_suffix("-a0"));
                    (s.source.clone(), s.ssrc, s.mid.clone())
                })
                .collect(),
        ),
        _ => None,
    });
    let video = c.messages.iter().rev().find_map(|m| match m {
        BridgeMessage::VideoSourcesMap(m) => Some(
            m.mapped_sources
                .iter()
                .map(|s| {
                    assert_eq!(s.owner.as_deref(), s.source.strip_suffix("-v0"));
                    (s.source.clone(), s.ssrc, s.rtx)
                })
                .collect(),
        ),
        _ => None,
    });
    (audio.unwrap_or_default(), video.unwrap_or_default())
}

fn last_forwarded(c: &Client) -> Option<BTreeSet<String>> {
    c.messages.iter().rev().find_map(|m| match m {
        BridgeMessage::ForwardedSources(f) => {
            Some(f.forwarded_sources.iter().cloned().collect::<BTreeSet<_>>())
        }
        _ => None,
    })
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn a_receiver_learns_who_is_in_which_slot() {
    let (plane, mut events, channels, http) = start().await;
    let mut a = Client::join(&plane, &channels, http, "alice").await;
    let mut b = Client::join(&plane, &channels, http, "bob").await;
    connect(&mut [&mut a, &mut b], &mut events).await;
    for n in 0..5 {
        a.send_audio(n, 30);
        a.send_video(n);
        b.send_audio(n, 30);
        b.send_video(n);
        pump_for(&mut [&mut a, &mut b], Duration::from_millis(20)).await;
    }
    // (Undelivered maps are retried every 200 ms until the socket is open.)
    pump_for(&mut [&mut a, &mut b], Duration::from_millis(300)).await;
    // Alice and bob already see each other in their slot 0.
    assert_eq!(last_forwarded(&a), Some(set(&["bob-v0"])));
    assert_eq!(last_forwarded(&b), Some(set(&["alice-v0"])));

    let mut c = Client::join(&plane, &channels, http, "carol").await;
    connect(&mut [&mut c], &mut events).await;
    for n in 5..25 {
        a.send_audio(n, 30);
        a.send_video(n);
        b.send_audio(n, 30);
        b.send_video(n);
        pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(20)).await;
    }
    pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(100)).await;

    let (audio, video) = last_maps(&c);
    let names = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    assert_eq!(
        names(audio.iter().map(|a| a.0.clone()).collect()),
        set(&["alice-a0", "bob-a0"]),
        "{:?}",
        c.messages
    );
    assert_eq!(
        names(video.iter().map(|v| v.0.clone()).collect()),
        set(&["alice-v0", "bob-v0"])
    );
    assert_eq!(last_forwarded(&c), Some(set(&["alice-v0", "bob-v0"])));
    // Every SSRC named is one of carol's slots in her offer.
    for (source, ssrc, mid) in &audio {
        assert!(
            c.offer.contains(&format!("a=ssrc:{ssrc} ")),
            "{source} {ssrc}"
        );
        // And the media of that source arrives on that slot.
        let owner = source.strip_suffix("-a0").unwrap();
        let mid = mid.clone().expect("the slot's mid is named");
        assert_eq!(c.mids_from(owner, false), set(&[mid.as_str()]), "{source}");
    }
    for (source, ssrc, rtx) in &video {
        assert!(
            c.offer.contains(&format!("a=ssrc-group:FID {ssrc} {rtx}")),
            "{source} {ssrc} {rtx}"
        );
    }
    let ssrcs: BTreeSet<u32> = video.iter().map(|v| v.1).collect();
    assert_eq!(ssrcs.len(), 2, "two different slots");

    // Carol puts bob on stage with lastN 1: alice's video stops reaching
    // her and the maps say only bob is forwarded; lastN 2 brings alice back.
    // Alice's video frames numbered in `range` that carol got.
    let frames = |c: &Client, range: std::ops::Range<u32>| {
        range
            .filter(|n| {
                let mut needle = b"alice:".to_vec();
                needle.extend_from_slice(&n.to_be_bytes());
                c.received.iter().any(|(m, p)| {
                    m.starts_with("video") && p.get(3..).is_some_and(|p| p.starts_with(&needle))
                })
            })
            .count()
    };
    c.sink.send(Message::Text(r#"{"colibriClass":"ReceiverVideoConstraints","lastN":1,"onStageSources":["bob-v0"],"defaultConstraints":{"maxHeight":180}}"#.into())).await.unwrap();
    c.sink
        .send(Message::Text(
            r#"{"colibriClass":"ReceiverAudioSubscription","all":true}"#.into(),
        ))
        .await
        .unwrap();
    pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(100)).await;
    for n in 25..30 {
        a.send_video(n);
        b.send_video(n);
        pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(20)).await;
    }
    pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(100)).await;
    assert_eq!(frames(&c, 25..30), 0, "alice is outside carol's lastN");
    assert_eq!(last_forwarded(&c), Some(set(&["bob-v0"])));
    c.sink
        .send(Message::Text(
            r#"{"colibriClass":"LastNChangedEvent","lastN":2}"#.into(),
        ))
        .await
        .unwrap();
    pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(100)).await;
    for n in 30..35 {
        a.send_video(n);
        b.send_video(n);
        pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(20)).await;
    }
    pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(100)).await;
    assert_eq!(frames(&c, 30..35), 5, "alice is back");
    assert_eq!(last_forwarded(&c), Some(set(&["alice-v0", "bob-v0"])));
    assert_eq!(plane.stats().await.connected, 3);

    // Alice leaves: carol's maps no longer name her.
    plane.remove_endpoint(&key("alice")).await;
    channels.remove(&key("alice"));
    pump_for(&mut [&mut b, &mut c], Duration::from_millis(300)).await;
    assert_eq!(last_forwarded(&c), Some(set(&["bob-v0"])));
    let (audio, video) = last_maps(&c);
    assert_eq!(audio.len(), 1);
    assert_eq!(video.len(), 1);
    assert_eq!(video[0].0, "bob-v0");
}

/// Frames numbered in `range` of `nick`'s audio that `c` received.
fn audio_frames(c: &Client, nick: &str, range: std::ops::Range<u32>) -> usize {
    range
        .filter(|n| {
            let wanted = frame(nick, *n);
            c.received
                .iter()
                .any(|(m, p)| m.starts_with("audio") && *p == wanted)
        })
        .count()
}

fn audio_sources(c: &Client) -> BTreeSet<String> {
    last_maps(c).0.into_iter().map(|a| a.0).collect()
}

#[tokio::test]
async fn the_loudest_publishers_fill_the_audio_slots() {
    let (plane, mut events, channels, http) = start().await;
    let mut clients = Vec::new();
    for nick in ["alice", "bob", "carol", "dave", "erin"] {
        clients.push(Client::join(&plane, &channels, http, nick).await);
    }
    let mut all: Vec<&mut Client> = clients.iter_mut().collect();
    connect(&mut all, &mut events).await;
    // Everyone is silent: erin's three audio slots hold the first three
    // who joined, and dave is not heard.
    let mut n = 0;
    for _ in 0..10 {
        for c in all.iter_mut() {
            c.send_audio(n, 127);
        }
        n += 1;
        pump_for(&mut all, Duration::from_millis(20)).await;
    }
    pump_for(&mut all, Duration::from_millis(300)).await;
    assert_eq!(
        audio_sources(all[4]),
        set(&["alice-a0", "bob-a0", "carol-a0"])
    );
    assert_eq!(audio_frames(all[4], "dave", 0..n), 0);

    // Dave talks: from his first or second packet on, erin hears him (in
    // a silent publisher's slot), and her maps say so.
    let first = n;
    for _ in 0..25 {
        for (i, c) in all.iter_mut().enumerate() {
            c.send_audio(n, if i == 3 { 25 } else { 127 });
        }
        n += 1;
        pump_for(&mut all, Duration::from_millis(20)).await;
    }
    pump_for(&mut all, Duration::from_millis(300)).await;
    let heard = audio_frames(all[4], "dave", first..n);
    assert!(heard >= 23, "erin heard {heard} of dave's 25 frames");
    let sources = audio_sources(all[4]);
    assert!(sources.contains("dave-a0"), "{sources:?}");
    assert_eq!(sources.len(), 3, "{sources:?}");
    // The other receivers with a slot to spare for him heard him too.
    assert!(audio_frames(all[0], "dave", first..n) >= 23);

    // Dave goes quiet and erin talks: dave now hears her, and erin keeps
    // dave in her slots (the silent ones are no louder than he is).
    for _ in 0..25 {
        for (i, c) in all.iter_mut().enumerate() {
            c.send_audio(n, if i == 4 { 20 } else { 127 });
        }
        n += 1;
        pump_for(&mut all, Duration::from_millis(20)).await;
    }
    pump_for(&mut all, Duration::from_millis(300)).await;
    assert!(audio_sources(all[3]).contains("erin-a0"));
    assert_eq!(audio_sources(all[3]).len(), 3);
    assert!(audio_sources(all[4]).contains("dave-a0"));
}

#[tokio::test]
async fn a_receiver_gets_only_the_audio_it_subscribes_to() {
    let (plane, mut events, channels, http) = start().await;
    let mut a = Client::join(&plane, &channels, http, "alice").await;
    let mut b = Client::join(&plane, &channels, http, "bob").await;
    let mut c = Client::join(&plane, &channels, http, "carol").await;
    connect(&mut [&mut a, &mut b, &mut c], &mut events).await;
    let mut n = 0;
    let talk = async |a: &mut Client, b: &mut Client, c: &mut Client, n: &mut u32| {
        let first = *n;
        for _ in 0..10 {
            a.send_audio(*n, 30);
            b.send_audio(*n, 30);
            *n += 1;
            pump_for(&mut [&mut *a, &mut *b, &mut *c], Duration::from_millis(20)).await;
        }
        pump_for(&mut [&mut *a, &mut *b, &mut *c], Duration::from_millis(200)).await;
        first..*n
    };
    let frames = talk(&mut a, &mut b, &mut c, &mut n).await;
    assert_eq!(audio_frames(&c, "alice", frames.clone()), 10);
    assert_eq!(audio_frames(&c, "bob", frames), 10);

    for (subscription, alice, bob) in [
        (r#""all":true,"exclude":["alice-a0"]"#, false, true),
        (r#""all":false"#, false, false),
        (r#""include":["alice"]"#, true, false),
        (r#""mode":"Exclude","list":["bob-a0"]"#, true, false),
        (r#""all":true"#, true, true),
    ] {
        let json = format!(r#"{{"colibriClass":"ReceiverAudioSubscription",{subscription}}}"#);
        c.sink.send(Message::Text(json.into())).await.unwrap();
        pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(100)).await;
        let frames = talk(&mut a, &mut b, &mut c, &mut n).await;
        let heard = |nick| audio_frames(&c, nick, frames.clone());
        assert_eq!(heard("alice"), if alice { 10 } else { 0 }, "{subscription}");
        assert_eq!(heard("bob"), if bob { 10 } else { 0 }, "{subscription}");
        let mut expected = Vec::new();
        if alice {
            expected.push("alice-a0");
        }
        if bob {
            expected.push("bob-a0");
        }
        assert_eq!(audio_sources(&c), set(&expected), "{subscription}");
    }
    // Alice subscribed to nothing new: she still hears bob.
    assert!(audio_frames(&a, "bob", 0..n) >= n as usize - 2);
}

impl Peer for Client {
    fn pump(&mut self) {
        Client::pump(self)
    }
    fn is_connected(&self) -> bool {
        self.connected
    }
    fn endpoint(&self) -> String {
        key(self.nick)
    }
}
