//! ImageDataBunch end to end on generated files named like the lesson's datasets: every labelling
//! constructor, the split, the loader's batches, and unreadable images.

use std::path::{Path, PathBuf};

use ::image::{Rgb, RgbImage};
mod common;

use common::pets::BREEDS;
use common::tmp::TempDir;
use fastai::data::*;
use tch::{Device, Kind};

const PAT: &str = r"/([^/]+)_\d+.jpg$";

/// A small image whose colour encodes its class, in a non-square size like real photos.
fn picture(class: usize, k: usize) -> RgbImage {
    let (w, h) = (40 + (k as u32 % 3) * 10, 30 + (k as u32 % 2) * 10);
    RgbImage::from_fn(w, h, |x, _| Rgb([(class * 6) as u8, (x * 5) as u8, 200]))
}

/// `images/<Breed>_<n>.jpg`, `per` of each of the 37 breeds.
fn make_pets(dir: &Path, per: usize) -> Vec<PathBuf> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for (c, breed) in BREEDS.iter().enumerate() {
        for k in 1..=per {
            picture(c, k)
                .save(images.join(format!("{breed}_{k}.jpg")))
                .unwrap();
        }
    }
    get_image_files(&images).unwrap()
}

fn opts() -> DataOptions {
    DataOptions::default()
        .size(32)
        .bs(16)
        .num_workers(2)
        .device(Device::Cpu)
}

#[test]
fn from_name_re_with_the_lesson_pattern_gives_37_classes() {
    let dir = TempDir::new("bunch-pets");
    let fnames = make_pets(&dir, 5);
    assert_eq!(fnames.len(), 185);
    let mut data = ImageDataBunch::from_name_re(
        dir.join("images"),
        &fnames,
        PAT,
        opts().tfms(get_transforms()),
    )
    .unwrap()
    .normalize(imagenet_stats());
    assert_eq!(data.c(), 37);
    assert_eq!(data.classes[0], "Abyssinian");
    assert_eq!(data.classes[12], "american_bulldog");
    assert_eq!(data.valid_ds.len(), 37); // 20% of 185
    assert_eq!(data.train_ds.len(), 148);
    // Every label is right: the file name says the breed.
    for i in 0..data.train_ds.len() {
        let name = data.train_ds.items[i]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            name.starts_with(&format!("{}_", data.train_ds.label(i))),
            "{name}"
        );
    }
    // Batches: shapes, kinds, normalized values, all training items once per epoch.
    let mut seen = Vec::new();
    for b in data.train_dl.iter() {
        assert_eq!(b.x.size(), vec![16, 3, 32, 32]);
        assert_eq!(b.y.kind(), Kind::Int64);
        let max = b.x.max().double_value(&[]);
        assert!(max > 1.0 && max < 3.0, "normalized values, max {max}");
        seen.extend(b.indices);
    }
    assert_eq!(
        seen.len(),
        144,
        "148 items, drop_last with bs 16 -> 9 batches"
    );
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 144);
    let valid: Vec<_> = data.valid_dl.iter().collect();
    assert_eq!(valid.iter().map(|b| b.indices.len()).sum::<usize>(), 37);
    assert_eq!(
        valid[0].indices,
        (0..32).collect::<Vec<_>>(),
        "validation keeps its order"
    );
}

#[test]
fn split_and_augmentation_are_reproducible() {
    let dir = TempDir::new("bunch-repro");
    let fnames = make_pets(&dir, 2);
    let make = |seed| {
        ImageDataBunch::from_name_re(&dir, &fnames, PAT, opts().seed(seed).tfms(get_transforms()))
            .unwrap()
    };
    let (mut a, mut b, c) = (make(7), make(7), make(8));
    assert_eq!(a.valid_ds.items, b.valid_ds.items);
    assert_ne!(a.valid_ds.items, c.valid_ds.items);
    let (xa, xb) = (
        a.train_dl.iter().next().unwrap(),
        b.train_dl.iter().next().unwrap(),
    );
    assert_eq!(xa.indices, xb.indices);
    assert!(xa.x.equal(&xb.x), "same seed, same augmented pixels");
    // The next epoch is shuffled differently.
    let next = a.train_dl.iter().next().unwrap();
    assert_ne!(next.indices, xa.indices);
}

