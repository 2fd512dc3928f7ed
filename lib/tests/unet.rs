//! fastai's dynamic U-Net and `unet_learner` on the CPU: the output has the input's size for every
//! body at even and odd sizes; the skips and channels are fastai's (resnet34: 99 channels before
//! the last conv); three layer groups, and a frozen encoder leaves the decoder and BatchNorm
//! trainable; ICNR upsampling has no checkerboard at init; the options build what they say; a
//! small U-Net learns which pixels are bright. (Speed: examples/bench_lesson3.rs, not a test.)

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use fastai::models::model::params_of;
use fastai::models::unet::pixel_shuffle_icnr;
use fastai::vision::nn::ModuleT;
use fastai::vision::*;

/// The tests share libtorch's global random generator: one at a time.
static TORCH_RNG: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner())
}

const FLOAT: (Kind, Device) = (Kind::Float, Device::Cpu);

const ARCHS: [Arch; 5] = [
    Arch::Resnet18,
    Arch::Resnet34,
    Arch::Resnet50,
    Arch::MobilenetV2,
    Arch::EfficientnetLite0,
];

/// `n` smooth gray 32x32 images (4x4 noise, bilinearly enlarged; a little colour noise on top)
/// and their masks: 1 where the gray is above 0.6 (about a third of the pixels), else 0.
fn bright_pixels(n: i64, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let gray = Tensor::rand([n, 1, 4, 4], FLOAT).upsample_bilinear2d([32, 32], false, None, None);
    let x = gray.repeat([1, 3, 1, 1]) + Tensor::randn([n, 3, 32, 32], FLOAT) * 0.05;
    let y = gray.squeeze_dim(1).gt(0.6).to_kind(Kind::Int64);
    (x, y)
}

fn bright_data(n_train: i64, n_valid: i64, bs: usize) -> DataBunch {
    DataBunch::from_tensors(bright_pixels(n_train, 1), bright_pixels(n_valid, 2), bs)
        .unwrap()
        .to_device(Device::Cpu)
        .with_classes(vec!["dark".into(), "bright".into()])
}

fn from_scratch() -> LearnerOptions {
    LearnerOptions {
        pretrained: false,
        ..Default::default()
    }
}

#[test]
fn the_output_has_the_input_size_for_every_arch_at_even_and_odd_sizes() {
    let _s = serial();
    tch::manual_seed(0);
    for arch in ARCHS {
        let m = DynamicUnet::new(arch, Device::Cpu, 3, UnetOptions::default());
        assert_eq!(m.skip_points.len(), 4, "{arch:?}: {:?}", m.skip_points);
        for (h, w) in [(64, 64), (65, 97), (97, 131)] {
            let x = Tensor::randn([2, 3, h, w], FLOAT);
            // eval mode, and train mode (BatchNorm on batch statistics) at once
            let y = tch::no_grad(|| m.forward_t(&x, false));
            assert_eq!(y.size(), [2, 3, h, w], "{arch:?} at {h}x{w}");
            let y = tch::no_grad(|| m.forward_t(&x, true));
            assert_eq!(y.size(), [2, 3, h, w], "{arch:?} at {h}x{w}, training");
            assert!(
                y.isfinite().all().int64_value(&[]) == 1,
                "{arch:?} at {h}x{w}"
            );
        }
    }
}

