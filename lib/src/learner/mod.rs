//! The Learner: a model, its data, a loss, an optimizer, and the training loop, as in fastai.
//!
//! ```no_run
//! use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! # let data: ImageDataBunch = todo!();
//! let mut learn = cnn_learner(data, models::resnet34, &[error_rate])?;
//! learn.fit_one_cycle(4, None)?;                                  // head only (body frozen)
//! learn.unfreeze();
//! learn.fit_one_cycle(2, Some(slice(1e-6, 1e-4)))?;               // everything, discriminative
//! # Ok(()) }
//! ```
//!
//! Any model and loss: `Learner::new(data, model, loss_func, &metrics)` ([`Learner::new`]).
//! The loop ([`fit`](Learner::fit_with) in `fit.rs`) only runs batches and validation; the
//! schedules, the recorder, the progress display, the stop button, the NaN guard and mixed
//! precision are callbacks around it ([`callback`]).

pub mod callback;
pub mod export;
mod fit;
pub mod interrupt;
pub mod loss;
pub mod lr_find;
pub mod metrics;
pub mod mixed;
pub mod optim;
pub mod plots;
pub mod progress;
pub mod recorder;
pub mod results;
pub mod schedule;
pub mod summary;
pub mod tta;
pub mod unet;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tch::{COptimizer, Device, Tensor};

use crate::bail;
use crate::data::{Data, ImageDataBunch};
use crate::error::{Error, Result};
use crate::models::hooks::Hook;
use crate::models::model::{params_of, Param};
use crate::models::{self, Arch, CnnModel, Model};
use callback::{Callback, FitState, NanGuard, StopButton};
use loss::Loss;
use metrics::Metric;
use optim::Lr;
use recorder::{Recorder, RecorderCallback};
use schedule::{ConstantLr, OneCycle, OneCycleSchedule};
pub use unet::{unet_learner, unet_learner_with};

/// Number of layer groups of a cnn_learner: early body, late body, head.
pub const N_GROUPS: usize = 3;

/// fastai v1's default learning rate, `slice(3e-3)`: 3e-3 for the last group (the head), 3e-4
/// for the others.
pub const DEFAULT_LR: Lr = Lr::Stop(3e-3);

/// Options of a learner's optimizer (AdamW), and of [`cnn_learner_with`].
#[derive(Debug, Clone)]
pub struct LearnerOptions {
    /// `cnn_learner`: start from ImageNet weights (`false`: train from scratch).
    pub pretrained: bool,
    /// Decoupled weight decay.
    pub wd: f64,
    /// Whether the weight decay also applies to BatchNorm weights and to biases (fastai v1's
    /// `bn_wd`, default `true`; fastai 2 leaves them out: `false`). Read when the optimizer is
    /// built: at the learner's creation, `freeze`, `unfreeze` and `freeze_to`.
    pub bn_wd: bool,
    /// Adam's betas (beta1 is replaced by the momentum schedule).
    pub betas: (f64, f64),
    pub eps: f64,
    /// `cnn_learner`: the head's hidden layer sizes (fastai's `lin_ftrs`, default `[512]`).
    pub lin_ftrs: Vec<i64>,
    /// `cnn_learner`: the head's last dropout; the layers before get half (fastai's `ps`).
    pub ps: f64,
    /// `cnn_learner`: squash the outputs into `(lo, hi)` with a scaled sigmoid (regression).
    pub y_range: Option<(f64, f64)>,
    /// `cnn_learner`: a BatchNorm on the head's outputs (fastai's `bn_final`).
    pub bn_final: bool,
    /// `cnn_learner`: how the head's linear layers start (fastai's `init`: Kaiming-normal by
    /// default; [`models::HeadInit::Default`] is PyTorch's own, fastai's `init=None`).
    pub init: models::HeadInit,
}

impl Default for LearnerOptions {
    fn default() -> Self {
        LearnerOptions {
            pretrained: true,
            wd: 1e-2,
            bn_wd: true,
            betas: (0.9, 0.99),
            eps: 1e-5,
            lin_ftrs: vec![512],
            ps: 0.5,
            y_range: None,
            bn_final: false,
            init: models::HeadInit::KaimingNormal,
        }
    }
}

