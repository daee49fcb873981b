//! Just enough STUN (RFC 8489) to route a datagram from a new address: the
//! local ufrag in a binding request's USERNAME (`<our ufrag>:<their ufrag>`,
//! RFC 8445 §7.2.2). Anything malformed yields `None`; str0m checks the
//! message integrity afterwards.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const HEADER_LEN: usize = 20;
const ATTR_USERNAME: u16 = 0x0006;

/// The local (our) ufrag named by a STUN message's USERNAME attribute.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < HEADER_LEN || datagram[0] & 0xC0 != 0 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let attrs = datagram.get(HEADER_LEN..HEADER_LEN + len)?;
    let mut rest = attrs;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let vlen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + vlen)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        let padded = 4 + vlen.div_ceil(4) * 4;
        rest = rest.get(padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(attrs: &[u8]) -> Vec<u8> {
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(attrs);
        m
    }

    #[test]
    fn finds_username_after_other_attributes() {
        // PRIORITY (4 bytes), then USERNAME "abcd:xyz" (8 bytes).
        let mut attrs = vec![0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4];
        attrs.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
        attrs.extend_from_slice(b"abcd:xyz");
        assert_eq!(local_ufrag(&binding_request(&attrs)), Some("abcd"));
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        let cases: &[&[u8]] = &[
            b"",
            b"hello world, this is not stun",
            &[0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0],
            &[0x80; 40],
        ];
        for case in cases {
            assert_eq!(local_ufrag(case), None, "{case:?}");
        }
        // Length says more than is there.
        let mut attrs = vec![0x00, 0x06, 0x00, 0x08];
        attrs.extend_from_slice(b"abcd:xyz");
        let mut m = binding_request(&attrs);
        m.truncate(m.len() - 3);
        assert_eq!(local_ufrag(&m), None);
        // Attribute length runs past the end.
        let m = binding_request(&[0x00, 0x06, 0x00, 0x40, b'a', b'b', b'c', b'd']);
        assert_eq!(local_ufrag(&m), None);
    }
}
