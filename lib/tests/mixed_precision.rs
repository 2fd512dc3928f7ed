//! Mixed precision's loss scaling, on the CPU (autocast itself needs CUDA): gradients are
//! unscaled before the step; a step with overflowing gradients is skipped, the weights unchanged
//! and the scale halved; the scale grows back after enough good steps; a to_fp16 learner learns.

mod common;

use std::path::Path;

use common::colors::make_color_data;
use fastai::learner::mixed::LossScaler;
use fastai::vision::*;

fn learner(dir: &Path) -> Learner {
    let files = make_color_data(dir, 30, 1);
    let opts = DataOptions::default()
        .size(32)
        .bs(8)
        .num_workers(2)
        .device(Device::Cpu);
    let data = ImageDataBunch::from_name_re(dir, &files, r"/([a-z]+)_\d+.png$", opts)
        .unwrap()
        .normalize(imagenet_stats());
    cnn_learner(data, models::mobilenet_v2, &[error_rate]).unwrap()
}

#[test]
fn unscaling_divides_gradients_and_overflow_skips() {
    let w = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
    (&w * 8.0).sum(Kind::Float).backward(); // gradient 8 = 2 (true) x scale 4
    let mut s = LossScaler {
        scale: 4.0,
        growth_interval: 2,
        ..Default::default()
    };
    assert!(s.unscale_and_check([&w].into_iter()));
    assert_eq!(Vec::<f32>::try_from(w.grad()).unwrap(), vec![2.0, 2.0]);
    assert_eq!(s.scale, 4.0);
    assert!(s.unscale_and_check([&w].into_iter()));
    assert_eq!(s.scale, 8.0, "two good steps in a row double the scale");

    let v = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
    (&v * f64::INFINITY).sum(Kind::Float).backward();
    assert!(!s.unscale_and_check([&w, &v].into_iter()));
    assert_eq!(s.scale, 4.0, "an overflow halves the scale");
    assert_eq!(s.skipped, 1);
}

#[test]
fn to_fp16_learner_learns_and_skips_overflowing_steps() {
    let dir = common::tmp::TempDir::new("mixed-learns");
    tch::manual_seed(0);
    let mut learn = learner(&dir);

    // A scale so large that the scaled loss overflows float32: the step must be skipped.
    learn.to_fp16_with(LossScaler {
        scale: 1e39,
        ..Default::default()
    });
    let before: Vec<Tensor> = learn
        .model
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| t.detach().copy())
        .collect();
    let b = learn.data.train_dl.iter().next().unwrap();
    let loss = learn.train_step(&b.x, &b.y).unwrap();
    assert!(loss.is_finite(), "the loss itself is fine: {loss}");
    let after = learn.model.var_store().trainable_variables();
    assert!(
        before.iter().zip(&after).all(|(a, b)| a.equal(b)),
        "weights untouched"
    );
    let s = learn.loss_scaler().unwrap();
    assert_eq!(s.skipped, 1);
    assert!(s.scale < 1e39);

    // With the default scale it trains like float32 training.
    learn.to_fp16();
    learn.fit_one_cycle(4, Some(Lr::Stop(1e-2))).unwrap();
    let (_, metrics) = learn.validate().unwrap();
    assert!(metrics[0].1 < 0.2, "error rate {}", metrics[0].1);
    assert_eq!(learn.loss_scaler().unwrap().skipped, 0);
    learn.to_fp32();
    assert!(learn.loss_scaler().is_none());
}
