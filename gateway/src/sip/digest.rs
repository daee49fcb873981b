//! HTTP Digest authentication as SIP uses it (RFC 2617, updated by RFC 7616;
//! RFC 3261 §22): answering a 401 `WWW-Authenticate` or 407
//! `Proxy-Authenticate` challenge with `Authorization` / `Proxy-Authorization`.
//!
//! Supported: algorithm `MD5` (the default when none is named) and `MD5-sess`;
//! `qop=auth` with cnonce and nonce count, and the RFC 2069 form when the
//! challenge offers no qop. Not supported, refused with a [`DigestError`]:
//! SHA-256 and SHA-512-256 (RFC 7616; SIP deployments still challenge with
//! MD5), `qop=auth-int` alone, and `userhash`. Several challenges in one
//! response: the first we support is answered ([`Challenge::pick`]).

use std::fmt;

use md5::{Digest, Md5};

use super::message::split_outside;

/// A SIP account's user name and password. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a challenge cannot be answered (the challenger's fault or a feature we
/// lack; not retryable with the same challenge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DigestError {
    #[error("no challenge, or not the Digest scheme")]
    NotDigest,
    #[error("challenge without {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0}")]
    Algorithm(String),
    #[error("unsupported qop {0}")]
    Qop(String),
    #[error("malformed challenge parameter")]
    Syntax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Md5Sess,
}

/// A parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The challenge named its algorithm (we echo it then).
    pub algorithm_named: bool,
    /// `qop=auth` offered: answer with cnonce and nonce count.
    pub qop_auth: bool,
    /// `stale=true`: the password was right, only the nonce was old.
    pub stale: bool,
}

/// The request being authorized.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer<'a> {
    pub method: &'a str,
    /// The Request-URI, as sent.
    pub uri: &'a str,
    pub cnonce: &'a str,
    /// Nonce count: how many requests this nonce has authorized, this one included.
    pub nc: u32,
}

impl Challenge {
    /// Parses one `WWW-Authenticate` / `Proxy-Authenticate` value.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or(DigestError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let (mut realm, mut nonce, mut opaque) = (None, None, None);
        let (mut algorithm, mut algorithm_named) = (Algorithm::Md5, false);
        let (mut qop, mut stale) = (None, false);
        for item in split_outside(rest, ',').filter(|i| !i.is_empty()) {
            let (name, raw) = item.split_once('=').ok_or(DigestError::Syntax)?;
            let v = unquote(raw.trim())?;
            match name.trim().to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => opaque = Some(v),
                "stale" => stale = v.eq_ignore_ascii_case("true"),
                "qop" => qop = Some(v),
                "algorithm" => {
                    algorithm_named = true;
                    algorithm = match v.to_ascii_uppercase().as_str() {
                        "MD5" => Algorithm::Md5,
                        "MD5-SESS" => Algorithm::Md5Sess,
                        _ => return Err(DigestError::Algorithm(v)),
                    };
                }
                "userhash" if v.eq_ignore_ascii_case("true") => {
                    return Err(DigestError::Algorithm("userhash".into()))
                }
                _ => {}
            }
        }
        let qop_auth = match qop {
            None => false,
            Some(list) => {
                let offered = || list.split(',').map(str::trim);
                if !offered().any(|q| q.eq_ignore_ascii_case("auth")) {
                    return Err(DigestError::Qop(list));
                }
                true
            }
        };
        Ok(Self {
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            opaque,
            algorithm,
            algorithm_named,
            qop_auth,
            stale,
        })
    }

    /// The first challenge among `values` that we can answer; else the first error.
    pub fn pick<'a>(values: impl Iterator<Item = &'a str>) -> Result<Self, DigestError> {
        let mut first_error = None;
        for value in values {
            match Self::parse(value) {
                Ok(challenge) => return Ok(challenge),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(DigestError::NotDigest))
    }
}

