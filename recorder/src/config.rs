//! The `recorder` config file: defaults in `Default`, then the file, then
//! the environment (`RECORDER_XMPP_PASSWORD`, `RECORDER_MEETING_PASSWORD`),
//! then [`Validate`] names any bad key.

use serde::{Deserialize, Serialize};
use service::{ConfigError, LogConfig, Validate};
use xmpp_session::brewery::BreweryConfig;
use xmpp_session::XmppConfig;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub xmpp: XmppConfig,
    pub brewery: BreweryConfig,
    pub meeting: MeetingConfig,
    pub recording: RecordingConfig,
    pub stream: StreamConfig,
    pub storage: crate::upload::Destination,
    pub http: HttpConfig,
    pub log: LogConfig,
}

/// `[meeting]`: how the recorder joins meetings, hidden.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MeetingConfig {
    /// The hidden account; default `<xmpp.jid's user>@recorder.<domain>`.
    pub jid: String,
    /// Its password (or `RECORDER_MEETING_PASSWORD`).
    pub password: String,
    /// The focus's full JID; default `focus@auth.<domain>/focus`.
    pub focus: String,
    /// The local address for media; default: the one that routes to the SFU.
    pub bind_ip: String,
}

/// The recording's picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LayoutChoice {
    /// The active speaker large, a strip of thumbnails.
    #[default]
    Speaker,
    /// Up to 3x3 equal tiles.
    Grid,
}

/// `[recording]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Recordings at once; presence says busy when this many run.
    pub capacity: usize,
    pub layout: LayoutChoice,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Record audio only (no video decoded at all).
    pub audio_only: bool,
    /// Stop when nobody but services is in the room this long.
    pub empty_timeout_s: u64,
    /// Stop when no media has arrived this long.
    pub no_media_timeout_s: u64,
    /// Stop at this length.
    pub max_length_s: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            capacity: 1,
            layout: LayoutChoice::Speaker,
            width: 1280,
            height: 720,
            fps: 30,
            audio_only: false,
            empty_timeout_s: 30,
            no_media_timeout_s: 180,
            max_length_s: 6 * 3600,
        }
    }
}

/// `[stream]`: live streaming.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// RTMP(S) ingest hosts a stream may go to (`*.example.com` for
    /// subdomains).
    pub allowed_hosts: Vec<String>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            allowed_hosts: vec!["a.rtmp.youtube.com".into(), "*.rtmp.youtube.com".into()],
        }
    }
}

/// `[http]`: `/health` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Empty: no HTTP server.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8090".into(),
        }
    }
}

impl Config {
    /// Defaults that derive from the domain, and passwords from the
    /// environment.
    pub fn apply_env(&mut self) {
        let domain = self.xmpp.domain.clone();
        if self.xmpp.jid.is_empty() {
            self.xmpp.jid = format!("recorder@auth.{domain}");
        }
        if let Ok(p) = std::env::var("RECORDER_XMPP_PASSWORD") {
            self.xmpp.password = p;
        }
        if self.meeting.jid.is_empty() {
            let user = self.xmpp.jid.split('@').next().unwrap_or("recorder");
            self.meeting.jid = format!("{user}@recorder.{domain}");
        }
        if let Ok(p) = std::env::var("RECORDER_MEETING_PASSWORD") {
            self.meeting.password = p;
        }
        if self.meeting.focus.is_empty() {
            self.meeting.focus = format!("focus@auth.{domain}/focus");
        }
    }

    /// The XMPP settings of the hidden meeting account.
    pub fn meeting_xmpp(&self) -> xmpp_session::XmppConfig {
        XmppConfig {
            jid: self.meeting.jid.clone(),
            password: self.meeting.password.clone(),
            resource: String::new(),
            ..self.xmpp.clone()
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.xmpp
            .validate()
            .map_err(|e| ConfigError::invalid(format!("xmpp.{}", e.key), e.reason))?;
        self.brewery
            .room_jid("recorders", &self.xmpp.domain)
            .map_err(|e| ConfigError::invalid(e.key, e.reason))?;
        if !self.meeting.jid.is_empty() && jid::BareJid::new(&self.meeting.jid).is_err() {
            return Err(ConfigError::invalid("meeting.jid", "not a JID"));
        }
        if !self.meeting.focus.is_empty() && jid::FullJid::new(&self.meeting.focus).is_err() {
            return Err(ConfigError::invalid(
                "meeting.focus",
                "not a full JID (user@host/resource)",
            ));
        }
        if !self.meeting.bind_ip.is_empty()
            && self.meeting.bind_ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ConfigError::invalid("meeting.bind_ip", "not an IP address"));
        }
        let r = &self.recording;
        if !(1..=64).contains(&r.capacity) {
            return Err(ConfigError::invalid(
                "recording.capacity",
                "expected 1 to 64",
            ));
        }
        if !matches!((r.width, r.height), (1280, 720) | (1920, 1080)) {
            return Err(ConfigError::invalid(
                "recording.width",
                "width x height must be 1280x720 or 1920x1080",
            ));
        }
        if !(10..=60).contains(&r.fps) {
            return Err(ConfigError::invalid("recording.fps", "expected 10 to 60"));
        }
        for (key, v) in [
            ("recording.empty_timeout_s", r.empty_timeout_s),
            ("recording.no_media_timeout_s", r.no_media_timeout_s),
            ("recording.max_length_s", r.max_length_s),
        ] {
            if v == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if self
            .stream
            .allowed_hosts
            .iter()
            .any(|h| h.trim().is_empty())
        {
            return Err(ConfigError::invalid(
                "stream.allowed_hosts",
                "an empty host",
            ));
        }
        if !self.http.listen.is_empty() && self.http.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::invalid("http.listen", "expected host:port"));
        }
        self.storage.validate()?;
        self.log.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        let mut c = Config::default();
        c.xmpp.domain = "meet.test".into();
        c.xmpp.password = "x".into();
        c.apply_env();
        c
    }

    #[test]
    fn defaults_derive_from_the_domain() {
        let c = valid();
        assert_eq!(c.meeting.jid, "recorder@recorder.meet.test");
        assert_eq!(c.meeting.focus, "focus@auth.meet.test/focus");
        assert_eq!(c.recording.empty_timeout_s, 30);
        assert_eq!(c.recording.no_media_timeout_s, 180);
        c.validate().unwrap();
    }

    #[test]
    fn bad_keys_are_named() {
        let mut c = valid();
        c.recording.width = 800;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("recording.width"));
        let mut c = valid();
        c.recording.capacity = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("recording.capacity"));
        let mut c = valid();
        c.meeting.bind_ip = "nowhere".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("meeting.bind_ip"));
        let text = "[recording]\nlayuot = \"grid\"\n";
        assert!(toml::from_str::<Config>(text)
            .unwrap_err()
            .to_string()
            .contains("layuot"));
    }
}