impl LearnerOptions {
    pub fn pretrained(mut self, v: bool) -> Self {
        self.pretrained = v;
        self
    }
    pub fn wd(mut self, wd: f64) -> Self {
        self.wd = wd;
        self
    }
    pub fn bn_wd(mut self, on: bool) -> Self {
        self.bn_wd = on;
        self
    }
    pub fn lin_ftrs(mut self, sizes: &[i64]) -> Self {
        self.lin_ftrs = sizes.to_vec();
        self
    }
    pub fn ps(mut self, p: f64) -> Self {
        self.ps = p;
        self
    }
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    pub fn bn_final(mut self, on: bool) -> Self {
        self.bn_final = on;
        self
    }
    pub fn init(mut self, init: models::HeadInit) -> Self {
        self.init = init;
        self
    }
}

/// A model, its data, a loss function and metrics, an optimizer, callbacks.
///
/// `D` is the data: [`ImageDataBunch`] (the default, so `Learner` alone means an image
/// learner), [`crate::data::DataBunch`], or your own [`Data`]. Callbacks see it as
/// `Learner<dyn Data>`.
pub struct Learner<D: ?Sized = ImageDataBunch> {
    pub model: Box<dyn Model>,
    pub loss_func: Loss,
    pub metrics: Vec<Metric>,
    pub recorder: Recorder,
    pub opts: LearnerOptions,
    /// Where `save`/`load` put files: `<data path>/models`.
    pub model_dir: PathBuf,
    /// The standing callbacks: by default the recorder, the progress display, the stop button
    /// and the NaN guard (`remove_cb` takes one out); yours (`add_cb`); mixed precision.
    pub callbacks: Vec<Box<dyn Callback>>,
    /// The loop's state: counters, the batch, predictions, loss (see [`callback`]).
    pub state: FitState,
    /// `cnn_learner`: whether the body started from pretrained weights.
    pretrained: Option<bool>,
    params: Vec<Param>,
    n_groups: usize,
    opt: COptimizer,
    /// The optimizer's parameter groups: `n_groups`, then (with `bn_wd` off) one group without
    /// weight decay per layer group, for its BatchNorm weights and biases.
    opt_groups: usize,
    frozen_to: usize,
    /// The data (last, so that a `Learner<ImageDataBunch>` can be seen as a `Learner<dyn Data>`).
    pub data: D,
}

/// The callbacks every learner starts with.
fn default_callbacks() -> Vec<Box<dyn Callback>> {
    vec![
        Box::new(RecorderCallback),
        Box::new(progress::ProgressCallback::default()),
        Box::new(StopButton::default()),
        Box::new(NanGuard),
    ]
}

impl<D: Data> Learner<D> {
    /// fastai's `Learner(data, model, loss_func=..., metrics=...)`: trains `model` on `data`
    /// with `loss_func` (a [`Loss`] like `cross_entropy_flat()`, or a closure
    /// `|pred, targ| -> Tensor`) and AdamW. The layer groups are those the model's builder set
    /// on its variables (one group if it set none). Nothing is frozen.
    pub fn new(
        data: D,
        model: impl Model + 'static,
        loss_func: impl Into<Loss>,
        metrics: &[Metric],
    ) -> Result<Learner<D>> {
        Learner::with_options(data, model, loss_func, metrics, LearnerOptions::default())
    }

    /// [`Learner::new`] with optimizer options (weight decay, betas, eps).
    pub fn with_options(
        data: D,
        model: impl Model + 'static,
        loss_func: impl Into<Loss>,
        metrics: &[Metric],
        opts: LearnerOptions,
    ) -> Result<Learner<D>> {
        let (m, d) = (model.var_store().device(), data.device());
        if m != d {
            bail!(
                "the model is on {m:?} but the data's batches go to {d:?}: build the model on \
                 data.device() (or move the data with to_device)"
            );
        }
        let params = params_of(model.var_store());
        if params.is_empty() {
            bail!(
                "the model has no trainable variables: build its layers on the VarStore it is \
                 given (e.g. nn::linear(p / \"lin\", ...) with p = vs.root())"
            );
        }
        let n_groups = params.iter().map(|p| p.group).max().unwrap_or(0) + 1;
        let opt = COptimizer::adamw(1e-3, opts.betas.0, opts.betas.1, opts.wd, opts.eps, false)?;
        let model_dir = data.path().join("models");
        let mom = opts.betas.0;
        let mut learn = Learner {
            model: Box::new(model),
            loss_func: loss_func.into(),
            metrics: metrics.to_vec(),
            recorder: Recorder::default(),
            opts,
            model_dir,
            callbacks: default_callbacks(),
            state: FitState::new(n_groups, mom),
            pretrained: None,
            params,
            n_groups,
            opt,
            opt_groups: n_groups,
            frozen_to: 0,
            data,
        };
        learn.rebuild_optimizer()?;
        Ok(learn)
    }
}

