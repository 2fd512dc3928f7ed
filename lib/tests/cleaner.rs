//! ImageCleaner on small generated images in class folders (as lesson 2's bears): the review
//! order is the validation set by loss; the grid; delete / relabel / restore and their errors;
//! `cleaned.csv` (whole dataset, relative names, sorted, no temporary file, no image deleted);
//! and the round trip through `ImageDataBunch::from_csv`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::colors::{make_color_data, CLASSES};
use common::tmp::TempDir;
use fastai::vision::*;

/// `dir/<class>/<class>_<k>.png`, 30 per class.
fn class_folders(dir: &Path) {
    for f in make_color_data(&dir.join(".gen"), 30, 7) {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let class = name.split('_').next().unwrap();
        std::fs::create_dir_all(dir.join(class)).unwrap();
        std::fs::rename(&f, dir.join(class).join(&name)).unwrap();
    }
    std::fs::remove_dir_all(dir.join(".gen")).unwrap();
}

fn opts() -> DataOptions {
    DataOptions::default()
        .size(32)
        .bs(8)
        .num_workers(2)
        .device(Device::Cpu)
}

fn learner(dir: &Path) -> Learner {
    let data = ImageDataBunch::from_folder(dir, opts())
        .unwrap()
        .normalize(imagenet_stats());
    tch::manual_seed(0);
    let lo = LearnerOptions {
        pretrained: false,
        ..Default::default()
    };
    cnn_learner_with(data, models::mobilenet_v2, &[error_rate], lo).unwrap()
}

/// The rows of a CSV file after its header, and the header.
fn read_csv(path: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].to_string(), rec[1].to_string())
        })
        .collect();
    (header, rows)
}

#[test]
fn cleaning_writes_cleaned_csv_that_from_csv_reads_back() {
    let dir = TempDir::new("cleaner-roundtrip");
    class_folders(&dir);
    let mut learn = learner(&dir);
    learn.fit_one_cycle(1, Some(Lr::Single(1e-2))).unwrap(); // losses that differ
    let n_valid = learn.data.valid_ds.len();
    let n_all = n_valid + learn.data.train_ds.len();
    assert_eq!(n_all, 90);

    let mut cleaner = ImageCleaner::from_toplosses(&mut learn).unwrap();
    assert_eq!(cleaner.len(), n_valid, "the validation set is reviewed");
    // numbered from the largest loss down, and the same ranking as the interpretation's
    let interp = ClassificationInterpretation::from_learner(&mut learn).unwrap();
    let (losses, idx) = interp.top_losses(None);
    assert!(losses[0] > losses[losses.len() - 1] + 1e-3, "{losses:?}");
    for i in 0..cleaner.len() {
        assert!((cleaner.loss(i).unwrap() - losses[i]).abs() < 1e-5);
        assert_eq!(cleaner.file(i).unwrap(), learn.data.valid_ds.items[idx[i]]);
        assert_eq!(cleaner.label(i).unwrap(), learn.data.valid_ds.label(idx[i]));
        assert_eq!(
            cleaner.prediction(i).unwrap(),
            interp.classes()[interp.preds()[idx[i]]]
        );
        if i > 0 {
            assert!(cleaner.loss(i - 1).unwrap() >= cleaner.loss(i).unwrap());
        }
    }

    // the grid: 4 per row
    let png = cleaner.grid_png(0, 6).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (1280, 720));
    std::fs::write(dir.join("cleaner_grid.png"), &png).unwrap();
    let png = cleaner.grid_png(n_valid - 1, 10).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (320, 360),
        "clamped to one image"
    );

    // delete #0, relabel #1 to another class, relabel #2 to its own class (no change)
    let (f0, f1, f2) = (
        cleaner.file(0).unwrap().to_path_buf(),
        cleaner.file(1).unwrap().to_path_buf(),
        cleaner.file(2).unwrap().to_path_buf(),
    );
    let old1 = cleaner.label(1).unwrap().to_string();
    let new1 = CLASSES.iter().find(|c| **c != old1).unwrap().to_string();
    let own2 = cleaner.label(2).unwrap().to_string();
    cleaner.delete(0).unwrap();
    cleaner.relabel(1, &new1).unwrap();
    cleaner.relabel(2, &own2).unwrap();
    assert!(cleaner.is_deleted(0).unwrap());
    assert_eq!(cleaner.label(1).unwrap(), new1);
    assert_eq!(cleaner.deleted_files(), vec![f0.as_path()]);
    assert_eq!(
        cleaner.relabelled(),
        vec![(f1.as_path(), old1.as_str(), new1.as_str())]
    );

    // errors say what to do and change nothing
    let err = cleaner.relabel(3, "purple").unwrap_err().to_string();
    assert!(
        err.contains("\"purple\" is not one of the classes: blue, green, red"),
        "{err}"
    );
    let err = cleaner.relabel(0, "red").unwrap_err().to_string();
    assert!(err.contains("cleaner.restore(0)"), "{err}");
    let err = cleaner.delete(n_valid).unwrap_err().to_string();
    assert!(
        err.contains(&format!("there is no image #{n_valid}"))
            && err.contains(&format!("#0 to #{}", n_valid - 1)),
        "{err}"
    );
    assert_eq!(cleaner.deleted_files().len(), 1);
    assert_eq!(cleaner.relabelled().len(), 1);

    let csv = cleaner.save().unwrap();
    assert_eq!(csv, dir.join("cleaned.csv"));
    let (header, rows) = read_csv(&csv);
    assert_eq!(header, ["name", "label"]);
    assert_eq!(rows.len(), n_all - 1, "every kept image, training ones too");
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(rows, sorted, "sorted by name");
    let by_name: BTreeMap<&str, &str> =
        rows.iter().map(|(n, l)| (n.as_str(), l.as_str())).collect();
    let rel = |p: &Path| p.strip_prefix(&dir).unwrap().to_str().unwrap().to_string();
    assert!(
        !by_name.contains_key(rel(&f0).as_str()),
        "deleted one left out"
    );
    assert_eq!(by_name[rel(&f1).as_str()], new1);
    assert_eq!(by_name[rel(&f2).as_str()], own2);
    for (name, label) in &rows {
        assert!(dir.join(name).is_file(), "{name} relative to the data path");
        if *name != rel(&f1) {
            assert!(name.starts_with(&format!("{label}/")), "{name}: {label}");
        }
    }
    assert!(f0.is_file(), "delete never removes the image file");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // the round trip: the cleaned data has the kept images with the new labels
    let cleaned = ImageDataBunch::from_csv(&dir, opts().csv_labels("cleaned.csv")).unwrap();
    assert_eq!(cleaned.train_ds.len() + cleaned.valid_ds.len(), n_all - 1);
    assert_eq!(
        cleaned.classes,
        CLASSES
            .iter()
            .rev()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    );
    let mut labels: BTreeMap<PathBuf, String> = BTreeMap::new();
    for ds in [&cleaned.train_ds, &cleaned.valid_ds] {
        for k in 0..ds.len() {
            labels.insert(ds.items[k].clone(), ds.label(k).to_string());
        }
    }
    assert!(!labels.contains_key(&f0));
    assert_eq!(labels[&f1], new1);
    assert_eq!(labels[&f2], own2);

    // restore undoes both; saving again lists everything with the original labels
    cleaner.restore(0).unwrap();
    cleaner.restore(1).unwrap();
    assert_eq!(cleaner.label(1).unwrap(), old1);
    let (_, rows) = read_csv(&cleaner.save().unwrap());
    assert_eq!(rows.len(), n_all);
    assert!(rows.iter().all(|(n, l)| n.starts_with(&format!("{l}/"))));
}

