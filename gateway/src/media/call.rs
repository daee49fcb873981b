//! The per-call audio chains between a phone leg and the room, for every
//! [`PhoneCodec`].
//!
//! [`PhoneToRoom`]: phone payload → PCM → room Opus, encoded from the
//! phone-rate PCM (narrowband or wideband Opus: the phone side carries
//! nothing above its band). The PCM is kept for the gateway's own mixer
//! (so it never decodes its own Opus): at the phone's rate
//! ([`PhoneToRoom::pcm`]) and, upsampled only when asked for, at 48 kHz
//! ([`PhoneToRoom::pcm48`]).
//! [`RoomToPhone`]: the caller's mix, at 48 kHz or already at the phone's
//! rate → phone payload.
//!
//! | codec      | phone PCM | resampling     | 20 ms payload   |
//! |------------|-----------|----------------|-----------------|
//! | PCMU, PCMA | 8 kHz     | ×6 / ÷6        | 160 bytes       |
//! | G.722      | 16 kHz    | ×3 / ÷3        | 160 bytes       |
//! | Opus       | 48 kHz    | none           | variable        |
//!
//! A missing phone packet is filled by [`PhoneToRoom::conceal`] so that the
//! room stream keeps its 20 ms cadence: Opus uses its decoder's PLC; G.711
//! and G.722 repeat the last good frame fading out over 40 ms, then give
//! silence. The G.722 decoder's ADPCM state is simply not advanced over a
//! loss; it re-adapts within a few milliseconds of the next packet.
//! Both chains work on 20 ms frames and own all their buffers.

use super::g711::Law;
use super::g722::{G722Decoder, G722Encoder};
use super::opus::{Layout, OpusDecoder, OpusEncoder};
use super::resample::{Downsampler, PhoneRate, Upsampler};
use super::{MediaError, FRAME_48K};
use crate::phone::codec::PhoneCodec;

/// G.711 samples in 20 ms.
pub const FRAME_8K: usize = 160;

/// Concealed frames that still carry (fading) sound; silence after them.
const FADE_FRAMES: u32 = 2;

/// The phone rate a codec is resampled from, or `None` for 48 kHz.
fn phone_rate(codec: PhoneCodec) -> Option<PhoneRate> {
    match codec {
        PhoneCodec::Pcmu | PhoneCodec::Pcma => Some(PhoneRate::Hz8000),
        PhoneCodec::G722 => Some(PhoneRate::Hz16000),
        PhoneCodec::Opus => None,
    }
}

/// The fixed payload length of `codec`, checked against `got`.
fn check_payload(codec: PhoneCodec, got: usize) -> Result<(), MediaError> {
    match codec.bytes_per_frame() {
        Some(expected) if expected != got => Err(MediaError::FrameSize { expected, got }),
        _ => Ok(()),
    }
}

enum Decode {
    G711(Law),
    G722(Box<G722Decoder>),
    Opus(OpusDecoder),
}

/// Phone → room: decode the phone codec, bring it to 48 kHz, encode Opus.
pub struct PhoneToRoom {
    codec: PhoneCodec,
    decode: Decode,
    /// Phone rate → 48 kHz (absent for Opus).
    up: Option<Upsampler>,
    /// This frame at the phone rate (empty for Opus).
    pcm: Vec<i16>,
    /// The last good frame at the phone rate, for concealment.
    last: Vec<i16>,
    /// Frames concealed in a row.
    lost: u32,
    pcm48: Vec<i16>,
    /// `pcm48` holds this frame (it is upsampled only when asked for).
    wide: bool,
    enc: OpusEncoder,
}

/// libopus complexity of the room Opus a call sends, unless configured
/// (`sip.room_opus_complexity`).
pub const DEFAULT_COMPLEXITY: u8 = 1;

impl PhoneToRoom {
    /// A chain for `codec` (a G.711 [`Law`] will do), sending mono room Opus
    /// at `bitrate` bit/s with [`DEFAULT_COMPLEXITY`].
    pub fn new(codec: impl Into<PhoneCodec>, bitrate: i32) -> Result<Self, MediaError> {
        Self::with_complexity(codec, bitrate, DEFAULT_COMPLEXITY)
    }

