//! Training and evaluation throughput of a `cnn_learner` model on fixed random batches: the same
//! `Learner::train_step` that `fit` runs (forward, cross-entropy, backward, AdamW step; the whole
//! model trainable, as after `unfreeze()`), and the eval-mode forward pass without gradients.
//! bench/train.py runs the same model (torchvision body + fastai head) in plain PyTorch.
//!
//!     cargo run --release --example bench_train -- ARCH SIZE BS MODE [ITERS] [THREADS]
//!
//! MODE is `train` or `eval`. Prints one JSON line: images/second over ITERS timed steps after
//! 3 warm-up steps, and the settings (bench/bench.py measures the peak memory from outside).

use std::time::Instant;

use fastai::vision::*;

/// Ten tiny labelled images, only so that a `Learner` (which owns its data) can be built.
fn placeholder_data(classes: usize) -> fastai::Result<ImageDataBunch> {
    let dir = std::env::temp_dir().join(format!("fastai-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for c in 0..classes {
        let f = dir.join(format!("c{c}.png"));
        image::RgbImage::from_pixel(8, 8, image::Rgb([c as u8 * 20, 0, 0]))
            .save(&f)
            .map_err(|e| fastai::Error::Msg(e.to_string()))?;
        files.push(f);
        labels.push(format!("c{c}"));
    }
    let opts = DataOptions::default()
        .size(8)
        .bs(2)
        .valid_pct(0.0)
        .device(Device::Cpu);
    let data = ImageDataBunch::from_lists(&dir, files, labels, opts)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(data)
}

fn main() -> fastai::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: bench_train ARCH SIZE BS train|eval [ITERS] [THREADS]");
        std::process::exit(2);
    }
    let arch = Arch::from_name(&args[1])
        .ok_or_else(|| fastai::Error::Msg(format!("unknown architecture {}", args[1])))?;
    let parse = |i: usize, default: usize| -> usize {
        args.get(i)
            .map_or(default, |s| s.parse().expect("a number"))
    };
    let (size, bs) = (parse(2, 224) as i64, parse(3, 16) as i64);
    let mode = args[4].as_str();
    let iters = parse(5, 10);
    let threads = parse(
        6,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);

    let classes = 10;
    // Random weights on both sides by default; BENCH_PRETRAINED=1 loads ImageNet weights.
    let opts = LearnerOptions {
        pretrained: std::env::var("BENCH_PRETRAINED").is_ok_and(|v| v == "1"),
        ..Default::default()
    };
    let mut learn = cnn_learner_with(placeholder_data(classes)?, arch, &[error_rate], opts)?;
    learn.unfreeze();
    let x = Tensor::randn([bs, 3, size, size], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(classes as i64, [bs], (Kind::Int64, Device::Cpu));

    let step = |learn: &mut Learner| -> fastai::Result<f64> {
        match mode {
            "train" => learn.train_step(&x, &y),
            "eval" => {
                let _g = tch::no_grad_guard();
                Ok(learn.model.forward_t(&x, false).double_value(&[0, 0]))
            }
            other => Err(fastai::Error::Msg(format!(
                "MODE is train or eval, not {other}"
            ))),
        }
    };
    for _ in 0..3 {
        step(&mut learn)?;
    }
    let t0 = Instant::now();
    for _ in 0..iters {
        step(&mut learn)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{{\"impl\":\"fastai-rs\",\"arch\":\"{}\",\"size\":{size},\"bs\":{bs},\"mode\":\"{mode}\",\"threads\":{threads},\"iters\":{iters},\"img_per_s\":{:.2}}}",
        arch.name(),
        (iters as i64 * bs) as f64 / secs
    );
    Ok(())
}
