//! A whole meeting for end-to-end tests: a private Prosody, the real `sfu`
//! (focus, media plane, bridge channel) in process, and three webrtcbin
//! participants, each publishing its own test pattern, size and tone.

use std::time::Duration;

use jid::{BareJid, Jid};
use xmpp_session::{Security, XmppConfig};

use crate::webrtc::{MediaConfig, StreamKind, StreamStats, WebrtcParticipant};
use crate::{Prosody, ProsodyOptions};

/// A guest's (anonymous) XMPP settings for `prosody`.
pub fn xmpp(prosody: &Prosody) -> XmppConfig {
    XmppConfig {
        server: prosody.c2s_addr().to_string(),
        domain: prosody.domain().to_owned(),
        security: Security::Plaintext,
        ..XmppConfig::default()
    }
}

/// XMPP settings for `account` on `prosody` (anonymous without one).
pub fn xmpp_as(prosody: &Prosody, account: Option<&crate::Account>) -> XmppConfig {
    XmppConfig {
        jid: account.map(crate::Account::jid).unwrap_or_default(),
        password: account.map(|a| a.password.clone()).unwrap_or_default(),
        ..xmpp(prosody)
    }
}

/// Waits until `f` holds for the participant's received streams.
pub async fn until(
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

pub fn has_video(s: &[StreamStats], w: u32, h: u32) -> bool {
    s.iter()
        .any(|s| s.kind == StreamKind::Video && s.frames > 10 && s.width == w && s.height == h)
}

pub fn has_tone(s: &[StreamStats], hz: f32) -> bool {
    s.iter()
        .any(|s| s.kind == StreamKind::Audio && s.rms > 0.01 && (s.dominant_hz - hz).abs() < 15.0)
}

pub struct Meeting {
    pub prosody: Prosody,
    pub people: Vec<WebrtcParticipant>,
    /// The sfu's HTTP address (health, metrics, bridge channel).
    pub http: std::net::SocketAddr,
    sfu: InProcessSfu,
}

pub const PEOPLE: [(&str, u32, u32, u32, f64); 3] = [
    ("aaaa0001", 0, 320, 240, 440.0),
    ("bbbb0002", 18, 640, 360, 880.0),
    ("cccc0003", 1, 480, 270, 660.0),
];

/// The real `sfu`, running in this process as the focus of a Prosody.
pub struct InProcessSfu {
    /// The sfu's HTTP address (health, metrics, bridge channel, page).
    pub http: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessSfu {
    /// Registers the focus account on `prosody`, starts the sfu (media on a
    /// free loopback port, HTTP on a free port) with `configure` applied
    /// last, and waits until it is healthy.
    pub async fn start(prosody: &Prosody, configure: impl FnOnce(&mut sfu::Config)) -> Self {
        let focus = prosody.register_service("focus").unwrap();
        let mut config = sfu::Config {
            xmpp: XmppConfig {
                jid: focus.jid(),
                password: focus.password.clone(),
                resource: "focus".into(),
                ..xmpp(prosody)
            },
            ..sfu::Config::default()
        };
        config.media.bind = "127.0.0.1:0".into();
        config.apply_env();
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sfu::run_with_listener(config, listener, async move {
            let _ = stopped.await;
        }));
        crate::wait_healthy(http, Duration::from_secs(10)).await;
        InProcessSfu { http, stop, task }
    }

    /// [`start`](Self::start) serving the built meeting page (`web/dist`,
    /// built first if needed) with its XMPP relayed to `prosody`'s WebSocket.
    pub async fn with_page(
        prosody: &Prosody,
        configure: impl FnOnce(&mut sfu::Config),
    ) -> anyhow::Result<Self> {
        let dist = crate::page::ensure_built()?;
        let websocket = prosody.websocket_url();
        Ok(Self::start(prosody, |c| {
            c.http.web_root = dist.to_string_lossy().into_owned();
            c.http.xmpp_websocket = websocket;
            configure(c);
        })
        .await)
    }

    /// Stops the sfu (it leaves its rooms) and waits up to 10 s for it.
    pub async fn end(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

pub async fn meeting() -> Meeting {
    crate::init_logs();
    crate::webrtc::init().unwrap();
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let sfu = InProcessSfu::start(&prosody, |_| {}).await;
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
        prosody,
        people,
        http: sfu.http,
        sfu,
    }
}

impl Meeting {
    pub async fn end(self) {
        drop(self.people);
        self.sfu.end().await;
    }
}

/// Owners of the sources in a Jingle message (contents or json-message).
pub fn owners(j: &proto::jingle::Jingle) -> Vec<String> {
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
