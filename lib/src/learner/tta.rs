//! Test-time augmentation (fastai v1's `learn.TTA()`): predict the validation set several times
//! under fixed augmented views and blend the average with the plain prediction.

use tch::Tensor;

use super::results::predict_batches;
use super::Learner;
use crate::bail;
use crate::data::{DataLoader, Labels, TtaView};
use crate::error::Result;

impl Learner {
    /// fastai v1's `learn.TTA()`: 8 augmented views, `beta` 0.4, zoom 1.35. Returns
    /// `(predictions, targets)` for the validation set, as [`get_preds`](Learner::get_preds).
    pub fn tta(&mut self) -> Result<(Tensor, Tensor)> {
        self.tta_with(8, Some(0.4), 1.35)
    }

    /// Test-time augmentation with `views` augmented passes over the validation set. View `i`
    /// zooms by `scale` into a corner (top or bottom: bit 0 of `i`, left or right: bit 1) and
    /// flips when bit 2 is set, with the training transforms' rotation, warp and lighting drawn
    /// as usual (fastai's `tta_only`). The result is `beta * plain + (1 - beta) * mean(views)`,
    /// or the views' mean alone with `beta = None`. `views = 0` is the plain prediction.
    pub fn tta_with(
        &mut self,
        views: usize,
        beta: Option<f64>,
        scale: f64,
    ) -> Result<(Tensor, Tensor)> {
        if let Some(b) = beta {
            if !(0.0..=1.0).contains(&b) {
                bail!("beta weighs the plain prediction, in [0, 1]; got {b}");
            }
        }
        if !matches!(
            self.data.valid_ds.y,
            Labels::Category(_) | Labels::MultiCategory(_)
        ) {
            bail!(
                "test-time augmentation averages class predictions; this data's targets are {}",
                self.data.target_kind()
            );
        }
        let (plain, targets) = self.get_preds()?;
        if views == 0 {
            return Ok((plain, targets));
        }
        let ds = &self.data.valid_ds;
        let tfms = self
            .data
            .train_dl
            .tfms
            .clone()
            .map(|t| t.do_flip(false).max_zoom(1.0));
        let mut sum: Option<Tensor> = None;
        for i in 0..views {
            let view = TtaView {
                corner: (
                    if i & 1 != 0 { 1.0 } else { 0.0 },
                    if i & 2 != 0 { 1.0 } else { 0.0 },
                ),
                scale: scale as f32,
                flip: i & 4 != 0,
            };
            let mut dl = DataLoader::with_targets(
                ds.items.clone(),
                ds.y.clone(),
                ds.classes.len(),
                self.data.valid_dl.bs,
                self.data.size,
                self.data.train_dl.num_workers(),
            );
            dl.device = self.data.valid_dl.device;
            dl.stats = self.data.stats;
            dl.tfms = tfms.clone();
            dl.tta = Some(view);
            dl.set_seed(1000 + i as u64);
            let Some((out, _)) = predict_batches(self.model.as_ref(), dl.iter_epoch(0))? else {
                bail!("the validation set gave no images");
            };
            if out.size()[0] != plain.size()[0] {
                bail!(
                    "an augmented pass gave {} predictions for {} validation items (unreadable \
                     files?)",
                    out.size()[0],
                    plain.size()[0]
                );
            }
            let probs = self.loss_func.activation.apply(&out);
            sum = Some(match sum {
                Some(s) => s + probs,
                None => probs,
            });
        }
        let mean = sum.expect("at least one view") / views as f64;
        Ok(match beta {
            Some(b) => (plain * b + mean * (1.0 - b), targets),
            None => (mean, targets),
        })
    }
}
