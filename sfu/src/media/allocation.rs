//! Bandwidth allocation for one receiver: which video sources it gets, and at
//! which simulcast layer. A simpler cousin of jitsi-videobridge's
//! `BandwidthAllocator` (`doc/allocation.md`), driven by the bridge channel's
//! `ReceiverVideoConstraints` (see `proto::bridge_channel`).
//!
//! Contract of [`allocate`] (a pure function; run it when the constraints, the
//! speaker order, the layers' activity or the bandwidth estimate change):
//! 1. **Order.** On-stage sources (in the receiver's order), then selected ones,
//!    then the rest in the given speaker order (most recent dominant first).
//!    Names the receiver lists that are not offered are ignored.
//! 2. **Candidates.** A source's candidate layers are its active layers no
//!    higher than its `maxHeight` (per source, else the default); negative means
//!    no limit; 0 disables the source. If every active layer is too high, the
//!    lowest active one is the only candidate (the constraint is soft, as in the
//!    bridge: a non-simulcast sender is still seen).
//! 3. **lastN.** Only the first `lastN` sources *that have a candidate* are
//!    eligible (negative: all). A source without an active layer, or disabled by
//!    its constraint, does not take a slot. Sources cut by lastN get an effective
//!    `max_height` of 0 (for `SenderSourceConstraints`).
//! 4. **Budget.** Every eligible source, in order, gets its lowest candidate if
//!    it fits in the estimate; the first on-stage source gets it even when it does
//!    not (the only way the estimate is exceeded). Then on-stage sources are
//!    raised, each straight to the best candidate that fits; then the others are
//!    raised one layer at a time, round-robin in order, while anything fits.
//!    Simulcast layers are independent streams: a layer costs its own bitrate.
//!
//! [`ReceiverConstraints`] keeps one receiver's state: initially lastN -1 and
//! default maxHeight 180; applying a message updates only the fields present.

use std::collections::BTreeMap;

use proto::bridge_channel::{ForwardedSources, ReceiverVideoConstraints};

use super::layers::LayerOffer;
use super::SourceName;

/// The bridge's initial default `maxHeight` (thumbnails).
pub const DEFAULT_MAX_HEIGHT: i32 = 180;

/// One receiver's video constraints, as set over the bridge channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConstraints {
    last_n: i32,
    selected: Vec<SourceName>,
    on_stage: Vec<SourceName>,
    default_max_height: i32,
    per_source: BTreeMap<SourceName, i32>,
    assumed_bandwidth_bps: Option<u64>,
}

impl Default for ReceiverConstraints {
    fn default() -> Self {
        ReceiverConstraints {
            last_n: -1,
            selected: Vec::new(),
            on_stage: Vec::new(),
            default_max_height: DEFAULT_MAX_HEIGHT,
            per_source: BTreeMap::new(),
            assumed_bandwidth_bps: None,
        }
    }
}

impl ReceiverConstraints {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a `ReceiverVideoConstraints` message: only the fields present
    /// change. `constraints` replaces the whole per-source map; an entry (or a
    /// `defaultConstraints`) without `maxHeight` sets nothing, so the default
    /// applies to that source. A negative `assumedBandwidthBps` clears it.
    /// Returns whether anything changed.
    pub fn apply(&mut self, msg: &ReceiverVideoConstraints) -> bool {
        let mut changed = false;
        if let Some(n) = msg.last_n {
            changed |= replace(&mut self.last_n, n);
        }
        if let Some(list) = &msg.selected_sources {
            changed |= replace(&mut self.selected, names(list));
        }
        if let Some(list) = &msg.on_stage_sources {
            changed |= replace(&mut self.on_stage, names(list));
        }
        if let Some(h) = msg.default_constraints.as_ref().and_then(|c| c.max_height) {
            changed |= replace(&mut self.default_max_height, h);
        }
        if let Some(map) = &msg.constraints {
            let per_source = map
                .iter()
                .filter_map(|(name, c)| Some((SourceName::from(name.as_str()), c.max_height?)))
                .collect();
            changed |= replace(&mut self.per_source, per_source);
        }
        if let Some(bps) = msg.assumed_bandwidth_bps {
            changed |= replace(&mut self.assumed_bandwidth_bps, u64::try_from(bps).ok());
        }
        changed
    }