    /// [`new`](Self::new) with the encoder's `complexity` (0..=10).
    pub fn with_complexity(
        codec: impl Into<PhoneCodec>,
        bitrate: i32,
        complexity: u8,
    ) -> Result<Self, MediaError> {
        let codec = codec.into();
        let decode = match codec {
            PhoneCodec::Pcmu => Decode::G711(Law::Pcmu),
            PhoneCodec::Pcma => Decode::G711(Law::Pcma),
            PhoneCodec::G722 => Decode::G722(Box::default()),
            PhoneCodec::Opus => Decode::Opus(OpusDecoder::new(Layout::Mono)?),
        };
        let rate = phone_rate(codec);
        let phone_len = if rate.is_some() {
            codec.samples_per_frame()
        } else {
            0
        };
        Ok(PhoneToRoom {
            codec,
            decode,
            up: rate.map(Upsampler::new),
            pcm: vec![0; phone_len],
            last: vec![0; phone_len],
            lost: FADE_FRAMES,
            pcm48: vec![0; FRAME_48K],
            wide: true,
            enc: OpusEncoder::for_phone(rate, bitrate, complexity)?,
        })
    }

    /// The phone codec of this chain.
    pub fn codec(&self) -> PhoneCodec {
        self.codec
    }

    /// Takes one 20 ms phone payload (160 bytes of G.711 or G.722, or one
    /// Opus packet of 20 ms); writes the room Opus packet to `out` and
    /// returns its length. An error leaves the room without this frame:
    /// conceal it instead.
    pub fn process(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, MediaError> {
        check_payload(self.codec, payload.len())?;
        match &mut self.decode {
            Decode::G711(law) => law.decode(payload, &mut self.pcm),
            Decode::G722(dec) => {
                dec.decode(payload, &mut self.pcm)?;
            }
            Decode::Opus(dec) => {
                let got = dec.decode(payload, &mut self.pcm48)?;
                if got != FRAME_48K {
                    return Err(MediaError::FrameSize {
                        expected: FRAME_48K,
                        got,
                    });
                }
            }
        }
        self.wide = self.up.is_none();
        if self.up.is_some() {
            self.last.copy_from_slice(&self.pcm);
        }
        self.lost = 0;
        self.encode(out)
    }

    /// Encodes this frame, from the phone-rate PCM when there is one.
    fn encode(&mut self, out: &mut [u8]) -> Result<usize, MediaError> {
        if self.up.is_some() {
            self.enc.encode(&self.pcm, out)
        } else {
            self.enc.encode(&self.pcm48, out)
        }
    }

    /// Fills in for a phone packet that never came: writes a room Opus
    /// packet made from concealment to `out` and returns its length.
    pub fn conceal(&mut self, out: &mut [u8]) -> Result<usize, MediaError> {
        match &mut self.decode {
            Decode::Opus(dec) => {
                dec.conceal(&mut self.pcm48)?;
            }
            Decode::G711(_) | Decode::G722(_) => self.fade_last(),
        }
        self.wide = self.up.is_none();
        self.lost = self.lost.saturating_add(1);
        self.encode(out)
    }

    /// Like [`conceal`](Self::conceal) when the packet after the lost one
    /// is already here (`next`, its payload): Opus rebuilds the lost frame
    /// from `next`'s in-band FEC; the other codecs conceal. Process `next`
    /// itself afterwards as usual.
    pub fn recover(&mut self, next: &[u8], out: &mut [u8]) -> Result<usize, MediaError> {
        let Decode::Opus(dec) = &mut self.decode else {
            return self.conceal(out);
        };
        dec.recover(next, &mut self.pcm48)?;
        self.wide = true;
        self.lost = self.lost.saturating_add(1);
        self.enc.encode(&self.pcm48, out)
    }

    /// Repeats the last good frame with a linear fade: from full to half in
    /// the first lost frame, half to nothing in the second, then silence.
    fn fade_last(&mut self) {
        let step = 1.0 / FADE_FRAMES as f32;
        let from = 1.0 - self.lost.min(FADE_FRAMES) as f32 * step;
        let to = (from - step).max(0.0);
        let len = self.pcm.len() as f32;
        for (i, (o, &s)) in self.pcm.iter_mut().zip(&self.last).enumerate() {
            let gain = from + (to - from) * (i as f32 / len);
            *o = (f32::from(s) * gain) as i16;
        }
    }

    /// The rate of [`pcm`](Self::pcm) (`None`: 48 kHz).
    pub fn rate(&self) -> Option<PhoneRate> {
        phone_rate(self.codec)
    }

    /// The last frame, processed or concealed, at the phone's rate.
    pub fn pcm(&self) -> &[i16] {
        if self.up.is_some() {
            &self.pcm
        } else {
            &self.pcm48
        }
    }

    /// The last frame at 48 kHz (upsampled now if it was not yet).
    pub fn pcm48(&mut self) -> &[i16] {
        if !self.wide {
            if let Some(up) = &mut self.up {
                // The lengths are fixed at construction: this cannot fail.
                if up.process(&self.pcm, &mut self.pcm48).is_err() {
                    self.pcm48.fill(0);
                }
            }
            self.wide = true;
        }
        &self.pcm48
    }
}

enum Encode {
    G711(Law),
    G722(Box<G722Encoder>),
    Opus(OpusEncoder),
}

/// Room → phone: bring the caller's mix to the phone rate, encode.
pub struct RoomToPhone {
    codec: PhoneCodec,
    encode: Encode,
    /// 48 kHz → phone rate (absent for Opus).
    down: Option<Downsampler>,
    /// This frame at the phone rate (empty for Opus).
    pcm: Vec<i16>,
}

impl RoomToPhone {
    /// A G.711 chain for `law`.
    pub fn new(law: Law) -> Self {
        RoomToPhone {
            codec: law.into(),
            encode: Encode::G711(law),
            down: Some(Downsampler::new(PhoneRate::Hz8000)),
            pcm: vec![0; FRAME_8K],
        }
    }

