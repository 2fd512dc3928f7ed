//! The general Learner on data built in the test (`DataBunch::from_tensors`), on the CPU: a model
//! and a loss of one's own train; a closure metric reaches the results; callbacks can skip
//! steps, clip and accumulate gradients; an error inside `fit` still cleans up; hooks see
//! activations and gradients; `summary()` counts parameters as torchvision does; saving into a
//! folder that cannot be written names the folder.

mod common;

use std::sync::{Mutex, MutexGuard};

use fastai::learner::callback::grad_norm;
use fastai::learner::interrupt;
use fastai::vision::*;

/// The tests share libtorch's global random generator: one at a time.
static TORCH_RNG: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner())
}

/// Two Gaussian blobs in 2-d, classes 0 and 1, `n` points each for training and validation.
fn blobs(n: i64, bs: usize) -> DataBunch {
    let make = |seed: i64| {
        tch::manual_seed(seed);
        let a = Tensor::randn([n, 2], (Kind::Float, Device::Cpu)) + 2.0;
        let b = Tensor::randn([n, 2], (Kind::Float, Device::Cpu)) - 2.0;
        let x = Tensor::cat(&[a, b], 0);
        let y = Tensor::cat(
            &[
                Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
                Tensor::ones([n], (Kind::Int64, Device::Cpu)),
            ],
            0,
        );
        (x, y)
    };
    DataBunch::from_tensors(make(1), make(2), bs)
        .unwrap()
        .to_device(Device::Cpu)
}

#[derive(Debug)]
struct Logistic {
    lin: nn::Linear,
}

impl nn::Module for Logistic {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.lin)
    }
}

fn logistic() -> Net<Logistic> {
    Net::new(Device::Cpu, |p| Logistic {
        lin: nn::linear(p / "lin", 2, 2, Default::default()),
    })
}

fn weights(learn: &Learner<DataBunch>) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = learn
        .model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_model_and_loss_of_ones_own_train_and_a_closure_metric_is_reported() {
    let _s = serial();
    tch::manual_seed(0);
    // cross-entropy written by hand: -log softmax at the target
    let my_loss = |pred: &Tensor, targ: &Tensor| {
        -pred
            .log_softmax(1, Kind::Float)
            .gather(1, &targ.unsqueeze(1), false)
            .mean(Kind::Float)
    };
    let share_of_ones = Metric::from_fn("share_of_ones", |pred, _| {
        pred.argmax(1, false)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    });
    let mut learn = Learner::new(
        blobs(64, 16),
        logistic(),
        my_loss,
        &[error_rate, share_of_ones],
    )
    .unwrap();
    learn.remove_cb::<ProgressCallback>();
    learn.fit_one_cycle(3, Some(Lr::Single(0.1))).unwrap();
    let last = learn.recorder.metrics.last().unwrap();
    assert_eq!(last[0].0, "error_rate");
    assert!(last[0].1 < 0.05, "error rate {}", last[0].1);
    assert_eq!(last[1].0, "share_of_ones");
    assert!((last[1].1 - 0.5).abs() < 0.1, "{last:?}");
    assert_eq!(learn.recorder.losses.len(), 3 * 8);
    let summary = learn.to_string();
    assert!(
        summary.starts_with("Learner: custom, x [2] Float, y [] Int64, bs 16"),
        "{summary}"
    );
    assert!(summary.contains("loss custom loss"), "{summary}");
}

/// Skips every step.
struct NoSteps;
impl Callback for NoSteps {
    fn before_step(&mut self, l: &mut AnyLearner) {
        l.cancel_step();
    }
}

#[test]
fn a_callback_that_skips_steps_leaves_the_weights_bit_identical() {
    let _s = serial();
    let mut learn = Learner::new(blobs(32, 8), logistic(), cross_entropy_flat(), &[]).unwrap();
    learn.add_cb(NoSteps);
    let before = weights(&learn);
    learn.fit(2, 0.1).unwrap();
    assert_eq!(learn.recorder.losses.len(), 16, "the batches ran");
    for ((n, a), (_, b)) in before.iter().zip(weights(&learn)) {
        assert!(a.equal(&b), "{n} changed");
    }
    assert_eq!(learn.remove_cb::<NoSteps>(), 1);
    learn.fit(1, 0.1).unwrap();
    assert!(!before[0].1.equal(&weights(&learn)[0].1), "steps again");
}

