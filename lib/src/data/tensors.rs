//! What a `Learner` needs of its data ([`Data`]), and [`DataBunch::from_tensors`]: data a
//! notebook built itself, as `(x, y)` tensors of any shapes (fastai v1's
//! `DataBunch.create(TensorDataset(x_train, y_train), TensorDataset(x_valid, y_valid), bs)`).
//!
//! ```no_run
//! use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! let x = Tensor::randn([1000, 784], (Kind::Float, Device::Cpu));
//! let y = Tensor::randint(10, [1000], (Kind::Int64, Device::Cpu));
//! let data = DataBunch::from_tensors((x.narrow(0, 0, 800), y.narrow(0, 0, 800)),
//!                                    (x.narrow(0, 800, 200), y.narrow(0, 800, 200)), 64)?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use super::loader::Batch;
use super::order::{self, Shard};
use super::ImageDataBunch;
use crate::bail;
use crate::error::Result;

/// The data side of a `Learner`: batches for training and validation, and a few facts about them.
/// [`ImageDataBunch`] and [`DataBunch`] implement it; so can a data source of your own.
pub trait Data {
    /// One epoch of training batches (shuffled); every call starts the next epoch. The iterator
    /// owns what it needs, so the learner can change itself while it runs.
    fn train_batches(&mut self) -> Box<dyn Iterator<Item = Batch>>;
    /// The validation batches, in order.
    fn valid_batches(&mut self) -> Box<dyn Iterator<Item = Batch>>;
    /// Training batches per epoch.
    fn n_train_batches(&self) -> usize;
    /// Items in the training and validation sets.
    fn n_train(&self) -> usize;
    fn n_valid(&self) -> usize;
    /// Batch size.
    fn bs(&self) -> usize;
    /// Where batches are put.
    fn device(&self) -> Device;
    /// The folder models are saved under (`<path>/models`).
    fn path(&self) -> &Path;
    /// Class names, when the targets are classes (empty otherwise).
    fn classes(&self) -> &[String];
    /// One line for the learner's summary: "3 classes, 64x64 images, bs 8".
    fn describe(&self) -> String;
    /// Data-parallel training: yield only `shard`'s share of every epoch, of the training and
    /// the validation items (`None`: all of them again). `learn.to_distributed` calls it around
    /// each fit. Data of your own that cannot be split says so (the default).
    fn set_shard(&mut self, shard: Option<Shard>) -> Result<()> {
        match shard {
            None => Ok(()),
            Some(_) => bail!(
                "this data cannot be split across ranks: implement Data::set_shard for it (give \
                 each rank every world-th item of each epoch, as DataLoader::set_shard does)"
            ),
        }
    }
}

impl Data for ImageDataBunch {
    fn set_shard(&mut self, shard: Option<Shard>) -> Result<()> {
        self.train_dl.set_shard(shard);
        self.valid_dl.set_shard(shard);
        Ok(())
    }
    fn train_batches(&mut self) -> Box<dyn Iterator<Item = Batch>> {
        Box::new(self.train_dl.iter())
    }
    fn valid_batches(&mut self) -> Box<dyn Iterator<Item = Batch>> {
        Box::new(self.valid_dl.iter())
    }
    fn n_train_batches(&self) -> usize {
        self.train_dl.len()
    }
    fn n_train(&self) -> usize {
        self.train_ds.len()
    }
    fn n_valid(&self) -> usize {
        self.valid_ds.len()
    }
    fn bs(&self) -> usize {
        self.bs
    }
    fn device(&self) -> Device {
        self.train_dl.device
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn describe(&self) -> String {
        let what = match self.target_kind() {
            "category" => format!("{} classes", self.c()),
            "multi-category" => format!("{} classes, multi-label", self.c()),
            "mask" => format!("segmentation, {} codes", self.c()),
            kind => format!("{kind} targets ({} numbers)", self.c()),
        };
        format!(
            "{what}, {}x{} images, bs {}",
            self.size.0, self.size.1, self.bs
        )
    }
}

/// Batches of `(x, y)` rows of two tensors, shuffled or in order.
#[derive(Debug)]
pub struct TensorLoader {
    x: Tensor,
    y: Tensor,
    pub bs: usize,
    pub shuffle: bool,
    /// Drop the last, smaller batch (training, as fastai).
    pub drop_last: bool,
    pub device: Device,
    seed: u64,
    epoch: u64,
    shard: Option<Shard>,
}

impl TensorLoader {
    /// A loader over the rows of `x` and `y` (same first dimension).
    pub fn new(x: Tensor, y: Tensor, bs: usize) -> Result<TensorLoader> {
        if bs == 0 {
            bail!("the batch size must be at least 1");
        }
        let (nx, ny) = (x.size().first().copied(), y.size().first().copied());
        match (nx, ny) {
            (Some(a), Some(b)) if a == b => {}
            _ => bail!(
                "x has shape {:?} and y {:?}: they need the same number of rows (the first \
                 dimension: one target per item)",
                x.size(),
                y.size()
            ),
        }
        Ok(TensorLoader {
            x,
            y,
            bs,
            shuffle: false,
            drop_last: false,
            device: Device::Cpu,
            seed: 42,
            epoch: 0,
            shard: None,
        })
    }

