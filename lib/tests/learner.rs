//! The Learner on small generated images, on the CPU, in seconds: it learns; freezing really
//! freezes; lr_find restores the weights exactly and suggests a sensible rate; save/load and
//! export/load_learner/predict round-trip; an interrupt stops within one batch; bad files are
//! errors that change nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use common::colors::make_color_data;
use fastai::learner::interrupt;
use fastai::vision::*;

/// Every test here draws from libtorch's global random generator (weight initialisation,
/// dropout), which the test harness shares between the tests it runs on parallel threads: a
/// test's result then depends on what ran beside it (the learning test below: error rate 0.056
/// alone, 0.111 and a failure in one run out of five in parallel). One at a time, every run of a
/// test sees the same numbers.
static TORCH_RNG: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    TORCH_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn make_data(dir: &Path) -> Vec<PathBuf> {
    make_color_data(dir, 30, 1)
}

fn learner(dir: &Path, pretrained: bool) -> Learner {
    let files = make_data(dir);
    let opts = DataOptions::default()
        .size(64)
        .bs(8)
        .num_workers(2)
        .device(Device::Cpu);
    let data = ImageDataBunch::from_name_re(dir, &files, r"/([a-z]+)_\d+.png$", opts)
        .unwrap()
        .normalize(imagenet_stats());
    let lo = LearnerOptions {
        pretrained,
        ..Default::default()
    };
    cnn_learner_with(data, models::mobilenet_v2, &[error_rate, accuracy], lo).unwrap()
}

fn values(learn: &Learner) -> BTreeMap<String, Tensor> {
    learn
        .model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect()
}

#[test]
fn learns_a_learnable_task_with_a_pretrained_body() {
    let _serial = serial();
    let dir = common::tmp::TempDir::new("learner-learns");
    tch::manual_seed(0);
    let mut learn = learner(&dir, true);
    learn.fit_one_cycle(5, Some(Lr::Stop(1e-2))).unwrap();
    let (loss, metrics) = learn.validate().unwrap();
    assert_eq!(metrics[0].0, "error_rate");
    // 18 validation images of 3 classes (chance: 0.67): at most one mistake.
    assert!(
        metrics[0].1 <= 0.1,
        "error rate {} (valid loss {loss})",
        metrics[0].1
    );
    assert_eq!(learn.recorder.valid_losses.len(), 5);
    assert_eq!(learn.recorder.lrs.len(), 5 * learn.data.train_dl.len());
    // what a cell that ends in `learn` shows
    let summary = learn.to_string();
    assert!(
        summary.starts_with("Learner: mobilenet_v2 (pretrained), 3 classes, 64x64 images, bs 8"),
        "{summary}"
    );
    assert!(summary.contains("2 of 3 layer groups frozen"), "{summary}");
    assert!(
        summary.contains("metrics: error_rate, accuracy"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "last fit: 5 epoch(s), valid_loss {:.4}, error_rate ",
            learn.recorder.valid_losses[4]
        )),
        "{summary}"
    );
}

#[test]
fn freezing_keeps_frozen_weights_bit_identical() {
    let _serial = serial();
    let dir = common::tmp::TempDir::new("learner-freeze");
    let mut learn = learner(&dir, true);
    assert_eq!(learn.frozen_to(), 2);
    let before = values(&learn);
    learn.fit(1, 1e-2).unwrap();
    let after = values(&learn);
    let mut changed_bn = 0;
    for (name, t) in &before {
        let same = t.equal(&after[name]);
        if name.starts_with("head.") {
            assert!(
                !same || name.ends_with("num_batches_tracked"),
                "head weight {name} did not train"
            );
        } else if t.dim() == 1 {
            changed_bn += usize::from(!same); // BatchNorm weights and statistics train
        } else {
            assert!(same, "frozen {name} changed");
        }
    }
    assert!(
        changed_bn > 100,
        "only {changed_bn} BatchNorm tensors changed"
    );
    // Unfrozen, the body trains too.
    learn.unfreeze();
    let before = values(&learn);
    learn.fit(1, 1e-3).unwrap();
    assert!(!before["features.0.0.weight"]
        .equal(&learn.model.var_store().variables()["features.0.0.weight"]));
}

