//! The DataLoader: decodes and augments images on all cores, a few batches ahead of the model.
//!
//! Each epoch, a producer thread walks the (shuffled) batches in order; the images of one batch
//! are decoded and augmented in parallel by `num_workers` threads, written straight into one `f32` buffer,
//! and handed over through a bounded channel, so the next batches are being prepared while the
//! model trains on this one. Augmentation randomness comes from (seed, epoch, item), so a run is
//! reproducible whatever the thread timing.
//!
//! A file that cannot be read or decoded is left out of its batch with one warning naming it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use super::image::open_image;
use super::labels::Labels;
use super::order::{self, Shard};
use super::transforms::{
    map_points, presize, render, render_batch_in, render_mask, Augment, BatchPicture, Transforms,
};
use crate::error::panic_text;

/// Per-channel mean and standard deviation, for `normalize`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// The ImageNet statistics pretrained models expect.
pub fn imagenet_stats() -> Stats {
    Stats {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    }
}

/// One batch: images `(N, 3, H, W)` (normalized if the loader is), targets (`(N,)` Int64 class
/// indices for single-label data; see [`Labels`] for the other kinds), and which dataset items
/// they are.
#[derive(Debug)]
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    pub indices: Vec<usize>,
}

/// A fixed view of every image, for test-time augmentation: the crop window and zoom centre
/// at `corner` (row, column in 0..=1), zoomed by `scale`, flipped or not. Rotation, warp and
/// lighting are still drawn from the loader's `tfms`, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtaView {
    pub corner: (f32, f32),
    pub scale: f32,
    pub flip: bool,
}

/// Where a loader's augmentation (the resampling, lighting and normalization) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AugmentOn {
    /// [`AugmentOn::Device`] when the batches go to a GPU, [`AugmentOn::Workers`] on the CPU
    /// (where it measured faster).
    #[default]
    Auto,
    /// Each worker thread decodes and augments its images into floats (one resampling pass
    /// per image, on the CPU).
    Workers,
    /// Workers only decode (and shrink pictures more than twice too large) and keep bytes; the
    /// batch goes to its device as `uint8` and is augmented there as a whole (fastai v2's batch
    /// transforms): one gather, one projective grid and one `grid_sample` per batch, the same
    /// values as the per-image path.
    Device,
}

impl AugmentOn {
    /// Whether batches for `device` are augmented on it.
    pub fn on_device(self, device: Device) -> bool {
        match self {
            AugmentOn::Auto => device.is_cuda(),
            AugmentOn::Workers => false,
            AugmentOn::Device => true,
        }
    }
}

/// Loads batches of (image, target) from a list of files.
pub struct DataLoader {
    items: Arc<Vec<PathBuf>>,
    targets: Arc<Labels>,
    /// Masks and points go through each image's augmentation (fastai's `tfm_y`); when off
    /// they only follow the resize and centre crop.
    pub tfm_y: bool,
    /// Batch size.
    pub bs: usize,
    /// Shuffle the items every epoch (training) or keep their order (validation).
    pub shuffle: bool,
    /// Drop the last, smaller batch (training: keeps BatchNorm statistics sound).
    pub drop_last: bool,
    /// Random augmentation; `None` = centre crop only.
    pub tfms: Option<Transforms>,
    /// Output height and width.
    pub size: (usize, usize),
    pub device: Device,
    pub stats: Option<Stats>,
    /// Every image seen through this view (test-time augmentation).
    pub tta: Option<TtaView>,
    /// Where the augmentation runs: on the worker threads per image, or on the device per batch.
    pub augment_on: AugmentOn,
    c: usize,
    seed: u64,
    epoch: u64,
    shard: Option<Shard>,
    prefetch: usize,
    workers: usize,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
}

impl DataLoader {
    /// A loader over `items` with class indices `labels`; `num_workers` threads decode
    /// (0 = all cores).
    pub fn new(
        items: Vec<PathBuf>,
        labels: Vec<i64>,
        bs: usize,
        size: (usize, usize),
        num_workers: usize,
    ) -> DataLoader {
        let labels = Labels::Category(labels.into_iter().map(|l| l as usize).collect());
        DataLoader::with_targets(items, labels, 0, bs, size, num_workers)
    }

