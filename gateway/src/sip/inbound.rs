//! Parsing the SIP messages a user agent client receives (RFC 3261 §7): the
//! responses to our requests, and the requests a callee sends inside a dialog
//! we hold; plus the small response builder for those requests (§8.2.6).
//!
//! Contract: [`parse`] takes one UDP datagram or one framed TCP message and
//! returns a [`Message`] or a [`ParseError`] naming what is wrong; it never
//! panics, whatever the bytes. Header names come out lowercased, compact forms
//! expanded (`i`, `f`, `t`, `v`, `m`, `l`, `c`, ...), folded lines joined. The
//! body is framed by Content-Length when present (and must fit), else it is the
//! rest of the datagram.

use std::net::SocketAddr;

use super::message::{name_addr, split_outside};
use super::CallId;

/// Largest message accepted (a UDP datagram can be no larger).
pub(crate) const MAX_MESSAGE: usize = 65_535;

const COMPACT: [(&str, &str); 15] = [
    ("i", "call-id"),
    ("m", "contact"),
    ("e", "content-encoding"),
    ("l", "content-length"),
    ("c", "content-type"),
    ("f", "from"),
    ("s", "subject"),
    ("k", "supported"),
    ("t", "to"),
    ("v", "via"),
    ("o", "event"),
    ("u", "allow-events"),
    ("r", "refer-to"),
    ("b", "referred-by"),
    ("x", "session-expires"),
];

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Start {
    Request { method: String, uri: String },
    Response { status: u16, reason: String },
}

/// A parsed message: start line, headers (lowercase long names, in order) and body.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub start: Start,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why bytes are not a usable SIP message (remote's fault; dropped, never answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("empty message (keep-alive)")]
    Empty,
    #[error("malformed start line")]
    StartLine,
    #[error("SIP version is not SIP/2.0")]
    Version,
    #[error("status code outside 100..=699")]
    Status,
    #[error("malformed header line")]
    HeaderLine,
    #[error("invalid or repeated Content-Length")]
    ContentLength,
    #[error("body shorter than Content-Length")]
    Truncated,
    #[error("missing or malformed {0}")]
    Header(&'static str),
}

