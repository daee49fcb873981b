//! JSON-encoded sources: `<json-message xmlns="http://jitsi.org/jitmeet">`
//! carrying Jicofo's compact source map instead of XEP-0339 elements (sent
//! to clients that advertise `http://jitsi.org/json-encoded-sources`).
//!
//! Format (Jicofo `EndpointSourceSet.compactJson`):
//! `{"sources":{<owner>:[[video sources],[video groups],[audio sources],[audio groups]?]}}`;
//! a source is `{"s":ssrc,"n":name?,"m":msid?,"c":cname?,"v":"d"?}` (`v`
//! only for desktop), a group is `["f"|"s", ssrc...]` (FID/SIM). Trailing
//! arrays may be missing; the fourth is written only when non-empty.
//!
//! Contract: owners keep their document order; serialization is compact
//! JSON with keys in the order above, so Jicofo's output round-trips byte
//! for byte. Other top-level keys are ignored. Malformed JSON is
//! [`Error::Json`].

use minidom::Element;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::ssma::{Semantics, Source, SourceParameter, SsrcGroup};
use crate::error::{Error, Result};
use crate::ns;
use crate::util::check;

/// One source in compact form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonSource {
    pub ssrc: u32,
    pub name: Option<String>,
    pub msid: Option<String>,
    pub cname: Option<String>,
    /// `d` for desktop; Jicofo omits it for cameras.
    pub video_type: Option<String>,
}

/// The sources of one owner (an endpoint id, or `jvb`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnerSources {
    pub owner: String,
    pub video: Vec<JsonSource>,
    pub video_groups: Vec<SsrcGroup>,
    pub audio: Vec<JsonSource>,
    pub audio_groups: Vec<SsrcGroup>,
}

/// The whole `{"sources":{...}}` message, owners in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonSources {
    pub owners: Vec<OwnerSources>,
}

fn json_err(reason: impl ToString) -> Error {
    Error::Json {
        what: "json-message sources",
        reason: reason.to_string(),
    }
}

/// The `sources` object, read entry by entry so the owners keep their order.
struct OwnerMap(Vec<(String, Vec<Value>)>);

impl<'de> Deserialize<'de> for OwnerMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OwnerMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of owner -> source lists")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OwnerMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Vec<Value>>()? {
                    out.push((k, v));
                }
                Ok(OwnerMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct RawMessage {
    sources: OwnerMap,
}

fn ssrc_of(v: &Value) -> Result<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| json_err(format!("invalid ssrc {v}")))
}

fn opt_str(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if super::xml_safe(s) => Ok(Some(s.clone())),
        Some(other) => Err(json_err(format!(
            "\"{key}\" is not a string without control characters: {other}"
        ))),
    }
}

fn parse_sources(v: Option<&Value>) -> Result<Vec<JsonSource>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v
        .as_array()
        .ok_or_else(|| json_err("source list is not an array"))?;
    list.iter()
        .map(|s| {
            let obj = s
                .as_object()
                .ok_or_else(|| json_err("source is not an object"))?;
            Ok(JsonSource {
                ssrc: ssrc_of(
                    obj.get("s")
                        .ok_or_else(|| json_err("source without \"s\""))?,
                )?,
                name: opt_str(obj, "n")?,
                msid: opt_str(obj, "m")?,
                cname: opt_str(obj, "c")?,
                video_type: opt_str(obj, "v")?,
            })
        })
        .collect()
}

fn parse_groups(v: Option<&Value>) -> Result<Vec<SsrcGroup>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v
        .as_array()
        .ok_or_else(|| json_err("group list is not an array"))?;
    list.iter()
        .map(|g| {
            let items = g
                .as_array()
                .ok_or_else(|| json_err("group is not an array"))?;
            let (first, rest) = items.split_first().ok_or_else(|| json_err("empty group"))?;
            let semantics = match first.as_str() {
                Some("f") => Semantics::Fid,
                Some("s") => Semantics::Sim,
                Some(other) if super::xml_safe(other) => Semantics::parse(other),
                _ => return Err(json_err("group semantics is not a plain string")),
            };
            Ok(SsrcGroup {
                semantics,
                ssrcs: rest.iter().map(ssrc_of).collect::<Result<_>>()?,
            })
        })
        .collect()
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_sources(out: &mut String, sources: &[JsonSource]) {
    out.push('[');
    for (i, s) in sources.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{{\"s\":{}", s.ssrc));
        for (key, v) in [
            ("n", &s.name),
            ("m", &s.msid),
            ("c", &s.cname),
            ("v", &s.video_type),
        ] {
            if let Some(v) = v {
                out.push_str(&format!(",\"{key}\":"));
                push_json_str(out, v);
            }
        }
        out.push('}');
    }
    out.push(']');
}

