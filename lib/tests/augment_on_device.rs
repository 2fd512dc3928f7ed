//! The batch path of the loader (`AugmentOn::Device`: workers decode and presize into bytes, the
//! batch is augmented as a whole on its device) against the per-image path (workers decode and
//! augment each picture): the same pixels for the same drawn augmentations, on pictures of
//! different sizes and shapes (one big enough to be presized), in every padding mode, with masks
//! and points following; an unreadable file is left out the same way; and an augmentation-free
//! batch gives back the source bytes.

mod common;

use std::path::{Path, PathBuf};

use common::lcg::Lcg;
use common::tmp::TempDir;
use fastai::data::loader::Batch;
use fastai::vision::*;
use image::{GrayImage, Luma, Rgb, RgbImage};

/// Pictures of several sizes (width x height) with sharp edges and noise, and their masks.
const SIZES: [(u32, u32); 7] = [
    (48, 40),
    (40, 48),
    (150, 70), // more than twice the output: the workers shrink it first
    (33, 31),
    (64, 64),
    (90, 200),
    (29, 45),
];

fn make(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<Vec<[f32; 2]>>) {
    let mut rng = Lcg(11);
    let (mut images, mut masks, mut points) = (Vec::new(), Vec::new(), Vec::new());
    for (k, &(w, h)) in SIZES.iter().enumerate() {
        let (cx, cy) = (w / 3 + rng.next(w / 3), h / 3 + rng.next(h / 3));
        let img = RgbImage::from_fn(w, h, |x, y| {
            let n = rng.next(60) as u8;
            if x < cx && y < cy {
                Rgb([200 + n / 2, 30 + n, 20])
            } else if x >= cx {
                Rgb([n, 40 + n, 210 - n])
            } else {
                Rgb([90 + n, 180, n])
            }
        });
        let mask = GrayImage::from_fn(w, h, |x, y| Luma([(x >= cx) as u8 + 2 * (y >= cy) as u8]));
        let (ip, mp) = (
            dir.join(format!("pic{k}.png")),
            dir.join(format!("pic{k}_P.png")),
        );
        img.save(&ip).unwrap();
        mask.save(&mp).unwrap();
        images.push(ip);
        masks.push(mp);
        points.push(vec![
            [cy as f32, cx as f32],
            [h as f32 * 0.25, w as f32 * 0.75],
        ]);
    }
    (images, masks, points)
}

fn batches(mut dl: DataLoader, on: AugmentOn) -> Vec<Batch> {
    dl.augment_on = on;
    dl.iter().collect()
}

fn loader(items: &[PathBuf], targets: Labels, tfms: Option<Transforms>) -> DataLoader {
    let mut dl = DataLoader::with_targets(items.to_vec(), targets, 0, 3, (30, 26), 2);
    dl.tfms = tfms;
    dl.stats = Some(imagenet_stats());
    dl.shuffle = true;
    dl.set_seed(5);
    dl
}