/// Records the gradient norm each step sees (after clipping) and the gradients themselves.
#[derive(Default)]
struct SeeGrads {
    norms: Vec<f64>,
    grads: Vec<Vec<Tensor>>,
}
impl Callback for SeeGrads {
    fn order(&self) -> i32 {
        40
    }
    fn after_step(&mut self, l: &mut AnyLearner) {
        self.norms.push(grad_norm(l.trainable_params()));
        self.grads
            .push(l.trainable_params().map(|p| p.grad().copy()).collect());
    }
}

#[test]
fn gradient_clipping_bounds_the_gradient_norm() {
    let _s = serial();
    // regression onto large targets: large gradients
    let x = Tensor::randn([64, 2], (Kind::Float, Device::Cpu));
    let y = x.sum_dim_intlist(1, true, Kind::Float) * 100.0;
    let data = DataBunch::from_tensors((x.shallow_clone(), y.shallow_clone()), (x, y), 16)
        .unwrap()
        .to_device(Device::Cpu);
    let model = Net::new(Device::Cpu, |p| {
        nn::linear(p / "lin", 2, 1, Default::default())
    });
    let mut learn = Learner::new(data, model, mse_loss_flat(), &[mse]).unwrap();
    learn.remove_cb::<ProgressCallback>();
    let mut clip = GradientClipping::new(0.5);
    let mut seen = SeeGrads::default();
    learn.fit_with(1, &mut [&mut clip, &mut seen]).unwrap();
    assert!(
        clip.last_norm > 5.0,
        "the unclipped norm was large: {}",
        clip.last_norm
    );
    assert_eq!(seen.norms.len(), 4);
    for n in &seen.norms {
        assert!(*n <= 0.5 + 1e-4, "norm after clipping {n}");
    }
}

#[test]
fn accumulating_k_batches_equals_one_batch_k_times_larger() {
    let _s = serial();
    let make = |bs: usize| {
        tch::manual_seed(7);
        let x = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [16], (Kind::Int64, Device::Cpu));
        let data = DataBunch::from_tensors((x.shallow_clone(), y.shallow_clone()), (x, y), bs)
            .unwrap()
            .to_device(Device::Cpu);
        tch::manual_seed(3);
        let model = Net::new(Device::Cpu, |p| {
            nn::linear(p / "lin", 3, 3, Default::default())
        });
        let mut l = Learner::new(data, model, cross_entropy_flat(), &[]).unwrap();
        l.remove_cb::<ProgressCallback>();
        l
    };
    // one batch of 16 ...
    let mut big = make(16);
    let mut seen_big = SeeGrads::default();
    big.fit_with(
        1,
        &mut [
            &mut ConstantLr {
                lrs: vec![0.01],
                mom: 0.9,
            },
            &mut seen_big,
        ],
    )
    .unwrap();
    // ... and four of 4, accumulated to 16 items before the one step
    let mut small = make(4);
    let mut acc = GradientAccumulation::new(16);
    let mut seen_small = SeeGrads::default();
    small
        .fit_with(
            1,
            &mut [
                &mut ConstantLr {
                    lrs: vec![0.01],
                    mom: 0.9,
                },
                &mut acc,
                &mut seen_small,
            ],
        )
        .unwrap();
    assert_eq!(small.recorder.losses.len(), 4);
    assert_eq!(seen_big.grads.len(), 1);
    assert_eq!(seen_small.grads.len(), 1, "one step for four batches");
    for (a, b) in seen_big.grads[0].iter().zip(&seen_small.grads[0]) {
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "gradients differ by {diff}");
    }
    for ((n, a), (_, b)) in weights(&big).iter().zip(weights(&small)) {
        let diff = (a - &b).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{n} differs by {diff}");
    }
}

/// Presses the stop button, then fails, at batch 3.
struct Breaks;
impl Callback for Breaks {
    fn after_batch(&mut self, l: &mut AnyLearner) {
        if l.state.training && l.state.iter == 3 {
            interrupt::request();
            panic!("something broke in a callback");
        }
    }
}

