//! `ImageCleaner` (lesson 2): look at the images the model finds hardest, delete the ones that do
//! not belong and fix wrong labels, then write `cleaned.csv` to build the data again.
//!
//! fastai v1 does this with a widget (`DatasetFormatter().from_toplosses(learn)` and
//! `ImageCleaner(ds, idxs, path)`). Here it is a few calls, one per cell:
//!
//! ```no_run
//! # use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! # let mut learn: Learner = todo!();
//! let mut cleaner = ImageCleaner::from_toplosses(&mut learn)?;
//! cleaner.show(8)?;                  // #0..#7: the 8 validation images with the largest losses
//! cleaner.delete(2)?;                // #2 is not a bear at all
//! cleaner.relabel(5, "grizzly")?;    // #5 is a grizzly labelled black
//! cleaner.show(8)?;                  // #8..#15
//! let csv = cleaner.save()?;         // <data path>/cleaned.csv
//! let data = ImageDataBunch::from_csv(&learn.data.path,
//!     DataOptions::default().csv_labels("cleaned.csv"))?;
//! # Ok(()) }
//! ```
//!
//! **Which images are reviewed.** The validation set, in order of loss (largest first), as
//! `ClassificationInterpretation::top_losses` ranks it: those are the model's confident
//! mistakes and the images it is least sure about, where wrong labels and junk show up first.
//! Training images are not shown (the model has seen their labels, so their losses say less).
//! `cleaned.csv` still lists the **whole** dataset - training and validation images, minus the
//! deleted ones, with the corrected labels - so the rebuilt data keeps everything else.
//!
//! Nothing on disk changes except `cleaned.csv`: deleted images stay in their folders (the CSV
//! simply leaves them out), and the file is written to a temporary file and renamed.

use std::fmt;
use std::path::{Path, PathBuf};

use image::{imageops::FilterType, Rgb, RgbImage};
use tch::{Device, Kind, Tensor};

use super::plots::titled_grid;
use super::ClassificationInterpretation;
use crate::data::{open_image, ImageDataBunch};
use crate::display::{display, Rich};
use crate::error::{write_atomically, Error, Result};
use crate::learner::Learner;

/// One reviewed image: which item it is, what the model predicted, and its loss; for
/// near-duplicates, the number of its twin in the review and their similarity.
#[derive(Debug, Clone)]
struct Review {
    item: usize,
    pred: usize,
    loss: f64,
    twin: Option<(usize, f32)>,
}

/// Deleting and relabelling images by number, then writing `cleaned.csv`. See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct ImageCleaner {
    /// The data's folder: `cleaned.csv` goes here and its names are relative to it.
    path: PathBuf,
    classes: Vec<String>,
    /// Every item of the dataset, training items first, then validation items.
    items: Vec<PathBuf>,
    /// The label of each item as the data has it.
    labels: Vec<usize>,
    /// The label after `relabel`, if changed.
    new_labels: Vec<Option<usize>>,
    deleted: Vec<bool>,
    /// The images to review, numbered from 0 in this order (largest loss first).
    order: Vec<Review>,
    /// The number of the next image `show` displays.
    next: usize,
}

impl ImageCleaner {
    /// Predicts the learner's validation set and ranks it by loss, largest first (fastai v1:
    /// `DatasetFormatter().from_toplosses(learn)`).
    pub fn from_toplosses(learn: &mut Learner) -> Result<Self> {
        let interp = ClassificationInterpretation::from_learner(learn)?;
        Self::from_interpretation(&learn.data, &interp)
    }

