//! Sign-in tokens: HS256 JSON Web Tokens (RFC 7519, RFC 7515) of the shape
//! `deploy/prosody/plugins/mod_auth_jwt.lua` accepts.
//!
//! Contract: [`Grant::claims`] turns "who may join which room, for how long"
//! into [`Claims`] at a given time (the caller passes the clock);
//! [`sign`] serialises them and signs them with a shared [`Secret`]. The
//! claims are
//!
//! ```json
//! { "iss": "...", "aud": "...", "iat": 1700000000, "nbf": 1700000000,
//!   "exp": 1700003600, "room": "standup", "moderator": true,
//!   "context": { "user": { "name": "Ada" } } }
//! ```
//!
//! `iss` and `aud` are present only when given; `moderator` only when true;
//! `room` is a room's local part (case does not matter) or `*` for every
//! room. Prosody checks the signature, `exp` and `nbf` (with a small
//! leeway), `iss`/`aud` when it is configured with them, and `room` on
//! every join; `moderator: true` makes the user an owner of the room.
//! `sfu token` is the command-line face of this module.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The fewest bytes a secret may have. RFC 7518 §3.2 asks for a key of at
/// least the hash size (32 bytes) for HS256; 16 is the floor below which a
/// secret is a typo rather than a weak choice.
pub const MIN_SECRET_LEN: usize = 16;

/// The longest token lifetime [`Grant::claims`] accepts (one year).
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Why a token cannot be made. All of them are the caller's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the secret is empty")]
    EmptySecret,
    #[error("the secret has {0} bytes; use at least {MIN_SECRET_LEN} (32 random bytes are best)")]
    ShortSecret(usize),
    #[error("invalid room {0:?}: expected a room name (no spaces, @, /, quotes, <, >, &, :) or *")]
    InvalidRoom(String),
    #[error("the lifetime must be between 1 s and {} s", MAX_TTL.as_secs())]
    InvalidTtl,
    #[error("the clock is before 1970")]
    Clock,
}

/// The shared HS256 key. Its `Debug` does not show it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Secret, TokenError> {
        let bytes = bytes.into();
        match bytes.len() {
            0 => Err(TokenError::EmptySecret),
            n if n < MIN_SECRET_LEN => Err(TokenError::ShortSecret(n)),
            _ => Ok(Secret(bytes)),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a token allows: who, where, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// A room's local part (`standup` for `standup@conference.DOMAIN`), or
    /// `*` for every room.
    pub room: String,
    /// The user's display name (`context.user.name`).
    pub name: String,
    /// Whether the user becomes an owner (moderator) of the room.
    pub moderator: bool,
    /// How long the token is valid from now.
    pub ttl: Duration,
    /// `iss`; must match Prosody's `jwt_issuer` when that is set.
    pub issuer: Option<String>,
    /// `aud`; must match Prosody's `jwt_audience` when that is set.
    pub audience: Option<String>,
}

impl Grant {
    /// A one-hour, non-moderator grant for `room` without issuer or audience.
    pub fn new(room: impl Into<String>, name: impl Into<String>) -> Grant {
        Grant {
            room: room.into(),
            name: name.into(),
            moderator: false,
            ttl: Duration::from_secs(3600),
            issuer: None,
            audience: None,
        }
    }

    /// The claims of a token issued at `now`: `iat` = `nbf` = `now`,
    /// `exp` = `now + ttl` (whole seconds).
    pub fn claims(&self, now: SystemTime) -> Result<Claims, TokenError> {
        check_room(&self.room)?;
        if self.ttl < Duration::from_secs(1) || self.ttl > MAX_TTL {
            return Err(TokenError::InvalidTtl);
        }
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TokenError::Clock)?
            .as_secs();
        Ok(Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
            room: self.room.clone(),
            moderator: self.moderator,
            context: Context {
                user: User {
                    name: self.name.clone(),
                },
            },
        })
    }
}

/// A token's payload, as serialised (field names are the JWT claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aud: Option<String>,
    /// Issued at (seconds since 1970).
    pub iat: u64,
    /// Not before (seconds since 1970).
    pub nbf: u64,
    /// Expires at (seconds since 1970).
    pub exp: u64,
    pub room: String,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub moderator: bool,
    pub context: Context,
}

