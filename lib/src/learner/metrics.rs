//! Metrics: computed over the whole validation set after every epoch and shown in the table.
//!
//! A metric is an [`Accumulator`] (name, `reset`, `accumulate` batch by batch, `value`); a
//! [`Metric`] is what a learner is given - a recipe that makes a fresh accumulator for each
//! validation pass. Ready: `error_rate`, `accuracy`, `top_k_accuracy(k)`, `accuracy_thresh(t)`,
//! `fbeta(beta, t)`, `mse`, `rmse`, `exp_rmspe`, `dice`. Your own:
//!
//! ```no_run
//! # use fastai::vision::*;
//! // a function of one batch, averaged over the set weighted by batch size (fastai's AvgMetric)
//! let mae = Metric::from_fn("mae", |pred, targ| (pred - targ).abs().mean(Kind::Float).double_value(&[]));
//! ```
//! or implement [`Accumulator`] and pass `Metric::new(|| MyMetric::default())`.
//!
//! Predictions are the model's raw outputs (logits), as fastai's metrics take them.

use std::sync::Arc;

use tch::{Kind, Tensor};

/// A metric's state over one validation pass.
pub trait Accumulator: Send {
    /// The column name in the results table.
    fn name(&self) -> String;
    /// Forgets everything (start of a validation pass).
    fn reset(&mut self);
    /// Adds one batch: raw predictions and targets.
    fn accumulate(&mut self, pred: &Tensor, targ: &Tensor);
    /// The value over everything accumulated (NaN if nothing was).
    fn value(&self) -> f64;
}

type Maker = dyn Fn() -> Box<dyn Accumulator> + Send + Sync;

/// A metric as a learner takes it (`&[error_rate, accuracy]`).
#[derive(Clone)]
pub struct Metric(Recipe);

