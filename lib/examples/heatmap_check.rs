//! Does Grad-CAM point at the object? A lesson-1-style Fashion-MNIST classifier (MobileNetV2,
//! 64 px) is trained, then asked for heat maps of its predicted class on three kinds of picture,
//! each time printing the share of the map's mass on the item (against the item's share of the
//! picture: what a map that ignores the image gets) and how often the map's hottest pixel is on
//! the item:
//! - Fashion-MNIST test items as they are (centred on black), at the final training size and at
//!   twice it;
//! - the same items each placed at a random spot of a black canvas three times their size, read
//!   at three times the final training size: the item keeps the scale the model learned, and the
//!   body's map has room to say where it is;
//! - the offline lesson-3 segmentation pictures that hold exactly one item (pasted small on a
//!   busy background; their masks say where the item is).
//!
//!     cargo run --release --example heatmap_check -- [per_class 300] [epochs 3] [images 100]
//!         [unfrozen 0] [reuse 0] [size 64] [resized 0]
//!
//! `unfrozen` > 0 then unfreezes the body and trains that many more epochs at
//! `slice(1e-5, 1e-3)` (the lesson's second stage); `resized` > 0 then trains that many epochs
//! more at twice `size` (lesson 3's progressive resizing; at `slice(1e-5, 1e-3)` after an
//! unfrozen stage). `reuse` 1 loads the weights the last run saved instead of training. The
//! first overlays of the body's maps are written to `target/heatmap_check/`.

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
    let reuse = args.get(4).copied().unwrap_or(0) == 1;
    let train_size = args.get(5).copied().unwrap_or(64);
    let resized = args.get(6).copied().unwrap_or(0);
    // progressive resizing: `resized` more epochs at twice the size, and the checks at that size
    let size = if resized > 0 {
        2 * train_size
    } else {
        train_size
    };

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
    if !reuse {
        let mut learn = cnn_learner(bunch(train_size)?, models::mobilenet_v2, &[error_rate])?;
        learn.fit_one_cycle(epochs, None)?;
        if unfrozen > 0 {
            learn.unfreeze();
            learn.fit_one_cycle(unfrozen, Some(slice(1e-5, 1e-3)))?;
        }
        if resized > 0 {
            learn.data = bunch(size)?;
            let lr = (unfrozen > 0).then(|| slice(1e-5, 1e-3));
            learn.fit_one_cycle(resized, lr)?;
        }
        let saved = learn.save("heatmap-check")?;
        println!("trained: {}", saved.display());
    }

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
    canvas_check(&plain, bunch(3 * size)?)?;
    for size in [size, 2 * size] {
        let mut l = cnn_learner(bunch(size)?, models::mobilenet_v2, &[error_rate])?;
        l.load("heatmap-check")?;
        on_black(
            &l,
            &plain,
            "fashion-mnist test items",
            &format!("item{size}"),
        )?;

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

/// Fashion-MNIST test items each placed at a random spot of a black canvas three times their size
/// (written as PNGs under the temp folder), read at three times the training size, so the item keeps the
/// scale it was trained at: mass on the item against its share, per hook point.
fn canvas_check(plain: &[(PathBuf, String)], data: ImageDataBunch) -> fastai::Result<()> {
    let dir = std::env::temp_dir().join("heatmap-check-canvas");
    std::fs::create_dir_all(&dir)?;
    let mut canvases = Vec::new();
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = |n: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as u32
    };
    for (i, (img, class)) in plain.iter().enumerate() {
        let item = open_image(img)?;
        let (w, h) = item.dimensions();
        let mut canvas = image::RgbImage::new(3 * w, 3 * h);
        let (x0, y0) = (next(2 * w + 1), next(2 * h + 1));
        image::imageops::replace(&mut canvas, &item, x0 as i64, y0 as i64);
        let file = dir.join(format!("{class}_{i}.png"));
        canvas
            .save(&file)
            .map_err(|e| fastai::Error::Msg(format!("{}: {e}", file.display())))?;
        canvases.push((file, class.clone()));
    }
    let mut l = cnn_learner(data, models::mobilenet_v2, &[error_rate])?;
    l.load("heatmap-check")?;
    on_black(
        &l,
        &canvases,
        "fashion-mnist items on a 3x black canvas",
        "canvas",
    )
}

/// Items on black (`(file, class)`) through `l` at its data's size, for each hook point: the map
/// of the predicted class's mass on the item against the item's share, how often its hottest
/// pixel is on the item, how many are classified right; a few overlays of the body's maps named
/// `<tag>_<class>`.
fn on_black(l: &Learner, pics: &[(PathBuf, String)], what: &str, tag: &str) -> fastai::Result<()> {
    for point in ["body", "features.13", "features.6"] {
        let (mut mass, mut area, mut hot, mut right) = (0.0, 0.0, 0.0, 0);
        let every = pics.len().div_ceil(8).max(1);
        for (i, (img, class)) in pics.iter().enumerate() {
            let c = l.data.classes.iter().position(|k| k == class).unwrap();
            let (cam, used) = l.grad_cam_at(img, None, point)?;
            right += (used == c) as usize;
            let on = item_pixels(img, &cam)?;
            let (m, a, h) = score(&cam, &on);
            mass += m;
            area += a;
            hot += h as u8 as f64;
            if point == "body" && i % every == 0 {
                let name = format!("{tag}_{class}_as_{}", l.data.classes[used]);
                save_overlay(l, img, &cam, &name)?;
            }
        }
        let n = pics.len() as f64;
        println!(
            "size {:>3} {point:<12} {what}, predicted class: mass on item {:.3} (item area {:.3}), hottest pixel on item {:.2}; classified right {right}/{}",
            l.data.size.0,
            mass / n,
            area / n,
            hot / n,
            pics.len()
        );
    }
    Ok(())
}

/// Writes `img` as `l` sees it with `cam` (its map, already made) blended over it to
/// `target/heatmap_check/<name>.png`.
fn save_overlay(
    l: &Learner,
    img: &std::path::Path,
    cam: &Tensor,
    name: &str,
) -> fastai::Result<()> {
    let dir = PathBuf::from("target/heatmap_check");
    std::fs::create_dir_all(&dir)?;
    let png = dir.join(format!("{name}.png"));
    let base = fastai::data::show::open_resized(img, l.data.size)?;
    fastai::interpret::gradcam::blend_heatmap(&base, cam, 0.6)
        .save(&png)
        .map_err(|e| fastai::Error::Msg(format!("{}: {e}", png.display())))?;
    Ok(())
}

/// The item's pixels of a picture on black, at the map's size (row by row): those brighter than a
/// tenth of the brightest.
fn item_pixels(img: &std::path::Path, cam: &Tensor) -> fastai::Result<Vec<bool>> {
    let (h, w) = (cam.size()[0] as u32, cam.size()[1] as u32);
    let gray = image::imageops::resize(&open_image(img)?, w, h, FilterType::Triangle);
    let lum: Vec<f32> = gray
        .pixels()
        .map(|p| (p.0[0] as f32 + p.0[1] as f32 + p.0[2] as f32) / 3.0)
        .collect();
    let top = lum.iter().cloned().fold(0.0f32, f32::max).max(1.0);
    Ok(lum.iter().map(|&v| v > 0.1 * top).collect())
}
