//! Callbacks: everything around the training loop - schedules, recording, the progress display,
//! the stop button, the NaN guard, mixed precision, gradient clipping and accumulation - plugs
//! into the loop's events, as in fastai v2.
//!
//! A callback gets the learner itself (`&mut Learner<dyn Data>`): the model, the optimizer's
//! parameters, and in [`FitState`] (`learn.state`) the batch (`xb`, `yb`), the predictions
//! (`pred`), the loss tensor (`loss`, before `backward`), the learning rates about to be used
//! and the counters. It can change any of them, and steer the loop with
//! [`Learner::cancel_step`], [`Learner::cancel_batch`], [`Learner::cancel_validate`],
//! [`Learner::stop`] and [`Learner::fail`].
//!
//! One training batch fires: `before_batch`, (forward) `after_pred`, (loss) `after_loss`,
//! `before_backward`, (backward) `before_step`, (step) `after_step`, `after_batch`. A validation
//! batch (`learn.state.training` false, no gradients) fires `before_batch`, `after_pred`,
//! `after_loss`, `after_batch`. Around them: `before_fit`, `before_epoch`, `before_train`,
//! `after_train`, `before_validate`, `after_validate`, `after_epoch`, and `after_fit` - which runs
//! on every way out of `fit`, errors and panics included.
//!
//! ```no_run
//! use fastai::vision::*;
//! struct PrintEveryTen;
//! impl Callback for PrintEveryTen {
//!     fn after_batch(&mut self, learn: &mut Learner<dyn Data>) {
//!         if learn.state.training && learn.state.iter % 10 == 0 {
//!             println!("iter {}: loss {:.4}", learn.state.iter, learn.state.batch_loss);
//!         }
//!     }
//! }
//! # fn main() -> fastai::Result<()> { let mut learn: Learner = todo!();
//! learn.add_cb(PrintEveryTen);
//! # Ok(()) }
//! ```

use std::any::Any;

use tch::{Kind, Tensor};

use super::interrupt;
use super::Learner;
use crate::data::Data;

/// The learner as callbacks see it.
pub type AnyLearner = Learner<dyn Data>;

/// Hooks around the loop; every method has an empty default. Callbacks run in [`order`]
/// (lower first; equal orders keep the order they were added in).
///
/// [`order`]: Callback::order
#[allow(unused_variables)]
pub trait Callback: Any {
    /// Position among the callbacks of an event: schedules -20, mixed precision 10, gradient
    /// clipping 20, accumulation 30, the recorder 50, the progress display 60, the stop button
    /// 70, the NaN guard 80; yours 0 unless you say otherwise.
    fn order(&self) -> i32 {
        0
    }
    fn before_fit(&mut self, learn: &mut AnyLearner) {}
    fn before_epoch(&mut self, learn: &mut AnyLearner) {}
    fn before_train(&mut self, learn: &mut AnyLearner) {}
    /// The batch is in `state.xb` / `state.yb`; a schedule sets `state.lrs` / `state.mom` here.
    fn before_batch(&mut self, learn: &mut AnyLearner) {}
    /// The model's output is in `state.pred`.
    fn after_pred(&mut self, learn: &mut AnyLearner) {}
    /// The loss is in `state.loss` (and its value in `state.batch_loss`).
    fn after_loss(&mut self, learn: &mut AnyLearner) {}
    /// About to call `state.loss.backward()` (a callback may replace `state.loss`).
    fn before_backward(&mut self, learn: &mut AnyLearner) {}
    /// Gradients are computed (`param.grad()`); the optimizer step comes next.
    fn before_step(&mut self, learn: &mut AnyLearner) {}
    fn after_step(&mut self, learn: &mut AnyLearner) {}
    /// After every batch, also a cancelled one; `state.iter` counts training batches done.
    fn after_batch(&mut self, learn: &mut AnyLearner) {}
    fn after_train(&mut self, learn: &mut AnyLearner) {}
    fn before_validate(&mut self, learn: &mut AnyLearner) {}
    /// `state.valid_loss` and `state.metrics` hold the results.
    fn after_validate(&mut self, learn: &mut AnyLearner) {}
    fn after_epoch(&mut self, learn: &mut AnyLearner) {}
    /// Always runs, however the fit ends; `state.stop_reason` says why it ended early.
    fn after_fit(&mut self, learn: &mut AnyLearner) {}
}

