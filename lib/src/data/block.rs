//! The data block API of fastai v1: say where the items are, how to split them, how to label
//! them and how to transform them, one step at a time, and get an [`ImageDataBunch`].
//!
//! ```text
//! ImageList::from_folder / from_csv / new          the items (image files)
//!   .split_by_rand_pct / _folder / _fname_file / _valid_func / _idx / split_none
//!   .label_from_re / _folder / _func / _df        targets: categories, multi-labels, floats
//!   .transform(tfms, size)  .add_test(items)      augmentation (masks and points follow)
//!   .databunch(bs)?  .normalize(stats)
//! ```
//!
//! `SegmentationItemList` labels each image with a mask file of class ids (`codes`);
//! `PointsItemList` with points in the image. The split and labelling steps are the same.
//!
//! ```no_run
//! use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! let path = untar_data(URLs::PLANET_TINY)?;
//! let data = ImageList::from_csv(&path, "labels.csv", CsvOptions::default().folder("train").suffix(".jpg"))?
//!     .split_by_rand_pct(0.2)?
//!     .label_from_df(1, Some(" "))?
//!     .transform(get_transforms().flip_vert(true).max_warp(0.0), 128)
//!     .databunch(16)?
//!     .normalize(imagenet_stats());
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashSet};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use super::bunch::{DataOptions, ImageDataBunch};
use super::files::get_image_files;
use super::image::{image_size, open_mask};
use super::labels::{
    label_from_folder, label_from_func as label_func, label_from_re, label_list, split_by_rand_pct,
    LabelList, Labels,
};
use super::transforms::Transforms;
use super::DataError;

type Result<T> = std::result::Result<T, DataError>;

/// Item lists of images labelled with classes, multi-labels or numbers.
#[derive(Debug, Clone, Copy)]
pub struct Images;
/// Item lists of images labelled with segmentation masks.
#[derive(Debug, Clone, Copy)]
pub struct Segmentation;
/// Item lists of images labelled with points.
#[derive(Debug, Clone, Copy)]
pub struct Points;

/// Image files, before the split (fastai's `ImageList`).
pub type ImageList = ItemList<Images>;
/// Images whose targets are masks (fastai's `SegmentationItemList`).
pub type SegmentationItemList = ItemList<Segmentation>;
/// Images whose targets are points (fastai's `PointsItemList`).
pub type PointsItemList = ItemList<Points>;

/// A list of image files under a folder, with the rows of the CSV file they came from.
#[derive(Debug, Clone)]
pub struct ItemList<K> {
    /// The dataset's folder: relative names resolve against it, models are saved under it.
    pub path: PathBuf,
    pub items: Vec<PathBuf>,
    /// The CSV rows, one per item (`from_csv`), for `label_from_df`.
    rows: Option<Vec<Vec<String>>>,
    csv_name: String,
    kind: PhantomData<K>,
}

/// How `from_csv` reads its file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// Sub-folder of `path` the file names are relative to.
    pub folder: String,
    /// Appended to every file name (`.jpg` for planet's `train_v2.csv`).
    pub suffix: String,
    /// The column of file names.
    pub fn_col: usize,
    /// The first row holds column names.
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            folder: ".".into(),
            suffix: String::new(),
            fn_col: 0,
            header: true,
        }
    }
}

impl CsvOptions {
    pub fn folder(mut self, f: &str) -> Self {
        self.folder = f.into();
        self
    }
    pub fn suffix(mut self, s: &str) -> Self {
        self.suffix = s.into();
        self
    }
    pub fn fn_col(mut self, c: usize) -> Self {
        self.fn_col = c;
        self
    }
    pub fn header(mut self, h: bool) -> Self {
        self.header = h;
        self
    }
}

impl<K> ItemList<K> {
    /// A list of the given files under `path`.
    pub fn new(path: impl AsRef<Path>, items: Vec<PathBuf>) -> Self {
        ItemList {
            path: path.as_ref().to_path_buf(),
            items,
            rows: None,
            csv_name: String::new(),
            kind: PhantomData,
        }
    }

    /// Every image file under `path`, recursively, in sorted order.
    pub fn from_folder(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let items = get_image_files(path)?;
        if items.is_empty() {
            return Err(DataError::Label(format!(
                "no image files under {}",
                path.display()
            )));
        }
        Ok(Self::new(path, items))
    }