    /// Near-duplicates (fastai v1: `DatasetFormatter().from_similars(learn)`): every image of
    /// the dataset (training and validation) through the model's body, its activations pooled
    /// (average and max) into one vector, and the `n_pairs` pairs of images whose vectors are
    /// most alike (cosine similarity), most similar first. The review shows each pair side by
    /// side - #0 and #1, #2 and #3, ... - so one of the two can be deleted.
    pub fn from_similars(learn: &mut Learner, n_pairs: usize) -> Result<Self> {
        let (items, labels) = dataset(&learn.data)?;
        let feats = learn.features(&items)?;
        let pairs = most_similar_pairs(&feats, n_pairs);
        let mut order = Vec::with_capacity(2 * pairs.len());
        for (a, b, sim) in pairs {
            let k = order.len();
            for (item, twin) in [(a, k + 1), (b, k)] {
                order.push(Review {
                    item,
                    pred: labels[item],
                    loss: f64::NAN,
                    twin: Some((twin, sim)),
                });
            }
        }
        Ok(Self::with_order(&learn.data, items, labels, order))
    }

    fn with_order(
        data: &ImageDataBunch,
        items: Vec<PathBuf>,
        labels: Vec<usize>,
        order: Vec<Review>,
    ) -> Self {
        ImageCleaner {
            path: data.path.clone(),
            classes: data.classes.clone(),
            new_labels: vec![None; items.len()],
            deleted: vec![false; items.len()],
            items,
            labels,
            order,
            next: 0,
        }
    }

    /// The same from an interpretation already made of `data`'s validation set (saves predicting
    /// it again).
    pub fn from_interpretation(
        data: &ImageDataBunch,
        interp: &ClassificationInterpretation,
    ) -> Result<Self> {
        if interp.items() != data.valid_ds.items.as_slice() || interp.classes() != data.classes {
            return Err(Error::Msg(
                "this interpretation is not of this data's validation set: make it with \
                 ClassificationInterpretation::from_learner(&mut learn) and pass learn.data"
                    .into(),
            ));
        }
        let n_train = data.train_ds.len();
        let (items, labels) = dataset(data)?;
        let (losses, idx) = interp.top_losses(None);
        let order = idx
            .iter()
            .zip(losses)
            .map(|(&v, loss)| Review {
                item: n_train + v,
                pred: interp.preds()[v],
                loss,
                twin: None,
            })
            .collect();
        Ok(Self::with_order(data, items, labels, order))
    }

    /// Number of images to review (the validation set).
    pub fn len(&self) -> usize {
        self.order.len()
    }
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// The class names a label must be one of.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    /// The data's folder, where `save` writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shows the next `n` images (starting at #0, then where the last call stopped) in a grid,
    /// each titled `#number label/predicted .../loss ...`.
    pub fn show(&mut self, n: usize) -> Result<()> {
        if self.next >= self.len() {
            println!(
                "all {} images have been shown; cleaner.show_from(0, {n}) starts again",
                self.len()
            );
            return Ok(());
        }
        let start = self.next;
        let png = self.grid_png(start, n)?;
        let end = (start + n.max(1)).min(self.len());
        self.next = end;
        display(&Rich::png(
            png,
            &format!(
                "image cleaner: images #{start} to #{} of {} (largest loss first): \
                 number label/prediction/loss",
                end - 1,
                self.len()
            ),
        ));
        Ok(())
    }

    /// Shows `n` images starting at number `start` (and continues from there).
    pub fn show_from(&mut self, start: usize, n: usize) -> Result<()> {
        self.check(start)?;
        self.next = start;
        self.show(n)
    }

    /// The grid of images `#start..#start+n` as PNG bytes (4 per row).
    pub fn grid_png(&self, start: usize, n: usize) -> Result<Vec<u8>> {
        self.check(start)?;
        let end = (start + n.max(1)).min(self.len());
        let mut cells = Vec::with_capacity(end - start);
        for i in start..end {
            cells.push((self.thumbnail(i), self.title(i)));
        }
        let cols = cells.len().min(4);
        let rows = cells.len().div_ceil(cols);
        let figsize = (3.2 * cols as f32, 3.6 * rows as f32);
        Ok(titled_grid(&cells, rows, cols, figsize))
    }

