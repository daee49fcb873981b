//! The dial-out side of the [driver](super): the [`Client`] and an optional
//! [`Registration`] run next to the server core, on its sockets and its timer.
//!
//! Contract: a received message whose Call-ID ([`call_id_of`]) one of these
//! cores owns (a response to our INVITE, CANCEL, BYE or REGISTER, or a request
//! inside a dialed call) goes to that core and never to the server, so the
//! application does not see it as [`Event::Response`]; everything else goes to
//! the server. The cores' events reach the application as [`Event::Dial`] and
//! [`Event::Registration`]. Their requests over TCP take the open connection
//! to the destination, or open one (the server's never do). The registration
//! starts with the driver; shutdown un-registers first and waits up to
//! [`UNREGISTER_WAIT`] for the registrar's answer.
//!
//! Empty `contact` (and, for the client, `from_uri`) settings are filled in
//! from the bound address: `sip:gateway@<ip>:<port>` (`sip:gateway@<ip>`).
//! An unspecified bind IP (`0.0.0.0`, `::`) becomes the address the host
//! routes out of (found without sending anything), else loopback; behind NAT,
//! set the contact explicitly.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Command, CommandError, Handle, Reply};
use crate::sip::client::{call_id_of, Client, ClientConfig, Input};
use crate::sip::register::{RegisterConfig, RegisterEvent, Registration};
use crate::sip::uac;
use crate::sip::{CallId, Event, Output, Transport};

/// How long un-registering (by [`Handle::unregister`] or at shutdown) waits
/// for the registrar's answer.
pub const UNREGISTER_WAIT: Duration = Duration::from_secs(2);

/// Commands for the client and the registration.
pub(super) enum UacCommand {
    Dial {
        target: String,
        destination: SocketAddr,
        transport: Transport,
        sdp: String,
        headers: Vec<(String, String)>,
        reply: Reply<CallId>,
    },
    Cancel {
        call_id: CallId,
        reply: Reply,
    },
    Hangup {
        call_id: CallId,
        reply: Reply,
    },
    Unregister {
        reply: Reply,
    },
}

impl Handle {
    /// Dials out (see [`Client::invite`]): an INVITE with `sdp_offer` to
    /// `target_uri`, sent to `destination` (or the client's outbound proxy).
    /// The call's progress comes as [`Event::Dial`]; over TCP a connection to
    /// `destination` is opened unless one is open already.
    pub async fn dial(
        &self,
        target_uri: impl Into<String>,
        destination: SocketAddr,
        transport: Transport,
        sdp_offer: impl Into<String>,
        extra_headers: Vec<(String, String)>,
    ) -> Result<CallId, CommandError> {
        let (target, sdp) = (target_uri.into(), sdp_offer.into());
        self.command(|reply| {
            Command::Uac(UacCommand::Dial {
                target,
                destination,
                transport,
                sdp,
                headers: extra_headers,
                reply,
            })
        })
        .await
    }

    /// Cancels a dialed call not yet answered (see [`Client::cancel`]); it
    /// ends with [`ClientEvent::Cancelled`](crate::sip::ClientEvent::Cancelled).
    pub async fn cancel_dial(&self, call_id: &CallId) -> Result<(), CommandError> {
        let call_id = call_id.clone();
        self.command(|reply| Command::Uac(UacCommand::Cancel { call_id, reply }))
            .await
    }

    /// Ends a dialed call: BYE when answered, CANCEL when not yet (see
    /// [`Client::hangup`]).
    pub async fn hangup_dial(&self, call_id: &CallId) -> Result<(), CommandError> {
        let call_id = call_id.clone();
        self.command(|reply| Command::Uac(UacCommand::Hangup { call_id, reply }))
            .await
    }

