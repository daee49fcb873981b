//! RTP (RFC 3550) fixed header, and RFC 4733 telephone events, as far as the
//! phone helpers need them.
//!
//! Contract: [`parse`] accepts any version-2 packet whose header, CSRC list,
//! extension and padding fit in the buffer, and returns `None` otherwise;
//! [`write`] emits a 12-byte header (no CSRC, no extension, no padding) and
//! the payload.

/// One RTP packet, borrowed from the buffer it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtp<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// The fixed header's length.
const HEADER: usize = 12;

/// Parses one RTP packet.
pub fn parse(buf: &[u8]) -> Option<Rtp<'_>> {
    if buf.len() < HEADER || buf[0] >> 6 != 2 {
        return None;
    }
    let csrcs = usize::from(buf[0] & 0x0F);
    let mut start = HEADER + 4 * csrcs;
    if buf[0] & 0x10 != 0 {
        // Extension: 2 bytes profile, 2 bytes length in 32-bit words.
        let words = buf.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = buf.len();
    if buf[0] & 0x20 != 0 {
        let padding = usize::from(*buf.last()?);
        end = end.checked_sub(padding)?;
    }
    Some(Rtp {
        marker: buf[1] & 0x80 != 0,
        payload_type: buf[1] & 0x7F,
        sequence: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload: buf.get(start..end)?,
    })
}

/// Appends `packet` (header and payload) to `out`.
pub fn write(packet: &Rtp<'_>, out: &mut Vec<u8>) {
    out.push(0x80);
    out.push(u8::from(packet.marker) << 7 | (packet.payload_type & 0x7F));
    out.extend_from_slice(&packet.sequence.to_be_bytes());
    out.extend_from_slice(&packet.timestamp.to_be_bytes());
    out.extend_from_slice(&packet.ssrc.to_be_bytes());
    out.extend_from_slice(packet.payload);
}

/// An RFC 4733 telephone-event payload (the 4 bytes after the RTP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 `A`-`D`, 16 flash.
    pub event: u8,
    /// The E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in timestamp units (1/8000 s for 8 kHz audio).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 payload bytes (RFC 4733 section 2.3).
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let bytes: &[u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(TelephoneEvent {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The DTMF key this event stands for (`None` for non-DTMF events).
    pub fn digit(&self) -> Option<char> {
        match self.event {
            0..=9 => Some(char::from(b'0' + self.event)),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some(char::from(b'A' + self.event - 12)),
            _ => None,
        }
    }
}

/// The RFC 4733 event code for a DTMF key (`0`-`9`, `*`, `#`, `A`-`D`).
pub fn dtmf_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_packets_parse_back() {
        let payload = [1u8, 2, 3];
        let packet = Rtp {
            marker: true,
            payload_type: 8,
            sequence: 65_535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 7,
            payload: &payload,
        };
        let mut buf = Vec::new();
        write(&packet, &mut buf);
        assert_eq!(buf.len(), 15);
        assert_eq!(parse(&buf), Some(packet));
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut buf = vec![0x80 | 0x20 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        buf.extend_from_slice(&[0xBE, 0xDE, 0, 1, 5, 5, 5, 5]); // one-word extension
        buf.extend_from_slice(&[0xAA, 0xBB]); // payload
        buf.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let rtp = parse(&buf).unwrap();
        assert_eq!(rtp.payload, &[0xAA, 0xBB]);
        assert_eq!((rtp.sequence, rtp.timestamp, rtp.ssrc), (1, 2, 3));
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(parse(&[0x80; 11]), None);
        assert_eq!(parse(&[0x40; 12]), None, "version 1");
        let mut padded = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        padded.push(200);
        assert_eq!(parse(&padded), None, "padding longer than the packet");
    }

    #[test]
    fn telephone_events_name_their_keys() {
        let event = TelephoneEvent::parse(&[11, 0x8A, 0x01, 0x40]).unwrap();
        assert_eq!(
            event,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 320
            }
        );
        assert_eq!(event.digit(), Some('#'));
        for key in "0123456789*#ABCD".chars() {
            let code = dtmf_event(key).unwrap();
            let event = TelephoneEvent {
                event: code,
                end: false,
                volume: 0,
                duration: 0,
            };
            assert_eq!(event.digit(), Some(key));
        }
        assert_eq!(dtmf_event('x'), None);
    }
}