    /// The title of image `i` in the grid.
    fn title(&self, i: usize) -> String {
        let r = &self.order[i];
        let label = if self.deleted[r.item] {
            "DELETED".to_string()
        } else {
            match self.new_labels[r.item] {
                Some(l) => format!(
                    "{} (was {})",
                    self.classes[l], self.classes[self.labels[r.item]]
                ),
                None => self.classes[self.labels[r.item]].clone(),
            }
        };
        match r.twin {
            Some((t, sim)) => format!("#{i} {label}/twin of #{t}/similarity {sim:.3}"),
            None => format!(
                "#{i} {label}/predicted {}/loss {:.2}",
                self.classes[r.pred], r.loss
            ),
        }
    }

    /// Image `i`, at most 320 pixels on a side; a grey square if the file cannot be read (so
    /// that it can still be deleted).
    pub(crate) fn thumbnail(&self, i: usize) -> RgbImage {
        match open_image(&self.items[self.order[i].item]) {
            Ok(img) => {
                let (w, h) = img.dimensions();
                let scale = 320.0 / w.max(h) as f64;
                if scale < 1.0 {
                    let (tw, th) = (
                        ((w as f64 * scale) as u32).max(1),
                        ((h as f64 * scale) as u32).max(1),
                    );
                    image::imageops::resize(&img, tw, th, FilterType::Triangle)
                } else {
                    img
                }
            }
            Err(_) => RgbImage::from_pixel(64, 64, Rgb([160, 160, 160])),
        }
    }

    fn check(&self, i: usize) -> Result<()> {
        if i < self.len() {
            Ok(())
        } else if self.is_empty() {
            Err(Error::Msg(
                "the cleaner has no images: the validation set is empty".into(),
            ))
        } else {
            Err(Error::Msg(format!(
                "there is no image #{i}: the cleaner numbers its {} images #0 to #{}",
                self.len(),
                self.len() - 1
            )))
        }
    }

    /// The file of image `i`.
    pub fn file(&self, i: usize) -> Result<&Path> {
        self.check(i)?;
        Ok(&self.items[self.order[i].item])
    }

    /// The label image `i` will have in `cleaned.csv` (after any `relabel`).
    pub fn label(&self, i: usize) -> Result<&str> {
        self.check(i)?;
        Ok(&self.classes[self.current_label(self.order[i].item)])
    }

    /// The class the model predicted for image `i`.
    pub fn prediction(&self, i: usize) -> Result<&str> {
        self.check(i)?;
        Ok(&self.classes[self.order[i].pred])
    }

    /// The loss of image `i` (`-ln p(label)`); numbers go from the largest loss down.
    pub fn loss(&self, i: usize) -> Result<f64> {
        self.check(i)?;
        Ok(self.order[i].loss)
    }

    /// Whether image `i` is left out of `cleaned.csv`.
    pub fn is_deleted(&self, i: usize) -> Result<bool> {
        self.check(i)?;
        Ok(self.deleted[self.order[i].item])
    }

    /// The caption of image `i` in the widget (short: it sits under a thumbnail):
    /// `#i pred X 1.23` (the predicted class and the loss), or its twin and their similarity.
    pub(crate) fn caption(&self, i: usize) -> String {
        let r = &self.order[i];
        match r.twin {
            Some((t, sim)) => format!("#{i} twin of #{t} {sim:.3}"),
            None => format!("#{i} pred {} {:.2}", self.classes[r.pred], r.loss),
        }
    }

    /// Sets image `i`'s deletion and label at once, quietly (the widget's clicks): `class` an
    /// index into the classes.
    pub(crate) fn set_state(&mut self, i: usize, deleted: bool, class: usize) {
        let item = self.order[i].item;
        self.deleted[item] = deleted;
        self.new_labels[item] = (class != self.labels[item]).then_some(class);
    }

    /// The index of image `i`'s current label.
    pub(crate) fn label_index(&self, i: usize) -> usize {
        self.current_label(self.order[i].item)
    }

    fn current_label(&self, item: usize) -> usize {
        self.new_labels[item].unwrap_or(self.labels[item])
    }

