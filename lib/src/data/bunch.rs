//! `ImageDataBunch`: labelled images split into training and validation loaders, as in fastai v1.
//!
//! ```no_run
//! use fastai::vision::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let path_img = fastai::data_dir().join("oxford-iiit-pet/images");
//! let fnames = get_image_files(&path_img)?;
//! let pat = r"/([^/]+)_\d+.jpg$";
//! let data = ImageDataBunch::from_name_re(&path_img, &fnames, pat,
//!     DataOptions::default().tfms(get_transforms()).size(224).bs(64))?
//!     .normalize(imagenet_stats());
//! println!("{} classes: {:?}", data.c(), &data.classes[..3]);
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use tch::Device;

use super::files::get_image_files;
use super::labels::{
    label_from_folder, label_from_func, label_from_re, label_list, split_by_rand_pct, LabelList,
    Labels,
};
use super::loader::{AugmentOn, DataLoader, Stats};
use super::transforms::Transforms;
use super::DataError;

/// How to build an [`ImageDataBunch`]; `Default` gives fastai's defaults (bs 64, size 224,
/// 20% validation, seed 42, no augmentation).
#[derive(Debug, Clone)]
pub struct DataOptions {
    /// Training augmentation (`get_transforms()`); validation images are only resized and
    /// centre-cropped.
    pub ds_tfms: Option<Transforms>,
    /// Images are `size x size`.
    pub size: usize,
    pub bs: usize,
    /// Fraction held out for validation when the data has no validation folder.
    pub valid_pct: f64,
    /// Seed of the split, the shuffling and the augmentation.
    pub seed: u64,
    /// Decoding threads (0 = all cores).
    pub num_workers: usize,
    /// Where batches go; `None` = [`crate::device()`].
    pub device: Option<Device>,
    /// Where the augmentation runs (per image on the workers, or per batch on the device);
    /// `Auto` = on the device when it is a GPU.
    pub augment_on: AugmentOn,
    /// Leave out files the labelling does not match (with a warning) instead of failing.
    pub skip_unmatched: bool,
    /// `from_folder`: the training and validation sub-folders.
    pub train: String,
    pub valid: String,
    /// `from_csv`: the file, the columns, whether it has a header row, and a folder to prefix.
    pub csv_labels: String,
    pub fn_col: usize,
    pub label_col: usize,
    pub header: bool,
    pub folder: String,
    pub suffix: String,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            ds_tfms: None,
            size: 224,
            bs: 64,
            valid_pct: 0.2,
            seed: 42,
            num_workers: 0,
            device: None,
            augment_on: AugmentOn::Auto,
            skip_unmatched: false,
            train: "train".into(),
            valid: "valid".into(),
            csv_labels: "labels.csv".into(),
            fn_col: 0,
            label_col: 1,
            header: true,
            folder: ".".into(),
            suffix: String::new(),
        }
    }
}

impl DataOptions {
    pub fn tfms(mut self, t: Transforms) -> Self {
        self.ds_tfms = Some(t);
        self
    }
    pub fn size(mut self, s: usize) -> Self {
        self.size = s;
        self
    }
    pub fn bs(mut self, bs: usize) -> Self {
        self.bs = bs;
        self
    }
    pub fn valid_pct(mut self, p: f64) -> Self {
        self.valid_pct = p;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn num_workers(mut self, n: usize) -> Self {
        self.num_workers = n;
        self
    }
    pub fn device(mut self, d: Device) -> Self {
        self.device = Some(d);
        self
    }
    /// Where the augmentation runs ([`AugmentOn`]).
    pub fn augment_on(mut self, on: AugmentOn) -> Self {
        self.augment_on = on;
        self
    }
    pub fn skip_unmatched(mut self, v: bool) -> Self {
        self.skip_unmatched = v;
        self
    }
    /// `from_folder`: names of the training and validation folders.
    pub fn folders(mut self, train: &str, valid: &str) -> Self {
        self.train = train.into();
        self.valid = valid.into();
        self
    }
    /// `from_csv`: the labels file (relative to the data path).
    pub fn csv_labels(mut self, f: &str) -> Self {
        self.csv_labels = f.into();
        self
    }
}

/// Training and validation data for an image classifier.
pub struct ImageDataBunch {
    /// The dataset's folder (where models are saved, relative paths resolve).
    pub path: PathBuf,
    /// Class names, sorted; labels are indices into this.
    pub classes: Vec<String>,
    pub train_ds: LabelList,
    pub valid_ds: LabelList,
    /// Unlabelled items to predict (`add_test`), if any.
    pub test_ds: Option<LabelList>,
    pub train_dl: DataLoader,
    pub valid_dl: DataLoader,
    pub test_dl: Option<DataLoader>,
    /// Image (height, width) in batches.
    pub size: (usize, usize),
    pub bs: usize,
    pub stats: Option<Stats>,
    /// How many times `show_batch` ran (each shows another epoch's images).
    pub(crate) shown: std::sync::atomic::AtomicU64,
}

/// Which items are validation items.
enum Split {
    RandPct,
    Lists(Vec<PathBuf>, Vec<String>),
}

impl ImageDataBunch {
    /// Labels from a regex searched on each file's full path (group 1 is the label).
    pub fn from_name_re(
        path: impl AsRef<Path>,
        fnames: &[PathBuf],
        pat: &str,
        opts: DataOptions,
    ) -> Result<Self, DataError> {
        let (items, names) = label_from_re(fnames, pat, opts.skip_unmatched)?;
        Self::build(path.as_ref(), items, names, Split::RandPct, opts)
    }