    /// The files named in a CSV file `path/csv_name` (fastai's `from_csv`), keeping its rows
    /// for `label_from_df`. A row naming a missing file is an error.
    pub fn from_csv(path: impl AsRef<Path>, csv_name: &str, opts: CsvOptions) -> Result<Self> {
        let path = path.as_ref();
        let csv_path = path.join(csv_name);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(opts.header)
            .flexible(true)
            .from_path(&csv_path)
            .map_err(|e| DataError::Label(format!("cannot read {}: {e}", csv_path.display())))?;
        let (mut items, mut rows) = (Vec::new(), Vec::new());
        for (row, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| DataError::Label(format!("{}: {e}", csv_path.display())))?;
            let Some(f) = rec.get(opts.fn_col) else {
                return Err(DataError::Label(format!(
                    "{} row {}: no column {} (file names), the row has {} columns",
                    csv_path.display(),
                    row + 1,
                    opts.fn_col,
                    rec.len()
                )));
            };
            let file = path.join(&opts.folder).join(format!("{f}{}", opts.suffix));
            if !file.is_file() {
                return Err(DataError::Label(format!(
                    "{} row {} names {} which does not exist; check `folder` and `suffix`",
                    csv_path.display(),
                    row + 1,
                    file.display()
                )));
            }
            items.push(file);
            rows.push(rec.iter().map(str::to_string).collect());
        }
        if items.is_empty() {
            return Err(DataError::Label(format!(
                "{} has no rows",
                csv_path.display()
            )));
        }
        let mut list = Self::new(path, items);
        list.rows = Some(rows);
        list.csv_name = csv_name.to_string();
        Ok(list)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keeps the items `keep` says yes to.
    pub fn filter_by_func(self, keep: impl Fn(&Path) -> bool) -> Self {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| keep(&self.items[i])).collect();
        self.subset(&idx)
    }

    fn subset(&self, idx: &[usize]) -> Self {
        ItemList {
            path: self.path.clone(),
            items: idx.iter().map(|&i| self.items[i].clone()).collect(),
            rows: self
                .rows
                .as_ref()
                .map(|r| idx.iter().map(|&i| r[i].clone()).collect()),
            csv_name: self.csv_name.clone(),
            kind: PhantomData,
        }
    }

    /// Splits by whether each item is a validation item.
    fn split_where(self, is_valid: impl Fn(usize) -> Option<bool>) -> Result<ItemLists<K>> {
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        for i in 0..self.len() {
            match is_valid(i) {
                Some(true) => valid.push(i),
                Some(false) => train.push(i),
                None => {}
            }
        }
        if train.is_empty() {
            return Err(DataError::Label(format!(
                "the split leaves no training items (of {})",
                self.len()
            )));
        }
        Ok(ItemLists {
            path: self.path.clone(),
            train: self.subset(&train),
            valid: self.subset(&valid),
        })
    }

    /// A random `valid_pct` of the items for validation (seed 42: the same split every run).
    pub fn split_by_rand_pct(self, valid_pct: f64) -> Result<ItemLists<K>> {
        self.split_by_rand_pct_with(valid_pct, 42)
    }

    /// A random `valid_pct` of the items for validation, drawn from `seed`.
    pub fn split_by_rand_pct_with(self, valid_pct: f64, seed: u64) -> Result<ItemLists<K>> {
        let (_, valid) = split_by_rand_pct(self.len(), valid_pct, seed)?;
        let valid: HashSet<usize> = valid.into_iter().collect();
        self.split_where(|i| Some(valid.contains(&i)))
    }

    /// Items under `path/train` train, under `path/valid` validate; others are left out.
    pub fn split_by_folder(self) -> Result<ItemLists<K>> {
        self.split_by_folder_with("train", "valid")
    }

    /// [`split_by_folder`](Self::split_by_folder) with other folder names.
    pub fn split_by_folder_with(self, train: &str, valid: &str) -> Result<ItemLists<K>> {
        let top = |p: &Path| {
            p.strip_prefix(&self.path)
                .ok()
                .and_then(|r| r.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
        };
        let tops: Vec<Option<String>> = self.items.iter().map(|p| top(p)).collect();
        let (path, n) = (self.path.clone(), self.len());
        let lists = self.split_where(|i| match tops[i].as_deref() {
            Some(t) if t == valid => Some(true),
            Some(t) if t == train => Some(false),
            _ => None,
        });
        match lists {
            Ok(l) if l.valid.is_empty() => Err(DataError::Label(format!(
                "split_by_folder: none of the {n} items is under {}",
                path.join(valid).display()
            ))),
            Err(_) => Err(DataError::Label(format!(
                "split_by_folder: none of the {n} items is under {}",
                path.join(train).display()
            ))),
            ok => ok,
        }
    }

    /// The items named in the file `path/fname` (one name per line, relative to `path`, as
    /// camvid's `valid.txt`) validate. A name that is not among the items is an error.
    pub fn split_by_fname_file(self, fname: &str) -> Result<ItemLists<K>> {
        let file = self.path.join(fname);
        let text = std::fs::read_to_string(&file).map_err(DataError::io("reading", &file))?;
        let names: Vec<PathBuf> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| self.path.join(l))
            .collect();
        if names.is_empty() {
            return Err(DataError::Label(format!(
                "{} names no files",
                file.display()
            )));
        }
        self.split_by_files(&names).map_err(|e| match e {
            DataError::Label(m) => DataError::Label(format!("{}: {m}", file.display())),
            other => other,
        })
    }

    /// The items whose paths are in `valid_names` validate. A name of a file that does not
    /// exist is an error (a name of an existing file left out of this list, by
    /// `filter_by_func` say, is not).
    pub fn split_by_files(self, valid_names: &[PathBuf]) -> Result<ItemLists<K>> {
        let known: HashSet<&Path> = self.items.iter().map(PathBuf::as_path).collect();
        let missing: Vec<&PathBuf> = valid_names
            .iter()
            .filter(|p| !known.contains(p.as_path()) && !p.is_file())
            .collect();
        if !missing.is_empty() {
            return Err(DataError::Label(format!(
                "{} of the {} validation names are files that do not exist, e.g. {}",
                missing.len(),
                valid_names.len(),
                missing[0].display()
            )));
        }
        let valid: HashSet<PathBuf> = valid_names.iter().cloned().collect();
        let is_valid: Vec<bool> = self.items.iter().map(|p| valid.contains(p)).collect();
        self.split_where(|i| Some(is_valid[i]))
    }

    /// The items `is_valid` says yes to validate.
    pub fn split_by_valid_func(self, is_valid: impl Fn(&Path) -> bool) -> Result<ItemLists<K>> {
        let flags: Vec<bool> = self.items.iter().map(|p| is_valid(p)).collect();
        self.split_where(|i| Some(flags[i]))
    }

    /// The items at `valid_idx` validate.
    pub fn split_by_idx(self, valid_idx: &[usize]) -> Result<ItemLists<K>> {
        if let Some(&bad) = valid_idx.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::Label(format!(
                "split_by_idx: index {bad} is past the {} items",
                self.len()
            )));
        }
        let valid: HashSet<usize> = valid_idx.iter().copied().collect();
        self.split_where(|i| Some(valid.contains(&i)))
    }

    /// Everything trains; the validation set is empty.
    pub fn split_none(self) -> Result<ItemLists<K>> {
        self.split_where(|_| Some(false))
    }
}

