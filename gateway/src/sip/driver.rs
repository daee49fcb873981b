//! A thin tokio driver around the sans-IO SIP cores: the dial-in [`Server`],
//! the dial-out [`Client`](super::Client) and an optional
//! [`Registration`](super::Registration), on UDP and TCP on one port
//! (RFC 3261 §18).
//!
//! Contract: [`Driver::start`] binds UDP and a TCP listener on the same
//! address and spawns one task that owns the cores. Datagrams and TCP messages
//! (framed by the end of the header section plus Content-Length, §18.3) are fed
//! in with the time they arrived, to the client or registration when it owns
//! their Call-ID and to the server otherwise (`driver_client.rs`). The server's
//! [`Transmit`]s go out on UDP or back on the TCP connection their request came
//! over (one for a connection that has closed is dropped); the client's and
//! registration's take an open connection to their destination or open one.
//! The cores' timers are slept on (the earliest of the three). The
//! application receives [`Event`]s on an unbounded channel (the cores cap the
//! calls they hold, and so the call events in flight; [`Event::Response`]s come
//! as fast as the network brings them, so a client of the application must
//! keep reading). Through a cloneable [`Handle`] it answers, rejects, hangs up
//! and re-negotiates dial-in calls, stops accepting new ones, sends messages
//! of its own, dials out ([`Handle::dial`]) and un-registers. Socket errors
//! are logged and the loop goes on; a bad TCP stream closes that connection
//! only. [`Driver::shutdown`] (or dropping the [`Driver`]) refuses new calls,
//! un-registers (waiting up to [`UNREGISTER_WAIT`] for the registrar), lets
//! connections flush what was queued for them (up to a second) and ends the
//! task.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::client::{ClientConfig, ClientError, InviteError};
use super::message::MAX_DATAGRAM;
use super::register::RegisterConfig;
use super::{CallError, CallId, Config, Event, Input, Output, Server, Transmit, Transport};

#[path = "driver_client.rs"]
mod dial_out;

pub use dial_out::UNREGISTER_WAIT;
use dial_out::{Uac, UacCommand};

/// Messages queued for one TCP connection before it counts as stuck and is closed.
const CONNECTION_QUEUE: usize = 64;
/// How long shutdown waits for connections to flush.
const FLUSH: Duration = Duration::from_secs(1);
/// How long opening a TCP connection for the client or registration may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the driver; `Default` holds the defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address for both UDP and TCP; port 0 picks one free for both.
    pub bind: SocketAddr,
    /// Settings of the core.
    pub server: Config,
    /// Cap on open TCP connections (accepted and opened); further ones are
    /// closed at once.
    pub max_connections: usize,
    /// The dial-out client core; `None`: no dial-out ([`Handle::dial`] answers
    /// [`CommandError::NotConfigured`]). Empty `contact` and `from_uri` (the
    /// default) are derived from the bound address, `sip:gateway@<ip>:<port>`
    /// and `sip:gateway@<ip>` (see `driver_client.rs` for `0.0.0.0`).
    pub client: Option<ClientConfig>,
    /// Registration with a registrar, started with the driver and ended at
    /// shutdown; an empty `contact` is derived as the client's. `None` (the
    /// default): no registration.
    pub register: Option<RegisterConfig>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            server: Config::default(),
            max_connections: 1024,
            client: Some(ClientConfig {
                contact: String::new(),
                from_uri: String::new(),
                ..ClientConfig::default()
            }),
            register: None,
        }
    }
}

/// Errors of the [`Handle`]'s commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The server core refused (caller's fault, not retryable).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The client core refused to dial (caller's fault; `TooManyCalls` is
    /// retryable later).
    #[error("dial-out refused: {0}")]
    Invite(#[from] InviteError),
    /// The client core refused to cancel or hang up (caller's fault).
    #[error("dial-out call: {0}")]
    Client(#[from] ClientError),
    /// Dial-out or registration is not configured in the [`Settings`]
    /// (caller's fault).
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// The registrar did not answer our un-REGISTER within
    /// [`UNREGISTER_WAIT`]; the binding lasts until it expires (not retryable).
    #[error("the registrar did not answer the un-REGISTER in time")]
    Timeout,
    /// The driver has shut down (not retryable).
    #[error("the SIP driver has stopped")]
    Stopped,
}

type Reply<T = ()> = oneshot::Sender<Result<T, CommandError>>;

enum Command {
    Answer {
        call_id: CallId,
        sdp: String,
        reply: Reply,
    },
    Reject {
        call_id: CallId,
        status: u16,
        reply: Reply,
    },
    Hangup {
        call_id: CallId,
        reply: Reply,
    },
    AnswerReoffer {
        call_id: CallId,
        sdp: String,
        reply: Reply,
    },
    RejectReoffer {
        call_id: CallId,
        status: u16,
        reply: Reply,
    },
    SetAccepting {
        accepting: bool,
        reply: Reply,
    },
    Send {
        transmit: Transmit,
        reply: Reply,
    },
    /// For the client or the registration.
    Uac(UacCommand),
}

/// The application's side of a running driver.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    registered: watch::Receiver<bool>,
}