/// A learner for transfer learning: `arch`'s pretrained body, fastai's head for the data's
/// classes, the body frozen (its BatchNorm layers excepted). The loss follows the targets:
/// cross-entropy for classes, BCE with logits for multi-labels, MSE for points and numbers.
pub fn cnn_learner(data: ImageDataBunch, arch: Arch, metrics: &[Metric]) -> Result<Learner> {
    cnn_learner_with(data, arch, metrics, LearnerOptions::default())
}

/// [`cnn_learner`] with options (`pretrained: false` trains from scratch).
pub fn cnn_learner_with(
    data: ImageDataBunch,
    arch: Arch,
    metrics: &[Metric],
    opts: LearnerOptions,
) -> Result<Learner> {
    let kind = data.target_kind();
    if kind == "category" && data.c() < 2 {
        bail!(
            "the data has {} class(es); a classifier needs at least 2",
            data.c()
        );
    }
    if kind == "mask" {
        bail!("segmentation data (masks) needs a U-Net: unet_learner(data, arch, metrics)");
    }
    if data.c() == 0 {
        bail!("the data's targets are empty: the model would have no outputs");
    }
    let head = models::HeadConfig {
        lin_ftrs: opts.lin_ftrs.clone(),
        ps: opts.ps,
        y_range: opts.y_range,
        bn_final: opts.bn_final,
        init: opts.init,
    };
    let mut model = CnnModel::with_head(arch, data.device(), data.c() as i64, &head);
    if opts.pretrained {
        let path = models::weights::pretrained_path(arch)?;
        models::weights::load_pretrained(&mut model.vs, &path, &["head."])?;
    }
    let pretrained = opts.pretrained;
    let loss = loss::default_loss(&data.train_ds.y);
    let mut learn = Learner::with_options(data, model, loss, metrics, opts)?;
    learn.pretrained = Some(pretrained);
    if pretrained {
        learn.freeze();
    }
    Ok(learn)
}

impl<D: Data + ?Sized> Learner<D> {
    /// A fresh optimizer over the trainable (not frozen) parameters, in their groups. Frozen
    /// parameters are not in it at all, so no step (nor weight decay) ever touches them.
    pub(crate) fn rebuild_optimizer(&mut self) -> Result<()> {
        let o = &self.opts;
        let mut opt = COptimizer::adamw(1e-3, o.betas.0, o.betas.1, o.wd, o.eps, false)?;
        let mut groups = 0;
        for p in &self.params {
            if p.tensor.requires_grad() {
                let no_wd = !o.bn_wd && (p.is_bn || p.name == "bias" || p.name.ends_with(".bias"));
                let g = if no_wd {
                    p.group + self.n_groups
                } else {
                    p.group
                };
                opt.add_parameters(&p.tensor, g)?;
                groups = groups.max(g + 1);
            }
        }
        // (the optimizer makes the groups below the largest index used, empty ones included)
        for g in self.n_groups..groups {
            opt.set_weight_decay_group(g, 0.0)?;
        }
        self.opt = opt;
        self.opt_groups = groups.max(self.n_groups);
        Ok(())
    }

    /// Number of layer groups (for `slice` learning rates and freezing).
    pub fn n_groups(&self) -> usize {
        self.n_groups
    }

    /// Freezes groups `0..n` (BatchNorm layers stay trainable, as fastai's `train_bn`); `n` may
    /// be at most the number of groups.
    pub fn freeze_to(&mut self, n: usize) -> Result<()> {
        if n > self.n_groups {
            bail!(
                "freeze_to({n}): the model has {} layer group(s); use 0..={}",
                self.n_groups,
                self.n_groups
            );
        }
        for p in &self.params {
            let frozen = p.group < n && !p.is_bn;
            let _ = p.tensor.set_requires_grad(!frozen);
        }
        self.frozen_to = n;
        self.rebuild_optimizer()
    }

