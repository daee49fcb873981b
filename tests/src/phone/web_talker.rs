//! WebRTC participants for the gateway benchmark's rooms, so that a room
//! mixes phone callers and web participants as a real one does.
//!
//! Contract: [`WebTalker::join`] joins a room through the focus the way a
//! browser does (an anonymous XMPP login, the conference IQ, Jingle, a
//! str0m leg to the sfu; the `participant` crate the gateway's callers use)
//! and publishes a tone as Opus, one packet every 20 ms with its RFC 6464
//! level, until [`WebTalker::leave`]. It subscribes to no audio itself.
//! The packets are encoded once ([`tone_packets`]) and replayed, so that
//! a talker costs the harness little CPU.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::media::opus::{Layout, OpusEncoder, MAX_PACKET};
use gateway::media::FRAME_48K;
use jid::{BareJid, Jid};
use participant::{JoinOptions, Meeting, MeetingEvent};
use proto::bridge_channel::ReceiverAudioSubscription;
use tokio::sync::{mpsc, oneshot};
use xmpp_session::XmppConfig;

/// One second of a `hz` tone at `peak` (of full scale) as 20 ms Opus
/// packets (mono, `bitrate`), looped by the talkers.
pub fn tone_packets(hz: f64, peak: f64, bitrate: i32) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut enc = OpusEncoder::new(Layout::Mono, bitrate)?;
    let mut buf = [0u8; MAX_PACKET];
    let frames = 50;
    let mut packets = Vec::with_capacity(frames);
    for f in 0..frames {
        let pcm: Vec<i16> = (0..FRAME_48K)
            .map(|i| {
                let n = (f * FRAME_48K + i) as f64;
                let x = (2.0 * std::f64::consts::PI * hz * n / 48_000.0).sin();
                (peak * 32767.0 * x) as i16
            })
            .collect();
        let n = enc.encode(&pcm, &mut buf)?;
        packets.push(buf[..n].to_vec());
    }
    Ok(packets)
}

/// A web participant talking in a room.
pub struct WebTalker {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl WebTalker {
    /// Joins `room` as `nick` and starts talking: `packets` in a loop, each
    /// with `level` (-dBov).
    pub async fn join(
        xmpp: XmppConfig,
        focus: Jid,
        room: BareJid,
        nick: String,
        packets: Arc<Vec<Vec<u8>>>,
        level: u8,
    ) -> anyhow::Result<WebTalker> {
        let (meeting, events) = Meeting::join(JoinOptions {
            xmpp,
            focus,
            room,
            nick,
            bind_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
            features: Vec::new(),
            presence: Vec::new(),
            status: None,
        })
        .await?;
        meeting.set_audio_subscription(ReceiverAudioSubscription {
            all: Some(false),
            ..ReceiverAudioSubscription::default()
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(talk(meeting, events, packets, level, stopped));
        Ok(WebTalker { stop, task })
    }

    /// Stops talking and leaves the room.
    pub async fn leave(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn talk(
    meeting: Meeting,
    mut events: mpsc::UnboundedReceiver<MeetingEvent>,
    packets: Arc<Vec<Vec<u8>>>,
    level: u8,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            ev = events.recv() => match ev {
                None | Some(MeetingEvent::Ended(_)) => break,
                Some(_) => {}
            },
            _ = clock.tick() => {
                if let Some(p) = packets.get(n % packets.len().max(1)) {
                    meeting.send_audio(p.clone(), FRAME_48K as u32, level, Instant::now());
                }
                n += 1;
            }
        }
    }
    meeting.leave().await;
}
