//! `lr_find`: train a few batches with an exponentially growing learning rate and watch the
//! loss, then put the weights back exactly as they were.
//!
//! As fastai 2.8: iteration `i` of `num_it` trains at `start * (end / start)^(i / num_it)` (1e-7
//! to 10 over 100 iterations by default, the same rate for every group), the loss is smoothed by
//! a debiased moving average (beta 0.98), and the search stops early once the smoothed loss
//! exceeds 4x the best seen.
//!
//! The suggestions are fastai 2.8's four functions (`valley`, `slide`, `minimum`, `steep` in
//! `fastai/callback/schedule.py`), computed as fastai computes them: on the recorded curve less
//! its first `num_it / 10` and last 5 points (cut at the first NaN loss), in single precision
//! (fastai turns the recorded rates and losses into float32 tensors). The default suggestion is
//! the valley, as in fastai 2.8.

use super::callback::{AnyLearner, Callback, NanGuard};
use super::fit::Show;
use super::Learner;
use crate::data::Data;
use crate::display::progress::{BarState, ProgressBar};
use crate::error::Result;

/// What `lr_find` measured and suggests.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFind {
    /// (learning rate, smoothed loss) per iteration, as recorded (the last one may be infinite or
    /// NaN: the loss diverging is what ends the search).
    pub points: Vec<(f64, f64)>,
    /// The iterations asked for (the first `num_it / 10` points are left out of the suggestions).
    pub num_it: usize,
    /// fastai's `steep`: the rate where the loss falls fastest.
    pub lr_steep: f64,
    /// fastai's `minimum`: the rate at the minimum loss, divided by 10.
    pub lr_min: f64,
    /// fastai 2.8's `valley`, its default suggestion.
    pub lr_valley: f64,
    /// fastai's `slide` (interval slide rule).
    pub lr_slide: f64,
    /// The learning-rate picker [`LrFind::plot`] shows under the plot (a log slider, at the
    /// suggestion until moved).
    picker: crate::widgets::FloatLogSlider,
}

impl LrFind {
    /// The part of the curve the suggestions are computed on (see [`suggestion_range`]).
    pub fn curve(&self) -> &[(f64, f64)] {
        suggestion_range(&self.points, self.num_it)
    }
    /// fastai 2.8's default suggestion: the valley.
    pub fn suggestion(&self) -> f64 {
        self.lr_valley
    }
    pub fn valley(&self) -> f64 {
        self.lr_valley
    }
    pub fn minimum(&self) -> f64 {
        self.lr_min
    }
    pub fn steep(&self) -> f64 {
        self.lr_steep
    }
    pub fn slide(&self) -> f64 {
        self.lr_slide
    }
    /// Shows the curve with the valley marked (as `recorder.plot()`) and, under the fastai
    /// kernel, a log slider under it to pick a learning rate, starting at the suggestion; a later
    /// cell reads the choice with [`LrFind::selected`]. Returns the suggestion.
    ///
    /// ```no_run
    /// # use fastai::vision::*;
    /// # fn main() -> fastai::Result<()> { let mut learn: Learner = todo!();
    /// let found = learn.lr_find()?;
    /// found.plot()?;
    /// // next cell, after moving the slider:
    /// learn.fit_one_cycle(4, Some(Lr::Single(found.selected())))?;
    /// # Ok(()) }
    /// ```
    pub fn plot(&self) -> Result<f64> {
        use crate::widgets::{Image, VBox, Widget};
        let recorder = super::recorder::Recorder {
            lr_find: self.points.clone(),
            lr_find_num_it: self.num_it,
            ..Default::default()
        };
        let (png, valley) = recorder.plot_png()?;
        if crate::widgets::live() {
            let image = Image::png(png);
            VBox::new(&[&image, &self.picker]).display();
        } else {
            crate::display::display(&crate::display::Rich::png(
                png,
                &format!("lr_find: loss against learning rate; suggestion (valley) {valley:.2e}"),
            ));
        }
        println!("Valley: {valley:.2E}");
        Ok(valley)
    }
    /// The learning rate picked on the slider under [`LrFind::plot`]; the suggestion (the
    /// valley) until it is moved, and where there is no slider (outside the fastai kernel).
    pub fn selected(&self) -> f64 {
        let v = self.picker.value();
        if v.is_finite() && v > 0.0 {
            v
        } else {
            self.suggestion()
        }
    }
    /// The slider itself (to read it, set it or react to it: `on_change`).
    pub fn picker(&self) -> &crate::widgets::FloatLogSlider {
        &self.picker
    }
    /// One method's suggestion with the point fastai marks for it on the plot.
    pub fn suggest(&self, method: SuggestionMethod) -> Option<Suggestion> {
        method.suggest(self.curve())
    }
}

