//! A dialog the dial-out client created with an INVITE (RFC 3261 §12, UAC
//! side): its tags, remote target and route set; the requests we send in it
//! (ACK for the 2xx, BYE); and what we answer to the requests the callee sends
//! in it. (The dial-in server's dialogs live in `dialog.rs`.)
//!
//! Routing (§12.2.1.1): the route set is the 2xx's Record-Route reversed; a
//! first route with `lr` is loose (Request-URI = remote target, Route = route
//! set), one without is strict (Request-URI = that route). We do no DNS: the
//! next hop is the outbound proxy, else the first route or the remote target
//! when its host is an IP literal, else the address the INVITE went to.
//!
//! Answers ([`Dialog::serve`]): BYE 200; INFO with a DTMF body
//! (`application/dtmf-relay` `Signal=5`, or `application/dtmf`) 200 and the
//! digit, INFO without a body 200, other INFO 415; re-INVITE 200 with our last
//! SDP (a callee putting us on hold needs nothing else); OPTIONS 200; anything
//! else 501. A CSeq lower than the last one is refused with 500 (§12.2.2).

use std::net::SocketAddr;

use super::inbound::{param, Message};
use super::message::name_addr;
use super::uac::{serialize, uri_addr};

/// Methods we answer inside a dialog.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
const DTMF_TYPES: &str = "application/dtmf-relay, application/dtmf";

#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub call_id: String,
    /// Our From value, with our tag.
    pub from: String,
    pub local_tag: String,
    /// The callee's To value from the 2xx, with its tag.
    pub to: String,
    pub remote_tag: String,
    pub remote_target: String,
    /// Route values in the order we send them.
    pub route_set: Vec<String>,
    /// CSeq of our last request in the dialog.
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
}

/// What serving a request means for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Nothing,
    Bye,
    Dtmf(char),
    Reoffer(Option<String>),
}

/// Our answer to a request in the dialog.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub extra: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub outcome: Outcome,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            extra: Vec::new(),
            body: Vec::new(),
            outcome: Outcome::Nothing,
        }
    }
}

impl Dialog {
    /// The dialog a 2xx to our INVITE (CSeq `cseq`) establishes. Without a
    /// Contact, the remote target stays the INVITE's Request-URI.
    pub fn from_2xx(resp: &Message, from: &str, local_tag: &str, target: &str, cseq: u32) -> Self {
        let remote_target = resp
            .values("contact")
            .next()
            .and_then(|c| name_addr(c).ok())
            .map_or_else(|| target.to_owned(), |(_, uri, _)| uri.to_owned());
        let mut route_set: Vec<String> = resp
            .values("record-route")
            .filter(|r| name_addr(r).is_ok())
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        Self {
            call_id: resp.call_id().to_owned(),
            from: from.to_owned(),
            local_tag: local_tag.to_owned(),
            to: resp.one("to").unwrap_or_default().to_owned(),
            remote_tag: resp.tag("to").unwrap_or_default().to_owned(),
            remote_target,
            route_set,
            local_cseq: cseq,
            remote_cseq: None,
        }
    }

