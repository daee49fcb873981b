//! [`RtpSink`]: a UDP socket on loopback that takes whatever RTP arrives and
//! lets a test ask what it heard.
//!
//! Contract: [`RtpSink::bind`] binds `127.0.0.1:0` and starts a tokio task
//! that reads until the sink is dropped. Every datagram that parses as RTP
//! counts as a packet (its payload type and source address are recorded);
//! anything else is ignored. PCMU/PCMA payloads (PT 0/8) are decoded and
//! appended to one 8 kHz PCM buffer in arrival order, with no jitter buffer
//! (lost packets are simply missing, reordered ones stay reordered); the
//! buffer keeps the last [`PCM_KEPT`]. Packets with the telephone-event
//! payload type (101 unless chosen) are RFC 4733 events: one
//! [`DtmfEvent`] per (SSRC, RTP timestamp, event), updated by its later packets
//! (duration, end bit), in the order events began.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::analysis;
use super::g711::Law;
use super::pcap::SAMPLE_RATE;
use super::rtp::{self, TelephoneEvent};

/// The telephone-event payload type a sink assumes unless told otherwise.
pub const DEFAULT_EVENT_PT: u8 = 101;
/// How much decoded audio a sink keeps (the newest).
pub const PCM_KEPT: Duration = Duration::from_secs(60);

/// One RFC 4733 event as a sink saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// RFC 4733 event code (0-9, 10 `*`, 11 `#`, 12-15 `A`-`D`, ...).
    pub event: u8,
    pub ssrc: u32,
    /// RTP timestamp of the event's start (shared by all its packets).
    pub timestamp: u32,
    /// The longest duration reported, in 1/8000 s.
    pub duration: u16,
    /// Some packet carried the end bit.
    pub ended: bool,
    /// Packets seen for this event (including repeated end packets).
    pub packets: u32,
}

impl DtmfEvent {
    /// The key: `0`-`9`, `*`, `#`, `A`-`D`; `None` for other events.
    pub fn digit(&self) -> Option<char> {
        TelephoneEvent {
            event: self.event,
            end: self.ended,
            volume: 0,
            duration: self.duration,
        }
        .digit()
    }
}

#[derive(Debug, Default)]
struct Heard {
    packets: u64,
    payload_types: BTreeSet<u8>,
    sources: Vec<SocketAddr>,
    last_at: Option<Instant>,
    pcm: VecDeque<i16>,
    events: Vec<DtmfEvent>,
}

/// A loopback RTP receiver (see the module contract); dropping it stops
/// the receiving task and closes the socket.
#[derive(Debug)]
#[must_use = "dropping the sink closes its socket"]
pub struct RtpSink {
    addr: SocketAddr,
    heard: Arc<Mutex<Heard>>,
    task: JoinHandle<()>,
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RtpSink {
    /// Binds `127.0.0.1:0`; telephone events are PT [`DEFAULT_EVENT_PT`].
    pub async fn bind() -> io::Result<RtpSink> {
        RtpSink::bind_with_event_pt(DEFAULT_EVENT_PT).await
    }

    /// Binds `127.0.0.1:0`; telephone events are PT `event_pt`.
    pub async fn bind_with_event_pt(event_pt: u8) -> io::Result<RtpSink> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = socket.local_addr()?;
        let heard = Arc::new(Mutex::new(Heard::default()));
        let task = tokio::spawn(receive(socket, Arc::clone(&heard), event_pt));
        Ok(RtpSink { addr, heard, task })
    }

    fn heard(&self) -> MutexGuard<'_, Heard> {
        // The receiving task never panics while holding the lock; if a
        // reader did, the data is still whole.
        self.heard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where to send RTP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// RTP packets received so far.
    pub fn packets(&self) -> u64 {
        self.heard().packets
    }

    /// Payload types seen, ascending.
    pub fn payload_types(&self) -> Vec<u8> {
        self.heard().payload_types.iter().copied().collect()
    }

    /// Source addresses seen, in order of first packet.
    pub fn sources(&self) -> Vec<SocketAddr> {
        self.heard().sources.clone()
    }

    /// Time since the last RTP packet (`None` before the first).
    pub fn last_packet_age(&self) -> Option<Duration> {
        self.heard().last_at.map(|at| at.elapsed())
    }

    /// The newest `duration` of decoded G.711 audio (less if less arrived).
    pub fn pcm_tail(&self, duration: Duration) -> Vec<i16> {
        let heard = self.heard();
        let wanted = samples_in(duration).min(heard.pcm.len());
        heard
            .pcm
            .range(heard.pcm.len() - wanted..)
            .copied()
            .collect()
    }

    /// The dominant frequency of the newest `window` of audio
    /// (see `analysis::dominant_hz`: `None` when short or silent).
    pub fn dominant_hz(&self, window: Duration) -> Option<f64> {
        analysis::dominant_hz(&self.pcm_tail(window))
    }

    /// RMS of the newest `window` of audio, in 16-bit sample units.
    pub fn rms(&self, window: Duration) -> f64 {
        analysis::rms(&self.pcm_tail(window))
    }

    /// RFC 4733 events, in the order they began.
    pub fn dtmf_events(&self) -> Vec<DtmfEvent> {
        self.heard().events.clone()
    }

    /// The keys of the DTMF events, in order (`"1#9*"`).
    pub fn digits(&self) -> String {
        self.heard()
            .events
            .iter()
            .filter_map(DtmfEvent::digit)
            .collect()
    }