    /// A loader over `items` with targets of any kind; `c` is the number of classes of
    /// multi-category targets (the width of their multi-hot rows).
    pub fn with_targets(
        items: Vec<PathBuf>,
        targets: Labels,
        c: usize,
        bs: usize,
        size: (usize, usize),
        num_workers: usize,
    ) -> DataLoader {
        assert_eq!(items.len(), targets.len(), "one target per item");
        assert!(
            y_len(&targets, c, size) > 0,
            "every item needs a non-empty target (points, numbers, classes)"
        );
        assert!(bs > 0, "batch size must be positive");
        let threads = if num_workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            num_workers
        };
        DataLoader {
            items: Arc::new(items),
            targets: Arc::new(targets),
            tfm_y: true,
            c,
            bs,
            shuffle: false,
            drop_last: false,
            tfms: None,
            size,
            device: Device::Cpu,
            stats: None,
            tta: None,
            augment_on: AugmentOn::Auto,
            seed: 42,
            epoch: 0,
            shard: None,
            prefetch: 3,
            workers: threads.max(1),
            warned: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        order::n_batches(self.items.len(), self.bs, self.drop_last, self.shard)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the seed for shuffling and augmentation (epoch 0 starts again).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.epoch = 0;
    }

    /// How many decoding threads.
    pub fn num_workers(&self) -> usize {
        self.workers
    }

    /// The item order of epoch `epoch` (this rank's share of it in data-parallel training).
    fn order(&self, epoch: u64) -> Vec<usize> {
        order::epoch_order(
            self.items.len(),
            self.shuffle,
            self.seed,
            epoch,
            self.bs,
            self.drop_last,
            self.shard,
        )
    }

    /// Data-parallel training: from now on every epoch yields only `shard`'s share of the items
    /// (see [`Shard`]); `None` goes back to all of them.
    pub fn set_shard(&mut self, shard: Option<Shard>) {
        self.shard = shard;
    }

    /// The share this loader yields, if it is sharded.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// One epoch of batches, prepared in the background. Each call starts the next epoch.
    pub fn iter(&mut self) -> BatchIter {
        let epoch = self.epoch;
        self.epoch += 1;
        self.iter_epoch(epoch)
    }

    /// The batches of epoch number `epoch` (its shuffle and augmentation), without moving the
    /// loader on: what `show_batch` and `one_batch` look at.
    pub fn iter_epoch(&self, epoch: u64) -> BatchIter {
        let order = self.order(epoch);
        let job = Job {
            items: self.items.clone(),
            targets: self.targets.clone(),
            tfm_y: self.tfm_y,
            y_len: y_len(&self.targets, self.c, self.size),
            c: self.c,
            tfms: self.tfms.clone(),
            tta: self.tta,
            size: self.size,
            seed: self.seed,
            epoch,
            warned: self.warned.clone(),
            norm: self.stats.map(|s| (s.mean, s.std)),
            on_device: self.augment_on.on_device(self.device),
            device: self.device,
        };
        let (tx, rx) = sync_channel::<Result<Loaded, String>>(self.prefetch);
        let (bs, workers) = (self.bs, self.workers);
        std::thread::Builder::new()
            .name("fastai-loader".into())
            .spawn(move || {
                for chunk in order.chunks(bs) {
                    // A failure here (a device out of memory on the batch path, a bug) must
                    // reach the training loop, not end the epoch early without a word.
                    let batch = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job.load(chunk, workers)
                    })) {
                        Ok(b) => b,
                        Err(p) => {
                            let _ = tx.send(Err(panic_text(p)));
                            return;
                        }
                    };
                    if batch.indices.is_empty() {
                        continue; // every file of this batch was unreadable
                    }
                    if tx.send(Ok(batch)).is_err() {
                        return; // the consumer stopped (end of training, interrupt)
                    }
                }
            })
            .expect("cannot start the loader thread");
        BatchIter {
            rx,
            size: self.size,
            device: self.device,
            remaining: self.len(),
            kind: YKind::of(&self.targets, self.c),
        }
    }

    /// The targets, one per item.
    pub fn targets(&self) -> &Labels {
        &self.targets
    }

    /// The first batch of a fresh epoch (for show_batch and shape checks); does not advance
    /// the loader's epoch counter.
    pub fn one_batch(&self) -> Option<Batch> {
        self.iter_epoch(self.epoch).next()
    }
}

