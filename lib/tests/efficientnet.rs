//! EfficientNet-Lite0 end to end: the offline ImageNet weights load into the model (every tensor
//! present, every shape equal), and real photos are classified as ImageNet says they should be.
//!
//! Photos: `coffee.png` (a cup of espresso) and `chelsea.png` (a tabby cat) from scikit-image,
//! `baboon.jpg` from OpenCV's samples; class names from OpenCV's ILSVRC2012 list. All are installed
//! into `$FASTAI_HOME/samples` by `./install.sh`. The predictions only come out right if the model
//! reproduces TensorFlow's asymmetric "SAME" padding and BatchNorm epsilon 1e-3.
//!
//! `cargo test --release -p fastai --test efficientnet -- --nocapture` prints the top-3 classes
//! and the time of one forward pass.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use ::image::imageops::{self, FilterType};
use fastai::config::samples_dir;
use fastai::data::{imagenet_stats, open_image};
use fastai::models::efficientnet::{efficientnet_lite0, EfficientNet};
use fastai::OfflineWeights;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn sample(name: &str) -> PathBuf {
    let p = samples_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: the sample photos are installed by ./install.sh (tools/assets.py)",
        p.display()
    );
    p
}

/// The 1000 ImageNet class names, first synonym only ("tabby, tabby cat" -> "tabby").
fn class_names() -> Vec<String> {
    let text = std::fs::read_to_string(sample("imagenet_classes.txt")).unwrap();
    let names: Vec<String> = text
        .lines()
        .map(|l| l.split(',').next().unwrap().trim().to_string())
        .collect();
    assert_eq!(names.len(), 1000);
    names
}

/// The ImageNet model (`Some(1000)`) with the offline weights, after checking that the file holds
/// exactly the model's tensors with the model's shapes (`VarStore::load` alone would accept a tensor
/// that merely broadcasts, and ignore extra ones).
fn pretrained() -> (nn::VarStore, EfficientNet) {
    let path = OfflineWeights::EfficientNetLite0
        .require()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = efficientnet_lite0(&vs.root(), Some(1000));
    let ours: BTreeMap<String, Vec<i64>> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    let file: BTreeMap<String, Vec<i64>> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    assert_eq!(ours, file, "model variables vs {}", path.display());
    vs.load(&path)
        .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
    (vs, model)
}

/// Validation-style preprocessing: shorter side to 256, centre crop 224, ImageNet mean/std.
/// Returns `(3, 224, 224)`.
fn preprocess(name: &str) -> Tensor {
    let img = open_image(&sample(name)).unwrap();
    let (w, h) = img.dimensions();
    let scale = 256.0 / w.min(h) as f64;
    let (nw, nh) = (
        (w as f64 * scale).round() as u32,
        (h as f64 * scale).round() as u32,
    );
    let img = imageops::resize(&img, nw, nh, FilterType::Triangle);
    let crop = imageops::crop_imm(&img, (nw - 224) / 2, (nh - 224) / 2, 224, 224).to_image();
    let stats = imagenet_stats();
    let x = Tensor::from_slice(crop.as_raw())
        .view([224, 224, 3])
        .permute([2, 0, 1])
        .to_kind(Kind::Float)
        / 255.0;
    let mean = Tensor::from_slice(&stats.mean).view([3, 1, 1]);
    let std = Tensor::from_slice(&stats.std).view([3, 1, 1]);
    (x - mean) / std
}

#[test]
fn classifies_sample_photos() {
    let (_vs, model) = pretrained();
    let names = class_names();
    assert_eq!(names[967], "espresso");
    assert_eq!(names[372], "baboon");
    assert_eq!(
        (&names[281], &names[282], &names[285]),
        (
            &"tabby".to_string(),
            &"tiger cat".to_string(),
            &"Egyptian cat".to_string()
        )
    );

    let photos = ["coffee.png", "chelsea.png", "baboon.jpg"];
    let batch = Tensor::stack(&photos.map(preprocess), 0);
    let probs = tch::no_grad(|| model.forward_t(&batch, false)).softmax(-1, Kind::Float);
    assert_eq!(probs.size(), [3, 1000]);
    let (top_p, top_i) = probs.topk(3, -1, true, true);
    let mut top1 = Vec::new();
    for (row, photo) in photos.iter().enumerate() {
        let line: Vec<String> = (0..3)
            .map(|k| {
                let i = top_i.int64_value(&[row as i64, k]) as usize;
                let p = top_p.double_value(&[row as i64, k]);
                format!("{} ({i}) {p:.3}", names[i])
            })
            .collect();
        println!("{photo:>12}: {}", line.join(", "));
        top1.push((
            top_i.int64_value(&[row as i64, 0]),
            top_p.double_value(&[row as i64, 0]),
        ));
    }
    let (coffee, chelsea, baboon) = (top1[0], top1[1], top1[2]);
    assert_eq!(coffee.0, 967, "coffee.png should be espresso");
    assert!(coffee.1 > 0.5, "espresso with only p = {:.3}", coffee.1);
    assert!(
        [281, 282, 285].contains(&chelsea.0),
        "chelsea.png should be a cat (tabby / tiger cat / Egyptian cat), got {}",
        names[chelsea.0 as usize]
    );
    assert_eq!(baboon.0, 372, "baboon.jpg should be baboon");

    // One 224 px image, eval mode: the time a notebook's `predict` takes on this machine.
    let one = batch.narrow(0, 0, 1);
    let _ = tch::no_grad(|| model.forward_t(&one, false)); // warm-up
    let runs = 10;
    let t0 = Instant::now();
    for _ in 0..runs {
        let _ = tch::no_grad(|| model.forward_t(&one, false));
    }
    println!(
        "forward pass, 1 x 3 x 224 x 224, {} threads: {:.1} ms",
        tch::get_num_threads(),
        t0.elapsed().as_secs_f64() * 1000.0 / runs as f64
    );
}

