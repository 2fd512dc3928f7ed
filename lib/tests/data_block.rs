//! The data block API on a small folder of generated pictures (coloured squares on grey): every
//! split and label function; each kind of target collates to the right batch and shows; masks
//! and points keep up with augmentation inside the loader; bad input gets errors that say what
//! is wrong; a learner trains on every kind, `show_results` draws, `predict_target` decodes,
//! the test set predicts, and a bigger databunch swaps into a trained learner.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::lcg::Lcg;
use common::tmp::TempDir;
use fastai::vision::*;
use image::{GrayImage, Luma, Rgb, RgbImage};

const COLORS: [(&str, [u8; 3]); 3] = [
    ("red", [220, 40, 40]),
    ("green", [40, 200, 60]),
    ("blue", [40, 60, 220]),
];
const W: u32 = 48;
const H: u32 = 40;

/// One generated picture: its squares (colour index, top, left, side).
struct Item {
    name: String,
    squares: Vec<(usize, u32, u32, u32)>,
}

/// `n` pictures under `dir`: `images/<name>.png` (a train/valid folder pair too),
/// `labels/<name>_P.png` masks (0 grey, 1 + colour index), `labels.csv` (`name,tags` with the
/// colours present), `valid.txt` (every fifth picture).
fn make(dir: &Path, n: usize) -> Vec<Item> {
    let mut rng = Lcg(7);
    for d in ["images", "labels", "train", "valid"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let mut csv = String::from("image_name,tags\n");
    let mut valid = String::new();
    let mut items = Vec::new();
    for i in 0..n {
        let name = format!("pic{i:03}");
        let k = 1 + (i % 2);
        let mut squares = Vec::new();
        let mut img = RgbImage::from_pixel(W, H, Rgb([128, 128, 128]));
        let mut mask = GrayImage::new(W, H);
        for s in 0..k {
            let c = (i + s) % 3;
            let side = 10 + rng.next(6);
            let (top, left) = (rng.next(H - side), rng.next(W - side));
            for y in top..top + side {
                for x in left..left + side {
                    img.put_pixel(x, y, Rgb(COLORS[c].1));
                    mask.put_pixel(x, y, Luma([1 + c as u8]));
                }
            }
            squares.push((c, top, left, side));
        }
        img.save(dir.join(format!("images/{name}.png"))).unwrap();
        let split = if i % 5 == 0 { "valid" } else { "train" };
        img.save(dir.join(format!("{split}/{name}.png"))).unwrap();
        mask.save(dir.join(format!("labels/{name}_P.png"))).unwrap();
        let mut tags: Vec<&str> = squares.iter().map(|s| COLORS[s.0].0).collect();
        tags.sort_unstable();
        tags.dedup();
        csv.push_str(&format!("{name},{}\n", tags.join(" ")));
        if i % 5 == 0 {
            valid.push_str(&format!("{name}.png\n"));
        }
        items.push(Item { name, squares });
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();
    std::fs::write(dir.join("images/valid.txt"), valid).unwrap();
    items
}

fn codes() -> Vec<String> {
    ["grey", "red", "green", "blue"].map(String::from).to_vec()
}

fn mask_of(p: &Path) -> PathBuf {
    let stem = p.file_stem().unwrap().to_string_lossy();
    p.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(format!("labels/{stem}_P.png"))
}

/// The centre of each picture's first square, `[y, x]` in pixels.
fn centres(items: &[Item]) -> HashMap<String, [f32; 2]> {
    items
        .iter()
        .map(|it| {
            let (_, top, left, side) = it.squares[0];
            let half = side as f32 / 2.0;
            (it.name.clone(), [top as f32 + half, left as f32 + half])
        })
        .collect()
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn colour_of(p: &Path, items: &[Item]) -> String {
    let i: usize = stem(p)[3..].parse().unwrap();
    COLORS[items[i].squares[0].0].0.to_string()
}

fn opts() -> DataOptions {
    DataOptions::default().num_workers(2).device(Device::Cpu)
}

#[test]
fn every_split_keeps_every_item_once() {
    let dir = TempDir::new("block-split");
    make(&dir, 25);
    let images = || ImageList::from_folder(dir.join("images")).unwrap();
    assert_eq!(images().len(), 25);

    let check = |l: &fastai::data::ItemLists<fastai::data::block::Images>, n_valid: usize| {
        assert_eq!(l.valid.len(), n_valid);
        let mut all: Vec<&PathBuf> = l.train.items.iter().chain(&l.valid.items).collect();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            l.train.len() + l.valid.len(),
            "an item in both sets"
        );
    };
    let r = images().split_by_rand_pct(0.2).unwrap();
    check(&r, 5);
    assert_eq!(
        r.valid.items,
        images().split_by_rand_pct(0.2).unwrap().valid.items
    );
    assert_ne!(
        r.valid.items,
        images().split_by_rand_pct_with(0.2, 1).unwrap().valid.items,
        "another seed, another split"
    );
    let f = images().split_by_fname_file("valid.txt").unwrap();
    check(&f, 5);
    assert!(f
        .valid
        .items
        .iter()
        .all(|p| stem(p).ends_with('0') || stem(p).ends_with('5')));
    let v = images()
        .split_by_valid_func(|p| stem(p).ends_with('3'))
        .unwrap();
    check(&v, 3);
    let idx = images().split_by_idx(&[0, 1, 2]).unwrap();
    check(&idx, 3);
    assert_eq!(stem(&idx.valid.items[2]), "pic002");
    let none = images().split_none().unwrap();
    check(&none, 0);
    assert_eq!(none.train.len(), 25);

    // by folder: the images/ folder is under neither train/ nor valid/, so it is left out
    let folders = ImageList::from_folder(&*dir)
        .unwrap()
        .split_by_folder()
        .unwrap();
    assert_eq!((folders.train.len(), folders.valid.len()), (20, 5));
    let err = ImageList::from_folder(&*dir)
        .unwrap()
        .split_by_folder_with("train", "validation")
        .unwrap_err()
        .to_string();
    assert!(err.contains("validation"), "{err}");

    // a validation file naming an image that is not there
    std::fs::write(dir.join("images/bad.txt"), "pic001.png\nnot_there.png\n").unwrap();
    let err = images()
        .split_by_fname_file("bad.txt")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not_there.png") && err.contains("bad.txt"),
        "{err}"
    );
    assert!(images().split_by_idx(&[99]).is_err());
}

#[test]
fn every_label_function_labels_every_item() {
    let dir = TempDir::new("block-label");
    let items = make(&dir, 20);
    let split = || {
        ImageList::from_folder(dir.join("images"))
            .unwrap()
            .split_by_fname_file("valid.txt")
            .unwrap()
    };
    let by_re = split().label_from_re(r"pic\d(\d)\d\.png$").unwrap();
    assert_eq!(by_re.classes(), ["0", "1"]);
    let by_func = split()
        .label_from_func(|p| Some(colour_of(p, &items)))
        .unwrap();
    assert_eq!(by_func.classes(), ["blue", "green", "red"]);
    assert_eq!(
        by_func.train.label(0),
        colour_of(&by_func.train.items[0], &items)
    );
    let by_folder = ImageList::from_folder(&*dir)
        .unwrap()
        .split_by_folder()
        .unwrap()
        .label_from_folder()
        .unwrap();
    assert_eq!(by_folder.classes(), ["train", "valid"]);
    let floats = split()
        .label_from_func_float(|p| vec![stem(p)[3..].parse::<f32>().unwrap() / 10.0])
        .unwrap();
    assert_eq!(floats.train.y.kind(), "float");

    let csv = ImageList::from_csv(
        &*dir,
        "labels.csv",
        CsvOptions::default().folder("images").suffix(".png"),
    )
    .unwrap()
    .split_by_rand_pct(0.25)
    .unwrap();
    let multi = csv.clone().label_from_df(1, Some(" ")).unwrap();
    assert_eq!(multi.classes(), ["blue", "green", "red"]);
    let Labels::MultiCategory(tags) = &multi.train.y else {
        panic!("multi-category targets expected");
    };
    assert!(tags.iter().all(|t| !t.is_empty() && t.len() <= 2));
    assert!(tags.iter().any(|t| t.len() == 2));
    let single = csv.clone().label_from_df(1, None).unwrap();
    assert!(single.classes().contains(&"blue red".to_string()));

    let segs = SegmentationItemList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_fname_file("valid.txt")
        .unwrap()
        .label_from_func(mask_of, codes())
        .unwrap();
    assert_eq!(segs.train.y.kind(), "mask");
    let ctr = centres(&items);
    let pts = PointsItemList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_fname_file("valid.txt")
        .unwrap()
        .label_from_func(|p| vec![ctr[&stem(p)]])
        .unwrap();
    assert_eq!((pts.train.len(), pts.valid.len()), (16, 4));
}

#[test]
fn bad_labels_are_clear_errors() {
    let dir = TempDir::new("block-bad");
    let items = make(&dir, 10);
    let csv = || {
        ImageList::from_csv(
            &*dir,
            "labels.csv",
            CsvOptions::default().folder("images").suffix(".png"),
        )
        .unwrap()
        .split_by_rand_pct(0.2)
        .unwrap()
    };
    // a delimiter that splits nothing
    let err = csv().label_from_df(1, Some(",")).unwrap_err().to_string();
    assert!(err.contains("splits none"), "{err}");
    assert!(csv()
        .label_from_df(5, None)
        .unwrap_err()
        .to_string()
        .contains("column 5"));
    // a CSV row naming a missing image
    std::fs::write(
        dir.join("missing.csv"),
        "image_name,tags\npic000,red\nghost,blue\n",
    )
    .unwrap();
    let err = ImageList::from_csv(
        &*dir,
        "missing.csv",
        CsvOptions::default().folder("images").suffix(".png"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("ghost.png") && err.contains("row 2"), "{err}");
    // label_from_df needs CSV rows
    let err = ImageList::from_folder(dir.join("images"))
        .unwrap()
        .split_none()
        .unwrap()
        .label_from_df(1, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("from_csv"), "{err}");

    let segs = || {
        SegmentationItemList::from_folder(dir.join("images"))
            .unwrap()
            .split_by_rand_pct(0.2)
            .unwrap()
    };
    // a code id outside codes
    let err = segs()
        .label_from_func(mask_of, codes()[..3].to_vec())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class id 3") && err.contains("3 names"),
        "{err}"
    );
    // a mask of another size
    let odd = GrayImage::new(W + 2, H);
    odd.save(dir.join("labels/pic004_P.png")).unwrap();
    let err = segs()
        .label_from_func(mask_of, codes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pic004_P.png") && err.contains("50x40") && err.contains("48x40"),
        "{err}"
    );
    // a missing mask
    std::fs::remove_file(dir.join("labels/pic004_P.png")).unwrap();
    let err = segs()
        .label_from_func(mask_of, codes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pic004_P.png") && err.contains("does not exist"),
        "{err}"
    );
    // a labelling function that panics names the item
    let err = PointsItemList::from_folder(dir.join("images"))
        .unwrap()
        .split_none()
        .unwrap()
        .label_from_func(|p| {
            if stem(p) == "pic003" {
                panic!("no pose file")
            }
            vec![[1.0, 1.0]]
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pic003") && err.contains("no pose file"),
        "{err}"
    );
    let _ = items;
}

#[test]
fn each_target_kind_collates_and_shows() {
    let dir = TempDir::new("block-batches");
    let items = make(&dir, 20);
    let ctr = centres(&items);
    let size = (32usize, 40usize);
    let split = |valid: &str| {
        ImageList::from_folder(dir.join("images"))
            .unwrap()
            .split_by_fname_file(valid)
            .unwrap()
    };
    let tfms = get_transforms();
    let category = split("valid.txt")
        .label_from_func(|p| Some(colour_of(p, &items)))
        .unwrap()
        .transform(tfms.clone(), size)
        .databunch_with(opts().bs(8))
        .unwrap();
    let multi = ImageList::from_csv(
        &*dir,
        "labels.csv",
        CsvOptions::default().folder("images").suffix(".png"),
    )
    .unwrap()
    .split_by_rand_pct(0.2)
    .unwrap()
    .label_from_df(1, Some(" "))
    .unwrap()
    .transform(tfms.clone(), size)
    .databunch_with(opts().bs(8))
    .unwrap();
    let seg = SegmentationItemList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_fname_file("valid.txt")
        .unwrap()
        .label_from_func(mask_of, codes())
        .unwrap()
        .transform(tfms.clone(), size)
        .databunch_with(opts().bs(8))
        .unwrap();
    let points = PointsItemList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_fname_file("valid.txt")
        .unwrap()
        .label_from_func(|p| vec![ctr[&stem(p)]])
        .unwrap()
        .transform(tfms.clone(), size)
        .databunch_with(opts().bs(8))
        .unwrap();
    let floats = split("valid.txt")
        .label_from_func_float(|p| vec![stem(p)[3..].parse::<f32>().unwrap(), 1.0])
        .unwrap()
        .transform(tfms, size)
        .databunch_with(opts().bs(8))
        .unwrap();

    let shape = |d: &ImageDataBunch| {
        let b = d.train_dl.one_batch().unwrap();
        assert_eq!(b.x.size(), [8, 3, 32, 40]);
        (b.y.size(), b.y.kind())
    };
    assert_eq!(shape(&category), (vec![8], Kind::Int64));
    assert_eq!(shape(&multi), (vec![8, 3], Kind::Float));
    assert_eq!(shape(&seg), (vec![8, 32, 40], Kind::Int64));
    assert_eq!(shape(&points), (vec![8, 1, 2], Kind::Float));
    assert_eq!(shape(&floats), (vec![8, 2], Kind::Float));
    assert_eq!((seg.c(), points.c(), floats.c(), multi.c()), (4, 2, 2, 3));
    let s = format!("{seg}");
    assert!(
        s.contains("segmentation, 4 codes") && s.contains("32x40"),
        "{s}"
    );

    // multi-hot rows: every row has its item's colours, and only those
    let b = multi.train_dl.one_batch().unwrap();
    for (k, &i) in b.indices.iter().enumerate() {
        let want = multi.train_ds.label(i);
        let row = Vec::<f32>::try_from(b.y.get(k as i64)).unwrap();
        let on: Vec<&str> = row
            .iter()
            .zip(&multi.classes)
            .filter(|(v, _)| **v == 1.0)
            .map(|(_, c)| c.as_str())
            .collect();
        assert_eq!(on.join(";"), want);
    }

    // masks: ids stay ids; in validation (no augmentation) a square's colour is under its id
    let vb = seg.valid_dl.one_batch().unwrap();
    let ids = Vec::<i64>::try_from(vb.y.flatten(0, -1)).unwrap();
    assert!(ids.iter().all(|&v| (0..4).contains(&v)));
    assert!(ids.iter().any(|&v| v > 0));
    let tb = seg.train_dl.one_batch().unwrap();
    let ids = Vec::<i64>::try_from(tb.y.flatten(0, -1)).unwrap();
    assert!(ids.iter().all(|&v| (0..4).contains(&v)));
    // augmented training images and masks agree: where the mask says red, the pixel is red
    let img = tb.x.get(0);
    let m = tb.y.get(0);
    let red = m.eq(1);
    let n_red = red.sum(Kind::Int64).int64_value(&[]);
    if n_red > 20 {
        let r = img
            .get(0)
            .masked_select(&red)
            .mean(Kind::Float)
            .double_value(&[]);
        assert!(r > 0.7, "red pixels under red ids: mean red {r}");
    }

    // points: the augmented point sits on its square's colour in the augmented image
    let pb = points.train_dl.one_batch().unwrap();
    for k in 0..8 {
        let p = Vec::<f32>::try_from(pb.y.get(k).flatten(0, -1)).unwrap();
        assert!(
            p.iter().all(|v| v.abs() <= 1.0),
            "the point stays in the picture: {p:?}"
        );
        let (y, x) = (
            ((p[0] + 1.0) * 32.0 / 2.0) as i64,
            ((p[1] + 1.0) * 40.0 / 2.0) as i64,
        );
        let px: Vec<f64> = (0..3)
            .map(|c| pb.x.double_value(&[k, c, y.min(31), x.min(39)]))
            .collect();
        let grey = px.iter().all(|v| (v - 0.5).abs() < 0.05);
        assert!(
            !grey,
            "the point of item {k} ({y}, {x}) is on the grey background: {px:?}"
        );
    }

    for (name, d) in [
        ("category", &category),
        ("multi", &multi),
        ("mask", &seg),
        ("points", &points),
        ("float", &floats),
    ] {
        let png = d.show_batch_png(2, (4.0, 4.0)).unwrap();
        std::fs::write(dir.join(format!("show_batch_{name}.png")), &png).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (400, 400), "{name}");
        if name == "points" {
            assert!(
                img.pixels().any(|p| p.0 == [230, 30, 30]),
                "points drawn in red"
            );
        }
    }
}

#[test]
fn learners_for_every_kind_train_show_and_predict() {
    let dir = TempDir::new("block-learn");
    let items = make(&dir, 24);
    let ctr = centres(&items);
    let size = 32usize;
    let pretrained = LearnerOptions::default().pretrained(false);
    let test_items: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("images/pic{i:03}.png")))
        .collect();

    let multi = ImageList::from_csv(
        &*dir,
        "labels.csv",
        CsvOptions::default().folder("images").suffix(".png"),
    )
    .unwrap()
    .split_by_rand_pct(0.25)
    .unwrap()
    .label_from_df(1, Some(" "))
    .unwrap()
    .transform(None, size)
    .add_test(test_items.clone())
    .databunch_with(opts().bs(6))
    .unwrap()
    .normalize(imagenet_stats());
    let mut learn = cnn_learner_with(
        multi,
        models::resnet18,
        &[accuracy_thresh(0.5), fbeta(2.0, 0.2)],
        pretrained.clone(),
    )
    .unwrap();
    assert_eq!(learn.loss_func.name(), "BCEWithLogitsFlat");
    learn.fit(1, 1e-3).unwrap();
    let preds = learn.get_preds_test().unwrap();
    assert_eq!(preds.size(), [3, 3]);
    assert!(preds.min().double_value(&[]) >= 0.0 && preds.max().double_value(&[]) <= 1.0);
    let p = learn.predict_target(&test_items[0]).unwrap();
    assert!(matches!(
        p,
        fastai::learner::results::Prediction::MultiCategory { .. }
    ));
    let png = learn.show_results_png(3, (4.0, 6.0)).unwrap();
    std::fs::write(dir.join("show_results_multi.png"), &png).unwrap();
    check_png(&png, (400, 600));

    let points = PointsItemList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_rand_pct(0.25)
        .unwrap()
        .label_from_func(|p| vec![ctr[&stem(p)]])
        .unwrap()
        .transform(get_transforms(), size)
        .databunch_with(opts().bs(6))
        .unwrap();
    let mut learn = cnn_learner_with(
        points,
        models::resnet18,
        &[],
        pretrained.clone().y_range(-1.0, 1.0),
    )
    .unwrap();
    assert_eq!(learn.loss_func.name(), "MSELossFlat");
    learn.fit(1, 1e-3).unwrap();
    let (preds, targets) = learn.get_preds().unwrap();
    assert_eq!(preds.size(), [6, 2]);
    assert_eq!(targets.size(), [6, 1, 2]);
    assert!(
        preds.abs().max().double_value(&[]) <= 1.0,
        "y_range keeps outputs in (-1, 1)"
    );
    let fastai::learner::results::Prediction::Points(pts) =
        learn.predict_target(&test_items[1]).unwrap()
    else {
        panic!("points expected")
    };
    assert!(
        pts[0][0] >= 0.0 && pts[0][0] <= H as f32 && pts[0][1] >= 0.0 && pts[0][1] <= W as f32,
        "{pts:?}"
    );
    let png = learn.show_results_png(2, (4.0, 4.0)).unwrap();
    std::fs::write(dir.join("show_results_points.png"), &png).unwrap();
    check_png(&png, (400, 400));

    let floats = ImageList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_rand_pct(0.25)
        .unwrap()
        .label_from_func_float(|p| vec![ctr[&stem(p)][0] / H as f32])
        .unwrap()
        .transform(None, size)
        .databunch_with(opts().bs(6))
        .unwrap();
    let mut learn =
        cnn_learner_with(floats, models::resnet18, &[rmse], pretrained.clone()).unwrap();
    learn.fit(1, 1e-3).unwrap();
    check_png(&learn.show_results_png(2, (4.0, 4.0)).unwrap(), (400, 400));

    // classification: progressive resizing swaps a bigger databunch into the trained learner
    let small = ImageList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_rand_pct(0.25)
        .unwrap()
        .label_from_func(|p| Some(colour_of(p, &items)))
        .unwrap();
    let mut learn = cnn_learner_with(
        small
            .clone()
            .transform(None, 24)
            .databunch_with(opts().bs(6))
            .unwrap(),
        models::resnet18,
        &[error_rate],
        pretrained,
    )
    .unwrap();
    learn.fit(1, 1e-3).unwrap();
    learn.data = small
        .transform(None, 40)
        .databunch_with(opts().bs(6))
        .unwrap();
    learn.fit(1, 1e-3).unwrap();
    assert_eq!(learn.data.train_dl.one_batch().unwrap().x.size()[2], 40);
    assert_eq!(
        learn.recorder.valid_losses.len(),
        1,
        "the recorder keeps the last fit"
    );
    let p = learn.predict_target(&test_items[2]).unwrap();
    assert!(format!("{p}").contains("(p = "), "{p}");
    check_png(&learn.show_results_png(2, (4.0, 4.0)).unwrap(), (400, 400));
    // masks go to unet_learner
    let seg = SegmentationItemList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_rand_pct(0.25)
        .unwrap()
        .label_from_func(mask_of, codes())
        .unwrap()
        .transform(None, size)
        .databunch_with(opts().bs(6))
        .unwrap();
    let err = cnn_learner(seg, models::resnet18, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unet_learner"), "{err}");
}

