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
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

use super::image::open_image;
use super::transforms::{render, Augment, Transforms};

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

/// One batch: images `(N, 3, H, W)` (normalized if the loader is), labels `(N,)` as Int64, and
/// which dataset items they are.
#[derive(Debug)]
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    pub indices: Vec<usize>,
}

/// Loads batches of (image, label) from a list of files.
pub struct DataLoader {
    items: Arc<Vec<PathBuf>>,
    labels: Arc<Vec<i64>>,
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
    seed: u64,
    epoch: u64,
    prefetch: usize,
    workers: usize,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
}

impl DataLoader {
    /// A loader over `items` with `labels`; `num_workers` threads decode (0 = all cores).
    pub fn new(
        items: Vec<PathBuf>,
        labels: Vec<i64>,
        bs: usize,
        size: (usize, usize),
        num_workers: usize,
    ) -> DataLoader {
        assert_eq!(items.len(), labels.len(), "one label per item");
        assert!(bs > 0, "batch size must be positive");
        let threads = if num_workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            num_workers
        };
        DataLoader {
            items: Arc::new(items),
            labels: Arc::new(labels),
            bs,
            shuffle: false,
            drop_last: false,
            tfms: None,
            size,
            device: Device::Cpu,
            stats: None,
            seed: 42,
            epoch: 0,
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
        let n = self.items.len();
        if self.drop_last {
            n / self.bs
        } else {
            n.div_ceil(self.bs)
        }
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

    /// The item order of the next epoch.
    fn order(&self, epoch: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.items.len()).collect();
        if self.shuffle {
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            idx.shuffle(&mut rng);
        }
        if self.drop_last {
            idx.truncate(self.len() * self.bs);
        }
        idx
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
            labels: self.labels.clone(),
            tfms: self.tfms.clone(),
            size: self.size,
            seed: self.seed,
            epoch,
            warned: self.warned.clone(),
            norm: self.stats.map(|s| (s.mean, s.std)),
        };
        let (tx, rx) = sync_channel::<(Vec<f32>, Vec<i64>, Vec<usize>)>(self.prefetch);
        let (bs, workers) = (self.bs, self.workers);
        std::thread::Builder::new()
            .name("fastai-loader".into())
            .spawn(move || {
                for chunk in order.chunks(bs) {
                    let batch = job.load(chunk, workers);
                    if batch.2.is_empty() {
                        continue; // every file of this batch was unreadable
                    }
                    if tx.send(batch).is_err() {
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
        }
    }

    /// The first batch of a fresh epoch (for show_batch and shape checks); does not advance
    /// the loader's epoch counter.
    pub fn one_batch(&self) -> Option<Batch> {
        self.iter_epoch(self.epoch).next()
    }
}

struct Job {
    items: Arc<Vec<PathBuf>>,
    labels: Arc<Vec<i64>>,
    tfms: Option<Transforms>,
    size: (usize, usize),
    seed: u64,
    epoch: u64,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
    norm: Option<([f32; 3], [f32; 3])>,
}

impl Job {
    /// Loads the items of one batch on `workers` threads, each filling its share of the buffer.
    ///
    /// Scoped threads started per batch rather than a long-lived pool: in a notebook, every cell
    /// is compiled with its own copy of this crate (and of rayon's thread-local state), so a pool
    /// created by one cell cannot safely be driven from another. Starting two threads costs
    /// microseconds; a batch takes tens of milliseconds.
    fn load(&self, chunk: &[usize], workers: usize) -> (Vec<f32>, Vec<i64>, Vec<usize>) {
        let (h, w) = self.size;
        let per = 3 * h * w;
        let mut buf = vec![0f32; chunk.len() * per];
        let share = chunk.len().div_ceil(workers.max(1)).max(1);
        let ok: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = buf
                .chunks_mut(share * per)
                .zip(chunk.chunks(share))
                .map(|(out, items)| {
                    scope.spawn(move || {
                        out.chunks_mut(per)
                            .zip(items)
                            .map(|(o, &i)| self.load_one(i, o))
                            .collect::<Vec<bool>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a loader thread panicked"))
                .collect()
        });
        if ok.iter().all(|&b| b) {
            let labels = chunk.iter().map(|&i| self.labels[i]).collect();
            return (buf, labels, chunk.to_vec());
        }
        // Leave the unreadable items out, keeping the order of the others.
        let mut packed = Vec::with_capacity(buf.len());
        let (mut labels, mut indices) = (Vec::new(), Vec::new());
        for (k, &i) in chunk.iter().enumerate() {
            if ok[k] {
                packed.extend_from_slice(&buf[k * per..(k + 1) * per]);
                labels.push(self.labels[i]);
                indices.push(i);
            }
        }
        (packed, labels, indices)
    }

    fn load_one(&self, i: usize, out: &mut [f32]) -> bool {
        let path = &self.items[i];
        let img = match open_image(path) {
            Ok(img) => img,
            Err(e) => {
                if self.warned.lock().unwrap().insert(path.clone()) {
                    eprintln!("warning: skipping {}: {e}", path.display());
                }
                return false;
            }
        };
        let aug = match &self.tfms {
            Some(t) => {
                let seed =
                    self.seed ^ (self.epoch << 40) ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
                t.sample(&mut rand::rngs::StdRng::seed_from_u64(seed))
            }
            None => Augment::center(),
        };
        render(&img, self.size.0, self.size.1, &aug, self.norm, out);
        true
    }
}

/// The batches of one epoch, in order; ends early if the producer found nothing more to load.
pub struct BatchIter {
    rx: Receiver<(Vec<f32>, Vec<i64>, Vec<usize>)>,
    size: (usize, usize),
    device: Device,
    remaining: usize,
}

impl Iterator for BatchIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let (buf, labels, indices) = self.rx.recv().ok()?;
        self.remaining = self.remaining.saturating_sub(1);
        let n = labels.len() as i64;
        let (h, w) = (self.size.0 as i64, self.size.1 as i64);
        // (normalization, if any, was folded into the workers' lookup tables)
        let x = Tensor::from_slice(&buf)
            .view([n, 3, h, w])
            .to_device(self.device);
        let y = Tensor::from_slice(&labels)
            .to_kind(Kind::Int64)
            .to_device(self.device);
        Some(Batch { x, y, indices })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}
