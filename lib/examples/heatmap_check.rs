//! Does Grad-CAM point at the object? A lesson-1-style Fashion-MNIST classifier (MobileNetV2,
//! frozen body, 64 px) is trained, then asked for heat maps on the offline lesson-3 segmentation
//! images that hold exactly one item: their masks say where the item is. For each input size
//! and hook point this prints the share of the map's mass on the item (against the item's share
//! of the picture, what a map that ignores the image would get) and how often the map's hottest
//! pixel is on the item.
//!
//!     cargo run --release --example heatmap_check -- [per_class 300] [epochs 3] [images 100] [unfrozen 0]
//!
//! `unfrozen` > 0 then unfreezes the body and trains that many more epochs at
//! `slice(1e-5, 1e-3)` (the lesson's second stage).

use std::collections::BTreeMap;
use std::path::PathBuf;

use fastai::vision::*;
use image::imageops::FilterType;

#[path = "common/heatmap_score.rs"]
mod heatmap_score;
use heatmap_score::score;

fn main() -> fastai::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("a number"))
        .collect();
    let per = args.first().copied().unwrap_or(300);
    let epochs = args.get(1).copied().unwrap_or(3);
    let n_images = args.get(2).copied().unwrap_or(100);
    let unfrozen = args.get(3).copied().unwrap_or(0);

    let root = fashion_mnist_dir();
    let mut files = Vec::new();
    for class in std::fs::read_to_string(root.join("classes.txt"))?.lines() {
        let mut f = get_image_files(root.join("train").join(class))?;
        f.truncate(per);
        files.extend(f);
    }
    let pat = r"/([^/]+)_\d+.png$";
    let bunch = |size: usize| -> fastai::Result<ImageDataBunch> {
        let opts = DataOptions::default()
            .tfms(get_transforms())
            .size(size)
            .bs(64);
        Ok(ImageDataBunch::from_name_re(&root, &files, pat, opts)?.normalize(imagenet_stats()))
    };
    let mut learn = cnn_learner(bunch(64)?, models::mobilenet_v2, &[error_rate])?;
    learn.fit_one_cycle(epochs, None)?;
    if unfrozen > 0 {
        learn.unfreeze();
        learn.fit_one_cycle(unfrozen, Some(slice(1e-5, 1e-3)))?;
    }
    let saved = learn.save("heatmap-check")?;
    println!("trained: {}", saved.display());

    // single-item segmentation images: (image, mask, class name)
    let seg = lesson3_dir().join("segmentation");
    let codes: Vec<String> = std::fs::read_to_string(seg.join("codes.txt"))?
        .lines()
        .map(String::from)
        .collect();
    let mut items: Vec<(PathBuf, image::GrayImage, String)> = Vec::new();
    let mut names: Vec<PathBuf> = get_image_files(seg.join("images"))?;
    names.sort();
    for img in names {
        let stem = img.file_stem().unwrap().to_string_lossy().into_owned();
        let mask = open_mask(&seg.join("labels").join(format!("{stem}_P.png")))?;
        let ids: std::collections::BTreeSet<u8> = mask.pixels().map(|p| p.0[0]).collect();
        let present: Vec<u8> = ids.into_iter().filter(|&i| i != 0).collect();
        if present.len() == 1 {
            items.push((img, mask, codes[present[0] as usize].clone()));
        }
        if items.len() == n_images {
            break;
        }
    }
    println!("{} single-item images", items.len());

    // Fashion-MNIST items the model has not seen (the test folder): the item is every pixel
    // brighter than a tenth of the image's brightest (the background is black)
    let mut plain: Vec<(PathBuf, String)> = Vec::new();
    let per_class_test = n_images.div_ceil(10);
    for class in std::fs::read_to_string(root.join("classes.txt"))?.lines() {
        let mut f = get_image_files(root.join("test").join(class))?;
        f.sort();
        f.truncate(per_class_test);
        plain.extend(f.into_iter().map(|p| (p, class.to_string())));
    }
    for size in [64usize, 128] {
        let mut l = cnn_learner(bunch(size)?, models::mobilenet_v2, &[error_rate])?;
        l.load("heatmap-check")?;
        for point in ["body", "features.13", "features.6"] {
            let l = &l;
            let mut sums = (0.0f64, 0.0f64, 0.0f64, 0usize, 0usize);
            for (img, class) in &plain {
                let c = l.data.classes.iter().position(|k| k == class).unwrap();
                let (cam, used) = l.grad_cam_at(img, None, point)?;
                if used == c {
                    sums.4 += 1;
                }
                let (h, w) = (cam.size()[0] as u32, cam.size()[1] as u32);
                let gray = image::imageops::resize(&open_image(img)?, w, h, FilterType::Triangle);
                let lum: Vec<f32> = gray
                    .pixels()
                    .map(|p| (p.0[0] as f32 + p.0[1] as f32 + p.0[2] as f32) / 3.0)
                    .collect();
                let top = lum.iter().cloned().fold(0.0f32, f32::max).max(1.0);
                let on: Vec<bool> = lum.iter().map(|&v| v > 0.1 * top).collect();
                let (mass, area, hot) = score(&cam, &on);
                sums.0 += mass;
                sums.1 += area;
                sums.2 += hot as u8 as f64;
                sums.3 += 1;
            }
            let n = sums.3 as f64;
            println!(
                "size {size:>3} {point:<12} fashion-mnist test items, predicted class: mass on item {:.3} (item area {:.3}), hottest pixel on item {:.2}; classified right {}/{}",
                sums.0 / n,
                sums.1 / n,
                sums.2 / n,
                sums.4,
                sums.3
            );
        }

        for point in ["body", "features.13", "features.6"] {
            let mut stats: BTreeMap<&str, (f64, f64, f64, usize)> = BTreeMap::new();
            let mut correct = 0;
            let mut failed = None;
            for (img, mask, class) in &items {
                let Some(c) = l.data.classes.iter().position(|k| k == class) else {
                    panic!("class {class} not in {:?}", l.data.classes)
                };
                let mask =
                    image::imageops::resize(mask, size as u32, size as u32, FilterType::Nearest);
                for (which, cls) in [("predicted", None), ("true class", Some(c))] {
                    let (cam, used) = match l.grad_cam_at(img, cls, point) {
                        Ok(r) => r,
                        Err(e) => {
                            failed = Some(e.to_string());
                            break;
                        }
                    };
                    if cls.is_none() && used == c {
                        correct += 1;
                    }
                    let on: Vec<bool> = mask.pixels().map(|p| p.0[0] != 0).collect();
                    let (mass, area, hot) = score(&cam, &on);
                    let e = stats.entry(which).or_default();
                    e.0 += mass;
                    e.1 += area;
                    e.2 += hot as u8 as f64;
                    e.3 += 1;
                }
                if failed.is_some() {
                    break;
                }
            }
            if let Some(e) = failed {
                println!("size {size:>3} {point:<18} failed: {e}");
                continue;
            }
            for (which, (mass, area, hot, n)) in stats {
                let n = n as f64;
                println!(
                    "size {size:>3} {point:<18} {which:<10}: mass on item {:.3} (item area {:.3}), hottest pixel on item {:.2}; classified right {}/{}",
                    mass / n,
                    area / n,
                    hot / n,
                    correct,
                    items.len()
                );
            }
        }
    }
    Ok(())
}
