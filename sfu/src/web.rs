//! The meeting page's files: `[http] web_root` served as static files.
//!
//! Contract: a request path names a file under the root (content type from
//! its extension, conditional and range requests answered); `/` and a
//! folder serve the folder's `index.html`; a path that leaves the root
//! (`..`, absolute components) never reaches the file system. A single
//! path segment that is no file (`/standup`) serves the root's
//! `index.html`, 200: the page reads the room from its URL. Anything else
//! missing is 404. Folders are never listed. The routes of the other
//! modules (`/health`, `/metrics`, `/colibri-ws/..`, `/xmpp-websocket`)
//! come first: this is the router's fallback.
//!
//! `/config.json` ([`PageConfig`]) tells the page what it cannot read from
//! its URL: the XMPP domain to sign in to, the MUC service and the focus;
//! and, only when `[dial_in] numbers` are configured, `dialIn.numbers`, the
//! phone numbers to show (the room's PIN comes from `/conference-mapper`).

use std::path::{Path, PathBuf};

use axum::extract::Request;
use axum::handler::HandlerWithoutStateExt;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

/// The page is built when its root holds an `index.html`.
pub fn built(root: &Path) -> bool {
    root.join("index.html").is_file()
}

/// A router with no routes whose fallback serves `root`: merged last, it
/// answers every path no other route claims.
pub fn router(root: PathBuf) -> Router {
    let index = ServeFile::new(root.join("index.html"));
    let room_page = move |req: Request| {
        let mut index = index.clone();
        async move {
            if !is_room_path(req.uri().path()) {
                return StatusCode::NOT_FOUND.into_response();
            }
            match index.try_call(req).await {
                Ok(res) => res.into_response(),
                Err(e) => {
                    tracing::warn!("meeting page: reading index.html: {e}");
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            }
        }
    };
    Router::new().fallback_service(ServeDir::new(root).fallback(room_page.into_service()))
}

/// What the page needs to join a meeting, served as `/config.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    /// The participants' XMPP domain (anonymous or token sign-in).
    pub domain: String,
    /// The conference MUC service (`conference.<domain>`).
    pub muc: String,
    /// The focus's full JID, where the conference request goes.
    pub focus: String,
    /// Dial-in phone numbers to show; empty: no `dialIn` field.
    pub dial_in_numbers: Vec<String>,
}

impl PageConfig {
    /// The JSON text the page reads.
    pub fn to_json(&self) -> String {
        let mut config = serde_json::json!({
            "domain": self.domain,
            "muc": self.muc,
            "focus": self.focus,
        });
        if !self.dial_in_numbers.is_empty() {
            config["dialIn"] = serde_json::json!({ "numbers": self.dial_in_numbers });
        }
        config.to_string()
    }
}

/// `GET /config.json`: `config` as JSON, never cached.
pub fn config_router(config: &PageConfig) -> Router {
    let body = config.to_json();
    Router::new().route(
        "/config.json",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [
                        (axum::http::header::CONTENT_TYPE, "application/json"),
                        (axum::http::header::CACHE_CONTROL, "no-store"),
                    ],
                    body,
                )
            }
        }),
    )
}

/// `/<one segment>`: a room's address rather than a file's.
fn is_room_path(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_config_is_json() {
        let c = PageConfig {
            domain: "meet.test".into(),
            muc: "conference.meet.test".into(),
            focus: "focus@auth.meet.test/focus".into(),
            dial_in_numbers: vec![],
        };
        let v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(v["domain"], "meet.test");
        assert_eq!(v["muc"], "conference.meet.test");
        assert_eq!(v["focus"], "focus@auth.meet.test/focus");
        assert!(v.get("dialIn").is_none(), "no numbers, no dialIn: {v}");
    }

    #[test]
    fn dial_in_numbers_are_in_the_page_config_when_configured() {
        let c = PageConfig {
            domain: "meet.test".into(),
            muc: "conference.meet.test".into(),
            focus: "focus@auth.meet.test/focus".into(),
            dial_in_numbers: vec!["+1 555 0100".into(), "+44 20 7946 0000".into()],
        };
        let v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(
            v["dialIn"],
            serde_json::json!({"numbers": ["+1 555 0100", "+44 20 7946 0000"]})
        );
        assert_eq!(v["domain"], "meet.test", "the other fields stay");
    }

    #[test]
    fn a_room_path_is_one_segment() {
        for (path, room) in [
            ("/standup", true),
            ("/standup.2024", true),
            ("/", false),
            ("/a/b", false),
            ("/standup/", false),
            ("", false),
        ] {
            assert_eq!(is_room_path(path), room, "{path}");
        }
    }
}
