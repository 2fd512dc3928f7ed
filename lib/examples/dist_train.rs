//! Lesson 1's offline recipe (Fashion-MNIST images, an ImageNet-pretrained mobilenet_v2,
//! `fit_one_cycle`), data-parallel. Alone it is one process; under the launcher each rank trains
//! on its share of every batch:
//!
//!     cargo build --release --example dist_train --bin fastai-launch
//!     target/release/fastai-launch --nproc 2 target/release/examples/dist_train -- --per-class 100
//!     target/release/examples/dist_train --per-class 100          # the same recipe, one process
//!
//! `--bs` is the global batch: each of N ranks loads bs / N items per step, so one process and N
//! ranks take the same steps on the same batches. Rank 0 prints the table, the final error rate
//! and the training throughput.
use std::time::Instant;

use fastai::distributed::{rank0_first, DistContext};
use fastai::vision::*;

struct Args {
    per_class: usize,
    size: usize,
    bs: usize,
    epochs: usize,
    arch: String,
}

fn args() -> fastai::Result<Args> {
    let mut a = Args {
        per_class: 100,
        size: 64,
        bs: 32,
        epochs: 2,
        arch: "mobilenet_v2".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| fastai::Error::Msg(format!("{flag} needs a value")))
        };
        let num = |s: String| {
            s.parse::<usize>()
                .map_err(|_| fastai::Error::Msg(format!("{s:?} is not a number")))
        };
        match flag.as_str() {
            "--" => {}
            "--per-class" => a.per_class = num(value()?)?,
            "--size" => a.size = num(value()?)?,
            "--bs" => a.bs = num(value()?)?,
            "--epochs" => a.epochs = num(value()?)?,
            "--arch" => a.arch = value()?,
            other => {
                return Err(fastai::Error::Msg(format!(
                    "unknown argument {other} (--per-class N --size S --bs B --epochs E --arch A)"
                )))
            }
        }
    }
    Ok(a)
}

fn main() -> fastai::Result<()> {
    let a = args()?;
    let ctx = DistContext::from_env()?;
    if a.bs % ctx.world_size != 0 {
        return Err(fastai::Error::Msg(format!(
            "--bs {} does not split evenly between {} ranks",
            a.bs, ctx.world_size
        )));
    }
    // rank 0 checks the offline files first (a download would go here)
    let root = rank0_first(&ctx, || {
        let root = fashion_mnist_dir();
        if !root.join("classes.txt").is_file() {
            return Err(fastai::Error::Msg(format!(
                "{} has no Fashion-MNIST images: run ./install.sh",
                root.display()
            )));
        }
        Ok(root)
    })?;
    let mut files = Vec::new();
    for class in std::fs::read_to_string(root.join("classes.txt"))?.lines() {
        let mut f = get_image_files(root.join("train").join(class))?;
        f.truncate(a.per_class);
        files.extend(f);
    }
    let labels = files
        .iter()
        .map(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let opts = DataOptions::default()
        .tfms(get_transforms().do_flip(true))
        .size(a.size)
        .bs(a.bs / ctx.world_size);
    let data = ImageDataBunch::from_lists(&root, files, labels, opts)?.normalize(imagenet_stats());
    let n_train = data.n_train();
    let arch = Arch::from_name(&a.arch)
        .ok_or_else(|| fastai::Error::Msg(format!("unknown architecture {}", a.arch)))?;
    let mut learn = cnn_learner(data, arch, &[error_rate])?;
    learn.to_distributed(&ctx)?;
    if ctx.is_main() {
        println!(
            "{} rank(s), {} threads each; {n_train} training images, global batch {}",
            ctx.world_size,
            tch::get_num_threads(),
            a.bs
        );
    }
    let start = Instant::now();
    learn.fit_one_cycle(a.epochs, None)?;
    let secs = start.elapsed().as_secs_f64();
    let err = learn
        .recorder
        .metrics
        .last()
        .and_then(|m| m.first())
        .map_or(f64::NAN, |m| m.1);
    if ctx.is_main() {
        println!(
            "final error_rate {err:.4}; {:.1} s for {} epochs: {:.1} training images/s (validation included)",
            secs,
            a.epochs,
            (n_train * a.epochs) as f64 / secs
        );
    }
    Ok(())
}
