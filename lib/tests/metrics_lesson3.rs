//! Lesson 3's metrics (planet's multi-label `accuracy_thresh`/`fbeta`, camvid's accuracy without
//! the void class, `dice`, the head-pose points' `mse`/`rmse`): each against a hand computation
//! on small tensors, and against fastai's own metric code on the tensors of
//! `tests/data/metrics_reference.json` (written by `tools/metrics_reference.py`), accumulated over
//! the same batches as a validation pass.

use fastai::vision::*;
use serde_json::Value;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

/// The metric over batches of the given sizes, as a validation pass accumulates it.
fn over_batches(m: &Metric, pred: &Tensor, targ: &Tensor, batches: &[i64]) -> f64 {
    let mut a = m.accumulator();
    let mut start = 0;
    for &bs in batches {
        a.accumulate(&pred.narrow(0, start, bs), &targ.narrow(0, start, bs));
        start += bs;
    }
    a.value()
}

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/metrics_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensor(case: &Value, key: &str, kind: Kind) -> Tensor {
    let shape: Vec<i64> = case[format!("{key}_shape")]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let vals: Vec<f64> = case[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    Tensor::from_slice(&vals)
        .to_kind(kind)
        .view(shape.as_slice())
}

#[test]
fn lesson3_metrics_match_fastai() {
    let r = reference();
    let cases = &r["cases"];
    let checks: Vec<(&str, &str, Metric, Kind)> = vec![
        (
            "multi_label",
            "accuracy_thresh_0.2",
            accuracy_thresh(0.2),
            Kind::Float,
        ),
        (
            "multi_label",
            "accuracy_thresh_0.5",
            accuracy_thresh(0.5),
            Kind::Float,
        ),
        ("multi_label", "fbeta_2_0.2", fbeta(2.0, 0.2), Kind::Float),
        ("multi_label", "fbeta_1_0.5", fbeta(1.0, 0.5), Kind::Float),
        (
            "segmentation",
            "accuracy_void_3",
            accuracy_void(3),
            Kind::Int64,
        ),
        (
            "segmentation",
            "foreground_acc_0",
            foreground_acc(0),
            Kind::Int64,
        ),
        ("segmentation", "accuracy", accuracy, Kind::Int64),
        ("binary_segmentation", "dice", dice, Kind::Int64),
        ("points", "mse", mse, Kind::Float),
        ("points", "rmse", rmse, Kind::Float),
    ];
    for (case_name, key, metric, targ_kind) in checks {
        let case = &cases[case_name];
        let pred = tensor(case, "pred", Kind::Float);
        let targ = tensor(case, "targ", targ_kind);
        let batches: Vec<i64> = case["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let want = case["fastai"][key].as_f64().unwrap();
        let got = over_batches(&metric, &pred, &targ, &batches);
        println!("{case_name} {key}: ours {got:.7}, fastai {want:.7}");
        assert!(
            close(got, want),
            "{case_name} {key}: {got} vs fastai {want}"
        );
    }
}

#[test]
fn multi_label_by_hand() {
    // 3 items, 4 labels; logits 2 -> sigmoid 0.88 (> 0.2), -2 -> 0.12 (< 0.2)
    let pred = Tensor::from_slice(&[
        2.0f32, 2.0, -2.0, -2.0, // predicts {0, 1}
        -2.0, -2.0, -2.0, 2.0, // predicts {3}
        -2.0, -2.0, -2.0, -2.0, // predicts none
    ])
    .view([3, 4]);
    let targ = Tensor::from_slice(&[
        1.0f32, 0.0, 0.0, 0.0, // {0}
        0.0, 1.0, 1.0, 1.0, // {1, 2, 3}
        0.0, 0.0, 0.0, 0.0, // none
    ])
    .view([3, 4]);
    // labels right: 3 + 2 + 4 of 12
    assert!(close(
        accuracy_thresh(0.2).compute(&pred, &targ),
        9.0 / 12.0
    ));
    // F2 per item: (p 1/2, r 1) -> 5 * 0.5 / (4 * 0.5 + 1) = 5/6; (p 1, r 1/3) -> 5 * (1/3) /
    // (4 + 1/3) = 5/13; nothing predicted nor true -> 0
    let f2 = (5.0 / 6.0 + 5.0 / 13.0 + 0.0) / 3.0;
    let got = fbeta(2.0, 0.2).compute(&pred, &targ);
    assert!(close(got, f2), "{got} vs {f2}");
    // over batches of 2 and 1: weighted by batch size, the same mean over items
    let batched = over_batches(&fbeta(2.0, 0.2), &pred, &targ, &[2, 1]);
    assert!(close(batched, f2), "{batched}");
    assert_eq!(fbeta(2.0, 0.2).name(), "fbeta");
}

#[test]
fn segmentation_accuracy_without_void_by_hand() {
    // one 2x3 image, 3 classes; predicted classes (argmax over axis 1): 0 1 2 / 2 1 0
    let pred_classes = [0i64, 1, 2, 2, 1, 0];
    let pred = Tensor::from_slice(&pred_classes)
        .view([1, 2, 3])
        .one_hot(3)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float);
    // targets: 0 1 1 / 2 2 2, with 2 the void code: 3 pixels counted, 2 right
    let targ = Tensor::from_slice(&[0i64, 1, 1, 2, 2, 2]).view([1, 2, 3]);
    assert!(close(accuracy_void(2).compute(&pred, &targ), 2.0 / 3.0));
    // (N, 1, H, W) targets too
    assert!(close(
        accuracy_void(2).compute(&pred, &targ.unsqueeze(1)),
        2.0 / 3.0
    ));
    // background 0 left out instead: pixels 1 1 2 2 2 -> right 1, 2 -> 2 of 5
    assert!(close(foreground_acc(0).compute(&pred, &targ), 2.0 / 5.0));
    assert_eq!(foreground_acc(0).name(), "foreground_acc");
    assert_eq!(accuracy_void(2).name(), "accuracy_void");
    // plain accuracy: every pixel an item, 3 of 6
    assert!(close(accuracy.compute(&pred, &targ), 0.5));

    // over a set: per-batch values weighted by batch size (fastai's AvgMetric), not pooled pixels
    let pred2 = Tensor::cat(&[&pred, &pred], 0);
    let targ2 = Tensor::cat(
        &[
            targ.shallow_clone(),
            Tensor::from_slice(&[0i64, 2, 2, 2, 2, 2]).view([1, 2, 3]),
        ],
        0,
    );
    // batch 1: 2/3, batch 2: 1 of 1 -> (2/3 + 1) / 2, where pooling would give 3/4
    let v = over_batches(&accuracy_void(2), &pred2, &targ2, &[1, 1]);
    assert!(close(v, (2.0 / 3.0 + 1.0) / 2.0), "{v}");
}

#[test]
fn points_by_hand() {
    // pred (N, P*2) against targets (N, P, 2)
    let pred = Tensor::from_slice(&[0.0f32, 0.5, -0.5, 1.0]).view([1, 4]);
    let targ = Tensor::from_slice(&[0.0f32, 0.0, 0.5, 1.0]).view([1, 2, 2]);
    // errors 0, 0.5, -1, 0 -> mse 1.25 / 4
    assert!(close(mse.compute(&pred, &targ), 0.3125));
    assert!(close(rmse.compute(&pred, &targ), 0.3125f64.sqrt()));
    assert!(close(mse.compute(&pred.view([1, 2, 2]), &targ), 0.3125));
}