    /// Removes our binding at the registrar (`Expires: 0`) and stops
    /// refreshing it. Waits up to [`UNREGISTER_WAIT`] for the registration to
    /// finish ([`RegisterEvent::Unregistered`], which also comes as an event):
    /// [`CommandError::Timeout`] after that (the binding then lasts until it
    /// expires). `Ok` at once when already unregistered.
    pub async fn unregister(&self) -> Result<(), CommandError> {
        let unregistered = self.command(|reply| Command::Uac(UacCommand::Unregister { reply }));
        tokio::time::timeout(UNREGISTER_WAIT, unregistered)
            .await
            .unwrap_or(Err(CommandError::Timeout))
    }

    /// The registrar holds an unexpired binding for us (false without a
    /// registration, or once the driver has stopped).
    pub fn registered(&self) -> bool {
        *self.registered.borrow()
    }
}

/// Where the registration stands, as far as the driver cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Our un-REGISTER is out.
    Unregistering,
    /// [`RegisterEvent::Unregistered`] came: nothing more will.
    Done,
}

/// The client and registration cores, as the driver loop sees them.
pub(super) struct Uac {
    client: Option<Client>,
    registration: Option<Registration>,
    phase: Phase,
    /// [`Handle::unregister`] callers waiting for [`Phase::Done`].
    waiting: Vec<Reply>,
    registered: watch::Sender<bool>,
    /// The cores' last timeouts.
    client_at: Option<Instant>,
    registration_at: Option<Instant>,
}