#[derive(Clone)]
enum Recipe {
    Builtin(Builtin),
    Custom(Arc<Maker>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Builtin {
    ErrorRate,
    Accuracy,
    TopK(i64),
    AccuracyThresh {
        thresh: f64,
        sigmoid: bool,
    },
    Fbeta {
        beta: f64,
        thresh: f64,
        sigmoid: bool,
    },
    Mse,
    Rmse,
    ExpRmspe,
    Dice {
        iou: bool,
    },
    /// Segmentation accuracy over the pixels whose target is not `void`.
    Masked {
        void: i64,
        foreground: bool,
    },
}

/// `1 - accuracy`.
#[allow(non_upper_case_globals)]
pub const error_rate: Metric = Metric(Recipe::Builtin(Builtin::ErrorRate));
/// The share of items whose highest output is the target class.
#[allow(non_upper_case_globals)]
pub const accuracy: Metric = Metric(Recipe::Builtin(Builtin::Accuracy));
/// Mean squared error.
#[allow(non_upper_case_globals)]
pub const mse: Metric = Metric(Recipe::Builtin(Builtin::Mse));
/// Root mean squared error.
#[allow(non_upper_case_globals)]
pub const rmse: Metric = Metric(Recipe::Builtin(Builtin::Rmse));
/// Root mean squared percentage error of `exp` of predictions and targets (for log targets,
/// lesson 6's Rossmann).
#[allow(non_upper_case_globals)]
pub const exp_rmspe: Metric = Metric(Recipe::Builtin(Builtin::ExpRmspe));
/// Dice coefficient of a two-class segmentation (`2 |A n B| / (|A| + |B|)`, class 1 against 0).
#[allow(non_upper_case_globals)]
pub const dice: Metric = Metric(Recipe::Builtin(Builtin::Dice { iou: false }));

/// Top-k accuracy: the target is among the k highest outputs.
pub fn top_k_accuracy(k: i64) -> Metric {
    Metric(Recipe::Builtin(Builtin::TopK(k)))
}

/// Multi-label accuracy: sigmoid of each output above `thresh` compared with the 0/1 targets,
/// averaged over every label of a batch (fastai v1's `accuracy_thresh`, v2's `accuracy_multi`,
/// sigmoid on). Over a validation set: the per-batch values averaged with batch-size weights, as
/// v1's `AverageMetric` (with the same number of labels per item, that is the share over all
/// labels of the set).
pub fn accuracy_thresh(thresh: f64) -> Metric {
    Metric(Recipe::Builtin(Builtin::AccuracyThresh {
        thresh,
        sigmoid: true,
    }))
}

/// Multi-label F-beta as fastai v1's `fbeta(thresh, beta, eps=1e-9, sigmoid=True)`: sigmoid,
/// outputs above `thresh` are predicted labels; per item, precision = tp / (predicted + eps),
/// recall = tp / (actual + eps), F = (1 + beta^2) p r / (beta^2 p + r + eps); the mean over the
/// items of a batch. Over a validation set: per-batch values averaged with batch-size weights
/// (v1's `AverageMetric`), i.e. the mean over all items ("samples" averaging; an item with no
/// labels and none predicted counts 0). Lesson 3's planet uses `fbeta(2.0, 0.2)` (v1's
/// `fbeta(thresh=0.2, beta=2)`: note the order of the arguments).
pub fn fbeta(beta: f64, thresh: f64) -> Metric {
    Metric(Recipe::Builtin(Builtin::Fbeta {
        beta,
        thresh,
        sigmoid: true,
    }))
}

/// Segmentation accuracy that leaves out the pixels whose target is `void_code` (course-v3
/// lesson 3's `acc_camvid`: `void_code` is CamVid's "Void" class): the argmax over the class axis
/// (1) compared with the target where the target is not `void_code`, the mean over those pixels.
/// As in fastai, that is a per-batch value averaged over the validation set with batch-size
/// weights; a batch with only void pixels makes it NaN, as in fastai. Targets `(N, H, W)` or
/// `(N, 1, H, W)`.
pub fn accuracy_void(void_code: i64) -> Metric {
    Metric(Recipe::Builtin(Builtin::Masked {
        void: void_code,
        foreground: false,
    }))
}

/// fastai v2's `foreground_acc(bkg_idx)`: [`accuracy_void`] with the background class left out
/// (named `foreground_acc` in the results table).
pub fn foreground_acc(bkg_idx: i64) -> Metric {
    Metric(Recipe::Builtin(Builtin::Masked {
        void: bkg_idx,
        foreground: true,
    }))
}

impl Metric {
    /// A metric of your own: `make` returns a fresh accumulator.
    pub fn new<A: Accumulator + 'static>(make: impl Fn() -> A + Send + Sync + 'static) -> Metric {
        Metric(Recipe::Custom(Arc::new(move || Box::new(make()))))
    }

    /// A metric from a function of one batch `(pred, targ) -> value`, averaged over the
    /// validation set weighted by batch size (fastai's `AvgMetric`).
    pub fn from_fn(
        name: impl Into<String>,
        f: impl Fn(&Tensor, &Tensor) -> f64 + Send + Sync + 'static,
    ) -> Metric {
        let name = name.into();
        let f = Arc::new(f);
        Metric(Recipe::Custom(Arc::new(move || {
            let f = f.clone();
            Box::new(Avg::new(name.clone(), move |p, t| f(p, t)))
        })))
    }

    /// A fresh accumulator.
    pub fn accumulator(&self) -> Box<dyn Accumulator> {
        match &self.0 {
            Recipe::Custom(make) => make(),
            Recipe::Builtin(b) => b.accumulator(),
        }
    }

    /// The column name.
    pub fn name(&self) -> String {
        match &self.0 {
            Recipe::Builtin(b) => b.name(),
            Recipe::Custom(make) => make().name(),
        }
    }

    /// The metric over one set of predictions and targets at once.
    pub fn compute(&self, pred: &Tensor, targ: &Tensor) -> f64 {
        let mut a = self.accumulator();
        a.accumulate(pred, targ);
        a.value()
    }
}

impl std::fmt::Debug for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Builtin {
    fn name(self) -> String {
        match self {
            Builtin::ErrorRate => "error_rate".into(),
            Builtin::Accuracy => "accuracy".into(),
            Builtin::TopK(k) => format!("top_{k}_accuracy"),
            Builtin::AccuracyThresh { .. } => "accuracy_thresh".into(),
            Builtin::Fbeta { .. } => "fbeta".into(),
            Builtin::Mse => "mse".into(),
            Builtin::Rmse => "rmse".into(),
            Builtin::ExpRmspe => "exp_rmspe".into(),
            Builtin::Dice { iou: false } => "dice".into(),
            Builtin::Dice { iou: true } => "iou".into(),
            Builtin::Masked {
                foreground: false, ..
            } => "accuracy_void".into(),
            Builtin::Masked {
                foreground: true, ..
            } => "foreground_acc".into(),
        }
    }