/// A suggested learning rate and the (rate, loss) point fastai's plot marks for it (for
/// `minimum` that is the minimum itself, not the tenth of its rate that is suggested).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestion {
    pub lr: f64,
    pub mark: (f64, f64),
}

/// fastai's `SuggestionMethod`: the four ways to suggest a rate from the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestionMethod {
    Valley,
    Slide,
    Minimum,
    Steep,
}

impl SuggestionMethod {
    pub const ALL: [SuggestionMethod; 4] = [
        SuggestionMethod::Valley,
        SuggestionMethod::Slide,
        SuggestionMethod::Minimum,
        SuggestionMethod::Steep,
    ];

    /// fastai's name for it (`valley`, `slide`, `minimum`, `steep`).
    pub fn name(self) -> &'static str {
        match self {
            SuggestionMethod::Valley => "valley",
            SuggestionMethod::Slide => "slide",
            SuggestionMethod::Minimum => "minimum",
            SuggestionMethod::Steep => "steep",
        }
    }

    /// The suggestion on `curve`, the points fastai passes to its function (see
    /// [`suggestion_range`]); `None` where fastai's function would fail (too few points).
    pub fn suggest(self, curve: &[(f64, f64)]) -> Option<Suggestion> {
        let (lrs, losses): (Vec<f32>, Vec<f32>) =
            curve.iter().map(|&(lr, l)| (lr as f32, l as f32)).unzip();
        match self {
            SuggestionMethod::Valley => valley32(&lrs, &losses),
            SuggestionMethod::Slide => slide32(&lrs, &losses),
            SuggestionMethod::Minimum => minimum32(&lrs, &losses),
            SuggestionMethod::Steep => steep32(&lrs, &losses),
        }
    }
}

/// The points of a recorded curve that fastai 2.8's `lr_find` hands to the suggestion functions:
/// `lrs[num_it//10:-5]`, cut before the first NaN loss. fastai keeps training after a NaN until
/// `num_it` iterations (every later loss is NaN too), where this `lr_find` stops at once: a
/// record that ends with a NaN is treated as if it had gone on to `num_it` points.
pub fn suggestion_range(points: &[(f64, f64)], num_it: usize) -> &[(f64, f64)] {
    let lo = num_it / 10;
    let n = points.len();
    let (hi, nan) = match points.iter().position(|p| p.1.is_nan()) {
        // the record as fastai would have it: num_it points, NaN from `k` on
        Some(k) => (num_it.max(n).saturating_sub(5), k),
        None => (n.saturating_sub(5), n),
    };
    let hi = hi.min(n);
    if lo >= hi {
        return &[];
    }
    let end = hi.min(lo + nan.saturating_sub(lo));
    &points[lo..end.max(lo)]
}

/// fastai's `valley` on `curve` (already cut to the suggestion range): the longest valley - the
/// longest run over which the loss keeps decreasing (a longest decreasing subsequence) - and the
/// rate a bit past its middle (1/3 + 1/6 of the way along), exactly as fastai 2.8 indexes it.
pub fn valley(curve: &[(f64, f64)]) -> Option<f64> {
    SuggestionMethod::Valley.suggest(curve).map(|s| s.lr)
}

/// fastai's `minimum`: the rate at the lowest loss, divided by 10.
pub fn minimum(curve: &[(f64, f64)]) -> Option<f64> {
    SuggestionMethod::Minimum.suggest(curve).map(|s| s.lr)
}

/// fastai's `steep`: the rate at the start of the steepest falling segment (loss against log lr).
pub fn steep(curve: &[(f64, f64)]) -> Option<f64> {
    SuggestionMethod::Steep.suggest(curve).map(|s| s.lr)
}

