//! What a simulcast video source offers (RFC 8853 simulcast, signalled by
//! Jitsi as an `ssrc-group semantics="SIM"` plus one `FID` group per layer for
//! RTX, RFC 4588).
//!
//! Contract of [`SourceLayers`]:
//! - Layers are the encodings, index 0 (lowest) upward, each with its SSRC and
//!   optional RTX SSRC.
//! - The caller feeds [`SourceLayers::on_packet`] with the size of each media
//!   packet it receives (not retransmissions, so the rate is what forwarding
//!   the layer costs). The bitrate is the bytes of the last window (1 s by
//!   default, in 10 buckets) over the time they span, which is shorter while a
//!   layer has just started or resumed (never less than one bucket).
//! - A layer is active while its last packet is younger than `inactive_after`
//!   (1 s by default); an inactive layer reports 0 bps.
//! - Heights come from hints: 180/360/720 for three layers, the top ones of that
//!   list for fewer (one layer: 720), or [`SourceLayers::set_height`].
//! - Unknown layer indices are ignored (reads answer 0/false); no allocation per
//!   packet; time is an argument.

use std::time::{Duration, Instant};

use super::Ssrc;

/// Default heights of a three-layer simulcast (Jitsi's 720p capture, scaled by
/// 4, 2 and 1).
pub const DEFAULT_HEIGHTS: [u32; 3] = [180, 360, 720];
/// Buckets per window.
const BUCKETS: usize = 10;

/// Measurement settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSettings {
    /// The sliding window of the bitrate measurement.
    pub window: Duration,
    /// A layer without packets for this long is inactive.
    pub inactive_after: Duration,
}

impl Default for LayerSettings {
    fn default() -> Self {
        LayerSettings {
            window: Duration::from_secs(1),
            inactive_after: Duration::from_secs(1),
        }
    }
}

/// One layer as the allocator sees it at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOffer {
    /// Encoding index (0 = lowest).
    pub index: usize,
    pub height: u32,
    pub bitrate_bps: u64,
    pub active: bool,
}

#[derive(Debug, Clone)]
struct Layer {
    ssrc: Ssrc,
    rtx_ssrc: Option<Ssrc>,
    height: u32,
    /// `(absolute bucket index, bytes)`; a slot is valid for its index only.
    buckets: [(u64, u64); BUCKETS],
    /// When the current run of packets started (reset after a pause).
    since: Option<Instant>,
    last_seen: Option<Instant>,
}

/// The layers of one simulcast (or single-layer) video source.
#[derive(Debug, Clone)]
pub struct SourceLayers {
    layers: Vec<Layer>,
    settings: LayerSettings,
    bucket: Duration,
    epoch: Option<Instant>,
}

impl SourceLayers {
    /// Layers from `(ssrc, rtx_ssrc)` per encoding, lowest first, with the
    /// default settings and height hints.
    pub fn new(ssrcs: &[(Ssrc, Option<Ssrc>)]) -> Self {
        Self::with_settings(ssrcs, LayerSettings::default())
    }

