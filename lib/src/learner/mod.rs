//! The Learner: a model, its data, an optimizer, and the training loop, as in fastai v1.
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
//! The loop ([`Learner::fit_with`]) only runs batches and validation; the one-cycle schedule, the
//! recorder, the progress display and interruption are callbacks around it.

pub mod callback;
pub mod export;
pub mod interrupt;
pub mod lr_find;
pub mod metrics;
pub mod mixed;
pub mod optim;
pub mod plots;
pub mod progress;
pub mod recorder;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tch::nn::{self, ModuleT};
use tch::{COptimizer, Device, Kind, Tensor};

use crate::bail;
use crate::data::ImageDataBunch;
use crate::error::{Error, Result};
use crate::models::{self, Arch, CnnModel};
use callback::{Callback, FitState, SmoothLoss};
use metrics::Metric;
use optim::Lr;
use recorder::Recorder;
use schedule::OneCycle;

/// Number of parameter groups of a cnn_learner: early body, late body, head.
pub const N_GROUPS: usize = 3;

/// fastai v1's default learning rate, `slice(3e-3)`: 3e-3 for the head, 3e-4 for the body.
pub const DEFAULT_LR: Lr = Lr::Stop(3e-3);

/// Options of [`cnn_learner_with`].
#[derive(Debug, Clone)]
pub struct LearnerOptions {
    /// Start from ImageNet weights (`false`: train from scratch).
    pub pretrained: bool,
    /// Decoupled weight decay.
    pub wd: f64,
    /// Adam's betas (beta1 is replaced by the momentum schedule).
    pub betas: (f64, f64),
    pub eps: f64,
}

impl Default for LearnerOptions {
    fn default() -> Self {
        LearnerOptions {
            pretrained: true,
            wd: 1e-2,
            betas: (0.9, 0.99),
            eps: 1e-5,
        }
    }
}

/// A variable of the model with its optimizer group.
struct Param {
    name: String,
    tensor: Tensor,
    group: usize,
}

pub struct Learner {
    pub data: ImageDataBunch,
    pub arch: Arch,
    pub vs: nn::VarStore,
    pub model: CnnModel,
    pub metrics: Vec<Metric>,
    pub recorder: Recorder,
    pub opts: LearnerOptions,
    /// Where `save`/`load` put files: `<data.path>/models`.
    pub model_dir: PathBuf,
    /// Extra callbacks, run after the built-in ones.
    pub callbacks: Vec<Box<dyn Callback>>,
    params: Vec<Param>,
    opt: COptimizer,
    frozen_to: usize,
    /// Mixed precision: autocast plus this loss scaler (see [`Learner::to_fp16`]).
    mixed: Option<mixed::LossScaler>,
}

/// A summary, as a cell that ends in `learn` shows it: the architecture, the data, how much of
/// the model trains, the metrics and the last fit's results.
impl std::fmt::Display for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (total, trainable) = self.params.iter().fold((0i64, 0i64), |(t, tr), p| {
            let n = p.tensor.numel() as i64;
            (t + n, tr + if p.tensor.requires_grad() { n } else { 0 })
        });
        writeln!(
            f,
            "Learner: {} ({}), {} classes, {}x{} images, bs {}, on {:?}",
            self.arch.name(),
            if self.opts.pretrained {
                "pretrained"
            } else {
                "from scratch"
            },
            self.data.c(),
            self.data.size,
            self.data.size,
            self.data.bs,
            self.data.device()
        )?;
        let frozen = match self.frozen_to {
            0 => "nothing frozen".to_string(),
            n => format!("{n} of {N_GROUPS} layer groups frozen, BatchNorm trainable"),
        };
        writeln!(
            f,
            "model: {:.2}M parameters, {:.2}M trainable ({frozen})",
            total as f64 / 1e6,
            trainable as f64 / 1e6
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

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A learner for transfer learning: `arch`'s pretrained body, fastai's head for the data's
/// classes, the body frozen (its BatchNorm layers excepted).
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
    if data.c() < 2 {
        bail!(
            "the data has {} class(es); a classifier needs at least 2",
            data.c()
        );
    }
    let device = data.device();
    let mut vs = nn::VarStore::new(device);
    let model = models::cnn_model(arch, &vs.root(), data.c() as i64);
    if opts.pretrained {
        let path = models::weights::pretrained_path(arch)?;
        models::weights::load_pretrained(&mut vs, &path, &["head."])?;
    }
    let mut learn = Learner::from_parts(data, arch, vs, model, metrics, opts)?;
    if learn.opts.pretrained {
        learn.freeze();
    }
    Ok(learn)
}