    /// Trains only the last group (the head) and the BatchNorm layers.
    pub fn freeze(&mut self) {
        let n = self.n_groups.saturating_sub(1);
        if let Err(e) = self.freeze_to(n) {
            eprintln!("freeze: {e}");
        }
    }

    /// Trains everything.
    pub fn unfreeze(&mut self) {
        if let Err(e) = self.freeze_to(0) {
            eprintln!("unfreeze: {e}");
        }
    }

    /// Number of frozen groups.
    pub fn frozen_to(&self) -> usize {
        self.frozen_to
    }

    /// Names of the parameters that are trained now.
    pub fn trainable_names(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|p| p.tensor.requires_grad())
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The parameters trained now (for callbacks that read or change gradients).
    pub fn trainable_params(&self) -> impl Iterator<Item = &Tensor> {
        self.params
            .iter()
            .map(|p| &p.tensor)
            .filter(|t| t.requires_grad())
    }

    /// The device the model is on.
    pub fn device(&self) -> Device {
        self.model.var_store().device()
    }

    /// Adds a standing callback (it runs in every fit until removed).
    pub fn add_cb(&mut self, cb: impl Callback) -> &mut Self {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// Removes the standing callbacks of type `T` (e.g. `remove_cb::<ProgressCallback>()`);
    /// returns how many.
    pub fn remove_cb<T: Callback>(&mut self) -> usize {
        let before = self.callbacks.len();
        self.callbacks
            .retain(|c| !(c.as_ref() as &dyn std::any::Any).is::<T>());
        before - self.callbacks.len()
    }

    /// The standing callback of type `T`, if there is one.
    pub fn cb<T: Callback>(&self) -> Option<&T> {
        self.callbacks
            .iter()
            .find_map(|c| (c.as_ref() as &dyn std::any::Any).downcast_ref::<T>())
    }

    /// [`Learner::cb`], mutable.
    pub fn cb_mut<T: Callback>(&mut self) -> Option<&mut T> {
        self.callbacks
            .iter_mut()
            .find_map(|c| (c.as_mut() as &mut dyn std::any::Any).downcast_mut::<T>())
    }

    /// fastai's `hook_output`: keeps the output of the model's point `name` (see
    /// `learn.summary()` for the names; `"body"` for a cnn_learner's feature map) during each
    /// forward pass, and with `grad` its gradient after `backward()`. The hook ends when the
    /// returned value is dropped.
    pub fn hook_output(&self, name: &str, grad: bool) -> Result<Hook> {
        let Some(taps) = self.model.taps() else {
            bail!(
                "this model declares no hook points: build it with Net::new and the library's \
                 layers (sequential, conv_layer, ...), or implement Model::taps"
            );
        };
        Ok(taps.hook_output(name, grad))
    }

    /// fastai's `ShowGraph`: a chart of the training and validation losses, drawn under the
    /// progress table and redrawn in place after every epoch (and every `every` batches, with
    /// [`show_graph_every`](Self::show_graph_every)). Off by default; only in the fastai kernel
    /// (elsewhere `recorder.plot_losses()` after training).
    pub fn show_graph(&mut self, on: bool) -> &mut Self {
        self.show_graph_every(if on { Some(0) } else { None })
    }

    /// [`show_graph`](Self::show_graph), also redrawn every `every` batches (`Some(0)`: only
    /// after each epoch; `None`: off).
    pub fn show_graph_every(&mut self, every: Option<usize>) -> &mut Self {
        if let Some(p) = self.cb_mut::<progress::ProgressCallback>() {
            p.graph_every = every;
        }
        self
    }

    /// Saves the weights to `<model_dir>/<name>.safetensors` (written to a temporary file and
    /// renamed, so a crash never leaves a half file in place of a good one). Returns the path.
    pub fn save(&self, name: &str) -> Result<PathBuf> {
        let path = self.model_dir.join(format!("{name}.safetensors"));
        let vs = self.model.var_store();
        crate::error::write_atomically(&path, "saving the model", |tmp| {
            vs.save(tmp).map_err(Error::from)
        })?;
        Ok(path)
    }

    /// Loads weights saved by [`Learner::save`]. A missing, corrupt or mismatched file is an
    /// error and leaves the current weights unchanged.
    pub fn load(&mut self, name: &str) -> Result<()> {
        let path = self.model_dir.join(format!("{name}.safetensors"));
        if !path.is_file() {
            bail!(
                "{} does not exist (saved models: {:?})",
                path.display(),
                self.saved_models()
            );
        }
        let tensors = Tensor::read_safetensors(&path).map_err(|e| {
            Error::Msg(format!(
                "{} is not a readable weight file: {e}",
                path.display()
            ))
        })?;
        let by_name: BTreeMap<String, Tensor> = tensors.into_iter().collect();
        let vars = self.model.var_store().variables();
        for (name, var) in &vars {
            match by_name.get(name) {
                Some(t) if t.size() == var.size() => {}
                Some(t) => bail!(
                    "{}: {name} has shape {:?}, the model needs {:?}",
                    path.display(),
                    t.size(),
                    var.size()
                ),
                None => bail!(
                    "{} lacks {name}: it was saved from another model",
                    path.display()
                ),
            }
        }
        tch::no_grad(|| {
            for (name, var) in &vars {
                let mut v = var.shallow_clone();
                v.copy_(&by_name[name].to_device(v.device()).to_kind(v.kind()));
            }
        });
        Ok(())
    }

    /// Names of the models saved in `model_dir`.
    pub fn saved_models(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.model_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_suffix(".safetensors"))
                            .map(String::from)
                    })
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// A copy of every variable's values (weights and BatchNorm statistics).
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Tensor> {
        models::model::snapshot(self.model.var_store())
    }

    /// Puts back values taken by [`Learner::snapshot`].
    pub(crate) fn restore(&mut self, snap: &BTreeMap<String, Tensor>) {
        models::model::restore(self.model.var_store(), snap)
    }
}

