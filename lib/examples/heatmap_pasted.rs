//! Does Grad-CAM point at a Fashion-MNIST item when the model has to find it? The lesson-1 model
//! never has to (its items are centred on black and fill the picture); this one does. A
//! multi-label classifier (MobileNetV2, ImageNet weights, lesson 3's recipe) is trained on the
//! offline lesson-3 segmentation pictures - 1-3 items pasted anywhere on busy backgrounds - with
//! the classes present as labels. Then, for every validation picture and every class in it, the
//! class's Grad-CAM map is compared with that item's pixels (from the mask): the share of the
//! map's mass on the item against the item's share of the picture (what a map that ignores the
//! image gets), and how often the hottest pixel is on the item. A few overlays are written as
//! PNGs.
//!
//!     cargo run --release --example heatmap_pasted -- [size 128] [frozen 3] [unfrozen 2]
//!         [images 200] [out target/heatmap_pasted]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fastai::vision::*;
use image::imageops::FilterType;

#[path = "common/heatmap_score.rs"]
mod heatmap_score;
use heatmap_score::score;

fn main() -> fastai::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| -> usize {
        args.get(i)
            .map_or(default, |s| s.parse().expect("a number"))
    };
    let size = num(0, 128);
    let frozen = num(1, 3);
    let unfrozen = num(2, 2);
    let n_images = num(3, 200);
    let out = PathBuf::from(args.get(4).map_or("target/heatmap_pasted", |s| s.as_str()));
    std::fs::create_dir_all(&out)?;
    tch::manual_seed(0);

    let seg = lesson3_dir().join("segmentation");
    let codes: Vec<String> = std::fs::read_to_string(seg.join("codes.txt"))?
        .lines()
        .map(String::from)
        .collect();
    let mask_of = |p: &Path| -> PathBuf {
        let stem = p.file_stem().unwrap().to_string_lossy();
        seg.join("labels").join(format!("{stem}_P.png"))
    };
    let present = |p: &Path| -> BTreeSet<u8> {
        let mask = open_mask(&mask_of(p)).expect("a readable mask");
        mask.pixels().map(|q| q.0[0]).filter(|&c| c != 0).collect()
    };
    let valid: BTreeSet<String> = std::fs::read_to_string(seg.join("valid.txt"))?
        .split_whitespace()
        .map(String::from)
        .collect();
    let tfms = get_transforms()
        .flip_vert(true)
        .max_lighting(0.1)
        .max_zoom(1.05)
        .max_warp(0.0);
    let data = ImageList::from_folder(seg.join("images"))?
        .split_by_valid_func(|p| valid.contains(&*p.file_name().unwrap().to_string_lossy()))?
        .label_from_func_multi(|p| {
            present(p)
                .into_iter()
                .map(|c| codes[c as usize].clone())
                .collect()
        })?
        .transform(tfms, size)
        .databunch_with(DataOptions::default().bs(32).seed(42))?
        .normalize(imagenet_stats());
    println!("{data}");
    let mut learn = cnn_learner(
        data,
        models::mobilenet_v2,
        &[fbeta(2.0, 0.2), accuracy_thresh(0.2)],
    )?;
    learn.remove_cb::<ProgressCallback>();
    learn.fit_one_cycle(frozen, Some(Lr::Single(1e-2)))?;
    if unfrozen > 0 {
        learn.unfreeze();
        learn.fit_one_cycle(unfrozen, Some(slice(1e-5, 1e-3)))?;
    }
    let (loss, m) = learn.validate()?;
    println!(
        "trained {frozen} frozen + {unfrozen} unfrozen epochs at {size} px: valid loss {loss:.4}, F-beta {:.3}, accuracy_thresh {:.3}",
        m[0].1, m[1].1
    );

    let mut files: Vec<PathBuf> = learn.data.valid_ds.items.clone();
    files.sort();
    files.truncate(n_images);
    // each validation picture with its mask at the model's size and the codes present
    let mut pictures = Vec::new();
    for file in files {
        let full = open_mask(&mask_of(&file))?;
        let codes_in: BTreeSet<u8> = full.pixels().map(|q| q.0[0]).filter(|&c| c != 0).collect();
        let mask = image::imageops::resize(&full, size as u32, size as u32, FilterType::Nearest);
        pictures.push((file, mask, codes_in));
    }
    for point in ["body", "features.13", "features.6"] {
        // sums of: mass on the item, item area, hottest pixel on the item; count
        let (mut mass, mut area, mut hot, mut n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        let mut written = 0;
        for (file, mask, codes_in) in &pictures {
            for &code in codes_in {
                let name = &codes[code as usize];
                let c = learn.data.classes.iter().position(|k| k == name).unwrap();
                let (cam, _) = learn.grad_cam_at(file, Some(c), point)?;
                let on: Vec<bool> = mask.pixels().map(|p| p.0[0] == code).collect();
                let (m, a, h) = score(&cam, &on);
                mass += m;
                area += a;
                hot += h as u8 as f64;
                n += 1;
                if point == "body" && written < 8 {
                    let png = out.join(format!(
                        "{}_{name}.png",
                        file.file_stem().unwrap().to_string_lossy()
                    ));
                    learn
                        .heatmap_image(file, Some(c))?
                        .save(&png)
                        .map_err(|e| fastai::Error::Msg(format!("{}: {e}", png.display())))?;
                    written += 1;
                }
            }
        }
        let n = n as f64;
        println!(
            "{point:<12} {n} (picture, class present) pairs: mass on the class's item {:.3} (item area {:.3}, ratio {:.1}x), hottest pixel on the item {:.2}",
            mass / n,
            area / n,
            mass / area,
            hot / n
        );
    }
    println!("overlays: {}", out.display());
    Ok(())
}
