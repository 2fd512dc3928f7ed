//! Near-duplicates (fastai's `DatasetFormatter.from_similars`): in a folder of distinct random
//! pictures, a plain copy and a resized copy planted among them are the two most similar pairs
//! the cleaner finds, shown side by side.

mod common;

use std::path::Path;

use common::lcg::Lcg;
use common::tmp::TempDir;
use fastai::interpret::cleaner::most_similar_pairs;
use fastai::vision::*;
use image::{imageops::FilterType, Rgb, RgbImage};

/// A picture of a few random coloured discs on a random background.
fn picture(rng: &mut Lcg) -> RgbImage {
    let bg = [
        rng.next(256) as u8,
        rng.next(256) as u8,
        rng.next(256) as u8,
    ];
    let mut img = RgbImage::from_pixel(96, 96, Rgb(bg));
    for _ in 0..4 {
        let (cx, cy, r) = (
            rng.next(96) as i64,
            rng.next(96) as i64,
            8 + rng.next(20) as i64,
        );
        let c = [
            rng.next(256) as u8,
            rng.next(256) as u8,
            rng.next(256) as u8,
        ];
        for y in 0..96i64 {
            for x in 0..96i64 {
                if (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                    img.put_pixel(x as u32, y as u32, Rgb(c));
                }
            }
        }
    }
    img
}

fn write(dir: &Path, class: &str, name: &str, img: &RgbImage) {
    std::fs::create_dir_all(dir.join(class)).unwrap();
    img.save(dir.join(class).join(name)).unwrap();
}

#[test]
fn planted_copies_are_the_most_similar_pairs() {
    let dir = TempDir::new("dups");
    let mut rng = Lcg(11);
    let mut pics = Vec::new();
    for i in 0..40 {
        let p = picture(&mut rng);
        write(
            &dir,
            if i % 2 == 0 { "a" } else { "b" },
            &format!("{i:02}.png"),
            &p,
        );
        pics.push(p);
    }
    write(&dir, "a", "copy_of_04.png", &pics[4]);
    let resized = image::imageops::resize(&pics[9], 150, 150, FilterType::Triangle);
    write(&dir, "b", "resized_09.png", &resized);

    let data = ImageDataBunch::from_folder(
        &*dir,
        DataOptions::default()
            .size(64)
            .bs(8)
            .num_workers(2)
            .device(Device::Cpu),
    )
    .unwrap()
    .normalize(imagenet_stats());
    let mut learn = cnn_learner(data, models::mobilenet_v2, &[error_rate]).unwrap();
    let mut cleaner = ImageCleaner::from_similars(&mut learn, 5).unwrap();
    assert_eq!(cleaner.len(), 10, "5 pairs, each image shown");
    let name = |i: usize| {
        cleaner
            .file(i)
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let mut top: Vec<Vec<String>> = (0..2)
        .map(|p| {
            let mut pair = vec![name(2 * p), name(2 * p + 1)];
            pair.sort();
            pair
        })
        .collect();
    top.sort();
    assert_eq!(
        top,
        [["04.png", "copy_of_04.png"], ["09.png", "resized_09.png"]],
        "the planted pairs come first"
    );
    let png = cleaner.grid_png(0, 4).unwrap();
    assert!(image::load_from_memory(&png).is_ok());
    // deleting one of a pair leaves it out of cleaned.csv
    cleaner.delete(1).unwrap();
    let csv = std::fs::read_to_string(cleaner.save().unwrap()).unwrap();
    assert_eq!(csv.lines().count(), 1 + 42 - 1);
    cleaner.show(4).unwrap();

    // the pair search itself, by hand: rows 0 and 2 point the same way, 1 and 3 nearly
    let f = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 2.0, 0.0, 0.1, 1.0]).view([4, 2]);
    let pairs = most_similar_pairs(&f, 2);
    assert_eq!((pairs[0].0, pairs[0].1), (0, 2));
    assert!((pairs[0].2 - 1.0).abs() < 1e-6);
    assert_eq!((pairs[1].0, pairs[1].1), (1, 3));
}
