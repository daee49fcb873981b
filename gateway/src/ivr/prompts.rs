//! The IVR's spoken prompts: one WAV file per [`Prompt`], 48 kHz mono
//! 16-bit PCM, `<name>.wav` in one folder.
//!
//! Contract: `scripts/prompts DIR` makes them (espeak-ng, then sox);
//! `scripts/setup` runs it for `.local/prompts` under the repo root.
//! [`Prompts::load`] reads all of them at start-up and refuses a missing
//! or malformed file with an error naming it, so a bad install fails when
//! the gateway starts, not when a caller dials in. [`Prompts::synthetic`]
//! gives tones of known length for tests. Clips are shared (`Arc`): cloning
//! [`Prompts`] per call costs nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::wav::{self, WavError};

/// The rate of every prompt: the room side's (`media::FRAME_48K` frames).
pub const SAMPLE_RATE: u32 = 48_000;

/// The longest prompt accepted, in seconds.
pub const MAX_SECONDS: usize = 60;

/// Where `scripts/setup` puts the prompts, relative to the repo root.
pub const DEFAULT_DIR: &str = ".local/prompts";

/// One of the IVR's sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// "Welcome. Please enter the meeting PIN, followed by the pound key."
    EnterPin,
    /// "That PIN was not recognised. Please try again."
    WrongPin,
    /// "Sorry, we could not find that meeting. Goodbye."
    Goodbye,
    /// "Thank you. Joining the meeting."
    Joining,
    /// "The meeting service is not available right now. Please try again later."
    Unavailable,
}

impl Prompt {
    pub const ALL: [Prompt; 5] = [
        Prompt::EnterPin,
        Prompt::WrongPin,
        Prompt::Goodbye,
        Prompt::Joining,
        Prompt::Unavailable,
    ];

    /// The file's name without `.wav`, as `scripts/prompts` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Prompt::EnterPin => "enter-pin",
            Prompt::WrongPin => "wrong-pin",
            Prompt::Goodbye => "goodbye",
            Prompt::Joining => "joining",
            Prompt::Unavailable => "unavailable",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why the prompts could not be loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt {path}: {source} (scripts/prompts makes the prompts)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prompt {path}: {source}; expected 48 kHz mono 16-bit PCM WAV")]
    Format { path: PathBuf, source: WavError },
}

/// Every prompt's samples at 48 kHz mono.
#[derive(Clone)]
pub struct Prompts {
    clips: [Arc<[i16]>; 5],
}

impl Prompts {
    /// Reads `<dir>/<name>.wav` for every [`Prompt`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Prompts, PromptError> {
        let dir = dir.as_ref();
        let mut clips: [Arc<[i16]>; 5] = Default::default();
        for prompt in Prompt::ALL {
            let path = dir.join(format!("{}.wav", prompt.name()));
            let bytes = std::fs::read(&path).map_err(|source| PromptError::Read {
                path: path.clone(),
                source,
            })?;
            let samples = decode(&bytes).map_err(|source| PromptError::Format { path, source })?;
            clips[prompt.index()] = samples.into();
        }
        Ok(Prompts { clips })
    }

    /// Tones instead of speech, for tests: each prompt a different pitch
    /// and length, none a whole number of 20 ms frames.
    pub fn synthetic() -> Prompts {
        let tone = |hz: f64, ms: usize| -> Arc<[i16]> {
            let n = ms * SAMPLE_RATE as usize / 1000 + 123;
            (0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(SAMPLE_RATE);
                    // Never zero, so a test tells a prompt from silence.
                    let s = (8000.0 * (std::f64::consts::TAU * hz * t).sin()) as i16;
                    if s == 0 {
                        1
                    } else {
                        s
                    }
                })
                .collect()
        };
        Prompts {
            clips: [
                tone(440.0, 300),
                tone(330.0, 200),
                tone(220.0, 160),
                tone(660.0, 100),
                tone(150.0, 240),
            ],
        }
    }

    /// The samples of `prompt`.
    pub fn samples(&self, prompt: Prompt) -> &[i16] {
        &self.clips[prompt.index()]
    }

    pub(crate) fn clip(&self, prompt: Prompt) -> Arc<[i16]> {
        self.clips[prompt.index()].clone()
    }

    /// How long `prompt` plays.
    pub fn duration(&self, prompt: Prompt) -> Duration {
        let n = self.samples(prompt).len() as u64;
        Duration::from_micros(n * 1_000_000 / u64::from(SAMPLE_RATE))
    }
}