/// How many numbers one item's target takes in a batch.
fn y_len(targets: &Labels, c: usize, (h, w): (usize, usize)) -> usize {
    match targets {
        Labels::Category(_) => 1,
        Labels::MultiCategory(_) => c,
        Labels::Mask(_) => h * w,
        Labels::Points(v) => 2 * v.first().map_or(1, Vec::len),
        Labels::Float(v) => v.first().map_or(1, Vec::len),
    }
}

/// The shape and type of a batch's targets.
#[derive(Debug, Clone, Copy)]
enum YKind {
    Category,
    MultiCategory(usize),
    Mask,
    Points(usize),
    Float(usize),
}

impl YKind {
    fn of(targets: &Labels, c: usize) -> YKind {
        match targets {
            Labels::Category(_) => YKind::Category,
            Labels::MultiCategory(_) => YKind::MultiCategory(c),
            Labels::Mask(_) => YKind::Mask,
            Labels::Points(v) => YKind::Points(v.first().map_or(0, Vec::len)),
            Labels::Float(v) => YKind::Float(v.first().map_or(0, Vec::len)),
        }
    }
}

/// One batch as the workers leave it: images as flat `f32`s, or already rendered on the
/// device from the workers' bytes; targets as flat `f32`s.
struct Loaded {
    x: Pixels,
    y: Vec<f32>,
    indices: Vec<usize>,
}

enum Pixels {
    Floats(Vec<f32>),
    /// `[N, 3, H, W]` on the loader's device.
    Rendered(Tensor),
}

/// A decoded picture waiting for the batch render: its presized bytes, its original size and
/// its drawn augmentation.
struct Pending {
    img: image::RgbImage,
    full: (u32, u32),
    aug: Augment,
}

struct Job {
    items: Arc<Vec<PathBuf>>,
    targets: Arc<Labels>,
    tfm_y: bool,
    y_len: usize,
    c: usize,
    tfms: Option<Transforms>,
    tta: Option<TtaView>,
    size: (usize, usize),
    seed: u64,
    epoch: u64,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
    norm: Option<([f32; 3], [f32; 3])>,
    on_device: bool,
    device: Device,
}