/// The training and validation item lists, before labelling (fastai's `ItemLists`).
#[derive(Debug, Clone)]
pub struct ItemLists<K> {
    pub path: PathBuf,
    pub train: ItemList<K>,
    pub valid: ItemList<K>,
}

impl<K> ItemLists<K> {
    /// Train then valid items, and where the valid ones start.
    fn all_items(&self) -> (Vec<PathBuf>, usize) {
        let n = self.train.len();
        let all = self
            .train
            .items
            .iter()
            .chain(&self.valid.items)
            .cloned()
            .collect();
        (all, n)
    }

    /// Labelled lists from the train-then-valid items and their targets.
    fn finish(self, items: Vec<PathBuf>, y: Labels, classes: Vec<String>) -> LabelLists {
        let n_train = self.train.len();
        debug_assert_eq!(items.len(), y.len());
        let train_idx: Vec<usize> = (0..n_train).collect();
        let valid_idx: Vec<usize> = (n_train..items.len()).collect();
        let all = LabelList { items, y, classes };
        LabelLists::new(self.path, all.subset(&train_idx), all.subset(&valid_idx))
    }

    /// Runs a user's labelling function on one item, turning a panic into an error that names
    /// the item.
    fn call<T>(f: impl Fn(&Path) -> T, p: &Path) -> Result<T> {
        catch_unwind(AssertUnwindSafe(|| f(p))).map_err(|e| {
            DataError::Label(format!(
                "the labelling function failed on {}: {}",
                p.display(),
                crate::error::panic_text(e)
            ))
        })
    }
}