/// Which group a variable belongs to (as the body builders assign them).
pub fn group_of(arch: Arch, name: &str) -> usize {
    if name.starts_with("head.") {
        return 2;
    }
    match arch {
        Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50 => {
            usize::from(name.starts_with("layer3") || name.starts_with("layer4"))
        }
        Arch::MobilenetV2 => {
            let idx: usize = name
                .split('.')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            usize::from(idx > 9)
        }
        Arch::EfficientnetLite0 => models::efficientnet::layer_group_of(name).min(1),
    }
}

impl Learner {
    fn from_parts(
        data: ImageDataBunch,
        arch: Arch,
        vs: nn::VarStore,
        model: CnnModel,
        metrics: &[Metric],
        opts: LearnerOptions,
    ) -> Result<Learner> {
        let mut params: Vec<Param> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, tensor)| Param {
                group: group_of(arch, &name),
                name,
                tensor,
            })
            .collect();
        params.sort_by(|a, b| a.name.cmp(&b.name));
        let opt = COptimizer::adamw(1e-3, opts.betas.0, opts.betas.1, opts.wd, opts.eps, false)?;
        let model_dir = data.path.join("models");
        let mut learn = Learner {
            data,
            arch,
            vs,
            model,
            metrics: metrics.to_vec(),
            recorder: Recorder::default(),
            opts,
            model_dir,
            callbacks: Vec::new(),
            params,
            opt,
            frozen_to: 0,
            mixed: None,
        };
        learn.rebuild_optimizer()?;
        Ok(learn)
    }

    /// A fresh optimizer over the trainable (not frozen) parameters, in their groups. Frozen
    /// parameters are not in it at all, so no step (nor weight decay) ever touches them.
    fn rebuild_optimizer(&mut self) -> Result<()> {
        let mut opt = COptimizer::adamw(
            1e-3,
            self.opts.betas.0,
            self.opts.betas.1,
            self.opts.wd,
            self.opts.eps,
            false,
        )?;
        for p in &self.params {
            if p.tensor.requires_grad() {
                opt.add_parameters(&p.tensor, p.group)?;
            }
        }
        self.opt = opt;
        Ok(())
    }

    /// Freezes groups `0..n` (BatchNorm layers stay trainable, as fastai's `train_bn`).
    pub fn freeze_to(&mut self, n: usize) {
        for p in &self.params {
            let is_bn = p.group < 2 && p.tensor.dim() == 1; // bodies have no conv biases
            let frozen = p.group < n && !is_bn;
            let _ = p.tensor.set_requires_grad(!frozen);
        }
        self.frozen_to = n;
        self.rebuild_optimizer().expect("rebuilding the optimizer");
    }

    /// Trains only the head (and the body's BatchNorm layers).
    pub fn freeze(&mut self) {
        self.freeze_to(N_GROUPS - 1);
    }

    /// Trains everything.
    pub fn unfreeze(&mut self) {
        self.freeze_to(0);
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

    /// The device the model is on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Trains `epochs` epochs at a constant learning rate.
    pub fn fit(&mut self, epochs: usize, lr: impl Into<Lr>) -> Result<()> {
        let lrs = lr.into().per_group(N_GROUPS);
        struct Constant(Vec<f64>, f64);
        impl Callback for Constant {
            fn before_batch(&mut self, s: &mut FitState) {
                s.lrs = self.0.clone();
                s.mom = self.1;
            }
        }
        let beta1 = self.opts.betas.0;
        self.fit_with(epochs, &mut [&mut Constant(lrs, beta1)])
    }

    /// fastai's `fit_one_cycle(epochs, max_lr)`; `None` = `slice(3e-3)`.
    pub fn fit_one_cycle(&mut self, epochs: usize, max_lr: Option<Lr>) -> Result<()> {
        let sched = OneCycle::new(
            max_lr.unwrap_or(DEFAULT_LR).per_group(N_GROUPS),
            epochs * self.data.train_dl.len(),
        );
        self.fit_one_cycle_with(epochs, sched)
    }

    /// One cycle with a custom schedule (pct_start, div_factor, moms).
    pub fn fit_one_cycle_with(&mut self, epochs: usize, sched: OneCycle) -> Result<()> {
        struct Sched(OneCycle);
        impl Callback for Sched {
            fn before_batch(&mut self, s: &mut FitState) {
                (s.lrs, s.mom) = self.0.at(s.iter);
            }
        }
        self.fit_with(epochs, &mut [&mut Sched(sched)])
    }

    /// fastai v2's `fine_tune`: one frozen one-cycle epoch at `lr` (default 2e-3, pct_start 0.99),
    /// then `epochs` unfrozen with `slice(lr/200, lr/2)` and div_factor 5.
    pub fn fine_tune(&mut self, epochs: usize, base_lr: Option<f64>) -> Result<()> {
        let lr = base_lr.unwrap_or(2e-3);
        self.freeze();
        let n = self.data.train_dl.len();
        let mut s = OneCycle::new(vec![lr; N_GROUPS], n);
        s.pct_start = 0.99;
        self.fit_one_cycle_with(1, s)?;
        self.unfreeze();
        let mut s = OneCycle::new(
            Lr::Range(lr / 2.0 / 100.0, lr / 2.0).per_group(N_GROUPS),
            epochs * n,
        );
        s.div_factor = 5.0;
        self.fit_one_cycle_with(epochs, s)
    }

    /// The training loop: `epochs` epochs over the training data, validation after each; the
    /// callbacks in `extra` (a schedule) run first, then the recorder, the progress display and
    /// the learner's own callbacks.
    pub fn fit_with(&mut self, epochs: usize, extra: &mut [&mut dyn Callback]) -> Result<()> {
        self.fit_inner(epochs, extra, true)
    }

    /// [`Learner::fit_with`], optionally without the validation pass after each epoch (lr_find
    /// only needs the training loss).
    pub(crate) fn fit_inner(
        &mut self,
        epochs: usize,
        extra: &mut [&mut dyn Callback],
        validate: bool,
    ) -> Result<()> {
        let n_batches = self.data.train_dl.len();
        if n_batches == 0 {
            bail!(
                "the training set has {} items, fewer than one batch of {}",
                self.data.train_ds.len(),
                self.data.bs
            );
        }
        let mut s = FitState {
            n_epochs: epochs,
            n_iter: epochs * n_batches,
            n_batches,
            lrs: vec![1e-3; N_GROUPS],
            mom: self.opts.betas.0,
            ..Default::default()
        };
        let mut progress =
            progress::ProgressCallback::new(self.metrics.iter().map(|m| m.name()).collect());
        let mut recorder = std::mem::take(&mut self.recorder);
        let mut user = std::mem::take(&mut self.callbacks);
        let result = {
            let mut cbs: Vec<&mut dyn Callback> = Vec::new();
            for c in extra.iter_mut() {
                cbs.push(&mut **c);
            }
            cbs.push(&mut recorder);
            cbs.push(&mut progress);
            for c in user.iter_mut() {
                cbs.push(c.as_mut());
            }
            self.run_loop(&mut s, &mut cbs, validate)
        };
        self.recorder = recorder;
        self.callbacks = user;
        result
    }

    fn run_loop(
        &mut self,
        s: &mut FitState,
        cbs: &mut [&mut dyn Callback],
        validate: bool,
    ) -> Result<()> {
        interrupt::arm();
        let mut smooth = SmoothLoss::default();
        cbs.iter_mut().for_each(|c| c.before_fit(s));
        let mut failure = None;
        'epochs: for epoch in 0..s.n_epochs {
            s.epoch = epoch;
            s.batch = 0;
            s.valid_loss = None;
            cbs.iter_mut().for_each(|c| c.before_epoch(s));
            for b in self.data.train_dl.iter() {
                cbs.iter_mut().for_each(|c| c.before_batch(s));
                for (g, lr) in s.lrs.iter().enumerate() {
                    self.opt.set_learning_rate_group(g, *lr)?;
                }
                self.opt.set_momentum(s.mom)?;
                let value = self.train_step(&b.x, &b.y)?;
                if !value.is_finite() {
                    failure = Some(format!(
                        "the training loss became {value} at epoch {epoch}, batch {} (learning rate {:.2e}): \
                         the learning rate is too high for this model; try one 10x smaller (lr_find helps)",
                        s.batch,
                        s.lrs.last().copied().unwrap_or(0.0)
                    ));
                    s.stop_reason = failure.clone();
                    break 'epochs;
                }
                s.loss = value;
                s.smooth_loss = smooth.add(value);
                s.iter += 1;
                s.batch += 1;
                cbs.iter_mut().for_each(|c| c.after_batch(s));
                if interrupt::requested() {
                    s.stop_reason = Some(format!(
                        "training interrupted at epoch {epoch}, batch {}/{}; the weights are kept as they are",
                        s.batch, s.n_batches
                    ));
                }
                if s.stop || s.stop_reason.is_some() {
                    break 'epochs;
                }
            }
            if validate {
                let (valid_loss, metrics) = self.validate()?;
                s.valid_loss = Some(valid_loss);
                s.metrics = metrics;
            }
            cbs.iter_mut().for_each(|c| c.after_epoch(s));
        }
        interrupt::clear();
        cbs.iter_mut().for_each(|c| c.after_fit(s));
        match failure {
            Some(f) => Err(Error::Msg(f)),
            None => Ok(()),
        }
    }

    /// One optimisation step on a batch (model in training mode): forward, cross-entropy,
    /// backward, optimizer step at the learning rates and momentum last set. Returns the batch's
    /// loss; a loss that is not finite is returned without a step, leaving the weights as they
    /// were. `fit` calls this for every batch; benchmarks call it on fixed tensors.
    ///
    /// With [`Learner::to_fp16`], the forward pass runs under autocast and the loss is scaled for
    /// `backward`; a step whose unscaled gradients are not finite is skipped (the weights stay
    /// as they were) and the scale lowered.
    pub fn train_step(&mut self, x: &Tensor, y: &Tensor) -> Result<f64> {
        let Some(scaler) = self.mixed.as_mut() else {
            let loss = self.model.forward_t(x, true).cross_entropy_for_logits(y);
            let value = loss.double_value(&[]);
            if value.is_finite() {
                self.opt.zero_grad()?;
                loss.backward();
                self.opt.step()?;
            }
            return Ok(value);
        };
        mixed::step(&self.model, &mut self.opt, &self.params, scaler, x, y)
    }

    /// Validation loss and metrics (model in eval mode, no gradients).
    pub fn validate(&mut self) -> Result<(f64, Vec<(String, f64)>)> {
        let (logits, targets) = self.get_preds_logits()?;
        if targets.numel() == 0 {
            return Ok((
                f64::NAN,
                self.metrics.iter().map(|m| (m.name(), f64::NAN)).collect(),
            ));
        }
        let loss = logits.cross_entropy_for_logits(&targets).double_value(&[]);
        let metrics = self
            .metrics
            .iter()
            .map(|m| (m.name(), m.compute(&logits, &targets)))
            .collect();
        Ok((loss, metrics))
    }

    /// Logits and targets for the whole validation set, on the CPU, in the set's order.
    pub fn get_preds_logits(&mut self) -> Result<(Tensor, Tensor)> {
        let (mut outs, mut ys) = (Vec::new(), Vec::new());
        let _guard = tch::no_grad_guard();
        for b in self.data.valid_dl.iter() {
            if interrupt::requested() {
                interrupt::clear();
                bail!("interrupted during validation; the weights are kept as they are");
            }
            outs.push(self.model.forward_t(&b.x, false).to_device(Device::Cpu));
            ys.push(b.y.to_device(Device::Cpu));
        }
        if outs.is_empty() {
            return Ok((
                Tensor::zeros([0, self.data.c() as i64], (Kind::Float, Device::Cpu)),
                Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
            ));
        }
        Ok((Tensor::cat(&outs, 0), Tensor::cat(&ys, 0)))
    }

    /// fastai's `get_preds()`: probabilities `(N, c)` and targets `(N,)` on the validation set.
    pub fn get_preds(&mut self) -> Result<(Tensor, Tensor)> {
        let (logits, targets) = self.get_preds_logits()?;
        Ok((logits.softmax(-1, Kind::Float), targets))
    }

    /// Saves the weights to `<model_dir>/<name>.safetensors` (written to a temporary file and
    /// renamed, so a crash never leaves a half file in place of a good one). Returns the path.
    pub fn save(&self, name: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.model_dir)?;
        let path = self.model_dir.join(format!("{name}.safetensors"));
        // (tch picks the file format from the extension: the temporary name must end in .safetensors)
        let tmp = self
            .model_dir
            .join(format!(".{name}.tmp-{}.safetensors", std::process::id()));
        self.vs
            .save(&tmp)
            .map_err(|e| Error::Msg(format!("saving {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, &path)?;
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
        let vars = self.vs.variables();
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
        tch::no_grad(|| {
            self.vs
                .variables()
                .into_iter()
                .map(|(n, t)| (n, t.detach().copy()))
                .collect()
        })
    }

    /// Puts back values taken by [`Learner::snapshot`].
    pub(crate) fn restore(&mut self, snap: &BTreeMap<String, Tensor>) {
        tch::no_grad(|| {
            for (name, var) in self.vs.variables() {
                if let Some(src) = snap.get(&name) {
                    let mut v = var.shallow_clone();
                    v.copy_(src);
                }
            }
        });
    }
}