/// What the loop knows, shared with every callback (`learn.state`).
#[derive(Debug)]
pub struct FitState {
    pub epoch: usize,
    pub n_epochs: usize,
    /// Training batches done in this fit (all epochs), and the total planned.
    pub iter: usize,
    pub n_iter: usize,
    /// Batch within the epoch, and batches per epoch.
    pub batch: usize,
    pub n_batches: usize,
    /// Training (gradients, optimizer steps) or validating.
    pub training: bool,
    /// Learning rate per layer group and momentum (Adam's beta1) for the next step.
    pub lrs: Vec<f64>,
    pub mom: f64,
    /// The batch, the model's output and the loss tensor of the batch being processed.
    pub xb: Tensor,
    pub yb: Tensor,
    pub pred: Tensor,
    pub loss: Tensor,
    /// The loss's value, and its debiased moving average over training batches (beta 0.98).
    pub batch_loss: f64,
    pub smooth_loss: f64,
    /// Set after each epoch's validation.
    pub valid_loss: Option<f64>,
    pub metrics: Vec<(String, f64)>,
    /// Why the fit ended early, if it did (set by `stop`, `fail`, an error or an interrupt).
    pub stop_reason: Option<String>,
    pub(crate) cancel: Cancel,
    pub(crate) failure: Option<String>,
    pub(crate) smoother: SmoothLoss,
    /// The gradients belong to a step already taken: clear them before the next `backward`.
    pub(crate) grads_stale: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Cancel {
    pub step: bool,
    pub batch: bool,
    pub validate: bool,
    pub fit: bool,
}

impl FitState {
    pub(crate) fn new(n_groups: usize, mom: f64) -> FitState {
        FitState {
            epoch: 0,
            n_epochs: 0,
            iter: 0,
            n_iter: 0,
            batch: 0,
            n_batches: 0,
            training: false,
            lrs: vec![1e-3; n_groups],
            mom,
            xb: Tensor::new(),
            yb: Tensor::new(),
            pred: Tensor::new(),
            loss: Tensor::new(),
            batch_loss: f64::NAN,
            smooth_loss: f64::NAN,
            valid_loss: None,
            metrics: Vec::new(),
            stop_reason: None,
            cancel: Cancel::default(),
            failure: None,
            smoother: SmoothLoss::default(),
            grads_stale: true,
        }
    }

    /// Whether the fit is ending (stopped, failed or interrupted).
    pub fn stopping(&self) -> bool {
        self.cancel.fit
    }

    /// Number of items in the current batch.
    pub fn bs(&self) -> i64 {
        if self.yb.defined() {
            self.yb.size().first().copied().unwrap_or(0)
        } else {
            0
        }
    }
}

impl<D: Data + ?Sized> Learner<D> {
    /// From a callback: no optimizer step for this batch (the gradients are cleared as usual).
    pub fn cancel_step(&mut self) {
        self.state.cancel.step = true;
    }

    /// From a callback: skip the rest of this batch - from `before_batch` the whole batch; from
    /// `before_step` the step *and* the clearing of the gradients (they keep adding up: how
    /// gradient accumulation works). `after_batch` still runs.
    pub fn cancel_batch(&mut self) {
        self.state.cancel.batch = true;
    }

    /// From a callback: no validation at the end of this epoch.
    pub fn cancel_validate(&mut self) {
        self.state.cancel.validate = true;
    }

    /// From a callback: end the fit after this batch, saying why (shown under the table). The
    /// weights stay as they are and `fit` returns `Ok`.
    pub fn stop(&mut self, reason: impl Into<String>) {
        self.state.cancel.fit = true;
        if self.state.stop_reason.is_none() {
            self.state.stop_reason = Some(reason.into());
        }
    }

    /// From a callback: end the fit now with an error (`fit` returns `Err(reason)`).
    pub fn fail(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        self.state.cancel.fit = true;
        self.state.stop_reason = Some(reason.clone());
        if self.state.failure.is_none() {
            self.state.failure = Some(reason);
        }
    }
}

/// The debiased exponential moving average fastai shows as the training loss.
#[derive(Debug, Clone, Default)]
pub struct SmoothLoss {
    avg: f64,
    n: i32,
}

impl SmoothLoss {
    pub const BETA: f64 = 0.98;
    pub fn add(&mut self, v: f64) -> f64 {
        self.n += 1;
        self.avg = Self::BETA * self.avg + (1.0 - Self::BETA) * v;
        self.avg / (1.0 - Self::BETA.powi(self.n))
    }
}

/// Stopping a fit at the next batch, weights kept: the notebook's interrupt (SIGINT) and, under
/// the fastai kernel, a Stop button widget shown under the progress display. It also keeps widget
/// callbacks from running in the middle of a batch: while the fit runs they wait, and run here,
/// between batches ([`crate::widgets::EventsDuringFit`]).
#[derive(Default)]
pub struct StopButton {
    button: Option<crate::widgets::Button>,
    events: Option<crate::widgets::EventsDuringFit>,
}

impl std::fmt::Debug for StopButton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopButton")
    }
}

