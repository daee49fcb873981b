//! The real `gateway` in this process, as a pool member of a private
//! Prosody, next to an in-process sfu: SIP on a free loopback port (UDP and
//! TCP), `/health` and `/metrics` on another, the sfu's built-in conference
//! mapper for PINs, and the spoken prompts that `scripts/prompts` makes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::meeting::xmpp;
use crate::Prosody;

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

    /// Stops the gateway (draining: current calls end first) and waits up
    /// to `within` for it.
    pub async fn end(self, within: Duration) -> bool {
        let _ = self.stop.send(());
        tokio::time::timeout(within, self.task).await.is_ok()
    }
}
