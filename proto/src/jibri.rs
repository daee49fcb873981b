//! Recorder (Jibri) coordination: the `<jibri>` IQ, the brewery `<jibri-status>`,
//! and the `<jibri-recording-status>` / `<jibri-sip-call-state>` that Jicofo shows
//! to clients.
//!
//! Sources: jitsi-xmpp-extensions `jibri/JibriIq.java`, `JibriIqProvider.java`,
//! `JibriStatusPacketExt.java`, `JibriBusyStatusPacketExt.java`,
//! `RecordingStatus.java`, `SipCallState.java`, `health/HealthStatusPacketExt.java`;
//! jibri `api/xmpp/XmppApi.kt`, `jibri-spec.xml` (legacy presence); jicofo
//! `jibri/JibriRecorder.kt`.
//!
//! Contract:
//! - Every `<jibri>` attribute is optional; fixed value sets are enums. An unknown
//!   `action` is [`Error::UnknownAction`] (answer `feature-not-implemented`); any other
//!   bad value is [`Error::InvalidAttribute`] (answer `bad-request`). Enum values are
//!   matched case-insensitively, as Jitsi's `valueOf(toUpperCase())` does, and
//!   written in lower case.
//! - `<jibri-status>` accepts the current form (`<busy-status>` and `<health-status>`
//!   children) and the 2016 form (`status` on `<jibri-status>` itself), and writes
//!   back the form it was read in.
//! - `<jibri-recording-status>` keeps a Jicofo-attached `<error>` child verbatim
//!   (Smack writes it without a namespace of its own, so it inherits the Jibri one).

use std::str::FromStr;

use jid::{BareJid, Jid};
use minidom::Element;

use crate::error::{Error, Result};
use crate::focus::room_jid;
use crate::ns;
use crate::util::{check, opt, opt_bool, opt_parse, req_parse, BuilderExt};

/// A closed set of attribute values, parsed case-insensitively, written in lower case.
macro_rules! attr_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
        }

        impl $name {
            /// The value as written on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = ();

            fn from_str(s: &str) -> std::result::Result<Self, ()> {
                $(if s.eq_ignore_ascii_case($text) {
                    return Ok($name::$variant);
                })+
                Err(())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

attr_enum!(
    /// `action` of a `<jibri>` IQ.
    Action {
        Start = "start",
        Stop = "stop",
    }
);

attr_enum!(
    /// `status` of a `<jibri>` IQ or `<jibri-recording-status>`, `state` of
    /// `<jibri-sip-call-state>`.
    Status {
        On = "on",
        Off = "off",
        Pending = "pending",
    }
);

attr_enum!(
    /// `recording_mode`: a file recording or a live stream.
    RecordingMode {
        File = "file",
        Stream = "stream",
    }
);

attr_enum!(
    /// `failure_reason`.
    FailureReason {
        Busy = "busy",
        Error = "error",
    }
);

attr_enum!(
    /// `status` of `<busy-status>` (or of a legacy `<jibri-status>`).
    BusyStatus {
        Idle = "idle",
        Busy = "busy",
    }
);

attr_enum!(
    /// `status` of `<health-status xmlns="http://jitsi.org/protocol/health">`.
    Health {
        Healthy = "healthy",
        Unhealthy = "unhealthy",
    }
);

/// The service a start request asks for, as Jicofo and Jibri decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JibriService {
    /// `sipaddress` is present: the SIP-video gateway.
    Sip,
    /// `recording_mode="file"`.
    File,
    /// `recording_mode="stream"`, or no mode (Jicofo then requires a `streamid`).
    Stream,
}

/// `<jibri xmlns="http://jitsi.org/protocol/jibri"/>`: an empty element whose
/// attributes are all optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JibriIq {
    pub action: Option<Action>,
    pub status: Option<Status>,
    pub recording_mode: Option<RecordingMode>,
    /// The conference MUC room (focus to Jibri).
    pub room: Option<BareJid>,
    /// RTMP(S) URL or YouTube key (`streamid`).
    pub stream_id: Option<String>,
    /// `you_tube_broadcast_id`.
    pub youtube_broadcast_id: Option<String>,
    /// SIP-gateway mode: the address to call (`sipaddress`).
    pub sip_address: Option<String>,
    /// SIP-gateway mode: the display name (`displayname`).
    pub display_name: Option<String>,
    /// `session_id`.
    pub session_id: Option<String>,
    pub failure_reason: Option<FailureReason>,
    pub should_retry: Option<bool>,
    /// A JSON string, e.g. `{"file_recording_metadata":{..}}` (`app_data`).
    pub app_data: Option<String>,
    pub rtcstats_enabled: Option<bool>,
}

