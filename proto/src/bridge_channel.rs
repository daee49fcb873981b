//! Bridge-channel messages (colibri-ws WebSocket or SCTP data channel): JSON
//! objects whose type is named by `colibriClass`.
//!
//! Sources: jitsi-videobridge `jvb/src/main/kotlin/org/jitsi/videobridge/message/BridgeChannelMessage.kt`,
//! `cc/allocation/VideoConstraints.kt`, `doc/web-sockets.md`, `doc/allocation.md`,
//! `doc/constraints.md`; lib-jitsi-meet `modules/RTC/BridgeChannel.ts`.
//!
//! Contract (the current bridge's parser, Jackson with strict duplicate detection):
//! - [`BridgeMessage::parse`] rejects a duplicate key at any depth, a missing or
//!   unknown `colibriClass`, a field of the wrong type, and any field a message does
//!   not define. The legacy `selectedEndpoints`/`onStageEndpoints` of
//!   `ReceiverVideoConstraints` are therefore errors that name the field.
//! - Exceptions, as in the bridge: `EndpointMessage` and `EndpointStats` keep every
//!   extra field (in `extra`) so they can be relayed with `from` added, and the
//!   constraints objects ([`VideoConstraints`]) ignore fields they do not know.
//! - Every error is [`Error::Json`] with `what = "bridge-channel message"` and serde's
//!   message (without a position) as `reason`.
//! - Absent optional fields stay absent when serialized; `to_json` writes
//!   `colibriClass` first.
//! - `videoType` is matched case-insensitively; `SourceVideoTypeMessage` writes it
//!   in lower case (as lib-jitsi-meet sends it), the sources maps in upper case (as
//!   the bridge sends them).
//! - `EndpointConnectivityStatusChangeEvent.active` is a JSON string `"true"`/`"false"`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

const WHAT: &str = "bridge-channel message";

/// One bridge-channel message, tagged by `colibriClass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "colibriClass")]
pub enum BridgeMessage {
    /// Bridge to client, on connect or in reply to `ClientHello`.
    ServerHello(ServerHello),
    /// Client to bridge.
    ClientHello(ClientHello),
    /// Client to bridge: what video to receive, and at which quality.
    ReceiverVideoConstraints(ReceiverVideoConstraints),
    /// Client to bridge: the video type of one of its sources.
    SourceVideoTypeMessage(SourceVideoTypeMessage),
    /// Client to client through the bridge.
    EndpointMessage(EndpointMessage),
    /// Client statistics, relayed to other clients.
    EndpointStats(EndpointStats),
    /// Client to bridge: which audio sources to receive.
    ReceiverAudioSubscription(ReceiverAudioSubscription),
    /// Legacy client to bridge: the last-N value.
    LastNChangedEvent(LastNChangedEvent),
    /// Bridge to client.
    DominantSpeakerEndpointChangeEvent(DominantSpeakerEndpointChangeEvent),
    /// Bridge to client: the video sources now forwarded to it.
    ForwardedSources(ForwardedSources),
    /// Bridge to sender: the highest resolution anyone wants of a source.
    SenderSourceConstraints(SenderSourceConstraints),
    /// Bridge to client: an endpoint's media connectivity changed.
    EndpointConnectivityStatusChangeEvent(EndpointConnectivityStatusChangeEvent),
    /// Bridge to client: what the bridge knows of the client's connection.
    ConnectionStats(ConnectionStats),
    /// Bridge to client (SSRC rewriting): which source each video SSRC carries.
    VideoSourcesMap(VideoSourcesMap),
    /// Bridge to client (SSRC rewriting): which source each audio SSRC carries.
    AudioSourcesMap(AudioSourcesMap),
}

impl BridgeMessage {
    /// Parses one message with the bridge's strictness (see the module docs).
    pub fn parse(json: &str) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_str(json);
        de.deserialize_map(NoDuplicateKeys).map_err(json_error)?;
        de.end().map_err(json_error)?;
        serde_json::from_str(json).map_err(json_error)
    }

    /// The message as a JSON text, `colibriClass` first.
    pub fn to_json(&self) -> String {
        // Serialization cannot fail: every map has string keys and no type here
        // has a fallible `Serialize`.
        serde_json::to_string(self).expect("bridge-channel messages always serialize")
    }

    /// The `colibriClass` of this message.
    pub fn colibri_class(&self) -> &'static str {
        match self {
            BridgeMessage::ServerHello(_) => "ServerHello",
            BridgeMessage::ClientHello(_) => "ClientHello",
            BridgeMessage::ReceiverVideoConstraints(_) => "ReceiverVideoConstraints",
            BridgeMessage::SourceVideoTypeMessage(_) => "SourceVideoTypeMessage",
            BridgeMessage::EndpointMessage(_) => "EndpointMessage",
            BridgeMessage::EndpointStats(_) => "EndpointStats",
            BridgeMessage::ReceiverAudioSubscription(_) => "ReceiverAudioSubscription",
            BridgeMessage::LastNChangedEvent(_) => "LastNChangedEvent",
            BridgeMessage::DominantSpeakerEndpointChangeEvent(_) => {
                "DominantSpeakerEndpointChangeEvent"
            }
            BridgeMessage::ForwardedSources(_) => "ForwardedSources",
            BridgeMessage::SenderSourceConstraints(_) => "SenderSourceConstraints",
            BridgeMessage::EndpointConnectivityStatusChangeEvent(_) => {
                "EndpointConnectivityStatusChangeEvent"
            }
            BridgeMessage::ConnectionStats(_) => "ConnectionStats",
            BridgeMessage::VideoSourcesMap(_) => "VideoSourcesMap",
            BridgeMessage::AudioSourcesMap(_) => "AudioSourcesMap",
        }
    }
}