/// The `response` hash (lowercase hex) for `answer` to `challenge`.
pub(crate) fn response(challenge: &Challenge, creds: &Credentials, answer: &Answer<'_>) -> String {
    let Challenge { realm, nonce, .. } = challenge;
    let mut ha1 = md5_hex(&format!("{}:{realm}:{}", creds.user, creds.password));
    if challenge.algorithm == Algorithm::Md5Sess {
        ha1 = md5_hex(&format!("{ha1}:{nonce}:{}", answer.cnonce));
    }
    let ha2 = md5_hex(&format!("{}:{}", answer.method, answer.uri));
    if challenge.qop_auth {
        let (nc, cnonce) = (answer.nc, answer.cnonce);
        md5_hex(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"))
    } else {
        md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
    }
}

/// The `Authorization` / `Proxy-Authorization` value answering `challenge`.
pub(crate) fn authorization(
    challenge: &Challenge,
    creds: &Credentials,
    answer: &Answer<'_>,
) -> String {
    let hash = response(challenge, creds, answer);
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{hash}\"",
        quote(&creds.user),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(answer.uri),
    );
    if challenge.algorithm_named || challenge.algorithm == Algorithm::Md5Sess {
        let name = match challenge.algorithm {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
        };
        out.push_str(&format!(", algorithm={name}"));
    }
    if challenge.qop_auth {
        out.push_str(&format!(
            ", cnonce={}, qop=auth, nc={:08x}",
            quote(answer.cnonce),
            answer.nc
        ));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(&format!(", opaque={}", quote(opaque)));
    }
    out
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A token, or a quoted string with its escapes undone.
fn unquote(raw: &str) -> Result<String, DigestError> {
    let Some(inner) = raw.strip_prefix('"') else {
        return Ok(raw.to_owned());
    };
    let inner = inner.strip_suffix('"').ok_or(DigestError::Syntax)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or(DigestError::Syntax)?),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5: the worked example with qop=auth.
    #[test]
    fn rfc2617_example_with_qop_auth() {
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("RFC example parses");
        assert!(challenge.qop_auth && !challenge.stale);
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        let answer = Answer {
            method: "GET",
            uri: "/dir/index.html",
            cnonce: "0a4f113b",
            nc: 1,
        };
        assert_eq!(
            response(&challenge, &creds, &answer),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(
            authorization(&challenge, &creds, &answer),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", cnonce=\"0a4f113b\", \
             qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
    }

    /// Without qop (RFC 2069 form) and with MD5-sess; expected values computed
    /// independently (Python hashlib).
    #[test]
    fn no_qop_and_md5_sess() {
        let creds = Credentials::new("alice", "secret");
        let plain = Challenge::parse(
            "Digest realm=\"atlanta.example.com\",nonce=\"84f1c1ae6cbe5ua9c3ca4e7b0e8f\"",
        )
        .expect("parses");
        let answer = Answer {
            method: "REGISTER",
            uri: "sip:atlanta.example.com",
            cnonce: "unused",
            nc: 1,
        };
        assert_eq!(
            response(&plain, &creds, &answer),
            "6c7e8befa6143a918a7bb120249ff164"
        );
        let header = authorization(&plain, &creds, &answer);
        assert!(
            !header.contains("qop") && !header.contains("cnonce"),
            "{header}"
        );
        let sess = Challenge::parse(
            "DIGEST realm=atlanta.example.com, nonce=nonce42, algorithm=md5-sess, qop=auth",
        )
        .expect("parses");
        let answer = Answer {
            method: "INVITE",
            uri: "sip:bob@biloxi.example.com",
            cnonce: "c0ffee",
            nc: 2,
        };
        assert_eq!(
            response(&sess, &creds, &answer),
            "9df27cef20ebb73157fba9e07536a6c5"
        );
        assert!(authorization(&sess, &creds, &answer).contains("algorithm=MD5-sess"));
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        let cases = [
            ("Basic realm=\"x\"", DigestError::NotDigest),
            ("Digest nonce=\"n\"", DigestError::Missing("realm")),
            ("Digest realm=\"r\"", DigestError::Missing("nonce")),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
                DigestError::Algorithm("SHA-256".into()),
            ),
            (
                "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
                DigestError::Qop("auth-int".into()),
            ),
            ("Digest realm=\"r, nonce=n", DigestError::Syntax),
            ("Digest realm", DigestError::Syntax),
        ];
        for (value, want) in cases {
            assert_eq!(Challenge::parse(value), Err(want), "{value}");
        }
    }

    #[test]
    fn picks_the_first_supported_challenge_and_reads_stale() {
        let values = [
            "Digest realm=\"r\", nonce=\"a\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"r\", nonce=\"b\", algorithm=MD5, qop=\"auth\", stale=TRUE",
        ];
        let picked = Challenge::pick(values.into_iter()).expect("MD5 offered");
        assert_eq!(picked.nonce, "b");
        assert!(picked.stale && picked.algorithm_named);
        assert_eq!(Challenge::pick([].into_iter()), Err(DigestError::NotDigest));
    }

    #[test]
    fn quotes_and_redacts() {
        let challenge = Challenge::parse("Digest realm=\"a \\\"b\\\"\", nonce=\"n\"")
            .expect("escaped realm parses");
        assert_eq!(challenge.realm, "a \"b\"");
        let creds = Credentials::new("u", "hunter2");
        assert!(!format!("{creds:?}").contains("hunter2"));
        let answer = Answer {
            method: "BYE",
            uri: "sip:x",
            cnonce: "c",
            nc: 1,
        };
        assert!(authorization(&challenge, &creds, &answer).contains("realm=\"a \\\"b\\\"\""));
    }
}
