//! RTP (RFC 3550) fixed header: parse and build, and a sender that stamps
//! 20 ms frames.
//!
//! Parsing borrows: [`RtpPacket::parse`] checks the version, the CSRC list,
//! the header extension and the padding against the packet's length and
//! hands back slices of it; it never allocates and never panics, whatever the
//! network sends. Building writes into a caller-provided buffer. Neither
//! does I/O; RTCP is not here.

use super::codec::PhoneCodec;

/// Length of the fixed RTP header.
pub const HEADER_LEN: usize = 12;

/// Why a datagram is not an RTP packet we can read, or a buffer too small.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer bytes than the header needs (the peer's fault; drop it).
    #[error("packet of {len} bytes is shorter than its RTP header needs ({needed})")]
    TooShort { len: usize, needed: usize },
    /// The version field is not 2 (maybe STUN or something else entirely).
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    /// The padding count is zero or larger than the payload.
    #[error("invalid padding count {0}")]
    Padding(u8),
    /// The buffer given to build a packet is too small (our bug).
    #[error("buffer of {got} bytes, {needed} needed")]
    BufferTooSmall { needed: usize, got: usize },
}

/// The fields of the fixed header that a sender chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpHeader {
    /// The marker bit (first packet of a talk spurt, start of an event).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Writes this header (no CSRCs, no extension) followed by `payload` into
    /// `out`; returns the packet length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let len = HEADER_LEN + payload.len();
        if out.len() < len {
            return Err(RtpError::BufferTooSmall {
                needed: len,
                got: out.len(),
            });
        }
        out[0] = 0x80;
        out[1] = (u8::from(self.marker) << 7) | (self.pt & 0x7F);
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out[HEADER_LEN..len].copy_from_slice(payload);
        Ok(len)
    }
}

/// A header extension (RFC 3550 §5.3.1): profile-defined id and its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    pub profile: u16,
    pub data: &'a [u8],
}

