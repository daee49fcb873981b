//! SDP text -> [`Sdp`] (RFC 8866 §5 grammar, leniently).
//!
//! Accepted: CRLF or LF line ends, blank lines (skipped), and m-lines without
//! formats (Jingle contents without payload types produce them). Rejected
//! with the 1-based line number: a first line other than `v=0`, a missing
//! `o=` or `s=`, a line that is not `<letter>=<value>`, an unknown type
//! letter, a session-only line inside a media section, and malformed `o=`
//! or `m=` lines, and control characters other than TAB (which XML, and so
//! Jingle, cannot carry).

use super::{Attribute, Field, MediaSection, Origin, Sdp};
use crate::error::{Error, Result};

fn err(line: usize, reason: impl Into<String>) -> Error {
    Error::Sdp {
        line,
        reason: reason.into(),
    }
}

fn parse_origin(line: usize, value: &str) -> Result<Origin> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [username, session_id, version, net_type, addr_type, address] = parts[..] else {
        return Err(err(line, format!("o= needs 6 fields: {value:?}")));
    };
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: version
            .parse()
            .map_err(|_| err(line, format!("invalid session version {version:?}")))?,
        net_type: net_type.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_media(line: usize, value: &str) -> Result<MediaSection> {
    let mut parts = value.split(' ');
    let (Some(media), Some(port), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err(
            line,
            format!("m= needs <media> <port> <proto>: {value:?}"),
        ));
    };
    let bad_port = || err(line, format!("invalid port {port:?}"));
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (
            p.parse().map_err(|_| bad_port())?,
            Some(n.parse().map_err(|_| bad_port())?),
        ),
        None => (port.parse().map_err(|_| bad_port())?, None),
    };
    if media.is_empty() || proto.is_empty() {
        return Err(err(line, format!("empty token in m= line {value:?}")));
    }
    Ok(MediaSection {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats: parts.filter(|f| !f.is_empty()).map(str::to_owned).collect(),
        fields: Vec::new(),
        attributes: Vec::new(),
        line,
    })
}

fn parse_attribute(line: usize, value: &str) -> Result<Attribute> {
    let (name, value) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (value, None),
    };
    if name.is_empty() || name.contains(' ') {
        return Err(err(line, format!("invalid attribute name {name:?}")));
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
        line,
    })
}

pub(super) fn parse(text: &str) -> Result<Sdp> {
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.is_empty());

    let mut next = |what: &str| -> Result<(usize, char, &str)> {
        let (n, l) = lines
            .next()
            .ok_or_else(|| err(0, format!("missing {what} line")))?;
        split_line(n, l)
    };

    let (n, kind, value) = next("v=")?;
    if kind != 'v' || value != "0" {
        return Err(err(n, "the first line must be v=0"));
    }
    let (n, kind, value) = next("o=")?;
    if kind != 'o' {
        return Err(err(n, "expected o= after v="));
    }
    let origin = parse_origin(n, value)?;
    let (n, kind, value) = next("s=")?;
    if kind != 's' {
        return Err(err(n, "expected s= after o="));
    }
    let mut sdp = Sdp {
        origin,
        session_name: value.to_owned(),
        fields: Vec::new(),
        attributes: Vec::new(),
        media: Vec::new(),
    };

    for (n, l) in lines {
        let (n, kind, value) = split_line(n, l)?;
        match (kind, sdp.media.last_mut()) {
            ('m', _) => sdp.media.push(parse_media(n, value)?),
            ('a', None) => sdp.attributes.push(parse_attribute(n, value)?),
            ('a', Some(m)) => m.attributes.push(parse_attribute(n, value)?),
            ('i' | 'c' | 'b' | 'k', Some(m)) => m.fields.push(Field::new(kind, value)),
            ('i' | 'u' | 'e' | 'p' | 'c' | 'b' | 't' | 'r' | 'z' | 'k', None) => {
                sdp.fields.push(Field::new(kind, value))
            }
            ('v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z', _) => {
                return Err(err(n, format!("{kind}= is not allowed here")))
            }
            (other, _) => return Err(err(n, format!("unknown line type {other:?}"))),
        }
    }
    Ok(sdp)
}

fn split_line(n: usize, l: &str) -> Result<(usize, char, &str)> {
    if !crate::jingle::xml_safe(l) {
        return Err(err(
            n,
            "control character (SDP text must fit in Jingle XML)",
        ));
    }
    let mut chars = l.chars();
    match (chars.next(), chars.next()) {
        (Some(kind), Some('=')) if kind.is_ascii_lowercase() => Ok((n, kind, &l[2..])),
        _ => Err(err(n, format!("not a <type>=<value> line: {l:?}"))),
    }
}