    fn accumulator(self) -> Box<dyn Accumulator> {
        let name = self.name();
        match self {
            Builtin::ErrorRate => Box::new(Avg::new(name, |p, t| 1.0 - top_k(p, t, 1))),
            Builtin::Accuracy => Box::new(Avg::new(name, |p, t| top_k(p, t, 1))),
            Builtin::TopK(k) => Box::new(Avg::new(name, move |p, t| top_k(p, t, k))),
            Builtin::AccuracyThresh { thresh, sigmoid } => Box::new(Avg::new(name, move |p, t| {
                let p = if sigmoid {
                    p.sigmoid()
                } else {
                    p.shallow_clone()
                };
                p.gt(thresh)
                    .eq_tensor(&t.to_kind(Kind::Bool))
                    .to_kind(Kind::Float)
                    .mean(Kind::Float)
                    .double_value(&[])
            })),
            Builtin::Fbeta {
                beta,
                thresh,
                sigmoid,
            } => Box::new(Avg::new(name, move |p, t| {
                let p = if sigmoid {
                    p.sigmoid()
                } else {
                    p.shallow_clone()
                };
                let y_pred = p.gt(thresh).to_kind(Kind::Float);
                let y_true = t.to_kind(Kind::Float);
                let tp = (&y_pred * &y_true).sum_dim_intlist(1, false, Kind::Float);
                let precision = &tp / (y_pred.sum_dim_intlist(1, false, Kind::Float) + 1e-9);
                let recall = &tp / (y_true.sum_dim_intlist(1, false, Kind::Float) + 1e-9);
                let b2 = beta * beta;
                let num = (&precision * &recall) * (1.0 + b2);
                let den = precision * b2 + recall + 1e-9;
                (num / den).mean(Kind::Float).double_value(&[])
            })),
            Builtin::Mse | Builtin::Rmse => Box::new(Sums {
                name,
                root: self == Builtin::Rmse,
                exp_pct: false,
                sum: 0.0,
                n: 0,
            }),
            Builtin::ExpRmspe => Box::new(Sums {
                name,
                root: true,
                exp_pct: true,
                sum: 0.0,
                n: 0,
            }),
            Builtin::Masked { void, .. } => {
                Box::new(Avg::new(name, move |p, t| masked_accuracy(p, t, void)))
            }
            Builtin::Dice { iou } => Box::new(Dice {
                name,
                iou,
                inter: 0.0,
                union: 0.0,
            }),
        }
    }
}

/// Share of items whose target is among the `k` highest outputs (class axis 1; other axes,
/// e.g. pixels, count as items).
fn top_k(pred: &Tensor, targ: &Tensor, k: i64) -> f64 {
    let c = pred.size()[1];
    let flat = if pred.dim() > 2 {
        pred.movedim(&[1i64][..], &[-1i64][..]).reshape([-1, c])
    } else {
        pred.shallow_clone()
    };
    let (_, top) = flat.topk(k.min(c), 1, true, true);
    top.eq_tensor(&targ.reshape([-1, 1]).to_kind(Kind::Int64))
        .any_dim(1, false)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// The share of pixels (class axis 1) predicted right among those whose target is not `void`.
fn masked_accuracy(pred: &Tensor, targ: &Tensor, void: i64) -> f64 {
    let targ = if targ.dim() == pred.dim() && targ.size().get(1) == Some(&1) {
        targ.squeeze_dim(1)
    } else {
        targ.shallow_clone()
    };
    let targ = targ.to_kind(Kind::Int64);
    let keep = targ.ne(void);
    let right = pred.argmax(1, false).eq_tensor(&targ).logical_and(&keep);
    let kept = keep.sum(Kind::Float).double_value(&[]);
    right.sum(Kind::Float).double_value(&[]) / kept
}

/// fastai's `AvgMetric`: a per-batch value averaged with batch-size weights.
struct Avg<F> {
    name: String,
    f: F,
    total: f64,
    count: usize,
}

impl<F: Fn(&Tensor, &Tensor) -> f64 + Send> Avg<F> {
    fn new(name: String, f: F) -> Self {
        Avg {
            name,
            f,
            total: 0.0,
            count: 0,
        }
    }
}

impl<F: Fn(&Tensor, &Tensor) -> f64 + Send> Accumulator for Avg<F> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn reset(&mut self) {
        self.total = 0.0;
        self.count = 0;
    }
    fn accumulate(&mut self, pred: &Tensor, targ: &Tensor) {
        let n = pred.size().first().copied().unwrap_or(0) as usize;
        if n == 0 {
            return;
        }
        self.total += (self.f)(pred, targ) * n as f64;
        self.count += n;
    }
    fn value(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.total / self.count as f64
        }
    }
}