#[test]
fn an_error_inside_fit_still_cleans_up() {
    let _s = serial();
    let mut learn =
        Learner::new(blobs(32, 8), logistic(), cross_entropy_flat(), &[accuracy]).unwrap();
    learn.add_cb(Breaks);
    let err = learn.fit(2, 0.1).unwrap_err().to_string();
    assert!(err.contains("something broke in a callback"), "{err}");
    let progress = learn.cb::<ProgressCallback>().unwrap();
    assert_eq!(
        progress.last_state,
        Some(fastai::display::progress::BarState::Interrupted),
        "the progress display ended"
    );
    assert!(!interrupt::requested(), "the interrupt flag is clear");
    assert_eq!(
        learn.recorder.losses.len(),
        2,
        "batch 3 broke before the recorder saw it"
    );

    // a loss of the wrong shape is an error, not a crash
    learn.remove_cb::<Breaks>();
    learn.loss_func = Loss::new("per item", |p: &Tensor, _: &Tensor| {
        p.sum_dim_intlist(1, false, Kind::Float)
    });
    let err = learn.fit(1, 0.1).unwrap_err().to_string();
    assert!(err.contains("one number"), "{err}");
    // a model that does not fit the data: libtorch's message, and the learner still works
    learn.loss_func = cross_entropy_flat();
    let good = std::mem::replace(
        &mut learn.model,
        Box::new(Net::new(Device::Cpu, |p| {
            nn::linear(p / "lin", 5, 2, Default::default())
        })),
    );
    let err = learn.fit(1, 0.1).unwrap_err().to_string();
    assert!(
        err.contains("training failed") && err.contains("shape"),
        "{err}"
    );
    learn.model = good;
    learn.fit(1, 0.1).unwrap();
    assert_eq!(learn.recorder.losses.len(), 8, "the next fit works");
    assert_eq!(
        learn.cb::<ProgressCallback>().unwrap().last_state,
        Some(fastai::display::progress::BarState::Done)
    );
}

#[test]
fn a_hook_sees_the_activation_and_its_gradient() {
    let _s = serial();
    let model = Net::new(Device::Cpu, |p| {
        sequential(p)
            .add(nn::linear(p / 0, 2, 3, Default::default()))
            .add(nn::linear(p / 1, 3, 2, Default::default()))
    });
    let learn = Learner::new(blobs(8, 4), model, cross_entropy_flat(), &[]).unwrap();
    let hook = learn.hook_output("0", true).unwrap();
    let x = Tensor::from_slice(&[1.0f32, 2.0, -1.0, 0.5]).view([2, 2]);
    let out = learn.model.forward_t(&x, false);
    out.sum(Kind::Float).backward();
    let vars = learn.model.var_store().variables();
    // by hand: activation x W0^T + b0; d sum(out) / d act = ones(2, 2) W1 = column sums of W1
    let act = x.matmul(&vars["0.weight"].tr()) + &vars["0.bias"];
    let grad = Tensor::ones([2, 2], (Kind::Float, Device::Cpu)).matmul(&vars["1.weight"]);
    let close = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]) < 1e-6;
    assert!(close(&hook.stored().unwrap(), &act.detach()));
    assert!(close(&hook.grad().unwrap(), &grad.detach()));
    assert_eq!(hook.passes(), 1);
    let nothing = learn.hook_output("no such layer", false).unwrap();
    let _ = learn.model.forward_t(&x, false);
    assert_eq!(nothing.passes(), 0);
}

