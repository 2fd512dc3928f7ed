//! ClassificationInterpretation on hand-made predictions (confusion matrix, most_confused,
//! top_losses, edge cases and errors), the 37-class confusion-matrix figure (size and time), and
//! `from_learner` on a tiny generated dataset (shapes, losses, the top-losses grid).
//!
//! The figures are also written to the tests' scratch folders (`interp_cm.png`,
//! `interp_cm_norm.png`, `interp_top.png`, `interp_cm3.png`): run with `FASTAI_KEEP_TEST_FILES=1`
//! to keep them for a look by eye (see common/tmp.rs).

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::colors::make_color_data;
use common::tmp::TempDir;
use fastai::vision::*;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// 8 items, classes a, b, c and an empty class d.
fn hand_made() -> (Vec<[f32; 4]>, Vec<i64>, ClassificationInterpretation) {
    let probs: Vec<[f32; 4]> = vec![
        [0.7, 0.2, 0.1, 0.0], // a -> a
        [0.1, 0.6, 0.3, 0.0], // a -> b
        [0.2, 0.5, 0.3, 0.0], // a -> b
        [0.3, 0.3, 0.4, 0.0], // b -> c
        [0.1, 0.8, 0.1, 0.0], // b -> b
        [0.6, 0.2, 0.2, 0.0], // c -> a
        [0.1, 0.1, 0.8, 0.0], // c -> c
        [0.2, 0.6, 0.2, 0.0], // c -> b
    ];
    let targets = vec![0i64, 0, 0, 1, 1, 2, 2, 2];
    let flat: Vec<f32> = probs.iter().flatten().copied().collect();
    let interp = ClassificationInterpretation::new(
        Tensor::from_slice(&flat).view([8, 4]),
        Tensor::from_slice(&targets),
        names(&["a", "b", "c", "d"]),
    )
    .unwrap();
    (probs, targets, interp)
}

#[test]
fn confusion_matrix_counts_actual_rows_predicted_columns() {
    let (_, _, interp) = hand_made();
    assert_eq!(interp.preds(), &[0, 1, 1, 2, 1, 0, 2, 1]);
    assert_eq!(
        interp.confusion_matrix(),
        vec![
            vec![1, 2, 0, 0],
            vec![0, 1, 1, 0],
            vec![1, 1, 1, 0],
            vec![0, 0, 0, 0], // the empty class
        ]
    );
}

#[test]
fn most_confused_sorts_by_count_then_actual_then_predicted() {
    let (_, _, interp) = hand_made();
    let t = |a: &str, p: &str, n| (a.to_string(), p.to_string(), n);
    let all = vec![
        t("a", "b", 2),
        t("b", "c", 1),
        t("c", "a", 1),
        t("c", "b", 1),
    ];
    assert_eq!(interp.most_confused(1), all);
    assert_eq!(interp.most_confused(0), all, "empty cells are never listed");
    assert_eq!(interp.most_confused(2), vec![t("a", "b", 2)]);
    assert!(interp.most_confused(3).is_empty());
}

#[test]
fn the_summary_counts_mistakes_and_names_the_most_confused() {
    let (_, _, interp) = hand_made();
    assert_eq!(
        interp.to_string(),
        "ClassificationInterpretation: 8 items, 4 classes, 5 wrong (error rate 0.6250)\n  \
         a taken for b: 2\n  b taken for c: 1\n  c taken for a: 1"
    );
}

#[test]
fn top_losses_are_exact_and_ties_keep_item_order() {
    let (probs, targets, interp) = hand_made();
    let (losses, idx) = interp.top_losses(None);
    // 0.1 < 0.2 (items 2, 5, 7) < 0.3 < 0.7 < 0.8 (items 4, 6)
    assert_eq!(idx, vec![1, 2, 5, 7, 3, 0, 4, 6]);
    for (&l, &i) in losses.iter().zip(&idx) {
        let p = probs[i][targets[i] as usize] as f64;
        assert!(
            (l - -p.ln()).abs() < 1e-6,
            "item {i}: loss {l}, -ln p = {}",
            -p.ln()
        );
    }
    assert_eq!(losses[1], losses[2]);
    assert_eq!(losses[2], losses[3]);
    let (l3, i3) = interp.top_losses(Some(3));
    assert_eq!((l3.as_slice(), i3.as_slice()), (&losses[..3], &idx[..3]));
    let (l_all, i_all) = interp.top_losses(Some(100));
    assert_eq!((l_all, i_all), (losses, idx), "k > N gives all items");
    assert_eq!(interp.top_losses(Some(0)).1, Vec::<usize>::new());
    assert_eq!(interp.title(1), "b/a/2.30/0.10");
    assert_eq!(interp.losses().size(), [8]);
}