    /// A chain for `codec`; `bitrate` (bit/s) is used by Opus only.
    pub fn with_codec(codec: PhoneCodec, bitrate: i32) -> Result<Self, MediaError> {
        let encode = match codec {
            PhoneCodec::Pcmu => Encode::G711(Law::Pcmu),
            PhoneCodec::Pcma => Encode::G711(Law::Pcma),
            PhoneCodec::G722 => Encode::G722(Box::default()),
            PhoneCodec::Opus => Encode::Opus(OpusEncoder::new(Layout::Mono, bitrate)?),
        };
        let rate = phone_rate(codec);
        let phone_len = if rate.is_some() {
            codec.samples_per_frame()
        } else {
            0
        };
        Ok(RoomToPhone {
            codec,
            encode,
            down: rate.map(Downsampler::new),
            pcm: vec![0; phone_len],
        })
    }

    /// The phone codec of this chain.
    pub fn codec(&self) -> PhoneCodec {
        self.codec
    }

    /// Takes one 20 ms 48 kHz mono mix (960 samples); writes the phone
    /// payload into `out` (160 bytes for G.711 and G.722; up to
    /// [`MAX_PACKET`](super::opus::MAX_PACKET) for Opus) and returns its
    /// length.
    pub fn process(&mut self, mix48: &[i16], out: &mut [u8]) -> Result<usize, MediaError> {
        if let Some(down) = &mut self.down {
            down.process(mix48, &mut self.pcm)?;
        }
        self.encode(mix48, out)
    }

