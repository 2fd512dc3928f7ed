//! The Recorder: every batch's learning rate, momentum and loss, and every epoch's validation
//! results, kept on the learner for plotting (`recorder.plot_losses()`, `plot_lr()`, `plot()`).

use super::callback::{AnyLearner, Callback};

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
    /// The `num_it` of the last `lr_find` (0 when unknown: the default, 100, is assumed).
    pub lr_find_num_it: usize,
}

impl Recorder {
    /// Forgets everything (a new fit starts a new record, as in fastai).
    pub fn reset(&mut self) {
        *self = Recorder {
            lr_find: std::mem::take(&mut self.lr_find),
            lr_find_num_it: self.lr_find_num_it,
            ..Default::default()
        };
    }
}

/// Records into `learn.recorder`: every training batch's learning rate, momentum and loss, every
/// epoch's validation results. One of the standing callbacks.
#[derive(Debug, Default)]
pub struct RecorderCallback;

impl Callback for RecorderCallback {
    fn order(&self) -> i32 {
        50
    }
    fn before_fit(&mut self, l: &mut AnyLearner) {
        l.recorder.reset();
    }
    fn after_batch(&mut self, l: &mut AnyLearner) {
        let s = &l.state;
        if !s.training {
            return;
        }
        let (lr, mom, loss, smooth) = (
            *s.lrs.last().unwrap_or(&0.0),
            s.mom,
            s.batch_loss,
            s.smooth_loss,
        );
        let r = &mut l.recorder;
        r.lrs.push(lr);
        r.moms.push(mom);
        r.losses.push(loss);
        r.smooth_losses.push(smooth);
    }
    fn after_epoch(&mut self, l: &mut AnyLearner) {
        let (valid_loss, metrics) = (l.state.valid_loss, l.state.metrics.clone());
        let r = &mut l.recorder;
        r.epoch_iters.push(r.losses.len());
        r.valid_losses.push(valid_loss.unwrap_or(f64::NAN));
        r.metrics.push(metrics);
    }
}