impl Message {
    /// The (first) value of a header, whole line.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every line of a header, as received (not split on commas).
    pub fn lines<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma lists split (outside quotes and `<>`).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines(name).flat_map(|v| split_outside(v, ','))
    }

    pub fn call_id(&self) -> &str {
        self.one("call-id").unwrap_or_default()
    }

    /// CSeq number and method (checked by [`parse`]).
    pub fn cseq(&self) -> (u32, &str) {
        self.one("cseq").and_then(parse_cseq).unwrap_or((0, ""))
    }

    /// Branch of the top Via.
    pub fn branch(&self) -> Option<&str> {
        param(self.values("via").next()?, "branch")
    }

    /// Tag of From or To.
    pub fn tag(&self, header: &str) -> Option<&str> {
        let (_, _, rest) = name_addr(self.one(header)?).ok()?;
        param(rest, "tag")
    }

    /// The status of a response (0 for a request).
    pub fn status(&self) -> u16 {
        match self.start {
            Start::Response { status, .. } => status,
            Start::Request { .. } => 0,
        }
    }

    /// The body as text (lossy), `None` when empty.
    pub fn body_text(&self) -> Option<String> {
        (!self.body.is_empty()).then(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// The value of `;name=value` among the parameters in `s` (after its first `;`).
pub(crate) fn param<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    split_outside(s, ';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

fn parse_cseq(v: &str) -> Option<(u32, &str)> {
    let (n, m) = v.trim().split_once(|c: char| c.is_ascii_whitespace())?;
    let m = m.trim();
    let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    (digits && is_token(m)).then_some(())?;
    Some((n.parse().ok()?, m))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The Call-ID of a message, for routing it to the core that owns it.
pub fn call_id_of(data: &[u8]) -> Option<CallId> {
    parse(data).ok().map(|m| CallId::new(m.call_id()))
}

/// Frames and checks one message.
pub(crate) fn parse(data: &[u8]) -> Result<Message, ParseError> {
    if data.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::Empty)?;
    let data = &data[start..];
    // The header section ends at the first empty line (CRLF, or a bare LF).
    let mut head_end = data.len();
    let mut body_start = data.len();
    let mut line_start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            let line = &data[line_start..i];
            if line.is_empty() || line == b"\r" {
                head_end = line_start;
                body_start = i + 1;
                break;
            }
            line_start = i + 1;
        }
    }
    let head = String::from_utf8_lossy(&data[..head_end]);
    let rest = &data[body_start..];
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = start_line(lines.next().unwrap_or_default())?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        // Stray CRs before the line end are dropped; a bare CR or NUL inside a
        // value could end a line for another parser, so the message is refused.
        let line = line.trim_end_matches('\r');
        if line.contains(['\r', '\0']) {
            return Err(ParseError::HeaderLine);
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers.last_mut().ok_or(ParseError::HeaderLine)?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::HeaderLine)?;
        let name = name.trim_end().to_ascii_lowercase();
        if !is_token(&name) {
            return Err(ParseError::HeaderLine);
        }
        let name = COMPACT
            .iter()
            .find(|(c, _)| *c == name)
            .map_or(name, |(_, long)| (*long).to_owned());
        headers.push((name, value.trim().to_owned()));
    }
    let mut msg = Message {
        start,
        headers,
        body: Vec::new(),
    };
    let body_len = {
        let mut lengths = msg.lines("content-length");
        match (lengths.next(), lengths.next()) {
            (None, _) => rest.len(),
            (Some(l), None) => {
                let digits = !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit());
                let n: usize = l
                    .parse()
                    .ok()
                    .filter(|_| digits)
                    .ok_or(ParseError::ContentLength)?;
                if n > rest.len() {
                    return Err(ParseError::Truncated);
                }
                n
            }
            (Some(_), Some(_)) => return Err(ParseError::ContentLength),
        }
    };
    msg.body = rest[..body_len].to_vec();
    check(&msg)?;
    Ok(msg)
}

fn start_line(line: &str) -> Result<Start, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::StartLine)?;
        if version != "2.0" {
            return Err(ParseError::Version);
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Status);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::Status)?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::Status);
        }
        let reason = reason.trim().to_owned();
        return Ok(Start::Response { status, reason });
    }
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(uri), Some(version), None) if is_token(method) && !uri.is_empty() => {
            if version != "SIP/2.0" {
                return Err(ParseError::Version);
            }
            Ok(Start::Request {
                method: method.to_owned(),
                uri: uri.to_owned(),
            })
        }
        _ => Err(ParseError::StartLine),
    }
}

fn check(msg: &Message) -> Result<(), ParseError> {
    for name in ["call-id", "cseq", "from", "to"] {
        if msg.lines(name).count() != 1 {
            return Err(ParseError::Header(name));
        }
    }
    let via = msg.values("via").next().ok_or(ParseError::Header("via"))?;
    if !via.to_ascii_uppercase().starts_with("SIP/2.0/") {
        return Err(ParseError::Header("via"));
    }
    if msg.call_id().is_empty() {
        return Err(ParseError::Header("call-id"));
    }
    let (_, method) = msg
        .one("cseq")
        .and_then(parse_cseq)
        .ok_or(ParseError::Header("cseq"))?;
    if let Start::Request { method: m, .. } = &msg.start {
        if m != method {
            return Err(ParseError::Header("cseq"));
        }
    }
    for name in ["from", "to"] {
        let value = msg.one(name).unwrap_or_default();
        name_addr(value).map_err(|_| ParseError::Header(name))?;
    }
    Ok(())
}

