//! The `gateway` config file: defaults in `Default`, then the file, then
//! `GATEWAY_XMPP_PASSWORD`, then [`Validate`] names any bad key.

use serde::{Deserialize, Serialize};
use service::{ConfigError, LogConfig, Validate};
use xmpp_session::brewery::BreweryConfig;
use xmpp_session::XmppConfig;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub xmpp: XmppConfig,
    pub brewery: BreweryConfig,
    pub log: LogConfig,
}

impl Config {
    /// The account defaults to `gateway@auth.<domain>`; the password may
    /// come from `GATEWAY_XMPP_PASSWORD`.
    pub fn apply_env(&mut self) {
        if self.xmpp.jid.is_empty() {
            self.xmpp.jid = format!("gateway@auth.{}", self.xmpp.domain);
        }
        if let Ok(p) = std::env::var("GATEWAY_XMPP_PASSWORD") {
            self.xmpp.password = p;
        }
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
        self.log.validate()
    }
}