/// Sums of squared errors over every element: mse, rmse, exp_rmspe.
struct Sums {
    name: String,
    root: bool,
    exp_pct: bool,
    sum: f64,
    n: i64,
}

impl Accumulator for Sums {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn reset(&mut self) {
        self.sum = 0.0;
        self.n = 0;
    }
    fn accumulate(&mut self, pred: &Tensor, targ: &Tensor) {
        let p = pred.reshape([-1]).to_kind(Kind::Double);
        let t = targ.reshape([-1]).to_kind(Kind::Double);
        let err = if self.exp_pct {
            let (p, t) = (p.exp(), t.exp());
            (&t - p) / t
        } else {
            p - t
        };
        self.sum += (&err * &err).sum(Kind::Double).double_value(&[]);
        self.n += err.numel() as i64;
    }
    fn value(&self) -> f64 {
        if self.n == 0 {
            return f64::NAN;
        }
        let m = self.sum / self.n as f64;
        if self.root {
            m.sqrt()
        } else {
            m
        }
    }
}

/// Dice (or IoU) of class 1 over the whole set: predictions `(N, 2, ...)`, targets `(N, ...)`.
struct Dice {
    name: String,
    iou: bool,
    inter: f64,
    union: f64,
}

impl Accumulator for Dice {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn reset(&mut self) {
        self.inter = 0.0;
        self.union = 0.0;
    }
    fn accumulate(&mut self, pred: &Tensor, targ: &Tensor) {
        let p = pred.argmax(1, false).reshape([-1]).to_kind(Kind::Float);
        let t = targ.reshape([-1]).to_kind(Kind::Float);
        self.inter += (&p * &t).sum(Kind::Double).double_value(&[]);
        self.union += (p + t).sum(Kind::Double).double_value(&[]);
    }
    fn value(&self) -> f64 {
        if self.union == 0.0 {
            return f64::NAN;
        }
        if self.iou {
            self.inter / (self.union - self.inter)
        } else {
            2.0 * self.inter / self.union
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_known_predictions() {
        let logits = Tensor::from_slice(&[
            0.9f32, 0.1, 0.0, 0.2, 0.7, 0.1, 0.5, 0.4, 0.1, 0.1, 0.2, 0.7,
        ])
        .view([4, 3]);
        let targets = Tensor::from_slice(&[0i64, 1, 1, 0]);
        assert!((accuracy.compute(&logits, &targets) - 0.5).abs() < 1e-6);
        assert!((error_rate.compute(&logits, &targets) - 0.5).abs() < 1e-6);
        // top-2: item 2 (0.5, 0.4 -> classes 0, 1 contain 1), item 3 (0.7, 0.2 -> 2, 1: not 0)
        assert!((top_k_accuracy(2).compute(&logits, &targets) - 0.75).abs() < 1e-6);
        assert_eq!(top_k_accuracy(2).name(), "top_2_accuracy");

        // batch by batch equals all at once (weighted by batch size)
        let mut a = error_rate.accumulator();
        a.accumulate(&logits.narrow(0, 0, 3), &targets.narrow(0, 0, 3));
        a.accumulate(&logits.narrow(0, 3, 1), &targets.narrow(0, 3, 1));
        assert!((a.value() - 0.5).abs() < 1e-6, "{}", a.value());
        a.reset();
        assert!(a.value().is_nan());
    }

    #[test]
    fn multi_label_regression_and_segmentation_metrics() {
        // logits: sigmoid > 0.5 <=> logit > 0
        let logits = Tensor::from_slice(&[3.0f32, -3.0, 3.0, -3.0, -3.0, 3.0]).view([2, 3]);
        let t = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0]).view([2, 3]);
        assert!((accuracy_thresh(0.5).compute(&logits, &t) - 5.0 / 6.0).abs() < 1e-6);
        // item 0: tp 1, predicted 2, actual 1 -> p 0.5, r 1; f2 = 5 * 0.5 / (4 * 0.5 + 1) = 0.8333
        // item 1: p = r = 1 -> 1
        let f2 = fbeta(2.0, 0.5).compute(&logits, &t);
        assert!((f2 - (5.0 * 0.5 / 3.0 + 1.0) / 2.0).abs() < 1e-6, "{f2}");

        let p = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        let y = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 6.0]);
        assert!((mse.compute(&p, &y) - 1.0).abs() < 1e-6);
        assert!((rmse.compute(&p, &y) - 1.0).abs() < 1e-6);
        let e = exp_rmspe.compute(&p.log(), &y.log()); // ((6-4)/6)^2 / 4 -> sqrt
        assert!(
            (e - ((1.0f64 / 3.0).powi(2) / 4.0).sqrt()).abs() < 1e-6,
            "{e}"
        );

        // 2 images of 2x2 pixels, 2 classes: predicted 1 where logit 1 > logit 0
        let seg = Tensor::from_slice(&[
            0.0f32, 0.0, 1.0, 1.0, /* class 1: */ 1.0, 1.0, 0.0,
            0.0, // img 0: pred 1 1 0 0
            1.0, 1.0, 1.0, 1.0, /* class 1: */ 0.0, 0.0, 0.0, 2.0, // img 1: pred 0 0 0 1
        ])
        .view([2, 2, 2, 2]);
        let masks = Tensor::from_slice(&[1i64, 0, 0, 0, 0, 0, 0, 1]).view([2, 2, 2]);
        // intersection 2, |pred| 3, |target| 2 -> dice 4/5
        assert!((dice.compute(&seg, &masks) - 0.8).abs() < 1e-6);
        // per-pixel accuracy: 7 of 8
        assert!((accuracy.compute(&seg, &masks) - 0.875).abs() < 1e-6);
    }

    #[test]
    fn a_closure_metric_is_averaged_over_batches() {
        let m = Metric::from_fn("mean_pred", |p, _| p.mean(Kind::Float).double_value(&[]));
        let mut a = m.accumulator();
        a.accumulate(
            &Tensor::from_slice(&[1.0f32, 1.0, 1.0]),
            &Tensor::from_slice(&[0i64, 0, 0]),
        );
        a.accumulate(&Tensor::from_slice(&[5.0f32]), &Tensor::from_slice(&[0i64]));
        assert_eq!(a.name(), "mean_pred");
        assert!((a.value() - 2.0).abs() < 1e-6);
    }
}