/// fastai's `slide` (interval slide rule, `lr_diff` 15, `thresh` 0.005): walking left from the
/// end, the first rate where the loss gradient 15 points apart differs by at most 0.005.
pub fn slide(curve: &[(f64, f64)]) -> Option<f64> {
    SuggestionMethod::Slide.suggest(curve).map(|s| s.lr)
}

/// (steep, minimum) from a whole record of the default `lr_find()` (100 iterations): fastai's
/// `steep` and `minimum` on [`suggestion_range`]`(points, 100)`.
pub fn suggest(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let curve = suggestion_range(points, 100);
    Some((steep(curve)?, minimum(curve)?))
}

fn valley32(lrs: &[f32], losses: &[f32]) -> Option<Suggestion> {
    let n = losses.len();
    if n == 0 {
        return None;
    }
    // lds[i]: the longest decreasing subsequence ending at i. fastai updates the best end inside
    // the inner loop and takes its start as `end - length` at that moment: kept as is.
    let mut lds = vec![1usize; n];
    let (mut max_start, mut max_end) = (0i64, 0usize);
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as i64 - lds[max_end] as i64;
            }
        }
    }
    let sections = (max_end as i64 - max_start) as f64 / 3.0;
    let mut idx = max_start + sections.trunc() as i64 + (sections / 2.0).trunc() as i64;
    if idx < 0 {
        idx += n as i64; // Python's negative index
    }
    let idx = usize::try_from(idx).ok().filter(|&i| i < n)?;
    let lr = lrs[idx] as f64;
    Some(Suggestion {
        lr,
        mark: (lr, losses[idx] as f64),
    })
}

/// numpy's `gradient` with unit spacing, in float32 as numpy computes it on a float32 array.
fn gradient32(f: &[f32]) -> Vec<f32> {
    let n = f.len();
    let mut g = vec![0f32; n];
    if n < 2 {
        return g;
    }
    g[0] = f[1] - f[0];
    g[n - 1] = f[n - 1] - f[n - 2];
    for i in 1..n - 1 {
        g[i] = (f[i + 1] - f[i - 1]) / 2.0;
    }
    g
}

fn slide32(lrs: &[f32], losses: &[f32]) -> Option<Suggestion> {
    let (lr_diff, thresh, adjust_value) = (15usize, 0.005f32, 1.0f64);
    let n = losses.len();
    // fastai reads lrs[-1 - lr_diff] first: an IndexError below lr_diff + 1 points
    if n < 2 || n < lr_diff + 1 {
        return None;
    }
    let grad = gradient32(losses);
    // indices from the end, as fastai's negative ones: r = n - 1 - k, l = r - lr_diff
    let (mut r, mut l) = (n - 1, n - 1 - lr_diff);
    let mut local_min_lr = lrs[l];
    loop {
        if (grad[r] - grad[l]).abs() <= thresh {
            break;
        }
        local_min_lr = lrs[l];
        if l == 0 {
            break;
        }
        r -= 1;
        l -= 1;
    }
    let suggestion = local_min_lr as f64 * adjust_value;
    let log_lrs: Vec<f64> = lrs.iter().map(|&x| (x as f64).log10()).collect();
    let losses64: Vec<f64> = losses.iter().map(|&x| x as f64).collect();
    let y = interp(suggestion.log10(), &log_lrs, &losses64);
    Some(Suggestion {
        lr: suggestion,
        mark: (suggestion, y),
    })
}

/// numpy's `interp` (xs increasing; clamped to the end values outside).
fn interp(x: f64, xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len();
    if x <= xs[0] {
        return ys[0];
    }
    if x >= xs[n - 1] {
        return ys[n - 1];
    }
    let k = xs.partition_point(|&v| v <= x).max(1) - 1;
    if xs[k] == x {
        return ys[k];
    }
    let t = (x - xs[k]) / (xs[k + 1] - xs[k]);
    ys[k] + t * (ys[k + 1] - ys[k])
}

/// The first index of the smallest value (torch's `argmin`, NaN counting as the smallest).
fn argmin32(v: &[f32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &x) in v.iter().enumerate() {
        match best {
            None => best = Some(i),
            Some(b) => {
                let y = v[b];
                if !y.is_nan() && (x.is_nan() || x < y) {
                    best = Some(i);
                }
            }
        }
    }
    best
}

