//! `a=candidate` (RFC 8839 §5.1) <-> Jingle [`Candidate`], and the default
//! destination that goes into the m-line port, `c=` and `a=rtcp`.
//!
//! Line: `<foundation> <component> <transport> <priority> <address> <port>
//! typ <type> [raddr <a>] [rport <p>] [tcptype <t>] [generation <g>]
//! [network-id <n>] [id <id>]` — the extension fields in Chromium's order,
//! Jingle's `id` last. Other extension fields (`ufrag`, `network-cost`) are
//! not carried.
//!
//! The default destination follows Chromium (`UpdateConnectionAddress` in
//! WebRTC's `jsep_session_description.cc`): among UDP candidates of the
//! component, prefer relay over srflx/prflx over host within an address
//! family, and keep IPv4 once found; an mDNS host name gives `0.0.0.0:9`,
//! and no candidate gives `0.0.0.0:9`.

use std::net::IpAddr;

use super::Attribute;
use crate::error::Result;
use crate::jingle::{Candidate, CandidateType};

/// Formats a candidate as the value of `a=candidate`.
pub(super) fn format(c: &Candidate) -> String {
    let mut s = format!(
        "{} {} {} {} {} {} typ {}",
        c.foundation,
        c.component,
        c.protocol,
        c.priority,
        c.ip,
        c.port,
        c.kind.as_str()
    );
    if let Some(a) = &c.rel_addr {
        s.push_str(&format!(" raddr {a}"));
    }
    if let Some(p) = c.rel_port {
        s.push_str(&format!(" rport {p}"));
    }
    if let Some(t) = &c.tcptype {
        s.push_str(&format!(" tcptype {t}"));
    }
    if let Some(g) = c.generation {
        s.push_str(&format!(" generation {g}"));
    }
    if let Some(n) = c.network {
        s.push_str(&format!(" network-id {n}"));
    }
    if let Some(id) = &c.id {
        s.push_str(&format!(" id {id}"));
    }
    s
}

/// Parses the value of an `a=candidate` attribute.
pub(super) fn parse(a: &Attribute) -> Result<Candidate> {
    let value = a.value.as_deref().unwrap_or("");
    let t: Vec<&str> = value.split(' ').filter(|s| !s.is_empty()).collect();
    let [foundation, component, protocol, priority, ip, port, typ, kind, ref ext @ ..] = t[..]
    else {
        return Err(a.error("needs at least 8 fields"));
    };
    if typ != "typ" {
        return Err(a.error(format!("expected \"typ\", found {typ:?}")));
    }
    let num = |what: &str, v: &str| a.error(format!("invalid {what} {v:?}"));
    let mut c = Candidate {
        component: component.parse().map_err(|_| num("component", component))?,
        foundation: foundation.to_owned(),
        generation: None,
        id: None,
        ip: ip.to_owned(),
        port: port.parse().map_err(|_| num("port", port))?,
        priority: priority.parse().map_err(|_| num("priority", priority))?,
        protocol: protocol.to_owned(),
        kind: kind.parse().map_err(|_| num("type", kind))?,
        rel_addr: None,
        rel_port: None,
        network: None,
        tcptype: None,
    };
    for pair in ext.chunks(2) {
        let [key, v] = pair else {
            // `chunks(2)` never yields an empty slice, so `pair[0]` exists.
            return Err(a.error(format!("extension {:?} has no value", pair[0])));
        };
        match *key {
            "raddr" => c.rel_addr = Some((*v).to_owned()),
            "rport" => c.rel_port = Some(v.parse().map_err(|_| num("rport", v))?),
            "tcptype" => c.tcptype = Some((*v).to_owned()),
            "generation" => c.generation = Some(v.parse().map_err(|_| num("generation", v))?),
            "network-id" => c.network = Some(v.parse().map_err(|_| num("network-id", v))?),
            "id" => c.id = Some((*v).to_owned()),
            _ => {}
        }
    }
    Ok(c)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Unspec,
    V4,
    V6,
}

/// The default destination of `component`: (address type, address, port).
pub(super) fn default_destination(
    candidates: &[Candidate],
    component: u8,
) -> (&'static str, String, u16) {
    let mut best: Option<&Candidate> = None;
    let mut current_pref = 0;
    let mut current_family = Family::Unspec;
    for c in candidates {
        if c.component != component || !c.protocol.eq_ignore_ascii_case("udp") {
            continue;
        }
        let pref = match c.kind {
            CandidateType::Host => 1,
            CandidateType::Srflx | CandidateType::Prflx => 2,
            CandidateType::Relay => 3,
        };
        let family = match c.ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => Family::V4,
            Ok(IpAddr::V6(_)) => Family::V6,
            Err(_) => Family::Unspec,
        };
        if (pref <= current_pref && current_family == family)
            || (current_family == Family::V4 && family == Family::V6)
        {
            continue;
        }
        current_pref = pref;
        current_family = family;
        best = Some(c);
    }
    match (best, current_family) {
        (Some(c), Family::V4) => ("IP4", c.ip.clone(), c.port),
        (Some(c), Family::V6) => ("IP6", c.ip.clone(), c.port),
        _ => ("IP4", "0.0.0.0".to_owned(), 9),
    }
}