    /// Request-URI and Route values for our next request.
    pub fn routing(&self) -> (String, Vec<String>) {
        match self.route_set.first().and_then(|r| name_addr(r).ok()) {
            Some((_, uri, _)) if param(uri, "lr").is_none() => {
                let mut routes = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (uri.to_owned(), routes)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        }
    }

    /// Where our next request goes (see the module docs).
    pub fn next_hop(&self, proxy: Option<SocketAddr>, fallback: SocketAddr) -> SocketAddr {
        if let Some(proxy) = proxy {
            return proxy;
        }
        let first = match self.route_set.first() {
            Some(route) => name_addr(route).ok().map(|(_, uri, _)| uri),
            None => Some(self.remote_target.as_str()),
        };
        first.and_then(uri_addr).unwrap_or(fallback)
    }

    /// Serializes a request in the dialog (`via` carries its branch).
    pub fn request(
        &self,
        method: &str,
        cseq: u32,
        via: String,
        extra: &[(&str, String)],
        body: &[u8],
    ) -> Vec<u8> {
        let (uri, routes) = self.routing();
        let mut headers = vec![("Via", via), ("Max-Forwards", "70".to_owned())];
        headers.extend(routes.into_iter().map(|r| ("Route", r)));
        headers.extend([
            ("From", self.from.clone()),
            ("To", self.to.clone()),
            ("Call-ID", self.call_id.clone()),
            ("CSeq", format!("{cseq} {method}")),
        ]);
        headers.extend(extra.iter().cloned());
        serialize(method, &uri, &headers, body)
    }

    /// True when `req` carries this dialog's tags (To ours, From theirs).
    pub fn matches(&self, req: &Message) -> bool {
        req.tag("to") == Some(self.local_tag.as_str())
            && req.tag("from") == Some(self.remote_tag.as_str())
    }

    /// Decides the answer to a request the callee sent in this dialog.
    pub fn serve(&mut self, req: &Message, method: &str, local_sdp: &str, contact: &str) -> Reply {
        let (cseq, _) = req.cseq();
        if self.remote_cseq.is_some_and(|last| cseq < last) {
            return Reply::status(500);
        }
        self.remote_cseq = Some(cseq);
        match method {
            "BYE" => Reply {
                outcome: Outcome::Bye,
                ..Reply::status(200)
            },
            "INFO" => info(req),
            "INVITE" => {
                let contact_uri = req.values("contact").next().and_then(|c| name_addr(c).ok());
                if let Some((_, uri, _)) = contact_uri {
                    self.remote_target = uri.to_owned();
                }
                Reply {
                    status: 200,
                    extra: vec![
                        ("Contact", format!("<{contact}>")),
                        ("Allow", ALLOW.to_owned()),
                        ("Content-Type", "application/sdp".to_owned()),
                    ],
                    body: local_sdp.as_bytes().to_vec(),
                    outcome: Outcome::Reoffer(req.body_text()),
                }
            }
            "OPTIONS" => Reply {
                extra: vec![
                    ("Allow", ALLOW.to_owned()),
                    ("Accept", "application/sdp".to_owned()),
                ],
                ..Reply::status(200)
            },
            _ => Reply {
                extra: vec![("Allow", ALLOW.to_owned())],
                ..Reply::status(501)
            },
        }
    }
}

fn info(req: &Message) -> Reply {
    if req.body.is_empty() {
        return Reply::status(200);
    }
    let content_type = req.one("content-type").unwrap_or_default();
    match dtmf(content_type, &String::from_utf8_lossy(&req.body)) {
        Some(digit) => Reply {
            outcome: Outcome::Dtmf(digit),
            ..Reply::status(200)
        },
        None => Reply {
            extra: vec![("Accept", DTMF_TYPES.to_owned())],
            ..Reply::status(415)
        },
    }
}

/// The digit in an INFO body: `application/dtmf-relay` (`Signal=5`) or
/// `application/dtmf` (`5`). Event codes 10–15 (RFC 4733) stand for `*#ABCD`.
pub(crate) fn dtmf(content_type: &str, body: &str) -> Option<char> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let signal = if media.eq_ignore_ascii_case("application/dtmf-relay") {
        body.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then_some(value.trim())
        })?
    } else if media.eq_ignore_ascii_case("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    match signal {
        "10" => Some('*'),
        "11" => Some('#'),
        "12" => Some('A'),
        "13" => Some('B'),
        "14" => Some('C'),
        "15" => Some('D'),
        s if s.len() == 1 => s
            .chars()
            .next()
            .map(|c| c.to_ascii_uppercase())
            .filter(|c| c.is_ascii_digit() || "*#ABCD".contains(*c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::inbound::parse;

    fn ok_with(record_route: &str, contact: &str) -> Message {
        let text = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n\
             From: <sip:gw@example.com>;tag=ours\r\nTo: <sip:bob@example.com>;tag=theirs\r\n\
             Call-ID: c1\r\nCSeq: 1 INVITE\r\n{record_route}{contact}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes()).expect("valid 2xx")
    }

    fn dialog(msg: &Message) -> Dialog {
        let from = "<sip:gw@example.com>;tag=ours";
        Dialog::from_2xx(msg, from, "ours", "sip:bob@example.com", 1)
    }

    #[test]
    fn loose_route_set_is_record_route_reversed() {
        let msg = ok_with(
            "Record-Route: <sip:p2.example.com;lr>, <sip:192.0.2.50:5070;lr>\r\n",
            "Contact: <sip:bob@192.0.2.9:5080>\r\n",
        );
        let d = dialog(&msg);
        let (uri, routes) = d.routing();
        assert_eq!(uri, "sip:bob@192.0.2.9:5080");
        assert_eq!(
            routes,
            ["<sip:192.0.2.50:5070;lr>", "<sip:p2.example.com;lr>"]
        );
        let fallback = "198.51.100.1:5060".parse().expect("literal");
        let first_route = "192.0.2.50:5070".parse().expect("literal");
        assert_eq!(d.next_hop(None, fallback), first_route);
    }

    #[test]
    fn strict_route_goes_into_the_request_uri() {
        let msg = ok_with(
            "Record-Route: <sip:p1.example.com>\r\n",
            "Contact: <sip:bob@192.0.2.9>\r\n",
        );
        let d = dialog(&msg);
        let (uri, routes) = d.routing();
        assert_eq!(uri, "sip:p1.example.com");
        assert_eq!(routes, ["<sip:bob@192.0.2.9>"]);
        // A host name: no DNS here, the INVITE's address is used.
        let fallback = "198.51.100.1:5060".parse().expect("literal");
        assert_eq!(d.next_hop(None, fallback), fallback);
    }

    #[test]
    fn dtmf_bodies() {
        let cases = [
            (
                "application/dtmf-relay",
                "Signal=5\r\nDuration=160\r\n",
                Some('5'),
            ),
            (
                "application/dtmf-relay",
                "Signal= #\r\nDuration=100",
                Some('#'),
            ),
            ("Application/DTMF-Relay; x=y", "signal=11", Some('#')),
            ("application/dtmf", "7\r\n", Some('7')),
            ("application/dtmf", "10", Some('*')),
            ("application/dtmf", "d", Some('D')),
            ("application/dtmf", "x", None),
            ("application/dtmf-relay", "Duration=160", None),
            ("text/plain", "5", None),
        ];
        for (ct, body, want) in cases {
            assert_eq!(dtmf(ct, body), want, "{ct} {body:?}");
        }
    }
}