    pub fn with_settings(ssrcs: &[(Ssrc, Option<Ssrc>)], settings: LayerSettings) -> Self {
        let n = ssrcs.len();
        let layers = ssrcs
            .iter()
            .enumerate()
            .map(|(i, &(ssrc, rtx_ssrc))| Layer {
                ssrc,
                rtx_ssrc,
                height: default_height(i, n),
                buckets: [(u64::MAX, 0); BUCKETS],
                since: None,
                last_seen: None,
            })
            .collect();
        let bucket = (settings.window / BUCKETS as u32).max(Duration::from_millis(1));
        SourceLayers {
            layers,
            settings,
            bucket,
            epoch: None,
        }
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layer carrying `ssrc` (its media or RTX SSRC), and whether it is the RTX one.
    pub fn layer_of(&self, ssrc: Ssrc) -> Option<(usize, bool)> {
        self.layers.iter().enumerate().find_map(|(i, l)| {
            if l.ssrc == ssrc {
                Some((i, false))
            } else if l.rtx_ssrc == Some(ssrc) {
                Some((i, true))
            } else {
                None
            }
        })
    }

    pub fn ssrc(&self, layer: usize) -> Option<Ssrc> {
        self.layers.get(layer).map(|l| l.ssrc)
    }

    pub fn rtx_ssrc(&self, layer: usize) -> Option<Ssrc> {
        self.layers.get(layer).and_then(|l| l.rtx_ssrc)
    }

    pub fn height(&self, layer: usize) -> u32 {
        self.layers.get(layer).map_or(0, |l| l.height)
    }

    /// Overrides a height hint (e.g. from the sender's signalling or the
    /// decoded frame size).
    pub fn set_height(&mut self, layer: usize, height: u32) {
        if let Some(l) = self.layers.get_mut(layer) {
            l.height = height;
        }
    }

    /// Counts one media packet of `bytes` on `layer`.
    pub fn on_packet(&mut self, layer: usize, bytes: usize, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        let idx = bucket_index(epoch, self.bucket, now);
        let window = self.settings.window;
        let Some(l) = self.layers.get_mut(layer) else {
            return;
        };
        let resumed = l
            .last_seen
            .is_none_or(|t| now.saturating_duration_since(t) > window);
        if resumed {
            l.since = Some(now);
        }
        l.last_seen = Some(now);
        let slot = &mut l.buckets[(idx % BUCKETS as u64) as usize];
        if slot.0 != idx {
            *slot = (idx, 0);
        }
        slot.1 = slot.1.saturating_add(bytes as u64);
    }

    /// Whether `layer` had a packet within `inactive_after` of `now`.
    pub fn is_active(&self, layer: usize, now: Instant) -> bool {
        self.layers
            .get(layer)
            .and_then(|l| l.last_seen)
            .is_some_and(|t| now.saturating_duration_since(t) < self.settings.inactive_after)
    }

    /// The measured bitrate of `layer` (0 when inactive or unknown).
    pub fn bitrate_bps(&self, layer: usize, now: Instant) -> u64 {
        let (Some(l), Some(epoch)) = (self.layers.get(layer), self.epoch) else {
            return 0;
        };
        if !self.is_active(layer, now) {
            return 0;
        }
        let since_epoch = now.saturating_duration_since(epoch).as_nanos();
        let bucket = self.bucket.as_nanos().max(1);
        let idx = (since_epoch / bucket) as u64;
        let oldest = idx.saturating_sub(BUCKETS as u64 - 1);
        let bytes: u64 = l
            .buckets
            .iter()
            .filter(|(i, _)| (oldest..=idx).contains(i))
            .map(|(_, b)| b)
            .sum();
        // The time the counted buckets span: the full older buckets plus the
        // elapsed part of the current one, shortened to the current run.
        let spanned = bucket * u128::from(idx - oldest) + since_epoch % bucket;
        let run = l
            .since
            .map_or(spanned, |s| now.saturating_duration_since(s).as_nanos());
        let span = spanned.min(run).max(bucket);
        (u128::from(bytes) * 8 * 1_000_000_000 / span) as u64
    }

    /// Every layer as the allocator sees it at `now`.
    pub fn offer(&self, now: Instant) -> Vec<LayerOffer> {
        (0..self.layers.len())
            .map(|i| LayerOffer {
                index: i,
                height: self.height(i),
                bitrate_bps: self.bitrate_bps(i, now),
                active: self.is_active(i, now),
            })
            .collect()
    }
}

fn bucket_index(epoch: Instant, bucket: Duration, now: Instant) -> u64 {
    let since = now.saturating_duration_since(epoch).as_nanos();
    (since / bucket.as_nanos().max(1)) as u64
}

/// The hint for layer `i` of `n`: the top `n` entries of [`DEFAULT_HEIGHTS`],
/// doubling beyond the list.
fn default_height(i: usize, n: usize) -> u32 {
    let top = DEFAULT_HEIGHTS.len();
    let from_top = n - 1 - i;
    if from_top < top {
        DEFAULT_HEIGHTS[top - 1 - from_top]
    } else {
        // More layers than hints: halve below 180 (never below 1).
        let below = from_top - (top - 1);
        (DEFAULT_HEIGHTS[0] >> below.min(31)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> SourceLayers {
        SourceLayers::new(&[
            (Ssrc(1), Some(Ssrc(11))),
            (Ssrc(2), Some(Ssrc(12))),
            (Ssrc(3), None),
        ])
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn height_hints() {
        let table: [(usize, &[u32]); 5] = [
            (0, &[]),
            (1, &[720]),
            (2, &[360, 720]),
            (3, &[180, 360, 720]),
            (5, &[45, 90, 180, 360, 720]),
        ];
        for (n, want) in table {
            let ssrcs: Vec<_> = (0..n as u32).map(|i| (Ssrc(i), None)).collect();
            let l = SourceLayers::new(&ssrcs);
            let got: Vec<u32> = (0..n).map(|i| l.height(i)).collect();
            assert_eq!(got, want, "{n} layers");
        }
        let mut l = three();
        l.set_height(1, 540);
        l.set_height(9, 1);
        assert_eq!((l.height(1), l.height(9)), (540, 0));
    }

    #[test]
    fn ssrc_lookup() {
        let l = three();
        let table = [
            (1, Some((0, false))),
            (11, Some((0, true))),
            (12, Some((1, true))),
            (3, Some((2, false))),
            (4, None),
        ];
        for (ssrc, want) in table {
            assert_eq!(l.layer_of(Ssrc(ssrc)), want, "ssrc {ssrc}");
        }
        assert_eq!(
            (l.ssrc(2), l.rtx_ssrc(2), l.ssrc(3)),
            (Some(Ssrc(3)), None, None)
        );
    }

    #[test]
    fn bitrate_over_the_window() {
        let t0 = Instant::now();
        let mut l = three();
        // Layer 1: 1000 bytes every 10 ms = 800 kbps, for 3 s.
        for i in 0..300 {
            l.on_packet(1, 1000, ms(t0, i * 10));
        }
        // (time since start, expected kbps, tolerance %)
        let table = [(2995, 800, 3), (3000, 800, 3)];
        for (at, kbps, tol) in table {
            let got = l.bitrate_bps(1, ms(t0, at)) / 1000;
            assert!(
                got.abs_diff(kbps) * 100 <= kbps * tol,
                "at {at} ms: {got} kbps, want {kbps}"
            );
        }
        assert_eq!(l.bitrate_bps(0, ms(t0, 3000)), 0);
        assert_eq!(l.bitrate_bps(7, ms(t0, 3000)), 0);
    }

    #[test]
    fn bitrate_while_starting_and_after_stopping() {
        let t0 = Instant::now();
        let mut l = three();
        // Layer 0 runs from 0 to 200 ms at 100 bytes / 10 ms = 80 kbps.
        for i in 0..=20 {
            l.on_packet(0, 100, ms(t0, i * 10));
        }
        let got = l.bitrate_bps(0, ms(t0, 200));
        assert!((76_000..=90_000).contains(&got), "started: {got}");
        assert!(l.is_active(0, ms(t0, 1199)));
        assert!(!l.is_active(0, ms(t0, 1200)));
        assert_eq!(l.bitrate_bps(0, ms(t0, 1200)), 0);
        // Resumes 5 s later: measured over the new run only.
        for i in 0..=30 {
            l.on_packet(0, 200, ms(t0, 5000 + i * 10));
        }
        let got = l.bitrate_bps(0, ms(t0, 5300));
        assert!((150_000..=175_000).contains(&got), "resumed: {got}");
    }

    #[test]
    fn offer_lists_every_layer() {
        let t0 = Instant::now();
        let mut l = three();
        for i in 0..100 {
            l.on_packet(0, 250, ms(t0, i * 10));
            l.on_packet(2, 2500, ms(t0, i * 10));
        }
        l.on_packet(9, 1000, ms(t0, 990));
        let offer = l.offer(ms(t0, 1000));
        let got: Vec<(usize, u32, bool)> = offer
            .iter()
            .map(|o| (o.index, o.height, o.active))
            .collect();
        assert_eq!(got, vec![(0, 180, true), (1, 360, false), (2, 720, true)]);
        assert!(offer[0].bitrate_bps.abs_diff(200_000) < 10_000, "{offer:?}");
        assert!(
            offer[2].bitrate_bps.abs_diff(2_000_000) < 100_000,
            "{offer:?}"
        );
        assert_eq!(offer[1].bitrate_bps, 0);
    }
}
