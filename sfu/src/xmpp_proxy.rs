//! `/xmpp-websocket`: the meeting page's way to Prosody. XMPP over
//! WebSocket (RFC 7395) relayed to Prosody's own WebSocket endpoint, so
//! that the page needs nothing but the sfu's origin.
//!
//! Contract: the browser must offer the `xmpp` subprotocol (400 otherwise,
//! as RFC 7395 has no stream without it); the answer echoes it. The sfu
//! then opens a WebSocket to `[http] xmpp_websocket`, asking for `xmpp`,
//! with the browser's query string appended (never logged: tokens may
//! travel there). Text and binary messages are relayed unchanged both ways;
//! pings are answered by each side's library and not relayed. A close frame
//! from either side is passed to the other, both close handshakes are given
//! [`CLOSE_TIMEOUT`] to finish, and the relay ends. When Prosody cannot be
//! reached (or refuses the upgrade, or drops the connection) the browser
//! gets a close frame with code 1013 (try again later: a service fault,
//! worth retrying) and a reason, and a warning is logged. The XML is not looked
//! at: Prosody does the XMPP.
//!
//! `/metrics` shows `sfu_xmpp_websocket_connections` (relays open),
//! `sfu_xmpp_websocket_connections_total` and
//! `sfu_xmpp_websocket_failures_total` (Prosody unreachable).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self as tung, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::http::Status;

/// Where browsers connect.
pub const PATH: &str = "/xmpp-websocket";
/// RFC 7395's subprotocol.
const PROTOCOL: &str = "xmpp";
/// How long opening the WebSocket to Prosody may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each side has to answer a close frame.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Close code "try again later" (IANA WebSocket close code registry): the
/// service cannot serve now; the client may retry. (1014 "bad gateway"
/// fits better but clients refuse it: tungstenite treats it as a protocol
/// violation.)
pub const TRY_AGAIN_LATER: u16 = 1013;

type Upstream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why the WebSocket to Prosody could not be opened. All are ours (the
/// service's), not the browser's, and worth retrying.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the upgrade was refused: HTTP {0}")]
    Refused(StatusCode),
    #[error("{0}")]
    Failed(tung::Error),
}

impl ConnectError {
    /// The reason the browser reads in the close frame.
    fn reason(&self) -> &'static str {
        match self {
            ConnectError::Refused(_) => "XMPP server refused the WebSocket",
            ConnectError::Timeout(_) | ConnectError::Failed(_) => "XMPP server unreachable",
        }
    }
}

struct Proxy {
    /// Prosody's WebSocket URL, without the browser's query.
    upstream: String,
    status: Arc<Status>,
}

/// The `/xmpp-websocket` route, relaying to `upstream` (a `ws://` URL).
pub fn router(upstream: String, status: Arc<Status>) -> Router {
    Router::new()
        .route(PATH, get(upgrade))
        .with_state(Arc::new(Proxy { upstream, status }))
}

async fn upgrade(
    State(proxy): State<Arc<Proxy>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols([PROTOCOL]);
    if ws.selected_protocol().is_none() {
        return (
            StatusCode::BAD_REQUEST,
            "XMPP over WebSocket needs Sec-WebSocket-Protocol: xmpp (RFC 7395)\n",
        )
            .into_response();
    }
    let url = match query {
        Some(q) if !q.is_empty() => {
            let sep = if proxy.upstream.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{sep}{q}", proxy.upstream)
        }
        _ => proxy.upstream.clone(),
    };
    ws.on_upgrade(move |browser| proxy.relay(browser, url))
}

impl Proxy {
    async fn relay(self: Arc<Self>, mut browser: WebSocket, url: String) {
        let upstream = match connect(&url).await {
            Ok(upstream) => upstream,
            Err(e) => {
                self.status
                    .xmpp_websocket_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(upstream = %self.upstream, "xmpp websocket: {}: {e}", e.reason());
                let _ = browser.send(close(TRY_AGAIN_LATER, e.reason())).await;
                drain(&mut browser).await;
                return;
            }
        };
        let _open = Open::new(&self.status);
        tracing::debug!(upstream = %self.upstream, "xmpp websocket: relaying");
        let ended = pump(browser, upstream).await;
        tracing::debug!("xmpp websocket: {ended}");
    }
}