impl JibriIq {
    /// A start request for a recording in `mode`.
    pub fn start(mode: RecordingMode) -> Self {
        JibriIq {
            action: Some(Action::Start),
            recording_mode: Some(mode),
            ..Default::default()
        }
    }

    /// A stop request for `session_id`.
    pub fn stop(session_id: impl Into<String>) -> Self {
        JibriIq {
            action: Some(Action::Stop),
            session_id: Some(session_id.into()),
            ..Default::default()
        }
    }

    /// A status report or reply carrying `status`.
    pub fn status(status: Status) -> Self {
        JibriIq {
            status: Some(status),
            ..Default::default()
        }
    }

    /// A failure report: `status=off failure_reason=.. should_retry=..`.
    pub fn failure(reason: FailureReason, should_retry: bool) -> Self {
        JibriIq {
            status: Some(Status::Off),
            failure_reason: Some(reason),
            should_retry: Some(should_retry),
            ..Default::default()
        }
    }

    /// Which service a start request asks for: `sipaddress` wins, then
    /// `recording_mode`; without a mode Jicofo treats the request as a stream.
    pub fn service(&self) -> JibriService {
        if self.sip_address.is_some() {
            JibriService::Sip
        } else if self.recording_mode == Some(RecordingMode::File) {
            JibriService::File
        } else {
            JibriService::Stream
        }
    }

    /// `app_data` parsed as JSON, if present.
    pub fn app_data_json(&self) -> Result<Option<serde_json::Value>> {
        match &self.app_data {
            None => Ok(None),
            Some(s) => serde_json::from_str(s).map(Some).map_err(|e| Error::Json {
                what: "jibri app_data",
                reason: e.to_string(),
            }),
        }
    }
}

impl TryFrom<&Element> for JibriIq {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "jibri";
        check(elem, E, ns::JIBRI)?;
        let action = match elem.attr("action") {
            None => None,
            Some(a) => Some(a.parse().map_err(|_| Error::UnknownAction {
                element: E,
                action: a.to_owned(),
            })?),
        };
        let room = match elem.attr("room") {
            Some(v) => Some(room_jid(v, E, "room")?),
            None => None,
        };
        Ok(JibriIq {
            action,
            status: opt_parse(elem, E, "status")?,
            recording_mode: opt_parse(elem, E, "recording_mode")?,
            room,
            stream_id: opt(elem, "streamid"),
            youtube_broadcast_id: opt(elem, "you_tube_broadcast_id"),
            sip_address: opt(elem, "sipaddress"),
            display_name: opt(elem, "displayname"),
            session_id: opt(elem, "session_id"),
            failure_reason: opt_parse(elem, E, "failure_reason")?,
            should_retry: opt_bool(elem, E, "should_retry")?,
            app_data: opt(elem, "app_data"),
            rtcstats_enabled: opt_bool(elem, E, "rtcstats_enabled")?,
        })
    }
}

impl TryFrom<Element> for JibriIq {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        JibriIq::try_from(&elem)
    }
}

