//! A whole ImageNet classifier, ready to use without downloading anything: EfficientNet-Lite0
//! with its 1000-class head (the offline weights `install.sh` puts in `~/.fastai/models`) and the
//! class names (`~/.fastai/samples/imagenet_classes.txt`). For trying a trained network on your
//! own photos before training one, and for seeing where it looks
//! ([`show_heatmap`](ImagenetClassifier::show_heatmap), Grad-CAM).
//!
//! ```no_run
//! use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! let net = ImagenetClassifier::load()?;
//! let photo = samples_dir().join("coffee.png");
//! for (class, p) in net.predict(&photo, 3)? {
//!     println!("{class:>20} {p:.3}"); // espresso first
//! }
//! net.show_heatmap(&photo, None, (4.0, 4.0))?;
//! # Ok(()) }
//! ```

use std::path::Path;

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use super::efficientnet::{efficientnet_lite0, EfficientNet};
use super::model::{Model, Net};
use crate::config::{samples_dir, OfflineWeights};
use crate::data::{imagenet_stats, DataError};
use crate::error::Result;

/// EfficientNet-Lite0 with its ImageNet head and the 1000 class names (see the module's text).
#[derive(Debug)]
pub struct ImagenetClassifier {
    /// The network: `(N, 3, 224, 224)` ImageNet-normalized -> `(N, 1000)` logits. Its hook
    /// points are EfficientNet's (`_conv_stem`, `_blocks.0` ... `_blocks.15`, `_conv_head`).
    pub model: Net<EfficientNet>,
    /// The class names in output order, first synonym only (`"tabby"` for "tabby, tabby cat").
    pub classes: Vec<String>,
    /// The side of the square the photos are resized and centre-cropped to (224).
    pub size: usize,
}

impl ImagenetClassifier {
    /// The hook point Grad-CAM reads: the last feature map, `(1, 1280, 7, 7)` at 224 px.
    pub const LAST_FEATURES: &'static str = "_conv_head";

    /// Loads the offline weights and class names, on the CPU.
    pub fn load() -> Result<ImagenetClassifier> {
        Self::load_on(Device::Cpu)
    }

    /// [`load`](Self::load) onto `device`.
    pub fn load_on(device: Device) -> Result<ImagenetClassifier> {
        let weights = match OfflineWeights::EfficientNetLite0.require() {
            Ok(w) => w,
            Err(e) => crate::bail!("{e}"),
        };
        let names = samples_dir().join("imagenet_classes.txt");
        let text = match std::fs::read_to_string(&names) {
            Ok(t) => t,
            Err(e) => crate::bail!(
                "cannot read the ImageNet class names {} ({e}): ./install.sh installs them",
                names.display()
            ),
        };
        let classes: Vec<String> = text
            .lines()
            .map(|l| l.split(',').next().unwrap_or("").trim().to_string())
            .collect();
        if classes.len() != 1000 {
            crate::bail!(
                "{} has {} lines, not the 1000 ImageNet classes: re-run ./install.sh",
                names.display(),
                classes.len()
            );
        }
        let mut model = Net::new(device, |p| efficientnet_lite0(p, Some(1000)));
        if let Err(e) = model.vs.load(&weights) {
            crate::bail!(
                "the ImageNet weights {} do not load ({e}): re-run ./install.sh",
                weights.display()
            );
        }
        model.vs.freeze();
        Ok(ImagenetClassifier {
            model,
            classes,
            size: 224,
        })
    }

    /// The photo as the network sees it: the shorter side resized to [`size`](Self::size), the
    /// centre cropped square.
    pub fn view(&self, image: &Path) -> Result<RgbImage> {
        Ok(crate::data::show::open_resized(
            image,
            (self.size, self.size),
        )?)
    }

    /// One photo as the network's input: `(1, 3, size, size)`, ImageNet-normalized, on the
    /// model's device.
    pub fn one_item(&self, image: &Path) -> Result<Tensor> {
        let side = (self.size, self.size);
        let device = self.model.var_store().device();
        Ok(crate::data::show::one_item(
            image,
            side,
            Some(imagenet_stats()),
            device,
        )?)
    }

    /// The `k` most likely classes of a photo, with their probabilities, most likely first.
    pub fn predict(&self, image: impl AsRef<Path>, k: usize) -> Result<Vec<(String, f64)>> {
        let x = self.one_item(image.as_ref())?;
        let probs = tch::no_grad(|| self.model.forward_t(&x, false))
            .softmax(-1, Kind::Float)
            .get(0)
            .to_device(Device::Cpu);
        let (p, idx) = probs.topk(k.clamp(1, 1000) as i64, 0, true, true);
        let p = Vec::<f32>::try_from(p).map_err(|e| DataError::Other(e.to_string()))?;
        let idx = Vec::<i64>::try_from(idx).map_err(|e| DataError::Other(e.to_string()))?;
        Ok(idx
            .into_iter()
            .zip(p)
            .map(|(i, p)| (self.classes[i as usize].clone(), p as f64))
            .collect())
    }

    /// The index of a class name (`"espresso"` -> 967), for asking Grad-CAM about a class the
    /// network did not predict.
    pub fn class_index(&self, name: &str) -> Result<usize> {
        match self.classes.iter().position(|c| c == name) {
            Some(i) => Ok(i),
            None => crate::bail!(
                "{name:?} is not one of the ImageNet class names (e.g. \"tabby\", \"espresso\"; \
                 all of them: net.classes)"
            ),
        }
    }
}
