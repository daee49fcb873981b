//! Dynamic branches: a chain of elements inside the mixer's bin that ends on a
//! request pad of the compositor or audiomixer, optionally fed from a pad of
//! the caller's through a ghost pad. Added and released while PLAYING.
//!
//! Release order (what keeps the caller's streaming thread safe):
//! 1. a probe on the ghost pad drops everything the caller still pushes, and
//!    taking the ghost pad's stream lock waits out a push already in flight
//!    (the branch starts with a leaky queue, so that push rarely blocks; the
//!    wait is bounded all the same);
//! 2. the branch elements go to NULL, are unlinked and removed;
//! 3. the mixer's request pad is released (the compositor reflows);
//! 4. the ghost pad stays, swallowing data, until the caller unlinks its pad.

use gstreamer as gst;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use super::MixerError;

/// Creates an element, telling which plugin is missing when it cannot.
pub(crate) fn make(factory: &str) -> Result<gst::Element, MixerError> {
    if gst::ElementFactory::find(factory).is_none() {
        return Err(MixerError::MissingElement(factory.to_owned()));
    }
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| MixerError::MissingElement(factory.to_owned()))
}

pub(crate) fn has(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

/// Sets a numeric property whatever its integer or float type; a missing
/// property (another plugin version, a hardware encoder) is skipped and logged.
pub(crate) fn set_num(obj: &impl IsA<glib::Object>, name: &str, v: f64) {
    let Some(pspec) = obj.find_property(name) else {
        tracing::debug!(property = name, "property not present; skipped");
        return;
    };
    let t = pspec.value_type();
    let value = if t == glib::Type::U32 {
        (v as u32).to_value()
    } else if t == glib::Type::I32 {
        (v as i32).to_value()
    } else if t == glib::Type::U64 {
        (v as u64).to_value()
    } else if t == glib::Type::I64 {
        (v as i64).to_value()
    } else if t == glib::Type::F64 {
        v.to_value()
    } else if t == glib::Type::F32 {
        (v as f32).to_value()
    } else {
        tracing::debug!(property = name, "property is not numeric; skipped");
        return;
    };
    obj.set_property(name, value);
}

/// Sets a property from its string form (enums, flags, booleans, strings,
/// caps); a missing property or a value it refuses is skipped and logged.
pub(crate) fn set_str(obj: &impl IsA<glib::Object>, name: &str, v: &str) {
    let Some(pspec) = obj.find_property(name) else {
        tracing::debug!(property = name, "property not present; skipped");
        return;
    };
    if pspec.value_type() == glib::Type::STRING {
        obj.set_property(name, v);
        return;
    }
    match glib::Value::deserialize_with_pspec(v, &pspec) {
        Ok(value) => obj.set_property(name, value),
        Err(_) => tracing::warn!(property = name, value = v, "value refused; skipped"),
    }
}

pub(crate) fn set_bool(obj: &impl IsA<glib::Object>, name: &str, v: bool) {
    match obj.find_property(name) {
        Some(p) if p.value_type() == glib::Type::BOOL => obj.set_property(name, v),
        _ => tracing::debug!(property = name, "boolean property not present; skipped"),
    }
}

pub(crate) fn set_caps(capsfilter: &gst::Element, caps: &gst::Caps) {
    capsfilter.set_property("caps", caps);
}

/// Drops buffers on `pad` that do not move time forward (no PTS, or a PTS
/// not after the previous one).
///
/// GStreamer 1.22's live aggregators can emit their first output twice with
/// PTS 0 when the first input arrives just after the first timeout; x264enc
/// then emits two frames with one timestamp and mp4mux fails ("Buffer has no
/// PTS"). One duplicated frame at startup is all this ever drops.
pub(crate) fn monotonic(pad: &gst::Pad) {
    let last = AtomicU64::new(u64::MAX);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            tracing::debug!(pad = %pad.name(), "buffer without PTS dropped");
            return gst::PadProbeReturn::Handled;
        };
        let pts = pts.nseconds();
        let prev = last.load(Ordering::Relaxed);
        if prev != u64::MAX && pts <= prev {
            tracing::debug!(pad = %pad.name(), pts, prev, "repeated timestamp dropped");
            return gst::PadProbeReturn::Handled;
        }
        last.store(pts, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
}

/// Adds elements to the bin and links them in order.
pub(crate) fn add_chain(bin: &gst::Bin, chain: &[&gst::Element]) -> Result<(), MixerError> {
    bin.add_many(chain.iter().copied())
        .map_err(|e| MixerError::Internal(format!("adding elements: {e}")))?;
    gst::Element::link_many(chain.iter().copied())
        .map_err(|e| MixerError::Internal(format!("linking elements: {e}")))
}

/// A chain of elements ending on a request pad of `mixer`.
#[derive(Debug)]
pub(crate) struct Branch {
    elements: Vec<gst::Element>,
    mixer: gst::Element,
    /// The request pad on the compositor or audiomixer (layout properties).
    pub(crate) mixer_pad: gst::Pad,
    ghost: Option<gst::GhostPad>,
}

static GHOSTS: AtomicU32 = AtomicU32::new(0);

/// How long `release` waits for a push of the caller's to leave the branch.
const IDLE_WAIT: Duration = Duration::from_millis(200);

impl Branch {
    /// Builds the branch inside `bin` and starts it. With `upstream`, the
    /// caller's pad is linked to the first element through a new ghost pad.
    pub(crate) fn start(
        bin: &gst::Bin,
        elements: Vec<gst::Element>,
        mixer: &gst::Element,
        upstream: Option<&gst::Pad>,
        configure: impl FnOnce(&gst::Pad),
    ) -> Result<Branch, MixerError> {
        let refs: Vec<&gst::Element> = elements.iter().collect();
        if let Err(e) = add_chain(bin, &refs) {
            let _ = bin.remove_many(refs.iter().copied());
            return Err(e);
        }
        let mixer_pad = match mixer.request_pad_simple("sink_%u") {
            Some(p) => p,
            None => {
                Self::drop_elements(bin, &elements);
                return Err(MixerError::Internal("no request pad on mixer".into()));
            }
        };
        configure(&mixer_pad);
        let mut branch = Branch {
            elements,
            mixer: mixer.clone(),
            mixer_pad,
            ghost: None,
        };
        let linked = branch
            .last_src()
            .and_then(|src| src.link(&branch.mixer_pad).ok());
        if linked.is_none() {
            branch.release(bin);
            return Err(MixerError::Internal("linking branch to mixer".into()));
        }
        // Downstream first, so nothing pushes into a stopped element.
        let failed = branch
            .elements
            .iter()
            .rev()
            .find(|e| e.sync_state_with_parent().is_err())
            .map(|e| e.name());
        if let Some(name) = failed {
            branch.release(bin);
            return Err(MixerError::Internal(format!("starting {name}")));
        }
        if let Some(upstream) = upstream {
            if let Err(e) = branch.attach(bin, upstream) {
                branch.release(bin);
                return Err(e);
            }
        }
        Ok(branch)
    }

    fn last_src(&self) -> Option<gst::Pad> {
        self.elements.last()?.static_pad("src")
    }

    fn attach(&mut self, bin: &gst::Bin, upstream: &gst::Pad) -> Result<(), MixerError> {
        if upstream.direction() != gst::PadDirection::Src {
            return Err(MixerError::Link("the pad given is not a source pad".into()));
        }
        if upstream.is_linked() {
            return Err(MixerError::Link(format!(
                "{} is already linked",
                upstream.name()
            )));
        }
        let first = self.elements.first().and_then(|e| e.static_pad("sink"));
        let first = first.ok_or_else(|| MixerError::Internal("branch has no sink".into()))?;
        let name = format!("in_{}", GHOSTS.fetch_add(1, Ordering::Relaxed));
        let ghost = gst::GhostPad::builder_with_target(&first)
            .map_err(|e| MixerError::Internal(format!("ghost pad: {e}")))?
            .name(name.as_str())
            .build();
        let _ = ghost.set_active(true);
        bin.add_pad(&ghost)
            .map_err(|e| MixerError::Internal(format!("adding ghost pad: {e}")))?;
        self.ghost = Some(ghost.clone());
        upstream
            .link(&ghost)
            .map_err(|e| MixerError::Link(format!("{}: {e:?}", upstream.name())))?;
        Ok(())
    }

    /// Stops taking data from the caller: from now on its pushes are
    /// consumed and answered OK.
    pub(crate) fn seal(&self) {
        if let Some(ghost) = &self.ghost {
            // `Handled` consumes the data and answers OK. (`Drop` would do the
            // same, but with gstreamer-rs on GStreamer 1.22 it makes the core
            // unref a NULL pointer: a CRITICAL per buffer.)
            ghost.add_probe(gst::PadProbeType::DATA_DOWNSTREAM, |_, _| {
                gst::PadProbeReturn::Handled
            });
        }
    }

    /// Waits (a bounded time) until no push of the caller's is in flight
    /// through the ghost pad, so stopping the branch cannot answer it FLUSHING.
    fn wait_idle(&self) {
        let Some(ghost) = &self.ghost else { return };
        let pad: &gst::Pad = ghost.upcast_ref();
        let deadline = Instant::now() + IDLE_WAIT;
        loop {
            // SAFETY: `pad` is alive for the whole call; this is what
            // GST_PAD_STREAM_TRYLOCK / GST_PAD_STREAM_UNLOCK do, and the lock
            // is released right after it is taken.
            let taken = unsafe {
                let lock = &raw mut (*pad.as_ptr()).stream_rec_lock;
                let taken = glib::ffi::g_rec_mutex_trylock(lock) != glib::ffi::GFALSE;
                if taken {
                    glib::ffi::g_rec_mutex_unlock(lock);
                }
                taken
            };
            if taken || Instant::now() >= deadline {
                if !taken {
                    tracing::warn!(pad = %pad.name(), "input still busy; releasing anyway");
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Takes the branch out of the running pipeline; see the module docs.
    pub(crate) fn release(self, bin: &gst::Bin) {
        self.seal();
        self.wait_idle();
        Self::drop_elements(bin, &self.elements);
        self.mixer.release_request_pad(&self.mixer_pad);
        if let Some(ghost) = self.ghost {
            let _ = ghost.set_target(None::<&gst::Pad>);
            // The caller's pad may stay linked to a pad that swallows data;
            // the ghost goes once the caller unlinks it (or now, if it has).
            let weak = bin.downgrade();
            ghost.connect_unlinked(move |pad, _| {
                if let Some(bin) = weak.upgrade() {
                    let pad = pad.clone();
                    bin.call_async(move |bin| {
                        let _ = bin.remove_pad(&pad);
                    });
                }
            });
            if !ghost.is_linked() {
                let _ = bin.remove_pad(&ghost);
            }
        }
    }

    fn drop_elements(bin: &gst::Bin, elements: &[gst::Element]) {
        for e in elements {
            let _ = e.set_state(gst::State::Null);
        }
        for pair in elements.windows(2) {
            pair[0].unlink(&pair[1]);
        }
        if let Some(last) = elements.last() {
            if let Some(src) = last.static_pad("src") {
                if let Some(peer) = src.peer() {
                    let _ = src.unlink(&peer);
                }
            }
        }
        let _ = bin.remove_many(elements);
    }
}
