//! The bridge channel (Jitsi's colibri-ws): one WebSocket per participant at
//! `/colibri-ws/<server-id>/<conference>/<endpoint>?pwd=<token>`, the URL the
//! focus puts in the `<web-socket>` element of the Jingle transport.
//!
//! [`Channels`] is shared between the HTTP server and the media plane. The
//! focus registers each endpoint with its token ([`Channels::expect`]); a
//! socket with an unknown endpoint or a wrong token is refused (403). On
//! connect the bridge says `ServerHello`. Text frames are parsed as
//! [`BridgeMessage`]s: `EndpointMessage`s are relayed (to one endpoint of the
//! same conference, or to all when `to` is empty) with `from` added; the rest
//! go to the media plane through [`Channels::take_inbound`]. A frame that
//! does not parse is logged and dropped; the socket stays up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use proto::bridge_channel::{BridgeMessage, ServerHello};
use serde::Deserialize;
use tokio::sync::mpsc;

/// Something a participant said to the bridge.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub conference: String,
    pub endpoint: String,
    pub message: BridgeMessage,
}

#[derive(Debug)]
struct Endpoint {
    conference: String,
    /// `None` until the focus registers the endpoint: nobody may connect.
    token: Option<String>,
    tx: Option<mpsc::UnboundedSender<String>>,
    /// Messages sent before the socket opened, the latest of each class,
    /// delivered (after `ServerHello`) when it opens.
    pending: Vec<(&'static str, String)>,
}

impl Endpoint {
    fn unregistered() -> Self {
        Endpoint {
            conference: String::new(),
            token: None,
            tx: None,
            pending: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    endpoints: HashMap<String, Endpoint>,
    inbound_tx: mpsc::UnboundedSender<Inbound>,
    inbound_rx: Option<mpsc::UnboundedReceiver<Inbound>>,
}

/// The registry of bridge-channel sockets. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Channels {
    inner: Arc<Mutex<Inner>>,
    server_id: String,
}

#[derive(Debug, Deserialize)]
struct Pwd {
    pwd: Option<String>,
}

impl Channels {
    pub fn new(server_id: impl Into<String>) -> Self {
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        Channels {
            inner: Arc::new(Mutex::new(Inner {
                endpoints: HashMap::new(),
                inbound_tx,
                inbound_rx: Some(inbound_rx),
            })),
            server_id: server_id.into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every update is a single insert or remove), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The path part of an endpoint's URL (prefix it with the public base).
    pub fn path(&self, conference: &str, endpoint: &str, token: &str) -> String {
        format!(
            "/colibri-ws/{}/{}/{}?pwd={}",
            self.server_id,
            enc(conference),
            enc(endpoint),
            enc(token)
        )
    }

    /// Allows `endpoint` of `conference` to connect with `token`.
    pub fn expect(&self, conference: &str, endpoint: &str, token: &str) {
        let mut inner = self.lock();
        let e = inner
            .endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(Endpoint::unregistered);
        e.conference = conference.to_owned();
        e.token = Some(token.to_owned());
    }

    /// Forgets an endpoint and closes its socket.
    pub fn remove(&self, endpoint: &str) {
        self.lock().endpoints.remove(endpoint);
    }

    /// The receiver of inbound messages (once; the media plane owns it).
    pub fn take_inbound(&self) -> Option<mpsc::UnboundedReceiver<Inbound>> {
        self.lock().inbound_rx.take()
    }

    /// Sends a message to one endpoint. Until its socket opens, the latest
    /// message of each class is kept and delivered on open (and dropped with
    /// the endpoint by [`remove`](Self::remove)). True if it went out now.
    pub fn send(&self, endpoint: &str, message: &BridgeMessage) -> bool {
        let text = message.to_json();
        let mut inner = self.lock();
        let e = inner
            .endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(Endpoint::unregistered);
        if e.tx
            .as_ref()
            .is_some_and(|tx| tx.send(text.clone()).is_ok())
        {
            return true;
        }
        let class = message.colibri_class();
        e.pending.retain(|(c, _)| *c != class);
        e.pending.push((class, text));
        false
    }

    /// Sends a message to every connected endpoint of a conference but `except`.
    pub fn broadcast(&self, conference: &str, except: Option<&str>, message: &BridgeMessage) {
        let text = message.to_json();
        let inner = self.lock();
        for (id, e) in &inner.endpoints {
            if e.conference == conference && Some(id.as_str()) != except {
                if let Some(tx) = &e.tx {
                    let _ = tx.send(text.clone());
                }
            }
        }
    }

    /// The routes to merge into the HTTP server.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/colibri-ws/{server}/{conference}/{endpoint}", get(upgrade))
            .with_state(self.clone())
    }