    /// The legacy `LastNChangedEvent`. Returns whether it changed.
    pub fn set_last_n(&mut self, last_n: i32) -> bool {
        replace(&mut self.last_n, last_n)
    }

    pub fn last_n(&self) -> i32 {
        self.last_n
    }

    pub fn selected(&self) -> &[SourceName] {
        &self.selected
    }

    pub fn on_stage(&self) -> &[SourceName] {
        &self.on_stage
    }

    pub fn default_max_height(&self) -> i32 {
        self.default_max_height
    }

    /// The receiver's `maxHeight` for a source (its own, else the default).
    pub fn max_height(&self, source: &str) -> i32 {
        self.per_source
            .get(source)
            .copied()
            .unwrap_or(self.default_max_height)
    }

    /// The bandwidth the receiver asked the bridge to assume (a testing knob;
    /// [`allocate`] ignores it, the caller decides whether to honour it).
    pub fn assumed_bandwidth_bps(&self) -> Option<u64> {
        self.assumed_bandwidth_bps
    }
}

fn replace<T: PartialEq>(slot: &mut T, value: T) -> bool {
    if *slot == value {
        false
    } else {
        *slot = value;
        true
    }
}

fn names(list: &[String]) -> Vec<SourceName> {
    list.iter().map(|s| SourceName::from(s.as_str())).collect()
}

/// A video source another endpoint sends, as offered to one receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOffer {
    pub name: SourceName,
    pub layers: Vec<LayerOffer>,
}

/// The decision for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAllocation {
    pub name: SourceName,
    /// The chosen layer's encoding index; `None`: not forwarded.
    pub layer: Option<usize>,
    /// The effective constraint: the receiver's `maxHeight`, or 0 when the
    /// source is disabled or outside lastN.
    pub max_height: i32,
    /// The chosen layer's bitrate (0 when not forwarded).
    pub bitrate_bps: u64,
}

/// The result of [`allocate`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allocation {
    /// Every offered source, in priority order.
    pub sources: Vec<SourceAllocation>,
    /// The forwarded source names, in priority order.
    pub forwarded: Vec<SourceName>,
    /// The sum of the chosen layers' bitrates.
    pub total_bps: u64,
    /// The total exceeds the estimate (only for the on-stage source's lowest layer).
    pub oversending: bool,
}

impl Allocation {
    /// The layer chosen for a source, if it is forwarded.
    pub fn layer(&self, source: &str) -> Option<usize> {
        self.sources
            .iter()
            .find(|s| s.name.as_str() == source)
            .and_then(|s| s.layer)
    }