#[test]
fn show_steps_through_the_images_and_errors_are_clear() {
    let dir = TempDir::new("cleaner-show");
    class_folders(&dir);
    let plots = dir.join("plots");
    // outside a notebook, figures are saved as PNG files here
    std::env::set_var("FASTAI_PLOTS_DIR", &plots);
    let mut learn = learner(&dir);
    let mut cleaner = ImageCleaner::from_toplosses(&mut learn).unwrap();
    let n = cleaner.len();
    assert!(n > 8, "{n}");
    cleaner.show(4).unwrap();
    cleaner.show(4).unwrap();
    let count = || std::fs::read_dir(&plots).map_or(0, |d| d.count());
    assert_eq!(count(), 2);
    assert!(cleaner.to_string().contains("8 shown so far"), "{cleaner}");
    cleaner.show(1000).unwrap(); // the rest
    assert_eq!(count(), 3);
    cleaner.show(4).unwrap(); // nothing left: a message, no figure
    assert_eq!(count(), 3);
    cleaner.show_from(0, 2).unwrap();
    assert_eq!(count(), 4);
    assert!(cleaner.to_string().contains("2 shown so far"), "{cleaner}");
    assert!(cleaner.show_from(n, 2).is_err());

    // an interpretation of other data is refused
    let other = ClassificationInterpretation::new(
        Tensor::ones([2, 3], (Kind::Float, Device::Cpu)) / 3.0,
        Tensor::from_slice(&[0i64, 1]),
        CLASSES.iter().map(|c| c.to_string()).collect(),
    )
    .unwrap();
    let err = ImageCleaner::from_interpretation(&learn.data, &other)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not of this data's validation set"), "{err}");

    // deleting every reviewed image still keeps the training images
    for i in 0..n {
        cleaner.delete(i).unwrap();
    }
    let (_, rows) = read_csv(&cleaner.save().unwrap());
    assert_eq!(rows.len(), learn.data.train_ds.len());
}
