//! A call's phone leg: the negotiated SDP, one RTP socket, and the audio
//! chains between the phone's codec and the room's 48 kHz Opus.
//!
//! Contract: [`PhoneLeg::answer`] negotiates the caller's offer (488 for no
//! common codec, 400 for unreadable SDP), binds a UDP socket on the
//! gateway's media address, and keeps the SDP answer. The owner drives it
//! on a 20 ms clock: every datagram goes to [`PhoneLeg::on_packet`] (RTP of
//! the negotiated codec into a jitter buffer, telephone-event into digits,
//! anything else dropped); [`PhoneLeg::uplink`] gives the next frame for the
//! room (decoded, FEC-recovered or concealed, then Opus), and
//! [`PhoneLeg::downlink`] sends the room's mix for the caller. Media is sent
//! to the address in the SDP, or to where the phone's RTP comes from once it
//! arrives when `sip.symmetric_rtp` is on (phones behind NAT).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

mod rtp_socket;
use rtp_socket::RtpSocket;

use crate::config::SipConfig;
use crate::media::call::{PhoneToRoom, RoomToPhone};
use crate::media::jitter::{JitterBuffer, Playout};
use crate::media::opus::MAX_PACKET;
use crate::media::resample::PhoneRate;
use crate::phone::codec::PhoneCodec;
use crate::phone::dtmf::DtmfReceiver;
use crate::phone::rtp::{RtpPacket, RtpSender, StreamStart};
use crate::phone::sdp::{parse_answer, LocalMedia, Negotiated, Offer, SdpError};

/// Opus bit rate towards the room for a phone caller (mono voice).
const ROOM_BITRATE: i32 = 32_000;
/// Opus bit rate towards a phone that negotiated Opus.
const PHONE_OPUS_BITRATE: i32 = 24_000;
/// The phone-side jitter buffer (in slots of [`slot_ts`]). Its starting
/// delay is nothing beyond the tick: the room task reads the phone's
/// datagrams at its 20 ms tick, so a frame waits for that tick anyway (0 to
/// 20 ms), and the buffer adds a slot each time a packet misses its tick.
const JITTER_DELAY: Duration = Duration::ZERO;
/// Datagrams read from one phone per tick at most (a flood waits in the
/// socket's buffer, and the kernel drops what does not fit).
const DRAIN_MAX: usize = 32;
const JITTER_SLOTS: usize = 50;

/// The jitter buffer's slot, in RTP timestamp units: 10 ms for the
/// sample codecs (G.711 and G.722 carry one byte per 8 kHz tick, so a packet
/// of any multiple of 10 ms is cut into slots: phones send 10, 20, 30 or
/// 40 ms), one 20 ms frame for Opus.
fn slot_ts(codec: PhoneCodec) -> u32 {
    match codec {
        PhoneCodec::Opus => codec.ts_per_frame(),
        _ => codec.ts_per_frame() / 2,
    }
}

/// Why a call's media could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LegError {
    #[error("the INVITE has no SDP offer")]
    NoOffer,
    #[error("SDP: {0}")]
    Sdp(#[from] SdpError),
    #[error("media socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("audio codec: {0}")]
    Codec(#[from] crate::media::MediaError),
}

impl LegError {
    /// The SIP status that refuses the call.
    pub fn status(&self) -> u16 {
        match self {
            LegError::NoOffer => 488,
            LegError::Sdp(e) => e.sip_status(),
            LegError::Socket(_) | LegError::Codec(_) => 500,
        }
    }
}

/// A dial-out leg waiting for the callee's answer.
pub struct PendingLeg {
    socket: UdpSocket,
    local: LocalMedia,
    offer: String,
    symmetric: bool,
    complexity: u8,
}

impl PendingLeg {
    /// Our SDP offer.
    pub fn offer_sdp(&self) -> &str {
        &self.offer
    }

    /// The callee answered with `answer`: the leg is ready.
    pub fn answered(self, answer: &str, display: String) -> Result<PhoneLeg, LegError> {
        let negotiated = parse_answer(answer)?;
        let mut leg = PhoneLeg::new(
            self.socket,
            negotiated,
            self.offer,
            display,
            self.complexity,
        )?;
        leg.local = Some(self.local);
        leg.latched = !self.symmetric;
        Ok(leg)
    }
}

/// The frame a phone sent for the room, this tick (the same audio as PCM,
/// for this gateway's own mixes: [`PhoneLeg::uplink_pcm`]).
pub struct Uplink<'a> {
    /// Opus for the room.
    pub opus: &'a [u8],
    /// RFC 6464 level: 0 loud .. 127 silent.
    pub level: u8,
}