#[test]
fn the_other_constructors_agree() {
    let dir = TempDir::new("bunch-mnist");
    // MNIST_SAMPLE layout: train/3, train/7, valid/3, valid/7, and labels.csv
    let mut csv = String::from("name,label\n");
    let mut all = Vec::new();
    for split in ["train", "valid"] {
        for digit in ["3", "7"] {
            std::fs::create_dir_all(dir.join(split).join(digit)).unwrap();
            for k in 0..6 {
                let rel = format!("{split}/{digit}/{k}.png");
                picture(digit.parse().unwrap(), k)
                    .save(dir.join(&rel))
                    .unwrap();
                csv.push_str(&format!("{rel},{}\n", (digit == "7") as u8));
                all.push(dir.join(&rel));
            }
        }
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();

    let folder = ImageDataBunch::from_folder(&dir, opts()).unwrap();
    assert_eq!(folder.classes, vec!["3", "7"]);
    assert_eq!((folder.train_ds.len(), folder.valid_ds.len()), (12, 12));

    let from_csv = ImageDataBunch::from_csv(&dir, opts()).unwrap();
    assert_eq!(from_csv.classes, vec!["0", "1"]);
    assert_eq!(from_csv.train_ds.len() + from_csv.valid_ds.len(), 24);

    let re = ImageDataBunch::from_name_re(&dir, &all, r"/(\d)/\d+.png$", opts()).unwrap();
    assert_eq!(re.classes, vec!["3", "7"]);

    let func = ImageDataBunch::from_name_func(
        &dir,
        &all,
        |p| {
            Some(
                if p.to_str()?.contains("/3/") {
                    "three"
                } else {
                    "seven"
                }
                .to_string(),
            )
        },
        opts(),
    )
    .unwrap();
    assert_eq!(func.classes, vec!["seven", "three"]);

    let labels: Vec<String> = all
        .iter()
        .map(|p| {
            p.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .into()
        })
        .collect();
    let lists = ImageDataBunch::from_lists(&dir, all.clone(), labels, opts()).unwrap();
    assert_eq!(lists.classes, vec!["3", "7"]);
    assert_eq!(
        lists.valid_ds.items, re.valid_ds.items,
        "same files, same seed: same split"
    );

    assert!(ImageDataBunch::from_lists(&dir, all.clone(), vec!["3".into()], opts()).is_err());
    let err = ImageDataBunch::from_csv(&dir, opts().csv_labels("nope.csv"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope.csv"), "{err}");
}

#[test]
fn unreadable_images_are_skipped_not_fatal() {
    let dir = TempDir::new("bunch-corrupt");
    let mut fnames = make_pets(&dir, 1);
    fnames.truncate(10);
    std::fs::write(&fnames[2], b"").unwrap(); // empty
    let good = std::fs::read(&fnames[4]).unwrap();
    std::fs::write(&fnames[4], &good[..good.len() / 3]).unwrap(); // truncated
    std::fs::write(&fnames[6], b"GIF89a but not really").unwrap(); // garbage
    let mut data =
        ImageDataBunch::from_name_re(&dir, &fnames, PAT, opts().valid_pct(0.0).bs(10)).unwrap();
    data.train_dl.drop_last = false;
    let batches: Vec<_> = data.train_dl.iter().collect();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].x.size()[0], 7, "3 of 10 files are unreadable");
    assert_eq!(batches[0].y.size(), vec![7]);
}

#[test]
fn offline_fashion_mnist_loads_like_a_folder_dataset() {
    let root = fastai::config::fashion_mnist_dir();
    assert!(
        root.join("classes.txt").is_file(),
        "{} missing: run ./install.sh",
        root.display()
    );
    let mut data =
        ImageDataBunch::from_folder(&root, opts().folders("train", "test").size(28)).unwrap();
    assert_eq!(data.c(), 10);
    assert_eq!((data.train_ds.len(), data.valid_ds.len()), (60_000, 10_000));
    let b = data.valid_dl.iter().next().unwrap();
    assert_eq!(b.x.size(), vec![32, 3, 28, 28]);
    // and by name, like the pets: <class>_<n>.png
    let fnames = get_image_files(root.join("test")).unwrap();
    let by_name =
        ImageDataBunch::from_name_re(&root, &fnames, r"/([^/]+)_\d+.png$", opts()).unwrap();
    assert_eq!(by_name.classes, data.classes);
}

/// fastai users write `data = ...; data.show_batch(...)`: it needs no `mut`, shows other images
/// each time, and leaves the training order as it was.
#[test]
fn show_batch_takes_a_plain_binding_and_leaves_training_alone() {
    let dir = TempDir::new("bunch-show");
    let fnames = make_pets(&dir, 2);
    let data = ImageDataBunch::from_name_re(dir.join("images"), &fnames, PAT, opts()).unwrap();
    let first = data.show_batch_png(2, (3.0, 3.0)).unwrap();
    let second = data.show_batch_png(2, (3.0, 3.0)).unwrap();
    assert_ne!(first, second, "another batch each time");
    let a = data.train_dl.one_batch().unwrap();
    let mut fresh = ImageDataBunch::from_name_re(dir.join("images"), &fnames, PAT, opts()).unwrap();
    let b = fresh.train_dl.iter().next().unwrap();
    assert_eq!(a.indices, b.indices, "training's first epoch is unchanged");
}