    /// Number of items (rows).
    pub fn n_items(&self) -> usize {
        self.x.size()[0] as usize
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        order::n_batches(self.n_items(), self.bs, self.drop_last, self.shard)
    }

    /// Data-parallel training: every epoch yields only `shard`'s share of the rows (see
    /// [`Shard`]); `None` goes back to all of them.
    pub fn set_shard(&mut self, shard: Option<Shard>) {
        self.shard = shard;
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole `x` and `y` (on the device they were given on).
    pub fn tensors(&self) -> (&Tensor, &Tensor) {
        (&self.x, &self.y)
    }

    /// Sets the seed of the shuffling (epoch 0 starts again).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.epoch = 0;
    }

    /// One epoch of batches; each call starts the next epoch.
    pub fn iter(&mut self) -> TensorBatches {
        self.epoch += 1;
        self.iter_epoch(self.epoch - 1)
    }

    /// The batches of epoch number `epoch`, without moving the loader on.
    pub fn iter_epoch(&self, epoch: u64) -> TensorBatches {
        let order = order::epoch_order(
            self.n_items(),
            self.shuffle,
            self.seed,
            epoch,
            self.bs,
            self.drop_last,
            self.shard,
        )
        .into_iter()
        .map(|i| i as i64)
        .collect();
        TensorBatches {
            x: self.x.shallow_clone(),
            y: self.y.shallow_clone(),
            order,
            pos: 0,
            bs: self.bs,
            device: self.device,
        }
    }
}

/// The batches of one epoch of a [`TensorLoader`].
pub struct TensorBatches {
    x: Tensor,
    y: Tensor,
    order: Vec<i64>,
    pos: usize,
    bs: usize,
    device: Device,
}

impl Iterator for TensorBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.bs).min(self.order.len());
        let idx = &self.order[self.pos..end];
        self.pos = end;
        let index = Tensor::from_slice(idx).to_device(self.x.device());
        let x = self.x.index_select(0, &index).to_device(self.device);
        let y = self
            .y
            .index_select(0, &index.to_device(self.y.device()))
            .to_device(self.device);
        Some(Batch {
            x,
            y,
            indices: idx.iter().map(|&i| i as usize).collect(),
        })
    }
}

/// Training and validation data held as tensors (fastai v1's `DataBunch` over `TensorDataset`s).
pub struct DataBunch {
    /// Where models are saved (`<path>/models`); defaults to the data directory.
    pub path: PathBuf,
    pub train_dl: TensorLoader,
    pub valid_dl: TensorLoader,
    /// Class names, if the targets are class indices and you name them (optional).
    pub classes: Vec<String>,
    pub bs: usize,
}