pub struct PhoneLeg {
    socket: RtpSocket,
    negotiated: Negotiated,
    /// Where media goes (the SDP's address, then the RTP source).
    remote: SocketAddr,
    answer_sdp: String,
    /// Our side of the media, for answering re-offers.
    local: Option<LocalMedia>,
    display: String,
    up: PhoneToRoom,
    down: RoomToPhone,
    sender: RtpSender,
    jitter: JitterBuffer<Vec<u8>>,
    dtmf: DtmfReceiver,
    last_rx: Instant,
    /// `remote` is settled: by the SDP (symmetric RTP off), or by the
    /// phone's first RTP packet.
    latched: bool,
    opus: Vec<u8>,
    opus_len: usize,
    payload: Vec<u8>,
    packet: Vec<u8>,
}

impl PhoneLeg {
    /// Answers `offer`: negotiates, binds the RTP socket, writes the answer.
    pub async fn answer(
        offer: Option<&str>,
        sip_local: SocketAddr,
        config: &SipConfig,
        display: String,
    ) -> Result<PhoneLeg, LegError> {
        let offer = Offer::parse(offer.ok_or(LegError::NoOffer)?)?;
        let ip = media_ip(config, sip_local, offer.connection);
        let socket = UdpSocket::bind(SocketAddr::new(bind_ip(ip), 0)).await?;
        let port = socket.local_addr()?.port();
        let local = LocalMedia {
            addr: ip,
            port,
            session_id: rand::random::<u32>().into(),
            session_version: 1,
        };
        let answer = offer.answer(&local)?;
        let mut leg = Self::new(
            socket,
            answer.negotiated,
            answer.sdp,
            display,
            config.room_opus_complexity,
        )?;
        leg.local = Some(local);
        leg.latched = !config.symmetric_rtp;
        Ok(leg)
    }

    /// A leg for dial-out: binds the RTP socket towards `trunk` and makes
    /// our offer; [`PendingLeg::answered`] completes it.
    pub async fn offer(
        sip_local: SocketAddr,
        config: &SipConfig,
        trunk: IpAddr,
    ) -> Result<PendingLeg, LegError> {
        let ip = media_ip(config, sip_local, trunk);
        let socket = UdpSocket::bind(SocketAddr::new(bind_ip(ip), 0)).await?;
        let local = LocalMedia {
            addr: ip,
            port: socket.local_addr()?.port(),
            session_id: rand::random::<u32>().into(),
            session_version: 1,
        };
        Ok(PendingLeg {
            offer: local.offer(),
            socket,
            local,
            symmetric: config.symmetric_rtp,
            complexity: config.room_opus_complexity,
        })
    }

    fn new(
        socket: UdpSocket,
        negotiated: Negotiated,
        answer_sdp: String,
        display: String,
        complexity: u8,
    ) -> Result<PhoneLeg, LegError> {
        let codec = negotiated.codec;
        let start = StreamStart {
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
        };
        Ok(PhoneLeg {
            socket: RtpSocket::new(socket),
            remote: negotiated.remote,
            negotiated,
            answer_sdp,
            local: None,
            display,
            up: PhoneToRoom::with_complexity(codec, ROOM_BITRATE, complexity)?,
            down: RoomToPhone::with_codec(codec, PHONE_OPUS_BITRATE)?,
            sender: RtpSender::for_codec(codec, negotiated.pt, start),
            jitter: JitterBuffer::new(slot_ts(codec), JITTER_DELAY, JITTER_SLOTS),
            dtmf: DtmfReceiver::new(),
            last_rx: Instant::now(),
            latched: false,
            opus: vec![0; MAX_PACKET],
            opus_len: 0,
            payload: vec![0; MAX_PACKET],
            packet: vec![0; MAX_PACKET + 64],
        })
    }

