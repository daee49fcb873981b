//! The `sfu` config file. Defaults live in `Default`; the file overrides them;
//! `SFU_XMPP_PASSWORD` overrides the password; then [`Validate`] names any bad key.

use serde::{Deserialize, Serialize};
use service::{ConfigError, LogConfig, Validate};
use xmpp_session::XmppConfig;

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub xmpp: XmppConfig,
    pub focus: FocusConfig,
    pub http: HttpConfig,
    pub media: MediaConfig,
    pub dial_in: DialInConfig,
    pub log: LogConfig,
}

/// `[dial_in]`: joining a meeting by phone through the SIP gateway. The
/// conference mapper (`/conference-mapper`, [`crate::dial_in`]) gives each
/// room a PIN whether or not numbers are configured (a gateway may take PINs
/// without numbers being advertised); the numbers are what the meeting page
/// shows (`dialIn` in `/config.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialInConfig {
    /// Phone numbers to call, as displayed (`"+1 555 0100"`). Empty: the
    /// page offers no dial-in.
    pub numbers: Vec<String>,
    /// Digits of a room's PIN, 4 to 10.
    pub pin_digits: u32,
}

/// The PIN lengths `dial_in.pin_digits` accepts.
pub const PIN_DIGITS: std::ops::RangeInclusive<u32> = 4..=10;

impl Default for DialInConfig {
    fn default() -> Self {
        DialInConfig {
            numbers: vec![],
            pin_digits: 6,
        }
    }
}

/// `[media]`: the media plane.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Run the media plane (off: the focus only signals).
    pub enabled: bool,
    /// UDP address of the media port, `ip:port` (`:0` picks a free port).
    pub bind: String,
    /// Address announced in ICE candidates when it differs from the bound
    /// one (a server behind NAT, as on AWS). Empty: the bound address.
    pub advertise: String,
    /// Audio streams a participant receives at once (its receive slots).
    pub audio_slots: usize,
    /// Video streams a participant receives at once (its receive slots).
    pub video_slots: usize,
    /// Participants at which the published stress level reaches 1.0.
    pub capacity: u64,
    /// Estimate each receiver's bandwidth from transport-cc feedback and
    /// choose simulcast layers within it (off: only the receivers'
    /// constraints and lastN choose).
    pub bandwidth_estimation: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            enabled: true,
            bind: "127.0.0.1:10000".into(),
            advertise: String::new(),
            audio_slots: 3,
            video_slots: 9,
            capacity: 500,
            bandwidth_estimation: false,
        }
    }
}

/// `[http]`: health, metrics, the meeting page's files and the page's way
/// to Prosody (XMPP over WebSocket).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on, `host:port`.
    pub listen: String,
    /// How browsers reach this server (`https://meet.example`); the bridge
    /// channel's URLs are built from it. Empty: `http://<listen>`.
    pub public_url: String,
    /// Prosody's XMPP-over-WebSocket URL (`ws://host:port/path`) that
    /// `/xmpp-websocket` relays to. Empty: `ws://<xmpp.server's host>:5280/xmpp-websocket`
    /// (Prosody's default HTTP port on the XMPP server's host).
    pub xmpp_websocket: String,
    /// Folder of the meeting page's static files, relative to the working
    /// directory. Served when it holds an `index.html` (checked at start);
    /// otherwise `/` is a status page. Empty: no page.
    pub web_root: String,
}

/// Prosody's default HTTP port, where its WebSocket endpoint listens.
pub const PROSODY_HTTP_PORT: u16 = 5280;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            xmpp_websocket: String::new(),
            web_root: "web/dist".into(),
        }
    }
}

/// `[focus]`: the conference focus.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FocusConfig {
    /// The MUC service hosting meetings. Empty: `conference.<xmpp.domain>`.
    pub muc_service: String,
    /// The focus's nick in every room.
    pub nick: String,
    /// Seconds a room the focus created may stay without participants
    /// before the focus leaves it.
    pub empty_room_timeout_s: u64,
    /// The recorders' brewery. Empty: `recorders@internal.<domain>`;
    /// `"none"`: no recording.
    pub recorders_brewery: String,
    /// The gateways' brewery. Empty: `gateways@internal.<domain>`;
    /// `"none"`: no dial-out.
    pub gateways_brewery: String,
    /// The bridges' brewery. Empty: `bridges@internal.<domain>`; `"none"`:
    /// the load is not published.
    pub bridges_brewery: String,
    /// Domains whose accounts may be service participants (recorders,
    /// gateways). Empty: `auth.<domain>` and `recorder.<domain>`.
    pub trusted_domains: Vec<String>,
    /// Make the first participant of a room its owner when nobody
    /// moderates it. Turn off in token mode: moderators are then only the
    /// occupants whose room affiliation is owner or admin, which Prosody's
    /// mod_muc_jwt grants to holders of `moderator: true` tokens.
    pub auto_owner: bool,
}