fn check_png(png: &[u8], dims: (u32, u32)) {
    let img = image::load_from_memory(png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), dims);
    assert!(
        img.pixels().any(|p| p.0 != [255, 255, 255]),
        "something is drawn"
    );
}

#[test]
fn test_time_augmentation_blends_views_with_the_plain_prediction() {
    let dir = TempDir::new("block-tta");
    let items = make(&dir, 20);
    let data = ImageList::from_folder(dir.join("images"))
        .unwrap()
        .split_by_fname_file("valid.txt")
        .unwrap()
        .label_from_func(|p| Some(colour_of(p, &items)))
        .unwrap()
        .transform(get_transforms(), 32)
        .databunch_with(opts().bs(4))
        .unwrap()
        .normalize(imagenet_stats());
    let mut learn = cnn_learner_with(
        data,
        models::resnet18,
        &[error_rate],
        LearnerOptions::default().pretrained(false),
    )
    .unwrap();
    learn.fit(1, 1e-3).unwrap();
    let (plain, y) = learn.get_preds().unwrap();
    let close = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]) < 1e-6;
    let (none, y0) = learn.tta_with(0, Some(0.4), 1.35).unwrap();
    assert!(
        close(&none, &plain) && y0.equal(&y),
        "no views: the plain prediction"
    );
    let (all_plain, _) = learn.tta_with(8, Some(1.0), 1.35).unwrap();
    assert!(
        close(&all_plain, &plain),
        "beta 1 keeps only the plain prediction"
    );
    let (views, _) = learn.tta_with(8, None, 1.35).unwrap();
    let (blend, y2) = learn.tta().unwrap();
    assert!(y2.equal(&y) && blend.size() == plain.size());
    assert!(
        !close(&views, &plain),
        "zoomed, flipped views predict differently"
    );
    assert!(
        close(&blend, &(&plain * 0.4 + &views * 0.6)),
        "fastai's beta 0.4 blend"
    );
    let sums = blend.sum_dim_intlist(1, false, Kind::Float);
    assert!(close(&sums, &sums.ones_like()), "still probabilities");
}

