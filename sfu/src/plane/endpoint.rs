//! One participant's session: its str0m [`Rtc`] (ICE-lite, RTP mode, direct
//! API: we choose the mids and SSRCs and write the SDP ourselves, see
//! `sdp`), its receive slots and, as a publisher, its incoming streams.
//!
//! Audio slot 0 is the participant's own sendrecv line `audio`; the other
//! slots are sendonly lines (`audio_N`, `video_N`, N from 1; only ASCII
//! alphanumerics and `_`, which is all a str0m `Mid` keeps). The own
//! `video` line is recvonly from our side (it takes the participant's
//! simulcast; receivers of a simulcast line cannot also be told its SSRCs). A slot
//! holds at most one publisher; [`Endpoint::assign`] gives a publisher the
//! first free slot, [`Endpoint::release`] frees it; both mark the slots as
//! changed, for the bridge channel's sources maps (see `signal`). Each slot
//! has its own outgoing stream ([`Forwarder`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Pt, Rid};
use str0m::rtp::{Extension, Ssrc as RtpSsrc};
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};

use super::forward::Forwarder;
use super::sdp::{self, OfferLine, SendSsrcs, Setup};
use super::signal::SlotMaps;
use super::PlaneError;
use crate::media::allocation::ReceiverConstraints;
use crate::media::audio_route::AudioSubscription;
use crate::media::layers::SourceLayers;
use crate::media::Ssrc;

/// The bandwidth estimate a session starts from, before any feedback.
const INITIAL_BWE_KBPS: u64 = 2_500;

/// At most this many simulcast layers are taken from an answer.
const MAX_LAYERS: usize = 4;

/// A receive slot: one m-line we send on, and who is forwarded into it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub mid: Mid,
    pub publisher: Option<String>,
    /// The SSRCs the slot is sent with (as written in our offer).
    pub ssrcs: SendSsrcs,
    pub fwd: Forwarder,
}

/// One participant's session.
pub(crate) struct Endpoint {
    pub id: String,
    pub conference: String,
    pub rtc: Rtc,
    pub ufrag: String,
    /// What the Rtc is built from (it is built again, with bandwidth
    /// estimation, when the answer negotiates transport-cc).
    session: Session,
    /// Bandwidth estimation is wanted (see [`Endpoint::accept_answer`]).
    pub bandwidth_estimation: bool,
    /// Its Rtc estimates the bandwidth (wanted, and transport-cc kept).
    pub estimating: bool,
    answered: bool,
    lines: Vec<OfferLine>,
    /// The participant's microphone line (also audio slot 0).
    pub audio_in: Mid,
    /// The participant's camera line (we only receive on it).
    pub video_in: Mid,
    pub audio_slots: Vec<Slot>,
    pub video_slots: Vec<Slot>,
    pub next_timeout: Instant,
    /// Its Rtc took input or was written to since it was last polled.
    pub dirty: bool,
    /// Its Rtc took a datagram since it was last polled (a subset of `dirty`).
    pub took_input: bool,
    pub created: Instant,
    pub connected: bool,
    pub mute_audio: bool,
    pub mute_video: bool,
    /// Last keyframe request per layer of its video.
    pub keyframe_requested: [Option<Instant>; MAX_LAYERS],
    /// What the receiver asked for over the bridge channel.
    pub constraints: ReceiverConstraints,
    /// The audio it subscribed to over the bridge channel.
    pub audio_sub: AudioSubscription,
    /// Its egress bandwidth estimate, once str0m can probe (TWCC feedback
    /// negotiated); receivers without TWCC are not limited by an estimate.
    pub bwe_bps: Option<u64>,
    /// A slot changed since the sources maps were last delivered.
    pub slots_changed: bool,
    /// The sources maps last delivered over the bridge channel.
    pub sent_maps: Option<SlotMaps>,
    /// New: the conference's dominant speaker is still to be sent.
    pub speaker_pending: bool,
    /// Its video's layers (one without simulcast), lowest first.
    pub layers: SourceLayers,
    /// The rids of its layers, lowest first (empty without rid simulcast).
    layer_rids: Vec<Rid>,
    /// Incoming SSRC -> (kind, layer), as learned.
    incoming: HashMap<u32, (MediaKind, usize)>,
}

