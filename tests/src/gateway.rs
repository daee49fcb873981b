//! The real `gateway` in this process, as a pool member of a private
//! Prosody, next to an in-process sfu: SIP on a free loopback port (UDP and
//! TCP), `/health` and `/metrics` on another, the sfu's built-in conference
//! mapper for PINs, and the spoken prompts that `scripts/prompts` makes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jid::{BareJid, Jid};

use crate::meeting::{owners, xmpp, InProcessSfu};
use crate::phone::{write_tone_pcap, DialIn, Law, Media, RtpSink, Step};
use crate::webrtc::{MediaConfig, WebrtcParticipant};
use crate::{Prosody, ProsodyOptions};

/// The phone's tone (sipp plays it) and the web participant's.
pub const PHONE_HZ: f64 = 1000.0;
pub const WEB_HZ: f64 = 440.0;

/// The prompts folder (made by `scripts/setup`; made here if missing).
pub fn prompts() -> PathBuf {
    let dir = crate::workspace_root().join(".local/prompts");
    if !dir.join("enter-pin.wav").exists() {
        let status = std::process::Command::new(crate::workspace_root().join("scripts/prompts"))
            .arg(&dir)
            .status()
            .expect("running scripts/prompts");
        assert!(status.success(), "scripts/prompts failed");
    }
    dir
}

pub struct InProcessGateway {
    /// SIP (UDP and TCP).
    pub sip: SocketAddr,
    /// `/health` and `/metrics`.
    pub http: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessGateway {
    /// Registers the gateway's account on `prosody` and starts the gateway
    /// with the mapper of the sfu at `sfu_http`, then `configure`; returns
    /// once it is healthy (in XMPP).
    pub async fn start(
        prosody: &Prosody,
        sfu_http: SocketAddr,
        configure: impl FnOnce(&mut ::gateway::Config),
    ) -> Self {
        let account = prosody.register_service("gateway").unwrap();
        let mut config = ::gateway::Config {
            xmpp: xmpp_session::XmppConfig {
                jid: account.jid(),
                password: account.password.clone(),
                ..xmpp(prosody)
            },
            ..::gateway::Config::default()
        };
        config.sip.listen = "127.0.0.1:0".into();
        config.http.listen = "127.0.0.1:0".into();
        config.dial_in.mapper = Some(::gateway::mapper::Mapper::Builtin {
            base_url: format!("http://{sfu_http}"),
        });
        config.dial_in.prompts = prompts();
        config.apply_env();
        configure(&mut config);
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(::gateway::run_with(
            config,
            async move {
                let _ = stopped.await;
            },
            move |b| {
                let _ = bound_tx.send(b);
            },
        ));
        let bound = tokio::time::timeout(Duration::from_secs(10), bound_rx)
            .await
            .expect("the gateway did not start in 10 s")
            .expect("the gateway failed to start");
        let http = bound.http.expect("http listens");
        crate::wait_healthy(http, Duration::from_secs(10)).await;
        InProcessGateway {
            sip: bound.sip,
            http,
            stop,
            task,
        }
    }

    /// One value of `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let answer = crate::http::get(self.http, "/metrics").await.ok()?;
        String::from_utf8_lossy(&answer.body).lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok())?
        })
    }

    /// The gateway's task has not ended (no error, no panic, no shutdown).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the gateway (draining: current calls end first) and waits up
    /// to `within` for it.
    pub async fn end(self, within: Duration) -> bool {
        let _ = self.stop.send(());
        tokio::time::timeout(within, self.task).await.is_ok()
    }
}

/// A whole dial-in setup: Prosody, the sfu, the gateway, one webrtcbin
/// participant (`aaaa0001`, the moderator, sending [`WEB_HZ`]) in room
/// `board`, and a tone pcap of [`PHONE_HZ`] for sipp to play.
pub struct Stack {
    pub prosody: Prosody,
    pub sfu: InProcessSfu,
    pub gateway: InProcessGateway,
    pub web: WebrtcParticipant,
    pub room: BareJid,
    pub pcap: tempfile::TempDir,
}

impl Stack {
    pub async fn start(configure: impl FnOnce(&mut ::gateway::Config)) -> Stack {
        crate::init_logs();
        crate::webrtc::init().unwrap();
        let prosody = Prosody::start_async(ProsodyOptions::default())
            .await
            .unwrap();
        let sfu = InProcessSfu::start(&prosody, |_| {}).await;
        let gateway = InProcessGateway::start(&prosody, sfu.http, configure).await;
        let focus = Jid::new(&format!("focus@auth.{}/focus", prosody.domain())).unwrap();
        let room = BareJid::new(&format!("board@{}", prosody.conference_domain())).unwrap();
        let media = MediaConfig {
            tone_hz: WEB_HZ,
            ..MediaConfig::default()
        };
        let web = WebrtcParticipant::join(xmpp(&prosody), focus, room.clone(), "aaaa0001", media)
            .await
            .unwrap();
        let pcap = tempfile::tempdir().unwrap();
        write_tone_pcap(
            pcap.path().join("tone.pcap"),
            PHONE_HZ,
            20.0,
            Law::Pcmu,
            0.5,
        )
        .unwrap();
        Stack {
            prosody,
            sfu,
            gateway,
            web,
            room,
            pcap,
        }
    }

    pub fn tone(&self) -> std::path::PathBuf {
        self.pcap.path().join("tone.pcap")
    }

    /// A caller into room `board` whose phone plays the tone, then `after`;
    /// the gateway's RTP goes to `sink`.
    pub fn board_caller(&self, sink: &RtpSink, after: Vec<Step>) -> DialIn {
        let mut steps = vec![Step::PlayPcap(self.tone())];
        steps.extend(after);
        DialIn {
            room: Some("board".into()),
            media: Media::At(sink.addr()),
            steps,
            ..DialIn::default()
        }
    }

    /// Runs one sipp call in the background.
    pub fn call(&self, scenario: String) -> tokio::task::JoinHandle<crate::sipp::Outcome> {
        let target = self.gateway.sip;
        tokio::spawn(async move {
            crate::phone::run_call(
                crate::sipp::Scenario::Xml(&scenario),
                target,
                &[],
                Duration::from_secs(60),
            )
            .await
            .expect("sipp ran")
        })
    }

    /// The web participant's view of the phone participant's nick (the
    /// owner of the sources the focus announces that are not its own).
    pub async fn phone_nick(&self) -> String {
        for _ in 0..100 {
            let nick = self
                .web
                .jingle_log()
                .iter()
                .flat_map(|r| owners(&r.jingle))
                .find(|o| o != "aaaa0001" && o != "focus" && !o.contains('@'));
            if let Some(n) = nick {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the phone participant's sources were never announced");
    }

    pub async fn metric(&self, name: &str) -> f64 {
        self.gateway.metric(name).await.unwrap_or(f64::NAN)
    }

    pub async fn until_metric(&self, name: &str, want: f64, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.metric(name).await;
            if v == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} stayed {v}, expected {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn end(self) {
        drop(self.web);
        assert!(
            self.gateway.end(Duration::from_secs(10)).await,
            "the gateway did not stop"
        );
        self.sfu.end().await;
        drop(self.prosody);
    }
}
