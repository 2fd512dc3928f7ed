//! Grad-CAM on a task whose answer sits in a known place: grey noise pictures with one coloured
//! square in a random quadrant; the class is the square's colour. A classifier trained on it
//! (the offline MobileNetV2 body) must look at the square: of the four quadrants, the square's
//! holds the most of the map's mass. The map has the image's size and lies in [0, 1]; the top-losses figure draws.

mod common;

use std::path::{Path, PathBuf};

use common::lcg::Lcg;
use common::tmp::TempDir;
use fastai::vision::*;
use image::{Rgb, RgbImage};

const SIDE: u32 = 192;

/// `n` pictures; returns each file with its quadrant (0 top-left, 1 top-right, 2 bottom-left,
/// 3 bottom-right).
fn make(dir: &Path, n: usize) -> Vec<(PathBuf, u32)> {
    let mut rng = Lcg(3);
    let mut out = Vec::new();
    for i in 0..n {
        let colour = i % 2; // 0 red, 1 blue
        let quadrant = rng.next(4);
        let mut img = RgbImage::from_fn(SIDE, SIDE, |_, _| {
            let g = 100 + rng.next(56) as u8;
            Rgb([g, g, g])
        });
        let half = SIDE / 2;
        let (qx, qy) = ((quadrant % 2) * half, (quadrant / 2) * half);
        let side = 56;
        let (x0, y0) = (
            qx + 6 + rng.next(half - side - 12),
            qy + 6 + rng.next(half - side - 12),
        );
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                img.put_pixel(
                    x,
                    y,
                    if colour == 0 {
                        Rgb([210, 30, 30])
                    } else {
                        Rgb([30, 50, 210])
                    },
                );
            }
        }
        let class = if colour == 0 { "red" } else { "blue" };
        std::fs::create_dir_all(dir.join(class)).unwrap();
        let file = dir.join(class).join(format!("{i:03}.png"));
        img.save(&file).unwrap();
        out.push((file, quadrant));
    }
    out
}

#[test]
fn grad_cam_looks_where_the_answer_is() {
    let dir = TempDir::new("gradcam");
    let items = make(&dir, 96);
    let data = ImageList::from_folder(&*dir)
        .unwrap()
        .split_by_rand_pct(0.25)
        .unwrap()
        .label_from_folder()
        .unwrap()
        .transform(None, SIDE as usize)
        .databunch_with(
            DataOptions::default()
                .bs(16)
                .num_workers(2)
                .device(Device::Cpu),
        )
        .unwrap()
        .normalize(imagenet_stats());
    let mut learn = cnn_learner(data, models::mobilenet_v2, &[error_rate]).unwrap();
    learn.remove_cb::<ProgressCallback>();
    learn.fit_one_cycle(8, Some(Lr::Single(1e-2))).unwrap();
    let (_, m) = learn.validate().unwrap();
    assert!(
        m[0].1 < 0.1,
        "the task is learned first: error rate {}",
        m[0].1
    );

    let (mut on_target, mut checked) = (0, 0);
    for (file, quadrant) in items.iter().take(24) {
        let (cam, class) = learn.grad_cam(file, None).unwrap();
        assert_eq!(cam.size(), [SIDE as i64, SIDE as i64], "the image's size");
        let (lo, hi) = (cam.min().double_value(&[]), cam.max().double_value(&[]));
        assert!(lo >= 0.0 && hi <= 1.0 + 1e-6, "in [0, 1]: {lo}..{hi}");
        let actual = if file.parent().unwrap().ends_with("red") {
            "red"
        } else {
            "blue"
        };
        if learn.data.classes[class] != actual {
            continue; // a mistake: no claim about where it looked
        }
        let half = SIDE as i64 / 2;
        let mass = |q: i64| {
            cam.narrow(0, (q / 2) * half, half)
                .narrow(1, (q % 2) * half, half)
                .sum(Kind::Float)
                .double_value(&[])
        };
        let masses: Vec<f64> = (0..4).map(mass).collect();
        let best = (0..4)
            .max_by(|&a, &b| masses[a].total_cmp(&masses[b]))
            .unwrap();
        checked += 1;
        if best == *quadrant as usize {
            on_target += 1;
        }
    }
    assert!(checked >= 20, "the model got {checked} of 24 right");
    assert!(
        on_target as f64 >= 0.8 * checked as f64,
        "the square's quadrant holds the most of the map for only {on_target} of {checked} images"
    );

    // for another class, and errors
    let (_, c) = learn.grad_cam(&items[0].0, Some(1)).unwrap();
    assert_eq!(c, 1);
    assert!(learn
        .grad_cam(&items[0].0, Some(5))
        .unwrap_err()
        .to_string()
        .contains("class 5"));
    // an inner point: a finer map, still the image's size and in [0, 1]
    let (cam, _) = learn.grad_cam_at(&items[0].0, None, "features.6").unwrap();
    assert_eq!(cam.size(), [SIDE as i64, SIDE as i64]);
    assert!(cam.min().double_value(&[]) >= 0.0 && cam.max().double_value(&[]) <= 1.0 + 1e-6);
    // read at another size: the same map at the data's size, a map of the size asked otherwise
    let (plain, _) = learn.grad_cam(&items[0].0, None).unwrap();
    let (same, _) = learn
        .grad_cam_sized(&items[0].0, None, SIDE as usize)
        .unwrap();
    assert!(plain.allclose(&same, 1e-5, 1e-6, false));
    let (big, _) = learn.grad_cam_sized(&items[0].0, None, 320).unwrap();
    assert_eq!(big.size(), [320, 320]);
    assert!(big.min().double_value(&[]) >= 0.0 && big.max().double_value(&[]) <= 1.0 + 1e-6);
    let err = learn
        .grad_cam_sized(&items[0].0, None, 8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("32 to 4096"), "{err}");
    assert!(learn
        .grad_cam_at(&items[0].0, None, "no_such_layer")
        .unwrap_err()
        .to_string()
        .contains("no_such_layer"));
    // no gradients left behind on the weights
    learn.unfreeze();
    let left: f64 = learn
        .model
        .var_store()
        .trainable_variables()
        .iter()
        .filter(|v| v.grad().defined())
        .map(|v| v.grad().abs().sum(Kind::Float).double_value(&[]))
        .sum();
    assert_eq!(left, 0.0);

    let interp = ClassificationInterpretation::from_learner(&mut learn).unwrap();
    let png = interp
        .plot_top_losses_heatmap_png(&learn, 4, (6.0, 6.0))
        .unwrap();
    if std::env::var_os("FASTAI_KEEP_TEST_FILES").is_some() {
        std::fs::write(dir.join("heatmaps.png"), &png).unwrap();
    }
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (600, 600));
}