impl StopButton {
    /// The Stop button of the running fit (under the fastai kernel), e.g. to click it from code.
    pub fn button(&self) -> Option<&crate::widgets::Button> {
        self.button.as_ref()
    }
}

impl Callback for StopButton {
    fn order(&self) -> i32 {
        70
    }
    fn before_fit(&mut self, _l: &mut AnyLearner) {
        self.events = Some(crate::widgets::EventsDuringFit::start());
        self.button = None;
        if crate::display::supports_updates() && crate::widgets::live() {
            use crate::widgets::Widget;
            let b = crate::widgets::Button::new("Stop")
                .style("danger")
                .icon("stop");
            // at once, not between batches: it is what ends the batch loop
            b.on_click_now(interrupt::request);
            b.display();
            self.button = Some(b);
        }
    }
    fn after_batch(&mut self, l: &mut AnyLearner) {
        crate::widgets::run_pending();
        if interrupt::requested() {
            let s = &l.state;
            let at = if s.training {
                format!("epoch {}, batch {}/{}", s.epoch, s.batch, s.n_batches)
            } else {
                format!("epoch {}, during validation", s.epoch)
            };
            l.stop(format!(
                "training interrupted at {at}; the weights are kept as they are"
            ));
        }
    }
    fn after_fit(&mut self, l: &mut AnyLearner) {
        if let Some(b) = self.button.take() {
            b.set_disabled(true);
            b.set_description(if l.state.stop_reason.is_some() {
                "Stopped"
            } else {
                "Done"
            });
        }
        // the callbacks that waited run now
        self.events = None;
    }
}

/// Ends the fit with an error when the training loss stops being a number (too high a learning
/// rate), before that batch's step can spoil the weights.
#[derive(Debug, Default)]
pub struct NanGuard;

impl Callback for NanGuard {
    fn order(&self) -> i32 {
        80
    }
    fn after_loss(&mut self, l: &mut AnyLearner) {
        let s = &l.state;
        if s.training && !s.batch_loss.is_finite() {
            let msg = format!(
                "the training loss became {} at epoch {}, batch {} (learning rate {:.2e}): \
                 the learning rate is too high for this model; try one 10x smaller (lr_find helps)",
                s.batch_loss,
                s.epoch,
                s.batch,
                s.lrs.last().copied().unwrap_or(0.0)
            );
            l.fail(msg);
        }
    }
}

/// fastai's `GradientClipping(clip)`: scales the gradients so that their global L2 norm is at
/// most `max_norm`, before each step.
#[derive(Debug, Clone)]
pub struct GradientClipping {
    pub max_norm: f64,
    /// The norm before clipping at the last step (for plots and tests).
    pub last_norm: f64,
}

impl GradientClipping {
    pub fn new(max_norm: f64) -> Self {
        GradientClipping {
            max_norm,
            last_norm: f64::NAN,
        }
    }
}

/// The global L2 norm of the gradients of `params`.
pub fn grad_norm<'a>(params: impl Iterator<Item = &'a Tensor>) -> f64 {
    let _g = tch::no_grad_guard();
    params
        .map(|p| p.grad())
        .filter(|g| g.defined())
        .map(|g| g.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]))
        .sum::<f64>()
        .sqrt()
}

impl Callback for GradientClipping {
    fn order(&self) -> i32 {
        20
    }
    fn before_step(&mut self, l: &mut AnyLearner) {
        let norm = grad_norm(l.trainable_params());
        self.last_norm = norm;
        if norm > self.max_norm && norm.is_finite() {
            let k = self.max_norm / (norm + 1e-6);
            let _g = tch::no_grad_guard();
            for p in l.trainable_params() {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(k);
                }
            }
        }
    }
}

/// fastai's `GradientAccumulation(n_acc)`: adds up the gradients of batches until `n_acc` items
/// have been seen, then takes one step - as one batch of `n_acc` items would (each batch's loss
/// is weighted by its share of the `n_acc`).
#[derive(Debug, Clone)]
pub struct GradientAccumulation {
    pub n_acc: usize,
    count: usize,
}

impl GradientAccumulation {
    pub fn new(n_acc: usize) -> Self {
        GradientAccumulation {
            n_acc: n_acc.max(1),
            count: 0,
        }
    }
}

impl Callback for GradientAccumulation {
    fn order(&self) -> i32 {
        30
    }
    fn before_fit(&mut self, _l: &mut AnyLearner) {
        self.count = 0;
    }
    fn before_backward(&mut self, l: &mut AnyLearner) {
        let share = l.state.bs() as f64 / self.n_acc as f64;
        l.state.loss = &l.state.loss * share;
    }
    fn before_step(&mut self, l: &mut AnyLearner) {
        self.count += l.state.bs() as usize;
        if self.count < self.n_acc {
            l.cancel_batch();
        } else {
            self.count = 0;
        }
    }
}