fn largest_difference(a: &tch::Tensor, b: &tch::Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn the_device_path_gives_the_per_image_pixels_masks_and_points() {
    let dir = TempDir::new("augment-on-device");
    let (images, masks, points) = make(&dir);
    for mode in [
        PaddingMode::Reflection,
        PaddingMode::Zeros,
        PaddingMode::Border,
    ] {
        let tfms = get_transforms()
            .max_rotate(30.0)
            .max_zoom(1.5)
            .max_warp(0.3)
            .padding_mode(mode);
        for targets in [Labels::Mask(masks.clone()), Labels::Points(points.clone())] {
            let per_image = batches(
                loader(&images, targets.clone(), Some(tfms.clone())),
                AugmentOn::Workers,
            );
            let on_device = batches(
                loader(&images, targets.clone(), Some(tfms.clone())),
                AugmentOn::Device,
            );
            assert_eq!(per_image.len(), 3);
            assert_eq!(per_image.len(), on_device.len());
            for (a, b) in per_image.iter().zip(&on_device) {
                assert_eq!(a.indices, b.indices);
                assert_eq!(b.x.size(), [a.indices.len() as i64, 3, 30, 26]);
                assert_eq!(b.x.kind(), tch::Kind::Float);
                // float32 coordinates on the device, float64 on the workers: 2e-5 measured;
                // a quarter-pixel shift would give differences near 1
                let d = largest_difference(&a.x, &b.x);
                assert!(d < 1e-3, "{mode:?}: pixels differ by up to {d}");
                assert!(
                    a.y.equal(&b.y),
                    "{mode:?}: the targets must not depend on where the pixels are rendered"
                );
            }
        }
    }
}

#[test]
fn an_unreadable_file_is_left_out_on_the_device_path_too() {
    let dir = TempDir::new("augment-on-device-bad");
    let (mut images, _, _) = make(&dir);
    let bad = dir.join("broken.png");
    std::fs::write(&bad, b"not a picture").unwrap();
    images.insert(2, bad);
    let labels = Labels::Category((0..images.len()).map(|i| i % 2).collect());
    let a = batches(
        loader(&images, labels.clone(), Some(get_transforms())),
        AugmentOn::Workers,
    );
    let b = batches(
        loader(&images, labels, Some(get_transforms())),
        AugmentOn::Device,
    );
    let seen = |v: &[Batch]| -> Vec<usize> { v.iter().flat_map(|b| b.indices.clone()).collect() };
    assert_eq!(seen(&a), seen(&b));
    assert!(!seen(&b).contains(&2), "the broken file was not left out");
    assert_eq!(seen(&b).len(), images.len() - 1);
    for (x, y) in a.iter().zip(&b) {
        assert!(largest_difference(&x.x, &y.x) < 1e-3);
        assert!(x.y.equal(&y.y));
    }
}

#[test]
fn with_no_augmentation_at_the_source_size_the_batch_is_the_source_bytes() {
    let dir = TempDir::new("augment-on-device-identity");
    let mut rng = Lcg(3);
    let mut items = Vec::new();
    let mut sources = Vec::new();
    for k in 0..4 {
        let img = RgbImage::from_fn(26, 30, |_, _| {
            Rgb([
                rng.next(256) as u8,
                rng.next(256) as u8,
                rng.next(256) as u8,
            ])
        });
        let p = dir.join(format!("id{k}.png"));
        img.save(&p).unwrap();
        items.push(p);
        sources.push(img);
    }
    let labels = Labels::Category(vec![0; items.len()]);
    for on in [AugmentOn::Workers, AugmentOn::Device] {
        let mut dl = DataLoader::with_targets(items.clone(), labels.clone(), 0, 4, (30, 26), 2);
        dl.augment_on = on;
        let b = dl.one_batch().unwrap();
        for (k, src) in sources.iter().enumerate() {
            let x = b.x.get(k as i64); // [3, 30, 26] in [0, 1]
            let bytes = tch::Tensor::from_slice(src.as_raw())
                .view([30, 26, 3])
                .permute([2, 0, 1])
                .to_kind(tch::Kind::Float);
            let d = largest_difference(&(&x * 255.0), &bytes);
            // per image: exactly the bytes; on the device: float32 grid coordinates put the
            // samples 1e-6 of a pixel off (measured: 2.3e-4 of a byte), so the bytes come
            // back exactly after rounding
            let exact = (x * 255.0).round().equal(&bytes);
            match on {
                AugmentOn::Workers => assert_eq!(d, 0.0, "picture {k} is not its source bytes"),
                _ => assert!(
                    d < 1e-3 && exact,
                    "{on:?}: picture {k} is not its source bytes (off by {d})"
                ),
            }
        }
    }
}

#[test]
fn auto_augments_on_the_device_only_for_a_gpu() {
    assert!(!AugmentOn::Auto.on_device(Device::Cpu));
    assert!(AugmentOn::Auto.on_device(Device::Cuda(0)));
    assert!(AugmentOn::Device.on_device(Device::Cpu));
    assert!(!AugmentOn::Workers.on_device(Device::Cuda(0)));
    assert_eq!(DataOptions::default().augment_on, AugmentOn::Auto);
}

#[test]
fn a_failure_while_preparing_a_batch_reaches_the_training_loop() {
    // Targets of uneven lengths make a worker fail on the third item: before, the loader thread
    // died and the epoch just ended early.
    let dir = TempDir::new("augment-on-device-fail");
    let (images, _, _) = make(&dir);
    let mut floats = vec![vec![0.5f32, 1.0]; images.len()];
    floats[2] = vec![0.5];
    for on in [AugmentOn::Workers, AugmentOn::Device] {
        let dl = loader(&images, Labels::Float(floats.clone()), None);
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batches(dl, on)));
        let msg = match got {
            Ok(b) => panic!("{on:?}: {} batches and no error", b.len()),
            Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
        };
        assert!(
            msg.contains("the data loader failed while preparing a batch"),
            "{on:?}: {msg}"
        );
    }
}

/// The offline lesson's first fit (Fashion-MNIST, MobileNetV2 body frozen, 64 px,
/// `get_transforms()`), on a slice: the batch path trains to the per-image path's error.
#[test]
fn the_offline_lessons_first_fit_reaches_the_same_error_on_the_batch_path() {
    let root = offline_fashion_mnist();
    let mut files = Vec::new();
    for class in std::fs::read_to_string(root.join("classes.txt"))
        .unwrap()
        .lines()
    {
        let mut f = get_image_files(root.join("train").join(class)).unwrap();
        f.sort();
        f.truncate(60);
        files.extend(f);
    }
    let mut errors = Vec::new();
    for on in [AugmentOn::Workers, AugmentOn::Device] {
        let opts = DataOptions::default()
            .tfms(get_transforms())
            .size(64)
            .bs(32)
            .num_workers(2)
            .augment_on(on)
            .device(Device::Cpu);
        let data = ImageDataBunch::from_name_re(&root, &files, r"/([^/]+)_\d+.png$", opts)
            .unwrap()
            .normalize(imagenet_stats());
        tch::manual_seed(0);
        let mut learn = cnn_learner(data, models::mobilenet_v2, &[error_rate]).unwrap();
        learn.fit_one_cycle(2, None).unwrap();
        let (_, metrics) = learn.validate().unwrap();
        errors.push(metrics[0].1);
    }
    eprintln!(
        "error rate per image {:.3}, on the batch path {:.3}",
        errors[0], errors[1]
    );
    // 120 validation images: one picture is 0.008; the same seed draws the same augmentations,
    // so only float rounding separates the runs
    assert!(
        errors[0] < 0.6,
        "the per-image path did not learn: {}",
        errors[0]
    );
    assert!(
        (errors[0] - errors[1]).abs() <= 0.05,
        "error rate per image {:.3}, on the batch path {:.3}",
        errors[0],
        errors[1]
    );
}

fn offline_fashion_mnist() -> PathBuf {
    let root = fashion_mnist_dir();
    assert!(
        root.join("classes.txt").is_file(),
        "{} missing: run ./install.sh",
        root.display()
    );
    root
}
