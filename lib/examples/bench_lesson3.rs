//! Lesson 3's three tasks on the offline lesson-3 data, timed, with the recipe of
//! `bench/lesson3.py` (its peer in Python fastai): multi-label classification (F-beta),
//! segmentation with a U-Net (pixel accuracy) and point regression (the mean distance between
//! predicted and true point, in [-1, 1] units), each on the ImageNet MobileNetV2 body, frozen
//! for `--epochs` one-cycle epochs at 1e-2 (3e-3 for the U-Net), then `--unfrozen` epochs at
//! `slice(1e-5, 1e-3)`. `--random` starts the body from random weights instead (to see what
//! transfer learning brings); `--no-bn-wd` leaves BatchNorm weights and biases out of the weight
//! decay (fastai 2's default; fastai v1's `bn_wd=False`); `--head-init default` starts the head's
//! linear layers as PyTorch does (fastai's `init=None`) instead of Kaiming-normal.
//!
//!     cargo run --release --example bench_lesson3 -- [--size 96] [--bs 32] [--threads N]
//!         [--epochs 3] [--unfrozen 0] [--tasks multi,seg,points] [--limit N] [--random] [--seed 0]
//!         [--no-bn-wd] [--head-init kaiming|default]
//!
//! Prints one JSON line per task.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use fastai::vision::*;

struct Args {
    size: usize,
    bs: usize,
    threads: usize,
    epochs: usize,
    unfrozen: usize,
    tasks: Vec<String>,
    limit: usize,
    random: bool,
    seed: u64,
    bn_wd: bool,
    init: HeadInit,
}

