//! The ICE-UDP transport (XEP-0176) in the Jitsi dialect: DTLS fingerprints
//! (XEP-0320, with Jitsi's `cryptex`), the bridge's
//! `<web-socket xmlns="http://jitsi.org/protocol/colibri" url>` (several may
//! appear), `<rtcp-mux/>` inside the transport, and the data channel's
//! `<sctpmap xmlns="urn:xmpp:jingle:transports:dtls-sctp:1">`.
//!
//! SDP-only facts are kept under our namespace [`NS_SDP`]: `<ice-options
//! value>` (`a=ice-options`, e.g. `trickle`) and `<ice-lite/>` (`a=ice-lite`).
//!
//! Contract: a candidate needs `component`, `foundation`, `ip`, `port`,
//! `priority`, `protocol` and `type` (everything SDP needs); `generation`,
//! `id` and `network` are optional because an SDP candidate may lack them.
//! `ip` is a string, since mDNS host names (`<uuid>.local`) occur. Unknown
//! children of `<transport>` are kept in `other`.

use std::fmt;

use minidom::Element;

use super::NS_SDP;
use crate::error::{Error, Result};
use crate::ns;
use crate::util::{check, opt_bool, opt_parse, req, req_parse, BuilderExt};

/// DTLS-SCTP data channels (XEP-0343).
pub const NS_DTLS_SCTP: &str = "urn:xmpp:jingle:transports:dtls-sctp:1";

/// The DTLS role (`setup`, RFC 4145 / XEP-0320).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    Actpass,
    Active,
    Passive,
    Holdconn,
}

impl Setup {
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Actpass => "actpass",
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::Holdconn => "holdconn",
        }
    }
}

impl std::str::FromStr for Setup {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Ok(match s {
            "actpass" => Setup::Actpass,
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "holdconn" => Setup::Holdconn,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash setup required? cryptex?>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `sha-256`, `sha-1`...
    pub hash: String,
    pub setup: Option<Setup>,
    pub required: Option<bool>,
    /// Jitsi: RFC 9335 cryptex negotiated (`a=cryptex`).
    pub cryptex: Option<bool>,
    /// Colon-separated hex, as in SDP.
    pub value: String,
}

impl TryFrom<&Element> for Fingerprint {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "fingerprint", ns::JINGLE_DTLS)?;
        Ok(Fingerprint {
            hash: req(elem, "fingerprint", "hash")?.to_owned(),
            setup: opt_parse(elem, "fingerprint", "setup")?,
            required: opt_bool(elem, "fingerprint", "required")?,
            cryptex: opt_bool(elem, "fingerprint", "cryptex")?,
            value: elem.text().trim().to_owned(),
        })
    }
}

impl From<Fingerprint> for Element {
    fn from(f: Fingerprint) -> Element {
        Element::builder("fingerprint", ns::JINGLE_DTLS)
            .a("hash", f.hash)
            .a("setup", f.setup.map(Setup::as_str))
            .a("required", f.required.map(|b| b.to_string()))
            .a("cryptex", f.cryptex.map(|b| b.to_string()))
            .append(f.value)
            .build()
    }
}

/// ICE candidate type (RFC 8445).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    Host,
    Srflx,
    Prflx,
    Relay,
}

impl CandidateType {
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
        }
    }
}

impl std::str::FromStr for CandidateType {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Ok(match s {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::Srflx,
            "prflx" => CandidateType::Prflx,
            "relay" => CandidateType::Relay,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<candidate>` (XEP-0176), `a=candidate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub component: u8,
    pub foundation: String,
    pub generation: Option<u32>,
    /// XEP-0176 id; SDP carries it as the `id` extension field.
    pub id: Option<String>,
    /// An IP address or an mDNS host name.
    pub ip: String,
    pub port: u16,
    pub priority: u32,
    /// `udp`, `tcp`, `ssltcp`, as written.
    pub protocol: String,
    pub kind: CandidateType,
    pub rel_addr: Option<String>,
    pub rel_port: Option<u16>,
    /// Network index; SDP `network-id`.
    pub network: Option<u32>,
    /// `active`, `passive`, `so` (RFC 6544).
    pub tcptype: Option<String>,
}

impl TryFrom<&Element> for Candidate {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "candidate", ns::JINGLE_ICE_UDP)?;
        const E: &str = "candidate";
        Ok(Candidate {
            component: req_parse(elem, E, "component")?,
            foundation: req(elem, E, "foundation")?.to_owned(),
            generation: opt_parse(elem, E, "generation")?,
            id: elem.attr("id").map(str::to_owned),
            ip: req(elem, E, "ip")?.to_owned(),
            port: req_parse(elem, E, "port")?,
            priority: req_parse(elem, E, "priority")?,
            protocol: req(elem, E, "protocol")?.to_owned(),
            kind: req_parse(elem, E, "type")?,
            rel_addr: elem.attr("rel-addr").map(str::to_owned),
            rel_port: opt_parse(elem, E, "rel-port")?,
            network: opt_parse(elem, E, "network")?,
            tcptype: elem.attr("tcptype").map(str::to_owned),
        })
    }
}