impl Default for FocusConfig {
    fn default() -> Self {
        FocusConfig {
            muc_service: String::new(),
            nick: "focus".into(),
            empty_room_timeout_s: 30,
            recorders_brewery: String::new(),
            gateways_brewery: String::new(),
            bridges_brewery: String::new(),
            trusted_domains: vec![],
            auto_owner: true,
        }
    }
}

impl Config {
    /// Fills the defaults that depend on other keys (the account is
    /// `focus@auth.<domain>` with resource `focus`) and applies environment
    /// overrides (secrets stay out of files).
    pub fn apply_env(&mut self) {
        if self.xmpp.jid.is_empty() {
            self.xmpp.jid = format!("focus@auth.{}", self.xmpp.domain);
        }
        if self.xmpp.resource.is_empty() {
            self.xmpp.resource = "focus".into();
        }
        if let Ok(p) = std::env::var("SFU_XMPP_PASSWORD") {
            self.xmpp.password = p;
        }
    }

    /// A brewery room: the configured one, the default, or none.
    fn brewery(&self, configured: &str, default_name: &str) -> Option<jid::BareJid> {
        match configured {
            "none" => None,
            "" => jid::BareJid::new(&format!("{default_name}@internal.{}", self.xmpp.domain)).ok(),
            room => jid::BareJid::new(room).ok(),
        }
    }

    pub fn recorders_brewery(&self) -> Option<jid::BareJid> {
        self.brewery(&self.focus.recorders_brewery, "recorders")
    }

    /// The bridges' brewery where the SFU publishes its load.
    pub fn bridges_brewery(&self) -> Option<jid::BareJid> {
        self.brewery(&self.focus.bridges_brewery, "bridges")
    }

    pub fn gateways_brewery(&self) -> Option<jid::BareJid> {
        self.brewery(&self.focus.gateways_brewery, "gateways")
    }

    /// Domains of trusted service accounts, with the defaults filled in.
    pub fn trusted_domains(&self) -> Vec<String> {
        if self.focus.trusted_domains.is_empty() {
            vec![
                format!("auth.{}", self.xmpp.domain),
                format!("recorder.{}", self.xmpp.domain),
            ]
        } else {
            self.focus.trusted_domains.clone()
        }
    }

    /// The bridge channel's base URL (`ws://..` or `wss://..`).
    pub fn channel_base(&self, listen: std::net::SocketAddr) -> String {
        let public = if self.http.public_url.is_empty() {
            format!("http://{listen}")
        } else {
            self.http.public_url.trim_end_matches('/').to_owned()
        };
        if let Some(rest) = public.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = public.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            public
        }
    }

    /// Prosody's WebSocket URL for the proxy, with the default filled in.
    pub fn xmpp_websocket(&self) -> String {
        if !self.http.xmpp_websocket.is_empty() {
            return self.http.xmpp_websocket.clone();
        }
        // `host:port`, the host possibly a bracketed IPv6 address.
        let host = self
            .xmpp
            .server
            .rsplit_once(':')
            .map_or(self.xmpp.server.as_str(), |(host, _)| host);
        format!("ws://{host}:{PROSODY_HTTP_PORT}/xmpp-websocket")
    }

    /// The MUC service, with the default filled in.
    pub fn muc_service(&self) -> String {
        if self.focus.muc_service.is_empty() {
            format!("conference.{}", self.xmpp.domain)
        } else {
            self.focus.muc_service.clone()
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.xmpp
            .validate()
            .map_err(|e| ConfigError::invalid(format!("xmpp.{}", e.key), e.reason))?;
        if self.xmpp.jid.is_empty() {
            return Err(ConfigError::invalid(
                "xmpp.jid",
                "the focus needs a service account",
            ));
        }
        if jid::BareJid::new(&self.muc_service()).map_or(true, |j| j.node().is_some()) {
            return Err(ConfigError::invalid(
                "focus.muc_service",
                "expected a MUC service domain",
            ));
        }
        if self.focus.nick.is_empty() || jid::ResourcePart::new(&self.focus.nick).is_err() {
            return Err(ConfigError::invalid("focus.nick", "expected a valid nick"));
        }
        for (key, value) in [
            ("focus.recorders_brewery", &self.focus.recorders_brewery),
            ("focus.gateways_brewery", &self.focus.gateways_brewery),
            ("focus.bridges_brewery", &self.focus.bridges_brewery),
        ] {
            let ok = matches!(value.as_str(), "" | "none")
                || jid::BareJid::new(value).is_ok_and(|j| j.node().is_some());
            if !ok {
                return Err(ConfigError::invalid(
                    key,
                    "expected room@service, \"none\" or empty",
                ));
            }
        }
        if self.media.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::invalid(
                "media.bind",
                "expected ip:port, e.g. 0.0.0.0:10000",
            ));
        }
        if !self.media.advertise.is_empty()
            && self.media.advertise.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ConfigError::invalid(
                "media.advertise",
                "expected an IP address",
            ));
        }
        if self.media.audio_slots == 0 || self.media.video_slots == 0 {
            return Err(ConfigError::invalid(
                "media.video_slots",
                "audio_slots and video_slots must be >= 1",
            ));
        }
        let url = &self.http.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "http.public_url",
                "expected http:// or https://",
            ));
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::invalid(
                "http.listen",
                "expected ip:port, e.g. 127.0.0.1:8080",
            ));
        }
        if !is_ws_url(&self.xmpp_websocket()) {
            return Err(ConfigError::invalid(
                "http.xmpp_websocket",
                "expected ws://host:port/path, e.g. ws://127.0.0.1:5280/xmpp-websocket \
                 (wss:// is not supported: the proxy expects Prosody on a trusted network)",
            ));
        }
        if !PIN_DIGITS.contains(&self.dial_in.pin_digits) {
            return Err(ConfigError::invalid(
                "dial_in.pin_digits",
                format!(
                    "expected {} to {} digits",
                    PIN_DIGITS.start(),
                    PIN_DIGITS.end()
                ),
            ));
        }
        if self.dial_in.numbers.iter().any(|n| n.trim().is_empty()) {
            return Err(ConfigError::invalid(
                "dial_in.numbers",
                "expected phone numbers, not empty strings",
            ));
        }
        self.log.validate()
    }
}