/// `context` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub user: User,
}

/// `context.user` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
}

/// The compact serialisation `header.payload.signature`, signed with
/// HMAC-SHA-256 under `secret`.
pub fn sign(claims: &Claims, secret: &Secret) -> String {
    // The header is fixed; `typ` is informative only.
    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
    let payload = serde_json::to_vec(claims)
        .unwrap_or_else(|_| unreachable!("Claims holds only strings, integers and booleans"));
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signed}.{signature}")
}

/// `*`, or a string usable as a MUC room's local part.
fn check_room(room: &str) -> Result<(), TokenError> {
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "\"&'/:<>@*".contains(c);
    if room == "*" || (!room.is_empty() && room.len() <= 1023 && !room.contains(forbidden)) {
        Ok(())
    } else {
        Err(TokenError::InvalidRoom(room.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn payload(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn claims_carry_room_name_moderator_and_times() {
        let grant = Grant {
            moderator: true,
            ttl: Duration::from_secs(600),
            issuer: Some("meet".into()),
            audience: Some("meet.test".into()),
            ..Grant::new("Standup", "Ada Lovelace")
        };
        let token = sign(
            &grant.claims(at(1_700_000_000)).unwrap(),
            &Secret::new(SECRET).unwrap(),
        );
        assert_eq!(
            payload(&token),
            serde_json::json!({
                "iss": "meet", "aud": "meet.test",
                "iat": 1_700_000_000u64, "nbf": 1_700_000_000u64, "exp": 1_700_000_600u64,
                "room": "Standup", "moderator": true,
                "context": { "user": { "name": "Ada Lovelace" } }
            })
        );
    }

    #[test]
    fn optional_claims_are_left_out() {
        let claims = Grant::new("*", "Bob").claims(at(100)).unwrap();
        let token = sign(&claims, &Secret::new(SECRET).unwrap());
        assert_eq!(
            payload(&token),
            serde_json::json!({
                "iat": 100, "nbf": 100, "exp": 3700, "room": "*",
                "context": { "user": { "name": "Bob" } }
            })
        );
    }

    /// The expected token was computed independently (Python's `hmac` and
    /// `base64` over the same header and payload bytes).
    #[test]
    fn signature_matches_an_independent_hs256() {
        let claims = Grant::new("alpha", "Ada").claims(at(1_000)).unwrap();
        let token = sign(&claims, &Secret::new(SECRET).unwrap());
        assert_eq!(token, GOLDEN);
    }

    const GOLDEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJpYXQiOjEwMDAsIm5iZiI6MTAwMCwiZXhwIjo0NjAwLCJyb29tIjoiYWxwaGEiLCJjb250ZXh0Ijp7InVzZXIiOnsibmFtZSI6IkFkYSJ9fX0.\
        ntw8Hp1DeJIUrkNN3jtPdwV_YfPZmUDZcvdutpXGcak";

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        assert!(matches!(Secret::new(""), Err(TokenError::EmptySecret)));
        assert!(matches!(
            Secret::new("short"),
            Err(TokenError::ShortSecret(5))
        ));
        for room in ["", "a b", "a@b", "a/b", "a*", "**", "x'y", "tab\t"] {
            assert_eq!(
                Grant::new(room, "n").claims(at(0)),
                Err(TokenError::InvalidRoom(room.into())),
                "{room:?}"
            );
        }
        for ttl in [0, MAX_TTL.as_secs() + 1] {
            let grant = Grant {
                ttl: Duration::from_secs(ttl),
                ..Grant::new("r", "n")
            };
            assert_eq!(grant.claims(at(0)), Err(TokenError::InvalidTtl));
        }
        assert_eq!(
            Grant::new("r", "n").claims(UNIX_EPOCH - Duration::from_secs(1)),
            Err(TokenError::Clock)
        );
    }

    #[test]
    fn the_secret_is_not_printed() {
        let s = Secret::new(SECRET).unwrap();
        assert!(!format!("{s:?}").contains("0123"));
    }
}