    /// Labels from a function of each file's path (`None`: no label).
    pub fn from_name_func(
        path: impl AsRef<Path>,
        fnames: &[PathBuf],
        f: impl Fn(&Path) -> Option<String>,
        opts: DataOptions,
    ) -> Result<Self, DataError> {
        let (items, names) = label_from_func(fnames, f, opts.skip_unmatched)?;
        Self::build(path.as_ref(), items, names, Split::RandPct, opts)
    }

    /// Labels from folder names. With `<path>/<train>` and `<path>/<valid>` sub-folders
    /// (ImageNet style: `train/dog/1.jpg`), those are the split; with only `<path>/<train>`, or
    /// with class folders directly under `path`, `valid_pct` of the images are held out.
    pub fn from_folder(path: impl AsRef<Path>, opts: DataOptions) -> Result<Self, DataError> {
        let path = path.as_ref();
        let train_dir = path.join(&opts.train);
        let valid_dir = path.join(&opts.valid);
        if train_dir.is_dir() && valid_dir.is_dir() {
            let (items, names) = label_from_folder(&get_image_files(&train_dir)?)?;
            let (v_items, v_names) = label_from_folder(&get_image_files(&valid_dir)?)?;
            Self::build(path, items, names, Split::Lists(v_items, v_names), opts)
        } else {
            let root = if train_dir.is_dir() {
                train_dir
            } else {
                path.to_path_buf()
            };
            let files = get_image_files(&root)?;
            if files.is_empty() {
                return Err(DataError::Label(format!(
                    "no image files under {}; from_folder expects class folders (e.g. {}/dog/1.jpg)",
                    root.display(),
                    root.display()
                )));
            }
            let (items, names) = label_from_folder(&files)?;
            Self::build(path, items, names, Split::RandPct, opts)
        }
    }

    /// Labels from a CSV file (`opts.csv_labels`, default `labels.csv` in `path`): file names in
    /// column `fn_col` (relative to `path/folder`, `suffix` appended), labels in `label_col`.
    pub fn from_csv(path: impl AsRef<Path>, opts: DataOptions) -> Result<Self, DataError> {
        let path = path.as_ref();
        let csv_path = path.join(&opts.csv_labels);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(opts.header)
            .from_path(&csv_path)
            .map_err(|e| DataError::Label(format!("cannot read {}: {e}", csv_path.display())))?;
        let (mut items, mut names) = (Vec::new(), Vec::new());
        for (row, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| DataError::Label(format!("{}: {e}", csv_path.display())))?;
            let (Some(f), Some(l)) = (rec.get(opts.fn_col), rec.get(opts.label_col)) else {
                return Err(DataError::Label(format!(
                    "{} row {}: expected a file name in column {} and a label in column {}, found {} columns",
                    csv_path.display(),
                    row + 1,
                    opts.fn_col,
                    opts.label_col,
                    rec.len()
                )));
            };
            items.push(path.join(&opts.folder).join(format!("{f}{}", opts.suffix)));
            names.push(l.to_string());
        }
        if items.is_empty() {
            return Err(DataError::Label(format!(
                "{} has no rows",
                csv_path.display()
            )));
        }
        if let Some(missing) = items.iter().find(|p| !p.is_file()) {
            return Err(DataError::Label(format!(
                "{} names {} which does not exist; check `folder` and `suffix`",
                csv_path.display(),
                missing.display()
            )));
        }
        Self::build(path, items, names, Split::RandPct, opts)
    }

    /// From a list of files and a list of their labels.
    pub fn from_lists(
        path: impl AsRef<Path>,
        fnames: Vec<PathBuf>,
        labels: Vec<String>,
        opts: DataOptions,
    ) -> Result<Self, DataError> {
        if fnames.len() != labels.len() {
            return Err(DataError::Label(format!(
                "{} files but {} labels",
                fnames.len(),
                labels.len()
            )));
        }
        if fnames.is_empty() {
            return Err(DataError::Label("the file list is empty".into()));
        }
        Self::build(path.as_ref(), fnames, labels, Split::RandPct, opts)
    }

    fn build(
        path: &Path,
        items: Vec<PathBuf>,
        names: Vec<String>,
        split: Split,
        opts: DataOptions,
    ) -> Result<Self, DataError> {
        let n_train_input = items.len();
        let (all, train_idx, valid_idx) = match split {
            Split::RandPct => {
                let (t, v) = split_by_rand_pct(items.len(), opts.valid_pct, opts.seed)?;
                (label_list(items, names), t, v)
            }
            Split::Lists(v_items, v_names) => {
                let n_valid = v_items.len();
                let items = items.into_iter().chain(v_items).collect();
                let names = names.into_iter().chain(v_names).collect();
                let all = label_list(items, names);
                (
                    all,
                    (0..n_train_input).collect(),
                    (n_train_input..n_train_input + n_valid).collect(),
                )
            }
        };
        let (tfms, size) = (opts.ds_tfms.clone(), (opts.size, opts.size));
        Self::from_label_lists(
            path.to_path_buf(),
            all.subset(&train_idx),
            all.subset(&valid_idx),
            Vec::new(),
            tfms,
            size,
            true,
            opts,
        )
    }