impl std::str::FromStr for BridgeMessage {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        BridgeMessage::parse(s)
    }
}

/// serde's message without its " at line L column C" suffix: positions are only
/// known for some errors (not for fields of a buffered tagged message), and a
/// frame is one line anyway.
fn json_error(e: serde_json::Error) -> Error {
    let mut reason = e.to_string();
    if e.line() > 0 {
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        if let Some(stripped) = reason.strip_suffix(&suffix) {
            reason.truncate(stripped.len());
        }
    }
    Error::Json { what: WHAT, reason }
}

/// `ServerHello {version?}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerHello {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `ClientHello {}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientHello {}

/// Resolution and frame-rate limits for one source, or the default for all.
/// `maxHeight` 0 disables a source; -1 means no limit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame_rate: Option<f64>,
}

impl VideoConstraints {
    pub fn max_height(max_height: i32) -> Self {
        VideoConstraints {
            max_height: Some(max_height),
            max_frame_rate: None,
        }
    }
}

/// `ReceiverVideoConstraints`: every field optional, only those present update
/// the receiver's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiverVideoConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_n: Option<i32>,
    /// Source names the receiver selected (kept at high priority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_sources: Option<Vec<String>>,
    /// Source names on stage (highest priority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_stage_sources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_constraints: Option<VideoConstraints>,
    /// Per source name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<BTreeMap<String, VideoConstraints>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_bandwidth_bps: Option<i64>,
}

/// The video type of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoType {
    Camera,
    Desktop,
    DesktopHighFps,
    /// The source is turned off.
    Disabled,
    /// Deprecated by the bridge in favour of `Disabled`.
    None,
}

impl VideoType {
    const ALL: [(VideoType, &'static str); 5] = [
        (VideoType::Camera, "camera"),
        (VideoType::Desktop, "desktop"),
        (VideoType::DesktopHighFps, "desktop_high_fps"),
        (VideoType::Disabled, "disabled"),
        (VideoType::None, "none"),
    ];

    /// Lower case, as lib-jitsi-meet writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoType::Camera => "camera",
            VideoType::Desktop => "desktop",
            VideoType::DesktopHighFps => "desktop_high_fps",
            VideoType::Disabled => "disabled",
            VideoType::None => "none",
        }
    }

    fn serialize_upper<S: Serializer>(v: &VideoType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.as_str().to_ascii_uppercase())
    }
}

impl Serialize for VideoType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VideoType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        VideoType::ALL
            .iter()
            .find(|(_, name)| s.eq_ignore_ascii_case(name))
            .map(|(v, _)| *v)
            .ok_or_else(|| {
                de::Error::unknown_variant(
                    &s,
                    &["camera", "desktop", "desktop_high_fps", "disabled", "none"],
                )
            })
    }
}

/// `SourceVideoTypeMessage {sourceName, videoType, endpointId?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceVideoTypeMessage {
    pub source_name: String,
    pub video_type: VideoType,
    /// Added by the bridge when relaying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
}

/// `EndpointMessage {to, from?, msgPayload?, ..}`: an empty `to` is a broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessage {
    pub to: String,
    /// The sender's endpoint id, added by the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The application payload (lib-jitsi-meet drops the message unless it is an object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_payload: Option<Value>,
    /// Every other field, relayed as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl EndpointMessage {
    /// A message to `to` ("" for everyone) carrying `payload`.
    pub fn new(to: impl Into<String>, payload: Value) -> Self {
        EndpointMessage {
            to: to.into(),
            from: None,
            msg_payload: Some(payload),
            extra: Map::new(),
        }
    }

    pub fn is_broadcast(&self) -> bool {
        self.to.trim().is_empty()
    }
}

/// `EndpointStats {from?, ..}`: opaque client statistics, relayed as is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EndpointStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The legacy `mode` of `ReceiverAudioSubscription`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AudioSubscriptionMode {
    All,
    None,
    Include,
    Exclude,
}

