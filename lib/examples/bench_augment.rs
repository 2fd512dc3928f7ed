//! The augmentation's cost per image, both ways: `render` (one image at a time on the CPU, what
//! the loader's workers do today) and `render_batch` (the whole batch at once on a device), on
//! `BS` random `SRC`x`SRC` pictures augmented by `get_transforms()` to `SIZE`x`SIZE`, normalized.
//!
//!     cargo run --release --example bench_augment -- [BS] [SIZE] [SRC] [ITERS] [--device cpu|cuda]
//!
//! Prints one JSON line: images/second of `render` on one CPU thread, and of `render_batch` on
//! the device (the sources already there as bytes; the time includes the wait for the device).

use std::time::Instant;

use fastai::data::transforms::{render, render_batch, Augment};
use fastai::vision::*;
use rand::{Rng, SeedableRng};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut device = Device::Cpu;
    if let Some(i) = args.iter().position(|a| a == "--device") {
        device = match args.get(i + 1).map(String::as_str) {
            Some("cpu") => Device::Cpu,
            Some("cuda") => {
                let info = fastai::device_info();
                if !info.device.is_cuda() {
                    eprintln!("bench_augment: --device cuda, but {info}");
                    std::process::exit(3);
                }
                info.device
            }
            other => {
                eprintln!("bench_augment: --device is cpu or cuda, not {other:?}");
                std::process::exit(2);
            }
        };
        args.drain(i..(i + 2).min(args.len()));
    }
    let num = |i: usize, d: usize| args.get(i).map_or(d, |s| s.parse().expect("a number"));
    let (bs, size, src, iters) = (num(0, 64), num(1, 224), num(2, 256), num(3, 5));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let pics: Vec<image::RgbImage> = (0..bs)
        .map(|_| image::RgbImage::from_fn(src as u32, src as u32, |_, _| image::Rgb(rng.random())))
        .collect();
    let tfms = get_transforms();
    let augs: Vec<Augment> = (0..bs).map(|_| tfms.sample(&mut rng)).collect();
    let norm = Some(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]));

    let mut out = vec![0f32; 3 * size * size];
    let t0 = Instant::now();
    for _ in 0..iters {
        for (p, a) in pics.iter().zip(&augs) {
            render(p, size, size, a, norm, &mut out);
        }
    }
    let per_image = (iters * bs) as f64 / t0.elapsed().as_secs_f64();

    let bytes: Vec<u8> = pics
        .iter()
        .flat_map(|p| p.as_raw().iter().copied())
        .collect();
    let x = Tensor::from_slice(&bytes)
        .view([bs as i64, src as i64, src as i64, 3])
        .to_device(device);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let _ = render_batch(&x, &augs, (size, size), norm); // warm-up
    sync();
    let t0 = Instant::now();
    for _ in 0..iters {
        let _ = render_batch(&x, &augs, (size, size), norm);
    }
    sync();
    let batched = (iters * bs) as f64 / t0.elapsed().as_secs_f64();
    println!(
        "{{\"bs\":{bs},\"size\":{size},\"src\":{src},\"render_cpu_1_thread_img_per_s\":{per_image:.1},\"render_batch_img_per_s\":{batched:.1},\"device\":\"{device:?}\"}}"
    );
}
