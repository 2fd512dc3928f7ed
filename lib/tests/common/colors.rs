//! A learnable image task for Learner tests: noisy 48x48 images, the class being the dominant
//! colour channel (red, green or blue).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

pub const CLASSES: [&str; 3] = ["red", "green", "blue"];

/// Writes `per_class` images per class to `dir` as `<class>_<k>.png`, reproducibly from `seed`.
pub fn make_color_data(dir: &Path, per_class: usize, seed: u32) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = Vec::new();
    let mut state = seed;
    let mut rnd = move || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        ((state >> 16) % 120) as u8
    };
    for (c, name) in CLASSES.iter().enumerate() {
        for k in 0..per_class {
            let img = RgbImage::from_fn(48, 48, |_, _| {
                let mut px = [rnd(), rnd(), rnd()];
                px[c] = px[c].saturating_add(110);
                Rgb(px)
            });
            let f = dir.join(format!("{name}_{k}.png"));
            img.save(&f).unwrap();
            files.push(f);
        }
    }
    files
}
