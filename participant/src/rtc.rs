//! A participant's WebRTC leg to the SFU: str0m in frame mode. It answers
//! the SFU's offer (from the focus's `session-initiate`) and hands every
//! assembled frame (VP8, H.264, Opus) to its owner as a [`Frame`], with its
//! arrival time. It sends media only when told ([`RtcLeg::send_audio`]: Opus
//! on the first audio line that sends, with its RFC 6464 level); a
//! recorder never does.
//!
//! Contract: [`RtcLeg::answer`] binds one UDP socket (on the address that
//! routes to the SFU's first candidate, or `bind_ip`), returns the answer
//! SDP and a handle; a task drives str0m until [`RtcLeg::close`], the
//! SFU's DTLS close, or ICE failure, then sends [`RtcEvent::Closed`].
//! Keyframe requests are PLIs on the slot's line, at most one per 500 ms
//! per line. Malformed datagrams are str0m's to reject; nothing panics on
//! them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use str0m::change::SdpOffer;
use str0m::format::Codec as StrCodec;
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The codec of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    H264,
    Opus,
    Other,
}

/// One assembled frame from a receive line.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The line (`audio`, `audio_1`, `video_1`, ...).
    pub mid: String,
    pub video: bool,
    pub codec: Codec,
    pub data: std::sync::Arc<[u8]>,
    /// When its first packet arrived.
    pub at: Instant,
    /// False after a gap: the decoder may need a keyframe.
    pub contiguous: bool,
    /// Its RTP timestamp (the line's clock: 48 kHz for Opus, 90 kHz video).
    pub rtp_time: u64,
}

#[derive(Debug)]
pub enum RtcEvent {
    Connected,
    Frame(Frame),
    Closed(String),
}

enum Command {
    Keyframe(String),
    Audio {
        data: Vec<u8>,
        samples: u32,
        level: u8,
        at: Instant,
    },
    Close,
}

/// The handle of a running leg.
#[derive(Debug, Clone)]
pub struct RtcLeg {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Keyframe(m) => write!(f, "Keyframe({m})"),
            Command::Audio { data, .. } => write!(f, "Audio({} bytes)", data.len()),
            Command::Close => f.write_str("Close"),
        }
    }
}

/// Minimum time between two keyframe requests on one line.
const KEYFRAME_GAP: Duration = Duration::from_millis(500);

impl RtcLeg {
    /// Answers `offer`; returns the answer SDP, the handle and the events.
    pub async fn answer(
        offer: &str,
        bind_ip: Option<IpAddr>,
    ) -> Result<(String, RtcLeg, mpsc::UnboundedReceiver<RtcEvent>)> {
        let ip = match bind_ip {
            Some(ip) => ip,
            None => route_to(first_candidate(offer).context("the offer has no candidate")?)?,
        };
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .with_context(|| format!("binding a UDP socket on {ip}"))?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(
            Candidate::host(local, "udp").map_err(|e| anyhow!("local candidate: {e}"))?,
        );
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| anyhow!("the SFU's offer: {e}"))?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| anyhow!("answering the SFU's offer: {e}"))?;
        let (commands, rx) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(rtc, socket, local, rx, events));
        Ok((answer.to_sdp_string(), RtcLeg { commands }, events_rx))
    }

    /// Asks the sender of line `mid` for a keyframe.
    pub fn request_keyframe(&self, mid: &str) {
        let _ = self.commands.send(Command::Keyframe(mid.to_owned()));
    }

    /// Sends one Opus packet covering `samples` at 48 kHz, loudness `level`
    /// (RFC 6464: 0 is full scale, 127 silence), captured at `at`. Dropped
    /// until the leg is connected.
    pub fn send_audio(&self, data: Vec<u8>, samples: u32, level: u8, at: Instant) {
        let _ = self.commands.send(Command::Audio {
            data,
            samples,
            level,
            at,
        });
    }

    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }
}

/// Writes one Opus packet on `mid`; returns false when the line cannot.
fn write_audio(rtc: &mut Rtc, mid: Mid, data: Vec<u8>, level: u8, at: Instant, ts: u64) -> bool {
    let Some(w) = rtc.writer(mid) else {
        return false;
    };
    let Some(pt) = w
        .payload_params()
        .find(|p| p.spec().codec == StrCodec::Opus)
        .map(|p| p.pt())
    else {
        return false;
    };
    let level = level.min(127);
    let w = w.audio_level(-(level as i8), level < 127);
    w.write(pt, at, MediaTime::new(ts, Frequency::FORTY_EIGHT_KHZ), data)
        .is_ok()
}

