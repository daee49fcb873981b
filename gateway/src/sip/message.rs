//! Framing and checking of SIP messages received over UDP (RFC 3261 §7, §18.3).
//!
//! The checks follow the RFC 4475 torture tests: strict where the message
//! would be misread (framing, scalars, name-addr syntax), liberal where
//! RFC 4475 allows it (unknown headers, Date, RFC 2543 requests). Requests are
//! read by [`parse`]; responses by [`parse_response`], which only checks what
//! matching a response to a transaction needs (status, Via, CSeq, Call-ID,
//! From, To, framing).

/// A request line plus the header fields a response must echo.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a datagram cannot be processed.
#[derive(Debug, Clone)]
pub(crate) enum Reject {
    /// Nothing can be answered (a response, or no Via/CSeq to answer to).
    Drop(&'static str),
    /// Answer the (partly read) request with this status; the text goes into a Warning header.
    Status(Box<Request>, u16, String),
}

/// Maximum accepted datagram size (bounded state: a datagram can be no larger anyway).
pub(crate) const MAX_DATAGRAM: usize = 65_535;

/// A response: status code plus the header fields (names lower-case, long
/// form); the body is framed but not kept.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

const COMPACT: [(&str, &str); 11] = [
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
    ("x", "session-expires"),
];

/// Headers that may appear only once.
const SINGLE: [&str; 7] = [
    "from",
    "to",
    "call-id",
    "cseq",
    "max-forwards",
    "content-length",
    "content-type",
];

impl Request {
    /// All values of a header, comma lists split.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        values(&self.headers, name)
    }

    /// The (only) value of a header.
    pub fn one(&self, name: &str) -> Option<&str> {
        one(&self.headers, name)
    }

    /// The whole-line values of a header, as received (for echoing Via).
    pub fn lines<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        lines(&self.headers, name)
    }

    /// CSeq number and method; valid after [`parse`] succeeded.
    pub fn cseq(&self) -> (u32, &str) {
        cseq(&self.headers)
    }

    /// Branch parameter of the top Via.
    pub fn branch(&self) -> Option<&str> {
        branch(&self.headers)
    }

    /// Tag parameter of From or To.
    pub fn tag(&self, header: &str) -> Option<&str> {
        tag(&self.headers, header)
    }
}

impl Response {
    /// CSeq number and method; valid after [`parse_response`] succeeded.
    pub fn cseq(&self) -> (u32, &str) {
        cseq(&self.headers)
    }

    /// Branch parameter of the top Via.
    pub fn branch(&self) -> Option<&str> {
        branch(&self.headers)
    }
}

type Fields = [(String, String)];

fn values<'a>(headers: &'a Fields, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    lines(headers, name).flat_map(|v| split_outside(v, ','))
}

fn one<'a>(headers: &'a Fields, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn lines<'a>(headers: &'a Fields, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn cseq(headers: &Fields) -> (u32, &str) {
    one(headers, "cseq").and_then(parse_cseq).unwrap_or((0, ""))
}

fn branch(headers: &Fields) -> Option<&str> {
    let top = values(headers, "via").next()?;
    params(top).find_map(|(n, v)| n.eq_ignore_ascii_case("branch").then_some(v))
}

fn tag<'a>(headers: &'a Fields, header: &str) -> Option<&'a str> {
    let (_, _, rest) = name_addr(one(headers, header)?).ok()?;
    params(rest).find_map(|(n, v)| n.eq_ignore_ascii_case("tag").then_some(v))
}

/// Splits `s` on `sep` outside quoted strings and `<...>`.
pub(crate) fn split_outside(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut angle, mut start) = (false, false, false, 0);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted {
            match c {
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '<' {
            angle = true;
        } else if c == '>' {
            angle = false;
        } else if c == sep && !angle {
            parts.push(s[start..i].trim());
            start = i + c.len_utf8();
        }
    }
    parts.push(s[start..].trim());
    parts.into_iter()
}

/// `;name[=value]` parameters after the first `;` of `s`, trimmed.
pub(crate) fn params(s: &str) -> impl Iterator<Item = (&str, &str)> {
    split_outside(s, ';')
        .skip(1)
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => (p, ""),
        })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

fn parse_cseq(v: &str) -> Option<(u32, &str)> {
    let (n, m) = v.trim().split_once(|c: char| c.is_ascii_whitespace())?;
    let m = m.trim();
    (n.bytes().all(|b| b.is_ascii_digit()) && is_token(m)).then_some(())?;
    Some((n.parse().ok()?, m))
}