impl DataBunch {
    /// Data from `(x, y)` tensors: `train` is shuffled every epoch and its last smaller batch
    /// dropped; `valid` is read in order. Batches go to [`crate::device()`] (`to_device` changes
    /// it). Any shapes: the first dimension is the item.
    pub fn from_tensors(
        train: (Tensor, Tensor),
        valid: (Tensor, Tensor),
        bs: usize,
    ) -> Result<DataBunch> {
        let mut train_dl = TensorLoader::new(train.0, train.1, bs)
            .map_err(|e| crate::error::Error::Msg(format!("training data: {e}")))?;
        let mut valid_dl = TensorLoader::new(valid.0, valid.1, bs)
            .map_err(|e| crate::error::Error::Msg(format!("validation data: {e}")))?;
        train_dl.shuffle = true;
        train_dl.drop_last = true;
        if train_dl.is_empty() {
            bail!(
                "the training set has {} items, fewer than one batch of {bs}: use a smaller bs",
                train_dl.n_items()
            );
        }
        let device = crate::device();
        train_dl.device = device;
        valid_dl.device = device;
        Ok(DataBunch {
            path: crate::config::data_dir(),
            train_dl,
            valid_dl,
            classes: Vec::new(),
            bs,
        })
    }

    /// Puts batches on `device`.
    pub fn to_device(mut self, device: Device) -> Self {
        self.train_dl.device = device;
        self.valid_dl.device = device;
        self
    }

    /// Names the classes (targets are indices into them).
    pub fn with_classes(mut self, classes: Vec<String>) -> Self {
        self.classes = classes;
        self
    }

    /// Saves models under `<path>/models`.
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = path.as_ref().to_path_buf();
        self
    }

    /// The first training batch of a fresh epoch.
    pub fn one_batch(&self) -> Option<Batch> {
        self.train_dl.iter_epoch(self.train_dl.epoch).next()
    }
}

impl Data for DataBunch {
    fn set_shard(&mut self, shard: Option<Shard>) -> Result<()> {
        self.train_dl.set_shard(shard);
        self.valid_dl.set_shard(shard);
        Ok(())
    }
    fn train_batches(&mut self) -> Box<dyn Iterator<Item = Batch>> {
        Box::new(self.train_dl.iter())
    }
    fn valid_batches(&mut self) -> Box<dyn Iterator<Item = Batch>> {
        Box::new(self.valid_dl.iter())
    }
    fn n_train_batches(&self) -> usize {
        self.train_dl.len()
    }
    fn n_train(&self) -> usize {
        self.train_dl.n_items()
    }
    fn n_valid(&self) -> usize {
        self.valid_dl.n_items()
    }
    fn bs(&self) -> usize {
        self.bs
    }
    fn device(&self) -> Device {
        self.train_dl.device
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn describe(&self) -> String {
        let (x, y) = self.train_dl.tensors();
        let shape = |t: &Tensor| {
            let s = t.size();
            format!("{:?} {:?}", &s[1..], t.kind())
        };
        format!("x {}, y {}, bs {}", shape(x), shape(y), self.bs)
    }
}

impl fmt::Display for DataBunch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (x, y) = self.train_dl.tensors();
        writeln!(
            f,
            "DataBunch; bs {}, on {:?}, path {}",
            self.bs,
            self.train_dl.device,
            self.path.display()
        )?;
        writeln!(
            f,
            "Train: {} items; x {:?} {:?}, y {:?} {:?}",
            self.train_dl.n_items(),
            x.size(),
            x.kind(),
            y.size(),
            y.kind()
        )?;
        let (x, y) = self.valid_dl.tensors();
        write!(
            f,
            "Valid: {} items; x {:?}, y {:?}",
            self.valid_dl.n_items(),
            x.size(),
            y.size()
        )
    }
}

