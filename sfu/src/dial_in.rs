//! Dial-in PINs: the conference mapper. The SIP gateway turns a PIN typed
//! on a phone's keypad into a room; the meeting page shows a room's PIN
//! beside the dial-in numbers (`[dial_in] numbers`, in `/config.json`).
//!
//! Contract (`GET /conference-mapper`, the shape of Jitsi's mapper):
//! - `?conference=<room>@<muc>` answers 200
//!   `{"message":"Successfully retrieved conference mapping","id":<pin>,"conference":"<room>@<muc>"}`,
//!   `id` a JSON number. The first request for a room issues its PIN; later
//!   ones give the same PIN. A room is lowercase `[a-z0-9._-]` (1 to 1023
//!   bytes) at exactly the configured MUC service; the room need not exist
//!   (the gateway joins it as any participant would).
//! - `?id=<pin>` answers the same shape for a PIN issued here, else 404.
//! - A missing parameter, both at once, or a malformed one answers 400; a
//!   full PIN table 503. Every error body is `{"message":"…"}` naming the
//!   parameter where one is at fault.
//! - A PIN has exactly `pin_digits` digits, no leading zero, is drawn from
//!   the OS's random source (a PIN lets a caller into a meeting: it must not
//!   be guessable from others) and is unique among the PINs issued.
//! - The table lives in memory for the life of the process (a restart issues
//!   new PINs). It holds at most half the PIN space (so a free PIN is found
//!   in two draws on average) and at most [`MAX_ROOMS`] rooms.
//! - The mapper is served whether or not dial-in numbers are configured: a
//!   gateway may take PINs on numbers this server does not advertise.
//!
//! [`Pins`] is the sans-IO table (randomness passed in); [`router`] is the
//! thin HTTP side around it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rand::{RngCore, SeedableRng};
use serde::Deserialize;

/// The path the mapper answers at.
pub const PATH: &str = "/conference-mapper";

/// Rooms the table holds at most, whatever the PIN length.
pub const MAX_ROOMS: usize = 100_000;

/// Random draws for one PIN before giving up (with the table at most half
/// full, 64 collisions in a row have odds of 2^-64).
const MAX_DRAWS: usize = 64;

/// A room's longest name (an XMPP local part).
const MAX_ROOM_BYTES: usize = 1023;

/// The `/conference-mapper` query. Other parameters are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MapperQuery {
    pub conference: Option<String>,
    pub id: Option<String>,
}

/// A room and its PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub id: u64,
    pub conference: String,
}

/// Why a lookup failed: the caller's fault (4xx) or a full table (503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("missing parameter: give `conference` (room@{muc}) or `id` (a PIN)")]
    Missing { muc: String },
    #[error("give either `conference` or `id`, not both")]
    Both,
    #[error(
        "parameter `conference`: expected room@{muc}, the room in lowercase letters, \
         digits, '.', '_' or '-'"
    )]
    BadConference { muc: String },
    #[error("parameter `id`: expected a PIN of {digits} digits")]
    BadId { digits: u32 },
    #[error("no meeting has the PIN {0}")]
    UnknownPin(u64),
    #[error("no dial-in PIN is left on this server")]
    Full,
}

