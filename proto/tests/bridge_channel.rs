//! Golden, negative and build-then-serialize tests for the bridge-channel
//! (colibri-ws) JSON messages.
//!
//! Every fixture in `colibri-ws/` is parsed, checked field by field, serialized
//! back, compared with the original JSON (numbers by value, key order ignored)
//! and re-parsed to an equal message. The two legacy ReceiverVideoConstraints
//! fixtures must be rejected with an error naming the unknown field.

mod common;

use std::collections::BTreeMap;

use common::{fixture, fixtures_dir};
use proto::bridge_channel::*;
use proto::Error;
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// JSON equality with numbers compared by value (`30` == `30.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Parses fixture `name`, checks that it serializes back to the same JSON and
/// re-parses to an equal message, and returns it.
#[track_caller]
fn golden(name: &str) -> BridgeMessage {
    let text = fixture(&format!("colibri-ws/{name}"));
    let msg = BridgeMessage::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = msg.to_json();
    let original: Value = serde_json::from_str(&text).unwrap();
    let written: Value = serde_json::from_str(&out).unwrap();
    assert!(
        json_eq(&written, &original),
        "{name}: wrote {written}\n expected {original}"
    );
    assert!(
        out.starts_with(&format!(r#"{{"colibriClass":"{}""#, msg.colibri_class())),
        "{name}: colibriClass is not first: {out}"
    );
    assert_eq!(BridgeMessage::parse(&out).unwrap(), msg, "{name}: re-parse");
    msg
}

fn err(reason: &str) -> Error {
    Error::Json {
        what: "bridge-channel message",
        reason: reason.to_owned(),
    }
}

#[track_caller]
fn reason_of(json: &str) -> String {
    match BridgeMessage::parse(json) {
        Err(Error::Json { what, reason }) => {
            assert_eq!(what, "bridge-channel message");
            reason
        }
        other => panic!("expected a JSON error for {json}, got {other:?}"),
    }
}

const GOLDEN: &[&str] = &[
    "audio-sources-map.json",
    "client-hello.json",
    "dominant-speaker-endpoint-change-event-minimal.json",
    "dominant-speaker-endpoint-change-event.json",
    "endpoint-connectivity-status-change-event.json",
    "endpoint-message-broadcast-face-box.json",
    "endpoint-message.json",
    "forwarded-sources.json",
    "receiver-audio-subscription.json",
    "receiver-video-constraints-empty.json",
    "receiver-video-constraints-stage-view.json",
    "receiver-video-constraints-test.json",
    "receiver-video-constraints-tile-view-disable.json",
    "receiver-video-constraints-tile-view.json",
    "receiver-video-constraints.json",
    "sender-source-constraints-template.json",
    "sender-source-constraints.json",
    "server-hello-version.json",
    "server-hello.json",
    "source-video-type-message.json",
    "video-sources-map.json",
];

const LEGACY: &[&str] = &[
    "receiver-video-constraints-legacy-endpoints.json",
    "receiver-video-constraints-stage-view-legacy-keys.json",
];

#[test]
fn every_fixture_is_covered() {
    let dir = fixtures_dir().join("colibri-ws");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("colibri-ws fixtures") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue;
        }
        seen += 1;
        if LEGACY.contains(&name.as_str()) {
            assert!(BridgeMessage::parse(&fixture(&format!("colibri-ws/{name}"))).is_err());
        } else {
            assert!(GOLDEN.contains(&name.as_str()), "{name} has no golden test");
            golden(&name);
        }
    }
    assert_eq!(seen, GOLDEN.len() + LEGACY.len());
}

// ---------------------------------------------------------------- golden

#[test]
fn hello_fixtures() {
    assert_eq!(
        golden("server-hello.json"),
        BridgeMessage::ServerHello(ServerHello { version: None })
    );
    assert_eq!(
        golden("server-hello-version.json"),
        BridgeMessage::ServerHello(ServerHello {
            version: Some("v".into())
        })
    );
    assert_eq!(
        golden("client-hello.json"),
        BridgeMessage::ClientHello(ClientHello {})
    );
}

