//! How to reach and log in to the XMPP server. Part of each binary's config
//! file (`[xmpp]`), validated before anything connects.

use std::time::Duration;

use jid::BareJid;
use serde::{Deserialize, Serialize};

/// Transport security towards the XMPP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// STARTTLS, required. The default for anything but loopback.
    #[default]
    Starttls,
    /// Plain TCP. Only sensible on loopback (tests, single-machine stacks).
    Plaintext,
}

/// `[xmpp]` section of a binary's config file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmppConfig {
    /// Server address, `host:port`.
    pub server: String,
    /// The XMPP domain of the deployment (participants' host), e.g. `meet.example`.
    pub domain: String,
    /// Account JID (`focus@auth.meet.example`). Empty means an anonymous login
    /// on `domain`.
    pub jid: String,
    /// Account password (service accounts).
    pub password: String,
    /// Requested resource; the server may assign another.
    pub resource: String,
    /// Transport security.
    pub security: Security,
    /// How long an IQ request waits for its response, in milliseconds.
    pub iq_timeout_ms: u64,
    /// First reconnect delay, in milliseconds; doubled per failure.
    pub reconnect_min_ms: u64,
    /// Largest reconnect delay, in milliseconds.
    pub reconnect_max_ms: u64,
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            server: "127.0.0.1:5222".into(),
            domain: "meet.test".into(),
            jid: String::new(),
            password: String::new(),
            resource: String::new(),
            security: Security::Starttls,
            iq_timeout_ms: 10_000,
            reconnect_min_ms: 250,
            reconnect_max_ms: 10_000,
        }
    }
}

/// A config value that fails validation; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("xmpp.{key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl XmppConfig {
    /// Checks every key; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, reason: &str| ConfigError {
            key,
            reason: reason.into(),
        };
        let (host, port) = self
            .server
            .rsplit_once(':')
            .ok_or_else(|| err("server", "expected host:port"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(err("server", "expected host:port with a port in 1-65535"));
        }
        if BareJid::new(&self.domain).map_or(true, |j| j.node().is_some()) {
            return Err(err("domain", "expected a domain such as meet.example"));
        }
        if !self.jid.is_empty() {
            let jid = BareJid::new(&self.jid).map_err(|e| err("jid", &e.to_string()))?;
            if jid.node().is_none() {
                return Err(err("jid", "expected user@host"));
            }
            if self.password.is_empty() {
                return Err(err("password", "required with a jid"));
            }
        }
        if self.iq_timeout_ms == 0 {
            return Err(err("iq_timeout_ms", "must be > 0"));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(err("reconnect_max_ms", "must be >= reconnect_min_ms > 0"));
        }
        Ok(())
    }

    /// Host and port of `server` (call after [`validate`](Self::validate)).
    pub fn host_port(&self) -> (String, u16) {
        match self.server.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                p.parse().unwrap_or(5222),
            ),
            None => (self.server.clone(), 5222),
        }
    }

    /// The login JID: the account, or `anon@domain` for an anonymous login
    /// (the server assigns the real one).
    pub fn login_jid(&self) -> Result<BareJid, ConfigError> {
        let s = if self.jid.is_empty() {
            format!("anon@{}", self.domain)
        } else {
            self.jid.clone()
        };
        BareJid::new(&s).map_err(|e| ConfigError {
            key: "jid",
            reason: e.to_string(),
        })
    }

    /// Whether this config logs in anonymously.
    pub fn is_anonymous(&self) -> bool {
        self.jid.is_empty()
    }

    pub fn iq_timeout(&self) -> Duration {
        Duration::from_millis(self.iq_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        XmppConfig::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let c = XmppConfig {
            server: "nohost".into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "server");
        let c = XmppConfig {
            jid: "focus@auth.meet.test".into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "password");
        let c = XmppConfig {
            domain: "a@b".into(),
            ..Default::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "xmpp.domain: expected a domain such as meet.example"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<XmppConfig>("servr = 'x:1'").unwrap_err();
        assert!(e.to_string().contains("unknown field `servr`"), "{e}");
    }
}