/// The address of the first `a=candidate` of an SDP.
fn first_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|l| {
        let c = l.trim().strip_prefix("a=candidate:")?;
        let f: Vec<&str> = c.split_whitespace().collect();
        let ip: IpAddr = f.get(4)?.parse().ok()?;
        let port: u16 = f.get(5)?.parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

/// The local address the system would use to reach `to`.
fn route_to(to: SocketAddr) -> Result<IpAddr> {
    service::local_ip_towards(to).with_context(|| format!("no route to the SFU at {to}"))
}

fn codec(c: StrCodec) -> Codec {
    match c {
        StrCodec::Vp8 => Codec::Vp8,
        StrCodec::H264 => Codec::H264,
        StrCodec::Opus => Codec::Opus,
        _ => Codec::Other,
    }
}

async fn drive(
    mut rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<RtcEvent>,
) {
    let mut buf = vec![0u8; 2000];
    let mut last_request: HashMap<String, Instant> = HashMap::new();
    // The audio line we send on, and its RTP clock.
    let mut audio_out: Option<Mid> = None;
    let mut audio_ts: u64 = 0;
    let why = loop {
        // Everything str0m wants out, until it says when to come back.
        let wake = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break Ok(t),
                Ok(Output::Transmit(t)) => {
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        let _ = events.send(RtcEvent::Connected);
                    }
                    Event::MediaAdded(m)
                        if audio_out.is_none()
                            && m.kind == MediaKind::Audio
                            && m.direction.is_sending() =>
                    {
                        audio_out = Some(m.mid);
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        tracing::warn!("ICE to the SFU disconnected");
                    }
                    Event::MediaData(d) => {
                        let video = rtc
                            .media(d.mid)
                            .is_some_and(|m| m.kind() == MediaKind::Video);
                        let _ = events.send(RtcEvent::Frame(Frame {
                            mid: d.mid.to_string(),
                            video,
                            codec: codec(d.params.spec().codec),
                            data: d.data,
                            at: d.network_time,
                            contiguous: d.contiguous,
                            rtp_time: d.time.numer(),
                        }));
                    }
                    _ => {}
                },
                Err(e) => break Err(format!("str0m: {e}")),
            }
        };
        let wake = match wake {
            Ok(t) => t,
            Err(e) => break e,
        };
        if !rtc.is_alive() {
            break "the WebRTC session ended".to_string();
        }
        let sleep = wake.saturating_duration_since(Instant::now());
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: local, contents },
                    );
                    if rtc.accepts(&input) {
                        if let Err(e) = rtc.handle_input(input) {
                            tracing::debug!("datagram refused: {e}");
                        }
                    }
                }
                Err(e) => break format!("UDP socket: {e}"),
            },
            c = commands.recv() => match c {
                Some(Command::Keyframe(mid)) => {
                    let now = Instant::now();
                    let due = last_request.get(&mid).is_none_or(|t| now.duration_since(*t) >= KEYFRAME_GAP);
                    if due {
                        last_request.insert(mid.clone(), now);
                        let m: Mid = mid.as_str().into();
                        if let Some(mut w) = rtc.writer(m) {
                            if w.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
                                let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
                            }
                        }
                    }
                }
                Some(Command::Audio { data, samples, level, at }) => {
                    if let Some(mid) = audio_out {
                        if write_audio(&mut rtc, mid, data, level, at, audio_ts) {
                            audio_ts += u64::from(samples);
                        }
                    }
                }
                Some(Command::Close) | None => {
                    rtc.disconnect();
                    break "closed".to_string();
                }
            },
            _ = tokio::time::sleep(sleep) => {}
        }
        if let Err(e) = rtc.handle_input(Input::Timeout(Instant::now())) {
            break format!("str0m: {e}");
        }
    };
    let _ = events.send(RtcEvent::Closed(why));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_candidate_is_found() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";
        assert_eq!(
            first_candidate(sdp),
            Some("127.0.0.1:40000".parse().unwrap())
        );
        assert_eq!(first_candidate("v=0\r\na=candidate:garbage\r\n"), None);
        assert_eq!(
            route_to("127.0.0.1:40000".parse().unwrap())
                .unwrap()
                .to_string(),
            "127.0.0.1"
        );
    }
}