/// Opens the WebSocket to Prosody with the `xmpp` subprotocol.
async fn connect(url: &str) -> Result<Upstream, ConnectError> {
    let mut request = url.into_client_request().map_err(ConnectError::Failed)?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
    let connecting = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Err(ConnectError::Timeout(CONNECT_TIMEOUT)),
        Ok(Ok((upstream, _))) => Ok(upstream),
        Ok(Err(tung::Error::Http(response))) => Err(ConnectError::Refused(response.status())),
        Ok(Err(e)) => Err(ConnectError::Failed(e)),
    }
}

/// Relays until either side closes or fails; says how it ended.
async fn pump(mut browser: WebSocket, mut upstream: Upstream) -> &'static str {
    loop {
        tokio::select! {
            got = browser.recv() => match got {
                Some(Ok(ws::Message::Close(frame))) => {
                    let frame = frame.map(|f| tung::protocol::CloseFrame {
                        code: f.code.into(),
                        reason: f.reason.as_str().into(),
                    });
                    let _ = upstream.send(tung::Message::Close(frame)).await;
                    finish(&mut browser, &mut upstream).await;
                    return "the browser closed";
                }
                Some(Ok(message)) => {
                    let Some(message) = to_upstream(message) else { continue };
                    if upstream.send(message).await.is_err() {
                        let _ = browser.send(close(TRY_AGAIN_LATER, "connection to the XMPP server lost")).await;
                        drain(&mut browser).await;
                        return "sending to the XMPP server failed";
                    }
                }
                None | Some(Err(_)) => {
                    let _ = upstream.close(None).await;
                    drain(&mut upstream).await;
                    return "the browser went away";
                }
            },
            got = upstream.next() => match got {
                Some(Ok(tung::Message::Close(frame))) => {
                    let frame = frame.map(|f| ws::CloseFrame {
                        code: f.code.into(),
                        reason: f.reason.as_str().into(),
                    });
                    let _ = browser.send(ws::Message::Close(frame)).await;
                    finish(&mut browser, &mut upstream).await;
                    return "the XMPP server closed";
                }
                Some(Ok(message)) => {
                    let Some(message) = to_browser(message) else { continue };
                    if browser.send(message).await.is_err() {
                        let _ = upstream.close(None).await;
                        drain(&mut upstream).await;
                        return "the browser went away";
                    }
                }
                None | Some(Err(_)) => {
                    let _ = browser.send(close(TRY_AGAIN_LATER, "connection to the XMPP server lost")).await;
                    drain(&mut browser).await;
                    return "the XMPP server went away";
                }
            },
        }
    }
}

fn to_upstream(message: ws::Message) -> Option<tung::Message> {
    match message {
        ws::Message::Text(text) => Some(tung::Message::text(text.as_str())),
        ws::Message::Binary(data) => Some(tung::Message::Binary(data)),
        ws::Message::Ping(_) | ws::Message::Pong(_) | ws::Message::Close(_) => None,
    }
}

fn to_browser(message: tung::Message) -> Option<ws::Message> {
    match message {
        tung::Message::Text(text) => Some(ws::Message::text(text.as_str())),
        tung::Message::Binary(data) => Some(ws::Message::Binary(data)),
        _ => None,
    }
}

fn close(code: u16, reason: &'static str) -> ws::Message {
    ws::Message::Close(Some(ws::CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// After a close frame went both ways: lets both close handshakes finish.
async fn finish(browser: &mut WebSocket, upstream: &mut Upstream) {
    futures::join!(drain(browser), drain(upstream));
}

/// Reads (and drops) until the peer's close arrives or the socket ends, for
/// at most [`CLOSE_TIMEOUT`]; reading also sends any queued close reply.
async fn drain<S, T, E>(socket: &mut S)
where
    S: Stream<Item = Result<T, E>> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

/// One open relay in the figures; drop to count it closed.
struct Open<'a>(&'a Status);

impl<'a> Open<'a> {
    fn new(status: &'a Status) -> Self {
        status.xmpp_websocket_open.fetch_add(1, Ordering::Relaxed);
        status.xmpp_websocket_total.fetch_add(1, Ordering::Relaxed);
        Open(status)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.xmpp_websocket_open.fetch_sub(1, Ordering::Relaxed);
    }
}
