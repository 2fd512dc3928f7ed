//! Mixed precision (`learn.to_fp16()`): the forward pass under autocast (float16 where it is safe,
//! on CUDA) and dynamic loss scaling, so that small float16 gradients do not flush to zero.
//!
//! The loss is multiplied by `scale` before `backward`, the gradients are divided by it before the
//! optimizer step, and a step whose gradients hold an inf or NaN (the scale was too large) is
//! skipped and the scale halved. After `growth_interval` good steps in a row the scale doubles
//! again. These are the usual defaults (PyTorch's `GradScaler`, fastai's `MixedPrecision`):
//! initial scale 2^16, factor 2, interval 2000.
//!
//! Autocast only exists on CUDA; on the CPU `to_fp16()` says so and only the loss scaling runs
//! (the arithmetic stays float32), which is how the scaling logic is tested on machines without a
//! GPU.

use tch::{Kind, Tensor};

use super::callback::{AnyLearner, Callback};
use super::Learner;
use crate::data::Data;

/// Dynamic loss scaling.
#[derive(Debug, Clone)]
pub struct LossScaler {
    /// The factor the loss is multiplied by now.
    pub scale: f64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    /// Good steps in a row before the scale grows.
    pub growth_interval: usize,
    /// Good steps in a row so far.
    pub good_steps: usize,
    /// Steps skipped because a gradient was not finite (since the learner was made).
    pub skipped: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler {
            scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            good_steps: 0,
            skipped: 0,
        }
    }
}

impl LossScaler {
    /// Divides the gradients of `params` by the scale, in place. Returns `false` (and lowers
    /// the scale) when one of them holds an inf or NaN: the caller must then skip the step.
    pub fn unscale_and_check<'a>(&mut self, params: impl Iterator<Item = &'a Tensor>) -> bool {
        let _guard = tch::no_grad_guard();
        let inv = 1.0 / self.scale;
        // One flag per gradient, read back once: on a GPU every read is a wait for the device,
        // and a model has a hundred or more parameter tensors.
        let mut checks = Vec::new();
        for p in params {
            let mut g = p.grad();
            if !g.defined() {
                continue;
            }
            let _ = g.g_mul_scalar_(inv);
            checks.push(g.isfinite().all());
        }
        let finite =
            checks.is_empty() || bool::try_from(Tensor::stack(&checks, 0).all()).unwrap_or(false);
        self.update(finite);
        finite
    }

    /// The scale after a step whose gradients were (`true`) or were not finite.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                self.scale *= self.growth_factor;
                self.good_steps = 0;
            }
        } else {
            self.scale = (self.scale * self.backoff_factor).max(1.0);
            self.good_steps = 0;
            self.skipped += 1;
        }
    }
}

/// The mixed-precision callback (`to_fp16()` adds it): autocast around the forward pass and the
/// loss (CUDA only), the loss scaled before `backward`, the gradients unscaled and checked before
/// the step, which is skipped when they overflowed.
#[derive(Debug, Clone, Default)]
pub struct MixedPrecision {
    pub scaler: LossScaler,
    /// Autocast is on for the batch being processed.
    in_autocast: bool,
}

impl MixedPrecision {
    pub fn new(scaler: LossScaler) -> Self {
        MixedPrecision {
            scaler,
            in_autocast: false,
        }
    }

    fn leave_autocast(&mut self) {
        if self.in_autocast {
            autocast(false);
            self.in_autocast = false;
        }
    }
}

/// Turns autocast on (nested) or back off, as `tch::autocast` does around a closure.
fn autocast(on: bool) {
    // SAFETY: plain calls into libtorch's autocast state, paired exactly as tch::autocast does.
    unsafe {
        if on {
            torch_sys::at_autocast_set_enabled(1);
            torch_sys::at_autocast_increment_nesting();
        } else {
            if torch_sys::at_autocast_decrement_nesting() == 0 {
                torch_sys::at_autocast_clear_cache();
            }
            torch_sys::at_autocast_set_enabled(0);
        }
    }
}

impl Callback for MixedPrecision {
    fn order(&self) -> i32 {
        10
    }
    fn before_batch(&mut self, l: &mut AnyLearner) {
        if l.device().is_cuda() && !self.in_autocast {
            autocast(true);
            self.in_autocast = true;
        }
    }
    fn after_pred(&mut self, l: &mut AnyLearner) {
        if self.in_autocast {
            l.state.pred = l.state.pred.to_kind(Kind::Float);
        }
    }
    fn after_loss(&mut self, _l: &mut AnyLearner) {
        self.leave_autocast();
    }
    fn before_backward(&mut self, l: &mut AnyLearner) {
        l.state.loss = &l.state.loss * self.scaler.scale;
    }
    fn before_step(&mut self, l: &mut AnyLearner) {
        if !self.scaler.unscale_and_check(l.trainable_params()) {
            l.cancel_step();
        }
    }
    fn after_batch(&mut self, _l: &mut AnyLearner) {
        self.leave_autocast();
    }
    fn after_fit(&mut self, _l: &mut AnyLearner) {
        self.leave_autocast();
    }
}

impl<D: Data + ?Sized> Learner<D> {
    /// fastai's `to_fp16()`: mixed precision training - float16 forward and backward passes
    /// where they are safe (autocast) with float32 weights, and dynamic loss scaling (see
    /// [this module](self)). Autocast needs CUDA: on the CPU this prints a note and only the loss
    /// scaling runs (no speed-up). `to_fp32()` turns it off.
    pub fn to_fp16(&mut self) -> &mut Self {
        if !self.device().is_cuda() {
            println!(
                "to_fp16: the model is on the CPU, where autocast does not run: training stays in \
                 float32 (only the loss scaling is active). Mixed precision speeds up training on a CUDA GPU."
            );
        }
        self.to_fp16_with(LossScaler::default())
    }

    /// [`Learner::to_fp16`] with a loss scaler of one's own (initial scale, growth interval).
    pub fn to_fp16_with(&mut self, scaler: LossScaler) -> &mut Self {
        self.remove_cb::<MixedPrecision>();
        self.add_cb(MixedPrecision::new(scaler))
    }

    /// Back to plain float32 training.
    pub fn to_fp32(&mut self) -> &mut Self {
        self.remove_cb::<MixedPrecision>();
        self
    }

    /// The loss scaler when mixed precision is on.
    pub fn loss_scaler(&self) -> Option<&LossScaler> {
        self.cb::<MixedPrecision>().map(|m| &m.scaler)
    }
}