/// The offline ImageNet classifier on a real photo (scikit-image's `coffee.png`, installed by
/// install.sh): it sees an espresso, and its Grad-CAM map is hottest on the cup. The cup's box in
/// the 224 px centre crop was read off the picture by eye: x 0.28-0.92, y 0.00-0.62 of the side
/// (40% of the picture); the saucer, the spoon and the table are outside it.
#[test]
fn on_a_real_photo_grad_cam_points_at_the_cup() {
    let net = ImagenetClassifier::load().unwrap();
    let photo = samples_dir().join("coffee.png");
    let top = net.predict(&photo, 1).unwrap();
    assert_eq!(top[0].0, "espresso", "{top:?}");
    let (cam, class) = net.grad_cam(&photo, None).unwrap();
    assert_eq!(net.classes[class], "espresso");
    assert_eq!(cam.size(), [224, 224]);
    let (lo, hi) = (cam.min().double_value(&[]), cam.max().double_value(&[]));
    assert!(lo >= 0.0 && (hi - 1.0).abs() < 1e-6, "range {lo}..{hi}");
    let side = 224.0;
    let (x0, x1, y1) = (0.28 * side, 0.92 * side, 0.62 * side);
    let flat = cam.flatten(0, -1);
    let at = flat.argmax(0, false).int64_value(&[]) as f64;
    let (x, y) = (at % side, (at / side).floor());
    assert!(
        (x0..x1).contains(&x) && y < y1,
        "the hottest pixel ({x}, {y}) is not on the cup"
    );
    let cup = cam
        .narrow(0, 0, y1 as i64)
        .narrow(1, x0 as i64, (x1 - x0) as i64)
        .sum(Kind::Float)
        .double_value(&[]);
    let share = cup / flat.sum(Kind::Float).double_value(&[]);
    assert!(
        share > 0.55,
        "only {share:.2} of the map is on the cup, which covers 0.40 of the picture"
    );
    // asking about another class works too, and a class that does not exist is an error
    let mug = net.class_index("coffee mug").unwrap();
    assert_eq!(net.grad_cam(&photo, Some(mug)).unwrap().1, mug);
    let err = net.grad_cam(&photo, Some(1000)).unwrap_err().to_string();
    assert!(err.contains("1000"), "{err}");
    assert!(net.class_index("teapot pot").is_err());
}
