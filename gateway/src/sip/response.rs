//! Building responses that echo a request's Via, From, To, Call-ID and CSeq
//! (RFC 3261 §8.2.6).

use std::net::SocketAddr;

use super::message::Request;

/// The reason phrase for the statuses this core sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// Serializes a response to `req`. `to_tag` is added to To when it has none;
/// `extra` headers come before Content-Length; `source` fills `rport`/`received`
/// of the top Via (RFC 3581).
pub(crate) fn build(
    req: &Request,
    status: u16,
    to_tag: Option<&str>,
    extra: &[(&str, String)],
    body: &[u8],
    source: SocketAddr,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason(status));
    for (i, via) in req.lines("via").enumerate() {
        let via = if i == 0 {
            top_via(via, source)
        } else {
            via.to_owned()
        };
        out.push_str(&format!("Via: {via}\r\n"));
    }
    if let Some(from) = req.one("from") {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = req.one("to") {
        match to_tag {
            Some(tag) if req.tag("to").is_none() && status > 100 => {
                out.push_str(&format!("To: {to};tag={tag}\r\n"))
            }
            _ => out.push_str(&format!("To: {to}\r\n")),
        }
    }
    for name in ["call-id", "cseq"] {
        if let Some(v) = req.one(name) {
            let label = if name == "cseq" { "CSeq" } else { "Call-ID" };
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

/// Adds `received` and fills an empty `rport` (RFC 3581 §4) on the first Via value.
fn top_via(line: &str, source: SocketAddr) -> String {
    let (first, others) = match line.split_once(',') {
        Some((f, o)) => (f.trim_end(), Some(o)),
        None => (line, None),
    };
    let mut first = first.to_owned();
    let has_rport = first
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("rport"));
    if has_rport {
        first = first
            .split(';')
            .map(|p| {
                if p.trim().eq_ignore_ascii_case("rport") {
                    format!("rport={}", source.port())
                } else {
                    p.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(";");
        first.push_str(&format!(";received={}", source.ip()));
    }
    match others {
        Some(o) => format!("{first},{o}"),
        None => first,
    }
}
