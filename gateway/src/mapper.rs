//! Resolves a dial-in PIN to a room through a conference mapper (the shape
//! of Jitsi's: `GET <mapper>?id=<pin>`).
//!
//! Contract:
//! - [`Mapper::Builtin`] asks the sfu's own mapper (`sfu::dial_in`) at
//!   `<base_url>/conference-mapper?id=<pin>`; [`Mapper::External`] asks
//!   `<url>?id=<pin>` (or `<url>&id=<pin>` when the URL has a query).
//! - A 2xx answer is JSON `{"message":…,"id":<pin>,"conference":"room@muc"}`;
//!   `id` may be a number or a string and is only checked loosely (a
//!   mismatch is logged). `conference` must be a full room address, a bare
//!   JID with a local part: a bare room name is refused.
//! - [`MapperError::NotFound`] (the caller's fault, not retryable): 404, 400
//!   (the sfu's answer to a PIN of the wrong length), or a 2xx answer
//!   without a `conference`.
//! - [`MapperError::Unavailable`] (ours, retryable later): no connection,
//!   no answer within the timeout (5 s by default, connect included), any
//!   other status, a body over 64 KiB, malformed JSON, a `conference` that
//!   is not a room address. The reason names the URL and the problem.
//! - `http://` and `https://` (rustls on aws-lc-rs, the system's roots).
//!   Redirects are not followed. One connection per lookup, none kept.
//!
//! [`interpret`] is the sans-IO half (status and body in, outcome out);
//! [`Mapper::resolve`] adds the HTTP request around it.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jid::BareJid;
use serde::{Deserialize, Serialize};

/// How long a lookup may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The path of the sfu's own mapper.
pub const BUILTIN_PATH: &str = "/conference-mapper";

/// The longest PIN sent to a mapper.
pub const MAX_PIN_DIGITS: usize = 20;

/// The largest answer read.
const MAX_BODY: usize = 64 * 1024;

/// A PIN as typed on the keypad: 1 to [`MAX_PIN_DIGITS`] ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pin(String);

impl Pin {
    /// `None` unless `digits` is 1 to [`MAX_PIN_DIGITS`] ASCII digits.
    pub fn new(digits: &str) -> Option<Pin> {
        let ok = !digits.is_empty()
            && digits.len() <= MAX_PIN_DIGITS
            && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Pin(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room's full address, `room@muc-service`: a bare JID with a local part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomAddress(BareJid);

/// Why a text is not a room address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a room address (room@service)")]
pub struct BadRoomAddress(pub String);

impl RoomAddress {
    /// Parses and normalises `room@service` (the `jid` crate's rules).
    pub fn parse(text: &str) -> Result<RoomAddress, BadRoomAddress> {
        let bad = || BadRoomAddress(text.to_owned());
        let jid = BareJid::new(text).map_err(|_| bad())?;
        if jid.node().is_none() {
            return Err(bad());
        }
        Ok(RoomAddress(jid))
    }

    pub fn jid(&self) -> &BareJid {
        &self.0
    }

    /// The local part: the room's name.
    pub fn room(&self) -> &str {
        // Checked in `parse`: every RoomAddress has a local part.
        self.0.node().map_or("", |n| n.as_str())
    }

    /// The MUC service's domain.
    pub fn service(&self) -> &str {
        self.0.domain().as_str()
    }
}

impl FromStr for RoomAddress {
    type Err = BadRoomAddress;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RoomAddress::parse(s)
    }
}

impl fmt::Display for RoomAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a PIN did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapperError {
    /// No meeting has this PIN: the caller's fault, ask again.
    #[error("no meeting has this PIN")]
    NotFound,
    /// The mapper could not answer: ours, retryable later.
    #[error("conference mapper unavailable: {0}")]
    Unavailable(String),
}

impl MapperError {
    /// Whether the same lookup may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MapperError::Unavailable(_))
    }
}

/// Where PINs are resolved. In a config file:
/// `mapper = { kind = "builtin", base_url = "http://127.0.0.1:8080" }` or
/// `mapper = { kind = "external", url = "https://mapper.example/map" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Mapper {
    /// The sfu's own mapper; `base_url` is the sfu's HTTP root.
    Builtin { base_url: String },
    /// A Jitsi-compatible mapper at `url`.
    External { url: String },
}