/// Frees (and pauses) the slots of `slots` that `publisher` holds; true
/// when there was one.
fn free(slots: &mut [Slot], publisher: &str) -> bool {
    let mut freed = false;
    for s in slots
        .iter_mut()
        .filter(|s| s.publisher.as_deref() == Some(publisher))
    {
        s.publisher = None;
        s.fwd.pause();
        freed = true;
    }
    freed
}

/// The Rtc configuration every endpoint shares: ICE-lite, RTP mode, Jitsi's
/// payload types and header extension ids (those `sdp` writes).
fn rtc_config() -> RtcConfig {
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .clear_extension_map()
        .set_extension(sdp::EXT_AUDIO_LEVEL, Extension::AudioLevel)
        .set_extension(sdp::EXT_ABS_SEND_TIME, Extension::AbsoluteSendTime)
        .set_extension(sdp::EXT_TRANSPORT_CC, Extension::TransportSequenceNumber)
        .set_extension(sdp::EXT_MID, Extension::RtpMid)
        .set_extension(sdp::EXT_RID, Extension::RtpStreamId)
        .set_extension(sdp::EXT_REPAIRED_RID, Extension::RepairedRtpStreamId);
    let codecs = config.codec_config();
    codecs.add_config(
        Pt::from(sdp::PT_OPUS),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        FormatParams {
            min_p_time: Some(10),
            use_inband_fec: Some(true),
            stereo: Some(true),
            ..Default::default()
        },
    );
    codecs.add_config(
        Pt::from(sdp::PT_TELEPHONE_EVENT),
        None,
        Codec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::default(),
    );
    codecs.add_config(
        Pt::from(sdp::PT_VP8),
        Some(Pt::from(sdp::PT_VP8_RTX)),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        FormatParams::default(),
    );
    codecs.add_h264(
        Pt::from(sdp::PT_H264),
        Some(Pt::from(sdp::PT_H264_RTX)),
        true,
        sdp::H264_PROFILE_LEVEL_ID,
    );
    config
}

/// What a session's Rtc is built from.
struct Session {
    creds: IceCreds,
    cert: str0m::config::DtlsCert,
    candidate: SocketAddr,
}

impl Session {
    /// An Rtc with our credentials and certificate, every line of `lines`
    /// declared (the own video line expecting our simulcast rids) and a
    /// send stream on every line that sends. With `bwe`, it estimates the
    /// bandwidth towards the participant (needs transport-cc feedback).
    fn build(&self, lines: &[OfferLine], bwe: bool, now: Instant) -> Result<Rtc, PlaneError> {
        let mut config = rtc_config()
            .set_local_ice_credentials(self.creds.clone())
            .set_dtls_cert(self.cert.clone());
        if bwe {
            config = config.enable_bwe(Some(Bitrate::kbps(INITIAL_BWE_KBPS)));
        }
        let mut rtc = config.build(now);
        let host = Candidate::host(self.candidate, "udp")
            .map_err(|e| PlaneError::Config(format!("candidate {}: {e}", self.candidate)))?;
        rtc.add_local_candidate(host);
        let mut api = rtc.direct_api();
        for l in lines {
            let mid = Mid::from(l.mid.as_str());
            let kind = if l.audio {
                MediaKind::Audio
            } else {
                MediaKind::Video
            };
            let media = api.declare_media(mid, kind);
            if l.own && !l.audio {
                for rid in sdp::SIMULCAST_RIDS {
                    media.expect_rid_rx(Rid::from(rid));
                }
            }
            if let Some(s) = l.ssrcs {
                api.declare_stream_tx(s.ssrc.into(), s.rtx.map(RtpSsrc::from), mid, None);
            }
        }
        Ok(rtc)
    }
}

