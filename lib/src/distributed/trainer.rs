//! The callback `learn.to_distributed` adds: what turns one process's fit into one rank of a
//! data-parallel fit.
//!
//! - `before_fit`: the data yields only this rank's share of each epoch; the model's variables
//!   (weights and BatchNorm statistics) are broadcast from rank 0, so every rank starts equal.
//! - `before_step` (order 5: before mixed precision unscales and checks the gradients, before
//!   clipping): the gradients are summed across ranks in buckets of about 25 MB and divided by
//!   the number of ranks - the average over the global batch, as DDP computes it.
//! - validation `after_loss`: the ranks' predictions and targets are gathered and put back in
//!   the unsharded order (the padding of the last batch dropped), and the loss recomputed on
//!   them, so every rank's metrics are those of the whole validation set.
//! - `before_validate` and `after_fit`: what is not trained (BatchNorm's running statistics,
//!   which each rank updated from its own share) is broadcast from rank 0, as DDP's
//!   `broadcast_buffers` does, so every rank validates and ends with one model.
//! - `after_fit`: the data yields everything again.
//!
//! And a second callback, [`StopSync`] (order 90: after the stop button and the NaN guard), makes
//! the ranks agree whether to go on: when one stops (the stop button, Ctrl-C, a NaN loss, a
//! callback's `stop`), all stop at the same point instead of the others waiting for it forever.
//! It asks after each training batch's loss (what the NaN guard looks at) and after every batch
//! (the stop button); a rank that has learnt of a stop asks no more, so every rank makes the same
//! number of calls.

use tch::Tensor;

use super::{DistContext, ReduceOp};
use crate::data::Shard;
use crate::error::{Error, Result};
use crate::learner::callback::{AnyLearner, Callback};

/// Gradients are all-reduced in flat buckets of at most this many bytes (DDP's default).
const BUCKET_BYTES: usize = 25 << 20;

/// The data-parallel callback (see the module's documentation). Added by
/// [`Learner::to_distributed`](crate::learner::Learner::to_distributed).
pub struct DistributedTrainer {
    ctx: DistContext,
    /// Inside a fit (the data is sharded).
    active: bool,
    /// Validation batches seen in this validation pass.
    valid_batch: i64,
}

impl std::fmt::Debug for DistributedTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DistributedTrainer({:?})", self.ctx)
    }
}

impl DistributedTrainer {
    pub fn new(ctx: DistContext) -> Result<Self> {
        if ctx.group().is_none() {
            return Err(Error::Msg(
                "DistributedTrainer needs a context with a process group (DistContext::from_env \
                 under fastai-launch)"
                    .into(),
            ));
        }
        Ok(DistributedTrainer {
            ctx,
            active: false,
            valid_batch: 0,
        })
    }

    fn group(&self) -> &super::ProcessGroup {
        self.ctx.group().expect("checked in new")
    }

    fn shard(&self) -> Shard {
        Shard {
            rank: self.ctx.rank,
            world: self.ctx.world_size,
        }
    }

    /// Broadcasts the model's variables from rank 0, bucket by bucket: all of them, or with
    /// `fixed_only` those not being trained (BatchNorm's running statistics, frozen layers).
    fn broadcast_model(&self, learn: &mut AnyLearner, fixed_only: bool) -> Result<()> {
        // by name: a HashMap's order differs between processes, and every rank must flatten the
        // same variables in the same order
        let mut named: Vec<(String, Tensor)> =
            learn.model.var_store().variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let vars: Vec<Tensor> = named
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| !fixed_only || !t.requires_grad())
            .collect();
        self.group().broadcast_bucketed(&vars, 0, BUCKET_BYTES)?;
        Ok(())
    }

    /// Replaces every trainable parameter's gradient with its average over the ranks.
    fn average_gradients(&self, learn: &mut AnyLearner) -> Result<()> {
        let params: Vec<Tensor> = learn
            .trainable_params()
            .map(|p| p.shallow_clone())
            .collect();
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| {
                let g = p.grad();
                if g.defined() {
                    g
                } else {
                    // a parameter this batch did not reach: zeros keep the buckets aligned
                    // across ranks (written back into this temporary only)
                    p.zeros_like()
                }
            })
            .collect();
        self.group()
            .all_reduce_bucketed(&grads, ReduceOp::Avg, BUCKET_BYTES)?;
        Ok(())
    }

    /// Gathers the validation batch's predictions and targets from every rank, in the order of
    /// the unsharded batch, and recomputes the loss over them.
    fn gather_validation(&mut self, learn: &mut AnyLearner) -> Result<()> {
        let world = self.ctx.world_size as i64;
        let pred = gather_interleaved(self.group(), &learn.state.pred, world)?;
        let yb = gather_interleaved(self.group(), &learn.state.yb, world)?;
        // drop the padding: items past the end of the validation set
        let bs = learn.data.bs() as i64;
        let first = self.valid_batch * bs * world;
        self.valid_batch += 1;
        let keep = (learn.data.n_valid() as i64 - first).clamp(0, pred.size()[0]);
        let (pred, yb) = (pred.narrow(0, 0, keep), yb.narrow(0, 0, keep));
        learn.state.loss = learn.loss_func.compute(&pred, &yb);
        learn.state.batch_loss = learn.state.loss.double_value(&[]);
        learn.state.pred = pred;
        learn.state.yb = yb;
        Ok(())
    }

    fn fail(&self, learn: &mut AnyLearner, e: Error) {
        learn.fail(format!(
            "data-parallel training, rank {} of {}: {e}",
            self.ctx.rank, self.ctx.world_size
        ));
    }
}