#[test]
fn skips_and_channels_are_fastais() {
    let _s = serial();
    let names = |m: &DynamicUnet| -> Vec<(String, i64)> { m.skip_points.clone() };
    let s = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
        v.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    };
    // fastai hooks resnet34's children before each size change: relu (after bn1), layer1..layer3
    let m = DynamicUnet::new(Arch::Resnet34, Device::Cpu, 32, UnetOptions::default());
    assert_eq!(
        names(&m),
        s(&[
            ("layer3.5", 256),
            ("layer2.3", 128),
            ("layer1.2", 64),
            ("bn1", 64)
        ])
    );
    let vars = m.vs.variables();
    // fastai's camvid U-Net: blocks of 512, 384, 256, 96 channels, 96 + 3 = 99 into the last conv
    let out_channels: Vec<i64> = (0..4)
        .map(|i| vars[&format!("decoder.blocks.{i}.conv2.0.weight")].size()[0])
        .collect();
    assert_eq!(out_channels, [512, 384, 256, 96]);
    assert_eq!(vars["decoder.middle.0.0.weight"].size(), [1024, 512, 3, 3]);
    assert_eq!(vars["decoder.shuf.conv.weight"].size(), [384, 96, 1, 1]);
    assert_eq!(vars["decoder.cross.1.0.weight"].size(), [99, 99, 3, 3]);
    assert_eq!(vars["decoder.out.0.weight"].size(), [32, 99, 1, 1]);
    assert!(
        !vars.contains_key("decoder.middle.0.2.running_mean"),
        "no BatchNorm in the decoder's conv layers (unet_learner's norm_type)"
    );

    let m = DynamicUnet::new(Arch::MobilenetV2, Device::Cpu, 2, UnetOptions::default());
    assert_eq!(
        names(&m),
        s(&[
            ("features.13", 96),
            ("features.6", 32),
            ("features.3", 24),
            ("features.1", 16)
        ])
    );
    let m = DynamicUnet::new(
        Arch::EfficientnetLite0,
        Device::Cpu,
        2,
        UnetOptions::default(),
    );
    assert_eq!(
        names(&m),
        s(&[
            ("_blocks.10", 112),
            ("_blocks.4", 40),
            ("_blocks.2", 24),
            ("_blocks.0", 16)
        ])
    );
}

#[test]
fn three_groups_and_a_frozen_encoder_trains_only_the_decoder_and_batchnorm() {
    let _s = serial();
    tch::manual_seed(0);
    let mut learn = unet_learner_with(
        bright_data(16, 8, 8),
        models::resnet18,
        &[accuracy],
        from_scratch(),
        UnetOptions::default(),
    )
    .unwrap();
    learn.remove_cb::<ProgressCallback>();
    assert_eq!(learn.n_groups(), 3);
    assert_eq!(learn.frozen_to(), 0, "from scratch: nothing frozen");
    for p in params_of(learn.model.var_store()) {
        let want = if p.name.starts_with("decoder.") {
            2
        } else if p.name.starts_with("layer3") || p.name.starts_with("layer4") {
            1
        } else {
            0
        };
        assert_eq!(p.group, want, "{}", p.name);
    }

    learn.freeze();
    assert_eq!(learn.frozen_to(), 2);
    let trainable: BTreeSet<String> = learn
        .trainable_names()
        .into_iter()
        .map(String::from)
        .collect();
    let want: BTreeSet<String> = params_of(learn.model.var_store())
        .into_iter()
        .filter(|p| p.name.starts_with("decoder.") || p.is_bn)
        .map(|p| p.name)
        .collect();
    assert_eq!(trainable, want);
    assert!(trainable.contains("bn1.weight") && trainable.contains("decoder.bn.weight"));
    assert!(trainable.contains("decoder.blocks.0.shuf.conv.weight"));
    assert!(!trainable.contains("layer4.1.conv2.weight"));

    // a step moves the decoder and leaves the encoder's convolutions alone
    let get = |l: &Learner<DataBunch>, n: &str| l.model.var_store().variables()[n].copy();
    let (conv1, out) = (
        get(&learn, "conv1.weight"),
        get(&learn, "decoder.out.0.weight"),
    );
    let b = learn.data.one_batch().unwrap();
    learn.train_step(&b.x, &b.y).unwrap();
    assert!(conv1.equal(&get(&learn, "conv1.weight")));
    assert!(!out.equal(&get(&learn, "decoder.out.0.weight")));
}

#[test]
fn a_pretrained_unet_learner_loads_the_encoder_and_freezes_it() {
    let _s = serial();
    let learn = unet_learner(bright_data(16, 8, 8), models::mobilenet_v2, &[accuracy]).unwrap();
    assert_eq!(learn.frozen_to(), 2);
    let file = Tensor::read_safetensors(OfflineWeights::MobileNetV2Features.path()).unwrap();
    let (name, want) = file
        .iter()
        .find(|(n, _)| n == "features.0.0.weight")
        .unwrap();
    assert!(learn.model.var_store().variables()[name].equal(want));
    let summary = learn.to_string();
    assert!(
        summary.starts_with("Learner: unet_mobilenet_v2 (pretrained)"),
        "{summary}"
    );
}

