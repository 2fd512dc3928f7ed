//! `lr_find`: train a few batches with an exponentially growing learning rate and watch the
//! loss, then put the weights back exactly as they were.
//!
//! As fastai: from 1e-7 to 10 over 100 iterations (same rate for every group), the loss smoothed
//! by a debiased moving average (beta 0.98), stopping early once it exceeds 4x the best seen.
//! Three suggestions, as fastai gives them: the steepest descent of the smoothed loss (v1's
//! "min numerical gradient"; first 10 and last 5 points skipped, as the plot does), the minimum's
//! rate / 10, and v2's "valley" - a point a bit past the middle of the longest stretch over
//! which the loss keeps falling, which is the most robust of the three on noisy curves.

use super::callback::{AnyLearner, Callback, NanGuard};
use super::fit::Show;
use super::Learner;
use crate::data::Data;
use crate::display::progress::{BarState, ProgressBar};
use crate::error::Result;

/// What `lr_find` measured and suggests.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFind {
    /// (learning rate, smoothed loss) per iteration.
    pub points: Vec<(f64, f64)>,
    /// Learning rate at the steepest descent of the loss.
    pub lr_steep: f64,
    /// The rate at the minimum loss, divided by 10.
    pub lr_min: f64,
    /// fastai v2's "valley" suggestion (the one to use when unsure).
    pub lr_valley: f64,
}

/// The valley suggestion: find the longest run of points along which the loss only goes down
/// (not necessarily consecutive points: a longest decreasing subsequence, O(n^2) for n <= a few
/// hundred), then take the point half-way along it.
pub fn valley(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    // run[i]: length of the longest decreasing subsequence ending at i; from[i]: where it starts
    let mut run = vec![1usize; n];
    let mut from: Vec<usize> = (0..n).collect();
    let mut best = 0;
    for i in 1..n {
        for j in 0..i {
            if points[i].1 < points[j].1 && run[j] + 1 > run[i] {
                run[i] = run[j] + 1;
                from[i] = from[j];
            }
        }
        if run[i] > run[best] {
            best = i;
        }
    }
    let (start, end) = (from[best], best);
    let idx = start + (end - start) / 2;
    Some(points[idx].0)
}

/// The two suggestions from the recorded points (needs at least 3 points).
pub fn suggest(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let (lo, hi) = (10usize, 5usize);
    let used: &[(f64, f64)] = if points.len() > lo + hi + 2 {
        &points[lo..points.len() - hi]
    } else {
        points
    };
    if used.len() < 3 {
        return None;
    }
    // gradient of loss with respect to log(lr), by central differences
    let mut best = (f64::INFINITY, used[0].0);
    for w in used.windows(3) {
        let g = (w[2].1 - w[0].1) / (w[2].0.ln() - w[0].0.ln());
        if g < best.0 {
            best = (g, w[1].0);
        }
    }
    let min =
        used.iter().copied().fold(
            (f64::NAN, f64::INFINITY),
            |acc, p| if p.1 < acc.1 { p } else { acc },
        );
    Some((best.1, min.0 / 10.0))
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
        let lr =
            self.start * (self.end / self.start).powf(s.iter as f64 / (self.n - 1).max(1) as f64);
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
        let points: Vec<(f64, f64)> = finder
            .points
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        self.recorder.lr_find = points.clone();
        let (lr_steep, lr_min) = suggest(&points).unwrap_or((f64::NAN, f64::NAN));
        let lr_valley = valley(&points).unwrap_or(f64::NAN);
        Ok(LrFind {
            points,
            lr_steep,
            lr_min,
            lr_valley,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_is_the_steepest_descent() {
        // loss flat, then falling fastest around lr = 1e-3, then exploding
        let points: Vec<(f64, f64)> = (0..100)
            .map(|i| {
                let lr = 1e-7 * 1e8f64.powf(i as f64 / 99.0);
                let x = lr.log10() + 3.0; // 0 at 1e-3
                (
                    lr,
                    2.0 - (x * 1.5).tanh() + if lr > 1e-1 { (lr * 10.0).powi(2) } else { 0.0 },
                )
            })
            .collect();
        let v = valley(&points).unwrap();
        assert!(v > 1e-5 && v < 1e-1, "valley at {v:e}");
        let (steep, min10) = suggest(&points).unwrap();
        assert!((steep.log10() + 3.0).abs() < 0.2, "steepest at {steep:e}");
        assert!(min10 < 1e-1 && min10 > 1e-4, "min/10 = {min10:e}");
    }
}