    /// The RTP socket to await, until the leg is read on a room's clock.
    pub fn socket(&self) -> Option<Arc<UdpSocket>> {
        self.socket.wait()
    }

    pub fn answer_sdp(&self) -> &str {
        &self.answer_sdp
    }

    /// Our side of the media (address, port, SDP origin).
    pub fn local_media(&self) -> Option<LocalMedia> {
        self.local
    }

    pub fn codec(&self) -> PhoneCodec {
        self.negotiated.codec
    }

    /// The caller's name in the room.
    pub fn display(&self) -> String {
        self.display.clone()
    }

    /// How long since the phone's last RTP packet.
    pub fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_rx)
    }

    /// One datagram from the phone (from `source`); returns a DTMF key when
    /// one completed.
    pub fn on_packet(&mut self, data: &[u8], source: SocketAddr, now: Instant) -> Option<char> {
        let Ok(p) = RtpPacket::parse(data) else {
            return None; // RTCP, STUN or garbage: not ours to judge
        };
        let h = p.header;
        if h.pt == self.negotiated.pt {
            if !self.latched {
                self.latched = true;
                self.latch(source);
            }
            self.last_rx = now;
            self.push(now, h.ts, p.payload);
        } else if Some(h.pt) == self.negotiated.dtmf_pt {
            self.last_rx = now;
            let _ = self.dtmf.receive(now, h.ts, p.payload);
        }
        self.dtmf.handle_timeout(now);
        self.dtmf.poll_digit().map(|d| d.key)
    }

    /// Reads every datagram waiting on the RTP socket (up to [`DRAIN_MAX`])
    /// without waiting, as [`PhoneLeg::on_packet`] at `now`; returns how
    /// many.
    pub fn drain(&mut self, buf: &mut [u8], now: Instant) -> usize {
        let mut read = 0;
        while read < DRAIN_MAX {
            match self.socket.try_recv_from(buf) {
                Ok((n, source)) => {
                    read += 1;
                    self.on_packet(&buf[..n], source, now);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("phone socket: {e}");
                    break;
                }
            }
        }
        read
    }

    /// Drops the phone audio buffered so far (what came while the caller
    /// was in the voice menu or joining, in the jitter buffer or waiting on
    /// the socket): the room hears the caller from now on, without that
    /// delay. From now on the socket is read on the room's clock only.
    pub fn restart_playout(&mut self) {
        self.socket.poll_on_clock();
        let mut buf = [0u8; 2048];
        for _ in 0..4096 {
            if self.socket.try_recv_from(&mut buf).is_err() {
                break;
            }
        }
        self.jitter.clear();
    }

    /// Stores a packet's payload in the jitter buffer, cut into slots.
    fn push(&mut self, now: Instant, ts: u32, payload: &[u8]) {
        let codec = self.negotiated.codec;
        if codec == PhoneCodec::Opus {
            let seq = (ts / slot_ts(codec)) as u16;
            self.jitter.push(now, seq, ts, payload.to_vec());
            return;
        }
        let slot = slot_ts(codec) as usize;
        for (i, chunk) in payload.chunks_exact(slot).enumerate() {
            let ts = ts.wrapping_add((i * slot) as u32);
            let seq = (ts / slot as u32) as u16;
            self.jitter.push(now, seq, ts, chunk.to_vec());
        }
    }

    /// The next 20 ms of phone payload from the jitter buffer: `None` while
    /// it fills, `Some(None)` when lost, else the payload.
    fn next_payload(&mut self, now: Instant) -> Option<Option<Vec<u8>>> {
        if self.negotiated.codec == PhoneCodec::Opus {
            return match self.jitter.pop(now) {
                Playout::Waiting => None,
                Playout::Frame(p) => Some(Some(p)),
                Playout::Lost => Some(None),
            };
        }
        // Two 10 ms slots; one lost half is filled with the other.
        let first = match self.jitter.pop(now) {
            Playout::Waiting => return None,
            Playout::Frame(p) => Some(p),
            Playout::Lost => None,
        };
        let second = match self.jitter.pop(now) {
            Playout::Frame(p) => Some(p),
            _ => None,
        };
        Some(match (first, second) {
            (Some(mut a), Some(b)) => {
                a.extend_from_slice(&b);
                Some(a)
            }
            (Some(a), None) | (None, Some(a)) => Some([a.as_slice(), a.as_slice()].concat()),
            (None, None) => None,
        })
    }

    /// The phone's next 20 ms for the room, or None while its jitter buffer
    /// fills (or after a long silence).
    pub fn uplink(&mut self, now: Instant) -> Option<Uplink<'_>> {
        let len = match self.next_payload(now)? {
            Some(payload) => self
                .up
                .process(&payload, &mut self.opus)
                .or_else(|_| self.up.conceal(&mut self.opus)),
            None => match self.jitter.peek_next().cloned() {
                Some(next) if self.negotiated.codec == PhoneCodec::Opus => {
                    self.up.recover(&next, &mut self.opus)
                }
                _ => self.up.conceal(&mut self.opus),
            },
        };
        self.opus_len = len.ok()?;
        Some(Uplink {
            opus: &self.opus[..self.opus_len],
            level: level(self.up.pcm()),
        })
    }

    /// The rate of the phone's audio (`None`: 48 kHz).
    pub fn phone_rate(&self) -> Option<PhoneRate> {
        self.up.rate()
    }

    /// The last [`uplink`](Self::uplink) frame as PCM at `rate` (`None`:
    /// 48 kHz), which must be the phone's rate or 48 kHz.
    pub fn uplink_pcm(&mut self, rate: Option<PhoneRate>) -> &[i16] {
        if rate.is_some() && rate == self.up.rate() {
            self.up.pcm()
        } else {
            self.up.pcm48()
        }
    }

    /// Encodes the caller's 20 ms mix (48 kHz) and sends it to the phone.
    pub fn downlink(&mut self, mix48: &[i16], now: Instant) {
        self.downlink_at(mix48, None, now);
    }

    /// Like [`downlink`](Self::downlink), for a mix at `rate` (`None`:
    /// 48 kHz; else the phone's own rate).
    pub fn downlink_at(&mut self, mix: &[i16], rate: Option<PhoneRate>, _now: Instant) {
        if !self.negotiated.direction.sends() {
            self.sender.skip(1);
            return;
        }
        let Ok(n) = self.down.process_at(mix, rate, &mut self.payload) else {
            return;
        };
        let Ok(len) = self.sender.frame(&self.payload[..n], &mut self.packet) else {
            return;
        };
        let _ = self.socket.try_send_to(&self.packet[..len], self.remote);
    }

    /// Sends to the address the phone's first RTP came from.
    fn latch(&mut self, source: SocketAddr) {
        if source != self.remote {
            tracing::debug!(from = %self.remote, to = %source, "RTP latched to its source");
            self.remote = source;
        }
    }
}

