//! The `gateway` config file: defaults in `Default`, then the file, then
//! `GATEWAY_XMPP_PASSWORD` / `GATEWAY_SIP_PASSWORD`, then [`Validate`] names
//! any bad key.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use service::{ConfigError, LogConfig, Validate};
use xmpp_session::brewery::BreweryConfig;
use xmpp_session::XmppConfig;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub xmpp: XmppConfig,
    pub brewery: BreweryConfig,
    pub sip: SipConfig,
    pub meeting: MeetingConfig,
    pub dial_in: DialInConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
}

/// `[sip]`: the phone side.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// UDP and TCP address for SIP.
    pub listen: String,
    /// The address put in Contact and SDP (default: the listen address, or
    /// the one routing to the caller when listening on any).
    pub public_ip: String,
    /// Calls at once; beyond it new INVITEs get 503 with Retry-After.
    pub max_calls: usize,
    /// A call whose phone sends no RTP this long is ended (BYE).
    pub inactivity_timeout_s: u64,
    /// RFC 4028 session interval offered when the caller supports timers.
    pub session_expires_s: u32,
    /// On shutdown, how long current calls may go on (new ones get 503);
    /// those still up then are hung up.
    pub drain_timeout_s: u64,
    /// Where dial-out INVITEs go (`host:port` of the trunk or PBX).
    pub trunk: String,
    /// The domain of dial-out Request-URIs (`sip:<number>@<domain>`);
    /// default: the trunk's host.
    pub trunk_domain: String,
    /// Every request goes through this proxy (`host:port`), when set.
    pub outbound_proxy: String,
    /// Registration to the trunk (digest credentials), when `user` is set.
    pub register: RegisterConfig,
    /// Send media to where the phone's RTP comes from rather than to the
    /// address in its SDP (phones behind NAT without a SIP ALG).
    pub symmetric_rtp: bool,
    /// libopus complexity (0 cheapest .. 10) of the Opus each call sends
    /// into the room. It is encoded from the phone's own narrowband or
    /// wideband audio, where low complexities lose little (see
    /// docs/gateway-benchmark.md for the CPU each costs).
    pub room_opus_complexity: u8,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "0.0.0.0:5060".into(),
            public_ip: String::new(),
            max_calls: 100,
            inactivity_timeout_s: 30,
            session_expires_s: 1800,
            drain_timeout_s: 3600,
            trunk: String::new(),
            trunk_domain: String::new(),
            outbound_proxy: String::new(),
            register: RegisterConfig::default(),
            symmetric_rtp: false,
            room_opus_complexity: crate::media::call::DEFAULT_COMPLEXITY,
        }
    }
}

/// `[sip.register]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Empty: no registration.
    pub user: String,
    /// Its password (or `GATEWAY_SIP_PASSWORD`).
    pub password: String,
    /// The registrar (`host:port`); default: the trunk.
    pub registrar: String,
    /// The domain of the address of record; default: the registrar's host.
    pub domain: String,
    pub expires_s: u32,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            user: String::new(),
            password: String::new(),
            registrar: String::new(),
            domain: String::new(),
            expires_s: 300,
        }
    }
}

/// `[meeting]`: how callers join meetings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MeetingConfig {
    /// The focus's full JID; default `focus@auth.<domain>/focus`.
    pub focus: String,
    /// The MUC service rooms live on; default `conference.<domain>`.
    pub muc: String,
    /// The local address for WebRTC media; default: the one routing to the SFU.
    pub bind_ip: String,
}

/// `[dial_in]`: which room a call goes to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialInConfig {
    /// The SIP header naming the room (a bare name or a room address).
    pub room_header: String,
    /// The conference mapper that resolves PINs: the sfu's built-in one
    /// (`{ kind = "builtin", base_url = "http://sfu:8080" }`) or an external
    /// service with Jitsi's JSON shape (`{ kind = "external", url = … }`).
    /// None: calls without the room header are refused (404).
    pub mapper: Option<crate::mapper::Mapper>,
    /// The spoken prompts (WAV, 48 kHz mono), made by `scripts/prompts`.
    pub prompts: PathBuf,
    /// The PIN dialogue.
    pub ivr: crate::ivr::IvrConfig,
}

impl Default for DialInConfig {
    fn default() -> Self {
        DialInConfig {
            room_header: "Jitsi-Conference-Room".into(),
            mapper: None,
            prompts: PathBuf::from(".local/prompts"),
            ivr: crate::ivr::IvrConfig::default(),
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
            listen: "127.0.0.1:8091".into(),
        }
    }
}

impl Config {
    /// Defaults derived from the domain; passwords from the environment.
    pub fn apply_env(&mut self) {
        let domain = self.xmpp.domain.clone();
        if self.xmpp.jid.is_empty() {
            self.xmpp.jid = format!("gateway@auth.{domain}");
        }
        if let Ok(p) = std::env::var("GATEWAY_XMPP_PASSWORD") {
            self.xmpp.password = p;
        }
        if let Ok(p) = std::env::var("GATEWAY_SIP_PASSWORD") {
            self.sip.register.password = p;
        }
        if self.meeting.focus.is_empty() {
            self.meeting.focus = format!("focus@auth.{domain}/focus");
        }
        if self.meeting.muc.is_empty() {
            self.meeting.muc = format!("conference.{domain}");
        }
    }

    /// The XMPP settings of one caller's participant: the gateway's account
    /// with a resource of its own.
    pub fn caller_xmpp(&self, resource: &str) -> XmppConfig {
        XmppConfig {
            resource: resource.to_owned(),
            ..self.xmpp.clone()
        }
    }
}

