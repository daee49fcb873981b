//! What the plane says over the bridge channel (colibri-ws, see
//! [`crate::channel`]), built from its own state. Pure: the driver decides
//! when to send and hands the messages to [`Channels`](crate::channel::Channels).
//!
//! Contract:
//! - **Ids.** The plane (and the channel registry) key a participant by the
//!   focus's endpoint key, `room@conference.domain/nick`. Jitsi clients know
//!   each other by MUC nick, so every id *inside* a message is the nick, the
//!   part after the last `/` of the key ([`nick`]; the whole key if it has
//!   none): `dominantSpeakerEndpoint`, `previousSpeakers`, a source's `owner`,
//!   and source names `<nick>-a0` / `<nick>-v0`. Keys never leave the plane.
//! - **Dominant speaker.** One [`SpeakerDetector`] per conference, fed with
//!   the RFC 6464 level of every forwarded audio frame and driven at its
//!   timeouts. A change becomes a [`DominantSpeakerEndpointChangeEvent`] for
//!   every endpoint of the conference, the speaker included. An endpoint whose
//!   socket is not open yet gets the conference's latest event once it is.
//! - **Slot maps.** When a receiver's slots change it gets [`SlotMaps`]:
//!   `AudioSourcesMap` and `VideoSourcesMap` listing every occupied slot
//!   (source, owner, the slot's SSRC and RTX as written in our offer, the
//!   slot's mid, video type `CAMERA`), then `ForwardedSources` (the video
//!   sources in its slots that the allocation forwards). The maps are complete every time: clients merge
//!   entries by SSRC, a freed slot just drops out, identical maps are not
//!   resent.
//! - **Inbound.** `ReceiverVideoConstraints` and `LastNChangedEvent` update
//!   the receiver's [`ReceiverConstraints`](crate::media::allocation::ReceiverConstraints),
//!   from which the driver chooses the layer of each source in its slots.
//!   `ReceiverAudioSubscription` sets whose audio may fill its audio slots.

use proto::bridge_channel::{
    AudioSourceMapping, AudioSourcesMap, BridgeMessage, DominantSpeakerEndpointChangeEvent,
    ForwardedSources, VideoSourceMapping, VideoSourcesMap, VideoType,
};

use super::endpoint::{Endpoint, Slot};
use super::sdp::SendSsrcs;
use crate::media::audio_route::Loudness;
use crate::media::speaker::{SpeakerChange, SpeakerDetector};

pub use crate::channel::endpoint_id as nick;

/// The name of `key`'s audio (`-a0`) or video (`-v0`) source.
pub fn source_name(key: &str, audio: bool) -> String {
    format!("{}-{}0", nick(key), if audio { "a" } else { "v" })
}

/// `(publisher, slot ssrcs, slot mid)` of every occupied slot of `slots`.
fn occupied<'a>(ep: &Endpoint, slots: &'a [Slot]) -> Vec<(&'a str, SendSsrcs, Option<String>)> {
    slots
        .iter()
        .filter_map(|s| {
            let publisher = s.publisher.as_deref()?;
            let mid = ep.public_mid(s.mid).map(str::to_owned);
            Some((publisher, s.ssrcs, mid))
        })
        .collect()
}

/// One conference's dominant-speaker state.
#[derive(Debug, Default)]
pub(crate) struct Conference {
    pub detector: SpeakerDetector,
    /// Each publisher's recent loudness, for its receivers' audio slots.
    pub loudness: Loudness,
    /// The latest event, for endpoints whose socket opens later.
    pub last: Option<BridgeMessage>,
}

/// The bridge-channel message for a speaker change (nicks, not keys).
pub(crate) fn speaker_message(change: &SpeakerChange) -> BridgeMessage {
    BridgeMessage::DominantSpeakerEndpointChangeEvent(DominantSpeakerEndpointChangeEvent {
        dominant_speaker_endpoint: nick(change.dominant.as_str()).to_owned(),
        previous_speakers: Some(
            change
                .previous
                .iter()
                .map(|p| nick(p.as_str()).to_owned())
                .collect(),
        ),
        silence: Some(change.silence),
    })
}

/// Who is in which of one receiver's slots, as the bridge channel says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotMaps {
    pub audio: Vec<AudioSourceMapping>,
    pub video: Vec<VideoSourceMapping>,
    pub forwarded: Vec<String>,
}

