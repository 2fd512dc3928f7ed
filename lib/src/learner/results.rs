//! Looking at what a learner predicts, for every kind of target: `show_results` (target beside
//! prediction), `predict_target` (one image file), `get_preds_test` (the test set).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use super::{interrupt, Learner};
use crate::bail;
use crate::data::show::{batch_to_images, draw_points, overlay_mask, POINT_COLOR};
use crate::data::{open_image, Batch, Labels};
use crate::display::{display, figure::image_grid, Rich};
use crate::error::panic_text;
use crate::error::{Error, Result};
use crate::models::Model;

/// The colour of predicted points in `show_results` (targets are red).
const PRED_COLOR: [u8; 3] = [30, 200, 60];

/// fastai's threshold for reading multi-label predictions.
pub const MULTI_THRESH: f64 = 0.5;

/// What a learner predicts for one image, by kind of target.
#[derive(Debug)]
pub enum Prediction {
    /// The most probable class, its index, and every class's probability.
    Category {
        class: String,
        index: usize,
        probs: Tensor,
    },
    /// The classes whose probability passes 0.5 (fastai's threshold), and every probability.
    MultiCategory { labels: Vec<String>, probs: Tensor },
    /// The class id of each pixel `(H, W)` at the data's size, and the per-class
    /// probabilities `(C, H, W)`.
    Mask { mask: Tensor, probs: Tensor },
    /// Points `[y, x]` in pixels of the image file as stored.
    Points(Vec<[f32; 2]>),
    /// The predicted numbers.
    Float(Vec<f32>),
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prediction::Category {
                class,
                probs,
                index,
            } => write!(
                f,
                "{class} (p = {:.3})",
                probs.double_value(&[*index as i64])
            ),
            Prediction::MultiCategory { labels, .. } => write!(f, "{}", labels.join(";")),
            Prediction::Mask { mask, .. } => {
                let s = mask.size();
                write!(f, "a {}x{} mask", s[0], s[1])
            }
            Prediction::Points(p) => {
                let pts: Vec<String> = p
                    .iter()
                    .map(|[y, x]| format!("(y {y:.1}, x {x:.1})"))
                    .collect();
                write!(f, "{}", pts.join(" "))
            }
            Prediction::Float(v) => {
                let v: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
                write!(f, "{}", v.join(" "))
            }
        }
    }
}

/// The model's raw outputs for a sequence of batches, and their targets, on the CPU.
pub(crate) fn predict_batches(
    model: &dyn Model,
    batches: impl Iterator<Item = Batch>,
) -> Result<Option<(Tensor, Tensor)>> {
    let (mut outs, mut ys) = (Vec::new(), Vec::new());
    let _guard = tch::no_grad_guard();
    for b in batches {
        if interrupt::requested() {
            interrupt::clear();
            bail!("interrupted during prediction; the weights are kept as they are");
        }
        let out = catch_unwind(AssertUnwindSafe(|| model.forward_t(&b.x, false)))
            .map_err(|p| Error::Msg(format!("prediction failed: {}", panic_text(p))))?;
        outs.push(out.to_device(Device::Cpu));
        ys.push(b.y.to_device(Device::Cpu));
    }
    if outs.is_empty() {
        return Ok(None);
    }
    Ok(Some((Tensor::cat(&outs, 0), Tensor::cat(&ys, 0))))
}

impl Learner {
    /// The pooled activations of the model's body (hook point "body", average and max pooled
    /// and concatenated, as fastai's `from_similars`) for image files, `(N, 2 * features)` on
    /// the CPU, each image resized and centre-cropped as validation images are.
    pub fn features(&self, items: &[std::path::PathBuf]) -> Result<Tensor> {
        let mut dl = crate::data::DataLoader::new(
            items.to_vec(),
            vec![0; items.len()],
            self.data.valid_dl.bs,
            self.data.size,
            self.data.train_dl.num_workers(),
        );
        dl.device = self.data.valid_dl.device;
        dl.stats = self.data.stats;
        let hook = self.hook_output("body", false)?;
        let mut feats = Vec::new();
        let mut seen = 0;
        let _guard = tch::no_grad_guard();
        for b in dl.iter_epoch(0) {
            if interrupt::requested() {
                interrupt::clear();
                bail!("interrupted while computing features");
            }
            seen += b.indices.len();
            let _ = self.model.forward_t(&b.x, false);
            let Some(acts) = hook.stored() else {
                bail!("the model passes no \"body\" hook point (cnn_learner models do)");
            };
            feats.push(crate::models::head::concat_pool(&acts).to_device(Device::Cpu));
        }
        if seen != items.len() {
            bail!(
                "{} of the {} images could not be read (see the warnings above); remove them \
                 first (verify_images)",
                items.len() - seen,
                items.len()
            );
        }
        Ok(Tensor::cat(&feats, 0))
    }

    /// Predictions for the test set (`add_test`), the loss's activation applied
    /// (fastai's `get_preds(ds_type=DatasetType.Test)`), in the test items' order.
    pub fn get_preds_test(&mut self) -> Result<Tensor> {
        let Some(dl) = &self.data.test_dl else {
            bail!(
                "this data has no test set: add one with .add_test(items) or \
                 .add_test_folder(\"test\") before .databunch(bs)"
            );
        };
        let batches = dl.iter_epoch(0);
        match predict_batches(self.model.as_ref(), batches)? {
            Some((out, _)) => Ok(self.loss_func.activation.apply(&out)),
            None => bail!("the test set gave no images (every file unreadable?)"),
        }
    }

