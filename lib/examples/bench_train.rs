//! Training and evaluation throughput of a `cnn_learner` model on fixed random batches: the same
//! `Learner::train_step` that `fit` runs (forward, cross-entropy, backward, AdamW step; the whole
//! model trainable, as after `unfreeze()`), and the eval-mode forward pass without gradients.
//! bench/train.py runs the same model (torchvision body + fastai head) in plain PyTorch.
//!
//!     cargo run --release --example bench_train -- ARCH SIZE BS MODE [ITERS] [THREADS]
//!         [--device auto|cpu|cuda] [--fp16] [--channels-last]
//!
//! MODE is `train` or `eval`. Prints one JSON line: images/second over ITERS timed steps after
//! 3 warm-up steps, and the settings (bench/bench.py measures the peak memory from outside).
//! `--device` (default `cpu`, as the CPU benchmarks always ran): `auto` is `fastai::device()`.
//! `--fp16` trains with `learn.to_fp16()`; the line then also says which dtype a forward pass
//! under autocast returns (`Half` when autocast really runs, i.e. on CUDA). `--channels-last`
//! gives the 4-d weights and the input NHWC strides (tch has no `channels_last` call: the tensor
//! keeps its NCHW shape with permuted strides, which is what PyTorch's
//! `to(memory_format=torch.channels_last)` does).

use std::time::Instant;

use fastai::vision::*;

/// Ten tiny labelled images, only so that a `Learner` (which owns its data) can be built.
fn placeholder_data(classes: usize, device: Device) -> fastai::Result<ImageDataBunch> {
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
        .device(device);
    let data = ImageDataBunch::from_lists(&dir, files, labels, opts)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(data)
}

/// `t` with NHWC strides and its NCHW shape (a copy; the values are the same).
fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

fn main() -> fastai::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let mut flag = |name: &str| -> bool {
        let found = args.iter().any(|a| a == name);
        args.retain(|a| a != name);
        found
    };
    let (fp16, nhwc) = (flag("--fp16"), flag("--channels-last"));
    let mut device = Device::Cpu;
    if let Some(i) = args.iter().position(|a| a == "--device") {
        let name = args.get(i + 1).cloned().unwrap_or_default();
        device = match name.as_str() {
            "cpu" => Device::Cpu,
            "auto" => fastai::device(),
            "cuda" => {
                let info = fastai::device_info();
                if !info.device.is_cuda() {
                    eprintln!("bench_train: --device cuda, but {info}");
                    std::process::exit(3);
                }
                info.device
            }
            other => {
                eprintln!("bench_train: --device is auto, cpu or cuda, not {other:?}");
                std::process::exit(2);
            }
        };
        args.drain(i..(i + 2).min(args.len()));
    }
    if args.len() < 5 || args.iter().any(|a| a.starts_with("--")) {
        eprintln!("usage: bench_train ARCH SIZE BS train|eval [ITERS] [THREADS] [--device auto|cpu|cuda] [--fp16] [--channels-last]");
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
    let mut learn = cnn_learner_with(
        placeholder_data(classes, device)?,
        arch,
        &[error_rate],
        opts,
    )?;
    learn.unfreeze();
    let mut x = Tensor::randn([bs, 3, size, size], (Kind::Float, device));
    let y = Tensor::randint(classes as i64, [bs], (Kind::Int64, device));
    if nhwc {
        x = channels_last(&x);
        let _g = tch::no_grad_guard();
        for (_, mut v) in learn.model.var_store().variables() {
            if v.dim() == 4 {
                v.set_data(&channels_last(&v));
            }
        }
    }
    if fp16 {
        learn.to_fp16();
    }
    // Which dtype the model computes in under autocast (Half only where autocast really runs).
    let autocast_kind = fp16.then(|| {
        let _g = tch::no_grad_guard();
        let on = device.is_cuda();
        tch::autocast(on, || learn.model.forward_t(&x, false).kind())
    });

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
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..3 {
        step(&mut learn)?;
    }
    sync();
    let t0 = Instant::now();
    let mut loss = f64::NAN;
    for _ in 0..iters {
        loss = step(&mut learn)?;
    }
    sync();
    let secs = t0.elapsed().as_secs_f64();
    let extra = match autocast_kind {
        Some(k) => format!(",\"autocast_kind\":\"{k:?}\""),
        None => String::new(),
    };
    println!(
        "{{\"impl\":\"fastai-rs\",\"arch\":\"{}\",\"size\":{size},\"bs\":{bs},\"mode\":\"{mode}\",\"threads\":{threads},\"iters\":{iters},\"img_per_s\":{:.2},\"device\":\"{device:?}\",\"fp16\":{fp16},\"channels_last\":{nhwc},\"loss\":{}{extra}}}",
        arch.name(),
        (iters as i64 * bs) as f64 / secs,
        if loss.is_finite() { format!("{loss:.4}") } else { "null".into() }
    );
    Ok(())
}