impl SlotMaps {
    /// The maps of `ep`'s occupied slots (a slot without a known SSRC is
    /// left out: it cannot be named to the client).
    pub fn of(ep: &Endpoint) -> SlotMaps {
        let audio = occupied(ep, &ep.audio_slots)
            .into_iter()
            .map(|(publisher, ssrcs, mid)| AudioSourceMapping {
                source: source_name(publisher, true),
                owner: Some(nick(publisher).to_owned()),
                ssrc: ssrcs.ssrc,
                mid,
            })
            .collect();
        let video: Vec<VideoSourceMapping> = occupied(ep, &ep.video_slots)
            .into_iter()
            .map(|(publisher, ssrcs, mid)| VideoSourceMapping {
                source: source_name(publisher, false),
                owner: Some(nick(publisher).to_owned()),
                ssrc: ssrcs.ssrc,
                // Every video slot has RTX with our codec set; 0 would say
                // "none" should a configuration ever lack it.
                rtx: ssrcs.rtx.unwrap_or(0),
                video_type: VideoType::Camera,
                mid,
            })
            .collect();
        // Forwarded: the slots the allocation gives a layer (lastN, the
        // constraints and the bandwidth may leave some out).
        let forwarded = ep
            .video_slots
            .iter()
            .filter(|s| s.fwd.target.is_some())
            .filter_map(|s| Some(source_name(s.publisher.as_deref()?, false)))
            .collect();
        SlotMaps {
            audio,
            video,
            forwarded,
        }
    }

    /// The three messages, in the order they are sent.
    pub fn messages(&self) -> [BridgeMessage; 3] {
        [
            BridgeMessage::AudioSourcesMap(AudioSourcesMap {
                mapped_sources: self.audio.clone(),
            }),
            BridgeMessage::VideoSourcesMap(VideoSourcesMap {
                mapped_sources: self.video.clone(),
            }),
            BridgeMessage::ForwardedSources(ForwardedSources {
                forwarded_sources: self.forwarded.clone(),
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use str0m::media::MediaKind;

    use super::*;

    #[test]
    fn nick_is_the_resource_of_the_key() {
        assert_eq!(nick("room@conference.meet.test/ab12cd34"), "ab12cd34");
        assert_eq!(nick("a/b/c"), "c");
        assert_eq!(nick("plain"), "plain");
        assert_eq!(source_name("room@conference.x/n1", true), "n1-a0");
        assert_eq!(source_name("room@conference.x/n1", false), "n1-v0");
    }

    #[test]
    fn maps_name_publishers_by_nick_with_the_slot_ssrcs() {
        let addr: SocketAddr = "127.0.0.1:10000".parse().unwrap();
        let (mut ep, offer) =
            Endpoint::new("room@c.x/r", "room@c.x", addr, 2, 3, Instant::now()).unwrap();
        assert_eq!(
            SlotMaps::of(&ep),
            SlotMaps {
                audio: vec![],
                video: vec![],
                forwarded: vec![]
            }
        );
        ep.assign("room@c.x/a", MediaKind::Audio);
        ep.assign("room@c.x/a", MediaKind::Video);
        ep.assign("room@c.x/b", MediaKind::Video);
        let maps = SlotMaps::of(&ep);
        assert_eq!(maps.audio.len(), 1);
        assert_eq!(maps.audio[0].source, "a-a0");
        assert_eq!(maps.audio[0].owner.as_deref(), Some("a"));
        assert_eq!(maps.audio[0].mid.as_deref(), Some("audio"));
        assert_eq!(maps.audio[0].ssrc, ep.audio_slots[0].ssrcs.ssrc);
        let names: Vec<_> = maps.video.iter().map(|v| v.source.as_str()).collect();
        assert_eq!(names, ["a-v0", "b-v0"]);
        assert_eq!(maps.video[1].mid.as_deref(), Some("video_2"));
        assert!(maps.forwarded.is_empty(), "no layer chosen yet");
        for slot in ep.video_slots.iter_mut() {
            slot.fwd.target = Some(0);
        }
        let maps = SlotMaps::of(&ep);
        assert_eq!(maps.forwarded, ["a-v0", "b-v0"]);
        for v in &maps.video {
            assert!(offer.contains(&format!("a=ssrc-group:FID {} {}", v.ssrc, v.rtx)));
        }
        let [a, v, f] = maps.messages();
        assert!(a
            .to_json()
            .starts_with(r#"{"colibriClass":"AudioSourcesMap""#));
        assert!(
            v.to_json().contains(r#""videoType":"CAMERA""#),
            "{}",
            v.to_json()
        );
        assert_eq!(
            f.to_json(),
            r#"{"colibriClass":"ForwardedSources","forwardedSources":["a-v0","b-v0"]}"#
        );
        ep.release("room@c.x/a");
        assert_eq!(SlotMaps::of(&ep).forwarded, ["b-v0"]);
    }

    #[test]
    fn speaker_message_uses_nicks() {
        let mut d = SpeakerDetector::default();
        d.add("room@c.x/a".into());
        d.add("room@c.x/b".into());
        let t0 = Instant::now();
        let mut change = None;
        for i in 0..40u32 {
            let now = t0 + Duration::from_millis(u64::from(i) * 20);
            // Speech varies (a steady level is learnt as noise).
            let level = if i % 2 == 0 { 10 } else { 60 };
            change = change.or(d.on_audio_level("room@c.x/b", level, now));
            change = change.or(d.on_audio_level("room@c.x/a", 127, now));
        }
        let change = change.expect("b becomes dominant");
        assert_eq!(
            speaker_message(&change).to_json(),
            r#"{"colibriClass":"DominantSpeakerEndpointChangeEvent","dominantSpeakerEndpoint":"b","previousSpeakers":[],"silence":false}"#
        );
    }
}