impl Handle {
    /// The bound address (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepts a call with an SDP answer (see [`Server::answer`]).
    pub async fn answer(
        &self,
        call_id: &CallId,
        sdp: impl Into<String>,
    ) -> Result<(), CommandError> {
        let (call_id, sdp) = (call_id.clone(), sdp.into());
        self.command(|reply| Command::Answer {
            call_id,
            sdp,
            reply,
        })
        .await
    }

    /// Refuses a call with a final status in 300..=699 (see [`Server::reject`]).
    pub async fn reject(&self, call_id: &CallId, status: u16) -> Result<(), CommandError> {
        let call_id = call_id.clone();
        self.command(|reply| Command::Reject {
            call_id,
            status,
            reply,
        })
        .await
    }

    /// Ends an answered call with BYE (see [`Server::hangup`]); the call
    /// ends with [`EndReason::LocalHangup`](super::EndReason::LocalHangup).
    pub async fn hangup(&self, call_id: &CallId) -> Result<(), CommandError> {
        let call_id = call_id.clone();
        self.command(|reply| Command::Hangup { call_id, reply })
            .await
    }

    /// Answers a pending re-INVITE (see [`Server::answer_reoffer`]).
    pub async fn answer_reoffer(
        &self,
        call_id: &CallId,
        sdp: impl Into<String>,
    ) -> Result<(), CommandError> {
        let (call_id, sdp) = (call_id.clone(), sdp.into());
        self.command(|reply| Command::AnswerReoffer {
            call_id,
            sdp,
            reply,
        })
        .await
    }

    /// Refuses a pending re-INVITE (see [`Server::reject_reoffer`]).
    pub async fn reject_reoffer(&self, call_id: &CallId, status: u16) -> Result<(), CommandError> {
        let call_id = call_id.clone();
        self.command(|reply| Command::RejectReoffer {
            call_id,
            status,
            reply,
        })
        .await
    }

    /// With `false`, new INVITEs get 503 while existing calls go on
    /// (graceful shutdown); `true` accepts again.
    pub async fn set_accepting(&self, accepting: bool) -> Result<(), CommandError> {
        self.command(|reply| Command::SetAccepting { accepting, reply })
            .await
    }

    /// Sends a message of the application's own from our port. Over TCP it
    /// goes only on an open connection with `destination` (this opens none);
    /// otherwise it is dropped.
    pub async fn send(
        &self,
        transport: Transport,
        destination: SocketAddr,
        contents: Vec<u8>,
    ) -> Result<(), CommandError> {
        let transmit = Transmit {
            transport,
            destination,
            contents,
        };
        self.command(|reply| Command::Send { transmit, reply })
            .await
    }

    async fn command<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| CommandError::Stopped)?;
        answer.await.map_err(|_| CommandError::Stopped)?
    }
}

/// A running driver; dropping it stops the driver without waiting.
#[must_use = "dropping the driver stops it"]
#[derive(Debug)]
pub struct Driver {
    handle: Handle,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Driver {
    /// Binds UDP and TCP on `settings.bind` and starts the driver task (and
    /// the registration, if configured). An invalid client or registration
    /// setting fails with [`io::ErrorKind::InvalidInput`], naming its key.
    pub async fn start(settings: Settings) -> io::Result<(Driver, mpsc::UnboundedReceiver<Event>)> {
        let (udp, listener) = bind(settings.bind).await?;
        let local_addr = udp.local_addr()?;
        let (uac, registered) = Uac::new(settings.client, settings.register, local_addr)?;
        tracing::info!(%local_addr, "SIP listening on UDP and TCP");
        let (commands_tx, commands) = mpsc::channel(64);
        let (inbound_tx, inbound) = mpsc::channel(256);
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let core = Loop {
            server: Server::new(settings.server),
            server_at: None,
            uac,
            udp,
            listener,
            conns: HashMap::new(),
            next_conn: 0,
            tasks: JoinSet::new(),
            inbound_tx,
            events: events_tx,
            max_connections: settings.max_connections,
        };
        let task = tokio::spawn(core.run(commands, inbound, stopped));
        let handle = Handle {
            commands: commands_tx,
            local_addr,
            registered,
        };
        Ok((Driver { handle, stop, task }, events))
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Refuses new calls, un-registers, flushes connections and waits for the
    /// task to end (a few seconds at most).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "SIP driver task failed");
        }
    }
}