#[test]
fn receiver_video_constraints_fixtures() {
    let BridgeMessage::ReceiverVideoConstraints(c) = golden("receiver-video-constraints.json")
    else {
        panic!("wrong class")
    };
    assert_eq!(c.last_n, Some(2));
    assert_eq!(c.selected_sources, Some(vec!["A-v0".into(), "B-v0".into()]));
    assert_eq!(
        c.on_stage_sources,
        Some(vec!["A-v1".into(), "C-v0".into(), "D-v0".into()])
    );
    assert_eq!(
        c.default_constraints,
        Some(VideoConstraints::max_height(180))
    );
    let mut expected = BTreeMap::new();
    expected.insert("A-v1".to_owned(), VideoConstraints::max_height(720));
    expected.insert("B-v0".to_owned(), VideoConstraints::max_height(360));
    assert_eq!(c.constraints, Some(expected));
    assert_eq!(c.assumed_bandwidth_bps, None);

    assert_eq!(
        golden("receiver-video-constraints-empty.json"),
        BridgeMessage::ReceiverVideoConstraints(ReceiverVideoConstraints::default())
    );

    let BridgeMessage::ReceiverVideoConstraints(c) =
        golden("receiver-video-constraints-stage-view.json")
    else {
        panic!("wrong class")
    };
    assert_eq!(c.on_stage_sources, Some(vec!["A-v0".into()]));
    assert_eq!(c.selected_sources, None);
    assert_eq!(
        c.constraints.unwrap()["A-v0"],
        VideoConstraints::max_height(720)
    );

    let BridgeMessage::ReceiverVideoConstraints(c) = golden("receiver-video-constraints-test.json")
    else {
        panic!("wrong class")
    };
    assert_eq!(c.last_n, Some(3));
    assert_eq!(c.default_constraints, Some(VideoConstraints::max_height(0)));
    let constraints = c.constraints.unwrap();
    assert_eq!(constraints.len(), 3);
    assert_eq!(
        constraints["epThumbnail2"],
        VideoConstraints {
            max_height: Some(180),
            max_frame_rate: Some(30.0)
        }
    );

    let BridgeMessage::ReceiverVideoConstraints(c) =
        golden("receiver-video-constraints-tile-view-disable.json")
    else {
        panic!("wrong class")
    };
    assert_eq!(c.selected_sources, Some(vec!["A-v0".into(), "B-v0".into()]));
    let constraints = c.constraints.unwrap();
    assert_eq!(constraints["C-v0"], VideoConstraints::max_height(0));
    assert_eq!(constraints["D-v0"], VideoConstraints::max_height(0));

    assert_eq!(
        golden("receiver-video-constraints-tile-view.json"),
        BridgeMessage::ReceiverVideoConstraints(ReceiverVideoConstraints {
            default_constraints: Some(VideoConstraints {
                max_height: Some(180),
                max_frame_rate: Some(15.0)
            }),
            ..Default::default()
        })
    );
}

#[test]
fn legacy_receiver_video_constraints_are_rejected() {
    let reason = reason_of(&fixture(
        "colibri-ws/receiver-video-constraints-legacy-endpoints.json",
    ));
    assert!(
        reason.starts_with("unknown field `selectedEndpoints`, expected one of `lastN`"),
        "{reason}"
    );
    let reason = reason_of(&fixture(
        "colibri-ws/receiver-video-constraints-stage-view-legacy-keys.json",
    ));
    assert!(
        reason.starts_with("unknown field `onStageEndpoints`, expected one of `lastN`"),
        "{reason}"
    );
}

#[test]
fn sender_source_constraints_fixtures() {
    assert_eq!(
        golden("sender-source-constraints.json"),
        BridgeMessage::SenderSourceConstraints(SenderSourceConstraints {
            source_name: "endpoint1-v0".into(),
            max_height: 180
        })
    );
    assert_eq!(
        golden("sender-source-constraints-template.json"),
        BridgeMessage::SenderSourceConstraints(SenderSourceConstraints {
            source_name: "s1".into(),
            max_height: 1080
        })
    );
}

#[test]
fn dominant_speaker_fixtures() {
    assert_eq!(
        golden("dominant-speaker-endpoint-change-event.json"),
        BridgeMessage::DominantSpeakerEndpointChangeEvent(DominantSpeakerEndpointChangeEvent {
            dominant_speaker_endpoint: "d".into(),
            previous_speakers: Some(vec!["p1".into(), "p2".into()]),
            silence: Some(false),
        })
    );
    assert_eq!(
        golden("dominant-speaker-endpoint-change-event-minimal.json"),
        BridgeMessage::DominantSpeakerEndpointChangeEvent(DominantSpeakerEndpointChangeEvent {
            dominant_speaker_endpoint: "0".into(),
            previous_speakers: None,
            silence: None,
        })
    );
}