impl Mapper {
    /// The URL asked for `pin`.
    pub fn request_url(&self, pin: &Pin) -> String {
        match self {
            Mapper::Builtin { base_url } => {
                let base = base_url.trim_end_matches('/');
                format!("{base}{BUILTIN_PATH}?id={pin}")
            }
            Mapper::External { url } => {
                let separator = match url.find('?') {
                    None => "?",
                    Some(_) if url.ends_with('?') || url.ends_with('&') => "",
                    Some(_) => "&",
                };
                format!("{url}{separator}id={pin}")
            }
        }
    }

    /// Resolves `pin`, waiting at most [`DEFAULT_TIMEOUT`].
    pub async fn resolve(&self, pin: &Pin) -> Result<RoomAddress, MapperError> {
        self.resolve_within(pin, DEFAULT_TIMEOUT).await
    }

    /// Resolves `pin`, waiting at most `timeout` (connection included).
    pub async fn resolve_within(
        &self,
        pin: &Pin,
        timeout: Duration,
    ) -> Result<RoomAddress, MapperError> {
        let url = self.request_url(pin);
        let fetch = get(&url);
        let (status, body) = match tokio::time::timeout(timeout, fetch).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(MapperError::Unavailable(format!(
                    "no answer from {url} within {} ms",
                    timeout.as_millis()
                )))
            }
        };
        let outcome = interpret(status, &body, pin).map_err(|e| match e {
            MapperError::Unavailable(why) => MapperError::Unavailable(format!("{url}: {why}")),
            other => other,
        });
        match &outcome {
            Ok(room) => tracing::debug!(%room, "PIN resolved"),
            Err(e) => tracing::info!(error = %e, "PIN not resolved"),
        }
        outcome
    }
}

/// The mapper's JSON answer; other members are ignored.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    conference: Option<String>,
    #[serde(default)]
    id: Option<AnswerId>,
    #[serde(default)]
    message: Option<String>,
}

/// Jitsi's mappers send the PIN as a number, some as a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AnswerId {
    Number(u64),
    Text(String),
}