#[test]
fn save_load_and_export_predict_round_trip() {
    let _serial = serial();
    let dir = common::tmp::TempDir::new("learner-save");
    let mut learn = learner(&dir, true);
    learn.fit(1, 1e-2).unwrap();
    let (p1, _) = learn.get_preds().unwrap();
    let saved = learn.save("stage-1").unwrap();
    assert!(saved.ends_with("models/stage-1.safetensors"));
    learn.fit(1, 1e-2).unwrap();
    let (p2, _) = learn.get_preds().unwrap();
    assert!(!p1.equal(&p2));
    learn.load("stage-1").unwrap();
    let (p3, _) = learn.get_preds().unwrap();
    assert!(p1.equal(&p3), "load restores the saved predictions exactly");

    let file = learn.data.valid_ds.items[0].clone();
    let (class, idx, probs) = learn.predict(&file).unwrap();
    let exported = learn.export(None).unwrap();
    let predictor = load_learner_on(&exported, Device::Cpu).unwrap();
    assert_eq!(predictor.info.classes, learn.data.classes);
    assert!(
        predictor
            .to_string()
            .starts_with("Predictor: mobilenet_v2, 64x64 images, on Cpu, 3 classes: "),
        "{predictor}"
    );
    let (class2, idx2, probs2) = predictor.predict(&file).unwrap();
    assert_eq!((class.as_str(), idx), (class2.as_str(), idx2));
    assert!(probs.equal(&probs2));
    assert!((probs.sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-5);
}

use fastai::learner::export::load_learner_on;

#[test]
fn bad_files_are_errors_and_change_nothing() {
    let _serial = serial();
    let dir = common::tmp::TempDir::new("learner-bad");
    let mut learn = learner(&dir, true);
    learn.save("good").unwrap();
    let before = values(&learn);
    std::fs::write(
        learn.model_dir.join("broken.safetensors"),
        b"not a weight file",
    )
    .unwrap();
    let err = learn.load("broken").unwrap_err().to_string();
    assert!(err.contains("broken.safetensors"), "{err}");
    assert!(
        learn
            .load("nothing-here")
            .unwrap_err()
            .to_string()
            .contains("good"),
        "lists saved models"
    );
    for (name, t) in values(&learn) {
        assert!(t.equal(&before[&name]));
    }
    // A model saved from another architecture does not load.
    let other = common::tmp::TempDir::new("learner-bad-other");
    let files = make_data(&other);
    let opts = DataOptions::default().size(32).bs(8).device(Device::Cpu);
    let data = ImageDataBunch::from_name_re(&other, &files, r"/([a-z]+)_\d+.png$", opts).unwrap();
    let lo = LearnerOptions {
        pretrained: false,
        ..Default::default()
    };
    let r18 = cnn_learner_with(data, models::resnet18, &[error_rate], lo).unwrap();
    let p = r18.save("r18").unwrap();
    std::fs::copy(&p, learn.model_dir.join("r18.safetensors")).unwrap();
    assert!(learn.load("r18").is_err());
    assert!(
        load_learner_on(learn.model_dir.join("good.safetensors"), Device::Cpu).is_err(),
        "not an export"
    );
    // Saving leaves no temporary files behind.
    let names: Vec<String> = std::fs::read_dir(&learn.model_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
}

struct InterruptAt(usize);
impl Callback for InterruptAt {
    fn after_batch(&mut self, l: &mut AnyLearner) {
        if l.state.iter == self.0 {
            interrupt::request();
        }
    }
}

#[test]
fn an_interrupt_stops_within_one_batch_and_the_next_fit_continues() {
    let _serial = serial();
    let dir = common::tmp::TempDir::new("learner-interrupt");
    let mut learn = learner(&dir, true);
    learn.add_cb(InterruptAt(2));
    learn.fit(3, 1e-3).unwrap();
    assert_eq!(
        learn.recorder.losses.len(),
        2,
        "stopped right after batch 2"
    );
    assert_eq!(learn.remove_cb::<InterruptAt>(), 1);
    assert!(!interrupt::requested(), "the flag is clear after the fit");
    learn.fit(1, 1e-3).unwrap();
    assert_eq!(
        learn.recorder.losses.len(),
        learn.data.train_dl.len(),
        "a full epoch afterwards"
    );
}

#[test]
fn a_diverging_loss_stops_with_a_clear_message() {
    let _serial = serial();
    let dir = common::tmp::TempDir::new("learner-nan");
    let mut learn = learner(&dir, false);
    learn.unfreeze();
    let err = learn.fit(2, 1e6).unwrap_err().to_string();
    assert!(
        err.contains("learning rate") && err.contains("epoch"),
        "{err}"
    );
}

#[test]
fn fine_tune_trains_frozen_then_unfrozen() {
    let _serial = serial();
    let dir = common::tmp::TempDir::new("learner-finetune");
    let mut learn = learner(&dir, true);
    learn.fine_tune(1, None).unwrap();
    assert_eq!(learn.frozen_to(), 0, "ends unfrozen");
    assert_eq!(
        learn.recorder.valid_losses.len(),
        1,
        "the recorder holds the unfrozen fit"
    );
    // the unfrozen phase peaks at lr/2 = 1e-3 for the head, 1e-5 for the first group
    let peak = learn.recorder.lrs.iter().cloned().fold(0.0, f64::max);
    assert!((peak - 1e-3).abs() < 1e-4, "peak lr {peak}");
}