/// A plain `ws://` URL with a host (the proxy has no TLS client).
fn is_ws_url(url: &str) -> bool {
    url.parse::<axum::http::Uri>()
        .is_ok_and(|u| u.scheme_str() == Some("ws") && u.host().is_some_and(|h| !h.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_rejected_with_its_name() {
        let e = service::parse::<Config>("[focus]\nnik = 'x'\n").unwrap_err();
        assert!(e.contains("unknown field `nik`"), "{e}");
    }

    #[test]
    fn password_is_required() {
        let mut c = Config::default();
        c.apply_env();
        let e = c.validate().unwrap_err().to_string();
        assert_eq!(e, "config key `xmpp.password`: required with a jid");
    }

    #[test]
    fn muc_service_defaults_from_domain() {
        let mut c: Config =
            service::parse("[xmpp]\ndomain = 'meet.example'\npassword = 'x'\n").unwrap();
        c.apply_env();
        assert_eq!(c.muc_service(), "conference.meet.example");
        assert_eq!(c.xmpp.jid, "focus@auth.meet.example");
        c.validate().unwrap();
    }

    #[test]
    fn xmpp_websocket_defaults_from_the_xmpp_server_host() {
        let mut c: Config =
            service::parse("[xmpp]\nserver = 'prosody.internal:5222'\npassword = 'x'\n").unwrap();
        c.apply_env();
        assert_eq!(
            c.xmpp_websocket(),
            "ws://prosody.internal:5280/xmpp-websocket"
        );
        c.validate().unwrap();
        c.xmpp.server = "[::1]:5222".into();
        assert_eq!(c.xmpp_websocket(), "ws://[::1]:5280/xmpp-websocket");
        c.validate().unwrap();
    }

    #[test]
    fn dial_in_defaults_to_six_digit_pins_and_no_numbers() {
        let mut c: Config = service::parse("[xmpp]\npassword = 'x'\n").unwrap();
        c.apply_env();
        assert_eq!(c.dial_in, DialInConfig::default());
        assert_eq!((c.dial_in.pin_digits, c.dial_in.numbers.len()), (6, 0));
        c.validate().unwrap();
        let mut c: Config = service::parse(
            "[xmpp]\npassword = 'x'\n[dial_in]\nnumbers = ['+1 555 0100']\npin_digits = 10\n",
        )
        .unwrap();
        c.apply_env();
        c.validate().unwrap();
    }

    #[test]
    fn a_bad_dial_in_key_is_named() {
        for (toml, key) in [
            ("pin_digits = 3", "dial_in.pin_digits"),
            ("pin_digits = 11", "dial_in.pin_digits"),
            ("numbers = ['']", "dial_in.numbers"),
        ] {
            let mut c: Config =
                service::parse(&format!("[xmpp]\npassword = 'x'\n[dial_in]\n{toml}\n")).unwrap();
            c.apply_env();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(&format!("config key `{key}`")), "{toml}: {e}");
        }
        let e = service::parse::<Config>("[dial_in]\npin = 4\n").unwrap_err();
        assert!(e.contains("unknown field `pin`"), "{e}");
    }

    #[test]
    fn a_bad_xmpp_websocket_names_its_key() {
        for url in [
            "http://127.0.0.1:5280/xmpp-websocket",
            "wss://meet.example/xmpp-websocket",
            "ws://",
            "not a url",
        ] {
            let mut c: Config = service::parse("[xmpp]\npassword = 'x'\n").unwrap();
            c.apply_env();
            c.http.xmpp_websocket = url.into();
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.starts_with("config key `http.xmpp_websocket`"),
                "{url}: {e}"
            );
        }
    }
}
