//! One participant's session: its str0m [`Rtc`] (ICE-lite, offerer), its
//! named m-lines and its receive slots.
//!
//! Slot 0 of each kind is the participant's own sendrecv line (`audio`,
//! `video`); slots `1..n` are sendonly lines (`audio-N`, `video-N`). A slot
//! holds at most one publisher; [`Endpoint::assign`] gives a publisher the
//! first free slot, [`Endpoint::release`] frees it; both mark the slots as
//! changed, for the bridge channel's sources maps (see `signal`).

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, Mid, Pt};
use str0m::rtp::Extension;
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};

use super::sdp::{self, MidName, SendSsrcs};
use super::signal::SlotMaps;
use super::PlaneError;
use crate::media::allocation::ReceiverConstraints;

/// A receive slot: one m-line we send on, and who is forwarded into it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub mid: Mid,
    pub publisher: Option<String>,
    /// The SSRCs the slot is sent with (from our offer's `a=ssrc` lines).
    pub ssrcs: Option<SendSsrcs>,
}

impl Slot {
    fn new(mid: Mid) -> Slot {
        Slot {
            mid,
            publisher: None,
            ssrcs: None,
        }
    }
}

/// One participant's session.
pub(crate) struct Endpoint {
    pub id: String,
    pub conference: String,
    pub rtc: Rtc,
    pub ufrag: String,
    pending: Option<SdpPendingOffer>,
    names: Vec<MidName>,
    /// The participant's microphone line (also audio slot 0).
    pub audio_in: Mid,
    /// The participant's camera line (also video slot 0).
    pub video_in: Mid,
    pub audio_slots: Vec<Slot>,
    pub video_slots: Vec<Slot>,
    pub next_timeout: Instant,
    /// Its Rtc took input since it was last polled: poll it.
    pub dirty: bool,
    pub created: Instant,
    pub connected: bool,
    pub mute_audio: bool,
    pub mute_video: bool,
    pub last_keyframe_request: Option<Instant>,
    /// What the receiver asked for over the bridge channel (kept for the
    /// allocation; forwarding does not use it yet).
    pub constraints: ReceiverConstraints,
    /// A slot changed since the sources maps were last delivered.
    pub slots_changed: bool,
    /// The sources maps last delivered over the bridge channel.
    pub sent_maps: Option<SlotMaps>,
    /// New: the conference's dominant speaker is still to be sent.
    pub speaker_pending: bool,
}

/// The Rtc configuration every endpoint shares: ICE-lite, Jitsi's payload
/// types and header extension ids.
fn rtc_config() -> RtcConfig {
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .clear_extension_map()
        .set_extension(1, Extension::AudioLevel)
        .set_extension(3, Extension::AbsoluteSendTime)
        .set_extension(5, Extension::TransportSequenceNumber);
    // The mid extension (Jitsi's id 10) is left out on purpose: str0m picks
    // its own mids and we rename them in the SDP text only (see `sdp`), so
    // the value on the wire would contradict the SDP and browsers drop
    // packets whose MID they do not know. Routing is by a=ssrc instead.
    let codecs = config.codec_config();
    codecs.add_config(
        Pt::from(111),
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
        Pt::from(126),
        None,
        Codec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::default(),
    );
    codecs.add_config(
        Pt::from(100),
        Some(Pt::from(96)),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        FormatParams::default(),
    );
    codecs.add_h264(Pt::from(107), Some(Pt::from(99)), true, 0x42e01f);
    config
}