/// `ReceiverAudioSubscription {all?, include?, exclude?}`, or the legacy
/// `{mode, list}` the bridge still accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverAudioSubscription {
    /// Receive every source not named in `exclude` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Sources to receive in addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Sources never to receive; wins over `all` and `include`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
    /// Legacy form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AudioSubscriptionMode>,
    /// Legacy form: the list `mode` applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<String>>,
}

impl ReceiverAudioSubscription {
    /// `(all, include, exclude)` with the bridge's defaults, translating the
    /// legacy `mode`/`list` form the way the bridge does.
    pub fn normalized(&self) -> (bool, Vec<String>, Vec<String>) {
        let list = || self.list.clone().unwrap_or_default();
        match self.mode {
            Some(AudioSubscriptionMode::All) => (true, vec![], vec![]),
            Some(AudioSubscriptionMode::None) => (false, vec![], vec![]),
            Some(AudioSubscriptionMode::Include) => (false, list(), vec![]),
            Some(AudioSubscriptionMode::Exclude) => (true, vec![], list()),
            None => (
                self.all.unwrap_or(false),
                self.include.clone().unwrap_or_default(),
                self.exclude.clone().unwrap_or_default(),
            ),
        }
    }
}

/// `LastNChangedEvent {lastN}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastNChangedEvent {
    pub last_n: i32,
}

/// `DominantSpeakerEndpointChangeEvent {dominantSpeakerEndpoint, previousSpeakers?, silence?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DominantSpeakerEndpointChangeEvent {
    pub dominant_speaker_endpoint: String,
    /// Most recent first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_speakers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<bool>,
}

/// `ForwardedSources {forwardedSources}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardedSources {
    pub forwarded_sources: Vec<String>,
}

/// `SenderSourceConstraints {sourceName, maxHeight}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SenderSourceConstraints {
    pub source_name: String,
    pub max_height: i32,
}

/// `EndpointConnectivityStatusChangeEvent {endpoint, active: "true"|"false"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConnectivityStatusChangeEvent {
    pub endpoint: String,
    /// A JSON string on the wire.
    #[serde(with = "string_bool")]
    pub active: bool,
}

/// `ConnectionStats {estimatedDownlinkBandwidth?}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionStats {
    /// Bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_downlink_bandwidth: Option<i64>,
}

/// One entry of `VideoSourcesMap.mappedSources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoSourceMapping {
    pub source: String,
    /// The endpoint id; null when unknown.
    pub owner: Option<String>,
    pub ssrc: u32,
    pub rtx: u32,
    #[serde(serialize_with = "VideoType::serialize_upper")]
    pub video_type: VideoType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// `VideoSourcesMap {mappedSources}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoSourcesMap {
    pub mapped_sources: Vec<VideoSourceMapping>,
}

/// One entry of `AudioSourcesMap.mappedSources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioSourceMapping {
    pub source: String,
    /// The endpoint id; null when unknown.
    pub owner: Option<String>,
    pub ssrc: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// `AudioSourcesMap {mappedSources}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioSourcesMap {
    pub mapped_sources: Vec<AudioSourceMapping>,
}

/// A boolean carried as the JSON string `"true"` or `"false"`.
mod string_bool {
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *b { "true" } else { "false" })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(de::Error::invalid_value(
                de::Unexpected::Str(other),
                &"\"true\" or \"false\"",
            )),
        }
    }
}

/// Walks a JSON document and fails on the first object with a repeated key
/// (Jackson's STRICT_DUPLICATE_DETECTION). Entered with `deserialize_map`, so a
/// root that is not an object is rejected too (serde would otherwise accept a
/// tagged enum written as an array).
struct NoDuplicateKeys;

impl<'de> DeserializeSeed<'de> for NoDuplicateKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicateKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            map.next_value_seed(NoDuplicateKeys)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_duplicate_is_rejected() {
        let err = BridgeMessage::parse(
            r#"{"colibriClass":"ReceiverVideoConstraints","constraints":{"a":{"maxHeight":1},"a":{"maxHeight":2}}}"#,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Json { reason, .. } if reason.contains("duplicate key `a`")));
    }

    #[test]
    fn legacy_audio_subscription_normalizes() {
        let m = BridgeMessage::parse(
            r#"{"colibriClass":"ReceiverAudioSubscription","mode":"Exclude","list":["x"]}"#,
        )
        .unwrap();
        let BridgeMessage::ReceiverAudioSubscription(s) = m else {
            panic!("wrong variant: {m:?}")
        };
        assert_eq!(s.normalized(), (true, vec![], vec!["x".to_owned()]));
    }

    #[test]
    fn video_type_is_case_insensitive() {
        let m = BridgeMessage::parse(
            r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"a-v0","videoType":"DESKTOP"}"#,
        )
        .unwrap();
        assert_eq!(
            m.to_json(),
            r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"a-v0","videoType":"desktop"}"#
        );
    }
}