/// A smooth synthetic image `(1, 3, h, w)`: `1.5 sin(0.11 y + 0.07 x + 1.3 c)`.
fn synthetic(h: i64, w: i64) -> Tensor {
    let opts = (Kind::Float, Device::Cpu);
    let y = Tensor::arange(h, opts).view([1, h, 1]);
    let x = Tensor::arange(w, opts).view([1, 1, w]);
    let c = Tensor::arange(3, opts).view([3, 1, 1]);
    ((y * 0.11 + x * 0.07 + c * 1.3).sin() * 1.5).unsqueeze(0)
}

#[test]
fn matches_the_reference_implementation() {
    // Numbers from the PyTorch implementation these weights were published for (PyPI
    // `efficientnet-lite-pytorch` 0.1.0, `EfficientNet.from_name("efficientnet-lite0")`, eval mode,
    // state dict loaded strictly from the source .pth), on `synthetic`. At 225 x 193 it pads
    // dynamically and asymmetrically in both directions. The photo test alone would not catch a
    // wrong padding or epsilon: with either, the top-1 classes stay the same (only the
    // probabilities move), while these logits move by up to 0.7 (symmetric padding) or 0.2
    // (epsilon 1e-5), and ours agree with the reference to better than 1e-3.
    let (_vs, model) = pretrained();
    struct Reference {
        size: (i64, i64),
        features: [i64; 4],
        features_sum: f64,
        logits: [f64; 7],
    }
    let cases = [
        Reference {
            size: (224, 224),
            features: [1, 1280, 7, 7],
            features_sum: 11665.9023,
            logits: [
                -0.10387, 1.04662, 0.13126, 1.32750, 1.16680, 0.33153, -1.36679,
            ],
        },
        Reference {
            size: (225, 193),
            features: [1, 1280, 8, 7],
            features_sum: 11549.4316,
            logits: [
                0.27960, 1.17468, -0.27456, 0.70884, 1.19636, 0.35916, -1.19794,
            ],
        },
    ];
    let classes = [0i64, 1, 281, 372, 504, 967, 999]; // the indices of `logits`
    for Reference {
        size: (h, w),
        features: shape,
        features_sum,
        logits,
    } in cases
    {
        let x = synthetic(h, w);
        let (f, y) = tch::no_grad(|| (model.features_t(&x, false), model.forward_t(&x, false)));
        assert_eq!(f.size(), shape);
        let got_sum = f.sum(Kind::Double).double_value(&[]);
        assert!(
            (got_sum - features_sum).abs() < 1e-4 * features_sum,
            "{h}x{w}: feature sum {got_sum}, reference {features_sum}"
        );
        for (c, want) in classes.iter().zip(logits) {
            let got = y.double_value(&[0, *c]);
            assert!(
                (got - want).abs() < 1e-3,
                "{h}x{w}: logit {c} is {got:.5}, reference {want:.5}"
            );
        }
    }
}

#[test]
fn body_alone_gives_the_pretrained_features() {
    // A learner builds the body without `_fc`; it loads from the same file (the extra `_fc`
    // tensors are ignored) and computes the same feature map as the full model.
    let (_vs, full) = pretrained();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let body = efficientnet_lite0(&vs.root(), None);
    vs.load(OfflineWeights::EfficientNetLite0.path()).unwrap();
    let x = preprocess("chelsea.png").unsqueeze(0);
    let (a, b) = tch::no_grad(|| (body.forward_t(&x, false), full.features_t(&x, false)));
    assert_eq!(a.size(), [1, EfficientNet::FEATURES, 7, 7]);
    assert!(a.allclose(&b, 1e-5, 1e-6, false));
    // after ReLU6
    assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 6.0);
}

#[test]
fn load_errors_on_missing_or_misshaped_tensors() {
    let path = OfflineWeights::EfficientNetLite0
        .require()
        .unwrap_or_else(|e| panic!("{e}"));
    // 10 classes: `_fc` is (10, 1280) in the model, (1000, 1280) in the file
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _m = efficientnet_lite0(&vs.root(), Some(10));
    let err = vs.load(&path).expect_err("a mis-shaped _fc must not load");
    println!(
        "mis-shaped: {}",
        err.to_string().lines().next().unwrap_or("")
    );
    // a variable the file does not have
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _m = efficientnet_lite0(&(vs.root() / "body"), Some(1000));
    let err = vs
        .load(&path)
        .expect_err("names under another prefix must not load");
    println!("missing: {err}");
    assert!(err.to_string().contains("body."), "{err}");
}