impl From<JibriIq> for Element {
    fn from(j: JibriIq) -> Element {
        Element::builder("jibri", ns::JIBRI)
            .a("action", j.action.map(Action::as_str))
            .a("status", j.status.map(Status::as_str))
            .a(
                "recording_mode",
                j.recording_mode.map(RecordingMode::as_str),
            )
            .a("room", j.room.map(|r| r.to_string()))
            .a("streamid", j.stream_id)
            .a("you_tube_broadcast_id", j.youtube_broadcast_id)
            .a("displayname", j.display_name)
            .a("sipaddress", j.sip_address)
            .a("session_id", j.session_id)
            .a(
                "failure_reason",
                j.failure_reason.map(FailureReason::as_str),
            )
            .a("should_retry", j.should_retry.map(|b| b.to_string()))
            .a("app_data", j.app_data)
            .a(
                "rtcstats_enabled",
                j.rtcstats_enabled.map(|b| b.to_string()),
            )
            .build()
    }
}

/// `<jibri-status>` in a Jibri's brewery presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JibriStatus {
    /// From `<busy-status status>` (or the legacy `status` attribute).
    pub busy: Option<BusyStatus>,
    /// From `<health-status status>`.
    pub health: Option<Health>,
    /// Read from (and written back in) the 2016 form `<jibri-status status="idle"/>`.
    pub legacy: bool,
}

impl JibriStatus {
    /// The current form with both children.
    pub fn new(busy: BusyStatus, health: Health) -> Self {
        JibriStatus {
            busy: Some(busy),
            health: Some(health),
            legacy: false,
        }
    }

    /// Healthy and idle. The legacy form has no health report and counts as
    /// healthy; a current-form status without `<health-status>` does not.
    pub fn is_available(&self) -> bool {
        let healthy = match self.health {
            Some(h) => h == Health::Healthy,
            None => self.legacy,
        };
        healthy && self.busy == Some(BusyStatus::Idle)
    }
}

impl TryFrom<&Element> for JibriStatus {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "jibri-status";
        check(elem, E, ns::JIBRI)?;
        let mut busy = None;
        let mut health = None;
        for child in elem.children() {
            if child.is("busy-status", ns::JIBRI) {
                busy = Some(req_parse(child, "busy-status", "status")?);
            } else if child.is("health-status", ns::HEALTH) {
                health = Some(req_parse(child, "health-status", "status")?);
            }
        }
        let mut legacy = false;
        if busy.is_none() {
            if let Some(b) = opt_parse(elem, E, "status")? {
                busy = Some(b);
                legacy = true;
            }
        }
        Ok(JibriStatus {
            busy,
            health,
            legacy,
        })
    }
}

impl TryFrom<Element> for JibriStatus {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        JibriStatus::try_from(&elem)
    }
}

impl From<JibriStatus> for Element {
    fn from(s: JibriStatus) -> Element {
        let mut b = Element::builder("jibri-status", ns::JIBRI);
        if s.legacy {
            b = b.a("status", s.busy.map(BusyStatus::as_str));
        } else if let Some(busy) = s.busy {
            b = b.append(
                Element::builder("busy-status", ns::JIBRI)
                    .a("status", busy.as_str())
                    .build(),
            );
        }
        if let Some(h) = s.health {
            b = b.append(
                Element::builder("health-status", ns::HEALTH)
                    .a("status", h.as_str())
                    .build(),
            );
        }
        b.build()
    }
}

/// `<jibri-recording-status>` that Jicofo puts in its conference presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStatus {
    pub status: Status,
    pub session_id: Option<String>,
    pub recording_mode: Option<RecordingMode>,
    /// The occupant who asked for the recording.
    pub initiator: Option<Jid>,
    pub failure_reason: Option<FailureReason>,
    /// A stanza `<error>` Jicofo attached, kept as received.
    pub error: Option<Element>,
}

impl RecordingStatus {
    pub fn new(status: Status) -> Self {
        RecordingStatus {
            status,
            session_id: None,
            recording_mode: None,
            initiator: None,
            failure_reason: None,
            error: None,
        }
    }
}

