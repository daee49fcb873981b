//! Tile layout: where each participant's video goes on the output canvas.
//!
//! Pure arithmetic, no GStreamer: [`tiles`] maps the participants (in the order
//! they joined) to rectangles. Every rectangle keeps the canvas' aspect ratio,
//! has even sizes (I420 needs them), lies inside the canvas and overlaps no
//! other. Participants that do not fit get `None` (hidden).

/// How the participants are arranged; chosen per recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// The active speaker large, everyone else in a strip of thumbnails below.
    #[default]
    Speaker,
    /// Equal tiles, up to 3x3; beyond nine, the first nine in order are shown.
    Grid,
}

/// A rectangle on the canvas, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

impl Rect {
    /// The centre point, handy for sampling a tile's colour.
    pub fn centre(&self) -> (i32, i32) {
        (self.x + self.width / 2, self.y + self.height / 2)
    }

    /// True when the two rectangles share any pixel.
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.width
            && other.x < self.x + self.width
            && self.y < other.y + other.height
            && other.y < self.y + self.height
    }
}

/// Most tiles a grid shows (3x3).
pub const MAX_GRID: usize = 9;

/// One entry per id, in the same order: where it goes, or `None` when hidden.
///
/// `speaker` only matters for [`Layout::Speaker`]; when it is `None` or not
/// among `ids`, the first id is shown large.
pub fn tiles<S: AsRef<str>>(
    layout: Layout,
    width: u32,
    height: u32,
    ids: &[S],
    speaker: Option<&str>,
) -> Vec<Option<Rect>> {
    let (w, h) = (clamp(width), clamp(height));
    match ids.len() {
        0 => Vec::new(),
        1 => vec![Some(Rect {
            x: 0,
            y: 0,
            width: even(w),
            height: even(h),
        })],
        _ => match layout {
            Layout::Grid => grid(w, h, ids.len()),
            Layout::Speaker => {
                let main = speaker
                    .and_then(|s| ids.iter().position(|id| id.as_ref() == s))
                    .unwrap_or(0);
                speaker_strip(w, h, ids.len(), main)
            }
        },
    }
}

fn clamp(v: u32) -> i32 {
    // Canvas sizes are validated elsewhere; this only keeps the maths in range.
    v.clamp(16, 8192) as i32
}

fn even(v: i32) -> i32 {
    v & !1
}

/// Gap between tiles: 8 px at 720p, 12 px at 1080p.
fn gap(w: i32) -> i32 {
    even((w / 160).max(2))
}

/// The largest `w:h` rectangle that fits in `bw` x `bh`, even sized.
fn fit(w: i32, h: i32, bw: i32, bh: i32) -> (i32, i32) {
    let (w64, h64, bw64, bh64) = (w as i64, h as i64, bw as i64, bh as i64);
    if bw64 * h64 <= bh64 * w64 {
        (even(bw), even((bw64 * h64 / w64) as i32))
    } else {
        (even((bh64 * w64 / h64) as i32), even(bh))
    }
}

fn grid(w: i32, h: i32, count: usize) -> Vec<Option<Rect>> {
    let n = count.min(MAX_GRID);
    let cols = (1..=3).find(|c| c * c >= n).unwrap_or(3);
    let rows = n.div_ceil(cols);
    let (cell_w, cell_h) = (w / cols as i32, h / rows as i32);
    let g = gap(w);
    let (tw, th) = fit(w, h, cell_w - g, cell_h - g);
    let mut out = Vec::with_capacity(count);
    for i in 0..n {
        let (row, col) = (i / cols, i % cols);
        let in_row = if row + 1 == rows {
            n - row * cols
        } else {
            cols
        };
        // A short last row is centred.
        let row_x = (w - in_row as i32 * cell_w) / 2;
        out.push(Some(Rect {
            x: even(row_x + col as i32 * cell_w + (cell_w - tw) / 2),
            y: even(row as i32 * cell_h + (cell_h - th) / 2),
            width: tw,
            height: th,
        }));
    }
    out.resize(count, None);
    out
}

fn speaker_strip(w: i32, h: i32, count: usize, main: usize) -> Vec<Option<Rect>> {
    let g = gap(w);
    let strip_h = even(h / 5);
    let (mw, mh) = fit(w, h, w - 2 * g, h - strip_h - g);
    let mut out = vec![None; count];
    out[main] = Some(Rect {
        x: even((w - mw) / 2),
        y: g,
        width: mw,
        height: mh,
    });
    let (tw, th) = fit(w, h, w, strip_h - g);
    let capacity = ((w - g) / (tw + g)).max(1) as usize;
    let shown = (count - 1).min(capacity) as i32;
    let total = shown * tw + (shown - 1) * g;
    let x0 = (w - total) / 2;
    let y = even(h - strip_h + (strip_h - th) / 2);
    let others = (0..count).filter(|&i| i != main).take(capacity);
    for (k, i) in others.enumerate() {
        out[i] = Some(Rect {
            x: even(x0 + k as i32 * (tw + g)),
            y,
            width: tw,
            height: th,
        });
    }
    out
}

