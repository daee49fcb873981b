//! Plays one prompt at a time in 20 ms frames, then silence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::prompts::{Prompt, SAMPLE_RATE};
use crate::media::FRAME_48K;

/// The prompt playing, if any, and when the caller heard the last one end.
pub(super) struct Player {
    playing: Option<Playing>,
    /// When the last prompt ended for the caller (its last sample heard, or
    /// the moment it was cut short).
    ended_at: Instant,
    frame: Vec<i16>,
}

struct Playing {
    prompt: Prompt,
    clip: Arc<[i16]>,
    at: usize,
}

impl Player {
    pub(super) fn new(now: Instant) -> Player {
        Player {
            playing: None,
            ended_at: now,
            frame: vec![0; FRAME_48K],
        }
    }

    /// Starts `clip` from its beginning, cutting off whatever played.
    pub(super) fn play(&mut self, prompt: Prompt, clip: Arc<[i16]>) {
        self.playing = Some(Playing {
            prompt,
            clip,
            at: 0,
        });
    }

    /// Cuts the prompt short: the next frame is silence.
    pub(super) fn stop(&mut self, now: Instant) {
        if self.playing.take().is_some() {
            self.ended_at = now;
        }
    }

    pub(super) fn playing(&self) -> Option<Prompt> {
        self.playing.as_ref().map(|p| p.prompt)
    }

    /// When the last prompt ended for the caller; `None` while one plays.
    pub(super) fn ended_at(&self) -> Option<Instant> {
        self.playing.is_none().then_some(self.ended_at)
    }

    /// Whether nothing plays and the caller has heard the end by `now`.
    pub(super) fn done(&self, now: Instant) -> bool {
        self.ended_at().is_some_and(|end| now >= end)
    }

    /// The 20 ms starting at `now`: the prompt's next samples (the last
    /// frame padded with silence), or silence.
    pub(super) fn next_frame(&mut self, now: Instant) -> &[i16] {
        let Some(p) = &mut self.playing else {
            self.frame.fill(0);
            return &self.frame;
        };
        let rest = p.clip.get(p.at..).unwrap_or_default();
        let n = rest.len().min(FRAME_48K);
        self.frame[..n].copy_from_slice(&rest[..n]);
        self.frame[n..].fill(0);
        p.at += n;
        if p.at >= p.clip.len() {
            let heard = Duration::from_micros(n as u64 * 1_000_000 / u64::from(SAMPLE_RATE));
            self.ended_at = now + heard;
            self.playing = None;
        }
        &self.frame
    }
}