impl TryFrom<&Element> for RecordingStatus {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "jibri-recording-status";
        check(elem, E, ns::JIBRI)?;
        Ok(RecordingStatus {
            status: req_parse(elem, E, "status")?,
            session_id: opt(elem, "session_id"),
            recording_mode: opt_parse(elem, E, "recording_mode")?,
            initiator: opt_parse(elem, E, "initiator")?,
            failure_reason: opt_parse(elem, E, "failure_reason")?,
            error: elem.children().find(|c| c.name() == "error").cloned(),
        })
    }
}

impl TryFrom<Element> for RecordingStatus {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        RecordingStatus::try_from(&elem)
    }
}

impl From<RecordingStatus> for Element {
    fn from(r: RecordingStatus) -> Element {
        let mut b = Element::builder("jibri-recording-status", ns::JIBRI)
            .a("status", r.status.as_str())
            .a("session_id", r.session_id)
            .a(
                "recording_mode",
                r.recording_mode.map(RecordingMode::as_str),
            )
            .a("initiator", r.initiator.map(|j| j.to_string()))
            .a(
                "failure_reason",
                r.failure_reason.map(FailureReason::as_str),
            );
        if let Some(e) = r.error {
            b = b.append(e);
        }
        b.build()
    }
}

/// `<jibri-sip-call-state xmlns="http://jitsi.org/protocol/jibri/call_state">`: the
/// SIP-Jibri counterpart of [`RecordingStatus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCallState {
    pub state: Status,
    pub sip_address: Option<String>,
    pub session_id: Option<String>,
    pub failure_reason: Option<FailureReason>,
}

impl TryFrom<&Element> for SipCallState {
    type Error = Error;

    fn try_from(elem: &Element) -> Result<Self> {
        const E: &str = "jibri-sip-call-state";
        check(elem, E, ns::JIBRI_CALL_STATE)?;
        Ok(SipCallState {
            state: req_parse(elem, E, "state")?,
            sip_address: opt(elem, "sipaddress"),
            session_id: opt(elem, "session_id"),
            failure_reason: opt_parse(elem, E, "failure_reason")?,
        })
    }
}

impl TryFrom<Element> for SipCallState {
    type Error = Error;

    fn try_from(elem: Element) -> Result<Self> {
        SipCallState::try_from(&elem)
    }
}

