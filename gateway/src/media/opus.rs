//! Opus (RFC 6716) at 48 kHz, mono or stereo, over `audiopus` 0.2 (which
//! links the system libopus, `libopus-dev`). An encoder may also take the
//! phone's own rate ([`OpusEncoder::for_phone`]): the stream is the same
//! Opus (decoded at 48 kHz), and narrowband input spares the encoder the
//! analysis of a band that holds nothing.
//!
//! A missing packet is concealed with libopus's PLC ([`OpusDecoder::conceal`]),
//! or recovered from the in-band FEC of the next packet when that one has
//! already arrived ([`OpusDecoder::recover`]).

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bitrate, Channels, SampleRate};

use super::resample::PhoneRate;
use super::{MediaError, FRAME_48K};

/// Largest Opus packet we produce (RFC 7587 recommends staying well below).
pub const MAX_PACKET: usize = 1275;

/// Channel layout of an Opus stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One channel.
    Mono,
    /// Two channels, interleaved L R L R.
    Stereo,
}

impl Layout {
    /// Channels in this layout.
    pub fn channels(self) -> usize {
        match self {
            Layout::Mono => 1,
            Layout::Stereo => 2,
        }
    }

    fn opus(self) -> Channels {
        match self {
            Layout::Mono => Channels::Mono,
            Layout::Stereo => Channels::Stereo,
        }
    }
}

/// An Opus encoder for 20 ms frames of voice.
pub struct OpusEncoder {
    inner: Encoder,
    layout: Layout,
    /// Samples per channel in 20 ms at the input rate.
    frame: usize,
}

/// libopus's encoder complexity range (0 cheapest .. 10 best).
pub const COMPLEXITY: std::ops::RangeInclusive<u8> = 0..=10;

impl OpusEncoder {
    /// A VoIP-tuned encoder at `bitrate` bit/s with in-band FEC on, expecting
    /// some loss (FEC is only spent when the encoder thinks it is useful).
    /// Input at 48 kHz, libopus's default complexity.
    pub fn new(layout: Layout, bitrate: i32) -> Result<Self, MediaError> {
        Self::build(SampleRate::Hz48000, layout, bitrate)
    }

    /// A mono encoder like [`new`](Self::new) whose input is at the phone's
    /// rate (`None`: 48 kHz), with `complexity` (clamped to [`COMPLEXITY`]).
    pub fn for_phone(
        rate: Option<PhoneRate>,
        bitrate: i32,
        complexity: u8,
    ) -> Result<Self, MediaError> {
        let hz = match rate {
            Some(PhoneRate::Hz8000) => SampleRate::Hz8000,
            Some(PhoneRate::Hz16000) => SampleRate::Hz16000,
            None => SampleRate::Hz48000,
        };
        let mut enc = Self::build(hz, Layout::Mono, bitrate)?;
        enc.inner
            .set_complexity(complexity.min(*COMPLEXITY.end()))?;
        Ok(enc)
    }

    fn build(rate: SampleRate, layout: Layout, bitrate: i32) -> Result<Self, MediaError> {
        let mut inner = Encoder::new(rate, layout.opus(), Application::Voip)?;
        inner.set_bitrate(Bitrate::BitsPerSecond(bitrate))?;
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(5)?;
        Ok(OpusEncoder {
            inner,
            layout,
            frame: rate as usize / 50,
        })
    }

    /// Samples (all channels) in one 20 ms frame.
    pub fn frame_len(&self) -> usize {
        self.frame * self.layout.channels()
    }

    /// Encodes one 20 ms frame; returns the packet length written to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, MediaError> {
        if pcm.len() != self.frame_len() {
            return Err(MediaError::FrameSize {
                expected: self.frame_len(),
                got: pcm.len(),
            });
        }
        Ok(self.inner.encode(pcm, out)?)
    }
}

/// An Opus decoder producing 48 kHz PCM.
pub struct OpusDecoder {
    inner: Decoder,
    layout: Layout,
}

impl OpusDecoder {
    /// A decoder for `layout` output (Opus decodes any stream to any layout).
    pub fn new(layout: Layout) -> Result<Self, MediaError> {
        Ok(OpusDecoder {
            inner: Decoder::new(SampleRate::Hz48000, layout.opus())?,
            layout,
        })
    }

    /// Samples (all channels) in one 20 ms frame.
    pub fn frame_len(&self) -> usize {
        FRAME_48K * self.layout.channels()
    }

    fn check(&self, out: &[i16]) -> Result<(), MediaError> {
        if out.len() < self.frame_len() {
            return Err(MediaError::FrameSize {
                expected: self.frame_len(),
                got: out.len(),
            });
        }
        Ok(())
    }