/// Binds UDP, then TCP on the same port (retrying when port 0 gave a UDP port
/// whose TCP twin is taken).
async fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await?;
        let mut tcp_addr = addr;
        tcp_addr.set_port(udp.local_addr()?.port());
        match TcpListener::bind(tcp_addr).await {
            Ok(listener) => return Ok((udp, listener)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

struct Conn {
    id: u64,
    out: mpsc::Sender<Vec<u8>>,
}

enum Inbound {
    Message { peer: SocketAddr, data: Vec<u8> },
    Closed { peer: SocketAddr, id: u64 },
}

/// The task that owns the core.
struct Loop {
    server: Server,
    /// The server's last timeout.
    server_at: Option<Instant>,
    uac: Uac,
    udp: UdpSocket,
    listener: TcpListener,
    conns: HashMap<SocketAddr, Conn>,
    next_conn: u64,
    tasks: JoinSet<()>,
    inbound_tx: mpsc::Sender<Inbound>,
    events: mpsc::UnboundedSender<Event>,
    max_connections: usize,
}

impl Loop {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        self.uac.start(Instant::now());
        let mut deadline = self.drain().await;
        // Set at shutdown: until when to wait for the un-REGISTER.
        let mut closing: Option<Instant> = None;
        loop {
            if closing.is_some_and(|until| self.uac.is_unregistered() || Instant::now() >= until) {
                break;
            }
            let wake = [deadline, closing].into_iter().flatten().min();
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // A change (shutdown) or a dropped Driver both start the end.
                _ = stop.changed(), if closing.is_none() => {
                    self.server.set_accepting(false);
                    match self.uac.shutdown(Instant::now()) {
                        Some(until) => closing = Some(until),
                        None => break,
                    }
                }
                received = self.udp.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.receive(Transport::Udp, source, &buf[..n]),
                    Err(e) => tracing::warn!(error = %e, "SIP UDP receive failed"),
                },
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.accept(stream, peer),
                    Err(e) => {
                        tracing::warn!(error = %e, "SIP TCP accept failed");
                        // Out of descriptors and the like: don't spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(message) = inbound.recv() => match message {
                    Inbound::Message { peer, data } => self.receive(Transport::Tcp, peer, &data),
                    Inbound::Closed { peer, id } => {
                        if self.conns.get(&peer).is_some_and(|c| c.id == id) {
                            self.conns.remove(&peer);
                        }
                    }
                },
                Some(command) = commands.recv() => self.command(command),
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Err(e) = joined {
                        tracing::error!(error = %e, "SIP TCP connection task failed");
                    }
                }
                () = timer => self.timeout(Instant::now()),
            }
            deadline = self.drain().await;
        }
        drop(inbound);
        self.close().await;
    }

    /// Hands a received message to the core that owns its Call-ID.
    fn receive(&mut self, transport: Transport, source: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        if !self.uac.receive(now, transport, source, data) {
            self.server.handle_input(Input::Receive {
                now,
                transport,
                source,
                data,
            });
        }
    }

    /// Feeds the time to the cores whose timeout has come.
    fn timeout(&mut self, now: Instant) {
        if self.server_at.is_some_and(|at| at <= now) {
            self.server.handle_input(Input::Timeout(now));
        }
        self.uac.timeout(now);
    }

    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        let Some((id, queued)) = self.open(peer) else {
            return;
        };
        let inbound = self.inbound_tx.clone();
        self.tasks
            .spawn(connection(stream, peer, id, inbound, queued));
        tracing::debug!(%peer, "SIP TCP connection accepted");
    }

    /// Opens a TCP connection to `peer` for a request of the client or the
    /// registration; `first` is queued at once, and is lost (as are later
    /// messages) if the connection fails: the core's timers then give up.
    fn connect(&mut self, peer: SocketAddr, first: Vec<u8>) {
        let Some((id, queued)) = self.open(peer) else {
            return;
        };
        if let Some(conn) = self.conns.get(&peer) {
            // A fresh queue has room.
            let _ = conn.out.try_send(first);
        }
        let inbound = self.inbound_tx.clone();
        self.tasks.spawn(async move {
            let connecting = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer));
            let failed = match connecting.await {
                Ok(Ok(stream)) => {
                    tracing::debug!(%peer, "SIP TCP connection opened");
                    return connection(stream, peer, id, inbound, queued).await;
                }
                Ok(Err(e)) => e,
                Err(_) => io::Error::from(io::ErrorKind::TimedOut),
            };
            tracing::warn!(%peer, error = %failed, "SIP TCP connect failed");
            let _ = inbound.send(Inbound::Closed { peer, id }).await;
        });
    }

    /// Registers a new connection with `peer`, unless there are too many.
    fn open(&mut self, peer: SocketAddr) -> Option<(u64, mpsc::Receiver<Vec<u8>>)> {
        if self.conns.len() >= self.max_connections {
            tracing::warn!(%peer, "too many SIP TCP connections; refusing another");
            return None;
        }
        self.next_conn += 1;
        let id = self.next_conn;
        let (out, queued) = mpsc::channel(CONNECTION_QUEUE);
        self.conns.insert(peer, Conn { id, out });
        Some((id, queued))
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        let (result, reply) = match command {
            Command::Answer {
                call_id,
                sdp,
                reply,
            } => (self.server.answer(&call_id, &sdp, now), reply),
            Command::Reject {
                call_id,
                status,
                reply,
            } => (self.server.reject(&call_id, status, now), reply),
            Command::Hangup { call_id, reply } => (self.server.hangup(&call_id, now), reply),
            Command::AnswerReoffer {
                call_id,
                sdp,
                reply,
            } => (self.server.answer_reoffer(&call_id, &sdp, now), reply),
            Command::RejectReoffer {
                call_id,
                status,
                reply,
            } => (self.server.reject_reoffer(&call_id, status, now), reply),
            Command::SetAccepting { accepting, reply } => {
                self.server.set_accepting(accepting);
                (Ok(()), reply)
            }
            Command::Send { transmit, reply } => {
                self.server.transmit(transmit);
                (Ok(()), reply)
            }
            Command::Uac(command) => return self.uac.command(command, now),
        };
        // The application may have stopped waiting; the core has acted anyway.
        let _ = reply.send(result.map_err(CommandError::from));
    }

    /// Sends and hands over everything the cores have; returns their next timeout.
    async fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.server.poll_output() {
                Output::Transmit(transmit) => self.transmit(transmit, false).await,
                Output::Event(event) => self.emit(event),
                Output::Timeout(at) => {
                    self.server_at = at;
                    break;
                }
            }
        }
        let uac_at = loop {
            match self.uac.poll_output() {
                Output::Transmit(transmit) => self.transmit(transmit, true).await,
                Output::Event(event) => self.emit(event),
                Output::Timeout(at) => break at,
            }
        };
        [self.server_at, uac_at].into_iter().flatten().min()
    }

    fn emit(&self, event: Event) {
        if self.events.send(event).is_err() {
            tracing::debug!("SIP event dropped: the application stopped listening");
        }
    }

    /// Sends over UDP, or TCP (opening a connection only when `may_connect`).
    async fn transmit(&mut self, transmit: Transmit, may_connect: bool) {
        let destination = transmit.destination;
        match transmit.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&transmit.contents, destination).await {
                    tracing::warn!(%destination, error = %e, "SIP UDP send failed");
                }
            }
            Transport::Tcp => {
                let Some(conn) = self.conns.get(&destination) else {
                    match may_connect {
                        true => self.connect(destination, transmit.contents),
                        false => tracing::debug!(%destination, "SIP TCP connection gone; dropped"),
                    }
                    return;
                };
                if let Err(e) = conn.out.try_send(transmit.contents) {
                    // Full (the peer does not read) or closed: give the connection up.
                    tracing::warn!(%destination, error = %e, "closing SIP TCP connection");
                    self.conns.remove(&destination);
                }
            }
        }
    }

    async fn close(mut self) {
        self.uac.stopped();
        // Dropping the senders tells each connection to flush and close.
        self.conns.clear();
        let flushed = tokio::time::timeout(FLUSH, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if flushed.is_err() {
            tracing::warn!("SIP TCP connections did not flush in time");
        }
        tracing::info!("SIP driver stopped");
        // Remaining connection tasks are aborted when `tasks` drops.
    }
}

