//! Loader throughput: decode + augment (get_transforms) + batch + normalize, 224 px.
//!
//! cargo run --release --example bench_loader -- DIR [workers] [bs] [epochs]
//! Prints one line: `fastai-rs loader: <images/s> img/s (<n> images, <workers> workers)`,
//! the best of `epochs` epochs after a warm-up epoch. bench/loader.py runs it next to torchvision.

use std::time::Instant;

use fastai::vision::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: bench_loader DIR [workers] [bs] [epochs]")?;
    let workers: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let bs: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let epochs: usize = args.get(4).map_or(Ok(3), |s| s.parse())?;
    tch::set_num_threads(1);
    let files = get_image_files(dir)?;
    let labels = vec!["x".to_string(); files.len()];
    let opts = DataOptions::default()
        .tfms(get_transforms())
        .size(224)
        .bs(bs)
        .num_workers(workers)
        .valid_pct(0.0)
        .device(Device::Cpu);
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
        "fastai-rs loader: {best:.1} img/s ({} images/epoch, {workers} workers, bs {bs})",
        data.train_dl.len() * bs
    );
    Ok(())
}