impl<D: Data + 'static> Learner<D> {
    /// The learner as callbacks see it.
    pub fn as_dyn(&mut self) -> &mut Learner<dyn Data> {
        self
    }

    /// Trains `epochs` epochs at a constant learning rate (`1e-3`, or `slice(...)` per group).
    pub fn fit(&mut self, epochs: usize, lr: impl Into<Lr>) -> Result<()> {
        let lrs = lr.into().per_group(self.n_groups);
        let mut c = ConstantLr {
            lrs,
            mom: self.opts.betas.0,
        };
        self.fit_with(epochs, &mut [&mut c])
    }

    /// fastai's `fit_one_cycle(epochs, max_lr)`; `None` = `slice(3e-3)`.
    pub fn fit_one_cycle(&mut self, epochs: usize, max_lr: Option<Lr>) -> Result<()> {
        let sched = OneCycle::new(
            max_lr.unwrap_or(DEFAULT_LR).per_group(self.n_groups),
            epochs * self.data.n_train_batches(),
        );
        self.fit_one_cycle_with(epochs, sched)
    }

    /// [`fit_one_cycle`](Self::fit_one_cycle) with another warm-up share: fastai's
    /// `fit_one_cycle(epochs, max_lr, pct_start=...)` (lesson 3's camvid uses 0.9 and 0.8).
    pub fn fit_one_cycle_pct(
        &mut self,
        epochs: usize,
        max_lr: Option<Lr>,
        pct_start: f64,
    ) -> Result<()> {
        if !(0.0..=1.0).contains(&pct_start) {
            bail!("pct_start is a share of the iterations, in [0, 1]; got {pct_start}");
        }
        let mut sched = OneCycle::new(
            max_lr.unwrap_or(DEFAULT_LR).per_group(self.n_groups),
            epochs * self.data.n_train_batches(),
        );
        sched.pct_start = pct_start;
        self.fit_one_cycle_with(epochs, sched)
    }

    /// One cycle with a custom schedule (pct_start, div_factor, moms).
    pub fn fit_one_cycle_with(&mut self, epochs: usize, sched: OneCycle) -> Result<()> {
        self.fit_with(epochs, &mut [&mut OneCycleSchedule(sched)])
    }

    /// fastai v2's `fine_tune`: one frozen one-cycle epoch at `lr` (default 2e-3, pct_start 0.99),
    /// then `epochs` unfrozen with `slice(lr/200, lr/2)` and div_factor 5.
    pub fn fine_tune(&mut self, epochs: usize, base_lr: Option<f64>) -> Result<()> {
        let lr = base_lr.unwrap_or(2e-3);
        let g = self.n_groups;
        self.freeze();
        let n = self.data.n_train_batches();
        let mut s = OneCycle::new(vec![lr; g], n);
        s.pct_start = 0.99;
        self.fit_one_cycle_with(1, s)?;
        self.unfreeze();
        let mut s = OneCycle::new(
            Lr::Range(lr / 2.0 / 100.0, lr / 2.0).per_group(g),
            epochs * n,
        );
        s.div_factor = 5.0;
        self.fit_one_cycle_with(epochs, s)
    }

    /// The training loop with extra callbacks for this fit only (a schedule, say), run with the
    /// standing ones in their order.
    pub fn fit_with(&mut self, epochs: usize, extra: &mut [&mut dyn Callback]) -> Result<()> {
        self.as_dyn().run_fit(epochs, extra, fit::Show::Table, true)
    }

    /// One optimisation step on a batch (model in training mode), through the standing
    /// callbacks (mixed precision's scaling, gradient clipping): forward, loss, backward, step
    /// at the learning rates and momentum last set. Returns the batch's loss; a loss that is not
    /// finite is returned without a step. Benchmarks call this on fixed tensors.
    pub fn train_step(&mut self, x: &Tensor, y: &Tensor) -> Result<f64> {
        self.as_dyn().step_alone(x, y)
    }

    /// Validation loss and metrics (model in eval mode, no gradients).
    pub fn validate(&mut self) -> Result<(f64, Vec<(String, f64)>)> {
        self.as_dyn().validate_alone()
    }

    /// Raw outputs and targets for the whole validation set, on the CPU, in the set's order.
    pub fn get_preds_logits(&mut self) -> Result<(Tensor, Tensor)> {
        self.as_dyn().collect_preds()
    }

    /// fastai's `get_preds()`: predictions (the loss's activation applied: probabilities for
    /// cross-entropy) and targets for the validation set.
    pub fn get_preds(&mut self) -> Result<(Tensor, Tensor)> {
        let (out, targets) = self.get_preds_logits()?;
        Ok((self.loss_func.activation.apply(&out), targets))
    }
}