impl LookupError {
    /// The HTTP status that answers it.
    pub fn status(&self) -> StatusCode {
        match self {
            LookupError::UnknownPin(_) => StatusCode::NOT_FOUND,
            LookupError::Full => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The PIN table, sans-IO: rooms to PINs and back.
#[derive(Debug, Clone)]
pub struct Pins {
    muc_service: String,
    digits: u32,
    by_room: HashMap<String, u64>,
    by_pin: HashMap<u64, String>,
}

impl Pins {
    /// A table for rooms on `muc_service`, with PINs of `digits` digits
    /// (clamped to [`crate::config::PIN_DIGITS`]; the config validates it).
    pub fn new(muc_service: impl Into<String>, digits: u32) -> Pins {
        let range = crate::config::PIN_DIGITS;
        Pins {
            muc_service: muc_service.into(),
            digits: digits.clamp(*range.start(), *range.end()),
            by_room: HashMap::new(),
            by_pin: HashMap::new(),
        }
    }

    /// Rooms with a PIN.
    pub fn len(&self) -> usize {
        self.by_room.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_room.is_empty()
    }

    /// How many rooms the table takes.
    pub fn capacity(&self) -> usize {
        let (lo, hi) = self.bounds();
        usize::try_from((hi - lo) / 2).map_or(MAX_ROOMS, |half| half.min(MAX_ROOMS))
    }

    /// Answers a query: a room's PIN (issued on first use) or a PIN's room.
    pub fn lookup<R: RngCore + ?Sized>(
        &mut self,
        query: &MapperQuery,
        rng: &mut R,
    ) -> Result<Mapping, LookupError> {
        match (&query.conference, &query.id) {
            (Some(_), Some(_)) => Err(LookupError::Both),
            (Some(conference), None) => self.pin_for(conference, rng).map(|id| Mapping {
                id,
                conference: conference.clone(),
            }),
            (None, Some(id)) => {
                let pin = self.parse_pin(id)?;
                let conference = self.by_pin.get(&pin).ok_or(LookupError::UnknownPin(pin))?;
                Ok(Mapping {
                    id: pin,
                    conference: conference.clone(),
                })
            }
            (None, None) => Err(LookupError::Missing {
                muc: self.muc_service.clone(),
            }),
        }
    }

    /// The PIN of `conference` (`room@muc`), issued now if it has none.
    pub fn pin_for<R: RngCore + ?Sized>(
        &mut self,
        conference: &str,
        rng: &mut R,
    ) -> Result<u64, LookupError> {
        if !self.is_room(conference) {
            return Err(LookupError::BadConference {
                muc: self.muc_service.clone(),
            });
        }
        if let Some(pin) = self.by_room.get(conference) {
            return Ok(*pin);
        }
        if self.by_room.len() >= self.capacity() {
            tracing::warn!(rooms = self.by_room.len(), "dial-in PIN table is full");
            return Err(LookupError::Full);
        }
        let (lo, hi) = self.bounds();
        let free = (0..MAX_DRAWS)
            // The modulo's bias is below 1e-9 for spans up to 10^10.
            .map(|_| lo + rng.next_u64() % (hi - lo))
            .find(|pin| !self.by_pin.contains_key(pin))
            .ok_or(LookupError::Full)?;
        self.by_room.insert(conference.to_owned(), free);
        self.by_pin.insert(free, conference.to_owned());
        tracing::info!(%conference, rooms = self.by_room.len(), "dial-in PIN issued");
        Ok(free)
    }

    /// The room a PIN was issued to.
    pub fn room_for(&self, pin: u64) -> Option<&str> {
        self.by_pin.get(&pin).map(String::as_str)
    }

    /// PINs are in `lo..hi`: exactly `digits` digits, no leading zero.
    fn bounds(&self) -> (u64, u64) {
        (10u64.pow(self.digits - 1), 10u64.pow(self.digits))
    }

    fn parse_pin(&self, id: &str) -> Result<u64, LookupError> {
        let well_formed = id.len() == self.digits as usize
            && id.bytes().all(|b| b.is_ascii_digit())
            && !id.starts_with('0');
        well_formed
            .then(|| id.parse().ok())
            .flatten()
            .ok_or(LookupError::BadId {
                digits: self.digits,
            })
    }

    /// `room@<muc_service>`, the room lowercase `[a-z0-9._-]`.
    fn is_room(&self, conference: &str) -> bool {
        let Some((room, service)) = conference.split_once('@') else {
            return false;
        };
        service == self.muc_service
            && !room.is_empty()
            && room.len() <= MAX_ROOM_BYTES
            && room
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
    }
}

/// The shared table behind the HTTP handler, with its random source.
#[derive(Debug, Clone)]
pub struct Mapper {
    inner: Arc<Mutex<(Pins, rand::rngs::StdRng)>>,
}

impl Mapper {
    /// A mapper for rooms on `muc_service`, seeded from the OS.
    pub fn new(muc_service: impl Into<String>, pin_digits: u32) -> Mapper {
        let rng = rand::rngs::StdRng::from_os_rng();
        Mapper {
            inner: Arc::new(Mutex::new((Pins::new(muc_service, pin_digits), rng))),
        }
    }

    fn lookup(&self, query: &MapperQuery) -> Result<Mapping, LookupError> {
        // The table stays consistent even if a holder panicked: every
        // change is two inserts after all checks.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (pins, rng) = &mut *guard;
        pins.lookup(query, rng)
    }
}

/// `GET /conference-mapper`.
pub fn router(mapper: Mapper) -> Router {
    Router::new()
        .route(PATH, get(conference_mapper))
        .with_state(mapper)
}

async fn conference_mapper(
    State(mapper): State<Mapper>,
    query: Result<Query<MapperQuery>, QueryRejection>,
) -> Response {
    let answer = match query {
        Ok(Query(q)) => mapper.lookup(&q).map_err(|e| (e.status(), e.to_string())),
        Err(e) => Err((StatusCode::BAD_REQUEST, format!("malformed query: {e}"))),
    };
    let (status, body) = match answer {
        Ok(m) => (
            StatusCode::OK,
            serde_json::json!({
                "message": "Successfully retrieved conference mapping",
                "id": m.id,
                "conference": m.conference,
            }),
        ),
        Err((status, message)) => (status, serde_json::json!({ "message": message })),
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;

    const MUC: &str = "conference.meet.test";

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn by_room(room: &str) -> MapperQuery {
        MapperQuery {
            conference: Some(room.into()),
            id: None,
        }
    }

    fn by_id(id: &str) -> MapperQuery {
        MapperQuery {
            conference: None,
            id: Some(id.into()),
        }
    }

    #[test]
    fn a_room_keeps_its_pin() {
        let (mut pins, mut rng) = (Pins::new(MUC, 6), rng());
        let first = pins
            .pin_for("standup@conference.meet.test", &mut rng)
            .unwrap();
        for _ in 0..3 {
            let again = pins.lookup(&by_room("standup@conference.meet.test"), &mut rng);
            assert_eq!(
                again,
                Ok(Mapping {
                    id: first,
                    conference: "standup@conference.meet.test".into()
                })
            );
        }
        assert_eq!(pins.len(), 1);
    }

    #[test]
    fn distinct_rooms_get_distinct_pins() {
        let (mut pins, mut rng) = (Pins::new(MUC, 4), rng());
        let issued: std::collections::HashSet<u64> = (0..2000)
            .map(|i| pins.pin_for(&format!("room-{i}@{MUC}"), &mut rng).unwrap())
            .collect();
        assert_eq!(issued.len(), 2000, "no PIN issued twice");
        assert_eq!(pins.len(), 2000);
    }

    #[test]
    fn pins_have_exactly_the_configured_digits_and_no_leading_zero() {
        for digits in crate::config::PIN_DIGITS {
            let (mut pins, mut rng) = (Pins::new(MUC, digits), rng());
            for i in 0..200 {
                let pin = pins.pin_for(&format!("r{i}@{MUC}"), &mut rng).unwrap();
                let text = pin.to_string();
                assert_eq!(text.len(), digits as usize, "{pin}");
                assert!(!text.starts_with('0'));
            }
        }
    }

    #[test]
    fn a_pin_leads_back_to_its_room() {
        let (mut pins, mut rng) = (Pins::new(MUC, 6), rng());
        let a = pins.pin_for(&format!("a@{MUC}"), &mut rng).unwrap();
        let b = pins.pin_for(&format!("b.c_d-9@{MUC}"), &mut rng).unwrap();
        assert_eq!(pins.room_for(a), Some("a@conference.meet.test"));
        let m = pins.lookup(&by_id(&b.to_string()), &mut rng).unwrap();
        assert_eq!(
            (m.id, m.conference.as_str()),
            (b, "b.c_d-9@conference.meet.test")
        );
        let unknown = (100_000..).find(|p| *p != a && *p != b).unwrap();
        assert_eq!(
            pins.lookup(&by_id(&unknown.to_string()), &mut rng),
            Err(LookupError::UnknownPin(unknown))
        );
        assert_eq!(LookupError::UnknownPin(1).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn malformed_input_is_refused_naming_the_parameter() {
        let (mut pins, mut rng) = (Pins::new(MUC, 6), rng());
        let bad_conference = LookupError::BadConference { muc: MUC.into() };
        let bad_id = LookupError::BadId { digits: 6 };
        let cases = [
            (
                MapperQuery::default(),
                LookupError::Missing { muc: MUC.into() },
            ),
            (
                MapperQuery {
                    conference: Some(format!("a@{MUC}")),
                    id: Some("123456".into()),
                },
                LookupError::Both,
            ),
            (by_room(""), bad_conference.clone()),
            (by_room("standup"), bad_conference.clone()),
            (by_room(&format!("@{MUC}")), bad_conference.clone()),
            (by_room(&format!("Standup@{MUC}")), bad_conference.clone()),
            (by_room(&format!("stand up@{MUC}")), bad_conference.clone()),
            (by_room(&format!("a/b@{MUC}")), bad_conference.clone()),
            (by_room(&format!("a@b@{MUC}")), bad_conference.clone()),
            (
                by_room("standup@conference.elsewhere.test"),
                bad_conference.clone(),
            ),
            (
                by_room(&format!("{}@{MUC}", "a".repeat(1024))),
                bad_conference,
            ),
            (by_id(""), bad_id.clone()),
            (by_id("12345"), bad_id.clone()),
            (by_id("1234567"), bad_id.clone()),
            (by_id("012345"), bad_id.clone()),
            (by_id("12345a"), bad_id.clone()),
            (by_id("+12345"), bad_id.clone()),
            (by_id("１２３４５６"), bad_id),
        ];
        for (query, want) in cases {
            let got = pins.lookup(&query, &mut rng);
            assert_eq!(got.as_ref(), Err(&want), "{query:?}");
            assert_eq!(want.status(), StatusCode::BAD_REQUEST, "{query:?}");
        }
        assert!(pins.is_empty(), "nothing issued for malformed rooms");
        let texts = [
            LookupError::Missing { muc: MUC.into() }.to_string(),
            LookupError::BadConference { muc: MUC.into() }.to_string(),
            LookupError::BadId { digits: 6 }.to_string(),
        ];
        assert!(texts[0].contains("`conference`") && texts[0].contains("`id`"));
        assert!(
            texts[1].starts_with("parameter `conference`"),
            "{}",
            texts[1]
        );
        assert_eq!(texts[2], "parameter `id`: expected a PIN of 6 digits");
    }

    #[test]
    fn the_table_is_bounded_to_half_the_pin_space() {
        let (mut pins, mut rng) = (Pins::new(MUC, 4), rng());
        assert_eq!(pins.capacity(), 4500);
        for i in 0..4500 {
            pins.pin_for(&format!("r{i}@{MUC}"), &mut rng).unwrap();
        }
        let full = pins.pin_for(&format!("one-more@{MUC}"), &mut rng);
        assert_eq!(full, Err(LookupError::Full));
        assert_eq!(LookupError::Full.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Rooms that have a PIN still get it.
        assert!(pins.pin_for(&format!("r0@{MUC}"), &mut rng).is_ok());
        assert_eq!(Pins::new(MUC, 10).capacity(), MAX_ROOMS);
    }

    /// A random source stuck on one value.
    struct Stuck;

    impl RngCore for Stuck {
        fn next_u32(&mut self) -> u32 {
            7
        }
        fn next_u64(&mut self) -> u64 {
            7
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(7);
        }
    }

    #[test]
    fn a_stuck_random_source_fails_instead_of_looping() {
        let mut pins = Pins::new(MUC, 6);
        let first = pins.pin_for(&format!("a@{MUC}"), &mut Stuck).unwrap();
        assert_eq!(first, 100_007);
        assert_eq!(
            pins.pin_for(&format!("b@{MUC}"), &mut Stuck),
            Err(LookupError::Full)
        );
        assert_eq!(pins.len(), 1);
    }

    /// `GET path` on `addr`, read raw: the status and the JSON body.
    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, serde_json::Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut raw))
            .await
            .expect("an answer in time")
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete head");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, head.to_ascii_lowercase(), json)
    }

    #[tokio::test]
    async fn the_mapper_answers_over_http_through_the_sfu_router() {
        mapper_over_http(None).await;
    }

    /// With the page served, `/conference-mapper` is still the mapper, not
    /// a room's `index.html`.
    #[tokio::test]
    async fn the_mapper_wins_over_the_page_s_room_paths() {
        let root = std::env::temp_dir().join(format!("sfu-dial-in-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), "<!doctype html>").unwrap();
        mapper_over_http(Some(root.clone())).await;
        let _ = std::fs::remove_dir_all(root);
    }

    async fn mapper_over_http(page: Option<std::path::PathBuf>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = crate::http::Status::new("test".into());
        let app = crate::http::router(status, page, Mapper::new(MUC, 6));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let room = "conference-mapper?conference=standup%40conference.meet.test";
        let (code, head, v) = get(addr, &format!("/{room}")).await;
        assert_eq!(code, 200, "{v}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("cache-control: no-store"), "{head}");
        assert_eq!(v["message"], "Successfully retrieved conference mapping");
        assert_eq!(v["conference"], "standup@conference.meet.test");
        let pin = v["id"].as_u64().expect("the PIN is a JSON number");
        assert_eq!(pin.to_string().len(), 6);
        // The same PIN again, and the way back.
        assert_eq!(get(addr, &format!("/{room}")).await.2, v);
        assert_eq!(get(addr, &format!("{PATH}?id={pin}")).await.2, v);

        let unknown = if pin == 100_000 { 100_001 } else { 100_000 };
        let (code, _, v) = get(addr, &format!("{PATH}?id={unknown}")).await;
        assert_eq!(code, 404);
        assert_eq!(v["message"], format!("no meeting has the PIN {unknown}"));
        for (query, named) in [
            ("", "`conference`"),
            ("?id=12", "`id`"),
            ("?conference=standup", "`conference`"),
            ("?conference=a%40elsewhere.test", "`conference`"),
        ] {
            let (code, _, v) = get(addr, &format!("{PATH}{query}")).await;
            assert_eq!(code, 400, "{query}");
            let message = v["message"].as_str().unwrap();
            assert!(message.contains(named), "{query}: {message}");
        }
        server.abort();
    }
}