fn write_groups(out: &mut String, groups: &[SsrcGroup]) {
    out.push('[');
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        match &g.semantics {
            Semantics::Fid => out.push_str("\"f\""),
            Semantics::Sim => out.push_str("\"s\""),
            other => push_json_str(out, other.as_str()),
        }
        for ssrc in &g.ssrcs {
            out.push_str(&format!(",{ssrc}"));
        }
        out.push(']');
    }
    out.push(']');
}

impl JsonSources {
    /// Parses the JSON text of a `<json-message>`.
    pub fn parse_json(text: &str) -> Result<Self> {
        let raw: RawMessage = serde_json::from_str(text).map_err(json_err)?;
        let owners = raw
            .sources
            .0
            .into_iter()
            .map(|(owner, lists)| {
                if !super::xml_safe(&owner) {
                    return Err(json_err(format!("owner {owner:?} has a control character")));
                }
                Ok(OwnerSources {
                    owner,
                    video: parse_sources(lists.first())?,
                    video_groups: parse_groups(lists.get(1))?,
                    audio: parse_sources(lists.get(2))?,
                    audio_groups: parse_groups(lists.get(3))?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(JsonSources { owners })
    }

    /// Compact JSON, as Jicofo writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"sources\":{");
        for (i, o) in self.owners.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, &o.owner);
            out.push_str(":[");
            write_sources(&mut out, &o.video);
            out.push(',');
            write_groups(&mut out, &o.video_groups);
            out.push(',');
            write_sources(&mut out, &o.audio);
            if !o.audio_groups.is_empty() {
                out.push(',');
                write_groups(&mut out, &o.audio_groups);
            }
            out.push(']');
        }
        out.push_str("}}");
        out
    }

    /// Total number of sources, audio and video.
    pub fn source_count(&self) -> usize {
        self.owners
            .iter()
            .map(|o| o.video.len() + o.audio.len())
            .sum()
    }
}

impl JsonSource {
    /// The XEP-0339 form, owned by `owner`. `v:"d"` becomes
    /// `videoType="desktop"`; msid and cname become parameters, in that order.
    pub fn to_source(&self, owner: &str) -> Source {
        let mut parameters = Vec::new();
        if let Some(m) = &self.msid {
            parameters.push(SourceParameter::new("msid", m.as_str()));
        }
        if let Some(c) = &self.cname {
            parameters.push(SourceParameter::new("cname", c.as_str()));
        }
        Source {
            ssrc: self.ssrc,
            name: self.name.clone(),
            video_type: self.video_type.as_deref().map(|v| match v {
                "d" => "desktop".to_owned(),
                other => other.to_owned(),
            }),
            owner: Some(owner.to_owned()),
            owner_form: Default::default(),
            parameters,
        }
    }

    /// The compact form of a source; only a `desktop` video type is kept
    /// (as `d`), like Jicofo does.
    pub fn from_source(s: &Source) -> Self {
        JsonSource {
            ssrc: s.ssrc,
            name: s.name.clone(),
            msid: s.parameter("msid").map(str::to_owned),
            cname: s.parameter("cname").map(str::to_owned),
            video_type: (s.video_type.as_deref() == Some("desktop")).then(|| "d".to_owned()),
        }
    }
}

impl OwnerSources {
    /// Video sources as XEP-0339 sources with `owner` set.
    pub fn video_sources(&self) -> Vec<Source> {
        self.video
            .iter()
            .map(|s| s.to_source(&self.owner))
            .collect()
    }

    /// Audio sources as XEP-0339 sources with `owner` set.
    pub fn audio_sources(&self) -> Vec<Source> {
        self.audio
            .iter()
            .map(|s| s.to_source(&self.owner))
            .collect()
    }

    /// Builds the compact form from XEP-0339 sources and groups.
    pub fn from_sources(
        owner: impl Into<String>,
        video: &[Source],
        video_groups: &[SsrcGroup],
        audio: &[Source],
        audio_groups: &[SsrcGroup],
    ) -> Self {
        OwnerSources {
            owner: owner.into(),
            video: video.iter().map(JsonSource::from_source).collect(),
            video_groups: video_groups.to_vec(),
            audio: audio.iter().map(JsonSource::from_source).collect(),
            audio_groups: audio_groups.to_vec(),
        }
    }
}

impl TryFrom<&Element> for JsonSources {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "json-message", ns::JITMEET)?;
        JsonSources::parse_json(&elem.text())
    }
}

impl TryFrom<Element> for JsonSources {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        JsonSources::try_from(&elem)
    }
}

impl From<JsonSources> for Element {
    fn from(j: JsonSources) -> Element {
        Element::builder("json-message", ns::JITMEET)
            .append(j.to_json())
            .build()
    }
}
