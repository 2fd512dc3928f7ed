//! Learning-rate and momentum schedules: fastai v1's one-cycle policy.
//!
//! Over `n` iterations, the learning rate rises from `max_lr / div_factor` to `max_lr` along a
//! half cosine during the first `pct_start` of them, then falls along a half cosine to
//! `max_lr / (div_factor * 1e4)`. Momentum (Adam's beta1) moves the other way: 0.95 -> 0.85 -> 0.95.

use std::f64::consts::PI;

use super::callback::{AnyLearner, Callback};

/// Cosine interpolation from `start` (pct 0) to `end` (pct 1).
pub fn annealing_cos(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
}

/// fastai v1's one-cycle schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct OneCycle {
    /// Peak learning rate per parameter group.
    pub max_lrs: Vec<f64>,
    pub n_iter: usize,
    pub pct_start: f64,
    pub div_factor: f64,
    pub final_div: f64,
    pub moms: (f64, f64),
}

impl OneCycle {
    /// fastai's defaults: pct_start 0.3, div_factor 25, final_div 25e4, moms (0.95, 0.85).
    pub fn new(max_lrs: Vec<f64>, n_iter: usize) -> OneCycle {
        OneCycle {
            max_lrs,
            n_iter,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div: 25.0 * 1e4,
            moms: (0.95, 0.85),
        }
    }

    /// Learning rates (per group) and momentum at iteration `i` (0-based).
    pub fn at(&self, i: usize) -> (Vec<f64>, f64) {
        let n = self.n_iter.max(1) as f64;
        let up = (n * self.pct_start).floor().max(1.0);
        let i = i as f64;
        let (moms0, moms1) = self.moms;
        if i < up {
            let pct = i / up;
            (
                self.max_lrs
                    .iter()
                    .map(|&m| annealing_cos(m / self.div_factor, m, pct))
                    .collect(),
                annealing_cos(moms0, moms1, pct),
            )
        } else {
            let pct = ((i - up) / (n - up).max(1.0)).min(1.0);
            (
                self.max_lrs
                    .iter()
                    .map(|&m| annealing_cos(m, m / self.final_div, pct))
                    .collect(),
                annealing_cos(moms1, moms0, pct),
            )
        }
    }
}

/// Sets the learning rates and momentum of [`OneCycle`] before every training batch.
#[derive(Debug, Clone)]
pub struct OneCycleSchedule(pub OneCycle);

impl Callback for OneCycleSchedule {
    fn order(&self) -> i32 {
        -20
    }
    fn before_batch(&mut self, l: &mut AnyLearner) {
        if l.state.training {
            (l.state.lrs, l.state.mom) = self.0.at(l.state.iter);
        }
    }
}

/// The same learning rates and momentum for every batch (`fit`).
#[derive(Debug, Clone)]
pub struct ConstantLr {
    pub lrs: Vec<f64>,
    pub mom: f64,
}

impl Callback for ConstantLr {
    fn order(&self) -> i32 {
        -20
    }
    fn before_batch(&mut self, l: &mut AnyLearner) {
        if l.state.training {
            l.state.lrs.clone_from(&self.lrs);
            l.state.mom = self.mom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_matches_the_formula() {
        let s = OneCycle::new(vec![1e-3, 1e-2], 100);
        let (lr, mom) = s.at(0);
        assert!((lr[1] - 1e-2 / 25.0).abs() < 1e-12 && (mom - 0.95).abs() < 1e-12);
        let (lr, mom) = s.at(30); // the peak: 30% of 100
        assert!(
            (lr[0] - 1e-3).abs() < 1e-12
                && (lr[1] - 1e-2).abs() < 1e-12
                && (mom - 0.85).abs() < 1e-12
        );
        let (lr, _) = s.at(15); // halfway up: mean of start and peak
        assert!((lr[1] - (1e-2 / 25.0 + 1e-2) / 2.0).abs() < 1e-12);
        let (lr, mom) = s.at(65); // halfway down
        let end = 1e-2 / 25e4;
        assert!((lr[1] - (1e-2 + end) / 2.0).abs() < 1e-12 && (mom - 0.9).abs() < 1e-12);
        let (lr, mom) = s.at(100);
        assert!((lr[1] - end).abs() < 1e-15 && (mom - 0.95).abs() < 1e-12);
    }
}