/// One TCP connection: frames what it reads, writes what the core sends it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    inbound: mpsc::Sender<Inbound>,
    mut queued: mpsc::Receiver<Vec<u8>>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) => break,
                Ok(n) => {
                    framer.push(&buf[..n]);
                    loop {
                        match framer.next_message() {
                            Ok(Some(data)) => {
                                let message = Inbound::Message { peer, data };
                                if inbound.send(message).await.is_err() {
                                    break 'conn;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::info!(%peer, error = %e, "closing SIP TCP connection");
                                break 'conn;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "SIP TCP read failed");
                    break;
                }
            },
            message = queued.recv() => match message {
                Some(bytes) => {
                    if let Err(e) = writer.write_all(&bytes).await {
                        tracing::debug!(%peer, error = %e, "SIP TCP write failed");
                        break;
                    }
                }
                // The driver dropped us (shutdown, or we were stuck).
                None => break,
            },
        }
    }
    let _ = writer.shutdown().await;
    let _ = inbound.send(Inbound::Closed { peer, id }).await;
}

/// Why a TCP stream cannot be framed; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FrameError {
    #[error("header section longer than {MAX_DATAGRAM} bytes")]
    HeadersTooLong,
    #[error("missing end of headers or invalid Content-Length")]
    BadLength,
    #[error("message longer than {MAX_DATAGRAM} bytes")]
    TooLong,
}