    /// What the model predicts for one image file (resized and centre-cropped as validation
    /// images are), decoded for the data's kind of targets. For single-label data
    /// [`predict`](Learner::predict) gives the same as a tuple.
    pub fn predict_target(&self, image: impl AsRef<Path>) -> Result<Prediction> {
        let image = image.as_ref();
        let img = open_image(image)?;
        let (h, w) = self.data.size;
        let x = self.data.one_item(image)?.to_device(self.device());
        let out = tch::no_grad(|| self.model.forward_t(&x, false))
            .to_device(Device::Cpu)
            .squeeze_dim(0);
        let classes = &self.data.classes;
        Ok(match &self.data.train_ds.y {
            Labels::Category(_) => {
                let probs = out.softmax(-1, Kind::Float);
                let index = probs.argmax(0, false).int64_value(&[]) as usize;
                Prediction::Category {
                    class: classes[index].clone(),
                    index,
                    probs,
                }
            }
            Labels::MultiCategory(_) => {
                let probs = out.sigmoid();
                let on = Vec::<f32>::try_from(&probs).expect("float probabilities");
                let labels = on
                    .iter()
                    .zip(classes)
                    .filter(|(p, _)| **p as f64 > MULTI_THRESH)
                    .map(|(_, c)| c.clone())
                    .collect();
                Prediction::MultiCategory { labels, probs }
            }
            Labels::Mask(_) => {
                let probs = out.softmax(0, Kind::Float);
                Prediction::Mask {
                    mask: probs.argmax(0, false),
                    probs,
                }
            }
            Labels::Points(_) => {
                // [-1, 1] over the crop -> pixels of the file, through the crop's inverse
                let v = Vec::<f32>::try_from(out.flatten(0, -1)).expect("float points");
                let (sh, sw) = (img.height() as f64, img.width() as f64);
                let scale = (h as f64 / sh).max(w as f64 / sw);
                let (r0, c0) = ((sh * scale - h as f64) / 2.0, (sw * scale - w as f64) / 2.0);
                let pts = v
                    .chunks(2)
                    .map(|p| {
                        let (oy, ox) = (
                            (p[0] as f64 + 1.0) * h as f64 / 2.0,
                            (p[1] as f64 + 1.0) * w as f64 / 2.0,
                        );
                        [((oy + r0) / scale) as f32, ((ox + c0) / scale) as f32]
                    })
                    .collect();
                Prediction::Points(pts)
            }
            Labels::Float(_) => {
                Prediction::Float(Vec::<f32>::try_from(out.flatten(0, -1)).expect("floats"))
            }
        })
    }

    /// fastai's `show_results(rows)`: validation images with the target on the left and the
    /// prediction on the right - class names, multi-labels, masks blended over the image,
    /// points as dots (target red, prediction green).
    pub fn show_results(&mut self, rows: usize, figsize: (f32, f32)) -> Result<()> {
        let png = self.show_results_png(rows, figsize)?;
        display(&Rich::png(
            png,
            &format!("{rows} validation images: target | prediction"),
        ));
        Ok(())
    }

    /// The `show_results` figure as PNG bytes.
    pub fn show_results_png(&mut self, rows: usize, figsize: (f32, f32)) -> Result<Vec<u8>> {
        let rows = rows.max(1);
        let Some(first) = self.data.valid_dl.iter_epoch(0).next() else {
            bail!("show_results: the validation set is empty");
        };
        let out = tch::no_grad(|| self.model.forward_t(&first.x, false)).to_device(Device::Cpu);
        let y = first.y.to_device(Device::Cpu);
        let n = (rows as i64).min(out.size()[0]);
        let images = batch_to_images(&first.x.narrow(0, 0, n), self.data.stats);
        let ds = &self.data.valid_ds;
        let name = |k: usize| ds.classes.get(k).cloned().unwrap_or_else(|| k.to_string());
        let mut cells: Vec<(RgbImage, String)> = Vec::new();
        for (k, img) in images.into_iter().enumerate() {
            let (o, t) = (out.get(k as i64), y.get(k as i64));
            let (left, right) = match &ds.y {
                Labels::Category(_) => {
                    let p = o.softmax(-1, Kind::Float);
                    let i = p.argmax(0, false).int64_value(&[]) as usize;
                    let actual = name(t.int64_value(&[]) as usize);
                    (
                        (img.clone(), actual),
                        (
                            img,
                            format!("{} ({:.2})", name(i), p.double_value(&[i as i64])),
                        ),
                    )
                }
                Labels::MultiCategory(_) => {
                    let on = |v: &Tensor, th: f64| -> String {
                        let v = Vec::<f32>::try_from(v).expect("floats");
                        v.iter()
                            .enumerate()
                            .filter(|(_, p)| **p as f64 > th)
                            .map(|(c, _)| name(c))
                            .collect::<Vec<_>>()
                            .join(";")
                    };
                    (
                        (img.clone(), on(&t, 0.5)),
                        (img, on(&o.sigmoid(), MULTI_THRESH)),
                    )
                }
                Labels::Mask(_) => (
                    (overlay_mask(&img, &t), "target".into()),
                    (overlay_mask(&img, &o.argmax(0, false)), "prediction".into()),
                ),
                Labels::Points(_) => {
                    let both = draw_points(&img, &t, POINT_COLOR);
                    (
                        (draw_points(&img, &t, POINT_COLOR), "target".into()),
                        (draw_points(&both, &o, PRED_COLOR), "prediction".into()),
                    )
                }
                Labels::Float(_) => {
                    let txt = |v: &Tensor| {
                        Vec::<f32>::try_from(v.flatten(0, -1))
                            .expect("floats")
                            .iter()
                            .map(|x| format!("{x:.3}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    ((img.clone(), txt(&t)), (img, txt(&o)))
                }
            };
            cells.push(left);
            cells.push(right);
        }
        Ok(image_grid(&cells, n as usize, 2, figsize))
    }
}