fn socket_addr(key: &str, v: &str) -> Result<(), ConfigError> {
    if v.is_empty() || v.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    // host:port with a name is resolved when used.
    match v.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ConfigError::invalid(key, "not host:port")),
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.xmpp
            .validate()
            .map_err(|e| ConfigError::invalid(format!("xmpp.{}", e.key), e.reason))?;
        self.brewery
            .room_jid("gateways", &self.xmpp.domain)
            .map_err(|e| ConfigError::invalid(e.key, e.reason))?;
        if self.sip.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::invalid("sip.listen", "not ip:port"));
        }
        if !self.sip.public_ip.is_empty() && self.sip.public_ip.parse::<IpAddr>().is_err() {
            return Err(ConfigError::invalid("sip.public_ip", "not an IP address"));
        }
        if !(1..=10_000).contains(&self.sip.max_calls) {
            return Err(ConfigError::invalid("sip.max_calls", "must be 1..=10000"));
        }
        if !(1..=3600).contains(&self.sip.inactivity_timeout_s) {
            return Err(ConfigError::invalid(
                "sip.inactivity_timeout_s",
                "must be 1..=3600 seconds",
            ));
        }
        if !crate::media::opus::COMPLEXITY.contains(&self.sip.room_opus_complexity) {
            return Err(ConfigError::invalid(
                "sip.room_opus_complexity",
                "must be 0..=10",
            ));
        }
        if self.sip.session_expires_s < 90 {
            return Err(ConfigError::invalid(
                "sip.session_expires_s",
                "must be at least 90 (RFC 4028 Min-SE)",
            ));
        }
        socket_addr("sip.trunk", &self.sip.trunk)?;
        socket_addr("sip.outbound_proxy", &self.sip.outbound_proxy)?;
        socket_addr("sip.register.registrar", &self.sip.register.registrar)?;
        let r = &self.sip.register;
        if !r.user.is_empty() && r.registrar.is_empty() && self.sip.trunk.is_empty() {
            return Err(ConfigError::invalid(
                "sip.register.registrar",
                "registration needs a registrar (or sip.trunk)",
            ));
        }
        if !r.user.is_empty() && !(60..=86_400).contains(&r.expires_s) {
            return Err(ConfigError::invalid(
                "sip.register.expires_s",
                "must be 60..=86400",
            ));
        }
        if !self.meeting.focus.is_empty() && jid::FullJid::new(&self.meeting.focus).is_err() {
            return Err(ConfigError::invalid(
                "meeting.focus",
                "not a full JID (user@host/resource)",
            ));
        }
        if !self.meeting.muc.is_empty() && jid::BareJid::new(&self.meeting.muc).is_err() {
            return Err(ConfigError::invalid("meeting.muc", "not a domain"));
        }
        if !self.meeting.bind_ip.is_empty() && self.meeting.bind_ip.parse::<IpAddr>().is_err() {
            return Err(ConfigError::invalid("meeting.bind_ip", "not an IP address"));
        }
        if self.dial_in.room_header.trim().is_empty()
            || !self
                .dial_in
                .room_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::invalid(
                "dial_in.room_header",
                "must be a SIP header name",
            ));
        }
        let url = match &self.dial_in.mapper {
            Some(crate::mapper::Mapper::Builtin { base_url }) => Some(("base_url", base_url)),
            Some(crate::mapper::Mapper::External { url }) => Some(("url", url)),
            None => None,
        };
        if let Some((key, url)) = url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    format!("dial_in.mapper.{key}"),
                    "must be an http:// or https:// URL",
                ));
            }
        }
        self.dial_in
            .ivr
            .validate()
            .map_err(|e| ConfigError::invalid(format!("dial_in.ivr.{}", e.key), e.reason))?;
        if !self.http.listen.is_empty() && self.http.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::invalid("http.listen", "not ip:port"));
        }
        self.log.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Result<Config, String> {
        let mut c: Config = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.apply_env();
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_derive_from_the_domain() {
        let c = config("[xmpp]\ndomain = \"meet.test\"\npassword = \"pw\"\n").unwrap();
        assert_eq!(c.xmpp.jid, "gateway@auth.meet.test");
        assert_eq!(c.meeting.focus, "focus@auth.meet.test/focus");
        assert_eq!(c.meeting.muc, "conference.meet.test");
        assert_eq!(c.sip.inactivity_timeout_s, 30);
        assert_eq!(c.dial_in.room_header, "Jitsi-Conference-Room");
        assert_eq!(c.caller_xmpp("call-1").resource, "call-1");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("[sip]\nlisten = \"nowhere\"", "sip.listen"),
            ("[sip]\nmax_calls = 0", "sip.max_calls"),
            (
                "[sip]\ninactivity_timeout_s = 0",
                "sip.inactivity_timeout_s",
            ),
            ("[sip]\nsession_expires_s = 30", "sip.session_expires_s"),
            (
                "[sip]\nroom_opus_complexity = 11",
                "sip.room_opus_complexity",
            ),
            ("[sip]\ntrunk = \"pbx\"", "sip.trunk"),
            ("[sip.register]\nuser = \"gw\"", "sip.register.registrar"),
            ("[meeting]\nfocus = \"focus@auth\"", "meeting.focus"),
            (
                "[dial_in]\nroom_header = \"Bad Header\"",
                "dial_in.room_header",
            ),
            (
                "[dial_in]\nmapper = { kind = \"external\", url = \"ftp://x\" }",
                "dial_in.mapper.url",
            ),
            (
                "[dial_in.ivr]\nmax_attempts = 0",
                "dial_in.ivr.max_attempts",
            ),
        ] {
            let err = config(&format!(
                "[xmpp]\ndomain = \"meet.test\"\npassword = \"pw\"\n{text}\n"
            ))
            .unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = config("[sip]\nlisten_on = \"x\"\n").unwrap_err();
        assert!(err.contains("listen_on"), "{err}");
    }
}