/// A parsed RTP packet, borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    /// The CSRC list, 4 bytes per entry (see [`RtpPacket::csrcs`]).
    csrc: &'a [u8],
    pub extension: Option<Extension<'a>>,
    /// The payload, padding removed.
    pub payload: &'a [u8],
    /// Padding bytes that were removed (0 when the P bit is clear).
    pub padding: u8,
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let short = |needed| RtpError::TooShort {
            len: buf.len(),
            needed,
        };
        let fixed = buf.get(..HEADER_LEN).ok_or(short(HEADER_LEN))?;
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = fixed[0] & 0x20 != 0;
        let has_extension = fixed[0] & 0x10 != 0;
        let csrc_count = usize::from(fixed[0] & 0x0F);
        let header = RtpHeader {
            marker: fixed[1] & 0x80 != 0,
            pt: fixed[1] & 0x7F,
            seq: u16::from_be_bytes([fixed[2], fixed[3]]),
            ts: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        };
        let mut at = HEADER_LEN + 4 * csrc_count;
        let csrc = buf.get(HEADER_LEN..at).ok_or(short(at))?;
        let extension = if has_extension {
            let head = buf.get(at..at + 4).ok_or(short(at + 4))?;
            let profile = u16::from_be_bytes([head[0], head[1]]);
            let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let end = at + 4 + 4 * words;
            let data = buf.get(at + 4..end).ok_or(short(end))?;
            at = end;
            Some(Extension { profile, data })
        } else {
            None
        };
        // `at <= buf.len()`: every step above was checked by `get`.
        let mut payload = &buf[at..];
        let mut padding = 0;
        if has_padding {
            padding = *payload.last().ok_or(RtpError::Padding(0))?;
            if padding == 0 || usize::from(padding) > payload.len() {
                return Err(RtpError::Padding(padding));
            }
            payload = &payload[..payload.len() - usize::from(padding)];
        }
        Ok(RtpPacket {
            header,
            csrc,
            extension,
            payload,
            padding,
        })
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Where a stream starts: the caller draws these at random (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStart {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

/// Stamps outgoing 20 ms frames of one stream: sequence numbers count
/// packets, the timestamp counts audio at the codec's RTP clock.
#[derive(Debug, Clone)]
pub struct RtpSender {
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    ts_step: u32,
    marker: bool,
}

impl RtpSender {
    /// A sender of `pt` frames advancing the timestamp by `ts_step` each
    /// (160 for 20 ms of G.711 or G.722, 960 for Opus). The first frame
    /// carries the marker bit.
    pub fn new(pt: u8, ts_step: u32, start: StreamStart) -> Self {
        RtpSender {
            pt: pt & 0x7F,
            ssrc: start.ssrc,
            seq: start.seq,
            ts: start.ts,
            ts_step,
            marker: true,
        }
    }

    /// A sender of 20 ms frames of `codec` under payload type `pt`.
    pub fn for_codec(codec: PhoneCodec, pt: u8, start: StreamStart) -> Self {
        Self::new(pt, codec.ts_per_frame(), start)
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The timestamp the next frame will carry.
    pub fn ts(&self) -> u32 {
        self.ts
    }

    /// The sequence number the next packet will carry.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    /// Writes the next frame's packet into `out` and advances; returns its
    /// length.
    pub fn frame(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let header = RtpHeader {
            marker: self.marker,
            pt: self.pt,
            seq: self.seq,
            ts: self.ts,
            ssrc: self.ssrc,
        };
        let len = header.write(payload, out)?;
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.ts_step);
        Ok(len)
    }

    /// Lets `frames` frames pass unsent (silence, hold, a DTMF event in
    /// their place): the timestamp moves on, the sequence number does not,
    /// and the next frame starts a talk spurt (marker bit).
    pub fn skip(&mut self, frames: u32) {
        if frames > 0 {
            self.ts = self.ts.wrapping_add(self.ts_step.wrapping_mul(frames));
            self.marker = true;
        }
    }

    /// Writes a packet of another payload type in this stream (an RFC 4733
    /// event: its own `ts` and marker); it takes the next sequence number
    /// and leaves the frame clock alone.
    pub fn other(
        &mut self,
        pt: u8,
        marker: bool,
        ts: u32,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let header = RtpHeader {
            marker,
            pt: pt & 0x7F,
            seq: self.seq,
            ts,
            ssrc: self.ssrc,
        };
        let len = header.write(payload, out)?;
        self.seq = self.seq.wrapping_add(1);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse() {
        let header = RtpHeader {
            marker: true,
            pt: 8,
            seq: 0xFFFF,
            ts: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
        };
        let mut buf = [0u8; 64];
        let len = header.write(&[1, 2, 3], &mut buf).unwrap();
        assert_eq!(len, 15);
        assert_eq!(
            &buf[..len],
            &[0x80, 0x88, 0xFF, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF, 0x12, 0x34, 0x56, 0x78, 1, 2, 3]
        );
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(p.header, header);
        assert_eq!(p.payload, &[1, 2, 3]);
        assert_eq!((p.padding, p.extension, p.csrcs().count()), (0, None, 0));
        assert_eq!(
            header.write(&[0; 60], &mut buf),
            Err(RtpError::BufferTooSmall {
                needed: 72,
                got: 64
            })
        );
    }

    #[test]
    fn csrc_extension_and_padding() {
        let mut pkt = vec![0xB2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 8]); // two CSRCs
        pkt.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]); // one-word extension
        pkt.extend_from_slice(&[9, 9, 0, 0, 3]); // payload 9 9, three bytes of padding
        let p = RtpPacket::parse(&pkt).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [7, 8]);
        let ext = p.extension.unwrap();
        assert_eq!((ext.profile, ext.data), (0xBEDE, &[0x10, 0xAA, 0, 0][..]));
        assert_eq!((p.payload, p.padding), (&[9, 9][..], 3));
        assert_eq!(p.header.pt, 0);
        assert!(!p.header.marker);
    }

    #[test]
    fn invalid_packets_are_errors() {
        let ok = [0x80u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            RtpPacket::parse(&ok[..11]),
            Err(RtpError::TooShort {
                len: 11,
                needed: 12
            })
        );
        let mut v1 = ok;
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::Version(1)));
        let mut csrc = ok;
        csrc[0] = 0x81;
        assert_eq!(
            RtpPacket::parse(&csrc),
            Err(RtpError::TooShort {
                len: 12,
                needed: 16
            })
        );
        let mut ext = ok.to_vec();
        ext[0] = 0x90;
        ext.extend_from_slice(&[0, 0, 0, 2, 1, 2, 3, 4]);
        assert_eq!(
            RtpPacket::parse(&ext),
            Err(RtpError::TooShort {
                len: 20,
                needed: 24
            })
        );
        let mut pad = ok.to_vec();
        pad[0] = 0xA0;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding(0)));
        pad.extend_from_slice(&[1, 5]);
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding(5)));
        pad.push(0);
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding(0)));
    }

    #[test]
    fn sender_stamps_20ms_frames() {
        let start = StreamStart {
            ssrc: 42,
            seq: 65534,
            ts: u32::MAX - 100,
        };
        for (codec, step) in [
            (PhoneCodec::Pcmu, 160u32),
            (PhoneCodec::G722, 160),
            (PhoneCodec::Opus, 960),
        ] {
            let mut tx = RtpSender::for_codec(codec, 96, start);
            let mut buf = [0u8; 200];
            let mut seen = Vec::new();
            for _ in 0..3 {
                let n = tx.frame(&[0; 160], &mut buf).unwrap();
                let h = RtpPacket::parse(&buf[..n]).unwrap().header;
                seen.push((h.marker, h.seq, h.ts, h.ssrc, h.pt));
            }
            let ts = |k: u32| start.ts.wrapping_add(k * step);
            assert_eq!(
                seen,
                [
                    (true, 65534, ts(0), 42, 96),
                    (false, 65535, ts(1), 42, 96),
                    (false, 0, ts(2), 42, 96)
                ],
                "{codec}"
            );
            // Two frames unsent: the timestamp jumps, seq does not, marker set.
            tx.skip(2);
            let n = tx.frame(&[], &mut buf).unwrap();
            let h = RtpPacket::parse(&buf[..n]).unwrap().header;
            assert_eq!((h.marker, h.seq, h.ts), (true, 1, ts(5)), "{codec}");
            // An event packet shares the sequence space, not the clock.
            let n = tx.other(101, true, 7, &[1, 2, 3, 4], &mut buf).unwrap();
            let h = RtpPacket::parse(&buf[..n]).unwrap().header;
            assert_eq!((h.marker, h.seq, h.ts, h.pt), (true, 2, 7, 101));
            assert_eq!((tx.seq(), tx.ts()), (3, ts(6)));
        }
    }
}
