//! Loader throughput: decode + augment (get_transforms) + batch + normalize, 224 px.
//!
//! cargo run --release --example bench_loader -- DIR [workers] [bs] [epochs] [workers|device] [cpu|cuda]
//! Prints one line: `fastai-rs loader: <images/s> img/s (<n> images, <workers> workers)`,
//! the best of `epochs` epochs after a warm-up epoch. bench/loader.py runs it next to torchvision.
//! The last argument says where the augmentation runs (`AugmentOn`): on the workers, per image
//! (the default on CPU), or on the batch's device after the workers only decoded; the very last
//! says where the batches go (default: the CPU).
//!
//! cargo run --release --example bench_loader -- DIR split
//! measures the CPU work per image on one thread instead: what a worker does on the per-image
//! path (decode + augment into floats) and on the batch path (decode + presize to bytes).

use std::time::Instant;

use fastai::data::transforms::{presize, render, Augment};
use fastai::vision::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: bench_loader DIR [workers] [bs] [epochs] [workers|device] | DIR split")?;
    tch::set_num_threads(1);
    let files = get_image_files(dir)?;
    if args.get(2).map(String::as_str) == Some("split") {
        return split(&files);
    }
    let workers: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let bs: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let epochs: usize = args.get(4).map_or(Ok(3), |s| s.parse())?;
    let on = match args.get(5).map(String::as_str) {
        None | Some("workers") => AugmentOn::Workers,
        Some("device") => AugmentOn::Device,
        Some(o) => return Err(format!("augment on `workers` or `device`, not `{o}`").into()),
    };
    let device = match args.get(6).map(String::as_str) {
        None | Some("cpu") => Device::Cpu,
        Some("cuda") => Device::Cuda(0),
        Some(o) => return Err(format!("batches go to `cpu` or `cuda`, not `{o}`").into()),
    };
    let labels = vec!["x".to_string(); files.len()];
    let opts = DataOptions::default()
        .tfms(get_transforms())
        .size(224)
        .bs(bs)
        .num_workers(workers)
        .valid_pct(0.0)
        .augment_on(on)
        .device(device);
    let mut data =
        ImageDataBunch::from_lists(dir, files, labels, opts)?.normalize(imagenet_stats());
    let mut best = 0f64;
    for epoch in 0..=epochs {
        let t0 = Instant::now();
        let mut n = 0i64;
        let mut checksum = 0f64;
        for b in data.train_dl.iter() {
            n += b.x.size()[0];
            checksum += b.x.mean(Kind::Float).double_value(&[]);
        }
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        if epoch > 0 {
            best = best.max(rate); // epoch 0 warms the page cache
        }
        eprintln!("epoch {epoch}: {n} images, {rate:.0} img/s (checksum {checksum:.3})");
    }
    println!(
        "fastai-rs loader: {best:.1} img/s ({} images/epoch, {workers} workers, bs {bs}, augment on {on:?}, to {device:?})",
        data.train_dl.len() * bs
    );
    Ok(())
}

/// CPU milliseconds per image of each step a worker does, on this thread, best of 3 passes.
fn split(files: &[std::path::PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
    let tf = get_transforms();
    let norm = Some((imagenet_stats().mean, imagenet_stats().std));
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let augs: Vec<Augment> = files.iter().map(|_| tf.sample(&mut rng)).collect();
    let (mut decode, mut per_image, mut batch_path) = (f64::MAX, f64::MAX, f64::MAX);
    let mut out = vec![0f32; 3 * 224 * 224];
    let mut sink = 0u64;
    for _ in 0..3 {
        let t = Instant::now();
        for f in files {
            sink += open_image(f)?.as_raw()[0] as u64;
        }
        decode = decode.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (f, a) in files.iter().zip(&augs) {
            render(&open_image(f)?, 224, 224, a, norm, &mut out);
            sink += out[0] as u64;
        }
        per_image = per_image.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for f in files {
            let img = presize(open_image(f)?, (224, 224));
            sink += img.as_raw()[0] as u64;
        }
        batch_path = batch_path.min(t.elapsed().as_secs_f64());
    }
    let ms = |s: f64| 1e3 * s / files.len() as f64;
    println!(
        "CPU per image on one worker ({} images, 224 px, get_transforms): decode {:.2} ms; per-image path (decode + augment) {:.2} ms; batch path (decode + presize) {:.2} ms; batch/per-image {:.2} ({sink})",
        files.len(),
        ms(decode),
        ms(per_image),
        ms(batch_path),
        batch_path / per_image
    );
    Ok(())
}
