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

use std::path::{Path, PathBuf};

use axum::extract::Request;
use axum::handler::HandlerWithoutStateExt;
use axum::http::StatusCode;
use axum::response::IntoResponse;
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

/// `/<one segment>`: a room's address rather than a file's.
fn is_room_path(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

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