impl ItemLists<Images> {
    /// Labels from a regex searched on each file's full path (group 1).
    pub fn label_from_re(self, pat: &str) -> Result<LabelLists> {
        let (items, _) = self.all_items();
        let (labelled, names) = label_from_re(&items, pat, false)?;
        let ll = label_list(labelled, names);
        Ok(self.finish(ll.items, ll.y, ll.classes))
    }

    /// Labels from the name of each file's folder.
    pub fn label_from_folder(self) -> Result<LabelLists> {
        let (items, _) = self.all_items();
        let (labelled, names) = label_from_folder(&items)?;
        let ll = label_list(labelled, names);
        Ok(self.finish(ll.items, ll.y, ll.classes))
    }

    /// Labels from a function of each file's path (`None`: the file has no label, an error).
    pub fn label_from_func(self, f: impl Fn(&Path) -> Option<String>) -> Result<LabelLists> {
        let (items, _) = self.all_items();
        let (labelled, names) = label_func(&items, f, false)?;
        let ll = label_list(labelled, names);
        Ok(self.finish(ll.items, ll.y, ll.classes))
    }

    /// Several labels per item from a function (multi-label classification).
    pub fn label_from_func_multi(self, f: impl Fn(&Path) -> Vec<String>) -> Result<LabelLists> {
        let (items, _) = self.all_items();
        let tags: Vec<Vec<String>> = items
            .iter()
            .map(|p| Self::call(&f, p))
            .collect::<Result<_>>()?;
        Ok(self.finish_multi(items, tags))
    }

    /// Numbers per item from a function (regression; fastai's `label_cls=FloatList`). Every
    /// item must get the same count of numbers.
    pub fn label_from_func_float(self, f: impl Fn(&Path) -> Vec<f32>) -> Result<LabelLists> {
        let (items, _) = self.all_items();
        let ys: Vec<Vec<f32>> = items
            .iter()
            .map(|p| Self::call(&f, p))
            .collect::<Result<_>>()?;
        check_same_len(&items, &ys, "numbers")?;
        Ok(self.finish(items, Labels::Float(ys), Vec::new()))
    }