/// Splits a name-addr / addr-spec into (display name, URI, parameters).
pub(crate) fn name_addr(v: &str) -> Result<(Option<&str>, &str, &str), &'static str> {
    let v = v.trim();
    let (display, rest) = if let Some(q) = v.strip_prefix('"') {
        let mut escaped = false;
        let end = q
            .char_indices()
            .find(|&(_, c)| {
                let hit = !escaped && c == '"';
                escaped = !escaped && c == '\\';
                hit
            })
            .map(|(i, _)| i)
            .ok_or("unterminated quoted display name")?;
        (Some(&q[..end]), q[end + 1..].trim_start())
    } else if let Some(lt) = v.find('<') {
        let d = v[..lt].trim();
        if !d.split_ascii_whitespace().all(is_token) {
            return Err("display name with non-token characters must be quoted");
        }
        (Some(d).filter(|d| !d.is_empty()), &v[lt..])
    } else {
        let end = v.find(';').unwrap_or(v.len());
        let uri = v[..end].trim();
        if uri.contains('?') {
            return Err("addr-spec with URI headers must be enclosed in <>");
        }
        check_uri(uri)?;
        return Ok((None, uri, &v[end..]));
    };
    let inner = rest.strip_prefix('<').ok_or("name-addr without <URI>")?;
    let end = inner.find('>').ok_or("name-addr without closing >")?;
    let uri = &inner[..end];
    check_uri(uri)?;
    Ok((display, uri, &inner[end + 1..]))
}

fn check_uri(uri: &str) -> Result<(), &'static str> {
    if uri.is_empty() || uri.contains(|c: char| c.is_ascii_whitespace()) {
        return Err("whitespace or empty URI in addr-spec");
    }
    let (scheme, _) = uri.split_once(':').ok_or("URI without scheme")?;
    let ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    ok.then_some(()).ok_or("invalid URI scheme")
}

fn check_params(rest: &str) -> Result<(), &'static str> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(());
    }
    if !rest.starts_with(';') {
        return Err("garbage after URI");
    }
    if split_outside(rest, ';').skip(1).any(str::is_empty) {
        return Err("empty header parameter");
    }
    Ok(())
}

fn check_via(v: &str) -> Result<(), &'static str> {
    let (proto, _) = v.split_once(';').unwrap_or((v, ""));
    let mut parts = proto.splitn(3, '/');
    let (name, ver, rest) = match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(v), Some(r)) => (n.trim(), v.trim(), r.trim()),
        _ => return Err("malformed Via sent-protocol"),
    };
    if !name.eq_ignore_ascii_case("SIP") || ver != "2.0" {
        return Err("Via protocol is not SIP/2.0");
    }
    let mut words = rest.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(t), Some(_host), None) if is_token(t) => {}
        _ => return Err("malformed Via sent-by"),
    }
    check_params(&v[proto.len()..])?;
    for (n, val) in params(v) {
        if n.eq_ignore_ascii_case("branch") && (val.is_empty() || val == "z9hG4bK") {
            return Err("Via branch without transaction id");
        }
    }
    Ok(())
}

/// A message split into start line, header fields and what follows them.
struct Head<'a> {
    start_line: String,
    headers: Vec<(String, String)>,
    /// A line that is neither a header nor a continuation.
    bad_line: bool,
    rest: &'a [u8],
}

/// Whether a datagram or framed message holds a response (`SIP/...` status line).
pub(crate) fn is_response(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(data.len());
    data[start..].starts_with(b"SIP/")
}

fn split_head(data: &[u8]) -> Result<Head<'_>, Reject> {
    if data.len() > MAX_DATAGRAM {
        return Err(Reject::Drop("datagram too large"));
    }
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(Reject::Drop("keep-alive"))?;
    let data = &data[start..];
    let (head, rest) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        // RFC 4475 baddn.dat: the datagram ends the header section.
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or_default().to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut bad_line = false;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => bad_line = true,
            }
        } else if let Some((n, v)) = line.split_once(':') {
            let n = n.trim_end().to_ascii_lowercase();
            let n = COMPACT
                .iter()
                .find(|(c, _)| *c == n)
                .map_or(n, |(_, long)| (*long).to_owned());
            headers.push((n, v.trim().to_owned()));
        } else if !line.is_empty() {
            bad_line = true;
        }
    }
    Ok(Head {
        start_line,
        headers,
        bad_line,
        rest,
    })
}