impl Callback for DistributedTrainer {
    fn order(&self) -> i32 {
        5
    }

    fn before_fit(&mut self, learn: &mut AnyLearner) {
        if let Err(e) = learn.data.set_shard(Some(self.shard())) {
            return self.fail(learn, e);
        }
        self.active = true;
        if let Err(e) = self.broadcast_model(learn, false) {
            self.fail(learn, e);
        }
    }

    fn before_step(&mut self, learn: &mut AnyLearner) {
        if !self.active {
            return;
        }
        if let Err(e) = self.average_gradients(learn) {
            self.fail(learn, e);
        }
    }

    fn before_validate(&mut self, learn: &mut AnyLearner) {
        self.valid_batch = 0;
        // each rank's BatchNorm statistics followed its own share of the batches: validate
        // with rank 0's (DDP's broadcast_buffers), so the gathered predictions are one model's
        if self.active {
            if let Err(e) = self.broadcast_model(learn, true) {
                self.fail(learn, e);
            }
        }
    }

    fn after_loss(&mut self, learn: &mut AnyLearner) {
        if !self.active || learn.state.training {
            return;
        }
        if let Err(e) = self.gather_validation(learn) {
            self.fail(learn, e);
        }
    }

    fn after_fit(&mut self, learn: &mut AnyLearner) {
        // every rank ends with rank 0's statistics too (the weights are equal already) - unless
        // the fit is failing, when a peer may be gone
        if self.active && learn.state.stop_reason.is_none() {
            if let Err(e) = self.broadcast_model(learn, true) {
                self.fail(learn, e);
            }
        }
        self.active = false;
        let _ = learn.data.set_shard(None);
    }
}

/// Every rank's `t` (same shape on all), interleaved along the first dimension: row `k` of rank
/// `r` lands at `k * world + r` - the order of the unsharded batch.
fn gather_interleaved(group: &super::ProcessGroup, t: &Tensor, world: i64) -> Result<Tensor> {
    let parts = group.all_gather(&t.contiguous())?;
    let stacked = Tensor::stack(&parts, 1);
    let mut shape = t.size();
    if shape.is_empty() {
        return Ok(stacked.reshape([-1]));
    }
    shape[0] *= world;
    Ok(stacked.reshape(shape.as_slice()))
}

/// The ranks' agreement on stopping (see the module's documentation).
pub struct StopSync {
    ctx: DistContext,
    active: bool,
}

impl StopSync {
    pub(crate) fn new(ctx: DistContext) -> Self {
        StopSync { ctx, active: false }
    }

    /// One round: every rank says whether it is stopping; the others stop too.
    fn round(&mut self, learn: &mut AnyLearner) {
        if !self.active {
            return;
        }
        let Some(group) = self.ctx.group() else {
            return;
        };
        let mine = learn.state.stopping();
        let mut flag = Tensor::from_slice(&[mine as i64]);
        match group.all_reduce(&mut [&mut flag], ReduceOp::Sum) {
            Ok(()) => {
                let n = flag.int64_value(&[0]);
                if n > 0 {
                    self.active = false; // this fit ends here on every rank: no more rounds
                    if !mine {
                        learn.stop(format!(
                            "{n} other rank{} stopped",
                            if n == 1 { "" } else { "s" }
                        ));
                    }
                }
            }
            Err(e) => {
                self.active = false;
                learn.fail(format!(
                    "data-parallel training, rank {} of {}: {e}",
                    self.ctx.rank, self.ctx.world_size
                ));
            }
        }
    }
}

impl Callback for StopSync {
    fn order(&self) -> i32 {
        90
    }
    fn before_fit(&mut self, _learn: &mut AnyLearner) {
        self.active = true;
    }
    fn after_loss(&mut self, learn: &mut AnyLearner) {
        if learn.state.training {
            self.round(learn);
        }
    }
    fn after_batch(&mut self, learn: &mut AnyLearner) {
        self.round(learn);
    }
    fn after_fit(&mut self, _learn: &mut AnyLearner) {
        self.active = false;
    }
}