/// The loss at the recorded rate nearest `lr` (first on ties), as fastai marks it.
fn loss_near(lrs: &[f32], losses: &[f32], lr: f64) -> f64 {
    let mut best = 0;
    for i in 1..lrs.len() {
        if (lrs[i] as f64 - lr).abs() < (lrs[best] as f64 - lr).abs() {
            best = i;
        }
    }
    losses[best] as f64
}

fn minimum32(lrs: &[f32], losses: &[f32]) -> Option<Suggestion> {
    let i = argmin32(losses)?;
    let lr_min = lrs[i] as f64;
    Some(Suggestion {
        lr: lr_min / 10.0,
        mark: (lr_min, loss_near(lrs, losses, lr_min)),
    })
}

fn steep32(lrs: &[f32], losses: &[f32]) -> Option<Suggestion> {
    if losses.len() < 2 {
        return None;
    }
    let grads: Vec<f32> = (0..losses.len() - 1)
        .map(|i| (losses[i + 1] - losses[i]) / (lrs[i + 1].ln() - lrs[i].ln()))
        .collect();
    let lr_steep = lrs[argmin32(&grads)?] as f64;
    Some(Suggestion {
        lr: lr_steep,
        mark: (lr_steep, loss_near(lrs, losses, lr_steep)),
    })
}

struct Finder {
    start: f64,
    end: f64,
    n: usize,
    best: f64,
    points: Vec<(f64, f64)>,
    bar: Option<ProgressBar>,
}

impl Callback for Finder {
    fn order(&self) -> i32 {
        -20
    }
    fn before_fit(&mut self, _l: &mut AnyLearner) {
        self.bar = ProgressBar::live("lr_find", Some(self.n as u64));
    }
    fn before_batch(&mut self, l: &mut AnyLearner) {
        let s = &mut l.state;
        // fastai's SchedExp at pos = iter / num_it (the last iteration stops short of `end`)
        let lr = self.start * (self.end / self.start).powf(s.iter as f64 / self.n.max(1) as f64);
        s.lrs = vec![lr; s.lrs.len()];
    }
    fn after_batch(&mut self, l: &mut AnyLearner) {
        let s = &l.state;
        let (lr, loss, iter) = (s.lrs[0], s.smooth_loss, s.iter);
        self.points.push((lr, loss));
        if loss < self.best {
            self.best = loss;
        }
        if let Some(b) = self.bar.as_mut() {
            b.update(iter as u64, &format!("lr {lr:.2e}, loss {loss:.4}"));
        }
        if iter >= self.n || loss > 4.0 * self.best || !loss.is_finite() {
            l.stop("lr_find: done");
        }
    }
    fn after_fit(&mut self, l: &mut AnyLearner) {
        let failed = l.state.failure.is_some();
        if let Some(b) = self.bar.as_mut() {
            let state = if failed || crate::learner::interrupt::requested() {
                BarState::Interrupted
            } else {
                BarState::Done
            };
            b.finish(self.points.len() as u64, "", state);
        }
        // lr_find ending on its own is not something to report
        if l.state.failure.is_none() && l.state.stop_reason.as_deref() == Some("lr_find: done") {
            l.state.stop_reason = None;
        }
    }
}

impl<D: Data + 'static> Learner<D> {
    /// fastai's `lr_find()` with its defaults (1e-7 to 10, 100 iterations).
    pub fn lr_find(&mut self) -> Result<LrFind> {
        self.lr_find_with(1e-7, 10.0, 100)
    }

    /// `lr_find` over `start..end` in `num_it` iterations. The weights, BatchNorm statistics and
    /// optimizer state are restored afterwards; the curve is in `recorder.lr_find` and
    /// `recorder.plot()` draws it. It shows one bar, not the epoch table.
    pub fn lr_find_with(&mut self, start: f64, end: f64, num_it: usize) -> Result<LrFind> {
        let snapshot = self.snapshot();
        let epochs = num_it.div_ceil(self.data.n_train_batches().max(1));
        let mut finder = Finder {
            start,
            end,
            n: num_it,
            best: f64::INFINITY,
            points: Vec::new(),
            bar: None,
        };
        // the loss diverging is how lr_find ends, not a failure
        let guard = self.remove_cb::<NanGuard>();
        let result = self
            .as_dyn()
            .run_fit(epochs, &mut [&mut finder], Show::NoTable, false);
        if guard > 0 {
            self.add_cb(NanGuard);
        }
        self.restore(&snapshot);
        self.rebuild_optimizer()?;
        result?;
        let points = finder.points;
        self.recorder.lr_find = points.clone();
        self.recorder.lr_find_num_it = num_it;
        let curve = suggestion_range(&points, num_it);
        let lr = |m: SuggestionMethod| m.suggest(curve).map_or(f64::NAN, |s| s.lr);
        let valley = lr(SuggestionMethod::Valley);
        Ok(LrFind {
            lr_steep: lr(SuggestionMethod::Steep),
            lr_min: lr(SuggestionMethod::Minimum),
            lr_valley: valley,
            lr_slide: lr(SuggestionMethod::Slide),
            picker: picker(&points, valley),
            num_it,
            points,
        })
    }
}

