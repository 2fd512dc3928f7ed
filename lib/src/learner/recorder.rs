//! The Recorder: every batch's learning rate, momentum and loss, and every epoch's validation
//! results, kept on the learner for plotting (`recorder.plot_losses()`, `plot_lr()`, `plot()`).

use super::callback::{Callback, FitState};

#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Learning rate of the last group (the head), per iteration.
    pub lrs: Vec<f64>,
    pub moms: Vec<f64>,
    /// Raw and smoothed training loss per iteration.
    pub losses: Vec<f64>,
    pub smooth_losses: Vec<f64>,
    /// Per epoch: the iteration count at its end, validation loss, metric values.
    pub epoch_iters: Vec<usize>,
    pub valid_losses: Vec<f64>,
    pub metrics: Vec<Vec<(String, f64)>>,
    /// Results of the last `lr_find`: (lr, smoothed loss).
    pub lr_find: Vec<(f64, f64)>,
}

impl Recorder {
    /// Forgets everything (a new fit starts a new record, as in fastai).
    pub fn reset(&mut self) {
        *self = Recorder {
            lr_find: std::mem::take(&mut self.lr_find),
            ..Default::default()
        };
    }
}

impl Callback for Recorder {
    fn before_fit(&mut self, _s: &mut FitState) {
        self.reset();
    }
    fn after_batch(&mut self, s: &mut FitState) {
        self.lrs.push(*s.lrs.last().unwrap_or(&0.0));
        self.moms.push(s.mom);
        self.losses.push(s.loss);
        self.smooth_losses.push(s.smooth_loss);
    }
    fn after_epoch(&mut self, s: &mut FitState) {
        self.epoch_iters.push(self.losses.len());
        self.valid_losses.push(s.valid_loss.unwrap_or(f64::NAN));
        self.metrics.push(s.metrics.clone());
    }
}
