//! `ClassificationInterpretation` (fastai v1): what a trained classifier gets wrong on the
//! validation set - the items with the highest loss, the confusion matrix, and the pairs of
//! classes it confuses most.
//!
//! ```no_run
//! # use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! # let mut learn: Learner = todo!();
//! let interp = ClassificationInterpretation::from_learner(&mut learn)?;
//! interp.plot_top_losses(9, (12.0, 12.0))?;
//! interp.plot_confusion_matrix(false, (12.0, 12.0))?;
//! for (actual, predicted, n) in interp.most_confused(2) {
//!     println!("{actual} -> {predicted}: {n}");
//! }
//! # Ok(()) }
//! ```

pub mod cleaner;
pub mod cleaner_widget;
pub mod gradcam;
mod plots;

use std::path::PathBuf;

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::data::Stats;
use crate::error::{Error, Result};
use crate::learner::Learner;

pub use cleaner::ImageCleaner;
pub use cleaner_widget::CleanerWidget;

/// Predictions of a classifier on a dataset (usually the validation set), ready to inspect.
///
/// Predictions are the argmax of the probabilities (the first class on ties); losses are the
/// per-item cross-entropy, `-ln p(actual class)`.
pub struct ClassificationInterpretation {
    probs: Tensor,
    targets: Tensor,
    losses: Tensor,
    classes: Vec<String>,
    /// The image of each item, in prediction order; empty when built without images.
    items: Vec<PathBuf>,
    size: (usize, usize),
    stats: Option<Stats>,
    // The same numbers as plain vectors: every question below is a small loop over them.
    target_v: Vec<usize>,
    pred_v: Vec<usize>,
    loss_v: Vec<f64>,
    p_actual: Vec<f64>,
}