impl TryFrom<Element> for Candidate {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        Candidate::try_from(&elem)
    }
}

impl From<Candidate> for Element {
    fn from(c: Candidate) -> Element {
        Element::builder("candidate", ns::JINGLE_ICE_UDP)
            .a("component", c.component)
            .a("foundation", c.foundation)
            .a("generation", c.generation)
            .a("id", c.id)
            .a("ip", c.ip)
            .a("port", c.port)
            .a("priority", c.priority)
            .a("protocol", c.protocol)
            .a("type", c.kind.as_str())
            .a("rel-addr", c.rel_addr)
            .a("rel-port", c.rel_port)
            .a("network", c.network)
            .a("tcptype", c.tcptype)
            .build()
    }
}

/// `<sctpmap number protocol streams?>`: the SCTP port of a data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpMap {
    /// SCTP port (`a=sctp-port`).
    pub number: u16,
    /// `webrtc-datachannel`.
    pub protocol: String,
    pub streams: Option<u32>,
}

/// `<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1">`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceUdpTransport {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub fingerprints: Vec<Fingerprint>,
    pub candidates: Vec<Candidate>,
    /// Bridge-channel URLs (`wss://.../colibri-ws/...`).
    pub web_sockets: Vec<String>,
    pub rtcp_mux: bool,
    pub sctp: Option<SctpMap>,
    /// `a=ice-options` tokens, e.g. `trickle`.
    pub ice_options: Vec<String>,
    /// `a=ice-lite`.
    pub ice_lite: bool,
    /// Children we do not model, kept verbatim.
    pub other: Vec<Element>,
}

impl TryFrom<&Element> for IceUdpTransport {
    type Error = Error;
    fn try_from(elem: &Element) -> Result<Self> {
        check(elem, "transport", ns::JINGLE_ICE_UDP)?;
        let mut t = IceUdpTransport {
            ufrag: elem.attr("ufrag").map(str::to_owned),
            pwd: elem.attr("pwd").map(str::to_owned),
            ..IceUdpTransport::default()
        };
        for child in elem.children() {
            match child.name() {
                "candidate" if child.has_ns(ns::JINGLE_ICE_UDP) => {
                    t.candidates.push(Candidate::try_from(child)?)
                }
                "rtcp-mux" if child.has_ns(ns::JINGLE_ICE_UDP) => t.rtcp_mux = true,
                "fingerprint" if child.has_ns(ns::JINGLE_DTLS) => {
                    t.fingerprints.push(Fingerprint::try_from(child)?)
                }
                "web-socket" if child.has_ns(ns::COLIBRI) => t
                    .web_sockets
                    .push(req(child, "web-socket", "url")?.to_owned()),
                "sctpmap" if child.has_ns(NS_DTLS_SCTP) => {
                    t.sctp = Some(SctpMap {
                        number: req_parse(child, "sctpmap", "number")?,
                        protocol: req(child, "sctpmap", "protocol")?.to_owned(),
                        streams: opt_parse(child, "sctpmap", "streams")?,
                    })
                }
                "ice-options" if child.has_ns(NS_SDP) => t.ice_options.extend(
                    req(child, "ice-options", "value")?
                        .split_whitespace()
                        .map(str::to_owned),
                ),
                "ice-lite" if child.has_ns(NS_SDP) => t.ice_lite = true,
                _ => t.other.push(child.clone()),
            }
        }
        Ok(t)
    }
}

impl TryFrom<Element> for IceUdpTransport {
    type Error = Error;
    fn try_from(elem: Element) -> Result<Self> {
        IceUdpTransport::try_from(&elem)
    }
}

impl From<IceUdpTransport> for Element {
    fn from(t: IceUdpTransport) -> Element {
        Element::builder("transport", ns::JINGLE_ICE_UDP)
            .a("ufrag", t.ufrag)
            .a("pwd", t.pwd)
            .append_all(t.web_sockets.into_iter().map(|url| {
                Element::builder("web-socket", ns::COLIBRI)
                    .a("url", url)
                    .build()
            }))
            .append_all(
                t.rtcp_mux
                    .then(|| Element::bare("rtcp-mux", ns::JINGLE_ICE_UDP)),
            )
            .append_all(t.fingerprints.into_iter().map(Element::from))
            .append_all(t.candidates.into_iter().map(Element::from))
            .append_all(t.sctp.map(|s| {
                Element::builder("sctpmap", NS_DTLS_SCTP)
                    .a("number", s.number)
                    .a("protocol", s.protocol)
                    .a("streams", s.streams)
                    .build()
            }))
            .append_all((!t.ice_options.is_empty()).then(|| {
                Element::builder("ice-options", NS_SDP)
                    .a("value", t.ice_options.join(" "))
                    .build()
            }))
            .append_all(t.ice_lite.then(|| Element::bare("ice-lite", NS_SDP)))
            .append_all(t.other)
            .build()
    }
}