/// The body length given by a single numeric Content-Length that fits the
/// datagram, or all of it when there is none (UDP framing).
fn body_len(headers: &Fields, rest: &[u8]) -> Result<usize, &'static str> {
    let lengths: Vec<&str> = lines(headers, "content-length").collect();
    match lengths.as_slice() {
        [] => Ok(rest.len()),
        [l] => match l.parse::<usize>() {
            Ok(n) if l.bytes().all(|b| b.is_ascii_digit()) && n <= rest.len() => Ok(n),
            Ok(_) => Err("Content-Length larger than the datagram body"),
            Err(_) => Err("invalid Content-Length"),
        },
        _ => Err("multiple Content-Length values"),
    }
}

/// Frames one response and checks what transaction matching reads.
pub(crate) fn parse_response(data: &[u8]) -> Result<Response, &'static str> {
    let head = split_head(data).map_err(|reject| match reject {
        Reject::Drop(why) => why,
        Reject::Status(..) => "unreadable response",
    })?;
    let status_line = head
        .start_line
        .strip_prefix("SIP/2.0 ")
        .ok_or("not a SIP/2.0 status line")?;
    let (code, _reason) = status_line.split_once(' ').unwrap_or((status_line, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err("status code is not three digits");
    }
    let status: u16 = code.parse().map_err(|_| "invalid status code")?;
    if !(100..=699).contains(&status) {
        return Err("status code out of range");
    }
    if head.bad_line {
        return Err("malformed header line");
    }
    let headers = head.headers;
    for name in ["via", "cseq", "call-id", "from", "to"] {
        if one(&headers, name).is_none() {
            return Err("missing Via, CSeq, Call-ID, From or To");
        }
    }
    if SINGLE.iter().any(|name| lines(&headers, name).count() > 1) {
        return Err("repeated single-valued header");
    }
    one(&headers, "cseq")
        .and_then(parse_cseq)
        .ok_or("invalid CSeq")?;
    for via in values(&headers, "via") {
        check_via(via)?;
    }
    body_len(&headers, head.rest)?;
    Ok(Response { status, headers })
}

/// Frames one UDP datagram and checks the request in it.
pub(crate) fn parse(data: &[u8]) -> Result<Request, Reject> {
    let Head {
        start_line,
        headers,
        bad_line,
        rest,
    } = split_head(data)?;
    if start_line.starts_with("SIP/") {
        return Err(Reject::Drop("a response, not a request"));
    }
    let mut parts = start_line.split(' ');
    let (method, uri, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut req = Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
        headers,
        body: Vec::new(),
    };
    if req.one("via").is_none() || req.one("cseq").is_none() {
        return Err(Reject::Drop("no Via or CSeq to answer to"));
    }
    let bad = |req: Request, why: &str| Err(Reject::Status(Box::new(req), 400, why.to_owned()));
    if parts.next().is_some() || [method, uri, version].iter().any(|p| p.is_empty()) {
        return bad(req, "malformed Request-Line (extra or missing SP)");
    }
    if !is_token(method) {
        return bad(req, "invalid method token");
    }
    if version != "SIP/2.0" {
        return match version.strip_prefix("SIP/") {
            Some(_) => Err(Reject::Status(
                Box::new(req),
                505,
                format!("version {version}"),
            )),
            None => bad(req, "malformed SIP-Version"),
        };
    }
    if bad_line {
        return bad(req, "malformed header line");
    }
    // Framing (UDP): Content-Length must be single, numeric and fit.
    let len = match body_len(&req.headers, rest) {
        Ok(n) => n,
        Err(why) => return bad(req, why),
    };
    req.body = rest[..len].to_vec();
    for name in ["from", "to", "call-id"] {
        if req.one(name).is_none() {
            return Err(Reject::Status(
                Box::new(req),
                400,
                format!("missing {name}"),
            ));
        }
    }
    for name in SINGLE {
        if req.lines(name).count() > 1 {
            return Err(Reject::Status(
                Box::new(req),
                400,
                format!("more than one {name}"),
            ));
        }
    }
    match check_headers(&req) {
        Ok(()) => Ok(req),
        Err(why) => bad(req, why),
    }
}

fn check_headers(req: &Request) -> Result<(), &'static str> {
    for via in req.values("via") {
        check_via(via)?;
    }
    for name in ["from", "to"] {
        let (_, _, rest) = req.one(name).map(name_addr).unwrap_or(Ok((None, "", "")))?;
        check_params(rest)?;
    }
    for contact in req.values("contact") {
        if contact != "*" {
            let (_, _, rest) = name_addr(contact)?;
            check_params(rest)?;
        }
    }
    req.one("cseq").and_then(parse_cseq).ok_or("invalid CSeq")?;
    if let Some(mf) = req.one("max-forwards") {
        mf.parse::<u8>().map_err(|_| "invalid Max-Forwards")?;
    }
    if req.uri.starts_with('<') {
        return Err("Request-URI enclosed in <>");
    }
    Ok(())
}