    /// Leaves image `i` out of `cleaned.csv` (the file itself is not touched).
    pub fn delete(&mut self, i: usize) -> Result<()> {
        self.check(i)?;
        let item = self.order[i].item;
        self.deleted[item] = true;
        println!("#{i} {}: deleted", self.short_name(item));
        Ok(())
    }

    /// Undoes `delete` and `relabel` of image `i`.
    pub fn restore(&mut self, i: usize) -> Result<()> {
        self.check(i)?;
        let item = self.order[i].item;
        self.deleted[item] = false;
        self.new_labels[item] = None;
        println!(
            "#{i} {}: kept as {}",
            self.short_name(item),
            self.classes[self.labels[item]]
        );
        Ok(())
    }

    /// Gives image `i` the label `class`, which must be one of the data's classes.
    pub fn relabel(&mut self, i: usize, class: &str) -> Result<()> {
        self.check(i)?;
        let Some(c) = self.classes.iter().position(|k| k == class) else {
            return Err(Error::Msg(format!(
                "{class:?} is not one of the classes: {}. Use one of these names exactly \
                 (delete the image instead if it fits none of them)",
                self.classes.join(", ")
            )));
        };
        let item = self.order[i].item;
        if self.deleted[item] {
            return Err(Error::Msg(format!(
                "image #{i} is deleted; cleaner.restore({i}) first if you want to keep it"
            )));
        }
        let old = &self.classes[self.labels[item]];
        self.new_labels[item] = (c != self.labels[item]).then_some(c);
        if c == self.labels[item] {
            println!("#{i} {}: label {class} (unchanged)", self.short_name(item));
        } else {
            println!("#{i} {}: {old} -> {class}", self.short_name(item));
        }
        Ok(())
    }

    /// Files left out of `cleaned.csv`, in dataset order.
    pub fn deleted_files(&self) -> Vec<&Path> {
        (0..self.items.len())
            .filter(|&k| self.deleted[k])
            .map(|k| self.items[k].as_path())
            .collect()
    }

    /// `(file, old label, new label)` of every relabelled image that is kept.
    pub fn relabelled(&self) -> Vec<(&Path, &str, &str)> {
        (0..self.items.len())
            .filter(|&k| !self.deleted[k])
            .filter_map(|k| {
                self.new_labels[k].map(|l| {
                    (
                        self.items[k].as_path(),
                        self.classes[self.labels[k]].as_str(),
                        self.classes[l].as_str(),
                    )
                })
            })
            .collect()
    }

    /// The name written to the CSV: relative to the data's folder when inside it.
    fn csv_name(&self, item: usize) -> Result<String> {
        let p = &self.items[item];
        let rel = p.strip_prefix(&self.path).unwrap_or(p);
        rel.to_str().map(str::to_owned).ok_or_else(|| {
            Error::Msg(format!(
                "{} is not valid UTF-8 and cannot be written to a CSV file; rename it",
                p.display()
            ))
        })
    }

    fn short_name(&self, item: usize) -> String {
        self.csv_name(item)
            .unwrap_or_else(|_| self.items[item].display().to_string())
    }

    /// Writes `cleaned.csv` in the data's folder (fastai v1's `ImageCleaner` file): header
    /// `name,label`, one row per kept image of the whole dataset (training and validation),
    /// sorted by name, names relative to the folder. Returns its path. Read it back with
    /// `ImageDataBunch::from_csv(path, DataOptions::default().csv_labels("cleaned.csv"))`.
    pub fn save(&self) -> Result<PathBuf> {
        self.save_as("cleaned.csv")
    }

    /// [`save`](Self::save) to another file name in the data's folder.
    pub fn save_as(&self, file_name: &str) -> Result<PathBuf> {
        let (dest, n) = self.write_csv(file_name)?;
        println!(
            "wrote {} ({n} images; {} deleted, {} relabelled)",
            dest.display(),
            self.deleted_files().len(),
            self.relabelled().len()
        );
        Ok(dest)
    }

