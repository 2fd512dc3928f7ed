//! The training loop, small on purpose: batches, validation, and events for the callbacks
//! around them (see [`super::callback`] for the order). It is written once, for
//! `Learner<dyn Data>`, and every `fit_*` method of every learner ends here.
//!
//! Clean-up runs on every way out: `after_fit` (the progress display's final state, the
//! recorder) and the interrupt flag's reset happen whether the fit ends normally, stops, fails,
//! returns an error or panics (a shape mismatch in a model of your own is a panic in libtorch's
//! bindings; it becomes an `Err` with libtorch's message, and the learner stays usable).

use std::panic::{catch_unwind, AssertUnwindSafe};

use tch::{Device, Kind, Tensor};

use super::callback::{AnyLearner, Callback, Cancel, FitState};
use super::interrupt;
use super::progress::ProgressCallback;
use crate::bail;
use crate::data::Batch;
use crate::error::{panic_text, Error, Result};

/// How a fit shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    /// The standing progress callback: bars and the epoch table.
    Table,
    /// Leave the standing progress callback out (lr_find brings its own bar).
    NoTable,
}

impl AnyLearner {
    /// Runs `f` over every callback, in order.
    fn event(&mut self, cbs: &mut [&mut dyn Callback], f: impl Fn(&mut dyn Callback, &mut Self)) {
        for c in cbs.iter_mut() {
            f(&mut **c, self);
        }
    }

    /// The standing callbacks (taken out of the learner while they run) plus `extra`, sorted.
    fn with_callbacks<T>(
        &mut self,
        extra: &mut [&mut dyn Callback],
        show: Show,
        body: impl FnOnce(&mut Self, &mut [&mut dyn Callback]) -> T,
    ) -> T {
        let mut standing = std::mem::take(&mut self.callbacks);
        let out = {
            let mut cbs: Vec<&mut dyn Callback> = standing
                .iter_mut()
                .map(|c| &mut **c)
                .filter(|c| {
                    show == Show::Table || !(&**c as &dyn std::any::Any).is::<ProgressCallback>()
                })
                .chain(extra.iter_mut().map(|c| &mut **c))
                .collect();
            cbs.sort_by_key(|c| c.order());
            body(self, &mut cbs)
        };
        // callbacks added while they ran come after the standing ones
        let added = std::mem::replace(&mut self.callbacks, standing);
        self.callbacks.extend(added);
        out
    }