#[test]
fn a_single_class_works() {
    let interp = ClassificationInterpretation::new(
        Tensor::ones([3, 1], (Kind::Float, Device::Cpu)),
        Tensor::zeros([3], (Kind::Int64, Device::Cpu)),
        names(&["only"]),
    )
    .unwrap();
    assert_eq!(interp.confusion_matrix(), vec![vec![3]]);
    assert!(interp.most_confused(1).is_empty());
    let (losses, idx) = interp.top_losses(Some(10));
    assert_eq!(idx, vec![0, 1, 2]);
    assert!(losses.iter().all(|&l| l == 0.0));
    for normalize in [false, true] {
        let png = interp
            .plot_confusion_matrix_png(normalize, (3.0, 3.0))
            .unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (300, 300));
    }
}

#[test]
fn argmax_ties_go_to_the_first_class() {
    let interp = ClassificationInterpretation::new(
        Tensor::from_slice(&[0.5f32, 0.5, 0.0]).view([1, 3]),
        Tensor::from_slice(&[1i64]),
        names(&["x", "y", "z"]),
    )
    .unwrap();
    assert_eq!(interp.preds(), &[0]);
    assert_eq!(interp.most_confused(1), vec![("y".into(), "x".into(), 1)]);
}

#[test]
fn bad_inputs_are_errors_that_say_what_was_expected() {
    let p = || Tensor::full([2, 3], 1.0 / 3.0, (Kind::Float, Device::Cpu));
    let t = |v: &[i64]| Tensor::from_slice(v);
    let err = |r: fastai::Result<ClassificationInterpretation>| match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    let abc = || names(&["a", "b", "c"]);
    let e = err(ClassificationInterpretation::new(
        p(),
        t(&[0, 1]),
        names(&["a", "b"]),
    ));
    assert!(e.contains("(N, 2)") && e.contains("[2, 3]"), "{e}");
    let e = err(ClassificationInterpretation::new(p(), t(&[0, 1, 2]), abc()));
    assert!(e.contains("(2,)"), "{e}");
    let e = err(ClassificationInterpretation::new(p(), t(&[0, 3]), abc()));
    assert!(e.contains("target 3 of item 1"), "{e}");
    let e = err(ClassificationInterpretation::new(p(), t(&[-1, 0]), abc()));
    assert!(e.contains("target -1 of item 0"), "{e}");
    let e = err(ClassificationInterpretation::new(
        Tensor::zeros([0, 3], (Kind::Float, Device::Cpu)),
        t(&[]),
        abc(),
    ));
    assert!(e.contains("0 items"), "{e}");
    let e = err(ClassificationInterpretation::new(
        p(),
        Tensor::from_slice(&[0.0f32, 1.0]),
        abc(),
    ));
    assert!(e.contains("integer"), "{e}");
    let (_, _, interp) = hand_made();
    let e = interp
        .plot_top_losses_png(4, (6.0, 6.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("from_learner"), "{e}");
}

use common::pets::BREEDS as PETS;

/// 1,500 items over the 37 pets classes, mostly right, reproducibly.
fn pets_like(n: usize) -> ClassificationInterpretation {
    let c = PETS.len();
    let mut state = 7u64;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / (1u64 << 31) as f64
    };
    let (mut probs, mut targets) = (Vec::with_capacity(n * c), Vec::with_capacity(n));
    for _ in 0..n {
        let t = (rnd() * c as f64) as usize % c;
        // a neighbour class is the usual mistake (as for look-alike breeds)
        let confuser = (t + 1 + (rnd() * 2.0) as usize) % c;
        let mut row: Vec<f64> = (0..c).map(|_| rnd() * 0.05).collect();
        row[t] += 1.5 * rnd() + 0.2;
        row[confuser] += rnd() * 0.9;
        let s: f64 = row.iter().sum();
        probs.extend(row.iter().map(|v| (v / s) as f32));
        targets.push(t as i64);
    }
    ClassificationInterpretation::new(
        Tensor::from_slice(&probs).view([n as i64, c as i64]),
        Tensor::from_slice(&targets),
        PETS.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap()
}

#[test]
fn the_37_class_confusion_matrix_draws_quickly() {
    let interp = pets_like(1500);
    let cm = interp.confusion_matrix();
    assert_eq!(cm.iter().flatten().sum::<usize>(), 1500);
    let start = Instant::now();
    let png = interp
        .plot_confusion_matrix_png(false, (12.0, 12.0))
        .unwrap();
    let took = start.elapsed();
    println!("37-class confusion matrix, 1,500 items: {took:?}");
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (1200, 1200));
    let figures = TempDir::new("interpret-cm37");
    std::fs::write(figures.join("interp_cm.png"), &png).unwrap();
    let start = Instant::now();
    let png = interp
        .plot_confusion_matrix_png(true, (12.0, 12.0))
        .unwrap();
    println!("normalized: {:?}", start.elapsed());
    std::fs::write(figures.join("interp_cm_norm.png"), &png).unwrap();
    assert!(
        took.as_secs_f64() < 2.0,
        "drawing took {took:?} (expected well under a second in release)"
    );
    let worst = &interp.most_confused(1)[0];
    assert!(worst.2 >= interp.most_confused(1).last().unwrap().2);
}