impl Endpoint {
    /// A new session and its SDP offer.
    pub fn new(
        id: &str,
        conference: &str,
        candidate: SocketAddr,
        audio_slots: usize,
        video_slots: usize,
        now: Instant,
    ) -> Result<(Endpoint, String), PlaneError> {
        let creds = IceCreds::new();
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| PlaneError::Config("no DTLS certificate".into()))?;
        let mut lines = Vec::new();
        let mut used = std::collections::HashSet::new();
        let mut new_ssrc = || loop {
            let s: u32 = rand::random();
            if s != 0 && used.insert(s) {
                break s;
            }
        };
        let mut add = |audio: bool, own: bool, name: String| {
            let sends = audio || !own;
            let ssrcs = sends.then(|| SendSsrcs {
                ssrc: new_ssrc(),
                rtx: (!audio).then(&mut new_ssrc),
            });
            lines.push(OfferLine {
                mid: name.clone(),
                audio,
                own,
                ssrcs,
            });
            ssrcs.map(|ssrcs| Slot {
                mid: Mid::from(name.as_str()),
                publisher: None,
                ssrcs,
                fwd: Forwarder::new(audio),
            })
        };
        let mut audio: Vec<Slot> = add(true, true, "audio".into()).into_iter().collect();
        add(false, true, "video".into());
        for n in 1..audio_slots.max(1) {
            audio.extend(add(true, false, format!("audio_{n}")));
        }
        let mut video = Vec::new();
        for n in 1..=video_slots {
            video.extend(add(false, false, format!("video_{n}")));
        }
        let session = Session {
            creds: creds.clone(),
            cert,
            candidate,
        };
        let mut rtc = session.build(&lines, false, now)?;
        let fingerprint = rtc.direct_api().local_dtls_fingerprint().to_string();
        // BUNDLE order: own lines first, then the audio and video slots.
        lines.sort_by_key(|l| (!l.own, !l.audio));
        let offer = sdp::write_offer(&sdp::Offer {
            session_id: u64::from(rand::random::<u32>()),
            ufrag: &creds.ufrag,
            pwd: &creds.pass,
            fingerprint: &fingerprint,
            candidate,
            cname: &format!("jvb-{}", super::signal::nick(id)),
            lines: &lines,
        });
        let endpoint = Endpoint {
            id: id.to_owned(),
            conference: conference.to_owned(),
            rtc,
            session,
            bandwidth_estimation: false,
            estimating: false,
            ufrag: creds.ufrag,
            answered: false,
            lines,
            audio_in: Mid::from("audio"),
            video_in: Mid::from("video"),
            audio_slots: audio,
            video_slots: video,
            next_timeout: now,
            dirty: true,
            took_input: false,
            created: now,
            connected: false,
            mute_audio: false,
            mute_video: false,
            keyframe_requested: [None; MAX_LAYERS],
            constraints: ReceiverConstraints::new(),
            audio_sub: AudioSubscription::default(),
            bwe_bps: None,
            slots_changed: false,
            sent_maps: None,
            speaker_pending: true,
            layers: SourceLayers::new(&[(Ssrc(0), None)]),
            layer_rids: Vec::new(),
            incoming: HashMap::new(),
        };
        Ok((endpoint, offer))
    }

    /// Applies the participant's answer to our offer: credentials, DTLS
    /// role, and the streams it sends. A refused answer leaves the offer
    /// open for a better one.
    pub fn accept_answer(&mut self, text: &str) -> Result<(), PlaneError> {
        if self.answered {
            return Err(PlaneError::NoPendingOffer);
        }
        let answer = sdp::read_answer(text)?;
        if answer.lines.len() != self.lines.len() {
            return Err(PlaneError::BadAnswer(format!(
                "{} m-lines for the {} offered",
                answer.lines.len(),
                self.lines.len()
            )));
        }
        let fingerprint = answer
            .fingerprint
            .parse()
            .map_err(|e| PlaneError::BadAnswer(format!("a=fingerprint: {e}")))?;
        if self.bandwidth_estimation && answer.lines.iter().any(|l| l.transport_cc && !l.rejected) {
            // Bandwidth estimation needs transport-cc feedback; peers
            // without it (webrtcbin's answers carry no extmap) get none.
            self.rtc = self.session.build(&self.lines, true, Instant::now())?;
            self.estimating = true;
        }
        // Lines are matched by position; ours are audio, video, then slots.
        let (audio, video) = (&answer.lines[0], &answer.lines[1]);
        let (audio_in, video_in) = (self.audio_in, self.video_in);
        let mut api = self.rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: answer.ufrag.clone(),
            pass: answer.pwd.clone(),
        });
        api.set_remote_fingerprint(fingerprint);
        api.enable_twcc_feedback();
        api.start_dtls(answer.setup == Setup::Passive)
            .map_err(|e| PlaneError::BadAnswer(format!("dtls: {e}")))?;
        self.answered = true;
        if !audio.rejected {
            for &ssrc in &audio.ssrcs {
                api.expect_stream_rx(RtpSsrc::from(ssrc), None, audio_in, None);
                self.incoming.insert(ssrc, (MediaKind::Audio, 0));
            }
        }
        if video.rejected {
            return Ok(());
        }
        let layers: Vec<u32> = if video.sim.len() > 1 {
            video.sim.iter().copied().take(MAX_LAYERS).collect()
        } else {
            Vec::new()
        };
        if !layers.is_empty() {
            self.layer_rids = (0..layers.len())
                .map(|i| Rid::from(sdp::SIMULCAST_RIDS.get(i).copied().unwrap_or("x")))
                .collect();
            for (i, &ssrc) in layers.iter().enumerate() {
                let rtx = video.rtx_of(ssrc).map(RtpSsrc::from);
                api.expect_stream_rx(ssrc.into(), rtx, video_in, Some(self.layer_rids[i]));
                self.incoming.insert(ssrc, (MediaKind::Video, i));
            }
        } else if video.send_rids.len() > 1 {
            // Rid simulcast: str0m binds SSRCs to rids from the header
            // extension; the layer order is that of `a=simulcast:send`.
            self.layer_rids = video
                .send_rids
                .iter()
                .take(MAX_LAYERS)
                .map(|r| Rid::from(r.as_str()))
                .collect();
        } else {
            for &ssrc in &video.ssrcs {
                let rtx = video.rtx_of(ssrc).map(RtpSsrc::from);
                api.expect_stream_rx(ssrc.into(), rtx, video_in, None);
                self.incoming.insert(ssrc, (MediaKind::Video, 0));
            }
        }
        let n = self.layer_rids.len().max(1);
        self.layers = SourceLayers::new(&vec![(Ssrc(0), None); n]);
        Ok(())
    }

    /// The kind and layer of an incoming packet of `ssrc` on one of the
    /// participant's own lines (learned from str0m's stream on first use).
    pub fn incoming(&mut self, ssrc: u32) -> Option<(MediaKind, usize)> {
        if let Some(known) = self.incoming.get(&ssrc) {
            return Some(*known);
        }
        let (audio_in, video_in) = (self.audio_in, self.video_in);
        let mut api = self.rtc.direct_api();
        let stream = api.stream_rx(&RtpSsrc::from(ssrc))?;
        let (mid, rid) = (stream.mid(), stream.rid());
        let kind = if mid == audio_in {
            MediaKind::Audio
        } else if mid == video_in {
            MediaKind::Video
        } else {
            return None;
        };
        let layer = rid
            .and_then(|r| self.layer_rids.iter().position(|x| *x == r))
            .unwrap_or(0);
        self.incoming.insert(ssrc, (kind, layer));
        Some((kind, layer))
    }

    /// Asks the participant for a keyframe of its video `layer`; false when
    /// that layer's stream is not known yet.
    pub fn request_keyframe(&mut self, layer: usize, kind: KeyframeRequestKind) -> bool {
        let rid = self.layer_rids.get(layer).copied();
        let video_in = self.video_in;
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_rx_by_mid(video_in, rid) else {
            return false;
        };
        stream.request_keyframe(kind);
        true
    }

    /// The public name of one of our mids, for logs and tests.
    pub fn public_mid(&self, mid: Mid) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| Mid::from(l.mid.as_str()) == mid)
            .map(|l| l.mid.as_str())
    }

    fn slots_mut(&mut self, kind: MediaKind) -> &mut Vec<Slot> {
        if kind.is_audio() {
            &mut self.audio_slots
        } else {
            &mut self.video_slots
        }
    }

    /// Gives `publisher` a slot of `kind` (first free), unless it has one.
    pub fn assign(&mut self, publisher: &str, kind: MediaKind) -> Option<Mid> {
        if let Some(mid) = self.slot_of(publisher, kind) {
            return Some(mid);
        }
        let free = self
            .slots_mut(kind)
            .iter_mut()
            .find(|s| s.publisher.is_none())?;
        free.publisher = Some(publisher.to_owned());
        let mid = free.mid;
        self.slots_changed = true;
        Some(mid)
    }

    /// Puts `publisher` in audio slot `index` in place of its holder (the
    /// slot's stream goes on: seq and timestamps continue).
    pub fn switch_audio(&mut self, index: usize, publisher: &str) {
        let Some(slot) = self.audio_slots.get_mut(index) else {
            return;
        };
        slot.fwd.pause();
        slot.publisher = Some(publisher.to_owned());
        self.slots_changed = true;
    }

    /// Frees the audio slot `publisher` holds, if any.
    pub fn release_audio(&mut self, publisher: &str) {
        self.slots_changed |= free(&mut self.audio_slots, publisher);
    }

    /// Frees every slot `publisher` holds.
    pub fn release(&mut self, publisher: &str) {
        self.release_audio(publisher);
        self.slots_changed |= free(&mut self.video_slots, publisher);
    }

    /// The slot `publisher`'s media of `kind` goes to, if any.
    pub fn slot_of(&self, publisher: &str, kind: MediaKind) -> Option<Mid> {
        let slots = if kind.is_audio() {
            &self.audio_slots
        } else {
            &self.video_slots
        };
        slots
            .iter()
            .find(|s| s.publisher.as_deref() == Some(publisher))
            .map(|s| s.mid)
    }

    /// The slot `mid`, if it is one of ours.
    pub fn slot(&self, mid: Mid) -> Option<&Slot> {
        self.audio_slots
            .iter()
            .chain(self.video_slots.iter())
            .find(|s| s.mid == mid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> (Endpoint, String) {
        let addr: SocketAddr = "127.0.0.1:10000".parse().unwrap();
        Endpoint::new("a", "room", addr, 3, 2, Instant::now()).unwrap()
    }

    #[test]
    fn offer_names_lines_and_carries_jitsi_payload_types() {
        let (_, offer) = endpoint();
        for needle in [
            "a=group:BUNDLE audio video audio_1 audio_2 video_1 video_2",
            "a=mid:audio_2",
            "a=ice-lite",
            "a=rtcp-mux",
            "a=fingerprint:sha-256",
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:126 telephone-event/8000",
            "a=rtpmap:100 VP8/90000",
            "a=rtpmap:96 rtx/90000",
            "a=rtpmap:107 H264/90000",
            "a=rtpmap:99 rtx/90000",
            "useinbandfec=1",
            "packetization-mode=1",
            "profile-level-id=42e01f",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=rtcp-fb:100 nack pli",
            "a=rtcp-fb:100 ccm fir",
            "a=rtcp-fb:100 transport-cc",
            "typ host",
        ] {
            assert!(offer.contains(needle), "missing {needle:?} in\n{offer}");
        }
    }

    #[test]
    fn slots_first_come_and_freed_on_release() {
        let (mut e, _) = endpoint();
        let b = e.assign("b", MediaKind::Audio).unwrap();
        assert_eq!(b, e.audio_in);
        let c = e.assign("c", MediaKind::Audio).unwrap();
        assert_eq!(e.public_mid(c), Some("audio_1"));
        assert_eq!(e.assign("b", MediaKind::Audio), Some(b));
        let d = e.assign("d", MediaKind::Audio).unwrap();
        assert_eq!(e.public_mid(d), Some("audio_2"));
        assert_eq!(e.assign("x", MediaKind::Audio), None);
        e.release("c");
        assert_eq!(e.slot_of("c", MediaKind::Audio), None);
        assert_eq!(e.assign("x", MediaKind::Audio), Some(c));
        assert_eq!(e.slot(c).and_then(|s| s.publisher.as_deref()), Some("x"));
        let v = e.assign("v", MediaKind::Video).unwrap();
        assert_eq!(
            e.public_mid(v),
            Some("video_1"),
            "the own video line is no slot"
        );
    }

    #[test]
    fn slot_ssrcs_are_those_of_the_offer_and_changes_are_marked() {
        let (mut e, offer) = endpoint();
        for slot in e.audio_slots.iter().chain(e.video_slots.iter()) {
            let s = slot.ssrcs;
            assert!(offer.contains(&format!("a=ssrc:{} ", s.ssrc)), "{s:?}");
            let video = e.video_slots.iter().any(|v| v.mid == slot.mid);
            match s.rtx {
                Some(rtx) => assert!(offer.contains(&format!("a=ssrc-group:FID {} {rtx}", s.ssrc))),
                None => assert!(!video, "video slots have rtx"),
            }
        }
        assert!(!e.slots_changed);
        e.assign("b", MediaKind::Video);
        assert!(e.slots_changed);
        e.slots_changed = false;
        e.assign("b", MediaKind::Video);
        e.release("nobody");
        assert!(!e.slots_changed, "nothing changed");
        e.release("b");
        assert!(e.slots_changed);
    }

    #[test]
    fn answers_are_checked_before_anything_changes() {
        let (mut e, offer) = endpoint();
        let lines = offer.matches("m=").count();
        let short = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:sha-256 01:02\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio\r\n";
        match e.accept_answer(short) {
            Err(PlaneError::BadAnswer(r)) => {
                assert!(r.contains(&format!("{lines} offered")), "{r}")
            }
            other => panic!("{other:?}"),
        }
        let mut answer = String::from(
            "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:sha-256 01:02\r\n",
        );
        answer.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio\r\na=ssrc:5 cname:x\r\n");
        answer.push_str(
            "m=video 9 UDP/TLS/RTP/SAVPF 100 96\r\na=mid:video\r\na=ssrc-group:SIM 1 2 3\r\n\
a=ssrc-group:FID 1 4\r\na=ssrc:1 cname:x\r\na=ssrc:4 cname:x\r\na=ssrc:2 cname:x\r\na=ssrc:3 cname:x\r\n",
        );
        for _ in 2..lines {
            answer.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:x\r\n");
        }
        e.accept_answer(&answer).expect("a complete answer");
        assert_eq!(e.incoming(5), Some((MediaKind::Audio, 0)));
        assert_eq!(e.incoming(3), Some((MediaKind::Video, 2)));
        assert_eq!(e.incoming(99), None);
        assert_eq!(e.layers.len(), 3);
        assert!(matches!(
            e.accept_answer(&answer),
            Err(PlaneError::NoPendingOffer)
        ));
    }
}