#[test]
fn summary_of_resnet34_counts_torchvisions_parameters() {
    let _s = serial();
    let dir = common::tmp::TempDir::new("summary");
    let files = common::colors::make_color_data(&dir, 4, 1);
    let opts = DataOptions::default().size(64).bs(4).device(Device::Cpu);
    let data = ImageDataBunch::from_name_re(&dir, &files, r"/([a-z]+)_\d+.png$", opts).unwrap();
    let lo = LearnerOptions {
        pretrained: false,
        ..Default::default()
    };
    let mut learn = cnn_learner_with(data, models::resnet34, &[error_rate], lo).unwrap();
    let s = learn.summary().unwrap();
    let text = s.to_string();
    // torchvision's resnet34 has 21,797,672 parameters, 513,000 of them in its fc layer, which
    // a cnn_learner replaces with fastai's head
    let body: i64 = s
        .rows
        .iter()
        .filter(|r| r.name != "head")
        .map(|r| r.params)
        .sum();
    assert_eq!(body, 21_797_672 - 513_000, "{text}");
    let head = s.rows.iter().find(|r| r.name == "head").unwrap();
    assert_eq!(s.total, body + head.params);
    let l4 = s.rows.iter().find(|r| r.name == "layer4.2").unwrap();
    assert_eq!(l4.shape, Some(vec![512, 2, 2]), "{text}");
    assert_eq!(
        s.rows
            .iter()
            .filter(|r| r.name.starts_with("layer"))
            .count(),
        16
    );
    assert!(text.contains("Total params: "), "{text}");
    // frozen: the body's convolutions do not train
    learn.freeze();
    let s = learn.summary().unwrap();
    assert!(s.trainable < s.total / 10, "{} of {}", s.trainable, s.total);
}

#[test]
fn saving_into_a_folder_that_cannot_be_written_names_the_folder() {
    let _s = serial();
    let mut learn = Learner::new(blobs(8, 4), logistic(), cross_entropy_flat(), &[]).unwrap();
    // sysfs refuses new files even to root
    learn.model_dir = "/sys".into();
    let err = learn.save("stage-1").unwrap_err().to_string();
    assert!(
        err.contains("saving the model") && err.contains("/sys"),
        "{err}"
    );
    // and a folder below a file
    let dir = common::tmp::TempDir::new("save-ro");
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    learn.model_dir = file.join("models");
    let err = learn.save("stage-1").unwrap_err().to_string();
    assert!(err.contains(&*file.to_string_lossy()), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"x",
        "nothing on disk changed"
    );
}

#[test]
fn bn_wd_off_leaves_batchnorm_weights_and_biases_out_of_the_weight_decay() {
    let _s = serial();
    tch::manual_seed(0);
    let x = Tensor::randn([64, 2], (Kind::Float, Device::Cpu));
    let y = x.sum_dim_intlist(1, true, Kind::Float);
    // a loss with zero gradients: Adam's step is then nothing but the decoupled weight decay
    let run = |bn_wd: bool| {
        let data = DataBunch::from_tensors(
            (x.shallow_clone(), y.shallow_clone()),
            (x.shallow_clone(), y.shallow_clone()),
            16,
        )
        .unwrap()
        .to_device(Device::Cpu);
        let model = Net::new(Device::Cpu, |p| {
            nn::seq_t()
                .add(nn::linear(p / "lin", 2, 1, Default::default()))
                .add(nn::batch_norm1d(p / "bn", 1, Default::default()))
        });
        let opts = LearnerOptions::default().wd(0.1).bn_wd(bn_wd);
        let zero = Loss::new("zero", |p: &Tensor, _: &Tensor| (p * 0.0).sum(Kind::Float));
        let mut learn = Learner::with_options(data, model, zero, &[], opts).unwrap();
        learn.remove_cb::<ProgressCallback>();
        let before = weights(&learn);
        learn.fit(1, 0.1).unwrap();
        let after = weights(&learn);
        before
            .iter()
            .zip(&after)
            .map(|((n, b), (_, a))| {
                let ratio = (a / b).mean(Kind::Float).double_value(&[]);
                (n.clone(), ratio)
            })
            // the trainable ones; bn.bias is zero at the start: no ratio
            .filter(|(n, _)| ["lin.weight", "lin.bias", "bn.weight"].contains(&n.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(true).len(), 3, "lin.weight, lin.bias, bn.weight");
    // 4 steps of p <- p (1 - lr wd)
    let decayed = 0.99f64.powi(4);
    for (name, ratio) in run(true) {
        assert!(
            (ratio - decayed).abs() < 1e-5,
            "bn_wd on: {name} scaled by {ratio}"
        );
    }
    for (name, ratio) in run(false) {
        let want = if name == "lin.weight" { decayed } else { 1.0 };
        assert!(
            (ratio - want).abs() < 1e-5,
            "bn_wd off: {name} scaled by {ratio}, not {want}"
        );
    }
}
