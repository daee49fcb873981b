//! Colibri statistics: `<stats xmlns="http://jitsi.org/protocol/colibri">` with
//! `<stat name value/>` children, as bridges and SIP gateways publish them in
//! their brewery presence.
//!
//! Sources: jitsi-xmpp-extensions `colibri/ColibriStatsExtension.java`; jitsi-videobridge
//! `doc/statistics.md`, `jvb/src/main/resources/reference.conf`; jigasi
//! `stats/Statistics.java`; jicofo `bridge/Bridge.kt`, `jigasi/JigasiDetector.kt`.
//!
//! Contract:
//! - [`ColibriStats`] keeps every `<stat>` in document order, known or not, so a
//!   stats element survives a round trip unchanged. Both `name` and `value` are
//!   required on each `<stat>`; children other than `<stat>` are ignored.
//! - Typed getters read the first stat of a name and return `Ok(None)` when it is
//!   absent, or [`Error::InvalidAttribute`] (element `stat`, attribute `value`) when
//!   its value does not parse. Booleans are `true`/`false` (also `1`/`0` on input).
//! - Typed setters replace the first stat of that name in place, or append one.

use std::str::FromStr;

use minidom::Element;

use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, req, BuilderExt};

/// Names of the statistics the focus reads to pick a bridge or gateway.
pub mod stat {
    pub const STRESS_LEVEL: &str = "stress_level";
    pub const AVERAGE_PARTICIPANT_STRESS: &str = "average_participant_stress";
    pub const CONFERENCES: &str = "conferences";
    pub const PARTICIPANTS: &str = "participants";
    pub const GRACEFUL_SHUTDOWN: &str = "graceful_shutdown";
    pub const SHUTTING_DOWN: &str = "shutting_down";
    pub const DRAIN: &str = "drain";
    pub const HEALTHY: &str = "healthy";
    pub const REGION: &str = "region";
    pub const RELAY_ID: &str = "relay_id";
    pub const VERSION: &str = "version";
    pub const RELEASE: &str = "release";
    pub const SUPPORTS_SIP: &str = "supports_sip";
    pub const SUPPORTS_TRANSCRIPTION: &str = "supports_transcription";
    pub const COLIBRI2: &str = "colibri2";
}

/// One `<stat name value/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub name: String,
    pub value: String,
}

impl Stat {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Stat {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl TryFrom<&Element> for Stat {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "stat", ns::COLIBRI)?;
        Ok(Stat {
            name: req(elem, "stat", "name")?.to_owned(),
            value: req(elem, "stat", "value")?.to_owned(),
        })
    }
}

impl TryFrom<Element> for Stat {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        Stat::try_from(&elem)
    }
}

impl From<Stat> for Element {
    fn from(s: Stat) -> Element {
        Element::builder("stat", ns::COLIBRI)
            .a("name", s.name)
            .a("value", s.value)
            .build()
    }
}

/// `<stats xmlns="http://jitsi.org/protocol/colibri">`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColibriStats {
    /// Every `<stat>`, in document order.
    pub stats: Vec<Stat>,
}