    /// Waits until `done(self)` holds, checking every 10 ms, for at most
    /// `timeout`. Returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&RtpSink) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until at least `count` packets arrived, for at most `timeout`.
    pub async fn wait_for_packets(&self, count: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |sink| sink.packets() >= count)
            .await
    }
}

fn samples_in(duration: Duration) -> usize {
    (duration.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as usize
}

async fn receive(socket: UdpSocket, heard: Arc<Mutex<Heard>>, event_pt: u8) {
    let kept = samples_in(PCM_KEPT);
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP errors surface on some systems as failed reads: keep going.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                tracing::warn!(error = %e, "rtp sink stops reading");
                return;
            }
        };
        let Some(packet) = rtp::parse(&buf[..len]) else {
            continue;
        };
        let mut heard = heard.lock().unwrap_or_else(|e| e.into_inner());
        heard.packets += 1;
        heard.last_at = Some(Instant::now());
        heard.payload_types.insert(packet.payload_type);
        if !heard.sources.contains(&from) {
            heard.sources.push(from);
        }
        if packet.payload_type == event_pt {
            if let Some(event) = TelephoneEvent::parse(packet.payload) {
                record_event(&mut heard.events, packet.ssrc, packet.timestamp, event);
            }
        } else if let Some(law) = Law::from_payload_type(packet.payload_type) {
            heard
                .pcm
                .extend(packet.payload.iter().map(|&code| law.decode(code)));
            let excess = heard.pcm.len().saturating_sub(kept);
            heard.pcm.drain(..excess);
        }
    }
}

fn record_event(events: &mut Vec<DtmfEvent>, ssrc: u32, timestamp: u32, event: TelephoneEvent) {
    let known = events
        .iter_mut()
        .rev()
        .find(|e| e.ssrc == ssrc && e.timestamp == timestamp && e.event == event.event);
    match known {
        Some(seen) => {
            seen.duration = seen.duration.max(event.duration);
            seen.ended |= event.end;
            seen.packets += 1;
        }
        None => events.push(DtmfEvent {
            event: event.event,
            ssrc,
            timestamp,
            duration: event.duration,
            ended: event.end,
            packets: 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rtp::Rtp;
    use super::*;

    fn packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        rtp::write(
            &Rtp {
                marker: false,
                payload_type: pt,
                sequence: seq,
                timestamp: ts,
                ssrc: 42,
                payload,
            },
            &mut out,
        );
        out
    }

    #[tokio::test]
    async fn decodes_g711_and_finds_the_tone() {
        let sink = RtpSink::bind().await.unwrap();
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        // 0.5 s of PCMA at 770 Hz, then 0.5 s of PCMU at 1800 Hz.
        let mut n = 0usize;
        for (law, hz) in [(Law::Pcma, 770.0), (Law::Pcmu, 1800.0)] {
            for _ in 0..25 {
                let payload: Vec<u8> = (0..160)
                    .map(|i| {
                        let t = (n + i) as f64 / 8000.0;
                        let s = 12_000.0 * (2.0 * std::f64::consts::PI * hz * t).sin();
                        law.encode(s as i16)
                    })
                    .collect();
                let bytes = packet(law.payload_type(), n as u16 / 160, n as u32, &payload);
                sender.send_to(&bytes, sink.addr()).await.unwrap();
                n += 160;
            }
        }
        sender.send_to(b"not rtp", sink.addr()).await.unwrap();
        assert!(sink.wait_for_packets(50, Duration::from_secs(5)).await);
        assert_eq!(sink.packets(), 50);
        assert_eq!(sink.payload_types(), vec![0, 8]);
        assert_eq!(sink.sources(), vec![sender.local_addr().unwrap()]);
        assert!(sink.last_packet_age().unwrap() < Duration::from_secs(5));
        assert_eq!(sink.pcm_tail(Duration::from_secs(10)).len(), 8000);
        let newest = sink.dominant_hz(Duration::from_millis(400)).unwrap();
        assert!((newest - 1800.0).abs() <= 15.0, "{newest}");
        let whole = sink.pcm_tail(Duration::from_secs(1));
        let oldest = analysis::dominant_hz(&whole[..3200]).unwrap();
        assert!((oldest - 770.0).abs() <= 15.0, "{oldest}");
        let rms = sink.rms(Duration::from_millis(400));
        assert!((rms - 12_000.0 / 2f64.sqrt()).abs() < 400.0, "{rms}");
    }

    #[tokio::test]
    async fn telephone_events_become_one_entry_per_event() {
        let sink = RtpSink::bind_with_event_pt(96).await.unwrap();
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let mut seq = 0;
        for (digit, ts) in [(5u8, 1000u32), (11, 3000)] {
            for (duration, end) in [(160u16, false), (320, false), (480, true), (480, true)] {
                let payload = [
                    digit,
                    u8::from(end) << 7 | 10,
                    (duration >> 8) as u8,
                    duration as u8,
                ];
                seq += 1;
                let bytes = packet(96, seq, ts, &payload);
                sender.send_to(&bytes, sink.addr()).await.unwrap();
            }
        }
        assert!(sink.wait_for_packets(8, Duration::from_secs(5)).await);
        assert_eq!(sink.digits(), "5#");
        let events = sink.dtmf_events();
        assert_eq!(events.len(), 2);
        assert!(events
            .iter()
            .all(|e| e.ended && e.duration == 480 && e.packets == 4));
        assert!(sink.pcm_tail(Duration::from_secs(1)).is_empty());
        assert_eq!(sink.dominant_hz(Duration::from_secs(1)), None);
        assert_eq!(sink.payload_types(), vec![96]);
    }
}