impl Uac {
    /// Builds the configured cores; `bound` is the driver's local address.
    pub(super) fn new(
        client: Option<ClientConfig>,
        register: Option<RegisterConfig>,
        bound: SocketAddr,
    ) -> io::Result<(Self, watch::Receiver<bool>)> {
        let invalid = |core: &str, e: uac::ConfigError| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("SIP {core}: {e}"))
        };
        let mut derived = None;
        let mut host = || *derived.get_or_insert_with(|| advertised(bound));
        let client = match client {
            Some(mut config) => {
                if config.contact.is_empty() {
                    config.contact = format!("sip:gateway@{}", host());
                }
                if config.from_uri.is_empty() {
                    config.from_uri = format!("sip:gateway@{}", uri_host(host().ip()));
                }
                Some(Client::new(config).map_err(|e| invalid("client", e))?)
            }
            None => None,
        };
        let registration = match register {
            Some(mut config) => {
                if config.contact.is_empty() {
                    config.contact = format!("sip:gateway@{}", host());
                }
                Some(Registration::new(config).map_err(|e| invalid("registration", e))?)
            }
            None => None,
        };
        let (registered, watching) = watch::channel(false);
        let uac = Self {
            client,
            registration,
            phase: Phase::Running,
            waiting: Vec::new(),
            registered,
            client_at: None,
            registration_at: None,
        };
        Ok((uac, watching))
    }

    /// Starts the registration, if there is one.
    pub(super) fn start(&mut self, now: Instant) {
        if let Some(registration) = &mut self.registration {
            tracing::info!(call_id = registration.call_id(), "registering");
            registration.register(now);
        }
    }

    /// Feeds a received message to the core owning its Call-ID; false when
    /// neither does (the server's then).
    pub(super) fn receive(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &[u8],
    ) -> bool {
        let idle = self.client.as_ref().is_none_or(Client::is_empty);
        if idle && self.registration.is_none() {
            return false;
        }
        let Some(call_id) = call_id_of(data) else {
            return false;
        };
        let input = Input::Receive {
            now,
            transport,
            source,
            data,
        };
        if let Some(client) = self.client.as_mut().filter(|c| c.owns(call_id.as_str())) {
            client.handle_input(input);
            return true;
        }
        let registration = self.registration.as_mut();
        if let Some(registration) = registration.filter(|r| r.owns(call_id.as_str())) {
            registration.handle_input(input);
            return true;
        }
        false
    }

    /// Feeds the time to the cores whose timeout has come.
    pub(super) fn timeout(&mut self, now: Instant) {
        if let Some(client) = &mut self.client {
            if self.client_at.is_some_and(|at| at <= now) {
                client.handle_input(Input::Timeout(now));
            }
        }
        if let Some(registration) = &mut self.registration {
            if self.registration_at.is_some_and(|at| at <= now) {
                registration.handle_input(Input::Timeout(now));
            }
        }
    }

    pub(super) fn command(&mut self, command: UacCommand, now: Instant) {
        let no_client = CommandError::NotConfigured("dial-out");
        // The application may have stopped waiting; the core has acted anyway.
        match command {
            UacCommand::Dial {
                target,
                destination,
                transport,
                sdp,
                headers,
                reply,
            } => {
                let dialed = match &mut self.client {
                    Some(client) => client
                        .invite(&target, destination, transport, &sdp, &headers, now)
                        .map_err(CommandError::from),
                    None => Err(no_client),
                };
                if let Ok(call_id) = &dialed {
                    tracing::info!(%call_id, ?transport, "dialing out");
                }
                let _ = reply.send(dialed);
            }
            UacCommand::Cancel { call_id, reply } => {
                let cancelled = match &mut self.client {
                    Some(client) => client.cancel(&call_id, now).map_err(CommandError::from),
                    None => Err(no_client),
                };
                let _ = reply.send(cancelled);
            }
            UacCommand::Hangup { call_id, reply } => {
                let hung_up = match &mut self.client {
                    Some(client) => client.hangup(&call_id, now).map_err(CommandError::from),
                    None => Err(no_client),
                };
                let _ = reply.send(hung_up);
            }
            UacCommand::Unregister { reply } => {
                if self.registration.is_none() {
                    let _ = reply.send(Err(CommandError::NotConfigured("registration")));
                } else if self.phase == Phase::Done {
                    let _ = reply.send(Ok(()));
                } else {
                    self.waiting.push(reply);
                    self.unregister(now);
                }
            }
        }
    }

    /// At shutdown: un-registers; returns until when to wait for it (`None`:
    /// nothing to wait for).
    pub(super) fn shutdown(&mut self, now: Instant) -> Option<Instant> {
        if self.registration.is_none() || self.phase == Phase::Done {
            return None;
        }
        self.unregister(now);
        Some(now + UNREGISTER_WAIT)
    }

    /// The registration has ended (or there is none).
    pub(super) fn is_unregistered(&self) -> bool {
        self.registration.is_none() || self.phase == Phase::Done
    }

    /// The driver stops: nothing will refresh a binding any more.
    pub(super) fn stopped(&mut self) {
        self.registered.send_replace(false);
    }

    fn unregister(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        if let Some(registration) = &mut self.registration {
            tracing::info!(call_id = registration.call_id(), "unregistering");
            registration.unregister(now);
            self.phase = Phase::Unregistering;
        }
    }

    /// The next output of the client, then of the registration; at the end
    /// the earlier of their timeouts.
    pub(super) fn poll_output(&mut self) -> Output {
        if let Some(client) = &mut self.client {
            match client.poll_output() {
                uac::Output::Transmit(transmit) => return Output::Transmit(transmit),
                uac::Output::Event(event) => return Output::Event(Event::Dial(event)),
                uac::Output::Timeout(at) => self.client_at = at,
            }
        }
        if let Some(registration) = &mut self.registration {
            let output = registration.poll_output();
            let now_registered = registration.is_registered();
            self.registered.send_if_modified(|registered| {
                std::mem::replace(registered, now_registered) != now_registered
            });
            match output {
                uac::Output::Transmit(transmit) => return Output::Transmit(transmit),
                uac::Output::Event(event) => {
                    if event == RegisterEvent::Unregistered {
                        self.phase = Phase::Done;
                        for reply in self.waiting.drain(..) {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    return Output::Event(Event::Registration(event));
                }
                uac::Output::Timeout(at) => self.registration_at = at,
            }
        }
        let next = [self.client_at, self.registration_at];
        Output::Timeout(next.into_iter().flatten().min())
    }
}

/// The address our URIs name: `bound`, with an unspecified IP replaced (see
/// the module docs).
fn advertised(bound: SocketAddr) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    // A documentation address stands for "anywhere": the default route.
    let (probe, loopback): (SocketAddr, IpAddr) = match bound {
        SocketAddr::V4(_) => (
            (Ipv4Addr::new(192, 0, 2, 1), 5060).into(),
            Ipv4Addr::LOCALHOST.into(),
        ),
        SocketAddr::V6(_) => (
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 5060).into(),
            Ipv6Addr::LOCALHOST.into(),
        ),
    };
    let ip = match service::local_ip_towards(probe) {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => loopback,
    };
    tracing::info!(%ip, "SIP contact derived from the bind address; set it to override");
    SocketAddr::new(ip, bound.port())
}