/// A summary, as a cell that ends in `learn` shows it: the architecture, the data, how much of
/// the model trains, the metrics and the last fit's results.
impl<D: Data + ?Sized> std::fmt::Display for Learner<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (total, trainable) = self.params.iter().fold((0i64, 0i64), |(t, tr), p| {
            let n = p.tensor.numel() as i64;
            (t + n, tr + if p.tensor.requires_grad() { n } else { 0 })
        });
        let how = match self.pretrained {
            Some(true) => " (pretrained)",
            Some(false) => " (from scratch)",
            None => "",
        };
        writeln!(
            f,
            "Learner: {}{how}, {}, on {:?}",
            self.model.name(),
            self.data.describe(),
            self.data.device()
        )?;
        let frozen = match self.frozen_to {
            0 => "nothing frozen".to_string(),
            n => format!(
                "{n} of {} layer groups frozen, BatchNorm trainable",
                self.n_groups
            ),
        };
        writeln!(
            f,
            "model: {:.2}M parameters, {:.2}M trainable ({frozen}); loss {}",
            total as f64 / 1e6,
            trainable as f64 / 1e6,
            self.loss_func.name()
        )?;
        let metrics: Vec<String> = self.metrics.iter().map(|m| m.name()).collect();
        write!(
            f,
            "metrics: {}",
            if metrics.is_empty() {
                "none".to_string()
            } else {
                metrics.join(", ")
            }
        )?;
        if let Some(valid_loss) = self.recorder.valid_losses.last() {
            write!(
                f,
                "\nlast fit: {} epoch(s), valid_loss {valid_loss:.4}",
                self.recorder.valid_losses.len()
            )?;
            for (name, value) in self.recorder.metrics.last().into_iter().flatten() {
                write!(f, ", {name} {value:.4}")?;
            }
        }
        Ok(())
    }
}

impl<D: Data + ?Sized> std::fmt::Debug for Learner<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