/// A summary, as a cell that ends in `interp` shows it.
impl std::fmt::Display for ClassificationInterpretation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.len();
        let wrong = self
            .target_v
            .iter()
            .zip(&self.pred_v)
            .filter(|(t, p)| t != p)
            .count();
        write!(
            f,
            "ClassificationInterpretation: {n} items, {} classes, {wrong} wrong (error rate {:.4})",
            self.classes.len(),
            if n == 0 { 0.0 } else { wrong as f64 / n as f64 }
        )?;
        for (actual, predicted, count) in self.most_confused(1).into_iter().take(3) {
            write!(f, "\n  {actual} taken for {predicted}: {count}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ClassificationInterpretation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn is_float(k: Kind) -> bool {
    matches!(
        k,
        Kind::Half | Kind::Float | Kind::Double | Kind::BFloat16 | Kind::ComplexFloat
    )
}

impl ClassificationInterpretation {
    /// Predicts the learner's validation set (centre crops, no augmentation) and keeps the
    /// probabilities, targets and losses with the images' paths, for `plot_top_losses`.
    pub fn from_learner(learn: &mut Learner) -> Result<Self> {
        let (logits, targets) = learn.get_preds_logits()?;
        let n = logits.size()[0] as usize;
        if n == 0 {
            return Err(Error::Msg(
                "the validation set is empty: nothing to interpret. Build the data with a \
                 validation split (e.g. DataOptions::default().valid_pct(0.2))"
                    .into(),
            ));
        }
        let ds = &learn.data.valid_ds;
        if ds.categories().is_none() {
            return Err(Error::Msg(format!(
                "ClassificationInterpretation is for single-label classifiers; this data's \
                 targets are {}: use learn.show_results(rows) to compare targets and predictions",
                learn.data.target_kind()
            )));
        }
        if ds.len() != n {
            return Err(Error::Msg(format!(
                "the validation loader gave {n} predictions but the validation set has {} \
                 items: the loader must keep every item, in order",
                ds.len()
            )));
        }
        let logits = logits.to_kind(Kind::Float);
        let targets = targets.to_kind(Kind::Int64);
        // From the log-probabilities rather than ln(softmax): exact for confident mistakes too.
        let losses = -logits
            .log_softmax(-1, Kind::Float)
            .gather(1, &targets.unsqueeze(1), false)
            .squeeze_dim(1);
        let probs = logits.softmax(-1, Kind::Float);
        let mut interp = Self::build(probs, targets, Some(losses), learn.data.classes.clone())?;
        interp.items = ds.items.clone();
        interp.size = learn.data.size;
        interp.stats = learn.data.stats;
        Ok(interp)
    }

    /// An interpretation of given probabilities `(N, c)` and integer targets `(N,)` in `0..c`,
    /// without images (`plot_top_losses` then returns an error). Losses are `-ln p(actual)`.
    pub fn new(probs: Tensor, targets: Tensor, classes: Vec<String>) -> Result<Self> {
        Self::build(probs, targets, None, classes)
    }

    fn build(
        probs: Tensor,
        targets: Tensor,
        losses: Option<Tensor>,
        classes: Vec<String>,
    ) -> Result<Self> {
        let (ps, ts) = (probs.size(), targets.size());
        let c = classes.len();
        if ps.len() != 2 || ps[1] as usize != c {
            return Err(Error::Msg(format!(
                "probabilities must be (N, {c}) for {c} classes, found shape {ps:?}"
            )));
        }
        let n = ps[0] as usize;
        if n == 0 || c == 0 {
            return Err(Error::Msg(format!(
                "nothing to interpret: {n} items, {c} classes (need at least one of each)"
            )));
        }
        if ts != [n as i64] {
            return Err(Error::Msg(format!(
                "targets must be ({n},), one per row of the probabilities; found shape {ts:?}"
            )));
        }
        if is_float(targets.kind()) {
            return Err(Error::Msg(format!(
                "targets must be class indices (an integer tensor), found {:?}",
                targets.kind()
            )));
        }
        let probs = probs.to_device(Device::Cpu).to_kind(Kind::Float);
        let targets = targets.to_device(Device::Cpu).to_kind(Kind::Int64);
        let t64 = Vec::<i64>::try_from(&targets)?;
        if let Some((i, &t)) = t64
            .iter()
            .enumerate()
            .find(|(_, &t)| t < 0 || t as usize >= c)
        {
            return Err(Error::Msg(format!(
                "target {t} of item {i} is not a class index in 0..{c}"
            )));
        }
        let target_v: Vec<usize> = t64.iter().map(|&t| t as usize).collect();
        let p_rows = Vec::<f64>::try_from(probs.to_kind(Kind::Double).flatten(0, -1))?;
        let pred_v: Vec<usize> = p_rows
            .chunks(c)
            .map(|row| {
                // first index of the maximum (NaN never wins)
                (0..c).fold(0, |best, j| if row[j] > row[best] { j } else { best })
            })
            .collect();
        let p_actual: Vec<f64> = target_v
            .iter()
            .enumerate()
            .map(|(i, &t)| p_rows[i * c + t])
            .collect();
        let losses = match losses {
            Some(l) => l.to_device(Device::Cpu).to_kind(Kind::Float),
            None => Tensor::from_slice(&p_actual.iter().map(|p| -p.ln()).collect::<Vec<_>>())
                .to_kind(Kind::Float),
        };
        let loss_v = Vec::<f64>::try_from(losses.to_kind(Kind::Double))?;
        Ok(ClassificationInterpretation {
            probs,
            targets,
            losses,
            classes,
            items: Vec::new(),
            size: (0, 0),
            stats: None,
            target_v,
            pred_v,
            loss_v,
            p_actual,
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.target_v.len()
    }
    pub fn is_empty(&self) -> bool {
        self.target_v.is_empty()
    }
    /// Probabilities `(N, c)`, Float, on the CPU.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
    /// Targets `(N,)`, Int64, on the CPU.
    pub fn targets(&self) -> &Tensor {
        &self.targets
    }
    /// Per-item cross-entropy losses `(N,)`, Float, on the CPU.
    pub fn losses(&self) -> &Tensor {
        &self.losses
    }
    /// Predicted class of each item (argmax; first class on ties).
    pub fn preds(&self) -> &[usize] {
        &self.pred_v
    }
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    /// The image paths, in item order (empty when built with [`new`](Self::new)).
    pub fn items(&self) -> &[PathBuf] {
        &self.items
    }
    /// The normalization statistics of the learner's data (for feeding images back to it).
    pub fn stats(&self) -> Option<Stats> {
        self.stats
    }

    /// The `k` largest losses and their item indices, largest first; equal losses in item order.
    /// `k = None`, or a `k` larger than the number of items, gives all items. A NaN loss counts
    /// as the largest.
    pub fn top_losses(&self, k: Option<usize>) -> (Vec<f64>, Vec<usize>) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        // stable: ties keep ascending item order
        idx.sort_by(|&a, &b| self.loss_v[b].total_cmp(&self.loss_v[a]));
        idx.truncate(k.unwrap_or(usize::MAX));
        (idx.iter().map(|&i| self.loss_v[i]).collect(), idx)
    }

    /// `c x c` counts: row = actual class, column = predicted class.
    pub fn confusion_matrix(&self) -> Vec<Vec<usize>> {
        let c = self.classes.len();
        let mut cm = vec![vec![0; c]; c];
        for (&t, &p) in self.target_v.iter().zip(&self.pred_v) {
            cm[t][p] += 1;
        }
        cm
    }

    /// The off-diagonal cells of the confusion matrix with at least `min_val` items (and at
    /// least one: empty cells are never listed), as `(actual, predicted, count)`, most frequent
    /// first; equal counts in order of the actual class's index, then the predicted class's.
    pub fn most_confused(&self, min_val: usize) -> Vec<(String, String, usize)> {
        let cm = self.confusion_matrix();
        let mut out: Vec<(usize, usize, usize)> = Vec::new();
        for (a, row) in cm.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                if a != p && n > 0 && n >= min_val {
                    out.push((a, p, n));
                }
            }
        }
        out.sort_by_key(|x| std::cmp::Reverse(x.2)); // stable: keeps (actual, predicted) order on ties
        out.into_iter()
            .map(|(a, p, n)| (self.classes[a].clone(), self.classes[p].clone(), n))
            .collect()
    }

    /// The title fastai v1 gives item `i`: `prediction/actual/loss/probability of actual`.
    pub fn title(&self, i: usize) -> String {
        format!(
            "{}/{}/{:.2}/{:.2}",
            self.classes[self.pred_v[i]],
            self.classes[self.target_v[i]],
            self.loss_v[i],
            self.p_actual[i]
        )
    }

    /// Item `i`'s image as the model saw it: reloaded from disk, resized and centre-cropped.
    pub fn image(&self, i: usize) -> Result<RgbImage> {
        let path = self.items.get(i).ok_or_else(|| {
            Error::Msg(format!(
                "no image for item {i}: this interpretation has {} images (build it with \
                 ClassificationInterpretation::from_learner to plot images)",
                self.items.len()
            ))
        })?;
        Ok(crate::data::show::open_resized(path, self.size)?)
    }
}