    /// `fit`: `epochs` epochs over the training data, validation after each (`validate`).
    pub(crate) fn run_fit(
        &mut self,
        epochs: usize,
        extra: &mut [&mut dyn Callback],
        show: Show,
        validate: bool,
    ) -> Result<()> {
        let n_batches = self.data.n_train_batches();
        if n_batches == 0 {
            bail!(
                "the training set has {} items, fewer than one batch of {}",
                self.data.n_train(),
                self.data.bs()
            );
        }
        let lrs = std::mem::take(&mut self.state.lrs);
        self.state = FitState::new(self.n_groups, self.opts.betas.0);
        self.state.lrs = if lrs.len() == self.n_groups {
            lrs
        } else {
            vec![1e-3; self.n_groups]
        };
        self.state.n_epochs = epochs;
        self.state.n_batches = n_batches;
        self.state.n_iter = epochs * n_batches;
        interrupt::arm();
        self.with_callbacks(extra, show, |l, cbs| {
            let outcome = catch_unwind(AssertUnwindSafe(|| l.epochs(cbs, validate)));
            let mut result = match outcome {
                Ok(r) => r,
                Err(p) => Err(Error::Msg(format!("training failed: {}", panic_text(p)))),
            };
            if result.is_ok() {
                if let Some(f) = l.state.failure.clone() {
                    result = Err(Error::Msg(f));
                }
            }
            if let Err(e) = &result {
                l.state.cancel.fit = true;
                if l.state.stop_reason.is_none() {
                    l.state.stop_reason = Some(e.to_string());
                }
            }
            // clean-up: every callback's after_fit, even if one of them panics
            for c in cbs.iter_mut() {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| c.after_fit(l))) {
                    eprintln!("a callback's after_fit failed: {}", panic_text(p));
                }
            }
            interrupt::clear();
            l.state.training = false;
            let _ = l.opt.zero_grad();
            result
        })
    }

    fn epochs(&mut self, cbs: &mut [&mut dyn Callback], validate: bool) -> Result<()> {
        self.opt.zero_grad()?;
        self.state.grads_stale = false;
        self.event(cbs, |c, l| c.before_fit(l));
        for epoch in 0..self.state.n_epochs {
            if self.state.stopping() {
                break;
            }
            let s = &mut self.state;
            s.epoch = epoch;
            s.batch = 0;
            s.valid_loss = None;
            s.metrics.clear();
            s.cancel.validate = false;
            s.training = true;
            self.event(cbs, |c, l| c.before_epoch(l));
            self.event(cbs, |c, l| c.before_train(l));
            for b in self.data.train_batches() {
                self.one_batch(cbs, b)?;
                if self.state.stopping() {
                    break;
                }
            }
            self.event(cbs, |c, l| c.after_train(l));
            if self.state.stopping() {
                break;
            }
            if validate && !self.state.cancel.validate {
                self.validate_epoch(cbs)?;
                if self.state.stopping() {
                    break;
                }
            }
            self.event(cbs, |c, l| c.after_epoch(l));
        }
        Ok(())
    }

    /// One batch: forward, loss, and in training backward and step, with their events.
    fn one_batch(&mut self, cbs: &mut [&mut dyn Callback], b: Batch) -> Result<()> {
        let training = self.state.training;
        self.state.xb = b.x;
        self.state.yb = b.y;
        self.state.cancel = Cancel {
            fit: self.state.cancel.fit,
            validate: self.state.cancel.validate,
            ..Cancel::default()
        };
        self.event(cbs, |c, l| c.before_batch(l));
        if !self.state.cancel.batch && !self.state.stopping() {
            self.forward_and_loss(cbs)?;
            if training && !self.state.cancel.batch && !self.state.stopping() {
                self.backward_and_step(cbs)?;
            }
        }
        if training {
            self.state.iter += 1;
            self.state.batch += 1;
        }
        self.event(cbs, |c, l| c.after_batch(l));
        Ok(())
    }

    fn forward_and_loss(&mut self, cbs: &mut [&mut dyn Callback]) -> Result<()> {
        let training = self.state.training;
        self.state.pred = self.model.forward_t(&self.state.xb, training);
        self.event(cbs, |c, l| c.after_pred(l));
        self.state.loss = self.loss_func.compute(&self.state.pred, &self.state.yb);
        if self.state.loss.numel() != 1 {
            bail!(
                "the loss function returned a tensor of shape {:?}; it must return one number \
                 (e.g. end it with .mean(Kind::Float))",
                self.state.loss.size()
            );
        }
        self.state.batch_loss = self.state.loss.double_value(&[]);
        if training {
            let v = self.state.batch_loss;
            self.state.smooth_loss = self.state.smoother.add(v);
        }
        self.event(cbs, |c, l| c.after_loss(l));
        Ok(())
    }

    fn backward_and_step(&mut self, cbs: &mut [&mut dyn Callback]) -> Result<()> {
        self.event(cbs, |c, l| c.before_backward(l));
        if !self.state.loss.requires_grad() {
            bail!(
                "the loss does not depend on any trainable parameter (is everything frozen, or \
                 does the model or loss detach its output?)"
            );
        }
        // The last step's gradients are cleared here rather than right after that step: libtorch
        // frees them (set to none), and freed just before `backward` their memory is reused at
        // once for the new ones (cleared right after the step, the forward pass in between took
        // it, and backward paged in fresh memory: mobilenet_v2's step was 13% slower).
        if self.state.grads_stale {
            self.opt.zero_grad()?;
            self.state.grads_stale = false;
        }
        self.state.loss.backward();
        self.event(cbs, |c, l| c.before_step(l));
        if self.state.cancel.batch {
            return Ok(()); // gradients kept (accumulation)
        }
        if !self.state.cancel.step {
            if self.state.lrs.len() != self.n_groups {
                bail!(
                    "{} learning rates for {} layer groups",
                    self.state.lrs.len(),
                    self.n_groups
                );
            }
            for (g, lr) in self.state.lrs.iter().enumerate() {
                self.opt.set_learning_rate_group(g, *lr)?;
                // the same layer group's parameters without weight decay (bn_wd off)
                if g + self.n_groups < self.opt_groups {
                    self.opt.set_learning_rate_group(g + self.n_groups, *lr)?;
                }
            }
            self.opt.set_momentum(self.state.mom)?;
            self.opt.step()?;
            self.event(cbs, |c, l| c.after_step(l));
        }
        self.state.grads_stale = true;
        Ok(())
    }

    /// The validation pass at the end of an epoch: loss and metrics over the whole set.
    fn validate_epoch(&mut self, cbs: &mut [&mut dyn Callback]) -> Result<()> {
        self.state.training = false;
        self.event(cbs, |c, l| c.before_validate(l));
        let mut accs: Vec<_> = self.metrics.iter().map(|m| m.accumulator()).collect();
        let (mut total, mut n) = (0.0, 0i64);
        {
            let _no_grad = tch::no_grad_guard();
            for b in self.data.valid_batches() {
                self.one_batch(cbs, b)?;
                if self.state.cancel.batch {
                    continue;
                }
                let bs = self.state.bs();
                total += self.state.batch_loss * bs as f64;
                n += bs;
                for a in accs.iter_mut() {
                    a.accumulate(&self.state.pred, &self.state.yb);
                }
                if self.state.stopping() {
                    break;
                }
            }
        }
        self.state.valid_loss = Some(if n > 0 { total / n as f64 } else { f64::NAN });
        self.state.metrics = accs.iter().map(|a| (a.name(), a.value())).collect();
        self.event(cbs, |c, l| c.after_validate(l));
        self.state.training = true;
        Ok(())
    }

    /// `learn.validate()`: one validation pass with the standing callbacks.
    pub(crate) fn validate_alone(&mut self) -> Result<(f64, Vec<(String, f64)>)> {
        self.state.cancel = Cancel::default();
        self.state.stop_reason = None;
        self.state.failure = None;
        let r = self.with_callbacks(&mut [], Show::Table, |l, cbs| {
            catch_unwind(AssertUnwindSafe(|| l.validate_epoch(cbs)))
        });
        self.state.training = false;
        match r {
            Err(p) => bail!("validation failed: {}", panic_text(p)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => {
                if let Some(reason) = self.state.stop_reason.take() {
                    interrupt::clear();
                    bail!("validation stopped: {reason}");
                }
                Ok((
                    self.state.valid_loss.unwrap_or(f64::NAN),
                    self.state.metrics.clone(),
                ))
            }
        }
    }

    /// `learn.train_step(x, y)`: one training batch through the standing callbacks.
    pub(crate) fn step_alone(&mut self, x: &Tensor, y: &Tensor) -> Result<f64> {
        self.state.training = true;
        self.state.cancel = Cancel::default();
        self.state.failure = None;
        let r = self.with_callbacks(&mut [], Show::NoTable, |l, cbs| {
            catch_unwind(AssertUnwindSafe(|| {
                let b = Batch {
                    x: x.shallow_clone(),
                    y: y.shallow_clone(),
                    indices: Vec::new(),
                };
                l.one_batch(cbs, b)
            }))
        });
        self.state.training = false;
        // a loss that is not a number: returned, without a step (the NaN guard stopped it)
        self.state.failure = None;
        self.state.stop_reason = None;
        self.state.cancel = Cancel::default();
        match r {
            Err(p) => bail!("the training step failed: {}", panic_text(p)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Ok(self.state.batch_loss),
        }
    }

    /// The model's raw outputs and the targets over the validation set, on the CPU.
    pub(crate) fn collect_preds(&mut self) -> Result<(Tensor, Tensor)> {
        let batches = self.data.valid_batches();
        if let Some(preds) = super::results::predict_batches(self.model.as_ref(), batches)? {
            return Ok(preds);
        }
        let c = self.data.classes().len() as i64;
        Ok((
            Tensor::zeros([0, c], (Kind::Float, Device::Cpu)),
            Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
        ))
    }
}