/// A log slider over the rates the search went through (whole powers of ten), at `valley`.
fn picker(points: &[(f64, f64)], valley: f64) -> crate::widgets::FloatLogSlider {
    let finite = || {
        points
            .iter()
            .filter(|p| p.0 > 0.0 && p.1.is_finite())
            .map(|p| p.0.log10())
    };
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
    } else {
        (-7.0, 1.0)
    };
    let start = if valley.is_finite() && valley > 0.0 {
        valley
    } else {
        10f64.powf((lo + hi) / 2.0)
    };
    crate::widgets::FloatLogSlider::new(start, lo, hi, 0.05).description("lr")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lr(i: usize) -> f64 {
        1e-7 * 1e8f64.powf(i as f64 / 100.0)
    }

    #[test]
    fn the_range_is_fastais_slice_cut_at_the_first_nan() {
        let pts: Vec<(f64, f64)> = (0..100).map(|i| (lr(i), 1.0)).collect();
        let r = suggestion_range(&pts, 100);
        assert_eq!((r.len(), r[0].0), (85, lr(10)));
        // stopped by divergence at 40 points: [10, 35)
        assert_eq!(suggestion_range(&pts[..40], 100).len(), 25);
        // a NaN at 40 (fastai would have gone on to 100 points, all NaN from 40): [10, 40)
        let mut nan: Vec<(f64, f64)> = pts[..41].to_vec();
        nan[40].1 = f64::NAN;
        assert_eq!(suggestion_range(&nan, 100).len(), 30);
        assert!(suggestion_range(&pts[..14], 100).is_empty());
    }

    #[test]
    fn valley_takes_fastais_index_in_the_longest_decreasing_run() {
        // strictly decreasing over 10 points: lds[9] = 10, start = 9 - 10 = -1,
        // sections = 10/3, idx = -1 + 3 + 1 = 3
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (lr(i), 10.0 - i as f64)).collect();
        assert_eq!(valley(&pts), Some(lr(3) as f32 as f64));
        // a single point: fastai's idx 0
        assert_eq!(valley(&pts[..1]), Some(lr(0) as f32 as f64));
        assert_eq!(valley(&[]), None);
    }

    #[test]
    fn minimum_steep_and_slide_by_hand() {
        // losses 3, 2.5, 1, 0.9, 2 on rates 1e-4 .. 1: steepest segment starts at index 1,
        // minimum at index 3
        let pts: Vec<(f64, f64)> = [3.0, 2.5, 1.0, 0.9, 2.0]
            .iter()
            .enumerate()
            .map(|(i, &l)| (10f64.powi(i as i32 - 4), l))
            .collect();
        assert_eq!(steep(&pts), Some(1e-3f32 as f64));
        let m = SuggestionMethod::Minimum.suggest(&pts).unwrap();
        assert_eq!(
            (m.lr, m.mark),
            (0.1f32 as f64 / 10.0, (0.1f32 as f64, 0.9f32 as f64))
        );
        // slide needs 16 points
        assert_eq!(slide(&pts), None);
        // a straight line: every gradient equal, so the first comparison stops at lrs[-16]
        let line: Vec<(f64, f64)> = (0..30).map(|i| (lr(i), 1.0 - 0.01 * i as f64)).collect();
        assert_eq!(slide(&line), Some(lr(14) as f32 as f64));
    }
}