#[test]
fn augmentation_grids_show_each_version_asked_for() {
    let dir = TempDir::new("block-aug");
    make(&dir, 1);
    let file = dir.join("images/pic000.png");
    let strong = get_transforms()
        .max_rotate(20.0)
        .max_zoom(1.3)
        .max_lighting(0.4)
        .max_warp(0.4)
        .p_affine(1.0)
        .p_lighting(1.0);
    let cells = fastai::data::show::augmented_versions(&file, &strong, 8, 40, 1).unwrap();
    assert_eq!(cells.len(), 8);
    assert!(cells.iter().all(|(img, _)| img.dimensions() == (40, 40)));
    assert!(
        cells
            .iter()
            .all(|(_, t)| t.contains("rotate") && t.contains("zoom")),
        "p_affine 1: every draw rotates and zooms"
    );
    assert_ne!(cells[0].0, cells[1].0, "each cell is drawn afresh");
    for mode in [
        PaddingMode::Reflection,
        PaddingMode::Zeros,
        PaddingMode::Border,
    ] {
        let rot = Transforms::none()
            .max_rotate(30.0)
            .p_affine(1.0)
            .padding_mode(mode);
        let cells = fastai::data::show::augmented_versions(&file, &rot, 6, 40, 2).unwrap();
        assert_eq!(cells.len(), 6);
        // the pictures have no black: black corners can only be padding
        let black_corner = cells.iter().any(|(img, _)| {
            [(0, 0), (39, 0), (0, 39), (39, 39)]
                .iter()
                .any(|&(x, y)| img.get_pixel(x, y).0 == [0, 0, 0])
        });
        assert_eq!(black_corner, mode == PaddingMode::Zeros, "{mode:?}");
    }
    let none =
        fastai::data::show::augmented_versions(&file, &Transforms::none(), 2, 40, 3).unwrap();
    assert_eq!(none[0].1, "unchanged");
}

#[test]
fn a_validation_file_may_name_items_filtered_out() {
    let dir = TempDir::new("block-filtered");
    make(&dir, 20);
    let l = ImageList::from_folder(dir.join("images"))
        .unwrap()
        .filter_by_func(|p| stem(p)[3..].parse::<usize>().unwrap() < 10)
        .split_by_fname_file("valid.txt")
        .unwrap();
    assert_eq!((l.train.len(), l.valid.len()), (8, 2));
}