    /// Like [`process`](Self::process), for a mix at `rate` (`None`:
    /// 48 kHz): a mix already at the phone's rate is encoded as it is.
    pub fn process_at(
        &mut self,
        mix: &[i16],
        rate: Option<PhoneRate>,
        out: &mut [u8],
    ) -> Result<usize, MediaError> {
        if rate.is_none() || self.down.is_none() {
            return self.process(mix, out);
        }
        if rate != phone_rate(self.codec) || mix.len() != self.pcm.len() {
            return Err(MediaError::FrameSize {
                expected: self.pcm.len(),
                got: mix.len(),
            });
        }
        self.pcm.copy_from_slice(mix);
        self.encode(mix, out)
    }

    /// Encodes `self.pcm` (`mix48` for an Opus phone).
    fn encode(&mut self, mix48: &[i16], out: &mut [u8]) -> Result<usize, MediaError> {
        match &mut self.encode {
            Encode::G711(law) => {
                if out.len() < FRAME_8K {
                    return Err(MediaError::FrameSize {
                        expected: FRAME_8K,
                        got: out.len(),
                    });
                }
                law.encode(&self.pcm, &mut out[..FRAME_8K]);
                Ok(FRAME_8K)
            }
            Encode::G722(enc) => enc.encode(&self.pcm, out),
            Encode::Opus(enc) => enc.encode(mix48, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus::MAX_PACKET;
    use crate::media::testutil::{dominant_freq, goertzel, sine, snr_db};

    #[test]
    fn the_phone_rate_frame_is_kept_and_48k_is_made_when_asked() {
        let tone = sine(8000, 440.0, 12000.0, 8000);
        let mut g711 = vec![0u8; tone.len()];
        Law::Pcmu.encode(&tone, &mut g711);
        let mut uplink = PhoneToRoom::new(Law::Pcmu, 32000).unwrap();
        let mut buf = [0u8; MAX_PACKET];
        let (mut narrow, mut wide) = (Vec::new(), Vec::new());
        for f in g711.chunks_exact(FRAME_8K) {
            uplink.process(f, &mut buf).unwrap();
            assert_eq!(uplink.rate(), Some(PhoneRate::Hz8000));
            narrow.extend_from_slice(uplink.pcm());
            wide.extend_from_slice(uplink.pcm48());
        }
        assert_eq!(narrow.len(), 8000);
        assert_eq!(wide.len(), 48000);
        assert_eq!(dominant_freq(&narrow[1600..], 8000), 440.0);
        assert_eq!(dominant_freq(&wide[9600..], 48000), 440.0);

        // A mix at the phone's rate is encoded as it is; a mix at another
        // rate than the phone's or 48 kHz is refused.
        let mut down = RoomToPhone::new(Law::Pcmu);
        let mut out = [0u8; FRAME_8K];
        let mut back = Vec::new();
        for f in tone.chunks_exact(FRAME_8K) {
            let n = down
                .process_at(f, Some(PhoneRate::Hz8000), &mut out)
                .unwrap();
            let mut pcm = [0i16; FRAME_8K];
            Law::Pcmu.decode(&out[..n], &mut pcm);
            back.extend_from_slice(&pcm);
        }
        assert!(snr_db(&back, 8000, 440.0) > 30.0, "G.711 alone");
        let f16 = [0i16; 320];
        assert!(down
            .process_at(&f16, Some(PhoneRate::Hz16000), &mut out)
            .is_err());
    }

    #[test]
    fn a_phone_tone_reaches_the_room_and_comes_back() {
        let tone = sine(8000, 440.0, 12000.0, 8000);
        let mut g711 = vec![0u8; tone.len()];
        Law::Pcma.encode(&tone, &mut g711);
        let mut uplink = PhoneToRoom::new(Law::Pcma, 32000).unwrap();
        let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
        let mut downlink = RoomToPhone::new(Law::Pcma);
        let (mut packet, mut pcm48, mut back) =
            ([0u8; MAX_PACKET], [0i16; FRAME_48K], [0u8; FRAME_8K]);
        let mut heard = Vec::new();
        for frame in g711.chunks_exact(FRAME_8K) {
            let n = uplink.process(frame, &mut packet).unwrap();
            dec.decode(&packet[..n], &mut pcm48).unwrap();
            downlink.process(&pcm48, &mut back).unwrap();
            let mut pcm8 = [0i16; FRAME_8K];
            Law::Pcma.decode(&back, &mut pcm8);
            heard.extend_from_slice(&pcm8);
        }
        assert_eq!(dominant_freq(&heard[1600..], 8000), 440.0);
        assert!(uplink.process(&g711[..100], &mut packet).is_err());
    }

    /// Encodes `pcm` (at the codec's rate) into 20 ms phone payloads.
    fn phone_encode(codec: PhoneCodec, pcm: &[i16]) -> Vec<Vec<u8>> {
        let frame = codec.samples_per_frame();
        let mut buf = [0u8; MAX_PACKET];
        let mut g722 = G722Encoder::new();
        let mut opus = OpusEncoder::new(Layout::Mono, 32000).unwrap();
        pcm.chunks_exact(frame)
            .map(|f| {
                let n = match codec.law() {
                    Some(law) => {
                        law.encode(f, &mut buf);
                        frame
                    }
                    None if codec == PhoneCodec::G722 => g722.encode(f, &mut buf).unwrap(),
                    None => opus.encode(f, &mut buf).unwrap(),
                };
                buf[..n].to_vec()
            })
            .collect()
    }

    /// Decodes phone payloads to PCM at the codec's rate.
    fn phone_decode(codec: PhoneCodec, packets: &[Vec<u8>]) -> Vec<i16> {
        let mut out = Vec::new();
        let mut frame = vec![0i16; codec.samples_per_frame()];
        let mut g722 = G722Decoder::new();
        let mut opus = OpusDecoder::new(Layout::Mono).unwrap();
        for p in packets {
            match codec.law() {
                Some(law) => law.decode(p, &mut frame),
                None if codec == PhoneCodec::G722 => {
                    g722.decode(p, &mut frame).unwrap();
                }
                None => {
                    opus.decode(p, &mut frame).unwrap();
                }
            }
            out.extend_from_slice(&frame);
        }
        out
    }

    #[test]
    fn every_codec_carries_a_phone_tone_into_the_room() {
        for codec in PhoneCodec::ALL {
            let rate = codec.sample_rate();
            let tone = sine(rate, 700.0, 12000.0, rate as usize);
            let mut uplink = PhoneToRoom::new(codec, 32000).unwrap();
            assert_eq!(uplink.codec(), codec);
            let mut room = OpusDecoder::new(Layout::Mono).unwrap();
            let (mut packet, mut pcm48) = ([0u8; MAX_PACKET], [0i16; FRAME_48K]);
            let (mut heard, mut own) = (Vec::new(), Vec::new());
            for p in phone_encode(codec, &tone) {
                let n = uplink.process(&p, &mut packet).unwrap();
                room.decode(&packet[..n], &mut pcm48).unwrap();
                heard.extend_from_slice(&pcm48);
                own.extend_from_slice(uplink.pcm48());
            }
            assert_eq!(dominant_freq(&heard[9600..], 48000), 700.0, "{codec}");
            assert_eq!(dominant_freq(&own[9600..], 48000), 700.0, "{codec}");
        }
    }

    #[test]
    fn every_codec_carries_a_room_tone_to_the_phone() {
        let tone = sine(48000, 1000.0, 12000.0, 48000);
        for codec in PhoneCodec::ALL {
            let mut downlink = RoomToPhone::with_codec(codec, 32000).unwrap();
            assert_eq!(downlink.codec(), codec);
            let mut packet = [0u8; MAX_PACKET];
            let packets: Vec<Vec<u8>> = tone
                .chunks_exact(FRAME_48K)
                .map(|f| {
                    let n = downlink.process(f, &mut packet).unwrap();
                    if let Some(len) = codec.bytes_per_frame() {
                        assert_eq!(n, len, "{codec}");
                    }
                    packet[..n].to_vec()
                })
                .collect();
            let heard = phone_decode(codec, &packets);
            let rate = codec.sample_rate();
            let settled = &heard[rate as usize / 5..];
            assert_eq!(dominant_freq(settled, rate), 1000.0, "{codec}");
        }
    }

    #[test]
    fn g722_carries_wideband_that_g711_cannot() {
        // A 6 kHz room tone: above G.711's 4 kHz Nyquist, inside G.722's 7 kHz.
        let tone = sine(48000, 6000.0, 12000.0, 48000);
        let mut downlink = RoomToPhone::with_codec(PhoneCodec::G722, 0).unwrap();
        let mut packet = [0u8; 160];
        let packets: Vec<Vec<u8>> = tone
            .chunks_exact(FRAME_48K)
            .map(|f| {
                downlink.process(f, &mut packet).unwrap();
                packet.to_vec()
            })
            .collect();
        let heard = phone_decode(PhoneCodec::G722, &packets);
        let tail = &heard[3200..];
        let p6 = goertzel(tail, 16000, 6000.0);
        for f in [1000.0, 2000.0, 4000.0, 5000.0, 7000.0] {
            assert!(p6 > 100.0 * goertzel(tail, 16000, f), "6 kHz vs {f}");
        }
        // Back into the room at 48 kHz.
        let mut uplink = PhoneToRoom::new(PhoneCodec::G722, 32000).unwrap();
        let mut own = Vec::new();
        let mut out = [0u8; MAX_PACKET];
        for p in &packets {
            uplink.process(p, &mut out).unwrap();
            own.extend_from_slice(uplink.pcm48());
        }
        let tail = &own[9600..];
        assert!(goertzel(tail, 48000, 6000.0) > 100.0 * goertzel(tail, 48000, 2000.0));
    }

    #[test]
    fn losses_are_concealed_then_silenced() {
        for codec in PhoneCodec::ALL {
            let rate = codec.sample_rate();
            let tone = sine(rate, 400.0, 12000.0, rate as usize);
            let packets = phone_encode(codec, &tone);
            let mut uplink = PhoneToRoom::new(codec, 32000).unwrap();
            let mut out = [0u8; MAX_PACKET];
            // Nothing heard yet: concealment is silence, not a panic.
            uplink.conceal(&mut out).unwrap();
            assert!(uplink.pcm48().iter().all(|&s| s.abs() < 50), "{codec}");
            for p in &packets[..25] {
                uplink.process(p, &mut out).unwrap();
            }
            let full = goertzel(uplink.pcm48(), 48000, 400.0);
            // First loss: the tone goes on, a little quieter.
            assert!(uplink.conceal(&mut out).unwrap() > 0);
            let first = goertzel(uplink.pcm48(), 48000, 400.0);
            assert!(first > full / 10.0, "{codec}: {first} vs {full}");
            // A long gap ends in (near) silence for the waveform codecs;
            // Opus's PLC fades by itself.
            for _ in 0..10 {
                uplink.conceal(&mut out).unwrap();
            }
            let later = goertzel(uplink.pcm48(), 48000, 400.0);
            assert!(later < full / 100.0, "{codec}: {later} vs {full}");
            // Back to normal, and FEC recovery (or concealment) works too.
            uplink.recover(&packets[27], &mut out).unwrap();
            uplink.process(&packets[27], &mut out).unwrap();
            assert_eq!(uplink.pcm48().len(), FRAME_48K);
        }
    }

    #[test]
    fn wrong_sizes_and_garbage_are_errors() {
        let mut out = [0u8; MAX_PACKET];
        let mut g722 = PhoneToRoom::new(PhoneCodec::G722, 32000).unwrap();
        assert!(g722.process(&[0; 80], &mut out).is_err());
        assert!(g722.process(&[0x5A; 160], &mut out).is_ok());
        let mut opus = PhoneToRoom::new(PhoneCodec::Opus, 32000).unwrap();
        assert!(opus.process(&[0xFF; 3], &mut out).is_err());
        let mut down = RoomToPhone::with_codec(PhoneCodec::Pcmu, 0).unwrap();
        assert!(down.process(&[0; FRAME_48K], &mut [0u8; 100]).is_err());
        assert!(down.process(&[0; 900], &mut out).is_err());
    }
}
