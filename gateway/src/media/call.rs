//! The per-call audio chains between a G.711 phone leg and the room.
//!
//! [`PhoneToRoom`]: G.711 payload → 8 kHz PCM → 48 kHz PCM (kept, so the
//! gateway can feed its own mixer without decoding its own Opus) → Opus.
//! [`RoomToPhone`]: the caller's 48 kHz mix → 8 kHz → G.711 payload.
//! Both work on 20 ms frames and own all their buffers.

use super::g711::Law;
use super::opus::{Layout, OpusEncoder};
use super::resample::{Downsampler, PhoneRate, Upsampler};
use super::{MediaError, FRAME_48K};

/// G.711 samples in 20 ms.
pub const FRAME_8K: usize = 160;

/// Phone → room: decode G.711, upsample, encode Opus.
pub struct PhoneToRoom {
    law: Law,
    up: Upsampler,
    enc: OpusEncoder,
    pcm8: [i16; FRAME_8K],
    pcm48: Vec<i16>,
}

impl PhoneToRoom {
    /// A chain for `law`, sending mono Opus at `bitrate` bit/s.
    pub fn new(law: Law, bitrate: i32) -> Result<Self, MediaError> {
        Ok(PhoneToRoom {
            law,
            up: Upsampler::new(PhoneRate::Hz8000),
            enc: OpusEncoder::new(Layout::Mono, bitrate)?,
            pcm8: [0; FRAME_8K],
            pcm48: vec![0; FRAME_48K],
        })
    }

    /// Takes one 20 ms G.711 payload (160 bytes); writes the Opus packet to
    /// `out` and returns its length.
    pub fn process(&mut self, g711: &[u8], out: &mut [u8]) -> Result<usize, MediaError> {
        if g711.len() != FRAME_8K {
            return Err(MediaError::FrameSize {
                expected: FRAME_8K,
                got: g711.len(),
            });
        }
        self.law.decode(g711, &mut self.pcm8);
        self.up.process(&self.pcm8, &mut self.pcm48)?;
        self.enc.encode(&self.pcm48, out)
    }

    /// The 48 kHz PCM of the last processed frame (this caller's stream,
    /// ready for the mixer).
    pub fn pcm48(&self) -> &[i16] {
        &self.pcm48
    }
}

/// Room → phone: downsample the caller's mix, encode G.711.
pub struct RoomToPhone {
    law: Law,
    down: Downsampler,
    pcm8: [i16; FRAME_8K],
}

impl RoomToPhone {
    /// A chain for `law`.
    pub fn new(law: Law) -> Self {
        RoomToPhone {
            law,
            down: Downsampler::new(PhoneRate::Hz8000),
            pcm8: [0; FRAME_8K],
        }
    }

    /// Takes one 20 ms 48 kHz mono mix (960 samples); writes the 160-byte
    /// G.711 payload into `out`.
    pub fn process(&mut self, mix48: &[i16], out: &mut [u8; FRAME_8K]) -> Result<(), MediaError> {
        self.down.process(mix48, &mut self.pcm8)?;
        self.law.encode(&self.pcm8, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus::{OpusDecoder, MAX_PACKET};
    use crate::media::testutil::{dominant_freq, sine};

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
}