impl Job {
    /// Loads the items of one batch on `workers` threads, each filling its share of the buffers.
    ///
    /// Scoped threads started per batch rather than a long-lived pool: in a notebook, every cell
    /// is compiled with its own copy of this crate (and of rayon's thread-local state), so a pool
    /// created by one cell cannot safely be driven from another. Starting two threads costs
    /// microseconds; a batch takes tens of milliseconds.
    fn load(&self, chunk: &[usize], workers: usize) -> Loaded {
        let (h, w) = self.size;
        let per = if self.on_device { 0 } else { 3 * h * w };
        let yl = self.y_len;
        let mut x = vec![0f32; chunk.len() * per];
        let mut y = vec![0f32; chunk.len() * yl];
        let share = chunk.len().div_ceil(workers.max(1)).max(1);
        let y_parts = y.chunks_mut(share * yl);
        // (with no float pixels to write, every worker gets an empty slice)
        let x_parts: Vec<&mut [f32]> = if per == 0 {
            (0..y_parts.len()).map(|_| &mut [][..]).collect()
        } else {
            x.chunks_mut(share * per).collect()
        };
        let done: Vec<Option<Option<Pending>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = x_parts
                .into_iter()
                .zip(y_parts)
                .zip(chunk.chunks(share))
                .map(|((xo, yo), items)| {
                    scope.spawn(move || {
                        items
                            .iter()
                            .enumerate()
                            .map(|(k, &i)| {
                                self.load_one(
                                    i,
                                    &mut xo[k * per..(k + 1) * per],
                                    &mut yo[k * yl..(k + 1) * yl],
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a loader thread panicked"))
                .collect()
        });
        let ok: Vec<bool> = done.iter().map(Option::is_some).collect();
        let (x, y, indices) = if ok.iter().all(|&b| b) {
            (x, y, chunk.to_vec())
        } else {
            // Leave the unreadable items out, keeping the order of the others.
            let (mut px, mut py, mut pi) = (
                Vec::with_capacity(x.len()),
                Vec::with_capacity(y.len()),
                Vec::new(),
            );
            for (k, &i) in chunk.iter().enumerate() {
                if ok[k] {
                    px.extend_from_slice(&x[k * per..(k + 1) * per]);
                    py.extend_from_slice(&y[k * yl..(k + 1) * yl]);
                    pi.push(i);
                }
            }
            (px, py, pi)
        };
        let x = if self.on_device {
            let pending: Vec<Pending> = done.into_iter().flatten().flatten().collect();
            Pixels::Rendered(self.render_on_device(&pending))
        } else {
            Pixels::Floats(x)
        };
        Loaded { x, y, indices }
    }

    /// The batch path: the workers' bytes in one `uint8` canvas (each picture at the top-left of
    /// its slot), copied to the device and augmented there.
    fn render_on_device(&self, pending: &[Pending]) -> Tensor {
        let (h, w) = self.size;
        if pending.is_empty() {
            return Tensor::zeros([0, 3, h as i64, w as i64], (Kind::Float, self.device));
        }
        let cw = pending.iter().map(|p| p.img.width()).max().unwrap_or(1) as usize;
        let ch = pending.iter().map(|p| p.img.height()).max().unwrap_or(1) as usize;
        let mut canvas = vec![0u8; pending.len() * ch * cw * 3];
        for (slot, p) in canvas.chunks_mut(ch * cw * 3).zip(pending) {
            let row = p.img.width() as usize * 3;
            for (r, src) in p.img.as_raw().chunks(row).enumerate() {
                slot[r * cw * 3..r * cw * 3 + row].copy_from_slice(src);
            }
        }
        let bytes =
            Tensor::from_slice(&canvas).view([pending.len() as i64, ch as i64, cw as i64, 3]);
        let bytes = if self.device.is_cuda() {
            // pinned host memory: the copy runs asynchronously while the model trains
            bytes
                .pin_memory(self.device)
                .to_device_(self.device, Kind::Uint8, true, false)
        } else {
            bytes.to_device(self.device)
        };
        let pictures: Vec<BatchPicture> = pending
            .iter()
            .map(|p| BatchPicture {
                dims: p.img.dimensions(),
                full: p.full,
            })
            .collect();
        let augs: Vec<Augment> = pending.iter().map(|p| p.aug.clone()).collect();
        tch::no_grad(|| render_batch_in(&bytes, &pictures, &augs, self.size, self.norm))
    }

    fn warn(&self, path: &Path, msg: &str) {
        if self.warned.lock().unwrap().insert(path.to_path_buf()) {
            eprintln!("warning: skipping {}: {msg}", path.display());
        }
    }

    /// Decodes and augments item `i` into `x`, its target into `y`; `None` (with one warning
    /// per file) if the image or its mask cannot be used. On the batch path `x` is empty and
    /// the decoded, presized picture comes back with its augmentation, to be rendered with the
    /// rest of its batch.
    fn load_one(&self, i: usize, x: &mut [f32], y: &mut [f32]) -> Option<Option<Pending>> {
        let path = &self.items[i];
        let img = match open_image(path) {
            Ok(img) => img,
            Err(e) => {
                self.warn(path, &e.to_string());
                return None;
            }
        };
        let mut aug = match &self.tfms {
            Some(t) => {
                let seed =
                    self.seed ^ (self.epoch << 40) ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
                let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
                let mut aug = t.sample(&mut rng);
                if let (Labels::Points(pts), true) = (&*self.targets, self.tfm_y) {
                    // A point that leaves the picture cannot be learned from (fastai drops it,
                    // which breaks a batch of fixed-size targets): draw again, a few times, then
                    // keep the picture whole.
                    let src = (img.height(), img.width());
                    let inside = |a: &Augment| {
                        map_points(&pts[i], src, self.size, a)
                            .iter()
                            .all(|p| p.iter().all(|v| v.abs() <= 1.0))
                    };
                    let mut tries = 0;
                    while !inside(&aug) && tries < 10 {
                        aug = t.sample(&mut rng);
                        tries += 1;
                    }
                    if !inside(&aug) {
                        aug = Augment::center();
                    }
                }
                aug
            }
            None => Augment::center(),
        };
        if let Some(v) = self.tta {
            aug.crop = v.corner;
            aug.zoom = v.scale;
            aug.zoom_center = v.corner;
            aug.dihedral = v.flip as u8;
        }
        if !self.on_device {
            render(&img, self.size.0, self.size.1, &aug, self.norm, x);
        }
        // the targets follow the augmentation, or only the resize and centre crop
        let center = Augment::center();
        let target_aug = if self.tfm_y { &aug } else { &center };
        let (h, w) = self.size;
        match &*self.targets {
            Labels::Category(v) => y[0] = v[i] as f32,
            Labels::MultiCategory(v) => {
                y.fill(0.0);
                for &c in &v[i] {
                    if c < self.c {
                        y[c] = 1.0;
                    }
                }
            }
            Labels::Float(v) => y.copy_from_slice(&v[i]),
            Labels::Points(v) => {
                let pts = map_points(&v[i], (img.height(), img.width()), (h, w), target_aug);
                for (k, p) in pts.iter().enumerate() {
                    y[2 * k] = p[0];
                    y[2 * k + 1] = p[1];
                }
            }
            Labels::Mask(v) => {
                let mask = match super::image::open_mask(&v[i]) {
                    Ok(m) => m,
                    Err(e) => {
                        self.warn(path, &format!("its mask cannot be read: {e}"));
                        return None;
                    }
                };
                if mask.dimensions() != img.dimensions() {
                    self.warn(
                        path,
                        &format!(
                            "its mask {} is {}x{} but the image is {}x{}",
                            v[i].display(),
                            mask.width(),
                            mask.height(),
                            img.width(),
                            img.height()
                        ),
                    );
                    return None;
                }
                render_mask(&mask, h, w, target_aug, y);
            }
        }
        Some(self.on_device.then(|| Pending {
            full: img.dimensions(),
            img: presize(img, self.size),
            aug,
        }))
    }
}

/// The batches of one epoch, in order; ends early if the producer found nothing more to load.
pub struct BatchIter {
    rx: Receiver<Result<Loaded, String>>,
    size: (usize, usize),
    device: Device,
    remaining: usize,
    kind: YKind,
}

impl Iterator for BatchIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let Loaded { x, y, indices } = match self.rx.recv().ok()? {
            Ok(batch) => batch,
            Err(msg) => panic!("the data loader failed while preparing a batch: {msg}"),
        };
        self.remaining = self.remaining.saturating_sub(1);
        let n = indices.len() as i64;
        let (h, w) = (self.size.0 as i64, self.size.1 as i64);
        // (normalization, if any, was folded into the lookup tables)
        let x = match x {
            Pixels::Floats(x) => Tensor::from_slice(&x)
                .view([n, 3, h, w])
                .to_device(self.device),
            Pixels::Rendered(x) => x,
        };
        let y = Tensor::from_slice(&y);
        let y = match self.kind {
            YKind::Category => y.to_kind(Kind::Int64),
            YKind::MultiCategory(c) => y.view([n, c as i64]),
            YKind::Mask => y.view([n, h, w]).to_kind(Kind::Int64),
            YKind::Points(p) => y.view([n, p as i64, 2]),
            YKind::Float(k) => y.view([n, k as i64]),
        }
        .to_device(self.device);
        Some(Batch { x, y, indices })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}