fn args() -> Args {
    let mut a = Args {
        size: 96,
        bs: 32,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        epochs: 3,
        unfrozen: 0,
        tasks: vec!["multi".into(), "seg".into(), "points".into()],
        limit: 0,
        random: false,
        seed: 0,
        bn_wd: true,
        init: HeadInit::KaimingNormal,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = |v: String| -> usize { v.parse().expect("a number") };
        match flag.as_str() {
            "--size" => a.size = num(value()),
            "--bs" => a.bs = num(value()),
            "--threads" => a.threads = num(value()),
            "--epochs" => a.epochs = num(value()),
            "--unfrozen" => a.unfrozen = num(value()),
            "--limit" => a.limit = num(value()),
            "--tasks" => a.tasks = value().split(',').map(String::from).collect(),
            "--random" => a.random = true,
            // fastai 2's default: no weight decay on BatchNorm weights and biases
            "--no-bn-wd" => a.bn_wd = false,
            "--seed" => a.seed = num(value()) as u64,
            "--head-init" => {
                a.init = match value().as_str() {
                    "kaiming" => HeadInit::KaimingNormal,
                    "default" => HeadInit::Default,
                    other => panic!("--head-init is kaiming or default, not {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// The number in a file name like `ml_00042.png`.
fn number(p: &Path) -> usize {
    let stem = p.file_stem().unwrap().to_string_lossy();
    stem.rsplit('_').next().unwrap().parse().unwrap()
}

fn main() -> fastai::Result<()> {
    let a = args();
    tch::set_num_threads(a.threads as i32);
    tch::manual_seed(a.seed as i64);
    let root = lesson3_dir();
    let opts = DataOptions::default()
        .bs(a.bs)
        .num_workers(a.threads)
        .seed(42 + a.seed)
        .device(Device::Cpu);
    let learner_opts = LearnerOptions::default()
        .pretrained(!a.random)
        .bn_wd(a.bn_wd)
        .init(a.init);
    let keep = |n: usize| a.limit == 0 || n < a.limit;

    let run = |task: &str, mut learn: Learner, lr: f64, score: &dyn Fn(&mut Learner) -> String| {
        let t0 = Instant::now();
        learn.remove_cb::<ProgressCallback>();
        learn.fit_one_cycle(a.epochs, Some(Lr::Single(lr)))?;
        if a.unfrozen > 0 {
            learn.unfreeze();
            learn.fit_one_cycle(a.unfrozen, Some(slice(1e-5, 1e-3)))?;
        }
        let secs = t0.elapsed().as_secs_f64() / (a.epochs + a.unfrozen) as f64;
        println!(
            "{{\"task\":\"{task}\",\"impl\":\"fastai-rs\",\"pretrained\":{},\"bn_wd\":{},\"head_init\":\"{:?}\",\"seed\":{},\"seconds_per_epoch\":{secs:.2},\"epochs\":{},\"train\":{},\"valid\":{},\"size\":{},\"bs\":{},\"threads\":{},{}}}",
            !a.random,
            a.bn_wd,
            a.init,
            a.seed,
            a.epochs + a.unfrozen,
            learn.data.train_ds.len(),
            learn.data.valid_ds.len(),
            a.size,
            a.bs,
            a.threads,
            score(&mut learn)
        );
        fastai::Result::Ok(())
    };

    if a.tasks.iter().any(|t| t == "multi") {
        let path = root.join("multilabel");
        let tfms = get_transforms()
            .flip_vert(true)
            .max_lighting(0.1)
            .max_zoom(1.05)
            .max_warp(0.0);
        let data = ImageList::from_csv(
            &path,
            "labels.csv",
            CsvOptions::default().folder("images").suffix(".png"),
        )?
        .filter_by_func(|p| keep(number(p)))
        .split_by_valid_func(|p| number(p) % 5 == 0)?
        .label_from_df(1, Some(" "))?
        .transform(tfms, a.size)
        .databunch_with(opts.clone())?
        .normalize(imagenet_stats());
        let learn = cnn_learner_with(
            data,
            models::mobilenet_v2,
            &[fbeta(2.0, 0.2), accuracy_thresh(0.2)],
            learner_opts.clone(),
        )?;
        run("multi", learn, 1e-2, &|l| {
            let (loss, m) = l.validate().unwrap();
            format!(
                "\"valid_loss\":{loss:.4},\"fbeta\":{:.4},\"accuracy_thresh\":{:.4}",
                m[0].1, m[1].1
            )
        })?;
    }

    if a.tasks.iter().any(|t| t == "seg") {
        let path = root.join("segmentation");
        let codes: Vec<String> = std::fs::read_to_string(path.join("codes.txt"))?
            .split_whitespace()
            .map(String::from)
            .collect();
        let labels = path.join("labels");
        let get_y = move |p: &Path| {
            labels.join(format!(
                "{}_P.png",
                p.file_stem().unwrap().to_string_lossy()
            ))
        };
        let valid: Vec<String> = std::fs::read_to_string(path.join("valid.txt"))?
            .split_whitespace()
            .map(String::from)
            .collect();
        let data = SegmentationItemList::from_folder(path.join("images"))?
            .filter_by_func(|p| keep(number(p)))
            .split_by_valid_func(|p| {
                valid.contains(&p.file_name().unwrap().to_string_lossy().into_owned())
            })?
            .label_from_func(get_y, codes)?
            .transform(get_transforms(), a.size)
            .databunch_with(opts.clone())?
            .normalize(imagenet_stats());
        let learn = unet_learner_with(
            data,
            models::mobilenet_v2,
            &[accuracy, foreground_acc(0)],
            learner_opts.clone(),
            Default::default(),
        )?;
        run("seg", learn, 3e-3, &|l| {
            let (loss, m) = l.validate().unwrap();
            format!(
                "\"valid_loss\":{loss:.4},\"accuracy\":{:.4},\"foreground_acc\":{:.4}",
                m[0].1, m[1].1
            )
        })?;
    }

    if a.tasks.iter().any(|t| t == "points") {
        let path = root.join("points");
        let mut centres: HashMap<String, [f32; 2]> = HashMap::new();
        for row in std::fs::read_to_string(path.join("centers.csv"))?
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = row.split(',').collect();
            centres.insert(f[0].into(), [f[1].parse().unwrap(), f[2].parse().unwrap()]);
        }
        let data = PointsItemList::from_folder(path.join("images"))?
            .filter_by_func(|p| keep(number(p)))
            .split_by_valid_func(|p| number(p) % 5 == 0)?
            .label_from_func(|p| vec![centres[&*p.file_name().unwrap().to_string_lossy()]])?
            .transform(get_transforms(), a.size)
            .databunch_with(opts.clone())?
            .normalize(imagenet_stats());
        let learn = cnn_learner_with(data, models::mobilenet_v2, &[], learner_opts.clone())?;
        run("points", learn, 1e-2, &|l| {
            let (loss, _) = l.validate().unwrap();
            let (preds, targets) = l.get_preds().unwrap();
            let d = (preds.view([-1, 2]) - targets.view([-1, 2]))
                .square()
                .sum_dim_intlist(1, false, Kind::Float)
                .sqrt()
                .mean(Kind::Float)
                .double_value(&[]);
            format!("\"valid_loss\":{loss:.5},\"point_error\":{d:.4}")
        })?;
    }
    Ok(())
}