    fn relay(&self, conference: &str, from: &str, mut msg: proto::bridge_channel::EndpointMessage) {
        msg.from = Some(endpoint_id(from).to_owned());
        let to = msg.to.clone();
        let message = BridgeMessage::EndpointMessage(msg);
        if to.is_empty() {
            self.broadcast(conference, Some(from), &message);
        } else if self
            .lock()
            .endpoints
            .get(&to)
            .is_some_and(|e| e.conference == conference)
        {
            self.send(&to, &message);
        }
    }
}

/// The id clients know an endpoint by (Jitsi's endpoint id, the MUC nick):
/// the part of our `room@service/nick` key after the room.
pub fn endpoint_id(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, nick)| nick)
}

/// The path part of an endpoint's bridge-channel URL.
pub fn path(server_id: &str, conference: &str, endpoint: &str, token: &str) -> String {
    format!(
        "/colibri-ws/{}/{}/{}?pwd={}",
        enc(server_id),
        enc(conference),
        enc(endpoint),
        enc(token)
    )
}

/// Percent-encodes what is not safe in a URL path segment or query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn upgrade(
    State(channels): State<Channels>,
    Path((server, conference, endpoint)): Path<(String, String, String)>,
    Query(q): Query<Pwd>,
    ws: WebSocketUpgrade,
) -> Response {
    let authorised =
        server == channels.server_id
            && channels.lock().endpoints.get(&endpoint).is_some_and(|e| {
                e.conference == conference && e.token.is_some() && e.token == q.pwd
            });
    if !authorised {
        tracing::warn!(%conference, %endpoint, "bridge channel refused: unknown endpoint or wrong pwd");
        return (StatusCode::FORBIDDEN, "unknown endpoint or wrong pwd").into_response();
    }
    ws.on_upgrade(move |socket| serve(channels, conference, endpoint, socket))
}

async fn serve(channels: Channels, conference: String, endpoint: String, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let hello = BridgeMessage::ServerHello(ServerHello {
        version: Some(env!("CARGO_PKG_VERSION").into()),
    });
    let _ = tx.send(hello.to_json());
    let inbound = {
        let mut inner = channels.lock();
        let Some(e) = inner.endpoints.get_mut(&endpoint) else {
            return;
        };
        for (_, text) in e.pending.drain(..) {
            let _ = tx.send(text);
        }
        e.tx = Some(tx.clone());
        inner.inbound_tx.clone()
    };
    tracing::info!(%conference, %endpoint, "bridge channel open");
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    drop(tx);
    while let Some(Ok(frame)) = stream.next().await {
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        match BridgeMessage::parse(&text) {
            Ok(BridgeMessage::EndpointMessage(m)) => channels.relay(&conference, &endpoint, m),
            Ok(BridgeMessage::ClientHello(_)) => {}
            Ok(message) => {
                let _ = inbound.send(Inbound {
                    conference: conference.clone(),
                    endpoint: endpoint.clone(),
                    message,
                });
            }
            Err(e) => tracing::warn!(%endpoint, "dropped a bridge-channel message: {e}"),
        }
        if !channels.lock().endpoints.contains_key(&endpoint) {
            break;
        }
    }
    if let Some(e) = channels.lock().endpoints.get_mut(&endpoint) {
        e.tx = None;
    }
    writer.abort();
    tracing::info!(%conference, %endpoint, "bridge channel closed");
}