impl Endpoint {
    /// A new session and its SDP offer (mids already renamed to ours).
    pub fn new(
        id: &str,
        conference: &str,
        candidate: SocketAddr,
        audio_slots: usize,
        video_slots: usize,
        now: Instant,
    ) -> Result<(Endpoint, String), PlaneError> {
        let creds = IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let mut rtc = rtc_config().set_local_ice_credentials(creds).build(now);
        let host = Candidate::host(candidate, "udp")
            .map_err(|e| PlaneError::Config(format!("candidate {candidate}: {e}")))?;
        rtc.add_local_candidate(host);

        let mut names = Vec::new();
        let mut api = rtc.sdp_api();
        let stream = Some(format!("jvb-{id}"));
        let mut add = |kind: MediaKind, dir: Direction, public: String| {
            let mid = api.add_media(kind, dir, stream.clone(), None, None);
            names.push(MidName {
                internal: mid.to_string(),
                public,
            });
            mid
        };
        let audio_in = add(MediaKind::Audio, Direction::SendRecv, "audio".into());
        let video_in = add(MediaKind::Video, Direction::SendRecv, "video".into());
        let mut audio = vec![Slot::new(audio_in)];
        for n in 1..audio_slots.max(1) {
            let mid = add(MediaKind::Audio, Direction::SendOnly, format!("audio-{n}"));
            audio.push(Slot::new(mid));
        }
        let mut video = vec![Slot::new(video_in)];
        for n in 1..video_slots.max(1) {
            let mid = add(MediaKind::Video, Direction::SendOnly, format!("video-{n}"));
            video.push(Slot::new(mid));
        }
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| PlaneError::Config("no changes to offer".into()))?;
        let offer = sdp::to_public(&offer.to_sdp_string(), &names);
        // The SSRCs str0m put in the offer are the ones it sends with once
        // the answer is in; the bridge channel names them to the receiver.
        let ssrcs = sdp::send_ssrcs(&offer);
        for slot in audio.iter_mut().chain(video.iter_mut()) {
            let internal = slot.mid.to_string();
            let public = names.iter().find(|n| n.internal == internal);
            slot.ssrcs = public.and_then(|n| {
                ssrcs
                    .iter()
                    .find(|(mid, _)| *mid == n.public)
                    .map(|(_, s)| *s)
            });
        }
        let endpoint = Endpoint {
            id: id.to_owned(),
            conference: conference.to_owned(),
            rtc,
            ufrag,
            pending: Some(pending),
            names,
            audio_in,
            video_in,
            audio_slots: audio,
            video_slots: video,
            next_timeout: now,
            dirty: true,
            created: now,
            connected: false,
            mute_audio: false,
            mute_video: false,
            last_keyframe_request: None,
            constraints: ReceiverConstraints::new(),
            slots_changed: false,
            sent_maps: None,
            speaker_pending: true,
        };
        Ok((endpoint, offer))
    }

    /// Applies the participant's answer to our offer. An answer that parses
    /// but that str0m refuses uses the offer up (the session is then dead
    /// weight; the focus should remove it).
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), PlaneError> {
        if self.pending.is_none() {
            return Err(PlaneError::NoPendingOffer);
        }
        // Text that does not parse leaves the offer open for a better try.
        let internal = sdp::to_internal(sdp, &self.names);
        let answer = SdpAnswer::from_sdp_string(&internal)
            .map_err(|e| PlaneError::BadAnswer(e.to_string()))?;
        let pending = self.pending.take().ok_or(PlaneError::NoPendingOffer)?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| PlaneError::BadAnswer(e.to_string()))
    }

    /// The public name of one of our mids, for logs and tests.
    pub fn public_mid(&self, mid: Mid) -> Option<&str> {
        let internal = mid.to_string();
        self.names
            .iter()
            .find(|n| n.internal == internal)
            .map(|n| n.public.as_str())
    }

    /// Gives `publisher` a slot of `kind` (first free), unless it has one.
    pub fn assign(&mut self, publisher: &str, kind: MediaKind) -> Option<Mid> {
        let changed = &mut self.slots_changed;
        let slots = if kind.is_audio() {
            &mut self.audio_slots
        } else {
            &mut self.video_slots
        };
        if let Some(s) = slots
            .iter()
            .find(|s| s.publisher.as_deref() == Some(publisher))
        {
            return Some(s.mid);
        }
        let free = slots.iter_mut().find(|s| s.publisher.is_none())?;
        free.publisher = Some(publisher.to_owned());
        *changed = true;
        Some(free.mid)
    }

    /// Frees every slot `publisher` holds.
    pub fn release(&mut self, publisher: &str) {
        for s in self
            .audio_slots
            .iter_mut()
            .chain(self.video_slots.iter_mut())
        {
            if s.publisher.as_deref() == Some(publisher) {
                s.publisher = None;
                self.slots_changed = true;
            }
        }
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

    /// Who is forwarded into the slot `mid`.
    pub fn publisher_in(&self, mid: Mid) -> Option<&str> {
        self.audio_slots
            .iter()
            .chain(self.video_slots.iter())
            .find(|s| s.mid == mid)
            .and_then(|s| s.publisher.as_deref())
    }

    /// The kind of the participant's own media line `mid`, if it is one.
    pub fn incoming_kind(&self, mid: Mid) -> Option<MediaKind> {
        if mid == self.audio_in {
            Some(MediaKind::Audio)
        } else if mid == self.video_in {
            Some(MediaKind::Video)
        } else {
            None
        }
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
            "a=group:BUNDLE audio video audio-1 audio-2 video-1",
            "a=mid:audio-2",
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
        assert_eq!(e.public_mid(c), Some("audio-1"));
        assert_eq!(e.assign("b", MediaKind::Audio), Some(b));
        let d = e.assign("d", MediaKind::Audio).unwrap();
        assert_eq!(e.public_mid(d), Some("audio-2"));
        assert_eq!(e.assign("x", MediaKind::Audio), None);
        e.release("c");
        assert_eq!(e.slot_of("c", MediaKind::Audio), None);
        assert_eq!(e.assign("x", MediaKind::Audio), Some(c));
        assert_eq!(e.publisher_in(c), Some("x"));
        assert_eq!(e.assign("v", MediaKind::Video), Some(e.video_in));
    }

    #[test]
    fn slot_ssrcs_are_those_of_the_offer_and_changes_are_marked() {
        let (mut e, offer) = endpoint();
        for slot in e.audio_slots.iter().chain(e.video_slots.iter()) {
            let s = slot.ssrcs.expect("every slot has an ssrc");
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
}