#[test]
fn icnr_upsampling_has_no_checkerboard_at_init() {
    let _s = serial();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let ps = pixel_shuffle_icnr(&(vs.root() / "ps"), 16, 8, false);
    let x = Tensor::randn([2, 16, 5, 7], FLOAT);
    // every 2x2 block of the output is one value: the output is its own top-left pixels enlarged
    let blocky = |y: &Tensor| {
        let corners = y.slice(2, 0, None, 2).slice(3, 0, None, 2);
        let up = corners.upsample_nearest2d([10, 14], None, None);
        (y - up).abs().max().double_value(&[])
    };
    let y = ps.forward_t(&x, false);
    assert_eq!(y.size(), [2, 8, 10, 14]);
    assert!(y.abs().sum(Kind::Float).double_value(&[]) > 1.0);
    assert!(blocky(&y) < 1e-6, "{}", blocky(&y));
    // the same layer with a default-initialised convolution has a checkerboard
    let plain = nn::conv2d(vs.root() / "plain", 16, 32, 1, Default::default());
    let y = x.apply(&plain).relu().pixel_shuffle(2);
    assert!(blocky(&y) > 0.1, "{}", blocky(&y));
    // blur keeps the size
    let blurred = pixel_shuffle_icnr(&(vs.root() / "blur"), 16, 8, true);
    assert_eq!(blurred.forward_t(&x, false).size(), [2, 8, 10, 14]);
}

#[test]
fn the_options_build_what_they_say() {
    let _s = serial();
    tch::manual_seed(0);
    let opts = UnetOptions {
        blur: true,
        self_attention: true,
        bottle: true,
        y_range: Some((-1.0, 2.0)),
        ..Default::default()
    };
    let m = DynamicUnet::new(Arch::MobilenetV2, Device::Cpu, 1, opts);
    let vars = m.vs.variables();
    let sa: Vec<&String> = vars.keys().filter(|n| n.contains(".sa.")).collect();
    assert!(
        sa.iter().all(|n| n.starts_with("decoder.blocks.1.sa.")) && sa.len() == 7,
        "self-attention in the third block from the end only: {sa:?}"
    );
    let c = vars["decoder.cross.0.0.weight"].size();
    assert_eq!(c[0], c[1] / 2, "bottle halves the residual block inside");
    let x = Tensor::randn([2, 3, 65, 97], FLOAT);
    let y = m.forward_t(&x, true);
    assert_eq!(y.size(), [2, 1, 65, 97]);
    let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
    assert!(-1.0 < lo && hi < 2.0, "y_range: {lo}..{hi}");
    y.sum(Kind::Float).backward();
    let gamma = vars["decoder.blocks.1.sa.gamma"].grad();
    assert!(
        gamma.abs().double_value(&[0]) > 0.0,
        "attention in the graph"
    );

    let plain = UnetOptions {
        last_cross: false,
        ..Default::default()
    };
    let m = DynamicUnet::new(Arch::MobilenetV2, Device::Cpu, 4, plain);
    assert!(m.vs.variables().keys().all(|n| !n.contains("cross")));
    let y = tch::no_grad(|| m.forward_t(&x, false));
    assert_eq!(y.size(), [2, 4, 65, 97]);
}

#[test]
fn a_tiny_unet_learns_which_pixels_are_bright() {
    let _s = serial();
    tch::manual_seed(0);
    let data = bright_data(64, 32, 8);
    let bright = data
        .valid_dl
        .tensors()
        .1
        .to_kind(Kind::Float)
        .mean(Kind::Float);
    let majority = bright.double_value(&[]).max(1.0 - bright.double_value(&[]));
    // resnet18: mobilenet_v2's 1280-channel features make a 59M-parameter middle conv, whose
    // optimizer step alone costs more than this whole batch
    let mut learn = unet_learner_with(
        data,
        models::resnet18,
        &[accuracy],
        from_scratch(),
        UnetOptions::default(),
    )
    .unwrap();
    learn.remove_cb::<ProgressCallback>();
    let start = Instant::now();
    learn.fit_one_cycle(4, Some(Lr::Single(1e-2))).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let acc = learn.recorder.metrics.last().unwrap()[0].1;
    eprintln!(
        "bright pixels: accuracy {acc:.3} (majority class {majority:.3}) after 4 epochs of 8 \
         batches in {secs:.1}s"
    );
    assert!(
        acc > 0.9 && acc > majority + 0.15,
        "accuracy {acc:.3}, majority {majority:.3}"
    );
}