/// RFC 6464 level of a frame: -dBov, 0 (full scale) .. 127 (silence).
pub fn level(pcm: &[i16]) -> u8 {
    if pcm.is_empty() {
        return 127;
    }
    let energy: f64 = pcm
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / pcm.len() as f64;
    let rms = energy.sqrt() / 32768.0;
    if rms <= 0.0 {
        return 127;
    }
    (-20.0 * rms.log10()).clamp(0.0, 127.0) as u8
}

/// The address our SDP names: `sip.public_ip`, else the SIP socket's
/// address, else the one that routes to the caller's media.
fn media_ip(config: &SipConfig, sip_local: SocketAddr, remote: IpAddr) -> IpAddr {
    if let Ok(ip) = config.public_ip.parse() {
        return ip;
    }
    if !sip_local.ip().is_unspecified() {
        return sip_local.ip();
    }
    service::local_ip_towards(SocketAddr::new(remote, 9)).unwrap_or(sip_local.ip())
}

/// The address to bind for `ip` (a public address may not be local: bind
/// all interfaces then).
fn bind_ip(ip: IpAddr) -> IpAddr {
    match std::net::UdpSocket::bind(SocketAddr::new(ip, 0)) {
        Ok(_) => ip,
        Err(_) if ip.is_ipv4() => IpAddr::from([0, 0, 0, 0]),
        Err(_) => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::Law;
    use crate::media::opus::{Layout, OpusDecoder};
    use crate::media::testutil::{dominant_freq, sine};
    use crate::media::FRAME_48K;
    use crate::phone::rtp::RtpHeader;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    /// A phone sending `ms`-millisecond PCMA packets of a 1 kHz tone is heard
    /// in the room as that tone, whatever its packet time.
    async fn tone_through(ms: usize) {
        let config = SipConfig::default();
        let sip: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let mut leg = PhoneLeg::answer(Some(OFFER), sip, &config, "x".into())
            .await
            .unwrap();
        assert!(leg.answer_sdp().contains("m=audio"));
        let tone = sine(8000, 1000.0, 12000.0, 8000 * 2);
        let mut g711 = vec![0u8; tone.len()];
        Law::Pcma.encode(&tone, &mut g711);
        let per = 8 * ms;
        let t0 = Instant::now();
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
        let mut heard = Vec::new();
        let mut packets = g711.chunks_exact(per).enumerate().peekable();
        for tick in 0..90u64 {
            let now = t0 + Duration::from_millis(20 * tick);
            // Everything whose time has come arrives.
            while let Some((i, chunk)) = packets.peek() {
                if (*i * ms) as u64 > 20 * tick {
                    break;
                }
                let h = RtpHeader {
                    marker: *i == 0,
                    pt: 8,
                    seq: *i as u16,
                    ts: (*i * per) as u32,
                    ssrc: 7,
                };
                let mut buf = vec![0u8; 12 + chunk.len()];
                let n = h.write(chunk, &mut buf).unwrap();
                leg.on_packet(&buf[..n], src, now);
                packets.next();
            }
            if let Some(up) = leg.uplink(now) {
                let mut pcm = vec![0i16; FRAME_48K];
                dec.decode(up.opus, &mut pcm).unwrap();
                heard.extend_from_slice(&pcm);
                assert!(up.level < 30, "level {}", up.level);
            }
        }
        assert!(
            heard.len() >= 60 * FRAME_48K,
            "{ms} ms: {} samples",
            heard.len()
        );
        assert_eq!(
            dominant_freq(&heard[10 * FRAME_48K..], 48_000),
            1000.0,
            "{ms} ms packets"
        );
    }

    #[tokio::test]
    async fn any_packet_time_in_tens_of_milliseconds_is_heard() {
        for ms in [10, 20, 30, 40] {
            tone_through(ms).await;
        }
    }

    #[test]
    fn levels_follow_loudness() {
        assert_eq!(level(&[0; 960]), 127);
        assert_eq!(level(&[]), 127);
        let loud: Vec<i16> = (0..960)
            .map(|i| if i % 2 == 0 { 32000 } else { -32000 })
            .collect();
        assert!(level(&loud) <= 1);
        let quiet: Vec<i16> = (0..960)
            .map(|i| if i % 2 == 0 { 100 } else { -100 })
            .collect();
        assert!((45..55).contains(&level(&quiet)), "{}", level(&quiet));
    }
}