impl fmt::Debug for DataBunch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Every image under `path`, labelled by its folder (`path/<class>/<file>`), as tensors: `x`
/// `(N, 1, H, W)` grayscale (the mean of R, G and B) with values in [0, 1], `y` `(N,)` class
/// indices into the returned class names (sorted). All images must have the same size. For
/// lessons that work on raw tensors (lesson 5's MNIST: `x.view([-1, 784])`).
pub fn tensors_from_folder(path: impl AsRef<Path>) -> Result<(Tensor, Tensor, Vec<String>)> {
    let path = path.as_ref();
    let files = super::files::get_image_files(path)?;
    if files.is_empty() {
        bail!(
            "{} holds no images (expected <class>/<image> files)",
            path.display()
        );
    }
    let class_of = |f: &Path| -> String {
        f.parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut classes: Vec<String> = files.iter().map(|f| class_of(f)).collect();
    classes.sort();
    classes.dedup();
    let mut pixels: Vec<f32> = Vec::new();
    let mut labels: Vec<i64> = Vec::with_capacity(files.len());
    let mut dims: Option<(u32, u32)> = None;
    for f in &files {
        let img = super::image::open_image(f)?;
        let d = img.dimensions();
        match dims {
            None => dims = Some(d),
            Some(first) if first != d => bail!(
                "{} is {}x{}, the first image {}x{}: tensors_from_folder needs images of one size",
                f.display(),
                d.0,
                d.1,
                first.0,
                first.1
            ),
            _ => {}
        }
        pixels.extend(
            img.pixels()
                .map(|p| (p.0[0] as f32 + p.0[1] as f32 + p.0[2] as f32) / (3.0 * 255.0)),
        );
        labels.push(classes.binary_search(&class_of(f)).unwrap_or(0) as i64);
    }
    let (w, h) = dims.unwrap_or((0, 0));
    let x = Tensor::from_slice(&pixels).view([files.len() as i64, 1, h as i64, w as i64]);
    Ok((x, Tensor::from_slice(&labels), classes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn batches_cover_the_rows_and_keep_x_and_y_together() {
        let x = Tensor::arange(10, (Kind::Float, Device::Cpu)).view([10, 1]);
        let y = Tensor::arange(10, (Kind::Int64, Device::Cpu));
        let data =
            DataBunch::from_tensors((x.shallow_clone(), y.shallow_clone()), (x, y), 4).unwrap();
        let mut data = data.to_device(Device::Cpu);
        let train: Vec<Batch> = data.train_batches().collect();
        assert_eq!(train.len(), 2, "drop_last: 10 items, bs 4");
        let mut seen = Vec::new();
        for b in &train {
            let xs = Vec::<f32>::try_from(b.x.view([-1])).unwrap();
            let ys = Vec::<i64>::try_from(&b.y).unwrap();
            assert!(xs.iter().zip(&ys).all(|(a, b)| *a as i64 == *b));
            seen.extend(ys);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 8);
        let valid: Vec<Batch> = data.valid_batches().collect();
        assert_eq!(valid.len(), 3);
        assert_eq!(Vec::<i64>::try_from(&valid[0].y).unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn mismatched_rows_and_tiny_sets_are_clear_errors() {
        let x = Tensor::zeros([10, 3], (Kind::Float, Device::Cpu));
        let y = Tensor::zeros([9], (Kind::Int64, Device::Cpu));
        let e = DataBunch::from_tensors(
            (x.shallow_clone(), y.shallow_clone()),
            (x.shallow_clone(), y),
            4,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("training data") && e.contains("same number of rows"),
            "{e}"
        );
        let y = Tensor::zeros([10], (Kind::Int64, Device::Cpu));
        let e = DataBunch::from_tensors((x.shallow_clone(), y.shallow_clone()), (x, y), 64)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("fewer than one batch"), "{e}");
    }

    #[test]
    fn a_folder_of_images_becomes_tensors_labelled_by_folder() {
        let dir = std::env::temp_dir().join(format!(
            "fastai-tensors-from-folder-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (class, value) in [("seven", 255u8), ("three", 51)] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            let img = image::RgbImage::from_pixel(4, 3, image::Rgb([value, value, value]));
            img.save(dir.join(class).join("0.png")).unwrap();
        }
        let (x, y, classes) = tensors_from_folder(&dir).unwrap();
        assert_eq!(classes, ["seven", "three"]);
        assert_eq!(x.size(), [2, 1, 3, 4]);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), [0, 1]);
        assert!((x.double_value(&[0, 0, 0, 0]) - 1.0).abs() < 1e-6);
        assert!((x.double_value(&[1, 0, 2, 3]) - 0.2).abs() < 1e-6);
        image::RgbImage::new(5, 5)
            .save(dir.join("three").join("1.png"))
            .unwrap();
        let e = tensors_from_folder(&dir).err().unwrap().to_string();
        assert!(e.contains("images of one size"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