#[test]
fn forwarded_sources_fixture() {
    assert_eq!(
        golden("forwarded-sources.json"),
        BridgeMessage::ForwardedSources(ForwardedSources {
            forwarded_sources: vec!["s1".into(), "s2".into(), "s3".into()]
        })
    );
}

#[test]
fn endpoint_message_fixtures() {
    let BridgeMessage::EndpointMessage(m) = golden("endpoint-message-broadcast-face-box.json")
    else {
        panic!("wrong class")
    };
    assert_eq!(m.to, "");
    assert!(m.is_broadcast());
    assert_eq!(m.from, None);
    assert_eq!(
        m.msg_payload,
        Some(json!({"type":"face-box","faceBox":{"left":33,"right":64,"width":31}}))
    );
    assert!(m.extra.is_empty());

    let BridgeMessage::EndpointMessage(m) = golden("endpoint-message.json") else {
        panic!("wrong class")
    };
    assert_eq!(m.to, "to_value");
    assert!(!m.is_broadcast());
    assert_eq!(m.msg_payload, None);
    assert_eq!(m.extra.len(), 3);
    assert_eq!(m.extra["other_field1"], json!("other_value1"));
    assert_eq!(m.extra["other_field2"], json!(97));
    assert_eq!(m.extra["other_null"], Value::Null);
}

#[test]
fn endpoint_connectivity_fixture() {
    let text = fixture("colibri-ws/endpoint-connectivity-status-change-event.json");
    let msg = golden("endpoint-connectivity-status-change-event.json");
    assert_eq!(
        msg,
        BridgeMessage::EndpointConnectivityStatusChangeEvent(
            EndpointConnectivityStatusChangeEvent {
                endpoint: "abcdabcd".into(),
                active: true
            }
        )
    );
    // Byte for byte what the bridge's template writes.
    assert_eq!(msg.to_json(), text.trim_end());
}

#[test]
fn sources_map_fixtures() {
    assert_eq!(
        golden("video-sources-map.json"),
        BridgeMessage::VideoSourcesMap(VideoSourcesMap {
            mapped_sources: vec![
                VideoSourceMapping {
                    source: "source1234".into(),
                    owner: Some("endpoint1".into()),
                    ssrc: 12345,
                    rtx: 45678,
                    video_type: VideoType::Camera,
                    mid: None,
                },
                VideoSourceMapping {
                    source: "source5678".into(),
                    owner: Some("endpoint2".into()),
                    ssrc: 87654,
                    rtx: 98765,
                    video_type: VideoType::Desktop,
                    mid: None,
                },
            ]
        })
    );
    assert_eq!(
        golden("audio-sources-map.json"),
        BridgeMessage::AudioSourcesMap(AudioSourcesMap {
            mapped_sources: vec![
                AudioSourceMapping {
                    source: "source1234-a".into(),
                    owner: Some("endpoint1".into()),
                    ssrc: 23456,
                    mid: None,
                },
                AudioSourceMapping {
                    source: "source5678-a".into(),
                    owner: Some("endpoint2".into()),
                    ssrc: 98765,
                    mid: None,
                },
            ]
        })
    );
}

#[test]
fn client_to_bridge_fixtures() {
    assert_eq!(
        golden("receiver-audio-subscription.json"),
        BridgeMessage::ReceiverAudioSubscription(ReceiverAudioSubscription {
            all: Some(true),
            include: Some(vec!["endpoint1".into(), "endpoint2".into()]),
            exclude: Some(vec!["endpoint3".into()]),
            mode: None,
            list: None,
        })
    );
    assert_eq!(
        golden("source-video-type-message.json"),
        BridgeMessage::SourceVideoTypeMessage(SourceVideoTypeMessage {
            source_name: "source1234".into(),
            video_type: VideoType::DesktopHighFps,
            endpoint_id: None,
        })
    );
}

// ---------------------------------------------------------------- built

