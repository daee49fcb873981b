//! A meeting with three independent WebRTC clients (GStreamer's webrtcbin,
//! a stack we did not write) joining through XMPP and Jingle, through the
//! real focus and media plane.
//!
//! - Signalling: each gets a session-initiate carrying the sources of those
//!   already in, answers it, and hears about later arrivals with
//!   `source-add`; when one leaves, the others get `source-remove`.
//! - Media: each decodes both others' video at the size they publish and
//!   hears both their tones.

use std::time::Duration;

use jid::{BareJid, Jid};
use tests::webrtc::{MediaConfig, StreamKind, StreamStats, WebrtcParticipant};
use tests::{Prosody, ProsodyOptions};
use xmpp_session::{Security, XmppConfig};

fn xmpp(prosody: &Prosody) -> XmppConfig {
    XmppConfig {
        server: prosody.c2s_addr().to_string(),
        domain: prosody.domain().to_owned(),
        security: Security::Plaintext,
        ..XmppConfig::default()
    }
}

/// Waits until `f` holds for the participant's received streams.
async fn until(
    p: &WebrtcParticipant,
    what: &str,
    secs: u64,
    f: impl Fn(&[StreamStats]) -> bool,
) -> Vec<StreamStats> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = p.received();
        if f(&got) {
            return got;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: received {got:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn has_video(s: &[StreamStats], w: u32, h: u32) -> bool {
    s.iter()
        .any(|s| s.kind == StreamKind::Video && s.frames > 10 && s.width == w && s.height == h)
}

fn has_tone(s: &[StreamStats], hz: f32) -> bool {
    s.iter()
        .any(|s| s.kind == StreamKind::Audio && s.rms > 0.01 && (s.dominant_hz - hz).abs() < 15.0)
}

struct Meeting {
    _prosody: Prosody,
    people: Vec<WebrtcParticipant>,
    stop: tokio::sync::oneshot::Sender<()>,
    sfu: tokio::task::JoinHandle<anyhow::Result<()>>,
}

const PEOPLE: [(&str, u32, u32, u32, f64); 3] = [
    ("aaaa0001", 0, 320, 240, 440.0),
    ("bbbb0002", 18, 640, 360, 880.0),
    ("cccc0003", 1, 480, 270, 660.0),
];

async fn meeting() -> Meeting {
    tests::init_logs();
    tests::webrtc::init().unwrap();
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let focus = prosody.register_service("focus").unwrap();
    let mut config = sfu::Config {
        xmpp: XmppConfig {
            jid: focus.jid(),
            password: focus.password.clone(),
            resource: "focus".into(),
            ..xmpp(&prosody)
        },
        ..sfu::Config::default()
    };
    config.media.bind = "127.0.0.1:0".into();
    config.apply_env();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sfu = tokio::spawn(sfu::run_with_listener(config, listener, async move {
        let _ = stopped.await;
    }));
    tests::wait_healthy(http, Duration::from_secs(10)).await;
    let focus_jid = Jid::new(&format!("focus@auth.{}/focus", prosody.domain())).unwrap();
    let room = BareJid::new(&format!("standup@{}", prosody.conference_domain())).unwrap();
    let mut people = Vec::new();
    for (nick, pattern, width, height, tone_hz) in PEOPLE {
        let media = MediaConfig {
            video_pattern: pattern,
            width,
            height,
            tone_hz,
        };
        let p =
            WebrtcParticipant::join(xmpp(&prosody), focus_jid.clone(), room.clone(), nick, media)
                .await
                .unwrap();
        people.push(p);
    }
    Meeting {
        _prosody: prosody,
        people,
        stop,
        sfu,
    }
}

impl Meeting {
    async fn end(self) {
        drop(self.people);
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.sfu).await;
    }
}

/// Owners of the sources in a Jingle message (contents or json-message).
fn owners(j: &proto::jingle::Jingle) -> Vec<String> {
    let mut out: Vec<String> = j
        .contents
        .iter()
        .flat_map(|c| c.description.iter().flat_map(|d| d.sources.iter()))
        .filter_map(|s| s.owner.clone())
        .collect();
    if let Some(json) = &j.json_message {
        out.extend(json.owners.iter().map(|o| o.owner.clone()));
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_webrtcbin_participants_signal_through_the_focus() {
    let mut m = meeting().await;
    // Everyone ends up knowing the other two's sources: from the
    // session-initiate for those already there, from source-add for later ones.
    for (i, p) in m.people.iter().enumerate() {
        let me = PEOPLE[i].0;
        let want: Vec<String> = PEOPLE
            .iter()
            .map(|x| x.0.to_owned())
            .filter(|n| n != me)
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut known: Vec<String> = p
                .jingle_log()
                .iter()
                .filter(|r| {
                    matches!(
                        r.jingle.action,
                        proto::jingle::Action::SessionInitiate | proto::jingle::Action::SourceAdd
                    )
                })
                .flat_map(|r| owners(&r.jingle))
                .collect();
            known.sort();
            known.dedup();
            if known == want {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let log: Vec<_> = p
                    .jingle_log()
                    .iter()
                    .map(|r| (r.jingle.action, owners(&r.jingle), r.jingle.contents.len()))
                    .collect();
                panic!("{me} knows {known:?}, wants {want:?}; jingle log {log:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The first session-initiate carried the bridge channel's URL.
    let initiate = m.people[0]
        .jingle_log()
        .into_iter()
        .find(|r| r.jingle.action == proto::jingle::Action::SessionInitiate)
        .unwrap();
    let ws = &initiate.jingle.contents[0]
        .transport
        .as_ref()
        .unwrap()
        .web_sockets;
    assert!(
        ws.first().is_some_and(|u| u.contains("/colibri-ws/")),
        "{ws:?}"
    );

    // The third leaves: the others are told its sources are gone.
    let leaver = m.people.pop().unwrap();
    leaver.leave().await;
    for p in &m.people {
        let remove = p
            .wait_for_jingle(proto::jingle::Action::SourceRemove, Duration::from_secs(10))
            .await
            .expect("source-remove");
        assert_eq!(owners(&remove), vec!["cccc0003".to_owned()]);
    }
    m.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_webrtcbin_participants_see_and_hear_each_other() {
    let m = meeting().await;
    for (i, p) in m.people.iter().enumerate() {
        let others: Vec<_> = PEOPLE
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| *x)
            .collect();
        let got = until(
            p,
            &format!("{} decodes and hears the others", PEOPLE[i].0),
            30,
            |s| {
                others
                    .iter()
                    .all(|o| has_video(s, o.2, o.3) && has_tone(s, o.4 as f32))
            },
        )
        .await;
        eprintln!(
            "{} received: {:?}",
            PEOPLE[i].0,
            got.iter()
                .map(|s| (s.kind, s.width, s.height, s.dominant_hz as u32))
                .collect::<Vec<_>>()
        );
    }
    m.end().await;
}
