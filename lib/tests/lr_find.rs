//! lr_find in its own process (the torch RNG is seeded, and no other test shares it): it restores
//! the weights exactly and suggests a rate in the range known to work for this problem.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::colors::make_color_data;
use fastai::vision::*;

fn make_data(dir: &Path) -> Vec<PathBuf> {
    make_color_data(dir, 60, 7)
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
fn lr_find_restores_weights_and_suggests_a_sensible_rate() {
    tch::manual_seed(0);
    let dir = std::env::temp_dir().join(format!("fastai-lrfind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = make_data(&dir);
    let opts = DataOptions::default()
        .size(64)
        .bs(16)
        .num_workers(2)
        .device(Device::Cpu);
    let data = ImageDataBunch::from_name_re(&dir, &files, r"/([a-z]+)_\d+.png$", opts)
        .unwrap()
        .normalize(imagenet_stats());
    let mut learn = cnn_learner(data, models::mobilenet_v2, &[error_rate]).unwrap();
    let before = values(&learn);
    let found = learn.lr_find().unwrap();
    for (name, t) in values(&learn) {
        assert!(t.equal(&before[&name]), "{name} not restored");
    }
    assert!(found.points.len() >= 20, "{} points", found.points.len());
    assert!(
        found.points.windows(2).all(|w| w[1].0 > w[0].0),
        "rates grow"
    );
    println!(
        "lr_find: {} points, steepest {:.2e}, valley {:.2e}, min/10 {:.2e}, slide {:.2e}",
        found.points.len(),
        found.lr_steep,
        found.lr_valley,
        found.lr_min,
        found.lr_slide
    );
    // fit(1e-2) learns this head quickly and 1e0 diverges: the classic "minimum / 10" rule must
    // land in 1e-3..1e-1; the valley (robust but cautious) must not be absurdly small or large.
    assert!(
        found.lr_min > 1e-3 && found.lr_min < 1e-1,
        "min/10 {:e}",
        found.lr_min
    );
    assert!(
        found.lr_valley > 3e-5 && found.lr_valley < 0.3,
        "valley {:e}",
        found.lr_valley
    );
    let (png, lr) = learn.recorder.plot_png().unwrap();
    assert_eq!(lr, found.lr_valley);
    assert_eq!(found.suggestion(), found.lr_valley);
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::remove_dir_all(&dir).unwrap();
}