    /// The `ForwardedSources` bridge-channel message for this allocation.
    pub fn forwarded_sources(&self) -> ForwardedSources {
        ForwardedSources {
            forwarded_sources: self.forwarded.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// Working state for one source during [`allocate`].
struct Slot {
    source: usize,
    on_stage: bool,
    max_height: i32,
    /// Candidate layers, lowest first.
    candidates: Vec<LayerOffer>,
    /// Index into `candidates`.
    chosen: Option<usize>,
}

impl Slot {
    fn cost(&self, candidate: usize) -> i64 {
        let now = self.chosen.map_or(0, |c| self.candidates[c].bitrate_bps);
        bps(self.candidates[candidate].bitrate_bps) - bps(now)
    }

    /// Moves to the first (`best == false`) or last (`best == true`) higher
    /// candidate that fits in `remaining`; returns whether it moved.
    fn raise(&mut self, remaining: &mut i64, best: bool) -> bool {
        let Some(cur) = self.chosen else {
            return false;
        };
        let higher = cur + 1..self.candidates.len();
        let pick = if best {
            higher.rev().find(|&j| self.cost(j) <= *remaining)
        } else {
            higher.clone().find(|&j| self.cost(j) <= *remaining)
        };
        let Some(j) = pick else {
            return false;
        };
        *remaining -= self.cost(j);
        self.chosen = Some(j);
        true
    }
}

fn bps(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Allocates `bwe_bps` among `sources` (in speaker order, most recent dominant
/// speaker first, the receiver's own sources excluded) under `constraints`.
pub fn allocate(
    constraints: &ReceiverConstraints,
    sources: &[SourceOffer],
    bwe_bps: u64,
) -> Allocation {
    // 1. Order: on stage, selected, then speaker order.
    let mut order: Vec<usize> = Vec::with_capacity(sources.len());
    for name in constraints.on_stage.iter().chain(&constraints.selected) {
        if let Some(i) = sources.iter().position(|s| &s.name == name) {
            if !order.contains(&i) {
                order.push(i);
            }
        }
    }
    for i in 0..sources.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }

    // 2–3. Candidates, lastN.
    let mut in_last_n = 0usize;
    let mut slots: Vec<Slot> = order
        .into_iter()
        .map(|i| {
            let s = &sources[i];
            let mut max_height = constraints.max_height(s.name.as_str());
            let mut candidates = candidate_layers(&s.layers, max_height);
            if !candidates.is_empty() {
                let full = usize::try_from(constraints.last_n).is_ok_and(|n| in_last_n >= n);
                if full {
                    max_height = 0;
                    candidates.clear();
                } else {
                    in_last_n += 1;
                }
            }
            Slot {
                source: i,
                on_stage: constraints.on_stage.contains(&s.name),
                max_height,
                candidates,
                chosen: None,
            }
        })
        .collect();

    // 4. Lowest layers, then on stage, then the rest step by step.
    let mut remaining = bps(bwe_bps);
    let first_on_stage = slots
        .iter()
        .position(|s| s.on_stage && !s.candidates.is_empty());
    for (k, slot) in slots.iter_mut().enumerate() {
        if slot.candidates.is_empty() {
            continue;
        }
        let cost = slot.cost(0);
        if cost <= remaining || Some(k) == first_on_stage {
            slot.chosen = Some(0);
            remaining -= cost;
        }
    }
    for slot in slots.iter_mut().filter(|s| s.on_stage) {
        slot.raise(&mut remaining, true);
    }
    loop {
        let mut raised = false;
        for slot in slots.iter_mut().filter(|s| !s.on_stage) {
            raised |= slot.raise(&mut remaining, false);
        }
        if !raised {
            break;
        }
    }

    let mut out = Allocation::default();
    for slot in slots {
        let chosen = slot.chosen.map(|c| slot.candidates[c]);
        let name = sources[slot.source].name.clone();
        if chosen.is_some() {
            out.forwarded.push(name.clone());
        }
        let bitrate_bps = chosen.map_or(0, |l| l.bitrate_bps);
        out.total_bps = out.total_bps.saturating_add(bitrate_bps);
        out.sources.push(SourceAllocation {
            name,
            layer: chosen.map(|l| l.index),
            max_height: slot.max_height,
            bitrate_bps,
        });
    }
    out.oversending = out.total_bps > bwe_bps;
    out
}

/// Active layers within `max_height`, lowest first (see the module docs).
fn candidate_layers(layers: &[LayerOffer], max_height: i32) -> Vec<LayerOffer> {
    if max_height == 0 {
        return Vec::new();
    }
    let mut active: Vec<LayerOffer> = layers.iter().filter(|l| l.active).copied().collect();
    active.sort_by_key(|l| (l.height, l.index));
    if let Ok(max) = u32::try_from(max_height) {
        let fitting = active.iter().take_while(|l| l.height <= max).count();
        active.truncate(fitting.max(1));
    }
    active
}

#[cfg(test)]
#[path = "tests/allocation.rs"]
mod tests;