macro_rules! typed_stats {
    ($($(#[$m:meta])* $get:ident / $set:ident : $ty:ty = $name:expr;)+) => {
        $(
            $(#[$m])*
            pub fn $get(&self) -> Result<Option<$ty>> {
                self.parse_stat($name)
            }

            $(#[$m])*
            pub fn $set(&mut self, value: $ty) {
                self.set($name, value.to_string());
            }
        )+
    };
}

impl ColibriStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw value of the first stat called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.stats
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }

    /// Sets stat `name`, replacing the first one of that name in place or appending.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.stats.iter_mut().find(|s| s.name == name) {
            Some(s) => s.value = value,
            None => self.stats.push(Stat::new(name, value)),
        }
    }

    /// Removes every stat called `name`.
    pub fn remove(&mut self, name: &str) {
        self.stats.retain(|s| s.name != name);
    }

    /// The first stat called `name`, parsed. Booleans accept `true/false/1/0`.
    pub fn parse_stat<T: StatValue>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => T::parse_stat(v).map(Some).ok_or(Error::InvalidAttribute {
                element: "stat",
                attribute: "value",
                value: v.to_owned(),
            }),
        }
    }

    typed_stats! {
        /// Load of the bridge or gateway; a bridge counts as overloaded at >= 0.8.
        stress_level / set_stress_level: f64 = stat::STRESS_LEVEL;
        average_participant_stress / set_average_participant_stress: f64 = stat::AVERAGE_PARTICIPANT_STRESS;
        conferences / set_conferences: u64 = stat::CONFERENCES;
        participants / set_participants: u64 = stat::PARTICIPANTS;
        graceful_shutdown / set_graceful_shutdown: bool = stat::GRACEFUL_SHUTDOWN;
        shutting_down / set_shutting_down: bool = stat::SHUTTING_DOWN;
        drain / set_drain: bool = stat::DRAIN;
        healthy / set_healthy: bool = stat::HEALTHY;
        region / set_region: String = stat::REGION;
        relay_id / set_relay_id: String = stat::RELAY_ID;
        version / set_version: String = stat::VERSION;
        release / set_release: String = stat::RELEASE;
        supports_sip / set_supports_sip: bool = stat::SUPPORTS_SIP;
        supports_transcription / set_supports_transcription: bool = stat::SUPPORTS_TRANSCRIPTION;
        /// The bridge speaks Colibri2.
        colibri2 / set_colibri2: bool = stat::COLIBRI2;
    }
}

/// A type a stat value parses into.
pub trait StatValue: Sized {
    fn parse_stat(s: &str) -> Option<Self>;
}

impl StatValue for bool {
    fn parse_stat(s: &str) -> Option<Self> {
        match s.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }
}

impl StatValue for String {
    fn parse_stat(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
}

macro_rules! from_str_stat {
    ($($t:ty),+) => {
        $(impl StatValue for $t {
            fn parse_stat(s: &str) -> Option<Self> {
                <$t>::from_str(s.trim()).ok()
            }
        })+
    };
}

from_str_stat!(f64, u64, i64, u32);

impl TryFrom<&Element> for ColibriStats {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "stats", ns::COLIBRI)?;
        let stats = elem
            .children()
            .filter(|c| c.is("stat", ns::COLIBRI))
            .map(Stat::try_from)
            .collect::<Result<_>>()?;
        Ok(ColibriStats { stats })
    }
}

impl TryFrom<Element> for ColibriStats {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        ColibriStats::try_from(&elem)
    }
}

impl From<ColibriStats> for Element {
    fn from(s: ColibriStats) -> Element {
        Element::builder("stats", ns::COLIBRI)
            .append_all(s.stats.into_iter().map(Element::from))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_replace_in_place() {
        let mut s = ColibriStats::new();
        s.set_region("eu".into());
        s.set_stress_level(0.25);
        s.set_region("us".into());
        assert_eq!(
            s.stats,
            vec![Stat::new("region", "us"), Stat::new("stress_level", "0.25")]
        );
        s.remove("region");
        assert_eq!(s.region(), Ok(None));
    }

    #[test]
    fn bad_value_names_stat() {
        let mut s = ColibriStats::new();
        s.set("healthy", "yes");
        assert_eq!(
            s.healthy(),
            Err(Error::InvalidAttribute {
                element: "stat",
                attribute: "value",
                value: "yes".into()
            })
        );
    }

    fn xml(s: &str) -> Element {
        crate::parse_xml(s).expect("test XML parses")
    }

    fn parse<T: TryFrom<Element, Error = Error>>(s: &str) -> Result<T> {
        T::try_from(xml(s))
    }

    #[test]
    fn colibri_stats_errors() {
        assert_eq!(
            parse::<ColibriStats>(
                "<stats xmlns='http://jitsi.org/protocol/colibri'><stat name='a'/></stats>"
            ),
            Err(Error::MissingAttribute {
                element: "stat",
                attribute: "value",
            })
        );
        let s = parse::<ColibriStats>(
            "<stats xmlns='http://jitsi.org/protocol/colibri'><stat name='stress_level' value='high'/></stats>",
        )
        .unwrap();
        assert_eq!(
            s.stress_level(),
            Err(Error::InvalidAttribute {
                element: "stat",
                attribute: "value",
                value: "high".into(),
            })
        );
    }
}