/// Splits a SIP byte stream into messages (RFC 3261 §18.3): the header section
/// ends at the first empty line, the body is Content-Length bytes (0 when the
/// header is missing). Line ends between messages (RFC 5626 keep-alives) are
/// skipped.
#[derive(Debug, Default)]
struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let start = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.drain(..start);
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return match self.buf.len() > MAX_DATAGRAM {
                true => Err(FrameError::HeadersTooLong),
                false => Ok(None),
            };
        };
        let total = content_length(&self.buf[..end])?
            .checked_add(end + 4)
            .filter(|&total| total <= MAX_DATAGRAM)
            .ok_or(FrameError::TooLong)?;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(self.buf.drain(..total).collect()))
    }
}

/// The Content-Length (or compact `l`) of a header section; repeated values must agree.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut length = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !name.eq_ignore_ascii_case(b"content-length") && !name.eq_ignore_ascii_case(b"l") {
            continue;
        }
        let value = std::str::from_utf8(line[colon + 1..].trim_ascii())
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or(FrameError::BadLength)?;
        if length.is_some_and(|l| l != value) {
            return Err(FrameError::BadLength);
        }
        length = Some(value);
    }
    Ok(length.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\n\
        CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn frames_split_and_joined_messages_with_bodies() {
        let with_body = b"INVITE sip:gw SIP/2.0\r\nl: 4\r\n\r\nv=0\n";
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(OPTIONS);
        stream.extend_from_slice(with_body);
        stream.extend_from_slice(OPTIONS);
        let mut framer = Framer::default();
        let mut messages = Vec::new();
        for chunk in stream.chunks(7) {
            framer.push(chunk);
            while let Some(m) = framer.next_message().expect("valid stream") {
                messages.push(m);
            }
        }
        assert_eq!(messages, [OPTIONS, &with_body[..], OPTIONS]);
        assert!(framer.buf.is_empty());
    }

    #[test]
    fn rejects_bad_and_oversized_lengths() {
        let cases: [(&[u8], FrameError); 3] = [
            (
                b"BYE x SIP/2.0\r\nContent-Length: x\r\n\r\n",
                FrameError::BadLength,
            ),
            (
                b"BYE x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
                FrameError::BadLength,
            ),
            (
                b"BYE x SIP/2.0\r\nContent-Length: 70000\r\n\r\n",
                FrameError::TooLong,
            ),
        ];
        for (stream, error) in cases {
            let mut framer = Framer::default();
            framer.push(stream);
            assert_eq!(framer.next_message(), Err(error));
        }
        let mut framer = Framer::default();
        framer.push(&vec![b'a'; MAX_DATAGRAM + 1]);
        assert_eq!(framer.next_message(), Err(FrameError::HeadersTooLong));
    }
}