#[test]
fn bridge_sends() {
    assert_eq!(
        BridgeMessage::ServerHello(ServerHello {
            version: Some("v".into())
        })
        .to_json(),
        fixture("colibri-ws/server-hello-version.json").trim_end()
    );
    assert_eq!(
        BridgeMessage::ServerHello(ServerHello::default()).to_json(),
        fixture("colibri-ws/server-hello.json").trim_end()
    );
    assert_eq!(
        BridgeMessage::ForwardedSources(ForwardedSources {
            forwarded_sources: vec!["s1".into(), "s2".into(), "s3".into()]
        })
        .to_json(),
        fixture("colibri-ws/forwarded-sources.json").trim_end()
    );
    assert_eq!(
        BridgeMessage::DominantSpeakerEndpointChangeEvent(DominantSpeakerEndpointChangeEvent {
            dominant_speaker_endpoint: "d".into(),
            previous_speakers: Some(vec!["p1".into(), "p2".into()]),
            silence: Some(false),
        })
        .to_json(),
        fixture("colibri-ws/dominant-speaker-endpoint-change-event.json").trim_end()
    );
    assert_eq!(
        BridgeMessage::SenderSourceConstraints(SenderSourceConstraints {
            source_name: "s1".into(),
            max_height: 1080
        })
        .to_json(),
        r#"{"colibriClass":"SenderSourceConstraints","sourceName":"s1","maxHeight":1080}"#
    );
    assert_eq!(
        BridgeMessage::ConnectionStats(ConnectionStats {
            estimated_downlink_bandwidth: Some(2_500_000)
        })
        .to_json(),
        r#"{"colibriClass":"ConnectionStats","estimatedDownlinkBandwidth":2500000}"#
    );
    assert_eq!(
        BridgeMessage::LastNChangedEvent(LastNChangedEvent { last_n: -1 }).to_json(),
        r#"{"colibriClass":"LastNChangedEvent","lastN":-1}"#
    );
}

#[test]
fn client_sends() {
    let mut constraints = BTreeMap::new();
    constraints.insert("A-v0".to_owned(), VideoConstraints::max_height(720));
    let msg = BridgeMessage::ReceiverVideoConstraints(ReceiverVideoConstraints {
        last_n: Some(-1),
        on_stage_sources: Some(vec!["A-v0".into()]),
        default_constraints: Some(VideoConstraints::max_height(180)),
        constraints: Some(constraints),
        assumed_bandwidth_bps: Some(10_000_000),
        ..Default::default()
    });
    assert_eq!(
        msg.to_json(),
        r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,"onStageSources":["A-v0"],"defaultConstraints":{"maxHeight":180},"constraints":{"A-v0":{"maxHeight":720}},"assumedBandwidthBps":10000000}"#
    );
    assert_eq!(BridgeMessage::parse(&msg.to_json()).unwrap(), msg);

    assert_eq!(
        BridgeMessage::SourceVideoTypeMessage(SourceVideoTypeMessage {
            source_name: "ab12cd34-v0".into(),
            video_type: VideoType::Camera,
            endpoint_id: None,
        })
        .to_json(),
        r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"ab12cd34-v0","videoType":"camera"}"#
    );
    assert_eq!(
        BridgeMessage::ClientHello(ClientHello {}).to_json(),
        r#"{"colibriClass":"ClientHello"}"#
    );
}