    /// The loaders over labelled lists: the last step of the data block API
    /// ([`LabelLists::databunch`](super::block::LabelLists::databunch)).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_label_lists(
        path: PathBuf,
        train_ds: LabelList,
        valid_ds: LabelList,
        test: Vec<PathBuf>,
        tfms: Option<Transforms>,
        size: (usize, usize),
        tfm_y: bool,
        opts: DataOptions,
    ) -> Result<Self, DataError> {
        if opts.bs == 0 || size.0 == 0 || size.1 == 0 {
            return Err(DataError::Label(format!(
                "bs and size must be positive (bs {}, size {}x{})",
                opts.bs, size.0, size.1
            )));
        }
        if train_ds.is_empty() {
            return Err(DataError::Label("the training set is empty".into()));
        }
        let device = opts.device.unwrap_or_else(crate::device);
        let c = train_ds.classes.len();
        let loader = |ds: &LabelList, bs: usize| {
            let mut dl = DataLoader::with_targets(
                ds.items.clone(),
                ds.y.clone(),
                c,
                bs,
                size,
                opts.num_workers,
            );
            dl.device = device;
            dl.augment_on = opts.augment_on;
            dl.tfm_y = tfm_y;
            dl.set_seed(opts.seed);
            dl
        };
        let mut train_dl = loader(&train_ds, opts.bs);
        train_dl.shuffle = true;
        train_dl.drop_last = train_ds.len() > opts.bs;
        train_dl.tfms = tfms;
        // no gradients to keep in validation: larger batches fit (fastai uses bs * 2 too)
        let valid_dl = loader(&valid_ds, opts.bs * 2);
        let (test_ds, test_dl) = if test.is_empty() {
            (None, None)
        } else {
            // test items have no targets: class 0 stands in for them, as in fastai v1
            let ds = LabelList {
                y: Labels::Category(vec![0; test.len()]),
                items: test,
                classes: train_ds.classes.clone(),
            };
            let dl = loader(&ds, opts.bs * 2);
            (Some(ds), Some(dl))
        };
        Ok(ImageDataBunch {
            path,
            classes: train_ds.classes.clone(),
            train_ds,
            valid_ds,
            test_ds,
            train_dl,
            valid_dl,
            test_dl,
            size,
            bs: opts.bs,
            stats: None,
            shown: Default::default(),
        })
    }

    /// Normalizes every batch with `stats` (use `imagenet_stats()` with pretrained models).
    pub fn normalize(mut self, stats: Stats) -> Self {
        self.stats = Some(stats);
        self.train_dl.stats = Some(stats);
        self.valid_dl.stats = Some(stats);
        if let Some(dl) = &mut self.test_dl {
            dl.stats = Some(stats);
        }
        self
    }

    /// Number of classes (segmentation codes for masks; the number of outputs a model needs
    /// for points and numbers: 2 per point, 1 per number).
    pub fn c(&self) -> usize {
        match &self.train_ds.y {
            Labels::Points(v) => 2 * v.first().map_or(0, Vec::len),
            Labels::Float(v) => v.first().map_or(0, Vec::len),
            _ => self.classes.len(),
        }
    }

    /// The kind of targets: "category", "multi-category", "mask", "points" or "float".
    pub fn target_kind(&self) -> &'static str {
        self.train_ds.y.kind()
    }

    /// The device batches are put on.
    pub fn device(&self) -> Device {
        self.train_dl.device
    }
}

impl fmt::Display for ImageDataBunch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |ds: &LabelList| {
            let names: Vec<String> = (0..ds.len().min(5)).map(|i| ds.label(i)).collect();
            format!(
                "{} items; y: {}{}",
                ds.len(),
                names.join(","),
                if ds.len() > 5 { ",..." } else { "" }
            )
        };
        let what = match &self.train_ds.y {
            Labels::Category(_) => format!("{} classes", self.c()),
            Labels::MultiCategory(_) => format!("{} classes, multi-label", self.c()),
            Labels::Mask(_) => format!("segmentation, {} codes", self.c()),
            Labels::Points(v) => format!("{} point(s) per image", v.first().map_or(0, Vec::len)),
            Labels::Float(_) => format!("{} number(s) per image", self.c()),
        };
        writeln!(
            f,
            "ImageDataBunch; {what}, {}x{} images, bs {}, path {}",
            self.size.0,
            self.size.1,
            self.bs,
            self.path.display()
        )?;
        writeln!(f, "Train: {}", show(&self.train_ds))?;
        write!(f, "Valid: {}", show(&self.valid_ds))?;
        if let Some(t) = &self.test_ds {
            write!(f, "\nTest: {} items", t.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageDataBunch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
