//! A small RIFF/WAVE reader (Microsoft's RIFF spec, `WAVE_FORMAT_PCM` and
//! `WAVE_FORMAT_EXTENSIBLE` with a PCM sub-format), for the prompts only.
//!
//! Contract: [`read_pcm16`] takes a whole file's bytes and returns its
//! 16-bit samples with the format found, or says what is wrong with it.
//! Chunks other than `fmt ` and `data` are skipped; a `data` chunk whose
//! size overruns the file (a WAV streamed to a pipe) is taken as far as the
//! file goes. Never panics, whatever the bytes.

/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 0x0001;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is in the sub-format GUID.
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// What a WAV file holds, from its `fmt ` chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
}

/// Why a file is not a usable 16-bit PCM WAV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error("the `{0}` chunk is cut short")]
    Truncated(&'static str),
    #[error("no `fmt ` chunk before the audio")]
    NoFormat,
    #[error("no `data` chunk")]
    NoData,
    #[error("format tag {0:#06x}, expected PCM")]
    NotPcm(u16),
    #[error("{0} bits per sample, expected 16")]
    Bits(u16),
    #[error("{0} channels, expected mono")]
    Channels(u16),
    #[error("{0} Hz, expected {1} Hz")]
    Rate(u32, u32),
    #[error("no samples")]
    Empty,
    #[error("{0} samples, more than {1}")]
    TooLong(usize, usize),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The format and the samples of a 16-bit PCM WAV file (interleaved when
/// it has several channels).
pub fn read_pcm16(bytes: &[u8]) -> Result<(WavFormat, Vec<i16>), WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotWave);
    }
    let mut format = None;
    let mut at = 12;
    while let Some(id) = bytes.get(at..at + 4) {
        let size = u32_at(bytes, at + 4).ok_or(WavError::Truncated("chunk header"))? as usize;
        let start = at + 8;
        let end = start.saturating_add(size);
        match id {
            b"fmt " => {
                let body = bytes.get(start..end).ok_or(WavError::Truncated("fmt "))?;
                format = Some(parse_format(body)?);
            }
            b"data" => {
                let format = format.ok_or(WavError::NoFormat)?;
                let body = &bytes[start.min(bytes.len())..end.min(bytes.len())];
                let samples = body
                    .chunks_exact(2)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]))
                    .collect();
                return Ok((format, samples));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = end.saturating_add(size & 1);
    }
    Err(WavError::NoData)
}

fn parse_format(body: &[u8]) -> Result<WavFormat, WavError> {
    let short = WavError::Truncated("fmt ");
    let mut tag = u16_at(body, 0).ok_or(short.clone())?;
    let channels = u16_at(body, 2).ok_or(short.clone())?;
    let sample_rate = u32_at(body, 4).ok_or(short.clone())?;
    let bits_per_sample = u16_at(body, 14).ok_or(short.clone())?;
    if tag == FORMAT_EXTENSIBLE {
        // cbSize(2) validBits(2) channelMask(4), then the GUID whose first
        // two bytes are the format tag.
        tag = u16_at(body, 24).ok_or(short)?;
    }
    if tag != FORMAT_PCM {
        return Err(WavError::NotPcm(tag));
    }
    if bits_per_sample != 16 {
        return Err(WavError::Bits(bits_per_sample));
    }
    Ok(WavFormat {
        channels,
        sample_rate,
        bits_per_sample,
    })
}

/// A canonical 16-bit PCM WAV file of `samples` (for tests).
#[cfg(test)]
pub fn write_pcm16(channels: u16, sample_rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = samples.len() as u32 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&FORMAT_PCM.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2 * u32::from(channels)).to_le_bytes());
    out.extend_from_slice(&(2 * channels).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONO_48K: WavFormat = WavFormat {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
    };

    #[test]
    fn a_canonical_file_reads_back() {
        let samples = [0, 1, -1, i16::MAX, i16::MIN, 1234];
        let file = write_pcm16(1, 48_000, &samples);
        assert_eq!(read_pcm16(&file), Ok((MONO_48K, samples.to_vec())));
    }

    #[test]
    fn other_chunks_are_skipped_with_their_padding() {
        let plain = write_pcm16(1, 48_000, &[7, 8]);
        let mut file = plain[..36].to_vec();
        // An odd-sized LIST chunk, padded to even, before `data`.
        file.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00");
        file.extend_from_slice(&plain[36..]);
        assert_eq!(read_pcm16(&file), Ok((MONO_48K, vec![7, 8])));
    }

    #[test]
    fn a_streamed_data_size_is_read_as_far_as_the_file_goes() {
        let mut file = write_pcm16(1, 48_000, &[5, 6, 7]);
        file[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        file.push(0x01); // half a sample at the end: dropped
        assert_eq!(read_pcm16(&file), Ok((MONO_48K, vec![5, 6, 7])));
    }

    #[test]
    fn extensible_pcm_is_pcm() {
        let plain = write_pcm16(1, 48_000, &[9]);
        let mut file = plain[..12].to_vec();
        file.extend_from_slice(b"fmt \x28\x00\x00\x00");
        let mut fmt = plain[20..36].to_vec();
        fmt[0..2].copy_from_slice(&FORMAT_EXTENSIBLE.to_le_bytes());
        fmt.extend_from_slice(&[22, 0, 16, 0, 4, 0, 0, 0]);
        fmt.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0]); // KSDATAFORMAT_SUBTYPE_PCM…
        fmt.extend_from_slice(&[0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
        file.extend_from_slice(&fmt);
        file.extend_from_slice(&plain[36..]);
        assert_eq!(read_pcm16(&file), Ok((MONO_48K, vec![9])));
        // The same with a float sub-format.
        let at = 12 + 8 + 24;
        file[at] = 3;
        assert_eq!(read_pcm16(&file), Err(WavError::NotPcm(3)));
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        let good = write_pcm16(1, 48_000, &[1, 2]);
        let mut float = good.clone();
        float[20] = 3;
        let mut bits8 = good.clone();
        bits8[34] = 8;
        let mut no_fmt = good[..12].to_vec();
        no_fmt.extend_from_slice(&good[36..]);
        let cases: Vec<(&str, Vec<u8>, WavError)> = vec![
            ("empty", vec![], WavError::NotWave),
            (
                "text",
                b"hello, this is not a wav".to_vec(),
                WavError::NotWave,
            ),
            ("header only", good[..12].to_vec(), WavError::NoData),
            (
                "cut in fmt",
                good[..30].to_vec(),
                WavError::Truncated("fmt "),
            ),
            (
                "cut in header",
                good[..18].to_vec(),
                WavError::Truncated("chunk header"),
            ),
            ("float", float, WavError::NotPcm(3)),
            ("8-bit", bits8, WavError::Bits(8)),
            ("data first", no_fmt, WavError::NoFormat),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(read_pcm16(&bytes), Err(want), "{name}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let good = write_pcm16(1, 48_000, &[1, 2, 3, 4]);
        for cut in 0..good.len() {
            let _ = read_pcm16(&good[..cut]);
        }
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let at = x as usize % bytes.len();
                bytes[at] = (x >> 8) as u8;
            }
            let _ = read_pcm16(&bytes);
        }
    }
}