    /// Labels from column `col` of the CSV rows (`from_csv`). With `label_delim` each cell is
    /// split into several labels (multi-label, planet's `label_delim=' '`).
    pub fn label_from_df(self, col: usize, label_delim: Option<&str>) -> Result<LabelLists> {
        let cells = self.column(col)?;
        let (items, _) = self.all_items();
        let Some(delim) = label_delim else {
            if let Some(i) = cells.iter().position(|c| c.trim().is_empty()) {
                return Err(DataError::Label(format!(
                    "the label of {} (column {col}) is empty",
                    items[i].display()
                )));
            }
            let ll = label_list(items, cells);
            return Ok(self.finish(ll.items, ll.y, ll.classes));
        };
        if delim.is_empty() {
            return Err(DataError::Label("label_delim is empty".into()));
        }
        let tags: Vec<Vec<String>> = cells
            .iter()
            .map(|c| {
                c.split(delim)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        if cells.iter().all(|c| !c.contains(delim)) {
            return Err(DataError::Label(format!(
                "label_delim {delim:?} splits none of the {} labels in column {col} (e.g. {:?}); \
                 pass the separator the file uses, or None for one label per item",
                cells.len(),
                cells[0]
            )));
        }
        Ok(self.finish_multi(items, tags))
    }

    /// Numbers from columns `cols` of the CSV rows (regression).
    pub fn label_from_df_float(self, cols: &[usize]) -> Result<LabelLists> {
        let columns: Vec<Vec<String>> = cols
            .iter()
            .map(|&c| self.column(c))
            .collect::<Result<_>>()?;
        let (items, _) = self.all_items();
        let mut ys = vec![Vec::with_capacity(cols.len()); items.len()];
        for (c, column) in cols.iter().zip(&columns) {
            for (i, cell) in column.iter().enumerate() {
                let v: f32 = cell.trim().parse().map_err(|_| {
                    DataError::Label(format!(
                        "column {c} of {} is {cell:?}, not a number",
                        items[i].display()
                    ))
                })?;
                ys[i].push(v);
            }
        }
        Ok(self.finish(items, Labels::Float(ys), Vec::new()))
    }

    /// The cells of CSV column `col`, train then valid.
    fn column(&self, col: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for list in [&self.train, &self.valid] {
            let Some(rows) = &list.rows else {
                return Err(DataError::Label(
                    "label_from_df reads the CSV rows: make the item list with \
                     ImageList::from_csv"
                        .into(),
                ));
            };
            for (row, item) in rows.iter().zip(&list.items) {
                let cell = row.get(col).ok_or_else(|| {
                    DataError::Label(format!(
                        "{}: the row of {} has no column {col} ({} columns)",
                        list.csv_name,
                        item.display(),
                        row.len()
                    ))
                })?;
                out.push(cell.clone());
            }
        }
        Ok(out)
    }

    fn finish_multi(self, items: Vec<PathBuf>, tags: Vec<Vec<String>>) -> LabelLists {
        let classes: Vec<String> = tags
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let y = tags
            .iter()
            .map(|t| {
                let mut ids: Vec<usize> = t
                    .iter()
                    .map(|n| classes.binary_search(n).expect("class present"))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            })
            .collect();
        self.finish(items, Labels::MultiCategory(y), classes)
    }
}

impl ItemLists<Segmentation> {
    /// Each image's mask file from `get_y` (camvid: `images/x.png` -> `labels/x_P.png`), with
    /// the names of the class ids. Every mask must exist, have its image's size and hold only
    /// ids below `codes.len()`: all are checked here (in parallel), so training never meets a
    /// bad one.
    pub fn label_from_func(
        self,
        get_y: impl Fn(&Path) -> PathBuf,
        codes: Vec<String>,
    ) -> Result<LabelLists> {
        if codes.is_empty() {
            return Err(DataError::Label(
                "codes is empty: name the mask's classes".into(),
            ));
        }
        let (items, _) = self.all_items();
        let masks: Vec<PathBuf> = items
            .iter()
            .map(|p| Self::call(&get_y, p))
            .collect::<Result<_>>()?;
        check_masks(&items, &masks, codes.len())?;
        Ok(self.finish(items, Labels::Mask(masks), codes))
    }
}

impl ItemLists<Points> {
    /// Each image's points `[y, x]` (pixels of the image as stored) from `get_y`. Every item
    /// must have the same number of points.
    pub fn label_from_func(self, get_y: impl Fn(&Path) -> Vec<[f32; 2]>) -> Result<LabelLists> {
        let (items, _) = self.all_items();
        let pts: Vec<Vec<[f32; 2]>> = items
            .iter()
            .map(|p| Self::call(&get_y, p))
            .collect::<Result<_>>()?;
        check_same_len(&items, &pts, "points")?;
        Ok(self.finish(items, Labels::Points(pts), Vec::new()))
    }
}

fn check_same_len<T>(items: &[PathBuf], ys: &[Vec<T>], what: &str) -> Result<()> {
    let Some(first) = ys.first() else {
        return Ok(());
    };
    if first.is_empty() {
        return Err(DataError::Label(format!(
            "the labelling function gave no {what} for {}",
            items[0].display()
        )));
    }
    if let Some(i) = ys.iter().position(|y| y.len() != first.len()) {
        return Err(DataError::Label(format!(
            "{} has {} {what} but {} has {}: every item needs the same number",
            items[i].display(),
            ys[i].len(),
            items[0].display(),
            first.len()
        )));
    }
    Ok(())
}

/// Checks every mask: it exists, has its image's size, and its ids are below `n_codes`.
fn check_masks(items: &[PathBuf], masks: &[PathBuf], n_codes: usize) -> Result<()> {
    if let Some(i) = masks.iter().position(|m| !m.is_file()) {
        return Err(DataError::Label(format!(
            "the mask of {} should be {}, which does not exist",
            items[i].display(),
            masks[i].display()
        )));
    }
    let check = |i: usize| -> Result<()> {
        let mask = open_mask(&masks[i])?;
        let (w, h) = image_size(&items[i])?;
        if mask.dimensions() != (w, h) {
            return Err(DataError::Label(format!(
                "the mask {} is {}x{} but its image {} is {w}x{h}: a mask must have its \
                 image's size",
                masks[i].display(),
                mask.width(),
                mask.height(),
                items[i].display()
            )));
        }
        let top = mask.as_raw().iter().copied().max().unwrap_or(0) as usize;
        if top >= n_codes {
            return Err(DataError::Label(format!(
                "the mask {} holds class id {top}, but codes has {n_codes} names (ids 0..{}): \
                 pass the full list of codes",
                masks[i].display(),
                n_codes - 1
            )));
        }
        Ok(())
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let idx: Vec<usize> = (0..masks.len()).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = idx
            .chunks(masks.len().div_ceil(threads).max(1))
            .map(|part| s.spawn(move || part.iter().try_for_each(|&i| check(i))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("mask check thread"))
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}

/// An image size: one number (square) or `(height, width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize, pub usize);

impl From<usize> for Size {
    fn from(s: usize) -> Size {
        Size(s, s)
    }
}

impl From<(usize, usize)> for Size {
    fn from((h, w): (usize, usize)) -> Size {
        Size(h, w)
    }
}

/// Labelled training and validation lists, with the transforms to apply (fastai's
/// `LabelLists`); `databunch(bs)` makes the loaders.
#[derive(Debug, Clone)]
pub struct LabelLists {
    pub path: PathBuf,
    pub train: LabelList,
    pub valid: LabelList,
    /// Unlabelled items to predict (`add_test`).
    pub test: Vec<PathBuf>,
    tfms: Option<Transforms>,
    size: Size,
    tfm_y: bool,
}

impl LabelLists {
    fn new(path: PathBuf, train: LabelList, valid: LabelList) -> LabelLists {
        LabelLists {
            path,
            train,
            valid,
            test: Vec::new(),
            tfms: None,
            size: Size(224, 224),
            tfm_y: true,
        }
    }

    /// Training augmentation and the image size (validation and test images are only resized
    /// and centre-cropped). Masks and points follow their image's augmentation (fastai needs
    /// `tfm_y=True` for that; here it is the default, see [`tfm_y`](Self::tfm_y)).
    pub fn transform(
        mut self,
        tfms: impl Into<Option<Transforms>>,
        size: impl Into<Size>,
    ) -> LabelLists {
        self.tfms = tfms.into();
        self.size = size.into();
        self
    }

    /// Whether masks and points go through their image's augmentation (default: yes).
    pub fn tfm_y(mut self, on: bool) -> LabelLists {
        self.tfm_y = on;
        self
    }

    /// Unlabelled items to predict (`learn.get_preds_test()`).
    pub fn add_test(mut self, items: Vec<PathBuf>) -> LabelLists {
        self.test = items;
        self
    }

    /// Every image under `path/folder` as the test set.
    pub fn add_test_folder(self, folder: &str) -> Result<LabelLists> {
        let dir = self.path.join(folder);
        let items = get_image_files(&dir)?;
        if items.is_empty() {
            return Err(DataError::Label(format!(
                "add_test_folder: no image files under {}",
                dir.display()
            )));
        }
        Ok(self.add_test(items))
    }

    /// The class names (or segmentation codes).
    pub fn classes(&self) -> &[String] {
        &self.train.classes
    }

    /// The loaders, `bs` items per training batch (fastai's defaults otherwise: seed 42, every
    /// core decoding, the default device).
    pub fn databunch(self, bs: usize) -> Result<ImageDataBunch> {
        self.databunch_with(DataOptions::default().bs(bs))
    }

    /// The loaders with `opts`' batch size, seed, workers and device (its size and transforms
    /// are the ones given to `transform`).
    pub fn databunch_with(self, opts: DataOptions) -> Result<ImageDataBunch> {
        let Size(h, w) = self.size;
        ImageDataBunch::from_label_lists(
            self.path,
            self.train,
            self.valid,
            self.test,
            self.tfms,
            (h, w),
            self.tfm_y,
            opts,
        )
    }
}
