//! What the user agent client cores ([`Client`](super::client::Client) and
//! [`Registration`](super::register::Registration)) share: their input and output
//! types, identifiers, request serialization, next-hop addresses and the
//! non-INVITE client transaction (RFC 3261 §17.1.2, Timers E and F).

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::inbound::Message;
use super::{Transmit, Transport};

/// What the driver feeds a client core.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram (UDP) or one framed message (TCP) from `source`: a response to
    /// one of our requests, or a request inside one of our dialogs.
    Receive {
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &'a [u8],
    },
    /// The time given in the last [`Output::Timeout`] has come.
    Timeout(Instant),
}

/// What the driver drains from a client core, until [`Output::Timeout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<E> {
    Transmit(Transmit),
    Event(E),
    /// Nothing more now; feed [`Input::Timeout`] at this time (`None`: no timer).
    Timeout(Option<Instant>),
}

/// An invalid setting of a client core, named by its key (caller's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {key}: {why}")]
pub struct ConfigError {
    pub key: &'static str,
    pub why: &'static str,
}

/// A random seed from the standard library's per-process hash keys (which come
/// from the operating system's random source): the default for the cores'
/// `seed`, so that two gateways never share Call-IDs, tags or cnonces.
pub(crate) fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x6761_7465_7761_7921);
    hasher.finish()
}

/// Branches, tags, Call-IDs and cnonces from a seeded splitmix64 sequence.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    state: u64,
}

impl Ids {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.state;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// An RFC 3261 branch (magic cookie `z9hG4bK`).
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.next())
    }

    pub fn tag(&mut self) -> String {
        format!("{:x}", self.next())
    }

    pub fn call_id(&mut self, host: &str) -> String {
        format!("{:016x}{:08x}@{host}", self.next(), self.next() as u32)
    }

    pub fn cnonce(&mut self) -> String {
        format!("{:016x}", self.next())
    }
}

/// The `host[:port]` of a SIP URI (or of `<URI>`), for Via sent-by.
pub(crate) fn host_port(uri: &str) -> Option<&str> {
    let uri = uri.trim().trim_start_matches('<');
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return None;
    }
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|h| !h.is_empty())
}

/// The host of a Via sent-by (`host[:port]`), without brackets, for Call-IDs.
pub(crate) fn host_of(sent_by: &str) -> &str {
    let host = match sent_by.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => sent_by,
    };
    host.trim_matches(['[', ']'])
}

/// The socket address a SIP URI names, when its host is an IP literal (we do
/// no DNS here; the caller falls back to an address it knows).
pub(crate) fn uri_addr(uri: &str) -> Option<SocketAddr> {
    let host = host_port(uri)?;
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Some(addr);
    }
    let secure = uri.trim().trim_start_matches('<').starts_with("sips:");
    let port = if secure { 5061 } else { 5060 };
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// True when `s` can go into a header or start line (no CR, LF or NUL).
pub(crate) fn is_clean(s: &str) -> bool {
    !s.contains(['\r', '\n', '\0'])
}

/// A Via value for a request we send (RFC 3581 `rport` asked for).
pub(crate) fn via(transport: Transport, sent_by: &str, branch: &str) -> String {
    let t = match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    format!("SIP/2.0/{t} {sent_by};rport;branch={branch}")
}

/// Serializes a request; Content-Length is added last.
pub(crate) fn serialize(
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {uri} SIP/2.0\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `"display" <uri>` with the display name quoted and escaped.
pub(crate) fn name_addr_value(display: Option<&str>, uri: &str) -> String {
    match display.filter(|d| !d.is_empty()) {
        Some(d) => {
            let escaped = d.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\" <{uri}>")
        }
        None => format!("<{uri}>"),
    }
}

/// What a timer did to a non-INVITE transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tick {
    Idle,
    Resend(Transmit),
    /// Timer F: no final response in 64·T1.
    TimedOut,
}