/// Serializes a response to `req` (a request a callee sent us): Via (the top one
/// with `received`/`rport`, RFC 3581), From, To, Call-ID and CSeq echoed, then
/// `extra`, Content-Length and `body`.
pub(crate) fn respond(
    req: &Message,
    status: u16,
    extra: &[(&str, String)],
    body: &[u8],
    source: SocketAddr,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason(status));
    for (i, via) in req.values("via").enumerate() {
        if i == 0 {
            out.push_str(&format!("Via: {}\r\n", stamp_via(via, source)));
        } else {
            out.push_str(&format!("Via: {via}\r\n"));
        }
    }
    for (label, name) in [
        ("From", "from"),
        ("To", "to"),
        ("Call-ID", "call-id"),
        ("CSeq", "cseq"),
    ] {
        if let Some(v) = req.one(name) {
            out.push_str(&format!("{label}: {v}\r\n"));
        }
    }
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `received=` always (an old one replaced), and the port in a valueless `rport`.
fn stamp_via(via: &str, source: SocketAddr) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (i, part) in via.split(';').enumerate() {
        let p = part.trim();
        if i == 0 {
            parts.push(part.to_owned());
        } else if p.eq_ignore_ascii_case("rport") {
            parts.push(format!("rport={}", source.port()));
        } else if !p.to_ascii_lowercase().starts_with("received=") {
            parts.push(part.to_owned());
        }
    }
    parts.push(format!("received={}", source.ip()));
    parts.join(";")
}

