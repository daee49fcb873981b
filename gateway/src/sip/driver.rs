//! A thin tokio driver around the sans-IO SIP [`Server`] core: UDP and TCP on
//! one port (RFC 3261 §18).
//!
//! Contract: [`Driver::start`] binds UDP and a TCP listener on the same
//! address and spawns one task that owns the core. Datagrams and TCP messages
//! (framed by the end of the header section plus Content-Length, §18.3) are fed
//! in with the time they arrived; the core's [`Transmit`]s go out on UDP or back
//! on the TCP connection their request came over (a response for a connection
//! that has closed is dropped: we never dial out); its timers are slept on. The
//! application receives [`Event`]s on an unbounded channel (the core caps the
//! calls it holds, and so the call events in flight; [`Event::Response`]s come
//! as fast as the network brings them, so a client of the application must
//! keep reading) and answers, rejects, hangs up and re-negotiates calls, stops
//! accepting new ones, or sends messages of its own (a dial-out UAC's requests
//! and ACKs) through a cloneable [`Handle`]. Socket errors are logged and the loop goes on;
//! a bad TCP stream closes that connection only. [`Driver::shutdown`] (or
//! dropping the [`Driver`]) stops accepting, lets connections flush what was
//! queued for them (up to a second) and ends the task.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::message::MAX_DATAGRAM;
use super::{CallError, CallId, Config, Event, Input, Output, Server, Transmit, Transport};

/// Messages queued for one TCP connection before it counts as stuck and is closed.
const CONNECTION_QUEUE: usize = 64;
/// How long shutdown waits for connections to flush.
const FLUSH: Duration = Duration::from_secs(1);

/// Settings of the driver; `Default` holds the defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address for both UDP and TCP; port 0 picks one free for both.
    pub bind: SocketAddr,
    /// Settings of the core.
    pub server: Config,
    /// Cap on open TCP connections; further ones are closed at once.
    pub max_connections: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            server: Config::default(),
            max_connections: 1024,
        }
    }
}

/// Errors of the [`Handle`]'s commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The core refused (caller's fault, not retryable).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The driver has shut down (not retryable).
    #[error("the SIP driver has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<(), CallError>>;

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
}

/// The application's side of a running driver.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
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

    /// Sends a message of the application's own (e.g. a dial-out request or
    /// its ACK) from our port. Over TCP it goes only on an open connection
    /// from `destination` (we never dial out); otherwise it is dropped.
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

    async fn command(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), CommandError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| CommandError::Stopped)?;
        Ok(answer.await.map_err(|_| CommandError::Stopped)??)
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
    /// Binds UDP and TCP on `settings.bind` and starts the driver task.
    pub async fn start(settings: Settings) -> io::Result<(Driver, mpsc::UnboundedReceiver<Event>)> {
        let (udp, listener) = bind(settings.bind).await?;
        let local_addr = udp.local_addr()?;
        tracing::info!(%local_addr, "SIP listening on UDP and TCP");
        let (commands_tx, commands) = mpsc::channel(64);
        let (inbound_tx, inbound) = mpsc::channel(256);
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let core = Loop {
            server: Server::new(settings.server),
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
        };
        Ok((Driver { handle, stop, task }, events))
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Stops accepting, flushes connections and waits for the task to end.
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
        let mut deadline: Option<Instant> = None;
        loop {
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // A change (shutdown) or a dropped Driver both end the loop.
                _ = stop.changed() => break,
                received = self.udp.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.server.handle_input(Input::Receive {
                        now: Instant::now(),
                        transport: Transport::Udp,
                        source,
                        data: &buf[..n],
                    }),
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
                    Inbound::Message { peer, data } => self.server.handle_input(Input::Receive {
                        now: Instant::now(),
                        transport: Transport::Tcp,
                        source: peer,
                        data: &data,
                    }),
                    Inbound::Closed { peer, id } => {
                        if self.conns.get(&peer).is_some_and(|c| c.id == id) {
                            self.conns.remove(&peer);
                        }
                    }
                },
                Some(command) = commands.recv() => self.command(command),
                () = timer => self.server.handle_input(Input::Timeout(Instant::now())),
            }
            deadline = self.drain().await;
        }
        drop(inbound);
        self.close().await;
    }

    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.max_connections {
            tracing::warn!(%peer, "too many SIP TCP connections; closing the new one");
            return;
        }
        self.next_conn += 1;
        let id = self.next_conn;
        let (out, queued) = mpsc::channel(CONNECTION_QUEUE);
        self.conns.insert(peer, Conn { id, out });
        let inbound = self.inbound_tx.clone();
        self.tasks
            .spawn(connection(stream, peer, id, inbound, queued));
        tracing::debug!(%peer, "SIP TCP connection accepted");
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
        };
        // The application may have stopped waiting; the core has acted anyway.
        let _ = reply.send(result);
    }

    /// Sends and hands over everything the core has; returns its next timeout.
    async fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.server.poll_output() {
                Output::Transmit(transmit) => self.transmit(transmit).await,
                Output::Event(event) => {
                    if self.events.send(event).is_err() {
                        tracing::debug!("SIP event dropped: the application stopped listening");
                    }
                }
                Output::Timeout(at) => return at,
            }
        }
    }

    async fn transmit(&mut self, transmit: Transmit) {
        let destination = transmit.destination;
        match transmit.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&transmit.contents, destination).await {
                    tracing::warn!(%destination, error = %e, "SIP UDP send failed");
                }
            }
            Transport::Tcp => {
                let Some(conn) = self.conns.get(&destination) else {
                    tracing::debug!(%destination, "SIP TCP connection gone; response dropped");
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