/// A non-INVITE client transaction (REGISTER, BYE, CANCEL): Timer E
/// retransmits over UDP (T1 doubling up to T2; T2 once a provisional came),
/// Timer F gives up after 64·T1.
#[derive(Debug, Clone)]
pub(crate) struct NonInvite {
    pub branch: String,
    pub cseq: u32,
    pub method: &'static str,
    transmit: Transmit,
    next: Option<Instant>,
    interval: Duration,
    give_up: Instant,
}

impl NonInvite {
    /// Starts the transaction; the caller sends [`NonInvite::transmit`] once now.
    pub fn new(
        method: &'static str,
        cseq: u32,
        branch: String,
        transmit: Transmit,
        now: Instant,
        t1: Duration,
    ) -> Self {
        let udp = transmit.transport == Transport::Udp;
        Self {
            branch,
            cseq,
            method,
            next: udp.then_some(now + t1),
            interval: t1,
            give_up: now + 64 * t1,
            transmit,
        }
    }

    pub fn transmit(&self) -> Transmit {
        self.transmit.clone()
    }

    /// The response belongs to this transaction (branch, CSeq number and method).
    pub fn matches(&self, msg: &Message) -> bool {
        msg.branch() == Some(self.branch.as_str()) && msg.cseq() == (self.cseq, self.method)
    }

    /// A provisional response: retransmit every T2 from now on (§17.1.2.2).
    pub fn provisional(&mut self, now: Instant, t2: Duration) {
        if self.next.is_some() {
            self.interval = t2;
            self.next = Some(now + t2);
        }
    }

    pub fn tick(&mut self, now: Instant, t2: Duration) -> Tick {
        if now >= self.give_up {
            return Tick::TimedOut;
        }
        match self.next {
            Some(next) if now >= next => {
                self.interval = (self.interval * 2).min(t2);
                self.next = Some(now + self.interval);
                Tick::Resend(self.transmit.clone())
            }
            _ => Tick::Idle,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.next.map_or(self.give_up, |n| n.min(self.give_up))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_hosts_and_addresses() {
        assert_eq!(
            host_port("sip:gw@192.0.2.1:5080;transport=udp"),
            Some("192.0.2.1:5080")
        );
        assert_eq!(host_port("<sip:example.com>"), Some("example.com"));
        assert_eq!(host_port("tel:+123"), None);
        assert_eq!(
            uri_addr("sip:bob@192.0.2.9:5070;lr"),
            "192.0.2.9:5070".parse().ok()
        );
        assert_eq!(uri_addr("sip:192.0.2.9"), "192.0.2.9:5060".parse().ok());
        assert_eq!(
            uri_addr("sips:[2001:db8::1]"),
            "[2001:db8::1]:5061".parse().ok()
        );
        assert_eq!(uri_addr("sip:bob@proxy.example.com"), None);
        assert_eq!(host_of("192.0.2.1:5060"), "192.0.2.1");
        assert_eq!(host_of("[2001:db8::1]:5060"), "2001:db8::1");
        assert_eq!(host_of("gw.example.com"), "gw.example.com");
    }

    #[test]
    fn timer_e_doubles_to_t2_and_timer_f_gives_up() {
        let (t1, t2) = (Duration::from_millis(500), Duration::from_secs(4));
        let start = Instant::now();
        let transmit = Transmit {
            transport: Transport::Udp,
            destination: "192.0.2.1:5060".parse().expect("literal"),
            contents: b"BYE".to_vec(),
        };
        let mut tx = NonInvite::new("BYE", 2, "z9hG4bKa".into(), transmit, start, t1);
        let mut resends = Vec::new();
        loop {
            let at = tx.deadline();
            match tx.tick(at, t2) {
                Tick::Resend(_) => resends.push((at - start).as_millis()),
                Tick::TimedOut => break assert_eq!(at - start, 64 * t1),
                Tick::Idle => panic!("deadline without work"),
            }
        }
        assert_eq!(
            resends,
            [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
    }
}