impl From<SipCallState> for Element {
    fn from(s: SipCallState) -> Element {
        Element::builder("jibri-sip-call-state", ns::JIBRI_CALL_STATE)
            .a("state", s.state.as_str())
            .a("sipaddress", s.sip_address)
            .a("session_id", s.session_id)
            .a(
                "failure_reason",
                s.failure_reason.map(FailureReason::as_str),
            )
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_are_case_insensitive_and_written_lower() {
        assert_eq!("STOP".parse::<Action>(), Ok(Action::Stop));
        assert_eq!("Pending".parse::<Status>(), Ok(Status::Pending));
        assert_eq!(Status::Pending.to_string(), "pending");
        assert_eq!("undefined".parse::<RecordingMode>(), Err(()));
    }

    #[test]
    fn service_follows_jicofo() {
        let mut iq = JibriIq::start(RecordingMode::File);
        assert_eq!(iq.service(), JibriService::File);
        iq.recording_mode = None;
        assert_eq!(iq.service(), JibriService::Stream);
        iq.sip_address = Some("sip:a@b".into());
        assert_eq!(iq.service(), JibriService::Sip);
    }

    #[test]
    fn availability() {
        assert!(JibriStatus::new(BusyStatus::Idle, Health::Healthy).is_available());
        assert!(!JibriStatus::new(BusyStatus::Busy, Health::Healthy).is_available());
        assert!(!JibriStatus::new(BusyStatus::Idle, Health::Unhealthy).is_available());
        let no_health = JibriStatus {
            busy: Some(BusyStatus::Idle),
            health: None,
            legacy: false,
        };
        assert!(!no_health.is_available());
        let legacy = JibriStatus {
            legacy: true,
            ..no_health
        };
        assert!(legacy.is_available());
    }

    fn xml(s: &str) -> Element {
        crate::parse_xml(s).expect("test XML parses")
    }

    fn parse<T: TryFrom<Element, Error = Error>>(s: &str) -> Result<T> {
        T::try_from(xml(s))
    }

    #[test]
    fn jibri_errors() {
        assert_eq!(
            parse::<JibriIq>("<jibri xmlns='http://jitsi.org/protocol/jibri' action='pause'/>"),
            Err(Error::UnknownAction {
                element: "jibri",
                action: "pause".into(),
            })
        );
        assert_eq!(
            parse::<JibriIq>("<jibri xmlns='http://jitsi.org/protocol/jibri' status='maybe'/>"),
            Err(Error::InvalidAttribute {
                element: "jibri",
                attribute: "status",
                value: "maybe".into(),
            })
        );
        assert_eq!(
            parse::<JibriIq>(
                "<jibri xmlns='http://jitsi.org/protocol/jibri' recording_mode='tape'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "jibri",
                attribute: "recording_mode",
                value: "tape".into(),
            })
        );
        assert_eq!(
            parse::<JibriIq>(
                "<jibri xmlns='http://jitsi.org/protocol/jibri' failure_reason='oops'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "jibri",
                attribute: "failure_reason",
                value: "oops".into(),
            })
        );
        assert_eq!(
            parse::<JibriIq>(
                "<jibri xmlns='http://jitsi.org/protocol/jibri' should_retry='sometimes'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "jibri",
                attribute: "should_retry",
                value: "sometimes".into(),
            })
        );
        assert_eq!(
            parse::<JibriIq>(
                "<jibri xmlns='http://jitsi.org/protocol/jibri' room='conference.example.com'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "jibri",
                attribute: "room",
                value: "conference.example.com".into(),
            })
        );
        assert_eq!(
            parse::<JibriIq>(
                "<jibri xmlns='http://jitsi.org/protocol/jibri-other' action='start'/>"
            ),
            Err(Error::WrongElement {
                expected: "jibri",
                expected_ns: ns::JIBRI,
                found: "jibri".into(),
                found_ns: "http://jitsi.org/protocol/jibri-other".into(),
            })
        );
        assert_eq!(
            parse::<JibriStatus>(
                "<jibri-status xmlns='http://jitsi.org/protocol/jibri'><busy-status/></jibri-status>"
            ),
            Err(Error::MissingAttribute {
                element: "busy-status",
                attribute: "status",
            })
        );
        assert_eq!(
            parse::<JibriStatus>(
                "<jibri-status xmlns='http://jitsi.org/protocol/jibri'>\
                 <health-status xmlns='http://jitsi.org/protocol/health' status='sick'/></jibri-status>"
            ),
            Err(Error::InvalidAttribute {
                element: "health-status",
                attribute: "status",
                value: "sick".into(),
            })
        );
        assert_eq!(
            parse::<JibriStatus>(
                "<jibri-status xmlns='http://jitsi.org/protocol/jibri' status='off'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "jibri-status",
                attribute: "status",
                value: "off".into(),
            })
        );
        assert_eq!(
            parse::<RecordingStatus>(
                "<jibri-recording-status xmlns='http://jitsi.org/protocol/jibri'/>"
            ),
            Err(Error::MissingAttribute {
                element: "jibri-recording-status",
                attribute: "status",
            })
        );
        assert_eq!(
            parse::<SipCallState>(
                "<jibri-sip-call-state xmlns='http://jitsi.org/protocol/jibri/call_state' state='ringing'/>"
            ),
            Err(Error::InvalidAttribute {
                element: "jibri-sip-call-state",
                attribute: "state",
                value: "ringing".into(),
            })
        );
    }
}
