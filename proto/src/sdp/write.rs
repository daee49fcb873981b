//! [`Sdp`] -> SDP text, CRLF line ends, in model order.

use std::fmt::{self, Write};

use super::{Attribute, Field, Sdp};

fn field(f: &mut impl Write, x: &Field) -> fmt::Result {
    write!(f, "{}={}\r\n", x.kind, x.value)
}

fn attribute(f: &mut impl Write, a: &Attribute) -> fmt::Result {
    match &a.value {
        Some(v) => write!(f, "a={}:{}\r\n", a.name, v),
        None => write!(f, "a={}\r\n", a.name),
    }
}

pub(super) fn write(sdp: &Sdp, f: &mut impl Write) -> fmt::Result {
    let o = &sdp.origin;
    f.write_str("v=0\r\n")?;
    write!(
        f,
        "o={} {} {} {} {} {}\r\n",
        o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
    )?;
    write!(f, "s={}\r\n", sdp.session_name)?;
    for x in &sdp.fields {
        field(f, x)?;
    }
    for a in &sdp.attributes {
        attribute(f, a)?;
    }
    for m in &sdp.media {
        write!(f, "m={} {}", m.media, m.port)?;
        if let Some(n) = m.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", m.proto)?;
        for fmt in &m.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        for x in &m.fields {
            field(f, x)?;
        }
        for a in &m.attributes {
            attribute(f, a)?;
        }
    }
    Ok(())
}
