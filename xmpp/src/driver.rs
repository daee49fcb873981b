//! The thin tokio driver around [`Session`]: connection, login, resource
//! binding, the stanza pump, timers and reconnects.
//!
//! [`spawn`] starts one task per XMPP account. The application keeps the
//! [`Handle`] (cloneable) to send, and reads [`Event`]s from the receiver.
//! Dropping every handle, or [`Handle::shutdown`], ends the session cleanly.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_xmpp::connect::{
    DnsConfig, ServerConnector, StartTlsServerConnector, TcpServerConnector,
};
use tokio_xmpp::parsers::bind::{BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stanza::Stanza;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, StanzaError};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, ReadError, StreamElementError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement,
};

use crate::backoff::Backoff;
use crate::config::{Security, XmppConfig};
use crate::core::{Event, IncomingIq, IqError, IqId, IqKind, Output, Session, SessionConfig};

/// Why the driver could not (stay) connected. Logged; the driver retries.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("xmpp: {0}")]
    Xmpp(#[from] tokio_xmpp::Error),
    #[error("resource binding failed: {0}")]
    Bind(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

enum Command {
    Join {
        room: BareJid,
        nick: String,
        payloads: Vec<Element>,
    },
    Leave {
        room: BareJid,
    },
    SetPresence {
        room: BareJid,
        payloads: Vec<Element>,
        status: Option<String>,
    },
    Iq {
        to: Option<Jid>,
        kind: IqKind,
        payload: Element,
        timeout: Option<Duration>,
        done: oneshot::Sender<Result<Option<Element>, IqError>>,
    },
    Reply(Box<(IncomingIq, Result<Option<Element>, StanzaError>)>),
    Send(Box<Stanza>),
    Jid(oneshot::Sender<Option<FullJid>>),
    Shutdown(oneshot::Sender<()>),
}

/// Sends commands to the session task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Handle {
    /// Joins (and keeps rejoining) a room as `nick` with these presence payloads.
    pub fn join_room(&self, room: BareJid, nick: impl Into<String>, payloads: Vec<Element>) {
        let _ = self.tx.send(Command::Join {
            room,
            nick: nick.into(),
            payloads,
        });
    }

    /// Leaves a room.
    pub fn leave_room(&self, room: BareJid) {
        let _ = self.tx.send(Command::Leave { room });
    }

    /// Replaces our presence payloads and status text in a room.
    pub fn set_room_presence(&self, room: BareJid, payloads: Vec<Element>, status: Option<String>) {
        let _ = self.tx.send(Command::SetPresence {
            room,
            payloads,
            status,
        });
    }

    /// Sends an IQ request and waits for its response (or the timeout).
    pub async fn iq(
        &self,
        to: Option<Jid>,
        kind: IqKind,
        payload: Element,
        timeout: Option<Duration>,
    ) -> Result<Option<Element>, IqError> {
        let (done, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::Iq {
                to,
                kind,
                payload,
                timeout,
                done,
            })
            .is_err()
        {
            return Err(IqError::Disconnected);
        }
        rx.await.unwrap_or(Err(IqError::Disconnected))
    }

    /// Answers an incoming request.
    pub fn reply(&self, req: IncomingIq, result: Result<Option<Element>, StanzaError>) {
        let _ = self.tx.send(Command::Reply(Box::new((req, result))));
    }

    /// Answers an incoming request with an error condition and a text.
    pub fn reply_error(&self, req: IncomingIq, condition: DefinedCondition, text: &str) {
        let el: Element = condition.clone().into();
        tracing::warn!(from = ?req.from, ns = %req.payload.ns(), condition = %el.name(), "refused iq: {text}");
        self.reply(req, Err(crate::core::stanza_error(condition, text)));
    }

    /// Sends a stanza as is (messages, directed presence).
    pub fn send(&self, stanza: Stanza) {
        let _ = self.tx.send(Command::Send(Box::new(stanza)));
    }

    /// Our bound JID, if online.
    pub async fn jid(&self) -> Option<FullJid> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Jid(tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Leaves every room, closes the stream and ends the task.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the session task. Validates the config first.
pub fn spawn(
    config: XmppConfig,
    session: SessionConfig,
) -> Result<(Handle, mpsc::UnboundedReceiver<Event>, JoinHandle<()>), crate::config::ConfigError> {
    config.validate()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let driver = Driver {
        config,
        session: Session::new(session),
        cmds: rx,
        events: ev_tx,
        waiters: Default::default(),
    };
    let task = tokio::spawn(driver.run());
    Ok((Handle { tx }, ev_rx, task))
}

type Stream = XmppStream<Box<dyn tokio_xmpp::connect::AsyncReadAndWrite + Send + 'static>>;

struct Driver {
    config: XmppConfig,
    session: Session,
    cmds: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    waiters: std::collections::HashMap<IqId, oneshot::Sender<Result<Option<Element>, IqError>>>,
}

enum Exit {
    Reconnect,
    Shutdown(Option<oneshot::Sender<()>>),
}

impl Driver {
    async fn run(mut self) {
        let mut backoff = Backoff::new(
            Duration::from_millis(self.config.reconnect_min_ms),
            Duration::from_millis(self.config.reconnect_max_ms),
            u64::from(std::process::id()) ^ rand::random::<u64>(),
        );
        loop {
            let exit = match connect(&self.config).await {
                Ok((stream, jid)) => {
                    backoff.reset();
                    self.session.handle_online(jid, Instant::now());
                    self.connected(stream).await
                }
                Err(e) => {
                    tracing::warn!(server = %self.config.server, "xmpp connect failed: {e}");
                    Exit::Reconnect
                }
            };
            self.session.handle_offline(Instant::now());
            self.flush_events();
            match exit {
                Exit::Shutdown(done) => {
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                Exit::Reconnect => {}
            }
            let delay = backoff.next_delay();
            tracing::info!(?delay, "xmpp reconnecting");
            let until = tokio::time::Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    cmd = self.cmds.recv() => match cmd {
                        None => return,
                        Some(Command::Shutdown(done)) => { let _ = done.send(()); return; }
                        Some(cmd) => { self.apply(cmd); self.flush_events(); }
                    }
                }
            }
        }
    }

    /// Pumps one connected stream until it fails or we shut down.
    async fn connected(&mut self, mut stream: Stream) -> Exit {
        loop {
            if let Err(e) = self.flush(&mut stream).await {
                tracing::warn!("xmpp write failed: {e}");
                return Exit::Reconnect;
            }
            let deadline = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(stanza)))) => self.session.handle_stanza(stanza, Instant::now()),
                    Some(Ok(FallibleStreamElement::Err(StreamElementError::InvalidStanza { name, header, error, .. }))) => {
                        self.session.handle_malformed(&name.to_string(), header.from, header.type_, header.id, &error.to_string());
                    }
                    Some(Ok(FallibleStreamElement::Err(e))) => tracing::warn!("dropped malformed stream element: {e}"),
                    Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)))) => {
                        tracing::warn!("xmpp stream error: {e:?}");
                        return Exit::Reconnect;
                    }
                    Some(Ok(other)) => tracing::debug!("ignoring stream element {other:?}"),
                    Some(Err(ReadError::ParseError(e))) => tracing::warn!("dropped malformed stanza: {e}"),
                    Some(Err(ReadError::SoftTimeout)) => {
                        // Keep the stream alive: a whitespace ping.
                        if let Err(e) = stream.send(&XmppStreamElement::Stanza(Stanza::Iq(ping_server(&self.config)))).await {
                            tracing::warn!("xmpp keepalive failed: {e}");
                            return Exit::Reconnect;
                        }
                    }
                    Some(Err(ReadError::HardError(e))) => {
                        tracing::warn!("xmpp connection lost: {e}");
                        return Exit::Reconnect;
                    }
                    Some(Err(ReadError::StreamFooterReceived)) | None => {
                        tracing::warn!("xmpp server closed the stream");
                        return Exit::Reconnect;
                    }
                },
                cmd = self.cmds.recv() => match cmd {
                    None => return self.close(stream, None).await,
                    Some(Command::Shutdown(done)) => return self.close(stream, Some(done)).await,
                    Some(cmd) => self.apply(cmd),
                },
                _ = sleep_until(deadline) => self.session.handle_timeout(Instant::now()),
            }
        }
    }

    async fn close(&mut self, mut stream: Stream, done: Option<oneshot::Sender<()>>) -> Exit {
        let rooms: Vec<BareJid> = self.session.rooms().cloned().collect();
        for room in rooms {
            self.session.leave_room(&room);
        }
        let _ = self.flush(&mut stream).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
        Exit::Shutdown(done)
    }

    fn apply(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join {
                room,
                nick,
                payloads,
            } => self.session.join_room(room, nick, payloads),
            Command::Leave { room } => self.session.leave_room(&room),
            Command::SetPresence {
                room,
                payloads,
                status,
            } => self.session.set_room_presence(&room, payloads, status),
            Command::Iq {
                to,
                kind,
                payload,
                timeout,
                done,
            } => {
                let id = self.session.send_iq(to, kind, payload, timeout, now);
                self.waiters.insert(id, done);
            }
            Command::Reply(r) => {
                let (req, result) = *r;
                self.session.reply(&req, result)
            }
            Command::Send(stanza) => self.session.send(*stanza),
            Command::Jid(tx) => {
                let _ = tx.send(self.session.jid().cloned());
            }
            Command::Shutdown(_) => unreachable!("handled by the caller"),
        }
    }

    /// Writes pending stanzas and delivers pending events.
    async fn flush(&mut self, stream: &mut Stream) -> std::io::Result<()> {
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Send(stanza) => stream.send(&XmppStreamElement::Stanza(stanza)).await?,
                Output::Event(ev) => self.deliver(ev),
            }
        }
        Ok(())
    }

    /// Delivers events while offline (sends are dropped: the core only
    /// produces them while online).
    fn flush_events(&mut self) {
        while let Some(out) = self.session.poll_output() {
            if let Output::Event(ev) = out {
                self.deliver(ev);
            }
        }
    }

    fn deliver(&mut self, ev: Event) {
        if let Event::IqResponse { id, result } = ev {
            match self.waiters.remove(&id) {
                Some(w) => {
                    let _ = w.send(result);
                }
                None => {
                    let _ = self.events.send(Event::IqResponse { id, result });
                }
            }
            return;
        }
        let _ = self.events.send(ev);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn ping_server(config: &XmppConfig) -> Iq {
    let to = BareJid::new(&config.domain).ok().map(Jid::from);
    let payload = Element::builder("ping", tokio_xmpp::parsers::ns::PING).build();
    Iq::Get {
        from: None,
        to,
        id: format!("ka{}", rand::random::<u32>()),
        payload,
    }
}

/// Connects, logs in and binds a resource.
async fn connect(config: &XmppConfig) -> Result<(Stream, FullJid), ConnectError> {
    let jid = Jid::from(config.login_jid()?);
    let (host, port) = config.host_port();
    let dns = DnsConfig::NoSrv {
        host,
        port,
        resolver: None,
    };
    let timeouts = Timeouts {
        read_timeout: Duration::from_secs(60),
        response_timeout: Duration::from_secs(20),
    };
    let stream = match config.security {
        Security::Plaintext => login(TcpServerConnector::from(dns), &jid, config, timeouts).await?,
        Security::Starttls => {
            login(StartTlsServerConnector::from(dns), &jid, config, timeouts).await?
        }
    };
    bind(stream, config).await
}

async fn login<C: ServerConnector>(
    server: C,
    jid: &Jid,
    config: &XmppConfig,
    timeouts: Timeouts,
) -> Result<Stream, ConnectError> {
    let (pending, binding) = server
        .connect(jid, tokio_xmpp::parsers::ns::JABBER_CLIENT, timeouts)
        .await?;
    let (features, stream) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(features_err)?;
    let username = jid
        .node()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let creds = sasl::common::Credentials::default()
        .with_username(username)
        .with_password(config.password.clone())
        .with_channel_binding(binding);
    let mut mechs = features.sasl_mechanisms.clone();
    if config.is_anonymous() {
        mechs.retain(|m| m == "ANONYMOUS");
    } else {
        mechs.remove("ANONYMOUS");
    }
    let stream = tokio_xmpp::client_login(stream, mechs, creds).await?;
    let stream = stream
        .send_header(StreamHeader {
            to: Some(Cow::Owned(jid.domain().to_string())),
            from: None,
            id: None,
        })
        .await?;
    let (_features, stream) = stream
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(features_err)?;
    Ok(stream.box_stream())
}

async fn bind(mut stream: Stream, config: &XmppConfig) -> Result<(Stream, FullJid), ConnectError> {
    let resource = (!config.resource.is_empty()).then(|| config.resource.clone());
    let iq = Iq::from_set("bind", BindQuery::new(resource));
    stream
        .send(&XmppStreamElement::Stanza(Stanza::Iq(iq)))
        .await?;
    loop {
        match stream.next().await {
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(
                Iq::Result {
                    id,
                    payload: Some(p),
                    ..
                },
            )))))
                if id == "bind" =>
            {
                let resp =
                    BindResponse::try_from(p).map_err(|e| ConnectError::Bind(e.to_string()))?;
                return Ok((stream, resp.jid));
            }
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(
                Iq::Error { id, error, .. },
            )))))
                if id == "bind" =>
            {
                return Err(ConnectError::Bind(format!("{:?}", error.defined_condition)));
            }
            Some(Ok(_)) => continue,
            Some(Err(ReadError::SoftTimeout)) | Some(Err(ReadError::ParseError(_))) => continue,
            Some(Err(e)) => return Err(ConnectError::Bind(e.to_string())),
            None => return Err(ConnectError::Bind("stream closed".into())),
        }
    }
}

fn features_err(e: tokio_xmpp::xmlstream::RecvFeaturesError) -> ConnectError {
    ConnectError::Io(std::io::Error::other(e.to_string()))
}