/// The colour task with long (pets) class names, so the grid's titles are as long as real ones.
fn long_named_data(dir: &Path) -> Vec<PathBuf> {
    let long = [
        ("red", "staffordshire_bull_terrier"),
        ("green", "american_pit_bull_terrier"),
        ("blue", "yorkshire_terrier"),
    ];
    make_color_data(&dir.join("gen"), 30, 3)
        .into_iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_str().unwrap().to_string();
            let (short, pet) = long.iter().find(|(s, _)| name.starts_with(s)).unwrap();
            let to = dir.join(name.replacen(short, pet, 1));
            std::fs::rename(&f, &to).unwrap();
            to
        })
        .collect()
}

#[test]
fn from_learner_predicts_the_validation_set_and_plots_top_losses() {
    let dir = TempDir::new("interpret-learner");
    let files = long_named_data(&dir);
    tch::manual_seed(0);
    let opts = DataOptions::default()
        .size(64)
        .bs(8)
        .num_workers(2)
        .device(Device::Cpu);
    let data = ImageDataBunch::from_name_re(&dir, &files, r"/([a-z_]+)_\d+.png$", opts)
        .unwrap()
        .normalize(imagenet_stats());
    let lo = LearnerOptions {
        pretrained: true,
        ..Default::default()
    };
    let mut learn = cnn_learner_with(data, models::mobilenet_v2, &[error_rate], lo).unwrap();
    let interp = ClassificationInterpretation::from_learner(&mut learn).unwrap();

    let n = learn.data.valid_ds.len();
    assert!(n >= 9, "{n} validation items");
    assert_eq!(interp.len(), n);
    assert_eq!(interp.probs().size(), [n as i64, 3]);
    assert_eq!(interp.targets().size(), [n as i64]);
    assert_eq!(interp.losses().size(), [n as i64]);
    assert_eq!(interp.items(), learn.data.valid_ds.items.as_slice());
    assert_eq!(interp.classes(), learn.data.classes.as_slice());
    let targets = Vec::<i64>::try_from(interp.targets()).unwrap();
    let want: Vec<i64> = learn
        .data
        .valid_ds
        .categories()
        .unwrap()
        .iter()
        .map(|&l| l as i64)
        .collect();
    assert_eq!(targets, want);
    let sums = Vec::<f32>::try_from(interp.probs().sum_dim_intlist(1, false, Kind::Float)).unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-4), "{sums:?}");
    let p_actual = interp
        .probs()
        .gather(1, &interp.targets().unsqueeze(1), false)
        .squeeze_dim(1);
    let diff = (interp.losses() + p_actual.log())
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-4, "losses are -ln p(actual): off by {diff}");

    let png = interp.plot_top_losses_png(4, (6.0, 6.0)).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (600, 600));
    let png = interp.plot_top_losses_png(9, (12.0, 12.0)).unwrap();
    std::fs::write(dir.join("interp_top.png"), &png).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (1200, 1200));
    let png = interp.plot_confusion_matrix_png(false, (6.0, 6.0)).unwrap();
    std::fs::write(dir.join("interp_cm3.png"), &png).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (600, 600));
    // k > N is clamped
    assert!(interp.plot_top_losses_png(n + 50, (8.0, 8.0)).is_ok());
}