impl fmt::Debug for Prompts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for p in Prompt::ALL {
            map.entry(&p.name(), &self.duration(p));
        }
        map.finish()
    }
}

/// A prompt's samples, checked to be 48 kHz mono, 1 ms to a minute long.
fn decode(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    let (format, samples) = wav::read_pcm16(bytes)?;
    if format.channels != 1 {
        return Err(WavError::Channels(format.channels));
    }
    if format.sample_rate != SAMPLE_RATE {
        return Err(WavError::Rate(format.sample_rate, SAMPLE_RATE));
    }
    let max = MAX_SECONDS * SAMPLE_RATE as usize;
    if samples.len() > max {
        return Err(WavError::TooLong(samples.len(), max));
    }
    if samples.len() < SAMPLE_RATE as usize / 1000 {
        return Err(WavError::Empty);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::wav::write_pcm16;

    /// A fresh folder under the system's temporary one.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gateway-prompts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_all(dir: &Path) {
        for (i, p) in Prompt::ALL.into_iter().enumerate() {
            let samples = vec![i as i16 + 1; 480 * (i + 1)];
            std::fs::write(
                dir.join(format!("{}.wav", p.name())),
                write_pcm16(1, 48_000, &samples),
            )
            .unwrap();
        }
    }

    #[test]
    fn a_folder_of_good_files_loads() {
        let dir = scratch("good");
        write_all(&dir);
        let prompts = Prompts::load(&dir).unwrap();
        for (i, p) in Prompt::ALL.into_iter().enumerate() {
            assert_eq!(
                prompts.samples(p),
                vec![i as i16 + 1; 480 * (i + 1)].as_slice()
            );
        }
        assert_eq!(
            prompts.duration(Prompt::EnterPin),
            Duration::from_millis(10)
        );
        assert!(format!("{prompts:?}").contains("\"goodbye\": 30ms"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_or_malformed_file_is_named() {
        let dir = scratch("bad");
        write_all(&dir);
        let path = dir.join("joining.wav");
        let cases: [(Vec<u8>, &str); 5] = [
            (
                write_pcm16(1, 22_050, &[1; 960]),
                "22050 Hz, expected 48000 Hz",
            ),
            (
                write_pcm16(2, 48_000, &[1; 960]),
                "2 channels, expected mono",
            ),
            (write_pcm16(1, 48_000, &[1; 10]), "no samples"),
            (b"RIFF".to_vec(), "not a RIFF/WAVE file"),
            (
                write_pcm16(1, 48_000, &vec![1; 60 * 48_000 + 1]),
                "more than 2880000",
            ),
        ];
        for (bytes, reason) in cases {
            std::fs::write(&path, bytes).unwrap();
            let e = Prompts::load(&dir).unwrap_err();
            assert!(matches!(e, PromptError::Format { .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(reason), "{text}");
        }
        std::fs::remove_file(&path).unwrap();
        let e = Prompts::load(&dir).unwrap_err();
        assert!(matches!(e, PromptError::Read { .. }), "{e}");
        assert!(e.to_string().contains("joining.wav"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The prompts `scripts/setup` made, when it has run (it has in CI:
    /// `scripts/test` runs it first).
    #[test]
    fn the_generated_prompts_load_when_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(DEFAULT_DIR);
        if !dir.join("enter-pin.wav").exists() {
            eprintln!("{} not generated: skipped", dir.display());
            return;
        }
        let prompts = Prompts::load(&dir).unwrap();
        for p in Prompt::ALL {
            let d = prompts.duration(p);
            assert!(
                d > Duration::from_millis(500) && d < Duration::from_secs(15),
                "{p:?} {d:?}"
            );
            let loud = prompts
                .samples(p)
                .iter()
                .filter(|s| s.unsigned_abs() > 1000)
                .count();
            assert!(loud > 1000, "{p:?} is speech, not silence");
        }
    }

    #[test]
    fn synthetic_prompts_differ_and_are_never_silent() {
        let prompts = Prompts::synthetic();
        let lengths: std::collections::HashSet<usize> = Prompt::ALL
            .iter()
            .map(|p| prompts.samples(*p).len())
            .collect();
        assert_eq!(lengths.len(), Prompt::ALL.len());
        for p in Prompt::ALL {
            let s = prompts.samples(p);
            assert!(s.iter().all(|x| *x != 0));
            assert_ne!(s.len() % crate::media::FRAME_48K, 0, "{p:?}");
        }
    }
}