    /// Decodes `packet` into `out`; returns samples per channel written.
    /// An empty packet counts as lost and is concealed.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, MediaError> {
        if packet.is_empty() {
            return self.conceal(out);
        }
        Ok(self.inner.decode(Some(packet), out, false)?)
    }

    /// Fills one 20 ms frame of `out` by packet loss concealment.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, MediaError> {
        self.check(out)?;
        let len = self.frame_len();
        Ok(self.inner.decode(None::<&[u8]>, &mut out[..len], false)?)
    }

    /// Rebuilds the lost frame before `next` from `next`'s in-band FEC (PLC
    /// if `next` carries none). Decode `next` itself afterwards as usual.
    pub fn recover(&mut self, next: &[u8], out: &mut [i16]) -> Result<usize, MediaError> {
        self.check(out)?;
        if next.is_empty() {
            return self.conceal(out);
        }
        let len = self.frame_len();
        Ok(self.inner.decode(Some(next), &mut out[..len], true)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::testutil::{dominant_freq, goertzel, sine};

    fn encode_all(enc: &mut OpusEncoder, pcm: &[i16]) -> Vec<Vec<u8>> {
        let mut buf = [0u8; MAX_PACKET];
        pcm.chunks_exact(enc.frame_len())
            .map(|f| {
                let n = enc.encode(f, &mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect()
    }

    #[test]
    fn tone_440_round_trip_keeps_its_frequency() {
        let tone = sine(48000, 440.0, 12000.0, 48000);
        let mut enc = OpusEncoder::new(Layout::Mono, 32000).unwrap();
        let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
        let mut out = Vec::new();
        let mut frame = [0i16; FRAME_48K];
        let packets = encode_all(&mut enc, &tone);
        for p in &packets {
            assert_eq!(dec.decode(p, &mut frame).unwrap(), FRAME_48K);
            out.extend_from_slice(&frame);
        }
        let tail = &out[9600..];
        assert_eq!(dominant_freq(tail, 48000), 440.0);
        let bytes: usize = packets.iter().map(Vec::len).sum();
        eprintln!("opus mono 440 Hz: {} packets, {bytes} bytes", packets.len());
    }

    #[test]
    fn phone_rate_input_decodes_at_48k_with_its_tone() {
        for (rate, hz) in [(PhoneRate::Hz8000, 8000), (PhoneRate::Hz16000, 16000)] {
            let tone = sine(hz, 1000.0, 12000.0, hz as usize);
            for complexity in [0, 1, 10, 200] {
                let mut enc = OpusEncoder::for_phone(Some(rate), 32000, complexity).unwrap();
                assert_eq!(enc.frame_len(), hz as usize / 50);
                let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
                let mut out = Vec::new();
                let mut frame = [0i16; FRAME_48K];
                for p in encode_all(&mut enc, &tone) {
                    assert_eq!(dec.decode(&p, &mut frame).unwrap(), FRAME_48K);
                    out.extend_from_slice(&frame);
                }
                assert_eq!(out.len(), 48000, "{hz} Hz in, one second out");
                assert_eq!(
                    dominant_freq(&out[9600..], 48000),
                    1000.0,
                    "{hz} {complexity}"
                );
            }
        }
        // A frame of the wrong rate is refused, not encoded.
        let mut enc = OpusEncoder::for_phone(Some(PhoneRate::Hz8000), 32000, 1).unwrap();
        let mut buf = [0u8; MAX_PACKET];
        assert!(enc.encode(&[0; FRAME_48K], &mut buf).is_err());
    }

    #[test]
    fn stereo_round_trip_keeps_both_channels() {
        let left = sine(48000, 440.0, 12000.0, 19200);
        let right = sine(48000, 1000.0, 12000.0, 19200);
        let pcm: Vec<i16> = left
            .iter()
            .zip(&right)
            .flat_map(|(&l, &r)| [l, r])
            .collect();
        let mut enc = OpusEncoder::new(Layout::Stereo, 64000).unwrap();
        let mut dec = OpusDecoder::new(Layout::Stereo).unwrap();
        let mut out = Vec::new();
        let mut frame = [0i16; 2 * FRAME_48K];
        for p in encode_all(&mut enc, &pcm) {
            dec.decode(&p, &mut frame).unwrap();
            out.extend_from_slice(&frame);
        }
        let l: Vec<i16> = out.iter().step_by(2).copied().skip(9600).collect();
        let r: Vec<i16> = out.iter().skip(1).step_by(2).copied().skip(9600).collect();
        assert_eq!(dominant_freq(&l, 48000), 440.0);
        assert_eq!(dominant_freq(&r, 48000), 1000.0);
    }

    #[test]
    fn loss_is_concealed_with_a_full_frame() {
        let tone = sine(48000, 440.0, 12000.0, 48000);
        let mut enc = OpusEncoder::new(Layout::Mono, 32000).unwrap();
        let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
        let packets = encode_all(&mut enc, &tone);
        let mut frame = [0i16; FRAME_48K];
        for p in &packets[..25] {
            dec.decode(p, &mut frame).unwrap();
        }
        // Packet 25 is lost: PLC continues the tone.
        frame.fill(0);
        assert_eq!(dec.conceal(&mut frame).unwrap(), FRAME_48K);
        assert!(
            goertzel(&frame, 48000, 440.0) > 1e4,
            "PLC frame lacks the tone"
        );
        // Packet 26 is lost too but 27 is here: FEC (or PLC) from it.
        assert_eq!(dec.recover(&packets[27], &mut frame).unwrap(), FRAME_48K);
        assert_eq!(dec.decode(&packets[27], &mut frame).unwrap(), FRAME_48K);
        // An empty payload counts as a loss, and garbage is an error, not a panic.
        assert_eq!(dec.decode(&[], &mut frame).unwrap(), FRAME_48K);
        assert!(dec.decode(&[0xFF; 3], &mut frame).is_err());
    }
}