/// Turns a mapper's answer into the outcome of a lookup for `pin`
/// (sans-IO). `Unavailable` reasons here do not name the URL.
pub fn interpret(status: u16, body: &[u8], pin: &Pin) -> Result<RoomAddress, MapperError> {
    match status {
        200..=299 => {}
        400 | 404 => return Err(MapperError::NotFound),
        _ => {
            let message = serde_json::from_slice::<Answer>(body)
                .ok()
                .and_then(|a| a.message)
                .map(|m| format!(" ({})", m.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(MapperError::Unavailable(format!("HTTP {status}{message}")));
        }
    }
    let malformed = |why: String| MapperError::Unavailable(format!("malformed JSON answer: {why}"));
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(malformed("expected an object".into()));
    }
    let answer = Answer::deserialize(value).map_err(|e| malformed(e.to_string()))?;
    let conference = match answer.conference.as_deref().map(str::trim) {
        None | Some("") => return Err(MapperError::NotFound),
        Some(c) => c,
    };
    let room = RoomAddress::parse(conference)
        .map_err(|e| MapperError::Unavailable(format!("malformed answer: {e}")))?;
    let same = match &answer.id {
        None => true,
        Some(AnswerId::Number(n)) => pin.as_str().parse::<u64>().ok() == Some(*n),
        Some(AnswerId::Text(t)) => t.trim() == pin.as_str(),
    };
    if !same {
        tracing::warn!(id = ?answer.id, "mapper answered for another id than the PIN asked");
    }
    Ok(room)
}

/// GETs `url`: the status and up to [`MAX_BODY`] bytes of body.
async fn get(url: &str) -> Result<(u16, Bytes), MapperError> {
    let unavailable = |why: String| MapperError::Unavailable(format!("{url}: {why}"));
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| unavailable(format!("not a URL: {e}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(unavailable("expected an http:// or https:// URL".into()));
    }
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build::<_, Empty<Bytes>>(connector().map_err(unavailable)?.clone());
    let request = hyper::Request::get(uri)
        .header(hyper::header::ACCEPT, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("gateway/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::new())
        .map_err(|e| unavailable(format!("cannot build the request: {e}")))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| unavailable(chain(&e)))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| unavailable(format!("reading the answer: {}", chain(e.as_ref()))))?
        .to_bytes();
    Ok((status, body))
}

/// An error and its sources, `a: b: c`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// The connector every lookup shares: http, and https with the system's
/// roots (without them https fails at the handshake, http still works).
fn connector() -> Result<&'static HttpsConnector<HttpConnector>, String> {
    static CONNECTOR: OnceLock<Result<HttpsConnector<HttpConnector>, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(build_connector)
        .as_ref()
        .map_err(Clone::clone)
}

fn build_connector() -> Result<HttpsConnector<HttpConnector>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(builder) => builder,
        Err(e) => {
            tracing::warn!(error = %e, "no TLS roots: https mappers will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    Ok(builder.https_or_http().enable_http1().build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    const ROOM: &str = "standup@conference.meet.test";

    fn pin(digits: &str) -> Pin {
        Pin::new(digits).unwrap()
    }

    fn room(text: &str) -> RoomAddress {
        RoomAddress::parse(text).unwrap()
    }

    /// An HTTP/1.1 response with `body`, closing the connection.
    fn canned(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// A server answering every request with `response` (or never, when
    /// `None`); the request heads it read come out of the receiver.
    async fn serve(response: Option<String>) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (heads, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (response, heads) = (response.clone(), heads.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                    match response {
                        Some(r) => {
                            let _ = socket.write_all(r.as_bytes()).await;
                            let _ = socket.shutdown().await;
                        }
                        // Hold the connection open, answering nothing.
                        None => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                });
            }
        });
        (addr, rx)
    }

    fn builtin(addr: SocketAddr) -> Mapper {
        Mapper::Builtin {
            base_url: format!("http://{addr}/"),
        }
    }

    fn unavailable(result: Result<RoomAddress, MapperError>) -> String {
        match result {
            Err(MapperError::Unavailable(why)) => why,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_known_pin_resolves_through_the_builtin_mapper() {
        let body = format!(
            r#"{{"message":"Successfully retrieved conference mapping","id":123456,"conference":"{ROOM}"}}"#
        );
        let (addr, mut heads) = serve(Some(canned("200 OK", &body))).await;
        let got = builtin(addr).resolve(&pin("123456")).await;
        assert_eq!(got, Ok(room(ROOM)));
        let head = heads.recv().await.unwrap();
        assert!(
            head.starts_with("GET /conference-mapper?id=123456 HTTP/1.1\r\n"),
            "{head}"
        );
        let head = head.to_ascii_lowercase();
        assert!(head.contains("accept: application/json"), "{head}");
        assert!(head.contains(&format!("host: {addr}")), "{head}");
    }

    #[tokio::test]
    async fn an_external_mapper_may_send_the_id_as_a_string() {
        let body = format!(r#"{{"message":"ok","id":"0042","conference":"{ROOM}"}}"#);
        let (addr, mut heads) = serve(Some(canned("200 OK", &body))).await;
        let mapper = Mapper::External {
            url: format!("http://{addr}/map?tenant=acme"),
        };
        assert_eq!(mapper.resolve(&pin("0042")).await, Ok(room(ROOM)));
        let head = heads.recv().await.unwrap();
        assert!(
            head.starts_with("GET /map?tenant=acme&id=0042 HTTP/1.1"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn an_unknown_pin_is_not_found() {
        let body = r#"{"message":"no meeting has the PIN 654321"}"#;
        let (addr, _) = serve(Some(canned("404 Not Found", body))).await;
        let got = builtin(addr).resolve(&pin("654321")).await;
        assert_eq!(got, Err(MapperError::NotFound));
        assert!(!MapperError::NotFound.is_retryable());
    }

    #[tokio::test]
    async fn a_server_error_is_unavailable_with_its_status_and_message() {
        let body = r#"{"message":"no dial-in PIN is left on this server"}"#;
        let (addr, _) = serve(Some(canned("503 Service Unavailable", body))).await;
        let why = unavailable(builtin(addr).resolve(&pin("123456")).await);
        assert!(why.contains("HTTP 503"), "{why}");
        assert!(why.contains("no dial-in PIN is left"), "{why}");
        assert!(
            why.contains(&format!("http://{addr}/conference-mapper")),
            "{why}"
        );

        let (addr, _) = serve(Some(canned("500 Internal Server Error", "oops"))).await;
        let got = builtin(addr).resolve(&pin("123456")).await;
        assert!(got.as_ref().is_err_and(MapperError::is_retryable));
        assert!(unavailable(got).contains("HTTP 500"));
    }

    #[tokio::test]
    async fn malformed_json_is_unavailable() {
        let (addr, _) = serve(Some(canned("200 OK", r#"{"conference": "#))).await;
        let why = unavailable(builtin(addr).resolve(&pin("123456")).await);
        assert!(why.contains("malformed JSON"), "{why}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let why = unavailable(builtin(addr).resolve(&pin("123456")).await);
        assert!(why.to_ascii_lowercase().contains("refused"), "{why}");
        assert!(why.contains(&addr.to_string()), "{why}");
    }

    #[tokio::test]
    async fn a_slow_server_times_out() {
        let (addr, mut heads) = serve(None).await;
        let timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let why = unavailable(builtin(addr).resolve_within(&pin("1234"), timeout).await);
        assert!(why.contains("no answer") && why.contains("200 ms"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(heads.recv().await.is_some(), "the request was sent");
    }

    #[tokio::test]
    async fn a_bad_url_is_unavailable_naming_it() {
        for url in ["ftp://mapper.test/map", "not a url", "/relative/map"] {
            let mapper = Mapper::External { url: url.into() };
            let why = unavailable(mapper.resolve(&pin("1234")).await);
            assert!(why.contains(url), "{why}");
        }
    }

    #[test]
    fn answers_are_interpreted_by_status_and_body() {
        let p = pin("123456");
        let ok = |c: &str| Ok(room(c));
        let cases: &[(u16, &str, Result<RoomAddress, MapperError>)] = &[
            (
                200,
                r#"{"id":123456,"conference":"a@muc.test"}"#,
                ok("a@muc.test"),
            ),
            (
                200,
                r#"{"id":"123456","conference":"a@muc.test"}"#,
                ok("a@muc.test"),
            ),
            // Another id is logged, not refused.
            (
                200,
                r#"{"id":1,"conference":"a@muc.test"}"#,
                ok("a@muc.test"),
            ),
            (
                200,
                r#"{"conference":"A@Muc.Test","extra":[1]}"#,
                ok("a@muc.test"),
            ),
            (201, r#"{"conference":" a@muc.test "}"#, ok("a@muc.test")),
            (
                200,
                r#"{"message":"No conference mapping was found","id":123456}"#,
                Err(MapperError::NotFound),
            ),
            (200, r#"{"conference":null}"#, Err(MapperError::NotFound)),
            (200, r#"{"conference":""}"#, Err(MapperError::NotFound)),
            (404, "", Err(MapperError::NotFound)),
            (
                400,
                r#"{"message":"parameter `id`: expected a PIN of 6 digits"}"#,
                Err(MapperError::NotFound),
            ),
        ];
        for (status, body, want) in cases {
            assert_eq!(
                &interpret(*status, body.as_bytes(), &p),
                want,
                "{status} {body}"
            );
        }
        let unavailable_cases = [
            (200, "", "malformed JSON"),
            (200, "[]", "malformed JSON"),
            (200, r#"{"conference":42}"#, "malformed JSON"),
            (
                200,
                r#"{"conference":"standup"}"#,
                "`standup` is not a room address",
            ),
            (
                200,
                r#"{"conference":"a@b@c"}"#,
                "`a@b@c` is not a room address",
            ),
            (
                200,
                r#"{"conference":"a@muc.test/res"}"#,
                "not a room address",
            ),
            (302, "", "HTTP 302"),
            (
                401,
                r#"{"message":"who are you"}"#,
                "HTTP 401 (who are you)",
            ),
            (500, "<html>", "HTTP 500"),
        ];
        for (status, body, named) in unavailable_cases {
            let why = unavailable(interpret(status, body.as_bytes(), &p));
            assert!(why.contains(named), "{status} {body}: {why}");
        }
    }

    #[test]
    fn request_urls_follow_each_mapper_s_shape() {
        let p = pin("987654");
        let cases = [
            (
                builtin_url("http://127.0.0.1:8080"),
                "http://127.0.0.1:8080/conference-mapper?id=987654",
            ),
            (
                builtin_url("http://sfu.test/"),
                "http://sfu.test/conference-mapper?id=987654",
            ),
            (
                external("https://m.test/map"),
                "https://m.test/map?id=987654",
            ),
            (
                external("https://m.test/map?a=b"),
                "https://m.test/map?a=b&id=987654",
            ),
            (
                external("https://m.test/map?"),
                "https://m.test/map?id=987654",
            ),
            (
                external("https://m.test/map?a=b&"),
                "https://m.test/map?a=b&id=987654",
            ),
        ];
        for (mapper, want) in cases {
            assert_eq!(mapper.request_url(&p), want);
        }
    }

    fn builtin_url(base: &str) -> Mapper {
        Mapper::Builtin {
            base_url: base.into(),
        }
    }

    fn external(url: &str) -> Mapper {
        Mapper::External { url: url.into() }
    }

    #[test]
    fn pins_are_digits_only() {
        assert_eq!(pin("0123").as_str(), "0123");
        assert_eq!(
            pin(&"9".repeat(MAX_PIN_DIGITS)).to_string().len(),
            MAX_PIN_DIGITS
        );
        for bad in [
            "",
            "12a4",
            "12 34",
            "+1234",
            "１２３４",
            "12#",
            &"1".repeat(21),
        ] {
            assert_eq!(Pin::new(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn room_addresses_are_bare_jids_with_a_room() {
        let r = room("Standup@Conference.Meet.Test");
        assert_eq!(r.to_string(), "standup@conference.meet.test");
        assert_eq!((r.room(), r.service()), ("standup", "conference.meet.test"));
        assert_eq!(r.jid().to_string(), r.to_string());
        assert_eq!("a@b.test".parse::<RoomAddress>(), Ok(room("a@b.test")));
        for bad in ["", "standup", "conference.meet.test", "a@b/c", "@b", "a@"] {
            assert_eq!(
                RoomAddress::parse(bad),
                Err(BadRoomAddress(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(
            BadRoomAddress("standup".into()).to_string(),
            "`standup` is not a room address (room@service)"
        );
    }

    #[test]
    fn the_mapper_is_configured_by_kind() {
        let b: Mapper =
            serde_json::from_str(r#"{"kind":"builtin","base_url":"http://127.0.0.1:8080"}"#)
                .unwrap();
        assert_eq!(b, builtin_url("http://127.0.0.1:8080"));
        let e: Mapper =
            serde_json::from_str(r#"{"kind":"external","url":"https://m.test"}"#).unwrap();
        assert_eq!(e, external("https://m.test"));
        for bad in [
            r#"{"kind":"builtin","url":"http://x"}"#,
            r#"{"kind":"builtin","base_url":"http://x","extra":1}"#,
            r#"{"kind":"jitsi","url":"http://x"}"#,
        ] {
            assert!(serde_json::from_str::<Mapper>(bad).is_err(), "{bad}");
        }
    }
}