#[test]
fn endpoint_message_relayed_with_from() {
    let BridgeMessage::EndpointMessage(mut m) =
        BridgeMessage::parse(&fixture("colibri-ws/endpoint-message.json")).unwrap()
    else {
        panic!("wrong class")
    };
    m.from = Some("ab12cd34".into());
    let out: Value = serde_json::from_str(&BridgeMessage::EndpointMessage(m).to_json()).unwrap();
    assert_eq!(
        out,
        json!({
            "colibriClass": "EndpointMessage",
            "to": "to_value",
            "from": "ab12cd34",
            "other_field1": "other_value1",
            "other_field2": 97,
            "other_null": null
        })
    );

    let stats = BridgeMessage::parse(
        r#"{"colibriClass":"EndpointStats","from":"x","connectionQuality":87.5,"bitrate":{"upload":1}}"#,
    )
    .unwrap();
    let BridgeMessage::EndpointStats(s) = &stats else {
        panic!("wrong class")
    };
    assert_eq!(s.from.as_deref(), Some("x"));
    assert_eq!(s.extra["connectionQuality"], json!(87.5));
    assert_eq!(s.extra["bitrate"], json!({"upload":1}));
    assert_eq!(BridgeMessage::parse(&stats.to_json()).unwrap(), stats);

    let built = EndpointMessage::new("", json!({"type":"e2e-ping","id":1}));
    assert!(built.is_broadcast());
    assert_eq!(
        BridgeMessage::EndpointMessage(built).to_json(),
        r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"id":1,"type":"e2e-ping"}}"#
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn unknown_colibri_class() {
    assert_eq!(
        BridgeMessage::parse(r#"{"colibriClass":"AddReceiver","bridgeId":"b"}"#),
        Err(err(
            "unknown variant `AddReceiver`, expected one of `ServerHello`, `ClientHello`, \
             `ReceiverVideoConstraints`, `SourceVideoTypeMessage`, `EndpointMessage`, \
             `EndpointStats`, `ReceiverAudioSubscription`, `LastNChangedEvent`, \
             `DominantSpeakerEndpointChangeEvent`, `ForwardedSources`, `SenderSourceConstraints`, \
             `EndpointConnectivityStatusChangeEvent`, `ConnectionStats`, `VideoSourcesMap`, \
             `AudioSourcesMap`"
        ))
    );
    assert_eq!(
        BridgeMessage::parse(r#"{"lastN":3}"#),
        Err(err("missing field `colibriClass`"))
    );
}

#[test]
fn duplicate_keys() {
    assert_eq!(
        BridgeMessage::parse(r#"{"colibriClass":"LastNChangedEvent","lastN":1,"lastN":2}"#),
        Err(err("duplicate key `lastN`"))
    );
    assert_eq!(
        BridgeMessage::parse(r#"{"colibriClass":"ClientHello","colibriClass":"ServerHello"}"#),
        Err(err("duplicate key `colibriClass`"))
    );
    // Duplicates inside the opaque fields of a relayed message are caught too.
    assert_eq!(
        BridgeMessage::parse(
            r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"a":1,"a":2}}"#
        ),
        Err(err("duplicate key `a`"))
    );
}

#[test]
fn wrong_types_and_fields() {
    assert_eq!(
        BridgeMessage::parse(r#"{"colibriClass":"LastNChangedEvent","lastN":"3"}"#),
        Err(err("invalid type: string \"3\", expected i32"))
    );
    assert_eq!(
        BridgeMessage::parse(
            r#"{"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"e","active":true}"#
        ),
        Err(err("invalid type: boolean `true`, expected a string"))
    );
    assert_eq!(
        BridgeMessage::parse(
            r#"{"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"e","active":"yes"}"#
        ),
        Err(err(
            "invalid value: string \"yes\", expected \"true\" or \"false\""
        ))
    );
    assert_eq!(
        BridgeMessage::parse(
            r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"s","videoType":"screen"}"#
        ),
        Err(err(
            "unknown variant `screen`, expected one of `camera`, `desktop`, `desktop_high_fps`, \
             `disabled`, `none`"
        ))
    );
    assert_eq!(
        BridgeMessage::parse(r#"{"colibriClass":"SenderSourceConstraints","sourceName":"s"}"#),
        Err(err("missing field `maxHeight`"))
    );
    assert_eq!(
        BridgeMessage::parse(r#"{"colibriClass":"ClientHello","version":"1"}"#),
        Err(err("unknown field `version`, there are no fields"))
    );
    assert_eq!(
        BridgeMessage::parse(
            r#"{"colibriClass":"AudioSourcesMap","mappedSources":[{"source":"a","owner":null,"ssrc":-1}]}"#
        ),
        Err(err("invalid value: integer `-1`, expected u32"))
    );
    assert_eq!(
        BridgeMessage::parse(r#"{"colibriClass":"ClientHello"} x"#),
        Err(err("trailing characters"))
    );
    assert_eq!(
        BridgeMessage::parse(r#"["LastNChangedEvent", 3]"#),
        Err(err("invalid type: sequence, expected a JSON object"))
    );
    assert_eq!(
        BridgeMessage::parse("3"),
        Err(err("invalid type: integer `3`, expected a JSON object"))
    );
}

#[test]
fn constraints_ignore_unknown_fields_like_the_bridge() {
    let msg = BridgeMessage::parse(
        r#"{"colibriClass":"ReceiverVideoConstraints","defaultConstraints":{"maxHeight":360,"idealHeight":360}}"#,
    )
    .unwrap();
    assert_eq!(
        msg,
        BridgeMessage::ReceiverVideoConstraints(ReceiverVideoConstraints {
            default_constraints: Some(VideoConstraints::max_height(360)),
            ..Default::default()
        })
    );
}