/// An IP as a URI host (IPv6 in brackets).
fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_contacts_are_derived_from_the_bound_address() {
        let bound = SocketAddr::from(([127, 0, 0, 1], 5062));
        let client = ClientConfig {
            contact: String::new(),
            from_uri: String::new(),
            ..ClientConfig::default()
        };
        let register = RegisterConfig {
            contact: String::new(),
            ..RegisterConfig::default()
        };
        let (mut uac, registered) =
            Uac::new(Some(client), Some(register), bound).expect("valid settings");
        let now = Instant::now();
        uac.start(now);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let dial = UacCommand::Dial {
            target: "sip:bob@127.0.0.1:5070".into(),
            destination: SocketAddr::from(([127, 0, 0, 1], 5070)),
            transport: Transport::Udp,
            sdp: "v=0\r\n".into(),
            headers: Vec::new(),
            reply,
        };
        uac.command(dial, now);
        let call_id = answer.blocking_recv().expect("answered").expect("dialed");
        let mut sent = Vec::new();
        let next = loop {
            match uac.poll_output() {
                Output::Transmit(t) => sent.push(String::from_utf8(t.contents).expect("text")),
                Output::Timeout(at) => break at,
                Output::Event(e) => panic!("unexpected {e:?}"),
            }
        };
        assert!(next.is_some_and(|at| at > now));
        let [invite, register] = &sent[..] else {
            panic!("expected INVITE and REGISTER: {sent:?}");
        };
        let contact = "Contact: <sip:gateway@127.0.0.1:5062>";
        assert!(invite.starts_with("INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\n"));
        assert!(invite.contains(contact) && invite.contains("<sip:gateway@127.0.0.1>;tag="));
        assert!(register.starts_with("REGISTER ") && register.contains(contact));
        let call_id_line = format!("Call-ID: {call_id}\r\n");
        assert!(invite.contains(&call_id_line), "{invite}");
        assert!(!*registered.borrow());
        assert_eq!(advertised(bound), bound);
        let derived = advertised(SocketAddr::from(([0, 0, 0, 0], 5062)));
        assert!(!derived.ip().is_unspecified() && derived.port() == 5062);
        assert_eq!(uri_host("::1".parse().expect("an IP")), "[::1]");
    }

    #[test]
    fn a_bad_contact_names_the_core_and_key() {
        let bound = SocketAddr::from(([127, 0, 0, 1], 5062));
        let client = ClientConfig {
            contact: "gateway".into(),
            ..ClientConfig::default()
        };
        let error = Uac::new(Some(client), None, bound)
            .err()
            .expect("contact refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            error.to_string(),
            "SIP client: invalid contact: not a sip: URI with a host"
        );
    }

    #[test]
    fn commands_without_a_core_say_what_is_missing() {
        let bound = SocketAddr::from(([127, 0, 0, 1], 5062));
        let (mut uac, _) = Uac::new(None, None, bound).expect("nothing to check");
        let (reply, answer) = tokio::sync::oneshot::channel();
        let call_id = CallId::new("x");
        uac.command(UacCommand::Hangup { call_id, reply }, Instant::now());
        let error = answer.blocking_recv().expect("answered");
        assert_eq!(error, Err(CommandError::NotConfigured("dial-out")));
        let (reply, answer) = tokio::sync::oneshot::channel();
        uac.command(UacCommand::Unregister { reply }, Instant::now());
        let error = answer.blocking_recv().expect("answered").unwrap_err();
        assert_eq!(error.to_string(), "registration is not configured");
        assert!(uac.is_unregistered() && uac.shutdown(Instant::now()).is_none());
        assert_eq!(uac.poll_output(), Output::Timeout(None));
    }

    /// A 200 to `request`, with its Via, From, To, Call-ID and CSeq.
    fn ok(request: &[u8], extra: &str) -> Vec<u8> {
        let request = String::from_utf8_lossy(request);
        let copied = ["via:", "from:", "to:", "call-id:", "cseq:"];
        let mut response = "SIP/2.0 200 OK\r\n".to_owned();
        for line in request.lines() {
            if copied
                .iter()
                .any(|h| line.to_ascii_lowercase().starts_with(h))
            {
                response.push_str(line);
                response.push_str("\r\n");
            }
        }
        format!("{response}{extra}Content-Length: 0\r\n\r\n").into_bytes()
    }

    #[tokio::test]
    async fn registration_is_routed_apart_and_shutdown_waits_for_the_unregister_briefly() {
        use super::super::{Driver, Settings};
        let registrar = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let register = RegisterConfig {
            registrar: registrar.local_addr().expect("bound"),
            contact: String::new(),
            ..RegisterConfig::default()
        };
        let settings = Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            register: Some(register),
            ..Settings::default()
        };
        let (driver, mut events) = Driver::start(settings).await.expect("started");
        let (handle, us) = (driver.handle(), driver.local_addr());
        let mut buf = vec![0u8; 65_535];
        let wait = Duration::from_secs(2);
        let receive = tokio::time::timeout(wait, registrar.recv_from(&mut buf));
        let (n, from) = receive.await.expect("REGISTER sent").expect("received");
        assert_eq!(from, us);
        let contact = format!("Contact: <sip:gateway@{us}>\r\n");
        assert!(String::from_utf8_lossy(&buf[..n]).contains(&contact));
        let granted = ok(&buf[..n], "Expires: 60\r\n");
        registrar.send_to(&granted, us).await.expect("sent");
        let event = tokio::time::timeout(wait, events.recv())
            .await
            .expect("event");
        let want = Event::Registration(RegisterEvent::Registered { expires: 60 });
        assert_eq!(event, Some(want));
        assert!(handle.registered());
        // A response nobody owns still reaches the application as is.
        let ours = call_id_of(&buf[..n]).expect("a Call-ID");
        let stray = String::from_utf8(ok(&buf[..n], "")).expect("text");
        let stray = stray.replace(ours.as_str(), "stray@example.com");
        registrar.send_to(stray.as_bytes(), us).await.expect("sent");
        let event = tokio::time::timeout(wait, events.recv())
            .await
            .expect("event");
        assert!(matches!(event, Some(Event::Response { .. })), "{event:?}");

        // The registrar never answers the un-REGISTER: shutdown gives up on it.
        let started = Instant::now();
        let stopping = tokio::spawn(driver.shutdown());
        let receive = tokio::time::timeout(wait, registrar.recv_from(&mut buf));
        let (n, _) = receive.await.expect("un-REGISTER sent").expect("received");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("Expires: 0\r\n"));
        stopping.await.expect("stopped");
        let took = started.elapsed();
        assert!(took >= UNREGISTER_WAIT && took < UNREGISTER_WAIT + Duration::from_secs(2));
        assert!(!handle.registered());
        assert_eq!(events.recv().await, None);
    }
}
