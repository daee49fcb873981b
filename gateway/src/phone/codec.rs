//! The audio codecs a phone leg can negotiate, with their RTP and audio
//! clocks (RFC 3551 for the static ones, RFC 7587 for Opus).

use std::fmt;

use crate::media::g711::Law;

/// A phone-side codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneCodec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722, static payload type 9: 16 kHz audio on an 8000 Hz RTP clock.
    G722,
    /// Opus (dynamic payload type), `opus/48000/2` in SDP whatever the
    /// channels actually sent; we send and decode mono.
    Opus,
}

impl PhoneCodec {
    /// Every codec, in the order we prefer them when we make the offer.
    pub const ALL: [PhoneCodec; 4] = [
        PhoneCodec::Pcmu,
        PhoneCodec::Pcma,
        PhoneCodec::G722,
        PhoneCodec::Opus,
    ];

    /// The static RTP payload type, if the codec has one.
    pub fn static_pt(self) -> Option<u8> {
        match self {
            PhoneCodec::Pcmu => Some(0),
            PhoneCodec::Pcma => Some(8),
            PhoneCodec::G722 => Some(9),
            PhoneCodec::Opus => None,
        }
    }

    /// The payload type we use in our own offers.
    pub fn offer_pt(self) -> u8 {
        self.static_pt().unwrap_or(OPUS_OFFER_PT)
    }

    /// The codec of a static payload type (when an offer has no rtpmap for it).
    pub fn from_static_pt(pt: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.static_pt() == Some(pt))
    }

    /// The codec an `a=rtpmap` names: encoding name (case-insensitive),
    /// clock rate and channels as written (`None` when absent).
    pub fn from_rtpmap(name: &str, clock: u32, channels: Option<u32>) -> Option<Self> {
        Self::ALL.into_iter().find(|c| {
            c.encoding_name().eq_ignore_ascii_case(name)
                && c.rtp_clock() == clock
                && channels.unwrap_or(1) == c.sdp_channels().unwrap_or(1)
        })
    }

    /// The encoding name in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            PhoneCodec::Pcmu => "PCMU",
            PhoneCodec::Pcma => "PCMA",
            PhoneCodec::G722 => "G722",
            PhoneCodec::Opus => "opus",
        }
    }

    /// The channel count written in `a=rtpmap` (RFC 7587 always says 2).
    pub fn sdp_channels(self) -> Option<u32> {
        match self {
            PhoneCodec::Opus => Some(2),
            _ => None,
        }
    }

    /// The RTP timestamp clock in Hz (as written in `a=rtpmap`).
    pub fn rtp_clock(self) -> u32 {
        match self {
            PhoneCodec::Opus => 48_000,
            _ => 8000,
        }
    }

    /// The audio sample rate in Hz.
    pub fn sample_rate(self) -> u32 {
        match self {
            PhoneCodec::Pcmu | PhoneCodec::Pcma => 8000,
            PhoneCodec::G722 => 16_000,
            PhoneCodec::Opus => 48_000,
        }
    }

    /// Audio samples in one 20 ms frame.
    pub fn samples_per_frame(self) -> usize {
        self.sample_rate() as usize / 50
    }

    /// RTP timestamp units in one 20 ms frame (160, or 960 for Opus).
    pub fn ts_per_frame(self) -> u32 {
        self.rtp_clock() / 50
    }

    /// Payload bytes of one 20 ms frame, for the constant-rate codecs.
    pub fn bytes_per_frame(self) -> Option<usize> {
        match self {
            PhoneCodec::Pcmu | PhoneCodec::Pcma | PhoneCodec::G722 => Some(160),
            PhoneCodec::Opus => None,
        }
    }

    /// The G.711 law, for the two G.711 codecs.
    pub fn law(self) -> Option<Law> {
        match self {
            PhoneCodec::Pcmu => Some(Law::Pcmu),
            PhoneCodec::Pcma => Some(Law::Pcma),
            _ => None,
        }
    }
}

/// The dynamic payload type we offer Opus under.
pub const OPUS_OFFER_PT: u8 = 111;

impl From<Law> for PhoneCodec {
    fn from(law: Law) -> Self {
        match law {
            Law::Pcmu => PhoneCodec::Pcmu,
            Law::Pcma => PhoneCodec::Pcma,
        }
    }
}

impl fmt::Display for PhoneCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_frames() {
        let table = [
            (PhoneCodec::Pcmu, 0, 8000, 8000, 160, 160),
            (PhoneCodec::Pcma, 8, 8000, 8000, 160, 160),
            (PhoneCodec::G722, 9, 8000, 16000, 320, 160),
            (PhoneCodec::Opus, 111, 48000, 48000, 960, 960),
        ];
        for (codec, pt, clock, rate, samples, ts) in table {
            assert_eq!(codec.offer_pt(), pt, "{codec}");
            assert_eq!(codec.rtp_clock(), clock, "{codec}");
            assert_eq!(codec.sample_rate(), rate, "{codec}");
            assert_eq!(codec.samples_per_frame(), samples, "{codec}");
            assert_eq!(codec.ts_per_frame(), ts, "{codec}");
        }
    }

    #[test]
    fn rtpmap_and_static_lookup() {
        assert_eq!(PhoneCodec::from_static_pt(9), Some(PhoneCodec::G722));
        assert_eq!(PhoneCodec::from_static_pt(3), None);
        assert_eq!(
            PhoneCodec::from_rtpmap("OPUS", 48000, Some(2)),
            Some(PhoneCodec::Opus)
        );
        assert_eq!(PhoneCodec::from_rtpmap("opus", 48000, None), None);
        assert_eq!(
            PhoneCodec::from_rtpmap("pcmu", 8000, None),
            Some(PhoneCodec::Pcmu)
        );
        assert_eq!(
            PhoneCodec::from_rtpmap("PCMA", 8000, Some(1)),
            Some(PhoneCodec::Pcma)
        );
        assert_eq!(PhoneCodec::from_rtpmap("G722", 16000, None), None);
        assert_eq!(PhoneCodec::from(Law::Pcma), PhoneCodec::Pcma);
    }
}