/// Reason phrases of the statuses the client side sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        415 => "Unsupported Media Type",
        481 => "Call/Transaction Does Not Exist",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "SIP/2.0 200 OK\r\n\
        v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=5060;received=192.0.2.1\r\n\
        f: \"Gateway\" <sip:gw@example.com>;tag=abc\r\n\
        t: <sip:bob@example.com>;tag=xyz\r\n\
        i: call-1@example.com\r\n\
        CSeq: 1 INVITE\r\n\
        m: <sip:bob@192.0.2.9:5070>\r\n\
        Record-Route: <sip:p2.example.com;lr>,\r\n <sip:p1.example.com;lr>\r\n\
        c: application/sdp\r\n\
        l: 4\r\n\r\nv=0\r\nextra";

    #[test]
    fn parses_compact_folded_and_framed_response() {
        let msg = parse(OK.as_bytes()).expect("valid response");
        assert_eq!(
            msg.start,
            Start::Response {
                status: 200,
                reason: "OK".into()
            }
        );
        assert_eq!(msg.call_id(), "call-1@example.com");
        assert_eq!(msg.cseq(), (1, "INVITE"));
        assert_eq!(msg.branch(), Some("z9hG4bK1"));
        assert_eq!(msg.tag("from"), Some("abc"));
        assert_eq!(msg.tag("to"), Some("xyz"));
        assert_eq!(msg.one("contact"), Some("<sip:bob@192.0.2.9:5070>"));
        let rr: Vec<&str> = msg.values("record-route").collect();
        assert_eq!(rr, ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]);
        assert_eq!(msg.body, b"v=0\r");
        // A stray CR before a line end is tolerated.
        let stray = OK.replace("c: application/sdp\r\n", "c: application/sdp\r\r\n");
        let msg = parse(stray.as_bytes()).expect("stray CR tolerated");
        assert_eq!(msg.one("content-type"), Some("application/sdp"));
    }

    #[test]
    fn rejects_malformed_messages_with_the_reason() {
        let cases: [(&str, ParseError); 9] = [
            ("", ParseError::Empty),
            ("\r\n\r\n", ParseError::Empty),
            ("SIP/3.0 200 OK\r\n\r\n", ParseError::Version),
            ("SIP/2.0 2000 OK\r\n\r\n", ParseError::Status),
            ("SIP/2.0 099 Hm\r\n\r\n", ParseError::Status),
            ("INVITE sip:a SIP/2.0 x\r\n\r\n", ParseError::StartLine),
            (
                "SIP/2.0 200 OK\r\nno colon here\r\n\r\n",
                ParseError::HeaderLine,
            ),
            (
                "SIP/2.0 200 OK\r\n folded first\r\n\r\n",
                ParseError::HeaderLine,
            ),
            (
                "SIP/2.0 200 OK\r\nTo: <sip:a@b>\rX: y\r\n\r\n",
                ParseError::HeaderLine,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text.as_bytes()).err(), Some(want), "{text:?}");
        }
        let long = OK.replace("l: 4", "l: 40");
        assert_eq!(parse(long.as_bytes()).err(), Some(ParseError::Truncated));
        let twice = OK.replace("l: 4", "l: 4\r\nContent-Length: 4");
        assert_eq!(
            parse(twice.as_bytes()).err(),
            Some(ParseError::ContentLength)
        );
        let signed = OK.replace("l: 4", "l: +4");
        assert_eq!(
            parse(signed.as_bytes()).err(),
            Some(ParseError::ContentLength)
        );
        let no_cseq = OK.replace("CSeq: 1 INVITE\r\n", "");
        assert_eq!(
            parse(no_cseq.as_bytes()).err(),
            Some(ParseError::Header("cseq"))
        );
        let no_via = OK.replace("v: SIP/2.0/UDP", "v: HTTP/1.1");
        assert_eq!(
            parse(no_via.as_bytes()).err(),
            Some(ParseError::Header("via"))
        );
        let bad_to = OK.replace("t: <sip:bob@example.com>", "t: <sip:bob@example.com");
        assert_eq!(
            parse(bad_to.as_bytes()).err(),
            Some(ParseError::Header("to"))
        );
    }

    #[test]
    fn request_cseq_method_must_match() {
        let bye = "BYE sip:gw@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\
            From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 INFO\r\n\r\n";
        assert_eq!(
            parse(bye.as_bytes()).err(),
            Some(ParseError::Header("cseq"))
        );
        let ok = bye.replace("2 INFO", "2 BYE");
        let msg = parse(ok.as_bytes()).expect("valid BYE");
        assert!(matches!(msg.start, Start::Request { ref method, .. } if method == "BYE"));
        assert!(msg.body.is_empty());
    }

    #[test]
    fn response_echoes_and_stamps_via() {
        let info = "INFO sip:gw@192.0.2.1 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.9:5070;rport;branch=z9hG4bKx, SIP/2.0/UDP p;branch=z9hG4bKp\r\n\
            From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 INFO\r\n\r\n";
        let msg = parse(info.as_bytes()).expect("valid INFO");
        let source: SocketAddr = "198.51.100.4:6000".parse().expect("literal");
        let out = respond(&msg, 200, &[("Allow", "BYE".into())], b"", source);
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(text.contains(
            "Via: SIP/2.0/UDP 10.0.0.9:5070;rport=6000;branch=z9hG4bKx;received=198.51.100.4\r\n\
             Via: SIP/2.0/UDP p;branch=z9hG4bKp\r\n"
        ));
        assert!(
            text.contains("To: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 INFO\r\nAllow: BYE\r\n")
        );
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    /// Seeded mutations (flips, truncations, insertions) of a valid response
    /// never panic the parser; some still parse, most are refused.
    #[test]
    fn mutated_responses_never_panic() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut parsed, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut bytes = OK.as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % (bytes.len() + 1);
                match next() % 4 {
                    0 if at < bytes.len() => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    2 => bytes.insert(at, b"\r\n:; ,<>\"\t\\0"[(next() % 12) as usize]),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
            }
            match parse(&bytes) {
                Ok(msg) => {
                    parsed += 1;
                    let _ = (msg.branch(), msg.tag("to"), msg.cseq(), msg.body_text());
                }
                Err(_) => refused += 1,
            }
        }
        assert!(
            parsed > 100 && refused > 100,
            "{parsed} parsed, {refused} refused"
        );
    }
}