/// Checks the invariants every layout keeps; used by the tests.
#[cfg(test)]
pub(crate) fn check(rects: &[Option<Rect>], w: i32, h: i32) -> Result<(), String> {
    let shown: Vec<&Rect> = rects.iter().flatten().collect();
    for (i, r) in shown.iter().enumerate() {
        if r.x < 0 || r.y < 0 || r.x + r.width > w || r.y + r.height > h {
            return Err(format!("{r:?} outside {w}x{h}"));
        }
        if r.width % 2 != 0 || r.height % 2 != 0 || r.width < 16 || r.height < 16 {
            return Err(format!("{r:?} odd or tiny"));
        }
        // Aspect within 2 % of the canvas.
        let skew = (r.width as f64 / r.height as f64) / (w as f64 / h as f64);
        if !(0.98..=1.02).contains(&skew) {
            return Err(format!("{r:?} aspect off by {skew}"));
        }
        if let Some(o) = shown[i + 1..].iter().find(|o| r.overlaps(o)) {
            return Err(format!("{r:?} overlaps {o:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p{i}")).collect()
    }

    #[test]
    fn empty_gives_nothing() {
        assert!(tiles::<&str>(Layout::Grid, 1280, 720, &[], None).is_empty());
        assert!(tiles::<&str>(Layout::Speaker, 1280, 720, &[], Some("x")).is_empty());
    }

    #[test]
    fn one_participant_fills_the_canvas() {
        for layout in [Layout::Grid, Layout::Speaker] {
            let r = tiles(layout, 1280, 720, &["a"], None);
            assert_eq!(
                r,
                vec![Some(Rect {
                    x: 0,
                    y: 0,
                    width: 1280,
                    height: 720
                })]
            );
        }
    }

    #[test]
    fn grid_shapes_by_count() {
        // (count, columns, rows)
        let table = [
            (2, 2, 1),
            (3, 2, 2),
            (4, 2, 2),
            (5, 3, 2),
            (6, 3, 2),
            (7, 3, 3),
            (9, 3, 3),
        ];
        for (n, cols, rows) in table {
            let r = tiles(Layout::Grid, 1280, 720, &ids(n), None);
            check(&r, 1280, 720).unwrap();
            let ys: std::collections::BTreeSet<i32> = r.iter().flatten().map(|t| t.y).collect();
            assert_eq!(ys.len(), rows, "rows for {n}");
            let first_row = r
                .iter()
                .flatten()
                .filter(|t| t.y == r[0].unwrap().y)
                .count();
            assert_eq!(first_row, cols, "columns for {n}");
        }
    }

    #[test]
    fn grid_two_side_by_side() {
        let r = tiles(Layout::Grid, 1280, 720, &["a", "b"], None);
        let (a, b) = (r[0].unwrap(), r[1].unwrap());
        assert!(a.x + a.width <= b.x, "{a:?} left of {b:?}");
        assert_eq!(a.y, b.y);
        assert_eq!(a.width, 632);
        assert!(a.centre().0 < 640 && b.centre().0 > 640);
    }

    #[test]
    fn grid_short_last_row_is_centred() {
        let r = tiles(Layout::Grid, 1280, 720, &ids(3), None);
        let last = r[2].unwrap();
        assert!((last.centre().0 - 640).abs() <= 2, "{last:?}");
    }

    #[test]
    fn grid_beyond_nine_shows_the_first_nine() {
        let r = tiles(Layout::Grid, 1920, 1080, &ids(12), None);
        assert_eq!(r.len(), 12);
        assert!(r[..9].iter().all(Option::is_some));
        assert!(r[9..].iter().all(Option::is_none));
        check(&r, 1920, 1080).unwrap();
    }

    #[test]
    fn speaker_is_large_and_others_in_a_strip() {
        let r = tiles(Layout::Speaker, 1280, 720, &ids(4), Some("p2"));
        check(&r, 1280, 720).unwrap();
        let main = r[2].unwrap();
        assert!(main.width >= 1000, "{main:?}");
        for i in [0, 1, 3] {
            let t = r[i].unwrap();
            assert!(t.width < main.width / 3);
            assert!(t.y >= main.y + main.height, "thumb {t:?} below {main:?}");
        }
        // Thumbnails keep the join order left to right.
        assert!(r[0].unwrap().x < r[1].unwrap().x && r[1].unwrap().x < r[3].unwrap().x);
    }

    #[test]
    fn unknown_or_no_speaker_means_the_first() {
        for speaker in [None, Some("nobody")] {
            let r = tiles(Layout::Speaker, 1280, 720, &ids(3), speaker);
            assert!(r[0].unwrap().width > r[1].unwrap().width);
        }
    }

    #[test]
    fn speaker_strip_overflow_is_hidden() {
        let r = tiles(Layout::Speaker, 1280, 720, &ids(12), Some("p0"));
        check(&r, 1280, 720).unwrap();
        let shown = r.iter().flatten().count();
        assert_eq!(shown, 1 + 5);
        assert!(r[6..].iter().all(Option::is_none));
    }

    #[test]
    fn odd_and_tiny_canvases_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (17, 9), (641, 481), (u32::MAX, u32::MAX)] {
            for layout in [Layout::Grid, Layout::Speaker] {
                for n in 0..11 {
                    let r = tiles(layout, w, h, &ids(n), Some("p1"));
                    assert_eq!(r.len(), n);
                }
            }
        }
        check(&tiles(Layout::Grid, 1920, 1080, &ids(5), None), 1920, 1080).unwrap();
    }
}
