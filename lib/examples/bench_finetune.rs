//! One epoch of the offline lesson's fine-tune, timed: `per_class` Fashion-MNIST training images of
//! each class (the lesson notebook's data: `from_name_re`, 20% validation, `get_transforms()`,
//! ImageNet normalization), ImageNet MobileNetV2 body, fastai's head, the body frozen, then
//! `fit_one_cycle(1)` at 3e-3 for every parameter group, which is what fastai 2's
//! `fit_one_cycle(1, 3e-3)` does (`BENCH_LR=slice`: fastai 1's default `slice(3e-3)`, which
//! gives the body's BatchNorm layers 3e-4). bench/finetune.py runs the same recipe in Python
//! fastai.
//!
//!     cargo run --release --example bench_finetune -- [PER_CLASS] [SIZE] [BS] [THREADS]
//!
//! Prints one JSON line: seconds for the epoch (training and validation), the error rate after it,
//! the image counts (bench/bench.py measures the peak memory from outside).
//!
//! For the whole pipeline on a GPU (tests/gpu/run.sh): `BENCH_DEVICE=auto|cuda` (default `cpu`),
//! `BENCH_ARCH=resnet34` (random weights, every layer trained: no pretrained ResNet ships offline),
//! `BENCH_FP16=1` (`to_fp16()`); the line then adds `img_per_s`, the epoch's training and
//! validation images over its seconds, loader included.

use std::time::Instant;

use fastai::vision::*;

fn main() -> fastai::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let parse = |i: usize, default: usize| -> usize {
        args.get(i)
            .map_or(default, |s| s.parse().expect("a number"))
    };
    let (per_class, size, bs) = (parse(1, 500), parse(2, 64), parse(3, 64));
    let threads = parse(
        4,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let device = match std::env::var("BENCH_DEVICE").as_deref() {
        Err(_) | Ok("cpu") => Device::Cpu,
        Ok("auto") => fastai::device(),
        Ok("cuda") => {
            let info = fastai::device_info();
            if !info.device.is_cuda() {
                eprintln!("bench_finetune: BENCH_DEVICE=cuda, but {info}");
                std::process::exit(3);
            }
            info.device
        }
        Ok(other) => {
            eprintln!("bench_finetune: BENCH_DEVICE is auto, cpu or cuda, not {other:?}");
            std::process::exit(2);
        }
    };
    let arch = std::env::var("BENCH_ARCH").ok();
    let fp16 = std::env::var("BENCH_FP16").is_ok_and(|v| v == "1");

    let path = fashion_mnist_dir();
    let mut fnames = Vec::new();
    for class in std::fs::read_to_string(path.join("classes.txt"))?.lines() {
        let mut files = get_image_files(path.join("train").join(class))?;
        files.truncate(per_class);
        fnames.extend(files);
    }
    let opts = DataOptions::default()
        .tfms(get_transforms())
        .size(size)
        .bs(bs)
        .num_workers(threads)
        .device(device);
    let data = ImageDataBunch::from_name_re(&path, &fnames, r"/([^/]+)_\d+.png$", opts)?
        .normalize(imagenet_stats());
    let (n_train, n_valid) = (data.train_ds.len(), data.valid_ds.len());
    let mut learn = match arch.as_deref() {
        None => cnn_learner(data, models::mobilenet_v2, &[error_rate])?,
        Some(name) => {
            let arch = Arch::from_name(name)
                .ok_or_else(|| fastai::Error::Msg(format!("unknown architecture {name}")))?;
            let opts = LearnerOptions::default().pretrained(false);
            cnn_learner_with(data, arch, &[error_rate], opts)?
        }
    };
    if fp16 {
        learn.to_fp16();
    }
    let t0 = Instant::now();
    let lr = match std::env::var("BENCH_LR").as_deref() {
        Ok("slice") => Lr::Stop(3e-3),
        _ => Lr::Single(3e-3),
    };
    learn.fit_one_cycle(1, Some(lr))?;
    let secs = t0.elapsed().as_secs_f64();
    let (_, metrics) = learn.validate()?;
    let extra = if device.is_cuda() || arch.is_some() || fp16 {
        format!(
            ",\"device\":\"{device:?}\",\"arch\":\"{}\",\"fp16\":{fp16},\"img_per_s\":{:.1}",
            arch.as_deref().unwrap_or("mobilenet_v2"),
            (n_train + n_valid) as f64 / secs
        )
    } else {
        String::new()
    };
    println!(
        "{{\"impl\":\"fastai-rs\",\"seconds\":{secs:.2},\"error_rate\":{:.4},\"train\":{n_train},\"valid\":{n_valid},\"size\":{size},\"bs\":{bs},\"threads\":{threads}{extra}}}",
        metrics[0].1
    );
    Ok(())
}