    /// Writes the CSV without a word (the widget's Save says it in the widget); its path and
    /// the number of images in it.
    pub(crate) fn write_csv(&self, file_name: &str) -> Result<(PathBuf, usize)> {
        let mut rows = Vec::new();
        for k in (0..self.items.len()).filter(|&k| !self.deleted[k]) {
            rows.push((
                self.csv_name(k)?,
                self.classes[self.current_label(k)].clone(),
            ));
        }
        if rows.is_empty() {
            return Err(Error::Msg(
                "every image is deleted: there is nothing to write (cleaner.restore(i) keeps \
                 an image)"
                    .into(),
            ));
        }
        rows.sort();
        let dest = self.path.join(file_name);
        write_atomically(&dest, "writing the cleaned labels", |tmp| {
            let write = || -> std::result::Result<(), Box<dyn std::error::Error>> {
                let mut w = csv::Writer::from_path(tmp)?;
                w.write_record(["name", "label"])?;
                for (name, label) in &rows {
                    w.write_record([name, label])?;
                }
                w.flush()?;
                w.into_inner().map_err(|e| e.to_string())?.sync_all()?;
                Ok(())
            };
            write().map_err(|e| Error::Msg(format!("writing {}: {e}", dest.display())))
        })?;
        Ok((dest, rows.len()))
    }
}

impl fmt::Display for ImageCleaner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ImageCleaner: {} validation images to review (largest loss first, {} shown so far) \
             of {} in the dataset; {} deleted, {} relabelled",
            self.len(),
            self.next,
            self.items.len(),
            self.deleted_files().len(),
            self.relabelled().len()
        )
    }
}

/// Every item of the dataset (training, then validation) with its class index; an error for
/// data that is not single-label.
fn dataset(data: &ImageDataBunch) -> Result<(Vec<PathBuf>, Vec<usize>)> {
    let (Some(train), Some(valid)) = (data.train_ds.categories(), data.valid_ds.categories())
    else {
        return Err(Error::Msg(format!(
            "the image cleaner works on single-label data; this data's targets are {}",
            data.target_kind()
        )));
    };
    let items = data
        .train_ds
        .items
        .iter()
        .chain(&data.valid_ds.items)
        .cloned()
        .collect();
    Ok((items, train.iter().chain(valid).copied().collect()))
}

/// The `n` pairs `(i, j, similarity)` (`i < j`) of rows of `feats` `(N, D)` with the largest
/// cosine similarity, largest first. Row blocks at a time, so memory stays `block x N`.
pub fn most_similar_pairs(feats: &Tensor, n: usize) -> Vec<(usize, usize, f32)> {
    let rows = feats.size()[0];
    if rows < 2 || n == 0 {
        return Vec::new();
    }
    let f = feats.to_kind(Kind::Float);
    let norms = f.norm_scalaropt_dim(2, &[1i64][..], true).clamp_min(1e-12);
    let f = f / norms;
    let block = 512i64;
    let mut best: Vec<(usize, usize, f32)> = Vec::new();
    let mut start = 0;
    while start < rows {
        let len = block.min(rows - start);
        let sims = f.narrow(0, start, len).matmul(&f.tr());
        // keep j > i only
        let i = Tensor::arange_start(start, start + len, (Kind::Int64, Device::Cpu)).unsqueeze(1);
        let j = Tensor::arange(rows, (Kind::Int64, Device::Cpu)).unsqueeze(0);
        let sims = sims.masked_fill(&j.le_tensor(&i), f64::NEG_INFINITY);
        let k = (n as i64).min(len * rows);
        let (vals, idx) = sims.flatten(0, -1).topk(k, 0, true, true);
        let vals = Vec::<f32>::try_from(vals).expect("float similarities");
        let idx = Vec::<i64>::try_from(idx).expect("indices");
        for (v, ix) in vals.into_iter().zip(idx) {
            if v.is_finite() {
                best.push(((start + ix / rows) as usize, (ix % rows) as usize, v));
            }
        }
        best.sort_by(|a, b| b.2.total_cmp(&a.2));
        best.truncate(n);
        start += len;
    }
    best
}
